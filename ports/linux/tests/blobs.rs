//! Certificates sent over a real WebSocket in the client's 220-byte chunks are kept in
//! `--state DIR/blobs.flash`: they survive a restart of the binary (the device still
//! knows them: its log reports them, and its region has that much less room), and a
//! clear empties them.

mod common;
use common::*;

const OK: &str = "009000";

/// `PUT /1024//57` (putBrokerCertificate) with `data`.
fn put_broker_certificate(data: &[u8]) -> String {
    format!("030400ffff0039{}", to_hex(data))
}

/// A PEM-looking certificate of `n` bytes.
fn certificate(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7) % 64])
        .collect()
}

/// Appends 220-byte chunks until the device answers anything but success; how many it
/// took, and the first other answer.
fn fill(client: &mut Client) -> (usize, String) {
    let chunk = certificate(220);
    for n in 0..100 {
        let answer = tx(client, &put_broker_certificate(&chunk));
        if answer != OK {
            return (n, answer);
        }
    }
    panic!("the region never filled");
}

#[test]
fn a_certificate_survives_a_restart_and_a_clear_empties_it() {
    // How many chunks an empty region takes.
    let fresh = TempDir::new("blobs-fresh");
    let port = Port::start(&["--state", fresh.path()], &[]);
    let mut admin = port.connect();
    assert_eq!(tx(&mut admin, &login("admin", "admin")), OK);
    let (room, full) = fill(&mut admin);
    assert_eq!(full, "a79000", "a full region is A7");
    drop(port);

    let state = TempDir::new("blobs");
    let cert = certificate(1000);
    {
        let port = Port::start(&["--state", state.path()], &[]);
        let mut admin = port.connect();
        assert_eq!(tx(&mut admin, &login("admin", "admin")), OK);
        for chunk in cert.chunks(220) {
            assert_eq!(tx(&mut admin, &put_broker_certificate(chunk)), OK);
        }
        // Killed, not stopped: what was acknowledged is on the flash already.
    }
    let flash = std::fs::read(state.0.join("blobs.flash")).unwrap();
    for chunk in cert.chunks(220) {
        assert!(
            flash.windows(chunk.len()).any(|w| w == chunk),
            "a chunk is missing from blobs.flash"
        );
    }

    let port = Port::start(&["--state", state.path()], &[("RUST_LOG", "info")]);
    let mut admin = port.connect();
    assert_eq!(tx(&mut admin, &login("admin", "admin")), OK);
    let (left, full) = fill(&mut admin);
    assert_eq!(full, "a79000");
    assert!(
        left + 4 <= room,
        "after the restart the region still holds the certificate: {left} of {room} chunks fit"
    );
    assert!(
        port.log().contains("blob /1024//57: 1000 bytes"),
        "{}",
        port.log()
    );
    // An empty PUT clears: the whole region is free again.
    assert_eq!(tx(&mut admin, &put_broker_certificate(&[])), OK);
    let (again, _) = fill(&mut admin);
    assert_eq!(again, room);
    // Anonymous cannot touch it.
    assert_eq!(tx(&mut admin, LOGOUT), OK);
    assert_eq!(tx(&mut admin, &put_broker_certificate(&[])), "819000");
}
