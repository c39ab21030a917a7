//! The interactive explorer (in progress).

use crate::analysis::Analysis;
use crate::error::{AnalyzeError, Result};

/// Runs the explorer on the terminal.
pub fn run(_analysis: &Analysis) -> Result<()> {
    Err(AnalyzeError::Usage(
        "the explorer is not built yet: use --format text or --format json".into(),
    ))
}
