//! `kiln commit`: a container's changes as a new image (printed as
//! `sha256:<id>`, tagged `REPO[:TAG]` when given).

use std::process::ExitCode;

use kiln_container::CommitOptions;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pause: bool,
    /// The container (ID, prefix or name)
    container: String,
    /// The new image's name, REPOSITORY[:TAG]
    name: Option<String>,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let names = match &args.name {
        Some(n) => vec![crate::commands::parse_tag_name(n)?],
        None => Vec::new(),
    };
    let engine = super::engine(store)?;
    let c = engine.get(&args.container)?;
    let opts = CommitOptions {
        author: args.author,
        message: args.message,
        changes: args.change,
        names,
        pause: args.pause,
    };
    let id = engine.commit(store, &c, &opts)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
