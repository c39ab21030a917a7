//! Hostile clients: oversized manifests, wrong digests, uploads that stop
//! halfway, two clients interleaving chunks on one upload, path tricks in
//! repository names, and slowloris connections. None of them gets
//! anything unverified stored, and none blocks the other clients.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{bytes, digest, manifest, server, sha256, Client};
use kiln_registry::gc::{collect, GcOptions};
use kiln_registry::Storage;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn now_gc() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    }
}

/// Every file under `dir`.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn oversized_manifest_is_refused_and_nothing_is_stored() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let (config, layer) = (bytes(1, 10), bytes(2, 10));
    c.upload("big", &config).await.unwrap();
    c.upload("big", &layer).await.unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&manifest(&config, &[&layer], None)).unwrap();
    m["annotations"] = serde_json::json!({"padding": "x".repeat(4 * 1024 * 1024 + 10)});
    let body = serde_json::to_vec(&m).unwrap();
    let (status, err) = c.put_manifest("big", "v1", &body).await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["errors"][0]["code"], "SIZE_INVALID");
    assert!(s.storage.list_manifests("big").unwrap().is_empty());
    assert!(s.storage.blob_size(&digest(&body)).unwrap().is_none());
}

#[tokio::test]
async fn wrong_digests_store_nothing() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let body = bytes(3, 4096);
    let claimed = sha256(b"something else");
    // Monolithic.
    let r = s
        .client
        .post(format!("{}/v2/w/blobs/uploads/?digest={claimed}", s.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Chunked, finished with a wrong digest.
    let r = s
        .client
        .post(format!("{}/v2/w/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = s
        .client
        .put(format!("{}{loc}?digest={claimed}", s.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["errors"][0]["code"], "DIGEST_INVALID");
    // A manifest under another digest.
    c.upload("w", &body).await.unwrap();
    let m = manifest(&body, &[], None);
    let (status, _) = c.put_manifest("w", &claimed, &m).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let root = s.dir.path().join("registry");
    let blobs: Vec<_> = files(&root.join("blobs"));
    assert_eq!(blobs.len(), 1, "only the honest upload: {blobs:?}");
    assert!(files(&root.join("uploads")).is_empty());
    assert!(s.storage.list_manifests("w").unwrap().is_empty());
}

#[tokio::test]
async fn an_upload_that_stops_halfway_is_invisible_and_swept() {
    let s = server(None).await;
    let blob = bytes(4, 100_000);
    let r = s
        .client
        .post(format!("{}/v2/half/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    // The client promises the whole blob, sends half, and vanishes.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PUT {loc}?digest={} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        sha256(&blob),
        s.addr,
        blob.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&blob[..50_000]).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    assert!(!c.blob_exists("half", &blob).await.unwrap());
    assert!(s.storage.blob_size(&digest(&blob)).unwrap().is_none());
    // The session survives (a client may resume), until GC's grace ends.
    assert_eq!(s.storage.list_uploads().unwrap().len(), 1);
    let report = collect(&*s.storage, &now_gc()).unwrap();
    assert_eq!(report.garbage.len(), 1, "{:?}", report.garbage);
    assert!(s.storage.list_uploads().unwrap().is_empty());
    let (status, _) = c.get(&loc).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_chunks_of_two_clients_never_store_a_wrong_blob() {
    let s = server(None).await;
    for round in 0..10u64 {
        let r = s
            .client
            .post(format!("{}/v2/mix/blobs/uploads/", s.base))
            .send()
            .await
            .unwrap();
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let mut clients = Vec::new();
        for who in 0..2u64 {
            let (base, http, loc) = (s.base.clone(), s.client.clone(), loc.clone());
            let blob = bytes(round * 10 + who + 100, 64 * 1024);
            clients.push(tokio::spawn(async move {
                let chunk = 8 * 1024;
                let mut refused = false;
                for (n, part) in blob.chunks(chunk).enumerate() {
                    let start = n * chunk;
                    let r = http
                        .patch(format!("{base}{loc}"))
                        .header(
                            "content-range",
                            format!("{start}-{}", start + part.len() - 1),
                        )
                        .body(part.to_vec())
                        .send()
                        .await
                        .unwrap();
                    // 416: the other client's chunk came first; 404: the
                    // other client already finished (or failed) the upload.
                    if [StatusCode::RANGE_NOT_SATISFIABLE, StatusCode::NOT_FOUND]
                        .contains(&r.status())
                    {
                        refused = true;
                        break;
                    }
                    assert_eq!(r.status(), StatusCode::ACCEPTED);
                }
                let r = http
                    .put(format!("{base}{loc}?digest={}", sha256(&blob)))
                    .send()
                    .await
                    .unwrap();
                (refused, r.status(), blob)
            }));
        }
        let mut created = 0;
        let mut refused = 0;
        for t in clients {
            let (was_refused, status, blob) = t.await.unwrap();
            refused += usize::from(was_refused);
            if status == StatusCode::CREATED {
                created += 1;
                let (st, got) = Client {
                    base: &s.base,
                    http: &s.client,
                }
                .get(&format!("/v2/mix/blobs/{}", sha256(&blob)))
                .await
                .unwrap();
                assert_eq!(st, StatusCode::OK);
                assert_eq!(sha256(&got), sha256(&blob));
            }
        }
        assert!(
            refused >= 1,
            "round {round}: both clients wrote every chunk"
        );
        assert!(created <= 1);
    }
    assert!(common::violations(&*s.storage, &s.dir.path().join("registry")).is_empty());
}

#[tokio::test]
async fn path_tricks_in_names_reach_nothing() {
    let s = server(None).await;
    let long = vec!["a"; 300].join("/");
    let paths = [
        "/v2/../../etc/blobs/uploads/".to_string(),
        "/v2/%2e%2e/%2e%2e/etc/blobs/uploads/".to_string(),
        "/v2/a/%2e%2e/b/blobs/uploads/".to_string(),
        "/v2//etc/passwd/blobs/uploads/".to_string(),
        "/v2/%2fetc/blobs/uploads/".to_string(),
        "/v2/a/..%2f..%2f/blobs/uploads/".to_string(),
        "/v2/_layers/x/blobs/uploads/".to_string(),
        format!("/v2/{long}/blobs/uploads/"),
        format!("/v2/{}/blobs/uploads/", "b".repeat(70_000)),
    ];
    for p in &paths {
        // Raw, so no client library normalises the path first.
        let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let req = format!(
            "POST {p}?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            sha256(b"{}")
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = conn.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out);
        let status: u16 = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            (400..500).contains(&status) || status == 0,
            "{p}: {}",
            out.lines().next().unwrap_or("")
        );
    }
    let root = s.dir.path().join("registry");
    assert!(s.storage.repositories().unwrap().is_empty());
    assert!(files(&root).is_empty(), "{:?}", files(&root));
    // Nothing landed beside the registry either.
    let beside: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("registry")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_do_not_block_other_clients() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    // 200 connections each dribbling a request's headers a byte at a time.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let addr = s.addr;
        slow.push(tokio::spawn(async move {
            let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            for b in b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter() {
                if conn.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile an honest client pushes and pulls an image promptly.
    let started = Instant::now();
    let (config, layer) = (bytes(5, 100), bytes(6, 1 << 20));
    assert_eq!(
        c.upload("fast", &config).await.unwrap(),
        StatusCode::CREATED
    );
    assert_eq!(c.upload("fast", &layer).await.unwrap(), StatusCode::CREATED);
    let m = manifest(&config, &[&layer], None);
    assert_eq!(
        c.put_manifest("fast", "v1", &m).await.unwrap().0,
        StatusCode::CREATED
    );
    c.pull_verify("fast", "v1", &m).await.unwrap();
    let took = started.elapsed();
    for t in &slow {
        t.abort();
    }
    assert!(
        took < Duration::from_secs(5),
        "an honest push took {took:?}"
    );
}
