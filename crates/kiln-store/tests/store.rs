//! The store's guarantees, tested through its public API: verified ingest,
//! atomic index updates from many writers, the GC lease, and the checks.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use kiln_core::image::Descriptor;
use kiln_core::{media_types, Digest, ImageRef};
use kiln_store::{Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    (dir, store)
}

/// A tiny image: one layer blob, a config naming it, a manifest.
fn image(store: &Store, seed: &str) -> kiln_store::IndexEntry {
    let layer = format!("layer {seed}").into_bytes();
    let digest = store.blobs().put(&layer, None).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{digest}"]}}}}"#
    );
    store
        .write_image(
            config.as_bytes(),
            &[Descriptor::new(
                media_types::OCI_LAYER_TAR,
                digest,
                layer.len() as u64,
            )],
        )
        .unwrap()
}

#[test]
fn fresh_root_is_an_oci_layout() {
    let (_d, s) = store();
    let layout = std::fs::read_to_string(s.root().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert!(s.root().join("blobs/sha256").is_dir());
}

#[test]
fn ingest_publishes_only_verified_content() {
    let (_d, s) = store();
    let wrong = Digest::sha256(b"something else");
    let mut w = s.blobs().ingest().unwrap();
    w.write_all(b"payload").unwrap();
    let err = w.commit(Some(&wrong), None).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(!s.blobs().exists(&Digest::sha256(b"payload")));

    let mut w = s.blobs().ingest().unwrap();
    w.write_all(b"payload").unwrap();
    let err = w.commit(None, Some(99)).unwrap_err();
    assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
    assert!(!s.blobs().exists(&Digest::sha256(b"payload")));

    // Nothing left in ingest by the failed writers.
    assert_eq!(
        std::fs::read_dir(s.root().join("ingest")).unwrap().count(),
        0
    );

    let mut w = s.blobs().ingest().unwrap();
    w.write_all(b"payload").unwrap();
    let (d, n) = w
        .commit(Some(&Digest::sha256(b"payload")), Some(7))
        .unwrap();
    assert_eq!(s.blobs().read(&d).unwrap(), b"payload");
    assert_eq!(n, 7);
    assert_eq!(s.blobs().verify(&d).unwrap(), 7);
}

#[test]
fn check_finds_corruption_and_missing_content() {
    let (_d, s) = store();
    let entry = image(&s, "a");
    s.name_image(&entry, &["a".parse().unwrap()]).unwrap();
    assert!(s.check().unwrap().problems.is_empty());

    let manifest = s.read_manifest(&entry.digest).unwrap();
    let layer = manifest.layers[0].digest.clone();
    std::fs::write(s.blobs().path(&layer), b"tampered").unwrap();
    let report = s.check().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("corrupt")),
        "{:?}",
        report.problems
    );

    std::fs::remove_file(s.blobs().path(&layer)).unwrap();
    let report = s.check().unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("is missing")),
        "{:?}",
        report.problems
    );
}

#[test]
fn concurrent_writers_lose_no_update() {
    let (d, s) = store();
    let root = s.root().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Each thread is its own Store, as separate processes would be.
                let s = Store::open(root).unwrap();
                for j in 0..5 {
                    let _lease = s.lease().unwrap();
                    let e = image(&s, &format!("{i}-{j}"));
                    s.name_image(&e, &[format!("t{i}:{j}").parse().unwrap()])
                        .unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let index = s.index().unwrap();
    assert_eq!(index.manifests.len(), 40);
    for i in 0..8 {
        for j in 0..5 {
            assert!(index.find(&format!("t{i}:{j}").parse().unwrap()).is_some());
        }
    }
    assert!(s.check().unwrap().problems.is_empty());
    drop(d);
}

#[test]
fn gc_waits_for_a_lease_and_never_takes_what_it_protects() {
    let (_d, s) = store();
    let lease = s.lease().unwrap();
    let entry = image(&s, "leased");
    let (tx, rx) = mpsc::channel();
    let root = s.root().to_path_buf();
    let gc = std::thread::spawn(move || {
        let s = Store::open(root).unwrap();
        let report = s.gc().unwrap();
        tx.send(()).unwrap();
        report
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "gc ran while a lease was held"
    );
    assert!(s.blobs().exists(&entry.digest));
    s.name_image(&entry, &["kept".parse().unwrap()]).unwrap();
    drop(lease);
    let report = gc.join().unwrap();
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    assert!(s.check().unwrap().problems.is_empty());

    // Untagged and unleased: collected.
    s.update_index(|i| {
        i.remove_tag(&"kept".parse::<ImageRef>().unwrap());
        Ok(())
    })
    .unwrap();
    let report = s.gc().unwrap();
    assert_eq!(report.deleted.len(), 3, "manifest, config, layer");
    assert!(s.blobs().walk().unwrap().is_empty());
}

#[test]
fn stale_ingests_are_found_and_live_ones_left_alone() {
    let (_d, s) = store();
    let mut live = s.blobs().ingest().unwrap();
    live.write_all(b"in progress").unwrap();
    // A writer that died leaves an unlocked file.
    std::fs::write(s.root().join("ingest/blob-dead"), b"half").unwrap();
    let stale = s.blobs().stale_ingests(false).unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].ends_with("blob-dead"));
    let report = s.gc().unwrap();
    assert_eq!(report.stale_ingests, 1);
    // The live writer is untouched and still commits.
    let (d, _) = live.commit(None, None).unwrap();
    assert!(s.blobs().exists(&d));
}

#[test]
fn foreign_entries_are_kept_as_untagged_roots() {
    let (_d, s) = store();
    let entry = image(&s, "foreign");
    // Another tool wrote a bare tag as the ref name.
    s.update_index(|i| {
        let mut e = entry.clone();
        e.annotations
            .insert(kiln_store::REF_NAME.into(), "latest".into());
        i.manifests.push(e);
        Ok(())
    })
    .unwrap();
    let images = s.images().unwrap();
    assert_eq!(images.len(), 1);
    assert!(images[0].names.is_empty());
    assert!(
        s.gc().unwrap().deleted.is_empty(),
        "GC must keep what the index holds"
    );
}

#[test]
fn resolve_follows_docker_rules() {
    let (_d, s) = store();
    let a = image(&s, "a");
    let b = image(&s, "b");
    s.name_image(&a, &["app:1".parse().unwrap()]).unwrap();
    s.name_image(&b, &["app:2".parse().unwrap()]).unwrap();
    let id_a = s.load_image(&a).unwrap().id().clone();
    assert_eq!(s.resolve("app:1").unwrap().1.id(), &id_a);
    assert_eq!(s.resolve("docker.io/library/app:1").unwrap().1.id(), &id_a);
    assert_eq!(s.resolve(&id_a.to_string()).unwrap().1.id(), &id_a);
    assert_eq!(s.resolve(&id_a.hex()[..10]).unwrap().1.id(), &id_a);
    assert_eq!(
        s.resolve(&format!("app@{}", a.digest)).unwrap().1.id(),
        &id_a
    );
    assert!(
        matches!(s.resolve("app"), Err(StoreError::ImageNotFound(_))),
        "no :latest"
    );
    assert!(matches!(
        s.resolve("zzz"),
        Err(StoreError::ImageNotFound(_))
    ));
}

#[test]
fn catalog_splits_images_from_artifacts_and_loads_without_rereading() {
    let (_d, s) = store();
    let a = image(&s, "a");
    s.name_image(&a, &["app:1".parse().unwrap()]).unwrap();
    // A signature-like artifact referring to the image.
    let config = s.blobs().put(b"{}", None).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[],"subject":{{"mediaType":"{}","digest":"{}","size":{}}}}}"#,
        media_types::OCI_MANIFEST,
        media_types::OCI_MANIFEST,
        a.digest,
        a.size
    );
    let digest = s.blobs().put(manifest.as_bytes(), None).unwrap();
    s.update_index(|i| {
        i.manifests.push(Descriptor::new(
            media_types::OCI_MANIFEST,
            digest.clone(),
            manifest.len() as u64,
        ));
        Ok(())
    })
    .unwrap();

    let catalog = s.catalog().unwrap();
    assert_eq!(catalog.images.len(), 1);
    assert_eq!(catalog.images[0].entry.digest, a.digest);
    assert_eq!(catalog.artifacts.len(), 1);
    assert_eq!(catalog.artifacts[0].entry.digest, digest);
    assert_eq!(
        s.referrers(&a.digest, None).unwrap()[0].digest,
        digest,
        "the artifact refers to the image"
    );

    // The catalog read the manifest once: loading its image and resolving
    // against it do not read it again (the blob is gone, the config is not).
    std::fs::remove_file(s.blobs().path(&a.digest)).unwrap();
    assert!(s.load_image(&a).is_err(), "the manifest is really gone");
    let image = s.load_record(&catalog.images[0]).unwrap();
    assert_eq!(image.manifest_digest, a.digest);
    assert_eq!(
        catalog.resolve(&s, "app:1").unwrap().1.id(),
        image.id(),
        "resolve reuses the catalog"
    );
}

#[test]
fn a_blob_published_in_the_background_is_in_place_before_anything_names_it() {
    let (_d, s) = store();
    let blob_dir = s.root().join("blobs/sha256");
    let content = vec![7u8; 4 << 20];
    let mut w = s.blobs().ingest().unwrap();
    w.write_all(&content).unwrap();
    let (d, n) = w.finish().unwrap().publish().unwrap();
    assert_eq!(
        (d.clone(), n),
        (Digest::sha256(&content), content.len() as u64)
    );
    // A reader in this process finds it (waiting for it if need be).
    assert!(s.blobs().exists(&d));
    assert_eq!(s.blobs().read(&d).unwrap(), content);
    // Another, published and then named in the index at once: the index
    // update waits for it, so the tag never names a missing blob.
    let mut w = s.blobs().ingest().unwrap();
    w.write_all(b"second layer").unwrap();
    let (layer, size) = w.finish().unwrap().publish().unwrap();
    let entry = s
        .write_image(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
            &[Descriptor::new(
                media_types::OCI_LAYER_TAR,
                layer.clone(),
                size,
            )],
        )
        .unwrap();
    assert!(blob_dir.join(layer.hex()).is_file());
    s.name_image(
        &entry,
        &["example.com/published:1".parse::<ImageRef>().unwrap()],
    )
    .unwrap();
    assert!(s.check().unwrap().problems.is_empty());
    // Nothing is left in ingest, and a blob already there is kept.
    let mut w = s.blobs().ingest().unwrap();
    w.write_all(&content).unwrap();
    w.finish().unwrap().publish().unwrap();
    s.blobs().wait_published().unwrap();
    assert_eq!(
        std::fs::read_dir(s.root().join("ingest")).unwrap().count(),
        0
    );
}
