//! `verify`: prove, against the live pooler and server, that a target's app
//! is pooled, what the pooler costs, and what to change when it is not.
//!
//! Each check ends as a [`Check`]: PASS, WARN or FAIL with the measured
//! figure, or the cause and the fix; the [`verdict`] above them says pooled,
//! not pooled or broken. The checks, in order: the app's own URL when given
//! ([`app_url`]); login through the pooled URL and the TLS it used; for
//! PgBouncer, the admin console (version, running settings against
//! poolwright.yaml, pools) and whether it can open a new server connection;
//! N connections in a row and N clients at once to prove they share server
//! backends within the pool; the pool budget against the server's live
//! limits and who holds its slots; the hazards for the app's driver; and
//! round-trip latency pooled against direct. A check that cannot run for
//! want of an earlier one says so instead of repeating its error.
//!
//! Submodules: [`connect`] (logins, with TLS, over [`wire`] taps guarded by
//! [`wire_guard`]), [`tls`], [`diagnose`] (known errors to cause and fix),
//! [`admin`] and [`drift`] (PgBouncer's console), [`server_login`],
//! [`pooling`], [`concurrency`], [`server_budget`] with [`live_budget`] and
//! [`slots`], [`hazards`], [`latency`], [`verdict`], and [`health`] (the
//! quick probe behind `status`).

pub mod admin;
pub mod app_url;
pub mod concurrency;
pub mod connect;
pub mod diagnose;
pub mod drift;
pub mod hazards;
pub mod health;
pub mod latency;
pub mod live_budget;
pub mod pooling;
pub mod server_budget;
pub mod server_login;
pub mod slots;
pub mod tls;
pub mod verdict;
pub mod wire;
pub mod wire_guard;

use std::time::Duration;

use serde::Serialize;

use self::connect::{AuthFloor, ConnectError, Endpoint, Session, Stage};
use self::diagnose::{Situation, Via, diagnose};
pub use self::verdict::{State, Verdict, verdict};
use crate::config::Target;
use crate::drivers::Driver;
use crate::error::Error;
use crate::providers::ProviderTarget;
use crate::providers::pgbouncer::{self, budget};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome: the figure it measured, or the cause and the fix.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub status: Status,
    pub check: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: &str, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Pass,
            check: check.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            status: Status::Warn,
            check: check.into(),
            detail: detail.into(),
            fix,
        }
    }

    pub fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            check: check.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Everything verify found for one target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub provider: String,
    /// The pooled URL, password masked.
    pub url: String,
    pub driver: Option<String>,
    pub verdict: Verdict,
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed (warnings do not fail).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }
}

/// How verify runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The app's driver, whose hazards may fail the run.
    pub driver: Option<&'static Driver>,
    /// Short connections in a row for the pooling proof.
    pub connections: u32,
    /// Clients at once for the concurrency proof (None: twice the pool).
    pub concurrent: Option<u32>,
    /// The URL the app really uses, checked and used in place of the
    /// target's pooled URL.
    pub app_url: Option<app_url::AppUrl>,
    /// Queries per URL for the latency figures.
    pub samples: u32,
    /// Per connection attempt.
    pub timeout: Duration,
}

/// The endpoints verify logs in to, all with their passwords.
struct Endpoints {
    pooled: Endpoint,
    direct: Endpoint,
    /// PgBouncer's admin console and the user verify uses there.
    console: Option<Endpoint>,
}

/// The self-hosted PgBouncer behind `target`, for the checks only it
/// allows: its admin console, and the budget of its pools.
#[allow(unreachable_patterns)] // managed providers join PgBouncer here
pub fn self_hosted(target: &Target) -> Option<&pgbouncer::Target> {
    match &target.provider {
        ProviderTarget::PgBouncer(t) => Some(t),
        _ => None,
    }
}

/// The weakest authentication poolwright answers on the target's pooled
/// URL (and console) and on its direct URL: never weaker than the target
/// says its pooler uses, and never a clear-text password to a server whose
/// pooler holds verifiers. Managed poolers choose their own methods.
pub fn auth_floors(target: &Target) -> (AuthFloor, AuthFloor) {
    let Some(b) = self_hosted(target) else {
        return (AuthFloor::Cleartext, AuthFloor::Cleartext);
    };
    let pooled = match b.text_setting("auth_type") {
        Some("scram-sha-256") => AuthFloor::Scram,
        Some("md5") => AuthFloor::Md5,
        _ => AuthFloor::Cleartext,
    };
    let direct = if b.userlist == pgbouncer::UserlistFormat::Plain {
        AuthFloor::Cleartext
    } else {
        AuthFloor::Md5
    };
    (pooled, direct)
}

fn known_after_apply(target: &Target) -> Error {
    Error::message(format!(
        "the URLs of target `{}` are known only after `poolwright apply {}`",
        target.name, target.name
    ))
}

/// Every endpoint with its password; an unset password variable is an
/// error that names it.
fn endpoints(target: &Target) -> Result<Endpoints, Error> {
    let pooled_url = target
        .provider
        .pooled_url()
        .ok_or_else(|| known_after_apply(target))?;
    let direct_url = target
        .provider
        .direct_url()
        .ok_or_else(|| known_after_apply(target))?;
    let floors = auth_floors(target);
    let console = match self_hosted(target).and_then(admin::console_user) {
        Some(user) => {
            let mut url = pooled_url.clone();
            url.user = Some(user.name.clone());
            url.password = Some(user.password.clone());
            url.database = "pgbouncer".into();
            Some(Endpoint::from_url(&url)?.with_auth_floor(floors.0))
        }
        None => None,
    };
    Ok(Endpoints {
        pooled: Endpoint::from_url(&pooled_url)?.with_auth_floor(floors.0),
        direct: Endpoint::from_url(&direct_url)?.with_auth_floor(floors.1),
        console,
    })
}

/// Whether a failed login was the peer refusing the credential (or asking
/// for it in a way poolwright would not answer), not TLS or the database.
fn refused_credentials(e: &ConnectError) -> bool {
    let text = e.text.to_lowercase();
    e.stage == Stage::Login
        && (text.contains("password authentication failed")
            || text.contains("sasl authentication failed")
            || text.contains("weaker than the target allows"))
}

fn situation<'a>(target: &'a Target, via: Via, e: &'a Endpoint) -> Situation<'a> {
    Situation {
        via,
        place: &e.host_port,
        user: &e.user,
        database: &e.database,
        target: &target.name,
        provider: target.provider.provider_name(),
        code: None,
    }
}

/// A failed login as a check: what was tried, the server's words, the
/// cause and the fix.
fn login_failed(check: &str, e: &ConnectError, s: &Situation<'_>, what: &str) -> Check {
    let d = diagnose(
        &e.text,
        &Situation {
            code: e.code.as_deref(),
            ..*s
        },
    );
    Check::fail(
        check,
        format!("{what} at {} failed: \"{}\": {}", e.place, e.text, d.cause),
        d.fix,
    )
}

/// Runs every check of `target`. Only missing passwords (and URLs not known
/// yet) are errors; every problem of the world is a failed check in the
/// report.
pub async fn verify(target: &Target, options: &Options) -> Result<Report, Error> {
    let mut ends = endpoints(target)?;
    let bouncer = self_hosted(target);
    let mut checks = Vec::new();
    if let Some(app) = &options.app_url {
        let pooled = ends.pooled.url.clone();
        checks.push(app_url::check(
            app,
            &pooled,
            &ends.direct.url,
            options.driver,
            &target.provider.pooler_traits(),
            &target.name,
        ));
        // From here on, every check goes through the app's own URL; one
        // without a password logs in with the target's.
        let mut url = app.url.clone();
        if url.password.is_none() {
            url.password = pooled.password.clone();
        }
        if url.user.is_none() {
            url.user = pooled.user.clone();
        }
        ends.pooled = Endpoint::from_url(&url)?.with_auth_floor(auth_floors(target).0);
    }
    let pooled_s = situation(target, Via::Pooler, &ends.pooled);
    let direct_s = situation(target, Via::Direct, &ends.direct);

    // Login through the pooled URL, as the app does.
    let pooled = connect::connect(&ends.pooled, options.timeout).await;
    let not_reached = matches!(&pooled, Err(e) if matches!(e.stage, Stage::Tcp | Stage::Timeout));
    match &pooled {
        Ok(s) => {
            checks.push(Check::pass(
                "login",
                format!(
                    "as {} to {} at {} via {} in {}",
                    ends.pooled.user,
                    ends.pooled.database,
                    ends.pooled.host_port,
                    s.auth.as_deref().unwrap_or("an unknown method"),
                    latency::ms(s.login_time)
                ),
            ));
            checks.push(tls_check(s, &ends.pooled.host, target, bouncer));
        }
        Err(e) => checks.push(login_failed(
            "login",
            e,
            &pooled_s,
            &format!("login as {} through the pooled URL", ends.pooled.user),
        )),
    }

    // PgBouncer's admin console (managed poolers have none).
    let console = match (bouncer, &ends.console) {
        (None, _) => None,
        (Some(_), None) => {
            checks.push(Check::warn(
                "admin console",
                "not checked: no admin_users or stats_users entry is one of the target's users, so verify cannot read SHOW CONFIG and SHOW POOLS",
                Some(format!(
                    "add a user (e.g. `pgbadmin: {{ password: \"${{PGBOUNCER_ADMIN_PASSWORD}}\" }}`) under users: and name it in pgbouncer.stats_users (read-only) or admin_users of target {}, then `poolwright apply {}`",
                    target.name, target.name
                )),
            ));
            None
        }
        (Some(_), Some(_)) if matches!(&pooled, Err(e) if refused_credentials(e)) => {
            // A pooler that refused one credential is not offered another.
            checks.push(Check::warn(
                "admin console",
                "not tried: the pooler refused the app's login (see login), and verify offers no second credential to a pooler that refused the first",
                None,
            ));
            None
        }
        (Some(_), Some(_)) if not_reached => {
            checks.push(Check::warn(
                "admin console",
                format!(
                    "not reached: nothing answers at {} (see login)",
                    ends.pooled.host_port
                ),
                None,
            ));
            None
        }
        (Some(b), Some(end)) => match connect::connect(end, options.timeout).await {
            Ok(s) => {
                checks.push(admin::version(&s, b).await);
                checks.push(admin::config(&s, b).await);
                Some(s)
            }
            Err(e) => {
                let s = situation(target, Via::AdminConsole, end);
                checks.push(login_failed(
                    "admin console",
                    &e,
                    &s,
                    &format!("login as {} to the admin console", end.user),
                ));
                None
            }
        },
    };

    // A fresh server login from PgBouncer, which one live server connection
    // can hide.
    if let Some(b) = bouncer {
        checks.push(server_login::check(b, options.timeout).await);
    }

    // The direct URL: the server's own figures.
    let direct = connect::connect(&ends.direct, options.timeout).await;
    let direct_error = direct.as_ref().err().map(|e| {
        let d = diagnose(&e.text, &direct_s);
        format!("\"{}\" at {}: {}", e.text, e.place, d.cause)
    });
    // A pooler that accepts the client but never finishes its login is
    // waiting for the server: what the server says is the real cause.
    if let (Err(p), Err(e)) = (&pooled, &direct)
        && p.stage == Stage::Timeout
        && p.text.contains("connected, but")
        && let Some(login) = checks.iter_mut().find(|c| c.check == "login")
    {
        let d = diagnose(&e.text, &direct_s);
        login.detail.push_str(&format!(
            "; the server itself answers the direct URL with \"{}\": {}",
            e.text, d.cause
        ));
        login.fix = Some(d.fix);
    }

    // The pooling proof, against the URL's pool size where poolwright knows it.
    let cap = bouncer.and_then(|b| {
        budget::compute(b)
            .pools
            .iter()
            .find(|p| p.database == b.url_database && p.user == b.url_user)
            .and_then(budget::Pool::total)
    });
    let mut pooled_login = None;
    if pooled.is_ok() {
        let witness = match &direct {
            Ok(s) => Ok(s),
            Err(_) => Err(direct_error.as_deref().unwrap_or("no direct connection")),
        };
        match pooling::measure(
            &ends.pooled,
            witness,
            options.connections,
            options.timeout,
            &pooled_s,
        )
        .await
        {
            Ok(proof) => {
                pooled_login = Some(proof.login_median);
                checks.extend(pooling::judge(
                    &proof,
                    cap,
                    &target.name,
                    &ends.direct.masked(),
                ));
            }
            Err(check) => checks.push(check),
        }
        let n = options
            .concurrent
            .unwrap_or_else(|| concurrency::default_clients(cap));
        let crowd = concurrency::measure(&ends.pooled, witness, n, options.timeout).await;
        checks.push(concurrency::judge(&crowd, cap, &target.name, &pooled_s));
    } else {
        checks.push(Check::warn(
            "pooling",
            "not measured: the login through the pooled URL failed (see login)",
            None,
        ));
    }

    if let (Some(s), Some(b)) = (&console, bouncer) {
        checks.push(admin::pools(s, b).await);
    }

    // The budget of poolwright's pools against the live server (a managed
    // pooler sizes its pools itself), and who holds the server's slots.
    if let Some(b) = bouncer {
        checks.extend(
            server_budget::budget_checks(b, &pooled, &direct, console.as_ref(), &ends, &direct_s)
                .await,
        );
    }

    let full_fix = checks
        .iter()
        .find(|c| c.check == "budget" && c.status == Status::Fail)
        .and_then(|c| c.fix.clone());
    if let (Some(fix), Some(login)) = (
        full_fix,
        checks.iter_mut().find(|c| {
            c.check == "login"
                && c.status == Status::Fail
                && c.detail.contains("no connection slot left")
        }),
    ) {
        login.fix = Some(format!(
            "the budget check below says who holds the slots: {fix}"
        ));
    }

    checks.extend(hazards::checks(
        options.driver,
        &target.provider.pooler_traits(),
        &target.name,
    ));

    // Latency, pooled against direct, on the sessions already open.
    if let Ok(p) = &pooled {
        checks.push(
            latency_check(
                p,
                &direct,
                direct_error.as_deref(),
                &ends,
                options,
                pooled_login,
            )
            .await,
        );
    }

    for session in [pooled.ok(), direct.ok(), console].into_iter().flatten() {
        session.close().await;
    }
    Ok(Report {
        target: target.name.clone(),
        provider: target.provider.describe(),
        url: ends.pooled.masked(),
        driver: options.driver.map(|d| d.name.to_string()),
        verdict: verdict(&checks),
        checks,
    })
}

/// TLS on the pooled login: the version and cipher, or a warning when the
/// pooler offers none (a failure cannot get here: sslmode=require refuses
/// the login itself).
fn tls_check(
    session: &Session,
    host: &str,
    target: &Target,
    bouncer: Option<&pgbouncer::Target>,
) -> Check {
    if let Some(t) = &session.tls {
        return Check::pass("tls", format!("{}, {}", t.version, t.cipher));
    }
    // Traffic that never leaves this machine has nothing to encrypt: a
    // warning there would teach users to ignore the one that matters.
    if let Some(reach @ (crate::url::Reach::ThisMachine | crate::url::Reach::UnixSocket)) =
        crate::url::host_reach(host)
    {
        let how = if reach == crate::url::Reach::UnixSocket {
            "a Unix socket"
        } else {
            "loopback"
        };
        return Check::pass(
            "tls",
            format!("none needed: the pooled URL is {how}, so the traffic stays on this machine"),
        );
    }
    let (host, setting) = match bouncer {
        Some(b) => (
            b.public_host.as_str(),
            format!(
                " (client_tls_sslmode is {})",
                b.text_setting("client_tls_sslmode").unwrap_or("not set")
            ),
        ),
        None => ("the pooler", String::new()),
    };
    Check::warn(
        "tls",
        format!(
            "no TLS: {host} offers none{setting}, so queries and results cross the network in clear"
        ),
        Some(match bouncer {
            Some(_) => format!(
                "unless the network is yours alone, set client_tls_sslmode: require with client_tls_key_file and client_tls_cert_file in target {}; poolwright then puts sslmode=require in the URL",
                target.name
            ),
            None => "ask for TLS with sslmode=require in the URL".to_string(),
        }),
    )
}

async fn latency_check(
    pooled: &Session,
    direct: &Result<Session, ConnectError>,
    direct_error: Option<&str>,
    ends: &Endpoints,
    options: &Options,
    pooled_login: Option<std::time::Duration>,
) -> Check {
    let samples = options.samples.max(1);
    let through = match latency::sample(pooled, samples).await {
        Ok(t) => t,
        Err(e) => return Check::warn("latency", format!("not measured: {e}"), None),
    };
    let direct_samples = match direct {
        Ok(d) => latency::sample(d, samples).await,
        Err(_) => Err(direct_error.unwrap_or("no direct connection").to_string()),
    };
    // A serverless app pays a login per request: a few direct logins
    // against the pooled ones of the pooling proof.
    let mut direct_logins = Vec::new();
    if direct.is_ok() {
        for _ in 0..3 {
            if let Ok(s) = connect::connect(&ends.direct, options.timeout).await {
                direct_logins.push(s.login_time);
                s.close().await;
            }
        }
    }
    latency::check(
        &through,
        direct_samples.as_deref().map_err(String::as_str),
        pooled_login.unwrap_or(pooled.login_time),
        (!direct_logins.is_empty()).then(|| latency::median(&direct_logins)),
    )
}
