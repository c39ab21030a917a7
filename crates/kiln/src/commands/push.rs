use std::process::ExitCode;

use kiln_core::ImageRef;
use kiln_layer::Compression;
use kiln_registry_client::{push, PushOptions};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// NAME[:TAG] of an image in the store; with --all-tags, a repository
    image: String,
    /// Push every tag of the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Print only the pushed digest
    #[arg(short, long)]
    quiet: bool,
    /// Compression for layers stored uncompressed [default: gzip; an image
    /// signed in the store goes as stored, so the registry's manifest is
    /// the one signed]
    #[arg(long, visible_alias = "compression-format", value_enum)]
    compression: Option<PushCompression>,
    /// Also recompress layers stored with another compression
    #[arg(long)]
    force_compression: bool,
    /// Of a multi-platform image, push only this platform's image (under
    /// the tag, as docker does)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum PushCompression {
    Gzip,
    Zstd,
}

/// The push options of the compression flags.
pub(crate) fn push_options(compression: PushCompression, force: bool) -> PushOptions {
    PushOptions {
        compression: match compression {
            PushCompression::Gzip => Compression::Gzip,
            PushCompression::Zstd => Compression::Zstd,
        },
        force_compression: force,
    }
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    if reference.digest().is_some() {
        // docker's words: a digest names content, a push needs a tag.
        anyhow::bail!("cannot push a digest reference");
    }
    let targets: Vec<(ImageRef, kiln_store::IndexEntry)> = if args.all_tags {
        let last = args.image.rsplit('/').next().unwrap_or_default();
        if last.contains(':') || args.image.contains('@') {
            anyhow::bail!(
                "--all-tags takes a repository name without a tag: {}",
                args.image
            );
        }
        let name = reference.name();
        let mut list: Vec<_> = store
            .images()?
            .into_iter()
            .flat_map(|r| {
                r.names
                    .iter()
                    .filter(|n| n.name() == name)
                    .map(|n| (n.clone(), r.entry.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        if list.is_empty() {
            anyhow::bail!(
                "No such image: no tag of {} is in the store",
                reference.familiar_name()
            );
        }
        list
    } else {
        let (record, _) = store.resolve(&args.image).map_err(|e| {
            anyhow::anyhow!(
                "{e}: tag an image with this name first (kiln tag IMAGE {})",
                args.image
            )
        })?;
        let entry = match &args.platform {
            Some(p) => one_platform(store, &record.entry, p, &args.image)?,
            None => record.entry,
        };
        vec![(reference.clone(), entry)]
    };
    if args.platform.is_some() && args.all_tags {
        anyhow::bail!("--platform and --all-tags: push one tag's platform at a time");
    }
    if !args.quiet {
        eprintln!("The push refers to repository [{}]", reference.name());
    }
    let client = args.registry.client()?;
    let view = View::new(args.quiet);
    for (name, entry) in targets {
        push_one(store, &client, &view, &name, &entry, &args)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Pushes a built image or index (all its platforms, then the index) under
/// each of `names`, with `kiln push`'s defaults (`kiln build --push`).
pub(crate) fn push_tags(
    store: &Store,
    registry: &RegistryArgs,
    entry: &kiln_store::IndexEntry,
    names: &[ImageRef],
    quiet: bool,
) -> anyhow::Result<()> {
    let client = registry.client()?;
    let view = View::new(quiet);
    let args = Args {
        image: String::new(),
        all_tags: false,
        quiet,
        compression: None,
        force_compression: false,
        platform: None,
        registry: RegistryArgs::default(),
    };
    for name in names {
        if !quiet {
            eprintln!("The push refers to repository [{}]", name.name());
        }
        push_one(store, &client, &view, name, entry, &args)?;
    }
    Ok(())
}

/// The entry of `platform`'s image in the index `entry` (a single image
/// must be of that platform).
fn one_platform(
    store: &Store,
    entry: &kiln_store::IndexEntry,
    platform: &str,
    shown: &str,
) -> anyhow::Result<kiln_store::IndexEntry> {
    let want: kiln_core::Platform = platform
        .parse()
        .map_err(|e| anyhow::anyhow!("--platform {platform}: {e}"))?;
    if !kiln_core::media_types::is_index(&entry.media_type) {
        let image = store.load_image(entry)?;
        let have = kiln_store::platform_of(&image);
        if !want.matches(&have) {
            anyhow::bail!("{shown} is a single {have} image, not a multi-platform one: it has no {want} image to push");
        }
        return Ok(entry.clone());
    }
    let index = store.read_index_blob(&entry.digest)?;
    let child = want.select(&index.manifests).ok_or_else(|| {
        anyhow::anyhow!(
            "{shown} has no image for {want} (it has: {}); build or pull that platform first",
            index.platforms().join(", ")
        )
    })?;
    Ok(kiln_store::IndexEntry::new(
        &child.media_type,
        child.digest.clone(),
        child.size,
    ))
}

/// One push of `entry` as `name`, then its signatures and other referrers.
fn push_one(
    store: &Store,
    client: &kiln_registry_client::Client,
    view: &View,
    name: &ImageRef,
    entry: &kiln_store::IndexEntry,
    args: &Args,
) -> anyhow::Result<()> {
    let opts = push_options(
        args.compression.unwrap_or(PushCompression::Gzip),
        args.force_compression,
    );
    {
        let (name, entry) = (name.clone(), entry.clone());
        // A signature names a manifest digest, which compressing layers
        // stored plain would change: an image signed in the store goes as
        // stored (its layers uncompressed), unless a compression is asked
        // for explicitly.
        // Looked up once per image: each lookup reads the store's catalog.
        let signed = signed_in_store(store, &entry, &name)?;
        let referrers = other_referrers(store, &entry)?;
        let opts = if args.compression.is_none() && (signed || !referrers.is_empty()) {
            if !args.quiet {
                eprintln!(
                    "{}: signatures or attestations in the store name this manifest: pushing its layers as stored, so the registry's manifest is the one they name (--compression gzip compresses them and leaves those behind)",
                    name.familiar()
                );
            }
            PushOptions {
                compression: Compression::None,
                force_compression: false,
            }
        } else {
            opts
        };
        let pushed = block_on(push(client, store, &entry, &name, &opts, view))??;
        if signed {
            carry_signatures(store, client, &entry, &name, &pushed, args.quiet)?;
        }
        carry_referrers(
            store, client, &referrers, &entry, &name, &pushed, args.quiet,
        )?;
        let label = name.tag().unwrap_or("");
        if args.quiet {
            println!("{}", pushed.digest);
        } else {
            println!("{label}: digest: {} size: {}", pushed.digest, pushed.size);
        }
    }
    Ok(())
}

/// The image as kiln-sign names it in the store.
fn store_subject(entry: &kiln_store::IndexEntry, name: &ImageRef) -> kiln_sign::Subject {
    use kiln_store::IndexEntryExt;
    kiln_sign::Subject {
        repository: name.clone(),
        descriptor: kiln_core::image::Descriptor::new(
            &entry.media_type,
            entry.digest.clone(),
            entry.size,
        ),
        also: entry.pulled_digest().into_iter().collect(),
    }
}

/// Whether the store keeps signatures or attestations beside the image.
fn signed_in_store(
    store: &Store,
    entry: &kiln_store::IndexEntry,
    name: &ImageRef,
) -> anyhow::Result<bool> {
    use kiln_sign::{layout::Kind, ops, StoreTarget};
    let subject = store_subject(entry, name);
    let from = StoreTarget { store };
    for kind in [Kind::Signature, Kind::Attestation] {
        if !ops::find_layers(&from, &subject, kind)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Artifacts in the store whose subject is the image, other than
/// kiln-sign's signatures and attestations (those go under cosign's tags):
/// `build --sbom`'s in-toto statement, and artifacts pulled or made by
/// other tools.
fn other_referrers(
    store: &Store,
    entry: &kiln_store::IndexEntry,
) -> anyhow::Result<Vec<kiln_core::image::Descriptor>> {
    let mut out = Vec::new();
    for d in store.referrers(&entry.digest, None)? {
        let manifest = store.read_manifest(&d.digest)?;
        let cosign = manifest.layers.iter().any(|l| {
            [
                kiln_sign::layout::Kind::Signature,
                kiln_sign::layout::Kind::Attestation,
            ]
            .iter()
            .any(|k| l.media_type == k.layer_type())
        });
        if !cosign {
            out.push(d);
        }
    }
    Ok(out)
}

/// Pushes `referrers` ([`other_referrers`]) by digest, blobs first, when
/// the registry's manifest is the one they name; otherwise says they
/// stayed behind.
fn carry_referrers(
    store: &Store,
    client: &kiln_registry_client::Client,
    referrers: &[kiln_core::image::Descriptor],
    entry: &kiln_store::IndexEntry,
    name: &ImageRef,
    pushed: &kiln_registry_client::Pushed,
    quiet: bool,
) -> anyhow::Result<()> {
    if referrers.is_empty() {
        return Ok(());
    }
    if pushed.digest != entry.digest {
        eprintln!(
            "WARNING: not pushed: {} artifact(s) referring to {} (the pushed manifest is {}: layers were compressed on push; push without --compression to keep them)",
            referrers.len(),
            entry.digest,
            pushed.digest
        );
        return Ok(());
    }
    let repo = kiln_registry_client::Repo::of(name);
    for d in referrers {
        let manifest = store.read_manifest(&d.digest)?;
        for blob in std::iter::once(&manifest.config).chain(manifest.layers.iter()) {
            if block_on(client.blob_exists(&repo, &blob.digest, true))??.is_none() {
                let path = store.blobs().path(&blob.digest);
                block_on(client.upload_blob(&repo, &blob.digest, &path, None, &|_| {}))??;
            }
        }
        let bytes = store.blobs().read(&d.digest)?;
        block_on(client.put_manifest(&repo, &d.digest.to_string(), &d.media_type, &bytes))??;
        if !quiet {
            eprintln!(
                "Pushed artifact {}@{} ({})",
                name.name(),
                d.digest,
                d.artifact_type.as_deref().unwrap_or(&d.media_type)
            );
        }
    }
    Ok(())
}

/// Pushes the signatures and attestations the store keeps beside the
/// image (`kiln sign` on a stored image; the caller checked there are
/// some) to the registry, under cosign's tags. Those about another digest (the push compressed layers stored
/// plain, so the registry's manifest is not the one signed) are named on
/// stderr with the command that signs the pushed image.
fn carry_signatures(
    store: &Store,
    client: &kiln_registry_client::Client,
    entry: &kiln_store::IndexEntry,
    name: &ImageRef,
    pushed: &kiln_registry_client::Pushed,
    quiet: bool,
) -> anyhow::Result<()> {
    use kiln_core::image::Descriptor;
    use kiln_sign::{ops, RegistryTarget, StoreTarget, Subject};
    let local = store_subject(entry, name);
    let from = StoreTarget { store };
    let remote = Subject {
        repository: name.clone(),
        descriptor: Descriptor::new(&entry.media_type, pushed.digest.clone(), pushed.size),
        also: Vec::new(),
    };
    let to = RegistryTarget::new(client, name)?;
    let carried = ops::carry(&from, &local, &to, &remote)?;
    if !quiet && carried.copied > 0 {
        eprintln!(
            "Pushed {} signature(s)/attestation(s) to {}",
            carried.copied,
            to.describe_tags(&remote)
        );
    }
    for s in &carried.skipped {
        eprintln!("WARNING: not pushed: {s}");
    }
    Ok(())
}
