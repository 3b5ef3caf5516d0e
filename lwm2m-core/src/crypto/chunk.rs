//! Loading a packet into the device's packet store (`protocol.md` §11.3, §11.4;
//! decision 7): the chunks of `POST /1024//82`, the execute CRC of `POST /1024//83`, and
//! the store's state of `GET /1024//81`.
//!
//! ```text
//! chunk:  format u4 | length u12 (16-byte units) | offset u16 or u32 (16-byte units) | data
//! ```
//!
//! big-endian; format `0` has a 2-byte offset, `8` a 4-byte one. The client sends the
//! packet zero-padded to a multiple of 16 in parts of at most 192 bytes, in order, then
//! the CRC (§7.1) of everything it sent.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::crc32;
use super::packet::PacketError;

/// What offsets and lengths count.
pub const UNIT: usize = 16;
const _: () = assert!(UNIT == 1 << 4);
/// The format nibble of a chunk with a 2-byte offset.
pub const FORMAT_OFFSET_2: u8 = 0;
/// The format nibble of a chunk with a 4-byte offset.
pub const FORMAT_OFFSET_4: u8 = 8;
/// The largest part the client sends (`MAX_PART_SIZE`).
pub const MAX_PART_LEN: usize = 192;

/// A chunk of `POST /1024//82`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Chunk<'a> {
    /// Where its data goes in the store, in bytes.
    pub offset: u32,
    /// The data: a whole number of 16-byte units, at least one.
    pub data: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The chunk of a `POST /1024//82` body: a known format, at least one unit, an offset
    /// that fits 32 bits in bytes, and exactly the data its length announces.
    pub fn parse(body: &'a [u8]) -> Result<Chunk<'a>, PacketError> {
        let (&[f0, f1], rest) = body.split_first_chunk::<2>().ok_or(PacketError::Chunk)?;
        let units = usize::from(u16::from_be_bytes([f0 & 0x0F, f1]));
        let (offset, data) = match f0 >> 4 {
            FORMAT_OFFSET_2 => {
                let (offset, data) = rest.split_first_chunk::<2>().ok_or(PacketError::Chunk)?;
                (u32::from(u16::from_be_bytes(*offset)), data)
            }
            FORMAT_OFFSET_4 => {
                let (offset, data) = rest.split_first_chunk::<4>().ok_or(PacketError::Chunk)?;
                (u32::from_be_bytes(*offset), data)
            }
            _ => return Err(PacketError::Chunk),
        };
        if units == 0 || units.checked_mul(UNIT) != Some(data.len()) {
            return Err(PacketError::Chunk);
        }
        let offset = offset.checked_mul(UNIT as u32).ok_or(PacketError::Chunk)?;
        Ok(Chunk { offset, data })
    }

    /// Where its data ends in the store, in bytes (`None` past 32 bits).
    pub fn end(&self) -> Option<u32> {
        u32::try_from(self.data.len())
            .ok()
            .and_then(|len| self.offset.checked_add(len))
    }
}

/// Encodes the chunk of `data` (a whole number of units, at most 4095) at `offset` bytes
/// (a multiple of 16) into `out`, with a 2-byte offset when it fits, as the client does.
/// Returns its length.
pub fn encode_chunk(offset: u32, data: &[u8], out: &mut [u8]) -> Result<usize, PacketError> {
    let units = u16::try_from(data.len() / UNIT)
        .ok()
        .filter(|&u| u != 0 && u <= 0x0FFF && data.len().is_multiple_of(UNIT))
        .ok_or(PacketError::Chunk)?;
    if !offset.is_multiple_of(UNIT as u32) {
        return Err(PacketError::Chunk);
    }
    let at = offset >> 4; // 16-byte units
    let [u0, u1] = units.to_be_bytes();
    let (head, head_len) = match u16::try_from(at) {
        Ok(short) => {
            let [o0, o1] = short.to_be_bytes();
            ([(FORMAT_OFFSET_2 << 4) | u0, u1, o0, o1, 0, 0], 4)
        }
        Err(_) => {
            let [o0, o1, o2, o3] = at.to_be_bytes();
            ([(FORMAT_OFFSET_4 << 4) | u0, u1, o0, o1, o2, o3], 6)
        }
    };
    let head = head.get(..head_len).ok_or(PacketError::Chunk)?;
    let total = head
        .len()
        .checked_add(data.len())
        .ok_or(PacketError::Chunk)?;
    let out = out.get_mut(..total).ok_or(PacketError::BufferTooSmall)?;
    let (place_head, place_data) = out.split_at_mut(head.len());
    place_head.copy_from_slice(head);
    place_data.copy_from_slice(data);
    Ok(total)
}

/// The CRC of `POST /1024//83` (§11.4) over what the store holds, fed in order, in
/// pieces of any size.
///
/// It [`matches`](ExecuteCrc::matches) the CRC of all the bytes fed, and also that of
/// the bytes fed without their last 4, 8 or 12 bytes when those are zero: the firmware
/// updater (§11.5) sends the CRC of the file **without** the zero padding to 16 bytes its
/// chunks carry, where the packet loader sends that of the chunks. The CRC of §7.1
/// consumes 4-byte words, so nothing shorter than a word is ever stripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExecuteCrc {
    /// The CRC after each of the last 4 whole words, newest first (`None`: before any).
    after: [Option<u32>; 4],
    /// Trailing words that are all zero.
    zero_words: u8,
    /// Bytes of the word being filled.
    word: [u8; 4],
    filled: u8,
}

impl Default for ExecuteCrc {
    fn default() -> Self {
        ExecuteCrc::new()
    }
}

impl ExecuteCrc {
    /// Nothing fed yet.
    pub const fn new() -> ExecuteCrc {
        ExecuteCrc {
            after: [None; 4],
            zero_words: 0,
            word: [0; 4],
            filled: 0,
        }
    }

    /// Feeds the next `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if let Some(cell) = self.word.get_mut(usize::from(self.filled)) {
                *cell = byte;
            }
            self.filled = self.filled.saturating_add(1);
            if usize::from(self.filled) == self.word.len() {
                self.push_word();
            }
        }
    }

    fn push_word(&mut self) {
        let crc = crc32(&self.word, self.after[0]);
        self.after = [Some(crc), self.after[0], self.after[1], self.after[2]];
        self.zero_words = if self.word == [0; 4] {
            self.zero_words.saturating_add(1)
        } else {
            0
        };
        self.filled = 0;
    }

    /// The CRC of every byte fed (a trailing partial word included).
    pub fn value(&self) -> u32 {
        let tail = self.word.get(..usize::from(self.filled)).unwrap_or(&[]);
        crc32(tail, self.after[0])
    }

    /// Whether `expected` is the CRC of what was fed, or of it without up to 12 trailing
    /// zero bytes (whole words).
    pub fn matches(&self, expected: u32) -> bool {
        if self.value() == expected {
            return true;
        }
        if self.filled != 0 {
            return false;
        }
        let strippable = usize::from(self.zero_words.min(3));
        (1..=strippable).any(|k| {
            let before = self.after.get(k).copied().flatten();
            // `None`: the CRC of nothing, its initial value.
            before.unwrap_or(crc32(&[], None)) == expected
        })
    }
}

/// The state byte of `GET /1024//81` (§11.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StoreState {
    /// 0: the device has no packet store.
    Unavailable = 0,
    /// 1: nothing loaded: ready for a packet (and "a firmware update is available").
    Empty = 1,
    /// 2: a packet is being loaded.
    Used = 2,
    /// 3: loaded up to the store's last byte.
    Full = 3,
    /// 4: writing the store failed.
    Error = 4,
}

/// The packet store's bookkeeping (decision 7): its state, how much is loaded, and the
/// execute CRC of it. Where the bytes go (RAM, flash) is the caller's: it writes a chunk
/// once [`load`](PacketStore::load) accepted it.
///
/// EMPTY → USED when a chunk is loaded (FULL when it reaches the end of the store), back
/// to EMPTY after every execute, failed or not ([`executed`](PacketStore::executed)); a
/// failed write is ERROR until the next execute empties the store. Chunks load in order:
/// each starts at or before the end of what is loaded (a chunk sent again after a lost
/// answer is accepted), never after it, so the execute CRC covers every byte from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketStore {
    state: StoreState,
    capacity: u32,
    loaded: u32,
}

impl PacketStore {
    /// An empty store of `capacity` bytes; with 0, [`StoreState::Unavailable`].
    pub const fn new(capacity: u32) -> PacketStore {
        PacketStore {
            state: if capacity == 0 {
                StoreState::Unavailable
            } else {
                StoreState::Empty
            },
            capacity,
            loaded: 0,
        }
    }

    /// The state.
    pub const fn state(&self) -> StoreState {
        self.state
    }

    /// Bytes the store holds.
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Bytes loaded from offset 0.
    pub const fn loaded(&self) -> u32 {
        self.loaded
    }

    /// The 4 bytes of `GET /1024//81`: zeros, then the state.
    pub const fn info(&self) -> [u8; 4] {
        [0, 0, 0, self.state as u8]
    }

    /// Accepts `chunk`: within the store ([`PacketError::StoreFull`] otherwise, `A7`), no
    /// gap after what is loaded ([`PacketError::ChunkGap`]), the store available. The
    /// caller then writes the chunk and reports a failed write with
    /// [`write_failed`](PacketStore::write_failed).
    pub fn load(&mut self, chunk: &Chunk<'_>) -> Result<(), PacketError> {
        if self.state == StoreState::Unavailable {
            return Err(PacketError::StoreFull);
        }
        let end = chunk.end().ok_or(PacketError::StoreFull)?;
        if end > self.capacity {
            return Err(PacketError::StoreFull);
        }
        if chunk.offset > self.loaded {
            return Err(PacketError::ChunkGap);
        }
        self.loaded = self.loaded.max(end);
        // Loaded in order again: a failed write of this chunk was sent again.
        self.state = if self.loaded == self.capacity {
            StoreState::Full
        } else {
            StoreState::Used
        };
        Ok(())
    }

    /// Writing a chunk failed: the store is in error until that chunk is loaded again or
    /// the store is emptied.
    pub fn write_failed(&mut self) {
        if self.state != StoreState::Unavailable {
            self.state = StoreState::Error;
        }
    }

    /// An execute ran, succeeded or failed: the store is empty again.
    pub fn executed(&mut self) {
        if self.state != StoreState::Unavailable {
            self.state = StoreState::Empty;
        }
        self.loaded = 0;
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use proptest::prelude::*;

    /// vectors.txt §B.10 and the live transcript: the 48-byte plain packet in two chunks.
    const CHUNK_1: &str =
        "0002 0000 60000000002c000700000000200012345fffff00001468656c6c6f2073696e67";
    const CHUNK_2: &str = "0001 0002 6c65207061636b6574210000dc7d19b4";
    const PACKET: &str = "60000000002c000700000000200012345fffff00001468656c6c6f2073696e676c65207061636b6574210000dc7d19b4";

    #[test]
    fn the_client_s_chunks_parse_and_encode() {
        let packet = hex(PACKET);
        let one = hex(CHUNK_1);
        let two = hex(CHUNK_2);
        let first = Chunk::parse(&one).unwrap();
        assert_eq!((first.offset, first.data), (0, &packet[..32]));
        assert_eq!(first.end(), Some(32));
        let second = Chunk::parse(&two).unwrap();
        assert_eq!((second.offset, second.data), (32, &packet[32..]));

        let mut out = [0u8; 64];
        let n = encode_chunk(0, &packet[..32], &mut out).unwrap();
        assert_eq!(out[..n], one[..]);
        let n = encode_chunk(32, &packet[32..], &mut out).unwrap();
        assert_eq!(out[..n], two[..]);
    }

    #[test]
    fn the_format_8_chunk_has_a_4_byte_offset() {
        let body = hex("800100010000eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        let chunk = Chunk::parse(&body).unwrap();
        assert_eq!(chunk.offset, 0x10000 * 16);
        assert_eq!(chunk.data, &[0xee; 16]);
        let mut out = [0u8; 32];
        let n = encode_chunk(0x10000 * 16, &[0xee; 16], &mut out).unwrap();
        assert_eq!(out[..n], body[..]);
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for body in [
            "",
            "00",
            "0001",
            "000100",
            // Data one byte short, one byte long, none.
            "0001 0000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "0001 0000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "0000 0000",
            // Unknown formats.
            "1001 0000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "f001 0000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            // A 4-byte offset past 32 bits in bytes.
            "8001 10000000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            // Format 8 with a 2-byte offset.
            "8001 0000 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        ] {
            assert_eq!(
                Chunk::parse(&hex(body)),
                Err(PacketError::Chunk),
                "{body:?}"
            );
        }
        assert_eq!(
            PacketError::Chunk.result_code(),
            crate::ResultCode::NotAcceptable
        );
        let mut out = [0u8; 64];
        assert!(encode_chunk(0, &[0; 15], &mut out).is_err());
        assert!(encode_chunk(8, &[0; 16], &mut out).is_err());
        assert!(encode_chunk(0, &[], &mut out).is_err());
        assert_eq!(
            encode_chunk(0, &[0; 64], &mut out),
            Err(PacketError::BufferTooSmall)
        );
    }

    #[test]
    fn the_execute_crc_is_the_client_s() {
        let mut crc = ExecuteCrc::new();
        for body in [CHUNK_1, CHUNK_2] {
            crc.update(Chunk::parse(&hex(body)).unwrap().data);
        }
        assert_eq!(crc.value(), 0x82fd_103f);
        assert!(crc.matches(0x82fd_103f));
        assert!(!crc.matches(0x82fd_103e));
        // Fed a byte at a time, the same.
        let mut bytewise = ExecuteCrc::new();
        for byte in hex(PACKET) {
            bytewise.update(&[byte]);
        }
        assert_eq!(bytewise, crc);
    }

    #[test]
    fn the_execute_crc_accepts_the_file_without_its_zero_padding() {
        // A 36-byte file (a multiple of 4), loaded as 48 bytes.
        let file: Vec<u8> = (1..=36).collect();
        let mut padded = file.clone();
        padded.resize(48, 0);
        let mut crc = ExecuteCrc::new();
        crc.update(&padded);
        assert!(crc.matches(crc32(&padded, None)));
        assert!(crc.matches(crc32(&file, None)), "the unpadded file");
        assert!(crc.matches(crc32(&padded[..40], None)));
        assert!(
            !crc.matches(crc32(&file[..32], None)),
            "file bytes are never stripped"
        );
        // Not more than 12 bytes.
        let mut zeros = ExecuteCrc::new();
        zeros.update(&[0; 32]);
        assert!(zeros.matches(crc32(&[0; 20], None)));
        assert!(!zeros.matches(crc32(&[0; 16], None)));
        // The empty file, and nothing fed.
        let mut pad = ExecuteCrc::new();
        pad.update(&[0; 12]);
        assert!(pad.matches(crc32(&[], None)));
        assert!(ExecuteCrc::new().matches(0xFFFF_FFFF));
    }

    #[test]
    fn the_store_goes_empty_used_full_and_back_to_empty() {
        let mut store = PacketStore::new(64);
        assert_eq!(
            store.info(),
            [0, 0, 0, 1],
            "vectors.txt §B.10: 00000001 is EMPTY"
        );
        let one = hex(CHUNK_1);
        let chunk = Chunk::parse(&one).unwrap();
        store.load(&chunk).unwrap();
        assert_eq!(store.state(), StoreState::Used);
        // Sent again after a lost answer.
        store.load(&chunk).unwrap();
        assert_eq!(store.loaded(), 32);
        let far = [0u8; 16];
        assert_eq!(
            store.load(&Chunk {
                offset: 48,
                data: &far
            }),
            Err(PacketError::ChunkGap)
        );
        assert_eq!(
            store.load(&Chunk {
                offset: 32,
                data: &[0; 48]
            }),
            Err(PacketError::StoreFull)
        );
        assert_eq!(store.loaded(), 32, "a refused chunk changes nothing");
        store
            .load(&Chunk {
                offset: 32,
                data: &[0; 32],
            })
            .unwrap();
        assert_eq!(store.state(), StoreState::Full);
        assert_eq!(store.info()[3], 3);
        store.executed();
        assert_eq!(store.state(), StoreState::Empty);
        assert_eq!(store.loaded(), 0);

        store.load(&chunk).unwrap();
        store.write_failed();
        assert_eq!(store.state(), StoreState::Error);
        store.load(&chunk).unwrap();
        assert_eq!(
            store.state(),
            StoreState::Used,
            "the chunk whose write failed, loaded again"
        );
        store.executed();
        assert_eq!(store.state(), StoreState::Empty);

        let mut none = PacketStore::new(0);
        assert_eq!(none.info(), [0; 4]);
        assert_eq!(none.load(&chunk), Err(PacketError::StoreFull));
        none.executed();
        none.write_failed();
        assert_eq!(none.state(), StoreState::Unavailable);
    }

    proptest! {
        #[test]
        fn arbitrary_chunks_never_panic(body in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(chunk) = Chunk::parse(&body) {
                prop_assert!(!chunk.data.is_empty());
                prop_assert_eq!(chunk.data.len() % UNIT, 0);
                let mut store = PacketStore::new(u32::MAX);
                let _ = store.load(&chunk);
            }
        }

        #[test]
        fn the_crc_fed_in_pieces_is_the_whole_s(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            cut in 0usize..100,
        ) {
            let cut = cut.min(bytes.len());
            let mut crc = ExecuteCrc::new();
            crc.update(&bytes[..cut]);
            crc.update(&bytes[cut..]);
            prop_assert_eq!(crc.value(), crc32(&bytes, None));
        }
    }
}
