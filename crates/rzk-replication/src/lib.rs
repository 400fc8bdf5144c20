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
//!  propose(bytes) on the leader ──► openraft client_write_ff ──► RaftCore (batches: api_batch_capacity)
//!  propose on a follower ──► forwarder ══ one ordered, pipelined stream ══► leader: client_write_ff
//!                                                   │ append(entries, IOFlushed)
//!                                                   ▼
//!                                 log: MemLog (log_dir None) | WalLog (rzk_storage::Wal, group commit;
//!                                      a lone write in a one-member group syncs on the core's thread)
//!                                                   │ committed
//!                                                   ▼
//!   StateMachine::apply ──► Applier::apply(index, bytes) ──► AppliedIndex ──► the proposal's reply
//!                                                            (leader: openraft's responder;
//!                                                             follower: leader's index, then local apply)
//! ```
//!
//! - **Forwarding** (`forward.rs`): a follower sends proposals, read-index requests and session
//!   touches to the leader on one connection, pipelined, at most
//!   [`FORWARDED_PROPOSALS_IN_FLIGHT_MAX`] proposals awaiting the leader. A proposal resolves once
//!   the follower applied the index the leader reports. A broken stream or a change of leader
//!   fails what still waits for the leader with [`ProposeError::NoLeader`].
//! - **Touches** ([`Replica::report_touches`]) reach [`Applier::sessions_touched`] on the leader,
//!   out of band: pings are never log entries.
//! - **Read barrier** ([`Replica::read_barrier`], for `sync`): the leader's ReadIndex (openraft's
//!   `get_read_linearizer`), asked over the stream on a follower, then wait for local apply.
//! - **Role** ([`Replica::role`]): openraft 0.10 never demotes a leader that lost its quorum (its
//!   CheckQuorum only refuses new proposals once `last_quorum_acked` is older than the leader
//!   lease = `election_timeout_max` <= syncLimit·tick, see openraft's `docs/protocol/check_quorum`),
//!   and with pre-vote a cut-off follower keeps its old leader. So the role is derived here: a
//!   leader is `Looking` once its quorum's last answer is older than syncLimit·tick, a follower
//!   once the leader's last accepted append is. Measured on loopback with tick = 100 ms,
//!   syncLimit = 5: 470-540 ms after the quorum goes away (bound asserted: 2 x syncLimit·tick).
//!
//! Timing (`Timing::derive`, from `tickTime` and `syncLimit`):
//! - heartbeat `h` = tick/4, clamped to [[`HEARTBEAT_MS_MIN`], [`HEARTBEAT_MS_MAX`]];
//! - election timeout max `E` = [`ELECTION_TIMEOUT_HEARTBEATS`]·h, at most syncLimit·tick (a
//!   ZooKeeper follower gives up on its leader after syncLimit·tick) but at least 4·h; min = E/2.
//!   `E` is also openraft's leader lease: a follower grants no (pre-)vote within `E` of the
//!   leader's last append, and a leader refuses proposals once its quorum's last answer is older.
//! - tickTime=2000 (ZooKeeper's default), syncLimit=5: h = 100 ms, E in [500, 1000] ms;
//!   tickTime=200: h = 50 ms, E in [250, 500] ms.
//!
//! A follower whose leader stops sending (no connection event) starts a pre-vote once the lease
//! and then a random election timeout ran out: after E + [E/2, E) = 1.5-2 E. A follower whose
//! leader's replication connection closes (a killed process: the kernel closes its sockets at
//! once, as a ZooKeeper follower notices its broken leader connection) does not wait the random
//! part: it starts a pre-vote as soon as the lease ran out (the survivors one heartbeat apart, by
//! id, so they do not split the vote), retrying every heartbeat until a leader is elected or the
//! ordinary timer takes over (`Node::leader_connection_closed`). Kill -9 of the leader to a
//! new leader serving is then about E plus one pre-vote and vote round (measured on loopback:
//! see `crates/rzk/tests/ensemble_clients.rs`). Pre-vote stays on, so a member returning from a
//! partition, or one whose connection merely broke, cannot unseat a leader that a quorum still
//! hears. A one-member group elects itself at once, without waiting for a timeout.
//! Peers (more than one member): binary frames over TCP on the quorum port (`transport`: a small
//! JSON header, entries and snapshot chunks as raw bytes); every member initializes the group
//! with the same `server.N` list on an empty log. A member whose data directory was wiped comes
//! back with an empty log and is sent a snapshot (`allow_log_reversion`).
//! Snapshots: every `snapCount` entries with ZooKeeper's jitter, drawn once per process from
//! [snapCount/2+1, snapCount].
//!
//! Runtime: openraft runs on `runtime.rs`'s `RzkRuntime`, Tokio's with sleeps under
//! [`SLEEP_AT_ONCE_BELOW`] reduced to one yield (Tokio would stretch them to its 1 ms tick; openraft
//! sleeps 1 µs on the path from a durable entry to its commit). Every task openraft spawns (the
//! Raft core, its flush-completion forwarder, the state-machine worker, a leader's replication
//! streams) runs inside one Tokio task per replica (`driver.rs`), so that the hand-offs of one
//! write between them stay on one worker instead of waking another thread for each lone write.
//!
//! Syncing in a one-member group: nothing is replicated while its log syncs, so once 8 appends in
//! a row found no other proposal in flight (a single client writing synchronously), the Raft core
//! syncs on its own thread instead of handing each sync to the WAL's flusher thread and waiting to
//! be woken (`WalLog::sync_here_when_idle`, BENCHMARKS.md "the write path, second pass"). Under
//! concurrent writes the flusher syncs while the core batches the next entries, as before.

mod applied;
mod driver;
mod forward;
mod log_mem;
mod log_wal;
mod raft_types;
mod runtime;
mod stale_reads;
mod state_machine;
mod transport;

pub use runtime::SLEEP_AT_ONCE_BELOW;
pub use transport::{PEER_FRAME_BYTES_MAX, SNAPSHOT_CHUNK_BYTES};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::Instant as _;
use openraft::{BasicNode, ServerState};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::applied::AppliedIndex;
use crate::forward::Outbound;
use crate::raft_types::{proposal_responder, ProposalSender, Raft, Rzk};
use crate::state_machine::{Snapshots, StateMachine};

/// A point-in-time copy of the applied state that writes its snapshot bytes, off the apply path
/// ([`Applier::snapshot_job`]), on a blocking thread, as often as asked: to the snapshot file as
/// they are made, or into memory when there is no file (or it cannot be written).
pub trait SnapshotSource: Send + Sync + 'static {
    /// Write the snapshot bytes to `out`, in pieces, and say how many there were (the same
    /// bytes each time); fails only when `out` does.
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<u64>;
}

/// Bytes already made.
impl SnapshotSource for Vec<u8> {
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        out.write_all(self)?;
        Ok(self.len() as u64)
    }
}

/// What [`Applier::snapshot_job`] returns.
pub type SnapshotJob = Box<dyn SnapshotSource>;

/// Applies committed entries. Called from one task, strictly in log order, once per entry on
/// every member. `snapshot`/`restore` are called between applies.
pub trait Applier: Send + Sync + 'static {
    /// Apply the committed payload at log `index`.
    fn apply(&self, index: u64, payload: &[u8]);
    /// Bytes of the applied state (everything up to the last applied index).
    fn snapshot(&self) -> Vec<u8>;
    /// Replace the applied state with snapshot bytes. `Err` says why they cannot be restored
    /// (with what to do): the member stops, and at start-up `Replica::start` fails with it.
    fn restore(&self, bytes: &[u8]) -> Result<(), String>;
    /// A point-in-time copy of the applied state, serialised by the returned job on a blocking
    /// thread while applies continue (called between applies). Override it when a copy is cheap
    /// (structural sharing); the default serialises at once, so applies wait for it.
    fn snapshot_job(&self) -> SnapshotJob {
        Box::new(self.snapshot())
    }
    /// On the leader only: members' clients touched these sessions since their last report
    /// ([`Replica::report_touches`], the leader's own reports included). Called from a network
    /// task, never from `apply`; must not block.
    fn sessions_touched(&self, _session_ids: &[i64]) {}
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
    /// `preAllocSize` in bytes: log segments are preallocated in, and roll at, this size.
    pub log_segment_bytes: u64,
    /// `snapCount`: entries between snapshots (jittered).
    pub snap_count: u64,
    /// `tickTime` in ms, and `initLimit`/`syncLimit` in ticks, for election and heartbeat timing.
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
/// Longest a clean shutdown waits for the snapshot it takes (below `zkServer.sh stop`'s 30 s).
pub const SHUTDOWN_SNAPSHOT_WAIT: Duration = Duration::from_secs(20);

/// How many forwarded proposals may wait for the leader's answer at once, per member. Past it
/// `propose` on a follower waits (FIFO) for an answer: the stream to the leader pushes back.
pub const FORWARDED_PROPOSALS_IN_FLIGHT_MAX: usize = 4_096;

/// Lower bound of the heartbeat interval (tiny `tickTime`s).
pub const HEARTBEAT_MS_MIN: u64 = 10;

/// Upper bound of the heartbeat interval: with ZooKeeper's default `tickTime=2000`, tick/4 would
/// be 500 ms, and the election timeout (a multiple of it) 5 s.
pub const HEARTBEAT_MS_MAX: u64 = 100;

/// The election timeout's upper end (and openraft's leader lease), in heartbeats.
pub const ELECTION_TIMEOUT_HEARTBEATS: u64 = 10;

/// Heartbeat and election timing derived from `tickTime` and `syncLimit` (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    /// Also openraft's leader lease.
    pub election_timeout_max_ms: u64,
}

impl Timing {
    pub fn derive(tick_ms: u64, sync_limit: u64) -> Timing {
        let tick = tick_ms.max(2);
        let sync_window = tick.saturating_mul(sync_limit.max(1));
        let heartbeat = (tick / 4).clamp(HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX);
        let election_max = (heartbeat * ELECTION_TIMEOUT_HEARTBEATS)
            .min(sync_window)
            .max(heartbeat * 4);
        Timing {
            heartbeat_ms: heartbeat,
            election_timeout_min_ms: election_max / 2,
            election_timeout_max_ms: election_max,
        }
    }
}

/// A follower counts as synced (`ReplicaStatus::synced_followers`) when its log is at most this
/// many entries behind the leader's and it answered within the sync window.
pub const SYNCED_FOLLOWER_LAG_MAX: u64 = 1_000;

/// What a member reports about itself (for `srvr`, `stat`, `mntr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub role: Role,
    /// The leader this member follows (itself when leader); `None` while `Looking`.
    pub leader_id: Option<u64>,
    pub term: u64,
    /// Highest log index known committed here.
    pub commit_index: u64,
    /// Highest log index applied here.
    pub applied_index: u64,
    /// On the leader: followers that answered within the sync window (0 elsewhere).
    pub followers: usize,
    /// On the leader: of those, followers within [`SYNCED_FOLLOWER_LAG_MAX`] entries of its log.
    pub synced_followers: usize,
    /// On the leader: each follower's id and how many entries its log is behind the leader's.
    pub follower_lag: Vec<(u64, u64)>,
    /// The durable log's counters (group-commit syncs: count, total and longest time, and how
    /// many took how long); `None` in memory.
    pub log_syncs: Option<rzk_storage::WalStats>,
    /// Last log index of the newest snapshot (saved as a file, or held in memory when its file
    /// could not be written); `None` before the first.
    pub snapshot_index: Option<u64>,
    /// Last log index dropped from the log (covered by a saved snapshot); `None` before any.
    pub purged_index: Option<u64>,
}

/// Where a request that needs the leader goes.
pub(crate) enum Route {
    /// This member is the Raft leader.
    Local,
    /// Forward to this member.
    Remote(u64),
    NoLeader,
}

/// What the Raft core, the peer transport and the forwarder share.
pub(crate) struct Node {
    pub(crate) raft: Raft,
    pub(crate) id: u64,
    pub(crate) members: BTreeMap<u64, String>,
    standalone: bool,
    /// `syncLimit x tickTime`: a leader without a quorum's answer, or a follower without word
    /// from its leader, for this long is `Looking`.
    pub(crate) sync_window: Duration,
    /// `initLimit x tickTime`: how long a member may take to apply up to a read barrier.
    init_window: Duration,
    pub(crate) heartbeat: Duration,
    /// openraft's leader lease (`election_timeout_max`): no (pre-)vote is granted within it of
    /// the leader's last append.
    leader_lease: Duration,
    /// The (leader, term) an early election is scheduled for, so a leader's several closed
    /// connections schedule it once.
    early_election: Mutex<Option<(u64, u64)>>,
    pub(crate) applier: Arc<dyn Applier>,
    pub(crate) applied: Arc<AppliedIndex>,
    /// The last leader whose append (or snapshot) this member accepted, and when.
    contact: Mutex<Option<(u64, Instant)>>,
    metrics: openraft::type_config::alias::WatchReceiverOf<Rzk, openraft::RaftMetrics<Rzk>>,
}

impl Node {
    pub(crate) fn heard_from_leader(&self, leader: u64) {
        *self
            .contact
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((leader, Instant::now()));
    }

    fn heard_recently_from(&self, leader: u64) -> bool {
        self.contact
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|(from, at)| from == leader && at.elapsed() < self.sync_window)
    }

    /// The leader's replication connection to this member closed: when that happens because
    /// the leader's process died, the kernel closed its sockets at once, so there is no point in
    /// waiting a random election timeout on top of the leader lease. Schedules pre-votes from
    /// the moment the lease on `leader` runs out here (survivors one heartbeat apart, by their
    /// rank among the members), every heartbeat, until this member follows someone else, hears
    /// from `leader` again, or the ordinary election timer has had time to fire (a second lease).
    /// Pre-vote keeps this harmless when the leader lives: the others still hear it and refuse.
    pub(crate) fn leader_connection_closed(self: &Arc<Self>, leader: u64) {
        if self.standalone || leader == self.id {
            return;
        }
        let Some((from, heard_at)) = *self
            .contact
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        else {
            return;
        };
        let term = {
            let m = self.metrics.borrow_watched();
            if from != leader
                || m.state != ServerState::Follower
                || m.current_leader != Some(leader)
            {
                return;
            }
            m.current_term
        };
        {
            let mut scheduled = self
                .early_election
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *scheduled == Some((leader, term)) {
                return;
            }
            *scheduled = Some((leader, term));
        }
        let rank = self
            .members
            .keys()
            .filter(|id| **id != leader)
            .position(|id| *id == self.id)
            .unwrap_or(0) as u32;
        let node = self.clone();
        tokio::spawn(async move {
            // openraft's lease runs from when it took the append, a little before `heard_at`;
            // it is expired strictly after `lease`, hence the extra millisecond.
            let mut at =
                heard_at + node.leader_lease + Duration::from_millis(1) + node.heartbeat * rank;
            let give_up = heard_at + node.leader_lease * 2;
            while at <= give_up {
                tokio::time::sleep_until(at.into()).await;
                if !node.still_follows_silent(leader, term, heard_at) {
                    return;
                }
                tracing::info!(
                    leader,
                    term,
                    "the leader's connection closed and its lease ran out here: pre-vote"
                );
                if node.raft.trigger().elect(true).await.is_err() {
                    return;
                }
                at += node.heartbeat;
            }
        });
    }

    /// Still a follower of `leader` in `term`, and nothing heard from it since `heard_at`.
    fn still_follows_silent(&self, leader: u64, term: u64, heard_at: Instant) -> bool {
        let contact = *self
            .contact
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let m = self.metrics.borrow_watched();
        contact == Some((leader, heard_at))
            && m.state == ServerState::Follower
            && m.current_term == term
            && m.current_leader == Some(leader)
    }

    pub(crate) fn is_raft_leader(&self) -> bool {
        self.metrics.borrow_watched().state == ServerState::Leader
    }

    /// Leader: openraft's leader whose quorum answered within the sync window (openraft 0.10
    /// never steps a leader down for lack of a quorum, so the window is checked here).
    /// Follower: a known leader whose appends arrived within the sync window (with pre-vote a
    /// cut-off follower keeps its old leader in openraft's view, so again checked here).
    fn role(&self) -> Role {
        let (state, leader, quorum_acked) = {
            let m = self.metrics.borrow_watched();
            (
                m.state,
                m.current_leader,
                m.last_quorum_acked.as_ref().map(|t| t.elapsed()),
            )
        };
        match state {
            ServerState::Leader
                if self.standalone || quorum_acked.is_some_and(|age| age < self.sync_window) =>
            {
                Role::Leader
            }
            ServerState::Follower | ServerState::Learner => match leader {
                Some(leader) if leader != self.id && self.heard_recently_from(leader) => {
                    Role::Follower
                }
                _ => Role::Looking,
            },
            _ => Role::Looking,
        }
    }

    pub(crate) fn route(&self) -> Route {
        if self.is_raft_leader() {
            return Route::Local;
        }
        match (self.role(), self.metrics.borrow_watched().current_leader) {
            (Role::Follower, Some(leader)) => Route::Remote(leader),
            _ => Route::NoLeader,
        }
    }

    /// A raft leader whose quorum has not answered within the sync window (not one just elected,
    /// which has no answer yet).
    pub(crate) fn is_leader_cut_off(&self) -> bool {
        let m = self.metrics.borrow_watched();
        !self.standalone
            && m.state == ServerState::Leader
            && m.last_quorum_acked
                .as_ref()
                .is_some_and(|t| t.elapsed() >= self.sync_window)
    }
}

pub struct Replica {
    raft: Raft,
    node: Arc<Node>,
    metrics: openraft::type_config::alias::WatchReceiverOf<Rzk, openraft::RaftMetrics<Rzk>>,
    /// The durable log, when there is one (to save the committed log id on shutdown).
    wal_log: Option<log_wal::WalLog>,
    /// The quorum-port listener and its connections (aborted when dropped).
    peers: Option<tokio::task::JoinSet<()>>,
    forward_tx: mpsc::UnboundedSender<Outbound>,
    forward_permits: Arc<Semaphore>,
    forwarder: tokio::task::JoinHandle<()>,
    /// Proposals this member gave openraft and has no outcome for yet; counted only for a
    /// one-member group with a log on disk, whose log reads it (`WalLog::sync_here_when_idle`).
    proposals_in_flight: Option<Arc<AtomicUsize>>,
    /// The Tokio task that runs openraft's tasks (`driver.rs`).
    _driver: DriverTask,
}

/// Aborts the driver's task (and so every openraft task) when dropped.
struct DriverTask(tokio::task::JoinHandle<()>);

impl Drop for DriverTask {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        // openraft's tasks, as one Tokio task (driver.rs); aborted when the replica drops.
        let (driver, driver_task) = driver::Driver::start();
        let driver_task = DriverTask(driver_task);

        let snapshots = match config.snapshot_dir.as_ref().or(config.log_dir.as_ref()) {
            Some(dir) => Snapshots::open(rzk_storage::SnapshotStore::open(dir)?)?,
            None => Snapshots::in_memory(),
        };
        let applied = Arc::new(AppliedIndex::default());
        let proposals_in_flight =
            (standalone && config.log_dir.is_some()).then(|| Arc::new(AtomicUsize::new(0)));
        let saved_snapshot = snapshots.saved_next();
        let sm = StateMachine::new(applier.clone(), snapshots, applied.clone());
        let peers = transport::TcpPeers::default();
        let (raft, wal_log) = match &config.log_dir {
            None => (
                driver
                    .enter(Raft::new(
                        config.node_id,
                        raft_config,
                        peers.clone(),
                        log_mem::MemLog::default(),
                        sm,
                    ))
                    .await,
                None,
            ),
            Some(dir) => {
                let log =
                    log_wal::WalLog::open(dir, config.force_sync, config.log_segment_bytes).await?;
                log.limit_purge_to_saved_snapshot(saved_snapshot);
                if let Some(in_flight) = &proposals_in_flight {
                    log.sync_here_when_idle(in_flight.clone());
                }
                log.report_stale_reads_to(peers.stale_reads.clone());
                (
                    driver
                        .enter(Raft::new(
                            config.node_id,
                            raft_config,
                            peers.clone(),
                            log.clone(),
                            sm,
                        ))
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

        let metrics = raft.metrics();
        let tick = Duration::from_millis(config.tick_ms.max(2));
        let timing = Timing::derive(config.tick_ms, config.sync_limit);
        let node = Arc::new(Node {
            raft: raft.clone(),
            id: config.node_id,
            members: config.members.clone(),
            standalone,
            sync_window: tick * config.sync_limit.max(1) as u32,
            init_window: tick * config.init_limit.max(1) as u32,
            heartbeat: Duration::from_millis(timing.heartbeat_ms),
            leader_lease: Duration::from_millis(timing.election_timeout_max_ms),
            early_election: Mutex::new(None),
            applier,
            applied,
            contact: Mutex::new(None),
            metrics: metrics.clone(),
        });
        let _ = peers.local.set(Arc::downgrade(&node));
        let peers = listener.map(|listener| transport::serve(listener, node.clone()));
        let (forward_tx, forward_rx) = mpsc::unbounded_channel();
        let forwarder = forward::spawn(node.clone(), forward_rx);
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
            // The leader is known from openraft's view; wait (briefly) for its first append to
            // be counted as contact, so that `role()` is not `Looking` right after start.
            let mut changes = metrics.clone();
            let _ = tokio::time::timeout(node.sync_window, async {
                while node.role() == Role::Looking {
                    tokio::select! {
                        _ = changes.changed() => {}
                        _ = tokio::time::sleep(node.heartbeat) => {}
                    }
                }
            })
            .await;
            tracing::info!(node_id = config.node_id, leader = ?known.current_leader, role = ?node.role(), "replica joined the group");
        }
        Ok(Replica {
            raft,
            node,
            metrics,
            wal_log,
            peers,
            forward_tx,
            forward_permits: Arc::new(Semaphore::new(FORWARDED_PROPOSALS_IN_FLIGHT_MAX)),
            forwarder,
            proposals_in_flight,
            _driver: driver_task,
        })
    }

    /// Enqueue a payload. Proposals from one caller enter the log in call order; the await only
    /// covers enqueueing (bounded, so a busy log pushes back); the returned receiver resolves
    /// after commit and local apply.
    ///
    /// On the leader the payload goes straight to openraft. On a follower it is forwarded to the
    /// leader on this member's one ordered stream (at most [`FORWARDED_PROPOSALS_IN_FLIGHT_MAX`]
    /// waiting for the leader), and resolves once applied here. Without a leader, or when the
    /// leader changes before it answers, it resolves with [`ProposeError::NoLeader`] (the entry
    /// may or may not commit, as with a lost connection). While this member's log cannot be
    /// written (full disk, I/O error) it fails at once with [`ProposeError::Storage`]: the entry
    /// never entered the log.
    pub async fn propose(&self, payload: Vec<u8>) -> Result<Proposal, ProposeError> {
        // A log that cannot be written (full disk) refuses new entries at once; entries it
        // already accepted wait until they are durable.
        if let Some(reason) = self.write_failure() {
            return Err(ProposeError::Storage(reason));
        }
        let (reply, proposal) = ProposalSender::oneshot();
        self.enqueue(payload, reply).await?;
        Ok(proposal)
    }

    /// [`Replica::propose`] with the outcome handed to `done` instead of a receiver: `done` runs
    /// exactly once, with the log index after commit and local apply, or with the error (at
    /// once when the entry was not enqueued). It runs on the task that learns the outcome (the
    /// apply task, on the leader), so it must be short and must not block; it saves the caller
    /// a task per proposal.
    pub async fn propose_then(
        &self,
        payload: Vec<u8>,
        done: impl FnOnce(Result<u64, ProposeError>) + Send + 'static,
    ) {
        if let Some(reason) = self.write_failure() {
            return done(Err(ProposeError::Storage(reason)));
        }
        // On an error `reply` was dropped unsent, which ran `done` with it.
        let _ = self.enqueue(payload, ProposalSender::new(done)).await;
    }

    /// Why this member's log cannot be written right now (full disk, I/O error), or `None`.
    /// While it is `Some`, new proposals are refused and the entries already in the log wait
    /// until they are durable.
    pub fn write_failure(&self) -> Option<String> {
        self.wal_log
            .as_ref()
            .and_then(log_wal::WalLog::write_failure)
    }

    /// Changes each time an append fails and its entries start waiting for the log
    /// ([`Replica::write_failure`] then says why); `None` for an in-memory log, which never fails.
    pub fn write_failures(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.wal_log.as_ref().map(log_wal::WalLog::write_failures)
    }

    /// Hand a payload to openraft (leader) or the forwarder (follower); `reply` gets the outcome.
    /// An `Err` means it was not enqueued; `reply` then ran (dropped) with it.
    async fn enqueue(&self, payload: Vec<u8>, reply: ProposalSender) -> Result<(), ProposeError> {
        match self.node.route() {
            Route::Local if self.node.is_leader_cut_off() => {
                reply.send(Err(ProposeError::NoLeader))
            }
            Route::Local => {
                let reply = match &self.proposals_in_flight {
                    Some(in_flight) => reply.counted(in_flight),
                    None => reply,
                };
                self.raft
                    .client_write_ff(
                        raft_types::Payload(payload),
                        Some(proposal_responder(reply)),
                    )
                    .await
                    .map_err(|_| ProposeError::ShuttingDown)?;
            }
            Route::Remote(_) => {
                let permit = self
                    .forward_permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ProposeError::ShuttingDown)?;
                self.forward_tx
                    .send(Outbound::Propose {
                        payload,
                        reply,
                        permit,
                    })
                    .map_err(|_| ProposeError::ShuttingDown)?;
            }
            Route::NoLeader => reply.send(Err(ProposeError::NoLeader)),
        }
        Ok(())
    }

    /// Sessions this member's clients touched since the last call (call once per tick). They
    /// reach the leader's [`Applier::sessions_touched`] out of band, never through the log;
    /// without a leader they are dropped (a new leader grants every session a full timeout).
    pub fn report_touches(&self, session_ids: Vec<i64>) {
        if !session_ids.is_empty() {
            let _ = self.forward_tx.send(Outbound::Touches(session_ids));
        }
    }

    /// Resolves once this member has applied everything the leader had committed when it was
    /// called (ZooKeeper's `sync`): on the leader through openraft's ReadIndex, on a follower by
    /// asking the leader for its ReadIndex over the forwarding stream, then waiting for local
    /// apply. Fails with [`ProposeError::NoLeader`] without a leader, or when the leader cannot
    /// confirm its leadership within `syncLimit x tickTime`, or this member cannot apply that far
    /// within `initLimit x tickTime`.
    pub fn read_barrier(&self) -> impl Future<Output = Result<(), ProposeError>> + Send + 'static {
        let node = self.node.clone();
        let forward_tx = self.forward_tx.clone();
        async move {
            let index = match node.route() {
                Route::Local => node.leader_read_index().await?,
                Route::Remote(_) => {
                    let (reply, answer) = oneshot::channel();
                    forward_tx
                        .send(Outbound::ReadIndex { reply })
                        .map_err(|_| ProposeError::ShuttingDown)?;
                    match tokio::time::timeout(node.sync_window, answer).await {
                        Ok(Ok(answer)) => answer?,
                        Ok(Err(_)) => return Err(ProposeError::ShuttingDown),
                        Err(_) => return Err(ProposeError::NoLeader),
                    }
                }
                Route::NoLeader => return Err(ProposeError::NoLeader),
            };
            let (applied_tx, applied_rx) = oneshot::channel();
            node.applied.when_applied(index, move || {
                let _ = applied_tx.send(());
            });
            match tokio::time::timeout(node.init_window, applied_rx).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(ProposeError::ShuttingDown),
                Err(_) => Err(ProposeError::NoLeader),
            }
        }
    }

    /// `Leader` while openraft leads and a quorum answered within `syncLimit x tickTime`;
    /// `Follower` while a leader's appends arrive within that window; else `Looking`.
    pub fn role(&self) -> Role {
        self.node.role()
    }

    pub fn status(&self) -> ReplicaStatus {
        let role = self.node.role();
        let m = self.metrics.borrow_watched();
        let (mut followers, mut synced_followers) = (0, 0);
        let mut follower_lag = Vec::new();
        if m.state == ServerState::Leader {
            let last = m.last_log_index.unwrap_or(0);
            let heartbeat = m.heartbeat.as_ref();
            for (id, matched) in m.replication.iter().flatten() {
                if *id == self.node.id {
                    continue;
                }
                let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
                follower_lag.push((*id, lag));
                let answered = heartbeat
                    .and_then(|h| h.get(id))
                    .and_then(Option::as_ref)
                    .is_some_and(|at| at.elapsed() < self.node.sync_window);
                if answered {
                    followers += 1;
                    let matched = matched.map_or(0, |l| l.index);
                    if matched + SYNCED_FOLLOWER_LAG_MAX >= last {
                        synced_followers += 1;
                    }
                }
            }
        }
        ReplicaStatus {
            role,
            leader_id: match role {
                Role::Looking => None,
                Role::Leader => Some(self.node.id),
                Role::Follower => m.current_leader,
            },
            term: m.current_term,
            commit_index: m.local_committed.map_or(0, |l| l.index),
            applied_index: self.node.applied.get().unwrap_or(0),
            followers,
            synced_followers,
            follower_lag,
            log_syncs: self.wal_log.as_ref().and_then(log_wal::WalLog::stats),
            snapshot_index: m.snapshot.map(|id| id.index),
            purged_index: m.purged.map(|id| id.index),
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_shared().await;
        if let Some(mut peers) = self.peers.take() {
            peers.shutdown().await;
        }
    }
}

impl Replica {
    /// A clean shutdown leaves a snapshot of everything applied, so the next start restores it
    /// instead of replaying the log since the last one (a rolling restart of a large tree).
    /// Bounded by [`SHUTDOWN_SNAPSHOT_WAIT`]; on failure the log still has every entry.
    /// Stop through a shared reference, when connections still hold the server: the shutdown
    /// snapshot, then the Raft core and the log. The quorum listener ends with the process.
    pub async fn stop_shared(&self) {
        self.forwarder.abort();
        if self.wal_log.is_some() {
            self.snapshot_before_shutdown().await;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("the Raft core ended with an error while shutting down: {e}");
        }
        if let Some(log) = &self.wal_log {
            log.close().await;
        }
    }

    async fn snapshot_before_shutdown(&self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_SNAPSHOT_WAIT;
        let snapshot_index = |m: &openraft::RaftMetrics<Rzk>| m.snapshot.map(|id| id.index);
        let applied = self
            .metrics
            .borrow_watched()
            .last_applied
            .map(|id| id.index);
        // Twice at most: a snapshot already being built when we ask may end short of `applied`.
        for _ in 0..2 {
            let before = snapshot_index(&self.metrics.borrow_watched());
            if before >= applied {
                return;
            }
            if let Err(e) = self.raft.trigger().snapshot().await {
                tracing::warn!("no snapshot at shutdown: {e}; the next start replays the log");
                return;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let waited = self
                .raft
                .wait(Some(left))
                .metrics(
                    |m| snapshot_index(m) > before,
                    "a snapshot at shutdown is saved",
                )
                .await;
            if let Err(e) = waited {
                tracing::warn!(
                    "no snapshot at shutdown within {SHUTDOWN_SNAPSHOT_WAIT:?}: {e}; the next start replays the log"
                );
                return;
            }
        }
    }
}

/// openraft's configuration derived from ZooKeeper's settings (see the crate docs).
fn raft_config(config: &ReplicaConfig) -> Result<openraft::Config, ReplicationError> {
    let tick = config.tick_ms.max(2);
    let timing = Timing::derive(config.tick_ms, config.sync_limit);
    let snap_threshold = jittered_snap_count(config.snap_count);
    openraft::Config {
        cluster_name: "rzk".to_string(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        install_snapshot_timeout: config.init_limit.max(1) * tick,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snap_threshold),
        max_in_snapshot_log_to_keep: LOGS_KEPT_BEHIND_SNAPSHOT,
        replication_lag_threshold: snap_threshold + LOGS_KEPT_BEHIND_SNAPSHOT,
        api_channel_size: Some(PROPOSALS_QUEUED_MAX),
        // A cut-off member must not bump the term and unseat a healthy leader when it returns.
        enable_pre_vote: Some(true),
        // A member whose data directory was wiped (myid kept) comes back with an empty log; the
        // leader must then resend from the start (a snapshot) instead of refusing.
        allow_log_reversion: Some(true),
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

#[cfg(test)]
mod timing_tests {
    use super::*;

    fn config(tick_ms: u64, sync_limit: u64) -> ReplicaConfig {
        ReplicaConfig {
            node_id: 1,
            members: BTreeMap::from([(1, "127.0.0.1:1".to_string())]),
            log_dir: None,
            snapshot_dir: None,
            force_sync: false,
            log_segment_bytes: 16 << 20,
            snap_count: 100_000,
            tick_ms,
            init_limit: 10,
            sync_limit,
        }
    }

    #[test]
    fn timing_rule_maps_tick_time_and_sync_limit() {
        let t = |tick, sync| {
            let t = Timing::derive(tick, sync);
            (
                t.heartbeat_ms,
                t.election_timeout_min_ms,
                t.election_timeout_max_ms,
            )
        };
        // ZooKeeper's default tickTime, and the tests' tickTime=200.
        assert_eq!(t(2000, 5), (100, 500, 1000));
        assert_eq!(t(200, 5), (50, 250, 500));
        // syncLimit·tick caps the election timeout, 4 heartbeats floor it.
        assert_eq!(t(200, 2), (50, 200, 400));
        assert_eq!(t(200, 1), (50, 100, 200));
        assert_eq!(t(2, 1), (10, 20, 40));
        for tick in [1, 2, 3, 10, 40, 100, 200, 399, 400, 2000, 60_000] {
            for sync in [0, 1, 2, 5, 10, 100] {
                let timing = Timing::derive(tick, sync);
                assert!(timing.election_timeout_min_ms >= 2 * timing.heartbeat_ms);
                assert!(
                    timing.election_timeout_max_ms
                        <= ELECTION_TIMEOUT_HEARTBEATS * HEARTBEAT_MS_MAX
                );
                raft_config(&config(tick, sync)).expect("openraft accepts the derived timing");
            }
        }
    }

    /// initLimit is ZooKeeper's bound, in ticks, on how long a follower may take to sync with a
    /// new leader: it bounds openraft's snapshot transfer to a member that is far behind, as
    /// syncLimit bounds the leader lease (above). snapCount becomes openraft's snapshot policy.
    #[test]
    fn init_limit_and_snap_count_map_to_openraft() {
        let mut zk = config(2000, 5);
        zk.init_limit = 10;
        zk.snap_count = 1000;
        let raft = raft_config(&zk).expect("openraft accepts ZooKeeper's sample settings");
        assert_eq!(
            raft.install_snapshot_timeout, 20_000,
            "initLimit x tickTime in ms"
        );
        match raft.snapshot_policy {
            openraft::SnapshotPolicy::LogsSinceLast(entries) => {
                assert!(
                    (501..=1000).contains(&entries),
                    "snapCount=1000 gave {entries}"
                )
            }
            other => panic!("snapCount must be a LogsSinceLast policy, got {other:?}"),
        }
        zk.init_limit = 0;
        assert_eq!(
            raft_config(&zk).unwrap().install_snapshot_timeout,
            2000,
            "initLimit=0 counts as one tick"
        );
    }

    /// ZooKeeper's rule: a snapshot after a random number of entries in
    /// [snapCount/2 + 1, snapCount], so the members of an ensemble do not all snapshot at once.
    #[test]
    fn snapshot_interval_is_jittered_within_zookeepers_range() {
        for snap_count in [1u64, 2, 3, 16, 100, 100_000] {
            let draws: std::collections::BTreeSet<u64> =
                (0..200).map(|_| jittered_snap_count(snap_count)).collect();
            let low = snap_count / 2 + 1;
            for draw in &draws {
                assert!(
                    (low.min(snap_count)..=snap_count).contains(draw),
                    "snapCount={snap_count}: {draw} is outside [{low}, {snap_count}]"
                );
            }
            if snap_count >= 16 {
                assert!(
                    draws.len() > 1,
                    "snapCount={snap_count}: 200 draws gave only {draws:?}"
                );
            }
        }
    }
}
