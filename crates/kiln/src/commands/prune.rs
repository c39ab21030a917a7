use std::process::ExitCode;

use kiln_store::Store;

use crate::output::human_size;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Remove all unused images, not only dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

fn confirm(all: bool) -> bool {
    let what = if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    super::confirm(what)
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    if !args.force && !confirm(args.all) {
        return Ok(ExitCode::SUCCESS);
    }
    // Images containers use (any state) stay, as in docker.
    let in_use = super::container::engine(store)?.images_in_use()?;
    let pruned = store.prune_images(args.all, &in_use)?;
    let mut lines = Vec::new();
    for image in &pruned.images {
        lines.extend(
            image
                .untagged
                .iter()
                .map(|n| format!("untagged: {}", n.familiar())),
        );
        lines.extend(image.deleted.iter().map(|id| format!("deleted: {id}")));
    }
    let report = pruned.gc;
    // Snapshots of layer stacks no remaining image has.
    kiln_build::prune::prune_snapshots(store, false)?;
    if !lines.is_empty() {
        println!("Deleted Images:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report.reclaimed_bytes())
    );
    Ok(ExitCode::SUCCESS)
}
