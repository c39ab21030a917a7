//! OSV records (the fields matching needs) and the OSV specification's
//! evaluation of `affected[].ranges` and `affected[].versions`:
//! events sorted in the range's order (`introduced: "0"` first, a `limit`
//! of `*` last), then walked — `introduced` at or below the version makes
//! it affected, `fixed` at or below makes it not, `last_affected` below
//! makes it not — inside the range's `limit`s. `GIT` ranges need a commit
//! graph and are skipped, as osv-scanner does for packages.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::version::Scheme;

/// One OSV record (`id`, `aliases`, `affected`, …); unknown fields are
/// ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// `GHSA-…`, `DSA-…`, `CVE-…`, `PYSEC-…`.
    pub id: String,
    /// Other ids of the same vulnerability (CVE ids above all).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer text (markdown).
    #[serde(default)]
    pub details: Option<String>,
    /// Set when the record was withdrawn: such records never match.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Record-level severity (CVSS vectors).
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// The packages affected.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Database-specific data (`severity` in GitHub's advisories).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Links.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// A `severity[]` entry: a type (`CVSS_V3`, `CVSS_V4`, `Ubuntu`) and a score.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityEntry {
    /// The scoring system.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector or score.
    pub score: String,
}

/// A `references[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `WEB`, `FIX`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The address.
    pub url: String,
}

/// An `affected[]` entry: one package, its ranges and listed versions.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// The package (for distros, the source package).
    #[serde(default)]
    pub package: Option<Package>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Versions listed explicitly.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Per-package severity.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// Ecosystem-specific data (`severity` in some databases).
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-specific data.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// `Debian:12`, `PyPI`, …
    pub ecosystem: String,
    /// The package's name in that ecosystem.
    pub name: String,
    /// Its purl, when given.
    #[serde(default)]
    pub purl: Option<String>,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The events, in any order.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event: exactly one of its fields is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    /// The version the vulnerability appeared in (`"0"`: always there).
    #[serde(default)]
    pub introduced: Option<String>,
    /// The first version without it.
    #[serde(default)]
    pub fixed: Option<String>,
    /// The last version known to have it.
    #[serde(default)]
    pub last_affected: Option<String>,
    /// An upper bound on the versions this range speaks about.
    #[serde(default)]
    pub limit: Option<String>,
}

impl Event {
    /// The event's version, whichever field holds it.
    fn version(&self) -> &str {
        self.introduced
            .as_deref()
            .or(self.fixed.as_deref())
            .or(self.last_affected.as_deref())
            .or(self.limit.as_deref())
            .unwrap_or("")
    }
}

/// Where a version stands against one `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The fixed versions of the ranges that hold the version (there may
    /// be several on different branches; empty when no fix is known).
    pub fixed: Vec<String>,
}

/// Orders events as the spec asks: `introduced: "0"` before everything,
/// a `limit: "*"` after everything, the rest by `scheme`.
fn event_order(scheme: Scheme, a: &Event, b: &Event) -> Ordering {
    let rank = |e: &Event| {
        if e.introduced.as_deref() == Some("0") {
            0
        } else if e.limit.as_deref() == Some("*") {
            2
        } else {
            1
        }
    };
    rank(a).cmp(&rank(b)).then_with(|| match rank(a) {
        1 => scheme.compare(a.version(), b.version()),
        _ => Ordering::Equal,
    })
}

/// `v` against one range; `Some(fixed)` when the range includes it (with
/// the fixed version that ends the affected stretch, if any).
pub fn range_includes(scheme: Scheme, range: &Range, v: &str) -> Option<Option<String>> {
    let lt = |a: &str, b: &str| scheme.compare(a, b) == Ordering::Less;
    // BeforeLimits: no limit events means "*".
    let limits: Vec<&str> = range
        .events
        .iter()
        .filter_map(|e| e.limit.as_deref())
        .collect();
    if !limits.is_empty() && !limits.iter().any(|l| *l == "*" || lt(v, l)) {
        return None;
    }
    let mut events: Vec<&Event> = range.events.iter().collect();
    events.sort_by(|a, b| event_order(scheme, a, b));
    let mut affected = false;
    let mut fix = None;
    for e in &events {
        if let Some(i) = &e.introduced {
            if i == "0" || !lt(v, i) {
                affected = true;
            }
        } else if let Some(f) = &e.fixed {
            if !lt(v, f) {
                affected = false;
            } else if affected && fix.is_none() {
                // The first fix above v ends the stretch v is in.
                fix = Some(f.clone());
            }
        } else if let Some(l) = &e.last_affected {
            if lt(l, v) {
                affected = false;
            }
        }
    }
    affected.then_some(fix)
}

/// `v` against one `affected[]` entry of ecosystem `ecosystem` (the
/// spec's IsAffected): any range that includes it, or an explicit
/// version. `None`: not affected (or the ecosystem has no known order).
pub fn evaluate(affected: &Affected, ecosystem: &str, v: &str) -> Option<Verdict> {
    let eco_scheme = Scheme::of_ecosystem(ecosystem);
    let mut hit = false;
    let mut fixed = Vec::new();
    for range in &affected.ranges {
        let scheme = match range.kind.as_str() {
            "SEMVER" => Scheme::Semver,
            "ECOSYSTEM" => match eco_scheme {
                Some(s) => s,
                None => continue,
            },
            _ => continue,
        };
        if let Some(f) = range_includes(scheme, range, v) {
            hit = true;
            if let Some(f) = f {
                if !fixed.contains(&f) {
                    fixed.push(f);
                }
            }
        }
    }
    if !hit {
        // Listed versions are compared as versions where the order is
        // known (so `1.0` and `1.0.0` agree), else as text.
        hit = affected.versions.iter().any(|x| match eco_scheme {
            Some(s) => s.compare(x, v) == Ordering::Equal,
            None => x == v,
        });
    }
    hit.then_some(Verdict { fixed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: &str, events: &[(&str, &str)]) -> Range {
        Range {
            kind: kind.into(),
            events: events
                .iter()
                .map(|(k, v)| {
                    let mut e = Event::default();
                    let v = Some(v.to_string());
                    match *k {
                        "introduced" => e.introduced = v,
                        "fixed" => e.fixed = v,
                        "last_affected" => e.last_affected = v,
                        "limit" => e.limit = v,
                        _ => unreachable!(),
                    }
                    e
                })
                .collect(),
        }
    }

    fn inc(r: &Range, v: &str) -> bool {
        range_includes(Scheme::Semver, r, v).is_some()
    }

    /// The OSV specification's worked examples (§ Evaluation / Examples).
    #[test]
    fn spec_examples() {
        let all = range("SEMVER", &[("introduced", "0")]);
        for v in ["0.0.1", "1.0.0", "99.0.0"] {
            assert!(inc(&all, v));
        }
        let before = range("SEMVER", &[("introduced", "0"), ("fixed", "1.0.2")]);
        assert!(inc(&before, "1.0.1"));
        assert!(!inc(&before, "1.0.2"));
        assert!(!inc(&before, "2.0.0"));
        assert_eq!(
            range_includes(Scheme::Semver, &before, "0.5.0"),
            Some(Some("1.0.2".into()))
        );
        // Two stretches, events given out of order: sorted before the walk.
        let two = range(
            "SEMVER",
            &[
                ("fixed", "3.2.5"),
                ("introduced", "1.0.0"),
                ("introduced", "3.0.0"),
                ("fixed", "1.0.2"),
            ],
        );
        for (v, want) in [
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.0.1", true),
            ("1.0.2", false),
            ("2.0.0", false),
            ("3.0.0", true),
            ("3.2.4", true),
            ("3.2.5", false),
        ] {
            assert_eq!(inc(&two, v), want, "{v}");
        }
        assert_eq!(
            range_includes(Scheme::Semver, &two, "3.1.0"),
            Some(Some("3.2.5".into()))
        );
        // last_affected: up to and including.
        let last = range(
            "ECOSYSTEM",
            &[("introduced", "0"), ("last_affected", "2.1.214")],
        );
        assert!(inc(&last, "2.1.214"));
        assert!(!inc(&last, "2.1.215"));
        assert_eq!(range_includes(Scheme::Semver, &last, "1.0.0"), Some(None));
        // limit: nothing at or above it is in the range.
        let lim = range("SEMVER", &[("introduced", "1.0.0"), ("limit", "2.0.0")]);
        assert!(inc(&lim, "1.5.0"));
        assert!(!inc(&lim, "2.0.0"));
        assert!(!inc(&lim, "0.5.0"));
        let star = range("SEMVER", &[("introduced", "1.0.0"), ("limit", "*")]);
        assert!(inc(&star, "9.0.0"));
        // Pre-releases sit below their release.
        let pre = range("SEMVER", &[("introduced", "1.0.0"), ("fixed", "1.0.1")]);
        assert!(!inc(&pre, "1.0.0-rc.1"));
        assert!(inc(&pre, "1.0.1-rc.1"));
    }

    #[test]
    fn explicit_versions_and_ecosystem_order() {
        let a = Affected {
            package: None,
            ranges: vec![range(
                "ECOSYSTEM",
                &[("introduced", "0"), ("fixed", "2.36-9+deb12u4")],
            )],
            versions: vec![],
            severity: vec![],
            ecosystem_specific: None,
            database_specific: None,
        };
        // dpkg order: deb12u10 is after deb12u4 (a string compare says no).
        assert!(evaluate(&a, "Debian:12", "2.36-9+deb12u3").is_some());
        assert!(evaluate(&a, "Debian:12", "2.36-9+deb12u10").is_none());
        // An ecosystem without a known order: ranges skipped.
        assert!(evaluate(&a, "Maven", "2.36-9+deb12u3").is_none());
        let listed = Affected {
            versions: vec!["1.0".into(), "1.1".into()],
            ranges: vec![],
            ..a
        };
        assert!(evaluate(&listed, "PyPI", "1.0.0").is_some());
        assert!(evaluate(&listed, "PyPI", "1.2").is_none());
        assert!(evaluate(&listed, "Maven", "1.1").is_some());
    }
}
