//! `rzk server [zoo.cfg]`: map a ZooKeeper configuration onto the server and replica, run
//! until SIGTERM/SIGINT, then shut down cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rzk_config::{Config, FourLetterWordWhitelist};
use rzk_replication::ReplicaConfig;
use rzk_server::{FourLetterWhitelist, Server, ServerOptions};

pub fn run(config_path: Option<PathBuf>) -> Result<(), String> {
    let config = match &config_path {
        Some(path) => {
            Config::from_file(path).map_err(|error| format!("{}: {error}", path.display()))?
        }
        None => Config::embedded_default(rzk_config::DEFAULT_EMBEDDED_DATA_DIR),
    };
    for dir in [&config.data_dir, &config.data_log_dir] {
        std::fs::create_dir_all(dir).map_err(|error| {
            format!("cannot create data directory {}: {error}; create it or point dataDir/dataLogDir elsewhere", dir.display())
        })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(serve(config))
}

fn server_options(config: &Config) -> ServerOptions {
    let four_letter_words = match &config.four_letter_words {
        FourLetterWordWhitelist::All => FourLetterWhitelist::All,
        FourLetterWordWhitelist::Only(set) => {
            FourLetterWhitelist::Only(set.iter().cloned().collect::<BTreeSet<_>>())
        }
    };
    let conf_lines = if config.is_standalone() {
        Vec::new()
    } else {
        vec![
            ("initLimit".to_string(), config.init_limit_ticks.to_string()),
            ("syncLimit".to_string(), config.sync_limit_ticks.to_string()),
        ]
    };
    ServerOptions {
        server_id: config.my_id.unwrap_or(1),
        standalone: config.is_standalone(),
        tick_ms: config.tick_time_ms,
        min_session_timeout_ms: i32::try_from(config.min_session_timeout_ms).unwrap_or(i32::MAX),
        max_session_timeout_ms: i32::try_from(config.max_session_timeout_ms).unwrap_or(i32::MAX),
        max_client_connections_per_ip: config.max_client_cnxns,
        four_letter_words,
        jute_max_buffer: config.jute_max_buffer_bytes,
        state_machine: rzk_state_machine::Options {
            extended_types_enabled: config.extended_types_enabled,
            super_digest: config.super_digest.clone(),
            skip_acl: config.skip_acl,
        },
        container_check_interval_ms: config
            .properties
            .get("znode.container.checkIntervalMs")
            .and_then(|value| value.parse().ok())
            .unwrap_or(60_000),
        client_port: config.client_port,
        data_dir: config.data_dir.clone(),
        data_log_dir: config.data_log_dir.clone(),
        conf_lines,
        metrics: config.metrics.prometheus_enabled(),
    }
}

fn replica_config(config: &Config) -> ReplicaConfig {
    let node_id = config.my_id.unwrap_or(1);
    let members: BTreeMap<u64, String> = if config.is_standalone() {
        BTreeMap::from([(node_id, "127.0.0.1:0".to_string())])
    } else {
        config
            .participants()
            .map(|spec| (spec.id, format!("{}:{}", spec.host, spec.quorum_port)))
            .collect()
    };
    ReplicaConfig {
        node_id,
        members,
        log_dir: Some(config.data_log_dir.clone()),
        snapshot_dir: Some(config.data_dir.clone()),
        force_sync: config.force_sync,
        log_segment_bytes: config.pre_alloc_size_bytes(),
        snap_count: config.snap_count,
        tick_ms: u64::from(config.tick_time_ms),
        init_limit: u64::from(config.init_limit_ticks),
        sync_limit: u64::from(config.sync_limit_ticks),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    // Before anything serves: a SIGTERM/SIGINT that comes while the server starts is held and
    // stops it cleanly once started, instead of killing the process (exit by signal, not 0).
    let mut stop = StopSignals::install()?;
    let address = config.client_bind_address();
    let listener = tokio::net::TcpListener::bind(&address).await.map_err(|error| {
        format!("cannot listen on {address}: {error}; is another ZooKeeper or rzk using clientPort {}?", config.client_port)
    })?;
    let server = Server::start(server_options(&config), replica_config(&config), listener)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(
        address = %server.local_addr(),
        data_dir = %config.data_dir.display(),
        mode = server.shared().mode(),
        "rzk serving"
    );
    let purge = autopurge(&config);
    let http = match http_servers(&config, server.shared()).await {
        Ok(http) => http,
        Err(error) => {
            server.shutdown().await;
            return Err(error);
        }
    };
    stop.wait().await;
    for task in purge.into_iter().chain(http) {
        task.abort();
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The AdminServer (`admin.enableServer`, default on) and Prometheus metrics (when
/// `metricsProvider.className` names the Prometheus provider). A port that cannot be bound stops
/// the server, as ZooKeeper exits when its AdminServer cannot start.
async fn http_servers(
    config: &Config,
    shared: &std::sync::Arc<rzk_server::Shared>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let mut tasks = Vec::new();
    if config.admin.enabled {
        let address = format!("{}:{}", config.admin.address, config.admin.port);
        let listener = tokio::net::TcpListener::bind(&address).await.map_err(|error| {
            format!("cannot start the admin server on {address}: {error}; set admin.serverPort to a free port, or admin.enableServer=false")
        })?;
        let mut options = rzk_server::admin::AdminOptions::new(config.admin.command_url.clone());
        options.voting_members = config
            .participants()
            .map(|spec| {
                let host = if spec.host.contains(':') {
                    format!("[{}]", spec.host)
                } else {
                    spec.host.clone()
                };
                (
                    spec.id,
                    format!(
                        "{host}:{}:{}:participant",
                        spec.quorum_port, spec.election_port
                    ),
                )
            })
            .collect();
        tracing::info!(%address, command_url = %config.admin.command_url, "admin server listening");
        tasks.push(rzk_server::admin::serve(shared.clone(), listener, options));
    }
    if config.metrics.prometheus_enabled() {
        let address = format!("{}:{}", config.metrics.http_host, config.metrics.http_port);
        let listener = tokio::net::TcpListener::bind(&address).await.map_err(|error| {
            format!("cannot serve metrics on {address}: {error}; set metricsProvider.httpPort to a free port")
        })?;
        tracing::info!(%address, "Prometheus metrics at /metrics");
        tasks.push(rzk_server::metrics::serve(shared.clone(), listener));
    }
    Ok(tasks)
}

/// SIGTERM and SIGINT, caught from the moment [`StopSignals::install`] returns.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let catch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|error| format!("cannot catch {name}: {error}"))
        };
        Ok(StopSignals {
            terminate: catch(SignalKind::terminate(), "SIGTERM")?,
            interrupt: catch(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// `autopurge.purgeInterval` (hours, 0 = off) and `autopurge.snapRetainCount`: purge old
/// snapshots and log segments in the background, as ZooKeeper's DatadirCleanupManager does.
fn autopurge(config: &Config) -> Option<tokio::task::JoinHandle<()>> {
    if config.autopurge_purge_interval_hours == 0 {
        return None;
    }
    let interval =
        std::time::Duration::from_secs(u64::from(config.autopurge_purge_interval_hours) * 3600);
    let keep = config.autopurge_snap_retain_count.max(3) as usize;
    let (log_dir, snap_dir) = (config.data_log_dir.clone(), config.data_dir.clone());
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let (log_dir, snap_dir) = (log_dir.clone(), snap_dir.clone());
            let result =
                tokio::task::spawn_blocking(move || rzk_storage::purge(&log_dir, &snap_dir, keep))
                    .await;
            match result {
                Ok(Ok(report)) => tracing::info!(
                    removed_snapshots = report.removed_snapshots.len(),
                    removed_logs = report.removed_logs.len(),
                    "autopurge done"
                ),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "autopurge failed; will try again next interval")
                }
                Err(error) => tracing::warn!(%error, "autopurge task failed"),
            }
        }
    }))
}
