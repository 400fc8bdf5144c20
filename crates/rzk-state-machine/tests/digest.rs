//! `StateMachine::digest`: equal trees give equal digests (also through a snapshot), any change
//! to a path, data or Stat changes it, and a client can recompute it from reads.

mod common;

use common::*;
use rzk_state_machine::*;

// Goal: the digest survives a snapshot round trip and sees every kind of change.
// Method: build a small tree, compare digests before/after restore, then change one thing at a time.
#[test]
fn digest_follows_the_tree() {
    let mut h = Harness::new();
    h.mk("/a");
    h.mk("/a/b");
    h.set("/a/b", b"value", 0).expect("setData");
    let before = h.sm.digest();
    let restored = StateMachine::restore(Options::default(), &h.sm.snapshot()).expect("restore");
    assert_eq!(
        restored.digest(),
        before,
        "a snapshot round trip keeps the digest"
    );

    h.set("/a/b", b"value", 1).expect("setData");
    let after_set = h.sm.digest();
    assert_ne!(after_set, before, "same data, new version and mzxid");
    h.mk("/c");
    assert_ne!(h.sm.digest(), after_set, "a new node");
}

// Goal: a client reading every node (path, data, Stat) computes the server's digest.
#[test]
fn digest_is_the_sum_of_znode_digests() {
    let mut h = Harness::new();
    h.mk("/x");
    h.set("/x", b"1", 0).expect("setData");
    let mut sum = 0u64;
    let mut pending = vec!["/".to_string()];
    while let Some(path) = pending.pop() {
        let data = h.get(&path).unwrap_or_default();
        sum = sum.wrapping_add(znode_digest(&path, &data, &h.stat(&path)));
        for child in h.children(&path) {
            let prefix = if path == "/" { "" } else { path.as_str() };
            pending.push(format!("{prefix}/{child}"));
        }
    }
    assert_eq!(sum, h.sm.digest());
}
