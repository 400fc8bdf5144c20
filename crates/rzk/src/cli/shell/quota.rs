//! zkCli's quota commands, `setquota`, `listquota` and `delquota`: they keep a quota as two
//! znodes under `/zookeeper/quota<path>/` (`zookeeper_limits`, `zookeeper_stats`) whose data is
//! a `StatsTrack` text. The server is what counts and enforces; the CLI only writes limits
//! and reads both back, with zkCli's checks, messages and streams.

use std::collections::BTreeMap;

use rzk_client::{Client, ClientError, CreateMode, ErrorCode};

use super::{client_failure, open_acl, parse_java_int, usage_of, CommandResult, Failure, Shell};
use crate::cli::format::{parse_options, validate_path, Options};

const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";
const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTES_HARD: &str = "byteHardLimit";

/// The option group of `setquota` and `delquota`, with commons-cli's descriptions (they
/// show in the "Missing required option" message).
const QUOTA_OPTIONS: [(char, &str); 4] = [
    ('n', "num soft quota"),
    ('b', "bytes soft quota"),
    ('N', "num hard quota"),
    ('B', "bytes hard quota"),
];

/// `StatsTrack`: named numbers, written as `count=C,bytes=B` and, when there are others,
/// `=` and `;name=value` for each of them in name order.
#[derive(Default)]
struct StatsTrack(BTreeMap<String, i64>);

impl StatsTrack {
    /// Parses `count=1,bytes=2=;byteHardLimit=3`: pairs split at runs of `,` and `;`, each
    /// at `=`; an empty value is -1. A malformed pair is skipped (zkCli throws there).
    fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut stats = StatsTrack::default();
        for pair in text.split([',', ';']).filter(|pair| !pair.is_empty()) {
            let mut parts = pair.split('=');
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = if value.is_empty() { "-1" } else { value };
            if let Ok(value) = value.parse() {
                stats.0.insert(key.to_owned(), value);
            }
        }
        stats
    }

    fn get(&self, key: &str) -> i64 {
        self.0.get(key).copied().unwrap_or(-1)
    }

    fn set(&mut self, key: &str, value: i64) {
        self.0.insert(key.to_owned(), value);
    }

    fn text(&self) -> String {
        let mut text = format!("count={},bytes={}", self.get(COUNT), self.get(BYTES));
        let mut others = self
            .0
            .iter()
            .filter(|(key, _)| *key != COUNT && *key != BYTES)
            .peekable();
        if others.peek().is_some() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text
    }
}

/// What ends a quota command early: an invalid path (Java's `IllegalArgumentException`,
/// printed as its message) or a failed request.
enum QuotaError {
    Illegal(String),
    Client(ClientError, String),
}

impl QuotaError {
    fn failure(self) -> Failure {
        match self {
            QuotaError::Illegal(message) => Failure::new(message),
            QuotaError::Client(error, path) => client_failure(error, &path),
        }
    }
}

type QuotaResult<T> = Result<T, QuotaError>;

fn checked(path: &str) -> QuotaResult<()> {
    validate_path(path).map_err(QuotaError::Illegal)
}

fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

/// The option group's rules on top of the parsed options: commons-cli refuses a second,
/// different member of the group, and (for `setquota`) a command without any member.
fn check_group(options: &Options, required: bool) -> Result<(), Failure> {
    let mut selected: Option<char> = None;
    for &option in &options.order {
        match selected {
            Some(first) if first != option => {
                return Err(Failure::new(format!(
                    "org.apache.commons.cli.AlreadySelectedException: The option '{option}' was specified but an option from this group has already been selected: '{first}'"
                )))
            }
            _ => selected = Some(option),
        }
    }
    if required && selected.is_none() {
        let members: Vec<String> = QUOTA_OPTIONS
            .iter()
            .map(|(option, description)| format!("-{option} {description}"))
            .collect();
        return Err(Failure::new(format!(
            "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
            members.join(", ")
        )));
    }
    Ok(())
}

/// `setquota` (options with a value, one of them required) and `delquota` (flags): the
/// options, then the path.
fn parse_quota_command(
    command: &str,
    words: &[String],
    setting: bool,
) -> Result<(Options, String), Failure> {
    let spec: Vec<(char, bool)> = QUOTA_OPTIONS
        .iter()
        .map(|(option, _)| (*option, setting))
        .collect();
    let options = parse_options(&spec, words).map_err(Failure::new)?;
    check_group(&options, setting)?;
    match options.args.get(1).cloned() {
        Some(path) => Ok((options, path)),
        None => Err(Failure::new(usage_of(command))),
    }
}

impl Shell {
    fn quota_call<T>(
        &mut self,
        path: &str,
        future: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> QuotaResult<T> {
        checked(path)?;
        self.call(future)
            .map_err(|error| QuotaError::Client(error, path.to_owned()))
    }

    /// `create` that accepts an existing node.
    fn quota_create(
        &mut self,
        client: &Client,
        path: &str,
        data: Option<&[u8]>,
    ) -> QuotaResult<()> {
        match self.quota_call(
            path,
            client.create(path, data, &open_acl(), CreateMode::Persistent),
        ) {
            Ok(_) | Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NodeExists), _)) => {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// A limits or stats node; unlike the nodes above them, it must not exist yet.
    fn create_stats_node(
        &mut self,
        client: &Client,
        path: &str,
        stats: &StatsTrack,
    ) -> QuotaResult<()> {
        let (text, acl) = (stats.text(), open_acl());
        let create = client.create(path, Some(text.as_bytes()), &acl, CreateMode::Persistent);
        self.quota_call(path, create).map(drop)
    }

    fn quota_read(&mut self, client: &Client, path: &str) -> QuotaResult<StatsTrack> {
        let (data, _) = self.quota_call(path, client.get_data(path, false))?;
        Ok(StatsTrack::parse(&data.unwrap_or_default()))
    }

    pub(super) fn set_quota(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let (options, path) = parse_quota_command("setquota", words, true)?;
        if path.starts_with(QUOTA_ROOT) {
            self.print_err(&format!("cannot set a quota under the path: {QUOTA_ROOT}"));
            return Ok(());
        }
        let mut quota = StatsTrack::default();
        for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            quota.set(key, -1);
        }
        for (option, key, minimum, message) in [
            ('n', COUNT, 1, "the num quota must be greater than zero"),
            (
                'b',
                BYTES,
                0,
                "the bytes quota must be greater than or equal to zero",
            ),
            (
                'N',
                COUNT_HARD,
                1,
                "the num quota must be greater than zero",
            ),
            (
                'B',
                BYTES_HARD,
                0,
                "the bytes quota must be greater than or equal to zero",
            ),
        ] {
            let Some(text) = options.value(option) else {
                continue;
            };
            // Integer.parseInt for the counts, Long.parseLong for the bytes.
            let value = if minimum == 1 {
                parse_java_int(text).ok().map(i64::from)
            } else {
                text.parse::<i64>().ok()
            };
            let Some(value) = value else {
                self.print_err("NumberFormatException happens when parsing the option value");
                return Ok(());
            };
            if value < minimum {
                self.print_err(message);
                return Ok(());
            }
            quota.set(key, value);
        }
        self.create_quota(client, &path, &quota)
            .map_err(QuotaError::failure)
    }

    /// `SetQuotaCommand.createQuota`.
    fn create_quota(&mut self, client: &Client, path: &str, quota: &StatsTrack) -> QuotaResult<()> {
        if self.quota_call(path, client.exists(path, false))?.is_none() {
            return Err(QuotaError::Illegal(format!("{path} does not exist.")));
        }
        self.check_no_child_quota(client, path)?;
        self.check_no_parent_quota(client, path)?;
        if self
            .quota_call(QUOTA_ROOT, client.exists(QUOTA_ROOT, false))?
            .is_none()
        {
            self.quota_create(client, "/zookeeper", None)?;
            self.quota_create(client, QUOTA_ROOT, None)?;
        }
        let mut node = QUOTA_ROOT.to_owned();
        for component in path.split('/').skip(1) {
            node = format!("{node}/{component}");
            if self
                .quota_call(&node, client.exists(&node, false))?
                .is_none()
            {
                self.quota_create(client, &node, None)?;
            }
        }
        let (limits, stats) = (limit_path(path), stat_path(path));
        if self
            .quota_call(&limits, client.exists(&limits, false))?
            .is_none()
        {
            self.create_stats_node(client, &limits, quota)?;
            let mut zero = StatsTrack::default();
            zero.set(COUNT, 0);
            zero.set(BYTES, 0);
            self.create_stats_node(client, &stats, &zero)?;
            let current_limits = self.quota_read(client, &limits)?;
            let current_stats = self.quota_read(client, &stats)?;
            self.warn_below_usage(&current_limits, &current_stats);
        } else {
            let mut current = self.quota_read(client, &limits)?;
            for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
                if quota.get(key) > -1 {
                    current.set(key, quota.get(key));
                }
            }
            let current_stats = self.quota_read(client, &stats)?;
            self.warn_below_usage(&current, &current_stats);
            let text = current.text();
            self.quota_call(&limits, client.set_data(&limits, Some(text.as_bytes()), -1))?;
        }
        Ok(())
    }

    /// `SetQuotaCommand.checkQuota`: printed on standard output, as zkCli's `System.out`.
    fn warn_below_usage(&mut self, limits: &StatsTrack, stats: &StatsTrack) {
        let below = |soft: &str, hard: &str, used: i64| {
            let (soft, hard) = (limits.get(soft), limits.get(hard));
            (soft > -1 && soft < used) || (hard > -1 && hard < used)
        };
        if below(COUNT, COUNT_HARD, stats.get(COUNT)) {
            self.print_line(&format!(
                "[Warning]: the count quota you create is less than the existing count:{}",
                stats.get(COUNT)
            ));
        }
        if below(BYTES, BYTES_HARD, stats.get(BYTES)) {
            self.print_line(&format!(
                "[Warning]: the bytes quota you create is less than the existing bytes:{}",
                stats.get(BYTES)
            ));
        }
    }

    /// No quota may sit below `path`: walks `/zookeeper/quota<path>` in zkCli's order
    /// (`ZKUtil.visitSubTreeDFS`) and objects to the first node with a limits child.
    fn check_no_child_quota(&mut self, client: &Client, path: &str) -> QuotaResult<()> {
        let root = format!("{QUOTA_ROOT}{path}");
        match self.quota_call(&root, client.get_data(&root, false)) {
            Ok(_) => {}
            Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NoNode), _)) => return Ok(()),
            Err(error) => return Err(error),
        }
        let mut order = vec![root.clone()];
        self.quota_subtree(client, &root, &mut order)?;
        for node in order {
            // zkCli skips a node it cannot list (printing a stack trace for other errors).
            let Ok(children) = self.quota_call(&node, client.get_children(&node, false)) else {
                continue;
            };
            if node != root && children.iter().any(|child| child == LIMIT_NODE) {
                return Err(QuotaError::Illegal(format!(
                    "{path} has a child {} which has a quota",
                    &node[QUOTA_ROOT.len()..]
                )));
            }
        }
        Ok(())
    }

    /// The nodes below `node` in `ZKUtil.visitSubTreeDFS` order: a node's sorted children
    /// one after another, then each child's subtree in turn.
    fn quota_subtree(
        &mut self,
        client: &Client,
        node: &str,
        order: &mut Vec<String>,
    ) -> QuotaResult<()> {
        let mut children = match self.quota_call(node, client.get_children(node, false)) {
            Ok(children) => children,
            // Listed, then deleted before it could be read.
            Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NoNode), _)) => return Ok(()),
            Err(error) => return Err(error),
        };
        children.sort();
        let first = order.len();
        order.extend(children.iter().map(|child| format!("{node}/{child}")));
        for index in first..first + children.len() {
            let child = order[index].clone();
            self.quota_subtree(client, &child, order)?;
        }
        Ok(())
    }

    /// No quota may sit on a proper ancestor of `path`.
    fn check_no_parent_quota(&mut self, client: &Client, path: &str) -> QuotaResult<()> {
        let components: Vec<&str> = path.split('/').skip(1).collect();
        let mut node = QUOTA_ROOT.to_owned();
        for component in components.iter().take(components.len().saturating_sub(1)) {
            node = format!("{node}/{component}");
            let children = match self.quota_call(&node, client.get_children(&node, false)) {
                Ok(children) => children,
                Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NoNode), _)) => return Ok(()),
                Err(error) => return Err(error),
            };
            if children.iter().any(|child| child == LIMIT_NODE) {
                return Err(QuotaError::Illegal(format!(
                    "{path} has a parent {} which has a quota",
                    &node[QUOTA_ROOT.len()..]
                )));
            }
            if children.is_empty() {
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) fn list_quota(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("listquota")));
        }
        let path = options.args[1].clone();
        let limits = limit_path(&path);
        self.print_err(&format!("absolute path is {limits}"));
        let read = self
            .quota_read(client, &limits)
            .and_then(|quota| Ok((quota, self.quota_read(client, &stat_path(&path))?)));
        match read {
            Ok((quota, stats)) => {
                self.print_line(&format!("Output quota for {path} {}", quota.text()));
                self.print_line(&format!("Output stat for {path} {}", stats.text()));
                Ok(())
            }
            Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NoNode), _)) => {
                self.print_err(&format!("quota for {path} does not exist."));
                Ok(())
            }
            Err(error) => Err(error.failure()),
        }
    }

    pub(super) fn del_quota(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let (options, path) = parse_quota_command("delquota", words, false)?;
        let chosen = QUOTA_OPTIONS
            .iter()
            .zip([COUNT, BYTES, COUNT_HARD, BYTES_HARD])
            .find(|((option, _), _)| options.has(*option))
            .map(|(_, key)| key);
        match self.delete_quota(client, &path, chosen) {
            Ok(()) => Ok(()),
            Err(QuotaError::Client(ClientError::Keeper(ErrorCode::NoNode), _)) => {
                self.print_err(&format!("quota for {path} does not exist."));
                Ok(())
            }
            Err(error) => Err(error.failure()),
        }
    }

    /// `DelQuotaCommand.delQuota`: one limit reset to -1, or (`None`) the whole quota
    /// removed and the emptied quota nodes above it trimmed.
    fn delete_quota(
        &mut self,
        client: &Client,
        path: &str,
        limit: Option<&str>,
    ) -> QuotaResult<()> {
        let limits = limit_path(path);
        if self
            .quota_call(&limits, client.exists(&limits, false))?
            .is_none()
        {
            self.print_line(&format!("Quota does not exist for {path}"));
            return Ok(());
        }
        let mut quota = self.quota_read(client, &limits)?;
        let Some(limit) = limit else {
            let parent = format!("{QUOTA_ROOT}{path}");
            for child in self.quota_call(&parent, client.get_children(&parent, false))? {
                let node = format!("{parent}/{child}");
                self.quota_call(&node, client.delete(&node, -1))?;
            }
            let mut node = parent;
            while node != QUOTA_ROOT {
                if !self
                    .quota_call(&node, client.get_children(&node, false))?
                    .is_empty()
                {
                    break;
                }
                self.quota_call(&node, client.delete(&node, -1))?;
                node.truncate(node.rfind('/').unwrap_or(0));
            }
            return Ok(());
        };
        quota.set(limit, -1);
        let text = quota.text();
        self.quota_call(&limits, client.set_data(&limits, Some(text.as_bytes()), -1))?;
        Ok(())
    }
}
