//! Stat rules (ZK-COMPAT §1b table), path rules and the §3 traps, through apply/read only.

mod common;

use common::*;
use rzk_proto::*;
use rzk_state_machine::*;

// Goal: the initial tree has ZooKeeper's four nodes with zero stats (derived fields computed).
#[test]
fn initial_tree() {
    let mut h = Harness::new();
    let root = h.stat("/");
    assert_eq!(
        (
            root.czxid,
            root.mzxid,
            root.pzxid,
            root.version,
            root.aversion
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(root.num_children, 1);
    // Reported cversion is derived: 2 × 0 − 1 child.
    assert_eq!(root.cversion, -1);
    assert_eq!(h.children("/zookeeper"), vec!["config", "quota"]);
    assert_eq!(h.stat("/zookeeper/config").aversion, -1);
    assert_eq!(h.get("/"), Some(vec![]));
    let counts = h.sm.counts();
    assert_eq!(counts.znodes, 5);
    assert_eq!(counts.sessions, 2);
}

// Goal: every Stat field on create and the events that change it (ZK-COMPAT §1b table).
#[test]
fn stat_fields_follow_the_table() {
    let mut h = Harness::new();
    let applied = h.write(create_request("/a", Some(b"hello"), 0));
    let zxid = applied.zxid;
    let stat = h.stat("/a");
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (zxid, zxid, zxid));
    assert_eq!(stat.ctime, stat.mtime);
    assert_eq!(
        (
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeral_owner
        ),
        (0, 0, 0, 0)
    );
    assert_eq!((stat.data_length, stat.num_children), (5, 0));

    let set = h.write(Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: Some(b"hi".to_vec()),
        version: 0,
    }));
    let after_set = h.stat("/a");
    assert_eq!(set.reply, Ok(Response::Stat(after_set)));
    assert_eq!(
        (after_set.mzxid, after_set.version, after_set.data_length),
        (set.zxid, 1, 2)
    );
    assert_eq!((after_set.czxid, after_set.pzxid), (zxid, zxid));
    assert!(after_set.mtime > after_set.ctime);

    let acl = h.write(Request::SetAcl(SetAclRequest {
        path: "/a".into(),
        acl: open_acl(),
        version: 0,
    }));
    let after_acl = h.stat("/a");
    assert_eq!(acl.reply, Ok(Response::Stat(after_acl)));
    // setACL touches aversion only, never mzxid/mtime.
    assert_eq!(
        (after_acl.aversion, after_acl.mzxid, after_acl.mtime),
        (1, set.zxid, after_set.mtime)
    );

    let child = h.write(create_request("/a/b", None, 0));
    let parent = h.stat("/a");
    assert_eq!(
        (
            parent.pzxid,
            parent.cversion,
            parent.num_children,
            parent.mzxid
        ),
        (child.zxid, 1, 1, set.zxid)
    );
    let removed = h.write(Request::Delete(DeleteRequest {
        path: "/a/b".into(),
        version: -1,
    }));
    let parent = h.stat("/a");
    assert_eq!(
        (parent.pzxid, parent.cversion, parent.num_children),
        (removed.zxid, 2, 0)
    );
}

// Goal: the §1b/§3 trap — create a, b; delete a → reported cversion 3, next suffix 0000000002.
#[test]
fn cversion_reports_creates_plus_deletes_and_sequence_uses_creates() {
    let mut h = Harness::new();
    h.mk("/p");
    h.mk("/p/a");
    h.mk("/p/b");
    h.rm("/p/a");
    assert_eq!(h.stat("/p").cversion, 3);
    assert_eq!(h.create_with("/p/s-", None, 2), created("/p/s-0000000002"));
    // Trailing "/" is allowed for sequential creates.
    assert_eq!(h.create_with("/p/", None, 2), created("/p/0000000003"));
    assert_eq!(h.create_with("/p/", None, 0), Err(ErrorCode::BadArguments));
}

// Goal: failed writes and empty multis consume a zxid; zxids increase by one per entry.
#[test]
fn every_entry_consumes_a_zxid() {
    let mut h = Harness::new();
    let before = h.sm.last_zxid();
    let failed = h.write(Request::Delete(DeleteRequest {
        path: "/missing".into(),
        version: -1,
    }));
    assert_eq!(failed.reply, Err(ErrorCode::NoNode));
    assert_eq!(failed.zxid, before + 1);
    let empty = h.write(Request::Multi(vec![]));
    assert_eq!(empty.reply, Ok(Response::Multi(vec![])));
    assert_eq!(empty.zxid, before + 2);
    assert_eq!(h.sm.last_zxid(), before + 2);
}

// Goal: null data stays null, distinct from empty.
#[test]
fn null_data_is_not_empty() {
    let mut h = Harness::new();
    h.create_with("/null", None, 0).unwrap();
    h.create_with("/empty", Some(b""), 0).unwrap();
    assert_eq!(h.get("/null"), None);
    assert_eq!(h.get("/empty"), Some(vec![]));
    assert_eq!(h.stat("/null").data_length, 0);
}

// Goal: the path traps of ZK-COMPAT §3 and the order of create's checks.
#[test]
fn path_traps() {
    let mut h = Harness::new();
    assert_eq!(h.create("/a\0b"), Err(ErrorCode::BadArguments));
    assert_eq!(h.create("/a\u{1}"), Err(ErrorCode::BadArguments));
    assert_eq!(h.create("/missing/./x"), Err(ErrorCode::NoNode));
    assert_eq!(h.create("/"), Err(ErrorCode::NodeExists));
    assert_eq!(h.create("noslash"), Err(ErrorCode::BadArguments));
    assert_eq!(h.create("/a//b"), Err(ErrorCode::NoNode));
    h.create("/a").unwrap();
    assert_eq!(h.create("/a/."), Err(ErrorCode::BadArguments));
    assert_eq!(h.delete("/a/"), Err(ErrorCode::NoNode));
    assert_eq!(h.delete("/"), Err(ErrorCode::BadArguments));
    assert_eq!(h.delete("/zookeeper"), Err(ErrorCode::BadArguments));
    assert_eq!(h.delete("/zookeeper/config"), Err(ErrorCode::BadArguments));
    assert_eq!(h.delete("/zookeeper/quota"), Err(ErrorCode::BadArguments));
    // Clients may create (and delete) under /zookeeper.
    assert_eq!(h.create("/zookeeper/mine"), created("/zookeeper/mine"));
    assert_eq!(h.delete("/zookeeper/mine"), Ok(Response::Empty));
    assert_eq!(h.create("/a"), Err(ErrorCode::NodeExists));
    assert_eq!(h.set("/a/", b"x", -1), Err(ErrorCode::BadArguments));
}

// Goal: delete/setData version checks, NotEmpty, and version wrapping through i32.
#[test]
fn versions_and_not_empty() {
    let mut h = Harness::new();
    h.mk("/v");
    h.mk("/v/c");
    assert_eq!(h.delete("/v"), Err(ErrorCode::NotEmpty));
    assert_eq!(h.set("/v", b"1", 5), Err(ErrorCode::BadVersion));
    assert!(h.set("/v", b"1", 0).is_ok());
    assert!(h.set("/v", b"2", -1).is_ok());
    assert_eq!(h.stat("/v").version, 2);
    let wrong = h.write(Request::Delete(DeleteRequest {
        path: "/v/c".into(),
        version: 3,
    }));
    assert_eq!(wrong.reply, Err(ErrorCode::BadVersion));
    assert_eq!(h.set("/nope", b"1", -1), Err(ErrorCode::NoNode));
}

// Goal: standalone check answers a Stat, BadVersion on mismatch.
#[test]
fn standalone_check() {
    let mut h = Harness::new();
    h.mk("/c");
    let ok = h.write(Request::Check(CheckVersionRequest {
        path: "/c".into(),
        version: 0,
    }));
    assert_eq!(ok.reply, Ok(Response::Stat(h.stat("/c"))));
    let bad = h.write(Request::Check(CheckVersionRequest {
        path: "/c".into(),
        version: 1,
    }));
    assert_eq!(bad.reply, Err(ErrorCode::BadVersion));
    let missing = h.write(Request::Check(CheckVersionRequest {
        path: "/d".into(),
        version: 1,
    }));
    assert_eq!(missing.reply, Err(ErrorCode::NoNode));
}

// Goal: create2 answers the new node's full stat.
#[test]
fn create2_answers_the_stat() {
    let mut h = Harness::new();
    let request = Request::Create2(CreateRequest {
        path: "/c2".into(),
        data: Some(b"ab".to_vec()),
        acl: open_acl(),
        flags: 0,
    });
    let applied = h.write(request);
    let stat = h.stat("/c2");
    assert_eq!(
        applied.reply,
        Ok(Response::Create2 {
            path: "/c2".into(),
            stat
        })
    );
    assert_eq!(stat.data_length, 2);
}

// Goal: suffixes are the parent's create count, zero-padded to 10 digits (the signed wrap is
// a unit test in src/write.rs, where the counter can be set directly).
#[test]
fn sequence_suffixes_are_ten_digits() {
    let mut h = Harness::new();
    h.mk("/s");
    for expected in 0..12 {
        assert_eq!(
            h.create_with("/s/n", None, 2),
            created(&format!("/s/n{expected:010}"))
        );
    }
}

// Goal: ephemerals belong to their session, cannot have children, and go on close.
#[test]
fn ephemerals_and_sessions() {
    let mut h = Harness::new();
    h.mk("/e");
    assert_eq!(h.create_with("/e/mine", None, 1), created("/e/mine"));
    assert_eq!(h.stat("/e/mine").ephemeral_owner, S1);
    assert_eq!(
        h.create("/e/mine/child"),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    assert_eq!(h.sm.counts().ephemerals, 1);
    h.watch_data(S2, "/e/mine").unwrap();
    h.watch_children(S2, "/e").unwrap();
    let closed = h.entry(S1, EntryOp::CloseSession);
    assert_eq!(closed.reply, Ok(Response::Empty));
    assert_eq!(closed.closed_sessions, vec![S1]);
    assert_eq!(
        events(&closed.notifications),
        vec![
            (S2, EventType::NodeDeleted, "/e/mine".into()),
            (S2, EventType::NodeChildrenChanged, "/e".into())
        ]
    );
    assert_eq!(h.stat("/e").pzxid, closed.zxid);
    assert_eq!(h.sm.session_timeout_ms(S1), None);
    assert_eq!(h.sm.sessions(), vec![(S2, 30_000)]);
    // A closed session can no longer write.
    assert_eq!(h.create("/after"), Err(ErrorCode::SessionExpired));
    let unknown = h.write_as(0x999, &[], create_request("/x", None, 1));
    assert_eq!(unknown.reply, Err(ErrorCode::SessionExpired));
}

// Goal: a create whose path is taken answers NodeExists and changes nothing: not the node there
// (its data, Stat, owner and its place in its session's ephemerals), not the parent, not the
// tree's digest; also when the taken node is the creating session's own ephemeral, and inside a
// multi that rolls back. (Create finds a taken path by inserting and putting back what was there.)
#[test]
fn a_create_on_a_taken_path_changes_nothing() {
    let mut h = Harness::new();
    h.mk("/p");
    assert_eq!(h.create_with("/p/e", Some(b"mine"), 1), created("/p/e"));
    h.mk("/p/plain");
    let before = h.sm.digest();
    let (parent, node) = (h.stat("/p"), h.stat("/p/e"));
    let taken = [
        (S1, "/p/e", 1),
        (S1, "/p/e", 0),
        (S2, "/p/e", 1),
        (S2, "/p/plain", 1),
        (S2, "/p", 0),
    ];
    for (session, path, flags) in taken {
        let reply = h.write_as(session, &[], create_request(path, Some(b"other"), flags));
        assert_eq!(
            reply.reply,
            Err(ErrorCode::NodeExists),
            "{path} by {session:#x}"
        );
    }
    let multi = h.write(Request::Multi(vec![
        create_request("/p/new", None, 0),
        create_request("/p/e", None, 1),
    ]));
    assert!(
        matches!(multi.reply, Ok(Response::Multi(ref results)) if results.len() == 2),
        "{:?}",
        multi.reply
    );
    assert_eq!(h.sm.digest(), before);
    assert_eq!(h.stat("/p"), parent);
    assert_eq!(h.stat("/p/e"), node);
    assert_eq!(h.get("/p/e").as_deref(), Some(&b"mine"[..]));
    assert_eq!(h.children("/p"), vec!["e".to_string(), "plain".to_string()]);
    assert_eq!(h.sm.counts().ephemerals, 1);
    // The ephemeral is still indexed under its session: it goes when the session closes.
    h.entry(S1, EntryOp::CloseSession);
    assert_eq!(h.children("/p"), vec!["plain".to_string()]);
}

// Goal: getEphemerals is per session with a plain string prefix.
#[test]
fn get_ephemerals_prefix() {
    let mut h = Harness::new();
    h.mk("/a");
    h.mk("/ab");
    h.create_with("/a/x", None, 1).unwrap();
    h.create_with("/ab/x", None, 1).unwrap();
    let list = |h: &mut Harness, session, prefix: &str| match h
        .read_as(
            session,
            &[],
            Request::GetEphemerals(PathRequest {
                path: prefix.into(),
            }),
        )
        .0
    {
        Ok(Response::GetEphemerals { ephemerals }) => ephemerals,
        other => panic!("{other:?}"),
    };
    assert_eq!(list(&mut h, S1, "/a"), vec!["/a/x", "/ab/x"]);
    assert_eq!(list(&mut h, S1, "/ab"), vec!["/ab/x"]);
    assert_eq!(list(&mut h, S1, "/"), vec!["/a/x", "/ab/x"]);
    assert_eq!(list(&mut h, S2, "/"), Vec::<String>::new());
}

// Goal: getAllChildrenNumber counts descendants; "/" counts /zookeeper's too.
#[test]
fn all_children_number() {
    let mut h = Harness::new();
    h.mk("/n");
    h.mk("/n/a");
    h.mk("/n/a/b");
    let total = |h: &mut Harness, path: &str| {
        h.read(Request::GetAllChildrenNumber(PathRequest {
            path: path.into(),
        }))
    };
    assert_eq!(
        total(&mut h, "/n"),
        Ok(Response::AllChildrenNumber { total: 2 })
    );
    assert_eq!(
        total(&mut h, "/"),
        Ok(Response::AllChildrenNumber { total: 6 })
    );
    assert_eq!(total(&mut h, "/none"), Err(ErrorCode::NoNode));
}
