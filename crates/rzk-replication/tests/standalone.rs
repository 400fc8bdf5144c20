//! A one-member group through the public API: ordering, per-caller FIFO, restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzk_replication::{Applier, Replica, ReplicaConfig, Role};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// Records applied payloads in order. Its "state" is that list; snapshots serialize it.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(u64, Vec<u8>)>>,
    restores: Mutex<u32>,
}

impl Recorder {
    fn applied(&self) -> Vec<(u64, Vec<u8>)> {
        self.applied.lock().unwrap().clone()
    }
}

impl Applier for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) {
        let mut applied = self.applied.lock().unwrap();
        if let Some((last, _)) = applied.last() {
            assert!(
                index > *last,
                "index {index} applied after {last}: applied twice or out of order"
            );
        }
        applied.push((index, payload.to_vec()));
    }

    fn snapshot(&self) -> Vec<u8> {
        let applied = self.applied.lock().unwrap();
        let mut out = Vec::new();
        for (index, payload) in applied.iter() {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    fn restore(&self, mut bytes: &[u8]) -> Result<(), String> {
        let mut applied = Vec::new();
        while !bytes.is_empty() {
            let index = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
            applied.push((index, bytes[12..12 + len].to_vec()));
            bytes = &bytes[12 + len..];
        }
        *self.applied.lock().unwrap() = applied;
        *self.restores.lock().unwrap() += 1;
        Ok(())
    }
}

fn config(log_dir: Option<PathBuf>, snap_count: u64) -> ReplicaConfig {
    ReplicaConfig {
        node_id: 1,
        members: BTreeMap::from([(1, "127.0.0.1:2888".to_string())]),
        snapshot_dir: log_dir.clone(),
        log_dir,
        force_sync: true,
        log_segment_bytes: 16 << 20,
        snap_count,
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
    }
}

fn payload(caller: u32, seq: u32) -> Vec<u8> {
    let mut p = caller.to_le_bytes().to_vec();
    p.extend_from_slice(&seq.to_le_bytes());
    p
}

fn parse(p: &[u8]) -> (u32, u32) {
    (
        u32::from_le_bytes(p[..4].try_into().unwrap()),
        u32::from_le_bytes(p[4..8].try_into().unwrap()),
    )
}

async fn start(config: ReplicaConfig, applier: Arc<Recorder>) -> Replica {
    let started = tokio::time::timeout(WAIT, Replica::start(config, applier)).await;
    started
        .expect("Replica::start did not return in time")
        .expect("Replica::start failed")
}

/// `callers` tasks each propose `per_caller` payloads in sequence (without waiting for commit in
/// between), then wait for all of them. Returns the indexes each caller got.
async fn propose_concurrently(
    replica: &Arc<Replica>,
    callers: u32,
    per_caller: u32,
    seq_base: u32,
) -> Vec<Vec<u64>> {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let replica = Arc::clone(replica);
        tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for seq in seq_base..seq_base + per_caller {
                pending.push(
                    replica
                        .propose(payload(caller, seq))
                        .await
                        .expect("propose refused"),
                );
            }
            let mut indexes = Vec::new();
            for rx in pending {
                let index = tokio::time::timeout(WAIT, rx)
                    .await
                    .expect("proposal not resolved in time")
                    .expect("proposal dropped unanswered")
                    .expect("proposal failed");
                indexes.push(index);
            }
            indexes
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("proposer task panicked"));
    }
    all
}

/// Every caller's payloads appear in call order, each exactly once, at the index its proposal
/// resolved with.
fn check_order(
    applied: &[(u64, Vec<u8>)],
    got: &[Vec<u64>],
    callers: u32,
    per_caller: u32,
    seq_base: u32,
) {
    let by_index: BTreeMap<u64, (u32, u32)> = applied.iter().map(|(i, p)| (*i, parse(p))).collect();
    assert_eq!(by_index.len(), applied.len(), "an index was applied twice");
    for caller in 0..callers {
        let seqs: Vec<u32> = applied
            .iter()
            .map(|(_, p)| parse(p))
            .filter(|(c, _)| *c == caller)
            .map(|(_, s)| s)
            .collect();
        let want: Vec<u32> = (seq_base..seq_base + per_caller).collect();
        let tail: Vec<u32> = seqs.into_iter().filter(|s| *s >= seq_base).collect();
        assert_eq!(
            tail, want,
            "caller {caller}: payloads applied out of call order, lost or duplicated"
        );
        for (k, index) in got[caller as usize].iter().enumerate() {
            assert_eq!(
                by_index.get(index),
                Some(&(caller, seq_base + k as u32)),
                "proposal resolved with the wrong index"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_standalone_orders_concurrent_proposals() {
    let applier = Arc::new(Recorder::default());
    let replica = Arc::new(start(config(None, 100_000), Arc::clone(&applier)).await);
    assert_eq!(replica.role(), Role::Leader);

    let (callers, per_caller) = (8, 500);
    let got = propose_concurrently(&replica, callers, per_caller, 0).await;
    let applied = applier.applied();
    assert_eq!(applied.len(), (callers * per_caller) as usize);
    check_order(&applied, &got, callers, per_caller, 0);

    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_elects_itself_well_under_a_second() {
    let applier = Arc::new(Recorder::default());
    let began = std::time::Instant::now();
    let replica = start(config(None, 100_000), Arc::clone(&applier)).await;
    let took = began.elapsed();
    assert!(took < Duration::from_millis(500), "start took {took:?}");
    assert_eq!(replica.role(), Role::Leader);
    let rx = replica.propose(b"x".to_vec()).await.unwrap();
    let index = tokio::time::timeout(WAIT, rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(applier.applied(), vec![(index, b"x".to_vec())]);
    replica.shutdown().await;
}

/// Restart from the WAL: the applier is restored from the newest snapshot plus the committed log
/// after it; nothing is lost and no index is applied twice (the recorder asserts that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_standalone_restarts_from_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let snap_count = 300;

    // First life: enough entries for several snapshots and a purge behind them.
    let first = Arc::new(Recorder::default());
    let replica = Arc::new(
        start(
            config(Some(dir.path().to_path_buf()), snap_count),
            Arc::clone(&first),
        )
        .await,
    );
    let (callers, per_caller) = (4, 600);
    let got = propose_concurrently(&replica, callers, per_caller, 0).await;
    let before = first.applied();
    check_order(&before, &got, callers, per_caller, 0);
    // Snapshots are built and saved in the background: on a busy machine none may be on disk
    // yet when the proposals are done, and then there is nothing to restore.
    wait_for_snapshot_file(dir.path()).await;
    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;

    // Second life: state is back before start returns, and new proposals follow it.
    let second = Arc::new(Recorder::default());
    let replica = Arc::new(
        start(
            config(Some(dir.path().to_path_buf()), snap_count),
            Arc::clone(&second),
        )
        .await,
    );
    assert_eq!(
        *second.restores.lock().unwrap(),
        1,
        "the newest snapshot is restored once"
    );
    assert_eq!(
        second.applied(),
        before,
        "restored state differs from the state before the restart"
    );
    let got = propose_concurrently(&replica, callers, 50, per_caller).await;
    let after = second.applied();
    assert_eq!(after.len(), before.len() + (callers * 50) as usize);
    check_order(&after, &got, callers, 50, per_caller);
    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;

    // Third life: everything from both lives.
    let third = Arc::new(Recorder::default());
    let replica = start(
        config(Some(dir.path().to_path_buf()), snap_count),
        Arc::clone(&third),
    )
    .await;
    assert_eq!(
        third.applied(),
        after,
        "state after the second restart differs"
    );
    replica.shutdown().await;
}

/// Goal: a snapshot whose file cannot be written (a full or broken disk) is not fatal: it is
/// kept in memory, writes go on, the log is not purged past the newest saved snapshot, and once
/// the directory works again a restart recovers everything. Method: after start, the snapshot
/// directory's `version-2` becomes a plain file (every save then fails, whoever runs the test),
/// 200 entries at snapCount 40 make snapshots; the status shows one while no file exists and
/// nothing is purged; then the directory comes back, a clean shutdown saves one, and a restart
/// restores the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_be_saved_is_kept_in_memory_and_the_log_stays() {
    let log_dir = tempfile::tempdir().expect("a temporary log directory");
    let snapshot_dir = tempfile::tempdir().expect("a temporary snapshot directory");
    let config = || ReplicaConfig {
        snapshot_dir: Some(snapshot_dir.path().to_path_buf()),
        ..config(Some(log_dir.path().to_path_buf()), 40)
    };
    let first = Arc::new(Recorder::default());
    let replica = Arc::new(start(config(), Arc::clone(&first)).await);
    let version_dir = snapshot_dir.path().join("version-2");
    std::fs::remove_dir_all(&version_dir).unwrap();
    std::fs::write(&version_dir, b"not a directory").unwrap();

    let got = propose_concurrently(&replica, 2, 100, 0).await;
    let before = first.applied();
    check_order(&before, &got, 2, 100, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while replica.status().snapshot_index.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot built within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = replica.status();
    assert_eq!(status.purged_index, None, "{status:?}");
    assert!(version_dir.is_file(), "the blocked directory was replaced");
    // Writes still work after the failed saves.
    let more = propose_concurrently(&replica, 1, 10, 100).await;
    assert_eq!(more[0].len(), 10);
    let before = first.applied();

    std::fs::remove_file(&version_dir).unwrap();
    std::fs::create_dir(&version_dir).unwrap();
    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;
    let second = Arc::new(Recorder::default());
    let replica = start(config(), Arc::clone(&second)).await;
    assert_eq!(second.applied(), before, "state after the restart differs");
    replica.shutdown().await;
}

/// Wait (bounded) until a snapshot file is saved under `dir/version-2`.
async fn wait_for_snapshot_file(dir: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let saved = std::fs::read_dir(dir.join("version-2"))
            .map(|entries| {
                entries.flatten().any(|entry| {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("snapshot.") && !name.ends_with(".tmp")
                })
            })
            .unwrap_or(false);
        if saved {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot file under {} within {WAIT:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A clean shutdown leaves a snapshot of everything applied: the next start restores it and
/// replays nothing, even when `snapCount` was never reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_leaves_a_snapshot_of_everything_applied() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let snap_count = 100_000;
    let first = Arc::new(Recorder::default());
    let replica = Arc::new(
        start(
            config(Some(dir.path().to_path_buf()), snap_count),
            Arc::clone(&first),
        )
        .await,
    );
    let (callers, per_caller) = (2, 100);
    let got = propose_concurrently(&replica, callers, per_caller, 0).await;
    let before = first.applied();
    check_order(&before, &got, callers, per_caller, 0);
    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;
    let snapshots: Vec<String> = std::fs::read_dir(dir.path().join("version-2"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snapshot."))
        .collect();
    assert_eq!(
        snapshots.len(),
        1,
        "snapshot files after shutdown: {snapshots:?}"
    );

    let second = Arc::new(Recorder::default());
    let replica = start(
        config(Some(dir.path().to_path_buf()), snap_count),
        Arc::clone(&second),
    )
    .await;
    assert_eq!(
        *second.restores.lock().unwrap(),
        1,
        "the shutdown snapshot is restored"
    );
    // The recorder panics on an index applied twice, so a replay on top of the snapshot fails.
    assert_eq!(second.applied(), before, "state after the restart differs");
    replica.shutdown().await;
}

/// Goal: a single caller writing synchronously to a one-member group gets its log synced on the
/// Raft core's thread (no hand-off to the flusher and back), once a run of lone appends shows
/// that nothing else is in flight; concurrent proposers still get group commit.
/// Method: 60 proposals, each awaited before the next, then 8 callers x 200 pipelined ones;
/// the log's counters tell where each sync ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_synchronous_writer_syncs_on_the_core_thread() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let applier = Arc::new(Recorder::default());
    let replica = Arc::new(
        start(
            config(Some(dir.path().to_path_buf()), 100_000),
            Arc::clone(&applier),
        )
        .await,
    );
    let syncs = |replica: &Replica| {
        replica
            .status()
            .log_syncs
            .expect("a log on disk has counters")
    };
    let before = syncs(&replica);
    const SEQUENTIAL: u64 = 60;
    for seq in 0..SEQUENTIAL as u32 {
        let rx = replica.propose(payload(0, seq)).await.expect("propose");
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("proposal resolved in time")
            .expect("answered")
            .expect("committed");
    }
    let after = syncs(&replica);
    let here = after.syncs_here - before.syncs_here;
    assert!(
        here >= SEQUENTIAL - 10,
        "{here} of {SEQUENTIAL} synchronous writes synced on the core's thread ({} syncs in all)",
        after.syncs - before.syncs
    );

    let got = propose_concurrently(&replica, 8, 200, SEQUENTIAL as u32).await;
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 1600);
    let end = syncs(&replica);
    let records = end.records - after.records;
    assert!(
        (end.syncs - after.syncs) * 4 < records,
        "group commit under concurrent proposals: {} syncs for {records} records",
        end.syncs - after.syncs
    );
    Arc::into_inner(replica)
        .expect("no other handle")
        .shutdown()
        .await;
}
