//! What a lint run finds: warnings with their rule, message, level and
//! lines, for one Dockerfile (a [`Report`]).

use crate::rules::{Level, Rule};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static Rule,
    /// The message (BuildKit's "detail").
    pub detail: String,
    /// The rule's level, raised to error by `# check=error=true` for
    /// BuildKit's rules.
    pub level: Level,
    /// Line ranges (1-based, inclusive) it points at; empty for the
    /// Dockerfile as a whole.
    pub ranges: Vec<(usize, usize)>,
}

impl Warning {
    /// The first line it points at (0 when none).
    pub fn line(&self) -> usize {
        self.ranges.first().map_or(0, |r| r.0)
    }
}

/// A Dockerfile that did not parse: BuildKit's `buildError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub message: String,
    pub line: usize,
}

/// The findings on one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// As the user named it (`Dockerfile`, `-` becomes `Dockerfile`).
    pub filename: String,
    pub source: String,
    /// Sorted as BuildKit prints them: by first line, then as found.
    pub warnings: Vec<Warning>,
    pub error: Option<BuildError>,
    /// `# check=error=true` (or the build argument) was set and a
    /// BuildKit rule fired: BuildKit fails the build.
    pub buildkit_error: bool,
}

impl Report {
    /// BuildKit's error text for `error=true`: the rules that fired.
    pub fn violation_message(&self) -> Option<String> {
        if !self.buildkit_error {
            return None;
        }
        let mut names: Vec<&str> = self
            .warnings
            .iter()
            .filter(|w| w.rule.origin == crate::rules::Origin::BuildKit)
            .map(|w| w.rule.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        Some(format!(
            "lint violation found for rules: {}",
            names.join(", ")
        ))
    }

    /// Whether a finding is at or above `threshold` (or the file did not
    /// parse, or `error=true` fired): the exit status is 1 then.
    pub fn fails(&self, threshold: Option<Level>) -> bool {
        if self.error.is_some() || self.buildkit_error {
            return true;
        }
        threshold.is_some_and(|t| self.warnings.iter().any(|w| w.level <= t))
    }
}
