//! `rzk server` as an operator runs it, through the binary:
//!
//! - with no argument, in a fresh working directory: standalone on 127.0.0.1:2181 (port fixed by
//!   design; when something else holds it the test fails and names the holder), data in
//!   `./rzk-data`, and SIGINT (Ctrl-C) ends it with status 0;
//! - with a zoo.cfg: SIGTERM ends it with status 0 and what was written is there after a restart;
//! - a client's data, exist and child watches are re-armed by setWatches when it reconnects to the
//!   restarted server, and each fires exactly once (the `zookeeper-client` crate);
//! - `DigestAuthenticationProvider.superDigest` in zoo.cfg makes a super user that passes every
//!   ACL (ZooKeeper reads that key as the system property of the same name with a `zookeeper.`
//!   prefix, which is what an unknown zoo.cfg key becomes);
//! - an idle server that has written through Raft holds little anonymous memory.
//!
//! Nothing sleeps to synchronise: every wait polls a named condition against a deadline.

mod support;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{rzk_binary, srvr_mode, try_four_letter, RzkServer, READY_TIMEOUT};
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Error, EventType, Permission};

/// The client port of `rzk server` without a config (ZooKeeper's default).
const DEFAULT_CLIENT_PORT: u16 = 2181;
/// The AdminServer port of that default (on, as in ZooKeeper).
const DEFAULT_ADMIN_PORT: u16 = 8080;
/// How long a server may take to exit after SIGINT/SIGTERM (a clean stop saves a snapshot,
/// itself bounded at 20 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a client's operations and on waiting for a watch event.
const CLIENT_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// `super:test` as `DigestAuthenticationProvider.superDigest` wants it: base64(sha1("super:test")),
/// computed with Python's hashlib (ZooKeeper's documentation shows the same value).
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(CLIENT_WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {CLIENT_WAIT:?} waiting for {what}"),
    }
}

async fn connect(address: &str) -> Client {
    within(&format!("a session on {address}"), Client::connect(address))
        .await
        .unwrap_or_else(|error| panic!("connect to {address}: {error}"))
}

/// A session that sends `addauth digest <credentials>` as it connects.
async fn connect_with_digest(address: &str, credentials: &'static [u8]) -> Client {
    within(
        "connect with digest auth",
        Client::connector()
            .with_auth("digest", credentials)
            .connect(address),
    )
    .await
    .expect("connect with digest auth")
}

/// Creates `path` readable and writable by its creator only (`Acls::creator_all`).
async fn create_creator_only(client: &Client, path: &str, data: &[u8]) {
    client
        .create(
            path,
            data,
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap_or_else(|error| panic!("create {path} for its creator only: {error}"));
}

// ---------------------------------------------------------------------------------------------------------
// `rzk server` with no argument
// ---------------------------------------------------------------------------------------------------------

/// Who listens on TCP `port` (any address), from /proc: `pid N (command line)`, or why not known.
fn port_holder(port: u16) -> String {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is the 10th field.
            let listening = fields.get(3) == Some(&"0A");
            let on_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                == Some(port);
            if listening && on_port {
                if let Some(inode) = fields.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return format!("no listener on port {port} in /proc/net/tcp{{,6}} (a socket in TIME_WAIT, or another network namespace)");
    }
    let mut holders = Vec::new();
    for process in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|target| inodes.iter().any(|inode| target == Path::new(inode)))
        });
        if holds {
            let command = fs::read(process.path().join("cmdline"))
                .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                .unwrap_or_default();
            holders.push(format!(
                "pid {} ({})",
                process.file_name().to_string_lossy(),
                command.trim()
            ));
        }
    }
    if holders.is_empty() {
        format!("a listener on port {port} whose process is not visible here")
    } else {
        holders.join(", ")
    }
}

/// Fails, naming the holder, when `port` cannot be bound on 0.0.0.0 (where the default binds).
fn require_free(port: u16, what: &str) {
    if let Err(error) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
        panic!(
            "port {port} ({what} of `rzk server` without a config, fixed by design) cannot be bound: {error}; \
             held by {}. Stop that process and run this test again.",
            port_holder(port)
        );
    }
}

/// A server process this test started itself: killed (SIGKILL, whole group) if the test ends
/// while it still runs, its output kept in a file for failure messages.
struct Spawned {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Spawned {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until the process exits or `timeout` passes.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("the server was started");
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => std::thread::sleep(POLL),
                Err(error) => panic!("waiting for the server process: {error}"),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().expect("the server runs").id();
        // SAFETY: kill(2) on our own child's pid, which has not been reaped (we hold its Child).
        let result = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the process group our child leads (spawned with process_group(0)).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// `rzk server` with no argument, in a fresh directory: serves standalone on 127.0.0.1:2181 with
/// its data in ./rzk-data, and SIGINT ends it with status 0.
#[test]
fn no_argument_serves_standalone_on_2181_and_exits_0_on_sigint() {
    require_free(DEFAULT_CLIENT_PORT, "the client port");
    require_free(DEFAULT_ADMIN_PORT, "the AdminServer port");
    let dir = tempfile::tempdir().expect("create a temporary working directory");
    let log = dir.path().join("server.log");
    let output = fs::File::create(&log).expect("create server.log");
    let child = Command::new(rzk_binary())
        .arg("server")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("clone the log handle"))
        .stderr(output)
        .process_group(0)
        .spawn()
        .expect("start `rzk server`");
    let mut server = Spawned {
        child: Some(child),
        log,
    };

    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last: String;
    loop {
        if let Some(child) = server.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "`rzk server` exited with {status} before serving; it said:\n{}",
                    server.log_text()
                );
            }
        }
        match try_four_letter(DEFAULT_CLIENT_PORT, "srvr", Duration::from_secs(2)) {
            Ok(reply) if srvr_mode(&reply) == Some("standalone") => break,
            Ok(reply) => last = reply,
            Err(error) => last = error.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "`rzk server` did not answer srvr with `Mode: standalone` on 127.0.0.1:{DEFAULT_CLIENT_PORT} \
             within {READY_TIMEOUT:?}; last answer: {last:?}; it said:\n{}",
            server.log_text()
        );
        std::thread::sleep(POLL);
    }
    let data_dir = dir.path().join("rzk-data");
    assert!(
        data_dir.is_dir(),
        "./rzk-data was not created in the working directory {}",
        dir.path().display()
    );
    let files = fs::read_dir(&data_dir)
        .expect("read ./rzk-data")
        .flatten()
        .count();
    assert!(files > 0, "./rzk-data is empty while the server serves");

    server.signal(libc::SIGINT);
    let status = server.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "`rzk server` still runs {EXIT_TIMEOUT:?} after SIGINT; it said:\n{}",
            server.log_text()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "SIGINT must end `rzk server` with status 0, got {status}; it said:\n{}",
        server.log_text()
    );
    assert!(
        try_four_letter(DEFAULT_CLIENT_PORT, "srvr", Duration::from_secs(2)).is_err(),
        "port {DEFAULT_CLIENT_PORT} still answers after the server exited"
    );
}

// ---------------------------------------------------------------------------------------------------------
// `rzk server <zoo.cfg>`
// ---------------------------------------------------------------------------------------------------------

/// `rzk server <zoo.cfg>`: SIGTERM ends it with status 0, and a restart on the same dataDir
/// serves what was written before (data, Stat and a sequential counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_and_a_restart_keeps_the_data() {
    let mut server = RzkServer::start(&[]);
    let address = server.connect_string();
    let client = connect(&address).await;
    let (created, _) = client
        .create("/kept", b"before the restart", &support::persistent())
        .await
        .expect("create /kept");
    let sequential = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    client
        .create("/kept/n-", b"", &sequential)
        .await
        .expect("sequential create");
    drop(client);

    let status = tokio::task::block_in_place(|| server.stop());
    let status = status.unwrap_or_else(|| {
        panic!(
            "rzk did not exit within 10 s of SIGTERM (it was killed)\n{}",
            server.log_tail()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end rzk with status 0, got {status}\n{}",
        server.log_tail()
    );

    tokio::task::block_in_place(|| server.start_again());
    let client = connect(&address).await;
    let (data, stat) = client
        .get_data("/kept")
        .await
        .expect("/kept after the restart");
    assert_eq!(data, b"before the restart");
    assert_eq!(stat.czxid, created.czxid);
    assert_eq!(stat.num_children, 1);
    let (_, sequence) = client
        .create("/kept/n-", b"", &sequential)
        .await
        .expect("sequential create after the restart");
    assert_eq!(sequence.to_string(), "0000000001");
}

/// An idle server is small: after a session has written through Raft, its anonymous memory (heap,
/// stacks; not the binary's pages) stays under 12 MiB. It was 28 MiB while openraft's runtime
/// statistics came from base2histogram 0.2.3, whose first histogram builds 26 MiB of tables for all
/// sixteen widths; the workspace patches in crates/histogram-shim instead (about 2 MiB here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_has_little_anonymous_memory() {
    const ANON_LIMIT_KIB: u64 = 12 * 1024;
    let server = RzkServer::start(&[]);
    let client = connect(&server.connect_string()).await;
    client
        .create("/small", b"through the log", &support::persistent())
        .await
        .expect("create /small");
    let pid = server.pid().expect("the server is running");
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let anon_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no RssAnon line in /proc/{pid}/status:\n{status}"));
    assert!(
        anon_kib < ANON_LIMIT_KIB,
        "an idle rzk holds {anon_kib} KiB of anonymous memory, over {ANON_LIMIT_KIB} KiB \
         (is the base2histogram patch in the workspace Cargo.toml still in force?)\n{status}"
    );
}

/// setWatches on reconnect: a session holds a data watch (getData), an exist watch on a missing
/// node (exists) and a child watch (getChildren); the server is restarted on the same port and
/// dataDir; once the client is back, the server holds the three watches again (`wchc`), a change
/// made by another session fires each one, and afterwards the server holds none (each fired
/// exactly once and is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_rearmed_after_a_restart() {
    let mut server = RzkServer::start(&[]);
    let address = server.connect_string();
    let watcher = within(
        "a session with a 30 s timeout",
        Client::connector()
            .with_session_timeout(Duration::from_secs(30))
            .connect(&address),
    )
    .await
    .expect("connect");
    watcher
        .create("/data", b"0", &support::persistent())
        .await
        .expect("create /data");
    watcher
        .create("/parent", b"", &support::persistent())
        .await
        .expect("create /parent");
    let (_, _, data_watch) = watcher
        .get_and_watch_data("/data")
        .await
        .expect("getData with a watch");
    let (none, exist_watch) = watcher
        .check_and_watch_stat("/later")
        .await
        .expect("exists with a watch");
    assert_eq!(none, None);
    let (_, child_watch) = watcher
        .list_and_watch_children("/parent")
        .await
        .expect("getChildren with a watch");
    let session_line = format!("0x{:x}", watcher.session_id().0);
    let mut state = watcher.state_watcher();

    tokio::task::block_in_place(|| server.restart());
    within("the client to reconnect with its session", async {
        loop {
            if state.changed().await == zookeeper_client::SessionState::SyncConnected {
                break;
            }
        }
    })
    .await;
    // setWatches is sent with the reconnect, before any later request: after this round trip
    // the server has processed it.
    watcher.sync("/").await.expect("sync after the reconnect");
    let wchc = server.four_letter("wchc");
    let mut watched = watched_paths(&wchc, &session_line);
    watched.sort();
    // wchc lists data and exist watches, as ZooKeeper's does; mntr counts the child watch too.
    assert_eq!(
        watched,
        ["/data", "/later"],
        "the watches re-armed by setWatches; wchc said:\n{wchc}"
    );
    assert_eq!(
        watch_count(&server),
        3,
        "the data, exist and child watches re-armed by setWatches"
    );

    let writer = connect(&address).await;
    writer
        .set_data("/data", b"1", None)
        .await
        .expect("set /data");
    writer
        .create("/later", b"", &support::persistent())
        .await
        .expect("create /later");
    writer
        .create("/parent/child", b"", &support::persistent())
        .await
        .expect("create /parent/child");
    let fired = [
        within("NodeDataChanged on /data", data_watch.changed()).await,
        within("NodeCreated on /later", exist_watch.changed()).await,
        within("NodeChildrenChanged on /parent", child_watch.changed()).await,
    ];
    let fired: Vec<(EventType, &str)> = fired
        .iter()
        .map(|event| (event.event_type, event.path.as_str()))
        .collect();
    assert_eq!(
        fired,
        [
            (EventType::NodeDataChanged, "/data"),
            (EventType::NodeCreated, "/later"),
            (EventType::NodeChildrenChanged, "/parent"),
        ]
    );
    // Fired watches are gone on the server: a second change fires nothing.
    watcher.sync("/").await.expect("sync after the events");
    assert_eq!(
        watch_count(&server),
        0,
        "every re-armed watch fired once and is gone"
    );
}

/// `mntr`'s `zk_watch_count`: the server's watches of every kind.
fn watch_count(server: &RzkServer) -> u64 {
    let mntr = server.four_letter("mntr");
    mntr.lines()
        .find_map(|line| line.strip_prefix("zk_watch_count\t"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("mntr has no zk_watch_count line: {mntr:?}"))
}

/// The paths under `session_line` (`0x<id>`) in a `wchc` reply.
fn watched_paths(wchc: &str, session_line: &str) -> Vec<String> {
    wchc.lines()
        .skip_while(|line| line.trim() != session_line)
        .skip(1)
        .take_while(|line| line.starts_with('\t'))
        .map(|line| line.trim().to_string())
        .collect()
}

/// `DigestAuthenticationProvider.superDigest` in zoo.cfg: a session that authenticates as
/// `super:test` passes every ACL (read, write, setACL, delete of a node only its creator may
/// touch); `super` with another password is an ordinary digest user and gets NoAuth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_digest_from_zoo_cfg_passes_every_acl() {
    let line = format!("DigestAuthenticationProvider.superDigest={SUPER_DIGEST}");
    let server = RzkServer::start(&[&line]);
    let address = server.connect_string();
    let alice = connect_with_digest(&address, b"alice:secret").await;
    create_creator_only(&alice, "/vault", b"gold").await;
    create_creator_only(&alice, "/vault/inner", b"").await;

    let impostor = connect_with_digest(&address, b"super:wrong").await;
    assert_eq!(impostor.get_data("/vault").await, Err(Error::NoAuth));
    assert_eq!(
        impostor.set_data("/vault", b"x", None).await.map(|_| ()),
        Err(Error::NoAuth)
    );

    let root = connect_with_digest(&address, b"super:test").await;
    assert_eq!(
        root.get_data("/vault").await.expect("super reads").0,
        b"gold"
    );
    root.set_data("/vault", b"lead", None)
        .await
        .expect("super writes");
    let open = [Acl::new(Permission::ALL, AuthId::anyone())];
    root.set_acl("/vault/inner", &open, None)
        .await
        .expect("super sets the ACL");
    root.delete("/vault/inner", None)
        .await
        .expect("super deletes (DELETE on /vault)");
    assert_eq!(
        alice.get_data("/vault").await.expect("alice reads").0,
        b"lead"
    );
    assert_eq!(
        alice.check_stat("/vault/inner").await.expect("exists"),
        None
    );
}

/// TTL nodes written with `extendedTypesEnabled=true`, then a restart without it: the server
/// starts and serves them (extended types are replicated state, and stay on while TTL nodes
/// exist, with a warning naming them); once they are deleted, the setting takes effect and a
/// TTL create answers Unimplemented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_keep_extended_types_on_until_they_are_deleted() {
    let mut server = RzkServer::start(&["extendedTypesEnabled=true"]);
    let address = server.connect_string();
    let mut cli = Command::new(rzk_binary());
    cli.args([
        "cli", "-server", &address, "create", "-t", "600000", "/ttl", "kept",
    ]);
    let created = support::run_bounded(cli, None, Duration::from_secs(30));
    assert!(
        support::stderr_text(&created).contains("Created /ttl")
            || support::stdout_text(&created).contains("Created /ttl"),
        "create -t: {}",
        support::describe_output(&created)
    );
    let status = tokio::task::block_in_place(|| server.stop());
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        server.log_tail()
    );

    let config = fs::read_to_string(server.config_path()).expect("read zoo.cfg");
    let without = config.replace("extendedTypesEnabled=true\n", "");
    assert_ne!(without, config, "zoo.cfg had the setting");
    fs::write(server.config_path(), &without).expect("write zoo.cfg");
    tokio::task::block_in_place(|| server.start_again());
    assert!(
        server
            .log()
            .contains("extended types stay on until they are deleted"),
        "a warning names the TTL nodes\n{}",
        server.log_tail()
    );
    let client = connect(&address).await;
    let (data, _) = client
        .get_data("/ttl")
        .await
        .expect("/ttl after the restart");
    assert_eq!(data, b"kept");

    // A TTL create under a missing parent: NoNode while extended types are on, Unimplemented
    // once they are off (checked first), and it never creates a TTL node either way.
    client.delete("/ttl", None).await.expect("delete /ttl");
    let ttl = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(600));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.create("/missing/ttl", b"", &ttl).await {
            Err(Error::Unimplemented) => break,
            Err(Error::NoNode) => assert!(
                Instant::now() < deadline,
                "extended types still on 20 s after the last TTL node went\n{}",
                server.log_tail()
            ),
            other => panic!("TTL create under a missing parent: {other:?}"),
        }
        tokio::task::yield_now().await;
    }
}

/// skipACL changed between two runs does not change what the log replays: a delete refused
/// with NoAuth before a `kill -9` stays refused when the log is replayed by a server started
/// with skipACL=yes (the settings in effect are replicated state, changed through the log), and
/// only later writes see skipACL=yes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_changing_skip_acl_keeps_the_results_clients_saw() {
    let mut server = RzkServer::start(&[]);
    let address = server.connect_string();
    let alice = connect_with_digest(&address, b"alice:secret").await;
    create_creator_only(&alice, "/locked", b"kept").await;
    alice
        .create("/locked/child", b"kept", &support::persistent())
        .await
        .expect("create /locked/child");
    // Deleting a child needs DELETE on its parent.
    let stranger = connect(&address).await;
    assert_eq!(
        stranger.delete("/locked/child", None).await,
        Err(Error::NoAuth)
    );
    drop((alice, stranger));
    // No snapshot at shutdown: the restart replays the refused delete from the log.
    tokio::task::block_in_place(|| server.kill9());
    let config = fs::read_to_string(server.config_path()).expect("read zoo.cfg");
    fs::write(server.config_path(), format!("{config}skipACL=yes\n")).expect("write zoo.cfg");
    tokio::task::block_in_place(|| server.start_again());
    let stranger = connect(&address).await;
    let (data, _) = stranger
        .get_data("/locked/child")
        .await
        .expect("/locked/child survives the replay of the refused delete");
    assert_eq!(data, b"kept");
    stranger
        .delete("/locked/child", None)
        .await
        .expect("a new delete runs under skipACL=yes");
}
