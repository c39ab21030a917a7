//! `kiln dockerfile parse`: the Dockerfile frontend on its own — prints
//! the typed model a build would use, or the first error with its line
//! and column. For debugging Dockerfiles and the frontend itself.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_dockerfile::{outline_instructions, BuildOptions};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Parse a Dockerfile and print its stages and instructions
    Parse(ParseArgs),
}

#[derive(clap::Args)]
pub(crate) struct ParseArgs {
    /// The Dockerfile ("-" for standard input)
    file: PathBuf,
    /// text (one line per instruction) or json (the whole model)
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Also expand variables per stage, as a build would (starting from an
    /// empty image environment)
    #[arg(long)]
    expand: bool,
    /// Set a build-time variable for --expand
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

fn host_platform() -> kiln_core::Platform {
    kiln_core::Platform::host()
}

/// `--build-arg NAME=VALUE`, or `NAME` alone to take it from the
/// environment (docker's rule; unset means not given).
pub(crate) fn build_args(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some(("", _)) => {
                anyhow::bail!("--build-arg {a:?}: the name is empty; use --build-arg NAME=VALUE")
            }
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Parse(args) = cmd;
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let df = kiln_dockerfile::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = BuildOptions {
        build_args: build_args(&args.build_args)?,
        build_platform: host_platform(),
        target_platform: host_platform(),
    };
    let expanded = match args.expand {
        true => Some(df.expand_all(&opts).map_err(|e| anyhow::anyhow!("{e}"))?),
        false => None,
    };
    match (args.format, &expanded) {
        (OutputFormat::Json, None) => println!("{}", serde_json::to_string_pretty(&df)?),
        (OutputFormat::Json, Some(stages)) => println!("{}", serde_json::to_string_pretty(stages)?),
        (OutputFormat::Text, None) => print!("{}", df.outline()),
        (OutputFormat::Text, Some(stages)) => {
            for s in stages {
                println!(
                    "stage {} name={:?} base={:?} platform={:?}",
                    s.index, s.name, s.base, s.platform
                );
                print!("{}", outline_instructions(&s.instructions));
            }
        }
    }
    for name in df.unused_build_args(&opts) {
        eprintln!("warning: build arg {name} was not consumed by any ARG");
    }
    Ok(ExitCode::SUCCESS)
}
