//! Encoding and decoding of whole packets. Encoders append a complete frame (4-byte length
//! prefix included) to `out`; decoders take one frame body (length prefix already removed).
//!
//! SKELETON: signatures are fixed (other crates build against them); bodies are being written.

use crate::codes::OpCode;
use crate::message::{Reply, Request};
use crate::records::*;

/// Why bytes could not be decoded. Every variant names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("invalid length {length} at offset {offset}")]
    InvalidLength { offset: usize, length: i32 },
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("unknown opcode {op}")]
    UnknownOpcode { op: i32 },
    #[error("opcode {op} is not allowed inside {within}")]
    NotAllowedInMulti { op: i32, within: &'static str },
    #[error("{count} unexpected bytes after the record")]
    TrailingBytes { count: usize },
}

/// Decode a `ConnectRequest` frame body; a missing trailing `readOnly` byte gives `read_only: None`.
pub fn decode_connect_request(body: &[u8]) -> Result<ConnectRequest, DecodeError> {
    let _ = body;
    todo!()
}

pub fn encode_connect_request(request: &ConnectRequest, out: &mut Vec<u8>) {
    let _ = (request, out);
    todo!()
}

pub fn decode_connect_response(body: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let _ = body;
    todo!()
}

pub fn encode_connect_response(response: &ConnectResponse, out: &mut Vec<u8>) {
    let _ = (response, out);
    todo!()
}

/// Decode a request frame body (`RequestHeader` + record). On `UnknownOpcode` the header is
/// still returned so the server can answer Unimplemented with the right xid.
pub fn decode_request(body: &[u8]) -> Result<(RequestHeader, Request), (Option<RequestHeader>, DecodeError)> {
    let _ = body;
    todo!()
}

pub fn encode_request(xid: i32, request: &Request, out: &mut Vec<u8>) {
    let _ = (xid, request, out);
    todo!()
}

/// Encode a reply: `ReplyHeader{xid, zxid, err}` then the body only on success.
pub fn encode_reply(xid: i32, zxid: i64, reply: &Reply, out: &mut Vec<u8>) {
    let _ = (xid, zxid, reply, out);
    todo!()
}

/// Client side: decode a reply frame body to the request sent with `op`.
pub fn decode_reply(op: OpCode, body: &[u8]) -> Result<(ReplyHeader, Reply), DecodeError> {
    let _ = (op, body);
    todo!()
}

/// Encode a watch notification: `ReplyHeader{-1, zxid, 0}` + `WatcherEvent`.
pub fn encode_notification(zxid: i64, event: &WatcherEvent, out: &mut Vec<u8>) {
    let _ = (zxid, event, out);
    todo!()
}
