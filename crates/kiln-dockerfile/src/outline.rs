//! A compact text view of a parsed Dockerfile, one line per instruction
//! (the instruction's JSON), for `kiln dockerfile parse` and snapshots.

use std::fmt::Write;

use crate::model::{Dockerfile, Instruction};

fn instruction_line(out: &mut String, i: &Instruction) {
    let json = serde_json::to_string(&i.command).unwrap_or_default();
    let _ = writeln!(out, "  {:>4}: {json}", i.span.line);
}

impl Dockerfile {
    /// Directives, global ARGs, then each stage and its instructions.
    pub fn outline(&self) -> String {
        let mut out = String::new();
        let d = &self.directives;
        let _ = writeln!(
            out,
            "directives: escape={:?} syntax={:?} check={:?}",
            d.escape, d.syntax, d.check
        );
        for a in &self.global_args {
            let _ = writeln!(
                out,
                "global ARG {}{}",
                a.name,
                a.default
                    .as_ref()
                    .map(|d| format!("={d}"))
                    .unwrap_or_default()
            );
        }
        for s in &self.stages {
            let _ = writeln!(
                out,
                "stage {} name={:?} base={:?} platform={:?} (line {})",
                s.index, s.name, s.base, s.platform, s.span.line
            );
            for i in &s.instructions {
                instruction_line(&mut out, i);
            }
        }
        out
    }
}

/// The same line format for instructions outside a [`Dockerfile`] (an
/// expanded stage, say).
pub fn outline_instructions(instructions: &[Instruction]) -> String {
    let mut out = String::new();
    for i in instructions {
        instruction_line(&mut out, i);
    }
    out
}
