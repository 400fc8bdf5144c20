//! # rzk-storage: the durable log and snapshot files
//!
//! Owns durability: checksummed log segments under `<dataLogDir>/version-2/log.<hex index>`,
//! group commit (one `fdatasync` covers every record appended while the previous one ran),
//! snapshot files `<dataDir>/version-2/snapshot.<hex index>`, recovery (a torn or corrupt last
//! frame is truncated with a warning; damage before the tail refuses to start), and purge.
//! Payloads are opaque bytes: this crate must not decode znode operations nor know Raft or
//! network types.
//!
//! SKELETON: the API below is the contract the replication crate builds against.

use std::path::{Path, PathBuf};

/// One log record: a position and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// `forceSync`: when false, records are acknowledged without fdatasync (unsafe).
    pub force_sync: bool,
    /// Roll to a new segment past this size.
    pub segment_bytes_max: u64,
    /// `preAllocSize`: bytes preallocated per segment.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { force_sync: true, segment_bytes_max: 64 << 20, preallocate_bytes: 64 << 20 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}; check the disk (space, permissions) and restart")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("log file {path} is damaged at offset {offset} with valid records after it: {what}. Restore the data directory from a replica or backup, or move the file away to start without it")]
    Corrupt { path: PathBuf, offset: u64, what: String },
    #[error("{path} has format version {version}, which this rzk does not read")]
    UnknownVersion { path: PathBuf, version: u32 },
    #[error("records must be appended in order without holes: expected index {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
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

/// The segmented write-ahead log.
pub struct Wal {
    _dir: PathBuf,
}

impl Wal {
    /// Open (creating if needed) the log under `<dir>/version-2/`, recovering as described above.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, RecoveryReport), StorageError> {
        let _ = (dir, options);
        todo!()
    }

    /// Append records (indexes contiguous with the log). Returns once they are readable;
    /// `done` runs once they are durable. Group commit: one fdatasync for every record
    /// appended while the previous sync ran.
    pub fn append(&self, records: Vec<Record>, done: DurableCallback) -> Result<(), StorageError> {
        let _ = (records, done);
        todo!()
    }

    /// Records with index in `[start, end)`.
    pub fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StorageError> {
        let _ = (start, end);
        todo!()
    }

    pub fn first_index(&self) -> Option<u64> {
        todo!()
    }

    pub fn last_index(&self) -> Option<u64> {
        todo!()
    }

    /// Drop every record with index > `index` (durably).
    pub fn truncate_after(&self, index: u64) -> Result<(), StorageError> {
        let _ = index;
        todo!()
    }

    /// Drop records with index <= `index` (whole segments at least; reads below are refused).
    pub fn purge_upto(&self, index: u64) -> Result<(), StorageError> {
        let _ = index;
        todo!()
    }

    /// Durably store a small named value (e.g. the Raft vote) next to the log, atomically replaced.
    pub fn save_meta(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let _ = (name, bytes);
        todo!()
    }

    pub fn load_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let _ = name;
        todo!()
    }
}

/// Snapshot files in `<dir>/version-2/snapshot.<hex index>`.
pub struct SnapshotStore {
    _dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(dir: &Path) -> Result<SnapshotStore, StorageError> {
        let _ = dir;
        todo!()
    }

    /// Write a snapshot taken at log `index` atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, index: u64, bytes: &[u8]) -> Result<PathBuf, StorageError> {
        let _ = (index, bytes);
        todo!()
    }

    /// The newest snapshot that reads back whole (checksum verified), with its index.
    pub fn load_latest(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        todo!()
    }
}
