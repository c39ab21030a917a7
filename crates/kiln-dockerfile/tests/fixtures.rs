//! Fixture tests: every `testdata/**/Dockerfile` is parsed and, when it
//! parses, expanded with the `build-args` file beside it (one `K=V` per
//! line) on linux/amd64; the outline of both, or the error, is compared
//! with its insta snapshot. Cases under `testdata/errors/` must fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use kiln_dockerfile::{outline_instructions, parse, BuildOptions, Platform};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn render(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = path.parent().unwrap();
    let mut build_args = BTreeMap::new();
    if let Ok(args) = std::fs::read_to_string(dir.join("build-args")) {
        for line in args.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').unwrap();
            build_args.insert(k.to_string(), v.to_string());
        }
    }
    let opts = BuildOptions {
        build_args,
        build_platform: amd64(),
        target_platform: amd64(),
    };
    let df = match parse(&text) {
        Ok(df) => df,
        Err(e) => return format!("error: {e}\n"),
    };
    let mut out = df.outline();
    out.push_str("--- expanded\n");
    match df.expand_all(&opts) {
        Ok(stages) => {
            for s in stages {
                out.push_str(&format!(
                    "stage {} base={:?} platform={:?}\n",
                    s.index, s.base, s.platform
                ));
                out.push_str(&outline_instructions(&s.instructions));
                out.push_str(&format!("  env: {:?}\n  args: {:?}\n", s.env, s.args));
            }
        }
        Err(e) => out.push_str(&format!("error: {e}\n")),
    }
    let unused = df.unused_build_args(&opts);
    if !unused.is_empty() {
        out.push_str(&format!("unused build args: {unused:?}\n"));
    }
    out
}

#[test]
fn fixtures() {
    insta::glob!("../testdata", "**/Dockerfile", |path| {
        let out = render(path);
        let is_error_case = path.components().any(|c| c.as_os_str() == "errors");
        assert_eq!(
            is_error_case,
            out.contains("error: "),
            "{}: error cases live under testdata/errors/, and only they may fail:\n{out}",
            path.display()
        );
        insta::assert_snapshot!(out);
    });
}
