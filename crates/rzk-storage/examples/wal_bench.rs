//! Appends/s and syncs/s of the log with 1 and 64 concurrent appenders, for BENCHMARKS.md.
//!
//! Run: `cargo run --release -p rzk-storage --example wal_bench -- [dir] [seconds] [payload bytes]`
//! (default: a temp dir under /tmp, 3 s per case, 256-byte records). Each appender waits for its
//! own callback before appending again, as a client waiting for its write to be acknowledged
//! would, so the figures show what group commit buys under concurrency.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzk_storage::{Record, Wal, WalOptions};

struct CaseResult {
    appends: u64,
    syncs: u64,
    elapsed: Duration,
}

fn run_case(
    dir: &std::path::Path,
    appenders: u64,
    run_for: Duration,
    payload_bytes: usize,
) -> CaseResult {
    let (wal, _) = Wal::open(dir, WalOptions::default()).expect("open the log");
    let wal = Arc::new(wal);
    let next_index = Arc::new(Mutex::new(wal.next_index().unwrap_or(1)));
    let start = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let (wal, next_index) = (Arc::clone(&wal), Arc::clone(&next_index));
            std::thread::spawn(move || {
                let mut appends = 0u64;
                while start.elapsed() < run_for {
                    let (sender, receiver) = mpsc::channel();
                    {
                        let mut next = next_index.lock().expect("index lock");
                        let record = Record {
                            index: *next,
                            payload: vec![0xAB; payload_bytes],
                        };
                        let done =
                            Box::new(move |result| sender.send(result).expect("bench alive"));
                        wal.append(vec![record], done).expect("append");
                        *next += 1;
                    }
                    receiver.recv().expect("callback").expect("durable");
                    appends += 1;
                }
                appends
            })
        })
        .collect();
    let appends = threads
        .into_iter()
        .map(|thread| thread.join().expect("appender"))
        .sum();
    let elapsed = start.elapsed();
    CaseResult {
        appends,
        syncs: wal.stats().syncs,
        elapsed,
    }
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let temp = tempfile_dir();
    let base = arguments
        .get(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.clone());
    let seconds: u64 = arguments
        .get(2)
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    let payload_bytes: usize = arguments
        .get(3)
        .and_then(|value| value.parse().ok())
        .unwrap_or(256);
    println!(
        "wal_bench: dir {} , {seconds} s per case, {payload_bytes}-byte records, fdatasync on",
        base.display()
    );
    println!(
        "{:>10} {:>12} {:>10} {:>14} {:>12}",
        "appenders", "appends/s", "syncs/s", "appends/sync", "mean ack us"
    );
    for appenders in [1u64, 64] {
        let dir = base.join(format!("case-{appenders}"));
        let _ = std::fs::remove_dir_all(&dir);
        let result = run_case(&dir, appenders, Duration::from_secs(seconds), payload_bytes);
        let seconds = result.elapsed.as_secs_f64();
        println!(
            "{:>10} {:>12.0} {:>10.0} {:>14.1} {:>12.0}",
            appenders,
            result.appends as f64 / seconds,
            result.syncs as f64 / seconds,
            result.appends as f64 / result.syncs.max(1) as f64,
            seconds * 1e6 * appenders as f64 / result.appends.max(1) as f64,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&temp);
}

/// A fresh directory under the system temp dir (the example avoids extra dependencies).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rzk-wal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the bench dir");
    dir
}
