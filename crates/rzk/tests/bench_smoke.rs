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
