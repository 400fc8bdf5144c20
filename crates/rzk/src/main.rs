//! The `rzk` binary: composition only. Each subcommand maps its arguments onto the library
//! crates; nothing here holds logic a test cannot reach through a library.
//!
//! Owns the process: the command line (`server`, `cli`, `bench`, `ensemble`, `cleanup`), logging
//! setup, the global allocator, exit codes and signals (`rzk server` stops cleanly on SIGTERM or
//! SIGINT and exits 0), creating the data directories, and mapping a [`rzk_config::Config`] onto
//! `rzk_server::ServerOptions` and `rzk_replication::ReplicaConfig`. Must not touch what the
//! libraries own: no zoo.cfg parsing (rzk-config), no protocol bytes (rzk-proto), no znode rules
//! (rzk-state-machine), no log or snapshot formats (rzk-storage), no session or connection
//! handling (rzk-server), no agreement (rzk-replication).

mod bench;
mod cleanup;
mod cli;
mod ensemble;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc: rebuilding a large tree (restart, snapshot install) spent
/// about 40% of its time in glibc's allocator (see the dependency's note in Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (the `_RJEM_MALLOC_CONF` environment variable still
/// overrides them). One arena instead of jemalloc's default of four per core: rzk allocates most
/// of its memory on one thread (the state machine's), and the threads' own caches keep the other
/// threads off the arena's lock. Measured (BENCHMARKS.md, "Results at 13da70d"): with
/// 1,000,000 znodes 3-4 MiB less RSS while loaded (less fragmentation across arenas) and no loss
/// of throughput.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_OPTIONS: &[u8; 10] = b"narenas:1\0";

#[derive(Parser)]
#[command(
    name = "rzk",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server in the foreground from a ZooKeeper zoo.cfg (like `zkServer.sh start-foreground`).
    /// Without a file: standalone on client port 2181 with data in ./rzk-data.
    Server {
        /// An unmodified ZooKeeper zoo.cfg.
        config: Option<PathBuf>,
    },
    /// zkCli.sh-compatible shell: rzk cli [-server host:port[,...]] [-timeout ms] [cmd args...]
    Cli(cli::CliArgs),
    /// Load generator on the ZooKeeper protocol: latency percentiles and throughput (BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Start, stop, restart or report on several servers of this host (a pseudo-cluster).
    Ensemble(ensemble::EnsembleArgs),
    /// Delete old snapshots and log segments, keeping the N newest snapshots (zkCleanup.sh).
    Cleanup(cleanup::CleanupArgs),
}

fn init_logging() {
    // Quiet by default: warnings, plus rzk's few lifecycle lines. RUST_LOG overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rzk=info,rzk_server=info"));
    // Colours only on a terminal: zkServer.sh and the ensemble command write logs to files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // The shell returns zkCli's own exit codes (0, 1 on a KeeperException, 127 unknown command).
    if let Command::Cli(args) = cli.command {
        return cli::run(args);
    }
    let result = match cli.command {
        Command::Cli(_) => unreachable!("handled above"),
        Command::Server { config } => server::run(config),
        Command::Cleanup(args) => cleanup::run(args),
        Command::Ensemble(args) => ensemble::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rzk: {message}");
            ExitCode::FAILURE
        }
    }
}
