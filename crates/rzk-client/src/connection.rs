//! The two tasks behind one session: a writer that stamps xids, writes frames and pings, and a
//! reader that matches replies to pending requests and forwards watch notifications.
//!
//! The pending table is shared. The writer registers a request *before* writing its bytes,
//! so a reply can never arrive for an xid the reader does not know. When either side fails,
//! the table is closed with a reason: every pending request fails with it, and a request
//! registered later fails at once instead of waiting for a reply that cannot come.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rzk_proto::codec::{decode_notification, decode_reply, decode_reply_header, encode_request};
use rzk_proto::codes::xid;
use rzk_proto::frame::{next_frame, LENGTH_PREFIX_BYTES};
use rzk_proto::{ErrorCode, EventType, KeeperState, OpCode, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::{ClientError, WatchedEvent};

/// Largest reply frame accepted, as the Java client's default `jute.maxbuffer` (0xfffff).
pub(crate) const REPLY_BYTES_MAX: u32 = rzk_proto::frame::JUTE_MAXBUFFER_DEFAULT;

pub(crate) type ReplySender = oneshot::Sender<Result<Response, ClientError>>;

/// One request on its way to the writer task.
pub(crate) struct Outgoing {
    pub request: Request,
    pub reply: ReplySender,
    /// Held until the reply arrives: this is what bounds requests in flight.
    pub permit: OwnedSemaphorePermit,
}

struct Pending {
    xid: i32,
    op: OpCode,
    reply: ReplySender,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct PendingTable {
    /// In xid order, which is the order the server answers in (auth excepted).
    entries: VecDeque<Pending>,
    /// Set once the connection is unusable; the reason every later request fails with.
    closed: Option<ClientError>,
    /// Set by `Client::close`, so the end of the connection is reported as `Closed`.
    closing: bool,
}

/// State both tasks and the `Client` handle share.
pub(crate) struct Shared {
    pub server: String,
    /// The connect string's chroot: requests are sent under it, event paths come back from it.
    pub chroot: Option<String>,
    table: Mutex<PendingTable>,
}

impl Shared {
    pub fn new(server: String, chroot: Option<String>) -> Self {
        Shared {
            server,
            chroot,
            table: Mutex::new(PendingTable::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, PendingTable> {
        // A panic while holding this lock leaves only plain data behind; keep going.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error a request gets when the connection is (or just went) away.
    pub fn lost_error(&self) -> ClientError {
        self.table()
            .closed
            .clone()
            .unwrap_or_else(|| ClientError::ConnectionLost {
                server: self.server.clone(),
                reason: "the connection tasks ended".to_owned(),
            })
    }

    pub fn mark_closing(&self) {
        self.table().closing = true;
    }

    /// Close the table with `error` and fail everything still pending with it.
    fn fail_all(&self, error: ClientError) {
        let drained: Vec<Pending> = {
            let mut table = self.table();
            if table.closed.is_none() {
                table.closed = Some(error.clone());
            }
            table.entries.drain(..).collect()
        };
        for pending in drained {
            // The caller may have given up waiting; nothing to tell it then.
            let _ = pending.reply.send(Err(error.clone()));
        }
    }

    fn lost(&self, reason: impl Into<String>) -> ClientError {
        ClientError::ConnectionLost {
            server: self.server.clone(),
            reason: reason.into(),
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            server: self.server.clone(),
            reason: reason.into(),
        }
    }
}

/// Read one frame body. `Ok(None)` is a clean end of stream between frames.
pub(crate) async fn read_frame(
    read: &mut (impl AsyncReadExt + Unpin),
    max: u32,
) -> Result<Option<Vec<u8>>, String> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    match read.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(format!("read failed: {error}")),
    }
    // With only the prefix in hand, next_frame validates the length and reports "incomplete".
    let length = match next_frame(&prefix, max) {
        Err(error) => return Err(error.to_string()),
        Ok(Some(_)) => 0,
        Ok(None) => u32::from_be_bytes(prefix) as usize,
    };
    let mut body = vec![0u8; length];
    read.read_exact(&mut body)
        .await
        .map_err(|error| format!("connection ended inside a {length}-byte frame: {error}"))?;
    Ok(Some(body))
}

/// The writer gathers requests already queued into one write up to about this many bytes: a
/// pipelining caller pays one system call for many requests, not one each.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// The reader's buffer: a burst of replies is read in one system call.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Writer task: xids in call order, a ping after `ping_interval` without sending. Requests
/// queued behind the first are written with it (up to [`WRITE_BATCH_BYTES`]).
pub(crate) async fn write_loop(
    mut write: OwnedWriteHalf,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    ping_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_xid: i32 = 1;
    let mut bytes = Vec::new();
    let mut last_send = Instant::now();
    // One timer for the whole connection, moved only when it fires: re-arming a timer for
    // every request costs more than the request's own work in a pipelining client.
    let ping_due = tokio::time::sleep_until(last_send + ping_interval);
    tokio::pin!(ping_due);
    loop {
        bytes.clear();
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = outgoing.recv() => {
                // `None`: the Client handle is gone.
                let Some(message) = message else { break };
                let pending = stage(&shared, message, &mut next_xid, &mut bytes);
                if pending > 1 {
                    // Pipelining: let the tasks that are about to send (those woken by the
                    // replies just read) queue their requests first, so that one write carries
                    // them all. A lone request (an interactive caller) goes out at once.
                    tokio::task::yield_now().await;
                }
                while bytes.len() < WRITE_BATCH_BYTES {
                    let Ok(message) = outgoing.try_recv() else { break };
                    stage(&shared, message, &mut next_xid, &mut bytes);
                }
                if bytes.is_empty() {
                    continue;
                }
            }
            () = &mut ping_due => {
                let due = last_send + ping_interval;
                if Instant::now() < due {
                    ping_due.as_mut().reset(due);
                    continue;
                }
                encode_request(xid::PING, &Request::Ping, &mut bytes);
            }
        }
        if let Err(error) = write.write_all(&bytes).await {
            shared.fail_all(shared.lost(format!("write failed: {error}")));
            break;
        }
        last_send = Instant::now();
        if ping_due.is_elapsed() {
            ping_due.as_mut().reset(last_send + ping_interval);
        }
    }
}

/// Register `message` in the pending table (or fail it at once when the connection is closed)
/// and append its bytes to `bytes`. Returns how many requests are pending now.
fn stage(shared: &Shared, message: Outgoing, next_xid: &mut i32, bytes: &mut Vec<u8>) -> usize {
    let request_xid = if matches!(message.request, Request::Auth(_)) {
        xid::AUTH
    } else {
        let this = *next_xid;
        // Stay positive: negative xids are special to ZooKeeper.
        *next_xid = if this == i32::MAX { 1 } else { this + 1 };
        this
    };
    let pending = {
        let mut table = shared.table();
        if let Some(error) = table.closed.clone() {
            drop(table);
            let _ = message.reply.send(Err(error));
            return 0;
        }
        table.entries.push_back(Pending {
            xid: request_xid,
            op: message.request.op(),
            reply: message.reply,
            _permit: message.permit,
        });
        table.entries.len()
    };
    encode_request(request_xid, &message.request, bytes);
    pending
}

/// Reader task: replies to pending requests, notifications to `events`. When it ends, it
/// fails what is pending, stops the writer and reports `Disconnected` (or `Closed`).
pub(crate) async fn read_loop(
    read: OwnedReadHalf,
    shared: Arc<Shared>,
    events: mpsc::Sender<WatchedEvent>,
    read_timeout: Duration,
    stop: Arc<watch::Sender<bool>>,
) {
    let mut stop_rx = stop.subscribe();
    let mut read = tokio::io::BufReader::with_capacity(READ_BUFFER_BYTES, read);
    // Silence is checked every quarter of `read_timeout` by one timer, not by a timer per
    // frame: a frame only marks the connection heard, and a check that finds it heard moves
    // `last_heard` to its own time, which is no earlier than the frame. So the connection is
    // declared lost after at least `read_timeout` of silence, and at most a quarter later.
    let check_every = read_timeout / 4;
    let mut last_heard = Instant::now();
    let mut heard = false;
    let check = tokio::time::sleep_until(last_heard + check_every);
    tokio::pin!(check);
    let error = 'frames: loop {
        // Pinned across the checks: a frame read half-way must not be dropped (the bytes
        // read so far would be lost), so only the stop signal or silence ends it.
        let next = read_frame(&mut read, REPLY_BYTES_MAX);
        tokio::pin!(next);
        let frame = loop {
            tokio::select! {
                biased;
                _ = stop_rx.changed() => break 'frames shared.lost("the client closed the connection"),
                () = &mut check => {
                    let now = Instant::now();
                    if heard {
                        (last_heard, heard) = (now, false);
                    } else if now.duration_since(last_heard) >= read_timeout {
                        break 'frames shared.lost(format!(
                            "nothing received for {} ms (2/3 of the session timeout)",
                            read_timeout.as_millis()
                        ));
                    }
                    check.as_mut().reset(now + check_every);
                }
                frame = &mut next => break frame,
            }
        };
        heard = true;
        let body = match frame {
            Err(reason) => break shared.lost(reason),
            Ok(None) => break shared.lost("the server closed the connection"),
            Ok(Some(body)) => body,
        };
        if let Err(error) = handle_frame(&shared, &events, &body).await {
            break error;
        }
    };
    let closing = shared.table().closing;
    shared.fail_all(error);
    let _ = stop.send(true);
    let state = if closing {
        KeeperState::Closed
    } else {
        KeeperState::Disconnected
    };
    // The receiver may be gone; then nobody is listening for state changes.
    let _ = events
        .send(WatchedEvent {
            event_type: EventType::None,
            state,
            path: None,
        })
        .await;
}

async fn handle_frame(
    shared: &Shared,
    events: &mpsc::Sender<WatchedEvent>,
    body: &[u8],
) -> Result<(), ClientError> {
    let header =
        decode_reply_header(body).map_err(|e| shared.protocol(format!("reply header: {e}")))?;
    match header.xid {
        xid::NOTIFICATION => {
            let (_, event) = decode_notification(body)
                .map_err(|e| shared.protocol(format!("watch notification: {e}")))?;
            let mut path = event.path;
            if let Some(chroot) = &shared.chroot {
                crate::chroot::strip(chroot, &mut path);
            }
            let event = WatchedEvent {
                event_type: EventType::from_i32(event.event_type).ok_or_else(|| {
                    shared.protocol(format!("unknown watch event type {}", event.event_type))
                })?,
                state: KeeperState::from_i32(event.state).ok_or_else(|| {
                    shared.protocol(format!("unknown keeper state {}", event.state))
                })?,
                path: Some(path),
            };
            // Sent before any later reply completes: events stay ahead of the replies that
            // followed them on the wire. A dropped receiver means nobody wants events.
            let _ = events.send(event).await;
            Ok(())
        }
        xid::PING => Ok(()),
        reply_xid => {
            let pending = {
                let mut table = shared.table();
                if reply_xid == xid::AUTH {
                    // Auth is answered on arrival, possibly ahead of earlier requests.
                    let position = table.entries.iter().position(|p| p.xid == xid::AUTH);
                    position.and_then(|index| table.entries.remove(index))
                } else {
                    match table.entries.front() {
                        Some(front) if front.xid == reply_xid => table.entries.pop_front(),
                        Some(front) => {
                            let expected = front.xid;
                            drop(table);
                            return Err(shared.protocol(format!(
                                "reply for xid {reply_xid} while xid {expected} was next: replies out of order"
                            )));
                        }
                        None => None,
                    }
                }
            };
            let Some(pending) = pending else {
                return Err(shared.protocol(format!(
                    "reply for xid {reply_xid}, but no such request is pending"
                )));
            };
            let result = match decode_reply(pending.op, body) {
                Ok((_, Ok(response))) => Ok(response),
                Ok((header, Err(_))) => Err(ClientError::Keeper(
                    ErrorCode::from_i32(header.err).unwrap_or(ErrorCode::SystemError),
                )),
                Err(error) => {
                    let error = shared.protocol(format!(
                        "reply to {:?} (xid {reply_xid}): {error}",
                        pending.op
                    ));
                    let _ = pending.reply.send(Err(error.clone()));
                    return Err(error);
                }
            };
            let _ = pending.reply.send(result);
            Ok(())
        }
    }
}
