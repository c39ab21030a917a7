//! `kiln build --cache-to/--cache-from` end to end: two kiln roots (two
//! machines) sharing a build cache through the distribution registry, an
//! OCI layout, or the image itself (inline).
//!
//! Whether a RUN step ran is seen outside kiln: each RUN fetches a URL
//! from an HTTP server the test runs, which records every request.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::http::{self, Reply};
use common::registry::{Auth, Registry};
use common::Kiln;

/// An HTTP server on 127.0.0.1 that records the paths RUN steps fetch.
struct Witness {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Witness {
    fn start() -> Witness {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let port = http::serve(Arc::new(move |req: &http::Request| {
            log.lock().unwrap().push(req.path().to_string());
            Reply::new(200, "ran\n")
        }));
        Witness { port, seen }
    }

    /// The paths fetched since the last call, sorted.
    fn take(&self) -> Vec<String> {
        let mut v = std::mem::take(&mut *self.seen.lock().unwrap());
        v.sort();
        v
    }
}

/// A root with `base:1`, byte for byte the same in every root (pinned
/// time), as two machines pulling one base would have.
fn machine() -> Kiln {
    let k = Kiln::new();
    common::import_pinned_base(&k);
    k
}

/// A context whose Dockerfile has an intermediate stage (read by `COPY
/// --from`), a RUN before a COPY of `app.txt` and a RUN after it.
fn context(dir: &Path, w: &Witness, app: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let get = |name: &str| {
        format!(
            "busybox wget -q -O /{name}.out http://127.0.0.1:{}/{name}",
            w.port
        )
    };
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM base:1 AS builder\n\
             RUN {}\n\
             FROM base:1\n\
             COPY --from=builder /builder.out /from-builder\n\
             RUN {}\n\
             COPY app.txt /app.txt\n\
             RUN {} && cat /app.txt > /app.copy\n\
             CMD [\"cat\", \"/app.copy\"]\n",
            get("builder"),
            get("before-copy"),
            get("after-copy")
        ),
    )
    .unwrap();
    fs::write(ctx.join("app.txt"), app).unwrap();
    ctx
}

/// Builds; returns stderr (the plain progress).
fn build(k: &Kiln, args: &[&str]) -> String {
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    let out = k.run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kiln build {args:?} failed:\n{stderr}"
    );
    stderr
}

fn image_id(k: &Kiln, name: &str) -> String {
    k.ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// A root with `base:multi` (busybox for linux/amd64 and Debian's arm64
/// busybox-static, joined by `kiln manifest create`), byte for byte the
/// same in every root.
fn two_platform_machine() -> Kiln {
    let k = Kiln::new();
    let pinned = [("SOURCE_DATE_EPOCH", "1600000000")];
    let tar = common::busybox_tar(k.dir.path(), "amd64", &[]);
    k.ok_with_env(
        &[
            "import",
            "--platform",
            "linux/amd64",
            tar.to_str().unwrap(),
            "base:amd64",
        ],
        &pinned,
    );
    k.import_arm64_busybox_with("base:arm64", &pinned);
    k.ok(&[
        "manifest",
        "create",
        "base:multi",
        "base:amd64",
        "base:arm64",
    ]);
    k
}

/// A two-platform context: a `$BUILDPLATFORM` stage (run once, natively)
/// copied into a stage per target whose RUN fetches a path naming the
/// target's architecture.
fn two_platform_context(dir: &Path, w: &Witness) -> PathBuf {
    let ctx = dir.join("ctx2");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM base:multi AS tool\n\
             RUN busybox wget -q -O /tool.out http://127.0.0.1:{port}/tool\n\
             FROM base:multi\n\
             ARG TARGETARCH\n\
             COPY --from=tool /tool.out /tool.out\n\
             RUN busybox wget -q -O /run.out http://127.0.0.1:{port}/run-$TARGETARCH && busybox uname -m > /arch\n",
            port = w.port
        ),
    )
    .unwrap();
    ctx
}

const ALL_RUNS: [&str; 3] = ["/after-copy", "/before-copy", "/builder"];

/// An OCI layout's first `index.json` entry and the manifest it names.
fn layout_manifest(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"][0].clone();
    let hex = entry["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest =
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap();
    (entry, manifest)
}

#[test]
fn registry_cache_mode_max_second_machine_runs_nothing_and_gets_the_same_image() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let cache = format!("{}/cache:x", reg.host());
    let (a, b) = (machine(), machine());
    let ctx_a = context(a.dir.path(), &w, "one\n");
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx_a.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ALL_RUNS);

    // The artifact as a registry client sees it.
    let raw = common::skopeo_raw(&cache);
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["artifactType"],
        "application/vnd.kiln.build.cache.v1+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.kiln.build.cache.v1+json"
    );
    // mode=max: the three RUN layers and the two COPY layers, gzipped
    // (buildx's default).
    let types = |m: &serde_json::Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        types(&m),
        vec!["application/vnd.oci.image.layer.v1.tar+gzip"; 5],
        "{raw}"
    );

    // compression=zstd: the same steps (A hits them all), zstd layers.
    let zstd_cache = format!("{}/cache:zstd", reg.host());
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!("type=registry,ref={zstd_cache},mode=max,compression=zstd"),
            ctx_a.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    let raw_zstd = common::skopeo_raw(&zstd_cache);
    let mz: serde_json::Value = serde_json::from_str(&raw_zstd).unwrap();
    assert_eq!(
        types(&mz),
        vec!["application/vnd.oci.image.layer.v1.tar+zstd"; 5],
        "{raw_zstd}"
    );
    // The metadata is the same document either way: records name the
    // layers as the image has them (plain tar, by diff_id).
    assert_eq!(m["config"], mz["config"]);

    // Machine B: an empty cache, the same context.
    let ctx_b = context(b.dir.path(), &w, "one\n");
    let progress = build(
        &b,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(
        w.take(),
        Vec::<String>::new(),
        "no RUN step may run:\n{progress}"
    );
    assert_eq!(progress.matches(" CACHED").count(), 5, "{progress}");
    assert_eq!(image_id(&a, "app"), image_id(&b, "app"));
    let (ia, ib) = (a.inspect("app"), b.inspect("app"));
    assert_eq!(ia["RootFS"], ib["RootFS"]);
    assert_eq!(
        a.ok(&["history", "--no-trunc", "app"]),
        b.ok(&["history", "--no-trunc", "app"])
    );
    assert_eq!(b.ok(&["run", "--rm", "app"]), "one\n");

    // Layers are fetched when a step needs them, not with the metadata:
    // building only the intermediate stage fetches its layer alone.
    let c = machine();
    let ctx_c = context(c.dir.path(), &w, "one\n");
    build(
        &c,
        &[
            "-t",
            "builder",
            "--target",
            "builder",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_c.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    let final_layers = ia["RootFS"]["Layers"].as_array().unwrap();
    let builder_layers = c.inspect("builder")["RootFS"]["Layers"].clone();
    assert_eq!(builder_layers.as_array().unwrap().len(), 2);
    for l in &final_layers[1..] {
        let hex = l.as_str().unwrap().trim_start_matches("sha256:");
        assert!(
            !c.root.join("blobs/sha256").join(hex).exists(),
            "layer {hex} of the final stage was downloaded for --target builder"
        );
    }

    // The full hit on B keyed `COPY --from=builder` by the builder
    // stage's key: the builder's own layer (not in the image) was never
    // downloaded.
    let builder_only = builder_layers[1].as_str().unwrap();
    assert!(
        !final_layers.iter().any(|l| l == builder_only),
        "{builder_only} is in the final image too"
    );
    let hex = builder_only.trim_start_matches("sha256:");
    assert!(
        !b.root.join("blobs/sha256").join(hex).exists(),
        "the builder stage's layer {hex} was downloaded for a full cache hit"
    );

    // A fresh root from the zstd cache: no RUN, the same image.
    let d = machine();
    let ctx_d = context(d.dir.path(), &w, "one\n");
    let progress = build(
        &d,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=registry,ref={zstd_cache}"),
            ctx_d.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new(), "{progress}");
    assert_eq!(image_id(&a, "app"), image_id(&d, "app"));
    d.ok(&["system", "check"]);

    // A changed file reruns the COPY of it and the RUN after it only.
    fs::write(ctx_b.join("app.txt"), "two\n").unwrap();
    build(
        &b,
        &[
            "-t",
            "app2",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ["/after-copy"]);
    assert_eq!(b.ok(&["run", "--rm", "app2"]), "two\n");
}

#[test]
fn mode_min_leaves_the_intermediate_stage_out() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let cache = format!("{}/cache:min", reg.host());
    let (a, b) = (machine(), machine());
    let ctx_a = context(a.dir.path(), &w, "one\n");
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!("type=registry,ref={cache}"),
            ctx_a.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ALL_RUNS);
    let raw = common::skopeo_raw(&cache);
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    // The final image's COPY, RUN, COPY, RUN: no builder layer.
    assert_eq!(m["layers"].as_array().unwrap().len(), 4, "{raw}");

    let ctx_b = context(b.dir.path(), &w, "one\n");
    build(
        &b,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    // The builder stage runs again; what it made is the same, so the
    // final stage's steps all hit.
    assert_eq!(w.take(), ["/builder"]);
    assert_eq!(image_id(&a, "app"), image_id(&b, "app"));
}

#[test]
fn local_layout_round_trip_and_skopeo_moves_the_registry_artifact() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let (a, b) = (machine(), machine());
    let dest = a.dir.path().join("cache-dir");
    let ctx_a = context(a.dir.path(), &w, "one\n");
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!("type=local,dest={},mode=max", dest.display()),
            ctx_a.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ALL_RUNS);
    let (entry, manifest) = layout_manifest(&dest);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert!(dest.join("oci-layout").is_file());
    // Its layers gzipped, as a registry export sends them.
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest}"
        );
    }

    let ctx_b = context(b.dir.path(), &w, "one\n");
    build(
        &b,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=local,src={}", dest.display()),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    assert_eq!(image_id(&a, "app"), image_id(&b, "app"));

    // compression=uncompressed: plain layers (as kiln wrote before it
    // compressed), read the same way.
    let plain = a.dir.path().join("cache-plain");
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!(
                "type=local,dest={},mode=max,compression=uncompressed",
                plain.display()
            ),
            ctx_a.to_str().unwrap(),
        ],
    );
    let (_, manifest) = layout_manifest(&plain);
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    }
    let b2 = machine();
    let ctx_b2 = context(b2.dir.path(), &w, "one\n");
    build(
        &b2,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=local,src={}", plain.display()),
            ctx_b2.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    assert_eq!(image_id(&a, "app"), image_id(&b2, "app"));

    // skopeo copies the layout to a registry as any OCI artifact, and a
    // third machine builds from it there.
    let cache = format!("{}/moved:1", reg.host());
    common::tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", dest.display()),
            &format!("docker://{cache}"),
        ],
    );
    let c = machine();
    let ctx_c = context(c.dir.path(), &w, "one\n");
    build(
        &c,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_c.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    assert_eq!(image_id(&a, "app"), image_id(&c, "app"));
}

#[test]
fn inline_cache_travels_with_the_pushed_image() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let image = format!("{}/app:inline", reg.host());
    let (a, b) = (machine(), machine());
    let ctx_a = context(a.dir.path(), &w, "one\n");
    build(
        &a,
        &[
            "-t",
            &image,
            "--cache-to",
            "type=inline",
            ctx_a.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ALL_RUNS);
    let config = a.inspect(&image);
    assert!(config.get("Id").is_some());
    a.ok(&["push", &image]);

    let ctx_b = context(b.dir.path(), &w, "one\n");
    build(
        &b,
        &[
            "-t",
            &image,
            "--cache-to",
            "type=inline",
            "--cache-from",
            &format!("type=registry,ref={image}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    // Inline is mode=min: the intermediate stage runs again.
    assert_eq!(w.take(), ["/builder"]);
    assert_eq!(image_id(&a, &image), image_id(&b, &image));
    assert_eq!(b.ok(&["run", "--rm", &image]), "one\n");
}

#[test]
fn bad_specs_fail_before_anything_runs_and_a_missing_cache_is_a_warning() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let a = machine();
    let ctx = context(a.dir.path(), &w, "one\n");
    let ctx = ctx.to_str().unwrap();
    for (flag, spec, says) in [
        (
            "--cache-to",
            "type=registry,mode=max",
            "type=registry needs ref=",
        ),
        (
            "--cache-to",
            "type=registry,ref=r,compression-level=3",
            "unknown key \"compression-level\" for type=registry (accepted: ref, mode, compression)",
        ),
        (
            "--cache-to",
            "type=local,dest=/tmp/x,mode=all",
            "mode=all (use mode=min or mode=max)",
        ),
        (
            "--cache-to",
            "type=gha",
            "type=gha is not supported (use type=registry|local|inline)",
        ),
        (
            "--cache-from",
            "type=local,dest=/x",
            "unknown key \"dest\" for type=local (accepted: src)",
        ),
        (
            "--cache-from",
            "type=registry,ref",
            "field \"ref\" is not KEY=VALUE",
        ),
    ] {
        let err = a.fails(&["build", flag, spec, ctx]);
        assert!(err.contains(says), "{flag} {spec}: {err}");
    }
    assert_eq!(w.take(), Vec::<String>::new());
    // Nothing at the reference yet: the first build goes on without it.
    let progress = build(
        &a,
        &[
            "--cache-from",
            &format!("type=registry,ref={}/cache:none", reg.host()),
            ctx,
        ],
    );
    assert!(progress.contains("not found in the registry"), "{progress}");
    assert_eq!(w.take(), ALL_RUNS);
}

/// `COPY --from=<stage>` is keyed by the source stage's key first, by the
/// copied files second: a source stage that runs again and makes the same
/// files leaves the steps after the copy cached; other files rerun them.
#[test]
fn copy_from_hits_by_the_source_stage_then_by_the_files() {
    let w = Witness::start();
    let k = machine();
    let ctx = k.dir.path().join("ctx-from");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM base:1 AS builder\n\
             COPY src.txt /src.txt\n\
             RUN busybox wget -q -O /dev/null http://127.0.0.1:{port}/builder && cut -c1-3 /src.txt > /out\n\
             FROM base:1\n\
             COPY --from=builder /out /out\n\
             RUN busybox wget -q -O /dev/null http://127.0.0.1:{port}/after && cat /out > /after\n\
             CMD [\"cat\", \"/after\"]\n",
            port = w.port
        ),
    )
    .unwrap();
    let src = ctx.join("src.txt");
    let dir = ctx.to_str().unwrap();
    fs::write(&src, "abc-1\n").unwrap();
    build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), ["/after", "/builder"]);
    let first = image_id(&k, "app");

    let progress = build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), Vec::<String>::new(), "{progress}");
    assert_eq!(image_id(&k, "app"), first);

    // The builder's input changed but its output did not: the copy's
    // stage key misses, its content key hits, the RUN after it is cached.
    fs::write(&src, "abc-2\n").unwrap();
    let progress = build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), ["/builder"], "{progress}");
    assert_eq!(image_id(&k, "app"), first);

    // Another output: the copy and the RUN after it run.
    fs::write(&src, "xyz\n").unwrap();
    build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), ["/after", "/builder"]);
    assert_eq!(k.ok(&["run", "--rm", "app"]), "xyz\n");

    // Back to the first input: every key is known, nothing runs.
    fs::write(&src, "abc-1\n").unwrap();
    build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), Vec::<String>::new());
    assert_eq!(image_id(&k, "app"), first);

    // --no-cache runs everything.
    build(&k, &["--no-cache", "-t", "app", dir]);
    assert_eq!(w.take(), ["/after", "/builder"]);
    assert_eq!(k.ok(&["run", "--rm", "app"]), "abc\n");

    // `builder prune -a` drops the input keys with the records.
    let inputs = k.root.join("buildcache/inputs");
    assert!(fs::read_dir(&inputs).unwrap().count() > 0);
    k.ok(&["builder", "prune", "-a", "-f"]);
    assert_eq!(fs::read_dir(&inputs).unwrap().count(), 0);
    build(&k, &["-t", "app", dir]);
    assert_eq!(w.take(), ["/after", "/builder"]);
}

#[test]
fn a_two_platform_build_exports_one_cache_that_a_fresh_root_hits_for_both() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let cache = format!("{}/cache:multi", reg.host());
    let (a, b) = (two_platform_machine(), two_platform_machine());
    let iid = |k: &Kiln| fs::read_to_string(k.dir.path().join("iid")).unwrap();
    let ctx_a = two_platform_context(a.dir.path(), &w);
    let iid_a = a.dir.path().join("iid");
    build(
        &a,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "app:multi",
            "--iidfile",
            iid_a.to_str().unwrap(),
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx_a.to_str().unwrap(),
        ],
    );
    // The tool stage ran once (natively), each target's RUN once.
    assert_eq!(w.take(), ["/run-amd64", "/run-arm64", "/tool"]);

    // ONE artifact: every platform's records, each layer once.
    let raw = common::skopeo_raw(&cache);
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["artifactType"], "application/vnd.kiln.build.cache.v1+json",
        "{raw}"
    );
    let layers: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<&&str> = layers.iter().collect();
    assert_eq!(unique.len(), layers.len(), "{raw}");
    // The tool layer, and a RUN layer per platform at least.
    assert!(layers.len() >= 3, "{raw}");

    // A fresh root imports it for both platforms: nothing runs, the same
    // index comes out.
    let ctx_b = two_platform_context(b.dir.path(), &w);
    let iid_b = b.dir.path().join("iid");
    let progress = build(
        &b,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "app:multi",
            "--iidfile",
            iid_b.to_str().unwrap(),
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(
        w.take(),
        Vec::<String>::new(),
        "no RUN step may run on either platform:\n{progress}"
    );
    for p in ["linux/amd64", "linux/arm64"] {
        assert!(
            progress.contains(&format!("[{p} stage-1] RUN busybox wget")),
            "{progress}"
        );
    }
    assert_eq!(iid(&a), iid(&b));
    assert!(iid(&b).starts_with("sha256:"), "{}", iid(&b));
    let arch = b.ok(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "app:multi",
        "busybox",
        "cat",
        "/arch",
    ]);
    assert_eq!(arch, "aarch64\n");

    // type=inline with several platforms: each platform's image config
    // carries its records (as buildx does); the pushed index is a cache
    // source for all of them. Inline is mode=min: the tool stage (not in
    // the image) runs again, both targets' steps hit.
    let image = format!("{}/app:inline-multi", reg.host());
    build(
        &b,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &image,
            "--cache-to",
            "type=inline",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            "--iidfile",
            iid_b.to_str().unwrap(),
            "--push",
            ctx_b.to_str().unwrap(),
        ],
    );
    // (B's store never needed the tool stage's files: its record came
    // from the registry cache, still listed here.)
    assert_eq!(w.take(), Vec::<String>::new());
    let c = two_platform_machine();
    let ctx_c = two_platform_context(c.dir.path(), &w);
    let iid_c = c.dir.path().join("iid");
    build(
        &c,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &image,
            "--cache-to",
            "type=inline",
            "--iidfile",
            iid_c.to_str().unwrap(),
            "--cache-from",
            &format!("type=registry,ref={image}"),
            ctx_c.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), ["/tool"]);
    assert_eq!(iid(&b), iid(&c));
}

/// `RUN --mount=type=bind|cache,from=STAGE` hits on the source stage's
/// key: a fresh root with the cache runs nothing and never downloads the
/// source stage's layer (it is in no image; only a miss would mount it).
#[test]
fn run_mount_from_a_stage_hits_without_fetching_the_stage() {
    let reg = Registry::start(Auth::Anonymous);
    let w = Witness::start();
    let cache = format!("{}/cache:mount", reg.host());
    let (a, b) = (machine(), machine());
    let dockerfile = format!(
        "FROM base:1 AS builder\n\
         RUN busybox wget -q -O /builder.out http://127.0.0.1:{port}/builder\n\
         FROM base:1\n\
         RUN --mount=type=bind,from=builder,source=/builder.out,target=/b.out busybox wget -q -O /dev/null http://127.0.0.1:{port}/bind && cat /b.out > /bound\n\
         RUN --mount=type=cache,from=builder,source=/,target=/seed busybox wget -q -O /dev/null http://127.0.0.1:{port}/cache && cat /seed/builder.out > /seeded\n\
         CMD [\"cat\", \"/bound\", \"/seeded\"]\n",
        port = w.port
    );
    let ctx = |k: &Kiln| {
        let ctx = k.dir.path().join("ctx-mount");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), &dockerfile).unwrap();
        ctx
    };
    let ctx_a = ctx(&a);
    let ctx_a = ctx_a.to_str().unwrap();
    build(
        &a,
        &[
            "-t",
            "app",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx_a,
        ],
    );
    assert_eq!(w.take(), ["/bind", "/builder", "/cache"]);
    assert_eq!(a.ok(&["run", "--rm", "app"]), "ran\nran\n");
    // The builder stage's own layer (A hits it locally).
    build(&a, &["-t", "builder", "--target", "builder", ctx_a]);
    let builder_layer = a.inspect("builder")["RootFS"]["Layers"][1]
        .as_str()
        .unwrap()
        .to_string();
    let app_layers = a.inspect("app")["RootFS"]["Layers"].clone();
    assert!(!app_layers
        .as_array()
        .unwrap()
        .contains(&builder_layer.clone().into()));

    let ctx_b = ctx(&b);
    let progress = build(
        &b,
        &[
            "-t",
            "app",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new(), "{progress}");
    assert_eq!(image_id(&a, "app"), image_id(&b, "app"));
    let hex = builder_layer.trim_start_matches("sha256:");
    assert!(
        !b.root.join("blobs/sha256").join(hex).exists(),
        "the builder stage's layer {hex} was downloaded for a full cache hit:\n{progress}"
    );
    assert_eq!(b.ok(&["run", "--rm", "app"]), "ran\nran\n");
    // The check looks in the right place: asking for the builder stage
    // itself downloads that layer (and still runs nothing).
    build(
        &b,
        &[
            "-t",
            "builder",
            "--target",
            "builder",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx_b.to_str().unwrap(),
        ],
    );
    assert_eq!(w.take(), Vec::<String>::new());
    assert!(b.root.join("blobs/sha256").join(hex).exists());
}
