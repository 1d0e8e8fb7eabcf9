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
        let _ = writeln!(out, "error: {}", printable(&self.message));
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
            let field = printable(&self.field);
            let _ = writeln!(out, "  --> {location} (field `{field}`)");
        }
        if let Some(line) = source.and_then(|s| s.lines().nth(self.span.line.wrapping_sub(1))) {
            let number = self.span.line.to_string();
            let pad = " ".repeat(number.len());
            let (shown, caret_at, caret_width) =
                snippet(line, self.span.column.saturating_sub(1), self.span.width);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {shown}");
            let indent = " ".repeat(caret_at);
            let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(caret_width));
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {}", printable(note));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {}", printable(hint));
        }
        out
    }
}

/// `text` with control characters escaped (`\0`, `\n`, `\u{1b}`): messages
/// quote names and values from the file, and a raw escape sequence or line
/// break there could repaint the terminal or forge a line of output.
/// Line and paragraph separators and the bidirectional controls are
/// escaped too: they break lines or reorder text on a terminal.
pub fn printable(text: &str) -> String {
    if !text.chars().any(unprintable) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else if unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// At most this many characters of a source line are shown.
const SNIPPET_CHARS: usize = 100;

/// The part of `line` to show under a diagnostic, and where the caret goes
/// in it (`column` 0-based, in characters). Control characters become `�`
/// and tabs a space, one character each, so the caret stays aligned; a long
/// line (a minified or generated file) is cut to a window around the column.
fn snippet(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    if chars.len() <= SNIPPET_CHARS {
        return (chars.into_iter().collect(), column, width);
    }
    let start = column.saturating_sub(SNIPPET_CHARS / 4).min(chars.len());
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut shown = String::new();
    let mut caret_at = column - start;
    if start > 0 {
        shown.push_str("...");
        caret_at += 3;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push_str("...");
    }
    let caret_width = width.min(end.saturating_sub(column)).max(1);
    (shown, caret_at, caret_width)
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
    #[test]
    fn never_prints_control_characters_raw() {
        let d = Diagnostic::new(
            Path::new("p.yaml"),
            Span::new(1, 4, 1),
            "a\u{1b}[2J",
            "unknown key `a\u{1b}[2J\nforged`",
        );
        let text = d.render(Some("\"a\0\": 1\n"));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains("unknown key `a\\u{1b}[2J\\nforged`"),
            "{text}"
        );
        assert!(text.contains("1 | \"a\u{FFFD}\": 1\n"), "{text}");
    }

    #[test]
    fn cuts_long_lines_to_a_window_around_the_column() {
        let line = format!("k: {}x{}", "[".repeat(500), "]".repeat(500));
        let d = Diagnostic::new(Path::new("p.yaml"), Span::new(1, 504, 1), "k", "bad");
        let text = d.render(Some(&line));
        let shown = text.lines().nth(3).unwrap();
        let caret = text.lines().nth(4).unwrap();
        assert!(shown.len() < 120, "{shown}");
        assert!(
            shown.starts_with("1 | ...[") && shown.ends_with("]..."),
            "{shown}"
        );
        // The caret is under the `x`.
        assert_eq!(
            shown.chars().nth(caret.find('^').unwrap()),
            Some('x'),
            "{text}"
        );
    }
}
