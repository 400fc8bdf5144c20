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
//!   to deliver. Every entry consumes one zxid (`last_zxid + 1`), failed writes included,
//!   except a Settings entry (below) and an AttachSession entry (see "Sessions have owners").
//! - [`StateMachine::read`] serves a read for one session, registering watches if asked; a
//!   reply larger than [`REPLY_BYTES_MAX`] is refused ([`ReplyTooLarge`]), not built.
//! - The watch table is local to the member (not in snapshots): the server registers the
//!   watches of the sessions connected to it and drops them when a connection goes away.
//!
//! # Settings are replicated
//! `skipACL` and `extendedTypesEnabled` change what a write does when it is applied, so they
//! are part of the replicated state and change only through the log: an
//! [`EntryOp::Settings`] entry sets them (it takes no zxid), snapshots carry them (format 4 on),
//! and a log replayed after a restart, or on a member whose zoo.cfg says otherwise, gives the
//! results the clients saw. The [`Options`] given to [`StateMachine::new`] (or to
//! [`StateMachine::restore`] of a snapshot older than format 4) hold until the first Settings
//! entry; the leader proposes one whenever [`StateMachine::settings_entry`] says its zoo.cfg
//! is not what the state has. Two rules, decided from the state so that every member and every
//! replay agrees: `extendedTypesEnabled` stays on while a TTL node exists (off, they would
//! read as ephemerals of sessions that do not exist), and stays off while an open session's
//! id reads as a TTL owner with it on (its ephemerals would read as TTL nodes).
//!
//! # Sessions have owners
//! A session's writes come from one connection, its owner (an [`Entry::origin`]): the one that
//! created it, or the last one that reattached it through an [`EntryOp::AttachSession`] entry
//! (which takes no zxid). A write proposed by any other connection is refused with
//! SessionMoved when it is applied, on every member alike, so a write of an older connection
//! that reaches the log after the session moved is never applied. Snapshots carry the owners
//! (format 5); sessions from older logs and snapshots have owner 0, which any connection may
//! write as.
//!
//! # The tree is persistent
//! The nodes live in one `imbl::OrdMap` keyed by full path (a B+tree with structural sharing;
//! the key is a `PathKey`, an 8-byte pointer to the path with its length in front), each node
//! one reference-counted allocation holding its Stat, ACL pointer and data (a
//! `triomphe::ThinArc`: an 8-byte pointer, no weak count; one allocation instead of a node and
//! its data saves about 32 bytes per znode with 100-byte values).
//! [`StateMachine::snapshot_copy`] clones that map in O(1) while the
//! caller holds the state between applies, and the copy is encoded on another thread while
//! applies go on: a write then copies only the B+tree nodes on its own path (O(log n) of them,
//! each at most 16 keys and pointers) and the znodes it changes (`Node::change`), never a
//! whole child list; once the copy is dropped nothing is shared and writes copy nothing. imbl was chosen over a
//! persistent hash map (rpds, `imbl::HashMap`) because path order serves three needs at once:
//! snapshots list nodes sorted by path with no sort at encode time, a node's children are the
//! keys under "path/" (no per-node child set, which saves a name and a set slot per znode),
//! and the B+tree's 16-wide nodes cost less memory per entry than a hash trie. Lookups are
//! O(log n) string comparisons instead of one hash.
//!
//! # Layout
//! - `path`: `PathUtils.validatePath` and parent/child splitting.
//! - `tree`: the path-ordered node map, child listing by key range, stored vs reported Stat,
//!   node kinds (ephemeral/container/TTL), ACL sharing.
//! - `acl`: `fixupACL`, `checkACL`, digest/ip providers, [`digest_id`], [`auth_id_for`].
//! - `write`: every logged op (create…, delete, setData, setACL, check, multi, deleteContainer,
//!   sessions) as check-then-mutate helpers with an undo log for multi.
//! - `read`: the local reads, watch registration, checkWatches/removeWatches, setWatches.
//! - `watch`: the two-way watch index and `triggerWatch`.
//! - `snapshot`: the checksummed snapshot format, encoded from a [`SnapshotCopy`].
//! - `digest`: [`StateMachine::digest`], an order-independent digest of the tree.
//! - `jute`: the jute-style writer/reader used by log entries and snapshots.

mod acl;
mod digest;
mod entry;
mod jute;
mod path;
mod path_key;
mod read;
mod snapshot;
mod tree;
mod watch;
mod write;

pub use acl::{auth_id_for, auth_ids_for, digest_id};
pub use digest::znode_digest;
pub use entry::{Entry, EntryDecodeError, EntryOp};
pub use read::{ReplyTooLarge, REPLY_BYTES_MAX};
pub use watch::WATCHES_PER_SESSION_MAX;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rzk_proto::{
    ErrorCode, EventType, Id, KeeperState, Reply, Request, Response, SetWatches, WatcherEvent,
};

pub use snapshot::SnapshotCopy;

use crate::tree::{node_kind, AclCache, AclList, NodeKind, Nodes};
use crate::watch::{Table, WatchTable};

pub type SessionId = i64;

/// One watch event to deliver to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub session_id: SessionId,
    /// zxid of the change that fired it (3.9 clients get it in the header); -1 for events
    /// fired by setWatches, as ZooKeeper's `WatchedEvent` without a zxid.
    pub zxid: i64,
    pub event: WatcherEvent,
    /// The ACL the session must be allowed to READ for the event to reach it
    /// ([`StateMachine::may_deliver`]); `None` for events every watcher gets (setWatches).
    pub read_acl: Option<EventAcl>,
}

/// The ACL of the znode a watch event is about, as it was when the change happened: the node's
/// own for NodeCreated, NodeDeleted and NodeDataChanged, its parent's for NodeChildrenChanged.
/// ZooKeeper 3.8.4 and 3.9.2 check READ on it before they deliver an event (CVE-2024-23944:
/// a persistent recursive watch on `/` otherwise names every znode created anywhere below it,
/// whatever its ACL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAcl(AclList);

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

/// Tunables that change apply results. `skip_acl` and `extended_types_enabled` are replicated
/// (see the crate docs, "Settings are replicated"): the values given here are the state's
/// until a Settings entry or a snapshot of format 4 or later says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `extendedTypesEnabled`: TTL nodes allowed (else createTTL answers Unimplemented).
    pub extended_types_enabled: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest` as `super:<base64 sha1>`, if set.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL=yes`.
    pub skip_acl: bool,
}

/// Counts for `mntr`/`srvr`/`wchs`.
/// What ZooKeeper's `wchs` reports ("N connections watching M paths / Total watches:K"): its
/// data table alone, one per (session, path) with a data, exists, persistent or recursive
/// watch. A getChildren watch is counted only in [`Counts::watches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    pub watches: u64,
    pub paths: u64,
    pub sessions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// As ZooKeeper's `zk_znode_count`: its node map holds the root twice ("" and "/"), so a
    /// fresh tree (/, /zookeeper, /zookeeper/quota, /zookeeper/config) counts 5.
    pub znodes: u64,
    pub ephemerals: u64,
    /// One per (session, path, table), as ZooKeeper's `zk_watch_count` adds its data and
    /// child tables.
    pub watches: u64,
    /// Sum of path length + data length over all nodes (`approximateDataSize`).
    pub approximate_data_size: u64,
    pub sessions: u64,
    /// Watches not registered because a session hit [`WATCHES_PER_SESSION_MAX`].
    pub watches_refused: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("snapshot format version {0} is not supported by this rzk")]
    UnsupportedVersion(u32),
    /// A valid snapshot that these [`Options`] cannot hold; the text says what to set.
    #[error("the data cannot be loaded with these settings: {0}")]
    NeedsSetting(String),
}

/// An open session: its negotiated timeout, the ephemerals it owns and the connection it is
/// attached to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    pub timeout_ms: i32,
    pub ephemerals: BTreeSet<Box<str>>,
    /// The [`Entry::origin`] of the connection the session was created or last attached on
    /// ([`EntryOp::AttachSession`]): a write proposed by any other connection is refused with
    /// SessionMoved, so a write of an older connection that reaches the log after the session
    /// moved is never applied behind the new connection's back. 0: not known (a session from a
    /// log or snapshot written before owners); any connection's writes apply.
    pub owner: u64,
}

/// The replicated state. See the crate docs for the contract.
pub struct StateMachine {
    /// `skip_acl` and `extended_types_enabled` are the effective (replicated) values.
    options: Options,
    /// Whether a Settings entry was applied (directly or before the snapshot restored): until
    /// then the settings are those of the `Options` this member started with.
    settings_recorded: bool,
    last_zxid: i64,
    nodes: Nodes,
    sessions: BTreeMap<SessionId, Session>,
    /// Container and TTL paths, so the cleaner does not scan the whole tree.
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    /// Sum of path length + data length, kept up to date on every change.
    data_size: u64,
    acl_cache: AclCache,
    watches: WatchTable,
}

/// A change to the tree, turned into watch triggers once the entry has fully succeeded.
#[derive(Debug)]
pub(crate) enum TreeEvent {
    /// A node was created: its path, its ACL and its parent's.
    Created(String, AclList, AclList),
    /// A node was deleted: its path, the ACL it had and its parent's.
    Deleted(String, AclList, AclList),
    /// A node's data changed: its path and ACL.
    DataChanged(String, AclList),
}

impl StateMachine {
    pub fn new(options: Options) -> Self {
        let mut acl_cache = AclCache::default();
        let nodes = tree::initial_nodes(&mut acl_cache);
        let data_size = nodes
            .iter()
            .map(|(path, node)| tree::node_size(path, node))
            .sum();
        StateMachine {
            options,
            settings_recorded: false,
            last_zxid: 0,
            nodes,
            sessions: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_size,
            acl_cache,
            watches: WatchTable::default(),
        }
    }

    /// The options applies run with: `skip_acl` and `extended_types_enabled` are the
    /// replicated settings, which may differ from what this member was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether the settings came from a Settings entry (applied, or before the restored
    /// snapshot) rather than from the `Options` this member was started with.
    pub fn settings_recorded(&self) -> bool {
        self.settings_recorded
    }

    /// The Settings entry the leader should propose so that the state follows its zoo.cfg
    /// (`configured`), or `None` when the state already has what applying it would give (the
    /// rules of the crate docs included, so a setting held by them is not proposed again and
    /// again). Always `Some` until a Settings entry was recorded.
    pub fn settings_entry(&self, configured: &Options) -> Option<EntryOp> {
        let up_to_date = self.settings_recorded
            && self.options.skip_acl == configured.skip_acl
            && self.options.extended_types_enabled
                == self.extended_types_after(configured.extended_types_enabled);
        (!up_to_date).then_some(EntryOp::Settings {
            skip_acl: configured.skip_acl,
            extended_types_enabled: configured.extended_types_enabled,
        })
    }

    /// How many TTL nodes keep `extendedTypesEnabled` on when `configured` turns it off (for a
    /// warning: it takes effect once they are gone); `None` when nothing holds it.
    pub fn settings_kept_on_for_ttl_nodes(&self, configured: &Options) -> Option<usize> {
        let held = self.options.extended_types_enabled
            && !configured.extended_types_enabled
            && !self.ttls.is_empty();
        held.then_some(self.ttls.len())
    }

    /// How many open sessions whose ids read as TTL owners keep `extendedTypesEnabled` off
    /// when `configured` turns it on (ids with top byte 0xff and bits 40-55 zero, from a
    /// server with id 255); `None` when nothing holds it.
    pub fn settings_kept_off_for_sessions(&self, configured: &Options) -> Option<usize> {
        if self.options.extended_types_enabled || !configured.extended_types_enabled {
            return None;
        }
        let sessions = self.sessions_reading_as_ttl_owners();
        (sessions > 0).then_some(sessions)
    }

    /// The `extended_types_enabled` a Settings entry asking for `requested` leaves in the
    /// state: what it asks, unless a TTL node holds it on or a TTL-looking session holds it off.
    fn extended_types_after(&self, requested: bool) -> bool {
        let current = self.options.extended_types_enabled;
        if current && !requested && !self.ttls.is_empty() {
            return true;
        }
        if !current && requested && self.sessions_reading_as_ttl_owners() > 0 {
            return false;
        }
        requested
    }

    fn sessions_reading_as_ttl_owners(&self) -> usize {
        self.sessions
            .keys()
            .filter(|&&id| tree::reads_as_ttl_owner(id))
            .count()
    }

    /// A Settings entry: changes no node, takes no zxid.
    fn apply_settings(&mut self, skip_acl: bool, extended_types_enabled: bool) -> Reply {
        self.options.extended_types_enabled = self.extended_types_after(extended_types_enabled);
        self.options.skip_acl = skip_acl;
        self.settings_recorded = true;
        Ok(Response::Empty)
    }

    /// An AttachSession entry: the session's writes now come from the proposing connection
    /// only. Takes no zxid (ZooKeeper revalidates a session without a transaction).
    /// SessionExpired when the session is not open.
    fn apply_attach_session(&mut self, entry: &Entry) -> Reply {
        let session = self
            .sessions
            .get_mut(&entry.session_id)
            .ok_or(ErrorCode::SessionExpired)?;
        session.owner = entry.origin;
        Ok(Response::Empty)
    }

    /// Whether the entry was proposed by a connection the session has since moved away from.
    fn moved_away(&self, entry: &Entry) -> bool {
        entry.origin != 0
            && self
                .sessions
                .get(&entry.session_id)
                .is_some_and(|session| session.owner != 0 && session.owner != entry.origin)
    }

    /// The connection (an [`Entry::origin`]) a session's writes must come from; 0 when any.
    /// `None` when the session is not open.
    pub fn session_owner(&self, session_id: SessionId) -> Option<u64> {
        self.sessions.get(&session_id).map(|session| session.owner)
    }

    /// Last applied zxid (0 when empty).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Apply one committed entry. Deterministic: the same entries give the same state and results.
    pub fn apply(&mut self, entry: &Entry) -> Applied {
        let no_zxid = match entry.op {
            EntryOp::Settings {
                skip_acl,
                extended_types_enabled,
            } => Some(self.apply_settings(skip_acl, extended_types_enabled)),
            EntryOp::AttachSession => Some(self.apply_attach_session(entry)),
            _ => None,
        };
        if let Some(reply) = no_zxid {
            return Applied {
                zxid: self.last_zxid,
                reply,
                notifications: Vec::new(),
                closed_sessions: Vec::new(),
            };
        }
        let zxid = self.last_zxid.checked_add(1).expect("zxid overflow");
        assert!(zxid > self.last_zxid, "zxid must increase strictly");
        self.last_zxid = zxid;
        let mut context = write::Context::new(zxid, entry.time_ms, entry.session_id);
        let mut closed_sessions = Vec::new();
        let reply = match &entry.op {
            EntryOp::CreateSession { timeout_ms } => {
                self.apply_create_session(entry.session_id, *timeout_ms, entry.origin)
            }
            // Not checked against the owner, as in ZooKeeper: expiry closes a session from
            // wherever it is attached.
            EntryOp::CloseSession => {
                closed_sessions.push(entry.session_id);
                self.apply_close_session(&mut context)
            }
            EntryOp::Write { .. } if self.moved_away(entry) => Err(ErrorCode::SessionMoved),
            EntryOp::Write { auth, request } => self.apply_write(&mut context, auth, request),
            EntryOp::Settings { .. } | EntryOp::AttachSession => {
                unreachable!("entries without a zxid are applied above")
            }
        };
        let notifications = self.fire(&context.events, zxid);
        for session in &closed_sessions {
            self.watches.drop_session(*session);
        }
        Applied {
            zxid,
            reply,
            notifications,
            closed_sessions,
        }
    }

    /// Serve a read (exists, getData, getChildren(2), getACL, getEphemerals,
    /// getAllChildrenNumber, multiRead, checkWatches, removeWatches, addWatch, and also sync,
    /// ping, whoAmI, setWatches(2)) for a session with the given auth ids. Watches asked for are
    /// registered for `session_id`. Other requests answer Unimplemented.
    ///
    /// A reply larger than [`REPLY_BYTES_MAX`] is not answered: [`ReplyTooLarge`] instead (a
    /// multiRead stops building at the result that goes past it), and the caller closes the
    /// connection.
    ///
    /// removeWatches adds nothing to `notifications`: ZooKeeper's server sends no
    /// `*WatchRemoved` events — the client library makes them itself when the reply is OK.
    pub fn read(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        request: &Request,
        notifications: &mut Vec<Notification>,
    ) -> Result<Reply, ReplyTooLarge> {
        // ZooKeeper's tree keys the root both as "" and "/": a read of the empty path answers
        // for "/", and getAllChildrenNumber("") counts every key under "/" plus "/" itself.
        if let Request::GetAllChildrenNumber(r) = request {
            if r.path.is_empty() {
                let root = Request::GetAllChildrenNumber(rzk_proto::PathRequest {
                    path: "/".to_string(),
                });
                let reply =
                    self.serve_read(session_id, auth, &root, notifications, REPLY_BYTES_MAX)?;
                return Ok(match reply {
                    Ok(Response::AllChildrenNumber { total }) => {
                        Ok(Response::AllChildrenNumber { total: total + 1 })
                    }
                    other => other,
                });
            }
        }
        let root = root_for_empty_path(request);
        let request = root.as_ref().unwrap_or(request);
        self.serve_read(session_id, auth, request, notifications, REPLY_BYTES_MAX)
    }

    /// Re-arm watches after a reconnect (setWatches/setWatches2) with ZooKeeper's relativeZxid
    /// rules; events that fire at once are appended to `notifications`.
    pub fn set_watches(
        &mut self,
        session_id: SessionId,
        watches: &SetWatches,
        notifications: &mut Vec<Notification>,
    ) {
        self.rearm_watches(session_id, watches, notifications);
    }

    /// Forget every watch of a session (its connection to this member went away).
    pub fn drop_watches(&mut self, session_id: SessionId) {
        self.watches.drop_session(session_id);
    }

    /// Whether a session is open, and its negotiated timeout.
    pub fn session_timeout_ms(&self, session_id: SessionId) -> Option<i32> {
        self.sessions
            .get(&session_id)
            .map(|session| session.timeout_ms)
    }

    /// Every open session and its timeout (for the expiry tracker after a restart).
    pub fn sessions(&self) -> Vec<(SessionId, i32)> {
        self.sessions
            .iter()
            .map(|(id, session)| (*id, session.timeout_ms))
            .collect()
    }

    /// Paths of TTL nodes and containers due for deletion at `now_ms` (the leader proposes
    /// `DeleteContainer` entries for them), at most `limit`. As `ContainerManager.getCandidates`:
    /// a container with no children that has had a child (stored cversion > 0); a TTL node with
    /// no children whose `now - mtime > ttl`.
    pub fn expired_containers_and_ttls(&self, now_ms: i64, limit: usize) -> Vec<String> {
        let containers = self.containers.iter().filter(|path| {
            let node = &self.nodes[&***path];
            node.child_count() == 0 && node.stat().cversion > 0
        });
        let ttls = self.ttls.iter().filter(|path| {
            let node = &self.nodes[&***path];
            let ttl = match node_kind(
                node.stat().ephemeral_owner,
                self.options.extended_types_enabled,
            ) {
                NodeKind::Ttl(ttl) => ttl,
                _ => return false,
            };
            node.child_count() == 0 && ttl != 0 && now_ms.saturating_sub(node.stat().mtime) > ttl
        });
        containers
            .chain(ttls)
            .take(limit)
            .map(|path| path.to_string())
            .collect()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            znodes: self.znode_count(),
            ephemerals: self
                .sessions
                .values()
                .map(|session| session.ephemerals.len() as u64)
                .sum(),
            watches: self.watches.count(),
            approximate_data_size: self.data_size,
            sessions: self.sessions.len() as u64,
            watches_refused: self.watches.refused,
        }
    }

    /// Nodes in the tree, as ZooKeeper's `zk_znode_count` counts them (see [`Counts::znodes`]),
    /// without [`StateMachine::counts`]' walk of the watch table.
    pub fn znode_count(&self) -> u64 {
        self.nodes.len() as u64 + 1
    }

    /// ZooKeeper's data watch table, for `wchs` (see [`WatchSummary`]).
    pub fn watch_summary(&self) -> WatchSummary {
        self.watches.data_summary()
    }

    /// Watches by session, for `wchc`: session → watched paths, sorted (ZooKeeper's data table:
    /// a getChildren watch is not listed).
    pub fn watches_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.watches.listing_by_session()
    }

    /// Watches by path, for `wchp`: path → watching sessions, sorted (the data table too).
    pub fn watches_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        self.watches.listing_by_path()
    }

    /// Ephemeral paths of every session that owns some, sorted (for `dump`).
    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        let mut listing: Vec<(SessionId, Vec<String>)> = self
            .sessions
            .iter()
            .filter(|(_, session)| !session.ephemerals.is_empty())
            .map(|(id, session)| {
                let mut paths: Vec<String> = session
                    .ephemerals
                    .iter()
                    .map(|path| path.to_string())
                    .collect();
                paths.sort_unstable();
                (*id, paths)
            })
            .collect();
        listing.sort_unstable();
        listing
    }

    /// Deterministic snapshot bytes of the tree and session table (not watches).
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_copy().encode()
    }

    /// A point-in-time copy of what [`StateMachine::snapshot`] encodes, for encoding elsewhere
    /// while applies go on: O(1) for the tree (shared, see the crate docs) plus O(sessions) for
    /// the session table. Its [`SnapshotCopy::encode`] gives the bytes `snapshot()` gave at the
    /// moment of the copy, whatever is applied afterwards.
    pub fn snapshot_copy(&self) -> SnapshotCopy {
        SnapshotCopy::new(self)
    }

    /// Rebuild from snapshot bytes. Corrupt or truncated bytes give an error, never a panic.
    /// A format-4 snapshot's settings override `options.skip_acl` and
    /// `options.extended_types_enabled`; older formats take them from `options`.
    pub fn restore(options: Options, bytes: &[u8]) -> Result<StateMachine, SnapshotError> {
        snapshot::read(options, bytes)
    }

    /// Check every invariant of the whole tree (O(n); for tests and simulations): children and
    /// parents agree, the ephemeral/container/TTL indexes match the nodes, the data size adds
    /// up, and the watch index is consistent. Panics on a violation.
    pub fn check_invariants(&self) {
        let mut ephemerals = 0usize;
        let mut data_size = 0u64;
        let mut counted: HashMap<&str, u32> = HashMap::new();
        for (path, node) in self.nodes.iter() {
            data_size += tree::node_size(path, node);
            if &**path != "/" {
                let (parent, _) = path::split_parent(path).expect("stored path without a slash");
                assert!(self.nodes.contains_key(parent), "{path} has no parent");
                *counted.entry(parent).or_default() += 1;
            }
            match node_kind(
                node.stat().ephemeral_owner,
                self.options.extended_types_enabled,
            ) {
                NodeKind::Ephemeral(owner) => {
                    ephemerals += 1;
                    assert!(
                        self.sessions[&owner].ephemerals.contains(path.as_str()),
                        "{path} missing from ephemerals"
                    );
                    assert_eq!(node.child_count(), 0, "ephemeral {path} has children");
                }
                NodeKind::Container => assert!(
                    self.containers.contains(path.as_str()),
                    "{path} missing from containers"
                ),
                NodeKind::Ttl(_) => assert!(
                    self.ttls.contains(path.as_str()),
                    "{path} missing from TTLs"
                ),
                NodeKind::Persistent => {}
            }
        }
        for (path, node) in self.nodes.iter() {
            let counted = counted.get(&**path).copied().unwrap_or(0);
            assert_eq!(node.child_count(), counted, "{path}: child count disagrees");
            let listed = tree::child_names(&self.nodes, path).count();
            assert_eq!(listed, counted as usize, "{path}: child listing disagrees");
        }
        let indexed: usize = self
            .sessions
            .values()
            .map(|session| session.ephemerals.len())
            .sum();
        assert_eq!(
            indexed, ephemerals,
            "ephemerals index disagrees with the tree"
        );
        assert!(self
            .containers
            .iter()
            .chain(&self.ttls)
            .all(|path| self.nodes.contains_key(&**path)));
        assert!(
            self.options.extended_types_enabled || self.ttls.is_empty(),
            "TTL nodes indexed with extended types off"
        );
        assert_eq!(data_size, self.data_size, "approximate data size drifted");
        self.watches.check_invariants();
    }

    /// Turn the tree changes of a successful entry into notifications, in ZooKeeper's order:
    /// a node's own event first, then its parent's NodeChildrenChanged.
    fn fire(&mut self, events: &[TreeEvent], zxid: i64) -> Vec<Notification> {
        let mut notifications = Vec::new();
        for event in events {
            match event {
                TreeEvent::Created(path, acl, parent_acl) => {
                    let fired = self.watches.trigger(path, Table::Data);
                    let event = (EventType::NodeCreated, path.as_str(), acl);
                    push_events(&mut notifications, fired, event, zxid);
                    self.fire_parent_children_changed(path, parent_acl, zxid, &mut notifications);
                }
                TreeEvent::Deleted(path, acl, parent_acl) => {
                    let data = self.watches.trigger(path, Table::Data);
                    let child = self.watches.trigger(path, Table::Child);
                    // A session that fired from the data table is not told twice.
                    let child: BTreeSet<SessionId> = child.difference(&data).copied().collect();
                    let event = (EventType::NodeDeleted, path.as_str(), acl);
                    push_events(&mut notifications, data, event, zxid);
                    push_events(&mut notifications, child, event, zxid);
                    self.fire_parent_children_changed(path, parent_acl, zxid, &mut notifications);
                }
                TreeEvent::DataChanged(path, acl) => {
                    let fired = self.watches.trigger(path, Table::Data);
                    let event = (EventType::NodeDataChanged, path.as_str(), acl);
                    push_events(&mut notifications, fired, event, zxid);
                }
            }
        }
        notifications
    }

    fn fire_parent_children_changed(
        &mut self,
        path: &str,
        parent_acl: &AclList,
        zxid: i64,
        notifications: &mut Vec<Notification>,
    ) {
        let parent = path::parent_of(path);
        let fired = self.watches.trigger(parent, Table::Child);
        let event = (EventType::NodeChildrenChanged, parent, parent_acl);
        push_events(notifications, fired, event, zxid);
    }

    /// Whether a session with these auth ids may receive this event: READ on the event's ACL
    /// (superusers, `skipACL` and an empty ACL pass, as in every other check). ZooKeeper checks
    /// at delivery, with the connection's auth ids of that moment; the watch is spent either way.
    pub fn may_deliver(&self, notification: &Notification, auth: &[Id]) -> bool {
        notification.read_acl.as_ref().is_none_or(|EventAcl(acl)| {
            acl::check_acl(&self.options, acl, acl::PERM_READ, auth).is_ok()
        })
    }
}

/// One event (type, path, the ACL to READ) for each session, in order.
pub(crate) fn push_events(
    notifications: &mut Vec<Notification>,
    sessions: impl IntoIterator<Item = SessionId>,
    (event_type, path, acl): (EventType, &str, &AclList),
    zxid: i64,
) {
    for session_id in sessions {
        let mut notification = notification(session_id, event_type, path, zxid);
        notification.read_acl = Some(EventAcl(acl.clone()));
        notifications.push(notification);
    }
}

/// An event every watcher gets (no ACL to check).
pub(crate) fn notification(
    session_id: SessionId,
    event_type: EventType,
    path: &str,
    zxid: i64,
) -> Notification {
    let event = WatcherEvent {
        event_type: event_type.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_string(),
    };
    Notification {
        session_id,
        zxid,
        event,
        read_acl: None,
    }
}

/// Map a request error to the code ZooKeeper would send.
pub fn error_code(code: ErrorCode) -> i32 {
    code.code()
}

/// The same read with its path set to "/" when it names the empty path; `None` otherwise.
///
/// A watch asked for on "" is not set: ZooKeeper keeps it under the key "", and every event
/// names "/" (a child's parent, or the root itself), so it never fires.
pub(crate) fn root_for_empty_path(request: &Request) -> Option<Request> {
    use rzk_proto::{PathRequest, PathWatchRequest};
    let root = PathWatchRequest {
        path: "/".to_string(),
        watch: false,
    };
    match request {
        Request::Exists(r) if r.path.is_empty() => Some(Request::Exists(root)),
        Request::GetData(r) if r.path.is_empty() => Some(Request::GetData(root)),
        Request::GetChildren(r) if r.path.is_empty() => Some(Request::GetChildren(root)),
        Request::GetChildren2(r) if r.path.is_empty() => Some(Request::GetChildren2(root)),
        Request::GetAcl(r) if r.path.is_empty() => Some(Request::GetAcl(PathRequest {
            path: "/".to_string(),
        })),
        _ => None,
    }
}
