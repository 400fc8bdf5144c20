//! Session owners: a session's writes come from the connection it was created or last attached
//! on (an AttachSession entry, which takes no zxid); a write of another connection is refused
//! with SessionMoved at apply, on every member alike, and snapshots keep the owners.

mod common;

use common::*;
use rzk_proto::*;
use rzk_state_machine::*;

/// Connections on two members ([`Entry::origin_of`]).
fn a1() -> u64 {
    Entry::origin_of(1, 7)
}
fn b2() -> u64 {
    Entry::origin_of(2, 7)
}

fn create_from(h: &mut Harness, origin: u64, path: &str) -> Applied {
    let op = EntryOp::Write {
        auth: Vec::new(),
        request: create_request(path, Some(b"x"), 0),
    };
    h.entry_from(S3, origin, op)
}

const S3: SessionId = 0x300;

fn exists(h: &mut Harness, path: &str) -> bool {
    let request = Request::Exists(PathWatchRequest {
        path: path.into(),
        watch: false,
    });
    match h.read(request) {
        Ok(_) => true,
        Err(ErrorCode::NoNode) => false,
        other => panic!("exists {path}: {other:?}"),
    }
}

/// A harness with session S3 created by connection `a1()`.
fn owned() -> Harness {
    let mut h = Harness::new();
    let created = h.entry_from(S3, a1(), EntryOp::CreateSession { timeout_ms: 30_000 });
    assert!(created.reply.is_ok());
    assert_eq!(h.sm.session_owner(S3), Some(a1()));
    h
}

// Goal: the creating connection writes; another connection's write is refused with
// SessionMoved, takes a zxid (ZooKeeper logs it as an error transaction) and changes nothing;
// an entry without an origin (a log from before origins) is not checked.
#[test]
fn only_the_owning_connection_writes() {
    let mut h = owned();
    assert!(create_from(&mut h, a1(), "/mine").reply.is_ok());
    let before = h.sm.digest();
    let zxid = h.sm.last_zxid();
    let refused = create_from(&mut h, b2(), "/theirs");
    assert_eq!(refused.reply, Err(ErrorCode::SessionMoved));
    assert_eq!(refused.zxid, zxid + 1);
    assert_eq!(h.sm.last_zxid(), zxid + 1);
    assert!(refused.notifications.is_empty());
    assert!(!exists(&mut h, "/theirs"));
    assert!(exists(&mut h, "/mine"));
    assert_eq!(h.sm.digest(), before);
    assert!(create_from(&mut h, 0, "/legacy").reply.is_ok());
    // A multi of the other connection is refused whole.
    let multi = Request::Multi(vec![
        create_request("/m1", None, 0),
        create_request("/m2", None, 0),
    ]);
    let op = EntryOp::Write {
        auth: Vec::new(),
        request: multi,
    };
    assert_eq!(
        h.entry_from(S3, b2(), op).reply,
        Err(ErrorCode::SessionMoved)
    );
    assert!(!exists(&mut h, "/m1"));
}

// Goal: AttachSession moves the session: it takes no zxid, the new connection writes, the old
// one is refused from then on, and the old one's closeSession still closes (ZooKeeper does not
// check the owner of a closeSession: expiry sends it from wherever).
#[test]
fn attach_session_moves_the_writes_to_the_new_connection() {
    let mut h = owned();
    let zxid = h.sm.last_zxid();
    let attached = h.entry_from(S3, b2(), EntryOp::AttachSession);
    assert_eq!(attached.reply, Ok(Response::Empty));
    assert_eq!(attached.zxid, zxid);
    assert_eq!(h.sm.last_zxid(), zxid);
    assert_eq!(h.sm.session_owner(S3), Some(b2()));
    assert_eq!(
        create_from(&mut h, a1(), "/old").reply,
        Err(ErrorCode::SessionMoved)
    );
    let ephemeral = EntryOp::Write {
        auth: Vec::new(),
        request: create_request("/e", None, 1),
    };
    assert!(h.entry_from(S3, b2(), ephemeral).reply.is_ok());
    assert!(exists(&mut h, "/e"));
    // Back to the first connection: it writes again.
    assert!(h.entry_from(S3, a1(), EntryOp::AttachSession).reply.is_ok());
    assert!(create_from(&mut h, a1(), "/again").reply.is_ok());
    let closed = h.entry_from(S3, b2(), EntryOp::CloseSession);
    assert_eq!(closed.closed_sessions, vec![S3]);
    assert_eq!(h.sm.session_owner(S3), None);
    assert!(!exists(&mut h, "/e"));
}

// Goal: attaching a session that is not open answers SessionExpired and changes nothing.
#[test]
fn attach_to_a_closed_session_is_session_expired() {
    let mut h = Harness::new();
    let zxid = h.sm.last_zxid();
    let before = h.sm.digest();
    let attached = h.entry_from(0x999, a1(), EntryOp::AttachSession);
    assert_eq!(attached.reply, Err(ErrorCode::SessionExpired));
    assert_eq!(h.sm.last_zxid(), zxid);
    assert_eq!(h.sm.digest(), before);
    assert_eq!(h.sm.session_owner(0x999), None);
}

// Goal: a snapshot keeps each session's owner, so a member restored from it refuses the same
// writes as one that applied the log; a format-4 snapshot (before owners) restores its sessions
// with no owner, whose writes every connection may make.
#[test]
fn snapshots_keep_the_owners() {
    let mut h = owned();
    h.entry_from(S3, b2(), EntryOp::AttachSession);
    let bytes = h.sm.snapshot();
    let mut restored = Harness {
        sm: StateMachine::restore(Options::default(), &bytes).unwrap(),
        time_ms: h.time_ms,
    };
    restored.sm.check_invariants();
    assert_eq!(restored.sm.session_owner(S3), Some(b2()));
    assert_eq!(restored.sm.snapshot(), bytes);
    assert_eq!(
        create_from(&mut restored, a1(), "/x").reply,
        Err(ErrorCode::SessionMoved)
    );
    assert!(create_from(&mut restored, b2(), "/y").reply.is_ok());
    let format_4 = h.sm.snapshot_copy().encode_format_4();
    let mut old = Harness {
        sm: StateMachine::restore(Options::default(), &format_4).unwrap(),
        time_ms: h.time_ms,
    };
    assert_eq!(old.sm.digest(), h.sm.digest());
    assert_eq!(old.sm.session_owner(S3), Some(0));
    assert!(create_from(&mut old, a1(), "/x").reply.is_ok());
}
