//! Alpine's version order, as apk-tools decides it:
//! `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`. Tokens compare
//! pairwise while both sides have the same kind; a number with a leading
//! zero (after the first) compares as a string (Gentoo's rule); suffixes
//! rank `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg <
//! _p`. When one side runs out first, the longer one is greater, unless
//! its next token is a pre-release suffix. Written from apk-tools'
//! documented format (apk-version(8)); tested against its own test vectors
//! (`testdata/apk-version.data`).

use std::cmp::Ordering;

/// The kinds of token, in the order apk-tools ranks them when one version
/// ends earlier than the other (a later kind ranks lower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffix ranks: below `NONE` are pre-releases.
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const NONE: usize = 4;

fn suffix_rank(s: &str) -> Option<usize> {
    let i = SUFFIXES.iter().position(|x| *x == s)?;
    Some(if i >= NONE { i + 1 } else { i })
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    number: u64,
    suffix: usize,
}

struct Lexer<'a> {
    rest: &'a str,
    last: Kind,
    started: bool,
}

impl<'a> Lexer<'a> {
    fn new(v: &'a str) -> Self {
        Lexer {
            rest: v,
            last: Kind::InitialDigit,
            started: false,
        }
    }

    fn token(&mut self, kind: Kind, text: &'a str) -> Token<'a> {
        self.last = kind;
        Token {
            kind,
            text,
            number: 0,
            suffix: 0,
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let n = self.rest.bytes().take_while(|&c| f(c)).count();
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn digits(&mut self, kind: Kind) -> Token<'a> {
        let text = self.take_while(|c| c.is_ascii_digit());
        if text.is_empty() {
            return self.token(Kind::Invalid, text);
        }
        let mut t = self.token(kind, text);
        t.number = text.bytes().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        t
    }

    fn next(&mut self) -> Token<'a> {
        if !self.started {
            self.started = true;
            return self.digits(Kind::InitialDigit);
        }
        if self.last >= Kind::End {
            return self.token(self.last, "");
        }
        let Some(&c) = self.rest.as_bytes().first() else {
            return self.token(Kind::End, "");
        };
        match c {
            b'a'..=b'z' if self.last <= Kind::Digit => {
                let (text, rest) = self.rest.split_at(1);
                self.rest = rest;
                self.token(Kind::Letter, text)
            }
            b'.' if self.last <= Kind::Digit => {
                self.rest = &self.rest[1..];
                self.digits(Kind::Digit)
            }
            b'0'..=b'9' => match self.last {
                Kind::InitialDigit | Kind::Digit => self.digits(Kind::Digit),
                Kind::Suffix => self.digits(Kind::SuffixNo),
                _ => self.token(Kind::Invalid, ""),
            },
            b'_' if self.last <= Kind::SuffixNo => {
                self.rest = &self.rest[1..];
                let text = self.take_while(|c| c.is_ascii_lowercase());
                match suffix_rank(text) {
                    Some(rank) => {
                        let mut t = self.token(Kind::Suffix, text);
                        t.suffix = rank;
                        t
                    }
                    None => self.token(Kind::Invalid, text),
                }
            }
            b'~' if self.last < Kind::CommitHash => {
                self.rest = &self.rest[1..];
                let text = self.take_while(|c| c.is_ascii_hexdigit());
                if text.is_empty() {
                    return self.token(Kind::Invalid, text);
                }
                self.token(Kind::CommitHash, text)
            }
            b'-' if self.last < Kind::RevisionNo && self.rest.starts_with("-r") => {
                self.rest = &self.rest[2..];
                self.digits(Kind::RevisionNo)
            }
            _ => self.token(Kind::Invalid, ""),
        }
    }
}

fn cmp_tokens(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    let as_string = |a: &Token<'_>, b: &Token<'_>| {
        // Byte order, then the shorter first.
        a.text.as_bytes().cmp(b.text.as_bytes())
    };
    match a.kind {
        Kind::Digit if a.text.starts_with('0') || b.text.starts_with('0') => as_string(a, b),
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            a.number.cmp(&b.number)
        }
        Kind::Letter => a.text.cmp(b.text),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => as_string(a, b),
    }
}

/// Whether apk-tools accepts `v` as a version.
pub fn is_valid(v: &str) -> bool {
    let mut l = Lexer::new(v);
    loop {
        match l.next().kind {
            Kind::End => return true,
            Kind::Invalid => return false,
            _ => {}
        }
    }
}

/// Compares two Alpine versions (`fuzzy`: `b` a prefix matches, apk's `~`
/// operator).
fn compare_fuzzy(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut la, mut lb) = (Lexer::new(a), Lexer::new(b));
    let (mut ta, mut tb);
    loop {
        ta = la.next();
        tb = lb.next();
        if ta.kind != tb.kind || ta.kind >= Kind::End {
            break;
        }
        let o = cmp_tokens(&ta, &tb);
        if o != Ordering::Equal {
            return o;
        }
    }
    if ta.kind == tb.kind || (tb.kind == Kind::End && fuzzy) {
        return Ordering::Equal;
    }
    // One side goes on: it is greater unless it goes on with a
    // pre-release suffix.
    if ta.kind == Kind::Suffix && ta.suffix < NONE {
        return Ordering::Less;
    }
    if tb.kind == Kind::Suffix && tb.suffix < NONE {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
}

/// Compares two Alpine versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_fuzzy(a, b, false)
}

/// apk's `~` (fuzzy) comparison: `a` equals `b` when `b` is a prefix of
/// it token by token (`3.6.9 ~ 3.6`).
pub fn compare_prefix(a: &str, b: &str) -> Ordering {
    compare_fuzzy(a, b, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn suffixes_rank_as_apk_documents() {
        let order = [
            "1.0_alpha",
            "1.0_beta",
            "1.0_pre",
            "1.0_rc",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p",
            "1.0_p1",
            "1.0a",
            "1.0.1",
        ];
        for w in order.windows(2) {
            assert_eq!(compare(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Greater, "{} > {}", w[1], w[0]);
        }
        assert_eq!(compare("3.0.13-r0", "3.0.13-r0"), Equal);
        assert!(!is_valid("1.0_foo"));
    }
}
