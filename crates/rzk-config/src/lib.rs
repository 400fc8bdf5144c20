//! # rzk-config: zoo.cfg and myid
//!
//! Reads an unmodified Apache ZooKeeper `zoo.cfg` into one typed [`Config`], following ZooKeeper's
//! `QuorumPeerConfig`: the same keys, defaults, required settings and ensemble rules, so an operator can point
//! rzk at the file their ZooKeeper used.
//!
//! Owns the configuration: the properties text format, every key's meaning, default and validation, the
//! standalone-or-ensemble decision, `server.N` lines, the `dynamicConfigFile` and `dataDir/myid`, and the
//! no-file default of `rzk server` ([`Config::embedded_default`]). It only reads those files and returns
//! values (or a [`ConfigError`] that names the key and the fix). Must not touch anything else: no writes,
//! no directories created, no sockets, no tokio, no other rzk crate; what a setting does at run time belongs
//! to the crate that uses it (rzk-server, rzk-replication, rzk-storage, wired up by the `rzk` binary).
//!
//! # Layout
//! - `properties`: the Java properties text format (`key=value`, `key: value`, comments, continuations, escapes).
//! - [`server`]: `server.N` lines ([`ServerSpec`]).
//! - [`error`]: [`ConfigError`]; every message names the key, the bad value and the fix.
//! - this file: [`Config`], key dispatch, defaults, cross-checks and the `myid` file.
//!
//! # Rules worth knowing
//! - **Repeated keys:** the last one wins (as with `java.util.Properties`), with a warning. A repeated *server id*
//!   is an error, since one of the two lines is certainly wrong.
//! - **Relative paths** (`dataDir`, `dataLogDir`, `dynamicConfigFile`) are resolved against the *current directory
//!   of the process*, not the config file's directory: that is what ZooKeeper does (a Java `File` resolves against
//!   `user.dir`). [`Config::from_file`] uses the process's current directory; [`Config::parse`] takes it
//!   explicitly. A relative path that does not start with `.` gets the warning ZooKeeper prints.
//! - **System-property keys.** ZooKeeper turns any zoo.cfg key it does not know into the system property
//!   `zookeeper.<key>`, so `skipACL=yes` in zoo.cfg works there. rzk accepts such keys both bare and with the
//!   `zookeeper.` prefix (`extendedTypesEnabled` or `zookeeper.extendedTypesEnabled`), and also takes
//!   `jute.maxbuffer` from zoo.cfg (ZooKeeper only reads it as a JVM flag).
//! - **Unknown keys** are not errors: each gives a warning (logged with `tracing::warn!` and kept in
//!   [`Config::warnings`]). ZooKeeper settings that rzk does not implement are reported the same way, with
//!   different wording.
//! - **Standalone or ensemble** is decided as in ZooKeeper: no `server.N` lines, or exactly one participant while
//!   `standaloneEnabled=true` (the default), means standalone. An ensemble needs `initLimit`, `syncLimit` and the
//!   file `dataDir/myid`, whose number must match one `server.N` line.
//! - **Booleans** accept `true/false/yes/no` in any case; anything else is an error rather than a silent `false`.

pub mod error;
mod properties;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use server::{PeerRole, ServerSpec};

/// The four-letter words rzk knows (ZooKeeper 3.8's set).
pub const FOUR_LETTER_WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
];

/// rzk's default 4lw whitelist. ZooKeeper allows only `srvr`; rzk adds `ruok` and `mntr` because that is what
/// users' health checks and monitoring call (ZooKeeper's whitelist broke them, see ZK-COMPAT.md §2.10). All three
/// are read-only and cheap.
pub const DEFAULT_FOUR_LETTER_WORDS: &str = "srvr, ruok, mntr";

/// Default `jute.maxbuffer`: 0xfffff bytes, one byte short of 1 MiB, as in ZooKeeper.
pub const DEFAULT_JUTE_MAX_BUFFER_BYTES: u32 = 0xfffff;

/// `autopurge.snapRetainCount` below this is raised to it (ZooKeeper's `MIN_SNAP_RETAIN_COUNT`).
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;

/// The data directory of [`Config::embedded_default`] when the caller has no better idea.
pub const DEFAULT_EMBEDDED_DATA_DIR: &str = "./rzk-data";

/// Which four-letter words the server answers (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWordWhitelist {
    /// `*`: every command.
    All,
    /// Only these (lower-case) commands.
    Only(BTreeSet<String>),
}

impl FourLetterWordWhitelist {
    /// Whether `command` (e.g. `"srvr"`) may run.
    pub fn allows(&self, command: &str) -> bool {
        match self {
            FourLetterWordWhitelist::All => true,
            FourLetterWordWhitelist::Only(commands) => commands.contains(command),
        }
    }
}

/// The embedded HTTP admin server (`admin.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.enableServer`, default true (as ZooKeeper 3.5-3.9).
    pub enabled: bool,
    /// `admin.serverAddress`, default `0.0.0.0`.
    pub address: String,
    /// `admin.serverPort`, default 8080.
    pub port: u16,
    /// `admin.commandURL`, default `/commands`.
    pub command_url: String,
}

/// `metricsProvider.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metricsProvider.className`; `None` means ZooKeeper's default provider (no HTTP endpoint).
    /// [`MetricsConfig::prometheus_enabled`] tells whether the Prometheus provider was asked for.
    pub provider_class_name: Option<String>,
    /// `metricsProvider.httpHost`, default `0.0.0.0`.
    pub http_host: String,
    /// `metricsProvider.httpPort`, default 7000.
    pub http_port: u16,
    /// Every other `metricsProvider.<name>` setting, keyed by `<name>`.
    pub other: BTreeMap<String, String>,
}

impl MetricsConfig {
    /// True when `metricsProvider.className` names ZooKeeper's Prometheus provider.
    pub fn prometheus_enabled(&self) -> bool {
        self.provider_class_name
            .as_deref()
            .is_some_and(|name| name.ends_with("PrometheusMetricsProvider"))
    }
}

/// A parsed and validated zoo.cfg. Field docs name the zoo.cfg key and its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from, if any.
    pub source_path: Option<PathBuf>,
    /// `tickTime` (required): the basic time unit in milliseconds.
    pub tick_time_ms: u32,
    /// `dataDir` (required), made absolute: snapshots, and `myid`.
    pub data_dir: PathBuf,
    /// `dataLogDir`, default `dataDir`, made absolute: the transaction log.
    pub data_log_dir: PathBuf,
    /// `clientPort`, or the client port of this server's `server.N` line.
    pub client_port: u16,
    /// `clientPortAddress`, or the address of this server's `server.N` client part; `None` = all interfaces.
    pub client_port_address: Option<String>,
    /// `maxClientCnxns`: connections per client IP, default 60, 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `minSessionTimeout`, default 2 x tickTime.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout`, default 20 x tickTime.
    pub max_session_timeout_ms: u32,
    /// `initLimit` in ticks; required for an ensemble, 10 when standalone and unset.
    pub init_limit_ticks: u32,
    /// `syncLimit` in ticks; required for an ensemble, 5 when standalone and unset.
    pub sync_limit_ticks: u32,
    /// `snapCount`, default 100000: transactions between snapshots (randomised in [snapCount/2+1, snapCount]).
    pub snap_count: u64,
    /// `preAllocSize` in KiB, default 16384 (16 MiB; ZooKeeper's is 65536): log segments are
    /// preallocated in, and roll at, this size.
    pub pre_alloc_size_kb: u64,
    /// `forceSync`, default yes. `no` skips fsync and can lose acknowledged writes on power loss.
    pub force_sync: bool,
    /// `autopurge.snapRetainCount`, default 3, minimum 3.
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours, default 0 = never purge.
    pub autopurge_purge_interval_hours: u32,
    /// `4lw.commands.whitelist`, default [`DEFAULT_FOUR_LETTER_WORDS`].
    pub four_letter_words: FourLetterWordWhitelist,
    /// `jute.maxbuffer`, default 0xfffff: the largest request or znode payload in bytes.
    pub jute_max_buffer_bytes: u32,
    /// `extendedTypesEnabled`, default false: allows TTL nodes.
    pub extended_types_enabled: bool,
    pub admin: AdminServerConfig,
    pub metrics: MetricsConfig,
    /// `globalOutstandingLimit`, default 1000: queued requests before the server stops reading from clients.
    pub global_outstanding_limit: u32,
    /// `standaloneEnabled`, default true.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`, default false.
    pub reconfig_enabled: bool,
    /// `skipACL`, default false: skip every ACL check.
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest` (`super:<base64 sha1>`), the super user.
    pub super_digest: Option<String>,
    /// `dynamicConfigFile`, made absolute, when the server lines live there.
    pub dynamic_config_file: Option<PathBuf>,
    /// Every `server.N` line, sorted by id.
    pub servers: Vec<ServerSpec>,
    /// This server's id from `dataDir/myid`, when that file exists.
    pub my_id: Option<u64>,
    /// Every key as read (last value wins), for `conf`-style reporting and for settings not typed here.
    pub properties: BTreeMap<String, String>,
    /// Everything that was accepted but deserves the operator's attention, also logged with `tracing::warn!`.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a zoo.cfg file. Relative paths inside it resolve against the process's current
    /// directory, as on ZooKeeper (see the crate docs). The file is read as UTF-8, falling back to Latin-1
    /// (what Java's `Properties.load` assumes) when it is not valid UTF-8.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let text = decode_text(std::fs::read(path).map_err(read_error)?);
        let base_dir = std::env::current_dir().map_err(read_error)?;
        let mut config = Config::parse(&text, &base_dir)?;
        config.source_path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses zoo.cfg text. `base_dir` is what relative paths resolve against (ZooKeeper uses the current
    /// directory; tests pass a temporary one). The `myid` file is read from the resolved `dataDir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let entries = properties::parse(text).map_err(|malformed| {
            ConfigError::invalid(
                &format!("line {}", malformed.line),
                &malformed.text,
                "malformed \\uXXXX escape",
                "write \\u followed by four hex digits, or \\\\ for a literal backslash",
            )
        })?;
        Parser::new(base_dir).run(entries)
    }

    /// The configuration rzk uses without a zoo.cfg: standalone, clientPort 2181, tickTime 2000, every other
    /// setting at its default. Pass [`DEFAULT_EMBEDDED_DATA_DIR`] (`./rzk-data`) unless you have a better place;
    /// a relative `data_dir` is kept as given (it resolves against the current directory when used).
    pub fn embedded_default(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        let tick_time_ms = 2000;
        Config {
            source_path: None,
            tick_time_ms,
            data_log_dir: data_dir.clone(),
            data_dir,
            client_port: 2181,
            client_port_address: None,
            max_client_cnxns: 60,
            min_session_timeout_ms: 2 * tick_time_ms,
            max_session_timeout_ms: 20 * tick_time_ms,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            snap_count: 100_000,
            pre_alloc_size_kb: 16_384,
            force_sync: true,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            four_letter_words: parse_whitelist(DEFAULT_FOUR_LETTER_WORDS, &mut Vec::new()),
            jute_max_buffer_bytes: DEFAULT_JUTE_MAX_BUFFER_BYTES,
            extended_types_enabled: false,
            admin: AdminServerConfig {
                enabled: true,
                address: "0.0.0.0".to_string(),
                port: 8080,
                command_url: "/commands".to_string(),
            },
            metrics: MetricsConfig {
                provider_class_name: None,
                http_host: "0.0.0.0".to_string(),
                http_port: 7000,
                other: BTreeMap::new(),
            },
            global_outstanding_limit: 1000,
            standalone_enabled: true,
            reconfig_enabled: false,
            skip_acl: false,
            super_digest: None,
            dynamic_config_file: None,
            servers: Vec::new(),
            my_id: None,
            properties: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// True unless this is an ensemble member: no `server.N` lines, or a single participant while
    /// `standaloneEnabled=true` (ZooKeeper's `isDistributed()` negated).
    pub fn is_standalone(&self) -> bool {
        let participants = self.participants().count();
        self.servers.is_empty() || (self.standalone_enabled && participants <= 1)
    }

    /// The voting members.
    pub fn participants(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers
            .iter()
            .filter(|server| server.role == PeerRole::Participant)
    }

    /// This server's own `server.N` line, when it is in an ensemble.
    pub fn my_server(&self) -> Option<&ServerSpec> {
        let id = self.my_id?;
        self.servers.iter().find(|server| server.id == id)
    }

    /// `clientPortAddress:clientPort`, with `0.0.0.0` when no address was set. IPv6 addresses are bracketed.
    pub fn client_bind_address(&self) -> String {
        match self.client_port_address.as_deref() {
            None => format!("0.0.0.0:{}", self.client_port),
            Some(address) if address.contains(':') => format!("[{address}]:{}", self.client_port),
            Some(address) => format!("{address}:{}", self.client_port),
        }
    }

    /// `preAllocSize` in bytes.
    pub fn pre_alloc_size_bytes(&self) -> u64 {
        self.pre_alloc_size_kb.saturating_mul(1024)
    }
}

/// zoo.cfg is Latin-1 to Java; accept UTF-8 first because that is what editors write today.
fn decode_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => error
            .into_bytes()
            .iter()
            .map(|&byte| byte as char)
            .collect(),
    }
}

/// Keys ZooKeeper reads as `zookeeper.<key>` system properties; accepted with or without that prefix.
const SYSTEM_PROPERTY_KEYS: &[&str] = &[
    "snapCount",
    "preAllocSize",
    "forceSync",
    "4lw.commands.whitelist",
    "jute.maxbuffer",
    "extendedTypesEnabled",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "globalOutstandingLimit",
    "skipACL",
    "DigestAuthenticationProvider.superDigest",
];

/// Keys with a typed field (or handled specially) in [`Config`].
const TYPED_KEYS: &[&str] = &[
    "tickTime",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    "standaloneEnabled",
    "reconfigEnabled",
    "dynamicConfigFile",
    "peerType",
];

/// ZooKeeper settings rzk reads but does not act on (prefixes end in '.').
const IGNORED_ZOOKEEPER_KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "syncEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "leaderServes",
    "maxCnxns",
    "snapSizeLimitInKb",
    "fsync.warningthresholdms",
    "maxBatchSize",
    "flushDelay",
    "serverCnxnFactory",
    "cnxTimeout",
    "oraclePath",
    "enforceQuota",
    "audit.enable",
    "digest.enabled",
    "admin.idleTimeout",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "quorum.",
    "multiAddress.",
    "jvm.pause.",
    "ssl.",
    "authProvider.",
    "znode.container.",
];

fn is_ignored_zookeeper_key(key: &str) -> bool {
    IGNORED_ZOOKEEPER_KEYS.iter().any(|known| {
        if known.ends_with('.') {
            key.starts_with(known)
        } else {
            key == *known
        }
    })
}

/// One key's final value and where it came from.
#[derive(Clone)]
struct Setting {
    value: String,
    line: usize,
}

struct Parser<'a> {
    base_dir: &'a Path,
    settings: BTreeMap<String, Setting>,
    /// `server.N` entries in file order, kept apart so that repeated ids can be reported.
    server_entries: Vec<properties::Entry>,
    warnings: Vec<String>,
}

impl<'a> Parser<'a> {
    fn new(base_dir: &'a Path) -> Self {
        Parser {
            base_dir,
            settings: BTreeMap::new(),
            server_entries: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.warnings.push(message);
    }

    fn run(mut self, entries: Vec<properties::Entry>) -> Result<Config, ConfigError> {
        let raw: BTreeMap<String, String> = entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        self.collect(entries)?;
        let mut config = Config::embedded_default(PathBuf::new());
        config.properties = raw;
        self.read_paths(&mut config)?;
        self.read_numbers(&mut config)?;
        self.read_switches(&mut config)?;
        self.read_services(&mut config)?;
        self.read_ensemble(&mut config)?;
        self.report_leftovers();
        config.warnings = self.warnings;
        Ok(config)
    }

    /// Files entries by key: last one wins (with a warning), `zookeeper.` aliases folded in.
    fn collect(&mut self, entries: Vec<properties::Entry>) -> Result<(), ConfigError> {
        for entry in entries {
            if entry.key.starts_with("server.") {
                self.server_entries.push(entry);
                continue;
            }
            if entry.key.starts_with("group.") || entry.key.starts_with("weight.") {
                return Err(ConfigError::invalid(
                    &entry.key,
                    &entry.value,
                    "hierarchical quorums (group.N / weight.N) are not supported by rzk",
                    "remove the group.N and weight.N lines; rzk commits with a majority of the server.N participants",
                ));
            }
            let key = match entry.key.strip_prefix("zookeeper.") {
                Some(bare) if SYSTEM_PROPERTY_KEYS.contains(&bare) => bare.to_string(),
                _ => entry.key.clone(),
            };
            let setting = Setting {
                value: entry.value,
                line: entry.line,
            };
            if let Some(previous) = self.settings.insert(key.clone(), setting.clone()) {
                self.warn(format!(
                    "{key} is set twice (line {} and line {}); using the last value {:?}, as ZooKeeper does",
                    previous.line, setting.line, setting.value
                ));
            }
        }
        Ok(())
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.settings.remove(key).map(|setting| setting.value)
    }

    fn take_path(&mut self, key: &str) -> Option<PathBuf> {
        let value = self.take(key)?;
        let path = PathBuf::from(&value);
        if path.is_absolute() {
            return Some(path);
        }
        if !value.starts_with('.') {
            self.warn(format!(
                "{key}={value} is relative; it resolves against the current directory {} (write ./{value} to say you mean it, or use an absolute path)",
                self.base_dir.display()
            ));
        }
        Some(self.base_dir.join(path))
    }

    fn read_paths(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        config.data_dir = self.take_path("dataDir").ok_or_else(|| {
            ConfigError::missing(
                "dataDir",
                "add dataDir=/var/lib/zookeeper (the directory for snapshots and myid)",
            )
        })?;
        config.data_log_dir = self
            .take_path("dataLogDir")
            .unwrap_or_else(|| config.data_dir.clone());
        config.dynamic_config_file = self.take_path("dynamicConfigFile");
        Ok(())
    }

    fn read_numbers(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        let tick = self
            .take("tickTime")
            .ok_or_else(|| ConfigError::missing("tickTime", "add tickTime=2000 (milliseconds)"))?;
        config.tick_time_ms =
            parse_positive(&tick, "tickTime", "set tickTime=2000 (milliseconds)")?;
        let tick_ms = config.tick_time_ms;

        if let Some(value) = self.take("maxClientCnxns") {
            config.max_client_cnxns = parse_count(
                &value,
                "maxClientCnxns",
                "set maxClientCnxns=60 (per client IP), or 0 for no limit",
            )?;
        }
        config.min_session_timeout_ms =
            self.session_timeout("minSessionTimeout", tick_ms.saturating_mul(2))?;
        config.max_session_timeout_ms =
            self.session_timeout("maxSessionTimeout", tick_ms.saturating_mul(20))?;
        if config.min_session_timeout_ms > config.max_session_timeout_ms {
            return Err(ConfigError::Conflict {
                first: format!("minSessionTimeout={}", config.min_session_timeout_ms),
                second: format!("maxSessionTimeout={}", config.max_session_timeout_ms),
                problem: "the minimum is larger than the maximum (defaults: 2 and 20 x tickTime)"
                    .to_string(),
                fix: "make minSessionTimeout <= maxSessionTimeout".to_string(),
            });
        }
        for (key, field, example) in [
            ("initLimit", &mut config.init_limit_ticks, 10),
            ("syncLimit", &mut config.sync_limit_ticks, 5),
        ] {
            if let Some(value) = self.settings.remove(key).map(|s| s.value) {
                *field = parse_positive(&value, key, &format!("set {key}={example} (ticks)"))?;
            } else {
                // 0 marks "unset"; read_ensemble requires it for an ensemble and restores the default otherwise.
                *field = 0;
            }
        }
        if let Some(value) = self.take("snapCount") {
            config.snap_count = u64::from(parse_positive(
                &value,
                "snapCount",
                "set snapCount=100000 (transactions)",
            )?);
            if config.snap_count < 2 {
                self.warn("snapCount=1 is below 2; using 2, as ZooKeeper does".to_string());
                config.snap_count = 2;
            }
        }
        if let Some(value) = self.take("preAllocSize") {
            config.pre_alloc_size_kb = u64::from(parse_positive(
                &value,
                "preAllocSize",
                "set preAllocSize=16384 (KiB)",
            )?);
        }
        if let Some(value) = self.take("autopurge.snapRetainCount") {
            let count = parse_integer(
                &value,
                "autopurge.snapRetainCount",
                "set autopurge.snapRetainCount=3",
            )?;
            if count < i64::from(MIN_SNAP_RETAIN_COUNT) {
                self.warn(format!(
                    "autopurge.snapRetainCount={value} is below the minimum {MIN_SNAP_RETAIN_COUNT}; using {MIN_SNAP_RETAIN_COUNT}, as ZooKeeper does"
                ));
            }
            config.autopurge_snap_retain_count =
                count.clamp(i64::from(MIN_SNAP_RETAIN_COUNT), i64::from(u32::MAX)) as u32;
        }
        if let Some(value) = self.take("autopurge.purgeInterval") {
            let hours = parse_integer(
                &value,
                "autopurge.purgeInterval",
                "set autopurge.purgeInterval=1 (hours), or 0 to turn purging off",
            )?;
            // ZooKeeper treats any value <= 0 as "off".
            config.autopurge_purge_interval_hours = hours.clamp(0, i64::from(u32::MAX)) as u32;
        }
        if let Some(value) = self.take("jute.maxbuffer") {
            config.jute_max_buffer_bytes = parse_buffer_size(&value)?;
        }
        if let Some(value) = self.take("globalOutstandingLimit") {
            config.global_outstanding_limit = parse_positive(
                &value,
                "globalOutstandingLimit",
                "set globalOutstandingLimit=1000",
            )?;
        }
        Ok(())
    }

    fn session_timeout(&mut self, key: &str, default_ms: u32) -> Result<u32, ConfigError> {
        let Some(value) = self.take(key) else {
            return Ok(default_ms);
        };
        let fix =
            format!("set {key} in milliseconds, or remove it for the default ({default_ms} here)");
        match parse_integer(&value, key, &fix)? {
            // -1 is ZooKeeper's own "use the default" marker.
            -1 => Ok(default_ms),
            ms if ms > 0 && ms <= i64::from(i32::MAX) => Ok(ms as u32),
            _ => Err(ConfigError::invalid(
                key,
                &value,
                "not a positive number of milliseconds",
                fix,
            )),
        }
    }

    fn read_switches(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        let switches: [(&str, &mut bool); 6] = [
            ("forceSync", &mut config.force_sync),
            ("extendedTypesEnabled", &mut config.extended_types_enabled),
            ("standaloneEnabled", &mut config.standalone_enabled),
            ("reconfigEnabled", &mut config.reconfig_enabled),
            ("skipACL", &mut config.skip_acl),
            ("admin.enableServer", &mut config.admin.enabled),
        ];
        for (key, field) in switches {
            if let Some(value) = self.settings.remove(key).map(|s| s.value) {
                *field = parse_bool(key, &value)?;
            }
        }
        if !config.force_sync {
            self.warn("forceSync=no: the transaction log is not fsync'd; acknowledged writes can be lost on power failure".to_string());
        }
        if let Some(value) = self.take("4lw.commands.whitelist") {
            config.four_letter_words = parse_whitelist(&value, &mut self.warnings);
        }
        if let Some(digest) = self.take("DigestAuthenticationProvider.superDigest") {
            match digest.split_once(':') {
                Some((user, hash)) if !user.is_empty() && !hash.is_empty() => config.super_digest = Some(digest),
                _ => {
                    return Err(ConfigError::invalid(
                        "DigestAuthenticationProvider.superDigest",
                        &digest,
                        "not of the form user:base64digest",
                        "generate it with `java -cp zookeeper.jar org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:password` and paste the super:... part",
                    ))
                }
            }
        }
        Ok(())
    }

    fn read_services(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        // 0 means "not set", as in ZooKeeper: the port may come from this server's server.N line instead.
        config.client_port = match self.take("clientPort") {
            Some(value) if value != "0" => parse_port("clientPort", &value, "set clientPort=2181")?,
            _ => 0,
        };
        config.client_port_address = self
            .take("clientPortAddress")
            .filter(|address| !address.is_empty());
        if let Some(value) = self.take("admin.serverAddress") {
            config.admin.address = value;
        }
        if let Some(value) = self.take("admin.serverPort") {
            config.admin.port = parse_port(
                "admin.serverPort",
                &value,
                "set admin.serverPort=8080, or admin.enableServer=false",
            )?;
        }
        if let Some(value) = self.take("admin.commandURL") {
            if !value.starts_with('/') {
                return Err(ConfigError::invalid(
                    "admin.commandURL",
                    &value,
                    "not a URL path",
                    "set admin.commandURL=/commands",
                ));
            }
            config.admin.command_url = value;
        }
        config.metrics.provider_class_name = self
            .take("metricsProvider.className")
            .filter(|name| !name.is_empty());
        if let Some(value) = self.take("metricsProvider.httpHost") {
            config.metrics.http_host = value;
        }
        if let Some(value) = self.take("metricsProvider.httpPort") {
            config.metrics.http_port = parse_port(
                "metricsProvider.httpPort",
                &value,
                "set metricsProvider.httpPort=7000",
            )?;
        }
        let other_metrics: Vec<String> = self
            .settings
            .keys()
            .filter(|k| k.starts_with("metricsProvider."))
            .cloned()
            .collect();
        for key in other_metrics {
            let value = self.take(&key).unwrap_or_default();
            config
                .metrics
                .other
                .insert(key["metricsProvider.".len()..].to_string(), value);
        }
        Ok(())
    }

    fn read_ensemble(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(path) = config.dynamic_config_file.clone() {
            self.read_dynamic_file(&path)?;
        }
        config.servers = self.parse_servers(config.extended_types_enabled)?;
        let peer_type = self.take("peerType");
        config.my_id = read_myid(&config.data_dir, &config.servers)?;
        self.check_membership(config)?;

        if let (Some(peer_type), Some(me)) = (peer_type, config.my_server()) {
            let from_list = if me.role == PeerRole::Observer {
                "observer"
            } else {
                "participant"
            };
            if !peer_type.eq_ignore_ascii_case(from_list) {
                let message =
                    format!("peerType={peer_type} does not match server.{}'s type ({from_list}); using the server list, as ZooKeeper does", me.id);
                self.warn(message);
            }
        }
        self.apply_my_client_address(config)?;
        if config.client_port == 0 {
            return Err(ConfigError::missing(
                "clientPort",
                "add clientPort=2181 (or end this server's server.N line with ;2181)",
            ));
        }
        Ok(())
    }

    /// Reads `server.N` (and `version`) lines from the file named by `dynamicConfigFile`.
    fn read_dynamic_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        if let Some(entry) = self.server_entries.first() {
            return Err(ConfigError::invalid(
                &entry.key,
                &entry.value,
                "server.N lines must be in the dynamic config file when dynamicConfigFile is set",
                format!("move it to {}", path.display()),
            ));
        }
        let bytes = std::fs::read(path).map_err(|source| ConfigError::DynamicFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        let text = decode_text(bytes);
        let entries = properties::parse(&text).map_err(|malformed| {
            ConfigError::invalid(
                &format!("{} line {}", path.display(), malformed.line),
                &malformed.text,
                "malformed \\uXXXX escape",
                "write \\u followed by four hex digits",
            )
        })?;
        for entry in entries {
            if entry.key.starts_with("server.") {
                self.server_entries.push(entry);
            } else if entry.key != "version" {
                return Err(ConfigError::invalid(
                    &entry.key,
                    &entry.value,
                    format!("not allowed in the dynamic config file {}", path.display()),
                    "keep only server.N lines (and version) there; move other settings to zoo.cfg",
                ));
            }
        }
        Ok(())
    }

    fn parse_servers(&mut self, extended_types: bool) -> Result<Vec<ServerSpec>, ConfigError> {
        let mut servers: Vec<ServerSpec> = Vec::new();
        for entry in std::mem::take(&mut self.server_entries) {
            let id = server::parse_server_id(&entry.key, &entry.value, extended_types)?;
            let spec = server::parse_server_line(&entry.key, &entry.value, id, entry.line)?;
            if let Some(first) = servers.iter().find(|existing| existing.id == id) {
                return Err(ConfigError::DuplicateServerId {
                    id,
                    first: format!("server.{id}={}", describe(first)),
                    first_line: first.line,
                    second: format!("{}={}", entry.key, entry.value),
                    second_line: entry.line,
                });
            }
            servers.push(spec);
        }
        servers.sort_by_key(|server| server.id);
        Ok(servers)
    }

    /// ZooKeeper's `parseDynamicConfig` + `checkValidity` rules about who is in the ensemble.
    fn check_membership(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        let participants = config.participants().count();
        let observers = config.servers.len() - participants;
        if participants == 0 && observers > 0 {
            return Err(ConfigError::missing(
                "server.N participant",
                "observers need participants: add participant server.N lines",
            ));
        }
        if participants == 0 && !config.standalone_enabled {
            return Err(ConfigError::missing(
                "server.N",
                "standaloneEnabled=false needs at least one server.N line; add one or remove standaloneEnabled=false",
            ));
        }
        if participants == 1 && config.standalone_enabled {
            if observers > 0 {
                return Err(ConfigError::Conflict {
                    first: "one participant server.N line".to_string(),
                    second: "observer lines".to_string(),
                    problem: "observers without a quorum cannot work".to_string(),
                    fix: "add participants (3 or more) or set standaloneEnabled=false".to_string(),
                });
            }
            self.warn("only one server.N line: running standalone, as ZooKeeper does (set standaloneEnabled=false for a one-member ensemble that can grow)".to_string());
        }
        if config.is_standalone() {
            // Unset limits (0) take the sample config's values; a standalone server never uses them.
            if config.init_limit_ticks == 0 {
                config.init_limit_ticks = 10;
            }
            if config.sync_limit_ticks == 0 {
                config.sync_limit_ticks = 5;
            }
            return Ok(());
        }
        if participants == 2 {
            self.warn(
                "2 participants: no server failure will be tolerated; you need at least 3 servers"
                    .to_string(),
            );
        } else if participants & 1 == 0 {
            self.warn(format!("{participants} participants: an even count tolerates no more failures than {}; consider an odd number", participants - 1));
        }
        if config.init_limit_ticks == 0 {
            return Err(ConfigError::missing("initLimit", "an ensemble needs it: add initLimit=10 (ticks a follower may take to sync at startup)"));
        }
        if config.sync_limit_ticks == 0 {
            return Err(ConfigError::missing(
                "syncLimit",
                "an ensemble needs it: add syncLimit=5 (ticks a follower may lag)",
            ));
        }
        let ids = id_list(&config.servers);
        let myid_path = config.data_dir.join("myid");
        match config.my_id {
            None => Err(ConfigError::MyidMissing {
                path: myid_path,
                example: config.servers[0].id,
                ids,
            }),
            Some(id) if config.my_server().is_none() => Err(ConfigError::MyidNotInServers {
                path: myid_path,
                id,
                ids,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Takes the client address from this server's `server.N` line, rejecting a contradiction with `clientPort`.
    fn apply_my_client_address(&mut self, config: &mut Config) -> Result<(), ConfigError> {
        let Some(me) = config.my_server().cloned() else {
            return Ok(());
        };
        let Some(line_port) = me.client_port else {
            return Ok(());
        };
        if config.client_port != 0 && config.client_port != line_port {
            return Err(ConfigError::Conflict {
                first: format!("clientPort={}", config.client_port),
                second: format!("server.{}=...;{}", me.id, line_port),
                problem: "this server's client port is given twice with different values"
                    .to_string(),
                fix: "remove clientPort or make both the same".to_string(),
            });
        }
        config.client_port = line_port;
        if let Some(address) = me.client_address {
            let wildcard = address == "0.0.0.0" || address == "::";
            match config.client_port_address.as_deref() {
                Some(existing) if existing != address && !wildcard => {
                    return Err(ConfigError::Conflict {
                        first: format!("clientPortAddress={existing}"),
                        second: format!("server.{}=...;{address}:{line_port}", me.id),
                        problem:
                            "this server's client address is given twice with different values"
                                .to_string(),
                        fix: "remove clientPortAddress or make both the same".to_string(),
                    })
                }
                Some(_) => {}
                None => config.client_port_address = Some(address),
            }
        }
        Ok(())
    }

    /// Warns about every key nobody consumed.
    fn report_leftovers(&mut self) {
        let leftovers: Vec<(String, Setting)> =
            std::mem::take(&mut self.settings).into_iter().collect();
        for (key, setting) in leftovers {
            if is_ignored_zookeeper_key(&key) {
                self.warn(format!(
                    "{key}={} (line {}) is a ZooKeeper setting that rzk does not implement; ignored",
                    setting.value, setting.line
                ));
                continue;
            }
            let known = TYPED_KEYS
                .iter()
                .chain(SYSTEM_PROPERTY_KEYS)
                .find(|candidate| candidate.eq_ignore_ascii_case(&key));
            let hint = match known {
                Some(candidate) => format!("; did you mean {candidate}? (keys are case-sensitive)"),
                None => "; check the spelling".to_string(),
            };
            self.warn(format!(
                "unknown setting {key}={} (line {}) ignored{hint}",
                setting.value, setting.line
            ));
        }
    }
}

fn describe(spec: &ServerSpec) -> String {
    let role = if spec.role == PeerRole::Observer {
        ":observer"
    } else {
        ""
    };
    format!(
        "{}:{}:{}{role}",
        spec.host, spec.quorum_port, spec.election_port
    )
}

fn id_list(servers: &[ServerSpec]) -> String {
    servers
        .iter()
        .map(|server| server.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `dataDir/myid` if it exists. Like ZooKeeper, a file that exists but is not a number is an error even
/// for a standalone server; unlike ZooKeeper, blanks around the number are allowed.
fn read_myid(data_dir: &Path, servers: &[ServerSpec]) -> Result<Option<u64>, ConfigError> {
    let path = data_dir.join("myid");
    let example = servers.first().map_or(1, |server| server.id);
    let text = match std::fs::read(&path) {
        Ok(bytes) => decode_text(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConfigError::MyidInvalid {
                path,
                content: format!("<unreadable: {error}>"),
                example,
            })
        }
    };
    let first_line = text.lines().next().unwrap_or("").trim();
    match first_line.parse::<u64>() {
        Ok(id) if (1..=server::SERVER_ID_MAX).contains(&id) => Ok(Some(id)),
        _ => Err(ConfigError::MyidInvalid {
            path,
            content: first_line.to_string(),
            example,
        }),
    }
}

/// Java's `Integer.parseInt` rules: optional sign, decimal digits, 32-bit range.
fn parse_integer(value: &str, key: &str, fix: &str) -> Result<i64, ConfigError> {
    value
        .parse::<i32>()
        .map(i64::from)
        .map_err(|_| ConfigError::invalid(key, value, "not a whole number", fix))
}

fn parse_positive(value: &str, key: &str, fix: &str) -> Result<u32, ConfigError> {
    match parse_integer(value, key, fix)? {
        number if number > 0 => Ok(number as u32),
        _ => Err(ConfigError::invalid(
            key,
            value,
            "must be greater than 0",
            fix,
        )),
    }
}

fn parse_count(value: &str, key: &str, fix: &str) -> Result<u32, ConfigError> {
    match parse_integer(value, key, fix)? {
        number if number >= 0 => Ok(number as u32),
        _ => Err(ConfigError::invalid(
            key,
            value,
            "must not be negative",
            fix,
        )),
    }
}

fn parse_port(key: &str, value: &str, fix: &str) -> Result<u16, ConfigError> {
    server::parse_port_field(value)
        .ok_or_else(|| ConfigError::invalid(key, value, "not a port number (1-65535)", fix))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(ConfigError::invalid(
            key,
            value,
            "not a yes/no value",
            format!("set {key}=true or {key}=false (yes/no also work)"),
        )),
    }
}

/// `jute.maxbuffer` in decimal or `0x` hex (Java's `Integer.decode` also allows `#` and a leading `0` for octal;
/// rzk accepts only the two forms people write).
fn parse_buffer_size(value: &str) -> Result<u32, ConfigError> {
    let parsed = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse::<u32>().ok(),
    };
    match parsed {
        Some(bytes) if bytes > 0 && bytes <= i32::MAX as u32 => Ok(bytes),
        _ => Err(ConfigError::invalid(
            "jute.maxbuffer",
            value,
            "not a positive size in bytes (decimal or 0x hex, at most 2147483647)",
            "set jute.maxbuffer=0xfffff (1 MiB - 1, the default) or a larger byte count such as 4194304",
        )),
    }
}

/// Parses `4lw.commands.whitelist`: comma-separated, blanks ignored, case ignored, `*` = all. Words rzk does not
/// know are dropped with a warning (a typo here should be visible, not silently refuse a health check). `srvr`
/// is always allowed, whatever the list says, as in ZooKeeper: `zkServer.sh status` depends on it.
fn parse_whitelist(value: &str, warnings: &mut Vec<String>) -> FourLetterWordWhitelist {
    let words: BTreeSet<String> = value
        .split(',')
        .map(|word| word.trim().to_ascii_lowercase())
        .filter(|word| !word.is_empty())
        .collect();
    if words.contains("*") {
        return FourLetterWordWhitelist::All;
    }
    for word in &words {
        if !FOUR_LETTER_WORDS.contains(&word.as_str()) {
            let message = format!("4lw.commands.whitelist: \"{word}\" is not a four-letter word rzk knows ({}); ignored", FOUR_LETTER_WORDS.join(" "));
            tracing::warn!("{message}");
            warnings.push(message);
        }
    }
    FourLetterWordWhitelist::Only(
        words
            .into_iter()
            .filter(|word| FOUR_LETTER_WORDS.contains(&word.as_str()))
            .chain(std::iter::once("srvr".to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
