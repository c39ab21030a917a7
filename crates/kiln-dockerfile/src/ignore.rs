//! `.dockerignore`, with docker's rules (moby `ignorefile` and
//! `patternmatcher`):
//!
//! - one pattern per line, trimmed; `#` starts a comment line; a leading
//!   `!` makes an exception; each pattern is cleaned like Go's
//!   `filepath.Clean` and a leading `/` dropped;
//! - Go `filepath.Match` syntax (`*` and `?` stop at `/`, `[a-z]`, `[^…]`,
//!   `\` escapes) plus `**` for any number of directories;
//! - patterns are evaluated in order and the last match wins; a path is
//!   also matched when one of its parent directories matches, so an
//!   excluded directory excludes its contents unless an exception later
//!   re-includes them.
//!
//! Written by hand rather than through a glob crate because the exact
//! semantics (Go's syntax, docker's parent-directory rule, `**` as in
//! patternmatcher) are the point.

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    tokens: Vec<Token>,
    /// The pattern when it has no wildcards (most do not): a plain
    /// comparison then.
    literal: Option<String>,
    /// Literal text every match starts / ends with: a cheap rejection
    /// before the backtracking matcher runs.
    prefix: String,
    suffix: String,
}

impl Pattern {
    fn new(exception: bool, tokens: Vec<Token>) -> Pattern {
        let chars = |it: &mut dyn Iterator<Item = &Token>| -> String {
            it.map_while(|t| match t {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect()
        };
        let prefix = chars(&mut tokens.iter());
        let mut suffix: Vec<char> = chars(&mut tokens.iter().rev()).chars().collect();
        suffix.reverse();
        let literal = (prefix.chars().count() == tokens.len()).then(|| prefix.clone());
        Pattern {
            exception,
            tokens,
            literal,
            prefix,
            suffix: suffix.into_iter().collect(),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match &self.literal {
            Some(l) => l == s,
            None => {
                s.starts_with(&self.prefix)
                    && s.ends_with(&self.suffix)
                    && match_at(&self.tokens, s.as_bytes())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `*`: any run of characters except `/`.
    Star,
    /// `?`: one character except `/`.
    Any,
    /// `[...]`: ranges, negated or not.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` (with its `/`) inside a pattern: `(.*/)?`.
    Dirs,
    /// `**` at the end: anything.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: invalid pattern {pattern:?}: {reason}")]
pub struct IgnoreError {
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

/// Go's `filepath.Clean` on a `/`-separated path.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

impl Matcher {
    /// Parses the contents of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let raw = if i == 0 {
                raw.trim_start_matches('\u{feff}')
            } else {
                raw
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, rest) = match line.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, line),
            };
            if rest.is_empty() {
                continue;
            }
            let mut pattern = clean_path(rest);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            let tokens = compile(&pattern).map_err(|reason| IgnoreError {
                line: i + 1,
                pattern: line.to_string(),
                reason,
            })?;
            patterns.push(Pattern::new(exception, tokens));
        }
        Ok(Matcher { patterns })
    }

    /// True if `path` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let cleaned;
        let path = if is_clean(path) {
            path
        } else {
            cleaned = clean_path(path);
            cleaned.as_str()
        };
        let parents = || path.match_indices('/').map(|(i, _)| &path[..i]);
        let mut matched = false;
        for p in &self.patterns {
            // An exclusion only matters while unmatched, an exception
            // only once matched.
            if p.exception != matched {
                continue;
            }
            let hit = p.matches(path) || parents().any(|d| p.matches(d));
            if hit {
                matched = !p.exception;
            }
        }
        matched
    }

    /// Whether a walker must look inside an excluded directory: only when
    /// some exception could re-include something below it.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

fn compile(p: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(if i >= chars.len() {
                    Token::Rest
                } else {
                    Token::Dirs
                });
            }
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '\\' => {
                let c = *chars.get(i + 1).ok_or("a trailing \\ escapes nothing")?;
                out.push(Token::Char(c));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = matches!(chars.get(i), Some('^') | Some('!'));
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let mut lo = *chars.get(i).ok_or("unterminated [")?;
                    if lo == ']' && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    if lo == '\\' {
                        i += 1;
                        lo = *chars.get(i).ok_or("unterminated [")?;
                    }
                    i += 1;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        if hi == '\\' {
                            hi = *chars.get(i + 2).ok_or("unterminated [")?;
                            i += 1;
                        }
                        i += 2;
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi}"));
                        }
                    }
                    ranges.push((lo, hi));
                }
                out.push(Token::Class { negated, ranges });
            }
            c => {
                out.push(Token::Char(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Already in `clean_path` form: relative, no empty, `.` or `..` parts,
/// no trailing `/` (what a context walker produces).
fn is_clean(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.ends_with('/')
        && p.split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The char at the start of `s` and its length in bytes.
fn first_char(s: &[u8]) -> Option<(char, usize)> {
    let len = match *s.first()? {
        b if b < 0x80 => 1,
        b if b >= 0xf0 => 4,
        b if b >= 0xe0 => 3,
        _ => 2,
    };
    let c = std::str::from_utf8(s.get(..len)?).ok()?.chars().next()?;
    Some((c, len))
}

/// Backtracking match of the whole of `s` (UTF-8 bytes). Patterns are
/// short and `*` cannot cross `/`, so this stays fast on real paths.
fn match_at(tokens: &[Token], s: &[u8]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Char(c) if c.is_ascii() => s.first() == Some(&(*c as u8)) && match_at(rest, &s[1..]),
        Token::Char(c) => match first_char(s) {
            Some((d, n)) => d == *c && match_at(rest, &s[n..]),
            None => false,
        },
        Token::Any => match first_char(s) {
            Some((d, n)) => d != '/' && match_at(rest, &s[n..]),
            None => false,
        },
        Token::Class { negated, ranges } => match first_char(s) {
            Some((c, n)) => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                c != '/' && inside != *negated && match_at(rest, &s[n..])
            }
            None => false,
        },
        Token::Star => {
            let mut i = 0;
            loop {
                if match_at(rest, &s[i..]) {
                    return true;
                }
                if i == s.len() || s[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Token::Rest => true,
        Token::Dirs => {
            // Zero directories, or any prefix ending in '/'.
            if match_at(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == b'/' && match_at(rest, &s[i + 1..]))
        }
    }
}

/// Go's `filepath.Match` (plus `**`) of one pattern against one whole
/// `/`-separated path, as COPY and ADD match wildcard sources.
pub fn glob_match(pattern: &str, path: &str) -> Result<bool, String> {
    let tokens = compile(pattern)?;
    Ok(match_at(&tokens, path.as_bytes()))
}

/// Whether a source word has wildcards at all.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Where docker looks for the ignore file of a build, in order: beside
/// the Dockerfile as `NAME.dockerignore` (for a Dockerfile named NAME),
/// then `.dockerignore` at the root of the context. The first that exists
/// is used; this crate does no I/O, so the caller checks.
pub fn ignore_file_for(
    dockerfile: &std::path::Path,
    context: &std::path::Path,
) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Some(name) = dockerfile.file_name() {
        let mut beside = name.to_os_string();
        beside.push(".dockerignore");
        out.push(dockerfile.with_file_name(beside));
    }
    out.push(context.join(".dockerignore"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ignore_file_lookup_order() {
        use std::path::{Path, PathBuf};
        assert_eq!(
            super::ignore_file_for(Path::new("/ctx/docker/app.Dockerfile"), Path::new("/ctx")),
            [
                PathBuf::from("/ctx/docker/app.Dockerfile.dockerignore"),
                PathBuf::from("/ctx/.dockerignore")
            ]
        );
    }

    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn cleans_like_go() {
        for (i, o) in [
            ("a/b/../c", "a/c"),
            ("./a//b/", "a/b"),
            ("/a/../../b", "/b"),
            ("../a", "../a"),
            ("", "."),
            ("a/..", "."),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn docker_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("*/*.md", "docs/README.md", true),
            ("**/*.md", "docs/deep/README.md", true),
            ("**/*.md", "README.md", true),
            ("docs/**", "docs/a/b", true),
            ("docs/**", "docs", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("/node_modules", "node_modules/x/y.js", true),
            ("node_modules", "src/node_modules", false),
            ("tmp?", "tmp1", true),
            ("tmp?", "tmp/", false),
            ("[a-c]*", "b.txt", true),
            ("[^a-c]*", "b.txt", false),
            ("[!a-c]*", "d.txt", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("./build/../dist", "dist/app.js", true),
            ("# comment", "# comment", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(m(pattern).excludes(path), *want, "{pattern:?} on {path:?}");
        }
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let ig = m("*.md\n!README.md\n");
        assert!(ig.excludes("CHANGES.md"));
        assert!(!ig.excludes("README.md"));
        let ig = m("!README.md\n*.md\n");
        assert!(ig.excludes("README.md"), "the last matching pattern wins");
        // A directory excluded, one child re-included.
        let ig = m("logs\n!logs/keep.txt\n");
        assert!(ig.excludes("logs/a.txt"));
        assert!(!ig.excludes("logs/keep.txt"));
        assert!(ig.excludes("logs"));
        assert!(ig.has_exceptions());
        // Exceptions with spaces and a BOM'd first line.
        let ig = m("\u{feff}secret/**\n  ! secret/public  \n");
        assert!(ig.excludes("secret/key"));
        assert!(!ig.excludes("secret/public"));
    }

    #[test]
    fn bad_patterns_name_the_line() {
        let e = Matcher::parse("ok\n[z-a]\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("bad range"), "{e}");
        assert!(Matcher::parse("[abc").is_err());
        assert!(Matcher::parse("x\\").is_err());
    }

    #[test]
    fn fast_enough_for_large_contexts() {
        let ig = m("**/*.log\nnode_modules\n!node_modules/keep/**\n*/tmp*\n**/.git\n");
        let t = std::time::Instant::now();
        let mut n = 0;
        for i in 0..100_000 {
            let p = format!(
                "src/module{}/sub{}/file{i}.{}",
                i % 97,
                i % 13,
                if i % 3 == 0 { "log" } else { "rs" }
            );
            n += ig.excludes(&p) as usize;
        }
        assert_eq!(n, 33_334);
        // Generous bound for debug builds on a loaded CI machine.
        assert!(t.elapsed().as_secs_f64() < 10.0, "{:?}", t.elapsed());
    }
}
