//! What apply must get right for well-formed layers: whiteouts and their
//! ordering rules, hard links into lower layers, modes, owners, times,
//! xattrs, long names, special files, and the diff_id it reports.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use kiln_core::Digest;
use kiln_layer::{apply, ApplyOptions, Compression};
use support::{tarball, Sandbox, E};

fn apply_all(sb: &Sandbox, layers: &[Vec<u8>]) {
    for l in layers {
        apply(&l[..], &sb.root(), &ApplyOptions::for_current_user()).unwrap();
    }
}

fn exists(sb: &Sandbox, p: &str) -> bool {
    fs::symlink_metadata(sb.root().join(p)).is_ok()
}

#[test]
fn whiteouts_remove_lower_files_and_directories() {
    let sb = Sandbox::new();
    let lower = tarball(&[
        E::Dir("etc"),
        E::File("etc/a", b"a"),
        E::File("etc/b", b"b"),
        E::Dir("var/lib/x"),
        E::File("var/lib/x/deep", b"d"),
    ]);
    let upper = tarball(&[E::File("etc/.wh.a", b""), E::File("var/lib/.wh.x", b"")]);
    apply_all(&sb, &[lower, upper]);
    assert!(!exists(&sb, "etc/a"));
    assert!(exists(&sb, "etc/b"));
    assert!(!exists(&sb, "var/lib/x"));
    assert!(exists(&sb, "var/lib"));
    assert!(
        !exists(&sb, "etc/.wh.a"),
        "whiteout files are not extracted"
    );
}

#[test]
fn whiteouts_do_not_touch_the_same_layers_files() {
    let sb = Sandbox::new();
    let lower = tarball(&[E::File("f", b"lower")]);
    // The same layer recreates f and whites it out, in both orders.
    let upper = tarball(&[
        E::File("f", b"upper"),
        E::File(".wh.f", b""),
        E::File(".wh.g", b""),
        E::File("g", b"g"),
    ]);
    apply_all(&sb, &[lower, upper]);
    assert_eq!(fs::read(sb.root().join("f")).unwrap(), b"upper");
    assert_eq!(fs::read(sb.root().join("g")).unwrap(), b"g");
}

#[test]
fn opaque_directories_hide_lower_contents_only() {
    let sb = Sandbox::new();
    let lower = tarball(&[
        E::Dir("d"),
        E::File("d/a", b"a"),
        E::Dir("d/sub"),
        E::File("d/sub/x", b"x"),
        E::File("keep", b"k"),
    ]);
    // New content both before and after the opaque marker.
    let upper = tarball(&[
        E::Dir("d"),
        E::File("d/before", b"1"),
        E::Dir("d/sub"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/after", b"2"),
    ]);
    apply_all(&sb, &[lower, upper]);
    assert!(!exists(&sb, "d/a"));
    assert!(
        !exists(&sb, "d/sub/x"),
        "a re-created subdirectory does not merge lower content"
    );
    assert!(exists(&sb, "d/sub"));
    assert_eq!(fs::read(sb.root().join("d/before")).unwrap(), b"1");
    assert_eq!(fs::read(sb.root().join("d/after")).unwrap(), b"2");
    assert!(exists(&sb, "keep"));
    assert!(!exists(&sb, "d/.wh..wh..opq"));
}

#[test]
fn hard_links_to_lower_layer_files() {
    let sb = Sandbox::new();
    let lower = tarball(&[E::Dir("bin"), E::File("bin/busybox", b"ELF")]);
    let upper = tarball(&[
        E::Hardlink("bin/sh", "bin/busybox"),
        E::Hardlink("bin/ls", "/bin/busybox"),
    ]);
    apply_all(&sb, &[lower, upper]);
    let ino = |p: &str| fs::metadata(sb.root().join(p)).unwrap().ino();
    assert_eq!(ino("bin/sh"), ino("bin/busybox"));
    assert_eq!(ino("bin/ls"), ino("bin/busybox"));
    let r = apply(
        &tarball(&[E::Hardlink("x", "missing")])[..],
        &sb.root(),
        &ApplyOptions::for_current_user(),
    );
    assert!(r.is_err(), "a link to nothing is an error");
}

#[test]
fn modes_owners_and_times() {
    let sb = Sandbox::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_234_567_890);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("tmp", tar::EntryType::Directory, 0o1777, b"");
    add("tmp/setuid", tar::EntryType::Regular, 0o4755, b"s");
    add("tmp/setgid", tar::EntryType::Regular, 0o2711, b"g");
    add("tmp/fifo", tar::EntryType::Fifo, 0o600, b"");
    let layer = b.into_inner().unwrap();
    apply_all(&sb, &[layer]);
    let m = |p: &str| fs::symlink_metadata(sb.root().join(p)).unwrap();
    assert_eq!(m("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(m("tmp/setuid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m("tmp/setgid").permissions().mode() & 0o7777, 0o2711);
    assert!(m("tmp/fifo").file_type().is_fifo());
    assert_eq!(m("tmp/setuid").mtime(), 1_234_567_890);
    assert_eq!(
        m("tmp").mtime(),
        1_234_567_890,
        "directory time set after its children"
    );
    if rustix::process::geteuid().is_root() {
        assert_eq!((m("tmp/setuid").uid(), m("tmp/setuid").gid()), (1234, 5678));
    }
}

#[test]
fn xattrs_including_file_capabilities() {
    let sb = Sandbox::new();
    // A valid v2 capability blob: cap_net_bind_service, effective.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
    let layer = tarball(&[E::Pax(
        "ping",
        b"bin",
        vec![
            ("SCHILY.xattr.user.origin", b"kiln"),
            ("SCHILY.xattr.security.capability", &cap),
        ],
    )]);
    let report = apply(&layer[..], &sb.root(), &ApplyOptions::for_current_user()).unwrap();
    let mut buf = [0u8; 64];
    let p = sb.root().join("ping");
    let n = rustix::fs::getxattr(&p, "user.origin", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"kiln");
    if rustix::process::geteuid().is_root() {
        let n = rustix::fs::getxattr(&p, "security.capability", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], &cap[..]);
        assert_eq!(report.skipped_xattrs, 0);
    }
}

#[test]
fn long_names_and_symlinks() {
    let sb = Sandbox::new();
    let long_dir = "d".repeat(120);
    let long = format!("{long_dir}/{}", "f".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, &long, &b"long"[..]).unwrap(); // GNU long name
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    b.append_link(&mut h, "link-to-long", &long).unwrap();
    let layer = b.into_inner().unwrap();
    apply_all(&sb, &[layer]);
    assert_eq!(fs::read(sb.root().join(&long)).unwrap(), b"long");
    assert_eq!(
        fs::read_link(sb.root().join("link-to-long"))
            .unwrap()
            .to_str()
            .unwrap(),
        long
    );
}

#[test]
fn reports_diff_id_and_compression() {
    let plain = tarball(&[E::File("a", b"hello"), E::Dir("b")]);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let sb = Sandbox::new();
        let mut enc = c.encoder(Vec::new(), 2).unwrap();
        enc.write_all(&plain).unwrap();
        let layer = enc.finish_into().unwrap();
        let r = apply(&layer[..], &sb.root(), &ApplyOptions::for_current_user()).unwrap();
        assert_eq!(r.diff_id, Some(Digest::sha256(&plain)), "{c:?}");
        assert_eq!(r.compression, Some(c));
        assert_eq!(r.uncompressed_size, plain.len() as u64);
        assert_eq!(r.entries, 2);
    }
}
