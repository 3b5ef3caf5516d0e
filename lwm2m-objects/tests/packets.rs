//! Single packets through the engine (decision 7): built with `lwm2m_core::crypto::packet`
//! (its encoder is pinned to the real client's vectors in its unit tests, and
//! `interop/packets.test.mjs` runs the real client), sent directly (`/1024//80`) and
//! through the store (`/82` chunks, `/83` execute), over a packet store, a replay record
//! and a firmware slot in RAM flash: commands run with their signer's rights, a plain
//! packet as anonymous, anything damaged, forged or replayed changes nothing, and a
//! firmware image reaches the slot byte for byte, marked bootable.
#![cfg(feature = "packets")]

mod common;
use common::packets::*;
use common::*;
use lwm2m_core::auth::ScramRecord;
use lwm2m_core::crypto::chunk::encode_chunk;
use lwm2m_core::crypto::crc32;
use lwm2m_core::crypto::packet::{self, HashKey, MessageType};
use lwm2m_core::firmware::{Image, RamFirmware};
use lwm2m_core::packets::{FlashPackets, WithPackets};
use lwm2m_core::storage::replay::ReplayGuard;
use lwm2m_core::storage::{NoStore, RamFlash};
use lwm2m_core::{Instant, Step};

type Packets = FlashPackets<RamFlash<'static, 4096>, RamFlash<'static, 4096>, RamFirmware<'static>>;
type Store = WithPackets<NoStore, Packets>;

/// The flash cells that survive a "restart" of the device: the packet store, the
/// replay record, the firmware slot.
struct Cells {
    store: &'static mut [u8],
    guard: &'static mut [u8],
    slot: &'static mut [u8],
}

fn cells() -> Cells {
    Cells {
        store: vec![0xFF; 128 * 1024].leak(),
        guard: vec![0xFF; 8192].leak(),
        slot: vec![0xFF; 96 * 1024].leak(),
    }
}

fn packets(cells: Cells, bootable: Option<Image>) -> Packets {
    let store_len = cells.store.len() as u32;
    let guard_len = cells.guard.len() as u32;
    let guard = ReplayGuard::new(RamFlash::from_cells(cells.guard), 0..guard_len).unwrap();
    let slot = RamFirmware::from_parts(cells.slot, bootable);
    FlashPackets::new(
        RamFlash::from_cells(cells.store),
        0..store_len,
        guard,
        Some(slot),
    )
    .unwrap()
}

/// Takes the cells back from a device's store (what a power cut leaves in flash).
fn cells_of(h: Harness<lwm2m_core::target::NoTarget, Store>) -> (Cells, Option<Image>) {
    let (_, store) = h.device.into_parts();
    let (area, guard, slot) = store.packets.into_parts();
    let (slot, bootable) = slot.unwrap().into_parts();
    (
        Cells {
            store: area.into_cells(),
            guard: guard.into_inner().into_cells(),
            slot,
        },
        bootable,
    )
}

/// A device over `cells`, SCRAM on with the admin's record, a user "bob" (rights of a
/// user, his own SCRAM record) — configured as admin, then logged out.
fn device(cells: Cells, bootable: Option<Image>) -> Harness<lwm2m_core::target::NoTarget, Store> {
    let store = WithPackets {
        config: NoStore,
        packets: packets(cells, bootable),
    };
    let mut device = transcript_device().with_store(store);
    device.load_config().unwrap();
    let mut h = Harness::from_device(device);
    h.device.seed(&[42; 32]);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    assert_eq!(h.tx("a2da000009030400ffff00060010"), "009000");
    assert_eq!(
        h.tx(&format!("a2da00002b020401ffff0002{ADMIN_RECORD}")),
        "009000"
    );
    assert_eq!(h.tx(LOGOUT), "009000");
    h
}

/// A packet of `data` signed (encrypted) with `key` as `user`.
fn signed(
    kind: MessageType,
    id: u16,
    sender: u8,
    key: &HashKey,
    user: &[u8],
    data: &[u8],
) -> Vec<u8> {
    signed_as(kind, id, sender, key, user, data)
}

/// A plain COMMAND packet of `data` claiming `sender`.
fn plain(id: u16, sender: u8, data: &[u8]) -> Vec<u8> {
    plain_as(MessageType::Command, id, sender, data)
}

/// The application name, read by a side handler with the administrator's rights (the
/// session is anonymous, and SCRAM leaves no plain login).
fn app_name(h: &mut Harness<lwm2m_core::target::NoTarget, Store>) -> String {
    let mut out = [0u8; 1024];
    let outcome = h
        .device
        .handle_side(WS2, 0xFFFF, &get_apdu(1024, 0xFFFF, 9), h.now, &mut out);
    let answer = &out[..outcome.len];
    assert_eq!(answer[0], 0, "GET /1024//9: {}", to_hex(answer));
    String::from_utf8(answer[1..answer.len() - 2].to_vec()).unwrap()
}

fn direct(h: &mut Harness<lwm2m_core::target::NoTarget, Store>, packet: &[u8]) -> String {
    to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 80, packet)))
}

fn store_info(h: &mut Harness<lwm2m_core::target::NoTarget, Store>) -> String {
    h.tx("a2ca000007010400ffff0051")
}

/// Loads `packet` into the store as the client does (zero-padded to 16, parts of at
/// most 192 bytes), then executes it with `crc` (that of the chunks, if `None`).
fn through_store(
    h: &mut Harness<lwm2m_core::target::NoTarget, Store>,
    packet: &[u8],
    crc: Option<u32>,
) -> String {
    let mut padded = packet.to_vec();
    padded.resize(packet.len().div_ceil(16) * 16, 0);
    for (i, part) in padded.chunks(192).enumerate() {
        let mut body = [0u8; 200];
        let n = encode_chunk((i * 192) as u32, part, &mut body).unwrap();
        let answer = h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &body[..n]));
        assert_eq!(to_hex(&answer), "009000", "chunk {i}");
    }
    assert_eq!(store_info(h), "00000000029000", "USED once loaded");
    let crc = crc.unwrap_or_else(|| crc32(&padded, None));
    let answer = h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 83, &crc.to_be_bytes()));
    assert_eq!(store_info(h), "00000000019000", "EMPTY after every execute");
    to_hex(&answer)
}

#[test]
fn a_signed_command_packet_runs_with_its_sender_s_rights_once() {
    let mut h = device(cells(), None);
    assert_eq!(store_info(&mut h), "00000000019000", "EMPTY");
    let data = commands(&[put_app_name("signed")]);
    let packet = signed(
        MessageType::Command,
        7,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &data,
    );
    // Anonymous sends it; the command runs as admin: the item answers 00 (`len | status`).
    assert_eq!(direct(&mut h, &packet), "000001009000");
    assert_eq!(app_name(&mut h), "signed");
    assert_eq!(direct(&mut h, &packet), "819000", "the same packet again");
    // An older id is a replay too; a newer one runs.
    let older = signed(
        MessageType::Command,
        6,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &commands(&[put_app_name("older")]),
    );
    assert_eq!(direct(&mut h, &older), "819000");
    let newer = signed(
        MessageType::Command,
        8,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &commands(&[put_app_name("newer")]),
    );
    assert_eq!(direct(&mut h, &newer), "000001009000");
    assert_eq!(app_name(&mut h), "newer");
}

#[test]
fn a_plain_packet_claiming_admin_runs_as_anonymous() {
    let mut h = device(cells(), None);
    let packet = plain(
        1,
        packet::SENDER_ADMIN,
        &commands(&[
            put_app_name("forged"),
            get_apdu(1024, 0xFFFF, 7)[5..].to_vec(),
        ]),
    );
    // Both items ran: the write refused for rights, the current group is anonymous.
    assert_eq!(direct(&mut h, &packet), "0000018100030000009000");
    assert_eq!(app_name(&mut h), "");
    // The blank-key sender "IoTize" (FD) is anonymous too.
    let blank = signed(
        MessageType::Command,
        1,
        packet::SENDER_IOTIZE,
        &HashKey::BLANK,
        packet::BLANK_USER,
        &commands(&[put_app_name("blank")]),
    );
    assert_eq!(direct(&mut h, &blank), "000001819000");
    assert_eq!(app_name(&mut h), "");
}

#[test]
fn damaged_or_forged_packets_change_nothing() {
    let mut h = device(cells(), None);
    let data = commands(&[put_app_name("bad")]);
    let mut flipped = signed(
        MessageType::Command,
        1,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &data,
    );
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    assert_eq!(direct(&mut h, &flipped), "809000", "a flipped bit");
    let other = ScramRecord::from_bytes(&[7; 36]).unwrap();
    let wrong = signed(
        MessageType::Command,
        2,
        packet::SENDER_ADMIN,
        &HashKey::of(&other),
        b"admin",
        &data,
    );
    assert_eq!(direct(&mut h, &wrong), "809000", "another key");
    let mut bad_crc = plain(3, 0, &data);
    bad_crc[20] ^= 0x40;
    assert_eq!(direct(&mut h, &bad_crc), "809000", "a plain packet's CRC");
    // A sender without a SCRAM record cannot sign.
    let nobody = signed(MessageType::Command, 4, 0x05, &admin_key(), b"admin", &data);
    assert_eq!(direct(&mut h, &nobody), "809000");
    assert_eq!(app_name(&mut h), "");
    // None of them moved admin's record: id 1 still runs.
    let good = signed(
        MessageType::Command,
        1,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &commands(&[put_app_name("good")]),
    );
    assert_eq!(direct(&mut h, &good), "000001009000");
    assert_eq!(app_name(&mut h), "good");
}

#[test]
fn the_store_runs_a_loaded_packet_when_the_crc_matches() {
    let mut h = device(cells(), None);
    let name = "x".repeat(16);
    let data = commands(&[put_app_name(&name)]);
    let packet = signed(
        MessageType::Command,
        1,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &data,
    );
    assert_eq!(
        through_store(&mut h, &packet, Some(0x1234_5678)),
        "869000",
        "a wrong execute CRC"
    );
    assert_eq!(app_name(&mut h), "");
    assert_eq!(through_store(&mut h, &packet, None), "000001009000");
    assert_eq!(app_name(&mut h), name);
    // Executing an empty store: refused.
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 83, &[0, 0, 0, 0]))),
        "869000"
    );
}

#[test]
fn a_replay_is_refused_after_a_restart() {
    let mut h = device(cells(), None);
    let packet = signed(
        MessageType::Command,
        40,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &commands(&[put_app_name("once")]),
    );
    assert_eq!(direct(&mut h, &packet), "000001009000");
    let (cells, bootable) = cells_of(h);
    let mut h = device(cells, bootable);
    assert_eq!(direct(&mut h, &packet), "819000", "after the restart");
    let next = signed(
        MessageType::Command,
        41,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &commands(&[put_app_name("twice")]),
    );
    assert_eq!(direct(&mut h, &next), "000001009000");
}

/// The firmware file: an image of `len` pseudo-random bytes in a TARGET_FW_UPDATE packet.
fn image(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn firmware_file(image: &[u8], id: u16, sender: u8, key: &HashKey, user: &[u8]) -> Vec<u8> {
    signed(
        MessageType::TargetFwUpdate,
        id,
        sender,
        key,
        user,
        &firmware_data(image),
    )
}

#[test]
fn a_firmware_image_reaches_the_slot_byte_for_byte() {
    let mut h = device(cells(), None);
    // Over 65 535 bytes: dataSize 0, the length inside the data tells the image apart.
    let img = image(70_001);
    let file = firmware_file(&img, 1, packet::SENDER_ADMIN, &admin_key(), b"admin");
    // The firmware updater sends the CRC of the file without the chunks' padding.
    let crc = crc32(&file, None);
    assert_eq!(through_store(&mut h, &file, Some(crc)), "009000");
    let (cells, bootable) = cells_of(h);
    assert_eq!(
        bootable,
        Some(Image {
            len: img.len() as u32,
            crc: crc32(&img, None)
        })
    );
    assert_eq!(&cells.slot[..img.len()], &img[..]);
}

#[test]
fn a_firmware_image_needs_a_signer_with_every_right() {
    let mut h = device(cells(), None);
    let img = image(1000);
    let plain_file = {
        let mut data = (img.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&img);
        let header = header(MessageType::TargetFwUpdate, 1, packet::SENDER_ADMIN);
        let mut out = vec![0u8; packet::encoded_len(&header, data.len()).unwrap()];
        let (n, _) = packet::encode(&header, 0, &data, &mut out).unwrap();
        out.truncate(n);
        out
    };
    assert_eq!(through_store(&mut h, &plain_file, None), "819000", "plain");
    let blank = firmware_file(
        &img,
        1,
        packet::SENDER_IOTIZE,
        &HashKey::BLANK,
        packet::BLANK_USER,
    );
    assert_eq!(
        through_store(&mut h, &blank, None),
        "819000",
        "the blank key"
    );
    let mut damaged = firmware_file(&img, 2, packet::SENDER_ADMIN, &admin_key(), b"admin");
    let at = damaged.len() / 2;
    damaged[at] ^= 0x10;
    assert_eq!(
        through_store(&mut h, &damaged, None),
        "809000",
        "a flipped bit"
    );
    let (cells, bootable) = cells_of(h);
    assert_eq!(bootable, None);
    assert!(
        cells.slot.iter().all(|&b| b == 0xFF),
        "the slot was never written"
    );
}

#[test]
fn a_command_waiting_on_an_operation_resumes_with_the_packet_s_rights() {
    let mut h = device(cells(), None);
    // A save (an operation the request waits on) between two writes of the name.
    let data = commands(&[
        put_app_name("before"),
        vec![2, 4, 0, 0xff, 0xff, 0, 10],
        put_app_name("after"),
    ]);
    let packet = signed(
        MessageType::Command,
        9,
        packet::SENDER_ADMIN,
        &admin_key(),
        b"admin",
        &data,
    );
    let request = request_apdu(2, 1024, 0xFFFF, 80, &packet);
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, &request, Instant::ZERO, &mut out);
    let mut operations = 0;
    let outcome = loop {
        match step {
            Step::Pending(op) => {
                operations += 1;
                let result = h.device.perform(&op, &request, &mut out);
                step = h.device.resume(result, &request, Instant::ZERO, &mut out);
            }
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(operations, 2, "the packet opened, the configuration saved");
    assert_eq!(to_hex(&out[..outcome.len]), "000001000001000001009000");
    assert_eq!(app_name(&mut h), "after");
}

#[test]
fn an_interrupted_or_refused_update_leaves_the_running_image_bootable() {
    let running = Image {
        len: 1234,
        crc: 0xDEAD_BEEF,
    };
    let mut h = device(cells(), Some(running));
    let img = image(5000);
    let file = firmware_file(&img, 1, packet::SENDER_ADMIN, &admin_key(), b"admin");
    // Half the chunks, then the power goes.
    let mut padded = file.clone();
    padded.resize(file.len().div_ceil(16) * 16, 0);
    for (i, part) in padded.chunks(192).take(padded.len() / 192 / 2).enumerate() {
        let mut body = [0u8; 200];
        let n = encode_chunk((i * 192) as u32, part, &mut body).unwrap();
        let answer = h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &body[..n]));
        assert_eq!(to_hex(&answer), "009000", "chunk {i}");
    }
    assert_eq!(store_info(&mut h), "00000000029000", "USED");
    let (cells, bootable) = cells_of(h);
    assert_eq!(bootable, Some(running));
    // After the restart the store is empty again and executing it runs nothing.
    let mut h = device(cells, bootable);
    assert_eq!(
        store_info(&mut h),
        "00000000019000",
        "EMPTY after a restart"
    );
    let answer = h.send_on(
        WS1,
        &request_apdu(2, 1024, 0xFFFF, 83, &crc32(&padded, None).to_be_bytes()),
    );
    assert_eq!(to_hex(&answer), "869000");
    // The whole file with a wrong execute CRC: refused, the running image still marked.
    assert_eq!(through_store(&mut h, &file, Some(0x0BAD_0BAD)), "869000");
    let (cells, bootable) = cells_of(h);
    assert_eq!(bootable, Some(running));
    assert!(
        cells.slot.iter().all(|&b| b == 0xFF),
        "the slot was never written"
    );
}
