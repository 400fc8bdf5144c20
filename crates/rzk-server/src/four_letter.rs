//! Four-letter words on the client port (`ruok`, `srvr`, `stat`, `mntr`...), answered in
//! ZooKeeper's text formats (`server/command/*.java`, `ServerStats.toString`), gated by
//! `4lw.commands.whitelist`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::stats::{directory_size, max_file_descriptors, open_file_descriptors};
use crate::{ConnectionReport, Shared};

/// What `srvr`/`envi`/`mntr` report as the ZooKeeper version: the protocol level rzk serves,
/// then rzk's own version (kazoo reads the leading digits to pick features).
pub fn version() -> String {
    format!(
        "3.9.0-rzk-{}, built on {}",
        env!("CARGO_PKG_VERSION"),
        "rzk"
    )
}

pub fn answer(shared: &Shared, command: &str) -> String {
    if !shared.options.four_letter_words.allows(command) {
        return format!("{command} is not executed because it is not in the whitelist.\n");
    }
    let serving = shared.options.standalone || shared.mode() != "looking";
    if !serving && !matches!(command, "ruok" | "conf" | "envi" | "isro" | "dirs") {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    match command {
        "ruok" => "imok".to_string(),
        "srvr" => server_stats(shared, false),
        "stat" => server_stats(shared, true),
        "conf" => configuration(shared),
        "cons" => connections(shared),
        "envi" => environment(shared),
        "mntr" => monitor(shared),
        "wchs" => watch_summary(shared),
        "wchc" => watches_by_session(shared),
        "wchp" => watches_by_path(shared),
        "isro" => "rw".to_string(),
        "dirs" => directories(shared),
        "crst" => {
            shared.reset_connection_stats();
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            shared.stats.reset();
            "Server stats reset.\n".to_string()
        }
        "dump" => dump(shared),
        "gtmk" => "0\n".to_string(),
        "hash" => tree_digest(shared),
        _ => format!("{command} is not supported by rzk.\n"),
    }
}

fn java_double(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').to_string()
    }
}

fn server_stats(shared: &Shared, with_clients: bool) -> String {
    let latency = shared.stats.latency();
    let (zxid, nodes) = {
        let core = shared.lock();
        (core.sm.last_zxid(), core.sm.znode_count())
    };
    let mut text = String::new();
    let _ = writeln!(text, "Zookeeper version: {}", version());
    if with_clients {
        text.push_str("Clients:\n");
        for connection in shared.connection_list() {
            let _ = writeln!(text, " {}", connection_brief(&connection));
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "Latency min/avg/max: {}/{}/{}",
        latency.min_whole_ms(),
        java_double(latency.avg_ms),
        latency.max_whole_ms()
    );
    let _ = writeln!(
        text,
        "Received: {}",
        shared.stats.packets_received.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "Sent: {}",
        shared.stats.packets_sent.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "Connections: {}",
        shared.stats.alive_connections.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        text,
        "Outstanding: {}",
        shared
            .stats
            .outstanding_requests
            .load(Ordering::Relaxed)
            .max(0)
    );
    let _ = writeln!(text, "Zxid: 0x{zxid:x}");
    let _ = writeln!(text, "Mode: {}", shared.mode());
    let _ = writeln!(text, "Node count: {nodes}");
    text
}

fn configuration(shared: &Shared) -> String {
    let options = &shared.options;
    let mut text = String::new();
    let _ = writeln!(text, "clientPort={}", options.client_port);
    let _ = writeln!(text, "secureClientPort=-1");
    let _ = writeln!(text, "dataDir={}/version-2", options.data_dir.display());
    let _ = writeln!(text, "dataDirSize={}", directory_size(&options.data_dir));
    let _ = writeln!(
        text,
        "dataLogDir={}/version-2",
        options.data_log_dir.display()
    );
    let _ = writeln!(
        text,
        "dataLogSize={}",
        directory_size(&options.data_log_dir)
    );
    let _ = writeln!(text, "tickTime={}", options.tick_ms);
    let _ = writeln!(
        text,
        "maxClientCnxns={}",
        options.max_client_connections_per_ip
    );
    let _ = writeln!(text, "minSessionTimeout={}", options.min_session_timeout_ms);
    let _ = writeln!(text, "maxSessionTimeout={}", options.max_session_timeout_ms);
    let _ = writeln!(text, "clientPortListenBacklog=-1");
    let _ = writeln!(text, "serverId={}", options.reported_server_id());
    for (key, value) in &options.conf_lines {
        let _ = writeln!(text, "{key}={value}");
    }
    text
}

/// ` /addr[1](queued=0,recved=N,sent=N)`: the short form of `stat`'s client list.
fn connection_brief(connection: &ConnectionReport) -> String {
    let interest = u8::from(connection.session_id.is_some());
    format!(
        "/{}[{interest}](queued=0,recved={},sent={})",
        connection.peer, connection.stats.received, connection.stats.sent
    )
}

/// `cons`: ZooKeeper's per-connection line, with the session fields once a session exists.
fn connections(shared: &Shared) -> String {
    let mut text = String::new();
    for connection in shared.connection_list() {
        let Some(session_id) = connection.session_id else {
            let _ = writeln!(text, " {}", connection_brief(&connection));
            continue;
        };
        let stats = &connection.stats;
        let brief = connection_brief(&connection);
        let _ = write!(text, " {}", &brief[..brief.len() - 1]);
        let _ = write!(text, ",sid=0x{session_id:x}");
        // ZooKeeper's shape: `lop` is NA until a request (and after `crst`), and `lcxid`
        // appears only once a request with a client xid has been read (not for pings).
        let _ = write!(
            text,
            ",lop={},est={},to={}",
            stats.last_op.map_or("NA", crate::stats::op_short_name),
            connection.established_ms,
            stats.session_timeout_ms
        );
        if stats.last_cxid >= 0 {
            let _ = write!(text, ",lcxid=0x{:x}", stats.last_cxid);
        }
        let _ = write!(
            text,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            stats.last_zxid,
            stats.last_response_ms,
            stats.latency_last_ms,
            stats.latency_min_ms,
            stats.latency_avg_ms,
            stats.latency_max_ms
        );
        text.push_str(")\n");
    }
    text.push('\n');
    text
}

fn environment(shared: &Shared) -> String {
    let mut text = String::from("Environment:\n");
    for (key, value) in crate::admin::environment_lines(shared) {
        let _ = writeln!(text, "{key}={value}");
    }
    text
}

fn monitor(shared: &Shared) -> String {
    let latency = shared.stats.latency();
    let counts = shared.lock().sm.counts();
    let mut text = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(text, "zk_{key}\t{value}");
    };
    line("version", version());
    line("server_state", shared.mode().to_string());
    line("avg_latency", java_double(latency.avg_ms));
    line("max_latency", (latency.max_whole_ms()).to_string());
    line("min_latency", (latency.min_whole_ms()).to_string());
    line(
        "packets_received",
        shared
            .stats
            .packets_received
            .load(Ordering::Relaxed)
            .to_string(),
    );
    line(
        "packets_sent",
        shared
            .stats
            .packets_sent
            .load(Ordering::Relaxed)
            .to_string(),
    );
    line(
        "num_alive_connections",
        shared
            .stats
            .alive_connections
            .load(Ordering::Relaxed)
            .to_string(),
    );
    line(
        "outstanding_requests",
        shared
            .stats
            .outstanding_requests
            .load(Ordering::Relaxed)
            .max(0)
            .to_string(),
    );
    line("znode_count", counts.znodes.to_string());
    line("watch_count", counts.watches.to_string());
    line("ephemerals_count", counts.ephemerals.to_string());
    line(
        "approximate_data_size",
        counts.approximate_data_size.to_string(),
    );
    line("global_sessions", counts.sessions.to_string());
    line(
        "open_file_descriptor_count",
        open_file_descriptors().to_string(),
    );
    line(
        "max_file_descriptor_count",
        max_file_descriptors().to_string(),
    );
    line(
        "uptime",
        shared.stats.started.elapsed().as_millis().to_string(),
    );
    if shared.mode() == "leader" {
        let status = shared.replica().status();
        line("followers", status.followers.to_string());
        line("synced_followers", status.synced_followers.to_string());
        line("pending_syncs", "0".to_string());
    }
    text
}

fn watch_summary(shared: &Shared) -> String {
    let summary = shared.lock().sm.watch_summary();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        summary.sessions, summary.paths, summary.watches
    )
}

/// `wchc`: each watching session, then its paths indented by a tab.
fn watches_by_session(shared: &Shared) -> String {
    let listing = shared.lock().sm.watches_by_session();
    let mut text = String::new();
    for (session_id, paths) in listing {
        let _ = writeln!(text, "0x{session_id:x}");
        for path in paths {
            let _ = writeln!(text, "\t{path}");
        }
    }
    text.push('\n');
    text
}

/// `wchp`: each watched path, then its sessions indented by a tab.
fn watches_by_path(shared: &Shared) -> String {
    let listing = shared.lock().sm.watches_by_path();
    let mut text = String::new();
    for (path, sessions) in listing {
        let _ = writeln!(text, "{path}");
        for session_id in sessions {
            let _ = writeln!(text, "\t0x{session_id:x}");
        }
    }
    text.push('\n');
    text
}

/// `hash`: `<last zxid, hex>: <digest>` of the whole tree (paths, data, Stat). ZooKeeper prints
/// a digest history; rzk keeps none, so there is one line, for comparing members or restarts.
fn tree_digest(shared: &Shared) -> String {
    let core = shared.lock();
    format!("{:x}: {}\n", core.sm.last_zxid(), core.sm.digest())
}

fn directories(shared: &Shared) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        directory_size(&shared.options.data_dir),
        directory_size(&shared.options.data_log_dir)
    )
}

/// `dump`: the session tracker, the ephemerals, and the connections with the time each would
/// expire, in ZooKeeper's layout. A standalone server prints its expiry buckets as ZooKeeper's
/// standalone does; an ensemble member lists every global session with its timeout, as
/// ZooKeeper's leader does.
fn dump(shared: &Shared) -> String {
    let standalone = shared.options.standalone;
    let (sessions, buckets, ephemerals) = {
        let core = shared.lock();
        // Each layout reads only what it prints.
        let sessions = if standalone {
            Vec::new()
        } else {
            core.sm.sessions()
        };
        let buckets = if standalone {
            core.expiry.buckets()
        } else {
            Vec::new()
        };
        (sessions, buckets, core.sm.ephemerals_by_session())
    };
    // Expiry deadlines are on the server's monotonic clock; print them as wall-clock dates.
    let (wall_now, monotonic_now) = (crate::wall_clock_ms(), shared.monotonic_ms());
    let date = |deadline: i64| crate::java_date::java_date(wall_now + (deadline - monotonic_now));
    let mut text = String::from("SessionTracker dump:\n");
    if standalone {
        let tracked: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
        let _ = writeln!(text, "Session Sets ({})/({tracked}):", buckets.len());
        for (deadline, ids) in &buckets {
            let _ = writeln!(text, "{} expire at {}:", ids.len(), date(*deadline));
            for session_id in ids {
                let _ = writeln!(text, "\t0x{session_id:x}");
            }
        }
    } else {
        let _ = writeln!(text, "Global Sessions({}):", sessions.len());
        for (session_id, timeout_ms) in sessions {
            let _ = writeln!(text, "0x{session_id:x}\t{timeout_ms}ms");
        }
    }
    let _ = writeln!(
        text,
        "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
        ephemerals.len()
    );
    for (session_id, paths) in ephemerals {
        let _ = writeln!(text, "0x{session_id:x}:");
        for path in paths {
            let _ = writeln!(text, "\t{path}");
        }
    }
    // A connection expires with its session; one without a session yet is closed when the
    // handshake's time runs out (ZooKeeper's sessionlessCnxnTimeout).
    let mut connection_buckets: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    {
        // The listing first: it takes the connections' lock, which is not held with the core's.
        let listing = shared.connection_list();
        let core = shared.lock();
        let sessionless_ms = crate::connection::HANDSHAKE_READ_TIMEOUT.as_millis() as i64;
        for connection in listing {
            let session_id = connection.session_id.unwrap_or(0);
            let deadline = connection
                .session_id
                .and_then(|id| core.expiry.deadline(id))
                .unwrap_or_else(|| {
                    let since_start = connection.established_ms - (wall_now - monotonic_now);
                    core.expiry.bucket_after(since_start, sessionless_ms)
                });
            connection_buckets
                .entry(deadline)
                .or_default()
                .push(format!(
                    "ip: /{} sessionId: 0x{session_id:x}",
                    connection.peer
                ));
        }
    }
    let connections: usize = connection_buckets.values().map(Vec::len).sum();
    let _ = writeln!(
        text,
        "Connections dump:\nConnections Sets ({})/({connections}):",
        connection_buckets.len()
    );
    for (deadline, lines) in connection_buckets {
        let _ = writeln!(text, "{} expire at {}:", lines.len(), date(deadline));
        for line in lines {
            let _ = writeln!(text, "\t{line}");
        }
    }
    text
}
