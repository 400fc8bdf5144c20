//! # rzk-proto: the ZooKeeper client wire protocol
//!
//! Owns every byte a ZooKeeper 3.8/3.9 client sends or receives: jute records as Rust values,
//! opcodes and error codes, length-prefixed frames capped by `jute.maxbuffer`, and decode errors
//! as values. Must not touch sockets, tokio, clocks or znode semantics.
//!
//! # Layout
//! - [`codes`]: opcodes, error codes, event types, states, create modes, permission bits, xids.
//! - [`records`]: the jute records (`zookeeper.jute`) as structs.
//! - [`message`]: the `Request` and `Response` enums; the variant fixes the opcode.
//! - [`jute`]: the jute binary encoding: [`jute::Reader`], [`jute::Writer`], and the
//!   [`jute::Encode`]/[`jute::Decode`] traits implemented by every record.
//! - [`codec`]: encode/decode of whole packets (handshake, requests, replies, notifications).
//! - [`frame`]: length-prefix framing and four-letter-word detection.

pub mod codec;
pub mod codes;
pub mod frame;
pub mod jute;
pub mod message;
pub mod records;

pub use codes::{AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType};
pub use message::{MultiResult, Reply, Request, Response};
pub use records::*;
