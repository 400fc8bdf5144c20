//! The AdminServer (`/commands/<name>`, `/ready`) and the Prometheus endpoint (`/metrics`) over
//! real sockets: an in-process server, port-0 listeners, a hand-rolled HTTP/1.1 GET, and a real
//! ZooKeeper client making the numbers move. JSON shapes follow ZooKeeper 3.8.0's AdminServer
//! (captured from a running ZooKeeper); the exposition is read with the third-party
//! `prometheus-parse` crate, after checking that it understood every line.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use prometheus_parse::{LineInfo, Scrape, Value as Metric};
use rzk_server::admin::{self, AdminOptions};
use rzk_server::{metrics, Server, ServerOptions};
use serde_json::Value;
use support::{connect, start_with, within, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zookeeper_client::{Acls, CreateMode};

// --- A minimal HTTP/1.1 client -------------------------------------------------------------

struct HttpResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl HttpResponse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }
}

async fn http_get(address: SocketAddr, path: &str, accept: &str) -> HttpResponse {
    within(&format!("GET {path}"), async {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        parse_response(&raw)
    })
    .await
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8(raw.to_vec()).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().and_then(|s| s.parse().ok()).expect("status");
    let headers: BTreeMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    if let Some(length) = headers.get("content-length") {
        assert_eq!(
            body.len(),
            length.parse::<usize>().unwrap(),
            "Content-Length"
        );
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

// --- /metrics, read with the prometheus-parse crate -------------------------------------------

/// Parses the exposition with `prometheus_parse`, after checking that the crate understood every
/// line (it skips what it cannot read): each is blank, `# HELP`/`# TYPE`, or a sample whose value
/// is a number, with no timestamp.
fn parse_exposition(text: &str) -> Scrape {
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Ignored => panic!("not Prometheus text format: {line:?}"),
            LineInfo::Sample {
                value, timestamp, ..
            } => {
                assert!(
                    matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok(),
                    "sample value of {line:?}"
                );
                assert_eq!(timestamp, None, "{line:?}");
            }
            _ => {}
        }
    }
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("parse /metrics")
}

fn has_labels(found: &prometheus_parse::Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    found.metric == name && labels.iter().all(|(k, v)| found.labels.get(k) == Some(*v))
}

/// A counter, gauge or untyped sample (histogram and summary `_sum`/`_count` are untyped here).
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|found| has_labels(found, name, labels))
        .find_map(|found| match found.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => Some(v),
            _ => None,
        })
}

/// The cumulative count of histogram `family`'s bucket `le`.
fn bucket(scrape: &Scrape, family: &str, labels: &[(&str, &str)], le: f64) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|found| has_labels(found, family, labels))
        .find_map(|found| match &found.value {
            Metric::Histogram(buckets) => {
                buckets.iter().find(|b| b.less_than == le).map(|b| b.count)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no bucket le={le} of histogram {family}{labels:?}"))
}

/// Whether summary `family` reports quantile `q`.
fn has_quantile(scrape: &Scrape, family: &str, q: f64) -> bool {
    scrape.samples.iter().any(|found| {
        found.metric == family
            && matches!(&found.value, Metric::Summary(qs) if qs.iter().any(|c| c.quantile == q))
    })
}

/// Creates by any of the create opcodes (clients pick create, create2 or createTTL).
fn creates(scrape: &Scrape) -> f64 {
    ["create", "create2", "createContainer", "createTTL"]
        .iter()
        .map(|op| value_of(scrape, "rzk_requests_total", &[("op", op)]))
        .sum()
}

fn value_of(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(scrape, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

// --- Servers -------------------------------------------------------------------------------

async fn port_zero() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

async fn with_admin(options: AdminOptions) -> (TestServer, SocketAddr, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server_options = ServerOptions::for_tests();
    server_options.data_dir = data.path().to_path_buf();
    server_options.data_log_dir = data.path().to_path_buf();
    let server = start_with(server_options, Some(data.path())).await;
    let listener = port_zero().await;
    let address = listener.local_addr().unwrap();
    admin::serve(server.server.shared().clone(), listener, options);
    (server, address, data)
}

async fn scrape(address: SocketAddr) -> Scrape {
    let response = http_get(address, "/metrics", "text/plain").await;
    assert_eq!(response.status, 200);
    assert!(response.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    parse_exposition(&response.body)
}

// --- Tests ---------------------------------------------------------------------------------

/// Goal: every command answers 200 with ZooKeeper's JSON envelope, under its primary name, by
/// every alias. Method: GET each name ZooKeeper registers for the commands rzk implements.
#[tokio::test]
async fn every_command_and_alias_answers_with_command_and_error() {
    let (_server, address, _data) = with_admin(AdminOptions::default()).await;
    let aliases: &[(&str, &[&str])] = &[
        ("ruok", &["ruok"]),
        ("server_stats", &["srvr", "server_stats"]),
        ("stats", &["stat", "stats"]),
        ("configuration", &["conf", "configuration", "config"]),
        ("connections", &["cons", "connections"]),
        ("monitor", &["mntr", "monitor"]),
        ("dump", &["dump"]),
        ("environment", &["envi", "environment", "env"]),
        ("watch_summary", &["wchs", "watch_summary"]),
        ("watches", &["wchc", "watches"]),
        ("watches_by_path", &["wchp", "watches_by_path"]),
        ("is_read_only", &["isro", "is_read_only"]),
        ("leader", &["lead", "leader"]),
        ("last_snapshot", &["lsnp", "last_snapshot"]),
        ("voting_view", &["voting_view"]),
        ("system_properties", &["sysp", "system_properties"]),
        ("dirs", &["dirs"]),
        ("zabstate", &["zabstate"]),
    ];
    for (primary, names) in aliases {
        for name in *names {
            let response = http_get(address, &format!("/commands/{name}"), "*/*").await;
            assert_eq!(response.status, 200, "{name}: {}", response.body);
            assert_eq!(response.headers["content-type"], "application/json");
            let body = response.json();
            assert_eq!(body["command"], *primary, "{name}: {body}");
            assert!(
                body.get("error").is_some(),
                "{name} has no error key: {body}"
            );
        }
    }
}

/// Goal: the command list looks like ZooKeeper's (HTML links by primary name), with JSON for
/// clients that ask for it; unknown commands are a 404 with ZooKeeper's error JSON.
#[tokio::test]
async fn command_list_and_unknown_command() {
    let (_server, address, _data) = with_admin(AdminOptions::default()).await;
    let html = http_get(address, "/commands", "*/*").await;
    assert_eq!(html.status, 200);
    assert!(html.headers["content-type"].starts_with("text/html"));
    assert!(html
        .body
        .contains("<a href=\"/commands/server_stats\">server_stats</a>\n<br/>\n"));
    assert!(
        !html.body.contains("\"/commands/srvr\""),
        "aliases are not listed"
    );

    let listed = http_get(address, "/commands", "application/json")
        .await
        .json();
    let names: BTreeSet<&str> = listed["commands"]
        .as_array()
        .expect("commands array")
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    for expected in ["ruok", "monitor", "stats", "watch_summary", "voting_view"] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }

    let unknown = http_get(address, "/commands/bogus", "*/*").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json(),
        serde_json::json!({"command": "bogus", "error": "Unknown command: bogus"})
    );
}

/// Goal: the numbers in srvr/mntr/cons/dump/wchs/conf reflect what a real client did.
/// Method: a client creates /java and an ephemeral and sets a watch; compare the JSON.
#[tokio::test]
async fn commands_report_the_servers_state() {
    let (server, address, data) = with_admin(AdminOptions::default()).await;
    let baseline = http_get(address, "/commands/mntr", "*/*").await.json()["znode_count"]
        .as_u64()
        .expect("znode_count");
    let client = connect(&server.address).await;
    client
        .create("/java", b"spring", &support::persistent())
        .await
        .expect("create /java");
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    client
        .create("/eph", b"", &ephemeral)
        .await
        .expect("create /eph");
    let (_, _, _watch) = client
        .get_and_watch_data("/java")
        .await
        .expect("watch /java");
    let session_id = client.session_id().0;

    let get = |name: &'static str| async move {
        http_get(address, &format!("/commands/{name}"), "*/*")
            .await
            .json()
    };
    let srvr = get("srvr").await;
    assert!(
        srvr["version"].as_str().unwrap().starts_with("3.9.0-rzk"),
        "{srvr}"
    );
    assert_eq!(srvr["read_only"], false);
    assert_eq!(srvr["server_stats"]["server_state"], "standalone");
    assert_eq!(srvr["server_stats"]["num_alive_client_connections"], 1);
    assert!(
        srvr["server_stats"]["last_processed_zxid"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(
        srvr["server_stats"]["packets_received"].as_u64().unwrap() >= 3,
        "{srvr}"
    );
    assert!(
        srvr["server_stats"]["log_dir_size"].as_u64().unwrap() > 0,
        "{srvr}"
    );
    assert_eq!(srvr["node_count"], baseline + 2, "/java and /eph: {srvr}");
    assert!(srvr["server_stats"]["avg_latency"].is_f64());
    assert_eq!(srvr["error"], Value::Null);

    let mntr = get("mntr").await;
    assert_eq!(mntr["znode_count"], baseline + 2);
    assert_eq!(mntr["ephemerals_count"], 1);
    assert_eq!(mntr["watch_count"], 1);
    assert_eq!(mntr["global_sessions"], 1);
    assert_eq!(mntr["server_state"], "standalone");

    let cons = get("cons").await;
    let connections = cons["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{cons}");
    assert_eq!(connections[0]["session_id"], session_id);
    assert!(connections[0]["session_timeout"].as_i64().unwrap() > 0);
    assert_eq!(connections[0]["last_operation"], "GETD", "{cons}");
    assert!(
        connections[0]["packets_received"].as_u64().unwrap() >= 3,
        "{cons}"
    );
    assert!(connections[0]["remote_socket_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(cons["secure_connections"], serde_json::json!([]));
    let received = connections[0]["packets_received"].as_u64().unwrap();

    // crst: every connection's counts start again (a ping may come in between).
    assert_eq!(get("crst").await["error"], Value::Null);
    let cons = get("cons").await;
    let reset = &cons["connections"][0];
    assert!(
        reset["packets_received"].as_u64().unwrap() < received.min(2),
        "{cons}"
    );
    assert!(
        ["NA", "PING"].contains(&reset["last_operation"].as_str().unwrap()),
        "{cons}"
    );

    let stat = get("stat").await;
    assert_eq!(stat["connections"].as_array().unwrap().len(), 1);
    assert_eq!(stat["server_stats"]["server_state"], "standalone");

    let dump = get("dump").await;
    assert_eq!(
        dump["session_id_to_ephemeral_paths"][session_id.to_string()],
        serde_json::json!(["/eph"])
    );
    // The session is in exactly one expiry bucket, keyed by its deadline.
    let buckets = dump["expiry_time_to_session_ids"]
        .as_object()
        .expect("expiry_time_to_session_ids is an object");
    let holding: Vec<&String> = buckets
        .iter()
        .filter(|(_, ids)| {
            ids.as_array()
                .is_some_and(|ids| ids.contains(&session_id.into()))
        })
        .map(|(deadline, _)| deadline)
        .collect();
    assert_eq!(holding.len(), 1, "{dump}");
    assert!(holding[0].parse::<i64>().is_ok(), "{dump}");

    let wchs = get("wchs").await;
    assert_eq!(
        (
            wchs["num_connections"].as_u64(),
            wchs["num_paths"].as_u64(),
            wchs["num_total_watches"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );

    let wchc = get("wchc").await;
    assert_eq!(
        wchc["session_id_to_watched_paths"],
        serde_json::json!({ session_id.to_string(): ["/java"] })
    );
    let wchp = get("wchp").await;
    assert_eq!(
        wchp["path_to_session_ids"],
        serde_json::json!({ "/java": [session_id] })
    );

    let conf = get("conf").await;
    assert_eq!(conf["tick_time"], 2000);
    assert_eq!(conf["min_session_timeout"], 4000);
    assert_eq!(
        conf["data_dir"],
        format!("{}/version-2", data.path().display())
    );

    let lead = get("leader").await;
    assert_eq!(lead["error"], "server is not initialized");
    assert_eq!(get("isro").await["read_only"], false);
    assert_eq!(
        get("voting_view").await["current_config"],
        serde_json::json!({})
    );
    let envi = get("envi").await;
    assert!(envi["zookeeper.version"]
        .as_str()
        .unwrap()
        .starts_with("3.9.0-rzk"));
    let lsnp = get("lsnp").await;
    assert!(
        lsnp["zxid"].is_string() && lsnp["timestamp"].is_i64(),
        "{lsnp}"
    );
    let ruok = get("ruok").await;
    assert_eq!(ruok, serde_json::json!({"command": "ruok", "error": null}));
}

/// Goal: admin.commandURL is honoured, and /ready answers 200 on a standalone server.
#[tokio::test]
async fn custom_command_url_and_readiness() {
    let (_server, address, _data) = with_admin(AdminOptions::new("/cmd/")).await;
    let ruok = http_get(address, "/cmd/ruok", "*/*").await;
    assert_eq!(ruok.status, 200);
    assert_eq!(ruok.json()["command"], "ruok");
    assert_eq!(http_get(address, "/commands/ruok", "*/*").await.status, 404);
    let ready = http_get(address, "/ready", "*/*").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json(),
        serde_json::json!({"ready": true, "mode": "standalone"})
    );
}

async fn start_member(members: BTreeMap<u64, String>, node_id: u64) -> Server {
    let mut replica = support::replica_config(None);
    replica.node_id = node_id;
    replica.members = members;
    replica.tick_ms = 100;
    let mut options = ServerOptions::for_tests();
    options.standalone = false;
    options.server_id = node_id;
    options.tick_ms = 100;
    Server::start(options, replica, port_zero().await)
        .await
        .expect("member starts")
}

/// Goal: /ready is 200 only while the member has a quorum, and then 503 while the process is
/// alive (the difference between "ready" and ruok's "alive"). Method: two members of a
/// three-member ensemble elect; the second runs on its own runtime, which is then dropped (as if
/// its process died); the survivor loses its quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_quorum() {
    let peers = vec![port_zero().await, port_zero().await, port_zero().await];
    let members: BTreeMap<u64, String> = peers
        .iter()
        .enumerate()
        .map(|(index, listener)| (index as u64 + 1, listener.local_addr().unwrap().to_string()))
        .collect();
    drop(peers);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let second_members = members.clone();
    let second = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(start_member(second_members, 2));
        let _ = stopped.recv();
        drop(server);
        runtime.shutdown_timeout(Duration::from_secs(1));
    });
    let survivor = within("two of three members elect", start_member(members, 1)).await;
    let listener = port_zero().await;
    let address = listener.local_addr().unwrap();
    admin::serve(survivor.shared().clone(), listener, AdminOptions::default());

    within("a serving role", async {
        while http_get(address, "/ready", "*/*").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let ready = http_get(address, "/ready", "*/*").await.json();
    assert!(
        ["leader", "follower"].contains(&ready["mode"].as_str().unwrap()),
        "{ready}"
    );

    stop.send(()).expect("second member's thread is waiting");
    tokio::task::spawn_blocking(move || second.join().expect("second member's thread"))
        .await
        .expect("join");
    within("the survivor to lose its quorum", async {
        while http_get(address, "/ready", "*/*").await.status != 503 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let ready = http_get(address, "/ready", "*/*").await.json();
    assert_eq!(
        ready,
        serde_json::json!({"ready": false, "mode": "looking"})
    );
    let srvr = http_get(address, "/commands/srvr", "*/*").await.json();
    assert_eq!(
        srvr["error"],
        "This ZooKeeper instance is not currently serving requests"
    );
    let mntr = http_get(address, "/commands/mntr", "*/*").await.json();
    assert_eq!(
        mntr["error"],
        Value::Null,
        "monitor does not need a serving server"
    );
    assert_eq!(mntr["server_state"], "looking");
    let zab = http_get(address, "/commands/zabstate", "*/*").await.json();
    assert_eq!(zab["zabstate"], "election");
}

/// Goal: with metrics configured, requests made before the metrics endpoint listens are counted
/// (the binary starts the endpoint after the client port). Method: a create before
/// `metrics::serve`, then a scrape; with the registry made only by `serve` it counted 0.
#[tokio::test]
async fn requests_before_the_metrics_endpoint_listens_are_counted() {
    let mut options = ServerOptions::for_tests();
    options.metrics = true;
    let server = start_with(options, None).await;
    let client = connect(&server.address).await;
    client
        .create("/early", b"x", &support::persistent())
        .await
        .expect("create");
    let listener = port_zero().await;
    let address = listener.local_addr().unwrap();
    metrics::serve(server.server.shared().clone(), listener);
    let scraped = scrape(address).await;
    assert_eq!(creates(&scraped), 1.0);
    assert_eq!(
        value_of(&scraped, "rzk_commit_latency_seconds_count", &[]),
        1.0,
        "the create's commit"
    );
}

/// Goal: /metrics is valid Prometheus text with ZooKeeper's gauge names, and the per-opcode
/// counters, latency histograms and gauges move after requests through a real client.
#[tokio::test]
async fn metrics_move_after_client_requests() {
    let server = start_with(ServerOptions::for_tests(), None).await;
    let listener = port_zero().await;
    let address = listener.local_addr().unwrap();
    metrics::serve(server.server.shared().clone(), listener);

    let before = scrape(address).await;
    let baseline = value_of(&before, "znode_count", &[]);
    assert!(baseline >= 2.0, "/ and /zookeeper at least");
    assert_eq!(
        value_of(&before, "rzk_server_state", &[("state", "standalone")]),
        1.0
    );
    assert_eq!(
        value_of(&before, "rzk_server_state", &[("state", "leader")]),
        0.0
    );
    assert_eq!(creates(&before), 0.0);
    for name in [
        "watch_count",
        "num_alive_connections",
        "outstanding_requests",
        "ephemerals_count",
        "approximate_data_size",
        "rzk_data_dir_bytes",
        "rzk_log_dir_bytes",
    ] {
        assert!(sample(&before, name, &[]).is_some(), "{name} missing");
    }

    let client = connect(&server.address).await;
    client
        .create("/java", b"spring", &support::persistent())
        .await
        .expect("create");
    for _ in 0..3 {
        client.get_data("/java").await.expect("getData");
    }
    let (_, _, _watch) = client.get_and_watch_data("/java").await.expect("watch");

    let after = scrape(address).await;
    assert_eq!(value_of(&after, "znode_count", &[]), baseline + 1.0);
    assert_eq!(value_of(&after, "num_alive_connections", &[]), 1.0);
    assert_eq!(value_of(&after, "watch_count", &[]), 1.0);
    assert_eq!(value_of(&after, "global_sessions", &[]), 1.0);
    assert_eq!(creates(&after), 1.0);
    assert_eq!(
        value_of(&after, "rzk_requests_total", &[("op", "getData")]),
        4.0
    );
    assert_eq!(
        value_of(
            &after,
            "rzk_request_latency_seconds_count",
            &[("op", "getData")]
        ),
        4.0
    );
    let inf = bucket(
        &after,
        "rzk_request_latency_seconds",
        &[("op", "getData")],
        f64::INFINITY,
    );
    assert_eq!(inf, 4.0);
    assert!(value_of(&after, "readlatency_count", &[]) >= 4.0);
    assert!(value_of(&after, "updatelatency_count", &[]) >= 1.0);
    assert!(has_quantile(&after, "readlatency", 0.99));
    assert!(value_of(&after, "packets_received", &[]) > value_of(&before, "packets_received", &[]));
    assert_eq!(
        value_of(&before, "rzk_commit_latency_seconds_count", &[]),
        0.0
    );
    assert_eq!(
        value_of(&after, "rzk_commit_latency_seconds_count", &[]),
        1.0,
        "the create went through the log"
    );
}

/// Goal: two servers in one process keep separate registries. Method: requests on one server
/// leave the other's per-opcode counters at zero.
#[tokio::test]
async fn metrics_registries_are_per_server() {
    let first = start_with(ServerOptions::for_tests(), None).await;
    let second = start_with(ServerOptions::for_tests(), None).await;
    let (first_listener, second_listener) = (port_zero().await, port_zero().await);
    let (first_metrics, second_metrics) = (
        first_listener.local_addr().unwrap(),
        second_listener.local_addr().unwrap(),
    );
    metrics::serve(first.server.shared().clone(), first_listener);
    metrics::serve(second.server.shared().clone(), second_listener);
    let client = connect(&first.address).await;
    client
        .create("/only-here", b"", &support::persistent())
        .await
        .expect("create");
    // The count is recorded as the reply is written: poll (bounded) until the scrape shows it.
    let first_samples = within("the create counted on the first server", async {
        loop {
            let samples = scrape(first_metrics).await;
            if creates(&samples) >= 1.0 {
                break samples;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let second_samples = scrape(second_metrics).await;
    assert_eq!(creates(&first_samples), 1.0);
    assert_eq!(creates(&second_samples), 0.0);
    assert_eq!(
        value_of(&second_samples, "znode_count", &[]) + 1.0,
        value_of(&first_samples, "znode_count", &[])
    );
}

/// Goal: the log's fsync figures reach /metrics as a Prometheus histogram. Method: a server on a
/// real on-disk log takes writes; the histogram's count, sum and +Inf bucket move together, its
/// buckets are cumulative, the max gauge is within the bucket bounds, and the follower-lag gauge
/// exists (0 standalone).
#[tokio::test]
async fn metrics_report_log_fsyncs_as_a_histogram() {
    const FSYNC: &str = "rzk_fsync_duration_seconds";
    let dir = tempfile::tempdir().expect("temporary data dir");
    let server = start_with(ServerOptions::for_tests(), Some(dir.path())).await;
    let listener = port_zero().await;
    let address = listener.local_addr().unwrap();
    metrics::serve(server.server.shared().clone(), listener);
    let before = scrape(address).await;
    let count_before = value_of(&before, &format!("{FSYNC}_count"), &[]);
    let client = connect(&server.address).await;
    for i in 0..5 {
        client
            .create(&format!("/synced{i}"), b"x", &support::persistent())
            .await
            .expect("create");
    }
    let after = scrape(address).await;
    let count = value_of(&after, &format!("{FSYNC}_count"), &[]);
    assert!(
        count > count_before,
        "writes sync the log ({count_before} -> {count})"
    );
    assert_eq!(bucket(&after, FSYNC, &[], f64::INFINITY), count);
    assert!(value_of(&after, &format!("{FSYNC}_sum"), &[]) > 0.0);
    let buckets = after
        .samples
        .iter()
        .find_map(|found| match &found.value {
            Metric::Histogram(buckets) if found.metric == FSYNC => Some(buckets.clone()),
            _ => None,
        })
        .expect("the fsync histogram");
    assert!(buckets.len() >= 2, "{buckets:?}");
    for pair in buckets.windows(2) {
        assert!(pair[0].less_than < pair[1].less_than, "{buckets:?}");
        assert!(
            pair[0].count <= pair[1].count,
            "not cumulative: {buckets:?}"
        );
    }
    // The longest call lies in the first bucket whose count reaches the total.
    let max = value_of(&after, "rzk_fsync_seconds_max", &[]);
    assert!(max > 0.0);
    let first_full = buckets.iter().find(|b| b.count == count).unwrap();
    assert!(
        max <= first_full.less_than,
        "max {max} above {first_full:?}"
    );
    assert_eq!(value_of(&after, "rzk_follower_lag_entries_max", &[]), 0.0);
}
