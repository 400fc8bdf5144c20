//! Self-test of the reference-ZooKeeper harness in `support/`: it validates the harness against the real
//! Apache ZooKeeper 3.8.0, independently of rzk, so a failure here points at the test machine or the harness.

mod support;

use support::{four_letter, srvr_mode, stderr_text, stdout_text, zkcli, zkcli_script, RefZk};

/// Goal: `RefZk::start` gives a serving standalone ZooKeeper that zkCli can write to and read from.
/// Method: start it, check `srvr`'s Mode line, `create /java spring` then `get /java` through zkCli (one JVM
/// each), then the same session-per-script path, and finally that a missing node is reported the way zkCli does.
#[test]
fn reference_zookeeper_serves_zkcli() {
    if support::skip_without_reference("reference_zookeeper_serves_zkcli") {
        return;
    }
    let zookeeper = RefZk::start();
    let srvr = four_letter(zookeeper.port(), "srvr");
    assert_eq!(srvr_mode(&srvr), Some("standalone"), "srvr reply: {srvr}");
    assert!(
        srvr.contains("Zookeeper version: 3.8.0"),
        "srvr reply: {srvr}"
    );

    let created = zkcli(zookeeper.port(), &["create", "/java", "spring"]);
    assert!(
        created.status.success(),
        "{}",
        support::describe_output(&created)
    );
    assert!(
        stderr_text(&created).contains("Created /java"),
        "{}",
        support::describe_output(&created)
    );

    let read = zkcli(zookeeper.port(), &["get", "/java"]);
    assert!(read.status.success(), "{}", support::describe_output(&read));
    assert!(
        stdout_text(&read).lines().any(|line| line == "spring"),
        "{}",
        support::describe_output(&read)
    );

    let missing = zkcli(zookeeper.port(), &["get", "/nope"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "{}",
        support::describe_output(&missing)
    );
    assert!(
        stderr_text(&missing).contains("Node does not exist: /nope"),
        "{}",
        support::describe_output(&missing)
    );

    let script = zkcli_script(
        zookeeper.port(),
        "create /script one\nset /script two\nget /script\nls /",
    );
    assert!(
        script.status.success(),
        "{}",
        support::describe_output(&script)
    );
    let stdout = stdout_text(&script);
    assert!(
        stdout.lines().any(|line| line == "two"),
        "{}",
        support::describe_output(&script)
    );
    assert!(
        stdout.contains("[java, script, zookeeper]"),
        "{}",
        support::describe_output(&script)
    );
}

/// Goal: a reference server keeps its data across a crash and restart on the same port, so tests can compare
/// rzk's recovery with ZooKeeper's. Method: create a node, kill -9, restart, read it back.
#[test]
fn reference_zookeeper_survives_kill9_and_restart() {
    if support::skip_without_reference("reference_zookeeper_survives_kill9_and_restart") {
        return;
    }
    let mut zookeeper = RefZk::start();
    let created = zkcli(zookeeper.port(), &["create", "/durable", "yes"]);
    assert!(
        created.status.success(),
        "{}",
        support::describe_output(&created)
    );
    let port = zookeeper.port();
    zookeeper.kill9();
    assert!(
        support::try_four_letter(port, "ruok", std::time::Duration::from_secs(1)).is_err(),
        "still answering after kill -9"
    );
    zookeeper.start_again();
    assert_eq!(zookeeper.port(), port);
    let read = zkcli(zookeeper.port(), &["get", "/durable"]);
    assert!(
        stdout_text(&read).lines().any(|line| line == "yes"),
        "{}",
        support::describe_output(&read)
    );
}

/// Goal: the ensemble helper really forms a quorum. Method: start 3 members, expect one leader and two followers.
#[test]
fn reference_ensemble_elects_a_leader() {
    if support::skip_without_reference("reference_ensemble_elects_a_leader") {
        return;
    }
    let members = RefZk::start_ensemble(3, &[]);
    let mut modes: Vec<String> = members
        .iter()
        .map(|member| {
            srvr_mode(&member.four_letter("srvr"))
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);
}
