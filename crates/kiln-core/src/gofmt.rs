//! Go's `fmt` printing where kiln must match Go tools byte for byte:
//! BuildKit's history lines (`CMD %q`, `SHELL %v`, `HEALTHCHECK %q` of a
//! struct) and docker's `--format` templates (durations as `30s`).

/// Go's `strconv.Quote` for the strings a Dockerfile holds: `\` and `"`
/// escaped, control characters as Go writes them, printable text as is.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c => out.push(c),
    }
}

/// `%q` of a `[]string`: `["/bin/sh" "-c" "echo hi"]`.
pub fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `%v` of a `[]string`: `[/bin/sh -c]`.
pub fn plain_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `%q` of an integer: Go quotes it as a rune (`'\x02'`, `'A'`).
pub fn quote_rune(n: i64) -> String {
    let Some(c) = u32::try_from(n).ok().and_then(char::from_u32) else {
        return "'\u{FFFD}'".to_string();
    };
    let mut out = String::from("'");
    match c {
        '\'' => out.push_str("\\'"),
        '\\' => out.push_str("\\\\"),
        c => push_escaped(&mut out, c),
    }
    out.push('\'');
    out
}

/// Go's `time.Duration.String()`: `0s`, `500ms`, `1.5s`, `1m30s`,
/// `1h0m0s`.
pub fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        // Under a second: the largest unit that keeps a whole part.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", fraction(u, div))
    } else {
        let secs = u / 1_000_000_000;
        let frac_ns = u % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let s_text = fraction(s * 1_000_000_000 + frac_ns, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{s_text}s")
        } else if m > 0 {
            format!("{m}m{s_text}s")
        } else {
            format!("{s_text}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// `value / div` with the fraction's trailing zeros dropped.
fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let rest = value % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go() {
        assert_eq!(
            quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
        assert_eq!(plain_list(&["/bin/sh".into(), "-c".into()]), "[/bin/sh -c]");
        assert_eq!(quote_rune(2), r"'\x02'");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(10), r"'\n'");
        assert_eq!(quote_rune(65), "'A'");
        for (ns, s) in [
            (0, "0s"),
            (5_000_000_000, "5s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (500_000_000, "500ms"),
            (1_500, "1.5µs"),
            (30, "30ns"),
        ] {
            assert_eq!(duration(ns), s, "{ns}");
        }
    }
}

/// Go's `json.Indent(dst, src, prefix, indent)`: re-indents JSON text
/// without parsing it into a map, so key order and number spelling stay
/// exactly as received (docker's `manifest inspect` prints a registry's
/// bytes this way). Whitespace between tokens is dropped, `[]` and `{}`
/// stay on one line, `": "` separates keys from values. Returns `None`
/// when `src` is not valid JSON.
pub fn json_indent(src: &[u8], prefix: &str, indent: &str) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(src).ok()?;
    let text = std::str::from_utf8(src).ok()?;
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    // An opening bracket's newline waits until a value follows, so that
    // empty containers print as `[]`/`{}`.
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    let mut chars = text.trim_start().chars();
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for s in chars.by_ref() {
                    out.push(s);
                    match (escaped, s) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod json_indent_tests {
    use super::json_indent;

    #[test]
    fn indents_as_go_does_keeping_order_and_empty_containers() {
        let src = br#" {"b":1,"a":[],"c":{},"d":[{"x":"q\"]:,"}, 2.50]}"#;
        let got = json_indent(src, "", "\t").unwrap();
        let want = "{\n\t\"b\": 1,\n\t\"a\": [],\n\t\"c\": {},\n\t\"d\": [\n\t\t{\n\t\t\t\"x\": \"q\\\"]:,\"\n\t\t},\n\t\t2.50\n\t]\n}";
        assert_eq!(got, want);
        assert_eq!(json_indent(b"{\"a\":", "", " "), None);
    }
}
