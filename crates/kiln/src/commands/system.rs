use std::process::ExitCode;

use kiln_store::{ImageUsage, Store};
use serde_json::json;

use super::Format;
use crate::output::{ago, human_size, table};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(clap::Args)]
pub(crate) struct DfArgs {
    /// Per-image usage
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn check(store: &Store, args: CheckArgs) -> anyhow::Result<ExitCode> {
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

/// One row of docker's `system df` table.
fn row(kind: &str, total: usize, active: usize, size: u64, reclaimable: u64) -> Vec<String> {
    let percent = (reclaimable * 100).checked_div(size).unwrap_or(0);
    vec![
        kind.into(),
        total.to_string(),
        active.to_string(),
        human_size(size),
        format!("{} ({percent}%)", human_size(reclaimable)),
    ]
}

pub(crate) fn df(store: &Store, args: DfArgs) -> anyhow::Result<ExitCode> {
    let usage = store.disk_usage()?;
    let engine = super::container::engine(store)?;
    let in_use = engine.images_in_use()?;
    let containers = engine.container_usage()?;
    let volumes = engine.volume_usage()?;
    let images_active = usage
        .images
        .iter()
        .filter(|u| in_use.contains(&u.id))
        .count();
    // What removing every unused image would free: their own bytes, and
    // the shared ones too when no image is in use.
    let images_free = if images_active == 0 {
        usage.total
    } else {
        usage
            .images
            .iter()
            .filter(|u| !in_use.contains(&u.id))
            .map(ImageUsage::unique)
            .sum()
    };
    let name_tag = |u: &ImageUsage| {
        u.names
            .first()
            .map_or(("<none>".to_string(), "<none>".to_string()), |n| {
                (n.familiar_name(), n.tag().unwrap_or("<none>").to_string())
            })
    };
    match args.format {
        Format::Json => println!(
            "{}",
            json!({
                "Images": usage.images.len(),
                "ActiveImages": images_active,
                "ReclaimableBytes": images_free,
                "Containers": containers.iter().map(|c| json!({
                    "ID": c.id, "Names": c.name, "Running": c.running, "Size": c.size,
                })).collect::<Vec<_>>(),
                "Volumes": volumes.iter().map(|v| json!({
                    "Name": v.name, "Links": v.links, "Size": v.size,
                })).collect::<Vec<_>>(),
                "TotalBytes": usage.total,
                "SharedBytes": usage.shared,
                "UniqueBytes": usage.unique,
                "UnreferencedBytes": usage.unreferenced,
                "PerImage": usage.images.iter().map(|u| {
                    let (name, tag) = name_tag(u);
                    json!({
                        "Repository": name, "Tag": tag, "ID": u.id.to_string(),
                        "Size": u.size, "SharedSize": u.shared, "UniqueSize": u.unique(),
                    })
                }).collect::<Vec<_>>(),
            })
        ),
        Format::Table => {
            print!(
                "{}",
                table(
                    &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                    &[
                        row(
                            "Images",
                            usage.images.len(),
                            images_active,
                            usage.total,
                            images_free
                        ),
                        row(
                            "Containers",
                            containers.len(),
                            containers.iter().filter(|c| c.running).count(),
                            containers.iter().map(|c| c.size).sum(),
                            containers
                                .iter()
                                .filter(|c| !c.running)
                                .map(|c| c.size)
                                .sum(),
                        ),
                        row(
                            "Local Volumes",
                            volumes.len(),
                            volumes.iter().filter(|v| v.links > 0).count(),
                            volumes.iter().map(|v| v.size).sum(),
                            volumes
                                .iter()
                                .filter(|v| v.links == 0)
                                .map(|v| v.size)
                                .sum(),
                        ),
                    ],
                )
            );
            println!();
            println!(
                "Stored once, shared by several images: {}",
                human_size(usage.shared)
            );
            println!(
                "Unique to one image:                   {}",
                human_size(usage.unique)
            );
            println!(
                "Unreferenced (prune removes):          {}",
                human_size(usage.unreferenced)
            );
            if args.verbose {
                println!();
                let rows: Vec<Vec<String>> = usage
                    .images
                    .iter()
                    .map(|u| {
                        let (name, tag) = name_tag(u);
                        vec![
                            name,
                            tag,
                            u.id.short().to_string(),
                            ago(u.created.as_deref()),
                            human_size(u.size),
                            human_size(u.shared),
                            human_size(u.unique()),
                            "0".into(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
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
                    )
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
