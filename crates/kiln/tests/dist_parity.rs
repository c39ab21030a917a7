//! Parity with docker for moving images: import's recorded source, push
//! compression (gzip/zstd, remembered, checked with skopeo and docker),
//! sizes of pulled images, `pull -a`, login prompts at a terminal, and the
//! small load/save/push/pull messages docker users know. Everything runs
//! against the real peers (distribution registry, skopeo, docker); a
//! missing peer fails the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::pty::under_pty;
use common::registry::{Auth, Registry, PASSWORD, USER};
use common::{busybox_tar, run_tool, skopeo_copy_to_registry, skopeo_raw, tool, Kiln};
use sha2::Digest as _;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const DOCKER: &str = "/usr/bin/docker";

/// A busybox image with `extra` megabytes of poorly compressible data, so
/// that compression is real work.
fn image_with_data(k: &Kiln, name: &str, extra_mb: usize) {
    let mut data = Vec::with_capacity(extra_mb << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < extra_mb << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half random, half text: compresses, but not to nothing.
        data.extend_from_slice(&x.to_le_bytes()[..4]);
        data.extend_from_slice(b"kiln");
    }
    k.import_busybox(name, &[("data/blob", &data), ("etc/motd", b"hi\n")], &[]);
}

/// `skopeo inspect --raw` of a registry image: its manifest bytes.
fn raw_manifest(name: &str) -> Vec<u8> {
    skopeo_raw(name).into_bytes()
}

/// A blob of a registry repository, fetched over plain HTTP.
fn registry_blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect((reg.ip, reg.port)).unwrap();
    write!(
        s,
        "GET /v2/{repo}/blobs/{digest} HTTP/1.0\r\nHost: {}\r\n\r\n",
        reg.host()
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    if head.starts_with("HTTP/1.0 30") || head.starts_with("HTTP/1.1 30") {
        panic!("registry redirected the blob: {head}");
    }
    assert!(head.contains(" 200 "), "{head}");
    resp[split + 4..].to_vec()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unzstd(bytes: &[u8]) -> Vec<u8> {
    let (c, mut r) = kiln_layer::decompress(bytes).unwrap();
    assert_eq!(c, kiln_layer::Compression::Zstd);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs `kiln ARGS` with timing and a count of layers compressed (from
/// the info log).
fn timed_push(k: &Kiln, args: &[&str]) -> (Output, Duration, usize) {
    let start = Instant::now();
    let out = k.cmd().arg("-v").args(args).output().unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "kiln {args:?}: {}", stderr_of(&out));
    let compressed = stderr_of(&out).matches("compressing layer").count();
    (out, took, compressed)
}

// ---- 9: import ----

#[test]
fn import_of_one_tarball_at_two_paths_gives_one_image_id() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "bb", &[]);
    let elsewhere = k.path("elsewhere/other-name.tar");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::copy(&tar, &elsewhere).unwrap();
    let import = |path: &Path, name: &str| {
        let out = k
            .cmd()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["import", path.to_str().unwrap(), name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out).trim().to_string()
    };
    let a = import(&tar, "a");
    let b = import(&elsewhere, "b");
    assert!(a.starts_with("sha256:"), "{a}");
    assert_eq!(a, b, "the tarball's path must not change the image ID");
    let history = k.ok(&["history", "--no-trunc", "a"]);
    assert!(history.contains("Imported from -"), "{history}");
    assert!(!history.contains(tar.to_str().unwrap()), "{history}");
    assert_eq!(k.inspect("a")["Comment"], "Imported from -");
}

// ---- 10: push compresses ----

#[test]
fn push_gzips_stored_layers_remembers_them_and_docker_runs_the_result() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    image_with_data(&k, "big", 24);
    let local = k.inspect("big");
    let name = format!("{}/dist/big:1", reg.host());
    k.ok(&["tag", "big", &name]);
    // Before a push the image has no registry digest: docker's empty
    // RepoDigests, never the local manifest's digest.
    assert_eq!(
        k.inspect(&name)["RepoDigests"],
        serde_json::json!([]),
        "a local image has no repo digest"
    );

    let (first, first_took, first_compressed) = timed_push(&k, &["push", &name]);
    assert_eq!(first_compressed, 1, "{}", stderr_of(&first));
    assert!(
        stderr_of(&first).contains(": Pushed"),
        "{}",
        stderr_of(&first)
    );

    // What the registry holds: gzip layers under their compressed digests,
    // the same config (so the same image ID and diff_ids).
    let raw = raw_manifest(&name);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], local["Id"]);
    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = local["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    for (l, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest}"
        );
        let blob = registry_blob(&reg, "dist/big", l["digest"].as_str().unwrap());
        assert_eq!(&blob[..2], &[0x1f, 0x8b], "not gzip");
        assert_eq!(sha(&blob), l["digest"].as_str().unwrap());
        assert_eq!(blob.len() as u64, l["size"].as_u64().unwrap());
        assert_eq!(&sha(&gunzip(&blob)), diff_id.as_str().unwrap());
        assert_ne!(l["digest"], *diff_id, "the layer went up uncompressed");
    }
    // The pushed digest is the registry's, and inspect says so.
    let stdout = stdout_of(&first);
    let pushed_digest = stdout.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(pushed_digest, sha(&raw));
    let repo_digests = k.inspect(&name)["RepoDigests"].clone();
    let want = format!("{}/dist/big@{}", reg.host(), sha(&raw));
    assert!(
        repo_digests
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str() == Some(want.as_str())),
        "{repo_digests} should hold {want}"
    );

    // A second push: HEADs only, no compression, nothing uploaded.
    let (second, second_took, second_compressed) = timed_push(&k, &["push", &name]);
    let e = stderr_of(&second);
    assert_eq!(second_compressed, 0, "{e}");
    assert_eq!(e.matches(": Layer already exists").count(), 1, "{e}");
    assert!(!e.contains("Pushed"), "{e}");
    assert_eq!(stdout_of(&second), stdout);
    eprintln!("push of a 24 MB layer: first {first_took:?}, second {second_took:?}");
    assert!(
        second_took < first_took,
        "{second_took:?} vs {first_took:?}"
    );

    // kiln copy to the registry reuses the compressed form too.
    let copy_to = format!("docker://{}/dist/big:copy", reg.host());
    let (copied, _, copy_compressed) = timed_push(&k, &["copy", &format!("kiln:{name}"), &copy_to]);
    assert_eq!(copy_compressed, 0, "{}", stderr_of(&copied));
    assert!(
        !stderr_of(&copied).contains("Pushed"),
        "{}",
        stderr_of(&copied)
    );

    // Another store pulls it: the same image, the same SIZE as the original
    // although the layer came compressed; system df agrees.
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    let pulled = p.inspect(&name);
    assert_eq!(pulled["Id"], local["Id"]);
    assert_eq!(pulled["Size"], local["Size"]);
    let sizes = |k: &Kiln| {
        let out = k.ok(&["images", "--format", "json"]);
        out.lines()
            .map(|l| json(l)["Size"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&p), sizes(&k)[..1].to_vec(), "images SIZE");
    let df = json(&p.ok(&["system", "df", "--format", "json"]));
    assert_eq!(df["PerImage"][0]["Size"], pulled["Size"], "{df}");

    // docker pulls and runs it.
    let out = run_tool(DOCKER, &["pull", &name]);
    assert!(out.status.success(), "docker pull: {}", stderr_of(&out));
    let run = run_tool(
        DOCKER,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "cat",
            "/etc/motd",
        ],
    );
    let _ = run_tool(DOCKER, &["rmi", "-f", &name]);
    assert!(run.status.success(), "docker run: {}", stderr_of(&run));
    assert_eq!(stdout_of(&run), "hi\n");
}

#[test]
fn a_built_image_goes_up_with_every_layer_gzipped() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    k.import_busybox("base", &[], &[]);
    let ctx = k.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app.txt"), "built by kiln\n".repeat(1000)).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY app.txt /app.txt\n").unwrap();
    let name = format!("{}/dist/built:1", reg.host());
    k.ok(&["build", "-t", &name, ctx.to_str().unwrap()]);
    let local = k.inspect(&name);
    let (_, _, compressed) = timed_push(&k, &["push", &name]);
    assert_eq!(compressed, 2, "base layer and COPY layer");
    let m: serde_json::Value = serde_json::from_slice(&raw_manifest(&name)).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{m}");
    for (l, diff_id) in layers
        .iter()
        .zip(local["RootFS"]["Layers"].as_array().unwrap())
    {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let blob = registry_blob(&reg, "dist/built", l["digest"].as_str().unwrap());
        assert_eq!(&sha(&gunzip(&blob)), diff_id.as_str().unwrap());
    }
    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Id"], local["Id"]);
    assert_eq!(p.inspect(&name)["Size"], local["Size"]);
}

#[test]
fn push_with_zstd_sends_zstd_layers_and_kiln_pulls_them_at_full_size() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    image_with_data(&k, "z", 4);
    let local = k.inspect("z");
    let name = format!("{}/dist/z:1", reg.host());
    k.ok(&["tag", "z", &name]);
    let (_, _, compressed) = timed_push(&k, &["push", "--compression", "zstd", &name]);
    assert_eq!(compressed, 1);
    let manifest: serde_json::Value = serde_json::from_slice(&raw_manifest(&name)).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let blob = registry_blob(&reg, "dist/z", layer["digest"].as_str().unwrap());
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not zstd");
    assert_eq!(sha(&unzstd(&blob)), local["RootFS"]["Layers"][0]);

    // The alias, and the zstd form is remembered apart from the gzip one.
    let again = format!("{}/dist/z:2", reg.host());
    k.ok(&["tag", "z", &again]);
    let (out, _, compressed) = timed_push(&k, &["push", "--compression-format", "zstd", &again]);
    assert_eq!(compressed, 0, "{}", stderr_of(&out));
    let (_, _, compressed) = timed_push(&k, &["push", &again]);
    assert_eq!(compressed, 1, "gzip is a different form");

    let p = Kiln::new();
    p.ok(&["pull", &name]);
    assert_eq!(p.inspect(&name)["Size"], local["Size"]);
    assert_eq!(p.inspect(&name)["Id"], local["Id"]);
}

#[test]
fn force_compression_recompresses_layers_stored_compressed() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    k.import_busybox("g", &[], &["--compression", "gzip"]);
    let name = format!("{}/dist/g:1", reg.host());
    k.ok(&["tag", "g", &name]);
    // Without --force-compression a gzip layer goes as stored.
    let (_, _, compressed) = timed_push(&k, &["push", "--compression", "zstd", &name]);
    assert_eq!(compressed, 0);
    let m: serde_json::Value = serde_json::from_slice(&raw_manifest(&name)).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let forced = format!("{}/dist/g:forced", reg.host());
    k.ok(&["tag", "g", &forced]);
    let (_, _, compressed) = timed_push(
        &k,
        &[
            "push",
            "--compression",
            "zstd",
            "--force-compression",
            &forced,
        ],
    );
    assert_eq!(compressed, 1);
    let m: serde_json::Value = serde_json::from_slice(&raw_manifest(&forced)).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
}

#[test]
fn a_docker_manifest_pushed_with_zstd_layers_becomes_oci() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    k.import_busybox("bb", &[], &[]);
    let archive = k.path("bb.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "bb"]);
    // skopeo pushes a docker archive with Docker schema 2 types; kiln
    // pulls it as is.
    let docker_typed = format!("{}/dist/docker:1", reg.host());
    skopeo_copy_to_registry(
        &format!("docker-archive:{}", archive.display()),
        &docker_typed,
    );
    let p = Kiln::new();
    p.ok(&["pull", &docker_typed]);
    let zstd = format!("{}/dist/docker:zstd", reg.host());
    p.ok(&["tag", &docker_typed, &zstd]);
    p.ok(&[
        "push",
        "--compression",
        "zstd",
        "--force-compression",
        &zstd,
    ]);
    let m: serde_json::Value = serde_json::from_slice(&raw_manifest(&zstd)).unwrap();
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m}"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let again = Kiln::new();
    again.ok(&["pull", &zstd]);
    assert_eq!(again.inspect(&zstd)["Id"], k.inspect("bb")["Id"]);
    assert_eq!(again.inspect(&zstd)["Size"], k.inspect("bb")["Size"]);
}

// ---- 12: pull -a ----

#[test]
fn pull_all_tags_pulls_every_tag_of_the_repository() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    k.import_busybox("one", &[("etc/one", b"1")], &[]);
    k.import_busybox("two", &[("etc/two", b"2")], &[]);
    let repo = format!("{}/dist/all", reg.host());
    for (image, tag) in [("one", "1"), ("two", "2"), ("one", "latest")] {
        k.ok(&["tag", image, &format!("{repo}:{tag}")]);
        k.ok(&["push", &format!("{repo}:{tag}")]);
    }

    let p = Kiln::new();
    let out = p.run(&["pull", "-a", &repo]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let e = stderr_of(&out);
    for tag in ["1", "2", "latest"] {
        assert!(e.contains(&format!("{tag}: Pulling from dist/all")), "{e}");
    }
    assert_eq!(e.matches("Digest: sha256:").count(), 3, "{e}");
    assert!(
        e.contains(&format!("Status: Downloaded newer image for {repo}")),
        "{e}"
    );
    assert_eq!(stdout_of(&out).trim(), repo);
    for (image, tag) in [("one", "1"), ("two", "2"), ("one", "latest")] {
        assert_eq!(
            p.inspect(&format!("{repo}:{tag}"))["Id"],
            k.inspect(image)["Id"],
            "{tag}"
        );
    }
    let again = p.run(&["pull", "--all-tags", &repo]);
    assert!(again.status.success());
    assert!(
        stderr_of(&again).contains(&format!("Status: Image is up to date for {repo}")),
        "{}",
        stderr_of(&again)
    );
    let e = p.fails(&["pull", "-a", &format!("{repo}:1")]);
    assert!(e.contains("tag can't be used with --all-tags/-a"), "{e}");
}

// ---- 13: login, load, push/pull by digest, save, load over a tag ----

fn kiln_line(k: &Kiln, args: &str) -> String {
    format!(
        "{} --root {} {args}",
        env!("CARGO_BIN_EXE_kiln"),
        k.root.display()
    )
}

#[test]
fn login_at_a_terminal_prompts_for_user_and_hidden_password() {
    let reg = Registry::start(Auth::Htpasswd);
    let k = Kiln::new();
    let config = k.path("docker-config.json");
    let cmd = kiln_line(
        &k,
        &format!("login --authfile {} {}", config.display(), reg.host()),
    );
    let (ok, text) = under_pty(
        &cmd,
        &[
            ("Username: ", &format!("{USER}\n")),
            ("Password: ", &format!("{PASSWORD}\n")),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("Username: "), "{text}");
    assert!(text.contains("Password: "), "{text}");
    assert!(text.contains(USER), "the user name is echoed: {text}");
    assert!(!text.contains(PASSWORD), "the password was echoed: {text}");
    assert!(text.contains("Login Succeeded"), "{text}");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains(&reg.host()), "{saved}");
}

#[test]
fn ctrl_c_at_the_password_prompt_gives_the_terminal_its_echo_back() {
    let reg = Registry::start(Auth::Htpasswd);
    let k = Kiln::new();
    let config = k.path("docker-config.json");
    // After kiln, stty shows the terminal's state.
    let cmd = format!(
        "{}; echo kiln-exit=$?; stty -a",
        kiln_line(
            &k,
            &format!("login --authfile {} {}", config.display(), reg.host()),
        )
    );
    // Ctrl-C alone: a user who interrupts does not press Enter after it.
    let (_, text) = under_pty(
        &cmd,
        &[
            ("Username: ", &format!("{USER}\n")),
            ("Password: ", "\u{3}"),
        ],
    );
    assert!(text.contains("kiln-exit=130"), "{text}");
    let after = &text[text.find("kiln-exit").unwrap()..];
    let flags: Vec<&str> = after.split_whitespace().collect();
    assert!(flags.contains(&"echo"), "echo is still off: {after}");
    assert!(!flags.contains(&"-echo"), "echo is still off: {after}");
    assert!(!config.exists(), "nothing is stored");
}

#[test]
fn login_with_a_wrong_password_says_the_login_failed() {
    let reg = Registry::start(Auth::Htpasswd);
    let k = Kiln::new();
    let config = k.path("docker-config.json");
    let e = k.fails(&[
        "login",
        "--authfile",
        config.to_str().unwrap(),
        "-u",
        USER,
        "-p",
        "wrong",
        &reg.host(),
    ]);
    assert!(
        e.contains(&format!("login to {} failed", reg.host())),
        "{e}"
    );
    assert!(e.contains("401"), "{e}");
    assert!(!e.contains("log in with"), "{e}");
    // Nothing was stored for the refused credentials.
    let stored = std::fs::read_to_string(&config).unwrap_or_default();
    assert!(!stored.contains(&reg.host()), "{stored}");
    // Without a terminal and without a password there is nothing to ask.
    let e = k.fails(&["login", "-u", USER, &reg.host()]);
    assert!(
        e.contains("Cannot perform an interactive login from a non TTY device"),
        "{e}"
    );
}

#[test]
fn load_from_a_terminal_fails_at_once() {
    let k = Kiln::new();
    let start = Instant::now();
    let (ok, text) = under_pty(&kiln_line(&k, "load"), &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("requested load from stdin, but stdin is empty"),
        "{text}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn push_by_digest_is_refused_and_pull_by_digest_names_it() {
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    let zero = format!("sha256:{}", "0".repeat(64));
    let by_digest = format!("{}/dist/x@{zero}", reg.host());
    let e = k.fails(&["push", &by_digest]);
    assert!(e.contains("cannot push a digest reference"), "{e}");
    let e = k.fails(&["pull", &by_digest]);
    assert!(e.contains(&format!("dist/x@{zero}")), "{e}");
    assert!(!e.contains(":latest"), "{e}");
}

#[test]
fn save_of_one_image_named_twice_writes_it_once() {
    let k = Kiln::new();
    k.import_busybox("img", &[], &[]);
    k.ok(&["tag", "img", "other:2"]);
    let entries = |tar: &Path| -> Vec<String> {
        tool("tar", &["-tf", tar.to_str().unwrap()])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let once = k.path("once.tar");
    k.ok(&["save", "-o", once.to_str().unwrap(), "img"]);
    for (file, args) in [
        ("twice.tar", ["img", "img"]),
        ("two-tags.tar", ["img", "other:2"]),
    ] {
        let tar = k.path(file);
        let mut all = vec!["save", "-o", tar.to_str().unwrap()];
        all.extend(args);
        k.ok(&all);
        let list = entries(&tar);
        let mut unique = list.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(list.len(), unique.len(), "{file}: {list:?}");
        assert_eq!(list, entries(&once), "{file}: the same blobs as one save");
        let out = tool("tar", &["-xOf", tar.to_str().unwrap(), "manifest.json"]);
        let manifest = json(&out);
        assert_eq!(manifest.as_array().unwrap().len(), 1, "{manifest}");
        let tags = manifest[0]["RepoTags"].as_array().unwrap();
        let mut t: Vec<_> = tags.iter().map(|t| t.as_str().unwrap()).collect();
        t.dedup();
        assert_eq!(t.len(), tags.len(), "{manifest}");
        let index = json(&tool("tar", &["-xOf", tar.to_str().unwrap(), "index.json"]));
        assert_eq!(
            index["manifests"].as_array().unwrap().len(),
            args.iter().collect::<std::collections::BTreeSet<_>>().len(),
            "{index}"
        );
    }
}

#[test]
fn load_over_an_existing_tag_says_which_image_lost_it() {
    let k = Kiln::new();
    k.import_busybox("app:1.0", &[("etc/v", b"1")], &[]);
    let archive = k.path("app.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "app:1.0"]);
    k.import_busybox("app:1.0", &[("etc/v", b"2")], &[]);
    let newer = k.inspect("app:1.0")["Id"].as_str().unwrap().to_string();
    let out = k.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.contains(&format!(
            "The image app:1.0 already exists, renaming the old one with ID {newer} to empty string"
        )),
        "{out}"
    );
    assert!(out.contains("Loaded image: app:1.0"), "{out}");
    // Loading the same again moves nothing: no notice.
    let out = k.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(!out.contains("already exists"), "{out}");
}

#[test]
fn size_is_uncompressed_for_images_copied_in_from_compressed_layouts() {
    let k = Kiln::new();
    image_with_data(&k, "orig", 2);
    let local = k.inspect("orig");
    // skopeo gzips uncompressed layers for oci: destinations.
    let layout = k.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:docker.io/library/orig:latest", k.root.display()),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let index = json(&std::fs::read_to_string(layout.join("index.json")).unwrap());
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = json(
        &std::fs::read_to_string(layout.join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    );
    assert!(
        manifest["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("gzip"),
        "{manifest}"
    );
    let other = Kiln::new();
    other.ok(&[
        "copy",
        &format!("oci:{}:x", layout.display()),
        "kiln:copied",
    ]);
    let copied = other.inspect("copied");
    assert_eq!(copied["Id"], local["Id"]);
    assert_eq!(copied["Size"], local["Size"]);
}

// ---- hostile registries: measured layers, paged tag lists ----

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A fake registry. `lie/img:1` has a config whose diff_id does not match
/// its (gzip) layer; `paged/img` lists its tags a and b over two pages;
/// `away/img` sends its next page to another host.
fn fake_registry(raw_layer: &[u8]) -> u16 {
    use common::http::{self, Reply, Request};
    let layer = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, raw_layer).unwrap();
        e.finish().unwrap()
    };
    let config = |diff_id: &str| {
        serde_json::json!({
            "architecture": host_arch(), "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {}
        })
        .to_string()
        .into_bytes()
    };
    let good_config = config(&sha(raw_layer));
    let lying_config = config(&sha(b"something else"));
    let manifest = |config: &[u8]| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&layer), "size": layer.len()}]
        })
        .to_string()
        .into_bytes()
    };
    let good = manifest(&good_config);
    let lying = manifest(&lying_config);
    let handler = move |req: &Request| -> Reply {
        let path = req.path().to_string();
        if path == "/v2/" {
            return Reply::new(200, "{}");
        }
        let m = |bytes: &[u8]| {
            Reply::new(200, bytes.to_vec())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &sha(bytes))
        };
        for blob in [&layer, &good_config, &lying_config] {
            if path.ends_with(&format!("/blobs/{}", sha(blob))) {
                return Reply::new(200, blob.to_vec());
            }
        }
        match path.as_str() {
            "/v2/lie/img/manifests/1" => m(&lying),
            "/v2/paged/img/manifests/a" | "/v2/paged/img/manifests/b" => m(&good),
            "/v2/paged/img/tags/list" if req.query("last") == ["a"] => {
                Reply::new(200, r#"{"name":"paged/img","tags":["b"]}"#)
            }
            "/v2/paged/img/tags/list" => Reply::new(200, r#"{"name":"paged/img","tags":["a"]}"#)
                .header(
                    "Link",
                    r#"</v2/paged/img/tags/list?n=1&last=a>; rel="next""#,
                ),
            "/v2/away/img/tags/list" => Reply::new(200, r#"{"name":"away/img","tags":["a"]}"#)
                .header(
                    "Link",
                    r#"<http://127.0.0.2:1/v2/away/img/tags/list?last=a>; rel="next""#,
                ),
            _ => Reply::new(404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#),
        }
    };
    http::serve(std::sync::Arc::new(handler))
}

#[test]
fn pull_refuses_a_layer_that_unpacks_to_another_diff_id() {
    let port = fake_registry(&b"pretend tar ".repeat(5000));
    let k = Kiln::new();
    let e = k.fails(&["pull", &format!("127.0.0.1:{port}/lie/img:1")]);
    assert!(e.contains("unpacks to diff_id"), "{e}");
    assert_eq!(k.ok(&["images", "-q"]), "", "nothing may be tagged");
}

#[test]
fn pull_all_tags_follows_pages_and_measures_layers_uncompressed() {
    let raw = b"pretend tar ".repeat(5000);
    let port = fake_registry(&raw);
    let k = Kiln::new();
    let repo = format!("127.0.0.1:{port}/paged/img");
    let out = k.run(&["pull", "-a", &repo]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    for tag in ["a", "b"] {
        let doc = k.inspect(&format!("{repo}:{tag}"));
        // The layer came gzip-compressed (a few hundred bytes); SIZE is
        // what it unpacks to.
        assert_eq!(doc["Size"], raw.len() as u64, "{doc}");
    }
    let e = k.fails(&["pull", "-a", &format!("127.0.0.1:{port}/away/img")]);
    assert!(e.contains("another host"), "{e}");
}
