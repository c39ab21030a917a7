//! `kiln ps`: docker's columns, filters, `-q`, `-n`, `-l`, `--no-trunc`
//! and `--format` (templates, `json`).

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::bail;
use kiln_container::{Container, MountConfig, Status};
use kiln_store::Store;
use kiln_template::Value;
use serde_json::json;

use crate::format::OutputFormat;
use crate::output::{ago, ellipsis, human_duration};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter: status=, name=, id=, label=KEY[=VALUE], ancestor=, exited=, health=, volume=
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Output: table (default), json, or a Go template
    #[arg(long)]
    format: Option<String>,
}

const HEADERS: [(&str, &str); 13] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
];

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

fn since(t: Option<&str>) -> u64 {
    t.and_then(kiln_core::parse_rfc3339)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// docker's `.Status`: `Up 5 seconds (healthy)`, `Exited (0) 3 seconds
/// ago`, `Created`, `Restarting (1) 2 seconds ago`.
pub(crate) fn status_text(c: &Container) -> String {
    let s = &c.state;
    match s.status {
        Status::Running => {
            let mut t = format!("Up {}", human_duration(since(s.started_at.as_deref())));
            match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => t.push_str(" (health: starting)"),
                Some(h) if !h.is_empty() => t.push_str(&format!(" ({h})")),
                _ => {}
            }
            t
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(s.finished_at.as_deref()))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(s.finished_at.as_deref()))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn command_line(c: &Container) -> String {
    let p = &c.config.process;
    std::iter::once(p.path.as_str())
        .chain(p.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `--filter KEY=VALUE`.
fn keeps(c: &Container, key: &str, value: &str) -> anyhow::Result<bool> {
    Ok(match key {
        "status" => {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&value)
            {
                bail!("invalid filter 'status={value}'");
            }
            c.state.status.as_str() == value
        }
        "name" => c.config.name.contains(value.trim_start_matches('/')),
        "id" => c.config.id.starts_with(value),
        "label" => match value.split_once('=') {
            Some((k, v)) => c.config.process.labels.get(k).map(String::as_str) == Some(v),
            None => c.config.process.labels.contains_key(value),
        },
        "ancestor" => {
            c.config.image == value
                || c.config.image_id == value
                || c.config
                    .image_id
                    .trim_start_matches("sha256:")
                    .starts_with(value)
                || c.config.image.split(':').next() == Some(value)
        }
        "exited" => {
            let code: i32 = value
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid filter 'exited={value}': not a number"))?;
            c.state.status == Status::Exited && c.state.exit_code == code
        }
        "health" => {
            let h = c
                .state
                .health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none");
            h == value
        }
        "volume" => c.config.host.mounts.iter().any(|m| match m {
            MountConfig::Volume { name, target, .. } => name == value || target == value,
            MountConfig::Bind { source, target, .. } => {
                source.to_string_lossy() == value || target == value
            }
            MountConfig::Tmpfs { target, .. } => target == value,
        }),
        other => bail!("invalid filter '{other}'"),
    })
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let mut filters = Vec::new();
    for f in &args.filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        // Checked before any container is looked at, as docker does.
        if k == "health" && !["starting", "healthy", "unhealthy", "none"].contains(&v) {
            bail!("Unrecognised filter value for health: {v}");
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let any_state = args.all
        || args.latest
        || args.last >= 0
        || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let mut rows = Vec::new();
    for c in engine.list()? {
        if !any_state && !matches!(c.state.status, Status::Running | Status::Restarting) {
            continue;
        }
        // Same key: any value; different keys: all.
        let mut ok = true;
        for key in filters
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let mut any = false;
            for (_, v) in filters.iter().filter(|(k, _)| k == key) {
                any |= keeps(&c, key, v)?;
            }
            ok &= any;
        }
        if ok {
            rows.push(c);
        }
    }
    let limit = if args.latest { 1 } else { args.last };
    if limit >= 0 {
        rows.truncate(limit as usize);
    }
    if args.quiet {
        for c in &rows {
            println!("{}", if args.no_trunc { c.id() } else { c.short_id() });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = OutputFormat::parse(args.format.as_deref(), DEFAULT_TABLE)?;
    let mut items = Vec::new();
    let mut json = Vec::new();
    for c in &rows {
        let command = command_line(c);
        let command = if args.no_trunc {
            command
        } else {
            ellipsis(&command, 20)
        };
        let labels = c
            .config
            .process
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mounts = c
            .config
            .host
            .mounts
            .iter()
            .map(|m| match m {
                MountConfig::Volume { name, .. } => {
                    if args.no_trunc {
                        name.clone()
                    } else {
                        ellipsis(name, 15)
                    }
                }
                MountConfig::Bind { source, .. } => source.display().to_string(),
                MountConfig::Tmpfs { target, .. } => target.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let fields = [
            ("Command", format!("{command:?}")),
            (
                "CreatedAt",
                crate::format::created_at(Some(&c.config.created), crate::format::TimeStyle::Go),
            ),
            (
                "ID",
                if args.no_trunc {
                    c.id().to_string()
                } else {
                    c.short_id().to_string()
                },
            ),
            ("Image", c.config.image.clone()),
            ("Labels", labels),
            ("Mounts", mounts),
            ("Names", c.config.name.clone()),
            ("Networks", c.config.host.network.clone()),
            ("Ports", kiln_container::net::ps_column(c)),
            ("RunningFor", ago(Some(&c.config.created))),
            ("Size", "N/A".into()),
            ("State", c.state.status.as_str().to_string()),
            ("Status", status_text(c)),
        ];
        let mut doc = serde_json::Map::new();
        for (k, v) in &fields {
            doc.insert(k.to_string(), json!(v));
        }
        json.push(serde_json::Value::Object(doc));
        items.push(Value::strings("*formatter.ContainerContext", &fields));
    }
    print!("{}", format.render(&items, &json, &HEADERS)?);
    Ok(ExitCode::SUCCESS)
}
