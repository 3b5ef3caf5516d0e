//! The encrypted frame of the tunnel (`protocol.md` §10.2, §10.3; decision 6):
//!
//! ```text
//! frame id u16 | len u16 | inner frame (len) | zeros to a multiple of 16 with the CRC | CRC u32
//! ```
//!
//! all big-endian, the CRC (§7.1) over everything before it, the whole AES-128-CBC
//! encrypted without padding, each frame from the IV in force (IVs are not chained
//! between frames). A request's inner frame is a bare Tap request frame; an answer's is
//! `status | data | 90 00`.

use core::ops::Range;

use zeroize::Zeroize;

use super::{blocks_mut, crc32, Crypto, Iv, Key, BLOCK};

/// Bytes before the inner frame: the frame id and the length.
pub const HEADER_LEN: usize = 4;
/// Bytes of the CRC.
pub const CRC_LEN: usize = 4;

/// Why a frame did not open (each answered `80`, nothing executed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TunnelError {
    /// Not a whole number of AES blocks, or shorter than one frame.
    NotBlocks,
    /// The length field does not match the frame's size.
    Length,
    /// The CRC does not match: a damaged or forged frame, or the wrong key or IV.
    Crc,
}

/// Bytes of the sealed frame of an inner frame of `inner` bytes: header, inner frame and
/// CRC, padded to whole blocks. `None` past a 16-bit length.
pub fn sealed_len(inner: usize) -> Option<usize> {
    if inner > usize::from(u16::MAX) {
        return None;
    }
    Some((HEADER_LEN + inner + CRC_LEN).next_multiple_of(BLOCK))
}

/// An opened frame: its id and where its inner frame lies in the decrypted buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Opened {
    /// The frame id (the client's frame counter).
    pub id: u16,
    /// The inner frame's bytes in the buffer.
    pub inner: Range<usize>,
}

/// Decrypts `frame` in place with `key` from `iv` and checks its length and CRC. On an
/// error the decrypted bytes are wiped (they may be a genuine frame under a damaged CRC).
pub fn open<C: Crypto>(
    crypto: &mut C,
    key: &Key,
    iv: &Iv,
    frame: &mut [u8],
) -> Result<Opened, TunnelError> {
    if frame.len() < BLOCK {
        return Err(TunnelError::NotBlocks);
    }
    let blocks = blocks_mut(frame).ok_or(TunnelError::NotBlocks)?;
    crypto.aes128_cbc_decrypt(key, iv, blocks);
    let checked = check(frame);
    if checked.is_err() {
        frame.zeroize();
    }
    checked
}

/// [`open`] under the first of `ivs` the frame opens with: the opened frame and the index
/// of its IV. Between two tries the ciphertext is restored (encrypted back), so each IV
/// sees the frame as it came; on an error the decrypted bytes are wiped.
pub fn open_with_any<C: Crypto>(
    crypto: &mut C,
    key: &Key,
    ivs: &[Iv],
    frame: &mut [u8],
) -> Result<(Opened, usize), TunnelError> {
    if frame.len() < BLOCK {
        return Err(TunnelError::NotBlocks);
    }
    let mut error = TunnelError::NotBlocks;
    for (index, iv) in ivs.iter().enumerate() {
        let blocks = blocks_mut(frame).ok_or(TunnelError::NotBlocks)?;
        crypto.aes128_cbc_decrypt(key, iv, blocks);
        match check(frame) {
            Ok(opened) => return Ok((opened, index)),
            Err(err) => error = err,
        }
        let blocks = blocks_mut(frame).ok_or(TunnelError::NotBlocks)?;
        crypto.aes128_cbc_encrypt(key, iv, blocks);
    }
    frame.zeroize();
    Err(error)
}

/// The id and inner frame of a decrypted frame, its length and CRC checked.
fn check(frame: &[u8]) -> Result<Opened, TunnelError> {
    let (body, crc) = frame
        .split_last_chunk::<CRC_LEN>()
        .ok_or(TunnelError::NotBlocks)?;
    let &[i0, i1, l0, l1, ..] = body else {
        return Err(TunnelError::NotBlocks);
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if sealed_len(len) != Some(frame.len()) {
        return Err(TunnelError::Length);
    }
    if crc32(body, None) != u32::from_be_bytes(*crc) {
        return Err(TunnelError::Crc);
    }
    Ok(Opened {
        id: u16::from_be_bytes([i0, i1]),
        inner: HEADER_LEN..HEADER_LEN + len,
    })
}

/// Seals the inner frame of `inner` bytes at `frame[HEADER_LEN..]` as frame `id`: writes
/// the header, the zero padding and the CRC, and encrypts with `key` from `iv`. Returns
/// the sealed length; `frame` must have room for it ([`sealed_len`]).
pub fn seal<C: Crypto>(
    crypto: &mut C,
    key: &Key,
    iv: &Iv,
    id: u16,
    frame: &mut [u8],
    inner: usize,
) -> Result<usize, TunnelError> {
    let total = sealed_len(inner).ok_or(TunnelError::Length)?;
    let frame = frame.get_mut(..total).ok_or(TunnelError::Length)?;
    let crc_at = total - CRC_LEN;
    let (body, crc) = frame.split_at_mut(crc_at);
    let (header, rest) = body.split_at_mut(HEADER_LEN);
    let len = u16::try_from(inner).map_err(|_| TunnelError::Length)?;
    let [i0, i1] = id.to_be_bytes();
    let [l0, l1] = len.to_be_bytes();
    header.copy_from_slice(&[i0, i1, l0, l1]);
    rest.get_mut(inner..).ok_or(TunnelError::Length)?.fill(0);
    crc.copy_from_slice(&crc32(body, None).to_be_bytes());
    let blocks = blocks_mut(frame).ok_or(TunnelError::NotBlocks)?;
    crypto.aes128_cbc_encrypt(key, iv, blocks);
    Ok(total)
}

/// Whether frame `id` is newer than `last`, the last one accepted under the current key
/// (`None`: none yet), in serial-number arithmetic modulo 2^16 (RFC 1982): the ids of the
/// 32 767 frames after `last` are newer, the rest (`last` itself included) replays.
pub fn is_newer(id: u16, last: Option<u16>) -> bool {
    match last {
        None => true,
        Some(last) => {
            let ahead = id.wrapping_sub(last);
            ahead != 0 && ahead < 0x8000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Software;
    use crate::test_util::hex;

    fn key() -> Key {
        core::array::from_fn(|i| i as u8)
    }

    /// Seals `inner` as frame `id` under the test key, IV zero.
    fn sealed(id: u16, inner: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; sealed_len(inner.len()).unwrap()];
        frame[HEADER_LEN..HEADER_LEN + inner.len()].copy_from_slice(inner);
        let n = seal(&mut Software, &key(), &[0; 16], id, &mut frame, inner.len()).unwrap();
        assert_eq!(n, frame.len());
        frame
    }

    /// vectors.txt §B.8: the client's frames under key 00..0f, IVs zero.
    #[test]
    fn frames_are_the_client_s() {
        for (id, inner, cipher) in [
            (0, "010003ffff0002", "d47d3b6b3f2b65cbe3dc9a2e9d899e8a"),
            (
                1,
                "03040500020004cafebabe",
                "41be14d4aa2fd96469cf56f67b68c025a4017af9003282a6557964e428db4b76",
            ),
            (2, "010400ffff0007", "e71e00a93d82d22fae54a968faebeda0"),
            (
                3,
                "010400ffff002d11111111111111111111111111111111",
                "433da183853c452206ae5fa66778db7259398075336cb39a889ce2367dc3423b",
            ),
        ] {
            let inner = hex(inner);
            assert_eq!(sealed(id, &inner), hex(cipher), "frame {id}");
            let mut frame = hex(cipher);
            let opened = open(&mut Software, &key(), &[0; 16], &mut frame).unwrap();
            assert_eq!(opened.id, id);
            assert_eq!(frame[opened.inner], inner[..]);
        }
    }

    /// The live answer to `GET /3//2` under the SCRAM key of the transcript (§10.3).
    #[test]
    fn the_live_answer_opens() {
        let key: Key = hex("f46e122f9839bc7244de50a61827f060").try_into().unwrap();
        let mut frame = hex("3fda16677823e9a4e50e654891bc8a3d5e6dbc7abfb4c816441585ce203c81de");
        let opened = open(&mut Software, &key, &[0; 16], &mut frame).unwrap();
        assert_eq!(opened.id, 0);
        assert_eq!(
            frame[opened.inner.clone()],
            hex("00544150454d55303030303030303030303031 9000")[..]
        );
        // Sealed again by the device, it is the same ciphertext.
        let mut again = frame.clone();
        let n = seal(
            &mut Software,
            &key,
            &[0; 16],
            0,
            &mut again,
            opened.inner.len(),
        )
        .unwrap();
        assert_eq!(
            again[..n],
            hex("3fda16677823e9a4e50e654891bc8a3d5e6dbc7abfb4c816441585ce203c81de")[..]
        );
    }

    #[test]
    fn a_flipped_bit_a_wrong_key_or_a_bad_size_does_not_open() {
        let good = sealed(5, &hex("010003ffff0002"));
        for bit in 0..good.len() * 8 {
            let mut frame = good.clone();
            frame[bit / 8] ^= 1 << (bit % 8);
            assert!(
                open(&mut Software, &key(), &[0; 16], &mut frame).is_err(),
                "bit {bit}"
            );
            assert!(frame.iter().all(|&b| b == 0), "bit {bit}: plaintext left");
        }
        let mut frame = good.clone();
        let other = [9u8; 16];
        assert!(open(&mut Software, &other, &[0; 16], &mut frame).is_err());
        let mut frame = good.clone();
        assert!(open(&mut Software, &key(), &[1; 16], &mut frame).is_err());
        for len in [0, 1, 15, 17, 31] {
            let mut frame = vec![0u8; len];
            assert_eq!(
                open(&mut Software, &key(), &[0; 16], &mut frame),
                Err(TunnelError::NotBlocks),
                "{len} bytes"
            );
        }
        // A length field claiming more than the frame holds, under a good CRC.
        let mut frame = vec![0u8; 16];
        frame[..4].copy_from_slice(&[0, 1, 0, 0x20]);
        let crc = crc32(&frame[..12], None);
        frame[12..].copy_from_slice(&crc.to_be_bytes());
        Software.aes128_cbc_encrypt(&key(), &[0; 16], blocks_mut(&mut frame).unwrap());
        assert_eq!(
            open(&mut Software, &key(), &[0; 16], &mut frame),
            Err(TunnelError::Length)
        );
    }

    #[test]
    fn a_frame_opens_under_the_iv_it_was_sealed_with() {
        let good = sealed(5, &hex("010003ffff0002"));
        let ivs = [[7u8; 16], [0u8; 16]];
        let mut frame = good.clone();
        let (opened, index) = open_with_any(&mut Software, &key(), &ivs, &mut frame).unwrap();
        assert_eq!((opened.id, index), (5, 1));
        let mut frame = good.clone();
        assert!(open_with_any(&mut Software, &key(), &ivs[..1], &mut frame).is_err());
        assert!(frame.iter().all(|&b| b == 0));
    }

    #[test]
    fn seal_refuses_a_frame_without_room() {
        let mut frame = [0u8; 15];
        assert_eq!(
            seal(&mut Software, &key(), &[0; 16], 0, &mut frame, 7),
            Err(TunnelError::Length)
        );
        assert_eq!(sealed_len(usize::from(u16::MAX) + 1), None);
        assert_eq!(sealed_len(0), Some(16));
        assert_eq!(sealed_len(8), Some(16));
        assert_eq!(sealed_len(9), Some(32));
    }

    #[test]
    fn only_newer_ids_pass_the_replay_guard() {
        assert!(is_newer(0, None));
        assert!(is_newer(1, Some(0)));
        assert!(!is_newer(0, Some(0)));
        assert!(!is_newer(7, Some(8)));
        assert!(is_newer(0, Some(0xFFFF)), "the counter wraps");
        assert!(is_newer(0x7FFF, Some(0)));
        assert!(!is_newer(0x8000, Some(0)), "half the circle behind");
        assert!(!is_newer(0xFFFF, Some(0)));
    }
}
