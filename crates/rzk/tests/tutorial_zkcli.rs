//! The user tutorial's zkCli session (§3.3–3.4 of `zookeeper-tutorial-zh.txt`) through Debian's real
//! `zkCli.sh` 3.8.0 against `rzk server`, checked on its own terms and differentially against Apache
//! ZooKeeper 3.8.0 (the same transcript, normalised outputs must be identical), plus the lifetime of the
//! ephemerals zkCli creates in its two modes (scripted session closed by `quit`, one-shot command mode that
//! exits without closing its session).
//!
//! zkCli costs ~1 s of JVM per invocation, so each test uses as few invocations as it can.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use support::{
    describe_output, four_letter, stderr_text, stdout_text, zkcli, zkcli_script, RefZk, RzkServer,
    TestServer,
};

/// The tutorial's commands, plus the error cases and node kinds it talks about. It ends with a failing
/// `get`, so the scripted zkCli exits with that command's code (1) after `quit`.
const TUTORIAL: &str = "\
create /java spring
ls /
get /java
set /java mybatis
get -s /java
stat /java
create /java again
create /java/child c
delete /java
delete /java/child
create -e /e x
stat /e
create -s /s- d
create -s /s- d
ls /
delete /java
get /java
";

/// Beyond the tutorial, run after it in a second session on the same server and compared with ZooKeeper
/// only: root and /zookeeper stats, `ls -s`, the standalone `/zookeeper/config`, version conflicts, client-side
/// path errors, sequential children, ephemerals refusing children, containers, TTL without extended types,
/// ACLs (`getAcl`, `setAcl`, then writes refused), `deleteall`, `getAllChildrenNumber`. (Not a `deleteall` that
/// fails: zkCli 3.8.0 races its own callback and prints "Failed to delete some node(s)" only sometimes.)
const BEYOND_TUTORIAL: &str = "\
stat /
ls -s /
ls /zookeeper
get -s /zookeeper/config
stat /zookeeper
create /j1 a
set -v 5 /j1 x
create /j1/
create j2
delete -v 3 /j1
sync /j1
create -s /j1/ x
create -s /j1/ y
create -e /j1/e x
create -e /j1/e/f x
create -c /cont x
stat /cont
create -t 100 /ttl x
ls -R /j1
getAcl /j1
setAcl /j1 world:anyone:r
getAcl -s /j1
set /j1 y
create /j1/g x
create /d x
create /d/x x
create /d/x/y x
deleteall /d
getAllChildrenNumber /
stat /j1
ls /
";

/// What zkCli prints on stderr (where it puts `Created ...` and errors) for [`TUTORIAL`], SLF4J noise removed.
/// Sequential suffixes: `/`'s stored cversion counts creates only (/java, /e), so the first is 2.
const TUTORIAL_STDERR: &[&str] = &[
    "Created /java",
    "Node already exists: /java",
    "Created /java/child",
    "Node not empty: /java",
    "Created /e",
    "Created /s-0000000002",
    "Created /s-0000000003",
    "Node does not exist: /java",
];

/// Session timeouts for the ephemeral-lifetime test: zkCli asks for 30 s, the server clamps it to
/// `maxSessionTimeout`, which bounds how long a one-shot zkCli's ephemeral lingers.
const LINGER_TICK_MS: u64 = 500;
const LINGER_MAX_SESSION_TIMEOUT_MS: u64 = 6000;
const LINGER_CONFIG: &[&str] = &[
    "tickTime=500",
    "minSessionTimeout=1000",
    "maxSessionTimeout=6000",
];
/// Beyond the session timeout and two ticks of expiry rounding: a loaded 2-core machine.
const EXPIRY_SLACK: Duration = Duration::from_secs(10);

/// Checks: the tutorial session (`create /java spring` → `Created /java`, `ls /` → `[java, zookeeper]`,
/// `get /java` → `spring`, `set`, `get -s`/`stat` with all 11 stat fields and the right values, NodeExists /
/// NotEmpty / NoNode error texts, an ephemeral with a non-zero owner, two sequential creates with consecutive
/// suffixes, the scripted exit code) on rzk; then that the same transcript against Apache ZooKeeper 3.8.0
/// gives IDENTICAL stdout, stderr and exit code once zxids, dates, session ids and the address are normalised;
/// and the same for a second session going beyond the tutorial ([`BEYOND_TUTORIAL`]).
#[test]
fn tutorial_session_matches_zookeeper() {
    if support::skip_without_reference("tutorial_session_matches_zookeeper") {
        return;
    }
    // The reference JVM starts while rzk runs its transcript.
    let reference = thread::spawn(|| {
        let zookeeper = RefZk::start();
        let tutorial = zkcli_script(zookeeper.port(), TUTORIAL);
        let beyond = zkcli_script(zookeeper.port(), BEYOND_TUTORIAL);
        (tutorial, beyond)
    });
    let rzk = RzkServer::start(&[]);
    let ours = zkcli_script(rzk.port(), TUTORIAL);
    let our_beyond = zkcli_script(rzk.port(), BEYOND_TUTORIAL);
    let (theirs, their_beyond) = reference.join().expect("reference transcript thread");

    check_tutorial_transcript(&ours);
    // The control: if the reference disagrees with the expectations, the expectations are wrong.
    check_tutorial_transcript(&theirs);

    let (our_out, their_out) = (
        normalise(&stdout_text(&ours)),
        normalise(&stdout_text(&theirs)),
    );
    let (our_err, their_err) = (
        normalise(&stderr_text(&ours)),
        normalise(&stderr_text(&theirs)),
    );
    assert_identical("stdout", &their_out, &our_out);
    assert_identical("stderr", &their_err, &our_err);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit code of the scripted session\n--- rzk ---\n{}\n--- ZooKeeper ---\n{}",
        describe_output(&ours),
        describe_output(&theirs)
    );

    assert_identical(
        "stdout (beyond the tutorial)",
        &normalise(&stdout_text(&their_beyond)),
        &normalise(&stdout_text(&our_beyond)),
    );
    assert_identical(
        "stderr (beyond the tutorial)",
        &normalise(&stderr_text(&their_beyond)),
        &normalise(&stderr_text(&our_beyond)),
    );
    assert_eq!(
        our_beyond.status.code(),
        their_beyond.status.code(),
        "exit code of the second session\n--- rzk ---\n{}\n--- ZooKeeper ---\n{}",
        describe_output(&our_beyond),
        describe_output(&their_beyond)
    );
}

/// Checks, on rzk, how long zkCli's ephemerals live: one-shot `create -e /linger x` exits 0 WITHOUT closing
/// its session, so `/linger` stays (its owner, read with `stat` from a second, scripted session, is the one
/// session `dump` lists) until the session expires (maxSessionTimeout 6 s bounds it), after which one-shot
/// `get /linger` exits 1 with `Node does not exist: /linger`. The scripted session's own `create -e /e x`
/// (owner = that session, not the lingering one) is gone as soon as its `quit` closes the session; a second
/// `create -e /linger` fails with the NodeExists text.
#[test]
fn ephemeral_lifetime_follows_the_zkcli_session() {
    if support::skip_without_reference("ephemeral_lifetime_follows_the_zkcli_session") {
        return;
    }
    let rzk = RzkServer::start(LINGER_CONFIG);
    check_ephemeral_lifetime("rzk", &rzk);
}

/// Control for [`ephemeral_lifetime_follows_the_zkcli_session`]: the same steps and assertions against
/// Apache ZooKeeper 3.8.0 (if they fail there, the test is wrong, not rzk).
#[test]
fn ephemeral_lifetime_on_reference_zookeeper() {
    if support::skip_without_reference("ephemeral_lifetime_on_reference_zookeeper") {
        return;
    }
    let zookeeper = RefZk::start_with(LINGER_CONFIG, &[]);
    check_ephemeral_lifetime("ZooKeeper", &zookeeper);
}

// ---------------------------------------------------------------------------------------------------------
// The tutorial transcript
// ---------------------------------------------------------------------------------------------------------

fn check_tutorial_transcript(output: &Output) {
    let context = describe_output(output);
    let stdout = stdout_text(output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        stderr_lines(output),
        TUTORIAL_STDERR,
        "zkCli's stderr\n{context}"
    );
    // Only the last command failed (Node does not exist), and zkCli exits with the last command's code.
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit code of the scripted session\n{context}"
    );

    let expect_line = |line: &str| {
        assert!(
            lines.contains(&line),
            "missing line {line:?} in zkCli's stdout\n{context}"
        );
    };
    expect_line("[java, zookeeper]");
    expect_line("spring");
    expect_line("mybatis");
    expect_line("[e, java, s-0000000002, s-0000000003, zookeeper]");
    // `spring` is printed by `get /java` before the set, `mybatis` by `get -s /java` after it.
    let position = |wanted: &str| lines.iter().position(|line| *line == wanted);
    assert!(
        position("spring") < position("mybatis"),
        "get printed the data in the wrong order\n{context}"
    );

    let stats = stat_blocks(&stdout);
    assert_eq!(
        stats.len(),
        3,
        "expected three stat blocks (get -s /java, stat /java, stat /e)\n{context}"
    );
    for java in &stats[..2] {
        assert_eq!(java.get("dataVersion"), Some(&"1".to_string()), "{context}");
        assert_eq!(java.get("dataLength"), Some(&"7".to_string()), "{context}");
        assert_eq!(
            java.get("ephemeralOwner"),
            Some(&"0x0".to_string()),
            "{context}"
        );
        assert_eq!(java.get("cversion"), Some(&"0".to_string()), "{context}");
        assert_eq!(java.get("aclVersion"), Some(&"0".to_string()), "{context}");
        assert_eq!(java.get("numChildren"), Some(&"0".to_string()), "{context}");
        let (czxid, mzxid, pzxid) = (
            hex(&java["cZxid"]),
            hex(&java["mZxid"]),
            hex(&java["pZxid"]),
        );
        assert!(
            czxid > 0 && czxid < mzxid,
            "cZxid {czxid:#x} < mZxid {mzxid:#x} expected (set after create)\n{context}"
        );
        assert_eq!(
            pzxid, czxid,
            "pZxid of a node that never had children is its cZxid\n{context}"
        );
        assert_java_date(&java["ctime"], &context);
        assert_java_date(&java["mtime"], &context);
    }
    assert_eq!(
        stats[0], stats[1],
        "get -s and stat disagree about /java\n{context}"
    );
    let ephemeral = &stats[2];
    assert_ne!(
        ephemeral.get("ephemeralOwner").map(String::as_str),
        Some("0x0"),
        "/e is ephemeral\n{context}"
    );
    assert_eq!(
        ephemeral.get("dataLength"),
        Some(&"1".to_string()),
        "{context}"
    );
    assert!(
        hex(&ephemeral["cZxid"]) > hex(&stats[0]["mZxid"]),
        "/e was created after /java was set\n{context}"
    );
}

/// The eleven fields of zkCli's StatPrinter, in its order.
const STAT_FIELDS: [&str; 11] = [
    "cZxid",
    "ctime",
    "mZxid",
    "mtime",
    "pZxid",
    "cversion",
    "dataVersion",
    "aclVersion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
];

/// Every stat block in zkCli's stdout: eleven consecutive `field = value` lines in StatPrinter's order.
/// zkCli's event thread prints a watch event (a blank line, `WATCHER::`, a blank line, then
/// `WatchedEvent ...`) whenever it arrives, even between two lines of a stat block, so those
/// lines are left out first.
fn stat_blocks(stdout: &str) -> Vec<HashMap<String, String>> {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            !(line.is_empty() || *line == "WATCHER::" || line.starts_with("WatchedEvent "))
        })
        .collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        if !lines[index].starts_with("cZxid = ") {
            index += 1;
            continue;
        }
        let mut block = HashMap::new();
        for (offset, field) in STAT_FIELDS.iter().enumerate() {
            let line = lines.get(index + offset).copied().unwrap_or("");
            let value = line
                .strip_prefix(&format!("{field} = "))
                .unwrap_or_else(|| {
                    panic!(
                        "stat block field {} should be {field}, got {line:?}\n{stdout}",
                        offset + 1
                    )
                });
            block.insert(field.to_string(), value.to_string());
        }
        blocks.push(block);
        index += STAT_FIELDS.len();
    }
    blocks
}

fn hex(text: &str) -> u64 {
    let digits = text
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("not a 0x number: {text:?}"));
    u64::from_str_radix(digits, 16).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

/// Java's `Date.toString()` of a node's own time: `EEE MMM dd HH:mm:ss zzz yyyy`, e.g.
/// `Wed Jun 28 01:58:53 CST 2023`, and not the epoch (which only `/` and `/zookeeper` show).
fn assert_java_date(text: &str, context: &str) {
    assert_java_date_format(text, context);
    assert!(
        text.rsplit(' ').next().unwrap_or("") >= "2020",
        "a node's time should be recent: {text:?}\n{context}"
    );
}

/// The shape of Java's `Date.toString()`.
fn assert_java_date_format(text: &str, context: &str) {
    let parts: Vec<&str> = text.split(' ').collect();
    let ok = parts.len() == 6
        && ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&parts[0])
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&parts[1])
        && parts[2].len() == 2
        && parts[2].bytes().all(|b| b.is_ascii_digit())
        && parts[3].len() == 8
        && parts[3].bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
        && !parts[4].is_empty()
        && parts[5].len() == 4
        && parts[5].bytes().all(|b| b.is_ascii_digit());
    assert!(ok, "not a Java Date.toString(): {text:?}\n{context}");
}

/// zkCli's stderr without the SLF4J lines the JVM prints when no binding is on the class path.
fn stderr_lines(output: &Output) -> Vec<String> {
    stderr_text(output)
        .lines()
        .filter(|line| !line.starts_with("SLF4J:"))
        .map(str::to_string)
        .collect()
}

/// Replaces what legitimately differs between two servers and runs: the address, log noise, dates, and
/// zxids and session ids, which become labels numbered by first appearance (`<zxid1>`, `<session1>`), so
/// equal values stay equal and distinct ones distinct. Sequence suffixes are NOT masked: they must match.
fn normalise(text: &str) -> String {
    let mut zxids: Vec<String> = Vec::new();
    let mut sessions: Vec<String> = Vec::new();
    let label = |seen: &mut Vec<String>, value: &str, name: &str| {
        let position = seen.iter().position(|v| v == value).unwrap_or_else(|| {
            seen.push(value.to_string());
            seen.len() - 1
        });
        format!("<{name}{}>", position + 1)
    };
    let (text, events) = support::lift_zkcli_events(text);
    let mut lines = Vec::new();
    for line in text.lines().chain(events.iter().map(String::as_str)) {
        if line.starts_with("SLF4J:") || line.starts_with("log4j:") {
            continue;
        }
        let normal = if line.starts_with("Connecting to ") {
            "Connecting to <address>".to_string()
        } else if let Some(date) = line
            .strip_prefix("ctime = ")
            .or_else(|| line.strip_prefix("mtime = "))
        {
            assert_java_date_format(date, &text);
            format!("{}<date>", &line[..8])
        } else if let Some((field, value)) = line.split_once(" = ") {
            match field {
                "cZxid" | "mZxid" | "pZxid" => {
                    format!("{field} = {}", label(&mut zxids, value, "zxid"))
                }
                "ephemeralOwner" if value != "0x0" => {
                    format!("{field} = {}", label(&mut sessions, value, "session"))
                }
                _ => line.to_string(),
            }
        } else {
            line.to_string()
        };
        lines.push(normal);
    }
    support::events_apart(lines).join("\n")
}

fn assert_identical(what: &str, reference: &str, ours: &str) {
    if reference == ours {
        return;
    }
    let reference_lines: Vec<&str> = reference.lines().collect();
    let our_lines: Vec<&str> = ours.lines().collect();
    let first = (0..reference_lines.len().max(our_lines.len()))
        .find(|&i| reference_lines.get(i) != our_lines.get(i))
        .unwrap_or(0);
    panic!(
        "zkCli's normalised {what} differs between ZooKeeper 3.8.0 and rzk; first difference at line {}:\n  \
         ZooKeeper: {:?}\n  rzk:       {:?}\n--- ZooKeeper ---\n{reference}\n--- rzk ---\n{ours}",
        first + 1,
        reference_lines.get(first),
        our_lines.get(first)
    );
}

// ---------------------------------------------------------------------------------------------------------
// Ephemeral lifetime
// ---------------------------------------------------------------------------------------------------------

/// `Node count:` from `srvr`.
fn node_count(port: u16) -> u64 {
    let reply = four_letter(port, "srvr");
    reply
        .lines()
        .find_map(|line| line.strip_prefix("Node count: "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("srvr reply without a Node count line: {reply:?}"))
}

/// The live session ids in a `dump` reply: every non-zero `0x...` token (ZooKeeper lists them under
/// `Session Sets`, `Sessions with Ephemerals` and `Connections dump`, as rzk does standalone;
/// both print `0x` + hex).
fn dump_sessions(port: u16) -> (BTreeSet<u64>, String) {
    let reply = four_letter(port, "dump");
    let sessions = reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .filter_map(|token| token.strip_prefix("0x"))
        .filter_map(|digits| u64::from_str_radix(digits, 16).ok())
        .filter(|id| *id != 0)
        .collect();
    (sessions, reply)
}

fn check_ephemeral_lifetime(server_name: &str, server: &TestServer) {
    let port = server.port();
    let base_nodes = node_count(port);

    // One-shot command mode: the JVM exits after the create without closing its session.
    let created = zkcli(port, &["create", "-e", "/linger", "x"]);
    let exited = Instant::now();
    assert_eq!(
        created.status.code(),
        Some(0),
        "{server_name}: one-shot create -e\n{}",
        describe_output(&created)
    );
    assert_eq!(
        stderr_lines(&created),
        ["Created /linger"],
        "{server_name}: one-shot create -e\n{}",
        describe_output(&created)
    );
    let (sessions, dump) = dump_sessions(port);
    assert_eq!(
        sessions.len(),
        1,
        "{server_name}: after the one-shot zkCli exited, its session should be the only live one; dump:\n{dump}"
    );
    let lingering = *sessions.iter().next().expect("one session");
    assert_eq!(
        node_count(port),
        base_nodes + 1,
        "{server_name}: /linger should exist after the one-shot zkCli exited"
    );

    // A second session, closed by `quit`: /linger is still there, owned by the first session.
    let script = zkcli_script(
        port,
        "stat /linger\ncreate -e /linger y\ncreate -e /e x\nstat /e\ngetEphemerals /\nls /\nquit",
    );
    let context = format!("{server_name}:\n{}", describe_output(&script));
    assert_eq!(
        stderr_lines(&script),
        ["Node already exists: /linger", "Created /e"],
        "{context}"
    );
    assert_eq!(script.status.code(), Some(0), "{context}");
    let stdout = stdout_text(&script);
    let stats = stat_blocks(&stdout);
    assert_eq!(stats.len(), 2, "stat /linger and stat /e\n{context}");
    assert_eq!(
        hex(&stats[0]["ephemeralOwner"]),
        lingering,
        "/linger's ephemeralOwner should be the session dump listed ({lingering:#x})\n{context}"
    );
    let own = hex(&stats[1]["ephemeralOwner"]);
    assert!(
        own != 0 && own != lingering,
        "/e's ephemeralOwner should be the scripted session, not {own:#x}\n{context}"
    );
    assert!(
        stdout.lines().any(|line| line == "[/e]"),
        "getEphemerals / lists only this session's ephemerals\n{context}"
    );
    assert!(
        stdout.lines().any(|line| line == "[e, linger, zookeeper]"),
        "ls / while both ephemerals exist\n{context}"
    );

    // `quit` closed the scripted session: its ephemeral is gone now, without waiting for any timeout.
    let (sessions, dump) = dump_sessions(port);
    assert!(
        !sessions.contains(&own),
        "{server_name}: the session closed by quit ({own:#x}) is still listed by dump:\n{dump}"
    );
    assert!(
        node_count(port) <= base_nodes + 1,
        "{server_name}: /e should be gone once quit closed its session"
    );

    // The one-shot session expires on the server's clock: within maxSessionTimeout (+ rounding + slack).
    let timeout = Duration::from_millis(LINGER_MAX_SESSION_TIMEOUT_MS);
    let deadline = exited + timeout + Duration::from_millis(2 * LINGER_TICK_MS) + EXPIRY_SLACK;
    let expired_after = loop {
        let (sessions, dump) = dump_sessions(port);
        if !sessions.contains(&lingering) && node_count(port) == base_nodes {
            break exited.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{server_name}: the one-shot session {lingering:#x} and /linger still live {:?} after zkCli exited \
             (maxSessionTimeout {timeout:?}); dump:\n{dump}",
            exited.elapsed()
        );
        thread::sleep(Duration::from_millis(100));
    };
    // zkCli's last packet was its create, just before it exited, so the session cannot expire much sooner
    // than the timeout after that.
    assert!(
        expired_after >= timeout / 2,
        "{server_name}: the lingering session expired {expired_after:?} after zkCli exited, well before its \
         {timeout:?} timeout"
    );

    let gone = zkcli(port, &["get", "/linger"]);
    assert_eq!(
        gone.status.code(),
        Some(1),
        "{server_name}: one-shot get of an expired ephemeral\n{}",
        describe_output(&gone)
    );
    assert_eq!(
        stderr_lines(&gone),
        ["Node does not exist: /linger"],
        "{server_name}:\n{}",
        describe_output(&gone)
    );
}
