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

use kiln_core::{Digest, ImageRef};
use kiln_registry_client::manifest::RawManifest;
use kiln_registry_client::{pull, push, PullOptions};
use kiln_store::{IndexEntry, IndexEntryExt, Store, REF_NAME};

use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Args)]
pub struct Args {
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

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
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
            copy_graph(&from, store, &entry)?;
            record_layer_facts(&from, store, &entry)?;
            store.name_image(&entry, &[super::parse_tag_name(name)?])?;
        }
        Location::Layout(dir, reference) => {
            let layout = Store::open(dir)?;
            copy_graph(&from, &layout, &entry)?;
            layout.update_index(|index| {
                let mut e = entry.clone();
                e.annotations.clear();
                if let Some(r) = reference {
                    index
                        .manifests
                        .retain(|m| m.annotations.get(REF_NAME) != Some(r));
                    e.annotations.insert(REF_NAME.into(), r.clone());
                    index.manifests.push(e);
                } else {
                    index.add_untagged(&e);
                }
                Ok(())
            })?;
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
            let index_path = dir.join("index.json");
            let text = std::fs::read(&index_path).map_err(|e| {
                anyhow::anyhow!("{}: {e}: not an OCI image layout", index_path.display())
            })?;
            let index: kiln_store::Index = serde_json::from_slice(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", index_path.display()))?;
            let entry = pick_layout_entry(&index.manifests, reference.as_deref(), dir)?;
            copy_graph_from_dir(dir, scratch, &entry)?;
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

/// Every blob an entry reaches, manifests first. Parsed with the registry
/// client's manifest types, so layouts and archives get the same checks
/// (and the same errors) as registries.
fn graph(
    read: &dyn Fn(&Digest) -> anyhow::Result<Vec<u8>>,
    entry: &IndexEntry,
) -> anyhow::Result<Vec<Digest>> {
    let what = format!("manifest {}", entry.digest);
    let doc = RawManifest::new(read(&entry.digest)?, Some(&entry.media_type), &what)?;
    let mut out = vec![entry.digest.clone()];
    if doc.is_index() {
        for m in doc.index(&what)?.manifests {
            let child = IndexEntry::new(&m.media_type, m.digest, m.size);
            out.extend(graph(read, &child)?);
        }
    } else {
        let m = doc.manifest(&what)?;
        out.push(m.config.digest);
        out.extend(m.layers.into_iter().map(|l| l.digest));
    }
    Ok(out)
}

/// Copies an image's blobs between stores: a hard link when possible (the
/// blob was verified when it entered `from`), else a copy verified again.
fn copy_graph(from: &Store, to: &Store, entry: &IndexEntry) -> anyhow::Result<()> {
    let _lease = to.lease()?;
    let read = |d: &Digest| Ok(from.blobs().read(d)?);
    for d in graph(&read, entry)? {
        if to.blobs().exists(&d) {
            continue;
        }
        let target = to.blobs().path(&d);
        if std::fs::hard_link(from.blobs().path(&d), &target).is_ok() {
            continue;
        }
        ingest_verified(to, &from.blobs().path(&d), &d)?;
    }
    Ok(())
}

/// Gives every layer of the image in `to` its recorded facts (diff_id and
/// uncompressed size, what `images` shows as SIZE): carried over from
/// `from` when known there, else measured once by decompressing the blob.
fn record_layer_facts(from: &Store, to: &Store, entry: &IndexEntry) -> anyhow::Result<()> {
    let read = |d: &Digest| to.blobs().read(d);
    let doc = RawManifest::new(read(&entry.digest)?, Some(&entry.media_type), "manifest")?;
    let mut manifests = vec![doc.clone()];
    if doc.is_index() {
        manifests.clear();
        for m in doc.index("index")?.manifests {
            if let Ok(bytes) = read(&m.digest) {
                manifests.push(RawManifest::new(bytes, Some(&m.media_type), "manifest")?);
            }
        }
    }
    for m in manifests {
        let Ok(image) = m.manifest("manifest") else {
            continue;
        };
        for l in image.layers {
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
    })
}

/// Copies blobs out of a layout directory nobody verified: each is hashed
/// on the way into `to`.
fn copy_graph_from_dir(dir: &Path, to: &Store, entry: &IndexEntry) -> anyhow::Result<()> {
    let blob = |d: &Digest| dir.join("blobs").join(d.algorithm().as_str()).join(d.hex());
    let read = |d: &Digest| -> anyhow::Result<Vec<u8>> {
        let bytes =
            std::fs::read(blob(d)).map_err(|e| anyhow::anyhow!("{}: {e}", blob(d).display()))?;
        let actual = Digest::sha256(&bytes);
        anyhow::ensure!(
            &actual == d,
            "{}: content has digest {actual}, not {d}",
            blob(d).display()
        );
        Ok(bytes)
    };
    for d in graph(&read, entry)? {
        if !to.blobs().exists(&d) {
            ingest_verified(to, &blob(&d), &d)?;
        }
    }
    Ok(())
}

fn ingest_verified(to: &Store, path: &Path, d: &Digest) -> anyhow::Result<()> {
    let mut src =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut w = to.blobs().ingest()?;
    std::io::copy(&mut src, &mut w)?;
    w.commit(Some(d), None)?;
    Ok(())
}
