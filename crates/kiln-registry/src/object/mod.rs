//! [`ObjectStorage`]: the registry in an S3 bucket (`object_store`), so that
//! several stateless `kiln serve` replicas can share one bucket.
//!
//! ```text
//! blobs/<alg>/<hex>                                   every blob once
//! uploads/<id>/repo                                   an upload's owner (and age)
//! uploads/<id>/mp-<nonce>, uploads/<id>/tail-<nonce>  its bytes (see `upload`)
//! repositories/<name>/_layers/<alg>/<hex>             (empty) the repository holds the blob
//! repositories/<name>/_manifests/<alg>/<hex>          the manifest's media type
//! repositories/<name>/_tags/<tag>                     the digest it names
//! repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>.json  descriptors
//! gc/touched/<key>, gc/aside/<key>                    garbage collection (see `gc`)
//! ```
//!
//! under an optional prefix. The same shape as [`crate::FsStorage`]'s
//! layout, so the two pass the same tests (`crate::testsuite`). Every
//! object is written whole by one PUT (or one multipart completion, or one
//! server-side copy), which S3 makes visible atomically: a reader sees an
//! object whole or not at all, as `rename` gives the filesystem layout.
//! Nothing about an upload lives in a replica: its state travels in the
//! signed `Location` URL (`upload`, `crate::signed_location`).
//!
//! The trait is synchronous; bucket calls run on the storage's own runtime
//! (`bridge`).

mod bridge;
mod gc;
mod upload;

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use kiln_core::Digest;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::StorageError;
use crate::hash::Hasher;
use crate::storage::{BlobReader, ManifestInfo, Result, Storage, UploadState, UploadWriter};
use upload::{PartList, PartWriter};

/// What the storage needs of a bucket: objects and S3-style multipart
/// uploads (`AmazonS3` and `InMemory` are both).
pub(crate) trait Bucket: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Bucket for T {}

/// The default part size: above S3's 5 MiB minimum, small enough that a
/// PATCH's buffer stays modest.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// A registry's content in a bucket.
#[derive(Debug)]
pub struct ObjectStorage {
    bucket: Arc<dyn Bucket>,
    /// `""` or `"some/prefix/"`.
    prefix: String,
    part_size: u64,
    bridge: bridge::Bridge,
}

/// Where the bucket is and how to reach it: `kiln serve --storage
/// s3://bucket[/prefix]?endpoint=URL&region=NAME[&part_size=BYTES]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub prefix: String,
    /// `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub part_size: u64,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Why a `--storage` URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("storage URL {url:?}: {message}")]
pub struct StorageUrlError {
    url: String,
    message: String,
}

impl S3Config {
    /// Reads `s3://bucket[/prefix]?endpoint=&region=&part_size=`
    /// (credentials are set apart: they do not belong in a URL).
    pub fn parse(url: &str) -> std::result::Result<S3Config, StorageUrlError> {
        let err = |message: &str| StorageUrlError {
            url: url.to_string(),
            message: message.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| err("expected s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(err("no bucket name after s3://"));
        }
        let mut config = S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: None,
            region: "us-east-1".into(),
            part_size: DEFAULT_PART_SIZE,
            access_key_id: None,
            secret_access_key: None,
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "endpoint" => config.endpoint = Some(v.into_owned()),
                "region" => config.region = v.into_owned(),
                "part_size" => {
                    config.part_size = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1 << 20)
                        .ok_or_else(|| err("part_size must be a number of bytes, at least 1048576 (S3 wants 5242880)"))?;
                }
                other => {
                    return Err(err(&format!(
                        "unknown parameter {other:?} (known: endpoint, region, part_size)"
                    )))
                }
            }
        }
        Ok(config)
    }
}

fn random_hex() -> Result<String> {
    let mut buf = [0u8; 16];
    getrandom::getrandom(&mut buf)
        .map_err(|e| StorageError::io("random upload id", std::io::Error::other(e.to_string())))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn io(what: impl std::fmt::Display, e: object_store::Error) -> StorageError {
    StorageError::io(what, std::io::Error::other(e))
}

fn digest_key(digest: &Digest) -> String {
    format!("{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// `Ok(None)` for a missing object.
fn found<T>(r: object_store::Result<T>) -> object_store::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl ObjectStorage {
    /// The storage over an S3 bucket.
    pub fn s3(config: &S3Config) -> Result<ObjectStorage> {
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_retry(object_store::RetryConfig {
                max_retries: 4,
                retry_timeout: std::time::Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(k) = &config.access_key_id {
            builder = builder.with_access_key_id(k);
        }
        if let Some(s) = &config.secret_access_key {
            builder = builder.with_secret_access_key(s);
        }
        let bucket = builder
            .build()
            .map_err(|e| io(format!("the bucket {}", config.bucket), e))?;
        Self::new(Arc::new(bucket), &config.prefix, config.part_size)
    }

    /// The storage in memory (`object_store`'s `InMemory`): the object
    /// layout and upload protocol without a server, for tests.
    pub fn in_memory(part_size: u64) -> Result<ObjectStorage> {
        Self::new(
            Arc::new(object_store::memory::InMemory::new()),
            "",
            part_size,
        )
    }

    fn new(bucket: Arc<dyn Bucket>, prefix: &str, part_size: u64) -> Result<ObjectStorage> {
        let bridge =
            bridge::Bridge::new().map_err(|e| StorageError::io("start the object runtime", e))?;
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(ObjectStorage {
            bucket,
            prefix,
            part_size,
            bridge,
        })
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn blob(&self, digest: &Digest) -> Path {
        self.key(&format!("blobs/{}", digest_key(digest)))
    }

    fn repo(&self, repo: &str, rest: &str) -> Path {
        self.key(&format!("repositories/{repo}/{rest}"))
    }

    fn referrer(&self, repo: &str, subject: &Digest, digest: &Digest) -> Path {
        self.repo(
            repo,
            &format!(
                "_referrers/{}-{}/{}-{}.json",
                subject.algorithm().as_str(),
                subject.hex(),
                digest.algorithm().as_str(),
                digest.hex()
            ),
        )
    }

    /// The object's bytes, or `None`.
    fn read(&self, path: Path) -> Result<Option<bytes::Bytes>> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            let got = found(bucket.get(&path).await).map_err(|e| io(&path, e))?;
            match got {
                None => Ok(None),
                Some(g) => match found(g.bytes().await).map_err(|e| io(&path, e))? {
                    Some(b) => Ok(Some(b)),
                    None => Ok(None),
                },
            }
        })
    }

    fn write(&self, path: Path, bytes: Vec<u8>) -> Result<()> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            bucket
                .put(&path, PutPayload::from(bytes))
                .await
                .map(drop)
                .map_err(|e| io(&path, e))
        })
    }

    fn size(&self, path: Path) -> Result<Option<u64>> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            found(bucket.head(&path).await)
                .map(|m| m.map(|m| m.size))
                .map_err(|e| io(&path, e))
        })
    }

    /// Deletes; false when there was nothing.
    fn remove(&self, path: Path) -> Result<bool> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            // S3 deletes answer 204 whether or not the key existed.
            let existed = found(bucket.head(&path).await)
                .map_err(|e| io(&path, e))?
                .is_some();
            found(bucket.delete(&path).await).map_err(|e| io(&path, e))?;
            Ok(existed)
        })
    }

    /// Every key under `prefix` (recursively), relative to it.
    fn list(&self, prefix: Path, limit: Option<usize>) -> Result<Vec<String>> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            let mut stream = bucket.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = stream.try_next().await.map_err(|e| io(&prefix, e))? {
                let rel = meta
                    .location
                    .prefix_match(&prefix)
                    .map(|parts| {
                        parts
                            .map(|p| p.as_ref().to_string())
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_default();
                out.push(rel);
                if limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn upload_list(&self, repo: &str, id: &str, state: &str) -> Result<Option<PartList>> {
        let owner = self.read(upload::marker(self, id))?;
        if owner.as_deref() != Some(repo.as_bytes()) || state.is_empty() {
            return Ok(None);
        }
        PartList::parse(state).map(Some)
    }

    fn delete_upload_objects(&self, id: &str, list: Option<PartList>) -> Result<()> {
        let bucket = self.bucket.clone();
        let prefix = upload::upload_prefix(self, id);
        self.bridge.block(async move {
            if let Some((nonce, upload)) = list.and_then(|l| l.m) {
                // Gone already when it completed.
                let _ = bucket
                    .abort_multipart(&prefix.clone().join(format!("mp-{nonce}")), &upload)
                    .await;
            }
            let keys: Vec<Path> = bucket
                .list(Some(&prefix))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| io(&prefix, e))?;
            // Without a state (GC), the multipart uploads are found by the
            // `mp-<nonce>.id` records written when each began.
            for key in keys.iter().filter(|k| k.as_ref().ends_with(".id")) {
                if let Ok(got) = bucket.get(key).await {
                    if let Ok(upload) = got.bytes().await {
                        let target = Path::from(key.as_ref().trim_end_matches(".id"));
                        let upload = String::from_utf8_lossy(&upload).into_owned();
                        let _ = bucket.abort_multipart(&target, &upload).await;
                    }
                }
            }
            for key in keys {
                found(bucket.delete(&key).await).map_err(|e| io(&key, e))?;
            }
            Ok(())
        })
    }
}

impl Storage for ObjectStorage {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        self.size(self.blob(digest))
    }

    fn open_blob(&self, digest: &Digest, offset: u64) -> Result<BlobReader> {
        let bucket = self.bucket.clone();
        let path = self.blob(digest);
        let stream = self.bridge.block(async move {
            let options = GetOptions {
                range: (offset > 0).then_some(GetRange::Offset(offset)),
                ..Default::default()
            };
            bucket
                .get_opts(&path, options)
                .await
                .map(|g| g.into_stream())
                .map_err(|e| io(&path, e))
        })?;
        Ok(self.bridge.reader(stream))
    }

    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        // A stored blob is refreshed (GC's rule), not written again.
        if self.touch(self.blob(digest))? {
            return Ok(());
        }
        self.write(self.blob(digest), bytes.to_vec())
    }

    fn has_link(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let link = self.repo(repo, &format!("_layers/{}", digest_key(digest)));
        Ok(self.size(link)?.is_some() && self.blob_size(digest)?.is_some())
    }

    fn link_blob(&self, repo: &str, digest: &Digest) -> Result<()> {
        self.touch(self.blob(digest))?;
        self.write(
            self.repo(repo, &format!("_layers/{}", digest_key(digest))),
            Vec::new(),
        )
    }

    fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.remove(self.repo(repo, &format!("_layers/{}", digest_key(digest))))
    }

    fn new_upload(&self, repo: &str) -> Result<(String, UploadState)> {
        let id = random_hex()?;
        self.write(upload::marker(self, &id), repo.as_bytes().to_vec())?;
        let list = PartList {
            z: self.part_size,
            ..Default::default()
        };
        Ok((id, list.encode()))
    }

    fn upload_size(&self, repo: &str, id: &str, state: &str) -> Result<Option<u64>> {
        Ok(self.upload_list(repo, id, state)?.map(|l| l.n))
    }

    fn upload_writer(
        &self,
        repo: &str,
        id: &str,
        state: &str,
        offset: u64,
    ) -> Result<UploadWriter> {
        let list = self
            .upload_list(repo, id, state)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        if list.n != offset {
            return Err(StorageError::Corrupt(format!(
                "upload {id} has {} bytes, not {offset}",
                list.n
            )));
        }
        Ok(Box::pin(PartWriter::start(self, repo, id, list)))
    }

    fn truncate_upload(&self, _: &str, _: &str, _: u64) -> Result<()> {
        // Nothing to cut: a failed write's parts and tail are in no state
        // the client holds, so they are never read (and go when the upload
        // does).
        Ok(())
    }

    fn open_upload(&self, repo: &str, id: &str, state: &str) -> Result<BlobReader> {
        let list = self
            .upload_list(repo, id, state)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        let bucket = self.bucket.clone();
        let prefix = upload::upload_prefix(self, id);
        let stream = self.bridge.block(async move {
            match upload::stage(bucket.clone(), prefix, list).await? {
                None => Ok(futures_util::stream::empty().boxed()),
                Some(staged) => bucket
                    .get(&staged)
                    .await
                    .map(|g| g.into_stream())
                    .map_err(|e| io(&staged, e)),
            }
        })?;
        Ok(self.bridge.reader(stream))
    }

    fn verifies_uploads(&self) -> bool {
        true
    }

    fn finish_upload(&self, repo: &str, id: &str, state: &str, digest: &Digest) -> Result<()> {
        let list = self
            .upload_list(repo, id, state)?
            .ok_or_else(|| StorageError::Corrupt(format!("upload {id} vanished")))?;
        let bucket = self.bucket.clone();
        let prefix = upload::upload_prefix(self, id);
        let dest = self.blob(digest);
        let expected = digest.clone();
        let size = list.n;
        let verified = self.bridge.block(async move {
            let staged = upload::stage(bucket.clone(), prefix, list).await?;
            // Hash what was assembled, as it is: this is what becomes
            // visible.
            let mut hasher = Hasher::new(expected.algorithm());
            let mut seen = 0u64;
            if let Some(staged) = &staged {
                let mut stream = bucket
                    .get(staged)
                    .await
                    .map_err(|e| io(staged, e))?
                    .into_stream();
                while let Some(chunk) = stream.try_next().await.map_err(|e| io(staged, e))? {
                    seen += chunk.len() as u64;
                    hasher.update(&chunk);
                }
            }
            let actual = hasher.finish();
            if actual != expected || seen != size {
                return Ok(Err(StorageError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: format!("{actual} ({seen} bytes)"),
                }));
            }
            match &staged {
                // The copy is atomic: the key holds the whole blob or
                // nothing.
                Some(staged) => bucket.copy(staged, &dest).await,
                None => bucket.put(&dest, PutPayload::new()).await.map(drop),
            }
            .map_err(|e| io(&dest, e))?;
            Ok::<_, StorageError>(Ok(()))
        })?;
        if let Err(e) = verified {
            self.delete_upload_objects(id, None)?;
            return Err(e);
        }
        self.link_blob(repo, digest)?;
        self.delete_upload_objects(id, None)
    }

    fn cancel_upload(&self, repo: &str, id: &str, state: &str) -> Result<bool> {
        let owner = self.read(upload::marker(self, id))?;
        if owner.as_deref() != Some(repo.as_bytes()) {
            return Ok(false);
        }
        let list = (!state.is_empty())
            .then(|| PartList::parse(state))
            .transpose()?;
        self.delete_upload_objects(id, list)?;
        Ok(true)
    }

    fn repo_exists(&self, repo: &str) -> Result<bool> {
        Ok(!self
            .list(self.repo(repo, "_manifests"), Some(1))?
            .is_empty()
            || !self.list(self.repo(repo, "_layers"), Some(1))?.is_empty())
    }

    fn repositories(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list(self.key("repositories"), None)?
            .into_iter()
            .filter_map(|key| {
                // A repository's name ends where its metadata starts (name
                // components cannot start with `_`).
                let at = key.find("/_manifests/").or_else(|| key.find("/_layers/"))?;
                Some(key[..at].to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn put_manifest(&self, repo: &str, info: &ManifestInfo, bytes: &[u8]) -> Result<()> {
        self.put_blob(&info.digest, bytes)?;
        self.link_blob(repo, &info.digest)?;
        if let Some(subject) = &info.subject {
            let record = serde_json::to_vec(&info.descriptor())
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
            self.write(self.referrer(repo, subject, &info.digest), record)?;
        }
        self.write(
            self.repo(repo, &format!("_manifests/{}", digest_key(&info.digest))),
            info.media_type.as_bytes().to_vec(),
        )
    }

    fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<(String, Vec<u8>)>> {
        let link = self.repo(repo, &format!("_manifests/{}", digest_key(digest)));
        let Some(media_type) = self.read(link)? else {
            return Ok(None);
        };
        let media_type = String::from_utf8(media_type.to_vec())
            .map_err(|e| StorageError::Corrupt(format!("media type of {digest}: {e}")))?;
        Ok(self
            .read(self.blob(digest))?
            .map(|b| (media_type, b.to_vec())))
    }

    fn delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool> {
        if !self.remove(self.repo(repo, &format!("_manifests/{}", digest_key(digest))))? {
            return Ok(false);
        }
        if let Some(subject) = subject {
            self.remove(self.referrer(repo, subject, digest))?;
        }
        for tag in self.tags(repo)?.unwrap_or_default() {
            if self.resolve_tag(repo, &tag)?.as_ref() == Some(digest) {
                self.untag(repo, &tag)?;
            }
        }
        Ok(true)
    }

    fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<serde_json::Value>> {
        let dir = self.repo(
            repo,
            &format!(
                "_referrers/{}-{}",
                subject.algorithm().as_str(),
                subject.hex()
            ),
        );
        let mut out = Vec::new();
        for name in self.list(dir.clone(), None)? {
            let Some(bytes) = self.read(dir.clone().join(name.as_str()))? else {
                continue;
            };
            let d = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Corrupt(format!("{dir}/{name}: {e}")))?;
            out.push(d);
        }
        out.sort_by(|a: &serde_json::Value, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        Ok(out)
    }

    fn tag(&self, repo: &str, tag: &str, digest: &Digest) -> Result<()> {
        self.write(
            self.repo(repo, &format!("_tags/{tag}")),
            digest.to_string().into_bytes(),
        )
    }

    fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>> {
        let path = self.repo(repo, &format!("_tags/{tag}"));
        let Some(bytes) = self.read(path.clone())? else {
            return Ok(None);
        };
        String::from_utf8_lossy(&bytes)
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{path}: {e}")))
    }

    fn untag(&self, repo: &str, tag: &str) -> Result<bool> {
        self.remove(self.repo(repo, &format!("_tags/{tag}")))
    }

    fn list_blobs(&self) -> Result<Vec<crate::BlobEntry>> {
        self.gc_list_blobs()
    }

    fn touch_blob(&self, digest: &Digest) -> Result<bool> {
        self.touch(self.blob(digest))
    }

    fn delete_blob(&self, digest: &Digest, older_than: std::time::SystemTime) -> Result<bool> {
        self.gc_delete_blob(digest, older_than)
    }

    fn list_uploads(&self) -> Result<Vec<crate::UploadEntry>> {
        self.gc_list_uploads()
    }

    fn list_manifests(&self, repo: &str) -> Result<Vec<crate::ManifestEntry>> {
        self.gc_list_manifests(repo)
    }

    fn touch_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.touch(self.repo(repo, &format!("_manifests/{}", digest_key(digest))))
    }

    fn delete_manifest_if_older(
        &self,
        repo: &str,
        digest: &Digest,
        older_than: std::time::SystemTime,
    ) -> Result<bool> {
        self.gc_delete_manifest(repo, digest, older_than)
    }

    fn list_staged(&self) -> Result<Vec<crate::StagedEntry>> {
        self.gc_list_staged()
    }

    fn remove_staged(&self, name: &str) -> Result<bool> {
        self.gc_remove_staged(name)
    }

    fn tag_times(&self, repo: &str) -> Result<Vec<(String, std::time::SystemTime)>> {
        self.gc_tag_times(repo)
    }

    fn check_ready(&self) -> Result<()> {
        // What an upload does first: an object written, then removed.
        let probe = self.key(&format!("ready/{}", random_hex()?));
        self.write(probe.clone(), b"ready".to_vec())?;
        self.remove(probe).map(|_| ())
    }

    fn tags(&self, repo: &str) -> Result<Option<Vec<String>>> {
        if !self.repo_exists(repo)? {
            return Ok(None);
        }
        let mut tags = self.list(self.repo(repo, "_tags"), None)?;
        tags.sort();
        Ok(Some(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls() {
        let c = S3Config::parse(
            "s3://reg/some/prefix?endpoint=http://127.0.0.1:3900&region=garage&part_size=5242880",
        )
        .unwrap();
        assert_eq!(c.bucket, "reg");
        assert_eq!(c.prefix, "some/prefix");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(c.region, "garage");
        assert_eq!(c.part_size, 5 << 20);
        let plain = S3Config::parse("s3://reg").unwrap();
        assert_eq!(
            (plain.prefix.as_str(), plain.part_size),
            ("", DEFAULT_PART_SIZE)
        );
        for bad in [
            "reg",
            "s3://",
            "s3://reg?part_size=10",
            "s3://reg?color=blue",
        ] {
            let e = S3Config::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
