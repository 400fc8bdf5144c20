//! The Raft log on `rzk_storage::Wal` (`log_dir = Some`).
//!
//! - Each entry is one WAL record at `raft index + WAL_INDEX_OFFSET` (openraft numbers from 0, the
//!   WAL like ZooKeeper from 1). The record payload is [`encode_entry`]: a small binary header
//!   (format, kind, term, leader) then the proposed bytes as they are, so a normal entry costs 18
//!   bytes over its payload.
//! - `append` returns once the records are readable; openraft's `IOFlushed` fires from the
//!   WAL's durability callback, after the group-commit `fdatasync`.
//! - The vote and the purge point are WAL meta values written durably before returning. The
//!   committed log id is a hint for re-applying on restart (not needed for safety): it is kept in
//!   memory and written by a background task, newest value only, so commits never wait on it.
//! - Vote and log writes are serialised: `save_vote` first waits until every earlier append is
//!   durable.
//!
//! # A full disk or a failed write or sync
//!
//! openraft treats any storage error as fatal (its core stops for good), so a failed append is
//! never reported to it. Instead every append keeps a copy of its records until they are durable
//! (an [`Unsynced`] batch). When the WAL fails one (it then rolls back to its last durable
//! record), the batch waits, and so does every later append; a retry task writes the waiting
//! batches again, in order, with a bounded backoff ([`RETRY_BACKOFF_MIN`] doubling up to
//! [`RETRY_BACKOFF_MAX`]), logging what to do (free space). Reads are served from the copies
//! meanwhile. openraft hears of durability only in log order and only when it is true, so
//! nothing is committed, applied or acknowledged before it is on disk; once space returns the
//! waiting entries become durable and commit in order. While batches wait,
//! [`WalLog::write_failure`] says why, and the replica refuses new proposals with it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use rzk_storage::{Record, Wal, WalOptions};
use tokio::sync::watch;

use crate::raft_types::{io_err, Entry, LogId, Payload, Rzk, Vote};

/// The smallest log segment `preAllocSize` may ask for: a smaller one would roll the log into
/// thousands of files.
pub(crate) const LOG_SEGMENT_BYTES_MIN: u64 = 1 << 20;

/// WAL record index of Raft log index 0.
pub(crate) const WAL_INDEX_OFFSET: u64 = 1;

const META_VOTE: &str = "raft-vote";
const META_COMMITTED: &str = "raft-committed";
const META_PURGED: &str = "raft-purged";

const ENTRY_FORMAT_VERSION: u8 = 1;
const ENTRY_HEADER_BYTES: usize = 18;
const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
/// A normal entry whose body is LZ4-compressed (a block with its length first).
const KIND_NORMAL_LZ4: u8 = 3;
/// Bodies of normal entries from this size on are stored compressed when that saves at least
/// an eighth (large multis and znode values: paths share prefixes, values repeat). Smaller ones
/// are stored as they are, so the common small write pays nothing.
pub(crate) const COMPRESS_ENTRIES_FROM_BYTES: usize = 1024;

/// Record payload of one entry: version, kind, term, leader node id, then the body (the proposed
/// bytes for a normal entry, JSON for a membership entry, nothing for a blank one).
pub(crate) fn encode_entry(entry: &Entry) -> Result<Vec<u8>, io::Error> {
    let (kind, body) = match &entry.payload {
        EntryPayload::Blank => (KIND_BLANK, None),
        EntryPayload::Normal(p) => (KIND_NORMAL, Some(p.0.as_slice())),
        EntryPayload::Membership(_) => (KIND_MEMBERSHIP, None),
    };
    let json;
    let body = match (&entry.payload, body) {
        (EntryPayload::Membership(m), _) => {
            json = serde_json::to_vec(m)
                .map_err(|e| io_err(format_args!("encoding membership: {e}")))?;
            json.as_slice()
        }
        (_, body) => body.unwrap_or_default(),
    };
    let compressed;
    let (kind, body) = if kind == KIND_NORMAL && body.len() >= COMPRESS_ENTRIES_FROM_BYTES {
        compressed = lz4_flex::block::compress_prepend_size(body);
        if compressed.len() <= body.len() - body.len() / 8 {
            (KIND_NORMAL_LZ4, compressed.as_slice())
        } else {
            (kind, body)
        }
    } else {
        (kind, body)
    };
    let mut out = Vec::with_capacity(ENTRY_HEADER_BYTES + body.len());
    out.push(ENTRY_FORMAT_VERSION);
    out.push(kind);
    out.extend_from_slice(&entry.log_id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&entry.log_id.leader_id.node_id.to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

pub(crate) fn decode_entry(wal_index: u64, bytes: &[u8]) -> Result<Entry, io::Error> {
    let bad = |what: &str| {
        io_err(format_args!(
            "WAL record {wal_index} is not a Raft entry: {what}"
        ))
    };
    let index = wal_index
        .checked_sub(WAL_INDEX_OFFSET)
        .ok_or_else(|| bad("index below the first Raft index"))?;
    if bytes.len() < ENTRY_HEADER_BYTES {
        return Err(bad("shorter than its header"));
    }
    if bytes[0] != ENTRY_FORMAT_VERSION {
        return Err(bad(&format!(
            "entry format {} is not {ENTRY_FORMAT_VERSION}",
            bytes[0]
        )));
    }
    let term = u64::from_le_bytes(bytes[2..10].try_into().expect("8 bytes"));
    let node_id = u64::from_le_bytes(bytes[10..18].try_into().expect("8 bytes"));
    let body = &bytes[ENTRY_HEADER_BYTES..];
    let payload = match bytes[1] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(Payload(body.to_vec())),
        KIND_NORMAL_LZ4 => {
            let declared = body
                .get(..4)
                .map(|len| u32::from_le_bytes(len.try_into().expect("4 bytes")))
                .ok_or_else(|| bad("compressed body shorter than its length"))?;
            if declared > rzk_storage::RECORD_PAYLOAD_BYTES_MAX {
                return Err(bad(&format!(
                    "compressed body claims {declared} bytes, over the {} a record may hold",
                    rzk_storage::RECORD_PAYLOAD_BYTES_MAX
                )));
            }
            let bytes = lz4_flex::block::decompress_size_prepended(body)
                .map_err(|e| bad(&format!("compressed body does not decompress: {e}")))?;
            EntryPayload::Normal(Payload(bytes))
        }
        KIND_MEMBERSHIP => EntryPayload::Membership(
            serde_json::from_slice(body).map_err(|e| bad(&format!("membership: {e}")))?,
        ),
        other => return Err(bad(&format!("unknown kind {other}"))),
    };
    let leader_id = openraft::impls::leader_id_adv::LeaderId { term, node_id };
    Ok(Entry {
        log_id: LogId::new(leader_id, index),
        payload,
    })
}

/// A one-member group syncs on the Raft core's thread ([`WalLog::sync_here_when_idle`]) once
/// this many appends in a row found no other proposal in flight.
pub(crate) const LONE_APPENDS_BEFORE_SYNC_HERE: usize = 8;

/// First wait before writing failed batches again; doubled after each failure.
pub(crate) const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two attempts to write failed batches again.
pub(crate) const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// While the log still cannot be written, remind the operator this often.
const RETRY_WARNING_INTERVAL: Duration = Duration::from_secs(30);

struct LogIds {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    /// Id of the last entry the log holds (may be at or below `last_purged`).
    last: Option<LogId>,
}

/// Where one append stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    /// Not in the WAL: its write or a sync failed (the WAL rolled it back), or it queued behind
    /// such a batch. The retry task writes it again.
    Waiting,
    /// Handed to the WAL; its durability callback is pending.
    Written,
    /// Durable; openraft is told once every earlier batch is durable too.
    Durable,
}

/// One `append` that is not known durable yet.
struct Batch {
    /// A copy of the records: reads are served from it while the WAL does not have them, and
    /// the retry task writes it again. Truncation trims it.
    records: Vec<Record>,
    callback: Option<IOFlushed<Rzk>>,
    state: BatchState,
}

/// Appends not yet durable, in log order.
struct Unsynced {
    /// By sequence number, which is log order (appends are numbered under the order lock).
    batches: BTreeMap<u64, Batch>,
    /// Sequence number of the next append (the first is 1).
    next_seq: u64,
    /// Why the log cannot be written: set by a failed write or sync, cleared once every waiting
    /// batch was written again.
    failure: Option<String>,
}

impl Unsynced {
    /// Remove the durable batches at the front; their callbacks and the new durable sequence.
    fn take_durable_prefix(&mut self) -> (Vec<IOFlushed<Rzk>>, Option<u64>) {
        let mut callbacks = Vec::new();
        let mut durable = None;
        while let Some(entry) = self.batches.first_entry() {
            if entry.get().state != BatchState::Durable {
                break;
            }
            let (seq, batch) = entry.remove_entry();
            callbacks.extend(batch.callback);
            durable = Some(seq);
        }
        (callbacks, durable)
    }

    /// Copies of the records in `[start, end)` (WAL indexes) that batches hold, in log order.
    fn records_in(&self, start: u64, end: u64) -> Vec<Record> {
        self.batches
            .values()
            .flat_map(|batch| &batch.records)
            .filter(|record| (start..end).contains(&record.index))
            .cloned()
            .collect()
    }

    fn last_index(&self) -> Option<u64> {
        self.batches
            .values()
            .rev()
            .find_map(|batch| batch.records.last())
            .map(|record| record.index)
    }
}

struct Shared {
    /// The log directory, named in error messages.
    dir: PathBuf,
    /// `None` once closed: `close` drops the WAL (releasing its directory lock) even while
    /// openraft's tasks still hold clones of this log.
    wal: RwLock<Option<Wal>>,
    ids: Mutex<LogIds>,
    committed: watch::Sender<Option<LogId>>,
    /// Held while handing records to the WAL (appends, retries, truncation), so that WAL order,
    /// sequence order and log order agree.
    order: Mutex<()>,
    unsynced: Mutex<Unsynced>,
    /// Every append with a sequence number up to this one is durable (and answered).
    durable_seq: watch::Sender<u64>,
    /// Bumped when a batch starts waiting: wakes the retry task.
    retry_wake: watch::Sender<u64>,
    /// Index + 1 of the newest snapshot saved on disk: purges never go past it.
    purge_limit: std::sync::OnceLock<Arc<std::sync::atomic::AtomicU64>>,
    /// Where replication reads found their first entry purged, for the transport to end the
    /// stream that made them ([`crate::stale_reads`]).
    stale_reads: std::sync::OnceLock<Arc<crate::stale_reads::StaleReads>>,
    /// Set for a one-member group: proposals between `propose` and their answer, which decide
    /// when appends sync on the appending thread ([`WalLog::sync_here_when_idle`]).
    proposals_in_flight: std::sync::OnceLock<Arc<AtomicUsize>>,
    /// Appends in a row that found no other proposal in flight.
    lone_appends: AtomicUsize,
}

impl Shared {
    fn with_wal<T>(
        &self,
        what: impl std::fmt::Display,
        f: impl FnOnce(&Wal) -> Result<T, io::Error>,
    ) -> Result<T, io::Error> {
        let wal = self
            .wal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match wal.as_ref() {
            Some(wal) => f(wal),
            None => Err(io_err(format_args!(
                "{what}: the log is closed (replica shut down)"
            ))),
        }
    }

    fn unsynced(&self) -> MutexGuard<'_, Unsynced> {
        self.unsynced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn order(&self) -> MutexGuard<'_, ()> {
        self.order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What to tell a client whose write was refused, and the operator.
    fn describe_failure(&self, error: &rzk_storage::StorageError) -> String {
        match error {
            rzk_storage::StorageError::Io { path, source } => format!(
                "the log cannot be written: {source} (on {}); free space on {}",
                path.display(),
                self.dir.display()
            ),
            other => format!(
                "the log cannot be written: {other}; free space on {}",
                self.dir.display()
            ),
        }
    }

    /// Hand `records` (batch `seq`) to the WAL. Call with the order lock held. On `Err` the
    /// batch is already marked waiting (the WAL ran its callback with the error).
    fn write_batch(
        self: &Arc<Self>,
        wal: &Wal,
        seq: u64,
        records: Vec<Record>,
    ) -> Result<(), rzk_storage::StorageError> {
        let shared = Arc::clone(self);
        let done: rzk_storage::DurableCallback =
            Box::new(move |result| shared.batch_flushed(seq, result));
        let idle = self.proposals_in_flight.get().is_some_and(|in_flight| {
            // A lone proposal, and the last appends were lone too (see `sync_here_when_idle`).
            if in_flight.load(Ordering::Acquire) <= 1 {
                let streak = self.lone_appends.fetch_add(1, Ordering::Relaxed) + 1;
                streak > LONE_APPENDS_BEFORE_SYNC_HERE
            } else {
                self.lone_appends.store(0, Ordering::Relaxed);
                false
            }
        });
        if idle {
            wal.append_and_sync_here(records, done)
        } else {
            wal.append(records, done)
        }
    }

    /// The WAL's durability callback for batch `seq` (on the flusher thread, or on the
    /// appending thread, with the order lock held, when the append failed at once or synced
    /// there). Takes only the `unsynced` lock.
    fn batch_flushed(&self, seq: u64, result: Result<(), rzk_storage::StorageError>) {
        let (callbacks, durable) = {
            let mut unsynced = self.unsynced();
            let Some(batch) = unsynced.batches.get_mut(&seq) else {
                return;
            };
            match result {
                Ok(()) => batch.state = BatchState::Durable,
                Err(error) => {
                    batch.state = BatchState::Waiting;
                    let reason = self.describe_failure(&error);
                    if unsynced.failure.is_none() {
                        tracing::error!(
                            "{reason}: writes are refused and the entries already accepted wait until space returns (retried every {RETRY_BACKOFF_MAX:?} at most)"
                        );
                    }
                    unsynced.failure = Some(reason);
                    self.retry_wake.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            unsynced.take_durable_prefix()
        };
        if let Some(durable) = durable {
            self.durable_seq.send_if_modified(|d| {
                let newer = *d < durable;
                *d = (*d).max(durable);
                newer
            });
        }
        for callback in callbacks {
            callback.io_completed(Ok(()));
        }
    }

    /// Write every waiting batch again, in order. Blocking (file writes under the WAL lock).
    fn retry_waiting(self: &Arc<Self>) -> RetryOutcome {
        let _order = self.order();
        let wal = self
            .wal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(wal) = wal.as_ref() else {
            return RetryOutcome::Closed;
        };
        let waiting: Vec<(u64, Vec<Record>)> = self
            .unsynced()
            .batches
            .iter()
            .filter(|(_, batch)| batch.state == BatchState::Waiting)
            .map(|(seq, batch)| (*seq, batch.records.clone()))
            .collect();
        let mut next = wal.next_index();
        for (seq, records) in waiting {
            // Records the WAL already holds (a segment of the batch written before a roll
            // failed) are not written twice; an empty append still waits for the next sync.
            let records: Vec<Record> = records
                .into_iter()
                .filter(|record| next.is_none_or(|next| record.index >= next))
                .collect();
            if let (Some(first), Some(next)) = (records.first(), next) {
                if first.index > next {
                    // An earlier batch's failure is still being reported by the WAL.
                    return RetryOutcome::NotYet;
                }
            }
            let last = records.last().map(|record| record.index);
            if let Some(batch) = self.unsynced().batches.get_mut(&seq) {
                batch.state = BatchState::Written;
            }
            if let Err(error) = self.write_batch(wal, seq, records) {
                return RetryOutcome::Failed(self.describe_failure(&error));
            }
            next = last.map(|last| last + 1).or(next);
        }
        let mut unsynced = self.unsynced();
        if unsynced
            .batches
            .values()
            .any(|batch| batch.state == BatchState::Waiting)
        {
            // A sync failed again meanwhile.
            return RetryOutcome::NotYet;
        }
        unsynced.failure = None;
        RetryOutcome::Written
    }
}

enum RetryOutcome {
    /// Every waiting batch is in the WAL again; new appends go straight to it.
    Written,
    /// Not yet possible (a failure is still being reported); try again soon.
    NotYet,
    /// The WAL refused the write again.
    Failed(String),
    Closed,
}

/// Writes waiting batches again while any wait; ends with the log.
async fn retry_failed_appends(shared: Weak<Shared>, mut wake: watch::Receiver<u64>) {
    while wake.changed().await.is_ok() {
        let mut backoff = RETRY_BACKOFF_MIN;
        let since = Instant::now();
        let mut warned = Instant::now();
        loop {
            tokio::time::sleep(backoff).await;
            let Some(strong) = shared.upgrade() else {
                return;
            };
            wake.borrow_and_update();
            let outcome = tokio::task::spawn_blocking(move || strong.retry_waiting()).await;
            match outcome {
                Ok(RetryOutcome::Written) => {
                    tracing::info!(
                        waited = ?since.elapsed(),
                        "the log is written again: the entries that waited become durable in order, and writes are accepted"
                    );
                    break;
                }
                Ok(RetryOutcome::NotYet) => {}
                Ok(RetryOutcome::Failed(reason)) => {
                    if warned.elapsed() >= RETRY_WARNING_INTERVAL {
                        warned = Instant::now();
                        tracing::warn!(waiting_for = ?since.elapsed(), "{reason}: still retrying");
                    }
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
                Ok(RetryOutcome::Closed) => return,
                Err(e) => {
                    tracing::warn!("writing waiting log entries again: task failed: {e}");
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
            }
        }
    }
}

/// Cloning shares the log: a clone is the log reader.
#[derive(Clone)]
pub(crate) struct WalLog {
    shared: Arc<Shared>,
}

/// A description formatted only when it is displayed (an error's context on a hot path).
struct Lazy<F: Fn(&mut std::fmt::Formatter<'_>) -> std::fmt::Result>(F);

impl<F: Fn(&mut std::fmt::Formatter<'_>) -> std::fmt::Result> std::fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (self.0)(f)
    }
}

fn storage_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> io::Error {
    io_err(format_args!("{what}: {e}"))
}

fn load_json<T: serde::de::DeserializeOwned>(
    wal: &Wal,
    name: &str,
) -> Result<Option<T>, crate::ReplicationError> {
    let Some(bytes) = wal.load_meta(name)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        crate::ReplicationError::Start(format!(
            "the log's meta value {name} does not decode ({e}); restore the log directory from a replica"
        ))
    })
}

impl WalLog {
    /// Open the WAL under `dir` and recover the Raft log state from it.
    /// Open (recovering) the log in `dir`; `segment_bytes` is `preAllocSize`: segments are
    /// preallocated in, and roll at, that size (at least [`LOG_SEGMENT_BYTES_MIN`]).
    pub(crate) async fn open(
        dir: &Path,
        force_sync: bool,
        segment_bytes: u64,
    ) -> Result<WalLog, crate::ReplicationError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, force_sync, segment_bytes))
            .await
            .map_err(|e| {
                crate::ReplicationError::Start(format!("opening the log: task failed: {e}"))
            })?
    }

    fn open_blocking(
        dir: &Path,
        force_sync: bool,
        segment_bytes: u64,
    ) -> Result<WalLog, crate::ReplicationError> {
        let segment_bytes = segment_bytes.max(LOG_SEGMENT_BYTES_MIN);
        let options = WalOptions {
            force_sync,
            segment_bytes_max: segment_bytes,
            preallocate_bytes: segment_bytes,
        };
        let (wal, report) = Wal::open(dir, options)?;
        if let Some((file, offset)) = &report.truncated_tail {
            tracing::warn!(file = %file.display(), offset, "the log had a torn tail; it was cut there");
        }
        let vote: Option<Vote> = load_json(&wal, META_VOTE)?;
        let committed: Option<LogId> = load_json(&wal, META_COMMITTED)?;
        let last_purged: Option<LogId> = load_json(&wal, META_PURGED)?;
        if let Some(purged) = last_purged {
            // Finish a purge that a crash interrupted between saving the point and purging.
            wal.purge_upto(purged.index + WAL_INDEX_OFFSET)?;
        }
        let last = read_last(&wal).map_err(|e| crate::ReplicationError::Start(e.to_string()))?;
        tracing::info!(
            ?vote,
            ?committed,
            ?last_purged,
            ?last,
            "log opened from {}",
            dir.display()
        );
        let (committed_tx, committed_rx) = watch::channel(committed);
        let (retry_wake, retry_wake_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            wal: RwLock::new(Some(wal)),
            ids: Mutex::new(LogIds {
                vote,
                last_purged,
                last,
            }),
            committed: committed_tx,
            order: Mutex::new(()),
            unsynced: Mutex::new(Unsynced {
                batches: BTreeMap::new(),
                next_seq: 1,
                failure: None,
            }),
            durable_seq: watch::channel(0).0,
            retry_wake,
            purge_limit: std::sync::OnceLock::new(),
            stale_reads: std::sync::OnceLock::new(),
            proposals_in_flight: std::sync::OnceLock::new(),
            lone_appends: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Handle::current();
        runtime.spawn(persist_committed(Arc::downgrade(&shared), committed_rx));
        runtime.spawn(retry_failed_appends(Arc::downgrade(&shared), retry_wake_rx));
        Ok(WalLog { shared })
    }

    fn ids(&self) -> MutexGuard<'_, LogIds> {
        self.shared
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The log's counters (group-commit syncs and their time), `None` once closed.
    pub(crate) fn stats(&self) -> Option<rzk_storage::WalStats> {
        let wal = self
            .shared
            .wal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wal.as_ref().map(rzk_storage::Wal::stats)
    }

    /// Never purge entries that the newest snapshot on disk does not cover (`saved_next` is its
    /// index + 1): a snapshot that could not be saved must not cost its log.
    pub(crate) fn limit_purge_to_saved_snapshot(
        &self,
        saved_next: Arc<std::sync::atomic::AtomicU64>,
    ) {
        let _ = self.shared.purge_limit.set(saved_next);
    }

    /// Report replication reads that start below the purged point to `stale_reads`.
    pub(crate) fn report_stale_reads_to(&self, stale_reads: Arc<crate::stale_reads::StaleReads>) {
        let _ = self.shared.stale_reads.set(stale_reads);
    }

    /// For a one-member group, which replicates nothing while its log syncs: once
    /// [`LONE_APPENDS_BEFORE_SYNC_HERE`] appends in a row found at most one proposal in flight
    /// (`in_flight`, counted by the replica), appends sync on the appending thread (the Raft
    /// core's) instead of handing the sync to the flusher thread and waiting to hear back, two
    /// thread hand-offs per write. That is a single client writing synchronously: nothing else
    /// could use the time. The streak keeps a lull between several clients' writes on the
    /// flusher, because the thread that would sync is a Tokio worker that other connections'
    /// tasks wait for, and the flusher syncs while the core goes on batching the next entries.
    pub(crate) fn sync_here_when_idle(&self, in_flight: Arc<AtomicUsize>) {
        let _ = self.shared.proposals_in_flight.set(in_flight);
    }

    /// Why the log cannot be written right now (a failed write or sync whose entries wait to be
    /// written again), or `None` when it can.
    pub(crate) fn write_failure(&self) -> Option<String> {
        self.shared.unsynced().failure.clone()
    }

    /// Changes each time a batch starts waiting because the log could not be written (the
    /// moment [`WalLog::write_failure`] becomes, or stays, `Some`).
    pub(crate) fn write_failures(&self) -> watch::Receiver<u64> {
        self.shared.retry_wake.subscribe()
    }

    /// Save the newest committed log id, then close the WAL (its flusher answers what is pending
    /// and the directory lock is released). Called on shutdown, after the Raft core stopped.
    pub(crate) async fn close(&self) {
        let committed = *self.shared.committed.borrow();
        let shared = Arc::clone(&self.shared);
        let closed = tokio::task::spawn_blocking(move || {
            let saved = shared.with_wal("saving the committed log id", |wal| {
                save_json(wal, META_COMMITTED, &committed)
            });
            if let Err(e) = saved {
                tracing::warn!("{e}");
            }
            let wal = shared
                .wal
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            drop(wal);
        })
        .await;
        if let Err(e) = closed {
            tracing::warn!("closing the log: task failed: {e}");
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Wal) -> Result<T, rzk_storage::StorageError> + Send + 'static,
    ) -> Result<T, io::Error> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            shared.with_wal(what, |wal| f(wal).map_err(|e| storage_err(what, e)))
        })
        .await
        .map_err(|e| storage_err(what, format_args!("task failed: {e}")))?
    }
}

fn save_json<T: serde::Serialize>(wal: &Wal, name: &str, value: &T) -> Result<(), io::Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| storage_err(name, e))?;
    wal.save_meta(name, &bytes)
        .map_err(|e| storage_err(name, e))
}

fn read_last(wal: &Wal) -> Result<Option<LogId>, io::Error> {
    let Some(last) = wal.last_index() else {
        return Ok(None);
    };
    read_log_id(wal, last)
}

fn read_log_id(wal: &Wal, wal_index: u64) -> Result<Option<LogId>, io::Error> {
    let records = wal
        .read(wal_index, wal_index + 1)
        .map_err(|e| storage_err("reading a log record", e))?;
    match records.first() {
        Some(record) => Ok(Some(decode_entry(record.index, &record.payload)?.log_id)),
        None => Ok(None),
    }
}

/// How often the committed log id is saved, at most. It only lets a restart re-apply sooner
/// (replay stops at the saved value until the new term's first entry commits the rest), and
/// each save costs two syncs: saving on every commit doubled the syncs per write.
const COMMITTED_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes the newest committed log id when it changed, at most once per
/// [`COMMITTED_SAVE_INTERVAL`]; ends with the log.
async fn persist_committed(shared: Weak<Shared>, mut committed: watch::Receiver<Option<LogId>>) {
    while committed.changed().await.is_ok() {
        // Rate limit, not synchronisation: later values replace earlier ones meanwhile.
        tokio::time::sleep(COMMITTED_SAVE_INTERVAL).await;
        let value = *committed.borrow_and_update();
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let saved = tokio::task::spawn_blocking(move || {
            strong.with_wal("saving the committed log id", |wal| {
                save_json(wal, META_COMMITTED, &value)
            })
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("saving the committed log id (re-applied on restart from it): {e}")
            }
            Err(e) => tracing::warn!("saving the committed log id: task failed: {e}"),
        }
    }
}

fn start_of(range: &impl RangeBounds<u64>) -> u64 {
    match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn end_of(range: &impl RangeBounds<u64>) -> u64 {
    match range.end_bound() {
        Bound::Included(i) => i.saturating_add(1),
        Bound::Excluded(i) => *i,
        Bound::Unbounded => u64::MAX - WAL_INDEX_OFFSET,
    }
}

impl RaftLogReader<Rzk> for WalLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let first_kept = self.ids().last_purged.map_or(0, |p| p.index + 1);
        let start = start_of(&range).max(first_kept);
        let end = end_of(&range);
        if start >= end {
            return Ok(Vec::new());
        }
        let (wal_start, wal_end) = (start + WAL_INDEX_OFFSET, end + WAL_INDEX_OFFSET);
        // Copies of records not yet durable first: a batch leaves them only once the WAL has them
        // durably, so the WAL read below then finds what the copies no longer hold.
        let copies = self.shared.unsynced().records_in(wal_start, wal_end);
        // Recent records come from the WAL's memory cache; older ones are a short file read, so
        // this stays on the calling task.
        // Formatted only for an error: this runs for every applied batch.
        let what = Lazy(|f| write!(f, "reading log entries [{start}, {end})"));
        let mut records = self.shared.with_wal(&what, |wal| {
            wal.read(wal_start, wal_end)
                .map_err(|e| storage_err(&what, e))
        })?;
        // The WAL lacks what a failed write or sync rolled back: continue from the copies.
        let mut next = wal_start + records.len() as u64;
        for record in copies {
            if record.index == next {
                next += 1;
                records.push(record);
            }
        }
        records
            .iter()
            .map(|r| decode_entry(r.index, &r.payload))
            .collect()
    }

    /// Replication's read. When its first entry was purged (a stream openraft resumed from a
    /// replaced command, see [`crate::stale_reads`]), return nothing and mark the read, so that
    /// the transport ends the stream. A short read from the first kept entry would make openraft
    /// send an append whose entries do not follow its `prev_log_id`.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        let first_kept = self.ids().last_purged.map_or(0, |p| p.index + 1);
        if start < first_kept {
            tracing::debug!(
                start,
                first_kept,
                "replication read starts below the purged point; ending its stream"
            );
            if let Some(stale_reads) = self.shared.stale_reads.get() {
                stale_reads.record(start);
            }
            return Ok(Vec::new());
        }
        self.try_get_log_entries(start..end).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.ids().vote)
    }
}

impl RaftLogStorage<Rzk> for WalLog {
    type LogReader = WalLog;

    async fn get_log_state(&mut self) -> Result<LogState<Rzk>, io::Error> {
        let ids = self.ids();
        let last_log_id = match (ids.last, ids.last_purged) {
            (Some(last), Some(purged)) if last.index <= purged.index => Some(purged),
            (last, purged) => last.or(purged),
        };
        Ok(LogState {
            last_purged_log_id: ids.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// Waits until every earlier append is durable (while the disk is full, until space
    /// returns): openraft takes a saved vote as covering the log I/O submitted before it.
    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let appended = self.shared.unsynced().next_seq - 1;
        let mut durable = self.shared.durable_seq.subscribe();
        durable
            .wait_for(|seq| *seq >= appended)
            .await
            .map_err(|_| io_err("the log closed while waiting for appends to become durable before saving the vote"))?;
        let vote = *vote;
        self.blocking("saving the vote", move |wal| {
            let bytes = serde_json::to_vec(&vote).expect("a vote encodes as JSON");
            wal.save_meta(META_VOTE, &bytes)
        })
        .await?;
        self.ids().vote = Some(vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.shared.committed.send_replace(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(*self.shared.committed.borrow())
    }

    /// Never fails for a full disk or a failed write or sync: the batch then waits (see the
    /// module docs) and `callback` fires once it is durable.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Rzk>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        let mut last = None;
        for entry in entries {
            records.push(Record {
                index: entry.log_id.index + WAL_INDEX_OFFSET,
                payload: encode_entry(&entry)?,
            });
            last = Some(entry.log_id);
        }
        let Some(last) = last else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let shared = &self.shared;
        let order = shared.order();
        let (seq, waits) = {
            let mut unsynced = shared.unsynced();
            let seq = unsynced.next_seq;
            unsynced.next_seq += 1;
            let waits = unsynced.failure.is_some();
            let state = if waits {
                BatchState::Waiting
            } else {
                BatchState::Written
            };
            unsynced.batches.insert(
                seq,
                Batch {
                    records: records.clone(),
                    callback: Some(callback),
                    state,
                },
            );
            (seq, waits)
        };
        self.ids().last = Some(last);
        if waits {
            // Behind a batch that failed: the retry task writes both, in order.
            return Ok(());
        }
        let what = Lazy(|f| write!(f, "appending log entries up to {last}"));
        // A failed append is not an error here: its callback marked the batch waiting.
        shared.with_wal(&what, |wal| {
            let _ = shared.write_batch(wal, seq, records);
            Ok(())
        })?;
        drop(order);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let keep_upto = last_log_id.map_or(0, |id| id.index + WAL_INDEX_OFFSET);
        let shared = Arc::clone(&self.shared);
        let last = tokio::task::spawn_blocking(move || {
            let _order = shared.order();
            shared.with_wal("truncating the log", |wal| {
                wal.truncate_after(keep_upto)
                    .map_err(|e| storage_err("truncating the log", e))?;
                // Batches not yet durable lose their records past the point too; their callbacks
                // still fire in order (as the WAL's own do for truncated records).
                let mut unsynced = shared.unsynced();
                for batch in unsynced.batches.values_mut() {
                    batch.records.retain(|record| record.index <= keep_upto);
                }
                match unsynced.last_index() {
                    Some(index) if wal.last_index().is_none_or(|last| index > last) => {
                        drop(unsynced);
                        let copies = shared.unsynced().records_in(index, index + 1);
                        copies
                            .first()
                            .map(|r| decode_entry(r.index, &r.payload).map(|e| Some(e.log_id)))
                            .unwrap_or(Ok(None))
                    }
                    _ => read_last(wal),
                }
            })
        })
        .await
        .map_err(|e| storage_err("truncating the log", format_args!("task failed: {e}")))??;
        self.ids().last = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        if self
            .ids()
            .last_purged
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        if let Some(limit) = self.shared.purge_limit.get() {
            let saved_next = limit.load(std::sync::atomic::Ordering::SeqCst);
            if log_id.index >= saved_next {
                tracing::warn!(
                    %log_id,
                    saved_next,
                    "not purging the log past the newest snapshot on disk"
                );
                return Ok(());
            }
        }
        // The point goes first: after a crash in between, open() finishes the purge.
        self.blocking("purging the log", move |wal| {
            let bytes = serde_json::to_vec(&log_id).expect("a log id encodes as JSON");
            wal.save_meta(META_PURGED, &bytes)?;
            wal.purge_upto(log_id.index + WAL_INDEX_OFFSET)
        })
        .await?;
        self.ids().last_purged = Some(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod entry_codec_tests {
    use super::*;

    fn normal(body: Vec<u8>) -> Entry {
        let leader_id = openraft::impls::leader_id_adv::LeaderId {
            term: 3,
            node_id: 2,
        };
        Entry {
            log_id: LogId::new(leader_id, 41),
            payload: EntryPayload::Normal(Payload(body)),
        }
    }

    fn body_of(entry: &Entry) -> &[u8] {
        match &entry.payload {
            EntryPayload::Normal(payload) => &payload.0,
            other => panic!("not a normal entry: {other:?}"),
        }
    }

    #[test]
    fn entries_round_trip_compressed_only_when_large_and_worth_it() {
        let repetitive: Vec<u8> = (0..2_000u32)
            .flat_map(|i| format!("/bench/node-{i:08}:value-value;").into_bytes())
            .collect();
        let mut noise = Vec::with_capacity(4096);
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..4096 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        for (body, compressed) in [
            (b"small".to_vec(), false),
            (vec![7u8; COMPRESS_ENTRIES_FROM_BYTES - 1], false),
            (repetitive, true),
            (noise, false),
        ] {
            let entry = normal(body.clone());
            let record = encode_entry(&entry).unwrap();
            assert_eq!(
                record[1] == KIND_NORMAL_LZ4,
                compressed,
                "{} bytes",
                body.len()
            );
            if compressed {
                assert!(
                    record.len() * 4 < body.len(),
                    "{} -> {}",
                    body.len(),
                    record.len()
                );
            }
            let decoded = decode_entry(42, &record).unwrap();
            assert_eq!(decoded.log_id, entry.log_id);
            assert_eq!(body_of(&decoded), body.as_slice());
        }
    }

    #[test]
    fn a_damaged_compressed_body_is_an_error_not_a_panic() {
        let body: Vec<u8> = b"abcdefgh".iter().copied().cycle().take(8192).collect();
        let record = encode_entry(&normal(body)).unwrap();
        assert_eq!(record[1], KIND_NORMAL_LZ4);
        // A length that claims more than a record may hold.
        let mut huge = record.clone();
        huge[ENTRY_HEADER_BYTES..ENTRY_HEADER_BYTES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_entry(42, &huge).is_err());
        // Truncated and bit-flipped bodies.
        for cut in [ENTRY_HEADER_BYTES + 2, record.len() / 2, record.len() - 1] {
            assert!(decode_entry(42, &record[..cut]).is_err(), "cut at {cut}");
        }
        for at in ENTRY_HEADER_BYTES + 4..record.len() {
            let mut flipped = record.clone();
            flipped[at] ^= 0x5a;
            let _ = decode_entry(42, &flipped);
        }
    }
}
