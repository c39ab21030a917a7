//! The object storage on a real S3 implementation: a 3-node Garage cluster
//! on 127.0.0.1 (`garage/cluster.rs`; `garage` must be installed, see
//! `scripts/setup.sh`). The shared storage suite runs on it, and stateless
//! replicas share one bucket: an upload started on one replica continues
//! on another and is pulled through a third, and a push survives a dead
//! Garage node and a replica killed mid-chunk with nothing half-written
//! ever visible.
#![allow(clippy::unwrap_used)]

#[path = "garage/cluster.rs"]
mod cluster;
mod common;

use std::sync::Arc;
use std::time::Duration;

use cluster::Cluster;
use common::sha256;
use kiln_registry::Storage;
use reqwest::StatusCode;

const SECRET: &[u8] = b"replicas share this upload secret";

/// A `kiln serve` replica in this process, over its own `ObjectStorage`
/// (its own S3 client) and on its own runtime: replicas share only the
/// bucket and the upload secret. Dropping it shuts its runtime down, every
/// connection task with it, as a killed process stops: requests cut
/// mid-body.
struct Replica {
    base: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    async fn start(storage: kiln_registry::ObjectStorage) -> Replica {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let options = kiln_registry::Options {
            upload_secret: Some(SECRET.to_vec()),
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            kiln_registry::serve(listener, Arc::new(storage), options, std::future::pending()).await
        });
        Replica {
            base,
            runtime: Some(runtime),
        }
    }

    fn url(&self, location: &str) -> String {
        format!("{}{location}", self.base)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

fn blob(len: usize, seed: u8) -> Vec<u8> {
    kiln_registry::testsuite::pattern(len, seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_suite_passes_on_garage() {
    let cluster = tokio::task::block_in_place(Cluster::start);
    let n = std::sync::atomic::AtomicUsize::new(0);
    // A fresh prefix per check: each sees an empty registry.
    kiln_registry::testsuite::run_all(|| {
        let prefix = format!(
            "suite{}",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        Arc::new(cluster.storage(0, &prefix)) as Arc<dyn Storage>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_continue_each_others_uploads_and_survive_a_dead_node() {
    let mut cluster = tokio::task::block_in_place(Cluster::start);
    let client = reqwest::Client::new();
    // A and B talk to node 0, C to node 1; node 2 dies mid-push.
    let (sa, sb, sc) = tokio::task::block_in_place(|| {
        (
            cluster.storage(0, "reg"),
            cluster.storage(0, "reg"),
            cluster.storage(1, "reg"),
        )
    });
    let a = Replica::start(sa).await;
    let mut b = Some(Replica::start(sb).await);
    let c = Replica::start(sc).await;

    // A layer of 3.5 parts, in three chunks: A starts it, B continues.
    let layer = blob(3 * 1024 * 1024 + 512 * 1024, 7);
    let digest = sha256(&layer);
    let (c1, rest) = layer.split_at(1_500_000);
    let (c2, c3) = rest.split_at(1_500_000);
    let r = client
        .post(a.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = client
        .patch(a.url(&location(&r)))
        .header("content-range", format!("0-{}", c1.len() - 1))
        .body(c1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let after_c1 = location(&r);
    assert!(after_c1.contains("_state="), "{after_c1}");
    // The state is signed: a forged one is refused.
    let forged = after_c1.replace("_state=", "_state=x");
    let r = client
        .get(b.as_ref().unwrap().url(&forged))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Node 2 dies; replication factor 3 keeps a quorum of 2.
    tokio::task::block_in_place(|| cluster.kill(2));

    // B continues A's upload, but is killed while the chunk streams in.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    }));
    let patch = tokio::spawn(
        client
            .patch(b.as_ref().unwrap().url(&after_c1))
            .body(body)
            .send(),
    );
    tx.send(Ok(c2[..700_000].to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.take(); // the replica dies mid-chunk
    let _ = tx.send(Ok(c2[700_000..].to_vec())).await;
    drop(tx);
    let outcome = patch.await.unwrap();
    assert!(
        outcome.as_ref().map_or(true, |r| !r.status().is_success()),
        "a PATCH through a killed replica cannot succeed: {outcome:?}"
    );
    let head = client
        .head(c.url(&format!("/v2/team/app/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.status(),
        StatusCode::NOT_FOUND,
        "nothing half-written is visible"
    );

    // The client retries from the last Location it got, through C: the
    // status says where the upload stands.
    let r = client.get(c.url(&after_c1)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], format!("0-{}", c1.len() - 1).as_str());
    let r = client
        .patch(c.url(&after_c1))
        .header(
            "content-range",
            format!("{}-{}", c1.len(), c1.len() + c2.len() - 1),
        )
        .body(c2.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let after_c2 = location(&r);
    let head = client
        .head(a.url(&format!("/v2/team/app/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.status(),
        StatusCode::NOT_FOUND,
        "not visible before the PUT"
    );

    // A wrong digest on the completing PUT stores nothing.
    let wrong = sha256(b"not the layer");
    let r = client
        .put(a.url(&with_digest(&after_c2, &wrong)))
        .body(c3.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for d in [&wrong, &digest] {
        let head = client
            .head(c.url(&format!("/v2/team/app/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "{d}");
    }

    // The whole push again, chunks alternating between A and C, the PUT on A.
    let r = client
        .post(c.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let mut at = location(&r);
    let mut sent = 0;
    for (i, chunk) in [c1, c2].into_iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &c };
        let r = client
            .patch(replica.url(&at))
            .header(
                "content-range",
                format!("{sent}-{}", sent + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        at = location(&r);
        sent += chunk.len();
    }
    let r = client
        .put(a.url(&with_digest(&at, &digest)))
        .body(c3.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);

    // A config and a manifest through A; pulled through C.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = sha256(&config);
    let r = client
        .post(a.url(&format!(
            "/v2/team/app/blobs/uploads/?digest={config_digest}"
        )))
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest, "size": layer.len()}],
    })
    .to_string();
    let r = client
        .put(a.url("/v2/team/app/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);

    let r = client
        .get(c.url("/v2/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["docker-content-digest"],
        sha256(manifest.as_bytes()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), manifest.as_bytes());
    let r = client
        .get(c.url(&format!("/v2/team/app/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pulled = r.bytes().await.unwrap();
    assert_eq!(sha256(&pulled), digest);
    let r = client
        .get(c.url(&format!("/v2/team/app/blobs/{digest}")))
        .header("range", "bytes=1048000-1049000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), layer[1_048_000..=1_049_000]);
}
