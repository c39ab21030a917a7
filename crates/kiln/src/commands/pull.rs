use std::process::ExitCode;

use kiln_core::{ImageRef, Platform};
use kiln_registry_client::{pull, PullOptions};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// NAME[:TAG] or NAME@DIGEST
    image: String,
    /// Platform to pull from a multi-platform image (OS/ARCH[/VARIANT]) [default: the host's]
    #[arg(long)]
    platform: Option<Platform>,
    /// Keep the whole multi-platform index and every platform's image
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
    /// Pull every tag of the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Print only the final reference
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    trust: super::trust::TrustArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let policy = args.trust.policy()?;
    if args.all_tags {
        if policy.is_some() {
            anyhow::bail!(
                "--verify-key and --signature-policy take one image: pull the tags one by one"
            );
        }
        return all_tags(store, &args, &reference);
    }
    pull_one(
        store,
        &args.image,
        &reference,
        &PullOptions {
            platform: args.platform.clone(),
            all_platforms: args.all_platforms,
        },
        args.quiet,
        &args.registry,
        policy.as_ref(),
    )?;
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}

/// `run`'s pull of a missing image: docker's lines on stderr, nothing on
/// stdout (that is the container's); `policy` checked before the pull.
pub(crate) fn pull_for_run(
    store: &Store,
    image: &str,
    platform: Option<Platform>,
    registry: &RegistryArgs,
    policy: Option<&kiln_sign::Policy>,
) -> anyhow::Result<()> {
    let reference: ImageRef = image.parse()?;
    let opts = PullOptions {
        platform,
        all_platforms: false,
    };
    pull_one(store, image, &reference, &opts, false, registry, policy)
}

/// One image pulled, with docker's lines on stderr unless `quiet`. With a
/// `policy`, the image's signatures are checked in the registry first, the
/// pull must bring the verified manifest, and the signatures are kept
/// beside it in the store.
fn pull_one(
    store: &Store,
    image: &str,
    reference: &ImageRef,
    opts: &PullOptions,
    quiet: bool,
    registry: &RegistryArgs,
    policy: Option<&kiln_sign::Policy>,
) -> anyhow::Result<()> {
    if !quiet {
        if !image.contains(':') && !image.contains('@') {
            eprintln!("Using default tag: latest");
        }
        let label = reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        eprintln!("{label}: Pulling from {}", reference.path());
    }
    let client = registry.client()?;
    let verified = policy
        .map(|p| super::trust::enforce_remote(&client, p, reference))
        .transpose()?;
    let view = View::new(quiet);
    let pulled = block_on(pull(&client, store, reference, opts, &view))??;
    if let Some(v) = &verified {
        super::trust::keep_signatures(store, &client, reference, v, &pulled.repo_digest)?;
    }
    if !quiet {
        eprintln!("Digest: {}", pulled.repo_digest);
        let status = if pulled.up_to_date {
            format!("Image is up to date for {}", reference.familiar())
        } else {
            format!("Downloaded newer image for {}", reference.familiar())
        };
        eprintln!("Status: {status}");
    }
    Ok(())
}

/// `pull -a`: every tag the registry lists, one after the other, with
/// docker's lines per tag and one status at the end.
fn all_tags(store: &Store, args: &Args, reference: &ImageRef) -> anyhow::Result<ExitCode> {
    // The name as typed must have no tag or digest (a ':' after the last
    // '/' is a tag; one before it is a registry port).
    let last = args.image.rsplit('/').next().unwrap_or_default();
    if last.contains(':') || args.image.contains('@') {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let client = args.registry.client()?;
    let repo = kiln_registry_client::Repo::of(reference);
    let tags = block_on(client.list_tags(&repo))??;
    if tags.is_empty() {
        anyhow::bail!(
            "{} has no tags on the registry: nothing to pull",
            reference.familiar_name()
        );
    }
    let view = View::new(args.quiet);
    let opts = PullOptions {
        platform: args.platform.clone(),
        all_platforms: args.all_platforms,
    };
    let mut downloaded = false;
    for tag in &tags {
        let tagged: ImageRef = format!("{}:{tag}", reference.name())
            .parse()
            .map_err(|e| anyhow::anyhow!("the registry lists an invalid tag {tag:?}: {e}"))?;
        if !args.quiet {
            eprintln!("{tag}: Pulling from {}", reference.path());
        }
        let pulled = block_on(pull(&client, store, &tagged, &opts, &view))??;
        downloaded |= !pulled.up_to_date;
        if !args.quiet {
            eprintln!("Digest: {}", pulled.repo_digest);
        }
    }
    if !args.quiet {
        let name = reference.familiar_name();
        if downloaded {
            eprintln!("Status: Downloaded newer image for {name}");
        } else {
            eprintln!("Status: Image is up to date for {name}");
        }
    }
    println!("{}", reference.name());
    Ok(ExitCode::SUCCESS)
}
