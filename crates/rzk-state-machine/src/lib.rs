//! # rzk-state-machine: the replicated ZooKeeper state
//!
//! Owns the znode tree and its rules: Stat bookkeeping (ZK-COMPAT §1b), path validation,
//! sequential names, the four node types plus container and TTL, ephemerals per session, the
//! session table, ACL checks, multi, the watch table and its triggers, and deterministic
//! snapshot bytes. Must not touch files, sockets, clocks, randomness, tokio or the Raft
//! library: zxid and time arrive with each entry. Invariants are `assert!`ed (on in release).
//!
//! # Contract
//! - [`StateMachine::apply`] takes committed [`Entry`]s strictly in log order and returns what
//!   happened as data ([`Applied`]): the result for the requesting session and the watch events
//!   to deliver. Every entry consumes one zxid (`last_zxid + 1`), failed writes included.
//! - [`StateMachine::read`] serves a read for one session, registering watches if asked.
//! - The watch table is local to the member (not in snapshots): the server registers the
//!   watches of the sessions connected to it and drops them when a connection goes away.

mod entry;
pub use entry::{Entry, EntryOp, EntryDecodeError};

use rzk_proto::{ErrorCode, Id, Reply, Request, SetWatches, WatcherEvent};

pub type SessionId = i64;

/// One watch event to deliver to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub session_id: SessionId,
    /// zxid of the change that fired it (3.9 clients get it in the header).
    pub zxid: i64,
    pub event: WatcherEvent,
}

/// What applying one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The zxid this entry was given.
    pub zxid: i64,
    /// The requesting session's answer.
    pub reply: Reply,
    /// Watch events, in the order ZooKeeper delivers them.
    pub notifications: Vec<Notification>,
    /// Sessions closed by this entry (closeSession/expiry), for the server to drop.
    pub closed_sessions: Vec<SessionId>,
}

/// Tunables that change apply results; the same on every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `extendedTypesEnabled`: TTL nodes allowed (else createTTL answers Unimplemented).
    pub extended_types_enabled: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest` as `super:<base64 sha1>`, if set.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL=yes`.
    pub skip_acl: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { extended_types_enabled: false, super_digest: None, skip_acl: false }
    }
}

/// Counts for `mntr`/`srvr`/`wchs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub znodes: u64,
    pub ephemerals: u64,
    pub watches: u64,
    pub watched_paths: u64,
    pub watching_sessions: u64,
    pub approximate_data_size: u64,
    pub sessions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("snapshot format version {0} is not supported by this rzk")]
    UnsupportedVersion(u32),
}

/// The replicated state. See the crate docs for the contract.
pub struct StateMachine {
    _options: Options,
}

impl StateMachine {
    pub fn new(options: Options) -> Self {
        let _ = options;
        todo!()
    }

    /// Last applied zxid (0 when empty).
    pub fn last_zxid(&self) -> i64 {
        todo!()
    }

    /// Apply one committed entry. Deterministic: the same entries give the same state and results.
    pub fn apply(&mut self, entry: &Entry) -> Applied {
        let _ = entry;
        todo!()
    }

    /// Serve a read (exists, getData, getChildren(2), getACL, getEphemerals,
    /// getAllChildrenNumber, multiRead, checkWatches, removeWatches, addWatch) for a session
    /// with the given auth ids. Watches asked for are registered for `session_id`.
    /// removeWatches returns the `*WatchRemoved` events to deliver through `notifications`.
    pub fn read(&mut self, session_id: SessionId, auth: &[Id], request: &Request, notifications: &mut Vec<Notification>) -> Reply {
        let _ = (session_id, auth, request, notifications);
        todo!()
    }

    /// Re-arm watches after a reconnect (setWatches/setWatches2) with ZooKeeper's relativeZxid
    /// rules; events that fire at once are appended to `notifications`.
    pub fn set_watches(&mut self, session_id: SessionId, watches: &SetWatches, notifications: &mut Vec<Notification>) {
        let _ = (session_id, watches, notifications);
        todo!()
    }

    /// Forget every watch of a session (its connection to this member went away).
    pub fn drop_watches(&mut self, session_id: SessionId) {
        let _ = session_id;
        todo!()
    }

    /// Whether a session is open, and its negotiated timeout.
    pub fn session_timeout_ms(&self, session_id: SessionId) -> Option<i32> {
        let _ = session_id;
        todo!()
    }

    /// Every open session and its timeout (for the expiry tracker after a restart).
    pub fn sessions(&self) -> Vec<(SessionId, i32)> {
        todo!()
    }

    /// Paths of TTL nodes and containers due for deletion at `now_ms` (the leader proposes
    /// `DeleteContainer` entries for them), at most `limit`.
    pub fn expired_containers_and_ttls(&self, now_ms: i64, limit: usize) -> Vec<String> {
        let _ = (now_ms, limit);
        todo!()
    }

    pub fn counts(&self) -> Counts {
        todo!()
    }

    /// Deterministic snapshot bytes of the tree and session table (not watches).
    pub fn snapshot(&self) -> Vec<u8> {
        todo!()
    }

    /// Rebuild from snapshot bytes.
    pub fn restore(options: Options, bytes: &[u8]) -> Result<StateMachine, SnapshotError> {
        let _ = (options, bytes);
        todo!()
    }
}

/// Map a request error to the code ZooKeeper would send.
pub fn error_code(code: ErrorCode) -> i32 {
    code.code()
}
