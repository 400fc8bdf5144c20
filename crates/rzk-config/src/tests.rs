//! Config parsing tests. Each test states the rule it checks; error tests also check that the message names the
//! key, the value and a fix, since that message is the whole user interface of a bad config.

use super::*;
use std::fs;

/// Apache ZooKeeper's `conf/zoo_sample.cfg` (3.8) as shipped, the file most zoo.cfgs start from.
const ZOOKEEPER_SAMPLE: &str = "# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial 
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between 
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
# do not use /tmp for storage, /tmp here is just 
# example sakes.
dataDir=/tmp/zookeeper
# the port at which the clients will connect
clientPort=2181
# the maximum number of client connections.
# increase this if you need to handle more clients
#maxClientCnxns=60
#
# Be sure to read the maintenance section of the 
# administrator guide before turning on autopurge.
#
# https://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1

## Metrics Providers
#
# https://prometheus.io Metrics Exporter
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true
";

fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, dir)
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_in(Path::new("/base"), text)
}

fn minimal(extra: &str) -> String {
    format!("tickTime=2000\ndataDir=/var/zk\nclientPort=2181\n{extra}")
}

/// Asserts the error message contains every fragment (key=value, problem, fix).
fn assert_error(text: &str, fragments: &[&str]) {
    let message = parse(text)
        .expect_err("config should be rejected")
        .to_string();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "message {message:?} lacks {fragment:?}"
        );
    }
}

/// An ensemble of three in `dir` whose myid says `my_id` (None: no myid file).
fn ensemble(dir: &Path, my_id: Option<&str>, extra: &str) -> Result<Config, ConfigError> {
    if let Some(my_id) = my_id {
        fs::write(dir.join("myid"), my_id).unwrap();
    }
    let text = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\n\
         server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888\n{extra}",
        dir.display()
    );
    parse_in(dir, &text)
}

#[test]
fn zookeeper_sample_parses_with_documented_defaults() {
    let config = parse(ZOOKEEPER_SAMPLE).unwrap();
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!((config.init_limit_ticks, config.sync_limit_ticks), (10, 5));
    assert_eq!(config.data_dir, PathBuf::from("/tmp/zookeeper"));
    assert_eq!(config.data_log_dir, config.data_dir);
    assert_eq!(config.client_port, 2181);
    assert_eq!(config.client_bind_address(), "0.0.0.0:2181");
    assert_eq!(config.max_client_cnxns, 60);
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (4000, 40000)
    );
    assert_eq!(config.snap_count, 100_000);
    assert_eq!(config.pre_alloc_size_bytes(), 16 * 1024 * 1024);
    assert!(config.force_sync);
    assert_eq!(
        (
            config.autopurge_snap_retain_count,
            config.autopurge_purge_interval_hours
        ),
        (3, 0)
    );
    assert_eq!(config.jute_max_buffer_bytes, 0xfffff);
    assert!(config.four_letter_words.allows("srvr") && config.four_letter_words.allows("ruok"));
    assert!(config.four_letter_words.allows("mntr") && !config.four_letter_words.allows("dump"));
    assert!(config.admin.enabled);
    assert_eq!(
        (config.admin.port, config.admin.command_url.as_str()),
        (8080, "/commands")
    );
    assert_eq!(config.metrics.http_port, 7000);
    assert!(!config.metrics.prometheus_enabled());
    assert_eq!(config.global_outstanding_limit, 1000);
    assert!(config.standalone_enabled && !config.reconfig_enabled && !config.skip_acl);
    assert!(config.is_standalone());
    assert_eq!(config.my_id, None);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn every_typed_key_is_read() {
    let config = parse(&minimal(
        "dataLogDir=/fast/log\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nminSessionTimeout=1000\n\
         maxSessionTimeout=90000\nsnapCount=5000\npreAllocSize=1024\nforceSync=no\n\
         autopurge.snapRetainCount=5\nautopurge.purgeInterval=24\n4lw.commands.whitelist=stat, RUOK ,conf\n\
         jute.maxbuffer=0x400000\nextendedTypesEnabled=true\nadmin.enableServer=false\n\
         admin.serverAddress=127.0.0.1\nadmin.serverPort=9090\nadmin.commandURL=/cmd\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpPort=7001\nmetricsProvider.exportJvmInfo=false\nglobalOutstandingLimit=50\n\
         reconfigEnabled=true\nskipACL=yes\nDigestAuthenticationProvider.superDigest=super:abc=\n",
    ))
    .unwrap();
    assert_eq!(config.data_log_dir, PathBuf::from("/fast/log"));
    assert_eq!(config.client_bind_address(), "127.0.0.1:2181");
    assert_eq!(config.max_client_cnxns, 0);
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (1000, 90000)
    );
    assert_eq!((config.snap_count, config.pre_alloc_size_kb), (5000, 1024));
    assert!(!config.force_sync);
    assert_eq!(
        (
            config.autopurge_snap_retain_count,
            config.autopurge_purge_interval_hours
        ),
        (5, 24)
    );
    // srvr is always in (see whitelist_warns_about_unknown_words_and_always_allows_srvr).
    let expected: BTreeSet<String> = ["conf", "ruok", "srvr", "stat"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        config.four_letter_words,
        FourLetterWordWhitelist::Only(expected)
    );
    assert_eq!(config.jute_max_buffer_bytes, 0x400000);
    assert!(config.extended_types_enabled);
    assert!(!config.admin.enabled);
    assert_eq!(
        (config.admin.address.as_str(), config.admin.port),
        ("127.0.0.1", 9090)
    );
    assert_eq!(config.admin.command_url, "/cmd");
    assert!(config.metrics.prometheus_enabled());
    assert_eq!(config.metrics.http_port, 7001);
    assert_eq!(
        config
            .metrics
            .other
            .get("exportJvmInfo")
            .map(String::as_str),
        Some("false")
    );
    assert_eq!(config.global_outstanding_limit, 50);
    assert!(config.reconfig_enabled && config.skip_acl);
    assert_eq!(config.super_digest.as_deref(), Some("super:abc="));
    assert_eq!(
        config.properties.get("snapCount").map(String::as_str),
        Some("5000")
    );
    // forceSync=no is worth a warning; nothing else is (srvr is always allowed).
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
}

#[test]
fn system_property_keys_accept_the_zookeeper_prefix() {
    let config = parse(&minimal(
        "zookeeper.extendedTypesEnabled=true\nzookeeper.skipACL=yes\nzookeeper.4lw.commands.whitelist=*\n\
         zookeeper.DigestAuthenticationProvider.superDigest=super:x\njute.maxbuffer=4194304\n",
    ))
    .unwrap();
    assert!(config.extended_types_enabled && config.skip_acl);
    assert_eq!(config.four_letter_words, FourLetterWordWhitelist::All);
    assert!(config.four_letter_words.allows("wchp"));
    assert_eq!(config.super_digest.as_deref(), Some("super:x"));
    assert_eq!(config.jute_max_buffer_bytes, 4_194_304);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn session_timeout_defaults_follow_tick_time_and_minus_one_means_default() {
    let config = parse("tickTime=3000\ndataDir=/d\nclientPort=1\nminSessionTimeout=-1\n").unwrap();
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (6000, 60000)
    );
}

#[test]
fn java_properties_syntax_is_accepted() {
    let config =
        parse("! comment\n  tickTime : 2000  \ndataDir /var/\\\n    zk\r\nclientPort=2181")
            .unwrap();
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!(config.data_dir, PathBuf::from("/var/zk"));
}

#[test]
fn repeated_key_last_wins_with_a_warning() {
    // The tutorial's cluster setup appends dataDir to a sample that already has one.
    let config = parse(&format!(
        "{ZOOKEEPER_SAMPLE}dataDir=/usr/local/zookeeper/zkdata\n"
    ))
    .unwrap();
    assert_eq!(
        config.data_dir,
        PathBuf::from("/usr/local/zookeeper/zkdata")
    );
    assert_eq!(config.warnings.len(), 1);
    assert!(
        config.warnings[0].contains("dataDir is set twice (line 12 and line 37)"),
        "{:?}",
        config.warnings
    );
}

#[test]
fn unknown_and_unimplemented_keys_warn_but_do_not_fail() {
    let config = parse(&minimal(
        "ticktime=3000\nfoo.bar=1\nelectionAlg=3\nssl.keyStore.location=/k\n",
    ))
    .unwrap();
    let warnings = config.warnings.join("\n");
    assert!(
        warnings.contains("unknown setting ticktime=3000 (line 4) ignored; did you mean tickTime?"),
        "{warnings}"
    );
    assert!(
        warnings.contains("unknown setting foo.bar=1 (line 5) ignored; check the spelling"),
        "{warnings}"
    );
    assert!(
        warnings
            .contains("electionAlg=3 (line 6) is a ZooKeeper setting that rzk does not implement"),
        "{warnings}"
    );
    assert!(warnings.contains("ssl.keyStore.location"), "{warnings}");
    assert_eq!(config.warnings.len(), 4);
}

#[test]
fn small_values_are_raised_like_zookeeper() {
    let config = parse(&minimal(
        "autopurge.snapRetainCount=1\nautopurge.purgeInterval=-5\nsnapCount=1\n",
    ))
    .unwrap();
    assert_eq!(config.autopurge_snap_retain_count, 3);
    assert_eq!(config.autopurge_purge_interval_hours, 0);
    assert_eq!(config.snap_count, 2);
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
}

#[test]
fn relative_paths_resolve_against_the_base_dir_with_a_warning() {
    let config = parse_in(
        Path::new("/run/here"),
        "tickTime=2000\ndataDir=zkdata\ndataLogDir=./logs\nclientPort=2181\n",
    )
    .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/run/here/zkdata"));
    assert_eq!(config.data_log_dir, PathBuf::from("/run/here/./logs"));
    assert_eq!(
        config.warnings.len(),
        1,
        "only the path without ./ warns: {:?}",
        config.warnings
    );
    assert!(config.warnings[0].contains("dataDir=zkdata is relative"));
}

#[test]
fn required_keys_are_reported_with_a_fix() {
    assert_error(
        "dataDir=/d\nclientPort=2181",
        &["tickTime is not set", "add tickTime=2000"],
    );
    assert_error(
        "tickTime=2000\nclientPort=2181",
        &["dataDir is not set", "add dataDir="],
    );
    assert_error(
        "tickTime=2000\ndataDir=/d",
        &["clientPort is not set", "add clientPort=2181"],
    );
    assert_error(
        "tickTime=2000\ndataDir=/d\nclientPort=0",
        &["clientPort is not set"],
    );
}

#[test]
fn bad_values_name_key_value_and_fix() {
    let cases: &[(&str, &[&str])] = &[
        (
            "clientPort=abc",
            &["clientPort=abc: not a port number (1-65535); set clientPort=2181"],
        ),
        ("clientPort=70000", &["clientPort=70000: not a port number"]),
        (
            "tickTime=0",
            &["tickTime=0: must be greater than 0; set tickTime=2000"],
        ),
        ("tickTime=2s", &["tickTime=2s: not a whole number"]),
        (
            "maxClientCnxns=-1",
            &["maxClientCnxns=-1: must not be negative", "0 for no limit"],
        ),
        (
            "maxClientCnxns=lots",
            &["maxClientCnxns=lots: not a whole number"],
        ),
        (
            "minSessionTimeout=0",
            &["minSessionTimeout=0: not a positive number of milliseconds"],
        ),
        (
            "maxSessionTimeout=x",
            &["maxSessionTimeout=x: not a whole number"],
        ),
        (
            "initLimit=0",
            &["initLimit=0: must be greater than 0; set initLimit=10 (ticks)"],
        ),
        ("syncLimit=-2", &["syncLimit=-2: must be greater than 0"]),
        ("snapCount=many", &["snapCount=many: not a whole number"]),
        (
            "preAllocSize=0",
            &["preAllocSize=0: must be greater than 0", "16384 (KiB)"],
        ),
        (
            "forceSync=maybe",
            &["forceSync=maybe: not a yes/no value; set forceSync=true or forceSync=false"],
        ),
        ("skipACL=1", &["skipACL=1: not a yes/no value"]),
        (
            "admin.enableServer=on?",
            &["admin.enableServer=on?: not a yes/no value"],
        ),
        ("standaloneEnabled=nah", &["standaloneEnabled=nah"]),
        ("reconfigEnabled=?", &["reconfigEnabled=?"]),
        ("extendedTypesEnabled=2", &["extendedTypesEnabled=2"]),
        (
            "autopurge.snapRetainCount=three",
            &["autopurge.snapRetainCount=three: not a whole number"],
        ),
        (
            "autopurge.purgeInterval=1h",
            &["autopurge.purgeInterval=1h: not a whole number"],
        ),
        (
            "jute.maxbuffer=1MB",
            &["jute.maxbuffer=1MB: not a positive size", "0xfffff"],
        ),
        ("jute.maxbuffer=0x", &["jute.maxbuffer=0x:"]),
        ("jute.maxbuffer=0", &["jute.maxbuffer=0:"]),
        (
            "globalOutstandingLimit=0",
            &["globalOutstandingLimit=0: must be greater than 0"],
        ),
        (
            "admin.serverPort=http",
            &[
                "admin.serverPort=http: not a port number",
                "admin.enableServer=false",
            ],
        ),
        (
            "admin.commandURL=commands",
            &["admin.commandURL=commands: not a URL path; set admin.commandURL=/commands"],
        ),
        (
            "metricsProvider.httpPort=0",
            &["metricsProvider.httpPort=0: not a port number"],
        ),
        (
            "DigestAuthenticationProvider.superDigest=nocolon",
            &["superDigest=nocolon: not of the form user:base64digest"],
        ),
        (
            "group.1=1:2:3",
            &["group.1=1:2:3: hierarchical quorums", "remove the group.N"],
        ),
        ("weight.1=1", &["weight.1=1: hierarchical quorums"]),
        ("tickTime=\\u12zz", &["line 4=", "malformed \\uXXXX escape"]),
    ];
    for (line, fragments) in cases {
        assert_error(&minimal(&format!("{line}\n")), fragments);
    }
}

#[test]
fn min_session_timeout_above_max_is_rejected() {
    assert_error(
        &minimal("minSessionTimeout=50000\n"),
        &[
            "minSessionTimeout=50000 conflicts with maxSessionTimeout=40000",
            "make minSessionTimeout <= maxSessionTimeout",
        ],
    );
}

#[test]
fn missing_config_file_names_the_path() {
    let error = Config::from_file("/nonexistent/rzk/zoo.cfg")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot read config file /nonexistent/rzk/zoo.cfg: "),
        "{error}"
    );
}

#[test]
fn from_file_records_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    fs::write(&path, minimal("")).unwrap();
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.source_path.as_deref(), Some(path.as_path()));
    assert_eq!(config.client_port, 2181);
}

#[test]
fn latin1_file_is_read_like_java() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    let mut bytes = minimal("").into_bytes();
    bytes.extend_from_slice(b"dataDir=/data/caf\xe9\n");
    fs::write(&path, bytes).unwrap();
    assert_eq!(
        Config::from_file(&path).unwrap().data_dir,
        PathBuf::from("/data/café")
    );
}

#[test]
fn embedded_default_is_standalone_on_2181() {
    let config = Config::embedded_default(DEFAULT_EMBEDDED_DATA_DIR);
    assert!(config.is_standalone());
    assert_eq!((config.client_port, config.tick_time_ms), (2181, 2000));
    assert_eq!(config.data_dir, PathBuf::from("./rzk-data"));
    assert_eq!(config.data_log_dir, config.data_dir);
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (4000, 40000)
    );
}

#[test]
fn ensemble_with_matching_myid() {
    let dir = tempfile::tempdir().unwrap();
    let config = ensemble(dir.path(), Some("2\n"), "").unwrap();
    assert!(!config.is_standalone());
    assert_eq!(config.my_id, Some(2));
    assert_eq!(
        config.servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(config.my_server().unwrap().host, "zk2");
    assert_eq!(config.participants().count(), 3);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn ensemble_without_myid_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let message = ensemble(dir.path(), None, "").unwrap_err().to_string();
    let myid = dir.path().join("myid");
    assert!(
        message.contains(&format!("myid file {} is missing", myid.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!("`echo 1 > {}`", myid.display())),
        "{message}"
    );
    assert!(message.contains("configured ids: 1, 2, 3"), "{message}");
}

#[test]
fn myid_must_be_a_configured_number() {
    let dir = tempfile::tempdir().unwrap();
    let message = ensemble(dir.path(), Some("7"), "").unwrap_err().to_string();
    assert!(
        message.contains("says 7, but there is no server.7 line (configured ids: 1, 2, 3)"),
        "{message}"
    );

    // Debian ships a placeholder myid; say what is wrong with it.
    let placeholder = "replace this text with the cluster-unique zookeeper's instance id (1-255)";
    let message = ensemble(dir.path(), Some(placeholder), "")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("which is not a server id (1-255)"),
        "{message}"
    );
    assert!(message.contains("echo 1 >"), "{message}");

    for bad in ["", "0", "256", "-1", "1.5"] {
        assert!(
            ensemble(dir.path(), Some(bad), "").is_err(),
            "myid {bad:?} accepted"
        );
    }
    assert_eq!(
        ensemble(dir.path(), Some("  3  \n"), "").unwrap().my_id,
        Some(3)
    );
}

#[test]
fn ensemble_requires_init_and_sync_limits() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("myid"), "1").unwrap();
    let servers = "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n";
    let base = format!(
        "tickTime=2000\ndataDir={}\nclientPort=2181\n{servers}",
        dir.path().display()
    );
    let message = parse_in(dir.path(), &format!("{base}syncLimit=5\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("initLimit is not set; an ensemble needs it: add initLimit=10"),
        "{message}"
    );
    let message = parse_in(dir.path(), &format!("{base}initLimit=10\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("syncLimit is not set; an ensemble needs it: add syncLimit=5"),
        "{message}"
    );
}

#[test]
fn duplicate_server_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let message = ensemble(dir.path(), Some("1"), "server.3=zk4:2888:3888\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("server id 3 is defined twice (line 8: server.3=zk3:2888:3888; line 9: server.3=zk4:2888:3888)"), "{message}");
    // Different spellings of the same number are the same id.
    let message = ensemble(dir.path(), Some("1"), "server.03=zk4:2888:3888\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("server id 3 is defined twice"),
        "{message}"
    );
}

#[test]
fn bad_server_lines_fail_the_whole_config() {
    let dir = tempfile::tempdir().unwrap();
    let message = ensemble(dir.path(), Some("1"), "server.4=zk4:2888\n")
        .unwrap_err()
        .to_string();
    assert!(
        message
            .starts_with("server.4=zk4:2888: the election port is missing; write it as server.N="),
        "{message}"
    );
    let message = ensemble(dir.path(), Some("1"), "server.300=zk4:2888:3888\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("server id 300 is out of range"),
        "{message}"
    );
    let message = ensemble(
        dir.path(),
        Some("1"),
        "extendedTypesEnabled=true\nserver.255=zk4:2888:3888\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("reserved when extendedTypesEnabled=true"),
        "{message}"
    );
}

#[test]
fn even_and_two_member_ensembles_warn() {
    let dir = tempfile::tempdir().unwrap();
    let config = ensemble(dir.path(), Some("1"), "server.4=zk4:2888:3888\n").unwrap();
    assert!(
        config.warnings.iter().any(|w| w.contains("4 participants")),
        "{:?}",
        config.warnings
    );
    let config = ensemble(dir.path(), Some("1"), "server.4=zk4:2888:3888:observer\n").unwrap();
    assert!(
        config.warnings.is_empty(),
        "observers do not count: {:?}",
        config.warnings
    );
    assert_eq!(config.participants().count(), 3);
}

#[test]
fn single_server_line_runs_standalone_unless_standalone_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "tickTime=2000\ndataDir={}\nclientPort=2181\nserver.1=localhost:2888:3888\n",
        dir.path().display()
    );
    let config = parse_in(dir.path(), &base).unwrap();
    assert!(config.is_standalone());
    assert!(config.warnings[0].contains("only one server.N line: running standalone"));

    let message = parse_in(
        dir.path(),
        &format!("{base}standaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("myid file"),
        "a one-member ensemble still needs myid: {message}"
    );
    fs::write(dir.path().join("myid"), "1").unwrap();
    let config = parse_in(
        dir.path(),
        &format!("{base}standaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n"),
    )
    .unwrap();
    assert!(!config.is_standalone());

    let message = parse_in(
        dir.path(),
        &format!("{base}server.2=localhost:2889:3889:observer\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("observers without a quorum"), "{message}");
}

#[test]
fn client_port_can_come_from_the_server_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("myid"), "2").unwrap();
    let text = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
         server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;127.0.0.2:2182\nserver.3=127.0.0.1:2890:3890;2183\n",
        dir.path().display()
    );
    let config = parse_in(dir.path(), &text).unwrap();
    assert_eq!(config.client_port, 2182);
    assert_eq!(config.client_bind_address(), "127.0.0.2:2182");

    let message = parse_in(dir.path(), &format!("{text}clientPort=2999\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("clientPort=2999 conflicts with server.2=...;2182"),
        "{message}"
    );
}

#[test]
fn dynamic_config_file_holds_the_server_lines() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("myid"), "1").unwrap();
    fs::write(
        dir.path().join("zoo.cfg.dynamic.100000000"),
        "server.1=a:2888:3888;2181\nserver.2=b:2888:3888;2181\nserver.3=c:2888:3888;2181\nversion=100000000\n",
    )
    .unwrap();
    let base = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n",
        dir.path().display()
    );
    let config = parse_in(
        dir.path(),
        &format!("{base}dynamicConfigFile=./zoo.cfg.dynamic.100000000\n"),
    )
    .unwrap();
    assert_eq!(config.servers.len(), 3);
    assert_eq!(config.client_port, 2181);

    let message = parse_in(
        dir.path(),
        &format!("{base}dynamicConfigFile=./zoo.cfg.dynamic.100000000\nserver.9=x:1:2\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("must be in the dynamic config file"),
        "{message}"
    );
    let message = parse_in(dir.path(), &format!("{base}dynamicConfigFile=./missing\n"))
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("dynamicConfigFile="), "{message}");
}

#[test]
fn peer_type_mismatch_warns() {
    let dir = tempfile::tempdir().unwrap();
    let config = ensemble(dir.path(), Some("1"), "peerType=observer\n").unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("peerType=observer does not match server.1")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn whitelist_warns_about_unknown_words_and_always_allows_srvr() {
    let config = parse(&minimal("4lw.commands.whitelist=ruok, bogus\n")).unwrap();
    assert!(!config.four_letter_words.allows("bogus"));
    assert!(config.four_letter_words.allows("ruok"));
    assert!(!config.four_letter_words.allows("mntr"));
    // As in ZooKeeper, whose zkServer.sh status depends on it.
    assert!(config.four_letter_words.allows("srvr"));
    let warnings = config.warnings.join("\n");
    assert!(
        warnings.contains("\"bogus\" is not a four-letter word"),
        "{warnings}"
    );
    assert_eq!(config.warnings.len(), 1, "{warnings}");
    let empty = parse(&minimal("4lw.commands.whitelist=\n")).unwrap();
    assert!(empty.four_letter_words.allows("srvr"));
    assert!(!empty.four_letter_words.allows("ruok"));
}

#[test]
fn rzk_sample_config_parses_without_warnings() {
    let config = parse(include_str!("../../../conf/zoo_sample.cfg")).unwrap();
    assert_eq!((config.tick_time_ms, config.client_port), (2000, 2181));
    assert!(config.is_standalone());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
