//! The AWS side of an RDS Proxy target: read the current state, make the
//! changes, wait for health, tear down.
//!
//! Every step looks first and changes only what differs, so `apply` is
//! idempotent and an apply cut off halfway (proxy made, target not yet
//! registered) completes on the next run. The AWS configuration is the one
//! the ecosystem expects: the default credential chain and profiles, the
//! region from the config, `AWS_ENDPOINT_URL` honoured by the SDK; throttling,
//! 5xx answers, refused and broken connections and timeouts are retried by
//! the SDK's standard retry policy (3 attempts, or AWS_MAX_ATTEMPTS).
//!
//! poolwright's own network settings (src/api.rs) apply here too: every
//! attempt is bounded by POOLWRIGHT_HTTP_TIMEOUT (the SDK sets no limit on
//! an attempt by default, so an endpoint that accepts and never answers
//! would hang `apply` for good), and POOLWRIGHT_HTTP_ATTEMPTS and
//! POOLWRIGHT_HTTP_BACKOFF, when set, override the SDK's retry settings.

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::SdkError;
use aws_sdk_rds::types::{
    AuthScheme, ClientPasswordAuthType, ConnectionPoolConfiguration, EngineFamily, IamAuthMode,
    Tag, UserAuthConfig,
};
use aws_sdk_secretsmanager::types::Tag as SecretTag;

use super::diff::target_id;
pub use super::diff::{Changes, Current, diff};
use super::{Auth, DbTarget, Target};
use crate::api;
use crate::error::Error;
use crate::net_policy::{self, NetPolicy};

/// The tag that marks what poolwright created (and may delete).
const MANAGED_BY: (&str, &str) = ("managed-by", "poolwright");

pub struct Aws {
    rds: aws_sdk_rds::Client,
    secrets: aws_sdk_secretsmanager::Client,
    /// For messages: where AWS was asked (AWS_ENDPOINT_URL, else the region).
    endpoint: String,
    /// For messages: the limit on one attempt, and the attempts per call.
    timeout: Duration,
    attempts: u32,
}

/// The SDK's retry settings from the environment, checked here because
/// aws-config panics on a bad AWS_MAX_ATTEMPTS or AWS_RETRY_MODE; then
/// poolwright's own network settings.
pub fn net_policy(env: &dyn Fn(&str) -> Option<String>) -> Result<NetPolicy, Error> {
    if let Some(v) = env("AWS_MAX_ATTEMPTS")
        && !v.trim().parse::<u32>().is_ok_and(|n| n >= 1)
    {
        return Err(Error::message(format!(
            "AWS_MAX_ATTEMPTS must be a whole number of at least 1, not `{v}`"
        ))
        .with_hint("fix or unset AWS_MAX_ATTEMPTS"));
    }
    if let Some(v) = env("AWS_RETRY_MODE")
        && !["standard", "adaptive"].contains(&v.trim().to_ascii_lowercase().as_str())
    {
        return Err(Error::message(format!(
            "AWS_RETRY_MODE must be `standard` or `adaptive`, not `{v}`"
        ))
        .with_hint("fix or unset AWS_RETRY_MODE"));
    }
    NetPolicy::from_env(env)
}

/// An SDK error as one line, with AWS's code and message, and a hint for
/// the usual causes.
fn aws_error<E>(action: &str, e: &E) -> Error
where
    E: std::error::Error + aws_sdk_rds::error::ProvideErrorMetadata + 'static,
{
    // AWS's own code and message when it answered; else the whole chain
    // (credentials, network), kept short.
    let text = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!(
            "{code}: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        (Some(code), None) => code.to_string(),
        _ => {
            let full = aws_sdk_rds::error::DisplayErrorContext(e).to_string();
            // A response without an AWS error body: say which HTTP status it was.
            match full
                .split("StatusCode(")
                .nth(1)
                .and_then(|r| r.split(')').next())
            {
                Some(status) => format!("AWS answered HTTP {status} without an error message"),
                None => full.chars().take(300).collect(),
            }
        }
    };
    let hint = if text.contains("AccessDenied") || text.contains("not authorized") {
        format!("the AWS identity in use may not call {action}: allow it in IAM")
    } else if text.contains("credentials") || text.contains("NoCredentials") {
        "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            .into()
    } else if text.starts_with("Throttling") || text.contains("TooManyRequests") {
        "AWS is throttling this account's API calls, and the retries ran out: wait a minute and run it again".into()
    } else if text.starts_with("AWS answered HTTP 5") {
        "an error on AWS's side: run apply again; it picks up where it stopped".into()
    } else if text.contains("dispatch failure") || text.contains("timed out") {
        "AWS could not be reached: check the network, the region, and AWS_ENDPOINT_URL".into()
    } else {
        "see AWS's message above".into()
    };
    Error::message(format!("AWS {action} failed: {text}")).with_hint(hint)
}

impl Aws {
    /// Clients for `region`, with `policy` (from [`net_policy`]) applied.
    pub async fn connect(region: &str, policy: &NetPolicy) -> Aws {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(policy.connect_timeout())
            .operation_attempt_timeout(policy.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .timeout_config(timeouts);
        if policy.attempts.is_some() || policy.backoff.is_some() {
            // On top of what AWS_MAX_ATTEMPTS, AWS_RETRY_MODE and the profile
            // say (checked by net_policy, so this does not panic).
            let mut retry: RetryConfig =
                aws_config::default_provider::retry_config::default_provider()
                    .retry_config()
                    .await;
            if let Some(n) = policy.attempts {
                retry = retry.with_max_attempts(n);
            }
            if let Some(b) = policy.backoff {
                retry = retry.with_initial_backoff(b);
            }
            loader = loader.retry_config(retry);
        }
        let config = loader.load().await;
        Aws {
            rds: aws_sdk_rds::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            endpoint: config
                .endpoint_url()
                .map_or_else(|| format!("AWS ({region})"), |u| format!("AWS at {u}")),
            timeout: policy.timeout,
            attempts: config.retry_config().map_or(3, RetryConfig::max_attempts),
        }
    }

    /// A failed call as one line: what the network did (no answer in time,
    /// refused, broken off, 5xx) and how often it was tried, or AWS's own
    /// code and message ([`aws_error`]).
    fn failed<E>(&self, action: &str, e: &SdkError<E, HttpResponse>) -> Error
    where
        E: std::error::Error + aws_sdk_rds::error::ProvideErrorMetadata + 'static,
    {
        let tries = match self.attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        let reason = |e: &(dyn std::error::Error + 'static)| {
            let mut source = Some(e);
            while let Some(s) = source {
                if let Some(r) = api::os_reason(s) {
                    return r;
                }
                source = s.source();
            }
            let text = aws_sdk_rds::error::DisplayErrorContext(e).to_string();
            text.chars().take(200).collect()
        };
        let timed_out = || {
            Error::message(format!(
                "AWS {action} failed: {} did not answer within {} ({tries})",
                self.endpoint,
                net_policy::seconds(self.timeout)
            ))
            .with_hint(net_policy::slow_hint(self.timeout))
        };
        match e {
            SdkError::TimeoutError(_) => timed_out(),
            SdkError::DispatchFailure(d) if d.is_timeout() => timed_out(),
            SdkError::DispatchFailure(d) if d.is_io() => Error::message(format!(
                "AWS {action} failed: cannot reach {}: {} ({tries})",
                self.endpoint,
                d.as_connector_error()
                    .map_or_else(|| "no connection".to_string(), |c| reason(c))
            ))
            .with_hint(
                "check the network, the region, and AWS_ENDPOINT_URL; a re-run picks up where this one stopped",
            ),
            SdkError::ResponseError(_) => Error::message(format!(
                "AWS {action} failed: {} broke off its answer: {} ({tries})",
                self.endpoint,
                reason(e)
            ))
            .with_hint(format!(
                "a flaky network or proxy: run it again (it picks up where it stopped), \
                 or try more often with {}",
                net_policy::ATTEMPTS_VAR
            )),
            SdkError::ServiceError(s) if s.raw().status().as_u16() >= 500 => {
                let plain = aws_error(action, e);
                let status = s.raw().status().as_u16();
                match plain {
                    Error::Message { message, .. } => Error::message(format!(
                        "{message} (HTTP {status}, {tries})"
                    ))
                    .with_hint(
                        "an error on AWS's side: run it again later; it picks up where it stopped",
                    ),
                    other => other,
                }
            }
            _ => aws_error(action, e),
        }
    }
}

impl Aws {
    /// The proxy as AWS has it, or None.
    pub async fn current(&self, target: &Target) -> Result<Option<Current>, Error> {
        let found = self
            .rds
            .describe_db_proxies()
            .db_proxy_name(&target.proxy_name)
            .send()
            .await;
        let proxy = match found {
            Ok(out) => match out.db_proxies().first() {
                Some(p) => p.clone(),
                None => return Ok(None),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_proxy_not_found_fault()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.failed("DescribeDBProxies", &e)),
        };
        let targets = self
            .rds
            .describe_db_proxy_targets()
            .db_proxy_name(&target.proxy_name)
            .send()
            .await
            .map_err(|e| self.failed("DescribeDBProxyTargets", &e))?;
        let registered = targets
            .targets()
            .iter()
            .filter_map(|t| {
                t.rds_resource_id()
                    .or(t.tracked_cluster_id())
                    .map(str::to_string)
            })
            .collect();
        let groups = self
            .rds
            .describe_db_proxy_target_groups()
            .db_proxy_name(&target.proxy_name)
            .send()
            .await
            .map_err(|e| self.failed("DescribeDBProxyTargetGroups", &e))?;
        let pool = groups
            .target_groups()
            .iter()
            .find(|g| g.is_default() == Some(true) || g.target_group_name() == Some("default"))
            .and_then(|g| g.connection_pool_config())
            .map(|c| super::Pool {
                max_connections_percent: c.max_connections_percent(),
                max_idle_connections_percent: c.max_idle_connections_percent(),
                connection_borrow_timeout: c.connection_borrow_timeout(),
                session_pinning_filters: c.session_pinning_filters().to_vec(),
                init_query: c.init_query().filter(|q| !q.is_empty()).map(str::to_string),
            })
            .unwrap_or_default();
        Ok(Some(Current {
            status: proxy
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            endpoint: proxy.endpoint().map(str::to_string),
            engine_family: proxy.engine_family().unwrap_or_default().to_string(),
            vpc_subnet_ids: proxy.vpc_subnet_ids().to_vec(),
            vpc_security_group_ids: proxy.vpc_security_group_ids().to_vec(),
            role_arn: proxy.role_arn().unwrap_or_default().to_string(),
            require_tls: proxy.require_tls().unwrap_or(false),
            idle_client_timeout: proxy.idle_client_timeout(),
            debug_logging: proxy.debug_logging().unwrap_or(false),
            secret_arns: proxy
                .auth()
                .iter()
                .filter_map(|a| a.secret_arn().map(str::to_string))
                .collect(),
            registered,
            pool,
        }))
    }

    /// The secret poolwright manages for `Auth::Create`: made when missing,
    /// its value updated when the credentials changed. Returns its ARN.
    pub async fn ensure_secret(
        &self,
        target: &Target,
        lines: &mut Vec<String>,
    ) -> Result<Option<String>, Error> {
        let Auth::Create { username, password } = &target.auth else {
            return Ok(None);
        };
        let password = password.expose()?;
        let name = format!("poolwright/{}/{username}", target.proxy_name);
        let value = serde_json::json!({
            "username": username,
            "password": password,
            "engine": "postgres",
            "dbname": target.database,
        })
        .to_string();
        let described = self.secrets.describe_secret().secret_id(&name).send().await;
        match described {
            Ok(secret) => {
                let ours = secret
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(MANAGED_BY.0) && t.value() == Some(MANAGED_BY.1));
                if !ours {
                    return Err(Error::message(format!(
                        "a Secrets Manager secret `{name}` exists, and poolwright did not create it"
                    ))
                    .with_hint("give its ARN as auth.secret_arn, or delete it"));
                }
                let arn = secret.arn().unwrap_or_default().to_string();
                if secret.deleted_date().is_some() {
                    // An earlier destroy scheduled it for deletion: take it back.
                    self.secrets
                        .restore_secret()
                        .secret_id(&arn)
                        .send()
                        .await
                        .map_err(|e| self.failed("RestoreSecret", &e))?;
                    lines.push(format!(
                        "restored secret {name} (a destroy had scheduled its deletion)"
                    ));
                }
                let current = self
                    .secrets
                    .get_secret_value()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(|e| self.failed("GetSecretValue", &e))?;
                if current.secret_string() != Some(value.as_str()) {
                    self.secrets
                        .put_secret_value()
                        .secret_id(&arn)
                        .secret_string(&value)
                        .send()
                        .await
                        .map_err(|e| self.failed("PutSecretValue", &e))?;
                    lines.push(format!("updated the credentials in secret {name}"));
                }
                Ok(Some(arn))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                let made = self
                    .secrets
                    .create_secret()
                    .name(&name)
                    .description(format!(
                        "RDS Proxy {} credentials of {username}, made by poolwright",
                        target.proxy_name
                    ))
                    .secret_string(&value)
                    .tags(
                        SecretTag::builder()
                            .key(MANAGED_BY.0)
                            .value(MANAGED_BY.1)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.failed("CreateSecret", &e))?;
                lines.push(format!("created secret {name}"));
                Ok(made.arn().map(str::to_string))
            }
            Err(e) => Err(self.failed("DescribeSecret", &e)),
        }
    }

    /// The ARN of secret `name` if it exists, carries poolwright's tag and is
    /// not already scheduled for deletion.
    async fn tagged_secret(&self, name: &str) -> Result<Option<String>, Error> {
        match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(s) => {
                let ours = s
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(MANAGED_BY.0) && t.value() == Some(MANAGED_BY.1));
                Ok((ours && s.deleted_date().is_none())
                    .then(|| s.arn().unwrap_or_default().to_string()))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.failed("DescribeSecret", &e)),
        }
    }

    fn auth(target: &Target, secret_arn: &str) -> UserAuthConfig {
        UserAuthConfig::builder()
            .auth_scheme(AuthScheme::Secrets)
            .secret_arn(secret_arn)
            .iam_auth(IamAuthMode::from(target.iam_auth.as_str()))
            .client_password_auth_type(ClientPasswordAuthType::from(
                target.client_password_auth_type.as_str(),
            ))
            .build()
    }

    pub async fn create_proxy(&self, target: &Target, secret_arn: &str) -> Result<(), Error> {
        let mut create = self
            .rds
            .create_db_proxy()
            .db_proxy_name(&target.proxy_name)
            .engine_family(EngineFamily::from(target.engine_family.as_str()))
            .auth(Self::auth(target, secret_arn))
            .role_arn(&target.role_arn)
            .set_vpc_subnet_ids(Some(target.vpc_subnet_ids.clone()))
            .require_tls(target.require_tls)
            .debug_logging(target.debug_logging)
            .tags(Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build());
        if !target.vpc_security_group_ids.is_empty() {
            create = create.set_vpc_security_group_ids(Some(target.vpc_security_group_ids.clone()));
        }
        if let Some(t) = target.idle_client_timeout {
            create = create.idle_client_timeout(t);
        }
        for (k, v) in &target.tags {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        create
            .send()
            .await
            .map_err(|e| self.failed("CreateDBProxy", &e))?;
        Ok(())
    }

    pub async fn modify_proxy(&self, target: &Target, secret_arn: &str) -> Result<(), Error> {
        let mut modify = self
            .rds
            .modify_db_proxy()
            .db_proxy_name(&target.proxy_name)
            .auth(Self::auth(target, secret_arn))
            .role_arn(&target.role_arn)
            .require_tls(target.require_tls)
            .debug_logging(target.debug_logging);
        if !target.vpc_security_group_ids.is_empty() {
            modify = modify.set_security_groups(Some(target.vpc_security_group_ids.clone()));
        }
        if let Some(t) = target.idle_client_timeout {
            modify = modify.idle_client_timeout(t);
        }
        modify
            .send()
            .await
            .map_err(|e| self.failed("ModifyDBProxy", &e))?;
        Ok(())
    }

    pub async fn register_target(&self, target: &Target) -> Result<(), Error> {
        let mut register = self
            .rds
            .register_db_proxy_targets()
            .db_proxy_name(&target.proxy_name);
        register = match &target.db_target {
            DbTarget::Instance(i) => register.db_instance_identifiers(i),
            DbTarget::Cluster(c) => register.db_cluster_identifiers(c),
        };
        register
            .send()
            .await
            .map_err(|e| self.failed("RegisterDBProxyTargets", &e))?;
        Ok(())
    }

    pub async fn modify_pool(&self, target: &Target) -> Result<(), Error> {
        let p = &target.pool;
        let mut config = ConnectionPoolConfiguration::builder()
            .set_max_connections_percent(p.max_connections_percent)
            .set_max_idle_connections_percent(p.max_idle_connections_percent)
            .set_connection_borrow_timeout(p.connection_borrow_timeout)
            .set_session_pinning_filters(Some(p.session_pinning_filters.clone()));
        if let Some(q) = &p.init_query {
            config = config.init_query(q);
        }
        self.rds
            .modify_db_proxy_target_group()
            .db_proxy_name(&target.proxy_name)
            .target_group_name("default")
            .connection_pool_config(config.build())
            .send()
            .await
            .map_err(|e| self.failed("ModifyDBProxyTargetGroup", &e))?;
        Ok(())
    }

    /// Waits until the proxy is available and its target healthy; reports
    /// AWS's reason when the target stays unhealthy.
    pub async fn wait_healthy(
        &self,
        target: &Target,
        timeout: Duration,
        poll: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<String, Error> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let current = self.current(target).await?.ok_or_else(|| {
                Error::message(format!(
                    "RDS Proxy {} disappeared while poolwright waited for it",
                    target.proxy_name
                ))
            })?;
            let targets = self
                .rds
                .describe_db_proxy_targets()
                .db_proxy_name(&target.proxy_name)
                .send()
                .await
                .map_err(|e| self.failed("DescribeDBProxyTargets", &e))?;
            let ours = targets.targets().iter().find(|t| {
                t.rds_resource_id().or(t.tracked_cluster_id()) == Some(target_id(target))
            });
            let health = ours.and_then(|t| t.target_health());
            let state = health
                .and_then(|h| h.state())
                .map_or("-", |s| s.as_str())
                .to_string();
            let reason = health
                .map(|h| {
                    let r = h.reason().map_or(String::new(), |r| r.as_str().to_string());
                    let d = h.description().unwrap_or_default();
                    format!("{r} {d}").trim().to_string()
                })
                .unwrap_or_default();
            let line = format!(
                "proxy {}, target {} {state}",
                current.status,
                target_id(target)
            );
            if line != last {
                progress(&line);
                last = line;
            }
            if current.status == "available" && state == "AVAILABLE" {
                return current
                    .endpoint
                    .ok_or_else(|| Error::message("AWS reports no endpoint for the proxy"));
            }
            if started.elapsed() > timeout {
                let hint = match reason.split_whitespace().next().unwrap_or("") {
                    "AUTH_FAILURE" => {
                        "the secret's credentials are wrong, or the role cannot read (or decrypt) the secret"
                    }
                    "CONNECTION_FAILED" | "UNREACHABLE" => {
                        "the proxy cannot reach the database: its security groups must allow the proxy's subnets on the database port"
                    }
                    "PENDING_PROXY_CAPACITY" => {
                        "AWS is still adding capacity: run apply again later"
                    }
                    _ => "check the proxy's security groups, its secret and its IAM role",
                };
                return Err(Error::message(format!(
                    "RDS Proxy {} is not healthy after {} s: proxy {}, target {} {state}{}",
                    target.proxy_name,
                    timeout.as_secs(),
                    current.status,
                    target_id(target),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    }
                ))
                .with_hint(hint));
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Deregisters the target, deletes the proxy and the secret poolwright
    /// created (never one it did not create). Returns report lines.
    pub async fn destroy(
        &self,
        target: &Target,
        created_secret: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let mut lines = Vec::new();
        match self.current(target).await? {
            Some(current) => {
                if current.registered.iter().any(|r| r == target_id(target)) {
                    let mut deregister = self
                        .rds
                        .deregister_db_proxy_targets()
                        .db_proxy_name(&target.proxy_name);
                    deregister = match &target.db_target {
                        DbTarget::Instance(i) => deregister.db_instance_identifiers(i),
                        DbTarget::Cluster(c) => deregister.db_cluster_identifiers(c),
                    };
                    deregister
                        .send()
                        .await
                        .map_err(|e| self.failed("DeregisterDBProxyTargets", &e))?;
                    lines.push(format!("deregistered {}", target_id(target)));
                }
                self.rds
                    .delete_db_proxy()
                    .db_proxy_name(&target.proxy_name)
                    .send()
                    .await
                    .map_err(|e| self.failed("DeleteDBProxy", &e))?;
                lines.push(format!("deleted RDS Proxy {}", target.proxy_name));
            }
            None => lines.push(format!("RDS Proxy {} does not exist", target.proxy_name)),
        }
        // The secret poolwright made: from the state, or, when an apply failed
        // before recording it, by its name and poolwright's tag.
        let found;
        let created_secret = match (created_secret, &target.auth) {
            (Some(arn), _) => Some(arn),
            (None, Auth::Create { username, .. }) => {
                found = self
                    .tagged_secret(&format!("poolwright/{}/{username}", target.proxy_name))
                    .await?;
                found.as_deref()
            }
            (None, Auth::Existing { .. }) => None,
        };
        if let Some(arn) = created_secret {
            self.secrets
                .delete_secret()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| self.failed("DeleteSecret", &e))?;
            lines.push("scheduled the secret poolwright created for deletion (Secrets Manager keeps it 30 days)".into());
        }
        Ok(lines)
    }
}
