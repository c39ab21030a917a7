//! The distribution of an image, from `etc/os-release` (or
//! `usr/lib/os-release`, which Debian's `etc/os-release` links to): its
//! `ID` names OS packages' purl namespace and `ID-VERSION_ID` their
//! `distro` qualifier, as syft writes them.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

impl Distro {
    /// Reads an os-release file (shell-style `KEY=value`, values quoted or
    /// not); `None` without an `ID`.
    pub fn parse(text: &str) -> Option<Distro> {
        let mut d = Distro {
            id: String::new(),
            version_id: String::new(),
            pretty_name: String::new(),
        };
        for line in text.lines() {
            let Some((k, v)) = line.trim().split_once('=') else {
                continue;
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            match k {
                "ID" => d.id = v.to_string(),
                "VERSION_ID" => d.version_id = v.to_string(),
                "PRETTY_NAME" => d.pretty_name = v.to_string(),
                _ => {}
            }
        }
        (!d.id.is_empty()).then_some(d)
    }

    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`.
    pub fn qualifier(&self) -> String {
        if self.version_id.is_empty() {
            self.id.clone()
        } else {
            format!("{}-{}", self.id, self.version_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_os_release() {
        let d = Distro::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        )
        .unwrap();
        assert_eq!(d.qualifier(), "debian-12");
        assert_eq!(d.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert!(Distro::parse("NAME=x\n").is_none());
    }
}
