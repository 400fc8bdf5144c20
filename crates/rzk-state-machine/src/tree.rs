//! The znode tree: nodes keyed by full path in one persistent ordered map, stored Stat
//! (`StatPersisted`) and the Stat clients see (`DataNode.copyStat`).
//!
//! A node does not list its children: they are the keys under "path/" that have no further
//! slash, and the map keeps them in name order. A node keeps only their count.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Bound;

use triomphe::ThinArc;

pub(crate) use crate::path_key::PathKey;

use rzk_proto::{codes::perms, Acl, Id, Stat};

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;
/// TTL owners are `0xff00000000000000 | ttl` (`EphemeralType.TTL.toEphemeralOwner`).
pub(crate) const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Bits of an extended owner that say which extended type it is (only TTL = 0 exists).
const EXTENDED_RESERVED_MASK: i64 = 0x00ff_ff00_0000_0000;
/// The largest TTL: 2^40 - 1 ms, about 34 years.
pub(crate) const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// `StatPersisted`: what is stored. `cversion` counts child creates only.
///
/// Packed to 4-byte alignment: 60 bytes instead of 64, so that a [`NodeHeader`] is 72 bytes and a
/// node with a 100-byte value fits jemalloc's 192-byte class (see [`Node`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, packed(4))]
pub(crate) struct StoredStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub pzxid: i64,
    pub ephemeral_owner: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
}

/// Every znode by full path, in path order. A [`Node`] is one reference-counted allocation and a
/// [`PathKey`] one thin pointer, so a B+tree leaf slot is 16 bytes and copying a leaf (when a
/// write meets a leaf a snapshot copy still shares) copies pointers and paths, not nodes.
pub(crate) type Nodes = imbl::OrdMap<PathKey, Node>;

/// A shared ACL list: a thin pointer (8 bytes) to one allocation holding the list. Equal lists
/// are one list (see [`AclCache`]); equality and hashing are by content.
#[derive(Clone)]
pub(crate) struct AclList(ThinArc<(), Acl>);

impl AclList {
    pub fn new(acl: Vec<Acl>) -> AclList {
        AclList(ThinArc::from_header_and_iter((), acl.into_iter()))
    }

    /// Identifies the shared list (equal lists interned by one cache have one address).
    pub fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }

    fn holders(&self) -> usize {
        ThinArc::strong_count(&self.0)
    }
}

impl std::ops::Deref for AclList {
    type Target = [Acl];

    fn deref(&self) -> &[Acl] {
        &self.0.slice
    }
}

impl Borrow<[Acl]> for AclList {
    fn borrow(&self) -> &[Acl] {
        self
    }
}

impl PartialEq for AclList {
    fn eq(&self, other: &AclList) -> bool {
        **self == **other
    }
}

impl Eq for AclList {}

impl Hash for AclList {
    // As the slice hashes, which `Borrow<[Acl]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for AclList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The fixed part of a znode, in front of its data in the node's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeHeader {
    pub acl: AclList,
    pub stat: StoredStat,
    /// How many children the node has (they are the keys under "path/", see [`child_names`]) in
    /// the low 31 bits; the top bit is set when the data is null (distinct from empty).
    children_and_null: u32,
}

const NULL_DATA: u32 = 1 << 31;

/// The most children a node can have (`numChildren` is an `int` in ZooKeeper's Stat).
pub(crate) const MAX_CHILDREN: u32 = NULL_DATA - 1;

impl NodeHeader {
    pub fn child_count(&self) -> u32 {
        self.children_and_null & !NULL_DATA
    }

    fn set_child_count(&mut self, count: u32) {
        assert!(count <= MAX_CHILDREN, "more than {MAX_CHILDREN} children");
        self.children_and_null = (self.children_and_null & NULL_DATA) | count;
    }

    /// One more child.
    pub fn count_child(&mut self) {
        assert!(self.try_count_child(), "more than {MAX_CHILDREN} children");
    }

    /// One more child, unless the node has [`MAX_CHILDREN`] already (then `false`).
    pub fn try_count_child(&mut self) -> bool {
        let count = self.child_count();
        if count >= MAX_CHILDREN {
            return false;
        }
        self.set_child_count(count + 1);
        true
    }

    /// One child fewer.
    pub fn uncount_child(&mut self) {
        let count = self
            .child_count()
            .checked_sub(1)
            .expect("a node with no children lost one");
        self.set_child_count(count);
    }
}

// The header is 72 bytes, so a node (count 8 + header + length 8 + data) with a 100-byte value
// takes 188 bytes: jemalloc's 192-byte class. Before nodes held their data, a node and its
// 100-byte value took two 112-byte allocations.
const _: () = assert!(std::mem::size_of::<NodeHeader>() == 72);

/// One znode: its header (ACL, Stat, child count) and its data in one reference-counted
/// allocation, behind a thin pointer. Cloning shares it; [`Node::change`] copies it first
/// when it is shared (copy on write: a snapshot copy that still holds it keeps the old version).
#[derive(Clone)]
pub(crate) struct Node(ThinArc<NodeHeader, u8>);

impl Node {
    /// A node with no children. `data` is `None` for null.
    pub fn new(acl: AclList, stat: StoredStat, data: Option<&[u8]>) -> Node {
        let header = NodeHeader {
            acl,
            stat,
            children_and_null: 0,
        };
        Node::from_parts(header, data)
    }

    /// A node of `header` (its null flag set from `data`) and `data`.
    fn from_parts(mut header: NodeHeader, data: Option<&[u8]>) -> Node {
        header.children_and_null = match data {
            Some(_) => header.children_and_null & !NULL_DATA,
            None => header.children_and_null | NULL_DATA,
        };
        Node(ThinArc::from_header_and_slice(
            header,
            data.unwrap_or_default(),
        ))
    }

    /// Where the node's allocation starts (for prefetching).
    pub fn address(&self) -> *const u8 {
        self.0.as_ptr().cast()
    }

    pub fn header(&self) -> &NodeHeader {
        &self.0.header.header
    }

    pub fn acl(&self) -> &AclList {
        &self.header().acl
    }

    pub fn stat(&self) -> &StoredStat {
        &self.header().stat
    }

    pub fn child_count(&self) -> u32 {
        self.header().child_count()
    }

    /// The data, `None` for null.
    pub fn data(&self) -> Option<&[u8]> {
        if self.header().children_and_null & NULL_DATA != 0 {
            None
        } else {
            Some(&self.0.slice)
        }
    }

    /// Bytes of data (null counts none).
    pub fn data_len(&self) -> usize {
        self.0.slice.len()
    }

    /// Change the header through `change`, the node made unshared first (copied when another
    /// holder, such as a snapshot copy of the tree, shares it). What `change` returns is returned.
    pub fn change<T>(&mut self, change: impl FnOnce(&mut NodeHeader) -> T) -> T {
        if ThinArc::strong_count(&self.0) != 1 {
            *self = self.with_data(self.data());
        }
        self.0.with_arc_mut(|arc| {
            let node = triomphe::Arc::get_mut(arc).expect("a node just made unshared is shared");
            change(node.header_mut())
        })
    }

    /// This node with other data: a new allocation with the same header.
    pub fn with_data(&self, data: Option<&[u8]>) -> Node {
        Node::from_parts(self.header().clone(), data)
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.header() == other.header() && self.data() == other.data()
    }
}

impl Eq for Node {}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("header", self.header())
            .field("data", &self.data())
            .finish()
    }
}

/// What `ephemeralOwner` says a node is (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

/// Whether an ephemeral owner (or a session id) reads as a TTL node's owner with extended
/// types on: what turning them on or off would change for it.
pub(crate) fn reads_as_ttl_owner(owner: i64) -> bool {
    matches!(node_kind(owner, true), NodeKind::Ttl(_))
}

/// TTL owners are recognised only with extended types on, as ZooKeeper does: without them a
/// session id with top byte 0xff is an ordinary ephemeral owner.
pub(crate) fn node_kind(owner: i64, extended_types_enabled: bool) -> NodeKind {
    if extended_types_enabled
        && owner & EXTENDED_MASK == EXTENDED_MASK
        && owner & EXTENDED_RESERVED_MASK == 0
    {
        return NodeKind::Ttl(owner & !(EXTENDED_MASK | EXTENDED_RESERVED_MASK));
    }
    match owner {
        0 => NodeKind::Persistent,
        CONTAINER_OWNER => NodeKind::Container,
        session => NodeKind::Ephemeral(session),
    }
}

impl Node {
    pub fn data_length(&self) -> i32 {
        i32::try_from(self.data_len()).unwrap_or(i32::MAX)
    }

    pub fn num_children(&self) -> i32 {
        i32::try_from(self.child_count()).unwrap_or(i32::MAX)
    }

    /// `DataNode.copyStat`: cversion reported as creates + deletes (`2 × stored − numChildren`),
    /// container and TTL markers shown as owner 0.
    pub fn client_stat(&self, extended_types_enabled: bool) -> Stat {
        let stored = self.stat();
        let num_children = self.num_children();
        let ephemeral_owner = match node_kind(stored.ephemeral_owner, extended_types_enabled) {
            NodeKind::Ephemeral(session) => session,
            NodeKind::Persistent | NodeKind::Container | NodeKind::Ttl(_) => 0,
        };
        Stat {
            czxid: stored.czxid,
            mzxid: stored.mzxid,
            ctime: stored.ctime,
            mtime: stored.mtime,
            version: stored.version,
            cversion: stored.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: stored.aversion,
            ephemeral_owner,
            data_length: self.data_length(),
            num_children,
            pzxid: stored.pzxid,
        }
    }
}

/// Shares equal ACL lists between nodes (ZooKeeper's `ReferenceCountedACLCache` idea): most
/// trees use a handful of distinct lists, so a node holds one pointer instead of a list.
#[derive(Debug, Default)]
pub(crate) struct AclCache {
    lists: HashSet<AclList>,
    /// Size after the last purge: purge again once the cache has doubled.
    purge_mark: usize,
}

/// Below this many distinct lists the cache is never purged (purging costs a scan).
const ACL_CACHE_PURGE_FLOOR: usize = 1024;

impl AclCache {
    pub fn intern(&mut self, acl: Vec<Acl>) -> AclList {
        if let Some(shared) = self.lists.get(acl.as_slice()) {
            return shared.clone();
        }
        if self.lists.len() >= ACL_CACHE_PURGE_FLOOR.max(self.purge_mark * 2) {
            // Lists no node uses any more are held only by the cache.
            self.lists.retain(|list| list.holders() > 1);
            self.purge_mark = self.lists.len();
        }
        let shared = AclList::new(acl);
        self.lists.insert(shared.clone());
        shared
    }
}

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
pub(crate) fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: world_anyone(),
    }]
}

/// `ZooDefs.Ids.READ_ACL_UNSAFE`, the ACL of /zookeeper/config (ZOOKEEPER-2014).
pub(crate) fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: world_anyone(),
    }]
}

fn world_anyone() -> Id {
    Id {
        scheme: "world".to_string(),
        id: "anyone".to_string(),
    }
}

/// The nodes every tree starts with: "/", "/zookeeper", "/zookeeper/quota" and
/// "/zookeeper/config" (aversion -1 from its setACL at start-up), all with zero stats.
pub(crate) fn initial_nodes(cache: &mut AclCache) -> Nodes {
    let open = cache.intern(open_acl_unsafe());
    let read = cache.intern(read_acl_unsafe());
    let node = |acl: &AclList, child_count: u32, aversion: i32| {
        let stat = StoredStat {
            aversion,
            ..StoredStat::default()
        };
        let mut node = Node::new(acl.clone(), stat, Some(&[]));
        node.change(|header| header.set_child_count(child_count));
        node
    };
    let mut nodes = Nodes::new();
    nodes.insert(PathKey::new("/"), node(&open, 1, 0));
    nodes.insert(PathKey::new("/zookeeper"), node(&open, 2, 0));
    nodes.insert(PathKey::new("/zookeeper/quota"), node(&open, 0, 0));
    nodes.insert(PathKey::new("/zookeeper/config"), node(&read, 0, -1));
    nodes
}

/// "path/" (or "/" for the root): what every descendant's path starts with.
fn descendant_prefix(path: &str) -> String {
    if path == "/" {
        String::from("/")
    } else {
        format!("{path}/")
    }
}

/// The smallest string above every descendant of `path`: '0' is the character after '/'.
fn descendants_end(path: &str) -> String {
    let mut end = descendant_prefix(path);
    end.pop();
    end.push('0');
    end
}

/// The names of a node's children, in name order (as ZooKeeper's sorted `getChildren`
/// listings): the keys under "path/" with no further slash. A child's own descendants sort
/// right after it ("/a/b" < "/a/b-" < "/a/b/c" < "/a/b0"), so one seek past "/a/b0" skips
/// them; a node with n children costs O(n) steps plus one O(log N) seek per child that has
/// children of its own.
pub(crate) fn child_names<'a>(nodes: &'a Nodes, path: &str) -> impl Iterator<Item = &'a str> {
    let prefix = descendant_prefix(path);
    let mut keys = nodes.range::<_, str>((Bound::Excluded(prefix.as_str()), Bound::Unbounded));
    std::iter::from_fn(move || loop {
        let (key, _) = keys.next()?;
        let name = key.strip_prefix(prefix.as_str())?;
        let Some(slash) = name.find('/') else {
            return Some(name);
        };
        let child_end = descendants_end(&key[..prefix.len() + slash]);
        keys = nodes.range::<_, str>((Bound::Included(child_end.as_str()), Bound::Unbounded));
    })
}

/// How many nodes sit below `path` (children, grandchildren, ...): one range of keys.
pub(crate) fn descendant_count(nodes: &Nodes, path: &str) -> usize {
    let prefix = descendant_prefix(path);
    let end = descendants_end(path);
    nodes
        .range::<_, str>((
            Bound::Excluded(prefix.as_str()),
            Bound::Excluded(end.as_str()),
        ))
        .count()
}

/// `approximateDataSize` counts path length + data length per node.
pub(crate) fn node_size(path: &str, node: &Node) -> u64 {
    (path.len() + node.data_len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64) -> StoredStat {
        StoredStat {
            czxid,
            ..StoredStat::default()
        }
    }

    // Goal: null, empty and non-empty data stay distinct, and the child count (which shares its
    // word with the null flag) neither changes nor is changed by the data.
    #[test]
    fn data_and_child_count_are_independent() {
        let acl = AclList::new(open_acl_unsafe());
        for data in [None, Some(&b""[..]), Some(&b"spring"[..])] {
            let mut node = Node::new(acl.clone(), stat(7), data);
            assert_eq!(node.data(), data);
            assert_eq!(node.child_count(), 0);
            node.change(|header| {
                header.count_child();
                header.count_child();
            });
            assert_eq!(node.data(), data, "counting children changed the data");
            assert_eq!(node.child_count(), 2);
            for other in [None, Some(&b""[..]), Some(&[1u8; 300][..])] {
                let replaced = node.with_data(other);
                assert_eq!(replaced.data(), other);
                assert_eq!(replaced.data_len(), other.map_or(0, <[u8]>::len));
                assert_eq!(replaced.child_count(), 2, "new data lost the child count");
                assert_eq!(replaced.stat(), node.stat());
                assert_eq!(replaced.acl(), node.acl());
            }
            node.change(NodeHeader::uncount_child);
            assert_eq!(node.child_count(), 1);
            assert_eq!(node.data(), data);
        }
    }

    // Goal: a change to a node another holder shares (a snapshot copy of the tree) is made to a
    // copy, and the holder keeps the old version; a node held once is changed in place.
    #[test]
    fn change_copies_a_shared_node_only() {
        let mut node = Node::new(AclList::new(open_acl_unsafe()), stat(1), Some(b"v1"));
        let address = node.address();
        node.change(|header| header.stat.version = 1);
        assert_eq!(node.address(), address, "an unshared node was copied");

        let snapshot = node.clone();
        node.change(|header| {
            header.stat.version = 2;
            header.count_child();
        });
        assert_ne!(node.address(), address);
        assert_eq!((node.stat().version, node.child_count()), (2, 1));
        assert_eq!(node.data(), Some(&b"v1"[..]));
        assert_eq!(snapshot.stat().version, 1, "the shared copy changed");
        assert_eq!(snapshot.child_count(), 0);
        assert_eq!(snapshot.address(), address);
    }

    // Goal: the child count stops at the largest `int` (numChildren's type) without touching the
    // null flag.
    #[test]
    fn child_count_stops_at_the_largest_int() {
        let mut node = Node::new(AclList::new(Vec::new()), stat(1), None);
        node.change(|header| header.set_child_count(MAX_CHILDREN - 1));
        assert!(node.change(NodeHeader::try_count_child));
        assert_eq!(node.child_count(), MAX_CHILDREN);
        assert_eq!(node.num_children(), i32::MAX);
        assert!(!node.change(NodeHeader::try_count_child));
        assert_eq!(node.child_count(), MAX_CHILDREN);
        assert_eq!(node.data(), None);
    }

    // Goal: equal ACL lists are one shared list, and a list is found by its slice.
    #[test]
    fn the_acl_cache_shares_equal_lists() {
        let mut cache = AclCache::default();
        let a = cache.intern(open_acl_unsafe());
        let b = cache.intern(open_acl_unsafe());
        let c = cache.intern(read_acl_unsafe());
        assert_eq!(a.address(), b.address());
        assert_ne!(a.address(), c.address());
        assert_eq!(&*a, open_acl_unsafe().as_slice());
        assert_eq!(a, AclList::new(open_acl_unsafe()), "equality is by content");
    }
}
