//! The Raft log on `rzk_storage::Wal` (`log_dir = Some`).
//!
//! - Each entry is one WAL record at `raft index + WAL_INDEX_OFFSET` (openraft numbers from 0, the
//!   WAL like ZooKeeper from 1). The record payload is [`encode_entry`]: a small binary header
//!   (format, kind, term, leader) then the proposed bytes as they are, so a normal entry costs 18
//!   bytes over its payload.
//! - `append` returns once the WAL has the records readable; openraft's `IOFlushed` fires from the
//!   WAL's durability callback, after the group-commit `fdatasync`.
//! - The vote and the purge point are WAL meta values written durably before returning. The
//!   committed log id is a hint for re-applying on restart (not needed for safety): it is kept in
//!   memory and written by a background task, newest value only, so commits never wait on it.
//! - Vote and log writes are serialised: `save_vote` first waits until every earlier append is
//!   durable.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use rzk_storage::{Record, Wal, WalOptions};
use tokio::sync::watch;

use crate::raft_types::{io_err, Entry, LogId, Payload, Rzk, Vote};

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

struct LogIds {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    /// Id of the last entry the WAL holds (may be at or below `last_purged`).
    last: Option<LogId>,
}

struct Shared {
    /// `None` once closed: `close` drops the WAL (releasing its directory lock) even while
    /// openraft's tasks still hold clones of this log.
    wal: RwLock<Option<Wal>>,
    ids: Mutex<LogIds>,
    committed: watch::Sender<Option<LogId>>,
    /// Sequence number of the last `append` handed to the WAL.
    appended_seq: Mutex<u64>,
    /// Sequence number up to which appends are durable (the WAL fires callbacks in order).
    durable_seq: Arc<watch::Sender<u64>>,
}

impl Shared {
    fn with_wal<T>(
        &self,
        what: &str,
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
}

/// Cloning shares the log: a clone is the log reader.
#[derive(Clone)]
pub(crate) struct WalLog {
    shared: Arc<Shared>,
}

fn storage_err(what: &str, e: impl std::fmt::Display) -> io::Error {
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
    pub(crate) async fn open(
        dir: &Path,
        force_sync: bool,
    ) -> Result<WalLog, crate::ReplicationError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, force_sync))
            .await
            .map_err(|e| {
                crate::ReplicationError::Start(format!("opening the log: task failed: {e}"))
            })?
    }

    fn open_blocking(dir: &Path, force_sync: bool) -> Result<WalLog, crate::ReplicationError> {
        let options = WalOptions {
            force_sync,
            ..WalOptions::default()
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
        let shared = Arc::new(Shared {
            wal: RwLock::new(Some(wal)),
            ids: Mutex::new(LogIds {
                vote,
                last_purged,
                last,
            }),
            committed: committed_tx,
            appended_seq: Mutex::new(0),
            durable_seq: Arc::new(watch::channel(0).0),
        });
        tokio::runtime::Handle::current()
            .spawn(persist_committed(Arc::downgrade(&shared), committed_rx));
        Ok(WalLog { shared })
    }

    fn ids(&self) -> MutexGuard<'_, LogIds> {
        self.shared
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let records = wal
        .read(last, last + 1)
        .map_err(|e| storage_err("reading the last log record", e))?;
    match records.first() {
        Some(record) => Ok(Some(decode_entry(record.index, &record.payload)?.log_id)),
        None => Ok(None),
    }
}

/// Writes the newest committed log id whenever it changes, one write at a time; ends with the log.
async fn persist_committed(shared: Weak<Shared>, mut committed: watch::Receiver<Option<LogId>>) {
    while committed.changed().await.is_ok() {
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
        // Recent records come from the WAL's memory cache; older ones are a short file read, so
        // this stays on the calling task.
        let what = format!("reading log entries [{start}, {end})");
        let records = self.shared.with_wal(&what, |wal| {
            wal.read(start + WAL_INDEX_OFFSET, end + WAL_INDEX_OFFSET)
                .map_err(|e| storage_err(&what, e))
        })?;
        records
            .iter()
            .map(|r| decode_entry(r.index, &r.payload))
            .collect()
    }

    /// Replication's read. When its first entry was purged meanwhile (a snapshot purge racing a
    /// replication stream, seen when a wiped member rejoins), return nothing: openraft then sends
    /// a heartbeat and, seeing the gap, a snapshot. A short read from the first kept entry would
    /// make it send an append whose entries do not follow its `prev_log_id`.
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
                "replication read starts below the purged point"
            );
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

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // Serialise with earlier appends: the vote must not reach the disk before them.
        let appended = *self
            .shared
            .appended_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let mut appended = self
            .shared
            .appended_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *appended += 1;
        let seq = *appended;
        let durable_seq = Arc::clone(&self.shared.durable_seq);
        let done = Box::new(move |result: Result<(), rzk_storage::StorageError>| {
            durable_seq.send_if_modified(|d| {
                let newer = *d < seq;
                *d = (*d).max(seq);
                newer
            });
            callback.io_completed(result.map_err(|e| storage_err("making log entries durable", e)));
        });
        // Under the sequence lock, so WAL order and sequence order agree.
        let what = format!("appending log entries up to {last}");
        let result = self.shared.with_wal(&what, |wal| {
            wal.append(records, done).map_err(|e| storage_err(&what, e))
        });
        drop(appended);
        result?;
        self.ids().last = Some(last);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let keep_upto = last_log_id.map_or(0, |id| id.index + WAL_INDEX_OFFSET);
        let last = self
            .blocking("truncating the log", move |wal| {
                wal.truncate_after(keep_upto)?;
                Ok(read_last(wal))
            })
            .await??;
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
