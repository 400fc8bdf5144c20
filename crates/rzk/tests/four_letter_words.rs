//! Four-letter words on `rzk server`'s client port: the replies operators and tools (zkServer.sh, kazoo,
//! health checks) parse, the whitelist (rzk's default, with no `4lw.commands.whitelist` line, is
//! `srvr, ruok, mntr`; ZooKeeper 3.8.0's is `srvr` alone), and that 4lw connections do not disturb a client
//! session running alongside them. The reply checks also run against Apache ZooKeeper 3.8.0 as a control.

mod support;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{four_letter, free_port, rzk_binary, srvr_mode, try_four_letter, RefZk, RzkServer};

/// Checks, with `4lw.commands.whitelist=*`: `ruok` → exactly `imok`; `srvr` has `Zookeeper version:`,
/// `Mode: standalone` and `Node count:`; `mntr` has `zk_server_state standalone` and a `zk_znode_count` that
/// goes up by one after a create (and `srvr`'s node count with it); `envi` has `zookeeper.version=`; `isro` →
/// exactly `rw`.
#[test]
fn replies_have_the_zookeeper_shape() {
    let rzk = RzkServer::start(&[]);
    check_replies("rzk", rzk.port());
}

/// Control for [`replies_have_the_zookeeper_shape`]: the same checks against Apache ZooKeeper 3.8.0.
#[test]
fn replies_have_the_same_shape_on_reference_zookeeper() {
    if support::skip_without_reference("replies_have_the_same_shape_on_reference_zookeeper") {
        return;
    }
    let zookeeper = RefZk::start();
    check_replies("ZooKeeper", zookeeper.port());
}

/// Checks rzk's default whitelist (a zoo.cfg with no `4lw.commands.whitelist` line): `srvr`, `ruok` and
/// `mntr` are answered; `conf`, `cons` (and `envi`, `stat`, `dump`, `isro`) get exactly
/// `<cmd> is not executed because it is not in the whitelist.` plus a newline, as ZooKeeper words it.
#[test]
fn default_whitelist_answers_srvr_ruok_mntr_only() {
    let server = DefaultWhitelistRzk::start();
    let port = server.port;
    let srvr = four_letter(port, "srvr");
    assert_eq!(srvr_mode(&srvr), Some("standalone"), "srvr: {srvr:?}");
    assert_eq!(four_letter(port, "ruok"), "imok");
    let mntr = four_letter(port, "mntr");
    assert_eq!(
        mntr_value(&mntr, "zk_server_state").as_deref(),
        Some("standalone"),
        "mntr: {mntr:?}"
    );
    for refused in ["conf", "cons", "envi", "stat", "dump", "isro"] {
        assert_eq!(
            four_letter(port, refused),
            format!("{refused} is not executed because it is not in the whitelist.\n"),
            "{refused} with the default whitelist"
        );
    }
}

/// Checks that `srvr` is answered whatever `4lw.commands.whitelist` says, as ZooKeeper does (its
/// `zkServer.sh status` depends on it): with `ruok, mntr` listed, `srvr` still reports the mode and
/// `conf`, which is not listed, is refused.
#[test]
fn srvr_is_answered_even_when_the_whitelist_leaves_it_out() {
    let rzk = RzkServer::start(&["4lw.commands.whitelist=ruok, mntr"]);
    let srvr = four_letter(rzk.port(), "srvr");
    assert_eq!(srvr_mode(&srvr), Some("standalone"), "srvr: {srvr:?}");
    assert_eq!(four_letter(rzk.port(), "ruok"), "imok");
    assert_eq!(
        four_letter(rzk.port(), "conf"),
        "conf is not executed because it is not in the whitelist.\n"
    );
}

/// Checks that 4lw connections do not disturb a concurrent client session: while a session holds a data
/// watch, has requests in flight and answers pings, every whitelisted word is sent (twice) on fresh
/// connections between its requests; each of the session's replies still comes back in order with its own
/// xid and no error, `cons` lists the session's id, the watch fires once when another session changes the
/// node, and the session closes cleanly afterwards.
#[test]
fn four_letter_words_do_not_disturb_a_session() {
    let rzk = RzkServer::start(&[]);
    let port = rzk.port();
    let mut session = RawSession::connect(port);
    session.create("/busy", b"0");
    session.get_data("/busy", true);

    let words = [
        "ruok", "srvr", "stat", "mntr", "cons", "envi", "conf", "wchs", "wchc", "wchp", "dump",
        "isro", "dirs",
    ];
    for round in 0..2 {
        for (index, word) in words.iter().enumerate() {
            // One request in flight on the session while the 4lw connection comes and goes.
            let path = format!("/busy/n-{round}-{index}");
            let xid = session.send_create(&path, word.as_bytes());
            let reply = four_letter(port, word);
            assert!(
                !reply.is_empty() && !reply.contains("not executed"),
                "{word}: {reply:?}"
            );
            if *word == "cons" {
                let sid = format!("0x{:x}", session.session_id);
                assert!(
                    reply.contains(&sid),
                    "cons should list the live session {sid}: {reply:?}"
                );
            }
            session.expect_reply(xid, &format!("create {path} around {word}"));
            session.ping();
        }
    }

    let mut other = RawSession::connect(port);
    other.set_data("/busy", b"changed");
    let event = session.next_event(Duration::from_secs(10));
    assert_eq!(
        event,
        WatchEvent {
            kind: 3,
            state: 3,
            path: "/busy".to_string()
        },
        "NodeDataChanged for /busy"
    );
    let children = session.get_children("/busy", false);
    assert_eq!(children.len(), 2 * words.len(), "children: {children:?}");
    assert!(
        session.events.is_empty(),
        "unexpected extra events: {:?}",
        session.events
    );
    session.close();
    other.close();
}

/// Checks the listings operators read, differentially against Apache ZooKeeper 3.8.0, with one session that
/// watches `/w` (getData) and the missing `/nope` (exists), owns an ephemeral, then watches the children of
/// `/w` and `/`: `wchs` is identical and counts the two data watches only, as `wchc` and `wchp` list
/// ZooKeeper's data table; `mntr`'s `zk_watch_count` is 4 (both tables); `envi` names this host's OS,
/// architecture, kernel release and user as Java does; `cons` after `crst` has ZooKeeper's fields; the
/// packet counters agree (a session's ConnectRequest, ConnectResponse and notifications count; each
/// four-letter word is a packet in and out); `wchc`
/// maps the session to exactly {/w, /nope} and `wchp` maps each of those paths to exactly the session; the
/// session's `cons` line has the same fields as ZooKeeper's (queued, recved, sent, sid, lop, est, to, lcxid,
/// lzxid, lresp, llat, minlat, avglat, maxlat) with `to=` the negotiated 10000 and non-zero packet counts;
/// `conf` has the same keys in the same order, and the same `serverId` (0 for a standalone
/// server).
#[test]
fn listings_match_zookeeper() {
    if support::skip_without_reference("listings_match_zookeeper") {
        return;
    }
    let reference = thread::spawn(|| {
        let zookeeper = RefZk::start();
        let listings = Listings::collect(zookeeper.port());
        drop(zookeeper);
        listings
    });
    let rzk = RzkServer::start(&[]);
    let ours = Listings::collect(rzk.port());
    let theirs = reference.join().expect("reference thread");

    // The control: the expectations hold on ZooKeeper.
    let control = theirs.problems();
    assert!(
        control.is_empty(),
        "ZooKeeper 3.8.0 fails the expectations (the test is wrong):\n{}",
        control.join("\n")
    );
    let mut problems = ours.problems();
    // Each field of the two servers' listings, debug-printed, with what it is.
    macro_rules! both {
        ($what:expr, $field:ident) => {
            (
                $what.to_string(),
                format!("{:?}", ours.$field),
                format!("{:?}", theirs.$field),
            )
        };
    }
    let mut compared = vec![
        both!("wchs", wchs),
        both!("the shape of dump", dump_shape),
        both!("cons sent= after a notification", sent_after_notification),
        both!("srvr Received/Sent after srst and one srvr", srvr_packets),
        both!("envi", environment),
        both!("mntr zk_watch_count", watch_count),
        both!("conf serverId", conf_server_id),
        both!("conf keys", conf_keys),
    ];
    // The session's packets: the ConnectRequest and ConnectResponse count, as its requests
    // and replies do.
    for counter in ["recved", "sent"] {
        compared.push((
            format!("cons {counter}="),
            format!("{:?}", ours.cons_values.get(counter)),
            format!("{:?}", theirs.cons_values.get(counter)),
        ));
    }
    for (what, rzk, zookeeper) in compared {
        if rzk != zookeeper {
            problems.push(format!("{what}: rzk {rzk}, ZooKeeper {zookeeper}"));
        }
    }
    if ours.cons_fields_after_crst != theirs.cons_fields_after_crst {
        problems.push(format!(
            "fields of the session's cons line after crst: rzk {:?}, ZooKeeper {:?}\n  rzk:       {}\n  ZooKeeper: {}",
            ours.cons_fields_after_crst,
            theirs.cons_fields_after_crst,
            ours.cons_line_after_crst,
            theirs.cons_line_after_crst
        ));
    }
    if ours.cons_fields != theirs.cons_fields {
        problems.push(format!(
            "fields of the session's cons line: rzk {:?}, ZooKeeper {:?}\n  rzk:       {}\n  ZooKeeper: {}",
            ours.cons_fields, theirs.cons_fields, ours.cons_line, theirs.cons_line
        ));
    }
    assert!(
        problems.is_empty(),
        "rzk's listings differ from ZooKeeper 3.8.0's:\n- {}",
        problems.join("\n- ")
    );
}

/// `dump` without what differs between servers and runs, sorted: session ids, addresses and
/// expiry buckets (their count and dates; every date must look like Java's `Date.toString()`).
fn dump_shape(dump: &str) -> Vec<String> {
    let mut shape: Vec<String> = dump
        .lines()
        .filter_map(|line| {
            if let Some((count, date)) = line.split_once(" expire at ") {
                let java_date = date.strip_suffix(':').is_some_and(|date| {
                    let words: Vec<&str> = date.split(' ').collect();
                    words.len() == 6 && words[3].len() == 8 && words[5].len() == 4
                });
                let ok = count.parse::<u32>().is_ok() && java_date;
                return (!ok).then(|| format!("bad expiry line: {line}"));
            }
            if let Some((kind, counts)) = line.split_once(" Sets (") {
                // The bucket count depends on where the clock falls; the element count does not.
                let elements = counts.rsplit_once("/(").map_or("?", |(_, n)| n);
                return Some(format!("{kind} Sets (#)/({elements}"));
            }
            if let Some((address, session)) = line.split_once(" sessionId: ") {
                let address = address.split(':').next().unwrap_or(address);
                let session = if session == "0x0" { "0x0" } else { "0x#" };
                return Some(format!("{address}:# sessionId: {session}"));
            }
            if let Some(rest) = line
                .strip_prefix("0x")
                .or_else(|| line.strip_prefix("\t0x"))
            {
                let suffix = rest
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .map_or("", |i| &rest[i..]);
                let tab = if line.starts_with('\t') { "\t" } else { "" };
                return Some(format!("{tab}0x#{suffix}"));
            }
            Some(line.to_string())
        })
        .collect();
    shape.sort();
    shape
}

/// The `cons` line of session `sid` (`0x...`) and its `key=value` fields, in order.
fn session_cons_line(port: u16, sid: &str) -> (String, Vec<(String, String)>) {
    let cons = four_letter(port, "cons");
    let line = cons
        .lines()
        .find(|line| line.contains(&format!("sid={sid},")) || line.contains(&format!("sid={sid})")))
        .unwrap_or_else(|| panic!("cons has no line for session {sid}: {cons:?}"))
        .to_string();
    let inside = line
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("cons line without (fields): {line:?}"));
    let pairs = inside
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    (line, pairs)
}

/// What [`listings_match_zookeeper`] compares, from one server.
struct Listings {
    session: String,
    wchs: String,
    /// The shape of `dump` (see [`dump_shape`]).
    dump_shape: Vec<String>,
    /// The session's `sent=` once a watch notification reached it (after `crst`).
    sent_after_notification: Option<String>,
    /// `srvr`'s Received and Sent after `srst` and one `srvr`.
    srvr_packets: (Option<String>, Option<String>),
    /// `mntr`'s `zk_watch_count`.
    watch_count: Option<String>,
    /// `envi`'s os.name, os.arch, os.version and user.name.
    environment: Vec<(String, Option<String>)>,
    wchc: Vec<(String, Vec<String>)>,
    wchp: Vec<(String, Vec<String>)>,
    wchc_raw: String,
    wchp_raw: String,
    cons_line: String,
    cons_fields: Vec<String>,
    /// The session's `cons` fields after `crst`, and its line.
    cons_fields_after_crst: Vec<String>,
    cons_line_after_crst: String,
    cons_values: std::collections::HashMap<String, String>,
    conf_keys: Vec<String>,
    conf_server_id: Option<String>,
}

impl Listings {
    fn collect(port: u16) -> Listings {
        let mut session = RawSession::connect(port);
        session.create("/w", b"data");
        session.get_data("/w", true);
        session.exists_missing_with_watch("/nope");
        session.create_ephemeral("/w/eph", b"x");
        // Child watches, after the ephemeral (which would fire the one on /w): on /w, which
        // also has a data watch, and on /, which has none.
        session.get_children("/w", true);
        session.get_children("/", true);
        let sid = format!("0x{:x}", session.session_id);
        let wchc_raw = four_letter(port, "wchc");
        let wchp_raw = four_letter(port, "wchp");
        let wchs = four_letter(port, "wchs");
        let dump = four_letter(port, "dump");
        let (cons_line, pairs) = session_cons_line(port, &sid);
        // After `crst` the session's line has no request behind its counters.
        assert_eq!(four_letter(port, "crst"), "Connection stats reset.\n");
        let (cons_line_after_crst, pairs_after_crst) = session_cons_line(port, &sid);
        let envi = four_letter(port, "envi");
        // Facts of this host and user, the same for both servers (Java's names for them).
        let environment = ["os.name", "os.arch", "os.version", "user.name"]
            .iter()
            .map(|key| {
                let value = envi
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{key}=")))
                    .map(str::to_string);
                (key.to_string(), value)
            })
            .collect();
        let mntr = four_letter(port, "mntr");
        let watch_count = mntr
            .lines()
            .find_map(|line| line.strip_prefix("zk_watch_count\t"))
            .map(str::to_string);
        // Server-wide packets after a reset: each four-letter word is one packet in, counted
        // before it runs, and one out, counted once written.
        assert_eq!(four_letter(port, "srst"), "Server stats reset.\n");
        four_letter(port, "srvr");
        let srvr = four_letter(port, "srvr");
        let srvr_line = |name: &str| {
            srvr.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_string())
        };
        let srvr_packets = (srvr_line("Received:"), srvr_line("Sent:"));
        let conf = four_letter(port, "conf");
        let conf_pairs: Vec<(&str, &str)> = conf
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        // A notification is a packet out: another session changes /w, whose data watch fires.
        let mut other = RawSession::connect(port);
        other.set_data("/w", b"changed");
        let event = session.next_event(IO_TIMEOUT);
        assert_eq!(event.path, "/w", "the data watch on /w fires");
        let (_, pairs_after_notification) = session_cons_line(port, &sid);
        let sent_after_notification = pairs_after_notification
            .into_iter()
            .find_map(|(key, value)| (key == "sent").then_some(value));
        other.close();
        let listings = Listings {
            sent_after_notification,
            wchs,
            dump_shape: dump_shape(&dump),
            srvr_packets,
            watch_count,
            environment,
            wchc: grouped(&wchc_raw, &sid),
            wchp: grouped(&wchp_raw, &sid),
            wchc_raw,
            wchp_raw,
            cons_fields: pairs.iter().map(|(key, _)| key.clone()).collect(),
            cons_fields_after_crst: pairs_after_crst
                .iter()
                .map(|(key, _)| key.clone())
                .collect(),
            cons_line_after_crst,
            cons_values: pairs.into_iter().collect(),
            cons_line,
            conf_keys: conf_pairs.iter().map(|(key, _)| key.to_string()).collect(),
            conf_server_id: conf_pairs
                .iter()
                .find(|(key, _)| *key == "serverId")
                .map(|(_, value)| value.to_string()),
            session: sid,
        };
        session.close();
        listings
    }

    /// What is wrong with these listings, as messages (empty when all is right).
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // wchs, wchc and wchp report ZooKeeper's data table: the getChildren watches are
        // not in them. mntr's watch count adds both tables.
        if self.wchs != "1 connections watching 2 paths\nTotal watches:2\n" {
            problems.push(format!("wchs: {:?}", self.wchs));
        }
        if self.watch_count.as_deref() != Some("4") {
            problems.push(format!(
                "mntr zk_watch_count should count 2 data and 2 child watches: {:?}",
                self.watch_count
            ));
        }
        let session = "<session>".to_string();
        if self.wchc != vec![(session.clone(), vec!["/nope".to_string(), "/w".to_string()])] {
            problems.push(format!(
                "wchc (watches by session) should be the session id, then its two paths tab-indented; got {:?}",
                self.wchc_raw
            ));
        }
        if self.wchp
            != vec![
                ("/nope".to_string(), vec![session.clone()]),
                ("/w".to_string(), vec![session]),
            ]
        {
            problems.push(format!(
                "wchp (watches by path) should be each path, then its session tab-indented; got {:?}",
                self.wchp_raw
            ));
        }
        let value = |key: &str| self.cons_values.get(key).map(String::as_str);
        if value("sid") != Some(self.session.as_str()) {
            problems.push(format!(
                "cons: sid should be {}: {}",
                self.session, self.cons_line
            ));
        }
        if value("to") != Some("10000") {
            problems.push(format!(
                "cons: to= should be the negotiated timeout 10000: {}",
                self.cons_line
            ));
        }
        for counter in ["recved", "sent"] {
            let count: u64 = value(counter).and_then(|v| v.parse().ok()).unwrap_or(0);
            if count < 4 {
                problems.push(format!(
                    "cons: {counter}= should count the session's packets (at least 4): {}",
                    self.cons_line
                ));
            }
        }
        if !self.conf_keys.starts_with(&[
            "clientPort".to_string(),
            "secureClientPort".to_string(),
            "dataDir".to_string(),
        ]) {
            problems.push(format!("conf keys: {:?}", self.conf_keys));
        }
        problems
    }
}

/// A `wchc`/`wchp` reply as sorted (key, sorted values) pairs: keys on their own lines, values on the
/// following tab-indented lines; the session id `sid` becomes `<session>`.
fn grouped(reply: &str, sid: &str) -> Vec<(String, Vec<String>)> {
    let mask = |text: &str| {
        if text == sid {
            "<session>".to_string()
        } else {
            text.to_string()
        }
    };
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in reply.lines() {
        if let Some(value) = line.strip_prefix('\t') {
            match groups.last_mut() {
                Some((_, values)) => values.push(mask(value.trim())),
                None => groups.push((String::new(), vec![mask(value.trim())])),
            }
        } else if !line.trim().is_empty() {
            groups.push((mask(line.trim()), Vec::new()));
        }
    }
    for (_, values) in &mut groups {
        values.sort();
    }
    groups.sort();
    groups
}

// ---------------------------------------------------------------------------------------------------------
// Reply checks shared by rzk and the reference
// ---------------------------------------------------------------------------------------------------------

fn check_replies(server_name: &str, port: u16) {
    assert_eq!(four_letter(port, "ruok"), "imok", "{server_name}: ruok");
    assert_eq!(four_letter(port, "isro"), "rw", "{server_name}: isro");

    let srvr = four_letter(port, "srvr");
    assert!(
        srvr.starts_with("Zookeeper version: "),
        "{server_name}: srvr: {srvr:?}"
    );
    assert!(
        srvr.lines().any(|line| line == "Mode: standalone"),
        "{server_name}: srvr: {srvr:?}"
    );
    let nodes_before = srvr_node_count(&srvr);

    let envi = four_letter(port, "envi");
    assert!(
        envi.starts_with("Environment:\n"),
        "{server_name}: envi: {envi:?}"
    );
    assert!(
        envi.lines()
            .any(|line| line.starts_with("zookeeper.version=") && line.len() > 18),
        "{server_name}: envi: {envi:?}"
    );

    let mntr = four_letter(port, "mntr");
    assert_eq!(
        mntr_value(&mntr, "zk_server_state").as_deref(),
        Some("standalone"),
        "{server_name}: mntr: {mntr:?}"
    );
    assert!(
        mntr_value(&mntr, "zk_version").is_some(),
        "{server_name}: mntr: {mntr:?}"
    );
    let znodes_before = mntr_count(&mntr, "zk_znode_count");
    assert_eq!(
        znodes_before, nodes_before,
        "{server_name}: mntr's zk_znode_count and srvr's Node count"
    );

    let mut session = RawSession::connect(port);
    session.create("/counted", b"x");
    let mntr = four_letter(port, "mntr");
    assert_eq!(
        mntr_count(&mntr, "zk_znode_count"),
        znodes_before + 1,
        "{server_name}: zk_znode_count after one create: {mntr:?}"
    );
    assert_eq!(
        srvr_node_count(&four_letter(port, "srvr")),
        nodes_before + 1,
        "{server_name}: srvr Node count after one create"
    );
    session.close();
}

fn srvr_node_count(srvr: &str) -> u64 {
    srvr.lines()
        .find_map(|line| line.strip_prefix("Node count: "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("srvr without a numeric Node count line: {srvr:?}"))
}

/// The value of `key` in a `mntr` reply (`zk_<key>\t<value>` lines).
fn mntr_value(mntr: &str, key: &str) -> Option<String> {
    mntr.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('\t'))
        .map(str::to_string)
}

fn mntr_count(mntr: &str, key: &str) -> u64 {
    mntr_value(mntr, key)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("mntr without a numeric {key}: {mntr:?}"))
}

// ---------------------------------------------------------------------------------------------------------
// rzk with a zoo.cfg that has no 4lw line (the harness always writes `4lw.commands.whitelist=*`)
// ---------------------------------------------------------------------------------------------------------

struct DefaultWhitelistRzk {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl DefaultWhitelistRzk {
    /// Starts `rzk server` on a free port and waits (bounded) until `srvr`, whitelisted by default, answers
    /// with a Mode line. Retries on a new port if the chosen one was taken meanwhile.
    fn start() -> DefaultWhitelistRzk {
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let port = free_port();
            let config = dir.path().join("zoo.cfg");
            fs::write(
                &config,
                format!(
                    "tickTime=2000\ndataDir={}\nclientPort={port}\nadmin.enableServer=false\nmaxClientCnxns=0\n",
                    dir.path().join("data").display()
                ),
            )
            .expect("write zoo.cfg");
            let log = fs::File::create(dir.path().join("server.log")).expect("server.log");
            let child = Command::new(rzk_binary())
                .arg("server")
                .arg(&config)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log"))
                .stderr(log)
                .spawn()
                .expect("start rzk server");
            let mut server = DefaultWhitelistRzk { port, child, dir };
            let deadline = Instant::now() + support::READY_TIMEOUT;
            loop {
                if let Ok(Some(status)) = server.child.try_wait() {
                    let log = fs::read_to_string(server.dir.path().join("server.log"))
                        .unwrap_or_default();
                    if log.contains("Address already in use") || log.contains("AddrInUse") {
                        break; // next attempt, new port
                    }
                    panic!("rzk server exited with {status} before it was ready:\n{log}");
                }
                if let Ok(reply) = try_four_letter(port, "srvr", Duration::from_secs(2)) {
                    if srvr_mode(&reply).is_some() {
                        return server;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "rzk server with the default whitelist did not answer srvr within {:?}",
                    support::READY_TIMEOUT
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("rzk server: no free port after 3 attempts");
    }
}

impl Drop for DefaultWhitelistRzk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------------
// A minimal ZooKeeper session over the wire (jute), enough to keep a session busy next to 4lw connections
// ---------------------------------------------------------------------------------------------------------

const OP_CREATE: i32 = 1;
const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_GET_CHILDREN: i32 = 8;
const OP_PING: i32 = 11;
const OP_CLOSE_SESSION: i32 = -11;
const XID_WATCH_EVENT: i32 = -1;
const XID_PING: i32 = -2;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
struct WatchEvent {
    kind: i32,
    state: i32,
    path: String,
}

struct RawSession {
    stream: TcpStream,
    session_id: i64,
    next_xid: i32,
    events: Vec<WatchEvent>,
}

#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn int(mut self, value: i32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn long(mut self, value: i64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn bool(mut self, value: bool) -> Self {
        self.0.push(u8::from(value));
        self
    }
    fn buffer(self, bytes: &[u8]) -> Self {
        let mut this = self.int(i32::try_from(bytes.len()).expect("short buffer"));
        this.0.extend_from_slice(bytes);
        this
    }
    fn string(self, text: &str) -> Self {
        self.buffer(text.as_bytes())
    }
    /// `world:anyone` with all permissions, the only ACL these tests need.
    fn open_acl(self) -> Self {
        self.int(1).int(31).string("world").string("anyone")
    }
}

struct Decoder<'a>(&'a [u8]);

impl Decoder<'_> {
    fn take(&mut self, count: usize) -> &[u8] {
        assert!(
            self.0.len() >= count,
            "reply too short: wanted {count} more bytes, have {}",
            self.0.len()
        );
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        head
    }
    fn int(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn long(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn buffer(&mut self) -> Vec<u8> {
        let length = self.int();
        if length < 0 {
            return Vec::new();
        }
        self.take(length as usize).to_vec()
    }
    fn string(&mut self) -> String {
        String::from_utf8(self.buffer()).expect("UTF-8 string")
    }
}

struct Reply {
    zxid: i64,
    err: i32,
    body: Vec<u8>,
}

impl RawSession {
    fn connect(port: u16) -> RawSession {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)
            .unwrap_or_else(|error| panic!("connect to {address}: {error}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut session = RawSession {
            stream,
            session_id: 0,
            next_xid: 1,
            events: Vec::new(),
        };
        // ConnectRequest{protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly}.
        let request = Encoder::default()
            .int(0)
            .long(0)
            .int(10_000)
            .long(0)
            .buffer(&[0; 16])
            .bool(false);
        session.write_frame(&request.0);
        let frame = session
            .read_frame()
            .unwrap_or_else(|error| panic!("ConnectResponse: {error}"));
        let mut reply = Decoder(&frame);
        let _protocol_version = reply.int();
        let timeout = reply.int();
        session.session_id = reply.long();
        assert!(
            timeout > 0 && session.session_id != 0,
            "session refused: timeout {timeout}, id {:#x}",
            session.session_id
        );
        session
    }

    fn write_frame(&mut self, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).expect("write to the server");
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length)?;
        let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(body)
    }

    fn send(&mut self, op: i32, body: Encoder) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut request = Encoder::default().int(xid).int(op);
        request.0.extend_from_slice(&body.0);
        self.write_frame(&request.0);
        xid
    }

    /// Reads frames until the reply with `xid`; watch events met on the way are queued. A reply with another
    /// xid means the server broke the session's FIFO order.
    fn reply(&mut self, xid: i32, what: &str) -> Reply {
        loop {
            let frame = self
                .read_frame()
                .unwrap_or_else(|error| panic!("{what}: no reply: {error}"));
            let mut decoder = Decoder(&frame);
            let (got_xid, zxid, err) = (decoder.int(), decoder.long(), decoder.int());
            if got_xid == XID_WATCH_EVENT {
                let (kind, state, path) = (decoder.int(), decoder.int(), decoder.string());
                self.events.push(WatchEvent { kind, state, path });
                continue;
            }
            assert_eq!(
                got_xid, xid,
                "{what}: reply for xid {got_xid} while waiting for {xid}"
            );
            return Reply {
                zxid,
                err,
                body: decoder.0.to_vec(),
            };
        }
    }

    /// The reply to `xid` must be a success.
    fn expect_reply(&mut self, xid: i32, what: &str) -> Reply {
        let reply = self.reply(xid, what);
        assert_eq!(reply.err, 0, "{what}: error {}", reply.err);
        reply
    }

    fn send_create(&mut self, path: &str, data: &[u8]) -> i32 {
        let body = Encoder::default()
            .string(path)
            .buffer(data)
            .open_acl()
            .int(0);
        self.send(OP_CREATE, body)
    }

    fn create(&mut self, path: &str, data: &[u8]) {
        self.create_with_flags(path, data, 0);
    }

    fn create_ephemeral(&mut self, path: &str, data: &[u8]) {
        self.create_with_flags(path, data, 1);
    }

    fn create_with_flags(&mut self, path: &str, data: &[u8], flags: i32) {
        let body = Encoder::default()
            .string(path)
            .buffer(data)
            .open_acl()
            .int(flags);
        let xid = self.send(OP_CREATE, body);
        let reply = self.expect_reply(xid, &format!("create {path}"));
        assert_eq!(Decoder(&reply.body).string(), path, "created path");
        assert!(reply.zxid > 0, "create {path}: reply zxid {}", reply.zxid);
    }

    /// exists with a watch on a missing node: NoNode (-101), and the watch stays set.
    fn exists_missing_with_watch(&mut self, path: &str) {
        let xid = self.send(OP_EXISTS, Encoder::default().string(path).bool(true));
        let reply = self.reply(xid, &format!("exists {path}"));
        assert_eq!(reply.err, -101, "exists {path} on a missing node");
    }

    fn get_data(&mut self, path: &str, watch: bool) -> Vec<u8> {
        let xid = self.send(OP_GET_DATA, Encoder::default().string(path).bool(watch));
        let reply = self.expect_reply(xid, &format!("getData {path}"));
        Decoder(&reply.body).buffer()
    }

    fn set_data(&mut self, path: &str, data: &[u8]) {
        let body = Encoder::default().string(path).buffer(data).int(-1);
        let xid = self.send(OP_SET_DATA, body);
        self.expect_reply(xid, &format!("setData {path}"));
    }

    fn get_children(&mut self, path: &str, watch: bool) -> Vec<String> {
        let xid = self.send(OP_GET_CHILDREN, Encoder::default().string(path).bool(watch));
        let reply = self.expect_reply(xid, &format!("getChildren {path}"));
        let mut decoder = Decoder(&reply.body);
        let count = decoder.int();
        (0..count).map(|_| decoder.string()).collect()
    }

    fn ping(&mut self) {
        let request = Encoder::default().int(XID_PING).int(OP_PING);
        self.write_frame(&request.0);
        self.expect_reply(XID_PING, "ping");
    }

    /// The next watch event (queued or read within `timeout`).
    fn next_event(&mut self, timeout: Duration) -> WatchEvent {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        let frame = self
            .read_frame()
            .unwrap_or_else(|error| panic!("no watch event within {timeout:?}: {error}"));
        self.stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("timeout");
        let mut decoder = Decoder(&frame);
        let (xid, _zxid, _err) = (decoder.int(), decoder.long(), decoder.int());
        assert_eq!(
            xid, XID_WATCH_EVENT,
            "expected a watch event, got xid {xid}"
        );
        WatchEvent {
            kind: decoder.int(),
            state: decoder.int(),
            path: decoder.string(),
        }
    }

    fn close(mut self) {
        let xid = self.send(OP_CLOSE_SESSION, Encoder::default());
        self.expect_reply(xid, "closeSession");
    }
}
