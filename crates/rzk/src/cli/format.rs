//! zkCli's exact text: command-line splitting, option parsing (commons-cli's DefaultParser
//! subset zkCli uses), path checks, error messages, the stat block and Java's `Date.toString`.
//! Every string here was checked against Debian's zkCli.sh 3.8.0.

use std::collections::HashMap;
use std::fmt::Write as _;

use rzk_client::{Acl, ErrorCode, Id, Stat};
use rzk_server::java_date::java_date;

/// Split a line as `ZooKeeperMain.MyCommandOptions.parseCommand` does: words separated by
/// whitespace; a word that starts with a quote runs to the same quote and loses both quotes.
pub fn split_command_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_java_space(chars[i]) {
            i += 1;
            continue;
        }
        let quote = chars[i];
        if quote == '"' || quote == '\'' {
            match chars[i + 1..].iter().position(|&c| c == quote) {
                Some(offset) => {
                    words.push(chars[i + 1..i + 1 + offset].iter().collect());
                    i += offset + 2;
                }
                // An unclosed quote matches nothing; the scan resumes after it.
                None => i += 1,
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !is_java_space(chars[i]) {
            i += 1;
        }
        words.push(chars[start..i].iter().collect());
    }
    words
}

/// Java's regex `\s`: space, tab, newline, vertical tab, form feed, carriage return.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Parsed options of one command: short option -> value (None for flags), and the
/// remaining words (the command name first), as commons-cli's `CommandLine`.
#[derive(Debug, Default)]
pub struct Options {
    values: HashMap<char, Option<String>>,
    /// The options in the order they were given (repeats included), for commons-cli's
    /// option groups, which object to the second member given.
    pub order: Vec<char>,
    pub args: Vec<String>,
}

impl Options {
    pub fn has(&self, option: char) -> bool {
        self.values.contains_key(&option)
    }

    pub fn value(&self, option: char) -> Option<&str> {
        self.values.get(&option).and_then(|value| value.as_deref())
    }

    /// A repeated option keeps its first value, as commons-cli's `getOptionValue`.
    fn set(&mut self, option: char, value: Option<String>) {
        self.values.entry(option).or_insert(value);
        self.order.push(option);
    }
}

/// Parse `words` against `spec` (option letter, takes a value) like commons-cli's
/// DefaultParser: flags may be clustered (`-sw`), a value may be attached (`-v5`) or follow,
/// `--` ends the options, and anything else starting with `-` is an unrecognized option.
/// Errors are the Java exception's `toString()`, which zkCli prints.
pub fn parse_options(spec: &[(char, bool)], words: &[String]) -> Result<Options, String> {
    let takes_value = |c: char| spec.iter().find(|(o, _)| *o == c).map(|(_, v)| *v);
    let mut options = Options::default();
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        if word == "--" {
            options.args.extend(iter.by_ref().cloned());
            break;
        }
        if !word.starts_with('-') || word == "-" {
            options.args.push(word.clone());
            continue;
        }
        let body: Vec<char> = word[1..].chars().collect();
        let unrecognized = || {
            format!(
                "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {word}"
            )
        };
        let Some(first_takes_value) = takes_value(body[0]) else {
            return Err(unrecognized());
        };
        if body.len() == 1 {
            if first_takes_value {
                // A following word that is itself an option does not count as the value.
                let value = match iter.peek() {
                    Some(next) if !is_option(next, &takes_value) => iter.next().cloned(),
                    _ => None,
                };
                let Some(value) = value else {
                    return Err(format!(
                        "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {}",
                        body[0]
                    ));
                };
                options.set(body[0], Some(value));
            } else {
                options.set(body[0], None);
            }
            continue;
        }
        if first_takes_value {
            options.set(body[0], Some(body[1..].iter().collect()));
            continue;
        }
        // A cluster of flags; a letter that takes a value swallows the rest of the word.
        let mut index = 0;
        while index < body.len() {
            match takes_value(body[index]) {
                None => return Err(unrecognized()),
                Some(true) => {
                    let rest: String = body[index + 1..].iter().collect();
                    options.set(body[index], Some(rest));
                    break;
                }
                Some(false) => {
                    options.set(body[index], None);
                }
            }
            index += 1;
        }
    }
    Ok(options)
}

fn is_option(word: &str, takes_value: &impl Fn(char) -> Option<bool>) -> bool {
    word.starts_with('-')
        && word.len() > 1
        && word[1..].chars().next().and_then(takes_value).is_some()
}

/// `PathUtils.validatePath`: the `IllegalArgumentException` message zkCli prints.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".to_owned());
    }
    let chars: Vec<char> = path.chars().collect();
    if chars[0] != '/' {
        return Err("Path must start with / character".to_owned());
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == '/' {
        return Err("Path must not end with / character".to_owned());
    }
    let mut reason = None;
    let mut last = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        let at_end_or_slash = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            if chars[i - 2] == '/' && at_end_or_slash {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && at_end_or_slash {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        last = c;
    }
    match reason {
        Some(reason) => Err(format!("Invalid path string \"{path}\" caused by {reason}")),
        None => Ok(()),
    }
}

/// `KeeperException.getCodeMessage`.
fn code_message(code: ErrorCode) -> String {
    let text = match code {
        ErrorCode::SystemError => "SystemError",
        ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
        ErrorCode::DataInconsistency => "DataInconsistency",
        ErrorCode::ConnectionLoss => "ConnectionLoss",
        ErrorCode::MarshallingError => "MarshallingError",
        ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
        ErrorCode::ReconfigInProgress => "ReconfigInProgress",
        ErrorCode::Unimplemented => "Unimplemented",
        ErrorCode::OperationTimeout => "OperationTimeout",
        ErrorCode::BadArguments => "BadArguments",
        ErrorCode::ApiError => "APIError",
        ErrorCode::NoNode => "NoNode",
        ErrorCode::NoAuth => "NoAuth",
        ErrorCode::BadVersion => "BadVersion",
        ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        ErrorCode::NodeExists => "NodeExists",
        ErrorCode::InvalidAcl => "InvalidACL",
        ErrorCode::AuthFailed => "AuthFailed",
        ErrorCode::NotEmpty => "Directory not empty",
        ErrorCode::SessionExpired => "Session expired",
        ErrorCode::InvalidCallback => "Invalid callback",
        ErrorCode::SessionMoved => "Session moved",
        ErrorCode::NotReadOnly => "Not a read-only call",
        ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
        ErrorCode::NoWatcher => "No such watcher",
        ErrorCode::ReconfigDisabled => "Reconfig is disabled",
        ErrorCode::SessionClosedRequireSaslAuth => {
            "Session closed because client failed to authenticate"
        }
        ErrorCode::QuotaExceeded => "Quota has exceeded",
        ErrorCode::Throttled => "Op throttled due to high load",
        ErrorCode::UnknownSession => return "Unknown error UNKNOWNSESSION".to_owned(),
        ErrorCode::RequestTimeout => return "Unknown error REQUESTTIMEOUT".to_owned(),
    };
    text.to_owned()
}

/// `KeeperException.getMessage()`; `path` is None where Java's exception has no path.
pub fn keeper_message(code: ErrorCode, path: Option<&str>) -> String {
    match path {
        Some(path) if !path.is_empty() => {
            format!("KeeperErrorCode = {} for {path}", code_message(code))
        }
        _ => format!("KeeperErrorCode = {}", code_message(code)),
    }
}

/// `CliWrapperException`'s message for a KeeperException.
pub fn wrapper_message(code: ErrorCode, path: Option<&str>) -> String {
    let shown = path.unwrap_or("null");
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {shown}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {shown}"),
        ErrorCode::NodeExists => format!("Node already exists: {shown}"),
        ErrorCode::NotEmpty => format!("Node not empty: {shown}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {shown}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {shown}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {shown}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {shown}"),
        ErrorCode::BadVersion => format!("version No is not valid : {shown}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".to_owned()
        }
        ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced".to_owned(),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {shown}"),
        other => keeper_message(other, path),
    }
}

/// `StatPrinter.print`.
pub fn stat_block(stat: &Stat) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        text,
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid as u64,
        java_date(stat.ctime),
        stat.mzxid as u64,
        java_date(stat.mtime),
        stat.pzxid as u64,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner as u64,
        stat.data_length,
        stat.num_children
    );
    text
}

/// `ZKUtil.getPermString`: letters in the order c, d, r, w, a.
pub fn perm_string(perms: i32) -> String {
    use rzk_proto::codes::perms::{ADMIN, CREATE, DELETE, READ, WRITE};
    [
        (CREATE, 'c'),
        (DELETE, 'd'),
        (READ, 'r'),
        (WRITE, 'w'),
        (ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| perms & bit != 0)
    .map(|(_, letter)| letter)
    .collect()
}

/// The jute-generated `Id.toString()` (CSV archive): `'scheme,'id`, with CSV escapes.
pub fn id_string(id: &Id) -> String {
    // The CSV archive ends every record with a newline, so zkCli's getAcl prints the
    // permissions on the next line.
    format!("'{},'{}\n", csv_escape(&id.scheme), csv_escape(&id.id))
}

fn csv_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            other => out.push(other),
        }
    }
    out
}

/// `AclParser.parse`: `scheme:id:perms[,...]`; bad entries are reported on `warnings` and
/// skipped, exactly as zkCli does.
pub fn parse_acl(text: &str, warnings: &mut Vec<String>) -> Vec<Acl> {
    let mut acl = Vec::new();
    for entry in java_split(text, ',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut perms = 0;
        for c in entry[last + 1..].chars() {
            use rzk_proto::codes::perms::{ADMIN, CREATE, DELETE, READ, WRITE};
            match c {
                'r' => perms |= READ,
                'w' => perms |= WRITE,
                'c' => perms |= CREATE,
                'd' => perms |= DELETE,
                'a' => perms |= ADMIN,
                other => warnings.push(format!("Unknown perm type: {other}")),
            }
        }
        acl.push(Acl {
            perms,
            id: Id {
                scheme: entry[..first].to_owned(),
                id: entry[first + 1..last].to_owned(),
            },
        });
    }
    acl
}

/// Java's `String.split(sep)`: trailing empty strings are dropped.
fn java_split(text: &str, separator: char) -> Vec<&str> {
    let mut parts: Vec<&str> = text.split(separator).collect();
    while parts.len() > 1 && parts.last().is_some_and(|part| part.is_empty()) {
        parts.pop();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_command_line(line)
    }

    #[test]
    fn splits_like_zkcli() {
        assert_eq!(
            words("create /a/b \"hello world\""),
            ["create", "/a/b", "hello world"]
        );
        assert_eq!(words("  create /a/c 'x y'  "), ["create", "/a/c", "x y"]);
        assert_eq!(words("set /a x\"y"), ["set", "/a", "x\"y"]);
    }

    #[test]
    fn parses_options_like_commons_cli() {
        let spec = [('s', false), ('w', false), ('v', true)];
        let parsed = parse_options(&spec, &words("get -sw /p")).expect("cluster");
        assert!(parsed.has('s') && parsed.has('w'));
        assert_eq!(parsed.args, ["get", "/p"]);
        let parsed = parse_options(&spec, &words("set -v 3 /p d")).expect("value");
        assert_eq!(parsed.value('v'), Some("3"));
        assert_eq!(
            parse_options(&spec, &words("ls -x /")).err().as_deref(),
            Some("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x")
        );
        assert_eq!(
            parse_options(&[('t', true)], &words("create -t"))
                .err()
                .as_deref(),
            Some("org.apache.commons.cli.MissingArgumentException: Missing argument for option: t")
        );
    }

    #[test]
    fn validates_paths_like_pathutils() {
        assert_eq!(
            validate_path("relative"),
            Err("Path must start with / character".into())
        );
        assert_eq!(
            validate_path("/a/"),
            Err("Path must not end with / character".into())
        );
        assert_eq!(
            validate_path("/a//b"),
            Err("Invalid path string \"/a//b\" caused by empty node name specified @3".into())
        );
        assert_eq!(
            validate_path("/a/."),
            Err("Invalid path string \"/a/.\" caused by relative paths not allowed @3".into())
        );
        assert!(validate_path("/").is_ok() && validate_path("/a.b/..c").is_ok());
    }

    #[test]
    fn formats_acl_and_perms() {
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(1), "r");
        let id = Id {
            scheme: "world".into(),
            id: "anyone".into(),
        };
        assert_eq!(id_string(&id), "'world,'anyone\n");
        let mut warnings = Vec::new();
        assert!(parse_acl("bogus", &mut warnings).is_empty());
        assert_eq!(warnings, ["bogus does not have the form scheme:id:perm"]);
    }
}
