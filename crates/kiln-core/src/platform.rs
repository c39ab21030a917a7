//! Platforms (`os/arch[/variant]`) as OCI indexes and image configs name them.

use std::fmt;
use std::str::FromStr;

/// The one platform type of kiln: what an index descriptor's `platform`
/// holds, what a config's `os`/`architecture`/`variant` say, and what
/// `--platform` parses to. Field order is the OCI wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an image for `have` answers a request for `self` (the one
    /// matcher: registry pulls, store lookups and copies all use it). OS and
    /// architecture must be equal; a variant missing on either side matches
    /// any (arm64 images often omit `v8`).
    pub fn matches(&self, have: &Platform) -> bool {
        if have.os != self.os || have.architecture != self.architecture {
            return false;
        }
        match (&have.variant, &self.variant) {
            (Some(h), Some(w)) => h == w,
            _ => true,
        }
    }

    /// The descriptor for `self` among an index's manifests: an exact
    /// variant match beats a variant-less one, then the first match wins.
    pub fn select<'a>(
        &self,
        manifests: &'a [crate::image::Descriptor],
    ) -> Option<&'a crate::image::Descriptor> {
        let candidates: Vec<&crate::image::Descriptor> = manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
            .collect();
        candidates
            .iter()
            .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == self.variant.as_ref())
            .or(candidates.first())
            .copied()
    }

    /// The platform kiln runs on, in Go's (and so OCI's) names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = (architecture == "arm64").then_some("v8");
        Platform::new("linux", architecture, variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad =
            || format!("invalid platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(
                &os.to_lowercase(),
                &arch.to_lowercase(),
                None,
            )),
            [os, arch, variant] => Ok(Platform::new(
                &os.to_lowercase(),
                &arch.to_lowercase(),
                Some(&variant.to_lowercase()),
            )),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for s in ["linux/amd64", "linux/arm64/v8", "windows/amd64"] {
            assert_eq!(s.parse::<Platform>().unwrap().to_string(), s);
        }
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
