//! One client connection: four-letter word or handshake, then a reader loop (this task) and a
//! writer task. The reader decodes frames and hands requests to the core in order; the writer
//! drains the connection's outbound queue, batching everything queued into one socket write.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use rzk_proto::codec::{
    decode_connect_request, decode_request, encode_connect_response, encode_notification,
    encode_reply, DecodeError,
};
use rzk_proto::frame::{four_letter_word, next_frame};
use rzk_proto::{ConnectResponse, ErrorCode, Id, Request, Response};
use rzk_state_machine::{Entry, EntryOp, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::core::{Outbound, Queued, Received, OUTBOUND_MESSAGES_MAX};
use crate::session_id::password;
use crate::stats::ConnectionStats;
use crate::Shared;

/// Requests one connection may have in flight (read but not answered). Past it the reader
/// stops reading the socket, so a flooding client slows itself down and nobody else.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1_000;

/// The writer sends at most this many bytes per socket write when batching.
const WRITE_BATCH_BYTES_MAX: usize = 1 << 20;

/// Auth ids one connection may hold (its `ip` id included) and their total size. Every write's
/// log entry carries the connection's ids (the ACL checks run when it is applied), so without
/// a bound a client could make every write it sends megabytes long. An addauth past either
/// limit fails like a bad credential (AuthFailed, then the connection closes).
pub const AUTH_IDS_PER_CONNECTION_MAX: usize = 32;
/// See [`AUTH_IDS_PER_CONNECTION_MAX`].
pub const AUTH_ID_BYTES_PER_CONNECTION_MAX: usize = 8 * 1024;

/// A new connection must send its first request (a four-letter word or a whole
/// ConnectRequest) within this time, or it is closed: ZooKeeper's
/// `zookeeper.nio.sessionlessCnxnTimeout` (10 s). Without it, connections that never speak
/// hold a descriptor each (and a partial frame's buffer) until the server runs out.
pub const HANDSHAKE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// When a connection ends, its writer gets this long to send what is queued (a closeSession
/// reply); a writer still blocked then (the client reads nothing) is stopped, which closes the
/// socket and frees its queue.
const WRITER_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
enum ConnectionEnd {
    #[error("client closed the connection")]
    Eof,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad packet: {0}")]
    Protocol(String),
    #[error("stopped by the server: {0}")]
    Stopped(&'static str),
}

pub async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, connection_id: u64) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    let result = async {
        // A fresh connection's first 4 bytes are either a four-letter word or a length.
        let first_bytes = async {
            while buffer.len() < 4 {
                if reader.read_buf(&mut buffer).await? == 0 {
                    return Err(ConnectionEnd::Eof);
                }
            }
            Ok(())
        };
        tokio::time::timeout(HANDSHAKE_READ_TIMEOUT, first_bytes)
            .await
            .map_err(|_| ConnectionEnd::Stopped("no request within the handshake timeout"))??;
        let first = [buffer[0], buffer[1], buffer[2], buffer[3]];
        if let Some(command) = four_letter_word(first) {
            // Counted in before it runs (its own `cons` line shows it) and out once written.
            shared.count_packet(connection_id, true);
            let text = crate::four_letter::answer(&shared, command);
            writer.write_all(text.as_bytes()).await?;
            shared.count_packet(connection_id, false);
            let _ = writer.shutdown().await;
            return Ok(());
        }
        let (session_id, timeout_ms) = handshake(
            &mut reader,
            &mut writer,
            &mut buffer,
            &shared,
            peer,
            connection_id,
        )
        .await?;
        run_session(
            reader,
            writer,
            buffer,
            &shared,
            session_id,
            timeout_ms,
            connection_id,
        )
        .await
    }
    .await;
    match result {
        Ok(()) | Err(ConnectionEnd::Eof) => tracing::debug!(%peer, "connection closed"),
        Err(end) => tracing::debug!(%peer, %end, "connection ended"),
    }
}

async fn read_frame(
    reader: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
    max: u32,
) -> Result<BytesMut, ConnectionEnd> {
    loop {
        match next_frame(buffer, max) {
            Ok(Some((body, consumed))) => {
                let mut frame = buffer.split_to(consumed);
                frame.advance(body.start);
                return Ok(frame);
            }
            Ok(None) => {
                if reader.read_buf(buffer).await? == 0 {
                    return Err(ConnectionEnd::Eof);
                }
            }
            Err(error) => return Err(ConnectionEnd::Protocol(error.to_string())),
        }
    }
}

/// Answer the ConnectRequest: a new session through the log, or a reattach to a live one
/// (through the log too, see [`attach_session`]).
async fn handshake(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buffer: &mut BytesMut,
    shared: &Arc<Shared>,
    peer: SocketAddr,
    connection_id: u64,
) -> Result<(SessionId, i32), ConnectionEnd> {
    let frame = tokio::time::timeout(
        HANDSHAKE_READ_TIMEOUT,
        read_frame(reader, buffer, shared.options.jute_max_buffer),
    )
    .await
    .map_err(|_| ConnectionEnd::Stopped("no ConnectRequest within the handshake timeout"))??;
    shared.count_packet(connection_id, true);
    if !shared.serving() {
        // Like ZooKeeper without a quorum: close, so the client tries another server.
        return Err(ConnectionEnd::Stopped("this member has no quorum"));
    }
    let request = decode_connect_request(&frame)
        .map_err(|e| ConnectionEnd::Protocol(format!("connect request: {e}")))?;
    let last_zxid = shared.lock().sm.last_zxid();
    if request.last_zxid_seen > last_zxid {
        tracing::info!(%peer, client_zxid = request.last_zxid_seen, server_zxid = last_zxid,
            "refusing session: the client has seen a newer zxid than this server; it must try another server");
        return Err(ConnectionEnd::Stopped("client is ahead of this server"));
    }
    let timeout_ms = shared.options.negotiate_timeout(request.timeout_ms);
    let origin = shared.lock().origin(connection_id);
    let session_id = if request.session_id == 0 {
        create_session(shared, timeout_ms, origin).await?
    } else {
        // Proposed even when this member does not know the session yet: one just created
        // through another member may not be applied here, and the AttachSession entry comes
        // after its CreateSession in the log (ZooKeeper's follower asks its leader).
        let valid = request.password.as_slice() == password(request.session_id)
            && attach_session(shared, request.session_id, origin, timeout_ms).await?;
        if !valid {
            let expired = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                password: vec![0; 16],
                read_only: request.read_only.map(|_| false),
            };
            let mut out = Vec::new();
            encode_connect_response(&expired, &mut out);
            writer.write_all(&out).await?;
            shared.count_packet(connection_id, false);
            let _ = writer.shutdown().await;
            return Err(ConnectionEnd::Stopped("session expired or unknown"));
        }
        shared
            .lock()
            .expiry
            .touch(request.session_id, timeout_ms, shared.monotonic_ms());
        request.session_id
    };
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        password: password(session_id).to_vec(),
        read_only: request.read_only.map(|_| false),
    };
    let mut out = Vec::new();
    encode_connect_response(&response, &mut out);
    writer.write_all(&out).await?;
    shared.count_packet(connection_id, false);
    Ok((session_id, timeout_ms))
}

/// Proposes a handshake's log entry (CreateSession, AttachSession) and waits for it to be
/// applied here: true once it is. The whole wait, the hand-over to the leader included, is at
/// most the negotiated session timeout. The client has given up on the connection by then
/// (ZooKeeper's clients wait at most that long for a ConnectResponse), so a handshake whose
/// entry is held up (an ensemble that lost its quorum, a full forwarding stream) does not keep
/// its socket and task for longer. An entry applied later is harmless: a session nobody knows
/// expires, and a later reattach moves the session again.
async fn commit_within(shared: &Arc<Shared>, entry: &Entry, timeout_ms: i32) -> bool {
    let bound = std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let committed = tokio::time::timeout(bound, async {
        let proposal = shared.replica().propose(entry.encode()).await.ok()?;
        proposal.await.ok()?.ok()
    })
    .await;
    matches!(committed, Ok(Some(_)))
}

async fn create_session(
    shared: &Arc<Shared>,
    timeout_ms: i32,
    origin: u64,
) -> Result<SessionId, ConnectionEnd> {
    let session_id = shared.next_session_id();
    let entry = Entry {
        session_id,
        xid: 0,
        origin,
        time_ms: crate::wall_clock_ms(),
        op: EntryOp::CreateSession { timeout_ms },
    };
    if commit_within(shared, &entry, timeout_ms).await {
        Ok(session_id)
    } else {
        Err(ConnectionEnd::Stopped(
            "session creation was not committed within the session timeout",
        ))
    }
}

/// Attach a live session to this connection (`origin`) through the log: an AttachSession
/// entry, and the client is answered once it is applied here. Everything the session's older
/// connection (on this member or another) got into the log before it is then applied, so the
/// client's next read sees it, and whatever that connection gets into the log after it is
/// refused with SessionMoved: the session's order holds across the move, as ZooKeeper's
/// session revalidation keeps it. False when the session is not open once the entry is
/// applied (it expired, was closed, or never existed); an error when the entry could not be
/// committed within the session timeout or another connection took the session over while it
/// was (the client tries again).
async fn attach_session(
    shared: &Arc<Shared>,
    session_id: SessionId,
    origin: u64,
    timeout_ms: i32,
) -> Result<bool, ConnectionEnd> {
    let entry = Entry {
        session_id,
        xid: 0,
        origin,
        time_ms: crate::wall_clock_ms(),
        op: EntryOp::AttachSession,
    };
    if !commit_within(shared, &entry, timeout_ms).await {
        return Err(ConnectionEnd::Stopped(
            "session reattach was not committed within the session timeout",
        ));
    }
    match shared.lock().sm.session_owner(session_id) {
        None => Ok(false),
        Some(owner) if owner == origin => Ok(true),
        Some(_) => Err(ConnectionEnd::Stopped(
            "another connection reattached the session meanwhile",
        )),
    }
}

async fn run_session(
    mut reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    mut buffer: BytesMut,
    shared: &Arc<Shared>,
    session_id: SessionId,
    timeout_ms: i32,
    connection_id: u64,
) -> Result<(), ConnectionEnd> {
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_MESSAGES_MAX);
    let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX));
    let peer_ip = shared.connection_ip(connection_id);
    // Like ZooKeeper, every connection is authenticated as `ip:<address>` from the start.
    let auth: Vec<Id> = peer_ip
        .iter()
        .map(|ip| Id {
            scheme: "ip".to_string(),
            id: ip.clone(),
        })
        .collect();
    let attached = shared.lock().attach(
        session_id,
        connection_id,
        out_tx,
        queued_bytes.clone(),
        kill.clone(),
        auth.clone(),
    );
    if !attached {
        return Err(ConnectionEnd::Stopped(
            "the session moved to another connection, or ended, during the handshake",
        ));
    }
    shared.set_connection_session(connection_id, session_id);
    let stats = shared.connection_stats(connection_id);
    stats
        .session_timeout_ms
        .store(i64::from(timeout_ms), Ordering::Relaxed);
    let writer_task = tokio::spawn(write_loop(
        writer,
        out_rx,
        queued_bytes,
        permits.clone(),
        shared.clone(),
        stats.clone(),
    ));
    let mut session = SessionReader {
        shared: shared.clone(),
        stats: stats.clone(),
        session_id,
        connection_id,
        auth,
        peer_ip,
    };
    let result = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, &mut buffer, shared.options.jute_max_buffer) => frame,
            () = kill.notified() => break Err(ConnectionEnd::Stopped("replaced by a newer connection or too slow")),
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(end) => break Err(end),
        };
        // Replies give permits back, so a client that reads none of its replies leaves the
        // reader waiting here: it still stops when the connection is replaced or the writer
        // ends (the client went away, or the server stopped it).
        let permit = tokio::select! {
            permit = permits.acquire() => permit,
            () = kill.notified() => break Err(ConnectionEnd::Stopped("replaced by a newer connection or too slow")),
        };
        let Ok(permit) = permit else {
            break Err(ConnectionEnd::Stopped("the connection's writer ended"));
        };
        permit.forget();
        shared
            .stats
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .outstanding_requests
            .fetch_add(1, Ordering::Relaxed);
        if let Err(end) = session.handle(&frame).await {
            break Err(end);
        }
    };
    shared.lock().detach(session_id, connection_id);
    // Let the writer flush what is queued (a closeSession reply), bounded; a writer blocked on
    // a client that reads nothing is stopped, closing the socket.
    let mut writer_task = writer_task;
    if tokio::time::timeout(WRITER_FLUSH_TIMEOUT, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
        let _ = writer_task.await;
    }
    // Requests this connection read and never answered leave the server's outstanding count
    // with it (each holds a permit until its reply is written).
    let unanswered = REQUESTS_IN_FLIGHT_MAX.saturating_sub(permits.available_permits());
    shared
        .stats
        .outstanding_requests
        .fetch_sub(unanswered as i64, Ordering::Relaxed);
    result
}

struct SessionReader {
    shared: Arc<Shared>,
    stats: Arc<ConnectionStats>,
    session_id: SessionId,
    connection_id: u64,
    auth: Vec<Id>,
    peer_ip: Option<String>,
}

impl SessionReader {
    async fn handle(&mut self, frame: &[u8]) -> Result<(), ConnectionEnd> {
        let op = frame.get(4..8).map_or(-1, |bytes| {
            i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        });
        let received = Received {
            at: Instant::now(),
            op,
        };
        let now_ms = self.shared.monotonic_ms_at(received.at);
        if let (Some(xid), Some(op)) = (frame.get(0..4), frame.get(4..8)) {
            let be = |bytes: &[u8]| i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            self.stats.request(be(op), be(xid));
        }
        let (header, request) = match decode_request(frame) {
            Ok(decoded) => decoded,
            Err((Some(header), error)) => {
                // Like ZooKeeper: a request with a readable header but a body that cannot be
                // decoded gets an error reply and the connection stays.
                let code = match error {
                    DecodeError::UnknownOpcode { .. } => ErrorCode::Unimplemented,
                    DecodeError::InvalidUtf8 { .. } => ErrorCode::BadArguments,
                    _ => ErrorCode::MarshallingError,
                };
                tracing::debug!(%error, ?code, "undecodable request answered with an error");
                let mut core = self.shared.lock();
                core.touch(self.session_id, now_ms);
                core.push_ready(
                    self.session_id,
                    self.connection_id,
                    header.xid,
                    received,
                    Err(code),
                    None,
                );
                return Ok(());
            }
            Err((_, error)) => return Err(ConnectionEnd::Protocol(error.to_string())),
        };
        let xid = header.xid;
        if request.is_write() || request == Request::CloseSession {
            let op = if request == Request::CloseSession {
                EntryOp::CloseSession
            } else {
                // Lent to the entry for encoding and taken back: no copy of the ids per write.
                EntryOp::Write {
                    auth: std::mem::take(&mut self.auth),
                    request,
                }
            };
            let origin = {
                let mut core = self.shared.lock();
                core.touch(self.session_id, now_ms);
                if !core.push_write(self.session_id, self.connection_id, xid, received) {
                    return Err(ConnectionEnd::Stopped("replaced by a newer connection"));
                }
                core.origin(self.connection_id)
            };
            let entry = Entry {
                session_id: self.session_id,
                xid,
                origin,
                time_ms: crate::wall_clock_ms(),
                op,
            };
            let payload = entry.encode();
            if let EntryOp::Write { auth, .. } = entry.op {
                self.auth = auth;
            }
            self.shared
                .propose_for(self.session_id, self.connection_id, xid, payload)
                .await;
            return Ok(());
        }
        if let Request::Sync(path) = &request {
            if !self.shared.options.standalone {
                self.sync(xid, received, now_ms, path.path.clone());
                return Ok(());
            }
        }
        // Replies the server makes itself; auth and SASL replies carry zxid 0, as ZooKeeper's.
        let ready = match &request {
            Request::Auth(packet) => Some((self.add_auth(packet), Some(0))),
            // No SASL configured: ZooKeeper answers an empty token and the session goes on.
            Request::Sasl(_) => Some((Ok(Response::ErrorBody { err: 0 }), Some(0))),
            _ => None,
        };
        let auth_failed = matches!(ready, Some((Err(ErrorCode::AuthFailed), _)));
        let mut core = self.shared.lock();
        core.touch(self.session_id, now_ms);
        if matches!(request, Request::Auth(_)) {
            core.set_auth(self.session_id, self.connection_id, &self.auth);
        }
        match ready {
            Some((reply, zxid)) => core.push_ready(
                self.session_id,
                self.connection_id,
                xid,
                received,
                reply,
                zxid,
            ),
            None => core.push_read(
                self.session_id,
                self.connection_id,
                xid,
                received,
                request,
                self.auth.clone(),
            ),
        }
        if auth_failed {
            // ZooKeeper answers AuthFailed, then closes the connection.
            core.close_after_flush(self.session_id, self.connection_id);
        }
        Ok(())
    }

    /// `sync` in an ensemble: answer once this member has applied everything the leader had
    /// committed when the sync arrived, in the session's order.
    fn sync(&self, xid: i32, received: Received, now_ms: i64, path: String) {
        {
            let mut core = self.shared.lock();
            core.touch(self.session_id, now_ms);
            if !core.push_write(self.session_id, self.connection_id, xid, received) {
                return;
            }
        }
        let barrier = self.shared.replica().read_barrier();
        let (shared, session_id, connection_id) =
            (self.shared.clone(), self.session_id, self.connection_id);
        tokio::spawn(async move {
            let reply = match barrier.await {
                Ok(()) => Ok(Response::Sync { path }),
                Err(error) => {
                    tracing::debug!(%error, "sync barrier failed");
                    Err(ErrorCode::ConnectionLoss)
                }
            };
            shared
                .lock()
                .complete(session_id, connection_id, xid, reply);
        });
    }

    fn add_auth(&mut self, packet: &rzk_proto::AuthPacket) -> rzk_proto::Reply {
        let super_digest = self.shared.options.state_machine.super_digest.as_deref();
        let ids = rzk_state_machine::auth_ids_for(
            &packet.scheme,
            &packet.auth,
            self.peer_ip.as_deref(),
            super_digest,
        )?;
        let mut new: Vec<Id> = Vec::new();
        for id in ids {
            if !self.auth.contains(&id) && !new.contains(&id) {
                new.push(id);
            }
        }
        let count = self.auth.len() + new.len();
        let bytes: usize = self
            .auth
            .iter()
            .chain(&new)
            .map(|id| id.scheme.len() + id.id.len())
            .sum();
        if count > AUTH_IDS_PER_CONNECTION_MAX || bytes > AUTH_ID_BYTES_PER_CONNECTION_MAX {
            tracing::warn!(
                session_id = format_args!("0x{:x}", self.session_id),
                ids = count,
                bytes,
                ids_max = AUTH_IDS_PER_CONNECTION_MAX,
                bytes_max = AUTH_ID_BYTES_PER_CONNECTION_MAX,
                "addauth refused: the connection would hold more auth ids than allowed"
            );
            return Err(ErrorCode::AuthFailed);
        }
        // Added ids go before the connection's own `ip` id, the order whoAmI shows.
        let position = self
            .auth
            .iter()
            .position(|existing| existing.scheme == "ip")
            .unwrap_or(self.auth.len());
        self.auth.splice(position..position, new);
        Ok(Response::Empty)
    }
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Queued>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    stats: Arc<ConnectionStats>,
) {
    // However the writer ends (its client went away, a Close, or aborted after its flush
    // timeout), the reader must not wait for permits that only written replies give back.
    struct ClosePermitsOnExit(Arc<Semaphore>);
    impl Drop for ClosePermitsOnExit {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close_permits = ClosePermitsOnExit(permits.clone());
    let mut out = Vec::with_capacity(64 * 1024);
    while let Some(first) = queue.recv().await {
        let mut close = false;
        let mut next = Some(first);
        // Counted per batch: the shared counters and the semaphore (a lock) once per write.
        let (mut replies, mut packets) = (0usize, 0u64);
        // What these messages counted in the queue's bytes; taken off once they are written.
        let mut batch_bytes = 0usize;
        // The clocks are read once per batch: a reply's latency ends when its batch is written.
        let now_ms = crate::wall_clock_ms();
        let now = Instant::now();
        while let Some(Queued { message, bytes }) = next.take() {
            batch_bytes += bytes;
            match message {
                Outbound::Reply {
                    xid,
                    zxid,
                    reply,
                    received,
                } => {
                    encode_reply(xid, zxid, &reply, &mut out);
                    let latency = now.saturating_duration_since(received.at);
                    shared.stats.record_latency(latency);
                    stats.reply(zxid, latency, now_ms);
                    shared.metrics.record_request(received.op, latency);
                    replies += 1;
                    packets += 1;
                }
                Outbound::Notification(notification) => {
                    encode_notification(notification.zxid, &notification.event, &mut out);
                    stats.packet_out();
                    packets += 1;
                }
                Outbound::Close => {
                    close = true;
                    break;
                }
            }
            if out.len() < WRITE_BATCH_BYTES_MAX {
                next = queue.try_recv().ok();
            }
        }
        permits.add_permits(replies);
        shared
            .stats
            .packets_sent
            .fetch_add(packets, Ordering::Relaxed);
        shared
            .stats
            .outstanding_requests
            .fetch_sub(replies as i64, Ordering::Relaxed);
        if writer.write_all(&out).await.is_err() {
            return;
        }
        queued_bytes.fetch_sub(batch_bytes, Ordering::Relaxed);
        out.clear();
        if close {
            let _ = writer.shutdown().await;
            return;
        }
    }
}
