//! One test suite run against every backend (containerd's model): what a
//! caller sees must not depend on how snapshots are stored.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use std::collections::BTreeSet;

use kiln_core::image::Descriptor;
use kiln_snapshot::{
    chain_id, chain_ids, commit_layer, mount, unpack_layers, Backend, Kind, Mounted, SnapshotError,
    Snapshotter,
};
use kiln_store::Store;

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

fn mounted(mounts: &[kiln_snapshot::Mount], at: &Path) -> Mounted {
    fs::create_dir_all(at).unwrap();
    mount(mounts, at).unwrap()
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
    let at = |n: &str| root.path().join("at").join(n);

    // The committed stack reads as the layers applied in order, through a
    // view (a key of its own, holding its parent until removed).
    let mounts = s.view("v1", "second").unwrap();
    assert_eq!(s.mounts("v1").unwrap(), mounts);
    let info = s.stat("v1").unwrap();
    assert_eq!(
        (info.kind, info.parent.as_deref()),
        (Kind::View, Some("second"))
    );
    {
        let v = mounted(&mounts, &at("v1"));
        assert_eq!(read(v.path(), "a"), None, "whited out");
        assert_eq!(read(v.path(), "d/b"), None, "opaque dir hides the lower");
        assert_eq!(read(v.path(), "d/c").as_deref(), Some("c2"));
        assert_eq!(read(v.path(), "keep").as_deref(), Some("k"));
        assert_eq!(read(v.path(), "new").as_deref(), Some("n2"));
    }
    s.remove("v1").unwrap();
    assert!(matches!(s.stat("v1"), Err(SnapshotError::NotFound(_))));

    // A writable snapshot: changes are seen in the mount and in the diff,
    // and the parent is untouched.
    let mounts = s.prepare("a1", Some("second")).unwrap();
    assert_eq!(s.mounts("a1").unwrap(), mounts);
    {
        let m = mounted(&mounts, &at("a1"));
        fs::write(m.path().join("added"), "x").unwrap();
        fs::write(m.path().join("keep"), "changed").unwrap();
        fs::remove_file(m.path().join("new")).unwrap();
        assert_eq!(read(m.path(), "d/c").as_deref(), Some("c2"));
    }
    let changes: Vec<String> = s
        .diff("a1")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(changes, ["A /added", "C /keep", "D /new"]);
    assert!(s.usage("a1").unwrap().inodes >= 3, "the writes take room");
    assert!(s.usage("base").unwrap().size > 0);
    assert!(matches!(
        s.prepare("a1", Some("base")),
        Err(SnapshotError::AlreadyExists(_))
    ));
    let walked: Vec<(String, Kind, Option<String>)> = s
        .walk()
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.kind, i.parent))
        .collect();
    assert_eq!(
        walked,
        [
            ("a1".into(), Kind::Active, Some("second".into())),
            ("base".into(), Kind::Committed, None),
            ("second".into(), Kind::Committed, Some("base".into())),
        ]
    );
    // In use: a parent of an active snapshot or of a committed one.
    for name in ["second", "base"] {
        assert!(
            matches!(s.remove(name), Err(SnapshotError::InUse { .. })),
            "{name}"
        );
    }
    // An active snapshot without an owner is a container's: it persists
    // (across processes) and keeps its parents through any prune.
    let report = s.prune(&BTreeSet::new()).unwrap();
    assert!(
        report.removed.is_empty() && report.abandoned.is_empty(),
        "{report:?}"
    );
    let reopened = Snapshotter::open(root.path(), backend).unwrap();
    assert_eq!(reopened.mounts("a1").unwrap(), mounts);

    s.commit("third", "a1").unwrap();
    assert!(matches!(s.stat("a1"), Err(SnapshotError::NotFound(_))));
    assert_eq!(s.parent_of("third").unwrap().as_deref(), Some("second"));
    {
        let v = mounted(&s.view("v2", "second").unwrap(), &at("v2"));
        assert_eq!(
            read(v.path(), "keep").as_deref(),
            Some("k"),
            "parent changed"
        );
    }
    s.remove("v2").unwrap();
    let mounts = s.prepare("a2", Some("third")).unwrap();
    {
        let m = mounted(&mounts, &at("a2"));
        assert_eq!(read(m.path(), "added").as_deref(), Some("x"));
        assert_eq!(read(m.path(), "keep").as_deref(), Some("changed"));
        assert_eq!(read(m.path(), "new"), None);
    }
    assert!(s.diff("a2").unwrap().is_empty(), "nothing changed yet");
    s.remove("a2").unwrap();

    // Committing a name twice keeps the first; missing parents and bad
    // keys are errors.
    s.unpack("base", None, &layer(&[("other", Some("o"))])[..])
        .unwrap();
    assert_eq!(s.list().unwrap(), ["base", "second", "third"]);
    // The discarded copy waits in the trash, never listed, until it is
    // emptied.
    assert!(kiln_snapshot::trash_pending(root.path()));
    kiln_snapshot::empty_trash(root.path()).unwrap();
    assert!(!kiln_snapshot::trash_pending(root.path()));
    let trash = root.path().join("snapshots/trash");
    let left: Vec<_> = fs::read_dir(&trash)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".emptying")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let err = s.prepare("x", Some("missing")).unwrap_err().to_string();
    assert!(err.contains("snapshot missing does not exist"), "{err}");
    for bad in ["../x", "", "active", ".hidden", "a/b"] {
        assert!(
            matches!(s.prepare(bad, None), Err(SnapshotError::InvalidKey { .. })),
            "{bad:?}"
        );
    }

    // A lease owns its process's active snapshots and holds what it
    // unpacks and commits: a prune leaves them while it lives.
    let build = s.leased().unwrap();
    let key = build.new_key("step");
    build.prepare(&key, Some("base")).unwrap();
    build
        .unpack("held", Some("base"), &layer(&[("h", Some("h"))])[..])
        .unwrap();
    let report = s.prune(&BTreeSet::from(["third".to_string()])).unwrap();
    assert!(
        report.removed.is_empty(),
        "kept, held or in use: {report:?}"
    );
    let report = s.prune(&BTreeSet::new()).unwrap();
    assert_eq!(report.removed, ["second", "third"]);
    assert_eq!(s.list().unwrap(), ["base", "held"]);
    // Its owner gone, the active snapshot is abandoned and nothing holds
    // what the lease held.
    drop(build);
    let report = s.prune(&BTreeSet::new()).unwrap();
    assert_eq!(report.abandoned, [key]);
    assert_eq!(report.removed, ["base", "held"]);
    assert!(s.walk().unwrap().is_empty());

    // An owner killed without cleaning up leaves its lease file unlocked:
    // the same.
    s.unpack("base", None, &base[..]).unwrap();
    let dead = s.leased().unwrap();
    let key = dead.new_key("step");
    dead.prepare(&key, Some("base")).unwrap();
    let lease = root.path().join("snapshots/leases");
    let file = fs::read_dir(&lease)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let kept = root.path().join("lease-copy");
    fs::copy(&file, &kept).unwrap();
    drop(dead);
    fs::copy(&kept, &file).unwrap();
    let report = s.prune(&BTreeSet::new()).unwrap();
    assert_eq!(
        (report.abandoned, report.removed),
        (vec![key], vec!["base".to_string()])
    );
    assert_eq!(
        fs::read_dir(&lease).unwrap().count(),
        0,
        "dead lease files go"
    );
}

/// Unpacking an image's layers and committing an active snapshot as a
/// layer into the store, by chain ids.
fn layers_suite(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let snaps = Snapshotter::open(root.path(), backend)
        .unwrap()
        .leased()
        .unwrap();
    let bytes = layer(&[("etc/", None), ("etc/os", Some("test"))]);
    let mut w = store.blobs().ingest().unwrap();
    std::io::Write::write_all(&mut w, &bytes).unwrap();
    let (digest, size) = w.commit(None, None).unwrap();
    let desc = Descriptor::new(
        "application/vnd.oci.image.layer.v1.tar",
        digest.clone(),
        size,
    );
    let top = unpack_layers(
        &snaps,
        &store,
        std::slice::from_ref(&desc),
        std::slice::from_ref(&digest),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        chain_ids(std::slice::from_ref(&digest)),
        std::slice::from_ref(&top)
    );
    assert_eq!(top, digest.hex());
    // Present: nothing to unpack again.
    assert_eq!(
        unpack_layers(&snaps, &store, &[desc], std::slice::from_ref(&digest)).unwrap(),
        Some(top.clone())
    );

    let key = snaps.new_key("step");
    let mounts = snaps.prepare(&key, Some(&top)).unwrap();
    {
        let m = mounted(&mounts, &root.path().join("at"));
        fs::write(m.path().join("etc/new"), "n").unwrap();
        fs::write(m.path().join("dropped"), "d").unwrap();
    }
    let opts = kiln_layer::TarOptions { clamp_mtime: None };
    let made = commit_layer(&snaps, &store, &key, &opts, |c| {
        c.into_iter()
            .filter(|c| !c.to_string().contains("dropped"))
            .collect()
    })
    .unwrap()
    .unwrap();
    assert_eq!(made.snapshot, chain_id(Some(&top), &made.diff_id).unwrap());
    assert_eq!(
        chain_ids(&[digest, made.diff_id.clone()]).pop(),
        Some(made.snapshot.clone())
    );
    assert_eq!(made.descriptor.digest, made.diff_id);
    assert!(store.blobs().exists(&made.descriptor.digest));
    assert_eq!(snaps.parent_of(&made.snapshot).unwrap(), Some(top));
    {
        let v = mounted(
            &snaps.view("v", &made.snapshot).unwrap(),
            &root.path().join("v"),
        );
        assert_eq!(read(v.path(), "etc/new").as_deref(), Some("n"));
        assert_eq!(read(v.path(), "etc/os").as_deref(), Some("test"));
    }
    // What the filter dropped is not in the layer (the snapshot keeps
    // what the step left, as the build's mountpoints).
    let mut names = Vec::new();
    let blob = store.blobs().open(&made.descriptor.digest).unwrap();
    for e in tar::Archive::new(blob).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(names, ["etc/", "etc/new"]);
    snaps.remove("v").unwrap();
    // No change: no layer, and the active snapshot is gone.
    let key = snaps.new_key("step");
    snaps.prepare(&key, Some(&made.snapshot)).unwrap();
    assert!(commit_layer(&snaps, &store, &key, &opts, |c| c)
        .unwrap()
        .is_none());
    assert!(snaps.stat(&key).is_err());
}

/// A container's writable layer: an active snapshot made without a lease
/// on a chain a (since dead) lease unpacked. No prune, whatever its keep
/// set, removes it or any snapshot of the chain under it; once it is
/// removed the chain goes.
fn container_layer_suite(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(root.path(), backend).unwrap();
    {
        let unpacker = s.leased().unwrap();
        unpacker
            .unpack("l1", None, &layer(&[("a", Some("1"))])[..])
            .unwrap();
        unpacker
            .unpack("l2", Some("l1"), &layer(&[("b", Some("2"))])[..])
            .unwrap();
    }
    s.prepare("container-abc", Some("l2")).unwrap();
    for _ in 0..2 {
        let report = s.prune(&BTreeSet::new()).unwrap();
        assert!(report.removed.is_empty(), "{report:?}");
        assert!(report.abandoned.is_empty(), "{report:?}");
    }
    assert_eq!(s.list().unwrap(), ["l1", "l2"]);
    {
        let m = mounted(&s.mounts("container-abc").unwrap(), &root.path().join("c"));
        assert_eq!(read(m.path(), "a").as_deref(), Some("1"));
        assert_eq!(read(m.path(), "b").as_deref(), Some("2"));
    }
    s.remove("container-abc").unwrap();
    let report = s.prune(&BTreeSet::new()).unwrap();
    assert_eq!(report.removed, ["l1", "l2"]);
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
    layers_suite(Backend::Overlay);
    container_layer_suite(Backend::Overlay);
}

#[test]
fn native_backend() {
    suite(Backend::Native);
    layers_suite(Backend::Native);
    container_layer_suite(Backend::Native);
}
