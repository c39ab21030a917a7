//! `push`: an image in the store → a repository on a registry.
//!
//! Each blob is first asked for with HEAD and skipped when present; a blob
//! the store knows lives in another repository of the same registry is
//! mounted from there; the rest are uploaded (several at once). Manifests
//! go last, children of an index before the index, so a registry never
//! holds a manifest whose blobs it lacks.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use futures_util::{stream, TryStreamExt};
use kiln_core::image::{walk, NodeKind, Visit};
use kiln_core::{media_types as mt, Digest, ImageRef};
use kiln_store::{CompressedLayer, IndexEntry, Store};
use serde_json::Value;

use crate::attest_push;
use crate::client::{Client, Repo};
use crate::compress::{compress_layer, media_type, PushOptions};
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
    /// Layers compressed for this push (0 when every compressed form was
    /// already known).
    pub compressed: usize,
}

/// Counters shared by the concurrent blob pushes.
#[derive(Default)]
struct Counts {
    uploaded: AtomicUsize,
    compressed: AtomicUsize,
}

/// Pushes the image `entry` names to `dest` (its tag, or only by digest
/// when `dest` has none).
pub async fn push(
    client: &Client,
    store: &Store,
    entry: &IndexEntry,
    dest: &ImageRef,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed> {
    let repo = Repo::of(dest);
    let _lease = store.lease()?;
    let top = stored_manifest(store, &entry.digest, &entry.media_type)?;
    // The one walk over what the store holds: the image manifests (an
    // index's children, or the top one) and every config and layer once.
    let mut children = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut configs = HashSet::new();
    walk::<_, RegistryError>(
        store,
        entry,
        &mut |n| {
            let d = n.descriptor;
            match n.kind {
                NodeKind::Manifest => {
                    if n.parent.is_some() && !store.blobs().exists(&d.digest) {
                        return Err(RegistryError::Config(format!(
                            "the index {} names manifest {} ({}), which is not in the store: only part of this multi-platform image was pulled; push one platform's image instead, or pull with --all-platforms first",
                            entry.digest,
                            d.digest,
                            d.platform.as_ref().map(|p| p.to_string()).unwrap_or_default()
                        )));
                    }
                    children.push(stored_manifest(store, &d.digest, &d.media_type)?);
                }
                NodeKind::Config => {
                    configs.insert(d.digest.clone());
                    blobs.push(d.clone());
                }
                NodeKind::Layer => blobs.push(d.clone()),
                NodeKind::Index | NodeKind::Other => {}
            }
            Ok(Visit::Descend)
        },
        &mut |_, e| Err(e),
    )?;

    // An index's attestation manifests go after its images: their blobs
    // are sent then, as the statements end up (rewritten when the images
    // were renamed), so the originals never reach the registry.
    let attestation_blobs: HashSet<Digest> = children
        .iter()
        .filter(|m| top.is_index() && attest_push::is_attestation(m))
        .flat_map(|m| attest_push::blobs_of(m).unwrap_or_default())
        .map(|d| d.digest)
        .collect();
    let image_blobs: HashSet<Digest> = children
        .iter()
        .filter(|m| !(top.is_index() && attest_push::is_attestation(m)))
        .flat_map(|m| attest_push::blobs_of(m).unwrap_or_default())
        .map(|d| d.digest)
        .collect();
    blobs.retain(|d| !attestation_blobs.contains(&d.digest) || image_blobs.contains(&d.digest));

    let counts = Counts::default();
    // Stored digest → the descriptor the registry has.
    let sent: Mutex<HashMap<Digest, Descriptor>> = Mutex::new(HashMap::new());
    let concurrency = client.options().concurrency.max(1);
    stream::iter(blobs.iter().map(Ok))
        .try_for_each_concurrent(concurrency, |d| {
            let (counts, sent, repo) = (&counts, &sent, &repo);
            // Configs are not shown, as docker shows only layers.
            let shown: &dyn Progress = if configs.contains(&d.digest) {
                &crate::progress::Silent
            } else {
                progress
            };
            async move {
                let out = push_blob(client, store, repo, d, opts, shown, counts).await?;
                sent.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(d.digest.clone(), out);
                Ok::<(), RegistryError>(())
            }
        })
        .await?;
    let sent = sent.into_inner().unwrap_or_else(|e| e.into_inner());

    // The manifests as the registry gets them: layers as sent. The
    // images' first, so an attestation manifest's statements can name the
    // images' pushed digests.
    let mut renamed: HashMap<Digest, Descriptor> = HashMap::new();
    let mut pushed_children = Vec::new();
    let (attestations, images): (Vec<&RawManifest>, Vec<&RawManifest>) = children
        .iter()
        .partition(|m| top.is_index() && attest_push::is_attestation(m));
    for m in images.into_iter().chain(attestations) {
        let attestation = top.is_index() && attest_push::is_attestation(m);
        let resubjected = if attestation {
            attest_push::resubject(store, m, &renamed)?
        } else {
            None
        };
        let pushed = match (resubjected, with_sent_layers(&m.bytes, &sent, &m.digest)?) {
            (Some(rewritten), _) => rewritten,
            // The body's mediaType wins (it changes for zstd layers).
            (None, Some(bytes)) => RawManifest::new(bytes, Some(&m.media_type), "pushed manifest")?,
            (None, None) => m.clone(),
        };
        if attestation {
            // The statements and config as this manifest names them now.
            for d in attest_push::blobs_of(&pushed)? {
                push_blob(
                    client,
                    store,
                    &repo,
                    &d,
                    opts,
                    &crate::progress::Silent,
                    &counts,
                )
                .await?;
            }
        }
        renamed.insert(
            m.digest.clone(),
            Descriptor::new(
                &pushed.media_type,
                pushed.digest.clone(),
                pushed.bytes.len() as u64,
            ),
        );
        pushed_children.push(pushed);
    }
    let top = if top.is_index() {
        for m in &pushed_children {
            client
                .put_manifest(&repo, &m.digest.to_string(), &m.media_type, &m.bytes)
                .await?;
        }
        match with_renamed_manifests(&top.bytes, &renamed, &top.digest)? {
            Some(bytes) => RawManifest::new(bytes, Some(&top.media_type), "pushed index")?,
            None => top,
        }
    } else {
        pushed_children.swap_remove(0)
    };
    let reference = dest
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| top.digest.to_string());
    let digest = client
        .put_manifest(&repo, &reference, &top.media_type, &top.bytes)
        .await?;
    let at = repo.to_string();
    for d in sent.values() {
        store.record_blob_source(&d.digest, &at)?;
    }
    store.record_pushed(&entry.digest, &at, &digest)?;
    Ok(Pushed {
        digest,
        size: top.bytes.len() as u64,
        uploaded: counts.uploaded.into_inner(),
        compressed: counts.compressed.into_inner(),
    })
}

fn stored_manifest(store: &Store, digest: &Digest, media_type: &str) -> Result<RawManifest> {
    let bytes = store.blobs().read(digest)?;
    Ok(RawManifest::new(
        bytes,
        Some(media_type),
        &format!("stored manifest {digest}"),
    )?)
}

fn invalid(what: &Digest, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Invalid {
        what: format!("stored manifest {what}"),
        reason: e.to_string(),
    }
}

/// The manifest `bytes` with each layer replaced by the descriptor it was
/// sent as; `None` when every layer went as stored (the bytes, and so the
/// digest, stay the same).
fn with_sent_layers(
    bytes: &[u8],
    sent: &HashMap<Digest, Descriptor>,
    what: &Digest,
) -> Result<Option<Vec<u8>>> {
    let Some(mut v) = with_replaced(bytes, "layers", sent, what)? else {
        return Ok(None);
    };
    to_oci_if_zstd(&mut v);
    to_bytes(&v, what).map(Some)
}

/// The index `bytes` with its manifests renamed as pushed; `None` when
/// every one went as stored.
fn with_renamed_manifests(
    bytes: &[u8],
    renamed: &HashMap<Digest, Descriptor>,
    what: &Digest,
) -> Result<Option<Vec<u8>>> {
    with_replaced(bytes, "manifests", renamed, what)?
        .map(|v| to_bytes(&v, what))
        .transpose()
}

/// The document `bytes` (as JSON, so every field it has survives) with
/// each descriptor of its `list` that went up under another digest
/// replaced by the one it went as; `None` when none did.
fn with_replaced(
    bytes: &[u8],
    list: &str,
    sent: &HashMap<Digest, Descriptor>,
    what: &Digest,
) -> Result<Option<Value>> {
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(what, e))?;
    let mut changed = false;
    if let Some(items) = v.get_mut(list).and_then(Value::as_array_mut) {
        for d in items {
            // An attestation manifest of an index names the image it is
            // about (BuildKit's annotation): that image's pushed digest.
            let about = d
                .pointer("/annotations/vnd.docker.reference.digest")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Digest>().ok())
                .and_then(|s| sent.get(&s).filter(|o| o.digest != s));
            if let Some(out) = about {
                d["annotations"]["vnd.docker.reference.digest"] =
                    Value::from(out.digest.to_string());
                changed = true;
            }
            let stored = d.get("digest").and_then(Value::as_str);
            let Some(out) = stored
                .and_then(|s| s.parse::<Digest>().ok())
                .and_then(|s| sent.get(&s).filter(|o| o.digest != s))
            else {
                continue;
            };
            d["mediaType"] = Value::from(out.media_type.clone());
            d["digest"] = Value::from(out.digest.to_string());
            d["size"] = Value::from(out.size);
            changed = true;
        }
    }
    Ok(changed.then_some(v))
}

fn to_bytes(v: &Value, what: &Digest) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| invalid(what, e))
}

/// Docker's schema 2 has no zstd layer type: a docker manifest that now
/// names zstd layers becomes an OCI manifest (config and layer types with
/// it), as BuildKit converts it.
fn to_oci_if_zstd(v: &mut Value) {
    let zstd = v
        .get("layers")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|l| l["mediaType"] == mt::OCI_LAYER_ZSTD));
    if !zstd || v["mediaType"] != mt::DOCKER_MANIFEST {
        return;
    }
    v["mediaType"] = Value::from(mt::OCI_MANIFEST);
    if v["config"]["mediaType"] == mt::DOCKER_CONFIG {
        v["config"]["mediaType"] = Value::from(mt::OCI_CONFIG);
    }
    if let Some(layers) = v.get_mut("layers").and_then(Value::as_array_mut) {
        for l in layers {
            let oci = match l["mediaType"].as_str() {
                Some(mt::DOCKER_LAYER_GZIP) => mt::OCI_LAYER_GZIP,
                Some(mt::DOCKER_LAYER_TAR) => mt::OCI_LAYER_TAR,
                _ => continue,
            };
            l["mediaType"] = Value::from(oci);
        }
    }
}

/// Gets one stored blob to the registry (compressed when `opts` says so);
/// returns the descriptor the registry has it under.
async fn push_blob(
    client: &Client,
    store: &Store,
    repo: &Repo,
    d: &Descriptor,
    opts: &PushOptions,
    progress: &dyn Progress,
    counts: &Counts,
) -> Result<Descriptor> {
    if !store.blobs().exists(&d.digest) {
        return Err(kiln_store::StoreError::BlobNotFound(d.digest.clone()).into());
    }
    let Some((from, to)) = opts.convert(d) else {
        let path = store.blobs().path(&d.digest);
        send(client, store, repo, d, &path, progress, counts).await?;
        return Ok(d.clone());
    };
    // The compressed form: known from an earlier push, or made now.
    let compress = || {
        let (store, blob) = (store.clone(), d.digest.clone());
        counts.compressed.fetch_add(1, Ordering::Relaxed);
        tracing::info!("compressing layer {} with {}", d.digest, to.name());
        async move {
            let pending = tokio::task::spawn_blocking(move || {
                let pending = compress_layer(&store, &blob, from, to)?;
                store.record_compressed_layer(
                    &blob,
                    to.name(),
                    &CompressedLayer {
                        digest: pending.digest().clone(),
                        size: pending.size(),
                    },
                )?;
                Ok::<_, RegistryError>(pending)
            })
            .await
            .map_err(|e| RegistryError::Compress {
                digest: d.digest.clone(),
                source: std::io::Error::other(format!("the compression task failed: {e}")),
            })??;
            Ok::<_, RegistryError>(pending)
        }
    };
    let descriptor = |c: &CompressedLayer| {
        Descriptor::new(media_type(&d.media_type, to), c.digest.clone(), c.size)
    };
    let (known, mut pending) = match store.compressed_layer(&d.digest, to.name()) {
        Some(c) => (c, None),
        None => {
            let p = compress().await?;
            let c = CompressedLayer {
                digest: p.digest().clone(),
                size: p.size(),
            };
            (c, Some(p))
        }
    };
    let out = descriptor(&known);
    let Some(session) = check_or_mount(client, store, repo, &out, &d.digest, progress).await?
    else {
        return Ok(out);
    };
    let pending = match pending.take() {
        Some(p) => p,
        None => compress().await?,
    };
    // Deterministic compression gives the recorded digest again; if the
    // compressor changed since, the new digest is what goes up.
    let out = descriptor(&CompressedLayer {
        digest: pending.digest().clone(),
        size: pending.size(),
    });
    let target = Target {
        digest: &out.digest,
        path: pending.path(),
        shown: &d.digest,
    };
    upload(client, repo, target, session, progress, counts).await?;
    Ok(out)
}

/// Sends a stored blob as is.
async fn send(
    client: &Client,
    store: &Store,
    repo: &Repo,
    d: &Descriptor,
    path: &Path,
    progress: &dyn Progress,
    counts: &Counts,
) -> Result<()> {
    let shown = &d.digest;
    let Some(session) = check_or_mount(client, store, repo, d, shown, progress).await? else {
        return Ok(());
    };
    let target = Target {
        digest: &d.digest,
        path,
        shown,
    };
    upload(client, repo, target, session, progress, counts).await
}

/// `None` when the registry has `d` already, or mounted it from another
/// repository the store knows holds it; else `Some` upload session the
/// mount attempt opened, if any. Progress is reported under `shown` (the
/// stored digest, as docker shows layers by their stored ID).
async fn check_or_mount(
    client: &Client,
    store: &Store,
    repo: &Repo,
    d: &Descriptor,
    shown: &Digest,
    progress: &dyn Progress,
) -> Result<Option<Option<String>>> {
    if client.blob_exists(repo, &d.digest, true).await?.is_some() {
        // docker's push words (a pull says "Already exists").
        progress.blob(shown, BlobEvent::Done("Layer already exists"));
        return Ok(None);
    }
    let prefix = format!("{}/", repo.registry);
    let mount_from = store
        .blob_sources(&d.digest)
        .into_iter()
        .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
        .find(|p| *p != repo.path);
    if let Some(from) = mount_from {
        match client.mount_blob(repo, &d.digest, &from).await {
            Ok(None) => {
                progress.blob(shown, BlobEvent::Mounted { from: &from });
                return Ok(None);
            }
            Ok(Some(session)) => return Ok(Some(Some(session))),
            // The record was stale or access is denied: upload instead.
            Err(e) => tracing::debug!("mount of {} from {from} failed: {e}", d.digest),
        }
    }
    Ok(Some(None))
}

/// What an upload sends: the file at `path` as blob `digest`, shown in
/// progress as `shown`.
struct Target<'a> {
    digest: &'a Digest,
    path: &'a Path,
    shown: &'a Digest,
}

/// Uploads a blob, restarting on connection failures (in `session` first,
/// when a mount attempt opened one).
async fn upload(
    client: &Client,
    repo: &Repo,
    Target {
        digest,
        path,
        shown,
    }: Target<'_>,
    mut session: Option<String>,
    progress: &dyn Progress,
    counts: &Counts,
) -> Result<()> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    progress.blob(shown, BlobEvent::Start { total: size });
    let on_bytes = |n: u64| progress.blob(shown, BlobEvent::Bytes { done: n });
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client
            .upload_blob(repo, digest, path, session.take(), &on_bytes)
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
                progress.blob(shown, BlobEvent::Done("Failed"));
                return Err(e);
            }
        }
    }
    progress.blob(shown, BlobEvent::Done("Pushed"));
    counts.uploaded.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::of(media_type, bytes)
    }

    #[test]
    fn manifests_change_only_where_layers_went_up_changed() {
        let plain = desc(mt::DOCKER_LAYER_TAR, b"plain");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt::DOCKER_MANIFEST,
            "config": {"mediaType": mt::DOCKER_CONFIG, "digest": Digest::sha256(b"c").to_string(), "size": 1},
            "layers": [{"mediaType": plain.media_type, "digest": plain.digest.to_string(), "size": plain.size}],
        });
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        let id = Digest::sha256(&bytes);

        // Sent as stored: the very same bytes (and digest) go up.
        let same = HashMap::from([(plain.digest.clone(), plain.clone())]);
        assert!(with_sent_layers(&bytes, &same, &id).unwrap().is_none());

        // gzip: the layer descriptor changes, the docker type stays docker's.
        let gz = desc(mt::DOCKER_LAYER_GZIP, b"gz");
        let sent = HashMap::from([(plain.digest.clone(), gz.clone())]);
        let out: Value =
            serde_json::from_slice(&with_sent_layers(&bytes, &sent, &id).unwrap().unwrap())
                .unwrap();
        assert_eq!(out["mediaType"], mt::DOCKER_MANIFEST);
        assert_eq!(out["layers"][0]["digest"], gz.digest.to_string());
        assert_eq!(out["layers"][0]["size"], gz.size);
        assert_eq!(out["config"], manifest["config"]);

        // zstd: docker's schema has no such type, so the manifest turns OCI.
        let zst = desc(mt::OCI_LAYER_ZSTD, b"zst");
        let sent = HashMap::from([(plain.digest.clone(), zst.clone())]);
        let out: Value =
            serde_json::from_slice(&with_sent_layers(&bytes, &sent, &id).unwrap().unwrap())
                .unwrap();
        assert_eq!(out["mediaType"], mt::OCI_MANIFEST);
        assert_eq!(out["config"]["mediaType"], mt::OCI_CONFIG);
        assert_eq!(out["layers"][0]["mediaType"], mt::OCI_LAYER_ZSTD);
    }

    #[test]
    fn an_index_names_its_manifests_as_pushed_and_keeps_the_rest() {
        let a = desc(mt::OCI_MANIFEST, b"a");
        let b = desc(mt::OCI_MANIFEST, b"b");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [
                {"mediaType": a.media_type, "digest": a.digest.to_string(), "size": a.size,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": b.media_type, "digest": b.digest.to_string(), "size": b.size},
            ],
            "annotations": {"x": "y"},
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let id = Digest::sha256(&bytes);
        let same = HashMap::from([(a.digest.clone(), a.clone())]);
        assert!(with_renamed_manifests(&bytes, &same, &id)
            .unwrap()
            .is_none());

        let a2 = desc(mt::OCI_MANIFEST, b"a, its layers compressed");
        let renamed = HashMap::from([(a.digest.clone(), a2.clone())]);
        let out: Value = serde_json::from_slice(
            &with_renamed_manifests(&bytes, &renamed, &id)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["manifests"][0]["digest"], a2.digest.to_string());
        assert_eq!(out["manifests"][0]["size"], a2.size);
        assert_eq!(out["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(out["manifests"][1], index["manifests"][1]);
        assert_eq!(out["annotations"], index["annotations"]);
    }
}
