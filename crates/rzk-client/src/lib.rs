//! # rzk-client: a minimal async ZooKeeper client
//!
//! Owns a small, honest client over a real socket for `rzk cli`, `rzk bench` and
//! `rzk ensemble status`. It speaks the wire format through `rzk-proto` and nothing else, so it
//! must not be the only oracle in tests: sharing our own codec would hide our own bugs.
//!
//! # Layout
//! - [`Client`] (`client.rs`): connect to the first host of `"h:p,h:p"` that answers, then
//!   send requests ([`Client::request`] and typed helpers such as [`Client::get_data`]).
//! - `connection.rs`: the two tasks behind one session. The writer task stamps xids and
//!   writes frames (and pings after `timeout/3` without sending); the reader task matches
//!   replies to pending requests in xid order and forwards watch notifications.
//! - [`ClientError`] (`error.rs`): server error codes and local failures, kept apart.
//!
//! # What it does not do
//! No reconnection, no session re-attach, no SASL/TLS (a chroot suffix in the connect string is
//! served, `chroot.rs`). When the connection drops,
//! every pending and later request fails with [`ClientError::ConnectionLost`] and a
//! `Disconnected` event is delivered; the caller decides whether to connect again.
//!
//! # Ordering
//! Requests are written in call order and ZooKeeper answers them in that order, except auth
//! (xid -4), which the server answers as soon as it reads it. A watch notification that the
//! server sends before a reply is delivered on the event channel before that reply's
//! caller wakes up.

mod chroot;
mod client;
mod connection;
mod error;

pub use client::{
    parse_connect_string, parse_hosts, Client, SessionInfo, CONNECT_TIMEOUT_MAX, EVENTS_MAX,
    PENDING_REQUESTS_MAX,
};
pub use error::ClientError;
pub use rzk_proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, KeeperState, MultiResult,
    Request, Response, Stat, WatcherType,
};

/// A watch notification or a change of session state, as the Java client's `WatchedEvent`.
/// State changes (`SyncConnected` on connect, `Closed` after [`Client::close`], `Disconnected`
/// when the connection drops) have type `None` and no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub state: KeeperState,
    pub path: Option<String>,
}
