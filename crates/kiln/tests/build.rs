//! `kiln build` end to end, on busybox bases made in the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::Kiln;

/// Writes `files` (path, content) under a new context directory.
fn context(k: &Kiln, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = k.dir.path().join(name);
    for (p, c) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, c).unwrap();
    }
    dir
}

/// Builds; returns (stdout, stderr).
fn build(k: &Kiln, args: &[&str]) -> (String, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let out = k.run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kiln build {args:?} failed:\n{stderr}"
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The image's root filesystem, exported with `--output type=local`.
fn export(k: &Kiln, ctx: &Path, extra: &[&str]) -> PathBuf {
    let dest = k.dir.path().join(format!("out-{}", unique()));
    let spec = format!("type=local,dest={}", dest.display());
    let mut args = vec!["--output", spec.as_str()];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    build(k, &args);
    dest
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

const EVERYTHING: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=base:1
FROM $BASE
ARG VERSION=0.0
ARG WHO
ENV APP_HOME=/opt/app PATH=/opt/app/bin:/bin
LABEL org.example.version=$VERSION who="${WHO:-nobody}"
WORKDIR $APP_HOME
COPY src/ ./src/
COPY *.md docs/
COPY --chown=app:app --chmod=600 src/a.txt /home/app/a.txt
ADD pkg.tar.gz /opt/extracted/
ADD pkg.tar.bz2 pkg.tar.xz /opt/more/
RUN echo "version $VERSION" > version.txt && echo "$APP_HOME" > home.txt
RUN ["/bin/sh", "-c", "echo exec form > exec.txt"]
RUN <<EOF
echo heredoc line one > heredoc.txt
echo heredoc line two >> heredoc.txt
EOF
SHELL ["/bin/sh", "-e", "-c"]
RUN test ! -e /opt/app/secret.key && echo ignored > ignore-check.txt
COPY <<conf.ini /etc/app.ini
version=${VERSION}
EOF_NOT_THE_END
conf.ini
USER app
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD cat /opt/app/version.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /opt/app/version.txt"]
ONBUILD RUN echo child
"#;

#[test]
fn every_instruction_lands_in_the_image() {
    let k = Kiln::new();
    k.import_busybox(
        "base:1",
        &[
            ("etc/group", b"root:x:0:\napp:x:1000:\n"),
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
        ],
        &["--change", "ONBUILD LABEL from.onbuild=yes"],
    );
    // A tar.gz for ADD to extract.
    let arch_dir = k.dir.path().join("arch");
    fs::create_dir_all(arch_dir.join("pkg")).unwrap();
    fs::write(arch_dir.join("pkg/inside.txt"), "from the archive\n").unwrap();
    let ctx = context(
        &k,
        "ctx",
        &[
            ("src/a.txt", "alpha\n"),
            ("src/sub/b.txt", "beta\n"),
            ("notes.md", "# notes\n"),
            ("secret.key", "do not copy\n"),
            (".dockerignore", "*.key\n"),
            ("Dockerfile", EVERYTHING),
        ],
    );
    common::tool(
        "tar",
        &[
            "-C",
            arch_dir.to_str().unwrap(),
            "-czf",
            ctx.join("pkg.tar.gz").to_str().unwrap(),
            "pkg",
        ],
    );
    for (flag, name) in [("-cjf", "pkg.tar.bz2"), ("-cJf", "pkg.tar.xz")] {
        let dir = k.dir.path().join(name);
        fs::create_dir_all(dir.join(name.replace('.', "-"))).unwrap();
        fs::write(dir.join(name.replace('.', "-")).join("f"), name).unwrap();
        common::tool(
            "tar",
            &[
                "-C",
                dir.to_str().unwrap(),
                flag,
                ctx.join(name).to_str().unwrap(),
                ".",
            ],
        );
    }
    let root = export(
        &k,
        &ctx,
        &[
            "-t",
            "app:1",
            "--build-arg",
            "VERSION=1.2",
            "--build-arg",
            "WHO=kiln",
            "--label",
            "extra=cli",
        ],
    );
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("opt/app/src/a.txt"), "alpha\n");
    assert_eq!(read("opt/app/src/sub/b.txt"), "beta\n");
    assert_eq!(read("opt/app/docs/notes.md"), "# notes\n");
    assert!(!root.join("opt/app/secret.key").exists());
    assert_eq!(read("opt/extracted/pkg/inside.txt"), "from the archive\n");
    assert_eq!(read("opt/more/pkg-tar-bz2/f"), "pkg.tar.bz2");
    assert_eq!(read("opt/more/pkg-tar-xz/f"), "pkg.tar.xz");
    assert_eq!(read("opt/app/version.txt"), "version 1.2\n");
    assert_eq!(read("opt/app/home.txt"), "/opt/app\n");
    assert_eq!(read("opt/app/exec.txt"), "exec form\n");
    assert_eq!(
        read("opt/app/heredoc.txt"),
        "heredoc line one\nheredoc line two\n"
    );
    assert_eq!(read("opt/app/ignore-check.txt"), "ignored\n");
    assert_eq!(read("etc/app.ini"), "version=1.2\nEOF_NOT_THE_END\n");
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(root.join("home/app/a.txt")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1000, 0o600));
    // Nothing the runtime mounted was committed.
    for p in [
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
        "proc",
        "sys",
        "dev",
    ] {
        assert!(!root.join(p).exists(), "{p} leaked into a layer");
    }

    let doc = k.inspect("app:1");
    let c = &doc["Config"];
    assert_eq!(
        c["Env"],
        // BuildKit's order: the stage starts with PATH (the base has no
        // Env), and ENV replaces it in place.
        serde_json::json!(["PATH=/opt/app/bin:/bin", "APP_HOME=/opt/app"])
    );
    assert_eq!(c["WorkingDir"], "/opt/app");
    assert_eq!(c["User"], "app");
    assert_eq!(
        c["Labels"],
        serde_json::json!({"org.example.version": "1.2", "who": "kiln", "extra": "cli", "from.onbuild": "yes"})
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "cat /opt/app/version.txt"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /opt/app/version.txt"]));
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    // History: one entry per instruction, metadata-only ones marked empty.
    let history = doc["History"].as_array().unwrap();
    let by: Vec<&str> = history
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or(""))
        .collect();
    assert!(
        by.iter()
            .any(|b| b.starts_with("RUN |2 VERSION=1.2 WHO=kiln /bin/sh -c echo \"version")),
        "{by:?}"
    );
    let layers = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(layers, doc["RootFS"]["Layers"].as_array().unwrap().len());
    assert!(history
        .iter()
        .any(|h| h["created_by"] == "USER app" && h["empty_layer"] == true));
}

#[test]
fn cache_reuses_steps_and_one_changed_file_reruns_only_what_depends_on_it() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("a.txt", "a1\n"),
            ("b.txt", "b1\n"),
            (
                "Dockerfile",
                "FROM base:1\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a-copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b-copy\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (_, first) = build(&k, &["-t", "c:1", c]);
    assert_eq!(first.matches(" CACHED").count(), 0, "{first}");
    let id1 = k.ok(&["images", "-q", "--no-trunc", "c:1"]);
    let (_, second) = build(&k, &["-t", "c:1", c]);
    assert_eq!(second.matches(" CACHED").count(), 5, "{second}");
    assert_eq!(
        k.ok(&["images", "-q", "--no-trunc", "c:1"]),
        id1,
        "a cached build makes the same image"
    );

    fs::write(ctx.join("b.txt"), "b2\n").unwrap();
    let (_, third) = build(&k, &["-t", "c:1", c]);
    // RUN one, COPY a, RUN a-copy cached; COPY b and RUN b-copy rerun.
    assert_eq!(third.matches(" CACHED").count(), 3, "{third}");
    let root = export(&k, &ctx, &[]);
    assert_eq!(fs::read_to_string(root.join("b-copy")).unwrap(), "b2\n");

    // Touching a file without changing it keeps the cache.
    let f = fs::File::options()
        .append(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    let (_, fourth) = build(&k, &["-t", "c:1", c]);
    assert_eq!(fourth.matches(" CACHED").count(), 5, "{fourth}");
    let (_, fifth) = build(&k, &["--no-cache", "-t", "c:1", c]);
    assert_eq!(fifth.matches(" CACHED").count(), 0, "{fifth}");

    // The --no-cache rebuild made every snapshot a second time; the
    // duplicates go to the trash, which a niced process started after the
    // build empties (off the build's path).
    let trash = k.root.join("snapshots/trash");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left: Vec<_> = fs::read_dir(&trash)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != ".emptying")
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trash never emptied: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let root = export(&k, &ctx, &[]);
    assert_eq!(fs::read_to_string(root.join("b-copy")).unwrap(), "b2\n");
}

#[test]
fn stages_target_and_copy_from() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1 AS left\nRUN echo left > /l\n\nFROM base:1 AS right\nRUN echo right > /r\n\nFROM base:1 AS unused\nRUN echo should-not-run > /u\n\nFROM scratch\nCOPY --from=left /l /l\nCOPY --from=1 /r /r\nCOPY --from=base:1 /bin/busybox /bin/busybox\n",
        )],
    );
    let (_, err) = build(&k, &["-t", "multi:1", ctx.to_str().unwrap()]);
    assert!(
        !err.contains("should-not-run"),
        "an unneeded stage ran:\n{err}"
    );
    let root = export(&k, &ctx, &[]);
    assert_eq!(fs::read_to_string(root.join("l")).unwrap(), "left\n");
    assert_eq!(fs::read_to_string(root.join("r")).unwrap(), "right\n");
    assert!(root.join("bin/busybox").exists());

    let (_, err) = build(
        &k,
        &["--target", "left", "-t", "left:1", ctx.to_str().unwrap()],
    );
    assert!(
        !err.contains("[right]"),
        "--target built another stage:\n{err}"
    );
    let out = k.run(&["build", "--target", "nope", ctx.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("target stage \"nope\" could not be found")
    );
}

#[test]
fn a_failing_step_names_its_line_exit_code_and_output() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1\nRUN echo fine\nRUN echo about to fail; echo on stderr >&2; exit 3\n",
        )],
    );
    let out = k.run(&["build", "-t", "bad:1", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:3: RUN echo about to fail"),
        "{err}"
    );
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(
        err.contains("--- last output lines:\nabout to fail\non stderr"),
        "{err}"
    );
    assert!(
        !k.run(&["inspect", "bad:1"]).status.success(),
        "a failed build must not tag"
    );

    let missing = context(
        &k,
        "ctx2",
        &[("Dockerfile", "FROM base:1\nCOPY nothere.txt /x\n")],
    );
    let err =
        String::from_utf8_lossy(&k.run(&["build", missing.to_str().unwrap()]).stderr).into_owned();
    assert!(
        err.contains("Dockerfile:2: COPY nothere.txt /x: nothere.txt: no such file"),
        "{err}"
    );
    let nobase = context(&k, "ctx3", &[("Dockerfile", "FROM missing:image\n")]);
    let err =
        String::from_utf8_lossy(&k.run(&["build", nobase.to_str().unwrap()]).stderr).into_owned();
    assert!(
        err.contains("FROM missing:image")
            && err.contains("pulling it failed")
            && err.contains("kiln load or kiln import it"),
        "{err}"
    );
}

#[test]
fn secrets_are_mounted_but_never_stored_and_cache_mounts_persist() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let secret = k.dir.path().join("token");
    fs::write(&secret, "s3cr3t-value\n").unwrap();
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1\n\
             RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len\n\
             RUN --mount=type=secret,id=tok,env=TOK sh -c 'test ${#TOK} = 12 && echo ok > /env-ok'\n\
             RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/runs; wc -l < /cache/runs > /runs'\n\
             RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && cat /scratch/t > /tmpfs-ok'\n",
        )],
    );
    let sec = format!("id=tok,src={}", secret.display());
    let root = export(&k, &ctx, &["--secret", &sec]);
    assert_eq!(fs::read_to_string(root.join("len")).unwrap().trim(), "13");
    assert_eq!(fs::read_to_string(root.join("env-ok")).unwrap(), "ok\n");
    assert_eq!(fs::read_to_string(root.join("tmpfs-ok")).unwrap(), "t\n");
    assert!(
        !root.join("run/secrets/tok").exists(),
        "the secret mountpoint was committed"
    );
    assert!(!root.join("cache/runs").exists() && !root.join("scratch/t").exists());
    // No blob in the store holds the secret.
    for e in fs::read_dir(k.root.join("blobs/sha256")).unwrap() {
        let bytes = fs::read(e.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
            "secret found in a blob"
        );
    }
    let root2 = export(&k, &ctx, &["--secret", &sec, "--no-cache"]);
    assert_eq!(
        fs::read_to_string(root2.join("runs")).unwrap().trim(),
        "2",
        "cache mount did not persist"
    );
    let out = k.run(&[
        "build",
        ctx.to_str().unwrap(),
        "--secret",
        "id=tok,src=/nonexistent",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable file"));
}

#[test]
fn builds_are_reproducible_across_directories_and_times() {
    let dockerfile = "FROM base:1\nCOPY app/ /app/\nRUN echo deterministic > /app/generated\nENV MODE=prod\nCMD [\"cat\", \"/app/main.txt\"]\n";
    let mut ids = Vec::new();
    for round in 0..2 {
        let k = Kiln::new();
        // The same base each round: its import timestamp is pinned too.
        common::import_pinned_base(&k);
        let ctx = context(
            &k,
            &format!("ctx-{round}"),
            &[
                ("app/main.txt", "main\n"),
                ("app/lib/util.txt", "util\n"),
                ("Dockerfile", dockerfile),
            ],
        );
        // Different mtimes in each round: SOURCE_DATE_EPOCH clamps them.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(ctx.join("app/main.txt"), "main\n").unwrap();
        let out = k.ok(&[
            "build",
            "-q",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            ctx.to_str().unwrap(),
        ]);
        ids.push(out.trim().to_string());
    }
    assert_eq!(ids[0], ids[1], "same inputs, different image IDs");
    assert!(ids[0].starts_with("sha256:"));
}

#[test]
fn oci_output_unpacks_with_umoci() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("f.txt", "payload\n"),
            (
                "Dockerfile",
                "FROM base:1\nCOPY f.txt /f.txt\nRUN echo built > /built\n",
            ),
        ],
    );
    let archive = k.dir.path().join("image.tar");
    let spec = format!("type=oci,dest={}", archive.display());
    build(
        &k,
        &["-t", "oci-out:1", "--output", &spec, ctx.to_str().unwrap()],
    );
    let layout = k.dir.path().join("layout");
    fs::create_dir(&layout).unwrap();
    common::tool(
        "tar",
        &[
            "-C",
            layout.to_str().unwrap(),
            "-xf",
            archive.to_str().unwrap(),
        ],
    );
    let bundle = k.dir.path().join("bundle");
    common::tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/f.txt")).unwrap(),
        "payload\n"
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/built")).unwrap(),
        "built\n"
    );
}

#[test]
fn builder_prune_removes_cache_nothing_uses() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1 AS tmp\nRUN echo scratch-work > /w\nFROM base:1\nCOPY --from=tmp /w /w\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    build(&k, &["-t", "kept:1", c]);
    let snapshots = |k: &Kiln| {
        // Committed snapshots are the directories with an `fs` tree.
        fs::read_dir(k.root.join("snapshots"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("fs").is_dir())
            .count()
    };
    // base, the tmp stage's RUN layer, and the final COPY layer.
    assert_eq!(snapshots(&k), 3);
    let out = k.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("1 snapshots"), "{out}");
    // What kept:1 uses survives; the build still hits the cache for it.
    assert_eq!(snapshots(&k), 2);
    k.ok(&["system", "check"]);
    let (_, err) = build(&k, &["-t", "kept:1", c]);
    assert!(err.contains("CACHED"), "{err}");
    k.ok(&["builder", "prune", "-a", "-f"]);
    assert_eq!(snapshots(&k), 0);
    let (_, err) = build(&k, &["-t", "kept:1", c]);
    assert!(!err.contains("CACHED"), "{err}");
    k.ok(&["system", "check"]);
}

#[test]
fn a_cached_rebuild_unpacks_and_mounts_nothing() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("a.txt", "a\n"),
            (
                "Dockerfile",
                // tmp and mnt stand on nothing: their steps are snapshots
                // only (no image contains them), and every other snapshot,
                // the base's included, can go below.
                "FROM scratch AS tmp\nCOPY a.txt /t/w\nFROM scratch AS mnt\nCOPY a.txt /w\nFROM base:1\nRUN --mount=from=mnt,target=/m cat /m/w > /w2\nCOPY --chown=root a.txt /home/a.txt\nCOPY --from=tmp /t/w /w\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    build(&k, &["-t", "cached:1", c]);
    let id = k.ok(&["images", "-q", "--no-trunc", "cached:1"]);
    // Committed snapshots are the directories with an `fs` tree; remove
    // every one that layers in the store can make again (the cache
    // records stay), so anything a cached rebuild unpacks shows up again.
    // The tmp and mnt stages' steps are snapshots only (no image contains
    // them): those stay, as any prune keeps what a cache record names;
    // they have no parent, so nothing of the base image is kept and an
    // unpack of any of the final stage's layers, the base's included,
    // would show.
    let snapshots = |k: &Kiln| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(k.root.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("fs").is_dir())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut kept = Vec::new();
    for e in fs::read_dir(k.root.join("buildcache/steps")).unwrap() {
        let rec: serde_json::Value =
            serde_json::from_slice(&fs::read(e.unwrap().path()).unwrap()).unwrap();
        if rec["layer"] == "snapshot-only" {
            let name = rec["snapshot"].as_str().unwrap().to_string();
            let parent = k.root.join("snapshots").join(&name).join("parent");
            assert!(!parent.exists(), "{name} stands on nothing");
            kept.push(name);
        }
    }
    kept.sort();
    kept.dedup();
    // The two COPY steps of tmp and mnt.
    assert_eq!(kept.len(), 2, "{kept:?}");
    for name in snapshots(&k) {
        if !kept.contains(&name) {
            fs::remove_dir_all(k.root.join("snapshots").join(name)).unwrap();
        }
    }
    assert_eq!(snapshots(&k), kept);
    let (_, err) = build(&k, &["-t", "cached:1", c]);
    assert_eq!(err.matches(" CACHED").count(), 5, "{err}");
    assert_eq!(k.ok(&["images", "-q", "--no-trunc", "cached:1"]), id);
    // Only COPY --from reads its source to plan (its key is the files it
    // copies): the tmp stage's top, a snapshot already there. The base,
    // the RUN --mount source and the COPY destinations were neither
    // unpacked nor mounted: no snapshot was made.
    assert_eq!(snapshots(&k), kept);
}

#[test]
fn both_snapshotters_build_the_same_image() {
    let dockerfile = "FROM base:1\nCOPY app/ /app/\nRUN echo generated > /app/gen && rm /bin/wc && mkdir -p /etc/conf.d && echo x > /etc/conf.d/x\nRUN rm -r /etc/conf.d && echo again > /app/gen\n";
    let mut ids = Vec::new();
    for backend in ["overlay", "native"] {
        let k = Kiln::new();
        common::import_pinned_base(&k);
        let ctx = context(
            &k,
            "ctx",
            &[("app/a.txt", "a\n"), ("Dockerfile", dockerfile)],
        );
        let out = k
            .cmd()
            .env("KILN_SNAPSHOTTER", backend)
            .args([
                "build",
                "-q",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                ctx.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        // A store's snapshots belong to one backend.
        let other = if backend == "overlay" {
            "native"
        } else {
            "overlay"
        };
        let out = k
            .cmd()
            .env("KILN_SNAPSHOTTER", other)
            .args(["build", "--no-cache", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("kiln builder prune -a"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Left to choose, a build goes on with the backend the store
        // recorded (native too, where overlayfs would mount).
        let out = k
            .cmd()
            .env_remove("KILN_SNAPSHOTTER")
            .args(["build", "--no-cache", ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recorded = fs::read_to_string(k.root.join("snapshots/backend")).unwrap();
        assert_eq!(recorded.trim(), backend);
    }
    assert_eq!(
        ids[0], ids[1],
        "overlay and native snapshotters made different images"
    );
}

#[test]
fn build_cache_survives_rmi_and_image_prune() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1 AS tmp\nRUN echo work > /w\nFROM base:1\nCOPY --from=tmp /w /w\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    build(&k, &["-t", "cached:1", c]);
    // The image goes and the store is collected; the base stays.
    k.ok(&["rmi", "cached:1"]);
    k.ok(&["image", "prune", "-f"]);
    k.ok(&["system", "check"]);
    let (_, err) = build(&k, &["-t", "cached:1", c]);
    assert_eq!(err.matches(" CACHED").count(), 2, "{err}");
    // builder prune -a releases it all.
    k.ok(&["builder", "prune", "-a", "-f"]);
    k.ok(&["rmi", "cached:1"]);
    k.ok(&["image", "prune", "-a", "-f"]);
    let blobs = fs::read_dir(k.root.join("blobs/sha256")).unwrap().count();
    assert_eq!(
        blobs, 0,
        "blobs left after removing every image and the build cache"
    );
}

/// Two stages that each hold a cache mount for a second: (start, end)
/// times from /proc/uptime (not namespaced), read back from the image.
fn cache_mount_intervals(sharing: &str) -> [(f64, f64); 2] {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let step = |who: &str| {
        format!(
            "RUN --mount=type=cache,target=/c,id=shared,sharing={sharing} sh -c 'cut -d\" \" -f1 /proc/uptime > /t; echo {who} > /c/owner; sleep 1; test \"$(cat /c/owner)\" = {who}; cut -d\" \" -f1 /proc/uptime >> /t'\n"
        )
    };
    let dockerfile = format!(
        "FROM base:1 AS a\n{}FROM base:1 AS b\n{}FROM base:1\nCOPY --from=a /t /a\nCOPY --from=b /t /b\n",
        step("a"),
        step("b")
    );
    let ctx = context(&k, "ctx", &[("Dockerfile", &dockerfile)]);
    let root = export(&k, &ctx, &[]);
    let times = |f: &str| {
        let t: Vec<f64> = fs::read_to_string(root.join(f))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        (t[0], t[1])
    };
    [times("a"), times("b")]
}

#[test]
fn parallel_stages_overlap_and_locked_cache_mounts_do_not() {
    let [a, b] = cache_mount_intervals("shared");
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "independent stages did not run in parallel: {a:?} {b:?}"
    );
    let [a, b] = cache_mount_intervals("locked");
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "sharing=locked steps overlapped: {a:?} {b:?}"
    );
}

#[test]
fn entrypoint_drops_an_inherited_cmd_but_keeps_its_own() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &["--change", "CMD [\"base-cmd\"]"]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("a/Dockerfile", "FROM base:1\nENTRYPOINT [\"/bin/sh\"]\n"),
            (
                "b/Dockerfile",
                "FROM base:1\nCMD [\"own\"]\nENTRYPOINT [\"/bin/sh\"]\n",
            ),
            ("c/Dockerfile", "FROM base:1\nLABEL x=y\n"),
        ],
    );
    for (dir, want) in [
        ("a", serde_json::Value::Null),
        ("b", serde_json::json!(["own"])),
        ("c", serde_json::json!(["base-cmd"])),
    ] {
        let tag = format!("ep-{dir}:1");
        build(&k, &["-t", &tag, ctx.join(dir).to_str().unwrap()]);
        assert_eq!(k.inspect(&tag)["Config"]["Cmd"], want, "{dir}");
    }
}

#[test]
fn add_downloads_urls_with_checksums_and_never_extracts_them() {
    use common::http::{self, Reply, Request};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::sync::Arc;

    let k = Kiln::new();
    common::import_pinned_base(&k);
    // A gzip "archive" ADD must not unpack when it comes from a URL.
    let gz: Vec<u8> = vec![
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let gz2 = gz.clone();
    let port = http::serve(Arc::new(move |req: &Request| match req.path() {
        "/files/hello.txt" => Reply::new(200, "hello over http\n")
            .header("Last-Modified", "Tue, 15 Nov 1994 08:12:31 GMT"),
        "/files/a.tar.gz" => Reply::new(200, gz2.clone()),
        _ => Reply::new(404, "no"),
    }));
    let base = format!("http://127.0.0.1:{port}/files");
    let sum = "sha256:bd2bb4b6d0b1a0b77f1d0bcf2f14fcb6b1b0845e9c1b6d6f83e1b26d7f1e2b43";
    let real = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(b"hello over http\n"))
    };
    let ctx = context(
        &k,
        "add-url",
        &[(
            "Dockerfile",
            &format!(
                "FROM base:1\nADD {base}/hello.txt /data/\nADD --checksum={real} {base}/hello.txt /data/checked.txt\nADD {base}/a.tar.gz /data/\n"
            ),
        )],
    );
    let out = export(&k, &ctx, &[]);
    let hello = out.join("data/hello.txt");
    assert_eq!(fs::read_to_string(&hello).unwrap(), "hello over http\n");
    let meta = fs::metadata(&hello).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.mtime(), 784887151, "mtime from Last-Modified");
    assert_eq!(
        fs::read_to_string(out.join("data/checked.txt")).unwrap(),
        "hello over http\n"
    );
    assert_eq!(
        fs::read(out.join("data/a.tar.gz")).unwrap(),
        gz,
        "a downloaded archive stays a file"
    );

    // A wrong checksum, a missing file and git sources are clear errors.
    for (dockerfile, wanted) in [
        (
            format!("FROM base:1\nADD --checksum={sum} {base}/hello.txt /x\n"),
            "checksum mismatch",
        ),
        (format!("FROM base:1\nADD {base}/missing /x\n"), "404"),
        (
            "FROM base:1\nADD https://github.com/moby/buildkit.git#v0.10.1 /src\n".to_string(),
            "git is not supported",
        ),
    ] {
        fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let err = k.fails(&["build", ctx.to_str().unwrap()]);
        assert!(err.contains(wanted), "{wanted:?} not in {err}");
    }
}

/// Regression: `image prune -a` and `builder prune -a` while a build runs
/// used to delete the lower directories of the running step's snapshot,
/// untag the base a later stage had not resolved yet, and collect the
/// image's blobs between the build and its `--output` export. Pruners
/// are started every 50 ms for as long as the build runs (each does its
/// snapshot pass at once; the store's GC then waits for the build's
/// lease), so every step, mount and commit of the build meets a prune.
#[test]
fn prune_in_a_loop_never_breaks_a_running_build() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};

    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1 AS tools\n\
             RUN echo one > /one && sleep 0.3\n\
             RUN sleep 0.3 && cat /one > /two && echo two >> /two\n\
             RUN sleep 0.3 && cat /two /bin/busybox > /three\n\
             FROM base:1\n\
             RUN echo main > /main && sleep 0.3\n\
             COPY --from=tools /two /three /tools/\n\
             COPY --from=base:1 /bin/busybox /bb\n\
             RUN sleep 0.3 && cat /main /tools/two > /all && cmp /tools/three /tools/three\n\
             RUN sleep 0.3 && cat /all > /again\n",
        )],
    );
    let dest = k.dir.path().join("out");
    let mut build = k
        .cmd()
        .args([
            "build",
            "--progress",
            "plain",
            "--output",
            &format!("type=local,dest={}", dest.display()),
            ctx.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Pruning starts once the first RUN runs: before that, a prune may
    // legitimately remove base:1 before the build has resolved it.
    let stderr = build.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("RUN ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let _ = rx.recv_timeout(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut pruners = Vec::new();
    let status = loop {
        if let Some(status) = build.try_wait().unwrap() {
            break status;
        }
        if Instant::now() < deadline {
            for args in [
                ["image", "prune", "-a", "-f"],
                ["builder", "prune", "-a", "-f"],
            ] {
                let child = k
                    .cmd()
                    .args(args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                pruners.push((args, child));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = reader.join().unwrap();
    assert!(pruners.len() >= 4, "the build ended before pruning began");
    assert!(status.success(), "the build failed under prune:\n{log}");
    for (args, child) in pruners {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kiln {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        fs::read_to_string(dest.join("all")).unwrap(),
        "main\none\ntwo\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("again")).unwrap(),
        "main\none\ntwo\n"
    );
    let busybox = fs::read(dest.join("bin/busybox")).unwrap();
    let three = fs::read(dest.join("tools/three")).unwrap();
    assert_eq!(&three[..8], b"one\ntwo\n");
    assert_eq!(&three[8..], &busybox[..]);
    assert_eq!(fs::read(dest.join("bb")).unwrap(), busybox);
    k.ok(&["system", "check"]);
}

#[test]
fn the_epoch_is_part_of_a_layer_steps_cache_key() {
    // Same inputs, same epoch ⇒ same image, whatever the cache holds: a
    // COPY cached under one epoch must not be reused under another (its
    // files' times are clamped to the epoch).
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("a.txt", "a\n"),
            (
                "Dockerfile",
                "FROM base:1\nCOPY a.txt /a.txt\nRUN echo x > /x\n",
            ),
        ],
    );
    // Files newer than both epochs, so each clamp shows.
    let c = ctx.to_str().unwrap();
    let id = |extra: &[&str], epoch: &str| {
        let mut args = vec!["build", "-q"];
        args.extend_from_slice(extra);
        args.push(c);
        k.ok_with_env(&args, &[("SOURCE_DATE_EPOCH", epoch)])
    };
    let first = id(&[], "1600000000");
    let other_epoch = id(&[], "1700000000");
    assert_ne!(first, other_epoch, "another epoch is another image");
    assert_eq!(
        other_epoch,
        id(&["--no-cache"], "1700000000"),
        "the cached build under the second epoch equals a fresh one"
    );
    assert_eq!(
        first,
        id(&[], "1600000000"),
        "and the first epoch's is kept"
    );
}

#[test]
fn mount_stubs_never_reach_later_steps() {
    // A RUN --mount whose target is a file leaves no empty stand-in behind:
    // the stage's filesystem is exactly its layers, so later steps (and
    // COPY --from) never see one.
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = context(
        &k,
        "ctx",
        &[
            ("a", "a\n"),
            (
                "Dockerfile",
                "FROM base:1\nRUN --mount=type=secret,id=tok echo x > /made\nRUN test ! -e /run/secrets/tok && test -f /made\nRUN --mount=type=bind,source=a,target=/m/file true\nRUN test ! -e /m/file\n",
            ),
        ],
    );
    let sec = k.path("sec");
    fs::write(&sec, "s3cret\n").unwrap();
    let sec = format!("id=tok,src={}", sec.display());
    k.ok(&["build", "-q", "--secret", &sec, ctx.to_str().unwrap()]);
}

/// A stage the final image does not contain keeps its steps as snapshots
/// only (no layer tar, no digest); building an image that contains it
/// later writes those layers then. They must be the layers a build that
/// wrote them at once makes: same image ID, same saved, exported and
/// pushed digests.
#[test]
fn a_layer_written_late_is_the_layer_written_at_once() {
    use common::registry::{Auth, Registry};
    let dockerfile = "FROM base:1 AS work\nCOPY app/ /app/\nRUN --mount=type=cache,target=/var/cache/w echo made > /app/made && echo c > /var/cache/w/c\nFROM base:1\nCOPY --from=work /app/made /made\n";
    let files = [
        ("app/main.txt", "main\n"),
        ("app/lib/util.txt", "util\n"),
        ("Dockerfile", dockerfile),
    ];
    let reg = Registry::start(Auth::Anonymous);
    let mut ids = Vec::new();
    let mut pushed = Vec::new();
    let mut saved = Vec::new();
    let mut exported = Vec::new();
    for late in [true, false] {
        let k = Kiln::new();
        common::import_pinned_base(&k);
        let ctx = context(&k, "ctx", &files);
        let c = ctx.to_str().unwrap();
        let epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
        let records = |k: &Kiln| -> String {
            fs::read_dir(k.root.join("buildcache/steps"))
                .unwrap()
                .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
                .collect()
        };
        if late {
            let mut args = epoch.to_vec();
            args.extend(["-t", "final:1", c]);
            build(&k, &args);
            // The work stage's two steps: snapshots, no layer.
            assert_eq!(
                records(&k).matches("\"snapshot-only\"").count(),
                2,
                "{}",
                records(&k)
            );
        }
        let mut args = epoch.to_vec();
        args.extend(["--progress", "plain", "--target", "work", "-t", "work:1", c]);
        let (_, err) = build(&k, &args);
        if late {
            // Cache hits whose layers are written now, and kept.
            assert_eq!(err.matches("CACHED").count(), 2, "{err}");
            assert_eq!(records(&k).matches("\"snapshot-only\"").count(), 0);
        }
        let id = k.inspect("work:1")["Id"].as_str().unwrap().to_string();
        if late {
            // A --no-cache rebuild (its stage written at once, on new
            // snapshots) is the same image.
            let mut args = epoch.to_vec();
            args.extend(["--no-cache", "--target", "work", "-t", "again:1", c]);
            build(&k, &args);
            assert_eq!(k.inspect("again:1")["Id"].as_str().unwrap(), id);
        }
        ids.push(id);
        k.ok(&["system", "check"]);
        let tar = k.dir.path().join("work.tar");
        k.ok(&["save", "-o", tar.to_str().unwrap(), "work:1"]);
        saved.push(common::tool("sha256sum", &[tar.to_str().unwrap()])[..64].to_string());
        let root = export(
            &k,
            &ctx,
            &[
                "--target",
                "work",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
            ],
        );
        exported.push(common::tool(
            "sh",
            &[
                "-c",
                &format!(
                    "cd {} && find . -mindepth 1 -printf '%p %s %m %T@\\n' | sort && cat app/made",
                    root.display()
                ),
            ],
        ));
        let name = format!("{}/late-{late}/work:1", reg.host());
        k.ok(&["tag", "work:1", &name]);
        k.ok(&["push", "-q", &name]);
        // The registry's manifest digest, which push records.
        let repo_digest = k.inspect(&name)["RepoDigests"][0].clone();
        let repo_digest = repo_digest.as_str().unwrap();
        pushed.push(repo_digest.split_once('@').unwrap().1.to_string());
    }
    assert!(ids[0].starts_with("sha256:"), "{ids:?}");
    assert_eq!(ids[0], ids[1], "image IDs");
    assert_eq!(saved[0], saved[1], "saved archives");
    assert_eq!(exported[0], exported[1], "exported trees");
    assert!(exported[0].contains("made"), "{}", exported[0]);
    assert_eq!(pushed[0], pushed[1], "pushed manifests");
}

#[test]
fn copied_files_land_whole_with_both_snapshotters() {
    // COPY moves file contents in the kernel (copy_file_range within a file
    // system, as into the native snapshotter's directories; sendfile across
    // them, as into an overlay mount): the files must land whole, with
    // --chown/--chmod, over base files (busybox's wc symlink replaced, never
    // written through), beside symlinks, hard links and empty directories,
    // and both paths must give the same image, a --no-cache rebuild too.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dockerfile = "FROM base:1\nCOPY tree/ /app/\nCOPY --chown=1234:5678 --chmod=640 tree/big.bin /opt/big.bin\nCOPY over/wc /bin/wc\n";
    let big: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let mut ids = Vec::new();
    for backend in ["overlay", "native"] {
        let k = Kiln::new();
        common::import_pinned_base(&k);
        let ctx = context(
            &k,
            "ctx",
            &[
                ("tree/empty.txt", ""),
                ("tree/sub/deep/a.txt", "a\n"),
                ("over/wc", "not wc\n"),
                ("Dockerfile", dockerfile),
            ],
        );
        fs::write(ctx.join("tree/big.bin"), &big).unwrap();
        fs::hard_link(ctx.join("tree/big.bin"), ctx.join("tree/big-link.bin")).unwrap();
        std::os::unix::fs::symlink("sub/deep/a.txt", ctx.join("tree/a-link")).unwrap();
        fs::create_dir_all(ctx.join("tree/empty-dir")).unwrap();
        let built = |extra: &[&str]| -> (String, PathBuf) {
            let dest = k.dir.path().join(format!("out-{}", unique()));
            let spec = format!("type=local,dest={}", dest.display());
            let mut args = vec![
                "build",
                "-q",
                "-t",
                "copied:1",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
            ];
            args.extend_from_slice(extra);
            args.push(ctx.to_str().unwrap());
            let out = k
                .cmd()
                .env("KILN_SNAPSHOTTER", backend)
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{backend}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            k.ok_with_env(
                &[
                    "build",
                    "-q",
                    "--output",
                    spec.as_str(),
                    "--build-arg",
                    "SOURCE_DATE_EPOCH=1700000000",
                    ctx.to_str().unwrap(),
                ],
                &[("KILN_SNAPSHOTTER", backend)],
            );
            let id = k.ok(&["images", "-q", "--no-trunc", "copied:1"]);
            (id, dest)
        };
        let (id, tree) = built(&[]);
        let (again, _) = built(&["--no-cache"]);
        assert_eq!(id, again, "{backend}: a --no-cache rebuild differs");
        assert_eq!(
            fs::read(tree.join("app/big.bin")).unwrap(),
            big,
            "{backend}"
        );
        assert_eq!(
            fs::read(tree.join("app/big-link.bin")).unwrap(),
            big,
            "{backend}"
        );
        assert_eq!(
            fs::read(tree.join("app/empty.txt")).unwrap(),
            b"",
            "{backend}"
        );
        assert_eq!(fs::read(tree.join("app/sub/deep/a.txt")).unwrap(), b"a\n");
        assert_eq!(
            fs::read_link(tree.join("app/a-link")).unwrap(),
            Path::new("sub/deep/a.txt")
        );
        assert!(tree.join("app/empty-dir").is_dir());
        let opt = fs::metadata(tree.join("opt/big.bin")).unwrap();
        assert_eq!(
            fs::read(tree.join("opt/big.bin")).unwrap(),
            big,
            "{backend}"
        );
        assert_eq!(opt.permissions().mode() & 0o7777, 0o640);
        assert_eq!((opt.uid(), opt.gid()), (1234, 5678), "{backend}");
        assert_eq!(fs::read(tree.join("bin/wc")).unwrap(), b"not wc\n");
        assert!(
            fs::read(tree.join("bin/busybox")).unwrap()
                == fs::read(common::busybox_binary()).unwrap(),
            "{backend}: the base's busybox was written through its wc link"
        );
        ids.push(id);
    }
    assert_eq!(
        ids[0], ids[1],
        "overlay (sendfile) and native (copy_file_range) COPYs made different images"
    );
}

#[test]
fn two_builds_of_one_store_run_a_shared_step_once() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    // A random token and a pause: without the step lock across processes
    // both builds miss the cache together and each runs the step.
    let ctx = context(
        &k,
        "ctx",
        &[(
            "Dockerfile",
            "FROM base:1\nRUN busybox cat /proc/sys/kernel/random/uuid > /token && busybox sleep 1\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    let builds: Vec<_> = ["x:1", "y:1"]
        .iter()
        .map(|tag| {
            k.cmd()
                .args(["build", "-q", "-t", tag, c])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for b in builds {
        let out = b.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = |tag| k.ok(&["run", "--rm", tag, "busybox", "cat", "/token"]);
    let x = token("x:1");
    assert_eq!(x.trim().len(), 36, "{x}");
    assert_eq!(x, token("y:1"), "the step ran in both builds");
}
