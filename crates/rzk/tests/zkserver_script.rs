//! bin/zkServer.sh against the real rzk binary: the commands, messages and exit codes operators and their
//! scripts rely on (ZK-COMPAT.md §1c), plus a check of the `RzkServer` harness itself.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{
    describe_output, free_port, run_bounded, srvr_mode, stderr_text, stdout_text, RzkServer,
};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bin")
        .join(name)
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

    fn zk_server(&self, args: &[&str]) -> Output {
        let mut command = Command::new(script("zkServer.sh"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("ZOOCFGDIR", self.dir.path().join("conf"))
            .env("ZOO_LOG_DIR", self.dir.path().join("logs"))
            .env("RZK_BIN", env!("CARGO_BIN_EXE_rzk"))
            .env_remove("ZOOCFG")
            .env_remove("ZOOPIDFILE");
        run_bounded(command, None, Duration::from_secs(60))
    }
}

impl Drop for ScriptSetup {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.pid_file()) {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -s KILL {} 2>/dev/null", pid.trim())])
                .status();
        }
    }
}

/// Goal: start/status/stop behave like ZooKeeper's script. Method: run the lifecycle and compare the lines and
/// exit codes ZooKeeper's zkServer.sh prints at each step.
#[test]
fn zkserver_lifecycle_matches_zookeeper() {
    let setup = ScriptSetup::new();

    let status = setup.zk_server(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        describe_output(&status)
    );
    assert!(stdout_text(&status).contains("Error contacting service. It is probably not running."));
    assert!(
        stderr_text(&status).contains("Using config: "),
        "{}",
        describe_output(&status)
    );

    let start = setup.zk_server(&["start"]);
    assert_eq!(start.status.code(), Some(0), "{}", describe_output(&start));
    assert_eq!(stdout_text(&start), "Starting zookeeper ... STARTED\n");
    let pid = fs::read_to_string(setup.pid_file()).expect("pid file in dataDir");

    let again = setup.zk_server(&["start"]);
    assert_eq!(again.status.code(), Some(1), "{}", describe_output(&again));
    assert_eq!(
        stdout_text(&again),
        format!("Starting zookeeper ... already running as process {pid}.\n")
    );

    let status = setup.zk_server(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        describe_output(&status)
    );
    let expected = format!(
        "Client port found: {}. Client address: localhost. Client SSL: false.\nMode: standalone\n",
        setup.port
    );
    assert_eq!(stdout_text(&status), expected);

    let stop = setup.zk_server(&["stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", describe_output(&stop));
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
    assert_eq!(start.status.code(), Some(1), "{}", describe_output(&start));
    assert_eq!(
        stdout_text(&start),
        "Starting zookeeper ... FAILED TO START\n"
    );
    assert!(
        stderr_text(&start).contains("clientPort=abc: not a port number"),
        "{}",
        describe_output(&start)
    );
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
