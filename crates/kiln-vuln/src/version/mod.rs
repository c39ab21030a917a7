//! Version ordering per ecosystem: one module per scheme, chosen by the
//! OSV ecosystem name.

pub mod apk;
pub mod dpkg;
pub mod pep440;
pub mod semver;

use std::cmp::Ordering;

/// A version ordering scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// Alpine (apk-tools).
    Apk,
    /// PyPI (PEP 440).
    Pep440,
    /// npm, Go, crates.io (SemVer 2.0).
    Semver,
}

impl Scheme {
    /// The scheme of an OSV ecosystem (`Debian:12`, `Alpine:v3.19`,
    /// `PyPI`, …); `None` for an ecosystem kiln does not order.
    pub fn of_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" => Scheme::Apk,
            "PyPI" => Scheme::Pep440,
            "npm" | "Go" | "crates.io" => Scheme::Semver,
            _ => return None,
        })
    }

    /// Compares two versions in this scheme.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Semver => semver::compare(a, b),
        }
    }
}

/// Compares `a` and `b` by `parse`'s order; a string `parse` refuses
/// sorts before every valid one, and among its kind by its text (as
/// `packaging`'s old LegacyVersion did).
fn invalid_first<'a, V: Ord>(
    a: &'a str,
    b: &'a str,
    parse: impl Fn(&'a str) -> Option<V>,
) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}
