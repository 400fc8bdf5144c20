//! Tab completion of the interactive `rzk cli`, in a real terminal: the binary runs in a
//! detached tmux session against a live `rzk server`, keys are typed with `tmux send-keys`
//! and the screen is read with `tmux capture-pane`. Command names complete from zkCli's
//! command table; a word starting with `/` completes from the server's children of its
//! parent, so a node created meanwhile (by this CLI or another client) is offered at once.
//!
//! Every wait is a bounded poll of the screen ([`SCREEN_TIMEOUT`]) that names what it waited
//! for and shows the last screen when it gives up. Without tmux the test is skipped with a
//! printed reason, except under `CI=true` (`.ci/run` installs tmux), where that fails it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use support::{run_bounded, RzkServer};

/// How long the screen may take to show what a key press should produce (a server round
/// trip for a path, none for a command name); generous for a loaded 2-core machine.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `tmux` client command may run.
const TMUX_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `rzk cli` one-shot command (the setup) may run.
const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The terminal's size: wide enough that no line of this test wraps.
const COLUMNS: &str = "160";
const ROWS: &str = "50";

fn tmux_missing_reason() -> Option<String> {
    match Command::new("tmux").arg("-V").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`tmux -V` failed ({}); install it with `apt-get install -y tmux`",
            output.status
        )),
        Err(error) => Some(format!(
            "tmux cannot run ({error}); install it with `apt-get install -y tmux`"
        )),
    }
}

/// One tmux server of our own (its socket in a temporary directory) with one session
/// running `rzk cli`; the server is killed on drop.
struct Terminal {
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Terminal {
    /// Starts `rzk cli -server <address>` in a new session, with `HOME` in a fresh temporary
    /// directory so that the history file of the user running the test is left alone.
    fn start(address: &str) -> Terminal {
        let dir = tempfile::tempdir().expect("create a temporary directory for tmux");
        let terminal = Terminal {
            socket: dir.path().join("tmux.sock"),
            dir,
        };
        let home = terminal.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create the CLI's HOME");
        let home = format!("HOME={}", home.display());
        let binary = support::rzk_binary();
        terminal.tmux(&[
            "new-session",
            "-d",
            "-s",
            "cli",
            "-x",
            COLUMNS,
            "-y",
            ROWS,
            "env",
            &home,
            "TERM=xterm",
            path_text(&binary),
            "cli",
            "-server",
            address,
        ]);
        terminal
    }

    /// [`Terminal::start`], then waits for the first prompt.
    fn start_at_prompt(address: &str) -> Terminal {
        let terminal = Terminal::start(address);
        let prompt = format!("[zk: {address}(CONNECTED) 0]");
        terminal.wait_for(&format!("the first prompt {prompt:?}"), |screen| {
            last_prompt_line(screen).is_some_and(|line| line.starts_with(&prompt))
        });
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).args(args);
        let output = run_bounded(command, None, TMUX_COMMAND_TIMEOUT);
        assert!(
            output.status.success(),
            "tmux {args:?} failed:\n{}",
            support::describe_output(&output)
        );
        output
    }

    /// Types `text` literally (no key names).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "cli", "-l", text]);
    }

    /// Presses a named key (`Tab`, `Enter`, `C-u`).
    fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "cli", key]);
    }

    fn screen(&self) -> String {
        support::stdout_text(&self.tmux(&["capture-pane", "-p", "-t", "cli"]))
    }

    /// Polls the screen until `ready` holds, and returns that screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("the terminal did not show {what} within {SCREEN_TIMEOUT:?}; last screen:\n{screen}");
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until the line being edited (after the last prompt) reads `expected` exactly.
    fn wait_for_input(&self, expected: &str) -> String {
        self.wait_for(&format!("the input line {expected:?}"), |screen| {
            input_line(screen).as_deref() == Some(expected)
        })
    }

    /// Types `typed` after what is on the input line already (`before`), presses Tab and
    /// waits until the input line reads `completed`.
    fn complete(&self, before: &str, typed: &str, completed: &str) {
        self.type_text(typed);
        self.wait_for_input(&format!("{before}{typed}"));
        self.press("Tab");
        self.wait_for_input(completed);
    }

    /// Types `typed` on an empty input line, presses Tab, and returns the candidates listed
    /// below it once `last` is among them and the prompt is repainted below the list with
    /// the input unchanged. The line is cleared afterwards.
    fn candidates(&self, typed: &str, last: &str) -> Vec<String> {
        self.type_text(typed);
        self.wait_for_input(typed);
        self.press("Tab");
        let screen = self.wait_for(&format!("the candidates for {typed:?}"), |screen| {
            let lines: Vec<&str> = screen.lines().collect();
            let listed = words_of(&after_previous_prompt(screen));
            let prompts: Vec<&&str> = lines.iter().filter(|l| l.starts_with("[zk: ")).collect();
            let typed_twice = prompts.len() >= 2
                && prompts[prompts.len() - 2].trim_end().ends_with(typed)
                && input_line(screen).as_deref() == Some(typed);
            typed_twice && listed.iter().any(|word| word == last)
        });
        self.press("C-u");
        self.wait_for_input("");
        words_of(&after_previous_prompt(&screen))
    }

    /// Presses Enter and returns what the command printed, once prompt number `next` shows.
    fn run_line(&self, next: usize) -> Vec<String> {
        self.press("Enter");
        let marker = format!(") {next}]");
        let screen = self.wait_for(&format!("prompt number {next}"), |screen| {
            last_prompt_line(screen).is_some_and(|line| line.contains(&marker))
        });
        after_previous_prompt(&screen)
    }

    /// Whether the tmux session (and so `rzk cli`) is still running.
    fn session_alive(&self) -> bool {
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["has-session", "-t", "cli"]);
        run_bounded(command, None, TMUX_COMMAND_TIMEOUT)
            .status
            .success()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(output) = Command::new("tmux")
                .arg("-S")
                .arg(&self.socket)
                .args(["capture-pane", "-p", "-t", "cli"])
                .output()
            {
                eprintln!(
                    "--- rzk cli's screen ---\n{}",
                    String::from_utf8_lossy(&output.stdout)
                );
            }
        }
        // Our own tmux server only: it is addressed by the socket in our temporary directory.
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("the rzk binary's path is UTF-8")
}

/// The prompt of the last `[zk: ...] ` line on the screen, and what follows it.
fn last_prompt_line(screen: &str) -> Option<&str> {
    screen.lines().rev().find(|line| line.starts_with("[zk: "))
}

/// What has been typed after the last prompt (trailing spaces dropped, as tmux shows them).
fn input_line(screen: &str) -> Option<String> {
    let line = last_prompt_line(screen)?;
    let end = line.find("] ").map(|index| index + 2).or_else(|| {
        // An empty input line: tmux drops the prompt's trailing space.
        line.ends_with(']').then_some(line.len())
    })?;
    Some(line[end..].trim_end().to_owned())
}

/// The lines printed between the last two prompts (a command's output, a candidate list).
fn after_previous_prompt(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let prompts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.starts_with("[zk: "))
        .map(|(index, _)| index)
        .collect();
    match prompts.as_slice() {
        [.., previous, last] => lines[previous + 1..*last]
            .iter()
            .map(|line| line.trim_end().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn one_shot(address: &str, command: &[&str]) {
    let mut cli = Command::new(support::rzk_binary());
    cli.args(["cli", "-server", address]).args(command);
    let output = run_bounded(cli, None, ONE_SHOT_TIMEOUT);
    assert!(
        output.status.success(),
        "rzk cli {command:?} failed:\n{}",
        support::describe_output(&output)
    );
}

/// True (after saying why) when tmux is missing outside CI; under `CI=true` (`.ci/run`
/// installs tmux) a missing tmux fails the test instead.
fn skip_without_tmux(test: &str) -> bool {
    let Some(reason) = tmux_missing_reason() else {
        return false;
    };
    if support::in_ci() {
        panic!("{reason} (CI=true, so this is a failure, not a skip; .ci/run installs tmux)");
    }
    eprintln!("skipped: {test}: {reason}");
    true
}

/// The candidates of a list, in the order shown (rustyline prints them in columns, row by
/// row, separated by spaces).
fn words_of(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|line| line.split_whitespace())
        .map(str::to_owned)
        .collect()
}

#[test]
fn tab_completes_commands_and_znode_paths_in_a_real_terminal() {
    if skip_without_tmux("tab_completes_commands_and_znode_paths_in_a_real_terminal") {
        return;
    }
    let server = RzkServer::start(&[]);
    let address = server.connect_string();
    for path in ["/java", "/java/spring", "/java/struts", "/python"] {
        one_shot(&address, &["create", path]);
    }
    let terminal = Terminal::start_at_prompt(&address);

    // A path with one candidate among the root's children completes to it.
    terminal.complete("", "ls /ja", "ls /java");
    assert_eq!(terminal.run_line(1), ["[spring, struts]"], "ls /java");

    // A command name with one candidate completes; so does a path below the root.
    terminal.complete("", "cre", "create");
    terminal.complete("create", " /java/sp", "create /java/spring");
    terminal.type_text("/boot");
    assert_eq!(
        terminal.run_line(2),
        ["Created /java/spring/boot"],
        "create /java/spring/boot"
    );

    // Several candidates: the word stays (what was typed is their common prefix) and all of
    // them are listed at once, as JLine does in zkCli, for paths (child names, as zkCli's
    // completer offers them) and for command names.
    assert_eq!(
        terminal.candidates("ls /java/s", "struts"),
        ["spring", "struts"]
    );
    assert_eq!(
        terminal.candidates("get", "getEphemerals"),
        ["get", "getAcl", "getAllChildrenNumber", "getEphemerals"]
    );

    // Below a trailing slash the candidates are that node's children, read from the server
    // now: the node this CLI created a moment ago is offered.
    terminal.complete("", "get /java/spring/", "get /java/spring/boot");
    assert_eq!(terminal.run_line(3), ["null"], "get /java/spring/boot");

    // A word that matches nothing is left as it is.
    terminal.type_text("ls /nothing");
    terminal.wait_for_input("ls /nothing");
    terminal.press("Tab");
    terminal.type_text("X");
    terminal.wait_for_input("ls /nothingX");
    terminal.press("C-u");
    terminal.type_text("quit");
    terminal.wait_for_input("quit");
    terminal.press("Enter");
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while terminal.session_alive() {
        assert!(
            Instant::now() < deadline,
            "rzk cli did not exit within {SCREEN_TIMEOUT:?} after quit:\n{}",
            terminal.screen()
        );
        thread::sleep(POLL_INTERVAL);
    }
}

/// Goal: on a terminal, a watch event shows the moment it arrives, above the prompt, as
/// zkCli's event thread prints it, not only once the user presses Enter again.
/// Method: `get -w /watched` in rzk cli under tmux, then `set /watched` from another (one-shot)
/// CLI; the screen shows `NodeDataChanged` while the input line is still empty and nothing has
/// been typed since, and then the prompt is usable as before.
#[test]
fn a_watch_event_shows_while_the_prompt_waits() {
    if skip_without_tmux("a_watch_event_shows_while_the_prompt_waits") {
        return;
    }
    let server = RzkServer::start(&[]);
    let address = server.connect_string();
    one_shot(&address, &["create", "/watched", "before"]);
    let terminal = Terminal::start_at_prompt(&address);
    terminal.type_text("get -w /watched");
    terminal.wait_for_input("get -w /watched");
    assert_eq!(terminal.run_line(1), ["before"], "get -w /watched");
    one_shot(&address, &["set", "/watched", "after"]);
    let event = "WatchedEvent state:SyncConnected type:NodeDataChanged path:/watched";
    terminal.wait_for("the watch event, without a key pressed", |screen| {
        screen.contains(event) && input_line(screen).as_deref() == Some("")
    });
    terminal.type_text("get /watched");
    terminal.wait_for_input("get /watched");
    assert_eq!(terminal.run_line(2), ["after"], "get /watched");
}
