//! The catalogers: which files of a layer hold package facts, and reading
//! them. A package database or metadata file is small and read whole
//! ([`Kind::of`] picks them by path, as syft's globs do); an executable is
//! read only when it is ELF and handed to the Go and Rust detectors.

pub mod apk;
pub mod binary;
pub mod dpkg;
pub mod npm;
pub mod python;
pub mod rpm;

use crate::package::Found;

/// What a file is to the catalogers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `var/lib/dpkg/status` or a file of `var/lib/dpkg/status.d/`.
    Dpkg,
    /// `lib/apk/db/installed`.
    Apk,
    /// `rpmdb.sqlite` (`var/lib/rpm/` or `usr/lib/sysimage/rpm/`).
    Rpm,
    /// `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, an `*.egg-info` file.
    Python,
    /// `package.json` (syft reads every one that has a name and version,
    /// in `node_modules` or not).
    Npm,
    /// `etc/os-release`, `usr/lib/os-release`.
    OsRelease,
}

impl Kind {
    /// The kind of the file at `path` (relative, cleaned), by name alone.
    pub fn of(path: &str) -> Option<Kind> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        match path {
            "var/lib/dpkg/status" => return Some(Kind::Dpkg),
            "lib/apk/db/installed" => return Some(Kind::Apk),
            "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => {
                return Some(Kind::Rpm)
            }
            "etc/os-release" | "usr/lib/os-release" => return Some(Kind::OsRelease),
            _ => {}
        }
        if parent == "var/lib/dpkg/status.d" && !name.ends_with(".md5sums") {
            return Some(Kind::Dpkg);
        }
        if (name == "METADATA" && parent.to_ascii_lowercase().ends_with(".dist-info"))
            || (name == "PKG-INFO" && parent.to_ascii_lowercase().ends_with(".egg-info"))
            || name.ends_with(".egg-info")
        {
            return Some(Kind::Python);
        }
        if name == "package.json" {
            return Some(Kind::Npm);
        }
        None
    }

    /// The packages in `bytes`, the file at `path` of this kind.
    pub fn parse(self, path: &str, bytes: &[u8]) -> Vec<Found> {
        let text = || String::from_utf8_lossy(bytes);
        match self {
            Kind::Dpkg => dpkg::parse(&text()),
            Kind::Apk => apk::parse(&text()),
            Kind::Rpm => rpm::parse(bytes).unwrap_or_else(|e| {
                eprintln!("warning: {path}: not read as an rpm database: {e}");
                Vec::new()
            }),
            Kind::Python => python::parse(&text()).into_iter().collect(),
            Kind::Npm => npm::parse(bytes).into_iter().collect(),
            Kind::OsRelease => Vec::new(),
        }
    }
}

/// RFC 822-style `Key: value` paragraphs (dpkg status, Python metadata):
/// continuation lines (starting with a space or tab) belong to the field
/// above. Returns each paragraph's fields in order.
pub(crate) fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn field<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn picks_files_by_syft_globs() {
        assert_eq!(Kind::of("var/lib/dpkg/status"), Some(Kind::Dpkg));
        assert_eq!(Kind::of("var/lib/dpkg/status.d/libc6"), Some(Kind::Dpkg));
        assert_eq!(Kind::of("var/lib/dpkg/status.d/libc6.md5sums"), None);
        assert_eq!(
            Kind::of("usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO"),
            Some(Kind::Python)
        );
        assert_eq!(
            Kind::of("usr/lib/python3.11/site-packages/pip-23.0.dist-info/METADATA"),
            Some(Kind::Python)
        );
        assert_eq!(Kind::of("app/node_modules/a/package.json"), Some(Kind::Npm));
        assert_eq!(Kind::of("var/lib/dpkg/status-old"), None);
        assert_eq!(Kind::of("usr/lib/os-release"), Some(Kind::OsRelease));
    }
}
