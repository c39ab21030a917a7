//! `kiln lint` and the build checks end to end: docker's `--check` text,
//! BuildKit's lint JSON and SARIF (checked against SARIF 2.1.0's required
//! structure), exit codes by `--failure-threshold`, and `kiln build`
//! printing the warnings, `--check` building nothing and `error=true`
//! failing the build.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use common::Kiln;

const DOCKERFILE: &str = "FROM alpine:3.20 AS Builder\nCMD run\n";

fn write(k: &Kiln, name: &str, text: &str) -> PathBuf {
    let dir = k.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    let f = dir.join("Dockerfile");
    fs::write(&f, text).unwrap();
    f
}

fn lint(k: &Kiln, args: &[&str]) -> (i32, String, String) {
    let out = k.cmd().arg("lint").args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn text_output_is_docker_build_checks() {
    let k = Kiln::new();
    let f = write(&k, "a", DOCKERFILE);
    let f = f.to_str().unwrap();
    let (code, out, _) = lint(&k, &[f]);
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "Check complete, 3 warnings have been found!\n\
         \n\
         WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\n\
         Stage name 'Builder' should be lowercase\n\
         {f}:1\n\
         --------------------\n   \
         1 | >>> FROM alpine:3.20 AS Builder\n   \
         2 |     CMD run\n   \
         3 |     \n\
         --------------------\n\
         \n\
         WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n\
         JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n\
         {f}:2\n\
         --------------------\n   \
         1 |     FROM alpine:3.20 AS Builder\n   \
         2 | >>> CMD run\n   \
         3 |     \n\
         --------------------\n"
    );
    assert!(out.starts_with(&expected), "{out}");
    assert!(out.contains("\nWARNING: DL3025 - https://github.com/hadolint/hadolint/wiki/DL3025\nUse arguments JSON notation for CMD and ENTRYPOINT arguments (DL3025)\n"), "{out}");
    // Thresholds: these are all warnings.
    assert_eq!(lint(&k, &["--failure-threshold", "error", f]).0, 0);
    assert_eq!(lint(&k, &["--failure-threshold", "warning", f]).0, 1);
    assert_eq!(lint(&k, &["--failure-threshold", "none", f]).0, 0);
    let (code, _, err) = lint(&k, &["--failure-threshold", "loud", f]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--failure-threshold") && err.contains("error, warning, info or style"),
        "{err}"
    );
    // DL3020 is an error.
    let add = write(&k, "b", "FROM alpine:3.20\nADD a.txt /a\n");
    assert_eq!(
        lint(&k, &["--failure-threshold", "error", add.to_str().unwrap()]).0,
        1
    );
    // A clean file; the default ./Dockerfile; standard input.
    let clean = write(&k, "c", "FROM alpine:3.20\nCMD [\"run\"]\n");
    let out = k
        .cmd()
        .arg("lint")
        .current_dir(clean.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Check complete, no warnings found.\n"
    );
    let out = k
        .cmd()
        .args(["lint", "-", "--format", "json"])
        .stdin(fs::File::open(f).unwrap())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 3);
    // A missing file is an error naming it.
    let (code, _, err) = lint(&k, &["/nonexistent/Dockerfile"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}

#[test]
fn json_is_buildkits_lint_result() {
    let k = Kiln::new();
    let f = write(&k, "a", DOCKERFILE);
    let (code, out, _) = lint(&k, &["--format", "json", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<(&str, u64)> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["ruleName"].as_str().unwrap(),
                w["location"]["ranges"][0]["start"]["line"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("StageNameCasing", 1),
            ("JSONArgsRecommended", 2),
            ("DL3025", 2)
        ]
    );
    let w = &doc["warnings"][0];
    assert_eq!(w["description"], "Stage names should be lowercase");
    assert_eq!(
        w["url"],
        "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    );
    assert_eq!(w["detail"], "Stage name 'Builder' should be lowercase");
    let src = &doc["sources"][0];
    assert_eq!(src["language"], "Dockerfile");
    assert_eq!(src["filename"], f.to_str().unwrap());
    let data = base64::engine::general_purpose::STANDARD
        .decode(src["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, DOCKERFILE.as_bytes());
    assert!(doc.get("buildError").is_none());
    // error=true: BuildKit's buildError names the rules.
    let g = write(&k, "e", &format!("# check=error=true\n{DOCKERFILE}"));
    let (code, out, _) = lint(
        &k,
        &[
            "--format",
            "json",
            "--failure-threshold",
            "none",
            g.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["buildError"]["message"],
        "lint violation found for rules: JSONArgsRecommended, StageNameCasing"
    );
}

#[test]
fn sarif_has_the_required_structure_of_sarif_2_1_0() {
    let k = Kiln::new();
    let f = write(&k, "a", DOCKERFILE);
    let (code, out, _) = lint(&k, &["--format", "sarif", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    // sarifLog: version (const "2.1.0") and runs are required.
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    // run: tool (required) with driver (required) with name (required).
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "kiln lint");
    let rules = driver["rules"].as_array().unwrap();
    for r in rules {
        // reportingDescriptor: id required; levels from the enum.
        assert!(!r["id"].as_str().unwrap().is_empty());
        assert!(["none", "note", "warning", "error"]
            .contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        // result: message (required) with text; ruleIndex points at ruleId.
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(["none", "note", "warning", "error"].contains(&r["level"].as_str().unwrap()));
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], f.to_str().unwrap());
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(
            loc["region"]["endLine"].as_u64().unwrap()
                >= loc["region"]["startLine"].as_u64().unwrap()
        );
    }
    assert_eq!(results[0]["ruleId"], "StageNameCasing");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
}

fn context(k: &Kiln, name: &str, dockerfile: &str) -> String {
    let dir = k.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    fs::write(dir.join("a"), "a\n").unwrap();
    dir.to_str().unwrap().to_string()
}

#[test]
fn build_prints_the_warnings_and_check_builds_nothing() {
    let k = Kiln::new();
    let ctx = context(&k, "ctx", "FROM scratch\nMAINTAINER me\nCOPY a /a\n");
    // --check: the findings, exit 1, no image.
    let out = k.run(&["build", "--check", "-t", "checked:1", &ctx]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("Check complete, 1 warning has been found!\n\nWARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n"), "{stdout}");
    assert_eq!(k.ok(&["images", "-q"]), "");
    let out = k.run(&["build", "--check", "--format", "json", &ctx]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warnings"][0]["ruleName"], "MaintainerDeprecated");
    // A plain build prints them and builds.
    let out = k.run(&["build", "-t", "built:1", &ctx]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" 1 warning found (use kiln build --check to expand):\n - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)\n"), "{stderr}");
    assert!(!k.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn error_true_fails_the_build_before_it_starts() {
    let k = Kiln::new();
    let ctx = context(
        &k,
        "ctx",
        "# check=error=true\nFROM scratch\nMAINTAINER me\nCOPY a /a\n",
    );
    let out = k.run(&["build", "-t", "failed:1", &ctx]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lint violation found for rules: MaintainerDeprecated"),
        "{stderr}"
    );
    assert_eq!(k.ok(&["images", "-q"]), "");
    // The build argument overrides the directive, as in BuildKit.
    let out = k.run(&[
        "build",
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=MaintainerDeprecated",
        "-t",
        "ok:1",
        &ctx,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
