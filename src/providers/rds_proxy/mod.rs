//! `provider: rds-proxy`: an AWS RDS Proxy in front of an RDS instance or
//! Aurora cluster, made by `apply` through the AWS API (aws.rs).
//!
//! The URL is `postgresql://<user>:<password>@<proxy endpoint>:5432/<db>
//! ?sslmode=require`; the endpoint is only known once the proxy exists, so
//! it comes from the state file that `apply` writes (or is `<known after
//! apply>`). A proxy is reachable only from inside its VPC.

pub mod aws;
pub mod diff;

use super::Source;
use crate::drivers::PoolerTraits;
use crate::secret::Secret;
use crate::url::PgUrl;
use crate::yaml::reader::{MapView, Reader};

/// What the proxy points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    Instance(String),
    Cluster(String),
}

/// How the proxy logs in to the database.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A Secrets Manager secret the user manages.
    Existing { secret_arn: String },
    /// A secret poolwright creates (and deletes on destroy) from these.
    Create { username: String, password: Secret },
}

/// The target group's connection pool settings (None: AWS's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub max_connections_percent: Option<i32>,
    pub max_idle_connections_percent: Option<i32>,
    pub connection_borrow_timeout: Option<i32>,
    pub session_pinning_filters: Vec<String>,
    pub init_query: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub proxy_name: String,
    pub region: String,
    pub engine_family: String,
    pub db_target: DbTarget,
    pub auth: Auth,
    pub iam_auth: String,
    pub client_password_auth_type: String,
    pub role_arn: String,
    pub vpc_subnet_ids: Vec<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub require_tls: bool,
    pub idle_client_timeout: Option<i32>,
    pub debug_logging: bool,
    pub tags: Vec<(String, String)>,
    pub pool: Pool,
    pub user: String,
    pub password: Secret,
    pub database: String,
    /// The proxy's endpoint, once apply learned it.
    pub endpoint: Option<(String, Source)>,
}

impl Target {
    pub fn pooled_url(&self) -> Option<PgUrl> {
        let (host, _) = self.endpoint.as_ref()?;
        Some(
            PgUrl::new(host, 5432, &self.database)
                .with_user(&self.user, Some(self.password.clone()))
                .with_param("sslmode", "require"),
        )
    }

    pub fn pooler_traits(&self) -> PoolerTraits {
        // RDS Proxy multiplexes per transaction; a prepared statement does not
        // fail but pins the client to one server connection (session pooling
        // for that client), which is what its pinning metrics show.
        PoolerTraits {
            name: "RDS Proxy".into(),
            transaction_pooling: true,
            prepared_statements: true,
        }
    }
}

/// `[a-zA-Z](?:-?[a-zA-Z0-9]+)*`, at most 63: AWS's rule for proxy names.
pub fn valid_proxy_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && bytes[0].is_ascii_alphabetic()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn strings(reader: &mut Reader<'_>, map: &mut MapView<'_>, key: &str) -> Option<Vec<String>> {
    let field = map.field(key);
    map.get(key).and_then(|n| reader.list(n, &field))
}

fn int(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    key: &str,
    min: i64,
    max: i64,
) -> Option<i32> {
    let field = map.field(key);
    map.get(key)
        .and_then(|n| reader.integer(n, &field, min, max))
        .map(|n| n as i32)
}

/// Reads a `provider: rds-proxy` target; `learned` is the state's endpoint.
pub fn decode(
    reader: &mut Reader<'_>,
    name: &str,
    mut map: MapView<'_>,
    learned: Option<&str>,
) -> Option<Target> {
    let before = reader.problems.len();
    let string = |key: &str, map: &mut MapView<'_>, reader: &mut Reader<'_>| {
        let field = map.field(key);
        map.require(key, reader)
            .and_then(|n| reader.string(n, &field))
    };
    let proxy_name = string("name", &mut map, reader);
    if let Some(p) = &proxy_name
        && !valid_proxy_name(p)
    {
        reader
            .error(
                map.span,
                &map.field("name"),
                format!("`{p}` is not a valid RDS Proxy name"),
            )
            .hint =
            Some("letters, digits and single hyphens, starting with a letter, at most 63".into());
    }
    let region = string("region", &mut map, reader);
    let engine_family = match map.get("engine_family") {
        Some(n) => reader.choice(n, &map.field("engine_family"), &["POSTGRESQL"]),
        None => Some("POSTGRESQL".into()),
    };
    let db_target = map.require("target", reader).and_then(|n| {
        let field = map.field("target");
        let mut t = reader.map(n, &field)?;
        let instance = t
            .get("db_instance")
            .and_then(|n| reader.string(n, &t.field("db_instance")));
        let cluster = t
            .get("db_cluster")
            .and_then(|n| reader.string(n, &t.field("db_cluster")));
        t.finish(reader);
        match (instance, cluster) {
            (Some(i), None) => Some(DbTarget::Instance(i)),
            (None, Some(c)) => Some(DbTarget::Cluster(c)),
            _ => {
                reader.error(
                    n.span,
                    &field,
                    "give exactly one of `db_instance` and `db_cluster`",
                );
                None
            }
        }
    });
    let auth = map.require("auth", reader).and_then(|n| {
        let field = map.field("auth");
        let mut a = reader.map(n, &field)?;
        let arn = a.get("secret_arn").and_then(|n| reader.string(n, &a.field("secret_arn")));
        let username = a.get("username").and_then(|n| reader.string(n, &a.field("username")));
        let password = a.get("password").and_then(|n| reader.secret(n, &a.field("password")));
        a.finish(reader);
        match (arn, username, password) {
            (Some(secret_arn), None, None) => Some(Auth::Existing { secret_arn }),
            (None, Some(username), Some(password)) => Some(Auth::Create { username, password }),
            _ => {
                reader.error(n.span, &field, "give `secret_arn` (a secret you manage), or `username` and `password` (poolwright creates the secret)");
                None
            }
        }
    });
    let iam_auth = match map.get("iam_auth") {
        Some(n) => reader.choice(n, &map.field("iam_auth"), &["DISABLED", "REQUIRED"]),
        None => Some("DISABLED".into()),
    };
    let client_password_auth_type = match map.get("client_password_auth_type") {
        Some(n) => reader.choice(
            n,
            &map.field("client_password_auth_type"),
            &["POSTGRES_SCRAM_SHA_256", "POSTGRES_MD5"],
        ),
        None => Some("POSTGRES_SCRAM_SHA_256".into()),
    };
    let role_arn = string("role_arn", &mut map, reader);
    let subnets_node = map.get("vpc_subnet_ids").map(|n| n.span);
    let vpc_subnet_ids = strings(reader, &mut map, "vpc_subnet_ids").unwrap_or_default();
    if vpc_subnet_ids.len() < 2 {
        reader
            .error(
                subnets_node.unwrap_or(map.span),
                &map.field("vpc_subnet_ids"),
                "an RDS Proxy needs subnets in at least two availability zones",
            )
            .hint = Some("list two or more subnet ids of the database's VPC".into());
    }
    let vpc_security_group_ids =
        strings(reader, &mut map, "vpc_security_group_ids").unwrap_or_default();
    let require_tls = match map.get("require_tls") {
        Some(n) => reader.boolean(n, &map.field("require_tls")),
        None => Some(true),
    };
    let idle_client_timeout = int(reader, &mut map, "idle_client_timeout", 1, 28_800);
    let debug_logging = match map.get("debug_logging") {
        Some(n) => reader.boolean(n, &map.field("debug_logging")),
        None => Some(false),
    };
    let mut tags = Vec::new();
    if let Some(n) = map.get("tags") {
        let field = map.field("tags");
        if let Some(t) = reader.map(n, &field) {
            for (k, v) in t.entries() {
                if let Some(v) = reader.string(v, &format!("{field}.{}", k.name)) {
                    tags.push((k.name.clone(), v));
                }
            }
        }
    }
    let max_connections_percent = int(reader, &mut map, "max_connections_percent", 1, 100);
    let max_idle_connections_percent =
        int(reader, &mut map, "max_idle_connections_percent", 0, 100);
    let connection_borrow_timeout = int(reader, &mut map, "connection_borrow_timeout", 0, 300);
    let session_pinning_filters =
        strings(reader, &mut map, "session_pinning_filters").unwrap_or_default();
    for f in &session_pinning_filters {
        if f != "EXCLUDE_VARIABLE_SETS" {
            reader.error(
                map.span,
                &map.field("session_pinning_filters"),
                format!(
                    "unknown pinning filter `{f}`; the one RDS Proxy has is EXCLUDE_VARIABLE_SETS"
                ),
            );
        }
    }
    let init_query = map
        .get("init_query")
        .and_then(|n| reader.string(n, &map.field("init_query")));
    let user = string("user", &mut map, reader);
    let password = map
        .require("password", reader)
        .and_then(|n| reader.secret(n, &map.field("password")));
    let database = string("database", &mut map, reader);
    let span = map.span;
    map.finish(reader);
    if let (Some(max), Some(idle)) = (max_connections_percent, max_idle_connections_percent)
        && idle > max
    {
        reader.error(
            span,
            &format!("targets.{name}.max_idle_connections_percent"),
            format!("{idle} is above max_connections_percent {max}"),
        );
    }
    if reader.problems.len() > before {
        return None;
    }
    Some(Target {
        name: name.to_string(),
        proxy_name: proxy_name?,
        region: region?,
        engine_family: engine_family?,
        db_target: db_target?,
        auth: auth?,
        iam_auth: iam_auth?,
        client_password_auth_type: client_password_auth_type?,
        role_arn: role_arn?,
        vpc_subnet_ids,
        vpc_security_group_ids,
        require_tls: require_tls?,
        idle_client_timeout,
        debug_logging: debug_logging?,
        tags,
        pool: Pool {
            max_connections_percent,
            max_idle_connections_percent,
            connection_borrow_timeout,
            session_pinning_filters,
            init_query,
        },
        user: user?,
        password: password?,
        database: database?,
        endpoint: learned.map(|e| (e.to_string(), Source::State)),
    })
}

/// What `apply` did to an RDS Proxy target.
#[derive(Debug, Default)]
pub struct Applied {
    pub lines: Vec<String>,
    pub endpoint: String,
    /// The ARN of the secret poolwright created (to remember for destroy).
    pub created_secret: Option<String>,
}

/// Makes the proxy match the config: secret, proxy, target, pool settings,
/// then waits until it is healthy. `created_secret` is the state's record
/// of a secret an earlier apply created.
pub async fn apply(
    target: &Target,
    aws: &aws::Aws,
    created_secret: Option<&str>,
    wait: std::time::Duration,
    poll: std::time::Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Applied, crate::error::Error> {
    let mut done = Applied::default();
    let secret_arn = match &target.auth {
        Auth::Existing { secret_arn } => secret_arn.clone(),
        Auth::Create { .. } => {
            let arn = aws
                .ensure_secret(target, &mut done.lines)
                .await?
                .unwrap_or_default();
            done.created_secret = Some(arn.clone());
            arn
        }
    };
    let _ = created_secret;
    match aws.current(target).await? {
        None => {
            aws.create_proxy(target, &secret_arn).await?;
            done.lines
                .push(format!("created RDS Proxy {}", target.proxy_name));
        }
        Some(current) => {
            let changes = aws::diff(target, &current, Some(&secret_arn));
            if !changes.forces_new.is_empty() {
                return Err(crate::error::Error::message(format!(
                    "RDS Proxy {} differs in what AWS cannot change in place: {}",
                    target.proxy_name,
                    changes.forces_new.join(", ")
                ))
                .with_hint(format!(
                    "`poolwright destroy {}` and apply again, or undo the change",
                    target.name
                )));
            }
            if !changes.in_place.is_empty() {
                aws.modify_proxy(target, &secret_arn).await?;
                done.lines.push(format!(
                    "modified RDS Proxy {}: {}",
                    target.proxy_name,
                    changes.in_place.join(", ")
                ));
            }
        }
    }
    // Re-read after creating: an apply cut off earlier may have left these undone.
    let current = aws.current(target).await?.ok_or_else(|| {
        crate::error::Error::message(format!(
            "RDS Proxy {} is missing right after apply made it",
            target.proxy_name
        ))
    })?;
    let changes = aws::diff(target, &current, Some(&secret_arn));
    if changes.register_target {
        aws.register_target(target).await?;
        let what = match &target.db_target {
            DbTarget::Instance(i) => format!("instance {i}"),
            DbTarget::Cluster(c) => format!("cluster {c}"),
        };
        done.lines
            .push(format!("registered {what} as the proxy's target"));
    }
    if !changes.pool.is_empty() {
        aws.modify_pool(target).await?;
        done.lines.push(format!(
            "set the connection pool: {}",
            changes.pool.join(", ")
        ));
    }
    if done.lines.is_empty() {
        done.lines.push(format!(
            "RDS Proxy {} is as poolwright.yaml says: nothing to change",
            target.proxy_name
        ));
    }
    done.endpoint = aws.wait_healthy(target, wait, poll, progress).await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_names_follow_aws_rules() {
        assert!(valid_proxy_name("automatch-books-proxy"));
        for bad in ["1proxy", "a--b", "a-", "", "a_b", &"a".repeat(64)] {
            assert!(!valid_proxy_name(bad), "{bad}");
        }
    }
}
