//! `rzk ensemble start|stop|restart|status <zoo.cfg or directory>...`: run a pseudo-cluster on
//! one host with one command (the ZooKeeper tutorial's "replicated mode on one machine").
//!
//! Each argument is a zoo.cfg, or a directory holding `conf/zoo.cfg` or `zoo.cfg`. For each:
//! - `start` runs `rzk server <cfg>` in the background (its own process group, stdin closed),
//!   writes its pid to `<dataDir>/zookeeper_server.pid` (as `zkServer.sh` does) and sends its
//!   output to `<dataDir>/rzk.log`, or to `$ZOO_LOG_DIR/rzk-server-<myid>.log` when
//!   `ZOO_LOG_DIR` is set. It starts every server first, then waits (at most
//!   [`READY_WAIT`]) until each answers `srvr` with a `Mode:` line: members of an ensemble only
//!   serve once a quorum runs, so they must start together. A server already running (its pid
//!   file names a live `rzk server`) is left alone.
//! - `stop` sends SIGTERM to every server, waits at most [`STOP_WAIT`] for them to exit, removes
//!   the pid files of those that did, and reports those that did not (it never sends SIGKILL).
//! - `restart` is `stop` then `start`.
//! - `status` asks each server's client port for `srvr` and prints its `Mode:` (`leader`,
//!   `follower`, `standalone`), like `zkServer.sh status`; a server that does not answer, or
//!   answers that it is not serving, is reported and makes the command fail.
//!
//! Example (three members on 127.0.0.1, each directory with `conf/zoo.cfg` naming
//! `server.1..3` and `data/myid`):
//! ```text
//! rzk ensemble start  zk1 zk2 zk3
//! rzk ensemble status zk1 zk2 zk3     # zk1: Mode: follower, zk2: Mode: leader, ...
//! rzk ensemble stop   zk1 zk2 zk3
//! ```
//!
//! # Several hosts over ssh
//! The command only manages servers whose configuration is on the host it runs on; run it on
//! each host for that host's configuration, e.g. with the same path on every host:
//! ```text
//! for h in zk1.example zk2.example zk3.example; do
//!     ssh "$h" 'rzk ensemble start /etc/zookeeper/conf/zoo.cfg' &
//! done; wait
//! ```
//! Start them concurrently (the `&`/`wait` above): each host's `start` waits for its server to
//! join a quorum, which needs the others. `ssh -n` or `</dev/null` keeps ssh from holding the
//! terminal; the server does not need the session (it runs in its own process group with its
//! output in the log file), so the ssh connection may close. `stop` and `status` work the same
//! way (`ssh "$h" rzk ensemble status /etc/zookeeper/conf/zoo.cfg`); `status` only needs to
//! reach the client port, so it also works from any host that has a copy of each zoo.cfg.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk_config::Config;

/// How long `start` waits for every server to report a `Mode:`.
pub const READY_WAIT: Duration = Duration::from_secs(60);
/// How long `stop` waits for every server to exit after SIGTERM.
pub const STOP_WAIT: Duration = Duration::from_secs(30);
/// Bound on one `srvr` exchange (connect, write, read).
pub const SRVR_TIMEOUT: Duration = Duration::from_secs(3);
/// The pid file in `dataDir`, named as `zkServer.sh` names it.
pub const PID_FILE: &str = "zookeeper_server.pid";

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LOG_TAIL_LINES: usize = 20;

/// `rzk ensemble -h` (after the arguments): where the ssh recipe is.
const AFTER_HELP: &str =
    "Several hosts: run it on each host over ssh (`rzk ensemble --help` shows how).";

/// `rzk ensemble --help` (after the arguments): what each action does, and how to drive several
/// hosts over ssh. (The one-line summary is the subcommand's doc comment in main.rs.)
const AFTER_LONG_HELP: &str = "\
Each argument is a zoo.cfg, or a directory holding conf/zoo.cfg or zoo.cfg. `start` runs
`rzk server <cfg>` in the background for each (pid in <dataDir>/zookeeper_server.pid, output in
<dataDir>/rzk.log or $ZOO_LOG_DIR/rzk-server-<myid>.log) and waits at most 60 s until every one
answers srvr with a Mode: line; `stop` sends SIGTERM and waits at most 30 s; `status` prints each
server's Mode: (leader, follower, standalone) and fails if one does not serve.

Example, three members on this host (each directory with conf/zoo.cfg and data/myid):
    rzk ensemble start  zk1 zk2 zk3
    rzk ensemble status zk1 zk2 zk3
    rzk ensemble stop   zk1 zk2 zk3

Several hosts: the command manages only the servers whose zoo.cfg is on the host it runs on, so
run it on every host, concurrently (each host's `start` waits for a quorum, which needs the
others):
    for h in zk1.example zk2.example zk3.example; do
        ssh -n \"$h\" rzk ensemble start /etc/zookeeper/conf/zoo.cfg &
    done; wait
The server runs in its own process group with its output in the log file, so the ssh session may
close. `stop` and `status` work the same way; `status` only needs the client ports, so it also
works from any host holding a copy of each zoo.cfg.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP, after_long_help = AFTER_LONG_HELP)]
pub struct EnsembleArgs {
    /// What to do with every server.
    #[arg(value_enum)]
    pub action: Action,
    /// zoo.cfg files, or directories holding conf/zoo.cfg or zoo.cfg.
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Status,
}

/// One server of the ensemble, as its configuration describes it.
struct Member {
    config_path: PathBuf,
    name: String,
    data_dir: PathBuf,
    /// Where `srvr` is asked.
    client_addr: String,
    log_path: PathBuf,
}

impl Member {
    fn pid_path(&self) -> PathBuf {
        self.data_dir.join(PID_FILE)
    }

    /// The pid in the pid file, if the file names a live `rzk server` process.
    fn running_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.pid_path()).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        is_our_server(pid).then_some(pid)
    }
}

pub fn run(args: EnsembleArgs) -> Result<(), String> {
    let members = args
        .configs
        .iter()
        .map(|target| member(target))
        .collect::<Result<Vec<_>, _>>()?;
    match args.action {
        Action::Start => start(&members),
        Action::Stop => stop(&members),
        Action::Restart => {
            stop(&members)?;
            start(&members)
        }
        Action::Status => status(&members),
    }
}

/// The configuration file a command-line argument names.
fn config_file(target: &Path) -> Result<PathBuf, String> {
    if target.is_dir() {
        for candidate in [target.join("conf").join("zoo.cfg"), target.join("zoo.cfg")] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        return Err(format!(
            "{} holds neither conf/zoo.cfg nor zoo.cfg; name the zoo.cfg itself",
            target.display()
        ));
    }
    if target.is_file() {
        return Ok(target.to_path_buf());
    }
    Err(format!(
        "{} is neither a zoo.cfg nor a directory holding one",
        target.display()
    ))
}

fn member(target: &Path) -> Result<Member, String> {
    let config_path = config_file(target)?;
    let config = Config::from_file(&config_path)
        .map_err(|error| format!("{}: {error}", config_path.display()))?;
    let name = match config.my_id {
        Some(id) if !config.is_standalone() => format!("server.{id}"),
        _ => format!("standalone:{}", config.client_port),
    };
    let client_addr = match config.client_port_address.as_deref() {
        None | Some("0.0.0.0") => format!("127.0.0.1:{}", config.client_port),
        Some("::") => format!("[::1]:{}", config.client_port),
        Some(_) => config.client_bind_address(),
    };
    let log_path = match std::env::var_os("ZOO_LOG_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            let id = config
                .my_id
                .map_or_else(|| config.client_port.to_string(), |id| id.to_string());
            PathBuf::from(dir).join(format!("rzk-server-{id}.log"))
        }
        None => config.data_dir.join("rzk.log"),
    };
    Ok(Member {
        config_path,
        name,
        data_dir: config.data_dir.clone(),
        client_addr,
        log_path,
    })
}

fn label(member: &Member) -> String {
    format!("{} ({})", member.name, member.config_path.display())
}

// ------------------------------------------------------------------------------------------------
// start
// ------------------------------------------------------------------------------------------------

fn start(members: &[Member]) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|error| format!("cannot find the rzk executable to start servers: {error}"))?;
    let mut children: Vec<Option<Child>> = Vec::new();
    let mut failures = Vec::new();
    for member in members {
        if let Some(pid) = member.running_pid() {
            println!("{}: already running as process {pid}", label(member));
            children.push(None);
            continue;
        }
        match spawn(&exe, member) {
            Ok(child) => {
                println!(
                    "{}: starting as process {} (log {})",
                    label(member),
                    child.id(),
                    member.log_path.display()
                );
                children.push(Some(child));
            }
            Err(error) => {
                failures.push(format!("{}: {error}", label(member)));
                children.push(None);
            }
        }
    }
    // Members of an ensemble serve only once a quorum runs: wait for all of them together.
    let deadline = Instant::now() + READY_WAIT;
    let mut waiting: Vec<usize> = (0..members.len())
        .filter(|i| children[*i].is_some() || members[*i].running_pid().is_some())
        .collect();
    let mut last_answer = vec![String::new(); members.len()];
    while !waiting.is_empty() {
        waiting.retain(|&i| {
            let member = &members[i];
            if let Some(child) = children[i].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let _ = fs::remove_file(member.pid_path());
                    failures.push(format!(
                        "{}: exited with {status} while starting\n{}",
                        label(member),
                        log_tail(&member.log_path)
                    ));
                    return false;
                }
            }
            match srvr(&member.client_addr) {
                Ok(reply) => match mode(&reply) {
                    Some(mode) => {
                        println!("{}: STARTED, Mode: {mode}", label(member));
                        false
                    }
                    None => {
                        last_answer[i] = reply.trim().to_string();
                        true
                    }
                },
                Err(error) => {
                    last_answer[i] = error;
                    true
                }
            }
        });
        if waiting.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for &i in &waiting {
                failures.push(format!(
                    "{}: not serving after {READY_WAIT:?} (last srvr answer: {}); it keeps trying in the background: check that a quorum of the servers runs and that they reach each other's quorum ports\n{}",
                    label(&members[i]),
                    last_answer[i],
                    log_tail(&members[i].log_path)
                ));
            }
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    finish(failures)
}

fn spawn(exe: &Path, member: &Member) -> Result<Child, String> {
    fs::create_dir_all(&member.data_dir).map_err(|error| {
        format!(
            "cannot create dataDir {}: {error}",
            member.data_dir.display()
        )
    })?;
    if let Some(dir) = member.log_path.parent() {
        fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create log directory {}: {error}", dir.display()))?;
    }
    let log = File::options()
        .create(true)
        .append(true)
        .open(&member.log_path)
        .map_err(|error| format!("cannot open log {}: {error}", member.log_path.display()))?;
    let err_log = log
        .try_clone()
        .map_err(|error| format!("cannot share log {}: {error}", member.log_path.display()))?;
    let config = fs::canonicalize(&member.config_path).unwrap_or(member.config_path.clone());
    let child = Command::new(exe)
        .arg("server")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        // Its own process group: a Ctrl-C or hang-up of this terminal (or ssh session) does not
        // reach the server.
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot run {} server: {error}", exe.display()))?;
    let mut pid_file = File::create(member.pid_path()).map_err(|error| {
        format!(
            "cannot write the pid file {}: {error}",
            member.pid_path().display()
        )
    })?;
    writeln!(pid_file, "{}", child.id()).map_err(|error| {
        format!(
            "cannot write the pid file {}: {error}",
            member.pid_path().display()
        )
    })?;
    Ok(child)
}

// ------------------------------------------------------------------------------------------------
// stop
// ------------------------------------------------------------------------------------------------

fn stop(members: &[Member]) -> Result<(), String> {
    let mut stopping = Vec::new();
    for member in members {
        match member.running_pid() {
            None => {
                let _ = fs::remove_file(member.pid_path());
                println!("{}: not running", label(member));
            }
            Some(pid) => {
                // SAFETY: kill(2) with a pid read from our pid file and checked to be an rzk server.
                if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
                    println!("{}: stopping process {pid}", label(member));
                    stopping.push((member, pid));
                } else {
                    println!(
                        "{}: process {pid} is already gone ({})",
                        label(member),
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    let mut failures = Vec::new();
    while !stopping.is_empty() {
        stopping.retain(|(member, pid)| {
            if is_alive(*pid) {
                return true;
            }
            let _ = fs::remove_file(member.pid_path());
            println!("{}: STOPPED", label(member));
            false
        });
        if stopping.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for (member, pid) in &stopping {
                failures.push(format!(
                    "{}: process {pid} did not exit within {STOP_WAIT:?} of SIGTERM; see {} (kill -9 {pid} to force it)",
                    label(member),
                    member.log_path.display()
                ));
            }
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    finish(failures)
}

/// Whether `pid` exists (and is not a zombie).
fn is_alive(pid: i32) -> bool {
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        return !matches!(state, Some('Z' | 'X'));
    }
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Whether `pid` is a live `rzk server` (guards against a stale pid file naming a reused pid).
fn is_our_server(pid: i32) -> bool {
    if pid <= 0 || !is_alive(pid) {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.split(|byte| *byte == 0).any(|arg| arg == b"server"),
        // No /proc (not Linux): trust the pid file.
        Err(_) => true,
    }
}

// ------------------------------------------------------------------------------------------------
// status
// ------------------------------------------------------------------------------------------------

fn status(members: &[Member]) -> Result<(), String> {
    let mut failures = Vec::new();
    for member in members {
        match srvr(&member.client_addr) {
            Ok(reply) => match mode(&reply) {
                Some(mode) => println!("{}: Mode: {mode}", label(member)),
                None => {
                    let answer = reply.trim();
                    println!("{}: {answer}", label(member));
                    failures.push(format!("{}: {answer}", label(member)));
                }
            },
            Err(error) => {
                let running = match member.running_pid() {
                    Some(pid) => format!("process {pid} runs but"),
                    None => "not running:".to_string(),
                };
                println!(
                    "{}: Error contacting service. {running} {error}",
                    label(member)
                );
                failures.push(format!("{}: {running} {error}", label(member)));
            }
        }
    }
    finish(failures)
}

fn finish(failures: Vec<String>) -> Result<(), String> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The `srvr` four-letter word's whole reply.
fn srvr(address: &str) -> Result<String, String> {
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {address}: {error}"))?
        .collect();
    let target = addresses
        .first()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(target, SRVR_TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    let io = |error: std::io::Error| format!("srvr to {address}: {error}");
    stream.set_read_timeout(Some(SRVR_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(SRVR_TIMEOUT)).map_err(io)?;
    stream.write_all(b"srvr").map_err(io)?;
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        // A reset after the reply still leaves a whole reply.
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset && !reply.is_empty() => {}
        Err(error) => return Err(io(error)),
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn mode(reply: &str) -> Option<&str> {
    reply
        .lines()
        .find_map(|line| line.strip_prefix("Mode: "))
        .map(str::trim)
}

fn log_tail(path: &Path) -> String {
    let text = fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    format!(
        "--- last lines of {} ---\n{}",
        path.display(),
        lines[start..].join("\n")
    )
}
