//! The replicated log entry: what a member proposes and every member applies in log order.

use rzk_proto::{Id, Request};

use crate::SessionId;

/// One replicated change. Time and the requesting session travel with it, so applying it
/// needs no clock. The zxid is not in the entry: the state machine gives `last_zxid + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub session_id: SessionId,
    /// The client's xid, so the member holding the connection can route the reply.
    pub xid: i32,
    /// Wall-clock ms stamped by the proposer; becomes ctime/mtime.
    pub time_ms: i64,
    pub op: EntryOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// A new session with its negotiated timeout.
    CreateSession { timeout_ms: i32 },
    /// closeSession from the client, or expiry decided by the leader: deletes its ephemerals.
    CloseSession,
    /// A write request (`Request::is_write`), checked against the session's auth ids.
    Write { auth: Vec<Id>, request: Request },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryDecodeError {
    #[error("log entry is corrupt: {0}")]
    Corrupt(String),
}

impl Entry {
    /// Deterministic bytes for the log (jute-encoded request inside).
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryDecodeError> {
        let _ = bytes;
        todo!()
    }
}
