//! A large tree survives a restart (the "Durable storage" issue).
//!
//! Goal: after a restart with many znodes the server holds the same tree: the same paths, data
//! and Stats.
//!
//! Method: one session creates `RZK_BIG_TREE_ZNODES` znodes with 100-byte values under
//! `/big/pNNNN` parents, 1,000 creates per multi, a few multis in flight. `snapCount` is small, so
//! recovery starts from a background snapshot and replays the log after it. A client walks the
//! whole tree (getChildren, then multiRead getData in chunks) and sums
//! `rzk_state_machine::znode_digest` over every node, before and after a SIGTERM restart; the
//! sums must be equal, and when the server answers the `hash` four-letter word with
//! `<zxid hex>: <digest>` its digest must equal the client's. Spot checks read a few nodes.
//! Printed, not asserted: populate time, restart-to-serving time, walk time, data dir size.
//!
//! `RZK_BIG_TREE_ZNODES=N` sets the count. The default is 100,000 (about 7 s in a debug build);
//! CI runs the 1,000,000 (`RZK_BIG_TREE_ZNODES=1000000` in `.ci/run`: about 100 s in a
//! debug build).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::RzkServer;
use zookeeper_client::{Client, MultiReadResult};

const ZNODES_DEFAULT: usize = 100_000;
/// Children per parent, and creates per multi.
const FANOUT: usize = 1_000;
/// Multis sent before waiting for the oldest.
const MULTIS_IN_FLIGHT: usize = 4;
/// getData operations per multiRead.
const READS_PER_MULTI: usize = 1_000;
const VALUE_BYTES: usize = 100;
/// Parents whose children are all changed before the kill -9 (fewer than snapCount's lower
/// bound of multis, so most of them are replayed from the log, not found in a snapshot).
const CHANGED_PARENTS: usize = 60;
/// Entries between snapshots (jittered by the server to [snapCount/2+1, snapCount]).
const SNAP_COUNT: &str = "snapCount=200";

fn znode_count() -> usize {
    match std::env::var("RZK_BIG_TREE_ZNODES") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("RZK_BIG_TREE_ZNODES={value:?} is not a count")),
        Err(_) => ZNODES_DEFAULT,
    }
}

async fn connect(address: &str) -> Client {
    tokio::time::timeout(support::READY_TIMEOUT, Client::connect(address))
        .await
        .expect("client connected within the ready timeout")
        .expect("client connects")
}

fn value(parent: usize, child: usize) -> Vec<u8> {
    let mut value = format!("p{parent}c{child}:").into_bytes();
    value.resize(VALUE_BYTES, b'v');
    value
}

fn parent_path(parent: usize) -> String {
    format!("/big/p{parent:04}")
}

fn child_path(parent: usize, child: usize) -> String {
    format!("/big/p{parent:04}/c{child:04}")
}

/// Create `count` znodes: parents first (one multi per `FANOUT` parents), then their children.
async fn populate(client: &Client, count: usize) {
    client
        .create("/big", b"", &support::persistent())
        .await
        .expect("create /big");
    let parents = count.div_ceil(FANOUT);
    let mut batches: Vec<Vec<(String, Vec<u8>)>> = (0..parents)
        .collect::<Vec<_>>()
        .chunks(FANOUT)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&parent| (parent_path(parent), Vec::new()))
                .collect()
        })
        .collect();
    for parent in 0..parents {
        let children = (count - parent * FANOUT).min(FANOUT);
        batches.push(
            (0..children)
                .map(|child| (child_path(parent, child), value(parent, child)))
                .collect(),
        );
    }
    let options = support::persistent();
    let mut in_flight = std::collections::VecDeque::new();
    for batch in &batches {
        let mut multi = client.new_multi_writer();
        for (path, data) in batch {
            multi.add_create(path, data, &options).expect("multi op");
        }
        in_flight.push_back(multi.commit());
        if in_flight.len() >= MULTIS_IN_FLIGHT {
            in_flight
                .pop_front()
                .expect("in flight")
                .await
                .expect("multi of creates");
        }
    }
    for multi in in_flight {
        multi.await.expect("multi of creates");
    }
}

/// The client-side digest of the whole tree and the number of znodes visited.
async fn walk_digest(client: &Client) -> (u64, usize) {
    let (root_data, root_stat) = client.get_data("/").await.expect("get /");
    let mut sum = rzk_state_machine::znode_digest("/", &root_data, &to_proto(&root_stat));
    let mut visited = 1;
    let mut directories = vec!["/".to_string()];
    while let Some(directory) = directories.pop() {
        let children = client
            .get_children(&directory)
            .await
            .expect("getChildren")
            .0;
        let prefix = if directory == "/" { "" } else { &directory };
        let paths: Vec<String> = children
            .iter()
            .map(|name| format!("{prefix}/{name}"))
            .collect();
        for chunk in paths.chunks(READS_PER_MULTI) {
            let mut reader = client.new_multi_reader();
            for path in chunk {
                reader.add_get_data(path).expect("multiRead op");
            }
            let results = reader.commit().await.expect("multiRead");
            for (path, result) in chunk.iter().zip(results) {
                let MultiReadResult::Data { data, stat } = result else {
                    panic!("multiRead getData {path}: {result:?}");
                };
                sum = sum.wrapping_add(rzk_state_machine::znode_digest(
                    path,
                    &data,
                    &to_proto(&stat),
                ));
                visited += 1;
                if stat.num_children > 0 {
                    directories.push(path.clone());
                }
            }
        }
    }
    (sum, visited)
}

fn to_proto(stat: &zookeeper_client::Stat) -> rzk_proto::Stat {
    rzk_proto::Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner,
        data_length: stat.data_length,
        num_children: stat.num_children,
        pzxid: stat.pzxid,
    }
}

/// The digest from the `hash` four-letter word (`<zxid hex>: <digest>` lines, newest last), when
/// the server has it.
fn server_digest(server: &RzkServer) -> Option<u64> {
    let reply = support::try_four_letter(server.port(), "hash", Duration::from_secs(60)).ok()?;
    reply
        .lines()
        .rev()
        .filter_map(|line| line.split_once(": "))
        .filter(|(zxid, _)| i64::from_str_radix(zxid.trim(), 16).is_ok())
        .find_map(|(_, digest)| digest.trim().parse::<u64>().ok())
}

/// Bytes allocated on disk under `dir` (preallocated log space counts once written or reserved).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

async fn spot_check(client: &Client, count: usize) {
    let parents = count.div_ceil(FANOUT);
    for parent in [0, parents / 2, parents - 1] {
        let children = (count - parent * FANOUT).min(FANOUT);
        for child in [0, children / 2, children - 1] {
            let (data, stat) = client
                .get_data(&child_path(parent, child))
                .await
                .expect("spot check read");
            assert_eq!(data, value(parent, child), "{}", child_path(parent, child));
            assert_eq!(stat.version, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_tree_survives_a_restart() {
    let count = znode_count();
    assert!(count >= 1, "RZK_BIG_TREE_ZNODES must be at least 1");
    let mut server = RzkServer::start(&[SNAP_COUNT]);
    let address = server.connect_string();
    let client = connect(&address).await;

    let started = Instant::now();
    populate(&client, count).await;
    let populate_time = started.elapsed();
    println!(
        "big_tree: {count} znodes of {VALUE_BYTES} bytes created in {populate_time:.1?} ({:.0}/s)",
        count as f64 / populate_time.as_secs_f64()
    );
    let started = Instant::now();
    let (before, visited) = walk_digest(&client).await;
    println!(
        "big_tree: walked {visited} znodes in {:.1?}, digest {before:#018x}",
        started.elapsed()
    );
    assert_eq!(
        visited,
        count + count.div_ceil(FANOUT) + 5,
        "znodes: the created ones, their parents, /big, / and /zookeeper{{,/quota,/config}}"
    );
    let server_before = server_digest(&server);
    if let Some(digest) = server_before {
        assert_eq!(
            digest, before,
            "the server's hash and the client's walk agree"
        );
    } else {
        println!(
            "big_tree: the server has no `hash` four-letter word; comparing client walks only"
        );
    }
    drop(client);

    server.stop().expect("the server stops on SIGTERM");
    println!(
        "big_tree: data dir {:.1} MiB",
        dir_bytes(&server.data_dir()) as f64 / (1 << 20) as f64
    );
    let started = Instant::now();
    server.start_again();
    println!("big_tree: restart to serving in {:.1?}", started.elapsed());

    let client = connect(&address).await;
    spot_check(&client, count).await;
    let (after, visited_after) = walk_digest(&client).await;
    assert_eq!(visited_after, visited, "znode count after restart");
    assert_eq!(
        after, before,
        "digest of paths, data and Stats after restart"
    );
    if server_before.is_some() {
        assert_eq!(
            server_digest(&server),
            Some(after),
            "the server's hash after restart"
        );
    }

    // Then a crash: more writes after the last snapshot, kill -9, and the restart must replay
    // them from the log on top of the snapshot (the SIGTERM above left a snapshot of everything).
    let changed = modify(&client, count).await;
    let before_kill = match server_digest(&server) {
        Some(digest) => digest,
        None => walk_digest(&client).await.0,
    };
    drop(client);
    server.kill9();
    let started = Instant::now();
    server.start_again();
    println!(
        "big_tree: {changed} sets, kill -9, restart to serving in {:.1?}",
        started.elapsed()
    );
    let client = connect(&address).await;
    let after_kill = match server_digest(&server) {
        Some(digest) => digest,
        None => walk_digest(&client).await.0,
    };
    assert_eq!(
        after_kill, before_kill,
        "digest after kill -9: every acknowledged set is replayed from the log"
    );
    for parent in [0, changed.div_ceil(FANOUT) - 1] {
        let (data, stat) = client
            .get_data(&child_path(parent, 0))
            .await
            .expect("read a changed znode after kill -9");
        assert_eq!(data, changed_value(parent, 0), "{}", child_path(parent, 0));
        assert_eq!(stat.version, 1, "{}", child_path(parent, 0));
    }
    drop(client);
    server.stop();
}

/// Multis of setData after the last snapshot: up to `CHANGED_PARENTS` parents' children get a new
/// value (version 1). Returns how many znodes were changed.
async fn modify(client: &Client, count: usize) -> usize {
    let parents = count.div_ceil(FANOUT).min(CHANGED_PARENTS);
    let mut changed = 0;
    for parent in 0..parents {
        let children = (count - parent * FANOUT).min(FANOUT);
        let mut multi = client.new_multi_writer();
        for child in 0..children {
            multi
                .add_set_data(
                    &child_path(parent, child),
                    &changed_value(parent, child),
                    None,
                )
                .expect("multi op");
        }
        multi.commit().await.expect("multi of sets");
        changed += children;
    }
    changed
}

fn changed_value(parent: usize, child: usize) -> Vec<u8> {
    let mut value = value(parent, child);
    value[0] = b'c';
    value
}
