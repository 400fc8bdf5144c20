//! Test support: an in-process rzk server on a real loopback socket (port 0), standalone,
//! going through the real replication path (in-memory log unless a directory is given).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rzk_replication::ReplicaConfig;
use rzk_server::{Server, ServerOptions};
use tokio::net::TcpListener;

/// Every wait in these tests is bounded by this, and says what it waited for.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub server: Server,
    pub address: String,
}

pub fn replica_config(log_dir: Option<&Path>) -> ReplicaConfig {
    ReplicaConfig {
        node_id: 1,
        members: BTreeMap::from([(1, "127.0.0.1:0".to_string())]),
        log_dir: log_dir.map(Path::to_path_buf),
        snapshot_dir: log_dir.map(Path::to_path_buf),
        force_sync: true,
        log_segment_bytes: 16 << 20,
        snap_count: 100_000,
        tick_ms: 2000,
        init_limit: 10,
        sync_limit: 5,
    }
}

pub async fn start_with(options: ServerOptions, log_dir: Option<&Path>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let server = tokio::time::timeout(
        WAIT,
        Server::start(options, replica_config(log_dir), listener),
    )
    .await
    .expect("server started within the wait")
    .expect("server starts");
    let address = server.local_addr().to_string();
    TestServer { server, address }
}

pub async fn start() -> TestServer {
    start_with(ServerOptions::for_tests(), None).await
}

/// Options with a short tick so session expiry happens within a test.
pub fn fast_expiry_options() -> ServerOptions {
    let mut options = ServerOptions::for_tests();
    options.tick_ms = 100;
    options.min_session_timeout_ms = 200;
    options.max_session_timeout_ms = 2000;
    options
}

/// Options for a persistent node anyone may change.
pub fn persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

pub async fn connect(address: &str) -> zookeeper_client::Client {
    tokio::time::timeout(WAIT, zookeeper_client::Client::connect(address))
        .await
        .expect("client connected within the wait")
        .expect("client connects")
}

/// Bounded wait for a future, naming what it waited for.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}
