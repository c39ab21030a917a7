//! The one error type of this crate: where (line and column), what, the
//! offending text, and a hint when one helps.

use std::fmt;

use crate::lines::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub span: Span,
    pub message: String,
    /// The instruction as written (first physical line), when known.
    pub snippet: Option<String>,
    /// What to do instead, e.g. "did you mean RUN?".
    pub hint: Option<String>,
}

impl Error {
    pub fn new(span: Span, message: impl Into<String>) -> Error {
        Error {
            span,
            message: message.into(),
            snippet: None,
            hint: None,
        }
    }

    /// A Dockerfile that does not parse or expand is the user's to fix.
    pub fn kind(&self) -> kiln_core::ErrorKind {
        kiln_core::ErrorKind::InvalidInput
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_snippet(mut self, snippet: impl Into<String>) -> Error {
        if self.snippet.is_none() {
            self.snippet = Some(snippet.into());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dockerfile:{}:{}: {}",
            self.span.line, self.span.col, self.message
        )?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n  {:>4} | {}", self.span.line, snippet)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Levenshtein distance, for "did you mean" hints on short names.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate nearest to `word` (case-insensitive), if it is close.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_uppercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_uppercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1) + usize::from(c.len() > 6))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_pick_the_nearest_name() {
        let all = ["RUN", "COPY", "ENTRYPOINT", "WORKDIR", "HEALTHCHECK"];
        assert_eq!(nearest("RUNN", &all), Some("RUN"));
        assert_eq!(nearest("cpy", &all), Some("COPY"));
        assert_eq!(nearest("ENTRYPIONT", &all), Some("ENTRYPOINT"));
        assert_eq!(nearest("WORKDR", &all), Some("WORKDIR"));
        assert_eq!(nearest("XYZZY", &all), None);
    }
}
