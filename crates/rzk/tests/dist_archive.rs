//! scripts/dist.sh's archive, used the way ZooKeeper's Getting Started guide uses a release: unpack it,
//! `mv conf/zoo_sample.cfg conf/zoo.cfg`, set dataDir, `bin/zkServer.sh start`, `status`, `bin/zkCli.sh
//! create`, `stop`. The debug binary is packaged (RZK_BIN) so no release build is needed.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{describe_output, free_port, run_bounded, stderr_text, stdout_text};

const SCRIPT_WAIT: Duration = Duration::from_secs(60);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command run from `dir` with none of the variables that would point the scripts elsewhere
/// than the unpacked release (as for a user with a clean shell).
fn user_command(dir: &Path, program: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for variable in [
        "RZK_BIN",
        "ZOOCFGDIR",
        "ZOOCFG",
        "ZOOPIDFILE",
        "ZOO_LOG_DIR",
        "ZOOKEEPER_CONF",
    ] {
        command.env_remove(variable);
    }
    command
}

/// Kills the unpacked server if the test fails between start and stop.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.0) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
    }
}

fn build_archive(out: &Path) -> PathBuf {
    let mut command = Command::new(repository().join("scripts/dist.sh"));
    command
        .args(["--out".as_ref(), out.as_os_str()])
        .env("RZK_BIN", env!("CARGO_BIN_EXE_rzk"));
    let output = run_bounded(command, None, SCRIPT_WAIT);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        describe_output(&output)
    );
    let archive = PathBuf::from(stdout_text(&output).trim());
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        archive.file_name().and_then(|name| name.to_str()),
        Some(format!("rzk-{version}-bin.tar.gz").as_str())
    );
    assert!(archive.is_file(), "{}", archive.display());
    archive
}

fn unpack(archive: &Path, into: &Path) -> PathBuf {
    let mut command = Command::new("tar");
    command
        .args([
            "-xzf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            into.as_os_str(),
        ])
        .env_remove("TAR_OPTIONS");
    let output = run_bounded(command, None, SCRIPT_WAIT);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        describe_output(&output)
    );
    into.join(format!("rzk-{}-bin", env!("CARGO_PKG_VERSION")))
}

/// The tutorial's edit of zoo.cfg: a dataDir of our own, a free clientPort, the admin server off
/// (its port 8080 may be taken).
fn edit_config(config: &Path, data_dir: &Path, port: u16) {
    let text = fs::read_to_string(config).expect("zoo.cfg");
    let mut edited: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("dataDir=") {
                format!("dataDir={}", data_dir.display())
            } else if line.starts_with("clientPort=") {
                format!("clientPort={port}")
            } else {
                line.to_string()
            }
        })
        .collect();
    edited.push("admin.enableServer=false".to_string());
    fs::write(config, edited.join("\n") + "\n").expect("write zoo.cfg");
}

fn zk_server(root: &Path, subcommand: &str) -> Output {
    let mut command = user_command(root, &root.join("bin/zkServer.sh"));
    command.arg(subcommand);
    run_bounded(command, None, SCRIPT_WAIT)
}

/// Goal: the release archive has ZooKeeper's layout and its scripts run the packaged binary through the
/// Getting Started steps. Method: build it with dist.sh, unpack it in a temp dir, and follow the tutorial.
#[test]
fn release_archive_follows_the_getting_started_guide() {
    let work = tempfile::tempdir().expect("temporary directory");
    let archive = build_archive(&work.path().join("dist"));
    let unpacked = work.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    let root = unpack(&archive, &unpacked);

    for file in [
        "bin/rzk",
        "bin/zkServer.sh",
        "bin/zkCli.sh",
        "bin/zkCleanup.sh",
        "bin/zkEnv.sh",
        "conf/zoo_sample.cfg",
        "README.md",
    ] {
        assert!(root.join(file).is_file(), "{file} missing from the archive");
    }

    // cd conf && mv zoo_sample.cfg zoo.cfg, then edit it.
    let conf = root.join("conf");
    fs::rename(conf.join("zoo_sample.cfg"), conf.join("zoo.cfg")).unwrap();
    let data_dir = work.path().join("zookeeper-data");
    fs::create_dir_all(&data_dir).unwrap();
    let port = free_port();
    edit_config(&conf.join("zoo.cfg"), &data_dir, port);
    let _guard = StopOnDrop(data_dir.join("zookeeper_server.pid"));

    let start = zk_server(&root, "start");
    assert_eq!(start.status.code(), Some(0), "{}", describe_output(&start));
    assert_eq!(stdout_text(&start), "Starting zookeeper ... STARTED\n");
    assert!(
        stderr_text(&start).contains(&format!("Using config: {}", conf.join("zoo.cfg").display()))
    );

    let status = zk_server(&root, "status");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        describe_output(&status)
    );
    assert!(
        stdout_text(&status).ends_with("Mode: standalone\n"),
        "{}",
        describe_output(&status)
    );

    let server = format!("127.0.0.1:{port}");
    let mut create = user_command(&root, &root.join("bin/zkCli.sh"));
    create.args(["-server", &server, "create", "/java", "spring"]);
    let created = run_bounded(create, None, SCRIPT_WAIT);
    assert_eq!(
        created.status.code(),
        Some(0),
        "{}",
        describe_output(&created)
    );
    assert!(
        stderr_text(&created).contains("Created /java"),
        "{}",
        describe_output(&created)
    );

    let mut get = user_command(&root, &root.join("bin/zkCli.sh"));
    get.args(["-server", &server, "get", "/java"]);
    let got = run_bounded(get, None, SCRIPT_WAIT);
    assert_eq!(got.status.code(), Some(0), "{}", describe_output(&got));
    assert!(
        stdout_text(&got).contains("spring"),
        "{}",
        describe_output(&got)
    );

    let stop = zk_server(&root, "stop");
    assert_eq!(stop.status.code(), Some(0), "{}", describe_output(&stop));
    assert_eq!(stdout_text(&stop), "Stopping zookeeper ... STOPPED\n");

    let status = zk_server(&root, "status");
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        describe_output(&status)
    );
    assert!(stdout_text(&status).contains("Error contacting service. It is probably not running."));
}
