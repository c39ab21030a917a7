//! Change detection and layer writing: the two-tree diff and the overlayfs
//! diff agree, layers are reproducible, and applying a diff layer onto the
//! lower tree gives the upper tree.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use kiln_core::Digest;
use kiln_layer::{
    apply, diff_overlay, diff_trees, write_layer_tar, ApplyOptions, Change, TarOptions,
};

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// `cp -a`: a faithful copy (modes, owners, times, links).
fn copy_tree(from: &Path, to: &Path) {
    sh(&format!("cp -a {} {}", from.display(), to.display()));
}

/// A lower tree with the usual kinds of entries, all at a fixed old mtime.
fn make_lower(dir: &Path) {
    fs::create_dir_all(dir.join("etc/conf.d")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::create_dir_all(dir.join("var/cache/app/deep")).unwrap();
    fs::write(dir.join("etc/hostname"), "lower\n").unwrap();
    fs::write(dir.join("etc/conf.d/a.conf"), "a=1\n").unwrap();
    fs::write(dir.join("usr/bin/tool"), vec![7u8; 10_000]).unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("var/cache/app/deep/x"), "x").unwrap();
    fs::write(dir.join("var/cache/app/y"), "y").unwrap();
    symlink("tool", dir.join("usr/bin/alias")).unwrap();
    fs::write(dir.join("replaced-dir-later"), "file").unwrap();
    fs::create_dir(dir.join("dir-becomes-file")).unwrap();
    fs::write(dir.join("dir-becomes-file/inner"), "i").unwrap();
    sh(&format!(
        "find {} -exec touch -h -d @1000000000 {{}} +",
        dir.display()
    ));
}

/// The same modifications, applied under `root` (a copy or an overlay mount).
fn modify(root: &Path) {
    fs::write(root.join("etc/hostname"), "upper\n").unwrap();
    fs::write(root.join("etc/new-file"), "new\n").unwrap();
    fs::remove_file(root.join("etc/conf.d/a.conf")).unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::remove_dir_all(root.join("var/cache/app")).unwrap();
    symlink("/usr/bin/tool", root.join("usr/bin/abs-link")).unwrap();
    fs::remove_file(root.join("replaced-dir-later")).unwrap();
    fs::create_dir(root.join("replaced-dir-later")).unwrap();
    fs::write(root.join("replaced-dir-later/child"), "c").unwrap();
    fs::remove_dir_all(root.join("dir-becomes-file")).unwrap();
    fs::write(root.join("dir-becomes-file"), "now a file").unwrap();
    fs::hard_link(root.join("etc/new-file"), root.join("etc/new-file-link")).unwrap();
}

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

fn layer(upper: &Path, changes: &[Change]) -> Vec<u8> {
    let opts = TarOptions {
        clamp_mtime: Some(1_500_000_000),
    };
    write_layer_tar(upper, changes, &opts, Vec::new())
        .unwrap()
        .1
}

const EXPECTED: &[&str] = &[
    "D /dir-becomes-file",
    "C /etc",
    "D /etc/conf.d/a.conf",
    "C /etc/conf.d",
    "C /etc/hostname",
    "A /etc/new-file",
    "A /etc/new-file-link",
    "C /replaced-dir-later",
    "A /replaced-dir-later/child",
    "C /usr",
    "C /usr/bin",
    "A /usr/bin/abs-link",
    "C /usr/bin/tool",
    "C /var",
    "C /var/cache",
    "D /var/cache/app",
];

#[test]
fn two_tree_diff_lists_what_changed() {
    let t = tempfile::tempdir().unwrap();
    let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
    make_lower(&lower);
    copy_tree(&lower, &upper);
    assert!(
        diff_trees(&lower, &upper).unwrap().is_empty(),
        "a faithful copy has no changes"
    );
    modify(&upper);
    let mut got = lines(&diff_trees(&lower, &upper).unwrap());
    // A path replaced by another kind is a change of that path.
    got.retain(|l| l != "C /dir-becomes-file");
    let mut want: Vec<String> = EXPECTED.iter().map(|s| s.to_string()).collect();
    want.retain(|l| l != "D /dir-becomes-file");
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn overlay_upper_and_two_tree_diff_give_the_same_layer() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    make_lower(&p("lower"));
    // Copy snapshotter.
    copy_tree(&p("lower"), &p("copy"));
    modify(&p("copy"));
    // Overlay snapshotter: the same changes through a real overlay mount.
    for d in ["upper", "work", "merged"] {
        fs::create_dir(p(d)).unwrap();
    }
    sh(&format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {}",
        p("lower").display(),
        p("upper").display(),
        p("work").display(),
        p("merged").display()
    ));
    modify(&p("merged"));
    sh(&format!("umount {}", p("merged").display()));

    let from_copy = diff_trees(&p("lower"), &p("copy")).unwrap();
    let from_overlay = diff_overlay(&p("lower"), &p("upper")).unwrap();
    assert_eq!(lines(&from_overlay), lines(&from_copy));
    let a = layer(&p("copy"), &from_copy);
    let b = layer(&p("upper"), &from_overlay);
    assert_eq!(
        Digest::sha256(&a),
        Digest::sha256(&b),
        "same change, same layer"
    );
}

#[test]
fn same_tree_from_two_places_and_times_gives_identical_layers() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let a = t.path().join("a");
    make_lower(&a);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = t.path().join("elsewhere/b");
    fs::create_dir_all(b.parent().unwrap()).unwrap();
    make_lower(&b); // new inodes, ctimes, atimes
    let la = layer(&a, &diff_trees(&empty, &a).unwrap());
    let lb = layer(&b, &diff_trees(&empty, &b).unwrap());
    assert_eq!(la, lb);
    // And SOURCE_DATE_EPOCH clamps what was written now.
    fs::write(a.join("fresh"), "f").unwrap();
    let changes = diff_trees(&empty, &a).unwrap();
    let tar = layer(&a, &changes);
    let mut archive = tar::Archive::new(&tar[..]);
    for e in archive.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_500_000_000);
    }
}

#[test]
fn applying_the_diff_layer_onto_lower_gives_upper() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    make_lower(&p("lower"));
    copy_tree(&p("lower"), &p("upper"));
    modify(&p("upper"));
    // Tar records whole seconds: give the new entries whole-second mtimes
    // so the round trip can be compared exactly.
    sh(&format!(
        "find {} -newermt @1000000001 -exec touch -h -d @1600000000 {{}} +",
        p("upper").display()
    ));
    let changes = diff_trees(&p("lower"), &p("upper")).unwrap();
    let tar = write_layer_tar(&p("upper"), &changes, &TarOptions::default(), Vec::new())
        .unwrap()
        .1;
    // Rebuild lower from its own layer, then apply the diff on top.
    fs::create_dir(p("rebuilt")).unwrap();
    let empty = p("empty");
    fs::create_dir(&empty).unwrap();
    let base = write_layer_tar(
        &p("lower"),
        &diff_trees(&empty, &p("lower")).unwrap(),
        &TarOptions::default(),
        Vec::new(),
    )
    .unwrap()
    .1;
    let opts = ApplyOptions::for_current_user();
    apply(&base[..], &p("rebuilt"), &opts).unwrap();
    assert!(
        diff_trees(&p("lower"), &p("rebuilt")).unwrap().is_empty(),
        "base layer round trip"
    );
    let report = apply(&tar[..], &p("rebuilt"), &opts).unwrap();
    assert_eq!(report.diff_id.unwrap(), Digest::sha256(&tar));
    let left = lines(&diff_trees(&p("upper"), &p("rebuilt")).unwrap());
    assert!(left.is_empty(), "rebuilt differs from upper: {left:?}");
    // The hard link survived as a hard link.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(p("rebuilt/etc/new-file")).unwrap().ino(),
        fs::metadata(p("rebuilt/etc/new-file-link")).unwrap().ino()
    );
}

#[test]
fn a_missing_upper_directory_is_an_error_not_an_empty_layer() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("typo");
    for result in [
        diff_trees(t.path(), &missing),
        diff_overlay(t.path(), &missing),
    ] {
        let e = result.unwrap_err();
        assert!(e.to_string().contains("typo"), "{e}");
    }
    fs::write(t.path().join("file"), "x").unwrap();
    let e = diff_trees(t.path(), &t.path().join("file")).unwrap_err();
    assert!(e.to_string().contains("is not a directory"), "{e}");
    // A missing lower is simply empty.
    fs::create_dir(t.path().join("up")).unwrap();
    assert!(diff_trees(&t.path().join("nothing"), &t.path().join("up"))
        .unwrap()
        .is_empty());
}
