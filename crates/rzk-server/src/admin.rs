//! The AdminServer: ZooKeeper's HTTP command interface (`admin.enableServer`, on by default as in
//! ZooKeeper 3.5–3.9), plus rzk's readiness probe.
//!
//! - `GET <commandURL>` (default `/commands`) lists the commands as ZooKeeper's Jetty servlet
//!   does: HTML links, one per primary name. A client that sends `Accept: application/json`
//!   gets `{"commands": [...], "command": "commands", "error": null}` instead.
//! - `GET <commandURL>/<name>` runs a command by primary name or alias and answers JSON in the
//!   shape of ZooKeeper's `server/admin/Commands.java` (checked against ZooKeeper 3.8.0): every
//!   object has `"command"` (the primary name) and `"error"` (null, or a message). An unknown
//!   name answers 404 with `{"command": <name>, "error": "Unknown command: <name>"}` (ZooKeeper
//!   3.9; 3.8 used 200). A command that needs a serving server answers
//!   `"This ZooKeeper instance is not currently serving requests"` while this member has no quorum.
//! - `GET /ready` (rzk's own): 200 while this member serves clients with a quorum behind it
//!   (standalone: always once started; ensemble: leader or follower), else 503. `ruok` only says
//!   the process is alive, so a load balancer or Kubernetes readiness probe should use this.
//!
//! Differences from ZooKeeper a reader of the JSON may notice: `dump`'s
//! `expiry_time_to_session_ids` lists only the sessions this member tracks for expiry;
//! `outstanding_requests` per connection is 0; response sizes are -1 (not tracked);
//! `system_properties` lists rzk's process facts instead of a JVM's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::four_letter::version;
use crate::stats::{directory_size, max_file_descriptors, op_short_name, open_file_descriptors};
use crate::{ConnectionReport, FourLetterWhitelist, Shared};

/// `admin.commandURL`'s default.
pub const COMMAND_URL_DEFAULT: &str = "/commands";
/// `admin.serverPort`'s default.
pub const SERVER_PORT_DEFAULT: u16 = 8080;
/// The readiness probe's path (rzk's own, outside the command URL).
pub const READY_PATH: &str = "/ready";

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// What the admin server needs beyond [`Shared`]; the binary fills it from zoo.cfg.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// `admin.commandURL`, e.g. `/commands` (a leading `/`, no trailing one).
    pub command_url: String,
    /// The voting members as `voting_view` prints them, e.g. `2 → "10.0.0.2:2888:3888:participant"`
    /// (`host:quorumPort:electionPort:participant`, then `;clientHost:clientPort` when the
    /// server line names a client address). Empty when standalone.
    pub voting_members: BTreeMap<u64, String>,
    /// Extra entries for `system_properties`, e.g. the `zookeeper.*` properties ZooKeeper would
    /// derive from zoo.cfg keys it does not know.
    pub system_properties: BTreeMap<String, String>,
}

impl AdminOptions {
    pub fn new(command_url: impl Into<String>) -> AdminOptions {
        let mut command_url = command_url.into();
        while command_url.len() > 1 && command_url.ends_with('/') {
            command_url.pop();
        }
        AdminOptions {
            command_url,
            voting_members: BTreeMap::new(),
            system_properties: BTreeMap::new(),
        }
    }
}

impl Default for AdminOptions {
    fn default() -> AdminOptions {
        AdminOptions::new(COMMAND_URL_DEFAULT)
    }
}

/// One admin command: its names (the first is the primary one) and whether it needs a serving
/// server (ZooKeeper's `CommandBase.serverRequired`).
struct CommandSpec {
    names: &'static [&'static str],
    server_required: bool,
}

/// Every command rzk answers, in ZooKeeper's registration names.
const COMMANDS: &[CommandSpec] = &[
    spec(&["configuration", "conf", "config"], true),
    spec(&["connection_stat_reset", "crst"], true),
    spec(&["connections", "cons"], true),
    spec(&["dirs"], true),
    spec(&["dump"], true),
    spec(&["environment", "env", "envi"], false),
    spec(&["get_trace_mask", "gtmk"], false),
    spec(&["is_read_only", "isro"], true),
    spec(&["last_snapshot", "lsnp"], true),
    spec(&["leader", "lead"], true),
    spec(&["monitor", "mntr"], false),
    spec(&["observers", "obsr"], true),
    spec(&["ruok"], true),
    spec(&["server_stats", "srvr"], true),
    spec(&["stat_reset", "srst"], true),
    spec(&["stats", "stat"], true),
    spec(&["system_properties", "sysp"], false),
    spec(&["voting_view"], true),
    spec(&["watch_summary", "wchs"], true),
    spec(&["watches", "wchc"], true),
    spec(&["watches_by_path", "wchp"], true),
    spec(&["zabstate"], false),
];

const fn spec(names: &'static [&'static str], server_required: bool) -> CommandSpec {
    CommandSpec {
        names,
        server_required,
    }
}

fn find_command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|command| command.names.contains(&name))
}

#[derive(Clone)]
struct AdminState {
    shared: Arc<Shared>,
    options: Arc<AdminOptions>,
}

/// The admin routes, for [`serve`] or for embedding in another router.
pub fn router(shared: Arc<Shared>, options: AdminOptions) -> Router {
    let list_path = options.command_url.clone();
    let command_path = if list_path == "/" {
        "/{name}".to_string()
    } else {
        format!("{list_path}/{{name}}")
    };
    let state = AdminState {
        shared,
        options: Arc::new(options),
    };
    let mut router = Router::new().route(&command_path, get(run_command));
    if list_path != READY_PATH {
        router = router.route(READY_PATH, get(ready));
    }
    router
        .route(&list_path, get(list_commands))
        .with_state(state)
}

/// Serve the admin interface on `listener` until the task is aborted.
pub fn serve(shared: Arc<Shared>, listener: TcpListener, options: AdminOptions) -> JoinHandle<()> {
    let app = router(shared, options);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "admin server stopped");
        }
    })
}

/// Whether this member serves clients with a quorum behind it.
pub fn is_ready(shared: &Shared) -> bool {
    shared.serving()
}

async fn ready(State(state): State<AdminState>) -> Response {
    let mode = state.shared.mode();
    let ready = is_ready(&state.shared);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "mode": mode }))).into_response()
}

async fn list_commands(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let mut names: Vec<&str> = COMMANDS.iter().map(|command| command.names[0]).collect();
    names.sort_unstable();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        let body = json!({ "commands": names, "command": "commands", "error": null });
        return Json(body).into_response();
    }
    let base = &state.options.command_url;
    let base = base.strip_suffix('/').unwrap_or(base);
    let links: String = names
        .iter()
        .map(|name| format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n"))
        .collect();
    Html(links).into_response()
}

async fn run_command(State(state): State<AdminState>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(command) = find_command(&name) else {
        let body = json!({ "command": name, "error": format!("Unknown command: {name}") });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    let primary = command.names[0];
    let shared = &state.shared;
    let mut body = if command.server_required && !shared.serving() {
        let mut body = Map::new();
        body.insert("error".into(), NOT_SERVING.into());
        body
    } else {
        answer(shared, &state.options, primary)
    };
    body.insert("command".into(), primary.into());
    body.entry("error").or_insert(Value::Null);
    Json(Value::Object(body)).into_response()
}

/// The JSON fields of a command (without `command`/`error` unless the command sets `error`).
fn answer(shared: &Shared, options: &AdminOptions, primary: &str) -> Map<String, Value> {
    match primary {
        "configuration" => configuration(shared),
        "connections" => connections(shared),
        "dirs" => object(json!({
            "datadir_size": directory_size(&shared.options.data_dir),
            "logdir_size": directory_size(&shared.options.data_log_dir),
        })),
        "dump" => dump(shared),
        "environment" => environment(shared),
        "get_trace_mask" => object(json!({ "tracemask": 0 })),
        "is_read_only" => object(json!({ "read_only": false })),
        "last_snapshot" => last_snapshot(shared),
        "leader" => leader(shared, options),
        "monitor" => monitor(shared),
        "observers" => object(json!({ "synced_observers": 0, "observers": [] })),
        "server_stats" => server_stats(shared),
        "stat_reset" => {
            shared.stats.reset();
            Map::new()
        }
        "connection_stat_reset" => {
            shared.reset_connection_stats();
            Map::new()
        }
        "stats" => stats(shared),
        "system_properties" => system_properties(shared, options),
        "voting_view" => object(json!({ "current_config": options.voting_members })),
        "watch_summary" => watch_summary(shared),
        "watches" => watches_by_session(shared),
        "watches_by_path" => watches_by_path(shared),
        "zabstate" => zab_state(shared),
        // ruok answers with command and error only.
        _ => Map::new(),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json!({{...}}) is an object"),
    }
}

/// ZooKeeper's `ServerStats` object: latencies in ms, uptime in ms.
fn server_stats_object(shared: &Shared) -> Value {
    let stats = &shared.stats;
    let latency = stats.latency();
    let last_zxid = shared.lock().sm.last_zxid();
    json!({
        "packets_sent": stats.packets_sent.load(Ordering::Relaxed),
        "packets_received": stats.packets_received.load(Ordering::Relaxed),
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": client_response(),
        "data_dir_size": directory_size(&shared.options.data_dir),
        "log_dir_size": directory_size(&shared.options.data_log_dir),
        "provider_null": false,
        "server_state": shared.mode(),
        "last_processed_zxid": last_zxid,
        "outstanding_requests": stats.outstanding_requests.load(Ordering::Relaxed).max(0),
        "avg_latency": latency.avg_ms,
        "max_latency": latency.max_whole_ms(),
        "min_latency": latency.min_whole_ms(),
        "num_alive_client_connections": stats.alive_connections.load(Ordering::Relaxed),
        "auth_failed_count": 0,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
        "uptime": stats.started.elapsed().as_millis() as u64,
    })
}

/// Response sizes are not tracked: -1 is what ZooKeeper reports before its first response.
fn client_response() -> Value {
    json!({ "last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1 })
}

fn server_stats(shared: &Shared) -> Map<String, Value> {
    let node_count = shared.lock().sm.znode_count();
    object(json!({
        "version": version(),
        "read_only": false,
        "server_stats": server_stats_object(shared),
        "client_response": client_response(),
        "node_count": node_count,
    }))
}

fn stats(shared: &Shared) -> Map<String, Value> {
    let mut body = server_stats(shared);
    let connections: Vec<Value> = shared
        .connection_list()
        .into_iter()
        .map(|connection| connection_brief(&connection))
        .collect();
    body.insert("connections".into(), connections.into());
    body.insert("secure_connections".into(), json!([]));
    body
}

/// `ServerCnxn.getConnectionInfo(true)`.
fn connection_brief(connection: &ConnectionReport) -> Value {
    json!({
        "remote_socket_address": connection.peer.to_string(),
        "interest_ops": u8::from(connection.session_id.is_some()),
        "outstanding_requests": 0,
        "packets_received": connection.stats.received,
        "packets_sent": connection.stats.sent,
    })
}

/// `ServerCnxn.getConnectionInfo(false)`: the session fields once a session exists.
fn connection_full(connection: &ConnectionReport) -> Value {
    let mut info = object(connection_brief(connection));
    if let Some(session_id) = connection.session_id {
        let stats = &connection.stats;
        let details = json!({
            "session_id": session_id,
            "last_operation": stats.last_op.map_or("NA", op_short_name),
            "established": connection.established_ms,
            "session_timeout": stats.session_timeout_ms,
            "last_cxid": stats.last_cxid,
            "last_zxid": stats.last_zxid,
            "last_response_time": stats.last_response_ms,
            "last_latency": stats.latency_last_ms,
            "min_latency": stats.latency_min_ms,
            "avg_latency": stats.latency_avg_ms,
            "max_latency": stats.latency_max_ms,
        });
        info.extend(object(details));
    }
    Value::Object(info)
}

fn connections(shared: &Shared) -> Map<String, Value> {
    let connections: Vec<Value> = shared
        .connection_list()
        .iter()
        .map(connection_full)
        .collect();
    object(json!({ "connections": connections, "secure_connections": [] }))
}

/// `ZooKeeperServerConf.toMap`, plus the quorum settings (`initLimit` → `init_limit`).
fn configuration(shared: &Shared) -> Map<String, Value> {
    let options = &shared.options;
    let mut body = object(json!({
        "client_port": options.client_port,
        "data_dir": format!("{}/version-2", options.data_dir.display()),
        "data_log_dir": format!("{}/version-2", options.data_log_dir.display()),
        "tick_time": options.tick_ms,
        "max_client_cnxns": options.max_client_connections_per_ip,
        "min_session_timeout": options.min_session_timeout_ms,
        "max_session_timeout": options.max_session_timeout_ms,
        "server_id": options.reported_server_id(),
        "client_port_listen_backlog": -1,
    }));
    for (key, value) in &options.conf_lines {
        let value = value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| value.clone().into());
        body.insert(snake_case(key), value);
    }
    body
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn dump(shared: &Shared) -> Map<String, Value> {
    let (ephemerals, expiry) = {
        let core = shared.lock();
        (core.sm.ephemerals_by_session(), core.expiry.buckets())
    };
    // A JSON object keyed by the first of each pair, as ZooKeeper's maps print.
    fn keyed<K: ToString, V: Into<Value>>(pairs: Vec<(K, V)>) -> Map<String, Value> {
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.into()))
            .collect()
    }
    object(json!({
        // As ZooKeeper's `getSessionExpiryMap`: each bucket's deadline (on the server's
        // monotonic clock, as ZooKeeper's is on its elapsed-time clock) and its sessions.
        "expiry_time_to_session_ids": keyed(expiry),
        "session_id_to_ephemeral_paths": keyed(ephemerals),
    }))
}

/// `Environment.list()`, in its order: the Java entries become the process's own facts (the
/// `envi` four-letter word prints the same lines).
pub(crate) fn environment_lines(shared: &Shared) -> Vec<(&'static str, String)> {
    let proc_text = |path: &str| {
        std::fs::read_to_string(path)
            .map(|text| text.trim().to_string())
            .unwrap_or_default()
    };
    // Java's names for the architecture.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        other => other,
    };
    let directory = std::env::current_dir()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    vec![
        ("zookeeper.version", version()),
        ("host.name", proc_text("/proc/sys/kernel/hostname")),
        ("rzk.version", env!("CARGO_PKG_VERSION").to_string()),
        ("os.name", proc_text("/proc/sys/kernel/ostype")),
        ("os.arch", arch.to_string()),
        ("os.version", proc_text("/proc/sys/kernel/osrelease")),
        ("user.name", user_name()),
        ("user.home", std::env::var("HOME").unwrap_or_default()),
        ("user.dir", directory),
        ("server.id", shared.options.reported_server_id().to_string()),
    ]
}

/// The process's user, as Java's `user.name` (from the password database, not the
/// environment): `$USER` is often unset under service managers and in containers.
fn user_name() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:")
                    .and_then(|ids| ids.split_whitespace().next().map(str::to_string))
            })
        });
    let from_passwd = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| {
                passwd.lines().find_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    (fields.nth(1)? == uid).then(|| name.to_string())
                })
            })
    });
    from_passwd
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

fn environment_entries(shared: &Shared) -> BTreeMap<String, String> {
    environment_lines(shared)
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

fn environment(shared: &Shared) -> Map<String, Value> {
    environment_entries(shared)
        .into_iter()
        .map(|(key, value)| (key, Value::from(value)))
        .collect()
}

fn system_properties(shared: &Shared, options: &AdminOptions) -> Map<String, Value> {
    let mut properties = environment_entries(shared);
    properties.insert("file.separator".into(), "/".into());
    properties.insert("path.separator".into(), ":".into());
    properties.insert("line.separator".into(), "\n".into());
    properties.insert(
        "jute.maxbuffer".into(),
        shared.options.jute_max_buffer.to_string(),
    );
    let whitelist = match &shared.options.four_letter_words {
        FourLetterWhitelist::All => "*".to_string(),
        FourLetterWhitelist::Only(set) => set.iter().cloned().collect::<Vec<_>>().join(","),
    };
    properties.insert("zookeeper.4lw.commands.whitelist".into(), whitelist);
    properties.extend(options.system_properties.clone());
    properties
        .into_iter()
        .map(|(key, value)| (key, Value::from(value)))
        .collect()
}

/// `ZooKeeperServer.dumpMonitorValues` (the `mntr` keys, without the `zk_` prefix).
fn monitor(shared: &Shared) -> Map<String, Value> {
    let stats = &shared.stats;
    let latency = stats.latency();
    let counts = shared.lock().sm.counts();
    let mut body = object(json!({
        "version": version(),
        "server_state": shared.mode(),
        "avg_latency": latency.avg_ms,
        "max_latency": latency.max_whole_ms(),
        "min_latency": latency.min_whole_ms(),
        "packets_received": stats.packets_received.load(Ordering::Relaxed),
        "packets_sent": stats.packets_sent.load(Ordering::Relaxed),
        "num_alive_connections": stats.alive_connections.load(Ordering::Relaxed),
        "outstanding_requests": stats.outstanding_requests.load(Ordering::Relaxed).max(0),
        "znode_count": counts.znodes,
        "watch_count": counts.watches,
        "ephemerals_count": counts.ephemerals,
        "approximate_data_size": counts.approximate_data_size,
        "global_sessions": counts.sessions,
        "local_sessions": 0,
        "open_file_descriptor_count": open_file_descriptors(),
        "max_file_descriptor_count": max_file_descriptors(),
        "uptime": stats.started.elapsed().as_millis() as u64,
        "watches_refused": counts.watches_refused,
    }));
    if shared.mode() == "leader" {
        let status = shared.replica().status();
        body.insert("followers".into(), status.followers.into());
        body.insert("synced_followers".into(), status.synced_followers.into());
        body.insert("pending_syncs".into(), 0.into());
    }
    body
}

fn watch_summary(shared: &Shared) -> Map<String, Value> {
    let summary = shared.lock().sm.watch_summary();
    object(json!({
        "num_connections": summary.sessions,
        "num_paths": summary.paths,
        "num_total_watches": summary.watches,
    }))
}

/// `wchc`: session id → watched paths.
fn watches_by_session(shared: &Shared) -> Map<String, Value> {
    let listing: Map<String, Value> = shared
        .lock()
        .sm
        .watches_by_session()
        .into_iter()
        .map(|(session_id, paths)| (session_id.to_string(), json!(paths)))
        .collect();
    object(json!({ "session_id_to_watched_paths": listing }))
}

/// `wchp`: path → watching session ids.
fn watches_by_path(shared: &Shared) -> Map<String, Value> {
    let listing: Map<String, Value> = shared
        .lock()
        .sm
        .watches_by_path()
        .into_iter()
        .map(|(path, sessions)| (path, json!(sessions)))
        .collect();
    object(json!({ "path_to_session_ids": listing }))
}

/// `snapshot.<hex>` files in `<dataDir>/version-2`: the newest one's number and mtime (seconds),
/// or ZooKeeper's "none" answer (`ffffffffffffffff`, -1).
fn last_snapshot(shared: &Shared) -> Map<String, Value> {
    let newest = std::fs::read_dir(shared.options.data_dir.join("version-2"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = u64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            let seconds = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map(|age| age.as_secs() as i64)
                .unwrap_or(0);
            Some((number, seconds))
        })
        .max();
    let (zxid, timestamp) = match newest {
        Some((number, seconds)) => (format!("{number:x}"), seconds),
        None => (format!("{:x}", -1i64), -1),
    };
    object(json!({ "zxid": zxid, "timestamp": timestamp }))
}

/// `leader`: ZooKeeper answers "server is not initialized" when standalone, and leader id -1
/// while it knows no leader.
fn leader(shared: &Shared, options: &AdminOptions) -> Map<String, Value> {
    if shared.options.standalone {
        return object(json!({ "error": "server is not initialized" }));
    }
    let status = shared.replica().status();
    let leader_ip = status
        .leader_id
        .and_then(|id| options.voting_members.get(&id))
        .map(|member| member_host(member))
        .unwrap_or_default();
    object(json!({
        "is_leader": shared.mode() == "leader",
        "leader_id": status.leader_id.map_or(-1, |id| id as i64),
        "leader_ip": leader_ip,
    }))
}

/// The host of a `voting_view` entry (`host:quorum:election:type`, IPv6 hosts bracketed).
fn member_host(member: &str) -> String {
    match member.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default().to_string(),
        None => member.split(':').next().unwrap_or_default().to_string(),
    }
}

fn zab_state(shared: &Shared) -> Map<String, Value> {
    if shared.options.standalone {
        return object(json!({ "voting": false, "zabstate": "" }));
    }
    let state = match shared.mode() {
        "leader" | "follower" => "broadcast",
        _ => "election",
    };
    object(json!({ "voting": true, "zabstate": state }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_primary_names_match_zookeeper_aliases() {
        let mut seen = std::collections::BTreeSet::new();
        for command in COMMANDS {
            for name in command.names {
                assert!(seen.insert(*name), "{name} registered twice");
            }
        }
        assert_eq!(
            find_command("srvr").map(|c| c.names[0]),
            Some("server_stats")
        );
        assert_eq!(
            find_command("envi").map(|c| c.names[0]),
            Some("environment")
        );
        assert!(find_command("bogus").is_none());
    }

    #[test]
    fn quorum_keys_become_snake_case() {
        assert_eq!(snake_case("initLimit"), "init_limit");
        assert_eq!(snake_case("syncLimit"), "sync_limit");
    }

    #[test]
    fn member_hosts() {
        assert_eq!(member_host("10.0.0.2:2888:3888:participant"), "10.0.0.2");
        assert_eq!(member_host("[::1]:2888:3888:participant"), "::1");
    }

    #[test]
    fn command_url_loses_its_trailing_slash() {
        assert_eq!(AdminOptions::new("/cmd/").command_url, "/cmd");
        assert_eq!(AdminOptions::new("/").command_url, "/");
    }
}
