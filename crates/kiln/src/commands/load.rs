use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_archive::load;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Read from this archive instead of standard input
    #[arg(short = 'i', long)]
    input: Option<PathBuf>,
    /// Print nothing on success
    #[arg(short = 'q', long)]
    quiet: bool,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(File::open(p).with_context(|| format!("open {}", p.display()))?)
        }
        // Waiting for an archive typed at a terminal would only hang.
        _ if std::io::stdin().is_terminal() => {
            anyhow::bail!("requested load from stdin, but stdin is empty")
        }
        _ => Box::new(super::stdin_file()?),
    };
    let what = args
        .input
        .as_ref()
        .map_or("standard input".to_string(), |p| p.display().to_string());
    let loaded = load(store, input).with_context(|| format!("load {what}"))?;
    if !args.quiet {
        for (name, old) in &loaded.renamed {
            println!(
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                name.familiar()
            );
        }
        for (id, names) in &loaded.images {
            if names.is_empty() {
                println!("Loaded image ID: {id}");
            }
            for n in names {
                println!("Loaded image: {}", n.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
