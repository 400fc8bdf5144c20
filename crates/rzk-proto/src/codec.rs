//! Encoding and decoding of whole packets. Encoders append a complete frame (4-byte length
//! prefix included) to `out`; decoders take one frame body (length prefix already removed).
//!
//! Decoders are lenient about bytes left after a record, as ZooKeeper is (its archives stop
//! reading once the record is complete, and some clients pad). Use [`crate::jute::Reader::finish`]
//! where strictness is wanted.

use crate::codes::{ErrorCode, OpCode};
use crate::jute::{
    write_frame, Decode, Encode, Reader, Writer, ACL_MIN_BYTES, LENGTH_BYTES, STAT_BYTES,
};
use crate::message::{MultiResult, Reply, Request, Response};
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
    Reader::new(body).read()
}

/// `read_only` is written only when `Some`, so an old-style request can be produced too.
pub fn encode_connect_request(request: &ConnectRequest, out: &mut Vec<u8>) {
    write_frame(out, |writer| request.encode(writer));
}

/// Client side: a missing trailing `readOnly` byte gives `read_only: None`.
pub fn decode_connect_response(body: &[u8]) -> Result<ConnectResponse, DecodeError> {
    Reader::new(body).read()
}

/// `read_only` is written only when `Some`: echo what the client sent.
pub fn encode_connect_response(response: &ConnectResponse, out: &mut Vec<u8>) {
    write_frame(out, |writer| response.encode(writer));
}

/// Decode a request frame body (`RequestHeader` + record).
///
/// Errors carry the header whenever it was read: on `UnknownOpcode` the server answers
/// Unimplemented with the right xid; on any other body error it may answer MarshallingError
/// or close. `None` means the header itself was truncated.
pub fn decode_request(
    body: &[u8],
) -> Result<(RequestHeader, Request), (Option<RequestHeader>, DecodeError)> {
    let mut reader = Reader::new(body);
    let header: RequestHeader = reader.read().map_err(|error| (None, error))?;
    let request =
        decode_request_body(header.op, &mut reader).map_err(|error| (Some(header), error))?;
    Ok((header, request))
}

/// Decode just the `RequestHeader` at the start of a request frame body.
pub fn decode_request_header(body: &[u8]) -> Result<RequestHeader, DecodeError> {
    Reader::new(body).read()
}

/// Decode the record that follows a `RequestHeader` with opcode `op`.
pub fn decode_request_body(op: i32, reader: &mut Reader<'_>) -> Result<Request, DecodeError> {
    let Some(code) = OpCode::from_i32(op) else {
        return Err(DecodeError::UnknownOpcode { op });
    };
    let request = match code {
        OpCode::Create => Request::Create(reader.read()?),
        OpCode::Create2 => Request::Create2(reader.read()?),
        OpCode::CreateContainer => Request::CreateContainer(reader.read()?),
        OpCode::CreateTtl => Request::CreateTtl(reader.read()?),
        OpCode::Delete => Request::Delete(reader.read()?),
        OpCode::Exists => Request::Exists(reader.read()?),
        OpCode::GetData => Request::GetData(reader.read()?),
        OpCode::SetData => Request::SetData(reader.read()?),
        OpCode::GetAcl => Request::GetAcl(reader.read()?),
        OpCode::SetAcl => Request::SetAcl(reader.read()?),
        OpCode::GetChildren => Request::GetChildren(reader.read()?),
        OpCode::Sync => Request::Sync(reader.read()?),
        OpCode::Ping => Request::Ping,
        OpCode::GetChildren2 => Request::GetChildren2(reader.read()?),
        OpCode::Check => Request::Check(reader.read()?),
        OpCode::Multi => Request::Multi(decode_multi_ops(reader, "multi", is_multi_write_op)?),
        OpCode::Reconfig => Request::Reconfig(reader.read()?),
        OpCode::CheckWatches => Request::CheckWatches(reader.read()?),
        OpCode::RemoveWatches => Request::RemoveWatches(reader.read()?),
        OpCode::DeleteContainer => Request::DeleteContainer(reader.read()?),
        OpCode::MultiRead => {
            Request::MultiRead(decode_multi_ops(reader, "multiRead", is_multi_read_op)?)
        }
        OpCode::Auth => Request::Auth(reader.read()?),
        OpCode::SetWatches => Request::SetWatches(SetWatches::decode_v1(reader)?),
        // GetSASLRequest{buffer token}.
        OpCode::Sasl => Request::Sasl(reader.read_buffer_or_empty()?),
        OpCode::GetEphemerals => Request::GetEphemerals(reader.read()?),
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(reader.read()?),
        OpCode::SetWatches2 => Request::SetWatches2(SetWatches::decode_v2(reader)?),
        OpCode::AddWatch => Request::AddWatch(reader.read()?),
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::CloseSession => Request::CloseSession,
        // Server-internal or txn-only codes: a client never sends them.
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            return Err(DecodeError::UnknownOpcode { op })
        }
    };
    Ok(request)
}

/// Ops a `multi` (14) may carry (`MultiOperationRecord`'s transaction kind).
fn is_multi_write_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::Check
    )
}

/// Ops a `multiRead` (22) may carry.
fn is_multi_read_op(op: OpCode) -> bool {
    matches!(op, OpCode::GetChildren | OpCode::GetData)
}

/// `MultiHeader` + op record, repeated until a header with `done`. Every header is 9 bytes,
/// so the op list can never grow past the input's size.
fn decode_multi_ops(
    reader: &mut Reader<'_>,
    within: &'static str,
    is_allowed: fn(OpCode) -> bool,
) -> Result<Vec<Request>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header: MultiHeader = reader.read()?;
        if header.done {
            return Ok(ops);
        }
        match OpCode::from_i32(header.op).filter(|op| is_allowed(*op)) {
            // Allowed ops are never multi themselves, so this recursion is one level deep.
            Some(op) => ops.push(decode_request_body(op.code(), reader)?),
            None => {
                return Err(DecodeError::NotAllowedInMulti {
                    op: header.op,
                    within,
                })
            }
        }
    }
}

/// Encode a request frame: `RequestHeader{xid, request.op()}` + record.
pub fn encode_request(xid: i32, request: &Request, out: &mut Vec<u8>) {
    write_frame(out, |writer| {
        RequestHeader {
            xid,
            op: request.op().code(),
        }
        .encode(writer);
        encode_request_body(request, writer);
    });
}

/// Encode the record of a request (no header). Ops that a multi does not allow are still
/// written with their own record (or none), and the peer rejects them.
pub fn encode_request_body(request: &Request, writer: &mut Writer<'_>) {
    match request {
        Request::Create(record) | Request::Create2(record) | Request::CreateContainer(record) => {
            record.encode(writer)
        }
        Request::CreateTtl(record) => record.encode(writer),
        Request::Delete(record) => record.encode(writer),
        Request::Exists(record)
        | Request::GetData(record)
        | Request::GetChildren(record)
        | Request::GetChildren2(record) => record.encode(writer),
        Request::SetData(record) => record.encode(writer),
        Request::GetAcl(record)
        | Request::Sync(record)
        | Request::DeleteContainer(record)
        | Request::GetEphemerals(record)
        | Request::GetAllChildrenNumber(record) => record.encode(writer),
        Request::SetAcl(record) => record.encode(writer),
        Request::Check(record) => record.encode(writer),
        Request::Multi(ops) | Request::MultiRead(ops) => {
            for op in ops {
                MultiHeader {
                    op: op.op().code(),
                    done: false,
                    err: -1,
                }
                .encode(writer);
                encode_request_body(op, writer);
            }
            MultiHeader::TERMINATOR.encode(writer);
        }
        Request::Reconfig(record) => record.encode(writer),
        Request::CheckWatches(record) | Request::RemoveWatches(record) => record.encode(writer),
        Request::Auth(record) => record.encode(writer),
        Request::SetWatches(record) => record.encode_v1(writer),
        Request::SetWatches2(record) => record.encode_v2(writer),
        Request::Sasl(token) => writer.write_bytes(token),
        Request::AddWatch(record) => record.encode(writer),
        Request::Ping | Request::WhoAmI | Request::CloseSession => {}
    }
}

/// Encode a reply: `ReplyHeader{xid, zxid, err}` then the body only on success.
pub fn encode_reply(xid: i32, zxid: i64, reply: &Reply, out: &mut Vec<u8>) {
    write_frame(out, |writer| {
        let err = match reply {
            Ok(_) => 0,
            Err(code) => code.code(),
        };
        ReplyHeader { xid, zxid, err }.encode(writer);
        if let Ok(response) = reply {
            encode_response_body(response, writer);
        }
    });
}

/// Encode the record of a successful reply (no header).
pub fn encode_response_body(response: &Response, writer: &mut Writer<'_>) {
    match response {
        Response::Empty => {}
        Response::Create { path } | Response::Sync { path } => writer.write_str(path),
        Response::Create2 { path, stat } => {
            writer.write_str(path);
            stat.encode(writer);
        }
        Response::Stat(stat) => stat.encode(writer),
        Response::GetData { data, stat } => {
            writer.write_buffer(data.as_deref());
            stat.encode(writer);
        }
        Response::GetAcl { acl, stat } => {
            writer.write_acl_list(acl);
            stat.encode(writer);
        }
        Response::GetChildren { children } => writer.write_string_list(children),
        Response::GetChildren2 { children, stat } => {
            writer.write_string_list(children);
            stat.encode(writer);
        }
        Response::Multi(results) => encode_multi_results(results, writer),
        Response::GetEphemerals { ephemerals } => writer.write_string_list(ephemerals),
        Response::AllChildrenNumber { total } => writer.write_i32(*total),
        Response::ErrorBody { err } => writer.write_i32(*err),
        Response::WhoAmI { clients } => {
            writer.write_vector(clients, |writer, client| client.encode(writer))
        }
    }
}

/// `MultiResponse`: header + result per op, then the terminator. A success header carries
/// err 0; an error result carries its code both in the header and in `ErrorResponse`.
fn encode_multi_results(results: &[MultiResult], writer: &mut Writer<'_>) {
    for result in results {
        let (op, err) = match result {
            MultiResult::Create { .. } => (OpCode::Create.code(), 0),
            MultiResult::Create2 { .. } => (OpCode::Create2.code(), 0),
            MultiResult::Delete => (OpCode::Delete.code(), 0),
            MultiResult::SetData { .. } => (OpCode::SetData.code(), 0),
            MultiResult::Check => (OpCode::Check.code(), 0),
            MultiResult::GetChildren { .. } => (OpCode::GetChildren.code(), 0),
            MultiResult::GetData { .. } => (OpCode::GetData.code(), 0),
            MultiResult::Error { err } => (OpCode::Error.code(), *err),
        };
        MultiHeader {
            op,
            done: false,
            err,
        }
        .encode(writer);
        match result {
            MultiResult::Create { path } => writer.write_str(path),
            MultiResult::Create2 { path, stat } => {
                writer.write_str(path);
                stat.encode(writer);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.encode(writer),
            MultiResult::GetChildren { children } => writer.write_string_list(children),
            MultiResult::GetData { data, stat } => {
                writer.write_buffer(data.as_deref());
                stat.encode(writer);
            }
            MultiResult::Error { err } => writer.write_i32(*err),
        }
    }
    MultiHeader::TERMINATOR.encode(writer);
}

/// Client side: decode a reply frame body to the request sent with `op`.
///
/// A non-zero `err` gives `Err(code)` with no body read. An `err` that is not a known
/// `ErrorCode` maps to `SystemError`; the raw value stays in the returned header.
/// Check the header first with [`decode_reply_header`]: a notification (xid -1) is not a
/// reply to any op and is decoded with [`decode_notification`].
pub fn decode_reply(op: OpCode, body: &[u8]) -> Result<(ReplyHeader, Reply), DecodeError> {
    let mut reader = Reader::new(body);
    let header: ReplyHeader = reader.read()?;
    if header.err != 0 {
        let code = ErrorCode::from_i32(header.err).unwrap_or(ErrorCode::SystemError);
        return Ok((header, Err(code)));
    }
    let response = decode_response_body(op, &mut reader)?;
    Ok((header, Ok(response)))
}

/// Decode just the `ReplyHeader` at the start of a reply or notification frame body.
pub fn decode_reply_header(body: &[u8]) -> Result<ReplyHeader, DecodeError> {
    Reader::new(body).read()
}

/// Decode the record of a successful reply to a request sent with `op`.
pub fn decode_response_body(op: OpCode, reader: &mut Reader<'_>) -> Result<Response, DecodeError> {
    let response = match op {
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl | OpCode::Check => {
            Response::Stat(reader.read()?)
        }
        OpCode::Create => Response::Create {
            path: reader.read_string()?,
        },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => Response::Create2 {
            path: reader.read_string()?,
            stat: reader.read()?,
        },
        // reconfig answers with the new config as a GetDataResponse.
        OpCode::GetData | OpCode::Reconfig => Response::GetData {
            data: reader.read_buffer()?,
            stat: reader.read()?,
        },
        OpCode::GetChildren => Response::GetChildren {
            children: reader.read_string_list()?,
        },
        OpCode::GetChildren2 => Response::GetChildren2 {
            children: reader.read_string_list()?,
            stat: reader.read()?,
        },
        OpCode::GetAcl => Response::GetAcl {
            acl: reader.read_acl_list()?,
            stat: reader.read()?,
        },
        OpCode::Sync => Response::Sync {
            path: reader.read_string()?,
        },
        OpCode::Multi | OpCode::MultiRead => Response::Multi(decode_multi_results(reader)?),
        OpCode::GetEphemerals => Response::GetEphemerals {
            ephemerals: reader.read_string_list()?,
        },
        OpCode::GetAllChildrenNumber => Response::AllChildrenNumber {
            total: reader.read_i32()?,
        },
        OpCode::AddWatch => Response::ErrorBody {
            err: reader.read_i32()?,
        },
        OpCode::WhoAmI => Response::WhoAmI {
            clients: reader.read_vector_or_empty(2 * LENGTH_BYTES, ClientInfo::decode)?,
        },
        OpCode::Notification
        | OpCode::Delete
        | OpCode::Ping
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::DeleteContainer
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::Sasl
        | OpCode::SetWatches2
        | OpCode::CreateSession
        | OpCode::CloseSession
        | OpCode::Error => Response::Empty,
    };
    Ok(response)
}

/// `MultiResponse`: results until a header with `done`. Every header is 9 bytes, so the
/// list can never grow past the input's size.
fn decode_multi_results(reader: &mut Reader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let header: MultiHeader = reader.read()?;
        if header.done {
            return Ok(results);
        }
        let result = match OpCode::from_i32(header.op) {
            Some(OpCode::Create) => MultiResult::Create {
                path: reader.read_string()?,
            },
            Some(OpCode::Create2) => MultiResult::Create2 {
                path: reader.read_string()?,
                stat: reader.read()?,
            },
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::SetData) => MultiResult::SetData {
                stat: reader.read()?,
            },
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::GetChildren) => MultiResult::GetChildren {
                children: reader.read_string_list()?,
            },
            Some(OpCode::GetData) => MultiResult::GetData {
                data: reader.read_buffer()?,
                stat: reader.read()?,
            },
            // The code in ErrorResponse is authoritative, as in ZooKeeper's client.
            Some(OpCode::Error) => MultiResult::Error {
                err: reader.read_i32()?,
            },
            _ => {
                return Err(DecodeError::NotAllowedInMulti {
                    op: header.op,
                    within: "multi reply",
                })
            }
        };
        results.push(result);
    }
}

/// Encode a watch notification: `ReplyHeader{-1, zxid, 0}` + `WatcherEvent`.
pub fn encode_notification(zxid: i64, event: &WatcherEvent, out: &mut Vec<u8>) {
    write_frame(out, |writer| {
        ReplyHeader {
            xid: crate::codes::xid::NOTIFICATION,
            zxid,
            err: 0,
        }
        .encode(writer);
        event.encode(writer);
    });
}

/// Client side: decode a notification frame body (`ReplyHeader` with xid -1 + `WatcherEvent`).
pub fn decode_notification(body: &[u8]) -> Result<(ReplyHeader, WatcherEvent), DecodeError> {
    let mut reader = Reader::new(body);
    let header = reader.read()?;
    let event = reader.read()?;
    Ok((header, event))
}

// The minimum sizes the vector readers rely on must match the records they describe.
const _: () = assert!(STAT_BYTES == 68);
const _: () = assert!(ACL_MIN_BYTES == 12);
