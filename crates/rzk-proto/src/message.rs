//! Typed requests and responses: one enum each, so a header/body mismatch cannot be written.

use crate::codes::{ErrorCode, OpCode};
use crate::records::*;

/// A decoded client request (the body after the `RequestHeader`). The variant fixes the opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    GetChildren2(PathWatchRequest),
    Check(CheckVersionRequest),
    /// Only create/create2/createContainer/createTtl/delete/setData/check inside.
    Multi(Vec<Request>),
    Reconfig(ReconfigRequest),
    CheckWatches(RemoveWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    DeleteContainer(PathRequest),
    /// Only getChildren/getData inside.
    MultiRead(Vec<Request>),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    /// SASL token; rzk does not serve SASL and answers Unimplemented.
    Sasl(Vec<u8>),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    SetWatches2(SetWatches),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    /// The opcode this request is sent with.
    pub fn op(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// True for requests that change the replicated state and so go through the log.
    /// (closeSession also goes through the log but is handled by the server.)
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::DeleteContainer(_)
                | Request::Reconfig(_)
        )
    }
}

/// A successful reply body. Errors are `Err(ErrorCode)` next to it and have no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, setWatches, removeWatches, checkWatches, ping, closeSession, auth.
    Empty,
    /// create (1).
    Create {
        path: String,
    },
    /// create2, createContainer, createTTL.
    Create2 {
        path: String,
        stat: Stat,
    },
    /// exists, setData, setACL, check.
    Stat(Stat),
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    GetChildren2 {
        children: Vec<String>,
        stat: Stat,
    },
    Sync {
        path: String,
    },
    /// multi and multiRead: one result per op.
    Multi(Vec<MultiResult>),
    GetEphemerals {
        ephemerals: Vec<String>,
    },
    AllChildrenNumber {
        total: i32,
    },
    /// addWatch answers `ErrorResponse{0}`: a 4-byte body.
    ErrorBody {
        err: i32,
    },
    WhoAmI {
        clients: Vec<ClientInfo>,
    },
}

/// One op's result inside a multi/multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Header type 1, `CreateResponse`.
    Create { path: String },
    /// Header type 15, `Create2Response`.
    Create2 { path: String, stat: Stat },
    /// Header type 2, no body.
    Delete,
    /// Header type 5, `SetDataResponse`.
    SetData { stat: Stat },
    /// Header type 13, no body.
    Check,
    /// Header type 8, `GetChildrenResponse`.
    GetChildren { children: Vec<String> },
    /// Header type 4, `GetDataResponse`.
    GetData { data: Option<Vec<u8>>, stat: Stat },
    /// Header type -1, `ErrorResponse{err}`; err 0 marks ops before the failing one.
    Error { err: i32 },
}

/// A reply to one request, as the server holds it before encoding.
pub type Reply = Result<Response, ErrorCode>;
