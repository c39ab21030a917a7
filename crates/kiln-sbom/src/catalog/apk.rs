//! apk's database, `lib/apk/db/installed`: one `X:value` line per fact,
//! packages separated by blank lines (`P` name, `V` version, `A` arch,
//! `o` origin, `L` licence).

use crate::package::{Found, PkgType};

pub fn parse(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut cur: Option<Found> = None;
    let flush = |cur: &mut Option<Found>, out: &mut Vec<Found>| {
        if let Some(f) = cur
            .take()
            .filter(|f| !f.name.is_empty() && !f.version.is_empty())
        {
            out.push(f);
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur, &mut out);
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let f = cur.get_or_insert_with(|| Found::new(PkgType::Apk, "", ""));
        match k {
            "P" => f.name = v.to_string(),
            "V" => f.version = v.to_string(),
            "A" => f.arch = Some(v.to_string()),
            "o" => f.source = Some(v.to_string()),
            "L" => f.licenses = vec![v.to_string()],
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\n";
        let p = parse(db);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("musl", "1.2.4-r2")
        );
        assert_eq!(p[0].licenses, ["MIT"]);
        assert_eq!(p[1].source.as_deref(), Some("busybox"));
    }
}
