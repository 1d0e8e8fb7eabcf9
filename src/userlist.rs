//! PgBouncer's auth file (userlist.txt): quoting and parsing.
//!
//! One user per line, `"name" "secret"`; both fields in double quotes, a
//! `"` inside a field doubled; comment lines start with `;` (a `#` line makes
//! PgBouncer reject the whole file). The writer side is the tera template
//! with the [`quote`] filter; [`parse`] reads a file back by the same rules,
//! to reuse verifiers and to prove in tests that what we write round-trips.

/// A field in userlist.txt syntax: wrapped in `"`, inner `"` doubled.
pub fn quote(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

/// PgBouncer 1.18-1.25 (`MAX_PASSWORD`) calls the whole file broken when a
/// quoted field body is this many bytes or more; user names are far
/// shorter (63 bytes, by config validation).
pub const MAX_FIELD_BYTES: usize = 2048;

/// [`quote`], refusing what PgBouncer would not read back as written: a
/// line break or NUL (the file is read line by line, as a C string) or a
/// field too long. The message never shows the field (it may be a password).
pub fn quote_checked(field: &str) -> Result<String, String> {
    if field.contains(['\n', '\r']) {
        return Err("a userlist.txt field cannot hold a line break".into());
    }
    if field.contains('\0') {
        return Err("a userlist.txt field cannot hold a NUL byte".into());
    }
    let quoted = quote(field);
    let body = quoted.len() - 2;
    if body >= MAX_FIELD_BYTES {
        return Err(format!(
            "a userlist.txt field of {body} bytes (quotes doubled) is too long: PgBouncer reads at most {} and rejects the whole file otherwise",
            MAX_FIELD_BYTES - 1
        ));
    }
    Ok(quoted)
}

/// One line: a user and its secret (a verifier, an md5 hash, or with
/// `userlist: plain` the password itself, so `Debug` never shows it).
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub user: String,
    pub secret: String,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("secret", &crate::envfile::Redacted(&self.secret))
            .finish()
    }
}

/// Reads one quoted field at the start of `s`; returns it and the rest.
fn field(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices().peekable();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if matches!(chars.peek(), Some((_, '"'))) {
                chars.next();
                out.push('"');
            } else {
                return Some((out, &body[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Parses userlist.txt. Errors name the 1-based line.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        let bad = || format!("line {}: expected `\"user\" \"secret\"`", n + 1);
        let (user, rest) = field(trimmed).ok_or_else(bad)?;
        let (secret, _ignored) = field(rest.trim_start()).ok_or_else(bad)?;
        entries.push(Entry { user, secret });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_formatting_never_shows_the_secret() {
        let entry = Entry {
            user: "app".into(),
            secret: "plain-d3bug-pw".into(),
        };
        let shown = format!("{entry:?} {entry:#?}");
        assert!(!shown.contains("plain-d3bug-pw"), "{shown}");
        assert!(shown.contains("\"app\""), "{shown}");
    }

    #[test]
    fn quotes_by_doubling() {
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            quote("pw with \"quote\" and space"),
            "\"pw with \"\"quote\"\" and space\""
        );
    }

    #[test]
    fn round_trips_awkward_values() {
        let values = [
            ("app", "p@ss:w/rd#%?&\"x"),
            ("a\"b", "\"\""),
            ("u", "x y ; z"),
            ("v", ""),
        ];
        let text: String = values
            .iter()
            .map(|(u, s)| format!("{} {}\n", quote(u), quote(s)))
            .collect();
        let parsed = parse(&format!("; comment\n\n{text}")).unwrap();
        let back: Vec<(String, String)> = parsed.into_iter().map(|e| (e.user, e.secret)).collect();
        let want: Vec<(String, String)> = values
            .iter()
            .map(|(u, s)| ((*u).into(), (*s).into()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn quote_checked_refuses_what_pgbouncer_would_misread() {
        assert_eq!(quote_checked("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(quote_checked("a\nb").unwrap_err().contains("line break"));
        assert!(quote_checked("a\rb").is_err());
        assert!(quote_checked("a\0b").unwrap_err().contains("NUL"));
        assert!(quote_checked(&"x".repeat(MAX_FIELD_BYTES - 1)).is_ok());
        // Doubled quotes count: 1024 `"` are 2048 bytes once quoted.
        let err = quote_checked(&"\"".repeat(MAX_FIELD_BYTES / 2)).unwrap_err();
        assert!(err.contains("2048 bytes"), "{err}");
        assert!(
            !err.contains('"'.to_string().repeat(4).as_str()),
            "no field in {err}"
        );
    }

    #[test]
    fn rejects_unquoted_and_hash_comments() {
        assert!(parse("app secret\n").unwrap_err().contains("line 1"));
        assert!(parse("; ok\n# not ok\n").unwrap_err().contains("line 2"));
        assert!(parse("\"unterminated\n").is_err());
    }
}
