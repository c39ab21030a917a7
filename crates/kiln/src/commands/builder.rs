//! `kiln builder prune`: remove build cache nothing uses.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use kiln_store::Store;

use crate::output::human_size;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Remove build cache (steps, snapshots and cache mounts) no image uses
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub(crate) struct PruneArgs {
    /// Remove all build cache, not only what no image uses
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

pub(crate) fn run(store: &Store, cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Prune(args) = cmd;
    if !args.force {
        eprint!("WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let r = kiln_build::prune::prune(store, args.all)?;
    println!(
        "Deleted {} cache records and {} snapshots",
        r.cache_records, r.snapshots
    );
    println!(
        "Total reclaimed space: {}",
        human_size(r.reclaimed_blob_bytes)
    );
    Ok(ExitCode::SUCCESS)
}
