//! The log against real files in temp directories: append/read/restart, truncate, purge, meta.

mod common;

use common::*;
use rzk_storage::{StorageError, Wal, WalOptions};

/// Goal: records appended are readable at once and after a restart, across many segments.
/// Method: append 200 records in batches with 1 KiB segments, read back, reopen, read back.
#[test]
fn append_read_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), small_segments());
        assert_eq!((wal.first_index(), wal.last_index()), (None, None));
        for start in (1..201).step_by(10) {
            append_durable(&wal, records(start..start + 10)).unwrap();
        }
        assert_eq!(wal.read(1, 201).unwrap(), records(1..201));
        assert_eq!(wal.read(50, 60).unwrap(), records(50..60));
        assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(200)));
    }
    let segments = std::fs::read_dir(dir.path().join("version-2"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("log.")
        })
        .count();
    assert!(segments > 5, "1 KiB segments roll often, got {segments}");
    let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(
        (report.first_index, report.last_index, report.truncated_tail),
        (Some(1), Some(200), None)
    );
    assert_eq!(wal.read(0, 1000).unwrap(), records(1..201));
    append_durable(&wal, records(201..205)).unwrap();
    assert_eq!(wal.read(199, 205).unwrap(), records(199..205));
}

/// Goal: reads of just-appended records work before they are durable.
/// Method: read right after `append` returns, before waiting for the callback.
#[test]
fn reads_work_before_durable() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), WalOptions::default());
    let (sender, receiver) = std::sync::mpsc::channel();
    wal.append(
        records(0..3),
        Box::new(move |result| sender.send(result.is_ok()).unwrap()),
    )
    .unwrap();
    assert_eq!(wal.read(0, 3).unwrap(), records(0..3));
    assert!(receiver.recv_timeout(WAIT_MAX).unwrap());
}

/// Goal: holes and reordering are refused.
#[test]
fn out_of_order_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), WalOptions::default());
    append_durable(&wal, records(5..8)).unwrap();
    let error = append_durable(&wal, records(9..10)).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::OutOfOrder {
                expected: 8,
                got: 9
            }
        ),
        "{error}"
    );
    assert_eq!(wal.last_index(), Some(7));
}

/// Goal: truncate_after drops the tail durably, across segment boundaries, and appends resume.
/// Method: for several cut points, truncate, append different payloads, reopen, compare.
#[test]
fn truncate_after_then_restart() {
    for cut in [0u64, 1, 37, 38, 99, 100] {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = open(dir.path(), small_segments());
            append_durable(&wal, records(1..101)).unwrap();
            wal.truncate_after(cut).unwrap();
            assert_eq!(wal.last_index(), if cut == 0 { None } else { Some(cut) });
            assert_eq!(wal.read(0, 200).unwrap(), records(1..cut + 1));
            let replacement: Vec<_> = (cut + 1..cut + 6)
                .map(|index| rzk_storage::Record {
                    index,
                    payload: vec![0xEE; 9],
                })
                .collect();
            append_durable(&wal, replacement).unwrap();
        }
        let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
        assert_eq!(report.truncated_tail, None, "cut {cut}");
        let read = wal.read(0, 200).unwrap();
        assert_eq!(&read[..cut as usize], &records(1..cut + 1)[..], "cut {cut}");
        assert_eq!(read.len() as u64, cut + 5);
        assert!(read[cut as usize..]
            .iter()
            .all(|record| record.payload == vec![0xEE; 9]));
    }
}

/// Goal: purge_upto hides purged records at once and after restart, deletes whole segments
/// below the point, and a purge past the end makes the next append start after it.
#[test]
fn purge_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let count_segments = || {
        std::fs::read_dir(dir.path().join("version-2"))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("log.")
            })
            .count()
    };
    {
        let wal = open(dir.path(), small_segments());
        append_durable(&wal, records(1..101)).unwrap();
        let before = count_segments();
        wal.purge_upto(50).unwrap();
        assert!(count_segments() < before);
        assert_eq!(wal.first_index(), Some(51));
        assert_eq!(wal.read(0, 60).unwrap(), records(51..60));
    }
    {
        let wal = open(dir.path(), small_segments());
        assert_eq!((wal.first_index(), wal.last_index()), (Some(51), Some(100)));
        assert_eq!(wal.read(0, 200).unwrap(), records(51..101));
        wal.purge_upto(150).unwrap();
        assert_eq!(
            (wal.first_index(), wal.last_index(), wal.next_index()),
            (None, None, Some(151))
        );
        assert!(matches!(
            append_durable(&wal, records(140..141)),
            Err(StorageError::OutOfOrder { expected: 151, .. })
        ));
    }
    let wal = open(dir.path(), small_segments());
    assert_eq!((wal.first_index(), wal.next_index()), (None, Some(151)));
    append_durable(&wal, records(151..160)).unwrap();
    drop(wal);
    let wal = open(dir.path(), small_segments());
    assert_eq!(wal.read(0, 1000).unwrap(), records(151..160));
}

/// Goal: meta values round-trip, are replaced whole, survive restart, and bad names are refused.
#[test]
fn meta_values() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), WalOptions::default());
        assert_eq!(wal.load_meta("vote").unwrap(), None);
        wal.save_meta("vote", b"term=1").unwrap();
        wal.save_meta("vote", b"term=2 voted=3").unwrap();
        assert_eq!(
            wal.load_meta("vote").unwrap().as_deref(),
            Some(&b"term=2 voted=3"[..])
        );
        assert!(matches!(
            wal.save_meta("../escape", b"x"),
            Err(StorageError::InvalidArgument { .. })
        ));
    }
    // A crash between writing the temp file and renaming leaves the old value in force.
    std::fs::write(dir.path().join("version-2/meta.vote.tmp"), b"half").unwrap();
    let wal = open(dir.path(), WalOptions::default());
    assert_eq!(
        wal.load_meta("vote").unwrap().as_deref(),
        Some(&b"term=2 voted=3"[..])
    );
    assert!(!dir.path().join("version-2/meta.vote.tmp").exists());
}

/// Goal: a second open of the same directory is refused while the first is live.
#[test]
fn directory_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = open(dir.path(), WalOptions::default());
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(StorageError::InUse { .. })
    ));
}

/// Goal: a torn last frame is cut with a report; appends continue after it.
/// Method: append, chop 3 bytes off the last frame (no preallocation, so the file ends there).
#[test]
fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        force_sync: true,
        segment_bytes_max: 1 << 20,
        preallocate_bytes: 0,
    };
    write_log(dir.path(), options.clone(), 1..11);
    let path = dir.path().join("version-2/log.0000000000000001");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (wal, report) = Wal::open(dir.path(), options).unwrap();
    let (tail_path, offset) = report.truncated_tail.expect("reported");
    assert_eq!(tail_path, path);
    assert_eq!(offset, len - common::payload_for(10).len() as u64 - 16);
    assert_eq!(wal.read(0, 100).unwrap(), records(1..10));
    append_durable(&wal, records(10..12)).unwrap();
    assert_eq!(wal.read(0, 100).unwrap(), records(1..12));
}

/// Goal: damage before the tail refuses to start, naming file and offset.
#[test]
fn corrupt_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), WalOptions::default(), 1..11);
    let path = dir.path().join("version-2/log.0000000000000001");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20 + 16 + 2] ^= 0x10; // Inside the first frame's payload.
    std::fs::write(&path, &bytes).unwrap();
    match Wal::open(dir.path(), WalOptions::default()) {
        Err(StorageError::Corrupt {
            path: reported,
            offset,
            what,
        }) => {
            assert_eq!((reported, offset), (path, 20));
            assert!(what.contains("restore"), "{what}");
        }
        other => panic!(
            "expected Corrupt, got {:?}",
            other.map(|(_, report)| report)
        ),
    }
}

/// Goal: an unknown format version is refused as such.
#[test]
fn unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), WalOptions::default(), 1..3);
    let path = dir.path().join("version-2/log.0000000000000001");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4] = 9;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(StorageError::UnknownVersion { version: 9, .. })
    ));
}
