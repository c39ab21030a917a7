//! End-to-end: managing local images with the kiln binary, docker-style.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::{busybox_tar, Kiln};

fn import(k: &Kiln, name: &str, extra: &[(&str, &[u8])]) -> String {
    k.import_busybox(name, extra, &[]);
    k.inspect(name)["Id"].as_str().unwrap().to_string()
}

#[test]
fn import_plain_gzip_and_zstd_give_one_diff_id() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    let t = tar.to_str().unwrap();
    let gz = k.path("base.tar.gz");
    let zst = k.path("base.tar.zst");
    assert!(Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {t} > {} && zstd -q -c {t} > {}",
            gz.display(),
            zst.display()
        ))
        .status()
        .unwrap()
        .success());
    let id = k.ok(&["import", t, "plain"]);
    assert!(
        id.trim().starts_with("sha256:") && id.trim().len() == 71,
        "{id}"
    );
    k.ok(&["import", gz.to_str().unwrap(), "gz"]);
    k.ok(&["import", zst.to_str().unwrap(), "zst"]);
    // Standard input works too.
    k.ok_with_stdin(&["import", "-", "stdin:1"], &tar);

    let layers = |name: &str| k.inspect(name)["RootFS"]["Layers"].clone();
    let expected = format!("sha256:{}", sha256_file(&tar));
    for name in ["plain", "gz", "zst", "stdin:1"] {
        assert_eq!(layers(name), serde_json::json!([expected]), "{name}");
    }
    // One layer blob shared by all: same compression, same bytes.
    let df = k.ok(&["system", "df", "--format", "json"]);
    let df: serde_json::Value = serde_json::from_str(&df).unwrap();
    assert!(df["SharedBytes"].as_u64().unwrap() > 1_000_000, "{df}");
}

fn sha256_file(p: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn import_applies_changes_and_message() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    k.ok(&[
        "import",
        tar.to_str().unwrap(),
        "app:1.0",
        "--change",
        r#"CMD ["sh", "-c", "echo hi"]"#,
        "-c",
        "ENV A=1 B=two",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /srv",
        "-c",
        "LABEL team=core",
        "-c",
        "USER 1000",
        "--message",
        "first import",
        "--platform",
        "linux/arm64/v8",
    ]);
    let doc = k.inspect("app:1.0");
    assert_eq!(
        doc["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo hi"])
    );
    assert_eq!(doc["Config"]["Env"], serde_json::json!(["A=1", "B=two"]));
    assert_eq!(
        doc["Config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(doc["Config"]["WorkingDir"], "/srv");
    assert_eq!(doc["Config"]["User"], "1000");
    assert_eq!(doc["Config"]["Labels"]["team"], "core");
    assert_eq!(doc["Comment"], "first import");
    assert_eq!(doc["Architecture"], "arm64");
    assert_eq!(doc["Variant"], "v8");
    assert_eq!(doc["RepoTags"], serde_json::json!(["app:1.0"]));
    assert_eq!(doc["History"][0]["comment"], "first import");

    let err = k.fails(&[
        "import",
        tar.to_str().unwrap(),
        "x",
        "--change",
        "RUN echo no",
    ]);
    assert!(err.contains("RUN cannot be applied"), "{err}");
}

#[test]
fn images_lists_like_docker() {
    let k = Kiln::new();
    let id = import(&k, "busybox", &[]);
    k.ok(&["tag", "busybox", "localhost:5000/team/bb:v1"]);
    let out = k.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{out}");
    for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{out}");
    }
    let short = &id["sha256:".len()..][..12];
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Newest-named first: the tag given last lists first.
    assert_eq!(
        rows[0][..3],
        ["localhost:5000/team/bb", "v1", short],
        "{out}"
    );
    assert_eq!(rows[1][..3], ["busybox", "latest", short], "{out}");
    // Columns line up: every row's TAG starts where the header's does.
    let tag_col = lines[0].find("TAG").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[tag_col - 1..].starts_with(' ') && !l[tag_col..].starts_with(' ')),
        "{out}"
    );
    assert!(out.contains("MB"), "size column: {out}");

    // Filter, quiet, no-trunc, digests, json.
    let filtered = k.ok(&["images", "busybox"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert_eq!(k.ok(&["images", "-q"]).trim(), short);
    assert!(k.ok(&["images", "--no-trunc"]).contains(&id));
    assert!(k.ok(&["images", "--digests"]).contains("DIGEST"));
    let json = k.ok(&["images", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["ID"] == short));
}

#[test]
fn retag_makes_old_image_dangling_and_prune_removes_it() {
    let k = Kiln::new();
    let old = import(&k, "app", &[("v", b"1")]);
    let new = import(&k, "app", &[("v", b"2")]);
    assert_ne!(old, new);
    let out = k.ok(&["images"]);
    assert!(
        out.contains("<none>       <none>"),
        "old image is dangling: {out}"
    );
    assert!(k
        .ok(&["images", "-f", "dangling=true", "-q", "--no-trunc"])
        .contains(&old));

    let pruned = k.ok(&["image", "prune", "-f"]);
    assert!(pruned.contains(&format!("deleted: {old}")), "{pruned}");
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert!(!k.ok(&["images", "-q", "--no-trunc"]).contains(&old));
    assert!(k.ok(&["images", "-q", "--no-trunc"]).contains(&new));
    // prune without -a keeps tagged images; with -a removes them (no containers).
    k.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(k.ok(&["images", "-q"]), "");
    assert_eq!(k.snapshot().1.len(), 0, "every blob collected");
    k.ok(&["system", "check"]);
}

#[test]
fn prune_asks_before_removing() {
    let k = Kiln::new();
    import(&k, "app", &[("v", b"1")]);
    import(&k, "app", &[("v", b"2")]);
    let out = k.cmd().args(["image", "prune"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Are you sure"));
    assert_eq!(
        k.ok(&["images", "-q"]).lines().count(),
        2,
        "nothing removed without a yes"
    );
}

#[test]
fn rmi_untags_then_deletes_and_shares_layers() {
    let k = Kiln::new();
    let id = import(&k, "one", &[]);
    k.ok(&["tag", "one", "two:latest"]);
    let blobs_before = k.snapshot().1;

    // By ID with two names: refused without -f.
    let err = k.fails(&["rmi", &id[7..19]]);
    assert!(err.contains("referenced in multiple repositories"), "{err}");

    // By name: only untagged while another name remains; blobs stay.
    let out = k.ok(&["rmi", "one"]);
    assert_eq!(out.trim(), "Untagged: one:latest");
    assert_eq!(k.snapshot().1, blobs_before);

    // Last name: untagged and deleted, blobs collected.
    let out = k.ok(&["rmi", "two"]);
    assert!(out.contains("Untagged: two:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(k.snapshot().1.is_empty());

    // Unknown image: docker's message, exit 1; other arguments still handled.
    import(&k, "three", &[]);
    let out = k.run(&["rmi", "nope", "three"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nope"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Untagged: three:latest"));
}

#[test]
fn rmi_force_by_id_removes_every_name() {
    let k = Kiln::new();
    let id = import(&k, "one", &[]);
    k.ok(&["tag", &id, "two"]);
    let out = k.ok(&["rmi", "-f", &id]);
    assert!(
        out.contains("Untagged: one:latest") && out.contains("Untagged: two:latest"),
        "{out}"
    );
    assert_eq!(k.ok(&["images", "-q"]), "");
}

#[test]
fn layers_are_stored_once_across_images() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    for name in ["a", "b", "c"] {
        k.ok(&["import", tar.to_str().unwrap(), name, "-m", name]);
    }
    // Three configs and manifests, one layer.
    let (_, blobs) = k.snapshot();
    assert_eq!(blobs.len(), 7, "{blobs:?}");
    let df: serde_json::Value =
        serde_json::from_str(&k.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df["Images"], 3);
    assert!(df["SharedBytes"].as_u64().unwrap() > 500_000, "{df}");
    assert_eq!(
        df["TotalBytes"].as_u64().unwrap(),
        df["SharedBytes"].as_u64().unwrap() + df["UniqueBytes"].as_u64().unwrap()
    );
    let text = k.ok(&["system", "df", "-v"]);
    assert!(
        text.contains("SHARED SIZE") && text.contains("UNIQUE SIZE"),
        "{text}"
    );
}

#[test]
fn inspect_and_history_show_the_image() {
    let k = Kiln::new();
    let tar = k.import_busybox("hist", &[], &["-c", "CMD [\"sh\"]"]);
    let doc = k.inspect("hist");
    for key in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "History",
    ] {
        assert!(doc.get(key).is_some(), "inspect lacks {key}: {doc}");
    }
    // docker's measure: the files the layer holds, not its tar.
    let files: u64 = tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| e.size())
        .sum::<u64>();
    assert!(files > 0);
    assert!(doc["Size"].as_u64().unwrap() >= files, "{doc}");
    assert!(doc["Size"].as_u64().unwrap() < std::fs::metadata(&tar).unwrap().len());
    let id = doc["Id"].as_str().unwrap();
    // By ID, by ID prefix, by sha256: prefix, by name@manifest digest.
    let digest = doc["Descriptor"]["digest"].as_str().unwrap();
    for name in [id, &id[7..], &id[7..15], &format!("hist@{digest}")] {
        assert_eq!(k.inspect(name)["Id"], id, "{name}");
    }
    assert_eq!(k.ok(&["inspect", "-f", "{{.Id}}", "hist"]).trim(), id);

    let out = k.ok(&["history", "hist"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE")
            && lines[0].contains("CREATED BY")
            && lines[0].contains("COMMENT"),
        "{out}"
    );
    assert!(lines[1].starts_with(&id[7..19]), "{out}");
    assert!(lines[1].contains("Imported from"), "{out}");
    assert!(lines[1].contains("MB"), "{out}");
    let json = k.ok(&["history", "--format", "json", "--no-trunc", "hist"]);
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["ID"], id);

    // docker's words: `inspect` looks for any object, `--type image` for
    // an image.
    let err = k.fails(&["inspect", "missing"]);
    assert!(err.contains("No such object: missing"), "{err}");
    let err = k.fails(&["inspect", "--type", "image", "missing"]);
    assert!(err.contains("No such image: missing"), "{err}");
    let err = k.fails(&["history", "missing:1"]);
    assert!(err.contains("No such image: missing:1"), "{err}");
}

#[test]
fn bad_references_name_the_problem() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    let t = tar.to_str().unwrap();
    for (name, why) in [
        ("Upper", "must be lowercase"),
        ("app:bad tag", "tag"),
        ("app@sha256:123", "sha256 needs 64"),
    ] {
        let err = k.fails(&["import", t, name]);
        assert!(err.contains(why), "{name}: {err}");
    }
    let long_tag = format!("app:{}", "t".repeat(129));
    assert!(k.fails(&["import", t, &long_tag]).contains("tag"));
    k.ok(&["import", t, "ok"]);
    assert!(k.fails(&["tag", "ok", "Bad"]).contains("must be lowercase"));
    assert!(k
        .fails(&["tag", "nope", "x"])
        .contains("No such image: nope"));
}

#[test]
fn import_rejects_bad_input_and_leaves_store_alone() {
    let k = Kiln::new();
    import(&k, "keep", &[]);
    let before = k.snapshot();
    let garbage = k.path("garbage.tar");
    std::fs::write(&garbage, vec![0x42u8; 5000]).unwrap();
    let err = k.fails(&["import", garbage.to_str().unwrap(), "bad"]);
    assert!(err.contains("not a valid tar archive"), "{err}");

    let empty = k.path("empty.tar");
    std::fs::write(&empty, b"").unwrap();
    assert!(k
        .fails(&["import", empty.to_str().unwrap(), "bad"])
        .contains("empty"));

    let bz = k.path("x.tar.bz2");
    std::fs::write(&bz, b"BZh91AY&SYxxxxxxxx").unwrap();
    assert!(k
        .fails(&["import", bz.to_str().unwrap(), "bad"])
        .contains("bzip2"));

    assert!(k
        .fails(&["import", "/nonexistent.tar", "bad"])
        .contains("/nonexistent.tar"));
    assert_eq!(k.snapshot(), before, "failed imports changed the store");
    k.ok(&["system", "check"]);
}

#[test]
fn two_processes_on_one_root() {
    let k = Kiln::new();
    let tars: Vec<_> = (0..6)
        .map(|i| {
            busybox_tar(
                k.dir.path(),
                &format!("t{i}"),
                &[("n", i.to_string().as_bytes())],
            )
        })
        .collect();
    let children: Vec<_> = tars
        .iter()
        .enumerate()
        .map(|(i, t)| {
            k.cmd()
                .args(["import", t.to_str().unwrap(), &format!("img{i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let out = k.ok(&["images"]);
    for i in 0..6 {
        assert!(
            out.contains(&format!("img{i} ")),
            "lost update for img{i}: {out}"
        );
    }
    k.ok(&["system", "check"]);
}

#[test]
fn layer_apply_of_a_store_blob_takes_its_digest_as_the_diff_id() {
    // An uncompressed layer in the store was verified when it came in, so
    // `layer apply sha256:…` reports its digest as the diff_id unhashed,
    // and lays the same tree as applying the file.
    let k = Kiln::new();
    k.import_busybox("base", &[("etc/motd", b"hello\n")], &[]);
    let layers = k.inspect("base")["RootFS"]["Layers"].clone();
    let diff_id = layers[0].as_str().unwrap().to_string();
    let from_store = k.path("from-store");
    let out = k.ok(&["layer", "apply", &diff_id, from_store.to_str().unwrap()]);
    assert!(out.contains(&format!("diff_id {diff_id}")), "{out}");
    assert_eq!(
        std::fs::read(from_store.join("etc/motd")).unwrap(),
        b"hello\n"
    );
    // The same blob as a file: hashed, with the same answer.
    let blob = k
        .dir
        .path()
        .join("root/blobs/sha256")
        .join(diff_id.trim_start_matches("sha256:"));
    let from_file = k.path("from-file");
    let out = k.ok(&[
        "layer",
        "apply",
        blob.to_str().unwrap(),
        from_file.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("diff_id {diff_id}")), "{out}");
    // A digest the store lacks is an error that says so.
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = k.fails(&["layer", "apply", &missing, from_file.to_str().unwrap()]);
    assert!(err.contains("no such blob in the store"), "{err}");
}
