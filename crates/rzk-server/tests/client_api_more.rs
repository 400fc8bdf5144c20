//! More end-to-end tests with the third-party `zookeeper-client` crate against an in-process rzk
//! server on a real loopback socket: watch removal, an explicit closeSession, a failed multi's
//! per-op results, and the ACL schemes (ip, auth, unknown). Each test opens with what it checks.
//!
//! The crate cannot send checkWatches, and it only sends removeWatches for a watch it still holds,
//! so NoWatcher is unreachable through it: both are compared with ZooKeeper byte for byte by the
//! raw client in `crates/rzk/tests/differential.rs` (`watch_rules_match_zookeeper`). Likewise the
//! crate stops reading a failed multi's results at the failing op, so the RuntimeInconsistent
//! results after it are checked there (`multi_rules_match_zookeeper`).

mod support;

use std::time::Duration;

use support::{connect, start, within, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client::{
    Acl, Acls, AuthId, Client, CreateMode, Error, EventType, MultiWriteError, Permission,
    SessionState, StateWatcher,
};

/// base64(sha1("alice:secret")), computed with Python's hashlib: what the digest provider stores.
const ALICE_DIGEST: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";
/// base64(sha1("bob:hunter2")), computed the same way.
const BOB_DIGEST: &str = "bob:1Yu1ryCXOIF7lyFzbmQ5J+MJOZc=";

/// Sends a four-letter word and returns the whole reply (the server closes after it).
async fn four_letter(server: &TestServer, word: &str) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&server.address)
            .await
            .unwrap_or_else(|error| panic!("{word}: connect to {}: {error}", server.address));
        stream
            .write_all(word.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{word}: send: {error}"));
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .await
            .unwrap_or_else(|error| panic!("{word}: read the reply: {error}"));
        reply
    };
    within(&format!("the {word} reply"), exchange).await
}

/// `zk_watch_count` of `mntr`: every watch the server holds, of every session and type (a
/// persistent watch twice, as in ZooKeeper, whose `wchs` counts data watches only).
async fn total_watches(server: &TestServer) -> u64 {
    let reply = four_letter(server, "mntr").await;
    reply
        .lines()
        .find_map(|line| line.strip_prefix("zk_watch_count\t"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("mntr reply has no `zk_watch_count` line: {reply:?}"))
}

/// The session's terminal state (Closed, Expired, AuthFailed), once it reaches one.
async fn session_end(state: &mut StateWatcher) -> SessionState {
    let mut now = state.peek_state();
    while !now.is_terminated() {
        now = state.changed().await;
    }
    now
}

async fn connect_with_auth(address: &str, scheme: &str, credentials: &[u8]) -> Client {
    within(
        &format!("connect with {scheme} auth"),
        Client::connector()
            .with_auth(scheme, credentials)
            .connect(address),
    )
    .await
    .unwrap_or_else(|error| panic!("connect with {scheme} auth: {error}"))
}

/// removeWatches through the crate (dropping or removing a watcher sends it): removing a data
/// watch leaves the child watch on the same path, then removing that leaves none; a dropped
/// exist watch and a persistent watch (WatcherType Any) are removed the same way. The server's count (`wchs`) shows each step,
/// and a change after the removals reaches no one and does not upset the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // OneshotWatcher::remove: the crate prefers Drop, which sends the same request unanswered.
async fn remove_watches_through_the_crate() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/rw", b"0", &support::persistent())
        .await
        .expect("create /rw");
    let (_, _, data_watch) = client
        .get_and_watch_data("/rw")
        .await
        .expect("getData with a watch");
    let (_, child_watch) = client
        .list_and_watch_children("/rw")
        .await
        .expect("getChildren with a watch");
    assert_eq!(total_watches(&server).await, 2, "a data and a child watch");

    within("removeWatches(Data)", data_watch.remove())
        .await
        .expect("the server removes the data watch");
    assert_eq!(
        total_watches(&server).await,
        1,
        "only the child watch is left"
    );
    within("removeWatches of the child watch", child_watch.remove())
        .await
        .expect("the server removes the child watch");
    assert_eq!(total_watches(&server).await, 0, "no watch is left");

    // Dropping a watcher (the crate's preferred way) sends the same removeWatches unanswered;
    // requests of a session are handled in order, so it is done once a later reply is back.
    let (_, exist_watch) = client
        .check_and_watch_stat("/rw")
        .await
        .expect("exists with a watch");
    assert_eq!(total_watches(&server).await, 1, "the exist watch");
    drop(exist_watch);
    client.sync("/").await.expect("a request after the drop");
    assert_eq!(
        total_watches(&server).await,
        0,
        "the dropped watch is removed"
    );

    let persistent_watch = client
        .watch("/rw", zookeeper_client::AddWatchMode::Persistent)
        .await
        .expect("addWatch");
    // As on ZooKeeper, a persistent watch counts as a data and a child watch.
    assert_eq!(total_watches(&server).await, 2, "the persistent watch");
    within(
        "removeWatches of the persistent watch",
        persistent_watch.remove(),
    )
    .await
    .expect("the server removes the persistent watch");
    assert_eq!(total_watches(&server).await, 0, "no watch is left");

    let writer = connect(&server.address).await;
    writer.set_data("/rw", b"1", None).await.expect("set /rw");
    writer
        .create("/rw/child", b"", &support::persistent())
        .await
        .expect("create /rw/child");
    // Events go out before later replies on a connection: had a removed watch fired, the crate
    // would have read it before this reply (an unknown event type would break the connection).
    let (data, _) = client
        .get_data("/rw")
        .await
        .expect("the session still works");
    assert_eq!(data, b"1");
    assert_eq!(client.state(), SessionState::SyncConnected);
}

/// closeSession (the crate sends it when the last handle of a session is dropped) ends the
/// session at once: once the close is answered, a second session no longer sees its ephemeral,
/// long before the 30 s session timeout, its watch got NodeDeleted, and the session cannot be
/// reattached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_session_removes_ephemerals_at_once() {
    let server = start().await;
    let session_timeout = Duration::from_secs(30);
    assert!(
        session_timeout > WAIT,
        "expiry must not be able to explain the removal"
    );
    let owner = within(
        "connect with a 30 s session timeout",
        Client::connector()
            .with_session_timeout(session_timeout)
            .connect(&server.address),
    )
    .await
    .expect("connect");
    assert_eq!(owner.session_timeout(), session_timeout);
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    owner
        .create("/gone", b"", &ephemeral)
        .await
        .expect("create ephemeral /gone");
    owner
        .create("/gone-too", b"", &ephemeral)
        .await
        .expect("create ephemeral /gone-too");
    let observer = connect(&server.address).await;
    let (_, deleted) = observer
        .check_and_watch_stat("/gone")
        .await
        .expect("exists with a watch");
    let session = owner.session().clone();
    let mut state = owner.state_watcher();
    let started = std::time::Instant::now();
    drop(owner);
    let closed = within("the closeSession reply", session_end(&mut state)).await;
    assert_eq!(
        closed,
        SessionState::Closed,
        "the close must be answered before the server closes the connection"
    );
    assert_eq!(
        observer.check_stat("/gone").await.expect("exists /gone"),
        None,
        "the ephemeral is gone when the close is answered"
    );
    assert_eq!(
        observer
            .check_stat("/gone-too")
            .await
            .expect("exists /gone-too"),
        None
    );
    assert_eq!(
        within(
            "NodeDeleted for the closed session's ephemeral",
            deleted.changed()
        )
        .await
        .event_type,
        EventType::NodeDeleted
    );
    assert!(
        started.elapsed() < session_timeout,
        "closing took {:?}, as long as the session timeout",
        started.elapsed()
    );
    let again = within(
        "reattach a closed session",
        Client::connector()
            .with_session(session)
            .connect(&server.address),
    )
    .await;
    assert!(
        matches!(again, Err(Error::SessionExpired)),
        "a closed session must be refused as expired, got {again:?}"
    );
}

/// A failed multi as the crate reports it: the ops before the failing one answered ok (code 0:
/// otherwise the crate would name an earlier index), the failing op with its own error and
/// index, whether it fails first, in the middle or last, or because of an earlier op of the same
/// multi; and nothing of any failed multi is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_reports_per_op_results_and_applies_nothing() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/m", b"v0", &support::persistent())
        .await
        .expect("create /m");
    let (_, before) = client.get_data("/m").await.expect("get /m");
    let root_before = client.check_stat("/").await.expect("stat /").expect("/");

    type Op = fn(&mut zookeeper_client::MultiWriter<'_>);
    let cases: [(&str, Vec<Op>, usize, Error); 5] = [
        (
            "the middle op fails",
            vec![
                |w| w.add_create("/a", b"", &support::persistent()).expect("op"),
                |w| w.add_set_data("/m", b"x", Some(5)).expect("op"),
                |w| w.add_create("/b", b"", &support::persistent()).expect("op"),
            ],
            1,
            Error::BadVersion,
        ),
        (
            "the first op fails",
            vec![|w| w.add_delete("/missing", None).expect("op"), |w| {
                w.add_create("/c", b"", &support::persistent()).expect("op")
            }],
            0,
            Error::NoNode,
        ),
        (
            "the last op fails",
            vec![
                |w| w.add_create("/d", b"", &support::persistent()).expect("op"),
                |w| w.add_set_data("/m", b"y", Some(0)).expect("op"),
                |w| w.add_create("/m", b"", &support::persistent()).expect("op"),
            ],
            2,
            Error::NodeExists,
        ),
        (
            "an op fails because of an earlier op",
            vec![
                |w| w.add_create("/e", b"", &support::persistent()).expect("op"),
                |w| w.add_create("/e", b"", &support::persistent()).expect("op"),
            ],
            1,
            Error::NodeExists,
        ),
        (
            "a check fails after a delete",
            vec![|w| w.add_delete("/m", Some(0)).expect("op"), |w| {
                w.add_check_version("/m", 0).expect("op")
            }],
            1,
            Error::NoNode,
        ),
    ];
    for (case, ops, index, source) in cases {
        let mut writer = client.new_multi_writer();
        for op in &ops {
            op(&mut writer);
        }
        let result = within(case, writer.commit()).await;
        assert_eq!(
            result,
            Err(MultiWriteError::OperationFailed {
                index,
                source: source.clone()
            }),
            "{case}"
        );
    }

    for path in ["/a", "/b", "/c", "/d", "/e"] {
        assert_eq!(
            client.check_stat(path).await.expect("exists"),
            None,
            "{path} was created by a failed multi"
        );
    }
    let (data, after) = client.get_data("/m").await.expect("/m is still there");
    assert_eq!(data, b"v0", "a failed multi changed /m");
    assert_eq!(after, before, "a failed multi changed /m's Stat");
    let root_after = client.check_stat("/").await.expect("stat /").expect("/");
    assert_eq!(root_after.cversion, root_before.cversion);
    assert_eq!(root_after.num_children, root_before.num_children);
    assert_eq!(root_after.pzxid, root_before.pzxid);
}

/// The ip scheme: an ACL for 127.0.0.1 (or 127.0.0.0/8) admits a loopback client, one for
/// another address refuses it (NoAuth), permissions still count, and an id that is not an
/// address is InvalidACL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_acl_admits_loopback_and_refuses_other_addresses() {
    let server = start().await;
    let client = connect(&server.address).await;
    let ip = |permission, address| [Acl::new(permission, AuthId::new("ip", address))];
    create_with(&client, "/ip-local", &ip(Permission::ALL, "127.0.0.1"))
        .await
        .expect("create /ip-local");
    create_with(&client, "/ip-net", &ip(Permission::READ, "127.0.0.0/8"))
        .await
        .expect("create /ip-net");
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never this machine.
    create_with(&client, "/ip-other", &ip(Permission::ALL, "192.0.2.1"))
        .await
        .expect("create /ip-other");
    create_with(
        &client,
        "/ip-other-net",
        &ip(Permission::ALL, "192.0.2.0/24"),
    )
    .await
    .expect("create /ip-other-net");

    let other = connect(&server.address).await;
    assert_eq!(
        other.get_data("/ip-local").await.expect("read /ip-local").0,
        b"d"
    );
    other
        .set_data("/ip-local", b"e", None)
        .await
        .expect("127.0.0.1 may write /ip-local");
    assert_eq!(
        other.get_data("/ip-net").await.expect("read /ip-net").0,
        b"d"
    );
    assert_eq!(
        other.set_data("/ip-net", b"e", None).await.map(|_| ()),
        Err(Error::NoAuth),
        "127.0.0.0/8 has READ only"
    );
    assert_eq!(other.get_data("/ip-other").await, Err(Error::NoAuth));
    assert_eq!(other.get_data("/ip-other-net").await, Err(Error::NoAuth));
    assert_eq!(
        other.get_acl("/ip-other").await.map(|_| ()),
        Err(Error::NoAuth),
        "getACL needs READ or ADMIN (ZooKeeper 3.6+)"
    );
    assert_eq!(
        other.get_acl("/ip-net").await.map(|(acl, _)| acl),
        Ok(vec![Acl::new(
            Permission::READ,
            AuthId::new("ip", "127.0.0.0/8")
        )]),
        "READ is enough for getACL"
    );
    assert_eq!(
        create_with(&client, "/ip-bad", &ip(Permission::ALL, "not-an-address")).await,
        Err(Error::InvalidAcl)
    );
}

async fn create_with(client: &Client, path: &str, acls: &[Acl]) -> Result<(), Error> {
    let options = CreateMode::Persistent.with_acls(Acls::new(acls));
    client.create(path, b"d", &options).await.map(|_| ())
}

/// The auth scheme: a create with `auth:` gets the caller's authenticated ids instead (here the
/// digest of alice, or of alice and bob when both were added), which only those users pass;
/// without any authenticated id (the ip id does not count) the create is InvalidACL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_scheme_is_rewritten_to_the_callers_digest() {
    let server = start().await;
    let authed = [Acl::new(Permission::ALL, AuthId::authed())];
    let alice = connect_with_auth(&server.address, "digest", b"alice:secret").await;
    create_with(&alice, "/alice", &authed)
        .await
        .expect("create with auth: as alice");
    let (acl, _) = alice.get_acl("/alice").await.expect("getACL /alice");
    assert_eq!(
        acl,
        vec![Acl::new(
            Permission::ALL,
            AuthId::new("digest", ALICE_DIGEST)
        )]
    );

    let both = connect_with_auth(&server.address, "digest", b"alice:secret").await;
    within("add bob's auth", both.auth("digest", b"bob:hunter2"))
        .await
        .expect("addAuth digest bob");
    create_with(&both, "/both", &authed)
        .await
        .expect("create with auth: as alice and bob");
    let (mut acl, _) = both.get_acl("/both").await.expect("getACL /both");
    acl.sort_by(|a, b| a.id().cmp(b.id()));
    assert_eq!(
        acl,
        vec![
            Acl::new(Permission::ALL, AuthId::new("digest", ALICE_DIGEST)),
            Acl::new(Permission::ALL, AuthId::new("digest", BOB_DIGEST)),
        ]
    );

    let bob = connect_with_auth(&server.address, "digest", b"bob:hunter2").await;
    assert_eq!(bob.get_data("/alice").await, Err(Error::NoAuth));
    assert_eq!(
        bob.get_data("/both").await.expect("bob reads /both").0,
        b"d"
    );
    let anonymous = connect(&server.address).await;
    assert_eq!(anonymous.get_data("/alice").await, Err(Error::NoAuth));
    assert_eq!(
        create_with(&anonymous, "/nobody", &authed).await,
        Err(Error::InvalidAcl),
        "auth: without an authenticated id"
    );
    assert_eq!(anonymous.check_stat("/nobody").await.expect("exists"), None);
}

/// An auth packet with a scheme the server has no provider for is AuthFailed, and it ends the
/// session (ZooKeeper answers AuthFailed and closes): later requests fail with AuthFailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_auth_scheme_fails_the_session() {
    let server = start().await;
    let client = connect(&server.address).await;
    let mut state = client.state_watcher();
    assert_eq!(
        within(
            "the answer to an unknown scheme",
            client.auth("nosuch", b"x")
        )
        .await,
        Err(Error::AuthFailed)
    );
    let ended = within("the session to end", session_end(&mut state)).await;
    assert_eq!(ended, SessionState::AuthFailed);
    assert_eq!(
        client.get_data("/").await.map(|_| ()),
        Err(Error::AuthFailed)
    );

    let refused = within(
        "connect with an unknown scheme",
        Client::connector()
            .with_auth("nosuch", b"x")
            .connect(&server.address),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::AuthFailed)),
        "a connect with an unknown auth scheme must fail with AuthFailed, got {refused:?}"
    );
    // The server itself is fine.
    let healthy = connect(&server.address).await;
    healthy.get_data("/").await.expect("a plain session works");
}
