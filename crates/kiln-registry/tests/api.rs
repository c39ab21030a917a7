//! The distribution API against an in-process server on 127.0.0.1:0:
//! every endpoint, and the error cases the spec names.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kiln_registry::FsStorage;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;

struct Server {
    base: String,
    dir: tempfile::TempDir,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn server() -> Server {
    server_with(kiln_registry::Options::default()).await
}

async fn server_with(options: kiln_registry::Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FsStorage::open(dir.path().join("registry")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(kiln_registry::serve(listener, storage, options, async {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        dir,
        client: reqwest::Client::new(),
        stop: Some(stop),
        served,
    }
}

/// `json()` without reqwest's json feature (the workspace builds it without).
trait Json {
    async fn json(self) -> reqwest::Result<Value>;
}

impl Json for reqwest::Response {
    async fn json(self) -> reqwest::Result<Value> {
        Ok(serde_json::from_slice(&self.bytes().await?).unwrap())
    }
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

fn sha512(b: &[u8]) -> String {
    format!("sha512:{:x}", sha2::Sha512::digest(b))
}

async fn code(r: reqwest::Response) -> String {
    let v = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

impl Server {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.client.request(method, url)
    }

    /// A request with no headers or body, sent.
    async fn call(&self, method: Method, path: &str) -> reqwest::Response {
        self.req(method, path).send().await.unwrap()
    }

    async fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?digest={d}"),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        d
    }

    async fn start_upload(&self, name: &str) -> String {
        let r = self
            .call(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert!(!header(&r, "docker-upload-uuid").is_empty());
        format!("{}{}", self.base, header(&r, "location"))
    }

    /// An image manifest over a pushed config and layer.
    async fn image(&self, name: &str, layer: &[u8]) -> Vec<u8> {
        let config = format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
            layer.len()
        );
        let c = self.push_blob(name, config.as_bytes()).await;
        let l = self.push_blob(name, layer).await;
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
        }))
        .unwrap()
    }

    async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        body: &[u8],
        mt: &str,
    ) -> reqwest::Response {
        self.req(Method::PUT, &format!("/v2/{name}/manifests/{reference}"))
            .header("content-type", mt)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[tokio::test]
async fn ping_and_health() {
    let s = server().await;
    for p in ["/v2/", "/v2", "/healthz"] {
        let r = s.req(Method::GET, p).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{p}");
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );
    }
    let r = s.call(Method::GET, "/v2/a/nonsense/x").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn monolithic_push_then_get_head_and_other_repos_do_not_see_it() {
    let s = server().await;
    let d = s.push_blob("a/b", b"hello").await;
    let r = s.call(Method::GET, &format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");
    let r = s.call(Method::HEAD, &format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "5");
    let r = s.call(Method::GET, &format!("/v2/other/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UNKNOWN");
    // Empty blobs and `{}` are blobs too.
    s.push_blob("a/b", b"").await;
    s.push_blob("a/b", b"{}").await;
    let r = s.call(Method::GET, "/v2/a/b/blobs/sha256:nothex").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn post_then_put_and_streamed_patch() {
    let s = server().await;
    let loc = s.start_upload("r").await;
    let d = sha256(b"whole");
    let r = s
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .body("whole")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/r/blobs/{d}"));

    let loc = s.start_upload("r").await;
    let body = vec![7u8; 300_000];
    let r = s
        .req(Method::PATCH, &loc)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-299999");
    let loc = format!("{}{}", s.base, header(&r, "location"));
    let d = sha256(&body);
    let r = s.call(Method::PUT, &format!("{loc}?digest={d}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.call(Method::GET, &format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap().len(), 300_000);
}

#[tokio::test]
async fn chunked_upload_in_order_out_of_order_status_and_sha512() {
    let s = server().await;
    let loc = s.start_upload("r").await;
    let data = b"0123456789abcdef".to_vec();
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "0-7")
        .body(data[..8].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-7");
    // A chunk that does not continue where the upload ends.
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "10-15")
        .body(data[10..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-7");
    // A chunk whose length is not its range's.
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "8-15")
        .body(data[8..10].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s.call(Method::GET, &loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-7");
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "8-15")
        .body(data[8..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let d = sha512(&data);
    let r = s.call(Method::PUT, &format!("{loc}?digest={d}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), d);
    let r = s.call(Method::GET, &format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    // Finished: the upload is gone.
    let r = s.call(Method::GET, &loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn wrong_digest_stores_nothing() {
    let s = server().await;
    let wrong = sha256(b"something else");
    let r = s
        .req(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest={wrong}"),
        )
        .body("content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    let loc = s.start_upload("r").await;
    s.req(Method::PATCH, &loc)
        .body("content")
        .send()
        .await
        .unwrap();
    let r = s.call(Method::PUT, &format!("{loc}?digest={wrong}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    let r = s.call(Method::GET, &loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for d in [wrong, sha256(b"content")] {
        let r = s.call(Method::HEAD, &format!("/v2/r/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let root = s.dir.path().join("registry");
    for dir in ["blobs", "uploads", "tmp"] {
        let n = walk(&root.join(dir));
        assert_eq!(n, 0, "{dir} holds files");
    }
    // PUT without a digest.
    let loc = s.start_upload("r").await;
    let r = s.call(Method::PUT, &loc).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn cancel_upload() {
    let s = server().await;
    let loc = s.start_upload("r").await;
    let r = s.call(Method::DELETE, &loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.call(Method::DELETE, &loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Another repository's upload id is unknown here.
    let loc = s.start_upload("r").await;
    let other = loc.replace("/v2/r/", "/v2/q/");
    let r = s.call(Method::GET, &other).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.call(Method::GET, "/v2/r/blobs/uploads/../../x").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ranges_and_etags() {
    let s = server().await;
    let data: Vec<u8> = (0..100u8).collect();
    let d = s.push_blob("r", &data).await;
    let url = format!("/v2/r/blobs/{d}");
    for (range, want) in [
        ("bytes=10-19", 10..20),
        ("bytes=90-", 90..100),
        ("bytes=-5", 95..100),
    ] {
        let r = s
            .req(Method::GET, &url)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {}-{}/100", want.start, want.end - 1)
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[want]);
    }
    let r = s
        .req(Method::GET, &url)
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */100");
    let r = s.call(Method::GET, &url).await;
    let etag = header(&r, "etag");
    assert_eq!(etag, format!("\"{d}\""));
    let r = s
        .req(Method::GET, &url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn mounts_and_blob_delete() {
    let s = server().await;
    let d = s.push_blob("src", b"shared").await;
    let r = s
        .call(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/dst/blobs/{d}"));
    let r = s
        .call(Method::POST, &format!("/v2/third/blobs/uploads/?mount={d}"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Mounting what `from` does not hold starts an upload instead.
    let missing = sha256(b"missing");
    let r = s
        .call(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={missing}&from=src"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s.call(Method::HEAD, &format!("/v2/dst/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.call(Method::DELETE, &format!("/v2/dst/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s.call(Method::HEAD, &format!("/v2/dst/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.call(Method::DELETE, &format!("/v2/dst/blobs/{d}")).await;
    assert_eq!(code(r).await, "BLOB_UNKNOWN");
    // The other repositories still hold it.
    let r = s.call(Method::GET, &format!("/v2/src/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let s = server().await;
    let m = s.image("app", b"layer").await;
    let d = sha256(&m);
    let r = s.put_manifest("app", "v1", &m, OCI_MANIFEST).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(header(&r, "location"), format!("/v2/app/manifests/{d}"));
    for reference in ["v1", d.as_str()] {
        let r = s
            .call(Method::GET, &format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), d);
        let etag = header(&r, "etag");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &m[..]);
        let r = s
            .call(Method::HEAD, &format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(header(&r, "content-length"), m.len().to_string());
        let r = s
            .req(Method::GET, &format!("/v2/app/manifests/{reference}"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }
    // Docker schema 2, pushed by digest with ?tag=.
    let mut doc: Value = serde_json::from_slice(&m).unwrap();
    doc["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    let dm = serde_json::to_vec(&doc).unwrap();
    let dd = sha256(&dm);
    let r = s
        .put_manifest(
            "app",
            &format!("{dd}?tag=docker&tag=also"),
            &dm,
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.call(Method::GET, "/v2/app/manifests/also").await;
    assert_eq!(header(&r, "docker-content-digest"), dd);
    assert_eq!(
        header(&r, "content-type"),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    // sha512 manifests.
    let d512 = sha512(&m);
    let r = s.put_manifest("app", &d512, &m, OCI_MANIFEST).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), d512);
    let r = s
        .call(Method::GET, &format!("/v2/app/manifests/{d512}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // An index of it, and an index naming a manifest the repository lacks.
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": m.len()}]}))
    .unwrap();
    let r = s.put_manifest("app", "multi", &index, OCI_INDEX).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.put_manifest("other", "multi", &index, OCI_INDEX).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // Deletes: a tag, then the manifest by digest (its tags go with it).
    let r = s.call(Method::DELETE, "/v2/app/manifests/multi").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = s.call(Method::GET, "/v2/app/manifests/multi").await;
    assert_eq!(code(r).await, "MANIFEST_UNKNOWN");
    let r = s
        .call(Method::DELETE, &format!("/v2/app/manifests/{d}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for reference in ["v1", d.as_str()] {
        let r = s
            .call(Method::GET, &format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(code(r).await, "MANIFEST_UNKNOWN");
    }
    let r = s.call(Method::GET, "/v2/nothere/manifests/latest").await;
    assert_eq!(code(r).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn hostile_manifests_are_refused() {
    let s = server().await;
    let m = s.image("app", b"layer").await;
    // Wrong digest in the URL.
    let r = s.put_manifest("app", &sha256(b"x"), &m, OCI_MANIFEST).await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
    // Naming a blob the repository does not hold (held elsewhere).
    let elsewhere = s.image("elsewhere", b"other layer").await;
    let r = s.put_manifest("app", "bad", &elsewhere, OCI_MANIFEST).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // Over 4 MiB.
    let mut big: Value = serde_json::from_slice(&m).unwrap();
    big["annotations"] = json!({"pad": "x".repeat(4 * 1024 * 1024)});
    let r = s
        .put_manifest(
            "app",
            "big",
            &serde_json::to_vec(&big).unwrap(),
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not JSON, wrong schema, mismatched media types, bad tag.
    for (body, mt) in [
        (b"not json".to_vec(), OCI_MANIFEST),
        (br#"{"schemaVersion":1}"#.to_vec(), OCI_MANIFEST),
        (m.clone(), OCI_INDEX),
        (m.clone(), "text/plain"),
    ] {
        let r = s.put_manifest("app", "t", &body, mt).await;
        assert_eq!(code(r).await, "MANIFEST_INVALID");
    }
    let r = s.put_manifest("app", "-bad", &m, OCI_MANIFEST).await;
    assert_eq!(code(r).await, "TAG_INVALID");
    // Nothing of that was tagged.
    let r = s.call(Method::GET, "/v2/app/tags/list").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!([]));
}

#[tokio::test]
async fn bad_repository_names() {
    let s = server().await;
    for name in ["UPPER", "_x", "a//b", "a%2F..%2F..%2Fetc", "a/.b"] {
        for (m, p) in [
            (Method::GET, format!("/v2/{name}/tags/list")),
            (Method::POST, format!("/v2/{name}/blobs/uploads/")),
            (Method::PUT, format!("/v2/{name}/manifests/latest")),
        ] {
            let r = s.req(m.clone(), &p).send().await.unwrap();
            assert!(r.status().is_client_error(), "{m} {p}: {}", r.status());
        }
    }
    let r = s.call(Method::POST, "/v2/a%2F..%2Fb/blobs/uploads/").await;
    assert_eq!(code(r).await, "NAME_INVALID");
    // Dot segments as sent (reqwest would normalize them away).
    for path in [
        "/v2/a/../../b/blobs/uploads/",
        "/v2/../x/blobs/uploads/",
        "/v2/a/./b/blobs/uploads/",
        "/v2/a/%2e%2e/b/blobs/uploads/",
    ] {
        let status = raw(
            &s.base,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 4"), "{path}: {status}");
    }
    assert_eq!(walk(&s.dir.path().join("registry/uploads")), 0);
    assert_eq!(walk(&s.dir.path().join("registry/repositories")), 0);
}

/// The status line of a request written as is.
async fn raw(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn referrers_and_subjects() {
    let s = server().await;
    let m = s.image("app", b"layer").await;
    let subject = sha256(&m);
    s.put_manifest("app", "v1", &m, OCI_MANIFEST).await;
    let empty = s.push_blob("app", b"{}").await;
    let artifact = |t: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": t,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": m.len()},
            "annotations": {"k": t},
        }))
        .unwrap()
    };
    let url = format!("/v2/app/referrers/{subject}");
    let r = s.call(Method::GET, &url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"], json!([]));
    let sig = artifact("application/x-signature");
    let sbom = artifact("application/x-sbom");
    for a in [&sig, &sbom] {
        let r = s.put_manifest("app", &sha256(a), a, OCI_MANIFEST).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "oci-subject"), subject);
    }
    let v: Value = s.call(Method::GET, &url).await.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    let r = s
        .call(
            Method::GET,
            &format!("{url}?artifactType=application/x-sbom"),
        )
        .await;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256(&sbom));
    assert_eq!(v["manifests"][0]["artifactType"], "application/x-sbom");
    assert_eq!(v["manifests"][0]["annotations"]["k"], "application/x-sbom");
    assert_eq!(v["manifests"][0]["size"], sbom.len());
    // A subject that does not exist is fine; deleting a referrer drops it.
    let r = s
        .call(
            Method::DELETE,
            &format!("/v2/app/manifests/{}", sha256(&sig)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = s.call(Method::GET, &url).await.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    let r = s.call(Method::GET, "/v2/app/referrers/sha256:bad").await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn tag_lists_and_catalog_paginate() {
    let s = server().await;
    let m = s.image("app", b"layer").await;
    for t in ["c", "a", "b", "d"] {
        assert_eq!(
            s.put_manifest("app", t, &m, OCI_MANIFEST).await.status(),
            StatusCode::CREATED
        );
    }
    let v: Value = s
        .call(Method::GET, "/v2/app/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"name": "app", "tags": ["a", "b", "c", "d"]}));
    let r = s.call(Method::GET, "/v2/app/tags/list?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["a", "b"]));
    let r = s.call(Method::GET, "/v2/app/tags/list?n=2&last=b").await;
    assert_eq!(header(&r, "link"), "");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["c", "d"]));
    let v: Value = s
        .call(Method::GET, "/v2/app/tags/list?last=c")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], json!(["d"]));
    let r = s.call(Method::GET, "/v2/nope/tags/list").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "NAME_UNKNOWN");

    s.push_blob("z/y", b"1").await;
    s.push_blob("b", b"1").await;
    let v: Value = s
        .call(Method::GET, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], json!(["app", "b", "z/y"]));
    let r = s.call(Method::GET, "/v2/_catalog?n=1&last=app").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=1&last=b>; rel=\"next\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], json!(["b"]));
}

#[tokio::test]
async fn interleaved_chunks_on_one_upload_never_mix() {
    let s = server().await;
    let loc = s.start_upload("r").await;
    // Two clients race chunks claiming the same offset: one wins, the
    // other is refused; the upload holds exactly one of them.
    let a = s
        .req(Method::PATCH, &loc)
        .header("content-range", "0-99999")
        .body(vec![1u8; 100_000])
        .send();
    let b = s
        .req(Method::PATCH, &loc)
        .header("content-range", "0-99999")
        .body(vec![2u8; 100_000])
        .send();
    let (a, b) = tokio::join!(a, b);
    let statuses = [a.unwrap().status(), b.unwrap().status()];
    assert!(statuses.contains(&StatusCode::ACCEPTED), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::RANGE_NOT_SATISFIABLE),
        "{statuses:?}"
    );
    let winner = if statuses[0] == StatusCode::ACCEPTED {
        1u8
    } else {
        2
    };
    let d = sha256(&vec![winner; 100_000]);
    let r = s.call(Method::PUT, &format!("{loc}?digest={d}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn immutable_tags() {
    let s = server_with(kiln_registry::Options {
        immutable_tags: vec!["prod/*".into()],
        ..Default::default()
    })
    .await;
    let one = s.image("prod/app", b"one").await;
    let two = s.image("prod/app", b"two").await;
    assert_eq!(
        s.put_manifest("prod/app", "v1", &one, OCI_MANIFEST)
            .await
            .status(),
        StatusCode::CREATED
    );
    // The same digest again is fine; another one is refused.
    assert_eq!(
        s.put_manifest("prod/app", "v1", &one, OCI_MANIFEST)
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = s.put_manifest("prod/app", "v1", &two, OCI_MANIFEST).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "DENIED");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("immutable"),
        "{v}"
    );
    let r = s
        .put_manifest(
            "prod/app",
            &format!("{}?tag=v1", sha256(&two)),
            &two,
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = s.call(Method::GET, "/v2/prod/app/manifests/v1").await;
    assert_eq!(header(&r, "docker-content-digest"), sha256(&one));
    // Neither the tag nor the manifest it names can be deleted.
    let r = s.call(Method::DELETE, "/v2/prod/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = s
        .call(
            Method::DELETE,
            &format!("/v2/prod/app/manifests/{}", sha256(&one)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Other repositories keep mutable tags.
    let dev = s.image("dev/app", b"one").await;
    let dev2 = s.image("dev/app", b"two").await;
    s.put_manifest("dev/app", "v1", &dev, OCI_MANIFEST).await;
    assert_eq!(
        s.put_manifest("dev/app", "v1", &dev2, OCI_MANIFEST)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let htpasswd = kiln_registry::Htpasswd::parse(&format!("# users\nkiln:{hash}\n")).unwrap();
    assert!(kiln_registry::Htpasswd::parse("kiln:{SHA}abc").is_err());
    let s = server_with(kiln_registry::Options {
        htpasswd: Some(htpasswd),
        ..Default::default()
    })
    .await;
    let r = s.call(Method::GET, "/v2/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "www-authenticate"),
        "Basic realm=\"kiln-registry\""
    );
    assert_eq!(code(r).await, "UNAUTHORIZED");
    let r = s
        .req(Method::POST, "/v2/x/blobs/uploads/")
        .basic_auth("kiln", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .req(Method::POST, "/v2/x/blobs/uploads/")
        .basic_auth("nobody", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let r = s
            .req(Method::GET, "/v2/")
            .basic_auth("kiln", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = s.call(Method::GET, "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(walk(&s.dir.path().join("registry/uploads")), 0);
}

#[tokio::test]
async fn shutdown_lets_a_running_upload_finish() {
    let mut s = server().await;
    let loc = s.start_upload("r").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let patch = tokio::spawn(
        s.client
            .patch(&loc)
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tx.send(vec![1; 1000]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!s.served.is_finished(), "stopped with an upload running");
    tx.send(vec![2; 1000]).await.unwrap();
    drop(tx);
    let r = patch.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-1999");
    drop(r);
    tokio::time::timeout(std::time::Duration::from_secs(10), &mut s.served)
        .await
        .expect("the server stops once the upload is done")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_upload_that_stops_halfway_keeps_only_what_came_before() {
    let s = server().await;
    let loc = s.start_upload("r").await;
    let r = s
        .req(Method::PATCH, &loc)
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A second chunk whose client dies after some bytes.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(1);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let patch = tokio::spawn(
        s.client
            .patch(&loc)
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tx.send(Ok(vec![2u8; 5000])).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tx.send(Err(std::io::Error::other("client died")))
        .await
        .unwrap();
    assert!(patch.await.unwrap().is_err());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = s.call(Method::GET, &loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-999");
    // The upload continues from there and finishes verified.
    let r = s
        .req(Method::PATCH, &loc)
        .header("content-range", "1000-1999")
        .body(vec![3u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut all = vec![1u8; 1000];
    all.extend(vec![3u8; 1000]);
    let d = sha256(&all);
    let r = s.call(Method::PUT, &format!("{loc}?digest={d}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.call(Method::GET, &format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &all[..]);
}
