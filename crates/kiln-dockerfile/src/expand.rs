//! Variable expansion as docker applies it to ADD, COPY, ENV, EXPOSE, FROM,
//! LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR arguments (BuildKit's
//! `shell.Lex`). It is not a shell: no command substitution, no globbing,
//! and the rules differ from POSIX in places, which is why this is written
//! out here instead of borrowed from a shell-words crate:
//!
//! - `'…'` is literal; `"…"` expands `$` and lets the escape character
//!   escape *any* next character (POSIX only escapes `$ \` " \n`);
//! - outside quotes the escape character makes the next character literal;
//!   an escape at the very end is dropped;
//! - `$NAME` takes `[A-Za-z0-9_]+`; a `$` not followed by a name or `{` is
//!   literal; unset variables expand to nothing;
//! - `${NAME}` with the modifiers `:-` `-` `:+` `+` `:?` `?`, whose word is
//!   itself expanded.

use std::fmt;

/// Looks up a variable's value (`None`: unset).
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl<F: Fn(&str) -> Option<&'static str>> Env for F {
    fn get(&self, name: &str) -> Option<&str> {
        self(name)
    }
}

impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        // Later entries win, as a later ENV/ARG overrides an earlier one.
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::HashMap::get(self, name).map(String::as_str)
    }
}

/// Why a word could not be expanded; `at` is a char offset into the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub at: usize,
    pub message: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

impl std::error::Error for ExpandError {}

/// Expands one word (quotes removed), as for `ENV A=$B` or `WORKDIR $DIR`.
pub fn expand_word(
    word: &str,
    env: &(impl Env + ?Sized),
    escape: char,
) -> Result<String, ExpandError> {
    // Most words have nothing to expand or unquote.
    if !word.contains(['$', '\'', '"', escape]) {
        return Ok(word.to_string());
    }
    let mut lexer = Lexer::new(word, env, escape);
    let words = lexer.run(false)?;
    Ok(words.concat())
}

/// Expands and splits on unquoted whitespace, as for `EXPOSE $PORTS` or
/// `VOLUME $A $B`. Whitespace inside quotes does not split; whitespace in
/// an unquoted variable's value does, as in docker: `ARG P="80 443"` then
/// `EXPOSE $P` gives two ports. A quoted empty string is an empty word.
pub fn expand_words(
    word: &str,
    env: &(impl Env + ?Sized),
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lexer = Lexer::new(word, env, escape);
    lexer.run(true)
}

/// Expands a heredoc body used as a file (`COPY <<EOF`): `$` forms and an
/// escaped `$` or escape character, as a shell does in an unquoted
/// heredoc; quotes are ordinary characters there.
pub fn expand_heredoc(
    text: &str,
    env: &(impl Env + ?Sized),
    escape: char,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(text, env, escape);
    let mut out = String::new();
    while let Some(c) = lexer.peek() {
        let next = lexer.chars.get(lexer.pos + 1).copied();
        if c == escape && (next == Some('$') || next == Some(escape)) {
            lexer.escaped(&mut out);
        } else if c == '$' {
            out.push_str(&lexer.dollar()?);
        } else {
            out.push(c);
            lexer.pos += 1;
        }
    }
    Ok(out)
}

struct Lexer<'a, E: Env + ?Sized> {
    chars: Vec<char>,
    pos: usize,
    env: &'a E,
    escape: char,
}

impl<'a, E: Env + ?Sized> Lexer<'a, E> {
    fn new(word: &str, env: &'a E, escape: char) -> Self {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            env,
            escape,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err(&self, message: impl Into<String>) -> ExpandError {
        ExpandError {
            at: self.pos,
            message: message.into(),
        }
    }

    /// The whole input; with `split`, into words on unquoted whitespace.
    fn run(&mut self, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        // A word with quotes exists even when empty (`""`).
        let mut quoted = false;
        while let Some(ch) = self.peek() {
            if split && ch.is_whitespace() {
                self.pos += 1;
                if in_word && (!cur.is_empty() || quoted) {
                    words.push(std::mem::take(&mut cur));
                }
                in_word = false;
                quoted = false;
                continue;
            }
            in_word = true;
            match ch {
                c if c == self.escape => self.escaped(&mut cur),
                '\'' => {
                    quoted = true;
                    cur.push_str(&self.quoted('\'')?);
                }
                '"' => {
                    quoted = true;
                    cur.push_str(&self.quoted('"')?);
                }
                '$' => {
                    let value = self.dollar()?;
                    if split {
                        // An unquoted variable's value splits like the text.
                        let mut parts = value.split(char::is_whitespace).peekable();
                        if let Some(first) = parts.next() {
                            cur.push_str(first);
                        }
                        for p in parts {
                            if !cur.is_empty() {
                                words.push(std::mem::take(&mut cur));
                            }
                            cur.push_str(p);
                        }
                    } else {
                        cur.push_str(&value);
                    }
                }
                c => {
                    cur.push(c);
                    self.pos += 1;
                }
            }
        }
        if !split {
            return Ok(vec![cur]);
        }
        if in_word && (!cur.is_empty() || quoted) {
            words.push(cur);
        }
        Ok(words)
    }

    /// At the escape character: the next character, literally (an escape
    /// at the very end is dropped).
    fn escaped(&mut self, out: &mut String) {
        self.pos += 1;
        if let Some(next) = self.peek() {
            out.push(next);
            self.pos += 1;
        }
    }

    /// A quoted string from its opening quote: `'…'` is literal, `"…"`
    /// expands `$` and honours the escape character.
    fn quoted(&mut self, close: char) -> Result<String, ExpandError> {
        let start = self.pos;
        let expanding = close == '"';
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    let kind = if expanding { "double" } else { "single" };
                    return Err(self.err(format!("unterminated {kind} quote")));
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') if expanding => out.push_str(&self.dollar()?),
                Some(c) if expanding && c == self.escape => self.escaped(&mut out),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// At a `$`: the expansion, or `$` itself when nothing names a variable.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        match self.peek() {
            Some('{') => {
                let open = self.pos;
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    self.pos = open;
                    return Err(self.err("bad substitution: ${ needs a variable name"));
                }
                let value = self.env.get(&name).map(str::to_string);
                match self.peek() {
                    Some('}') => {
                        self.pos += 1;
                        Ok(value.unwrap_or_default())
                    }
                    Some(':') | Some('-') | Some('+') | Some('?') => {
                        let colon = self.peek() == Some(':');
                        if colon {
                            self.pos += 1;
                        }
                        let op = self.peek().ok_or_else(|| self.err("unterminated ${"))?;
                        if !matches!(op, '-' | '+' | '?') {
                            return Err(self.err(format!(
                                "unsupported modifier '{}{op}' in ${{{name}…}}",
                                if colon { ":" } else { "" }
                            )));
                        }
                        self.pos += 1;
                        let word = self.word_until_brace()?;
                        // With ':', an empty value counts as unset.
                        let set = match &value {
                            Some(v) => !(colon && v.is_empty()),
                            None => false,
                        };
                        match op {
                            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                            '+' => Ok(if set { word } else { String::new() }),
                            _ => {
                                if set {
                                    Ok(value.unwrap_or_default())
                                } else if word.is_empty() {
                                    Err(self.err(format!("{name}: is not allowed to be unset")))
                                } else {
                                    Err(self.err(format!("{name}: {word}")))
                                }
                            }
                        }
                    }
                    Some(c) => Err(self.err(format!("unsupported modifier '{c}' in ${{{name}…}}"))),
                    None => Err(self.err("unterminated ${")),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.env.get(&name).unwrap_or_default().to_string())
            }
            _ => Ok("$".to_string()),
        }
    }

    /// The word of a `${NAME:-word}` modifier, itself expanded, up to `}`.
    fn word_until_brace(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated ${: missing }")),
                Some('}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) if c == self.escape => self.escaped(&mut out),
                Some('\'') => out.push_str(&self.quoted('\'')?),
                Some('"') => out.push_str(&self.quoted('"')?),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &[(&str, &str)] = &[
        ("A", "alpha"),
        ("EMPTY", ""),
        ("SPACED", "80 443"),
        ("PATH", "/usr/bin"),
        ("n1", "one"),
    ];

    fn w(s: &str) -> String {
        expand_word(s, ENV, '\\').unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn expands_like_docker() {
        let cases = [
            ("plain", "plain"),
            ("$A", "alpha"),
            ("${A}", "alpha"),
            ("x${A}y", "xalphay"),
            ("$A.txt", "alpha.txt"),
            ("$Ab", ""),
            ("$n1", "one"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$", "$"),
            ("a$", "a$"),
            ("$-x", "$-x"),
            ("$/", "$/"),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            ("${A:-def}", "alpha"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-$A}", "alpha"),
            ("${UNSET:-${A:+nested}}", "nested"),
            ("${UNSET:-a b}", "a b"),
            ("${UNSET:-'quoted }'}", "quoted }"),
            ("${UNSET:-\\}}", "}"),
            ("${A:?must}", "alpha"),
            ("'$A'", "$A"),
            ("\"$A\"", "alpha"),
            ("\"a'b\"", "a'b"),
            ("'a\"b'", "a\"b"),
            ("\\$A", "$A"),
            ("\\\\", "\\"),
            ("a\\ b", "a b"),
            ("trailing\\", "trailing"),
            ("\"\\$A\"", "$A"),
            ("\"\\x\"", "x"),
            ("\"\\\"\"", "\""),
            ("\"${A}-\"'${A}'", "alpha-${A}"),
            ("$PATH:/opt/bin", "/usr/bin:/opt/bin"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(w(input), want, "{input:?}");
        }
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let body = "echo \"$A\" '${UNSET:-d}' \\$A \\\\ \\n\n";
        assert_eq!(
            expand_heredoc(body, ENV, '\\').unwrap(),
            "echo \"alpha\" 'd' $A \\ \\n\n"
        );
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand_word("C:\\path`$A", ENV, '`').unwrap(), "C:\\path$A");
        assert_eq!(expand_word("$A\\n", ENV, '`').unwrap(), "alpha\\n");
    }

    #[test]
    fn errors_name_the_problem() {
        for (input, want) in [
            ("${UNSET:?is required}", "UNSET: is required"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be unset"),
            ("${A", "unterminated"),
            ("${A:-x", "missing }"),
            ("${}", "needs a variable name"),
            ("${A%x}", "unsupported modifier"),
            ("${A:=x}", "unsupported modifier ':='"),
            ("'open", "unterminated single quote"),
            ("\"open", "unterminated double quote"),
        ] {
            let e = expand_word(input, ENV, '\\').unwrap_err();
            assert!(e.to_string().contains(want), "{input:?}: {e}");
        }
        assert_eq!(expand_word("ab'cd", ENV, '\\').unwrap_err().at, 2);
    }

    #[test]
    fn splits_words_like_docker() {
        let words = |s: &str| expand_words(s, ENV, '\\').unwrap();
        assert_eq!(words("80 443/udp"), ["80", "443/udp"]);
        assert_eq!(words("  a   b  "), ["a", "b"]);
        assert_eq!(words("$SPACED"), ["80", "443"]);
        assert_eq!(words("\"$SPACED\""), ["80 443"]);
        assert_eq!(words("'a b' c"), ["a b", "c"]);
        assert_eq!(words("a\\ b c"), ["a b", "c"]);
        assert_eq!(words("x$SPACED"), ["x80", "443"]);
        assert_eq!(words("$UNSET"), Vec::<String>::new());
        assert_eq!(words("\"\""), [""]);
        assert!(words("").is_empty());
    }
}
