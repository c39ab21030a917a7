//! `kiln stats [--no-stream] [CONTAINER...]`: docker's columns from each
//! running container's cgroup, redrawn each second until interrupted, or
//! one reading (CPU use over half a second) with `--no-stream`.

use std::process::ExitCode;
use std::time::Duration;

use kiln_container::stats::Stats;
use kiln_store::Store;
use kiln_template::Value;
use std::io::Write;

use crate::format::OutputFormat;
use crate::output::{bytes_size, human_size};

const TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a Go template, or json
    #[arg(long)]
    format: Option<String>,
    /// Containers (ID, prefix or name); all running ones when none
    containers: Vec<String>,
}

fn row(s: &Stats, no_trunc: bool) -> Vec<(&'static str, String)> {
    let id = if no_trunc {
        s.container.id().to_string()
    } else {
        s.container.short_id().to_string()
    };
    let m = &s.sample;
    let mem_perc = if m.mem_limit > 0 {
        m.mem_usage as f64 / m.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    vec![
        ("ID", id.clone()),
        ("Container", id),
        ("Name", s.container.config.name.clone()),
        ("CPUPerc", format!("{:.2}%", s.cpu_percent)),
        (
            "MemUsage",
            format!("{} / {}", bytes_size(m.mem_usage), bytes_size(m.mem_limit)),
        ),
        ("MemPerc", format!("{mem_perc:.2}%")),
        (
            "NetIO",
            format!("{} / {}", human_size(m.net_rx), human_size(m.net_tx)),
        ),
        (
            "BlockIO",
            format!(
                "{} / {}",
                human_size(m.block_read),
                human_size(m.block_write)
            ),
        ),
        ("PIDs", m.pids.to_string()),
    ]
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let format = OutputFormat::parse(args.format.as_deref(), TABLE)?;
    let engine = super::engine(store)?;
    // Streaming: docker's table redrawn (screen cleared, cursor home) each
    // time a reading is in, CPU use over the second since the last one,
    // until interrupted (Ctrl-C) or, for named containers, one stops.
    let interval = if args.no_stream {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let mut out = std::io::stdout();
    loop {
        let started = std::time::Instant::now();
        let stats = match engine.stats(&args.containers, args.all, interval) {
            Ok(s) => s,
            Err(e @ kiln_container::ContainerError::NotRunning(_)) => {
                eprintln!("Error response from daemon: {e}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(e.into()),
        };
        let text = render(&format, &stats, args.no_trunc)?;
        if args.no_stream {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        write!(out, "\x1b[2J\x1b[H{text}")?;
        out.flush()?;
        // Nothing to read (no container runs): wait the interval anyway.
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn render(format: &OutputFormat, stats: &[Stats], no_trunc: bool) -> anyhow::Result<String> {
    let mut items = Vec::new();
    let mut json = Vec::new();
    for s in stats {
        let fields = row(s, no_trunc);
        json.push(serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect(),
        ));
        items.push(Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v)))
                .collect(),
        ));
    }
    format.render(&items, &json, HEADERS)
}
