//! Printing reports: docker's `--check` text (buildx's summary line and
//! BuildKit's warning blocks with the source lines), BuildKit's lint
//! result JSON, and SARIF 2.1.0 for code-scanning tools.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::report::Report;
use crate::rules::{Level, ALL};

/// BuildKit's source excerpt (`errdefs.Source.Print`): the lines the
/// ranges cover, marked `>>>`, padded with context.
fn print_source(out: &mut String, filename: &str, data: &str, ranges: &[(usize, usize)]) {
    let lines: Vec<&str> = data.split('\n').collect();
    let (Some(mut start), Some(mut end)) = (
        ranges.iter().map(|r| r.0).min(),
        ranges.iter().map(|r| r.0.max(r.1)).max(),
    ) else {
        return;
    };
    if start > lines.len() || start < 1 {
        return;
    }
    end = end.min(lines.len());
    let pad = if end == start { 4 } else { 2 };
    let first = start;
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let _ = write!(out, "{filename}:{first}\n--------------------\n");
    for i in start..=end {
        let marked = ranges.iter().any(|r| r.0 <= i && r.0.max(r.1) >= i);
        let pfx = if marked { ">>>" } else { "   " };
        let _ = writeln!(out, " {i:3} | {pfx} {}", lines[i - 1]);
    }
    out.push_str("--------------------\n");
}

/// docker's `build --check` text for the reports together.
pub fn text(reports: &[Report]) -> String {
    let mut out = String::new();
    let count: usize = reports.iter().map(|r| r.warnings.len()).sum();
    match count {
        0 => {}
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => {
            let _ = writeln!(out, "Check complete, {n} warnings have been found!");
        }
    }
    for r in reports {
        for w in &r.warnings {
            let _ = write!(out, "\nWARNING: {}", w.rule.name);
            if !w.rule.url.is_empty() {
                let _ = write!(out, " - {}", w.rule.url);
            }
            let _ = writeln!(out, "\n{}", w.detail);
            print_source(&mut out, &r.filename, &r.source, &w.ranges);
        }
    }
    let errors: Vec<&Report> = reports
        .iter()
        .filter(|r| r.error.is_some() || r.buildkit_error)
        .collect();
    for r in &errors {
        if count > 0 {
            out.push('\n');
        }
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{}", e.message);
            print_source(&mut out, &r.filename, &r.source, &[(e.line, e.line)]);
        } else if let Some(m) = r.violation_message() {
            let _ = writeln!(out, "ERROR: {m}");
        }
    }
    if count == 0 && errors.is_empty() {
        out.push_str("Check complete, no warnings found.\n");
    }
    out
}

/// The one-line form BuildKit's build output uses
/// (`linter.LintFormatShort`): `Rule: message (line N)`.
pub fn short(reports: &[Report]) -> Vec<String> {
    let mut out = Vec::new();
    for r in reports {
        for w in &r.warnings {
            let mut m = format!("{}: {}", w.rule.name, w.detail);
            if w.line() > 0 {
                let _ = write!(m, " (line {})", w.line());
            }
            out.push(m);
        }
    }
    out
}

fn ranges_json(ranges: &[(usize, usize)]) -> Value {
    Value::Array(
        ranges
            .iter()
            .map(|(s, e)| json!({"start": {"line": s}, "end": {"line": e}}))
            .collect(),
    )
}

/// Protobuf's JSON leaves a zero source index out.
fn location(index: usize, ranges: &[(usize, usize)]) -> Value {
    let mut loc = json!({ "ranges": ranges_json(ranges) });
    if index > 0 {
        loc["sourceIndex"] = json!(index);
    }
    loc
}

/// BuildKit's lint result (`subrequests/lint.LintResults`): warnings with
/// rule name, description, URL, detail and location into `sources`. kiln
/// adds each warning's `level`.
pub fn json(reports: &[Report]) -> Value {
    let mut warnings = Vec::new();
    let mut sources = Vec::new();
    let mut build_error = Value::Null;
    for (index, r) in reports.iter().enumerate() {
        sources.push(json!({
            "filename": r.filename,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(r.source.as_bytes()),
        }));
        for w in &r.warnings {
            let mut item = json!({
                "ruleName": w.rule.name,
                "description": w.rule.description,
                "detail": w.detail,
                "level": w.level.as_str(),
                "location": location(index, &w.ranges),
            });
            if !w.rule.url.is_empty() {
                item["url"] = json!(w.rule.url);
            }
            warnings.push(item);
        }
        if build_error.is_null() {
            if let Some(e) = &r.error {
                build_error =
                    json!({"message": e.message, "location": location(index, &[(e.line, e.line)])});
            } else if let Some(m) = r.violation_message() {
                build_error = json!({"message": m, "location": location(index, &[])});
            }
        }
    }
    let mut doc = json!({ "warnings": warnings, "sources": sources });
    if !build_error.is_null() {
        doc["buildError"] = build_error;
    }
    doc
}

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info | Level::Style => "note",
    }
}

/// SARIF 2.1.0: one run of the `kiln lint` tool, every rule in the
/// driver, one result per warning located in its file.
pub fn sarif(reports: &[Report]) -> Value {
    let rules: Vec<Value> = ALL
        .iter()
        .map(|r| {
            let mut rule = json!({
                "id": r.name,
                "name": r.name,
                "shortDescription": {"text": r.description},
                "defaultConfiguration": {"level": sarif_level(r.level)},
                "properties": {"origin": r.origin},
            });
            if !r.url.is_empty() {
                rule["helpUri"] = json!(r.url);
            }
            rule
        })
        .collect();
    let mut results = Vec::new();
    for r in reports {
        let uri = if r.filename == "-" {
            "Dockerfile"
        } else {
            &r.filename
        };
        for w in &r.warnings {
            let index = ALL.iter().position(|x| x.name == w.rule.name).unwrap_or(0);
            let mut result = json!({
                "ruleId": w.rule.name,
                "ruleIndex": index,
                "level": sarif_level(w.level),
                "message": {"text": w.detail},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
            });
            if let (Some(s), Some(e)) = (
                w.ranges.iter().map(|r| r.0).min(),
                w.ranges.iter().map(|r| r.1).max(),
            ) {
                result["locations"][0]["physicalLocation"]["region"] =
                    json!({"startLine": s, "endLine": e});
            }
            results.push(result);
        }
        if let Some(e) = &r.error {
            results.push(json!({
                "ruleId": "BuildError",
                "level": "error",
                "message": {"text": e.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": e.line.max(1)}
                }}],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kiln lint",
                "informationUri": "https://docs.docker.com/reference/build-checks/",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
