//! syft's table (NAME, VERSION, TYPE) with kiln's LAYER and STEP columns:
//! the layer that installed each package and its Dockerfile step.

use crate::Sbom;

/// Steps longer than this are cut (with `…`) so a row stays one line.
const STEP_WIDTH: usize = 60;

fn short_step(step: &str) -> String {
    let s = step
        .strip_prefix("/bin/sh -c #(nop) ")
        .or_else(|| step.strip_prefix("/bin/sh -c "))
        .unwrap_or(step)
        .replace(['\n', '\t'], " ");
    if s.chars().count() > STEP_WIDTH {
        let mut t: String = s.chars().take(STEP_WIDTH - 1).collect();
        t.push('…');
        t
    } else {
        s
    }
}

pub fn render(sbom: &Sbom) -> String {
    if sbom.packages.is_empty() {
        return "No packages discovered\n".to_string();
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".to_string(),
        "TYPE".to_string(),
        "LAYER".to_string(),
        "STEP".to_string(),
    ]];
    let mut seen = std::collections::BTreeSet::new();
    for p in &sbom.packages {
        let row = [
            p.name.clone(),
            p.version.clone(),
            p.ptype.as_str().to_string(),
            p.layer.to_string(),
            short_step(&p.step),
        ];
        // syft's table lists a package once however many files hold it.
        if seen.insert(row.clone()) {
            rows.push(row);
        }
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
