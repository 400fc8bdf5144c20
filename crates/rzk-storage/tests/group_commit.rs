//! Group commit and failure handling: callbacks fire exactly once, with Ok only when durable,
//! far fewer syncs than appends, and the log survives failed writes and syncs.

mod common;

use std::sync::{mpsc, Arc, Mutex};

use common::*;
use rzk_storage::{StorageError, Wal, WalOptions};

/// Goal: with many threads appending at once, every callback fires Ok exactly once, in append
/// order, and one fdatasync covers many appends.
/// Method: 32 threads x 40 single-record appends; the index counter is taken under a lock so the
/// log stays contiguous. Each callback reports its index on a channel; the test waits (bounded)
/// for all of them, then checks order, uniqueness and the sync counter.
#[test]
fn concurrent_appends_share_syncs() {
    const THREADS: u64 = 32;
    const APPENDS_PER_THREAD: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open(dir.path(), WalOptions::default()));
    let total = append_from_threads(&wal, THREADS, APPENDS_PER_THREAD, |_| false);
    let stats = wal.stats();
    assert_eq!((stats.appends, stats.records), (total, total));
    println!("{total} appends took {} syncs", stats.syncs);
    assert!(
        stats.syncs * 4 < total,
        "group commit: {} syncs for {total} appends",
        stats.syncs
    );
    assert_eq!(wal.read(1, total + 1).unwrap(), records(1..total + 1));
}

/// `threads` threads x `per_thread` single-record appends, the index taken under a lock so the
/// log stays contiguous (appends reach the log in index order under it; a sync on the appending
/// thread holds it, the flusher's syncs do not); thread `t` uses `append_and_sync_here` when
/// `sync_here(t)`. Each callback reports its index; waits (bounded) for all of them and checks
/// that each fired Ok exactly once, in append order. Returns the number of appends.
fn append_from_threads(
    wal: &Arc<Wal>,
    threads: u64,
    per_thread: u64,
    sync_here: fn(u64) -> bool,
) -> u64 {
    let next_index = Arc::new(Mutex::new(1u64));
    let fired = Arc::new(Mutex::new(Vec::new()));
    let (sender, receiver) = mpsc::channel();
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (wal, next_index, fired, sender) = (
                wal.clone(),
                next_index.clone(),
                fired.clone(),
                sender.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    let mut next = next_index.lock().unwrap();
                    let index = *next;
                    let (fired, sender) = (fired.clone(), sender.clone());
                    let done = Box::new(move |result: Result<(), StorageError>| {
                        fired.lock().unwrap().push(index);
                        sender.send(result.is_ok()).unwrap();
                    });
                    let batch = records(index..index + 1);
                    if sync_here(thread) {
                        wal.append_and_sync_here(batch, done).unwrap();
                    } else {
                        wal.append(batch, done).unwrap();
                    }
                    *next += 1;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let total = threads * per_thread;
    for _ in 0..total {
        assert!(
            receiver
                .recv_timeout(WAIT_MAX)
                .expect("every callback fires"),
            "every callback is Ok"
        );
    }
    assert!(receiver.try_recv().is_err(), "no callback fires twice");
    assert_eq!(
        *fired.lock().unwrap(),
        (1..=total).collect::<Vec<_>>(),
        "callbacks run once each, in order"
    );
    total
}

/// Goal: a failed fdatasync fails every unsynced append (never Ok), rolls the log back to its
/// last durable record, and the next append works; a restart sees exactly the durable records.
#[test]
fn failed_sync_fails_callbacks_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), small_segments());
        append_durable(&wal, records(1..5)).unwrap();
        wal.faults().fail_next_syncs(1);
        let error = append_durable(&wal, records(5..8)).unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error}");
        assert_eq!(
            wal.last_index(),
            Some(4),
            "rolled back to the durable point"
        );
        assert_eq!(wal.read(0, 10).unwrap(), records(1..5));
        append_durable(&wal, records(5..9)).unwrap();
    }
    let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(report.truncated_tail, None);
    assert_eq!(wal.read(0, 100).unwrap(), records(1..9));
}

/// Goal: a failed sync at a segment roll fails the append and leaves a working log.
#[test]
fn failed_sync_at_roll() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), small_segments());
    append_durable(&wal, records(1..20)).unwrap();
    wal.faults().fail_next_syncs(1);
    // Enough bytes to need a roll inside this append.
    let result = append_durable(&wal, records(20..60));
    assert!(result.is_err());
    let last = wal.last_index().unwrap();
    assert!(last >= 19);
    append_durable(&wal, records(last + 1..last + 40)).unwrap();
    drop(wal);
    let wal = open(dir.path(), small_segments());
    assert_eq!(wal.read(0, 1000).unwrap(), records(1..last + 40));
}

/// Goal: a failed (partial) write fails its own append, leaves no stale bytes behind, and the
/// next append at the same index works; a restart finds no torn tail.
#[test]
fn failed_write_is_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), WalOptions::default());
        append_durable(&wal, records(1..5)).unwrap();
        wal.faults().fail_next_writes(1);
        let (sender, receiver) = mpsc::channel();
        let result = wal.append(
            records(5..50),
            Box::new(move |result| sender.send(result.is_ok()).unwrap()),
        );
        assert!(result.is_err());
        assert!(
            !receiver.recv_timeout(WAIT_MAX).unwrap(),
            "the callback of a failed append gets Err"
        );
        assert_eq!(wal.last_index(), Some(4));
        // Shorter records than the failed ones: stale frames would line up after them.
        append_durable(&wal, records(5..7)).unwrap();
    }
    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(report.truncated_tail, None);
    assert_eq!(wal.read(0, 100).unwrap(), records(1..7));
}

/// Goal: a callback that panics does not stop later callbacks or the flusher.
#[test]
fn panicking_callback_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), WalOptions::default());
    wal.append(records(1..2), Box::new(|_| panic!("callback bug")))
        .unwrap();
    append_durable(&wal, records(2..3)).unwrap();
    append_durable(&wal, records(3..4)).unwrap();
    assert_eq!(wal.read(0, 10).unwrap(), records(1..4));
}

/// Goal: with force_sync off, callbacks still fire Ok but no fdatasync is made.
#[test]
fn force_sync_off_skips_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        WalOptions {
            force_sync: false,
            ..WalOptions::default()
        },
    );
    for index in 1..20 {
        append_durable(&wal, records(index..index + 1)).unwrap();
    }
    assert_eq!(wal.stats().syncs, 0);
}

/// Goal: `append_and_sync_here` on an idle log syncs on the calling thread: the callback has run
/// (Ok, on this thread) when it returns, one sync per append, and the records are durable.
#[test]
fn append_and_sync_here_syncs_on_the_calling_thread_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), small_segments());
        for index in 1..40 {
            let caller = std::thread::current().id();
            let ran_on = Arc::new(Mutex::new(None));
            let seen = ran_on.clone();
            wal.append_and_sync_here(
                records(index..index + 1),
                Box::new(move |result| {
                    *seen.lock().unwrap() = Some((std::thread::current().id(), result.is_ok()));
                }),
            )
            .unwrap();
            assert_eq!(
                *ran_on.lock().unwrap(),
                Some((caller, true)),
                "append {index}: the callback ran Ok on the appending thread before it returned"
            );
        }
        let stats = wal.stats();
        assert_eq!(
            (stats.syncs, stats.syncs_here),
            (39, 39),
            "one sync per append, each on the appending thread (segment rolls not counted)"
        );
    }
    let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(report.truncated_tail, None);
    assert_eq!(wal.read(0, 100).unwrap(), records(1..40));
}

/// Goal: a failed sync on the appending thread fails that append's callback (never Ok) and
/// rolls the log back, as the flusher's does; the next append works.
#[test]
fn append_and_sync_here_failed_sync_fails_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), WalOptions::default());
    append_durable(&wal, records(1..5)).unwrap();
    wal.faults().fail_next_syncs(1);
    let outcome = Arc::new(Mutex::new(None));
    let seen = outcome.clone();
    wal.append_and_sync_here(
        records(5..8),
        Box::new(move |result| *seen.lock().unwrap() = Some(result.is_ok())),
    )
    .unwrap();
    assert_eq!(
        *outcome.lock().unwrap(),
        Some(false),
        "the callback got Err"
    );
    assert_eq!(
        wal.last_index(),
        Some(4),
        "rolled back to the durable point"
    );
    let (sender, receiver) = mpsc::channel();
    wal.append_and_sync_here(
        records(5..6),
        Box::new(move |result| sender.send(result.is_ok()).unwrap()),
    )
    .unwrap();
    assert!(receiver.recv_timeout(WAIT_MAX).unwrap());
    assert_eq!(wal.read(0, 10).unwrap(), records(1..6));
}

/// Goal: threads mixing `append` and `append_and_sync_here` (which finds the flusher syncing
/// or not) keep group commit sound: every callback fires Ok exactly once, in append order, and
/// a restart reads every record.
/// Method: 16 threads x 50 appends, odd threads syncing here, the index taken under a lock.
#[test]
fn mixed_appends_keep_order_and_fire_once() {
    let dir = tempfile::tempdir().unwrap();
    let total = {
        let wal = Arc::new(open(dir.path(), small_segments()));
        append_from_threads(&wal, 16, 50, |thread| thread % 2 == 1)
    };
    let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(report.truncated_tail, None);
    assert_eq!(wal.read(0, total + 1).unwrap(), records(1..total + 1));
}
