//! `rzk cli`: zkCli.sh with the same commands, output, streams and exit codes.
//!
//! # Layout
//! - this file: arguments, the one-shot / line-by-line / interactive entry points;
//! - [`shell`]: the command interpreter (`ZooKeeperMain.processZKCmd` and the `cli/*Command`s),
//!   with the quota commands and `reconfig` in its `quota` and `reconfig` submodules;
//! - [`format`](mod@format): the exact text (stat block, dates, errors, option and line parsing);
//! - [`repl`]: the interactive terminal (rustyline: history file, completion).
//!
//! Modes, as zkCli: command words after the options run that one command and exit with its
//! code (0, 1 on a KeeperException, 127 for an unknown command). Without command words,
//! standard input is read: on a terminal with line editing and a prompt, otherwise line by
//! line without a prompt, as Debian's zkCli does without JLine.

pub mod format;
pub mod repl;
pub mod shell;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// `rzk cli [-server host:port[,host:port...]] [-timeout ms] [-r] [command args...]`.
/// The options are zkCli's single-dash words, so they are parsed here rather than by clap.
#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct CliArgs {
    /// -server host:port[,host:port...] (default localhost:2181), -timeout ms (default
    /// 30000), then an optional command with its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub words: Vec<String>,
}

/// The parsed options (`ZooKeeperMain.MyCommandOptions.parseOptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub server: String,
    pub timeout_ms: u64,
    /// `-waitforconnection`: keep trying to reach a server for up to `timeout_ms`.
    pub wait_for_connection: bool,
    /// The command words, if any: run one command and exit.
    pub command: Vec<String>,
}

impl Options {
    pub fn parse(words: &[String]) -> Result<Options, String> {
        let mut options = Options {
            server: "localhost:2181".to_owned(),
            timeout_ms: 30_000,
            wait_for_connection: false,
            command: Vec::new(),
        };
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            let mut value = |name: &str| {
                iter.next()
                    .cloned()
                    .ok_or_else(|| format!("Error: no argument found for option {name}"))
            };
            match word.as_str() {
                "-server" | "--server" => options.server = value(word)?,
                "-timeout" | "--timeout" => {
                    let text = value(word)?;
                    options.timeout_ms = text.parse().map_err(|_| {
                        format!("-timeout {text:?} is not a number of milliseconds")
                    })?;
                }
                // Accepted for zkCli compatibility; rzk-client always asks for read-write.
                "-r" => {}
                "-waitforconnection" => options.wait_for_connection = true,
                "-client-configuration" => {
                    value(word)?;
                }
                other if !other.starts_with('-') => {
                    options.command = std::iter::once(other.to_owned())
                        .chain(iter.cloned())
                        .collect();
                    break;
                }
                _ => {}
            }
        }
        Ok(options)
    }
}

/// Entry point for `rzk cli`: returns the process exit code zkCli would.
pub fn run(args: CliArgs) -> ExitCode {
    let code = run_with(
        &args.words,
        std::io::stdin().lock(),
        std::io::stdin().is_terminal(),
        std::io::stdout(),
        std::io::stderr(),
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The whole CLI over explicit streams (tests drive it with byte buffers). `interactive`
/// selects the line editor; it is used only when `input` is the real terminal.
pub fn run_with(
    words: &[String],
    input: impl BufRead,
    interactive: bool,
    mut out: impl Write + Send + 'static,
    mut err: impl Write + Send + 'static,
) -> i32 {
    let options = match Options::parse(words) {
        Ok(options) => options,
        Err(message) => {
            let _ = writeln!(err, "{message}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // One worker keeps pings going while the shell waits for input.
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(err, "rzk cli: cannot start the async runtime: {error}");
            return 1;
        }
    };
    let _ = writeln!(out, "Connecting to {}", options.server);
    let mut shell = shell::Shell::new(
        runtime,
        Duration::from_millis(options.timeout_ms),
        Box::new(out),
        Box::new(err),
    );
    let wait = if options.wait_for_connection {
        Duration::from_millis(options.timeout_ms)
    } else {
        Duration::ZERO
    };
    shell.connect_waiting(&options.server, wait);
    if !options.command.is_empty() {
        shell.run_one_shot(options.command);
        return shell.exit_code();
    }
    shell.print_line("Welcome to ZooKeeper!");
    if interactive {
        repl::run_interactive(&mut shell);
    } else {
        shell.print_line("JLine support is disabled");
        shell.flush_events();
        for line in input.lines() {
            let Ok(line) = line else { break };
            if shell.execute_line(&line) == shell::Flow::Quit {
                break;
            }
        }
    }
    shell.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Cli(CliArgs),
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn clap_passes_zkcli_words_through() {
        let parsed = Wrapper::try_parse_from(words("rzk cli -server h:1 -timeout 5 get -s /java"))
            .expect("clap accepts zkCli's single-dash options");
        let Sub::Cli(args) = parsed.command;
        let options = Options::parse(&args.words).expect("zkCli options");
        assert_eq!(options.server, "h:1");
        assert_eq!(options.timeout_ms, 5);
        assert_eq!(options.command, words("get -s /java"));
    }

    #[test]
    fn defaults_and_missing_values() {
        let options = Options::parse(&[]).expect("no words");
        assert_eq!(options.server, "localhost:2181");
        assert_eq!(options.timeout_ms, 30_000);
        assert!(options.command.is_empty());
        assert_eq!(
            Options::parse(&words("-server")).err().as_deref(),
            Some("Error: no argument found for option -server")
        );
    }
}
