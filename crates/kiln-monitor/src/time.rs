//! docker's `RFC3339NanoFixed` times (`2026-12-06T14:00:00.123456789Z`),
//! as `kiln_container::logs::fixed_nanos` writes them: written here
//! without kiln-core so the monitor links nothing it does not use.

use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC with exactly nine fraction digits.
pub fn fixed_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!(
        "{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{:09}Z",
        d.subsec_nanos()
    )
}

/// Howard Hinnant's days-to-civil (the same as kiln-core's).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
