//! A full disk under a real `rzk server` (the "Durable storage" issue).
//!
//! Goal: when the log cannot be written, no write is acknowledged that is not durable, the
//! process lives and serves reads, the write that hit the failure ends in ConnectionLoss at once
//! (its entry waits, so its outcome is unknown), new writes get an error reply at once (their
//! connection stays open), and once space returns the write that was waiting commits, writes are
//! accepted again, and a restart recovers everything acknowledged.
//!
//! Method: the test mounts its own 2 MiB tmpfs (root only: outside CI a failed mount skips the
//! test with a printed reason; in CI it fails), puts a filler file on it, and runs the server
//! with dataDir = dataLogDir on it. One session creates 100 KiB znodes until one of them ends in
//! ConnectionLoss (the log's write of it failed; the entry waits for space and the server closes
//! the writer's connection, since the outcome is unknown). A second session then checks that reads work
//! and that a new write is refused with an error reply (that session was opened before: opening a
//! session is a log entry too). Deleting the filler frees space: the
//! waiting create must then commit (seen by the writer's session, which outlived its connection),
//! new writes succeed too, and after a restart every acknowledged znode reads back with its data.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::RzkServer;
use zookeeper_client::{Client, Error};

/// Size of the filesystem the server writes to.
const DISK_SIZE: &str = "2m";
/// What the test keeps aside on that filesystem, to free later.
const FILLER_BYTES: usize = 640 << 10;
/// Value size of the znodes that fill the disk (below jute.maxbuffer).
const BIG_VALUE_BYTES: usize = 100 << 10;
/// More creates than can fit: the fill loop ends long before this.
const FILL_CREATES_MAX: usize = 100;
/// A write the log accepted answers within this on a healthy tmpfs.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long the waiting write and new writes may take to commit once space returns.
const RECOVERY_WAIT: Duration = Duration::from_secs(20);

/// A tmpfs mounted by this test, lazily unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    mount_point: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let mount_point = parent.path().join("disk");
        fs::create_dir(&mount_point).map_err(|e| format!("mount point: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            _parent: parent,
            mount_point,
        })
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .stdin(Stdio::null())
            .status();
    }
}

async fn connect(address: &str) -> Client {
    tokio::time::timeout(support::READY_TIMEOUT, Client::connect(address))
        .await
        .expect("client connected within the ready timeout")
        .expect("client connects")
}

/// Incompressible: the log stores large entries compressed, and a repetitive value would never
/// fill the disk.
fn big_value(index: usize) -> Vec<u8> {
    support::incompressible(index as u64, BIG_VALUE_BYTES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_keeps_reading_and_recovers() {
    let disk = match Tmpfs::mount(DISK_SIZE) {
        Ok(disk) => disk,
        Err(reason) if support::in_ci() => {
            panic!("full_disk: {reason} (CI=true runs as root, so this is a failure, not a skip)")
        }
        Err(reason) => {
            eprintln!("skipped: full_disk: {reason}; run as root to mount a tmpfs");
            return;
        }
    };
    let filler = disk.path().join("filler");
    fs::write(&filler, vec![0xAB; FILLER_BYTES]).expect("write the filler file");
    let data_dir = disk.path().join("data");
    let data_line = format!("dataDir={}", data_dir.display());
    let log_line = format!("dataLogDir={}", data_dir.display());
    let mut server = RzkServer::start(&[&data_line, &log_line]);
    let address = server.connect_string();

    // Fill: sequential 100 KiB creates until one is not acknowledged. The second session is
    // opened first: creating a session is a log entry too, so none can be opened while the disk
    // is full.
    let writer = connect(&address).await;
    let other = connect(&address).await;
    writer
        .create("/full", b"", &support::persistent())
        .await
        .expect("create /full");
    let mut acked: Vec<usize> = Vec::new();
    let mut waiting_index = None;
    for index in 0..FILL_CREATES_MAX {
        let (path, value, options) = (
            format!("/full/n{index}"),
            big_value(index),
            support::persistent(),
        );
        match tokio::time::timeout(ANSWER_WAIT, writer.create(&path, &value, &options)).await {
            Ok(Ok(_)) => acked.push(index),
            // The log's write of it failed: the entry waits for space, and nobody can say yet
            // whether it will commit, so the server closes the writer's connection and the
            // client sees ConnectionLoss ("outcome unknown"), promptly, never an ack.
            Ok(Err(Error::ConnectionLoss)) => {
                waiting_index = Some(index);
                break;
            }
            Err(_) => panic!(
                "create {index} got no answer within {ANSWER_WAIT:?}: a write that hits the full disk must be answered with ConnectionLoss at once"
            ),
            Ok(Err(error)) => panic!(
                "create {index}: the write that hits the full disk must end in ConnectionLoss (its outcome is unknown until space returns), got {error:?}"
            ),
        }
    }
    let waiting_index = waiting_index.expect("a create must be left waiting once the disk is full");
    assert!(
        server
            .log()
            .contains("closed the connections whose writes wait for the log"),
        "the server must say why it closed the writer's connection:\n{}",
        server.log_tail()
    );
    println!(
        "full_disk: {} creates of {} KiB acknowledged, create {waiting_index} waits for space",
        acked.len(),
        BIG_VALUE_BYTES >> 10
    );
    assert!(
        acked.len() >= 3,
        "the disk took only {} big znodes",
        acked.len()
    );

    // While full: the process lives, reads work, new writes are refused with an error reply.
    let refused = tokio::time::timeout(
        ANSWER_WAIT,
        other.create("/probe", b"x", &support::persistent()),
    )
    .await
    .expect("a write on a full disk is answered at once");
    match refused {
        Err(Error::ConnectionLoss | Error::SessionExpired) | Ok(_) => {
            panic!("a write on a full disk must get an error reply, got {refused:?}")
        }
        Err(error) => println!("full_disk: a new write was refused with {error:?}"),
    }
    let children = other
        .get_children("/full")
        .await
        .expect("read while full")
        .0;
    assert_eq!(
        children.len(),
        acked.len(),
        "the waiting create must not be visible before it is durable"
    );
    for &index in &acked {
        let (data, _) = other
            .get_data(&format!("/full/n{index}"))
            .await
            .expect("read while full");
        assert_eq!(data, big_value(index), "/full/n{index} while full");
    }
    assert!(server.is_running(), "the server must survive a full disk");
    assert!(server.four_letter("srvr").contains("Mode: standalone"));
    assert!(
        server.log().contains("free space on"),
        "the log must say what to do:\n{}",
        server.log_tail()
    );

    // Space returns: the waiting create commits, and writes are accepted again.
    fs::remove_file(&filler).expect("remove the filler file");
    let freed_at = Instant::now();
    let waiting_path = format!("/full/n{waiting_index}");
    let deadline = freed_at + RECOVERY_WAIT;
    loop {
        match other.get_data(&waiting_path).await {
            Ok((data, _)) => {
                assert_eq!(data, big_value(waiting_index), "{waiting_path}");
                break;
            }
            Err(Error::NoNode) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => {
                panic!("the waiting create did not commit once space returned: {error:?}")
            }
        }
    }
    println!(
        "full_disk: the waiting create committed {:?} after space returned",
        freed_at.elapsed()
    );
    // The writer's session outlived its closed connection: the client reconnected with it.
    let (data, _) = writer
        .get_data(&waiting_path)
        .await
        .expect("the writer's session reconnects and reads its own write");
    assert_eq!(
        data,
        big_value(waiting_index),
        "{waiting_path} through the writer"
    );
    drop(writer);
    acked.push(waiting_index);
    loop {
        match other.create("/probe", b"x", &support::persistent()).await {
            Ok(_) => break,
            Err(error) if Instant::now() < deadline => {
                println!("full_disk: still refused after space returned: {error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("writes are still refused after space returned: {error:?}"),
        }
    }
    let after = waiting_index + 1;
    other
        .create(
            &format!("/full/n{after}"),
            &big_value(after),
            &support::persistent(),
        )
        .await
        .expect("a big create after space returned");
    acked.push(after);
    drop(other);

    // A restart recovers everything acknowledged.
    server.restart();
    let reader = connect(&address).await;
    let mut children = reader
        .get_children("/full")
        .await
        .expect("read after restart")
        .0;
    children.sort();
    let mut expected: Vec<String> = acked.iter().map(|index| format!("n{index}")).collect();
    expected.sort();
    assert_eq!(children, expected, "znodes after restart");
    for &index in &acked {
        let (data, _) = reader
            .get_data(&format!("/full/n{index}"))
            .await
            .expect("read after restart");
        assert_eq!(data, big_value(index), "/full/n{index} after restart");
    }
    let (probe, _) = reader
        .get_data("/probe")
        .await
        .expect("/probe after restart");
    assert_eq!(probe, b"x");
    drop(reader);
    server.stop();
}
