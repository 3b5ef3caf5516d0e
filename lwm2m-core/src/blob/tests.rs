use super::*;
use crate::storage::tests::{
    Bytes, FaultyFlash, MemFlash, MockError, Small, Tear, Tearable, Wide, TEARS,
};
use crate::storage::FlashStore;
use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};
use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// A window `offset..offset + len` of a shared flash: a configuration store and a blob
/// store on one chip, as a board partitions its flash.
struct Part<M> {
    flash: Rc<RefCell<M>>,
    offset: u32,
    len: u32,
}

impl<M: NorFlash<Error = MockError>> ErrorType for Part<M> {
    type Error = MockError;
}

impl<M: NorFlash<Error = MockError>> ReadNorFlash for Part<M> {
    const READ_SIZE: usize = M::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        self.flash.borrow_mut().read(self.offset + offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.len as usize
    }
}

impl<M: NorFlash<Error = MockError>> NorFlash for Part<M> {
    const WRITE_SIZE: usize = M::WRITE_SIZE;
    const ERASE_SIZE: usize = M::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        self.flash
            .borrow_mut()
            .erase(self.offset + from, self.offset + to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        self.flash.borrow_mut().write(self.offset + offset, bytes)
    }
}

/// [`Wide`] with room for a configuration and the blobs of [`regions`].
type WideChip = MemFlash<{ 32 * 1024 }, 4096, 32, 8>;

const CERT: BlobId = BlobId(37);
const CODE: BlobId = BlobId(74);

/// A certificate region for 1 000 bytes (two sectors at least) and a code region of
/// one sector, from offset 0.
fn regions<F: NorFlash>() -> &'static [BlobRegion] {
    let sector = F::ERASE_SIZE as u32;
    let cert = BlobRegion::new(CERT, 0, (2 * sector).max(blob_region_len::<F>(1000, 220)));
    Box::leak(Box::new([cert, cert.then(CODE, sector)]))
}

/// `n` bytes of a certificate-like pattern.
fn pem(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b'A' + ((i as u8).wrapping_mul(7) ^ seed) % 26)
        .collect()
}

fn contents<F: NorFlash>(blobs: &mut FlashBlobs<F>, blob: BlobId) -> Vec<u8> {
    let len = blobs.stored_len(blob).unwrap();
    let mut out = vec![0u8; len + 3];
    let n = blobs.read(blob, 0, &mut out).unwrap();
    assert_eq!(n, len, "read gives what stored_len says");
    out.truncate(n);
    out
}

fn appends_read_back_and_clear<M: Tearable + Default>() {
    let mut blobs = FlashBlobs::new(M::default(), regions::<M>()).unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"", "an erased region is empty");
    let cert = pem(1000, 1);
    for chunk in cert.chunks(220) {
        blobs.append(CERT, chunk).unwrap();
    }
    blobs.append(CODE, b"code").unwrap();
    assert_eq!(contents(&mut blobs, CERT), cert);
    assert_eq!(contents(&mut blobs, CODE), b"code");
    // Reads from any offset, into any length.
    let mut part = [0u8; 300];
    assert_eq!(blobs.read(CERT, 150, &mut part).unwrap(), 300);
    assert_eq!(&part[..], &cert[150..450]);
    assert_eq!(blobs.read(CERT, 990, &mut part).unwrap(), 10);
    assert_eq!(&part[..10], &cert[990..]);
    assert_eq!(blobs.read(CERT, 5000, &mut part).unwrap(), 0);
    // After a reboot too.
    let mut blobs = FlashBlobs::new(blobs.into_inner(), regions::<M>()).unwrap();
    assert_eq!(contents(&mut blobs, CERT), cert);
    blobs.clear(CERT).unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"");
    assert_eq!(
        contents(&mut blobs, CODE),
        b"code",
        "other blobs are untouched"
    );
    blobs.append(CERT, b"again").unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"again");
    // An unknown blob: no room, nothing to clear, empty.
    let unknown = BlobId(1);
    assert_eq!(
        blobs.append(unknown, b"x").unwrap_err().kind(),
        StoreErrorKind::BlobFull
    );
    blobs.clear(unknown).unwrap();
    assert_eq!(blobs.stored_len(unknown).unwrap(), 0);
    // An empty append changes nothing.
    blobs.append(CERT, b"").unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"again");
}

impl<const S: usize, const E: usize, const W: usize, const R: usize> Default
    for MemFlash<S, E, W, R>
{
    fn default() -> Self {
        MemFlash::new()
    }
}

#[test]
fn appends_read_back_and_a_clear_empties() {
    appends_read_back_and_clear::<Small>();
    appends_read_back_and_clear::<Wide>();
    appends_read_back_and_clear::<Bytes>();
}

fn overflow_is_refused_and_changes_nothing<M: Tearable + Default>() {
    let mut blobs = FlashBlobs::new(M::default(), regions::<M>()).unwrap();
    let mut stored = Vec::new();
    let mut n = 0u8;
    loop {
        let chunk = pem(220, n);
        let room = blobs.room(CODE).unwrap();
        let before = blobs.into_inner();
        blobs = FlashBlobs::new(before.clone(), regions::<M>()).unwrap();
        match blobs.append(CODE, &chunk) {
            Ok(()) => {
                assert!(room >= 220, "room {room} but 220 bytes fit");
                stored.extend_from_slice(&chunk);
            }
            Err(err) => {
                assert_eq!(err.kind(), StoreErrorKind::BlobFull);
                assert!(room < 220, "room {room} but 220 bytes refused");
                let mut after = blobs.into_inner();
                assert_eq!(
                    after.bytes_mut(),
                    before.clone().bytes_mut(),
                    "nothing written"
                );
                blobs = FlashBlobs::new(after, regions::<M>()).unwrap();
                break;
            }
        }
        n += 1;
        assert!(n < 100);
    }
    assert!(!stored.is_empty());
    assert_eq!(contents(&mut blobs, CODE), stored);
    // What is left still takes a smaller chunk.
    let room = blobs.room(CODE).unwrap();
    if room > 0 {
        blobs.append(CODE, &pem(room, 9)).unwrap();
        stored.extend_from_slice(&pem(room, 9));
        assert_eq!(
            blobs.append(CODE, b"x").unwrap_err().result_code(),
            crate::wire::ResultCode::NvmFull
        );
    }
    assert_eq!(contents(&mut blobs, CODE), stored);
    // A chunk larger than a record can say is refused too.
    assert_eq!(
        blobs.append(CERT, &vec![0; 70_000]).unwrap_err().kind(),
        StoreErrorKind::BlobFull
    );
}

#[test]
fn an_append_beyond_the_region_is_refused_and_changes_nothing() {
    overflow_is_refused_and_changes_nothing::<Small>();
    overflow_is_refused_and_changes_nothing::<Wide>();
    overflow_is_refused_and_changes_nothing::<Bytes>();
}

/// The declared sizes hold: a blob of `n` bytes sent in 220-byte chunks fits a region of
/// `blob_region_len(n, 220)`, whatever the flash.
fn declared_sizes_fit<M: NorFlash>(n: usize) {
    let len = blob_region_len::<M>(n, 220);
    assert_eq!(len as usize % M::ERASE_SIZE, 0);
    let table: &'static [BlobRegion] = Box::leak(Box::new([BlobRegion::new(CERT, 0, len)]));
    let mut blobs = FlashBlobs::new(VecFlash::<M>::new(len as usize), table).unwrap();
    let data = pem(n, 3);
    for chunk in data.chunks(220) {
        blobs.append(CERT, chunk).unwrap();
    }
    assert_eq!(contents(&mut blobs, CERT), data);
}

/// A plain RAM NOR flash of any size with the geometry of `M`, counting the bytes read.
struct VecFlash<M>(Vec<u8>, core::marker::PhantomData<M>, usize);

impl<M> VecFlash<M> {
    fn new(len: usize) -> Self {
        VecFlash(vec![0xFF; len], core::marker::PhantomData, 0)
    }
}

impl<M> ErrorType for VecFlash<M> {
    type Error = MockError;
}

impl<M: NorFlash> ReadNorFlash for VecFlash<M> {
    const READ_SIZE: usize = M::READ_SIZE;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        let at = offset as usize;
        bytes.copy_from_slice(&self.0[at..at + bytes.len()]);
        self.2 += bytes.len();
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl<M: NorFlash> NorFlash for VecFlash<M> {
    const WRITE_SIZE: usize = M::WRITE_SIZE;
    const ERASE_SIZE: usize = M::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        self.0[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        assert_eq!(offset as usize % M::WRITE_SIZE, 0);
        assert_eq!(bytes.len() % M::WRITE_SIZE, 0);
        let at = offset as usize;
        for (cell, b) in self.0[at..at + bytes.len()].iter_mut().zip(bytes) {
            *cell &= b;
        }
        Ok(())
    }
}

#[test]
fn an_append_reads_the_ends_of_the_records_before_it_not_their_data() {
    let len = blob_region_len::<Small>(32 * 1024, 220);
    let table: &'static [BlobRegion] = Box::leak(Box::new([BlobRegion::new(CODE, 0, len)]));
    let mut blobs = FlashBlobs::new(VecFlash::<Small>::new(len as usize), table).unwrap();
    let chunk = [0x5A; 220];
    let mut read = Vec::new();
    for _ in 0..100 {
        let before = blobs.flash.2;
        blobs.append(CODE, &chunk).unwrap();
        read.push(blobs.flash.2 - before);
    }
    // What one more record before it adds to the bytes an append reads: its header, not
    // its 220 bytes of data (a 32 KiB upload would read some 2.4 MB).
    let per_record = (read[99] - read[1]) / 98;
    assert!(
        per_record <= 32,
        "{per_record} bytes read per earlier record"
    );
    let mut stored = vec![0; 100 * chunk.len()];
    assert_eq!(blobs.read(CODE, 0, &mut stored).unwrap(), stored.len());
    assert!(stored.iter().all(|&b| b == 0x5A));
}

#[test]
fn a_blob_of_the_declared_size_fits_its_region() {
    for n in [1, 219, 220, 1000, 4096] {
        declared_sizes_fit::<Small>(n);
        declared_sizes_fit::<Wide>(n);
        declared_sizes_fit::<Bytes>(n);
    }
    declared_sizes_fit::<Small>(32 * 1024);
    // 4 KiB certificates need two 4 KiB sectors (19 records of 220 bytes and their
    // headers), 32 KiB of code nine.
    type Board = MemFlash<{ 64 * 1024 }, 4096, 4>;
    assert_eq!(blob_region_len::<Board>(4096, 220), 8192);
    assert_eq!(blob_region_len::<Board>(32 * 1024, 220), 9 * 4096);
}

/// One chip: the configuration store in its first `config_len` bytes, the blobs after
/// them.
fn stores<M: NorFlash<Error = MockError>>(
    flash: Rc<RefCell<M>>,
    config_len: u32,
) -> (FlashStore<Part<M>>, FlashBlobs<Part<M>>) {
    let total = flash.borrow().capacity() as u32;
    let config = Part {
        flash: flash.clone(),
        offset: 0,
        len: config_len,
    };
    let blobs = Part {
        flash,
        offset: config_len,
        len: total - config_len,
    };
    (
        FlashStore::new(config, 0..config_len).unwrap(),
        FlashBlobs::new(blobs, regions::<M>()).unwrap(),
    )
}

/// What a reboot of `flash` finds: the configuration loaded, the certificate blob.
fn reboot<M: Tearable>(flash: M, config_len: u32) -> (Config, Vec<u8>, Rc<RefCell<M>>) {
    let shared = Rc::new(RefCell::new(flash));
    let (mut store, mut blobs) = stores(shared.clone(), config_len);
    let config = match store.load().expect("the configuration loads") {
        Loaded::Config(config) => config,
        other => panic!("the configuration does not load: {other:?}"),
    };
    let cert = contents(&mut blobs, CERT);
    (config, cert, shared)
}

/// The blob store of a chip that cuts the power.
type ChipBlobs<M> = FlashBlobs<Part<FaultyFlash<M>>>;

/// Cuts the power at every write and erase (and with every tear) of `step` (an
/// operation on the blob store of a chip holding `saved` and a blob of `before`),
/// reboots, and checks: the configuration loads as saved; the blob is `before` or
/// `after` (`after` only for a cut in the step's last write, or at any cut if
/// `anytime`); a further append
/// works (or, after a header cut before any bit changed, works once the blob is
/// cleared). Returns the number of operations of the step.
fn sweep<M: Tearable + Default>(
    prepare: &dyn Fn(&mut ChipBlobs<M>),
    step: &dyn Fn(&mut ChipBlobs<M>) -> Result<(), StoreError>,
    before: &[u8],
    after: &[u8],
    anytime: bool,
) -> usize {
    let config_len = 2 * M::ERASE_SIZE as u32;
    let saved = {
        let mut config = Config {
            inactivity_secs: 77,
            ..Config::default()
        };
        config.set_setting(1024, 9, b"Blobs").unwrap();
        config
    };
    // The chip before the step.
    let base = {
        let shared = Rc::new(RefCell::new(FaultyFlash::new(
            M::default(),
            None,
            Tear::All,
        )));
        let (mut store, mut blobs) = stores(shared.clone(), config_len);
        store.save(&saved).unwrap();
        prepare(&mut blobs);
        assert_eq!(contents(&mut blobs, CERT), before);
        drop((store, blobs));
        Rc::try_unwrap(shared)
            .ok()
            .unwrap()
            .into_inner()
            .into_inner()
    };
    let ops = {
        let shared = Rc::new(RefCell::new(FaultyFlash::new(
            base.clone(),
            None,
            Tear::All,
        )));
        let (_, mut blobs) = stores(shared.clone(), config_len);
        step(&mut blobs).unwrap();
        drop(blobs);
        let ops = shared.borrow().ops;
        ops
    };
    assert!(ops >= 1);
    let mut stuck = 0;
    for cut in 0..ops {
        for tear in TEARS {
            let shared = Rc::new(RefCell::new(FaultyFlash::new(
                base.clone(),
                Some(cut),
                tear,
            )));
            let (_, mut blobs) = stores(shared.clone(), config_len);
            assert!(step(&mut blobs).is_err(), "cut at {cut} reported");
            drop(blobs);
            let flash = Rc::try_unwrap(shared)
                .ok()
                .unwrap()
                .into_inner()
                .into_inner();
            let (config, cert, shared) = reboot(flash, config_len);
            assert_eq!(config, saved, "cut at {cut} ({tear:?}): the configuration");
            // A cut in the last write (the commit word) may leave the word whole: the
            // data was complete before it.
            if cut + 1 == ops || anytime {
                assert!(cert == after || cert == before, "cut at {cut} ({tear:?})");
            } else {
                assert_eq!(
                    cert, before,
                    "cut at {cut} ({tear:?}): earlier chunks intact"
                );
            }
            // The next append.
            let (_, mut blobs) = stores(shared, config_len);
            match blobs.append(CERT, b"next chunk") {
                Ok(()) => {
                    let mut expected = cert.clone();
                    expected.extend_from_slice(b"next chunk");
                    assert_eq!(
                        contents(&mut blobs, CERT),
                        expected,
                        "cut at {cut} ({tear:?})"
                    );
                }
                Err(err) => {
                    // Only a write unit cut before any bit changed (ECC: written once).
                    assert_eq!(err.kind(), StoreErrorKind::Flash, "cut at {cut} ({tear:?})");
                    assert!(
                        matches!(tear, Tear::Nothing),
                        "cut at {cut} ({tear:?}): {err:?}"
                    );
                    stuck += 1;
                    blobs.clear(CERT).unwrap();
                    blobs.append(CERT, b"next chunk").unwrap();
                    assert_eq!(contents(&mut blobs, CERT), b"next chunk");
                }
            }
        }
    }
    assert!(stuck <= 1, "{stuck} cuts stopped the appends");
    ops
}

fn power_cuts<M: Tearable + Default>() {
    let chunks: Vec<Vec<u8>> = (0..3).map(|i| pem(220, i)).collect();
    let three: Vec<u8> = chunks.concat();
    let fourth = pem(150, 7);
    let four = [three.clone(), fourth.clone()].concat();
    let prepare = |blobs: &mut ChipBlobs<M>| {
        for chunk in &chunks {
            blobs.append(CERT, chunk).unwrap();
        }
    };
    // An append to a blob of three chunks: header, data, commit word.
    let ops = sweep::<M>(
        &prepare,
        &|blobs| blobs.append(CERT, &fourth),
        &three,
        &four,
        false,
    );
    assert!(ops >= 3, "header, data, commit");
    // The first append: the region is opened (erased) first.
    let first = pem(220, 0);
    let ops = sweep::<M>(
        &|_| {},
        &|blobs| blobs.append(CERT, &first),
        b"",
        &first,
        false,
    );
    assert!(ops >= 5, "two erases, marker, header, data, commit");
    // A clear: the blob is the old one or empty, never a mix.
    let ops = sweep::<M>(&prepare, &|blobs| blobs.clear(CERT), &three, b"", true);
    assert!(ops >= 2);
}

#[test]
fn a_power_cut_at_every_write_keeps_earlier_chunks_and_the_configuration() {
    power_cuts::<Small>();
    power_cuts::<WideChip>();
    power_cuts::<Bytes>();
}

#[test]
fn a_clear_cut_short_never_gives_a_mix() {
    // The sweep above allows `before` for a cut clear only when nothing was erased;
    // check that a cut after the first sector's erase reads empty even though the
    // second sector still holds old records.
    let mut blobs = FlashBlobs::new(Small::new(), regions::<Small>()).unwrap();
    for i in 0..8 {
        blobs.append(CERT, &pem(220, i)).unwrap();
    }
    let mut flash = blobs.into_inner();
    flash.erase(0, Small::ERASE_SIZE as u32).unwrap();
    let mut blobs = FlashBlobs::new(flash, regions::<Small>()).unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"");
    blobs.append(CERT, b"fresh").unwrap();
    assert_eq!(
        contents(&mut blobs, CERT),
        b"fresh",
        "the old records are gone"
    );
}

#[test]
fn records_failing_their_crc_are_skipped() {
    let mut blobs = FlashBlobs::new(Small::new(), regions::<Small>()).unwrap();
    for i in 0..3 {
        blobs.append(CERT, &pem(220, i)).unwrap();
    }
    let mut flash = blobs.into_inner();
    // A data byte of the second record loses a bit.
    let second_data = 4 + (8 + 220 + 4) + 8 + 10;
    flash.bytes_mut()[second_data] &= 0x01;
    let mut blobs = FlashBlobs::new(flash, regions::<Small>()).unwrap();
    assert_eq!(
        contents(&mut blobs, CERT),
        [pem(220, 0), pem(220, 2)].concat()
    );
}

#[test]
fn regions_are_checked() {
    const SECTOR: u32 = Small::ERASE_SIZE as u32;
    const BAD: [&[BlobRegion]; 5] = [
        &[BlobRegion::new(CERT, 1, SECTOR)],
        &[BlobRegion::new(CERT, 0, SECTOR + 4)],
        &[
            BlobRegion::new(CERT, 0, 2 * SECTOR),
            BlobRegion::new(CODE, SECTOR, 3 * SECTOR),
        ],
        &[
            BlobRegion::new(CERT, 0, SECTOR),
            BlobRegion::new(CERT, SECTOR, 2 * SECTOR),
        ],
        &[BlobRegion::new(CERT, 0, 9 * SECTOR)],
    ];
    for regions in BAD {
        let err = FlashBlobs::new(Small::new(), regions).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Region, "{regions:?}");
    }
    assert!(FlashBlobs::new(Small::new(), &[]).is_ok());
    const EMPTY: &[BlobRegion] = &[BlobRegion::new(CERT, SECTOR, SECTOR)];
    assert!(FlashBlobs::new(Small::new(), EMPTY).is_err());
}

#[test]
fn with_blobs_is_one_store() {
    let mut store = WithBlobs {
        config: crate::storage::NoStore,
        blobs: FlashBlobs::new(Small::new(), regions::<Small>()).unwrap(),
    };
    store.append_blob(CERT, b"abc").unwrap();
    store.append_blob(CERT, b"def").unwrap();
    assert_eq!(contents(&mut store.blobs, CERT), b"abcdef");
    store.clear_blob(CERT).unwrap();
    assert_eq!(contents(&mut store.blobs, CERT), b"");
    assert_eq!(store.load().unwrap(), Loaded::Blank);
    // A store without blobs: no room for any.
    let mut none = crate::storage::NoStore;
    assert_eq!(
        none.append_blob(CERT, b"x").unwrap_err().result_code(),
        crate::wire::ResultCode::NvmFull
    );
    none.clear_blob(CERT).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_flash_never_panics(content in proptest::collection::vec(any::<u8>(), 8 * 1024), marker in any::<bool>()) {
        let mut flash = Small::new();
        flash.bytes_mut().copy_from_slice(&content);
        if marker {
            flash.bytes_mut()[..4].copy_from_slice(&OPEN);
        }
        let mut blobs = FlashBlobs::new(flash, regions::<Small>()).unwrap();
        let len = blobs.stored_len(CERT).unwrap();
        let mut out = vec![0u8; len + 10];
        prop_assert_eq!(blobs.read(CERT, 0, &mut out).unwrap(), len);
        let _ = blobs.room(CERT);
        // The mock refuses writes to units already written: an error, never a panic.
        let _ = blobs.append(CERT, b"chunk");
    }
}

/// Cells past the end of the log that are not erased (a torn erase that left the open
/// marker whole, a flash that wears): the record written over them does not read back,
/// and the client must not be told its chunk is stored.
#[test]
fn an_append_that_does_not_read_back_is_reported() {
    let table: &'static [BlobRegion] = Box::leak(Box::new([BlobRegion::new(CERT, 0, 1024)]));
    let mut flash = VecFlash::<Small>::new(1024);
    flash.0[..4].copy_from_slice(&OPEN);
    // The first header reads erased, the cells after it do not.
    flash.0[12..200].fill(0x00);
    let mut blobs = FlashBlobs::new(flash, table).unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"");
    match blobs.append(CERT, b"chunk") {
        Ok(()) => assert_eq!(contents(&mut blobs, CERT), b"chunk", "answered stored"),
        Err(err) => assert_eq!(err.kind(), StoreErrorKind::Flash),
    }
    // A sound region still takes appends after a refused one.
    let mut blobs = FlashBlobs::new(VecFlash::<Small>::new(1024), table).unwrap();
    blobs.append(CERT, b"chunk").unwrap();
    assert_eq!(contents(&mut blobs, CERT), b"chunk");
}
