//! Installed Python distributions: a wheel's `*.dist-info/METADATA`, an
//! egg's `*.egg-info/PKG-INFO` or `*.egg-info` file (core metadata, RFC
//! 822 headers). Names are PEP 503-normalised (lower case, runs of `-_.`
//! as one `-`), as the purl spec asks for `pypi`.

use super::{field, paragraphs};
use crate::package::{Found, PkgType};

/// PEP 503's normalised name (the one rule, shared with the matcher).
pub use kiln_core::pep503::normalize;

pub fn parse(text: &str) -> Option<Found> {
    // The headers end at the first blank line; the body is the description.
    let head = paragraphs(text).into_iter().next()?;
    let name = field(&head, "Name")?;
    let version = field(&head, "Version")?;
    let mut f = Found::new(PkgType::Python, normalize(name), version);
    if let Some(l) = field(&head, "License-Expression")
        .or_else(|| field(&head, "License"))
        .filter(|l| !l.is_empty() && *l != "UNKNOWN" && !l.contains('\n'))
    {
        f.licenses = vec![l.to_string()];
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_names() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY._-bard"), "friendly-bard");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        let f =
            parse("Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\nLicense: MIT\n\nbody: x\n")
                .unwrap();
        assert_eq!((f.name.as_str(), f.version.as_str()), ("pyyaml", "6.0"));
        assert_eq!(f.licenses, ["MIT"]);
        assert!(parse("Name: x\n").is_none());
    }
}
