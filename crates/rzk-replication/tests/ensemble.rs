//! Three replicas on loopback ports through the TCP transport.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzk_replication::{Applier, ProposeError, Replica, ReplicaConfig, Role};

const WAIT: Duration = Duration::from_secs(30);

/// Records applied payloads and publishes how many it has.
struct Recorder {
    applied: Mutex<Vec<(u64, Vec<u8>)>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            applied: Mutex::new(Vec::new()),
            count: tokio::sync::watch::channel(0).0,
        })
    }

    async fn wait_for(&self, n: usize) {
        let mut count = self.count.subscribe();
        tokio::time::timeout(WAIT, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("a replica did not apply {n} entries in time"))
            .expect("recorder alive");
    }
}

impl Applier for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) {
        let mut applied = self.applied.lock().unwrap();
        applied.push((index, payload.to_vec()));
        self.count.send_replace(applied.len());
    }
    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.applied.lock().unwrap()).unwrap()
    }
    fn restore(&self, bytes: &[u8]) {
        let applied: Vec<(u64, Vec<u8>)> = serde_json::from_slice(bytes).unwrap();
        self.count.send_replace(applied.len());
        *self.applied.lock().unwrap() = applied;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_elect_one_leader_and_apply_the_same_log() {
    let ports = free_ports(3);
    let members: BTreeMap<u64, String> = (1..=3)
        .map(|id| (id, format!("127.0.0.1:{}", ports[id as usize - 1])))
        .collect();
    let appliers: Vec<Arc<Recorder>> = (0..3).map(|_| Recorder::new()).collect();
    let mut starting = Vec::new();
    for id in 1..=3u64 {
        let config = ReplicaConfig {
            node_id: id,
            members: members.clone(),
            log_dir: None,
            snapshot_dir: None,
            force_sync: true,
            snap_count: 100_000,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
        };
        let applier: Arc<dyn Applier> = appliers[id as usize - 1].clone();
        starting.push(tokio::spawn(Replica::start(config, applier)));
    }
    let mut replicas = Vec::new();
    for s in starting {
        let started = tokio::time::timeout(WAIT, s)
            .await
            .expect("start in time")
            .expect("start task");
        replicas.push(started.expect("replica started"));
    }

    let leaders: Vec<usize> = (0..3)
        .filter(|i| replicas[*i].role() == Role::Leader)
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "exactly one leader, roles: {:?}",
        replicas.iter().map(Replica::role).collect::<Vec<_>>()
    );
    let leader = &replicas[leaders[0]];
    let follower = &replicas[(leaders[0] + 1) % 3];

    let rx = follower
        .propose(b"to a follower".to_vec())
        .await
        .expect("enqueued");
    assert_eq!(
        tokio::time::timeout(WAIT, rx).await.unwrap().unwrap(),
        Err(ProposeError::NoLeader)
    );

    let n = 300usize;
    let mut pending = Vec::new();
    for i in 0..n {
        pending.push(
            leader
                .propose(format!("p{i}").into_bytes())
                .await
                .expect("enqueued"),
        );
    }
    for rx in pending {
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("resolved in time")
            .unwrap()
            .expect("committed");
    }
    for applier in &appliers {
        applier.wait_for(n).await;
    }
    let logs: Vec<_> = appliers
        .iter()
        .map(|a| a.applied.lock().unwrap().clone())
        .collect();
    assert_eq!(logs[0].len(), n);
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
    let payloads: Vec<Vec<u8>> = logs[0].iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(
        payloads,
        (0..n)
            .map(|i| format!("p{i}").into_bytes())
            .collect::<Vec<_>>()
    );

    for r in replicas {
        r.shutdown().await;
    }
}
