//! Peer transport. A one-member group never contacts a peer; `NoPeers` answers every RPC with
//! "unreachable" so a misconfigured group fails loudly instead of hanging.

use std::future::Future;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2};

use crate::raft_types::{Rzk, Vote};
use crate::state_machine::SnapshotData;

pub(crate) struct NoPeers;

pub(crate) struct NoPeer {
    target: u64,
}

impl NoPeer {
    fn unreachable(&self) -> Unreachable<Rzk> {
        Unreachable::new(&std::io::Error::other(format!(
            "node {} is not reachable: this replica has no peer transport (standalone)",
            self.target
        )))
    }
}

impl RaftNetworkFactory<Rzk> for NoPeers {
    type Network = NoPeer;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> NoPeer {
        NoPeer { target }
    }
}

impl RaftNetworkV2<Rzk> for NoPeer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<Rzk>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Rzk>, RPCError<Rzk>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<Rzk>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Rzk>, RPCError<Rzk>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: openraft::type_config::alias::SnapshotOf<Rzk, SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Rzk>, StreamingError<Rzk>> {
        Err(StreamingError::Unreachable(self.unreachable()))
    }
}
