//! COPY links files an earlier COPY already wrote into a committed
//! snapshot instead of copying them (`kiln_layer::apply_local_linked`):
//! the layers must be byte-identical to a plain copy's (compared with a
//! fresh store, where there is nothing to link from), a later RUN that
//! changes a linked file must not change the snapshot it was linked from,
//! and `--no-cache` rebuilds and one-file changes must give the right
//! files.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::Kiln;

const EPOCH: &str = "1700000000";

/// The context: files of several modes and sizes, a symlink, an empty
/// directory; mtimes fixed before the epoch (so the clamp keeps them
/// apart). Only `a.txt` is written again on a later call (the others keep
/// their identity, so a later build can link them).
fn context(dir: &Path, a: &str) {
    let src = dir.join("src");
    let set_mtime = |p: &str, secs: u64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(src.join(p))
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    if !src.exists() {
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir_all(src.join("empty")).unwrap();
        fs::write(src.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
        fs::write(src.join("sub/deeper/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(
            src.join("sub/deeper/run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
        set_mtime("sub/b.bin", 1_500_000_001);
        set_mtime("sub/deeper/run.sh", 1_500_000_002);
    }
    fs::write(src.join("a.txt"), a).unwrap();
    set_mtime("a.txt", 1_500_000_000);
}

/// The build stage copies the context and derives a file from it; the
/// final stage copies the context again (linked from the build stage's
/// snapshot) and a RUN then changes a linked file.
const LINKED: &str = "FROM base:1 AS build
COPY src/ /src/
RUN cat /src/a.txt > /build.txt

FROM base:1
COPY --from=build /build.txt /app/
COPY src/ /app/src/
RUN echo more >> /app/src/a.txt
";

/// The same image without the build stage's COPY: nothing to link from.
fn plain(a: &str) -> String {
    format!(
        "FROM base:1 AS build
RUN echo '{}' > /build.txt

FROM base:1
COPY --from=build /build.txt /app/
COPY src/ /app/src/
RUN echo more >> /app/src/a.txt
",
        a.trim_end()
    )
}

fn build(k: &Kiln, dockerfile: &str, ctx: &Path, extra: &[&str]) {
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut args = vec!["build", "-q", "-t", "app:1"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    k.ok_with_env(&args, &[("SOURCE_DATE_EPOCH", EPOCH)]);
}

fn diff_ids(k: &Kiln) -> Vec<String> {
    k.inspect("app:1")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The image (or `--target`) exported as files.
fn export(k: &Kiln, ctx: &Path, extra: &[&str]) -> PathBuf {
    let dest = k.dir.path().join(format!(
        "out-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let spec = format!("type=local,dest={}", dest.display());
    let mut args = vec!["build", "-q", "--output", spec.as_str()];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    k.ok_with_env(&args, &[("SOURCE_DATE_EPOCH", EPOCH)]);
    dest
}

/// Every committed snapshot's copy of `rel` (path inside the snapshot).
fn snapshot_files(k: &Kiln, rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(k.root.join("snapshots")).unwrap() {
        let p = e.unwrap().path().join("fs").join(rel);
        if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// A store with the pinned base and a context holding `a`.
fn store(a: &str) -> (Kiln, PathBuf) {
    let k = Kiln::new();
    common::import_pinned_base(&k);
    let ctx = k.dir.path().join("ctx");
    context(&ctx, a);
    (k, ctx)
}

/// The layers a fresh store makes of the plain Dockerfile for context `a`.
fn reference(a: &str) -> Vec<String> {
    let (k, ctx) = store(a);
    build(&k, &plain(a), &ctx, &[]);
    assert!(
        snapshot_files(&k, "app/src/sub/b.bin")
            .iter()
            .all(|p| fs::metadata(p).unwrap().nlink() == 1),
        "nothing to link from in a fresh store"
    );
    diff_ids(&k)
}

#[test]
fn copy_links_from_earlier_snapshots_and_layers_stay_the_same() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (overlay snapshots; links are made as root only)");
    }
    let (k, ctx) = store("alpha\n");
    build(&k, LINKED, &ctx, &[]);

    // The final stage's COPY linked the build stage's files.
    let finals = snapshot_files(&k, "app/src/sub/b.bin");
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(fs::metadata(&finals[0]).unwrap().nlink(), 2);
    let builds = snapshot_files(&k, "src/sub/b.bin");
    assert_eq!(builds.len(), 1);
    assert_eq!(
        fs::metadata(&finals[0]).unwrap().ino(),
        fs::metadata(&builds[0]).unwrap().ino()
    );

    // Byte-identical layers: the COPY src/ layer (and all others) as a
    // store that had nothing to link from makes them.
    let want = reference("alpha\n");
    let got = diff_ids(&k);
    assert_eq!(got, want, "linked COPY gave other layers than a plain copy");

    // The RUN that appended to a linked file changed its copy only.
    for p in snapshot_files(&k, "src/a.txt") {
        assert_eq!(fs::read_to_string(&p).unwrap(), "alpha\n", "{p:?} changed");
    }
    let out = export(&k, &ctx, &[]);
    assert_eq!(
        fs::read_to_string(out.join("app/src/a.txt")).unwrap(),
        "alpha\nmore\n"
    );
    let build_stage = export(&k, &ctx, &["--target", "build"]);
    assert_eq!(
        fs::read_to_string(build_stage.join("src/a.txt")).unwrap(),
        "alpha\n"
    );

    // --no-cache: every step runs again, linking from the last build.
    build(&k, LINKED, &ctx, &["--no-cache"]);
    assert_eq!(diff_ids(&k), want, "--no-cache rebuild");

    // One file changed: the rest is linked from the previous build, the
    // changed file copied; the layers are a fresh store's.
    context(&ctx, "beta\n");
    build(&k, LINKED, &ctx, &[]);
    assert_eq!(diff_ids(&k), reference("beta\n"), "one file changed");
    let out = export(&k, &ctx, &[]);
    assert_eq!(
        fs::read_to_string(out.join("app/src/a.txt")).unwrap(),
        "beta\nmore\n"
    );
    assert_eq!(
        fs::read(out.join("app/src/sub/b.bin")).unwrap(),
        vec![7u8; 300_000]
    );
    assert_eq!(
        fs::read_to_string(out.join("app/build.txt")).unwrap(),
        "beta\n"
    );
    assert_eq!(
        fs::read_link(out.join("app/src/link")).unwrap(),
        PathBuf::from("a.txt")
    );
    let b = snapshot_files(&k, "app/src/sub/b.bin");
    assert!(
        b.iter().any(|p| fs::metadata(p).unwrap().nlink() >= 3),
        "b.bin not linked across builds: {b:?}"
    );

    // A cache hit after all this still gives the same image.
    let before = diff_ids(&k);
    build(&k, LINKED, &ctx, &[]);
    assert_eq!(diff_ids(&k), before);
}

#[test]
fn copy_never_links_from_its_own_parent_chain() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (overlay snapshots; links are made as root only)");
    }
    // Two COPYs of the same files in one stage: the second must not link
    // the first's (one image would hold one inode at two paths, which an
    // overlay with index=on keeps together on copy-up).
    let (k, ctx) = store("alpha\n");
    build(
        &k,
        "FROM base:1\nCOPY src/ /a/\nCOPY src/ /b/\nRUN echo more >> /b/a.txt\n",
        &ctx,
        &[],
    );
    let b = snapshot_files(&k, "b/sub/b.bin");
    assert_eq!(b.len(), 1);
    assert_eq!(fs::metadata(&b[0]).unwrap().nlink(), 1);
    let out = export(&k, &ctx, &[]);
    assert_eq!(fs::read_to_string(out.join("a/a.txt")).unwrap(), "alpha\n");
    assert_eq!(
        fs::read_to_string(out.join("b/a.txt")).unwrap(),
        "alpha\nmore\n"
    );
}
