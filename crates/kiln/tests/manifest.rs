//! Multi-platform lists: `kiln manifest create|annotate|inspect|push|rm`
//! against docker's own `manifest inspect` (the docker CLI speaks to the
//! registry itself; no daemon involved), and `kiln imagetools
//! inspect|create` against the distribution registry and skopeo. All
//! traffic stays on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::{Auth, Registry};
use common::{run_tool, tool, Kiln};

/// The docker CLI with the `manifest` verbs: Debian's 20.10 client and the
/// newer one both have them; the newer one is preferred where installed.
fn docker_cli() -> &'static str {
    if std::path::Path::new("/usr/local/bin/docker").exists() {
        "/usr/local/bin/docker"
    } else {
        "docker"
    }
}

/// Two images of different platforms in one store (the second one says
/// arm64: its binary is never run here).
fn two_platforms() -> Kiln {
    let k = Kiln::new();
    k.import_busybox(
        "img:amd64",
        &[("etc/which", b"amd64\n")],
        &["--platform", "linux/amd64"],
    );
    k.import_busybox(
        "img:arm64",
        &[("etc/which", b"arm64\n")],
        &["--platform", "linux/arm64"],
    );
    k
}

fn raw_index(reference: &str) -> serde_json::Value {
    let raw = common::skopeo_raw(reference);
    serde_json::from_str(&raw).unwrap()
}

fn platforms(index: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s = format!("{s}/{v}");
            }
            s
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_list_made_in_the_store_is_pushed_and_inspected_as_docker_sees_it() {
    let reg = Registry::start(Auth::Anonymous);
    let k = two_platforms();
    let list = format!("{}/multi:1", reg.host());

    let out = k.ok(&["manifest", "create", &list, "img:amd64", "img:arm64"]);
    assert_eq!(out, format!("Created manifest list {list}\n"));
    let err = k.fails(&["manifest", "create", &list, "img:amd64"]);
    assert!(
        err.contains("refusing to amend an existing manifest list with no --amend flag"),
        "{err}"
    );
    k.ok(&["manifest", "create", "--amend", &list, "img:arm64"]);
    let err = k.fails(&["manifest", "create", "other:1", &list]);
    assert!(err.contains("is a manifest list"), "{err}");

    k.ok(&[
        "manifest",
        "annotate",
        "--variant",
        "v8",
        &list,
        "img:arm64",
    ]);
    let err = k.fails(&["manifest", "annotate", "--os", "plan10", &list, "img:arm64"]);
    assert!(
        err.contains("unsupported os/arch combination: plan10/arm64"),
        "{err}"
    );
    let err = k.fails(&["manifest", "annotate", &list, "busybox:none"]);
    assert!(
        err.contains("manifest for image busybox:none does not exist in"),
        "{err}"
    );

    // The local list, before any push.
    let local: serde_json::Value =
        serde_json::from_str(&k.ok(&["manifest", "inspect", &list])).unwrap();
    assert_eq!(platforms(&local), ["linux/amd64", "linux/arm64/v8"]);
    // It is a multi-platform image of the store like a pulled one.
    let images = k.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains(&list), "{images}");

    let pushed = k.ok(&["manifest", "push", "--purge", &list]);
    let digest = pushed.lines().last().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    let err = k.fails(&["manifest", "rm", &list]);
    assert!(
        err.contains(&format!("No such manifest: {list}")),
        "--purge removes it: {err}"
    );

    // What the registry holds: an index of both platforms, named by the
    // digest the push printed.
    let remote = raw_index(&list);
    assert_eq!(platforms(&remote), ["linux/amd64", "linux/arm64/v8"]);
    let raw = common::skopeo_raw(&list);
    assert_eq!(common::sha256_digest(raw.as_bytes()), digest);

    // docker's `manifest inspect` and kiln's print the same bytes: the
    // list (rebuilt as docker rebuilds it), `-v`, one child, its `-v`.
    let child = format!(
        "{}/multi@{}",
        reg.host(),
        remote["manifests"][1]["digest"].as_str().unwrap()
    );
    for args in [
        vec![list.as_str()],
        vec!["-v", list.as_str()],
        vec![child.as_str()],
        vec!["-v", child.as_str()],
    ] {
        let mut d = vec!["manifest", "inspect", "--insecure"];
        d.extend(&args);
        let theirs = tool(docker_cli(), &d);
        let mut ours = vec!["manifest", "inspect"];
        ours.extend(&args);
        assert_eq!(k.ok(&ours), theirs, "kiln manifest inspect {args:?}");
    }

    // buildx's summary of the same index.
    let summary = k.ok(&["imagetools", "inspect", &list]);
    let want_head = format!(
        "Name:      {list}\nMediaType: application/vnd.oci.image.index.v1+json\nDigest:    {digest}\n           \nManifests: \n  Name:      {list}@{}\n  MediaType: application/vnd.oci.image.manifest.v1+json\n  Platform:  linux/amd64\n             \n",
        remote["manifests"][0]["digest"].as_str().unwrap()
    );
    assert!(summary.starts_with(&want_head), "{summary}");
    assert!(
        summary.ends_with("  Platform:  linux/arm64/v8\n"),
        "{summary}"
    );
    let raw_out = k.ok(&["imagetools", "inspect", "--raw", &list]);
    assert_eq!(raw_out, raw);
    let name = k.ok(&["imagetools", "inspect", "--format", "{{.Name}}", &list]);
    assert_eq!(name, format!("{list}\n"));

    // buildx's template input: Go field names, `json` as MarshalIndent in
    // the Go types' field order, the index with its digest and size.
    let fields = k.ok(&[
        "imagetools",
        "inspect",
        "--format",
        r#"{{.Manifest.Digest}} {{range .Manifest.Manifests}}{{.Platform.Architecture}} {{end}}{{(index .Image "linux/arm64/v8").Architecture}}"#,
        &list,
    ]);
    assert_eq!(fields, format!("{digest} amd64 arm64 arm64\n"));
    let child_entry = |m: &serde_json::Value| {
        let p = &m["platform"];
        let variant = p["variant"]
            .as_str()
            .map(|v| format!(",\n        \"variant\": \"{v}\""))
            .unwrap_or_default();
        format!(
            "    {{\n      \"mediaType\": \"{}\",\n      \"digest\": \"{}\",\n      \"size\": {},\n      \"platform\": {{\n        \"architecture\": \"{}\",\n        \"os\": \"{}\"{variant}\n      }}\n    }}",
            m["mediaType"].as_str().unwrap(),
            m["digest"].as_str().unwrap(),
            m["size"],
            p["architecture"].as_str().unwrap(),
            p["os"].as_str().unwrap(),
        )
    };
    let children: Vec<String> = remote["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(child_entry)
        .collect();
    let want = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n  \"digest\": \"{digest}\",\n  \"size\": {},\n  \"manifests\": [\n{}\n  ]\n}}\n",
        raw.len(),
        children.join(",\n")
    );
    let json = k.ok(&[
        "imagetools",
        "inspect",
        "--format",
        "{{json .Manifest}}",
        &list,
    ]);
    assert_eq!(json, want);
}

#[test]
fn imagetools_create_joins_images_of_two_repositories_into_one_index() {
    let reg = Registry::start(Auth::Anonymous);
    let k = two_platforms();
    let a = format!("{}/src-a:1", reg.host());
    let b = format!("{}/src-b:1", reg.host());
    let joined = format!("{}/joined:1", reg.host());
    for (local, remote) in [("img:amd64", &a), ("img:arm64", &b)] {
        k.ok(&["tag", local, remote]);
        k.ok(&["push", remote]);
    }

    let dry: serde_json::Value =
        serde_json::from_str(&k.ok(&["imagetools", "create", "--dry-run", &a, &b])).unwrap();
    assert_eq!(platforms(&dry), ["linux/amd64", "linux/arm64"]);
    let err = k.fails(&["imagetools", "create", &a, &b]);
    assert!(err.contains("please set --tag or --dry-run"), "{err}");

    k.ok(&["imagetools", "create", "-t", &joined, &a, &b]);
    let remote = raw_index(&joined);
    assert_eq!(platforms(&remote), ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        remote["manifests"], dry["manifests"],
        "what --dry-run showed is what was pushed"
    );

    // Every blob of both images is reachable through the new repository:
    // a fresh store pulls the arm64 image from it alone, and skopeo copies
    // the whole index out of it.
    let fresh = Kiln::new();
    fresh.ok(&["pull", "--platform", "linux/arm64", &joined]);
    let arch = fresh.ok(&["inspect", "--format", "{{.Architecture}}", &joined]);
    assert_eq!(arch, "arm64\n");
    let dir = fresh.dir.path().join("copy");
    let out = run_tool(
        "skopeo",
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{joined}"),
            &format!("oci:{}", dir.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --append adds to the index the tag names; the same image twice is
    // listed once.
    k.ok(&["imagetools", "create", "--append", "-t", &joined, &a]);
    assert_eq!(
        platforms(&raw_index(&joined)),
        ["linux/amd64", "linux/arm64"]
    );
}

#[test]
fn a_foreign_image_runs_through_qemu_and_a_list_runs_the_platform_asked_for() {
    let k = Kiln::new();
    k.import_busybox("bb:amd64", &[], &["--platform", "linux/amd64"]);
    k.import_arm64_busybox("bb:arm64");
    k.ok(&["manifest", "create", "bb:multi", "bb:amd64", "bb:arm64"]);

    // The list: the host's image by default, arm64 when asked.
    assert_eq!(
        k.ok(&["run", "--rm", "bb:multi", "busybox", "uname", "-m"]),
        "x86_64\n"
    );
    let arm = k.run(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "bb:multi",
        "uname",
        "-m",
    ]);
    assert!(
        arm.status.success(),
        "{}",
        String::from_utf8_lossy(&arm.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&arm.stdout), "aarch64\n");
    assert!(
        !String::from_utf8_lossy(&arm.stderr).contains("WARNING"),
        "a platform asked for is not warned about"
    );

    // An arm64 image run without --platform: docker's warning, then QEMU.
    let out = k.run(&["run", "--rm", "bb:arm64", "busybox", "uname", "-m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "aarch64\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARNING: The requested image's platform (linux/arm64) does not match the detected host platform (linux/amd64) and no specific platform was requested"),
        "{stderr}"
    );

    // A platform nothing can run fails before any container exists.
    k.import_busybox("bb:vax", &[], &["--platform", "linux/vax"]);
    let out = k.run(&["run", "--rm", "bb:vax", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kiln knows no QEMU emulator"), "{stderr}");
    assert_eq!(k.ok(&["ps", "-a", "-q"]), "");
}
