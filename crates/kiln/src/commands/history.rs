use std::process::ExitCode;

use kiln_store::Store;
use serde_json::{json, Value};

use super::Format;
use crate::output::{ago, ellipsis, human_size, print_table};

#[derive(clap::Args)]
pub struct Args {
    /// Image: name, ID or ID prefix
    image: String,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

struct Step {
    id: String,
    created: Option<String>,
    created_by: String,
    size: u64,
    comment: String,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let (_, image) = store.resolve(&args.image)?;
    let raw: Value = serde_json::from_slice(&image.config_bytes)?;
    let history = raw
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Each history entry that is not `empty_layer` owns the next layer,
    // bottom up; its size is that layer's uncompressed size.
    let layers = image.layer_digests()?;
    let mut next_layer = layers.iter();
    let mut rows: Vec<Step> = Vec::new();
    for h in &history {
        let text = |k: &str| {
            h.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let layer = if empty { None } else { next_layer.next() };
        let size = match layer {
            Some(l) => store.layer_size(l)?,
            None => 0,
        };
        let created = text("created");
        rows.push(Step {
            id: "<missing>".into(),
            created: (!created.is_empty()).then_some(created),
            created_by: text("created_by"),
            size,
            comment: text("comment"),
        });
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = if args.no_trunc || args.quiet {
            image.id().to_string()
        } else {
            image.id().short().to_string()
        };
    }
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for r in &rows {
                println!(
                    "{}",
                    json!({
                        "Comment": r.comment,
                        "CreatedAt": r.created.clone().unwrap_or_default(),
                        "CreatedBy": r.created_by,
                        "CreatedSince": ago(r.created.as_deref()),
                        "ID": r.id,
                        "Size": human_size(r.size),
                    })
                );
            }
        }
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let by = r.created_by.replace('\t', " ");
                    vec![
                        r.id.clone(),
                        ago(r.created.as_deref()),
                        if args.no_trunc { by } else { ellipsis(&by, 45) },
                        human_size(r.size),
                        r.comment.clone(),
                    ]
                })
                .collect();
            print_table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &table,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
