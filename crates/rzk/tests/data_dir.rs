//! What a server leaves in its data directory: log segments sized by `preAllocSize` (rzk's
//! default 16 MiB), and a snapshot after a clean stop.

mod support;

use std::path::Path;

use support::RzkServer;
use zookeeper_client::{Acls, Client, CreateMode};

/// The segment header before the preallocated space (`rzk-storage`'s format).
const SEGMENT_HEADER_BYTES: u64 = 20;

fn files(dir: &Path, prefix: &str) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = std::fs::read_dir(dir.join("version-2"))
        .expect("version-2 exists")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry.metadata().ok()?.len();
            (name.starts_with(prefix) && !name.ends_with(".tmp")).then_some((name, len))
        })
        .collect();
    found.sort();
    found
}

async fn write_noise(server: &RzkServer, values: u64, bytes: usize) {
    let client = tokio::time::timeout(
        support::READY_TIMEOUT,
        Client::connect(&server.connect_string()),
    )
    .await
    .expect("connected within the ready timeout")
    .expect("client connects");
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for i in 0..values {
        client
            .create(
                &format!("/n{i}"),
                &support::incompressible(i, bytes),
                &options,
            )
            .await
            .expect("create");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_follow_pre_alloc_size_and_a_clean_stop_leaves_a_snapshot() {
    let mut server = RzkServer::start(&["preAllocSize=1024"]);
    // 3 MiB of log in 1 MiB segments.
    write_noise(&server, 30, 100 << 10).await;
    let segments = files(&server.data_dir(), "log.");
    assert!(segments.len() >= 3, "segments: {segments:?}");
    for (name, len) in &segments {
        assert!(
            *len <= (1 << 20) + SEGMENT_HEADER_BYTES + (100 << 10) + 64,
            "{name} is {len} bytes with preAllocSize=1024 (KiB)"
        );
    }
    assert!(files(&server.data_dir(), "snapshot.").is_empty());
    server.stop();
    let snapshots = files(&server.data_dir(), "snapshot.");
    assert_eq!(
        snapshots.len(),
        1,
        "a clean stop saves one snapshot: {snapshots:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_segment_is_16_mib() {
    let server = RzkServer::start(&[]);
    write_noise(&server, 1, 1024).await;
    let segments = files(&server.data_dir(), "log.");
    assert_eq!(
        segments.iter().map(|(_, len)| *len).collect::<Vec<_>>(),
        vec![(16 << 20) + SEGMENT_HEADER_BYTES],
        "{segments:?}"
    );
}
