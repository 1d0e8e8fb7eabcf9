//! `provider: supabase`: Supabase's shared pooler, Supavisor.
//!
//! The pooled URL is `postgresql://<role>.<project_ref>:<password>@<pooler
//! host>:<6543 transaction | 5432 session>/<database>?sslmode=require`.
//! Supavisor finds the project by the suffix of the user name. The pooler
//! host carries an `aws-0`/`aws-1` prefix that cannot be guessed: it is
//! given in the config, learned by `apply` from the Management API
//! (`GET /v1/projects/{ref}/config/database/pooler`, the `PRIMARY` entry's
//! `db_host`) and kept in the state file, or unknown until then.

use serde_json::Value;

use super::Source;
use crate::api::Api;
use crate::drivers::PoolerTraits;
use crate::error::Error;
use crate::secret::Secret;
use crate::url::{PgUrl, host_problem, learned_host_problem};
use crate::yaml::reader::{MapView, Reader};

/// The Management API's public address.
pub const API_URL: &str = "https://api.supabase.com";
/// The variable that holds a personal access token.
pub const TOKEN_VAR: &str = "SUPABASE_ACCESS_TOKEN";
/// The variable that points poolwright at another Management API.
pub const API_URL_VAR: &str = "SUPABASE_API_URL";

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub project_ref: String,
    /// `transaction` (port 6543) or `session` (5432).
    pub pool_mode: String,
    /// The database role (`postgres`); the pooler user adds `.<project_ref>`.
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub pooler_host: Option<(String, Source)>,
}

impl Target {
    /// The user name Supavisor expects: `<role>.<project_ref>`.
    pub fn pooler_user(&self) -> String {
        let suffix = format!(".{}", self.project_ref);
        if self.user.ends_with(&suffix) {
            self.user.clone()
        } else {
            format!("{}{suffix}", self.user)
        }
    }

    fn url(&self, port: u16) -> Option<PgUrl> {
        let (host, _) = self.pooler_host.as_ref()?;
        Some(
            PgUrl::new(host, port, &self.database)
                .with_user(&self.pooler_user(), Some(self.password.clone()))
                .with_param("sslmode", "require"),
        )
    }

    pub fn pooled_url(&self) -> Option<PgUrl> {
        self.url(if self.pool_mode == "session" {
            5432
        } else {
            6543
        })
    }

    /// Session mode on the same pooler, for migrations: IPv4-friendly,
    /// unlike the direct `db.<ref>.supabase.co`, which is IPv6 only.
    pub fn direct_url(&self) -> Option<PgUrl> {
        self.url(5432)
    }

    pub fn pooler_traits(&self) -> PoolerTraits {
        let transaction = self.pool_mode != "session";
        PoolerTraits {
            name: format!("Supavisor in {} mode", self.pool_mode),
            transaction_pooling: transaction,
            // Named prepared statements in transaction mode need a Supavisor
            // feature flag that Supabase's docs do not promise: assume off.
            prepared_statements: !transaction,
        }
    }

    /// Asks the Management API for the pooler host of this project.
    pub async fn fetch_pooler_host(&self, api: &Api) -> Result<String, Error> {
        let path = format!("/v1/projects/{}/config/database/pooler", self.project_ref);
        let body = api
            .get(&path, &[], &format!("project `{}`", self.project_ref))
            .await?;
        let host = primary_host(&body).ok_or_else(|| {
            Error::message(format!(
                "{} returned no PRIMARY pooler for project `{}`",
                api.name, self.project_ref
            ))
        })?;
        // What an API answers goes into URLs and the state file: the same
        // host rule as the config's, and nothing is kept when it fails.
        if let Some(problem) = host_problem(&host) {
            return Err(Error::message(format!(
                "{} answered a pooler host for project `{}` that is not one host: {problem}",
                api.name, self.project_ref
            ))
            .with_hint("nothing was stored; set `pooler_host` in poolwright.yaml to the host Supabase's dashboard shows"));
        }
        Ok(host)
    }
}

/// `db_host` of the `PRIMARY` entry of a pooler configuration array.
pub fn primary_host(body: &Value) -> Option<String> {
    body.as_array()?
        .iter()
        .find(|e| e["database_type"] == "PRIMARY")
        .and_then(|e| e["db_host"].as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

fn valid_ref(r: &str) -> bool {
    r.len() == 20 && r.chars().all(|c| c.is_ascii_lowercase())
}

/// Reads a `provider: supabase` target; `learned` is the state's pooler host.
pub fn decode(
    reader: &mut Reader<'_>,
    name: &str,
    mut map: MapView<'_>,
    learned: Option<&str>,
) -> Option<Target> {
    let before = reader.problems.len();
    let ref_node = map.require("project_ref", reader);
    let project_ref = ref_node.and_then(|n| reader.string(n, &map.field("project_ref")));
    if let (Some(r), Some(n)) = (&project_ref, ref_node)
        && !valid_ref(r)
    {
        reader
            .error(
                n.span,
                &map.field("project_ref"),
                format!("`{r}` is not a Supabase project ref"),
            )
            .hint =
            Some("a project ref is 20 lowercase letters, as in db.<ref>.supabase.co".into());
    }
    let pool_mode = match map.get("pool_mode") {
        Some(n) => reader.choice(n, &map.field("pool_mode"), &["transaction", "session"]),
        None => Some("transaction".into()),
    };
    let user = match map.get("user") {
        Some(n) => reader.string(n, &map.field("user")),
        None => Some("postgres".into()),
    };
    let password = map
        .require("password", reader)
        .and_then(|n| reader.secret(n, &map.field("password")));
    let database = match map.get("database") {
        Some(n) => reader.string(n, &map.field("database")),
        None => Some("postgres".into()),
    };
    let configured = map.get("pooler_host").and_then(|n| {
        reader.checked(
            n,
            &map.field("pooler_host"),
            crate::url::host_problem,
            crate::url::ONE_HOST_HINT,
        )
    });
    let span = map.span;
    map.finish(reader);
    let learned = learned.filter(|h| match host_problem(h) {
        None => true,
        Some(problem) => {
            reader
                .error(
                    span,
                    &format!("targets.{name}.pooler_host"),
                    learned_host_problem("pooler host", &problem),
                )
                .hint = Some(format!(
                "remove it from .poolwright-state.json and run `poolwright apply {name}` again, or set `pooler_host`"
            ));
            false
        }
    });
    let pooler_host = configured
        .map(|h| (h, Source::Config))
        .or_else(|| learned.map(|h| (h.to_string(), Source::State)));
    if reader.problems.len() > before {
        return None;
    }
    Some(Target {
        name: name.to_string(),
        project_ref: project_ref?,
        pool_mode: pool_mode?,
        user: user?,
        password: password?,
        database: database?,
        pooler_host,
    })
}

/// The client for the Supabase Management API, from the environment (its token, an override
/// of its address) or `api_url` (--api-url).
pub fn api(
    env: &dyn Fn(&str) -> Option<String>,
    api_url: Option<&str>,
) -> Result<crate::api::Api, crate::error::Error> {
    crate::api::Api::from_env(
        env,
        api_url,
        "the Supabase Management API",
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
    fn takes_the_primary_entry() {
        let body = json!([
            {"database_type": "READ_REPLICA", "db_host": "replica.pooler.supabase.com"},
            {"database_type": "PRIMARY", "db_host": "aws-1-eu-west-1.pooler.supabase.com", "db_port": 6543}
        ]);
        assert_eq!(
            primary_host(&body).as_deref(),
            Some("aws-1-eu-west-1.pooler.supabase.com")
        );
        assert_eq!(primary_host(&json!([])), None);
        assert_eq!(primary_host(&json!({"db_host": "x"})), None);
    }

    #[test]
    fn user_gets_the_project_suffix_once() {
        let mut t = Target {
            name: "s".into(),
            project_ref: "abcdefghijklmnopqrst".into(),
            pool_mode: "transaction".into(),
            user: "postgres".into(),
            password: Secret::known("p@ss"),
            database: "postgres".into(),
            pooler_host: Some(("aws-0-us-east-1.pooler.supabase.com".into(), Source::Config)),
        };
        assert_eq!(t.pooler_user(), "postgres.abcdefghijklmnopqrst");
        assert_eq!(
            t.pooled_url().unwrap().reveal().unwrap(),
            "postgresql://postgres.abcdefghijklmnopqrst:p%40ss@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=require"
        );
        assert_eq!(t.direct_url().unwrap().port, 5432);
        t.user = "app.abcdefghijklmnopqrst".into();
        assert_eq!(t.pooler_user(), "app.abcdefghijklmnopqrst");
        t.pool_mode = "session".into();
        assert_eq!(t.pooled_url().unwrap().port, 5432);
        assert!(t.pooler_traits().prepared_statements);
    }
}
