use std::process::ExitCode;

use anyhow::bail;
use kiln_core::{Digest, ImageRef};
use kiln_store::{Image, Store};
use serde_json::json;

use super::Format;
use crate::output::{ago, human_size, print_table};

#[derive(clap::Args)]
pub struct Args {
    /// Only images of this repository (and tag)
    reference: Option<String>,
    /// Show all images (kiln keeps no intermediate images, so the same list)
    #[arg(short = 'a', long)]
    all: bool,
    /// Show manifest digests
    #[arg(long)]
    digests: bool,
    /// Do not truncate IDs
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Filter: dangling=true|false
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// One row of `kiln images`.
pub struct Row {
    pub name: Option<ImageRef>,
    pub image: Image,
    pub size: u64,
}

/// Uncompressed size of an image's layers (docker's SIZE), from the
/// recorded layer facts, falling back to the blob size.
pub fn image_size(store: &Store, image: &Image) -> anyhow::Result<u64> {
    let mut total = 0;
    for layer in image.layer_digests()? {
        total += store.layer_size(&layer)?;
    }
    Ok(total)
}

pub fn rows(store: &Store) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for record in store.images()? {
        let image = store.load_image(&record.entry)?;
        let size = image_size(store, &image)?;
        if record.names.is_empty() {
            rows.push(Row {
                name: None,
                image: image.clone(),
                size,
            });
        }
        for name in record.names {
            rows.push(Row {
                name: Some(name),
                image: image.clone(),
                size,
            });
        }
    }
    // Newest first, as docker lists them; names break ties for stable output.
    rows.sort_by(|a, b| {
        let created = |r: &Row| r.image.config.created().clone().unwrap_or_default();
        created(b)
            .cmp(&created(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(rows)
}

fn matches(filter: &str, name: &Option<ImageRef>) -> bool {
    let Some(name) = name else { return false };
    let Ok(want) = ImageRef::parse(filter) else {
        return false;
    };
    want.name() == name.name() && want.tag().is_none_or(|t| Some(t) == name.tag())
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let _ = args.all;
    let mut dangling: Option<bool> = None;
    for f in &args.filters {
        match f.split_once('=') {
            Some(("dangling", v)) => dangling = Some(v == "true" || v == "1"),
            _ => bail!("unsupported filter {f:?}: kiln images supports dangling=true|false"),
        }
    }
    let rows: Vec<Row> = rows(store)?
        .into_iter()
        .filter(|r| {
            args.reference
                .as_deref()
                .is_none_or(|f| matches(f, &r.name))
        })
        .filter(|r| dangling.is_none_or(|d| d == r.name.is_none()))
        .collect();
    let id = |d: &Digest| {
        if args.no_trunc {
            d.to_string()
        } else {
            d.short().to_string()
        }
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.image.id().clone()) {
                println!("{}", id(r.image.id()));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let split = |r: &Row| match &r.name {
        Some(n) => (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()),
        None => ("<none>".to_string(), "<none>".to_string()),
    };
    match args.format {
        Format::Json => {
            for r in &rows {
                let (repo, tag) = split(r);
                let created = r.image.config.created().clone();
                println!(
                    "{}",
                    json!({
                        "Containers": "N/A",
                        "CreatedAt": created.clone().unwrap_or_default(),
                        "CreatedSince": ago(created.as_deref()),
                        "Digest": r.image.manifest_digest.to_string(),
                        "ID": id(r.image.id()),
                        "Repository": repo,
                        "SharedSize": "N/A",
                        "Size": human_size(r.size),
                        "Tag": tag,
                        "UniqueSize": "N/A",
                        "VirtualSize": human_size(r.size),
                    })
                );
            }
        }
        Format::Table => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let (repo, tag) = split(r);
                    let mut row = vec![repo, tag];
                    if args.digests {
                        row.push(r.image.manifest_digest.to_string());
                    }
                    row.push(id(r.image.id()));
                    row.push(ago(r.image.config.created().as_deref()));
                    row.push(human_size(r.size));
                    row
                })
                .collect();
            print_table(&header, &table);
        }
    }
    Ok(ExitCode::SUCCESS)
}
