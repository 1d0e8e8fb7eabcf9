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

/// The longest variable name poolwright writes: a Kubernetes Secret takes
/// keys of at most 253 characters, the tightest of the stores it writes to.
pub const MAX_KEY_LEN: usize = 253;

/// Why `key` is not an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`,
/// at most [`MAX_KEY_LEN`] characters), if it is not. A key is written
/// into a `.env` line, a Docker env-file and a Kubernetes Secret as it is:
/// a line break there would add lines of its own, and an empty key writes
/// `=value`.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("it is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Some(format!(
            "it is {} bytes long; at most {MAX_KEY_LEN} are allowed",
            key.len()
        ));
    }
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("it starts with a digit".into());
    }
    let bad = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))?;
    Some(format!(
        "it contains {}",
        crate::diagnostic::printable(&format!("{bad:?}"))
    ))
}

/// How a replaced value is shown in `env`'s report: with every part that
/// could hold a secret masked, or not at all. The old value is whatever a
/// person wrote, so nothing of it is trusted to be well formed; the rule
/// is an allow-list, which cannot miss: in a URL the scheme, a user name,
/// hosts, ports and a database name show when they are made of plain
/// characters, and of its parameters only the values of a few known
/// harmless keys (`sslmode`, `host`, ...). A password, any other value, and
/// anything that does not read as such a URL or as `key=value` pairs is
/// masked or not shown.
pub fn masked_old_value(value: &str) -> String {
    if value.is_empty() {
        return "an empty value".into();
    }
    masked_url(value)
        .or_else(|| masked_conninfo(value))
        .unwrap_or_else(|| "a value that is not a URL, not shown".into())
}

/// Parameters whose values never hold a secret and show in a masked value
/// (compared in lower case).
const SHOWN_PARAMETERS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "sslmode",
    "gssencmode",
    "channel_binding",
    "target_session_attrs",
    "application_name",
    "connect_timeout",
    "pgbouncer",
    "schema",
    "connection_limit",
    "pool_timeout",
    "statement_cache_size",
    "preparethreshold",
    "prepare_threshold",
];

/// Other parameter names a connection string may hold (libpq's keywords
/// and common driver ones): shown with the value masked. A name that is
/// none of these may be a piece of a secret, and is not shown.
const MASKED_PARAMETERS: &[&str] = &[
    "password",
    "passfile",
    "sslpassword",
    "sslkey",
    "sslcert",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
    "sslsni",
    "sslnegotiation",
    "sslcompression",
    "requiressl",
    "ssl",
    "sslfactory",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "options",
    "client_encoding",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "requirepeer",
    "require_auth",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "load_balance_hosts",
    "currentschema",
    "search_path",
];

/// Characters a shown part may hold: no quote, space, `@`, `=`, `;`, `&`,
/// `?` or `#` (each could end one part and start another), no control
/// character.
fn plain(s: &str, extra: &[char]) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%') || extra.contains(&c)
    })
}

fn parameter_key(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `key=value` with the value shown only for a known harmless key.
/// `key=value` with the value shown only for a known harmless key; None
/// for a key that is no known parameter.
fn masked_parameter(key: &str, value: Option<&str>) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let shown = SHOWN_PARAMETERS.contains(&lower.as_str());
    if !parameter_key(key) || !(shown || MASKED_PARAMETERS.contains(&lower.as_str())) {
        return None;
    }
    Some(match value {
        Some(v) if shown && plain(v, &[':', '/', ',']) => format!("{key}={v}"),
        _ => format!("{key}={}", crate::url::MASK),
    })
}

fn masked_url(value: &str) -> Option<String> {
    use crate::url::MASK;
    let (scheme, rest) = value.split_once("://")?;
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) || !plain(scheme, &['+', ':']) {
        return None;
    }
    let mut out = format!("{scheme}://");
    // The user information ends at the last `@`: a password may hold a raw
    // `@` or `/`. Where what comes before that `@` could be parameters
    // (`?`, `#`, `&`, `=`, `;`), the `@` may be inside one, and what follows
    // it part of a secret: nothing after the scheme is shown.
    let rest = match rest.rfind('@') {
        Some(at) if rest[..at].contains(['?', '#', '&', '=', ';']) => {
            out.push_str(MASK);
            return Some(out);
        }
        Some(at) => {
            let info = &rest[..at];
            let (user, password) = match info.split_once(':') {
                Some((u, _)) => (u, true),
                None => (info, false),
            };
            if plain(user, &[]) {
                out.push_str(user);
                if password {
                    out.push(':');
                    out.push_str(MASK);
                }
            } else {
                out.push_str(MASK);
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    // Hosts (IPv6 in brackets) with numeric ports, comma-separated.
    let authority_ok = authority.split(',').all(|h| {
        let (host, port) = match h.rfind(':') {
            Some(i) if !h[i..].contains(']') => (&h[..i], Some(&h[i + 1..])),
            _ => (h, None),
        };
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => plain(v6, &[':']),
            None => plain(host, &[]),
        };
        host_ok && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    });
    out.push_str(if authority_ok { authority } else { MASK });
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, _)) => (r, true),
        None => (rest, false),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if plain(path, &['/']) {
        out.push_str(path);
    } else {
        out.push('/');
        out.push_str(MASK);
    }
    if let Some(query) = query {
        let shown: Vec<String> = query
            .split(['&', ';'])
            .map(|p| {
                p.split_once('=')
                    .and_then(|(k, v)| masked_parameter(k, Some(v)))
                    .unwrap_or_else(|| MASK.to_string())
            })
            .collect();
        out.push('?');
        out.push_str(&shown.join("&"));
    }
    if fragment {
        out.push('#');
        out.push_str(MASK);
    }
    Some(out)
}

/// libpq's `key=value` form (`host=h password='x y'`), any case of key.
fn masked_conninfo(value: &str) -> Option<String> {
    let mut shown = Vec::new();
    let mut rest = value.trim_start();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() {
            return None;
        }
        rest = rest[key_end..].trim_start().strip_prefix('=')?.trim_start();
        let (raw, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    return Some(i);
                }
                None
            })?;
            // A quoted value is never shown.
            (None, &quoted[close + 1..])
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (Some(&rest[..end]), &rest[end..])
        };
        if !after.is_empty() && !after.starts_with(char::is_whitespace) {
            return None;
        }
        shown.push(masked_parameter(key, raw)?);
        rest = after.trim_start();
    }
    if shown.is_empty() {
        return None;
    }
    Some(shown.join(" "))
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

    #[test]
    fn keys_are_environment_variable_names() {
        for good in ["DATABASE_URL", "_x", "a1", &"K".repeat(MAX_KEY_LEN)] {
            assert_eq!(key_problem(good), None, "{good}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("1X", "digit"),
            ("A\nB=evil", "'\\n'"),
            ("A B", "' '"),
            ("A-B", "'-'"),
            ("A.B", "'.'"),
            ("A=B", "'='"),
            ("Ü", "'Ü'"),
        ] {
            let problem = key_problem(bad).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(problem.contains(says), "{bad:?}: {problem}");
            assert!(!problem.contains('\n'), "{problem:?}");
        }
        assert!(
            key_problem(&"K".repeat(MAX_KEY_LEN + 1))
                .unwrap()
                .contains("254 bytes")
        );
    }

    #[test]
    fn an_old_value_shows_with_every_secret_masked_or_not_at_all() {
        for (old, shown) in [
            ("postgresql://app:pa/ss@h/db", "postgresql://app:****@h/db"),
            ("postgresql://u:s3cr@t@h:5/d", "postgresql://u:****@h:5/d"),
            ("postgresql://app:p?w#x@h:6432/db", "postgresql://****"),
            (
                "postgresql://h:5432/d?password=abc@def",
                "postgresql://****",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("postgresql://:pw@h/d", "postgresql://:****@h/d"),
            (
                "postgresql://h/db?sslmode=require&Password=secret",
                "postgresql://h/db?sslmode=require&Password=****",
            ),
            (
                "jdbc:postgresql://h/d?user=u&password=x;PASSWORD=y",
                "jdbc:postgresql://h/d?user=u&password=****&PASSWORD=****",
            ),
            ("postgresql://h/d?pass%77ord=x", "postgresql://h/d?****"),
            (
                "postgresql://h/d?host=a;password=x",
                "postgresql://h/d?host=a&password=****",
            ),
            (
                "postgresql://h/d?sslmode=x%3Bpassword%3Dy",
                "postgresql://h/d?sslmode=x%3Bpassword%3Dy",
            ),
            ("postgresql://h/d?secretword", "postgresql://h/d?****"),
            ("postgresql://app:secret", "postgresql://****"),
            ("postgresql://h/d#secret", "postgresql://h/d#****"),
            ("postgresql://h/d b=secret", "postgresql://h/****"),
            (
                "postgresql://[::1]:5432,h2:5433/d",
                "postgresql://[::1]:5432,h2:5433/d",
            ),
            ("postgresql://us er:pw@h/d", "postgresql://****@h/d"),
            ("Password=secret", "Password=****"),
            (
                "host=h PASSWORD = 'se cret\\' x' port=5",
                "host=h PASSWORD=**** port=5",
            ),
            ("Host=h;Password=secret", "Host=****"),
            (
                "host=h password='unterminated",
                "a value that is not a URL, not shown",
            ),
            ("hunter2", "a value that is not a URL, not shown"),
            // Found by the property below: a bare secret that looks like `key=`.
            ("X=", "a value that is not a URL, not shown"),
            ("secret value://x", "a value that is not a URL, not shown"),
            ("", "an empty value"),
        ] {
            assert_eq!(masked_old_value(old), shown, "{old}");
        }
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
        /// A password of `Q`, `X`, `Z` and punctuation, in any of the places
        /// a password goes: none of its letters shows in the masked value.
        #[test]
        fn a_masked_old_value_never_shows_a_password(p in "[QXZ !-/:-@\\[-`{-~]{1,16}") {
            let quoted = p.replace('\\', "\\\\").replace('\'', "\\'");
            for old in [
                format!("postgresql://app:{p}@db.example:6432/mydb?sslmode=require"),
                format!("postgresql://db.example:6432/mydb?sslmode=require&password={p}"),
                format!("jdbc:postgresql://db.example/mydb?user=app&Password={p}&ssl=true"),
                format!("host=db.example password={p} port=5432"),
                format!("host=db.example Password = '{quoted}' port=5432"),
                format!("Host=db.example;Password={p};Port=5432"),
                p.clone(),
            ] {
                let shown = masked_old_value(&old);
                prop_assert!(!shown.contains(['Q', 'X', 'Z']), "{} shown as {}", old, shown);
            }
        }

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
