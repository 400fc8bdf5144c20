//! The AdminServer and the Prometheus endpoint through the real binary: `rzk server zoo.cfg` with
//! `admin.serverPort`, `admin.commandURL` and `metricsProvider.httpPort` on free ports, read over
//! real sockets (a plain HTTP/1.1 GET); then a 3-member ensemble whose members agree through
//! `/commands/leader` and `/commands/voting_view`, are all `/ready`, and a lone survivor that is not.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value as Metric};
use serde_json::Value;
use support::ensemble::{mode, wait_for_leader};
use support::{free_port, RzkServer};
use zookeeper_client::{Acls, Client, CreateMode};

/// Bound of one HTTP exchange (connect, request, whole response).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of every wait for the ensemble to reach a state.
const WAIT: Duration = Duration::from_secs(30);
/// Interval between two looks while waiting.
const POLL: Duration = Duration::from_millis(50);
/// Largest response read (the command list and /metrics are a few KiB).
const RESPONSE_BYTES_MAX: u64 = 1 << 20;

const PROMETHEUS: &str =
    "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

struct Response {
    status: u16,
    content_type: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// `GET path` on 127.0.0.1:`port` with `Connection: close`; `Err` names what failed.
fn try_get(port: u16, path: &str, accept: &str) -> Result<Response, String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, HTTP_TIMEOUT)
        .map_err(|error| format!("connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HTTP_TIMEOUT)))
        .map_err(|error| error.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("send GET {path}: {error}"))?;
    let mut raw = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX)
        .read_to_end(&mut raw)
        .map_err(|error| format!("read the answer to GET {path}: {error}"))?;
    let text = String::from_utf8(raw).map_err(|error| format!("GET {path}: {error}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no end of headers in {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line in {head:?}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("GET {path}: no Content-Length in {head:?}"))?;
    if body.len() != length {
        return Err(format!(
            "GET {path}: {} body bytes, Content-Length {length}",
            body.len()
        ));
    }
    Ok(Response {
        status,
        content_type: header("content-type").unwrap_or_default(),
        body: body.to_string(),
    })
}

fn get(port: u16, path: &str) -> Response {
    try_get(port, path, "*/*").unwrap_or_else(|error| panic!("{error}"))
}

/// Polls `check` until it returns `Some`; panics naming `what` and the last state after [`WAIT`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}; last: {last}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

fn scrape(port: u16) -> Scrape {
    let response = get(port, "/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response
            .content_type
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        response.content_type
    );
    Scrape::parse(response.body.lines().map(|line| Ok(line.to_string()))).expect("parse /metrics")
}

/// A counter, gauge or untyped sample's value.
fn metric(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|sample| {
        let matches = sample.metric == name
            && labels
                .iter()
                .all(|(key, value)| sample.labels.get(key) == Some(*value));
        match sample.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) if matches => Some(v),
            _ => None,
        }
    })
}

/// Goal: the binary serves ZooKeeper's admin commands under the configured URL, the readiness
/// probe and Prometheus metrics on the configured ports. Method: `rzk server` with all three set,
/// a real client's writes, then GETs over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_metrics_through_the_binary() {
    let (admin_port, metrics_port) = (free_port(), free_port());
    let admin_port_line = format!("admin.serverPort={admin_port}");
    let metrics_port_line = format!("metricsProvider.httpPort={metrics_port}");
    let server = RzkServer::start(&[
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        &admin_port_line,
        "admin.commandURL=/zk/commands",
        PROMETHEUS,
        "metricsProvider.httpHost=127.0.0.1",
        &metrics_port_line,
    ]);
    let client = tokio::time::timeout(WAIT, Client::connect(&server.connect_string()))
        .await
        .expect("a session within the bound")
        .expect("a session");
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for i in 0..3 {
        client
            .create(&format!("/admin{i}"), b"x", &persistent)
            .await
            .expect("create");
    }

    let list = get(admin_port, "/zk/commands");
    assert_eq!(list.status, 200);
    assert!(
        list.content_type.starts_with("text/html"),
        "{}",
        list.content_type
    );
    for name in ["server_stats", "leader", "voting_view", "monitor"] {
        assert!(
            list.body
                .contains(&format!("<a href=\"/zk/commands/{name}\">{name}</a>")),
            "{name} not listed: {}",
            list.body
        );
    }
    let listed = try_get(admin_port, "/zk/commands", "application/json")
        .unwrap()
        .json();
    assert!(listed["commands"]
        .as_array()
        .is_some_and(|names| names.iter().any(|n| n == "server_stats")));
    assert_eq!(
        get(admin_port, "/commands/srvr").status,
        404,
        "the default URL"
    );

    let srvr = get(admin_port, "/zk/commands/srvr");
    assert_eq!(srvr.status, 200);
    assert!(srvr.content_type.starts_with("application/json"));
    let srvr = srvr.json();
    assert_eq!(srvr["command"], "server_stats");
    assert_eq!(srvr["error"], Value::Null);
    assert_eq!(srvr["server_stats"]["server_state"], "standalone");
    assert!(srvr["version"].as_str().is_some_and(|v| !v.is_empty()));
    // /, /zookeeper, /zookeeper/config and friends, plus the three created here.
    assert!(
        srvr["node_count"].as_u64().is_some_and(|n| n >= 5),
        "{srvr}"
    );
    assert_eq!(
        srvr["server_stats"]["num_alive_client_connections"], 1,
        "{srvr}"
    );

    let ready = get(admin_port, "/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["mode"], "standalone");

    let scraped = scrape(metrics_port);
    let znodes = metric(&scraped, "znode_count", &[]).expect("znode_count");
    assert_eq!(Some(znodes), srvr["node_count"].as_f64());
    assert_eq!(
        metric(&scraped, "rzk_server_state", &[("state", "standalone")]),
        Some(1.0)
    );
    let creates: f64 = ["create", "create2"]
        .iter()
        .filter_map(|op| metric(&scraped, "rzk_requests_total", &[("op", op)]))
        .sum();
    assert_eq!(creates, 3.0);
    let fsyncs = metric(&scraped, "rzk_fsync_duration_seconds_count", &[]);
    assert!(fsyncs.is_some_and(|n| n >= 1.0), "{fsyncs:?}");
    assert!(scraped.samples.iter().any(|sample| {
        sample.metric == "rzk_fsync_duration_seconds"
            && matches!(&sample.value, Metric::Histogram(buckets) if !buckets.is_empty())
    }));
    assert_eq!(
        get(metrics_port, "/zk/commands/srvr").status,
        404,
        "the metrics port serves only /metrics"
    );
}

/// The admin port of each member, by position.
type AdminPorts = Vec<u16>;

/// A 3-member ensemble started by the harness, then each member restarted in turn with the
/// AdminServer on a free port of its own (the harness writes the same extra lines for every
/// member). Waits for one leader after each restart.
fn ensemble_with_admin() -> (Vec<RzkServer>, AdminPorts) {
    let mut servers = RzkServer::start_ensemble(3, &[]);
    let mut ports = Vec::new();
    for index in 0..servers.len() {
        let port = free_port();
        let member = &mut servers[index];
        member.stop();
        let mut config = std::fs::read_to_string(member.config_path()).expect("zoo.cfg");
        config.push_str(&format!(
            "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n"
        ));
        std::fs::write(member.config_path(), config).expect("write zoo.cfg");
        member.start_again();
        ports.push(port);
        wait_for_leader(&servers, &[0, 1, 2], WAIT);
    }
    (servers, ports)
}

/// Each member's `/commands/leader` answer, as (is_leader, leader_id, leader_ip).
fn leader_views(ports: &[u16]) -> Result<Vec<(bool, i64, String)>, String> {
    ports
        .iter()
        .map(|&port| {
            let answer = try_get(port, "/commands/leader", "*/*")?.json();
            match (answer["is_leader"].as_bool(), answer["leader_id"].as_i64()) {
                (Some(is_leader), Some(id)) => Ok((
                    is_leader,
                    id,
                    answer["leader_ip"].as_str().unwrap_or_default().to_string(),
                )),
                _ => Err(format!("port {port}: {answer}")),
            }
        })
        .collect()
}

/// Goal: in an ensemble the admin commands agree (exactly one leader, the same leader id and
/// voting view everywhere), /ready is 200 on every member, and 503 on a member left without a
/// quorum. Method: three `rzk server` processes with the AdminServer each on its own port; poll
/// (bounded) until the views agree; stop two members and poll the survivor.
#[test]
fn ensemble_members_agree_through_the_admin_server() {
    let (mut servers, ports) = ensemble_with_admin();

    let views = wait_for("one leader that every member names", || {
        let views = leader_views(&ports)?;
        let leaders: Vec<usize> = (0..views.len()).filter(|&i| views[i].0).collect();
        let named: Vec<i64> = views.iter().map(|view| view.1).collect();
        match leaders.as_slice() {
            [leader] if named.iter().all(|&id| id == *leader as i64 + 1) => Ok(views),
            _ => Err(format!("{views:?}")),
        }
    });
    assert!(views.iter().all(|view| view.2 == "127.0.0.1"), "{views:?}");
    let leader = views.iter().position(|view| view.0).unwrap();
    assert_eq!(mode(&servers[leader]).as_deref(), Some("leader"));

    let voting: Vec<BTreeMap<String, String>> = ports
        .iter()
        .map(|&port| {
            let answer = get(port, "/commands/voting_view").json();
            assert_eq!(answer["command"], "voting_view");
            serde_json::from_value(answer["current_config"].clone())
                .unwrap_or_else(|error| panic!("current_config ({error}): {answer}"))
        })
        .collect();
    assert_eq!(voting[0].len(), 3, "{:?}", voting[0]);
    assert!(voting.iter().all(|view| *view == voting[0]), "{voting:?}");
    for id in ["1", "2", "3"] {
        let member = &voting[0][id];
        assert!(
            member.starts_with("127.0.0.1:") && member.ends_with(":participant"),
            "{id}: {member}"
        );
    }

    for (index, &port) in ports.iter().enumerate() {
        let ready = get(port, "/ready");
        assert_eq!(ready.status, 200, "member {}: {}", index + 1, ready.body);
        let expected = if index == leader {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(ready.json()["mode"], expected, "member {}", index + 1);
    }

    // Stop both followers: the leader alone has no quorum and must stop saying it is ready.
    for (index, server) in servers.iter_mut().enumerate() {
        if index != leader {
            server.stop();
        }
    }
    let survivor = ports[leader];
    let body = wait_for("503 from /ready on the lone survivor", || {
        let ready = try_get(survivor, "/ready", "*/*")?;
        if ready.status == 503 {
            Ok(ready.json())
        } else {
            Err(format!("{} {}", ready.status, ready.body))
        }
    });
    assert_eq!(body["ready"], false);
    assert_eq!(body["mode"], "looking");
    let srvr = get(survivor, "/commands/srvr").json();
    assert_eq!(
        srvr["error"], "This ZooKeeper instance is not currently serving requests",
        "{srvr}"
    );
}
