//! kazoo 2.11.0 recipes (Lock, Election, Barrier/DoubleBarrier, Counter, Queue/LockingQueue, a lock freed by
//! session expiry) with several clients against `rzk server`, and the same scripts against Apache ZooKeeper
//! 3.8.0 as a control. The scripts live in `tests/python/` at the repository root; each checks its own
//! invariants and exits non-zero with `FAIL:` lines on any violation.

mod support;

use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use support::{describe_output, python, RefZk, RzkServer};

/// Small ticks so the expiry test finishes in a few seconds: the lock holder asks for a 4 s session, which
/// these bounds leave as is; the other clients ask for 10 s.
const SERVER_CONFIG: &[&str] = &[
    "tickTime=200",
    "minSessionTimeout=1000",
    "maxSessionTimeout=20000",
];

const SCRIPTS: &[&str] = &[
    "lock.py",
    "election.py",
    "barrier.py",
    "counter.py",
    "queue_recipes.py",
    "lock_expiry.py",
];

fn script_path(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(script)
}

/// Runs one recipe script against `connect` under its own base path; `Err` carries everything it printed.
fn run_script(server_name: &str, connect: &str, script: &str) -> Result<(), String> {
    let base = format!("/recipes/{}", script.trim_end_matches(".py"));
    let started = Instant::now();
    let output = python(script_path(script), &[connect, &base]);
    let report = format!(
        "{script} against {server_name} ({connect}) took {:?}\n{}",
        started.elapsed(),
        describe_output(&output)
    );
    if output.status.success() {
        eprintln!("{report}");
        Ok(())
    } else {
        Err(report)
    }
}

fn run_against_rzk(test: &str, script: &str) {
    if support::skip_without_kazoo(test) {
        return;
    }
    let rzk = RzkServer::start(SERVER_CONFIG);
    if let Err(report) = run_script("rzk", &rzk.connect_string(), script) {
        panic!("{test}: {report}");
    }
}

/// Checks Lock: 4 clients x 12 holds incrementing a counter znode without a version check; the total is exact,
/// an ephemeral marker created inside the lock never clashes, and the holds never overlap in time.
#[test]
fn lock_is_mutually_exclusive() {
    run_against_rzk("lock_is_mutually_exclusive", "lock.py");
}

/// Checks Election: with 3 clients there is exactly one leader at a time, it is the first contender, and
/// stopping the leader's client hands leadership to another live client, until each has led once.
#[test]
fn election_has_one_leader_and_hands_over() {
    run_against_rzk("election_has_one_leader_and_hands_over", "election.py");
}

/// Checks Barrier (no waiter passes before removal, all pass after) and DoubleBarrier (no party enters before
/// all have arrived, none leaves before all are leaving), twice on the same path.
#[test]
fn barriers_hold_until_everyone_arrives() {
    run_against_rzk("barriers_hold_until_everyone_arrives", "barrier.py");
}

/// Checks Counter: 4 clients x 25 concurrent increments give exactly 100, dataVersion 100, and the
/// post-values of the compare-and-set increments are exactly 1..100.
#[test]
fn counter_increments_add_up_exactly() {
    run_against_rzk("counter_increments_add_up_exactly", "counter.py");
}

/// Checks Queue (single consumer gets items in put order; racing consumers take each item exactly once) and
/// LockingQueue (concurrent producer and consumers, one release; each item consumed exactly once).
#[test]
fn queues_deliver_every_item_exactly_once() {
    run_against_rzk("queues_deliver_every_item_exactly_once", "queue_recipes.py");
}

/// Checks a Lock held by a separate process whose session expires (SIGSTOP: connection open, heartbeats
/// stopped; SIGKILL: connection dropped): still held right after the signal, passed to the contender no
/// sooner than half the negotiated timeout and no later than timeout + 6 s.
#[test]
fn lock_is_freed_when_the_holders_session_expires() {
    run_against_rzk(
        "lock_is_freed_when_the_holders_session_expires",
        "lock_expiry.py",
    );
}

/// Control: every recipe script against Apache ZooKeeper 3.8.0 with the same config (one server, scripts in
/// parallel under separate base paths). A failure here means the script, not rzk, is wrong.
#[test]
fn recipes_pass_on_reference_zookeeper() {
    if support::skip_without_kazoo("recipes_pass_on_reference_zookeeper")
        || support::skip_without_reference("recipes_pass_on_reference_zookeeper")
    {
        return;
    }
    let zookeeper = RefZk::start_with(SERVER_CONFIG, &[]);
    let connect = zookeeper.connect_string();
    let runs: Vec<_> = SCRIPTS
        .iter()
        .map(|script| {
            let connect = connect.clone();
            thread::spawn(move || run_script("ZooKeeper 3.8.0", &connect, script))
        })
        .collect();
    let failures: Vec<String> = runs
        .into_iter()
        .filter_map(|run| run.join().expect("script thread").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} recipe script(s) failed against the reference ZooKeeper:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
