//! `provider: neon`: Neon's built-in PgBouncer.
//!
//! The pooled host is the endpoint's host with `-pooler` after the endpoint
//! id (`ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech`), same port,
//! same credentials. Offline it follows from `endpoint` and `region`; with
//! NEON_API_KEY `apply` asks the API (`GET /projects/{id}/endpoints` to find
//! the branch's read-write endpoint, `GET /projects/{id}/connection_uri`
//! with `pooled=true` and without) and keeps both hosts in the state file.
//!
//! TLS is mandatory on Neon: every URL carries `sslmode=require`. Channel
//! binding (`channel_binding=require`, SCRAM-SHA-256-PLUS) is what Neon's own
//! CLI adds, and it is what makes `sslmode=require` safe against a server in
//! the middle, since the TLS certificate is not verified. But it is a libpq
//! parameter: drivers with their own URL parser reject it or, like asyncpg,
//! send it to the server as a startup parameter, which the pooler refuses.
//! So it goes only into URLs for libpq-based drivers.

use serde_json::Value;

use super::Source;
use crate::api::Api;
use crate::drivers::PoolerTraits;
use crate::error::Error;
use crate::secret::Secret;
use crate::url::{PgUrl, host_problem, learned_host_problem};
use crate::yaml::reader::{MapView, Reader};

pub const API_URL: &str = "https://console.neon.tech/api/v2";
pub const TOKEN_VAR: &str = "NEON_API_KEY";
pub const API_URL_VAR: &str = "NEON_API_URL";

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub project_id: String,
    pub branch: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub role: String,
    pub password: Secret,
    pub database: String,
    /// (pooled host, direct host) and where they came from.
    pub hosts: Option<(String, String, Source)>,
}

/// `ep-x.us-east-2.aws.neon.tech` -> `ep-x-pooler.us-east-2.aws.neon.tech`.
pub fn pooled_host(direct: &str) -> String {
    match direct.split_once('.') {
        Some((id, rest)) if !id.ends_with("-pooler") => format!("{id}-pooler.{rest}"),
        _ => direct.to_string(),
    }
}

/// The host of a `postgresql://...@host[:port]/db` URI.
pub fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

impl Target {
    fn url(&self, host: &str) -> PgUrl {
        let mut url = PgUrl::new(host, 5432, &self.database)
            .with_user(&self.role, Some(self.password.clone()))
            .with_param("sslmode", "require");
        url.libpq_only
            .push(("channel_binding".into(), "require".into()));
        url
    }

    pub fn pooled_url(&self) -> Option<PgUrl> {
        self.hosts.as_ref().map(|(pooled, _, _)| self.url(pooled))
    }

    pub fn direct_url(&self) -> Option<PgUrl> {
        self.hosts.as_ref().map(|(_, direct, _)| self.url(direct))
    }

    pub fn pooler_traits(&self) -> PoolerTraits {
        // Neon runs PgBouncer in transaction mode only, and it tracks
        // protocol-level prepared statements (max_prepared_statements > 0).
        PoolerTraits {
            name: "Neon's PgBouncer in transaction mode".into(),
            transaction_pooling: true,
            prepared_statements: true,
        }
    }

    /// Asks the API for the endpoint's hosts: (pooled, direct).
    pub async fn fetch_hosts(&self, api: &Api) -> Result<(String, String), Error> {
        let project = format!("project `{}`", self.project_id);
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => {
                let body = api
                    .get(
                        &format!("/projects/{}/endpoints", self.project_id),
                        &[],
                        &project,
                    )
                    .await?;
                read_write_endpoint(&body, self.branch.as_deref()).ok_or_else(|| {
                    Error::message(format!(
                        "{} lists no read-write endpoint for {project}{}",
                        api.name,
                        self.branch
                            .as_deref()
                            .map(|b| format!(", branch `{b}`"))
                            .unwrap_or_default()
                    ))
                    .with_hint(
                        "create a compute endpoint for the branch, or name it with `endpoint:`",
                    )
                })?
            }
        };
        let mut query = vec![
            ("database_name", self.database.as_str()),
            ("role_name", self.role.as_str()),
            ("endpoint_id", endpoint.as_str()),
        ];
        if let Some(b) = &self.branch {
            query.push(("branch_id", b.as_str()));
        }
        let path = format!("/projects/{}/connection_uri", self.project_id);
        let mut hosts = Vec::new();
        for pooled in ["true", "false"] {
            let mut q = query.clone();
            q.push(("pooled", pooled));
            let body = api
                .get(&path, &q, &format!("{project}, endpoint `{endpoint}`"))
                .await?;
            // The URI carries the role's password: only its host is kept.
            let host = body["uri"].as_str().and_then(uri_host).ok_or_else(|| {
                Error::message(format!(
                    "{} answered connection_uri without a usable `uri`",
                    api.name
                ))
            })?;
            // The same host rule as the config's: an API's answer goes
            // into URLs and the state file, and nothing is kept when it fails.
            if let Some(problem) = host_problem(&host) {
                return Err(Error::message(format!(
                    "{} answered connection_uri for {project} with a host that is not one host: {problem}",
                    api.name
                ))
                .with_hint("nothing was stored; name the endpoint with `endpoint:` and `region:` in poolwright.yaml"));
            }
            hosts.push(host);
        }
        let direct = hosts.pop().expect("two answers");
        let pooled = hosts.pop().expect("two answers");
        Ok((pooled, direct))
    }
}

/// The id of the read-write endpoint (of `branch`, when given).
pub fn read_write_endpoint(body: &Value, branch: Option<&str>) -> Option<String> {
    body["endpoints"]
        .as_array()?
        .iter()
        .filter(|e| e["type"] == "read_write")
        .find(|e| branch.is_none_or(|b| e["branch_id"] == b))
        .and_then(|e| e["id"].as_str())
        .map(str::to_string)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 60
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Reads a `provider: neon` target; `learned` holds the state's hosts.
pub fn decode(
    reader: &mut Reader<'_>,
    name: &str,
    mut map: MapView<'_>,
    learned: Option<(&str, &str)>,
) -> Option<Target> {
    let before = reader.problems.len();
    let id = |key: &'static str, required: bool, map: &mut MapView<'_>, reader: &mut Reader<'_>| {
        let node = if required {
            map.require(key, reader)
        } else {
            map.get(key)
        };
        let node = node?;
        let value = reader.string(node, &map.field(key))?;
        if !valid_id(&value) {
            reader
                .error(
                    node.span,
                    &map.field(key),
                    format!("`{value}` is not a Neon id"),
                )
                .hint = Some("Neon ids are lowercase letters, digits and `-`, at most 60".into());
        }
        Some(value)
    };
    let project_id = id("project_id", true, &mut map, reader);
    let branch = id("branch", false, &mut map, reader);
    let endpoint_span = map.get("endpoint").map_or(map.span, |n| n.span);
    let endpoint = id("endpoint", false, &mut map, reader);
    let region = id("region", false, &mut map, reader);
    let role = map
        .require("role", reader)
        .and_then(|n| reader.string(n, &map.field("role")));
    let password = map
        .require("password", reader)
        .and_then(|n| reader.secret(n, &map.field("password")));
    let database = map
        .require("database", reader)
        .and_then(|n| reader.string(n, &map.field("database")));
    let span = map.span;
    map.finish(reader);
    if let Some((pooled, direct)) = learned
        && let Some(problem) = host_problem(pooled).or_else(|| host_problem(direct))
    {
        reader
            .error(
                span,
                &format!("targets.{name}"),
                learned_host_problem("endpoint host", &problem),
            )
            .hint = Some(format!(
            "remove it from .poolwright-state.json and run `poolwright apply {name}` again"
        ));
    }
    if let Some(e) = &endpoint
        && !e.starts_with("ep-")
    {
        reader
            .error(
                endpoint_span,
                &format!("targets.{name}.endpoint"),
                format!("`{e}` is not an endpoint id"),
            )
            .hint = Some("endpoint ids start with `ep-`, as in ep-cool-darkness-123456".into());
    }
    if reader.problems.len() > before {
        return None;
    }
    let hosts = match (&endpoint, &region) {
        (Some(e), Some(r)) => {
            let direct = format!("{e}.{r}.aws.neon.tech");
            Some((pooled_host(&direct), direct, Source::Config))
        }
        _ => learned.map(|(p, d)| (p.to_string(), d.to_string(), Source::State)),
    };
    Some(Target {
        name: name.to_string(),
        project_id: project_id?,
        branch,
        endpoint,
        region,
        role: role?,
        password: password?,
        database: database?,
        hosts,
    })
}

/// The client for the Neon API, from the environment (its token, an override
/// of its address) or `api_url` (--api-url).
pub fn api(
    env: &dyn Fn(&str) -> Option<String>,
    api_url: Option<&str>,
) -> Result<crate::api::Api, crate::error::Error> {
    crate::api::Api::from_env(
        env,
        api_url,
        "the Neon API",
        API_URL,
        API_URL_VAR,
        TOKEN_VAR,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pooled_host_inserts_pooler_after_the_endpoint_id() {
        assert_eq!(
            pooled_host("ep-cool-darkness-123456.us-east-2.aws.neon.tech"),
            "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
        );
        assert_eq!(
            pooled_host("ep-x-pooler.r.aws.neon.tech"),
            "ep-x-pooler.r.aws.neon.tech"
        );
    }

    #[test]
    fn reads_hosts_from_uris_and_endpoints_from_lists() {
        assert_eq!(
            uri_host("postgresql://app:s3cr%40t@ep-a-pooler.eu-central-1.aws.neon.tech/db?sslmode=require").as_deref(),
            Some("ep-a-pooler.eu-central-1.aws.neon.tech")
        );
        assert_eq!(uri_host("postgres://h:5432/db").as_deref(), Some("h"));
        assert_eq!(uri_host("nonsense"), None);
        let list = json!({"endpoints": [
            {"id": "ep-ro", "type": "read_only", "branch_id": "br-main"},
            {"id": "ep-rw", "type": "read_write", "branch_id": "br-main"},
            {"id": "ep-dev", "type": "read_write", "branch_id": "br-dev"}
        ]});
        assert_eq!(read_write_endpoint(&list, None).as_deref(), Some("ep-rw"));
        assert_eq!(
            read_write_endpoint(&list, Some("br-dev")).as_deref(),
            Some("ep-dev")
        );
        assert_eq!(read_write_endpoint(&list, Some("br-x")), None);
    }
}
