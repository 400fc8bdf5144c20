//! `rzk cleanup [-n N] <dataLogDir> [snapDir]`: ZooKeeper's `PurgeTxnLog` (what `zkCleanup.sh`
//! runs): keep the N (≥ 3) newest snapshots and the log segments they need, delete the rest.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// Snapshots to keep (at least 3), like `zkCleanup.sh -n`.
    #[arg(short = 'n', long = "count", default_value_t = 3)]
    pub count: usize,
    /// The transaction log directory (`dataLogDir`, or `dataDir` when they are the same).
    pub data_log_dir: PathBuf,
    /// The snapshot directory (`dataDir`); defaults to `dataLogDir`.
    pub snap_dir: Option<PathBuf>,
}

pub fn run(args: CleanupArgs) -> Result<(), String> {
    let snap_dir = args
        .snap_dir
        .clone()
        .unwrap_or_else(|| args.data_log_dir.clone());
    let report = rzk_storage::purge(&args.data_log_dir, &snap_dir, args.count)
        .map_err(|error| error.to_string())?;
    if report.kept_snapshots.len() < args.count {
        println!(
            "Found {} whole snapshots, fewer than the {} to keep: nothing removed",
            report.kept_snapshots.len(),
            args.count
        );
    }
    for path in report.removed_snapshots.iter().chain(&report.removed_logs) {
        println!("Removing file: {}", path.display());
    }
    Ok(())
}
