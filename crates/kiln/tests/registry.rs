//! kiln pull / push / login / copy against the real distribution registry
//! (Debian's `docker-registry`, started per test on 127.0.0.1), against
//! skopeo, through a fault-injecting proxy, and against fake registries
//! that misbehave on purpose.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::http::{self, Reply, Request};
use common::registry::{fault_proxy, Auth, Fault, Registry, PASSWORD, USER};
use common::{run_tool, skopeo_copy_to_registry, skopeo_raw, tool, Kiln};

fn sha(bytes: &[u8]) -> String {
    common::sha256_digest(bytes)
}

/// A store holding busybox with a few extra files as `name`.
fn kiln_with_image(name: &str) -> Kiln {
    let k = Kiln::new();
    k.import_busybox(name, &[("etc/motd", b"hello from kiln\n")], &[]);
    k
}

/// A JSON file (index.json, a manifest or config blob), parsed.
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Blob files in a store, and whether any ingest file is left behind.
fn blob_count(k: &Kiln) -> usize {
    std::fs::read_dir(k.root.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn no_ingest_left(k: &Kiln) -> bool {
    std::fs::read_dir(k.root.join("ingest"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

fn images_listed(k: &Kiln) -> usize {
    k.ok(&["images", "-q"]).lines().count()
}

#[test]
fn push_then_pull_anonymous_by_tag_and_by_digest() {
    let reg = Registry::start(Auth::Anonymous);
    let src = kiln_with_image("bb");
    let name = format!("{}/team/bb:1", reg.host());
    src.ok(&["tag", "bb", &name]);
    let out = src.run(&["push", &name]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.starts_with("1: digest: sha256:"), "{stdout}");
    let digest = stdout.split_whitespace().nth(2).unwrap().to_string();
    assert!(stderr_of(&out).contains(": Pushed"), "{}", stderr_of(&out));

    // A second push uploads nothing.
    let again = src.run(&["push", &name]);
    assert!(again.status.success());
    let e = stderr_of(&again);
    // One layer (configs are not listed, as with docker).
    assert_eq!(e.matches("Layer already exists").count(), 1, "{e}");
    assert!(!e.contains("Pushed"), "{e}");

    let id = src.inspect("bb")["Id"].clone();
    let dst = Kiln::new();
    let pulled = dst.run(&["pull", &name]);
    assert!(pulled.status.success(), "{}", stderr_of(&pulled));
    let e = stderr_of(&pulled);
    assert!(e.contains(&format!("Digest: {digest}")), "{e}");
    assert!(e.contains("Downloaded newer image"), "{e}");
    let doc = dst.inspect(&name);
    assert_eq!(doc["Id"], id);
    assert_eq!(
        doc["RepoDigests"][0].as_str().unwrap(),
        format!("{}/team/bb@{digest}", reg.host())
    );
    let listed = dst.ok(&["images", "--digests"]);
    assert!(
        listed.contains(&digest),
        "images --digests shows {digest}:\n{listed}"
    );
    let again = dst.run(&["pull", &name]);
    assert!(stderr_of(&again).contains("Image is up to date"));
    assert!(dst.ok(&["system", "check"]).contains("consistent"));

    // By digest: stored untagged, found by name@digest.
    let by_digest = Kiln::new();
    let reference = format!("{}/team/bb@{digest}", reg.host());
    by_digest.ok(&["pull", &reference]);
    assert_eq!(by_digest.inspect(&reference)["Id"], id);
    assert!(by_digest.ok(&["images"]).contains("<none>"));

    // A missing tag and a missing repository are clear errors.
    let err = dst.fails(&["pull", &format!("{}/team/bb:nope", reg.host())]);
    assert!(
        err.contains("not found") && err.contains("bb:nope"),
        "{err}"
    );
}

#[test]
fn push_mounts_blobs_from_another_repository() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let a = format!("{}/a/bb:1", reg.host());
    let b = format!("{}/b/bb:1", reg.host());
    k.ok(&["tag", "bb", &a]);
    k.ok(&["tag", "bb", &b]);
    k.ok(&["push", &a]);
    let out = k.run(&["push", &b]);
    assert!(out.status.success());
    let e = stderr_of(&out);
    // docker's words; the layer's compressed form was remembered, so it
    // is mounted, not compressed again.
    assert_eq!(e.matches(": Mounted from a/bb").count(), 1, "{e}");
    // The mounted image is whole: pull it elsewhere.
    let other = Kiln::new();
    other.ok(&["pull", &b]);
    assert_eq!(other.inspect(&b)["Id"], k.inspect("bb")["Id"]);
}

#[test]
fn push_all_tags_pushes_every_tag_of_the_repository() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let repo = format!("{}/multi/bb", reg.host());
    for t in ["1", "2", "latest"] {
        k.ok(&["tag", "bb", &format!("{repo}:{t}")]);
    }
    let out = k.ok(&["push", "--all-tags", &repo]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let tags = tool(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ],
    );
    for t in ["\"1\"", "\"2\"", "\"latest\""] {
        assert!(tags.contains(t), "{tags}");
    }
    let err = k.fails(&["push", "--all-tags", &format!("{repo}:1")]);
    assert!(err.contains("without a tag"), "{err}");
}

fn login_flow(reg: &Registry) {
    let k = kiln_with_image("bb");
    let config_dir = k.path("docker-config");
    let name = format!("{}/secure/bb:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    let with_config = |args: &[&str], stdin: Option<&str>| {
        let mut c = k.cmd();
        c.env("DOCKER_CONFIG", &config_dir).args(args);
        if let Some(input) = stdin {
            let f = k.path("stdin");
            std::fs::write(&f, input).unwrap();
            c.stdin(std::fs::File::open(f).unwrap());
        }
        c.output().unwrap()
    };

    let out = with_config(&["push", &name], None);
    assert!(!out.status.success());
    let e = stderr_of(&out);
    assert!(
        e.contains("authentication required") && e.contains("kiln login"),
        "{e}"
    );

    let out = with_config(
        &["login", "-u", USER, "--password-stdin", &reg.host()],
        Some("wrong\n"),
    );
    assert!(!out.status.success(), "a wrong password must not log in");
    assert!(
        !config_dir.join("config.json").exists()
            || !std::fs::read_to_string(config_dir.join("config.json"))
                .unwrap()
                .contains(&reg.host())
    );

    let out = with_config(
        &["login", "-u", USER, "--password-stdin", &reg.host()],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let config = std::fs::read_to_string(config_dir.join("config.json")).unwrap();
    assert!(config.contains(&reg.host()), "{config}");

    let out = with_config(&["push", &name], None);
    assert!(out.status.success(), "{}", stderr_of(&out));

    // A login with no credentials given tries the stored ones first, as
    // docker does: no terminal is needed while they work.
    let out = with_config(&["login", &reg.host()], Some(""));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Authenticating with existing credentials...")
            && said.contains("Login Succeeded"),
        "{said}"
    );

    // docker's own CLI reads the same file: skopeo does too.
    let inspected = run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            config_dir.join("config.json").to_str().unwrap(),
            &format!("docker://{name}"),
        ],
    );
    assert!(inspected.status.success(), "{}", stderr_of(&inspected));

    let out = with_config(&["rmi", &name], None);
    assert!(out.status.success());
    let out = with_config(&["pull", &name], None);
    assert!(out.status.success(), "{}", stderr_of(&out));

    let out = with_config(&["logout", &reg.host()], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    let out = with_config(&["pull", &name], None);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("authentication required"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn htpasswd_basic_auth_login_push_pull_logout() {
    let reg = Registry::start(Auth::Htpasswd);
    login_flow(&reg);
}

#[test]
fn token_auth_login_push_pull_logout() {
    let reg = Registry::start(Auth::Token);
    login_flow(&reg);
    // Tokens are cached per scope set: a push of two blobs and a manifest
    // does not ask for a token per request.
    let k = kiln_with_image("bb");
    let name = format!("{}/cached/bb:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    let before = reg.token_requests.load(Ordering::SeqCst);
    k.ok(&["push", "--creds", &format!("{USER}:{PASSWORD}"), &name]);
    let used = reg.token_requests.load(Ordering::SeqCst) - before;
    assert!(
        (1..=3).contains(&used),
        "{used} token requests for one push"
    );
}

/// An OCI layout holding a two-platform index of busybox (amd64 as
/// imported, and a copy whose config says arm64).
fn two_platform_layout(k: &Kiln, dir: &Path) {
    k.ok(&["copy", "kiln:bb", &format!("oci:{}:single", dir.display())]);
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read_json(&dir.join("index.json"));
    let amd_desc = index["manifests"][0].clone();
    let amd = read_json(&blob(amd_desc["digest"].as_str().unwrap()));
    let mut config = read_json(&blob(amd["config"]["digest"].as_str().unwrap()));
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    std::fs::write(blob(&sha(&config_bytes)), &config_bytes).unwrap();
    let mut arm = amd.clone();
    arm["config"]["digest"] = sha(&config_bytes).into();
    arm["config"]["size"] = config_bytes.len().into();
    let arm_bytes = serde_json::to_vec(&arm).unwrap();
    std::fs::write(blob(&sha(&arm_bytes)), &arm_bytes).unwrap();
    let idx = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": amd_desc["mediaType"], "digest": amd_desc["digest"], "size": amd_desc["size"],
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&arm_bytes), "size": arm_bytes.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    let idx_bytes = serde_json::to_vec(&idx).unwrap();
    std::fs::write(blob(&sha(&idx_bytes)), &idx_bytes).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&idx_bytes), "size": idx_bytes.len(),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    ]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn multi_platform_index_push_and_pull_by_platform() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let layout = k.path("layout");
    two_platform_layout(&k, &layout);
    let name = format!("{}/multi/bb:1", reg.host());
    k.ok(&[
        "copy",
        "--all",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{name}"),
    ]);
    let raw = skopeo_raw(&name);
    assert!(
        raw.contains("image.index.v1") && raw.contains("arm64"),
        "{raw}"
    );

    let host = kiln_core_host_arch();
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Architecture"], host);
    let repo_digest = p.inspect(&name)["RepoDigests"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        repo_digest.ends_with(&sha(raw.as_bytes())),
        "{repo_digest}: the index digest is the repo digest"
    );

    let arm = Kiln::new();
    arm.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(arm.inspect(&name)["Architecture"], "arm64");

    let err = Kiln::new().fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");

    let all = Kiln::new();
    all.ok(&["pull", "--all-platforms", &name]);
    let index = read_json(&all.root.join("index.json"));
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(all.inspect(&name)["Architecture"], host);
    assert!(all.ok(&["system", "check"]).contains("consistent"));
    // And back out whole.
    let again = format!("{}/multi/copy:1", reg.host());
    all.ok(&["tag", &name, &again]);
    all.ok(&["push", &again]);
    let raw2 = skopeo_raw(&again);
    assert_eq!(raw, raw2);
}

fn kiln_core_host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("test expects amd64 or arm64, not {other}"),
    }
}

#[test]
fn skopeo_reads_what_kiln_pushes_and_kiln_pulls_what_skopeo_pushes() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let name = format!("{}/interop/kiln:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    k.ok(&["push", &name]);
    let layout = k.path("skopeo-layout");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let index = read_json(&layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let doc = k.inspect("bb");
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(manifest_digest)).unwrap();
    // The config arrives byte for byte; skopeo compresses uncompressed
    // layers for oci: destinations, so layers are compared by content.
    assert_eq!(manifest["config"]["digest"], doc["Id"]);
    let diff_ids = &doc["RootFS"]["Layers"];
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.as_array().unwrap().len());
    for (l, diff_id) in layers.iter().zip(diff_ids.as_array().unwrap()) {
        let bytes = blob(l["digest"].as_str().unwrap());
        let content = if l["mediaType"].as_str().unwrap().ends_with("+gzip") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            bytes
        };
        assert_eq!(sha(&content), diff_id.as_str().unwrap());
    }

    // skopeo pushes a docker archive (Docker schema 2 media types)...
    let archive = k.path("bb.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "bb"]);
    let from_skopeo = format!("{}/interop/skopeo:1", reg.host());
    skopeo_copy_to_registry(
        &format!("docker-archive:{}", archive.display()),
        &from_skopeo,
    );
    let raw = skopeo_raw(&from_skopeo);
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    // ...kiln pulls it, and docker loads and runs it.
    let p = Kiln::new();
    p.ok(&["pull", &from_skopeo]);
    assert_eq!(p.inspect(&from_skopeo)["Id"], doc["Id"]);
    let saved = p.path("pulled.tar");
    p.ok(&["save", "-o", saved.to_str().unwrap(), &from_skopeo]);
    tool("docker", &["load", "-i", saved.to_str().unwrap()]);
    let out = tool(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &from_skopeo,
            "cat",
            "/etc/motd",
        ],
    );
    assert_eq!(out, "hello from kiln\n");
    let _ = run_tool("docker", &["rmi", &from_skopeo]);
}

#[test]
fn interrupted_downloads_resume_with_range_requests() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let name = format!("{}/r/bb:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    k.ok(&["push", &name]);
    let (port, log) = fault_proxy(reg.port, Fault::CutOnce);
    let via = format!("127.0.0.1:{port}/r/bb:1");
    let p = Kiln::new();
    let out = p.run(&["pull", &via]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(p.inspect(&via)["Id"], k.inspect("bb")["Id"]);
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET") && l.contains("/blobs/") && l.contains("bytes=")),
        "no Range request after the cut: {log:?}"
    );
    assert!(p.ok(&["system", "check"]).contains("consistent"));
}

#[test]
fn corrupted_blobs_are_refused_and_nothing_is_stored() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let name = format!("{}/c/bb:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    k.ok(&["push", &name]);
    let (port, _) = fault_proxy(reg.port, Fault::Corrupt);
    let p = Kiln::new();
    let err = p.fails(&["pull", &format!("127.0.0.1:{port}/c/bb:1")]);
    assert!(
        err.contains("digest") && err.contains("nothing was stored"),
        "{err}"
    );
    assert_eq!(images_listed(&p), 0);
    // Bodies under 1000 bytes (the config) pass the proxy unharmed and may
    // be stored; nothing the proxy corrupted may be.
    let big: Vec<_> = std::fs::read_dir(p.root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .filter(|len| *len >= 1000)
        .collect();
    assert!(
        big.is_empty(),
        "a corrupt blob landed in the store: {big:?}"
    );
    assert!(blob_count(&p) <= 1);
    assert!(no_ingest_left(&p));
}

/// A fake registry serving one small image per repository, each
/// repository misbehaving in its own way.
fn hostile_registry(redirect_port: u16, layer: Arc<Vec<u8>>) -> (u16, Arc<AtomicUsize>) {
    let config = serde_json::json!({
        "architecture": kiln_core_host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
        "config": {}
    })
    .to_string()
    .into_bytes();
    let manifest = |layer_type: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": sha(&layer), "size": layer.len()}]
        })
        .to_string()
        .into_bytes()
    };
    let good = manifest("application/vnd.oci.image.layer.v1.tar");
    let odd = manifest("application/x-kiln-unknown");
    // An index whose entry for this platform is another index.
    let index = |entry: &[u8], media_type: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": media_type, "digest": sha(entry), "size": entry.len(),
                           "platform": {"os": "linux", "architecture": kiln_core_host_arch()}}]
        })
        .to_string()
        .into_bytes()
    };
    let inner = index(&good, "application/vnd.oci.image.manifest.v1+json");
    let outer = index(&inner, "application/vnd.oci.image.index.v1+json");
    let flaky = Arc::new(AtomicUsize::new(0));
    let flaky2 = flaky.clone();
    let handler = move |req: &Request| -> Reply {
        let path = req.path().to_string();
        if path == "/v2/" {
            return Reply::new(200, "{}");
        }
        let parts: Vec<&str> = path.trim_start_matches("/v2/").splitn(2, '/').collect();
        let (case, rest) = (
            parts[0],
            parts
                .get(1)
                .copied()
                .unwrap_or("")
                .trim_start_matches("img/"),
        );
        let m = |bytes: &[u8]| {
            Reply::new(200, bytes.to_vec())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &sha(bytes))
        };
        let blob = |rest: &str| -> Reply {
            if rest.ends_with(&sha(&config)) {
                Reply::new(200, config.clone())
            } else {
                Reply::new(200, layer.to_vec())
            }
        };
        match case {
            "unauthorized" => Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#,
            ),
            "forbidden" => Reply::new(
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            ),
            "missing" => Reply::new(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ),
            "ratelimited" => Reply::new(429, "slow down").header("Retry-After", "0"),
            "broken" => Reply::new(500, "internal error"),
            "flaky"
                if rest.starts_with("manifests/") && flaky2.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                Reply::new(503, "try again")
            }
            "oversized" if rest.starts_with("manifests/") => {
                let mut big = b"{\"schemaVersion\":2,\"annotations\":{\"x\":\"".to_vec();
                big.extend(std::iter::repeat_n(b'a', 5 << 20));
                big.extend(b"\"}}");
                Reply::new(200, big)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            }
            "liar" if rest.starts_with("manifests/") => Reply::new(200, good.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header(
                    "Docker-Content-Digest",
                    &format!("sha256:{}", "0".repeat(64)),
                ),
            "oddtype" if rest.starts_with("manifests/") => m(&odd),
            "nested" if rest == "manifests/1" => m(&outer),
            "nested" if rest.starts_with("manifests/") => m(&inner),
            "html" if rest.starts_with("manifests/") => {
                Reply::new(200, "<html>login page</html>").header("Content-Type", "text/html")
            }
            _ if rest.starts_with("manifests/") => m(&good),
            "wrongbytes" if rest.contains(&sha(&layer)) => {
                let mut bad = layer.to_vec();
                bad[10] ^= 1;
                Reply::new(200, bad)
            }
            "toolong" if rest.contains(&sha(&layer)) => {
                let mut more = layer.to_vec();
                more.extend_from_slice(b"extra bytes");
                Reply::new(200, more)
            }
            "truncated" if rest.contains(&sha(&layer)) => {
                let mut raw = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    layer.len()
                )
                .into_bytes();
                raw.extend_from_slice(&layer[..layer.len() / 3]);
                Reply::Raw(raw)
            }
            "redirect" if rest.contains(&sha(&layer)) => Reply::new(307, "").header(
                "Location",
                &format!(
                    "http://127.0.0.1:{redirect_port}/storage/{}",
                    rest.rsplit('/').next().unwrap()
                ),
            ),
            _ if rest.starts_with("blobs/") => blob(rest),
            _ => Reply::new(404, ""),
        }
    };
    (http::serve(Arc::new(handler)), flaky)
}

#[test]
fn hostile_and_broken_registries_get_clear_errors_and_store_nothing() {
    let layer: Arc<Vec<u8>> = Arc::new((0..20_000u32).map(|i| (i * 7 % 251) as u8).collect());
    // The storage host a redirect points at (another origin).
    let storage_layer = layer.clone();
    let storage = http::serve(Arc::new(move |req: &Request| {
        if req.header("authorization").is_some() {
            return Reply::new(400, "credentials leaked to the storage host");
        }
        Reply::new(200, storage_layer.to_vec())
    }));
    let (port, flaky) = hostile_registry(storage, layer.clone());
    let pull = |case: &str| {
        let k = Kiln::new();
        let out = k.run(&["pull", &format!("127.0.0.1:{port}/{case}/img:1")]);
        (k, out)
    };

    let cases: &[(&str, &[&str])] = &[
        ("unauthorized", &["authentication required", "kiln login"]),
        (
            "forbidden",
            &["denied", "requested access to the resource is denied"],
        ),
        ("missing", &["not found", "MANIFEST_UNKNOWN"]),
        ("ratelimited", &["kept answering 429", "attempts"]),
        ("broken", &["kept answering 500"]),
        ("oversized", &["larger than 4194304 bytes"]),
        ("liar", &["digest", "expected sha256:0000"]),
        (
            "oddtype",
            &["application/x-kiln-unknown", "does not handle"],
        ),
        ("html", &["not JSON"]),
        ("nested", &["nested indexes are not supported"]),
        ("wrongbytes", &["digest", "nothing was stored"]),
        ("toolong", &["bytes", "descriptor says 20000"]),
        ("truncated", &["broke off"]),
    ];
    for (case, wanted) in cases {
        let (k, out) = pull(case);
        assert!(!out.status.success(), "{case}: pull should fail");
        let err = stderr_of(&out);
        for w in *wanted {
            assert!(err.contains(w), "{case}: {w:?} not in: {err}");
        }
        assert_eq!(images_listed(&k), 0, "{case}: something was tagged");
        assert!(no_ingest_left(&k), "{case}: ingest files left");
        // The config may be stored (it was verified); the layer must not be.
        let layer_path = k.root.join("blobs/sha256").join(&sha(&layer)[7..]);
        assert!(
            !layer_path.exists(),
            "{case}: the layer landed in the store"
        );
    }

    // Retried once after a 503, then fine.
    let (k, out) = pull("flaky");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(flaky.load(Ordering::SeqCst) >= 2);
    assert_eq!(images_listed(&k), 1);
    // Blob downloads follow redirects to another host, without credentials.
    let (k, out) = pull("redirect");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(images_listed(&k), 1);
}

#[test]
fn copy_between_layouts_archives_registries_and_the_store() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let id = k.inspect("bb")["Id"].clone();
    let layout = k.path("layout");
    k.ok(&["copy", "kiln:bb", &format!("oci:{}:v1", layout.display())]);
    // umoci reads the layout kiln wrote.
    let bundle = k.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:v1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/motd")).unwrap(),
        "hello from kiln\n"
    );

    let remote = format!("{}/copy/bb:1", reg.host());
    k.ok(&[
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{remote}"),
    ]);
    let oci_archive = k.path("bb-oci.tar");
    k.ok(&[
        "copy",
        &format!("docker://{remote}"),
        &format!("oci-archive:{}:bb:1", oci_archive.display()),
    ]);
    let docker_archive = k.path("bb-docker.tar");
    k.ok(&[
        "copy",
        &format!("oci-archive:{}", oci_archive.display()),
        &format!("docker-archive:{}:bb:2", docker_archive.display()),
    ]);
    // docker loads what kiln wrote.
    tool("docker", &["load", "-i", docker_archive.to_str().unwrap()]);
    let out = tool(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "bb:2",
            "cat",
            "/etc/motd",
        ],
    );
    assert_eq!(out, "hello from kiln\n");
    let _ = run_tool("docker", &["rmi", "bb:2"]);

    let fresh = Kiln::new();
    fresh.ok(&[
        "copy",
        &format!("docker-archive:{}", docker_archive.display()),
        "kiln:copied:1",
    ]);
    assert_eq!(fresh.inspect("copied:1")["Id"], id);
    fresh.ok(&["copy", &format!("docker://{remote}"), "kiln:direct:1"]);
    assert_eq!(fresh.inspect("direct:1")["Id"], id);
    assert!(fresh.ok(&["system", "check"]).contains("consistent"));

    // A tampered layout blob is caught on the way in.
    let index = read_json(&layout.join("index.json"));
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read_json(&layout.join("blobs/sha256").join(&m[7..]));
    let l = manifest["layers"][0]["digest"].as_str().unwrap();
    std::fs::write(layout.join("blobs/sha256").join(&l[7..]), b"tampered").unwrap();
    let err = fresh.fails(&[
        "copy",
        &format!("oci:{}:v1", layout.display()),
        "kiln:tampered:1",
    ]);
    assert!(
        err.contains("content verification failed") || err.contains("digest"),
        "{err}"
    );
    let err = fresh.fails(&["copy", "bogus:x", "kiln:y"]);
    assert!(err.contains("unknown transport"), "{err}");
}

#[test]
fn build_pulls_a_missing_base_image() {
    let reg = Registry::start(Auth::Anonymous);
    let k = kiln_with_image("bb");
    let base = format!("{}/base/bb:1", reg.host());
    k.ok(&["tag", "bb", &base]);
    k.ok(&["push", &base]);
    let b = Kiln::new();
    let ctx = b.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY hello /hello\n"),
    )
    .unwrap();
    std::fs::write(ctx.join("hello"), "hi\n").unwrap();
    let out = b.run(&["build", "-t", "built", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("not in the store"));
    assert_eq!(b.inspect(&base)["Id"], k.inspect("bb")["Id"]);
    // A base nobody has is an error that names it.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/base/none:1\n", reg.host()),
    )
    .unwrap();
    let err = b.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("base/none") && err.contains("not found"),
        "{err}"
    );
}

/// A registry that only takes chunked uploads (as `OCI-Chunk-Min-Length`
/// asks), checking each chunk's range and the final digest.
/// (start, length) of each PATCH a registry received.
type PatchLog = Arc<std::sync::Mutex<Vec<(usize, usize)>>>;

fn chunked_registry(min: usize) -> (u16, PatchLog) {
    let uploads = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let patches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let patches2 = patches.clone();
    let handler = move |req: &Request| -> Reply {
        let path = req.path().to_string();
        let location = "/v2/chunked/img/blobs/uploads/u1";
        match req.method.as_str() {
            "HEAD" => Reply::new(404, ""),
            "POST" => {
                uploads.lock().unwrap().clear();
                Reply::new(202, "")
                    .header("Location", location)
                    .header("OCI-Chunk-Min-Length", &min.to_string())
            }
            "PATCH" => {
                let Some((start, end)) = req
                    .header("content-range")
                    .and_then(|r| r.split_once('-'))
                    .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
                else {
                    return Reply::new(400, "chunked uploads only: Content-Range missing");
                };
                let mut data = uploads.lock().unwrap();
                if start != data.len() || end + 1 - start != req.body.len() {
                    return Reply::new(416, "bad range");
                }
                data.extend_from_slice(&req.body);
                patches2.lock().unwrap().push((start, req.body.len()));
                Reply::new(202, "")
                    .header("Location", location)
                    .header("Range", &format!("0-{}", data.len() - 1))
            }
            "PUT" if path.contains("/blobs/uploads/") => {
                let data = uploads.lock().unwrap();
                let want = req.query("digest").pop().unwrap_or_default();
                let mut all = data.clone();
                all.extend_from_slice(&req.body);
                if sha(&all) != want {
                    return Reply::new(
                        400,
                        r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch"}]}"#,
                    );
                }
                Reply::new(201, "")
            }
            "PUT" => Reply::new(201, "").header("Docker-Content-Digest", &sha(&req.body)),
            _ => Reply::new(404, ""),
        }
    };
    (http::serve(Arc::new(handler)), patches)
}

#[test]
fn large_blobs_stream_or_go_in_chunks_when_the_registry_asks() {
    let k = Kiln::new();
    // 12 MB of incompressible content: above the one-PUT limit.
    let mut state = 0x2545F4914F6CDD1Du64;
    let big: Vec<u8> = (0..12_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    k.import_busybox("big", &[("big.bin", &big)], &[]);

    let min = 1 << 20;
    let (port, patches) = chunked_registry(min);
    let name = format!("127.0.0.1:{port}/chunked/img:1");
    k.ok(&["tag", "big", &name]);
    let out = k.run(&["push", &name]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let patches = patches.lock().unwrap().clone();
    assert!(patches.len() >= 2, "one big layer went up in {patches:?}");
    for (_, len) in &patches[..patches.len() - 1] {
        assert!(
            *len >= min,
            "a chunk under the registry's minimum: {patches:?}"
        );
    }

    // The real registry takes it as one streamed PATCH; pull it back whole.
    let reg = Registry::start(Auth::Anonymous);
    let real = format!("{}/big/img:1", reg.host());
    k.ok(&["tag", "big", &real]);
    k.ok(&["push", &real]);
    let p = Kiln::new();
    p.ok(&["pull", &real]);
    assert_eq!(p.inspect(&real)["Id"], k.inspect("big")["Id"]);
    assert!(p.ok(&["system", "check"]).contains("consistent"));
}

#[test]
fn tls_registries_need_a_trusted_certificate() {
    let (reg, cert) = Registry::start_tls();
    let k = kiln_with_image("bb");
    let name = format!("{}/tls/bb:1", reg.host());
    k.ok(&["tag", "bb", &name]);
    // Not trusted: refused, saying why.
    let err = k.fails(&["push", &name]);
    assert!(
        err.contains("not trusted") && err.contains("--ca-cert"),
        "{err}"
    );
    // Trusted with --ca-cert: push and pull over TLS.
    k.ok(&["push", "--ca-cert", cert.to_str().unwrap(), &name]);
    let p = Kiln::new();
    p.ok(&["pull", "--ca-cert", cert.to_str().unwrap(), &name]);
    assert_eq!(p.inspect(&name)["Id"], k.inspect("bb")["Id"]);
    // --insecure-registry speaks plain HTTP, which a TLS registry refuses.
    let err = Kiln::new().fails(&["pull", "--insecure-registry", &reg.host(), &name]);
    assert!(!err.is_empty());
}
