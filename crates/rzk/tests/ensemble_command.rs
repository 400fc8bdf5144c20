//! `rzk ensemble start|status|restart|stop` on three zoo.cfg directories of one host (the
//! tutorial's pseudo-cluster), checked through `srvr` on each client port.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{describe_output, free_port, run_bounded, rzk_binary, srvr_mode, try_four_letter};

/// One `rzk ensemble ...` invocation may take this long (start waits for a quorum).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Three member directories `zk1..zk3` (each `conf/zoo.cfg` + `data/myid`) in a temporary
/// directory. Dropping it SIGKILLs whatever their pid files still name.
struct Pseudo {
    dir: tempfile::TempDir,
    client_ports: Vec<u16>,
}

impl Pseudo {
    fn new() -> Pseudo {
        let dir = tempfile::tempdir().expect("temporary directory");
        let quorum: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let election: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let servers: String = (0..3)
            .map(|i| format!("server.{}=127.0.0.1:{}:{}\n", i + 1, quorum[i], election[i]))
            .collect();
        for (i, client_port) in client_ports.iter().enumerate() {
            let member = dir.path().join(format!("zk{}", i + 1));
            fs::create_dir_all(member.join("conf")).unwrap();
            fs::create_dir_all(member.join("data")).unwrap();
            fs::write(member.join("data").join("myid"), format!("{}\n", i + 1)).unwrap();
            fs::write(
                member.join("conf").join("zoo.cfg"),
                format!(
                    "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                     4lw.commands.whitelist=*\nadmin.enableServer=false\n{servers}",
                    member.join("data").display(),
                    client_port
                ),
            )
            .unwrap();
        }
        Pseudo { dir, client_ports }
    }

    fn member(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("zk{}", i + 1))
    }

    fn pid_file(&self, i: usize) -> PathBuf {
        self.member(i).join("data").join("zookeeper_server.pid")
    }

    /// `rzk ensemble <action> <members...>` run in the pseudo-cluster's directory.
    fn ensemble(&self, action: &str, members: &[usize]) -> Output {
        let mut command = Command::new(rzk_binary());
        command
            .arg("ensemble")
            .arg(action)
            .args(members.iter().map(|i| format!("zk{}", i + 1)))
            .current_dir(self.dir.path());
        run_bounded(command, None, COMMAND_TIMEOUT)
    }

    fn modes(&self) -> Vec<Option<String>> {
        self.client_ports
            .iter()
            .map(|port| {
                try_four_letter(*port, "srvr", Duration::from_secs(5))
                    .ok()
                    .and_then(|reply| srvr_mode(&reply).map(str::to_string))
            })
            .collect()
    }

    fn log(&self, i: usize) -> String {
        fs::read_to_string(self.member(i).join("data").join("rzk.log")).unwrap_or_default()
    }
}

impl Drop for Pseudo {
    fn drop(&mut self) {
        for i in 0..3 {
            if let Some(pid) = read_pid(&self.pid_file(i)) {
                // SAFETY: kill(2) on the pid our own `rzk ensemble start` wrote.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            if std::thread::panicking() {
                eprintln!("--- zk{} log ---\n{}", i + 1, self.log(i));
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` runs (a zombie left for an init that does not reap counts as gone).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next()),
            Some('Z' | 'X')
        )
    })
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        describe_output(output)
    );
}

fn one_leader_two_followers(modes: &[Option<String>]) -> bool {
    let count = |mode: &str| modes.iter().filter(|m| m.as_deref() == Some(mode)).count();
    count("leader") == 1 && count("follower") == 2
}

#[test]
fn start_status_restart_and_stop_a_three_member_pseudo_cluster() {
    let pseudo = Pseudo::new();

    let output = pseudo.ensemble("start", &[0, 1, 2]);
    assert_success("rzk ensemble start", &output);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(stdout.matches("STARTED, Mode: ").count(), 3, "{stdout}");
    for i in 0..3 {
        let pid = read_pid(&pseudo.pid_file(i)).expect("a pid file per member");
        assert!(
            stdout.contains(&format!("starting as process {pid}")),
            "{stdout}"
        );
    }
    // `start` returns once every member reported a mode: one leads, two follow.
    let modes = pseudo.modes();
    assert!(one_leader_two_followers(&modes), "modes: {modes:?}");

    let output = pseudo.ensemble("status", &[0, 1, 2]);
    assert_success("rzk ensemble status", &output);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(stdout.matches("Mode: leader").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("Mode: follower").count(), 2, "{stdout}");
    for i in 1..=3 {
        assert!(stdout.contains(&format!("server.{i} (")), "{stdout}");
    }

    // A second start leaves running members alone.
    let before = read_pid(&pseudo.pid_file(0));
    let output = pseudo.ensemble("start", &[0]);
    assert_success("rzk ensemble start (again)", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("already running"));
    assert_eq!(read_pid(&pseudo.pid_file(0)), before);

    // Restart one member: a new process, and the ensemble is whole again.
    let output = pseudo.ensemble("restart", &[1]);
    assert_success("rzk ensemble restart", &output);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.contains("STOPPED") && stdout.contains("STARTED"),
        "{stdout}"
    );
    assert_ne!(read_pid(&pseudo.pid_file(1)), None);
    let output = pseudo.ensemble("status", &[0, 1, 2]);
    assert_success("rzk ensemble status after restart", &output);
    assert!(one_leader_two_followers(&pseudo.modes()));

    let pids: Vec<i32> = (0..3)
        .filter_map(|i| read_pid(&pseudo.pid_file(i)))
        .collect();
    assert_eq!(pids.len(), 3);
    let output = pseudo.ensemble("stop", &[0, 1, 2]);
    assert_success("rzk ensemble stop", &output);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(stdout.matches("STOPPED").count(), 3, "{stdout}");
    for (i, pid) in pids.iter().enumerate() {
        assert!(!pseudo.pid_file(i).exists(), "pid file of zk{} left", i + 1);
        assert!(!alive(*pid), "process {pid} still runs after stop");
    }
    assert_eq!(pseudo.modes(), vec![None, None, None]);

    // Status of stopped servers fails, naming them.
    let output = pseudo.ensemble("status", &[0, 1, 2]);
    assert!(!output.status.success(), "{}", describe_output(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("not running"));
    // Stopping again is not an error.
    assert_success(
        "rzk ensemble stop (again)",
        &pseudo.ensemble("stop", &[0, 1, 2]),
    );
}

#[test]
fn a_config_argument_that_names_nothing_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(rzk_binary());
    command
        .args(["ensemble", "status"])
        .arg(dir.path())
        .current_dir(dir.path());
    let output = run_bounded(command, None, COMMAND_TIMEOUT);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("neither conf/zoo.cfg nor zoo.cfg"),
        "{}",
        describe_output(&output)
    );
}
