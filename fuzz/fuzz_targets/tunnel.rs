//! The encrypted tunnel under hostile input: a device with the standard objects, its
//! encrypted session started with the anonymous key of `GET /1024//47` (read in clear, as
//! the client does), is sent records of the input either as arbitrary ciphertext in a
//! `GET /1024//48` or `GET /1024//44`, or as arbitrary plaintext inner frames the harness
//! seals as the client would (frame ids counting up; the keys, IVs and logouts of the
//! answered `/1024//47`, `/45` and `/1` followed as the client follows them, read with the
//! device's own parser, so instance 0 and multi-request items count). Every answer must be
//! a clear status (`80`, `81`, `A3`, ...) or a sealed answer that opens under the key and IV it must be under, with a well-formed
//! inner answer; the standalone `crypto::tunnel::open` never panics on any ciphertext.
//!
//! Input layout: records `ctrl u8 | len u8 | len bytes (fewer at the end)`; `ctrl` bit 0:
//! plaintext inner frame (else ciphertext), bit 1: through `/1024//44` (the IV is the
//! record's first 16 bytes for ciphertext, drawn from the input for plaintext), bit 2:
//! replay the previous sealed frame instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2m_core::crypto::{blocks_mut, tunnel, Crypto, Software};
use lwm2m_core::object::ResourceDef;
use lwm2m_core::wire::multi::MultiRequest;
use lwm2m_core::wire::{Method, Request};
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::{interface, standard_objects, DeviceInfo, NoHooks, StandardObjects};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 512,
    max_response: 512,
};
const WS: Channel = Channel::new(1, ChannelKind::WebSocket);
/// `GET /1024//47`.
const NEW_KEY: [u8; 12] = [0xa2, 0xca, 0, 0, 7, 1, 0x04, 0x00, 0xff, 0xff, 0, 47];

type TapDevice = Device<StandardObjects<NoHooks>>;

/// The client's side of the session.
struct Client {
    key: [u8; 16],
    iv_request: [u8; 16],
    iv_answer: [u8; 16],
    id: u16,
    last_sealed: Vec<u8>,
}

fn device() -> TapDevice {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "fuzz",
        serial: heapless::String::try_from("FUZZ0001").unwrap(),
        firmware_version: "1.99.0",
    };
    let mut device = Device::new(
        standard_objects(info, NoHooks),
        Config::default(),
        Config::reset,
        LIMITS,
    );
    device.seed(&[0x5a; 32]);
    device
}

/// Handles `apdu` as the run loop does (unseal, then handle); the answer.
fn send(device: &mut TapDevice, apdu: &[u8]) -> Vec<u8> {
    let mut request = apdu.to_vec();
    let len = device.unseal(WS, &mut request);
    let mut out = [0u8; LIMITS.max_response as usize];
    let outcome = device.handle(WS, &request[..len], Instant::ZERO, &mut out);
    out[..outcome.len].to_vec()
}

/// A new anonymous key, read in clear: the client side reset.
fn start(device: &mut TapDevice) -> Option<Client> {
    let answer = send(device, &NEW_KEY);
    let key: [u8; 16] = answer.get(1..17)?.try_into().ok()?;
    (answer.len() == 19 && answer[0] == 0 && answer[17..] == [0x90, 0]).then_some(Client {
        key,
        iv_request: [0; 16],
        iv_answer: [0; 16],
        id: 0,
        last_sealed: Vec::new(),
    })
}

/// `GET /1024//{resource}` carrying `payload`, as an APDU.
fn tunnel_apdu(resource: u8, payload: &[u8]) -> Vec<u8> {
    let frame_len = 7 + payload.len();
    let mut apdu = vec![
        0xa2,
        0xca,
        0,
        0,
        (frame_len % 256) as u8,
        1,
        0x04,
        0x00,
        0xff,
        0xff,
        0,
        resource,
    ];
    apdu.extend_from_slice(payload);
    apdu
}

/// Checks an answer to a tunnel request: a clear status, or a sealed answer that opens
/// under the client's key and the IV it must be under, whose inner answer is well formed.
fn check(client: &Client, with_iv: bool, answer: &[u8]) -> Option<Vec<u8>> {
    assert!(answer.len() >= 3, "an answer always has a status");
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
    if answer.len() == 3 {
        assert_ne!(
            answer[0], 0x00,
            "a tunnel request is never answered OK in clear"
        );
        return None;
    }
    assert_eq!(answer[0], 0x00, "a sealed answer is OK outside");
    let (iv, sealed) = match with_iv {
        true => (
            answer[1..17].try_into().unwrap(),
            &answer[17..answer.len() - 2],
        ),
        false => (client.iv_answer, &answer[1..answer.len() - 2]),
    };
    let mut frame = sealed.to_vec();
    let opened =
        tunnel::open(&mut Software, &client.key, &iv, &mut frame).expect("a sealed answer opens");
    let inner = &frame[opened.inner];
    assert!(
        inner.len() >= 3 && inner[inner.len() - 2..] == [0x90, 0x00],
        "inner answer framing"
    );
    Some(inner.to_vec())
}

/// What a request the device answered did to the session, as the client follows it.
enum Followed {
    /// The session goes on (under new keys or IVs, maybe).
    Session,
    /// A logout: the session ended.
    Ended,
}

/// Follows the session changes of the inner request `frame` the device answered `inner`:
/// a new key (`GET /1024//47`), an IV exchange (`GET /1024//45`, both IVs switch after
/// the answer) or a logout (`POST /1024//1`), on their own or as items of a multi-request
/// (`GET /1024//89`). The frames are read with the device's own parser, so an instance 0,
/// which a single-instance object takes for an absent one, counts as well.
fn follow(client: &mut Client, frame: &[u8], inner: &[u8]) -> Followed {
    let Some((&status, data)) = inner[..inner.len() - 2].split_first() else {
        return Followed::Session;
    };
    let Ok(request) = Request::parse_frame(frame) else {
        return Followed::Session;
    };
    let mut ivs = None;
    let mut ended = false;
    if is_interface(&request, Method::Get, 89) && status == 0 {
        let Ok(multi) = MultiRequest::parse(request.payload) else {
            return Followed::Session;
        };
        // Response items: `len u16 | status u8 | data`.
        let mut answers = data;
        for item in multi.items() {
            let Some((len, rest)) = answers.split_first_chunk::<2>() else {
                break;
            };
            let Some((answer, rest)) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))
            else {
                break;
            };
            answers = rest;
            if let (Ok(request), Some((&status, data))) =
                (Request::parse_frame(item.frame), answer.split_first())
            {
                ended |= follow_one(client, &request, status, data, &mut ivs);
            }
        }
    } else {
        ended = follow_one(client, &request, status, data, &mut ivs);
    }
    if let Some((request, answer)) = ivs {
        client.iv_request = request;
        client.iv_answer = answer;
    }
    match ended {
        true => Followed::Ended,
        false => Followed::Session,
    }
}

/// One request of [`follow`]; an IV exchange is left in `ivs` for after the answer.
/// Whether it was a logout.
fn follow_one(
    client: &mut Client,
    request: &Request<'_>,
    status: u8,
    data: &[u8],
    ivs: &mut Option<([u8; 16], [u8; 16])>,
) -> bool {
    if status != 0 {
        return false;
    }
    if is_interface(request, Method::Get, 45) {
        if let (Ok(request), Some(Ok(answer))) = (
            request.payload.try_into(),
            data.get(..16).map(<[u8; 16]>::try_from),
        ) {
            *ivs = Some((request, answer));
        }
    } else if is_interface(request, Method::Get, 47) {
        if let Some(Ok(key)) = data.get(..16).map(<[u8; 16]>::try_from) {
            client.key = key;
            client.iv_request = [0; 16];
            client.iv_answer = [0; 16];
            client.id = 0;
        }
    } else if is_interface(request, Method::Post, 1) {
        return true;
    }
    false
}

/// Whether `request` is `method` on `/1024//{resource}`, by the instance rule of the
/// object's own declaration (`ResourceDef::single`: instance absent or 0).
fn is_interface(request: &Request<'_>, method: Method, resource: u16) -> bool {
    request.method == method
        && request.path.object == interface::ID
        && ResourceDef::single(resource).matches(request.path.resource, request.path.instance)
}

fuzz_target!(|data: &[u8]| {
    // Any ciphertext under a known key and IV: no panic, a sane opened frame.
    {
        let mut frame = data.to_vec();
        let key = [7u8; 16];
        if let Ok(opened) = tunnel::open(&mut Software, &key, &[0; 16], &mut frame) {
            assert!(opened.inner.end <= frame.len());
        }
    }
    let mut device = device();
    let Some(mut client) = start(&mut device) else {
        panic!("GET /1024//47 answers a key");
    };
    let mut rest = data;
    let mut pending_iv: Option<[u8; 16]> = None;
    while let [ctrl, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (record, next) = tail.split_at(n);
        rest = next;
        let with_iv = ctrl & 2 != 0;
        let resource = if with_iv { 44 } else { 48 };
        let apdu = if ctrl & 4 != 0 && !client.last_sealed.is_empty() {
            client.last_sealed.clone()
        } else if ctrl & 1 == 0 {
            tunnel_apdu(resource, record)
        } else {
            // The client's frame: id | len | inner | zeros | CRC, encrypted.
            let mut frame = vec![0u8; tunnel::sealed_len(record.len()).unwrap()];
            frame[tunnel::HEADER_LEN..tunnel::HEADER_LEN + record.len()].copy_from_slice(record);
            let iv = match with_iv {
                true => {
                    let mut iv = [0u8; 16];
                    for (i, b) in record.iter().take(16).enumerate() {
                        iv[i] = b.wrapping_add(1);
                    }
                    iv
                }
                false => client.iv_request,
            };
            tunnel::seal(
                &mut Software,
                &client.key,
                &iv,
                client.id,
                &mut frame,
                record.len(),
            )
            .unwrap();
            client.id = client.id.wrapping_add(1);
            let payload = match with_iv {
                true => [&iv[..], &frame].concat(),
                false => frame,
            };
            let apdu = tunnel_apdu(resource, &payload);
            client.last_sealed = apdu.clone();
            if with_iv {
                pending_iv = Some(iv);
            }
            apdu
        };
        let answer = send(&mut device, &apdu);
        // A `/44` frame's IVs hold from then on only if the device took it (it answered
        // sealed): a refused one (after a `/48` under the key) changes nothing.
        if with_iv && answer.len() > 19 {
            if let Some(iv) = pending_iv.take() {
                client.iv_request = iv;
            }
            client.iv_answer = answer[1..17].try_into().unwrap();
        }
        pending_iv = None;
        match check(&client, with_iv, &answer) {
            Some(inner) if ctrl & 1 != 0 => match follow(&mut client, record, &inner) {
                Followed::Session => {}
                // A logout inside: the session ended, the harness starts again.
                Followed::Ended => match start(&mut device) {
                    Some(fresh) => client = fresh,
                    None => return,
                },
            },
            Some(_) => {}
            None if answer.len() == 3 && answer[0] != 0x80 && answer[0] != 0x81 => {
                // Not a tunnel refusal: the session ended (a logout inside): start again.
                match start(&mut device) {
                    Some(fresh) => client = fresh,
                    None => return,
                }
            }
            None => {}
        }
    }
    // The primitives agree with themselves on what the harness sealed.
    let mut block = [0u8; 16];
    Software.aes128_cbc_encrypt(
        &client.key,
        &client.iv_request,
        blocks_mut(&mut block).unwrap(),
    );
});
