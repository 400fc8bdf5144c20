//! `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]` lines.

use crate::error::ConfigError;

/// Highest server id rzk accepts. The top byte of a session id is the server id, so it must fit a byte; with
/// extended types (TTL nodes) 255 is reserved as a marker, so the limit drops to 254.
pub const SERVER_ID_MAX: u64 = 255;
/// Highest server id when `extendedTypesEnabled=true` (ZooKeeper's `EphemeralType.MAX_EXTENDED_SERVER_ID`).
pub const SERVER_ID_MAX_EXTENDED_TYPES: u64 = 254;

/// Whether a member votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Votes in elections and counts towards the write quorum (the default).
    Participant,
    /// Follows the leader's log and serves clients, but does not vote.
    Observer,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The `N` of `server.N`.
    pub id: u64,
    /// Host name or address peers use to reach this member (IPv6 without brackets).
    pub host: String,
    /// Port followers use to talk to the leader (2888 in ZooKeeper's examples).
    pub quorum_port: u16,
    /// Port used for leader election (3888 in ZooKeeper's examples).
    pub election_port: u16,
    pub role: PeerRole,
    /// The `;[address:]port` part, when given. Address is `None` when only a port was written.
    pub client_address: Option<String>,
    pub client_port: Option<u16>,
    /// Line in the file where it was defined (for messages).
    pub line: usize,
}

const SERVER_LINE_FIX: &str =
    "write it as server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort], e.g. server.1=zk1.example.com:2888:3888;2181";

/// Parses the id out of a `server.N` key.
pub(crate) fn parse_server_id(
    key: &str,
    value: &str,
    extended_types: bool,
) -> Result<u64, ConfigError> {
    let digits = &key["server.".len()..];
    let max = if extended_types {
        SERVER_ID_MAX_EXTENDED_TYPES
    } else {
        SERVER_ID_MAX
    };
    let id: u64 = digits.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            value,
            format!("\"{digits}\" is not a server id"),
            format!("use a number from 1 to {max} after \"server.\", e.g. server.1"),
        )
    })?;
    if id == 0 || id > max {
        let reason = if extended_types && id == SERVER_ID_MAX {
            "server id 255 is reserved when extendedTypesEnabled=true".to_string()
        } else {
            format!("server id {id} is out of range")
        };
        return Err(ConfigError::invalid(
            key,
            value,
            reason,
            format!("use a number from 1 to {max} (it also goes in that server's dataDir/myid)"),
        ));
    }
    Ok(id)
}

/// Parses the value of a `server.N` line.
pub(crate) fn parse_server_line(
    key: &str,
    value: &str,
    id: u64,
    line: usize,
) -> Result<ServerSpec, ConfigError> {
    let bad = |problem: String| ConfigError::invalid(key, value, problem, SERVER_LINE_FIX);

    if value.contains('|') {
        return Err(ConfigError::invalid(
            key,
            value,
            "several addresses joined with '|' (multiAddress) are not supported by rzk",
            "give one host:quorumPort:electionPort per server",
        ));
    }
    let (peer_part, client_part) = match value.split_once(';') {
        Some((peer, client)) => (peer, Some(client.trim())),
        None => (value, None),
    };
    let (host, rest) = split_host(peer_part.trim()).map_err(&bad)?;
    let fields: Vec<&str> = rest.split(':').map(str::trim).collect();
    let (quorum_text, election_text, role_text) = match fields.as_slice() {
        [quorum, election] => (*quorum, *election, None),
        [quorum, election, role] => (*quorum, *election, Some(*role)),
        [_] => return Err(bad("the election port is missing".to_string())),
        _ => {
            return Err(bad(format!(
                "expected host:quorumPort:electionPort, found {} ':'-separated fields",
                fields.len() + 1
            )))
        }
    };
    let quorum_port = parse_port_field(quorum_text).ok_or_else(|| {
        bad(format!(
            "quorum port \"{quorum_text}\" is not a port number (1-65535)"
        ))
    })?;
    let election_port = parse_port_field(election_text).ok_or_else(|| {
        bad(format!(
            "election port \"{election_text}\" is not a port number (1-65535)"
        ))
    })?;
    if quorum_port == election_port {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("quorum port and election port are both {quorum_port}"),
            "use two different ports, e.g. 2888 and 3888",
        ));
    }
    let role = match role_text.map(str::to_ascii_lowercase).as_deref() {
        None | Some("participant") => PeerRole::Participant,
        Some("observer") => PeerRole::Observer,
        Some(other) => {
            return Err(bad(format!(
                "\"{other}\" is not a peer type (participant or observer)"
            )))
        }
    };
    let (client_address, client_port) = match client_part {
        None | Some("") => (None, None),
        Some(client) => parse_client_part(client).ok_or_else(|| {
            ConfigError::invalid(
                key,
                value,
                format!("client part \"{client}\" is not [address:]port"),
                "end the line with ;2181 or ;0.0.0.0:2181",
            )
        })?,
    };
    Ok(ServerSpec {
        id,
        host: host.to_string(),
        quorum_port,
        election_port,
        role,
        client_address,
        client_port,
        line,
    })
}

/// Splits `host:rest` or `[v6]:rest`.
fn split_host(text: &str) -> Result<(&str, &str), String> {
    if let Some(after_bracket) = text.strip_prefix('[') {
        let (host, rest) = after_bracket
            .split_once(']')
            .ok_or_else(|| "an IPv6 address misses its closing ']'".to_string())?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| "expected ':' after the bracketed address".to_string())?;
        return Ok((host, rest));
    }
    match text.split_once(':') {
        Some((host, rest)) if !host.is_empty() => Ok((host, rest)),
        _ => Err("the host is missing".to_string()),
    }
}

fn parse_client_part(text: &str) -> Option<(Option<String>, Option<u16>)> {
    if text.starts_with('[') {
        let (host, port) = split_host(text).ok()?;
        return Some((Some(host.to_string()), Some(parse_port_field(port)?)));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Some((Some(host.to_string()), Some(parse_port_field(port)?)))
        }
        Some(_) => None,
        None => Some((None, Some(parse_port_field(text)?))),
    }
}

/// A port number 1-65535 written in decimal.
pub(crate) fn parse_port_field(text: &str) -> Option<u16> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<ServerSpec, ConfigError> {
        parse_server_line("server.1", value, 1, 1)
    }

    #[test]
    fn plain_line() {
        let spec = parse("192.168.66.100:2888:3888").unwrap();
        assert_eq!(spec.host, "192.168.66.100");
        assert_eq!((spec.quorum_port, spec.election_port), (2888, 3888));
        assert_eq!(spec.role, PeerRole::Participant);
        assert_eq!((spec.client_address, spec.client_port), (None, None));
    }

    #[test]
    fn role_and_client_parts() {
        let spec = parse("zk1:2888:3888:Observer;0.0.0.0:2181").unwrap();
        assert_eq!(spec.role, PeerRole::Observer);
        assert_eq!(spec.client_address.as_deref(), Some("0.0.0.0"));
        assert_eq!(spec.client_port, Some(2181));
        let spec = parse("zk1:2888:3888:participant;2182").unwrap();
        assert_eq!((spec.client_address, spec.client_port), (None, Some(2182)));
        let spec = parse("[::1]:2888:3888;[::1]:2181").unwrap();
        assert_eq!(spec.host, "::1");
        assert_eq!(spec.client_address.as_deref(), Some("::1"));
    }

    #[test]
    fn bad_lines_name_the_problem() {
        let cases = [
            ("zk1:2888", "election port is missing"),
            ("zk1:28x8:3888", "quorum port \"28x8\""),
            ("zk1:2888:70000", "election port \"70000\""),
            ("zk1:2888:3888:voter", "\"voter\" is not a peer type"),
            ("zk1:2888:2888", "both 2888"),
            (":2888:3888", "host is missing"),
            ("a:1:2|b:1:2", "multiAddress"),
            ("zk1:2888:3888;abc", "client part \"abc\""),
            ("zk1:2888:3888:observer:extra", "found 5"),
        ];
        for (value, expected) in cases {
            let message = parse(value).unwrap_err().to_string();
            assert!(message.contains(expected), "{value}: {message}");
            assert!(
                message.starts_with(&format!("server.1={value}: ")),
                "{message}"
            );
        }
    }

    #[test]
    fn server_ids_are_bounded() {
        assert_eq!(parse_server_id("server.7", "", false).unwrap(), 7);
        assert_eq!(parse_server_id("server.255", "", false).unwrap(), 255);
        for key in ["server.0", "server.256", "server.x", "server.", "server.-1"] {
            let message = parse_server_id(key, "h:1:2", false)
                .unwrap_err()
                .to_string();
            assert!(message.contains("1 to 255"), "{message}");
        }
        let message = parse_server_id("server.255", "h:1:2", true)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("reserved when extendedTypesEnabled"),
            "{message}"
        );
    }
}
