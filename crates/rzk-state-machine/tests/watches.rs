//! Watch firing rules and ordering (ZK-COMPAT §1b Watches, §3), checkWatches/removeWatches,
//! addWatch and setWatches.

mod common;

use common::*;
use rzk_proto::*;
use rzk_state_machine::*;

use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

fn ev(session: SessionId, event: EventType, path: &str) -> (SessionId, EventType, String) {
    (session, event, path.to_string())
}

// Goal: getData/exists watches fire NodeDataChanged once (one-shot).
#[test]
fn data_watch_is_one_shot() {
    let mut h = Harness::new();
    h.mk("/a");
    h.watch_data(S2, "/a").unwrap();
    let first = h.write(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&first.notifications),
        vec![ev(S2, NodeDataChanged, "/a")]
    );
    assert_eq!(first.notifications[0].zxid, first.zxid);
    let second = h.write(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: None,
        version: -1,
    }));
    assert!(second.notifications.is_empty());
}

// Goal: exists on a missing node answers NoNode but leaves a watch that fires NodeCreated;
// getData on a missing node leaves none.
#[test]
fn exists_on_missing_node_watches_creation() {
    let mut h = Harness::new();
    assert_eq!(h.watch_exists(S2, "/later"), Err(ErrorCode::NoNode));
    assert_eq!(h.watch_data(S1, "/later"), Err(ErrorCode::NoNode));
    assert_eq!(h.watch_children(S1, "/later"), Err(ErrorCode::NoNode));
    let applied = h.write(create_request("/later", None, 0));
    assert_eq!(
        events(&applied.notifications),
        vec![ev(S2, NodeCreated, "/later")]
    );
}

// Goal: a node's NodeDeleted comes before its parent's NodeChildrenChanged, and a session
// watching a node for both data and children gets one NodeDeleted.
#[test]
fn delete_order_and_single_node_deleted() {
    let mut h = Harness::new();
    h.mk("/p");
    h.mk("/p/c");
    h.watch_data(S2, "/p/c").unwrap();
    h.watch_children(S2, "/p/c").unwrap();
    h.watch_children(S2, "/p").unwrap();
    h.watch_children(S1, "/p/c").unwrap();
    let applied = h.write(Request::Delete(DeleteRequest {
        path: "/p/c".into(),
        version: -1,
    }));
    assert_eq!(
        events(&applied.notifications),
        vec![
            ev(S2, NodeDeleted, "/p/c"),
            ev(S1, NodeDeleted, "/p/c"),
            ev(S2, NodeChildrenChanged, "/p")
        ]
    );
    assert_eq!(h.sm.counts().watches, 0);
}

// Goal: child watches fire NodeChildrenChanged on child create and delete, not on setData.
#[test]
fn child_watch_rules() {
    let mut h = Harness::new();
    h.mk("/p");
    h.watch_children(S2, "/p").unwrap();
    let set = h.write(Request::SetData(SetDataRequest {
        path: "/p".into(),
        data: None,
        version: -1,
    }));
    assert!(set.notifications.is_empty());
    let create = h.write(create_request("/p/x", None, 0));
    assert_eq!(
        events(&create.notifications),
        vec![ev(S2, NodeChildrenChanged, "/p")]
    );
    h.watch_children(S2, "/p").unwrap();
    let delete = h.write(Request::Delete(DeleteRequest {
        path: "/p/x".into(),
        version: -1,
    }));
    assert_eq!(
        events(&delete.notifications),
        vec![ev(S2, NodeChildrenChanged, "/p")]
    );
    // The root's children are watched under "/".
    h.watch_children(S2, "/").unwrap();
    let top = h.write(create_request("/top", None, 0));
    assert_eq!(
        events(&top.notifications),
        vec![ev(S2, NodeChildrenChanged, "/")]
    );
}

// Goal: a watcher registered by exists and getData on one path is invoked once.
#[test]
fn same_watch_twice_fires_once() {
    let mut h = Harness::new();
    h.mk("/a");
    h.watch_data(S2, "/a").unwrap();
    h.watch_exists(S2, "/a").unwrap();
    let applied = h.write(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&applied.notifications),
        vec![ev(S2, NodeDataChanged, "/a")]
    );
}

// Goal: a persistent watch gets data and child events on its node and stays.
#[test]
fn persistent_watch() {
    let mut h = Harness::new();
    h.mk("/p");
    assert_eq!(
        h.add_watch(S2, "/p", AddWatchMode::Persistent),
        Ok(Response::ErrorBody { err: 0 })
    );
    for _ in 0..2 {
        let set = h.write(Request::SetData(SetDataRequest {
            path: "/p".into(),
            data: None,
            version: -1,
        }));
        assert_eq!(
            events(&set.notifications),
            vec![ev(S2, NodeDataChanged, "/p")]
        );
    }
    let child = h.write(create_request("/p/c", None, 0));
    assert_eq!(
        events(&child.notifications),
        vec![ev(S2, NodeChildrenChanged, "/p")]
    );
    // Events on grandchildren do not reach a non-recursive watch.
    let grandchild = h.write(create_request("/p/c/g", None, 0));
    assert!(grandchild.notifications.is_empty());
    h.rm("/p/c/g");
    h.rm("/p/c");
    let gone = h.write(Request::Delete(DeleteRequest {
        path: "/p".into(),
        version: -1,
    }));
    assert_eq!(events(&gone.notifications), vec![ev(S2, NodeDeleted, "/p")]);
    let again = h.write(create_request("/p", None, 0));
    assert_eq!(
        events(&again.notifications),
        vec![ev(S2, NodeCreated, "/p")]
    );
}

// Goal: a persistent-recursive watch gets NodeCreated/NodeDeleted/NodeDataChanged for the
// subtree and never NodeChildrenChanged.
#[test]
fn persistent_recursive_watch() {
    let mut h = Harness::new();
    h.mk("/r");
    h.add_watch(S2, "/r", AddWatchMode::PersistentRecursive)
        .unwrap();
    let create = h.write(create_request("/r/a", None, 0));
    assert_eq!(
        events(&create.notifications),
        vec![ev(S2, NodeCreated, "/r/a")]
    );
    let deep = h.write(create_request("/r/a/b", None, 0));
    assert_eq!(
        events(&deep.notifications),
        vec![ev(S2, NodeCreated, "/r/a/b")]
    );
    let set = h.write(Request::SetData(SetDataRequest {
        path: "/r/a/b".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&set.notifications),
        vec![ev(S2, NodeDataChanged, "/r/a/b")]
    );
    let delete = h.write(Request::Delete(DeleteRequest {
        path: "/r/a/b".into(),
        version: -1,
    }));
    assert_eq!(
        events(&delete.notifications),
        vec![ev(S2, NodeDeleted, "/r/a/b")]
    );
    let own = h.write(Request::SetData(SetDataRequest {
        path: "/r".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&own.notifications),
        vec![ev(S2, NodeDataChanged, "/r")]
    );
    let outside = h.write(create_request("/rr", None, 0));
    assert!(outside.notifications.is_empty());
}

// Goal: a recursive watcher that also holds a one-shot child watch on the deleted node gets
// one NodeDeleted (the child table is suppressed for sessions the data table fired).
#[test]
fn recursive_and_child_watch_on_deleted_node() {
    let mut h = Harness::new();
    h.mk("/r");
    h.mk("/r/a");
    h.add_watch(S2, "/r", AddWatchMode::PersistentRecursive)
        .unwrap();
    h.watch_children(S2, "/r/a").unwrap();
    let delete = h.write(Request::Delete(DeleteRequest {
        path: "/r/a".into(),
        version: -1,
    }));
    assert_eq!(
        events(&delete.notifications),
        vec![ev(S2, NodeDeleted, "/r/a")]
    );
}

// Goal: checkWatches/removeWatches answer NoWatcher unless this session has the watch
// (3.9 behaviour), and remove exactly the named kind. The server sends no *WatchRemoved.
#[test]
fn check_and_remove_watches() {
    let mut h = Harness::new();
    h.mk("/w");
    h.watch_data(S1, "/w").unwrap();
    let check = |h: &mut Harness, session, kind: WatcherType| {
        let request = Request::CheckWatches(RemoveWatchesRequest {
            path: "/w".into(),
            watcher_type: kind.code(),
        });
        h.read_as(session, &[], request).0
    };
    let remove = |h: &mut Harness, session, kind: WatcherType| {
        let request = Request::RemoveWatches(RemoveWatchesRequest {
            path: "/w".into(),
            watcher_type: kind.code(),
        });
        h.read_as(session, &[], request)
    };
    assert_eq!(check(&mut h, S1, WatcherType::Data), Ok(Response::Empty));
    assert_eq!(check(&mut h, S1, WatcherType::Any), Ok(Response::Empty));
    assert_eq!(
        check(&mut h, S1, WatcherType::Children),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        check(&mut h, S2, WatcherType::Data),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        remove(&mut h, S2, WatcherType::Any).0,
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        remove(&mut h, S1, WatcherType::Children).0,
        Err(ErrorCode::NoWatcher)
    );
    let (reply, notifications) = remove(&mut h, S1, WatcherType::Data);
    assert_eq!(reply, Ok(Response::Empty));
    assert!(notifications.is_empty());
    assert_eq!(
        check(&mut h, S1, WatcherType::Data),
        Err(ErrorCode::NoWatcher)
    );
    let set = h.write(Request::SetData(SetDataRequest {
        path: "/w".into(),
        data: None,
        version: -1,
    }));
    assert!(set.notifications.is_empty());
    h.add_watch(S1, "/w", AddWatchMode::Persistent).unwrap();
    h.add_watch(S1, "/w", AddWatchMode::PersistentRecursive)
        .unwrap();
    assert_eq!(
        check(&mut h, S1, WatcherType::Persistent),
        Ok(Response::Empty)
    );
    assert_eq!(
        remove(&mut h, S1, WatcherType::Persistent).0,
        Ok(Response::Empty)
    );
    assert_eq!(
        check(&mut h, S1, WatcherType::PersistentRecursive),
        Ok(Response::Empty)
    );
    assert_eq!(remove(&mut h, S1, WatcherType::Any).0, Ok(Response::Empty));
    assert_eq!(h.sm.counts().watches, 0);
    let bad = Request::CheckWatches(RemoveWatchesRequest {
        path: "/w".into(),
        watcher_type: 9,
    });
    // ZooKeeper 3.8.0 answers an unknown watcher type with MarshallingError (differential test).
    assert_eq!(h.read_as(S1, &[], bad).0, Err(ErrorCode::MarshallingError));
}

// Goal: drop_watches forgets a session's watches; counts follow ZooKeeper's wchs numbers.
#[test]
fn drop_watches_and_counts() {
    let mut h = Harness::new();
    h.mk("/a");
    h.watch_data(S1, "/a").unwrap();
    h.watch_children(S1, "/a").unwrap();
    h.watch_data(S2, "/a").unwrap();
    h.add_watch(S2, "/b", AddWatchMode::Persistent).unwrap();
    const S3: SessionId = 0x300;
    h.session(S3);
    h.mk("/c");
    h.watch_children(S3, "/c").unwrap();
    let (counts, summary) = (h.sm.counts(), h.sm.watch_summary());
    // All: S1 /a in both tables (2), S2 /a data (1), S2 /b persistent in both tables (2), S3 /c
    // child (1). The data table (wchs): S1 /a, S2 /a, S2 /b; S3 and /c watch children only.
    assert_eq!(
        (
            counts.watches,
            summary.watches,
            summary.paths,
            summary.sessions
        ),
        (6, 3, 2, 2)
    );
    h.sm.drop_watches(S2);
    h.sm.check_invariants();
    let (counts, summary) = (h.sm.counts(), h.sm.watch_summary());
    assert_eq!(
        (
            counts.watches,
            summary.watches,
            summary.paths,
            summary.sessions
        ),
        (3, 1, 1, 1)
    );
    let set = h.write(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&set.notifications),
        vec![ev(S1, NodeDataChanged, "/a")]
    );
}

// Goal: setWatches follows the relativeZxid rules of DataTree.setWatches; duplicates fire twice.
#[test]
fn set_watches_relative_zxid_rules() {
    let mut h = Harness::new();
    h.mk("/same");
    h.mk("/changed");
    h.mk("/parent");
    let rel = h.sm.last_zxid();
    assert!(h.set("/changed", b"new", -1).is_ok());
    h.mk("/parent/kid");
    let watches = SetWatches {
        relative_zxid: rel,
        data_watches: vec![
            "/same".into(),
            "/changed".into(),
            "/gone".into(),
            "/gone".into(),
        ],
        exist_watches: vec!["/same".into(), "/absent".into()],
        child_watches: vec!["/same".into(), "/parent".into(), "/gone".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/same".into()],
    };
    let mut notifications = Vec::new();
    h.sm.set_watches(S2, &watches, &mut notifications);
    h.sm.check_invariants();
    assert_eq!(
        events(&notifications),
        vec![
            ev(S2, NodeDataChanged, "/changed"),
            ev(S2, NodeDeleted, "/gone"),
            ev(S2, NodeDeleted, "/gone"),
            ev(S2, NodeCreated, "/same"),
            ev(S2, NodeChildrenChanged, "/parent"),
            ev(S2, NodeDeleted, "/gone"),
        ]
    );
    assert!(notifications.iter().all(|n| n.zxid == -1));
    // Armed: data + child + recursive on /same, exist on /absent, persistent on /p.
    let created = h.write(create_request("/absent", None, 0));
    assert_eq!(
        events(&created.notifications),
        vec![ev(S2, NodeCreated, "/absent")]
    );
    let child = h.write(create_request("/same/x", None, 0));
    assert_eq!(
        events(&child.notifications),
        vec![
            ev(S2, NodeCreated, "/same/x"),
            ev(S2, NodeChildrenChanged, "/same")
        ]
    );
    let p = h.write(create_request("/p", None, 0));
    assert_eq!(events(&p.notifications), vec![ev(S2, NodeCreated, "/p")]);
}

// Goal: multiRead answers each read on its own and sets the watches it asks for.
#[test]
fn multi_read_independent_results() {
    let mut h = Harness::new();
    h.mk("/m");
    let ops = vec![
        Request::GetData(PathWatchRequest {
            path: "/m".into(),
            watch: true,
        }),
        Request::GetChildren(PathWatchRequest {
            path: "/missing".into(),
            watch: false,
        }),
        Request::GetChildren(PathWatchRequest {
            path: "/".into(),
            watch: false,
        }),
    ];
    let reply = h.read_as(S2, &[], Request::MultiRead(ops)).0;
    let stat = h.stat("/m");
    assert_eq!(
        reply,
        Ok(Response::Multi(vec![
            MultiResult::GetData {
                data: Some(b"x".to_vec()),
                stat
            },
            MultiResult::Error {
                err: ErrorCode::NoNode.code()
            },
            MultiResult::GetChildren {
                children: vec!["m".into(), "zookeeper".into()]
            },
        ]))
    );
    let set = h.write(Request::SetData(SetDataRequest {
        path: "/m".into(),
        data: None,
        version: -1,
    }));
    assert_eq!(
        events(&set.notifications),
        vec![ev(S2, NodeDataChanged, "/m")]
    );
    let bad = Request::MultiRead(vec![Request::Exists(PathWatchRequest {
        path: "/m".into(),
        watch: false,
    })]);
    assert_eq!(h.read(bad), Err(ErrorCode::MarshallingError));
}

// Goal: a closed session's watches are dropped with it.
#[test]
fn close_session_drops_its_watches() {
    let mut h = Harness::new();
    h.mk("/a");
    h.watch_data(S2, "/a").unwrap();
    h.entry(S2, EntryOp::CloseSession);
    assert_eq!(h.sm.counts().watches, 0);
}

// Goal: every event carries the ACL its watcher must be able to READ (CVE-2024-23944): the
// node's own for its events, the parent's for NodeChildrenChanged, as it was when the change
// happened (a deleted node's ACL too). `may_deliver` checks it like any other READ: superusers
// and `skipACL` pass; setWatches' events carry none.
#[test]
fn events_carry_the_acl_a_watcher_must_read() {
    let alice = [Id {
        scheme: "digest".into(),
        id: digest_id("alice:secret"),
    }];
    let superuser = [Id {
        scheme: "super".into(),
        id: "super".into(),
    }];
    let stranger: [Id; 0] = [];
    let alice_only = vec![Acl {
        perms: codes::perms::ALL,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    }];
    for skip_acl in [false, true] {
        let mut h = Harness::with(Options {
            skip_acl,
            ..Options::default()
        });
        h.mk("/p");
        h.add_watch(S2, "/p", AddWatchMode::PersistentRecursive)
            .unwrap();
        h.watch_children(S2, "/p").unwrap();
        let create = Request::Create(CreateRequest {
            path: "/p/secret".into(),
            data: None,
            acl: alice_only.clone(),
            flags: 0,
        });
        let created = h.write_as(S1, &alice, create);
        let delete = Request::Delete(DeleteRequest {
            path: "/p/secret".into(),
            version: -1,
        });
        let deleted = h.write_as(S1, &alice, delete);
        let may = |n: &Notification, auth: &[Id]| h.sm.may_deliver(n, auth);
        let mut seen = Vec::new();
        for n in created.notifications.iter().chain(&deleted.notifications) {
            let event = EventType::from_i32(n.event.event_type).unwrap();
            seen.push((event, n.event.path.clone()));
            assert!(may(n, &alice) && may(n, &superuser), "{event:?} {n:?}");
            // The parent is open; the node is alice's (unless ACLs are skipped).
            let open = event == NodeChildrenChanged || skip_acl;
            assert_eq!(may(n, &stranger), open, "{event:?} {n:?}");
        }
        assert_eq!(
            seen,
            vec![
                (NodeCreated, "/p/secret".to_string()),
                (NodeChildrenChanged, "/p".to_string()),
                (NodeDeleted, "/p/secret".to_string()),
            ]
        );
    }
}
