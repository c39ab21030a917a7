//! `kiln load`: images from a tar archive made by `docker save` (legacy
//! `manifest.json` + `<id>/layer.tar`, or the OCI layout of docker ≥ 25),
//! `skopeo copy … docker-archive:/oci-archive:`, or `kiln save`.
//!
//! The archive is read once, as a stream (so `-` works): small files are kept
//! in memory, large ones go to the store's ingest area uncommitted. Then the
//! images are checked — every blob against its digest, every layer against
//! the diff_id its config lists — and only when all of it holds are the
//! blobs committed and the names set, in one index update.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};

use kiln_core::image::Descriptor;
use kiln_core::image::{ImageConfig, Index, Manifest};
use kiln_core::{Digest, ImageRef, Platform, Sha256Writer};
use kiln_layer::{clean_entry_path, decompress, Compression};
use kiln_store::{IndexEntry, LayerInfo, PendingBlob, Store};
use serde::Deserialize;

use crate::error::{ArchiveError, Result};

/// Files up to this size are held in memory; larger ones go to ingest.
const SMALL_FILE: u64 = 1 << 20;
/// Upper bound on memory held for small files (a hostile archive of many
/// small entries must not exhaust memory).
const SMALL_FILES_BUDGET: u64 = 256 << 20;
/// Symlink hops followed inside the archive before giving up.
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug)]
pub struct Loaded {
    /// (image ID, names) per image, in archive order.
    pub images: Vec<(Digest, Vec<ImageRef>)>,
    /// Names that moved here from another image: (name, that image's ID),
    /// for docker's "renaming the old one" notice.
    pub renamed: Vec<(ImageRef, Digest)>,
}

enum Content {
    Memory(Vec<u8>, Digest),
    Pending(PendingBlob),
}

impl Content {
    fn digest(&self) -> &Digest {
        match self {
            Content::Memory(_, d) => d,
            Content::Pending(p) => p.digest(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Content::Memory(b, _) => b.len() as u64,
            Content::Pending(p) => p.size(),
        }
    }

    fn reader(&self) -> Result<Box<dyn BufRead + Send + '_>> {
        Ok(match self {
            Content::Memory(b, _) => Box::new(&b[..]),
            Content::Pending(p) => Box::new(BufReader::with_capacity(1 << 20, p.reader()?)),
        })
    }
}

/// The archive's files by cleaned path, and its links.
#[derive(Default)]
struct Files {
    files: HashMap<String, Content>,
    links: HashMap<String, String>,
}

impl Files {
    fn resolve(&self, path: &str) -> Result<String> {
        let mut path = clean(path).ok_or_else(|| ArchiveError::Escape(path.to_string()))?;
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => return Ok(path),
            }
        }
        Err(ArchiveError::Invalid(format!(
            "too many links resolving {path}"
        )))
    }

    fn get(&self, path: &str) -> Result<&Content> {
        let resolved = self.resolve(path)?;
        self.files
            .get(&resolved)
            .ok_or_else(|| ArchiveError::Missing(path.to_string()))
    }

    fn get_opt(&self, path: &str) -> Option<&Content> {
        self.files.get(&self.resolve(path).ok()?)
    }

    /// A small JSON file, parsed.
    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        let Content::Memory(bytes, _) = self.get(path)? else {
            return Err(ArchiveError::Invalid(format!(
                "{path} is larger than {SMALL_FILE} bytes; not a metadata file"
            )));
        };
        serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::Invalid(format!("{path} is not valid: {e}")))
    }

    /// The blob at `blobs/<alg>/<hex>`, checked against its name and `size`.
    fn blob(&self, digest: &Digest, size: Option<u64>) -> Result<(&Content, String)> {
        let path = format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex());
        let content = self.get(&path)?;
        verify_named(&path, digest, content)?;
        if let Some(size) = size {
            if size != content.size() {
                return Err(ArchiveError::Invalid(format!(
                    "{path} has {} bytes, its descriptor says {size}",
                    content.size()
                )));
            }
        }
        Ok((content, path))
    }
}

fn clean(path: &str) -> Option<String> {
    let parts = clean_entry_path(path.as_bytes())?;
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| std::str::from_utf8(p).ok())
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

fn verify_named(path: &str, expected: &Digest, content: &Content) -> Result<()> {
    if content.digest() != expected {
        return Err(ArchiveError::DigestMismatch {
            path: path.to_string(),
            expected: expected.clone(),
            actual: content.digest().clone(),
        });
    }
    Ok(())
}

/// Reads the whole archive stream into `Files`.
fn read_archive<R: Read + Send>(store: &Store, input: R) -> Result<Files> {
    let (_, plain) = decompress(BufReader::with_capacity(1 << 20, input))?;
    let mut archive = tar::Archive::new(plain);
    let mut files = Files::default();
    let mut memory = 0u64;
    let bad = |e: io::Error| ArchiveError::Invalid(format!("not a readable tar archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path_bytes().into_owned();
        let raw = String::from_utf8(raw)
            .map_err(|_| ArchiveError::Invalid("an entry name is not UTF-8".into()))?;
        let path = clean(&raw).ok_or_else(|| ArchiveError::Escape(raw.clone()))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .and_then(|t| String::from_utf8(t.into_owned()).ok())
                .ok_or_else(|| ArchiveError::Invalid(format!("link {raw} has no target")))?;
            // Symlinks are relative to their directory; hard links to the root.
            let joined = match (kind.is_symlink(), path.rsplit_once('/')) {
                (true, Some((dir, _))) if !target.starts_with('/') => format!("{dir}/{target}"),
                _ => target.clone(),
            };
            let resolved = clean(&joined).ok_or(ArchiveError::Escape(target))?;
            files.links.insert(path, resolved);
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let size = entry.size();
        let content = if size <= SMALL_FILE {
            memory += size;
            if memory > SMALL_FILES_BUDGET {
                return Err(ArchiveError::Invalid(format!(
                    "more than {SMALL_FILES_BUDGET} bytes of small files; not an image archive"
                )));
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(ArchiveError::io(format!("read {path} from the archive")))?;
            let digest = Digest::sha256(&buf);
            Content::Memory(buf, digest)
        } else {
            let mut w = store.blobs().ingest()?;
            io::copy(&mut entry, &mut w)
                .map_err(ArchiveError::io(format!("read {path} from the archive")))?;
            Content::Pending(w.finish()?)
        };
        files.files.insert(path, content);
    }
    Ok(files)
}

/// An image found in the archive, checked, not yet committed.
struct Planned {
    /// The manifest as it was in the archive (OCI layouts), or none (docker's
    /// legacy layout: kiln writes an OCI manifest for it).
    manifest: Option<(String, String)>,
    config_path: String,
    config_digest: Digest,
    layers: Vec<(String, Descriptor)>,
    names: Vec<ImageRef>,
    /// One of the images of an index loaded whole: named through it.
    in_index: bool,
}

/// A multi-platform image loaded whole (`kiln build -o type=oci` with
/// several platforms, buildx's OCI tar): the index, named; its images are
/// planned as [`Planned`] items, its other manifests (attestations) as
/// plain blobs.
struct PlannedIndex {
    path: String,
    media_type: String,
    names: Vec<ImageRef>,
    /// Attestation manifests and their blobs, committed as they are.
    blobs: Vec<String>,
}

/// The archive's images and whole indexes.
struct Plan {
    images: Vec<Planned>,
    indexes: Vec<PlannedIndex>,
}

#[derive(Deserialize)]
struct DockerManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn parse_names(tags: &[String]) -> Result<Vec<ImageRef>> {
    tags.iter()
        .map(|t| {
            t.parse::<ImageRef>()
                .map_err(|e| ArchiveError::Invalid(format!("RepoTags entry {t:?}: {e}")))
        })
        .collect()
}

/// Checks each layer's uncompressed digest against the config's diff_ids.
/// Results are cached per blob (images in one archive share layers).
struct DiffIds {
    known: HashMap<Digest, (LayerInfo, Compression)>,
}

impl DiffIds {
    fn check(&mut self, path: &str, content: &Content, expected: &Digest) -> Result<Compression> {
        let blob = content.digest().clone();
        if !self.known.contains_key(&blob) {
            let mut r = content.reader()?;
            let head = r
                .fill_buf()
                .map_err(ArchiveError::io(format!("read {path}")))?;
            let compression = Compression::detect(head)?;
            let info = if compression == Compression::None {
                LayerInfo {
                    diff_id: blob.clone(),
                    uncompressed_size: content.size(),
                    content_size: None,
                }
            } else {
                let (_, mut plain) = decompress(r)?;
                let mut h = Sha256Writer::new(io::sink());
                io::copy(&mut plain, &mut h)
                    .map_err(ArchiveError::io(format!("decompress layer {path}")))?;
                let (diff_id, uncompressed_size, _) = h.finish();
                LayerInfo {
                    diff_id,
                    uncompressed_size,
                    content_size: None,
                }
            };
            self.known.insert(blob.clone(), (info, compression));
        }
        let (info, compression) = &self.known[&blob];
        if &info.diff_id != expected {
            return Err(ArchiveError::DiffIdMismatch {
                path: path.to_string(),
                expected: expected.clone(),
                actual: info.diff_id.clone(),
            });
        }
        Ok(*compression)
    }
}

fn config_diff_ids(files: &Files, path: &str) -> Result<Vec<Digest>> {
    let config: ImageConfig = files.json(path)?;
    config
        .rootfs
        .as_ref()
        .and_then(|r| r.diff_ids.clone())
        .unwrap_or_default()
        .iter()
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|e| ArchiveError::Invalid(format!("{path}: rootfs.diff_ids: {e}")))
        })
        .collect()
}

fn check_layers(
    diff: &mut DiffIds,
    files: &Files,
    config_path: &str,
    layers: Vec<(String, Option<String>)>,
) -> Result<Vec<(String, Descriptor)>> {
    let diff_ids = config_diff_ids(files, config_path)?;
    if diff_ids.len() != layers.len() {
        return Err(ArchiveError::Invalid(format!(
            "{config_path} lists {} layers but the manifest has {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    let mut out = Vec::new();
    for ((path, media_type), expected) in layers.into_iter().zip(&diff_ids) {
        let resolved = files.resolve(&path)?;
        let content = files.get(&path)?;
        let compression = diff.check(&path, content, expected)?;
        out.push((
            resolved,
            Descriptor::new(
                &media_type.unwrap_or_else(|| compression.oci_media_type().to_string()),
                content.digest().clone(),
                content.size(),
            ),
        ));
    }
    Ok(out)
}

/// The names an `index.json` entry gives.
fn entry_names(annotations: &BTreeMap<String, String>) -> Result<Option<Vec<ImageRef>>> {
    Ok(match annotations.get("io.containerd.image.name") {
        Some(full) => Some(parse_names(std::slice::from_ref(full))?),
        None => match annotations.get("org.opencontainers.image.ref.name") {
            // A bare tag ("latest") names no repository: docker's
            // manifest.json, when present, has the full names.
            Some(r) if r.contains([':', '/']) => Some(parse_names(std::slice::from_ref(r))?),
            _ => None,
        },
    })
}

/// A nested index whose every manifest is in the archive, planned whole;
/// `None` when some are missing (docker's `save` of a multi-platform
/// image holds the host's image only: that one is loaded).
fn plan_whole_index(
    files: &Files,
    diff: &mut DiffIds,
    top: &Descriptor,
    nested: &Index,
) -> Result<Option<(PlannedIndex, Vec<Planned>)>> {
    if nested
        .manifests
        .iter()
        .any(|m| m.is_index() || files.blob(&m.digest, Some(m.size)).is_err())
    {
        return Ok(None);
    }
    let mut images = Vec::new();
    let mut blobs = Vec::new();
    for m in &nested.manifests {
        let (content, manifest_path) = files.blob(&m.digest, Some(m.size))?;
        let Content::Memory(bytes, _) = content else {
            return Err(ArchiveError::Invalid(format!(
                "{manifest_path} is too large for a manifest"
            )));
        };
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            ArchiveError::Invalid(format!("{manifest_path}: not a valid manifest: {e}"))
        })?;
        let (_, config_path) = files.blob(&manifest.config.digest, Some(manifest.config.size))?;
        // An attestation (BuildKit's unknown/unknown manifests) is data,
        // not an image: its blobs go in as they are, verified by digest.
        let attestation = m.platform.as_ref().is_some_and(|p| p.os == "unknown")
            || ![
                kiln_core::media_types::OCI_CONFIG,
                kiln_core::media_types::DOCKER_CONFIG,
            ]
            .contains(&manifest.config.media_type.as_str());
        if attestation {
            blobs.push(manifest_path);
            blobs.push(config_path);
            for l in &manifest.layers {
                blobs.push(files.blob(&l.digest, Some(l.size))?.1);
            }
            continue;
        }
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let (_, path) = files.blob(&l.digest, Some(l.size))?;
            layers.push((path, Some(l.media_type.clone())));
        }
        let layers = check_layers(diff, files, &config_path, layers)?;
        images.push(Planned {
            manifest: Some((manifest_path, m.media_type.clone())),
            config_path,
            config_digest: manifest.config.digest.clone(),
            layers,
            names: Vec::new(),
            in_index: true,
        });
    }
    let (_, path) = files.blob(&top.digest, Some(top.size))?;
    Ok(Some((
        PlannedIndex {
            path,
            media_type: top.media_type.clone(),
            names: entry_names(&top.annotations)?.unwrap_or_default(),
            blobs,
        },
        images,
    )))
}

fn plan_oci(
    files: &Files,
    diff: &mut DiffIds,
    tags_by_config: &HashMap<Digest, Vec<ImageRef>>,
) -> Result<Plan> {
    let index: Index = files.json("index.json")?;
    let mut planned = Vec::new();
    let mut indexes = Vec::new();
    for top in &index.manifests {
        let annotations = &top.annotations;
        let mut desc = top.clone();
        if top.is_index() {
            let (content, path) = files.blob(&top.digest, Some(top.size))?;
            let Content::Memory(bytes, _) = content else {
                return Err(ArchiveError::Invalid(format!(
                    "{path} is too large for an index"
                )));
            };
            let nested: Index = serde_json::from_slice(bytes)
                .map_err(|e| ArchiveError::Invalid(format!("{path}: {e}")))?;
            if let Some((list, images)) = plan_whole_index(files, diff, top, &nested)? {
                indexes.push(list);
                planned.extend(images);
                continue;
            }
            let host = Platform::host();
            desc = nested
                .select(&host)
                .cloned()
                .ok_or_else(|| ArchiveError::Invalid(format!("{path} has no image for {host}")))?;
        }
        let (content, manifest_path) = files.blob(&desc.digest, Some(desc.size))?;
        let Content::Memory(bytes, _) = content else {
            return Err(ArchiveError::Invalid(format!(
                "{manifest_path} is too large for a manifest"
            )));
        };
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            ArchiveError::Invalid(format!("{manifest_path}: not a valid image manifest: {e}"))
        })?;
        let config_digest = manifest.config.digest.clone();
        let (_, config_path) = files.blob(&config_digest, Some(manifest.config.size))?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let (_, path) = files.blob(&l.digest, Some(l.size))?;
            layers.push((path, Some(l.media_type.clone())));
        }
        let layers = check_layers(diff, files, &config_path, layers)?;

        let names = match entry_names(annotations)? {
            Some(names) => names,
            None => tags_by_config
                .get(&config_digest)
                .cloned()
                .unwrap_or_default(),
        };
        planned.push(Planned {
            manifest: Some((manifest_path, desc.media_type.clone())),
            config_path,
            config_digest,
            layers,
            names,
            in_index: false,
        });
    }
    Ok(Plan {
        images: planned,
        indexes,
    })
}

fn plan_docker(
    files: &Files,
    diff: &mut DiffIds,
    items: &[DockerManifestItem],
) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for item in items {
        let config = files.get(&item.config)?;
        // Legacy archives name the config by its digest: check it.
        let stem = item
            .config
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json");
        if let Ok(named) = Digest::from_parts(kiln_core::Algorithm::Sha256, stem) {
            verify_named(&item.config, &named, config)?;
        }
        let layers = item.layers.iter().map(|l| (l.clone(), None)).collect();
        let layers = check_layers(diff, files, &item.config, layers)?;
        planned.push(Planned {
            manifest: None,
            config_path: files.resolve(&item.config)?,
            config_digest: config.digest().clone(),
            layers,
            names: parse_names(item.repo_tags.as_deref().unwrap_or_default())?,
            in_index: false,
        });
    }
    Ok(planned)
}

pub fn load<R: Read + Send>(store: &Store, input: R) -> Result<Loaded> {
    let _lease = store.lease()?;
    let mut files = read_archive(store, input)?;

    let docker_items: Option<Vec<DockerManifestItem>> = match files.get_opt("manifest.json") {
        Some(_) => Some(files.json("manifest.json")?),
        None => None,
    };
    let mut diff = DiffIds {
        known: HashMap::new(),
    };
    let Plan {
        images: planned,
        indexes,
    } = if files.get_opt("index.json").is_some() {
        let mut tags_by_config: HashMap<Digest, Vec<ImageRef>> = HashMap::new();
        for item in docker_items.iter().flatten() {
            if let Ok(c) = files.get(&item.config) {
                tags_by_config
                    .entry(c.digest().clone())
                    .or_default()
                    .extend(parse_names(item.repo_tags.as_deref().unwrap_or_default())?);
            }
        }
        plan_oci(&files, &mut diff, &tags_by_config)?
    } else if let Some(items) = &docker_items {
        Plan {
            images: plan_docker(&files, &mut diff, items)?,
            indexes: Vec::new(),
        }
    } else {
        return Err(ArchiveError::Invalid(
            "no index.json or manifest.json: not an image archive (make one with kiln save, docker save or skopeo copy)".into(),
        ));
    };
    if planned.is_empty() {
        return Err(ArchiveError::Invalid("the archive holds no images".into()));
    }
    let layer_infos: HashMap<Digest, LayerInfo> = diff
        .known
        .into_iter()
        .map(|(k, (info, _))| (k, info))
        .collect();

    // Everything checked: commit blobs (each once), then name the images.
    let mut needed: BTreeMap<String, ()> = BTreeMap::new();
    for p in &planned {
        needed.insert(p.config_path.clone(), ());
        if let Some((m, _)) = &p.manifest {
            needed.insert(m.clone(), ());
        }
        for (path, _) in &p.layers {
            needed.insert(path.clone(), ());
        }
    }
    for i in &indexes {
        needed.insert(i.path.clone(), ());
        for b in &i.blobs {
            needed.insert(b.clone(), ());
        }
    }
    for path in needed.keys() {
        match files.files.remove(path) {
            Some(Content::Memory(bytes, digest)) => {
                store.blobs().put(&bytes, Some(&digest))?;
            }
            Some(Content::Pending(p)) => {
                p.commit()?;
            }
            None => {} // committed through another path with the same content
        }
    }
    for (blob, info) in &layer_infos {
        store.record_layer(blob, info)?;
    }
    let mut named = Vec::new();
    for p in &planned {
        let entry = match &p.manifest {
            Some((path, media_type)) => {
                let digest: Digest =
                    format!("sha256:{}", path.rsplit('/').next().unwrap_or_default())
                        .parse()
                        .map_err(|e: kiln_core::DigestError| {
                            ArchiveError::Invalid(e.to_string())
                        })?;
                let size = store.blobs().size(&digest)?;
                IndexEntry::new(media_type, digest, size)
            }
            None => {
                let config = store.blobs().read(&p.config_digest)?;
                let layers: Vec<Descriptor> = p.layers.iter().map(|(_, l)| l.clone()).collect();
                store.write_image(&config, &layers)?
            }
        };
        if !p.in_index {
            named.push((entry, p.names.clone(), p.config_digest.clone()));
        }
    }
    // A whole index is named itself (its ID is its digest, as docker 28
    // shows a multi-platform image); it holds its images.
    for i in &indexes {
        let digest: Digest = format!("sha256:{}", i.path.rsplit('/').next().unwrap_or_default())
            .parse()
            .map_err(|e: kiln_core::DigestError| ArchiveError::Invalid(e.to_string()))?;
        let size = store.blobs().size(&digest)?;
        named.push((
            IndexEntry::new(&i.media_type, digest.clone(), size),
            i.names.clone(),
            digest,
        ));
    }
    let moved = store.update_index(|index| {
        let mut moved = Vec::new();
        for (entry, names, id) in &named {
            if names.is_empty() {
                index.add_untagged(entry);
            }
            for name in names {
                if let Some(previous) = index.set_tag(name, entry) {
                    moved.push((name.clone(), previous, id.clone()));
                }
            }
        }
        Ok(moved)
    })?;
    // Named by image ID, as docker names it; the same ID under another
    // manifest (a different compression) is not a rename.
    let renamed = moved
        .into_iter()
        .filter_map(|(name, previous, new_id)| {
            let old_id = store
                .read_manifest(&previous)
                .map(|m| m.config.digest)
                .unwrap_or(previous);
            (old_id != new_id).then_some((name, old_id))
        })
        .collect();
    Ok(Loaded {
        renamed,
        images: named
            .into_iter()
            .map(|(_, names, id)| (id, names))
            .collect(),
    })
}
