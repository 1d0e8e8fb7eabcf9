//! Reading pgbouncer.ini as PgBouncer does: a port of libusual's
//! `parse_ini_file` (which PgBouncer vendors) and of its connection-string
//! reader, used wherever poolwright reads an ini back: reload or restart
//! (`changes`), which side moved (`verify::drift`), and the fuzz oracle that
//! checks the writer. One reader, so the three never disagree on a file.

use std::collections::BTreeMap;

/// C's `isspace` in the "C" locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// One `key = value` of a section, as PgBouncer's reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    pub section: String,
    pub key: String,
    pub value: String,
}

/// `parse_ini_file` in libusual's cfparser.c (vendored in PgBouncer's
/// lib/usual): blank-led lines; `;` and `#` comment lines; `[section]`;
/// keys of `[A-Za-z0-9_.*-]`, or (`quoted_keys`, PgBouncer 1.25) anything
/// but `'` between single quotes; `=`; a value running to the end of the
/// line, trailing blanks trimmed.
pub fn parse_ini(text: &str, quoted_keys: bool) -> Result<Vec<IniEntry>, String> {
    let mut out = Vec::new();
    parse_into(text, quoted_keys, &mut None, None, 0, &mut out)?;
    Ok(out)
}

/// Files an ini names with `%include PATH`: the text of each, or None
/// where it is not there (then it is skipped).
pub type Includes<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How deep `%include`s may nest: PgBouncer's own files nest one level.
const MAX_INCLUDE_DEPTH: usize = 8;

/// [`parse_ini`]'s reader, starting in `section` (an included file
/// continues the section of the line that included it) and, with
/// `includes`, reading `%include PATH` lines as PgBouncer does: the named
/// file's entries where the line stands. Without `includes` such a line
/// is an error, as it is for a file that may not include others.
fn parse_into(
    text: &str,
    quoted_keys: bool,
    section: &mut Option<String>,
    includes: Option<Includes<'_>>,
    depth: usize,
    out: &mut Vec<IniEntry>,
) -> Result<(), String> {
    let b = text.as_bytes();
    let mut p = 0;
    let line_of = |p: usize| text[..p].matches('\n').count() + 1;
    loop {
        while p < b.len() && c_space(b[p]) {
            p += 1;
        }
        if p >= b.len() {
            return Ok(());
        }
        if let Some(includes) = includes
            && let Some(rest) = text[p..].strip_prefix("%include")
            && rest.starts_with([' ', '\t'])
        {
            let line_end = rest.find('\n').unwrap_or(rest.len());
            let path = rest[..line_end].trim();
            p += "%include".len() + line_end;
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(format!("`%include {path}` nests too deep"));
            }
            if let Some(inner) = includes(path) {
                parse_into(&inner, quoted_keys, section, Some(includes), depth + 1, out)?;
            }
            continue;
        }
        if b[p] == b'#' || b[p] == b';' {
            while p < b.len() && b[p] != b'\n' {
                p += 1;
            }
            continue;
        }
        if b[p] == b'[' {
            let start = p + 1;
            p = start;
            while p < b.len() && b[p] != b']' && b[p] != b'\n' {
                p += 1;
            }
            if p >= b.len() || b[p] != b']' {
                return Err(format!("line {}: unterminated section", line_of(start)));
            }
            *section = Some(text[start..p].to_string());
            p += 1;
            continue;
        }
        let key = if quoted_keys && b[p] == b'\'' {
            let start = p + 1;
            let end = text[start..]
                .find('\'')
                .map(|i| start + i)
                .ok_or_else(|| format!("line {}: unterminated quoted key", line_of(p)))?;
            p = end + 1;
            &text[start..end]
        } else {
            let start = p;
            while p < b.len() && (b[p].is_ascii_alphanumeric() || b"_.-*".contains(&b[p])) {
                p += 1;
            }
            &text[start..p]
        };
        if key.is_empty() {
            return Err(format!("line {}: expected a key", line_of(p)));
        }
        while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
            p += 1;
        }
        if p >= b.len() || b[p] != b'=' {
            return Err(format!("line {}: expected `=` after `{key}`", line_of(p)));
        }
        p += 1;
        while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
            p += 1;
        }
        let start = p;
        while p < b.len() && b[p] != b'\n' {
            p += 1;
        }
        let mut end = p;
        while end > start && c_space(b[end - 1]) {
            end -= 1;
        }
        let section = section
            .clone()
            .ok_or_else(|| format!("line {}: a key before any section", line_of(start)))?;
        out.push(IniEntry {
            section,
            key: key.to_string(),
            value: text[start..end].to_string(),
        });
    }
}

/// PgBouncer's connection-string reader (src/loader.c, `cstr_get_pair`):
/// `key=value` pairs separated by spaces; keys of letters, digits and `_`;
/// a value single-quoted with `''` for `'`, or running to the next space.
pub fn parse_connstr(s: &str) -> Result<Vec<(String, String)>, String> {
    let b = s.as_bytes();
    let mut p = 0;
    let mut out = Vec::new();
    let skip_ws = |mut p: usize| {
        while p < b.len() && b[p] == b' ' {
            p += 1;
        }
        p
    };
    loop {
        p = skip_ws(p);
        if p >= b.len() {
            return Ok(out);
        }
        let start = p;
        while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_') {
            p += 1;
        }
        let key = &s[start..p];
        p = skip_ws(p);
        if key.is_empty() || p >= b.len() || b[p] != b'=' {
            return Err(format!("bad key at byte {start} of {s:?}"));
        }
        p = skip_ws(p + 1);
        let value = if p < b.len() && b[p] == b'\'' {
            let mut v = Vec::new();
            p += 1;
            loop {
                match b.get(p) {
                    None => return Err(format!("unterminated quoted value in {s:?}")),
                    Some(b'\'') if b.get(p + 1) == Some(&b'\'') => {
                        v.push(b'\'');
                        p += 2;
                    }
                    Some(b'\'') => {
                        p += 1;
                        break;
                    }
                    Some(c) => {
                        v.push(*c);
                        p += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| "a quoted value is not UTF-8".to_string())?
        } else {
            let start = p;
            while p < b.len() && b[p] != b' ' {
                p += 1;
            }
            if start == p {
                return Err(format!("empty value for `{key}` in {s:?}"));
            }
            s[start..p].to_string()
        };
        out.push((key.to_string(), value));
    }
}

/// The `[pgbouncer]` section of `text` as PgBouncer reads it, key to value,
/// with `%include`d files (from `includes`) read where they stand. A file
/// with no section header (pgbouncer-common.ini, included from inside
/// `[pgbouncer]`) is read as that section. The section name is compared
/// without regard to case; a later key wins, as in PgBouncer.
pub fn pgbouncer_section(
    text: &str,
    quoted_keys: bool,
    includes: Includes<'_>,
) -> Result<BTreeMap<String, String>, String> {
    let mut entries = Vec::new();
    let mut section = first_section(text);
    parse_into(
        text,
        quoted_keys,
        &mut section,
        Some(includes),
        0,
        &mut entries,
    )?;
    Ok(entries
        .into_iter()
        .filter(|e| e.section.eq_ignore_ascii_case("pgbouncer"))
        .map(|e| (e.key, e.value))
        .collect())
}

/// `[pgbouncer]` for a file whose first entry comes before any header.
fn first_section(text: &str) -> Option<String> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']))?;
    (!first.starts_with('[')).then(|| "pgbouncer".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn includes_are_read_where_they_stand_in_the_section_that_names_them() {
        let common = "listen_port = 6432\npool_mode = transaction\n".to_string();
        let main = "[databases]\napp = host=db\n\n[pgbouncer]\npidfile = /run/p1.pid\n%include /etc/pgbouncer/common.ini\npool_mode = session ; not a comment\n";
        let includes = |p: &str| (p == "/etc/pgbouncer/common.ini").then(|| common.clone());
        let s = pgbouncer_section(main, false, &includes).unwrap();
        assert_eq!(s["listen_port"], "6432");
        assert_eq!(s["pidfile"], "/run/p1.pid");
        // A later key wins; `;` after a value is part of it, as in PgBouncer.
        assert_eq!(s["pool_mode"], "session ; not a comment");
        assert!(!s.contains_key("app"));
    }

    #[test]
    fn a_headerless_file_is_the_pgbouncer_section() {
        let s = pgbouncer_section("; common\nlisten_port = 6432\n", false, &none).unwrap();
        assert_eq!(s["listen_port"], "6432");
        let s = pgbouncer_section("[PgBouncer]\nlisten_port=1\n", false, &none).unwrap();
        assert_eq!(s["listen_port"], "1");
    }

    #[test]
    fn what_pgbouncer_refuses_is_an_error_and_includes_cannot_loop() {
        assert!(pgbouncer_section("[pgbouncer]\nlisten port = 1\n", false, &none).is_err());
        let looping = |_: &str| Some("%include self.ini\n".to_string());
        let e = pgbouncer_section("[pgbouncer]\n%include self.ini\n", false, &looping).unwrap_err();
        assert!(e.contains("nests too deep"), "{e}");
        // Without includes, `%include` is no key: the oracle's strict reading.
        assert!(parse_ini("[pgbouncer]\n%include x\n", false).is_err());
        // 1.25's quoted keys.
        let s = parse_ini("[databases]\n'my db' = host=h\n", true).unwrap();
        assert_eq!(s[0].key, "my db");
    }
}
