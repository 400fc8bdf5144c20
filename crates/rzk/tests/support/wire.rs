//! A tiny raw-socket ZooKeeper client for tests, over `rzk-proto`'s codec: blocking std `TcpStream`,
//! every read bounded by a deadline, every incoming frame kept in arrival order so tests can check
//! what came before what (watch events vs replies, ZK-COMPAT §1b "Guarantees").
//!
//! Declare it with `#[path = "support/wire.rs"] mod wire;` next to `mod support;`.
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rzk_proto::codec::{
    decode_connect_response, decode_notification, decode_reply_header, decode_response_body,
    encode_connect_request, encode_request,
};
use rzk_proto::frame::next_frame;
use rzk_proto::jute::Reader;
use rzk_proto::{
    ConnectRequest, ConnectResponse, OpCode, ReplyHeader, Request, Response, WatcherEvent,
};

/// How long one reply, event or close may take before the test fails. Generous for a loaded
/// 2-core machine; nothing waits this long when the server behaves.
pub const WAIT: Duration = Duration::from_secs(15);

/// Session timeout every test session asks for (within ZooKeeper's default [4 s, 40 s] clamp).
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// One frame as received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A watch notification (xid -1).
    Event { zxid: i64, event: WatcherEvent },
    /// Any other frame: a reply. `body` is what follows the `ReplyHeader`.
    Reply { header: ReplyHeader, body: Vec<u8> },
}

/// A reply to one request: its header, the decoded body (on err 0) and the body's raw length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub header: ReplyHeader,
    /// `Ok(response)` when err == 0 and the body decoded; `Err(err)` otherwise (raw err code).
    pub reply: Result<Response, i32>,
    /// Bytes after the ReplyHeader, as sent.
    pub body_len: usize,
    /// Watch events (header zxid, event) that arrived on this connection before this reply (and
    /// after the previous reply this client consumed).
    pub events_before: Vec<(i64, WatcherEvent)>,
}

impl Answer {
    pub fn err(&self) -> i32 {
        self.header.err
    }
}

/// What a connection did when we waited on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed (EOF) or reset the connection.
    Closed,
    /// The connection delivered a frame instead.
    Frame(Incoming),
}

/// A connected, handshaken (or not yet handshaken) raw client.
pub struct Wire {
    stream: TcpStream,
    buffer: Vec<u8>,
    next_xid: i32,
    /// Events (header zxid, event) received while waiting for replies and not yet taken.
    pub events: VecDeque<(i64, WatcherEvent)>,
    /// Every frame received, in order (for ordering assertions).
    pub log: Vec<Incoming>,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub negotiated_timeout_ms: i32,
    /// Highest zxid seen in a reply header.
    pub last_zxid: i64,
    /// How long [`Wire::try_reply`] waits for a reply ([`WAIT`] unless changed).
    pub reply_timeout: Duration,
}

/// `127.0.0.1:port`.
pub fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A bare TCP connection with read/write timeouts, nothing sent.
pub fn tcp(port: u16) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address(port), WAIT)
        .unwrap_or_else(|error| panic!("connect to 127.0.0.1:{port}: {error}"));
    stream.set_nodelay(true).expect("set_nodelay");
    stream
        .set_write_timeout(Some(WAIT))
        .expect("set_write_timeout");
    stream
}

/// A new-session ConnectRequest with the 16 zero bytes password modern clients send.
pub fn new_session_request() -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: SESSION_TIMEOUT_MS,
        session_id: 0,
        password: vec![0; 16],
        read_only: Some(false),
    }
}

/// A create of a persistent node readable and writable by anyone (`world:anyone`, all perms).
pub fn create_request(path: &str, data: Vec<u8>) -> Request {
    Request::Create(rzk_proto::CreateRequest {
        path: path.to_string(),
        data: Some(data),
        acl: vec![rzk_proto::Acl {
            perms: 31,
            id: rzk_proto::Id {
                scheme: "world".to_string(),
                id: "anyone".to_string(),
            },
        }],
        flags: 0,
    })
}

impl Wire {
    /// A new connection to `port` that reattaches `session`'s session (its id and password).
    /// Err when the connection closed instead of answering, or the answer did not decode.
    pub fn reattach(port: u16, session: &Wire) -> Result<(Wire, ConnectResponse), String> {
        let request = ConnectRequest {
            session_id: session.session_id,
            password: session.password.clone(),
            ..new_session_request()
        };
        let mut wire = Wire::unconnected(port);
        let response = wire.handshake(&request)?;
        Ok((wire, response))
    }

    /// Wraps a bare connection (no handshake yet).
    pub fn unconnected(port: u16) -> Wire {
        Wire {
            stream: tcp(port),
            buffer: Vec::new(),
            next_xid: 1,
            events: VecDeque::new(),
            log: Vec::new(),
            session_id: 0,
            password: Vec::new(),
            negotiated_timeout_ms: 0,
            last_zxid: 0,
            reply_timeout: WAIT,
        }
    }

    /// Opens a connection and a new session; panics if the handshake fails.
    pub fn connect(port: u16) -> Wire {
        let mut wire = Wire::unconnected(port);
        let response = wire
            .handshake(&new_session_request())
            .unwrap_or_else(|ending| panic!("handshake with 127.0.0.1:{port}: {ending}"));
        assert_ne!(
            response.session_id, 0,
            "new session refused by 127.0.0.1:{port}: {response:?}"
        );
        wire
    }

    /// Sends `request` as the handshake and reads the ConnectResponse (Err when the connection
    /// closed instead, or the response did not decode).
    pub fn handshake(&mut self, request: &ConnectRequest) -> Result<ConnectResponse, String> {
        let mut out = Vec::new();
        encode_connect_request(request, &mut out);
        self.send_raw(&out).map_err(|e| format!("send: {e}"))?;
        let frame = match self.read_frame(WAIT) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err("connection closed before a ConnectResponse".to_string()),
            Err(error) => return Err(format!("read ConnectResponse: {error}")),
        };
        let response =
            decode_connect_response(&frame).map_err(|e| format!("decode ConnectResponse: {e}"))?;
        self.session_id = response.session_id;
        self.password = response.password.clone();
        self.negotiated_timeout_ms = response.timeout_ms;
        Ok(response)
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Encodes and sends `request` with the next xid; returns the xid.
    pub fn send(&mut self, request: &Request) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_with_xid(xid, request);
        xid
    }

    /// Encodes and sends `request` with `xid` (-2 ping, -4 auth, -8 setWatches ...).
    pub fn send_with_xid(&mut self, xid: i32, request: &Request) {
        let mut out = Vec::new();
        encode_request(xid, request, &mut out);
        self.send_raw(&out)
            .unwrap_or_else(|error| panic!("send xid {xid} {:?}: {error}", request.op()));
    }

    /// Reads one frame body, waiting at most `timeout`. `Ok(None)` = the peer closed.
    /// A reset also counts as closed.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let frame = next_frame(&self.buffer, i32::MAX as u32)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
            if let Some((range, consumed)) = frame {
                let body = self.buffer[range].to_vec();
                self.buffer.drain(..consumed);
                return Ok(Some(body));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no complete frame within {timeout:?} ({} bytes buffered)",
                        self.buffer.len()
                    ),
                ));
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(count) => self.buffer.extend_from_slice(&chunk[..count]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(None)
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads the next frame after the handshake and classifies it; None when the peer closed.
    pub fn next_incoming(&mut self, timeout: Duration) -> io::Result<Option<Incoming>> {
        let Some(frame) = self.read_frame(timeout)? else {
            return Ok(None);
        };
        let header = decode_reply_header(&frame)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
        let incoming = if header.xid == -1 {
            let (header, event) = decode_notification(&frame)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
            Incoming::Event {
                zxid: header.zxid,
                event,
            }
        } else {
            Incoming::Reply {
                header,
                body: frame[16..].to_vec(),
            }
        };
        self.log.push(incoming.clone());
        Ok(Some(incoming))
    }

    /// Reads frames until the reply with `xid`, queueing events; decodes the body as the reply to `op`.
    /// Err (with what happened) if the connection closed, a different reply came, or time ran out.
    pub fn try_reply(&mut self, xid: i32, op: OpCode) -> Result<Answer, String> {
        let mut events_before = Vec::new();
        loop {
            match self.next_incoming(self.reply_timeout) {
                Ok(None) => {
                    return Err(format!(
                        "connection closed while waiting for the reply to xid {xid} ({op:?})"
                    ))
                }
                Err(error) => {
                    return Err(format!(
                        "waiting for the reply to xid {xid} ({op:?}): {error}"
                    ))
                }
                Ok(Some(Incoming::Event { zxid, event })) => {
                    events_before.push((zxid, event.clone()));
                    self.events.push_back((zxid, event));
                }
                Ok(Some(Incoming::Reply { header, body })) => {
                    if header.xid != xid {
                        return Err(format!(
                            "expected the reply to xid {xid} ({op:?}), got {header:?} with {} body bytes",
                            body.len()
                        ));
                    }
                    self.last_zxid = self.last_zxid.max(header.zxid);
                    let reply = if header.err != 0 {
                        Err(header.err)
                    } else {
                        let mut reader = Reader::new(&body);
                        match decode_response_body(op, &mut reader) {
                            Ok(response) => Ok(response),
                            Err(error) => {
                                return Err(format!(
                                    "reply to xid {xid} ({op:?}) did not decode: {error}; body {body:02x?}"
                                ))
                            }
                        }
                    };
                    return Ok(Answer {
                        header,
                        reply,
                        body_len: body.len(),
                        events_before,
                    });
                }
            }
        }
    }

    /// [`Wire::try_reply`], panicking on failure.
    pub fn reply(&mut self, xid: i32, op: OpCode) -> Answer {
        self.try_reply(xid, op)
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: &Request) -> Answer {
        let xid = self.send(request);
        self.reply(xid, request.op())
    }

    /// Sends `request` with a fixed xid (auth -4, setWatches -8) and waits for its reply.
    pub fn call_with_xid(&mut self, xid: i32, request: &Request) -> Answer {
        self.send_with_xid(xid, request);
        self.reply(xid, request.op())
    }

    /// Sends `request` and waits for its reply, or reports that the connection closed.
    pub fn try_call(&mut self, request: &Request) -> Result<Answer, String> {
        let xid = self.send(request);
        self.try_reply(xid, request.op())
    }

    /// A ping round trip: every event queued before the ping was processed arrives before its reply.
    /// Returns the events that came first. Err when the connection closed instead.
    pub fn ping(&mut self) -> Result<Vec<(i64, WatcherEvent)>, String> {
        let mut out = Vec::new();
        encode_request(-2, &Request::Ping, &mut out);
        if let Err(error) = self.send_raw(&out) {
            return Err(format!("send ping: {error}"));
        }
        self.try_reply(-2, OpCode::Ping)
            .map(|answer| answer.events_before)
    }

    /// Takes the queued events (received before replies and not taken yet).
    pub fn take_events(&mut self) -> Vec<(i64, WatcherEvent)> {
        self.events.drain(..).collect()
    }

    /// Whether the connection is closed: waits up to `timeout` for EOF/reset, returning the first
    /// frame instead if one arrives.
    pub fn ending(&mut self, timeout: Duration) -> Result<Ending, String> {
        match self.read_frame(timeout) {
            Ok(None) => Ok(Ending::Closed),
            Ok(Some(frame)) => Ok(Ending::Frame(Incoming::Reply {
                header: decode_reply_header(&frame).unwrap_or_default(),
                body: frame.get(16..).map(<[u8]>::to_vec).unwrap_or_default(),
            })),
            Err(error) => Err(format!("waiting for the connection to close: {error}")),
        }
    }

    /// Probes whether the connection still works: a ping answered means open; EOF/reset (or a
    /// failed write) means closed.
    pub fn is_open(&mut self) -> bool {
        self.ping().is_ok()
    }

    /// Closes our side without closeSession (a dropped connection: the session lives on).
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sends closeSession and waits for its reply, then for the close.
    pub fn close_session(&mut self) -> Answer {
        self.call(&Request::CloseSession)
    }

    /// The underlying stream, for abuse.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}
