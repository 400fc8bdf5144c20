//! `rzk bench`: a load generator that speaks the ZooKeeper protocol, so the same run can be
//! pointed at rzk and at Apache ZooKeeper and the figures compared (see BENCHMARKS.md).
//!
//! # Layout
//! - `mod.rs` (this file): arguments and their limits, the phases of a run (connect, set up
//!   the znodes, warm up and measure, clean up, close), Ctrl-C, the progress bar.
//! - `load.rs`: the measured phase, one task per pipelined request slot.
//! - `batch.rs`: many creates or deletes as multi batches (setup, `--populate`, cleanup).
//! - `workload.rs`: operation kinds, znode names and request records (pure).
//! - `stats.rs`: HDR latency histograms, errors by kind, /proc CPU and RSS, the report.
//!
//! Every session is one connection made with `rzk-client`; client `i` connects to server
//! `i mod n` of `--servers`. A request slot sends its next request when the previous reply
//! arrives, so a session always has exactly `--inflight` requests outstanding.

mod batch;
mod load;
mod stats;
mod workload;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rzk_client::{Client, ClientError, ErrorCode, PENDING_REQUESTS_MAX};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use batch::{run_batches, BatchJob, BatchOutcome};
use load::{spawn_slots, stopped, LoadPlan, SlotResult, Window};
use stats::{proc_sample, ClientStats, LoadReport, Measured, ProcSample, ProcUsage};
pub use workload::Op;

/// Sessions per run: each is a TCP connection plus two client tasks.
const CLIENTS_MAX: u32 = 1024;
/// Requests pipelined per session: what `rzk-client` allows outstanding.
const INFLIGHT_MAX: u32 = PENDING_REQUESTS_MAX as u32;
/// Value bytes per write: below ZooKeeper's default 1 MiB `jute.maxbuffer`, leaving room for
/// the path and the record framing.
const VALUE_SIZE_MAX: u32 = 1_000_000;
/// Znodes in the key space of get/set/exists/mixed.
const KEYS_MAX: u32 = 10_000_000;
/// Znodes one `--populate` run creates.
const POPULATE_MAX: u64 = 100_000_000;
/// Longest measured window and warmup, in seconds.
const DURATION_SECONDS_MAX: f64 = 86_400.0;
const WARMUP_SECONDS_MAX: f64 = 3_600.0;
/// A request (and a watch notification) not answered within this is counted as `Timeout`.
const REQUEST_TIMEOUT_SECONDS_MAX: f64 = 600.0;
/// Handshakes in flight while connecting many sessions.
const CONNECTS_IN_FLIGHT_MAX: usize = 32;
/// How long closing all sessions may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Runs shorter than this (warmup + duration) get no progress bar.
const PROGRESS_SECONDS_MIN: f64 = 3.0;
/// The session timeout asked for: ZooKeeper's usual 30 s.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

const _: () = assert!(INFLIGHT_MAX >= 1 && CLIENTS_MAX >= 1);
const _: () = assert!(stats::LATENCY_US_MAX >= REQUEST_TIMEOUT_SECONDS_MAX as u64 * 1_000_000);

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Servers to load, host:port[,host:port...]; client i connects to server i mod n.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub servers: String,
    /// The operation to measure.
    #[arg(long, value_enum, default_value_t = Op::Get)]
    pub op: Op,
    /// For --op mixed: the share of reads (getData), in percent; the rest are setData.
    #[arg(long, default_value_t = 50)]
    pub read_percent: u8,
    /// Sessions, one connection each.
    #[arg(long, default_value_t = 1)]
    pub clients: u32,
    /// Requests pipelined per session.
    #[arg(long, default_value_t = 1)]
    pub inflight: u32,
    /// Bytes of data per write (and per znode created for reads).
    #[arg(long, default_value_t = 100)]
    pub value_size: u32,
    /// Znodes read and written by get, set, exists and mixed.
    #[arg(long, default_value_t = 1000)]
    pub keys: u32,
    /// Seconds measured, after the warmup.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Create this many znodes of --value-size bytes under --prefix in multi batches, report
    /// the rate, and exit (no load run, nothing deleted).
    #[arg(long, value_name = "N")]
    pub populate: Option<u64>,
    /// Parent znode of everything the run creates. Default: /rzk-bench-{pid}-{ms} for a load
    /// run (deleted afterwards), /rzk-bench-populate for --populate.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keep the znodes a load run created (default: delete them after measuring).
    #[arg(long)]
    pub no_cleanup: bool,
    /// Report CPU time and RSS of these server processes over the measured window.
    #[arg(long, value_delimiter = ',', value_name = "PID[,PID...]")]
    pub server_pid: Vec<u32>,
    /// Seconds before an unanswered request (or watch event) counts as a Timeout error.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `rzk bench`: validate, then run on a runtime of its own.
pub fn run(args: BenchArgs) -> Result<(), String> {
    validate(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(run_async(args))
}

fn validate(args: &BenchArgs) -> Result<(), String> {
    let in_range = |name: &str, value: f64, min: f64, max: f64| {
        if value.is_finite() && value >= min && value <= max {
            Ok(())
        } else {
            Err(format!(
                "--{name} {value} is out of range: use {min}..={max} seconds"
            ))
        }
    };
    in_range("duration", args.duration, 0.001, DURATION_SECONDS_MAX)?;
    in_range("warmup", args.warmup, 0.0, WARMUP_SECONDS_MAX)?;
    in_range("timeout", args.timeout, 0.001, REQUEST_TIMEOUT_SECONDS_MAX)?;
    let count = |name: &str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "--{name} {value} is out of range: use {min}..={max}"
            ))
        }
    };
    count("clients", args.clients.into(), 1, CLIENTS_MAX.into())?;
    count("inflight", args.inflight.into(), 1, INFLIGHT_MAX.into())?;
    count(
        "value-size",
        args.value_size.into(),
        0,
        VALUE_SIZE_MAX.into(),
    )?;
    count("keys", args.keys.into(), 1, KEYS_MAX.into())?;
    count("read-percent", args.read_percent.into(), 0, 100)?;
    if let Some(total) = args.populate {
        count("populate", total, 1, POPULATE_MAX)?;
    }
    if let Some(prefix) = &args.prefix {
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
            return Err(format!(
                "--prefix {prefix:?} is not a znode path: start with /, no trailing / (e.g. /bench)"
            ));
        }
    }
    Ok(())
}

async fn run_async(args: BenchArgs) -> Result<(), String> {
    let stop = watch_ctrl_c();
    // Check the pids before loading anything: a typo should not cost a whole run.
    for pid in &args.server_pid {
        proc_sample(&pid.to_string()).map_err(|error| format!("--server-pid {pid}: {error}"))?;
    }
    let clients = connect_all(&args, &stop).await?;
    let result = match args.populate {
        Some(total) => populate(&args, &clients, total, &stop).await,
        None => load_run(&args, &clients, &stop).await,
    };
    close_all(&clients).await;
    result
}

/// Ctrl-C once: stop the current phase and report what was measured. Twice: exit at once.
fn watch_ctrl_c() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling: keep the sender alive so receivers never see a stop.
            std::future::pending::<()>().await;
        }
        eprintln!("rzk bench: stopping (Ctrl-C again to exit at once)");
        let _ = sender.send(true);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
        std::future::pending::<()>().await;
    });
    receiver
}

async fn connect_all(
    args: &BenchArgs,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<Arc<Client>>, String> {
    let hosts = rzk_client::parse_hosts(&args.servers).map_err(|error| error.to_string())?;
    let mut clients = Vec::with_capacity(args.clients as usize);
    let mut pending = JoinSet::new();
    let mut next = 0u32;
    while clients.len() < args.clients as usize {
        while next < args.clients && pending.len() < CONNECTS_IN_FLIGHT_MAX {
            let host = hosts[next as usize % hosts.len()].clone();
            pending.spawn(async move { (next, Client::connect(&host, SESSION_TIMEOUT).await) });
            next += 1;
        }
        let mut stop = stop.clone();
        let joined = tokio::select! {
            joined = pending.join_next() => joined,
            () = stopped(&mut stop) => return Err("interrupted while connecting".to_owned()),
        };
        let Some(joined) = joined else { break };
        let (index, connected) = joined.map_err(|error| format!("connect task failed: {error}"))?;
        let client = connected.map_err(|error| {
            let text = error.to_string();
            let hint = if text.contains("closed the connection during the handshake") {
                " (ZooKeeper refuses more than maxClientCnxns connections from one address, 60 by default; set maxClientCnxns=0 in zoo.cfg)"
            } else {
                ""
            };
            format!("session {index}: {text}{hint}")
        })?;
        clients.push((index, Arc::new(client)));
    }
    // Keep client i on server i mod n, whatever order the handshakes finished in.
    clients.sort_by_key(|(index, _)| *index);
    Ok(clients.into_iter().map(|(_, client)| client).collect())
}

async fn close_all(clients: &[Arc<Client>]) {
    let mut closing = JoinSet::new();
    for client in clients {
        let client = client.clone();
        closing.spawn(async move { client.close().await });
    }
    let all = async { while closing.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_TIMEOUT, all).await.is_err() {
        eprintln!(
            "rzk bench: some sessions did not close within {CLOSE_TIMEOUT:?}; they will expire"
        );
    }
}

fn default_prefix() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("/rzk-bench-{}-{millis}", std::process::id())
}

/// Create `path` and its missing ancestors; existing ones are fine.
async fn ensure_path(client: &Client, path: &str) -> Result<(), String> {
    let acl = workload::open_acl();
    let mut current = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        current.push('/');
        current.push_str(part);
        match client
            .create(&current, None, &acl, rzk_client::CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(ClientError::Keeper(ErrorCode::NodeExists)) => {}
            Err(error) => return Err(format!("cannot create {current}: {error}")),
        }
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal, with a task that refreshes it from
/// `counter`; `None` otherwise (scripts and logs get no control characters).
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// `by_time`: the bar runs over seconds and shows the current rate; otherwise over items.
    fn start(length: u64, by_time: bool, counter: Arc<AtomicU64>) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        let template = if by_time {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} s  {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} znodes  {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let (started, unit) = (Instant::now(), if by_time { "ops/s" } else { "znodes/s" });
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            let mut last = (Instant::now(), 0u64);
            loop {
                ticks.tick().await;
                let count = counter.load(Ordering::Relaxed);
                shown.set_position(if by_time {
                    started.elapsed().as_secs()
                } else {
                    count
                });
                // The rate over the last tick, so a stall shows at once.
                let seconds = last.0.elapsed().as_secs_f64().max(1e-3);
                let rate = count.saturating_sub(last.1) as f64 / seconds;
                shown.set_message(format!("{rate:.0} {unit}"));
                last = (Instant::now(), count);
            }
        });
        Some(Progress { bar, ticker })
    }

    fn finish(progress: Option<Progress>) {
        if let Some(progress) = progress {
            progress.ticker.abort();
            progress.bar.finish_and_clear();
        }
    }
}

async fn populate(
    args: &BenchArgs,
    clients: &[Arc<Client>],
    total: u64,
    stop: &watch::Receiver<bool>,
) -> Result<(), String> {
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| "/rzk-bench-populate".to_owned());
    ensure_path(&clients[0], &prefix).await?;
    let data = workload::value(args.value_size);
    let build_prefix = prefix.clone();
    let job = Arc::new(BatchJob {
        total,
        batch: workload::batch_ops(args.value_size),
        build: Arc::new(move |index| {
            workload::create_request(workload::populate_path(&build_prefix, index), &data)
        }),
        tolerate: Some(ErrorCode::NodeExists),
        request_timeout: Duration::from_secs_f64(args.timeout),
    });
    let counter = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(total, false, counter.clone());
    let started = Instant::now();
    let outcome = run_batches(job.clone(), clients, args.inflight, stop, counter).await;
    let elapsed = started.elapsed().as_secs_f64();
    Progress::finish(progress);
    let report = json!({
        "mode": "populate",
        "servers": args.servers,
        "prefix": prefix,
        "requested": total,
        "created": outcome.done - outcome.tolerated,
        "already_existed": outcome.tolerated,
        "value_size": args.value_size,
        "batch": job.batch,
        "seconds": elapsed,
        "znodes_per_second": if elapsed > 0.0 { outcome.done as f64 / elapsed } else { 0.0 },
        "errors": outcome.error_count(),
        "errors_by_kind": outcome.errors,
        "interrupted": *stop.borrow(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "populated {} of {total} znodes ({} already existed; {} B values, {} per multi) under {prefix} in {elapsed:.2} s: {:.0} znodes/s, {} errors{}",
            outcome.done,
            outcome.tolerated,
            args.value_size,
            job.batch,
            report["znodes_per_second"].as_f64().unwrap_or(0.0),
            outcome.error_count(),
            if *stop.borrow() { " (interrupted)" } else { "" }
        );
        for (kind, count) in &outcome.errors {
            println!("  error {kind}: {count}");
        }
    }
    Ok(())
}

/// Create the znodes the operation reads and writes before measuring.
async fn set_up(
    args: &BenchArgs,
    plan: &LoadPlan,
    clients: &[Arc<Client>],
    stop: &watch::Receiver<bool>,
) -> Result<(), String> {
    ensure_path(&clients[0], &plan.prefix).await?;
    if plan.op == Op::Create {
        return Ok(());
    }
    let names = Arc::new(RunNames::new(plan, args, &[]));
    let total = names.total();
    let data = plan.data.clone();
    let build: batch::BuildRequest =
        Arc::new(move |index| workload::create_request(names.path(index), &data));
    let job = Arc::new(BatchJob {
        total,
        batch: workload::batch_ops(args.value_size),
        build,
        tolerate: Some(ErrorCode::NodeExists),
        request_timeout: plan.request_timeout,
    });
    let outcome = run_batches(job, clients, 1, stop, Arc::new(AtomicU64::new(0))).await;
    check_batch("setting up", total, &outcome)
}

fn check_batch(what: &str, total: u64, outcome: &BatchOutcome) -> Result<(), String> {
    if outcome.done == total {
        return Ok(());
    }
    Err(format!(
        "{what}: {} of {total} znodes done; errors: {:?}",
        outcome.done, outcome.errors
    ))
}

async fn load_run(
    args: &BenchArgs,
    clients: &[Arc<Client>],
    stop: &watch::Receiver<bool>,
) -> Result<(), String> {
    if args.op != Op::Watch {
        // Only the watch op reads events; the others must not let them pile up.
        for client in clients {
            drop(client.take_events());
        }
    }
    let plan = Arc::new(LoadPlan {
        op: args.op,
        prefix: args.prefix.clone().unwrap_or_else(default_prefix),
        keys: args.keys.into(),
        read_percent: args.read_percent,
        data: workload::value(args.value_size),
        inflight: args.inflight,
        request_timeout: Duration::from_secs_f64(args.timeout),
    });
    set_up(args, &plan, clients, stop).await?;
    let (report, slots) = measure(args, &plan, clients, stop).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if *stop.borrow() {
        eprintln!(
            "rzk bench: interrupted, so the znodes under {} are left in place",
            plan.prefix
        );
    } else if !args.no_cleanup {
        clean_up(args, &plan, clients, &slots, stop).await?;
    }
    Ok(())
}

/// Warm up, measure, and collect the report; the slots' results say what they created.
async fn measure(
    args: &BenchArgs,
    plan: &Arc<LoadPlan>,
    clients: &[Arc<Client>],
    stop: &watch::Receiver<bool>,
) -> Result<(LoadReport, Vec<SlotResult>), String> {
    let started = Instant::now();
    let measure_start = started + Duration::from_secs_f64(args.warmup);
    let measure_end = measure_start + Duration::from_secs_f64(args.duration);
    let window = Arc::new(Window {
        measure_start,
        finished: Default::default(),
        completed: Arc::new(AtomicU64::new(0)),
    });
    let stats: Vec<Arc<ClientStats>> = clients
        .iter()
        .map(|_| Arc::new(ClientStats::new(plan.op == Op::Mixed)))
        .collect();
    let mut slots = JoinSet::new();
    let mut dispatchers = JoinSet::new();
    spawn_slots(plan, &window, clients, &stats, &mut slots, &mut dispatchers);
    let total_seconds = args.warmup + args.duration;
    let progress = (total_seconds > PROGRESS_SECONDS_MIN)
        .then(|| Progress::start(total_seconds.ceil() as u64, true, window.completed.clone()))
        .flatten();
    let mut stop_wait = stop.clone();
    let mut interrupted = false;
    tokio::select! {
        () = tokio::time::sleep_until(measure_start.into()) => {}
        () = stopped(&mut stop_wait) => interrupted = true,
    }
    let servers_before = sample_servers(&args.server_pid)?;
    let client_before = proc_sample("self").ok();
    let window_start = Instant::now().max(measure_start);
    if !interrupted {
        tokio::select! {
            () = tokio::time::sleep_until(measure_end.into()) => {}
            () = stopped(&mut stop_wait) => interrupted = true,
        }
    }
    window.finished.store(true, Ordering::Relaxed);
    let window_end = Instant::now();
    let servers_after = sample_servers(&args.server_pid)?;
    let client_after = proc_sample("self").ok();
    Progress::finish(progress);
    let mut results = Vec::new();
    while let Some(joined) = slots.join_next().await {
        results.push(joined.map_err(|error| format!("a request slot failed: {error}"))?);
    }
    dispatchers.abort_all();
    let mut measured = Measured::new(plan.op == Op::Mixed);
    for client_stats in &stats {
        measured.merge(&client_stats.snapshot());
    }
    let report = LoadReport {
        settings: settings_json(args, plan),
        window: window_end.saturating_duration_since(window_start),
        measured,
        servers: args
            .server_pid
            .iter()
            .zip(servers_before.iter().zip(&servers_after))
            .map(|(pid, (before, after))| ProcUsage::between(&pid.to_string(), *before, *after))
            .collect(),
        client_cpu_seconds: client_before
            .zip(client_after)
            .map(|(before, after)| after.cpu.saturating_sub(before.cpu).as_secs_f64()),
        interrupted,
    };
    Ok((report, results))
}

fn sample_servers(pids: &[u32]) -> Result<Vec<ProcSample>, String> {
    pids.iter()
        .map(|pid| {
            proc_sample(&pid.to_string())
                .map_err(|error| format!("--server-pid {pid}: {error} (did the server exit?)"))
        })
        .collect()
}

fn settings_json(args: &BenchArgs, plan: &LoadPlan) -> serde_json::Value {
    json!({
        "op": args.op.name(),
        "servers": args.servers,
        "clients": args.clients,
        "inflight": args.inflight,
        "value_size": args.value_size,
        "keys": args.keys,
        "read_percent": args.read_percent,
        "warmup_seconds": args.warmup,
        "duration_seconds": args.duration,
        "prefix": plan.prefix,
    })
}

/// Delete what the run created: the znodes of create slots, the key space or the watch
/// znodes, then the prefix itself.
async fn clean_up(
    args: &BenchArgs,
    plan: &LoadPlan,
    clients: &[Arc<Client>],
    slots: &[SlotResult],
    stop: &watch::Receiver<bool>,
) -> Result<(), String> {
    let names = Arc::new(RunNames::new(plan, args, slots));
    let total = names.total();
    let build_names = names.clone();
    let job = Arc::new(BatchJob {
        total,
        batch: workload::batch_ops(0),
        build: Arc::new(move |index| workload::delete_request(build_names.path(index))),
        tolerate: Some(ErrorCode::NoNode),
        request_timeout: plan.request_timeout,
    });
    let counter = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(total, false, counter.clone());
    let outcome = run_batches(job, clients, args.inflight.min(8), stop, counter).await;
    Progress::finish(progress);
    check_batch("cleaning up", total, &outcome)?;
    match clients[0].delete(&plan.prefix, -1).await {
        Ok(()) | Err(ClientError::Keeper(ErrorCode::NoNode)) => Ok(()),
        Err(error) => Err(format!("cleaning up {}: {error}", plan.prefix)),
    }
}

/// The znodes of a load run, addressable by a flat index for batched creates and deletes:
/// the key space or the watch znodes, or for create what the slots made.
struct RunNames {
    prefix: String,
    op: Op,
    inflight: u32,
    keys: u64,
    /// For create: (client, slot, names used), with the running total before each entry.
    created: Vec<(u64, SlotResultKey)>,
    total: u64,
}

#[derive(Clone, Copy)]
struct SlotResultKey {
    client: u32,
    slot: u32,
}

impl RunNames {
    fn new(plan: &LoadPlan, args: &BenchArgs, slots: &[SlotResult]) -> RunNames {
        let mut created = Vec::new();
        let mut running = 0u64;
        for result in slots.iter().filter(|result| result.names_used > 0) {
            created.push((
                running,
                SlotResultKey {
                    client: result.client,
                    slot: result.slot,
                },
            ));
            running += result.names_used;
        }
        let total = match plan.op {
            Op::Create => running,
            Op::Watch => u64::from(args.clients) * u64::from(args.inflight),
            _ => plan.keys,
        };
        RunNames {
            prefix: plan.prefix.clone(),
            op: plan.op,
            inflight: args.inflight,
            keys: plan.keys,
            created,
            total,
        }
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn path(&self, index: u64) -> String {
        match self.op {
            Op::Create => {
                let position = self.created.partition_point(|(start, _)| *start <= index) - 1;
                let (start, key) = self.created[position];
                workload::create_path(&self.prefix, key.client, key.slot, index - start)
            }
            Op::Watch => {
                let inflight = u64::from(self.inflight);
                workload::watch_path(
                    &self.prefix,
                    (index / inflight) as u32,
                    (index % inflight) as u32,
                )
            }
            _ => {
                debug_assert!(index < self.keys);
                workload::key_path(&self.prefix, index)
            }
        }
    }
}
