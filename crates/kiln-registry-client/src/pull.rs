//! `pull`: a reference on a registry → an image in the store.
//!
//! Order of work, so that a failure anywhere leaves nothing half-done:
//! manifest (and index) fetched and verified in memory; config fetched and
//! checked against the manifest; layers fetched in parallel, each verified
//! before it becomes visible; manifests stored; only then the tag moves.
//! Blobs already in the store are not fetched. A GC lease is held
//! throughout so a concurrent prune cannot remove what was just written.

use std::sync::Mutex;

use futures_util::{stream, TryStreamExt};
use kiln_core::image::{walk_with, ImageConfig, Node, NodeKind, Visit};
use kiln_core::{Digest, ImageRef, Platform};
use kiln_layer::Compression;
use kiln_store::{IndexEntry, LayerInfo, Store, REPO_DIGEST};

use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::{select_platform, Descriptor, RawManifest};
use crate::progress::{BlobEvent, Progress};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index; the host's when `None`.
    pub platform: Option<Platform>,
    /// Keep the whole index and every platform's image.
    pub all_platforms: bool,
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest the registry names the image by (what `name@digest`
    /// pulls again): the index's when an index was resolved.
    pub repo_digest: Digest,
    /// The index entry written (a manifest, or the index with
    /// `--all-platforms`).
    pub entry: IndexEntry,
    /// True when every blob was already in the store.
    pub up_to_date: bool,
}

/// Pulls `reference` into `store` and tags it (a reference by digest only
/// is stored untagged, as docker does).
pub async fn pull(
    client: &Client,
    store: &Store,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let repo = Repo::of(reference);
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let _lease = store.lease()?;
    let top = client.get_manifest(&repo, &tag_or_digest).await?;
    let shown = reference.familiar();

    // The one manifest an index resolves to (`None`: every one is kept,
    // or the top is a manifest).
    let chosen = if top.is_index() && !opts.all_platforms {
        let index = top.index(&format!("index {shown}"))?;
        let want = opts.platform.clone().unwrap_or_else(Platform::host);
        Some(select_platform(&index, &want, &shown)?.digest.clone())
    } else {
        None
    };
    // The one walk, over the registry: each document fetched (and
    // verified) once, configs and layers named, each digest once.
    let root = Descriptor::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
    let fetched: Mutex<Vec<RawManifest>> = Mutex::new(Vec::new());
    let (mut configs, mut layers) = (Vec::new(), Vec::new());
    let unsupported =
        |digest: &Digest, media_type: &str, expected| RegistryError::UnsupportedMediaType {
            what: format!("manifest {digest} in index {shown}"),
            media_type: media_type.to_string(),
            expected,
        };
    let fetch = |d: &Descriptor| {
        let (fetched, top, repo, unsupported) = (&fetched, &top, &repo, &unsupported);
        let digest = d.digest.clone();
        async move {
            let m = if digest == top.digest {
                top.clone()
            } else {
                let m = client.get_manifest(repo, &digest.to_string()).await?;
                if m.is_index() {
                    return Err(unsupported(
                        &digest,
                        &m.media_type,
                        "an image manifest (nested indexes are not supported)",
                    ));
                }
                m
            };
            let bytes = m.bytes.clone();
            fetched.lock().unwrap_or_else(|e| e.into_inner()).push(m);
            Ok(bytes)
        }
    };
    let visit = |n: &Node<'_>| {
        let d = n.descriptor;
        match n.kind {
            NodeKind::Config => configs.push(d.clone()),
            NodeKind::Layer => layers.push(d.clone()),
            _ if n.parent.is_none() => {}
            // An index's entries: the chosen platform's, or every one.
            _ if !opts.all_platforms && chosen.as_ref() != Some(&d.digest) => {
                return Ok(Visit::Skip)
            }
            // The walk names what it cannot follow; pull must store it.
            NodeKind::Other => {
                return Err(unsupported(&d.digest, &d.media_type, "an image manifest"))
            }
            NodeKind::Index | NodeKind::Manifest => {}
        }
        Ok(Visit::Descend)
    };
    walk_with(&root, fetch, visit, |_: &Node<'_>, e| Err(e)).await?;
    // The image manifests, in index order (the top one when no index).
    let images: Vec<RawManifest> = fetched
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .filter(|m| !m.is_index())
        .collect();
    let entry = match (top.is_index(), images.first()) {
        (true, Some(m)) if !opts.all_platforms => {
            let mut e = IndexEntry::new(&m.media_type, m.digest.clone(), m.bytes.len() as u64);
            e.annotations
                .insert(REPO_DIGEST.into(), top.digest.to_string());
            e
        }
        (true, _) => {
            let mut e =
                IndexEntry::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
            e.annotations
                .insert(REPO_DIGEST.into(), top.digest.to_string());
            e
        }
        (false, _) => {
            let mut e =
                IndexEntry::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
            // Pulled by this digest: `images --digests` and RepoDigests
            // show it (a built image has none).
            e.annotations
                .insert(REPO_DIGEST.into(), top.digest.to_string());
            e
        }
    };

    // (config, layer count) per image, for the config check.
    let mut expected: Vec<(Descriptor, usize)> = Vec::new();
    for m in &images {
        let what = format!("manifest {} of {shown}", m.digest);
        // Images of an index copied whole may be attestations or other
        // artifacts whose layers are not tars.
        let parsed = if opts.all_platforms {
            m.manifest(&what)?
        } else {
            m.image(&what)?
        };
        expected.push((parsed.config, parsed.layers.len()));
    }
    let all: Vec<Descriptor> = configs.iter().chain(&layers).cloned().collect();
    let missing = |list: &[Descriptor]| -> Vec<Descriptor> {
        list.iter()
            .filter(|d| !store.blobs().exists(&d.digest))
            .cloned()
            .collect()
    };
    let up_to_date =
        missing(&all).is_empty() && images.iter().all(|m| store.blobs().exists(&m.digest));
    for d in &layers {
        if store.blobs().exists(&d.digest) {
            progress.blob(&d.digest, BlobEvent::AlreadyExists);
        }
    }

    // Configs are not shown, as docker shows only layers.
    fetch_all(
        client,
        store,
        &repo,
        missing(&configs),
        &crate::progress::Silent,
    )
    .await?;
    if !opts.all_platforms {
        for (config, layer_count) in &expected {
            check_config(store, config, *layer_count, &shown)?;
        }
    }
    fetch_all(client, store, &repo, missing(&layers), progress).await?;
    if !opts.all_platforms {
        for (config, _) in &expected {
            check_diff_ids(store, config, &layers_of(&images, &config.digest), &shown)?;
        }
    }

    for m in &images {
        store.blobs().put(&m.bytes, Some(&m.digest))?;
    }
    if opts.all_platforms {
        store.blobs().put(&top.bytes, Some(&top.digest))?;
    }
    let source = repo.to_string();
    for d in &all {
        store.record_blob_source(&d.digest, &source)?;
    }
    let names: Vec<ImageRef> = match reference.tag() {
        Some(_) if reference.digest().is_none() => vec![reference.clone()],
        _ => Vec::new(),
    };
    store.name_image(&entry, &names)?;
    Ok(Pulled {
        repo_digest: top.digest,
        entry,
        up_to_date,
    })
}

async fn fetch_all(
    client: &Client,
    store: &Store,
    repo: &Repo,
    blobs: Vec<Descriptor>,
    progress: &dyn Progress,
) -> Result<()> {
    let concurrency = client.options().concurrency.max(1);
    stream::iter(blobs.into_iter().map(Ok))
        .try_for_each_concurrent(concurrency, |d| async move {
            progress.blob(&d.digest, BlobEvent::Start { total: d.size });
            let on_bytes = |n: u64| progress.blob(&d.digest, BlobEvent::Bytes { done: n });
            let layer = Compression::of_media_type(&d.media_type);
            let result = client
                .fetch_blob(repo, &d.digest, d.size, store.blobs(), layer, &on_bytes)
                .await;
            match &result {
                Ok(_) => progress.blob(&d.digest, BlobEvent::Done("Pull complete")),
                Err(_) => progress.blob(&d.digest, BlobEvent::Done("Failed")),
            }
            // Recorded so `images` shows the uncompressed size, as docker
            // does, whatever compression the registry used.
            if let Some((diff_id, uncompressed_size)) = result? {
                store.record_layer(
                    &d.digest,
                    &LayerInfo {
                        diff_id,
                        uncompressed_size,
                        content_size: None,
                    },
                )?;
            }
            Ok(())
        })
        .await
}

/// The config must be an image config whose layer list matches the
/// manifest's: a mismatch would make an image that cannot be unpacked.
fn check_config(store: &Store, config: &Descriptor, layers: usize, shown: &str) -> Result<()> {
    let bytes = store.blobs().read(&config.digest)?;
    let what = format!("config {} of {shown}", config.digest);
    let parsed = ImageConfig::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
        what: what.clone(),
        reason: format!("not a JSON object: {e}"),
    })?;
    let diff_ids = parsed
        .rootfs
        .as_ref()
        .and_then(|r| r.diff_ids.as_ref())
        .map(Vec::len);
    if diff_ids != Some(layers) {
        return Err(RegistryError::Invalid {
            what,
            reason: format!(
                "it lists {} layer diff_ids, the manifest {layers} layers",
                diff_ids.map_or("no".to_string(), |n| n.to_string())
            ),
        });
    }
    Ok(())
}

/// The layer digests of the image whose config is `config`.
fn layers_of(images: &[RawManifest], config: &Digest) -> Vec<Digest> {
    images
        .iter()
        .filter_map(|m| m.manifest("manifest").ok())
        .find(|m| &m.config.digest == config)
        .map(|m| m.layers.into_iter().map(|l| l.digest).collect())
        .unwrap_or_default()
}

/// Each layer measured on the way in must have the diff_id the config
/// lists for it: a layer that unpacks to something else than the config
/// says would make an image whose ID does not describe its content.
fn check_diff_ids(
    store: &Store,
    config: &Descriptor,
    layers: &[Digest],
    shown: &str,
) -> Result<()> {
    let bytes = store.blobs().read(&config.digest)?;
    let listed: Vec<String> = ImageConfig::from_slice(&bytes)
        .ok()
        .and_then(|c| c.rootfs.as_ref().and_then(|r| r.diff_ids.clone()))
        .unwrap_or_default();
    for (i, layer) in layers.iter().enumerate() {
        let Some(info) = store.layer_info(layer) else {
            continue;
        };
        let expected = listed.get(i).and_then(|d| d.parse::<Digest>().ok());
        if expected.as_ref() != Some(&info.diff_id) {
            return Err(RegistryError::Invalid {
                what: format!("layer {layer} of {shown}"),
                reason: format!(
                    "it unpacks to diff_id {}, the image config lists {}",
                    info.diff_id,
                    expected.map_or("none".to_string(), |d| d.to_string())
                ),
            });
        }
    }
    Ok(())
}
