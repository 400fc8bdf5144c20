//! A three-member rzk ensemble as real processes (`server.1..3` lines and myid files, through
//! the test harness), driven by the `zookeeper-client` crate: writes through every member are
//! read back through every other, the leader is killed while clients write, a follower is
//! killed and restarted, a follower's data is wiped, two of three members stop (reads and writes
//! refused until they return), and `mntr` shows the leader's followers.
//!
//! Timing: `tickTime=200`, `syncLimit=5`, so the sync window (a member without its quorum or
//! leader for this long turns `Looking`) is 1 s and the leader lease (the most a survivor waits
//! before it may vote, `rzk_replication::Timing::derive`) 0.5 s.

mod support;
#[path = "support/wire.rs"]
mod wire;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::ensemble::{assert_everywhere, connect, mntr_value, wait_for_leader};
use support::persistent;
use support::{try_four_letter, RzkServer};
use wire::{Ending, Wire};
use zookeeper_client::Client;

const CONFIG: &[&str] = &["tickTime=200", "initLimit=10", "syncLimit=5"];
/// syncLimit x tickTime.
const SYNC_WINDOW: Duration = Duration::from_millis(1_000);
/// A new leader must be serving within this long after the old one is killed: the followers
/// see its connections close, wait out its lease (0.5 s) and run one pre-vote + vote round
/// (0.5-0.8 s in all, README's ensemble paragraph). The margin is for a loaded 2-core machine.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);
/// Bound on waits for a state the ensemble must reach.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// Creates `/{prefix}-{n}` for n in 0..count through `client`, pipelined; returns the paths.
async fn create_many(client: &Client, prefix: &str, count: usize) -> BTreeSet<String> {
    let paths: Vec<String> = (0..count).map(|n| format!("/{prefix}-{n}")).collect();
    let options = persistent();
    let pending: Vec<_> = paths
        .iter()
        .map(|path| client.create(path, b"x", &options))
        .collect();
    for (path, result) in paths.iter().zip(futures_join(pending).await) {
        result.unwrap_or_else(|error| panic!("create {path}: {error}"));
    }
    paths.into_iter().collect()
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    for future in futures {
        out.push(future.await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_every_member_read_back_through_every_other() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    eprintln!("leader: member {leader}");

    let mut clients = Vec::new();
    for server in &servers {
        clients.push(connect(&server.connect_string(), WAIT).await);
    }
    let mut paths = BTreeSet::new();
    for (i, client) in clients.iter().enumerate() {
        let path = format!("/via-{i}");
        client
            .create(&path, format!("data {i}").as_bytes(), &persistent())
            .await
            .unwrap_or_else(|error| panic!("create through member {i}: {error}"));
        for (j, reader) in clients.iter().enumerate() {
            reader.sync(&path).await.expect("sync");
            let (data, _) = reader
                .get_data(&path)
                .await
                .unwrap_or_else(|error| panic!("{path} through member {j}: {error}"));
            assert_eq!(data, format!("data {i}").into_bytes());
        }
        paths.insert(path);
    }
    // A session's writes keep their order through a follower (one stream to the leader).
    let follower = (leader + 1) % 3;
    paths.extend(create_many(&clients[follower], "ordered", 200).await);
    let (_, stat_last) = clients[follower].get_data("/ordered-199").await.unwrap();
    let (_, stat_first) = clients[follower].get_data("/ordered-0").await.unwrap();
    assert!(stat_first.czxid < stat_last.czxid);
    assert_everywhere(&servers, &[0, 1, 2], &paths, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_while_clients_write_loses_no_acknowledged_write() {
    let mut servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let all: String = servers
        .iter()
        .map(|s| s.connect_string())
        .collect::<Vec<_>>()
        .join(",");
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let client = connect(&all, WAIT).await;
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut failures = 0u32;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/w{w}-{n}");
                n += 1;
                match client.create(&path, b"v", &persistent()).await {
                    Ok(_) => {
                        acknowledged.lock().unwrap().insert(path);
                    }
                    // Unknown outcome (connection lost, no quorum): not counted either way.
                    Err(_) => {
                        failures += 1;
                        // Back off while the ensemble elects (not synchronisation).
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            failures
        }));
    }
    let count = |acknowledged: &Arc<Mutex<BTreeSet<String>>>| acknowledged.lock().unwrap().len();
    let deadline = Instant::now() + WAIT;
    while count(&acknowledged) < 100 {
        assert!(Instant::now() < deadline, "writers made no progress");
        tokio::time::sleep(POLL).await;
    }

    let before_kill = count(&acknowledged);
    servers[leader].kill9();
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader =
        tokio::task::block_in_place(|| wait_for_leader(&servers, &survivors, FAILOVER_BOUND));
    let failover = killed.elapsed();
    eprintln!(
        "leader (member {leader}) killed with {before_kill} writes acknowledged; member {new_leader} leads after {failover:?}"
    );
    let resumed = count(&acknowledged);
    let deadline = Instant::now() + WAIT;
    while count(&acknowledged) < resumed + 100 {
        assert!(
            Instant::now() < deadline,
            "writers did not resume after the failover"
        );
        tokio::time::sleep(POLL).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer task");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_everywhere(&servers, &survivors, &acknowledged, WAIT).await;

    // The old leader comes back as a follower with every acknowledged write.
    servers[leader].start_again();
    wait_for_leader(&servers, &[0, 1, 2], WAIT);
    assert_everywhere(&servers, &[leader], &acknowledged, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_and_a_wiped_one_rejoins_by_snapshot() {
    // The replica's snapshot installs are logged at info.
    std::env::set_var(
        "RUST_LOG",
        "warn,rzk=info,rzk_server=info,rzk_replication=info",
    );
    let mut config = CONFIG.to_vec();
    config.push("snapCount=100");
    let mut servers = RzkServer::start_ensemble(3, &config);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let follower = (leader + 1) % 3;
    let writer = connect(&servers[leader].connect_string(), WAIT).await;

    let mut paths = create_many(&writer, "before", 50).await;
    servers[follower].kill9();
    paths.extend(create_many(&writer, "while-down", 200).await);
    servers[follower].start_again();
    wait_for_leader(&servers, &[0, 1, 2], WAIT);
    assert_everywhere(&servers, &[follower, leader], &paths, WAIT).await;

    // Wiped (myid kept): the leader snapshotted every ~100 entries and keeps 1,000 entries
    // behind its snapshot, so after 1,300 more writes the member can only catch up by snapshot.
    servers[follower].stop();
    let data_dir = servers[follower].data_dir();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "myid" {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    for batch in 0..13 {
        paths.extend(create_many(&writer, &format!("wiped-{batch}"), 100).await);
    }
    let log_before = servers[follower].log().len();
    servers[follower].start_again();
    wait_for_leader(&servers, &[0, 1, 2], WAIT);
    assert_everywhere(&servers, &[follower, leader], &paths, WAIT).await;
    let log = servers[follower].log();
    assert!(
        log[log_before..].contains("installing snapshot"),
        "the wiped member did not install a snapshot:\n{}",
        &log[log_before..]
    );
}

/// Two of three members stopped: the survivor (the leader) stops serving within a bound of the
/// sync window and then refuses READS as well as writes: the connections it served are closed,
/// a read through the `zookeeper-client` session gets no data, and a new session (the crate's
/// or a raw ConnectRequest) is refused. Once the others return, every acknowledged write is
/// there, on every member, with the same data and Stat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_the_survivor_refuses_service_until_the_others_return() {
    let mut servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let port = servers[leader].port();
    let writer = connect(&servers[leader].connect_string(), WAIT).await;
    let paths = create_many(&writer, "kept", 100).await;
    // A raw session on the survivor, opened while it serves: the member must close it.
    let mut raw = Wire::connect(port);
    raw.ping()
        .expect("a ping on a raw session while the quorum is up");

    // Stop both followers: the leader loses its quorum.
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for i in &others {
        servers[*i].stop();
    }
    let lost = Instant::now();
    let deadline = lost + 4 * SYNC_WINDOW + Duration::from_secs(5);
    loop {
        let reply = try_four_letter(port, "srvr", Duration::from_secs(2)).unwrap_or_default();
        if reply.contains("not currently serving") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor still serves {:?} after losing its quorum: {reply:?}",
            lost.elapsed()
        );
        std::thread::sleep(POLL);
    }
    eprintln!(
        "survivor stopped serving {:?} after its quorum went away",
        lost.elapsed()
    );
    assert_eq!(
        tokio::task::block_in_place(|| raw.ending(wire::WAIT)),
        Ok(Ending::Closed),
        "the survivor kept a client connection open without a quorum"
    );
    let read = tokio::time::timeout(Duration::from_secs(10), writer.get_data("/kept-0")).await;
    assert!(
        !matches!(read, Ok(Ok(_))),
        "a read was answered without a quorum: {read:?}"
    );
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        writer.create("/refused", b"", &persistent()),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a write was acknowledged without a quorum"
    );
    let fresh = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .connect(&servers[leader].connect_string()),
    )
    .await;
    assert!(
        !matches!(fresh, Ok(Ok(_))),
        "a new session was established without a quorum"
    );
    let handshake = tokio::task::block_in_place(|| {
        Wire::unconnected(port).handshake(&wire::new_session_request())
    });
    assert!(
        handshake.is_err(),
        "a raw ConnectRequest got a session without a quorum: {handshake:?}"
    );

    for i in &others {
        servers[*i].start_again();
    }
    wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let client = connect(&servers[others[0]].connect_string(), WAIT).await;
    let mut paths = paths;
    paths.extend(create_many(&client, "after", 20).await);
    assert_everywhere(&servers, &[0, 1, 2], &paths, WAIT).await;
}

/// `mntr` on a three-member ensemble, as ZooKeeper's leader and followers show it: the leader
/// says `zk_server_state leader` with `zk_followers 2` and `zk_synced_followers 2` (polled, bounded:
/// a follower counts as synced once it answered within the sync window), each follower says
/// `zk_server_state follower` without the leader-only lines. With one follower killed the
/// leader's counts drop to 1.
#[test]
fn mntr_shows_the_leader_with_two_synced_followers() {
    let mut servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let leader_counts = |servers: &[RzkServer]| {
        (
            mntr_value(&servers[leader], "zk_server_state"),
            mntr_value(&servers[leader], "zk_followers"),
            mntr_value(&servers[leader], "zk_synced_followers"),
        )
    };
    let wait_for_counts = |servers: &[RzkServer], wanted: &str| {
        let expected = (
            Some("leader".to_string()),
            Some(wanted.to_string()),
            Some(wanted.to_string()),
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = leader_counts(servers);
            if seen == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "leader's mntr (zk_server_state, zk_followers, zk_synced_followers) is {seen:?} \
                 after {WAIT:?}, expected {expected:?}"
            );
            std::thread::sleep(POLL);
        }
    };
    wait_for_counts(&servers, "2");
    for &i in &followers {
        assert_eq!(
            mntr_value(&servers[i], "zk_server_state").as_deref(),
            Some("follower"),
            "member {i}'s mntr"
        );
        for leader_only in ["zk_followers", "zk_synced_followers"] {
            assert_eq!(
                mntr_value(&servers[i], leader_only),
                None,
                "member {i} (a follower) shows {leader_only}"
            );
        }
    }
    servers[followers[0]].kill9();
    wait_for_counts(&servers, "1");
}
