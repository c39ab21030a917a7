//! The pull-through cache (`kiln serve --proxy URL`, `[proxy]`): the
//! registry mirrors another one on demand, keeping every digest exactly as
//! upstream has it (manifests are stored byte for byte; the `Accept` sent
//! upstream names every manifest type, so upstream picks the document a
//! client would get from it directly).
//!
//! Upstream is spoken to through kiln-registry-client (auth discovery,
//! bearer tokens, retries, manifests verified against their digest, blobs
//! verified on every byte), the same client `kiln pull` uses.
//!
//! - Manifests by digest and blobs, once verified, are cached for good
//!   (content cannot change under a digest); garbage collection reclaims
//!   them like pushed content.
//! - A tag is served from the cache for `tag_ttl`; after that a GET or
//!   HEAD asks upstream by HEAD (an unchanged tag costs no body), follows
//!   a moved tag, and drops a tag upstream no longer has. When upstream
//!   cannot be reached (or errs), a cached tag is served as it is.
//! - A blob not yet cached is downloaded into a local staging file,
//!   hashed as it arrives, copied into the storage once its digest and
//!   size match, and only then served: a registry never sends content it
//!   has not verified, so a client waits for the whole blob before its
//!   first byte (no streaming while hashing). Concurrent first pulls of
//!   one blob wait for a single download.
//! - Pushes and deletes answer 405 `UNSUPPORTED`, as distribution's proxy
//!   does (the route guard is in `crate::route`).
//! - `/metrics` counts each manifest and blob request a hit (the cache
//!   held the content as it came; a tag past its TTL still costs a HEAD)
//!   or a miss, and the bytes fetched from upstream once verified.

mod staging;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use kiln_core::Digest;
use kiln_registry_client::{Client, ClientOptions, Credentials, RegistryError, Repo};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::metrics::{CacheKind, Metrics};
use crate::names::{Reference, Route};
use crate::storage::Storage;

/// How to reach the upstream registry.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `https://HOST[:PORT][/PREFIX]`, or `http://` for plain HTTP.
    pub url: String,
    /// Credentials for upstream (else those of `docker_config`, else none).
    pub credentials: Option<Credentials>,
    /// A docker `config.json` whose entry for upstream's host is used.
    pub docker_config: Option<PathBuf>,
    /// How long a tag is served from the cache before upstream is asked.
    pub tag_ttl: Duration,
    /// Extra PEM CA certificates for upstream's TLS.
    pub ca_certificates: Vec<PathBuf>,
    /// Where blobs are staged while they download and are verified.
    pub staging: PathBuf,
}

/// The upstream: where it is and the client that talks to it.
pub struct Proxy {
    url: String,
    /// host[:port] of upstream.
    registry: String,
    /// Repository path prefix on upstream (`library`, say); may be empty.
    prefix: String,
    client: Client,
    tag_ttl: Duration,
    staging: PathBuf,
    /// When each (repository, tag) was last confirmed upstream.
    checked: Mutex<HashMap<(String, String), Instant>>,
    /// A lock per blob being fetched: concurrent first pulls share one
    /// download.
    fetching: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("tag_ttl", &self.tag_ttl)
            .finish_non_exhaustive()
    }
}

/// `https://host[:port][/prefix]` → (insecure, host, prefix).
pub(crate) fn parse_url(url: &str) -> Result<(bool, String, String), String> {
    let (insecure, rest) = if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else {
        return Err(format!(
            "proxy url {url:?} has no scheme: write it as https://HOST[:PORT][/PREFIX] (http:// for a registry without TLS)"
        ));
    };
    let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return Err(format!("proxy url {url:?}: {host:?} is not a host[:port]"));
    }
    if !prefix.is_empty() && !crate::names::valid_name(prefix) {
        return Err(format!(
            "proxy url {url:?}: {prefix:?} is not a repository path prefix"
        ));
    }
    Ok((insecure, host.to_string(), prefix.to_string()))
}

impl Proxy {
    pub fn new(settings: ProxySettings) -> Result<Proxy, String> {
        let (insecure, registry, prefix) = parse_url(&settings.url)?;
        let mut opts = ClientOptions {
            credentials: settings.credentials,
            ca_certificates: settings.ca_certificates,
            // An upstream that is down should fall back to the cache
            // quickly, not after the CLI's five tries.
            max_attempts: 2,
            retry_delay: Duration::from_millis(100),
            // Never the server user's own docker login by accident.
            docker_config: settings
                .docker_config
                .unwrap_or_else(|| settings.staging.join("no-docker-config.json")),
            ..ClientOptions::default()
        };
        if insecure {
            opts.insecure_registries.push(registry.clone());
        }
        let client = Client::new(opts).map_err(|e| e.to_string())?;
        // Downloads a crash cut short: nothing else stages here.
        if let Ok(entries) = std::fs::read_dir(&settings.staging) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "part") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Proxy {
            url: settings.url,
            registry,
            prefix,
            client,
            tag_ttl: settings.tag_ttl,
            staging: settings.staging,
            checked: Mutex::default(),
            fetching: Mutex::default(),
        })
    }

    /// The upstream URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn repo(&self, name: &str) -> Repo {
        Repo {
            registry: self.registry.clone(),
            path: match self.prefix.is_empty() {
                true => name.to_string(),
                false => format!("{}/{name}", self.prefix),
            },
        }
    }

    fn upstream_error(&self, e: RegistryError) -> ApiError {
        let status = match &e {
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => {
                StatusCode::UNAUTHORIZED
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        let code = match status {
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            _ => "UNAVAILABLE",
        };
        ApiError::new(status, code, format!("upstream {}: {e}", self.url))
    }

    fn fresh(&self, name: &str, tag: &str) -> bool {
        let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked
            .get(&(name.to_string(), tag.to_string()))
            .is_some_and(|t| t.elapsed() < self.tag_ttl)
    }

    fn confirm(&self, name: &str, tag: &str) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((name.to_string(), tag.to_string()), Instant::now());
    }

    /// Makes the cache's `name:tag` what upstream says (within the TTL,
    /// what it said last); a cached tag stays when upstream cannot answer.
    /// `Ok(true)`: a hit, no manifest had to be fetched.
    pub(crate) async fn sync_tag(
        &self,
        storage: &dyn Storage,
        metrics: &Metrics,
        name: &str,
        tag: &str,
    ) -> ApiResult<bool> {
        let cached = storage.resolve_tag(name, tag)?;
        if cached.is_some() && self.fresh(name, tag) {
            return Ok(true);
        }
        let repo = self.repo(name);
        match self.client.manifest_digest(&repo, tag).await {
            Ok(Some(digest)) => {
                let hit = storage.manifest(name, &digest)?.is_some();
                if !hit {
                    self.fetch_manifest(storage, metrics, name, &digest).await?;
                }
                if cached.as_ref() != Some(&digest) {
                    storage.tag(name, tag, &digest)?;
                }
                self.confirm(name, tag);
                Ok(hit)
            }
            Ok(None) => {
                // Gone upstream: gone here (GC may then reclaim it).
                if cached.is_some() {
                    storage.untag(name, tag)?;
                }
                Err(ApiError::manifest_unknown(tag))
            }
            Err(e) if cached.is_some() => {
                tracing::warn!(
                    "upstream {}: {e}; serving the cached {name}:{tag}",
                    self.url
                );
                Ok(true)
            }
            Err(e) => Err(self.upstream_error(e)),
        }
    }

    /// Caches the manifest `digest` of `name` unless it is cached
    /// (`Ok(true)`: it was, a hit).
    pub(crate) async fn sync_manifest(
        &self,
        storage: &dyn Storage,
        metrics: &Metrics,
        name: &str,
        digest: &Digest,
    ) -> ApiResult<bool> {
        if storage.manifest(name, digest)?.is_some() {
            return Ok(true);
        }
        self.fetch_manifest(storage, metrics, name, digest).await?;
        Ok(false)
    }

    /// Fetches, verifies and stores the manifest `digest` (sha256 or
    /// sha512: it is verified and stored under the digest asked for).
    async fn fetch_manifest(
        &self,
        storage: &dyn Storage,
        metrics: &Metrics,
        name: &str,
        digest: &Digest,
    ) -> ApiResult<()> {
        let repo = self.repo(name);
        let m = match self.client.get_manifest(&repo, &digest.to_string()).await {
            Ok(m) => m,
            Err(RegistryError::NotFound { .. }) => {
                return Err(ApiError::manifest_unknown(&digest.to_string()))
            }
            Err(e) => return Err(self.upstream_error(e)),
        };
        // get_manifest verified the bytes against `digest`.
        let doc: serde_json::Value = serde_json::from_slice(&m.bytes).map_err(|e| {
            self.upstream_error(RegistryError::Invalid {
                what: format!("manifest {repo}@{digest}"),
                reason: e.to_string(),
            })
        })?;
        let info = crate::manifests::info(digest.clone(), m.media_type, &doc, m.bytes.len())?;
        storage.put_manifest(name, &info, &m.bytes)?;
        metrics.proxy_fetched(m.bytes.len() as u64);
        Ok(())
    }

    /// Upstream's tags of `name`, sorted (`None`: upstream has no such
    /// repository); the cached tags when upstream cannot answer.
    pub(crate) async fn tags(
        &self,
        storage: &dyn Storage,
        name: &str,
    ) -> ApiResult<Option<Vec<String>>> {
        match self.client.list_tags(&self.repo(name)).await {
            Ok(mut tags) => {
                tags.sort();
                tags.dedup();
                Ok(Some(tags))
            }
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => match storage.tags(name)? {
                Some(tags) => {
                    tracing::warn!(
                        "upstream {}: {e}; listing the cached tags of {name}",
                        self.url
                    );
                    Ok(Some(tags))
                }
                None => Err(self.upstream_error(e)),
            },
        }
    }

    /// The blob's size if upstream has it in `name` (a HEAD, nothing
    /// fetched), for a HEAD of a blob not cached.
    pub(crate) async fn blob_size(&self, name: &str, digest: &Digest) -> ApiResult<Option<u64>> {
        self.client
            .blob_exists(&self.repo(name), digest, false)
            .await
            .map_err(|e| self.upstream_error(e))
    }

    /// Caches the blob `digest` of `name` unless it is cached: downloads,
    /// verifies, stores. Concurrent callers for one blob share one
    /// download. `Ok(false)` when upstream has no such blob.
    pub(crate) async fn sync_blob(
        &self,
        storage: &dyn Storage,
        metrics: &Metrics,
        name: &str,
        digest: &Digest,
    ) -> ApiResult<bool> {
        let cached = |s: &dyn Storage| -> ApiResult<bool> {
            Ok(s.has_link(name, digest)? && s.blob_size(digest)?.is_some())
        };
        if cached(storage)? {
            metrics.proxy_lookup(CacheKind::Blob, true);
            return Ok(true);
        }
        // A miss even for those who wait on another's download: they
        // waited for upstream.
        metrics.proxy_lookup(CacheKind::Blob, false);
        let lock = self
            .fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone();
        let _turn = lock.lock().await;
        let result = self
            .fetch_blob(storage, metrics, name, digest, cached)
            .await;
        // Whoever waited on this lock finds the blob cached; later callers
        // see it cached before they look for a lock.
        self.fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        result
    }

    async fn fetch_blob(
        &self,
        storage: &dyn Storage,
        metrics: &Metrics,
        name: &str,
        digest: &Digest,
        cached: impl Fn(&dyn Storage) -> ApiResult<bool>,
    ) -> ApiResult<bool> {
        if cached(storage)? {
            return Ok(true);
        }
        let repo = self.repo(name);
        let Some(size) = self.blob_size(name, digest).await? else {
            return Ok(false);
        };
        // Stored for another repository already: upstream has just said
        // this one holds it too.
        if storage.blob_size(digest)? == Some(size) && storage.touch_blob(digest)? {
            storage.link_blob(name, digest)?;
            return Ok(true);
        }
        let staging = staging::Staging::new(&self.staging, digest.algorithm());
        self.client
            .fetch_blob(&repo, digest, size, &staging, None, &|_| {})
            .await
            .map_err(|e| self.upstream_error(e))?;
        let path = staging.committed().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                format!("blob {digest} downloaded but not staged"),
            )
        })?;
        let stored = store_staged(storage, name, digest, &path).await;
        let _ = tokio::fs::remove_file(&path).await;
        stored?;
        metrics.proxy_fetched(size);
        Ok(true)
    }
}

/// What a request to a pull-through cache does before (or instead of)
/// the ordinary handlers: refuses writes, fills the cache for reads.
/// `Some` is the whole answer; `None` lets the ordinary handler serve what
/// is now cached.
pub(crate) async fn route(
    app: &crate::App,
    proxy: &Proxy,
    name: &str,
    route: &Route,
    method: &Method,
    query: &[(String, String)],
) -> ApiResult<Option<Response>> {
    let storage = &*app.storage;
    let metrics = &app.options.metrics;
    let read = *method == Method::GET || *method == Method::HEAD;
    match route {
        Route::UploadStart { .. } | Route::Upload { .. } => Err(read_only(proxy)),
        Route::Manifest { .. } | Route::Blob { .. } if !read => Err(read_only(proxy)),
        Route::Manifest { reference, .. } => {
            let looked_up = match Reference::parse(reference) {
                Some(Reference::Tag(t)) => proxy.sync_tag(storage, metrics, name, &t).await,
                Some(Reference::Digest(d)) => proxy.sync_manifest(storage, metrics, name, &d).await,
                // The ordinary handler names what is wrong with it.
                None => return Ok(None),
            };
            // Whatever failed, the cache did not have it to serve.
            metrics.proxy_lookup(CacheKind::Manifest, *looked_up.as_ref().unwrap_or(&false));
            looked_up?;
            Ok(None)
        }
        Route::Blob { digest, .. } => {
            let Ok(digest) = digest.parse::<Digest>() else {
                return Ok(None);
            };
            if *method == Method::GET {
                proxy.sync_blob(storage, metrics, name, &digest).await?;
                return Ok(None);
            }
            let cached = storage.has_link(name, &digest)? && storage.blob_size(&digest)?.is_some();
            metrics.proxy_lookup(CacheKind::Blob, cached);
            if cached {
                return Ok(None);
            }
            // HEAD of a blob not cached: upstream's answer, nothing fetched.
            let size = proxy
                .blob_size(name, &digest)
                .await?
                .ok_or_else(|| ApiError::blob_unknown(&digest))?;
            Ok(Some(crate::respond(
                StatusCode::OK,
                &[
                    ("docker-content-digest", digest.to_string()),
                    ("etag", format!("\"{digest}\"")),
                    ("content-type", "application/octet-stream".into()),
                    ("content-length", size.to_string()),
                ],
                axum::body::Body::empty(),
            )))
        }
        Route::Tags { .. } if *method == Method::GET => {
            let tags = proxy
                .tags(storage, name)
                .await?
                .ok_or_else(|| ApiError::name_unknown(name))?;
            crate::listing::tag_page(name, tags, query).map(Some)
        }
        Route::Tags { .. } | Route::Referrers { .. } => Ok(None),
    }
}

fn read_only(proxy: &Proxy) -> ApiError {
    ApiError::unsupported(format!(
        "this registry is a pull-through cache of {}: it takes no pushes or deletes; push to the upstream",
        proxy.url
    ))
}

/// Copies a verified staged file into the storage as an upload of `name`
/// and finishes it as the blob `digest`.
async fn store_staged(
    storage: &dyn Storage,
    name: &str,
    digest: &Digest,
    path: &std::path::Path,
) -> ApiResult<()> {
    let (id, state) = storage.new_upload(name)?;
    let copied = async {
        let mut writer = storage.upload_writer(name, &id, &state, 0)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| crate::StorageError::io(format!("open {}", path.display()), e))?;
        tokio::io::copy(&mut file, &mut writer)
            .await
            .map_err(|e| crate::StorageError::io("store a proxied blob", e))?;
        writer
            .shutdown()
            .await
            .map_err(|e| crate::StorageError::io("store a proxied blob", e))?;
        let state = writer.state();
        storage.finish_upload(name, &id, &state, digest)
    }
    .await;
    if copied.is_err() {
        let _ = storage.cancel_upload(name, &id, &state);
    }
    Ok(copied?)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn upstream_urls() {
        assert_eq!(
            parse_url("https://registry-1.docker.io").unwrap(),
            (false, "registry-1.docker.io".into(), String::new())
        );
        assert_eq!(
            parse_url("http://127.0.0.1:5000/library/").unwrap(),
            (true, "127.0.0.1:5000".into(), "library".into())
        );
        assert!(parse_url("registry.example")
            .unwrap_err()
            .contains("https://HOST"));
        assert!(parse_url("https://a b/").is_err());
        assert!(parse_url("https://h/UPPER").is_err());
    }
}
