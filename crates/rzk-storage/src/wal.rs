//! The write-ahead log: appends, reads, truncation, purge, group commit.
//!
//! # Concurrency
//!
//! One mutex guards [`Inner`]; critical sections copy bytes into the page cache (`pwrite`) or
//! look up locations, and never wait for a disk sync, with two deliberate exceptions that are
//! rare: rolling to a new segment (the old one is synced first, so that damage can only ever be
//! at the end of the *last* segment) and `truncate_after` (which must be durable on return).
//!
//! One flusher thread does group commit:
//! 1. wait (condvar, no timer) until some append is pending;
//! 2. note the newest append sequence number and the active segment, release the lock;
//! 3. `fdatasync` the active segment; appends continue meanwhile and queue up;
//! 4. retake the lock and take every callback whose append the sync covered; release the lock
//!    and run them, after any earlier sync's that still run (callbacks run in append order, one
//!    thread at a time); go to 1. Everything appended during step 3 is covered by the next sync.
//!
//! [`Wal::append_and_sync_here`] made while no sync runs does steps 2-4 itself, on the appending
//! thread; appends made meanwhile wait for the flusher as above. At most one
//! sync runs at a time either way (`Inner::syncing`), so the durable point only moves forward.
//!
//! A failed sync fails *every* pending callback (a failed `fdatasync` may have dropped dirty
//! pages, so nothing unsynced can be trusted) and rolls the log back to the last durable offset.
//! A failed write fails its own append and cuts the file back to where that write began. Either
//! way the log stays a valid prefix and the next append works once the disk does.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::files::{
    copy_error, create_dir_durable, lock_dir, preallocate, remove_file_if_present,
    remove_temp_files, sync_dir, write_atomic, FaultInjector, IoContext,
};
use crate::format::{
    decode_frame, decode_meta, encode_frame, encode_meta, encode_segment_header, frame_bytes,
    numbered_name, HeaderError, MetaError, LOG_PREFIX, META_BYTES_MAX, META_PREFIX,
    RECORD_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES,
};
use crate::recovery::{recover, Location};
use crate::{DurableCallback, Record, RecoveryReport, StorageError, WalOptions, VERSION_DIR};

/// Recent payloads kept in memory so that reads of just-appended records (the common case: the
/// state machine applying them, the leader sending them to followers) do not touch the file.
/// 2 MiB is over ten thousand small writes, far more than apply or a healthy follower lags; a
/// miss costs a `pread` from the page cache. (At 8 MiB the cache held about 10 MiB of memory
/// with small writes: the payloads' allocations and their slots.)
const CACHE_BYTES_MAX: u64 = 2 << 20;
/// Most bytes one `pread` of consecutive records reads.
const READ_RUN_BYTES_MAX: u64 = 8 << 20;
/// Name of the file holding the purge watermark, next to the segments.
const PURGED_FILE: &str = "wal.purged";

/// Upper bounds (nanoseconds) of the buckets [`WalStats::sync_buckets`] counts group-commit
/// `fdatasync` calls in: 100 µs (a fast SSD) to 10 s (a stalled disk).
pub const SYNC_BUCKET_BOUNDS_NANOS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Buckets of [`WalStats::sync_buckets`]: one per bound, and one for longer calls.
const SYNC_BUCKETS: usize = SYNC_BUCKET_BOUNDS_NANOS.len() + 1;

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// `append` calls that succeeded.
    pub appends: u64,
    /// Records written.
    pub records: u64,
    /// Group-commit `fdatasync` calls (not counting segment rolls).
    pub syncs: u64,
    /// Of those, the ones made on the appending thread ([`Wal::append_and_sync_here`]).
    pub syncs_here: u64,
    /// Time spent in those calls, in total and the longest one, in nanoseconds.
    pub sync_nanos_total: u64,
    pub sync_nanos_max: u64,
    /// Those calls by duration: `sync_buckets[i]` counts the calls that took at most
    /// `SYNC_BUCKET_BOUNDS_NANOS[i]` and more than the bound before it; the last entry counts
    /// those longer than every bound (not cumulative, unlike Prometheus buckets).
    pub sync_buckets: [u64; SYNC_BUCKETS],
}

struct Segment {
    first_index: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Just past the last frame written.
    end_offset: u64,
    /// One past the index of the last frame (equals `first_index` when empty).
    next_index: u64,
    /// Bytes reserved with `fallocate` (at least `end_offset` once writes go past it).
    allocated_bytes: u64,
}

struct Pending {
    sequence: u64,
    done: DurableCallback,
}

/// How far the active segment is known to be on disk.
#[derive(Debug, Clone, Copy, Default)]
struct DurablePoint {
    offset: u64,
    next_index: Option<u64>,
}

/// What the flusher is about to sync, noted under the lock.
struct SyncTarget {
    file: Option<Arc<File>>,
    path: PathBuf,
    sequence: u64,
    epoch: u64,
    durable: DurablePoint,
}

/// The payloads of the newest records, in index order.
#[derive(Default)]
struct PayloadCache {
    first_index: u64,
    payloads: VecDeque<Vec<u8>>,
    bytes: u64,
}

impl PayloadCache {
    fn push(&mut self, index: u64, payload: Vec<u8>) {
        if self.payloads.is_empty() || index != self.first_index + self.payloads.len() as u64 {
            self.clear();
            self.first_index = index;
        }
        self.bytes += payload.len() as u64;
        self.payloads.push_back(payload);
        while self.bytes > CACHE_BYTES_MAX && self.payloads.len() > 1 {
            let evicted = self.payloads.pop_front().expect("not empty");
            self.bytes -= evicted.len() as u64;
            self.first_index += 1;
        }
    }

    fn get(&self, index: u64) -> Option<&Vec<u8>> {
        self.payloads
            .get(index.checked_sub(self.first_index)? as usize)
    }

    /// Keep only indexes in `[first, next)`.
    fn retain_range(&mut self, first: u64, next: u64) {
        while !self.payloads.is_empty() && self.first_index + self.payloads.len() as u64 > next {
            let evicted = self.payloads.pop_back().expect("not empty");
            self.bytes -= evicted.len() as u64;
        }
        while !self.payloads.is_empty() && self.first_index < first {
            let evicted = self.payloads.pop_front().expect("not empty");
            self.bytes -= evicted.len() as u64;
            self.first_index += 1;
        }
    }

    fn clear(&mut self) {
        self.payloads.clear();
        self.bytes = 0;
    }
}

struct Inner {
    dir: PathBuf,
    options: WalOptions,
    /// In index order; the last one is the active segment.
    segments: Vec<Segment>,
    /// Readable records, starting at `first_index`.
    locations: VecDeque<Location>,
    first_index: u64,
    /// The index the next append must carry (`None`: the log never held a record, any start goes).
    next_index: Option<u64>,
    purged_upto: Option<u64>,
    cache: PayloadCache,
    /// Sequence number of the newest append.
    sequence: u64,
    pending: VecDeque<Pending>,
    durable: DurablePoint,
    /// Bumped whenever the active segment or its durable point changes other than by a group sync,
    /// so that a sync noted before the change does not move the durable point.
    epoch: u64,
    /// Set when an I/O error could not be undone; every later write is refused.
    unusable: Option<String>,
    shutdown: bool,
    /// A group sync runs (on the flusher or an appending thread); nobody else starts one.
    syncing: bool,
    /// Durability callbacks to run, in append order (see [`deliver_in_order`]).
    callbacks: VecDeque<(DurableCallback, Result<(), StorageError>)>,
    /// The thread running callbacks from [`Inner::callbacks`], if any.
    callback_runner: Option<std::thread::ThreadId>,
    /// The flusher waits on `wake_flusher`. A notify costs a system call even with no waiter
    /// (std's condition variable does not count waiters), and most appends arrive while the
    /// flusher syncs: they notify only when this is set.
    flusher_waits: bool,
    /// Threads waiting on `callbacks_ran`, for the same reason.
    callback_waiters: usize,
}

struct Shared {
    inner: Mutex<Inner>,
    wake_flusher: Condvar,
    /// Notified when a thread stops running callbacks.
    callbacks_ran: Condvar,
    faults: FaultInjector,
    appends: AtomicU64,
    records: AtomicU64,
    syncs: AtomicU64,
    syncs_here: AtomicU64,
    sync_nanos_total: AtomicU64,
    sync_nanos_max: AtomicU64,
    sync_buckets: [AtomicU64; SYNC_BUCKETS],
}

impl Shared {
    /// A panic elsewhere must not turn every later call into a panic: the state is updated in
    /// an order that keeps it consistent at every `?`, so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The segmented write-ahead log. See the crate documentation for the format and guarantees.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    _lock: File,
}

fn run_callbacks(callbacks: Vec<(DurableCallback, Result<(), StorageError>)>) {
    for (done, result) in callbacks {
        // A panicking callback is a bug in the caller; it must not take the flusher down with it.
        if std::panic::catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
            tracing::error!("a durability callback panicked; the log carries on");
        }
    }
}

impl Wal {
    /// Open (creating if needed) the log under `<dir>/version-2/`, recovering as described in the
    /// crate documentation.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, RecoveryReport), StorageError> {
        let dir = dir.join(VERSION_DIR);
        create_dir_durable(&dir)?;
        let lock = lock_dir(&dir)?;
        remove_temp_files(&dir)?;
        let purged_upto = read_purged(&dir)?;
        let recovered = recover(&dir, purged_upto, options.preallocate_bytes)?;
        let segments: Vec<Segment> = recovered
            .segments
            .into_iter()
            .map(|segment| Segment {
                first_index: segment.first_index,
                path: segment.path,
                file: Arc::new(segment.file),
                end_offset: segment.end_offset,
                next_index: segment.next_index,
                allocated_bytes: segment.end_offset,
            })
            .collect();
        let durable = segments
            .last()
            .map(|active| DurablePoint {
                offset: active.end_offset,
                next_index: Some(active.next_index),
            })
            .unwrap_or_default();
        let inner = Inner {
            dir,
            options,
            segments,
            locations: recovered.locations.into(),
            first_index: recovered.first_index,
            next_index: recovered.next_index,
            purged_upto,
            cache: PayloadCache::default(),
            sequence: 0,
            pending: VecDeque::new(),
            durable,
            epoch: 0,
            unusable: None,
            shutdown: false,
            syncing: false,
            callbacks: VecDeque::new(),
            callback_runner: None,
            flusher_waits: false,
            callback_waiters: 0,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            wake_flusher: Condvar::new(),
            callbacks_ran: Condvar::new(),
            faults: FaultInjector::default(),
            appends: AtomicU64::new(0),
            records: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            syncs_here: AtomicU64::new(0),
            sync_nanos_total: AtomicU64::new(0),
            sync_nanos_max: AtomicU64::new(0),
            sync_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        let flusher_shared = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("rzk-wal-flusher".to_string())
            .spawn(move || flusher_main(&flusher_shared))
            .map_err(|source| StorageError::Io {
                path: PathBuf::from("<flusher thread>"),
                source,
            })?;
        Ok((
            Wal {
                shared,
                flusher: Some(flusher),
                _lock: lock,
            },
            recovered.report,
        ))
    }

    /// Append records (indexes contiguous with the log). Returns once they are readable; `done`
    /// runs once they are durable. Group commit: one fdatasync for every record appended while
    /// the previous sync ran.
    ///
    /// `done` runs exactly once, on the flusher thread (keep it short; it may call back into the
    /// log). If `append` returns `Err`, `done` has already run with an `Err` too, and none of
    /// `records` is readable unless an earlier segment of the same batch was written before a
    /// segment roll failed (the log is then a valid prefix of the batch).
    pub fn append(&self, records: Vec<Record>, done: DurableCallback) -> Result<(), StorageError> {
        self.append_then(records, done, false)
    }

    /// [`Wal::append`], but when no sync runs, sync on this thread: `done` (and the callbacks of
    /// every append the sync covers) then run here before it returns. That saves waking the
    /// flusher and being woken by it, two thread hand-offs per append, for a caller with nothing
    /// to overlap a sync with (a one-member group with no other write waiting: the caller
    /// decides). While a sync runs it is [`Wal::append`]: the flusher's next sync covers it.
    pub fn append_and_sync_here(
        &self,
        records: Vec<Record>,
        done: DurableCallback,
    ) -> Result<(), StorageError> {
        self.append_then(records, done, true)
    }

    fn append_then(
        &self,
        records: Vec<Record>,
        done: DurableCallback,
        sync_here: bool,
    ) -> Result<(), StorageError> {
        let record_count = records.len() as u64;
        let mut inner = self.shared.lock();
        match inner.append_records(records, &self.shared.faults) {
            Ok(()) => {
                inner.sequence += 1;
                let sequence = inner.sequence;
                inner.pending.push_back(Pending { sequence, done });
                self.shared.appends.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .records
                    .fetch_add(record_count, Ordering::Relaxed);
                if sync_here && !inner.syncing {
                    sync_pending(&self.shared, inner, false);
                } else {
                    let wake = inner.flusher_waits;
                    drop(inner);
                    if wake {
                        self.shared.wake_flusher.notify_one();
                    }
                }
                Ok(())
            }
            Err(AppendFailure {
                error,
                failed_pending,
            }) => {
                let mut callbacks: Vec<_> = failed_pending
                    .into_iter()
                    .map(|pending| (pending.done, Err(copy_error(&error))))
                    .collect();
                callbacks.push((done, Err(copy_error(&error))));
                deliver_in_order(&self.shared, inner, callbacks);
                Err(error)
            }
        }
    }

    /// Records with index in `[start, end)` that the log holds. The result is contiguous and
    /// starts at `max(start, first_index)`; records below the purge point or past the last
    /// index are not returned. Every frame read from disk is verified again (checksum, index).
    pub fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StorageError> {
        let inner = self.shared.lock();
        let Some(last_index) = inner.last_index() else {
            return Ok(Vec::new());
        };
        let start = start.max(inner.first_index);
        let end = end.min(last_index.saturating_add(1));
        let mut records = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        let mut index = start;
        while index < end {
            if let Some(payload) = inner.cache.get(index) {
                records.push(Record {
                    index,
                    payload: payload.clone(),
                });
                index += 1;
                continue;
            }
            let read_count = inner.read_run_from_disk(index, end, &mut records)?;
            index += read_count;
        }
        Ok(records)
    }

    /// The first readable index (`None` when the log holds no record).
    pub fn first_index(&self) -> Option<u64> {
        let inner = self.shared.lock();
        inner.last_index().map(|_| inner.first_index)
    }

    /// The last index appended, durable or not (`None` when the log holds no record).
    pub fn last_index(&self) -> Option<u64> {
        self.shared.lock().last_index()
    }

    /// The index the next append must start with (`None`: the log never held a record).
    pub fn next_index(&self) -> Option<u64> {
        self.shared.lock().next_index
    }

    /// The purge watermark: records at or below it are never served again.
    pub fn purged_upto(&self) -> Option<u64> {
        self.shared.lock().purged_upto
    }

    /// Drop every record with index > `index`. The truncation is durable on return. Callbacks of
    /// appends not yet synced still run (with `Ok` once the flusher's next sync completes).
    pub fn truncate_after(&self, index: u64) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        let result = inner.truncate_after(index);
        if result.is_ok() {
            inner.assert_invariants();
        }
        result
    }

    /// Drop records with index <= `index`. Whole segments below the point are deleted; records
    /// in a kept segment are no longer served. The watermark is stored durably first, so a
    /// restart never serves them again either. Purging at or past the last index empties the log,
    /// and the next append must then carry `index + 1`.
    pub fn purge_upto(&self, index: u64) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        let result = inner.purge_upto(index);
        if result.is_ok() {
            inner.assert_invariants();
        }
        result
    }

    /// Durably store a small named value (e.g. the Raft vote) next to the log, atomically
    /// replaced (temp file, fsync, rename, fsync dir). Names are 1 to 64 of `[A-Za-z0-9_-]`.
    pub fn save_meta(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        check_meta_name(name)?;
        if bytes.len() > META_BYTES_MAX as usize {
            let what = format!(
                "meta value {name} is {} bytes, above the {META_BYTES_MAX}-byte limit",
                bytes.len()
            );
            return Err(StorageError::InvalidArgument { what });
        }
        let dir = self.shared.lock().dir.clone();
        write_atomic(
            &dir.join(format!("{META_PREFIX}{name}")),
            &encode_meta(bytes),
        )
    }

    /// The value last stored with `save_meta`, or `None` if there is none.
    pub fn load_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_meta_name(name)?;
        let dir = self.shared.lock().dir.clone();
        read_meta_file(&dir.join(format!("{META_PREFIX}{name}")))
    }

    /// Counters: appends, records, group-commit syncs and the time they took.
    pub fn stats(&self) -> WalStats {
        WalStats {
            appends: self.shared.appends.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            syncs_here: self.shared.syncs_here.load(Ordering::Relaxed),
            sync_nanos_total: self.shared.sync_nanos_total.load(Ordering::Relaxed),
            sync_nanos_max: self.shared.sync_nanos_max.load(Ordering::Relaxed),
            sync_buckets: std::array::from_fn(|i| {
                self.shared.sync_buckets[i].load(Ordering::Relaxed)
            }),
        }
    }

    /// Test hooks that make writes or syncs fail. Not for production use.
    #[doc(hidden)]
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }
}

impl Drop for Wal {
    /// Stop the flusher after it has synced and answered everything pending.
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake_flusher.notify_one();
        if let Some(flusher) = self.flusher.take() {
            if flusher.join().is_err() {
                tracing::error!("the log flusher thread panicked");
            }
        }
    }
}

fn check_meta_name(name: &str) -> Result<(), StorageError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if valid {
        return Ok(());
    }
    Err(StorageError::InvalidArgument {
        what: format!("meta name {name:?} must be 1 to 64 of [A-Za-z0-9_-]"),
    })
}

fn read_meta_file(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match decode_meta(&bytes) {
        Ok(value) => Ok(Some(value.to_vec())),
        Err(MetaError::Header(HeaderError::UnknownVersion(version))) => {
            Err(StorageError::UnknownVersion { path: path.to_path_buf(), version })
        }
        Err(_) => Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "the meta file does not verify (it is replaced atomically, so this is media damage). To start: restore it from a backup or a healthy replica".to_string(),
        }),
    }
}

fn read_purged(dir: &Path) -> Result<Option<u64>, StorageError> {
    let path = dir.join(PURGED_FILE);
    let Some(value) = read_meta_file(&path)? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = value.as_slice().try_into().map_err(|_| StorageError::Corrupt {
        path: path.clone(),
        offset: 0,
        what: format!("the purge watermark holds {} bytes instead of 8. To start: remove the file only if no log segment was purged", value.len()),
    })?;
    Ok(Some(u64::from_le_bytes(bytes)))
}

/// An append that failed: the error, plus pending callbacks that a rollback made fail too.
struct AppendFailure {
    error: StorageError,
    failed_pending: Vec<Pending>,
}

impl From<StorageError> for AppendFailure {
    fn from(error: StorageError) -> Self {
        AppendFailure {
            error,
            failed_pending: Vec::new(),
        }
    }
}

impl Inner {
    fn last_index(&self) -> Option<u64> {
        if self.locations.is_empty() {
            return None;
        }
        Some(self.first_index + self.locations.len() as u64 - 1)
    }

    fn segment(&self, first_index: u64) -> &Segment {
        let position = self
            .segments
            .binary_search_by_key(&first_index, |segment| segment.first_index)
            .expect("every location names a live segment");
        &self.segments[position]
    }

    fn validate_records(&self, records: &[Record]) -> Result<(), StorageError> {
        let mut expected = self
            .next_index
            .or(records.first().map(|record| record.index));
        for record in records {
            let expected_index = expected.expect("set from the first record");
            if record.index != expected_index {
                return Err(StorageError::OutOfOrder {
                    expected: expected_index,
                    got: record.index,
                });
            }
            if record.payload.len() > RECORD_PAYLOAD_BYTES_MAX as usize {
                let what = format!(
                    "record {} has a {}-byte payload, above the {RECORD_PAYLOAD_BYTES_MAX}-byte limit",
                    record.index,
                    record.payload.len()
                );
                return Err(StorageError::InvalidArgument { what });
            }
            expected = expected_index.checked_add(1);
        }
        Ok(())
    }

    fn append_records(
        &mut self,
        records: Vec<Record>,
        faults: &FaultInjector,
    ) -> Result<(), AppendFailure> {
        if let Some(what) = &self.unusable {
            return Err(StorageError::Unusable { what: what.clone() }.into());
        }
        self.validate_records(&records)?;
        let mut buffer = Vec::new();
        let mut chunk: Vec<Record> = Vec::new();
        for record in records {
            let bytes = frame_bytes(record.payload.len());
            if self.needs_roll(buffer.len() as u64, bytes) {
                self.write_chunk(&mut buffer, &mut chunk, faults)?;
                self.roll(record.index, faults)?;
            }
            encode_frame(&mut buffer, record.index, &record.payload);
            chunk.push(record);
        }
        self.write_chunk(&mut buffer, &mut chunk, faults)?;
        Ok(())
    }

    /// A new segment is needed when there is none, or when the active one holds records
    /// (written, or `buffered_bytes` about to be) and a frame of `frame_bytes` more would take it
    /// past `segment_bytes_max`.
    fn needs_roll(&self, buffered_bytes: u64, frame_bytes: u64) -> bool {
        match self.segments.last() {
            None => true,
            Some(active) => {
                let holds_records = active.next_index > active.first_index || buffered_bytes > 0;
                let end = active.end_offset + buffered_bytes + frame_bytes;
                holds_records && end > self.options.segment_bytes_max
            }
        }
    }

    /// Write the encoded frames of `chunk` to the active segment, then make them readable.
    fn write_chunk(
        &mut self,
        buffer: &mut Vec<u8>,
        chunk: &mut Vec<Record>,
        faults: &FaultInjector,
    ) -> Result<(), AppendFailure> {
        if chunk.is_empty() {
            return Ok(());
        }
        let preallocate_bytes = self.options.preallocate_bytes;
        let active = self.segments.last_mut().expect("rolled before writing");
        // Pair assertion, write side: the frames about to hit the disk decode back to the
        // records, contiguous from the segment's end. Recovery and `read` check the same again.
        assert!(
            frames_match(buffer, chunk, active.next_index),
            "encoded log frames do not decode back to the records being written"
        );
        assert_eq!(
            chunk[0].index, active.next_index,
            "records continue the active segment"
        );
        let offset = active.end_offset;
        let end = offset + buffer.len() as u64;
        if end > active.allocated_bytes {
            let reserve = preallocate_bytes.max(end - active.allocated_bytes);
            if preallocate(&active.file, active.allocated_bytes, reserve) {
                active.allocated_bytes += reserve;
            }
        }
        if let Err(source) = faults.write_at(&active.file, buffer, offset) {
            let error = StorageError::Io {
                path: active.path.clone(),
                source,
            };
            // Cut the partial write off so that no stale frame can ever line up after a later one.
            self.cut_back(offset)?;
            return Err(error.into());
        }
        let segment_first_index = active.first_index;
        active.end_offset = end;
        active.next_index += chunk.len() as u64;
        let mut frame_offset = offset;
        for record in chunk.drain(..) {
            let bytes = frame_bytes(record.payload.len());
            if self.locations.is_empty() {
                self.first_index = record.index;
            }
            self.locations.push_back(Location {
                segment: segment_first_index,
                offset: frame_offset,
                frame_bytes: bytes as u32,
            });
            frame_offset += bytes;
            self.next_index = Some(record.index + 1);
            self.cache.push(record.index, record.payload);
        }
        buffer.clear();
        Ok(())
    }

    /// After a failed write: truncate the active segment back to `offset` and make that durable.
    /// If even that fails, the log refuses further writes until restarted (recovery then cuts
    /// whatever torn tail is left).
    fn cut_back(&mut self, offset: u64) -> Result<(), StorageError> {
        let active = self.segments.last_mut().expect("an active segment");
        let result = active
            .file
            .set_len(offset)
            .and_then(|()| active.file.sync_data());
        active.allocated_bytes = offset;
        match result {
            Ok(()) => Ok(()),
            Err(source) => {
                let what = format!(
                    "could not cut {} back to offset {offset} after a failed write: {source}",
                    active.path.display()
                );
                tracing::error!(what, "the log refuses writes until restarted");
                self.unusable = Some(what.clone());
                Err(StorageError::Unusable { what })
            }
        }
    }

    /// Close the active segment (cut its preallocated tail, sync it) and start a new one whose
    /// first record is `first_index`.
    fn roll(&mut self, first_index: u64, faults: &FaultInjector) -> Result<(), AppendFailure> {
        if let Some(active) = self.segments.last() {
            let (file, path, end_offset) = (
                Arc::clone(&active.file),
                active.path.clone(),
                active.end_offset,
            );
            let mut result = file.set_len(end_offset);
            if result.is_ok() && self.options.force_sync {
                result = faults.sync_data(&file);
            }
            if let Err(source) = result {
                let error = StorageError::Io { path, source };
                let failed_pending = self.fail_and_roll_back();
                return Err(AppendFailure {
                    error,
                    failed_pending,
                });
            }
            self.segments.last_mut().expect("active").allocated_bytes = end_offset;
        }
        let segment = create_segment(&self.dir, first_index, self.options.preallocate_bytes)?;
        self.durable = DurablePoint {
            offset: segment.end_offset,
            next_index: Some(first_index),
        };
        self.epoch += 1;
        self.segments.push(segment);
        Ok(())
    }

    /// A sync failed: every unsynced record is suspect. Take all pending callbacks (to fail them)
    /// and roll the log back to the durable point.
    fn fail_and_roll_back(&mut self) -> Vec<Pending> {
        let failed: Vec<Pending> = self.pending.drain(..).collect();
        self.epoch += 1;
        let Some(active) = self.segments.last_mut() else {
            return failed;
        };
        let durable = self.durable;
        let durable_next = durable.next_index.unwrap_or(active.first_index);
        active.end_offset = durable.offset;
        active.next_index = durable_next;
        if durable_next < self.first_index {
            // Records were purged before they were ever synced; the log cannot resume in place.
            let what = format!(
                "a sync failed after records up to {} were purged unsynced",
                self.first_index - 1
            );
            self.unusable = Some(what);
        }
        let keep = durable_next
            .saturating_sub(self.first_index)
            .min(self.locations.len() as u64);
        self.locations.truncate(keep as usize);
        self.next_index = Some(durable_next);
        self.cache.retain_range(self.first_index, durable_next);
        if self.cut_back(durable.offset).is_ok() {
            tracing::warn!(
                offset = durable.offset,
                "rolled the log back to its last durable record after a failed sync"
            );
        }
        failed
    }

    /// Read consecutive records from one segment with a single `pread`, verifying each frame.
    /// Returns how many were read (at least one).
    fn read_run_from_disk(
        &self,
        start: u64,
        end: u64,
        records: &mut Vec<Record>,
    ) -> Result<u64, StorageError> {
        let position = (start - self.first_index) as usize;
        let first = self.locations[position];
        let mut run_bytes = u64::from(first.frame_bytes);
        let mut count = 1u64;
        while start + count < end
            && self.cache.get(start + count).is_none()
            && run_bytes < READ_RUN_BYTES_MAX
        {
            let next = self.locations[position + count as usize];
            if next.segment != first.segment || next.offset != first.offset + run_bytes {
                break;
            }
            run_bytes += u64::from(next.frame_bytes);
            count += 1;
        }
        let segment = self.segment(first.segment);
        let mut bytes = vec![0u8; run_bytes as usize];
        std::os::unix::fs::FileExt::read_exact_at(&*segment.file, &mut bytes, first.offset)
            .at(&segment.path)?;
        let mut at = 0usize;
        for index in start..start + count {
            // Pair assertion, read side: the frame still verifies and carries the index the
            // in-memory index says it does.
            let frame = decode_frame(&bytes[at..]).map_err(|error| {
                self.damaged(segment, first.offset + at as u64, &error.describe())
            })?;
            if frame.index != index {
                let what = format!(
                    "the frame holds index {} where {index} was expected",
                    frame.index
                );
                return Err(self.damaged(segment, first.offset + at as u64, &what));
            }
            records.push(Record {
                index,
                payload: frame.payload.to_vec(),
            });
            at += frame.frame_bytes as usize;
        }
        Ok(count)
    }

    fn damaged(&self, segment: &Segment, offset: u64, what: &str) -> StorageError {
        StorageError::Corrupt {
            path: segment.path.clone(),
            offset,
            what: format!("{what} (found while reading a record back). To recover: restart rzk so recovery can check the log, or restore the data directory from a healthy replica"),
        }
    }

    fn truncate_after(&mut self, index: u64) -> Result<(), StorageError> {
        let Some(last_index) = self.last_index() else {
            return Ok(());
        };
        if index >= last_index {
            return Ok(());
        }
        let cut_index = index + 1;
        if cut_index < self.first_index {
            let what = format!(
                "truncate_after({index}) would cut below the first readable index {} (records up to {} are purged)",
                self.first_index,
                self.first_index - 1
            );
            return Err(StorageError::InvalidArgument { what });
        }
        let cut = self.locations[(cut_index - self.first_index) as usize];
        // Later segments go first: a crash in between leaves a prefix of the old log.
        self.remove_segments_after(cut.segment)?;
        if cut.offset == SEGMENT_HEADER_BYTES {
            // The cut segment would be empty; the previous one (synced when it was closed) is
            // active again.
            self.remove_segments_from(cut.segment)?;
        } else {
            let active = self.segments.last_mut().expect("the cut segment");
            assert_eq!(active.first_index, cut.segment);
            active
                .file
                .set_len(cut.offset)
                .and_then(|()| active.file.sync_data())
                .at(&active.path)?;
            active.end_offset = cut.offset;
            active.allocated_bytes = cut.offset;
            active.next_index = cut_index;
        }
        self.locations
            .truncate((cut_index - self.first_index) as usize);
        self.next_index = Some(cut_index);
        self.cache.retain_range(self.first_index, cut_index);
        self.mark_active_durable();
        Ok(())
    }

    /// The active segment is fully on disk (just synced, or just became active after a roll
    /// synced it): move the durable point to its end.
    fn mark_active_durable(&mut self) {
        self.epoch += 1;
        self.durable = match self.segments.last() {
            Some(active) => DurablePoint {
                offset: active.end_offset,
                next_index: Some(active.next_index),
            },
            None => DurablePoint::default(),
        };
    }

    fn remove_segments_after(&mut self, first_index: u64) -> Result<(), StorageError> {
        let keep = self
            .segments
            .partition_point(|segment| segment.first_index <= first_index);
        self.remove_segment_range(keep, self.segments.len())
    }

    fn remove_segments_from(&mut self, first_index: u64) -> Result<(), StorageError> {
        let keep = self
            .segments
            .partition_point(|segment| segment.first_index < first_index);
        self.remove_segment_range(keep, self.segments.len())
    }

    /// Delete segments `[from, to)` (durably), newest first.
    fn remove_segment_range(&mut self, from: usize, to: usize) -> Result<(), StorageError> {
        if from >= to {
            return Ok(());
        }
        for position in (from..to).rev() {
            let path = self.segments[position].path.clone();
            remove_file_if_present(&path)?;
            self.segments.remove(position);
        }
        sync_dir(&self.dir)
    }

    fn purge_upto(&mut self, index: u64) -> Result<(), StorageError> {
        if self.purged_upto.is_some_and(|purged| purged >= index) {
            return Ok(());
        }
        // The watermark goes to disk before any file goes away: after a crash, recovery finishes
        // the purge rather than serving records below it.
        write_atomic(
            &self.dir.join(PURGED_FILE),
            &encode_meta(&index.to_le_bytes()),
        )?;
        self.purged_upto = Some(index);
        let emptied = self.last_index().is_none_or(|last| index >= last);
        if emptied {
            self.remove_segment_range(0, self.segments.len())?;
            self.locations.clear();
            self.cache.clear();
            self.first_index = index + 1;
            self.next_index = Some(self.next_index.unwrap_or(0).max(index + 1));
            self.mark_active_durable();
            return Ok(());
        }
        if index >= self.first_index {
            self.locations
                .drain(..(index + 1 - self.first_index) as usize);
            self.first_index = index + 1;
        }
        self.cache
            .retain_range(self.first_index, self.next_index.unwrap_or(0));
        // Whole segments whose every record is at or below the point; never the active one.
        let removable = self
            .segments
            .iter()
            .take_while(|segment| segment.next_index <= index + 1)
            .count();
        let removable = removable.min(self.segments.len() - 1);
        for segment in self.segments.drain(..removable) {
            remove_file_if_present(&segment.path)?;
        }
        if removable > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Relations that every public operation leaves true.
    fn assert_invariants(&self) {
        if let Some(last) = self.last_index() {
            assert_eq!(
                self.next_index,
                Some(last + 1),
                "appends resume right after the last record"
            );
            assert!(
                self.purged_upto
                    .is_none_or(|purged| purged < self.first_index),
                "no purged record is readable"
            );
            let last_location = self.locations.back().expect("not empty");
            assert!(self
                .segments
                .iter()
                .any(|segment| segment.first_index == last_location.segment));
        }
        for pair in self.segments.windows(2) {
            assert_eq!(
                pair[0].next_index, pair[1].first_index,
                "segments chain without holes"
            );
        }
    }

    fn sync_target(&self) -> SyncTarget {
        let active = self.segments.last();
        SyncTarget {
            file: active.map(|segment| Arc::clone(&segment.file)),
            path: active
                .map(|segment| segment.path.clone())
                .unwrap_or_default(),
            sequence: self.sequence,
            epoch: self.epoch,
            durable: active
                .map(|segment| DurablePoint {
                    offset: segment.end_offset,
                    next_index: Some(segment.next_index),
                })
                .unwrap_or_default(),
        }
    }

    /// A group sync succeeded: advance the durable point (unless the active segment changed
    /// meanwhile) and take the callbacks it covered.
    fn complete_sync(&mut self, target: &SyncTarget) -> Vec<Pending> {
        if target.epoch == self.epoch {
            self.durable = target.durable;
        }
        let covered = self
            .pending
            .iter()
            .take_while(|pending| pending.sequence <= target.sequence)
            .count();
        self.pending.drain(..covered).collect()
    }
}

/// Debug half of the write-side pair assertion: the encoded buffer decodes back to `records`.
fn frames_match(buffer: &[u8], records: &[Record], first_index: u64) -> bool {
    let mut at = 0usize;
    for (position, record) in records.iter().enumerate() {
        let Ok(frame) = decode_frame(&buffer[at..]) else {
            return false;
        };
        if frame.index != first_index + position as u64
            || frame.index != record.index
            || frame.payload != record.payload.as_slice()
        {
            return false;
        }
        at += frame.frame_bytes as usize;
    }
    at == buffer.len()
}

/// Create `log.<first_index>` atomically: header and preallocation in a temp file, fsync,
/// rename, fsync the directory. A segment therefore either exists with a whole header or not.
fn create_segment(
    dir: &Path,
    first_index: u64,
    preallocate_bytes: u64,
) -> Result<Segment, StorageError> {
    let path = dir.join(numbered_name(LOG_PREFIX, first_index));
    let temp = crate::files::temp_path(&path);
    let created = (|| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .at(&temp)?;
        std::os::unix::fs::FileExt::write_all_at(&file, &encode_segment_header(first_index), 0)
            .at(&temp)?;
        let allocated_bytes = if preallocate(&file, SEGMENT_HEADER_BYTES, preallocate_bytes) {
            SEGMENT_HEADER_BYTES + preallocate_bytes
        } else {
            tracing::warn!(path = %temp.display(), preallocate_bytes, "could not preallocate a log segment; continuing without");
            SEGMENT_HEADER_BYTES
        };
        file.sync_all().at(&temp)?;
        std::fs::rename(&temp, &path).at(&path)?;
        sync_dir(dir)?;
        Ok((file, allocated_bytes))
    })();
    let (file, allocated_bytes) = created.inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(Segment {
        first_index,
        path,
        file: Arc::new(file),
        end_offset: SEGMENT_HEADER_BYTES,
        next_index: first_index,
        allocated_bytes,
    })
}

/// The group-commit loop (see the module documentation).
fn flusher_main(shared: &Shared) {
    let mut inner = shared.lock();
    loop {
        while inner.syncing || (inner.pending.is_empty() && !inner.shutdown) {
            inner.flusher_waits = true;
            inner = shared
                .wake_flusher
                .wait(inner)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            inner.flusher_waits = false;
        }
        if inner.pending.is_empty() {
            return;
        }
        sync_pending(shared, inner, true);
        inner = shared.lock();
    }
}

/// One group sync: sync the active segment up to the newest append, then run the callbacks it
/// covered (or fail them all). Called with the lock held and no sync running; the lock is
/// released during the sync and while the callbacks run ([`deliver_in_order`]).
/// `on_flusher`: called by the flusher itself, which need not be woken for what is left.
fn sync_pending<'a>(shared: &'a Shared, mut inner: MutexGuard<'a, Inner>, on_flusher: bool) {
    assert!(!inner.syncing, "one group sync at a time");
    inner.syncing = true;
    let target = inner.sync_target();
    let force_sync = inner.options.force_sync;
    drop(inner);
    let result = match &target.file {
        Some(file) if force_sync => {
            shared.syncs.fetch_add(1, Ordering::Relaxed);
            if !on_flusher {
                shared.syncs_here.fetch_add(1, Ordering::Relaxed);
            }
            let started = std::time::Instant::now();
            let result = shared.faults.sync_data(file);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shared.sync_nanos_total.fetch_add(nanos, Ordering::Relaxed);
            shared.sync_nanos_max.fetch_max(nanos, Ordering::Relaxed);
            let bucket = SYNC_BUCKET_BOUNDS_NANOS
                .iter()
                .position(|&bound| nanos <= bound)
                .unwrap_or(SYNC_BUCKET_BOUNDS_NANOS.len());
            shared.sync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
            result
        }
        _ => Ok(()),
    };
    inner = shared.lock();
    let callbacks: Vec<(DurableCallback, Result<(), StorageError>)> = match result {
        Ok(()) => inner
            .complete_sync(&target)
            .into_iter()
            .map(|pending| (pending.done, Ok(())))
            .collect(),
        Err(source) => {
            let error = StorageError::Io {
                path: target.path.clone(),
                source,
            };
            tracing::error!(%error, "fdatasync of the log failed; failing every unsynced append");
            let failed = inner.fail_and_roll_back();
            failed
                .into_iter()
                .map(|pending| (pending.done, Err(copy_error(&error))))
                .collect()
        }
    };
    inner.syncing = false;
    // Appends made during the sync, or a shutdown, wait for the flusher (which waits while any
    // sync runs).
    if !on_flusher && inner.flusher_waits && (!inner.pending.is_empty() || inner.shutdown) {
        shared.wake_flusher.notify_one();
    }
    deliver_in_order(shared, inner, callbacks);
}

/// Run `callbacks` after every callback queued before them (callbacks are queued under the lock,
/// in the order their appends were made durable or failed), then return. The lock is released
/// while callbacks run, so the next sync can go on meanwhile. One thread at a time runs them:
/// - another thread is running earlier ones: wait for it (it may run these too);
/// - this thread is, because a callback appended and its append completed at once: queue them
///   and return; the loop up the stack runs them after the callbacks before them.
///
/// Two syncs' callbacks ran interleaved when each sync ran its own after releasing the lock.
fn deliver_in_order<'a>(
    shared: &'a Shared,
    mut inner: MutexGuard<'a, Inner>,
    callbacks: Vec<(DurableCallback, Result<(), StorageError>)>,
) {
    inner.callbacks.extend(callbacks);
    let me = std::thread::current().id();
    if inner.callback_runner == Some(me) {
        return;
    }
    while inner.callback_runner.is_some() {
        inner.callback_waiters += 1;
        inner = shared
            .callbacks_ran
            .wait(inner)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.callback_waiters -= 1;
    }
    inner.callback_runner = Some(me);
    loop {
        let batch: Vec<_> = inner.callbacks.drain(..).collect();
        if batch.is_empty() {
            break;
        }
        drop(inner);
        run_callbacks(batch);
        inner = shared.lock();
    }
    inner.callback_runner = None;
    let wake = inner.callback_waiters > 0;
    drop(inner);
    if wake {
        shared.callbacks_ran.notify_all();
    }
}
