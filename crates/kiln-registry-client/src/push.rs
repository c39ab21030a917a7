//! `push`: an image in the store → a repository on a registry.
//!
//! Each blob is first asked for with HEAD and skipped when present; a blob
//! the store knows lives in another repository of the same registry is
//! mounted from there; the rest are uploaded (several at once). Manifests
//! go last, children of an index before the index, so a registry never
//! holds a manifest whose blobs it lacks.

use futures_util::{stream, TryStreamExt};
use kiln_core::{Digest, ImageRef};
use kiln_store::{IndexEntry, Store};

use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::progress::{BlobEvent, Progress};

/// Upload attempts per blob (each restarts the upload session).
const UPLOAD_ATTEMPTS: u32 = 3;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Digest of the top manifest (or index) as the registry stores it.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Blobs uploaded (not skipped, not mounted).
    pub uploaded: usize,
}

/// Pushes the image `entry` names to `dest` (its tag, or only by digest
/// when `dest` has none).
pub async fn push(
    client: &Client,
    store: &Store,
    entry: &IndexEntry,
    dest: &ImageRef,
    progress: &dyn Progress,
) -> Result<Pushed> {
    let repo = Repo::of(dest);
    let _lease = store.lease()?;
    let top = stored_manifest(store, &entry.digest, &entry.media_type)?;
    let mut children = Vec::new();
    if top.is_index() {
        for d in top.index(&format!("index {}", entry.digest))?.manifests {
            if !store.blobs().exists(&d.digest) {
                return Err(RegistryError::Config(format!(
                    "the index {} names manifest {} ({}), which is not in the store: only part of this multi-platform image was pulled; push one platform's image instead, or pull with --all-platforms first",
                    entry.digest,
                    d.digest,
                    d.platform.map(|p| p.to_platform().to_string()).unwrap_or_default()
                )));
            }
            children.push(stored_manifest(store, &d.digest, &d.media_type)?);
        }
    } else {
        children.push(top.clone());
    }

    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut configs = std::collections::HashSet::new();
    for m in &children {
        let parsed = m.image(&format!("manifest {}", m.digest), true)?;
        configs.insert(parsed.config.digest.clone());
        blobs.push(parsed.config);
        blobs.extend(parsed.layers);
    }
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|d| seen.insert(d.digest.clone()));

    let uploaded = std::sync::atomic::AtomicUsize::new(0);
    let concurrency = client.options().concurrency.max(1);
    stream::iter(blobs.iter().map(Ok))
        .try_for_each_concurrent(concurrency, |d| {
            let uploaded = &uploaded;
            let repo = &repo;
            // Configs are not shown, as docker shows only layers.
            let shown: &dyn Progress = if configs.contains(&d.digest) {
                &crate::progress::Silent
            } else {
                progress
            };
            async move {
                if push_blob(client, store, repo, d, shown).await? {
                    uploaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok::<(), RegistryError>(())
            }
        })
        .await?;

    if top.is_index() {
        for m in &children {
            client
                .put_manifest(&repo, &m.digest.to_string(), &m.media_type, &m.bytes)
                .await?;
        }
    }
    let reference = dest
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| top.digest.to_string());
    let digest = client
        .put_manifest(&repo, &reference, &top.media_type, &top.bytes)
        .await?;
    let at = repo.to_string();
    for d in &blobs {
        store.record_blob_source(&d.digest, &at)?;
    }
    Ok(Pushed {
        digest,
        size: top.bytes.len() as u64,
        uploaded: uploaded.into_inner(),
    })
}

fn stored_manifest(store: &Store, digest: &Digest, media_type: &str) -> Result<RawManifest> {
    let bytes = store.blobs().read(digest)?;
    RawManifest::new(
        bytes,
        Some(media_type),
        &format!("stored manifest {digest}"),
    )
}

/// Gets one blob to the registry; true if it was uploaded.
async fn push_blob(
    client: &Client,
    store: &Store,
    repo: &Repo,
    d: &Descriptor,
    progress: &dyn Progress,
) -> Result<bool> {
    if client.blob_exists(repo, &d.digest, true).await?.is_some() {
        progress.blob(&d.digest, BlobEvent::AlreadyExists);
        return Ok(false);
    }
    let path = store.blobs().path(&d.digest);
    if !store.blobs().exists(&d.digest) {
        return Err(kiln_store::StoreError::BlobNotFound(d.digest.clone()).into());
    }
    let mut session = None;
    let prefix = format!("{}/", repo.registry);
    let mount_from = store
        .blob_sources(&d.digest)
        .into_iter()
        .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
        .find(|p| *p != repo.path);
    if let Some(from) = mount_from {
        match client.mount_blob(repo, &d.digest, &from).await {
            Ok(None) => {
                progress.blob(&d.digest, BlobEvent::Mounted);
                return Ok(false);
            }
            Ok(Some(s)) => session = Some(s),
            // The record was stale or access is denied: upload instead.
            Err(e) => tracing::debug!("mount of {} from {from} failed: {e}", d.digest),
        }
    }
    progress.blob(&d.digest, BlobEvent::Start { total: d.size });
    let on_bytes = |n: u64| progress.blob(&d.digest, BlobEvent::Bytes { done: n });
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client
            .upload_blob(repo, &d.digest, &path, session.take(), &on_bytes)
            .await
        {
            Ok(()) => break,
            Err(RegistryError::Connect { .. } | RegistryError::GaveUp { .. })
                if attempt < UPLOAD_ATTEMPTS =>
            {
                on_bytes(0);
                continue;
            }
            Err(e) => {
                progress.blob(&d.digest, BlobEvent::Done("Failed"));
                return Err(e);
            }
        }
    }
    progress.blob(&d.digest, BlobEvent::Done("Pushed"));
    Ok(true)
}
