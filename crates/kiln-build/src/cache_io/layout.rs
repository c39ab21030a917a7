//! The cache in the store and in an OCI layout (`type=local`): the
//! artifact's config and manifest written as blobs beside the layers, a
//! layout written and read as buildx's local cache is (`index.json` +
//! `blobs/`, the manifest named `latest`), and a plain layer made from a
//! compressed one (an inline cache's layers are the pushed image's).

use std::io::{BufReader, Read, Write};
use std::path::Path;

use kiln_core::content::{Ingester, Provider, Tags};
use kiln_core::image::{Descriptor, RawManifest, MAX_MANIFEST_BYTES};
use kiln_core::Digest;
use kiln_store::{Layout, Store};

use super::format::{is_cache_manifest, CacheMetadata, MAX_METADATA_BYTES};
use super::import::{CacheSource, ImportedCache};
use crate::error::{BuildError, Result};

/// The name the manifest has in a layout's `index.json`.
const LATEST: &str = "latest";

/// Writes the artifact's config and manifest into the store (its layers
/// are there already); returns the manifest's descriptor, the entry a
/// push sends.
pub fn store_artifact(store: &Store, meta: &CacheMetadata) -> Result<Descriptor> {
    let (manifest, config) = meta.artifact();
    store.blobs().put(&config, Some(&manifest.config.digest))?;
    let bytes = manifest.to_bytes();
    store.blobs().put(&bytes, None)?;
    let mut d = Descriptor::of(kiln_core::media_types::OCI_MANIFEST, &bytes);
    d.artifact_type = manifest.artifact_type.clone();
    Ok(d)
}

fn cache_err(dir: &Path, problem: impl std::fmt::Display) -> BuildError {
    BuildError::Cache {
        source_name: dir.display().to_string(),
        problem: problem.to_string(),
    }
}

/// `--cache-to type=local,dest=DIR`: the artifact (already in the store,
/// see [`store_artifact`]) into the layout at `dir`, named `latest`.
/// Blobs the layout has are kept; each new one is verified as it is copied.
pub fn write_layout(store: &Store, meta: &CacheMetadata, dir: &Path) -> Result<Descriptor> {
    let desc = store_artifact(store, meta)?;
    let layout = Layout::create(dir)?;
    let (manifest, _) = meta.artifact();
    let mut blobs = vec![desc.clone(), manifest.config.clone()];
    blobs.extend(manifest.layers.iter().cloned());
    for b in &blobs {
        if layout.blob_path(&b.digest).exists() {
            continue;
        }
        let mut from = store.blobs().open(&b.digest)?;
        let mut w = layout.writer(None).map_err(|e| cache_err(dir, e))?;
        std::io::copy(&mut from, &mut w).map_err(|e| cache_err(dir, e))?;
        w.commit(Some(&b.digest), Some(b.size))
            .map_err(|e| cache_err(dir, e))?;
    }
    layout.tag(LATEST, &desc).map_err(|e| cache_err(dir, e))?;
    Ok(desc)
}

/// `--cache-from type=local,src=DIR`: the metadata read now, layers when
/// the build asks.
pub fn open_layout(dir: &Path) -> Result<ImportedCache> {
    let layout = Layout::open(dir)?;
    let entry = match layout.resolve(LATEST).map_err(|e| cache_err(dir, e))? {
        Some(d) => d,
        None => {
            let index = layout.index()?;
            match index.manifests.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(cache_err(
                        dir,
                        "no manifest named latest in index.json (write it with --cache-to type=local,dest=DIR)",
                    ))
                }
            }
        }
    };
    let bytes = layout
        .read_capped(&entry.digest, MAX_MANIFEST_BYTES)
        .map_err(|e| cache_err(dir, e))?;
    let raw = RawManifest::new(bytes, Some(&entry.media_type), "build cache manifest")
        .map_err(|e| cache_err(dir, e))?;
    let manifest = raw.manifest("build cache").map_err(|e| cache_err(dir, e))?;
    if !is_cache_manifest(&manifest) {
        return Err(cache_err(
            dir,
            format!(
                "{} is not a kiln build cache (artifactType {:?})",
                entry.digest,
                manifest.artifact_type.unwrap_or_default()
            ),
        ));
    }
    let config = layout
        .read_capped(&manifest.config.digest, MAX_METADATA_BYTES)
        .map_err(|e| cache_err(dir, e))?;
    let metadata = CacheMetadata::parse(&config).map_err(|e| cache_err(dir, e))?;
    Ok(ImportedCache {
        metadata,
        source: std::sync::Arc::new(LayoutSource { layout }),
    })
}

struct LayoutSource {
    layout: Layout,
}

impl CacheSource for LayoutSource {
    fn name(&self) -> String {
        self.layout.root().display().to_string()
    }

    fn fetch(&self, layer: &Descriptor, store: &Store) -> std::result::Result<(), String> {
        let mut from = self.layout.open(&layer.digest).map_err(|e| e.to_string())?;
        let mut w = store.blobs().ingest().map_err(|e| e.to_string())?;
        std::io::copy(&mut from, &mut w).map_err(|e| e.to_string())?;
        w.commit(Some(&layer.digest), Some(layer.size))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Stores the plain tar of the compressed layer blob `compressed` (in the
/// store) as its own blob, verified against `diff_id`: an inline cache
/// names layers as the image's config does, by diff_id.
pub fn store_plain_layer(store: &Store, compressed: &Digest, diff_id: &Digest) -> Result<u64> {
    let file = store.blobs().open(compressed)?;
    let (_, mut plain) = kiln_layer::decompress(BufReader::with_capacity(1 << 20, file))?;
    let mut w = store.blobs().ingest()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = plain
            .read(&mut buf)
            .map_err(|e| cache_err(Path::new(&compressed.to_string()), e))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .map_err(|e| cache_err(Path::new(&compressed.to_string()), e))?;
    }
    Ok(w.commit(Some(diff_id), None)?.1)
}
