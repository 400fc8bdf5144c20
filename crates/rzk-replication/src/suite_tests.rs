//! openraft's storage conformance suite against this crate's log stores and state machine.

use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

use crate::log_mem::MemLog;
use crate::log_wal::WalLog;
use crate::raft_types::Rzk;
use crate::state_machine::{Snapshots, StateMachine};
use crate::Applier;

/// The suite applies only blank and membership entries; the applier only has to exist.
struct NoState;

impl Applier for NoState {
    fn apply(&self, index: u64, _payload: &[u8]) {
        panic!("the suite applies no normal entry, yet index {index} was applied");
    }
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

fn state_machine() -> StateMachine {
    StateMachine::new(Arc::new(NoState), Snapshots::in_memory(), Arc::default())
}

struct MemBuilder;

impl StoreBuilder<Rzk, MemLog, StateMachine> for MemBuilder {
    async fn build(&self) -> Result<((), MemLog, StateMachine), StorageError<Rzk>> {
        Ok(((), MemLog::default(), state_machine()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_log_passes_openraft_suite() {
    Suite::test_all(MemBuilder)
        .await
        .expect("openraft log suite on MemLog");
}

/// A fresh WAL in its own temporary directory (removed when the guard drops); `sync_on_append`:
/// every append syncs on the appending thread, as an idle one-member group's do
/// (`WalLog::sync_here_when_idle`), or none does (flusher only).
struct WalBuilder {
    sync_on_append: bool,
}

impl StoreBuilder<Rzk, WalLog, StateMachine, tempfile::TempDir> for WalBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, WalLog, StateMachine), StorageError<Rzk>> {
        let dir = tempfile::tempdir().expect("a temporary directory for the log");
        let log = WalLog::open(dir.path(), true, 16 << 20)
            .await
            .expect("opening the log in a fresh directory");
        if self.sync_on_append {
            // No proposal is ever counted: every append finds the group idle.
            log.sync_here_when_idle(Arc::default());
        }
        Ok((dir, log, state_machine()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_log_passes_openraft_suite() {
    Suite::test_all(WalBuilder {
        sync_on_append: false,
    })
    .await
    .expect("openraft log suite on WalLog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_log_syncing_on_append_passes_openraft_suite() {
    Suite::test_all(WalBuilder {
        sync_on_append: true,
    })
    .await
    .expect("openraft log suite on WalLog with sync_on_append");
}

/// Counts applies; enough for checking that old log is purged behind snapshots.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicU64);

impl Applier for Count {
    fn apply(&self, _index: u64, _payload: &[u8]) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes()
            .to_vec()
    }
    fn restore(&self, bytes: &[u8]) -> Result<(), String> {
        let n = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        self.0.store(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_is_purged_behind_snapshots_and_restart_still_works() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let config = crate::ReplicaConfig {
        node_id: 1,
        members: std::collections::BTreeMap::from([(1, "127.0.0.1:2888".to_string())]),
        log_dir: Some(dir.path().to_path_buf()),
        snapshot_dir: Some(dir.path().to_path_buf()),
        force_sync: true,
        log_segment_bytes: 16 << 20,
        snap_count: 200,
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
    };
    let wait = std::time::Duration::from_secs(30);
    let count = Arc::new(Count::default());
    let replica = crate::Replica::start(config.clone(), count.clone())
        .await
        .expect("start");
    let total = crate::LOGS_KEPT_BEHIND_SNAPSHOT + 1_000;
    let mut last = None;
    for i in 0..total {
        last = Some(
            replica
                .propose(i.to_le_bytes().to_vec())
                .await
                .expect("propose"),
        );
    }
    tokio::time::timeout(wait, last.expect("proposed"))
        .await
        .expect("last proposal in time")
        .unwrap()
        .unwrap();
    replica
        .raft
        .wait(Some(wait))
        .metrics(|m| m.purged.is_some(), "log purged behind a snapshot")
        .await
        .expect("openraft purges the log behind its snapshots");
    replica.shutdown().await;

    let again = Arc::new(Count::default());
    let replica = crate::Replica::start(config, again.clone())
        .await
        .expect("restart after purge");
    assert_eq!(again.0.load(std::sync::atomic::Ordering::Relaxed), total);
    replica.shutdown().await;
}
