//! The plan: what `apply` would do for each target, as pure data.
//!
//! Built without network or credentials, so `poolwright plan` works in CI
//! and on a laptop. Never holds a password: URLs are masked.

use std::path::Path;

use serde::Serialize;

use crate::config::Target;
use crate::error::Error;
use crate::hand_edits;
use crate::providers::pgbouncer::changes::{self, host_texts, rendered_texts};
use crate::providers::pgbouncer::render::render_configs;
use crate::providers::pgbouncer::{UserlistFormat, budget, processes, sizing};
use crate::providers::{ProviderTarget, rds_proxy};
use crate::render::Templates;

#[derive(Debug, Serialize)]
pub struct TargetPlan {
    pub target: String,
    pub provider: String,
    pub description: String,
    pub files: Vec<PlannedFile>,
    pub actions: Vec<String>,
    /// The pool budget, when it applies.
    pub budget: Vec<String>,
    /// The pooled URL (masked), or `<known after apply>`.
    pub url: String,
    pub direct_url: Option<String>,
    /// Outputs written earlier (`.env` entries) and whether they are current.
    pub outputs: Vec<OutputStatus>,
    /// What the user should know (e.g. cancel routing on old versions).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct OutputStatus {
    pub file: String,
    pub key: String,
    pub driver: String,
    /// `current`, or `stale` (the URL would be different now).
    pub status: String,
}

#[derive(Debug, Serialize)]
pub struct PlannedFile {
    pub name: String,
    pub path: String,
    pub mode: String,
    pub holds_secrets: bool,
    /// Set when the file on this host was changed by hand (or never written
    /// by poolwright): `apply` then stops unless `--force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by_hand: Option<String>,
}

/// What the output shows for a URL that only `apply` can learn.
pub const KNOWN_AFTER_APPLY: &str = "<known after apply>";

/// The plan of `target`. `templates` render what would be written (no
/// secrets needed); the config files on this host tell reload from restart.
pub fn plan(target: &Target, templates: &Templates, source: &str) -> Result<TargetPlan, Error> {
    let mut plan = TargetPlan {
        target: target.name.clone(),
        provider: target.provider.provider_name().to_string(),
        description: target.provider.describe(),
        files: Vec::new(),
        actions: Vec::new(),
        budget: Vec::new(),
        url: target
            .provider
            .pooled_url()
            .map_or_else(|| KNOWN_AFTER_APPLY.to_string(), |u| u.masked()),
        direct_url: target.provider.direct_url().map(|u| u.masked()),
        outputs: Vec::new(),
        notes: Vec::new(),
    };
    match &target.provider {
        ProviderTarget::PgBouncer(t) => {
            for (name, path, mode) in t.host_files() {
                let changed_by_hand = hand_edits::changed_since_written(Path::new(&path))
                    .map(|c| c.describe().to_string());
                plan.files.push(PlannedFile {
                    name: name.to_string(),
                    path,
                    mode: format!("{mode:04o}"),
                    holds_secrets: name == "userlist.txt",
                    changed_by_hand,
                });
            }
            if t.kubernetes.is_some() {
                for name in [
                    "configmap",
                    "secret",
                    "deployment",
                    "service",
                    "poddisruptionbudget",
                ] {
                    plan.files.push(PlannedFile {
                        name: format!("kubernetes/{name}.yaml"),
                        path: format!("<render --out DIR>/kubernetes/{name}.yaml"),
                        mode: if name == "secret" { "0600" } else { "0644" }.to_string(),
                        holds_secrets: name == "secret",
                        changed_by_hand: None,
                    });
                }
            }
            for user in &t.users {
                let (role, at) = (
                    &user.name,
                    format!("{}:{}", t.upstream.host, t.upstream.port),
                );
                if user.console_only {
                    plan.notes.push(format!(
                        "user `{role}` is for the admin console only (admin_users / stats_users): it is in userlist.txt, \
                         but has no pool and never logs in to {at}"
                    ));
                    continue;
                }
                match t.userlist {
                    UserlistFormat::Plain => {}
                    UserlistFormat::Scram => plan.actions.push(format!(
                        "make userlist.txt and {at} hold one SCRAM verifier for role `{role}`: the server's own when it fits \
                         the password (the server is not changed), else a new one stored with ALTER ROLE (logged in as `{role}`), \
                         after which a PgBouncer elsewhere holding another verifier for `{role}` needs an apply too"
                    )),
                    UserlistFormat::Md5 => plan.actions.push(format!(
                        "store the md5 hash of role `{role}` on {at} (ALTER ROLE, logged in as `{role}`); \
                         refused if the server asks SCRAM-SHA-256 of `{role}`, where an md5 hash would lock the role out"
                    )),
                }
            }
            let rendered = rendered_texts(&render_configs(t, templates, source)?);
            let effect = changes::effect(t, &host_texts(t), &rendered);
            plan.actions.push(changes::describe(t, &effect));
            plan.budget = budget::compute(t).explain(t, 10);
            plan.notes.extend(processes::cancel_note(t));
            let chosen = t
                .settings
                .iter()
                .any(|s| s.name == "default_pool_size" && s.span.is_none());
            if chosen {
                let (size, why) = sizing::recommend(t);
                plan.notes.push(format!("default_pool_size {size}: {why}"));
            }
        }
        ProviderTarget::Supabase(t) => {
            match &t.pooler_host {
                Some((host, source)) => plan.notes.push(format!("pooler host {host} ({})", source.describe())),
                None => plan.notes.push(
                    "pooler host unknown: `poolwright apply` reads it from the Management API (SUPABASE_ACCESS_TOKEN), \
                     or set `pooler_host`"
                        .into(),
                ),
            }
            plan.actions.push(format!(
                "read the pooler host of project {} from the Supabase Management API",
                t.project_ref
            ));
        }
        ProviderTarget::Neon(t) => {
            match &t.hosts {
                Some((pooled, _, source)) => plan.notes.push(format!("pooled host {pooled} ({})", source.describe())),
                None => plan.notes.push(
                    "hosts unknown: `poolwright apply` reads them from the Neon API (NEON_API_KEY), or set `endpoint` and `region`"
                        .into(),
                ),
            }
            plan.actions.push(format!(
                "read the endpoint's hosts of project {} from the Neon API",
                t.project_id
            ));
        }
        ProviderTarget::RdsProxy(t) => {
            match &t.endpoint {
                Some((host, source)) => plan
                    .notes
                    .push(format!("endpoint {host} ({})", source.describe())),
                None => plan.notes.push(
                    "the endpoint is known once `poolwright apply` has made the proxy".into(),
                ),
            }
            if let rds_proxy::Auth::Create { username, .. } = &t.auth {
                plan.actions.push(format!(
                    "create or update the Secrets Manager secret poolwright/{}/{username} (username, password)",
                    t.proxy_name
                ));
            }
            let target_name = match &t.db_target {
                rds_proxy::DbTarget::Instance(i) => format!("instance {i}"),
                rds_proxy::DbTarget::Cluster(c) => format!("cluster {c}"),
            };
            plan.actions.push(format!(
                "create RDS Proxy {} in {} if missing, else change what differs (ModifyDBProxy)",
                t.proxy_name, t.region
            ));
            plan.actions.push(format!(
                "register {target_name} as its target and set the connection pool"
            ));
            plan.actions
                .push("wait until the proxy is available and the target healthy".into());
            plan.notes.push("`plan --refresh` compares with AWS and names the changes; the proxy is reachable from its VPC only".into());
        }
        ProviderTarget::Managed(t) => {
            plan.notes.push(format!(
                "{}; the URL follows from the config ({})",
                t.manifest.summary, t.manifest.docs
            ));
        }
    }
    Ok(plan)
}
