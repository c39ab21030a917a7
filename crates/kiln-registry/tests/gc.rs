//! Garbage collection's rules, one by one, over a served registry: what it
//! keeps (tagged images, index children, referrers of live subjects,
//! anything within the grace period), what it deletes (blobs no manifest
//! names, idle uploads, and untagged manifests only when asked), dry runs,
//! and the conditional deletes that make it safe beside pushes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{bytes, digest, index, manifest, server, Client};
use kiln_registry::gc::{collect, Garbage, GcOptions};
use kiln_registry::Storage;
use reqwest::StatusCode;

fn now_gc(delete_untagged: bool, dry_run: bool) -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        delete_untagged,
        dry_run,
        ..GcOptions::default()
    }
}

/// Lets file times move past what was just written (coarse clocks).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

fn blob_digests(g: &[Garbage]) -> Vec<kiln_core::Digest> {
    g.iter()
        .filter_map(|g| match g {
            Garbage::Blob { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn keeps_what_tags_name_deletes_orphans_and_idle_uploads() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let (config, layer, orphan) = (bytes(1, 100), bytes(2, 5000), bytes(3, 700));
    for b in [&config, &layer, &orphan] {
        assert_eq!(c.upload("app", b).await.unwrap(), StatusCode::CREATED);
    }
    let m = manifest(&config, &[&layer], None);
    assert_eq!(
        c.put_manifest("app", "v1", &m).await.unwrap().0,
        StatusCode::CREATED
    );
    // An upload that stopped halfway.
    let r = s
        .client
        .post(format!("{}/v2/app/blobs/uploads/", s.base))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = s
        .client
        .patch(format!("{}{location}", s.base))
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    settle().await;

    // Within the grace period nothing goes.
    let young = collect(&*s.storage, &GcOptions::default()).unwrap();
    assert!(young.garbage.is_empty(), "{:?}", young.garbage);

    let dry = collect(&*s.storage, &now_gc(false, true)).unwrap();
    assert_eq!(blob_digests(&dry.garbage), vec![digest(&orphan)]);
    assert!(dry
        .garbage
        .iter()
        .any(|g| matches!(g, Garbage::Upload { size: 1000, .. })));
    assert!(s.storage.blob_size(&digest(&orphan)).unwrap().is_some());
    assert_eq!(s.storage.list_uploads().unwrap().len(), 1);

    let wet = collect(&*s.storage, &now_gc(false, false)).unwrap();
    assert_eq!(wet.garbage, dry.garbage);
    assert_eq!(wet.live_blobs, 3, "manifest, config, layer");
    assert!(s.storage.blob_size(&digest(&orphan)).unwrap().is_none());
    assert!(s.storage.list_uploads().unwrap().is_empty());
    let (status, _) = c.get(&location).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "the swept upload is gone");
    c.pull_verify("app", "v1", &m).await.unwrap();
    // A second run finds nothing more.
    assert!(collect(&*s.storage, &now_gc(false, false))
        .unwrap()
        .garbage
        .is_empty());
}

#[tokio::test]
async fn untagged_manifests_go_only_when_asked_and_referrers_follow_subjects() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let blobs: Vec<Vec<u8>> = (10..20).map(|i| bytes(i, 300 + i as usize)).collect();
    for b in &blobs {
        c.upload("r", b).await.unwrap();
    }
    // Tagged image A with an untagged signature; untagged image B with an
    // untagged signature; an index (tagged) naming untagged image C.
    let a = manifest(&blobs[0], &[&blobs[1]], None);
    let sig_a = manifest(&blobs[2], &[&blobs[3]], Some(&a));
    let b = manifest(&blobs[4], &[&blobs[5]], None);
    let sig_b = manifest(&blobs[6], &[&blobs[7]], Some(&b));
    let cm = manifest(&blobs[8], &[&blobs[9]], None);
    let idx = index(&[&cm]);
    for (reference, m) in [
        ("a", &a),
        (common::sha256(&sig_a).as_str(), &sig_a),
        (common::sha256(&b).as_str(), &b),
        (common::sha256(&sig_b).as_str(), &sig_b),
        (common::sha256(&cm).as_str(), &cm),
        ("multi", &idx),
    ] {
        let (st, body) = c.put_manifest("r", reference, m).await.unwrap();
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    settle().await;

    // By default every manifest is a root.
    let kept = collect(&*s.storage, &now_gc(false, false)).unwrap();
    assert!(kept.garbage.is_empty(), "{:?}", kept.garbage);
    assert_eq!(kept.live_manifests, 6);

    let report = collect(&*s.storage, &now_gc(true, false)).unwrap();
    let mut gone_manifests: Vec<_> = report
        .garbage
        .iter()
        .filter_map(|g| match g {
            Garbage::Manifest { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    gone_manifests.sort();
    let mut want = vec![digest(&b), digest(&sig_b)];
    want.sort();
    assert_eq!(gone_manifests, want, "B and its signature, nothing else");
    let mut gone_blobs = blob_digests(&report.garbage);
    gone_blobs.sort();
    let mut want = vec![
        digest(&b),
        digest(&sig_b),
        digest(&blobs[4]),
        digest(&blobs[5]),
        digest(&blobs[6]),
        digest(&blobs[7]),
    ];
    want.sort();
    assert_eq!(gone_blobs, want);
    c.pull_verify("r", "a", &a).await.unwrap();
    c.pull_verify("r", &common::sha256(&sig_a), &sig_a)
        .await
        .unwrap();
    c.pull_verify("r", &common::sha256(&cm), &cm).await.unwrap();
    // The referrers list still shows A's signature and no longer B's.
    let (_, body) = c
        .get(&format!("/v2/r/referrers/{}", common::sha256(&a)))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains(&common::sha256(&sig_a)));
    let (_, body) = c
        .get(&format!("/v2/r/referrers/{}", common::sha256(&b)))
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed["manifests"], serde_json::json!([]));
    assert!(common::violations(&*s.storage, &s.dir.path().join("registry")).is_empty());
}

#[tokio::test]
async fn conditional_deletes_lose_to_a_refresh() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let (config, layer) = (bytes(30, 64), bytes(31, 64));
    c.upload("x", &config).await.unwrap();
    c.upload("x", &layer).await.unwrap();
    settle().await;
    let cutoff = SystemTime::now();
    settle().await;
    // A client relies on the layer (say its manifest PUT) after GC chose
    // the cutoff: the delete must not happen.
    assert!(s.storage.touch_blob(&digest(&layer)).unwrap());
    assert!(!s.storage.delete_blob(&digest(&layer), cutoff).unwrap());
    assert!(s.storage.blob_size(&digest(&layer)).unwrap().is_some());
    // The untouched one goes; a PUT naming it afterwards is refused and
    // stores nothing.
    assert!(s.storage.delete_blob(&digest(&config), cutoff).unwrap());
    let m = manifest(&config, &[&layer], None);
    let (st, body) = c.put_manifest("x", "v1", &m).await.unwrap();
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert!(s.storage.tags("x").unwrap().unwrap().is_empty());
    // Re-uploading makes it whole again.
    c.ensure("x", &config).await.unwrap();
    assert_eq!(
        c.put_manifest("x", "v1", &m).await.unwrap().0,
        StatusCode::CREATED
    );
    c.pull_verify("x", "v1", &m).await.unwrap();
    // Manifests the same way.
    let md = digest(&m);
    settle().await;
    let cutoff = SystemTime::now();
    settle().await;
    assert!(s.storage.touch_manifest("x", &md).unwrap());
    assert!(!s
        .storage
        .delete_manifest_if_older("x", &md, cutoff)
        .unwrap());
    assert!(s.storage.manifest("x", &md).unwrap().is_some());
}

/// The race the module doc argues about, run head-on: a blob old enough
/// to collect and named by no manifest, a client that HEADs it (present,
/// so it skips the upload) and PUTs a manifest naming it, and a
/// collection running at the same moment. Whichever wins, the registry is
/// whole: either the PUT succeeded and the blob is there, or the PUT was
/// refused and nothing names the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_racing_a_collection_never_names_a_deleted_blob() {
    let s = server(None).await;
    let c = Client {
        base: &s.base,
        http: &s.client,
    };
    let config = bytes(40, 50);
    c.upload("race", &config).await.unwrap();
    let (mut created, mut refused) = (0, 0);
    for round in 0..150u64 {
        let layer = bytes(1000 + round, 100);
        c.upload("race", &layer).await.unwrap();
        // Ten minutes old: past the grace period below.
        let old = SystemTime::now() - Duration::from_secs(600);
        let path = s
            .dir
            .path()
            .join("registry/blobs/sha256")
            .join(digest(&layer).hex());
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(c.blob_exists("race", &layer).await.unwrap());
        let m = manifest(&config, &[&layer], None);
        let storage = s.storage.clone();
        let gc = tokio::task::spawn_blocking(move || {
            let options = GcOptions {
                grace: Duration::from_secs(60),
                ..GcOptions::default()
            };
            collect(&*storage, &options).unwrap()
        });
        let (status, body) = c
            .put_manifest("race", &format!("r{round}"), &m)
            .await
            .unwrap();
        gc.await.unwrap();
        let present = s.storage.blob_size(&digest(&layer)).unwrap().is_some();
        if status == StatusCode::CREATED {
            created += 1;
            assert!(
                present,
                "round {round}: the PUT succeeded over a deleted blob"
            );
        } else {
            refused += 1;
            assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
            assert!(s.storage.manifest("race", &digest(&m)).unwrap().is_none());
        }
    }
    assert!(common::violations(&*s.storage, &s.dir.path().join("registry")).is_empty());
    eprintln!("race: {created} PUTs won, {refused} were refused after the sweep");
}

/// A `kill -9` between an upload's directory and its `repo` file leaves an
/// upload of no repository: the dry run lists it, the real run deletes it
/// and says so (they once disagreed, and the upload stayed).
#[tokio::test]
async fn an_upload_a_crash_left_without_its_repository_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let storage = kiln_registry::FsStorage::open(dir.path()).unwrap();
    let (id, _) = storage.new_upload("app").unwrap();
    std::fs::remove_file(dir.path().join("uploads").join(&id).join("repo")).unwrap();
    settle().await;
    let dry = collect(&storage, &now_gc(false, true)).unwrap();
    assert!(
        matches!(&dry.garbage[..], [Garbage::Upload { repo, id: i, .. }] if repo.is_empty() && *i == id),
        "{:?}",
        dry.garbage
    );
    let wet = collect(&storage, &now_gc(false, false)).unwrap();
    assert_eq!(wet.garbage, dry.garbage);
    assert!(storage.list_uploads().unwrap().is_empty());
    // An API cancel for a named repository still needs the owner.
    let (other, _) = storage.new_upload("app").unwrap();
    assert!(!storage.cancel_upload("", &other, "").unwrap());
    assert!(storage.cancel_upload("app", &other, "").unwrap());
}
