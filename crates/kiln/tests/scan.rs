//! `kiln scan --sbom` end to end: a syft-style CycloneDX SBOM and an SPDX
//! one against small OSV databases made here (osv-scanner's layout,
//! `<Ecosystem>/all.zip`), every report format, `--fail-on`'s exit codes,
//! and `--update-db` from a loopback server. No network beyond 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use common::http::{serve, Reply};
use common::Kiln;
use serde_json::{json, Value};

/// Writes `records` as `dir/<ecosystem>/all.zip`, one `<id>.json` each.
fn osv_zip(dir: &Path, ecosystem: &str, records: &[Value]) {
    let d = dir.join(ecosystem);
    std::fs::create_dir_all(&d).unwrap();
    let f = std::fs::File::create(d.join("all.zip")).unwrap();
    zip_records(f, records);
}

fn zip_records<W: std::io::Write + std::io::Seek>(w: W, records: &[Value]) -> W {
    let mut z = zip::ZipWriter::new(w);
    for r in records {
        let name = format!("{}.json", r["id"].as_str().unwrap());
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&serde_json::to_vec(r).unwrap()).unwrap();
    }
    z.finish().unwrap()
}

fn record(id: &str, ecosystem: &str, name: &str, events: Value) -> Value {
    json!({
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }],
    })
}

const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"; // 9.8
const MEDIUM: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"; // 5.4

/// The database every test uses.
fn database(dir: &Path) {
    let mut glibc = record(
        "DSA-5673-1",
        "Debian:12",
        "glibc",
        json!([{"introduced": "0"}, {"fixed": "2.36-9+deb12u7"}]),
    );
    glibc["aliases"] = json!(["CVE-2024-2961"]);
    glibc["severity"] = json!([{"type": "CVSS_V3", "score": CRITICAL}]);
    // Fixed below what is installed (dpkg order: deb12u2 > deb12u1~).
    let openssl_old = record(
        "DSA-5532-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u1"}]),
    );
    let mut openssl = record(
        "DSA-5600-1",
        "Debian:12",
        "openssl",
        json!([{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]),
    );
    openssl["affected"][0]["ecosystem_specific"] = json!({"severity": "low"});
    // Names the binary package: OSV's Debian records never do, so no match.
    let by_binary = record(
        "DSA-9999-1",
        "Debian:12",
        "libc6",
        json!([{"introduced": "0"}]),
    );
    let mut withdrawn = record(
        "DSA-9998-1",
        "Debian:12",
        "glibc",
        json!([{"introduced": "0"}]),
    );
    withdrawn["withdrawn"] = json!("2024-02-01T00:00:00Z");
    // Another release's record for the same package: no match on 12.
    let other_release = record(
        "DLA-1111-1",
        "Debian:11",
        "glibc",
        json!([{"introduced": "0"}]),
    );
    let bash = record(
        "DLA-3000-1",
        "Debian:12",
        "bash",
        json!([{"introduced": "0"}, {"last_affected": "5.2.15-2+b2"}]),
    );
    osv_zip(
        dir,
        "Debian",
        &[
            glibc,
            openssl_old,
            openssl,
            by_binary,
            withdrawn,
            other_release,
            bash,
        ],
    );

    let mut musl = record(
        "ALPINE-CVE-2025-26519",
        "Alpine:v3.19",
        "musl",
        json!([{"introduced": "0"}, {"fixed": "1.2.4_git20230717-r5"}]),
    );
    musl["severity"] = json!([{"type": "CVSS_V3", "score": MEDIUM}]);
    osv_zip(dir, "Alpine:v3.19", &[musl]);

    let mut requests = record(
        "GHSA-j8r2-6x86-q33q",
        "PyPI",
        "requests",
        json!([{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]),
    );
    requests["aliases"] = json!(["CVE-2023-32681", "PYSEC-2023-74"]);
    requests["database_specific"] = json!({"severity": "MODERATE"});
    let mut listed = json!({
        "id": "PYSEC-2099-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "Requests"},
                      "versions": ["2.28.0", "2.28.1"]}],
    });
    listed["database_specific"] = json!({"severity": "HIGH"});
    let fixed_pypi = record(
        "GHSA-0000-0000-0000",
        "PyPI",
        "requests",
        json!([{"introduced": "0"}, {"fixed": "2.28.0rc1"}]),
    );
    osv_zip(dir, "PyPI", &[requests, listed, fixed_pypi]);

    let mut traverse = json!({
        "id": "GHSA-67hx-6x53-jw92",
        "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2023-45133"],
        "affected": [{"package": {"ecosystem": "npm", "name": "@babel/traverse"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "7.23.2"}]},
                       {"type": "SEMVER", "events": [{"introduced": "8.0.0-alpha.0"}, {"fixed": "8.0.0-alpha.4"}]}]}],
    });
    traverse["database_specific"] = json!({"severity": "CRITICAL"});
    osv_zip(dir, "npm", &[traverse]);

    let net = record(
        "GO-2023-1571",
        "Go",
        "golang.org/x/net",
        json!([{"introduced": "0"}, {"fixed": "0.7.0"}]),
    );
    osv_zip(dir, "Go", &[net]);
}

/// A CycloneDX SBOM as syft writes one for a Debian 12 image.
fn cyclonedx() -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": "example:latest"}},
        "components": [
            {"type": "library", "name": "libc6", "version": "2.36-9+deb12u4",
             "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"},
            {"type": "library", "name": "libc-bin", "version": "2.36-9+deb12u4",
             "purl": "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"},
            {"type": "library", "name": "libssl3", "version": "3.0.11-1~deb12u2",
             "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"},
            // No distro qualifier: the operating-system component says 12.
            {"type": "library", "name": "bash", "version": "5.2.15-2+b2",
             "purl": "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64"},
            {"type": "library", "name": "requests", "version": "2.31.0",
             "purl": "pkg:pypi/requests@2.31.0"},
            {"type": "library", "name": "leftpad", "purl": "pkg:npm/leftpad"},
            {"type": "operating-system", "name": "debian", "version": "12"},
        ],
    })
}

/// An SPDX 2.3 document as syft writes one for an Alpine image with a
/// Python, a Node and a Go program.
fn spdx() -> Value {
    let pkg = |id: &str, name: &str, version: &str, purl: &str| {
        json!({
            "SPDXID": id, "name": name, "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER",
                              "referenceType": "purl", "referenceLocator": purl}],
        })
    };
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "example",
        "documentNamespace": "https://example.invalid/example",
        "packages": [
            pkg("SPDXRef-musl", "musl", "1.2.4_git20230717-r4",
                "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&upstream=musl&distro=alpine-3.19.1"),
            pkg("SPDXRef-musl-utils", "musl-utils", "1.2.4_git20230717-r5",
                "pkg:apk/alpine/musl-utils@1.2.4_git20230717-r5?arch=x86_64&upstream=musl&distro=alpine-3.19.1"),
            pkg("SPDXRef-requests", "Requests", "2.28.1", "pkg:pypi/Requests@2.28.1"),
            pkg("SPDXRef-traverse", "@babel/traverse", "7.22.0", "pkg:npm/%40babel/traverse@7.22.0"),
            pkg("SPDXRef-net", "golang.org/x/net", "v0.0.0-20220127200216-cd36cc0744dd",
                "pkg:golang/golang.org/x/net@v0.0.0-20220127200216-cd36cc0744dd"),
            pkg("SPDXRef-grpc", "google.golang.org/grpc", "v1.56.3",
                "pkg:golang/google.golang.org/grpc@v1.56.3"),
        ],
    })
}

struct Setup {
    kiln: Kiln,
    db: String,
    cdx: String,
    spdx: String,
}

fn setup() -> Setup {
    let kiln = Kiln::new();
    let db = kiln.dir.path().join("osv");
    database(&db);
    let cdx = kiln.dir.path().join("cdx.json");
    std::fs::write(&cdx, serde_json::to_vec(&cyclonedx()).unwrap()).unwrap();
    let spdx_path = kiln.dir.path().join("spdx.json");
    std::fs::write(&spdx_path, serde_json::to_vec(&spdx()).unwrap()).unwrap();
    Setup {
        db: db.display().to_string(),
        cdx: cdx.display().to_string(),
        spdx: spdx_path.display().to_string(),
        kiln,
    }
}

fn matches(json_out: &str) -> BTreeSet<(String, String, String, String)> {
    let v: Value = serde_json::from_str(json_out).unwrap();
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["package"].as_str().unwrap().to_string(),
                m["severity"]["level"].as_str().unwrap().to_string(),
                m["fixed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str, &str, &str)]) -> BTreeSet<(String, String, String, String)> {
    items
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

#[test]
fn cyclonedx_matches_by_source_package() {
    let s = setup();
    let out = s
        .kiln
        .ok(&["scan", "--sbom", &s.cdx, "--db", &s.db, "--format", "json"]);
    assert_eq!(
        matches(&out),
        set(&[
            // Both binaries of glibc; CVSS 9.8 → critical.
            ("DSA-5673-1", "libc6", "critical", "2.36-9+deb12u7"),
            ("DSA-5673-1", "libc-bin", "critical", "2.36-9+deb12u7"),
            // Severity from the package's own entry.
            ("DSA-5600-1", "libssl3", "low", "3.0.13-1~deb12u1"),
            // last_affected is inclusive; release from the OS component.
            ("DLA-3000-1", "bash", "unknown", ""),
        ]),
        "{out}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["critical"], 2);
    assert_eq!(v["packages"], 5, "leftpad has no version: not a query");
    let m = &v["matches"][0];
    assert_eq!(m["source"], "glibc");
    assert_eq!(m["aliases"], json!(["CVE-2024-2961"]));
    assert_eq!(m["severity"]["score"], 9.8);
}

#[test]
fn table_is_grouped_by_severity() {
    let s = setup();
    let out = s.kiln.ok(&["scan", "--sbom", &s.cdx, "--db", &s.db]);
    let crit = out.find("CRITICAL (2)").expect(&out);
    let low = out.find("LOW (1)").expect(&out);
    let unknown = out.find("UNKNOWN (1)").expect(&out);
    assert!(crit < low && low < unknown, "{out}");
    let row = out.lines().find(|l| l.starts_with("libc6 ")).expect(&out);
    for want in [
        "libc6 (source glibc)",
        "2.36-9+deb12u4",
        "2.36-9+deb12u7",
        "DSA-5673-1 (CVE-2024-2961)",
    ] {
        assert!(row.contains(want), "{want} missing from {row:?}");
    }
    assert!(out.contains("(no fix)"), "{out}");
    assert!(out.contains("4 vulnerabilities in 5 packages"), "{out}");
    for never in ["DSA-9999-1", "DSA-9998-1", "DLA-1111-1", "DSA-5532-1"] {
        assert!(!out.contains(never), "{never} must not match:\n{out}");
    }
}

#[test]
fn spdx_matches_every_ecosystem() {
    let s = setup();
    let out = s
        .kiln
        .ok(&["scan", "--sbom", &s.spdx, "--db", &s.db, "--format", "json"]);
    assert_eq!(
        matches(&out),
        set(&[
            (
                "ALPINE-CVE-2025-26519",
                "musl",
                "medium",
                "1.2.4_git20230717-r5"
            ),
            ("GHSA-j8r2-6x86-q33q", "Requests", "medium", "2.31.0"),
            ("PYSEC-2099-1", "Requests", "high", ""),
            (
                "GHSA-67hx-6x53-jw92",
                "@babel/traverse",
                "critical",
                "7.23.2"
            ),
            ("GO-2023-1571", "golang.org/x/net", "unknown", "0.7.0"),
        ]),
        "{out}"
    );
}

#[test]
fn fail_on_sets_the_exit_status() {
    let s = setup();
    let code = |sbom: &str, level: &str| {
        s.kiln
            .run(&["scan", "--sbom", sbom, "--db", &s.db, "--fail-on", level])
            .status
            .code()
    };
    // The CycloneDX SBOM's worst is critical.
    assert_eq!(code(&s.cdx, "critical"), Some(1));
    assert_eq!(code(&s.cdx, "low"), Some(1));
    // An SBOM whose worst is low: only --fail-on low fails.
    let low_only = s.kiln.dir.path().join("low.json");
    let mut doc = cyclonedx();
    doc["components"] = json!([{"type": "library", "name": "libssl3",
        "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12&upstream=openssl"}]);
    std::fs::write(&low_only, serde_json::to_vec(&doc).unwrap()).unwrap();
    let low_only = low_only.display().to_string();
    assert_eq!(code(&low_only, "critical"), Some(0));
    assert_eq!(code(&low_only, "high"), Some(0));
    assert_eq!(code(&low_only, "medium"), Some(0));
    assert_eq!(code(&low_only, "low"), Some(1));
    // Without --fail-on, findings do not fail the command.
    s.kiln.ok(&["scan", "--sbom", &s.cdx, "--db", &s.db]);
    let bad = s
        .kiln
        .usage_fails(&["scan", "--sbom", &s.cdx, "--fail-on", "severe"]);
    assert!(bad.contains("critical, high, medium or low"), "{bad}");
}

#[test]
fn sarif_is_well_formed() {
    let s = setup();
    let out = s.kiln.ok(&[
        "scan", "--sbom", &s.spdx, "--db", &s.db, "--format", "sarif",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "kiln");
    let rules = driver["rules"].as_array().unwrap();
    let ids: BTreeSet<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rules.len(), "rule ids are unique");
    for r in rules {
        assert!(!r["shortDescription"]["text"].as_str().unwrap().is_empty());
        let sev: f64 = r["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&sev));
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for r in results {
        assert!(ids.contains(r["ruleId"].as_str().unwrap()), "{r}");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            s.spdx.as_str()
        );
    }
    let level_of = |id: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == id)
            .map(|r| r["level"].as_str().unwrap().to_string())
    };
    assert_eq!(level_of("GHSA-67hx-6x53-jw92").as_deref(), Some("error"));
    assert_eq!(level_of("GHSA-j8r2-6x86-q33q").as_deref(), Some("warning"));
    assert_eq!(level_of("GO-2023-1571").as_deref(), Some("note"));
}

#[test]
fn bad_input_says_what_to_do() {
    let s = setup();
    let empty = s.kiln.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = s.kiln.fails(&[
        "scan",
        "--sbom",
        &s.cdx,
        "--db",
        &empty.display().to_string(),
    ]);
    assert!(
        err.contains("no OSV database") && err.contains("--update-db"),
        "{err}"
    );
    let not_sbom = s.kiln.dir.path().join("x.json");
    std::fs::write(&not_sbom, b"{\"hello\": 1}").unwrap();
    let err = s.kiln.fails(&[
        "scan",
        "--sbom",
        &not_sbom.display().to_string(),
        "--db",
        &s.db,
    ]);
    assert!(
        err.contains("neither CycloneDX") && err.contains("SPDX"),
        "{err}"
    );
    let err = s.kiln.fails(&["scan", "--db", &s.db]);
    assert!(err.contains("nothing to scan"), "{err}");
    let err = s.kiln.fails(&["scan", "busybox:latest", "--db", &s.db]);
    assert!(err.contains("No such image: busybox:latest"), "{err}");
    // An ecosystem the database lacks is named, with the fix.
    let partial = s.kiln.dir.path().join("partial");
    osv_zip(&partial, "PyPI", &[]);
    let out = s.kiln.run(&[
        "scan",
        "--sbom",
        &s.cdx,
        "--db",
        &partial.display().to_string(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no OSV data for Debian:12") && err.contains("--update-db --ecosystem Debian"),
        "{err}"
    );
}

#[test]
fn update_db_downloads_from_a_mirror() {
    let s = setup();
    // A loopback mirror of the bucket's layout: PyPI's zip, 404 elsewhere.
    let pypi = zip_records(
        std::io::Cursor::new(Vec::new()),
        &[record(
            "GHSA-j8r2-6x86-q33q",
            "PyPI",
            "requests",
            json!([{"introduced": "0"}, {"fixed": "2.31.0"}]),
        )],
    )
    .into_inner();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let port = serve(Arc::new(move |req: &common::http::Request| {
        log.lock().unwrap().push(req.path().to_string());
        match req.path() {
            "/osv/PyPI/all.zip" => Reply::new(200, pypi.clone()),
            "/osv/npm/all.zip" => Reply::new(200, b"not a zip".to_vec()),
            _ => Reply::new(404, b"no such key".to_vec()),
        }
    }));
    let mirror = format!("http://127.0.0.1:{port}/osv");
    let out = s.kiln.ok(&[
        "scan",
        "--update-db",
        "--ecosystem",
        "PyPI",
        "--mirror",
        &mirror,
    ]);
    assert!(out.contains("PyPI:"), "{out}");
    // The default database is under the root.
    let zip = s.kiln.root.join("vulndb/PyPI/all.zip");
    assert!(zip.is_file());
    let out = s.kiln.ok(&["scan", "--sbom", &s.spdx, "--format", "json"]);
    assert_eq!(
        matches(&out),
        set(&[("GHSA-j8r2-6x86-q33q", "Requests", "unknown", "2.31.0")])
    );
    // A bad download never replaces a good zip; a 404 names the ecosystem.
    let before = std::fs::read(&zip).unwrap();
    let err = s.kiln.fails(&[
        "scan",
        "--update-db",
        "--ecosystem",
        "npm",
        "--mirror",
        &mirror,
    ]);
    assert!(err.contains("not a zip"), "{err}");
    assert!(!s.kiln.root.join("vulndb/npm/all.zip").exists());
    let err = s.kiln.fails(&[
        "scan",
        "--update-db",
        "--ecosystem",
        "Nope",
        "--mirror",
        &mirror,
    ]);
    assert!(err.contains("404") && err.contains("Nope"), "{err}");
    assert_eq!(std::fs::read(&zip).unwrap(), before);
    let err = s.kiln.fails(&[
        "scan",
        "--update-db",
        "--ecosystem",
        "../x",
        "--mirror",
        &mirror,
    ]);
    assert!(err.contains("not an OSV ecosystem name"), "{err}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["/osv/PyPI/all.zip", "/osv/npm/all.zip", "/osv/Nope/all.zip"]
    );
}

/// `kiln scan IMAGE`: kiln's own catalogers (kiln sbom) feed the matcher;
/// distro packages match through the source package dpkg names.
#[test]
fn an_image_in_the_store_is_scanned_through_its_own_sbom() {
    let s = setup();
    let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n";
    s.kiln.import_busybox(
        "deb12:scan",
        &[
            (
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            ),
            ("var/lib/dpkg/status", status.as_bytes()),
        ],
        &[],
    );
    let out = s
        .kiln
        .ok(&["scan", "deb12:scan", "--db", &s.db, "--format", "json"]);
    assert_eq!(
        matches(&out),
        set(&[
            ("DSA-5673-1", "libc6", "critical", "2.36-9+deb12u7"),
            ("DSA-5600-1", "libssl3", "low", "3.0.13-1~deb12u1"),
        ]),
        "{out}"
    );
    let fail = s
        .kiln
        .run(&["scan", "deb12:scan", "--db", &s.db, "--fail-on", "critical"]);
    assert_eq!(fail.status.code(), Some(1));
    let err = s.kiln.fails(&["scan", "no-such:image", "--db", &s.db]);
    assert!(err.contains("no-such:image"), "{err}");
}
