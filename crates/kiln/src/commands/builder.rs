//! `kiln builder prune`: remove build cache nothing uses.

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
    if !args.force && !super::confirm("all dangling build cache") {
        return Ok(ExitCode::SUCCESS);
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
