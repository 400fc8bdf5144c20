//! rzk-client against Debian's Apache ZooKeeper 3.8.0 (the reference, not our server): the
//! client must be right on its own before it is used to judge rzk.

mod reference_zk;

use std::time::Duration;

use reference_zk::ReferenceZk;
use rzk_client::{
    AddWatchMode, Client, ClientError, CreateMode, ErrorCode, EventType, KeeperState, MultiResult,
    Request, WatchedEvent, WatcherType,
};
use rzk_proto::codes::perms;
use rzk_proto::{Acl, CreateRequest, DeleteRequest, Id};

const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<WatchedEvent>,
    what: &str,
) -> WatchedEvent {
    tokio::time::timeout(EVENT_DEADLINE, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no event within {EVENT_DEADLINE:?} while waiting for {what}"))
        .unwrap_or_else(|| panic!("event channel closed while waiting for {what}"))
}

fn event(event_type: EventType, state: KeeperState, path: Option<&str>) -> WatchedEvent {
    WatchedEvent {
        event_type,
        state,
        path: path.map(str::to_owned),
    }
}

#[tokio::test]
async fn crud_watches_multi_and_close_against_reference() {
    let Some(zk) = ReferenceZk::start() else {
        return;
    };
    // The first host is dead: connect must move on to the next one.
    let dead = format!("127.0.0.1:{}", reference_zk::free_port());
    let client = Client::connect(&format!("{dead},{}", zk.address()), SESSION_TIMEOUT)
        .await
        .expect("connect through the second host");
    assert!(client.session().session_id != 0);
    assert!(client.session().timeout_ms > 0);
    let mut events = client.take_events().expect("first take_events");
    assert_eq!(
        next_event(&mut events, "SyncConnected").await,
        event(EventType::None, KeeperState::SyncConnected, None)
    );

    let acl = open_acl();
    assert_eq!(
        client
            .create("/java", Some(b"spring"), &acl, CreateMode::Persistent)
            .await,
        Ok("/java".into())
    );
    assert_eq!(
        client
            .create("/java", None, &acl, CreateMode::Persistent)
            .await,
        Err(ClientError::Keeper(ErrorCode::NodeExists))
    );
    let (data, stat) = client.get_data("/java", true).await.expect("getData /java");
    assert_eq!(data.as_deref(), Some(&b"spring"[..]));
    assert_eq!(stat.version, 0);
    let stat = client
        .set_data("/java", Some(b"mybatis"), 0)
        .await
        .expect("setData /java");
    assert_eq!(stat.version, 1);
    // The notification was sent before the reply, so it is already queued.
    assert_eq!(
        events.try_recv().ok(),
        Some(event(
            EventType::NodeDataChanged,
            KeeperState::SyncConnected,
            Some("/java")
        ))
    );
    assert_eq!(
        client.set_data("/java", Some(b"x"), 7).await,
        Err(ClientError::Keeper(ErrorCode::BadVersion))
    );
    assert_eq!(client.exists("/nope", false).await, Ok(None));
    assert_eq!(
        client.get_data("/nope", false).await.map(|_| ()),
        Err(ClientError::Keeper(ErrorCode::NoNode))
    );

    // Null data stays null.
    client
        .create("/null", None, &acl, CreateMode::Persistent)
        .await
        .expect("create /null");
    assert_eq!(
        client
            .get_data("/null", false)
            .await
            .expect("getData /null")
            .0,
        None
    );

    // Pipelining: many requests in flight at once, each answered in order.
    let creates = (0..200).map(|i| {
        let client = &client;
        let acl = &acl;
        async move {
            client
                .create(
                    &format!("/java/c{i:03}"),
                    Some(b"x"),
                    acl,
                    CreateMode::Persistent,
                )
                .await
        }
    });
    let results = futures_join_all(creates).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result, Ok(format!("/java/c{i:03}")));
    }
    let (mut children, stat) = client
        .get_children2("/java", false)
        .await
        .expect("getChildren2");
    children.sort();
    assert_eq!(children.len(), 200);
    assert_eq!(stat.num_children, 200);
    assert_eq!(client.get_all_children_number("/java").await, Ok(200));

    let sequential = client
        .create("/s-", None, &acl, CreateMode::EphemeralSequential)
        .await
        .expect("create -e -s");
    assert!(
        sequential.starts_with("/s-") && sequential.len() == 13,
        "{sequential}"
    );
    assert_eq!(
        client.get_ephemerals("/").await,
        Ok(vec![sequential.clone()])
    );

    // multi: all-or-nothing, outer Ok, per-op results.
    let results = client
        .multi(vec![
            Request::Create(CreateRequest {
                path: "/m1".into(),
                data: None,
                acl: acl.clone(),
                flags: 0,
            }),
            Request::Delete(DeleteRequest {
                path: "/nope".into(),
                version: -1,
            }),
        ])
        .await
        .expect("multi");
    assert_eq!(
        results,
        vec![
            MultiResult::Error { err: 0 },
            MultiResult::Error {
                err: ErrorCode::NoNode.code()
            }
        ]
    );
    assert_eq!(client.exists("/m1", false).await, Ok(None));

    // Persistent recursive watch, then its removal.
    client
        .add_watch("/java", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    client.delete("/java/c000", -1).await.expect("delete child");
    assert_eq!(
        next_event(&mut events, "NodeDeleted /java/c000").await,
        event(
            EventType::NodeDeleted,
            KeeperState::SyncConnected,
            Some("/java/c000")
        )
    );
    assert_eq!(
        client.remove_watches("/nope", WatcherType::Any).await,
        Err(ClientError::Keeper(ErrorCode::NoWatcher))
    );
    // The server sends no *WatchRemoved event: the Java client makes those up locally.
    client
        .remove_watches("/java", WatcherType::Any)
        .await
        .expect("removeWatches");
    client
        .delete("/java/c001", -1)
        .await
        .expect("delete child after removeWatches");
    assert!(
        events.try_recv().is_err(),
        "no event after the watch was removed"
    );

    client
        .add_auth("digest", b"u:p")
        .await
        .expect("addauth digest");
    let who = client.who_am_i().await.expect("whoAmI");
    assert!(
        who.iter()
            .any(|info| info.auth_scheme == "digest" && info.user == "u"),
        "{who:?}"
    );
    assert_eq!(client.sync("/java").await, Ok("/java".into()));
    let (acl_read, _) = client.get_acl("/").await.expect("getACL /");
    assert_eq!(acl_read, acl);

    client.close().await.expect("close");
    assert_eq!(
        next_event(&mut events, "Closed").await,
        event(EventType::None, KeeperState::Closed, None)
    );
    assert!(!client.is_alive());
    assert!(matches!(
        client.exists("/", false).await,
        Err(ClientError::ConnectionLost { .. })
    ));

    // The session is gone at once, so its ephemeral is too.
    let other = Client::connect(&zk.address(), SESSION_TIMEOUT)
        .await
        .expect("second session");
    assert_eq!(other.exists(&sequential, false).await, Ok(None));
    other.close().await.expect("close second session");
}

// Goal: requests sent at once from many tasks, which the writer task gathers into shared writes,
// each get their own reply. Method: 32 tasks on a two-thread runtime, each creating 20 nodes one
// at a time, then reading all of them back with 20 requests in flight at once, against the
// reference server; every reply must carry that request's own data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_many_tasks_at_once_each_get_their_own_reply() {
    let Some(zk) = ReferenceZk::start() else {
        return;
    };
    let client = std::sync::Arc::new(
        Client::connect(&zk.address(), SESSION_TIMEOUT)
            .await
            .expect("connect"),
    );
    let acl = open_acl();
    client
        .create("/p", None, &acl, CreateMode::Persistent)
        .await
        .expect("create /p");
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32 {
        let client = client.clone();
        let acl = acl.clone();
        tasks.spawn(async move {
            let paths: Vec<String> = (0..20).map(|i| format!("/p/n{task}-{i}")).collect();
            for path in &paths {
                let created = client
                    .create(path, Some(path.as_bytes()), &acl, CreateMode::Persistent)
                    .await;
                assert_eq!(created.as_deref(), Ok(path.as_str()));
            }
            let reads =
                futures_join_all(paths.iter().map(|path| client.get_data(path, false))).await;
            for (path, read) in paths.iter().zip(reads) {
                let (data, _) = read.unwrap_or_else(|e| panic!("get {path}: {e}"));
                assert_eq!(data.as_deref(), Some(path.as_bytes()));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task failed");
    }
    assert_eq!(
        client.get_children("/p", false).await.map(|c| c.len()),
        Ok(640)
    );
}

// Goal: a server that stops answering while its connection stays open is declared lost after
// 2/3 of the session timeout without a packet (the Java client's rule), not sooner, and at most a
// quarter of that later (silence is checked by one timer, not one per reply). Method: the
// reference server is stopped with SIGSTOP right after a reply, and the Disconnected event timed.
#[tokio::test]
async fn a_silent_server_is_declared_lost_after_two_thirds_of_the_session_timeout() {
    let Some(zk) = ReferenceZk::start() else {
        return;
    };
    let client = Client::connect(&zk.address(), Duration::from_millis(4000))
        .await
        .expect("connect");
    let negotiated = Duration::from_millis(u64::try_from(client.session().timeout_ms).unwrap());
    let read_timeout = negotiated * 2 / 3;
    let mut events = client.take_events().expect("events");
    assert_eq!(
        next_event(&mut events, "SyncConnected").await.state,
        KeeperState::SyncConnected
    );
    client.exists("/", false).await.expect("a round trip");
    let stopped = std::time::Instant::now();
    zk.signal("STOP");
    let deadline = read_timeout * 2 + Duration::from_secs(5);
    let event = tokio::time::timeout(deadline, events.recv()).await;
    let elapsed = stopped.elapsed();
    zk.signal("CONT");
    let event = event
        .unwrap_or_else(|_| panic!("no event within {deadline:?} of silence"))
        .expect("event channel open");
    assert_eq!(event.state, KeeperState::Disconnected);
    assert!(
        elapsed >= read_timeout * 9 / 10,
        "declared lost after {elapsed:?}, before {read_timeout:?} of silence"
    );
    assert!(
        elapsed <= read_timeout * 5 / 4 + Duration::from_secs(2),
        "declared lost only after {elapsed:?} ({read_timeout:?} of silence allowed)"
    );
    let error = client.exists("/", false).await.err();
    assert!(
        matches!(&error, Some(ClientError::ConnectionLost { reason, .. }) if reason.contains("nothing received")),
        "{error:?}"
    );
}

#[tokio::test]
async fn connect_to_nothing_names_every_host() {
    let first = format!("127.0.0.1:{}", reference_zk::free_port());
    let second = format!("127.0.0.1:{}", reference_zk::free_port());
    let error = Client::connect(&format!("{first},{second}"), SESSION_TIMEOUT)
        .await
        .err()
        .expect("no server listens there");
    let message = error.to_string();
    assert!(
        message.contains(&first) && message.contains(&second),
        "{message}"
    );
    assert!(matches!(
        Client::connect("", SESSION_TIMEOUT).await.err(),
        Some(ClientError::InvalidArgument(_))
    ));
}

/// Join futures concurrently without pulling in the futures crate: spawn-free, on one task.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future completed"))
        .collect()
}
