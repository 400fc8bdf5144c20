//! bin/zkServer.sh and bin/zkCleanup.sh against the real rzk binary: the commands, messages and exit codes
//! operators and their scripts rely on (ZK-COMPAT.md §1c; compared with Debian's ZooKeeper 3.8.0
//! /usr/share/zookeeper/bin/zkServer.sh), the environment variables of zkEnv.sh, plus a check of the
//! `RzkServer` harness itself.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{
    describe_output, free_port, run_bounded, srvr_mode, stderr_text, stdout_text, try_four_letter,
    RzkServer,
};

/// Bound of every wait for a server to serve, stop serving, or exit.
const WAIT: Duration = Duration::from_secs(30);
/// Interval between two looks while waiting.
const POLL: Duration = Duration::from_millis(50);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bin")
        .join(name)
}

/// Polls `done` until it holds; panics naming `what` after [`WAIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(POLL);
    }
}

/// `Mode:` of whatever answers `srvr` on `port` now.
fn mode_on(port: u16) -> Option<String> {
    try_four_letter(port, "srvr", Duration::from_secs(2))
        .ok()
        .and_then(|reply| srvr_mode(&reply).map(str::to_string))
}

/// Fails with the command's output unless it exited with `code`.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}",
        describe_output(output)
    );
}

/// Fails with the command's output unless its stderr contains `text`.
fn assert_stderr_has(output: &Output, text: &str) {
    assert!(
        stderr_text(output).contains(text),
        "{}",
        describe_output(output)
    );
}

fn process_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

/// A conf dir + data dir for zkServer.sh, stopping whatever it started when dropped (even on panic).
struct ScriptSetup {
    dir: tempfile::TempDir,
    port: u16,
}

impl ScriptSetup {
    fn new() -> ScriptSetup {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        fs::create_dir_all(dir.path().join("conf")).unwrap();
        let config = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nadmin.enableServer=false\n",
            dir.path().join("data").display()
        );
        fs::write(dir.path().join("conf/zoo.cfg"), config).unwrap();
        fs::write(
            dir.path().join("conf/bad.cfg"),
            "tickTime=2000\ndataDir=./d\nclientPort=abc\n",
        )
        .unwrap();
        ScriptSetup { dir, port }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("data/zookeeper_server.pid")
    }

    /// Where the environment-variable test puts its pid file (ZOOPIDFILE).
    fn custom_pid_file(&self) -> PathBuf {
        self.dir.path().join("run/zk.pid")
    }

    /// zkServer.sh with this setup's ZOOCFGDIR and ZOO_LOG_DIR, the test's rzk binary, and no other
    /// zkEnv.sh variable from the test's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(script("zkServer.sh"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("ZOOCFGDIR", self.dir.path().join("conf"))
            .env("ZOO_LOG_DIR", self.dir.path().join("logs"))
            .env("RZK_BIN", env!("CARGO_BIN_EXE_rzk"))
            .env_remove("ZOOCFG")
            .env_remove("ZOOPIDFILE")
            .env_remove("ZOOKEEPER_CONF");
        command
    }

    fn zk_server(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), None, Duration::from_secs(60))
    }
}

impl Drop for ScriptSetup {
    fn drop(&mut self) {
        for pid_file in [self.pid_file(), self.custom_pid_file()] {
            if let Ok(pid) = fs::read_to_string(pid_file) {
                let _ = Command::new("sh")
                    .args(["-c", &format!("kill -s KILL {} 2>/dev/null", pid.trim())])
                    .status();
            }
        }
    }
}

/// A child process killed (SIGKILL) when dropped, for servers a test runs in the foreground.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// Polls until the process exits; panics after [`WAIT`].
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} did not exit within {WAIT:?}",
                self.0.id()
            );
            std::thread::sleep(POLL);
        }
    }
}

/// Goal: start/status/stop behave like ZooKeeper's script. Method: run the lifecycle and compare the lines and
/// exit codes ZooKeeper's zkServer.sh prints at each step.
#[test]
fn zkserver_lifecycle_matches_zookeeper() {
    let setup = ScriptSetup::new();

    let status = setup.zk_server(&["status"]);
    assert_exit(&status, 1);
    assert!(stdout_text(&status).contains("Error contacting service. It is probably not running."));
    assert_stderr_has(&status, "Using config: ");

    let start = setup.zk_server(&["start"]);
    assert_exit(&start, 0);
    assert_eq!(stdout_text(&start), "Starting zookeeper ... STARTED\n");
    let pid = fs::read_to_string(setup.pid_file()).expect("pid file in dataDir");

    let again = setup.zk_server(&["start"]);
    assert_exit(&again, 1);
    assert_eq!(
        stdout_text(&again),
        format!("Starting zookeeper ... already running as process {pid}.\n")
    );

    let status = setup.zk_server(&["status"]);
    assert_exit(&status, 0);
    let expected = format!(
        "Client port found: {}. Client address: localhost. Client SSL: false.\nMode: standalone\n",
        setup.port
    );
    assert_eq!(stdout_text(&status), expected);

    let stop = setup.zk_server(&["stop"]);
    assert_exit(&stop, 0);
    assert_eq!(stdout_text(&stop), "Stopping zookeeper ... STOPPED\n");
    assert!(!setup.pid_file().exists());

    let stop = setup.zk_server(&["stop"]);
    assert_eq!(stop.status.code(), Some(0));
    assert!(
        stdout_text(&stop).contains("no zookeeper to stop (could not find file "),
        "{}",
        describe_output(&stop)
    );
}

/// Goal: a bad config is reported at `start`, with rzk's message naming the key. Method: start with
/// clientPort=abc and expect FAILED TO START, exit 1, and the message on stderr.
#[test]
fn zkserver_start_reports_config_errors() {
    let setup = ScriptSetup::new();
    let start = setup.zk_server(&["start", "bad.cfg"]);
    assert_exit(&start, 1);
    assert_eq!(
        stdout_text(&start),
        "Starting zookeeper ... FAILED TO START\n"
    );
    assert_stderr_has(&start, "clientPort=abc: not a port number");
}

/// Goal: unknown commands fail with the usage line. Method: run `zkServer.sh bogus`.
#[test]
fn zkserver_unknown_command_prints_usage() {
    let setup = ScriptSetup::new();
    let output = setup.zk_server(&["bogus"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_text(&output)
        .contains("{start|start-foreground|stop|version|restart|status|print-cmd}"));
}

/// Goal: the RzkServer harness works against the binary: ready on a free port, survives restart and kill -9.
/// Method: start, check srvr, restart, kill -9 and start again on the same port.
#[test]
fn rzk_server_harness_start_restart_kill9() {
    let mut server = RzkServer::start(&[]);
    assert_eq!(srvr_mode(&server.four_letter("srvr")), Some("standalone"));
    let port = server.port();
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(srvr_mode(&server.four_letter("srvr")), Some("standalone"));
    server.kill9();
    assert!(!server.is_running());
    server.start_again();
    assert_eq!(srvr_mode(&server.four_letter("srvr")), Some("standalone"));
}

/// Goal: `restart` replaces the server with a new process that serves again, exit 0, ZooKeeper's two lines.
/// Method: start, note the pid, restart, and compare pids, the old process, the output and `status`.
#[test]
fn zkserver_restart_runs_a_new_process_that_serves() {
    let setup = ScriptSetup::new();
    let start = setup.zk_server(&["start"]);
    assert_exit(&start, 0);
    let old_pid = fs::read_to_string(setup.pid_file()).expect("pid file after start");

    let restart = setup.zk_server(&["restart"]);
    assert_exit(&restart, 0);
    assert_eq!(
        stdout_text(&restart),
        "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    );
    let new_pid = fs::read_to_string(setup.pid_file()).expect("pid file after restart");
    assert_ne!(old_pid.trim(), new_pid.trim(), "restart kept the old pid");
    assert!(!process_alive(&old_pid), "old process {old_pid} still runs");
    assert!(
        process_alive(&new_pid),
        "new process {new_pid} is not running"
    );
    assert_eq!(mode_on(setup.port).as_deref(), Some("standalone"));
    let status = setup.zk_server(&["status"]);
    assert_exit(&status, 0);
    assert!(stdout_text(&status).ends_with("Mode: standalone\n"));
    assert_eq!(setup.zk_server(&["stop"]).status.code(), Some(0));
}

/// Goal: `start-foreground` runs the server in the script's own process (no pid file, nothing detached) until
/// SIGTERM ends it. Method: spawn it, wait (bounded) for srvr, check it is still our child, SIGTERM that pid.
#[test]
fn zkserver_start_foreground_runs_until_sigterm() {
    let setup = ScriptSetup::new();
    let output_path = setup.dir.path().join("foreground.out");
    let output = fs::File::create(&output_path).unwrap();
    let mut command = setup.command(&["start-foreground"]);
    command
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output);
    let mut child = KillOnDrop(command.spawn().expect("spawn zkServer.sh start-foreground"));
    let pid = child.0.id();
    wait_until("start-foreground serving (srvr: Mode: standalone)", || {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "start-foreground exited before serving:\n{}",
            fs::read_to_string(&output_path).unwrap_or_default()
        );
        mode_on(setup.port).as_deref() == Some("standalone")
    });
    assert!(
        !setup.pid_file().exists(),
        "start-foreground writes no pid file"
    );
    // The script execs rzk: the pid we spawned is the server.
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("/proc/<pid>/exe");
    assert_eq!(
        exe.file_name(),
        Path::new(env!("CARGO_BIN_EXE_rzk")).file_name()
    );

    let kill = Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = child.wait_exit();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_eq!(mode_on(setup.port), None, "still answering after exit");
    let printed = fs::read_to_string(&output_path).unwrap();
    assert!(printed.contains("Using config: "), "{printed}");
    assert!(printed.contains("rzk serving"), "{printed}");
}

/// Goal: `print-cmd` prints the command `start` runs, and that command works as printed. Method: check its
/// parts, then run the line with bash and wait (bounded) until it serves and writes its .out file.
#[test]
fn zkserver_print_cmd_prints_a_command_that_runs_the_server() {
    let setup = ScriptSetup::new();
    let printed = setup.zk_server(&["print-cmd"]);
    assert_exit(&printed, 0);
    let line = stdout_text(&printed);
    assert_eq!(line.lines().count(), 1, "{line}");
    let logs = setup.dir.path().join("logs");
    let prefix = format!(
        "\"{}\" server \"{}\" > \"{}/zookeeper-",
        env!("CARGO_BIN_EXE_rzk"),
        setup.dir.path().join("conf/zoo.cfg").display(),
        logs.display()
    );
    assert!(line.starts_with(&prefix), "{line:?} vs {prefix:?}");
    assert!(line.ends_with(".out\" 2>&1 < /dev/null\n"), "{line:?}");
    assert!(!setup.pid_file().exists(), "print-cmd starts nothing");

    let mut run = Command::new("bash");
    run.arg("-c")
        .arg(format!("exec {}", line.trim()))
        .stdin(Stdio::null());
    let mut child = KillOnDrop(run.spawn().expect("run the printed command"));
    wait_until("the printed command serving", || {
        assert!(child.0.try_wait().unwrap().is_none(), "it exited");
        mode_on(setup.port).as_deref() == Some("standalone")
    });
    let out_file = line.split('"').nth(5).expect("the .out path").to_string();
    // The server logs "rzk serving" just after its accept loop starts, so srvr can answer first.
    wait_until("the .out file the command names to say rzk serving", || {
        fs::read_to_string(&out_file).is_ok_and(|log| log.contains("rzk serving"))
    });
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.0.id().to_string()])
        .status();
    assert!(child.wait_exit().success());
}

/// Goal: `version` prints one line in the shape of ZooKeeper's (`Apache ZooKeeper, version 3.8.0 ...`) and
/// exits 0. Method: run it and compare with the crate version.
#[test]
fn zkserver_version_is_one_line_like_zookeepers() {
    let setup = ScriptSetup::new();
    let output = setup.zk_server(&["version"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout_text(&output),
        format!(
            "rzk, version {} (ZooKeeper 3.8/3.9 wire compatible)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Goal: zkEnv.sh's variables are honoured: ZOOCFGDIR + ZOOCFG choose the config, ZOOPIDFILE the pid file,
/// ZOO_LOG_DIR where the server's output file goes (with the server's log lines in it). Method: start, status and
/// stop with all four pointing away from the defaults, and look where each should lead.
#[test]
fn zkserver_honours_the_zkenv_variables() {
    let setup = ScriptSetup::new();
    let conf_dir = setup.dir.path().join("elsewhere");
    fs::create_dir_all(&conf_dir).unwrap();
    fs::copy(
        setup.dir.path().join("conf/zoo.cfg"),
        conf_dir.join("server.cfg"),
    )
    .unwrap();
    let log_dir = setup.dir.path().join("my-logs");
    let pid_file = setup.custom_pid_file();
    let run = |subcommand: &str| {
        let mut command = setup.command(&[subcommand]);
        command
            .env("ZOOCFGDIR", &conf_dir)
            .env("ZOOCFG", "server.cfg")
            .env("ZOOPIDFILE", &pid_file)
            .env("ZOO_LOG_DIR", &log_dir);
        run_bounded(command, None, Duration::from_secs(60))
    };

    let start = run("start");
    assert_exit(&start, 0);
    assert_stderr_has(
        &start,
        &format!("Using config: {}", conf_dir.join("server.cfg").display()),
    );
    let pid = fs::read_to_string(&pid_file).expect("the pid file ZOOPIDFILE names");
    assert!(
        process_alive(&pid),
        "pid {pid} from ZOOPIDFILE is not running"
    );
    assert!(!setup.pid_file().exists(), "a pid file in dataDir too");

    let out_files: Vec<PathBuf> = fs::read_dir(&log_dir)
        .expect("ZOO_LOG_DIR created")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(out_files.len(), 1, "{out_files:?}");
    let name = out_files[0].file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("zookeeper-") && name.contains("-server-") && name.ends_with(".out"),
        "{name}"
    );
    let out_file = out_files[0].clone();
    wait_until("the server's log line in the .out file", || {
        fs::read_to_string(&out_file).is_ok_and(|log| log.contains("rzk serving"))
    });
    assert!(
        !setup.dir.path().join("logs").exists(),
        "the default log dir was used"
    );

    let status = run("status");
    assert!(
        stdout_text(&status).ends_with("Mode: standalone\n"),
        "{}",
        describe_output(&status)
    );
    let stop = run("stop");
    assert_eq!(stdout_text(&stop), "Stopping zookeeper ... STOPPED\n");
    assert!(!pid_file.exists());
    wait_until("the stopped process gone", || !process_alive(&pid));
    assert!(fs::read_to_string(&out_file)
        .unwrap()
        .contains("shutting down"));
}

/// Goal: without an rzk binary the scripts say so, say how to fix it, and exit non-zero. Method: copies of the
/// scripts in a directory with no rzk next to them or above them, PATH without rzk; then RZK_BIN naming
/// nothing.
#[test]
fn scripts_report_a_missing_rzk_binary() {
    let setup = ScriptSetup::new();
    let bin = setup.dir.path().join("release/bin");
    fs::create_dir_all(&bin).unwrap();
    for name in ["zkServer.sh", "zkEnv.sh", "zkCli.sh", "zkCleanup.sh"] {
        fs::copy(script(name), bin.join(name)).unwrap();
    }
    let path = "/usr/bin:/bin";
    for dir in path.split(':') {
        assert!(
            !Path::new(dir).join("rzk").exists(),
            "{dir}/rzk exists: this test needs a PATH without rzk"
        );
    }
    let run = |name: &str, args: &[&str], rzk_bin: Option<&str>| {
        // Through bash rather than by executing the copy: a test on another thread that forks while `fs::copy`
        // still holds the copy open for writing gives that child the write descriptor until it execs, and an
        // exec of the copy meanwhile fails with ETXTBSY ("Text file busy"; seen in CI).
        let mut command = Command::new("bash");
        command
            .arg(bin.join(name))
            .args(args)
            .env("PATH", path)
            .env("ZOOCFGDIR", setup.dir.path().join("conf"))
            .env("ZOO_LOG_DIR", setup.dir.path().join("logs"))
            .env_remove("RZK_BIN");
        if let Some(value) = rzk_bin {
            command.env("RZK_BIN", value);
        }
        run_bounded(command, None, Duration::from_secs(60))
    };

    let start = run("zkServer.sh", &["start"], None);
    assert_exit(&start, 1);
    assert_eq!(
        stdout_text(&start),
        "Starting zookeeper ... FAILED TO START\n"
    );
    let why = stderr_text(&start);
    assert!(why.contains("rzk binary not found"), "{why}");
    assert!(
        why.contains(&bin.join("rzk").display().to_string()),
        "{why}"
    );
    assert!(why.contains("set RZK_BIN=/path/to/rzk"), "{why}");
    assert!(!setup.pid_file().exists());

    for (name, args) in [
        ("zkServer.sh", &["version"][..]),
        ("zkServer.sh", &["start-foreground"][..]),
        ("zkServer.sh", &["print-cmd"][..]),
        ("zkCli.sh", &["-server", "127.0.0.1:1", "ls", "/"][..]),
        ("zkCleanup.sh", &["-n", "3"][..]),
    ] {
        let output = run(name, args, None);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name} {args:?}: {}",
            describe_output(&output)
        );
        assert!(
            stderr_text(&output).contains("rzk binary not found"),
            "{name} {args:?}: {}",
            describe_output(&output)
        );
    }

    let missing = setup.dir.path().join("no/such/rzk");
    let output = run("zkServer.sh", &["start"], Some(missing.to_str().unwrap()));
    assert_exit(&output, 1);
    assert_stderr_has(
        &output,
        &format!("RZK_BIN={} is not an executable file", missing.display()),
    );
}

/// `snapshot.*` file names under `<data_dir>/version-2`, oldest first (the names are zero-padded hex).
fn snapshot_names(data_dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(data_dir.join("version-2")).expect("version-2 exists") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snapshot.") {
            names.push(name.into_owned());
        }
    }
    names.sort();
    names
}

/// Goal: `bin/zkCleanup.sh -n 3` end to end, with zoo.cfg found as ZooKeeper's script finds it (ZOOCFGDIR or
/// `--config`): the three newest snapshots stay; `-n 2` is refused (PurgeTxnLog: count must be >= 3).
/// Method: a server with snapCount=20 and 300 writes (as cleanup_command.rs), stopped; then the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcleanup_script_keeps_the_three_newest_snapshots() {
    use zookeeper_client::{Acls, Client, CreateMode};
    let mut server = RzkServer::start(&["snapCount=20"]);
    let client = tokio::time::timeout(WAIT, Client::connect(&server.connect_string()))
        .await
        .expect("session within the bound")
        .expect("session");
    let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for i in 0..300 {
        client
            .create(&format!("/n{i}"), b"v", &mode)
            .await
            .expect("create");
    }
    drop(client);
    let data_dir = server.data_dir();
    // Snapshots are saved in the background.
    wait_until(
        "more than 3 snapshots after 300 writes with snapCount=20",
        || snapshot_names(&data_dir).len() > 3,
    );
    server.stop();
    let before = snapshot_names(&data_dir);

    let cleanup = |args: &[&str]| {
        let mut command = Command::new(script("zkCleanup.sh"));
        command
            .args(args)
            .env("RZK_BIN", env!("CARGO_BIN_EXE_rzk"))
            .env_remove("ZOOCFG")
            .env_remove("ZOOCFGDIR")
            .env_remove("ZOOKEEPER_CONF");
        command
    };
    let mut refused = cleanup(&["-n", "2"]);
    refused.env("ZOOCFGDIR", server.dir());
    let refused = run_bounded(refused, None, WAIT);
    assert_ne!(
        refused.status.code(),
        Some(0),
        "{}",
        describe_output(&refused)
    );
    assert_stderr_has(&refused, "at least 3 snapshots");
    assert_eq!(
        snapshot_names(&data_dir),
        before,
        "a refused cleanup removed files"
    );

    let dir = server.dir().display().to_string();
    let kept = run_bounded(cleanup(&["--config", &dir, "-n", "3"]), None, WAIT);
    assert_exit(&kept, 0);
    let after = snapshot_names(&data_dir);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        before.ends_with(&after),
        "the three newest are kept: before {before:?}, after {after:?}"
    );
    for removed in &before[..before.len() - 3] {
        assert!(
            stdout_text(&kept).contains(removed.as_str()),
            "{removed} not reported: {}",
            describe_output(&kept)
        );
    }
}
