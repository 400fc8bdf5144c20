//! The watch table (ZooKeeper's two `WatchManager`s, data and child, folded into one).
//!
//! Per (session, path) a set of mode bits, indexed both ways (path → sessions, session → paths)
//! so dropping a session is proportional to its own watches. The data table of ZooKeeper holds
//! standard data/exist watches, persistent and persistent-recursive ones; the child table holds
//! standard child watches and persistent ones. A persistent watch is always in both.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::path::ancestors;
use crate::SessionId;

/// Standard (one-shot) watch in the data table: getData, exists.
pub(crate) const DATA: u8 = 1;
/// Standard (one-shot) watch in the child table: getChildren.
pub(crate) const CHILD: u8 = 2;
/// addWatch PERSISTENT: in both tables, never removed by firing.
pub(crate) const PERSISTENT: u8 = 4;
/// addWatch PERSISTENT_RECURSIVE: data table only, fires for the whole subtree.
pub(crate) const RECURSIVE: u8 = 8;

/// Modes that live in each of ZooKeeper's two tables.
const DATA_TABLE: u8 = DATA | PERSISTENT | RECURSIVE;
const CHILD_TABLE: u8 = CHILD | PERSISTENT;

/// A cap on (path, table) watches per session, so one session cannot grow the table without
/// bound. ZooKeeper has no limit; this one is far above any real client (Curator caches use one
/// recursive watch; a one-shot watch per znode of a million-node tree still fits). Beyond it
/// the read still succeeds (as it would on ZooKeeper) but the watch is not registered; the
/// refusal is counted in `Counts::watches_refused` so an operator can see it.
pub const WATCHES_PER_SESSION_MAX: usize = 4_000_000;

#[derive(Debug, Default)]
pub(crate) struct WatchTable {
    by_path: HashMap<Box<str>, BTreeMap<SessionId, u8>>,
    by_session: HashMap<SessionId, HashSet<Box<str>>>,
    /// Persistent-recursive watches in the table: ancestors are walked only when non-zero.
    recursive_count: usize,
    pub refused: u64,
}

/// Which table a trigger runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Data,
    Child,
}

impl WatchTable {
    /// Every session with a watch in the data table and those paths, both sorted (for `wchc`,
    /// which lists ZooKeeper's data table only: see [`WatchTable::data_summary`]).
    pub(crate) fn listing_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        let mut by_session: BTreeMap<SessionId, Vec<String>> = BTreeMap::new();
        for (path, sessions) in &self.by_path {
            for (session, bits) in sessions {
                if bits & DATA_TABLE != 0 {
                    by_session
                        .entry(*session)
                        .or_default()
                        .push(path.to_string());
                }
            }
        }
        by_session
            .into_iter()
            .map(|(session, mut paths)| {
                paths.sort_unstable();
                (session, paths)
            })
            .collect()
    }

    /// Every path with a watch in the data table and its sessions, both sorted (for `wchp`).
    pub(crate) fn listing_by_path(&self) -> Vec<(String, Vec<SessionId>)> {
        let mut listing: Vec<(String, Vec<SessionId>)> = self
            .by_path
            .iter()
            .filter_map(|(path, sessions)| {
                let data: Vec<SessionId> = sessions
                    .iter()
                    .filter(|(_, bits)| **bits & DATA_TABLE != 0)
                    .map(|(session, _)| *session)
                    .collect();
                (!data.is_empty()).then(|| (path.to_string(), data))
            })
            .collect();
        listing.sort_unstable();
        listing
    }

    /// Add `mode` for (session, path). Returns false if the per-session cap refused it.
    pub fn add(&mut self, session: SessionId, path: &str, mode: u8) -> bool {
        let paths = self.by_session.entry(session).or_default();
        if !paths.contains(path) {
            if paths.len() >= WATCHES_PER_SESSION_MAX {
                self.refused += 1;
                if paths.is_empty() {
                    self.by_session.remove(&session);
                }
                return false;
            }
            paths.insert(Box::from(path));
        }
        let bits = self
            .by_path
            .entry(Box::from(path))
            .or_default()
            .entry(session)
            .or_insert(0);
        if mode & RECURSIVE != 0 && *bits & RECURSIVE == 0 {
            self.recursive_count += 1;
        }
        *bits |= mode;
        true
    }

    pub fn modes(&self, session: SessionId, path: &str) -> u8 {
        self.by_path
            .get(path)
            .and_then(|sessions| sessions.get(&session))
            .copied()
            .unwrap_or(0)
    }

    /// Clear `mode` bits of (session, path); returns the bits that were set among them.
    pub fn remove(&mut self, session: SessionId, path: &str, mode: u8) -> u8 {
        let Some(sessions) = self.by_path.get_mut(path) else {
            return 0;
        };
        let Some(bits) = sessions.get_mut(&session) else {
            return 0;
        };
        let removed = *bits & mode;
        if removed & RECURSIVE != 0 {
            self.recursive_count -= 1;
        }
        *bits &= !mode;
        if *bits == 0 {
            sessions.remove(&session);
            if sessions.is_empty() {
                self.by_path.remove(path);
            }
            self.forget_path_of_session(session, path);
        }
        removed
    }

    fn forget_path_of_session(&mut self, session: SessionId, path: &str) {
        let paths = self
            .by_session
            .get_mut(&session)
            .expect("watch index: session missing for a watched path");
        assert!(
            paths.remove(path),
            "watch index: path missing from its session's set"
        );
        if paths.is_empty() {
            self.by_session.remove(&session);
        }
    }

    /// Forget every watch of a session.
    pub fn drop_session(&mut self, session: SessionId) {
        let Some(paths) = self.by_session.remove(&session) else {
            return;
        };
        for path in paths.iter() {
            let sessions = self
                .by_path
                .get_mut(path)
                .expect("watch index: path missing for a session's watch");
            let bits = sessions
                .remove(&session)
                .expect("watch index: session missing from a path's map");
            if bits & RECURSIVE != 0 {
                self.recursive_count -= 1;
            }
            if sessions.is_empty() {
                self.by_path.remove(path);
            }
        }
    }

    /// `WatchManager.triggerWatch`: every watcher of `table` on `path` fires and loses its
    /// one-shot mode; recursive watchers on ancestors fire too (data table only). Returns the
    /// sessions that fire, each once.
    pub fn trigger(&mut self, path: &str, table: Table) -> BTreeSet<SessionId> {
        let (table_modes, standard) = match table {
            Table::Data => (DATA_TABLE, DATA),
            Table::Child => (CHILD_TABLE, CHILD),
        };
        let mut fired = BTreeSet::new();
        let mut emptied = Vec::new();
        if let Some(sessions) = self.by_path.get_mut(path) {
            for (session, bits) in sessions.iter_mut() {
                if *bits & table_modes != 0 {
                    fired.insert(*session);
                    *bits &= !standard;
                    if *bits == 0 {
                        emptied.push(*session);
                    }
                }
            }
        }
        for session in emptied {
            self.remove_empty_entry(session, path);
        }
        if table == Table::Data && self.recursive_count > 0 {
            self.collect_recursive_ancestors(path, &mut fired);
        }
        fired
    }

    /// After a trigger cleared every bit of an entry, drop the entry from both indexes.
    fn remove_empty_entry(&mut self, session: SessionId, path: &str) {
        let Some(sessions) = self.by_path.get_mut(path) else {
            return;
        };
        if sessions.get(&session) == Some(&0) {
            sessions.remove(&session);
            if sessions.is_empty() {
                self.by_path.remove(path);
            }
            self.forget_path_of_session(session, path);
        }
    }

    fn collect_recursive_ancestors(&self, path: &str, fired: &mut BTreeSet<SessionId>) {
        for ancestor in ancestors(path) {
            if let Some(sessions) = self.by_path.get(ancestor) {
                let recursive = sessions.iter().filter(|(_, bits)| **bits & RECURSIVE != 0);
                fired.extend(recursive.map(|(session, _)| *session));
            }
        }
    }

    /// One per (session, path, table), as ZooKeeper's `zk_watch_count` adds its two tables.
    pub fn count(&self) -> u64 {
        self.by_path
            .values()
            .flat_map(BTreeMap::values)
            .map(|bits| u64::from(bits & DATA_TABLE != 0) + u64::from(bits & CHILD_TABLE != 0))
            .sum()
    }

    /// ZooKeeper's data table alone, which is all that its `wchs`, `wchc` and `wchp` report
    /// (a getChildren watch is not in them): the (session, path) pairs, paths and sessions
    /// with a data, exists, persistent or recursive watch.
    pub fn data_summary(&self) -> crate::WatchSummary {
        let mut summary = crate::WatchSummary::default();
        let mut sessions_seen = HashSet::new();
        for sessions in self.by_path.values() {
            let mut data_path = false;
            for (session, bits) in sessions {
                if bits & DATA_TABLE != 0 {
                    summary.watches += 1;
                    data_path = true;
                    sessions_seen.insert(*session);
                }
            }
            summary.paths += u64::from(data_path);
        }
        summary.sessions = sessions_seen.len() as u64;
        summary
    }

    /// Assert the two indexes agree (tests and debug checks).
    pub fn check_invariants(&self) {
        let mut recursive = 0;
        for (path, sessions) in &self.by_path {
            assert!(
                !sessions.is_empty(),
                "watch index: empty session map for {path}"
            );
            for (session, bits) in sessions {
                assert_ne!(*bits, 0, "watch index: empty modes for {path}");
                let paths = self
                    .by_session
                    .get(session)
                    .expect("watch index: session missing");
                assert!(
                    paths.contains(path),
                    "watch index: {path} missing from session set"
                );
                recursive += usize::from(bits & RECURSIVE != 0);
            }
        }
        let indexed: usize = self.by_session.values().map(HashSet::len).sum();
        let entries: usize = self.by_path.values().map(BTreeMap::len).sum();
        assert_eq!(indexed, entries, "watch index: the two directions disagree");
        assert_eq!(
            recursive, self.recursive_count,
            "watch index: recursive count drifted"
        );
    }
}
