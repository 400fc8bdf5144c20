//! # rzk-replication: agreement on one ordered log
//!
//! Owns agreement: openraft (exact pin) adapted onto rzk-storage's log, the peer transport on
//! the quorum port, forwarding of proposals to the leader, and applying committed entries in
//! log order through an [`Applier`]. Payloads are opaque bytes (the server encodes state-machine
//! entries). Must not touch client sockets, jute framing or session timers. Standalone is a
//! one-member group on the same path.
//!
//! ## Inside
//!
//! ```text
//!  propose(bytes) ──► openraft client_write_ff ──► RaftCore (batches queued writes: api_batch_capacity)
//!                                                   │ append(entries, IOFlushed)
//!                                                   ▼
//!                                 log: MemLog (log_dir None) | WalLog (rzk_storage::Wal, group commit)
//!                                                   │ committed
//!                                                   ▼
//!                 StateMachine::apply ──► Applier::apply(index, bytes) ──► the proposal's oneshot resolves
//! ```
//!
//! Timing (from `tickTime`): heartbeat = tick/2; election timeout uniformly in
//! [syncLimit·tick/2, syncLimit·tick] (ZooKeeper's followers give up on a leader after
//! syncLimit·tick). A one-member group elects itself at once, without waiting for a timeout.
//! Peers (more than one member): JSON frames over TCP on the quorum port (`transport`); every
//! member initializes the group with the same `server.N` list on an empty log. A follower answers
//! proposals with [`ProposeError::NoLeader`] until forwarding to the leader exists.
//! Snapshots: every `snapCount` entries with ZooKeeper's jitter, drawn once per process from
//! [snapCount/2+1, snapCount].

mod log_mem;
mod log_wal;
mod raft_types;
mod state_machine;
mod transport;

pub use transport::PEER_FRAME_BYTES_MAX;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, ServerState};

use crate::raft_types::{proposal_responder, Raft, Rzk};
use crate::state_machine::{Snapshots, StateMachine};

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

/// How many proposals may wait for the Raft core before `propose` pushes back. This is the size of
/// openraft's API queue (which also carries peer RPCs).
pub const PROPOSALS_QUEUED_MAX: u64 = 10_000;

/// Log entries kept behind the newest snapshot, so a slightly lagging follower catches up from the
/// log instead of receiving a whole snapshot.
pub const LOGS_KEPT_BEHIND_SNAPSHOT: u64 = 1_000;

/// How long `start` waits for a one-member group to elect itself.
pub const STANDALONE_ELECTION_WAIT: Duration = Duration::from_secs(10);

pub struct Replica {
    raft: Raft,
    metrics: openraft::type_config::alias::WatchReceiverOf<Rzk, openraft::RaftMetrics<Rzk>>,
    /// The durable log, when there is one (to save the committed log id on shutdown).
    wal_log: Option<log_wal::WalLog>,
    /// The quorum-port listener and its connections (aborted when dropped).
    peers: Option<tokio::task::JoinSet<()>>,
}

impl Replica {
    /// Start (recover from storage, join the group). Returns when it can take proposals.
    pub async fn start(
        config: ReplicaConfig,
        applier: Arc<dyn Applier>,
    ) -> Result<Replica, ReplicationError> {
        let Some(self_addr) = config.members.get(&config.node_id) else {
            return Err(ReplicationError::Start(format!(
                "myid {} is not among the members {:?}; add server.{} to the configuration",
                config.node_id,
                config.members.keys().collect::<Vec<_>>(),
                config.node_id
            )));
        };
        let standalone = config.members.len() == 1;
        // Peers must reach us while we start: bind before recovering.
        let listener = if standalone {
            None
        } else {
            Some(tokio::net::TcpListener::bind(self_addr.as_str()).await.map_err(|e| {
                ReplicationError::Start(format!(
                    "binding the quorum address {self_addr} of server.{}: {e}; free the port or fix server.{}",
                    config.node_id, config.node_id
                ))
            })?)
        };
        let raft_config = Arc::new(raft_config(&config)?);

        let snapshots = match config.snapshot_dir.as_ref().or(config.log_dir.as_ref()) {
            Some(dir) => Snapshots::open(rzk_storage::SnapshotStore::open(dir)?)?,
            None => Snapshots::in_memory(),
        };
        let sm = StateMachine::new(applier, snapshots);
        let (raft, wal_log) = match &config.log_dir {
            None => (
                Raft::new(
                    config.node_id,
                    raft_config,
                    transport::TcpPeers,
                    log_mem::MemLog::default(),
                    sm,
                )
                .await,
                None,
            ),
            Some(dir) => {
                let log = log_wal::WalLog::open(dir, config.force_sync).await?;
                (
                    Raft::new(
                        config.node_id,
                        raft_config,
                        transport::TcpPeers,
                        log.clone(),
                        sm,
                    )
                    .await,
                    Some(log),
                )
            }
        };
        let raft =
            raft.map_err(|e| ReplicationError::Start(format!("openraft did not start: {e}")))?;

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ReplicationError::Start(format!("reading the Raft state: {e}")))?;
        if !initialized {
            let members: BTreeMap<u64, BasicNode> = config
                .members
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            tracing::info!(
                node_id = config.node_id,
                ?members,
                "empty log: initializing the group"
            );
            raft.initialize(members)
                .await
                .map_err(|e| ReplicationError::Start(format!("initializing the group: {e}")))?;
        }

        let peers = listener.map(|listener| transport::serve(listener, raft.clone()));
        let metrics = raft.metrics();
        if standalone {
            raft.wait(Some(STANDALONE_ELECTION_WAIT))
                .state(ServerState::Leader, "the one-member group elects itself")
                .await
                .map_err(|e| {
                    ReplicationError::Start(format!(
                        "node {} did not become leader of its one-member group: {e}",
                        config.node_id
                    ))
                })?;
            // Serve nothing before every recovered entry is applied: the committed index on
            // disk may lag (it is saved lazily), so replay finishes only once the new term's
            // first entry commits. Reads before that would miss acknowledged writes.
            raft.wait(Some(STANDALONE_ELECTION_WAIT))
                .metrics(
                    |m| {
                        m.last_log_index.is_some()
                            && m.last_applied.as_ref().map(|id| id.index()) >= m.last_log_index
                    },
                    "every entry recovered from the log is applied",
                )
                .await
                .map_err(|e| {
                    ReplicationError::Start(format!(
                        "node {} did not apply its recovered log: {e}",
                        config.node_id
                    ))
                })?;
            tracing::info!(
                node_id = config.node_id,
                "replica is leader and takes proposals"
            );
        } else {
            let wait = Duration::from_millis(config.init_limit.max(1) * config.tick_ms.max(1))
                .max(STANDALONE_ELECTION_WAIT);
            let known = raft
                .wait(Some(wait))
                .metrics(|m| m.current_leader.is_some(), "a leader is known (initLimit x tickTime)")
                .await
                .map_err(|e| {
                    ReplicationError::Start(format!(
                        "node {} found no leader among {:?}: {e}; check that a quorum of the servers runs and can reach each other's quorum ports",
                        config.node_id,
                        config.members
                    ))
                })?;
            tracing::info!(node_id = config.node_id, leader = ?known.current_leader, "replica joined the group");
        }
        Ok(Replica {
            raft,
            metrics,
            wal_log,
            peers,
        })
    }

    /// Enqueue a payload. Proposals from one caller enter the log in call order; the await only
    /// covers enqueueing (bounded, so a busy log pushes back); the returned receiver resolves
    /// after commit and local apply.
    pub async fn propose(&self, payload: Vec<u8>) -> Result<Proposal, ProposeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.raft
            .client_write_ff(raft_types::Payload(payload), Some(proposal_responder(tx)))
            .await
            .map_err(|_| ProposeError::ShuttingDown)?;
        Ok(rx)
    }

    pub fn role(&self) -> Role {
        let metrics = self.metrics.borrow_watched();
        match metrics.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower | ServerState::Learner if metrics.current_leader.is_some() => {
                Role::Follower
            }
            _ => Role::Looking,
        }
    }

    pub async fn shutdown(mut self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("the Raft core ended with an error while shutting down: {e}");
        }
        if let Some(mut peers) = self.peers.take() {
            peers.shutdown().await;
        }
        if let Some(log) = &self.wal_log {
            log.close().await;
        }
    }
}

/// openraft's configuration derived from ZooKeeper's settings (see the crate docs).
fn raft_config(config: &ReplicaConfig) -> Result<openraft::Config, ReplicationError> {
    let tick = config.tick_ms.max(2);
    let heartbeat = tick / 2;
    let election_max = (config.sync_limit.max(1) * tick).max(heartbeat * 4);
    let election_min = (election_max / 2).max(heartbeat * 2);
    let snap_threshold = jittered_snap_count(config.snap_count);
    openraft::Config {
        cluster_name: "rzk".to_string(),
        heartbeat_interval: heartbeat,
        election_timeout_min: election_min,
        election_timeout_max: election_max,
        install_snapshot_timeout: config.init_limit.max(1) * tick,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snap_threshold),
        max_in_snapshot_log_to_keep: LOGS_KEPT_BEHIND_SNAPSHOT,
        replication_lag_threshold: snap_threshold + LOGS_KEPT_BEHIND_SNAPSHOT,
        api_channel_size: Some(PROPOSALS_QUEUED_MAX),
        ..Default::default()
    }
    .validate()
    .map_err(|e| {
        ReplicationError::Start(format!(
            "timing derived from tickTime={} ms, syncLimit={}: {e}",
            config.tick_ms, config.sync_limit
        ))
    })
}

/// ZooKeeper's snapshot jitter: a random point in [snap_count/2+1, snap_count], so that the
/// members of an ensemble do not all snapshot at the same entry.
fn jittered_snap_count(snap_count: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let snap_count = snap_count.max(1);
    let low = snap_count / 2 + 1;
    if low >= snap_count {
        return snap_count;
    }
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    low + random % (snap_count - low + 1)
}

#[cfg(test)]
mod suite_tests;
