use std::process::ExitCode;

use kiln_core::{ImageRef, Platform};
use kiln_registry_client::{pull, PullOptions};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Args)]
pub struct Args {
    /// NAME[:TAG] or NAME@DIGEST
    image: String,
    /// Platform to pull from a multi-platform image (OS/ARCH[/VARIANT]) [default: the host's]
    #[arg(long)]
    platform: Option<Platform>,
    /// Keep the whole multi-platform index and every platform's image
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
    /// Print only the final reference
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    if !args.quiet {
        if !args.image.contains(':') && !args.image.contains('@') {
            eprintln!("Using default tag: latest");
        }
        let label = reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        eprintln!("{label}: Pulling from {}", reference.path());
    }
    let client = args.registry.client()?;
    let view = View::new(args.quiet);
    let opts = PullOptions {
        platform: args.platform.clone(),
        all_platforms: args.all_platforms,
    };
    let pulled = block_on(pull(&client, store, &reference, &opts, &view))??;
    if !args.quiet {
        eprintln!("Digest: {}", pulled.repo_digest);
        let status = if pulled.up_to_date {
            format!("Image is up to date for {}", reference.familiar())
        } else {
            format!("Downloaded newer image for {}", reference.familiar())
        };
        eprintln!("Status: {status}");
    }
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}
