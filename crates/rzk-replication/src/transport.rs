//! Peer transport on the quorum port: one TCP connection per (local replication stream, peer),
//! request/response frames of `u32` big-endian length + JSON. Every peer RPC is answered on the
//! connection it came in on, in order.
//!
//! Errors are reported to openraft as "unreachable" (it then backs off and retries) and the
//! connection is dropped, so the next RPC dials afresh.

use std::future::Future;
use std::time::Duration;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2, Snapshot};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::raft_types::{Raft, Rzk, SnapshotMeta, Vote};
use crate::state_machine::SnapshotData;

/// Largest peer frame accepted (a whole snapshot travels in one frame).
pub const PEER_FRAME_BYTES_MAX: u32 = 1 << 30;

/// How long a peer may take to accept a connection.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, Deserialize)]
enum PeerRequest {
    Append(AppendEntriesRequest<Rzk>),
    Vote(VoteRequest<Rzk>),
    PreVote(VoteRequest<Rzk>),
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: SnapshotData,
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

async fn write_frame<T: Serialize>(
    conn: &mut BufStream<TcpStream>,
    value: &T,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= PEER_FRAME_BYTES_MAX)
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "peer frame of {} bytes is above the limit",
                bytes.len()
            ))
        })?;
    conn.write_all(&len.to_be_bytes()).await?;
    conn.write_all(&bytes).await?;
    conn.flush().await
}

/// `Ok(None)` when the other side closed cleanly between frames.
async fn read_frame<T: for<'de> Deserialize<'de>>(
    conn: &mut BufStream<TcpStream>,
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match conn.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > PEER_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "peer frame of {len} bytes is above the limit"
        )));
    }
    let mut bytes = vec![0; len as usize];
    conn.read_exact(&mut bytes).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Accept peers on `listener` and hand their RPCs to `raft`, until the returned set is dropped.
pub(crate) fn serve(listener: TcpListener, raft: Raft) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a peer connection: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let raft = raft.clone();
            connections.spawn(async move {
                if let Err(e) = serve_connection(BufStream::new(stream), raft).await {
                    tracing::debug!(%peer, "peer connection ended: {e}");
                }
            });
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
    });
    tasks
}

async fn serve_connection(mut conn: BufStream<TcpStream>, raft: Raft) -> std::io::Result<()> {
    while let Some(request) = read_frame::<PeerRequest>(&mut conn).await? {
        let response = match request {
            PeerRequest::Append(rpc) => raft
                .append_entries(rpc)
                .await
                .map(PeerResponse::Append)
                .map_err(|e| e.to_string()),
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
            PeerRequest::Snapshot { vote, meta, data } => raft
                .install_full_snapshot(
                    vote,
                    Snapshot {
                        meta,
                        snapshot: data,
                    },
                )
                .await
                .map(PeerResponse::Snapshot)
                .map_err(|e| e.to_string()),
        };
        write_frame(&mut conn, &response.unwrap_or_else(PeerResponse::Failed)).await?;
    }
    Ok(())
}

pub(crate) struct TcpPeers;

impl RaftNetworkFactory<Rzk> for TcpPeers {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            target,
            addr: node.addr.clone(),
            conn: None,
        }
    }
}

pub(crate) struct TcpPeer {
    target: u64,
    addr: String,
    conn: Option<BufStream<TcpStream>>,
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
        ttl: Duration,
    ) -> Result<PeerResponse, Unreachable<Rzk>> {
        let exchanged = tokio::time::timeout(ttl, self.exchange(request)).await;
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

    async fn exchange(&mut self, request: &PeerRequest) -> std::io::Result<Option<PeerResponse>> {
        if self.conn.is_none() {
            let stream = tokio::time::timeout(PEER_CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
                .await
                .map_err(|_| {
                    std::io::Error::other(format!("connect took over {PEER_CONNECT_TIMEOUT:?}"))
                })??;
            stream.set_nodelay(true)?;
            self.conn = Some(BufStream::new(stream));
        }
        let conn = self.conn.as_mut().expect("connected above");
        write_frame(conn, request).await?;
        read_frame(conn).await
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
        match self
            .call(&PeerRequest::Append(rpc), option.hard_ttl())
            .await?
        {
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
            .call(&PeerRequest::Vote(rpc), option.hard_ttl())
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
            .call(&PeerRequest::PreVote(rpc), option.hard_ttl())
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
        let request = PeerRequest::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        match self.call(&request, option.hard_ttl()).await? {
            PeerResponse::Snapshot(response) => Ok(response),
            _ => Err(unexpected(self).into()),
        }
    }
}
