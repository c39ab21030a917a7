//! Package URLs as syft writes them (packageurl-go's escaping, measured
//! on syft 1.18 itself): in names, namespaces, versions and qualifier
//! values only a space, `#`, `?`, `@`, `+` and bytes outside printable
//! ASCII are percent-encoded, so `2.36-9+deb12u4` is `2.36-9%2Bdeb12u4`
//! while an epoch's `:` and Go's `(devel)` stay as they are; qualifiers
//! come in syft's order per type.

use crate::distro::Distro;
use crate::package::{Found, PkgType};

/// A purl name or version, percent-encoded.
pub fn escape_name(s: &str) -> String {
    escape(s)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = (0x21..0x7f).contains(&b) && !b"#?@+".contains(&b);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn build(ty: &str, namespace: &str, name: &str, version: &str, qs: &[(&str, String)]) -> String {
    let mut s = format!("pkg:{ty}/");
    if !namespace.is_empty() {
        s.push_str(&escape(namespace));
        s.push('/');
    }
    s.push_str(&escape(name));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&escape(version));
    }
    let qs: Vec<String> = qs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect();
    if !qs.is_empty() {
        s.push('?');
        s.push_str(&qs.join("&"));
    }
    s
}

/// The `upstream` qualifier: the source package, `source@version` when
/// the source's version differs from the package's.
pub fn upstream(p: &Found) -> Option<String> {
    let src = p.source.as_deref().filter(|s| !s.is_empty())?;
    Some(match p.source_version.as_deref() {
        Some(v) if !v.is_empty() => format!("{src}@{v}"),
        _ => src.to_string(),
    })
}

/// The purl of `p` in an image of `distro`.
pub fn purl(p: &Found, distro: Option<&Distro>) -> String {
    let distro_q = distro.map(Distro::qualifier).unwrap_or_default();
    let arch = p.arch.clone().unwrap_or_default();
    let up = upstream(p).unwrap_or_default();
    match p.ptype {
        PkgType::Deb => {
            let ns = distro.map(|d| d.id.as_str()).unwrap_or("debian");
            build(
                "deb",
                ns,
                &p.name,
                &p.version,
                &[("arch", arch), ("distro", distro_q), ("upstream", up)],
            )
        }
        PkgType::Apk => {
            let ns = distro.map(|d| d.id.as_str()).unwrap_or("alpine");
            build(
                "apk",
                ns,
                &p.name,
                &p.version,
                &[("arch", arch), ("upstream", up), ("distro", distro_q)],
            )
        }
        PkgType::Rpm => {
            let ns = distro.map(|d| d.id.as_str()).unwrap_or_default();
            // The version field carries syft's `epoch:`; the purl has it
            // as a qualifier.
            let version = p
                .epoch
                .as_ref()
                .and_then(|e| p.version.strip_prefix(&format!("{e}:")))
                .unwrap_or(&p.version);
            build(
                "rpm",
                ns,
                &p.name,
                version,
                &[
                    ("arch", arch),
                    ("epoch", p.epoch.clone().unwrap_or_default()),
                    ("upstream", up),
                    ("distro", distro_q),
                ],
            )
        }
        PkgType::Python => build("pypi", "", &p.name, &p.version, &[]),
        PkgType::Npm => match p.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, name)) => build("npm", &format!("@{scope}"), name, &p.version, &[]),
            None => build("npm", "", &p.name, &p.version, &[]),
        },
        PkgType::GoModule => {
            let version = if p.name == "stdlib" {
                p.version.trim_start_matches("go")
            } else {
                &p.version
            };
            match p.name.rsplit_once('/') {
                Some((ns, name)) => build("golang", ns, name, version, &[]),
                None => build("golang", "", &p.name, version, &[]),
            }
        }
        PkgType::RustCrate => build("cargo", "", &p.name, &p.version, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Distro {
        Distro {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: String::new(),
        }
    }

    #[test]
    fn deb_as_syft_writes_it() {
        let mut p = Found::new(PkgType::Deb, "libc6", "2.36-9+deb12u4");
        p.arch = Some("amd64".into());
        p.source = Some("glibc".into());
        assert_eq!(
            purl(&p, Some(&debian())),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let mut z = Found::new(PkgType::Deb, "zlib1g", "1:1.2.13.dfsg-1");
        z.arch = Some("amd64".into());
        z.source = Some("zlib".into());
        z.source_version = Some("1.2.13.dfsg-1".into());
        assert_eq!(
            purl(&z, Some(&debian())),
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib%401.2.13.dfsg-1"
        );
    }

    #[test]
    fn escapes_what_syft_escapes() {
        // syft 1.18 on a dpkg status with this version wrote the purl's
        // version as below.
        assert_eq!(
            escape("!\"#$%&'()*+,/:;<=>?@[]^_`{|}~ x"),
            "!\"%23$%&'()*%2B,/:;<=>%3F%40[]^_`{|}~%20x"
        );
    }

    #[test]
    fn language_purls() {
        let n = Found::new(PkgType::Npm, "@babel/core", "7.1.0");
        assert_eq!(purl(&n, None), "pkg:npm/%40babel/core@7.1.0");
        let g = Found::new(PkgType::GoModule, "golang.org/x/sys", "v0.1.0");
        assert_eq!(purl(&g, None), "pkg:golang/golang.org/x/sys@v0.1.0");
        let s = Found::new(PkgType::GoModule, "stdlib", "go1.19.8");
        assert_eq!(purl(&s, None), "pkg:golang/stdlib@1.19.8");
        let d = Found::new(PkgType::GoModule, "example.com/hello", "(devel)");
        assert_eq!(purl(&d, None), "pkg:golang/example.com/hello@(devel)");
        let py = Found::new(PkgType::Python, "requests", "2.28.1");
        assert_eq!(purl(&py, None), "pkg:pypi/requests@2.28.1");
        let r = Found::new(PkgType::RustCrate, "serde", "1.0.1");
        assert_eq!(purl(&r, None), "pkg:cargo/serde@1.0.1");
    }
}
