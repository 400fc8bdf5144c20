//! scripts/dist.sh's archive, used step by step as the user tutorial (`zookeeper-tutorial-zh.txt` §2.1,
//! ZooKeeper's Getting Started) uses a release: unpack it, rename the directory, `cd conf && mv
//! zoo_sample.cfg zoo.cfg`, edit dataDir/dataLogDir/clientPort, `mkdir` both directories, `bin/zkServer.sh
//! start`, `status`, an interactive `bin/zkCli.sh` session fed on stdin (§3.3's commands), `cd bin &&
//! ./zkServer.sh stop`. The debug binary is packaged (RZK_BIN) so no release build is needed.

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

/// The tutorial's edit of zoo.cfg, as a user makes it in an editor: dataDir and dataLogDir (uncommented) to
/// the directories the tutorial creates, clientPort and the AdminServer's port (uncommented; 8080 may be
/// taken) to free ports. Every other line stays as shipped.
fn edit_config(config: &Path, data_dir: &Path, log_dir: &Path, port: u16, admin_port: u16) {
    let text = fs::read_to_string(config).expect("zoo.cfg");
    let mut edits = [
        ("dataDir=", format!("dataDir={}", data_dir.display()), false),
        (
            "#dataLogDir=",
            format!("dataLogDir={}", log_dir.display()),
            false,
        ),
        ("clientPort=", format!("clientPort={port}"), false),
        (
            "#admin.serverPort=",
            format!("admin.serverPort={admin_port}"),
            false,
        ),
    ];
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            for (prefix, replacement, done) in &mut edits {
                if line.starts_with(*prefix) {
                    *done = true;
                    return replacement.clone();
                }
            }
            line.to_string()
        })
        .collect();
    for (prefix, _, done) in &edits {
        assert!(
            done,
            "the shipped zoo_sample.cfg has no line starting {prefix:?}:\n{text}"
        );
    }
    fs::write(config, edited.join("\n") + "\n").expect("write zoo.cfg");
}

fn zk_server(dir: &Path, script: &Path, subcommand: &str) -> Output {
    let mut command = user_command(dir, script);
    command.arg(subcommand);
    run_bounded(command, None, SCRIPT_WAIT)
}

/// The tutorial's zkCli session (§3.3), one command a line, as typed at the prompt.
const SESSION: &str = "\
create /java spring
ls /
get /java
set /java mybatis
get /java
stat /java
delete /java
ls /
quit
";

/// Asserts that `lines` appear in `text` in this order (each a whole line).
fn assert_lines_in_order(text: &str, lines: &[&str], context: &str) {
    let mut rest = text.lines();
    for expected in lines {
        assert!(
            rest.any(|line| line == *expected),
            "line {expected:?} missing (or out of order)\n{context}"
        );
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Goal: the release archive has ZooKeeper's layout and a user who follows the tutorial word for word gets a
/// working server. Method: build it with dist.sh, unpack it in a temp dir, and do each step with the
/// archive's own scripts from a clean environment.
#[test]
fn release_archive_follows_the_getting_started_guide() {
    let work = tempfile::tempdir().expect("temporary directory");
    let archive = build_archive(&work.path().join("dist"));
    // tar -zxvf rzk-<version>-bin.tar.gz -C <prefix>; mv rzk-<version>-bin zookeeper
    let prefix = work.path().join("local");
    fs::create_dir_all(&prefix).unwrap();
    let unpacked = unpack(&archive, &prefix);
    let root = prefix.join("zookeeper");
    fs::rename(&unpacked, &root).unwrap();

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

    // cd conf; mv zoo_sample.cfg zoo.cfg; then edit it.
    let conf = root.join("conf");
    let mut rename = user_command(&conf, Path::new("mv"));
    rename.args(["zoo_sample.cfg", "zoo.cfg"]);
    let renamed = run_bounded(rename, None, SCRIPT_WAIT);
    assert_eq!(
        renamed.status.code(),
        Some(0),
        "{}",
        describe_output(&renamed)
    );
    let data_dir = root.join("zkdata");
    let log_dir = root.join("zklogs");
    let port = free_port();
    edit_config(
        &conf.join("zoo.cfg"),
        &data_dir,
        &log_dir,
        port,
        free_port(),
    );
    // mkdir zkdata zklogs
    fs::create_dir(&data_dir).unwrap();
    fs::create_dir(&log_dir).unwrap();
    let _guard = StopOnDrop(data_dir.join("zookeeper_server.pid"));

    // ./bin/zkServer.sh start, from the installation directory.
    let start = zk_server(&root, Path::new("./bin/zkServer.sh"), "start");
    assert_eq!(start.status.code(), Some(0), "{}", describe_output(&start));
    assert_eq!(stdout_text(&start), "Starting zookeeper ... STARTED\n");
    assert!(
        stderr_text(&start).contains(&format!("Using config: {}", conf.join("zoo.cfg").display())),
        "{}",
        describe_output(&start)
    );

    let status = zk_server(&root, Path::new("./bin/zkServer.sh"), "status");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        describe_output(&status)
    );
    assert_eq!(
        stdout_text(&status),
        format!("Client port found: {port}. Client address: localhost. Client SSL: false.\nMode: standalone\n")
    );

    // The interactive session, typed on stdin of the archive's zkCli.sh.
    let mut cli = user_command(&root, Path::new("./bin/zkCli.sh"));
    cli.args(["-server", &format!("127.0.0.1:{port}")]);
    let session = run_bounded(cli, Some(SESSION), SCRIPT_WAIT);
    let context = describe_output(&session);
    assert_eq!(session.status.code(), Some(0), "{context}");
    assert_lines_in_order(&stderr_text(&session), &["Created /java"], &context);
    assert_lines_in_order(
        &stdout_text(&session),
        &[
            "[java, zookeeper]",
            "spring",
            "mybatis",
            "dataVersion = 1",
            "dataLength = 7",
            "numChildren = 0",
            "[zookeeper]",
        ],
        &context,
    );

    // The directories the tutorial created hold what the server wrote: snapshots in zkdata, the log in
    // zklogs, and the server's output in logs/ next to bin/.
    assert!(
        names_in(&log_dir.join("version-2"))
            .iter()
            .any(|name| name.starts_with("log.")),
        "no log segment in dataLogDir: {:?}",
        names_in(&log_dir.join("version-2"))
    );
    assert!(
        names_in(&root.join("logs"))
            .iter()
            .any(|name| name.ends_with(".out")),
        "no .out file in logs/"
    );

    // cd bin; ./zkServer.sh stop
    let stop = zk_server(&root.join("bin"), Path::new("./zkServer.sh"), "stop");
    assert_eq!(stop.status.code(), Some(0), "{}", describe_output(&stop));
    assert_eq!(stdout_text(&stop), "Stopping zookeeper ... STOPPED\n");
    assert!(!data_dir.join("zookeeper_server.pid").exists());
    assert!(
        names_in(&data_dir.join("version-2"))
            .iter()
            .any(|name| name.starts_with("snapshot.")),
        "no snapshot in dataDir after a clean stop: {:?}",
        names_in(&data_dir.join("version-2"))
    );

    let status = zk_server(&root, Path::new("./bin/zkServer.sh"), "status");
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        describe_output(&status)
    );
    assert!(stdout_text(&status).contains("Error contacting service. It is probably not running."));
}
