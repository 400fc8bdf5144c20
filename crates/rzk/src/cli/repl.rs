//! The interactive terminal: rustyline with a history file and completion of command names
//! and znode paths (`JLineZNodeCompleter`'s rules: a word starting with `/` is a path).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::shell::{command_names, Flow, Shell};
use rzk_client::Client;

/// Where the interactive history is kept across runs.
const HISTORY_FILE_NAME: &str = ".rzk_cli_history";

struct ZnodeCompleter {
    client: Arc<Mutex<Option<Arc<Client>>>>,
    runtime: tokio::runtime::Handle,
}

impl Completer for ZnodeCompleter {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind(char::is_whitespace)
            .map_or(0, |index| index + 1);
        let word = &before[start..];
        if !word.starts_with('/') {
            let names = command_names()
                .filter(|name| name.starts_with(word))
                .map(str::to_owned);
            let mut names: Vec<String> = names
                .chain(
                    ["redo", "history", "quit", "connect", "printwatches"]
                        .into_iter()
                        .filter(|n| n.starts_with(word))
                        .map(str::to_owned),
                )
                .collect();
            names.sort();
            names.dedup();
            return Ok((start, names));
        }
        let client = self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let Some(client) = client.filter(|client| client.is_alive()) else {
            return Ok((start, Vec::new()));
        };
        let slash = word.rfind('/').unwrap_or(0);
        let parent = if slash == 0 { "/" } else { &word[..slash] };
        let prefix = &word[slash + 1..];
        let children = self
            .runtime
            .block_on(client.get_children(parent, false))
            .unwrap_or_default();
        // As JLineZNodeCompleter: the candidates are child names, replacing what follows
        // the last `/` (so a list of them shows names, not paths).
        let mut candidates: Vec<String> = children
            .into_iter()
            .filter(|child| child.starts_with(prefix))
            .collect();
        candidates.sort();
        Ok((start + slash + 1, candidates))
    }
}

impl Hinter for ZnodeCompleter {
    type Hint = String;
}
impl Highlighter for ZnodeCompleter {}
impl Validator for ZnodeCompleter {}
impl Helper for ZnodeCompleter {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(HISTORY_FILE_NAME))
}

/// Read commands with a prompt until `quit` or end of input (Ctrl-D).
pub fn run_interactive(shell: &mut Shell) {
    // As zkCli's JLine: Tab extends the word to the candidates' common prefix and, when more
    // than one candidate remains, lists them all at once.
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .completion_show_all_if_ambiguous(true)
        .build();
    let mut editor: Editor<ZnodeCompleter, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!(
                "rzk cli: cannot start line editing ({error}); pipe commands on stdin instead"
            );
            return;
        }
    };
    editor.set_helper(Some(ZnodeCompleter {
        client: shell.shared_client(),
        runtime: shell.runtime_handle(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    // Watch events are printed the moment they arrive, above the prompt, as zkCli's event
    // thread prints them. Without a printer (no terminal output) they wait for the next line.
    if let Ok(mut printer) = editor.create_external_printer() {
        let print = move |text: String| {
            let _ = rustyline::ExternalPrinter::print(&mut printer, text);
        };
        shell.print_events_with(Arc::new(Mutex::new(Box::new(print))));
    }
    shell.flush_events();
    loop {
        // Events that arrived while waiting for input are shown before the next prompt.
        shell.flush_events();
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(path) = &history {
                        let _ = editor.save_history(path);
                    }
                }
                if shell.execute_line(&line) == Flow::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
}
