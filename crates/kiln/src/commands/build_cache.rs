//! `kiln build --cache-to/--cache-from`: the registry side of a shared
//! build cache. The format, the export by mode, the layout and the lazy
//! import live in `kiln_build::cache_io`; here a cache artifact is pushed
//! with the same client and push code as an image (HEAD-skipped blobs,
//! mounts), and read back: the manifest and metadata first, each layer
//! only when the build asks for it.

use std::collections::HashMap;

use anyhow::Context as _;
use kiln_build::cache_io::{
    carried_layers, is_cache_manifest, open_layout, store_artifact, store_plain_layer,
    write_layout, CacheFrom, CacheMetadata, CacheSource, CacheTo, ImportedCache, Mode,
    MAX_METADATA_BYTES,
};
use kiln_core::image::Descriptor;
use kiln_core::{Digest, ErrorKind, ImageRef};
use kiln_registry_client::{Client, PushOptions, Repo};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs};

/// The `--cache-to` and `--cache-from` flags, parsed.
pub(crate) struct Specs {
    pub to: Vec<CacheTo>,
    pub from: Vec<CacheFrom>,
}

impl Specs {
    pub(crate) fn parse(to: &[String], from: &[String]) -> anyhow::Result<Specs> {
        let specs = Specs {
            to: to.iter().map(|s| s.parse()).collect::<Result<_, _>>()?,
            from: from.iter().map(|s| s.parse()).collect::<Result<_, _>>()?,
        };
        if specs
            .to
            .iter()
            .filter(|t| !matches!(t, CacheTo::Inline))
            .count()
            > 1
        {
            anyhow::bail!(
                "--cache-to: one type=registry or type=local export per build (plus type=inline); build again for another destination"
            );
        }
        Ok(specs)
    }

    /// The registry or layout export.
    pub(crate) fn export(&self) -> Option<&CacheTo> {
        self.to.iter().find(|t| !matches!(t, CacheTo::Inline))
    }

    pub(crate) fn export_mode(&self) -> Option<Mode> {
        match self.export()? {
            CacheTo::Registry { mode, .. } | CacheTo::Local { mode, .. } => Some(*mode),
            CacheTo::Inline => None,
        }
    }

    pub(crate) fn inline(&self) -> bool {
        self.to.iter().any(|t| matches!(t, CacheTo::Inline))
    }
}

/// Reads every `--cache-from` (metadata only). A cache that does not
/// exist yet (the first build) is a warning, as in buildx.
pub(crate) fn import(
    specs: &[CacheFrom],
    registry: &RegistryArgs,
    quiet: bool,
) -> anyhow::Result<Vec<ImportedCache>> {
    let mut out = Vec::new();
    for spec in specs {
        let got = match spec {
            CacheFrom::Local { src } => {
                if !src.join("index.json").is_file() {
                    if !quiet {
                        eprintln!(
                            "WARNING: --cache-from {}: no cache there yet (no index.json)",
                            src.display()
                        );
                    }
                    continue;
                }
                open_layout(src)?
            }
            CacheFrom::Registry { reference } => match from_registry(reference, registry)? {
                Some(c) => c,
                None => {
                    if !quiet {
                        eprintln!("WARNING: --cache-from {reference}: not found in the registry; building without it");
                    }
                    continue;
                }
            },
        };
        out.push(got);
    }
    Ok(out)
}

fn at(r: &ImageRef) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, t) => t.unwrap_or("latest").to_string(),
    }
}

/// A cache artifact, or an image with an inline cache, at `reference`;
/// `None` when the registry has nothing there.
fn from_registry(
    reference: &str,
    registry: &RegistryArgs,
) -> anyhow::Result<Option<ImportedCache>> {
    let r: ImageRef = reference
        .parse()
        .with_context(|| format!("--cache-from ref={reference}"))?;
    let client = registry.client()?;
    let repo = Repo::of(&r);
    let top = match block_on(client.get_manifest(&repo, &at(&r)))? {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read build cache {reference}")),
    };
    // A multi-platform image pushed with `--cache-to type=inline`: each
    // platform's config carries that platform's records (as buildx puts
    // them), all of them imported (their keys name the platform).
    let manifests: Vec<kiln_core::image::Manifest> = if top.is_index() {
        let index = top
            .index(reference)
            .with_context(|| format!("--cache-from {reference}"))?;
        let mut out = Vec::new();
        for d in index.manifests.iter().filter(|d| {
            kiln_core::media_types::is_manifest(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| p.os != "unknown")
        }) {
            let m = block_on(client.get_manifest(&repo, &d.digest.to_string()))?
                .with_context(|| format!("read {reference}'s manifest {}", d.digest))?;
            out.push(m.manifest(reference)?);
        }
        out
    } else {
        vec![top.manifest(reference).with_context(|| {
            format!("--cache-from {reference}: not a manifest kiln can read as a build cache")
        })?]
    };
    let mut parts = Vec::new();
    let mut carried = HashMap::new();
    for manifest in &manifests {
        let config =
            block_on(client.read_blob(&repo, &manifest.config.digest, MAX_METADATA_BYTES))?
                .with_context(|| format!("read the build cache metadata of {reference}"))?;
        if is_cache_manifest(manifest) && manifests.len() == 1 {
            let m = CacheMetadata::parse(&config)
                .map_err(|e| anyhow::anyhow!("--cache-from {reference}: {e}"))?;
            // The artifact's layers as the export compressed them.
            carried = carried_layers(&m, manifest)
                .map_err(|e| anyhow::anyhow!("--cache-from {reference}: {e}"))?;
            parts.push(m);
            continue;
        }
        let Some(m) = CacheMetadata::inline(&config) else {
            anyhow::bail!(
                "--cache-from {reference}: neither a kiln build cache nor an image with an inline cache (build it with --cache-to type=inline)"
            );
        };
        parts.push(m);
        // The image's layers as the registry has them, by diff_id.
        let v: serde_json::Value = serde_json::from_slice(&config)?;
        let diff_ids: Vec<Digest> = v["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str()?.parse().ok())
            .collect();
        carried.extend(diff_ids.into_iter().zip(manifest.layers.iter().cloned()));
    }
    let Some(metadata) = CacheMetadata::merge(parts) else {
        anyhow::bail!("--cache-from {reference}: an index with no image in it");
    };
    // One runtime for every fetch of this source, so the client's pooled
    // connections stay alive between layers. main resets SIGPIPE to its
    // default; a handler in this runtime makes a write to a connection the
    // registry closed fail with EPIPE (and be retried) instead of killing
    // the build, as `kiln serve` does.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let sigpipe = runtime
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()) })
        .context("handle SIGPIPE")?;
    Ok(Some(ImportedCache {
        metadata,
        source: std::sync::Arc::new(RegistrySource {
            client,
            repo,
            name: reference.to_string(),
            carried,
            runtime,
            _sigpipe: sigpipe,
        }),
    }))
}

/// Layers from a registry repository.
struct RegistrySource {
    client: Client,
    repo: Repo,
    name: String,
    /// A record's plain layer (digest = diff_id) → the blob the registry
    /// holds it as: the artifact's layer compressed by the export, or for
    /// an inline cache the image's layer compressed by the push.
    carried: HashMap<Digest, Descriptor>,
    /// Before the runtime: dropped while it still runs.
    _sigpipe: tokio::signal::unix::Signal,
    runtime: tokio::runtime::Runtime,
}

impl CacheSource for RegistrySource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn fetch(&self, layer: &Descriptor, store: &Store) -> Result<(), String> {
        let remote = self.carried.get(&layer.digest).unwrap_or(layer);
        self.runtime
            .block_on(self.client.fetch_blob(
                &self.repo,
                &remote.digest,
                remote.size,
                store.blobs(),
                None,
                &|_| {},
            ))
            .map_err(|e| kiln_core::error_chain(&e))?;
        // Downloaded and verified as carried (compressed); stored plain,
        // verified against the record's diff_id.
        if remote.digest != layer.digest {
            store_plain_layer(store, &remote.digest, &layer.digest)
                .map_err(|e| kiln_core::error_chain(&e))?;
            // A later push of an image with this layer finds it compressed
            // in this repository (a HEAD or a mount, no compressing).
            if let Some(c) = kiln_layer::Compression::of_media_type(&remote.media_type)
                .filter(|c| *c != kiln_layer::Compression::None)
            {
                let known = kiln_store::CompressedLayer {
                    digest: remote.digest.clone(),
                    size: remote.size,
                };
                store
                    .record_compressed_layer(&layer.digest, c.name(), &known)
                    .and_then(|()| store.record_blob_source(&remote.digest, &self.repo.to_string()))
                    .map_err(|e| kiln_core::error_chain(&e))?;
            }
        }
        Ok(())
    }
}

/// `--cache-to type=registry|local`: the collected records out. (`inline`
/// was written into the image by the build.)
pub(crate) fn export(
    store: &Store,
    to: &CacheTo,
    meta: &CacheMetadata,
    registry: &RegistryArgs,
    quiet: bool,
) -> anyhow::Result<()> {
    let (what, digest) = match to {
        CacheTo::Inline => return Ok(()),
        CacheTo::Local {
            dest, compression, ..
        } => {
            let d = write_layout(store, meta, dest, *compression)?;
            (dest.display().to_string(), d.digest)
        }
        CacheTo::Registry {
            reference,
            compression,
            ..
        } => {
            let r: ImageRef = reference
                .parse()
                .with_context(|| format!("--cache-to ref={reference}"))?;
            let entry = store_artifact(store, meta)?;
            let client = registry.client()?;
            // Layers are stored plain (the records name them so, and an
            // importer's image names them so: the same digest); the push
            // compresses them as it does an image's, reusing a compressed
            // form an image push already made (HEAD, or a mount from the
            // image's repository). The manifest lists them in record order,
            // which is how an importer pairs them back.
            let opts = PushOptions {
                compression: *compression,
                force_compression: false,
            };
            let pushed = block_on(kiln_registry_client::push(
                &client,
                store,
                &entry,
                &r,
                &opts,
                &kiln_registry_client::Silent,
            ))?
            .with_context(|| format!("push the build cache to {reference}"))?;
            (reference.clone(), pushed.digest)
        }
    };
    if !quiet {
        eprintln!(
            "#done exporting cache ({} steps) to {what}: {digest}",
            meta.records.len()
        );
    }
    Ok(())
}
