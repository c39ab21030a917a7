use std::process::ExitCode;

use kiln_store::Store;
use serde_json::json;

use kiln_template::Value as TemplateValue;

use crate::format::{created_at, OutputFormat, TimeStyle};
use crate::output::{ago, ellipsis, human_size};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Image: name, ID or ID prefix
    image: String,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print sizes and dates in human readable format (-H=false: bytes and
    /// RFC 3339 dates)
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    human: bool,
    /// Output: table (default), json, or a Go template ('table {{.ID}}\t{{.CreatedBy}}',
    /// fields .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

const HEADERS: [(&str, &str); 6] = [
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

struct Step {
    id: String,
    created: Option<String>,
    created_by: String,
    size: u64,
    comment: String,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let (_, image) = store.resolve(&args.image)?;
    let mut rows: Vec<Step> = store
        .history(&image)?
        .into_iter()
        .map(|h| Step {
            id: "<missing>".into(),
            created: h.created,
            created_by: h.created_by,
            size: h.size,
            comment: h.comment,
        })
        .collect();
    rows.reverse();
    // docker: the top row carries the image ID (12 hex unless --no-trunc,
    // with -q too); older rows are `<missing>`.
    if let Some(top) = rows.first_mut() {
        top.id = if args.no_trunc {
            image.id().to_string()
        } else {
            image.id().short().to_string()
        };
    }
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(ExitCode::SUCCESS);
    }
    let default_table = if args.human {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    } else {
        "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    };
    let format = OutputFormat::parse(args.format.as_deref(), default_table)?;
    let mut items = Vec::new();
    let mut json = Vec::new();
    for r in &rows {
        let by = r.created_by.replace('\t', " ");
        let created_at = created_at(r.created.as_deref(), TimeStyle::Rfc3339);
        let fields = [
            ("ID", r.id.clone()),
            (
                "CreatedSince",
                if args.human {
                    ago(r.created.as_deref())
                } else {
                    created_at.clone()
                },
            ),
            ("CreatedAt", created_at),
            (
                "CreatedBy",
                if args.no_trunc { by } else { ellipsis(&by, 45) },
            ),
            (
                "Size",
                if args.human {
                    human_size(r.size)
                } else {
                    r.size.to_string()
                },
            ),
            ("Comment", r.comment.clone()),
        ];
        // kiln's JSON keeps the config's own times and the full command.
        json.push(json!({
            "Comment": r.comment,
            "CreatedAt": r.created.clone().unwrap_or_default(),
            "CreatedBy": r.created_by,
            "CreatedSince": ago(r.created.as_deref()),
            "ID": r.id,
            "Size": human_size(r.size),
        }));
        items.push(TemplateValue::strings("*image.historyContext", &fields));
    }
    print!("{}", format.render(&items, &json, &HEADERS)?);
    Ok(ExitCode::SUCCESS)
}
