//! Prometheus metrics, as ZooKeeper's `PrometheusMetricsProvider` serves them: text exposition at
//! `http://<metricsProvider.httpHost>:<metricsProvider.httpPort>/metrics` (default port 7000).
//!
//! # When it is on
//! As in ZooKeeper: only when `metricsProvider.className` names the Prometheus provider
//! (`org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`; any class name ending in
//! `PrometheusMetricsProvider` counts). Turning it on unasked would open a port an operator did
//! not plan for (7000 clashes as 8080 does for the AdminServer), and a zoo.cfg that works with
//! ZooKeeper should do the same thing with rzk. Before [`serve`] runs, [`Metrics::record_request`]
//! is a no-op costing one atomic load.
//!
//! # Registry
//! Each server has its own registry: a non-global `PrometheusRecorder`
//! (`PrometheusBuilder::build_recorder`) held in [`Metrics`], with handles registered once at
//! start. The `metrics` crate's global recorder is deliberately not installed: tests run several
//! servers in one process and each must see only its own counts.
//!
//! # Names
//! ZooKeeper's names where ZooKeeper has the metric: the gauges `znode_count`, `watch_count`,
//! `ephemerals_count`, `approximate_data_size`, `global_sessions`, `num_alive_connections`,
//! `outstanding_requests`, `packets_received`, `packets_sent`, `avg_latency`/`min_latency`/
//! `max_latency` (ms), `uptime` (ms), `open_file_descriptor_count`, `max_file_descriptor_count`,
//! and the summaries `readlatency` and `updatelatency` (ms, quantiles 0.5/0.9/0.99, as ZooKeeper).
//! rzk's own, prefixed `rzk_`: `rzk_requests_total{op}` and the histogram
//! `rzk_request_latency_seconds{op}` by opcode (ZooKeeper's `Request.op2String` names),
//! `rzk_data_dir_bytes` / `rzk_log_dir_bytes` (`<dir>/version-2`), `rzk_last_processed_zxid`,
//! and `rzk_server_state{state}` (1 for the current role of leader/follower/looking/standalone).
//! The write path: the histogram `rzk_commit_latency_seconds` (proposal to local apply), the
//! histogram `rzk_fsync_duration_seconds` of the log's group-commit `fdatasync` calls (ZooKeeper
//! has the summary `fsynctime`; the buckets are counted by rzk-storage's flusher, so every call is
//! in them, scraped or not) with the gauge `rzk_fsync_seconds_max`, and on a leader
//! `rzk_follower_lag_entries_max` and `rzk_synced_followers`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rzk_proto::OpCode;
use rzk_storage::{WalStats, SYNC_BUCKET_BOUNDS_NANOS};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Shared;

/// `metricsProvider.className` of ZooKeeper's Prometheus provider.
pub const PROMETHEUS_PROVIDER_CLASS: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// `metricsProvider.httpPort`'s default (ZooKeeper 3.8).
pub const HTTP_PORT_DEFAULT: u16 = 7000;
/// Where the exposition is served.
pub const METRICS_PATH: &str = "/metrics";

/// How often histogram samples are folded into their summaries/buckets when nobody scrapes,
/// so an unscraped server's sample buffers stay small.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Upper bounds (seconds) of `rzk_request_latency_seconds`: 100 µs (a local read) to 10 s (a
/// write waiting out an election).
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The quantiles ZooKeeper's Prometheus summaries report.
const SUMMARY_QUANTILES: &[f64] = &[0.5, 0.9, 0.99];

const REQUESTS: &str = "rzk_requests_total";
const REQUEST_LATENCY: &str = "rzk_request_latency_seconds";
const READ_LATENCY: &str = "readlatency";
const UPDATE_LATENCY: &str = "updatelatency";
const SERVER_STATE: &str = "rzk_server_state";
const COMMIT_LATENCY: &str = "rzk_commit_latency_seconds";
/// The log's fsync histogram, rendered from rzk-storage's bucket counts.
const FSYNC_DURATION: &str = "rzk_fsync_duration_seconds";
const SERVER_STATES: &[&str] = &["leader", "follower", "looking", "standalone"];

/// Gauges sampled from the server when scraped: (name, unit, help).
const GAUGES: &[(&str, Option<Unit>, &str)] = &[
    ("znode_count", None, "Znodes in the tree"),
    (
        "watch_count",
        None,
        "Watches set, one per (session, path, table)",
    ),
    ("ephemerals_count", None, "Ephemeral znodes"),
    (
        "approximate_data_size",
        Some(Unit::Bytes),
        "Bytes of paths and data in the tree",
    ),
    ("global_sessions", None, "Open sessions"),
    ("num_alive_connections", None, "Open client connections"),
    (
        "outstanding_requests",
        None,
        "Requests received and not yet answered",
    ),
    ("packets_received", None, "Packets received from clients"),
    ("packets_sent", None, "Packets sent to clients"),
    (
        "avg_latency",
        Some(Unit::Milliseconds),
        "Average request latency",
    ),
    (
        "min_latency",
        Some(Unit::Milliseconds),
        "Minimum request latency",
    ),
    (
        "max_latency",
        Some(Unit::Milliseconds),
        "Maximum request latency",
    ),
    (
        "uptime",
        Some(Unit::Milliseconds),
        "Time since the server started",
    ),
    ("open_file_descriptor_count", None, "Open file descriptors"),
    (
        "max_file_descriptor_count",
        None,
        "Open file descriptor limit",
    ),
    (
        "rzk_data_dir_bytes",
        Some(Unit::Bytes),
        "Bytes in dataDir/version-2 (snapshots)",
    ),
    (
        "rzk_log_dir_bytes",
        Some(Unit::Bytes),
        "Bytes in dataLogDir/version-2 (log)",
    ),
    (
        "rzk_last_processed_zxid",
        None,
        "Zxid of the last applied entry",
    ),
    (
        "rzk_fsync_seconds_max",
        Some(Unit::Seconds),
        "The longest group-commit fdatasync call",
    ),
    (
        "rzk_follower_lag_entries_max",
        None,
        "On the leader: entries the furthest-behind follower lacks (0 elsewhere)",
    ),
    (
        "rzk_synced_followers",
        None,
        "On the leader: followers in contact and close to its log",
    ),
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// One server's metrics; empty (every call a no-op) until [`Metrics::enable`].
#[derive(Default)]
pub struct Metrics {
    registry: OnceLock<Registry>,
}

struct OpHandles {
    requests: Counter,
    latency_seconds: Histogram,
    /// `readlatency` or `updatelatency` (ms), or none for pings, auth and watch re-arming.
    zookeeper_latency_ms: Option<Histogram>,
}

struct Registry {
    handle: PrometheusHandle,
    /// Proposal to local apply: durable on a quorum, committed, applied.
    commit_latency_seconds: Histogram,
    ops: HashMap<OpCode, OpHandles>,
    gauges: HashMap<&'static str, Gauge>,
    states: Vec<(&'static str, Gauge)>,
}

impl Metrics {
    /// Create this server's registry (idempotent). Called by [`serve`].
    pub fn enable(&self) {
        self.registry.get_or_init(Registry::new);
    }

    /// Whether metrics are recorded: callers skip clock reads made only for them when not.
    pub fn is_enabled(&self) -> bool {
        self.registry.get().is_some()
    }

    /// Count one answered request and its latency (read to reply written), by opcode (the
    /// wire value; unknown opcodes are not counted). The server calls this once per reply.
    pub fn record_request(&self, op: i32, latency: Duration) {
        let Some(registry) = self.registry.get() else {
            return;
        };
        let Some(handles) = OpCode::from_i32(op).and_then(|op| registry.ops.get(&op)) else {
            return;
        };
        handles.requests.increment(1);
        handles.latency_seconds.record(latency.as_secs_f64());
        if let Some(histogram) = &handles.zookeeper_latency_ms {
            histogram.record(latency.as_secs_f64() * 1000.0);
        }
    }

    /// Record how long one proposal took from proposing to local apply.
    pub fn record_commit(&self, latency: Duration) {
        if let Some(registry) = self.registry.get() {
            registry
                .commit_latency_seconds
                .record(latency.as_secs_f64());
        }
    }

    /// The text exposition, with the gauges sampled from `shared` now; `None` when disabled.
    pub fn render(&self, shared: &Shared) -> Option<String> {
        let registry = self.registry.get()?;
        let log = registry.sample(shared);
        let mut text = registry.handle.render();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        render_fsync_histogram(&mut text, &log.unwrap_or_default());
        Some(text)
    }

    fn run_upkeep(&self) {
        if let Some(registry) = self.registry.get() {
            registry.handle.run_upkeep();
        }
    }
}

/// ZooKeeper's `Request.op2String`.
pub fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Notification => "notification",
        OpCode::Create => "create",
        OpCode::Delete => "delete",
        OpCode::Exists => "exists",
        OpCode::GetData => "getData",
        OpCode::SetData => "setData",
        OpCode::GetAcl => "getACL",
        OpCode::SetAcl => "setACL",
        OpCode::GetChildren => "getChildren",
        OpCode::Sync => "sync",
        OpCode::Ping => "ping",
        OpCode::GetChildren2 => "getChildren2",
        OpCode::Check => "check",
        OpCode::Multi => "multi",
        OpCode::Create2 => "create2",
        OpCode::Reconfig => "reconfig",
        OpCode::CheckWatches => "checkWatches",
        OpCode::RemoveWatches => "removeWatches",
        OpCode::CreateContainer => "createContainer",
        OpCode::DeleteContainer => "deleteContainer",
        OpCode::CreateTtl => "createTTL",
        OpCode::MultiRead => "multiRead",
        OpCode::Auth => "auth",
        OpCode::SetWatches => "setWatches",
        OpCode::Sasl => "sasl",
        OpCode::GetEphemerals => "getEphemerals",
        OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
        OpCode::SetWatches2 => "setWatches2",
        OpCode::AddWatch => "addWatch",
        OpCode::WhoAmI => "whoAmI",
        OpCode::CreateSession => "createSession",
        OpCode::CloseSession => "closeSession",
        OpCode::Error => "error",
    }
}

/// Which ZooKeeper summary an opcode feeds: requests that go through the log are updates
/// (ZooKeeper: requests with a txn header), the other data requests are reads.
fn zookeeper_latency_name(op: OpCode) -> Option<&'static str> {
    match op {
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTtl
        | OpCode::Delete
        | OpCode::DeleteContainer
        | OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Check
        | OpCode::Multi
        | OpCode::Reconfig
        | OpCode::CreateSession
        | OpCode::CloseSession => Some(UPDATE_LATENCY),
        OpCode::Exists
        | OpCode::GetData
        | OpCode::GetAcl
        | OpCode::GetChildren
        | OpCode::GetChildren2
        | OpCode::Sync
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::MultiRead
        | OpCode::GetEphemerals
        | OpCode::GetAllChildrenNumber
        | OpCode::AddWatch
        | OpCode::WhoAmI => Some(READ_LATENCY),
        OpCode::Notification
        | OpCode::Ping
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::Sasl
        | OpCode::Error => None,
    }
}

impl Registry {
    fn new() -> Registry {
        let recorder = PrometheusBuilder::new()
            .set_quantiles(SUMMARY_QUANTILES)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(REQUEST_LATENCY.to_string()),
                    LATENCY_BUCKETS_SECONDS,
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(COMMIT_LATENCY.to_string()),
                    LATENCY_BUCKETS_SECONDS,
                )
            })
            .expect("the quantiles and buckets are non-empty constants")
            .build_recorder();
        describe(&recorder);
        let handle = recorder.handle();
        let commit_latency_seconds =
            recorder.register_histogram(&Key::from_name(COMMIT_LATENCY), &METADATA);
        let ops = OpCode::ALL
            .iter()
            .map(|&op| {
                let labels = vec![Label::new("op", op_name(op))];
                let handles = OpHandles {
                    requests: recorder
                        .register_counter(&Key::from_parts(REQUESTS, labels.clone()), &METADATA),
                    latency_seconds: recorder
                        .register_histogram(&Key::from_parts(REQUEST_LATENCY, labels), &METADATA),
                    zookeeper_latency_ms: zookeeper_latency_name(op)
                        .map(|name| recorder.register_histogram(&Key::from_name(name), &METADATA)),
                };
                (op, handles)
            })
            .collect();
        let gauges = GAUGES
            .iter()
            .map(|(name, _, _)| {
                let gauge = recorder.register_gauge(&Key::from_name(*name), &METADATA);
                (*name, gauge)
            })
            .collect();
        let states = SERVER_STATES
            .iter()
            .map(|&state| {
                let key = Key::from_parts(SERVER_STATE, vec![Label::new("state", state)]);
                (state, recorder.register_gauge(&key, &METADATA))
            })
            .collect();
        Registry {
            handle,
            commit_latency_seconds,
            ops,
            gauges,
            states,
        }
    }

    /// Set every gauge from the server's current state.
    /// Returns the log's counters, for [`render_fsync_histogram`].
    fn sample(&self, shared: &Shared) -> Option<WalStats> {
        let stats = &shared.stats;
        let latency = stats.latency();
        let (counts, last_zxid) = {
            let core = shared.lock();
            (core.sm.counts(), core.sm.last_zxid())
        };
        let status = shared.replica_status();
        let log = status.as_ref().and_then(|s| s.log_syncs);
        let sync_nanos_max = log.map_or(0, |log| log.sync_nanos_max);
        let lag_max = status
            .as_ref()
            .and_then(|s| s.follower_lag.iter().map(|(_, lag)| *lag).max())
            .unwrap_or(0);
        let synced = status.as_ref().map_or(0, |s| s.synced_followers);
        let values: [(&str, f64); 21] = [
            ("znode_count", counts.znodes as f64),
            ("watch_count", counts.watches as f64),
            ("ephemerals_count", counts.ephemerals as f64),
            ("approximate_data_size", counts.approximate_data_size as f64),
            ("global_sessions", counts.sessions as f64),
            (
                "num_alive_connections",
                stats.alive_connections.load(Ordering::Relaxed) as f64,
            ),
            (
                "outstanding_requests",
                stats.outstanding_requests.load(Ordering::Relaxed).max(0) as f64,
            ),
            (
                "packets_received",
                stats.packets_received.load(Ordering::Relaxed) as f64,
            ),
            (
                "packets_sent",
                stats.packets_sent.load(Ordering::Relaxed) as f64,
            ),
            ("avg_latency", latency.avg_ms),
            ("min_latency", latency.min_ms),
            ("max_latency", latency.max_ms),
            ("uptime", stats.started.elapsed().as_millis() as f64),
            (
                "open_file_descriptor_count",
                crate::stats::open_file_descriptors() as f64,
            ),
            (
                "max_file_descriptor_count",
                crate::stats::max_file_descriptors() as f64,
            ),
            (
                "rzk_data_dir_bytes",
                crate::stats::directory_size(&shared.options.data_dir) as f64,
            ),
            (
                "rzk_log_dir_bytes",
                crate::stats::directory_size(&shared.options.data_log_dir) as f64,
            ),
            ("rzk_last_processed_zxid", last_zxid as f64),
            ("rzk_fsync_seconds_max", sync_nanos_max as f64 / 1e9),
            ("rzk_follower_lag_entries_max", lag_max as f64),
            ("rzk_synced_followers", synced as f64),
        ];
        for (name, value) in values {
            if let Some(gauge) = self.gauges.get(name) {
                gauge.set(value);
            }
        }
        let mode = shared.mode();
        for (state, gauge) in &self.states {
            gauge.set(if *state == mode { 1.0 } else { 0.0 });
        }
        log
    }
}

/// Appends `rzk_fsync_duration_seconds` (a Prometheus histogram: cumulative buckets, `+Inf`,
/// `_sum`, `_count`) from the log's counters; all zero for a log in memory.
fn render_fsync_histogram(out: &mut String, log: &WalStats) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP {FSYNC_DURATION} Group-commit fdatasync calls on the log, by duration (ZooKeeper: fsynctime)"
    );
    let _ = writeln!(out, "# TYPE {FSYNC_DURATION} histogram");
    let mut cumulative = 0u64;
    for (bound, count) in SYNC_BUCKET_BOUNDS_NANOS.iter().zip(&log.sync_buckets) {
        cumulative += count;
        let le = *bound as f64 / 1e9;
        let _ = writeln!(out, "{FSYNC_DURATION}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    // Counted from the buckets (not `log.syncs`, which is incremented before the call ends) so
    // that +Inf and _count always agree.
    let total: u64 = log.sync_buckets.iter().sum();
    let _ = writeln!(out, "{FSYNC_DURATION}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(
        out,
        "{FSYNC_DURATION}_sum {}",
        log.sync_nanos_total as f64 / 1e9
    );
    let _ = writeln!(out, "{FSYNC_DURATION}_count {total}");
}

fn describe(recorder: &impl Recorder) {
    for (name, unit, help) in GAUGES {
        recorder.describe_gauge((*name).into(), *unit, (*help).into());
    }
    recorder.describe_counter(
        REQUESTS.into(),
        None,
        "Client requests answered, by opcode".into(),
    );
    recorder.describe_histogram(
        REQUEST_LATENCY.into(),
        Some(Unit::Seconds),
        "Client request latency from receipt to reply, by opcode".into(),
    );
    recorder.describe_histogram(
        READ_LATENCY.into(),
        Some(Unit::Milliseconds),
        "Read request latency (ZooKeeper's readlatency)".into(),
    );
    recorder.describe_histogram(
        UPDATE_LATENCY.into(),
        Some(Unit::Milliseconds),
        "Write request latency (ZooKeeper's updatelatency)".into(),
    );
    recorder.describe_histogram(
        COMMIT_LATENCY.into(),
        Some(Unit::Seconds),
        "Write entries from proposal to local apply (durable on a quorum, committed, applied)"
            .into(),
    );
    recorder.describe_gauge(
        SERVER_STATE.into(),
        None,
        "1 for this member's current role, 0 for the others".into(),
    );
}

/// Routes: `GET /metrics`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(shared)
}

async fn scrape(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    let body = shared.metrics.render(&shared).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Enable this server's metrics and serve them on `listener` until the task is aborted.
pub fn serve(shared: Arc<Shared>, listener: TcpListener) -> JoinHandle<()> {
    shared.metrics.enable();
    let app = router(shared.clone());
    tokio::spawn(async move {
        let upkeep = async {
            let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                ticker.tick().await;
                shared.metrics.run_upkeep();
            }
        };
        tokio::select! {
            result = axum::serve(listener, app) => {
                if let Err(error) = result {
                    tracing::warn!(%error, "metrics server stopped");
                }
            }
            () = upkeep => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_has_a_name_and_the_names_are_distinct() {
        let names: std::collections::BTreeSet<_> =
            OpCode::ALL.iter().map(|&op| op_name(op)).collect();
        assert_eq!(names.len(), OpCode::ALL.len());
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let metrics = Metrics::default();
        metrics.record_request(OpCode::GetData.code(), Duration::from_millis(1));
        assert!(!metrics.is_enabled());
    }

    #[test]
    fn fsync_histogram_buckets_are_cumulative() {
        let mut log = WalStats {
            sync_nanos_total: 3_000_000_000,
            ..WalStats::default()
        };
        log.sync_buckets[0] = 2; // <= 100 µs
        log.sync_buckets[3] = 1; // <= 1 ms
        log.sync_buckets[SYNC_BUCKET_BOUNDS_NANOS.len()] = 1; // > 10 s
        let mut text = String::new();
        render_fsync_histogram(&mut text, &log);
        for line in [
            "# TYPE rzk_fsync_duration_seconds histogram",
            "rzk_fsync_duration_seconds_bucket{le=\"0.0001\"} 2",
            "rzk_fsync_duration_seconds_bucket{le=\"0.0005\"} 2",
            "rzk_fsync_duration_seconds_bucket{le=\"0.001\"} 3",
            "rzk_fsync_duration_seconds_bucket{le=\"10\"} 3",
            "rzk_fsync_duration_seconds_bucket{le=\"+Inf\"} 4",
            "rzk_fsync_duration_seconds_sum 3",
            "rzk_fsync_duration_seconds_count 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn two_registries_do_not_share_counts() {
        let (first, second) = (Metrics::default(), Metrics::default());
        first.enable();
        second.enable();
        first.record_request(OpCode::Create.code(), Duration::from_millis(2));
        let render = |metrics: &Metrics| metrics.registry.get().unwrap().handle.render();
        assert!(render(&first).contains("rzk_requests_total{op=\"create\"} 1"));
        assert!(render(&second).contains("rzk_requests_total{op=\"create\"} 0"));
    }
}
