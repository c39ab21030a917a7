//! The storage seam, in containerd's shape: blobs stored once by digest
//! across every repository, a repository's *links* saying which blobs it
//! holds, named uploads, and per repository manifests, tags and referrers.
//!
//! The server verifies; the storage keeps. Every method that makes content
//! visible (`put_blob`, `finish_upload`, `put_manifest`) is called only with
//! bytes whose digest the server computed and compared, and must make them
//! visible atomically (a reader sees the whole blob or none of it).
//! Names, tags, upload ids and digests reaching a storage are validated.

use std::pin::Pin;
use std::time::SystemTime;

use kiln_core::Digest;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::StorageError;

pub(crate) type Result<T> = std::result::Result<T, StorageError>;
/// A blob's bytes from some offset on.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;
/// Appends to an upload.
pub type UploadWriter = Pin<Box<dyn UploadSink>>;

/// What a storage needs, beyond an upload's id, to continue the upload in
/// a later request: opaque to the server, which carries it in the upload's
/// `Location` URL, HMAC-signed (`crate::signed_location`), so it comes back
/// exactly as the storage wrote it, to whichever replica the client talks
/// to next. Empty for storages that keep an upload's state themselves
/// ([`crate::FsStorage`]); the object storage keeps its part list here.
pub type UploadState = String;

/// An upload's writer. Once shut down (every byte stored), `state` is the
/// upload's state for the next request.
pub trait UploadSink: AsyncWrite + Send {
    fn state(&self) -> UploadState;
}

impl UploadSink for tokio::fs::File {
    fn state(&self) -> UploadState {
        UploadState::new()
    }
}

/// What a stored manifest is, beside its bytes.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The manifest this one refers to (`subject`): it is then one of its
    /// referrers.
    pub subject: Option<Digest>,
    /// `artifactType`, else an image manifest's config media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
}

impl ManifestInfo {
    /// The descriptor a referrers list shows for it.
    pub fn descriptor(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = t.clone().into();
        }
        if let Some(a) = &self.annotations {
            d["annotations"] = a.clone();
        }
        d
    }
}

/// A stored blob, as garbage collection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub digest: Digest,
    pub size: u64,
    /// When it was stored, or last refreshed by [`Storage::touch_blob`].
    pub modified: SystemTime,
}

/// An upload in progress, as garbage collection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEntry {
    pub repo: String,
    pub id: String,
    /// Bytes received so far.
    pub size: u64,
    /// When bytes last arrived (or the upload began).
    pub modified: SystemTime,
}

/// A manifest of a repository, as garbage collection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub digest: Digest,
    /// When it was last put (or refreshed by [`Storage::touch_manifest`]).
    pub modified: SystemTime,
}

/// Something a crash or a failed write left half made in the storage's
/// own staging area (a temporary file, an abandoned multipart upload), by
/// a name the storage understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEntry {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// Where a registry keeps its content. Methods are synchronous and quick
/// (metadata and small documents); bulk bytes move through the returned
/// async readers and writers.
pub trait Storage: Send + Sync + 'static {
    /// The size of a stored blob, whatever repository holds it.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;
    /// The blob's bytes from `offset`.
    fn open_blob(&self, digest: &Digest, offset: u64) -> Result<BlobReader>;
    /// Stores verified bytes (a manifest's) as the blob `digest`.
    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()>;

    /// Whether `repo` holds the blob.
    fn has_link(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// `repo` now holds the (stored) blob.
    fn link_blob(&self, repo: &str, digest: &Digest) -> Result<()>;
    /// `repo` no longer holds the blob; false when it did not.
    fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool>;

    /// A new, empty upload for `repo`: its id (32 lowercase hex
    /// characters) and its first state.
    fn new_upload(&self, repo: &str) -> Result<(String, UploadState)>;
    /// Bytes received so far, or `None` when `repo` has no such upload.
    /// `state` is the one the last write left (see [`UploadState`]).
    fn upload_size(&self, repo: &str, id: &str, state: &str) -> Result<Option<u64>>;
    /// Writes at `offset` (the upload's size: uploads only grow at the end).
    fn upload_writer(&self, repo: &str, id: &str, state: &str, offset: u64)
        -> Result<UploadWriter>;
    /// Drops what was written past `size` (a failed chunk).
    fn truncate_upload(&self, repo: &str, id: &str, size: u64) -> Result<()>;
    /// The upload's bytes, to hash them.
    fn open_upload(&self, repo: &str, id: &str, state: &str) -> Result<BlobReader>;
    /// Whether `finish_upload` checks the digest of what it assembled
    /// itself (the server then does not read the upload to hash it).
    fn verifies_uploads(&self) -> bool {
        false
    }
    /// The upload, verified by the caller (or, when `verifies_uploads`, by
    /// the storage: [`StorageError::DigestMismatch`]) to have `digest`,
    /// becomes that blob, held by `repo`; the upload is gone.
    fn finish_upload(&self, repo: &str, id: &str, state: &str, digest: &Digest) -> Result<()>;
    /// Drops an upload; false when there was none.
    fn cancel_upload(&self, repo: &str, id: &str, state: &str) -> Result<bool>;

    /// Whether the repository holds anything.
    fn repo_exists(&self, repo: &str) -> Result<bool>;
    /// Every repository, sorted.
    fn repositories(&self) -> Result<Vec<String>>;

    /// Stores a verified manifest in `repo` (its bytes become a blob too),
    /// and records it as a referrer of its subject.
    fn put_manifest(&self, repo: &str, info: &ManifestInfo, bytes: &[u8]) -> Result<()>;
    /// A manifest of `repo`: its media type and bytes.
    fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<(String, Vec<u8>)>>;
    /// Removes a manifest from `repo`, the tags naming it and its referrer
    /// record under `subject`; false when `repo` had no such manifest.
    fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool>;
    /// The referrers of `subject` in `repo`, as descriptors.
    fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<serde_json::Value>>;

    fn tag(&self, repo: &str, tag: &str, digest: &Digest) -> Result<()>;
    fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>>;
    fn untag(&self, repo: &str, tag: &str) -> Result<bool>;
    /// The repository's tags, sorted; `None` when the repository is unknown.
    fn tags(&self, repo: &str) -> Result<Option<Vec<String>>>;
    /// Each tag of `repo` with when it was last pushed (for retention);
    /// empty when the repository is unknown.
    fn tag_times(&self, repo: &str) -> Result<Vec<(String, std::time::SystemTime)>>;

    /// Whether the storage can be read and written now (`/readyz`).
    fn check_ready(&self) -> Result<()>;

    // Garbage collection (`crate::gc`). Online GC is safe under concurrent
    // pushes because of two rules these methods keep (the argument is in
    // gc.rs): whoever is about to rely on a blob or manifest existing
    // refreshes its modification time first (`touch_*`, and `put_blob`,
    // `finish_upload`, `put_manifest`, `link_blob` refresh what they make
    // visible), and GC deletes only conditionally (`delete_*`: never a blob
    // or manifest refreshed at or after `older_than`).

    /// Every stored blob (a listing of the blob prefix).
    fn list_blobs(&self) -> Result<Vec<BlobEntry>>;
    /// Sets the blob's modification time to now; false when it is absent.
    /// When this returns true, a `delete_blob(_, t)` with `t` earlier than
    /// the call's start does not delete the blob (whichever runs first).
    fn touch_blob(&self, digest: &Digest) -> Result<bool>;
    /// Deletes the blob unless it was modified at or after `older_than`;
    /// true when it deleted it. Repository links to it are left (a link to
    /// an absent blob is no link: `has_link` is false).
    fn delete_blob(&self, digest: &Digest, older_than: SystemTime) -> Result<bool>;
    /// Every upload in progress, of every repository.
    fn list_uploads(&self) -> Result<Vec<UploadEntry>>;
    /// The manifests `repo` holds (tagged or not), with their put times.
    fn list_manifests(&self, repo: &str) -> Result<Vec<ManifestEntry>>;
    /// Sets the manifest's modification time in `repo` to now; false when
    /// `repo` does not hold it. Same guarantee as `touch_blob`.
    fn touch_manifest(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Removes the manifest from `repo` unless it was modified at or after
    /// `older_than`; true when it removed it. Tags are not touched (GC
    /// removes only untagged manifests, and a tag is only ever written
    /// right after a `put_manifest` that refreshes the manifest); its
    /// referrer record stays but is no longer listed by `referrers`.
    fn delete_manifest_if_older(
        &self,
        repo: &str,
        digest: &Digest,
        older_than: SystemTime,
    ) -> Result<bool>;
    /// Half-made things in the storage's staging area.
    fn list_staged(&self) -> Result<Vec<StagedEntry>>;
    /// Removes a staged leftover by the name `list_staged` gave; false when
    /// it was already gone.
    fn remove_staged(&self, name: &str) -> Result<bool>;
}
