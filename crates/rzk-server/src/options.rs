//! What the server needs to know, already validated (the binary maps `zoo.cfg` onto it).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// `4lw.commands.whitelist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    All,
    Only(BTreeSet<String>),
}

impl FourLetterWhitelist {
    pub fn allows(&self, command: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(set) => set.contains(command),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `myid` (1 standalone).
    pub server_id: u64,
    /// True when zoo.cfg has no server lines: `srvr` says `Mode: standalone`.
    pub standalone: bool,
    pub tick_ms: u32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `maxClientCnxns`: connections per client IP; 0 = unlimited.
    pub max_client_connections_per_ip: u32,
    pub four_letter_words: FourLetterWhitelist,
    /// `jute.maxbuffer`: the largest packet accepted.
    pub jute_max_buffer: u32,
    pub state_machine: rzk_state_machine::Options,
    /// `znode.container.checkIntervalMs`: how often the leader looks for containers/TTL nodes to delete.
    pub container_check_interval_ms: u64,
    /// For `conf`, `dirs` and `envi`.
    pub client_port: u16,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub conf_lines: Vec<(String, String)>,
    /// Prometheus metrics are served (`metricsProvider.className`): they are recorded from the
    /// first client, before the metrics endpoint is listening.
    pub metrics: bool,
}

impl ServerOptions {
    /// The server id `conf` and the admin server report: 0 for a standalone server, as
    /// ZooKeeper's standalone server (which reads no myid) reports, else `myid`. rzk's
    /// standalone server is member 1 of a one-member group all the same.
    pub fn reported_server_id(&self) -> u64 {
        if self.standalone {
            0
        } else {
            self.server_id
        }
    }

    /// Defaults for tests and the embedded default: tickTime 2000, timeouts 4 s..40 s.
    pub fn for_tests() -> ServerOptions {
        ServerOptions {
            server_id: 1,
            standalone: true,
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            max_client_connections_per_ip: 0,
            four_letter_words: FourLetterWhitelist::All,
            jute_max_buffer: rzk_proto::frame::JUTE_MAXBUFFER_DEFAULT,
            state_machine: rzk_state_machine::Options::default(),
            container_check_interval_ms: 60_000,
            client_port: 0,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            conf_lines: Vec::new(),
            metrics: false,
        }
    }

    /// Clamp a requested session timeout to [min, max] (ZooKeeper's negotiation).
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }
}
