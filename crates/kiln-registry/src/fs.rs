//! [`FsStorage`]: the registry's own directory layout under one root.
//!
//! ```text
//! blobs/<alg>/<hex>                         every blob once, whatever holds it
//! uploads/<id>/data, uploads/<id>/repo      uploads in progress, and whose
//! tmp/                                      staging: renamed into place
//! repositories/<name>/_layers/<alg>/<hex>   (empty) the repository holds the blob
//! repositories/<name>/_manifests/<alg>/<hex>  the manifest's media type
//! repositories/<name>/_tags/<tag>           the digest it names
//! repositories/<name>/_referrers/<subject alg>-<hex>/<alg>-<hex>.json  descriptors
//! ```
//!
//! Repository name components cannot start with `_` (the grammar), so no
//! repository nests into another's metadata. Everything visible appears by
//! `rename`, so a crash leaves whole files or none.
//!
//! Garbage collection's conditional deletes ([`Storage::delete_blob`],
//! [`Storage::delete_manifest_if_older`]) first rename the file into
//! `tmp/`, out of every client's sight, and only then read its
//! modification time: a file refreshed before the rename is seen fresh and
//! renamed back, and a refresh after the rename fails (`touch` checks that
//! the path still names the inode it refreshed), so the client writes the
//! file anew or reports the blob unknown — it never relies on a file that
//! is about to go.

use std::fs;
use std::io::{ErrorKind as IoKind, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln_core::Digest;

use crate::error::StorageError;
use crate::storage::{BlobReader, ManifestInfo, Result, Storage, UploadState, UploadWriter};

/// A registry's content in a directory.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

fn random_hex() -> Result<String> {
    let mut buf = [0u8; 16];
    getrandom::getrandom(&mut buf)
        .map_err(|e| StorageError::io("random upload id", std::io::Error::other(e.to_string())))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn digest_path(digest: &Digest) -> PathBuf {
    Path::new(digest.algorithm().as_str()).join(digest.hex())
}

fn not_found_is_none<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl FsStorage {
    /// Opens (creating) a registry root.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage> {
        let root = root.into();
        for dir in ["blobs", "uploads", "tmp", "repositories"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(|e| StorageError::io(p.display(), e))?;
        }
        Ok(FsStorage { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest_path(digest))
    }

    fn repo(&self, repo: &str) -> PathBuf {
        self.root.join("repositories").join(repo)
    }

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// The upload's data file, when it exists and belongs to `repo`.
    fn upload_data(&self, repo: &str, id: &str) -> Result<Option<PathBuf>> {
        let dir = self.upload_dir(id);
        let owner = not_found_is_none(fs::read_to_string(dir.join("repo")))
            .map_err(|e| StorageError::io(dir.display(), e))?;
        Ok((owner.as_deref() == Some(repo)).then(|| dir.join("data")))
    }

    /// Writes `bytes` at `dest` atomically (staged in `tmp/`, renamed).
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let io = |e| StorageError::io(dest.display(), e);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = self.root.join("tmp").join(random_hex()?);
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_data().map_err(io)?;
        fs::rename(&tmp, dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(e)
        })
    }

    fn touch(&self, path: &Path) -> Result<()> {
        let io = |e| StorageError::io(path.display(), e);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map(drop)
            .map_err(io)
    }

    /// Sets `path`'s modification time to now; false when it is absent or
    /// was renamed away while being refreshed (see the module doc).
    fn refresh(path: &Path) -> Result<bool> {
        let io = |e| StorageError::io(path.display(), e);
        let Some(f) =
            not_found_is_none(fs::OpenOptions::new().write(true).open(path)).map_err(io)?
        else {
            return Ok(false);
        };
        f.set_modified(SystemTime::now()).map_err(io)?;
        let ino = f.metadata().map_err(io)?.ino();
        let now = not_found_is_none(fs::metadata(path)).map_err(io)?;
        Ok(now.is_some_and(|m| m.ino() == ino))
    }

    /// Removes `path` unless it was modified at or after `older_than`
    /// (see the module doc for why the rename comes first).
    fn remove_if_older(&self, path: &Path, older_than: SystemTime) -> Result<bool> {
        let io = |e| StorageError::io(path.display(), e);
        let aside = self.root.join("tmp").join(format!("gc-{}", random_hex()?));
        if not_found_is_none(fs::rename(path, &aside))
            .map_err(io)?
            .is_none()
        {
            return Ok(false);
        }
        let modified = fs::metadata(&aside).and_then(|m| m.modified());
        match modified {
            Ok(t) if t < older_than => {
                fs::remove_file(&aside).map_err(io)?;
                Ok(true)
            }
            _ => {
                // Fresh (or unreadable): put it back. A client that wrote
                // the same path meanwhile wrote the same bytes.
                fs::rename(&aside, path).map_err(io)?;
                Ok(false)
            }
        }
    }

    fn modified(meta: &fs::Metadata, path: &Path) -> Result<SystemTime> {
        meta.modified()
            .map_err(|e| StorageError::io(path.display(), e))
    }

    /// Every `<alg>/<hex>` file under `dir`, as digests, with metadata.
    fn digests_under(dir: &Path) -> Result<Vec<(Digest, fs::Metadata, PathBuf)>> {
        let mut out = Vec::new();
        let Some(algs) =
            not_found_is_none(fs::read_dir(dir)).map_err(|e| StorageError::io(dir.display(), e))?
        else {
            return Ok(out);
        };
        for alg in algs {
            let alg = alg.map_err(|e| StorageError::io(dir.display(), e))?;
            let algorithm = alg.file_name().to_string_lossy().into_owned();
            let sub = alg.path();
            let entries = match not_found_is_none(fs::read_dir(&sub)) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => return Err(StorageError::io(sub.display(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(sub.display(), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = format!("{algorithm}:{name}").parse::<Digest>() else {
                    continue;
                };
                // A file deleted since the listing is simply not listed.
                if let Ok(meta) = entry.metadata() {
                    out.push((digest, meta, entry.path()));
                }
            }
        }
        Ok(out)
    }

    fn manifest_link(&self, repo: &str, digest: &Digest) -> PathBuf {
        self.repo(repo).join("_manifests").join(digest_path(digest))
    }

    fn remove(path: &Path) -> Result<bool> {
        not_found_is_none(fs::remove_file(path))
            .map(|r| r.is_some())
            .map_err(|e| StorageError::io(path.display(), e))
    }

    fn referrer_file(&self, repo: &str, subject: &Digest, digest: &Digest) -> PathBuf {
        let s = format!("{}-{}", subject.algorithm().as_str(), subject.hex());
        let d = format!("{}-{}.json", digest.algorithm().as_str(), digest.hex());
        self.repo(repo).join("_referrers").join(s).join(d)
    }

    fn collect_repos(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let entries = match not_found_is_none(fs::read_dir(dir)) {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(()),
            Err(e) => return Err(StorageError::io(dir.display(), e)),
        };
        let mut is_repo = false;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir.display(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') {
                is_repo |= name == "_manifests" || name == "_layers";
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let child = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                self.collect_repos(&entry.path(), &child, out)?;
            }
        }
        if is_repo && !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        Ok(())
    }
}

impl Storage for FsStorage {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let p = self.blob(digest);
        not_found_is_none(fs::metadata(&p).map(|m| m.len()))
            .map_err(|e| StorageError::io(p.display(), e))
    }

    fn open_blob(&self, digest: &Digest, offset: u64) -> Result<BlobReader> {
        let p = self.blob(digest);
        let io = |e| StorageError::io(p.display(), e);
        let mut f = fs::File::open(&p).map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Box::pin(tokio::fs::File::from_std(f)))
    }

    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let p = self.blob(digest);
        if Self::refresh(&p)? {
            return Ok(());
        }
        self.write_atomic(&p, bytes)
    }

    fn has_link(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let link = self.repo(repo).join("_layers").join(digest_path(digest));
        Ok(link.exists() && self.blob(digest).exists())
    }

    fn link_blob(&self, repo: &str, digest: &Digest) -> Result<()> {
        self.touch(&self.repo(repo).join("_layers").join(digest_path(digest)))?;
        // A blob linked again (a mount, an upload of stored bytes) is about
        // to be named by a manifest: GC's grace counts from now.
        Self::refresh(&self.blob(digest)).map(drop)
    }

    fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Self::remove(&self.repo(repo).join("_layers").join(digest_path(digest)))
    }

    fn new_upload(&self, repo: &str) -> Result<(String, UploadState)> {
        let id = random_hex()?;
        let dir = self.upload_dir(&id);
        let io = |e| StorageError::io(dir.display(), e);
        fs::create_dir(&dir).map_err(io)?;
        fs::File::create(dir.join("data")).map_err(io)?;
        fs::write(dir.join("repo"), repo).map_err(io)?;
        Ok((id, UploadState::new()))
    }

    fn upload_size(&self, repo: &str, id: &str, _: &str) -> Result<Option<u64>> {
        let Some(data) = self.upload_data(repo, id)? else {
            return Ok(None);
        };
        not_found_is_none(fs::metadata(&data).map(|m| m.len()))
            .map_err(|e| StorageError::io(data.display(), e))
    }

    fn upload_writer(&self, repo: &str, id: &str, _: &str, offset: u64) -> Result<UploadWriter> {
        let data = self
            .upload_data(repo, id)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        let io = |e| StorageError::io(data.display(), e);
        let mut f = fs::OpenOptions::new().write(true).open(&data).map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Box::pin(tokio::fs::File::from_std(f)))
    }

    fn truncate_upload(&self, repo: &str, id: &str, size: u64) -> Result<()> {
        if let Some(data) = self.upload_data(repo, id)? {
            let io = |e| StorageError::io(data.display(), e);
            fs::OpenOptions::new()
                .write(true)
                .open(&data)
                .and_then(|f| f.set_len(size))
                .map_err(io)?;
        }
        Ok(())
    }

    fn open_upload(&self, repo: &str, id: &str, _: &str) -> Result<BlobReader> {
        let data = self
            .upload_data(repo, id)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        let f = fs::File::open(&data).map_err(|e| StorageError::io(data.display(), e))?;
        Ok(Box::pin(tokio::fs::File::from_std(f)))
    }

    fn finish_upload(&self, repo: &str, id: &str, _: &str, digest: &Digest) -> Result<()> {
        let data = self
            .upload_data(repo, id)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        let dest = self.blob(digest);
        let io = |e| StorageError::io(dest.display(), e);
        if !Self::refresh(&dest)? {
            // The upload may have sat idle: the blob's age starts now.
            fs::OpenOptions::new()
                .write(true)
                .open(&data)
                .and_then(|f| {
                    f.set_modified(SystemTime::now())?;
                    f.sync_data()
                })
                .map_err(io)?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::rename(&data, &dest).map_err(io)?;
        }
        self.link_blob(repo, digest)?;
        self.cancel_upload(repo, id, "").map(drop)
    }

    fn cancel_upload(&self, repo: &str, id: &str, _: &str) -> Result<bool> {
        let dir = self.upload_dir(id);
        // A crash between `new_upload`'s mkdir and its `repo` file leaves an
        // upload owned by no repository: GC lists it with the empty name
        // (no API request names one), and it goes too.
        let ownerless = repo.is_empty() && dir.is_dir() && !dir.join("repo").exists();
        if !ownerless && self.upload_data(repo, id)?.is_none() {
            return Ok(false);
        }
        fs::remove_dir_all(&dir).map_err(|e| StorageError::io(dir.display(), e))?;
        Ok(true)
    }

    fn repo_exists(&self, repo: &str) -> Result<bool> {
        let dir = self.repo(repo);
        Ok(dir.join("_manifests").is_dir() || dir.join("_layers").is_dir())
    }

    fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.collect_repos(&self.root.join("repositories"), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn put_manifest(&self, repo: &str, info: &ManifestInfo, bytes: &[u8]) -> Result<()> {
        self.put_blob(&info.digest, bytes)?;
        self.link_blob(repo, &info.digest)?;
        if let Some(subject) = &info.subject {
            let record = serde_json::to_vec(&info.descriptor())
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
            self.write_atomic(&self.referrer_file(repo, subject, &info.digest), &record)?;
        }
        let link = self
            .repo(repo)
            .join("_manifests")
            .join(digest_path(&info.digest));
        self.write_atomic(&link, info.media_type.as_bytes())
    }

    fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<(String, Vec<u8>)>> {
        let link = self.repo(repo).join("_manifests").join(digest_path(digest));
        let Some(media_type) = not_found_is_none(fs::read_to_string(&link))
            .map_err(|e| StorageError::io(link.display(), e))?
        else {
            return Ok(None);
        };
        let p = self.blob(digest);
        let bytes =
            not_found_is_none(fs::read(&p)).map_err(|e| StorageError::io(p.display(), e))?;
        Ok(bytes.map(|b| (media_type, b)))
    }

    fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool> {
        let link = self.repo(repo).join("_manifests").join(digest_path(digest));
        if !Self::remove(&link)? {
            return Ok(false);
        }
        if let Some(subject) = subject {
            Self::remove(&self.referrer_file(repo, subject, digest))?;
        }
        for tag in self.tags(repo)?.unwrap_or_default() {
            if self.resolve_tag(repo, &tag)?.as_ref() == Some(digest) {
                self.untag(repo, &tag)?;
            }
        }
        Ok(true)
    }

    fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<serde_json::Value>> {
        let dir = self.repo(repo).join("_referrers").join(format!(
            "{}-{}",
            subject.algorithm().as_str(),
            subject.hex()
        ));
        let entries = match not_found_is_none(fs::read_dir(&dir)) {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io(dir.display(), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let p = entry
                .map_err(|e| StorageError::io(dir.display(), e))?
                .path();
            let bytes = fs::read(&p).map_err(|e| StorageError::io(p.display(), e))?;
            let d: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", p.display())))?;
            // The record of a manifest GC removed stays behind (see
            // `delete_manifest_if_older`): only held manifests are listed.
            let held = d["digest"]
                .as_str()
                .and_then(|s| s.parse::<Digest>().ok())
                .is_some_and(|m| self.manifest_link(repo, &m).exists());
            if held {
                out.push(d);
            }
        }
        out.sort_by(|a: &serde_json::Value, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        Ok(out)
    }

    fn tag(&self, repo: &str, tag: &str, digest: &Digest) -> Result<()> {
        let p = self.repo(repo).join("_tags").join(tag);
        self.write_atomic(&p, digest.to_string().as_bytes())
    }

    fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>> {
        let p = self.repo(repo).join("_tags").join(tag);
        let Some(s) = not_found_is_none(fs::read_to_string(&p))
            .map_err(|e| StorageError::io(p.display(), e))?
        else {
            return Ok(None);
        };
        s.trim()
            .parse()
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", p.display())))
    }

    fn untag(&self, repo: &str, tag: &str) -> Result<bool> {
        Self::remove(&self.repo(repo).join("_tags").join(tag))
    }

    fn tags(&self, repo: &str) -> Result<Option<Vec<String>>> {
        if !self.repo_exists(repo)? {
            return Ok(None);
        }
        let dir = self.repo(repo).join("_tags");
        let mut tags = Vec::new();
        if let Some(entries) =
            not_found_is_none(fs::read_dir(&dir)).map_err(|e| StorageError::io(dir.display(), e))?
        {
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(dir.display(), e))?;
                tags.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    fn list_blobs(&self) -> Result<Vec<crate::BlobEntry>> {
        Self::digests_under(&self.root.join("blobs"))?
            .into_iter()
            .map(|(digest, meta, path)| {
                Ok(crate::BlobEntry {
                    digest,
                    size: meta.len(),
                    modified: Self::modified(&meta, &path)?,
                })
            })
            .collect()
    }

    fn touch_blob(&self, digest: &Digest) -> Result<bool> {
        Self::refresh(&self.blob(digest))
    }

    fn delete_blob(&self, digest: &Digest, older_than: SystemTime) -> Result<bool> {
        self.remove_if_older(&self.blob(digest), older_than)
    }

    fn list_uploads(&self) -> Result<Vec<crate::UploadEntry>> {
        let dir = self.root.join("uploads");
        let entries = fs::read_dir(&dir).map_err(|e| StorageError::io(dir.display(), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir.display(), e))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // An upload finished or cancelled since the listing is gone; one
            // whose `repo` a crash never wrote is listed with no repository.
            let Ok(dir_meta) = entry.metadata() else {
                continue;
            };
            let repo = fs::read_to_string(path.join("repo")).unwrap_or_default();
            let (size, modified) = match fs::metadata(path.join("data")) {
                Ok(m) => (m.len(), Self::modified(&m, &path)?),
                Err(_) => (0, Self::modified(&dir_meta, &path)?),
            };
            out.push(crate::UploadEntry {
                repo,
                id,
                size,
                modified,
            });
        }
        Ok(out)
    }

    fn tag_times(&self, repo: &str) -> Result<Vec<(String, std::time::SystemTime)>> {
        // A tag file is replaced whole (write_atomic) on every push, so its
        // mtime is when the tag was last pushed.
        let dir = self.repo(repo).join("_tags");
        let mut out = Vec::new();
        let Some(entries) = not_found_is_none(fs::read_dir(&dir))
            .map_err(|e| StorageError::io(dir.display(), e))?
        else {
            return Ok(out);
        };
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir.display(), e))?;
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| StorageError::io(entry.path().display(), e))?;
            out.push((entry.file_name().to_string_lossy().into_owned(), modified));
        }
        Ok(out)
    }

    fn list_manifests(&self, repo: &str) -> Result<Vec<crate::ManifestEntry>> {
        Self::digests_under(&self.repo(repo).join("_manifests"))?
            .into_iter()
            .map(|(digest, meta, path)| {
                Ok(crate::ManifestEntry {
                    digest,
                    modified: Self::modified(&meta, &path)?,
                })
            })
            .collect()
    }

    fn touch_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Self::refresh(&self.manifest_link(repo, digest))
    }

    fn delete_manifest_if_older(
        &self,
        repo: &str,
        digest: &Digest,
        older_than: SystemTime,
    ) -> Result<bool> {
        self.remove_if_older(&self.manifest_link(repo, digest), older_than)
    }

    fn list_staged(&self) -> Result<Vec<crate::StagedEntry>> {
        let dir = self.root.join("tmp");
        let entries = fs::read_dir(&dir).map_err(|e| StorageError::io(dir.display(), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir.display(), e))?;
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            out.push(crate::StagedEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                size: meta.len(),
                modified: Self::modified(&meta, &entry.path())?,
            });
        }
        Ok(out)
    }

    fn remove_staged(&self, name: &str) -> Result<bool> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(StorageError::Corrupt(format!("no staged file {name:?}")));
        }
        Self::remove(&self.root.join("tmp").join(name))
    }

    fn check_ready(&self) -> Result<()> {
        // What an upload does first: a file made, written and removed.
        let probe = self
            .root
            .join("tmp")
            .join(format!("ready-{}", random_hex()?));
        self.write_atomic(&probe, b"ready")?;
        fs::remove_file(&probe).map_err(|e| StorageError::io(probe.display(), e))
    }
}
