//! Merging keys into a `.env` file without disturbing anything else.
//!
//! The file is handled as lines, each kept with its own line ending. A line
//! that assigns a key we are asked to set gets its value replaced in place:
//! its `export` prefix, its quoting style, its spacing and a trailing comment
//! stay. Keys we add go at the end, each under a marker comment
//! `# poolwright: target NAME`; the marker is how poolwright knows it owns a
//! line, so that a key it wrote for a target that no longer exists (or that
//! is no longer wanted) can be removed later. A line a person wrote is never
//! removed, and every line not touched stays byte for byte. A marker with
//! no assignment under it is removed: left alone, it would take ownership
//! of the next line a person wrote.

/// The comment above every line poolwright added.
const MARKER: &str = "# poolwright: target ";

/// One line, split from its line ending so edits keep the ending.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line<'a> {
    text: &'a str,
    ending: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, ending, next) = match rest.find('\n') {
            Some(i) if i > 0 && rest.as_bytes()[i - 1] == b'\r' => {
                (&rest[..i - 1], &rest[i - 1..=i], &rest[i + 1..])
            }
            Some(i) => (&rest[..i], &rest[i..=i], &rest[i + 1..]),
            None => (rest, "", ""),
        };
        out.push(Line { text: line, ending });
        rest = next;
    }
    out
}

/// Shows a value's length only: values in a .env are URLs with passwords
/// and the user's own secrets, which `{:?}` (a failed assertion, a debug
/// log) must not print.
pub struct Redacted<'a>(pub &'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0.len())
    }
}

/// An assignment line, cut into the parts we keep and the value we replace.
#[derive(Clone, PartialEq, Eq)]
struct Assignment<'a> {
    /// Everything up to and including `=` (indent, `export `, key, spaces).
    head: &'a str,
    key: &'a str,
    quote: Option<char>,
    value: String,
    /// What follows the value (closing quote excluded): spaces, a comment.
    tail: &'a str,
}

impl std::fmt::Debug for Assignment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assignment")
            .field("head", &self.head)
            .field("key", &self.key)
            .field("quote", &self.quote)
            .field("value", &Redacted(&self.value))
            .field("tail", &self.tail)
            .finish()
    }
}

fn parse_assignment(line: &str) -> Option<Assignment<'_>> {
    let trimmed = line.trim_start();
    let after_export = trimmed
        .strip_prefix("export")
        .filter(|r| r.starts_with([' ', '\t']))
        .map_or(trimmed, str::trim_start);
    let key_start = line.len() - after_export.len();
    let key_len = after_export
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(after_export.len());
    if key_len == 0 || after_export[..1].chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let key = &line[key_start..key_start + key_len];
    let after_key = &line[key_start + key_len..];
    let eq = after_key.trim_start_matches([' ', '\t']);
    let rest = eq.strip_prefix('=')?;
    let value_start = line.len() - rest.len();
    let head_end = value_start + (rest.len() - rest.trim_start_matches([' ', '\t']).len());
    let head = &line[..head_end];
    let body = &line[head_end..];
    match body.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let inner = &body[1..];
            let close = find_closing(inner, q)?;
            let raw = &inner[..close];
            let value = if q == '"' {
                unescape_double(raw)
            } else {
                raw.to_string()
            };
            Some(Assignment {
                head,
                key,
                quote: Some(q),
                value,
                tail: &inner[close + 1..],
            })
        }
        _ => {
            // An unquoted value ends at ` #` (a comment) or at the end.
            let end = body
                .find(" #")
                .or_else(|| body.find("\t#"))
                .unwrap_or(body.len());
            let value = body[..end].trim_end();
            Some(Assignment {
                head,
                key,
                quote: None,
                value: value.to_string(),
                tail: &body[value.len()..],
            })
        }
    }
}

fn find_closing(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

fn unescape_double(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `value` written in the given quoting style (switching to double quotes
/// when the style cannot hold it).
pub fn write_value(value: &str, quote: Option<char>) -> String {
    let plain_ok = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '\\' | '$' | '`'));
    match quote {
        None if plain_ok || value.is_empty() => value.to_string(),
        // Single quotes have no escapes: a line break would end the line.
        Some('\'') if !value.contains(['\'', '\n']) => format!("'{value}'"),
        _ => {
            let mut out = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' | '\\' | '$' | '`' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' => out.push_str("\\n"),
                    _ => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

/// What a merge did to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        key: String,
    },
    /// `old` is the previous value, for a masked report.
    Replaced {
        key: String,
        old: String,
    },
    Unchanged {
        key: String,
    },
    /// A line poolwright owned for a target or key no longer wanted.
    Removed {
        key: String,
        target: String,
    },
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub changes: Vec<Change>,
}

/// Merges `set` (key, value) for `target` into `text`. A poolwright-owned
/// line whose target is not in `targets`, or which belongs to `target` but
/// whose key is not in `set`, is removed with its marker. `note` goes on the
/// markers of `target` after its name (e.g. `(driver prisma)`), so later
/// runs can tell how a value was made.
pub fn merge(
    text: &str,
    target: &str,
    note: &str,
    set: &[(&str, &str)],
    targets: &[&str],
) -> Merged {
    let marker = if note.is_empty() {
        format!("{MARKER}{target}")
    } else {
        format!("{MARKER}{target} {note}")
    };
    let all = lines(text);
    let ending = all
        .iter()
        .find(|l| !l.ending.is_empty())
        .map_or("\n", |l| l.ending);
    let mut out: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let line = &all[i];
        // A marker and the assignment under it: ours to remove if stale.
        if let Some(rest) = line.text.strip_prefix(MARKER) {
            let owner = rest.split_whitespace().next().unwrap_or("");
            if let Some(next) = all.get(i + 1)
                && let Some(a) = parse_assignment(next.text)
            {
                let stale_target = !targets.contains(&owner);
                let unwanted_key = owner == target && !set.iter().any(|(k, _)| *k == a.key);
                if stale_target || unwanted_key {
                    changes.push(Change::Removed {
                        key: a.key.to_string(),
                        target: owner.to_string(),
                    });
                    i += 2;
                    continue;
                }
                // Our own marker: keep its note current.
                if owner == target && line.text != marker {
                    out.push(format!("{marker}{}", line.ending));
                    i += 1;
                    continue;
                }
            } else {
                // A marker with no assignment under it (someone deleted the
                // line) is our debris: kept, it would adopt whatever line
                // comes to follow it, and a later run would delete that.
                i += 1;
                continue;
            }
        }
        match parse_assignment(line.text)
            .and_then(|a| set.iter().find(|(k, _)| *k == a.key).map(|(_, v)| (a, *v)))
        {
            Some((a, value)) => {
                seen.push(a.key);
                if a.value == value {
                    changes.push(Change::Unchanged {
                        key: a.key.to_string(),
                    });
                    out.push(format!("{}{}", line.text, line.ending));
                } else {
                    changes.push(Change::Replaced {
                        key: a.key.to_string(),
                        old: a.value.clone(),
                    });
                    // An empty unquoted value before a comment would make
                    // the comment the value: quote it.
                    let quote = match a.quote {
                        None if value.is_empty() && !a.tail.is_empty() => Some('"'),
                        q => q,
                    };
                    out.push(format!(
                        "{}{}{}{}",
                        a.head,
                        write_value(value, quote),
                        a.tail,
                        line.ending
                    ));
                }
            }
            None => out.push(format!("{}{}", line.text, line.ending)),
        }
        i += 1;
    }
    let missing: Vec<&(&str, &str)> = set.iter().filter(|(k, _)| !seen.contains(k)).collect();
    if !missing.is_empty() {
        if let Some(last) = out.last_mut()
            && !last.ends_with('\n')
        {
            last.push_str(ending);
        }
        for (key, value) in missing {
            out.push(format!("{marker}{ending}"));
            out.push(format!("{key}={}{ending}", write_value(value, None)));
            changes.push(Change::Added {
                key: (*key).to_string(),
            });
        }
    }
    // Report keys in the order they were asked for.
    changes.sort_by_key(|c| match c {
        Change::Added { key } | Change::Replaced { key, .. } | Change::Unchanged { key } => {
            set.iter().position(|(k, _)| k == key).unwrap_or(usize::MAX)
        }
        Change::Removed { .. } => usize::MAX,
    });
    changes.dedup();
    Merged {
        text: out.concat(),
        changes,
    }
}

/// A line poolwright owns: its target, the note on its marker, key, value.
#[derive(Clone, PartialEq, Eq)]
pub struct Owned {
    pub target: String,
    pub note: String,
    pub key: String,
    pub value: String,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned")
            .field("target", &self.target)
            .field("note", &self.note)
            .field("key", &self.key)
            .field("value", &Redacted(&self.value))
            .finish()
    }
}

/// Every poolwright-owned assignment in `text`.
pub fn owned(text: &str) -> Vec<Owned> {
    let all = lines(text);
    all.windows(2)
        .filter_map(|pair| {
            let rest = pair[0].text.strip_prefix(MARKER)?;
            let a = parse_assignment(pair[1].text)?;
            let (target, note) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Owned {
                target: target.to_string(),
                note: note.trim().to_string(),
                key: a.key.to_string(),
                value: a.value,
            })
        })
        .collect()
}

/// The values assigned to `key` in `text`, as a dotenv reader sees them.
pub fn values_of(text: &str, key: &str) -> Vec<String> {
    lines(text)
        .iter()
        .filter_map(|l| parse_assignment(l.text))
        .filter(|a| a.key == key)
        .map(|a| a.value)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_formatting_never_shows_values() {
        let line = "export DATABASE_URL='postgresql://app:d3bug-pw@h/db'  # mine";
        let assignment = parse_assignment(line).expect("an assignment");
        let owned = Owned {
            target: "prod".into(),
            note: "driver libpq".into(),
            key: "DATABASE_URL".into(),
            value: "postgresql://app:d3bug-pw@h/db".into(),
        };
        let shown = format!("{assignment:?} {owned:#?}");
        assert!(!shown.contains("d3bug-pw"), "{shown}");
        assert!(shown.contains("DATABASE_URL"), "{shown}");
    }
    use proptest::prelude::*;

    const URL: &str = "postgresql://app:p%40ss@127.0.0.1:6432/db";

    #[test]
    fn adds_keys_under_a_marker() {
        let merged = merge("A=1\n", "prod", "", &[("DATABASE_URL", URL)], &["prod"]);
        assert_eq!(
            merged.text,
            format!("A=1\n# poolwright: target prod\nDATABASE_URL={URL}\n")
        );
        assert_eq!(
            merged.changes,
            vec![Change::Added {
                key: "DATABASE_URL".into()
            }]
        );
    }

    #[test]
    fn replaces_in_place_keeping_export_quotes_and_comment() {
        let text = "# app\nexport DATABASE_URL=\"postgresql://old\"  # set by hand\r\nB='x'";
        let merged = merge(text, "prod", "", &[("DATABASE_URL", URL)], &["prod"]);
        assert_eq!(
            merged.text,
            format!("# app\nexport DATABASE_URL=\"{URL}\"  # set by hand\r\nB='x'")
        );
        assert_eq!(
            merged.changes,
            vec![Change::Replaced {
                key: "DATABASE_URL".into(),
                old: "postgresql://old".into()
            }]
        );
    }

    #[test]
    fn a_second_merge_is_a_no_op() {
        let first = merge(
            "X=1",
            "prod",
            "",
            &[("DATABASE_URL", URL), ("DIRECT_URL", "postgresql://d")],
            &["prod"],
        );
        let second = merge(
            &first.text,
            "prod",
            "",
            &[("DATABASE_URL", URL), ("DIRECT_URL", "postgresql://d")],
            &["prod"],
        );
        assert_eq!(
            first.text,
            "X=1\n# poolwright: target prod\nDATABASE_URL=postgresql://app:p%40ss@127.0.0.1:6432/db\n# poolwright: target prod\nDIRECT_URL=postgresql://d\n"
        );
        assert_eq!(second.text, first.text);
        assert!(
            second
                .changes
                .iter()
                .all(|c| matches!(c, Change::Unchanged { .. }))
        );
    }

    #[test]
    fn removes_only_owned_lines_of_gone_targets_or_keys() {
        let text = "# poolwright: target old\nOLD_URL=x\nOLD_URL_BY_HAND=y\n# poolwright: target prod\nDIRECT_URL=z\n";
        let merged = merge(text, "prod", "", &[("DATABASE_URL", URL)], &["prod"]);
        assert_eq!(
            merged.text,
            format!("OLD_URL_BY_HAND=y\n# poolwright: target prod\nDATABASE_URL={URL}\n")
        );
        assert!(merged.changes.contains(&Change::Removed {
            key: "OLD_URL".into(),
            target: "old".into()
        }));
        assert!(merged.changes.contains(&Change::Removed {
            key: "DIRECT_URL".into(),
            target: "prod".into()
        }));
    }

    #[test]
    fn markers_carry_a_note_and_can_be_listed() {
        let first = merge(
            "",
            "prod",
            "(driver prisma)",
            &[("DATABASE_URL", URL)],
            &["prod"],
        );
        assert_eq!(
            first.text,
            format!("# poolwright: target prod (driver prisma)\nDATABASE_URL={URL}\n")
        );
        let second = merge(
            &first.text,
            "prod",
            "(driver libpq)",
            &[("DATABASE_URL", URL)],
            &["prod"],
        );
        assert_eq!(
            second.text,
            format!("# poolwright: target prod (driver libpq)\nDATABASE_URL={URL}\n")
        );
        assert_eq!(
            owned(&second.text),
            vec![Owned {
                target: "prod".into(),
                note: "(driver libpq)".into(),
                key: "DATABASE_URL".into(),
                value: URL.into()
            }]
        );
    }

    #[test]
    fn every_duplicate_gets_the_value() {
        let merged = merge("K=a\nK=b\n", "t", "", &[("K", "c")], &["t"]);
        assert_eq!(merged.text, "K=c\nK=c\n");
        assert_eq!(values_of(&merged.text, "K"), vec!["c", "c"]);
    }

    #[test]
    fn an_orphan_marker_never_adopts_a_hand_written_line() {
        // Found by the env_merge property test: removing the `prod` pair
        // put MY_SECRET under the orphan `old` marker, and the next merge
        // deleted it.
        let text =
            "# poolwright: target old\n# poolwright: target prod\nDATABASE_URL=x\nMY_SECRET=abc\n";
        let first = merge(text, "prod", "", &[], &["prod"]);
        assert_eq!(first.text, "MY_SECRET=abc\n");
        assert_eq!(
            merge(&first.text, "prod", "", &[], &["prod"]).text,
            first.text
        );
    }

    #[test]
    fn an_empty_value_before_a_comment_is_quoted() {
        // Found by fuzz/env_merge: `K= # c` reads back as `# c`.
        let merged = merge("K=plain # c\n", "t", "", &[("K", "")], &["t"]);
        assert_eq!(merged.text, "K=\"\" # c\n");
        assert_eq!(values_of(&merged.text, "K"), vec![""]);
    }

    #[test]
    fn single_quotes_never_hold_a_line_break() {
        // Found by the env_merge check: 'a\nb' split the line in two.
        assert_eq!(write_value("a\nb", Some('\'')), "\"a\\nb\"");
        let merged = merge("K='old'\n", "t", "", &[("K", "a\nb")], &["t"]);
        assert_eq!(merged.text, "K=\"a\\nb\"\n");
        assert_eq!(values_of(&merged.text, "K"), vec!["a\nb"]);
    }

    #[test]
    fn values_that_need_quotes_get_them() {
        assert_eq!(write_value("a b", None), "\"a b\"");
        assert_eq!(write_value("it's", Some('\'')), "\"it's\"");
        assert_eq!(write_value("$HOME", Some('"')), "\"\\$HOME\"");
        assert_eq!(write_value(URL, None), URL);
    }

    fn env_line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Z_]{1,8}=[a-z0-9:/@%]{0,12}",
            "export [A-Z_]{1,8}=\"[a-z $'#]{0,10}\"",
            "[A-Z_]{1,8}='[a-z \"#]{0,10}'",
            "# [ -~]{0,20}",
            "[ \t]{0,3}",
            "DATABASE_URL=[a-z:/]{0,10}( # [a-z ]{0,8})?",
            "[^\r\n]{0,20}",
        ]
    }

    fn env_file() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((env_line(), prop_oneof!["\n", "\r\n"]), 0..12),
            any::<bool>(),
        )
            .prop_map(|(ls, trailing)| {
                let mut text: String = ls.iter().map(|(l, e)| format!("{l}{e}")).collect();
                if !trailing {
                    while text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                }
                text
            })
    }

    proptest! {
        /// Every line that does not assign DATABASE_URL survives byte for
        /// byte and in order; every DATABASE_URL line reads back as the new
        /// value; a second merge changes nothing.
        #[test]
        fn merge_keeps_every_unowned_byte(text in env_file()) {
            let merged = merge(&text, "prod", "", &[("DATABASE_URL", URL)], &["prod"]);
            let kept: Vec<Line<'_>> = lines(&text)
                .into_iter()
                .filter(|l| parse_assignment(l.text).is_none_or(|a| a.key != "DATABASE_URL"))
                .filter(|l| !l.text.starts_with(MARKER))
                .collect();
            let after: Vec<Line<'_>> = lines(&merged.text)
                .into_iter()
                .filter(|l| parse_assignment(l.text).is_none_or(|a| a.key != "DATABASE_URL"))
                .filter(|l| !l.text.starts_with(MARKER))
                .collect();
            // The old last line may have gained a line ending; nothing else changes.
            prop_assert_eq!(kept.len(), after.len());
            for (i, (a, b)) in kept.iter().zip(&after).enumerate() {
                prop_assert_eq!(a.text, b.text);
                if i + 1 < kept.len() || !a.ending.is_empty() {
                    prop_assert_eq!(a.ending, b.ending);
                }
            }
            let values = values_of(&merged.text, "DATABASE_URL");
            prop_assert!(!values.is_empty());
            prop_assert!(values.iter().all(|v| v == URL));
            let again = merge(&merged.text, "prod", "", &[("DATABASE_URL", URL)], &["prod"]);
            prop_assert_eq!(again.text, merged.text);
        }
    }
}
