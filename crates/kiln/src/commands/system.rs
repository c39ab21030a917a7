use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;

use kiln_core::Digest;
use kiln_store::Store;
use serde_json::json;

use super::Format;
use crate::output::{ago, human_size, print_table};

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(clap::Args)]
pub struct DfArgs {
    /// Per-image usage
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn check(store: &Store, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let r = store.check()?;
    match args.format {
        Format::Json => println!(
            "{}",
            json!({
                "BlobsChecked": r.blobs_checked,
                "BytesChecked": r.bytes_checked,
                "ImagesChecked": r.images_checked,
                "UnreferencedBlobs": r.unreferenced_blobs,
                "StaleIngests": r.stale_ingests,
                "Problems": r.problems,
            })
        ),
        Format::Table => {
            println!(
                "checked {} blobs ({}) and {} images",
                r.blobs_checked,
                human_size(r.bytes_checked),
                r.images_checked
            );
            if r.unreferenced_blobs > 0 || r.stale_ingests > 0 {
                println!(
                    "{} unreferenced blobs and {} abandoned ingests (harmless; `kiln image prune` removes them)",
                    r.unreferenced_blobs, r.stale_ingests
                );
            }
            for p in &r.problems {
                println!("PROBLEM: {p}");
            }
            if r.problems.is_empty() {
                println!("store is consistent");
            }
        }
    }
    Ok(if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Usage {
    name: String,
    tag: String,
    id: Digest,
    created: Option<String>,
    /// Every blob of the image: layers, config, manifest(s).
    blobs: BTreeSet<Digest>,
    layers: BTreeSet<Digest>,
}

pub fn df(store: &Store, args: DfArgs) -> anyhow::Result<ExitCode> {
    // Content sizes: a layer counts uncompressed (what `images` shows, as
    // docker counts it), whatever compression it is stored with.
    let sizes: HashMap<Digest, u64> = store
        .blobs()
        .walk()?
        .into_iter()
        .map(|(d, on_disk)| {
            let size = store
                .layer_info(&d)
                .map_or(on_disk, |i| i.uncompressed_size);
            (d, size)
        })
        .collect();
    let mut images: Vec<Usage> = Vec::new();
    for record in store.images()? {
        let image = store.load_image(&record.entry)?;
        let layers: BTreeSet<Digest> = image.layer_digests()?.into_iter().collect();
        let mut blobs = layers.clone();
        blobs.insert(image.config_digest.clone());
        blobs.insert(image.manifest_digest.clone());
        blobs.insert(record.entry.digest.clone());
        let (name, tag) = record
            .names
            .first()
            .map_or(("<none>".into(), "<none>".into()), |n| {
                (n.familiar_name(), n.tag().unwrap_or("<none>").to_string())
            });
        images.push(Usage {
            name,
            tag,
            id: image.id().clone(),
            created: image.config.created().clone(),
            blobs,
            layers,
        });
    }
    let mut users: HashMap<&Digest, usize> = HashMap::new();
    for u in &images {
        for b in &u.blobs {
            *users.entry(b).or_default() += 1;
        }
    }
    let size = |d: &Digest| sizes.get(d).copied().unwrap_or(0);
    let referenced: u64 = users.keys().map(|d| size(d)).sum();
    let shared: u64 = users
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(d, _)| size(d))
        .sum();
    let total: u64 = sizes.values().sum();
    let per_image: Vec<(u64, u64, u64)> = images
        .iter()
        .map(|u| {
            // Per image, layers only: its SIZE is the one `images` shows.
            let all: u64 = u.layers.iter().map(size).sum();
            let shared: u64 = u.layers.iter().filter(|b| users[b] > 1).map(size).sum();
            (all, shared, all - shared)
        })
        .collect();
    match args.format {
        Format::Json => println!(
            "{}",
            json!({
                "Images": images.len(),
                "TotalBytes": total,
                "SharedBytes": shared,
                "UniqueBytes": referenced - shared,
                "UnreferencedBytes": total - referenced,
                "PerImage": images.iter().zip(&per_image).map(|(u, (all, sh, un))| json!({
                    "Repository": u.name, "Tag": u.tag, "ID": u.id.to_string(),
                    "Size": all, "SharedSize": sh, "UniqueSize": un,
                })).collect::<Vec<_>>(),
            })
        ),
        Format::Table => {
            print_table(
                &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                &[vec![
                    "Images".into(),
                    images.len().to_string(),
                    "0".into(),
                    human_size(total),
                    format!("{} (100%)", human_size(total)),
                ]],
            );
            println!();
            println!(
                "Stored once, shared by several images: {}",
                human_size(shared)
            );
            println!(
                "Unique to one image:                   {}",
                human_size(referenced - shared)
            );
            println!(
                "Unreferenced (prune removes):          {}",
                human_size(total - referenced)
            );
            if args.verbose {
                println!();
                let rows: Vec<Vec<String>> = images
                    .iter()
                    .zip(&per_image)
                    .map(|(u, (all, sh, un))| {
                        vec![
                            u.name.clone(),
                            u.tag.clone(),
                            u.id.short().to_string(),
                            ago(u.created.as_deref()),
                            human_size(*all),
                            human_size(*sh),
                            human_size(*un),
                            "0".into(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "REPOSITORY",
                        "TAG",
                        "IMAGE ID",
                        "CREATED",
                        "SIZE",
                        "SHARED SIZE",
                        "UNIQUE SIZE",
                        "CONTAINERS",
                    ],
                    &rows,
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
