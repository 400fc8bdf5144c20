//! Three replicas on loopback ports through the TCP transport: one log on every member,
//! forwarding from followers, touches to the leader, read barriers, status, quorum loss and
//! catch-up by snapshot.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzk_replication::{Applier, ProposeError, Replica, ReplicaConfig, Role};

const WAIT: Duration = Duration::from_secs(30);
const TICK_MS: u64 = 100;
const SYNC_LIMIT: u64 = 5;
const SYNC_WINDOW: Duration = Duration::from_millis(TICK_MS * SYNC_LIMIT);

/// Records applied payloads and publishes how many it has.
struct Recorder {
    applied: Mutex<Vec<(u64, Vec<u8>)>>,
    count: tokio::sync::watch::Sender<usize>,
    touched: Mutex<Vec<i64>>,
    touched_count: tokio::sync::watch::Sender<usize>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            applied: Mutex::new(Vec::new()),
            count: tokio::sync::watch::channel(0).0,
            touched: Mutex::new(Vec::new()),
            touched_count: tokio::sync::watch::channel(0).0,
        })
    }

    async fn wait_for(&self, n: usize) {
        let mut count = self.count.subscribe();
        tokio::time::timeout(WAIT, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("a replica did not apply {n} entries in time"))
            .expect("recorder alive");
    }

    fn len(&self) -> usize {
        self.applied.lock().unwrap().len()
    }

    fn payloads(&self) -> Vec<Vec<u8>> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl Applier for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) {
        let mut applied = self.applied.lock().unwrap();
        applied.push((index, payload.to_vec()));
        self.count.send_replace(applied.len());
    }
    /// `u64 index | u32 length | payload` per entry: compact, so big snapshots stay cheap.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, payload) in self.applied.lock().unwrap().iter() {
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
        self.count.send_replace(applied.len());
        *self.applied.lock().unwrap() = applied;
        Ok(())
    }
    fn sessions_touched(&self, session_ids: &[i64]) {
        let mut touched = self.touched.lock().unwrap();
        touched.extend_from_slice(session_ids);
        self.touched_count.send_replace(touched.len());
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Group {
    members: BTreeMap<u64, String>,
    snap_count: u64,
    log_dirs: Vec<Option<PathBuf>>,
    replicas: Vec<Option<Replica>>,
    appliers: Vec<Arc<Recorder>>,
    _dirs: Option<tempfile::TempDir>,
}

impl Group {
    /// Three members; with `durable`, each logs to its own directory (so it can restart).
    async fn start(snap_count: u64, durable: bool) -> Group {
        let ports = free_ports(3);
        let members: BTreeMap<u64, String> = (1..=3)
            .map(|id| (id, format!("127.0.0.1:{}", ports[id as usize - 1])))
            .collect();
        let dirs = durable.then(|| tempfile::tempdir().unwrap());
        let log_dirs = (1..=3)
            .map(|id| dirs.as_ref().map(|d| d.path().join(format!("m{id}"))))
            .collect();
        let mut group = Group {
            members,
            snap_count,
            log_dirs,
            replicas: (0..3).map(|_| None).collect(),
            appliers: (0..3).map(|_| Recorder::new()).collect(),
            _dirs: dirs,
        };
        let mut starting = Vec::new();
        for i in 0..3 {
            starting.push(tokio::spawn(Replica::start(
                group.config(i),
                group.appliers[i].clone() as Arc<dyn Applier>,
            )));
        }
        for (i, s) in starting.into_iter().enumerate() {
            let started = tokio::time::timeout(WAIT, s)
                .await
                .expect("start in time")
                .expect("start task");
            group.replicas[i] = Some(started.expect("replica started"));
        }
        group
    }

    fn config(&self, i: usize) -> ReplicaConfig {
        ReplicaConfig {
            node_id: i as u64 + 1,
            members: self.members.clone(),
            log_dir: self.log_dirs[i].clone(),
            snapshot_dir: None,
            force_sync: false,
            log_segment_bytes: 16 << 20,
            snap_count: self.snap_count,
            tick_ms: TICK_MS,
            init_limit: 10,
            sync_limit: SYNC_LIMIT,
        }
    }

    fn replica(&self, i: usize) -> &Replica {
        self.replicas[i].as_ref().expect("member running")
    }

    fn roles(&self) -> Vec<Option<Role>> {
        self.replicas
            .iter()
            .map(|r| r.as_ref().map(Replica::role))
            .collect()
    }

    /// Index of the one running leader, waiting for the running members to agree on one.
    async fn leader(&self) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            let running: Vec<usize> = (0..3).filter(|i| self.replicas[*i].is_some()).collect();
            let leaders: Vec<usize> = running
                .iter()
                .copied()
                .filter(|i| self.replica(*i).role() == Role::Leader)
                .collect();
            let following = running
                .iter()
                .filter(|i| self.replica(**i).role() == Role::Follower)
                .count();
            if leaders.len() == 1 && following + 1 == running.len() {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no single leader in time: {:?}",
                self.roles()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(&mut self, i: usize) {
        self.replicas[i].take().expect("running").shutdown().await;
    }

    /// Start member `i` again: same log directory, or wiped (`fresh`: new applier, empty log).
    async fn restart(&mut self, i: usize, fresh: bool) {
        if fresh {
            if let Some(dir) = &self.log_dirs[i] {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        self.appliers[i] = Recorder::new();
        let started = tokio::time::timeout(
            WAIT,
            Replica::start(self.config(i), self.appliers[i].clone() as Arc<dyn Applier>),
        )
        .await
        .expect("restart in time")
        .expect("replica restarted");
        self.replicas[i] = Some(started);
    }

    async fn shutdown(mut self) {
        for i in 0..3 {
            if self.replicas[i].is_some() {
                self.stop(i).await;
            }
        }
    }
}

/// Propose `payloads` through member `i` (pipelined) and wait until every one resolves.
async fn propose_all(replica: &Replica, payloads: impl IntoIterator<Item = Vec<u8>>) -> Vec<u64> {
    let mut pending = Vec::new();
    for payload in payloads {
        pending.push(replica.propose(payload).await.expect("enqueued"));
    }
    let mut indexes = Vec::new();
    for rx in pending {
        indexes.push(
            tokio::time::timeout(WAIT, rx)
                .await
                .expect("resolved in time")
                .expect("not dropped")
                .expect("committed"),
        );
    }
    indexes
}

fn numbered(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_in_order_and_every_member_applies_the_same_log() {
    let group = Group::start(100_000, false).await;
    let leader = group.leader().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    // Pipelined through a follower: one ordered stream, so the log keeps the call order, and
    // each proposal resolves only once the follower itself applied it.
    let n = 300;
    let mut pending = Vec::new();
    for payload in numbered("f", n) {
        pending.push(group.replica(follower).propose(payload).await.unwrap());
    }
    let mut last = 0;
    for rx in pending {
        let index = tokio::time::timeout(WAIT, rx)
            .await
            .unwrap()
            .unwrap()
            .expect("forwarded proposal committed");
        assert!(index > last, "indexes increase in call order");
        last = index;
        assert!(
            group.appliers[follower]
                .applied
                .lock()
                .unwrap()
                .iter()
                .any(|(i, _)| *i == index),
            "resolved before the follower applied index {index}"
        );
    }
    // Then through the leader and the other follower.
    propose_all(group.replica(leader), numbered("l", n)).await;
    propose_all(group.replica(other), numbered("o", n)).await;

    for applier in &group.appliers {
        applier.wait_for(3 * n).await;
    }
    let logs: Vec<_> = group
        .appliers
        .iter()
        .map(|a| a.applied.lock().unwrap().clone())
        .collect();
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
    let expected: Vec<Vec<u8>> = [numbered("f", n), numbered("l", n), numbered("o", n)].concat();
    assert_eq!(group.appliers[0].payloads(), expected);

    let status = group.replica(leader).status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.leader_id, Some(leader as u64 + 1));
    assert_eq!(status.followers, 2, "{status:?}");
    assert_eq!(status.synced_followers, 2, "{status:?}");
    assert!(status.commit_index >= 3 * n as u64, "{status:?}");
    let status = group.replica(follower).status();
    assert_eq!(status.role, Role::Follower);
    assert_eq!(status.leader_id, Some(leader as u64 + 1));
    assert_eq!((status.followers, status.synced_followers), (0, 0));
    assert!(status.applied_index >= 3 * n as u64, "{status:?}");
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_reach_the_leader_and_read_barriers_see_committed_writes() {
    let group = Group::start(100_000, false).await;
    let leader = group.leader().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    group.replica(follower).report_touches(vec![11, 12]);
    group.replica(other).report_touches(vec![21]);
    group.replica(leader).report_touches(vec![1]);
    let mut touched = group.appliers[leader].touched_count.subscribe();
    tokio::time::timeout(WAIT, touched.wait_for(|n| *n >= 4))
        .await
        .expect("touches reached the leader in time")
        .unwrap();
    let mut ids = group.appliers[leader].touched.lock().unwrap().clone();
    ids.sort();
    assert_eq!(ids, vec![1, 11, 12, 21]);
    for i in [follower, other] {
        assert!(group.appliers[i].touched.lock().unwrap().is_empty());
    }

    // Writes acknowledged by the leader are visible on a follower after its read barrier.
    for round in 0..20 {
        let indexes = propose_all(group.replica(leader), numbered(&format!("r{round}-"), 10)).await;
        group
            .replica(other)
            .read_barrier()
            .await
            .expect("read barrier on a follower");
        let applied = group.appliers[other].len();
        assert!(
            applied >= 10 * (round + 1),
            "after the barrier the follower applied {applied} entries, index {:?} committed",
            indexes.last()
        );
        group
            .replica(leader)
            .read_barrier()
            .await
            .expect("read barrier on the leader");
    }
    group.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_the_quorum_turns_looking_within_the_sync_window() {
    for survivor_is_leader in [true, false] {
        let mut group = Group::start(100_000, false).await;
        let leader = group.leader().await;
        let survivor = if survivor_is_leader {
            leader
        } else {
            (leader + 1) % 3
        };
        propose_all(group.replica(survivor), numbered("q", 10)).await;
        for i in 0..3 {
            if i != survivor {
                group.stop(i).await;
            }
        }
        let cut_off = Instant::now();
        let deadline = cut_off + 4 * SYNC_WINDOW + Duration::from_secs(2);
        while group.replica(survivor).role() != Role::Looking {
            assert!(Instant::now() < deadline, "still {:?}", group.roles());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = cut_off.elapsed();
        eprintln!(
            "survivor (was {}) turned Looking {took:?} after losing its quorum (sync window {SYNC_WINDOW:?})",
            if survivor_is_leader { "leader" } else { "follower" }
        );
        assert!(took <= 2 * SYNC_WINDOW, "took {took:?}");
        let status = group.replica(survivor).status();
        assert_eq!((status.role, status.leader_id), (Role::Looking, None));

        let rx = group
            .replica(survivor)
            .propose(b"refused".to_vec())
            .await
            .unwrap();
        assert_eq!(
            tokio::time::timeout(WAIT, rx).await.unwrap().unwrap(),
            Err(ProposeError::NoLeader)
        );
        assert_eq!(
            group.replica(survivor).read_barrier().await,
            Err(ProposeError::NoLeader)
        );
        group.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_catches_up_by_log_and_a_wiped_one_by_a_large_snapshot() {
    let mut group = Group::start(200, true).await;
    let leader = group.leader().await;
    let follower = (leader + 1) % 3;

    propose_all(group.replica(leader), numbered("a", 50)).await;
    group.stop(follower).await;
    propose_all(group.replica(leader), numbered("b", 50)).await;
    group.restart(follower, false).await;
    group.appliers[follower].wait_for(100).await;
    assert_eq!(
        group.appliers[follower].payloads(),
        group.appliers[leader].payloads()[..group.appliers[follower].len()].to_vec()
    );

    // Wiped: the leader has snapshotted (every ~200 entries) and purged its log past what the
    // member had, so the member needs the snapshot: ~24 MiB, many chunks.
    group.stop(follower).await;
    let big = 8_000;
    let chunk = vec![7u8; 3_000];
    let payloads: Vec<Vec<u8>> = (0..big)
        .map(|i| {
            let mut p = format!("c{i}-").into_bytes();
            p.extend_from_slice(&chunk);
            p
        })
        .collect();
    for part in payloads.chunks(500) {
        propose_all(group.replica(leader), part.to_vec()).await;
    }
    let started = Instant::now();
    group.restart(follower, true).await;
    group.appliers[follower].wait_for(100 + big).await;
    eprintln!(
        "wiped member caught up by snapshot in {:?}",
        started.elapsed()
    );
    let on_leader = group.appliers[leader].payloads();
    let on_follower = group.appliers[follower].payloads();
    assert_eq!(on_follower, on_leader[..on_follower.len()].to_vec());

    // And it takes part again (once it follows: while installing it may be Looking): proposals
    // through it commit everywhere.
    group.leader().await;
    propose_all(group.replica(follower), numbered("d", 20)).await;
    for applier in &group.appliers {
        applier.wait_for(100 + big + 20).await;
    }
    group.shutdown().await;
}
