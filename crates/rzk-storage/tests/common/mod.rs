//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rzk_storage::{Record, StorageError, Wal, WalOptions};

/// Upper bound for any wait on a callback: generous for a loaded 2-core machine, but bounded.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

pub fn record(index: u64) -> Record {
    Record {
        index,
        payload: payload_for(index),
    }
}

/// Distinct, index-derived payloads of varying length, so a record in the wrong place shows.
pub fn payload_for(index: u64) -> Vec<u8> {
    let len = (index * 7 % 50) as usize + 1;
    (0..len)
        .map(|position| (index as usize * 31 + position) as u8)
        .collect()
}

pub fn records(range: std::ops::Range<u64>) -> Vec<Record> {
    range.map(record).collect()
}

pub fn small_segments() -> WalOptions {
    WalOptions {
        force_sync: true,
        segment_bytes_max: 1024,
        preallocate_bytes: 2048,
    }
}

pub fn open(dir: &Path, options: WalOptions) -> Wal {
    Wal::open(dir, options).expect("open").0
}

/// Append and wait (bounded) for the durability callback.
pub fn append_durable(wal: &Wal, batch: Vec<Record>) -> Result<(), StorageError> {
    let (sender, receiver) = mpsc::channel();
    wal.append(
        batch,
        Box::new(move |result| sender.send(result).expect("test alive")),
    )?;
    receiver
        .recv_timeout(WAIT_MAX)
        .expect("callback within the bound")
}

/// Write `range` durably into a fresh log and close it.
pub fn write_log(dir: &Path, options: WalOptions, range: std::ops::Range<u64>) {
    let wal = open(dir, options);
    append_durable(&wal, records(range)).expect("append");
}
