//! Start Debian's Apache ZooKeeper 3.8.0 as a reference server for tests (see shared
//! TESTING.md). Shared by `rzk-client`'s tests and `rzk`'s `cli_*` tests through `#[path]`.
//!
//! When it is not installed, [`ReferenceZk::start`] returns `None` after printing
//! `skipped: <reason>`, except under `CI=true`, where a missing reference is a failure.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// Debian's jar lists its other dependencies in its manifest; these make it start and log.
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar:/usr/share/java/servlet-api.jar";
/// It starts in 1-2 s here; allow for a loaded 2-core machine.
const READY_DEADLINE: Duration = Duration::from_secs(60);

pub struct ReferenceZk {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// `None` (after printing `skipped: ...`) when the reference is missing and CI is not set.
pub fn require(what: &str, present: bool) -> Option<()> {
    if present {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing and CI=true: install it (apt-get install -y zookeeper zookeeper-bin)");
    }
    println!("skipped: {what} is missing (apt-get install -y zookeeper zookeeper-bin)");
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// Send a four-letter word and read the whole answer.
pub fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

impl ReferenceZk {
    pub fn start() -> Option<ReferenceZk> {
        let java_present = Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        require("java", java_present)?;
        require(ZOOKEEPER_JAR, Path::new(ZOOKEEPER_JAR).exists())?;
        let dir = tempfile::tempdir().expect("creating a temp dir for the reference ZooKeeper");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("creating the reference dataDir");
        let config = dir.path().join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=*\nmaxClientCnxns=0\n",
                data.display()
            ),
        )
        .expect("writing zoo.cfg");
        let log =
            std::fs::File::create(dir.path().join("zookeeper.log")).expect("creating the log file");
        let child = Command::new("java")
            .args([
                "-cp",
                CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning java for the reference ZooKeeper");
        let mut zk = ReferenceZk { port, child, dir };
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if four_letter_word(port, "srvr").is_ok_and(|answer| answer.contains("Mode:")) {
                return Some(zk);
            }
            if let Ok(Some(status)) = zk.child.try_wait() {
                panic!(
                    "the reference ZooKeeper exited ({status}) before serving; log: {}",
                    zk.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the reference ZooKeeper on port {port} did not answer srvr with a Mode: line within {READY_DEADLINE:?}; log: {}",
                zk.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Send the server process a signal (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(
            status.success(),
            "kill -{name} of the reference server failed"
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("zookeeper.log")).unwrap_or_default()
    }
}

impl Drop for ReferenceZk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
