//! Small file-system helpers: errors that name the path, directory fsync, atomic replacement,
//! preallocation, the directory lock, and the fault-injection hooks tests use to make a write or
//! a sync fail on purpose.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::format::TEMP_SUFFIX;
use crate::StorageError;

/// Attach the path to an I/O error, so every error says which file failed.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// `StorageError` is not `Clone` (it holds an `io::Error`); one failed sync must still reach
/// every callback it covered, each with its own copy.
pub(crate) fn copy_error(error: &StorageError) -> StorageError {
    match error {
        StorageError::Io { path, source } => StorageError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => StorageError::Unusable {
            what: other.to_string(),
        },
    }
}

/// Delete a file; one already gone (say, removed by an offline `purge`) is fine.
pub(crate) fn remove_file_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
            path: path.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Make a directory entry change (create, rename, unlink) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|handle| handle.sync_all()).at(dir)
}

/// Create `dir` (and parents) and make its entry durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).at(dir)?;
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file path").to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Replace `path` with `bytes` so that a crash leaves either the old or the new content:
/// write a temp file, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let temp = temp_path(path);
    let result = write_atomic_steps(&temp, path, bytes);
    if result.is_err() {
        // Best effort: the temp file is garbage now, and open() removes leftovers anyway.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_atomic_steps(temp: &Path, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut file = File::create(temp).at(temp)?;
    file.write_all(bytes).at(temp)?;
    file.sync_all().at(temp)?;
    drop(file);
    std::fs::rename(temp, path).at(path)?;
    sync_dir(path.parent().expect("a file inside a directory"))
}

/// Reserve `[offset, offset + len)` so that later writes need no block allocation (and, on a
/// full disk, fail here rather than mid-record). Returns false where preallocation is not
/// possible; that is a performance loss only, so callers warn and carry on.
pub(crate) fn preallocate(file: &File, offset: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return false;
    };
    // SAFETY: fallocate only reads its integer arguments; the descriptor is open for writing
    // and outlives the call.
    let status = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
    status == 0
}

/// Remove the `*.tmp` leftovers of atomic writes that a crash interrupted.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<(), StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(StorageError::Io {
                path: dir.to_path_buf(),
                source: error,
            })
        }
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|name| name.ends_with(TEMP_SUFFIX))
        {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing an interrupted temp file");
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

/// Take an exclusive `flock` on `<dir>/.lock`, so two processes never write one log.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    // SAFETY: flock only takes the descriptor and a flag; the file stays open while locked.
    let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if status != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::WouldBlock {
            return Err(StorageError::InUse { path });
        }
        return Err(StorageError::Io {
            path,
            source: error,
        });
    }
    Ok(file)
}

/// Test hooks: make the next N writes or syncs of the log fail as a full or dying disk would.
/// Production code never arms them; they cost one atomic load per write or sync.
#[derive(Debug, Default)]
pub struct FaultInjector {
    writes_to_fail: AtomicU32,
    syncs_to_fail: AtomicU32,
}

impl FaultInjector {
    /// The next `count` log writes write half their bytes, then fail with `ENOSPC`.
    pub fn fail_next_writes(&self, count: u32) {
        self.writes_to_fail.store(count, Ordering::SeqCst);
    }

    /// The next `count` log `fdatasync` calls fail with `EIO` (without syncing).
    pub fn fail_next_syncs(&self, count: u32) {
        self.syncs_to_fail.store(count, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    pub(crate) fn write_at(&self, file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        if Self::take(&self.writes_to_fail) {
            file.write_all_at(&bytes[..bytes.len() / 2], offset)?;
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        file.write_all_at(bytes, offset)
    }

    pub(crate) fn sync_data(&self, file: &File) -> std::io::Result<()> {
        if Self::take(&self.syncs_to_fail) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        file.sync_data()
    }
}
