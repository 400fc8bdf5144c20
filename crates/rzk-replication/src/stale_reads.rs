//! Replication reads that start below the purged point, handed from the log reader to the
//! transport so that the stream making them is ended.
//!
//! Why: openraft 0.10.0-alpha.37 can resume a replication stream from a command it has already
//! replaced. Seen when a member comes back with an older or wiped log: the leader switches that
//! member to a snapshot (so nothing holds the old entries any more and it purges them), yet the
//! member's replication task replays the older "entries since N" command it still holds. Its
//! reads of the purged entries come back empty; openraft sends each empty read as a heartbeat
//! and the member acknowledges it, so the stream never ends, and the stream never looks for the
//! newer command while entries past N exist. The member then never receives another entry
//! (found by `ensemble_replication::a_restarted_follower_catches_up_and_a_wiped_one_rejoins_by_snapshot`).
//!
//! The fix on our side of the seam: the log reader records where such a read started, and the
//! transport refuses the heartbeat that openraft builds from it with an "unreachable" error.
//! That ends the stream; the task then takes the newer command (the snapshot, then entries from
//! the snapshot on). Each mark is used once, so a real heartbeat is refused at most once.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Marks kept at most: one per stream stuck below the purged point, so a handful at a time.
/// The oldest is dropped beyond it (its stream marks again on its next read).
pub(crate) const STALE_READS_MAX: usize = 64;

/// Start indexes of replication reads that found their first entry purged.
#[derive(Default)]
pub(crate) struct StaleReads {
    starts: Mutex<BTreeSet<u64>>,
}

impl StaleReads {
    /// The log reader returned nothing for a read starting at `start` (its entry is purged).
    pub(crate) fn record(&self, start: u64) {
        let mut starts = self.starts();
        starts.insert(start);
        while starts.len() > STALE_READS_MAX {
            starts.pop_first();
        }
    }

    /// Whether an entry-less append whose next index is `next` was built from such a read; the
    /// mark is used up.
    pub(crate) fn take(&self, next: u64) -> bool {
        self.starts().remove(&next)
    }

    fn starts(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.starts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_used_once_and_marks_are_bounded() {
        let stale = StaleReads::default();
        stale.record(256);
        assert!(!stale.take(255));
        assert!(stale.take(256));
        assert!(!stale.take(256), "a mark refuses one append only");
        for start in 0..(STALE_READS_MAX as u64 + 10) {
            stale.record(start);
        }
        assert_eq!(stale.starts().len(), STALE_READS_MAX);
        assert!(!stale.take(0), "the oldest marks go first");
        assert!(stale.take(STALE_READS_MAX as u64 + 9));
    }
}
