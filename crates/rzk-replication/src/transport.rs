//! Peer transport on the quorum port.
//!
//! # Frames
//! ```text
//! frame  = u32 BE length of the rest | u32 BE header length | header (JSON) | body (raw bytes)
//! ```
//! The header is a small JSON value (votes, log ids, sequence numbers); bulk bytes never go
//! through JSON: an append carries its entries in the body as `u64 BE index | u32 BE length |
//! entry` (the entry encoded as in the WAL, see `log_wal::encode_entry`), a snapshot is a header
//! frame followed by body-only chunk frames of at most [`SNAPSHOT_CHUNK_BYTES`].
//!
//! # Connections
//! - Raft RPCs: one connection per (local replication stream, peer); request/response, answered
//!   in order. Errors are reported to openraft as "unreachable" (it backs off and retries) and the
//!   connection is dropped, so the next RPC dials afresh.
//! - Forwarding: a member that is not the leader opens one more connection to the leader and
//!   starts it with [`PeerRequest::Forward`]. From then on it carries [`ForwardRequest`]s one way
//!   and [`ForwardReply`]s the other, pipelined: the leader hands each proposal to openraft in
//!   arrival order without waiting for the previous one to commit, and replies (by sequence
//!   number) as they commit. See `forward.rs` for the member's side.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2, ReadPolicy, Snapshot};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::log_wal::{decode_entry, encode_entry, WAL_INDEX_OFFSET};
use crate::raft_types::{Entry, LogId, Payload, ReplyTo, Rzk, SnapshotMeta, Vote};
use crate::state_machine::SnapshotData;
use crate::{Node, ProposeError};

/// Largest peer frame accepted. Snapshots travel in chunks, so this only bounds one append batch.
pub const PEER_FRAME_BYTES_MAX: u32 = 1 << 30;

/// Snapshot bytes per chunk frame.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// How long a peer may take to accept a connection.
pub(crate) const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Initial buffer for a received snapshot, whatever size the sender announces.
const SNAPSHOT_PREALLOC_BYTES_MAX: u64 = 64 << 20;

// ------------------------------------------------------------------------------------------------
// Frames
// ------------------------------------------------------------------------------------------------

fn too_big(len: usize) -> std::io::Error {
    std::io::Error::other(format!(
        "peer frame of {len} bytes is above the limit of {PEER_FRAME_BYTES_MAX}"
    ))
}

/// Write one frame (not flushed): `header` as JSON, then the `body` parts back to back.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin, H: Serialize>(
    conn: &mut W,
    header: &H,
    body: &[&[u8]],
) -> std::io::Result<()> {
    let header = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    let len = 4 + header.len() + body.iter().map(|part| part.len()).sum::<usize>();
    let len32 = u32::try_from(len)
        .ok()
        .filter(|len| *len <= PEER_FRAME_BYTES_MAX)
        .ok_or_else(|| too_big(len))?;
    conn.write_all(&len32.to_be_bytes()).await?;
    conn.write_all(&(header.len() as u32).to_be_bytes()).await?;
    conn.write_all(&header).await?;
    for part in body {
        conn.write_all(part).await?;
    }
    Ok(())
}

/// One frame as (header JSON, body). `Ok(None)` when the other side closed cleanly between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    conn: &mut R,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match conn.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if !(4..=PEER_FRAME_BYTES_MAX).contains(&len) {
        return Err(std::io::Error::other(format!(
            "peer frame length {len} is outside [4, {PEER_FRAME_BYTES_MAX}]"
        )));
    }
    let mut header_len = [0u8; 4];
    conn.read_exact(&mut header_len).await?;
    let header_len = u32::from_be_bytes(header_len);
    if header_len > len - 4 {
        return Err(std::io::Error::other(format!(
            "peer frame header of {header_len} bytes runs past its frame of {len}"
        )));
    }
    let mut header = vec![0; header_len as usize];
    conn.read_exact(&mut header).await?;
    let mut body = vec![0; (len - 4 - header_len) as usize];
    conn.read_exact(&mut body).await?;
    Ok(Some((header, body)))
}

pub(crate) fn decode_header<T: for<'de> Deserialize<'de>>(header: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(header).map_err(std::io::Error::other)
}

fn encode_entries(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    for entry in entries {
        let bytes = encode_entry(entry)?;
        body.extend_from_slice(&entry.log_id.index.to_be_bytes());
        body.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        body.extend_from_slice(&bytes);
    }
    Ok(body)
}

fn decode_entries(mut body: &[u8], count: u32) -> std::io::Result<Vec<Entry>> {
    let short = || std::io::Error::other("append body shorter than its entries");
    let mut entries = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        if body.len() < 12 {
            return Err(short());
        }
        let index = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
        let bytes = body.get(12..12 + len).ok_or_else(short)?;
        entries.push(decode_entry(index + WAL_INDEX_OFFSET, bytes)?);
        body = &body[12 + len..];
    }
    if !body.is_empty() {
        return Err(std::io::Error::other("append body longer than its entries"));
    }
    Ok(entries)
}

/// Send `data` as body-only chunk frames.
async fn write_chunks<W: AsyncWrite + Unpin>(conn: &mut W, data: &[u8]) -> std::io::Result<()> {
    for chunk in data.chunks(SNAPSHOT_CHUNK_BYTES) {
        write_frame(conn, &(), &[chunk]).await?;
    }
    Ok(())
}

/// Receive `bytes` bytes of chunk frames.
async fn read_chunks<R: AsyncRead + Unpin>(conn: &mut R, bytes: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(bytes.min(SNAPSHOT_PREALLOC_BYTES_MAX) as usize);
    while (data.len() as u64) < bytes {
        let Some((_, chunk)) = read_frame(conn).await? else {
            return Err(std::io::Error::other(format!(
                "snapshot ended after {} of {bytes} bytes",
                data.len()
            )));
        };
        if chunk.is_empty() || data.len() as u64 + chunk.len() as u64 > bytes {
            return Err(std::io::Error::other(
                "snapshot chunk does not fit its size",
            ));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

// ------------------------------------------------------------------------------------------------
// Messages
// ------------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
pub(crate) enum PeerRequest {
    /// The entries follow in the body.
    Append {
        vote: Vote,
        prev_log_id: Option<LogId>,
        leader_commit: Option<LogId>,
        entries: u32,
        /// The sender's quorum answered within the sync window. openraft keeps a leader that
        /// lost its quorum sending heartbeats; a follower must not count those as a live
        /// leader, or two members of five (a cut-off leader and a follower) would keep serving.
        #[serde(default = "quorum_default")]
        leader_has_quorum: bool,
    },
    Vote(VoteRequest<Rzk>),
    PreVote(VoteRequest<Rzk>),
    /// `bytes` of snapshot data follow in chunk frames.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        bytes: u64,
    },
    /// Turns this connection into member `from`'s forwarding stream.
    Forward {
        from: u64,
    },
}

#[derive(Serialize, Deserialize)]
enum PeerResponse {
    Append(AppendEntriesResponse<Rzk>),
    Vote(VoteResponse<Rzk>),
    Snapshot(SnapshotResponse<Rzk>),
    /// The peer's Raft could not handle the request (e.g. it is shutting down).
    Failed(String),
}

/// Member → leader on a forwarding stream.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ForwardRequest {
    /// Propose the body; reply with its index once committed and applied on the leader.
    Propose { seq: u64 },
    /// Reply with the leader's commit index once its leadership is confirmed (ReadIndex).
    ReadIndex { seq: u64 },
    /// Sessions the member's clients touched since its last report. No reply.
    Touches { session_ids: Vec<i64> },
}

/// Leader → member on a forwarding stream.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ForwardReply {
    Done { seq: u64, index: u64 },
    Failed { seq: u64, error: WireError },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub(crate) enum WireError {
    NoLeader,
    Storage,
    ShuttingDown,
}

impl WireError {
    fn from_propose(e: &ProposeError) -> WireError {
        match e {
            ProposeError::NoLeader => WireError::NoLeader,
            ProposeError::Storage(_) => WireError::Storage,
            ProposeError::ShuttingDown => WireError::ShuttingDown,
        }
    }

    pub(crate) fn into_propose(self, leader: u64) -> ProposeError {
        match self {
            // A leader shutting down is, for the member, a leader going away.
            WireError::NoLeader | WireError::ShuttingDown => ProposeError::NoLeader,
            WireError::Storage => ProposeError::Storage(format!(
                "the leader (server.{leader}) could not make the entry durable; see its log"
            )),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Serving peers
// ------------------------------------------------------------------------------------------------

/// Accept peers on `listener` and hand their RPCs to the node's Raft, until the returned set is
/// dropped.
pub(crate) fn serve(listener: TcpListener, node: Arc<Node>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a peer connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let node = node.clone();
            connections.spawn(async move {
                if let Err(e) = serve_connection(stream, node).await {
                    tracing::debug!(%peer, "peer connection ended: {e}");
                }
            });
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
    });
    tasks
}

/// Serves one peer connection; when it carried a leader's appends and then ends (a killed
/// leader's sockets are closed by its kernel at once), tells the node, which may then elect early.
async fn serve_connection(stream: TcpStream, node: Arc<Node>) -> std::io::Result<()> {
    let mut appends_from = None;
    let result = serve_requests(stream, &node, &mut appends_from).await;
    if let Some(leader) = appends_from {
        node.leader_connection_closed(leader);
    }
    result
}

async fn serve_requests(
    stream: TcpStream,
    node: &Arc<Node>,
    appends_from: &mut Option<u64>,
) -> std::io::Result<()> {
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut writer = BufWriter::new(writer);
    while let Some((header, body)) = read_frame(&mut reader).await? {
        let request: PeerRequest = decode_header(&header)?;
        let raft = &node.raft;
        let response = match request {
            PeerRequest::Append {
                vote,
                prev_log_id,
                leader_commit,
                entries,
                leader_has_quorum,
            } => {
                let leader = vote.leader_id.node_id;
                let rpc = AppendEntriesRequest {
                    vote,
                    prev_log_id,
                    entries: decode_entries(&body, entries)?,
                    leader_commit,
                };
                let response = raft.append_entries(rpc).await;
                if let Ok(r) = &response {
                    if !matches!(r, AppendEntriesResponse::HigherVote(_)) {
                        if leader_has_quorum {
                            node.heard_from_leader(leader);
                        }
                        *appends_from = Some(leader);
                    }
                }
                response
                    .map(PeerResponse::Append)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::Vote(rpc) => raft
                .vote(rpc)
                .await
                .map(PeerResponse::Vote)
                .map_err(|e| e.to_string()),
            PeerRequest::PreVote(rpc) => raft
                .pre_vote(rpc)
                .await
                .map(PeerResponse::Vote)
                .map_err(|e| e.to_string()),
            PeerRequest::Snapshot { vote, meta, bytes } => {
                let data = read_chunks(&mut reader, bytes).await?;
                let leader = vote.leader_id.node_id;
                let response = raft
                    .install_full_snapshot(
                        vote,
                        Snapshot {
                            meta,
                            snapshot: data,
                        },
                    )
                    .await;
                if response.is_ok() {
                    node.heard_from_leader(leader);
                }
                response
                    .map(PeerResponse::Snapshot)
                    .map_err(|e| e.to_string())
            }
            PeerRequest::Forward { from } => {
                drop(header);
                return serve_forwarded(reader, writer, node.clone(), from).await;
            }
        };
        write_frame(
            &mut writer,
            &response.unwrap_or_else(PeerResponse::Failed),
            &[],
        )
        .await?;
        writer.flush().await?;
    }
    Ok(())
}

/// The leader's side of a member's forwarding stream. Proposals go to openraft in arrival order
/// (each `client_write_ff` only waits for room in openraft's queue), replies go back as entries
/// commit, so the stream is pipelined.
async fn serve_forwarded<R, W>(
    mut reader: R,
    mut writer: W,
    node: Arc<Node>,
    from: u64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tracing::debug!(member = from, "forwarding stream opened");
    let (reply_tx, mut reply_rx) = tokio::sync::mpsc::unbounded_channel::<ForwardReply>();
    let mut replies = tokio::spawn(async move {
        while let Some(reply) = reply_rx.recv().await {
            write_frame(&mut writer, &reply, &[]).await?;
            while let Ok(reply) = reply_rx.try_recv() {
                write_frame(&mut writer, &reply, &[]).await?;
            }
            writer.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let result = async {
        loop {
            let frame = tokio::select! {
                frame = read_frame(&mut reader) => frame?,
                ended = &mut replies => {
                    return match ended {
                        Ok(result) => result,
                        Err(e) => Err(std::io::Error::other(e)),
                    };
                }
            };
            let Some((header, body)) = frame else {
                return Ok(());
            };
            match decode_header::<ForwardRequest>(&header)? {
                ForwardRequest::Propose { seq } => {
                    let tx = reply_tx.clone();
                    let responder = ReplyTo::new(move |outcome| {
                        let result = crate::raft_types::write_outcome(outcome);
                        let _ = tx.send(match result {
                            Ok(index) => ForwardReply::Done { seq, index },
                            Err(e) => ForwardReply::Failed {
                                seq,
                                error: WireError::from_propose(&e),
                            },
                        });
                    });
                    if node
                        .raft
                        .client_write_ff(Payload(body), Some(responder))
                        .await
                        .is_err()
                    {
                        // The responder was dropped unanswered and replied ShuttingDown.
                        return Ok(());
                    }
                }
                ForwardRequest::ReadIndex { seq } => {
                    let tx = reply_tx.clone();
                    let node = node.clone();
                    tokio::spawn(async move {
                        let reply = match node.leader_read_index().await {
                            Ok(index) => ForwardReply::Done { seq, index },
                            Err(e) => ForwardReply::Failed {
                                seq,
                                error: WireError::from_propose(&e),
                            },
                        };
                        let _ = tx.send(reply);
                    });
                }
                ForwardRequest::Touches { session_ids } => {
                    if node.is_raft_leader() {
                        node.applier.sessions_touched(&session_ids);
                    }
                }
            }
        }
    }
    .await;
    replies.abort();
    tracing::debug!(member = from, "forwarding stream closed");
    result
}

impl Node {
    /// The leader's commit index once its leadership is confirmed by a quorum (ReadIndex).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, ProposeError> {
        match tokio::time::timeout(
            self.sync_window,
            self.raft.get_read_linearizer(ReadPolicy::ReadIndex),
        )
        .await
        {
            Ok(Ok(linearizer)) => Ok(linearizer.read_log_id().index()),
            Ok(Err(e)) => {
                tracing::debug!("read index refused: {e}");
                Err(ProposeError::NoLeader)
            }
            Err(_) => Err(ProposeError::NoLeader),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Calling peers (openraft's network)
// ------------------------------------------------------------------------------------------------

/// The network factory. It reaches this member's [`Node`] once that exists (the Raft instance
/// is built before it), to tell followers whether this leader still has its quorum.
#[derive(Clone, Default)]
pub(crate) struct TcpPeers {
    pub(crate) local: Arc<std::sync::OnceLock<std::sync::Weak<Node>>>,
    /// Reads the log reader found purged: the appends built from them end their stream.
    pub(crate) stale_reads: Arc<crate::stale_reads::StaleReads>,
}

impl TcpPeers {
    fn leader_has_quorum(&self) -> bool {
        self.local
            .get()
            .and_then(std::sync::Weak::upgrade)
            .is_none_or(|node| !node.is_leader_cut_off())
    }
}

fn quorum_default() -> bool {
    true
}

impl RaftNetworkFactory<Rzk> for TcpPeers {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            target,
            addr: node.addr.clone(),
            conn: None,
            peers: self.clone(),
        }
    }
}

type PeerConn = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    BufWriter<tokio::net::tcp::OwnedWriteHalf>,
);

pub(crate) struct TcpPeer {
    target: u64,
    addr: String,
    conn: Option<PeerConn>,
    peers: TcpPeers,
}

/// Dial a peer's quorum port.
pub(crate) async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(PEER_CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            std::io::Error::other(format!("connect took over {PEER_CONNECT_TIMEOUT:?}"))
        })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl TcpPeer {
    fn unreachable(&self, what: impl std::fmt::Display) -> Unreachable<Rzk> {
        Unreachable::new(&std::io::Error::other(format!(
            "peer {} at {}: {what}",
            self.target, self.addr
        )))
    }

    async fn call(
        &mut self,
        request: &PeerRequest,
        body: &[u8],
        snapshot: Option<&[u8]>,
        ttl: Duration,
    ) -> Result<PeerResponse, Unreachable<Rzk>> {
        let exchanged = tokio::time::timeout(ttl, self.exchange(request, body, snapshot)).await;
        let result = match exchanged {
            Ok(Ok(Some(response))) => Ok(response),
            Ok(Ok(None)) => Err(self.unreachable("closed the connection")),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Err(_) => Err(self.unreachable(format_args!("no answer within {ttl:?}"))),
        };
        match result {
            Ok(PeerResponse::Failed(e)) => {
                self.conn = None;
                Err(self.unreachable(format_args!("could not handle the request: {e}")))
            }
            Ok(response) => Ok(response),
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    async fn exchange(
        &mut self,
        request: &PeerRequest,
        body: &[u8],
        snapshot: Option<&[u8]>,
    ) -> std::io::Result<Option<PeerResponse>> {
        if self.conn.is_none() {
            let (reader, writer) = connect(&self.addr).await?.into_split();
            self.conn = Some((BufReader::new(reader), BufWriter::new(writer)));
        }
        let (reader, writer) = self.conn.as_mut().expect("connected above");
        write_frame(writer, request, &[body]).await?;
        if let Some(data) = snapshot {
            write_chunks(writer, data).await?;
        }
        writer.flush().await?;
        match read_frame(reader).await? {
            None => Ok(None),
            Some((header, _)) => decode_header(&header).map(Some),
        }
    }
}

fn unexpected(peer: &TcpPeer) -> Unreachable<Rzk> {
    peer.unreachable("answered with a response of the wrong kind")
}

impl RaftNetworkV2<Rzk> for TcpPeer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Rzk>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<Rzk>, RPCError<Rzk>> {
        let next = rpc.prev_log_id.map_or(0, |prev| prev.index + 1);
        if rpc.entries.is_empty() && self.peers.stale_reads.take(next) {
            return Err(self
                .unreachable(format_args!(
                    "not sending an empty append from index {next}: its entries are purged, so this replication stream is restarted"
                ))
                .into());
        }
        let body = encode_entries(&rpc.entries).map_err(|e| self.unreachable(e))?;
        let request = PeerRequest::Append {
            vote: rpc.vote,
            prev_log_id: rpc.prev_log_id,
            leader_commit: rpc.leader_commit,
            entries: rpc.entries.len() as u32,
            leader_has_quorum: self.peers.leader_has_quorum(),
        };
        match self.call(&request, &body, None, option.hard_ttl()).await? {
            PeerResponse::Append(response) => Ok(response),
            _ => Err(unexpected(self).into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Rzk>,
        option: RPCOption,
    ) -> Result<VoteResponse<Rzk>, RPCError<Rzk>> {
        match self
            .call(&PeerRequest::Vote(rpc), &[], None, option.hard_ttl())
            .await?
        {
            PeerResponse::Vote(response) => Ok(response),
            _ => Err(unexpected(self).into()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Rzk>,
        option: RPCOption,
    ) -> Result<VoteResponse<Rzk>, RPCError<Rzk>> {
        match self
            .call(&PeerRequest::PreVote(rpc), &[], None, option.hard_ttl())
            .await?
        {
            PeerResponse::Vote(response) => Ok(response),
            _ => Err(unexpected(self).into()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::type_config::alias::SnapshotOf<Rzk, SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<Rzk>, StreamingError<Rzk>> {
        let data = snapshot.snapshot;
        let request = PeerRequest::Snapshot {
            vote,
            meta: snapshot.meta,
            bytes: data.len() as u64,
        };
        match self
            .call(&request, &[], Some(&data), option.hard_ttl())
            .await?
        {
            PeerResponse::Snapshot(response) => Ok(response),
            _ => Err(unexpected(self).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_and_snapshot_chunks_round_trip() {
        let leader_id = openraft::impls::leader_id_adv::LeaderId {
            term: 3,
            node_id: 2,
        };
        let entries: Vec<Entry> = (5..9u64)
            .map(|index| Entry {
                log_id: LogId::new(leader_id, index),
                payload: if index == 6 {
                    openraft::EntryPayload::Blank
                } else {
                    openraft::EntryPayload::Normal(Payload(vec![index as u8; index as usize * 100]))
                },
            })
            .collect();
        let body = encode_entries(&entries).unwrap();
        assert_eq!(decode_entries(&body, 4).unwrap(), entries);
        assert!(decode_entries(&body, 3).is_err());
        assert!(decode_entries(&body[..body.len() - 1], 4).is_err());

        let data: Vec<u8> = (0..(SNAPSHOT_CHUNK_BYTES * 5 / 2))
            .map(|i| i as u8)
            .collect();
        let mut wire = Vec::new();
        write_frame(&mut wire, &ForwardRequest::ReadIndex { seq: 9 }, &[b"xy"])
            .await
            .unwrap();
        write_chunks(&mut wire, &data).await.unwrap();
        let mut reader = wire.as_slice();
        let (header, body) = read_frame(&mut reader).await.unwrap().unwrap();
        assert!(matches!(
            decode_header::<ForwardRequest>(&header).unwrap(),
            ForwardRequest::ReadIndex { seq: 9 }
        ));
        assert_eq!(body, b"xy");
        assert_eq!(
            read_chunks(&mut reader, data.len() as u64).await.unwrap(),
            data
        );
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }
}
