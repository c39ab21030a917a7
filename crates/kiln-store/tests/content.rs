//! The content-trait suite (containerd style): every implementation of
//! `kiln_core::content`'s traits runs the same checks. The filesystem store
//! runs all of them; a read-only layout runs the provider part.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};

use kiln_core::content::{ContentError, Ingester, Provider, Tags};
use kiln_core::image::Descriptor;
use kiln_core::{media_types as mt, Digest, ErrorKind};
use kiln_store::{Layout, Store};

/// What every provider must do with a blob it holds and one it does not.
fn provider_suite(p: &dyn Provider, held: &[u8], missing: &Digest) {
    let d = Digest::sha256(held);
    assert_eq!(p.info(&d).unwrap(), Some(held.len() as u64));
    let mut got = Vec::new();
    p.open(&d).unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got, held);
    assert_eq!(p.read_capped(&d, 1 << 20).unwrap(), held);
    assert_eq!(
        p.read_capped(&d, 1).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(p.info(missing).unwrap(), None);
    assert!(matches!(
        p.open(missing).err(),
        Some(ContentError::NotFound(_))
    ));
}

/// What every ingester must do: nothing visible before a verified commit,
/// named ingests resumed, one writer per name.
fn ingester_suite<T: Ingester + Provider>(s: &T) {
    let bytes = b"hello, content".as_slice();
    let d = Digest::sha256(bytes);

    let mut w = s.writer(None).unwrap();
    w.write_all(bytes).unwrap();
    let wrong = Digest::sha256(b"other");
    assert_eq!(
        w.commit(Some(&wrong), None).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(s.info(&d).unwrap(), None, "a refused blob must not appear");

    let mut w = s.writer(Some("download-1")).unwrap();
    w.write_all(&bytes[..5]).unwrap();
    w.flush().unwrap();
    // A second writer of the same name is refused while the first lives.
    assert_eq!(
        s.writer(Some("download-1")).err().map(|e| e.kind()),
        Some(ErrorKind::Conflict)
    );
    drop(w);
    assert_eq!(s.info(&d).unwrap(), None);
    // Resumed where the dead writer stopped.
    let mut w = s.writer(Some("download-1")).unwrap();
    assert_eq!(w.offset(), 5);
    w.write_all(&bytes[5..]).unwrap();
    assert_eq!(w.commit(Some(&d), Some(bytes.len() as u64)).unwrap(), d);
    assert_eq!(s.info(&d).unwrap(), Some(bytes.len() as u64));
    // The name is free again, and starts empty.
    assert_eq!(s.writer(Some("download-1")).unwrap().offset(), 0);

    let mut w = s.writer(Some("short")).unwrap();
    w.write_all(b"abc").unwrap();
    assert_eq!(
        w.commit(None, Some(4)).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

fn tags_suite(t: &dyn Tags) {
    let d = Descriptor::new(mt::OCI_MANIFEST, Digest::sha256(b"m"), 1);
    let name = "docker.io/library/app:1";
    assert_eq!(t.resolve(name).unwrap(), None);
    t.tag(name, &d).unwrap();
    assert_eq!(
        t.resolve(name).unwrap().map(|x| x.digest),
        Some(d.digest.clone())
    );
    assert_eq!(t.tags().unwrap().len(), 1);
    assert!(t.untag(name).unwrap());
    assert!(!t.untag(name).unwrap());
    assert_eq!(t.resolve(name).unwrap(), None);
    assert_eq!(
        t.resolve("UPPER").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn filesystem_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    ingester_suite(&s);
    let held = b"held blob";
    s.blobs().put(held, None).unwrap();
    provider_suite(&s, held, &Digest::sha256(b"absent"));
    tags_suite(&s);
}

#[test]
fn read_only_layout() {
    let dir = tempfile::tempdir().unwrap();
    let held = b"layout blob";
    {
        let s = Store::open(dir.path()).unwrap();
        s.blobs().put(held, None).unwrap();
    }
    let layout = Layout::open(dir.path()).unwrap();
    provider_suite(&layout, held, &Digest::sha256(b"absent"));

    // Content nobody verified is verified on read.
    let d = Digest::sha256(held);
    let path = dir.path().join("blobs/sha256").join(d.hex());
    std::fs::write(&path, b"tampered!!!").unwrap();
    let mut buf = Vec::new();
    assert!(layout.open(&d).unwrap().read_to_end(&mut buf).is_err());
    assert_eq!(
        layout.read_capped(&d, 1 << 20).unwrap_err().kind(),
        ErrorKind::Integrity
    );

    assert!(Layout::open(dir.path().join("nope")).is_err());
}

#[test]
fn writable_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let bytes = b"a layout blob".as_slice();
    let d = Digest::sha256(bytes);
    let mut w = layout.writer(None).unwrap();
    w.write_all(bytes).unwrap();
    assert_eq!(
        w.commit(Some(&Digest::sha256(b"x")), None)
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    assert_eq!(layout.info(&d).unwrap(), None);
    let mut w = layout.writer(None).unwrap();
    w.write_all(bytes).unwrap();
    w.commit(Some(&d), Some(bytes.len() as u64)).unwrap();
    provider_suite(&layout, bytes, &Digest::sha256(b"absent"));
    // A layout keeps no resumable ingests.
    assert_eq!(
        layout.writer(Some("n")).err().map(|e| e.kind()),
        Some(ErrorKind::Unsupported)
    );
    // Layout names are any string.
    let desc = Descriptor::new(mt::OCI_MANIFEST, d.clone(), bytes.len() as u64);
    layout.tag("v1", &desc).unwrap();
    assert_eq!(layout.resolve("v1").unwrap().unwrap().digest, d);
    assert!(layout.untag("v1").unwrap());
    // Only the layout's own files, nothing left from the refused write.
    let mut top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["blobs", "index.json", "oci-layout"]);
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );

    // Opened read-only, nothing can be written.
    let ro = Layout::open(dir.path()).unwrap();
    assert_eq!(
        ro.writer(None).err().map(|e| e.kind()),
        Some(ErrorKind::Unsupported)
    );
}
