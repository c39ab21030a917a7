//! Every rule against its fixtures: `fixtures/<Rule>/bad/Dockerfile` must
//! give exactly the warnings of that rule listed in `bad/expect` (line,
//! tab, message), and `fixtures/<Rule>/good/Dockerfile` none of that rule.
//! A fixture directory may hold a `.dockerignore` (CopyIgnoredFile) and a
//! `bases` file describing base images as the store would (`REF
//! PLATFORM [KEY=VALUE…]`), read through a fake [`BaseImages`].

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kiln_core::Platform;
use kiln_lint::{lint, rules, BaseImage, BaseImages, Options, Report};

/// Base images from a fixture's `bases` file.
struct FakeBases(Vec<(String, BaseImage)>);

impl BaseImages for FakeBases {
    fn lookup(&self, reference: &str, _: &Platform) -> Option<BaseImage> {
        self.0
            .iter()
            .find(|(r, _)| r == reference)
            .map(|(_, b)| b.clone())
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn lint_dir(dir: &Path) -> Report {
    let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let mut opts = Options::new("Dockerfile");
    // Fixed, so the platform rules do not depend on the test machine.
    opts.target_platform = Platform::new("linux", "amd64", None);
    opts.build_platform = opts.target_platform.clone();
    opts.dockerignore = std::fs::read_to_string(dir.join(".dockerignore")).ok();
    let bases = std::fs::read_to_string(dir.join("bases")).unwrap_or_default();
    let bases = FakeBases(
        bases
            .lines()
            .map(|l| {
                let mut w = l.split_whitespace();
                let r = w.next().unwrap().to_string();
                let platform = w.next().unwrap().parse().unwrap();
                let env = w.map(str::to_string).collect();
                (
                    r,
                    BaseImage {
                        env,
                        shell: false,
                        platform: Some(platform),
                    },
                )
            })
            .collect(),
    );
    lint(&text, &opts, &bases)
}

#[test]
fn every_rule_has_fixtures_that_trigger_it_and_that_do_not() {
    let mut seen = 0;
    for rule in rules::ALL {
        let dir = fixtures().join(rule.name);
        assert!(dir.is_dir(), "no fixtures for {}", rule.name);
        let bad = lint_dir(&dir.join("bad"));
        assert!(bad.error.is_none(), "{}: {:?}", rule.name, bad.error);
        let got: Vec<String> = bad
            .warnings
            .iter()
            .filter(|w| w.rule.name == rule.name)
            .map(|w| format!("{}\t{}", w.line(), w.detail))
            .collect();
        let want: Vec<String> = std::fs::read_to_string(dir.join("bad/expect"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert!(!want.is_empty(), "{}: bad/expect lists nothing", rule.name);
        assert_eq!(got, want, "{}: bad/Dockerfile", rule.name);
        let good = lint_dir(&dir.join("good"));
        assert!(good.error.is_none(), "{}: {:?}", rule.name, good.error);
        let fired: Vec<String> = good
            .warnings
            .iter()
            .filter(|w| w.rule.name == rule.name)
            .map(|w| format!("{}\t{}", w.line(), w.detail))
            .collect();
        assert!(
            fired.is_empty(),
            "{}: good/Dockerfile: {fired:?}",
            rule.name
        );
        seen += 1;
    }
    assert_eq!(seen, rules::ALL.len());
}

#[test]
fn the_check_directive_skips_rules_and_makes_them_errors() {
    let text = "# check=skip=StageNameCasing;error=true\nFROM alpine:3.20 AS Builder\nCMD run\n";
    let r = lint(text, &Options::new("Dockerfile"), &kiln_lint::NoBaseImages);
    let names: Vec<&str> = r.warnings.iter().map(|w| w.rule.name).collect();
    assert_eq!(names, ["JSONArgsRecommended", "DL3025"]);
    assert_eq!(r.warnings[0].level, kiln_lint::Level::Error);
    // hadolint's rules keep their level: the directive is BuildKit's.
    assert_eq!(r.warnings[1].level, kiln_lint::Level::Warning);
    assert!(r.buildkit_error);
    assert_eq!(
        r.violation_message().unwrap(),
        "lint violation found for rules: JSONArgsRecommended"
    );
    assert!(r.fails(None));
    // skip=all; the build argument replaces the directive.
    let r = lint(
        "# check=skip=all\nFROM alpine:3.20 AS Builder\n",
        &Options::new("Dockerfile"),
        &kiln_lint::NoBaseImages,
    );
    assert!(r
        .warnings
        .iter()
        .all(|w| w.rule.origin != rules::Origin::BuildKit));
    let mut opts = Options::new("Dockerfile");
    opts.build_args.insert(
        "BUILDKIT_DOCKERFILE_CHECK".into(),
        "skip=JSONArgsRecommended".into(),
    );
    let r = lint(text, &opts, &kiln_lint::NoBaseImages);
    let names: Vec<&str> = r.warnings.iter().map(|w| w.rule.name).collect();
    assert_eq!(names, ["StageNameCasing", "DL3025"]);
    assert!(!r.buildkit_error);
    // A bad directive is an error naming the option.
    let r = lint(
        "# check=skip;oops\nFROM a:1\n",
        &Options::new("Dockerfile"),
        &kiln_lint::NoBaseImages,
    );
    assert!(r.error.unwrap().message.contains("invalid check option"));
}

#[test]
fn undefined_var_needs_a_known_base() {
    // Unknown base image: its Env is unknown, so nothing is reported.
    let r = lint(
        "FROM unknown:1\nENV A=$FROM_THE_IMAGE\n",
        &Options::new("Dockerfile"),
        &kiln_lint::NoBaseImages,
    );
    assert!(r.warnings.iter().all(|w| w.rule.name != "UndefinedVar"));
}

#[test]
fn a_dockerfile_that_does_not_parse_is_a_build_error() {
    let r = lint(
        "FROM a:1\nRUNN x\n",
        &Options::new("Dockerfile"),
        &kiln_lint::NoBaseImages,
    );
    let e = r.error.clone().unwrap();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unknown instruction"), "{}", e.message);
    assert!(r.fails(None));
}
