//! From Dockerfile text to logical instruction lines, as docker reads it:
//!
//! - parser directives (`# syntax=`, `# escape=`, `# check=`) only at the
//!   very top, each at most once; the first comment, blank line or
//!   instruction ends them; `escape` is `\` or a backtick;
//! - comment lines (`#` first) and blank lines are skipped, also inside a
//!   continuation;
//! - a line ending in the escape character continues on the next; the
//!   escape and line break are removed and the lines joined;
//! - heredocs (`<<EOF`, `<<-EOF`, quoted delimiters) on RUN, COPY and ADD
//!   take the following lines up to their delimiter, several per line in
//!   order; `<<-` strips leading tabs.

use crate::error::Error;

/// Where something is in the Dockerfile: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Span {
    pub line: usize,
    pub col: usize,
}

/// The directives in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc's body and how it was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    pub delimiter: String,
    /// Quoted delimiter (`<<"EOF"`, `<<'EOF'`): no expansion in the body.
    pub quoted: bool,
    /// `<<-`: leading tabs stripped.
    pub strip_tabs: bool,
    pub body: String,
}

/// One instruction: keyword as written, the rest of the (joined) line, and
/// heredocs that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    pub keyword: String,
    pub args: String,
    pub span: Span,
    /// Last physical line it used (continuations and heredocs included).
    pub end_line: usize,
    pub heredocs: Vec<Heredoc>,
    /// A blank line inside the continuation (BuildKit warns: a future
    /// release will make it an error).
    pub empty_continuation: bool,
}

fn err(line: usize, col: usize, message: impl Into<String>) -> Error {
    Error::new(Span { line, col }, message)
}

/// `# key=value` as a directive, if the comment is one.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim_start().strip_prefix('#')?;
    let (key, value) = body.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

/// Splits `text` into directives and logical lines.
pub fn logical_lines(text: &str) -> Result<(Directives, Vec<LogicalLine>), Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let physical: Vec<&str> = text.lines().collect();
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    // Directives: only while every line so far was one.
    while i < physical.len() {
        let Some((key, value)) = directive(physical[i]) else {
            break;
        };
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            // Unknown directives are comments, and end the directive block.
            break;
        }
        if seen.contains(&key) {
            return Err(err(
                i + 1,
                1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(
                            i + 1,
                            1,
                            format!("invalid escape token {other:?}: use \\ or `"),
                        ))
                    }
                }
            }
            "syntax" => directives.syntax = Some(value),
            _ => directives.check = Some(value),
        }
        seen.push(key);
        i += 1;
    }

    let escape = directives.escape;
    let mut out = Vec::new();
    while i < physical.len() {
        let raw = physical[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start_line = i + 1;
        let col = raw.len() - trimmed.len() + 1;
        // Join continuations.
        let mut joined = String::new();
        let mut empty_continuation = false;
        let mut line = trimmed;
        loop {
            let body = line.trim_end_matches([' ', '\t', '\r']);
            match continued(body, escape) {
                Some(cont) => {
                    joined.push_str(cont);
                    // Next non-blank, non-comment line continues it.
                    i += 1;
                    loop {
                        match physical.get(i) {
                            None => {
                                line = "";
                                break;
                            }
                            Some(next) if next.trim_start().starts_with('#') => i += 1,
                            Some(next) if next.trim().is_empty() => {
                                empty_continuation = true;
                                i += 1
                            }
                            Some(next) => {
                                line = next;
                                break;
                            }
                        }
                    }
                    if physical.get(i).is_none() {
                        break;
                    }
                }
                None => {
                    joined.push_str(line);
                    break;
                }
            }
        }
        let end_after_join = i;
        let (keyword, args) = match joined.trim().split_once(char::is_whitespace) {
            Some((k, a)) => (k.to_string(), a.trim().to_string()),
            None => (joined.trim().to_string(), String::new()),
        };
        if !keyword.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(err(
                start_line,
                col,
                format!("unknown instruction: {keyword}"),
            ));
        }
        i = end_after_join + 1;
        let mut heredocs = Vec::new();
        // ONBUILD RUN <<EOF takes heredocs as RUN does.
        let (kw, heredoc_args) = match keyword.eq_ignore_ascii_case("ONBUILD") {
            true => args
                .split_once(char::is_whitespace)
                .unwrap_or((args.as_str(), "")),
            false => (keyword.as_str(), args.as_str()),
        };
        if matches!(kw.to_ascii_uppercase().as_str(), "RUN" | "COPY" | "ADD") {
            for (delimiter, quoted, strip_tabs) in heredoc_markers(heredoc_args, escape) {
                let mut body = String::new();
                loop {
                    let Some(l) = physical.get(i) else {
                        return Err(err(start_line, col, format!("unterminated heredoc: no line {delimiter:?} before the end of the file")));
                    };
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == delimiter {
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                heredocs.push(Heredoc {
                    delimiter,
                    quoted,
                    strip_tabs,
                    body,
                });
            }
        }
        out.push(LogicalLine {
            keyword,
            args,
            span: Span {
                line: start_line,
                col,
            },
            end_line: i.max(start_line),
            heredocs,
            empty_continuation,
        });
    }
    Ok((directives, out))
}

/// The heredoc markers on an instruction line, in order.
fn heredoc_markers(args: &str, escape: char) -> Vec<(String, bool, bool)> {
    if !args.contains("<<") {
        return Vec::new();
    }
    crate::words::quoted_words(args, escape)
        .iter()
        .filter_map(|w| heredoc_marker(w, escape))
        .collect()
}

/// A word as a heredoc marker: (delimiter, quoted, strip_tabs). As in
/// BuildKit, a marker is a whole word `[digits]<<[-]NAME` where NAME has
/// no `<`; quotes around (or in) the name make it quoted and are not part
/// of it.
pub(crate) fn heredoc_marker(word: &str, escape: char) -> Option<(String, bool, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.contains('<') {
        return None;
    }
    let name: String = rest
        .chars()
        .filter(|c| *c != '"' && *c != '\'' && *c != escape)
        .collect();
    if name.is_empty() {
        return None;
    }
    Some((name.clone(), name != rest, strip_tabs))
}

/// The line without its continuation character, if it ends in one.
/// BuildKit's rule: the escape character ends the line and is not itself
/// escaped (`foo\\` ends in a literal backslash and does not continue).
fn continued(body: &str, escape: char) -> Option<&str> {
    let rest = body.strip_suffix(escape)?;
    (!rest.ends_with(escape)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, String)> {
        logical_lines(text)
            .unwrap()
            .1
            .into_iter()
            .map(|l| (l.keyword, l.args))
            .collect()
    }

    #[test]
    fn directives_only_at_the_top() {
        let (d, l) =
            logical_lines("# syntax=docker/dockerfile:1\n#ESCAPE = `\n# check=skip=all\nFROM x\n")
                .unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.escape, '`');
        assert_eq!(d.check.as_deref(), Some("skip=all"));
        assert_eq!(l.len(), 1);
        // After a comment, a blank line or an instruction: just comments.
        for text in [
            "# hello\n# escape=`\nFROM x",
            "\n# escape=`\nFROM x",
            "FROM x\n# escape=`\n",
        ] {
            assert_eq!(logical_lines(text).unwrap().0.escape, '\\', "{text:?}");
        }
        let e = logical_lines("# escape=`\n# escape=\\\nFROM x").unwrap_err();
        assert!(
            e.to_string().contains("Dockerfile:2:1: only one escape"),
            "{e}"
        );
        assert!(logical_lines("# escape=x\nFROM x")
            .unwrap_err()
            .to_string()
            .contains("invalid escape"));
    }

    #[test]
    fn continuations_comments_and_blank_lines() {
        let text = "FROM debian\nRUN apt-get update && \\\n    # a comment inside\n\n    apt-get install -y curl \\\n  && rm -rf /var/lib/apt/lists/*\n  # trailing comment\nCMD [\"sh\"]\n";
        assert_eq!(
            lines(text),
            [
                ("FROM".into(), "debian".into()),
                ("RUN".into(), "apt-get update &&     apt-get install -y curl   && rm -rf /var/lib/apt/lists/*".into()),
                ("CMD".into(), "[\"sh\"]".into()),
            ]
        );
        let all = logical_lines(text).unwrap().1;
        assert_eq!(all[1].span, Span { line: 2, col: 1 });
        assert_eq!(all[2].span.line, 8);
        // Line 4 is blank inside RUN's continuation; a comment is not.
        assert!(all[1].empty_continuation);
        assert!(!all[2].empty_continuation);
        let (_, l) = logical_lines("RUN a \\\n  # only a comment\n  b\n").unwrap();
        assert!(!l[0].empty_continuation);
    }

    #[test]
    fn an_escaped_escape_at_the_end_does_not_continue() {
        // BuildKit's continuation rule: `\\` at the end is a literal
        // backslash, so the next line is an instruction of its own.
        let text = "FROM x\nENV C trailing\\\\backslash\\\\\nRUN true \\ \n  && echo\n";
        assert_eq!(
            lines(text),
            [
                ("FROM".into(), "x".into()),
                ("ENV".into(), "C trailing\\\\backslash\\\\".into()),
                ("RUN".into(), "true   && echo".into()),
            ]
        );
    }

    #[test]
    fn backtick_escape_and_windows_paths() {
        let text = "# escape=`\nFROM windows\nCOPY C:\\src\\ C:\\dst\\\nRUN dir `\n  c:\\\n";
        assert_eq!(
            lines(text),
            [
                ("FROM".into(), "windows".into()),
                ("COPY".into(), "C:\\src\\ C:\\dst\\".into()),
                ("RUN".into(), "dir   c:\\".into()),
            ]
        );
    }

    #[test]
    fn heredocs() {
        let text = "FROM x\nRUN <<EOF\necho a\necho $HOME\nEOF\nCOPY <<-\"A\" /a <<'B' /b\n\t\tone\n\tA\ntwo\nB\nRUN echo done\n";
        let (_, l) = logical_lines(text).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[1].heredocs[0].body, "echo a\necho $HOME\n");
        assert!(!l[1].heredocs[0].quoted);
        let h = &l[2].heredocs;
        assert_eq!(
            (
                h[0].delimiter.as_str(),
                h[0].quoted,
                h[0].strip_tabs,
                h[0].body.as_str()
            ),
            ("A", true, true, "one\n")
        );
        assert_eq!(
            (h[1].delimiter.as_str(), h[1].quoted, h[1].body.as_str()),
            ("B", true, "two\n")
        );
        assert_eq!(l[3].args, "echo done");
        // Not a heredoc: inside quotes, or on other instructions.
        let (_, l) = logical_lines("RUN echo '<<EOF'\nENV A=<<EOF\n").unwrap();
        assert!(l.iter().all(|l| l.heredocs.is_empty()));
        let e = logical_lines("RUN <<EOF\necho\n").unwrap_err();
        assert!(e.to_string().contains("unterminated heredoc"), "{e}");
    }

    #[test]
    fn bad_keywords_point_at_the_line() {
        let e = logical_lines("FROM x\n  RU-N echo\n").unwrap_err();
        assert_eq!(e.span, Span { line: 2, col: 3 });
        assert!(e.to_string().contains("unknown instruction: RU-N"));
    }
}
