//! The GC soak test (issue 15): for two minutes, 8 clients push images
//! that share layers — some reuse layers whose last image was just
//! deleted, the blobs GC is about to sweep — while the server collects
//! every second with a 3 s grace period; some clients also push blobs no
//! manifest will name, and delete all but their newest images. Afterwards every tag still
//! pushed pulls with every byte verified, no manifest names a missing
//! blob, and the unreferenced blobs are gone.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bytes, digest, manifest, server, Client};
use kiln_registry::gc::GcOptions;
use kiln_registry::Storage;
use reqwest::StatusCode;

const CLIENTS: u64 = 8;
const SOAK: Duration = Duration::from_secs(120);
const GRACE: Duration = Duration::from_secs(3);
/// Images each client keeps; older ones it deletes (so the registry, the
/// collector's work and the final verification stay bounded).
const KEEP: usize = 12;

#[derive(Default)]
struct Outcome {
    /// (repo, tag, manifest) pushed and not deleted.
    live: Vec<(String, String, Vec<u8>)>,
    /// Blobs pushed without a manifest.
    orphans: Vec<Vec<u8>>,
    pushes: usize,
    deletes: usize,
    /// Manifest PUTs refused because GC swept a blob between the client's
    /// HEAD and its PUT (the client then uploads and retries).
    retried: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_push_for_two_minutes_while_gc_runs_every_second() {
    let gc = GcOptions {
        grace: GRACE,
        delete_untagged: true,
        ..GcOptions::default()
    };
    let s = Arc::new(server(Some((gc, Duration::from_secs(1)))).await);
    // Layers every image shares, and layers of deleted images that later
    // images pick up again (garbage that becomes live again).
    let shared: Arc<Vec<Vec<u8>>> = Arc::new((0..6).map(|i| bytes(1000 + i, 32 << 10)).collect());
    let recycled: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let outcome: Arc<Mutex<Outcome>> = Arc::default();
    let end = Instant::now() + SOAK;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (s, shared, recycled, outcome) =
            (s.clone(), shared.clone(), recycled.clone(), outcome.clone());
        tasks.push(tokio::spawn(async move {
            let c = Client {
                base: &s.base,
                http: &s.client,
            };
            let repo = format!("soak/r{}", client % 3);
            let mut i = 0u64;
            let mut mine: Vec<(String, Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
            while Instant::now() < end {
                i += 1;
                let seed = client * 1_000_000 + i;
                let config = bytes(seed, 200);
                let unique = bytes(seed + 500_000, 8 << 10);
                let old = recycled.lock().unwrap().pop();
                let mut layers = vec![
                    shared[(seed % 6) as usize].clone(),
                    shared[((seed / 6) % 6) as usize].clone(),
                    unique.clone(),
                ];
                layers.extend(old);
                for b in std::iter::once(&config).chain(&layers) {
                    let st = c.ensure(&repo, b).await.unwrap();
                    assert!(st.is_success(), "upload {st}");
                }
                let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
                let m = manifest(&config, &refs, None);
                let tag = format!("c{client}-{i}");
                // GC may sweep a reused blob between our HEAD and our PUT:
                // the PUT then says MANIFEST_BLOB_UNKNOWN, and we upload
                // what is missing and try again, as a careful client does.
                let mut tries = 0;
                loop {
                    let (st, body) = c.put_manifest(&repo, &tag, &m).await.unwrap();
                    if st == StatusCode::CREATED {
                        break;
                    }
                    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{body}");
                    tries += 1;
                    assert!(tries < 5, "{tag}: {body}");
                    outcome.lock().unwrap().retried += 1;
                    for b in std::iter::once(&config).chain(&layers) {
                        c.ensure(&repo, b).await.unwrap();
                    }
                }
                outcome.lock().unwrap().pushes += 1;
                mine.push((tag, m, vec![config, unique]));
                if i.is_multiple_of(4) {
                    // A blob no manifest will ever name.
                    let orphan = bytes(seed + 700_000, 4 << 10);
                    assert_eq!(c.upload(&repo, &orphan).await.unwrap(), StatusCode::CREATED);
                    outcome.lock().unwrap().orphans.push(orphan);
                }
                if mine.len() > KEEP {
                    // Delete the oldest image: its unique blobs become
                    // garbage, and another client may reuse them.
                    let (tag, m, blobs) = mine.remove(0);
                    let r = s
                        .client
                        .delete(format!(
                            "{}/v2/{repo}/manifests/{}",
                            s.base,
                            common::sha256(&m)
                        ))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::ACCEPTED, "delete {tag}");
                    outcome.lock().unwrap().deletes += 1;
                    recycled.lock().unwrap().extend(blobs);
                }
            }
            let mut o = outcome.lock().unwrap();
            o.live
                .extend(mine.into_iter().map(|(t, m, _)| (repo.clone(), t, m)));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    for (repo, tag, m) in &outcome.live {
        c.pull_verify(repo, tag, m).await.unwrap();
    }
    let root = s.dir.path().join("registry");
    assert_eq!(common::violations(&*s.storage, &root), Vec::<String>::new());
    // Past the grace period, the collector (still running) has swept every
    // orphan that no image happened to share.
    tokio::time::sleep(GRACE + Duration::from_secs(3)).await;
    let left: Vec<_> = outcome
        .orphans
        .iter()
        .filter(|o| s.storage.blob_size(&digest(o)).unwrap().is_some())
        .collect();
    assert!(left.is_empty(), "{} orphans left", left.len());
    for (repo, tag, m) in &outcome.live {
        c.pull_verify(repo, tag, m).await.unwrap();
    }
    assert!(
        kiln_registry::gc::gc_runs() >= 100,
        "GC ran {} times",
        kiln_registry::gc::gc_runs()
    );
    eprintln!(
        "soak: {} pushes, {} deletes, {} tags verified, {} orphans swept, {} PUTs retried after a sweep, {} GC runs",
        outcome.pushes,
        outcome.deletes,
        outcome.live.len(),
        outcome.orphans.len(),
        outcome.retried,
        kiln_registry::gc::gc_runs()
    );
    assert!(outcome.pushes >= CLIENTS as usize * 10, "too few pushes");
}
