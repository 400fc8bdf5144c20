//! `zkCleanup.sh` semantics as a library function: keep the newest N snapshots and every log
//! segment that may hold a record after the oldest kept one; delete the rest.

use std::path::{Path, PathBuf};

use crate::files::{sync_dir, IoContext};
use crate::format::{list_numbered, LOG_PREFIX};
use crate::snapshot::{newest_valid_snapshots, remove_snapshots_below};
use crate::{StorageError, VERSION_DIR};

/// ZooKeeper's floor for `autopurge.snapRetainCount` and `zkCleanup.sh -n`: with fewer than three
/// snapshots, one damaged file could leave no usable starting point.
pub const PURGE_KEEP_MIN: usize = 3;

/// What [`purge`] kept and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// The snapshots kept (verified whole), oldest first.
    pub kept_snapshots: Vec<PathBuf>,
    pub removed_snapshots: Vec<PathBuf>,
    pub removed_logs: Vec<PathBuf>,
}

/// Keep the `keep` (≥ 3) newest snapshots that verify under `<snap_dir>/version-2`, and every log
/// segment under `<data_log_dir>/version-2` that may hold a record after the oldest kept snapshot;
/// delete older snapshots and segments. With fewer than `keep` whole snapshots nothing is deleted
/// (like ZooKeeper's `PurgeTxnLog`, it never purges towards a state it could not restore).
///
/// Safe to run while a server has the log open: only whole segments entirely at or below the
/// oldest kept snapshot go, never the active one, and open segments stay readable until closed.
pub fn purge(
    data_log_dir: &Path,
    snap_dir: &Path,
    keep: usize,
) -> Result<PurgeReport, StorageError> {
    if keep < PURGE_KEEP_MIN {
        let what = format!(
            "purge must keep at least {PURGE_KEEP_MIN} snapshots, got {keep}; pass -n 3 or more"
        );
        return Err(StorageError::InvalidArgument { what });
    }
    let log_dir = data_log_dir.join(VERSION_DIR);
    let snapshot_dir = snap_dir.join(VERSION_DIR);
    let kept = newest_valid_snapshots(&snapshot_dir, keep)?;
    let mut report = PurgeReport {
        kept_snapshots: kept.iter().map(|info| info.path.clone()).collect(),
        ..PurgeReport::default()
    };
    if kept.len() < keep {
        tracing::info!(
            found = kept.len(),
            keep,
            "fewer whole snapshots than asked to keep; purging nothing"
        );
        return Ok(report);
    }
    let oldest_kept = kept[0].index;
    report.removed_logs = remove_segments_not_after(&log_dir, oldest_kept)?;
    report.removed_snapshots = remove_snapshots_below(&snapshot_dir, oldest_kept)?;
    Ok(report)
}

/// Delete segments whose every record is at or below `index`: those followed by a segment that
/// starts at or below `index + 1`. The last segment always stays.
fn remove_segments_not_after(dir: &Path, index: u64) -> Result<Vec<PathBuf>, StorageError> {
    let segments = list_numbered(dir, LOG_PREFIX).at(dir)?;
    let mut removed = Vec::new();
    for pair in segments.windows(2) {
        let ((_, path), (next_first_index, _)) = (&pair[0], &pair[1]);
        if *next_first_index > index.saturating_add(1) {
            break;
        }
        std::fs::remove_file(path).at(path)?;
        removed.push(path.clone());
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}
