//! Damaged and foreign snapshot files, through the public `SnapshotStore` only: whatever happens
//! to the newest file (a torn write, a flipped bit anywhere, a format version this build does not
//! know), loading either falls back to the older snapshot, returns the newest one exactly as it
//! was saved, or refuses with an error that names the file: never a panic, never other bytes.

use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;
use rzk_storage::{SnapshotStore, StorageError};

/// Offset of the little-endian format version in a snapshot file's header (after the magic).
const VERSION_OFFSET: usize = 4;

fn older_state() -> Vec<u8> {
    b"the older state".repeat(100)
}

/// Compressible and not: both kinds of bytes end up in real snapshots.
fn newer_state() -> Vec<u8> {
    let mut state: Vec<u8> = (0..4_000u32)
        .flat_map(|i| format!("/app/node-{i:06}=v;").into_bytes())
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.push(x as u8);
    }
    state
}

/// A store holding an older snapshot at index 3 and a newer one at index 9; returns the path of
/// the newer file.
fn two_snapshots(dir: &tempfile::TempDir) -> (SnapshotStore, PathBuf) {
    let store = SnapshotStore::open(dir.path()).expect("open the snapshot store");
    store.save(3, &older_state()).expect("save snapshot 3");
    let newer = store.save(9, &newer_state()).expect("save snapshot 9");
    (store, newer)
}

#[test]
fn an_unknown_format_version_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, newer) = two_snapshots(&dir);
    let mut bytes = fs::read(&newer).unwrap();
    bytes[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&99u32.to_le_bytes());
    fs::write(&newer, &bytes).unwrap();
    match store.load_latest() {
        Err(error @ StorageError::UnknownVersion { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&newer.display().to_string()) && message.contains("99"),
                "the error must name the file and its version: {message}"
            );
        }
        // Falling back to snapshot 3 would silently go back in time.
        other => panic!("a snapshot of an unknown format must stop the load, got {other:?}"),
    }
}

#[test]
fn a_torn_newest_snapshot_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, newer) = two_snapshots(&dir);
    let len = fs::metadata(&newer).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&newer)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(store.load_latest().unwrap(), Some((3, older_state())));
    assert_eq!(store.load(9).unwrap(), None, "the torn file is not trusted");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Truncate the newest file at any offset, or flip any bit of it.
    #[test]
    fn damage_anywhere_never_yields_other_bytes(
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
        truncate in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (store, newer) = two_snapshots(&dir);
        let mut bytes = fs::read(&newer).unwrap();
        let at = position.index(bytes.len());
        if truncate {
            bytes.truncate(at);
        } else {
            bytes[at] ^= 1 << bit;
        }
        fs::write(&newer, &bytes).unwrap();
        match store.load_latest() {
            Ok(Some((3, state))) => prop_assert_eq!(state, older_state()),
            Ok(Some((9, state))) => prop_assert_eq!(state, newer_state()),
            Ok(other) => prop_assert!(false, "loaded something else: {:?}", other.map(|(i, s)| (i, s.len()))),
            // Only a flip in the version field may stop the load, naming that version.
            Err(StorageError::UnknownVersion { .. }) => {
                prop_assert!(!truncate && (VERSION_OFFSET..VERSION_OFFSET + 4).contains(&at));
            }
            Err(error) => prop_assert!(false, "unexpected error: {error}"),
        }
    }
}
