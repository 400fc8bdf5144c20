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
    fn restore(&self, _bytes: &[u8]) {}
}

fn state_machine() -> StateMachine {
    StateMachine::new(Arc::new(NoState), Snapshots::in_memory())
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

/// A fresh WAL in its own temporary directory (removed when the guard drops).
struct WalBuilder;

impl StoreBuilder<Rzk, WalLog, StateMachine, tempfile::TempDir> for WalBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, WalLog, StateMachine), StorageError<Rzk>> {
        let dir = tempfile::tempdir().expect("a temporary directory for the log");
        let log = WalLog::open(dir.path(), true)
            .await
            .expect("opening the log in a fresh directory");
        Ok((dir, log, state_machine()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_log_passes_openraft_suite() {
    Suite::test_all(WalBuilder)
        .await
        .expect("openraft log suite on WalLog");
}
