//! Which database and user names PgBouncer can carry, by an allow-list.
//!
//! Names become keys in pgbouncer.ini (`[databases]`, `[users]`), fields in
//! userlist.txt and items of comma lists (`admin_users`). Up to 1.24 the ini
//! reader takes only `[A-Za-z0-9_.-]` in keys (a quoted key is a syntax
//! error); 1.25 accepts single-quoted keys with no escape for `'`. An
//! allow-list is the only safe rule here: a deny-list misses the next
//! character that turns a name into a new setting.

use super::version::Version;

/// PostgreSQL truncates identifiers longer than this many bytes.
pub const MAX_NAME_BYTES: usize = 63;

fn plain_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A character that some reader takes as a line break or that is invisible
/// (Unicode's Cc, Zl, Zp and Cf categories): YAML reads U+0085, U+2028 and
/// U+2029 as line breaks in the Kubernetes ConfigMap, and format characters
/// (bidi overrides, zero-width ones) make a name look like another.
pub fn is_line_or_format_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x2028 | 0x2029 // Zl, Zp
                | 0x00AD
                | 0x0600..=0x0605
                | 0x061C
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x180E
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x206F
                | 0xFEFF
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0001
                | 0xE0020..=0xE007F
        )
}

/// `name` for a message: line and format characters escaped (`\u{2028}`),
/// so the message shows them instead of breaking or reordering its line.
fn shown_name(name: &str) -> String {
    crate::diagnostic::printable(name)
        .chars()
        .map(|c| {
            if is_line_or_format_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// True when `name` can be written as an ini key without quotes.
pub fn is_plain_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(plain_key_char)
}

/// Why `name` cannot be a database (`what` = "database") or user name on
/// `version`, if it cannot. `quoted_keys_since` comes from the manifest.
pub fn check(
    name: &str,
    what: &str,
    version: Version,
    quoted_keys_since: Version,
) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the {what} name `{name}` is {} bytes long; PostgreSQL allows at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if what == "database" && name == "pgbouncer" {
        return Err(
            "`pgbouncer` is reserved for PgBouncer's admin console; choose another database name"
                .into(),
        );
    }
    if is_plain_key(name) {
        return Ok(());
    }
    let bad: String = name
        .chars()
        .filter(|c| !plain_key_char(*c))
        .take(1)
        .collect();
    let shown = if bad.chars().all(char::is_control) {
        format!("{:?}", bad)
    } else {
        format!("`{bad}`")
    };
    if version >= quoted_keys_since {
        // 1.25 quotes such keys with '...', which has no escape for `'`; a
        // comma would split admin_users; control characters break lines.
        let unquotable = |c: char| c == '\'' || c == ',' || c == '"' || is_line_or_format_char(c);
        let Some(bad) = name.chars().find(|c| unquotable(*c)) else {
            return Ok(());
        };
        // Name the character that is refused, not the first one that needs quotes.
        let shown = if is_line_or_format_char(bad) {
            format!("{:?}", bad.to_string())
        } else {
            format!("`{bad}`")
        };
        return Err(format!(
            "the {what} name `{}` contains {shown}, which PgBouncer {version} cannot take in a name",
            shown_name(name)
        ));
    }
    Err(format!(
        "the {what} name `{}` contains {shown}; PgBouncer {version} accepts only letters, digits, `_`, `.` and `-` in names",
        shown_name(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V118: Version = Version::new(1, 18);
    const V125: Version = Version::new(1, 25);

    #[test]
    fn allows_plain_names() {
        assert!(check("qbo_mirror", "database", V118, V125).is_ok());
        assert!(check("app-1.v2", "user", V118, V125).is_ok());
    }

    #[test]
    fn refuses_injection_and_reserved_names() {
        for bad in [
            "db = host=evil",
            "a\nauth_type=trust",
            "x\"y",
            "pgbouncer",
            "a b",
            "é",
            "a;b",
            "*",
        ] {
            assert!(
                check(bad, "database", V118, V125).is_err(),
                "{bad:?} accepted"
            );
        }
        let long = "a".repeat(64);
        assert!(
            check(&long, "user", V118, V125)
                .unwrap_err()
                .contains("64 bytes")
        );
        assert!(check(&"a".repeat(63), "user", V118, V125).is_ok());
    }

    #[test]
    fn quoted_keys_from_1_25_but_never_quotes_or_commas() {
        assert!(check("my db", "database", V125, V125).is_ok());
        assert!(check("it's", "database", V125, V125).is_err());
        assert!(check("a,b", "user", V125, V125).is_err());
        assert!(check("a\nb", "user", V125, V125).is_err());
        // Line and format characters: YAML line breaks, bidi overrides,
        // zero-width and byte-order marks.
        for bad in [
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{85}b",
            "a\u{202e}b",
            "a\u{200b}b",
            "\u{feff}a",
        ] {
            let e = check(bad, "user", V125, V125).unwrap_err();
            assert!(e.contains("cannot take"), "{bad:?}: {e}");
            assert!(!e.chars().any(is_line_or_format_char), "shown raw: {e:?}");
        }
        assert!(
            check("say \"hi\"", "user", V125, V125)
                .unwrap_err()
                .contains("contains `\"`"),
            "names the quote, not the space before it"
        );
    }
}
