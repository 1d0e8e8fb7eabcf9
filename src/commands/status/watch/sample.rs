//! What one refresh of `status --watch` reads from a self-hosted PgBouncer
//! target: `SHOW POOLS` and `SHOW STATS` on its admin console, and the
//! server's own count of each database's backends through the direct URL.
//!
//! Both sessions stay open across refreshes: the same PgBouncer process
//! answers every time (with `processes: N` the kernel picks one per
//! connection, and counters of two processes cannot be subtracted), and no
//! refresh pays a login or leaves a line in PgBouncer's log. Every column
//! is read by name: 1.24 added and renamed columns (`cl_active_cancel_req`,
//! `total_server_assignment_count`, ...) and moved the others along.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::figures::{Counters, History, rates};
use crate::config::Target;
use crate::diagnostic::printable;
use crate::providers::pgbouncer;
use crate::verify::connect::{self, Endpoint, Session, Stage, Table};
use crate::verify::{admin, auth_floors};

/// One pool's row of `SHOW POOLS`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    pub database: String,
    pub user: String,
    pub cl_active: u64,
    pub cl_waiting: u64,
    pub sv_active: u64,
    pub sv_idle: u64,
    pub sv_used: u64,
    /// How long the oldest waiting client has waited, in seconds
    /// (`maxwait` plus `maxwait_us`).
    pub maxwait: f64,
}

/// A pool with what this refresh computed for it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    #[serde(flatten)]
    pub pool: Pool,
    /// Transactions and queries per second of the pool's database since the
    /// previous refresh (`SHOW STATS` counts per database, not per user);
    /// None on the first refresh of a session and after a counter reset.
    pub tps: Option<f64>,
    pub qps: Option<f64>,
    pub avg_xact_ms: Option<f64>,
    /// The server's client backends of the pool's database (ours not
    /// counted); None where the direct URL cannot tell.
    pub backends: Option<u64>,
    /// cl_waiting at the last refreshes, oldest first.
    pub waiting_history: Vec<u64>,
}

/// A watched target at one refresh.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub target: String,
    pub provider: String,
    pub watched: bool,
    /// `host:port` of the admin console.
    pub console: String,
    /// What the figures are not (several processes, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why there are no pools this refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why BACKENDS is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends_error: Option<String>,
    pub pools: Vec<PoolView>,
}

/// The pools of `SHOW POOLS`, without the console's own (`pgbouncer`).
pub fn pools(table: &Table) -> Vec<Pool> {
    table
        .rows
        .iter()
        .filter_map(|row| {
            let text = |c: &str| table.get(row, c).map(str::to_string);
            let n = |c: &str| {
                table
                    .get(row, c)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let database = text("database")?;
            if database == "pgbouncer" {
                return None;
            }
            Some(Pool {
                user: text("user").unwrap_or_default(),
                database,
                cl_active: n("cl_active"),
                cl_waiting: n("cl_waiting"),
                sv_active: n("sv_active"),
                sv_idle: n("sv_idle"),
                sv_used: n("sv_used"),
                maxwait: n("maxwait") as f64 + n("maxwait_us") as f64 / 1e6,
            })
        })
        .collect()
}

/// Each database's counters from `SHOW STATS`.
pub fn stats(table: &Table) -> BTreeMap<String, Counters> {
    table
        .rows
        .iter()
        .filter_map(|row| {
            let n = |c: &str| table.get(row, c).and_then(|v| v.trim().parse::<u64>().ok());
            Some((
                table.get(row, "database")?.to_string(),
                Counters {
                    xact_count: n("total_xact_count")?,
                    query_count: n("total_query_count")?,
                    xact_time_us: n("total_xact_time")?,
                },
            ))
        })
        .collect()
}

/// The server's client backends per database, ours left out, so the figure
/// is the pools' (and other clients') and not the watcher's.
pub const BACKENDS_SQL: &str = "select datname, count(*) from pg_stat_activity \
     where backend_type = 'client backend' and pid <> pg_backend_pid() \
     and datname is not null group by datname";

pub fn backends(table: &Table) -> BTreeMap<String, u64> {
    table
        .rows
        .iter()
        .filter_map(|row| {
            let name = row.first()?.clone()?;
            let count = row.get(1)?.as_deref()?.parse().ok()?;
            Some((name, count))
        })
        .collect()
}

/// A session kept across refreshes, opened again when it breaks.
struct Link {
    endpoint: Result<Endpoint, String>,
    session: Option<Session>,
    /// Set when the peer refused the login: it is not offered the credential
    /// again every refresh (each try would be one more failed login in the
    /// server's log, or towards a lock-out).
    refused: Option<String>,
}

impl Link {
    fn new(endpoint: Result<Endpoint, String>) -> Link {
        Link {
            endpoint,
            session: None,
            refused: None,
        }
    }

    /// Logs in unless already in; true when the session is new.
    async fn open(&mut self, timeout: Duration) -> Result<bool, String> {
        if let Some(why) = &self.refused {
            return Err(why.clone());
        }
        if self.session.is_some() {
            return Ok(false);
        }
        let endpoint = self.endpoint.as_ref().map_err(Clone::clone)?;
        match connect::connect(endpoint, timeout).await {
            Ok(s) => {
                self.session = Some(s);
                Ok(true)
            }
            Err(e) if e.stage == Stage::Login => {
                let why = format!(
                    "login as {} refused: {e}; not tried again until restarted",
                    endpoint.user
                );
                self.refused = Some(why.clone());
                Err(why)
            }
            // Down or slow: PgBouncer may be back at the next refresh.
            Err(e) => Err(e.to_string()),
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Table, String> {
        let session = self.session.as_ref().ok_or("not connected")?;
        let result = session.table(sql).await;
        if result.is_err() {
            self.close().await;
        }
        result
    }

    async fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }
}

/// One self-hosted PgBouncer target, watched.
pub struct Watcher<'a> {
    target: &'a Target,
    bouncer: &'a pgbouncer::Target,
    console: Link,
    console_place: String,
    direct: Link,
    /// The direct URL's server, to tell which pools' databases it can count.
    direct_server: (String, u16),
    /// The counters of the previous refresh on the same console session.
    last: Option<(Instant, BTreeMap<String, Counters>)>,
    history: BTreeMap<(String, String), History>,
    timeout: Duration,
}

impl<'a> Watcher<'a> {
    /// The watcher of `target`, or None when it has no console to watch:
    /// a managed pooler, or a PgBouncer whose console user is not one of
    /// its users. The second of the pair says which.
    pub fn new(target: &'a Target, timeout: Duration) -> Result<Watcher<'a>, Option<&'static str>> {
        let bouncer = crate::verify::self_hosted(target).ok_or(None)?;
        let user = admin::console_user(bouncer).ok_or(Some(
            "pools not watched: no admin_users or stats_users entry is one of the target's users",
        ))?;
        let (pooled_floor, direct_floor) = auth_floors(target);
        let mut console = bouncer.pooled_url();
        console.user = Some(user.name.clone());
        console.password = Some(user.password.clone());
        console.database = "pgbouncer".into();
        let console_place = format!("{}:{}", console.host, console.port);
        let direct = bouncer.direct_url();
        let direct_server = (direct.host.clone(), direct.port);
        let endpoint = |url: &crate::url::PgUrl, floor, what: &str| {
            Endpoint::from_url(url)
                .map(|e| e.with_auth_floor(floor))
                .map_err(|d| format!("{what}: {}", d.message))
        };
        Ok(Watcher {
            target,
            bouncer,
            console: Link::new(endpoint(&console, pooled_floor, "console")),
            console_place,
            direct: Link::new(endpoint(&direct, direct_floor, "direct URL")),
            direct_server,
            last: None,
            history: BTreeMap::new(),
            timeout,
        })
    }

    /// One refresh: the pools and their figures, or why there are none.
    pub async fn refresh(&mut self) -> Watched {
        let mut watched = Watched {
            target: self.target.name.clone(),
            provider: self.target.provider.describe(),
            watched: true,
            console: self.console_place.clone(),
            note: (self.bouncer.processes > 1).then(|| {
                format!(
                    "processes: {}: the figures of the one process the kernel gave this console session (kept for every refresh); the others are not shown",
                    self.bouncer.processes
                )
            }),
            error: None,
            backends_error: None,
            pools: Vec::new(),
        };
        let (pools, counters) = match self.read_console().await {
            Ok(read) => read,
            Err(e) => {
                watched.error = Some(printable(&e));
                return watched;
            }
        };
        let backends = match self.read_backends().await {
            Ok(b) => Some(b),
            Err(e) => {
                watched.backends_error = Some(printable(&e));
                None
            }
        };
        let now = Instant::now();
        for pool in pools {
            let r = self.last.as_ref().and_then(|(then, before)| {
                rates(
                    before.get(&pool.database)?,
                    counters.get(&pool.database)?,
                    now - *then,
                )
            });
            let history = self
                .history
                .entry((pool.database.clone(), pool.user.clone()))
                .or_default();
            history.push(pool.cl_waiting);
            let waiting_history = history.values();
            watched.pools.push(PoolView {
                tps: r.map(|r| r.tps),
                qps: r.map(|r| r.qps),
                avg_xact_ms: r.and_then(|r| r.avg_xact_ms),
                backends: backends
                    .as_ref()
                    .and_then(|b| self.backends_of(b, &pool.database)),
                waiting_history,
                pool,
            });
        }
        self.last = Some((now, counters));
        watched
    }

    /// `SHOW POOLS` and `SHOW STATS`. A new session starts the rates over:
    /// it may have reached another process, or a restarted PgBouncer.
    async fn read_console(&mut self) -> Result<(Vec<Pool>, BTreeMap<String, Counters>), String> {
        let fresh = match self.console.open(self.timeout).await {
            Ok(fresh) => fresh,
            Err(e) => {
                self.last = None;
                return Err(e);
            }
        };
        if fresh {
            self.last = None;
        }
        let read = async {
            let pools = self.console.query("SHOW POOLS").await?;
            let stats = self.console.query("SHOW STATS").await?;
            Ok::<_, String>((pools, stats))
        }
        .await;
        match read {
            Ok((p, s)) => Ok((pools(&p), stats(&s))),
            Err(e) => {
                self.last = None;
                Err(e)
            }
        }
    }

    async fn read_backends(&mut self) -> Result<BTreeMap<String, u64>, String> {
        self.direct.open(self.timeout).await?;
        self.direct.query(BACKENDS_SQL).await.map(|t| backends(&t))
    }

    /// The backends of the server database behind PgBouncer database `name`,
    /// when it lives on the server the direct URL reaches.
    fn backends_of(&self, counts: &BTreeMap<String, u64>, name: &str) -> Option<u64> {
        let db = self.bouncer.database(name)?;
        if (db.host.as_str(), db.port) != (self.direct_server.0.as_str(), self.direct_server.1) {
            return None;
        }
        Some(counts.get(&db.dbname).copied().unwrap_or(0))
    }

    /// Ends both sessions politely.
    pub async fn close(&mut self) {
        self.console.close().await;
        self.direct.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| Some(c.to_string())).collect())
                .collect(),
        }
    }

    #[test]
    fn pools_are_read_by_column_name_on_1_18_and_1_24() {
        let v118 = table(
            &[
                "database",
                "user",
                "cl_active",
                "cl_waiting",
                "cl_cancel_req",
                "sv_active",
                "sv_idle",
                "sv_used",
                "sv_tested",
                "sv_login",
                "maxwait",
                "maxwait_us",
                "pool_mode",
            ],
            &[
                &[
                    "pgbouncer",
                    "pgbouncer",
                    "1",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "statement",
                ],
                &[
                    "app_db",
                    "app",
                    "2",
                    "8",
                    "0",
                    "2",
                    "0",
                    "1",
                    "0",
                    "0",
                    "1",
                    "250000",
                    "transaction",
                ],
            ],
        );
        let v124 = table(
            &[
                "database",
                "user",
                "cl_active",
                "cl_waiting",
                "cl_active_cancel_req",
                "cl_waiting_cancel_req",
                "sv_active",
                "sv_active_cancel",
                "sv_being_canceled",
                "sv_idle",
                "sv_used",
                "sv_tested",
                "sv_login",
                "maxwait",
                "maxwait_us",
                "pool_mode",
                "load_balance_hosts",
            ],
            &[&[
                "app_db",
                "app",
                "2",
                "8",
                "0",
                "0",
                "2",
                "0",
                "0",
                "0",
                "1",
                "0",
                "0",
                "1",
                "250000",
                "transaction",
                "",
            ]],
        );
        let want = vec![Pool {
            database: "app_db".into(),
            user: "app".into(),
            cl_active: 2,
            cl_waiting: 8,
            sv_active: 2,
            sv_idle: 0,
            sv_used: 1,
            maxwait: 1.25,
        }];
        assert_eq!(pools(&v118), want);
        assert_eq!(pools(&v124), want);
    }

    #[test]
    fn stats_are_read_by_column_name_on_1_18_and_1_24() {
        let v118 = table(
            &[
                "database",
                "total_xact_count",
                "total_query_count",
                "total_received",
                "total_sent",
                "total_xact_time",
                "total_query_time",
            ],
            &[&["app_db", "10", "30", "1", "2", "5000", "4000"]],
        );
        let v124 = table(
            &[
                "database",
                "total_server_assignment_count",
                "total_xact_count",
                "total_query_count",
                "total_received",
                "total_sent",
                "total_xact_time",
                "total_query_time",
            ],
            &[&["app_db", "99", "10", "30", "1", "2", "5000", "4000"]],
        );
        let want = Counters {
            xact_count: 10,
            query_count: 30,
            xact_time_us: 5000,
        };
        for t in [v118, v124] {
            assert_eq!(stats(&t).get("app_db"), Some(&want));
        }
        // A row without the counters is left out, never read as zeros.
        let odd = table(&["database", "total_xact_count"], &[&["x", "1"]]);
        assert!(stats(&odd).is_empty());
    }

    fn config(pgbouncer: &str, port: u16) -> crate::config::Config {
        let yaml = format!(
            "version: 1\ntargets:\n  prod:\n    provider: pgbouncer\n    processes: 2\n    upstream: {{ host: 127.0.0.1, port: {port} }}\n    public_host: 127.0.0.1\n    databases: {{ d: {{}} }}\n    users: {{ app: {{ password: \"${{P}}\" }}, mon: {{ password: \"${{P}}\" }} }}\n    pgbouncer: {{ listen_port: {port}, {pgbouncer} }}\n"
        );
        let env = |k: &str| (k == "P").then(|| "x".to_string());
        crate::config::parse(std::path::Path::new("poolwright.yaml"), yaml, &env)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_pgbouncer_without_a_console_user_is_not_watched_and_says_why() {
        let config = config("pool_mode: session", 1);
        let Err(note) = Watcher::new(&config.targets[0], Duration::from_secs(1)) else {
            panic!("watched without a console user");
        };
        assert!(note.unwrap().contains("no admin_users or stats_users"));
    }

    #[test]
    fn a_console_that_is_down_is_an_error_of_the_refresh_and_processes_are_named() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let config = config("stats_users: [mon]", port);
        let Ok(mut watcher) = Watcher::new(&config.targets[0], Duration::from_secs(1)) else {
            panic!("not watched");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for _ in 0..2 {
            let w = runtime.block_on(watcher.refresh());
            assert!(w.pools.is_empty());
            assert!(w.error.as_deref().unwrap().contains("refused"), "{w:?}");
            // Down is not refused: the next refresh tries again.
            assert!(
                !w.error.as_deref().unwrap().contains("not tried again"),
                "{w:?}"
            );
            assert!(
                w.note.as_deref().unwrap().starts_with("processes: 2: "),
                "{w:?}"
            );
        }
        runtime.block_on(watcher.close());
    }

    #[test]
    fn backends_are_counted_per_database() {
        let t = table(&["datname", "count"], &[&["app_db", "3"], &["other", "1"]]);
        let b = backends(&t);
        assert_eq!(b.get("app_db"), Some(&3));
        assert_eq!(b.get("other"), Some(&1));
    }
}
