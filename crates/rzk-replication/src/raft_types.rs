//! The openraft type configuration and the few small types it names. Nothing here leaves the crate.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use openraft::raft::responder::Responder;
use openraft::raft::ClientWriteResult;
use openraft::{BasicNode, OptionalSend, RaftTypeConfig};
use serde::{Deserialize, Serialize};

use crate::ProposeError;

/// Opaque bytes proposed by the server (an encoded state-machine entry).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payload(pub(crate) Vec<u8>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// openraft's type configuration for rzk. Written out instead of `declare_raft_types!` because
/// the macro cannot override the generic `Responder<T>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rzk;

impl RaftTypeConfig for Rzk {
    type D = Payload;
    type R = ();
    type NodeId = u64;
    type Node = BasicNode;
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, u64>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = openraft::EntryPayload<Payload, u64, BasicNode>;
    type Entry = openraft::Entry<Self::LeaderId, Self::Payload>;
    type AsyncRuntime = crate::runtime::RzkRuntime;
    type Responder<T>
        = ReplyTo<T>
    where
        T: OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

pub(crate) type LogId = openraft::type_config::alias::LogIdOf<Rzk>;
pub(crate) type Vote = openraft::type_config::alias::VoteOf<Rzk>;
pub(crate) type Entry = openraft::type_config::alias::EntryOf<Rzk>;
pub(crate) type StoredMembership = openraft::type_config::alias::StoredMembershipOf<Rzk>;
pub(crate) type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<Rzk>;
pub(crate) type Raft = openraft::Raft<Rzk, crate::state_machine::StateMachine>;

/// Where one proposal's outcome goes: a closure run exactly once, with the log index or why
/// there is none. Dropped unsent (the proposal was lost on shutdown), it runs with
/// [`ProposeError::ShuttingDown`], as a dropped oneshot sender would tell its receiver. A
/// closure instead of a oneshot lets the server finish a write without a task per proposal.
pub(crate) struct ProposalSender {
    done: Option<ProposalDone>,
    /// Counts this proposal while it waits for its outcome ([`ProposalSender::counted`]).
    in_flight: Option<Arc<AtomicUsize>>,
}

type ProposalDone = Box<dyn FnOnce(Result<u64, ProposeError>) + Send>;

impl ProposalSender {
    pub(crate) fn new(done: impl FnOnce(Result<u64, ProposeError>) + Send + 'static) -> Self {
        ProposalSender {
            done: Some(Box::new(done)),
            in_flight: None,
        }
    }

    /// Count this proposal in `in_flight` until its outcome is known (it is uncounted just
    /// before `done` runs, so a client that writes again on the answer finds it uncounted).
    pub(crate) fn counted(mut self, in_flight: &Arc<AtomicUsize>) -> Self {
        in_flight.fetch_add(1, Ordering::AcqRel);
        self.in_flight = Some(Arc::clone(in_flight));
        self
    }

    fn finish(&mut self, outcome: Result<u64, ProposeError>) {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(done) = self.done.take() {
            done(outcome);
        }
    }

    /// A sender whose outcome arrives on a oneshot receiver.
    pub(crate) fn oneshot() -> (
        Self,
        tokio::sync::oneshot::Receiver<Result<u64, ProposeError>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = ProposalSender::new(move |outcome| {
            // The proposer may have stopped waiting; nothing to do then.
            let _ = tx.send(outcome);
        });
        (sender, rx)
    }

    pub(crate) fn send(mut self, outcome: Result<u64, ProposeError>) {
        self.finish(outcome);
    }
}

impl Drop for ProposalSender {
    fn drop(&mut self) {
        self.finish(Err(ProposeError::ShuttingDown));
    }
}

/// A responder that runs a closure with the outcome: `Some(result)` once openraft completes the
/// write, `None` if openraft drops it unanswered (shutdown). This lets one proposal resolve the
/// server's oneshot directly from the apply path, without a task per proposal.
pub(crate) struct ReplyTo<T> {
    reply: Option<Box<dyn FnOnce(Option<T>) + Send>>,
}

impl<T> ReplyTo<T> {
    pub(crate) fn new(reply: impl FnOnce(Option<T>) + Send + 'static) -> Self {
        ReplyTo {
            reply: Some(Box::new(reply)),
        }
    }
}

impl<T> Drop for ReplyTo<T> {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply(None);
        }
    }
}

impl<T: OptionalSend + 'static> Responder<Rzk, T> for ReplyTo<T> {
    fn on_complete(mut self, result: T) {
        if let Some(reply) = self.reply.take() {
            reply(Some(result));
        }
    }
}

/// The responder for one proposal: maps openraft's write result onto [`ProposeError`].
pub(crate) fn proposal_responder(tx: ProposalSender) -> ReplyTo<ClientWriteResult<Rzk>> {
    ReplyTo::new(move |outcome: Option<ClientWriteResult<Rzk>>| {
        tx.send(write_outcome(outcome));
    })
}

/// A write's outcome as the log index it got, or why it has none.
pub(crate) fn write_outcome(outcome: Option<ClientWriteResult<Rzk>>) -> Result<u64, ProposeError> {
    match outcome {
        Some(Ok(response)) => Ok(response.log_id.index),
        Some(Err(e)) => Err(map_write_error(&e)),
        None => Err(ProposeError::ShuttingDown),
    }
}

fn map_write_error(e: &openraft::errors::ClientWriteError<Rzk>) -> ProposeError {
    use openraft::errors::ClientWriteError as E;
    match e {
        // `ForwardToLeader`: leadership moved between the caller's check and the write.
        // `LogEntryDiscarded`: the entry was dropped on a leader change and may still commit
        // elsewhere; the caller cannot tell, exactly as with a lost connection.
        E::ForwardToLeader(_) | E::LogEntryDiscarded(_) => ProposeError::NoLeader,
        other => ProposeError::Storage(other.to_string()),
    }
}

pub(crate) fn io_err(what: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}
