//! Logged ops (`PrepRequestProcessor` checks + `DataTree.processTxn` changes, in one place).
//!
//! Every op runs all of its checks, in ZooKeeper's order (which decides the error code a
//! client sees), before its first change, so a failed single op changes nothing. Inside a multi
//! each change also records how to undo it, and a failing op rolls the earlier ones back.

use rzk_proto::{
    CheckVersionRequest, CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id,
    MultiResult, PathRequest, Reply, Request, Response, SetAclRequest, SetDataRequest, Stat,
};

use crate::acl::{
    check_acl, fixup_acl, PERM_ADMIN, PERM_CREATE, PERM_DELETE, PERM_READ, PERM_WRITE,
};
use crate::path::{is_special_path, split_parent, validate_path};
use crate::tree::{
    node_kind, AclList, Node, NodeHeader, NodeKind, PathKey, StoredStat, CONTAINER_OWNER,
    EXTENDED_MASK, TTL_MAX_MS,
};
use crate::{Session, SessionId, StateMachine, TreeEvent};

/// What one entry is applying under, and what it changed so far.
pub(crate) struct Context {
    zxid: i64,
    time_ms: i64,
    session_id: SessionId,
    pub events: Vec<TreeEvent>,
    /// `Some` inside a multi: how to undo each change, in order.
    undo: Option<Vec<Undo>>,
}

impl Context {
    pub fn new(zxid: i64, time_ms: i64, session_id: SessionId) -> Self {
        Context {
            zxid,
            time_ms,
            session_id,
            events: Vec::new(),
            undo: None,
        }
    }

    fn record(&mut self, undo: impl FnOnce() -> Undo) {
        if let Some(log) = self.undo.as_mut() {
            log.push(undo());
        }
    }
}

/// The inverse of one change.
enum Undo {
    Created(Box<str>),
    Deleted(Box<str>, Node),
    Stat(Box<str>, StoredStat),
    /// A setData's: the node as it was (its data and Stat).
    Replaced(Box<str>, Node),
    Acl(Box<str>, AclList),
}

/// The four create opcodes: they differ in node type and in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateOp {
    Create,
    Create2,
    Container,
    Ttl,
}

/// A successful logged op, before it is shaped into a reply or a multi result.
enum WriteOk {
    Created {
        op: CreateOp,
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet(Stat),
    AclSet(Stat),
    Checked(Stat),
}

/// `checkAndIncVersion`: -1 matches any version. The next version just adds one and wraps
/// through -1, as 3.8/3.9 do (the skip of -1 is 3.10's ZOOKEEPER-4743).
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// `validatePathForCreate` / `getParentPathAndValidate`: a slash somewhere and no NUL.
fn parent_for_write(path: &str) -> Result<(&str, &str), ErrorCode> {
    if path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    split_parent(path).ok_or(ErrorCode::BadArguments)
}

impl StateMachine {
    /// A new session, attached to the connection that proposed it (`origin`).
    pub(crate) fn apply_create_session(
        &mut self,
        session_id: SessionId,
        timeout_ms: i32,
        origin: u64,
    ) -> Reply {
        let session = self.sessions.entry(session_id).or_default();
        session.timeout_ms = timeout_ms;
        session.owner = origin;
        Ok(Response::Empty)
    }

    /// `DataTree.killSession`: delete the session's ephemerals (in path order, so every member
    /// fires the same events), then forget the session.
    pub(crate) fn apply_close_session(&mut self, context: &mut Context) -> Reply {
        let Some(session) = self.sessions.get(&context.session_id) else {
            return Ok(Response::Empty);
        };
        let ephemerals: Vec<Box<str>> = session.ephemerals.iter().cloned().collect();
        for path in ephemerals {
            self.delete_node(context, &path);
        }
        let session = self
            .sessions
            .remove(&context.session_id)
            .expect("closing session vanished");
        assert!(
            session.ephemerals.is_empty(),
            "session closed with ephemerals left"
        );
        Ok(Response::Empty)
    }

    pub(crate) fn apply_write(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        request: &Request,
    ) -> Reply {
        if let Request::Multi(ops) = request {
            return Ok(Response::Multi(self.apply_multi(context, auth, ops)));
        }
        let result = self.write_op(context, auth, request)?;
        Ok(match result {
            WriteOk::Created {
                op: CreateOp::Create,
                path,
                ..
            } => Response::Create { path },
            WriteOk::Created { path, stat, .. } => Response::Create2 { path, stat },
            WriteOk::Deleted => Response::Empty,
            WriteOk::DataSet(stat) | WriteOk::AclSet(stat) | WriteOk::Checked(stat) => {
                Response::Stat(stat)
            }
        })
    }

    fn write_op(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        request: &Request,
    ) -> Result<WriteOk, ErrorCode> {
        match request {
            Request::Create(record) => self.create(context, auth, CreateOp::Create, record, -1),
            Request::Create2(record) => self.create(context, auth, CreateOp::Create2, record, -1),
            Request::CreateContainer(record) => {
                self.create(context, auth, CreateOp::Container, record, -1)
            }
            Request::CreateTtl(record) => self.create_ttl(context, auth, record),
            Request::Delete(record) => self.delete(context, auth, record),
            Request::SetData(record) => self.set_data(context, auth, record),
            Request::SetAcl(record) => self.set_acl(context, auth, record),
            Request::Check(record) => self.check(context, auth, record),
            Request::DeleteContainer(record) => self.delete_container(context, record),
            // Dynamic reconfig is not served: answered as ZooKeeper does with its default
            // reconfigEnabled=false, a failed write that consumes a zxid (README, "What rzk does
            // not serve yet").
            Request::Reconfig(_) => Err(ErrorCode::ReconfigDisabled),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// All-or-nothing: on the first failure the earlier ops are undone and every result
    /// becomes an error (0 before the failing op, its code, then RuntimeInconsistency).
    /// Creates sent as create or create2 answer the path-only result, as ZooKeeper 3.8 does.
    fn apply_multi(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        ops: &[Request],
    ) -> Vec<MultiResult> {
        context.undo = Some(Vec::new());
        let mut results = Vec::with_capacity(ops.len());
        let mut failure = None;
        for (index, op) in ops.iter().enumerate() {
            let outcome = match op {
                Request::Multi(_) | Request::SetAcl(_) | Request::DeleteContainer(_) => {
                    Err(ErrorCode::Unimplemented)
                }
                _ => self.write_op(context, auth, op),
            };
            match outcome {
                Ok(result) => results.push(multi_result(result)),
                Err(code) => {
                    failure = Some((index, code));
                    break;
                }
            }
        }
        let undo = context.undo.take().expect("multi undo log missing");
        let Some((failed, code)) = failure else {
            return results;
        };
        self.roll_back(undo);
        context.events.clear();
        (0..ops.len())
            .map(|index| {
                let err = match index.cmp(&failed) {
                    std::cmp::Ordering::Less => 0,
                    std::cmp::Ordering::Equal => code.code(),
                    std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
                };
                MultiResult::Error { err }
            })
            .collect()
    }

    fn roll_back(&mut self, undo: Vec<Undo>) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Created(path) => {
                    self.unlink(&path);
                }
                Undo::Deleted(path, node) => self.link(path, node),
                Undo::Stat(path, stat) => self.node_mut(&path).change(|node| node.stat = stat),
                Undo::Replaced(path, node) => {
                    self.replace_node(&path, node);
                }
                Undo::Acl(path, acl) => self.node_mut(&path).change(|node| node.acl = acl),
            }
        }
    }

    fn require_session(&self, context: &Context) -> Result<(), ErrorCode> {
        if self.sessions.contains_key(&context.session_id) {
            Ok(())
        } else {
            Err(ErrorCode::SessionExpired)
        }
    }

    fn node(&self, path: &str) -> Result<&Node, ErrorCode> {
        self.nodes.get(path).ok_or(ErrorCode::NoNode)
    }

    /// The node to change or replace, in a leaf of the tree made unshared (the copy-on-write
    /// step of the persistent tree: a snapshot copy that still holds the leaf keeps the old one).
    /// [`Node::change`] unshares the node itself.
    fn node_mut(&mut self, path: &str) -> &mut Node {
        self.nodes
            .get_mut(path)
            .expect("node vanished between check and change")
    }

    fn create_ttl(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        record: &CreateTtlRequest,
    ) -> Result<WriteOk, ErrorCode> {
        let create = CreateRequest {
            path: record.path.clone(),
            data: record.data.clone(),
            acl: record.acl.clone(),
            flags: record.flags,
        };
        self.create(context, auth, CreateOp::Ttl, &create, record.ttl)
    }

    /// `pRequest2TxnCreate` then `DataTree.createNode`.
    fn create(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        op: CreateOp,
        record: &CreateRequest,
        ttl: i64,
    ) -> Result<WriteOk, ErrorCode> {
        let mode = CreateMode::from_i32(record.flags).ok_or(ErrorCode::BadArguments)?;
        let owner = self.validate_create_request(context, op, mode, ttl)?;
        let (parent_path, _) = parent_for_write(&record.path)?;
        let acl = fixup_acl(&record.acl, auth)?;
        let parent = self.node(parent_path)?;
        check_acl(&self.options, parent.acl(), PERM_CREATE, auth)?;
        let path = if mode.is_sequential() {
            format!("{}{:010}", record.path, parent.stat().cversion)
        } else {
            record.path.clone()
        };
        validate_path(&path)?;
        // Before the NodeExists check that the insert below makes: an ephemeral node has no
        // children, so at most one of the two can apply.
        if let NodeKind::Ephemeral(_) = node_kind(
            parent.stat().ephemeral_owner,
            self.options.extended_types_enabled,
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let zxid = context.zxid;
        let stat = StoredStat {
            czxid: zxid,
            mzxid: zxid,
            ctime: context.time_ms,
            mtime: context.time_ms,
            pzxid: zxid,
            ephemeral_owner: owner,
            ..StoredStat::default()
        };
        let parent_acl = parent.acl().clone();
        let acl = self.acl_cache.intern(acl);
        let node = Node::new(acl.clone(), stat, record.data.as_deref());
        let stat = node.client_stat(self.options.extended_types_enabled);
        // One descent of the tree for the new path, which is where a create's time goes on a
        // large tree (its nodes are not in the CPU's caches): insert, and put back what was there.
        self.link_new(&path, node)?;
        // The parent's child count is undone when the node is unlinked.
        self.change_node(context, parent_path, |parent| {
            parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
            parent.stat.pzxid = zxid;
            parent.count_child();
        });
        context.record(|| Undo::Created(Box::from(path.as_str())));
        context
            .events
            .push(TreeEvent::Created(path.clone(), acl, parent_acl));
        Ok(WriteOk::Created { op, path, stat })
    }

    /// `validateCreateRequest`: TTL availability and range, then the session. Returns the
    /// `ephemeralOwner` the new node gets (decided by the opcode, as `DataTree` does).
    fn validate_create_request(
        &self,
        context: &Context,
        op: CreateOp,
        mode: CreateMode,
        ttl: i64,
    ) -> Result<i64, ErrorCode> {
        if mode.is_ttl() && !self.options.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_valid = if mode.is_ttl() {
            ttl > 0 && ttl <= TTL_MAX_MS
        } else {
            ttl < 0
        };
        if !ttl_valid {
            return Err(ErrorCode::BadArguments);
        }
        self.require_session(context)?;
        let owner = match op {
            CreateOp::Container => CONTAINER_OWNER,
            // A createTTL without a TTL mode has no TTL to store: ZooKeeper fails it while
            // applying; rzk refuses it up front.
            CreateOp::Ttl if !mode.is_ttl() => return Err(ErrorCode::BadArguments),
            CreateOp::Ttl => EXTENDED_MASK | ttl,
            CreateOp::Create | CreateOp::Create2 if mode.is_ephemeral() => context.session_id,
            CreateOp::Create | CreateOp::Create2 => 0,
        };
        Ok(owner)
    }

    fn delete(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        record: &DeleteRequest,
    ) -> Result<WriteOk, ErrorCode> {
        self.require_session(context)?;
        let (parent_path, _) = parent_for_write(&record.path)?;
        if is_special_path(&record.path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.node(parent_path)?;
        check_acl(&self.options, parent.acl(), PERM_DELETE, auth)?;
        let node = self.node(&record.path)?;
        check_version(node.stat().version, record.version)?;
        if node.child_count() != 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.delete_node(context, &record.path);
        Ok(WriteOk::Deleted)
    }

    /// The leader's container/TTL cleaner: no session or ACL check, and only a container or
    /// TTL node without children may go.
    fn delete_container(
        &mut self,
        context: &mut Context,
        record: &PathRequest,
    ) -> Result<WriteOk, ErrorCode> {
        parent_for_write(&record.path)?;
        if is_special_path(&record.path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.node(&record.path)?;
        if node.child_count() != 0 {
            return Err(ErrorCode::NotEmpty);
        }
        match node_kind(
            node.stat().ephemeral_owner,
            self.options.extended_types_enabled,
        ) {
            NodeKind::Container | NodeKind::Ttl(_) => {}
            NodeKind::Persistent | NodeKind::Ephemeral(_) => return Err(ErrorCode::BadVersion),
        }
        self.delete_node(context, &record.path);
        Ok(WriteOk::Deleted)
    }

    /// `DataTree.deleteNode` for a node already checked: parent pzxid, unlink, event.
    fn delete_node(&mut self, context: &mut Context, path: &str) {
        let parent_path = crate::path::parent_of(path);
        let zxid = context.zxid;
        let node = self.remove_counted(path);
        let acl = node.acl().clone();
        // The parent's child count is undone when the node is linked back.
        let ((), parent_acl) = self.change_node_with_acl(context, parent_path, |parent| {
            parent.stat.pzxid = parent.stat.pzxid.max(zxid);
            parent.uncount_child();
        });
        context.record(|| Undo::Deleted(Box::from(path), node));
        context
            .events
            .push(TreeEvent::Deleted(path.to_string(), acl, parent_acl));
    }

    fn set_data(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        record: &SetDataRequest,
    ) -> Result<WriteOk, ErrorCode> {
        self.require_session(context)?;
        validate_path(&record.path)?;
        let node = self.node(&record.path)?;
        check_acl(&self.options, node.acl(), PERM_WRITE, auth)?;
        let version = check_version(node.stat().version, record.version)?;
        // The data lives in the node's allocation: new data is a new node, the old one is what a
        // multi's rollback puts back.
        let mut changed = node.with_data(record.data.as_deref());
        changed.change(|node| {
            node.stat.version = version;
            node.stat.mzxid = context.zxid;
            node.stat.mtime = context.time_ms;
        });
        let stat = changed.client_stat(self.options.extended_types_enabled);
        let acl = changed.acl().clone();
        let old = self.replace_node(&record.path, changed);
        context.record(|| Undo::Replaced(Box::from(record.path.as_str()), old));
        context
            .events
            .push(TreeEvent::DataChanged(record.path.clone(), acl));
        Ok(WriteOk::DataSet(stat))
    }

    fn set_acl(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        record: &SetAclRequest,
    ) -> Result<WriteOk, ErrorCode> {
        self.require_session(context)?;
        validate_path(&record.path)?;
        let acl = fixup_acl(&record.acl, auth)?;
        let node = self.node(&record.path)?;
        check_acl(&self.options, node.acl(), PERM_ADMIN, auth)?;
        let aversion = check_version(node.stat().aversion, record.version)?;
        let stat = Stat {
            aversion,
            ..node.client_stat(self.options.extended_types_enabled)
        };
        let acl = self.acl_cache.intern(acl);
        let old_acl = self.change_node(context, &record.path, |node| {
            node.stat.aversion = aversion;
            std::mem::replace(&mut node.acl, acl)
        });
        context.record(|| Undo::Acl(Box::from(record.path.as_str()), old_acl));
        Ok(WriteOk::AclSet(stat))
    }

    /// check (version precondition): READ on the node, no change.
    fn check(
        &mut self,
        context: &mut Context,
        auth: &[Id],
        record: &CheckVersionRequest,
    ) -> Result<WriteOk, ErrorCode> {
        self.require_session(context)?;
        validate_path(&record.path)?;
        let node = self.node(&record.path)?;
        check_acl(&self.options, node.acl(), PERM_READ, auth)?;
        check_version(node.stat().version, record.version)?;
        Ok(WriteOk::Checked(
            node.client_stat(self.options.extended_types_enabled),
        ))
    }

    /// Change the header of the node at `path` through `change`, in one lookup (see
    /// [`Node::change`]); its Stat as it was is recorded for a multi's rollback. What `change`
    /// returns is returned.
    fn change_node<T>(
        &mut self,
        context: &mut Context,
        path: &str,
        change: impl FnOnce(&mut NodeHeader) -> T,
    ) -> T {
        self.change_node_with_acl(context, path, change).0
    }

    /// [`Self::change_node`], also returning the node's ACL (one lookup for both).
    fn change_node_with_acl<T>(
        &mut self,
        context: &mut Context,
        path: &str,
        change: impl FnOnce(&mut NodeHeader) -> T,
    ) -> (T, AclList) {
        let node = self.node_mut(path);
        let acl = node.acl().clone();
        let (before, result) = node.change(|node| (node.stat, change(node)));
        context.record(|| Undo::Stat(Box::from(path), before));
        (result, acl)
    }

    /// Put `node` at `path` in place of the node there, which is returned.
    fn replace_node(&mut self, path: &str, node: Node) -> Node {
        let after = node.data_len() as u64;
        let before = std::mem::replace(self.node_mut(path), node);
        self.data_size = self.data_size - before.data_len() as u64 + after;
        before
    }

    /// Insert a node under its (existing) parent and into the kind indexes.
    pub(crate) fn link(&mut self, path: Box<str>, node: Node) {
        let (parent_path, _) = split_parent(&path).expect("linked path has no slash");
        self.node_mut(parent_path).change(NodeHeader::count_child);
        assert!(
            self.link_new(&path, node).is_ok(),
            "node {path} linked twice"
        );
    }

    /// Link a node at a path that must be free, its parent counting it already: `NodeExists`
    /// (and the tree as it was) if the path is taken.
    fn link_new(&mut self, path: &str, node: Node) -> Result<(), ErrorCode> {
        let size = crate::tree::node_size(path, &node);
        let owner = node.stat().ephemeral_owner;
        if let Some(there) = self.nodes.insert(PathKey::new(path), node) {
            self.nodes.insert(PathKey::new(path), there);
            return Err(ErrorCode::NodeExists);
        }
        self.index_kind(path, owner);
        self.data_size += size;
        Ok(())
    }

    /// Add a node to the index of its kind (its session's ephemerals, containers, TTLs), which its
    /// `ephemeralOwner` says.
    pub(crate) fn index_kind(&mut self, path: &str, ephemeral_owner: i64) {
        match node_kind(ephemeral_owner, self.options.extended_types_enabled) {
            NodeKind::Ephemeral(owner) => {
                let session = self
                    .sessions
                    .get_mut(&owner)
                    .expect("ephemeral owner has no session");
                assert!(
                    session.ephemerals.insert(Box::from(path)),
                    "ephemeral {path} indexed twice"
                );
            }
            NodeKind::Container => assert!(self.containers.insert(Box::from(path))),
            NodeKind::Ttl(_) => assert!(self.ttls.insert(Box::from(path))),
            NodeKind::Persistent => {}
        }
    }

    /// Remove a childless node from its parent and the kind indexes.
    pub(crate) fn unlink(&mut self, path: &str) -> Node {
        let node = self.remove_counted(path);
        let (parent_path, _) = split_parent(path).expect("unlinked path has no slash");
        self.node_mut(parent_path).change(NodeHeader::uncount_child);
        node
    }

    /// [`StateMachine::unlink`] but for the parent's count, which the caller lowers.
    fn remove_counted(&mut self, path: &str) -> Node {
        let node = self.nodes.remove(path).expect("unlinked node is missing");
        assert_eq!(
            node.child_count(),
            0,
            "unlinked node {path} still has children"
        );
        match node_kind(
            node.stat().ephemeral_owner,
            self.options.extended_types_enabled,
        ) {
            NodeKind::Ephemeral(owner) => {
                let session: &mut Session = self
                    .sessions
                    .get_mut(&owner)
                    .expect("ephemeral owner has no session");
                assert!(
                    session.ephemerals.remove(path),
                    "ephemeral {path} not indexed"
                );
            }
            NodeKind::Container => assert!(self.containers.remove(path)),
            NodeKind::Ttl(_) => assert!(self.ttls.remove(path)),
            NodeKind::Persistent => {}
        }
        self.data_size -= crate::tree::node_size(path, &node);
        node
    }
}

/// Results of a successful multi. 3.8 decodes create2 inside multi as create, so both answer
/// with the path only (ZK-COMPAT §3); createContainer/createTTL answer Create2 with the stat.
fn multi_result(result: WriteOk) -> MultiResult {
    match result {
        WriteOk::Created {
            op: CreateOp::Create | CreateOp::Create2,
            path,
            ..
        } => MultiResult::Create { path },
        WriteOk::Created { path, stat, .. } => MultiResult::Create2 { path, stat },
        WriteOk::Deleted => MultiResult::Delete,
        WriteOk::DataSet(stat) | WriteOk::AclSet(stat) => MultiResult::SetData { stat },
        WriteOk::Checked(_) => MultiResult::Check,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rzk_proto::{codes::perms, Acl, CreateRequest, Id, Request, Response, SetDataRequest};

    use crate::{Entry, EntryOp, Options, StateMachine};

    pub(crate) fn apply(state: &mut StateMachine, request: Request) -> rzk_proto::Reply {
        let write = EntryOp::Write {
            auth: vec![],
            request,
        };
        state
            .apply(&Entry {
                session_id: 1,
                xid: 0,
                origin: 0,
                time_ms: 5,
                op: write,
            })
            .reply
    }

    pub(crate) fn create(path: &str, flags: i32) -> Request {
        let acl = vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }];
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl,
            flags,
        })
    }

    /// Session 1 open and /s created.
    pub(crate) fn started() -> StateMachine {
        let mut state = StateMachine::new(Options::default());
        state.apply(&Entry {
            session_id: 1,
            xid: 0,
            origin: 0,
            time_ms: 1,
            op: EntryOp::CreateSession { timeout_ms: 1 },
        });
        assert!(apply(&mut state, create("/s", 0)).is_ok());
        state
    }

    // Goal: the sequence suffix is the signed stored cversion, wrapping to -2147483648
    // (data-model.mdx), formatted like Java's %010d.
    #[test]
    fn sequence_suffix_wraps_as_signed_int() {
        let mut state = started();
        state
            .node_mut("/s")
            .change(|node| node.stat.cversion = i32::MAX);
        let first = apply(&mut state, create("/s/n", 2));
        assert_eq!(
            first,
            Ok(Response::Create {
                path: "/s/n2147483647".into()
            })
        );
        let second = apply(&mut state, create("/s/n", 2));
        assert_eq!(
            second,
            Ok(Response::Create {
                path: "/s/n-2147483648".into()
            })
        );
        state.check_invariants();
    }

    // Goal: versions add one and wrap through -1 as 3.8/3.9 do (no ZOOKEEPER-4743 skip).
    #[test]
    fn data_version_wraps_through_minus_one() {
        let mut state = started();
        state.node_mut("/s").change(|node| node.stat.version = -2);
        let set = |state: &mut StateMachine, version| {
            let request = Request::SetData(SetDataRequest {
                path: "/s".into(),
                data: None,
                version,
            });
            match apply(state, request) {
                Ok(Response::Stat(stat)) => stat.version,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(set(&mut state, -2), -1);
        assert_eq!(set(&mut state, -1), 0);
        state
            .node_mut("/s")
            .change(|node| node.stat.version = i32::MAX);
        assert_eq!(set(&mut state, i32::MAX), i32::MIN);
    }
}
