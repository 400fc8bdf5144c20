//! # rzk-replication: agreement on one ordered log
//!
//! Owns agreement: openraft (exact pin) adapted onto rzk-storage's log, the peer transport on
//! the quorum port, forwarding of proposals to the leader, and applying committed entries in
//! log order through an [`Applier`]. Payloads are opaque bytes (the server encodes state-machine
//! entries). Must not touch client sockets, jute framing or session timers. Standalone is a
//! one-member group on the same path.
//!
//! SKELETON: the API below is the contract the server builds against.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Applies committed entries. Called from one task, strictly in log order, once per entry on
/// every member. `snapshot`/`restore` are called between applies.
pub trait Applier: Send + Sync + 'static {
    /// Apply the committed payload at log `index`.
    fn apply(&self, index: u64, payload: &[u8]);
    /// Bytes of the applied state (everything up to the last applied index).
    fn snapshot(&self) -> Vec<u8>;
    /// Replace the applied state with snapshot bytes.
    fn restore(&self, bytes: &[u8]);
}

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// `myid` (1 for standalone).
    pub node_id: u64,
    /// `server.N` quorum addresses (`host:quorumPort`); one entry (self) for standalone.
    pub members: BTreeMap<u64, String>,
    /// Where the log lives (`dataLogDir`); `None` keeps it in memory (tests only).
    pub log_dir: Option<PathBuf>,
    /// Where snapshots live (`dataDir`).
    pub snapshot_dir: Option<PathBuf>,
    pub force_sync: bool,
    /// `snapCount`: entries between snapshots (jittered).
    pub snap_count: u64,
    /// `tickTime` in ms, and `initLimit`/`syncLimit` in ticks, for election and heartbeat timing.
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    /// No leader known (election in progress or no quorum).
    Looking,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("storage: {0}")]
    Storage(#[from] rzk_storage::StorageError),
    #[error("replication could not start: {0}")]
    Start(String),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error("no leader: the ensemble has no quorum right now")]
    NoLeader,
    #[error("the entry could not be made durable: {0}")]
    Storage(String),
    #[error("replication is shutting down")]
    ShuttingDown,
}

/// Resolves once the proposed entry is committed and applied locally (with its log index).
pub type Proposal = tokio::sync::oneshot::Receiver<Result<u64, ProposeError>>;

pub struct Replica {
    _applier: Arc<dyn Applier>,
}

impl Replica {
    /// Start (recover from storage, join the group). Returns when it can take proposals.
    pub async fn start(config: ReplicaConfig, applier: Arc<dyn Applier>) -> Result<Replica, ReplicationError> {
        let _ = (config, applier);
        todo!()
    }

    /// Enqueue a payload. Proposals from one caller enter the log in call order; the await only
    /// covers enqueueing (bounded, so a busy log pushes back); the returned receiver resolves
    /// after commit and local apply.
    pub async fn propose(&self, payload: Vec<u8>) -> Result<Proposal, ProposeError> {
        let _ = payload;
        todo!()
    }

    pub fn role(&self) -> Role {
        todo!()
    }

    pub async fn shutdown(self) {
        todo!()
    }
}
