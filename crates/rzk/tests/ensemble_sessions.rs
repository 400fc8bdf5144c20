//! Sessions across a three-member rzk ensemble (real processes on free loopback ports):
//!
//! - a session homed on one follower that vanishes without closing (the `zookeeper-client`
//!   crate's connection dropped; Debian's zkCli.sh, whose command mode exits without closing)
//!   expires within a bound derived from its timeout: its ephemeral is gone on EVERY member and a
//!   watch set through another member fires `NodeDeleted`, never before the timeout;
//! - kill -9 of the leader while 24 sessions (8 homed on each member) write: no acknowledged write
//!   is lost, and the sessions of the killed member resume on the survivors with their ids and
//!   ephemerals;
//! - `lastZxidSeen`: a ConnectRequest to a follower with a zxid ahead of what that member has
//!   applied is refused (the connection closes without a session, as in ZooKeeper), one at or
//!   below it gets a session; and a session moved to a lagging follower right after each write
//!   is either refused or sees that write;
//! - a session that moves to another member while its old connection's writes are on their way
//!   sees none of them land after its first read there (they are refused with SessionMoved), and
//!   the old member closes the old connection.
//!
//! Timing: `tickTime=200`, `syncLimit=5`, as in `ensemble_replication.rs`. Nothing sleeps to
//! synchronise: every wait polls a named condition against a deadline.

mod support;
#[path = "support/wire.rs"]
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::ensemble::{assert_everywhere, connect, connect_with, srvr_zxid, wait_for_leader};
use support::persistent;
use support::{describe_output, zkcli, RzkServer};
use wire::{new_session_request, Ending, Wire};
use zookeeper_client::{Acls, Client, CreateMode, EventType, OneshotWatcher};

const TICK: Duration = Duration::from_millis(200);
const CONFIG: &[&str] = &["tickTime=200", "initLimit=10", "syncLimit=5"];
/// Session timeout the vanishing clients ask for; `maxSessionTimeout` (20 ticks = 4 s) is the
/// ceiling, so zkCli's 30 s request lands there too.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// Slack on top of the expiry rule for a loaded 2-core machine (the closeSession entry must be
/// committed and applied on every member, and the watch delivered).
const EXPIRY_SLACK: Duration = Duration::from_millis(2_000);
/// Bound on waits for a state the ensemble must reach (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// How long after its client vanished a session of `timeout` may still hold its ephemeral: the
/// member that served it reports touches to the leader once a tick, and the leader expires
/// sessions in tick-wide buckets (ZooKeeper's `ExpiryQueue`), so `timeout + 2 ticks`, plus slack.
fn expiry_bound(timeout: Duration) -> Duration {
    timeout + 2 * TICK + EXPIRY_SLACK
}

fn ephemeral() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

/// One session (4 s timeout) on each member, in member order: for looking at every member
/// without `sync` (what each member itself has applied).
async fn a_session_on_each(servers: &[RzkServer]) -> Vec<Client> {
    let mut clients = Vec::new();
    for server in servers {
        clients.push(connect(&server.connect_string(), WAIT).await);
    }
    clients
}

/// Waits for `watcher` (set on `path` through another member) to fire `NodeDeleted` and then for
/// `path` to be gone through EVERY member (no `sync`: each member's own state), all within
/// `bound` of `vanished`. Returns when the watch fired and when the last member showed it gone.
async fn expect_gone_everywhere(
    watcher: OneshotWatcher,
    path: &str,
    members: &[Client],
    vanished: Instant,
    bound: Duration,
) -> (Duration, Duration) {
    let deadline = vanished + bound;
    let event = tokio::time::timeout_at(deadline.into(), watcher.changed())
        .await
        .unwrap_or_else(|_| {
            panic!("the watch on {path} did not fire within {bound:?} of its owner vanishing")
        });
    let fired = vanished.elapsed();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted, path),
        "the watch on {path} fired {event:?}"
    );
    for (i, member) in members.iter().enumerate() {
        loop {
            match member.check_stat(path).await {
                Ok(None) => break,
                other => assert!(
                    Instant::now() < deadline,
                    "{path} still on member {i} {bound:?} after its owner vanished: {other:?}"
                ),
            }
            tokio::time::sleep(POLL).await;
        }
    }
    (fired, vanished.elapsed())
}

/// Checks: a session created on follower A (`zookeeper-client`, 4 s) owns `/owned`; a session on
/// follower B watches it. The owner keeps its session past its timeout by using it (so the
/// leader hears of it through A), then its connection drops without closeSession. The watch on B
/// fires `NodeDeleted` no earlier than the timeout after the owner's last request and within
/// `timeout + 2 ticks + slack` of the drop, and `/owned` is gone on all three members by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_expires_on_every_member_and_fires_the_watch() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let (home, watching) = (followers[0], followers[1]);
    let members = a_session_on_each(&servers).await;

    // Detached: dropping the client closes its connection without closing the session.
    let owner = connect_with(
        Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_detached(),
        &servers[home].connect_string(),
        WAIT,
    )
    .await;
    let timeout = owner.session_timeout();
    assert_eq!(timeout, SESSION_TIMEOUT, "negotiated session timeout");
    owner
        .create("/owned", b"e", &ephemeral())
        .await
        .expect("create /owned through the owner's member");
    members[watching].sync("/").await.expect("sync on B");
    let (stat, watcher) = members[watching]
        .check_and_watch_stat("/owned")
        .await
        .expect("exists+watch /owned through B");
    let stat = stat.expect("/owned exists through B after sync");
    assert_eq!(stat.ephemeral_owner, owner.session_id().0, "ephemeralOwner");

    // Used for 1.5 timeouts: the session must outlive its first timeout on the leader, which
    // only hears of it through the owner's member.
    let created = Instant::now();
    let mut last_request = Instant::now();
    while created.elapsed() < timeout * 3 / 2 {
        last_request = Instant::now();
        owner
            .check_stat("/owned")
            .await
            .expect("the owner's session is alive while it is used");
        // The client's own request cadence, a quarter of the timeout.
        tokio::time::sleep(timeout / 4).await;
    }
    last_request = last_request.max({
        let at = Instant::now();
        owner.check_stat("/owned").await.expect("last request");
        at
    });
    assert!(
        members[leader]
            .check_stat("/owned")
            .await
            .unwrap()
            .is_some(),
        "/owned expired on the leader while its owner used the session through member {home}"
    );
    drop(owner);
    let vanished = Instant::now();

    let bound = expiry_bound(timeout);
    let (fired, everywhere) =
        expect_gone_everywhere(watcher, "/owned", &members, vanished, bound).await;
    let since_request = last_request.elapsed() - (vanished.elapsed() - fired);
    eprintln!(
        "session timeout {timeout:?}: the watch on member {watching} fired {fired:?} after the \
         drop ({since_request:?} after the last request), /owned gone on every member after \
         {everywhere:?} (bound {bound:?})"
    );
    assert!(
        since_request >= timeout,
        "the session expired {since_request:?} after its last request, before its timeout {timeout:?}"
    );
}

/// Checks, with Debian's zkCli 3.8.0: `zkCli.sh -server <follower> create -e /zkcli-owned x`
/// exits without closing its session (its JVM is gone, the session is not). A watch set through
/// the leader fires `NodeDeleted` within `timeout + 2 ticks + slack` of the process's exit, and
/// the ephemeral is gone on every member by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkcli_process_gone_without_closing_loses_its_ephemeral_everywhere() {
    let test = "a_zkcli_process_gone_without_closing_loses_its_ephemeral_everywhere";
    if support::skip_without_reference(test) {
        return;
    }
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let home = (leader + 1) % 3;
    let members = a_session_on_each(&servers).await;

    let port = servers[home].port();
    let output =
        tokio::task::block_in_place(|| zkcli(port, &["create", "-e", "/zkcli-owned", "x"]));
    let exited = Instant::now();
    assert!(
        output.status.success() && support::stderr_text(&output).contains("Created /zkcli-owned"),
        "zkCli create -e through member {home}\n{}",
        describe_output(&output)
    );
    members[leader].sync("/").await.expect("sync on the leader");
    let (stat, watcher) = members[leader]
        .check_and_watch_stat("/zkcli-owned")
        .await
        .expect("exists+watch through the leader");
    let stat = stat.unwrap_or_else(|| {
        panic!(
            "/zkcli-owned already gone {:?} after zkCli exited, before the session timeout",
            exited.elapsed()
        )
    });
    assert_ne!(stat.ephemeral_owner, 0, "/zkcli-owned is ephemeral");

    let bound = expiry_bound(SESSION_TIMEOUT);
    let (fired, everywhere) =
        expect_gone_everywhere(watcher, "/zkcli-owned", &members, exited, bound).await;
    eprintln!(
        "zkCli's session (timeout {SESSION_TIMEOUT:?}): the watch on the leader fired {fired:?} \
         after the process exited, gone on every member after {everywhere:?} (bound {bound:?})"
    );
}

/// Sessions writing at once: more than one per member, so a kill hits many.
const WRITERS: usize = 24;
/// Session timeout of the writers: long enough to ride through a failover on a loaded machine.
const WRITER_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Acknowledged writes each writer must reach before the kill, and again after it.
const WRITES_PER_PHASE: usize = 5;
/// Bound on one request of a writer (a request to the killed member fails with ConnectionLoss
/// well before this).
const REQUEST_BOUND: Duration = Duration::from_secs(5);

/// What the writers share: acknowledged paths, per-writer counts, the stop flag and the member
/// that was killed (`usize::MAX` until the kill).
struct Writing {
    acknowledged: Mutex<BTreeSet<String>>,
    counts: Vec<AtomicUsize>,
    stop: AtomicBool,
    killed: AtomicUsize,
}

/// What a writer hands back: its client (the resumed one if it moved) and whether it moved.
struct Writer {
    client: Client,
    moved: bool,
    failures: usize,
}

/// Writer `w`: creates `/w{w}-{n}` until told to stop. When its home member is the killed one,
/// it resumes its session (same id and password) on the survivors, as a client library does
/// when its server goes away, and goes on writing.
async fn write_until_stopped(
    w: usize,
    mut client: Client,
    home: usize,
    addresses: Vec<String>,
    writing: Arc<Writing>,
) -> Writer {
    let mut moved = false;
    let mut failures = 0;
    let mut n = 0;
    while !writing.stop.load(Ordering::Relaxed) {
        if !moved && writing.killed.load(Ordering::Relaxed) == home {
            let survivors: Vec<&str> = addresses
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != home)
                .map(|(_, address)| address.as_str())
                .collect();
            let resumed = connect_with(
                Client::connector()
                    .with_session(client.session().clone())
                    .with_session_timeout(WRITER_SESSION_TIMEOUT)
                    .with_detached(),
                &survivors.join(","),
                WAIT,
            )
            .await;
            assert_eq!(
                resumed.session_id(),
                client.session_id(),
                "writer {w} resumed its session on {survivors:?}"
            );
            client = resumed;
            moved = true;
        }
        let path = format!("/w{w}-{n}");
        n += 1;
        match tokio::time::timeout(REQUEST_BOUND, client.create(&path, b"v", &persistent())).await {
            Ok(Ok(_)) => {
                writing.acknowledged.lock().unwrap().insert(path);
                writing.counts[w].fetch_add(1, Ordering::Relaxed);
            }
            // Unknown outcome (connection lost, no leader yet): counted neither way.
            _ => {
                failures += 1;
                // Back off while the ensemble elects (not synchronisation).
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Writer {
        client,
        moved,
        failures,
    }
}

/// Waits until every writer's count is at least `at_least[w]`.
async fn wait_for_counts(writing: &Writing, at_least: &[usize], what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts: Vec<usize> = writing
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        if counts
            .iter()
            .zip(at_least)
            .all(|(count, wanted)| count >= wanted)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: writers' acknowledged writes {counts:?}, wanted at least {at_least:?} within {WAIT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Checks: 24 sessions (8 homed on each member, each owning an ephemeral `/eph-{w}`) write
/// persistent nodes; the leader is killed with SIGKILL; the 8 sessions of the killed member
/// resume on the survivors with the same ids; every writer acknowledges writes again. Then,
/// through every survivor and through the old leader once it is back: every acknowledged write
/// and every ephemeral is there with the same data and Stat, each ephemeral still owned by its
/// (unchanged) session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_leader_under_24_writing_sessions_keeps_writes_sessions_and_ephemerals() {
    let mut config = CONFIG.to_vec();
    config.push("maxSessionTimeout=20000");
    let mut servers = RzkServer::start_ensemble(3, &config);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let addresses: Vec<String> = servers.iter().map(|s| s.connect_string()).collect();

    let writing = Arc::new(Writing {
        acknowledged: Mutex::new(BTreeSet::new()),
        counts: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
        stop: AtomicBool::new(false),
        killed: AtomicUsize::new(usize::MAX),
    });
    let mut sessions = BTreeMap::new();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let home = w % 3;
        let client = connect_with(
            Client::connector()
                .with_session_timeout(WRITER_SESSION_TIMEOUT)
                .with_detached(),
            &addresses[home],
            WAIT,
        )
        .await;
        client
            .create(&format!("/eph-{w}"), w.to_string().as_bytes(), &ephemeral())
            .await
            .unwrap_or_else(|error| {
                panic!("writer {w}'s ephemeral through member {home}: {error}")
            });
        sessions.insert(w, client.session_id());
        let task = write_until_stopped(w, client, home, addresses.clone(), writing.clone());
        tasks.push((home, tokio::spawn(task)));
    }
    wait_for_counts(&writing, &[WRITES_PER_PHASE; WRITERS], "before the kill").await;

    let before: Vec<usize> = writing
        .counts
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    servers[leader].kill9();
    let killed = Instant::now();
    writing.killed.store(leader, Ordering::Relaxed);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = tokio::task::block_in_place(|| wait_for_leader(&servers, &survivors, WAIT));
    let after: Vec<usize> = before.iter().map(|b| b + WRITES_PER_PHASE).collect();
    wait_for_counts(&writing, &after, "after the kill").await;
    eprintln!(
        "killed the leader (member {leader}) after {} acknowledged writes; member {new_leader} leads; \
         every writer acknowledged {WRITES_PER_PHASE} more within {:?}",
        before.iter().sum::<usize>(),
        killed.elapsed()
    );
    writing.stop.store(true, Ordering::Relaxed);

    let mut clients = Vec::new();
    for (w, (home, task)) in tasks.into_iter().enumerate() {
        let writer = task.await.expect("writer task");
        assert_eq!(
            writer.moved,
            home == leader,
            "writer {w} (homed on member {home}) moved to the survivors"
        );
        assert_eq!(
            writer.client.session_id(),
            sessions[&w],
            "writer {w}'s session id"
        );
        eprintln!(
            "writer {w}: member {home}, moved {}, {} failed requests",
            writer.moved, writer.failures
        );
        clients.push(writer.client);
    }
    let acknowledged = writing.acknowledged.lock().unwrap().clone();
    eprintln!("{} acknowledged writes", acknowledged.len());

    // Every ephemeral through every survivor, owned by its writer's unchanged session.
    for &i in &survivors {
        let client = connect(&addresses[i], WAIT).await;
        client.sync("/").await.expect("sync through a survivor");
        for (w, session) in &sessions {
            let path = format!("/eph-{w}");
            let (data, stat) = client
                .get_data(&path)
                .await
                .unwrap_or_else(|error| panic!("{path} through member {i}: {error}"));
            assert_eq!(
                stat.ephemeral_owner, session.0,
                "owner of {path} on member {i}"
            );
            assert_eq!(data, w.to_string().into_bytes(), "{path} on member {i}");
        }
    }
    let mut paths = acknowledged;
    paths.extend(sessions.keys().map(|w| format!("/eph-{w}")));
    assert_everywhere(&servers, &survivors, &paths, WAIT).await;

    // The old leader comes back as a follower with all of it (the sessions still live).
    tokio::task::block_in_place(|| servers[leader].start_again());
    wait_for_leader(&servers, &[0, 1, 2], WAIT);
    assert_everywhere(&servers, &[leader, survivors[0]], &paths, WAIT).await;
    drop(clients);
}

/// Checks ZooKeeper's rule for `lastZxidSeen` on a follower: with nothing being written (so the
/// follower has applied everything, `srvr` Zxid Z on it and on the leader), a raw ConnectRequest
/// with lastZxidSeen Z+1 (or a later epoch's zxid) is refused: the connection closes without a
/// ConnectResponse and no session is created (Z does not move; a session creation is a log
/// entry). One with Z, or below it, gets a session, which answers a ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_zxid_seen_ahead_of_a_follower_is_refused_at_or_below_accepted() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let follower = &servers[(leader + 1) % 3];

    // Some history, written through the leader; the session stays open (pings are no entries).
    let writer = connect(&servers[leader].connect_string(), WAIT).await;
    let mut written = 0;
    for n in 0..10 {
        let (stat, _) = writer
            .create(&format!("/history-{n}"), b"h", &persistent())
            .await
            .unwrap_or_else(|error| panic!("create /history-{n}: {error}"));
        written = stat.czxid;
    }
    tokio::task::block_in_place(|| {
        assert_eq!(
            srvr_zxid(&servers[leader]),
            written,
            "the leader's srvr Zxid is the last write's"
        );
        // Quiet: the follower has applied what the leader has.
        let deadline = Instant::now() + WAIT;
        while srvr_zxid(follower) != written {
            assert!(
                Instant::now() < deadline,
                "the follower's zxid {:#x} did not reach the leader's {written:#x} within {WAIT:?}",
                srvr_zxid(follower)
            );
            std::thread::sleep(POLL);
        }

        for ahead in [written + 1, written + (1 << 32)] {
            let mut request = new_session_request();
            request.last_zxid_seen = ahead;
            let refused = Wire::unconnected(follower.port()).handshake(&request);
            assert_eq!(
                refused,
                Err("connection closed before a ConnectResponse".to_string()),
                "lastZxidSeen {ahead:#x} against a follower at {written:#x}"
            );
            assert_eq!(
                srvr_zxid(follower),
                written,
                "a refused connect (lastZxidSeen {ahead:#x}) created a session"
            );
        }
        let mut previous = written;
        for at_or_below in [written, written - 1, 0] {
            let mut request = new_session_request();
            request.last_zxid_seen = at_or_below;
            let mut wire = Wire::unconnected(follower.port());
            let response = wire.handshake(&request).unwrap_or_else(|error| {
                panic!("lastZxidSeen {at_or_below:#x} against a follower at {previous:#x}: {error}")
            });
            assert_ne!(
                response.session_id, 0,
                "a session for lastZxidSeen {at_or_below:#x}"
            );
            wire.ping().expect("a ping on the accepted session");
            let now = srvr_zxid(follower);
            assert!(
                now > previous,
                "the session's creation is a log entry on the follower"
            );
            previous = now;
        }
    });
    drop(writer);
}

/// Moves of one session between members while another session writes: how many tries.
const MOVES: usize = 200;

/// Checks the guarantee `lastZxidSeen` exists for (ZooKeeper's "a client never sees an older
/// view after it reconnects"), while the follower may lag: a session S (raw, created on the
/// leader) is reattached to a follower right after each of 200 writes through the leader, with
/// the write's zxid as lastZxidSeen. The follower either refuses (connection closed without a
/// ConnectResponse: it has not applied that zxid yet) or accepts S, and then S's `exists` of the
/// node just written, without `sync`, must find it. (A reattach is a log entry, AttachSession,
/// answered once applied on the follower, which by then has the write too; the zxid check
/// refuses before it is proposed.) Prints how many moves were refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moved_to_a_follower_never_sees_older_than_its_last_zxid_seen() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let follower = servers[(leader + 1) % 3].port();
    let writer = connect(&servers[leader].connect_string(), WAIT).await;
    let moving = tokio::task::block_in_place(|| {
        let wire = Wire::connect(servers[leader].port());
        let moving = (wire.session_id, wire.password.clone());
        wire.drop_connection();
        moving
    });

    let mut refused = 0;
    for n in 0..MOVES {
        let path = format!("/moved-{n}");
        let (stat, _) = writer
            .create(&path, b"m", &persistent())
            .await
            .unwrap_or_else(|error| panic!("create {path} through the leader: {error}"));
        let mut request = new_session_request();
        request.session_id = moving.0;
        request.password = moving.1.clone();
        request.last_zxid_seen = stat.czxid;
        tokio::task::block_in_place(|| {
            let mut wire = Wire::unconnected(follower);
            match wire.handshake(&request) {
                Err(closed) => {
                    assert_eq!(
                        closed, "connection closed before a ConnectResponse",
                        "move {n}: the follower's refusal"
                    );
                    refused += 1;
                }
                Ok(response) => {
                    assert_eq!(
                        response.session_id, moving.0,
                        "move {n}: the session reattached"
                    );
                    let found =
                        wire.call(&rzk_proto::Request::Exists(rzk_proto::PathWatchRequest {
                            path: path.clone(),
                            watch: false,
                        }));
                    assert_eq!(
                        found.err(),
                        0,
                        "move {n}: the follower accepted lastZxidSeen {:#x} but does not have \
                         {path}: {found:?}",
                        stat.czxid
                    );
                    wire.drop_connection();
                }
            }
        });
    }
    eprintln!(
        "{MOVES} moves to a follower right after a write: {refused} refused (the follower had not \
         applied the write yet), {} accepted and up to date",
        MOVES - refused
    );
    assert!(
        refused < MOVES,
        "the follower refused every move; it never caught up with the writes"
    );
}

/// Creates the first connection of a moving session pipelines before the session moves.
const PIPELINED: usize = 400;

fn create_open(path: &str) -> rzk_proto::Request {
    wire::create_request(path, b"x".to_vec())
}

fn children_of(wire: &mut Wire, path: &str) -> BTreeSet<String> {
    let answer = wire.call(&rzk_proto::Request::GetChildren(
        rzk_proto::PathWatchRequest {
            path: path.to_string(),
            watch: false,
        },
    ));
    match answer.reply {
        Ok(rzk_proto::Response::GetChildren { children }) => children.into_iter().collect(),
        other => panic!("getChildren {path}: {other:?}"),
    }
}

/// A session that moves to another member while writes of its first connection are still on
/// their way keeps its order, as ZooKeeper's session owner (SessionMoved) keeps it. Session S,
/// on follower A, pipelines 400 creates and reads no reply; at once S reattaches on member B.
/// B answers the reattach only once S's move (an AttachSession entry) is applied there, so S's
/// first getChildren through B shows every create that reached the log before the move, and a
/// create that reaches the log after it is refused (SessionMoved), never applied behind S's
/// back. Member A closes S's old connection when it applies the move. Then, once everything A
/// forwarded is in the log (a later write of another session through A, which A's ordered
/// forwarding stream carries behind them, is answered) and B is synced, S's getChildren
/// through B shows exactly its first list. Without owners, the old connection stayed open and
/// its creates kept landing after S's first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moved_between_members_sees_no_write_of_its_old_connection_land_later() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let member_a = servers[(leader + 1) % 3].port();
    let member_b = servers[(leader + 2) % 3].port();
    tokio::task::block_in_place(|| {
        let mut old = Wire::connect(member_a);
        assert_eq!(old.call(&create_open("/moving")).err(), 0, "create /moving");
        for n in 0..PIPELINED {
            old.send(&create_open(&format!("/moving/c-{n:04}")));
        }
        let (mut new, response) =
            Wire::reattach(member_b, &old).expect("the session reattaches on member B");
        assert_eq!(response.session_id, old.session_id, "{response:?}");
        let first = children_of(&mut new, "/moving");

        // Member A stops the old connection once it applies the move (its replies come first).
        let deadline = Instant::now() + WAIT;
        let mut replies = 0;
        loop {
            match old.ending(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ending::Closed) => break,
                Ok(Ending::Frame(_)) => replies += 1,
                Err(error) => panic!(
                    "member A did not close the session's old connection within {WAIT:?} of \
                     the move ({replies} replies read): {error}"
                ),
            }
        }
        let mut flush = Wire::connect(member_a);
        assert_eq!(
            flush.call(&create_open("/flushed")).err(),
            0,
            "a write through member A behind everything it forwarded"
        );
        let sync = rzk_proto::Request::Sync(rzk_proto::PathRequest {
            path: "/moving".to_string(),
        });
        assert_eq!(new.call(&sync).err(), 0, "sync through member B");
        let later = children_of(&mut new, "/moving");
        let landed_later: Vec<&String> = later.difference(&first).collect();
        assert!(
            landed_later.is_empty(),
            "{} creates of the old connection were applied after the moved session's first read \
             ({} seen then): {:?}",
            landed_later.len(),
            first.len(),
            landed_later.iter().take(5).collect::<Vec<_>>()
        );
        assert_eq!(later, first, "nothing the moved session saw went away");
        eprintln!(
            "{PIPELINED} creates pipelined on member A, then the session moved to member B: {} \
             applied before the move, {} refused or never proposed; {replies} replies reached the \
             old connection before it closed",
            first.len(),
            PIPELINED - first.len()
        );
        flush.drop_connection();
        new.drop_connection();
    });
}

/// New sessions reattached on another member at once.
const QUICK_MOVES: usize = 100;

/// A session created through the leader and reattached on a follower at once (a client whose
/// first connection broke right after the handshake) keeps its session: the follower may not
/// have applied the session's creation yet, but the reattach is a log entry ordered after it,
/// as ZooKeeper's follower asks its leader. The follower used to answer such a reattach with
/// an expired session (ConnectResponse with session id 0) when it had not applied the creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reattached_elsewhere_right_after_its_creation_is_not_expired() {
    let servers = RzkServer::start_ensemble(3, CONFIG);
    let leader = wait_for_leader(&servers, &[0, 1, 2], WAIT);
    let leader_port = servers[leader].port();
    let follower = servers[(leader + 1) % 3].port();
    tokio::task::block_in_place(|| {
        for n in 0..QUICK_MOVES {
            let created = Wire::connect(leader_port);
            let (mut moved, response) = Wire::reattach(follower, &created)
                .unwrap_or_else(|error| panic!("move {n}: reattach on the follower: {error}"));
            assert_eq!(
                response.session_id, created.session_id,
                "move {n}: a live session reattached on the follower right after its creation \
                 was answered as expired: {response:?}"
            );
            assert_eq!(
                moved.call(&rzk_proto::Request::CloseSession).err(),
                0,
                "move {n}: close the session"
            );
            created.drop_connection();
        }
    });
}
