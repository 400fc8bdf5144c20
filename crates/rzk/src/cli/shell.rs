//! The command interpreter: `ZooKeeperMain.executeLine/processZKCmd` and zkCli's commands.
//!
//! Watch events are printed when they are taken off the client's event channel: right after
//! each reply and before the command's own output, so a notification the server sent before
//! the reply is printed first, deterministically (zkCli prints from a separate thread).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzk_client::{
    Acl, AddWatchMode, Client, ClientError, CreateMode, ErrorCode, EventType, Id, KeeperState,
    Request, WatchedEvent, WatcherType,
};
use rzk_proto::{DeleteRequest, Stat};
use tokio::sync::mpsc;

mod quota;
mod reconfig;

use super::format::{
    id_string, keeper_message, parse_acl, parse_options, perm_string, split_command_line,
    stat_block, validate_path, wrapper_message,
};

/// `ZooKeeperMain.usage()`'s table (sorted), printed for unknown commands.
const USAGE: &[(&str, &str)] = &[
    ("addWatch", "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    ("reconfig", "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]"),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

/// The command names, for completion.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    USAGE.iter().map(|(name, _)| *name)
}

fn usage_of(command: &str) -> String {
    USAGE
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(name, options)| format!("{name} {options}"))
        .unwrap_or_default()
}

/// Exit codes of zkCli (`ExitCode`, `CliException`, `CommandNotFoundException`).
const EXIT_OK: i32 = 0;
const EXIT_ERROR: i32 = 1;
const EXIT_COMMAND_NOT_FOUND: i32 = 127;

/// How many commands `history` lists before the current one, as zkCli.
const HISTORY_SHOWN: usize = 10;

/// A failed command: its message (stderr) and exit code, as zkCli's `CliException`.
struct Failure {
    message: String,
    exit_code: i32,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: EXIT_ERROR,
        }
    }
}

type CommandResult = Result<(), Failure>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The watches this session holds, as the Java client's `ZKWatchManager` keeps them: needed
/// to answer `removewatches` the way zkCli does (which events it reports, NoWatcher).
#[derive(Default)]
struct WatchTable {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl WatchTable {
    fn on_event(&mut self, event: &WatchedEvent) {
        let Some(path) = &event.path else { return };
        match event.event_type {
            EventType::NodeDataChanged | EventType::NodeCreated => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            EventType::NodeChildrenChanged => {
                self.child.remove(path);
            }
            EventType::NodeDeleted => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            _ => {}
        }
    }

    /// `ZKWatchManager.removeWatcher` for zkCli's single watcher: the event types to report,
    /// or NoWatcher.
    fn remove(&mut self, path: &str, kind: WatcherType) -> Result<Vec<EventType>, ()> {
        let persistent = self.persistent.contains(path) || self.recursive.contains(path);
        let contains = match kind {
            WatcherType::Children => self.child.contains(path) || persistent,
            WatcherType::Data => {
                self.data.contains(path) || self.exist.contains(path) || persistent
            }
            _ => {
                self.child.contains(path)
                    || self.data.contains(path)
                    || self.exist.contains(path)
                    || persistent
            }
        };
        if !contains {
            return Err(());
        }
        let mut events = Vec::new();
        let children =
            matches!(kind, WatcherType::Children | WatcherType::Any) && self.child.remove(path);
        if children {
            events.push(EventType::ChildWatchRemoved);
        }
        let data = matches!(kind, WatcherType::Data | WatcherType::Any)
            && (self.data.remove(path) | self.exist.remove(path));
        if data {
            events.push(EventType::DataWatchRemoved);
        }
        let persistent = matches!(kind, WatcherType::Any)
            && (self.persistent.remove(path) | self.recursive.remove(path));
        if persistent {
            events.push(EventType::PersistentWatchRemoved);
        }
        if events.is_empty() {
            return Err(());
        }
        Ok(events)
    }
}

/// zkCli's text for an event, or `None` when it prints none: `printwatches off`, or any event
/// after AuthFailed (the Java client's event thread stops there).
fn event_text(
    event: &WatchedEvent,
    print_watches: &AtomicBool,
    auth_failed: &AtomicBool,
) -> Option<String> {
    if auth_failed.load(Ordering::Relaxed) && event.state != KeeperState::AuthFailed {
        return None;
    }
    if !print_watches.load(Ordering::Relaxed) {
        return None;
    }
    let path = event.path.as_deref().unwrap_or("null");
    Some(format!(
        "\nWATCHER::\n\nWatchedEvent state:{:?} type:{:?} path:{path}",
        event.state, event.event_type
    ))
}

/// How long `-waitforconnection` pauses between attempts to reach a server.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(200);

pub struct Shell {
    runtime: tokio::runtime::Runtime,
    session_timeout: Duration,
    /// Shared with the completer of the interactive terminal.
    client: Arc<Mutex<Option<Arc<Client>>>>,
    events: Option<mpsc::Receiver<WatchedEvent>>,
    host: String,
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    history: BTreeMap<usize, String>,
    command_count: usize,
    /// `printwatches`; shared with the event printer of an interactive terminal.
    print_watches: Arc<AtomicBool>,
    exit_code: i32,
    watches: WatchTable,
    /// Set after AuthFailed: the Java client's event thread stops there, so no later event
    /// of this session (Disconnected, Closed) is printed.
    auth_failed: Arc<AtomicBool>,
    /// Set by AuthFailed until a command sends a request: zkCli does not wait for
    /// `addauth`'s answer, so the commands right after it still find the session alive, and
    /// the first request fails with AuthFailed; only later commands say "Not connected".
    auth_failed_unseen: bool,
    /// The last parsed line, re-run for a blank-but-not-empty line as zkCli does.
    last_words: Vec<String>,
    /// `addWatch`'s mode. zkCli keeps one `AddWatchCommand` object for the whole process and
    /// sets its mode only when `-m` is given, so a mode chosen once sticks for later
    /// `addWatch` commands without `-m` (across `connect` too).
    add_watch_mode: AddWatchMode,
    /// On an interactive terminal: prints watch events the moment they arrive (rustyline's
    /// external printer), from a thread per session (see [`Shell::print_events_with`]).
    event_printer: Option<EventPrinter>,
    /// Events that thread printed, for the shell to account for (the watch table).
    printed: Option<std::sync::mpsc::Receiver<WatchedEvent>>,
}

/// Prints one event's text on the terminal, from any thread.
pub type EventPrinter = Arc<Mutex<Box<dyn FnMut(String) + Send>>>;

impl Shell {
    pub fn new(
        runtime: tokio::runtime::Runtime,
        session_timeout: Duration,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
    ) -> Shell {
        Shell {
            runtime,
            session_timeout,
            client: Arc::new(Mutex::new(None)),
            events: None,
            host: String::new(),
            out,
            err,
            history: BTreeMap::new(),
            command_count: 0,
            print_watches: Arc::new(AtomicBool::new(true)),
            exit_code: EXIT_OK,
            watches: WatchTable::default(),
            auth_failed: Arc::new(AtomicBool::new(false)),
            auth_failed_unseen: false,
            last_words: Vec::new(),
            add_watch_mode: AddWatchMode::PersistentRecursive,
            event_printer: None,
            printed: None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    pub fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    pub fn shared_client(&self) -> Arc<Mutex<Option<Arc<Client>>>> {
        self.client.clone()
    }

    fn client(&self) -> Option<Arc<Client>> {
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_client(&self, client: Option<Arc<Client>>) {
        *self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
    }

    /// `[zk: host(STATE) N] `.
    pub fn prompt(&self) -> String {
        let state = match self.client() {
            Some(client) if client.is_alive() => "CONNECTED",
            _ => "CLOSED",
        };
        format!("[zk: {}({state}) {}] ", self.host, self.command_count)
    }

    pub fn print_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn print_err(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}");
        let _ = self.err.flush();
    }

    /// Print (and account for) every event already received.
    pub fn flush_events(&mut self) {
        // Events the terminal's printer has shown: only accounted for here.
        if let Some(printed) = &self.printed {
            while let Ok(event) = printed.try_recv() {
                self.watches.on_event(&event);
            }
        }
        let mut pending = VecDeque::new();
        if let Some(events) = &mut self.events {
            while let Ok(event) = events.try_recv() {
                pending.push_back(event);
            }
        }
        for event in pending {
            self.deliver(event);
        }
    }

    fn deliver(&mut self, event: WatchedEvent) {
        self.watches.on_event(&event);
        if let Some(text) = event_text(&event, &self.print_watches, &self.auth_failed) {
            self.print_line(&text);
        }
    }

    /// On an interactive terminal: print each watch event the moment it arrives, through
    /// `printer`, as zkCli's event thread does, rather than when the next command is read.
    pub fn print_events_with(&mut self, printer: EventPrinter) {
        self.event_printer = Some(printer);
        self.start_event_printer();
    }

    /// Hands the session's events to a thread that prints them through the event printer
    /// (it ends when the session's client is gone).
    fn start_event_printer(&mut self) {
        let Some(printer) = self.event_printer.clone() else {
            return;
        };
        let Some(mut events) = self.events.take() else {
            return;
        };
        let (printed_tx, printed_rx) = std::sync::mpsc::channel();
        self.printed = Some(printed_rx);
        let (print_watches, auth_failed) = (self.print_watches.clone(), self.auth_failed.clone());
        std::thread::spawn(move || {
            while let Some(event) = events.blocking_recv() {
                if let Some(text) = event_text(&event, &print_watches, &auth_failed) {
                    let mut print = printer.lock().unwrap_or_else(|p| p.into_inner());
                    (print)(format!("{text}\n"));
                }
                if printed_tx.send(event).is_err() {
                    break;
                }
            }
        });
    }

    /// `connectToZK`: close a live session first, then open a new one.
    pub fn connect(&mut self, host: &str) {
        self.connect_waiting(host, Duration::ZERO);
    }

    /// [`Shell::connect`], trying again until `wait` has passed while no server answers
    /// (zkCli's `-waitforconnection`, which waits up to its `-timeout`).
    pub fn connect_waiting(&mut self, host: &str, wait: Duration) {
        self.close_session();
        self.host = host.to_owned();
        self.watches = WatchTable::default();
        self.auth_failed.store(false, Ordering::Relaxed);
        self.auth_failed_unseen = false;
        let timeout = self.session_timeout;
        let deadline = std::time::Instant::now() + wait;
        let connected = loop {
            match self.runtime.block_on(Client::connect(host, timeout)) {
                Err(ClientError::Connect { .. }) if std::time::Instant::now() < deadline => {
                    // The Java client also pauses between attempts (up to a second, at random).
                    let pause = CONNECT_RETRY_PAUSE
                        .min(deadline.saturating_duration_since(std::time::Instant::now()));
                    std::thread::sleep(pause);
                }
                result => break result,
            }
        };
        match connected {
            Ok(client) => {
                self.events = client.take_events();
                self.set_client(Some(Arc::new(client)));
                self.start_event_printer();
            }
            Err(error) => {
                // zkCli would keep retrying in the background; rzk-client does not reconnect.
                self.print_err(&format!("rzk cli: {error}"));
                self.events = None;
                self.set_client(None);
            }
        }
    }

    fn close_session(&mut self) {
        let Some(client) = self.client() else { return };
        if client.is_alive() {
            let _ = self.runtime.block_on(client.close());
        }
        self.flush_events();
    }

    /// One-shot mode: run `words` and keep its exit code.
    pub fn run_one_shot(&mut self, words: Vec<String>) {
        self.process(words);
    }

    /// `executeLine`: history, then the command.
    pub fn execute_line(&mut self, line: &str) -> Flow {
        if line.is_empty() {
            return Flow::Continue;
        }
        let words = split_command_line(line);
        // zkCli keeps the previous command when a line holds only spaces.
        let words = if words.is_empty() {
            self.last_words.clone()
        } else {
            words
        };
        self.last_words = words.clone();
        self.history.insert(self.command_count, line.to_owned());
        let flow = self.process(words);
        self.command_count += 1;
        flow
    }

    /// End of input: close the session (zkCli's JVM exit leaves it open; closing is kinder
    /// and prints nothing more) and return the exit code.
    pub fn finish(&mut self) -> i32 {
        if let Some(client) = self.client() {
            let _ = self.runtime.block_on(client.close());
        }
        self.exit_code
    }

    /// `processCmd`: run, then record the exit code; failures go to stderr.
    fn process(&mut self, words: Vec<String>) -> Flow {
        let (flow, result) = self.process_command(words);
        match result {
            // zkCli's `quit` exits from inside the command, with the previous command's code.
            Ok(()) if flow == Flow::Quit => {}
            Ok(()) => self.exit_code = EXIT_OK,
            Err(failure) => {
                self.exit_code = failure.exit_code;
                self.print_err(&failure.message);
            }
        }
        flow
    }

    fn usage(&mut self) {
        let mut text =
            "ZooKeeper -server host:port -client-configuration properties-file cmd args".to_owned();
        for (name, options) in USAGE {
            text.push_str(&format!("\n\t{name} {options}"));
        }
        self.print_err(&text);
    }

    /// `processZKCmd`.
    fn process_command(&mut self, words: Vec<String>) -> (Flow, CommandResult) {
        let Some(command) = words.first().cloned() else {
            self.usage();
            return (Flow::Continue, Err(Failure::new("No command entered")));
        };
        if !USAGE.iter().any(|(name, _)| *name == command) {
            self.usage();
            return (
                Flow::Continue,
                Err(Failure {
                    message: format!("Command not found: Command not found {command}"),
                    exit_code: EXIT_COMMAND_NOT_FOUND,
                }),
            );
        }
        match command.as_str() {
            "quit" => {
                self.close_session();
                return (Flow::Quit, Ok(()));
            }
            "redo" if words.len() >= 2 => return (Flow::Continue, self.redo(&words[1])),
            "history" => {
                let first = self.command_count.saturating_sub(HISTORY_SHOWN);
                for index in first..=self.command_count {
                    let line = self
                        .history
                        .get(&index)
                        .cloned()
                        .unwrap_or_else(|| "null".to_owned());
                    self.print_line(&format!("{index} - {line}"));
                }
            }
            "printwatches" => {
                if words.len() == 1 {
                    let on = self.print_watches.load(Ordering::Relaxed);
                    let state = if on { "on" } else { "off" };
                    self.print_line(&format!("printwatches is {state}"));
                } else {
                    self.print_watches
                        .store(words[1] == "on", Ordering::Relaxed);
                }
            }
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host);
                self.flush_events();
            }
            _ => {}
        }
        // After a failed addauth only the first request goes out (and fails with AuthFailed);
        // every later command finds the session dead, however soon this client notices that
        // the server closed the connection (zkCli's state is AUTH_FAILED, which is not alive).
        let unseen = self.auth_failed_unseen;
        let failed = self.auth_failed.load(Ordering::Relaxed);
        let Some(client) = self
            .client()
            .filter(|client| (client.is_alive() && !failed) || unseen)
        else {
            if self.client().is_none() {
                // The server could not be reached. zkCli's client would still be trying
                // (alive), and its command would end in ConnectionLoss with exit code 1: a
                // script that tests the code must not read a dead server as healthy.
                let path = words.get(1).filter(|word| word.starts_with('/'));
                let message = keeper_message(ErrorCode::ConnectionLoss, path.map(String::as_str));
                return (Flow::Continue, Err(Failure::new(message)));
            }
            self.print_line("Not connected");
            return (Flow::Continue, Ok(()));
        };
        let result = match command.as_str() {
            "create" => self.create(&client, &words),
            "ls" => self.ls(&client, words),
            "get" => self.get(&client, words),
            "set" => self.set(&client, &words),
            "stat" => self.stat(&client, words),
            "delete" => self.delete(&client, &words),
            "deleteall" => self.delete_all(&client, &words),
            "getAcl" => self.get_acl(&client, &words),
            "setAcl" => self.set_acl(&client, &words),
            "sync" => self.sync(&client, &words),
            "addauth" => self.add_auth(&client, &words),
            "getEphemerals" => self.get_ephemerals(&client, &words),
            "getAllChildrenNumber" => self.get_all_children_number(&client, &words),
            "addWatch" => self.add_watch(&client, &words),
            "removewatches" => self.remove_watches(&client, &words),
            "whoami" => self.who_am_i(&client),
            "config" => self.config(&client, &words),
            "close" => {
                // A closeSession request: on a failed session it is what fails (unseen).
                self.auth_failed_unseen = false;
                let _ = self.runtime.block_on(client.close());
                self.flush_events();
                Ok(())
            }
            "version" => {
                if words.len() > 1 {
                    Err(Failure::new(usage_of("version")))
                } else {
                    // The server's version string (`srvr`), `3.x.y-rzk-<version>, built on
                    // ...`: scripts that read a 3.x version from this line keep working.
                    self.print_line(&format!(
                        "ZooKeeper CLI version: {}",
                        rzk_server::four_letter::version()
                    ));
                    Ok(())
                }
            }
            "setquota" => self.set_quota(&client, &words),
            "listquota" => self.list_quota(&client, &words),
            "delquota" => self.del_quota(&client, &words),
            "reconfig" => self.reconfig(&client, &words),
            _ => Ok(()),
        };
        (Flow::Continue, result)
    }

    fn redo(&mut self, number: &str) -> CommandResult {
        let index = parse_java_int(number)?;
        if index < 0 || index as usize >= self.command_count {
            return Err(Failure::new("Command index out of range"));
        }
        let line = self
            .history
            .get(&(index as usize))
            .cloned()
            .unwrap_or_default();
        let words = split_command_line(&line);
        if words.first().map(String::as_str) == Some("redo") {
            return Err(Failure::new("No redoing redos"));
        }
        self.history.insert(self.command_count, line);
        self.last_words = words.clone();
        // The redone command reports its own failure; redo itself then succeeds.
        self.process(words);
        Ok(())
    }

    /// Wait for a reply, then print the events that came before it.
    fn call<T>(
        &mut self,
        future: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let result = self.runtime.block_on(future);
        self.flush_events();
        match result {
            // A request on a session that failed authentication (see `auth_failed_unseen`).
            Err(error)
                if self.auth_failed.load(Ordering::Relaxed)
                    && !matches!(error, ClientError::Keeper(_)) =>
            {
                self.auth_failed_unseen = false;
                Err(ClientError::Keeper(ErrorCode::AuthFailed))
            }
            other => other,
        }
    }

    fn create(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(
            &[('e', false), ('s', false), ('c', false), ('t', true)],
            words,
        )
        .map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("create")));
        }
        let (e, s, c, t) = (
            options.has('e'),
            options.has('s'),
            options.has('c'),
            options.has('t'),
        );
        if c && (e || s) {
            return Err(Failure::new(
                "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
            ));
        }
        let ttl: i64 = match options.value('t') {
            Some(text) if t => text
                .parse()
                .map_err(|_| Failure::new("-t argument must be a long value"))?,
            _ => 0,
        };
        if t && e {
            return Err(Failure::new("TTLs cannot be used with Ephemeral znodes"));
        }
        if t && c {
            return Err(Failure::new("TTLs cannot be used with Container znodes"));
        }
        let mode = match (e, s, c, t) {
            (true, true, _, _) => CreateMode::EphemeralSequential,
            (true, false, _, _) => CreateMode::Ephemeral,
            (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
            (false, true, _, false) => CreateMode::PersistentSequential,
            (false, false, true, _) => CreateMode::Container,
            (false, false, false, true) => CreateMode::PersistentWithTtl,
            (false, false, false, false) => CreateMode::Persistent,
        };
        // EphemeralType.TTL.toEphemeralOwner's check.
        const TTL_MAX: i64 = 0xff_ffff_ffff;
        if t && (ttl <= 0 || ttl > TTL_MAX) {
            return Err(Failure::new(format!(
                "ttl must be positive and cannot be larger than: {TTL_MAX}"
            )));
        }
        let path = options.args[1].clone();
        let data = options.args.get(2).map(|text| text.as_bytes().to_vec());
        let acl = match options.args.get(3) {
            Some(text) => self.acl_from(text),
            None => open_acl(),
        };
        let checked = if mode.is_sequential() {
            format!("{path}1")
        } else {
            path.clone()
        };
        validate_path(&checked).map_err(Failure::new)?;
        if acl.is_empty() {
            self.print_err(&keeper_message(ErrorCode::InvalidAcl, None));
            return Err(Failure::new(wrapper_message(ErrorCode::InvalidAcl, None)));
        }
        let result = if t {
            self.call(client.create_ttl(&path, data.as_deref(), &acl, mode, ttl))
                .map(|(created, _)| created)
        } else {
            self.call(client.create(&path, data.as_deref(), &acl, mode))
        };
        match result {
            Ok(created) => {
                self.print_err(&format!("Created {created}"));
                Ok(())
            }
            Err(ClientError::Keeper(ErrorCode::InvalidAcl)) => {
                self.print_err(&keeper_message(ErrorCode::InvalidAcl, Some(&path)));
                Err(Failure::new(wrapper_message(
                    ErrorCode::InvalidAcl,
                    Some(&path),
                )))
            }
            Err(ClientError::Keeper(ErrorCode::EphemeralOnLocalSession)) => {
                self.print_err("Unable to create ephemeral node on a local session");
                Err(keeper_failure(ErrorCode::EphemeralOnLocalSession, &path))
            }
            Err(error) => Err(client_failure(error, &path)),
        }
    }

    fn acl_from(&mut self, text: &str) -> Vec<Acl> {
        let mut warnings = Vec::new();
        let acl = parse_acl(text, &mut warnings);
        for warning in warnings {
            self.print_err(&warning);
        }
        acl
    }

    /// The `cmd path [watch]` form: warn, and treat the third word as `-w`.
    fn deprecated_watch_form(
        &mut self,
        mut words: Vec<String>,
        spec: &[(char, bool)],
        warning: &str,
    ) -> Result<super::format::Options, Failure> {
        let options = parse_options(spec, &words).map_err(Failure::new)?;
        if options.args.len() <= 2 {
            return Ok(options);
        }
        if words.len() > 2 {
            words[2] = "-w".to_owned();
        }
        self.print_err(warning);
        parse_options(spec, &words).map_err(Failure::new)
    }

    fn ls(&mut self, client: &Client, words: Vec<String>) -> CommandResult {
        let spec = [('?', false), ('s', false), ('w', false), ('R', false)];
        let options = self.deprecated_watch_form(
            words,
            &spec,
            "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
        )?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("ls")));
        }
        let path = options.args[1].clone();
        let watch = options.has('w');
        validate_path(&path).map_err(Failure::new)?;
        if options.has('R') {
            return self.ls_recursive(client, &path, watch);
        }
        if options.has('s') {
            let (mut children, stat) = self
                .call(client.get_children2(&path, watch))
                .map_err(|error| client_failure(error, &path))?;
            if watch {
                self.watches.child.insert(path.clone());
            }
            children.sort();
            self.print_line(&format!("[{}]", children.join(", ")));
            self.print_stat(&stat);
        } else {
            let mut children = self
                .call(client.get_children(&path, watch))
                .map_err(|error| client_failure(error, &path))?;
            if watch {
                self.watches.child.insert(path.clone());
            }
            children.sort();
            self.print_line(&format!("[{}]", children.join(", ")));
        }
        Ok(())
    }

    /// `ZKUtil.visitSubTreeDFS`: the root, then each level's sorted children before
    /// descending into them.
    fn ls_recursive(&mut self, client: &Client, path: &str, watch: bool) -> CommandResult {
        self.call(client.get_data(path, watch))
            .map_err(|error| client_failure(error, path))?;
        if watch {
            self.watches.data.insert(path.to_owned());
        }
        self.print_line(path);
        self.visit_children(client, path, watch, &mut |shell, child| {
            shell.print_line(child);
        })
    }

    fn visit_children(
        &mut self,
        client: &Client,
        path: &str,
        watch: bool,
        visit: &mut dyn FnMut(&mut Shell, &str),
    ) -> CommandResult {
        let mut children = match self.call(client.get_children(path, watch)) {
            Ok(children) => children,
            // Listed, then deleted before it could be read: skip it, as ZKUtil does.
            Err(ClientError::Keeper(ErrorCode::NoNode)) => return Ok(()),
            Err(error) => return Err(client_failure(error, path)),
        };
        if watch {
            self.watches.child.insert(path.to_owned());
        }
        children.sort();
        let child_path = |child: &str| {
            if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            }
        };
        for child in &children {
            visit(self, &child_path(child));
        }
        for child in &children {
            self.visit_children(client, &child_path(child), watch, visit)?;
        }
        Ok(())
    }

    fn get(&mut self, client: &Client, words: Vec<String>) -> CommandResult {
        let spec = [('s', false), ('w', false)];
        let options = parse_options(&spec, &words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("get")));
        }
        let options = self.deprecated_watch_form(
            words,
            &spec,
            "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
        )?;
        let path = options.args[1].clone();
        validate_path(&path).map_err(Failure::new)?;
        self.get_and_print(client, &path, options.has('w'), options.has('s'))
    }

    /// `get` and `config`: the data (or `null`), then the stat block when asked for.
    fn get_and_print(
        &mut self,
        client: &Client,
        path: &str,
        watch: bool,
        with_stat: bool,
    ) -> CommandResult {
        let (data, stat) = self
            .call(client.get_data(path, watch))
            .map_err(|error| client_failure(error, path))?;
        if watch {
            self.watches.data.insert(path.to_owned());
        }
        let text = match data {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => "null".to_owned(),
        };
        self.print_line(&text);
        if with_stat {
            self.print_stat(&stat);
        }
        Ok(())
    }

    fn print_stat(&mut self, stat: &Stat) {
        let block = stat_block(stat);
        let _ = self.out.write_all(block.as_bytes());
        let _ = self.out.flush();
    }

    fn set(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('s', false), ('v', true)], words).map_err(Failure::new)?;
        if options.args.len() < 3 {
            return Err(Failure::new(usage_of("set")));
        }
        let path = options.args[1].clone();
        let data = options.args[2].as_bytes().to_vec();
        let version = match options.value('v') {
            Some(text) => parse_java_int(text)?,
            None => -1,
        };
        validate_path(&path).map_err(Failure::new)?;
        let stat = self
            .call(client.set_data(&path, Some(&data), version))
            .map_err(|error| client_failure(error, &path))?;
        if options.has('s') {
            self.print_stat(&stat);
        }
        Ok(())
    }

    fn stat(&mut self, client: &Client, words: Vec<String>) -> CommandResult {
        let spec = [('w', false)];
        let options = parse_options(&spec, &words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("stat")));
        }
        let options = self.deprecated_watch_form(
            words,
            &spec,
            "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
        )?;
        let path = options.args[1].clone();
        let watch = options.has('w');
        validate_path(&path).map_err(Failure::new)?;
        let stat = self
            .call(client.exists(&path, watch))
            .map_err(|error| client_failure(error, &path))?;
        match stat {
            Some(stat) => {
                if watch {
                    self.watches.data.insert(path.clone());
                }
                self.print_stat(&stat);
                Ok(())
            }
            None => {
                if watch {
                    self.watches.exist.insert(path.clone());
                }
                Err(keeper_failure(ErrorCode::NoNode, &path))
            }
        }
    }

    fn delete(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let spec = [('v', true)];
        let options = parse_options(&spec, words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("delete")));
        }
        if options.args.len() > 2 {
            // zkCli warns but does not use the version word.
            self.print_err(
                "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
            );
        }
        let path = options.args[1].clone();
        let version = match options.value('v') {
            Some(text) => parse_java_int(text)?,
            None => -1,
        };
        validate_path(&path).map_err(Failure::new)?;
        self.call(client.delete(&path, version))
            .map_err(|error| client_failure(error, &path))
    }

    /// `ZKUtil.deleteRecursive`: list the tree breadth-first, then delete it leaves first in
    /// multi batches.
    fn delete_all(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('b', true)], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("deleteall")));
        }
        let batch: usize = match options.value('b') {
            Some(text) => match text.parse::<i32>() {
                Ok(value) => usize::try_from(value).unwrap_or(0).max(1),
                Err(_) => return Err(Failure::new("-b argument must be an int value")),
            },
            None => 1000,
        };
        let root = options.args[1].clone();
        validate_path(&root).map_err(Failure::new)?;
        let mut tree = vec![root.clone()];
        let mut index = 0;
        while index < tree.len() {
            let node = tree[index].clone();
            let children = self
                .call(client.get_children(&node, false))
                .map_err(|error| client_failure(error, &node))?;
            for child in children {
                let prefix = if node == "/" { "" } else { node.as_str() };
                tree.push(format!("{prefix}/{child}"));
            }
            index += 1;
        }
        let mut success = true;
        for chunk in tree.iter().rev().collect::<Vec<_>>().chunks(batch) {
            let ops = chunk
                .iter()
                .map(|path| {
                    Request::Delete(DeleteRequest {
                        path: (*path).clone(),
                        version: -1,
                    })
                })
                .collect();
            match self.call(client.multi(ops)) {
                Ok(results) => {
                    if results.iter().any(|result| {
                        matches!(result, rzk_client::MultiResult::Error { err } if *err != 0)
                    }) {
                        success = false;
                        break;
                    }
                }
                Err(_) => {
                    success = false;
                    break;
                }
            }
        }
        if !success {
            self.print_err("Failed to delete some node(s) in the subtree!");
        }
        Ok(())
    }

    fn get_acl(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('s', false)], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("getAcl")));
        }
        let path = options.args[1].clone();
        validate_path(&path).map_err(Failure::new)?;
        let (acl, stat) = self
            .call(client.get_acl(&path))
            .map_err(|error| client_failure(error, &path))?;
        for entry in &acl {
            let line = format!("{}: {}", id_string(&entry.id), perm_string(entry.perms));
            self.print_line(&line);
        }
        if options.has('s') {
            self.print_stat(&stat);
        }
        Ok(())
    }

    fn set_acl(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('s', false), ('v', true), ('R', false)], words)
            .map_err(Failure::new)?;
        if options.args.len() < 3 {
            return Err(Failure::new(usage_of("setAcl")));
        }
        let path = options.args[1].clone();
        let acl = self.acl_from(&options.args[2].clone());
        let version = match options.value('v') {
            Some(text) => parse_java_int(text)?,
            None => -1,
        };
        validate_path(&path).map_err(Failure::new)?;
        if acl.is_empty() {
            return Err(Failure::new(wrapper_message(ErrorCode::InvalidAcl, None)));
        }
        if options.has('R') {
            self.call(client.get_data(&path, false))
                .map_err(|error| client_failure(error, &path))?;
            let mut apply = |shell: &mut Shell, node: &str| {
                if let Err(error) = shell.call(client.set_acl(node, &acl, version)) {
                    // zkCli prints the KeeperException message without a newline.
                    let text = match error {
                        ClientError::Keeper(code) => keeper_message(code, Some(node)),
                        other => other.to_string(),
                    };
                    let _ = shell.out.write_all(text.as_bytes());
                    let _ = shell.out.flush();
                }
            };
            apply(self, &path);
            return self.visit_children(client, &path, false, &mut apply);
        }
        let stat = self
            .call(client.set_acl(&path, &acl, version))
            .map_err(|error| client_failure(error, &path))?;
        if options.has('s') {
            self.print_stat(&stat);
        }
        Ok(())
    }

    fn sync(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("sync")));
        }
        let path = options.args[1].clone();
        validate_path(&path).map_err(Failure::new)?;
        match self.call(client.sync(&path)) {
            Ok(_) => self.print_line("Sync is OK"),
            Err(ClientError::Keeper(code)) => {
                self.print_line(&format!("Sync has failed. rc={}", code.code()))
            }
            Err(error) => return Err(Failure::new(error.to_string())),
        }
        Ok(())
    }

    fn add_auth(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("addauth")));
        }
        if self.auth_failed.load(Ordering::Relaxed) {
            // zkCli queues the packet on the failed session without waiting: nothing shows.
            return Ok(());
        }
        let scheme = options.args[1].clone();
        let auth = options
            .args
            .get(2)
            .map(|text| text.as_bytes().to_vec())
            .unwrap_or_default();
        // zkCli does not wait for the answer; a failure shows up as an AuthFailed event (and
        // no Disconnected, which the closing connection may already have queued here).
        let result = self.runtime.block_on(client.add_auth(&scheme, &auth));
        let failed = matches!(result, Err(ClientError::Keeper(ErrorCode::AuthFailed)));
        self.auth_failed.fetch_or(failed, Ordering::Relaxed);
        self.auth_failed_unseen |= failed;
        self.flush_events();
        if failed {
            self.deliver(WatchedEvent {
                event_type: EventType::None,
                state: KeeperState::AuthFailed,
                path: None,
            });
        }
        Ok(())
    }

    fn get_ephemerals(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[], words).map_err(Failure::new)?;
        let path = options
            .args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "/".to_owned());
        validate_path(&path).map_err(Failure::new)?;
        let ephemerals = self
            .call(client.get_ephemerals(&path))
            .map_err(|error| client_failure(error, &path))?;
        self.print_line(&format!("[{}]", ephemerals.join(", ")));
        Ok(())
    }

    fn get_all_children_number(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[], words).map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("getAllChildrenNumber")));
        }
        let path = options.args[1].clone();
        validate_path(&path).map_err(Failure::new)?;
        let total = self
            .call(client.get_all_children_number(&path))
            .map_err(|error| client_failure(error, &path))?;
        self.print_line(&total.to_string());
        Ok(())
    }

    fn add_watch(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('m', true)], words).map_err(Failure::new)?;
        if options.args.len() != 2 {
            return Err(Failure::new(usage_of("addWatch")));
        }
        let mode = match options.value('m').map(str::to_uppercase).as_deref() {
            None => self.add_watch_mode,
            Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
            Some("PERSISTENT") => AddWatchMode::Persistent,
            Some(_) => return Err(Failure::new(usage_of("addWatch"))),
        };
        self.add_watch_mode = mode;
        let path = options.args[1].clone();
        validate_path(&path).map_err(Failure::new)?;
        self.call(client.add_watch(&path, mode))
            .map_err(|error| client_failure(error, &path))?;
        match mode {
            AddWatchMode::Persistent => self.watches.persistent.insert(path),
            AddWatchMode::PersistentRecursive => self.watches.recursive.insert(path),
        };
        Ok(())
    }

    fn remove_watches(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(
            &[('c', false), ('d', false), ('a', false), ('l', false)],
            words,
        )
        .map_err(Failure::new)?;
        if options.args.len() < 2 {
            return Err(Failure::new(usage_of("removewatches")));
        }
        let path = options.args[1].clone();
        let kind = if options.has('c') {
            WatcherType::Children
        } else if options.has('d') {
            WatcherType::Data
        } else {
            WatcherType::Any
        };
        validate_path(&path).map_err(Failure::new)?;
        self.call(client.remove_watches(&path, kind))
            .map_err(|error| client_failure(error, &path))?;
        // The Java client then removes its own watchers and reports what it removed.
        let removed = self
            .watches
            .remove(&path, kind)
            .map_err(|()| keeper_failure(ErrorCode::NoWatcher, &path))?;
        for event_type in removed {
            self.deliver(WatchedEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: Some(path.clone()),
            });
        }
        Ok(())
    }

    fn who_am_i(&mut self, client: &Client) -> CommandResult {
        // `ZooKeeper.whoAmI` ignores the reply's error: the header line, then nothing.
        let clients = self.call(client.who_am_i()).unwrap_or_default();
        self.print_line("Auth scheme: User");
        for info in clients {
            self.print_line(&format!("{}: {}", info.auth_scheme, info.user));
        }
        Ok(())
    }

    fn config(&mut self, client: &Client, words: &[String]) -> CommandResult {
        let options = parse_options(&[('s', false), ('w', false), ('c', false)], words)
            .map_err(Failure::new)?;
        self.get_and_print(
            client,
            "/zookeeper/config",
            options.has('w'),
            options.has('s'),
        )
    }
}

fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: rzk_proto::codes::perms::ALL,
        id: Id {
            scheme: "world".to_owned(),
            id: "anyone".to_owned(),
        },
    }]
}

fn keeper_failure(code: ErrorCode, path: &str) -> Failure {
    Failure::new(wrapper_message(code, Some(path)))
}

fn client_failure(error: ClientError, path: &str) -> Failure {
    match error {
        ClientError::Keeper(code) => keeper_failure(code, path),
        // The Java client would say ConnectionLoss; say what actually happened.
        other => Failure::new(format!(
            "{} ({other})",
            keeper_message(ErrorCode::ConnectionLoss, Some(path))
        )),
    }
}

/// `Integer.parseInt`/`Integer.decode` failing ends zkCli with a NumberFormatException;
/// rzk reports it as a failed command instead of a stack trace.
fn parse_java_int(text: &str) -> Result<i32, Failure> {
    text.parse().map_err(|_| {
        Failure::new(format!(
            "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"{text}\""
        ))
    })
}
