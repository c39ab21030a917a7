//! `kiln manifest create|annotate|inspect|push|rm`: docker's manifest-list
//! verbs. A list is made in the store from images the store holds (an
//! image named by a registry reference that the store lacks is pulled
//! first), is an index entry like any multi-platform image, and is pushed
//! with its images by the one push code. `inspect` reads a local list
//! first, then the registry, without pulling, and prints docker's output
//! (see [`print`]).

mod inspect;
pub(crate) mod print;

use std::process::ExitCode;

use kiln_core::image::{Descriptor, Index};
use kiln_core::{media_types, ImageRef};
use kiln_registry_client::{pull, push, PullOptions, Repo, Silent};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a manifest list in the store from images (store first, else pulled)
    Create(CreateArgs),
    /// Set the platform of one image of a manifest list
    Annotate(AnnotateArgs),
    /// Display an image manifest, or manifest list (local list first, else the registry)
    Inspect(inspect::Args),
    /// Push a manifest list and its images to a registry
    Push(PushArgs),
    /// Delete one or more manifest lists from the store (their images stay)
    Rm(RmArgs),
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// Name of the list (NAME[:TAG])
    list: String,
    /// Images to list (store names or IDs, or registry references)
    #[arg(required = true)]
    manifests: Vec<String>,
    /// Amend an existing manifest list
    #[arg(short, long)]
    amend: bool,
    /// Allow communication with an insecure (plain HTTP) registry
    #[arg(long = "insecure")]
    plain_http: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub(crate) struct AnnotateArgs {
    /// The manifest list
    list: String,
    /// The image in it to annotate
    manifest: String,
    /// Set operating system
    #[arg(long)]
    os: Option<String>,
    /// Set architecture
    #[arg(long)]
    arch: Option<String>,
    /// Set architecture variant
    #[arg(long)]
    variant: Option<String>,
    /// Set operating system version
    #[arg(long = "os-version")]
    os_version: Option<String>,
    /// Add operating system features (comma-separated, repeatable)
    #[arg(long = "os-features", value_delimiter = ',')]
    os_features: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct PushArgs {
    /// The manifest list to push (NAME[:TAG])
    list: String,
    /// Remove the local manifest list after push
    #[arg(short, long)]
    purge: bool,
    /// Allow push to an insecure (plain HTTP) registry
    #[arg(long = "insecure")]
    plain_http: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub(crate) struct RmArgs {
    /// Manifest lists to delete
    #[arg(required = true)]
    lists: Vec<String>,
}

pub(crate) fn run(store: &Store, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Create(a) => create(store, a),
        Command::Annotate(a) => annotate(store, a),
        Command::Inspect(a) => inspect::run(store, a),
        Command::Push(a) => push_list(store, a),
        Command::Rm(a) => rm(store, a),
    }
}

/// `--insecure`: plain HTTP to the registry of `reference`.
pub(crate) fn with_insecure(
    mut args: RegistryArgs,
    insecure: bool,
    reference: &ImageRef,
) -> RegistryArgs {
    if insecure {
        args.insecure.push(reference.domain().to_string());
    }
    args
}

fn parse_list(name: &str) -> anyhow::Result<ImageRef> {
    name.parse::<ImageRef>()
        .map_err(|e| anyhow::anyhow!("error parsing name for manifest list {name}: {e}"))
}

fn create(store: &Store, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let list_name = parse_list(&args.list)?;
    if list_name.digest().is_some() {
        anyhow::bail!("a manifest list needs a tag, not a digest: {}", args.list);
    }
    let mut list = match store.read_list(&list_name)? {
        Some(_) if !args.amend => {
            anyhow::bail!("refusing to amend an existing manifest list with no --amend flag")
        }
        Some((_, existing)) => existing,
        None => Index::oci(Vec::new()),
    };
    let registry = with_insecure(args.registry.clone(), args.plain_http, &list_name);
    for input in &args.manifests {
        let entry = child_entry(store, &registry, input)?;
        // The same image listed again replaces its entry, as docker's
        // transaction store overwrites it.
        list.manifests.retain(|m| m.digest != entry.digest);
        list.manifests.push(entry);
    }
    store.write_list(&list_name, list)?;
    println!("Created manifest list {list_name}");
    Ok(ExitCode::SUCCESS)
}

/// The list entry of `input`: an image in the store, or one pulled from
/// its registry. A list inside a list is refused, as docker refuses it.
fn child_entry(store: &Store, registry: &RegistryArgs, input: &str) -> anyhow::Result<Descriptor> {
    if let Ok((record, image)) = store.resolve(input) {
        if media_types::is_index(&record.entry.media_type) {
            anyhow::bail!("{input} is a manifest list");
        }
        return Ok(store.list_entry(&image)?);
    }
    let reference: ImageRef = input.parse()?;
    let client = registry.client()?;
    let repo = Repo::of(&reference);
    let at = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, t) => t.unwrap_or("latest").to_string(),
    };
    let top = block_on(client.get_manifest(&repo, &at))??;
    if top.is_index() {
        anyhow::bail!("{reference} is a manifest list");
    }
    // Pinned to what was just read, so a moving tag cannot change it.
    let pinned = reference.with_digest(top.digest.clone());
    block_on(pull(
        &client,
        store,
        &pinned,
        &PullOptions::default(),
        &Silent,
    ))??;
    let (_, image) = store.resolve(&pinned.to_string())?;
    Ok(store.list_entry(&image)?)
}

fn annotate(store: &Store, args: AnnotateArgs) -> anyhow::Result<ExitCode> {
    let list_name = parse_list(&args.list).map_err(|e| anyhow::anyhow!("annotate: {e}"))?;
    let Some((_, mut list)) = store.read_list(&list_name)? else {
        anyhow::bail!(
            "No such manifest list: {}; make one with `kiln manifest create {} IMAGE...`",
            args.list,
            args.list
        );
    };
    let missing = || {
        anyhow::anyhow!(
            "manifest for image {} does not exist in {}",
            args.manifest,
            args.list
        )
    };
    let (_, image) = store.resolve(&args.manifest).map_err(|_| missing())?;
    let entry = list
        .manifests
        .iter_mut()
        .find(|m| m.digest == image.manifest_digest)
        .ok_or_else(missing)?;
    let p = entry
        .platform
        .get_or_insert_with(|| kiln_core::Platform::new("", "", None));
    if let Some(os) = &args.os {
        p.os = os.clone();
    }
    if let Some(arch) = &args.arch {
        p.architecture = arch.clone();
    }
    if let Some(v) = &args.variant {
        p.variant = Some(v.clone());
    }
    if let Some(v) = &args.os_version {
        p.os_version = Some(v.clone());
    }
    for f in &args.os_features {
        if !p.os_features.contains(f) {
            p.os_features.push(f.clone());
        }
    }
    if !known_platform(p) {
        anyhow::bail!(
            "manifest entry for image has unsupported os/arch combination: {}/{}",
            p.os,
            p.architecture
        );
    }
    store.write_list(&list_name, list)?;
    Ok(ExitCode::SUCCESS)
}

/// docker's table of valid os/arch pairs (`isValidOSArch`), the ones Go
/// builds for.
fn known_platform(p: &kiln_core::Platform) -> bool {
    const ARCHES: &[&str] = &[
        "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
        "ppc64le", "riscv64", "s390x", "wasm",
    ];
    const OSES: &[&str] = &[
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "illumos",
        "ios",
        "js",
        "linux",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
    ];
    OSES.contains(&p.os.as_str()) && ARCHES.contains(&p.architecture.as_str())
}

fn push_list(store: &Store, args: PushArgs) -> anyhow::Result<ExitCode> {
    let list_name = parse_list(&args.list)?;
    let Some((entry, list)) = store.read_list(&list_name)? else {
        anyhow::bail!(
            "{list_name} not found: no manifest list by that name in the store; make one with `kiln manifest create {list_name} IMAGE...`"
        );
    };
    for m in &list.manifests {
        let p = m.platform.as_ref();
        if p.is_none_or(|p| p.os.is_empty() || p.architecture.is_empty()) {
            anyhow::bail!(
                "manifest {}@{} must have an OS and Architecture to be pushed to a registry; set them with `kiln manifest annotate --os --arch`",
                list_name.name(),
                m.digest
            );
        }
    }
    let registry = with_insecure(args.registry.clone(), args.plain_http, &list_name);
    let client = registry.client()?;
    let view = View::new(false);
    let pushed = block_on(push(
        &client,
        store,
        &entry,
        &list_name,
        &super::push::push_options(super::push::PushCompression::Gzip, false),
        &view,
    ))??;
    // docker's last line: the digest the registry names the list by (the
    // images may have been recompressed on the way, so it can differ from
    // the local list's).
    println!("{}", pushed.digest);
    if args.purge {
        store.remove_list(&list_name)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(store: &Store, args: RmArgs) -> anyhow::Result<ExitCode> {
    let mut errors = Vec::new();
    for name in &args.lists {
        let removed = match name.parse::<ImageRef>() {
            Ok(r) => store.remove_list(&r).map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match removed {
            Ok(true) => {}
            Ok(false) => errors.push(format!("No such manifest: {name}")),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!("{}", errors.join("\n"))
}
