//! Interoperability with the real peers: skopeo and umoci read the store as
//! an OCI layout; docker loads and runs what kiln saves; kiln loads what
//! docker and skopeo save. These tools are required (CI installs them and
//! starts dockerd); a missing tool fails the test, it is never skipped.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{busybox_tar, run_tool, tool, Kiln};
use serde_json::Value;

/// Docker names unique to this run, removed when dropped.
struct DockerImage(String);

impl DockerImage {
    fn new(label: &str) -> DockerImage {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        DockerImage(format!("kiln-interop/{label}:{}-{n}", std::process::id()))
    }
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = run_tool("docker", &["rmi", "-f", &self.0]);
    }
}

fn require_docker() {
    let out = run_tool("docker", &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success(),
        "dockerd is not running (start it: dockerd >/tmp/dockerd.log 2>&1 &; .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker load`, with evidence when it fails: the archive is kept and
/// checked by an independent tar reader, so a failure says whether kiln's
/// bytes or docker are at fault. (This is how docker 20.10's lack of zstd
/// support was found: "archive/tar: invalid tar header" on a valid archive.)
fn docker_load(archive: &std::path::Path) -> String {
    let out = run_tool("docker", &["load", "-i", archive.to_str().unwrap()]);
    if out.status.success() {
        return String::from_utf8(out.stdout).unwrap();
    }
    let kept = std::env::temp_dir().join(format!("kiln-failed-load-{}.tar", std::process::id()));
    std::fs::copy(archive, &kept).unwrap();
    let check = run_tool(
        "python3",
        &[
            "-c",
            "import sys,tarfile\nfor m in tarfile.open(sys.argv[1]): print(m.name, m.size)",
            kept.to_str().unwrap(),
        ],
    );
    panic!(
        "docker load failed: {}\narchive kept at {}; python tarfile says ({}): {}{}",
        String::from_utf8_lossy(&out.stderr),
        kept.display(),
        check.status,
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
    );
}

fn image_with_file(k: &Kiln, name: &str) -> std::path::PathBuf {
    let tar = busybox_tar(k.dir.path(), "base", &[("hello", b"hello from kiln\n")]);
    k.ok(&[
        "import",
        tar.to_str().unwrap(),
        name,
        "-c",
        r#"CMD ["cat", "/hello"]"#,
        "-c",
        "ENV GREETING=hi",
    ]);
    tar
}

#[test]
fn skopeo_and_umoci_read_the_store() {
    let k = Kiln::new();
    image_with_file(&k, "app:1");
    let doc = k.inspect("app:1");
    let root = k.root.to_str().unwrap();
    let out = tool(
        "skopeo",
        &["inspect", &format!("oci:{root}:docker.io/library/app:1")],
    );
    let sk: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sk["Digest"], doc["Descriptor"]["digest"]);
    assert_eq!(sk["Env"], serde_json::json!(["GREETING=hi"]));
    let config = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci:{root}:docker.io/library/app:1"),
        ],
    );
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], doc["RootFS"]["Layers"]);

    let bundle = k.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{root}:docker.io/library/app:1"),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/hello")).unwrap(),
        b"hello from kiln\n"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let spec: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec["process"]["args"],
        serde_json::json!(["cat", "/hello"])
    );
}

/// zstd layers are not covered here: docker before 23.0 (Debian's is
/// 20.10) cannot decompress them; kiln warns when saving such an image.
#[test]
fn docker_loads_and_runs_what_kiln_saves() {
    for compression in ["none", "gzip"] {
        docker_loads_and_runs(compression);
    }
}

fn docker_loads_and_runs(compression: &str) {
    require_docker();
    let k = Kiln::new();
    let name = DockerImage::new(&format!("saved-{compression}"));
    // Content unique to this run: a layer docker already has is not
    // extracted again, and would hide a layer it cannot read.
    let unique = format!("{} {compression}", name.0);
    let tar = busybox_tar(
        k.dir.path(),
        "base",
        &[
            ("hello", b"hello from kiln\n"),
            ("unique", unique.as_bytes()),
        ],
    );
    let args = [
        "import",
        tar.to_str().unwrap(),
        &name.0,
        "--compression",
        compression,
    ];
    k.ok(&[
        &args[..],
        &["-c", r#"CMD ["cat", "/hello"]"#, "-c", "ENV GREETING=hi"],
    ]
    .concat());
    let archive = k.path("out.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), &name.0]);
    let out = docker_load(&archive);
    assert!(out.contains(&format!("Loaded image: {}", name.0)), "{out}");
    let id = tool("docker", &["inspect", "-f", "{{.Id}}", &name.0]);
    assert_eq!(id.trim(), k.inspect(&name.0)["Id"]);
    let out = tool("docker", &["run", "--rm", "--network", "none", &name.0]);
    assert_eq!(out, "hello from kiln\n");
    let out = tool(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name.0,
            "sh",
            "-c",
            "echo $GREETING",
        ],
    );
    assert_eq!(out, "hi\n");
}

#[test]
fn kiln_loads_what_docker_saves() {
    require_docker();
    let k = Kiln::new();
    let name = DockerImage::new("docker-made");
    let tar = busybox_tar(
        k.dir.path(),
        "base",
        &[("x", b"docker made me\n"), ("unique", name.0.as_bytes())],
    );
    tool(
        "docker",
        &[
            "import",
            "--change",
            "CMD [\"cat\", \"/x\"]",
            tar.to_str().unwrap(),
            &name.0,
        ],
    );
    let archive = k.path("docker.tar");
    tool(
        "docker",
        &["save", "-o", archive.to_str().unwrap(), &name.0],
    );
    let out = k.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image: {}", name.0));

    let docker: Value = serde_json::from_str(&tool("docker", &["inspect", &name.0])).unwrap();
    let kiln = k.inspect(&name.0);
    assert_eq!(kiln["Id"], docker[0]["Id"], "same config digest");
    assert_eq!(
        kiln["RootFS"]["Layers"], docker[0]["RootFS"]["Layers"],
        "same diff_ids"
    );
    assert_eq!(kiln["Config"]["Cmd"], serde_json::json!(["cat", "/x"]));
    k.ok(&["system", "check"]);

    // kiln import of the same tarball gives docker's diff_id.
    k.ok(&["import", tar.to_str().unwrap(), "mine"]);
    assert_eq!(
        k.inspect("mine")["RootFS"]["Layers"],
        docker[0]["RootFS"]["Layers"]
    );

    // And the round trip back into docker runs.
    let again = DockerImage::new("round-trip");
    k.ok(&["tag", &name.0, &again.0]);
    let out_archive = k.path("back.tar");
    k.ok(&["save", "-o", out_archive.to_str().unwrap(), &again.0]);
    docker_load(&out_archive);
    assert_eq!(
        tool("docker", &["run", "--rm", "--network", "none", &again.0]),
        "docker made me\n"
    );
}

#[test]
fn kiln_loads_skopeo_archives() {
    let k = Kiln::new();
    image_with_file(&k, "app:1");
    let id = k.inspect("app:1")["Id"].clone();
    let src = format!("oci:{}:docker.io/library/app:1", k.root.display());
    for (transport, file, name) in [
        ("oci-archive", "sk-oci.tar", "sk/oci:1"),
        ("docker-archive", "sk-docker.tar", "sk/docker:1"),
    ] {
        let path = k.path(file);
        tool(
            "skopeo",
            &[
                "copy",
                "-q",
                &src,
                &format!("{transport}:{}:{name}", path.display()),
            ],
        );
        let target = Kiln::new();
        let out = target.ok(&["load", "-i", path.to_str().unwrap()]);
        assert_eq!(out.trim(), format!("Loaded image: {name}"), "{transport}");
        assert_eq!(
            target.inspect(name)["Id"],
            id,
            "{transport}: config digest kept"
        );
        assert_eq!(target.inspect(name)["RootFS"], k.inspect("app:1")["RootFS"]);
        target.ok(&["system", "check"]);
    }
    // skopeo reads kiln save output through both of its archive transports.
    let saved = k.path("kiln.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "app:1"]);
    let oci: Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", saved.display()),
        ],
    ))
    .unwrap();
    assert_eq!(
        oci["rootfs"]["diff_ids"],
        k.inspect("app:1")["RootFS"]["Layers"]
    );
    let docker: Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", saved.display()),
        ],
    ))
    .unwrap();
    assert_eq!(
        docker["rootfs"]["diff_ids"],
        k.inspect("app:1")["RootFS"]["Layers"]
    );
}

/// The same Dockerfile built by docker's classic builder and by kiln: both
/// images run in docker with the same output, and their configs agree.
#[test]
fn docker_and_kiln_build_the_same_dockerfile_alike() {
    require_docker();
    let k = Kiln::new();
    let base = DockerImage::new("build-base");
    let tar = busybox_tar(k.dir.path(), "base", &[("unique", base.0.as_bytes())]);
    k.ok(&["import", tar.to_str().unwrap(), &base.0]);
    let archive = k.path("base.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), &base.0]);
    docker_load(&archive);

    let ctx = k.path("ctx");
    std::fs::create_dir_all(ctx.join("src")).unwrap();
    std::fs::write(ctx.join("src/hello.txt"), "hello from the context\n").unwrap();
    std::fs::write(ctx.join("ignored.log"), "must not be copied\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             ARG GREETING=hi\n\
             ENV PATH=/usr/local/bin:/bin APP=/srv/app\n\
             LABEL org.example.name=interop version=\"1 2\"\n\
             WORKDIR /srv/app\n\
             COPY . ./\n\
             RUN echo \"$GREETING from RUN\" > made.txt && ls > listing.txt\n\
             USER 1000:1000\n\
             EXPOSE 8080 9000/udp\n\
             VOLUME /data\n\
             HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD cat /srv/app/made.txt\n\
             STOPSIGNAL SIGTERM\n\
             ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
             CMD [\"cat src/hello.txt made.txt listing.txt; echo $APP; id -u\"]\n",
            base = base.0
        ),
    )
    .unwrap();

    let docker_image = DockerImage::new("built-by-docker");
    let out = std::process::Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &docker_image.0, ctx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kiln_image = DockerImage::new("built-by-kiln");
    k.ok(&["build", "-q", "-t", &kiln_image.0, ctx.to_str().unwrap()]);
    let kiln_archive = k.path("kiln-built.tar");
    k.ok(&["save", "-o", kiln_archive.to_str().unwrap(), &kiln_image.0]);
    docker_load(&kiln_archive);

    let run = |image: &str| tool("docker", &["run", "--rm", "--network", "none", image]);
    let by_docker = run(&docker_image.0);
    let by_kiln = run(&kiln_image.0);
    assert!(by_docker.contains("hi from RUN"), "{by_docker}");
    assert!(!by_docker.contains("ignored.log"), "{by_docker}");
    assert_eq!(by_kiln, by_docker, "the two images behave differently");

    let config = |image: &str| -> Value {
        let doc: Value = serde_json::from_str(&tool("docker", &["inspect", image])).unwrap();
        doc[0]["Config"].clone()
    };
    let (d, kc) = (config(&docker_image.0), config(&kiln_image.0));
    for field in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "Healthcheck",
        "StopSignal",
    ] {
        assert_eq!(kc[field], d[field], "Config.{field} differs");
    }
}

/// Every file under `dir`: relative path, type, mode and content. Two equal
/// snapshots mean nothing was added, removed or changed.
fn tree_snapshot(dir: &std::path::Path) -> Vec<(String, String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let content = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.push(e.path());
            }
            let kind = format!("{:?}", meta.file_type());
            out.push((rel, kind, meta.permissions().mode(), content));
        }
    }
    out.sort();
    out
}

/// Unmounts a bind mount when dropped, whatever the test did.
struct BindMount(std::path::PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = run_tool("umount", &[self.0.to_str().unwrap()]);
    }
}

/// Regression: `kiln copy` opened a source layout as a kiln store, which
/// creates `ingest/` and `locks/` in it. A layout kiln only reads must come
/// out byte for byte as it went in, and a read-only mount of it must do.
#[test]
fn copy_writes_nothing_into_a_layout_it_reads() {
    let k = Kiln::new();
    k.import_busybox("bb", &[("etc/motd", b"hello from kiln\n")], &[]);
    // A layout another tool wrote.
    let layout = k.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:docker.io/library/bb:latest", k.root.display()),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let before = tree_snapshot(&layout);
    // Read through a read-only bind mount: any write attempt fails the copy.
    let ro = k.path("ro");
    std::fs::create_dir(&ro).unwrap();
    tool(
        "mount",
        &["--bind", layout.to_str().unwrap(), ro.to_str().unwrap()],
    );
    let _mount = BindMount(ro.clone());
    tool("mount", &["-o", "remount,bind,ro", ro.to_str().unwrap()]);

    let target = Kiln::new();
    target.ok(&["copy", &format!("oci:{}:v1", ro.display()), "kiln:bb2"]);
    assert_eq!(target.inspect("bb2")["Id"], k.inspect("bb")["Id"]);
    target.ok(&["system", "check"]);
    let archive = k.path("bb.tar");
    k.ok(&[
        "copy",
        &format!("oci:{}:v1", ro.display()),
        &format!("oci-archive:{}:bb:1", archive.display()),
    ]);
    // Also straight from the layout itself, not only through the mount.
    target.ok(&["copy", &format!("oci:{}:v1", layout.display()), "kiln:bb3"]);
    assert_eq!(tree_snapshot(&layout), before);

    // A layout kiln writes gets the layout's files only (no ingest/ or
    // locks/ of a kiln store), and skopeo reads it.
    let out = k.path("out-layout");
    target.ok(&["copy", "kiln:bb3", &format!("oci:{}:v2", out.display())]);
    target.ok(&["copy", "kiln:bb2", &format!("oci:{}:v3", out.display())]);
    let mut top: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["blobs", "index.json", "oci-layout"]);
    let hidden = tree_snapshot(&out)
        .into_iter()
        .filter(|(p, ..)| p.contains("/."))
        .count();
    assert_eq!(hidden, 0, "no ingest file left behind");
    let inspected: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--config", &format!("oci:{}:v3", out.display())],
    ))
    .unwrap();
    assert_eq!(
        inspected["rootfs"]["diff_ids"],
        target.inspect("bb2")["RootFS"]["Layers"]
    );
}

/// The config part of an image docker holds, as `docker inspect` shows it.
fn docker_config(image: &str) -> Value {
    serde_json::from_str(&tool(
        "docker",
        &["inspect", "-f", "{{json .Config}}", image],
    ))
    .unwrap()
}

/// The `config` object of the image config kiln stored for `image`.
fn kiln_config(k: &Kiln, image: &str) -> Value {
    let id = k.ok(&["inspect", "-f", "{{.Id}}", image]);
    let hex = id.trim().trim_start_matches("sha256:").to_string();
    let blob = std::fs::read(k.root.join("blobs/sha256").join(hex)).unwrap();
    let config: Value = serde_json::from_slice(&blob).unwrap();
    config["config"].clone()
}

/// Regressions of the one config editor: `kiln import --change` gives the
/// config `docker import --change` gives, change list by change list
/// (HEALTHCHECK was refused; a relative WORKDIR was not cleaned), and
/// refuses what docker refuses.
#[test]
fn import_changes_edit_the_config_as_docker_does() {
    let k = Kiln::new();
    let empty = k.path("empty.tar");
    tar::Builder::new(std::fs::File::create(&empty).unwrap())
        .finish()
        .unwrap();
    let cases: &[&[&str]] = &[
        &["HEALTHCHECK --interval=1s --timeout=2s --start-period=3s --retries=4 CMD [\"x\",\"y\"]"],
        &["HEALTHCHECK CMD true"],
        &["HEALTHCHECK NONE"],
        &["WORKDIR rel/./dir/"],
        &["WORKDIR /srv/../x/"],
        &["WORKDIR /srv", "WORKDIR ../x/"],
        &["WORKDIR /srv/../x/", "WORKDIR y/../z/"],
        &["WORKDIR $HOME/x"],
        &["CMD [\"a\"]", "ENTRYPOINT [\"e\"]"],
        &["ENTRYPOINT [\"e\"]", "CMD [\"a\"]", "ENTRYPOINT [\"f\"]"],
        &[
            "ENV A=1 B=$A",
            "LABEL x=$B y=2",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER 1:2",
            "onbuild run echo $A",
        ],
        &["ENV PATH=/x", "ENV PATH=$PATH:/y C=\"a b\"", "CMD echo $C", "ENTRYPOINT [\"$C\"]"],
        &["LABEL a=b", "LABEL a=c", "ENV X=1", "ENV X=2"],
    ];
    for (i, changes) in cases.iter().enumerate() {
        let docker = DockerImage::new("import-change");
        let kiln_name = format!("change-{i}");
        let mut kiln_args = vec!["import".to_string()];
        let mut docker_args = vec!["import".to_string()];
        for c in *changes {
            for args in [&mut kiln_args, &mut docker_args] {
                args.push("-c".into());
                args.push(c.to_string());
            }
        }
        kiln_args.extend([empty.display().to_string(), kiln_name.clone()]);
        docker_args.extend([empty.display().to_string(), docker.0.clone()]);
        k.ok(&kiln_args.iter().map(String::as_str).collect::<Vec<_>>());
        tool(
            "docker",
            &docker_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(
            kiln_config(&k, &kiln_name),
            docker_config(&docker.0),
            "changes {changes:?}"
        );
    }
    for refused in [
        "SHELL [\"/bin/bash\", \"-c\"]",
        "MAINTAINER me",
        "ARG x=1",
        "VOLUME \"\"",
    ] {
        let docker = run_tool(
            "docker",
            &[
                "import",
                "-c",
                refused,
                empty.to_str().unwrap(),
                "kiln-refused",
            ],
        );
        assert!(!docker.status.success(), "docker accepted {refused}");
        let out = k.run(&["import", "-c", refused, empty.to_str().unwrap(), "refused"]);
        assert!(!out.status.success(), "kiln accepted {refused}");
    }
}
