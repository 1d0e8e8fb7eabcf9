//! The provider plugins: manifests (facts) plus a Rust module (behaviour).
//!
//! `provider: NAME` in a target picks the manifest called NAME (built in, or
//! the user's own in `providers/` beside poolwright.yaml); the manifest's
//! `module` picks the Rust code that reads the target's settings and
//! renders, plans and applies it. [`ProviderTarget`] is the registry of
//! modules: one variant each, so adding a module makes the compiler list
//! every place that must learn about it.

pub mod managed;
pub mod managed_facts;
pub mod manifest;
pub mod neon;
pub mod pgbouncer;
pub mod rds_proxy;
pub mod supabase;

use crate::diagnostic::did_you_mean;
use crate::drivers::PoolerTraits;
use crate::url::PgUrl;
use crate::yaml::node::Node;
use crate::yaml::reader::{MapView, Reader};

use self::manifest::{Manifest, Module};

/// What decoding a config may draw on besides the file: the provider
/// manifests (built in, and the user's own) and what `apply` learned.
pub struct DecodeContext {
    pub registry: manifest::Registry,
    pub state: crate::state::State,
}

/// Where a value came from, for `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    State,
    Api,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Config => "from poolwright.yaml",
            Source::State => "learned by the last apply (.poolwright-state.json)",
            Source::Api => "from the API",
        }
    }
}

/// A target's provider with its validated settings.
// A config holds a handful of targets: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ProviderTarget {
    PgBouncer(pgbouncer::Target),
    Supabase(supabase::Target),
    Neon(neon::Target),
    Managed(managed::Target),
    RdsProxy(rds_proxy::Target),
}

impl ProviderTarget {
    /// The manifest name, as written after `provider:`.
    pub fn provider_name(&self) -> &str {
        match self {
            ProviderTarget::PgBouncer(_) => "pgbouncer",
            ProviderTarget::Supabase(_) => "supabase",
            ProviderTarget::Neon(_) => "neon",
            ProviderTarget::Managed(t) => &t.manifest.name,
            ProviderTarget::RdsProxy(_) => "rds-proxy",
        }
    }

    /// A short description for plans and tables.
    pub fn describe(&self) -> String {
        match self {
            ProviderTarget::PgBouncer(t) => format!("self-hosted PgBouncer {}", t.version),
            ProviderTarget::Supabase(t) => format!("Supabase Supavisor, {} mode", t.pool_mode),
            ProviderTarget::Neon(_) => "Neon pooler".into(),
            ProviderTarget::Managed(t) => t.manifest.title.clone(),
            ProviderTarget::RdsProxy(t) => {
                format!("AWS RDS Proxy {} in {}", t.proxy_name, t.region)
            }
        }
    }

    /// The pooled URL, when known without contacting a cloud API.
    pub fn pooled_url(&self) -> Option<PgUrl> {
        match self {
            ProviderTarget::PgBouncer(t) => Some(t.pooled_url()),
            ProviderTarget::Supabase(t) => t.pooled_url(),
            ProviderTarget::Neon(t) => t.pooled_url(),
            ProviderTarget::Managed(t) => Some(t.pooled_url()),
            ProviderTarget::RdsProxy(t) => t.pooled_url(),
        }
    }

    /// What drivers need to know about the pooler.
    pub fn pooler_traits(&self) -> PoolerTraits {
        match self {
            ProviderTarget::PgBouncer(t) => t.pooler_traits(),
            ProviderTarget::Supabase(t) => t.pooler_traits(),
            ProviderTarget::Neon(t) => t.pooler_traits(),
            ProviderTarget::Managed(t) => t.pooler_traits(),
            ProviderTarget::RdsProxy(t) => t.pooler_traits(),
        }
    }

    /// The direct (unpooled) URL, for migrations.
    pub fn direct_url(&self) -> Option<PgUrl> {
        match self {
            ProviderTarget::PgBouncer(t) => Some(t.direct_url()),
            ProviderTarget::Supabase(t) => t.direct_url(),
            ProviderTarget::Neon(t) => t.direct_url(),
            ProviderTarget::Managed(t) => Some(t.direct_url()),
            // The database's own endpoint is not in the config.
            ProviderTarget::RdsProxy(_) => None,
        }
    }

    /// Every password the target reads, for commands that report unset ones.
    pub fn secrets(&self) -> Vec<&crate::secret::Secret> {
        match self {
            ProviderTarget::PgBouncer(t) => t.users.iter().map(|u| &u.password).collect(),
            ProviderTarget::Supabase(t) => vec![&t.password],
            ProviderTarget::Neon(t) => vec![&t.password],
            ProviderTarget::Managed(t) => vec![&t.password],
            ProviderTarget::RdsProxy(t) => match &t.auth {
                rds_proxy::Auth::Create { password, .. } => vec![&t.password, password],
                rds_proxy::Auth::Existing { .. } => vec![&t.password],
            },
        }
    }

    /// The self-hosted PgBouncer, for commands that only apply to it.
    pub fn pgbouncer(&self) -> Option<&pgbouncer::Target> {
        match self {
            ProviderTarget::PgBouncer(t) => Some(t),
            _ => None,
        }
    }
}

/// Reads one target: its `provider`, then the provider's own settings.
pub fn decode(
    reader: &mut Reader<'_>,
    context: &DecodeContext,
    name: &str,
    node: &Node,
    field: &str,
) -> Option<ProviderTarget> {
    let mut map = reader.map(node, field)?;
    let provider_node = map.require("provider", reader)?;
    let provider_field = map.field("provider");
    let provider = reader.string(provider_node, &provider_field)?;
    let Some(manifest) = context.registry.find(&provider) else {
        let names = context.registry.names();
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
    decode_with(reader, context, manifest, name, map)
}

fn decode_with(
    reader: &mut Reader<'_>,
    context: &DecodeContext,
    manifest: &'static Manifest,
    name: &str,
    map: MapView<'_>,
) -> Option<ProviderTarget> {
    use crate::state::Learned;
    let learned = |what: Learned| context.state.get(name, what);
    match manifest.module {
        Module::PgBouncer => {
            pgbouncer::decode(reader, manifest, name, map).map(ProviderTarget::PgBouncer)
        }
        Module::Supabase => supabase::decode(reader, name, map, learned(Learned::PoolerHost))
            .map(ProviderTarget::Supabase),
        Module::Neon => {
            let hosts = learned(Learned::PooledHost).zip(learned(Learned::DirectHost));
            neon::decode(reader, name, map, hosts).map(ProviderTarget::Neon)
        }
        Module::Managed => {
            managed::decode(reader, manifest, name, map).map(ProviderTarget::Managed)
        }
        Module::RdsProxy => rds_proxy::decode(reader, name, map, learned(Learned::Endpoint))
            .map(ProviderTarget::RdsProxy),
    }
}
