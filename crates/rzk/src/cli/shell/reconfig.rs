//! zkCli's `reconfig`: incremental (`-add`, `-remove`) or whole-membership (`-members`,
//! `-file`) reconfiguration, sent as one reconfig request; the server answers with the
//! committed configuration, or (reconfig disabled, standalone) an error.

use rzk_client::{Client, ClientError};
use rzk_proto::{ReconfigRequest, Request, Response};

use super::{usage_of, CommandResult, Failure, Shell};
use crate::cli::format::{keeper_message, parse_options, wrapper_message};

/// zkCli's multi-letter options (single dash) and the letters they stand for here, so that
/// the shared option parser can read them; no zkCli command has these letters.
const LONG_OPTIONS: [(&str, char); 4] = [
    ("file", 'F'),
    ("members", 'M'),
    ("add", 'A'),
    ("remove", 'R'),
];

impl Shell {
    pub(super) fn reconfig(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let words: Vec<String> = words
            .iter()
            .map(|word| {
                LONG_OPTIONS
                    .iter()
                    .find(|(name, _)| word.strip_prefix('-') == Some(name))
                    .map_or_else(|| word.clone(), |(_, letter)| format!("-{letter}"))
            })
            .collect();
        let mut spec = vec![('s', false), ('v', true)];
        spec.extend(LONG_OPTIONS.iter().map(|(_, letter)| (*letter, true)));
        let options = parse_options(&spec, &words).map_err(|message| {
            // Name a multi-letter option as the user wrote it.
            let message = LONG_OPTIONS
                .iter()
                .fold(message, |message, (name, letter)| {
                    message.replace(&format!("option: {letter}"), &format!("option: {name}"))
                });
            Failure::new(message)
        })?;
        let (file, members) = (options.value('F'), options.value('M'));
        let (add, remove) = (options.value('A'), options.value('R'));
        if file.is_none() && members.is_none() && add.is_none() && remove.is_none() {
            return Err(Failure::new(usage_of("reconfig")));
        }
        let version = match options.value('v') {
            Some(text) => i64::from_str_radix(text, 16).map_err(|_| {
                Failure::new("-v must be followed by a long (configuration version)")
            })?,
            None => -1,
        };
        if (file.is_some() || members.is_some()) && (add.is_some() || remove.is_some()) {
            return Err(Failure::new(
                "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)",
            ));
        }
        if file.is_some() && members.is_some() {
            return Err(Failure::new(
                "Can't use -file and -members together (conflicting non-incremental modes)",
            ));
        }
        if let Some(file) = file {
            // zkCli parses the file as a dynamic config (QuorumPeerConfig); rzk cli does not.
            return Err(Failure::new(match std::fs::metadata(file) {
                // FileNotFoundException's message, appended to the name as zkCli does.
                Err(error) => {
                    let text = error.to_string();
                    let reason = text.split(" (os error").next().unwrap_or(&text);
                    format!("Error processing {file}{file} ({reason})")
                }
                Ok(_) => format!(
                    "Error processing {file}: rzk cli cannot read a dynamic config file; pass its server lines with -members"
                ),
            }));
        }
        let request = Request::Reconfig(ReconfigRequest {
            joining_servers: add.map(str::to_lowercase),
            leaving_servers: remove.map(str::to_lowercase),
            new_members: members.map(str::to_lowercase),
            cur_config_id: version,
        });
        match self.call(client.request(request)) {
            Ok(Response::GetData { data, stat }) => {
                let config = String::from_utf8_lossy(&data.unwrap_or_default()).into_owned();
                self.print_line(&format!("Committed new configuration:\n{config}"));
                if options.has('s') {
                    self.print_stat(&stat);
                }
                Ok(())
            }
            Ok(other) => Err(Failure::new(format!(
                "reconfig: the server answered with {other:?}, not the new configuration"
            ))),
            Err(ClientError::Keeper(code)) => Err(Failure::new(wrapper_message(code, None))),
            Err(other) => Err(Failure::new(format!(
                "{} ({other})",
                keeper_message(rzk_client::ErrorCode::ConnectionLoss, None)
            ))),
        }
    }
}
