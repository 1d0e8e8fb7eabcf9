//! Problems found in the user's input, each pointing at a place in a file.
//!
//! A [`Diagnostic`] names the file, line, column and config field, says what is
//! wrong and, where we can tell, how to fix it. Loading and validation collect
//! every diagnostic they find so one run reports all problems, not the first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A position in a source file: 1-based line and column (in characters), and
/// the width of the token to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub width: usize,
}

impl Span {
    pub fn new(line: usize, column: usize, width: usize) -> Span {
        Span {
            line,
            column,
            width: width.max(1),
        }
    }
}

/// One problem in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    #[serde(flatten)]
    pub span: Span,
    /// Dotted path of the config field, e.g. `targets.prod.pgbouncer.pool_mode`.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(
        file: &Path,
        span: Span,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            span,
            field: field.into(),
            message: message.into(),
            notes: Vec::new(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Renders the diagnostic as text, with the offending source line and a
    /// caret under the token when `source` is given.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let location = format!(
            "{}:{}:{}",
            self.file.display(),
            self.span.line,
            self.span.column
        );
        if self.field.is_empty() {
            let _ = writeln!(out, "  --> {location}");
        } else {
            // A field path may hold a hostile key: never print control characters raw.
            let field: String = self
                .field
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            let _ = writeln!(out, "  --> {location} (field `{field}`)");
        }
        if let Some(line) = source.and_then(|s| s.lines().nth(self.span.line.wrapping_sub(1))) {
            let number = self.span.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs would shift the caret; show the line as the user sees it
            // with tabs widened to one space so the caret stays aligned.
            let shown: String = line
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {shown}");
            let indent = " ".repeat(self.span.column.saturating_sub(1));
            let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(self.span.width));
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {note}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Every diagnostic of one run, with the source text they point into.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub source: Option<String>,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&d.render(self.source.as_deref()));
            out.push('\n');
        }
        let n = self.items.len();
        if let Some(first) = self.items.first() {
            let _ = writeln!(
                out,
                "error: {n} problem{} in {}",
                if n == 1 { "" } else { "s" },
                first.file.display()
            );
        }
        out
    }
}

/// The closest candidate to `input`, for "did you mean" hints.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_the_token() {
        let d = Diagnostic::new(Path::new("p.yaml"), Span::new(2, 3, 4), "a.b", "bad")
            .with_hint("fix it");
        let text = d.render(Some("x: 1\n  abcd: 2\n"));
        assert_eq!(
            text,
            "error: bad\n  --> p.yaml:2:3 (field `a.b`)\n  |\n2 |   abcd: 2\n  |   ^^^^\n  = hint: fix it\n"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("pool_mod", ["pool_mode", "listen_port"]),
            Some("pool_mode")
        );
        assert_eq!(did_you_mean("zzz", ["pool_mode", "listen_port"]), None);
    }
}
