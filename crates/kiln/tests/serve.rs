//! `kiln serve` end to end with real clients: kiln push/pull, skopeo both
//! ways, docker push/pull (127.0.0.1 is an insecure registry to docker by
//! default), hostile requests, and a graceful stop. Every server a test
//! starts is stopped when the test ends; all traffic stays on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Child;

use common::{run_tool, skopeo_copy_to_registry, skopeo_raw, tool, Kiln};

const DOCKER: &str = "/usr/bin/docker";

/// A `kiln serve` on a free loopback port, with its own root.
struct Serve {
    child: Child,
    port: u16,
    kiln: Kiln,
}

impl Serve {
    fn start() -> Serve {
        Serve::start_with(&[])
    }

    fn start_with(args: &[&str]) -> Serve {
        let kiln = Kiln::new();
        let (child, host) = common::serve::listening(
            kiln.cmd()
                .args(["serve", "--addr", "127.0.0.1:0"])
                .args(args),
            None,
        );
        let port = host
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a loopback address: {host}"));
        Serve { child, port, kiln }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `request` as written; returns the status code and the body.
    fn raw(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut c = std::net::TcpStream::connect(self.host()).unwrap();
        write!(
            c,
            "{head} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host(),
            body.len()
        )
        .unwrap();
        c.write_all(body).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        let status = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    }

    /// SIGTERM; the exit status and what it printed.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        tool("kill", &["-TERM", &self.child.id().to_string()]);
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let _ = out.read_to_string(&mut rest);
        }
        (status, rest)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

fn kiln_with_image(name: &str) -> Kiln {
    let k = Kiln::new();
    k.import_busybox(name, &[("etc/motd", b"hello from kiln\n")], &[]);
    k
}

#[test]
fn kiln_pushes_and_pulls_through_kiln_serve() {
    let s = Serve::start();
    let k = kiln_with_image("bb");
    let name = format!("{}/team/bb:1", s.host());
    k.ok(&["tag", "bb", &name]);
    k.ok(&["push", &name]);
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Id"], k.inspect("bb")["Id"]);
    // The same layers pushed to another repository are stored once.
    let other = format!("{}/other/bb:2", s.host());
    k.ok(&["tag", "bb", &other]);
    k.ok(&["push", &other]);
    let blobs = s.kiln.root.join("registry/blobs/sha256");
    let before = std::fs::read_dir(&blobs).unwrap().count();
    let (code, body) = s.raw("GET /v2/_catalog", b"");
    assert_eq!(code, 200);
    assert_eq!(body, r#"{"repositories":["other/bb","team/bb"]}"#);
    let (code, body) = s.raw("GET /v2/team/bb/tags/list", b"");
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"name":"team/bb","tags":["1"]}"#)
    );
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), before);
    let (status, out) = s.stop();
    assert!(status.success(), "{status:?}");
    assert!(out.contains("stopped"), "{out}");
}

#[test]
fn skopeo_copies_both_ways() {
    let s = Serve::start();
    let k = kiln_with_image("bb");
    let archive = k.path("bb.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "bb"]);
    let name = format!("{}/interop/skopeo:1", s.host());
    skopeo_copy_to_registry(&format!("docker-archive:{}", archive.display()), &name);
    let layout = k.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    assert!(layout.join("index.json").exists());
    // And kiln reads what skopeo pushed.
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Id"], k.inspect("bb")["Id"]);
    // skopeo copies between two repositories of kiln serve (mounts).
    let copy = format!("{}/interop/copy:2", s.host());
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{name}"),
            &format!("docker://{copy}"),
        ],
    );
    let raw = skopeo_raw(&copy);
    assert!(raw.contains("schemaVersion"), "{raw}");
}

#[test]
fn docker_pushes_and_pulls_through_kiln_serve() {
    let s = Serve::start();
    let k = kiln_with_image("bb");
    let archive = k.path("bb.tar");
    let name = format!("{}/docker/bb:1", s.host());
    k.ok(&["tag", "bb", &name]);
    k.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    tool(DOCKER, &["load", "-i", archive.to_str().unwrap()]);
    let pushed = run_tool(DOCKER, &["push", &name]);
    let _ = run_tool(DOCKER, &["rmi", &name]);
    assert!(
        pushed.status.success(),
        "docker push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    tool(DOCKER, &["pull", &name]);
    let out = run_tool(
        DOCKER,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "cat",
            "/etc/motd",
        ],
    );
    let _ = run_tool(DOCKER, &["rmi", &name]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from kiln\n");
    // kiln pulls what docker pushed.
    let p = Kiln::new();
    p.ok(&["pull", &name]);
}

#[test]
fn hostile_requests_store_nothing() {
    let s = Serve::start();
    // A wrong digest.
    let wrong = sha256(b"not this");
    let (code, body) = s.raw(
        &format!("POST /v2/h/blobs/uploads/?digest={wrong}"),
        b"content",
    );
    assert_eq!(code, 400);
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    let (code, _) = s.raw(&format!("HEAD /v2/h/blobs/{wrong}"), b"");
    assert_eq!(code, 404);
    // A manifest naming a blob the repository does not hold.
    let missing = sha256(b"missing");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{missing}","size":7}},"layers":[]}}"#
    );
    let (code, body) = s.raw("PUT /v2/h/manifests/latest", manifest.as_bytes());
    assert_eq!(code, 400);
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    // An oversized manifest.
    let big = vec![b' '; 5 * 1024 * 1024];
    let (code, _) = s.raw("PUT /v2/h/manifests/big", &big);
    assert_eq!(code, 413);
    // Names that try to leave the registry's directories.
    for path in [
        "/v2/../../etc/blobs/uploads/",
        "/v2/a/%2e%2e/%2e%2e/b/blobs/uploads/",
        "/v2/a%2F..%2Fb/blobs/uploads/",
        "/v2/UPPER/blobs/uploads/",
        "/v2/_x/blobs/uploads/",
    ] {
        let (code, _) = s.raw(&format!("POST {path}"), b"");
        assert!((400..500).contains(&code), "{path}: {code}");
    }
    let registry = s.kiln.root.join("registry");
    for dir in ["blobs", "uploads", "repositories", "tmp"] {
        assert_eq!(
            std::fs::read_dir(registry.join(dir)).unwrap().count(),
            0,
            "{dir}"
        );
    }
    assert!(!s.kiln.root.join("etc").exists());
}

#[test]
fn htpasswd_logins_for_kiln_docker_and_skopeo() {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = work.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        tool("htpasswd", &["-Bbn", "kiln", "s3cret-pass"]),
    )
    .unwrap();
    let s = Serve::start_with(&["--htpasswd", htpasswd.to_str().unwrap()]);
    let k = kiln_with_image("bb");
    let name = format!("{}/secure/bb:1", s.host());
    k.ok(&["tag", "bb", &name]);
    let config = work.path().join("docker-config");
    let config_env = [("DOCKER_CONFIG", config.to_str().unwrap())];
    let out = k
        .cmd()
        .args(["push", &name])
        .envs(config_env)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdin = work.path().join("password");
    std::fs::write(&stdin, "s3cret-pass\n").unwrap();
    let out = k
        .cmd()
        .args(["login", "-u", "kiln", "--password-stdin", &s.host()])
        .envs(config_env)
        .stdin(std::fs::File::open(&stdin).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k.ok_with_env(&["push", &name], &config_env);
    // docker logs in with the same file and pulls what kiln pushed.
    let docker_config = work.path().join("docker-cli");
    let dc = docker_config.to_str().unwrap();
    let out = run_tool(
        DOCKER,
        &[
            "--config",
            dc,
            "login",
            "-u",
            "kiln",
            "-p",
            "s3cret-pass",
            &s.host(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled = run_tool(DOCKER, &["--config", dc, "pull", &name]);
    let _ = run_tool(DOCKER, &["rmi", &name]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    // skopeo with credentials, and without them refused.
    let raw = format!("docker://{name}");
    let out = run_tool(
        "skopeo",
        &["inspect", "--raw", "--tls-verify=false", "--no-creds", &raw],
    );
    assert!(!out.status.success());
    tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "kiln:s3cret-pass",
            &raw,
        ],
    );
}

#[test]
fn immutable_tags_refuse_a_second_push() {
    let s = Serve::start_with(&["--immutable-tags", "release/*"]);
    let k = kiln_with_image("one");
    k.import_busybox("two", &[("etc/motd", b"another\n")], &[]);
    let name = format!("{}/release/app:1.0", s.host());
    k.ok(&["tag", "one", &name]);
    k.ok(&["push", &name]);
    k.ok(&["push", &name]);
    k.ok(&["tag", "two", &name]);
    let err = k.fails(&["push", &name]);
    assert!(err.contains("immutable"), "{err}");
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Id"], k.inspect("one")["Id"]);
    // Elsewhere tags move.
    let dev = format!("{}/dev/app:1.0", s.host());
    k.ok(&["tag", "one", &dev]);
    k.ok(&["push", &dev]);
    k.ok(&["tag", "two", &dev]);
    k.ok(&["push", &dev]);
}

#[test]
fn clients_hanging_up_mid_download_do_not_stop_the_server() {
    let s = Serve::start();
    let blob = vec![7u8; 20 << 20];
    let d = sha256(&blob);
    let (code, _) = s.raw(&format!("POST /v2/big/blobs/uploads/?digest={d}"), &blob);
    assert_eq!(code, 201);
    for _ in 0..5 {
        let mut c = std::net::TcpStream::connect(s.host()).unwrap();
        write!(c, "GET /v2/big/blobs/{d} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut some = [0u8; 4096];
        c.read_exact(&mut some).unwrap();
        drop(c);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, _) = s.raw("GET /v2/", b"");
    assert_eq!(code, 200);
    let (status, _) = s.stop();
    assert!(status.success(), "{status:?}");
}
