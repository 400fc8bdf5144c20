//! # rzk-server: ZooKeeper clients on a tokio listener
//!
//! Owns clients: the listener, per-connection framing, the session table with expiry, the
//! per-session FIFO of requests in flight, routing of replies and watch events, four-letter
//! words, the AdminServer and metrics over HTTP. It never changes state except by proposing an
//! entry to rzk-replication; committed entries come back through [`rzk_replication::Applier`],
//! implemented by [`Shared`].
//!
//! Must not touch: the znode rules (rzk-state-machine decides every result, ACL and watch), the
//! bytes of the protocol (rzk-proto encodes and decodes them), files beyond reading sizes and
//! `/proc` for reports (the log and snapshots are rzk-storage's, written only through
//! rzk-replication), zoo.cfg (it takes a ready [`ServerOptions`]; rzk-config reads the file and
//! the `rzk` binary maps one onto the other), and process concerns such as signals, logging
//! setup and exit codes (the binary's).
//!
//! # Layout
//! - [`connection`]: one task per client connection (4lw or handshake, reader, writer).
//! - [`core`]: the state machine + attached sessions behind one lock; the ordering rules.
//! - [`expiry`]: bucketed session deadlines (pure).
//! - [`four_letter`]: `ruok`, `srvr`, `stat`, `mntr`, `conf`, `cons`, `envi`, `wchs`, `isro`, `dirs`...
//! - [`session_id`]: ZooKeeper-style session ids and passwords.
//!
//! # One write
//! connection reader → `Core::push_write` (FIFO slot) → `Replica::propose` → log, fsync, commit →
//! `Shared::apply` (every member, log order) → `Core::apply` → state machine → reply into the
//! slot, watch events to their sessions → connection writer → socket.

pub mod admin;
pub mod connection;
pub mod core;
pub mod expiry;
pub mod four_letter;
pub mod java_date;
pub mod metrics;
pub mod options;
pub mod session_id;
pub mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rzk_proto::{ErrorCode, Request};
use rzk_replication::{
    Applier, ProposeError, Replica, ReplicaConfig, Role, SnapshotJob, SnapshotSource,
};
use rzk_state_machine::{Entry, EntryOp, SessionId, StateMachine};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

pub use options::{FourLetterWhitelist, ServerOptions};

use crate::core::Core;
use crate::stats::{ConnectionSnapshot, ConnectionStats, ServerStats};

/// Client connections open at once, at most. Past it new connections wait in the accept
/// backlog: a flood of connections degrades admission, not the sessions already served.
pub const CONNECTIONS_MAX: usize = 60_000;

/// Containers and TTL nodes deleted per check, at most (`znode.container.maxPerMinute`).
const CONTAINER_DELETIONS_PER_CHECK_MAX: usize = 10_000;

/// Where this process's connection ids start: the wall clock in microseconds, below 2^47. A
/// session's owner is a connection (member id and connection id), so ids must not repeat
/// across a member's restarts: a restarted member that counted from 1 again could give a new
/// connection the id of one that owned a session before the restart. One connection per
/// microsecond of uptime never catches up with a later start; the 2^47 left above leave room
/// to count (entry origins hold 48 bits of connection id).
fn first_connection_id() -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    (micros % (1 << 47)) as u64 + 1
}

pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("replication did not start: {0}")]
    Replication(#[from] rzk_replication::ReplicationError),
    #[error("cannot read the listener's address: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
struct ConnectionInfo {
    peer: SocketAddr,
    session_id: Option<SessionId>,
    established_ms: i64,
    stats: Arc<ConnectionStats>,
}

/// One open client connection as `cons`/`stat` and the admin server report it.
#[derive(Debug, Clone)]
pub struct ConnectionReport {
    pub peer: SocketAddr,
    pub session_id: Option<SessionId>,
    pub established_ms: i64,
    pub stats: ConnectionSnapshot,
}

/// Everything the connections, the timers and the apply path share.
pub struct Shared {
    core: Mutex<Core>,
    pub stats: ServerStats,
    pub options: ServerOptions,
    /// This server's Prometheus registry (empty until enabled: at start with
    /// `ServerOptions::metrics`, or by `metrics::serve`).
    pub metrics: metrics::Metrics,
    replica: OnceLock<Replica>,
    next_session_id: AtomicI64,
    next_connection_id: AtomicU64,
    started: Instant,
    connections: Mutex<HashMap<u64, ConnectionInfo>>,
    connections_per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl Shared {
    fn new(options: ServerOptions) -> Shared {
        let sm = StateMachine::new(options.state_machine.clone());
        Shared {
            core: Mutex::new(Core::new(sm, options.tick_ms, options.server_id)),
            stats: ServerStats::default(),
            next_session_id: AtomicI64::new(session_id::first_session_id(
                options.server_id,
                wall_clock_ms(),
            )),
            options,
            metrics: metrics::Metrics::default(),
            replica: OnceLock::new(),
            next_connection_id: AtomicU64::new(first_connection_id()),
            started: Instant::now(),
            connections: Mutex::new(HashMap::new()),
            connections_per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// The core lock. Held only for short, non-blocking work (no await under it).
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock means an invariant broke; carrying on would serve
        // a state we no longer trust.
        self.core
            .lock()
            .expect("core lock poisoned: an invariant failed earlier")
    }

    pub fn replica(&self) -> &Replica {
        self.replica
            .get()
            .expect("replica is set before the listener accepts clients")
    }

    /// The replica's status (role, commit progress, followers, log syncs), once started.
    pub fn replica_status(&self) -> Option<rzk_replication::ReplicaStatus> {
        self.replica.get().map(Replica::status)
    }

    /// Milliseconds since this server started: the clock of session expiry.
    pub fn monotonic_ms(&self) -> i64 {
        self.monotonic_ms_at(Instant::now())
    }

    /// [`Shared::monotonic_ms`] at `at`, for a caller that has just read the clock anyway.
    pub fn monotonic_ms_at(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.started).as_millis() as i64
    }

    pub fn next_session_id(&self) -> SessionId {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether this member serves clients: standalone always, an ensemble member only while it
    /// is part of a quorum (leader or follower).
    pub fn serving(&self) -> bool {
        self.options.standalone
            || self
                .replica
                .get()
                .is_some_and(|replica| replica.role() != Role::Looking)
    }

    pub fn mode(&self) -> &'static str {
        if self.options.standalone {
            return "standalone";
        }
        match self.replica.get().map(Replica::role) {
            Some(Role::Leader) => "leader",
            Some(Role::Follower) => "follower",
            _ => "looking",
        }
    }

    /// Propose an entry (encoded) for a pending write of a session's connection; a failed
    /// proposal is answered in turn, on that connection only.
    pub async fn propose_for(
        self: &Arc<Self>,
        session_id: SessionId,
        connection_id: u64,
        xid: i32,
        payload: Vec<u8>,
    ) {
        let fail = move |shared: &Shared, error: ProposeError| {
            tracing::warn!(%error, "write not committed");
            let code = match error {
                // The entry may still commit (after a leader change, or it was in the log
                // when this server began to stop): the outcome is unknown, which is what
                // ConnectionLoss tells a client, not a definite failure.
                ProposeError::NoLeader | ProposeError::ShuttingDown => ErrorCode::ConnectionLoss,
                // The entry never entered the log.
                ProposeError::Storage(_) => ErrorCode::SystemError,
            };
            let mut core = shared.lock();
            core.fail_write(session_id, connection_id, xid, code);
            if code == ErrorCode::ConnectionLoss {
                // This session's order can no longer be kept on this connection: close it,
                // as ZooKeeper does, and let the client reconnect and re-read.
                core.close_after_flush(session_id, connection_id);
            }
        };
        // The clock is read for the commit-latency metric only when metrics are on.
        let proposed = self.metrics.is_enabled().then(Instant::now);
        let shared = self.clone();
        // The outcome arrives on the apply task (the reply itself goes out from `Core::apply`):
        // no task per write.
        self.replica()
            .propose_then(payload, move |outcome| match outcome {
                Ok(_) => {
                    if let Some(proposed) = proposed {
                        shared.metrics.record_commit(proposed.elapsed());
                    }
                }
                Err(error) => fail(&shared, error),
            })
            .await;
    }

    fn set_connection_session(&self, connection_id: u64, session_id: SessionId) {
        if let Some(info) = self
            .connections
            .lock()
            .expect("connections lock")
            .get_mut(&connection_id)
        {
            info.session_id = Some(session_id);
        }
    }

    fn connection_ip(&self, connection_id: u64) -> Option<String> {
        self.connections
            .lock()
            .expect("connections lock")
            .get(&connection_id)
            .map(|info| info.peer.ip().to_string())
    }

    /// Every open connection with its counters, sorted by peer address (for `cons`/`stat`).
    pub fn connection_list(&self) -> Vec<ConnectionReport> {
        let mut list: Vec<ConnectionReport> = self
            .connections
            .lock()
            .expect("connections lock")
            .values()
            .map(|info| ConnectionReport {
                peer: info.peer,
                session_id: info.session_id,
                established_ms: info.established_ms,
                stats: info.stats.snapshot(),
            })
            .collect();
        list.sort_by_key(|report| report.peer);
        list
    }

    /// `crst`: every connection's statistics start again.
    pub fn reset_connection_stats(&self) {
        for info in self.connections.lock().expect("connections lock").values() {
            info.stats.reset();
        }
    }

    /// Counts a packet that is not a request or reply, as ZooKeeper does: server-wide and on the
    /// connection (a ConnectRequest or four-letter word in; a ConnectResponse or a four-letter
    /// word's answer out).
    fn count_packet(&self, connection_id: u64, inbound: bool) {
        let stats = self.connection_stats(connection_id);
        if inbound {
            self.stats.packets_received.fetch_add(1, Ordering::Relaxed);
            stats.packet_in();
        } else {
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            stats.packet_out();
        }
    }

    fn connection_stats(&self, connection_id: u64) -> Arc<ConnectionStats> {
        self.connections
            .lock()
            .expect("connections lock")
            .get(&connection_id)
            .map(|info| info.stats.clone())
            .unwrap_or_default()
    }

    fn admit(&self, peer: SocketAddr) -> bool {
        let limit = self.options.max_client_connections_per_ip;
        let mut per_ip = self.connections_per_ip.lock().expect("per-ip lock");
        let count = per_ip.entry(peer.ip()).or_insert(0);
        if limit != 0 && *count >= limit {
            tracing::warn!(%peer, limit, "too many connections from this address (maxClientCnxns); closing");
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, peer: SocketAddr) {
        let mut per_ip = self.connections_per_ip.lock().expect("per-ip lock");
        if let Some(count) = per_ip.get_mut(&peer.ip()) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&peer.ip());
            }
        }
    }
}

/// A point-in-time copy of the tree, encoded as replication writes it out.
struct CopyToEncode(rzk_state_machine::SnapshotCopy);

impl SnapshotSource for CopyToEncode {
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        self.0.encode_to(out)
    }
}

impl Applier for Shared {
    fn apply(&self, index: u64, payload: &[u8]) {
        // A committed entry that does not decode means the log or the code is broken: stop
        // rather than diverge from the other members.
        let entry = Entry::decode(payload)
            .unwrap_or_else(|error| panic!("committed log entry {index} does not decode: {error}"));
        let now_ms = self.monotonic_ms();
        self.lock().apply(&entry, now_ms);
    }

    fn sessions_touched(&self, session_ids: &[i64]) {
        let now_ms = self.monotonic_ms();
        let mut core = self.lock();
        for &session_id in session_ids {
            core.expiry.touch_known(session_id, now_ms);
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let copy = self.lock().sm.snapshot_copy();
        copy.encode()
    }

    /// The copy shares the tree with the live state, so the lock is held only for O(sessions);
    /// the job encodes it on replication's blocking thread while applies and reads go on.
    fn snapshot_job(&self) -> SnapshotJob {
        Box::new(CopyToEncode(self.lock().sm.snapshot_copy()))
    }

    fn restore(&self, bytes: &[u8]) -> Result<(), String> {
        // The bytes passed their checksum: what fails here is a setting the data needs
        // (extendedTypesEnabled), or a bug.
        let sm = StateMachine::restore(self.options.state_machine.clone(), bytes)
            .map_err(|error| error.to_string())?;
        let now_ms = self.monotonic_ms();
        let mut core = self.lock();
        let replaced = std::mem::replace(&mut core.sm, sm);
        core.track_all_sessions(now_ms);
        drop(core);
        // Freeing the replaced tree (a follower installing a leader's snapshot over a large one)
        // takes as long as building it: not under the lock every request waits on.
        drop(replaced);
        Ok(())
    }
}

/// A running server: the listener, the timers and the replica.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Start replication (recovering the state), then serve clients on `listener`.
    pub async fn start(
        options: ServerOptions,
        replica_config: ReplicaConfig,
        listener: TcpListener,
    ) -> Result<Server, ServerError> {
        let shared = Arc::new(Shared::new(options));
        let replica = Replica::start(replica_config, shared.clone() as Arc<dyn Applier>).await?;
        if shared.replica.set(replica).is_err() {
            unreachable!("the replica is set once, here");
        }
        {
            let now_ms = shared.monotonic_ms();
            shared.lock().track_all_sessions(now_ms);
        }
        warn_of_held_settings(&shared);
        if shared.options.standalone {
            // Before any client: every write is applied under this zoo.cfg's settings.
            propose_settings(&shared).await;
        }
        if shared.options.metrics {
            // Before any client: its requests are counted even if they come before the
            // metrics endpoint listens (`metrics::serve`).
            shared.metrics.enable();
        }
        let local_addr = listener.local_addr()?;
        let mut tasks = vec![
            tokio::spawn(accept_loop(listener, shared.clone())),
            tokio::spawn(expiry_loop(shared.clone())),
            tokio::spawn(container_loop(shared.clone())),
        ];
        if let Some(failures) = shared.replica().write_failures() {
            tasks.push(tokio::spawn(stalled_writes_loop(shared.clone(), failures)));
        }
        Ok(Server {
            shared,
            local_addr,
            tasks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stop accepting, stop the timers, then stop replication.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let Server { shared, .. } = self;
        match Arc::try_unwrap(shared) {
            Ok(shared) => {
                if let Some(replica) = shared.replica.into_inner() {
                    replica.shutdown().await;
                }
            }
            Err(shared) => {
                tracing::debug!(
                    "connections still hold the server; stopping replication under them"
                );
                if let Some(replica) = shared.replica.get() {
                    replica.stop_shared().await;
                }
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let admission = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let Ok(permit) = admission.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed; retrying in 100 ms (raise the open-file limit if this repeats)");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !shared.admit(peer) {
            continue;
        }
        let connection_id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
        shared.connections.lock().expect("connections lock").insert(
            connection_id,
            ConnectionInfo {
                peer,
                session_id: None,
                established_ms: wall_clock_ms(),
                stats: Arc::new(ConnectionStats::new()),
            },
        );
        shared
            .stats
            .alive_connections
            .fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, shared.clone(), connection_id).await;
            shared
                .connections
                .lock()
                .expect("connections lock")
                .remove(&connection_id);
            shared
                .stats
                .alive_connections
                .fetch_sub(1, Ordering::Relaxed);
            shared.release(peer);
            drop(permit);
        });
    }
}

/// Each time the log fails to write (full disk, I/O error), close the connections of the
/// sessions whose writes wait on it ([`Core::disconnect_waiting_writers`]): their clients get
/// ConnectionLoss at once instead of no answer. Ends with the log.
async fn stalled_writes_loop(shared: Arc<Shared>, mut failures: watch::Receiver<u64>) {
    while failures.changed().await.is_ok() {
        let Some(reason) = shared.replica().write_failure() else {
            continue;
        };
        let closed = shared.lock().disconnect_waiting_writers();
        if closed > 0 {
            tracing::warn!(
                connections = closed,
                "{reason}: closed the connections whose writes wait for the log (their clients see ConnectionLoss; the writes commit once space returns)"
            );
        }
    }
}

/// zoo.cfg settings the tree keeps from taking effect, said once at start.
fn warn_of_held_settings(shared: &Shared) {
    let core = shared.lock();
    let configured = &shared.options.state_machine;
    if let Some(count) = core.sm.settings_kept_on_for_ttl_nodes(configured) {
        tracing::warn!(
            ttl_nodes = count,
            "extendedTypesEnabled=false in zoo.cfg, but the tree holds TTL nodes: extended types stay on until they are deleted (or set extendedTypesEnabled=true)"
        );
    }
    if let Some(count) = core.sm.settings_kept_off_for_sessions(configured) {
        tracing::warn!(
            sessions = count,
            "extendedTypesEnabled=true in zoo.cfg, but open sessions have ids that read as TTL owners (created by a server with myid 255): extended types stay off until those sessions end"
        );
    }
}

/// The leader makes the replicated skipACL and extendedTypesEnabled follow its zoo.cfg: the
/// state machine applies writes under the settings in its state, changed only by a Settings
/// entry in the log, so a replay after a restart, and every member, gives the results the
/// clients saw (a delete refused with NoAuth stays refused after a restart with skipACL=yes).
/// Proposes one when they differ (or were never recorded) and waits until it is applied, for
/// one tick at most (a log that cannot be written holds it longer; it is proposed again then).
async fn propose_settings(shared: &Arc<Shared>) {
    let Some(op) = shared
        .lock()
        .sm
        .settings_entry(&shared.options.state_machine)
    else {
        return;
    };
    tracing::info!(
        ?op,
        "putting this server's zoo.cfg settings into effect through the log"
    );
    let entry = Entry {
        session_id: 0,
        xid: 0,
        origin: 0,
        time_ms: wall_clock_ms(),
        op,
    };
    match shared.replica().propose(entry.encode()).await {
        Ok(proposal) => {
            let tick = Duration::from_millis(u64::from(shared.options.tick_ms));
            match tokio::time::timeout(tick, proposal).await {
                Ok(Ok(Err(error))) => {
                    tracing::warn!(%error, "the settings entry did not commit; proposed again next tick")
                }
                Err(_) => tracing::warn!(
                    ?tick,
                    "the settings entry is not applied after a tick; proposed again next tick"
                ),
                Ok(_) => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not propose the settings entry; proposed again next tick")
        }
    }
}

/// Once a tick, close the sessions whose deadline passed, through the log.
async fn expiry_loop(shared: Arc<Shared>) {
    let mut ticker =
        tokio::time::interval(Duration::from_millis(u64::from(shared.options.tick_ms)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_leader = shared.options.standalone;
    loop {
        ticker.tick().await;
        // Drained every tick, standalone too, so the set never grows without bound.
        let touched = shared.lock().take_touched();
        if !shared.options.standalone {
            let role = shared.replica().role();
            match role {
                Role::Leader if !was_leader => {
                    // A new leader gives every session a fresh full timeout (as ZooKeeper does):
                    // members could not report touches while there was no leader.
                    let now_ms = shared.monotonic_ms();
                    shared.lock().track_all_sessions(now_ms);
                }
                Role::Leader => {}
                Role::Follower => shared.replica().report_touches(touched),
                Role::Looking => shared.lock().disconnect_all(),
            }
            was_leader = role == Role::Leader;
            if !was_leader {
                continue;
            }
        }
        propose_settings(&shared).await;
        let expired = shared.lock().expiry.take_expired(shared.monotonic_ms());
        for session_id in expired {
            tracing::info!(
                session_id = format_args!("0x{session_id:x}"),
                "session expired"
            );
            let entry = Entry {
                session_id,
                xid: 0,
                origin: 0,
                time_ms: wall_clock_ms(),
                op: EntryOp::CloseSession,
            };
            if let Err(error) = shared.replica().propose(entry.encode()).await {
                tracing::warn!(%error, "could not propose a session expiry; will retry next tick");
                let mut core = shared.lock();
                if let Some(timeout) = core.sm.session_timeout_ms(session_id) {
                    let now = shared.monotonic_ms();
                    core.expiry
                        .touch(session_id, timeout.min(shared.options.tick_ms as i32), now);
                }
            }
        }
    }
}

/// The leader deletes empty containers and expired TTL nodes (ZooKeeper's ContainerManager).
async fn container_loop(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(
        shared.options.container_check_interval_ms.max(100),
    ));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !shared.options.standalone && shared.replica().role() != Role::Leader {
            continue;
        }
        let due = shared
            .lock()
            .sm
            .expired_containers_and_ttls(wall_clock_ms(), CONTAINER_DELETIONS_PER_CHECK_MAX);
        for path in due {
            let request = Request::DeleteContainer(rzk_proto::PathRequest { path });
            let entry = Entry {
                session_id: 0,
                xid: 0,
                origin: 0,
                time_ms: wall_clock_ms(),
                op: EntryOp::Write {
                    auth: Vec::new(),
                    request,
                },
            };
            if let Err(error) = shared.replica().propose(entry.encode()).await {
                tracing::warn!(%error, "could not propose a container deletion; will retry next check");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rzk_proto::{codes::perms, Acl, CreateRequest, Id, Request};

    use super::*;

    fn payload(session_id: SessionId, op: EntryOp) -> Vec<u8> {
        let entry = Entry {
            session_id,
            xid: 1,
            origin: 0,
            time_ms: 1_700_000_000_000,
            op,
        };
        entry.encode()
    }

    fn create(path: &str) -> EntryOp {
        let acl = vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }];
        let request = Request::Create(CreateRequest {
            path: path.into(),
            data: Some(vec![7; 100]),
            acl,
            flags: 0,
        });
        EntryOp::Write {
            auth: vec![],
            request,
        }
    }

    // Goal: the server's snapshot job encodes the state at the moment it was made, not at the
    // moment it runs (replication runs it on a blocking thread while applies go on). Method:
    // make a job, apply more entries through the Applier, run the job and compare its bytes
    // with `snapshot()` taken when the job was made; restoring them gives that state back.
    #[test]
    fn snapshot_job_encodes_the_state_when_it_was_made() {
        let shared = Shared::new(ServerOptions::for_tests());
        let session_id = 0x100;
        let mut index = 0;
        let mut apply = |op: EntryOp| {
            index += 1;
            shared.apply(index, &payload(session_id, op));
        };
        apply(EntryOp::CreateSession { timeout_ms: 30_000 });
        apply(create("/before"));
        let bytes_at_job = shared.snapshot();
        let job = shared.snapshot_job();
        apply(create("/after"));
        apply(create("/before/child"));
        let bytes_after = shared.snapshot();
        let encoder = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            job.write_to(&mut bytes).map(|written| (bytes, written))
        });
        let (bytes, written) = encoder.join().expect("snapshot job panicked").unwrap();
        assert_eq!(bytes.len() as u64, written);
        assert_eq!(bytes, bytes_at_job);
        assert_ne!(bytes_after, bytes_at_job);
        shared
            .restore(&bytes_at_job)
            .expect("the snapshot restores");
        assert_eq!(shared.lock().sm.counts().znodes, 6);
    }
}
