//! `kiln diff`: what a container changed (`A`, `C`, `D` lines, as docker
//! prints them), without what the runtime and its mounts made.

use std::process::ExitCode;

use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The container (ID, prefix or name)
    container: String,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let c = engine.get(&args.container)?;
    for change in engine.diff(&c)? {
        println!("{change}");
    }
    Ok(ExitCode::SUCCESS)
}
