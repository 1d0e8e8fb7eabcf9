//! Manifest-only providers: managed poolers whose URL follows from a few
//! fields (Azure Flexible Server's PgBouncer on 6432, DigitalOcean's pools
//! on 25061, Crunchy Bridge on 5431, ...). The manifest's `[managed]`
//! section names the fields a target gives and templates for the pooled and
//! the direct URL, with `{field}` placeholders; no Rust per provider.

use std::collections::BTreeMap;

use super::managed_facts::{Endpoint, ManagedFacts, placeholders};
use super::manifest::Manifest;
use crate::drivers::PoolerTraits;
use crate::secret::Secret;
use crate::url::PgUrl;
use crate::yaml::reader::{MapView, Reader};

fn fill(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub manifest: &'static Manifest,
    pub values: BTreeMap<String, String>,
    pub password: Secret,
}

impl Target {
    fn facts(&self) -> &'static ManagedFacts {
        self.manifest
            .managed
            .as_ref()
            .expect("checked by Manifest::check")
    }

    fn url(&self, e: &Endpoint) -> PgUrl {
        let port = fill(&e.port, &self.values).parse().unwrap_or(5432);
        let mut url = PgUrl::new(
            &fill(&e.host, &self.values),
            port,
            &fill(&e.database, &self.values),
        )
        .with_user(&fill(&e.user, &self.values), Some(self.password.clone()));
        url.scheme = self.manifest.connection.scheme.clone();
        for (k, v) in &self.facts().params {
            url = url.with_param(k, &fill(v, &self.values));
        }
        url
    }

    pub fn pooled_url(&self) -> PgUrl {
        self.url(&self.facts().pooled)
    }

    pub fn direct_url(&self) -> PgUrl {
        self.url(&self.facts().direct)
    }

    pub fn pooler_traits(&self) -> PoolerTraits {
        let mode = fill(&self.facts().pool_mode, &self.values);
        let transaction = mode != "session";
        PoolerTraits {
            name: format!("{} in {mode} mode", self.manifest.title),
            transaction_pooling: transaction,
            prepared_statements: !transaction || self.facts().prepared_statements,
        }
    }
}

/// Reads a target of a manifest-only provider.
pub fn decode(
    reader: &mut Reader<'_>,
    manifest: &'static Manifest,
    name: &str,
    mut map: MapView<'_>,
) -> Option<Target> {
    let facts = manifest
        .managed
        .as_ref()
        .expect("checked by Manifest::check");
    let before = reader.problems.len();
    let mut values = BTreeMap::new();
    let mut password = None;
    // Where each field was given, for a message about a host made of it.
    let mut spans = BTreeMap::new();
    for f in &facts.fields {
        let key = f.name.as_str();
        let node = if f.required && f.default.is_none() {
            map.require(key, reader)
        } else {
            map.get(key)
        };
        let field = map.field(key);
        if let Some(n) = node {
            spans.insert(f.name.clone(), (n.span, field.clone()));
        }
        match (node, f.secret) {
            (Some(n), true) => password = reader.secret(n, &field),
            (Some(n), false) if !f.choices.is_empty() => {
                let choices: Vec<&str> = f.choices.iter().map(String::as_str).collect();
                if let Some(v) = reader.choice(n, &field, &choices) {
                    values.insert(f.name.clone(), v);
                }
            }
            (Some(n), false) => {
                if let Some(v) = reader.string(n, &field) {
                    values.insert(f.name.clone(), v);
                }
            }
            (None, _) => {
                if let Some(d) = &f.default {
                    values.insert(f.name.clone(), d.clone());
                }
            }
        }
    }
    let span = map.span;
    map.finish(reader);
    let mut refused_hosts = Vec::new();
    for (what, e) in [("pooled", &facts.pooled), ("direct", &facts.direct)] {
        let port = fill(&e.port, &values);
        if port.parse::<u16>().map_or(true, |p| p == 0)
            && placeholders(&e.port)
                .iter()
                .all(|p| values.contains_key(*p))
        {
            reader.error(
                span,
                &format!("targets.{name}"),
                format!("the {what} port `{port}` is not a port number"),
            );
        }
        // The host is made of the target's fields: the one host rule,
        // told at the field that went into it.
        let host = fill(&e.host, &values);
        let fields = placeholders(&e.host);
        if let Some(problem) = crate::url::host_problem(&host)
            && fields.iter().all(|p| values.contains_key(*p))
            && !refused_hosts.contains(&host)
        {
            let (at, field) = fields
                .iter()
                .find_map(|p| spans.get(*p).cloned())
                .unwrap_or((span, format!("targets.{name}")));
            reader.error(
                at,
                &field,
                format!("the {what} host is not one host: {problem}"),
            );
            refused_hosts.push(host);
        }
    }
    if reader.problems.len() > before {
        return None;
    }
    Some(Target {
        name: name.to_string(),
        manifest,
        values,
        password: password?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholders("{server}.postgres.database.azure.com"),
            vec!["server"]
        );
        assert_eq!(placeholders("p.{a}.{b}"), vec!["a", "b"]);
        assert!(placeholders("6432").is_empty());
        let values = BTreeMap::from([("a".to_string(), "x".to_string())]);
        assert_eq!(fill("p.{a}.{b}", &values), "p.x.{b}");
    }
}
