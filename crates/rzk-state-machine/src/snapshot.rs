//! Snapshot bytes: deterministic (sessions by id, ACL lists by first use, nodes by path) and
//! sealed with a CRC32C.
//!
//! ```text
//! header:  "RZKS" | u32 version = 2 | u64 body length
//! body:    i64 last_zxid
//!          u32 sessions   { i64 id, i32 timeout_ms }
//!          u32 acl lists  { vector<ACL> }
//!          u64 nodes      { ustring path, u32 acl list index, buffer data (-1 = null),
//!                           i64 czxid, mzxid, ctime, mtime, pzxid, ephemeral_owner,
//!                           i32 version, cversion, aversion }
//! trailer: u32 crc32c(body)
//! ```
//! The checksum trails the body so that the bytes can be written as they are encoded, in
//! pieces that stay in the CPU's cache on their way to the compressor and the file (version 1,
//! still read, had it in the header, after the length: "RZKS" | 1 | u64 length | u32 crc | body).
//! The length is known before encoding (see [`SnapshotCopy::encoded_len`]).
//!
//! Nodes are sorted by path, so a parent always comes before its children (a parent's path
//! is a prefix of its children's); the node map is kept in that order, so encoding needs no
//! sort. Restore checks every structural rule before linking a node and answers
//! `SnapshotError` instead of panicking.
//!
//! Encoding works on a [`SnapshotCopy`], taken between applies and encoded anywhere: the tree
//! in it is shared with the live state (see the crate docs), so taking it costs O(sessions).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, OnceLock};

use rzk_proto::Acl;

use crate::jute::{Reader, Writer};
use crate::path::{split_parent, validate_name};
use crate::tree::{node_kind, Node, NodeKind, Nodes, StoredStat};
use crate::{Options, Session, SessionId, SnapshotError, StateMachine};

const MAGIC: &[u8; 4] = b"RZKS";
/// Version 1: CRC in the header (read only). Version 2: CRC after the body (written).
const FORMAT_VERSION_CRC_FIRST: u32 = 1;
const FORMAT_VERSION: u32 = 2;
const HEADER_BYTES_V1: usize = 4 + 4 + 8 + 4;
const HEADER_BYTES: usize = 4 + 4 + 8;
const TRAILER_BYTES: usize = 4;
/// Encoding of one node without its path and data: path length, ACL index, data length (-1
/// when null), 6 longs, 3 ints. Also the smallest node.
const NODE_BYTES_FIXED: usize = 4 + 4 + 4 + 6 * 8 + 3 * 4;
const NODE_BYTES_MIN: usize = NODE_BYTES_FIXED;
/// One session: id and timeout.
const SESSION_BYTES: usize = 8 + 4;
/// [`SnapshotCopy::encode_to`] hands its output over in pieces of about this size: small
/// enough to stay in a core's L2 cache while the compressor, the checksum and the file read
/// them, large enough that a write is not a per-node cost.
const CHUNK_BYTES: usize = 256 * 1024;

/// What a snapshot holds, frozen at one zxid: the tree (shared with the live state, so the copy
/// is O(1)) and the session table (copied: ids and timeouts only).
pub struct SnapshotCopy {
    last_zxid: i64,
    sessions: Vec<(SessionId, i32)>,
    nodes: Nodes,
    /// Sum of path and data lengths over the nodes: with the node count, the encoding's length.
    data_size: u64,
    /// Made by the first of [`SnapshotCopy::encoded_len`] and the encoding that needs it.
    acl_table: OnceLock<AclTable>,
}

/// The distinct ACL lists in order of first use along the path-ordered nodes, and each node's
/// list index.
struct AclTable {
    lists: Vec<Arc<[Acl]>>,
    index_of: Vec<u32>,
    /// The lists' encoding, as it goes into the snapshot.
    encoded: Vec<u8>,
}

// The copy is made under the server's lock and encoded on a blocking thread.
const _: fn() = || {
    fn send<T: Send + Sync + 'static>() {}
    send::<SnapshotCopy>();
};

impl SnapshotCopy {
    pub(crate) fn new(state: &StateMachine) -> SnapshotCopy {
        SnapshotCopy {
            last_zxid: state.last_zxid,
            sessions: state.sessions(),
            nodes: state.nodes.clone(),
            data_size: state.data_size,
            acl_table: OnceLock::new(),
        }
    }

    /// The last zxid the copy includes.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Exactly how many bytes [`SnapshotCopy::encode_to`] writes. The first call (or encoding)
    /// walks the nodes once for their ACL lists; the rest is arithmetic.
    pub fn encoded_len(&self) -> u64 {
        let table = self.acl_table();
        let fixed = HEADER_BYTES + 8 + 4 + 4 + table.encoded.len() + 8 + TRAILER_BYTES;
        fixed as u64
            + self.sessions.len() as u64 * SESSION_BYTES as u64
            + self.nodes.len() as u64 * NODE_BYTES_FIXED as u64
            + self.data_size
    }

    /// The snapshot bytes (see the module docs) in one buffer. O(znodes); needs no access to
    /// the live state.
    pub fn encode(&self) -> Vec<u8> {
        let len = usize::try_from(self.encoded_len()).expect("a snapshot larger than memory");
        let mut bytes = Vec::with_capacity(len);
        self.encode_to(&mut bytes)
            .expect("writing into memory does not fail and the length is exact");
        bytes
    }

    /// Write the snapshot bytes (see the module docs) to `out` as they are encoded, in pieces of
    /// about 256 KiB: [`SnapshotCopy::encoded_len`] bytes in all. Fails only when `out`
    /// does, or (a bug, reported as an error rather than a bad file) when the bytes written are
    /// not the length announced.
    pub fn encode_to(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let announced = self.encoded_len();
        let table = self.acl_table();
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        let body_len = announced - (HEADER_BYTES + TRAILER_BYTES) as u64;
        header.extend_from_slice(&body_len.to_be_bytes());
        out.write_all(&header)?;
        let mut body = Chunks::new(out);
        body.writer.i64(self.last_zxid);
        body.writer
            .u32(u32::try_from(self.sessions.len()).expect("more than u32::MAX sessions"));
        for (id, timeout_ms) in &self.sessions {
            body.writer.i64(*id);
            body.writer.i32(*timeout_ms);
            body.hand_over_when_full()?;
        }
        body.writer
            .u32(u32::try_from(table.lists.len()).expect("more than u32::MAX ACL lists"));
        body.writer.bytes.extend_from_slice(&table.encoded);
        body.writer.u64(self.nodes.len() as u64);
        // The walk is bound by memory latency (each node, its path and its data are separate
        // allocations): ask for the nodes a few steps ahead, and their data a few steps later.
        let mut ahead = self.nodes.iter().skip(PREFETCH_NODES_AHEAD);
        let mut data_ahead = self.nodes.iter().skip(PREFETCH_DATA_AHEAD);
        for ((path, node), acl_index) in self.nodes.iter().zip(&table.index_of) {
            if let Some((path, node)) = ahead.next() {
                prefetch(path.as_ptr());
                prefetch(Arc::as_ptr(node).cast::<u8>());
            }
            if let Some(data) = data_ahead.next().and_then(|(_, node)| node.data.as_deref()) {
                prefetch(data.as_ptr());
            }
            write_node(&mut body.writer, path, *acl_index, node);
            body.hand_over_when_full()?;
        }
        let (written, crc) = body.finish()?;
        out.write_all(&crc.to_be_bytes())?;
        let written = (HEADER_BYTES + TRAILER_BYTES) as u64 + written;
        if written != announced {
            return Err(io::Error::other(format!(
                "snapshot encoder wrote {written} bytes where it announced {announced} (a bug in rzk: please report it); the snapshot is not used"
            )));
        }
        Ok(())
    }

    fn acl_table(&self) -> &AclTable {
        self.acl_table.get_or_init(|| acl_table(&self.nodes))
    }
}

/// The body on its way out: encoded into a buffer that is checksummed and handed to the output
/// whenever it holds [`CHUNK_BYTES`].
struct Chunks<'a> {
    writer: Writer,
    out: &'a mut dyn io::Write,
    crc: u32,
    handed_over: u64,
}

impl<'a> Chunks<'a> {
    fn new(out: &'a mut dyn io::Write) -> Chunks<'a> {
        Chunks {
            // A piece is handed over once it reaches CHUNK_BYTES, so it ends with one node past
            // that: room for a 64 KiB one; a larger node (up to jute.maxbuffer) grows it once.
            writer: Writer {
                bytes: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
            },
            out,
            crc: 0,
            handed_over: 0,
        }
    }

    fn hand_over_when_full(&mut self) -> io::Result<()> {
        if self.writer.bytes.len() >= CHUNK_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let bytes = &self.writer.bytes;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.out.write_all(bytes)?;
        self.handed_over += bytes.len() as u64;
        self.writer.bytes.clear();
        Ok(())
    }

    /// Hands over the rest; returns the body's length and checksum.
    fn finish(mut self) -> io::Result<(u64, u32)> {
        self.hand_over()?;
        Ok((self.handed_over, self.crc))
    }
}

/// How far ahead [`SnapshotCopy::encode_to`] prefetches nodes (and paths), and their data (which
/// needs the node first). Measured on a 700,000-znode tree under create load: encoding took
/// 1.7-2.2 ns per snapshot byte instead of 3.0-3.9 (BENCHMARKS.md).
const PREFETCH_NODES_AHEAD: usize = 8;
const PREFETCH_DATA_AHEAD: usize = 4;

/// A hint that `ptr` will be read soon; no effect on correctness.
#[inline(always)]
fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and changes no memory, for any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

fn acl_table(nodes: &Nodes) -> AclTable {
    let mut lists: Vec<Arc<[Acl]>> = Vec::new();
    let mut by_pointer: HashMap<*const Acl, u32> = HashMap::new();
    let mut index_of = Vec::with_capacity(nodes.len());
    let mut ahead = nodes.values().skip(PREFETCH_NODES_AHEAD);
    for node in nodes.values() {
        if let Some(node) = ahead.next() {
            prefetch(Arc::as_ptr(node).cast::<u8>());
        }
        let acl = &node.acl;
        let index = *by_pointer.entry(acl.as_ptr()).or_insert_with(|| {
            lists.push(Arc::clone(acl));
            u32::try_from(lists.len() - 1).expect("more than u32::MAX ACL lists")
        });
        index_of.push(index);
    }
    let mut encoded = Writer { bytes: Vec::new() };
    for list in &lists {
        encoded.acl_list(list);
    }
    AclTable {
        lists,
        index_of,
        encoded: encoded.bytes,
    }
}

fn write_node(body: &mut Writer, path: &str, acl_index: u32, node: &Node) {
    body.string(path);
    body.u32(acl_index);
    body.buffer(node.data.as_deref());
    let stat = &node.stat;
    for value in [
        stat.czxid,
        stat.mzxid,
        stat.ctime,
        stat.mtime,
        stat.pzxid,
        stat.ephemeral_owner,
    ] {
        body.i64(value);
    }
    for value in [stat.version, stat.cversion, stat.aversion] {
        body.i32(value);
    }
}

pub(crate) fn read(options: Options, bytes: &[u8]) -> Result<StateMachine, SnapshotError> {
    let body = check_header(bytes)?;
    let mut reader = Reader::new(body);
    let state = read_body(options, &mut reader).map_err(SnapshotError::Corrupt)?;
    if reader.remaining() != 0 {
        return Err(SnapshotError::Corrupt(format!(
            "{} bytes after the last node",
            reader.remaining()
        )));
    }
    Ok(state)
}

fn check_header(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let corrupt = |reason: &str| SnapshotError::Corrupt(reason.to_string());
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return Err(corrupt("missing RZKS header"));
    }
    let mut header = Reader::new(&bytes[4..]);
    let version = header.u32().map_err(SnapshotError::Corrupt)?;
    let length = header.u64().map_err(SnapshotError::Corrupt)?;
    let (body, crc) = match version {
        FORMAT_VERSION => {
            let Some(body_end) = bytes.len().checked_sub(TRAILER_BYTES) else {
                return Err(corrupt("shorter than its header and checksum"));
            };
            let body = bytes
                .get(HEADER_BYTES..body_end)
                .ok_or_else(|| corrupt("shorter than its header and checksum"))?;
            let trailer: [u8; 4] = bytes[body_end..].try_into().expect("4 bytes");
            (body, u32::from_be_bytes(trailer))
        }
        FORMAT_VERSION_CRC_FIRST => {
            let crc = header.u32().map_err(SnapshotError::Corrupt)?;
            (&bytes[HEADER_BYTES_V1..], crc)
        }
        other => return Err(SnapshotError::UnsupportedVersion(other)),
    };
    if length != body.len() as u64 {
        return Err(corrupt("body length does not match the header"));
    }
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(body)
}

fn read_body(options: Options, reader: &mut Reader<'_>) -> Result<StateMachine, String> {
    let mut state = StateMachine::new(options);
    state.nodes = Nodes::new();
    state.data_size = 0;
    state.last_zxid = reader.i64()?;
    let sessions = reader.u32()? as usize;
    for _ in 0..sessions {
        let id = reader.i64()?;
        let timeout_ms = reader.i32()?;
        let session = Session {
            timeout_ms,
            ..Session::default()
        };
        if state.sessions.insert(id, session).is_some() {
            return Err(format!("session {id:#x} listed twice"));
        }
    }
    let list_count = reader.u32()? as usize;
    let mut lists = Vec::new();
    for _ in 0..list_count {
        let list = reader.acl_list()?;
        lists.push(state.acl_cache.intern(list));
    }
    let node_count = reader.u64()?;
    if node_count.saturating_mul(NODE_BYTES_MIN as u64) > reader.remaining() as u64 {
        return Err(format!("node count {node_count} exceeds the bytes left"));
    }
    let nodes = read_nodes(&mut state, reader, &lists, node_count as usize)?;
    state.nodes = fill_map(nodes);
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        if !state.nodes.contains_key(special) {
            return Err(format!("{special} is missing"));
        }
    }
    Ok(state)
}

/// How many entries a leaf of the map's B+tree holds (`imbl`'s chunk size).
const MAP_LEAF_ENTRIES: usize = 16;

/// The map of path-ordered `nodes`, with full leaves. Inserted in order, a B+tree leaves every
/// leaf half full (a full leaf splits in two and only the right half gets more keys), which on
/// a large tree costs about 25 bytes per node. So the first half of every leaf's worth of nodes
/// goes in first (the leaves split into those halves), then the second halves, which land
/// after them in their leaves without splitting them. Correct for any leaf size; the layout
/// only comes out full when [`MAP_LEAF_ENTRIES`] is the real one.
fn fill_map(nodes: Vec<PathNode>) -> Nodes {
    let mut map = Nodes::new();
    let mut second_halves = Vec::with_capacity(nodes.len() / 2 + MAP_LEAF_ENTRIES);
    for (index, (path, node)) in nodes.into_iter().enumerate() {
        if index % MAP_LEAF_ENTRIES < MAP_LEAF_ENTRIES / 2 {
            map.insert(path, node);
        } else {
            second_halves.push((path, node));
        }
    }
    for (path, node) in second_halves {
        map.insert(path, node);
    }
    map
}

/// A node read from a snapshot, with its path.
type PathNode = (Box<str>, Arc<Node>);

/// Every node of the stream, in path order, with its children counted and its kind indexed.
/// A parent comes before its children (its path is a prefix of theirs), so it is found in the
/// nodes read so far: usually it is the previous node's parent, else a binary search finds it.
/// Checks what [`StateMachine::link`] would assert, so a corrupt snapshot is an error and not a
/// panic.
fn read_nodes(
    state: &mut StateMachine,
    reader: &mut Reader<'_>,
    lists: &[Arc<[Acl]>],
    node_count: usize,
) -> Result<Vec<PathNode>, String> {
    let extended = state.options.extended_types_enabled;
    let mut nodes: Vec<PathNode> = Vec::with_capacity(node_count);
    let mut last_parent = usize::MAX;
    for _ in 0..node_count {
        let (path, node) = read_node(reader, lists)?;
        if nodes
            .last()
            .is_some_and(|(previous, _)| &**previous >= path)
        {
            return Err(format!("node {path} out of order"));
        }
        if path != "/" {
            let (parent_path, name) =
                split_parent(path).ok_or_else(|| format!("invalid path {path:?}"))?;
            // The parent's path was validated when it was read, so the path is valid when its
            // last name is and it is the parent's path, a slash and the name ("//a" splits
            // into "/" and "a" too).
            if validate_name(name).is_err() || path.starts_with("//") {
                return Err(format!("invalid path {path:?}"));
            }
            if nodes
                .get(last_parent)
                .is_none_or(|(p, _)| &**p != parent_path)
            {
                last_parent = nodes
                    .binary_search_by(|(p, _)| (**p).cmp(parent_path))
                    .map_err(|_| format!("{path}: parent missing"))?;
            }
            let parent =
                Arc::get_mut(&mut nodes[last_parent].1).expect("a node being read is not shared");
            if let NodeKind::Ephemeral(_) = node_kind(parent.stat.ephemeral_owner, extended) {
                return Err(format!("{path}: parent is ephemeral"));
            }
            parent.child_count = parent
                .child_count
                .checked_add(1)
                .ok_or_else(|| format!("{parent_path}: more than u32::MAX children"))?;
        }
        if let NodeKind::Ephemeral(owner) = node_kind(node.stat.ephemeral_owner, extended) {
            if !state.sessions.contains_key(&owner) {
                return Err(format!("{path}: owner session {owner:#x} is not open"));
            }
        }
        state.index_kind(path, &node);
        state.data_size += crate::tree::node_size(path, &node);
        nodes.push((Box::from(path), Arc::new(node)));
    }
    Ok(nodes)
}

fn read_node<'a>(reader: &mut Reader<'a>, lists: &[Arc<[Acl]>]) -> Result<(&'a str, Node), String> {
    let path = reader.str()?;
    let acl_index = reader.u32()? as usize;
    let acl = lists
        .get(acl_index)
        .ok_or_else(|| format!("{path}: ACL index {acl_index} out of range"))?;
    let data = reader.buffer()?.map(Box::from);
    let stat = StoredStat {
        czxid: reader.i64()?,
        mzxid: reader.i64()?,
        ctime: reader.i64()?,
        mtime: reader.i64()?,
        pzxid: reader.i64()?,
        ephemeral_owner: reader.i64()?,
        version: reader.i32()?,
        cversion: reader.i32()?,
        aversion: reader.i32()?,
    };
    Ok((
        path,
        Node {
            data,
            acl: Arc::clone(acl),
            stat,
            child_count: 0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: filling the map in two passes keeps every node, in order, at every size around the
    // leaf boundaries.
    #[test]
    fn fill_map_keeps_every_node_in_order() {
        let acl: Arc<[Acl]> = Arc::from(Vec::new());
        for count in (0..4 * MAP_LEAF_ENTRIES + 3).chain([1000, 4099]) {
            let nodes: Vec<PathNode> = (0..count)
                .map(|index| {
                    let node = Node {
                        data: Some(Box::from(index.to_be_bytes().as_slice())),
                        acl: Arc::clone(&acl),
                        stat: StoredStat::default(),
                        child_count: 0,
                    };
                    (Box::from(format!("/n{index:06}")), Arc::new(node))
                })
                .collect();
            let expected: Vec<PathNode> = nodes.clone();
            let map = fill_map(nodes);
            assert_eq!(map.len(), count);
            let filled: Vec<PathNode> = map.into_iter().collect();
            assert_eq!(filled, expected, "{count} nodes");
        }
    }
}
