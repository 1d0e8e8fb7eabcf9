//! Templates: tera, embedded into the binary, overridable per file.
//!
//! The built-in templates live in `templates/` and are compiled in. With
//! `--templates DIR`, a file at the same relative path in DIR replaces the
//! built-in one; a file there that poolwright does not use is an error, so
//! a misspelt override is not silently ignored. Tera escapes nothing for
//! these names; the filters below do the quoting each file format needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tera::{Context, Tera, Value};

use crate::error::Error;

/// Embeds templates by their path under templates/.
macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// The built-in templates: (name, contents).
const BUILTIN: &[(&str, &str)] = embed!(
    "pgbouncer/pgbouncer.ini.tera",
    "pgbouncer/userlist.txt.tera",
    "pgbouncer/pgbouncer.service.tera",
    "pgbouncer/pgbouncer-common.ini.tera",
    "pgbouncer/pgbouncer-process.ini.tera",
    "pgbouncer/pgbouncer@.service.tera",
    "kubernetes/configmap.yaml.tera",
    "kubernetes/secret.yaml.tera",
    "kubernetes/deployment.yaml.tera",
    "kubernetes/service.yaml.tera",
    "kubernetes/poddisruptionbudget.yaml.tera",
    "drivers/libpq.tera",
    "drivers/psycopg2.tera",
    "drivers/psycopg.tera",
    "drivers/sqlalchemy.tera",
    "drivers/sqlalchemy-psycopg.tera",
    "drivers/asyncpg.tera",
    "drivers/sqlalchemy-asyncpg.tera",
    "drivers/prisma.tera",
    "drivers/node-postgres.tera",
    "drivers/postgres-js.tera",
    "drivers/jdbc.tera",
    "drivers/pgx.tera",
    "drivers/rails.tera",
    "drivers/django.tera",
    "init/header.yaml.tera",
    "init/pgbouncer.yaml.tera",
    "init/supabase.yaml.tera",
    "init/neon.yaml.tera",
    "init/managed.yaml.tera",
);

pub struct Templates {
    tera: Tera,
    /// Where each template came from, for error messages.
    origin: HashMap<String, String>,
}

/// A value inside a `[databases]` connection string: single-quoted (with
/// `'` doubled) when it holds anything but plain characters.
pub fn connstr_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | ',' | '@' | '+')
        });
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

fn string_arg(value: &Value, filter: &str) -> tera::Result<String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| tera::Error::msg(format!("filter `{filter}` expects a string")))
}

fn userlist_quote_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    crate::userlist::quote_checked(&string_arg(value, "userlist_quote")?)
        .map(Value::String)
        .map_err(tera::Error::msg)
}

fn connstr_value_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        other => string_arg(other, "connstr_value")?,
    };
    Ok(Value::String(connstr_value(&text)))
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn yaml_string_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        other => string_arg(other, "yaml_string")?,
    };
    Ok(Value::String(
        serde_json::to_string(&text).expect("strings serialise"),
    ))
}

/// Every line indented by `n` spaces, for YAML block scalars.
fn indent_filter(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let n = args.get("n").and_then(Value::as_u64).unwrap_or(2) as usize;
    let pad = " ".repeat(n);
    let text = string_arg(value, "indent")?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect();
    Ok(Value::String(lines.join("\n")))
}

impl Templates {
    /// The built-in templates, with the files of `overrides` (if any) in
    /// place of the built-in ones of the same name.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, Error> {
        let mut sources: Vec<(String, String, String)> = BUILTIN
            .iter()
            .map(|(name, text)| {
                (
                    (*name).to_string(),
                    (*text).to_string(),
                    format!("built-in {name}"),
                )
            })
            .collect();
        if let Some(dir) = overrides {
            for path in template_files(dir)? {
                let name = path
                    .strip_prefix(dir)
                    .expect("listed under dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                let Some(slot) = sources.iter_mut().find(|(n, _, _)| *n == name) else {
                    let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                    return Err(Error::message(format!(
                        "{} does not replace any template poolwright uses",
                        path.display()
                    ))
                    .with_hint(format!("the templates are: {}", known.join(", "))));
                };
                slot.1 = crate::files::read_host_text(&path)
                    .map_err(|e| Error::io(&path, &e))?
                    .ok_or_else(|| {
                        Error::message(format!("{}: removed while read", path.display()))
                    })?;
                slot.2 = path.display().to_string();
            }
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        tera.register_filter("userlist_quote", userlist_quote_filter);
        tera.register_filter("connstr_value", connstr_value_filter);
        tera.register_filter("yaml_string", yaml_string_filter);
        tera.register_filter("indent", indent_filter);
        let mut origin = HashMap::new();
        for (name, text, from) in sources {
            tera.add_raw_template(&name, &text)
                .map_err(|e| Error::message(format!("template {from}: {}", chain(&e))))?;
            origin.insert(name, from);
        }
        Ok(Templates { tera, origin })
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String, Error> {
        let context = Context::from_serialize(context)
            .map_err(|e| Error::message(format!("template context: {e}")))?;
        self.tera.render(name, &context).map_err(|e| {
            let from = self.origin.get(name).map_or(name, String::as_str);
            Error::message(format!("rendering {from}: {}", chain(&e)))
        })
    }
}

/// A tera error with its causes, which carry the useful part.
fn chain(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `*.tera` files under `dir`. Linked directories are followed once
/// each (by device and inode), so a link loop cannot keep the walk going.
fn template_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::metadata(&d).map_err(|e| Error::io(&d, &e))?;
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, &e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&d, &e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tera") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_connection_string_values_only_when_needed() {
        assert_eq!(connstr_value("db.internal"), "db.internal");
        assert_eq!(connstr_value("5432"), "5432");
        assert_eq!(connstr_value("my db"), "'my db'");
        assert_eq!(connstr_value("it's"), "'it''s'");
        assert_eq!(connstr_value("a=b"), "'a=b'");
        assert_eq!(connstr_value(""), "''");
    }

    #[test]
    fn builtin_templates_parse() {
        Templates::load(None).unwrap();
    }

    #[test]
    fn an_override_that_replaces_nothing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pgbouncer")).unwrap();
        std::fs::write(dir.path().join("pgbouncer/pgbouncer.in.tera"), "x").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(
            err.to_string().contains("does not replace any template"),
            "{err}"
        );
    }

    #[test]
    fn an_override_replaces_the_builtin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pgbouncer")).unwrap();
        std::fs::write(
            dir.path().join("pgbouncer/userlist.txt.tera"),
            "custom {{ x }}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        #[derive(Serialize)]
        struct C {
            x: u8,
        }
        assert_eq!(
            t.render("pgbouncer/userlist.txt.tera", &C { x: 7 })
                .unwrap(),
            "custom 7"
        );
    }
}
