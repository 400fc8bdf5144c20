//! Session expiry tracking, ZooKeeper style: deadlines rounded up to the next tick boundary
//! (`ExpiryQueue.roundToNextInterval`), so one timer tick expires a whole bucket. Pure: time is
//! passed in as milliseconds.

use std::collections::{BTreeMap, HashMap, HashSet};

use rzk_state_machine::SessionId;

#[derive(Debug, Default)]
pub struct ExpiryTracker {
    tick_ms: i64,
    /// Session → (bucket deadline, timeout).
    deadlines: HashMap<SessionId, (i64, i32)>,
    /// Bucket deadline → sessions in it.
    buckets: BTreeMap<i64, HashSet<SessionId>>,
}

impl ExpiryTracker {
    pub fn new(tick_ms: u32) -> ExpiryTracker {
        assert!(tick_ms > 0, "tickTime must be positive");
        ExpiryTracker {
            tick_ms: i64::from(tick_ms),
            ..Default::default()
        }
    }

    fn bucket(&self, time_ms: i64) -> i64 {
        (time_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// Start tracking or extend a session: it expires `timeout_ms` after `now_ms`.
    pub fn touch(&mut self, session_id: SessionId, timeout_ms: i32, now_ms: i64) {
        let deadline = self.bucket(now_ms + i64::from(timeout_ms));
        if let Some((old, _)) = self.deadlines.insert(session_id, (deadline, timeout_ms)) {
            if old == deadline {
                return;
            }
            self.remove_from_bucket(session_id, old);
        }
        self.buckets.entry(deadline).or_default().insert(session_id);
    }

    /// Extend a tracked session with its own timeout; unknown sessions are ignored.
    pub fn touch_known(&mut self, session_id: SessionId, now_ms: i64) {
        if let Some(&(_, timeout_ms)) = self.deadlines.get(&session_id) {
            self.touch(session_id, timeout_ms, now_ms);
        }
    }

    pub fn remove(&mut self, session_id: SessionId) {
        if let Some((deadline, _)) = self.deadlines.remove(&session_id) {
            self.remove_from_bucket(session_id, deadline);
        }
    }

    fn remove_from_bucket(&mut self, session_id: SessionId, deadline: i64) {
        if let Some(bucket) = self.buckets.get_mut(&deadline) {
            bucket.remove(&session_id);
            if bucket.is_empty() {
                self.buckets.remove(&deadline);
            }
        }
    }

    /// Take every session whose deadline has passed at `now_ms`; they are no longer tracked.
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while let Some((&deadline, _)) = self.buckets.first_key_value() {
            if deadline > now_ms {
                break;
            }
            let sessions = self.buckets.remove(&deadline).unwrap_or_default();
            for session_id in sessions {
                self.deadlines.remove(&session_id);
                expired.push(session_id);
            }
        }
        expired.sort_unstable();
        expired
    }

    /// The buckets, earliest first, each with its sessions sorted (ZooKeeper's
    /// `ExpiryQueue.dump` and `getSessionExpiryMap`).
    pub fn buckets(&self) -> Vec<(i64, Vec<SessionId>)> {
        self.buckets
            .iter()
            .map(|(deadline, sessions)| {
                let mut sessions: Vec<SessionId> = sessions.iter().copied().collect();
                sessions.sort_unstable();
                (*deadline, sessions)
            })
            .collect()
    }

    /// The bucket `session_id` expires with, if it is tracked here.
    pub fn deadline(&self, session_id: SessionId) -> Option<i64> {
        self.deadlines
            .get(&session_id)
            .map(|(deadline, _)| *deadline)
    }

    /// The bucket a deadline `timeout_ms` after `now_ms` falls in.
    pub fn bucket_after(&self, now_ms: i64, timeout_ms: i64) -> i64 {
        self.bucket(now_ms + timeout_ms)
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_timeout_rounded_up_to_the_tick() {
        let mut tracker = ExpiryTracker::new(2000);
        tracker.touch(1, 4000, 1000);
        // deadline = bucket(5000) = 6000
        assert!(tracker.take_expired(5999).is_empty());
        assert_eq!(tracker.take_expired(6000), vec![1]);
        assert!(tracker.is_empty());
    }

    #[test]
    fn touching_extends_and_removing_forgets() {
        let mut tracker = ExpiryTracker::new(1000);
        tracker.touch(1, 3000, 0);
        tracker.touch(2, 3000, 0);
        tracker.touch_known(1, 2500);
        tracker.remove(2);
        assert!(tracker.take_expired(4000).is_empty());
        assert_eq!(tracker.take_expired(6000), vec![1]);
    }
}
