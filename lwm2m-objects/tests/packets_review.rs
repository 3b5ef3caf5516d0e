//! Adversarial review of single packets (decision 7): each `f*` test failed on the code
//! it was written against and names the defect it showed (now fixed); the `held_*` tests
//! are attacks that did not get through.
#![cfg(feature = "packets")]

mod common;
use common::packets::*;
use common::*;
use lwm2m_core::crypto::chunk::encode_chunk;
use lwm2m_core::crypto::packet::{self, MessageType};
use lwm2m_core::crypto::{crc32, Software};
use lwm2m_core::firmware::{self, FirmwareSink, Image, RamFirmware};
use lwm2m_core::packets::{FlashPackets, WithPackets};
use lwm2m_core::storage::replay::ReplayGuard;
use lwm2m_core::storage::{ConfigStore, NoStore, RamFlash};
use lwm2m_core::target::{MemoryTarget, TargetIo};
use lwm2m_core::{Instant, Step};
use target_traits::{MemoryAccess, RamTarget};

const BASE: u32 = 0x2000_0000;

type Ram = RamTarget<256>;
type Packets<W> = FlashPackets<RamFlash<'static, 4096>, RamFlash<'static, 4096>, W>;
type Store<W> = WithPackets<NoStore, Packets<W>>;

fn packets<W: FirmwareSink>(slot: W) -> Packets<W> {
    let store: &'static mut [u8] = vec![0xFF; 128 * 1024].leak();
    let guard: &'static mut [u8] = vec![0xFF; 8192].leak();
    let guard = ReplayGuard::new(RamFlash::from_cells(guard), 0..8192).unwrap();
    FlashPackets::new(
        RamFlash::from_cells(store),
        0..128 * 1024,
        guard,
        Some(slot),
    )
    .unwrap()
}

fn ram_slot() -> RamFirmware<'static> {
    RamFirmware::new(vec![0xFF; 96 * 1024].leak())
}

/// Admin configures variable 1 (UINT32, one element, at BASE + 16, bundle 1) on `h`,
/// then SCRAM with admin's record, then logs out.
fn setup<T: TargetIo, S: ConfigStore>(h: &mut Harness<T, S>, with_variable: bool) {
    h.device.seed(&[42; 32]);
    assert_eq!(h.tx(LOGIN_ADMIN), "009000");
    if with_variable {
        for frame in [
            request_apdu(2, 1028, 1, 0xFFFF, &[]),
            request_apdu(2, 1029, 1, 0xFFFF, &[]),
            request_apdu(3, 1029, 1, 0, &(BASE + 16).to_be_bytes()),
            request_apdu(3, 1029, 1, 1, &[0x23]),
            request_apdu(3, 1029, 1, 2, &[1]),
            request_apdu(3, 1029, 1, 6, &1u16.to_be_bytes()),
        ] {
            assert_eq!(
                to_hex(&h.send_on(WS1, &frame)),
                "009000",
                "{}",
                to_hex(&frame)
            );
        }
    }
    assert_eq!(h.tx("a2da000009030400ffff00060010"), "009000");
    assert_eq!(
        h.tx(&format!("a2da00002b020401ffff0002{ADMIN_RECORD}")),
        "009000"
    );
    assert_eq!(h.tx(LOGOUT), "009000");
}

fn signed(kind: MessageType, id: u16, data: &[u8]) -> Vec<u8> {
    signed_as(kind, id, packet::SENDER_ADMIN, &admin_key(), b"admin", data)
}

fn plain(id: u16, data: &[u8]) -> Vec<u8> {
    plain_as(MessageType::Command, id, 0, data)
}

fn firmware_file(image: &[u8], id: u16) -> Vec<u8> {
    signed(MessageType::TargetFwUpdate, id, &firmware_data(image))
}

fn direct<T: TargetIo, S: ConfigStore>(h: &mut Harness<T, S>, packet: &[u8]) -> String {
    to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 80, packet)))
}

fn through_store<T: TargetIo, S: ConfigStore>(h: &mut Harness<T, S>, packet: &[u8]) -> String {
    let mut padded = packet.to_vec();
    padded.resize(packet.len().div_ceil(16) * 16, 0);
    for (i, part) in padded.chunks(192).enumerate() {
        let mut body = [0u8; 200];
        let n = encode_chunk((i * 192) as u32, part, &mut body).unwrap();
        let answer = h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &body[..n]));
        assert_eq!(to_hex(&answer), "009000", "chunk {i}");
    }
    let crc = crc32(&padded, None);
    to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 83, &crc.to_be_bytes())))
}

fn app_name<T: TargetIo, S: ConfigStore>(h: &mut Harness<T, S>) -> String {
    let mut out = [0u8; 1024];
    let outcome = h
        .device
        .handle_side(WS2, 0xFFFF, &get_apdu(1024, 0xFFFF, 9), h.now, &mut out);
    let answer = &out[..outcome.len];
    assert_eq!(answer[0], 0);
    String::from_utf8(answer[1..answer.len() - 2].to_vec()).unwrap()
}

type TargetHarness = Harness<MemoryTarget<Ram>, Store<RamFirmware<'static>>>;

fn target_device() -> TargetHarness {
    let device = transcript_device()
        .with_target(MemoryTarget(Ram::new(BASE)))
        .with_store(WithPackets {
            config: NoStore,
            packets: packets(ram_slot()),
        });
    let mut device = device;
    device.load_config().unwrap();
    let mut h = Harness::from_device(device);
    setup(&mut h, true);
    h
}

fn target_word(h: &mut TargetHarness) -> [u8; 4] {
    let mut word = [0u8; 4];
    h.device.target_mut().0.read(BASE + 16, &mut word).unwrap();
    word
}

// ---------------------------------------------------------------------------------------
// F1: a COMMAND packet cannot write a target variable (nor run a target command, nor
// append a blob): `Context::write_value` insists the data lie in the request buffer,
// and a packet's commands lie in the response buffer.
// ---------------------------------------------------------------------------------------

#[test]
fn f1_a_signed_packet_writes_a_target_variable_blocking() {
    let mut h = target_device();
    // The variable is writable: a side handler with admin's rights writes it.
    let mut out = [0u8; 64];
    let put = request_apdu(3, 1029, 1, 4, &[9, 9, 9, 9]);
    let outcome = h.device.handle_side(WS2, 0xFFFF, &put, h.now, &mut out);
    assert_eq!(to_hex(&out[..outcome.len]), "009000");
    assert_eq!(target_word(&mut h), [9, 9, 9, 9]);
    let packet = signed(
        MessageType::Command,
        1,
        &commands(&[frame(3, 1029, 1, 4, &[0xDE, 0xAD, 0xBE, 0xEF])]),
    );
    assert_eq!(
        direct(&mut h, &packet),
        "000001009000",
        "the item answers 00"
    );
    assert_eq!(target_word(&mut h), [0xDE, 0xAD, 0xBE, 0xEF]);
}

#[test]
fn f1_a_signed_packet_writes_a_target_variable_suspended() {
    let mut h = target_device();
    let packet = signed(
        MessageType::Command,
        1,
        &commands(&[frame(3, 1029, 1, 4, &[1, 2, 3, 4])]),
    );
    let request = request_apdu(2, 1024, 0xFFFF, 80, &packet);
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, &request, Instant::ZERO, &mut out);
    let outcome = loop {
        match step {
            Step::Pending(op) => {
                let result = h.device.perform(&op, &request, &mut out);
                step = h.device.resume(result, &request, Instant::ZERO, &mut out);
            }
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(to_hex(&out[..outcome.len]), "000001009000");
    assert_eq!(target_word(&mut h), [1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------
// F2: a firmware packet whose image is empty (image length 0, or a dataSize of 0..=4)
// is "verified" and marked bootable: the board boots nothing at its next reset.
// ---------------------------------------------------------------------------------------

fn firmware_device<W: FirmwareSink<Error = firmware::ErrorKind>>(
    slot: W,
) -> Harness<lwm2m_core::target::NoTarget, Store<W>> {
    let mut device = transcript_device().with_store(WithPackets {
        config: NoStore,
        packets: packets(slot),
    });
    device.load_config().unwrap();
    let mut h = Harness::from_device(device);
    setup(&mut h, false);
    h
}

fn bootable(
    h: Harness<lwm2m_core::target::NoTarget, Store<RamFirmware<'static>>>,
) -> Option<Image> {
    let (_, store) = h.device.into_parts();
    store.packets.firmware_sink().unwrap().bootable()
}

#[test]
fn f2_an_empty_firmware_image_is_not_marked_bootable() {
    let mut h = firmware_device(ram_slot());
    let file = firmware_file(&[], 1);
    let answer = through_store(&mut h, &file);
    assert_ne!(answer, "009000", "an empty image accepted");
    assert_eq!(bootable(h), None);
}

#[test]
fn f2_a_firmware_packet_without_an_image_length_is_not_marked_bootable() {
    // No data at all (dataSize 0): the image length is read from the padding, 0.
    let mut h = firmware_device(ram_slot());
    let file = signed(MessageType::TargetFwUpdate, 1, &[]);
    let answer = through_store(&mut h, &file);
    assert_ne!(answer, "009000", "a packet with no image accepted");
    assert_eq!(bootable(h), None);
}

// ---------------------------------------------------------------------------------------
// F3: a firmware packet refused by the slot (a flash error while writing it) uses up its
// packetId: the client's retry of the same file (the updater retries, §11.5) is refused
// `81` for good, although `packets::open` documents "Any error changes nothing but, for
// an image that checked, the firmware slot".
// ---------------------------------------------------------------------------------------

/// A slot whose first write fails (a flash hiccup), then works.
struct Flaky {
    inner: RamFirmware<'static>,
    failures: u32,
}

impl firmware::ErrorType for Flaky {
    type Error = firmware::ErrorKind;
}

impl FirmwareSink for Flaky {
    fn capacity(&self) -> u32 {
        self.inner.capacity()
    }
    fn begin(&mut self) -> Result<(), firmware::ErrorKind> {
        self.inner.begin()
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), firmware::ErrorKind> {
        if self.failures > 0 {
            self.failures -= 1;
            return Err(firmware::ErrorKind::Flash);
        }
        self.inner.write(offset, data)
    }
    fn verify(&mut self, len: u32, crc: u32) -> Result<(), firmware::ErrorKind> {
        self.inner.verify(len, crc)
    }
    fn mark_bootable(&mut self) -> Result<(), firmware::ErrorKind> {
        self.inner.mark_bootable()
    }
}

#[test]
fn f3_a_firmware_file_refused_by_a_flash_error_can_be_sent_again() {
    let mut h = firmware_device(Flaky {
        inner: ram_slot(),
        failures: 1,
    });
    let img: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let file = firmware_file(&img, 1);
    assert_eq!(
        through_store(&mut h, &file),
        "a49000",
        "the slot's flash failed"
    );
    assert_eq!(
        through_store(&mut h, &file),
        "009000",
        "the updater's retry"
    );
    let (_, store) = h.device.into_parts();
    assert_eq!(
        store.packets.firmware_sink().unwrap().inner.bootable(),
        Some(Image {
            len: 1000,
            crc: crc32(&img, None)
        })
    );
}

// ---------------------------------------------------------------------------------------
// F6: `PacketStorage::read` promises offsets and lengths that are multiples of 16, but a
// plain COMMAND packet (alignment 4) is read whole with its exact length: a store whose
// flash reads 16-byte units (allowed by FlashPackets::new) cannot run it.
// ---------------------------------------------------------------------------------------

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

#[derive(Debug)]
struct Misaligned;
impl NorFlashError for Misaligned {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::NotAligned
    }
}

/// A RAM NOR flash whose read unit is 16 bytes.
struct Read16(Vec<u8>);
impl ErrorType for Read16 {
    type Error = Misaligned;
}
impl ReadNorFlash for Read16 {
    const READ_SIZE: usize = 16;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Misaligned> {
        if !offset.is_multiple_of(16) || !bytes.len().is_multiple_of(16) {
            return Err(Misaligned);
        }
        bytes.copy_from_slice(&self.0[offset as usize..offset as usize + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}
impl NorFlash for Read16 {
    const WRITE_SIZE: usize = 16;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Misaligned> {
        self.0[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Misaligned> {
        if !offset.is_multiple_of(16) || !bytes.len().is_multiple_of(16) {
            return Err(Misaligned);
        }
        self.0[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn f6_a_plain_packet_runs_from_a_store_that_reads_16_byte_units() {
    let guard: &'static mut [u8] = vec![0xFF; 8192].leak();
    let guard = ReplayGuard::new(RamFlash::<4096>::from_cells(guard), 0..8192).unwrap();
    let packets = FlashPackets::new(
        Read16(vec![0xFF; 16 * 4096]),
        0..16 * 4096,
        guard,
        None::<RamFirmware>,
    )
    .unwrap();
    let mut device = transcript_device().with_store(WithPackets {
        config: NoStore,
        packets,
    });
    device.load_config().unwrap();
    let mut h = Harness::from_device(device);
    h.device.seed(&[42; 32]);
    // GET /1024//7 (the current group): a plain packet not a multiple of 16 long.
    let packet = plain(1, &commands(&[frame(1, 1024, 0xFFFF, 7, &[])]));
    assert_ne!(packet.len() % 16, 0);
    assert_eq!(through_store(&mut h, &packet), "0000030000009000");
}

// ---------------------------------------------------------------------------------------
// F7: "a packet is executed at most once" (decision 7) does not hold once a sender's ids
// have spread over more than half the 16-bit circle: three packets an attacker kept
// (ids 1, 21846, 43691, each accepted in turn) are then each accepted again, in a loop,
// for ever — not just "once its sender has moved more than 32 768 ids past it"
// (storage/replay.rs).
// ---------------------------------------------------------------------------------------

#[test]
fn f7_kept_packets_cannot_be_replayed_in_a_loop() {
    let mut h = firmware_device(ram_slot());
    let kept: Vec<Vec<u8>> = [1u16, 21846, 43691]
        .iter()
        .map(|&id| {
            signed(
                MessageType::Command,
                id,
                &commands(&[put_app_name(&format!("id{id}"))]),
            )
        })
        .collect();
    for packet in &kept {
        assert_eq!(
            direct(&mut h, packet),
            "000001009000",
            "the sender's own packets"
        );
    }
    let mut replays = 0;
    for _ in 0..3 {
        for packet in &kept {
            if direct(&mut h, packet) == "000001009000" {
                replays += 1;
            }
        }
    }
    assert_eq!(replays, 0, "replayed {replays} times");
}

// ---------------------------------------------------------------------------------------
// Held: a packet inside the encrypted tunnel, its commands waiting on a save, is
// answered sealed under the session's key.
// ---------------------------------------------------------------------------------------

#[test]
fn held_a_packet_in_the_tunnel_that_waits_is_answered_sealed() {
    let mut h = firmware_device(ram_slot());
    let (mut client, _) = common::tunnel::scram_login(&mut h);
    let packet = signed(
        MessageType::Command,
        11,
        &commands(&[frame(2, 1024, 0xFFFF, 10, &[]), put_app_name("tun")]),
    );
    let inner = frame(2, 1024, 0xFFFF, 80, &packet);
    let mut request = client.seal(&inner);
    let len = h.device.unseal(WS1, &mut request);
    let request = &request[..len];
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, request, Instant::ZERO, &mut out);
    let mut ops = 0;
    let answer = loop {
        match step {
            Step::Done(outcome) => break out[..outcome.len].to_vec(),
            Step::Pending(op) => {
                ops += 1;
                let result = h.device.perform(&op, request, &mut out);
                step = h.device.resume(result, request, Instant::ZERO, &mut out);
            }
        }
    };
    assert_eq!(ops, 2);
    assert_eq!(to_hex(&client.open(&answer)), "000001000001009000");
    assert_eq!(app_name(&mut h), "tun");
}

// ---------------------------------------------------------------------------------------
// Held (these pass): what was tried and did not break.
// ---------------------------------------------------------------------------------------

fn chunk(offset: u32, data: &[u8]) -> Vec<u8> {
    let mut body = [0u8; 300];
    let n = encode_chunk(offset, data, &mut body).unwrap();
    request_apdu(2, 1024, 0xFFFF, 82, &body[..n])
}

fn execute(crc: u32) -> Vec<u8> {
    request_apdu(2, 1024, 0xFFFF, 83, &crc.to_be_bytes())
}

#[test]
fn held_envelopes_logins_and_logouts_inside_a_packet_are_refused() {
    let mut h = firmware_device(ram_slot());
    let inner_packet = plain(1, &commands(&[put_app_name("inner")]));
    let multi = {
        let mut body = Vec::new();
        let f = put_app_name("multi");
        body.extend_from_slice(&(f.len() as u16).to_be_bytes());
        body.extend_from_slice(&f);
        body.push(0xFF);
        frame(1, 1024, 0xFFFF, 89, &body)
    };
    let login = hex(LOGIN_ADMIN)[5..].to_vec();
    let logout = hex(LOGOUT)[5..].to_vec();
    let packet = signed(
        MessageType::Command,
        1,
        &commands(&[
            frame(2, 1024, 0xFFFF, 80, &inner_packet),
            frame(2, 1024, 0xFFFF, 83, &[0, 0, 0, 0]),
            multi,
            login,
            logout,
            frame(1, 1024, 0xFFFF, 47, &[]),
            frame(1, 1024, 0xFFFF, 45, &[0; 16]),
            frame(1, 1024, 0xFFFF, 7, &[]),
        ]),
    );
    // 80 nested packet, 80 nested store execute, 80 nested multi, 81 login, 81 logout,
    // 81 new key, 81 IV, then the group: admin (ffff).
    assert_eq!(
        direct(&mut h, &packet),
        "00000180000180000180000181000181000181000181000300ffff9000"
    );
    assert_eq!(app_name(&mut h), "");
    // The session was neither taken nor ended by them: WS1 owns it, anonymous.
    assert_eq!(h.tx(GET_GROUP), "0000009000");
}

#[test]
fn held_a_plain_packet_in_an_admin_tunnel_runs_as_anonymous() {
    let mut h = firmware_device(ram_slot());
    let (mut client, _) = common::tunnel::scram_login(&mut h);
    let packet = plain(
        1,
        &commands(&[put_app_name("x"), frame(1, 1024, 0xFFFF, 7, &[])]),
    );
    let answer = h.send_on(WS1, &client.seal(&frame(2, 1024, 0xFFFF, 80, &packet)));
    assert_eq!(to_hex(&client.open(&answer)), "0000018100030000009000");
}

#[test]
fn held_store_edges() {
    let mut h = firmware_device(ram_slot());
    let info = |h: &mut Harness<_, _>| to_hex(&h.send_on(WS1, &get_apdu(1024, 0xFFFF, 81)));
    // A gap, an offset past 32 bits, a chunk past the store: refused, still EMPTY.
    assert_eq!(to_hex(&h.send_on(WS1, &chunk(16, &[0; 16]))), "869000");
    let mut far = vec![0x80, 0x01, 0x0F, 0xFF, 0xFF, 0xFF];
    far.extend_from_slice(&[0; 16]);
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &far))),
        "869000"
    );
    let mut past = vec![0x80, 0x01];
    past.extend_from_slice(&((128 * 1024 / 16) as u32).to_be_bytes());
    past.extend_from_slice(&[0; 16]);
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &past))),
        "869000"
    );
    // Past 32 bits once in bytes: malformed.
    let mut wrap = vec![0x80, 0x01, 0x10, 0, 0, 0];
    wrap.extend_from_slice(&[0; 16]);
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 82, &wrap))),
        "869000"
    );
    assert_eq!(info(&mut h), "00000000019000");
    // The last unit of the store: FULL only once loaded to the end.
    let packet = signed(MessageType::Command, 1, &commands(&[put_app_name("full")]));
    let mut padded = packet.clone();
    padded.resize(packet.len().div_ceil(16) * 16, 0);
    assert_eq!(to_hex(&h.send_on(WS1, &chunk(0, &padded))), "009000");
    // Offset 0 sent again with other data restarts the packet with that data: the
    // execute CRC of the first data no longer matches.
    let mut other = padded.clone();
    other[20] ^= 1;
    assert_eq!(to_hex(&h.send_on(WS1, &chunk(0, &other))), "009000");
    assert_eq!(
        to_hex(&h.send_on(WS1, &execute(crc32(&padded, None)))),
        "869000",
        "offset 0 restarted the packet: the damaged copy is what is loaded"
    );
    assert_eq!(info(&mut h), "00000000019000");
    assert_eq!(to_hex(&h.send_on(WS1, &chunk(0, &padded))), "009000");
    assert_eq!(
        to_hex(&h.send_on(WS1, &chunk(16, &padded[16..32]))),
        "009000"
    );
    assert_eq!(
        to_hex(&h.send_on(WS1, &execute(crc32(&padded, None)))),
        "000001009000"
    );
    assert_eq!(app_name(&mut h), "full");
}

/// The store through a wrapper that corrupts one byte of the packet's second read-through
/// (a flash that reads back differently, an attacker on the SPI bus between the passes).
struct Fickle<P> {
    inner: P,
    reads_at_32: u32,
}

impl<P: lwm2m_core::packets::PacketStorage> lwm2m_core::packets::PacketStorage for Fickle<P> {
    fn capacity(&self) -> u32 {
        self.inner.capacity()
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), lwm2m_core::storage::StoreError> {
        self.inner.write(offset, data)
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), lwm2m_core::storage::StoreError> {
        self.inner.read(offset, buf)?;
        if offset <= 80 && offset + buf.len() as u32 > 80 {
            self.reads_at_32 += 1;
            if self.reads_at_32 == 2 {
                buf[(80 - offset) as usize] ^= 0x01;
            }
        }
        Ok(())
    }
    fn is_new(
        &mut self,
        sender: u8,
        packet_id: u16,
        tag: u16,
    ) -> Result<bool, lwm2m_core::storage::StoreError> {
        self.inner.is_new(sender, packet_id, tag)
    }
    fn accept(
        &mut self,
        sender: u8,
        packet_id: u16,
        tag: u16,
    ) -> Result<bool, lwm2m_core::storage::StoreError> {
        self.inner.accept(sender, packet_id, tag)
    }
    fn firmware(&mut self) -> Option<&mut dyn FirmwareSink<Error = firmware::ErrorKind>> {
        self.inner.firmware()
    }
}

#[test]
fn held_a_second_pass_that_reads_otherwise_marks_nothing_bootable() {
    let store = WithPackets {
        config: NoStore,
        packets: Fickle {
            inner: packets(ram_slot()),
            reads_at_32: 0,
        },
    };
    let mut device = transcript_device().with_store(store);
    device.load_config().unwrap();
    let mut h = Harness::from_device(device);
    setup(&mut h, false);
    let img: Vec<u8> = (0..500u32).map(|i| (i * 3) as u8).collect();
    let answer = through_store(&mut h, &firmware_file(&img, 1));
    assert_ne!(answer, "009000");
    let (_, store) = h.device.into_parts();
    assert_eq!(store.packets.reads_at_32, 2, "read twice");
    assert_eq!(
        store.packets.inner.firmware_sink().unwrap().bootable(),
        None
    );
}

/// xorshift
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A signed packet whose plaintext is `mutate`d after encoding, its CRC fixed, then
/// encrypted with admin's key: what only admin could send, but malformed inside.
fn signed_raw(
    kind: MessageType,
    id: u16,
    data: &[u8],
    mutate: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut header = header(kind, id, packet::SENDER_ADMIN);
    header.encrypted = true;
    let len = packet::encoded_len(&header, data.len()).unwrap();
    let mut out = vec![0u8; len];
    let (n, written) = packet::encode(&header, 0, data, &mut out).unwrap();
    out.truncate(n);
    mutate(&mut out);
    let end = out.len() - 4;
    let crc = crc32(&out[4..end], None);
    out[end..].copy_from_slice(&crc.to_be_bytes());
    let key = packet::packet_key(
        &mut Software,
        &admin_key().0,
        b"admin",
        &written.header_bytes(),
    );
    let mut bytes = out.clone();
    let blocks = &mut bytes[16..];
    let mut iv = [0u8; 16];
    for block in blocks.chunks_mut(16) {
        for (b, v) in block.iter_mut().zip(iv) {
            *b ^= v;
        }
        let mut one = [0u8; 16];
        one.copy_from_slice(block);
        let mut arr = [one];
        lwm2m_core::crypto::Crypto::aes128_cbc_encrypt(&mut Software, &key.0, &[0; 16], &mut arr);
        block.copy_from_slice(&arr[0]);
        iv = arr[0];
    }
    bytes
}

#[test]
fn held_malformed_insides_of_signed_packets_never_panic() {
    let mut h = firmware_device(ram_slot());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut id = 1u16;
    let mut seen = std::collections::BTreeMap::new();
    for round in 0..400 {
        let kind = if round % 2 == 0 {
            MessageType::Command
        } else {
            MessageType::TargetFwUpdate
        };
        let len = (rng(&mut seed) % 90) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
        let (a, b) = (rng(&mut seed), rng(&mut seed));
        let packet = signed_raw(kind, id, &data, |p| {
            // dataSize, the image length, or any byte of the payload.
            match a % 3 {
                0 => p[20..22].copy_from_slice(&(b as u16).to_be_bytes()),
                1 if p.len() >= 26 => p[22..26].copy_from_slice(&(b as u32).to_be_bytes()),
                _ => {
                    let at = 16 + (b as usize) % (p.len() - 20);
                    p[at] = (b >> 32) as u8;
                }
            }
        });
        id = id.wrapping_add(1);
        let answer = if round % 3 == 0 {
            through_store(&mut h, &packet)
        } else {
            direct(&mut h, &packet)
        };
        assert!(answer.ends_with("9000"), "{answer}");
        *seen.entry(answer[..2].to_string()).or_insert(0) += 1;
    }
    // Most decrypted (their CRC is right): they reached the checks inside.
    assert!(seen.get("80").copied().unwrap_or(0) < 200, "{seen:?}");
    eprintln!("{seen:?}");
}

#[test]
fn held_a_packet_reads_a_target_variable_suspended() {
    let mut h = target_device();
    h.device
        .target_mut()
        .0
        .write(BASE + 16, &[0xCA, 0xFE, 0xBA, 0xBE])
        .unwrap();
    let packet = signed(
        MessageType::Command,
        1,
        &commands(&[frame(1, 1029, 1, 4, &[])]),
    );
    let request = request_apdu(2, 1024, 0xFFFF, 80, &packet);
    let mut out = [0u8; 1024];
    let mut step = h.device.start(WS1, &request, Instant::ZERO, &mut out);
    let mut ops = vec![];
    let outcome = loop {
        match step {
            Step::Pending(op) => {
                ops.push(op);
                let result = h.device.perform(&op, &request, &mut out);
                step = h.device.resume(result, &request, Instant::ZERO, &mut out);
            }
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(ops.len(), 2);
    assert_eq!(to_hex(&out[..outcome.len]), "00000500cafebabe9000");
    // The commands' area (the end of the response buffer) was wiped.
    assert!(out[outcome.len..].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------------
// F9: after a firmware image is marked bootable the port is not told: the outcome of
// `/83` carries no effect, so the device goes on running the old firmware, while the
// client's updater (§11.5: "the Tap reboots", then reconnects and checks the store is
// EMPTY) reports success.
// ---------------------------------------------------------------------------------------

#[test]
fn f9_a_firmware_update_asks_the_port_to_restart() {
    let mut h = firmware_device(ram_slot());
    let img: Vec<u8> = (0..2000u32).map(|i| (i * 11) as u8).collect();
    assert_eq!(through_store(&mut h, &firmware_file(&img, 1)), "009000");
    assert!(
        h.last.effect.is_some(),
        "no effect: the new image waits for a reset nobody asks for"
    );
}

#[test]
fn f2_a_raw_image_without_the_length_prefix_is_not_installed_truncated() {
    // A vendor file whose data is the bare image (the client's firmware file is opaque,
    // §11.5; the `length u32 | image` framing is this project's): a Cortex-M image starts
    // with its initial stack pointer, little-endian 0x20010000 = bytes 00 00 01 20,
    // which the engine reads as an image length of 0x120 = 288 bytes.
    let mut h = firmware_device(ram_slot());
    let mut raw: Vec<u8> = vec![0x00, 0x00, 0x01, 0x20, 0x41, 0x01, 0x00, 0x08];
    raw.extend((0..4000u32).map(|i| (i * 5 + 1) as u8));
    let file = signed(MessageType::TargetFwUpdate, 1, &raw);
    let answer = through_store(&mut h, &file);
    let marked = bootable(h);
    assert_eq!(
        marked, None,
        "answered {answer}: 4008 bytes of image installed as {marked:?}"
    );
}
