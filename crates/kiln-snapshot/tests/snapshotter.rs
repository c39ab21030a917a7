//! One test suite run against every backend (containerd's model): what a
//! caller sees must not depend on how snapshots are stored.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use kiln_snapshot::{Backend, Snapshotter};

/// A plain tar layer from (path, Some(content) | None for a directory).
fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(c.len() as u64);
                b.append_data(&mut h, path, c.as_bytes()).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn read(root: &Path, p: &str) -> Option<String> {
    fs::read_to_string(root.join(p)).ok()
}

fn suite(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path(), backend).unwrap();
    let base = layer(&[
        ("a", Some("a1")),
        ("d/", None),
        ("d/b", Some("b1")),
        ("keep", Some("k")),
    ]);
    s.unpack("base", None, &base[..]).unwrap();
    let second = layer(&[
        (".wh.a", Some("")),
        ("d/", None),
        ("d/.wh..wh..opq", Some("")),
        ("d/c", Some("c2")),
        ("new", Some("n2")),
    ]);
    s.unpack("second", Some("base"), &second[..]).unwrap();
    assert_eq!(s.parent_of("second").unwrap().as_deref(), Some("base"));
    assert_eq!(s.list().unwrap(), ["base", "second"]);

    // The committed stack reads as the layers applied in order.
    let view_at = root.path().join("view");
    fs::create_dir(&view_at).unwrap();
    {
        let v = s.view("second", &view_at).unwrap();
        assert_eq!(read(v.path(), "a"), None, "whited out");
        assert_eq!(read(v.path(), "d/b"), None, "opaque dir hides the lower");
        assert_eq!(read(v.path(), "d/c").as_deref(), Some("c2"));
        assert_eq!(read(v.path(), "keep").as_deref(), Some("k"));
        assert_eq!(read(v.path(), "new").as_deref(), Some("n2"));
    }

    // A writable snapshot: changes are seen in the mount and in the diff,
    // and the parent is untouched.
    let active = s.prepare(Some("second")).unwrap();
    {
        let m = active.mount().unwrap();
        fs::write(m.path().join("added"), "x").unwrap();
        fs::write(m.path().join("keep"), "changed").unwrap();
        fs::remove_file(m.path().join("new")).unwrap();
        assert_eq!(read(m.path(), "d/c").as_deref(), Some("c2"));
    }
    let changes: Vec<String> = active
        .diff()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(changes, ["A /added", "C /keep", "D /new"]);
    s.commit(active, "third").unwrap();
    {
        let v = s.view("second", &view_at).unwrap();
        assert_eq!(
            read(v.path(), "keep").as_deref(),
            Some("k"),
            "parent changed"
        );
    }
    let again = s.prepare(Some("third")).unwrap();
    {
        let m = again.mount().unwrap();
        assert_eq!(read(m.path(), "added").as_deref(), Some("x"));
        assert_eq!(read(m.path(), "keep").as_deref(), Some("changed"));
        assert_eq!(read(m.path(), "new"), None);
    }
    assert!(again.diff().unwrap().is_empty(), "nothing changed yet");
    drop(again);

    // Committing an id twice keeps the first; missing parents are errors.
    s.unpack("base", None, &layer(&[("other", Some("o"))])[..])
        .unwrap();
    assert_eq!(s.list().unwrap(), ["base", "second", "third"]);
    // The discarded copy is deleted in the background, never listed.
    let trash = root.path().join("snapshots/trash");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs::read_dir(&trash).unwrap().next().is_some() {
        assert!(std::time::Instant::now() < deadline, "trash never emptied");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = s.prepare(Some("missing")).unwrap_err().to_string();
    assert!(err.contains("snapshot missing does not exist"), "{err}");
    s.remove("third").unwrap();
    assert!(!s.exists("third"));
}

#[test]
fn overlay_backend() {
    let dir = tempfile::tempdir().unwrap();
    // CI runs as root on overlay-capable kernels: fail, not skip, if not.
    assert_eq!(
        Backend::detect(dir.path()),
        Backend::Overlay,
        "overlayfs should be usable here"
    );
    suite(Backend::Overlay);
}

#[test]
fn native_backend() {
    suite(Backend::Native);
}
