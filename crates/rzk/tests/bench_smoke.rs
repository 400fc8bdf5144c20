//! `rzk bench` works end to end against a real rzk server. This is a functional check, not a
//! measurement: speed is measured by bench/compare.sh (BENCHMARKS.md), never in `cargo test`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{describe_output, run_bounded, rzk_binary, stdout_text, RzkServer};

/// Longest a one-second bench run (connect, set up, measure, clean up, close) may take on a
/// loaded 2-core machine.
const BENCH_TIMEOUT: Duration = Duration::from_secs(60);

fn bench(server: &RzkServer, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new(rzk_binary());
    command
        .arg("bench")
        .arg("--servers")
        .arg(server.connect_string())
        .args(args)
        .arg("--json");
    let output = run_bounded(command, None, BENCH_TIMEOUT);
    assert!(output.status.success(), "{}", describe_output(&output));
    let stdout = stdout_text(&output);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("bench --json printed no JSON ({error}): {stdout}"))
}

/// Goal: a short pipelined create run completes, reports operations and no errors, samples
/// the server's /proc figures, and cleans up after itself.
/// Method: spawn rzk, run `rzk bench --op create --clients 2 --inflight 4 --duration 1`,
/// read its JSON, then check with `stat` that the tree holds only what it held before.
#[test]
fn bench_create_reports_operations_without_errors() {
    let server = RzkServer::start(&[]);
    let pid = server.pid().expect("the server runs").to_string();
    let report = bench(
        &server,
        &[
            "--op",
            "create",
            "--clients",
            "2",
            "--inflight",
            "4",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(report["mode"], "load");
    assert!(report["ops"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(
        report["latency_us"]["p50"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        report["servers"][0]["rss_bytes"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // Cleanup deleted every znode the run created: only / and /zookeeper... remain.
    let stat = server.four_letter("srvr");
    let nodes = stat
        .lines()
        .find_map(|line| line.strip_prefix("Node count: "))
        .map(|count| count.trim().parse::<u64>().expect("numeric node count"));
    assert!(
        nodes.is_some_and(|count| count < 10),
        "srvr after cleanup: {stat}"
    );
}

/// Goal: every other operation runs too (reads, writes, mixed, watch notifications), and
/// --populate creates what it is asked for.
/// Method: one short run of each against the same server, checking ops > 0 and no errors.
#[test]
fn bench_every_op_and_populate() {
    let server = RzkServer::start(&[]);
    for op in ["set", "get", "exists", "mixed", "watch"] {
        let report = bench(
            &server,
            &[
                "--op",
                op,
                "--clients",
                "2",
                "--inflight",
                "2",
                "--duration",
                "0.5",
                "--warmup",
                "0",
                "--keys",
                "50",
            ],
        );
        assert!(report["ops"].as_u64().unwrap_or(0) > 0, "{op}: {report}");
        assert_eq!(report["errors"], 0, "{op}: {report}");
        if op == "mixed" {
            // Reads and writes apart, adding up to the whole (half of each by default).
            let reads = report["by_kind"]["read"]["ops"].as_u64().unwrap_or(0);
            let writes = report["by_kind"]["write"]["ops"].as_u64().unwrap_or(0);
            assert!(reads > 0 && writes > 0, "{report}");
            assert_eq!(Some(reads + writes), report["ops"].as_u64(), "{report}");
            assert!(report["by_kind"]["write"]["latency_us"]["p99"]
                .as_u64()
                .is_some());
        } else {
            assert!(report["by_kind"].is_null(), "{op}: {report}");
        }
    }
    let report = bench(&server, &["--populate", "2500", "--inflight", "2"]);
    assert_eq!(report["mode"], "populate");
    assert_eq!(report["created"], 2500, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

/// Goal: bench/cpu_profile.py names a sample's CPU time by what the server asked of the kernel
/// or by the code it ran, so the profiles in BENCHMARKS.md split a write's cost correctly. A
/// rule in the wrong order would, for one, count an fsync's sleep in the scheduler or a
/// sleep in epoll as network work.
/// Method: run its `breakdown` on collapsed stacks written here (the shapes `perf script`
/// gives for those cases) and compare the parts it reports.
#[test]
fn the_profile_names_each_sample_by_what_the_server_asked_for() {
    let bench_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    let folded = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(
        folded.path(),
        [
            "tokio-rt-worker;fdatasync;entry_SYSCALL_64_[k];__x64_sys_fdatasync_[k];\
             ext4_sync_file_[k];schedule_[k];finish_task_switch.isra.0_[k] 7",
            "tokio-rt-worker;epoll_wait;__x64_sys_epoll_wait_[k];ep_poll_[k];\
             sock_poll_[k];tcp_poll_[k] 5",
            "tokio-rt-worker;__send;__x64_sys_sendto_[k];tcp_sendmsg_[k];\
             try_to_wake_up_[k] 3",
            "tokio-rt-worker;syscall;__x64_sys_futex_[k];futex_wake_[k] 2",
            "tokio-rt-worker;openraft::core::raft_core::RaftCore::run 11",
            "tokio-rt-worker;imbl::nodes::btree::Node::lookup 13",
        ]
        .join("\n"),
    )
    .expect("write the stacks");
    let script = format!(
        "import json, sys; sys.path.insert(0, {dir:?}); import cpu_profile; \
         print(json.dumps(cpu_profile.breakdown({file:?}, 'rzk'), sort_keys=True))",
        dir = bench_dir.to_str().expect("a UTF-8 path"),
        file = folded.path().to_str().expect("a UTF-8 path"),
    );
    let mut command = Command::new("python3");
    command.arg("-c").arg(script);
    let output = run_bounded(command, None, BENCH_TIMEOUT);
    assert!(output.status.success(), "{}", describe_output(&output));
    let report: serde_json::Value =
        serde_json::from_str(stdout_text(&output).trim()).expect("breakdown prints JSON");
    assert_eq!(
        report,
        serde_json::json!({
            "samples": 41, "kernel_samples": 17, "user_samples": 24,
            "parts": {
                "disk: log writes and fsync": 7,
                "epoll": 5,
                "network: sockets and loopback": 3,
                "futex: thread hand-offs": 2,
                "openraft": 11,
                "state machine: tree, sessions, watches": 13,
            },
        })
    );
}
