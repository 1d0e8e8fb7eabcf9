//! Values from poolwright.yaml written into the systemd unit, escaped so
//! systemd reads back exactly the value, and nothing else.
//!
//! What systemd does to a line, and so what each function undoes:
//! - Specifiers (systemd.unit(5) "Specifiers"): `%h`, `%i`, ... expand in
//!   most directives (Description=, User=, Group=, ExecStart=,
//!   RuntimeDirectory=, ...); `%%` is a literal `%`. [`specifiers`].
//! - Command lines (systemd.service(5) "Command lines", systemd.syntax(7)
//!   "Quoting"): ExecStart= splits its value into words at whitespace,
//!   unquotes `"..."` and `'...'` and resolves C-style backslash escapes;
//!   when the command runs, `${NAME}` in a word (and `$NAME` as a whole
//!   word) is replaced by an environment variable and `$$` is a literal
//!   `$`. [`executable`] and [`argument`].
//! - RuntimeDirectory= (systemd.exec(5)) splits at whitespace, unquotes,
//!   and splits each word at `:` (`dir:symlink`), with `\:` a literal `:`.
//!   [`directory`].
//! - A line break ends a directive, and a trailing `\` joins the next line.
//!   The config loader refuses line breaks (and NUL) in every string
//!   (`Reader::string`); no directive here ends in a value's own `\` (a
//!   word with one is quoted, or followed by poolwright's text); and
//!   [`comment`] makes the one value that does not come through the loader
//!   (the config's file name) safe in a comment.
//!
//! The loader accepts any absolute `config_dir` without `..`, spaces, `%`,
//! `$` and quotes included, and those reach ExecStart= as an argument.
//! `systemd.binary` is narrower (see `one_binary_path` in the module
//! above): systemd itself refuses quotes and backslashes in an executable.
//!
//! The functions take literal text, except [`argument`] and [`directory`]:
//! those take unit text, where `%` is already a specifier, so poolwright's
//! own `%i` survives; pass the literal parts through [`specifiers`] first.

/// A literal value for a directive that expands specifiers: `%` → `%%`.
pub fn specifiers(literal: &str) -> String {
    literal.replace('%', "%%")
}

/// The executable of a command line (ExecStart=), from its literal path.
///
/// `$` is not escaped: systemd runs the executable path as written and
/// substitutes variables only in the arguments, so `$$` would stay `$$`.
/// systemd also refuses an executable path holding quotes, a backslash or
/// control characters, even escaped. The config loader refuses all of
/// these and whitespace in `systemd.binary`, so in practice only `%` is
/// escaped; the quoting is there for any other caller. The path is
/// absolute, so it never starts with one of the prefixes (`-`, `@`, `+`,
/// `!`, `:`) systemd reads before unquoting.
pub fn executable(path: &str) -> String {
    debug_assert!(path.starts_with('/'), "{path}");
    word(&specifiers(path))
}

/// One argument of a command line (ExecStart=), from unit text: `%` is a
/// specifier (see [`specifiers`]); `$` becomes `$$`, and the word is
/// quoted when it needs to be.
pub fn argument(unit_text: &str) -> String {
    let text = unit_text.replace('$', "$$");
    if text == ";" {
        // A lone `;` would separate two commands.
        return "\\;".to_string();
    }
    word(&text)
}

/// A literal path as one argument of a command line.
pub fn path_argument(literal: &str) -> String {
    argument(&specifiers(literal))
}

/// One directory of RuntimeDirectory= (and its kin), from unit text: `%`
/// is a specifier.
///
/// systemd reads this value in two passes since 250: unquote, keeping
/// backslashes as they are (so a `\\` never escapes a quote there), then
/// split at `:` resolving C escapes; before 250 in one (unquote, a
/// backslash taking the next character as it is). What reads the same in
/// both: `\\` and `\:`, blanks inside quotes, a `"` inside single quotes
/// and a `'` inside double quotes.
pub fn directory(unit_text: &str) -> String {
    let blank = |c: char| c.is_whitespace() || c.is_control();
    let plain = backslashed(unit_text, &['\\', ':']);
    if !unit_text.contains(['"', '\'']) {
        return if unit_text.chars().any(blank) {
            quoted(&plain)
        } else {
            plain
        };
    }
    let mut out = String::with_capacity(unit_text.len() + 8);
    let mut blanks = false;
    for c in unit_text.chars() {
        if blanks && !blank(c) {
            out.push('"');
            blanks = false;
        }
        match c {
            '"' => out.push_str("'\"'"),
            '\'' => out.push_str("\"'\""),
            '\\' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c if blank(c) => {
                if !blanks {
                    out.push('"');
                    blanks = true;
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if blanks {
        out.push('"');
    }
    out
}

/// `text` with a backslash before each of `chars`.
fn backslashed(text: &str, chars: &[char]) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if chars.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a `#` comment: specifiers do not expand there, so `%` is kept;
/// control characters (a line break would end the comment and start a
/// directive) are shown as escapes.
pub fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character that makes a command-line word need double quotes.
fn needs_quotes(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\')
}

/// A command-line word: as is when plain, else double-quoted with `\`,
/// `"` and control characters escaped C-style (systemd.syntax(7)).
fn word(text: &str) -> String {
    if !text.is_empty() && !text.chars().any(needs_quotes) {
        return text.to_string();
    }
    let mut inner = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => inner.push_str("\\\\"),
            '"' => inner.push_str("\\\""),
            '\t' => inner.push_str("\\t"),
            '\n' => inner.push_str("\\n"),
            '\r' => inner.push_str("\\r"),
            c if c.is_ascii_control() => inner.push_str(&format!("\\x{:02x}", c as u32)),
            c => inner.push(c),
        }
    }
    quoted(&inner)
}

fn quoted(inner: &str) -> String {
    format!("\"{inner}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_written_as_they_are() {
        assert_eq!(executable("/usr/sbin/pgbouncer"), "/usr/sbin/pgbouncer");
        assert_eq!(
            path_argument("/etc/pgbouncer/pgbouncer.ini"),
            "/etc/pgbouncer/pgbouncer.ini"
        );
        assert_eq!(
            directory("postgresql/pgbouncer-%i"),
            "postgresql/pgbouncer-%i"
        );
        assert_eq!(specifiers("postgres"), "postgres");
    }

    #[test]
    fn percent_is_doubled_so_no_specifier_expands() {
        assert_eq!(specifiers("100%h"), "100%%h");
        assert_eq!(
            executable("/opt/pgbouncer-%v/bin/pgbouncer"),
            "/opt/pgbouncer-%%v/bin/pgbouncer"
        );
        assert_eq!(
            path_argument("/etc/%h/pgbouncer.ini"),
            "/etc/%%h/pgbouncer.ini"
        );
        // poolwright's own specifier survives in unit text.
        assert_eq!(
            argument(&format!("{}/pgbouncer-%i.ini", specifiers("/etc/%n"))),
            "/etc/%%n/pgbouncer-%i.ini"
        );
    }

    #[test]
    fn a_space_does_not_split_the_argument() {
        assert_eq!(
            path_argument("/etc/pg bouncer/%h/pgbouncer.ini"),
            "\"/etc/pg bouncer/%%h/pgbouncer.ini\""
        );
        assert_eq!(path_argument("/a\tb"), "\"/a\\tb\"");
    }

    #[test]
    fn dollar_is_doubled_in_arguments_only() {
        assert_eq!(path_argument("/srv/$HOME/${USER}"), "/srv/$$HOME/$${USER}");
        assert_eq!(path_argument("$"), "$$");
        assert_eq!(executable("/opt/a$b"), "/opt/a$b");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_inside_double_quotes() {
        assert_eq!(path_argument(r#"/a"b"#), r#""/a\"b""#);
        assert_eq!(path_argument("/a'b"), r#""/a'b""#);
        assert_eq!(path_argument(r"/a\b"), r#""/a\\b""#);
        assert_eq!(executable(r#"/o'p\"t/x"#), r#""/o'p\\\"t/x""#);
        assert_eq!(path_argument("/a\u{1b}b"), r#""/a\x1bb""#);
        assert_eq!(argument(""), "\"\"");
        assert_eq!(argument(";"), "\\;");
    }

    #[test]
    fn directories_escape_colons_and_quote_blanks() {
        assert_eq!(
            directory(&format!("{}/pgbouncer-%i", specifiers("pg bouncer:1%"))),
            r#""pg bouncer\:1%%/pgbouncer-%i""#
        );
        assert_eq!(directory(r"a\b:c"), r"a\\b\:c");
        assert_eq!(directory(r#"a"b'c"#), r#"a'"'b"'"c"#);
        assert_eq!(directory(r#"a "b"  c:"#), r#"a" "'"'b'"'"  "c\:"#);
    }

    #[test]
    fn comments_keep_percent_and_show_control_characters() {
        assert_eq!(comment("/etc/%h/x"), "/etc/%h/x");
        assert_eq!(
            comment("a\nExecStartPre=/bin/sh"),
            "a\\nExecStartPre=/bin/sh"
        );
        assert_eq!(comment("a\r\u{0}b"), "a\\r\\u{0}b");
    }
}
