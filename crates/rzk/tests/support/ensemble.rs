//! Helpers for tests of rzk ensembles as real processes: each member's `Mode:`, its `mntr`
//! values, waiting for one leader, sessions that tolerate a member refusing them for a moment,
//! and checking that every member holds the same nodes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zookeeper_client::{Client, Stat};

use super::{srvr_mode, try_four_letter, RzkServer};

/// Interval between two looks at the ensemble while waiting for a state.
const POLL: Duration = Duration::from_millis(10);

/// The member's `Mode:` from `srvr`, or `None` while it does not serve (or does not answer).
pub fn mode(server: &RzkServer) -> Option<String> {
    try_four_letter(server.port(), "srvr", Duration::from_secs(2))
        .ok()
        .and_then(|reply| srvr_mode(&reply).map(str::to_string))
}

/// Waits, at most `bound`, until the members in `running` show exactly one leader and followers
/// otherwise; returns the leader's position in `servers`. Panics with every mode seen otherwise.
pub fn wait_for_leader(servers: &[RzkServer], running: &[usize], bound: Duration) -> usize {
    let deadline = Instant::now() + bound;
    loop {
        let modes: Vec<Option<String>> = running.iter().map(|&i| mode(&servers[i])).collect();
        let leaders: Vec<usize> = running
            .iter()
            .zip(&modes)
            .filter(|(_, m)| m.as_deref() == Some("leader"))
            .map(|(&i, _)| i)
            .collect();
        let followers = modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count();
        if leaders.len() == 1 && followers + 1 == running.len() {
            return leaders[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single leader among {running:?} within {bound:?}: modes {modes:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// The value of `key` (e.g. `zk_server_state`) in the member's `mntr` reply, `None` when the
/// line is absent or the member does not answer.
pub fn mntr_value(server: &RzkServer, key: &str) -> Option<String> {
    let reply = try_four_letter(server.port(), "mntr", Duration::from_secs(2)).ok()?;
    reply.lines().find_map(|line| {
        let (name, value) = line.split_once('\t')?;
        (name == key).then(|| value.trim().to_string())
    })
}

/// The member's last applied zxid, from the `Zxid: 0x..` line of `srvr`.
pub fn srvr_zxid(server: &RzkServer) -> i64 {
    let reply = server.four_letter("srvr");
    let hex = reply
        .lines()
        .find_map(|line| line.strip_prefix("Zxid: 0x"))
        .unwrap_or_else(|| panic!("no Zxid line in srvr of port {}: {reply:?}", server.port()));
    i64::from_str_radix(hex.trim(), 16).unwrap_or_else(|error| panic!("Zxid {hex:?}: {error}"))
}

/// A session (4 s timeout) with `address`. A member may refuse sessions for a moment (`Looking`
/// while it installs a snapshot or elects), so failures are retried until `bound` runs out.
pub async fn connect(address: &str, bound: Duration) -> Client {
    connect_with(
        Client::connector().with_session_timeout(Duration::from_secs(4)),
        address,
        bound,
    )
    .await
}

/// As [`connect`], with the caller's connector (session timeout, a session to resume, detached).
pub async fn connect_with(
    connector: zookeeper_client::Connector,
    address: &str,
    bound: Duration,
) -> Client {
    let deadline = Instant::now() + bound;
    loop {
        let attempt = connector.clone().connect(address);
        match tokio::time::timeout(bound, attempt).await {
            Ok(Ok(client)) => return client,
            other => assert!(
                Instant::now() < deadline,
                "no session with {address} within {bound:?}: {other:?}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A node as read back: its data and Stat.
type Node = (Vec<u8>, Stat);

/// Through each member in `running`: `sync`, then every path in `paths` exists with the same
/// data and Stat as through the first member.
pub async fn assert_everywhere(
    servers: &[RzkServer],
    running: &[usize],
    paths: &BTreeSet<String>,
    bound: Duration,
) {
    let mut first: Option<(usize, Vec<Node>)> = None;
    for &i in running {
        let client = connect(&servers[i].connect_string(), bound).await;
        client
            .sync("/")
            .await
            .unwrap_or_else(|error| panic!("sync through member {i}: {error}"));
        let mut nodes = Vec::with_capacity(paths.len());
        for path in paths {
            match client.get_data(path).await {
                Ok(node) => nodes.push(node),
                Err(error) => panic!("{path} through member {i} after sync: {error}"),
            }
        }
        match &first {
            None => first = Some((i, nodes)),
            Some((j, expected)) => {
                for (path, (ours, theirs)) in paths.iter().zip(nodes.iter().zip(expected)) {
                    assert_eq!(ours, theirs, "{path} through member {i} and member {j}");
                }
            }
        }
    }
}
