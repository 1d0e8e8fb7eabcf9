//! The proof that the app is pooled: connect as a serverless app does, many
//! times in a row, and watch the server side.
//!
//! Each of N short connections through the pooled URL asks for
//! `pg_backend_pid()`: the process id of the PostgreSQL backend that ran the
//! query. A pooler hands the same few server connections from client to
//! client, so the ids repeat; without one, every connection gets a backend
//! of its own and N connections show N ids. As a second witness, when the
//! direct URL may read `pg_stat_activity`, the database's backends are
//! counted before and after: a pooler keeps its server connections open
//! after the clients left, and never more than the pool allows.

use std::collections::BTreeSet;
use std::time::Duration;

use super::Check;
use super::connect::{self, Endpoint, Session};
use super::diagnose::{Situation, diagnose};
use super::latency;

/// Counts the database's client backends other than our own.
const BACKENDS: &str = "SELECT count(*) FROM pg_stat_activity \
     WHERE datname = current_database() AND backend_type = 'client backend' \
     AND pid <> pg_backend_pid()";

/// What N connections in a row showed.
#[derive(Debug, Clone)]
pub struct Proof {
    pub connections: u32,
    pub backend_pids: usize,
    /// The median login time through the pooler.
    pub login_median: Duration,
    /// Client backends of the database before and after, when readable.
    pub backends: Result<(u64, u64), String>,
}

/// The database's client backends other than our own session's.
pub(super) async fn count_backends(direct: &Session) -> Result<u64, String> {
    direct
        .value(BACKENDS)
        .await?
        .parse()
        .map_err(|e| format!("pg_stat_activity count: {e}"))
}

/// Opens `n` connections in a row through `pooled`, each asking for its
/// backend's pid; counts backends through `direct` when there is one.
pub async fn measure(
    pooled: &Endpoint,
    direct: Result<&Session, &str>,
    n: u32,
    timeout: Duration,
    situation: &Situation<'_>,
) -> Result<Proof, Check> {
    let before = match direct {
        Ok(d) => count_backends(d).await,
        Err(e) => Err(e.to_string()),
    };
    let mut pids = BTreeSet::new();
    let mut logins = Vec::new();
    for i in 1..=n {
        let session = connect::connect(pooled, timeout).await.map_err(|e| {
            let d = diagnose(&e.text, situation);
            Check::fail(
                "pooling",
                format!(
                    "connection {i} of {n} in a row failed at {}: \"{}\": {}",
                    e.place, e.text, d.cause
                ),
                d.fix,
            )
        })?;
        logins.push(session.login_time);
        let pid = session.value("SELECT pg_backend_pid()").await;
        session.close().await;
        let pid = pid.map_err(|e| {
            let d = diagnose(&e, situation);
            Check::fail(
                "pooling",
                format!(
                    "SELECT pg_backend_pid() on connection {i} failed: \"{e}\": {}",
                    d.cause
                ),
                d.fix,
            )
        })?;
        pids.insert(pid);
    }
    let after = match direct {
        Ok(d) => count_backends(d).await,
        Err(e) => Err(e.to_string()),
    };
    Ok(Proof {
        connections: n,
        backend_pids: pids.len(),
        login_median: latency::median(&logins),
        backends: before.and_then(|b| after.map(|a| (b, a))),
    })
}

/// The verdict on `proof`, given the most server connections the URL's
/// pool may open (None: unlimited). Returns the pooling check and, when
/// pg_stat_activity was not readable, a warning that says so.
pub fn judge(proof: &Proof, cap: Option<u64>, target: &str, via_direct: &str) -> Vec<Check> {
    let n = proof.connections;
    let pids = proof.backend_pids as u64;
    let within_cap = cap.is_none_or(|c| pids <= c.max(1));
    // Growth, not the count: other apps may hold backends of the database.
    let growth_ok = match &proof.backends {
        Ok((before, after)) => cap.is_none_or(|c| after.saturating_sub(*before) <= c.max(1)),
        Err(_) => true,
    };
    let cap_text = cap.map_or_else(|| "unlimited".to_string(), |c| c.to_string());
    let mut detail = format!(
        "{n} connection{} in a row were served by {pids} server backend{} (pg_backend_pid), pool cap {cap_text}",
        if n == 1 { "" } else { "s" },
        if pids == 1 { "" } else { "s" },
    );
    if let Ok((before, after)) = &proof.backends {
        detail.push_str(&format!(
            "; the database has {after} client backend{} on the server now, {before} before",
            if *after == 1 { "" } else { "s" }
        ));
    }
    detail.push_str(&format!(
        "; login median {}",
        latency::ms(proof.login_median)
    ));
    let mut checks = Vec::new();
    if n < 2 {
        checks.push(Check::warn(
            "pooling",
            format!("{detail}: one connection proves nothing"),
            Some("run with --connections 20 or more".into()),
        ));
    } else if pids >= u64::from(n) {
        checks.push(Check::fail(
            "pooling",
            format!(
                "{detail}: every connection got a server backend of its own, so nothing pools them; the pooled URL reaches PostgreSQL directly"
            ),
            format!(
                "point DATABASE_URL at the pooler (`poolwright url {target}`): public_host and pgbouncer.listen_port of target {target} must be where PgBouncer listens, and PgBouncer's [databases] must lead to the server"
            ),
        ));
    } else if !within_cap || !growth_ok {
        checks.push(Check::fail(
            "pooling",
            format!(
                "{detail}: more server backends than the pool allows, so the running pool is not the one poolwright.yaml describes"
            ),
            format!(
                "compare the running settings with poolwright.yaml (the config check above) and run `poolwright apply {target}`"
            ),
        ));
    } else {
        checks.push(Check::pass("pooling", detail));
    }
    if let Err(e) = &proof.backends {
        // Only a permission problem is fixed by a grant; a direct URL that
        // fails has its own check (budget) saying why.
        let fix = e.contains("permission denied").then(|| {
            "the pooling verdict above rests on pg_backend_pid alone; grant pg_read_all_stats to the URL's user to count server backends too".to_string()
        });
        checks.push(Check::warn(
            "server backends",
            format!("not counted: cannot read pg_stat_activity through the direct URL {via_direct}: {e}; the pooling verdict rests on pg_backend_pid alone"),
            fix,
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    fn proof(pids: usize, backends: Result<(u64, u64), String>) -> Proof {
        Proof {
            connections: 20,
            backend_pids: pids,
            login_median: Duration::from_micros(2500),
            backends,
        }
    }

    #[test]
    fn a_pooler_passes_and_a_direct_url_fails() {
        let pooled = judge(&proof(1, Ok((0, 1))), Some(12), "prod", "u");
        assert_eq!(pooled.len(), 1);
        assert_eq!(pooled[0].status, Status::Pass);
        assert!(
            pooled[0]
                .detail
                .contains("20 connections in a row were served by 1 server backend"),
            "{}",
            pooled[0].detail
        );
        assert!(
            pooled[0]
                .detail
                .contains("1 client backend on the server now, 0 before")
        );

        let direct = judge(&proof(20, Ok((0, 0))), Some(12), "prod", "u");
        assert_eq!(direct[0].status, Status::Fail);
        assert!(direct[0].detail.contains("reaches PostgreSQL directly"));
        assert!(
            direct[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("poolwright url prod")
        );

        // More backends than the pool allows: something else opens them.
        let over = judge(&proof(2, Ok((0, 30))), Some(12), "prod", "u");
        assert_eq!(over[0].status, Status::Fail);
    }

    #[test]
    fn unreadable_pg_stat_activity_is_a_warning_beside_the_verdict() {
        let checks = judge(
            &proof(1, Err("permission denied".into())),
            Some(12),
            "prod",
            "u",
        );
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[1].status, Status::Warn);
        assert!(checks[1].detail.contains("permission denied"));
    }
}
