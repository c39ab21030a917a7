//! Go's `time.ParseDuration`, which docker uses for HEALTHCHECK flags:
//! `300ms`, `1m30s`, `1.5h`, `2us`/`2µs`, `10ns`, a sign, or a bare `0`.

/// Nanoseconds, possibly negative.
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("invalid duration {s:?}: use a number and a unit, e.g. 30s, 1m30s, 500ms");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        let mut div = 1i128;
        for d in frac.chars().take(18) {
            div *= 10;
            value += i128::from(d.to_digit(10).unwrap_or(0)) * scale / div;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
        rest = tail;
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, ns) in [
            ("0", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("500ms", 500_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            ("10ns", 10),
            ("-1s", -1_000_000_000),
            (".5s", 500_000_000),
        ] {
            assert_eq!(parse_go_duration(s), Ok(ns), "{s}");
        }
        for s in ["", "5", "1x", "s", "1.2.3s", "-", "9999999999h"] {
            assert!(parse_go_duration(s).is_err(), "{s}");
        }
    }
}
