use std::collections::BTreeSet;
use std::process::ExitCode;

use kiln_core::{Digest, ImageRef};
use kiln_store::{Store, StoreError};

#[derive(clap::Args)]
pub struct Args {
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

/// Removes one image reference the way `docker rmi` does; returns the lines
/// to print.
fn remove(store: &Store, input: &str, force: bool) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    // A name that is tagged: untag it; the image goes when its last name goes.
    if let Ok(name) = input.parse::<ImageRef>() {
        if name.digest().is_none() && store.index()?.find(&name).is_some() {
            let removed = store.update_index(|index| {
                let entry = index.remove_tag(&name);
                let orphaned = entry
                    .as_ref()
                    .filter(|e| !index.manifests.iter().any(|m| m.digest == e.digest))
                    .cloned();
                Ok(orphaned)
            })?;
            out.push(format!("Untagged: {}", name.familiar()));
            if let Some(entry) = removed {
                if let Ok(image) = store.load_image(&entry) {
                    out.push(format!("Deleted: {}", image.id()));
                }
            }
            return Ok(out);
        }
    }
    // An ID (or name@digest): the whole image, every manifest with this config.
    let (_, image) = store.resolve(input)?;
    let id = image.id().clone();
    let mut manifests: BTreeSet<Digest> = BTreeSet::new();
    let mut names: Vec<ImageRef> = Vec::new();
    for record in store.images()? {
        if store.load_image(&record.entry)?.id() == &id {
            manifests.insert(record.entry.digest.clone());
            names.extend(record.names);
        }
    }
    if names.len() > 1 && !force {
        return Err(StoreError::ReferencedByMany {
            id: id.short().to_string(),
        }
        .into());
    }
    store.update_index(|index| {
        for m in &manifests {
            index.remove_manifest(m);
        }
        Ok(())
    })?;
    out.extend(names.iter().map(|n| format!("Untagged: {}", n.familiar())));
    out.push(format!("Deleted: {id}"));
    Ok(out)
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for input in &args.images {
        match remove(store, input, args.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("Error: {}", super::describe(&e));
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
