//! One target's health at a glance, for `poolwright status`: can an app log
//! in through the pooled URL now, how many server connections the pools
//! hold against what they may open, and when apply last wrote the files.
//!
//! Quick by design (one login, one SHOW POOLS, a short timeout), and never
//! an error: an unreachable pooler, or a password variable that is not set
//! here, is a finding to show in the table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::connect::{self, Endpoint};
use super::diagnose::{Situation, Via, diagnose};
use super::{admin, latency, self_hosted};
use crate::config::Target;
use crate::providers::pgbouncer::budget;

/// Server connections the pools hold (SHOW POOLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServerConnections {
    pub open: u64,
    pub active: u64,
}

/// What the pools may open against the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Allowed {
    Connections(u64),
    /// "unlimited" (pool size 0 from PgBouncer 1.24 on) or "unknown"
    /// (a managed pooler sizes its own pools).
    Word(&'static str),
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allowed::Connections(n) => write!(f, "{n}"),
            Allowed::Word(w) => f.write_str(w),
        }
    }
}

/// One row of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub target: String,
    pub provider: String,
    /// The pooled URL, password masked.
    pub endpoint: String,
    pub mode: String,
    pub reachable: bool,
    /// How the probe went: "login ok in 3.10 ms (TLSv1.3)", or the cause.
    pub reachability: String,
    /// None when the admin console did not answer.
    pub server_connections: Option<ServerConnections>,
    pub allowed: Allowed,
    /// When apply last changed pgbouncer.ini here (UTC), if it exists.
    pub last_apply: Option<String>,
    /// Whether poolwright writes files for this target (else "last apply"
    /// is not a file's time).
    #[serde(skip)]
    pub has_files: bool,
}

/// Probes `target` with `timeout` per connection.
pub async fn probe(target: &Target, timeout: Duration) -> Health {
    let bouncer = self_hosted(target);
    let traits = target.provider.pooler_traits();
    let url = target.provider.pooled_url();
    let mut health = Health {
        target: target.name.clone(),
        provider: target.provider.describe(),
        endpoint: url.as_ref().map_or_else(|| "-".into(), |u| u.masked()),
        mode: match bouncer {
            Some(b) => b.url_pool_mode().to_string(),
            None if traits.transaction_pooling => "transaction".into(),
            None => "session".into(),
        },
        reachable: false,
        reachability: String::new(),
        server_connections: None,
        allowed: match bouncer.map(|b| budget::compute(b).total) {
            Some(Some(n)) => Allowed::Connections(n),
            Some(None) => Allowed::Word("unlimited"),
            None => Allowed::Word("unknown"),
        },
        last_apply: bouncer.and_then(last_apply),
        has_files: bouncer.is_some(),
    };
    let Some(url) = url else {
        health.reachability = "unknown until `poolwright apply`".into();
        return health;
    };
    let place = format!("{}:{}", url.host, url.port);
    let floor = super::auth_floors(target).0;
    let mut logged_in = false;
    match Endpoint::from_url(&url).map(|e| e.with_auth_floor(floor)) {
        Ok(end) => match connect::connect(&end, timeout).await {
            Ok(s) => {
                health.reachable = true;
                logged_in = true;
                health.reachability = format!(
                    "login ok in {}{}",
                    latency::ms(s.login_time),
                    s.tls
                        .as_ref()
                        .map_or_else(|| " (no TLS)".to_string(), |t| format!(" ({})", t.version))
                );
                s.close().await;
            }
            Err(e) => {
                let d = diagnose(
                    &e.text,
                    &Situation {
                        via: Via::Pooler,
                        place: &e.place,
                        user: &end.user,
                        database: &end.database,
                        target: &target.name,
                        provider: target.provider.provider_name(),
                        code: e.code.as_deref(),
                    },
                );
                // A refused login still proves something listens.
                health.reachable = e.stage == connect::Stage::Login;
                health.reachability = format!("{}: {}", e.text, d.cause);
            }
        },
        Err(_) => {
            // No password here: a TCP connect is all we can try.
            let tcp = tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect((url.host.as_str(), url.port)),
            )
            .await;
            health.reachable = matches!(tcp, Ok(Ok(_)));
            health.reachability = match tcp {
                Ok(Ok(_)) => {
                    format!("port {place} open; login not tried (password variable not set)")
                }
                Ok(Err(e)) => format!("{e}: nothing listens on {place}"),
                Err(_) => format!("no answer from {place} within {} s", timeout.as_secs()),
            };
        }
    }
    // Never offer another credential to a pooler that refused the first.
    if logged_in
        && let Some(bouncer) = bouncer
        && let Some(user) = admin::console_user(bouncer)
    {
        let mut console = url.clone();
        console.user = Some(user.name.clone());
        console.password = Some(user.password.clone());
        console.database = "pgbouncer".into();
        if let Ok(end) = Endpoint::from_url(&console)
            && let Ok(s) = connect::connect(&end.with_auth_floor(floor), timeout).await
        {
            if let Ok(table) = s.table("SHOW POOLS").await {
                let (open, active) = admin::server_connections(&table, bouncer);
                health.server_connections = Some(ServerConnections { open, active });
            }
            s.close().await;
        }
    }
    health
}

/// When apply last changed the target's pgbouncer.ini on this host (apply
/// writes a file only when its bytes change, so this is the last apply that
/// changed the configuration).
fn last_apply(target: &crate::providers::pgbouncer::Target) -> Option<String> {
    let files = target.host_files();
    let (_, ini, _) = files.first()?;
    std::fs::metadata(ini)
        .and_then(|m| m.modified())
        .ok()
        .map(utc)
}

/// `2026-05-01 12:00:03 UTC`.
pub fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(utc(t), "2024-02-29 12:34:56 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(t), "2000-02-29 00:00:00 UTC");
    }
}
