//! Python's version order (PEP 440), as PyPI's `packaging` decides it:
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]` with the spelling
//! variants PEP 440 normalises (`alpha`, `c`, `pre`, `preview`, `-1` for a
//! post-release, separators `-_.` and none, a leading `v`, any case).
//! Release segments compare without trailing zeros; a dev release sorts
//! before its pre-releases; local labels compare segment-wise, numbers
//! above strings. Tested against `packaging` on generated pairs
//! (`tests/versions.rs`).

use std::cmp::Ordering;

/// A number of any length, compared by value (PEP 440 numbers are
/// unbounded): the digits without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Num(String);

impl Num {
    fn new(digits: &str) -> Num {
        let t = digits.trim_start_matches('0');
        Num(t.to_string())
    }
    fn zero() -> Num {
        Num(String::new())
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Num {
    fn cmp(&self, o: &Num) -> Ordering {
        self.0.len().cmp(&o.0.len()).then_with(|| self.0.cmp(&o.0))
    }
}
impl PartialOrd for Num {
    fn partial_cmp(&self, o: &Num) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The pre-release part of the order key (variant order is the order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pre {
    /// A dev release with neither pre nor post: before every pre-release.
    DevOnly,
    /// A pre-release: its kind (a, b, rc) and number.
    Release(u8, Num),
    /// No pre-release.
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Str(String),
    Num(Num),
}

/// A parsed version in the shape of its order key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    epoch: Num,
    release: Vec<Num>,
    pre: Pre,
    /// `None` (no post-release) sorts first.
    post: Option<Num>,
    /// `None` (no dev release) sorts last: wrapped so it does.
    dev: DevKey,
    local: Option<Vec<LocalPart>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum DevKey {
    Dev(Num),
    None,
}

struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    fn digits(&mut self) -> Option<&'a str> {
        let n = self.s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let (d, r) = self.s.split_at(n);
        self.s = r;
        Some(d)
    }
    fn eat(&mut self, p: &str) -> bool {
        match self.s.strip_prefix(p) {
            Some(r) => {
                self.s = r;
                true
            }
            None => false,
        }
    }
    fn sep(&mut self) {
        for p in ["-", "_", "."] {
            if self.eat(p) {
                return;
            }
        }
    }
    /// An optional separator, one of `labels`, an optional separator and
    /// optional digits; rewinds when no label follows.
    fn labelled(&mut self, labels: &[&str]) -> Option<(usize, Option<&'a str>)> {
        let save = self.s;
        self.sep();
        let Some(i) = labels.iter().position(|l| self.s.starts_with(l)) else {
            self.s = save;
            return None;
        };
        self.s = &self.s[labels[i].len()..];
        let before_num = self.s;
        self.sep();
        let n = self.digits();
        if n.is_none() {
            self.s = before_num;
        }
        Some((i, n))
    }
}

/// Parses a PEP 440 version; `None` when it is not one.
pub fn parse(v: &str) -> Option<Version> {
    let lower = v.trim().to_ascii_lowercase();
    let mut c = Cursor { s: &lower };
    c.eat("v");
    let first = c.digits()?;
    let (epoch, mut release) = if c.eat("!") {
        (Num::new(first), vec![Num::new(c.digits()?)])
    } else {
        (Num::zero(), vec![Num::new(first)])
    };
    while c.s.starts_with('.') && c.s[1..].starts_with(|ch: char| ch.is_ascii_digit()) {
        c.eat(".");
        release.push(Num::new(c.digits()?));
    }
    // Longest spellings first: "preview" before "pre", "alpha" before "a".
    const PRE: [&str; 8] = ["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"];
    let pre = c.labelled(&PRE).map(|(i, n)| {
        let rank = match PRE[i] {
            "alpha" | "a" => 0,
            "beta" | "b" => 1,
            _ => 2,
        };
        (rank, n.map_or_else(Num::zero, Num::new))
    });
    let post = if c.s.starts_with('-') && c.s[1..].starts_with(|ch: char| ch.is_ascii_digit()) {
        c.eat("-");
        Some(Num::new(c.digits()?))
    } else {
        c.labelled(&["post", "rev", "r"])
            .map(|(_, n)| n.map_or_else(Num::zero, Num::new))
    };
    let dev = c
        .labelled(&["dev"])
        .map(|(_, n)| n.map_or_else(Num::zero, Num::new));
    let local = if c.eat("+") {
        let mut parts = Vec::new();
        for p in c.s.split(['-', '_', '.']) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            parts.push(if p.bytes().all(|b| b.is_ascii_digit()) {
                LocalPart::Num(Num::new(p))
            } else {
                LocalPart::Str(p.to_string())
            });
        }
        c.s = "";
        Some(parts)
    } else {
        None
    };
    if !c.s.is_empty() {
        return None;
    }
    while release.last().is_some_and(Num::is_zero) && release.len() > 1 {
        release.pop();
    }
    let pre = match (pre, &post, &dev) {
        (Some((r, n)), _, _) => Pre::Release(r, n),
        (None, None, Some(_)) => Pre::DevOnly,
        (None, _, _) => Pre::Final,
    };
    Some(Version {
        epoch,
        release,
        pre,
        post,
        dev: dev.map_or(DevKey::None, DevKey::Dev),
        local,
    })
}

/// Compares two Python versions. A string that is not PEP 440 sorts
/// before every valid version (as `packaging`'s old LegacyVersion did) and
/// among its kind by its text.
pub fn compare(a: &str, b: &str) -> Ordering {
    super::invalid_first(a, b, parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn pep440_examples() {
        let order = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
        ];
        for w in order.windows(2) {
            assert_eq!(compare(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1.0a", "1.0a0"),
            ("1.0-1", "1.0.post1"),
            ("1.0ALPHA1", "1.0a1"),
            ("v1.0", "1.0"),
            ("1.0c1", "1.0rc1"),
            ("1!0", "1!0.0"),
        ] {
            assert_eq!(compare(a, b), Equal, "{a} == {b}");
        }
        assert!(parse("1.0+").is_none());
        assert!(parse("foo").is_none());
    }
}
