//! Local reads (`FinalRequestProcessor`), watch registration, checkWatches/removeWatches and
//! setWatches. Reads never change the tree, only this member's watch table.

use rzk_proto::message::OVERHEAD_BYTES_ESTIMATE;
use rzk_proto::{
    AddWatchMode, ClientInfo, ErrorCode, EventType, Id, MultiResult, PathRequest, PathWatchRequest,
    RemoveWatchesRequest, Reply, Request, Response, SetWatches, WatcherType,
};

use crate::acl::{check_acl, mask_digest_passwords, PERM_ADMIN, PERM_READ};
use crate::tree::{child_names, descendant_count, Node};
use crate::watch::{CHILD, DATA, PERSISTENT, RECURSIVE};
use crate::{notification, Notification, SessionId, StateMachine};

/// Events fired by setWatches carry no zxid (`WatchedEvent` without one).
const NO_ZXID: i64 = -1;

/// The most bytes of reply one read may make this member build, counted by
/// [`Response::bytes_estimate`] (data, names and paths in full, plus a fixed allowance for the
/// header and for each multi result), which is never less than the encoded size.
///
/// Without it one small request could make the server build any amount: a 5 KB multiRead of
/// 300 getData on a 1 MiB znode is a 300 MB reply. ZooKeeper builds it (only its heap limits
/// it), but its clients refuse a reply longer than their own `jute.maxbuffer` (1 MiB by
/// default) and drop the connection, so such a reply serves nobody. A read past this is
/// refused with [`ReplyTooLarge`] and the server closes the connection, as the client would.
/// 64 MiB is the most one connection's reply queue holds (rzk-server's `OUTBOUND_BYTES_MAX`,
/// by the same estimate), so a larger reply could not be queued behind anything; it is 64
/// times a default client's `jute.maxbuffer`, room for clients that raised theirs.
pub const REPLY_BYTES_MAX: usize = 64 << 20;

/// A read whose reply would be larger than [`REPLY_BYTES_MAX`]: nothing is answered. Watches
/// the read registered before it stopped belong to the connection, which the server closes
/// (and so drops them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reply takes at least {bytes} bytes, more than the {limit} allowed")]
pub struct ReplyTooLarge {
    /// Bytes the reply took (as [`Response::bytes_estimate`] counts) when building stopped: a
    /// multiRead stops at the first result that takes it past the limit.
    pub bytes: usize,
    /// The limit it went past ([`REPLY_BYTES_MAX`]).
    pub limit: usize,
}

/// The bytes of a multiRead reply being built, which may not pass `limit`. Starts with the
/// reply's own allowance, so that it ends equal to the whole reply's
/// [`Response::bytes_estimate`].
struct ReplyBudget {
    bytes: usize,
    limit: usize,
}

impl ReplyBudget {
    fn new(limit: usize) -> ReplyBudget {
        ReplyBudget {
            bytes: OVERHEAD_BYTES_ESTIMATE,
            limit,
        }
    }

    /// Counts one more result; an error once the reply is past the limit.
    fn add(&mut self, result: &MultiResult) -> Result<(), ReplyTooLarge> {
        self.bytes = self.bytes.saturating_add(result.bytes_estimate());
        if self.bytes > self.limit {
            return Err(ReplyTooLarge {
                bytes: self.bytes,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

impl StateMachine {
    /// Serves a read whose reply may take at most `reply_bytes_max` bytes. A multiRead is
    /// bounded while it is built (each getData in it may add up to `jute.maxbuffer`); every
    /// other reply holds at most one node's data, one node's children or the session's
    /// ephemerals, which the tree bounds, so it is checked once built.
    pub(crate) fn serve_read(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        request: &Request,
        notifications: &mut Vec<Notification>,
        reply_bytes_max: usize,
    ) -> Result<Reply, ReplyTooLarge> {
        if let Request::MultiRead(ops) = request {
            return self.read_multi(session_id, auth, ops, reply_bytes_max);
        }
        let reply = self.serve_single_read(session_id, auth, request, notifications);
        if let Ok(response) = &reply {
            let bytes = response.bytes_estimate();
            if bytes > reply_bytes_max {
                let limit = reply_bytes_max;
                return Err(ReplyTooLarge { bytes, limit });
            }
        }
        Ok(reply)
    }

    fn serve_single_read(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        request: &Request,
        notifications: &mut Vec<Notification>,
    ) -> Reply {
        match request {
            Request::Exists(record) => self.read_exists(session_id, auth, record),
            Request::GetData(record) => self
                .read_data(session_id, auth, record)
                .map(|(data, stat)| Response::GetData { data, stat }),
            Request::GetChildren(record) => self
                .read_children(session_id, auth, record)
                .map(|(children, _)| Response::GetChildren { children }),
            Request::GetChildren2(record) => self
                .read_children(session_id, auth, record)
                .map(|(children, stat)| Response::GetChildren2 { children, stat }),
            Request::GetAcl(record) => self.read_acl(auth, record),
            Request::GetEphemerals(record) => Ok(self.read_ephemerals(session_id, record)),
            Request::GetAllChildrenNumber(record) => self.read_all_children_number(auth, record),
            Request::CheckWatches(record) => self.check_watches(session_id, record),
            Request::RemoveWatches(record) => self.remove_watches(session_id, record),
            Request::AddWatch(record) => self.add_watch(session_id, &record.path, record.mode),
            Request::SetWatches(watches) | Request::SetWatches2(watches) => {
                self.rearm_watches(session_id, watches, notifications);
                Ok(Response::Empty)
            }
            // sync on a missing path succeeds (ZK-COMPAT §3); the server does the waiting.
            Request::Sync(record) => Ok(Response::Sync {
                path: record.path.clone(),
            }),
            Request::Ping => Ok(Response::Empty),
            Request::WhoAmI => Ok(Response::WhoAmI {
                clients: auth.iter().map(client_info).collect(),
            }),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    fn readable_node(&self, auth: &[Id], path: &str, perm: i32) -> Result<&Node, ErrorCode> {
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        let node: &Node = node;
        check_acl(&self.options, node.acl(), perm, auth)?;
        Ok(node)
    }

    fn watch(&mut self, session_id: SessionId, path: &str, mode: u8) {
        // A refused watch is counted in the table; the read itself still succeeds.
        let _registered = self.watches.add(session_id, path, mode);
    }

    /// READ is checked only when the node exists (ZOOKEEPER-2590); a missing node answers
    /// NoNode but still leaves the watch, which fires NodeCreated.
    fn read_exists(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        record: &PathWatchRequest,
    ) -> Reply {
        if record.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let stat = match self.nodes.get(record.path.as_str()) {
            Some(node) => {
                check_acl(&self.options, node.acl(), PERM_READ, auth)?;
                Some(node.client_stat(self.options.extended_types_enabled))
            }
            None => None,
        };
        if record.watch {
            self.watch(session_id, &record.path, DATA);
        }
        stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
    }

    /// No watch is left when the node is missing or unreadable.
    fn read_data(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        record: &PathWatchRequest,
    ) -> Result<(Option<Vec<u8>>, rzk_proto::Stat), ErrorCode> {
        let node = self.readable_node(auth, &record.path, PERM_READ)?;
        let data = node.data().map(<[u8]>::to_vec);
        let stat = node.client_stat(self.options.extended_types_enabled);
        if record.watch {
            self.watch(session_id, &record.path, DATA);
        }
        Ok((data, stat))
    }

    fn read_children(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        record: &PathWatchRequest,
    ) -> Result<(Vec<String>, rzk_proto::Stat), ErrorCode> {
        let node = self.readable_node(auth, &record.path, PERM_READ)?;
        let children = child_names(&self.nodes, &record.path)
            .map(str::to_string)
            .collect();
        let stat = node.client_stat(self.options.extended_types_enabled);
        if record.watch {
            self.watch(session_id, &record.path, CHILD);
        }
        Ok((children, stat))
    }

    /// READ or ADMIN to read; without ADMIN digest passwords are masked.
    fn read_acl(&self, auth: &[Id], record: &PathRequest) -> Reply {
        let node = self.readable_node(auth, &record.path, PERM_READ | PERM_ADMIN)?;
        let stat = node.client_stat(self.options.extended_types_enabled);
        let acl = match check_acl(&self.options, node.acl(), PERM_ADMIN, auth) {
            Ok(()) => node.acl().to_vec(),
            Err(_) => mask_digest_passwords(node.acl()),
        };
        Ok(Response::GetAcl { acl, stat })
    }

    /// The caller's own ephemerals; a plain string prefix ("/a" matches "/ab/x"); empty or
    /// "/" (after trimming) means all.
    fn read_ephemerals(&self, session_id: SessionId, record: &PathRequest) -> Response {
        let prefix = record.path.as_str();
        let all = matches!(prefix.trim(), "" | "/");
        let ephemerals = self
            .sessions
            .get(&session_id)
            .map(|session| {
                let matching = session
                    .ephemerals
                    .iter()
                    .filter(|path| all || path.starts_with(prefix));
                matching.map(|path| path.to_string()).collect()
            })
            .unwrap_or_default();
        Response::GetEphemerals { ephemerals }
    }

    /// Every descendant, /zookeeper's included for "/" (ZooKeeper's `nodes.size() - 2`).
    fn read_all_children_number(&self, auth: &[Id], record: &PathRequest) -> Reply {
        self.readable_node(auth, &record.path, PERM_READ)?;
        let total = if record.path == "/" {
            self.nodes.len() - 1
        } else {
            descendant_count(&self.nodes, &record.path)
        };
        Ok(Response::AllChildrenNumber {
            total: i32::try_from(total).unwrap_or(i32::MAX),
        })
    }

    /// Each read answers on its own; errors become `MultiResult::Error`. Only getChildren and
    /// getData may appear (anything else fails the whole request, as ZooKeeper's decoder does).
    /// Building stops at the first result that takes the reply past `reply_bytes_max`.
    fn read_multi(
        &mut self,
        session_id: SessionId,
        auth: &[Id],
        ops: &[Request],
        reply_bytes_max: usize,
    ) -> Result<Reply, ReplyTooLarge> {
        if !ops
            .iter()
            .all(|op| matches!(op, Request::GetChildren(_) | Request::GetData(_)))
        {
            return Ok(Err(ErrorCode::MarshallingError));
        }
        let mut budget = ReplyBudget::new(reply_bytes_max);
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            // As outside a multiRead, the empty path reads the root.
            let root = crate::root_for_empty_path(op);
            let result = match root.as_ref().unwrap_or(op) {
                Request::GetChildren(record) => self
                    .read_children(session_id, auth, record)
                    .map(|(children, _)| MultiResult::GetChildren { children }),
                Request::GetData(record) => self
                    .read_data(session_id, auth, record)
                    .map(|(data, stat)| MultiResult::GetData { data, stat }),
                _ => Err(ErrorCode::MarshallingError),
            };
            let result = result.unwrap_or_else(|code| MultiResult::Error { err: code.code() });
            budget.add(&result)?;
            results.push(result);
        }
        Ok(Ok(Response::Multi(results)))
    }

    /// 3.9 behaviour: NoWatcher unless this session has such a watch (3.8.0 answered OK if
    /// any session watched the path, ZOOKEEPER-4466).
    fn check_watches(&self, session_id: SessionId, record: &RemoveWatchesRequest) -> Reply {
        let modes = watcher_type_modes(record.watcher_type)?;
        if self.watches.modes(session_id, &record.path) & modes != 0 {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    fn remove_watches(&mut self, session_id: SessionId, record: &RemoveWatchesRequest) -> Reply {
        let modes = watcher_type_modes(record.watcher_type)?;
        if self.watches.remove(session_id, &record.path, modes) != 0 {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// addWatch: no existence or ACL check; answers `ErrorResponse{0}`.
    fn add_watch(&mut self, session_id: SessionId, path: &str, mode: i32) -> Reply {
        let bits = match AddWatchMode::from_i32(mode) {
            Some(AddWatchMode::Persistent) => PERSISTENT,
            Some(AddWatchMode::PersistentRecursive) => RECURSIVE,
            // ZooKeeper fails to deserialize an unknown mode: MarshallingError.
            None => return Err(ErrorCode::MarshallingError),
        };
        self.watch(session_id, path, bits);
        Ok(Response::ErrorBody { err: 0 })
    }

    /// `DataTree.setWatches`: each list in order (duplicates fire twice, as on ZooKeeper).
    pub(crate) fn rearm_watches(
        &mut self,
        session_id: SessionId,
        watches: &SetWatches,
        out: &mut Vec<Notification>,
    ) {
        let lists = [
            (&watches.data_watches, Rearm::Data),
            (&watches.exist_watches, Rearm::Exist),
            (&watches.child_watches, Rearm::Child),
            (&watches.persistent_watches, Rearm::Persistent),
            (&watches.persistent_recursive_watches, Rearm::Recursive),
        ];
        for (paths, kind) in lists {
            for path in paths {
                match self.rearm_event(path, kind, watches.relative_zxid) {
                    Ok(event) => out.push(notification(session_id, event, path, NO_ZXID)),
                    Err(mode) => self.watch(session_id, path, mode),
                }
            }
        }
    }

    /// The event a re-armed watch fires at once, or else the watch mode to register.
    fn rearm_event(&self, path: &str, kind: Rearm, relative_zxid: i64) -> Result<EventType, u8> {
        let node = self.nodes.get(path);
        match (kind, node) {
            (Rearm::Data, None) | (Rearm::Child, None) => Ok(EventType::NodeDeleted),
            (Rearm::Data, Some(node)) if node.stat().mzxid > relative_zxid => {
                Ok(EventType::NodeDataChanged)
            }
            (Rearm::Data, Some(_)) | (Rearm::Exist, None) => Err(DATA),
            (Rearm::Exist, Some(_)) => Ok(EventType::NodeCreated),
            (Rearm::Child, Some(node)) if node.stat().pzxid > relative_zxid => {
                Ok(EventType::NodeChildrenChanged)
            }
            (Rearm::Child, Some(_)) => Err(CHILD),
            (Rearm::Persistent, _) => Err(PERSISTENT),
            (Rearm::Recursive, _) => Err(RECURSIVE),
        }
    }
}

/// The five lists of a setWatches2 request.
#[derive(Debug, Clone, Copy)]
enum Rearm {
    Data,
    Exist,
    Child,
    Persistent,
    Recursive,
}

/// The watch modes a `WatcherType` names for checkWatches/removeWatches (3.9 `DataTree`).
fn watcher_type_modes(watcher_type: i32) -> Result<u8, ErrorCode> {
    match WatcherType::from_i32(watcher_type) {
        Some(WatcherType::Children) => Ok(CHILD),
        Some(WatcherType::Data) => Ok(DATA),
        Some(WatcherType::Any) => Ok(DATA | CHILD | PERSISTENT | RECURSIVE),
        Some(WatcherType::Persistent) => Ok(PERSISTENT),
        Some(WatcherType::PersistentRecursive) => Ok(RECURSIVE),
        // ZooKeeper fails to deserialize an unknown type: MarshallingError.
        None => Err(ErrorCode::MarshallingError),
    }
}

/// whoAmI: the scheme and the user part of each id (`AuthUtil.getClientInfos`).
fn client_info(id: &Id) -> ClientInfo {
    let user = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
        _ => id.id.clone(),
    };
    ClientInfo {
        auth_scheme: id.scheme.clone(),
        user,
    }
}

#[cfg(test)]
mod tests {
    use rzk_proto::message::OVERHEAD_BYTES_ESTIMATE;
    use rzk_proto::{
        CreateMode, MultiResult, PathRequest, PathWatchRequest, Reply, Request, Response,
        SetDataRequest,
    };

    use super::{ReplyTooLarge, REPLY_BYTES_MAX};
    use crate::write::tests::{apply, create, started};
    use crate::{SessionId, StateMachine};

    /// The session `started` opens.
    const SESSION: SessionId = 1;

    fn create_with_data(state: &mut StateMachine, path: &str, data: Vec<u8>) {
        assert!(apply(state, create(path, 0)).is_ok(), "create {path}");
        let set = Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(data),
            version: -1,
        });
        assert!(apply(state, set).is_ok(), "setData {path}");
    }

    /// /a holds 1,000 bytes; /p has three children, one an ephemeral of SESSION.
    fn tree() -> StateMachine {
        let mut state = started();
        create_with_data(&mut state, "/a", vec![7; 1_000]);
        for path in ["/p", "/p/one", "/p/two"] {
            assert!(apply(&mut state, create(path, 0)).is_ok(), "create {path}");
        }
        let ephemeral = create("/p/three", CreateMode::Ephemeral.code());
        assert!(apply(&mut state, ephemeral).is_ok());
        state
    }

    fn read(
        state: &mut StateMachine,
        request: &Request,
        limit: usize,
    ) -> Result<Reply, ReplyTooLarge> {
        let mut notifications = Vec::new();
        state.serve_read(SESSION, &[], request, &mut notifications, limit)
    }

    /// The record of a getData or getChildren without a watch.
    fn unwatched(path: &str) -> PathWatchRequest {
        PathWatchRequest {
            path: path.into(),
            watch: false,
        }
    }

    fn get_data(path: &str) -> Request {
        Request::GetData(unwatched(path))
    }

    // Goal: a multiRead is answered whole while its reply, counted as it is built, stays within
    // the limit, and refused once it passes it, by one byte or more. Method: five getData of a
    // 1,000-byte node plus a getChildren; the limit set to the reply's exact count, then one
    // byte less, then to room for two results only.
    #[test]
    fn multi_read_is_answered_up_to_the_limit_and_refused_past_it() {
        let mut state = tree();
        let mut ops = vec![get_data("/a"); 5];
        ops.push(Request::GetChildren(unwatched("/p")));
        ops.push(get_data("/missing"));
        let multi = Request::MultiRead(ops);
        let unbounded = read(&mut state, &multi, usize::MAX).expect("no limit");
        let Ok(Response::Multi(results)) = &unbounded else {
            panic!("multiRead: {unbounded:?}");
        };
        let data_result = OVERHEAD_BYTES_ESTIMATE + 1_000;
        // Each name with its 4-byte length prefix.
        let children_result = OVERHEAD_BYTES_ESTIMATE + (3 + 4) + (3 + 4) + (5 + 4);
        let error_result = OVERHEAD_BYTES_ESTIMATE;
        let exact = OVERHEAD_BYTES_ESTIMATE + 5 * data_result + children_result + error_result;
        assert_eq!(results.len(), 7);
        assert!(matches!(results[6], MultiResult::Error { err: -101 }));
        assert_eq!(unbounded.as_ref().map(Response::bytes_estimate), Ok(exact));

        // Just under (at) the limit: the same answer as without one.
        assert_eq!(read(&mut state, &multi, exact), Ok(unbounded));
        // Just over: the last result (the NoNode error) takes it past.
        let refused = ReplyTooLarge {
            bytes: exact,
            limit: exact - 1,
        };
        assert_eq!(read(&mut state, &multi, exact - 1), Err(refused));
        // Room for two results: building stops at the third, not after the seventh.
        let two = OVERHEAD_BYTES_ESTIMATE + 2 * data_result;
        let refused = ReplyTooLarge {
            bytes: two + data_result,
            limit: two,
        };
        assert_eq!(read(&mut state, &multi, two), Err(refused));
    }

    // Goal: `read` applies REPLY_BYTES_MAX itself: a multiRead whose reply counts exactly
    // 64 MiB is answered, one whose every result is a byte larger is refused. Method: 64 getData
    // of a node sized so that 64 results and the reply's own allowance add up to the limit.
    #[test]
    fn read_answers_up_to_reply_bytes_max() {
        let mut state = started();
        let results = 64;
        let per_result = (REPLY_BYTES_MAX - OVERHEAD_BYTES_ESTIMATE) / results;
        assert_eq!(
            per_result * results + OVERHEAD_BYTES_ESTIMATE,
            REPLY_BYTES_MAX
        );
        let data = per_result - OVERHEAD_BYTES_ESTIMATE;
        create_with_data(&mut state, "/fits", vec![1; data]);
        create_with_data(&mut state, "/over", vec![2; data + 1]);
        let mut notifications = Vec::new();
        let fits = Request::MultiRead(vec![get_data("/fits"); results]);
        let answered = state.read(SESSION, &[], &fits, &mut notifications);
        let Ok(Ok(Response::Multi(answers))) = &answered else {
            panic!(
                "64 MiB exactly: {:?}",
                answered.map(|reply| reply.map(|_| ()))
            );
        };
        assert_eq!(answers.len(), results);
        let over = Request::MultiRead(vec![get_data("/over"); results]);
        let refused = state.read(SESSION, &[], &over, &mut notifications);
        let expected = ReplyTooLarge {
            bytes: REPLY_BYTES_MAX + results,
            limit: REPLY_BYTES_MAX,
        };
        assert_eq!(refused.map(|reply| reply.map(|_| ())), Err(expected));
    }

    // Goal: a multiRead that breaks the op rules still answers MarshallingError, however small
    // the limit: only a reply is bounded.
    #[test]
    fn a_malformed_multi_read_is_answered_under_any_limit() {
        let mut state = tree();
        let bad = Request::MultiRead(vec![Request::Exists(unwatched("/a"))]);
        assert_eq!(
            read(&mut state, &bad, 0),
            Ok(Err(rzk_proto::ErrorCode::MarshallingError))
        );
    }

    // Goal: getData, getChildren, getChildren2 and getEphemerals, whose replies the tree bounds,
    // are checked once built: answered at their exact count, refused one byte below it.
    #[test]
    fn single_reads_are_checked_once_built() {
        let mut state = tree();
        let ephemerals = Request::GetEphemerals(PathRequest { path: "/".into() });
        let children = Request::GetChildren(unwatched("/p"));
        let children2 = Request::GetChildren2(unwatched("/p"));
        for request in [get_data("/a"), children, children2, ephemerals] {
            let reply = read(&mut state, &request, usize::MAX).expect("no limit");
            let exact = reply.as_ref().map_or(0, Response::bytes_estimate);
            assert!(exact > OVERHEAD_BYTES_ESTIMATE, "{request:?}: {reply:?}");
            assert_eq!(read(&mut state, &request, exact), Ok(reply), "{request:?}");
            let refused = ReplyTooLarge {
                bytes: exact,
                limit: exact - 1,
            };
            assert_eq!(
                read(&mut state, &request, exact - 1),
                Err(refused),
                "{request:?}"
            );
        }
    }
}
