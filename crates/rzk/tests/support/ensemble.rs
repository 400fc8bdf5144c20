//! Helpers for tests of rzk ensembles as real processes: each member's `Mode:`, waiting for one
//! leader, and sessions that tolerate a member refusing them for a moment.

use std::time::{Duration, Instant};

use zookeeper_client::Client;

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

/// A session (4 s timeout) with `address`. A member may refuse sessions for a moment (`Looking`
/// while it installs a snapshot or elects), so failures are retried until `bound` runs out.
pub async fn connect(address: &str, bound: Duration) -> Client {
    let deadline = Instant::now() + bound;
    loop {
        let attempt = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .connect(address);
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
