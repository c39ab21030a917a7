//! What the GC, soak and hostile tests share: an in-process server on
//! 127.0.0.1:0 over a temporary `FsStorage` (stopped when dropped), and a
//! small distribution client over reqwest that pushes like docker does
//! (HEAD a blob, upload it when missing, then PUT the manifest) and pulls
//! with every byte verified.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use kiln_registry::{FsStorage, Storage};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest as _;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) storage: Arc<FsStorage>,
    pub(crate) client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    gc: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(gc) = self.gc.take() {
            gc.abort();
        }
    }
}

/// A server; with `gc`, collecting every `interval` as `kiln serve
/// --gc-interval` does.
pub(crate) async fn server(gc: Option<(kiln_registry::GcOptions, Duration)>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FsStorage::open(dir.path().join("registry")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kiln_registry::serve(
        listener,
        storage.clone(),
        kiln_registry::Options::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let gc = gc.map(|(o, every)| kiln_registry::gc::spawn(storage.clone(), o, every));
    Server {
        base: format!("http://{addr}"),
        addr,
        dir,
        storage,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        stop: Some(stop),
        gc,
    }
}

pub(crate) fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

pub(crate) fn digest(b: &[u8]) -> kiln_core::Digest {
    sha256(b).parse().unwrap()
}

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image manifest naming `config` and `layers` (and `subject`).
pub(crate) fn manifest(config: &[u8], layers: &[&[u8]], subject: Option<&[u8]>) -> Vec<u8> {
    let desc = |t: &str, b: &[u8]| json!({"mediaType": t, "digest": sha256(b), "size": b.len()});
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    });
    if let Some(s) = subject {
        m["subject"] = desc(OCI_MANIFEST, s);
        m["artifactType"] = "application/vnd.example.signature".into();
    }
    serde_json::to_vec(&m).unwrap()
}

/// An index naming `manifests`.
pub(crate) fn index(manifests: &[&[u8]]) -> Vec<u8> {
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests.iter().map(|b| json!({"mediaType": OCI_MANIFEST, "digest": sha256(b), "size": b.len()})).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&m).unwrap()
}

pub(crate) struct Client<'a> {
    pub(crate) base: &'a str,
    pub(crate) http: &'a reqwest::Client,
}

impl Client<'_> {
    pub(crate) async fn blob_exists(&self, repo: &str, b: &[u8]) -> reqwest::Result<bool> {
        let r = self
            .http
            .head(format!("{}/v2/{repo}/blobs/{}", self.base, sha256(b)))
            .send()
            .await?;
        Ok(r.status() == StatusCode::OK)
    }

    /// Monolithic upload: one POST with `?digest=`.
    pub(crate) async fn upload(&self, repo: &str, b: &[u8]) -> reqwest::Result<StatusCode> {
        let r = self
            .http
            .post(format!(
                "{}/v2/{repo}/blobs/uploads/?digest={}",
                self.base,
                sha256(b)
            ))
            .body(b.to_vec())
            .send()
            .await?;
        Ok(r.status())
    }

    /// Uploads `b` unless the repository has it, as docker does.
    pub(crate) async fn ensure(&self, repo: &str, b: &[u8]) -> reqwest::Result<StatusCode> {
        if self.blob_exists(repo, b).await? {
            return Ok(StatusCode::OK);
        }
        self.upload(repo, b).await
    }

    pub(crate) async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
    ) -> reqwest::Result<(StatusCode, Value)> {
        let media_type = serde_json::from_slice::<Value>(bytes).unwrap()["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        let r = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Result<(StatusCode, Vec<u8>)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(
                "accept",
                format!("{OCI_MANIFEST}, {OCI_INDEX}, application/vnd.docker.distribution.manifest.v2+json"),
            )
            .send()
            .await?;
        Ok((r.status(), r.bytes().await?.to_vec()))
    }

    /// Pulls `repo:reference` and checks every byte: the manifest is
    /// `expected`, and each blob it names has its digest.
    pub(crate) async fn pull_verify(
        &self,
        repo: &str,
        reference: &str,
        expected: &[u8],
    ) -> Result<(), String> {
        let (status, bytes) = self
            .get(&format!("/v2/{repo}/manifests/{reference}"))
            .await
            .map_err(|e| e.to_string())?;
        if status != StatusCode::OK || bytes != expected {
            return Err(format!("{repo}:{reference}: manifest {status}"));
        }
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let mut wanted = vec![doc["config"].clone()];
        wanted.extend(doc["layers"].as_array().cloned().unwrap_or_default());
        for d in wanted {
            let digest = d["digest"].as_str().unwrap();
            let (status, blob) = self
                .get(&format!("/v2/{repo}/blobs/{digest}"))
                .await
                .map_err(|e| e.to_string())?;
            if status != StatusCode::OK || sha256(&blob) != digest {
                return Err(format!("{repo}:{reference}: blob {digest} {status}"));
            }
        }
        Ok(())
    }
}

/// Storage-level invariants: every tag names a held manifest, every held
/// manifest's bytes and the blobs it names are there, and every blob's
/// bytes have its digest. The violations, one line each.
pub(crate) fn violations(storage: &dyn Storage, root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for repo in storage.repositories().unwrap() {
        for tag in storage.tags(&repo).unwrap().unwrap_or_default() {
            let d = storage.resolve_tag(&repo, &tag).unwrap().unwrap();
            if storage.manifest(&repo, &d).unwrap().is_none() {
                out.push(format!("{repo}:{tag} names missing manifest {d}"));
            }
        }
        for m in storage.list_manifests(&repo).unwrap() {
            let Some((_, bytes)) = storage.manifest(&repo, &m.digest).unwrap() else {
                out.push(format!("{repo}@{} has no bytes", m.digest));
                continue;
            };
            let doc: Value = serde_json::from_slice(&bytes).unwrap();
            let mut named = vec![doc["config"].clone()];
            named.extend(doc["layers"].as_array().cloned().unwrap_or_default());
            named.extend(doc["manifests"].as_array().cloned().unwrap_or_default());
            for d in named {
                let Some(s) = d["digest"].as_str() else {
                    continue;
                };
                let digest: kiln_core::Digest = s.parse().unwrap();
                if storage.blob_size(&digest).unwrap().is_none() {
                    out.push(format!("{repo}@{} names missing blob {s}", m.digest));
                }
            }
        }
    }
    let blobs = root.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).into_iter().flatten() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if sha256(&bytes) != format!("sha256:{name}") {
            out.push(format!("blob {name} has other bytes"));
        }
    }
    out
}

/// `n` pseudo-random bytes from `seed` (distinct seeds, distinct blobs).
pub(crate) fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
