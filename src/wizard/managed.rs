//! The questions for a manifest-only provider, from its `[managed]` fields,
//! and its block's context. Nothing here knows a provider: a field's `doc`
//! is the help, `default` and `choices` shape the question, and the one
//! `secret` field is the password's variable.

use serde::Serialize;

use super::pgbouncer::yaml_quoted_var;
use super::prompter::{Choice, Prompter, Question, Stop};
use super::{Session, one_line, pool_mode_doc, sentence, wrap, yaml_key, yaml_value};
use crate::providers::managed_facts::{FieldSpec, ManagedFacts};

fn facts(s: &Session<'_>) -> &'static ManagedFacts {
    s.manifest
        .managed
        .as_ref()
        .expect("checked by Manifest::check")
}

/// The question key of a field: the shared flag where one fits
/// (`--user`, `--database`, `--pool-mode`), else `--set FIELD=VALUE`.
pub fn key(field: &FieldSpec) -> String {
    if field.secret {
        return "password-env".into();
    }
    match field.name.as_str() {
        "user" => "user".into(),
        "database" => "database".into(),
        "pool_mode" => "pool-mode".into(),
        other => format!("set.{other}"),
    }
}

fn prompt(field: &FieldSpec) -> String {
    let words = field.name.replace('_', " ");
    let mut chars = words.chars();
    let title = chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    });
    if field.required || field.default.is_some() {
        title
    } else {
        format!("{title} (optional)")
    }
}

pub fn ask(s: &mut Session<'_>, p: &mut dyn Prompter) -> Result<(), Stop> {
    for field in &facts(s).fields {
        if field.secret {
            let role = s.answer("user").unwrap_or("the user").to_string();
            s.ask_password(p, &field.name, &role, false)?;
            continue;
        }
        let mut question = Question::new(key(field), prompt(field)).help(one_line(&field.doc));
        if let Some(d) = &field.default {
            question = question.default(d.clone());
        } else if !field.required {
            question = question.optional();
        }
        if field.choices.is_empty() {
            s.text_question(p, &question, &field.name)?;
        } else {
            let choices: Vec<Choice> = field
                .choices
                .iter()
                .map(|c| Choice {
                    value: c.clone(),
                    label: match pool_mode_doc(c) {
                        "" => c.clone(),
                        doc => format!("{c}: {doc}"),
                    },
                })
                .collect();
            let default = field
                .default
                .as_ref()
                .and_then(|d| field.choices.iter().position(|c| c == d))
                .unwrap_or(0);
            s.select_question(p, &question, &field.name, &choices, default)?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Field {
    key: String,
    value: Option<String>,
    doc: Vec<String>,
}

#[derive(Serialize)]
struct Context {
    key: String,
    provider: String,
    about: Vec<String>,
    fields: Vec<Field>,
    password_var: String,
}

pub fn context(s: &Session<'_>, key_text: &str, fill: bool) -> serde_json::Value {
    let facts = facts(s);
    let in_port = |name: &str| {
        let p = format!("{{{name}}}");
        facts.pooled.port.contains(&p) || facts.direct.port.contains(&p)
    };
    let mut password_var = String::new();
    let fields = facts
        .fields
        .iter()
        .map(|f| {
            let required = f.required && f.default.is_none();
            let value = if f.secret {
                password_var = s
                    .value("password-env", fill, "POOLWRIGHT_PASSWORD")
                    .unwrap_or_default();
                (!password_var.is_empty()).then(|| yaml_quoted_var(&password_var))
            } else {
                let placeholder = match f.choices.first() {
                    Some(c) => c.clone(),
                    None if in_port(&f.name) => "5432".into(),
                    None => "placeholder".into(),
                };
                s.value(&key(f), fill && required, &placeholder)
                    .map(|v| yaml_value(&v))
            };
            Field {
                key: yaml_key(&f.name),
                value,
                doc: wrap(&sentence(&f.doc), 72),
            }
        })
        .collect();
    let ctx = Context {
        key: key_text.to_string(),
        provider: yaml_value(&s.manifest.name),
        about: wrap(&sentence(&s.manifest.summary), 72)
            .into_iter()
            .chain([one_line(&s.manifest.docs)])
            .collect(),
        fields,
        password_var,
    };
    serde_json::to_value(ctx).expect("a context serialises")
}
