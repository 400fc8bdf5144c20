//! Multi result rules (ZK-COMPAT §1a Multi, §3), ACL rules per op (§1b ACLs, §3), and
//! container/TTL nodes.

mod common;

use common::*;
use rzk_proto::codes::perms;
use rzk_proto::*;
use rzk_state_machine::*;

fn id(scheme: &str, id: &str) -> Id {
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

fn acl(perms: i32, scheme: &str, name: &str) -> Vec<Acl> {
    vec![Acl {
        perms,
        id: id(scheme, name),
    }]
}

fn create_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl,
        flags: 0,
    })
}

// Goal: a successful multi answers one result per op, shares one zxid, fires after success;
// create and create2 inside multi answer the path-only result (ZK-COMPAT §3).
#[test]
fn multi_success() {
    let mut h = Harness::new();
    h.mk("/m");
    h.watch_children(S2, "/m").unwrap();
    let ops = vec![
        create_request("/m/a", None, 0),
        Request::Create2(CreateRequest {
            path: "/m/b".into(),
            data: None,
            acl: open_acl(),
            flags: 0,
        }),
        Request::SetData(SetDataRequest {
            path: "/m/a".into(),
            data: Some(b"v".to_vec()),
            version: 0,
        }),
        Request::Check(CheckVersionRequest {
            path: "/m/a".into(),
            version: 1,
        }),
        Request::Delete(DeleteRequest {
            path: "/m/b".into(),
            version: -1,
        }),
    ];
    let applied = h.write(Request::Multi(ops));
    let stat = h.stat("/m/a");
    assert_eq!(
        applied.reply,
        Ok(Response::Multi(vec![
            MultiResult::Create {
                path: "/m/a".into()
            },
            MultiResult::Create {
                path: "/m/b".into()
            },
            MultiResult::SetData { stat },
            MultiResult::Check,
            MultiResult::Delete,
        ]))
    );
    assert_eq!((stat.czxid, stat.mzxid), (applied.zxid, applied.zxid));
    assert_eq!(
        events(&applied.notifications),
        vec![(S2, EventType::NodeChildrenChanged, "/m".to_string())]
    );
}

// Goal: a failing multi changes nothing and answers 0 / its code / -2 per op, with the outer
// reply still Ok (the reply header err is 0).
#[test]
fn multi_failure_rolls_back() {
    let mut h = Harness::new();
    h.mk("/m");
    h.mk("/m/keep");
    h.watch_children(S2, "/m").unwrap();
    let before = h.sm.snapshot();
    let ops = vec![
        create_request("/m/s-", None, 2),
        Request::SetData(SetDataRequest {
            path: "/m/keep".into(),
            data: None,
            version: -1,
        }),
        Request::Delete(DeleteRequest {
            path: "/m/keep".into(),
            version: -1,
        }),
        Request::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 7,
        }),
        create_request("/m/never", None, 0),
    ];
    let applied = h.write(Request::Multi(ops));
    let errors = [
        0,
        0,
        0,
        ErrorCode::BadVersion.code(),
        ErrorCode::RuntimeInconsistency.code(),
    ];
    let expected = errors
        .iter()
        .map(|err| MultiResult::Error { err: *err })
        .collect();
    assert_eq!(applied.reply, Ok(Response::Multi(expected)));
    assert!(applied.notifications.is_empty());
    assert_eq!(h.get("/m/keep"), Some(b"x".to_vec()));
    // The tree is byte-for-byte what it was, apart from the zxid the failed multi consumed.
    let after = StateMachine::restore(Options::default(), &h.sm.snapshot()).unwrap();
    let restored_before = StateMachine::restore(Options::default(), &before).unwrap();
    assert_eq!(after.last_zxid(), restored_before.last_zxid() + 1);
    // One create (/m/keep) and one child: reported cversion 2 × 1 − 1.
    assert_eq!(h.stat("/m").cversion, 1);
    // The sequence counter was rolled back too.
    assert_eq!(h.create_with("/m/s-", None, 2), created("/m/s-0000000001"));
}

// Goal: an op that fails its own checks at the first position: the rest are -2.
#[test]
fn multi_first_op_fails() {
    let mut h = Harness::new();
    let ops = vec![
        create_request("/x/y", None, 0),
        create_request("/z", None, 0),
    ];
    let applied = h.write(Request::Multi(ops));
    assert_eq!(
        applied.reply,
        Ok(Response::Multi(vec![
            MultiResult::Error {
                err: ErrorCode::NoNode.code()
            },
            MultiResult::Error {
                err: ErrorCode::RuntimeInconsistency.code()
            },
        ]))
    );
    assert_eq!(
        h.read(Request::Exists(PathWatchRequest {
            path: "/z".into(),
            watch: false
        })),
        Err(ErrorCode::NoNode)
    );
}

// Goal: later ops in a multi see earlier ones (create then create a child).
#[test]
fn multi_ops_see_earlier_ops() {
    let mut h = Harness::new();
    let ops = vec![
        create_request("/a", None, 0),
        create_request("/a/b", None, 1),
    ];
    let applied = h.write(Request::Multi(ops));
    assert!(matches!(applied.reply, Ok(Response::Multi(ref results)) if results.len() == 2));
    assert_eq!(h.stat("/a/b").ephemeral_owner, S1);
}

// Goal: per-op permission rules of ZK-COMPAT §1b.
#[test]
fn acl_per_op() {
    let mut h = Harness::new();
    let user = id("digest", &digest_id("alice:secret"));
    let other = id("digest", &digest_id("bob:pw"));
    let alice = [user.clone()];
    // Parent allows CREATE only: children can be created but not deleted by anyone.
    assert!(h
        .write(create_acl("/c", acl(perms::CREATE, "world", "anyone")))
        .reply
        .is_ok());
    assert!(h.write(create_acl("/c/k", open_acl())).reply.is_ok());
    assert_eq!(h.delete("/c/k"), Err(ErrorCode::NoAuth));
    // Parent allows DELETE only: creating fails, deleting works.
    assert!(h
        .write(create_acl(
            "/d",
            acl(perms::DELETE | perms::CREATE, "world", "anyone")
        ))
        .reply
        .is_ok());
    assert!(h.write(create_acl("/d/k", open_acl())).reply.is_ok());
    assert!(h
        .write(create_acl("/d2", acl(perms::DELETE, "world", "anyone")))
        .reply
        .is_ok());
    assert_eq!(
        h.write(create_acl("/d2/k", open_acl())).reply,
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(h.delete("/d/k"), Ok(Response::Empty));

    // A node only alice may touch.
    let private = vec![Acl {
        perms: perms::ALL,
        id: user.clone(),
    }];
    assert!(h.write(create_acl("/p", private)).reply.is_ok());
    let set = |data: &[u8]| {
        Request::SetData(SetDataRequest {
            path: "/p".into(),
            data: Some(data.to_vec()),
            version: -1,
        })
    };
    assert_eq!(h.write(set(b"1")).reply, Err(ErrorCode::NoAuth));
    assert!(h.write_as(S1, &alice, set(b"1")).reply.is_ok());
    assert!(h
        .write_as(S1, std::slice::from_ref(&other), set(b"1"))
        .reply
        .is_err());
    let get = Request::GetData(PathWatchRequest {
        path: "/p".into(),
        watch: true,
    });
    assert_eq!(h.read_as(S2, &[], get.clone()).0, Err(ErrorCode::NoAuth));
    assert!(h.read_as(S2, &alice, get).0.is_ok());
    let ls = Request::GetChildren2(PathWatchRequest {
        path: "/p".into(),
        watch: false,
    });
    assert_eq!(h.read(ls), Err(ErrorCode::NoAuth));
    let count = Request::GetAllChildrenNumber(PathRequest { path: "/p".into() });
    assert_eq!(h.read(count), Err(ErrorCode::NoAuth));
    // exists needs READ only when the node exists.
    let exists = |path: &str| {
        Request::Exists(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    };
    assert_eq!(h.read(exists("/p")), Err(ErrorCode::NoAuth));
    assert_eq!(h.read(exists("/p/none")), Err(ErrorCode::NoNode));
    // setACL needs ADMIN.
    let set_acl = Request::SetAcl(SetAclRequest {
        path: "/p".into(),
        acl: open_acl(),
        version: -1,
    });
    assert_eq!(h.write(set_acl.clone()).reply, Err(ErrorCode::NoAuth));
    // super bypasses everything.
    assert!(h.write_as(S1, &[id("super", "")], set_acl).reply.is_ok());
    assert_eq!(h.get("/p"), Some(b"1".to_vec()));
}

// Goal: getACL needs READ or ADMIN; without ADMIN digest ids show as user:x.
#[test]
fn get_acl_masks_digest_without_admin() {
    let mut h = Harness::new();
    let digest = digest_id("alice:secret");
    let list = vec![
        Acl {
            perms: perms::READ,
            id: id("world", "anyone"),
        },
        Acl {
            perms: perms::ALL,
            id: id("digest", &digest),
        },
    ];
    assert!(h.write(create_acl("/g", list.clone())).reply.is_ok());
    let get_acl = Request::GetAcl(PathRequest { path: "/g".into() });
    let stat = h.stat("/g");
    let masked = vec![
        list[0].clone(),
        Acl {
            perms: perms::ALL,
            id: id("digest", "alice:x"),
        },
    ];
    assert_eq!(
        h.read(get_acl.clone()),
        Ok(Response::GetAcl { acl: masked, stat })
    );
    let admin = [id("digest", &digest)];
    assert_eq!(
        h.read_as(S1, &admin, get_acl.clone()).0,
        Ok(Response::GetAcl { acl: list, stat })
    );
    assert!(h
        .write(create_acl("/none", acl(perms::WRITE, "world", "anyone")))
        .reply
        .is_ok());
    assert_eq!(
        h.read(Request::GetAcl(PathRequest {
            path: "/none".into()
        })),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(
        h.read(Request::GetAcl(PathRequest {
            path: "/missing".into()
        })),
        Err(ErrorCode::NoNode)
    );
}

// Goal: ACL list rules on create/setACL: empty → InvalidACL, duplicates removed, `auth`
// expands to the caller's ids or fails without one.
#[test]
fn acl_list_rules() {
    let mut h = Harness::new();
    assert_eq!(
        h.write(create_acl("/e", vec![])).reply,
        Err(ErrorCode::InvalidAcl)
    );
    let doubled = [open_acl(), open_acl()].concat();
    assert!(h.write(create_acl("/dup", doubled)).reply.is_ok());
    let get_acl = |h: &mut Harness, path: &str| match h
        .read_as(
            S1,
            &[id("super", "")],
            Request::GetAcl(PathRequest { path: path.into() }),
        )
        .0
    {
        Ok(Response::GetAcl { acl, .. }) => acl,
        other => panic!("{other:?}"),
    };
    assert_eq!(get_acl(&mut h, "/dup"), open_acl());
    assert_eq!(
        h.write(create_acl("/auth", acl(perms::ALL, "auth", "")))
            .reply,
        Err(ErrorCode::InvalidAcl)
    );
    let user = id("digest", &digest_id("alice:secret"));
    let applied = h.write_as(
        S1,
        std::slice::from_ref(&user),
        create_acl("/auth", acl(perms::ALL, "auth", "")),
    );
    assert!(applied.reply.is_ok());
    assert_eq!(
        get_acl(&mut h, "/auth"),
        vec![Acl {
            perms: perms::ALL,
            id: user
        }]
    );
    let bad = Request::SetAcl(SetAclRequest {
        path: "/dup".into(),
        acl: vec![],
        version: -1,
    });
    assert_eq!(h.write(bad).reply, Err(ErrorCode::InvalidAcl));
    let stale = Request::SetAcl(SetAclRequest {
        path: "/dup".into(),
        acl: open_acl(),
        version: 3,
    });
    assert_eq!(h.write(stale).reply, Err(ErrorCode::BadVersion));
}

// Goal: skipACL and the `ip` scheme.
#[test]
fn skip_acl_and_ip() {
    let mut h = Harness::with(Options {
        skip_acl: true,
        ..Options::default()
    });
    assert!(h
        .write(create_acl("/locked", acl(perms::READ, "world", "anyone")))
        .reply
        .is_ok());
    assert!(h.set("/locked", b"w", -1).is_ok());
    let mut h = Harness::new();
    assert!(h
        .write(create_acl("/lan", acl(perms::ALL, "ip", "10.0.0.0/8")))
        .reply
        .is_ok());
    let get = Request::GetData(PathWatchRequest {
        path: "/lan".into(),
        watch: false,
    });
    assert!(h
        .read_as(S1, &[id("ip", "10.1.2.3")], get.clone())
        .0
        .is_ok());
    assert_eq!(
        h.read_as(S1, &[id("ip", "192.168.0.1")], get).0,
        Err(ErrorCode::NoAuth)
    );
}

// Goal: containers show owner 0, are due once emptied after having had a child, and
// deleteContainer removes only empty containers/TTL nodes.
#[test]
fn containers() {
    let mut h = Harness::new();
    let container = Request::CreateContainer(CreateRequest {
        path: "/box".into(),
        data: None,
        acl: open_acl(),
        flags: 4,
    });
    let applied = h.write(container);
    let stat = h.stat("/box");
    assert_eq!(
        applied.reply,
        Ok(Response::Create2 {
            path: "/box".into(),
            stat
        })
    );
    assert_eq!(stat.ephemeral_owner, 0);
    assert!(
        h.sm.expired_containers_and_ttls(i64::MAX, 10).is_empty(),
        "never used: not due"
    );
    h.mk("/box/item");
    assert!(
        h.sm.expired_containers_and_ttls(i64::MAX, 10).is_empty(),
        "has a child: not due"
    );
    h.rm("/box/item");
    assert_eq!(
        h.sm.expired_containers_and_ttls(0, 10),
        vec!["/box".to_string()]
    );
    assert_eq!(h.sm.expired_containers_and_ttls(0, 0), Vec::<String>::new());
    h.mk("/plain");
    let delete_container = |path: &str| Request::DeleteContainer(PathRequest { path: path.into() });
    assert_eq!(
        h.write_as(0, &[], delete_container("/plain")).reply,
        Err(ErrorCode::BadVersion)
    );
    assert_eq!(
        h.write_as(0, &[], delete_container("/nothing")).reply,
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        h.write_as(0, &[], delete_container("/")).reply,
        Err(ErrorCode::BadArguments)
    );
    h.watch_data(S2, "/box").unwrap();
    let gone = h.write_as(0, &[], delete_container("/box"));
    assert_eq!(gone.reply, Ok(Response::Empty));
    assert_eq!(
        events(&gone.notifications),
        vec![(S2, EventType::NodeDeleted, "/box".to_string())]
    );
    assert!(h.sm.expired_containers_and_ttls(i64::MAX, 10).is_empty());
}

// Goal: TTL nodes need extended types (else Unimplemented), check the ttl range, show owner 0
// and are due when childless and now − mtime > ttl.
#[test]
fn ttl_nodes() {
    let ttl_request = |path: &str, flags: i32, ttl: i64| {
        Request::CreateTtl(CreateTtlRequest {
            path: path.into(),
            data: None,
            acl: open_acl(),
            flags,
            ttl,
        })
    };
    let mut h = Harness::new();
    assert_eq!(
        h.write(ttl_request("/t", 5, 1000)).reply,
        Err(ErrorCode::Unimplemented)
    );
    let mut h = Harness::with(Options {
        extended_types_enabled: true,
        ..Options::default()
    });
    assert_eq!(
        h.write(ttl_request("/t", 5, 0)).reply,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(ttl_request("/t", 5, 1 << 40)).reply,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(ttl_request("/t", 0, 1000)).reply,
        Err(ErrorCode::BadArguments)
    );
    let applied = h.write(ttl_request("/t", 5, 1000));
    let stat = h.stat("/t");
    assert_eq!(
        applied.reply,
        Ok(Response::Create2 {
            path: "/t".into(),
            stat
        })
    );
    assert_eq!(stat.ephemeral_owner, 0);
    let sequential = h.write(ttl_request("/t/s-", 6, 1000));
    assert!(
        matches!(sequential.reply, Ok(Response::Create2 { ref path, .. }) if path == "/t/s-0000000000")
    );
    assert!(h
        .sm
        .expired_containers_and_ttls(stat.mtime + 5000, 10)
        .iter()
        .all(|p| p != "/t"));
    h.rm("/t/s-0000000000");
    assert!(
        h.sm.expired_containers_and_ttls(stat.mtime + 1000, 10)
            .is_empty(),
        "ttl not exceeded yet"
    );
    assert_eq!(
        h.sm.expired_containers_and_ttls(stat.mtime + 1001, 10),
        vec!["/t".to_string()]
    );
    let gone = h.write_as(
        0,
        &[],
        Request::DeleteContainer(PathRequest { path: "/t".into() }),
    );
    assert_eq!(gone.reply, Ok(Response::Empty));
}
