//! The append resources of object 1024 (`/1024//37`, `38`, `57`, `74`) streamed to a
//! flash blob store, through the blocking `Device::handle` and through `Device::start` /
//! `resume` with a store that takes several polls per operation: what is stored is what
//! the administrator sent, chunk by chunk; an empty PUT (or `POST /1024//74`) clears; a
//! chunk the region has no room for is `A7` and changes nothing; nobody but the
//! administrator gets through.
#![cfg(feature = "certificates")]

mod common;
use common::*;

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use lwm2m_core::auth::Credential;
use lwm2m_core::blob::{blob_region_len, BlobId, BlobRegion, BlobStore, FlashBlobs, WithBlobs};
use lwm2m_core::config::Profile;
use lwm2m_core::io::{IoResult, Operation};
use lwm2m_core::storage::{ConfigStore, NoStore};
use lwm2m_core::target::NoTarget;
use lwm2m_core::Step;
use lwm2m_objects::interface::blobs;
use lwm2m_objects::{standard_objects, NoHooks};

/// A RAM NOR flash: 4 KiB sectors, 4-byte writes that only clear bits.
struct RamFlash(Vec<u8>);

impl ErrorType for RamFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, at: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        let at = at as usize;
        buf.copy_from_slice(
            self.0
                .get(at..at + buf.len())
                .ok_or(NorFlashErrorKind::OutOfBounds)?,
        );
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, at: u32, data: &[u8]) -> Result<(), Self::Error> {
        assert!(
            at.is_multiple_of(4) && data.len().is_multiple_of(4),
            "aligned writes only"
        );
        let at = at as usize;
        for (cell, byte) in self.0[at..at + data.len()].iter_mut().zip(data) {
            *cell &= byte;
        }
        Ok(())
    }
}

/// Room for a 1 000-byte certificate in 220-byte chunks (one 4 KiB sector: about 17
/// chunks), and a region for each other blob.
const CERT_LEN: u32 = blob_region_len::<RamFlash>(1000, 220);
const REGIONS: &[BlobRegion] = &[
    BlobRegion::new(blobs::CERTIFICATE_PUBLIC_KEY, 0, CERT_LEN),
    BlobRegion::new(blobs::CERTIFICATE_PRIVATE_KEY, CERT_LEN, 2 * CERT_LEN),
    BlobRegion::new(blobs::BROKER_CERTIFICATE, 2 * CERT_LEN, 3 * CERT_LEN),
    BlobRegion::new(blobs::JVM_CODE, 3 * CERT_LEN, 4 * CERT_LEN),
];

type Store = WithBlobs<NoStore, FlashBlobs<RamFlash>>;

fn store() -> Store {
    let flash = RamFlash(vec![0xFF; 4 * CERT_LEN as usize]);
    WithBlobs {
        config: NoStore,
        blobs: FlashBlobs::new(flash, REGIONS).unwrap(),
    }
}

fn device() -> Harness<NoTarget, Store> {
    Harness::from_device(transcript_device().with_store(store()))
}

fn stored(blobs: &mut FlashBlobs<RamFlash>, blob: BlobId) -> Vec<u8> {
    let mut out = vec![0u8; blobs.stored_len(blob).unwrap()];
    assert_eq!(blobs.read(blob, 0, &mut out).unwrap(), out.len());
    out
}

/// After a clear, an append of `new` to `/1024//37` is the whole certificate.
fn assert_new_certificate_is_the_whole_blob(h: &mut Harness<NoTarget, Store>) {
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, b"new"))), OK);
    assert_eq!(
        stored(
            &mut h.device.store_mut().blobs,
            blobs::CERTIFICATE_PUBLIC_KEY
        ),
        b"new"
    );
}

/// A PEM-looking certificate of `n` bytes.
fn certificate(n: usize) -> Vec<u8> {
    let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    pem.extend((0..n).map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/"[(i * 7) % 44]));
    pem.truncate(n);
    pem
}

fn put(resource: u16, payload: &[u8]) -> Vec<u8> {
    request_apdu(3, 1024, 0xFFFF, resource, payload)
}

const OK: &str = "009000";

#[test]
fn the_administrator_appends_a_certificate_chunk_by_chunk_and_clears_it() {
    let mut h = device();
    let cert = certificate(1000);
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    for chunk in cert.chunks(blobs::CHUNK) {
        assert_eq!(to_hex(&h.send_on(WS1, &put(37, chunk))), OK);
    }
    let blobs = &mut h.device.store_mut().blobs;
    assert_eq!(stored(blobs, blobs::CERTIFICATE_PUBLIC_KEY), cert);
    assert_eq!(
        stored(blobs, blobs::CERTIFICATE_PRIVATE_KEY),
        b"",
        "its own region"
    );
    // Nothing of it in the configuration image.
    assert_eq!(h.device.config(), &lwm2m_core::Config::default());
    // The private key the same way.
    assert_eq!(
        to_hex(&h.send_on(WS1, &put(38, b"-----BEGIN PRIVATE KEY-----"))),
        OK
    );
    // An empty PUT clears.
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, &[]))), OK);
    let blobs = &mut h.device.store_mut().blobs;
    assert_eq!(stored(blobs, blobs::CERTIFICATE_PUBLIC_KEY), b"");
    assert_eq!(
        stored(blobs, blobs::CERTIFICATE_PRIVATE_KEY),
        b"-----BEGIN PRIVATE KEY-----"
    );
    // And appends start again from nothing.
    assert_new_certificate_is_the_whole_blob(&mut h);
}

#[test]
fn an_append_beyond_the_region_is_a7_and_changes_nothing() {
    let mut h = device();
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    let chunk = certificate(220);
    let mut sent = Vec::new();
    let answer = loop {
        let answer = to_hex(&h.send_on(WS1, &put(37, &chunk)));
        if answer != OK {
            break answer;
        }
        sent.extend_from_slice(&chunk);
        assert!(sent.len() < 8192, "the region never filled");
    };
    assert_eq!(answer, "a79000");
    assert!(sent.len() >= 1000, "the declared size fits: {}", sent.len());
    let blobs = &mut h.device.store_mut().blobs;
    assert_eq!(
        stored(blobs, blobs::CERTIFICATE_PUBLIC_KEY),
        sent,
        "unchanged"
    );
    assert_eq!(
        stored(blobs, blobs::CERTIFICATE_PRIVATE_KEY),
        b"",
        "its neighbour too"
    );
    // Still refused, still unchanged; a clear makes room.
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, &chunk))), "a79000");
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, &[]))), OK);
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, &chunk))), OK);
}

#[test]
fn only_the_administrator_writes_a_blob() {
    let mut h = device();
    // Anonymous: the rights layer answers 81, and nothing is stored.
    for resource in [37u16, 38, 57, 74] {
        assert_eq!(
            to_hex(&h.send_on(WS1, &put(resource, b"x"))),
            "819000",
            "/1024//{resource}"
        );
        assert_eq!(
            to_hex(&h.send_on(WS1, &put(resource, &[]))),
            "819000",
            "/1024//{resource}"
        );
    }
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 1024, 0xFFFF, 74, &[]))),
        "819000"
    );
    // A user neither.
    let mut config = lwm2m_core::Config::default();
    let user = Profile::new(1, b"user1").with_credential(Credential::from_password(b"pwd1"));
    config.profiles.push(user).unwrap();
    let device = lwm2m_core::Device::new(
        standard_objects(device_info(), NoHooks),
        config,
        lwm2m_core::Config::reset,
        LIMITS,
    );
    let mut h = Harness::from_device(device.with_store(store()));
    let login = {
        let mut body = [0u8; 32];
        body[..5].copy_from_slice(b"user1");
        body[16..20].copy_from_slice(b"pwd1");
        request_apdu(2, 1024, 0xFFFF, 0, &body)
    };
    assert_eq!(to_hex(&h.send_on(WS1, &login)), OK);
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, b"x"))), "819000");
    let blobs = &mut h.device.store_mut().blobs;
    for (blob, _) in lwm2m_objects::interface::BLOBS {
        assert_eq!(stored(blobs, *blob), b"", "{blob:?}");
    }
}

#[cfg(all(feature = "mqtt", feature = "jvm"))]
#[test]
fn the_broker_certificate_and_the_jvm_code_are_blobs_too() {
    let mut h = device();
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    let ca = certificate(700);
    for chunk in ca.chunks(220) {
        assert_eq!(to_hex(&h.send_on(WS1, &put(57, chunk))), OK);
    }
    for chunk in [&b"\xCA\xFE\xBA\xBE"[..], b"code"] {
        assert_eq!(to_hex(&h.send_on(WS1, &put(74, chunk))), OK);
    }
    let blobs = &mut h.device.store_mut().blobs;
    assert_eq!(stored(blobs, blobs::BROKER_CERTIFICATE), ca);
    assert_eq!(stored(blobs, blobs::JVM_CODE), b"\xCA\xFE\xBA\xBEcode");
    // clearCode takes no body.
    let clear = |body: &[u8]| request_apdu(2, 1024, 0xFFFF, 74, body);
    assert_eq!(to_hex(&h.send_on(WS1, &clear(b"x"))), "869000");
    assert_eq!(
        stored(&mut h.device.store_mut().blobs, blobs::JVM_CODE).len(),
        8
    );
    assert_eq!(to_hex(&h.send_on(WS1, &clear(&[]))), OK);
    assert_eq!(
        stored(&mut h.device.store_mut().blobs, blobs::JVM_CODE),
        b""
    );
    assert_eq!(
        stored(&mut h.device.store_mut().blobs, blobs::BROKER_CERTIFICATE),
        ca
    );
}

#[test]
fn a_device_without_a_blob_store_has_no_room() {
    let mut h = Harness::new();
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    assert_eq!(to_hex(&h.send_on(WS1, &put(37, b"x"))), "a79000");
    assert_eq!(
        to_hex(&h.send_on(WS1, &put(37, &[]))),
        OK,
        "nothing to clear"
    );
}

/// A store that completes an operation only after three polls (a flash erase).
struct SlowStore {
    store: Store,
    waited: u32,
}

impl SlowStore {
    fn poll(&mut self, op: &Operation, request: &[u8], out: &mut [u8]) -> Option<IoResult> {
        if self.waited < 3 {
            self.waited += 1;
            return None;
        }
        self.waited = 0;
        let config = lwm2m_core::Config::default();
        Some(op.perform(&config, request, out, &mut NoTarget, &mut self.store))
    }
}

/// Drives `request` on channel 1 through `store`, checking at every poll that another
/// channel is answered `A8`. Returns the answer and the operations performed.
fn drive(
    h: &mut Harness<NoTarget, NoStore>,
    store: &mut SlowStore,
    request: &[u8],
) -> (String, Vec<Operation>) {
    let mut out = [0u8; 1024];
    let mut ops = Vec::new();
    let mut step = h.device.start(WS1, request, h.now, &mut out);
    loop {
        match step {
            Step::Done(outcome) => return (to_hex(&out[..outcome.len]), ops),
            Step::Pending(op) => {
                ops.push(op);
                let result = loop {
                    match store.poll(&op, request, &mut out) {
                        Some(result) => break result,
                        None => {
                            let mut other = [0u8; 64];
                            let busy =
                                h.device
                                    .start(WS2, &get_apdu(3, 0xFFFF, 2), h.now, &mut other);
                            let Step::Done(done) = busy else {
                                panic!("another request waits")
                            };
                            assert_eq!(to_hex(&other[..done.len]), "a89000");
                        }
                    }
                };
                step = h.device.resume(result, request, h.now, &mut out);
            }
        }
    }
}

#[test]
fn a_suspended_append_stores_the_same_bytes_through_a_slow_store() {
    let mut h = Harness::new();
    let mut slow = SlowStore {
        store: store(),
        waited: 0,
    };
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    let cert = certificate(1000);
    for chunk in cert.chunks(220) {
        let (answer, ops) = drive(&mut h, &mut slow, &put(37, chunk));
        assert_eq!(answer, OK);
        assert!(
            matches!(ops[..], [Operation::AppendBlob { blob, len, .. }] if blob == blobs::CERTIFICATE_PUBLIC_KEY && usize::from(len) == chunk.len()),
            "{ops:?}"
        );
    }
    assert_eq!(
        stored(&mut slow.store.blobs, blobs::CERTIFICATE_PUBLIC_KEY),
        cert
    );
    // Two chunks in one multi-request: two operations, the data found in the request.
    let items = [put(38, b"first "), put(38, b"second")];
    let (answer, ops) = drive(&mut h, &mut slow, &multi_apdu(&items));
    assert!(answer.starts_with("00"), "{answer}");
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(
        stored(&mut slow.store.blobs, blobs::CERTIFICATE_PRIVATE_KEY),
        b"first second"
    );
    // A clear waits on the store too.
    let (answer, ops) = drive(&mut h, &mut slow, &put(37, &[]));
    assert_eq!(answer, OK);
    assert_eq!(
        ops,
        [Operation::ClearBlob {
            blob: blobs::CERTIFICATE_PUBLIC_KEY
        }]
    );
    assert_eq!(
        stored(&mut slow.store.blobs, blobs::CERTIFICATE_PUBLIC_KEY),
        b""
    );
    // A full region: A7 through the suspended path as well, the blob as it was.
    let chunk = certificate(220);
    let mut sent = Vec::new();
    loop {
        let (answer, _) = drive(&mut h, &mut slow, &put(37, &chunk));
        if answer != OK {
            assert_eq!(answer, "a79000");
            break;
        }
        sent.extend_from_slice(&chunk);
    }
    assert_eq!(
        stored(&mut slow.store.blobs, blobs::CERTIFICATE_PUBLIC_KEY),
        sent
    );
    // The store keeps nothing of it in the configuration.
    let _ = slow.store.load().unwrap();
}

/// A factory reset (`POST /3//5`) restores the factory credentials: the client
/// certificate, its private key and the JVM code of the device's former life must not
/// survive it (the configurator's sequence, factory reset then the certificate's append
/// calls, would otherwise append the new certificate to the old one).
#[test]
fn a_factory_reset_clears_the_blobs() {
    let mut h = device();
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    for (blob, group) in lwm2m_objects::interface::BLOBS {
        if group.included() {
            assert_eq!(to_hex(&h.send_on(WS1, &put(blob.0, b"old secret"))), OK);
        }
    }
    assert_eq!(
        to_hex(&h.send_on(WS1, &request_apdu(2, 3, 0xFFFF, 5, &[]))),
        OK
    );
    let blobs = &mut h.device.store_mut().blobs;
    for (blob, _) in lwm2m_objects::interface::BLOBS {
        assert_eq!(
            stored(blobs, *blob),
            b"",
            "{blob:?} survived the factory reset"
        );
    }
    // The configurator then sends the new certificate: it is the whole blob.
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    assert_new_certificate_is_the_whole_blob(&mut h);
}

#[test]
fn a_suspended_factory_reset_clears_each_blob_once_then_saves() {
    let mut h = Harness::new();
    let mut slow = SlowStore {
        store: store(),
        waited: 0,
    };
    assert_eq!(h.tx(LOGIN_ADMIN), OK);
    let (answer, _) = drive(&mut h, &mut slow, &put(38, b"old key"));
    assert_eq!(answer, OK);
    let (answer, ops) = drive(&mut h, &mut slow, &request_apdu(2, 3, 0xFFFF, 5, &[]));
    assert_eq!(answer, OK);
    let mut expected: Vec<Operation> = lwm2m_objects::interface::BLOBS
        .iter()
        .filter(|(_, group)| group.included())
        .map(|&(blob, _)| Operation::ClearBlob { blob })
        .collect();
    expected.push(Operation::SaveConfig);
    assert_eq!(ops, expected);
    assert_eq!(
        stored(&mut slow.store.blobs, blobs::CERTIFICATE_PRIVATE_KEY),
        b""
    );
}
