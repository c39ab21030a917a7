//! One set of [`Storage`] tests for every implementation, in containerd's
//! manner (its content store and snapshotter test suites): each backend's
//! test file runs [`CHECKS`] (or [`run_all`]) against a fresh storage, so
//! `FsStorage`, the object storage in memory and the object storage on a
//! Garage cluster are held to the same contract.
//!
//! Behind the `testing` feature; the checks panic with what went wrong.
#![allow(clippy::unwrap_used)] // test code: a panic is the report

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kiln_core::{Algorithm, Digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hash::digest_of;
use crate::storage::{ManifestInfo, Storage, UploadState};
use crate::StorageError;

/// A check of the contract.
pub type Check = fn(Arc<dyn Storage>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("blobs_are_stored_once_and_linked_per_repository", |s| {
        Box::pin(blobs_are_stored_once_and_linked_per_repository(s))
    }),
    ("chunked_upload_continues_from_its_state", |s| {
        Box::pin(chunked_upload_continues_from_its_state(s))
    }),
    ("a_failed_write_leaves_the_upload_as_it_was", |s| {
        Box::pin(a_failed_write_leaves_the_upload_as_it_was(s))
    }),
    ("empty_and_cancelled_uploads", |s| {
        Box::pin(empty_and_cancelled_uploads(s))
    }),
    ("a_wrong_digest_stores_nothing", |s| {
        Box::pin(a_wrong_digest_stores_nothing(s))
    }),
    ("manifests_tags_and_referrers", |s| {
        Box::pin(manifests_tags_and_referrers(s))
    }),
    ("gc_deletes_only_what_nobody_refreshed", |s| {
        Box::pin(gc_deletes_only_what_nobody_refreshed(s))
    }),
];

/// Runs every check, each on a storage from `make`.
pub async fn run_all(make: impl Fn() -> Arc<dyn Storage>) {
    for (name, check) in CHECKS {
        eprintln!("storage check: {name}");
        check(make()).await;
    }
}

/// One `#[tokio::test]` per check, each on a storage from `$make` (an
/// expression giving `(Arc<dyn Storage>, guard)`; the guard lives as long
/// as the test).
#[macro_export]
macro_rules! storage_suite {
    ($make:expr) => {
        $crate::storage_suite!(@tests $make;
            blobs_are_stored_once_and_linked_per_repository
            chunked_upload_continues_from_its_state
            a_failed_write_leaves_the_upload_as_it_was
            empty_and_cancelled_uploads
            a_wrong_digest_stores_nothing
            manifests_tags_and_referrers
            gc_deletes_only_what_nobody_refreshed);
    };
    (@tests $make:expr; $($name:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (storage, _guard) = $make;
                $crate::testsuite::$name(storage).await;
            }
        )*
    };
}

/// `len` bytes of a pattern that differs at every offset within a part.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn sha256(bytes: &[u8]) -> Digest {
    digest_of(Algorithm::Sha256, bytes)
}

/// Appends `bytes` to an upload the way the server does; the new state.
pub async fn append(
    s: &dyn Storage,
    repo: &str,
    id: &str,
    state: &str,
    bytes: &[u8],
) -> UploadState {
    let offset = s
        .upload_size(repo, id, state)
        .expect("upload_size")
        .expect("the upload exists");
    let mut w = s
        .upload_writer(repo, id, state, offset)
        .expect("upload_writer");
    // Several writes, as request frames arrive.
    for chunk in bytes.chunks(100_000) {
        w.write_all(chunk).await.expect("write to the upload");
    }
    w.shutdown().await.expect("finish the write");
    w.state()
}

async fn read_all(mut r: crate::BlobReader) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.expect("read");
    out
}

/// Pushes `bytes` as a blob of `repo` in chunks of `chunk` bytes.
pub async fn push_blob(s: &dyn Storage, repo: &str, bytes: &[u8], chunk: usize) -> Digest {
    let digest = sha256(bytes);
    let (id, mut state) = s.new_upload(repo).expect("new_upload");
    for c in bytes.chunks(chunk.max(1)) {
        state = append(s, repo, &id, &state, c).await;
    }
    s.finish_upload(repo, &id, &state, &digest)
        .expect("finish_upload");
    digest
}

pub async fn blobs_are_stored_once_and_linked_per_repository(s: Arc<dyn Storage>) {
    let bytes = pattern(300_000, 1);
    let digest = push_blob(&*s, "team/a", &bytes, bytes.len()).await;
    assert_eq!(s.blob_size(&digest).unwrap(), Some(bytes.len() as u64));
    assert!(s.has_link("team/a", &digest).unwrap());
    assert!(
        !s.has_link("team/b", &digest).unwrap(),
        "b holds nothing yet"
    );
    s.link_blob("team/b", &digest).unwrap();
    assert!(s.has_link("team/b", &digest).unwrap());
    assert_eq!(
        sha256(&read_all(s.open_blob(&digest, 0).unwrap()).await),
        digest
    );
    assert_eq!(
        sha256(&read_all(s.open_blob(&digest, 1000).unwrap()).await),
        sha256(&bytes[1000..])
    );
    assert!(s.unlink_blob("team/a", &digest).unwrap());
    assert!(!s.unlink_blob("team/a", &digest).unwrap());
    assert!(!s.has_link("team/a", &digest).unwrap());
    assert!(
        s.has_link("team/b", &digest).unwrap(),
        "b's link is its own"
    );
    // put_blob of something stored is a no-op.
    s.put_blob(&digest, &bytes).unwrap();
    assert_eq!(s.blob_size(&digest).unwrap(), Some(bytes.len() as u64));
}

pub async fn chunked_upload_continues_from_its_state(s: Arc<dyn Storage>) {
    // Uneven chunks across part boundaries (the object storages under
    // test use parts of 1 MiB or less).
    let bytes = pattern(3 * 1024 * 1024 + 12_345, 2);
    let digest = sha256(&bytes);
    let (id, mut state) = s.new_upload("r").unwrap();
    assert_eq!(s.upload_size("r", &id, &state).unwrap(), Some(0));
    assert_eq!(
        s.upload_size("other", &id, &state).unwrap(),
        None,
        "an upload belongs to its repository"
    );
    let mut sent = 0;
    for len in [700_000, 1_500_000, 10, bytes.len() - 2_200_010] {
        state = append(&*s, "r", &id, &state, &bytes[sent..sent + len]).await;
        sent += len;
        assert_eq!(s.upload_size("r", &id, &state).unwrap(), Some(sent as u64));
    }
    assert_eq!(
        s.blob_size(&digest).unwrap(),
        None,
        "not visible before it finishes"
    );
    assert_eq!(
        sha256(&read_all(s.open_upload("r", &id, &state).unwrap()).await),
        digest
    );
    assert_eq!(
        s.blob_size(&digest).unwrap(),
        None,
        "not visible before it finishes"
    );
    s.finish_upload("r", &id, &state, &digest).unwrap();
    assert_eq!(
        sha256(&read_all(s.open_blob(&digest, 0).unwrap()).await),
        digest
    );
    assert!(s.has_link("r", &digest).unwrap());
    assert_eq!(
        s.upload_size("r", &id, &state).unwrap(),
        None,
        "the upload is gone"
    );
}

pub async fn a_failed_write_leaves_the_upload_as_it_was(s: Arc<dyn Storage>) {
    let first = pattern(1_200_000, 3);
    let rest = pattern(900_000, 4);
    let (id, state) = s.new_upload("r").unwrap();
    let state = append(&*s, "r", &id, &state, &first).await;
    // A write that fails: its bytes written (flushed) but the request
    // failed (a body shorter than its Content-Range), so the writer is
    // dropped without being shut down, and cut off as the server does.
    {
        let mut w = s
            .upload_writer("r", &id, &state, first.len() as u64)
            .unwrap();
        w.write_all(&pattern(1_500_000, 9)).await.unwrap();
        w.flush().await.unwrap();
    }
    s.truncate_upload("r", &id, first.len() as u64).unwrap();
    assert_eq!(
        s.upload_size("r", &id, &state).unwrap(),
        Some(first.len() as u64)
    );
    let state = append(&*s, "r", &id, &state, &rest).await;
    let whole = [first, rest].concat();
    let digest = sha256(&whole);
    s.finish_upload("r", &id, &state, &digest).unwrap();
    assert_eq!(
        sha256(&read_all(s.open_blob(&digest, 0).unwrap()).await),
        digest
    );
}

pub async fn empty_and_cancelled_uploads(s: Arc<dyn Storage>) {
    let digest = push_blob(&*s, "r", b"", 1).await;
    assert_eq!(s.blob_size(&digest).unwrap(), Some(0));
    assert_eq!(read_all(s.open_blob(&digest, 0).unwrap()).await, b"");

    let (id, state) = s.new_upload("r").unwrap();
    let state = append(&*s, "r", &id, &state, &pattern(1_100_000, 5)).await;
    assert!(!s.cancel_upload("other", &id, &state).unwrap());
    assert!(s.cancel_upload("r", &id, &state).unwrap());
    assert_eq!(s.upload_size("r", &id, &state).unwrap(), None);
    assert!(!s.cancel_upload("r", &id, &state).unwrap());
}

pub async fn a_wrong_digest_stores_nothing(s: Arc<dyn Storage>) {
    let bytes = pattern(1_300_000, 6);
    let claimed = sha256(b"something else");
    let (id, state) = s.new_upload("r").unwrap();
    let state = append(&*s, "r", &id, &state, &bytes).await;
    // What the server hashes when the storage does not verify itself is
    // exactly what was written.
    let staged = read_all(s.open_upload("r", &id, &state).unwrap()).await;
    assert_eq!(sha256(&staged), sha256(&bytes));
    if s.verifies_uploads() {
        match s.finish_upload("r", &id, &state, &claimed) {
            Err(StorageError::DigestMismatch { .. }) => {}
            other => panic!("finishing with a wrong digest: {other:?}"),
        }
    } else {
        assert!(s.cancel_upload("r", &id, &state).unwrap());
    }
    assert_eq!(s.blob_size(&claimed).unwrap(), None);
    assert_eq!(s.blob_size(&sha256(&bytes)).unwrap(), None);
    assert!(!s.has_link("r", &claimed).unwrap());
}

pub async fn manifests_tags_and_referrers(s: Arc<dyn Storage>) {
    assert!(!s.repo_exists("team/app").unwrap());
    assert_eq!(s.tags("team/app").unwrap(), None);
    let image = br#"{"schemaVersion":2}"#.to_vec();
    let info = ManifestInfo {
        digest: sha256(&image),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: image.len() as u64,
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    s.put_manifest("team/app", &info, &image).unwrap();
    s.tag("team/app", "v1", &info.digest).unwrap();
    s.tag("team/app", "latest", &info.digest).unwrap();
    let sig = br#"{"schemaVersion":2,"sig":1}"#.to_vec();
    let sig_info = ManifestInfo {
        digest: sha256(&sig),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: sig.len() as u64,
        subject: Some(info.digest.clone()),
        artifact_type: Some("application/example.sig".into()),
        annotations: Some(serde_json::json!({"k": "v"})),
    };
    s.put_manifest("team/app", &sig_info, &sig).unwrap();
    s.put_manifest("other", &info, &image).unwrap();

    assert!(s.repo_exists("team/app").unwrap());
    assert_eq!(s.repositories().unwrap(), ["other", "team/app"]);
    assert_eq!(
        s.manifest("team/app", &info.digest).unwrap(),
        Some((info.media_type.clone(), image.clone()))
    );
    assert_eq!(s.manifest("nobody", &info.digest).unwrap(), None);
    assert!(s.has_link("team/app", &info.digest).unwrap());
    assert_eq!(
        s.tags("team/app").unwrap().unwrap(),
        ["latest", "v1"],
        "sorted"
    );
    assert_eq!(s.tags("other").unwrap().unwrap(), Vec::<String>::new());
    assert_eq!(
        s.resolve_tag("team/app", "v1").unwrap(),
        Some(info.digest.clone())
    );
    assert_eq!(s.resolve_tag("team/app", "v2").unwrap(), None);
    let refs = s.referrers("team/app", &info.digest).unwrap();
    assert_eq!(refs, vec![sig_info.descriptor()]);
    assert!(s.referrers("other", &info.digest).unwrap().is_empty());

    assert!(s.untag("team/app", "latest").unwrap());
    assert!(!s.untag("team/app", "latest").unwrap());
    assert!(s
        .delete_manifest("team/app", &sig_info.digest, Some(&info.digest))
        .unwrap());
    assert!(s.referrers("team/app", &info.digest).unwrap().is_empty());
    assert!(s.delete_manifest("team/app", &info.digest, None).unwrap());
    assert_eq!(
        s.resolve_tag("team/app", "v1").unwrap(),
        None,
        "its tags go too"
    );
    assert!(!s.delete_manifest("team/app", &info.digest, None).unwrap());
    assert_eq!(s.manifest("team/app", &info.digest).unwrap(), None);
    assert!(s.manifest("other", &info.digest).unwrap().is_some());
}

/// Past the next whole second: object stores keep times to the second.
async fn next_second() -> std::time::SystemTime {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::time::SystemTime::now()
}

pub async fn gc_deletes_only_what_nobody_refreshed(s: Arc<dyn Storage>) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let bytes = pattern(200_000, 8);
    let digest = push_blob(&*s, "r", &bytes, bytes.len()).await;
    assert!(s.list_blobs().unwrap().iter().any(|b| b.digest == digest));
    assert!(
        !s.delete_blob(&digest, old).unwrap(),
        "younger than the cut"
    );

    let cut = next_second().await;
    next_second().await;
    assert!(s.touch_blob(&digest).unwrap());
    assert!(
        !s.delete_blob(&digest, cut).unwrap(),
        "refreshed after the cut"
    );
    assert_eq!(s.blob_size(&digest).unwrap(), Some(bytes.len() as u64));
    let later = next_second().await + std::time::Duration::from_secs(1);
    assert!(s.delete_blob(&digest, later).unwrap());
    assert_eq!(s.blob_size(&digest).unwrap(), None);
    assert!(!s.touch_blob(&digest).unwrap(), "nothing to refresh");
    assert!(
        !s.has_link("r", &digest).unwrap(),
        "a link to nothing is no link"
    );

    let m = br#"{"schemaVersion":2,"gc":1}"#.to_vec();
    let info = ManifestInfo {
        digest: sha256(&m),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: m.len() as u64,
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    s.put_manifest("r", &info, &m).unwrap();
    assert!(s
        .list_manifests("r")
        .unwrap()
        .iter()
        .any(|e| e.digest == info.digest));
    assert!(s.touch_manifest("r", &info.digest).unwrap());
    assert!(!s.delete_manifest_if_older("r", &info.digest, old).unwrap());
    let later = next_second().await + std::time::Duration::from_secs(1);
    assert!(s
        .delete_manifest_if_older("r", &info.digest, later)
        .unwrap());
    assert_eq!(s.manifest("r", &info.digest).unwrap(), None);
    assert!(!s.touch_manifest("r", &info.digest).unwrap());

    // An upload abandoned mid-way (past one part) is listed, and GC's
    // cancel, which has no state, removes it.
    let (id, state) = s.new_upload("r").unwrap();
    append(&*s, "r", &id, &state, &pattern(1_200_000, 9)).await;
    let uploads = s.list_uploads().unwrap();
    assert!(
        uploads.iter().any(|u| u.id == id && u.repo == "r"),
        "{uploads:?}"
    );
    assert!(s.cancel_upload("r", &id, "").unwrap());
    assert!(!s.list_uploads().unwrap().iter().any(|u| u.id == id));
    assert!(s.list_staged().unwrap().is_empty());
}
