//! What must change in AWS for an RDS Proxy target: the proxy as it is
//! ([`Current`], read by `aws`) against the target, as data ([`Changes`]).
//! Pure, so plan and apply agree on it and it is tested without AWS.

use super::{Auth, DbTarget, Target};

/// What the proxy looks like in AWS now (None: it does not exist).
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub status: String,
    pub endpoint: Option<String>,
    pub engine_family: String,
    pub vpc_subnet_ids: Vec<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub role_arn: String,
    pub require_tls: bool,
    pub idle_client_timeout: Option<i32>,
    pub debug_logging: bool,
    pub secret_arns: Vec<String>,
    pub registered: Vec<String>,
    pub pool: super::Pool,
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The differences between the config and AWS, split by what they need.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Fields AWS cannot change on an existing proxy.
    pub forces_new: Vec<String>,
    /// Fields ModifyDBProxy changes in place.
    pub in_place: Vec<String>,
    pub pool: Vec<String>,
    pub register_target: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.forces_new.is_empty()
            && self.in_place.is_empty()
            && self.pool.is_empty()
            && !self.register_target
    }
}

/// The secret the proxy should use: the configured ARN, or the one
/// poolwright created (`created`, from the state file).
fn wanted_secret(target: &Target, created: Option<&str>) -> Option<String> {
    match &target.auth {
        Auth::Existing { secret_arn } => Some(secret_arn.clone()),
        Auth::Create { .. } => created.map(str::to_string),
    }
}

pub(super) fn target_id(target: &Target) -> &str {
    match &target.db_target {
        DbTarget::Instance(i) | DbTarget::Cluster(i) => i,
    }
}

/// Compares the config with what AWS has.
pub fn diff(target: &Target, current: &Current, created_secret: Option<&str>) -> Changes {
    let mut c = Changes::default();
    if current.engine_family != target.engine_family {
        c.forces_new.push(format!(
            "engine_family: {} -> {}",
            current.engine_family, target.engine_family
        ));
    }
    if sorted(&current.vpc_subnet_ids) != sorted(&target.vpc_subnet_ids) {
        c.forces_new.push("vpc_subnet_ids".into());
    }
    if current.role_arn != target.role_arn {
        c.in_place.push("role_arn".into());
    }
    if current.require_tls != target.require_tls {
        c.in_place.push(format!(
            "require_tls: {} -> {}",
            current.require_tls, target.require_tls
        ));
    }
    if let Some(t) = target.idle_client_timeout
        && current.idle_client_timeout != Some(t)
    {
        c.in_place.push(format!(
            "idle_client_timeout: {:?} -> {t}",
            current.idle_client_timeout
        ));
    }
    if current.debug_logging != target.debug_logging {
        c.in_place.push(format!(
            "debug_logging: {} -> {}",
            current.debug_logging, target.debug_logging
        ));
    }
    if !target.vpc_security_group_ids.is_empty()
        && sorted(&current.vpc_security_group_ids) != sorted(&target.vpc_security_group_ids)
    {
        c.in_place.push("vpc_security_group_ids".into());
    }
    if let Some(arn) = wanted_secret(target, created_secret)
        && !current.secret_arns.contains(&arn)
    {
        c.in_place.push("auth (secret)".into());
    }
    let (want, have) = (&target.pool, &current.pool);
    let mut check = |name: &str, want: Option<i32>, have: Option<i32>| {
        if let Some(w) = want
            && have != Some(w)
        {
            c.pool.push(format!(
                "{name}: {} -> {w}",
                have.map_or("-".into(), |h| h.to_string())
            ));
        }
    };
    check(
        "max_connections_percent",
        want.max_connections_percent,
        have.max_connections_percent,
    );
    check(
        "max_idle_connections_percent",
        want.max_idle_connections_percent,
        have.max_idle_connections_percent,
    );
    check(
        "connection_borrow_timeout",
        want.connection_borrow_timeout,
        have.connection_borrow_timeout,
    );
    if sorted(&want.session_pinning_filters) != sorted(&have.session_pinning_filters) {
        c.pool.push(format!(
            "session_pinning_filters: {:?} -> {:?}",
            have.session_pinning_filters, want.session_pinning_filters
        ));
    }
    if want.init_query.is_some() && want.init_query != have.init_query {
        c.pool.push("init_query".into());
    }
    c.register_target = !current.registered.iter().any(|r| r == target_id(target));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderTarget;

    /// The example's RDS Proxy target, as the loader decodes it.
    fn target(extra: &str) -> Target {
        let yaml = format!(
            "version: 1
targets:
  proxy:
    provider: rds-proxy
    name: books-proxy
    region: us-east-1
    target: {{ db_instance: qbo-mirror }}
    auth: {{ username: app, password: pw }}
    role_arn: \"arn:aws:iam::123456789012:role/rds-proxy\"
    vpc_subnet_ids: [subnet-aaaa, subnet-bbbb]
    vpc_security_group_ids: [sg-cccc]
    require_tls: true
    max_connections_percent: 80
    user: app
    password: pw
    database: qbo_mirror
{extra}"
        );
        let config = crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None)
            .expect("a valid rds-proxy target");
        match &config.targets[0].provider {
            ProviderTarget::RdsProxy(t) => t.clone(),
            _ => panic!("not an rds-proxy target"),
        }
    }

    /// What AWS would report for `t` right after apply made it.
    fn as_made(t: &Target) -> Current {
        Current {
            status: "available".into(),
            endpoint: Some("books-proxy.proxy-x.us-east-1.rds.amazonaws.com".into()),
            engine_family: t.engine_family.clone(),
            // AWS lists them in its own order.
            vpc_subnet_ids: t.vpc_subnet_ids.iter().rev().cloned().collect(),
            vpc_security_group_ids: t.vpc_security_group_ids.clone(),
            role_arn: t.role_arn.clone(),
            require_tls: t.require_tls,
            idle_client_timeout: t.idle_client_timeout,
            debug_logging: t.debug_logging,
            secret_arns: vec!["arn:aws:secretsmanager:us-east-1:1:secret:made".into()],
            registered: vec![target_id(t).to_string()],
            pool: t.pool.clone(),
        }
    }

    const MADE: Option<&str> = Some("arn:aws:secretsmanager:us-east-1:1:secret:made");

    #[test]
    fn a_proxy_as_apply_made_it_needs_nothing() {
        let t = target("");
        assert!(
            diff(&t, &as_made(&t), MADE).is_empty(),
            "{:?}",
            diff(&t, &as_made(&t), MADE)
        );
    }

    #[test]
    fn each_difference_lands_where_aws_can_change_it() {
        let t = target("");
        let mut now = as_made(&t);
        now.vpc_subnet_ids = vec!["subnet-zzzz".into()];
        now.require_tls = false;
        now.pool.max_connections_percent = Some(50);
        now.registered.clear();
        let c = diff(&t, &now, MADE);
        assert_eq!(c.forces_new, vec!["vpc_subnet_ids".to_string()]);
        assert_eq!(c.in_place, vec!["require_tls: false -> true".to_string()]);
        assert_eq!(
            c.pool,
            vec!["max_connections_percent: 50 -> 80".to_string()]
        );
        assert!(c.register_target);
        // A secret that is not the proxy's: its auth changes in place.
        let c = diff(
            &t,
            &as_made(&t),
            Some("arn:aws:secretsmanager:us-east-1:1:secret:other"),
        );
        assert_eq!(c.in_place, vec!["auth (secret)".to_string()]);
    }
}
