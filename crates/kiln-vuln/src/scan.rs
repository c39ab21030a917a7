//! Matching: each query against the records that name its package, and
//! the severity of what matched.
//!
//! Severity, first found wins: the matched `affected[]` entry's
//! `ecosystem_specific.severity` (the package's own rating, e.g. a
//! distro's), then its `database_specific.severity`, then the record's
//! `database_specific.severity` (GitHub's `HIGH`/`MODERATE`…), then the
//! highest CVSS v3 base score among the entry's and the record's
//! `severity[]` vectors, turned into a level by CVSS's bands. A match
//! with none of these is `unknown`.

use std::cmp::Ordering;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::db::Index;
use crate::osv::{self, Affected, Record};
use crate::query::{normalize_name, Query};

/// A severity level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No rating found.
    Unknown,
    /// Low (CVSS 0.1–3.9; also "negligible").
    Low,
    /// Medium (4.0–6.9; GitHub's "moderate").
    Medium,
    /// High (7.0–8.9).
    High,
    /// Critical (9.0–10.0).
    Critical,
}

impl Level {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The level of a CVSS score.
    pub fn of_score(score: f64) -> Level {
        match score {
            s if s >= 9.0 => Level::Critical,
            s if s >= 7.0 => Level::High,
            s if s >= 4.0 => Level::Medium,
            s if s > 0.0 => Level::Low,
            _ => Level::Unknown,
        }
    }

    /// A database's word for a level (`HIGH`, `moderate`, `Important`).
    fn of_word(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Level::Critical,
            "high" | "important" => Level::High,
            "medium" | "moderate" => Level::Medium,
            "low" | "negligible" | "unimportant" | "minor" => Level::Low,
            _ => return None,
        })
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Ok(Level::Critical),
            "high" => Ok(Level::High),
            "medium" => Ok(Level::Medium),
            "low" => Ok(Level::Low),
            _ => Err(format!(
                "unknown severity {s:?}: use critical, high, medium or low"
            )),
        }
    }
}

/// A severity and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Severity {
    /// The level.
    pub level: Level,
    /// The CVSS v3 base score, when a vector was there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The vector the score came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// Which field gave the level.
    pub source: &'static str,
}

/// One vulnerability in one installed package.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The record's id.
    pub id: String,
    /// Its aliases (CVE ids).
    pub aliases: Vec<String>,
    /// Its summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// The installed package's name.
    pub package: String,
    /// The source package the record names, for distro packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The ecosystem.
    pub ecosystem: String,
    /// The installed version.
    pub installed: String,
    /// The fixed versions (empty: no fix known).
    pub fixed: Vec<String>,
    /// The package's purl.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// A link to the advisory (the first ADVISORY reference, or the
    /// record's page on osv.dev).
    pub url: String,
}

fn word_at(v: Option<&Value>) -> Option<Level> {
    v?.get("severity")?.as_str().and_then(Level::of_word)
}

/// The severity of `record` for the package of `affected`.
pub fn severity(record: &Record, affected: &Affected) -> Severity {
    let word = |level, source| Severity {
        level,
        score: None,
        vector: None,
        source,
    };
    if let Some(l) = word_at(affected.ecosystem_specific.as_ref()) {
        return word(l, "affected.ecosystem_specific.severity");
    }
    if let Some(l) = word_at(affected.database_specific.as_ref()) {
        return word(l, "affected.database_specific.severity");
    }
    if let Some(l) = word_at(record.database_specific.as_ref()) {
        return word(l, "database_specific.severity");
    }
    let best = affected
        .severity
        .iter()
        .chain(&record.severity)
        .filter(|s| s.kind.starts_with("CVSS_V3"))
        .filter_map(|s| crate::cvss::base_score(&s.score).map(|x| (x, &s.score)))
        .max_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match best {
        Some((score, vector)) => Severity {
            level: Level::of_score(score),
            score: Some(score),
            vector: Some(vector.clone()),
            source: "cvss_v3",
        },
        None => word(Level::Unknown, "none"),
    }
}

fn advisory_url(record: &Record) -> String {
    record
        .references
        .iter()
        .find(|r| r.kind == "ADVISORY")
        .map(|r| r.url.clone())
        .unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", record.id))
}

/// Every finding for `queries` among `index`'s records, most severe first
/// (then by package and id), one per (record, package).
pub fn scan(index: &Index, queries: &[Query]) -> Vec<Finding> {
    let mut out = Vec::new();
    for q in queries {
        let (name, version) = q.lookup();
        let key = (q.ecosystem.clone(), normalize_name(&q.ecosystem, name));
        let Some(records) = index.get(&key) else {
            continue;
        };
        for r in records {
            let matched = r.affected.iter().find_map(|a| {
                let p = a.package.as_ref()?;
                if p.ecosystem != q.ecosystem || normalize_name(&p.ecosystem, &p.name) != key.1 {
                    return None;
                }
                osv::evaluate(a, &q.ecosystem, version).map(|v| (a, v))
            });
            let Some((affected, verdict)) = matched else {
                continue;
            };
            out.push(Finding {
                id: r.id.clone(),
                aliases: r.aliases.clone(),
                summary: r.summary.clone(),
                severity: severity(r, affected),
                package: q.name.clone(),
                source: (name != q.name).then(|| name.to_string()),
                ecosystem: q.ecosystem.clone(),
                installed: q.version.clone(),
                fixed: verdict.fixed,
                purl: q.purl.clone(),
                url: advisory_url(r),
            });
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .level
            .cmp(&a.severity.level)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

/// Whether any finding is at or above `level` (`--fail-on`).
pub fn fails(findings: &[Finding], level: Level) -> bool {
    findings.iter().any(|f| f.severity.level >= level)
}
