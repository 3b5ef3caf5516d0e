//! The single packets' replay guard (decision 7, feature `packets`): per sender, the
//! newest packetId accepted, kept in NOR flash so that a packet runs at most once, across
//! reboots and power cuts.
//!
//! The record is a key-value map (senderId → packetId) of `sequential-storage`, a
//! power-fail-safe, wear-levelled log over any [`NorFlash`]: each accepted packet appends
//! one item (its header and data under CRCs), a page is erased only once every live value
//! on it was carried to the next one, and a torn item is skipped and repaired. The crate is
//! async-only; its futures are driven here with `embassy_futures::block_on` over the
//! blocking flash (the adapter's futures never wait: every poll completes), so the guard
//! blocks like the rest of the store.
//!
//! # Order of packetIds
//!
//! A sender's packetIds only grow: a packet is accepted if its id is greater than the
//! last one accepted from its sender under the same key, or if the sender has no record
//! under its key yet (its first packet, or its first since its key — its password —
//! changed: each record carries a 16-bit tag of the key it was made under, and packets
//! under an older key no longer decrypt). Ids do not wrap: serial-number arithmetic
//! would let an attacker who kept three packets a third of the circle apart replay them
//! in a loop, each accepted replay making the next one newer. A sender that reaches
//! `FFFF` sends again once its key changes; a key used again later (a password set back
//! to an earlier one) makes the packets kept from that key's last use acceptable again:
//! never reuse a password.
//!
//! # Guarantees (and the tests that back them)
//!
//! - **Recorded before accepted**: [`ReplayGuard::accept`] answers `Ok(true)` only once the
//!   new id is written; on `Err` the packet must not run (whether the id was recorded or
//!   not, the client's retry is then refused as a replay, never run twice). Backed by
//!   `tests::a_power_cut_at_every_write_keeps_the_old_or_the_new_id`.
//! - **Power-fail safety**: a cut at any write or erase (torn or complete) leaves every
//!   sender's record as before, except the one being written, which is its old or its
//!   new id, never older, and the guard goes on accepting after the reboot. Same test,
//!   over a history that turns pages, on a flash without ECC.
//! - **Survives a restart**: `tests::the_record_survives_a_restart`.
//! - **No panic on any flash content**: `tests::arbitrary_flash_never_panics`.
//!
//! **Not guaranteed**: on a flash with ECC, whose write unit may be programmed once per
//! erase (STM32L4/H7 and the like; the store's test flash models it), a torn write leaves
//! a unit `sequential-storage` may try to program again: the guard can then answer errors
//! — refusing packets, never accepting a replay — until the region is erased
//! (`tests::on_an_ecc_flash_a_power_cut_never_lets_a_replay_through`). Erasing forgets
//! every record, so old packets would run again: erase only together with a change of
//! the senders' keys (their passwords).
//!
//! # Sizing
//!
//! The region is at least two erase sectors. An item costs an 8-byte header (rounded up
//! to the write unit) and its 3 bytes of key and value (rounded up too); every live
//! sender's item must fit the region's pages but one: a few senders need the minimum.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::ops::Range;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sequential_storage::cache::NoCache;
use sequential_storage::map::{MapConfig, MapStorage};

use crate::storage::{StoreError, StoreErrorKind};

/// Bytes of the staging buffer an operation uses: a key and a value rounded up to the
/// widest write unit `sequential-storage` supports (32 bytes).
///
/// A record is the sender's last packetId and the tag of its key, one `u32`:
/// `id << 16 | tag`.
const BUFFER_LEN: usize = 32;

/// A blocking flash seen through the async traits `sequential-storage` wants; its
/// futures complete at their first poll.
struct Blocking<F>(F);

impl<F: ErrorType> ErrorType for Blocking<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> embedded_storage_async::nor_flash::ReadNorFlash for Blocking<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::NorFlash for Blocking<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

type Map<F> = MapStorage<u8, Blocking<F>, NoCache>;

/// The replay guard over a region of a NOR flash. It keeps no RAM but the driver: every
/// call reads the flash (no cache, so that nothing in RAM can disagree with it).
pub struct ReplayGuard<F: NorFlash> {
    map: Map<F>,
}

fn map_error<E>(err: sequential_storage::Error<E>) -> StoreError {
    StoreError::new(match err {
        sequential_storage::Error::FullStorage => StoreErrorKind::TooLarge,
        _ => StoreErrorKind::Flash,
    })
}

impl<F: NorFlash> ReplayGuard<F> {
    /// The guard over `region` of `flash`: whole erase sectors, at least two
    /// ([`StoreErrorKind::Region`] otherwise). An erased region holds no record.
    pub fn new(flash: F, region: Range<u32>) -> Result<ReplayGuard<F>, StoreError> {
        let end = usize::try_from(region.end).map_err(|_| StoreErrorKind::Region)?;
        if end > flash.capacity() || F::WRITE_SIZE > BUFFER_LEN {
            return Err(StoreErrorKind::Region.into());
        }
        let config = MapConfig::<Blocking<F>>::try_new(region)
            .ok_or(StoreError::new(StoreErrorKind::Region))?;
        Ok(ReplayGuard {
            map: MapStorage::new(Blocking(flash), config, NoCache::new()),
        })
    }

    /// The newest packetId accepted from `sender` and the tag of the key it was under,
    /// `None` if none yet.
    pub fn last(&mut self, sender: u8) -> Result<Option<(u16, u16)>, StoreError> {
        let mut buffer = [0u8; BUFFER_LEN];
        let record = embassy_futures::block_on(self.map.fetch_item::<u32>(&mut buffer, &sender))
            .map_err(map_error)?;
        Ok(record.map(|word| {
            let [i0, i1, t0, t1] = word.to_be_bytes();
            (u16::from_be_bytes([i0, i1]), u16::from_be_bytes([t0, t1]))
        }))
    }

    /// Whether packet `packet_id` of `sender`, under the key of `tag`, is newer than
    /// every one accepted from it (see the module's order). Nothing is written.
    pub fn is_new(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        Ok(match self.last(sender)? {
            Some((last, last_tag)) if last_tag == tag => packet_id > last,
            // The first packet of the sender, or its first under a new key.
            _ => true,
        })
    }

    /// [`is_new`](ReplayGuard::is_new), and if so the packet is recorded before this
    /// returns `Ok(true)`. `Ok(false)` is a replay: nothing is written. On `Err` the
    /// packet must not run.
    pub fn accept(&mut self, sender: u8, packet_id: u16, tag: u16) -> Result<bool, StoreError> {
        if !self.is_new(sender, packet_id, tag)? {
            return Ok(false);
        }
        let [i0, i1] = packet_id.to_be_bytes();
        let [t0, t1] = tag.to_be_bytes();
        let record = u32::from_be_bytes([i0, i1, t0, t1]);
        let mut buffer = [0u8; BUFFER_LEN];
        embassy_futures::block_on(self.map.store_item(&mut buffer, &sender, &record))
            .map_err(map_error)?;
        Ok(true)
    }

    /// The flash back.
    pub fn into_inner(self) -> F {
        self.map.destroy().0 .0
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::storage::tests::{FaultyFlash, MemFlash, MockError, Small, Tearable, TEARS};
    use embedded_storage::nor_flash::{check_erase, check_read, check_write};
    use proptest::prelude::*;

    /// Two 1 KiB sectors of the small flash.
    const REGION: Range<u32> = 0..2048;

    #[test]
    fn only_newer_ids_are_accepted_per_sender() {
        let mut guard = ReplayGuard::new(Small::new(), REGION).unwrap();
        assert_eq!(guard.last(0xFF), Ok(None));
        assert_eq!(guard.accept(0xFF, 7, 1), Ok(true));
        assert_eq!(guard.accept(0xFF, 7, 1), Ok(false), "equal");
        assert_eq!(guard.accept(0xFF, 6, 1), Ok(false), "older");
        assert_eq!(guard.accept(0xFE, 3, 1), Ok(true), "another sender");
        assert_eq!(guard.accept(0xFF, 8, 1), Ok(true));
        assert_eq!(guard.last(0xFF), Ok(Some((8, 1))));
        assert_eq!(guard.last(0xFE), Ok(Some((3, 1))));
        assert_eq!(guard.accept(0xFF, 8 + 0x8000, 1), Ok(true), "far ahead");
        assert_eq!(guard.accept(0xFF, 0xFFFF, 1), Ok(true));
        assert_eq!(guard.accept(0xFF, 0, 1), Ok(false), "ids do not wrap");
        assert_eq!(guard.is_new(0xFF, 0xFFFF, 1), Ok(false));
        // A new key: its first packet is new whatever its id.
        assert_eq!(guard.is_new(0xFF, 0, 2), Ok(true));
        assert_eq!(guard.accept(0xFF, 0, 2), Ok(true));
        assert_eq!(guard.accept(0xFF, 0, 2), Ok(false));
        assert_eq!(guard.last(0xFF), Ok(Some((0, 2))));
    }

    #[test]
    fn kept_packets_cannot_be_replayed_in_a_loop() {
        let mut guard = ReplayGuard::new(Small::new(), REGION).unwrap();
        let kept = [1u16, 21846, 43691];
        for id in kept {
            assert_eq!(guard.accept(0xFF, id, 9), Ok(true));
        }
        for _ in 0..3 {
            for id in kept {
                assert_eq!(guard.accept(0xFF, id, 9), Ok(false), "{id} replayed");
            }
        }
    }

    #[test]
    fn the_record_survives_a_restart() {
        let mut guard = ReplayGuard::new(Small::new(), REGION).unwrap();
        for id in 1..=300u16 {
            assert_eq!(guard.accept((id % 3) as u8, id, 0), Ok(true), "id {id}");
        }
        let flash = guard.into_inner();
        let mut guard = ReplayGuard::new(flash, REGION).unwrap();
        assert_eq!(guard.last(0), Ok(Some((300, 0))));
        assert_eq!(guard.last(1), Ok(Some((298, 0))));
        assert_eq!(guard.last(2), Ok(Some((299, 0))));
        assert_eq!(guard.last(3), Ok(None));
        assert_eq!(guard.accept(0, 300, 0), Ok(false));
        assert_eq!(guard.accept(1, 299, 0), Ok(true));
    }

    #[test]
    fn a_bad_region_is_refused() {
        for region in [0..1024, 0..1000, 512..2560, 0..16 * 1024] {
            assert_eq!(
                ReplayGuard::new(Small::new(), region.clone())
                    .err()
                    .map(|e| e.kind()),
                Some(StoreErrorKind::Region),
                "{region:?}"
            );
        }
    }

    /// The records of senders 0 … 3 after replaying `history` on a fresh flash.
    fn expected(history: &[(u8, u16)]) -> [Option<u16>; 4] {
        let mut last = [None; 4];
        for &(sender, id) in history {
            last[usize::from(sender)] = Some(id);
        }
        last
    }

    fn records<M: NorFlash>(guard: &mut ReplayGuard<M>) -> Result<[Option<u16>; 4], StoreError> {
        let mut last = [None; 4];
        for (s, slot) in last.iter_mut().enumerate() {
            *slot = guard.last(s as u8)?.map(|(id, _)| id);
        }
        Ok(last)
    }

    /// A NOR flash without ECC (nRF, RP2040's QSPI, STM32F4): a write only clears bits,
    /// and a word that reads erased may be programmed again, a torn one included.
    #[derive(Clone)]
    struct NoEcc(Vec<u8>);

    impl NoEcc {
        fn new() -> Self {
            NoEcc(vec![0xFF; 2048])
        }
    }

    impl ErrorType for NoEcc {
        type Error = MockError;
    }

    impl ReadNorFlash for NoEcc {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
            check_read(self, offset, bytes.len()).map_err(MockError::Access)?;
            bytes.copy_from_slice(&self.0[offset as usize..][..bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.0.len()
        }
    }

    impl NorFlash for NoEcc {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 1024;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
            check_erase(self, from, to).map_err(MockError::Access)?;
            self.tear_erase(from, to, (to - from) as usize);
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
            check_write(self, offset, bytes.len()).map_err(MockError::Access)?;
            self.tear_write(offset, bytes, bytes.len());
            Ok(())
        }
    }

    impl Tearable for NoEcc {
        fn tear_erase(&mut self, from: u32, to: u32, keep: usize) {
            let len = keep.min((to - from) as usize);
            self.0[from as usize..][..len].fill(0xFF);
        }

        fn tear_write(&mut self, offset: u32, bytes: &[u8], keep: usize) {
            for (cell, byte) in self.0[offset as usize..].iter_mut().zip(&bytes[..keep]) {
                *cell &= byte;
            }
        }

        fn bytes_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
    }

    /// Replays a history long enough to fill both pages more than once, cutting every
    /// step at each of its operations with every kind of tear, and rebooting after each
    /// cut. `goes_on`: the guard must also accept the next packet after the reboot.
    fn cut_everywhere<M: Tearable>(mut flash: M, goes_on: bool) {
        let history: Vec<(u8, u16)> = (1..=260u16).map(|i| ((i % 4) as u8, i)).collect();
        let mut ops_seen = 0;
        for (step, &(sender, id)) in history.iter().enumerate() {
            let before = expected(&history[..step]);
            for tear in TEARS {
                for cut in 0.. {
                    let faulty = FaultyFlash::new(flash.clone(), Some(cut), tear);
                    let mut guard = ReplayGuard::new(faulty, REGION).unwrap();
                    let answer = guard.accept(sender, id, 0);
                    let faulty = guard.into_inner();
                    let done = faulty.ops <= cut;
                    ops_seen = ops_seen.max(faulty.ops);
                    // Reboot.
                    let mut guard = ReplayGuard::new(faulty.into_inner(), REGION).unwrap();
                    let Ok(after) = records(&mut guard) else {
                        assert!(!goes_on, "step {step} cut {cut} {tear:?}: unreadable");
                        continue;
                    };
                    for s in 0..4 {
                        if s != usize::from(sender) {
                            assert_eq!(after[s], before[s], "step {step} cut {cut} {tear:?}");
                        }
                    }
                    let mine = after[usize::from(sender)];
                    assert!(
                        mine == before[usize::from(sender)] || mine == Some(id),
                        "step {step} cut {cut} {tear:?}: {mine:?}"
                    );
                    if answer == Ok(true) {
                        assert_eq!(mine, Some(id), "step {step} cut {cut} {tear:?}");
                    }
                    if done {
                        assert_eq!(answer, Ok(true));
                        break;
                    }
                    assert!(answer.is_err(), "a cut is never a success");
                    let next = guard.accept(sender, id.wrapping_add(1000), 0);
                    if goes_on {
                        // The guard goes on after the reboot.
                        assert_eq!(next, Ok(true), "step {step} cut {cut} {tear:?}");
                    } else {
                        // An ECC flash may refuse, never accept a replay.
                        assert_ne!(next, Ok(false), "step {step} cut {cut} {tear:?}");
                    }
                }
            }
            let mut guard = ReplayGuard::new(flash, REGION).unwrap();
            assert_eq!(guard.accept(sender, id, 0), Ok(true));
            flash = guard.into_inner();
        }
        assert!(ops_seen >= 3, "some step turned a page");
        let mut guard = ReplayGuard::new(flash, REGION).unwrap();
        assert_eq!(records(&mut guard), Ok(expected(&history)));
    }

    #[test]
    fn a_power_cut_at_every_write_keeps_the_old_or_the_new_id() {
        cut_everywhere(NoEcc::new(), true);
    }

    #[test]
    fn on_an_ecc_flash_a_power_cut_never_lets_a_replay_through() {
        cut_everywhere(Small::new(), false);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_flash_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 2048),
            sender in any::<u8>(),
            id in any::<u16>(),
        ) {
            let mut flash = MemFlash::<2048, 1024, 4>::new();
            flash.bytes_mut().copy_from_slice(&bytes);
            let mut guard = ReplayGuard::new(flash, 0..2048).unwrap();
            let _ = guard.last(sender);
            let _ = guard.accept(sender, id, 0);
        }
    }
}
