use std::process::ExitCode;

use kiln_store::{Removal, Store};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Images to remove: names, IDs or ID prefixes
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove an image even when several names refer to it
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete the images' blobs now: only the names go, and the
    /// content stays until `kiln image prune` or the next removal collects it
    /// (kiln has no parent images, docker's meaning of this flag)
    #[arg(long)]
    no_prune: bool,
}

/// docker's lines for one removal.
fn lines(removal: &Removal) -> Vec<String> {
    let mut out: Vec<String> = removal
        .untagged
        .iter()
        .map(|n| format!("Untagged: {}", n.familiar()))
        .collect();
    if let Some(id) = &removal.deleted {
        out.push(format!("Deleted: {id}"));
    }
    out
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let in_use = super::container::engine(store)?.images_in_use()?;
    let mut failed = false;
    for input in &args.images {
        match store.remove_image(input, args.force, &in_use) {
            Ok(removal) => lines(&removal).iter().for_each(|l| println!("{l}")),
            Err(e) => {
                // docker's client says `Error:` for what it could not find,
                // and passes the daemon's conflicts on with their prefix.
                let prefix = match e.kind() {
                    kiln_core::ErrorKind::Conflict => "Error response from daemon",
                    _ => "Error",
                };
                eprintln!("{prefix}: {}", super::describe(&e.into()));
                failed = true;
            }
        }
    }
    if !args.no_prune {
        store.gc()?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
