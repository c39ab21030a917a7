//! Debian's version order, as `dpkg --compare-versions` decides it:
//! `[epoch:]upstream[-revision]`; epochs compare as numbers, then the
//! upstream part and the revision each by dpkg's alternating runs (a
//! non-digit run compared character by character where `~` sorts before
//! everything, even the end, and letters before other characters; then a
//! digit run compared as a number). Written from Debian Policy §5.6.12;
//! tested against dpkg itself (`tests/versions.rs`).

use std::cmp::Ordering;

/// Compares two Debian versions. Never fails: dpkg compares malformed
/// versions too (with a warning), and so does this.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| runs(ua, ub))
        .then_with(|| runs(ra, rb))
}

/// `(epoch, upstream, revision)`: the epoch before the first `:`, the
/// revision after the last `-`.
fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// A character's weight in a non-digit run: `~` lowest (below the end of
/// the run, weight 0), then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn runs(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = weight(a.get(i).copied());
            let wb = weight(b.get(j).copied());
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number (leading zeros skipped, then the
        // longer run is larger, else the first differing digit decides).
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let (si, sj) = (i, j);
        while a.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn policy_examples() {
        for (a, b, o) in [
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0", "1.0a", Less),
            ("1:0.1", "2.0", Greater),
            ("2.36-9+deb12u4", "2.36-9+deb12u3", Greater),
            ("2.36-9+deb12u10", "2.36-9+deb12u9", Greater),
            ("1.2.3-1", "1.2.3-1", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.01", "1.1", Equal),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("1.0.0", "1.0", Greater),
        ] {
            assert_eq!(compare(a, b), o, "{a} vs {b}");
            assert_eq!(compare(b, a), o.reverse(), "{b} vs {a}");
        }
    }
}
