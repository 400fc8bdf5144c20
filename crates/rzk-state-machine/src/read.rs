//! Local reads (`FinalRequestProcessor`), watch registration, checkWatches/removeWatches and
//! setWatches. Reads never change the tree, only this member's watch table.

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

impl StateMachine {
    pub(crate) fn serve_read(
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
            Request::MultiRead(ops) => self.read_multi(session_id, auth, ops),
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
    fn read_multi(&mut self, session_id: SessionId, auth: &[Id], ops: &[Request]) -> Reply {
        if !ops
            .iter()
            .all(|op| matches!(op, Request::GetChildren(_) | Request::GetData(_)))
        {
            return Err(ErrorCode::MarshallingError);
        }
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
            results.push(result.unwrap_or_else(|code| MultiResult::Error { err: code.code() }));
        }
        Ok(Response::Multi(results))
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
