//! The provider plugins: manifests (facts) plus a Rust module (behaviour).
//!
//! `provider: NAME` in a target picks the manifest called NAME; the
//! manifest's `module` picks the Rust code that reads the target's settings
//! and renders, plans and applies it. [`ProviderTarget`] is the registry:
//! one variant per module, so adding a module makes the compiler list every
//! place that must learn about it.

pub mod manifest;
pub mod pgbouncer;

use crate::config::reader::Reader;
use crate::config::yaml::Node;
use crate::diagnostic::did_you_mean;
use crate::drivers::PoolerTraits;
use crate::url::PgUrl;

use self::manifest::{Manifest, Module};

/// A target's provider with its validated settings.
#[derive(Debug)]
pub enum ProviderTarget {
    PgBouncer(pgbouncer::Target),
}

impl ProviderTarget {
    /// The manifest name, as written after `provider:`.
    pub fn provider_name(&self) -> &'static str {
        match self {
            ProviderTarget::PgBouncer(_) => "pgbouncer",
        }
    }

    /// A short description for plans and tables.
    pub fn describe(&self) -> String {
        match self {
            ProviderTarget::PgBouncer(t) => format!("self-hosted PgBouncer {}", t.version),
        }
    }

    /// The pooled URL, when known without contacting a cloud API.
    pub fn pooled_url(&self) -> Option<PgUrl> {
        match self {
            ProviderTarget::PgBouncer(t) => Some(t.pooled_url()),
        }
    }

    /// What drivers need to know about the pooler.
    pub fn pooler_traits(&self) -> PoolerTraits {
        match self {
            ProviderTarget::PgBouncer(t) => t.pooler_traits(),
        }
    }

    /// The direct (unpooled) URL, for migrations.
    pub fn direct_url(&self) -> Option<PgUrl> {
        match self {
            ProviderTarget::PgBouncer(t) => Some(t.direct_url()),
        }
    }
}

/// Reads one target: its `provider`, then the provider's own settings.
pub fn decode(
    reader: &mut Reader<'_>,
    name: &str,
    node: &Node,
    field: &str,
) -> Option<ProviderTarget> {
    let mut map = reader.map(node, field)?;
    let provider_node = map.require("provider", reader)?;
    let provider_field = map.field("provider");
    let provider = reader.string(provider_node, &provider_field)?;
    let Some(manifest) = manifest::find(&provider) else {
        let names: Vec<&str> = manifest::builtin()
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let d = reader.error(
            provider_node.span,
            &provider_field,
            format!("unknown provider `{provider}`"),
        );
        d.hint = Some(match did_you_mean(&provider, names.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("the providers are: {}", names.join(", ")),
        });
        return None;
    };
    decode_with(reader, manifest, name, map)
}

fn decode_with(
    reader: &mut Reader<'_>,
    manifest: &'static Manifest,
    name: &str,
    map: crate::config::reader::MapView<'_>,
) -> Option<ProviderTarget> {
    match manifest.module {
        Module::PgBouncer => {
            pgbouncer::decode(reader, manifest, name, map).map(ProviderTarget::PgBouncer)
        }
    }
}
