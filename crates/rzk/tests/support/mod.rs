//! Test support for the `rzk` binary's integration tests: servers on free ports, the reference ZooKeeper,
//! and the real clients (zkCli, kazoo).
//!
//! Use it with `mod support;` from a file in `crates/rzk/tests/`.
//!
//! # Layout
//! - [`free_port`], [`four_letter`] / [`try_four_letter`]: ports and the 4lw side channel.
//! - [`TestServer`]: one server process in its own temporary directory, ready when `srvr` answers with a
//!   `Mode:` line, killed on drop. [`RzkServer`] (the binary under test) and [`RefZk`] (Apache ZooKeeper 3.8.0
//!   from Debian's jars) both dereference to it, so the same test can run against either.
//! - [`zkcli`], [`zkcli_script`], [`python`]: the clients, each bounded by a timeout and killed with its whole
//!   process group when it overruns (zkCli.sh does not `exec` java, so killing the script alone would leak a JVM).
//! - [`skip_without_reference`], [`skip_without_kazoo`]: outside CI a missing tool skips the test with a
//!   `skipped: ...` line; in CI (`CI=true`, set by `.ci/run`, which installs everything) it fails the test.
//!
//! Nothing here sleeps to synchronise: readiness and exits are polled against a deadline.
//! When a test panics while a server is alive (or `RZK_TEST_KEEP_DIRS` is set), the server's temporary directory is kept and the tail of its
//! log is printed, so a CI failure shows what the server said.
#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod ensemble;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Debian's ZooKeeper 3.8.0 jars. `zookeeper.jar`'s manifest names its other dependencies (jute, netty, ...);
/// the log4j binding is what makes it log, and the servlet API is needed by classes the server loads.
pub const ZOOKEEPER_JARS: [&str; 4] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/servlet-api.jar",
];
/// Debian's zkCli script (package `zookeeper`).
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// How long a server may take to answer `srvr` with `Mode:`. ZooKeeper needs 1-2 s, an ensemble ~2 s more;
/// the margin is for a loaded 2-core CI machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one zkCli invocation may run (one JVM start, ~1 s normally).
pub const ZKCLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a kazoo script may run.
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);
/// JVM flags for [`RefZk`]: upstream zkServer.sh's default heap.
pub const REF_ZK_JVM_FLAGS: &[&str] = &["-Xmx1000m"];

const POLL_INTERVAL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 60;

/// True in CI (`CI=true`), where missing reference tools are failures, not skips.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
}

// ---------------------------------------------------------------------------------------------------------
// Ports and four-letter words
// ---------------------------------------------------------------------------------------------------------

/// Options for a persistent node anyone may change (the `zookeeper-client` crate's create).
pub fn persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// It binds port 0, reads the port the kernel chose and releases it. There is a small race: another process
/// may take the port before the server binds it. Ports already handed out by this process are never returned
/// twice, which rules out clashes between tests running in parallel threads; a clash with another process
/// shows up as "Address already in use", and [`RzkServer::start`] / [`RefZk::start`] then retry on new ports.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("free_port: the kernel kept returning ports this test process already used");
}

/// Sends a four-letter word (e.g. `"srvr"`) to 127.0.0.1:`port` and returns the whole reply.
/// The server closes the connection after replying; connect, write and read are each bounded by `timeout`.
pub fn try_four_letter(port: u16, command: &str, timeout: Duration) -> io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(command.as_bytes())?;
    let mut reply = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => reply.extend_from_slice(&buffer[..count]),
            // A reset after the reply (the server closed with unread data) still leaves a complete reply.
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset && !reply.is_empty() => {
                break
            }
            Err(error) => return Err(error),
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{command}: reply did not end within {timeout:?}"),
            ));
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// [`try_four_letter`] with a 10 s bound; panics with the reason when the server cannot be reached.
pub fn four_letter(port: u16, command: &str) -> String {
    try_four_letter(port, command, Duration::from_secs(10)).unwrap_or_else(|error| {
        panic!("four-letter word {command:?} to 127.0.0.1:{port} failed: {error}")
    })
}

/// The value of the `Mode:` line of a `srvr` reply (`standalone`, `leader`, ...).
pub fn srvr_mode(reply: &str) -> Option<&str> {
    reply
        .lines()
        .find_map(|line| line.strip_prefix("Mode: "))
        .map(str::trim)
}

// ---------------------------------------------------------------------------------------------------------
// Availability of the reference tools
// ---------------------------------------------------------------------------------------------------------

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Why the reference ZooKeeper cannot run here, or `None` when it can.
pub fn reference_missing_reason() -> Option<String> {
    if !on_path("java") {
        return Some("java is not on PATH (Java 17 is expected)".to_string());
    }
    let missing: Vec<&str> = ZOOKEEPER_JARS
        .iter()
        .copied()
        .filter(|jar| !Path::new(jar).is_file())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing {}; run `apt-get install -y zookeeper zookeeper-bin`",
            missing.join(", ")
        ));
    }
    if !Path::new(ZKCLI).is_file() {
        return Some(format!(
            "missing {ZKCLI}; run `apt-get install -y zookeeper zookeeper-bin`"
        ));
    }
    None
}

/// Why kazoo 2.11 cannot be used from `python3`, or `None` when it can.
pub fn kazoo_missing_reason() -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import kazoo.version as v; print(v.__version__)"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Err(error) => Some(format!("python3 cannot run: {error}")),
        Ok(output) if !output.status.success() => {
            Some("kazoo is not installed; run `pip install kazoo==2.11.0`".to_string())
        }
        Ok(output) => {
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (version != "2.11.0").then(|| format!("kazoo {version} is installed, 2.11.0 is expected; run `pip install kazoo==2.11.0`"))
        }
    }
}

fn skip_if_missing(test: &str, reason: Option<String>) -> bool {
    let Some(reason) = reason else { return false };
    if in_ci() {
        panic!("{test}: {reason} (CI=true, so this is a failure, not a skip; .ci/run installs it)");
    }
    eprintln!("skipped: {test}: {reason}");
    true
}

/// Returns true (after printing `skipped: ...`) when the reference ZooKeeper or zkCli is missing; panics instead in CI.
/// Use as `if support::skip_without_reference("my_test") { return; }`.
pub fn skip_without_reference(test: &str) -> bool {
    skip_if_missing(test, reference_missing_reason())
}

/// Like [`skip_without_reference`], for kazoo 2.11.0 under `python3`.
pub fn skip_without_kazoo(test: &str) -> bool {
    skip_if_missing(test, kazoo_missing_reason())
}

// ---------------------------------------------------------------------------------------------------------
// Bounded child processes
// ---------------------------------------------------------------------------------------------------------

/// Sends `signal` (e.g. "KILL", "TERM") to the process group `group`, via sh's `kill` builtin (std has no
/// kill(2), and procps may not be installed).
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -s {signal} -- -{group} 2>/dev/null")])
        .stdin(Stdio::null())
        .status();
}

fn signal_process(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -s {signal} {pid} 2>/dev/null")])
        .stdin(Stdio::null())
        .status();
}

/// Polls `child` until it exits or `timeout` passes.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(POLL_INTERVAL),
            Err(error) => panic!("waiting for child {}: {error}", child.id()),
        }
    }
}

/// Runs `command` in its own process group with `stdin_text` (or no stdin), capturing output. If it runs past
/// `timeout`, the whole group is killed and the test panics with what it printed so far.
pub fn run_bounded(mut command: Command, stdin_text: Option<&str>, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    command
        .stdin(if stdin_text.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    let group = child.id();
    let stdin_writer = stdin_text.map(|text| {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let text = text.to_string();
        // A separate thread so that a child that does not read its stdin cannot block us.
        thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        })
    });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let finished = wait_with_deadline(&mut child, timeout);
    let status = match finished {
        Some(status) => status,
        None => {
            // Kill the group before reaping the leader, so the group id cannot have been reused.
            signal_group(group, "KILL");
            child.wait().expect("wait for a killed child")
        }
    };
    if let Some(writer) = stdin_writer {
        let _ = writer.join();
    }
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if finished.is_none() {
        panic!(
            "{description} did not finish within {timeout:?}; killed it.\n{}",
            describe_output(&output)
        );
    }
    output
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn describe_output(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// stdout of `output` as text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of `output` as text.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------------------

fn zkcli_command(port: u16) -> Command {
    let mut command = Command::new(ZKCLI);
    command.arg("-server").arg(format!("127.0.0.1:{port}"));
    command
}

/// Runs one zkCli command (`zkcli(port, &["create", "/java", "spring"])`), one JVM per call (~1 s).
///
/// zkCli prints `Created ...` and its errors on **stderr**, exits 1 on a KeeperException, and in this command
/// mode exits without closing its session (ephemerals linger until the session expires).
pub fn zkcli(port: u16, args: &[&str]) -> Output {
    let mut command = zkcli_command(port);
    command.args(args);
    run_bounded(command, None, ZKCLI_TIMEOUT)
}

/// Runs zkCli with `commands` on stdin (one per line), all in one session; `quit` is appended when the text
/// does not end with it, so the session is closed properly.
pub fn zkcli_script(port: u16, commands: &str) -> Output {
    let mut script = commands.trim_end().to_string();
    if script.lines().last().map(str::trim) != Some("quit") {
        script.push_str("\nquit");
    }
    script.push('\n');
    run_bounded(zkcli_command(port), Some(&script), ZKCLI_TIMEOUT)
}

/// Runs `python3 script args...` (a kazoo test script), bounded by [`PYTHON_TIMEOUT`].
pub fn python(script: impl AsRef<Path>, args: &[&str]) -> Output {
    let mut command = Command::new("python3");
    command
        .arg(script.as_ref())
        .args(args)
        .env("PYTHONUNBUFFERED", "1");
    run_bounded(command, None, PYTHON_TIMEOUT)
}

/// The rzk binary under test.
pub fn rzk_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rzk"))
}

// ---------------------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------------------

/// Which server a [`TestServer`] runs.
#[derive(Debug, Clone)]
enum Flavor {
    /// `rzk server <zoo.cfg>`.
    Rzk,
    /// `java ... QuorumPeerMain <zoo.cfg>`.
    Reference { jvm_flags: Vec<String> },
}

impl Flavor {
    fn name(&self) -> &'static str {
        match self {
            Flavor::Rzk => "rzk",
            Flavor::Reference { .. } => "reference ZooKeeper",
        }
    }

    fn command(&self, dir: &Path, config: &Path) -> Command {
        match self {
            Flavor::Rzk => {
                let mut command = Command::new(rzk_binary());
                command.arg("server").arg(config);
                command
            }
            Flavor::Reference { jvm_flags } => {
                let mut command = Command::new("java");
                command
                    .args(jvm_flags)
                    .arg(format!(
                        "-Dlog4j.configuration=file:{}",
                        dir.join("log4j.properties").display()
                    ))
                    .arg("-cp")
                    .arg(ZOOKEEPER_JARS.join(":"))
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(config);
                command
            }
        }
    }
}

/// log4j 1.2 settings for the reference server: INFO and above to the console (our log file).
const LOG4J_PROPERTIES: &str = "log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] %-5p [%t] %c{1} - %m%n
";

/// One server member's ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

impl Ports {
    fn fresh() -> Ports {
        Ports {
            client: free_port(),
            quorum: free_port(),
            election: free_port(),
        }
    }
}

/// A server process in its own temporary directory (`zoo.cfg`, `data/`, `server.log`).
///
/// Killed (SIGKILL) on drop. `restart` reuses the same directory and ports, so data survives.
pub struct TestServer {
    flavor: Flavor,
    /// `None` once kept for a post-mortem.
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    /// Modes that count as ready (`standalone`, or `leader`/`follower`/`observer` in an ensemble).
    ready_modes: &'static [&'static str],
    child: Option<Child>,
}

const STANDALONE: &[&str] = &["standalone"];
const ENSEMBLE_MEMBER: &[&str] = &["leader", "follower", "observer"];

/// Lines every test config starts with; extra lines come after them and win (the last value of a key wins in
/// both ZooKeeper and rzk).
fn base_config(data_dir: &Path, client_port: u16) -> String {
    format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
         4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\n",
        data_dir.display()
    )
}

impl TestServer {
    /// Writes the directory and config; does not start anything.
    fn prepare(
        flavor: Flavor,
        port: u16,
        config_tail: &str,
        my_id: Option<u64>,
        ready_modes: &'static [&'static str],
    ) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-test-", flavor.name().replace(' ', "-")))
            .tempdir()
            .expect("create a temporary directory");
        let dir_path = dir.path().to_path_buf();
        let data_dir = dir_path.join("data");
        fs::create_dir_all(&data_dir).expect("create dataDir");
        if let Some(id) = my_id {
            fs::write(data_dir.join("myid"), format!("{id}\n")).expect("write myid");
        }
        if let Flavor::Reference { .. } = flavor {
            fs::write(dir_path.join("log4j.properties"), LOG4J_PROPERTIES)
                .expect("write log4j.properties");
        }
        let config_path = dir_path.join("zoo.cfg");
        fs::write(
            &config_path,
            format!("{}{config_tail}", base_config(&data_dir, port)),
        )
        .expect("write zoo.cfg");
        TestServer {
            flavor,
            dir: Some(dir),
            log_path: dir_path.join("server.log"),
            dir_path,
            config_path,
            port,
            ready_modes,
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "{} on port {} is already running",
            self.flavor.name(),
            self.port
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server.log");
        let mut command = self.flavor.command(&self.dir_path, &self.config_path);
        command
            .current_dir(&self.dir_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .process_group(0);
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {}: {command:?}: {error}", self.flavor.name())
        });
        self.child = Some(child);
    }

    /// Polls `srvr` until it reports one of the ready modes (or says srvr is not whitelisted, which also
    /// proves the server is serving). Fails early if the process exits.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_reply;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "{} exited with {status} before it was ready",
                        self.flavor.name()
                    ));
                }
            }
            match try_four_letter(self.port, "srvr", Duration::from_secs(2)) {
                Ok(reply) => {
                    if srvr_mode(&reply).is_some_and(|mode| self.ready_modes.contains(&mode))
                        || reply.contains("is not executed because it is not in the whitelist")
                    {
                        return Ok(());
                    }
                    last_reply = reply;
                }
                Err(error) => last_reply = format!("connection: {error}"),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} on port {} did not answer srvr with Mode: {} within {READY_TIMEOUT:?}; last answer: {last_reply:?}",
                    self.flavor.name(),
                    self.port,
                    self.ready_modes.join("|")
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn failure(&self, problem: &str) -> String {
        format!(
            "{problem}\nconfig {}:\n{}\n{}",
            self.config_path.display(),
            fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.log_tail()
        )
    }

    /// The last lines of the server's stdout+stderr.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}",
            lines.len() - start,
            self.log_path.display(),
            lines[start..].join("\n")
        )
    }

    /// Everything the server printed (stdout and stderr, across restarts).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn address_in_use(&self) -> bool {
        let log = self.log();
        log.contains("Address already in use") || log.contains("AddrInUse")
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for clients.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding `zoo.cfg`, `data/` and `server.log`.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// `dataDir` (and `dataLogDir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir_path.join("data")
    }

    /// The zoo.cfg the server runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Sends a four-letter word to this server.
    pub fn four_letter(&self, command: &str) -> String {
        four_letter(self.port, command)
    }

    /// SIGKILL, no chance to flush anything: a crash. The directory stays; [`TestServer::restart`] brings it back.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if the process has not exited within 10 s. Returns the exit status (None if it had to
    /// be killed or was not running).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal_process(child.id(), "TERM");
        let status = wait_with_deadline(&mut child, Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Stops the server if it runs (SIGTERM, as [`TestServer::stop`]), then starts it again with the same
    /// directory, config and port, and waits until it is ready.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts a stopped or killed server again (same directory, config and port) and waits until it is ready.
    pub fn start_again(&mut self) {
        self.spawn();
        if let Err(problem) = self.wait_ready() {
            panic!("{}", self.failure(&problem));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() || std::env::var_os("RZK_TEST_KEEP_DIRS").is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "{} on port {}: kept {} for inspection\n{}",
                    self.flavor.name(),
                    self.port,
                    kept.display(),
                    self.log_tail()
                );
            }
        }
    }
}

/// Starts a standalone server on a free port, retrying on new ports when the chosen one was taken meanwhile.
fn start_standalone(flavor: Flavor, extra_config_lines: &[&str]) -> TestServer {
    let tail: String = extra_config_lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let mut attempt = 1;
    loop {
        let mut server = TestServer::prepare(flavor.clone(), free_port(), &tail, None, STANDALONE);
        server.spawn();
        match server.wait_ready() {
            Ok(()) => return server,
            Err(_) if attempt < 3 && server.address_in_use() => attempt += 1,
            Err(problem) => panic!("{}", server.failure(&problem)),
        }
    }
}

/// Starts an ensemble of `size` members on 127.0.0.1 (one directory, myid and port set each) and waits until
/// every member reports leader, follower or observer.
fn start_ensemble(flavor: Flavor, size: usize, extra_config_lines: &[&str]) -> Vec<TestServer> {
    assert!(size >= 2, "an ensemble needs at least 2 members");
    let ports: Vec<Ports> = (0..size).map(|_| Ports::fresh()).collect();
    let server_lines: String = ports
        .iter()
        .enumerate()
        .map(|(index, p)| {
            format!(
                "server.{}=127.0.0.1:{}:{};{}\n",
                index + 1,
                p.quorum,
                p.election,
                p.client
            )
        })
        .collect();
    let extra: String = extra_config_lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let mut members: Vec<TestServer> = ports
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let tail = format!("{server_lines}{extra}");
            TestServer::prepare(
                flavor.clone(),
                p.client,
                &tail,
                Some(index as u64 + 1),
                ENSEMBLE_MEMBER,
            )
        })
        .collect();
    for member in &mut members {
        member.spawn();
    }
    for member in &mut members {
        if let Err(problem) = member.wait_ready() {
            panic!("{}", member.failure(&problem));
        }
    }
    members
}

/// The rzk binary running `rzk server <zoo.cfg>` in the foreground.
pub struct RzkServer(TestServer);

impl RzkServer {
    /// Starts a standalone rzk with `tickTime=2000`, `dataDir=<tempdir>/data`, `clientPort=<free port>`,
    /// `4lw.commands.whitelist=*`, `admin.enableServer=false`, `maxClientCnxns=0`, then `extra_config_lines`
    /// (which may override any of those). Panics with the config and log tail if it is not ready in time.
    pub fn start(extra_config_lines: &[&str]) -> RzkServer {
        RzkServer(start_standalone(Flavor::Rzk, extra_config_lines))
    }

    /// Starts an ensemble of `size` rzk servers (`server.N=127.0.0.1:quorum:election;client` lines, myid files).
    pub fn start_ensemble(size: usize, extra_config_lines: &[&str]) -> Vec<RzkServer> {
        start_ensemble(Flavor::Rzk, size, extra_config_lines)
            .into_iter()
            .map(RzkServer)
            .collect()
    }

    /// Runs `rzk server` on `config_text` written to a fresh temporary directory (as `zoo.cfg`, with
    /// `{dir}` replaced by that directory) and returns its output once it exits within 30 s: for tests of
    /// configurations that must be refused. Panics if it is still running after that.
    pub fn run_expecting_exit(config_text: &str) -> Output {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let config = dir.path().join("zoo.cfg");
        fs::write(
            &config,
            config_text.replace("{dir}", &dir.path().display().to_string()),
        )
        .expect("write zoo.cfg");
        let mut command = Command::new(rzk_binary());
        command.arg("server").arg(&config).current_dir(dir.path());
        run_bounded(command, None, Duration::from_secs(30))
    }
}

impl Deref for RzkServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl DerefMut for RzkServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.0
    }
}

/// Apache ZooKeeper 3.8.0 (Debian's jars), the reference implementation.
pub struct RefZk(TestServer);

impl RefZk {
    /// Whether java and the jars are present (see [`skip_without_reference`] for the skip-or-fail rule).
    pub fn is_available() -> bool {
        reference_missing_reason().is_none()
    }

    /// Starts a standalone ZooKeeper with the same base config as [`RzkServer::start`].
    pub fn start() -> RefZk {
        RefZk::start_with(&[], &[])
    }

    /// Like [`RefZk::start`], with extra zoo.cfg lines and extra JVM flags (e.g. `-Djute.maxbuffer=4194304`,
    /// `-Dreadonlymode.enabled=true`; unknown zoo.cfg keys become `zookeeper.<key>` system properties anyway).
    pub fn start_with(extra_config_lines: &[&str], jvm_flags: &[&str]) -> RefZk {
        RefZk(start_standalone(
            reference_flavor(jvm_flags),
            extra_config_lines,
        ))
    }

    /// Starts an ensemble of `size` ZooKeeper servers on 127.0.0.1.
    pub fn start_ensemble(size: usize, extra_config_lines: &[&str]) -> Vec<RefZk> {
        start_ensemble(reference_flavor(&[]), size, extra_config_lines)
            .into_iter()
            .map(RefZk)
            .collect()
    }
}

fn reference_flavor(jvm_flags: &[&str]) -> Flavor {
    let flags = REF_ZK_JVM_FLAGS
        .iter()
        .chain(jvm_flags)
        .map(|flag| flag.to_string())
        .collect();
    Flavor::Reference { jvm_flags: flags }
}

impl Deref for RefZk {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl DerefMut for RefZk {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.0
    }
}

/// `len` incompressible bytes (xorshift, seeded): the log stores large entries compressed, so
/// tests that must fill space write these.
pub fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// zkCli's event thread prints an event as two `println("\n" + message)` calls, "WATCHER::"
/// then "WatchedEvent ...", while a command may be printing a line piece by piece (`ls` appends
/// "[", each child and "]\n" separately): an event can land in the middle of a line. Removing each
/// printed chunk where it landed restores the command's line; the events are returned apart.
pub fn lift_zkcli_events(text: &str) -> (String, Vec<String>) {
    let mut text = text.replace("\nWATCHER::\n", "");
    let mut events = Vec::new();
    while let Some(start) = text.find("\nWatchedEvent ") {
        let end = text[start + 1..]
            .find('\n')
            .map_or(text.len(), |at| start + 1 + at + 1);
        events.push(text[start + 1..end].trim_end().to_owned());
        text.replace_range(start..end, "");
    }
    (text, events)
}

/// Orders zkCli's output so its event thread's timing does not matter: blank and "WATCHER::" lines are
/// dropped, and the event lines move to the end, sorted (a multiset), after a marker line.
pub fn events_apart(lines: Vec<String>) -> Vec<String> {
    let (mut events, mut rest): (Vec<String>, Vec<String>) = lines
        .into_iter()
        .filter(|line| !line.is_empty() && line != "WATCHER::")
        .partition(|line| line.starts_with("WatchedEvent "));
    events.sort();
    rest.push("--- watch events, in any order ---".to_string());
    rest.extend(events);
    rest
}
