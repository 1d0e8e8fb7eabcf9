//! The `[managed]` section of a manifest: the fields a target of a
//! manifest-only provider gives, and the templates its URLs are made from.
//! Data and its checks only; `managed` builds targets and URLs from it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `[managed]` section of a manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedFacts {
    /// The keys a target of this provider gives (besides `provider`).
    pub fields: Vec<FieldSpec>,
    pub pooled: Endpoint,
    pub direct: Endpoint,
    /// URL parameters of both URLs, e.g. `sslmode = "require"`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The pooler's mode; may be a `{field}`.
    pub pool_mode: String,
    /// Whether the pooler keeps protocol-level prepared statements working
    /// in transaction mode.
    pub prepared_statements: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    pub doc: String,
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
    /// A password: read like other secrets, never printed.
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub choices: Vec<String>,
}

/// A URL's parts as templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub host: String,
    pub port: String,
    pub user: String,
    pub database: String,
}

pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + end]);
        rest = &rest[start + end + 1..];
    }
    out
}

impl ManagedFacts {
    /// Checks that every placeholder names a field and that exactly one
    /// field is the password.
    pub fn check(&self) -> Result<(), String> {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        for f in &self.fields {
            let valid = !f.name.is_empty()
                && f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid || f.name == "provider" {
                return Err(format!(
                    "field `{}`: names are lowercase letters, digits and `_`, not `provider`",
                    f.name
                ));
            }
            if names.iter().filter(|n| **n == f.name).count() > 1 {
                return Err(format!("field `{}` is listed twice", f.name));
            }
            if let (Some(d), false) = (&f.default, f.choices.is_empty())
                && !f.choices.contains(d)
            {
                return Err(format!(
                    "field `{}`: default `{d}` is not one of its choices",
                    f.name
                ));
            }
        }
        if self.fields.iter().filter(|f| f.secret).count() != 1 {
            return Err("exactly one field must be `secret = true` (the password)".into());
        }
        for e in [&self.pooled, &self.direct] {
            for template in [&e.host, &e.port, &e.user, &e.database, &self.pool_mode] {
                for p in placeholders(template) {
                    if !names.contains(&p) {
                        return Err(format!("`{{{p}}}` in `{template}` is not a field"));
                    }
                    if self.fields.iter().any(|f| f.name == p && f.secret) {
                        return Err(format!("`{{{p}}}` would put the password into a URL part"));
                    }
                }
            }
        }
        Ok(())
    }
}
