//! The analysis as text: the report `kiln image analyze` prints when its
//! output is not a terminal, and the few lines `kiln build` prints after
//! an image is named.

use std::fmt::Write as _;

use crate::analysis::Analysis;
use crate::humanize::bytes;

/// A step's command on one line, shortened to `max` characters.
fn short(step: &str, max: usize) -> String {
    // `RUN /bin/sh -c cmd # buildkit` reads as `RUN cmd`.
    let step = step.strip_suffix(" # buildkit").unwrap_or(step);
    let step = match step.strip_prefix("RUN /bin/sh -c ") {
        Some(cmd) => format!("RUN {cmd}"),
        None => step.strip_prefix("/bin/sh -c ").unwrap_or(step).to_string(),
    };
    let one: String = step.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        one
    } else {
        let cut: String = one.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `efficiency 87.5 %, 12 MB wasted (25.0 % of the layers above the base)`.
pub fn one_line(a: &Analysis) -> String {
    let user = if a.wasted_user_percent.is_finite() {
        format!(
            " ({:.1} % of the bytes the build added)",
            a.wasted_user_percent * 100.0
        )
    } else {
        String::new()
    };
    format!(
        "efficiency {:.1} %, {} wasted{user}",
        a.efficiency.score * 100.0,
        bytes(a.wasted_bytes)
    )
}

/// The `n` largest waste groups, one line each with the steps and a fix
/// on the next.
pub fn top_waste(a: &Analysis, n: usize) -> Vec<String> {
    a.waste
        .groups
        .iter()
        .take(n)
        .map(|g| {
            let added = short(a.step(g.added_in), 60);
            let how = match g.removed_in {
                Some(r) => format!("added by `{added}`, removed by `{}`", short(a.step(r), 60)),
                None => format!("added by `{added}`, still in the image"),
            };
            let files = if g.files == 1 {
                String::new()
            } else {
                format!(" ({} files)", g.files)
            };
            format!(
                "{:>8}  {}{files} [{}]: {how}\n          fix: {}",
                bytes(g.bytes),
                g.path,
                g.cause.label(),
                g.cause.fix(g.removed_in.is_some())
            )
        })
        .collect()
}

/// The full text report.
pub fn text_report(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Image: {}", a.name);
    let _ = writeln!(out, "Layers:");
    let _ = writeln!(out, "  {:>3}  {:>9}  COMMAND", "#", "SIZE");
    for l in &a.layers {
        let _ = writeln!(
            out,
            "  {:>3}  {:>9}  {}",
            l.index,
            bytes(l.size),
            short(&l.created_by, 100)
        );
    }
    let _ = writeln!(out, "Total Image size: {}", bytes(a.size_bytes));
    let _ = writeln!(out, "Potential wasted space: {}", bytes(a.wasted_bytes));
    let _ = writeln!(
        out,
        "Image efficiency score: {:.0} %",
        a.efficiency.score * 100.0
    );
    let _ = writeln!(out, "Inefficient files (dive):");
    let _ = writeln!(out, "  {:>5}  {:>12}  PATH", "COUNT", "TOTAL SPACE");
    if a.efficiency.inefficient.is_empty() {
        let _ = writeln!(out, "  None");
    }
    for p in &a.efficiency.inefficient {
        let _ = writeln!(
            out,
            "  {:>5}  {:>12}  {}",
            p.layers.len(),
            bytes(u64::try_from(p.cumulative).unwrap_or(0)),
            p.path
        );
    }
    let _ = writeln!(out, "Waste by cause: {} in all", bytes(a.waste.total));
    for (cause, b) in &a.waste.by_cause {
        let _ = writeln!(out, "  {:>8}  {}", bytes(*b), cause.label());
    }
    if !a.waste.groups.is_empty() {
        let _ = writeln!(out, "Largest waste:");
        for line in top_waste(a, 10) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
