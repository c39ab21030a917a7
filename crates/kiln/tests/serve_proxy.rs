//! `kiln serve --proxy`: a pull-through cache. Against Debian's
//! distribution registry with token auth as upstream, kiln, skopeo and
//! docker pull through the cache and get upstream's digests; a tag moved
//! upstream is seen after the TTL; with upstream stopped the cache still
//! serves. Against a fake upstream (tests/common/http.rs) that counts
//! requests: wrong bytes are never stored or served, ten concurrent first
//! pulls of a blob make one upstream GET, a tag within its TTL costs no
//! upstream request and after it a HEAD only. Pushes and deletes get 405.
//! All traffic stays on 127.0.0.1; servers are stopped when a test ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http::{self, Reply};
use common::registry::{Auth, Registry, PASSWORD, USER};
use common::{run_tool, tool, Kiln};

const DOCKER: &str = "/usr/bin/docker";

/// A `kiln serve` caching `upstream`, with `extra` lines in its `[proxy]`.
struct Cache {
    child: Child,
    host: String,
    kiln: Kiln,
}

impl Cache {
    fn start(upstream: &str, extra: &str) -> Cache {
        let kiln = Kiln::new();
        let config = kiln.path("kiln-registry.toml");
        std::fs::write(&config, format!("[proxy]\nurl = \"{upstream}\"\n{extra}\n")).unwrap();
        let log = kiln.path("serve.log");
        let (child, host) = common::serve::listening(
            kiln.cmd()
                .args(["serve", "--addr", "127.0.0.1:0", "--config"])
                .arg(&config)
                .stderr(std::fs::File::create(&log).unwrap()),
            Some(&log),
        );
        Cache { child, host, kiln }
    }

    fn data(&self) -> PathBuf {
        self.kiln.root.join("registry")
    }

    /// Sends a request; returns the status, the headers (lowercased names)
    /// and the body.
    fn raw(&self, head: &str) -> (u16, String, Vec<u8>) {
        let mut c = std::net::TcpStream::connect(&self.host).unwrap();
        write!(
            c,
            "{head} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.host
        )
        .unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&out[..split]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        (status, head, out[split + 4..].to_vec())
    }

    fn digest_of(&self, name: &str, tag: &str) -> String {
        let (code, head, _) = self.raw(&format!("HEAD /v2/{name}/manifests/{tag}"));
        assert_eq!(code, 200, "{head}");
        header(&head, "docker-content-digest")
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
        .trim()
        .to_string()
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

/// The digest skopeo sees for `image` on the token-auth upstream.
fn upstream_digest(image: &str) -> String {
    tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn kiln_skopeo_and_docker_pull_upstream_digests_through_the_cache() {
    let upstream = Registry::start(Auth::Token);
    let k = Kiln::new();
    k.import_busybox("bb", &[("etc/motd", b"first\n")], &[]);
    let up = format!("{}/mirror/bb:1", upstream.host());
    k.ok(&["tag", "bb", &up]);
    k.ok(&["push", "--creds", &format!("{USER}:{PASSWORD}"), &up]);
    let first = upstream_digest(&up);

    let cache = Cache::start(
        &format!("http://{}", upstream.host()),
        &format!("username = \"{USER}\"\npassword = \"{PASSWORD}\"\ntag_ttl = 1"),
    );
    let name = format!("{}/mirror/bb:1", cache.host);

    // kiln pulls the image upstream has, under upstream's digest.
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Id"], k.inspect("bb")["Id"]);
    assert_eq!(cache.digest_of("mirror/bb", "1"), first);

    // skopeo too, into an OCI layout whose index names that digest.
    let layout = p.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(index.contains(&first), "{index}");

    // docker pulls it and records upstream's digest.
    let pulled = run_tool(DOCKER, &["pull", &name]);
    let repo_digest = run_tool(
        DOCKER,
        &["inspect", "--format", "{{index .RepoDigests 0}}", &name],
    );
    let _ = run_tool(DOCKER, &["rmi", &name]);
    assert!(
        pulled.status.success(),
        "docker pull: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let repo_digest = String::from_utf8_lossy(&repo_digest.stdout)
        .trim()
        .to_string();
    assert_eq!(repo_digest, format!("{}/mirror/bb@{first}", cache.host));

    // Pushes to the cache are refused, as distribution's proxy does.
    let (code, _, body) = cache.raw("POST /v2/mirror/bb/blobs/uploads/");
    assert_eq!(code, 405);
    assert!(String::from_utf8_lossy(&body).contains("UNSUPPORTED"));
    let refused = p.run(&["push", &name]);
    assert!(!refused.status.success());

    // The tag moves upstream; after the TTL the cache follows it.
    let k2 = Kiln::new();
    k2.import_busybox("bb", &[("etc/motd", b"second\n")], &[]);
    k2.ok(&["tag", "bb", &up]);
    k2.ok(&["push", "--creds", &format!("{USER}:{PASSWORD}"), &up]);
    let second = upstream_digest(&up);
    assert_ne!(first, second);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cache.digest_of("mirror/bb", "1"), second);
    let p2 = Kiln::new();
    p2.ok(&["pull", &name]);
    assert_eq!(p2.inspect(&name)["Id"], k2.inspect("bb")["Id"]);

    // Upstream gone: the cache still serves what it holds, tag included
    // (its TTL has run out, so it tries upstream first).
    drop(upstream);
    std::thread::sleep(Duration::from_millis(1500));
    let p3 = Kiln::new();
    p3.ok(&["pull", &name]);
    assert_eq!(p3.inspect(&name)["Id"], k2.inspect("bb")["Id"]);
    // What it never held it cannot serve, and says why.
    let (code, _, body) = cache.raw("GET /v2/mirror/other/manifests/1");
    assert_eq!(code, 502, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("upstream"));
}

/// A fake upstream holding one repository `r`: tag `t` (a manifest naming
/// the blob `good`), a blob `bad` whose bytes are not what its digest
/// says, and a tag `evil` whose manifest bytes are not what HEAD said.
/// Every request is logged as "METHOD path"; blob GETs take 300 ms, so
/// concurrent pulls overlap.
struct Fake {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    good: (String, Vec<u8>),
    bad: String,
    manifest: (String, Vec<u8>),
}

fn fake_upstream() -> Fake {
    let good_bytes = b"layer bytes, good ones".repeat(1000);
    let good = (sha256(&good_bytes), good_bytes.clone());
    let bad = sha256(b"what the bad blob should hold");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest_bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        sha256(config),
        config.len(),
        good.0,
        good.1.len()
    )
    .into_bytes();
    let manifest = (sha256(&manifest_bytes), manifest_bytes.clone());
    let evil_claim = sha256(b"a manifest nobody has");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l, g, b, m) = (log.clone(), good.clone(), bad.clone(), manifest.clone());
    let port = http::serve(Arc::new(move |req| {
        let path = req.path().to_string();
        l.lock().unwrap().push(format!("{} {path}", req.method));
        let blob = |bytes: &[u8]| {
            if req.method == "GET" {
                std::thread::sleep(Duration::from_millis(300));
            }
            Reply::new(200, bytes.to_vec()).header("Content-Type", "application/octet-stream")
        };
        let man = |digest: &str, bytes: &[u8]| {
            Reply::new(200, bytes.to_vec())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", digest)
        };
        match path.as_str() {
            "/v2/" => Reply::new(200, "{}"),
            "/v2/r/manifests/t" => man(&m.0, &m.1),
            p if p == format!("/v2/r/manifests/{}", m.0) => man(&m.0, &m.1),
            // HEAD names one digest, the bytes behind it have another.
            "/v2/r/manifests/evil" => man(&evil_claim, &m.1),
            p if p == format!("/v2/r/manifests/{evil_claim}") => man(&evil_claim, &m.1),
            p if p == format!("/v2/r/blobs/{}", g.0) => blob(&g.1),
            p if p == format!("/v2/r/blobs/{b}") => {
                // Right length, wrong bytes.
                blob(b"what the bad blob should holD")
            }
            _ => Reply::new(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
        }
    }));
    Fake {
        port,
        log,
        good,
        bad,
        manifest,
    }
}

impl Fake {
    fn count(&self, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == what)
            .count()
    }
}

#[test]
fn a_hostile_upstream_stores_nothing_and_a_blob_is_fetched_once() {
    let fake = fake_upstream();
    let cache = Cache::start(&format!("http://127.0.0.1:{}", fake.port), "tag_ttl = 1");
    let blobs = cache.data().join("blobs/sha256");
    let stored = |digest: &str| blobs.join(digest.trim_start_matches("sha256:")).exists();

    // Wrong bytes under a digest: an error for the client, nothing kept.
    let (code, _, body) = cache.raw(&format!("GET /v2/r/blobs/{}", fake.bad));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains(&fake.bad) && body.contains("upstream"),
        "{body}"
    );
    assert!(!stored(&fake.bad));
    let staging = cache.data().join("proxy-staging");
    let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
    assert_eq!(left, 0, "staging files left behind");
    // A manifest whose bytes are not the digest upstream named.
    let (code, _, body) = cache.raw("GET /v2/r/manifests/evil");
    assert_eq!(code, 502, "{}", String::from_utf8_lossy(&body));
    let (code, _, _) = cache.raw("GET /v2/r/tags/list");
    assert_eq!(code, 404, "upstream has no tag list here, the cache none");

    // Ten concurrent first pulls of one blob: one upstream GET, and every
    // client gets the verified bytes.
    let get = format!("GET /v2/r/blobs/{}", fake.good.0);
    std::thread::scope(|s| {
        let pulls: Vec<_> = (0..10).map(|_| s.spawn(|| cache.raw(&get))).collect();
        for p in pulls {
            let (code, head, body) = p.join().unwrap();
            assert_eq!(code, 200, "{head}");
            assert!(body == fake.good.1, "wrong bytes served");
        }
    });
    assert_eq!(fake.count(&get), 1, "{:?}", fake.log.lock().unwrap());
    assert!(stored(&fake.good.0));

    // A tag: fetched once; within its TTL no upstream request at all;
    // after it, one HEAD and no body for an unchanged tag.
    assert_eq!(cache.digest_of("r", "t"), fake.manifest.0);
    let (code, _, body) = cache.raw("GET /v2/r/manifests/t");
    assert_eq!((code, body), (200, fake.manifest.1.clone()));
    assert_eq!(fake.count("HEAD /v2/r/manifests/t"), 1);
    assert_eq!(fake.count("GET /v2/r/manifests/t"), 0);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(cache.digest_of("r", "t"), fake.manifest.0);
    assert_eq!(fake.count("HEAD /v2/r/manifests/t"), 2);
    let by_digest = format!("GET /v2/r/manifests/{}", fake.manifest.0);
    assert_eq!(fake.count(&by_digest), 1);

    // Writes are refused with distribution's answer.
    for head in [
        "POST /v2/r/blobs/uploads/".to_string(),
        "PUT /v2/r/manifests/t".to_string(),
        format!("DELETE /v2/r/manifests/{}", fake.manifest.0),
        format!("DELETE /v2/r/blobs/{}", fake.good.0),
    ] {
        let (code, _, body) = cache.raw(&head);
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(code, 405, "{head}: {body}");
        assert!(
            body.contains("UNSUPPORTED") && body.contains("pull-through"),
            "{body}"
        );
    }
}

fn sha512(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha512:{:x}", sha2::Sha512::digest(b))
}

/// The value of the sample `line` (name and labels) in `/metrics`.
fn metric(cache: &Cache, line: &str) -> u64 {
    let (code, _, body) = cache.raw("GET /metrics");
    assert_eq!(code, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {line} in\n{text}"))
        .parse()
        .unwrap()
}

fn lookups(cache: &Cache, kind: &str, result: &str) -> u64 {
    metric(
        cache,
        &format!("kiln_registry_proxy_requests_total{{kind=\"{kind}\",result=\"{result}\"}}"),
    )
}

/// A sha512-addressed manifest (its layer a sha512 blob) pulled through the
/// cache is verified under sha512 and stored under its sha512 digest;
/// tampered sha512 content stores nothing. `/metrics` counts every lookup
/// a hit or a miss and exactly the verified bytes fetched from upstream.
#[test]
fn sha512_content_is_verified_and_kept_under_sha512_and_the_cache_is_counted() {
    let layer = b"a layer addressed by sha512".repeat(500);
    let layer_digest = sha512(&layer);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        sha512(config),
        config.len(),
        layer.len()
    )
    .into_bytes();
    let manifest_digest = sha512(&manifest);
    // Digests upstream names whose bytes are something else.
    let forged_manifest = sha512(b"a manifest upstream does not have");
    let forged_blob = sha512(b"a blob upstream does not have");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l, m, md, lb, ld) = (
        log.clone(),
        manifest.clone(),
        manifest_digest.clone(),
        layer.clone(),
        layer_digest.clone(),
    );
    let (fm, fb) = (forged_manifest.clone(), forged_blob.clone());
    let port = http::serve(Arc::new(move |req| {
        let path = req.path().to_string();
        l.lock().unwrap().push(format!("{} {path}", req.method));
        let man = |digest: &str| {
            Reply::new(200, m.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", digest)
        };
        let blob = |b: &[u8]| {
            Reply::new(200, b.to_vec()).header("Content-Type", "application/octet-stream")
        };
        match path.as_str() {
            "/v2/" => Reply::new(200, "{}"),
            "/v2/r/manifests/t512" => man(&md),
            p if p == format!("/v2/r/manifests/{md}") => man(&md),
            p if p == format!("/v2/r/manifests/{fm}") => man(&fm),
            p if p == format!("/v2/r/blobs/{ld}") => blob(&lb),
            // Right length, wrong bytes.
            p if p == format!("/v2/r/blobs/{fb}") => blob(&vec![b'x'; lb.len()]),
            _ => Reply::new(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
        }
    }));
    let count = |what: &str| log.lock().unwrap().iter().filter(|l| *l == what).count();
    let cache = Cache::start(&format!("http://127.0.0.1:{port}"), "tag_ttl = 300");
    let data = cache.data();
    let kept = |digest: &str| {
        let (alg, hex) = digest.split_once(':').unwrap();
        data.join("blobs").join(alg).join(hex).exists()
    };
    let upstream_bytes = || metric(&cache, "kiln_registry_proxy_upstream_bytes_total");
    assert_eq!(upstream_bytes(), 0);
    assert_eq!(lookups(&cache, "manifest", "miss"), 0);

    // By digest: fetched once, verified under sha512, kept under sha512.
    let by_digest = format!("GET /v2/r/manifests/{manifest_digest}");
    let (code, head, body) = cache.raw(&by_digest);
    assert_eq!(code, 200, "{head}{}", String::from_utf8_lossy(&body));
    assert_eq!(body, manifest);
    assert_eq!(header(&head, "docker-content-digest"), manifest_digest);
    assert!(kept(&manifest_digest), "stored under its sha512 digest");
    let (alg, hex) = manifest_digest.split_once(':').unwrap();
    assert!(data
        .join("repositories/r/_manifests")
        .join(alg)
        .join(hex)
        .exists());
    assert!(!kept(&sha256(&manifest)), "not under sha256");
    assert_eq!(lookups(&cache, "manifest", "miss"), 1);
    assert_eq!(upstream_bytes(), manifest.len() as u64);
    // Again: a hit, nothing asked upstream.
    let (code, _, body) = cache.raw(&by_digest);
    assert_eq!((code, body), (200, manifest.clone()));
    assert_eq!(count(&by_digest), 1);
    assert_eq!(lookups(&cache, "manifest", "hit"), 1);

    // A tag upstream names by its sha512 digest: the cached manifest
    // serves it (a hit: upstream was asked by HEAD only).
    let (code, head, body) = cache.raw("GET /v2/r/manifests/t512");
    assert_eq!((code, body), (200, manifest.clone()), "{head}");
    assert_eq!(header(&head, "docker-content-digest"), manifest_digest);
    assert_eq!(count("HEAD /v2/r/manifests/t512"), 1);
    assert_eq!(count("GET /v2/r/manifests/t512"), 0);
    assert_eq!(lookups(&cache, "manifest", "hit"), 2);

    // The sha512 layer: a miss that fetches it, verified and kept under
    // sha512; then hits for GET and HEAD.
    let get_layer = format!("GET /v2/r/blobs/{layer_digest}");
    let (code, head, body) = cache.raw(&get_layer);
    assert_eq!(code, 200, "{head}");
    assert!(body == layer, "wrong bytes served");
    assert_eq!(header(&head, "docker-content-digest"), layer_digest);
    assert!(kept(&layer_digest));
    assert_eq!(lookups(&cache, "blob", "miss"), 1);
    assert_eq!(upstream_bytes(), (manifest.len() + layer.len()) as u64);
    let (code, _, body) = cache.raw(&get_layer);
    assert!(code == 200 && body == layer);
    let (code, _, _) = cache.raw(&format!("HEAD /v2/r/blobs/{layer_digest}"));
    assert_eq!(code, 200);
    assert_eq!(count(&get_layer), 1);
    assert_eq!(lookups(&cache, "blob", "hit"), 2);

    // Forged sha512 content: 502, nothing kept, no bytes counted.
    let (code, _, body) = cache.raw(&format!("GET /v2/r/manifests/{forged_manifest}"));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 502, "{body}");
    assert!(body.contains(&forged_manifest), "{body}");
    let (code, _, body) = cache.raw(&format!("GET /v2/r/blobs/{forged_blob}"));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 502, "{body}");
    assert!(!kept(&forged_manifest) && !kept(&forged_blob));
    assert_eq!(lookups(&cache, "manifest", "miss"), 2);
    assert_eq!(lookups(&cache, "blob", "miss"), 2);
    assert_eq!(upstream_bytes(), (manifest.len() + layer.len()) as u64);
}
