//! Splitting an instruction's arguments into words, the way docker's
//! parser does before any expansion. Three different splitters exist
//! because docker uses three: plain whitespace (FROM, EXPOSE, the shell
//! form of COPY/ADD/VOLUME), quote-aware words that keep their quotes for
//! the later expansion to remove (ENV, LABEL, ARG), and the leading
//! `--flag` words (quotes and `\` removed, always `\`).

/// Splits on runs of whitespace; quotes mean nothing here.
pub(crate) fn whitespace_words(s: &str) -> Vec<String> {
    s.split([' ', '\t', '\r', '\u{b}', '\u{c}'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits on whitespace outside quotes. Quotes and escapes stay in the
/// words: expansion removes them later.
pub(crate) fn quoted_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            word.push(c);
            if let Some(next) = chars.next() {
                word.push(next);
            }
            continue;
        }
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                word.push(c);
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The arguments as a JSON array of strings (exec form), if they are one.
/// Anything else, including `["a", 1]`, is shell form, as in docker.
pub(crate) fn json_array(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Takes the leading `--name[=value]` words off an instruction's
/// arguments: (flags, rest). A lone `--` ends the flags. In flag words
/// quotes are removed and `\` escapes the next character.
pub(crate) fn leading_flags(s: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = s.trim_start();
    while rest.starts_with("--") {
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        let mut iter = rest.char_indices();
        while let Some((i, c)) = iter.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => {
                    end = i;
                    break;
                }
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    if let Some((_, next)) = iter.next() {
                        word.push(next);
                    }
                }
                (_, c) => word.push(c),
            }
        }
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        flags.push(word);
    }
    (flags, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitters() {
        assert_eq!(whitespace_words("  a\tb   c "), ["a", "b", "c"]);
        assert_eq!(whitespace_words("\"a b\""), ["\"a", "b\""]);
        assert_eq!(
            quoted_words(r#"A="a b" B='c d' C=e\ f"#, '\\'),
            [r#"A="a b""#, "B='c d'", r"C=e\ f"]
        );
        assert_eq!(quoted_words("A=`  b", '`'), ["A=` ", "b"]);
        assert_eq!(json_array(r#" ["a", "b c"] "#).unwrap(), ["a", "b c"]);
        assert_eq!(json_array("[]").unwrap(), Vec::<String>::new());
        assert!(json_array(r#"["a", 1]"#).is_none());
        assert!(json_array(r#"["a"] x"#).is_none());
        assert!(json_array("echo [x]").is_none());
        assert!(json_array("['a']").is_none());
    }

    #[test]
    fn flags() {
        let (f, rest) = leading_flags(r#"--from=build --chown="a b" --link src dst"#);
        assert_eq!(f, ["--from=build", "--chown=a b", "--link"]);
        assert_eq!(rest, "src dst");
        let (f, rest) = leading_flags("--mount=type=cache,target=/x -- --not-a-flag");
        assert_eq!(f, ["--mount=type=cache,target=/x"]);
        assert_eq!(rest, "--not-a-flag");
        let (f, rest) = leading_flags("echo --x");
        assert!(f.is_empty());
        assert_eq!(rest, "echo --x");
        let (f, rest) = leading_flags("--network=none");
        assert_eq!((f.len(), rest), (1, ""));
    }
}
