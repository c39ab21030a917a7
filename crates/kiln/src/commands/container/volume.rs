//! `kiln volume create|ls|inspect|rm|prune`, as docker's local driver
//! shows them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use kiln_container::{ContainerError, Volume};
use kiln_store::Store;
use kiln_template::Value;
use serde_json::json;

use crate::format::OutputFormat;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes (anonymous ones; all with -a)
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// The volume's name (a random one when none)
    name: Option<String>,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    labels: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Filter: dangling=true|false, name=, label=KEY[=VALUE]
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Output: table (default), json, or a Go template
    #[arg(long)]
    format: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// Volumes (names)
    #[arg(required = true)]
    volumes: Vec<String>,
    /// Format the output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    /// Volumes (names)
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

fn inspect_json(store: &Store, v: &Volume) -> serde_json::Value {
    json!({
        "CreatedAt": v.created,
        "Driver": "local",
        "Labels": if v.labels.is_empty() { serde_json::Value::Null } else { json!(v.labels) },
        "Mountpoint": store.root().join("volumes").join(&v.name).join("_data"),
        "Name": v.name,
        "Options": serde_json::Value::Null,
        "Scope": "local",
    })
}

pub(crate) fn run(store: &Store, command: Command) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let volumes = engine.volumes();
    match command {
        Command::Create(a) => {
            let name = match a.name {
                Some(n) => n,
                None => kiln_container::containers::new_id()?,
            };
            let labels: BTreeMap<String, String> = a
                .labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            volumes.ensure(&name, labels, false)?;
            println!("{name}");
        }
        Command::Ls(a) => {
            let used = engine.volumes_in_use()?;
            let mut rows = volumes.list()?;
            for f in &a.filters {
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
                rows.retain(|vol| match k {
                    "dangling" => (v == "true" || v == "1") != used.contains_key(&vol.name),
                    "name" => vol.name.contains(v),
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => vol.labels.get(lk).map(String::as_str) == Some(lv),
                        None => vol.labels.contains_key(v),
                    },
                    _ => true,
                });
                if !["dangling", "name", "label", "driver"].contains(&k) {
                    bail!("invalid filter '{k}'");
                }
            }
            if a.quiet {
                for v in &rows {
                    println!("{}", v.name);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let format = OutputFormat::parse(a.format.as_deref(), "table {{.Driver}}\t{{.Name}}")?;
            let mut items = Vec::new();
            let mut docs = Vec::new();
            for v in &rows {
                let fields = [
                    ("Driver", "local".to_string()),
                    (
                        "Labels",
                        v.labels
                            .iter()
                            .map(|(k, l)| format!("{k}={l}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    ("Mountpoint", volumes.data(&v.name).display().to_string()),
                    ("Name", v.name.clone()),
                    ("Scope", "local".to_string()),
                ];
                docs.push(json!({"Driver": "local", "Name": v.name, "Mountpoint": fields[2].1, "Labels": fields[1].1, "Scope": "local"}));
                items.push(Value::strings("*formatter.volumeContext", &fields));
            }
            let headers = [
                ("Driver", "DRIVER"),
                ("Name", "VOLUME NAME"),
                ("Labels", "LABELS"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Scope", "SCOPE"),
            ];
            print!("{}", format.render(&items, &docs, &headers)?);
        }
        Command::Inspect(a) => {
            let mut docs = Vec::new();
            let mut failed = false;
            for n in &a.volumes {
                match volumes.get(n) {
                    Ok(v) => docs.push(inspect_json(store, &v)),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            match a.format {
                Some(f) => {
                    let t = kiln_template::Template::parse(&f)?;
                    for d in &docs {
                        println!("{}", t.execute(&Value::from_json(d))?);
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&docs)?),
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Rm(a) => {
            let used = engine.volumes_in_use()?;
            let mut failed = false;
            for n in &a.volumes {
                let r = if let Some(ids) = used.get(n) {
                    Err(anyhow!(
                        "remove {n}: volume is in use - [{}]",
                        ids.join(", ")
                    ))
                } else if a.force && matches!(volumes.get(n), Err(ContainerError::NoSuchVolume(_)))
                {
                    Ok(())
                } else {
                    volumes.remove(n).map_err(anyhow::Error::from)
                };
                match r {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!(
                            "Error response from daemon: {}",
                            crate::commands::describe(&e)
                        );
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Prune(a) => {
            let what = if a.all {
                "all local volumes not used by at least one container"
            } else {
                "anonymous local volumes not used by at least one container"
            };
            if !a.force && !crate::commands::confirm(what) {
                return Ok(ExitCode::SUCCESS);
            }
            let (deleted, bytes) = engine.prune_volumes(a.all)?;
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for d in &deleted {
                    println!("{d}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::output::human_size(bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
