//! An instruction's `--flag` words checked against the flags it accepts,
//! with docker's rules: `--name=value` for strings (an empty value is
//! allowed, a missing `=` is not), `--name` or `--name=true|false` for
//! booleans, lists (`--mount`, `--exclude`) may repeat, anything else at
//! most once; unknown flags are errors.

use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Bool,
    List,
}

/// The parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Checks `words` (each `--name[=value]`) against `accepted`.
    pub(crate) fn parse(
        instruction: &str,
        words: &[String],
        accepted: &[(&'static str, Kind)],
    ) -> Result<Flags, String> {
        let mut flags = Flags::default();
        for word in words {
            let Some(body) = word.strip_prefix("--") else {
                return Err(format!("flag {word:?} must start with '--'"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((known, kind)) = accepted.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = accepted.iter().map(|(n, _)| *n).collect();
                return Err(if names.is_empty() {
                    format!("unknown flag: --{name} ({instruction} takes no flags)")
                } else {
                    format!(
                        "unknown flag: --{name} ({instruction} takes --{})",
                        names.join(", --")
                    )
                });
            };
            let value = match (kind, value) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" => v.to_ascii_lowercase(),
                    _ => {
                        return Err(format!(
                            "expecting boolean value for flag --{name}, not: {v:?}"
                        ))
                    }
                },
                (_, None) => return Err(format!("missing a value on flag: --{name}=VALUE")),
                (_, Some(v)) => v.to_string(),
            };
            let slot = flags.values.entry(known).or_default();
            if *kind != Kind::List && !slot.is_empty() {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            slot.push(value);
        }
        Ok(flags)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.first()).cloned()
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, Kind)] = &[
        ("from", Kind::String),
        ("link", Kind::Bool),
        ("exclude", Kind::List),
    ];

    fn parse(words: &[&str]) -> Result<Flags, String> {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Flags::parse("COPY", &words, COPY)
    }

    #[test]
    fn docker_flag_rules() {
        let f = parse(&["--from=a", "--link", "--exclude=x", "--exclude=y"]).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.list("exclude"), ["x", "y"]);
        assert!(!parse(&["--link=FALSE"]).unwrap().bool("link"));
        assert_eq!(
            parse(&["--from="]).unwrap().string("from").as_deref(),
            Some("")
        );
        for (words, want) in [
            (
                &["--frm=a"][..],
                "unknown flag: --frm (COPY takes --from, --link, --exclude)",
            ),
            (&["--from"], "missing a value on flag: --from"),
            (&["--link=yes"], "expecting boolean value for flag --link"),
            (
                &["--from=a", "--from=b"],
                "duplicate flag specified: --from",
            ),
        ] {
            let e = parse(words).unwrap_err();
            assert!(e.contains(want), "{words:?}: {e}");
        }
    }
}
