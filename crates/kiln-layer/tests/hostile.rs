//! Hostile layers: each tarball tries one way out of the root. Every case
//! asserts that nothing outside the root was created, changed or removed,
//! and that the layer was either applied safely (inside the root) or
//! rejected with a clear error.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::fs;

use kiln_layer::{apply, ApplyOptions, LayerError};
use support::{tarball, Sandbox, E};

/// Applies, then checks the outside is exactly as before.
fn attempt(sb: &Sandbox, entries: &[E]) -> Result<kiln_layer::ApplyReport, LayerError> {
    let before = sb.outside_listing();
    let result = apply(
        &tarball(entries)[..],
        &sb.root(),
        &ApplyOptions::for_current_user(),
    );
    assert_eq!(
        sb.outside_listing(),
        before,
        "something outside the root changed"
    );
    assert_eq!(fs::read(sb.outside().join("canary")).unwrap(), b"untouched");
    result
}

fn escape_err(r: Result<kiln_layer::ApplyReport, LayerError>) {
    match r {
        Err(LayerError::Escape { path }) => assert!(!path.is_empty()),
        other => panic!("expected an escape error, got {other:?}"),
    }
}

#[test]
fn dotdot_names_are_rejected() {
    let sb = Sandbox::new();
    escape_err(attempt(&sb, &[E::File("../outside/pwned", b"x")]));
    escape_err(attempt(&sb, &[E::File("a/../../outside/pwned", b"x")]));
    escape_err(attempt(
        &sb,
        &[E::Dir("../../../../../../tmp/kiln-hostile-dir")],
    ));
    assert!(!std::path::Path::new("/tmp/kiln-hostile-dir").exists());
}

#[test]
fn absolute_names_stay_inside() {
    let sb = Sandbox::new();
    attempt(&sb, &[E::File("/etc/pwned", b"x")]).unwrap();
    assert_eq!(fs::read(sb.root().join("etc/pwned")).unwrap(), b"x");
}

#[test]
fn relative_symlink_parent_climbing_out_resolves_inside() {
    let sb = Sandbox::new();
    // Dangling inside the root: refused (as docker's chrooted extraction does).
    let r = attempt(
        &sb,
        &[
            E::Symlink("link", "../outside"),
            E::File("link/pwned", b"x"),
        ],
    );
    assert!(r.is_err(), "{r:?}");
    // With the target present inside the root, the write lands there.
    attempt(&sb, &[E::Dir("outside"), E::File("link/pwned", b"x")]).unwrap();
    assert_eq!(fs::read(sb.root().join("outside/pwned")).unwrap(), b"x");
}

#[test]
fn absolute_symlink_parent_resolves_inside() {
    let sb = Sandbox::new();
    let host_outside = sb.outside().to_str().unwrap().to_string();
    let r = attempt(
        &sb,
        &[
            E::Symlink("link", &host_outside),
            E::File("link/pwned", b"x"),
        ],
    );
    assert!(r.is_err(), "{r:?}");
    let inside_dir = host_outside.trim_start_matches('/').to_string();
    attempt(&sb, &[E::Dir(&inside_dir), E::File("link/pwned", b"x")]).unwrap();
    assert_eq!(
        fs::read(sb.root().join(&inside_dir).join("pwned")).unwrap(),
        b"x"
    );
}

#[test]
fn symlink_to_root_then_deep_write_stays_inside() {
    let sb = Sandbox::new();
    attempt(
        &sb,
        &[
            E::Symlink("rootlink", "/"),
            E::File("rootlink/etc/pwned", b"x"),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(sb.root().join("etc/pwned")).unwrap(), b"x");
}

#[test]
fn symlink_chain_climbing_out_resolves_inside() {
    let sb = Sandbox::new();
    attempt(
        &sb,
        &[
            E::Symlink("a", "b"),
            E::Symlink("b", "../../../.."),
            E::File("a/pwned", b"x"),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(sb.root().join("pwned")).unwrap(), b"x");
}

#[test]
fn hardlink_to_a_file_outside_is_rejected() {
    let sb = Sandbox::new();
    escape_err(attempt(&sb, &[E::Hardlink("hl", "../outside/canary")]));
}

#[test]
fn hardlink_through_a_symlinked_parent_stays_inside() {
    let sb = Sandbox::new();
    let host_outside = sb.outside().to_str().unwrap().to_string();
    // The parent resolves inside the root, where there is no canary: the
    // link fails rather than reaching the host file.
    let r = attempt(
        &sb,
        &[
            E::Symlink("link", &host_outside),
            E::Hardlink("hl", "link/canary"),
        ],
    );
    assert!(r.is_err(), "{r:?}");
    assert!(!sb.root().join("hl").exists());
}

#[test]
fn file_replacing_a_symlink_does_not_write_through_it() {
    let sb = Sandbox::new();
    let canary = sb.outside().join("canary");
    attempt(
        &sb,
        &[
            E::Symlink("x", canary.to_str().unwrap()),
            E::File("x", b"overwrite"),
        ],
    )
    .unwrap();
    let meta = fs::symlink_metadata(sb.root().join("x")).unwrap();
    assert!(meta.is_file());
    assert_eq!(fs::read(sb.root().join("x")).unwrap(), b"overwrite");
}

#[test]
fn directory_replacing_a_symlinked_directory() {
    let sb = Sandbox::new();
    let host_outside = sb.outside().to_str().unwrap().to_string();
    attempt(
        &sb,
        &[
            E::Symlink("d", &host_outside),
            E::Dir("d"),
            E::File("d/f", b"inside"),
        ],
    )
    .unwrap();
    assert!(fs::symlink_metadata(sb.root().join("d")).unwrap().is_dir());
    assert_eq!(fs::read(sb.root().join("d/f")).unwrap(), b"inside");
}

#[test]
fn duplicate_entries_last_wins() {
    let sb = Sandbox::new();
    attempt(
        &sb,
        &[
            E::File("f", b"first"),
            E::File("f", b"second"),
            E::Dir("f"),
            E::File("f/g", b"g"),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(sb.root().join("f/g")).unwrap(), b"g");
}

#[test]
fn whiteouts_naming_outside_paths() {
    let sb = Sandbox::new();
    escape_err(attempt(&sb, &[E::File("../outside/.wh.canary", b"")]));
    let r = attempt(&sb, &[E::Dir("sub"), E::File("sub/.wh...", b"")]);
    assert!(
        matches!(r, Err(LayerError::BadTar(ref m)) if m.contains("invalid whiteout")),
        "{r:?}"
    );
}

#[test]
fn whiteout_through_a_symlinked_parent_stays_inside() {
    let sb = Sandbox::new();
    let host_outside = sb.outside().to_str().unwrap().to_string();
    attempt(&sb, &[E::Symlink("link", &host_outside)]).unwrap();
    // A later layer whites out link/canary and makes link opaque.
    attempt(
        &sb,
        &[
            E::File("link/.wh.canary", b""),
            E::File("link/.wh..wh..opq", b""),
        ],
    )
    .unwrap();
}

#[test]
fn pax_path_climbing_out_is_rejected() {
    let sb = Sandbox::new();
    escape_err(attempt(
        &sb,
        &[E::Pax(
            "innocent",
            b"x",
            vec![("path", b"../../outside/pax-pwned")],
        )],
    ));
    assert!(!sb.outside().join("pax-pwned").exists());
}

#[test]
fn pax_linkpath_climbing_out_is_rejected() {
    let sb = Sandbox::new();
    let mut entries = tarball(&[]);
    // A hard link whose PAX linkpath climbs out.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("linkpath", &b"../outside/canary"[..])])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_path("hl").unwrap();
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    entries = b.into_inner().unwrap().into_iter().chain(entries).collect();
    let before = sb.outside_listing();
    let r = apply(&entries[..], &sb.root(), &ApplyOptions::for_current_user());
    assert!(matches!(r, Err(LayerError::Escape { .. })), "{r:?}");
    assert_eq!(sb.outside_listing(), before);
}

#[test]
fn device_nodes_are_created_only_inside_and_only_with_privilege() {
    let sb = Sandbox::new();
    let report = attempt(
        &sb,
        &[
            E::Char("dev/null", 1, 3),
            E::Char("../outside/evil-dev", 1, 3),
        ],
    );
    escape_err(report);
    let report = attempt(&sb, &[E::Char("dev/null", 1, 3)]).unwrap();
    if rustix::process::geteuid().is_root() {
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(sb.root().join("dev/null"))
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        assert_eq!(report.skipped_devices, 1);
        assert!(!sb.root().join("dev/null").exists());
    }
}

#[test]
fn hardlink_to_a_symlink_pointing_outside_then_overwrite() {
    let sb = Sandbox::new();
    let canary = sb.outside().join("canary");
    attempt(
        &sb,
        &[
            E::Symlink("s", canary.to_str().unwrap()),
            E::Hardlink("h", "s"),
            E::File("h", b"overwrite"),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(sb.root().join("h")).unwrap(), b"overwrite");
}

#[test]
fn parent_that_is_a_file_is_an_error_not_a_write() {
    let sb = Sandbox::new();
    let r = attempt(&sb, &[E::File("f", b"x"), E::File("f/child", b"y")]);
    assert!(
        matches!(r, Err(LayerError::BadTar(ref m)) if m.contains("not a directory")),
        "{r:?}"
    );
}

#[test]
fn garbage_and_truncated_layers_are_errors() {
    let sb = Sandbox::new();
    let r = apply(
        &vec![0x5au8; 3000][..],
        &sb.root(),
        &ApplyOptions::for_current_user(),
    );
    assert!(matches!(r, Err(LayerError::BadTar(_))), "{r:?}");
    let full = tarball(&[E::File("big", &[7u8; 5000])]);
    let r = apply(&full[..2000], &sb.root(), &ApplyOptions::for_current_user());
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn a_layer_cannot_name_a_host_file_with_the_local_marker() {
    // kiln's COPY streams mark files whose contents come from the build's
    // own table; a layer from elsewhere carrying the marker is refused,
    // whatever id it names.
    let sb = Sandbox::new();
    let r = attempt(
        &sb,
        &[E::Pax(
            "stolen",
            b"",
            vec![(kiln_layer::LOCAL_FILE_PAX, b"0".as_slice())],
        )],
    );
    match r {
        Err(LayerError::BadTar(m)) => assert!(m.contains(kiln_layer::LOCAL_FILE_PAX), "{m}"),
        other => panic!("expected a refusal naming the marker, got {other:?}"),
    }
}
