//! End-to-end: docker's output conventions across commands — Go templates
//! in `--format`, `table` headers, images wildcards and filters, history
//! and inspect flags, `kiln version`, the `image` aliases, exit 125 for
//! usage errors, and listing by the time an image was named.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::{busybox_tar, Kiln};

/// Imports the busybox rootfs as `name`, created at `epoch` (seconds), with
/// `kiln import -c` changes; returns the image ID.
fn import_at(k: &Kiln, name: &str, epoch: u64, changes: &[&str]) -> String {
    let tar = k.path("base.tar");
    if !tar.exists() {
        busybox_tar(k.dir.path(), "base", &[]);
    }
    let mut args = vec![
        "import".to_string(),
        tar.display().to_string(),
        name.to_string(),
    ];
    for c in changes {
        args.push("-c".into());
        args.push(c.to_string());
    }
    let epoch = epoch.to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    k.ok_with_env(&args, &[("SOURCE_DATE_EPOCH", &epoch)])
        .trim()
        .to_string()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn images_templates_tables_and_json() {
    let k = Kiln::new();
    let id = import_at(&k, "app:1.0", 1_700_000_000, &["ENV A=1"]);
    let short = &id[7..19];
    let out = k.ok(&[
        "images",
        "--format",
        "{{.ID}}|{{.Repository}}|{{.Tag}}|{{.CreatedAt}}|{{.Containers}}|{{.SharedSize}}|{{.UniqueSize}}",
    ]);
    assert_eq!(
        out,
        format!("{short}|app|1.0|2023-11-14 22:13:20 +0000 UTC|N/A|N/A|N/A\n")
    );
    // Size is 3 significant digits, VirtualSize 4, as docker's.
    let bytes = k.inspect("app:1.0")["Size"].as_u64().unwrap() as f64 / 1e6;
    let sizes = k.ok(&["images", "--format", "{{.Size}} {{.VirtualSize}}"]);
    let (size, vsize) = sizes.trim().split_once(' ').unwrap();
    let mb = |s: &str| s.strip_suffix("MB").unwrap().parse::<f64>().unwrap();
    assert!(
        (mb(size) - bytes).abs() <= 0.005 && (mb(vsize) - bytes).abs() <= 0.0005,
        "{sizes} {bytes}"
    );

    // `table` prints docker's header names, columns aligned as its tabwriter.
    let out = k.ok(&[
        "images",
        "--format",
        "table {{.ID}}\t{{.Repository}}\t{{.CreatedSince}}",
    ]);
    let l = lines(&out);
    assert_eq!(l[0], "IMAGE ID       REPOSITORY   CREATED");
    assert!(
        l[1].starts_with(&format!("{short}   app          ")),
        "{out}"
    );
    // A literal \t typed on a command line is a tab too (docker's preFormat).
    let out = k.ok(&["images", "--format", r"table {{.Tag}}\t{{.VirtualSize}}"]);
    assert!(out.starts_with("TAG       SIZE\n1.0       "), "{out}");
    // The default table is docker's: minimum column width 10.
    let out = k.ok(&["images"]);
    assert!(
        out.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{out}"
    );

    // {{json .}}: every field docker has, keys sorted.
    let out = k.ok(&["images", "--format", "{{json .}}"]);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize"
        ]
    );
    // --format json stays kiln's machine output.
    let out = k.ok(&["images", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["ID"], short);
    assert_eq!(doc["CreatedAt"], "2023-11-14T22:13:20Z");

    // Missing fields and bad templates: docker's messages, exit 1.
    let err = k.fails(&["images", "--format", "{{.Nope}}"]);
    assert!(
        err.contains(r#"template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope"#),
        "{err}"
    );
    let err = k.fails(&["images", "--format", "{{.ID"]);
    assert!(err.contains("template: :1: unclosed action"), "{err}");
    let err = k.fails(&["images", "--format", "{{nosuchfunc .ID}}"]);
    assert!(err.contains("function \"nosuchfunc\" not defined"), "{err}");
}

#[test]
fn history_templates_quiet_and_raw_sizes() {
    let k = Kiln::new();
    let id = import_at(&k, "hist", 1_700_000_000, &[]);
    assert_eq!(
        k.ok(&["history", "-q", "hist"]),
        format!("{}\n", &id[7..19])
    );
    assert_eq!(
        k.ok(&["history", "-q", "--no-trunc", "hist"]),
        format!("{id}\n")
    );

    // -H=false: raw bytes and RFC 3339 dates, docker's CREATED AT column.
    let out = k.ok(&["history", "-H=false", "hist"]);
    let l = lines(&out);
    assert!(
        l[0].starts_with("IMAGE          CREATED AT             CREATED BY"),
        "{out}"
    );
    let row: Vec<&str> = l[1].split_whitespace().collect();
    assert_eq!(row[1], "2023-11-14T22:13:20Z", "{out}");
    assert!(row[2].parse::<u64>().unwrap() > 1_000_000, "{out}");
    // --human=true (and bare -H) is the default.
    assert_eq!(k.ok(&["history", "-H", "hist"]), k.ok(&["history", "hist"]));

    let out = k.ok(&[
        "history",
        "--format",
        "table {{.ID}}\t{{.CreatedAt}}\t{{.Comment}}",
        "hist",
    ]);
    let l = lines(&out);
    assert_eq!(l[0], "IMAGE          CREATED AT             COMMENT");
    assert!(
        l[1].contains("2023-11-14T22:13:20Z   Imported from"),
        "{out}"
    );
    assert_eq!(
        k.ok(&[
            "history",
            "--format",
            "{{.ID}}: {{upper .Comment | printf \"%s!\"}}",
            "hist"
        ]),
        // A local tarball is recorded as docker does, without its path.
        format!("{}: IMPORTED FROM -!\n", &id[7..19])
    );
    let err = k.fails(&["history", "--format", "{{.Nope}}", "hist"]);
    assert!(err.contains("can't evaluate field Nope"), "{err}");
}

#[test]
fn inspect_templates_print_like_go() {
    let k = Kiln::new();
    let id = import_at(
        &k,
        "app:1.0",
        1_700_000_000,
        &[
            "ENV A=1 B=2",
            "LABEL team=core tier=web",
            r#"CMD ["sh", "-c", "a && b"]"#,
        ],
    );
    k.ok(&["tag", "app:1.0", "app:latest"]);
    let t = |f: &str| {
        k.ok(&["inspect", "-f", f, "app:1.0"])
            .trim_end_matches('\n')
            .to_string()
    };
    assert_eq!(t("{{.Config.Env}}"), "[A=1 B=2]");
    assert_eq!(t("{{.Config.Labels}}"), "map[team:core tier:web]");
    assert_eq!(t("{{json .Config.Cmd}}"), r#"["sh","-c","a && b"]"#);
    assert_eq!(
        t("{{json .Config.Labels}}"),
        r#"{"team":"core","tier":"web"}"#
    );
    assert_eq!(t("{{index .RepoTags 0}} {{len .RepoTags}}"), "app:1.0 2");
    assert_eq!(t("{{.RepoTags}}"), "[app:1.0 app:latest]");
    assert_eq!(t("{{.Id}}"), id);
    assert_eq!(t("{{.ID}}"), id);
    assert_eq!(t("{{index .Config.Labels \"team\"}}"), "core");
    // Labels is a Go map in docker: a missing key is <no value>, while a
    // missing struct field is an error (below).
    assert_eq!(t("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(t("{{range .Config.Env}}{{println .}}{{end}}"), "A=1\nB=2");
    assert_eq!(
        t("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
        "team=core;tier=web;"
    );
    assert_eq!(
        t("{{if .Config.Entrypoint}}ep{{else}}no entrypoint{{end}}"),
        "no entrypoint"
    );
    assert_eq!(t("{{join .Config.Env \",\"}}"), "A=1,B=2");
    // docker's Config has every container.Config field.
    assert_eq!(t("[{{.Config.Hostname}}] {{.Config.Tty}}"), "[] false");

    let err = k.fails(&["inspect", "-f", "{{.Nope}}", "app:1.0"]);
    assert!(
        err.contains(r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#),
        "{err}"
    );
    let err = k.fails(&["inspect", "-f", "{{.Config.Env.X}}", "app:1.0"]);
    assert!(err.contains("at <.Config.Env.X>"), "{err}");

    // --type: images are found; containers do not exist yet.
    assert_eq!(
        k.ok(&["inspect", "--type", "image", "-f", "{{.Id}}", "app:1.0"])
            .trim(),
        id
    );
    let err = k.fails(&["inspect", "--type", "container", "app:1.0"]);
    assert!(err.contains("No such container: app:1.0"), "{err}");
    k.usage_fails(&["inspect", "--type", "volume", "app:1.0"]);
    // -s: Size and VirtualSize, as docker's image inspect always shows.
    let out = k.ok(&["inspect", "-s", "app:1.0"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc[0]["Size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(doc[0]["VirtualSize"], doc[0]["Size"]);
}

/// The same template prints the same in kiln and in docker 20.10 for the
/// same image (`kiln save | docker load`).
#[test]
fn inspect_and_images_templates_match_docker() {
    let k = Kiln::new();
    let name = format!("kiln-cli-format-{}:v1", std::process::id());
    import_at(&k, "base", 1_700_000_000, &[]);
    let ctx = k.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nENV A=1 B=2\nLABEL team=core\nCMD [\"sh\", \"-c\", \"a && b\"]\n\
         WORKDIR /srv\nHEALTHCHECK --interval=30s --timeout=1500ms CMD true\n",
    )
    .unwrap();
    k.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    let archive = k.path("img.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    common::tool(
        "/usr/bin/docker",
        &["load", "-i", archive.to_str().unwrap()],
    );
    let inspect_templates = [
        "{{.Config.Env}}",
        "{{json .Config.Cmd}}",
        "{{.Config.Labels}}",
        "{{json .Config.Labels}}",
        "{{.Config.WorkingDir}}",
        "{{index .RepoTags 0}}",
        "{{.Id}}",
        "{{.Os}}/{{.Architecture}}",
        "{{len .RootFS.Layers}} {{.RootFS.Type}}",
        "{{range .Config.Env}}{{println .}}{{end}}",
        "{{.Config.Labels.nope}}",
        "{{.Config.User}}|{{.Config.Tty}}",
        "{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}}",
        "{{json .Config.Healthcheck.Test}}",
        "[{{.Variant}}] [{{.OsVersion}}] [{{.Container}}]",
        // docker's typed structs: field order, omitempty, nil slices.
        "{{json .Config}}",
        "{{json .ContainerConfig}}",
        "{{.Config.Entrypoint}} {{json .Config.Entrypoint}}",
        "{{.ContainerConfig.Cmd}}",
        "{{.RootFS}}",
        "{{json .RootFS}}",
        "{{.Config.Healthcheck}}",
        "{{json .Config.Healthcheck}}",
        "[{{index .Config.Labels \"nokey\"}}]",
        "{{.Comment}}",
        "{{.Size}} {{.VirtualSize}}",
    ];
    let history_templates = [
        "{{.CreatedBy}}|{{.Comment}}|{{.CreatedAt}}|{{.CreatedSince}}",
        "{{.Size}}",
    ];
    let images_templates = [
        "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedAt}} {{.CreatedSince}} {{.Size}}",
        "{{.Containers}} {{.SharedSize}} {{.UniqueSize}}",
    ];
    let mut diffs = Vec::new();
    for t in inspect_templates {
        let ours = k.ok(&["inspect", "-f", t, &name]);
        let theirs = common::tool("/usr/bin/docker", &["image", "inspect", "-f", t, &name]);
        if ours != theirs {
            diffs.push(format!("inspect {t}: kiln {ours:?} docker {theirs:?}"));
        }
    }
    for t in images_templates {
        let ours = k.ok(&["images", "--format", t, &name]);
        let theirs = common::tool("/usr/bin/docker", &["images", "--format", t, &name]);
        if ours != theirs {
            diffs.push(format!("images {t}: kiln {ours:?} docker {theirs:?}"));
        }
    }
    for t in history_templates {
        let ours = k.ok(&["history", "--no-trunc", "--format", t, &name]);
        let theirs = common::tool(
            "/usr/bin/docker",
            &["history", "--no-trunc", "--format", t, &name],
        );
        if ours != theirs {
            diffs.push(format!("history {t}: kiln {ours:?} docker {theirs:?}"));
        }
    }
    let _ = Command::new("/usr/bin/docker")
        .args(["rmi", &name])
        .output();
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn images_wildcards_and_filters() {
    let k = Kiln::new();
    import_at(&k, "team/x:1", 1_000, &["LABEL team=core tier=web"]);
    import_at(&k, "team/y:2", 2_000, &["LABEL team=core"]);
    import_at(&k, "solo:1", 3_000, &["LABEL team=other"]);
    import_at(&k, "team/deep/z:1", 4_000, &[]);
    let names = |args: &[&str]| {
        let mut all = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = k.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    // path.Match: `*` does not cross `/`.
    assert_eq!(names(&["team/*"]), ["team/x:1", "team/y:2"]);
    assert_eq!(names(&["team/x:*"]), ["team/x:1"]);
    assert_eq!(names(&["team/?:[12]"]), ["team/x:1", "team/y:2"]);
    assert_eq!(names(&["*"]), ["solo:1"]);
    // Plain names still work as before, normalized or familiar.
    assert_eq!(names(&["docker.io/library/solo"]), ["solo:1"]);
    // Same key ORed (the positional argument is one more reference)...
    assert_eq!(
        names(&["--filter", "reference=team/x", "--filter", "reference=solo"]),
        ["solo:1", "team/x:1"]
    );
    assert_eq!(
        names(&["solo", "--filter", "reference=team/y"]),
        ["solo:1", "team/y:2"]
    );
    // ...different keys ANDed; labels ANDed as docker's MatchKVList.
    assert_eq!(
        names(&["--filter", "label=team=core"]),
        ["team/x:1", "team/y:2"]
    );
    assert_eq!(names(&["--filter", "label=tier"]), ["team/x:1"]);
    assert_eq!(
        names(&["--filter", "label=team=core", "--filter", "label=tier=web"]),
        ["team/x:1"]
    );
    assert_eq!(
        names(&["--filter", "label=team", "--filter", "reference=team/*"]),
        ["team/x:1", "team/y:2"]
    );
    // before/since compare created times with the named image's.
    assert_eq!(
        names(&["--filter", "before=solo:1"]),
        ["team/x:1", "team/y:2"]
    );
    assert_eq!(
        names(&["--filter", "since=team/y:2"]),
        ["solo:1", "team/deep/z:1"]
    );
    assert_eq!(
        names(&["--filter", "since=team/x:1", "--filter", "before=solo:1"]),
        ["team/y:2"]
    );
    // dangling: retagging leaves the old image untagged.
    import_at(&k, "solo:1", 5_000, &[]);
    assert_eq!(names(&["--filter", "dangling=true"]), ["<none>:<none>"]);
    assert_eq!(names(&["--filter", "dangling=false"]).len(), 4);

    let err = k.fails(&["images", "--filter", "foo=bar"]);
    assert!(err.contains("Invalid filter 'foo'"), "{err}");
    let err = k.fails(&["images", "--filter", "dangling=maybe"]);
    assert!(err.contains("Invalid filter 'dangling=[maybe]'"), "{err}");
    let err = k.fails(&["images", "--filter", "since=nothere:1"]);
    assert!(err.contains("No such image: nothere:1"), "{err}");
    let err = k.fails(&["images", "--filter", "reference"]);
    assert!(
        err.contains("bad format of filter (expected name=value)"),
        "{err}"
    );
}

#[test]
fn images_list_by_naming_time_and_keep_created() {
    let k = Kiln::new();
    let old = import_at(&k, "old", 1_000_000_000, &[]);
    let new = import_at(&k, "new", 1_700_000_000, &["ENV N=1"]);
    let digest = k.inspect("old")["Descriptor"]["digest"].clone();
    // Named later, listed first; CREATED stays the config's time.
    k.ok(&["tag", "old", "renamed"]);
    let out = k.ok(&[
        "images",
        "--format",
        "{{.Repository}} {{.ID}} {{.CreatedAt}}",
    ]);
    let l = lines(&out);
    assert_eq!(
        l[0],
        format!("renamed {} 2001-09-09 01:46:40 +0000 UTC", &old[7..19]),
        "{out}"
    );
    assert_eq!(
        l[1],
        format!("new {} 2023-11-14 22:13:20 +0000 UTC", &new[7..19]),
        "{out}"
    );
    assert!(l[2].starts_with("old "), "{out}");
    // The naming time lives in index.json only: same manifest, and the
    // layout still reads with skopeo and umoci.
    assert_eq!(k.inspect("renamed")["Descriptor"]["digest"], digest);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(k.root.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["annotations"]["dev.kiln.image.named"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))),
        "{index}"
    );
    // Importing the same content again at the same epoch: same image ID and
    // manifest whatever the naming time.
    let again = import_at(&k, "again", 1_000_000_000, &[]);
    assert_eq!(again, old);
    assert_eq!(k.inspect("again")["Descriptor"]["digest"], digest);
    let root = k.root.to_str().unwrap();
    let sk = common::tool(
        "skopeo",
        &[
            "inspect",
            &format!("oci:{root}:docker.io/library/renamed:latest"),
        ],
    );
    assert!(sk.contains(digest.as_str().unwrap()), "{sk}");
    let bundle = k.path("bundle");
    common::tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{root}:docker.io/library/renamed:latest"),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(bundle.join("rootfs/bin/busybox").exists());
}

#[test]
fn rmi_no_prune_leaves_blobs_for_later() {
    let k = Kiln::new();
    import_at(&k, "keep", 1_000, &[]);
    import_at(&k, "gone", 2_000, &["ENV G=1"]);
    let blobs = k.snapshot().1.len();
    let out = k.ok(&["rmi", "--no-prune", "gone"]);
    assert!(out.contains("Untagged: gone:latest"), "{out}");
    assert_eq!(k.snapshot().1.len(), blobs, "--no-prune deleted blobs");
    assert!(!k
        .ok(&["images", "--format", "{{.Repository}}"])
        .contains("gone"));
    // The next collection removes gone's manifest and config.
    k.ok(&["image", "prune", "-f"]);
    assert_eq!(k.snapshot().1.len(), blobs - 2);
}

#[test]
fn version_shows_client_store_and_runtimes() {
    let k = Kiln::new();
    let out = k.ok(&["version"]);
    assert!(out.starts_with("Client:\n Version:           "), "{out}");
    assert!(
        out.contains(&format!(" Store:             {}\n", k.root.display())),
        "{out}"
    );
    assert!(out.contains("libcontainer (builtin)"), "{out}");
    // version opens no store.
    assert!(!k.root.exists());
    assert_eq!(
        k.ok(&["version", "--format", "{{.Client.Version}}"]),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    let doc: serde_json::Value =
        serde_json::from_str(&k.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(doc["Store"]["Root"], k.root.display().to_string());
    assert_eq!(doc["Runtimes"][0]["Name"], "libcontainer");
    // runc is listed exactly when it is on PATH.
    let with_runc = k
        .cmd()
        .args(["version", "-f", "{{range .Runtimes}}{{.Name}} {{end}}"])
        .output()
        .unwrap();
    let has_runc =
        std::env::split_paths(&std::env::var_os("PATH").unwrap()).any(|d| d.join("runc").is_file());
    assert_eq!(
        String::from_utf8(with_runc.stdout)
            .unwrap()
            .contains("runc"),
        has_runc
    );
    let bare = k
        .cmd()
        .env("PATH", "/nonexistent")
        .args(["version", "-f", "{{len .Runtimes}}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(bare.stdout).unwrap(), "1\n");
}

#[test]
fn image_build_and_image_remove_are_aliases() {
    let k = Kiln::new();
    import_at(&k, "base", 1_000, &[]);
    let ctx = k.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nLABEL built=by-image-build\n",
    )
    .unwrap();
    k.ok(&["image", "build", "-t", "built:1", ctx.to_str().unwrap()]);
    assert_eq!(
        k.ok(&["inspect", "-f", "{{.Config.Labels.built}}", "built:1"])
            .trim(),
        "by-image-build"
    );
    let out = k.ok(&["image", "remove", "built:1"]);
    assert!(out.contains("Untagged: built:1"), "{out}");
    let out = k.ok(&["image", "rmi", "base"]);
    assert!(out.contains("Untagged: base:latest"), "{out}");
}

#[test]
fn usage_errors_exit_125() {
    let k = Kiln::new();
    let err = k.usage_fails(&["images", "--nope"]);
    assert!(err.contains("--nope"), "{err}");
    k.usage_fails(&["inspect"]);
    k.usage_fails(&["history", "--format"]);
    k.usage_fails(&["tag", "only-one"]);
    k.usage_fails(&["no-such-command"]);
    k.usage_fails(&["history", "-H=maybe", "x"]);
    for ok in [&["--help"][..], &["--version"], &["images", "--help"]] {
        let out = k.run(ok);
        assert_eq!(out.status.code(), Some(0), "{ok:?}");
    }
    // A command group alone prints its help, exit 0, as docker's do.
    let out = k.run(&["image"]);
    assert_eq!(out.status.code(), Some(0));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Manage images") && text.contains("remove"),
        "{text}"
    );
    // Runtime errors stay 1.
    k.fails(&["inspect", "nothere"]);

    // With KILN_ROOT set, usage lines do not claim --root was given.
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("inspect")
        .env("KILN_ROOT", &k.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Usage: kiln inspect <NAME|ID>..."), "{err}");
    assert!(!err.contains("--root"), "{err}");
    // ...and KILN_ROOT still selects the store.
    import_at(&k, "viaenv", 1_000, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["images", "-q"])
        .env("KILN_ROOT", &k.root)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}
