//! End-to-end tests with a third-party ZooKeeper client (the `zookeeper-client` crate) over a
//! real loopback socket against an in-process rzk server. Each test opens with what it checks.

mod support;

use std::time::Duration;

use support::{connect, fast_expiry_options, start, start_with, within};
use zookeeper_client::{Acls, AddWatchMode, CreateMode, Error, EventType, MultiWriteResult};

/// The tutorial's session (§3.3): create, ls, get, set, stat, delete on a fresh server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_session_create_ls_get_set_delete() {
    let server = start().await;
    let client = connect(&server.address).await;
    let (created, _) = client
        .create("/java", b"spring", &support::persistent())
        .await
        .expect("create /java");
    assert_eq!(created.version, 0);
    assert_eq!(created.czxid, created.mzxid);
    assert_eq!(created.czxid, created.pzxid);
    let mut children = client.list_children("/").await.expect("ls /");
    children.sort();
    assert_eq!(children, vec!["java".to_string(), "zookeeper".to_string()]);
    let (data, stat) = client.get_data("/java").await.expect("get /java");
    assert_eq!(data, b"spring");
    assert_eq!(stat.data_length, 6);
    assert_eq!(stat.num_children, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    let updated = client
        .set_data("/java", b"mybatis", None)
        .await
        .expect("set /java");
    assert_eq!(updated.version, 1);
    assert!(updated.mzxid > created.mzxid, "setData moves mzxid");
    assert_eq!(updated.czxid, created.czxid, "czxid never changes");
    assert_eq!(updated.ctime, created.ctime);
    assert_eq!(
        client.set_data("/java", b"x", Some(0)).await,
        Err(Error::BadVersion)
    );
    client.delete("/java", Some(1)).await.expect("delete /java");
    assert_eq!(client.get_data("/java").await, Err(Error::NoNode));
    assert_eq!(
        client
            .create("/java", b"", &support::persistent())
            .await
            .map(|_| ()),
        Ok(())
    );
    assert_eq!(
        client
            .create("/java", b"", &support::persistent())
            .await
            .map(|_| ()),
        Err(Error::NodeExists)
    );
}

/// Sequential nodes take their suffix from the parent's stored cversion; cversion as reported
/// counts creates and deletes (ZK-COMPAT §1b: create a, b; delete a → cversion 3, next 0000000002).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_suffix_and_cversion_rules() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/seq", b"", &support::persistent())
        .await
        .expect("create /seq");
    client
        .create("/seq/a", b"", &support::persistent())
        .await
        .expect("create a");
    client
        .create("/seq/b", b"", &support::persistent())
        .await
        .expect("create b");
    client.delete("/seq/a", None).await.expect("delete a");
    let (_, stat) = client.get_data("/seq").await.expect("get /seq");
    assert_eq!(stat.cversion, 3);
    let sequential = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, sequence) = client
        .create("/seq/n-", b"", &sequential)
        .await
        .expect("sequential create");
    assert_eq!(sequence.to_string(), "0000000002");
}

/// Ephemerals belong to the session, not the connection: a second connection to the same
/// session still sees them; closing the session deletes them and fires the watch of another client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_follow_the_session() {
    let server = start().await;
    let owner = connect(&server.address).await;
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    owner
        .create("/e", b"x", &ephemeral)
        .await
        .expect("create ephemeral");
    let (_, stat) = owner.get_data("/e").await.expect("get /e");
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(
        owner
            .create("/e/child", b"", &support::persistent())
            .await
            .map(|_| ()),
        Err(Error::NoChildrenForEphemerals)
    );
    assert_eq!(
        owner.list_ephemerals("/").await.expect("getEphemerals"),
        vec!["/e".to_string()]
    );

    let observer = connect(&server.address).await;
    let (_, watcher) = observer
        .check_and_watch_stat("/e")
        .await
        .expect("exists with watch");
    // Reattach the same session on a new connection: the ephemeral stays.
    let session = owner.session().clone();
    let reattached = within(
        "reattach",
        zookeeper_client::Client::connector()
            .with_session(session)
            .connect(&server.address),
    )
    .await
    .expect("reattach the session");
    assert!(
        observer.check_stat("/e").await.expect("exists").is_some(),
        "ephemeral survives a new connection"
    );
    drop(owner);
    drop(reattached);
    let event = within("NodeDeleted after the session closed", watcher.changed()).await;
    assert_eq!(event.event_type, EventType::NodeDeleted);
    assert_eq!(observer.check_stat("/e").await.expect("exists"), None);
}

/// A session that stops pinging expires: its ephemerals go and an expired session cannot reattach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_deletes_ephemerals() {
    let server = start_with(fast_expiry_options(), None).await;
    let observer = connect(&server.address).await;
    let owner = within(
        "connect with a short timeout",
        zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_millis(400))
            .with_detached()
            .connect(&server.address),
    )
    .await
    .expect("connect");
    assert!(owner.session_timeout() <= Duration::from_millis(400));
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    owner
        .create("/lease", b"", &ephemeral)
        .await
        .expect("create ephemeral");
    let (_, watcher) = observer
        .check_and_watch_stat("/lease")
        .await
        .expect("watch");
    let session = owner.session().clone();
    // Detached: dropping the client leaves the session open, so only expiry can end it.
    drop(owner);
    let event = within("NodeDeleted by session expiry", watcher.changed()).await;
    assert_eq!(event.event_type, EventType::NodeDeleted);
    let again = within(
        "reattach an expired session",
        zookeeper_client::Client::connector()
            .with_session(session)
            .connect(&server.address),
    )
    .await;
    assert!(
        matches!(again, Err(Error::SessionExpired)),
        "expired session must be refused, got {again:?}"
    );
}

/// One-shot data and child watches fire once, with ZooKeeper's event types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_child_watches() {
    let server = start().await;
    let client = connect(&server.address).await;
    let writer = connect(&server.address).await;
    client
        .create("/w", b"0", &support::persistent())
        .await
        .expect("create /w");
    let (_, _, data_watch) = client
        .get_and_watch_data("/w")
        .await
        .expect("getData watch");
    let (_, child_watch) = client
        .list_and_watch_children("/w")
        .await
        .expect("getChildren watch");
    let (_, created_watch) = client
        .check_and_watch_stat("/w/new")
        .await
        .expect("exists watch on a missing node");
    writer.set_data("/w", b"1", None).await.expect("set");
    assert_eq!(
        within("NodeDataChanged", data_watch.changed())
            .await
            .event_type,
        EventType::NodeDataChanged
    );
    writer
        .create("/w/new", b"", &support::persistent())
        .await
        .expect("create child");
    assert_eq!(
        within("NodeChildrenChanged", child_watch.changed())
            .await
            .event_type,
        EventType::NodeChildrenChanged
    );
    assert_eq!(
        within("NodeCreated", created_watch.changed())
            .await
            .event_type,
        EventType::NodeCreated
    );
}

/// Persistent recursive watches see creates, changes and deletes in the whole subtree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/tree", b"", &support::persistent())
        .await
        .expect("create /tree");
    let mut watcher = client
        .watch("/tree", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    client
        .create("/tree/a", b"", &support::persistent())
        .await
        .expect("create a");
    client.set_data("/tree/a", b"x", None).await.expect("set a");
    client.delete("/tree/a", None).await.expect("delete a");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = within("recursive watch event", watcher.changed()).await;
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/tree/a".to_string()),
            (EventType::NodeDataChanged, "/tree/a".to_string()),
            (EventType::NodeDeleted, "/tree/a".to_string()),
        ]
    );
}

/// Multi is all-or-nothing; a failed multi reports the failing op's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_is_atomic() {
    let server = start().await;
    let client = connect(&server.address).await;
    let mut writer = client.new_multi_writer();
    writer
        .add_create("/m1", b"a", &support::persistent())
        .expect("op");
    writer
        .add_create("/m2", b"b", &support::persistent())
        .expect("op");
    writer.add_set_data("/m1", b"c", Some(0)).expect("op");
    let results = writer.commit().await.expect("multi commits");
    assert_eq!(results.len(), 3);
    assert!(matches!(results[2], MultiWriteResult::SetData { .. }));

    let mut failing = client.new_multi_writer();
    failing
        .add_create("/m3", b"", &support::persistent())
        .expect("op");
    failing.add_delete("/missing", None).expect("op");
    assert_eq!(
        failing.commit().await,
        Err(zookeeper_client::MultiWriteError::OperationFailed {
            index: 1,
            source: Error::NoNode
        }),
        "the delete (op 1) fails with NoNode; op 0 answered ok"
    );
    assert_eq!(
        client.check_stat("/m3").await.expect("exists"),
        None,
        "nothing of a failed multi is applied"
    );
}

/// Digest ACLs: a node readable only by its creator refuses others (NoAuth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_is_enforced() {
    let server = start().await;
    let owner = within(
        "connect with auth",
        zookeeper_client::Client::connector()
            .with_auth("digest", b"alice:secret")
            .connect(&server.address),
    )
    .await
    .expect("connect");
    let private = CreateMode::Persistent.with_acls(Acls::creator_all());
    owner
        .create("/private", b"s", &private)
        .await
        .expect("create with creator ACL");
    assert_eq!(
        owner.get_data("/private").await.expect("owner reads").0,
        b"s"
    );
    let stranger = connect(&server.address).await;
    assert_eq!(stranger.get_data("/private").await, Err(Error::NoAuth));
    assert_eq!(
        stranger.set_data("/private", b"x", None).await.map(|_| ()),
        Err(Error::NoAuth)
    );
    let users = owner.list_auth_users().await.expect("whoAmI");
    assert!(
        users
            .iter()
            .any(|user| user.scheme() == "digest" && user.user() == "alice"),
        "{users:?}"
    );
}

/// Many pipelined requests from one session are answered in order (per-session FIFO).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_keep_session_order() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/order", b"", &support::persistent())
        .await
        .expect("create /order");
    let client = &client;
    let mut futures = Vec::new();
    for i in 0..200 {
        let path = format!("/order/n{i:03}");
        futures.push(async move { (i, client.create(&path, b"", &support::persistent()).await) });
    }
    let results = within("200 pipelined creates", futures::future::join_all(futures)).await;
    let mut last = 0;
    for (i, result) in results {
        let (stat, _) = result.unwrap_or_else(|e| panic!("create {i}: {e}"));
        assert!(stat.czxid > last, "zxids follow request order");
        last = stat.czxid;
    }
    assert_eq!(
        client
            .count_descendants_number("/order")
            .await
            .expect("getAllChildrenNumber"),
        200
    );
}

/// getACL/setACL with aclVersion checks: a read-and-admin-only ACL refuses setData (NoAuth),
/// setACL with a stale aclVersion is BadVersion, and setACL never moves mzxid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_get_set_and_versions() {
    use zookeeper_client::{Acl, AuthId, Permission};
    let server = start().await;
    let client = connect(&server.address).await;
    let (created, _) = client
        .create("/acl", b"x", &support::persistent())
        .await
        .expect("create /acl");
    let (acl, stat) = client.get_acl("/acl").await.expect("getACL");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
    assert_eq!(stat.aversion, 0);
    let read_admin = [Acl::new(
        Permission::READ | Permission::ADMIN,
        AuthId::anyone(),
    )];
    let updated = client
        .set_acl("/acl", &read_admin, Some(0))
        .await
        .expect("setACL");
    assert_eq!(updated.aversion, 1);
    assert_eq!(updated.mzxid, created.mzxid, "setACL does not touch mzxid");
    assert_eq!(
        client.set_data("/acl", b"y", None).await.map(|_| ()),
        Err(Error::NoAuth)
    );
    assert_eq!(
        client
            .set_acl("/acl", &read_admin, Some(0))
            .await
            .map(|_| ()),
        Err(Error::BadVersion)
    );
    assert_eq!(
        client.get_data("/acl").await.expect("READ still allowed").0,
        b"x"
    );
}

/// sync answers, and /zookeeper/config exists on a standalone server as on ZooKeeper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_config_node() {
    let server = start().await;
    let client = connect(&server.address).await;
    client.sync("/").await.expect("sync /");
    client
        .sync("/missing")
        .await
        .expect("sync on a missing path succeeds");
    let (_, stat) = client.get_config().await.expect("/zookeeper/config exists");
    assert_eq!(stat.aversion, -1);
}

/// check (inside a multi, the CheckWriter) and multiRead with per-op results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_version_and_multi_read() {
    use zookeeper_client::MultiReadResult;
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/guard", b"", &support::persistent())
        .await
        .expect("create /guard");
    client
        .create("/data", b"v0", &support::persistent())
        .await
        .expect("create /data");
    let mut guarded = client
        .new_check_writer("/guard", Some(0))
        .expect("check writer");
    guarded.add_set_data("/data", b"v1", None).expect("op");
    guarded
        .commit()
        .await
        .expect("guard at version 0 lets the write through");
    let mut stale = client
        .new_check_writer("/guard", Some(7))
        .expect("check writer");
    stale.add_set_data("/data", b"v2", None).expect("op");
    assert_eq!(
        stale.commit().await,
        Err(zookeeper_client::CheckWriteError::CheckFailed {
            source: Error::BadVersion
        }),
        "a stale guard version fails the multi at the check"
    );
    assert_eq!(
        client.get_data("/data").await.expect("get /data").0,
        b"v1",
        "nothing of the failed multi is applied"
    );
    let mut reader = client.new_multi_reader();
    reader.add_get_data("/data").expect("op");
    reader.add_get_children("/missing").expect("op");
    let results = reader.commit().await.expect("multiRead");
    assert!(
        matches!(&results[0], MultiReadResult::Data { data, .. } if data == b"v1"),
        "{results:?}"
    );
    assert!(
        matches!(&results[1], MultiReadResult::Error { err: Error::NoNode }),
        "{results:?}"
    );
}

/// A persistent (non-recursive) watch is not removed when it fires, and sees data and child
/// changes of its node (removeWatches: through this crate in client_api_more.rs, on the wire
/// against ZooKeeper in crates/rzk/tests/differential.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_keeps_firing() {
    let server = start().await;
    let client = connect(&server.address).await;
    client
        .create("/p", b"", &support::persistent())
        .await
        .expect("create /p");
    let mut watcher = client
        .watch("/p", AddWatchMode::Persistent)
        .await
        .expect("addWatch");
    client.set_data("/p", b"1", None).await.expect("set");
    client.set_data("/p", b"2", None).await.expect("set again");
    client
        .create("/p/c", b"", &support::persistent())
        .await
        .expect("create child");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(
            within("persistent watch event", watcher.changed())
                .await
                .event_type,
        );
    }
    assert_eq!(
        seen,
        vec![
            EventType::NodeDataChanged,
            EventType::NodeDataChanged,
            EventType::NodeChildrenChanged
        ]
    );
}

/// Containers and TTL nodes (extendedTypesEnabled): a container goes once its last child is
/// deleted; a TTL node goes once its TTL passed without a change; without extended types a TTL
/// create is Unimplemented, as on ZooKeeper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_and_ttl_nodes_are_cleaned_up() {
    let mut options = rzk_server::ServerOptions::for_tests();
    options.container_check_interval_ms = 100;
    options.state_machine.extended_types_enabled = true;
    let server = start_with(options, None).await;
    let client = connect(&server.address).await;
    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    let (stat, _) = client
        .create("/box", b"", &container)
        .await
        .expect("create container");
    assert_eq!(
        stat.ephemeral_owner, 0,
        "containers show owner 0 to clients"
    );
    client
        .create("/box/item", b"", &support::persistent())
        .await
        .expect("create child");
    let (_, box_gone) = client
        .check_and_watch_stat("/box")
        .await
        .expect("watch /box");
    client
        .delete("/box/item", None)
        .await
        .expect("delete child");
    assert_eq!(
        within("the empty container is deleted", box_gone.changed())
            .await
            .event_type,
        EventType::NodeDeleted
    );

    let ttl = support::persistent().with_ttl(Duration::from_millis(200));
    client
        .create("/lease", b"", &ttl)
        .await
        .expect("create TTL node");
    let (_, lease_gone) = client
        .check_and_watch_stat("/lease")
        .await
        .expect("watch /lease");
    assert_eq!(
        within("the TTL node is deleted", lease_gone.changed())
            .await
            .event_type,
        EventType::NodeDeleted
    );

    let plain = start().await;
    let client = connect(&plain.address).await;
    assert_eq!(
        client.create("/lease", b"", &ttl).await.map(|_| ()),
        Err(Error::Unimplemented)
    );
}
