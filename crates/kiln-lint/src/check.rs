//! BuildKit's `# check=` directive (and the `BUILDKIT_DOCKERFILE_CHECK`
//! build argument, which replaces it): `skip=A,B` or `skip=all`,
//! `error=true|false`, `experimental=…`, separated by `;`. The grammar and
//! its errors follow BuildKit's `ParseLintOptions`: an unknown key or a
//! part without `=` is an error, so a typo does not silently lint nothing.

use std::collections::BTreeSet;

/// What the directive asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    /// `error=true`: BuildKit's rules fail the build (and become errors).
    pub error: bool,
}

impl CheckConfig {
    /// Parses a directive's value, e.g. `skip=JSONArgsRecommended;error=true`.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let value = value.trim();
        let mut out = CheckConfig::default();
        if value.is_empty() {
            return Ok(out);
        }
        // BuildKit splits into at most three parts.
        for part in value.splitn(3, ';') {
            let Some((key, v)) = part.split_once('=') else {
                return Err(format!(
                    "invalid check option {part:?}: use skip=RULE,…, error=true|false or experimental=RULE,…"
                ));
            };
            let v = v.trim();
            match key.trim() {
                "skip" if v == "all" => out.skip_all = true,
                "skip" => out.skip.extend(v.split(',').map(|r| r.trim().to_string())),
                // kiln has no experimental rules; accepted as BuildKit does.
                "experimental" => {}
                "error" => {
                    out.error = parse_go_bool(v).ok_or_else(|| {
                        format!("failed to parse check option {part:?}: error= takes true or false")
                    })?
                }
                other => {
                    return Err(format!(
                        "invalid check option {other:?}: use skip, error or experimental"
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Whether a BuildKit rule is skipped.
    pub fn skips(&self, rule: &str) -> bool {
        self.skip_all || self.skip.contains(rule)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buildkit_grammar() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert!(c.error && !c.skip_all);
        assert!(c.skips("StageNameCasing") && c.skips("JSONArgsRecommended"));
        assert!(!c.skips("UndefinedVar"));
        assert!(CheckConfig::parse(" skip = all ")
            .unwrap()
            .skips("Anything"));
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
        assert!(CheckConfig::parse("error=1").unwrap().error);
        for bad in ["skip", "error=yes", "warn=true"] {
            let e = CheckConfig::parse(bad).unwrap_err();
            assert!(e.contains("check option"), "{bad}: {e}");
        }
    }
}
