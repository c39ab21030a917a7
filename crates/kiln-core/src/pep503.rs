//! PEP 503's normal form of a Python package name: lower case, each run of
//! `-`, `_` and `.` one `-`. The SBOM's catalogers write names this way and
//! the vulnerability matcher compares them this way, so both use this one.

/// `Friendly._-Bard` → `friendly-bard`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn runs_of_separators_become_one_dash() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY._-bard"), "friendly-bard");
        assert_eq!(normalize("zope.interface"), "zope-interface");
    }
}
