//! # rzk-storage: the durable log and snapshot files
//!
//! Owns durability: checksummed log segments under `<dataLogDir>/version-2/log.<hex index>`,
//! group commit (one `fdatasync` covers every record appended while the previous one ran),
//! snapshot files `<dataDir>/version-2/snapshot.<hex index>`, recovery (a torn or corrupt last
//! frame is truncated with a warning; damage before the tail refuses to start), and purge.
//! Payloads are opaque bytes: this crate must not decode znode operations nor know Raft or
//! network types.
//!
//! # Layout
//!
//! - `format`: every byte layout below, as pure encode/decode functions (no I/O).
//! - `wal`: [`Wal`]: append, read, truncate, purge, meta files, the group-commit flusher (and
//!   [`Wal::append_and_sync_here`], which syncs on the appending thread when the log is idle).
//! - `recovery`: scanning segments on open; the torn-tail versus corrupt-middle rule.
//! - `snapshot`: [`SnapshotStore`].
//! - `purge`: [`purge`], the `zkCleanup.sh`/autopurge policy.
//! - `files`: fsync of directories, atomic replacement, preallocation, the directory lock,
//!   fault injection for tests.
//!
//! # Guarantees (the contract replication relies on)
//!
//! - `append` returns once the records are readable; its callback runs exactly once, with `Ok`
//!   only after an `fdatasync` covered every one of its records (unless `force_sync` is off), and
//!   callbacks run in append order. A failed write or sync gives `Err`, never `Ok`.
//! - No holes: record indexes are contiguous; `append` refuses anything else (`OutOfOrder`).
//! - `truncate_after` is durable before it returns. `purge_upto` stores its watermark durably
//!   first; purged records are never served again, even if their segment is kept.
//! - After a crash, the log reopens as a prefix of what was appended that includes every record
//!   acknowledged `Ok`, or refuses to start with [`StorageError::Corrupt`] naming file and offset.
//!
//! # On-disk formats
//!
//! All integers little-endian, all checksums CRC-32C. A log directory holds:
//!
//! ```text
//! LogSegment  := SegmentHeader Frame* Tail              (file log.<16 hex digits of FirstIndex>)
//! SegmentHeader := Magic "RZKL" | Version u32 = 1 | FirstIndex u64 | HeaderCrc u32
//!                  (HeaderCrc covers the 16 bytes before it)
//! Frame       := Len u32 | Crc u32 | Index u64 | Payload [Len bytes]
//!                  (Crc covers Len, Index and Payload; Len <= RECORD_PAYLOAD_BYTES_MAX;
//!                   the first Frame has Index = FirstIndex, each next one Index + 1)
//! Tail        := ZeroPad*                              (preallocated space, all zero bytes)
//! ```
//!
//! The first segment's FirstIndex is the first record ever kept; each later segment starts at
//! the index after the previous segment's last frame. A closed segment is cut to its last frame
//! (no tail) and synced before the next one is created, so damage can be a torn write only at
//! the end of the last segment. Segments are created atomically (temp file, header,
//! preallocation, fsync, rename, fsync dir), so a segment file always has a whole header.
//!
//! ```text
//! Snapshot    := Magic "RZKS" | Version u32 = 2 | Index u64 | PayloadLen u64 | PayloadCrc u32
//!                | HeaderCrc u32 | Payload [PayloadLen bytes]     (file snapshot.<16 hex Index>)
//!                Payload is the state bytes as one LZ4 frame (lz4_flex, pure Rust: the state
//!                compresses several-fold and decompresses at memory speed). Version 1 files,
//!                whose Payload is the state bytes as they are, are still read. A snapshot is
//!                written as it is produced (`save_streamed`): the header, which needs the
//!                compressed length and checksum, goes over room left for it at the end.
//! Meta        := Magic "RZKM" | Version u32 = 1 | Len u32 | Crc u32 (over Len and Value)
//!                | Value [Len bytes]       (files meta.<name> from save_meta, and wal.purged,
//!                                            whose Value is the purge watermark as u64)
//! ```
//!
//! Snapshots and meta files are replaced atomically (temp file, fsync, rename, fsync dir);
//! `*.tmp` leftovers of an interrupted write are removed on open. `.lock` holds an exclusive
//! `flock` while a [`Wal`] is open.
//!
//! # Recovery
//!
//! Opening scans every segment and verifies every frame. A frame that does not verify (short,
//! bad checksum, length over the limit, wrong index) ends the scan; if the rest of the file is
//! zero it is the ordinary preallocated tail. Otherwise it is damage: when no valid frame
//! follows it (in this segment or any later one) it is a torn tail, which is cut off with a
//! `tracing::warn!` naming file and offset and reported in [`RecoveryReport::truncated_tail`];
//! when valid frames follow, the log refuses to start with [`StorageError::Corrupt`]. A header
//! in another format version gives [`StorageError::UnknownVersion`]. An empty directory starts
//! an empty log.
//!
//! # `force_sync = false` is unsafe
//!
//! Like ZooKeeper's `forceSync=no`, it acknowledges records without `fdatasync`: a power loss
//! can then lose records that were acknowledged, which breaks Raft's safety. Tests and
//! benchmarks only.

use std::path::PathBuf;

mod files;
mod format;
mod purge;
mod recovery;
mod snapshot;
mod wal;

pub use files::FaultInjector;
pub use format::{META_BYTES_MAX, RECORD_PAYLOAD_BYTES_MAX};
pub use purge::{purge, PurgeReport, PURGE_KEEP_MIN};
pub use snapshot::{SnapshotInfo, SnapshotStore};
pub use wal::{Wal, WalStats, SYNC_BUCKET_BOUNDS_NANOS};

/// The subdirectory every file lives in, as in ZooKeeper.
pub const VERSION_DIR: &str = "version-2";

/// One log record: a position and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub payload: Vec<u8>,
}

/// How the log writes. `Default`: forceSync=yes, 16 MiB segments and preallocation (ZooKeeper
/// preallocates 64 MiB; rzk's smaller segments keep an idle data directory small and let purges
/// free space sooner, while one `fallocate` per 16 MiB costs nothing measurable).
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// `forceSync`: when false, records are acknowledged without fdatasync (unsafe).
    pub force_sync: bool,
    /// Roll to a new segment past this size (a single record larger than this gets a segment
    /// of its own).
    pub segment_bytes_max: u64,
    /// `preAllocSize`: bytes preallocated per segment.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            force_sync: true,
            segment_bytes_max: 16 << 20,
            preallocate_bytes: 16 << 20,
        }
    }
}

/// Every error names what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}; check the disk (space, permissions) and restart")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Damage that recovery must not paper over (for the log: a bad frame with valid records
    /// after it). `what` says what is wrong and what to do.
    #[error("{path} is damaged at offset {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path} has format version {version}, which this rzk does not read; run the rzk release that wrote it, or restore the directory from a replica")]
    UnknownVersion { path: PathBuf, version: u32 },
    #[error(
        "records must be appended in order without holes: expected index {expected}, got {got}"
    )]
    OutOfOrder { expected: u64, got: u64 },
    #[error("invalid request: {what}")]
    InvalidArgument { what: String },
    #[error("{path} is locked by another process: another rzk is using this data directory; stop it or point this one at another directory")]
    InUse { path: PathBuf },
    #[error("the log refuses writes after an I/O error it could not undo ({what}); fix the disk and restart rzk (recovery will cut any torn tail)")]
    Unusable { what: String },
}

/// What recovery found and did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    /// (file, offset) of a torn/corrupt tail that was truncated.
    pub truncated_tail: Option<(PathBuf, u64)>,
}

/// Called once the records of one `append` are durable (or failed to become durable).
pub type DurableCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send + 'static>;
