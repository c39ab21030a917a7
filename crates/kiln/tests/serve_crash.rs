//! Crash safety of `kiln serve` (issue 15): SIGKILL the server while 10
//! clients push concurrently (chunked uploads of several MiB, shared
//! layers, manifests); restart it on the same directory. Every push that
//! got its 201 pulls with every byte verified; nothing half-made is
//! visible (no tag naming a missing manifest, no manifest naming a missing
//! blob, no blob whose bytes are not its digest); and `kiln serve gc`
//! afterwards — dry first, then for real — removes the leftovers (upload
//! sessions, staging files, blobs no manifest names) and nothing else.
//! All traffic stays on 127.0.0.1; the servers are killed when a test ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Kiln;
use kiln_registry::{FsStorage, Storage};

/// A completed push: repository, tag, manifest bytes.
type Pushed = (String, String, Vec<u8>);

struct Server {
    child: Child,
    host: String,
}

impl Server {
    fn start(kiln: &Kiln, data: &Path) -> Server {
        let (child, host) = common::serve::listening(
            kiln.cmd()
                .args(["serve", "--addr", "127.0.0.1:0", "--data"])
                .arg(data),
            None,
        );
        Server { child, host }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

fn bytes(seed: u64, n: usize) -> Vec<u8> {
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

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// One HTTP/1.1 request on its own connection.
fn http(
    host: &str,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut c = TcpStream::connect(host)?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let ctype = ctype
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{ctype}Accept: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    c.write_all(body)?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

fn failed(what: &str, r: &Reply) -> std::io::Error {
    std::io::Error::other(format!(
        "{what}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    ))
}

/// A chunked upload (POST, PATCHes of 256 KiB, PUT with the digest).
fn upload(host: &str, repo: &str, blob: &[u8]) -> std::io::Result<()> {
    let r = http(
        host,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        None,
        b"",
    )?;
    if r.status != 202 {
        return Err(failed("POST", &r));
    }
    let mut loc = r.headers["location"].clone();
    for (n, chunk) in blob.chunks(256 << 10).enumerate() {
        let start = n * (256 << 10);
        let mut c = TcpStream::connect(host)?;
        write!(
            c,
            "PATCH {loc} HTTP/1.1\r\nHost: {host}\r\nContent-Range: {start}-{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            start + chunk.len() - 1,
            chunk.len()
        )?;
        c.write_all(chunk)?;
        let mut raw = Vec::new();
        c.read_to_end(&mut raw)?;
        if !raw.starts_with(b"HTTP/1.1 202") {
            return Err(std::io::Error::other("PATCH refused"));
        }
        let head = String::from_utf8_lossy(&raw);
        if let Some(l) = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        {
            loc = l[9..].trim().to_string();
        }
    }
    let r = http(
        host,
        "PUT",
        &format!("{loc}?digest={}", sha256(blob)),
        None,
        b"",
    )?;
    if r.status != 201 {
        return Err(failed("PUT", &r));
    }
    Ok(())
}

fn manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let desc = |t: &str, b: &[u8]| serde_json::json!({"mediaType": t, "digest": sha256(b), "size": b.len()});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// Pulls `repo:tag`, checking it is `expected` and every blob verifies.
fn pull_verify(host: &str, repo: &str, tag: &str, expected: &[u8]) {
    let r = http(
        host,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{repo}:{tag}");
    assert_eq!(r.body, expected, "{repo}:{tag}");
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut named = vec![doc["config"].clone()];
    named.extend(doc["layers"].as_array().cloned().unwrap());
    for d in named {
        let digest = d["digest"].as_str().unwrap();
        let r = http(
            host,
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            None,
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{repo}:{tag} blob {digest}");
        assert_eq!(sha256(&r.body), digest, "{repo}:{tag} blob bytes");
    }
}

/// Tags naming missing manifests, manifests naming missing blobs, blobs
/// whose bytes are not their digest; and the blobs no manifest names.
fn audit(data: &Path) -> (Vec<String>, usize) {
    let storage = FsStorage::open(data).unwrap();
    let mut bad = Vec::new();
    let mut named = std::collections::HashSet::new();
    for repo in storage.repositories().unwrap() {
        for tag in storage.tags(&repo).unwrap().unwrap_or_default() {
            let d = storage.resolve_tag(&repo, &tag).unwrap().unwrap();
            if storage.manifest(&repo, &d).unwrap().is_none() {
                bad.push(format!("{repo}:{tag} names a missing manifest"));
            }
        }
        for m in storage.list_manifests(&repo).unwrap() {
            named.insert(m.digest.to_string());
            let Some((_, bytes)) = storage.manifest(&repo, &m.digest).unwrap() else {
                bad.push(format!("{repo}@{} has no bytes", m.digest));
                continue;
            };
            let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let mut descs = vec![doc["config"].clone()];
            descs.extend(doc["layers"].as_array().cloned().unwrap_or_default());
            for d in descs {
                let s = d["digest"].as_str().unwrap();
                named.insert(s.to_string());
                if storage.blob_size(&s.parse().unwrap()).unwrap().is_none() {
                    bad.push(format!("{repo}@{} names missing blob {s}", m.digest));
                }
            }
        }
    }
    let mut orphans = 0;
    for b in storage.list_blobs().unwrap() {
        let path = data.join("blobs/sha256").join(b.digest.hex());
        if sha256(&std::fs::read(&path).unwrap()) != b.digest.to_string() {
            bad.push(format!("blob {} has other bytes", b.digest));
        }
        orphans += usize::from(!named.contains(&b.digest.to_string()));
    }
    (bad, orphans)
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn kill_9_during_ten_pushes_loses_nothing_completed_and_gc_cleans_up() {
    let kiln = Kiln::new();
    let data = kiln.dir.path().join("registry");
    let server = Server::start(&kiln, &data);
    let host = server.host.clone();
    let shared = Arc::new(bytes(7, 1 << 20));
    let done: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let mut pushers = Vec::new();
    for client in 0..10u64 {
        let (host, shared, done) = (host.clone(), shared.clone(), done.clone());
        pushers.push(std::thread::spawn(move || {
            let repo = format!("crash/c{}", client % 4);
            for i in 0.. {
                let seed = client * 1000 + i;
                let config = bytes(seed, 300);
                let layer = bytes(seed + 100_000, 3 << 20);
                let push = || -> std::io::Result<Vec<u8>> {
                    upload(&host, &repo, &config)?;
                    upload(&host, &repo, &shared)?;
                    upload(&host, &repo, &layer)?;
                    let m = manifest(&config, &[&shared, &layer]);
                    let r = http(
                        &host,
                        "PUT",
                        &format!("/v2/{repo}/manifests/t{client}-{i}"),
                        Some("application/vnd.oci.image.manifest.v1+json"),
                        &m,
                    )?;
                    if r.status != 201 {
                        return Err(failed("manifest PUT", &r));
                    }
                    Ok(m)
                };
                match push() {
                    Ok(m) => done
                        .lock()
                        .unwrap()
                        .push((repo.clone(), format!("t{client}-{i}"), m)),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once some pushes completed, with the others mid-flight.
    let started = Instant::now();
    while done.lock().unwrap().len() < 10 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for p in pushers {
        p.join().unwrap();
    }
    drop(server);
    let done = std::mem::take(&mut *done.lock().unwrap());
    assert!(done.len() >= 10, "only {} pushes completed", done.len());

    let (bad, orphans) = audit(&data);
    assert_eq!(bad, Vec::<String>::new());
    let leftovers = entries(&data.join("uploads")) + entries(&data.join("tmp")) + orphans;
    assert!(leftovers > 0, "the kill left nothing half-done to clean");

    let server = Server::start(&kiln, &data);
    for (repo, tag, m) in &done {
        pull_verify(&server.host, repo, tag, m);
    }
    drop(server);

    // A dry run reports and changes nothing.
    let before = (
        entries(&data.join("uploads")),
        entries(&data.join("tmp")),
        entries(&data.join("blobs/sha256")),
    );
    let dry = kiln.ok(&[
        "serve",
        "gc",
        "--dry-run",
        "--grace",
        "0s",
        data.to_str().unwrap(),
    ]);
    assert!(dry.contains("would delete"), "{dry}");
    let after = (
        entries(&data.join("uploads")),
        entries(&data.join("tmp")),
        entries(&data.join("blobs/sha256")),
    );
    assert_eq!(before, after);

    let wet = kiln.ok(&["serve", "gc", "--grace", "0s", data.to_str().unwrap()]);
    let deleted = wet
        .lines()
        .filter(|l| l.starts_with("deleted ") && l.contains(": "))
        .count();
    assert_eq!(
        deleted,
        dry.lines()
            .filter(|l| l.starts_with("would delete ") && l.contains(": "))
            .count(),
        "{wet}"
    );
    assert_eq!(entries(&data.join("uploads")), 0, "{wet}");
    assert_eq!(entries(&data.join("tmp")), 0, "{wet}");
    let (bad, orphans) = audit(&data);
    assert_eq!(bad, Vec::<String>::new());
    assert_eq!(orphans, 0, "{wet}");

    let server = Server::start(&kiln, &data);
    for (repo, tag, m) in &done {
        pull_verify(&server.host, repo, tag, m);
    }
    eprintln!(
        "crash: {} pushes completed before the kill; gc removed {deleted} leftovers",
        done.len()
    );
}

#[test]
fn gc_refuses_a_directory_that_is_not_a_registry() {
    let kiln = Kiln::new();
    let out = kiln.run(&["serve", "gc", kiln.dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a registry directory"), "{err}");
    let out = kiln.run(&["serve", "gc", "--grace", "soon", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
}
