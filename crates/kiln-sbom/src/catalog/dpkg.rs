//! dpkg's database: `var/lib/dpkg/status` (and distroless images'
//! `status.d/*`, one or more paragraphs each). Only packages dpkg calls
//! installed count; `Source: name (version)` gives the upstream.

use super::{field, paragraphs};
use crate::package::{Found, PkgType};

pub fn parse(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    for p in paragraphs(text) {
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            continue;
        };
        // "install ok installed"; a removed package left as
        // "deinstall ok config-files" is not in the image any more.
        if field(&p, "Status").is_some_and(|s| s.split_whitespace().last() != Some("installed")) {
            continue;
        }
        let mut f = Found::new(PkgType::Deb, name, version);
        f.arch = field(&p, "Architecture").map(str::to_string);
        if let Some(src) = field(&p, "Source") {
            match src.split_once('(') {
                Some((s, v)) => {
                    f.source = Some(s.trim().to_string());
                    f.source_version = Some(v.trim_end_matches(')').trim().to_string());
                }
                None => f.source = Some(src.trim().to_string()),
            }
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_packages_with_sources() {
        let db = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n continued\n\nPackage: old\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1\n";
        let p = parse(db);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libc6");
        assert_eq!(p[0].source.as_deref(), Some("glibc"));
        assert_eq!(p[0].source_version, None);
        assert_eq!(p[1].source.as_deref(), Some("zlib"));
        assert_eq!(p[1].source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
    }
}
