//! openraft's state machine: hands committed entries to the server's [`Applier`] in log order and
//! keeps snapshots (in memory, or as files through `rzk_storage::SnapshotStore`; a snapshot saved
//! as a file is not also held in memory, and is read back when a follower needs it).
//!
//! The applier is in-memory state; durability comes from snapshots plus the log. On restart
//! openraft installs the newest snapshot (→ `Applier::restore`) and re-applies the committed log
//! after it, so the applier sees every index after the snapshot exactly once per process.
//!
//! Building: `get_snapshot_builder` runs on openraft's state-machine task, between applies, and
//! only asks the applier for a [`SnapshotJob`](crate::SnapshotJob) (a point-in-time copy, cheap
//! when the applier shares structure); the job serialises on a blocking thread from openraft's
//! build task while applies go on.
//!
//! A snapshot file that cannot be saved (full disk) is not an error for openraft, which would
//! stop for good: the snapshot is kept in memory (it can still be sent to a follower) and the
//! log is not purged past the newest snapshot that is on disk, so a restart still recovers.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use rzk_storage::SnapshotStore;

use crate::applied::AppliedIndex;
use crate::raft_types::{io_err, LogId, Rzk, SnapshotMeta, StoredMembership};
use crate::{Applier, SnapshotJob, SnapshotSource};

/// Snapshot bytes handed between openraft, the network and the applier.
pub(crate) type SnapshotData = Vec<u8>;

/// Leading bytes of a snapshot file written by this crate.
const SNAPSHOT_MAGIC: &[u8; 4] = b"RZKS";
const SNAPSHOT_FORMAT_VERSION: u8 = 1;

struct CurrentSnapshot {
    meta: SnapshotMeta,
    /// `None` once the snapshot is in its file, read back when openraft asks for it (to send
    /// it to a follower): a saved snapshot is not copied and held in memory a second time.
    data: Option<SnapshotData>,
}

/// The newest snapshot, shared by the state machine and the builders it hands out.
pub(crate) struct Snapshots {
    store: Option<SnapshotStore>,
    current: Mutex<Option<CurrentSnapshot>>,
    /// Index + 1 of the newest snapshot saved as a file (0: none). The log is not purged past it.
    saved_next: Arc<AtomicU64>,
    /// Set while the snapshot loaded at open has not been installed: its bytes go back to the
    /// current snapshot once, for openraft's second look at it while starting (see
    /// `install_snapshot`).
    loaded_at_open: AtomicBool,
}

impl Snapshots {
    pub(crate) fn in_memory() -> Arc<Snapshots> {
        Arc::new(Snapshots {
            store: None,
            current: Mutex::new(None),
            saved_next: Arc::default(),
            loaded_at_open: AtomicBool::new(false),
        })
    }

    /// Snapshots as files; loads the newest one that reads back whole.
    pub(crate) fn open(store: SnapshotStore) -> Result<Arc<Snapshots>, crate::ReplicationError> {
        let saved_next = Arc::new(AtomicU64::new(0));
        let current = match store.load_latest()? {
            None => None,
            Some((index, file)) => {
                saved_next.store(index + 1, Ordering::SeqCst);
                let (meta, data) = decode_snapshot(file).map_err(|e| {
                    crate::ReplicationError::Start(format!(
                        "snapshot at index {index} is not an rzk snapshot ({e}); move it out of the snapshot directory to start without it"
                    ))
                })?;
                // Kept: openraft installs it at once on start.
                Some(CurrentSnapshot {
                    meta,
                    data: Some(data),
                })
            }
        };
        Ok(Arc::new(Snapshots {
            store: Some(store),
            loaded_at_open: AtomicBool::new(current.is_some()),
            current: Mutex::new(current),
            saved_next,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Option<CurrentSnapshot>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Index + 1 of the newest snapshot on disk (0: none), for the log's purge limit.
    pub(crate) fn saved_next(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.saved_next)
    }

    fn current_log_id(&self) -> Option<LogId> {
        self.lock().as_ref().and_then(|c| c.meta.last_log_id)
    }

    /// Save `source`'s bytes as the snapshot file of `meta`, streamed (the bytes are never whole
    /// in memory), and make it the current snapshot unless a newer one already is. Only with a
    /// store.
    async fn save(
        self: &Arc<Self>,
        meta: &SnapshotMeta,
        source: Arc<dyn SnapshotSource>,
    ) -> Result<u64, io::Error> {
        let prefix = encode_snapshot_prefix(meta)?;
        let this = Arc::clone(self);
        let index = meta.last_log_id.map_or(0, |id| id.index);
        let saved = tokio::task::spawn_blocking(move || {
            let store = this
                .store
                .as_ref()
                .expect("save is called only with a store");
            let mut state_bytes = 0;
            store
                .save_streamed(index, |out| {
                    out.write_all(&prefix)?;
                    state_bytes = source.write_to(out)?;
                    Ok(())
                })
                .map(|_| state_bytes)
        })
        .await
        .map_err(|e| io_err(format_args!("snapshot writer task failed: {e}")))?;
        let state_bytes =
            saved.map_err(|e| io_err(format_args!("saving the snapshot at index {index}: {e}")))?;
        self.saved_next.fetch_max(index + 1, Ordering::SeqCst);
        self.make_current(meta, None);
        Ok(state_bytes)
    }

    /// Make `meta`/`data` the current snapshot unless a newer one already is.
    fn keep_in_memory(&self, meta: &SnapshotMeta, data: &SnapshotData) {
        self.make_current(meta, Some(data));
    }

    /// Make `meta` the current snapshot unless a newer one already is, with a copy of `data`, or
    /// without (`None`: its file holds it).
    fn make_current(&self, meta: &SnapshotMeta, data: Option<&SnapshotData>) {
        let mut current = self.lock();
        let newer = current
            .as_ref()
            .is_none_or(|c| c.meta.last_log_id < meta.last_log_id);
        if newer {
            *current = Some(CurrentSnapshot {
                meta: meta.clone(),
                data: data.cloned(),
            });
        }
    }

    /// The current snapshot with its bytes (read back from its file when not held in memory),
    /// or `None` when there is none or its file no longer reads back whole (openraft then
    /// builds a new one).
    async fn current(self: &Arc<Self>) -> Result<Option<RzkSnapshot>, io::Error> {
        let meta = {
            let mut current = self.lock();
            match current.as_mut() {
                None => return Ok(None),
                Some(CurrentSnapshot {
                    meta,
                    data: data @ Some(_),
                }) => {
                    // When its file holds it too (the snapshot loaded at start, asked for once
                    // to be installed) it is handed over rather than copied; asked again, the
                    // file is read. One kept only in memory (no store, or its save failed) stays.
                    let index = meta.last_log_id.map_or(0, |id| id.index);
                    let in_file = self.saved_next.load(Ordering::SeqCst) == index + 1;
                    let snapshot = if self.store.is_some() && in_file {
                        data.take().expect("matched Some")
                    } else {
                        data.clone().expect("matched Some")
                    };
                    return Ok(Some(Snapshot {
                        meta: meta.clone(),
                        snapshot,
                    }));
                }
                Some(CurrentSnapshot { meta, data: None }) => meta.clone(),
            }
        };
        let index = meta.last_log_id.map_or(0, |id| id.index);
        let this = Arc::clone(self);
        let file = tokio::task::spawn_blocking(move || {
            let store = this
                .store
                .as_ref()
                .expect("only a saved snapshot has no bytes");
            store.load(index)
        })
        .await
        .map_err(|e| io_err(format_args!("snapshot reader task failed: {e}")))?
        .map_err(|e| io_err(format_args!("reading the snapshot at index {index}: {e}")))?;
        let Some(file) = file else {
            tracing::warn!(index, "the current snapshot's file is gone or damaged");
            return Ok(None);
        };
        let (file_meta, data) = decode_snapshot(file)
            .map_err(|e| io_err(format_args!("snapshot at index {index}: {e}")))?;
        if file_meta.last_log_id != meta.last_log_id {
            tracing::warn!(index, file = ?file_meta.last_log_id, current = ?meta.last_log_id,
                "the snapshot file holds another snapshot than the current one");
            return Ok(None);
        }
        Ok(Some(Snapshot {
            meta,
            snapshot: data,
        }))
    }
}

/// What goes before the state in a snapshot file: magic, format version, meta length, meta JSON.
fn encode_snapshot_prefix(meta: &SnapshotMeta) -> Result<Vec<u8>, io::Error> {
    let meta_json = serde_json::to_vec(meta)
        .map_err(|e| io_err(format_args!("encoding snapshot meta: {e}")))?;
    let meta_len =
        u32::try_from(meta_json.len()).map_err(|_| io_err("snapshot meta larger than 4 GiB"))?;
    let mut out = Vec::with_capacity(9 + meta_json.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.push(SNAPSHOT_FORMAT_VERSION);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(&meta_json);
    Ok(out)
}

/// The meta and the state of a snapshot file's bytes. The state keeps the file's buffer (its
/// prefix is moved out, not the state copied out): on a large tree it is hundreds of MiB.
fn decode_snapshot(mut file: Vec<u8>) -> Result<(SnapshotMeta, SnapshotData), String> {
    let header = file.get(..9).ok_or("shorter than its header")?;
    if &header[..4] != SNAPSHOT_MAGIC {
        return Err("wrong magic".into());
    }
    if header[4] != SNAPSHOT_FORMAT_VERSION {
        return Err(format!(
            "format version {} is not {}",
            header[4], SNAPSHOT_FORMAT_VERSION
        ));
    }
    let meta_len = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
    let meta_json = file.get(9..9 + meta_len).ok_or("meta runs past the end")?;
    let meta = serde_json::from_slice(meta_json).map_err(|e| format!("meta: {e}"))?;
    file.drain(..9 + meta_len);
    Ok((meta, file))
}

pub(crate) struct StateMachine {
    applier: Arc<dyn Applier>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: Arc<Snapshots>,
    /// Published after every entry, for forwarded proposals and read barriers.
    applied: Arc<AppliedIndex>,
}

impl StateMachine {
    pub(crate) fn new(
        applier: Arc<dyn Applier>,
        snapshots: Arc<Snapshots>,
        applied: Arc<AppliedIndex>,
    ) -> StateMachine {
        StateMachine {
            applier,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots,
            applied,
        }
    }
}

/// A point-in-time copy taken on the state machine task (between applies); building serialises
/// it on a blocking thread and saves it.
pub(crate) struct SnapshotBuilder {
    meta: SnapshotMeta,
    /// In a mutex only because openraft wants the builder `Sync`.
    job: Mutex<Option<SnapshotJob>>,
    snapshots: Arc<Snapshots>,
}

impl RaftSnapshotBuilder<Rzk> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<RzkSnapshot, io::Error> {
        let job: Arc<dyn SnapshotSource> = self
            .job
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| io_err("a snapshot builder was used twice"))?
            .into();
        let started = std::time::Instant::now();
        let saved = match self.snapshots.store {
            Some(_) => Some(self.snapshots.save(&self.meta, Arc::clone(&job)).await),
            None => None,
        };
        let data = match saved {
            Some(Ok(bytes)) => {
                tracing::info!(last_log_id = ?self.meta.last_log_id, bytes, elapsed = ?started.elapsed(), "snapshot built and saved");
                // openraft keeps only the meta of a snapshot it had built (its state-machine
                // worker reports the meta to the core and drops the rest); the bytes are in the
                // file, read back by `get_current_snapshot` when a follower needs them.
                Vec::new()
            }
            not_saved => {
                if let Some(Err(e)) = not_saved {
                    // Not fatal (openraft would stop): keep it in memory; the log stays unpurged
                    // past the newest snapshot on disk, so nothing is lost on restart.
                    tracing::error!(
                        "{e}; the snapshot is kept in memory only and the log is not purged past the last saved snapshot; free disk space, or fix the file or directory the error names"
                    );
                }
                let data = tokio::task::spawn_blocking(move || {
                    let mut data = Vec::new();
                    job.write_to(&mut data).map(|_| data)
                })
                .await
                .map_err(|e| io_err(format_args!("snapshot serialiser task failed: {e}")))??;
                self.snapshots.keep_in_memory(&self.meta, &data);
                tracing::info!(last_log_id = ?self.meta.last_log_id, bytes = data.len(), elapsed = ?started.elapsed(), "snapshot built in memory");
                data
            }
        };
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: data,
        })
    }
}

type RzkSnapshot = openraft::type_config::alias::SnapshotOf<Rzk, SnapshotData>;

impl RaftStateMachine<Rzk> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: futures::Stream<Item = Result<EntryResponder<Rzk>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(payload) => self.applier.apply(log_id.index, &payload.0),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                }
            }
            self.last_applied = Some(log_id);
            self.applied.advance(log_id.index);
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
            },
            job: Mutex::new(Some(self.applier.snapshot_job())),
            snapshots: Arc::clone(&self.snapshots),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = snapshot.len(), "installing snapshot");
        self.applier.restore(&snapshot).map_err(|error| {
            tracing::error!(last_log_id = ?meta.last_log_id, "the snapshot cannot be restored: {error}");
            io_err(format_args!("restoring the snapshot: {error}"))
        })?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        if let Some(last) = meta.last_log_id {
            self.applied.advance(last.index);
        }
        // On restart openraft installs the snapshot it just read from us: no need to write it
        // again, nor to keep its bytes in memory (its file holds them). Except once: still
        // starting, openraft asks for the current snapshot again (for its meta), and reading and
        // decompressing the file for that costs as much again as the bytes in hand, which are
        // handed over then (and dropped by openraft).
        if self.snapshots.current_log_id() != meta.last_log_id || self.snapshots.lock().is_none() {
            if self.snapshots.store.is_some() {
                self.snapshots.save(meta, Arc::new(snapshot)).await?;
            } else {
                self.snapshots.keep_in_memory(meta, &snapshot);
            }
        } else if self.snapshots.store.is_some() {
            let hand_back = self.snapshots.loaded_at_open.swap(false, Ordering::SeqCst);
            if let Some(current) = self.snapshots.lock().as_mut() {
                current.data = hand_back.then_some(snapshot);
            }
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<RzkSnapshot>, io::Error> {
        self.snapshots.current().await
    }
}
