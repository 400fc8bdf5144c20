//! `rzk cleanup` (ZooKeeper's PurgeTxnLog, what `bin/zkCleanup.sh` runs) on a server's data
//! directory: with many snapshots taken (small snapCount), `-n 3` keeps exactly the three newest
//! snapshots, refuses fewer than three, and the server still recovers every znode when started
//! again (only what the kept snapshots cover was removed from the log).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{run_bounded, RzkServer};
use zookeeper_client::{Acls, Client, CreateMode};

const ZNODES: usize = 300;

fn snapshots(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("version-2"))
        .expect("version-2 exists")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snapshot."))
        .collect();
    names.sort();
    names
}

async fn connect(address: &str) -> Client {
    tokio::time::timeout(support::READY_TIMEOUT, Client::connect(address))
        .await
        .expect("connected within the ready timeout")
        .expect("connect")
}

/// A server with `ZNODES` znodes under /kept and more than three snapshots on disk (small
/// snapCount), still running.
async fn server_with_many_snapshots() -> RzkServer {
    let server = RzkServer::start(&["snapCount=20"]);
    let client = connect(&server.connect_string()).await;
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client
        .create("/kept", b"", &persistent)
        .await
        .expect("create /kept");
    for i in 0..ZNODES {
        client
            .create(&format!("/kept/n{i}"), b"v", &persistent)
            .await
            .expect("create");
    }
    drop(client);
    // Snapshots are written in the background: wait (bounded) for more than three.
    wait_for_snapshots(&server.data_dir(), "more than 3", |count| count > 3).await;
    server
}

/// Poll (bounded) until the number of snapshot files satisfies `wanted`.
async fn wait_for_snapshots(data_dir: &Path, what: &str, wanted: impl Fn(usize) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !wanted(snapshots(data_dir).len()) {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what} snapshot files; there are {:?}",
            snapshots(data_dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_all_znodes(address: &str) {
    let client = connect(address).await;
    assert_eq!(
        client
            .list_children("/kept")
            .await
            .expect("list after restart")
            .len(),
        ZNODES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_keeps_the_newest_snapshots_and_the_server_recovers() {
    let mut server = server_with_many_snapshots().await;
    let address = server.connect_string();
    let data_dir = server.data_dir();
    // Stopped, so that no snapshot is written while the directory is checked.
    server.stop();
    let before = snapshots(&data_dir);

    let mut refused = Command::new(support::rzk_binary());
    refused.arg("cleanup").arg("-n").arg("2").arg(&data_dir);
    let refused = run_bounded(refused, None, Duration::from_secs(30));
    assert!(
        !refused.status.success(),
        "-n 2 is refused: {}",
        support::describe_output(&refused)
    );
    assert_eq!(
        snapshots(&data_dir),
        before,
        "a refused cleanup removes nothing"
    );

    let mut cleanup = Command::new(support::rzk_binary());
    cleanup.arg("cleanup").arg("-n").arg("3").arg(&data_dir);
    let output = run_bounded(cleanup, None, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "rzk cleanup -n 3: {}",
        support::describe_output(&output)
    );
    let after = snapshots(&data_dir);
    assert_eq!(after.len(), 3, "three snapshots kept: {after:?}");
    assert!(
        before.ends_with(&after),
        "the three newest are kept: before {before:?}, after {after:?}"
    );
    assert!(
        support::stdout_text(&output).contains("Removing file:"),
        "{}",
        support::describe_output(&output)
    );

    server.start_again();
    assert_all_znodes(&address).await;
}

/// autopurge.purgeInterval (hours) > 0: as ZooKeeper's DatadirCleanupManager, the server purges
/// once when it starts and then every interval, keeping autopurge.snapRetainCount snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopurge_keeps_snap_retain_count_snapshots_from_the_start() {
    let mut server = server_with_many_snapshots().await;
    let address = server.connect_string();
    let data_dir = server.data_dir();
    server.stop();
    let before = snapshots(&data_dir);
    assert!(before.len() > 3, "{before:?}");
    let mut config = std::fs::read_to_string(server.config_path()).expect("read zoo.cfg");
    config.push_str("autopurge.purgeInterval=1\nautopurge.snapRetainCount=3\n");
    std::fs::write(server.config_path(), config).expect("write zoo.cfg");

    server.start_again();
    wait_for_snapshots(&data_dir, "exactly 3", |count| count == 3).await;
    let after = snapshots(&data_dir);
    // The three newest are kept: those of before's newest three that are left, plus any taken
    // since the start (names sort by index), and nothing older.
    let newest_before = &before[before.len() - 3..];
    assert!(
        after
            .iter()
            .all(|name| newest_before.contains(name) || name > before.last().unwrap()),
        "the newest snapshots are kept: before {before:?}, after {after:?}"
    );
    assert!(
        server.log().contains("autopurge done"),
        "the server logs its purge:\n{}",
        server.log_tail()
    );
    assert_all_znodes(&address).await;
}
