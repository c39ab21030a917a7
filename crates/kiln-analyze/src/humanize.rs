//! Numbers printed and read as dive prints and reads them: go-humanize's
//! `Bytes` (SI units, one decimal under 10) and `ParseBytes`, and Go's `%v`
//! of a float.

const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// go-humanize `Bytes`: `9 B`, `12 kB`, `1.5 MB`.
pub fn bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let x = n as f64;
    let e = (x.ln() / 1000f64.ln()).floor();
    let suffix = SIZES[(e as usize).min(SIZES.len() - 1)];
    let val = (x / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {suffix}")
    } else {
        format!("{val:.0} {suffix}")
    }
}

/// go-humanize `ParseBytes`: `42`, `1.5 MB`, `20MiB`, `1,000 k`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let digits = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(s.len(), |(i, _)| i);
    let num = s[..digits].replace(',', "");
    let f: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let m: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1000u64.pow(2),
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1000u64.pow(3),
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1000u64.pow(4),
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1000u64.pow(5),
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1000u64.pow(6),
        "ei" | "eib" => 1 << 60,
        _ => return Err(format!("unhandled size name: {unit}")),
    };
    let v = f * m as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(v as u64)
}

/// Go's `strconv.ParseFloat(s, 64)` as dive's rules call it, with Go's
/// error text.
pub fn parse_float(s: &str) -> Result<f64, String> {
    let t = s.trim_start_matches(['+', '-']);
    let ok = !t.is_empty()
        && (t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'))
            || matches!(t.to_ascii_lowercase().as_str(), "inf" | "infinity" | "nan"));
    match s.replace('_', "").parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `%v` of a float64: the shortest representation, with an exponent
/// below 1e-4 or from 1e21.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        // Rust writes `1.5e-5`; Go writes `1.5e-05`.
        let s = format!("{f:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{f}")
}

/// Go's `%2.4f` of a float (NaN and infinities as Go writes them).
pub fn go_fixed4(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f:.4}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bytes_match_go_humanize() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(9), "9 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(12_345_678), "12 MB");
        assert_eq!(bytes(1 << 30), "1.1 GB");
    }

    #[test]
    fn parse_bytes_matches_go_humanize() {
        assert_eq!(parse_bytes("42").unwrap(), 42);
        assert_eq!(parse_bytes("20MB").unwrap(), 20_000_000);
        assert_eq!(parse_bytes("1.5 KiB").unwrap(), 1536);
        assert_eq!(parse_bytes("1,000 k").unwrap(), 1_000_000);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }

    #[test]
    fn floats_print_as_go_v() {
        assert_eq!(go_float(0.9), "0.9");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.000_012_5), "1.25e-05");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_fixed4(0.123_456), "0.1235");
        assert!(parse_float("abc").is_err());
        assert_eq!(parse_float("0.5").unwrap(), 0.5);
    }
}
