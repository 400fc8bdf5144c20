//! Replicated settings (skipACL, extendedTypesEnabled): a Settings entry sets them for every
//! member and every replay, takes no zxid, keeps extended types on while TTL nodes exist, and
//! snapshots (formats 4 and 5) carry them.

mod common;

use common::*;
use rzk_proto::*;
use rzk_state_machine::*;

fn settings(skip_acl: bool, extended_types_enabled: bool) -> EntryOp {
    EntryOp::Settings {
        skip_acl,
        extended_types_enabled,
    }
}

fn configured(skip_acl: bool, extended_types_enabled: bool) -> Options {
    Options {
        skip_acl,
        extended_types_enabled,
        ..Options::default()
    }
}

fn alice() -> Id {
    Id {
        scheme: "digest".into(),
        id: digest_id("alice:secret"),
    }
}

fn create_as(h: &mut Harness, auth: &[Id], path: &str, acl: Vec<Acl>) -> Reply {
    let request = Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"x".to_vec()),
        acl,
        flags: 0,
    });
    h.write_as(S1, auth, request).reply
}

fn delete_as(h: &mut Harness, session: SessionId, path: &str) -> Reply {
    let request = Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    });
    h.write_as(session, &[], request).reply
}

fn create_ttl(h: &mut Harness, path: &str) -> Reply {
    let request = Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: None,
        acl: open_acl(),
        flags: 5,
        ttl: 100,
    });
    h.write(request).reply
}

/// The ACL-dependent history of the replay test: settings with skipACL off, "/locked" with a
/// digest ACL (only alice), "/locked/n" created by alice, then S2 (no auth) deletes "/locked/n".
fn locked_history(h: &mut Harness) -> Vec<Applied> {
    let locked = vec![Acl {
        perms: codes::perms::ALL,
        id: alice(),
    }];
    let mut applied = vec![h.entry(S1, settings(false, false))];
    assert!(!h.sm.options().skip_acl);
    let request = Request::Create(CreateRequest {
        path: "/locked".into(),
        data: None,
        acl: locked,
        flags: 0,
    });
    applied.push(h.write_as(S1, &[], request));
    assert_eq!(applied.last().unwrap().reply, created("/locked"));
    assert_eq!(
        create_as(h, &[alice()], "/locked/n", open_acl()),
        created("/locked/n")
    );
    applied.push(h.write_as(
        S2,
        &[],
        Request::Delete(DeleteRequest {
            path: "/locked/n".into(),
            version: -1,
        }),
    ));
    applied
}

fn children_as_alice(h: &mut Harness) -> Vec<String> {
    let request = Request::GetChildren(PathWatchRequest {
        path: "/locked".into(),
        watch: false,
    });
    match h.read_as(S1, &[alice()], request).0 {
        Ok(Response::GetChildren { children }) => children,
        other => panic!("ls /locked: {other:?}"),
    }
}

// Goal: a log replayed under another skipACL (a restart with a changed zoo.cfg, or another
// member) gives the results the clients saw: the delete refused with NoAuth is refused again
// and the node stays; once a Settings entry turns skipACL on, the same delete succeeds on both.
#[test]
fn replay_under_another_skip_acl_gives_the_same_results() {
    let mut original = Harness::with(configured(false, false));
    let mut replay = Harness::with(configured(true, false));
    assert!(replay.sm.options().skip_acl);
    let seen = locked_history(&mut original);
    assert_eq!(seen.last().unwrap().reply, Err(ErrorCode::NoAuth));
    assert_eq!(locked_history(&mut replay), seen);
    assert_eq!(children_as_alice(&mut replay), vec!["n".to_string()]);
    assert_eq!(replay.sm.digest(), original.sm.digest());
    for h in [&mut original, &mut replay] {
        assert_eq!(
            h.entry(S1, settings(true, false)).reply,
            Ok(Response::Empty)
        );
        assert!(h.sm.options().skip_acl);
        assert_eq!(delete_as(h, S2, "/locked/n"), Ok(Response::Empty));
        assert!(children_as_alice(h).is_empty());
    }
    assert_eq!(replay.sm.digest(), original.sm.digest());
}

// Goal: a Settings entry takes no zxid (last_zxid unchanged, the Applied names the current
// one), answers OK, fires no watch and closes no session, whatever session it names; the next
// write takes last_zxid + 1.
#[test]
fn settings_take_no_zxid() {
    let mut h = Harness::new();
    h.mk("/a");
    assert!(h.watch_data(S2, "/a").is_ok());
    assert!(h.watch_children(S2, "/").is_ok());
    let last = h.sm.last_zxid();
    for session in [0, S1, 0x999] {
        let applied = h.entry(session, settings(true, true));
        assert_eq!(
            applied,
            Applied {
                zxid: last,
                reply: Ok(Response::Empty),
                notifications: Vec::new(),
                closed_sessions: Vec::new(),
            }
        );
        assert_eq!(h.sm.last_zxid(), last);
    }
    assert!(h.sm.settings_recorded());
    assert_eq!(h.write(create_request("/b", None, 0)).zxid, last + 1);
    assert_eq!(h.stat("/b").czxid, last + 1);
    assert_eq!(h.sm.sessions().len(), 2);
}

// Goal: settings_entry proposes until the state has the configured values, then nothing.
#[test]
fn settings_entry_follows_the_configuration() {
    let mut h = Harness::with(configured(true, true));
    // Not recorded: proposed even though the values already agree.
    let same = configured(true, true);
    assert_eq!(h.sm.settings_entry(&same), Some(settings(true, true)));
    h.entry(0, h.sm.settings_entry(&same).unwrap());
    assert_eq!(h.sm.settings_entry(&same), None);
    // The super digest is not a replicated setting.
    let with_super = Options {
        super_digest: Some("super:x".into()),
        ..same.clone()
    };
    assert_eq!(h.sm.settings_entry(&with_super), None);
    let changed = configured(false, true);
    assert_eq!(h.sm.settings_entry(&changed), Some(settings(false, true)));
    h.entry(0, settings(false, true));
    assert_eq!(h.sm.options(), &changed);
    assert_eq!(h.sm.settings_entry(&changed), None);
}

// Goal: extendedTypesEnabled stays on while a TTL node exists (a Settings entry turning it off
// leaves it on, and settings_entry does not propose it again), and goes off once the TTL node
// is gone; createTTL then answers Unimplemented.
#[test]
fn ttl_nodes_keep_extended_types_on() {
    let mut h = Harness::with(configured(false, true));
    create_ttl_and_container(&mut h);
    let off = configured(false, false);
    assert_eq!(h.sm.settings_kept_on_for_ttl_nodes(&off), Some(1));
    let last = h.sm.last_zxid();
    assert_eq!(h.entry(0, settings(false, false)).zxid, last);
    assert!(h.sm.settings_recorded());
    assert!(h.sm.options().extended_types_enabled);
    assert_eq!(h.sm.settings_entry(&off), None);
    assert_eq!(h.sm.settings_kept_on_for_ttl_nodes(&off), Some(1));
    assert_eq!(
        h.sm.settings_kept_on_for_ttl_nodes(&configured(false, true)),
        None
    );
    // Still on: TTL nodes can be made, and the cleaner still sees them.
    assert!(create_ttl(&mut h, "/ttl2").is_ok());
    assert_eq!(h.sm.settings_kept_on_for_ttl_nodes(&off), Some(2));
    assert_eq!(
        h.sm.expired_containers_and_ttls(i64::MAX, 10),
        vec!["/ttl".to_string(), "/ttl2".to_string()]
    );
    h.rm("/ttl");
    h.rm("/ttl2");
    assert_eq!(h.sm.settings_kept_on_for_ttl_nodes(&off), None);
    let entry = h.sm.settings_entry(&off);
    assert_eq!(entry, Some(settings(false, false)));
    h.entry(0, entry.unwrap());
    assert!(!h.sm.options().extended_types_enabled);
    assert_eq!(h.sm.settings_entry(&off), None);
    assert_eq!(create_ttl(&mut h, "/ttl3"), Err(ErrorCode::Unimplemented));
    // The container is not a TTL node: it stays a container.
    assert_eq!(
        h.sm.expired_containers_and_ttls(i64::MAX, 10),
        Vec::<String>::new()
    );
    assert_eq!(h.get("/box"), Some(vec![1, 2]));
}

// Goal: extendedTypesEnabled stays off while an open session's id reads as a TTL owner (top
// byte 0xff, bits 40-55 zero): its ephemerals would turn into TTL nodes. On once it closes.
// A snapshot of such a state restores with the stored setting.
#[test]
fn ttl_looking_sessions_keep_extended_types_off() {
    const TTL_LOOKING: SessionId = 0xff00_0000_0000_0005_u64 as i64;
    let mut h = Harness::new();
    h.session(TTL_LOOKING);
    let request = create_request("/e", None, 1);
    assert!(h.write_as(TTL_LOOKING, &[], request).reply.is_ok());
    let on = configured(false, true);
    assert_eq!(h.sm.settings_kept_off_for_sessions(&on), Some(1));
    h.entry(0, settings(false, true));
    assert!(!h.sm.options().extended_types_enabled);
    assert_eq!(h.sm.settings_entry(&on), None);
    assert_eq!(h.stat("/e").ephemeral_owner, TTL_LOOKING);
    // A format-4 snapshot says extended types are off: the node is an ephemeral, not a TTL
    // node that would need the setting.
    let bytes = h.sm.snapshot();
    let restored = StateMachine::restore(configured(false, true), &bytes).unwrap();
    restored.check_invariants();
    assert_eq!(restored.counts().ephemerals, 1);
    assert_eq!(restored.snapshot(), bytes);
    h.entry(TTL_LOOKING, EntryOp::CloseSession);
    assert_eq!(h.sm.settings_kept_off_for_sessions(&on), None);
    assert_eq!(h.sm.settings_entry(&on), Some(settings(false, true)));
    h.entry(0, settings(false, true));
    assert!(h.sm.options().extended_types_enabled);
}

// Goal: Settings entries round-trip through the log encoding (kind 3, one flags byte), and a
// flags byte with unknown bits is refused as corrupt.
#[test]
fn settings_entries_encode_as_kind_3_with_a_flags_byte() {
    for (skip_acl, extended, flags) in [
        (false, false, 0u8),
        (true, false, 1),
        (false, true, 2),
        (true, true, 3),
    ] {
        let entry = Entry {
            session_id: 0,
            xid: 0,
            origin: 0,
            time_ms: 0,
            op: settings(skip_acl, extended),
        };
        let bytes = entry.encode();
        // Format 2: version, session id, xid, origin, time, then the kind and its flags.
        let mut expected = vec![2u8];
        expected.extend_from_slice(&[0; 8 + 4 + 8 + 8]);
        expected.extend_from_slice(&[3, flags]);
        assert_eq!(bytes, expected);
        assert_eq!(Entry::decode(&bytes), Ok(entry));
    }
    let bytes = Entry {
        session_id: 1,
        xid: 2,
        origin: 0,
        time_ms: 3,
        op: settings(true, true),
    }
    .encode();
    let last = bytes.len() - 1;
    for bad in (4..=255u8).step_by(4).chain([0x80, 0x83]) {
        let mut corrupt = bytes.clone();
        corrupt[last] = bad;
        match Entry::decode(&corrupt) {
            Err(EntryDecodeError::Corrupt(why)) => {
                assert!(why.contains("unknown settings flags"), "{why}")
            }
            other => panic!("flags {bad:#04x}: {other:?}"),
        }
    }
    assert!(Entry::decode(&bytes[..last]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Entry::decode(&longer).is_err());
}

/// The bytes with their settings byte (formats 4 and 5) replaced and the trailer resealed.
fn with_settings_byte(bytes: &[u8], settings: u8) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[16] = settings;
    let end = bytes.len() - 12;
    let crc = crc32c::crc32c(&bytes[8..end]);
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

// Goal: a snapshot (format 5) keeps the settings and that they were recorded; restored with other
// Options, the stored values win (TTL nodes restore with extendedTypesEnabled=false configured);
// unknown bits in the settings byte are refused.
#[test]
fn snapshots_keep_the_settings() {
    let mut h = Harness::new();
    h.entry(0, settings(true, true));
    create_ttl_and_container(&mut h);
    h.mk("/a");
    let bytes = h.sm.snapshot();
    assert_eq!(&bytes[..8], b"RZKS\0\0\0\x05");
    assert_eq!(bytes[16], 0b111);
    for options in [
        Options::default(),
        configured(false, true),
        configured(true, false),
    ] {
        let restored = StateMachine::restore(options.clone(), &bytes).unwrap();
        restored.check_invariants();
        assert_eq!(restored.options(), &configured(true, true));
        assert!(restored.settings_recorded());
        assert_eq!(restored.snapshot(), bytes);
        assert_eq!(restored.digest(), h.sm.digest());
        assert_eq!(restored.last_zxid(), h.sm.last_zxid());
        assert_eq!(
            restored.settings_entry(&configured(true, true)),
            None,
            "{options:?}"
        );
        assert_eq!(
            restored.settings_entry(&configured(false, true)),
            Some(settings(false, true))
        );
    }
    // The super digest still comes from the Options.
    let with_super = Options {
        super_digest: Some("super:x".into()),
        ..Options::default()
    };
    let restored = StateMachine::restore(with_super.clone(), &bytes).unwrap();
    assert_eq!(restored.options().super_digest, with_super.super_digest);
    // Not recorded: the values the state had (the Options it started with) are stored too.
    let h = Harness::with(configured(false, true));
    let bytes = h.sm.snapshot();
    assert_eq!(bytes[16], 0b010);
    let restored = StateMachine::restore(configured(true, false), &bytes).unwrap();
    assert_eq!(restored.options(), &configured(false, true));
    assert!(!restored.settings_recorded());
    assert_eq!(restored.snapshot(), bytes);
    for bad in [0b1000u8, 0x80, 0xff] {
        match StateMachine::restore(Options::default(), &with_settings_byte(&bytes, bad)) {
            Err(SnapshotError::Corrupt(why)) => {
                assert!(why.contains("unknown settings flags"), "{why}")
            }
            other => panic!("{bad:#04x}: {:?}", other.map(|_| ())),
        }
    }
}

// Goal: a format-3 snapshot (written before the settings were replicated) restores as before:
// the settings come from the Options and are not recorded, so the leader proposes them; a TTL
// node still needs extendedTypesEnabled configured.
#[test]
fn format_3_snapshots_take_the_settings_from_the_options() {
    let mut h = Harness::new();
    h.entry(0, settings(true, true));
    create_ttl_and_container(&mut h);
    let format_3 = h.sm.snapshot_copy().encode_format_3();
    assert_eq!(&format_3[..8], b"RZKS\0\0\0\x03");
    let restored = StateMachine::restore(configured(false, true), &format_3).unwrap();
    restored.check_invariants();
    assert_eq!(restored.options(), &configured(false, true));
    assert!(!restored.settings_recorded());
    assert_eq!(restored.digest(), h.sm.digest());
    assert_eq!(
        restored.settings_entry(&configured(false, true)),
        Some(settings(false, true))
    );
    // Written again, it is format 5 with what the Options gave.
    let again = restored.snapshot();
    assert_eq!(&again[..8], b"RZKS\0\0\0\x05");
    assert_eq!(again[16], 0b010);
    assert!(matches!(
        StateMachine::restore(configured(true, false), &format_3),
        Err(SnapshotError::NeedsSetting(_))
    ));
    // Without TTL nodes, extendedTypesEnabled off is taken as configured.
    let h = Harness::with(configured(true, true));
    let format_3 = h.sm.snapshot_copy().encode_format_3();
    let restored = StateMachine::restore(Options::default(), &format_3).unwrap();
    assert_eq!(restored.options(), &Options::default());
    assert!(!restored.settings_recorded());
}

// Goal: a snapshot copy is point-in-time for the settings too.
#[test]
fn a_snapshot_copy_keeps_the_settings_of_its_moment() {
    let mut h = Harness::new();
    let copy = h.sm.snapshot_copy();
    let before = h.sm.snapshot();
    h.entry(0, settings(true, false));
    assert_eq!(copy.encode(), before);
    assert_eq!(before[16], 0);
    assert_eq!(h.sm.snapshot()[16], 0b101);
}
