//! The step cache: what a step's key is made of, and the record a key
//! names on disk (`buildcache/steps/<key>.json`, read by the build and by
//! `kiln builder prune`).
//!
//! A key is the sha256 of length-prefixed parts: the parent's key, then
//! what the step reads. Each kind of step has its own constructor below,
//! so the parts of a key are written down in one place. The functions
//! produce the same keys kiln has always written, so caches from before
//! this module still hit.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_core::image::Descriptor;
use kiln_core::Digest;
use kiln_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::error::{io, Result};

/// sha256 of the parts, each length-prefixed (no ambiguity).
fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `FROM scratch` for a platform.
pub(crate) fn scratch_key(os: &str, architecture: &str, variant: Option<&str>) -> String {
    key_of(&["scratch", os, architecture, variant.unwrap_or("")])
}

/// An image from the store: its manifest says everything about it.
pub(crate) fn image_key(manifest: &Digest) -> String {
    key_of(&["image", &manifest.to_string()])
}

/// What a RUN step reads besides its parent.
pub(crate) struct RunInputs<'a> {
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: String,
    pub cwd: String,
    /// The network as `Debug` prints it.
    pub network: String,
    /// The mounts as `Debug` prints them.
    pub mounts: String,
    /// `--security` as `Debug` prints it.
    pub security: String,
    pub hosts: &'a [(String, String)],
    /// The keys of the stages and images `--mount from=` names.
    pub from: Vec<String>,
}

pub(crate) fn run_key(parent: &str, r: &RunInputs<'_>) -> String {
    // A JSON object (keys sorted by serde_json's map): the format of the
    // keys written before this module existed.
    let descriptor = json!({
        "run": r.argv, "env": r.env, "user": r.user, "cwd": r.cwd,
        "network": r.network, "mounts": r.mounts,
        "security": r.security, "hosts": r.hosts, "from": r.from,
    })
    .to_string();
    key_of(&[parent, &descriptor])
}

/// COPY and ADD: the history line (sources, destination), whether the
/// files come from a `--from` (`"--from"`; empty for the context) and the
/// planned writes
/// (`copy::describe`: paths, modes, owners, content checksums).
pub(crate) fn copy_key(parent: &str, history: &str, source_key: &str, plan: &str) -> String {
    key_of(&[parent, &format!("{history}\n{source_key}\n{plan}")])
}

/// `COPY --from`'s first key, made without the source's files (as
/// BuildKit's solver matches on its inputs' keys before it computes
/// content checksums): the expanded instruction with its options, the
/// source's key (a stage's last step, or an image's manifest) and the
/// build's epoch. A hit on it needs no byte of the source, so an imported
/// builder stage is never downloaded; the content key
/// ([`copy_key`]) stays the step's own key and the second chance, for a
/// source that ran again and made the same files.
pub(crate) fn copy_input_key(
    parent: &str,
    copy: &kiln_dockerfile::Copy,
    source_key: &str,
    epoch: u64,
) -> String {
    let instruction = serde_json::to_string(copy).unwrap_or_default();
    key_of(&[
        parent,
        "COPY --from",
        &instruction,
        source_key,
        &epoch.to_string(),
    ])
}

/// WORKDIR makes directories owned by the USER.
pub(crate) fn workdir_key(parent: &str, dir: &str, user: &str) -> String {
    key_of(&[parent, "WORKDIR", dir, user])
}

/// A layer step's key under the build's time clamp: the same step makes
/// another layer when file times are clamped to another epoch (or not at
/// all), so the epoch is part of the key. Unclamped keys are unchanged.
pub(crate) fn clamped_key(key: String, clamp: Option<u64>) -> String {
    match clamp {
        None => key,
        Some(epoch) => key_of(&[&key, "clamp", &epoch.to_string()]),
    }
}

/// A config-only step: the expanded instruction is all it reads.
pub(crate) fn meta_key(parent: &str, command: &kiln_dockerfile::Command) -> String {
    key_of(&[parent, &serde_json::to_string(command).unwrap_or_default()])
}

/// What a cached step made: its layer (descriptor and diff_id; stored
/// uncompressed, so the two digests are equal), a layer not written yet
/// ([`Made::SnapshotOnly`]: a step of a stage no exported image contained,
/// kept as its snapshot alone, its tar and digest made when an image wants
/// it), or none for a step that changed no file; and the committed
/// snapshot of the layer's chain, which snapshot GC keeps while the record
/// lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CacheRecord {
    pub layer: Option<Made>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The paths the step's layer leaves out (its RUN --mount targets),
    /// for writing a snapshot-only layer later as the step would have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// The layer a record names. On disk a written layer is the pair kiln has
/// always written; a snapshot-only one is the string `"snapshot-only"`,
/// which kilns from before it fail to read, so for them it is a miss
/// rather than a step without a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Made {
    /// Boxed: a record is read once per step, and most are small.
    Blob(Box<Descriptor>, Digest),
    SnapshotOnly(SnapshotOnly),
}

/// The marker of [`Made::SnapshotOnly`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum SnapshotOnly {
    #[serde(rename = "snapshot-only")]
    Marker,
}

impl CacheRecord {
    /// A step that changed no file.
    pub(crate) fn empty() -> CacheRecord {
        CacheRecord {
            layer: None,
            snapshot: None,
            left_out: Vec::new(),
        }
    }

    /// The record in a file; `None` for anything unreadable, including a
    /// record of another format: a cache miss, never an error.
    pub(crate) fn read(path: &Path) -> Option<CacheRecord> {
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }

    /// The layer blob the record keeps.
    pub(crate) fn layer_digest(&self) -> Option<&Digest> {
        match &self.layer {
            Some(Made::Blob(l, _)) => Some(&l.digest),
            _ => None,
        }
    }
}

/// The directory of a `RUN --mount=type=cache` under `buildcache/mounts`
/// (named by its id's key, so any id makes a safe name).
pub(crate) fn cache_mount_name(id: &str) -> String {
    key_of(&[id])
}

/// The store GC root that keeps a cache record's layer.
pub(crate) fn gc_root_name(key: &str) -> String {
    format!("buildcache-{key}")
}

/// How long a step waits for another process's layer to be published.
const BLOB_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The records of one store.
pub(crate) struct StepCache<'a> {
    pub store: &'a Store,
    /// `buildcache/steps`.
    pub dir: PathBuf,
}

impl<'a> StepCache<'a> {
    pub(crate) fn new(store: &'a Store) -> StepCache<'a> {
        StepCache {
            store,
            dir: steps_dir(store),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// `buildcache/locks`: the step locks of the builds running in this
    /// store ([`crate::once::file_lock`]).
    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.dir.with_file_name("locks")
    }

    /// A usable record: its layer blob must be in the store. A blob not
    /// there yet while an ingest is under way is waited for (at most
    /// [`BLOB_WAIT`]): another build (in this process or another) has
    /// written the record and is still making the blob durable, its
    /// publication being off its critical path (`kiln_store::publish`).
    /// Without the wait, a build that waited for that step's lock would
    /// find the record unusable and run the step again. (A record whose
    /// publication a crash cut off stays unusable: at worst it costs this
    /// wait while unrelated ingests run, then a rebuild of the step.)
    pub(crate) fn get(&self, key: &str) -> Option<CacheRecord> {
        let rec = CacheRecord::read(&self.path(key))?;
        match rec.layer_digest() {
            Some(d) if !self.layer_in_place(d) => None,
            _ => Some(rec),
        }
    }

    fn layer_in_place(&self, d: &Digest) -> bool {
        let blobs = self.store.blobs();
        let until = std::time::Instant::now() + BLOB_WAIT;
        loop {
            if blobs.exists(d) {
                return true;
            }
            if !blobs.ingest_under_way() || std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Records a step's result. The layer becomes a GC root first, so it
    /// survives rmi and image prune (until `kiln builder prune`), as
    /// docker's build cache does. A record that cannot be written only
    /// costs a rebuild next time.
    pub(crate) fn put(&self, key: &str, rec: &CacheRecord) -> Result<()> {
        if let Some(d) = rec.layer_digest() {
            self.store
                .add_gc_root(&gc_root_name(key), std::slice::from_ref(d))?;
        }
        // A unique temporary file (two builds may record the same step),
        // renamed into place: readers see a whole record or none.
        let path = self.path(key);
        if let (Ok(bytes), Ok(mut tmp)) = (
            serde_json::to_vec(rec),
            tempfile::Builder::new()
                .prefix(".record")
                .tempfile_in(&self.dir),
        ) {
            if std::io::Write::write_all(&mut tmp, &bytes).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
        Ok(())
    }

    /// `buildcache/inputs/<input key>`: the step key a
    /// [`copy_input_key`] led to.
    fn input_path(&self, input_key: &str) -> Option<PathBuf> {
        Some(self.dir.parent()?.join("inputs").join(input_key))
    }

    /// The step key recorded for `input_key`, if any.
    pub(crate) fn key_of_input(&self, input_key: &str) -> Option<String> {
        let key = fs::read_to_string(self.input_path(input_key)?).ok()?;
        let key = key.trim();
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_string())
    }

    /// Records that `input_key` led to step `key`. Like a record, one that
    /// cannot be written only costs the content key's work next time.
    pub(crate) fn put_input(&self, input_key: &str, key: &str) {
        let Some(path) = self.input_path(input_key) else {
            return;
        };
        let Some(dir) = path.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::Builder::new().prefix(".input").tempfile_in(dir) {
            if std::io::Write::write_all(&mut tmp, key.as_bytes()).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
    }

    /// Removes a record and the GC root of its layer.
    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(io("remove", path))?;
        if let Some(key) = path.file_stem().and_then(|s| s.to_str()) {
            self.store.remove_gc_root(&gc_root_name(key))?;
        }
        Ok(())
    }
}

pub(crate) fn steps_dir(store: &Store) -> PathBuf {
    store.root().join("buildcache/steps")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clamp_changes_the_key_and_no_clamp_keeps_it() {
        assert_eq!(clamped_key("k".into(), None), "k");
        let a = clamped_key("k".into(), Some(1));
        assert_ne!(a, "k");
        assert_ne!(a, clamped_key("k".into(), Some(2)));
    }

    #[test]
    fn keys_are_those_of_earlier_kilns() {
        // Pinned values: a change here throws away every user's cache.
        assert_eq!(
            scratch_key("linux", "amd64", None),
            "2e1963179f647fb4227d54d5c22b1438fe969ef886d3e932cc8ee167557bc516"
        );
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "true".into()];
        let env = vec!["PATH=/bin".to_string()];
        let hosts = vec![("h".to_string(), "127.0.0.1".to_string())];
        let inputs = RunInputs {
            argv: &argv,
            env: &env,
            user: "1000".into(),
            cwd: "/w".into(),
            network: "None".into(),
            mounts: "[]".into(),
            security: "None".into(),
            hosts: &hosts,
            from: vec!["k".into()],
        };
        let old = json!({
            "run": argv, "env": env, "user": "1000", "cwd": "/w",
            "network": "None", "mounts": "[]",
            "security": "None", "hosts": hosts,
            "from": ["k"],
        })
        .to_string();
        assert_eq!(run_key("p", &inputs), key_of(&["p", &old]));
        assert_eq!(
            copy_key("p", "COPY a b # buildkit", "", "f b"),
            key_of(&["p", "COPY a b # buildkit\n\nf b"])
        );
    }

    #[test]
    fn records_of_another_format_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        for junk in [&b"{\"layer\": 3}"[..], b"not json", b"{\"layer\": [{}]}"] {
            fs::write(&p, junk).unwrap();
            assert_eq!(CacheRecord::read(&p), None);
        }
        fs::write(&p, b"{\"layer\": null}").unwrap();
        assert_eq!(
            CacheRecord::read(&p),
            Some(CacheRecord {
                layer: None,
                snapshot: None,
                left_out: Vec::new(),
            })
        );
        assert_eq!(CacheRecord::read(&dir.path().join("absent")), None);
    }

    #[test]
    fn written_layers_keep_their_format_and_snapshot_only_ones_are_new() {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let blob = CacheRecord {
            layer: Some(Made::Blob(
                Box::new(Descriptor::new(
                    kiln_core::media_types::OCI_LAYER_TAR,
                    digest.clone(),
                    3,
                )),
                digest.clone(),
            )),
            snapshot: Some("s".into()),
            left_out: Vec::new(),
        };
        // The pair earlier kilns wrote and read.
        let v = serde_json::to_value(&blob).unwrap();
        assert_eq!(v["layer"][1], json!(digest.to_string()));
        assert_eq!(v["layer"][0]["size"], json!(3));
        assert!(v.get("left_out").is_none());
        let lazy = CacheRecord {
            layer: Some(Made::SnapshotOnly(SnapshotOnly::Marker)),
            snapshot: Some("s".into()),
            left_out: vec!["/run/x".into()],
        };
        let v = serde_json::to_value(&lazy).unwrap();
        assert_eq!(v["layer"], json!("snapshot-only"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        for rec in [&blob, &lazy] {
            fs::write(&p, serde_json::to_vec(rec).unwrap()).unwrap();
            assert_eq!(CacheRecord::read(&p).as_ref(), Some(rec));
        }
        assert_eq!(lazy.layer_digest(), None);
        assert_eq!(blob.layer_digest(), Some(&digest));
    }
}
