//! Adding a target to an existing poolwright.yaml as text.
//!
//! The file is never re-serialised: a YAML writer would drop comments and
//! reorder keys. The new target's block goes inside the `targets:` mapping
//! (the `targets:` line at column 0), after its last entry: before the next
//! line that starts at column 0 with something other than a comment, or at
//! the end of the file. Comment lines at column 0 directly above that next
//! key stay with it, and blank lines after the last entry stay after the
//! new block. The block takes the file's indentation and line endings.
//! Every byte of the old file stays, in order: the result is
//! `old[..offset] + inserted + old[offset..]`.

/// Where and how a block goes into a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// Byte offset in the old text (at the start of a line, or its end).
    pub offset: usize,
    /// The indentation of the entries under `targets:`.
    pub indent: String,
    /// The file uses CRLF line endings.
    pub crlf: bool,
    /// The file has no `targets:` line: add `version: 1` (when missing)
    /// and `targets:` at the end, for a file of comments only.
    pub header: Option<String>,
}

/// One line: its text without the ending, and the byte range it spans
/// (ending included).
struct Line<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let end = start + piece.len();
        let body = piece.strip_suffix('\n').unwrap_or(piece);
        let body = body.strip_suffix('\r').unwrap_or(body);
        out.push(Line {
            text: body,
            start,
            end,
        });
        start = end;
    }
    out
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A line that starts a top-level key (or a document marker).
fn is_top_level(line: &str) -> bool {
    line.chars()
        .next()
        .is_some_and(|c| !c.is_whitespace() && c != '#')
}

/// Where a new target goes in `text`, or why it cannot be added as text.
pub fn plan(text: &str) -> Result<Insertion, String> {
    let all = lines(text);
    let crlf = all
        .iter()
        .find(|l| text[l.start..l.end].ends_with('\n'))
        .is_some_and(|l| text[l.start..l.end].ends_with("\r\n"));
    let targets_line = all.iter().position(|l| {
        l.text.strip_prefix("targets:").is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.is_empty() || rest.starts_with('#')
        })
    });
    let Some(t) = targets_line else {
        if all.iter().any(|l| l.text.starts_with("targets")) {
            return Err(
                "its `targets:` is not a block mapping of its own lines (`targets:` alone on a line, the targets indented below)"
                    .into(),
            );
        }
        if all.iter().all(|l| is_blank(l.text) || is_comment(l.text)) {
            return Ok(Insertion {
                offset: text.len(),
                indent: "  ".into(),
                crlf,
                header: Some("version: 1\ntargets:\n".into()),
            });
        }
        let has_version = all.iter().any(|l| l.text.starts_with("version:"));
        if has_version
            && all
                .iter()
                .all(|l| is_blank(l.text) || is_comment(l.text) || l.text.starts_with("version:"))
        {
            return Ok(Insertion {
                offset: text.len(),
                indent: "  ".into(),
                crlf,
                header: Some("targets:\n".into()),
            });
        }
        return Err("it has no `targets:` line at the start of a line".into());
    };
    // The end of the targets mapping: the next top-level line, or the end.
    let next = (t + 1..all.len())
        .find(|&i| is_top_level(all[i].text))
        .unwrap_or(all.len());
    // Comments at column 0 right above the next key belong to it; blank
    // lines after the last entry stay after the new block.
    let mut end = next;
    if next < all.len() {
        while end > t + 1 && all[end - 1].text.starts_with('#') {
            end -= 1;
        }
    }
    while end > t + 1 && is_blank(all[end - 1].text) {
        end -= 1;
    }
    let indent = all[t + 1..end]
        .iter()
        .find(|l| !is_blank(l.text) && !is_comment(l.text))
        .map(|l| {
            let n = l.text.len() - l.text.trim_start_matches(' ').len();
            " ".repeat(n)
        })
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "  ".into());
    let offset = if end == 0 { 0 } else { all[end - 1].end };
    Ok(Insertion {
        offset,
        indent,
        crlf,
        header: None,
    })
}

/// `text` with `block` (a target at two-space indentation, `\n` endings)
/// inserted as planned.
pub fn apply(text: &str, at: &Insertion, block: &str) -> String {
    let (before, after) = text.split_at(at.offset);
    let mut inserted = String::new();
    if !before.is_empty() && !before.ends_with('\n') {
        inserted.push('\n');
    }
    if let Some(header) = &at.header {
        if !before.is_empty() && !before.ends_with("\n\n") {
            inserted.push('\n');
        }
        inserted.push_str(header);
    } else {
        // A blank line between the last target and the new one, unless the
        // mapping was empty.
        let last = before.trim_end_matches(['\n', '\r']);
        let last_line = last.rsplit('\n').next().unwrap_or("");
        if !last_line.starts_with("targets:") {
            inserted.push('\n');
        }
    }
    // The block is in steps of two spaces; the file's step may differ.
    for line in block.split_inclusive('\n') {
        let rest = line.trim_start_matches(' ');
        let depth = (line.len() - rest.len()) / 2;
        if !rest.trim().is_empty() {
            inserted.push_str(&at.indent.repeat(depth));
        }
        inserted.push_str(rest);
    }
    if !inserted.ends_with('\n') {
        inserted.push('\n');
    }
    if at.crlf {
        inserted = inserted.replace('\n', "\r\n");
    }
    format!("{before}{inserted}{after}")
}

/// The target names under `targets:` in `text` (by the YAML tree; empty
/// when the file does not parse).
pub fn target_names(text: &str) -> Vec<String> {
    use crate::yaml::node::{self as yaml, Value};
    let Ok(root) = yaml::parse(std::path::Path::new("poolwright.yaml"), text) else {
        return Vec::new();
    };
    let Value::Map(top) = &root.value else {
        return Vec::new();
    };
    top.iter()
        .filter(|(k, _)| k.name == "targets")
        .flat_map(|(_, v)| match &v.value {
            Value::Map(entries) => entries.iter().map(|(k, _)| k.name.clone()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "  new:\n    provider: neon\n";

    fn insert(text: &str) -> String {
        let at = plan(text).unwrap();
        let out = apply(text, &at, BLOCK);
        assert_eq!(&out[..at.offset], &text[..at.offset]);
        assert!(out.ends_with(&text[at.offset..]));
        out
    }

    #[test]
    fn appends_at_the_end_of_the_targets_mapping() {
        let text = "version: 1\ntargets:\n  prod:\n    provider: pgbouncer # here\n";
        assert_eq!(
            insert(text),
            "version: 1\ntargets:\n  prod:\n    provider: pgbouncer # here\n\n  new:\n    provider: neon\n"
        );
    }

    #[test]
    fn goes_before_the_next_top_level_key_and_its_comments() {
        let text = "targets:\n    prod: {}\n\n# about x\nx: 1\n";
        assert_eq!(
            insert(text),
            "targets:\n    prod: {}\n\n    new:\n        provider: neon\n\n# about x\nx: 1\n"
        );
    }

    #[test]
    fn keeps_crlf_and_a_missing_final_newline() {
        let text = "version: 1\r\ntargets:\r\n  prod: {}";
        assert_eq!(
            insert(text),
            "version: 1\r\ntargets:\r\n  prod: {}\r\n\r\n  new:\r\n    provider: neon\r\n"
        );
    }

    #[test]
    fn a_file_of_comments_gets_the_header() {
        assert_eq!(
            insert("# mine\n"),
            "# mine\n\nversion: 1\ntargets:\n  new:\n    provider: neon\n"
        );
        assert!(plan("targets: { a: {} }\n").is_err());
        assert!(plan("other: 1\n").is_err());
    }

    #[test]
    fn lists_target_names() {
        assert_eq!(
            target_names("version: 1\ntargets:\n  a: {}\n  \"b c\": {}\n"),
            ["a", "b c"]
        );
    }
}
