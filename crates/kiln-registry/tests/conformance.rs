//! A conformance suite for the OCI distribution spec 1.1, in the categories
//! of the spec's own suite (`conformance/` in opencontainers/
//! distribution-spec: pull, push, content discovery, content management),
//! run against a base URL. It runs against `kiln serve` (in process) and,
//! as the reference, against Debian's distribution registry
//! (`/usr/bin/docker-registry`, started here on a loopback port with a
//! temporary config), and prints each side's pass/fail count per category.
//! kiln must pass every check; distribution's failures must be exactly the
//! ones listed in [`DISTRIBUTION_FAILS`] (it has no referrers API, ignores
//! `subject`, …), so the test fails when either side changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;

use common::{bytes, sha256, OCI_INDEX, OCI_MANIFEST};

/// The checks distribution 2.8 fails, each with why.
const DISTRIBUTION_FAILS: &[(&str, &str)] = &[
    (
        "deletes/tag, the manifest stays",
        "2.8 refuses DELETE by tag (400 UNSUPPORTED)",
    ),
    (
        "errors/unknown upload is 404 BLOB_UPLOAD_UNKNOWN",
        "2.8 says BLOB_UPLOAD_INVALID for an id that is not a UUID",
    ),
    (
        "manifests/artifact with subject answers OCI-Subject",
        "2.8 predates subject",
    ),
    (
        "manifests/index with subject answers OCI-Subject",
        "2.8 predates subject",
    ),
    (
        "manifests/missing subject is accepted with OCI-Subject",
        "2.8 predates subject",
    ),
    (
        "manifests/non-distributable layers",
        "2.8 answers 500: foreign URLs are refused unless configured",
    ),
    ("manifests/sha512", "2.8 digests manifests with sha256 only"),
    (
        "push/out-of-order chunk is 416",
        "2.8 ignores Content-Range and appends the chunk",
    ),
    ("referrers/deleted referrer disappears", "no referrers API"),
    ("referrers/filters by artifactType", "no referrers API"),
    ("referrers/lists referrers", "no referrers API"),
    (
        "referrers/unknown subject gives an empty index",
        "no referrers API",
    ),
    ("tags/last", "2.8 lists tags unsorted and ignores last"),
    ("tags/list", "2.8 lists tags unsorted"),
    (
        "tags/n and last",
        "2.8 lists tags unsorted and ignores n and last",
    ),
    ("tags/n with Link", "2.8 ignores n"),
];

fn sha512(b: &[u8]) -> String {
    format!("sha512:{:x}", sha2::Sha512::digest(b))
}

macro_rules! want {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

type Check = Result<(), String>;

struct Target {
    base: String,
    http: reqwest::Client,
    results: BTreeMap<String, Check>,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn desc(media_type: &str, b: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(b), "size": b.len()})
}

const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// An upload's `Location` with `digest=` added to its query (a Location
/// may already carry one: kiln's signed state, distribution's `_state`).
fn with_digest(loc: &str, digest: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

impl Target {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut r = self.http.request(method, url).body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        // distribution's 416 promises a body it never sends: keep what came.
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    fn record(&mut self, category: &str, name: &str, result: Check) {
        self.results.insert(format!("{category}/{name}"), result);
    }

    /// POST an empty upload request: the reply names the session
    /// (`Location`).
    async fn open_upload(&self, repo: &str) -> Reply {
        self.send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            vec![],
        )
        .await
    }

    /// POST then PUT (the method every registry supports).
    async fn push_blob(&self, repo: &str, b: &[u8]) -> Check {
        let r = self.open_upload(repo).await;
        want!(r.status == StatusCode::ACCEPTED, "POST {}", r.status);
        let loc = r.header("location");
        let r = self
            .send(
                Method::PUT,
                &with_digest(&loc, &sha256(b)),
                &[("content-type", "application/octet-stream")],
                b.to_vec(),
            )
            .await;
        want!(r.status == StatusCode::CREATED, "PUT {}", r.status);
        Ok(())
    }

    async fn put_manifest(&self, repo: &str, reference: &str, m: &Value) -> (Reply, Vec<u8>) {
        let bytes = serde_json::to_vec(m).unwrap();
        let media_type = m["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
        let r = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("content-type", &media_type)],
                bytes.clone(),
            )
            .await;
        (r, bytes)
    }

    /// PUTs `m` and checks it reads back byte for byte by digest.
    async fn manifest_roundtrip(&self, repo: &str, reference: &str, m: &Value) -> Check {
        let (r, bytes) = self.put_manifest(repo, reference, m).await;
        want!(
            r.status == StatusCode::CREATED,
            "PUT {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let digest = if reference.starts_with("sha512:") {
            sha512(&bytes)
        } else {
            sha256(&bytes)
        };
        let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
        let r = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{digest}"),
                &[("accept", &accept)],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::OK, "GET by digest {}", r.status);
        want!(r.body == bytes, "the bytes changed");
        want!(
            r.header("docker-content-digest") == digest,
            "Docker-Content-Digest {}",
            r.header("docker-content-digest")
        );
        Ok(())
    }
}

/// A config, a layer and an image manifest over them, pushed to `repo`.
async fn image(t: &Target, repo: &str, seed: u64) -> Result<Value, String> {
    let config = bytes(seed, 200);
    let layer = bytes(seed + 1, 3000);
    t.push_blob(repo, &config).await?;
    t.push_blob(repo, &layer).await?;
    Ok(json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CONFIG, &config),
        "layers": [desc(LAYER, &layer)],
    }))
}

async fn ping(t: &mut Target) {
    let r = t.send(Method::GET, "/v2/", &[], vec![]).await;
    let result = if r.status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{}", r.status))
    };
    t.record("ping", "GET /v2/ answers 200", result);
}

async fn push(t: &mut Target) {
    let repo = "conformance/push";
    let blob = bytes(1, 10_000);
    let r = t.push_blob(repo, &blob).await;
    t.record("push", "POST then PUT", r);

    let b = bytes(2, 5000);
    let r = t
        .send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&b)),
            &[("content-type", "application/octet-stream")],
            b.clone(),
        )
        .await;
    let ok = if r.status == StatusCode::CREATED {
        Ok(())
    } else if r.status == StatusCode::ACCEPTED {
        // The spec lets a registry answer with a session instead; finish it.
        let loc = r.header("location");
        let r2 = t
            .send(
                Method::PUT,
                &with_digest(&loc, &sha256(&b)),
                &[("content-type", "application/octet-stream")],
                b.clone(),
            )
            .await;
        if r2.status == StatusCode::CREATED {
            Ok(())
        } else {
            Err(format!("fallback PUT {}", r2.status))
        }
    } else {
        Err(format!("{}", r.status))
    };
    t.record("push", "single POST with digest", ok);

    let chunked = async {
        let b = bytes(3, 30_000);
        let r = t.open_upload(repo).await;
        want!(r.status == StatusCode::ACCEPTED, "POST {}", r.status);
        let mut loc = r.header("location");
        for (i, part) in b.chunks(10_000).enumerate() {
            let range = format!("{}-{}", i * 10_000, i * 10_000 + part.len() - 1);
            let len = part.len().to_string();
            let r = t
                .send(
                    Method::PATCH,
                    &loc,
                    &[
                        ("content-type", "application/octet-stream"),
                        ("content-range", &range),
                        ("content-length", &len),
                    ],
                    part.to_vec(),
                )
                .await;
            want!(r.status == StatusCode::ACCEPTED, "PATCH {}", r.status);
            want!(
                r.header("range") == format!("0-{}", i * 10_000 + part.len() - 1),
                "Range {}",
                r.header("range")
            );
            loc = r.header("location");
        }
        let r = t.send(Method::GET, &loc, &[], vec![]).await;
        want!(
            r.status == StatusCode::NO_CONTENT,
            "status GET {}",
            r.status
        );
        want!(
            r.header("range") == "0-29999",
            "status Range {}",
            r.header("range")
        );
        let r = t
            .send(Method::PUT, &with_digest(&loc, &sha256(&b)), &[], vec![])
            .await;
        want!(r.status == StatusCode::CREATED, "PUT {}", r.status);
        Ok(())
    }
    .await;
    t.record("push", "chunked PATCH with Content-Range", chunked);

    let out_of_order = async {
        let r = t.open_upload(repo).await;
        let loc = r.header("location");
        let r = t
            .send(
                Method::PATCH,
                &loc,
                &[("content-range", "0-9")],
                vec![1; 10],
            )
            .await;
        want!(r.status == StatusCode::ACCEPTED, "first PATCH {}", r.status);
        let loc = r.header("location");
        let r = t
            .send(
                Method::PATCH,
                &loc,
                &[("content-range", "20-29")],
                vec![2; 10],
            )
            .await;
        want!(
            r.status == StatusCode::RANGE_NOT_SATISFIABLE,
            "out-of-order PATCH {}",
            r.status
        );
        Ok(())
    }
    .await;
    t.record("push", "out-of-order chunk is 416", out_of_order);

    let streamed = async {
        let b = bytes(4, 20_000);
        let r = t.open_upload(repo).await;
        let loc = r.header("location");
        let r = t
            .send(
                Method::PATCH,
                &loc,
                &[("content-type", "application/octet-stream")],
                b.clone(),
            )
            .await;
        want!(r.status == StatusCode::ACCEPTED, "PATCH {}", r.status);
        let loc = r.header("location");
        let r = t
            .send(Method::PUT, &with_digest(&loc, &sha256(&b)), &[], vec![])
            .await;
        want!(r.status == StatusCode::CREATED, "PUT {}", r.status);
        Ok(())
    }
    .await;
    t.record("push", "streamed PATCH", streamed);

    for (name, b) in [("empty blob", b"".to_vec()), ("{} blob", b"{}".to_vec())] {
        let r = async {
            t.push_blob(repo, &b).await?;
            let r = t
                .send(
                    Method::GET,
                    &format!("/v2/{repo}/blobs/{}", sha256(&b)),
                    &[],
                    vec![],
                )
                .await;
            want!(
                r.status == StatusCode::OK && r.body == b,
                "GET {}",
                r.status
            );
            Ok(())
        }
        .await;
        t.record("push", name, r);
    }

    let mount = async {
        let r = t
            .send(
                Method::POST,
                &format!(
                    "/v2/conformance/mounted/blobs/uploads/?mount={}&from={repo}",
                    sha256(&blob)
                ),
                &[],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::CREATED, "mount {}", r.status);
        let r = t
            .send(
                Method::HEAD,
                &format!("/v2/conformance/mounted/blobs/{}", sha256(&blob)),
                &[],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::OK, "HEAD after mount {}", r.status);
        Ok(())
    }
    .await;
    t.record("push", "mount with from", mount);

    let mount = async {
        let r = t
            .send(
                Method::POST,
                &format!(
                    "/v2/conformance/mounted2/blobs/uploads/?mount={}",
                    sha256(&blob)
                ),
                &[],
                vec![],
            )
            .await;
        // The spec allows either: mounted (201), or a new session (202).
        want!(
            r.status == StatusCode::CREATED || r.status == StatusCode::ACCEPTED,
            "{}",
            r.status
        );
        if r.status == StatusCode::ACCEPTED {
            want!(
                !r.header("location").is_empty(),
                "no Location for the session"
            );
        }
        Ok(())
    }
    .await;
    t.record("push", "mount without from", mount);

    let mount = async {
        let missing = sha256(b"never pushed");
        let r = t
            .send(
                Method::POST,
                &format!("/v2/conformance/mounted3/blobs/uploads/?mount={missing}&from={repo}"),
                &[],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::ACCEPTED, "{}", r.status);
        Ok(())
    }
    .await;
    t.record("push", "mount of an unknown blob starts an upload", mount);
}

async fn pull(t: &mut Target) {
    let repo = "conformance/pull";
    let b = bytes(10, 1000);
    let setup = t.push_blob(repo, &b).await;
    let path = format!("/v2/{repo}/blobs/{}", sha256(&b));
    let r = async {
        setup?;
        let r = t.send(Method::GET, &path, &[], vec![]).await;
        want!(
            r.status == StatusCode::OK && r.body == b,
            "GET {}",
            r.status
        );
        want!(
            r.header("docker-content-digest") == sha256(&b),
            "no Docker-Content-Digest"
        );
        let r = t.send(Method::HEAD, &path, &[], vec![]).await;
        want!(r.status == StatusCode::OK, "HEAD {}", r.status);
        want!(
            r.header("content-length") == "1000",
            "HEAD Content-Length {}",
            r.header("content-length")
        );
        Ok(())
    }
    .await;
    t.record("pull", "blob GET and HEAD", r);

    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
    ] {
        let r = async {
            let r = t
                .send(Method::GET, &path, &[("range", range)], vec![])
                .await;
            want!(r.status == StatusCode::PARTIAL_CONTENT, "{}", r.status);
            want!(r.body == b[start..=end], "wrong bytes");
            want!(
                r.header("content-range") == format!("bytes {start}-{end}/1000"),
                "Content-Range {}",
                r.header("content-range")
            );
            Ok(())
        }
        .await;
        t.record("pull", &format!("range {range}"), r);
    }
    let r = async {
        let r = t
            .send(Method::GET, &path, &[("range", "bytes=2000-")], vec![])
            .await;
        want!(
            r.status == StatusCode::RANGE_NOT_SATISFIABLE,
            "{}",
            r.status
        );
        Ok(())
    }
    .await;
    t.record("pull", "unsatisfiable range is 416", r);

    let r = async {
        let r = t
            .send(
                Method::GET,
                &format!("/v2/{repo}/blobs/{}", sha256(b"absent")),
                &[],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::NOT_FOUND, "{}", r.status);
        want!(r.code() == "BLOB_UNKNOWN", "code {}", r.code());
        Ok(())
    }
    .await;
    t.record("pull", "unknown blob is 404 BLOB_UNKNOWN", r);

    let r = async {
        let m = image(t, repo, 11).await?;
        let (r, bytes) = t.put_manifest(repo, "v1", &m).await;
        want!(r.status == StatusCode::CREATED, "PUT {}", r.status);
        let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
        for reference in ["v1".to_string(), sha256(&bytes)] {
            let p = format!("/v2/{repo}/manifests/{reference}");
            let r = t
                .send(Method::GET, &p, &[("accept", &accept)], vec![])
                .await;
            want!(
                r.status == StatusCode::OK && r.body == bytes,
                "GET {reference} {}",
                r.status
            );
            want!(
                r.header("content-type") == OCI_MANIFEST,
                "Content-Type {}",
                r.header("content-type")
            );
            let r = t
                .send(Method::HEAD, &p, &[("accept", &accept)], vec![])
                .await;
            want!(r.status == StatusCode::OK, "HEAD {reference} {}", r.status);
            want!(
                r.header("docker-content-digest") == sha256(&bytes),
                "HEAD digest"
            );
        }
        Ok(())
    }
    .await;
    t.record("pull", "manifest GET and HEAD by tag and digest", r);

    let r = async {
        let r = t
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/nosuchtag"),
                &[],
                vec![],
            )
            .await;
        want!(r.status == StatusCode::NOT_FOUND, "{}", r.status);
        want!(r.code() == "MANIFEST_UNKNOWN", "code {}", r.code());
        Ok(())
    }
    .await;
    t.record("pull", "unknown manifest is 404 MANIFEST_UNKNOWN", r);
}

async fn bad_digests(t: &mut Target) {
    let repo = "conformance/digests";
    let r = async {
        let r = t
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(b"other")),
                &[("content-type", "application/octet-stream")],
                b"content".to_vec(),
            )
            .await;
        // A registry that answers 202 (a session) has stored nothing yet:
        // the mismatch shows on the PUT, as below.
        want!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::ACCEPTED,
            "{}",
            r.status
        );
        let r = t
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{}", sha256(b"other")),
                &[],
                vec![],
            )
            .await;
        want!(
            r.status == StatusCode::NOT_FOUND,
            "stored under the claimed digest: {}",
            r.status
        );
        Ok(())
    }
    .await;
    t.record(
        "bad digests",
        "single POST with a wrong digest stores nothing",
        r,
    );
    let r = async {
        let r = t.open_upload(repo).await;
        let loc = r.header("location");
        let r = t
            .send(
                Method::PUT,
                &with_digest(&loc, &sha256(b"other")),
                &[("content-type", "application/octet-stream")],
                b"content".to_vec(),
            )
            .await;
        want!(r.status == StatusCode::BAD_REQUEST, "{}", r.status);
        want!(r.code() == "DIGEST_INVALID", "code {}", r.code());
        Ok(())
    }
    .await;
    t.record(
        "bad digests",
        "PUT with a wrong digest is 400 DIGEST_INVALID",
        r,
    );
    let r = async {
        let r = t.open_upload(repo).await;
        let loc = r.header("location");
        let r = t
            .send(
                Method::PUT,
                &with_digest(&loc, "sha256:nothex"),
                &[],
                b"x".to_vec(),
            )
            .await;
        want!(r.status == StatusCode::BAD_REQUEST, "{}", r.status);
        Ok(())
    }
    .await;
    t.record("bad digests", "malformed digest is 400", r);
}

async fn manifests(t: &mut Target) {
    let repo = "conformance/manifests";
    let base = image(t, repo, 20).await.unwrap_or(Value::Null);
    let r = t.manifest_roundtrip(repo, "image", &base).await;
    t.record("manifests", "image", r);

    let r = async {
        let config = bytes(21, 100);
        let layer = bytes(22, 2000);
        t.push_blob(repo, &config).await?;
        t.push_blob(repo, &layer).await?;
        let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(CONFIG, &config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)]});
        t.manifest_roundtrip(repo, "uncompressed", &m).await
    }
    .await;
    t.record("manifests", "uncompressed image", r);

    let r = async {
        let mut m = base.clone();
        m["annotations"] = json!({"org.example.padding": "p".repeat(3_900_000)});
        t.manifest_roundtrip(repo, "big", &m).await
    }
    .await;
    t.record("manifests", "3.9 MB manifest", r);

    let second = image(t, repo, 23).await.unwrap_or(Value::Null);
    let first_bytes = serde_json::to_vec(&base).unwrap();
    let second_bytes = serde_json::to_vec(&second).unwrap();
    let _ = t.put_manifest(repo, &sha256(&second_bytes), &second).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(&first_bytes), "size": first_bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": sha256(&second_bytes), "size": second_bytes.len(), "platform": {"architecture": "arm64", "os": "linux"}},
    ]});
    let r = t.manifest_roundtrip(repo, "index", &index).await;
    t.record("manifests", "index", r);
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": sha256(&index_bytes), "size": index_bytes.len()},
    ]});
    let r = t.manifest_roundtrip(repo, "nested", &nested).await;
    t.record("manifests", "nested index", r);
    let empty_index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    let r = t.manifest_roundtrip(repo, "emptyindex", &empty_index).await;
    t.record("manifests", "empty index", r);

    let _ = t.push_blob(repo, b"{}").await;
    let art_layer = bytes(24, 700);
    let _ = t.push_blob(repo, &art_layer).await;
    let artifact = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom", "config": desc(EMPTY, b"{}"),
        "layers": [desc("application/vnd.example.sbom.layer", &art_layer)]});
    let r = t.manifest_roundtrip(repo, "artifact", &artifact).await;
    t.record("manifests", "artifact", r);
    let artifact_bytes = serde_json::to_vec(&artifact).unwrap();
    let artifact_index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle", "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(&artifact_bytes), "size": artifact_bytes.len(), "artifactType": "application/vnd.example.sbom"}]});
    let r = t
        .manifest_roundtrip(repo, "artifactindex", &artifact_index)
        .await;
    t.record("manifests", "artifact index", r);
    let no_layers_artifact = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing", "config": desc(EMPTY, b"{}"),
        "layers": [desc(EMPTY, b"{}")]});
    let r = t
        .manifest_roundtrip(repo, "artifactnolayers", &no_layers_artifact)
        .await;
    t.record("manifests", "artifact without layers", r);

    let subject =
        |b: &[u8], mt: &str| json!({"mediaType": mt, "digest": sha256(b), "size": b.len()});
    let mut signed = artifact.clone();
    signed["artifactType"] = "application/vnd.example.signature".into();
    signed["subject"] = subject(&first_bytes, OCI_MANIFEST);
    let signed_bytes = serde_json::to_vec(&signed).unwrap();
    let r = t
        .manifest_roundtrip(repo, &sha256(&signed_bytes), &signed)
        .await;
    t.record("manifests", "artifact with subject", r);
    let (r, _) = t.put_manifest(repo, &sha256(&signed_bytes), &signed).await;
    let ok = if r.header("oci-subject") == sha256(&first_bytes) {
        Ok(())
    } else {
        Err(format!("OCI-Subject {:?}", r.header("oci-subject")))
    };
    t.record("manifests", "artifact with subject answers OCI-Subject", ok);

    let mut index_subject = artifact_index.clone();
    index_subject["subject"] = subject(&first_bytes, OCI_MANIFEST);
    let isb = serde_json::to_vec(&index_subject).unwrap();
    let r = t
        .manifest_roundtrip(repo, &sha256(&isb), &index_subject)
        .await;
    t.record("manifests", "index with subject", r);
    let (r, _) = t.put_manifest(repo, &sha256(&isb), &index_subject).await;
    let ok = if r.header("oci-subject") == sha256(&first_bytes) {
        Ok(())
    } else {
        Err(format!("OCI-Subject {:?}", r.header("oci-subject")))
    };
    t.record("manifests", "index with subject answers OCI-Subject", ok);

    let ghost = b"a manifest that was never pushed";
    let mut orphan_ref = artifact.clone();
    orphan_ref["subject"] = subject(ghost, OCI_MANIFEST);
    let orb = serde_json::to_vec(&orphan_ref).unwrap();
    let (r, _) = t.put_manifest(repo, &sha256(&orb), &orphan_ref).await;
    let ok = if r.status != StatusCode::CREATED {
        Err(format!("{}", r.status))
    } else if r.header("oci-subject") != sha256(ghost) {
        Err(format!("OCI-Subject {:?}", r.header("oci-subject")))
    } else {
        Ok(())
    };
    t.record(
        "manifests",
        "missing subject is accepted with OCI-Subject",
        ok,
    );

    let r = async {
        let data = b"inline data";
        let _ = t.push_blob(repo, data).await;
        let mut m = artifact.clone();
        m["layers"] = json!([{"mediaType": "application/vnd.example.data", "digest": sha256(data), "size": data.len(),
            "data": base64::engine::general_purpose::STANDARD.encode(data)}]);
        t.manifest_roundtrip(repo, "data", &m).await
    }
    .await;
    t.record("manifests", "data field", r);

    let r = async {
        let foreign = bytes(25, 100);
        let mut m = base.clone();
        m["layers"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha256(&foreign), "size": foreign.len(),
            "urls": ["https://example.invalid/layer.tar.gz"]}));
        t.manifest_roundtrip(repo, "nondistributable", &m).await
    }
    .await;
    t.record("manifests", "non-distributable layers", r);

    let r = async {
        let mut m = base.clone();
        m["org.example.custom"] = json!({"nested": [1, 2, 3]});
        m["annotations"] = json!({"org.example.note": "kept"});
        t.manifest_roundtrip(repo, "custom", &m).await
    }
    .await;
    t.record("manifests", "custom fields", r);

    let r = async {
        let mut m = base.clone();
        m["layers"] = json!([]);
        t.manifest_roundtrip(repo, "nolayers", &m).await
    }
    .await;
    t.record("manifests", "no layers", r);

    let r = async {
        let mut m = base.clone();
        m["annotations"] = json!({"org.example.algorithm": "sha512"});
        let b = serde_json::to_vec(&m).unwrap();
        t.manifest_roundtrip(repo, &sha512(&b), &m).await
    }
    .await;
    t.record("manifests", "sha512", r);

    let r = async {
        let missing = bytes(26, 10);
        let mut m = base.clone();
        m["layers"] = json!([desc(LAYER, &missing)]);
        let (r, _) = t.put_manifest(repo, "broken", &m).await;
        want!(r.status == StatusCode::BAD_REQUEST, "{}", r.status);
        want!(r.code() == "MANIFEST_BLOB_UNKNOWN", "code {}", r.code());
        Ok(())
    }
    .await;
    t.record("manifests", "unknown blob is 400 MANIFEST_BLOB_UNKNOWN", r);
}

async fn tags(t: &mut Target) {
    let repo = "conformance/tags";
    let m = image(t, repo, 30).await.unwrap_or(Value::Null);
    let names = ["a", "b", "c", "d", "e"];
    for n in names {
        let _ = t.put_manifest(repo, n, &m).await;
    }
    let list = |r: &Reply| -> Vec<String> {
        r.json()["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = t
        .send(Method::GET, &format!("/v2/{repo}/tags/list"), &[], vec![])
        .await;
    let ok = if list(&r) == names {
        Ok(())
    } else {
        Err(format!("{:?}", list(&r)))
    };
    t.record("tags", "list", ok);
    let r = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/tags/list?n=2"),
            &[],
            vec![],
        )
        .await;
    let ok = if list(&r) == ["a", "b"] && r.header("link").contains("last=b") {
        Ok(())
    } else {
        Err(format!("{:?} Link {:?}", list(&r), r.header("link")))
    };
    t.record("tags", "n with Link", ok);
    let r = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/tags/list?last=b"),
            &[],
            vec![],
        )
        .await;
    let ok = if list(&r) == ["c", "d", "e"] {
        Ok(())
    } else {
        Err(format!("{:?}", list(&r)))
    };
    t.record("tags", "last", ok);
    let r = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/tags/list?n=2&last=b"),
            &[],
            vec![],
        )
        .await;
    let ok = if list(&r) == ["c", "d"] {
        Ok(())
    } else {
        Err(format!("{:?}", list(&r)))
    };
    t.record("tags", "n and last", ok);
    let r = t
        .send(
            Method::GET,
            "/v2/conformance/nosuchrepo/tags/list",
            &[],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::NOT_FOUND && r.code() == "NAME_UNKNOWN" {
        Ok(())
    } else {
        Err(format!("{} {}", r.status, r.code()))
    };
    t.record("tags", "unknown repository is 404 NAME_UNKNOWN", ok);
}

async fn referrers(t: &mut Target) {
    let repo = "conformance/referrers";
    let subject = image(t, repo, 40).await.unwrap_or(Value::Null);
    let (_, sb) = t.put_manifest(repo, "subject", &subject).await;
    let _ = t.push_blob(repo, b"{}").await;
    let mut made = Vec::new();
    for (i, at) in [
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .iter()
    .enumerate()
    {
        let layer = bytes(41 + i as u64, 100);
        let _ = t.push_blob(repo, &layer).await;
        let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": desc(EMPTY, b"{}"), "layers": [desc("application/octet-stream", &layer)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(&sb), "size": sb.len()}});
        let (_, b) = t
            .put_manifest(repo, &sha256(&serde_json::to_vec(&m).unwrap()), &m)
            .await;
        made.push(sha256(&b));
    }
    let path = format!("/v2/{repo}/referrers/{}", sha256(&sb));
    let listed = |r: &Reply| -> Vec<String> {
        r.json()["manifests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["digest"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = t.send(Method::GET, &path, &[], vec![]).await;
    let mut got = listed(&r);
    got.sort();
    let mut want_all = made.clone();
    want_all.sort();
    let ok =
        if r.status == StatusCode::OK && got == want_all && r.header("content-type") == OCI_INDEX {
            Ok(())
        } else {
            Err(format!("{} {got:?}", r.status))
        };
    t.record("referrers", "lists referrers", ok);
    let r = t
        .send(
            Method::GET,
            &format!("{path}?artifactType=application/vnd.example.sbom"),
            &[],
            vec![],
        )
        .await;
    let ok = if listed(&r) == [made[1].clone()] && r.header("oci-filters-applied") == "artifactType"
    {
        Ok(())
    } else {
        Err(format!("{} {:?}", r.status, listed(&r)))
    };
    t.record("referrers", "filters by artifactType", ok);
    let r = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/referrers/{}", sha256(b"nothing")),
            &[],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::OK && r.json()["manifests"] == json!([]) {
        Ok(())
    } else {
        Err(format!("{}", r.status))
    };
    t.record("referrers", "unknown subject gives an empty index", ok);
    let r = t
        .send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", made[0]),
            &[],
            vec![],
        )
        .await;
    let after = t.send(Method::GET, &path, &[], vec![]).await;
    let ok = if r.status == StatusCode::ACCEPTED
        && after.status == StatusCode::OK
        && listed(&after) == [made[1].clone()]
    {
        Ok(())
    } else {
        Err(format!(
            "DELETE {} then {} {:?}",
            r.status,
            after.status,
            listed(&after)
        ))
    };
    t.record("referrers", "deleted referrer disappears", ok);
}

async fn deletes(t: &mut Target) {
    let repo = "conformance/deletes";
    let m = image(t, repo, 50).await.unwrap_or(Value::Null);
    let (_, mb) = t.put_manifest(repo, "doomed", &m).await;
    let _ = t.put_manifest(repo, "other", &m).await;
    let r = t
        .send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/doomed"),
            &[],
            vec![],
        )
        .await;
    let after = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/manifests/doomed"),
            &[],
            vec![],
        )
        .await;
    let by_digest = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/manifests/{}", sha256(&mb)),
            &[("accept", OCI_MANIFEST)],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::ACCEPTED
        && after.status == StatusCode::NOT_FOUND
        && by_digest.status == StatusCode::OK
    {
        Ok(())
    } else {
        Err(format!(
            "DELETE {} then tag {} digest {}",
            r.status, after.status, by_digest.status
        ))
    };
    t.record("deletes", "tag, the manifest stays", ok);
    let r = t
        .send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", sha256(&mb)),
            &[],
            vec![],
        )
        .await;
    let after = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/manifests/{}", sha256(&mb)),
            &[("accept", OCI_MANIFEST)],
            vec![],
        )
        .await;
    let tag = t
        .send(
            Method::GET,
            &format!("/v2/{repo}/manifests/other"),
            &[("accept", OCI_MANIFEST)],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::ACCEPTED
        && after.status == StatusCode::NOT_FOUND
        && tag.status == StatusCode::NOT_FOUND
    {
        Ok(())
    } else {
        Err(format!(
            "DELETE {} then {} (tag {})",
            r.status, after.status, tag.status
        ))
    };
    t.record("deletes", "manifest by digest, and its tags", ok);
    for (what, d) in [
        ("config", m["config"]["digest"].clone()),
        ("layer", m["layers"][0]["digest"].clone()),
    ] {
        let d = d.as_str().unwrap_or_default();
        let r = t
            .send(
                Method::DELETE,
                &format!("/v2/{repo}/blobs/{d}"),
                &[],
                vec![],
            )
            .await;
        let after = t
            .send(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"), &[], vec![])
            .await;
        let ok = if r.status == StatusCode::ACCEPTED && after.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("DELETE {} then HEAD {}", r.status, after.status))
        };
        t.record("deletes", &format!("{what} blob"), ok);
    }
    let r = t
        .send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", sha256(&mb)),
            &[],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(format!("{}", r.status))
    };
    t.record("deletes", "deleting twice is 404", ok);
}

async fn errors(t: &mut Target) {
    let r = t
        .send(
            Method::GET,
            "/v2/conformance/e/blobs/uploads/0123456789abcdef0123456789abcdef",
            &[],
            vec![],
        )
        .await;
    let ok = if r.status == StatusCode::NOT_FOUND && r.code() == "BLOB_UPLOAD_UNKNOWN" {
        Ok(())
    } else {
        Err(format!("{} {}", r.status, r.code()))
    };
    t.record("errors", "unknown upload is 404 BLOB_UPLOAD_UNKNOWN", ok);
    let r = t
        .send(
            Method::PUT,
            "/v2/conformance/e/manifests/x",
            &[("content-type", OCI_MANIFEST)],
            b"{not json".to_vec(),
        )
        .await;
    let ok = if r.status == StatusCode::BAD_REQUEST && r.code() == "MANIFEST_INVALID" {
        Ok(())
    } else {
        Err(format!("{} {}", r.status, r.code()))
    };
    t.record("errors", "invalid manifest is 400 MANIFEST_INVALID", ok);
    let r = t
        .send(Method::GET, "/v2/conformance/e/manifests/v1", &[], vec![])
        .await;
    let v = r.json();
    let ok = if r.status == StatusCode::NOT_FOUND && v["errors"][0]["message"].is_string() {
        Ok(())
    } else {
        Err(format!("{} {v}", r.status))
    };
    t.record("errors", "errors are JSON with code and message", ok);
    let r = t
        .send(
            Method::GET,
            "/v2/conformance/e/manifests/bad:tag!",
            &[],
            vec![],
        )
        .await;
    let ok = if r.status.is_client_error() {
        Ok(())
    } else {
        Err(format!("{}", r.status))
    };
    t.record("errors", "invalid reference is refused", ok);
}

async fn run(base: String) -> BTreeMap<String, Check> {
    let mut t = Target {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        results: BTreeMap::new(),
    };
    ping(&mut t).await;
    push(&mut t).await;
    pull(&mut t).await;
    bad_digests(&mut t).await;
    manifests(&mut t).await;
    tags(&mut t).await;
    referrers(&mut t).await;
    deletes(&mut t).await;
    errors(&mut t).await;
    t.results
}

fn summary(who: &str, results: &BTreeMap<String, Check>) -> String {
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (name, r) in results {
        let cat = name.split('/').next().unwrap();
        let e = per.entry(cat).or_default();
        if r.is_ok() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let mut out = format!("{who}:\n");
    for (cat, (pass, fail)) in &per {
        out += &format!("  {cat:<12} {pass:>3} passed {fail:>3} failed\n");
    }
    for (name, r) in results {
        if let Err(e) = r {
            out += &format!("  FAIL {name}: {e}\n");
        }
    }
    out
}

/// Debian's distribution registry on a free loopback port, killed on drop.
struct Distribution {
    child: Child,
    _dir: tempfile::TempDir,
    base: String,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn distribution() -> Distribution {
    let bin = "/usr/bin/docker-registry";
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: install Debian's docker-registry (scripts/setup.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Distribution {
        child,
        _dir: dir,
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{}/v2/", d.base)).await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "docker-registry did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_of_kiln_serve_and_of_distribution() {
    let kiln = common::server(None).await;
    let kiln_results = run(kiln.base.clone()).await;
    let reference = distribution().await;
    let dist_results = run(reference.base.clone()).await;
    eprintln!("{}", summary("kiln serve", &kiln_results));
    eprintln!(
        "{}",
        summary("distribution 2.8 (docker-registry)", &dist_results)
    );
    assert_eq!(kiln_results.len(), dist_results.len());
    assert!(kiln_results.len() >= 60, "{} checks", kiln_results.len());
    let kiln_fails: Vec<_> = kiln_results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(kiln_fails.is_empty(), "kiln fails {kiln_fails:?}");
    let dist_fails: Vec<&str> = dist_results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    let expected: Vec<&str> = DISTRIBUTION_FAILS.iter().map(|(n, _)| *n).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        dist_fails, expected_sorted,
        "distribution's failures changed"
    );
}
