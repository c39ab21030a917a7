//! dive's CI mode: three rules over the analysis, their configuration
//! (`.dive-ci`, YAML, `rules:` keys read case-insensitively as viper does),
//! and dive's report text.
//!
//! - `lowestEfficiency` (default `0.9`): fails when the threshold is
//!   greater than the efficiency;
//! - `highestWastedBytes` (default `disabled`; `20MB`, `1.5 GiB`, ...):
//!   fails when the wasted bytes are greater than the threshold;
//! - `highestUserWastedPercent` (default `0.1`): fails when the user
//!   wasted ratio is greater than the threshold.
//!
//! A rule set to `disabled` is skipped. Any other value a rule cannot read
//! (or a ratio outside 0..1) makes the run "misconfigured": no rule is
//! evaluated and the run fails, as in dive.

use std::fmt::Write as _;

use crate::analysis::Analysis;
use crate::error::{AnalyzeError, Result};
use crate::humanize::{bytes, go_float, parse_bytes, parse_float};

/// The three rules' configured values, as text (dive keeps them as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiConfig {
    pub lowest_efficiency: String,
    pub highest_wasted_bytes: String,
    pub highest_user_wasted_percent: String,
}

impl Default for CiConfig {
    fn default() -> Self {
        CiConfig {
            lowest_efficiency: "0.9".into(),
            highest_wasted_bytes: "disabled".into(),
            highest_user_wasted_percent: "0.1".into(),
        }
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

fn strip_comment(line: &str) -> &str {
    // A `#` starts a comment at the line's start or after a space.
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            return &line[..i];
        }
    }
    line
}

impl CiConfig {
    /// Applies a `.dive-ci` file's `rules:` mapping over `self`. The file
    /// is YAML; the block mapping dive documents (and its flow form
    /// `rules: {a: 1}`) is what is read. Unknown rule keys are ignored, as
    /// viper ignores them.
    pub fn apply_file(mut self, text: &str) -> Result<CiConfig> {
        let mut in_rules = false;
        let mut rules_indent = 0;
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim_end();
            if line.trim().is_empty() || line.trim() == "---" {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let body = line.trim();
            let (key, value) = body.split_once(':').ok_or_else(|| {
                AnalyzeError::Config(format!("line {}: {body:?} is not `key: value` YAML", n + 1))
            })?;
            let key = unquote(key).to_ascii_lowercase();
            let value = value.trim();
            if indent == 0 {
                in_rules = key == "rules";
                rules_indent = 0;
                if in_rules && value.starts_with('{') {
                    let inner = value.trim_start_matches('{').trim_end_matches('}');
                    for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
                        let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
                        self.set(&unquote(k).to_ascii_lowercase(), unquote(v));
                    }
                    in_rules = false;
                }
                continue;
            }
            if !in_rules {
                continue;
            }
            if rules_indent == 0 {
                rules_indent = indent;
            }
            if indent == rules_indent {
                self.set(&key, unquote(value));
            }
        }
        Ok(self)
    }

    fn set(&mut self, key: &str, value: &str) {
        let slot = match key {
            "lowestefficiency" => &mut self.lowest_efficiency,
            "highestwastedbytes" => &mut self.highest_wasted_bytes,
            "highestuserwastedpercent" => &mut self.highest_user_wasted_percent,
            _ => return,
        };
        *slot = value.to_string();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Passed,
    Failed,
    Disabled,
    Misconfigured,
    Configured,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Disabled => "SKIP",
            Status::Misconfigured => "MISCONFIGURED",
            Status::Configured => "CONFIGURED   ",
        }
    }
}

struct Rule {
    key: &'static str,
    value: String,
    validate: fn(&str) -> std::result::Result<(), String>,
    evaluate: fn(&Analysis, &str) -> (Status, String),
}

fn ratio(key: &str, v: &str) -> std::result::Result<f64, String> {
    let x = parse_float(v).map_err(|e| format!("invalid config value ('{v}'): {e}"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!(
            "{key} config value is outside allowed range (0-1), given '{v}'"
        ));
    }
    Ok(x)
}

fn rules(config: &CiConfig) -> Vec<Rule> {
    vec![
        Rule {
            key: "lowestEfficiency",
            value: config.lowest_efficiency.clone(),
            validate: |v| ratio("lowestEfficiency", v).map(drop),
            evaluate: |a, v| match parse_float(v) {
                Err(e) => (Status::Failed, format!("invalid config value ('{v}'): {e}")),
                Ok(t) if t > a.efficiency.score => (
                    Status::Failed,
                    format!(
                        "image efficiency is too low (efficiency={} < threshold={})",
                        go_float(a.efficiency.score),
                        go_float(t)
                    ),
                ),
                Ok(_) => (Status::Passed, String::new()),
            },
        },
        Rule {
            key: "highestWastedBytes",
            value: config.highest_wasted_bytes.clone(),
            validate: |v| {
                parse_bytes(v)
                    .map(drop)
                    .map_err(|e| format!("invalid config value ('{v}'): {e}"))
            },
            evaluate: |a, v| match parse_bytes(v) {
                Err(e) => (Status::Failed, format!("invalid config value ('{v}'): {e}")),
                Ok(t) if a.wasted_bytes > t => (
                    Status::Failed,
                    format!(
                        "too many bytes wasted (wasted-bytes={} > threshold={t})",
                        a.wasted_bytes
                    ),
                ),
                Ok(_) => (Status::Passed, String::new()),
            },
        },
        Rule {
            key: "highestUserWastedPercent",
            value: config.highest_user_wasted_percent.clone(),
            validate: |v| ratio("highestUserWastedPercent", v).map(drop),
            evaluate: |a, v| {
                match parse_float(v) {
                Err(e) => (Status::Failed, format!("invalid config value ('{v}'): {e}")),
                Ok(t) if t < a.wasted_user_percent => (
                    Status::Failed,
                    format!(
                        "too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes={} > threshold={})",
                        go_float(a.wasted_user_percent),
                        go_float(t)
                    ),
                ),
                Ok(_) => (Status::Passed, String::new()),
            }
            },
        },
    ]
}

/// The outcome of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiOutcome {
    pub pass: bool,
    pub misconfigured: bool,
    /// dive's report: inefficient files, each rule's result, the summary.
    pub report: String,
}

/// dive's `CiEvaluator.Evaluate` and `Report`.
pub fn evaluate(analysis: &Analysis, config: &CiConfig) -> CiOutcome {
    let rules = rules(config);
    let mut results: Vec<(&'static str, Status, String)> = Vec::new();
    let mut misconfigured = false;
    for r in &rules {
        if r.value == "disabled" {
            results.push((r.key, Status::Configured, "rule disabled".into()));
            continue;
        }
        match (r.validate)(&r.value) {
            Err(e) => {
                results.push((r.key, Status::Misconfigured, e));
                misconfigured = true;
            }
            Ok(()) => results.push((r.key, Status::Configured, "test".into())),
        }
    }
    let mut files = Vec::new();
    if !misconfigured {
        files = analysis.efficiency.inefficient.clone();
        results.clear();
        for r in &rules {
            if r.value == "disabled" {
                results.push((r.key, Status::Disabled, "rule disabled".into()));
            } else {
                let (s, m) = (r.evaluate)(analysis, &r.value);
                results.push((r.key, s, m));
            }
        }
    }
    results.sort_by(|a, b| a.0.cmp(b.0));
    let count = |s: Status| results.iter().filter(|r| r.1 == s).count();
    let failed = count(Status::Failed);
    let pass = !misconfigured && failed == 0;

    let mut out = String::new();
    let _ = writeln!(out, "Inefficient Files:");
    let _ = writeln!(out, "{:>5}  {:>12}  File Path", "Count", "Wasted Space");
    if files.is_empty() {
        let _ = writeln!(out, "None");
    }
    for f in &files {
        let _ = writeln!(
            out,
            "{:>5}  {:>12}  {}",
            f.layers.len(),
            bytes(u64::try_from(f.cumulative).unwrap_or(0)),
            f.path
        );
    }
    let _ = writeln!(out, "Results:");
    for (key, status, message) in &results {
        if message.is_empty() {
            let _ = writeln!(out, "  {}: {key}", status.text());
        } else {
            let _ = writeln!(out, "  {}: {key}: {message}", status.text());
        }
    }
    if misconfigured {
        let _ = writeln!(out, "CI Misconfigured");
    } else {
        let _ = writeln!(
            out,
            "Result:{} [Total:{}] [Passed:{}] [Failed:{}] [Warn:0] [Skipped:{}]",
            if failed > 0 { "FAIL" } else { "PASS" },
            results.len(),
            count(Status::Passed),
            failed,
            count(Status::Disabled)
        );
    }
    CiOutcome {
        pass,
        misconfigured,
        report: out,
    }
}

/// dive's lines before the report: efficiency, wasted bytes, user wasted
/// percent.
pub fn summary_lines(analysis: &Analysis) -> String {
    format!(
        "  efficiency: {} %\n  wastedBytes: {} bytes ({})\n  userWastedPercent: {} %\n",
        crate::humanize::go_fixed4(analysis.efficiency.score * 100.0),
        analysis.wasted_bytes,
        bytes(analysis.wasted_bytes),
        crate::humanize::go_fixed4(analysis.wasted_user_percent * 100.0)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dive_ci_files_set_rules_case_insensitively() {
        let c = CiConfig::default()
            .apply_file(
                "# dive rules\nrules:\n  # comment\n  lowestEfficiency: 0.95\n  HIGHESTWASTEDBYTES: \"20MB\"\nother:\n  lowestEfficiency: 0.1\n",
            )
            .unwrap();
        assert_eq!(c.lowest_efficiency, "0.95");
        assert_eq!(c.highest_wasted_bytes, "20MB");
        assert_eq!(c.highest_user_wasted_percent, "0.1");
        let flow = CiConfig::default()
            .apply_file("rules: {highestUserWastedPercent: disabled}\n")
            .unwrap();
        assert_eq!(flow.highest_user_wasted_percent, "disabled");
        assert!(CiConfig::default().apply_file("rules\n  x").is_err());
    }
}
