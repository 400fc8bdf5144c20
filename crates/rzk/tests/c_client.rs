//! The ZooKeeper C client (libzookeeper-mt, through Debian's `cli_mt` shell from zookeeper-bin)
//! against rzk and against Apache ZooKeeper 3.8.0: the same script gives the same output, with
//! times, dates, zxids and session ids masked.
//!
//! `cli_mt` is asynchronous: it sends a command and prints the reply from its completion thread
//! later. The test sends one command at a time and waits (bounded) for its reply's rc line before
//! the next, then compares the whole transcript. Lines whose place is a race between cli_mt's
//! threads (watch events; "Creating [..]" and "time = N msec" from the main thread while the
//! completion thread may still print the previous reply) are left out. The script ends with
//! a reply of one line, so nothing of it can be cut off by the end of the session.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use support::{RefZk, RzkServer};

const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
/// How long one command may take to be answered.
const REPLY_WAIT: Duration = Duration::from_secs(20);

/// The tutorial's operations and their error cases, in cli_mt's syntax. Each node has at most one
/// child when listed, so the servers' child orders (ZooKeeper's is unordered) cannot differ.
const SCRIPT: &[&str] = &[
    "create /c",
    "create /c",
    "set /c world",
    "get /c",
    "ls /",
    // cli_mt's exists waits for the reply and prints only an error.
    "exists /nope",
    "get /nope",
    "create +e /c/e",
    "create +e /c/e/child",
    "ls /c",
    "delete /c",
    "delete /c/e",
    "create +s /c/s",
    "ls /c",
    "delete /c/s0000000001",
    "get /c/e",
    "delete /c",
];

struct CliMt {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl CliMt {
    fn start(port: u16) -> CliMt {
        let mut child = Command::new(CLI_MT)
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            // cli_mt prints everything on stderr (unbuffered); stdout stays empty.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {CLI_MT}: {error}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let output = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cli = CliMt {
            child,
            stdin,
            lines,
        };
        cli.read_until("the session", |line| {
            line.starts_with("Got a new session id")
        });
        cli
    }

    /// Lines up to and including the first that `done` accepts; panics after [`REPLY_WAIT`].
    fn read_until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + REPLY_WAIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let finished = done(&line);
                    lines.push(line);
                    if finished {
                        return lines;
                    }
                }
                Err(_) => panic!(
                    "cli_mt: no reply for {what} within {REPLY_WAIT:?}; output so far:\n{}",
                    lines.join("\n")
                ),
            }
        }
    }

    /// Send `command` and wait (bounded) for its reply's first line: `<path>: rc = ...` (or
    /// `[<path>]: rc = ...` for create), or `Error <rc> for <path>` when cli_mt reports it itself.
    /// The reply's other lines may come after this returns; the transcript is compared whole, so
    /// where one command's output ends does not matter.
    fn run(&mut self, command: &str) -> Vec<String> {
        let path = command
            .split_whitespace()
            .find(|word| word.starts_with('/'))
            .expect("every scripted command names a path");
        writeln!(self.stdin, "{command}").expect("write to cli_mt");
        self.stdin.flush().expect("flush cli_mt's stdin");
        let (reply, bracketed, error) = (
            format!("{path}: rc = "),
            format!("[{path}]: rc = "),
            format!(" for {path}"),
        );
        self.read_until(command, |line| {
            line.starts_with(&reply)
                || line.starts_with(&bracketed)
                || (line.starts_with("Error ") && line.ends_with(&error))
        })
    }
}

impl Drop for CliMt {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times, dates, zxids and session ids differ between servers and runs; the rest must not.
fn mask(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    for key in ["ctime", "mtime"] {
        if trimmed.starts_with(key) {
            return format!("{indent}{key} = <date>");
        }
    }
    for key in ["czxid=", "mzxid="] {
        if trimmed.starts_with(key) {
            return format!("{indent}{key}<zxid>");
        }
    }
    if trimmed.starts_with("ephemeralOwner = ") && trimmed != "ephemeralOwner = 0" {
        return format!("{indent}ephemeralOwner = <session>");
    }
    line.to_string()
}

/// One server's transcript: each command, then its masked output.
fn transcript(port: u16) -> Vec<String> {
    let mut cli = CliMt::start(port);
    let mut out = Vec::new();
    for command in SCRIPT {
        out.extend(
            cli.run(command)
                .iter()
                .filter(|line| {
                    !line.starts_with("Watcher ")
                        && !line.starts_with("time = ")
                        && !line.starts_with("Creating [")
                })
                .filter(|line| !line.is_empty())
                .map(|line| mask(line)),
        );
    }
    out
}

#[test]
fn c_client_sees_the_same_as_with_zookeeper() {
    if support::skip_without_reference("c_client_sees_the_same_as_with_zookeeper") {
        return;
    }
    if !std::path::Path::new(CLI_MT).exists() {
        assert!(
            !support::in_ci(),
            "{CLI_MT} is missing: apt-get install zookeeper-bin"
        );
        println!("skipped: c_client: {CLI_MT} is missing (apt-get install zookeeper-bin)");
        return;
    }
    let (reference, rzk) = std::thread::scope(|scope| {
        let reference = scope.spawn(RefZk::start);
        let rzk = RzkServer::start(&[]);
        (reference.join().expect("reference ZooKeeper started"), rzk)
    });
    let expected = transcript(reference.port());
    let actual = transcript(rzk.port());
    // The transcript must show the operations really ran (not only errors).
    assert!(
        expected.iter().any(|line| line == "world") && expected.iter().any(|line| line == "\tc"),
        "the reference transcript lacks the data and the listing:\n{}",
        expected.join("\n")
    );
    if expected != actual {
        let first = expected
            .iter()
            .zip(&actual)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(actual.len()));
        panic!(
            "cli_mt output differs at line {}:\n--- ZooKeeper 3.8.0\n{}\n--- rzk\n{}",
            first + 1,
            expected.join("\n"),
            actual.join("\n")
        );
    }
}
