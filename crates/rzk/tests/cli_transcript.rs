//! `rzk cli` against Debian's zkCli.sh 3.8.0: the same transcript through both, each against
//! its own fresh Apache ZooKeeper 3.8.0 (and again each against its own rzk server), compared
//! stream by stream after normalising what must differ (zxids, times, sequence numbers, JVM
//! noise, the version string, the server address).
//!
//! Transcripts: [`TRANSCRIPT`] (the tutorial), [`EVERY_COMMAND`] (every command and option
//! with their error lines), [`QUOTAS`] (quotas and reconfig), [`FAILED_AUTH`]; one-shot runs
//! compare exit codes too.
//!
//! The CLI is driven through `cli::run_with` (the module compiled into this test), because
//! the binary's `cli` subcommand is wired by the lead in main.rs.

#[path = "../../rzk-client/tests/reference_zk/mod.rs"]
mod reference_zk;

mod support;

#[allow(dead_code)]
#[path = "../src/cli/mod.rs"]
mod cli;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use reference_zk::{ReferenceZk, ZKCLI};

const TRANSCRIPT: &str = "\
create /java spring
ls /
get /java
set /java mybatis
stat /java
get -s /java
create -e /e x
create -s /s- d
create /java again
get /nope
create /p
create /p/c
delete /p
set -v 5 /java x
ls -s /p
getAcl /
ls -R /
get -w /java
set /java watched
ls -w /p
create /p/d
stat /p extra
addauth digest u:p
whoami
create /acl x digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa
getAcl /acl
create /acl2 x world:anyone:r
set /acl2 y
setAcl /acl2 bogus
getEphemerals /
getAllChildrenNumber /p
sync /p
bogus
ls
create relative
get /a/
ls -x /
create -c -s /x
history
printwatches off
printwatches
printwatches on
deleteall /p
delete /java
ls /
close
ls /
quit
";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("capture lock")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn zkcli(zk: &ReferenceZk, args: &[&str], stdin: &str) -> Run {
    zkcli_at(&zk.address(), args, stdin)
}

fn zkcli_at(address: &str, args: &[&str], stdin: &str) -> Run {
    run_feeding(
        Command::new(ZKCLI).args(["-server", address]).args(args),
        stdin,
    )
}

/// The real `rzk cli` binary, as `zkCli.sh` users run it through bin/zkCli.sh.
fn rzk_cli_binary_at(address: &str, args: &[&str], stdin: &str) -> Run {
    run_feeding(
        Command::new(env!("CARGO_BIN_EXE_rzk"))
            .args(["cli", "-server", address])
            .args(args),
        stdin,
    )
}

fn run_feeding(command: &mut Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the CLI");
    child
        .stdin
        .take()
        .expect("CLI stdin")
        .write_all(stdin.as_bytes())
        .expect("feeding the CLI");
    let output = child.wait_with_output().expect("waiting for the CLI");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

fn rzk_cli(zk: &ReferenceZk, args: &[&str], stdin: &str) -> Run {
    let words: Vec<String> = ["-server", &zk.address()]
        .iter()
        .chain(args)
        .map(|word| word.to_string())
        .collect();
    let (out, err) = (Captured::default(), Captured::default());
    let code = cli::run_with(
        &words,
        std::io::Cursor::new(stdin.as_bytes().to_vec()),
        false,
        out.clone(),
        err.clone(),
    );
    Run {
        stdout: out.text(),
        stderr: err.text(),
        code,
    }
}

/// Replace what legitimately differs between two runs.
fn normalise(text: &str) -> String {
    let (text, events) = support::lift_zkcli_events(text);
    let mut lines = Vec::new();
    for line in text.lines().chain(events.iter().map(String::as_str)) {
        if line.starts_with("SLF4J:") {
            continue;
        }
        let line = if line.starts_with("Connecting to ") {
            "Connecting to <address>".to_owned()
        } else if let Some(version) = line.strip_prefix("ZooKeeper CLI version: ") {
            // `version`: the version string is rzk's own, but a 3.x one, as scripts expect.
            assert!(version.starts_with("3."), "not a 3.x version: {line:?}");
            "ZooKeeper CLI version: <version>".to_owned()
        } else if line.starts_with("ctime = ") || line.starts_with("mtime = ") {
            assert_java_date(&line[8..]);
            format!("{}<date>", &line[..8])
        } else {
            line.to_owned()
        };
        lines.push(mask_numbers(&line));
    }
    support::events_apart(lines).join("\n")
}

/// `0x<hex>` → `0x?`, and 10-digit sequence suffixes → `<seq>`.
fn mask_numbers(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '0' && chars.get(i + 1) == Some(&'x') {
            out.push_str("0x?");
            i += 2;
            while i < chars.len() && chars[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 10 {
            out.push_str("<seq>");
            i += digits;
            continue;
        }
        out.extend(&chars[i..i + digits.max(1)]);
        i += digits.max(1);
    }
    out
}

fn without_connect_event(text: &str) -> String {
    text.lines()
        .filter(|line| !line.contains("WatchedEvent state:SyncConnected type:None path:null"))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn assert_java_date(text: &str) {
    let parts: Vec<&str> = text.split(' ').collect();
    assert_eq!(parts.len(), 6, "not a Java Date.toString: {text:?}");
    assert!(
        ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&parts[0]),
        "{text:?}"
    );
    assert_eq!(parts[3].len(), 8, "{text:?}");
}

fn assert_same(what: &str, reference: &str, ours: &str) {
    let (reference, mut ours) = (normalise(reference), normalise(ours));
    // zkCli's `quit` closes the session and calls System.exit, which can overtake the event
    // thread: its last `Closed` event is sometimes not printed (1 run in 6 of the whole file
    // here, under load). rzk cli always prints it; one more of them on our side is that race.
    const CLOSED: &str = "WatchedEvent state:Closed type:None path:null";
    let closed = |text: &str| text.lines().filter(|line| *line == CLOSED).count();
    if closed(&ours) == closed(&reference) + 1 {
        let mut lines: Vec<&str> = ours.lines().collect();
        if let Some(last) = lines.iter().rposition(|line| *line == CLOSED) {
            lines.remove(last);
        }
        ours = lines.join("\n");
    }
    if reference != ours {
        let mut report = String::new();
        for (index, (a, b)) in reference.lines().zip(ours.lines()).enumerate() {
            if a != b {
                report.push_str(&format!(
                    "first difference at line {}:\n  zkCli: {a:?}\n  rzk:   {b:?}\n",
                    index + 1
                ));
                break;
            }
        }
        panic!(
            "{what} differs from zkCli.sh.\n{report}--- zkCli ({} lines)\n{reference}\n--- rzk ({} lines)\n{ours}",
            reference.lines().count(),
            ours.lines().count()
        );
    }
}

fn reference_present() -> bool {
    reference_zk::require(ZKCLI, std::path::Path::new(ZKCLI).exists()).is_some()
}

#[test]
fn tutorial_transcript_matches_zkcli() {
    if !reference_present() {
        return;
    }
    let Some(zk_for_java) = ReferenceZk::start() else {
        return;
    };
    let Some(zk_for_rzk) = ReferenceZk::start() else {
        return;
    };
    let reference = zkcli(&zk_for_java, &[], TRANSCRIPT);
    let ours = rzk_cli(&zk_for_rzk, &[], TRANSCRIPT);
    assert_same("stdout", &reference.stdout, &ours.stdout);
    assert_same("stderr", &reference.stderr, &ours.stderr);
    assert_eq!(reference.code, ours.code, "exit code after quit");
}

#[test]
fn one_shot_commands_match_zkcli_output_and_exit_codes() {
    if !reference_present() {
        return;
    }
    let Some(zk) = ReferenceZk::start() else {
        return;
    };
    let setup = rzk_cli(&zk, &["create", "/java", "spring"], "");
    assert_eq!(setup.code, 0, "create /java: {}", setup.stderr);
    // (command, exit code, whether it sends a request). Every command leaves the tree as it
    // found it, so zkCli and rzk cli can take turns on one server.
    for (command, expected_code, sends_request) in [
        (&["get", "/java"][..], 0, true),
        (&["get", "-s", "/java"][..], 0, true),
        (&["get", "/nope"][..], 1, true),
        (&["create", "/java", "x"][..], 1, true),
        (&["bogus"][..], 127, false),
        (&["ls"][..], 1, false),
        (&["ls", "/"][..], 0, true),
        (&["ls", "-R", "/"][..], 0, true),
        (&["set", "-v", "9", "/java", "x"][..], 1, true),
        (&["delete", "-v", "9", "/java"][..], 1, true),
        (&["delete", "/"][..], 1, true),
        (&["stat", "/nope"][..], 1, true),
        (&["removewatches", "/java"][..], 1, true),
        (&["addWatch", "-m", "BOGUS", "/java"][..], 1, false),
        (&["sync", "/java"][..], 0, true),
        (&["whoami"][..], 0, true),
        (&["getEphemerals", "/"][..], 0, true),
        (&["config"][..], 0, true),
        (&["listquota", "/nope"][..], 0, true),
        (&["setquota", "-n", "0", "/java"][..], 0, false),
        (&["delquota", "/nope"][..], 0, true),
        (&["reconfig", "-add", "2=127.0.0.1:1:2;3"][..], 1, true),
        (&["reconfig", "-x"][..], 1, false),
        (&["version"][..], 0, false),
        (&["redo", "0"][..], 1, false),
        // Extended types are off on this server: a TTL node is refused.
        (&["create", "-t", "100", "/ttl"][..], 1, true),
    ] {
        let mut reference = zkcli(&zk, command, "");
        let mut ours = rzk_cli(&zk, command, "");
        let what = command.join(" ");
        if !sends_request {
            // A command that sends no request can end zkCli's JVM before its event thread
            // prints the connect event: that line is a race in zkCli, not a contract.
            reference.stdout = without_connect_event(&reference.stdout);
            ours.stdout = without_connect_event(&ours.stdout);
        }
        assert_eq!(reference.code, expected_code, "zkCli exit code of {what}");
        assert_eq!(
            ours.code, expected_code,
            "rzk cli exit code of {what}: {}",
            ours.stderr
        );
        assert_same(
            &format!("stdout of {what}"),
            &reference.stdout,
            &ours.stdout,
        );
        assert_same(
            &format!("stderr of {what}"),
            &reference.stderr,
            &ours.stderr,
        );
    }
}

/// The same transcript against rzk servers: Debian's zkCli.sh against one fresh `rzk server`,
/// the `rzk cli` binary against another; the outputs must be the same (zxids and times aside).
#[test]
fn tutorial_transcript_matches_zkcli_against_rzk_servers() {
    if !reference_present() {
        return;
    }
    let for_java = support::RzkServer::start(&[]);
    let for_rzk = support::RzkServer::start(&[]);
    let reference = zkcli_at(&for_java.connect_string(), &[], TRANSCRIPT);
    let ours = rzk_cli_binary_at(&for_rzk.connect_string(), &[], TRANSCRIPT);
    assert_same("stdout", &reference.stdout, &ours.stdout);
    assert_same("stderr", &reference.stderr, &ours.stderr);
    assert_eq!(reference.code, ours.code, "exit code after quit");
}

/// zkCli prints a watch event from its event thread as two separate lines ("WATCHER::", then
/// the event, each after a blank line), so under load they interleave with the main thread's
/// output. Compare the events as a multiset, after the other lines: blank and "WATCHER::"
/// lines are dropped, and the event lines move to the end, sorted.
/// Every zkCli command and option, with their error lines, in one session (then a second one
/// after `connect`). `{server}` is replaced by the address of the server the CLI talks to.
/// `redo N` refers to the line numbers of this text, counting from 0.
///
/// zkCli prints events from its event thread and reads `printwatches` when it prints one, so
/// the event `set /a quiet` causes must be handled before `printwatches on`: a few commands
/// (several round trips) stand between them. Likewise nothing that causes an event stands
/// right before `quit`, whose `System.exit` can overtake the event thread.
const EVERY_COMMAND: &str = "\
create /a data
create -c /cont
create /cont/kid
create -t 60000 /ttl t
create -s -t 60000 /ttls- t
create -t 0 /ttl0
create -t x /ttlx
create -e -t 10 /et
create -c -t 10 /ct
create -c -e /ce
create -t
set -s /a d2
set -v 1 /a d3
set -v 9 /a d4
set /a
set -x /a d
stat -w /a
set /a d5
stat -w /missing
create /missing
delete -v 9 /a
delete -v 0 /missing
delete /nope
delete /cont
delete -v
getAcl -s /a
getAcl /nope
setAcl -s /a world:anyone:cdrwa
setAcl -v 9 /a world:anyone:cdrwa
setAcl -v 1 /a world:anyone:cdrw
create /tree
create /tree/x
create /tree/x/y
create /tree/z
setAcl -R /tree world:anyone:cdra
getAcl /tree/x/y
set /tree/x/y v
create /ro x world:anyone:r
setAcl -R /ro world:anyone:cdrwa
getAcl -s /ro
set /ro y
create /ro2
create /ro2/k x world:anyone:r
setAcl -R /ro2 world:anyone:cdrwa
getAcl /ro2
setAcl /nope world:anyone:r
setAcl /a
addauth digest u:p
whoami
addWatch /r
create /r
create /r/s
set /r/s v
delete /r/s
addWatch -m PERSISTENT /a
set /a p1
set /a p2
create /a/c
addWatch -m BOGUS /r2
addWatch /r2
create /r2
create /r2/s
addWatch -m persistent_recursive /r3 extra
addWatch /r3
create /r3
create /r3/s
addWatch -m persistent_recursive /r3
create /r3/s/t
removewatches /a -c
removewatches /a -a
removewatches /a
get -w /tree/z
removewatches /tree/z -d
ls -w /tree
removewatches /tree -c
stat -w /tree/x
ls -w /tree/x
removewatches /tree/x -a
removewatches /tree/x -l
removewatches /tree -x
ls -R /tree
ls -R /nope
ls -s /tree
ls -s -w /tree
get -w /a
create -e /eph1
create -e -s /eph2-
getEphemerals
getEphemerals /eph
getAllChildrenNumber /tree
getAllChildrenNumber /nope
sync /a
sync /nope
config
config -s
version
history
redo 22
redo 0
redo 97
redo 999
redo 100
history
printwatches off
set /a quiet
printwatches
get /a
ls -R /tree
getAllChildrenNumber /
printwatches on
get -w /a
close
ls /
connect {server}
ls /
getEphemerals
deleteall /ro
deleteall /nope
deleteall /a -b x
setAcl -R /tree world:anyone:crwa
deleteall -b 1 /tree
setAcl -R /tree world:anyone:cdrwa
getAcl /tree/z
deleteall -b 1 /tree
deleteall /r3
create /multi x world:anyone:r,digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa,ip:127.0.0.1:rw
getAcl /multi
setAcl /multi ip:127.0.0.1:cdrwa,world:anyone:r
getAcl -s /multi
set /multi 'two words'
get /multi
set /multi \"double quoted\" ignored
get -s -w /multi
create /badacl x bogus:acl
create /badperm x world:anyone:xyz
create /noperm x world:anyone:
create -e /e2
delete /e2
ls -s -R /tree
ls -R -w /multi
set /multi changed
set /a loud
ls /
quit
";

/// Runs `transcript` through zkCli.sh against `for_java` and through the `rzk cli` binary
/// against `for_rzk` (two servers of the same kind, fresh) and compares the outputs.
fn assert_transcript_same(transcript: &str, for_java: &str, for_rzk: &str) {
    let reference = zkcli_at(for_java, &[], &transcript.replace("{server}", for_java));
    let ours = rzk_cli_binary_at(for_rzk, &[], &transcript.replace("{server}", for_rzk));
    // `connect {server}` and `history` show the address, which differs between the runs.
    let mask = |text: &str, address: &str| text.replace(address, "{server}");
    assert_same(
        "stdout",
        &mask(&reference.stdout, for_java),
        &mask(&ours.stdout, for_rzk),
    );
    assert_same(
        "stderr",
        &mask(&reference.stderr, for_java),
        &mask(&ours.stderr, for_rzk),
    );
    assert_eq!(reference.code, ours.code, "exit code after quit");
}

/// zkCli.sh against Apache ZooKeeper 3.8.0 (extended types on, for `create -t`), and `rzk cli`
/// against another such server: [`EVERY_COMMAND`] gives the same output.
#[test]
fn every_command_matches_zkcli() {
    if support::skip_without_reference("every_command_matches_zkcli") {
        return;
    }
    let extended = ["-Dzookeeper.extendedTypesEnabled=true"];
    let for_java = support::RefZk::start_with(&[], &extended);
    let for_rzk = support::RefZk::start_with(&[], &extended);
    assert_transcript_same(
        EVERY_COMMAND,
        &for_java.connect_string(),
        &for_rzk.connect_string(),
    );
}

/// [`EVERY_COMMAND`] against rzk servers: zkCli.sh against one, the `rzk cli` binary against
/// another. None of the deliberate differences from ZooKeeper 3.8.0 (README) shows in this
/// transcript: `removewatches` sends only the Children/Data/Any types, no other session
/// watches, and every `exists` is on a readable node. One server difference does show, and
/// both CLIs print it as the server answers: `getEphemerals` lists in an unspecified order
/// (ZooKeeper's comes from a HashSet, rzk's is sorted), so this compares rzk with rzk.
#[test]
fn every_command_matches_zkcli_against_rzk_servers() {
    if support::skip_without_reference("every_command_matches_zkcli_against_rzk_servers") {
        return;
    }
    let for_java = support::RzkServer::start(&["extendedTypesEnabled=true"]);
    let for_rzk = support::RzkServer::start(&["extendedTypesEnabled=true"]);
    assert_transcript_same(
        EVERY_COMMAND,
        &for_java.connect_string(),
        &for_rzk.connect_string(),
    );
}

/// The quota commands, with their checks and messages, then `reconfig`'s (against a standalone
/// server: ZooKeeper says "Reconfig is disabled", rzk "Unimplemented", README). ZooKeeper keeps `zookeeper_stats` up
/// to date (so `listquota` and the `[Warning]` lines show real counts); rzk does not read or
/// enforce quotas (README), so each test compares the CLIs against like servers.
const QUOTAS: &str = "\
create /q
create /q/c data
create /q/c/d
setquota -n 10 /q
listquota /q
setquota -b 100 /q
setquota -N 5 /q
setquota -B 50 /q
listquota /q
setquota -n 1 /q
setquota -B 1 /q
setquota -n 1 -b 2 /q
setquota -n 5 -n 6 /q
setquota -n 0 /q
setquota -b -1 /q
setquota -N 0 /q
setquota -B -1 /q
setquota -n x /q
setquota -b 99999999999 /q
setquota -n 99999999999 /q
setquota /q
setquota -n 5
setquota -x 5 /q
setquota -n 5 /q/c
setquota -n 5 /q/c/d
setquota -n 5 /
setquota -n 5 q
setquota -n 5 /nope
setquota -n 5 /zookeeper/quota/q
setquota -n 5 /zookeeper/quotax
listquota /nope
listquota /
listquota q
listquota
listquota -x /q
ls -R /zookeeper/quota
get /zookeeper/quota/q/zookeeper_limits
delquota -n /q
listquota /q
delquota -b /q
delquota -N /q
delquota -B /q
listquota /q
delquota -n -b /q
delquota -x /q
delquota
delquota /q
ls -R /zookeeper/quota
create /q/e
setquota -n 3 /q/c/d
setquota -n 2 /q/e
setquota -n 3 /q
setquota -b 7 /q/c
ls -R /zookeeper/quota
delquota /q/c/d
ls -R /zookeeper/quota
setquota -b 7 /q/c
delquota /q/c
delquota /q/c
delquota /nope
delquota /
ls -R /zookeeper/quota
reconfig
reconfig -s
reconfig -add 2=127.0.0.1:1:2;3
reconfig -remove 3
reconfig -members 1=127.0.0.1:1:2;3
reconfig -s -v 100000000 -add 2=127.0.0.1:1:2;3
reconfig -add 2=x -members 1=y
reconfig -remove 2 -file /nonexistent/dynamic.cfg
reconfig -file /nonexistent/dynamic.cfg -members 1=y
reconfig -file /nonexistent/dynamic.cfg
reconfig -v zz -add 2=x
reconfig -add
reconfig -v -add 2=x
reconfig -x
quit
";

#[test]
fn quota_commands_match_zkcli() {
    if support::skip_without_reference("quota_commands_match_zkcli") {
        return;
    }
    let for_java = support::RefZk::start();
    let for_rzk = support::RefZk::start();
    assert_transcript_same(
        QUOTAS,
        &for_java.connect_string(),
        &for_rzk.connect_string(),
    );
}

/// [`QUOTAS`] against rzk servers: both CLIs write and read the same quota nodes; the stats
/// node keeps what the CLI wrote (rzk does not count), so no `[Warning]` line shows.
#[test]
fn quota_commands_match_zkcli_against_rzk_servers() {
    if support::skip_without_reference("quota_commands_match_zkcli_against_rzk_servers") {
        return;
    }
    let for_java = support::RzkServer::start(&[]);
    let for_rzk = support::RzkServer::start(&[]);
    assert_transcript_same(
        QUOTAS,
        &for_java.connect_string(),
        &for_rzk.connect_string(),
    );
}

/// `addauth` with a scheme the server does not know: the server answers AuthFailed and drops
/// the connection. zkCli does not wait for that answer, so the commands right after it find
/// the session alive, the first request fails with AuthFailed, later commands say "Not
/// connected", and no event follows the AuthFailed one (the Java event thread stops there).
const FAILED_AUTH: &str = "\
ls /
addauth foo bar
ls
ls /
ls /
whoami
close
ls /
connect {server}
ls /
whoami
quit
";

/// How many times zkCli may run [`FAILED_AUTH`] until it shows the common outcome (below).
const FAILED_AUTH_ATTEMPTS: usize = 5;

#[test]
fn failed_addauth_matches_zkcli() {
    if support::skip_without_reference("failed_addauth_matches_zkcli") {
        return;
    }
    let zk = support::RefZk::start();
    let address = zk.connect_string();
    let transcript = FAILED_AUTH.replace("{server}", &address);
    // Whether zkCli's `ls /` after `addauth` still finds the session alive is a race between
    // its main thread (reading two lines) and its reply thread (the server's answer); the
    // main thread nearly always wins, and rzk cli behaves as if it did. Rerun zkCli, a
    // bounded number of times, when it lost.
    let mut attempts = Vec::new();
    let reference = loop {
        let run = zkcli_at(&address, &[], &transcript);
        if run.stderr.contains("KeeperErrorCode = AuthFailed for /") {
            break run;
        }
        attempts.push(run.stdout);
        assert!(
            attempts.len() < FAILED_AUTH_ATTEMPTS,
            "zkCli never sent the request after a failed addauth in {FAILED_AUTH_ATTEMPTS} runs; last stdout:\n{}",
            attempts.last().map(String::as_str).unwrap_or_default()
        );
    };
    let ours = rzk_cli_binary_at(&address, &[], &transcript);
    let mask = |text: &str| text.replace(&address, "{server}");
    // How many of the commands after the failure print "Not connected" is a second race in
    // zkCli (its event thread closing the session while the main thread reads on): six runs of
    // this transcript against one quiet ZooKeeper 3.8.0 printed it 4, 5, 4, 4, 4 and 4 times,
    // and earlier runs 3 times. Compare with each run of those lines as one line.
    let one_not_connected = |text: &str| {
        let mut lines: Vec<&str> = Vec::new();
        for line in text.lines() {
            if !(line == "Not connected" && lines.last() == Some(&"Not connected")) {
                lines.push(line);
            }
        }
        lines.join("\n")
    };
    assert_same(
        "stdout",
        &one_not_connected(&mask(&reference.stdout)),
        &one_not_connected(&mask(&ours.stdout)),
    );
    assert_same("stderr", &mask(&reference.stderr), &mask(&ours.stderr));
    assert_eq!(reference.code, ours.code, "exit code after quit");
}

#[test]
fn an_event_printed_inside_a_line_is_lifted_out_of_it() {
    let event = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDeleted path:/a\n";
    let at_line_end = format!("[a]\n{event}[b]\n");
    let inside_line = format!("[a, {event}b]\n");
    let split_apart =
        "[a, \nWATCHER::\nb, \nWatchedEvent state:SyncConnected type:None path:null\nc]\n";
    assert_eq!(
        support::lift_zkcli_events(&at_line_end),
        (
            "[a]\n[b]\n".to_owned(),
            vec!["WatchedEvent state:SyncConnected type:NodeDeleted path:/a".to_owned()]
        )
    );
    assert_eq!(support::lift_zkcli_events(&inside_line).0, "[a, b]\n");
    assert_eq!(
        support::lift_zkcli_events(split_apart),
        (
            "[a, b, c]\n".to_owned(),
            vec!["WatchedEvent state:SyncConnected type:None path:null".to_owned()]
        )
    );
}

/// A server that cannot be reached: the command fails with ConnectionLoss and exit code 1, as
/// zkCli's does, one-shot and line by line (a health check that tests the code must not take a
/// dead server for a healthy one).
#[test]
fn an_unreachable_server_fails_the_command_with_exit_code_1() {
    // A port that was free a moment ago and that nobody listens on now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let cases: [(&[&str], &str, &str); 2] = [
        (&["ls", "/"], "", "KeeperErrorCode = ConnectionLoss for /"),
        (
            &[],
            "ls /\ncreate /x y\n",
            "KeeperErrorCode = ConnectionLoss for /x",
        ),
    ];
    for (args, stdin, error) in cases {
        let run = rzk_cli_binary_at(&address, args, stdin);
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(error), "{args:?}: {}", run.stderr);
    }
}

/// A chroot in the connect string, in a session that creates, reads, watches and deletes under
/// it: zkCli.sh against one rzk server and the `rzk cli` binary against another, each with
/// `/app` created first and `-server <address>/app`, print the same. Paths are relative to the
/// chroot in what both print: created paths, and watch events (the chroot itself is `/`).
/// It ends as [`TRANSCRIPT`] does, with `close` before `quit`.
const CHROOT_SESSION: &str = "create /a one
create -s /a/s- x
ls /
get /a
stat /a
get -w /a
set /a two
ls -w /
create /b x
getAllChildrenNumber /
sync /a
delete /b
create /missing/child x
close
ls /
quit
";

#[test]
fn a_chroot_in_the_connect_string_matches_zkcli() {
    if !reference_present() {
        return;
    }
    let for_java = support::RzkServer::start(&[]);
    let for_rzk = support::RzkServer::start(&[]);
    for server in [&for_java, &for_rzk] {
        let created = rzk_cli_binary_at(&server.connect_string(), &["create", "/app", ""], "");
        assert_eq!(created.code, 0, "create /app: {}", created.stderr);
    }
    let chrooted = |server: &support::RzkServer| format!("{}/app", server.connect_string());
    assert_transcript_same(CHROOT_SESSION, &chrooted(&for_java), &chrooted(&for_rzk));
    // Outside the chroot, the nodes are under /app.
    let listed = rzk_cli_binary_at(&for_rzk.connect_string(), &["ls", "/app"], "");
    assert!(
        listed.stdout.contains("[a]"),
        "ls /app without the chroot: {}",
        listed.stdout
    );
}

/// Kills the process on drop (a server a test started by hand).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `-waitforconnection`: the CLI keeps trying to reach a server for up to `-timeout`, as
/// zkCli does. Its first attempt reaches a listener that closes the connection (a failed
/// attempt, seen here); then an rzk server starts on that port, and the one-shot `ls /`
/// succeeds without the CLI being started again.
#[test]
fn wait_for_connection_keeps_trying_until_a_server_answers() {
    const BOUND: std::time::Duration = std::time::Duration::from_secs(60);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("its address").port();
    let address = format!("127.0.0.1:{port}");
    let cli = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args([
            "cli",
            "-waitforconnection",
            "-timeout",
            "30000",
            "-server",
            &address,
        ])
        .args(["ls", "/"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rzk cli");
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = accepted_tx.send(listener.accept().map(|(stream, _)| stream));
        // The listener closes here, with the accepted connection.
    });
    let first = accepted_rx
        .recv_timeout(BOUND)
        .expect("the CLI's first connection attempt within 60 s");
    drop(first.expect("accept the CLI's first attempt"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nadmin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write zoo.cfg");
    let _server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_rzk"))
            .arg("server")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rzk server"),
    );
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(cli.wait_with_output());
    });
    let output = done_rx
        .recv_timeout(BOUND)
        .expect("rzk cli to finish within 60 s")
        .expect("rzk cli's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "rzk cli -waitforconnection ls /:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("[zookeeper]"), "{stdout}");
}
