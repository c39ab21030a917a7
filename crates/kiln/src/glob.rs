//! Go's `path.Match`, which docker uses to match image references against
//! patterns (`docker images 'team/*'`, `--filter reference=…`).

/// Whether `name` matches `pattern`: `*` any run of characters but `/`,
/// `?` one character but `/`, `[a-z]`/`[^…]` classes, `\\` escapes.
/// A malformed pattern matches nothing.
pub(crate) fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // Try every split of the `/`-free prefix of `n`.
            let mut i = 0;
            loop {
                if matches(&p[1..], &n[i..]) {
                    return true;
                }
                if i == n.len() || n[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some(_) => {
            let Some((&c, rest_n)) = n.split_first() else {
                return false;
            };
            match single(p, c) {
                Some((true, used)) => matches(&p[used..], rest_n),
                _ => false,
            }
        }
    }
}

/// Matches one character of `p` (`?`, a class, an escape or a literal)
/// against `c`; returns whether it matched and how much of `p` it used, or
/// `None` for a malformed pattern.
fn single(p: &[char], c: char) -> Option<(bool, usize)> {
    match p[0] {
        '?' => Some((c != '/', 1)),
        '\\' => Some((*p.get(1)? == c, 2)),
        '[' => {
            let mut i = 1;
            let negated = p.get(1) == Some(&'^');
            if negated {
                i += 1;
            }
            let mut found = false;
            let mut first = true;
            loop {
                let lo = *p.get(i)?;
                if lo == ']' && !first {
                    break;
                }
                first = false;
                let lo = if lo == '\\' {
                    i += 1;
                    *p.get(i)?
                } else {
                    lo
                };
                i += 1;
                let mut hi = lo;
                if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
                    hi = *p.get(i + 1)?;
                    i += 2;
                }
                if lo <= c && c <= hi {
                    found = true;
                }
            }
            Some((found != negated && c != '/', i + 1))
        }
        lit => Some((lit == c, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::path_match;

    #[test]
    fn like_go_path_match() {
        for (p, n, want) in [
            ("team/*", "team/app", true),
            ("team/*", "team/a/b", false),
            ("*", "busybox", true),
            ("busybox:*", "busybox:1.36", true),
            ("bus?box", "busybox", true),
            ("b[a-u]sybox", "busybox", true),
            ("b[^u]sybox", "busybox", false),
            ("app", "apps", false),
            ("a\\*", "a*", true),
            ("[", "a", false),
        ] {
            assert_eq!(path_match(p, n), want, "{p} {n}");
        }
    }
}
