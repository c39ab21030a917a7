//! `apply_local`: a stream kiln makes itself whose file contents come from
//! the caller's files, copied in the kernel; and the metadata calls apply
//! leaves out when a new file is already as asked (owner, mode), checked
//! against what the tar asks for in the cases where it must not.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use kiln_layer::{apply, apply_local, ApplyOptions, LocalFile, LOCAL_FILE_PAX};
use support::Sandbox;

fn header(name: &str, kind: tar::EntryType, mode: u32, ids: (u64, u64), size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(ids.0);
    h.set_gid(ids.1);
    h.set_mtime(1_234_567_890);
    h.set_size(size);
    h.set_cksum();
    h
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn marked_entries_take_their_contents_from_the_callers_files() {
    let sb = Sandbox::new();
    let src = tempfile::tempdir().unwrap();
    // Bigger than one copy chunk of the fallback, and an empty file.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(src.path().join("big"), &big).unwrap();
    fs::write(src.path().join("empty"), b"").unwrap();
    let files = [src.path().join("big"), src.path().join("empty")];
    let mut b = tar::Builder::new(Vec::new());
    b.append(
        &header("app/", tar::EntryType::Directory, 0o755, (0, 0), 0),
        &b""[..],
    )
    .unwrap();
    for (i, name) in ["app/big", "app/empty"].iter().enumerate() {
        b.append_pax_extensions([(LOCAL_FILE_PAX, i.to_string().as_bytes())])
            .unwrap();
        b.append(
            &header(name, tar::EntryType::Regular, 0o640, (0, 0), 0),
            &b""[..],
        )
        .unwrap();
    }
    // An unmarked entry in the same stream keeps its own bytes.
    b.append(
        &header("app/inline", tar::EntryType::Regular, 0o644, (0, 0), 3),
        &b"abc"[..],
    )
    .unwrap();
    let stream = b.into_inner().unwrap();
    let open = |id: u64| fs::File::open(&files[id as usize]).map(Into::into);
    let opts = ApplyOptions {
        diff_id: false,
        ..ApplyOptions::for_current_user()
    };
    apply_local(&stream[..], &sb.root(), &opts, &open).unwrap();
    let root = sb.root();
    assert_eq!(fs::read(root.join("app/big")).unwrap(), big);
    assert_eq!(fs::read(root.join("app/empty")).unwrap(), b"");
    assert_eq!(fs::read(root.join("app/inline")).unwrap(), b"abc");
    let m = fs::metadata(root.join("app/big")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    assert_eq!(m.mtime(), 1_234_567_890);
    // The source is a separate file, not the same inode.
    assert_ne!(m.ino(), fs::metadata(&files[0]).unwrap().ino());
    // An id the caller does not know is an error naming the entry.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([(LOCAL_FILE_PAX, b"7".as_slice())])
        .unwrap();
    b.append(
        &header("x", tar::EntryType::Regular, 0o644, (0, 0), 0),
        &b""[..],
    )
    .unwrap();
    let bad = b.into_inner().unwrap();
    let err = apply_local(&bad[..], &sb.root(), &opts, &|_| {
        Err(std::io::Error::other("no such local file"))
    })
    .unwrap_err();
    assert!(err.to_string().contains('x'), "{err}");
}

/// `n` marked files `f0`… whose contents `open` gives.
fn marked_stream(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        b.append_pax_extensions([(LOCAL_FILE_PAX, i.to_string().as_bytes())])
            .unwrap();
        b.append(
            &header(&format!("f{i}"), tar::EntryType::Regular, 0o644, (0, 0), 0),
            &b""[..],
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn a_pair_of_file_systems_that_refuses_copy_file_range_is_asked_once() {
    // The sources on tmpfs, the root on the disk's file system: the
    // kernel refuses copy_file_range between them (EXDEV), and after the
    // first file the rest go to sendfile without asking again.
    let shm = std::path::Path::new("/dev/shm");
    let src = tempfile::tempdir_in(shm).unwrap();
    let sb = Sandbox::new();
    let src_dev = fs::metadata(src.path()).unwrap().dev();
    assert_ne!(
        src_dev,
        fs::metadata(sb.root()).unwrap().dev(),
        "the test needs the sandbox off tmpfs"
    );
    let n = 20;
    let paths: Vec<_> = (0..n)
        .map(|i| {
            let p = src.path().join(format!("s{i}"));
            fs::write(&p, format!("file {i} ").repeat(1000)).unwrap();
            p
        })
        .collect();
    let opts = ApplyOptions {
        diff_id: false,
        ..ApplyOptions::for_current_user()
    };
    let open = |id: u64| {
        Ok(LocalFile {
            file: fs::File::open(&paths[id as usize])?,
            dev: Some(src_dev),
        })
    };
    let r = apply_local(&marked_stream(n)[..], &sb.root(), &opts, &open).unwrap();
    assert_eq!(r.copy_range_refused, 1);
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(
            fs::read(sb.root().join(format!("f{i}"))).unwrap(),
            fs::read(p).unwrap()
        );
    }
    // Without the source's dev nothing is remembered: every file asks.
    let sb = Sandbox::new();
    let open = |id: u64| fs::File::open(&paths[id as usize]).map(Into::into);
    let r = apply_local(&marked_stream(n)[..], &sb.root(), &opts, &open).unwrap();
    assert_eq!(r.copy_range_refused, n as u64);
    // On one file system copy_file_range is never refused.
    let same = tempfile::tempdir_in(sb.root()).unwrap();
    let paths: Vec<_> = (0..n)
        .map(|i| {
            let p = same.path().join(format!("s{i}"));
            fs::write(&p, format!("same {i}")).unwrap();
            p
        })
        .collect();
    let dev = fs::metadata(same.path()).unwrap().dev();
    let open = |id: u64| {
        Ok(LocalFile {
            file: fs::File::open(&paths[id as usize])?,
            dev: Some(dev),
        })
    };
    let dst = Sandbox::new();
    let r = apply_local(&marked_stream(n)[..], &dst.root(), &opts, &open).unwrap();
    assert_eq!(r.copy_range_refused, 0);
    assert_eq!(fs::read(dst.root().join("f3")).unwrap(), b"same 3");
}

#[test]
fn new_files_get_the_modes_and_owners_the_tar_asks_for() {
    // Apply skips fchown/fchmod for a new file only when creation already
    // gave it the asked owner and mode: these entries each need one of
    // them (modes the umask would cut, setuid/setgid/sticky bits, other
    // owners, root's file in a setgid directory of another group) or
    // neither (root's 0644 and 0755 files).
    let sb = Sandbox::new();
    let mut b = tar::Builder::new(Vec::new());
    let entries: &[(&str, tar::EntryType, u32, (u64, u64))] = &[
        ("d/", tar::EntryType::Directory, 0o755, (0, 0)),
        ("d/plain", tar::EntryType::Regular, 0o644, (0, 0)),
        ("d/exec", tar::EntryType::Regular, 0o755, (0, 0)),
        ("d/open", tar::EntryType::Regular, 0o666, (0, 0)),
        ("d/all", tar::EntryType::Regular, 0o777, (0, 0)),
        ("d/none", tar::EntryType::Regular, 0o000, (0, 0)),
        ("d/suid", tar::EntryType::Regular, 0o4755, (0, 0)),
        ("d/sticky", tar::EntryType::Regular, 0o1644, (0, 0)),
        ("d/other", tar::EntryType::Regular, 0o644, (1234, 5678)),
        ("d/othersuid", tar::EntryType::Regular, 0o6755, (1234, 5678)),
        ("sg/", tar::EntryType::Directory, 0o2775, (0, 5678)),
        ("sg/root", tar::EntryType::Regular, 0o644, (0, 0)),
        ("sg/group", tar::EntryType::Regular, 0o644, (0, 5678)),
    ];
    for (name, kind, mode, ids) in entries {
        let data: &[u8] = if kind.is_dir() { b"" } else { b"x" };
        b.append(&header(name, *kind, *mode, *ids, data.len() as u64), data)
            .unwrap();
    }
    let layer = b.into_inner().unwrap();
    apply(&layer[..], &sb.root(), &ApplyOptions::for_current_user()).unwrap();
    let me = (
        u64::from(rustix::process::geteuid().as_raw()),
        u64::from(rustix::process::getegid().as_raw()),
    );
    for (name, _, mode, ids) in entries {
        let m = fs::symlink_metadata(sb.root().join(name)).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, *mode, "mode of {name}");
        assert_eq!(m.mtime(), 1_234_567_890, "mtime of {name}");
        if is_root() {
            assert_eq!(
                (u64::from(m.uid()), u64::from(m.gid())),
                *ids,
                "owner of {name}"
            );
        } else if !name.starts_with("sg/") {
            assert_eq!(u64::from(m.uid()), me.0, "owner of {name}");
        }
    }
}
