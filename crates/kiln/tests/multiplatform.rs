//! Multi-platform builds: `kiln build --platform linux/amd64,linux/arm64`
//! on a two-platform base (the amd64 busybox and Debian's arm64
//! busybox-static joined by `kiln manifest create`), arm64 steps through
//! QEMU; the index pushed with `--push` and read back by skopeo, docker
//! and kiln; the cross-compile pattern (`FROM --platform=$BUILDPLATFORM`)
//! run once; a platform without an emulator refused before any step. All
//! registry traffic stays on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::{Auth, Registry};
use common::{run_tool, tool, Kiln};

/// A store with `bb:multi`: busybox for linux/amd64 and linux/arm64.
fn two_platform_base() -> Kiln {
    let k = Kiln::new();
    k.import_busybox("bb:amd64", &[], &["--platform", "linux/amd64"]);
    k.import_arm64_busybox("bb:arm64");
    k.ok(&["manifest", "create", "bb:multi", "bb:amd64", "bb:arm64"]);
    k
}

/// Writes `dockerfile` into a fresh context directory of `k`'s.
fn context(k: &Kiln, name: &str, dockerfile: &str) -> String {
    let dir = k.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir.to_str().unwrap().to_string()
}

/// `kiln build` that must succeed; returns its progress (stderr).
fn build(k: &Kiln, args: &[&str]) -> String {
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    let out = k.run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kiln {all:?} failed:\n{stderr}");
    stderr
}

/// `cat FILE` in `image` run for `platform`.
fn cat(k: &Kiln, platform: &str, image: &str, file: &str) -> String {
    k.ok(&[
        "run",
        "--rm",
        "--platform",
        platform,
        image,
        "busybox",
        "cat",
        file,
    ])
}

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// A docker image name removed when dropped.
struct DockerImage(String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = run_tool("docker", &["rmi", "-f", &self.0]);
    }
}

#[test]
fn a_two_platform_build_makes_one_index_pushed_whole_and_read_back_everywhere() {
    let reg = Registry::start(Auth::Anonymous);
    let k = two_platform_base();
    let ctx = context(
        &k,
        "ctx",
        "FROM bb:multi\nARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDPLATFORM\n\
         RUN busybox uname -m > /arch && echo $TARGETPLATFORM $TARGETARCH $BUILDPLATFORM > /args\n",
    );
    let tag = format!("{}/multi/app:1", reg.host());
    let progress = build(
        &k,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--push",
            &ctx,
        ],
    );
    // Each step says which platform it is for, as BuildKit does.
    for p in ["linux/amd64", "linux/arm64"] {
        assert!(
            progress.contains(&format!("[{p} stage-0] RUN busybox uname -m")),
            "{progress}"
        );
    }

    // One image in the store, an index of both platforms.
    let rows = k.ok(&["images", "--format", "json"]);
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["Repository"].as_str().unwrap().ends_with("multi/app"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0]["Platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let inspect = k.inspect(&tag);
    assert_eq!(
        inspect["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let archs: Vec<&str> = inspect["Manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["Descriptor"]["platform"]["architecture"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);

    // Each platform's image ran its RUN on its own CPU (arm64 through
    // QEMU) with its own TARGET* arguments; configs say their platform.
    assert_eq!(cat(&k, "linux/amd64", &tag, "/arch"), "x86_64\n");
    assert_eq!(cat(&k, "linux/arm64", &tag, "/arch"), "aarch64\n");
    assert_eq!(
        cat(&k, "linux/arm64", &tag, "/args"),
        "linux/arm64 arm64 linux/amd64\n"
    );
    assert_eq!(
        cat(&k, "linux/amd64", &tag, "/args"),
        "linux/amd64 amd64 linux/amd64\n"
    );
    // kiln run --platform on the tag prints the emulated machine.
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            &tag,
            "busybox",
            "uname",
            "-m"
        ]),
        "aarch64\n"
    );

    // The registry holds the index and both images.
    let raw = common::skopeo_raw(&tag);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    for (arch, skopeo_arch) in [("amd64", "amd64"), ("arm64", "arm64")] {
        let config = tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                &format!("docker://{tag}"),
            ],
        );
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["Architecture"], skopeo_arch);
    }

    // docker pulls the host's image of the index.
    let docker_name = DockerImage(tag.clone());
    let pull = run_tool("docker", &["pull", &docker_name.0]);
    assert!(
        pull.status.success(),
        "docker pull {tag}: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    assert_eq!(
        tool(
            "docker",
            &[
                "image",
                "inspect",
                "-f",
                "{{.Architecture}}",
                &docker_name.0
            ]
        ),
        "amd64\n"
    );
    assert_eq!(
        tool(
            "docker",
            &[
                "run",
                "--rm",
                "--network",
                "none",
                &docker_name.0,
                "busybox",
                "cat",
                "/arch"
            ]
        ),
        "x86_64\n"
    );

    // kiln pulls either platform into an empty store.
    for (platform, machine) in [("linux/arm64", "aarch64\n"), ("linux/amd64", "x86_64\n")] {
        let fresh = Kiln::new();
        fresh.ok(&["pull", "--platform", platform, &tag]);
        assert_eq!(cat(&fresh, platform, &tag, "/arch"), machine);
    }

    // A build on the pushed index in an empty store pulls its base (every
    // platform at once, which both platforms' builds share) and pushes
    // with buildx's spelling, -o type=registry.
    let fresh = Kiln::new();
    let on_top = context(
        &fresh,
        "on-top",
        &format!("FROM {tag}\nRUN busybox cp /arch /base-arch\n"),
    );
    let next = format!("{}/multi/next:1", reg.host());
    build(
        &fresh,
        &[
            "--platform",
            "linux/arm64,linux/amd64",
            "-t",
            &next,
            "-o",
            "type=registry",
            &on_top,
        ],
    );
    assert_eq!(cat(&fresh, "linux/arm64", &next, "/base-arch"), "aarch64\n");
    assert_eq!(cat(&fresh, "linux/amd64", &next, "/base-arch"), "x86_64\n");
    let raw = common::skopeo_raw(&next);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);

    // kiln push of a tag naming an index pushes every platform, then it.
    let again = format!("{}/multi/again:1", reg.host());
    k.ok(&["tag", &tag, &again]);
    k.ok(&["push", &again]);
    let raw = common::skopeo_raw(&again);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);

    // push --platform: one platform's image under the tag.
    let arm_tag = format!("{}/multi/app:arm", reg.host());
    k.ok(&["tag", &tag, &arm_tag]);
    k.ok(&["push", "--platform", "linux/arm64", &arm_tag]);
    let raw = common::skopeo_raw(&arm_tag);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{arm_tag}"),
        ],
    );
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["Architecture"], "arm64");

    // Every platform's image survives a prune: the index holds them.
    k.ok(&["image", "prune", "-f"]);
    k.ok(&["system", "check"]);
    assert_eq!(cat(&k, "linux/arm64", &tag, "/arch"), "aarch64\n");
}

#[test]
fn a_build_platform_stage_runs_once_natively_for_both_targets() {
    let k = two_platform_base();
    // The cross-compile pattern: the build stage runs on the build
    // platform and makes something per target (here a note naming it);
    // a random token shows whether it ran once or once per target.
    let ctx = context(
        &k,
        "cross",
        "FROM --platform=$BUILDPLATFORM bb:multi AS build\n\
         RUN busybox uname -m > /built-on && busybox cat /proc/sys/kernel/random/uuid > /token\n\
         FROM bb:multi\n\
         COPY --from=build /built-on /token /out/\n\
         RUN busybox uname -m > /out/runs-on\n",
    );
    let iidfile = k.dir.path().join("cross.iid");
    let progress = build(
        &k,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "cross:1",
            "--iidfile",
            iidfile.to_str().unwrap(),
            &ctx,
        ],
    );
    // The index's ID is its digest (docker 28, containerd store): in the
    // iidfile, `images` (short and --no-trunc), `inspect`, and as a name.
    let id = std::fs::read_to_string(&iidfile).unwrap();
    let descriptor = k.inspect("cross:1")["Descriptor"]["digest"].clone();
    assert_eq!(descriptor, id.as_str());
    assert_eq!(
        k.ok(&["inspect", "--format", "{{.Id}}", "cross:1"]).trim(),
        id
    );
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        k.ok(&["images", "--format", "{{.ID}}", "cross"]).trim(),
        short
    );
    assert_eq!(k.ok(&["images", "--no-trunc", "-q", "cross"]).trim(), id);
    assert_eq!(
        k.inspect(short)["Descriptor"]["digest"].as_str(),
        Some(id.as_str())
    );
    for (platform, machine) in [("linux/amd64", "x86_64\n"), ("linux/arm64", "aarch64\n")] {
        assert_eq!(cat(&k, platform, "cross:1", "/out/built-on"), "x86_64\n");
        assert_eq!(cat(&k, platform, "cross:1", "/out/runs-on"), machine);
    }
    assert_eq!(
        cat(&k, "linux/amd64", "cross:1", "/out/token"),
        cat(&k, "linux/arm64", "cross:1", "/out/token"),
        "the build stage ran once, shared by both targets:\n{progress}"
    );
    // Its RUN step is shown for both platforms; one of them is a cache hit.
    let runs: Vec<&str> = progress
        .lines()
        .filter(|l| l.contains(" build] RUN busybox uname -m > /built-on"))
        .collect();
    assert_eq!(runs.len(), 2, "{progress}");
    assert!(progress.contains(" CACHED"), "{progress}");

    // --no-cache runs the stage again, but still once for both targets
    // (BuildKit's one graph): it refuses the earlier build's record, not
    // what the other platform has just made.
    let first = cat(&k, "linux/amd64", "cross:1", "/out/token");
    let progress = build(
        &k,
        &[
            "--no-cache",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "cross:1",
            &ctx,
        ],
    );
    let token = cat(&k, "linux/amd64", "cross:1", "/out/token");
    assert_ne!(token, first, "--no-cache ran the stage again:\n{progress}");
    assert_eq!(
        token,
        cat(&k, "linux/arm64", "cross:1", "/out/token"),
        "--no-cache ran the build stage once for both targets:\n{progress}"
    );
    assert_eq!(
        progress.lines().filter(|l| l.ends_with(" CACHED")).count(),
        1,
        "only the other platform's run of the shared step is a hit:\n{progress}"
    );

    // A single foreign platform builds one arm64 image, not an index.
    build(&k, &["--platform", "linux/arm64", "-t", "cross:arm", &ctx]);
    let inspect = k.inspect("cross:arm");
    assert_eq!(inspect["Architecture"], "arm64");
    assert!(inspect.get("Manifests").is_none(), "{inspect}");
}

/// A platform with no binfmt_misc handler registered on this host.
fn unemulated_platform() -> &'static str {
    for (platform, handler) in [
        ("linux/s390x", "qemu-s390x"),
        ("linux/riscv64", "qemu-riscv64"),
        ("linux/ppc64le", "qemu-ppc64le"),
        ("linux/mips64le", "qemu-mips64el"),
    ] {
        if !std::path::Path::new("/proc/sys/fs/binfmt_misc")
            .join(handler)
            .exists()
        {
            return platform;
        }
    }
    panic!("every candidate platform has a binfmt handler here; add another to the list");
}

#[test]
fn a_platform_without_an_emulator_fails_before_any_step_naming_the_package() {
    let k = two_platform_base();
    let platform = unemulated_platform();
    let ctx = context(&k, "ctx", "FROM bb:multi\nRUN busybox uname -m > /arch\n");
    let out = k.run(&[
        "build",
        "--progress",
        "plain",
        "--platform",
        &format!("linux/amd64,{platform}"),
        "-t",
        "never:1",
        &ctx,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("qemu-user-static"), "{stderr}");
    assert!(stderr.contains(platform), "{stderr}");
    // Not even the amd64 build started a step.
    assert!(!stderr.contains("RUN busybox"), "{stderr}");
    let images = k.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("never"), "{images}");

    // The cross-compile pattern needs no emulator: only the build
    // platform's stage runs anything, the target's stage only copies.
    let cross = context(
        &k,
        "cross",
        "FROM --platform=$BUILDPLATFORM bb:multi AS build\n\
         ARG TARGETARCH\n\
         RUN echo built for $TARGETARCH on $(busybox uname -m) > /note\n\
         FROM scratch\n\
         COPY --from=build /note /note\n",
    );
    build(
        &k,
        &[
            "--platform",
            &format!("linux/amd64,{platform}"),
            "-t",
            "cross:1",
            &cross,
        ],
    );
    let inspect = k.inspect("cross:1");
    let archs: Vec<&str> = inspect["Manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["Descriptor"]["platform"]["architecture"]
                .as_str()
                .unwrap()
        })
        .collect();
    let foreign = platform.strip_prefix("linux/").unwrap();
    assert_eq!(archs, ["amd64", foreign]);
    // What the target's image holds was made natively for it.
    let out = k.dir.path().join("rootfs");
    build(
        &k,
        &[
            "--platform",
            platform,
            "-o",
            &format!("type=local,dest={}", out.display()),
            &cross,
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("note")).unwrap(),
        format!("built for {foreign} on x86_64\n")
    );
}

#[test]
fn several_platforms_export_an_oci_index_tar_and_a_directory_per_platform() {
    let k = two_platform_base();
    let ctx = context(&k, "ctx", "FROM bb:multi\nRUN busybox uname -m > /arch\n");
    let both = "linux/amd64,linux/arm64";
    let dir = k.dir.path();

    // type=oci: an OCI layout tar whose index.json names the index.
    let oci = dir.join("multi-oci.tar");
    let iidfile = dir.join("iid");
    build(
        &k,
        &[
            "--platform",
            both,
            "-t",
            "out:1",
            "--iidfile",
            iidfile.to_str().unwrap(),
            "--sbom",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            &ctx,
        ],
    );
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", oci.display()),
        ],
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    // The images, then (--sbom) an attestation manifest for each.
    assert_eq!(
        platforms_of(&index),
        [
            "linux/amd64",
            "linux/arm64",
            "unknown/unknown",
            "unknown/unknown"
        ]
    );
    assert_eq!(
        common::sha256_digest(raw.as_bytes()),
        std::fs::read_to_string(&iidfile).unwrap()
    );
    // kiln load gives the index back, under its name, every platform.
    let fresh = Kiln::new();
    fresh.ok(&["load", "-i", oci.to_str().unwrap()]);
    let inspect = fresh.inspect("out:1");
    assert_eq!(
        inspect["Descriptor"]["digest"].as_str().unwrap(),
        std::fs::read_to_string(&iidfile).unwrap()
    );
    // Attestations included: their blobs came along (system check).
    assert_eq!(inspect["Manifests"].as_array().unwrap().len(), 4);
    assert_eq!(cat(&fresh, "linux/arm64", "out:1", "/arch"), "aarch64\n");
    assert_eq!(cat(&fresh, "linux/amd64", "out:1", "/arch"), "x86_64\n");
    fresh.ok(&["system", "check"]);

    // type=local: a directory per platform, as buildx names them.
    let local = dir.join("local-out");
    build(
        &k,
        &[
            "--platform",
            both,
            "-o",
            &format!("type=local,dest={}", local.display()),
            &ctx,
        ],
    );
    for (p, machine) in [("linux_amd64", "x86_64\n"), ("linux_arm64", "aarch64\n")] {
        assert_eq!(
            std::fs::read_to_string(local.join(p).join("arch")).unwrap(),
            machine
        );
        assert!(local.join(p).join("bin/busybox").exists());
    }

    // type=tar: the same tree in one tar file.
    let rootfs = dir.join("rootfs.tar");
    build(
        &k,
        &[
            "--platform",
            both,
            "-o",
            &format!("type=tar,dest={}", rootfs.display()),
            &ctx,
        ],
    );
    for (p, machine) in [("linux_amd64", "x86_64\n"), ("linux_arm64", "aarch64\n")] {
        let got = tool(
            "tar",
            &["-xOf", rootfs.to_str().unwrap(), &format!("{p}/arch")],
        );
        assert_eq!(got, machine);
    }

    // One platform: the root filesystem at the top of the tar.
    let one = dir.join("one.tar");
    build(
        &k,
        &[
            "--platform",
            "linux/arm64",
            "-o",
            &format!("type=tar,dest={}", one.display()),
            &ctx,
        ],
    );
    assert_eq!(
        tool("tar", &["-xOf", one.to_str().unwrap(), "arch"]),
        "aarch64\n"
    );

    // type=docker cannot hold an index: refused before any step, as
    // buildx words it, naming the fix.
    let docker = dir.join("docker.tar");
    let out = k.run(&[
        "build",
        "--progress",
        "plain",
        "--platform",
        both,
        "-o",
        &format!("type=docker,dest={}", docker.display()),
        &ctx,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("docker exporter does not currently support exporting manifest lists"),
        "{stderr}"
    );
    assert!(stderr.contains("type=oci"), "{stderr}");
    assert!(!stderr.contains("RUN busybox"), "{stderr}");
    assert!(!docker.exists());
}

#[test]
fn sbom_and_provenance_of_several_platforms_go_into_the_index_as_buildkit_lists_them() {
    let reg = Registry::start(Auth::Anonymous);
    let k = two_platform_base();
    let ctx = context(&k, "ctx", "FROM bb:multi\nRUN busybox uname -m > /arch\n");
    let tag = format!("{}/multi/att:1", reg.host());
    build(
        &k,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--sbom",
            "--provenance",
            "--push",
            &ctx,
        ],
    );
    // Pushed: the two images, then an attestation manifest for each.
    let raw = common::skopeo_raw(&tag);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 4, "{raw}");
    let images: Vec<&serde_json::Value> = manifests
        .iter()
        .filter(|m| m["platform"]["os"] == "linux")
        .collect();
    assert_eq!(images.len(), 2, "{raw}");
    let attestations: Vec<&serde_json::Value> = manifests
        .iter()
        .filter(|m| m["platform"]["os"] == "unknown")
        .collect();
    assert_eq!(attestations.len(), 2, "{raw}");
    let repo = format!("http://{}/v2/multi/att", reg.host());
    let stored: Vec<String> = k.inspect(&tag)["Manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ID"].as_str().unwrap().to_string())
        .collect();
    for (image, att) in images.iter().zip(&attestations) {
        assert_eq!(att["platform"]["architecture"], "unknown", "{raw}");
        assert_eq!(
            att["annotations"]["vnd.docker.reference.type"],
            "attestation-manifest"
        );
        // It names the image as the registry has it (pushed digest).
        assert_eq!(
            att["annotations"]["vnd.docker.reference.digest"], image["digest"],
            "{raw}"
        );
        let m = common::skopeo_raw(&format!(
            "{}/multi/att@{}",
            reg.host(),
            att["digest"].as_str().unwrap()
        ));
        let m: serde_json::Value = serde_json::from_str(&m).unwrap();
        let layers = m["layers"].as_array().unwrap();
        let types: Vec<&str> = layers
            .iter()
            .map(|l| {
                assert_eq!(l["mediaType"], "application/vnd.in-toto+json");
                l["annotations"]["in-toto.io/predicate-type"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            types,
            [
                "https://spdx.dev/Document",
                "https://slsa.dev/provenance/v0.2"
            ],
            "{m}"
        );
        // The SBOM statement lists the image's busybox.
        let sbom = tool(
            "curl",
            &[
                "-sf",
                &format!("{repo}/blobs/{}", layers[0]["digest"].as_str().unwrap()),
            ],
        );
        let sbom: serde_json::Value = serde_json::from_str(&sbom).unwrap();
        assert_eq!(sbom["predicateType"], "https://spdx.dev/Document");
        assert!(sbom["predicate"]["spdxVersion"].is_string(), "{sbom}");
        // Both statements are about the image the registry holds (the
        // push compressed its layers: a digest the store never had).
        assert!(!stored.contains(&image["digest"].as_str().unwrap().to_string()));
        let pushed = image["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        assert_eq!(sbom["subject"][0]["digest"]["sha256"], pushed, "{sbom}");
        let provenance = tool(
            "curl",
            &[
                "-sf",
                &format!("{repo}/blobs/{}", layers[1]["digest"].as_str().unwrap()),
            ],
        );
        let provenance: serde_json::Value = serde_json::from_str(&provenance).unwrap();
        assert_eq!(
            provenance["subject"][0]["digest"]["sha256"], pushed,
            "{provenance}"
        );
        // The attestation config lists the statements it holds.
        let config = tool(
            "curl",
            &[
                "-sf",
                &format!("{repo}/blobs/{}", m["config"]["digest"].as_str().unwrap()),
            ],
        );
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layers[0]["digest"]);
    }
    // The registry holds exactly what the pushed index names: the
    // statements the push rewrote were never uploaded in their stored
    // form (no orphan blobs).
    let mut named = std::collections::BTreeSet::from([common::sha256_digest(raw.as_bytes())]);
    for m in manifests {
        let digest = m["digest"].as_str().unwrap();
        named.insert(digest.to_string());
        let body = common::skopeo_raw(&format!("{}/multi/att@{digest}", reg.host()));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        for d in std::iter::once(&body["config"]).chain(body["layers"].as_array().unwrap()) {
            named.insert(d["digest"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(reg.stored_blobs(), named);

    // buildx's imagetools inspect lists them with their annotations.
    let summary = k.ok(&["imagetools", "inspect", &tag]);
    assert!(
        summary.contains("Platform:    unknown/unknown"),
        "{summary}"
    );
    assert!(
        summary.contains("vnd.docker.reference.type:   attestation-manifest"),
        "{summary}"
    );

    // The stored index holds them too; the image is still two platforms.
    let inspect = k.inspect(&tag);
    let kinds: Vec<&str> = inspect["Manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["image", "image", "attestation", "attestation"]);
    let rows = k.ok(&["images", "--format", "json"]);
    let row: serde_json::Value = rows
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["Repository"].as_str().unwrap().ends_with("multi/att"))
        .unwrap();
    assert_eq!(
        row["Platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(cat(&k, "linux/arm64", &tag, "/arch"), "aarch64\n");
    k.ok(&["image", "prune", "-f"]);
    k.ok(&["system", "check"]);
    // Reading one platform's packages keeps working, in the store and
    // straight from the registry (the attestations are no platform's).
    for source in [tag.clone(), format!("docker://{tag}")] {
        let spdx = k.ok(&["sbom", "-o", "spdx-json", &source]);
        let spdx: serde_json::Value = serde_json::from_str(&spdx).unwrap();
        assert!(spdx["spdxVersion"].is_string(), "{source}: {spdx}");
    }

    // An empty store pulls the platform it asks for, attestations aside.
    let fresh = Kiln::new();
    fresh.ok(&["pull", "--platform", "linux/arm64", &tag]);
    assert_eq!(cat(&fresh, "linux/arm64", &tag, "/arch"), "aarch64\n");
}
