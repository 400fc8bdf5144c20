//! A member's side of forwarding: one task owns one ordered, pipelined stream to the current
//! leader and carries proposals, read-index requests and session touches over it.
//!
//! ```text
//!  propose ─┐ (waits for one of FORWARDED_PROPOSALS_IN_FLIGHT_MAX permits)
//!  read_barrier ─┼─► channel ─► forwarder task ─► frames ─► leader: client_write_ff in order
//!  report_touches ┘                  │                               │ commit + apply
//!                                    ▼                               ▼
//!                    pending[seq] ◄── reader task ◄── Done{seq, index} / Failed{seq}
//!                        │
//!                        └─► AppliedIndex::when_applied(index) ─► the proposal resolves
//! ```
//!
//! The stream is dropped, and everything still waiting for the leader fails with
//! [`ProposeError::NoLeader`], when the connection breaks or this member's view of the leader
//! changes (another leader, or none within the sync window). Proposals the leader already
//! acknowledged are committed; they resolve when this member applies them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use crate::raft_types::{proposal_responder, Payload, ProposalSender};
use crate::transport::{
    connect, decode_header, read_frame, write_frame, ForwardReply, ForwardRequest, PeerRequest,
};
use crate::{Node, ProposeError, Route};

/// Messages handed to the forwarder task, taken in order.
pub(crate) enum Outbound {
    Propose {
        payload: Vec<u8>,
        reply: ProposalSender,
        /// Held until the leader answers (bounds proposals in flight to the leader).
        permit: OwnedSemaphorePermit,
    },
    /// Ask the leader for its commit index (confirmed by a quorum).
    ReadIndex {
        reply: oneshot::Sender<Result<u64, ProposeError>>,
    },
    Touches(Vec<i64>),
}

/// Most messages written to the stream before one flush.
const WRITES_PER_FLUSH_MAX: usize = 256;

enum Waiting {
    Propose(ProposalSender, OwnedSemaphorePermit),
    ReadIndex(oneshot::Sender<Result<u64, ProposeError>>),
}

impl Waiting {
    fn fail(self, error: ProposeError) {
        match self {
            Waiting::Propose(reply, _) => reply.send(Err(error)),
            Waiting::ReadIndex(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

#[derive(Default)]
struct Pending {
    /// Set once the stream is gone: nothing may be added after.
    closed: bool,
    waiting: HashMap<u64, Waiting>,
}

#[derive(Default)]
struct SharedPending(Mutex<Pending>);

impl SharedPending {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Close and fail everything still waiting.
    fn close(&self) {
        let waiting = {
            let mut pending = self.lock();
            pending.closed = true;
            std::mem::take(&mut pending.waiting)
        };
        for (_, waiting) in waiting {
            waiting.fail(ProposeError::NoLeader);
        }
    }
}

struct Link {
    leader: u64,
    writer: BufWriter<OwnedWriteHalf>,
    pending: Arc<SharedPending>,
    reader: JoinHandle<()>,
    next_seq: u64,
}

impl Link {
    fn close(self) {
        self.reader.abort();
        self.pending.close();
    }
}

pub(crate) fn spawn(node: Arc<Node>, rx: mpsc::UnboundedReceiver<Outbound>) -> JoinHandle<()> {
    tokio::spawn(run(node, rx))
}

async fn run(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<Outbound>) {
    let mut link: Option<Link> = None;
    let mut check = tokio::time::interval(node.heartbeat);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                handle(&node, &mut link, message).await;
                for _ in 1..WRITES_PER_FLUSH_MAX {
                    match rx.try_recv() {
                        Ok(message) => handle(&node, &mut link, message).await,
                        Err(_) => break,
                    }
                }
                if let Some(l) = link.as_mut() {
                    if let Err(e) = l.writer.flush().await {
                        tracing::info!(leader = l.leader, "forwarding stream broke: {e}");
                        close(&mut link);
                    }
                }
            }
            _ = check.tick() => {
                if let Some(l) = &link {
                    let current = match node.route() {
                        Route::Remote(leader) => Some(leader),
                        _ => None,
                    };
                    if current != Some(l.leader) || l.reader.is_finished() {
                        tracing::info!(leader = l.leader, ?current, "leader changed or lost: closing the forwarding stream");
                        close(&mut link);
                    }
                }
            }
        }
    }
    close(&mut link);
}

fn close(link: &mut Option<Link>) {
    if let Some(l) = link.take() {
        l.close();
    }
}

async fn handle(node: &Arc<Node>, link: &mut Option<Link>, message: Outbound) {
    let leader = match node.route() {
        Route::Remote(leader) => leader,
        Route::Local => {
            close(link);
            local(node, message).await;
            return;
        }
        Route::NoLeader => {
            close(link);
            fail(message, ProposeError::NoLeader);
            return;
        }
    };
    if link
        .as_ref()
        .is_some_and(|l| l.leader != leader || l.reader.is_finished())
    {
        close(link);
    }
    if link.is_none() {
        match open(node, leader).await {
            Ok(l) => *link = Some(l),
            Err(e) => {
                tracing::info!(leader, "cannot open the forwarding stream: {e}");
                // Refused or reset: the leader may be gone (elects early once its lease ran out).
                node.leader_connection_closed(leader);
                fail(message, ProposeError::NoLeader);
                return;
            }
        }
    }
    let l = link.as_mut().expect("opened above");
    let seq = l.next_seq;
    l.next_seq += 1;
    let (request, body, waiting) = match message {
        Outbound::Propose {
            payload,
            reply,
            permit,
        } => (
            ForwardRequest::Propose { seq },
            payload,
            Some(Waiting::Propose(reply, permit)),
        ),
        Outbound::ReadIndex { reply } => (
            ForwardRequest::ReadIndex { seq },
            Vec::new(),
            Some(Waiting::ReadIndex(reply)),
        ),
        Outbound::Touches(session_ids) => {
            (ForwardRequest::Touches { session_ids }, Vec::new(), None)
        }
    };
    if let Some(waiting) = waiting {
        let mut pending = l.pending.lock();
        if pending.closed {
            drop(pending);
            waiting.fail(ProposeError::NoLeader);
            close(link);
            return;
        }
        pending.waiting.insert(seq, waiting);
    }
    if let Err(e) = write_frame(&mut l.writer, &request, &[&body]).await {
        tracing::info!(leader, "forwarding stream broke: {e}");
        close(link);
    }
}

/// This member is the leader (or believes so): serve the message here.
async fn local(node: &Arc<Node>, message: Outbound) {
    match message {
        Outbound::Propose { payload, reply, .. } => {
            // On error the responder is dropped unanswered and replies ShuttingDown.
            let _ = node
                .raft
                .client_write_ff(Payload(payload), Some(proposal_responder(reply)))
                .await;
        }
        Outbound::ReadIndex { reply } => {
            let node = node.clone();
            tokio::spawn(async move {
                let _ = reply.send(node.leader_read_index().await);
            });
        }
        Outbound::Touches(session_ids) => node.applier.sessions_touched(&session_ids),
    }
}

fn fail(message: Outbound, error: ProposeError) {
    match message {
        Outbound::Propose { reply, .. } => reply.send(Err(error)),
        Outbound::ReadIndex { reply } => {
            let _ = reply.send(Err(error));
        }
        // Touches are reported again next tick; a new leader grants full timeouts anyway.
        Outbound::Touches(_) => {}
    }
}

async fn open(node: &Arc<Node>, leader: u64) -> std::io::Result<Link> {
    let addr = node.members.get(&leader).ok_or_else(|| {
        std::io::Error::other(format!(
            "leader {leader} is not among the configured members"
        ))
    })?;
    let (reader, writer) = connect(addr).await?.into_split();
    let mut writer = BufWriter::new(writer);
    write_frame(&mut writer, &PeerRequest::Forward { from: node.id }, &[]).await?;
    writer.flush().await?;
    let pending = Arc::new(SharedPending::default());
    let reader = tokio::spawn(read_replies(
        BufReader::new(reader),
        pending.clone(),
        node.clone(),
        leader,
    ));
    tracing::debug!(leader, "forwarding stream opened");
    Ok(Link {
        leader,
        writer,
        pending,
        reader,
        next_seq: 0,
    })
}

async fn read_replies(
    mut reader: BufReader<OwnedReadHalf>,
    pending: Arc<SharedPending>,
    node: Arc<Node>,
    leader: u64,
) {
    loop {
        let reply = match read_frame(&mut reader).await {
            Ok(Some((header, _))) => match decode_header::<ForwardReply>(&header) {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::warn!(leader, "undecodable reply on the forwarding stream: {e}");
                    break;
                }
            },
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(leader, "forwarding stream ended: {e}");
                break;
            }
        };
        let (seq, result) = match reply {
            ForwardReply::Done { seq, index } => (seq, Ok(index)),
            ForwardReply::Failed { seq, error } => (seq, Err(error.into_propose(leader))),
        };
        let Some(waiting) = pending.lock().waiting.remove(&seq) else {
            continue;
        };
        match (waiting, result) {
            (Waiting::Propose(reply, permit), Ok(index)) => {
                drop(permit);
                // Committed at `index`: resolve once this member has applied it too.
                node.applied
                    .when_applied(index, move || reply.send(Ok(index)));
            }
            (Waiting::ReadIndex(reply), Ok(index)) => {
                let _ = reply.send(Ok(index));
            }
            (waiting, Err(e)) => waiting.fail(e),
        }
    }
    pending.close();
}
