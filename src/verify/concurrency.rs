//! The proof under load: N clients at once, as a burst of serverless calls
//! opens them, must still be served by no more server backends than the
//! pool allows.
//!
//! Connections in a row ([`super::pooling`]) show that a pooler reuses its
//! server connections; they cannot show what happens when clients overlap,
//! which is when an unpooled URL exhausts the server. Here N clients are
//! connected at once and all send their query at the same moment, holding
//! it a moment ([`HOLD`]) so they overlap; each reports its backend's pid,
//! and the direct session counts the database's backends while they run.
//! Each client closes as soon as its query returns, so a session-mode pool
//! smaller than N serves the rest in turn instead of deadlocking.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::task::JoinSet;

use super::Check;
use super::connect::{self, Endpoint, Session};
use super::diagnose::{Situation, diagnose};
use super::pooling::count_backends as count;

/// How long each client's query holds its server connection.
const HOLD: &str = "0.2";
/// How often the direct session counts backends while the clients run.
const SAMPLE_EVERY: Duration = Duration::from_millis(40);

/// The default number of clients: twice the pool (so some must wait),
/// within 4..=50; 20 when the pool is not known.
pub fn default_clients(cap: Option<u64>) -> u32 {
    cap.map_or(20, |c| {
        u32::try_from(c.saturating_mul(2))
            .unwrap_or(50)
            .clamp(4, 50)
    })
}

/// What N clients at once showed.
#[derive(Debug, Clone)]
pub struct Crowd {
    pub clients: u32,
    /// The distinct backend pids the clients were served by.
    pub backend_pids: usize,
    /// The first failures (client number and the error text).
    pub failures: Vec<(u32, String)>,
    pub failed: u32,
    /// The database's client backends before, and the most seen while the
    /// clients ran, when the direct session may count them.
    pub backends: Result<(u64, u64), String>,
}

/// One client's query: the backend's pid, holding it a moment; the
/// session closes as soon as the answer is in.
async fn hold(session: Session) -> Result<String, String> {
    let pid = session
        .value(&format!(
            "SELECT pg_backend_pid() FROM (SELECT pg_sleep({HOLD})) AS hold"
        ))
        .await;
    session.close().await;
    pid
}

/// Logs `n` clients in through `pooled`, then has them all query at once;
/// counts backends through `direct` while the queries run. The logins come
/// one after another: a SCRAM login is CPU work on this side, and `n` of
/// them at once on one thread would eat each other's time limits, while
/// what must overlap is the clients' use of server connections.
pub async fn measure(
    pooled: &Endpoint,
    direct: Result<&Session, &str>,
    n: u32,
    timeout: Duration,
) -> Crowd {
    let before = match direct {
        Ok(d) => count(d).await,
        Err(e) => Err(e.to_string()),
    };
    let mut peak = before.clone();
    let mut failures = Vec::new();
    let mut failed = 0;
    let mut note = |i: u32, text: String, failures: &mut Vec<(u32, String)>| {
        failed += 1;
        if failures.len() < 3 {
            failures.push((i, text));
        }
    };
    let mut clients = JoinSet::new();
    let mut ready = Vec::new();
    for i in 1..=n {
        match connect::connect(pooled, timeout).await {
            Ok(session) => ready.push((i, session)),
            Err(e) => note(i, e.text, &mut failures),
        }
    }
    for (i, session) in ready {
        clients.spawn(async move { (i, hold(session).await) });
    }
    let mut pids = BTreeSet::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    while !clients.is_empty() {
        tokio::select! {
            joined = clients.join_next() => match joined {
                Some(Ok((_, Ok(pid)))) => {
                    pids.insert(pid);
                }
                Some(Ok((i, Err(text)))) => note(i, text, &mut failures),
                Some(Err(e)) => note(0, format!("client task ended: {e}"), &mut failures),
                None => break,
            },
            _ = tick.tick() => {
                if let (Ok(d), Ok(seen)) = (direct, &mut peak) {
                    match count(d).await {
                        Ok(now) => *seen = (*seen).max(now),
                        Err(e) => peak = Err(e),
                    }
                }
            }
        }
    }
    Crowd {
        clients: n,
        backend_pids: pids.len(),
        failures,
        failed,
        backends: before.and_then(|b| peak.map(|p| (b, p))),
    }
}

/// The verdict on `crowd`, given the most server connections the URL's
/// pool may open (None: unlimited).
pub fn judge(crowd: &Crowd, cap: Option<u64>, target: &str, situation: &Situation<'_>) -> Check {
    let n = crowd.clients;
    let pids = crowd.backend_pids as u64;
    let cap_text = cap.map_or_else(|| "unlimited".to_string(), |c| c.to_string());
    let mut detail = format!(
        "{n} clients at once were served by {pids} server backend{} (pg_backend_pid), pool cap {cap_text}",
        if pids == 1 { "" } else { "s" }
    );
    let mut growth = None;
    if let Ok((before, peak)) = &crowd.backends {
        detail.push_str(&format!(
            "; the database peaked at {peak} client backend{} on the server, {before} before",
            if *peak == 1 { "" } else { "s" }
        ));
        growth = Some(peak.saturating_sub(*before));
    }
    if crowd.failed > 0 {
        let (i, text) = crowd.failures.first().cloned().unwrap_or_default();
        let d = diagnose(&text, situation);
        return Check::fail(
            "concurrency",
            format!(
                "{detail}; {} of the {n} clients failed (client {i}: \"{text}\"): {}",
                crowd.failed, d.cause
            ),
            d.fix,
        );
    }
    let over = cap.is_some_and(|c| pids > c.max(1) || growth.is_some_and(|g| g > c.max(1)));
    if n >= 2 && pids >= u64::from(n) {
        return Check::fail(
            "concurrency",
            format!(
                "{detail}: every client got a server backend of its own, so a burst of {n} calls opens {n} server connections"
            ),
            format!(
                "point DATABASE_URL at the pooler (`poolwright url {target}`): the pooled URL reaches PostgreSQL directly"
            ),
        );
    }
    if over {
        return Check::fail(
            "concurrency",
            format!("{detail}: more server backends than the pool allows"),
            format!(
                "compare the running settings with poolwright.yaml (the config check above) and run `poolwright apply {target}`"
            ),
        );
    }
    Check::pass("concurrency", detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;
    use crate::verify::diagnose::Via;

    fn situation() -> Situation<'static> {
        Situation {
            via: Via::Pooler,
            place: "db:6432",
            user: "app",
            database: "db",
            target: "prod",
            provider: "pgbouncer",
            code: None,
        }
    }

    fn crowd(pids: usize, backends: Result<(u64, u64), String>, failed: u32) -> Crowd {
        Crowd {
            clients: 24,
            backend_pids: pids,
            failures: if failed > 0 {
                vec![(3, "no more connections allowed (max_client_conn)".into())]
            } else {
                Vec::new()
            },
            failed,
            backends,
        }
    }

    #[test]
    fn within_the_pool_passes_beyond_it_fails() {
        let ok = judge(&crowd(12, Ok((1, 13)), 0), Some(12), "prod", &situation());
        assert_eq!(ok.status, Status::Pass, "{}", ok.detail);
        assert!(
            ok.detail
                .contains("24 clients at once were served by 12 server backends")
        );
        assert!(
            ok.detail
                .contains("peaked at 13 client backends on the server, 1 before")
        );
        let direct = judge(&crowd(24, Ok((0, 24)), 0), Some(12), "prod", &situation());
        assert_eq!(direct.status, Status::Fail);
        assert!(direct.detail.contains("opens 24 server connections"));
        let over = judge(&crowd(12, Ok((0, 30)), 0), Some(12), "prod", &situation());
        assert_eq!(over.status, Status::Fail);
        let failed = judge(&crowd(10, Ok((0, 10)), 2), Some(12), "prod", &situation());
        assert_eq!(failed.status, Status::Fail);
        assert!(
            failed.detail.contains("2 of the 24 clients failed"),
            "{}",
            failed.detail
        );
        assert!(
            failed.detail.contains("max_client_conn"),
            "{}",
            failed.detail
        );
    }

    #[test]
    fn the_default_crowd_is_twice_the_pool_within_bounds() {
        assert_eq!(default_clients(Some(12)), 24);
        assert_eq!(default_clients(Some(1)), 4);
        assert_eq!(default_clients(Some(1000)), 50);
        assert_eq!(default_clients(None), 20);
    }
}
