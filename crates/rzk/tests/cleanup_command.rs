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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_keeps_the_newest_snapshots_and_the_server_recovers() {
    let mut server = RzkServer::start(&["snapCount=20"]);
    let address = server.connect_string();
    let client = connect(&address).await;
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
    let data_dir = server.data_dir();
    // Snapshots are written in the background: wait (bounded) for more than three.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while snapshots(&data_dir).len() <= 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no more than 3 snapshots after {ZNODES} writes with snapCount=20"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let client = connect(&address).await;
    assert_eq!(
        client
            .list_children("/kept")
            .await
            .expect("list after restart")
            .len(),
        ZNODES
    );
}
