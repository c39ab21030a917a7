//! `kiln copy SRC DST`: images between registries, OCI layouts, archives and
//! the kiln store, with skopeo's transport names:
//!
//! ```text
//! docker://REF               a registry
//! oci:DIR[:REF]              an OCI image layout directory
//! oci-archive:FILE[:REF]     a tar of an OCI layout
//! docker-archive:FILE[:REF]  a `docker save` tar
//! kiln:REF                   the kiln store
//! ```
//! The source is read into a store (the kiln store itself for `kiln:` and
//! for registry pulls that end in it; otherwise a scratch store under the
//! kiln root, removed afterwards), verifying every blob; the destination is
//! written from there. Blobs move between stores by hard link when they
//! share a file system, else by a verified copy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_core::content::{ContentError, Ingester, Provider, Tags};
use kiln_core::image::{reachable, walk, NodeKind, Visit};
use kiln_core::{Digest, ImageRef};
use kiln_registry_client::{pull, push, PullOptions};
use kiln_store::{IndexEntry, IndexEntryExt, Layout, Store, REF_NAME};

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Source: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or kiln:REF
    source: String,
    /// Destination, in the same forms
    destination: String,
    /// Copy every platform of a multi-platform image (default: the host's)
    #[arg(short, long)]
    all: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Clone)]
enum Location {
    Registry(ImageRef),
    Layout(PathBuf, Option<String>),
    OciArchive(PathBuf, Option<String>),
    DockerArchive(PathBuf, Option<String>),
    Kiln(String),
}

fn split_path_ref(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
        _ => (PathBuf::from(rest.trim_end_matches(':')), None),
    }
}

fn parse_location(s: &str) -> anyhow::Result<Location> {
    let (transport, rest) = s.split_once(':').ok_or_else(|| {
        anyhow::anyhow!("{s:?} names no transport: write docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or kiln:REF")
    })?;
    Ok(match transport {
        "docker" => {
            let r = rest.strip_prefix("//").ok_or_else(|| {
                anyhow::anyhow!("{s:?}: the docker transport is written docker://REF")
            })?;
            Location::Registry(r.parse()?)
        }
        "oci" => {
            let (p, r) = split_path_ref(rest);
            Location::Layout(p, r)
        }
        "oci-archive" => {
            let (p, r) = split_path_ref(rest);
            Location::OciArchive(p, r)
        }
        "docker-archive" => {
            let (p, r) = split_path_ref(rest);
            Location::DockerArchive(p, r)
        }
        "kiln" => Location::Kiln(rest.to_string()),
        other => anyhow::bail!(
            "unknown transport {other:?} in {s:?}: use docker, oci, oci-archive, docker-archive or kiln"
        ),
    })
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let src = parse_location(&args.source)?;
    let dst = parse_location(&args.destination)?;
    let client = args.registry.client()?;
    let view = View::new(args.quiet);
    let pull_opts = PullOptions {
        platform: None,
        all_platforms: args.all,
    };

    // A registry pull into the kiln store needs no scratch store.
    if let (Location::Registry(r), Location::Kiln(name)) = (&src, &dst) {
        let pulled = block_on(pull(&client, store, r, &pull_opts, &view))??;
        let name = super::parse_tag_name(name)?;
        store.name_image(&pulled.entry, &[name])?;
        return Ok(ExitCode::SUCCESS);
    }

    let scratch_dir;
    let (from, entry): (Store, IndexEntry) = match &src {
        Location::Kiln(name) => {
            let (record, _) = store.resolve(name)?;
            (store.clone(), record.entry)
        }
        other => {
            scratch_dir = tempfile::Builder::new()
                .prefix("copy-")
                .tempdir_in(store.root())?;
            let scratch = Store::open(scratch_dir.path())?;
            let entry = read_source(&scratch, other, &client, &pull_opts, &view)?;
            (scratch, entry)
        }
    };

    match &dst {
        Location::Registry(r) => {
            // Compressed as `kiln push` compresses by default (gzip), so a
            // copy after a push (or a second copy) finds every layer there.
            let opts = kiln_registry_client::PushOptions::default();
            let pushed = block_on(push(&client, &from, &entry, r, &opts, &view))??;
            if !args.quiet {
                eprintln!(
                    "Copied {} to {r} ({} blobs uploaded)",
                    pushed.digest, pushed.uploaded
                );
            }
        }
        Location::Kiln(name) => {
            let _lease = store.lease()?;
            copy_graph(&from, Some(&from), store, &entry)?;
            record_layer_facts(&from, store, &entry)?;
            store.name_image(&entry, &[super::parse_tag_name(name)?])?;
        }
        Location::Layout(dir, reference) => {
            // Only the layout's own files are written: no kiln store
            // directories (ingest/, locks/) in a user's layout.
            let layout = Layout::create(dir)?;
            copy_graph(&from, Some(&from), &layout, &entry)?;
            let mut e = entry.clone();
            e.annotations.clear();
            match reference {
                Some(r) => layout.tag(r, &e)?,
                None => layout.update_index(|index| {
                    if !index.manifests.iter().any(|m| m.digest == e.digest) {
                        index.manifests.push(e);
                    }
                    Ok(())
                })?,
            }
        }
        Location::OciArchive(file, reference) | Location::DockerArchive(file, reference) => {
            let image = from.load_image(&entry)?;
            let names = match reference {
                Some(r) => vec![super::parse_tag_name(r)?],
                None => Vec::new(),
            };
            let tmp = file.with_extension("kiln-tmp");
            let out = std::fs::File::create(&tmp)?;
            let items = [kiln_archive::SaveItem { image, names }];
            let out = kiln_archive::save(&from, &items, std::io::BufWriter::new(out))?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, file)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the source image into `scratch`; returns its entry.
fn read_source(
    scratch: &Store,
    src: &Location,
    client: &kiln_registry_client::Client,
    opts: &PullOptions,
    view: &View,
) -> anyhow::Result<IndexEntry> {
    match src {
        Location::Registry(r) => Ok(block_on(pull(client, scratch, r, opts, view))??.entry),
        Location::Layout(dir, reference) => {
            // Read-only: a layout kiln only reads gets nothing written
            // into it (no ingest/, no locks/), and every blob is verified.
            let layout = Layout::open(dir)?;
            let index = layout.index()?;
            let entry = pick_layout_entry(&index.manifests, reference.as_deref(), dir)?;
            copy_graph(&layout, None, scratch, &entry)?;
            let mut e = entry.clone();
            e.annotations.clear();
            Ok(e)
        }
        Location::OciArchive(file, reference) | Location::DockerArchive(file, reference) => {
            let input = std::fs::File::open(file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let loaded = kiln_archive::load(scratch, std::io::BufReader::new(input))?;
            let id = match (&loaded.images[..], reference) {
                ([(id, _)], None) => id.clone(),
                (_, Some(r)) => {
                    let want: Option<ImageRef> = r.parse().ok();
                    loaded
                        .images
                        .iter()
                        .find(|(_, names)| {
                            names
                                .iter()
                                .any(|n| Some(n) == want.as_ref() || n.tag() == Some(r))
                        })
                        .map(|(id, _)| id.clone())
                        .ok_or_else(|| {
                            anyhow::anyhow!("{} holds no image named {r}", file.display())
                        })?
                }
                (_, None) => anyhow::bail!(
                    "{} holds {} images: name one as {}:NAME",
                    file.display(),
                    loaded.images.len(),
                    file.display()
                ),
            };
            Ok(scratch.resolve(&id.to_string())?.0.entry)
        }
        Location::Kiln(_) => unreachable!("the kiln store is read in place"),
    }
}

fn pick_layout_entry(
    entries: &[IndexEntry],
    reference: Option<&str>,
    dir: &Path,
) -> anyhow::Result<IndexEntry> {
    match reference {
        Some(r) => entries
            .iter()
            .find(|e| {
                e.annotations.get(REF_NAME).is_some_and(|n| n == r)
                    || e.name()
                        .is_some_and(|n| n.to_string() == r || n.tag() == Some(r))
            })
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{} has no image named {r:?}", dir.display())),
        None => match entries {
            [only] => Ok(only.clone()),
            [] => anyhow::bail!("{} holds no images", dir.display()),
            _ => anyhow::bail!(
                "{} holds {} images: name one as oci:{}:REF",
                dir.display(),
                entries.len(),
                dir.display()
            ),
        },
    }
}

/// Where `kiln copy` writes blobs: the kiln store, or an OCI layout that
/// gets only the layout's own files. Both keep blobs as plain files, so a
/// blob already verified can be hard-linked in.
trait Destination: Ingester + Provider {
    fn blob_path(&self, d: &Digest) -> PathBuf;
}

impl Destination for Store {
    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs().path(d)
    }
}

impl Destination for Layout {
    fn blob_path(&self, d: &Digest) -> PathBuf {
        Layout::blob_path(self, d)
    }
}

/// Copies every blob `entry` reaches (the model's walk) from any content
/// provider into `to`. Blobs `from` keeps as files already verified (a
/// kiln store) are hard-linked when possible; everything else is streamed
/// through `to`'s ingester, which verifies each digest again.
fn copy_graph(
    from: &dyn Provider,
    linkable: Option<&Store>,
    to: &dyn Destination,
    entry: &IndexEntry,
) -> anyhow::Result<()> {
    for d in reachable(from, entry)? {
        if to.info(&d.digest)?.is_some() {
            continue;
        }
        if let Some(src) = linkable {
            let target = to.blob_path(&d.digest);
            if std::fs::hard_link(src.blobs().path(&d.digest), &target).is_ok() {
                continue;
            }
        }
        let mut w = to.writer(None)?;
        std::io::copy(&mut from.open(&d.digest)?, &mut w)
            .map_err(|e| anyhow::anyhow!("copy blob {}: {e}", d.digest))?;
        w.commit(Some(&d.digest), Some(d.size))?;
    }
    Ok(())
}

/// Gives every layer of the image in `to` its recorded facts (diff_id and
/// uncompressed size, what `images` shows as SIZE): carried over from
/// `from` when known there, else measured once by decompressing the blob.
fn record_layer_facts(from: &Store, to: &Store, entry: &IndexEntry) -> anyhow::Result<()> {
    // Layers only; a platform of an index that is not here is no error.
    let mut layers = Vec::new();
    walk::<_, ContentError>(
        to,
        entry,
        &mut |n| {
            if n.kind == NodeKind::Layer {
                layers.push(n.descriptor.clone());
            }
            Ok(Visit::Descend)
        },
        &mut |_, _| Ok(()),
    )?;
    for l in layers {
        if to.layer_info(&l.digest).is_some()
            || kiln_layer::Compression::of_media_type(&l.media_type).is_none()
        {
            continue;
        }
        let info = match from.layer_info(&l.digest) {
            Some(info) => info,
            None => measure_layer(to, &l.digest)?,
        };
        to.record_layer(&l.digest, &info)?;
    }
    Ok(())
}

fn measure_layer(store: &Store, d: &Digest) -> anyhow::Result<kiln_store::LayerInfo> {
    let file = store.blobs().open(d)?;
    let (_, mut plain) = kiln_layer::decompress(std::io::BufReader::with_capacity(1 << 20, file))?;
    let mut hasher = kiln_core::Sha256Writer::new(std::io::sink());
    std::io::copy(&mut plain, &mut hasher).map_err(|e| anyhow::anyhow!("layer {d}: {e}"))?;
    let (diff_id, uncompressed_size, _) = hasher.finish();
    Ok(kiln_store::LayerInfo {
        diff_id,
        uncompressed_size,
        content_size: None,
    })
}
