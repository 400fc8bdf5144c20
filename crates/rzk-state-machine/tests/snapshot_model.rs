//! Snapshot round trip and corruption, Entry decoding of hostile bytes, and a proptest model
//! test: random creates/deletes/setData against a plain map, invariants checked after each op.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use rzk_proto::*;
use rzk_state_machine::*;

/// Every node reachable from "/", with its data, stat and children, read through `read`.
/// (path, data, stat, children, ACL) of one node.
type NodeDump = (String, Option<Vec<u8>>, Stat, Vec<String>, Vec<Acl>);

fn dump(sm: &mut StateMachine) -> Vec<NodeDump> {
    let superuser = [Id {
        scheme: "super".into(),
        id: String::new(),
    }];
    let mut out = Vec::new();
    let mut pending = vec!["/".to_string()];
    let mut sink = Vec::new();
    while let Some(path) = pending.pop() {
        let data = sm.read(
            0,
            &superuser,
            &Request::GetData(PathWatchRequest {
                path: path.clone(),
                watch: false,
            }),
            &mut sink,
        );
        let children = sm.read(
            0,
            &superuser,
            &Request::GetChildren2(PathWatchRequest {
                path: path.clone(),
                watch: false,
            }),
            &mut sink,
        );
        let acl = sm.read(
            0,
            &superuser,
            &Request::GetAcl(PathRequest { path: path.clone() }),
            &mut sink,
        );
        let (
            Ok(Ok(Response::GetData { data, stat })),
            Ok(Ok(Response::GetChildren2 { children, .. })),
            Ok(Ok(Response::GetAcl { acl, .. })),
        ) = (data, children, acl)
        else {
            panic!("read of {path} failed");
        };
        for child in &children {
            pending.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        out.push((path, data, stat, children, acl));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn busy_harness() -> Harness {
    let mut h = Harness::with(Options {
        extended_types_enabled: true,
        ..Options::default()
    });
    h.mk("/a");
    h.mk("/a/b");
    h.create_with("/a/e", None, 1).unwrap();
    h.create_with("/a/s-", Some(b""), 2).unwrap();
    h.rm("/a/b");
    create_ttl_and_container(&mut h);
    let digest = Id {
        scheme: "digest".into(),
        id: digest_id("u:p"),
    };
    let private = vec![Acl {
        perms: 31,
        id: digest,
    }];
    let create = CreateRequest {
        path: "/private".into(),
        data: Some(b"s".to_vec()),
        acl: private,
        flags: 0,
    };
    assert!(h.write(Request::Create(create)).reply.is_ok());
    assert!(h.set("/a", b"data", -1).is_ok());
    h
}

// Goal: restore(snapshot()) gives the same counts, sessions, zxid and reads; the bytes are
// deterministic (a second snapshot of the restored state is identical).
#[test]
fn snapshot_round_trip() {
    let mut h = busy_harness();
    let options = h.sm.options().clone();
    let bytes = h.sm.snapshot();
    let mut restored = StateMachine::restore(options, &bytes).unwrap();
    restored.check_invariants();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.last_zxid(), h.sm.last_zxid());
    assert_eq!(restored.sessions(), h.sm.sessions());
    assert_eq!(restored.counts(), h.sm.counts());
    assert_eq!(dump(&mut restored), dump(&mut h.sm));
    assert_eq!(
        restored.expired_containers_and_ttls(i64::MAX, 10),
        h.sm.expired_containers_and_ttls(i64::MAX, 10)
    );
    // The restored state keeps applying: the ephemeral still belongs to its session.
    let entry = Entry {
        session_id: S1,
        xid: 9,
        origin: 0,
        time_ms: T0 + 100,
        op: EntryOp::CloseSession,
    };
    let closed = restored.apply(&entry);
    assert_eq!(closed.zxid, h.sm.last_zxid() + 1);
    assert_eq!(restored.counts().ephemerals, 0);
    restored.check_invariants();
}

// Goal: any truncation or flipped byte is refused with an error, never a panic.
#[test]
fn corrupt_snapshots_are_refused() {
    let h = busy_harness();
    for bytes in [h.sm.snapshot(), h.sm.snapshot_copy().encode_format_2()] {
        for length in 0..bytes.len() {
            assert!(
                StateMachine::restore(Options::default(), &bytes[..length]).is_err(),
                "truncated at {length}"
            );
        }
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x40;
            assert!(
                StateMachine::restore(Options::default(), &flipped).is_err(),
                "flipped byte {index}"
            );
        }
        let mut future = bytes.clone();
        future[4..8].copy_from_slice(&99u32.to_be_bytes());
        assert_eq!(
            StateMachine::restore(Options::default(), &future).err(),
            Some(SnapshotError::UnsupportedVersion(99))
        );
    }
}

/// A snapshot (format 3) with a valid header and trailer around an arbitrary body.
fn sealed_v3(body: &[u8]) -> Vec<u8> {
    let mut out = b"RZKS".to_vec();
    out.extend_from_slice(&3u32.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    out
}

/// A format-3 body with no sessions and the given encoded nodes.
fn compact_body(nodes: &[&[u8]]) -> Vec<u8> {
    let mut body = 7i64.to_be_bytes().to_vec();
    body.extend_from_slice(&0u32.to_be_bytes());
    body.extend_from_slice(&(nodes.len() as u64).to_be_bytes());
    for node in nodes {
        body.extend_from_slice(node);
    }
    body
}

// Goal: what only the compact layout can get wrong is refused with an error naming it: a path
// sharing more bytes than the previous path has, an ACL index past the next new one, unknown
// flags, a version outside i32, an overlong varint, data longer than the body.
#[test]
fn broken_compact_nodes_are_refused() {
    // The root: shares 0, "/", new ACL list 0 (empty), no flags, czxid 0, ctime 0.
    let root: &[u8] = &[0, 1, b'/', 0, 0, 0, 0, 0, 0, 0, 0];
    let restore = |nodes: &[&[u8]]| match StateMachine::restore(
        Options::default(),
        &sealed_v3(&compact_body(nodes)),
    ) {
        Err(SnapshotError::Corrupt(why)) => why,
        other => panic!("{nodes:?}: {:?}", other.map(|_| ())),
    };
    // Only the root: well formed, refused for what is missing.
    let why = restore(&[root]);
    assert!(why.contains("/zookeeper is missing"), "{why}");
    let cases: [(&[u8], &str); 6] = [
        (&[9, 1, b'a', 0, 0, 0, 0], "shares 9 bytes"),
        (&[1, 1, b'a', 5, 0, 0, 0], "ACL index 5 out of range"),
        (&[1, 1, b'a', 0, 0x40, 0, 0], "unknown flags 0x40"),
        (
            &[1, 1, b'a', 0, 32, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0],
            "version 4294967296",
        ),
        (
            &[
                1, 1, b'a', 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0,
            ],
            "invalid varint",
        ),
        (&[1, 1, b'a', 0, 1, 100, b'x'], "truncated"),
    ];
    for (node, expected) in cases {
        let why = restore(&[root, node]);
        assert!(why.contains(expected), "{node:?}: {why}");
    }
}

/// A snapshot (format 2) with a valid header and checksum around an arbitrary body.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = b"RZKS".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    out
}

/// The body of format-2 snapshot bytes: after the 16-byte header, before the 4-byte checksum.
fn body_of(bytes: &[u8]) -> &[u8] {
    &bytes[16..bytes.len() - 4]
}

proptest! {
    // Goal: bodies that pass the checksum but are garbage still give an error, not a panic.
    #[test]
    fn sealed_garbage_is_refused(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = StateMachine::restore(Options::default(), &sealed(&body));
        let _ = StateMachine::restore(Options::default(), &sealed_v3(&body));
    }

    // Goal: Entry::decode never panics on arbitrary bytes.
    #[test]
    fn entry_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Entry::decode(&bytes);
    }
}

// Goal: a body whose structure breaks the tree rules (a node before its parent) is refused.
#[test]
fn structurally_broken_snapshot_is_refused() {
    let h = Harness::new();
    let bytes = h.sm.snapshot_copy().encode_format_2();
    // Drop the root: the remaining nodes have no parent.
    let body = body_of(&bytes);
    let garbage: Vec<u8> = body.iter().rev().copied().collect();
    assert!(StateMachine::restore(Options::default(), &sealed(&garbage)).is_err());
    let bytes = h.sm.snapshot();
    let garbage: Vec<u8> = bytes[8..bytes.len() - 12].iter().rev().copied().collect();
    assert!(StateMachine::restore(Options::default(), &sealed_v3(&garbage)).is_err());
}

// Goal: a parent is found however its children are spread out in path order: "/a"'s children
// come after "/a-b", "/a.c" and their own subtrees ('-' and '.' sort before '/'), so the reader
// cannot assume a child follows its parent's last child. Child counts, cversions and digests
// survive the round trip.
#[test]
fn children_after_sibling_subtrees_restore() {
    let mut h = Harness::new();
    for path in [
        "/a", "/a-b", "/a-b/x", "/a-b/x/y", "/a.c", "/a.c/z", "/a/b", "/a/b-", "/a/b/c", "/a/d",
        "/a-b/w",
    ] {
        h.mk(path);
    }
    let bytes = h.sm.snapshot();
    let mut restored = StateMachine::restore(Options::default(), &bytes).unwrap();
    restored.check_invariants();
    assert_eq!(restored.digest(), h.sm.digest());
    assert_eq!(dump(&mut restored), dump(&mut h.sm));
    assert_eq!(restored.snapshot(), bytes);
}

/// `bytes` with every length-prefixed occurrence of the string `from` replaced by `to` (same
/// length), resealed: a snapshot that passes its checksum but describes another tree.
fn renamed(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut needle = (from.len() as i32).to_be_bytes().to_vec();
    needle.extend_from_slice(from.as_bytes());
    let mut body = body_of(bytes).to_vec();
    let mut found = 0;
    let mut at = 0;
    while let Some(offset) = body[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + offset + 4;
        body[start..start + to.len()].copy_from_slice(to.as_bytes());
        at = start;
        found += 1;
    }
    assert!(found > 0, "{from} is not in the snapshot");
    sealed(&body)
}

// Goal: a node whose parent is not in the snapshot, or whose parent is ephemeral, is refused
// with an error that says so (checked before the tree is linked, so never a panic). Method:
// paths renamed in format 2, whose paths are whole; the checks are the same for every format.
#[test]
fn missing_or_ephemeral_parents_are_refused() {
    let mut h = Harness::new();
    h.mk("/a");
    h.mk("/a/b");
    h.create_with("/e", None, 1).unwrap();
    h.mk("/f");
    let bytes = h.sm.snapshot_copy().encode_format_2();
    // Resealed unchanged, it restores: the errors below come from the renames.
    StateMachine::restore(Options::default(), &renamed(&bytes, "/e", "/e")).unwrap();
    // "/a" becomes "/0": "/a/b" still sorts after it but has no parent.
    let error = StateMachine::restore(Options::default(), &renamed(&bytes, "/a", "/0")).err();
    assert!(
        matches!(&error, Some(SnapshotError::Corrupt(why)) if why.contains("/a/b: parent missing")),
        "{error:?}"
    );
    // Invalid paths whose parent exists: an empty name ("//b" splits into "/" and "b"), "."
    // and a control character.
    let mut h = Harness::new();
    h.mk("/ab");
    h.mk("/c");
    h.mk("/c/d");
    let bytes = h.sm.snapshot_copy().encode_format_2();
    for (from, to) in [("/ab", "//b"), ("/c/d", "/c/."), ("/c/d", "/c/\u{7}")] {
        let error = StateMachine::restore(Options::default(), &renamed(&bytes, from, to)).err();
        assert!(
            matches!(&error, Some(SnapshotError::Corrupt(why)) if why.contains("invalid path")),
            "{from} -> {to}: {error:?}"
        );
    }
    // "/d-/c" becomes "/d/cc": still in path order ('-' sorts before '/'), now a child of the
    // ephemeral "/d".
    let mut h = Harness::new();
    h.create_with("/d", None, 1).unwrap();
    h.mk("/d-");
    h.mk("/d-/c");
    let bytes = h.sm.snapshot_copy().encode_format_2();
    let error = StateMachine::restore(Options::default(), &renamed(&bytes, "/d-/c", "/d/cc")).err();
    assert!(
        matches!(&error, Some(SnapshotError::Corrupt(why)) if why.contains("/d/cc: parent is ephemeral")),
        "{error:?}"
    );
}

/// One random step of the model test.
#[derive(Debug, Clone)]
enum Step {
    Create {
        parent: usize,
        name: u8,
        ephemeral: bool,
        sequential: bool,
    },
    Delete {
        target: usize,
        version: Option<i32>,
    },
    SetData {
        target: usize,
        data: Vec<u8>,
        version: Option<i32>,
    },
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..16usize, 0..6u8, any::<bool>(), any::<bool>())
            .prop_map(|(parent, name, ephemeral, sequential)| Step::Create { parent, name, ephemeral, sequential }),
        2 => (0..16usize, proptest::option::of(0..3i32)).prop_map(|(target, version)| Step::Delete { target, version }),
        2 => (0..16usize, proptest::collection::vec(any::<u8>(), 0..4), proptest::option::of(0..3i32))
            .prop_map(|(target, data, version)| Step::SetData { target, data, version }),
        1 => Just(Step::Close),
    ]
}

/// The model: path → (data, version, ephemeral). Paths are picked by index from its keys.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, (Vec<u8>, i32, bool)>,
}

impl Model {
    fn pick(&self, index: usize) -> String {
        let paths: Vec<&String> = self.nodes.keys().collect();
        if paths.is_empty() {
            "/".to_string()
        } else {
            paths[index % paths.len()].clone()
        }
    }

    fn has_children(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.nodes.keys().any(|key| key.starts_with(&prefix))
    }
}

fn run_step(h: &mut Harness, model: &mut Model, step: &Step) {
    match step.clone() {
        Step::Create {
            parent,
            name,
            ephemeral,
            sequential,
        } => {
            let parent = model.pick(parent);
            let base = if parent == "/" {
                format!("/n{name}")
            } else {
                format!("{parent}/n{name}")
            };
            let flags = i32::from(ephemeral) | (i32::from(sequential) << 1);
            let reply = h.create_with(&base, Some(&[name]), flags);
            let parent_ephemeral = model.nodes.get(&parent).is_some_and(|node| node.2);
            match reply {
                Ok(Response::Create { path }) => {
                    assert!(!parent_ephemeral);
                    assert!(path.starts_with(&base));
                    assert!(model
                        .nodes
                        .insert(path, (vec![name], 0, ephemeral))
                        .is_none());
                }
                Err(ErrorCode::NodeExists) => {
                    assert!(!sequential && model.nodes.contains_key(&base))
                }
                Err(ErrorCode::NoChildrenForEphemerals) => assert!(parent_ephemeral),
                other => panic!("create {base}: {other:?}"),
            }
        }
        Step::Delete { target, version } => {
            let path = model.pick(target);
            let request = DeleteRequest {
                path: path.clone(),
                version: version.unwrap_or(-1),
            };
            let reply = h.write(Request::Delete(request)).reply;
            let expected = match model.nodes.get(&path) {
                None if path == "/" => Err(ErrorCode::BadArguments),
                None => Err(ErrorCode::NoNode),
                Some((_, current, _)) if version.is_some_and(|v| v != *current) => {
                    Err(ErrorCode::BadVersion)
                }
                Some(_) if model.has_children(&path) => Err(ErrorCode::NotEmpty),
                Some(_) => Ok(Response::Empty),
            };
            assert_eq!(reply, expected, "delete {path}");
            if reply.is_ok() {
                model.nodes.remove(&path);
            }
        }
        Step::SetData {
            target,
            data,
            version,
        } => {
            let path = model.pick(target);
            if path == "/" {
                // Only an empty model picks the root, which the model does not track.
                return;
            }
            let reply = h.set(&path, &data, version.unwrap_or(-1));
            match model.nodes.get_mut(&path) {
                None => panic!("picked {path} outside the model"),
                Some((_, current, _)) if version.is_some_and(|v| v != *current) => {
                    assert_eq!(reply, Err(ErrorCode::BadVersion));
                }
                Some(node) => {
                    let Ok(Response::Stat(stat)) = reply else {
                        panic!("set {path}: {reply:?}")
                    };
                    node.0 = data;
                    node.1 += 1;
                    assert_eq!(stat.version, node.1);
                }
            }
        }
        Step::Close => {
            h.entry(S1, EntryOp::CloseSession);
            h.session(S1);
            model.nodes.retain(|_, node| !node.2);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    // Goal: random histories keep the invariants (checked after every entry by the harness),
    // agree with the model, and survive a snapshot round trip with identical reads, in the
    // format written (3) and in the fixed layout rzk wrote before (2), which restores the same.
    #[test]
    fn model_agrees(steps in proptest::collection::vec(step(), 1..60)) {
        let mut h = Harness::new();
        let mut model = Model::default();
        for step in &steps {
            run_step(&mut h, &mut model, step);
        }
        for (path, (data, version, ephemeral)) in &model.nodes {
            let stat = h.stat(path);
            let stored = h.get(path);
            prop_assert_eq!(stored.as_ref(), Some(data));
            prop_assert_eq!(stat.version, *version);
            prop_assert_eq!(stat.ephemeral_owner != 0, *ephemeral);
        }
        let user_nodes = dump(&mut h.sm).len() - 4;
        prop_assert_eq!(user_nodes, model.nodes.len());
        let bytes = h.sm.snapshot();
        let mut restored = StateMachine::restore(Options::default(), &bytes).unwrap();
        restored.check_invariants();
        prop_assert_eq!(restored.counts(), h.sm.counts());
        prop_assert_eq!(dump(&mut restored), dump(&mut h.sm));
        prop_assert_eq!(&restored.snapshot(), &bytes);
        let format_2 = h.sm.snapshot_copy().encode_format_2();
        let mut restored = StateMachine::restore(Options::default(), &format_2).unwrap();
        restored.check_invariants();
        prop_assert_eq!(restored.digest(), h.sm.digest());
        prop_assert_eq!(dump(&mut restored), dump(&mut h.sm));
        prop_assert_eq!(restored.snapshot(), bytes);
    }
}
