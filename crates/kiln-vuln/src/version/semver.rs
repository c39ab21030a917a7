//! SemVer 2.0 precedence, for npm, Go modules and crates.io (OSV's
//! `SEMVER` ranges and those ecosystems' `ECOSYSTEM` ranges): numbers
//! compare numerically, a pre-release sorts before its release, and
//! pre-release identifiers compare numeric-below-alphanumeric, then by
//! count; build metadata (`+incompatible`, `+build.5`) is ignored. Go's
//! pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`,
//! `v1.2.4-0.20191109021931-daa7c04131f5`) are pre-releases and sort by
//! this rule as Go's own `semver.Compare` does. Lenient as the OSV tools
//! are: a leading `v`, and missing minor/patch read as 0.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident<'a> {
    Num(&'a str),
    Alnum(&'a str),
}

impl Ord for Ident<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        match (self, o) {
            (Ident::Num(a), Ident::Num(b)) => num_cmp(a, b),
            (Ident::Num(_), Ident::Alnum(_)) => Ordering::Less,
            (Ident::Alnum(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Alnum(a), Ident::Alnum(b)) => a.cmp(b),
        }
    }
}
impl PartialOrd for Ident<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

fn num_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A parsed version: the three numbers (as digit strings, any length) and
/// the pre-release identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    core: [&'a str; 3],
    pre: Vec<Ident<'a>>,
}

/// Parses a SemVer version leniently; `None` when it is not one.
pub fn parse(v: &str) -> Option<Version<'_>> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let v = v.split_once('+').map_or(v, |(head, _build)| head);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut nums = ["0"; 3];
    let mut parts = core.split('.');
    for (i, slot) in nums.iter_mut().enumerate() {
        match parts.next() {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => *slot = p,
            None if i > 0 => break,
            _ => return None,
        }
    }
    if parts.next().is_some() {
        return None;
    }
    let pre = match pre {
        None => Vec::new(),
        Some(p) => p
            .split('.')
            .map(|id| {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    None
                } else if id.bytes().all(|b| b.is_ascii_digit()) {
                    Some(Ident::Num(id))
                } else {
                    Some(Ident::Alnum(id))
                }
            })
            .collect::<Option<Vec<_>>>()?,
    };
    Some(Version { core: nums, pre })
}

impl Ord for Version<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        for (a, b) in self.core.iter().zip(&o.core) {
            let c = num_cmp(a, b);
            if c != Ordering::Equal {
                return c;
            }
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&o.pre),
        }
    }
}
impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Compares two SemVer versions. A string that is not SemVer sorts before
/// every valid one, and among its kind by its text.
pub fn compare(a: &str, b: &str) -> Ordering {
    super::invalid_first(a, b, parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn semver_spec_order() {
        // SemVer 2.0 §11's example chain, then Go's pseudo-versions.
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
            "10.0.0",
        ];
        for w in order.windows(2) {
            assert_eq!(compare(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Greater);
        }
        let go = [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20200101000000-aaaaaaaaaaaa",
            "v0.1.0",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-pre",
            "v1.2.4-pre.0.20191109021931-daa7c04131f5",
            "v1.2.4",
        ];
        for w in go.windows(2) {
            assert_eq!(compare(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("v2.0.0+incompatible", "2.0.0"), Equal);
        assert_eq!(
            compare("v2.0.1+incompatible", "v2.0.0+incompatible"),
            Greater
        );
        assert_eq!(compare("1.0.0+build.1", "1.0.0+build.2"), Equal);
        assert_eq!(compare("1.2", "1.2.0"), Equal);
        assert!(parse("1.2.3.4").is_none());
        assert!(parse("1..2").is_none());
    }
}
