//! The znode tree: nodes keyed by full path in one persistent ordered map, stored Stat
//! (`StatPersisted`) and the Stat clients see (`DataNode.copyStat`).
//!
//! A node does not list its children: they are the keys under "path/" that have no further
//! slash, and the map keeps them in name order. A node keeps only their count.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

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
/// Packed to 4-byte alignment: 60 bytes instead of 64, so a [`Node`] behind its `Arc` fits
/// jemalloc's 112-byte class instead of the 128-byte one (16 MiB less per million znodes).
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

/// Every znode by full path, in path order. Nodes sit behind `Arc` so that copying a B+tree leaf
/// (when a write meets a leaf a snapshot copy still shares) copies pointers, not nodes.
pub(crate) type Nodes = imbl::OrdMap<Box<str>, Arc<Node>>;

/// One znode. Data is `None` for null (distinct from empty); the ACL list is shared between
/// nodes with equal lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub data: Option<Box<[u8]>>,
    pub acl: Arc<[Acl]>,
    pub stat: StoredStat,
    /// How many children the node has (they are the keys under "path/", see [`child_names`]).
    pub child_count: u32,
}

// One allocation per node holds the `Arc` counts and the node: 112 bytes, a jemalloc size class.
const _: () = assert!(std::mem::size_of::<Node>() + 16 <= 112);

/// What `ephemeralOwner` says a node is (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
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
        self.data
            .as_ref()
            .map_or(0, |data| i32::try_from(data.len()).unwrap_or(i32::MAX))
    }

    pub fn num_children(&self) -> i32 {
        i32::try_from(self.child_count).unwrap_or(i32::MAX)
    }

    /// `DataNode.copyStat`: cversion reported as creates + deletes (`2 × stored − numChildren`),
    /// container and TTL markers shown as owner 0.
    pub fn client_stat(&self, extended_types_enabled: bool) -> Stat {
        let stored = &self.stat;
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
    lists: HashSet<Arc<[Acl]>>,
    /// Size after the last purge: purge again once the cache has doubled.
    purge_mark: usize,
}

/// Below this many distinct lists the cache is never purged (purging costs a scan).
const ACL_CACHE_PURGE_FLOOR: usize = 1024;

impl AclCache {
    pub fn intern(&mut self, acl: Vec<Acl>) -> Arc<[Acl]> {
        if let Some(shared) = self.lists.get(acl.as_slice()) {
            return Arc::clone(shared);
        }
        if self.lists.len() >= ACL_CACHE_PURGE_FLOOR.max(self.purge_mark * 2) {
            // Lists no node uses any more are held only by the cache.
            self.lists.retain(|list| Arc::strong_count(list) > 1);
            self.purge_mark = self.lists.len();
        }
        let shared: Arc<[Acl]> = Arc::from(acl);
        self.lists.insert(Arc::clone(&shared));
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
    let node = |acl: &Arc<[Acl]>, child_count: u32, aversion: i32| {
        Arc::new(Node {
            data: Some(Box::default()),
            acl: Arc::clone(acl),
            stat: StoredStat {
                aversion,
                ..StoredStat::default()
            },
            child_count,
        })
    };
    let mut nodes = Nodes::new();
    nodes.insert(Box::from("/"), node(&open, 1, 0));
    nodes.insert(Box::from("/zookeeper"), node(&open, 2, 0));
    nodes.insert(Box::from("/zookeeper/quota"), node(&open, 0, 0));
    nodes.insert(Box::from("/zookeeper/config"), node(&read, 0, -1));
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
    (path.len() + node.data.as_ref().map_or(0, |data| data.len())) as u64
}
