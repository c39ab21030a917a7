//! Docker-compatible formatting: sizes, ages, and aligned tables.

use std::time::SystemTime;

/// docker's `units.HumanSizeWithPrecision(size, 3)`: SI units, 3 significant
/// digits, trailing zeros dropped ("4.26MB", "744kB", "0B").
pub(crate) fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// docker's `units.HumanSizeWithPrecision(size, precision)`; docker's
/// `units.HumanSize` is precision 4 (images' VirtualSize: "1.982MB").
pub(crate) fn human_size_precision(bytes: u64, precision: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[unit])
}

/// docker's `units.BytesSize`: binary units, 4 significant digits
/// ("1.172MiB", "7.775GiB", "0B").
pub(crate) fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", format_g(size, 4), UNITS[unit])
}

/// Go's `%.{precision}g` for values in [0, 1024).
fn format_g(v: f64, precision: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits_before = (v.abs().log10().floor() as i32) + 1;
    let decimals = (precision - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // %.3g rounds 999.5 to 1e+03: keep docker's quirk.
    if precision == 3 && s.len() > 3 && !s.contains('.') && s.starts_with("1000") {
        return "1e+03".into();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's `units.HumanDuration`.
pub(crate) fn human_duration(secs: u64) -> String {
    let hours_rounded = (secs as f64 / 3600.0 + 0.5) as u64;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        _ if secs / 60 == 1 => "About a minute".into(),
        _ if secs / 60 < 60 => format!("{} minutes", secs / 60),
        _ if hours_rounded == 1 => "About an hour".into(),
        _ if hours_rounded < 48 => format!("{hours_rounded} hours"),
        _ if hours_rounded < 24 * 7 * 2 => format!("{} days", hours_rounded / 24),
        _ if hours_rounded < 24 * 30 * 2 => format!("{} weeks", hours_rounded / 24 / 7),
        _ if hours_rounded < 24 * 365 * 2 => format!("{} months", hours_rounded / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// "2 weeks ago" from an RFC 3339 config timestamp; "N/A" when missing.
pub(crate) fn ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(kiln_core::parse_rfc3339) else {
        return "N/A".into();
    };
    let secs = SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{} ago", human_duration(secs))
}

/// Docker's `stringutils.Ellipsis`: at most `max` characters, the last one
/// "…" when cut.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A header and rows as docker's tabwriter aligns them: the one
/// tabwriter, `kiln_template::tabwrite`, as `--format table` uses.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = header.join("\t");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    kiln_template::tabwrite(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        for (n, s) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (4_261_550, "4.26MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (1_240_000_000, "1.24GB"),
            (744_000, "744kB"),
            (4_200_000, "4.2MB"),
            (999_999, "1e+03kB"),
        ] {
            assert_eq!(human_size(n), s, "{n}");
        }
        assert_eq!(human_size_precision(1_982_305, 4), "1.982MB");
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1_228_800), "1.172MiB");
        assert_eq!(bytes_size(8_348_520_448), "7.775GiB");
    }

    #[test]
    fn durations_like_docker() {
        for (secs, s) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (3 * 3600, "3 hours"),
            (47 * 3600, "47 hours"),
            (3 * 86400, "3 days"),
            (15 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(secs), s, "{secs}");
        }
    }

    #[test]
    fn tables_align_like_docker() {
        // Columns are at least 10 wide, 3 spaces past their widest cell.
        assert_eq!(
            table(
                &["TYPE", "TOTAL", "SIZE"],
                &[vec!["Images".into(), "3".into(), "1.2MB".into()]]
            ),
            "TYPE      TOTAL     SIZE\nImages    3         1.2MB\n"
        );
    }

    #[test]
    fn ellipsis_cuts_with_marker() {
        assert_eq!(ellipsis("short", 45), "short");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
