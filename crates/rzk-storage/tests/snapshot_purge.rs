//! Snapshot files and the zkCleanup-style purge.

mod common;

use std::path::Path;

use common::*;
use rzk_storage::{purge, SnapshotStore, StorageError, Wal};

/// Goal: snapshots round-trip; the newest whole one wins; a damaged newest is skipped.
#[test]
fn snapshots_save_list_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(store.load_latest().unwrap(), None);
    store.save(10, b"ten").unwrap();
    let newest = store.save(20, b"twenty").unwrap();
    assert_eq!(
        newest,
        dir.path().join("version-2/snapshot.0000000000000014")
    );
    assert_eq!(snapshot_indexes(&store), vec![10, 20]);
    assert_eq!(store.load_latest().unwrap(), Some((20, b"twenty".to_vec())));
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 4;
    std::fs::write(&newest, bytes).unwrap();
    assert_eq!(
        store.load_latest().unwrap(),
        Some((10, b"ten".to_vec())),
        "the damaged newest is skipped"
    );
    assert_eq!(store.load(20).unwrap(), None);
    // A torn save (temp file left by a crash) is invisible and removed on open.
    std::fs::write(
        dir.path().join("version-2/snapshot.0000000000000030.tmp"),
        b"torn",
    )
    .unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(
        store.load_latest().unwrap().map(|(index, _)| index),
        Some(10)
    );
    assert_eq!(
        store.purge_keep(1).unwrap().len(),
        0,
        "nothing is older than the only whole one"
    );
}

fn snapshot_indexes(store: &SnapshotStore) -> Vec<u64> {
    store
        .list()
        .unwrap()
        .iter()
        .map(|info| info.index)
        .collect()
}

fn log_segments(dir: &Path) -> Vec<u64> {
    let mut found: Vec<u64> = std::fs::read_dir(dir.join("version-2"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("log.")
                .map(|hex| u64::from_str_radix(hex, 16).unwrap())
        })
        .collect();
    found.sort();
    found
}

/// Goal: purge keeps the N newest snapshots and every segment that may hold records after the
/// oldest kept one, deletes the rest, and the log still opens with every record it needs.
/// Method: a log in 1 KiB segments and 5 snapshots; purge with keep 3 into separate dirs.
#[test]
fn purge_keeps_snapshots_and_needed_segments() {
    let logs = tempfile::tempdir().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    write_log(logs.path(), small_segments(), 1..201);
    let store = SnapshotStore::open(snaps.path()).unwrap();
    for index in [20u64, 60, 100, 140, 180] {
        store
            .save(index, format!("state at {index}").as_bytes())
            .unwrap();
    }
    let before = log_segments(logs.path());
    assert!(matches!(
        purge(logs.path(), snaps.path(), 2),
        Err(StorageError::InvalidArgument { .. })
    ));
    let report = purge(logs.path(), snaps.path(), 3).unwrap();
    assert_eq!(report.removed_snapshots.len(), 2);
    assert_eq!(snapshot_indexes(&store), vec![100, 140, 180]);
    let after = log_segments(logs.path());
    assert_eq!(report.removed_logs.len(), before.len() - after.len());
    // The kept segments start at or below 101 (the first record after the oldest kept
    // snapshot), and every removed one ended at or below 100.
    assert!(after[0] <= 101, "segments {after:?}");
    assert!(before
        .iter()
        .filter(|first| !after.contains(first))
        .all(|first| *first <= 100));
    let wal = open(logs.path(), small_segments());
    assert_eq!(wal.read(101, 201).unwrap(), records(101..201));
    // Purging again changes nothing.
    drop(wal);
    let again = purge(logs.path(), snaps.path(), 3).unwrap();
    assert!(again.removed_logs.is_empty() && again.removed_snapshots.is_empty());
}

/// Goal: with fewer whole snapshots than asked to keep, purge deletes nothing.
#[test]
fn purge_with_too_few_snapshots_deletes_nothing() {
    let logs = tempfile::tempdir().unwrap();
    write_log(logs.path(), small_segments(), 1..101);
    let store = SnapshotStore::open(logs.path()).unwrap();
    store.save(50, b"a").unwrap();
    store.save(90, b"b").unwrap();
    let before = log_segments(logs.path());
    let report = purge(logs.path(), logs.path(), 3).unwrap();
    assert!(report.removed_logs.is_empty() && report.removed_snapshots.is_empty());
    assert_eq!(log_segments(logs.path()), before);
    let (wal, _) = Wal::open(logs.path(), small_segments()).unwrap();
    assert_eq!(wal.read(0, 200).unwrap(), records(1..101));
}
