//! userlist.txt: what the template writes, both [`userlist::parse`] and a
//! reading by PgBouncer's own rules give back as exactly the users and
//! secrets that went in; what PgBouncer would misread is refused.

use std::sync::OnceLock;

use super::input::Fields;
use crate::providers::pgbouncer::render::{UserSecret, UserlistContext};
use crate::render::Templates;
use crate::userlist::{self, MAX_FIELD_BYTES};

/// The built-in templates, loaded once per process (fuzzers call in a loop).
pub(super) fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| Templates::load(None).expect("built-in templates load"))
}

/// PgBouncer's `MAX_USERNAME` (include/bouncer.h).
const MAX_USERNAME_BYTES: usize = 128;

/// `load_auth_file` in PgBouncer's src/loader.c, byte for byte: skip
/// blanks; `;` starts a comment line; otherwise `"user"`, anything up to
/// the next `"`, `"secret"`, then the rest of the line is ignored. A `""`
/// inside a field is one `"`. A NUL ends the file (it is a C string).
/// Returns the entries read before the file broke, and whether it did.
pub fn pgbouncer_reading(text: &str) -> (Vec<(String, String)>, bool) {
    let bytes = text.as_bytes();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let b = &bytes[..end];
    let mut out = Vec::new();
    let mut p = 0;
    // find_quote: the next `"`; when reading a field, `""` does not end it.
    let find_quote = |mut p: usize, start: bool| loop {
        while p < b.len() && b[p] != b'"' {
            p += 1;
        }
        if !start && p + 1 < b.len() && b[p + 1] == b'"' {
            p += 2;
            continue;
        }
        return p;
    };
    let unquote = |field: &[u8]| String::from_utf8_lossy(field).replace("\"\"", "\"");
    loop {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        if p >= b.len() {
            return (out, false);
        }
        if b[p] == b';' {
            while p < b.len() && b[p] != b'\n' {
                p += 1;
            }
            continue;
        }
        if b[p] != b'"' {
            return (out, true);
        }
        let user = p + 1;
        p = find_quote(user, false);
        if p >= b.len() || p - user >= MAX_USERNAME_BYTES {
            return (out, true);
        }
        let user_field = &b[user..p];
        p = find_quote(p + 1, true);
        if p >= b.len() {
            return (out, true);
        }
        let secret = p + 1;
        p = find_quote(secret, false);
        if p >= b.len() || p - secret >= MAX_FIELD_BYTES {
            return (out, true);
        }
        out.push((unquote(user_field), unquote(&b[secret..p])));
        p += 1;
        while p < b.len() && b[p] != b'\n' {
            p += 1;
        }
    }
}

/// Renders `users` with the real template (as `render` does for a target).
pub fn render(users: &[(String, String)]) -> Result<String, crate::error::Error> {
    templates().render(
        "pgbouncer/userlist.txt.tera",
        &UserlistContext {
            target: "fuzz",
            format: "plain-text passwords",
            users: users
                .iter()
                .map(|(name, secret)| UserSecret {
                    name: name.clone(),
                    secret: secret.clone(),
                })
                .collect(),
        },
    )
}

/// Checks that `text`, written for `users`, reads back as exactly `users`
/// (`same_secret(written, expected)` compares secrets; SCRAM verifiers
/// are salted, so they are checked against the password).
pub fn assert_reads_back_with(
    text: &str,
    users: &[(String, String)],
    same_secret: &dyn Fn(&str, &str) -> bool,
) {
    let parsed: Vec<(String, String)> = userlist::parse(text)
        .unwrap_or_else(|e| panic!("userlist::parse refuses what the writer wrote: {e}"))
        .into_iter()
        .map(|e| (e.user, e.secret))
        .collect();
    assert_same(&parsed, users, same_secret, "userlist::parse");
    let (read, broken) = pgbouncer_reading(text);
    assert!(!broken, "PgBouncer would call this userlist.txt broken");
    assert_same(&read, users, same_secret, "PgBouncer's reading");
}

/// Compares users and secrets; a failure names users, never secrets.
fn assert_same(
    read: &[(String, String)],
    users: &[(String, String)],
    same_secret: &dyn Fn(&str, &str) -> bool,
    reader: &str,
) {
    let names = |v: &[(String, String)]| v.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>();
    assert_eq!(names(read), names(users), "{reader} reads other users back");
    for ((user, got), (_, want)) in read.iter().zip(users) {
        assert!(
            same_secret(got, want),
            "{reader} reads another secret back for `{}`",
            user.escape_debug()
        );
    }
}

/// [`assert_reads_back_with`] for secrets written as they are.
pub fn assert_reads_back(text: &str, users: &[(String, String)]) {
    assert_reads_back_with(text, users, &|a, b| a == b);
}

/// Fields: user, secret, user, secret, ... (at most 32 users).
pub fn check_userlist(data: &[u8]) {
    let mut f = Fields::new(data);
    let mut users = Vec::new();
    while f.more() && users.len() < 32 {
        users.push((f.text(), f.text()));
    }
    let refusable = users.iter().any(|(u, s)| {
        [u, s].iter().any(|v| userlist::quote_checked(v).is_err())
            || userlist::quote(u).len() - 2 >= MAX_USERNAME_BYTES
    });
    match render(&users) {
        Ok(text) => {
            assert!(
                !users
                    .iter()
                    .any(|(u, s)| userlist::quote_checked(u).is_err()
                        || userlist::quote_checked(s).is_err()),
                "the writer wrote a field PgBouncer would misread"
            );
            if refusable {
                // Names of 128 bytes or more never get here: config
                // validation caps them at 63.
                return;
            }
            assert_reads_back(&text, &users);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                refusable,
                "the writer refused a writable userlist: {message}"
            );
            // What every refusal says anyway (a secret "user" is in "userlist").
            let boilerplate: Vec<String> = ["\n", "\0", &"x".repeat(MAX_FIELD_BYTES)]
                .iter()
                .filter_map(|s| render(&[("a".into(), (*s).to_string())]).err())
                .map(|e| e.to_string())
                .collect();
            for (_, secret) in &users {
                let said_anyway = boilerplate.iter().any(|b| b.contains(secret.as_str()))
                    || secret.chars().all(|c| c.is_ascii_digit() || c == ' ');
                if secret.len() >= 4 && !said_anyway {
                    assert!(
                        !message.contains(secret.as_str()),
                        "the refusal shows a secret"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::input::encode;

    #[test]
    fn reads_like_pgbouncer() {
        let (users, broken) = pgbouncer_reading("; c\n  \"a\"\"b\" junk \"s\" tail\n\"u\" \"\"\n");
        assert!(!broken);
        assert_eq!(
            users,
            vec![("a\"b".into(), "s".into()), ("u".into(), String::new())]
        );
        assert!(pgbouncer_reading("# comment\n").1);
        assert!(pgbouncer_reading("\"unterminated\n").1);
        let long = format!("\"u\" \"{}\"\n", "x".repeat(MAX_FIELD_BYTES));
        assert!(pgbouncer_reading(&long).1);
    }

    #[test]
    fn round_trips_and_refuses() {
        check_userlist(&encode(&["app", "p@ss \"x\" ; y", "we\"ird", ""]));
        check_userlist(&encode(&["app", "two\nlines"]));
        assert!(render(&[("a".into(), "b\nc".into())]).is_err());
    }
}
