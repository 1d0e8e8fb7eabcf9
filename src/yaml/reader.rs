//! Reading typed values out of the YAML tree while collecting every problem.
//!
//! Each getter checks the shape and type of one value, interpolates `${VAR}`
//! references, refuses newlines and NUL bytes, and records a [`Diagnostic`]
//! (file, line, column, field) instead of stopping. A [`MapView`] remembers
//! which keys were asked for, so [`MapView::finish`] can report the rest as
//! unknown, with a "did you mean" hint.

use std::path::Path;

use super::interpolate::{Problem, interpolate};
use super::node::{Key, Node, Value};
use crate::diagnostic::{Diagnostic, Span, did_you_mean};
use crate::secret::Secret;

/// Looks up environment variables; a closure so tests can pin the values.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Collects problems while a config file is decoded.
pub struct Reader<'a> {
    pub file: &'a Path,
    env: EnvLookup<'a>,
    pub problems: Vec<Diagnostic>,
    /// The file holds nothing but white space (not even a comment).
    pub source_is_blank: bool,
    /// Scalars whose `${VAR}` brought in a value from the environment:
    /// (where, the value, the text as written). Messages about them show
    /// the text instead of the value: a variable meant for a password may
    /// end up in a port by mistake, and the message must not print it.
    expanded: Vec<(Span, String, String)>,
}

/// `haystack` with each occurrence of `value` that is not part of a longer
/// word or number replaced by `with`; None when there is none. (A port `5`
/// from the environment must not turn `65535` into `6${P}${P}3${P}`.)
fn replace_whole(haystack: &str, value: &str, with: &str) -> Option<String> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::new();
    let mut rest = haystack;
    let mut found = false;
    while let Some(i) = rest.find(value) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + value.len()..].chars().next();
        let first = value.chars().next();
        let last = value.chars().next_back();
        // Inside a longer word: a word character on either side, touching one.
        let inside = (word(before) && word(first)) || (word(after) && word(last));
        out.push_str(&rest[..i]);
        if !inside {
            out.push_str(with);
            found = true;
        } else {
            out.push_str(value);
        }
        rest = &rest[i + value.len()..];
    }
    out.push_str(rest);
    found.then_some(out)
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a Path, env: EnvLookup<'a>) -> Reader<'a> {
        Reader {
            file,
            env,
            problems: Vec::new(),
            source_is_blank: false,
            expanded: Vec::new(),
        }
    }

    /// The problems, with every value that came from the environment
    /// replaced by the `${VAR}` text it was written as.
    pub fn into_problems(self) -> Vec<Diagnostic> {
        let mut problems = self.problems;
        for d in &mut problems {
            for (span, value, text) in &self.expanded {
                if *span != d.span || value.is_empty() {
                    continue;
                }
                let mut hid = false;
                for part in std::iter::once(&mut d.message)
                    .chain(d.notes.iter_mut())
                    .chain(d.hint.iter_mut())
                {
                    if let Some(replaced) = replace_whole(part, value, text) {
                        *part = replaced;
                        hid = true;
                    }
                }
                if hid {
                    d.notes.push(format!(
                        "`{text}` stands for its value from the environment, which is not shown"
                    ));
                }
            }
        }
        problems
    }

    /// Records a problem and returns it, so the caller may add a hint.
    pub fn error(
        &mut self,
        span: Span,
        field: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::new(self.file, span, field, message));
        self.problems.last_mut().expect("just pushed")
    }

    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Views `node` as a mapping. `null` (a key with nothing after it) is an
    /// empty mapping.
    pub fn map<'n>(&mut self, node: &'n Node, field: &str) -> Option<MapView<'n>> {
        match &node.value {
            Value::Map(entries) => Some(MapView {
                span: node.span,
                entries,
                field: field.to_string(),
                known: Vec::new(),
            }),
            Value::Null => Some(MapView {
                span: node.span,
                entries: &[],
                field: field.to_string(),
                known: Vec::new(),
            }),
            _ => {
                let kind = node.kind();
                self.error(
                    node.span,
                    field,
                    format!("expected a mapping (`key: value` lines), found {kind}"),
                );
                None
            }
        }
    }

    /// The raw text of a scalar, before interpolation.
    fn scalar_text<'n>(&mut self, node: &'n Node, field: &str, expected: &str) -> Option<&'n str> {
        match &node.value {
            Value::Scalar(s) => Some(&s.text),
            _ => {
                let kind = node.kind();
                self.error(
                    node.span,
                    field,
                    format!("expected {expected}, found {kind}"),
                );
                None
            }
        }
    }

    fn check_chars(&mut self, value: &str, span: Span, field: &str) -> bool {
        if value.contains('\n') || value.contains('\r') {
            self.error(span, field, "line breaks are not allowed here")
                .hint = Some("every value poolwright writes must fit on one line".into());
            return false;
        }
        if value.contains('\0') {
            self.error(span, field, "NUL bytes are not allowed");
            return false;
        }
        true
    }

    fn interpolated(&mut self, text: &str, span: Span) -> Result<String, Problem> {
        let value = interpolate(text, self.env)?;
        if value != text {
            self.expanded.push((span, value.clone(), text.to_string()));
        }
        Ok(value)
    }

    fn report_problem(&mut self, problem: &Problem, span: Span, field: &str) {
        let d = self.error(span, field, problem.describe());
        if let Problem::Unset { var, message: None } = problem {
            d.hint = Some(format!(
                "export {var}=..., or give a default with `${{{var}:-value}}`"
            ));
        }
    }

    /// A string value, interpolated.
    pub fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        let span = node.span;
        let text = self.scalar_text(node, field, "a string")?;
        match self.interpolated(text, span) {
            Ok(value) => self.check_chars(&value, span, field).then_some(value),
            Err(p) => {
                self.report_problem(&p, span, field);
                None
            }
        }
    }

    /// A string that `check` accepts: its problem (a sentence) is reported
    /// at the value, with `hint`. The toolkit knows no rules of its own:
    /// callers bring theirs (one host name for a URL, say).
    pub fn checked(
        &mut self,
        node: &Node,
        field: &str,
        check: impl Fn(&str) -> Option<String>,
        hint: &str,
    ) -> Option<String> {
        let value = self.string(node, field)?;
        if let Some(problem) = check(&value) {
            self.error(node.span, field, problem).hint = Some(hint.into());
            return None;
        }
        Some(value)
    }

    /// A secret: like [`Reader::string`], but an unset variable is deferred.
    pub fn secret(&mut self, node: &Node, field: &str) -> Option<Secret> {
        let span = node.span;
        let text = self.scalar_text(node, field, "a string")?;
        match self.interpolated(text, span) {
            Ok(value) => {
                if !self.check_chars(&value, span, field) {
                    return None;
                }
                if value.is_empty() {
                    self.error(span, field, "the password is empty");
                    return None;
                }
                Some(Secret::known(value))
            }
            Err(p @ Problem::Syntax(_)) => {
                self.report_problem(&p, span, field);
                None
            }
            Err(p @ Problem::Unset { .. }) => {
                let mut d = Diagnostic::new(self.file, span, field, p.describe());
                if let Problem::Unset { var, message: None } = &p {
                    d = d.with_hint(format!("export {var}=... before running this command"));
                }
                Some(Secret::deferred(d))
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn integer(&mut self, node: &Node, field: &str, min: i64, max: i64) -> Option<i64> {
        let span = node.span;
        let text = self.scalar_text(node, field, "an integer")?;
        let value = match self.interpolated(text, span) {
            Ok(v) => v,
            Err(p) => {
                self.report_problem(&p, span, field);
                return None;
            }
        };
        let Ok(n) = value.trim().parse::<i64>() else {
            self.error(span, field, format!("expected an integer, found `{value}`"));
            return None;
        };
        if n < min {
            self.error(span, field, format!("must be at least {min}, found {n}"));
            return None;
        }
        if n > max {
            self.error(span, field, format!("must be at most {max}, found {n}"));
            return None;
        }
        Some(n)
    }

    /// A non-negative number of seconds, possibly fractional; returned as
    /// the canonical text PgBouncer reads (`3`, `0.5`).
    pub fn seconds(&mut self, node: &Node, field: &str) -> Option<String> {
        let span = node.span;
        let text = self.scalar_text(node, field, "a number of seconds")?;
        let value = match self.interpolated(text, span) {
            Ok(v) => v,
            Err(p) => {
                self.report_problem(&p, span, field);
                return None;
            }
        };
        match value.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Some(format!("{n}")),
            Ok(n) if n < 0.0 => {
                self.error(
                    span,
                    field,
                    format!("must be at least 0 seconds, found {value}"),
                );
                None
            }
            _ => {
                self.error(
                    span,
                    field,
                    format!("expected a number of seconds, found `{value}`"),
                )
                .hint =
                    Some("write plain seconds, e.g. `3600`; fractions like `0.5` are fine".into());
                None
            }
        }
    }

    /// A boolean: `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        let span = node.span;
        let text = self.scalar_text(node, field, "true or false")?;
        let value = match self.interpolated(text, span) {
            Ok(v) => v,
            Err(p) => {
                self.report_problem(&p, span, field);
                return None;
            }
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => {
                self.error(
                    span,
                    field,
                    format!("expected true or false, found `{value}`"),
                );
                None
            }
        }
    }

    /// One of `values`.
    pub fn choice(&mut self, node: &Node, field: &str, values: &[&str]) -> Option<String> {
        let span = node.span;
        let value = self.string(node, field)?;
        if values.contains(&value.as_str()) {
            return Some(value);
        }
        let list = values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let d = self.error(
            span,
            field,
            format!("unknown value `{value}`; expected one of {list}"),
        );
        if let Some(m) = did_you_mean(&value, values.iter().copied()) {
            d.hint = Some(format!("did you mean `{m}`?"));
        }
        None
    }

    /// A list of strings, written as a YAML list or one comma-separated string.
    pub fn list(&mut self, node: &Node, field: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.string(item, &format!("{field}[{i}]"))?);
                }
                Some(out)
            }
            Value::Scalar(_) => {
                let text = self.string(node, field)?;
                Some(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            Value::Null => Some(Vec::new()),
            Value::Map(_) => {
                self.error(
                    node.span,
                    field,
                    "expected a list of names, found a mapping",
                );
                None
            }
        }
    }
}

/// A mapping being read; remembers which keys the reader asked for.
pub struct MapView<'n> {
    pub span: Span,
    entries: &'n [(Key, Node)],
    pub field: String,
    known: Vec<String>,
}

impl<'n> MapView<'n> {
    /// The node under `key`, if present; marks `key` as known.
    pub fn get(&mut self, key: &str) -> Option<&'n Node> {
        self.known.push(key.to_string());
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, n)| n)
    }

    /// The dotted field path of `key` in this mapping.
    pub fn field(&self, key: &str) -> String {
        if self.field.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.field)
        }
    }

    /// All entries, for mappings whose keys are names chosen by the user.
    pub fn entries(&self) -> &'n [(Key, Node)] {
        self.entries
    }

    /// Reports every key that no getter asked for.
    pub fn finish(self, reader: &mut Reader<'_>) {
        for (key, _) in self.entries {
            if self.known.contains(&key.name) {
                continue;
            }
            let field = self.field(&key.name);
            let d = reader.error(key.span, &field, format!("unknown key `{}`", key.name));
            if key.name == "<<" {
                d.hint = Some(
                    "poolwright does not expand YAML merge keys (`<<: *anchor`); write the keys out"
                        .into(),
                );
                continue;
            }
            d.hint = Some(
                match did_you_mean(&key.name, self.known.iter().map(String::as_str)) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => {
                        let mut known: Vec<&str> = self.known.iter().map(String::as_str).collect();
                        known.dedup();
                        format!("known keys here: {}", known.join(", "))
                    }
                },
            );
        }
    }

    /// Like `get`, but records an error when the key is missing.
    pub fn require(&mut self, key: &str, reader: &mut Reader<'_>) -> Option<&'n Node> {
        let node = self.get(key);
        if node.is_none() {
            let field = self.field(key);
            reader.error(self.span, &field, format!("missing required key `{key}`"));
        }
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn messages_show_the_variable_not_its_value() {
        let env = |name: &str| match name {
            "DB_PASSWORD" => Some("hunter2:x".to_string()),
            "P" => Some("5".to_string()),
            _ => None,
        };
        let yaml = "port: \"${DB_PASSWORD}\"\nother: \"${P}\"\n";
        let root = crate::yaml::node::parse(Path::new("p.yaml"), yaml).unwrap();
        let crate::yaml::node::Value::Map(entries) = &root.value else {
            panic!("a map")
        };
        let mut reader = Reader::new(Path::new("p.yaml"), &env);
        assert_eq!(reader.integer(&entries[0].1, "port", 1, 65535), None);
        assert_eq!(reader.integer(&entries[1].1, "other", 10, 65535), None);
        let problems = reader.into_problems();
        assert_eq!(
            problems[0].message,
            "expected an integer, found `${DB_PASSWORD}`"
        );
        assert_eq!(
            problems[0].notes,
            vec!["`${DB_PASSWORD}` stands for its value from the environment, which is not shown"]
        );
        assert_eq!(problems[1].message, "must be at least 10, found ${P}");
    }

    #[test]
    fn replaces_whole_values_only() {
        assert_eq!(
            replace_whole("at most 65535, found 5", "5", "$P").unwrap(),
            "at most 65535, found $P"
        );
        assert_eq!(
            replace_whole("`a:b` is bad", "a:b", "$X").unwrap(),
            "`$X` is bad"
        );
        assert_eq!(replace_whole("65535", "5", "$P"), None);
    }

    #[test]
    fn debug_formatting_never_shows_a_secret() {
        let secret = Secret::known("hunter2-d3bug");
        let shown = format!("{secret:?} {secret:#?} {:?}", Some(&secret));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(****)"), "{shown}");
    }

    fn problems(public_host: &str) -> Vec<String> {
        let yaml = format!(
            "version: 1\ntargets:\n  p:\n    provider: pgbouncer\n    upstream: {{ host: db }}\n    public_host: \"{public_host}\"\n    databases: {{ app: {{}} }}\n    users: {{ app: {{ password: pw }} }}\n"
        );
        match crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None) {
            Ok(_) => Vec::new(),
            Err(Error::Config(d)) => d.items.into_iter().map(|i| i.message).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_url_host_is_one_non_empty_host() {
        // Found with the url invariant: `a,b` made a URL libpq reads as two
        // hosts, and an empty host one that connects to the local socket.
        assert_eq!(problems("pgb.internal"), Vec::<String>::new());
        assert_eq!(problems(""), vec!["the host is empty"]);
        assert!(problems("a,b")[0].contains("list of hosts"));
    }
}
