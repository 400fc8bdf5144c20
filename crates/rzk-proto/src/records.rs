//! Jute records of `zookeeper.jute`, as plain Rust values. Field order is wire order.
//! Optional jute values (`buffer`/`ustring`/`vector` with length -1) are `Option`s where a
//! client can tell null from empty (znode data); elsewhere null decodes as empty.

/// `org.apache.zookeeper.data.Id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

/// `org.apache.zookeeper.data.ACL`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

/// `org.apache.zookeeper.data.Stat`, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// The first packet of a connection. `read_only` is `None` when an old client left the byte out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

/// The server's answer to a `ConnectRequest`. `read_only` is written only when `Some`
/// (echo the client: an old client that did not send it must not receive it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestHeader {
    pub xid: i32,
    /// Raw opcode: kept as an integer so an unknown opcode can still be answered.
    pub op: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    /// 0 for success, else an `ErrorCode` value.
    pub err: i32,
}

/// `WatcherEvent`: the body of a notification (xid -1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

/// create (1), create2 (15) and createContainer (19) share this record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
}

/// createTTL (21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTtlRequest {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRequest {
    pub path: String,
    pub version: i32,
}

/// exists (3), getData (4), getChildren (8), getChildren2 (12): a path and a watch flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathWatchRequest {
    pub path: String,
    pub watch: bool,
}

/// getACL (6), sync (9), getEphemerals (103), getAllChildrenNumber (104), deleteContainer (20).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathRequest {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetDataRequest {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetAclRequest {
    pub path: String,
    pub acl: Vec<Acl>,
    pub version: i32,
}

/// check (13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckVersionRequest {
    pub path: String,
    pub version: i32,
}

/// reconfig (16). rzk answers it with ReconfigDisabled (through the log, as a failed write) but
/// must decode it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconfigRequest {
    pub joining_servers: Option<String>,
    pub leaving_servers: Option<String>,
    pub new_members: Option<String>,
    pub cur_config_id: i64,
}

/// checkWatches (17) and removeWatches (18). `watcher_type` is a `WatcherType` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoveWatchesRequest {
    pub path: String,
    pub watcher_type: i32,
}

/// addWatch (106). `mode` is an `AddWatchMode` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddWatchRequest {
    pub path: String,
    pub mode: i32,
}

/// auth (100), sent with xid -4.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthPacket {
    pub auth_type: i32,
    pub scheme: String,
    pub auth: Vec<u8>,
}

/// setWatches (101) and setWatches2 (105); the two persistent lists are empty for setWatches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data_watches: Vec<String>,
    pub exist_watches: Vec<String>,
    pub child_watches: Vec<String>,
    pub persistent_watches: Vec<String>,
    pub persistent_recursive_watches: Vec<String>,
}

/// whoAmI (107) answer element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    pub auth_scheme: String,
    pub user: String,
}

/// `MultiHeader`: frames each op inside multi/multiRead requests and each result inside their
/// replies. A header with `done == true` (sent as `{-1, true, -1}`) ends the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MultiHeader {
    /// The op's opcode, or -1 for an error result and for the terminator.
    pub op: i32,
    pub done: bool,
    /// -1 in requests; 0 or the op's error code in replies.
    pub err: i32,
}

impl MultiHeader {
    /// The header that ends every multi request and reply.
    pub const TERMINATOR: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
}
