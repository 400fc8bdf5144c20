//! Snapshot bytes: deterministic (sessions by id, nodes by path, ACL lists by first use) and
//! sealed with a CRC32C.
//!
//! ```text
//! header:  "RZKS" | u32 version = 5
//! body:    i64 last_zxid
//!          u8 settings   bit 0 skipACL, bit 1 extendedTypesEnabled, bit 2 recorded (a
//!                        Settings entry was applied); the other bits zero
//!          u32 sessions  { i64 id, i32 timeout_ms, u64 owner }
//!          u64 nodes     { node }, in path order
//! trailer: u64 body length | u32 crc32c(body)
//!
//! node:    varint shared       bytes the path shares with the previous node's path
//!          varint n, n bytes   the rest of the path
//!          varint acl          the node's ACL list, by index; a list's first use (the next
//!                              unused index) is followed by the list itself, vector<ACL>
//!          u8 flags            DATA, MZXID, MTIME, PZXID, OWNER, VERSIONS (below)
//!          [DATA]     varint n, n bytes        the data; without DATA it is null
//!          zigzag czxid - the previous node's czxid
//!          zigzag ctime - the previous node's ctime
//!          [MZXID]    zigzag mzxid - czxid      without the flag, equal
//!          [MTIME]    zigzag mtime - ctime      without the flag, equal
//!          [PZXID]    zigzag pzxid - czxid      without the flag, equal
//!          [OWNER]    i64 ephemeral_owner       without the flag, 0
//!          [VERSIONS] zigzag version, cversion, aversion; without the flag, all 0
//! ```
//! (varint: LEB128; zigzag: a signed varint, small magnitudes short.) A node that was never
//! changed, with its path sharing its parent's, takes its name, its data and 6 to 10 bytes: the
//! fixed layout of formats 1 and 2 took 88 bytes besides the path and data, so the compressor,
//! the checksum and the file see about half as many bytes on a tree of 100-byte values. The
//! encoding is one pass over the nodes (ACL lists are defined where first used) and its
//! length is known only at the end, hence the trailer; the bytes can be written as they are
//! encoded, in pieces that stay in the CPU's cache on their way to the compressor and the file.
//!
//! The settings are the replicated `skipACL` and `extendedTypesEnabled` (see the crate docs):
//! restored, they override the [`Options`] given to `restore`, and the nodes are read with
//! the stored extendedTypesEnabled.
//!
//! A session's owner is the connection its writes must come from (see `Session::owner`).
//!
//! Formats 1 to 4 are still read, their sessions with owner 0 (any connection), and formats 1
//! to 3 with the settings taken from the `Options` (not recorded). Format 4 is format 5
//! without the owners; format 3 is format 4 without the settings byte. Formats 1 and 2:
//!
//! ```text
//! header:  "RZKS" | u32 version | u64 body length | [version 1: u32 crc32c(body)]
//! body:    i64 last_zxid
//!          u32 sessions   { i64 id, i32 timeout_ms }
//!          u32 acl lists  { vector<ACL> }
//!          u64 nodes      { ustring path, u32 acl list index, buffer data (-1 = null),
//!                           i64 czxid, mzxid, ctime, mtime, pzxid, ephemeral_owner,
//!                           i32 version, cversion, aversion }
//! trailer: [version 2: u32 crc32c(body)]
//! ```
//!
//! Nodes are sorted by path, so a parent always comes before its children (a parent's path
//! is a prefix of its children's); the node map is kept in that order, so encoding needs no
//! sort. Restore checks every structural rule before linking a node and answers
//! `SnapshotError` instead of panicking.
//!
//! Encoding works on a [`SnapshotCopy`], taken between applies and encoded anywhere: the tree
//! in it is shared with the live state (see the crate docs), so taking it costs O(sessions).

use std::collections::{HashMap, VecDeque};
use std::io;

use crate::entry::{settings_flags, SETTINGS_EXTENDED_TYPES, SETTINGS_SKIP_ACL};
use crate::jute::{Reader, Writer};
use crate::path::{split_parent, validate_name};
use crate::tree::{
    node_kind, reads_as_ttl_owner, AclCache, AclList, Node, NodeHeader, NodeKind, Nodes, PathKey,
    StoredStat, MAX_CHILDREN,
};
use crate::{Options, Session, SessionId, SnapshotError, StateMachine};

const MAGIC: &[u8; 4] = b"RZKS";
/// Version 1: fixed-layout nodes, CRC in the header (read only).
const FORMAT_VERSION_CRC_FIRST: u32 = 1;
/// Version 2: fixed-layout nodes, CRC after the body (read only; written for tests).
const FORMAT_VERSION_FIXED: u32 = 2;
/// Version 3: compact nodes, length and CRC after the body (read only; written for tests).
const FORMAT_VERSION_COMPACT: u32 = 3;
/// Version 4: version 3 with the settings after last_zxid (read only; written for tests).
const FORMAT_VERSION_SETTINGS: u32 = 4;
/// Version 5: version 4 with each session's owner (written).
const FORMAT_VERSION: u32 = 5;
/// The settings byte of formats 4 and 5 (see the module docs): a Settings entry's flags, and this.
const SETTINGS_RECORDED: u8 = 4;
const KNOWN_SETTINGS: u8 = SETTINGS_SKIP_ACL | SETTINGS_EXTENDED_TYPES | SETTINGS_RECORDED;
const HEADER_BYTES_V1: usize = 4 + 4 + 8 + 4;
const HEADER_BYTES_V2: usize = 4 + 4 + 8;
const TRAILER_BYTES_V2: usize = 4;
const HEADER_BYTES: usize = 4 + 4;
const TRAILER_BYTES: usize = 8 + 4;
/// Encoding of one fixed-layout node without its path and data: path length, ACL index, data
/// length (-1 when null), 6 longs, 3 ints. Also the smallest such node.
const FIXED_NODE_BYTES_MIN: usize = 4 + 4 + 4 + 6 * 8 + 3 * 4;
/// The smallest compact node: shared, length, ACL index, flags, czxid and ctime of a byte each.
const COMPACT_NODE_BYTES_MIN: usize = 6;
/// Compact node flags (see the module docs).
const HAS_DATA: u8 = 1;
const HAS_MZXID: u8 = 2;
const HAS_MTIME: u8 = 4;
const HAS_PZXID: u8 = 8;
const HAS_OWNER: u8 = 16;
const HAS_VERSIONS: u8 = 32;
const KNOWN_FLAGS: u8 = HAS_DATA | HAS_MZXID | HAS_MTIME | HAS_PZXID | HAS_OWNER | HAS_VERSIONS;
/// [`SnapshotCopy::encode_to`] hands its output over in pieces of about this size: small
/// enough to stay in a core's L2 cache while the compressor, the checksum and the file read
/// them, large enough that a write is not a per-node cost.
const CHUNK_BYTES: usize = 256 * 1024;

/// What a snapshot holds, frozen at one zxid: the tree (shared with the live state, so the copy
/// is O(1)), the session table (copied: ids, timeouts and owners) and the replicated settings.
pub struct SnapshotCopy {
    last_zxid: i64,
    /// The settings byte of formats 4 and 5 (see the module docs).
    settings: u8,
    /// Id, timeout, owner.
    sessions: Vec<(SessionId, i32, u64)>,
    nodes: Nodes,
    /// Sum of path and data lengths over the nodes: a size hint for an encoding in memory.
    data_size: u64,
}

// The copy is made under the server's lock and encoded on a blocking thread.
const _: fn() = || {
    fn send<T: Send + Sync + 'static>() {}
    send::<SnapshotCopy>();
};

impl SnapshotCopy {
    pub(crate) fn new(state: &StateMachine) -> SnapshotCopy {
        let settings = settings_flags(state.options.skip_acl, state.options.extended_types_enabled)
            | (u8::from(state.settings_recorded) * SETTINGS_RECORDED);
        SnapshotCopy {
            last_zxid: state.last_zxid,
            settings,
            sessions: state
                .sessions
                .iter()
                .map(|(id, session)| (*id, session.timeout_ms, session.owner))
                .collect(),
            nodes: state.nodes.clone(),
            data_size: state.data_size,
        }
    }

    /// The last zxid the copy includes.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The snapshot bytes (see the module docs) in one buffer. O(znodes); needs no access to
    /// the live state.
    pub fn encode(&self) -> Vec<u8> {
        // About right for a tree of unchanged nodes; the buffer grows if not.
        let hint = self.data_size + self.nodes.len() as u64 * 12 + 64;
        let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        self.encode_to(&mut bytes)
            .expect("writing into memory does not fail");
        bytes
    }

    /// Write the snapshot bytes (see the module docs) to `out` as they are encoded, in pieces of
    /// about 256 KiB, in one pass over the nodes; returns how many bytes it wrote. Fails only
    /// when `out` does.
    pub fn encode_to(&self, out: &mut dyn io::Write) -> io::Result<u64> {
        self.encode_compact(FORMAT_VERSION, out)
    }

    /// The same state in format 3 (format 4 without the settings), which rzk no longer writes
    /// but still reads: for tests of that reader only.
    #[doc(hidden)]
    pub fn encode_format_3(&self) -> Vec<u8> {
        self.encode_older_compact(FORMAT_VERSION_COMPACT)
    }

    /// The same state in format 4 (format 5 without the session owners), which rzk no longer
    /// writes but still reads: for tests of that reader only.
    #[doc(hidden)]
    pub fn encode_format_4(&self) -> Vec<u8> {
        self.encode_older_compact(FORMAT_VERSION_SETTINGS)
    }

    fn encode_older_compact(&self, version: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_compact(version, &mut bytes)
            .expect("writing into memory does not fail");
        bytes
    }

    /// Format 5, 4 (without the owners) or 3 (without the settings either).
    fn encode_compact(&self, version: u32, out: &mut dyn io::Write) -> io::Result<u64> {
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&version.to_be_bytes());
        out.write_all(&header)?;
        let mut body = Chunks::new(out);
        self.write_sessions(&mut body, version)?;
        body.writer.u64(self.nodes.len() as u64);
        let mut encoder = NodeEncoder::default();
        // The walk is bound by memory latency (a node's path and the node are separate
        // allocations, and its data starts past the node's first cache line): ask for the paths
        // and nodes a few steps ahead, and the data a few steps later (finding it reads the node).
        // One walk of the map feeds a window of the nodes ahead (walking it three times, one
        // iterator per distance, cost more than the prefetching saved).
        let mut walk = self.nodes.iter();
        let mut ahead = VecDeque::with_capacity(PREFETCH_NODES_AHEAD + 1);
        loop {
            while ahead.len() <= PREFETCH_NODES_AHEAD {
                let Some((path, node)) = walk.next() else {
                    break;
                };
                prefetch(path.as_ptr());
                prefetch(node.address());
                ahead.push_back((path, node));
            }
            let Some((path, node)) = ahead.pop_front() else {
                break;
            };
            if let Some(data) = ahead
                .get(PREFETCH_DATA_AHEAD - 1)
                .and_then(|(_, node)| node.data())
            {
                prefetch(data.as_ptr());
            }
            encoder.write(&mut body.writer, path, node);
            body.hand_over_when_full()?;
        }
        let (body_len, crc) = body.finish()?;
        let mut trailer = Vec::with_capacity(TRAILER_BYTES);
        trailer.extend_from_slice(&body_len.to_be_bytes());
        trailer.extend_from_slice(&crc.to_be_bytes());
        out.write_all(&trailer)?;
        Ok((HEADER_BYTES + TRAILER_BYTES) as u64 + body_len)
    }

    /// The same state in format 2 (fixed-layout nodes), which rzk no longer writes but still
    /// reads: for tests of that reader only.
    #[doc(hidden)]
    pub fn encode_format_2(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut chunks = Chunks::new(&mut body);
        self.write_sessions(&mut chunks, FORMAT_VERSION_FIXED)
            .expect("writing into memory does not fail");
        let (lists, index_of) = fixed_acl_table(&self.nodes);
        chunks
            .writer
            .u32(u32::try_from(lists.len()).expect("more than u32::MAX ACL lists"));
        for list in &lists {
            chunks.writer.acl_list(list);
        }
        chunks.writer.u64(self.nodes.len() as u64);
        for ((path, node), acl_index) in self.nodes.iter().zip(index_of) {
            write_fixed_node(&mut chunks.writer, path, acl_index, node);
        }
        let (_, crc) = chunks.finish().expect("writing into memory does not fail");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION_FIXED.to_be_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// The body's start: the last zxid, the settings (formats 4 and 5) and the session table
    /// (with owners in format 5), as `version` lays them out.
    fn write_sessions(&self, body: &mut Chunks<'_>, version: u32) -> io::Result<()> {
        body.writer.i64(self.last_zxid);
        if has_settings(version) {
            body.writer.u8(self.settings);
        }
        body.writer
            .u32(u32::try_from(self.sessions.len()).expect("more than u32::MAX sessions"));
        for (id, timeout_ms, owner) in &self.sessions {
            body.writer.i64(*id);
            body.writer.i32(*timeout_ms);
            if version == FORMAT_VERSION {
                body.writer.u64(*owner);
            }
            body.hand_over_when_full()?;
        }
        Ok(())
    }
}

/// Whether a body of this format version stores the settings byte.
fn has_settings(version: u32) -> bool {
    version == FORMAT_VERSION || version == FORMAT_VERSION_SETTINGS
}

/// Whether a body of this format version lays its nodes out compactly.
fn is_compact(version: u32) -> bool {
    has_settings(version) || version == FORMAT_VERSION_COMPACT
}

/// The compact node encoding (see the module docs), which refers to the node before.
#[derive(Default)]
struct NodeEncoder<'a> {
    previous_path: &'a str,
    previous_czxid: i64,
    previous_ctime: i64,
    /// Each ACL list written so far (by address: equal lists are one shared list), by index.
    acl_indexes: HashMap<usize, u64>,
    /// The previous node's list (address) and index: most nodes share their neighbour's list.
    previous_acl: (usize, u64),
}

impl<'a> NodeEncoder<'a> {
    fn write(&mut self, out: &mut Writer, path: &'a str, node: &Node) {
        let shared = common_prefix(path.as_bytes(), self.previous_path.as_bytes());
        out.varint(shared as u64);
        out.varint((path.len() - shared) as u64);
        out.bytes.extend_from_slice(&path.as_bytes()[shared..]);
        self.previous_path = path;
        self.write_acl(out, node.acl());
        let stat = *node.stat();
        let versions = [stat.version, stat.cversion, stat.aversion];
        let flags = [
            (node.data().is_some(), HAS_DATA),
            (stat.mzxid != stat.czxid, HAS_MZXID),
            (stat.mtime != stat.ctime, HAS_MTIME),
            (stat.pzxid != stat.czxid, HAS_PZXID),
            (stat.ephemeral_owner != 0, HAS_OWNER),
            (versions != [0; 3], HAS_VERSIONS),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        out.u8(flags);
        if let Some(data) = node.data() {
            out.varint(data.len() as u64);
            out.bytes.extend_from_slice(data);
        }
        out.zigzag(stat.czxid.wrapping_sub(self.previous_czxid));
        out.zigzag(stat.ctime.wrapping_sub(self.previous_ctime));
        (self.previous_czxid, self.previous_ctime) = (stat.czxid, stat.ctime);
        if flags & HAS_MZXID != 0 {
            out.zigzag(stat.mzxid.wrapping_sub(stat.czxid));
        }
        if flags & HAS_MTIME != 0 {
            out.zigzag(stat.mtime.wrapping_sub(stat.ctime));
        }
        if flags & HAS_PZXID != 0 {
            out.zigzag(stat.pzxid.wrapping_sub(stat.czxid));
        }
        if flags & HAS_OWNER != 0 {
            out.i64(stat.ephemeral_owner);
        }
        if flags & HAS_VERSIONS != 0 {
            for value in versions {
                out.zigzag(i64::from(value));
            }
        }
    }

    fn write_acl(&mut self, out: &mut Writer, acl: &AclList) {
        let list = acl.address();
        if list == self.previous_acl.0 {
            out.varint(self.previous_acl.1);
            return;
        }
        let next = self.acl_indexes.len() as u64;
        let index = *self.acl_indexes.entry(list).or_insert(next);
        out.varint(index);
        if index == next {
            out.acl_list(acl);
        }
        self.previous_acl = (list, index);
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

/// How far ahead [`SnapshotCopy::encode_to`] prefetches nodes (and paths), and their data (in
/// the node's allocation, past its header; finding it needs the node first). Measured on a 700,000-znode tree under create load: encoding took
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

/// How many leading bytes `a` and `b` share, compared eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let mut at = 0;
    while at + 8 <= len {
        let word =
            |bytes: &[u8]| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let differ = word(a) ^ word(b);
        if differ != 0 {
            return at + (differ.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + a[at..len]
        .iter()
        .zip(&b[at..len])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Format 2's ACL table: the distinct lists in order of first use along the path-ordered
/// nodes, and each node's list index.
fn fixed_acl_table(nodes: &Nodes) -> (Vec<AclList>, Vec<u32>) {
    let mut lists: Vec<AclList> = Vec::new();
    let mut by_pointer: HashMap<usize, u32> = HashMap::new();
    let index_of = nodes
        .values()
        .map(|node| {
            *by_pointer.entry(node.acl().address()).or_insert_with(|| {
                lists.push(node.acl().clone());
                u32::try_from(lists.len() - 1).expect("more than u32::MAX ACL lists")
            })
        })
        .collect();
    (lists, index_of)
}

fn write_fixed_node(body: &mut Writer, path: &str, acl_index: u32, node: &Node) {
    body.string(path);
    body.u32(acl_index);
    body.buffer(node.data());
    let stat = node.stat();
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
    let (version, body) = check_header(bytes)?;
    let mut reader = Reader::new(body);
    let state = read_body(options, &mut reader, version).map_err(|error| match error {
        BodyError::Corrupt(reason) => SnapshotError::Corrupt(reason),
        BodyError::NeedsSetting(reason) => SnapshotError::NeedsSetting(reason),
    })?;
    if reader.remaining() != 0 {
        return Err(SnapshotError::Corrupt(format!(
            "{} bytes after the last node",
            reader.remaining()
        )));
    }
    Ok(state)
}

/// The format version and the body, its length and checksum verified.
fn check_header(bytes: &[u8]) -> Result<(u32, &[u8]), SnapshotError> {
    let corrupt = |reason: &str| SnapshotError::Corrupt(reason.to_string());
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return Err(corrupt("missing RZKS header"));
    }
    let mut header = Reader::new(&bytes[4..]);
    let version = header.u32().map_err(SnapshotError::Corrupt)?;
    let too_short = || corrupt("shorter than its header and trailer");
    let (length, body, crc) = match version {
        FORMAT_VERSION | FORMAT_VERSION_SETTINGS | FORMAT_VERSION_COMPACT => {
            let body_end = bytes
                .len()
                .checked_sub(TRAILER_BYTES)
                .ok_or_else(too_short)?;
            let body = bytes.get(HEADER_BYTES..body_end).ok_or_else(too_short)?;
            let mut trailer = Reader::new(&bytes[body_end..]);
            let length = trailer.u64().map_err(SnapshotError::Corrupt)?;
            (length, body, trailer.u32().map_err(SnapshotError::Corrupt)?)
        }
        FORMAT_VERSION_FIXED => {
            let length = header.u64().map_err(SnapshotError::Corrupt)?;
            let body_end = bytes
                .len()
                .checked_sub(TRAILER_BYTES_V2)
                .ok_or_else(too_short)?;
            let body = bytes.get(HEADER_BYTES_V2..body_end).ok_or_else(too_short)?;
            let trailer: [u8; 4] = bytes[body_end..].try_into().expect("4 bytes");
            (length, body, u32::from_be_bytes(trailer))
        }
        FORMAT_VERSION_CRC_FIRST => {
            let length = header.u64().map_err(SnapshotError::Corrupt)?;
            let crc = header.u32().map_err(SnapshotError::Corrupt)?;
            (length, &bytes[HEADER_BYTES_V1..], crc)
        }
        other => return Err(SnapshotError::UnsupportedVersion(other)),
    };
    if length != body.len() as u64 {
        return Err(corrupt("body length does not match the header"));
    }
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok((version, body))
}

/// Why a snapshot body does not restore.
enum BodyError {
    /// The bytes are not a valid state.
    Corrupt(String),
    /// A valid state that this server's settings cannot hold (what to set is in the text).
    NeedsSetting(String),
}

impl From<String> for BodyError {
    fn from(reason: String) -> BodyError {
        BodyError::Corrupt(reason)
    }
}

fn read_body(
    options: Options,
    reader: &mut Reader<'_>,
    version: u32,
) -> Result<StateMachine, BodyError> {
    let mut state = StateMachine::new(options);
    state.nodes = Nodes::new();
    state.data_size = 0;
    state.last_zxid = reader.i64()?;
    if has_settings(version) {
        let settings = reader.u8()?;
        if settings & !KNOWN_SETTINGS != 0 {
            return Err(format!("unknown settings flags {settings:#04x}").into());
        }
        state.options.skip_acl = settings & SETTINGS_SKIP_ACL != 0;
        state.options.extended_types_enabled = settings & SETTINGS_EXTENDED_TYPES != 0;
        state.settings_recorded = settings & SETTINGS_RECORDED != 0;
    }
    let sessions = reader.u32()? as usize;
    for _ in 0..sessions {
        let id = reader.i64()?;
        let timeout_ms = reader.i32()?;
        let owner = if version == FORMAT_VERSION {
            reader.u64()?
        } else {
            0
        };
        let session = Session {
            timeout_ms,
            owner,
            ..Session::default()
        };
        if state.sessions.insert(id, session).is_some() {
            return Err(format!("session {id:#x} listed twice").into());
        }
    }
    let mut layout = if is_compact(version) {
        NodeLayout::Compact(NodeDecoder::default())
    } else {
        let list_count = reader.u32()? as usize;
        let mut lists = Vec::new();
        for _ in 0..list_count {
            let list = reader.acl_list()?;
            lists.push(state.acl_cache.intern(list));
        }
        NodeLayout::Fixed(lists)
    };
    let node_count = reader.u64()?;
    if node_count.saturating_mul(layout.node_bytes_min() as u64) > reader.remaining() as u64 {
        return Err(format!("node count {node_count} exceeds the bytes left").into());
    }
    let settings_stored = has_settings(version);
    let nodes = read_nodes(
        &mut state,
        reader,
        &mut layout,
        node_count as usize,
        settings_stored,
    )?;
    state.nodes = fill_map(nodes);
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        if !state.nodes.contains_key(special) {
            return Err(format!("{special} is missing").into());
        }
    }
    Ok(state)
}

/// How the nodes of a body are laid out: fixed (formats 1 and 2, with the ACL lists read
/// before them) or compact (formats 3 to 5).
enum NodeLayout {
    Fixed(Vec<AclList>),
    Compact(NodeDecoder),
}

impl NodeLayout {
    fn node_bytes_min(&self) -> usize {
        match self {
            NodeLayout::Fixed(_) => FIXED_NODE_BYTES_MIN,
            NodeLayout::Compact(_) => COMPACT_NODE_BYTES_MIN,
        }
    }

    fn next(&mut self, reader: &mut Reader<'_>, acls: &mut AclCache) -> Result<PathNode, String> {
        match self {
            NodeLayout::Fixed(lists) => read_fixed_node(reader, lists),
            NodeLayout::Compact(decoder) => decoder.next(reader, acls),
        }
    }
}

/// Reads compact nodes (see the module docs), each relative to the one before.
#[derive(Default)]
struct NodeDecoder {
    path: Vec<u8>,
    czxid: i64,
    ctime: i64,
    lists: Vec<AclList>,
}

impl NodeDecoder {
    fn next(&mut self, reader: &mut Reader<'_>, acls: &mut AclCache) -> Result<PathNode, String> {
        let shared = reader.varint()?;
        let rest = reader.varint()?;
        let shared = usize::try_from(shared)
            .ok()
            .filter(|&shared| shared <= self.path.len())
            .ok_or_else(|| format!("a path shares {shared} bytes with a shorter one"))?;
        let rest = usize::try_from(rest).map_err(|_| format!("a path of {rest} bytes"))?;
        self.path.truncate(shared);
        self.path.extend_from_slice(reader.take(rest)?);
        let path = std::str::from_utf8(&self.path).map_err(|_| {
            format!(
                "invalid UTF-8 in path {:?}",
                String::from_utf8_lossy(&self.path)
            )
        })?;
        let acl_index = reader.varint()?;
        let acl = if acl_index == self.lists.len() as u64 {
            let list = acls.intern(reader.acl_list()?);
            self.lists.push(list.clone());
            list
        } else {
            let list = usize::try_from(acl_index)
                .ok()
                .and_then(|i| self.lists.get(i));
            list.ok_or_else(|| format!("{path}: ACL index {acl_index} out of range"))?
                .clone()
        };
        let flags = reader.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(format!("{path}: unknown flags {flags:#04x}"));
        }
        let data = if flags & HAS_DATA != 0 {
            let length = reader.varint()?;
            let length =
                usize::try_from(length).map_err(|_| format!("{path}: data of {length} bytes"))?;
            Some(reader.take(length)?)
        } else {
            None
        };
        let czxid = self.czxid.wrapping_add(reader.zigzag()?);
        let ctime = self.ctime.wrapping_add(reader.zigzag()?);
        (self.czxid, self.ctime) = (czxid, ctime);
        let mut relative = |flag: u8, base: i64| -> Result<i64, String> {
            Ok(if flags & flag != 0 {
                base.wrapping_add(reader.zigzag()?)
            } else {
                base
            })
        };
        let mzxid = relative(HAS_MZXID, czxid)?;
        let mtime = relative(HAS_MTIME, ctime)?;
        let pzxid = relative(HAS_PZXID, czxid)?;
        let ephemeral_owner = if flags & HAS_OWNER != 0 {
            reader.i64()?
        } else {
            0
        };
        let mut versions = [0i32; 3];
        if flags & HAS_VERSIONS != 0 {
            for version in &mut versions {
                let value = reader.zigzag()?;
                *version = i32::try_from(value).map_err(|_| format!("{path}: version {value}"))?;
            }
        }
        let [version, cversion, aversion] = versions;
        let stat = StoredStat {
            czxid,
            mzxid,
            ctime,
            mtime,
            pzxid,
            ephemeral_owner,
            version,
            cversion,
            aversion,
        };
        Ok((PathKey::new(path), Node::new(acl, stat, data)))
    }
}

/// How many entries a leaf of the map's B+tree holds (`imbl`'s chunk size).
const MAP_LEAF_ENTRIES: usize = 16;

/// The map of path-ordered `nodes`, with full leaves. Inserted in order, a B+tree leaves every
/// leaf half full (a full leaf splits in two and only the right half gets more keys). A leaf of
/// 16 slots of 16 bytes takes about 320 bytes: 40 per node half full, 20 full. So the first half
/// of every leaf's worth of nodes goes in first (the leaves split into those halves), then the second halves, which land
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
type PathNode = (PathKey, Node);

/// Every node of the stream, in path order, with its children counted and its kind indexed.
/// A parent comes before its children (its path is a prefix of theirs), so it is found in the
/// nodes read so far: usually it is the previous node's parent, else a binary search finds it.
/// Checks what [`StateMachine::link`] would assert, so a corrupt snapshot is an error and not a
/// panic. Node kinds follow the state's (stored or configured) extendedTypesEnabled; a TTL node
/// with it off needs the setting only when it came from the configuration (`settings_stored`
/// false): a stored setting is the one the nodes were written under.
fn read_nodes(
    state: &mut StateMachine,
    reader: &mut Reader<'_>,
    layout: &mut NodeLayout,
    node_count: usize,
    settings_stored: bool,
) -> Result<Vec<PathNode>, BodyError> {
    let extended = state.options.extended_types_enabled;
    let mut nodes: Vec<PathNode> = Vec::with_capacity(node_count);
    let mut last_parent = usize::MAX;
    for _ in 0..node_count {
        let (path, node) = layout.next(reader, &mut state.acl_cache)?;
        if nodes.last().is_some_and(|(previous, _)| *previous >= path) {
            return Err(format!("node {path} out of order").into());
        }
        if &*path != "/" {
            let (parent_path, name) =
                split_parent(&path).ok_or_else(|| format!("invalid path {path:?}"))?;
            // The parent's path was validated when it was read, so the path is valid when its
            // last name is and it is the parent's path, a slash and the name ("//a" splits
            // into "/" and "a" too).
            if validate_name(name).is_err() || path.starts_with("//") {
                return Err(format!("invalid path {path:?}").into());
            }
            if nodes
                .get(last_parent)
                .is_none_or(|(p, _)| &**p != parent_path)
            {
                last_parent = nodes
                    .binary_search_by(|(p, _)| (**p).cmp(parent_path))
                    .map_err(|_| BodyError::from(format!("{path}: parent missing")))?;
            }
            let parent = &mut nodes[last_parent].1;
            if let NodeKind::Ephemeral(_) = node_kind(parent.stat().ephemeral_owner, extended) {
                return Err(format!("{path}: parent is ephemeral").into());
            }
            if !parent.change(NodeHeader::try_count_child) {
                return Err(format!("{parent_path}: more than {MAX_CHILDREN} children").into());
            }
        }
        if let NodeKind::Ephemeral(owner) = node_kind(node.stat().ephemeral_owner, extended) {
            if !extended && !settings_stored && reads_as_ttl_owner(owner) {
                return Err(BodyError::NeedsSetting(format!(
                    "{path} is a TTL node (ephemeralOwner {owner:#x}) and extendedTypesEnabled is \
                     off: it was created while extendedTypesEnabled=true; set \
                     extendedTypesEnabled=true in zoo.cfg again (every member alike)"
                )));
            }
            if !state.sessions.contains_key(&owner) {
                return Err(format!("{path}: owner session {owner:#x} is not open").into());
            }
        }
        state.index_kind(&path, node.stat().ephemeral_owner);
        state.data_size += crate::tree::node_size(&path, &node);
        nodes.push((path, node));
    }
    Ok(nodes)
}

fn read_fixed_node(reader: &mut Reader<'_>, lists: &[AclList]) -> Result<PathNode, String> {
    let path = reader.str()?;
    let acl_index = reader.u32()? as usize;
    let acl = lists
        .get(acl_index)
        .ok_or_else(|| format!("{path}: ACL index {acl_index} out of range"))?;
    let data = reader.buffer()?;
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
    Ok((PathKey::new(path), Node::new(acl.clone(), stat, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the word-at-a-time common prefix agrees with a byte-by-byte count at every length
    // and position of the first difference, on both sides of each 8-byte boundary.
    #[test]
    fn common_prefix_matches_a_byte_count() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len_a in 0..base.len() {
            for differ_at in 0..=len_a {
                let a = &base[..len_a];
                let mut b = base.clone();
                if differ_at < b.len() {
                    b[differ_at] ^= 0x20;
                }
                for len_b in [differ_at, differ_at + 3, base.len()] {
                    let b = &b[..len_b.min(b.len())];
                    let expected = a.iter().zip(b).take_while(|(x, y)| x == y).count();
                    assert_eq!(common_prefix(a, b), expected, "{len_a} {differ_at} {len_b}");
                    assert_eq!(common_prefix(b, a), expected);
                }
            }
        }
    }

    // Goal: filling the map in two passes keeps every node, in order, at every size around the
    // leaf boundaries.
    #[test]
    fn fill_map_keeps_every_node_in_order() {
        let acl = AclList::new(Vec::new());
        for count in (0..4 * MAP_LEAF_ENTRIES + 3).chain([1000, 4099]) {
            let nodes: Vec<PathNode> = (0..count)
                .map(|index| {
                    let data = index.to_be_bytes();
                    let node = Node::new(acl.clone(), StoredStat::default(), Some(&data));
                    (PathKey::new(&format!("/n{index:06}")), node)
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
