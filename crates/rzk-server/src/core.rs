//! The core: the state machine and the sessions attached to this member, behind one lock.
//!
//! Ordering rules (ZooKeeper's `CommitProcessor` constraints, kept here in one place):
//! 1. Replies to one session leave in request order. Each attached session has a FIFO of
//!    `Pending` requests; only the head may be answered.
//! 2. A read waits behind its own session's pending writes, and runs on the state machine
//!    between applies (under this lock), so it sees every write its session made before it.
//! 3. Watch events are pushed to a session's outbound queue at apply time, under the same lock
//!    as reads, so a client sees an event before any reply that reflects the change, and the
//!    requester sees events its write fired before that write's reply.
//!
//! Nothing here blocks or awaits: outbound queues are bounded and `try_send`; a client that
//! lets its queue fill is disconnected (see [`OUTBOUND_MESSAGES_MAX`]), and so is one that
//! asks for a read whose reply would be larger than [`REPLY_BYTES_MAX`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rzk_proto::message::OVERHEAD_BYTES_ESTIMATE;
use rzk_proto::{ErrorCode, Id, OpCode, Reply, Request};
use rzk_state_machine::{
    Applied, Entry, EntryOp, Notification, ReplyTooLarge, SessionId, StateMachine, REPLY_BYTES_MAX,
};
use tokio::sync::{mpsc, Notify};

use crate::expiry::ExpiryTracker;

/// Messages queued for one connection, at most this many. A client that stops reading its
/// socket while it has this many replies and events waiting is disconnected rather than
/// letting the server buffer without bound.
pub const OUTBOUND_MESSAGES_MAX: usize = 100_000;

/// Bytes of replies and events queued for one connection and not yet written to its socket,
/// at most this many (estimated by [`Outbound::bytes`]). A client that stops reading while
/// asking for large nodes would otherwise hold up to
/// [`crate::connection::REQUESTS_IN_FLIGHT_MAX`] replies of up to `jute.maxbuffer` each (a
/// gigabyte) per connection; past this it is disconnected, as for [`OUTBOUND_MESSAGES_MAX`].
///
/// One message is always let through when nothing is queued. A read's reply never needs that:
/// the state machine refuses to build one larger than [`REPLY_BYTES_MAX`], by the same
/// estimate, and that is no more than this (checked below), so it always fits an empty queue.
/// It remains for a write's reply or a watch event, whose size the request's `jute.maxbuffer`
/// bounds (a multi of many small ops is estimated at 128 bytes a result).
pub const OUTBOUND_BYTES_MAX: usize = 64 << 20;

// A read's reply, refused past REPLY_BYTES_MAX, always fits an empty queue.
const _: () = assert!(REPLY_BYTES_MAX <= OUTBOUND_BYTES_MAX);

/// When a request was read, and its opcode (the wire value): latency is measured, by opcode,
/// when the reply is written.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub at: Instant,
    pub op: i32,
}

/// What a connection's writer sends, in queue order.
#[derive(Debug)]
pub enum Outbound {
    Reply {
        xid: i32,
        zxid: i64,
        reply: Reply,
        /// When the request was read: latency is measured when the reply is written.
        received: Received,
    },
    Notification(Notification),
    /// Flush what is queued, then close the socket.
    Close,
}

impl Outbound {
    /// About how many bytes the message takes until it is written: what grows with the
    /// request (data, names, paths) in full, plus a fixed allowance for headers and Stats
    /// ([`rzk_proto::Response::bytes_estimate`] for a reply). The queue's byte count
    /// ([`OUTBOUND_BYTES_MAX`]) adds it when the message is queued and the writer takes it off
    /// once written ([`Queued`] carries the number). The state machine bounds
    /// a read's reply by the same estimate ([`REPLY_BYTES_MAX`]).
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Reply {
                reply: Ok(response),
                ..
            } => response.bytes_estimate(),
            Outbound::Reply { reply: Err(_), .. } | Outbound::Close => OVERHEAD_BYTES_ESTIMATE,
            Outbound::Notification(notification) => {
                OVERHEAD_BYTES_ESTIMATE + notification.event.path.len()
            }
        }
    }
}

/// Serves one queued read, `(xid, received, request, auth)`, onto `outbound`: the watch events
/// it fired that the session may read, then its reply. Nothing is queued when the reply would
/// be too large.
fn serve_read(
    sm: &mut StateMachine,
    session_id: SessionId,
    (xid, received, request, auth): (i32, Received, &Request, &[Id]),
    outbound: &mut Vec<Outbound>,
) -> Result<(), ReplyTooLarge> {
    let mut notifications = Vec::new();
    let reply = sm.read(session_id, auth, request, &mut notifications)?;
    for notification in notifications {
        // setWatches' events carry no ACL (ZooKeeper checks none there).
        if sm.may_deliver(&notification, auth) {
            outbound.push(Outbound::Notification(notification));
        }
    }
    outbound.push(Outbound::Reply {
        xid,
        zxid: sm.last_zxid(),
        reply,
        received,
    });
    Ok(())
}

/// A message on a connection's queue with its [`Outbound::bytes`], counted once when it is
/// queued: the writer takes the same number off the queue's byte count once it is written.
#[derive(Debug)]
pub struct Queued {
    pub message: Outbound,
    pub bytes: usize,
}

/// One request of a session that has not been answered yet.
#[derive(Debug)]
enum Pending {
    /// Proposed to the log; `result` is filled at apply (or when the proposal failed).
    Write {
        xid: i32,
        received: Received,
        result: Option<(i64, Reply)>,
    },
    /// A read waiting for the writes before it.
    Read {
        xid: i32,
        received: Received,
        request: Request,
        auth: Vec<Id>,
    },
    /// Already answered (ping, auth, unknown opcode...), waiting for its turn.
    Ready {
        xid: i32,
        received: Received,
        reply: Reply,
        /// The zxid in the reply header; `None` = the last applied zxid when it leaves.
        zxid: Option<i64>,
    },
    /// Close the connection once everything before it is answered (after AuthFailed).
    Close,
}

/// A session with a connection on this member.
pub struct Attached {
    pub connection_id: u64,
    out: mpsc::Sender<Queued>,
    /// Tells the connection to stop (replaced by a newer connection, or the client is too slow).
    kill: Arc<Notify>,
    pending: VecDeque<Pending>,
    /// Bytes queued for the writer and not yet written ([`OUTBOUND_BYTES_MAX`]), shared with it.
    queued_bytes: Arc<AtomicUsize>,
    /// The connection's auth ids (its `ip` id and what addAuth added): a watch event reaches
    /// the session only if they may READ the znode it is about ([`StateMachine::may_deliver`]).
    auth: Vec<Id>,
}

/// The state behind the core lock.
pub struct Core {
    pub sm: StateMachine,
    pub expiry: ExpiryTracker,
    attached: HashMap<SessionId, Attached>,
    /// Sessions touched since the last report to the leader (ensemble members only).
    touched: HashSet<SessionId>,
    /// This member's id: an applied write whose [`Entry::origin`] names another member was not
    /// proposed by a connection here.
    member_id: u64,
}

impl Core {
    pub fn new(sm: StateMachine, tick_ms: u32, member_id: u64) -> Core {
        Core {
            sm,
            expiry: ExpiryTracker::new(tick_ms),
            attached: HashMap::new(),
            touched: HashSet::new(),
            member_id,
        }
    }

    /// The [`Entry::origin`] of a write proposed by `connection_id` on this member.
    pub fn origin(&self, connection_id: u64) -> u64 {
        Entry::origin_of(self.member_id, connection_id)
    }

    /// The session's pending queue, if `connection_id` is still its connection here. A
    /// connection replaced by a newer one (the session reattached) must not queue into the
    /// newer one's FIFO: both may use the same xids.
    fn attached_by(&mut self, session_id: SessionId, connection_id: u64) -> Option<&mut Attached> {
        self.attached
            .get_mut(&session_id)
            .filter(|attached| attached.connection_id == connection_id)
    }

    pub fn attached_count(&self) -> usize {
        self.attached.len()
    }

    /// Attach a connection to a session, replacing (and stopping) any older connection of it.
    /// False, attaching nothing, when the session is not owned by this connection (any more):
    /// it moved to another connection, or ended, since the handshake's entry was applied.
    #[must_use]
    pub fn attach(
        &mut self,
        session_id: SessionId,
        connection_id: u64,
        out: mpsc::Sender<Queued>,
        queued_bytes: Arc<AtomicUsize>,
        kill: Arc<Notify>,
        auth: Vec<Id>,
    ) -> bool {
        if self.sm.session_owner(session_id) != Some(self.origin(connection_id)) {
            return false;
        }
        // Per-session order across the reconnect needs nothing queued here: every write the
        // older connection got into the log before this connection's AttachSession entry is
        // applied (the handshake waited for it), and any it gets in later is refused.
        if let Some(old) = self.attached.remove(&session_id) {
            old.kill.notify_one();
            self.sm.drop_watches(session_id);
        }
        let fresh = Attached {
            connection_id,
            out,
            kill,
            pending: VecDeque::new(),
            queued_bytes,
            auth,
        };
        self.attached.insert(session_id, fresh);
        true
    }

    /// The connection's auth ids changed (addAuth): later watch events are checked with these.
    pub fn set_auth(&mut self, session_id: SessionId, connection_id: u64, auth: &[Id]) {
        if let Some(attached) = self
            .attached
            .get_mut(&session_id)
            .filter(|a| a.connection_id == connection_id)
        {
            attached.auth.clear();
            attached.auth.extend_from_slice(auth);
        }
    }

    /// Detach a connection that went away (only if it is still the session's current one).
    pub fn detach(&mut self, session_id: SessionId, connection_id: u64) {
        if self
            .attached
            .get(&session_id)
            .is_some_and(|a| a.connection_id == connection_id)
        {
            self.attached.remove(&session_id);
            self.sm.drop_watches(session_id);
        }
    }

    /// A request arrived from a session: extend its life here, and remember it for the leader.
    pub fn touch(&mut self, session_id: SessionId, now_ms: i64) {
        self.expiry.touch_known(session_id, now_ms);
        self.touched.insert(session_id);
    }

    /// The sessions touched since the last call (reported to the leader once a tick).
    pub fn take_touched(&mut self) -> Vec<SessionId> {
        self.touched.drain().collect()
    }

    /// Close every client connection (this member lost the quorum; clients go elsewhere).
    pub fn disconnect_all(&mut self) {
        let sessions: Vec<SessionId> = self.attached.keys().copied().collect();
        for session_id in sessions {
            self.disconnect(session_id);
        }
    }

    /// Stop a session's connection here and drop its watches (they live with the connection, as
    /// in ZooKeeper); the session itself lives on until it is closed or expires.
    fn disconnect(&mut self, session_id: SessionId) {
        if let Some(attached) = self.attached.remove(&session_id) {
            attached.kill.notify_one();
            self.sm.drop_watches(session_id);
        }
    }

    /// The log cannot be written (full disk, I/O error): its entries wait until they are
    /// durable, and nobody can say yet whether they will commit. Close the connection of every
    /// session with a write waiting for its entry, so that its client gets ConnectionLoss (the
    /// ZooKeeper error that means "outcome unknown") instead of waiting with no answer; a write
    /// that is not durable is never acknowledged. The sessions live on: their clients reconnect,
    /// read, and see the waiting writes once space returns and they commit. Returns how many
    /// connections were closed.
    pub fn disconnect_waiting_writers(&mut self) -> usize {
        let waiting: Vec<SessionId> = self
            .attached
            .iter()
            .filter(|(_, attached)| {
                attached
                    .pending
                    .iter()
                    .any(|pending| matches!(pending, Pending::Write { result: None, .. }))
            })
            .map(|(session_id, _)| *session_id)
            .collect();
        for &session_id in &waiting {
            self.disconnect(session_id);
        }
        waiting.len()
    }

    /// Answer a pending slot (queued with [`Core::push_write`]) that needed no log entry, such
    /// as a `sync` once the read barrier passed.
    pub fn complete(&mut self, session_id: SessionId, connection_id: u64, xid: i32, reply: Reply) {
        let zxid = self.sm.last_zxid();
        self.complete_write(session_id, Some(connection_id), xid, zxid, reply)
    }

    /// Queue a write about to be proposed. False when `connection_id` is no longer the
    /// session's connection: the caller must not propose it.
    pub fn push_write(
        &mut self,
        session_id: SessionId,
        connection_id: u64,
        xid: i32,
        received: Received,
    ) -> bool {
        let Some(attached) = self.attached_by(session_id, connection_id) else {
            return false;
        };
        attached.pending.push_back(Pending::Write {
            xid,
            received,
            result: None,
        });
        true
    }

    /// Queue an already computed reply behind the session's pending requests; `zxid` is the
    /// reply header's zxid when it must not be the last applied one (auth replies carry 0).
    pub fn push_ready(
        &mut self,
        session_id: SessionId,
        connection_id: u64,
        xid: i32,
        received: Received,
        reply: Reply,
        zxid: Option<i64>,
    ) {
        if let Some(attached) = self.attached_by(session_id, connection_id) {
            attached.pending.push_back(Pending::Ready {
                xid,
                received,
                reply,
                zxid,
            });
        }
        self.flush(session_id)
    }

    /// Serve a read now if nothing of this session is pending, else queue it.
    pub fn push_read(
        &mut self,
        session_id: SessionId,
        connection_id: u64,
        xid: i32,
        received: Received,
        request: Request,
        auth: Vec<Id>,
    ) {
        if let Some(attached) = self.attached_by(session_id, connection_id) {
            attached.pending.push_back(Pending::Read {
                xid,
                received,
                request,
                auth,
            });
        }
        self.flush(session_id)
    }

    /// Close the session's connection once everything queued before now is answered.
    pub fn close_after_flush(&mut self, session_id: SessionId, connection_id: u64) {
        if let Some(attached) = self.attached_by(session_id, connection_id) {
            attached.pending.push_back(Pending::Close);
        }
        self.flush(session_id);
    }

    /// A proposal of `connection_id` failed before it was applied: answer it with `code` in its
    /// turn.
    pub fn fail_write(
        &mut self,
        session_id: SessionId,
        connection_id: u64,
        xid: i32,
        code: ErrorCode,
    ) {
        let zxid = self.sm.last_zxid();
        self.complete_write(session_id, Some(connection_id), xid, zxid, Err(code))
    }

    /// Fill in the result of the pending write `xid` proposed by `connection_id` (any
    /// connection of the session when `None`: an entry logged without its origin). Its reply
    /// goes out in turn if that connection is still the session's; a write of a connection that
    /// went away is answered to nobody (ZooKeeper drops a reply for a closed connection).
    fn complete_write(
        &mut self,
        session_id: SessionId,
        connection_id: Option<u64>,
        xid: i32,
        zxid: i64,
        reply: Reply,
    ) {
        // A session's queue holds only its current connection's requests.
        let Some(attached) = self
            .attached
            .get_mut(&session_id)
            .filter(|attached| connection_id.is_none_or(|id| id == attached.connection_id))
        else {
            return;
        };
        let matches = |pending: &Pending| matches!(pending, Pending::Write { xid: pending_xid, result: None, .. } if *pending_xid == xid);
        match attached.pending.iter_mut().find(|pending| matches(pending)) {
            Some(Pending::Write { result, .. }) => *result = Some((zxid, reply)),
            // Not proposed from this member, or its connection is gone with its queue.
            _ => return,
        }
        self.flush(session_id)
    }

    /// Answer the head of a session's queue for as long as it can be answered.
    fn flush(&mut self, session_id: SessionId) {
        let Some(attached) = self.attached.get_mut(&session_id) else {
            return;
        };
        let mut outbound = Vec::new();
        let mut refused = None;
        while let Some(head) = attached.pending.front() {
            if matches!(head, Pending::Write { result: None, .. }) {
                break;
            }
            let Some(head) = attached.pending.pop_front() else {
                break;
            };
            match head {
                Pending::Write {
                    xid,
                    received,
                    result,
                    ..
                } => {
                    let (zxid, reply) = result.expect("checked above: the write has its result");
                    outbound.push(Outbound::Reply {
                        xid,
                        zxid,
                        reply,
                        received,
                    });
                }
                Pending::Ready {
                    xid,
                    received,
                    reply,
                    zxid,
                } => outbound.push(Outbound::Reply {
                    xid,
                    zxid: zxid.unwrap_or_else(|| self.sm.last_zxid()),
                    reply,
                    received,
                }),
                Pending::Close => outbound.push(Outbound::Close),
                Pending::Read {
                    xid,
                    received,
                    request,
                    auth,
                } => {
                    let read = (xid, received, &request, auth.as_slice());
                    if let Err(too_large) =
                        serve_read(&mut self.sm, session_id, read, &mut outbound)
                    {
                        refused = Some((request.op(), too_large));
                        break;
                    }
                }
            }
        }
        for message in outbound {
            self.send(session_id, message);
        }
        if let Some((op, too_large)) = refused {
            self.close_for_reply_too_large(session_id, op, too_large);
        }
    }

    /// A read's reply would be larger than [`REPLY_BYTES_MAX`]: the connection is closed once
    /// the replies queued before it are written, as a ZooKeeper client drops a connection whose
    /// reply is longer than its `jute.maxbuffer` (ZooKeeper builds the reply first). The
    /// session's later requests are not answered; the session lives on, and its client
    /// reconnects as after any lost connection.
    fn close_for_reply_too_large(
        &mut self,
        session_id: SessionId,
        op: OpCode,
        too_large: ReplyTooLarge,
    ) {
        tracing::warn!(
            session_id = format_args!("0x{session_id:x}"),
            opcode = op.code(),
            request = ?op,
            bytes = too_large.bytes,
            bytes_max = too_large.limit,
            "a read's reply would be larger than the limit; not sent, closing the connection"
        );
        self.send(session_id, Outbound::Close);
        if let Some(attached) = self.attached.get(&session_id) {
            attached.kill.notify_one();
            let connection_id = attached.connection_id;
            self.detach(session_id, connection_id);
        }
    }

    /// Queue one message for a session's connection; a full queue disconnects the client.
    fn send(&mut self, session_id: SessionId, message: Outbound) {
        let Some(attached) = self.attached.get(&session_id) else {
            return;
        };
        let bytes = message.bytes();
        let queued = attached.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let too_many_bytes = queued > 0 && queued + bytes > OUTBOUND_BYTES_MAX;
        if too_many_bytes || attached.out.try_send(Queued { message, bytes }).is_err() {
            attached.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            tracing::warn!(
                session_id = format_args!("0x{session_id:x}"),
                messages_max = OUTBOUND_MESSAGES_MAX,
                bytes_max = OUTBOUND_BYTES_MAX,
                queued_bytes = queued,
                "client is not reading its replies; closing its connection"
            );
            attached.kill.notify_one();
            let connection_id = attached.connection_id;
            self.detach(session_id, connection_id);
        }
    }

    /// Apply one committed entry and route what it produced.
    pub fn apply(&mut self, entry: &Entry, now_ms: i64) {
        let applied: Applied = self.sm.apply(entry);
        match &entry.op {
            EntryOp::CreateSession { timeout_ms } => {
                if applied.reply.is_ok() {
                    self.expiry.touch(entry.session_id, *timeout_ms, now_ms);
                }
            }
            EntryOp::CloseSession | EntryOp::Write { .. } => {}
            // The leader's zoo.cfg settings, now in effect on every member: nobody to answer.
            EntryOp::Settings { .. } => return,
            // The session now writes from the connection that proposed this entry: an older
            // connection of it here stops (its later writes would be refused anyway). The
            // proposer waits for the apply itself: nobody to answer.
            EntryOp::AttachSession => {
                let stale = self
                    .attached
                    .get(&entry.session_id)
                    .is_some_and(|attached| self.origin(attached.connection_id) != entry.origin);
                if applied.reply.is_ok() && stale {
                    self.disconnect(entry.session_id);
                }
                return;
            }
        }
        for notification in applied.notifications {
            let session_id = notification.session_id;
            // Watches live with the connection, so an event is for an attached session.
            let allowed = self
                .attached
                .get(&session_id)
                .is_some_and(|attached| self.sm.may_deliver(&notification, &attached.auth));
            if allowed {
                self.send(session_id, Outbound::Notification(notification));
            } else {
                tracing::trace!(
                    session_id = format_args!("0x{session_id:x}"),
                    path = %notification.event.path,
                    "watch event not delivered: the session may not read the znode"
                );
            }
        }
        // Only the connection that proposed the write is answered (0: proposed by a server task,
        // or logged by an rzk from before origins, which matched by xid alone).
        let proposer = match entry.proposer() {
            None => Some(None),
            Some((member, connection)) if member == self.member_id => Some(Some(connection)),
            Some(_) => None,
        };
        if let Some(connection_id) = proposer {
            self.complete_write(
                entry.session_id,
                connection_id,
                entry.xid,
                applied.zxid,
                applied.reply,
            );
        }
        for session_id in applied.closed_sessions {
            self.expiry.remove(session_id);
            if self.attached.contains_key(&session_id) {
                self.send(session_id, Outbound::Close);
                if let Some(attached) = self.attached.remove(&session_id) {
                    // The reader stops too, and the connection ends once the writer has sent
                    // the Close (bounded: a client that reads nothing is cut off).
                    attached.kill.notify_one();
                }
                self.sm.drop_watches(session_id);
            }
        }
    }

    /// After a restore, every session gets a fresh full timeout (as a new ZooKeeper leader does).
    pub fn track_all_sessions(&mut self, now_ms: i64) {
        for (session_id, timeout_ms) in self.sm.sessions() {
            self.expiry.touch(session_id, timeout_ms, now_ms);
        }
    }
}
