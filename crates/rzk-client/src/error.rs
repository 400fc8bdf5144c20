//! Client errors: what the server answered, kept apart from what went wrong locally.

use rzk_proto::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered the request with this error code (NoNode, BadVersion, ...).
    #[error("server answered {0:?} ({code})", code = .0.code())]
    Keeper(ErrorCode),
    /// No host of the connect string accepted a session.
    #[error("could not connect to any of {hosts}: {reasons}; check that a server listens there")]
    Connect { hosts: String, reasons: String },
    /// The connect string or an argument could not be used.
    #[error("{0}")]
    InvalidArgument(String),
    /// The connection ended (or was closed) before the reply arrived. The request may or may
    /// not have been applied.
    #[error("connection to {server} lost: {reason}")]
    ConnectionLost { server: String, reason: String },
    /// The server sent bytes this client cannot make sense of; the connection was closed.
    #[error("protocol error from {server}: {reason}")]
    Protocol { server: String, reason: String },
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Keeper(code) => Some(*code),
            _ => None,
        }
    }
}
