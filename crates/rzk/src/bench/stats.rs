//! Measurements: latency histograms, errors by kind, process CPU and memory from /proc, and
//! the report, as a table for people and JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use rzk_client::ClientError;
use serde_json::{json, Value};

/// Highest latency a histogram records, in microseconds. Requests are bounded by
/// `--timeout` (at most `REQUEST_TIMEOUT_MAX`), so nothing measured is longer.
pub const LATENCY_US_MAX: u64 = 10 * 60 * 1_000_000;
/// Significant digits kept: 3 means a recorded value is within 0.1% of the true one.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// What one client's request slots measured. Slots of one client share it behind a lock:
/// a histogram of this range is ~100 KiB, too much to keep per slot at 64 x 1000 slots, and
/// the critical section is a few nanoseconds with no `.await` inside.
pub struct ClientStats {
    inner: Mutex<Measured>,
}

#[derive(Clone)]
pub struct Measured {
    /// Every request's latency.
    pub latency_us: Histogram<u64>,
    /// `--op mixed` only: the same latencies, reads and writes apart. Writes are the few slow
    /// ones of a mixed load, so the whole's p99 is about the writes' p90 and hides their tail.
    pub by_kind: Option<ByKind>,
    pub errors: BTreeMap<String, u64>,
}

/// Latencies of reads and of writes, kept apart.
#[derive(Clone)]
pub struct ByKind {
    pub reads_us: Histogram<u64>,
    pub writes_us: Histogram<u64>,
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

fn merge_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("histograms with the same bounds merge");
}

impl Measured {
    /// `by_kind`: also keep reads' and writes' latencies apart.
    pub fn new(by_kind: bool) -> Measured {
        Measured {
            latency_us: latency_histogram(),
            by_kind: by_kind.then(|| ByKind {
                reads_us: latency_histogram(),
                writes_us: latency_histogram(),
            }),
            errors: BTreeMap::new(),
        }
    }

    pub fn merge(&mut self, other: &Measured) {
        merge_histogram(&mut self.latency_us, &other.latency_us);
        if let (Some(mine), Some(theirs)) = (&mut self.by_kind, &other.by_kind) {
            merge_histogram(&mut mine.reads_us, &theirs.reads_us);
            merge_histogram(&mut mine.writes_us, &theirs.writes_us);
        }
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl ClientStats {
    /// `by_kind`: as [`Measured::new`].
    pub fn new(by_kind: bool) -> ClientStats {
        ClientStats {
            inner: Mutex::new(Measured::new(by_kind)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Measured> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record_latency(&self, latency: Duration) {
        self.record_latency_of(latency, false);
    }

    /// Record a request's latency, and also as a read's or a write's when kinds are kept apart.
    pub fn record_latency_of(&self, latency: Duration, write: bool) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(LATENCY_US_MAX)
            .clamp(1, LATENCY_US_MAX);
        let mut measured = self.lock();
        measured.latency_us.saturating_record(micros);
        if let Some(by_kind) = &mut measured.by_kind {
            let histogram = if write {
                &mut by_kind.writes_us
            } else {
                &mut by_kind.reads_us
            };
            histogram.saturating_record(micros);
        }
    }

    pub fn record_error(&self, kind: String) {
        *self.lock().errors.entry(kind).or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> Measured {
        self.lock().clone()
    }
}

/// The name errors are counted under: the server's code name, or the local failure.
pub fn error_kind(error: &ClientError) -> String {
    match error {
        ClientError::Keeper(code) => format!("{code:?}"),
        ClientError::Connect { .. } => "ConnectFailed".to_owned(),
        ClientError::InvalidArgument(_) => "InvalidArgument".to_owned(),
        ClientError::ConnectionLost { .. } => "ConnectionLost".to_owned(),
        ClientError::Protocol { .. } => "ProtocolError".to_owned(),
    }
}

/// CPU time and memory of one process, read from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
    /// The high-water mark of resident memory (VmHWM), 0 when unknown.
    pub rss_peak_bytes: u64,
}

/// Read a sample of `pid` ("self" for this process). Fields 14 and 15 of `/proc/<pid>/stat`
/// are utime and stime in clock ticks and field 24 is rss in pages (proc(5)); the command
/// name (field 2) may contain spaces, so fields are counted after its closing parenthesis.
pub fn proc_sample(pid: &str) -> Result<ProcSample, String> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path)
        .map_err(|error| format!("cannot read {stat_path}: {error}; is the process alive?"))?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{stat_path} has no command name"))?;
    // after_name starts at field 3 (state), so field N is at index N - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Result<u64, String> {
        fields
            .get(number - 3)
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| format!("{stat_path}: field {number} is missing or not a number"))
    };
    let ticks = field(14)? + field(15)?;
    let rss_pages = field(24)?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second =
        u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    // SAFETY: as above.
    let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let rss_peak_bytes = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kib = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kib| kib * 1024);
    Ok(ProcSample {
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64),
        rss_bytes: rss_pages * page_bytes,
        rss_peak_bytes,
    })
}

/// A server process's use of the machine over the measured window.
#[derive(Debug, Clone)]
pub struct ProcUsage {
    pub pid: String,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
}

impl ProcUsage {
    pub fn between(pid: &str, before: ProcSample, after: ProcSample) -> ProcUsage {
        ProcUsage {
            pid: pid.to_owned(),
            cpu_seconds: after.cpu.saturating_sub(before.cpu).as_secs_f64(),
            rss_bytes: after.rss_bytes,
            rss_peak_bytes: after.rss_peak_bytes,
        }
    }
}

/// Everything a load run reports.
pub struct LoadReport {
    pub settings: Value,
    pub window: Duration,
    pub measured: Measured,
    pub servers: Vec<ProcUsage>,
    pub client_cpu_seconds: Option<f64>,
    pub interrupted: bool,
}

impl LoadReport {
    pub fn ops(&self) -> u64 {
        self.measured.latency_us.len()
    }

    pub fn throughput(&self) -> f64 {
        self.per_second(self.ops())
    }

    /// `count` over the measured window, 0 for an empty window.
    fn per_second(&self, count: u64) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> Value {
        let latency = latency_json(&self.measured.latency_us);
        let by_kind = self.measured.by_kind.as_ref().map_or(Value::Null, |by_kind| {
            json!({
                "read": {"ops": by_kind.reads_us.len(), "latency_us": latency_json(&by_kind.reads_us)},
                "write": {"ops": by_kind.writes_us.len(), "latency_us": latency_json(&by_kind.writes_us)},
            })
        });
        let window = self.window.as_secs_f64();
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|usage| {
                json!({
                    "pid": usage.pid,
                    "cpu_seconds": usage.cpu_seconds,
                    "cpu_percent": if window > 0.0 { 100.0 * usage.cpu_seconds / window } else { 0.0 },
                    "rss_bytes": usage.rss_bytes,
                    "rss_peak_bytes": usage.rss_peak_bytes,
                })
            })
            .collect();
        json!({
            "mode": "load",
            "settings": self.settings,
            "measured_seconds": window,
            "ops": self.ops(),
            "ops_per_second": self.throughput(),
            "latency_us": latency,
            "by_kind": by_kind,
            "errors": self.measured.error_count(),
            "errors_by_kind": self.measured.errors,
            "servers": servers,
            "client_cpu_seconds": self.client_cpu_seconds,
            "interrupted": self.interrupted,
        })
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let settings = &self.settings;
        let _ = writeln!(
            out,
            "rzk bench: op={} servers={} clients={} inflight={} value-size={} B{}",
            text(&settings["op"]),
            text(&settings["servers"]),
            settings["clients"],
            settings["inflight"],
            settings["value_size"],
            match settings["op"].as_str() {
                Some("mixed") => format!(
                    " keys={} read-percent={}",
                    settings["keys"], settings["read_percent"]
                ),
                Some("get" | "set" | "exists") => format!(" keys={}", settings["keys"]),
                _ => String::new(),
            }
        );
        let _ = writeln!(
            out,
            "measured {:.2} s after {} s warmup{}",
            self.window.as_secs_f64(),
            settings["warmup_seconds"],
            if self.interrupted {
                " (interrupted by Ctrl-C: partial window)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "{:<7}{:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        );
        let row = |out: &mut String, label: &str, histogram: &Histogram<u64>, errors: String| {
            // An empty histogram reads 0 everywhere: show "-" instead.
            let ms = |micros: u64| {
                if histogram.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{:.3}", micros as f64 / 1000.0)
                }
            };
            let _ = writeln!(
                out,
                "{label:<7}{:>10} {:>12.1} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                histogram.len(),
                self.per_second(histogram.len()),
                ms(histogram.value_at_quantile(0.50)),
                ms(histogram.value_at_quantile(0.90)),
                ms(histogram.value_at_quantile(0.99)),
                ms(histogram.value_at_quantile(0.999)),
                ms(histogram.max()),
                errors
            );
        };
        row(
            &mut out,
            "",
            &self.measured.latency_us,
            self.measured.error_count().to_string(),
        );
        if let Some(by_kind) = &self.measured.by_kind {
            row(&mut out, "reads", &by_kind.reads_us, String::new());
            row(&mut out, "writes", &by_kind.writes_us, String::new());
        }
        for (kind, count) in &self.measured.errors {
            let _ = writeln!(out, "  error {kind}: {count}");
        }
        for usage in &self.servers {
            let window = self.window.as_secs_f64().max(f64::MIN_POSITIVE);
            let _ = writeln!(
                out,
                "server pid {}: cpu {:.2} s ({:.0}% of one core), rss {:.1} MiB (peak {:.1} MiB)",
                usage.pid,
                usage.cpu_seconds,
                100.0 * usage.cpu_seconds / window,
                mebibytes(usage.rss_bytes),
                mebibytes(usage.rss_peak_bytes)
            );
        }
        if let Some(seconds) = self.client_cpu_seconds {
            let _ = writeln!(out, "bench client cpu {seconds:.2} s");
        }
        out
    }
}

/// Percentiles of one histogram for the JSON report, `null` when it is empty.
fn latency_json(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": histogram.value_at_quantile(0.50),
        "p90": histogram.value_at_quantile(0.90),
        "p99": histogram.value_at_quantile(0.99),
        "p999": histogram.value_at_quantile(0.999),
        "max": histogram.max(),
        "mean": histogram.mean(),
    })
}

pub fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A JSON string without its quotes, anything else as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: this process's own /proc sample parses (fields counted after the name).
    #[test]
    fn own_proc_sample_parses() {
        let sample = proc_sample("self").expect("/proc/self/stat");
        assert!(sample.rss_bytes > 0);
    }

    /// Goal: merged stats add up latencies and errors, and the report counts them.
    #[test]
    fn merge_and_report() {
        let first = ClientStats::new(false);
        let second = ClientStats::new(false);
        first.record_latency(Duration::from_micros(100));
        second.record_latency(Duration::from_micros(300));
        second.record_error("NoNode".to_owned());
        let mut measured = first.snapshot();
        measured.merge(&second.snapshot());
        let report = LoadReport {
            settings: json!({"op": "get", "servers": "x", "clients": 2, "inflight": 1,
                             "value_size": 1, "keys": 1, "warmup_seconds": 0}),
            window: Duration::from_secs(2),
            measured,
            servers: Vec::new(),
            client_cpu_seconds: None,
            interrupted: false,
        };
        assert_eq!(report.ops(), 2);
        assert!((report.throughput() - 1.0).abs() < 1e-9);
        let json = report.to_json();
        assert_eq!(json["errors_by_kind"]["NoNode"], 1);
        assert!(report.to_table().contains("error NoNode: 1"));
        assert_eq!(json["by_kind"], Value::Null);
    }

    /// Goal: a mixed run keeps reads and writes apart, and the whole still holds both.
    #[test]
    fn by_kind_keeps_reads_and_writes_apart() {
        let first = ClientStats::new(true);
        let second = ClientStats::new(true);
        for _ in 0..9 {
            first.record_latency_of(Duration::from_micros(100), false);
        }
        second.record_latency_of(Duration::from_micros(5000), true);
        let mut measured = Measured::new(true);
        measured.merge(&first.snapshot());
        measured.merge(&second.snapshot());
        let report = LoadReport {
            settings: json!({"op": "mixed", "servers": "x", "clients": 2, "inflight": 1,
                             "value_size": 1, "keys": 1, "read_percent": 90, "warmup_seconds": 0}),
            window: Duration::from_secs(1),
            measured,
            servers: Vec::new(),
            client_cpu_seconds: None,
            interrupted: false,
        };
        let json = report.to_json();
        assert_eq!(json["ops"], 10);
        assert_eq!(json["by_kind"]["read"]["ops"], 9);
        assert_eq!(json["by_kind"]["write"]["ops"], 1);
        assert_eq!(json["by_kind"]["read"]["latency_us"]["max"], 100);
        let write_p50 = json["by_kind"]["write"]["latency_us"]["p50"]
            .as_u64()
            .unwrap();
        assert!((4995..=5005).contains(&write_p50), "{json}");
        let table = report.to_table();
        assert!(
            table.lines().any(|line| line.starts_with("reads ")),
            "{table}"
        );
        assert!(
            table.lines().any(|line| line.starts_with("writes ")),
            "{table}"
        );
    }
}
