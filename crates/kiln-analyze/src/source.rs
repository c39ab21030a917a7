//! Where an image to analyse comes from, with skopeo's transport names, and
//! how its layers are found without importing or unpacking anything:
//!
//! ```text
//! NAME                             the kiln store (name, ID or ID prefix)
//! docker-archive:PATH[:REF]        a `docker save` / `kiln save` tar
//! oci-archive:PATH[:REF]           a tar of an OCI image layout
//! oci:DIR[:REF]                    an OCI image layout directory
//! docker://REF                     a registry (layers streamed)
//! ```
//! dive's own spelling `docker-archive://PATH` is accepted too.
//!
//! A layer inside an archive is a byte range of the archive file (found
//! by walking the outer tar's headers once, seeking over contents), so it
//! is read in place; blobs of a layout or the store are their own files.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_core::image::{ImageConfig, Index, Manifest};
use kiln_core::{Digest, Platform};
use kiln_store::{Store, REF_NAME};

use crate::entry::{LayerStream, Window};
use crate::error::{AnalyzeError, Result};

/// A source as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Store(String),
    DockerArchive(PathBuf, Option<String>),
    OciArchive(PathBuf, Option<String>),
    OciDir(PathBuf, Option<String>),
    Registry(String),
}

fn split_path_ref(rest: &str) -> (PathBuf, Option<String>) {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    match rest.split_once(':') {
        Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
        _ => (PathBuf::from(rest.trim_end_matches(':')), None),
    }
}

impl Source {
    /// Reads `docker-archive:PATH`, `oci:DIR`, ..., else a store name.
    pub fn parse(s: &str) -> Source {
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (p, r) = split_path_ref(rest);
            Source::DockerArchive(p, r)
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (p, r) = split_path_ref(rest);
            Source::OciArchive(p, r)
        } else if let Some(rest) = s.strip_prefix("oci:") {
            let (p, r) = split_path_ref(rest);
            Source::OciDir(p, r)
        } else if let Some(rest) = s.strip_prefix("docker://") {
            Source::Registry(rest.to_string())
        } else {
            Source::Store(s.to_string())
        }
    }
}

/// Opens a layer's bytes, possibly again (the explorer reads a layer once;
/// a fetch from a registry is a new download each time).
pub type Fetch = Arc<dyn Fn() -> Result<Box<dyn Read + Send>> + Send + Sync>;

/// Where one layer's bytes are.
#[derive(Clone)]
pub enum LayerBytes {
    /// `len` bytes of `path` from `start`.
    File {
        path: PathBuf,
        start: u64,
        len: u64,
    },
    Fetch(Fetch),
}

impl std::fmt::Debug for LayerBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerBytes::File { path, start, len } => {
                write!(f, "{}@{start}+{len}", path.display())
            }
            LayerBytes::Fetch(_) => f.write_str("fetch"),
        }
    }
}

impl LayerBytes {
    pub fn open(&self) -> Result<LayerStream> {
        match self {
            LayerBytes::File { path, start, len } => {
                let file = std::fs::File::open(path).map_err(AnalyzeError::file(path))?;
                Ok(LayerStream::File(Window::new(file, *start, *len)))
            }
            LayerBytes::Fetch(f) => Ok(LayerStream::Stream(f()?)),
        }
    }

    fn whole_file(path: PathBuf) -> Result<LayerBytes> {
        let len = std::fs::metadata(&path)
            .map_err(AnalyzeError::file(&path))?
            .len();
        Ok(LayerBytes::File {
            path,
            start: 0,
            len,
        })
    }
}

/// One layer of the image to analyse.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// The blob's digest (`sha256:...`) when known.
    pub digest: Option<Digest>,
    /// The layer's name inside an archive (dive derives its layer id from it).
    pub archive_name: Option<String>,
    pub bytes: LayerBytes,
}

/// An image found: its config (history, diff_ids) and layers, bottom first.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// What the user named.
    pub name: String,
    pub config: ImageConfig,
    pub config_digest: Option<Digest>,
    pub layers: Vec<LayerSource>,
}

/// Finds the image `source` names; `store` serves plain names.
pub fn open(source: &Source, store: Option<&Store>) -> Result<ImageSource> {
    match source {
        Source::Store(name) => {
            let store = store.ok_or_else(|| {
                AnalyzeError::Usage(format!(
                    "{name:?}: no kiln store to look it up in; name a file with docker-archive:PATH, oci-archive:PATH or oci:DIR"
                ))
            })?;
            from_store(store, name)
        }
        Source::DockerArchive(path, r) => {
            let files = ArchiveFiles::scan(path)?;
            if files.has("manifest.json") {
                docker_archive(&files, path, r.as_deref())
            } else {
                oci(&files, path, r.as_deref())
            }
        }
        Source::OciArchive(path, r) => {
            let files = ArchiveFiles::scan(path)?;
            oci(&files, path, r.as_deref())
        }
        Source::OciDir(dir, r) => oci(&DirFiles(dir.clone()), dir, r.as_deref()),
        Source::Registry(r) => Err(AnalyzeError::Usage(format!(
            "docker://{r}: reading a registry needs the kiln binary's client; use open_registry"
        ))),
    }
}

fn from_store(store: &Store, name: &str) -> Result<ImageSource> {
    let (_, image) = store.resolve(name)?;
    from_image(store, name, image)
}

/// An image of the store already loaded (`kiln build`'s result).
pub fn from_image(store: &Store, name: &str, image: kiln_store::Image) -> Result<ImageSource> {
    let layers = image
        .manifest
        .layers
        .iter()
        .map(|l| {
            Ok(LayerSource {
                digest: Some(l.digest.clone()),
                archive_name: None,
                bytes: LayerBytes::whole_file(store.blobs().path(&l.digest))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSource {
        name: name.to_string(),
        config: image.config,
        config_digest: Some(image.config_digest),
        layers,
    })
}

/// The files of an image container (an archive or a directory).
trait Files {
    fn has(&self, name: &str) -> bool;
    fn read(&self, name: &str) -> Result<Vec<u8>>;
    fn bytes(&self, name: &str) -> Result<LayerBytes>;
}

const SMALL_FILE_CAP: u64 = 64 << 20;

/// An archive's entries by name: where each one's content is.
struct ArchiveFiles {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl ArchiveFiles {
    fn scan(path: &Path) -> Result<ArchiveFiles> {
        let file = std::fs::File::open(path).map_err(AnalyzeError::file(path))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links = HashMap::new();
        let bad = |e: std::io::Error| {
            AnalyzeError::Invalid(format!(
                "{}: not a readable tar archive ({e}); give a file written by docker save, kiln save or skopeo",
                path.display()
            ))
        };
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = crate::entry::clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Symlink => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target);
                        // Relative to the link's directory.
                        let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
                        let joined = dir.join(target.as_ref());
                        links.insert(name, crate::entry::clean(&joined.to_string_lossy()));
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().size().map_err(bad)?;
                    entries.insert(name, (entry.raw_file_position(), size));
                }
                _ => {}
            }
        }
        Ok(ArchiveFiles {
            path: path.to_path_buf(),
            entries,
            links,
        })
    }

    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let mut name = crate::entry::clean(name);
        for _ in 0..8 {
            if let Some(found) = self.entries.get(&name) {
                return Ok(*found);
            }
            match self.links.get(&name) {
                Some(next) => name = next.clone(),
                None => break,
            }
        }
        Err(AnalyzeError::Invalid(format!(
            "{}: the archive names {name:?} but does not hold it; the archive is incomplete",
            self.path.display()
        )))
    }
}

impl Files for ArchiveFiles {
    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (start, len) = self.locate(name)?;
        if len > SMALL_FILE_CAP {
            return Err(AnalyzeError::Invalid(format!(
                "{}: {name} is {len} bytes, too large for metadata",
                self.path.display()
            )));
        }
        let file = std::fs::File::open(&self.path).map_err(AnalyzeError::file(&self.path))?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        Window::new(file, start, len)
            .read_to_end(&mut buf)
            .map_err(AnalyzeError::file(&self.path))?;
        Ok(buf)
    }

    fn bytes(&self, name: &str) -> Result<LayerBytes> {
        let (start, len) = self.locate(name)?;
        Ok(LayerBytes::File {
            path: self.path.clone(),
            start,
            len,
        })
    }
}

/// An OCI layout directory.
struct DirFiles(PathBuf);

impl Files for DirFiles {
    fn has(&self, name: &str) -> bool {
        self.0.join(name).is_file()
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.0.join(name);
        std::fs::read(&p).map_err(AnalyzeError::file(p))
    }

    fn bytes(&self, name: &str) -> Result<LayerBytes> {
        LayerBytes::whole_file(self.0.join(name))
    }
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| AnalyzeError::Invalid(format!("{what}: {e}")))
}

fn config(bytes: &[u8], what: &str) -> Result<ImageConfig> {
    ImageConfig::from_slice(bytes).map_err(|e| AnalyzeError::Invalid(format!("{what}: {e}")))
}

#[derive(serde::Deserialize)]
struct DockerManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn docker_archive(files: &ArchiveFiles, path: &Path, want: Option<&str>) -> Result<ImageSource> {
    let what = format!("{}: manifest.json", path.display());
    let items: Vec<DockerManifestItem> = json(&files.read("manifest.json")?, &what)?;
    let item = match want {
        None => items.first(),
        Some(r) => items.iter().find(|i| {
            i.repo_tags.iter().flatten().any(|t| {
                t == r || t.strip_prefix("docker.io/library/") == Some(r) || {
                    let full = if r.contains(':') {
                        r.to_string()
                    } else {
                        format!("{r}:latest")
                    };
                    *t == full
                }
            })
        }),
    }
    .ok_or_else(|| match want {
        Some(r) => AnalyzeError::Invalid(format!(
            "{}: no image tagged {r:?} in the archive; omit the tag to read its first image",
            path.display()
        )),
        None => AnalyzeError::Invalid(format!("{what}: lists no image")),
    })?;
    let cfg = config(&files.read(&item.config)?, &item.config)?;
    let layers = item
        .layers
        .iter()
        .map(|l| {
            Ok(LayerSource {
                digest: digest_in_name(l),
                archive_name: Some(l.clone()),
                bytes: files.bytes(l)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSource {
        name: format!("docker-archive:{}", path.display()),
        config: cfg,
        config_digest: digest_in_name(&item.config),
        layers,
    })
}

/// `blobs/sha256/HEX` (and `HEX.tar`, `HEX/layer.tar`) name their digest.
fn digest_in_name(name: &str) -> Option<Digest> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() == 3 && parts[0] == "blobs" {
        return format!("{}:{}", parts[1], parts[2]).parse().ok();
    }
    let hex = parts
        .first()?
        .trim_end_matches(".tar")
        .trim_end_matches(".json");
    format!("sha256:{hex}").parse().ok()
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

fn oci(files: &dyn Files, path: &Path, want: Option<&str>) -> Result<ImageSource> {
    let index: Index = json(
        &files.read("index.json")?,
        &format!("{}: index.json", path.display()),
    )?;
    let chosen = match want {
        Some(r) => index
            .manifests
            .iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(r)),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => {
            let names: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            return Err(AnalyzeError::Usage(format!(
                "{}: the layout holds {} images; name one with :REF (names: {})",
                path.display(),
                index.manifests.len(),
                names.join(", ")
            )));
        }
    }
    .ok_or_else(|| {
        AnalyzeError::Invalid(format!(
            "{}: no image named {:?} in the layout",
            path.display(),
            want.unwrap_or_default()
        ))
    })?
    .clone();
    let mut desc = chosen;
    // An index (several platforms): the host's manifest.
    for _ in 0..4 {
        if !desc.is_index() {
            break;
        }
        let inner: Index = json(&files.read(&blob_name(&desc.digest))?, "image index")?;
        desc = inner.select(&Platform::host()).cloned().ok_or_else(|| {
            AnalyzeError::Invalid(format!(
                "{}: no image for this platform ({}); it offers {}",
                path.display(),
                Platform::host(),
                inner.platforms().join(", ")
            ))
        })?;
    }
    let manifest: Manifest = json(&files.read(&blob_name(&desc.digest))?, "image manifest")?;
    let cfg = config(
        &files.read(&blob_name(&manifest.config.digest))?,
        "image config",
    )?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| {
            let name = blob_name(&l.digest);
            Ok(LayerSource {
                digest: Some(l.digest.clone()),
                bytes: files.bytes(&name)?,
                archive_name: Some(name),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSource {
        name: path.display().to_string(),
        config: cfg,
        config_digest: Some(manifest.config.digest.clone()),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_like_skopeo_and_dive() {
        assert_eq!(
            Source::parse("docker-archive:/tmp/a.tar"),
            Source::DockerArchive("/tmp/a.tar".into(), None)
        );
        assert_eq!(
            Source::parse("docker-archive:///tmp/a.tar"),
            Source::DockerArchive("/tmp/a.tar".into(), None)
        );
        assert_eq!(
            Source::parse("oci:/l:app"),
            Source::OciDir("/l".into(), Some("app".into()))
        );
        assert_eq!(Source::parse("app:1"), Source::Store("app:1".into()));
        assert_eq!(
            Source::parse("docker://r.example/app:1"),
            Source::Registry("r.example/app:1".into())
        );
    }
}
