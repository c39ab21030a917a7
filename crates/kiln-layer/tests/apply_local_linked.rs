//! `apply_local_linked`: local files hard-linked from files an earlier
//! apply wrote (by link key) instead of copied; candidates whose metadata
//! differ are copied; a path written twice in one stream ends as the last
//! entry says and is not reported as the first; one candidate inode is
//! linked once per apply. The root is a plain directory that is also the
//! "upper" directory here (the build uses an overlay mount and its upper).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use kiln_layer::{apply_local_linked, ApplyOptions, Links, LOCAL_FILE_PAX};
use support::Sandbox;

const MTIME: u64 = 1_234_567_890;

/// A root-owned, empty header of `path` (`kind`, `mode`).
fn header(path: &str, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(0);
    h.set_cksum();
    h
}

/// A stream of `app/` and marked entries (path, local id, mode).
fn stream(entries: &[(&str, u64, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = header("app/", tar::EntryType::Directory, 0o755);
    b.append(&dir, &b""[..]).unwrap();
    for (name, id, mode) in entries {
        b.append_pax_extensions([(LOCAL_FILE_PAX, id.to_string().as_bytes())])
            .unwrap();
        let file = header(name, tar::EntryType::Regular, *mode);
        b.append(&file, &b""[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn links_matching_files_and_copies_the_rest() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (linking compares owners, set only as root)");
    }
    let src = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["one", "two", "three"]
        .iter()
        .map(|n| {
            let p = src.path().join(n);
            fs::write(&p, n.repeat(1000)).unwrap();
            p
        })
        .collect();
    let open = |id: u64| fs::File::open(&files[id as usize]).map(Into::into);
    let opts = ApplyOptions {
        diff_id: false,
        ..ApplyOptions::for_current_user()
    };

    // First apply: nothing known; everything copied and reported.
    let first = Sandbox::new();
    let s1 = stream(&[
        ("app/one", 0, 0o644),
        ("app/two", 1, 0o644),
        ("app/three", 2, 0o600),
    ]);
    let none = HashMap::new();
    let links = Links {
        upper: &first.root(),
        known: &none,
    };
    let r1 = apply_local_linked(&s1[..], &first.root(), &opts, &open, links).unwrap();
    assert_eq!(r1.linked, 0);
    assert_eq!(r1.written.len(), 3, "{:?}", r1.written);
    let known: HashMap<String, PathBuf> = r1
        .written
        .iter()
        .map(|(p, k)| {
            (
                k.clone(),
                first.root().join(String::from_utf8_lossy(p).as_ref()),
            )
        })
        .collect();

    // Second apply: one and two link; three asks for another mode (copied);
    // two is written again at a second path (its inode is linked once:
    // the second is a copy); one's path is then written again from
    // three (the link goes, the new file is what is left).
    let second = Sandbox::new();
    let s2 = stream(&[
        ("app/one", 0, 0o644),
        ("app/two", 1, 0o644),
        ("app/two-again", 1, 0o644),
        ("app/three", 2, 0o644),
        ("app/one", 2, 0o644),
    ]);
    let links = Links {
        upper: &second.root(),
        known: &known,
    };
    let r2 = apply_local_linked(&s2[..], &second.root(), &opts, &open, links).unwrap();
    let root = second.root();
    let ino = |p: PathBuf| fs::metadata(p).unwrap().ino();
    assert_eq!(r2.linked, 2, "one and two");
    assert_eq!(ino(root.join("app/two")), ino(first.root().join("app/two")));
    assert_ne!(ino(root.join("app/two-again")), ino(root.join("app/two")));
    assert_ne!(
        ino(root.join("app/three")),
        ino(first.root().join("app/three"))
    );
    assert_ne!(ino(root.join("app/one")), ino(first.root().join("app/one")));
    assert_eq!(
        fs::read_to_string(root.join("app/one")).unwrap(),
        "three".repeat(1000)
    );
    assert_eq!(
        fs::read_to_string(root.join("app/two-again")).unwrap(),
        "two".repeat(1000)
    );
    // The first apply's files are untouched.
    assert_eq!(
        fs::read_to_string(first.root().join("app/one")).unwrap(),
        "one".repeat(1000)
    );
    assert_eq!(
        fs::metadata(first.root().join("app/one")).unwrap().nlink(),
        1
    );
    // Reported: what each path holds at the end (app/one from three's key).
    let by_path: HashMap<String, String> = r2
        .written
        .iter()
        .map(|(p, k)| (String::from_utf8_lossy(p).into_owned(), k.clone()))
        .collect();
    assert_eq!(by_path.len(), 4, "{by_path:?}");
    assert_eq!(by_path["app/one"], by_path["app/three"]);
    assert_eq!(by_path["app/two"], by_path["app/two-again"]);
    assert_ne!(by_path["app/one"], by_path["app/two"]);
}
