//! A five-member rzk ensemble as real processes: it elects one leader and four followers,
//! and keeps serving with two members killed (the leader among them) because three of five are
//! a quorum, losing no acknowledged write.
//!
//! Timing: `tickTime=200`, `syncLimit=5`, as in `ensemble_replication.rs`.

mod support;

use std::time::{Duration, Instant};

use support::ensemble::{connect, mode, wait_for_leader};
use support::persistent;
use support::RzkServer;

const CONFIG: &[&str] = &["tickTime=200", "initLimit=10", "syncLimit=5"];
/// Bound on waits for a state the ensemble must reach (generous: a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_survive_two_failures() {
    let mut servers = RzkServer::start_ensemble(5, CONFIG);
    let all: Vec<usize> = (0..5).collect();
    let leader = wait_for_leader(&servers, &all, WAIT);

    // Writes through every member, read back through every other after sync.
    for (i, server) in servers.iter().enumerate() {
        let client = connect(&server.connect_string(), WAIT).await;
        client
            .create(&format!("/m{i}"), b"x", &persistent())
            .await
            .expect("create through a member");
    }
    for server in &servers {
        let client = connect(&server.connect_string(), WAIT).await;
        client.sync("/").await.expect("sync");
        for i in 0..5 {
            assert!(
                client
                    .check_stat(&format!("/m{i}"))
                    .await
                    .expect("exists")
                    .is_some(),
                "/m{i} on every member"
            );
        }
    }

    // Kill the leader and one follower: three of five remain, a quorum.
    let follower = (leader + 1) % 5;
    servers[leader].kill9();
    servers[follower].kill9();
    let survivors: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| i != leader && i != follower)
        .collect();
    let new_leader = wait_for_leader(&servers, &survivors, WAIT);
    assert_ne!(new_leader, leader);
    let client = connect(&servers[survivors[0]].connect_string(), WAIT).await;
    client
        .create("/after", b"", &persistent())
        .await
        .expect("a write with three of five");
    for i in 0..5 {
        assert!(
            client
                .check_stat(&format!("/m{i}"))
                .await
                .expect("exists")
                .is_some(),
            "acknowledged /m{i} kept"
        );
    }
}

/// Two of five members are no quorum: when three are killed, the two survivors stop serving
/// even when one of them was the leader (whose heartbeats to the other must not count as a
/// live leader once it has lost its own quorum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_five_stop_serving() {
    let mut servers = RzkServer::start_ensemble(5, CONFIG);
    let all: Vec<usize> = (0..5).collect();
    let leader = wait_for_leader(&servers, &all, WAIT);
    let client = connect(&servers[leader].connect_string(), WAIT).await;
    client
        .create("/before", b"", &persistent())
        .await
        .expect("a write with five of five");
    drop(client);
    // Keep the leader and one follower; kill the other three.
    let kept = [leader, (leader + 1) % 5];
    for i in all.iter().copied().filter(|i| !kept.contains(i)) {
        servers[i].kill9();
    }
    let deadline = Instant::now() + WAIT;
    for &i in &kept {
        while mode(&servers[i]).is_some() {
            assert!(
                Instant::now() < deadline,
                "member {i} still serving with two of five after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
