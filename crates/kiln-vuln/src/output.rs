//! Reports of findings: a table grouped by severity (grype's columns,
//! one section per level), JSON (kiln's own document), SARIF 2.1.0 (one
//! rule per vulnerability id, one result per affected package, for code
//! scanning dashboards).

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::scan::{Finding, Level};

const LEVELS: [Level; 5] = [
    Level::Critical,
    Level::High,
    Level::Medium,
    Level::Low,
    Level::Unknown,
];

fn fixed(f: &Finding) -> String {
    if f.fixed.is_empty() {
        "(no fix)".into()
    } else {
        f.fixed.join(", ")
    }
}

fn id(f: &Finding) -> String {
    if f.aliases.is_empty() {
        f.id.clone()
    } else {
        format!("{} ({})", f.id, f.aliases.join(", "))
    }
}

/// The table: a heading per level (`CRITICAL (2)`), then aligned rows of
/// package, installed version, fixed version and id (aliases in
/// parentheses). `scanned`: how many packages were looked up.
pub fn table(findings: &[Finding], scanned: usize) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        let _ = writeln!(out, "No vulnerabilities found in {scanned} packages.");
        return out;
    }
    let head = ["PACKAGE", "INSTALLED", "FIXED IN", "VULNERABILITY"];
    let rows: Vec<[String; 4]> = findings
        .iter()
        .map(|f| {
            let pkg = match &f.source {
                Some(s) => format!("{} (source {s})", f.package),
                None => f.package.clone(),
            };
            [pkg, f.installed.clone(), fixed(f), id(f)]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: [&str; 4]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 3 {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}   ", w = width[i]);
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    for level in LEVELS {
        let group: Vec<usize> = (0..findings.len())
            .filter(|&i| findings[i].severity.level == level)
            .collect();
        if group.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{} ({})", level.as_str().to_uppercase(), group.len());
        line(&mut out, head);
        for i in group {
            let r = &rows[i];
            line(&mut out, [&r[0], &r[1], &r[2], &r[3]]);
        }
    }
    let counts: Vec<String> = LEVELS
        .iter()
        .map(|l| {
            let n = findings.iter().filter(|f| f.severity.level == *l).count();
            format!("{n} {}", l.as_str())
        })
        .collect();
    let _ = writeln!(
        out,
        "\n{} vulnerabilities in {scanned} packages: {}",
        findings.len(),
        counts.join(", ")
    );
    out
}

/// kiln's JSON report: `{"matches": [...], "summary": {level: n}}`.
pub fn json(findings: &[Finding], scanned: usize) -> Value {
    let mut summary = serde_json::Map::new();
    for l in LEVELS {
        let n = findings.iter().filter(|f| f.severity.level == l).count();
        summary.insert(l.as_str().into(), n.into());
    }
    json!({
        "packages": scanned,
        "matches": findings,
        "summary": summary,
    })
}

/// SARIF 2.1.0: `level` error for critical/high, warning for medium,
/// note below; `security-severity` carries the CVSS score (or the level's
/// band floor) for dashboards that sort by it. `target`: what was scanned
/// (an image reference or the SBOM's path), the result's location.
pub fn sarif(findings: &[Finding], target: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in findings {
        if !seen.insert(f.id.clone()) {
            continue;
        }
        let text = f.summary.clone().unwrap_or_else(|| id(f));
        rules.push(json!({
            "id": f.id,
            "name": f.id.replace(['-', ':'], ""),
            "shortDescription": {"text": text},
            "helpUri": f.url,
            "properties": {
                "security-severity": security_severity(f),
                "tags": ["security", "vulnerability", f.severity.level.as_str()],
            },
        }));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let level = match f.severity.level {
                Level::Critical | Level::High => "error",
                Level::Medium => "warning",
                Level::Low | Level::Unknown => "note",
            };
            let message = format!(
                "{} {} in {} {} ({}); fixed in {}",
                f.severity.level.as_str(),
                id(f),
                f.package,
                f.installed,
                f.ecosystem,
                fixed(f)
            );
            json!({
                "ruleId": f.id,
                "level": level,
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": target}},
                    "logicalLocations": [{
                        "name": f.package,
                        "fullyQualifiedName": f.purl.clone().unwrap_or_else(|| f.package.clone()),
                        "kind": "package",
                    }],
                }],
                "partialFingerprints": {
                    "kilnVuln/v1": format!("{}:{}:{}", f.id, f.package, f.installed),
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kiln",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn security_severity(f: &Finding) -> String {
    let score = f.severity.score.unwrap_or(match f.severity.level {
        Level::Critical => 9.0,
        Level::High => 7.0,
        Level::Medium => 4.0,
        Level::Low => 0.1,
        Level::Unknown => 0.0,
    });
    format!("{score:.1}")
}
