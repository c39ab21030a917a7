//! The version orders against their reference implementations: dpkg's
//! against `dpkg --compare-versions`, PEP 440's against PyPI's
//! `packaging` and SemVer's against npm's `semver` package, on pairs
//! generated deterministically here; apk's against
//! apk-tools' own test vectors (`testdata/apk-version.data`; apk itself
//! is not on a Debian machine).

use std::cmp::Ordering;
use std::io::Write as _;
use std::process::{Command, Stdio};

use kiln_vuln::version::{apk, dpkg, pep440, semver};

/// A small deterministic generator (an LCG: the pairs are the same on
/// every run and machine).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn dpkg_upstream(g: &mut Gen) -> String {
    let mut s = g
        .pick(&["0", "1", "2", "9", "10", "01", "1a", "3"])
        .to_string();
    for _ in 0..g.below(5) {
        match g.below(7) {
            0 | 1 => s.push('.'),
            2 => s.push('~'),
            3 => s.push('+'),
            4 => s.push_str(g.pick(&["a", "b", "z", "rc", "dfsg", "deb", "A"])),
            _ => {}
        }
        s.push_str(g.pick(&["0", "1", "2", "5", "10", "00", "011", "9"]));
    }
    if g.chance(15) {
        s.push('~');
        s.push_str(g.pick(&["", "rc1", "~", "beta"]));
    }
    s
}

fn dpkg_version(g: &mut Gen) -> String {
    let mut s = String::new();
    if g.chance(15) {
        s.push_str(g.pick(&["0:", "1:", "2:"]));
    }
    s.push_str(&dpkg_upstream(g));
    if g.chance(70) {
        s.push('-');
        s.push_str(g.pick(&[
            "1", "2", "0", "10", "1ubuntu1", "9+deb12u", "1~bpo", "3.1", "1+b",
        ]));
        if g.chance(40) {
            s.push_str(g.pick(&["1", "2", "10", "4", "~", ""]));
        }
    }
    s
}

/// A variation of `v`: most interesting pairs differ a little.
fn mutate(g: &mut Gen, v: &str) -> String {
    match g.below(6) {
        0 => format!("{v}~"),
        1 => format!("{v}.0"),
        2 => format!("{v}a"),
        3 => format!("{v}+1"),
        4 => v.replacen('1', "2", 1),
        _ => v.to_string(),
    }
}

fn pairs(seed: u64, n: usize, gen: fn(&mut Gen) -> String) -> Vec<(String, String)> {
    let mut g = Gen(seed);
    (0..n)
        .map(|_| {
            let a = gen(&mut g);
            let b = if g.chance(50) {
                let a2 = a.clone();
                mutate(&mut g, &a2)
            } else {
                gen(&mut g)
            };
            (a, b)
        })
        .collect()
}

fn dpkg_says(a: &str, b: &str) -> Ordering {
    let op = |op: &str| {
        let s = Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .expect("run dpkg (installed on Debian; scripts/setup.sh runs on Debian)");
        s.success()
    };
    if op("lt") {
        Ordering::Less
    } else if op("eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

#[test]
fn dpkg_agrees_with_dpkg_compare_versions() {
    let pairs = pairs(0x6b696c6e, 2500, dpkg_version);
    let mut wrong = Vec::new();
    let mut seen = [0usize; 3];
    for (a, b) in &pairs {
        let want = dpkg_says(a, b);
        seen[(want as i32 + 1) as usize] += 1;
        let got = dpkg::compare(a, b);
        if got != want {
            wrong.push(format!("{a} vs {b}: dpkg {want:?}, kiln {got:?}"));
        }
    }
    // The generator must give all three answers often, or the test
    // proves little.
    assert!(seen.iter().all(|&n| n > 100), "answers by kind: {seen:?}");
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
}

#[test]
fn apk_agrees_with_apk_tools_test_vectors() {
    let data = include_str!("../testdata/apk-version.data");
    let (mut checked, mut wrong) = (0, Vec::new());
    for line in data.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let ok = match fields.as_slice() {
            [a, op, b] => {
                let (invert, op) = match op.strip_prefix('!') {
                    Some(o) => (true, o),
                    None => (false, *op),
                };
                let fuzzy = op.contains('~');
                let got = if fuzzy {
                    apk::compare_prefix(a, b)
                } else {
                    apk::compare(a, b)
                };
                let allowed = match got {
                    Ordering::Less => op.contains('<'),
                    Ordering::Greater => op.contains('>'),
                    Ordering::Equal => op.contains('=') || fuzzy,
                };
                allowed != invert
            }
            [v] => match v.strip_prefix('!') {
                Some(bad) => !apk::is_valid(bad),
                None => apk::is_valid(v),
            },
            _ => panic!("unreadable line {line:?}"),
        };
        checked += 1;
        if !ok {
            wrong.push(line.to_string());
        }
    }
    assert!(checked > 700, "only {checked} vectors read");
    assert!(
        wrong.is_empty(),
        "{} of {checked} fail:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn pep440_version(g: &mut Gen) -> String {
    let mut s = String::new();
    if g.chance(5) {
        s.push('v');
    }
    if g.chance(8) {
        s.push_str(g.pick(&["1!", "0!", "2!"]));
    }
    s.push_str(g.pick(&["0", "1", "2", "01", "10"]));
    for _ in 0..g.below(4) {
        s.push('.');
        s.push_str(g.pick(&["0", "1", "2", "00", "10"]));
    }
    if g.chance(35) {
        s.push_str(g.pick(&["", "-", ".", "_"]));
        s.push_str(g.pick(&["a", "b", "rc", "alpha", "beta", "c", "pre", "preview", "RC"]));
        s.push_str(g.pick(&["", "0", "1", "2", "10"]));
    }
    if g.chance(25) {
        s.push_str(g.pick(&[".post", "post", "-", ".rev", "-r", "_post"]));
        s.push_str(g.pick(&["1", "0", "2", "5"]));
    }
    if g.chance(25) {
        s.push_str(g.pick(&[".dev", "dev", "-dev", ".DEV"]));
        s.push_str(g.pick(&["", "0", "1", "3"]));
    }
    if g.chance(15) {
        s.push('+');
        s.push_str(g.pick(&["ubuntu", "abc", "5", "1", "cpu", "2"]));
        for _ in 0..g.below(3) {
            s.push_str(g.pick(&[".", "-", "_"]));
            s.push_str(g.pick(&["1", "abc", "5", "x", "10"]));
        }
    }
    s
}

/// `packaging`'s answers for many pairs in one Python process: -1, 0, 1,
/// or "invalid" when either side is not PEP 440.
fn packaging_says(pairs: &[(String, String)]) -> Vec<String> {
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
    except InvalidVersion:
        print("invalid"); continue
    print(-1 if x < y else (1 if x > y else 0))
"#;
    oracle(
        Command::new("python3").args(["-c", script]),
        pairs,
        "python3 with packaging",
    )
}

/// Runs a peer's comparator (`cmd`, reading `a<TAB>b` lines, printing one
/// answer per line) over `pairs`: its answers, in order. `what` names the
/// peer for the failure message.
fn oracle(cmd: &mut Command, pairs: &[(String, String)], what: &str) -> Vec<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {what} (scripts/setup.sh installs it): {e}"));
    let mut input = String::new();
    for (a, b) in pairs {
        input.push_str(&format!("{a}\t{b}\n"));
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect(what);
    writer.join().expect("writer").expect("write pairs");
    assert!(
        out.status.success(),
        "{what} failed (scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn pep440_agrees_with_packaging() {
    let mut pairs = pairs(0x70657034, 5000, pep440_version);
    // Some that are not PEP 440 at all: both must refuse them.
    for bad in [
        "1.0+",
        "foo",
        "1.0-dev-1",
        "1..0",
        "1.0_",
        "1.0+a..b",
        "1.0.post1.post2",
    ] {
        pairs.push((bad.to_string(), "1.0".to_string()));
    }
    let answers = packaging_says(&pairs);
    assert_eq!(answers.len(), pairs.len());
    let mut wrong = Vec::new();
    let mut seen = [0usize; 3];
    for ((a, b), want) in pairs.iter().zip(&answers) {
        let got = match (pep440::parse(a), pep440::parse(b)) {
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Less => "-1",
                Ordering::Equal => "0",
                Ordering::Greater => "1",
            },
            _ => "invalid",
        };
        if let Ok(i) = want.parse::<i32>() {
            seen[(i + 1) as usize] += 1;
        }
        if got != want {
            wrong.push(format!("{a} vs {b}: packaging {want}, kiln {got}"));
        }
    }
    assert!(seen.iter().all(|&n| n > 200), "answers by kind: {seen:?}");
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
}

fn semver_version(g: &mut Gen) -> String {
    let mut s = String::new();
    if g.chance(20) {
        s.push('v');
    }
    let n = ["0", "1", "2", "10", "11"];
    s.push_str(&format!("{}.{}.{}", g.pick(&n), g.pick(&n), g.pick(&n)));
    if g.chance(45) {
        let ids = [
            "alpha",
            "beta",
            "rc",
            "0",
            "1",
            "2",
            "10",
            "11",
            "alpha-1",
            "x-y",
            "pre",
            "20191109021931-daa7c04131f5",
            "0.20191109021931-daa7c04131f5",
            "20200101000000-aaaaaaaaaaaa",
            "RC",
            "a1",
        ];
        s.push('-');
        s.push_str(g.pick(&ids));
        for _ in 0..g.below(3) {
            s.push('.');
            s.push_str(g.pick(&ids));
        }
    }
    if g.chance(20) {
        s.push_str(g.pick(&["+incompatible", "+build.5", "+001", "+sha.5114f85"]));
    }
    s
}

/// npm's `semver.compare` (the reference for npm, and SemVer 2.0's order
/// that Go and crates.io share) for many pairs in one node process.
fn npm_semver_says(pairs: &[(String, String)]) -> Vec<String> {
    let root = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .expect("run npm (scripts/setup.sh installs node, npm and npm's semver)");
    let root = String::from_utf8_lossy(&root.stdout).trim().to_string();
    let script = r#"
const semver = require(process.argv[1] + "/semver");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
for (const l of lines) {
  const [a, b] = l.split("\t");
  if (!semver.valid(a) || !semver.valid(b)) { console.log("invalid"); continue; }
  console.log(String(semver.compare(a, b)));
}
"#;
    oracle(
        Command::new("node").args(["-e", script, &root]),
        pairs,
        "node with npm's semver",
    )
}

#[test]
fn semver_agrees_with_npm_semver() {
    // A quarter of the second versions are the first with other build
    // metadata or without its `v` (equal by SemVer), a third share its
    // release with another pre-release; `mutate` would make strings that
    // are not SemVer.
    let mut g = Gen(0x73656d76);
    let pairs: Vec<(String, String)> = (0..4000)
        .map(|_| {
            let a = semver_version(&mut g);
            let b = if g.chance(25) {
                let core = a.split('+').next().unwrap_or(&a).to_string();
                match g.below(3) {
                    0 => format!("{core}+incompatible"),
                    1 => core.trim_start_matches('v').to_string(),
                    _ => core,
                }
            } else if g.chance(50) {
                // The same release, another pre-release (or none): the
                // identifier rules decide.
                let core = a.split(['-', '+']).next().unwrap_or(&a).to_string();
                let other = semver_version(&mut g);
                let tail = other.find(['-', '+']).map_or("", |i| &other[i..]);
                format!("{core}{tail}")
            } else {
                semver_version(&mut g)
            };
            (a, b)
        })
        .collect();
    let answers = npm_semver_says(&pairs);
    assert_eq!(answers.len(), pairs.len());
    let mut wrong = Vec::new();
    let mut seen = [0usize; 3];
    for ((a, b), want) in pairs.iter().zip(&answers) {
        let i: i32 = want
            .parse()
            .unwrap_or_else(|_| panic!("npm's semver refused {a} or {b}"));
        seen[(i + 1) as usize] += 1;
        let got = match semver::compare(a, b) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        };
        if got != i {
            wrong.push(format!("{a} vs {b}: npm {i}, kiln {got}"));
        }
    }
    assert!(seen.iter().all(|&n| n > 200), "answers by kind: {seen:?}");
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
}
