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

/// What [`Response::bytes_estimate`] allows for the parts of a reply that do not grow with the
/// request: the frame length and `ReplyHeader` (20 bytes), a Stat (68), length prefixes and the
/// multi terminator; each multi result gets it again for its own header, Stat and prefixes (at
/// most 81 bytes). Larger than any of them, so that an estimate is never less than the bytes
/// the reply takes encoded.
pub const OVERHEAD_BYTES_ESTIMATE: usize = 128;

/// Bytes of a list of strings, each with its length prefix.
fn strings_bytes<'a>(strings: impl IntoIterator<Item = &'a String>) -> usize {
    strings.into_iter().map(|text| text.len() + 4).sum()
}

fn data_bytes(data: &Option<Vec<u8>>) -> usize {
    data.as_ref().map_or(0, Vec::len)
}

impl Response {
    /// About how many bytes the reply carrying this response takes, frame length and header
    /// included: everything that grows with the request (data, names, paths, ids) counted in
    /// full, plus [`OVERHEAD_BYTES_ESTIMATE`] once and once per multi result. Never less than
    /// the encoded size; cheap enough to compute for every reply (no encoding).
    pub fn bytes_estimate(&self) -> usize {
        let body = match self {
            Response::Create { path } | Response::Create2 { path, .. } => path.len(),
            Response::Sync { path } => path.len(),
            Response::GetData { data, .. } => data_bytes(data),
            Response::GetAcl { acl, .. } => acl
                .iter()
                .map(|acl| 12 + acl.id.scheme.len() + acl.id.id.len())
                .sum(),
            Response::GetChildren { children } | Response::GetChildren2 { children, .. } => {
                strings_bytes(children)
            }
            Response::GetEphemerals { ephemerals } => strings_bytes(ephemerals),
            Response::Multi(results) => results.iter().map(MultiResult::bytes_estimate).sum(),
            Response::WhoAmI { clients } => clients
                .iter()
                .map(|client| 8 + client.auth_scheme.len() + client.user.len())
                .sum(),
            Response::Empty
            | Response::Stat(_)
            | Response::AllChildrenNumber { .. }
            | Response::ErrorBody { .. } => 0,
        };
        OVERHEAD_BYTES_ESTIMATE + body
    }
}

impl MultiResult {
    /// What this result adds to its multi reply's [`Response::bytes_estimate`]: its path, names
    /// or data, plus [`OVERHEAD_BYTES_ESTIMATE`].
    pub fn bytes_estimate(&self) -> usize {
        let body = match self {
            MultiResult::Create { path } | MultiResult::Create2 { path, .. } => path.len(),
            MultiResult::GetChildren { children } => strings_bytes(children),
            MultiResult::GetData { data, .. } => data_bytes(data),
            MultiResult::Delete
            | MultiResult::SetData { .. }
            | MultiResult::Check
            | MultiResult::Error { .. } => 0,
        };
        OVERHEAD_BYTES_ESTIMATE + body
    }
}
