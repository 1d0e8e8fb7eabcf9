//! The pool budget: can the pools open more server connections than the
//! upstream PostgreSQL accepts?
//!
//! Each (database, user) pair gets its own pool of `pool_size` connections,
//! plus `reserve` more when clients wait. `max_db_connections` caps a
//! database across users, `max_user_connections` a user across databases.
//! Every PgBouncer process has its own pools. The sum must fit in the
//! server's max_connections, less superuser_reserved_connections,
//! reserved_connections and direct_connections, or clients get "remaining
//! connection slots are reserved" under load. direct_connections is the
//! headroom for what does not go through PgBouncer: migrations, cron jobs,
//! psql, monitoring. Console-only users (admin console, no pool) count
//! nothing.

use std::fmt::Write as _;

use super::Target;
use super::setting::Setting;
use crate::yaml::reader::Reader;

/// One pool: a (database, user) pair and the connections it may open. The
/// names are borrowed from the target: a config of 1,000 databases x 1,000
/// users has a million pools, and copying two names into each cost ~100 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool<'a> {
    pub database: &'a str,
    pub user: &'a str,
    /// None: unlimited (pool size 0 from PgBouncer 1.24 on).
    pub size: Option<u64>,
    pub reserve: u64,
}

impl Pool<'_> {
    pub fn total(&self) -> Option<u64> {
        self.size.map(|s| s + self.reserve)
    }
}

/// The upstream's connection slots, as the pools see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub max_connections: u64,
    /// max_connections less the superuser and reserved_connections slots.
    pub usable: u64,
    /// Kept for direct connections (`upstream.direct_connections`).
    pub direct: u64,
    /// True when `direct` is poolwright's default, not the config's.
    pub direct_is_default: bool,
    /// What the pools may take: usable - direct.
    pub for_pools: u64,
}

/// The default headroom for direct connections: 10 % of the usable slots
/// (rounded up), at least 3 (a migration, a cron job and a psql session at
/// once), and never more than half the usable slots so a small server
/// still has room for its pools. On a 100-connection server that is 10;
/// on max_connections 20, 3.
pub fn default_direct_connections(usable: u64) -> u64 {
    usable.div_ceil(10).max(3).min(usable / 2)
}

/// The slots of `upstream`, when its max_connections is known.
pub fn slots(upstream: &super::Upstream) -> Option<Slots> {
    let max = u64::from(upstream.max_connections?);
    let usable = max.saturating_sub(
        u64::from(upstream.superuser_reserved_connections)
            + u64::from(upstream.reserved_connections),
    );
    let (direct, direct_is_default) = match upstream.direct_connections {
        Some(n) => (u64::from(n), false),
        None => (default_direct_connections(usable), true),
    };
    Some(Slots {
        max_connections: max,
        usable,
        direct,
        direct_is_default,
        for_pools: usable.saturating_sub(direct),
    })
}

/// The arithmetic of the budget, for messages and `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget<'a> {
    pub pools: Vec<Pool<'a>>,
    /// What the pools of one process may open after the per-database and
    /// per-user caps (None: unlimited).
    pub per_process: Option<u64>,
    pub processes: u32,
    /// The whole target: per_process x processes.
    pub total: Option<u64>,
    /// What the upstream accepts from the pools, when its max_connections
    /// is known: its slots less the headroom for direct connections.
    pub available: Option<u64>,
    pub slots: Option<Slots>,
}

fn int(settings: &[Setting], name: &str) -> Option<i64> {
    settings
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.value.as_int())
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a? + b?)
}

/// `limit` 0 means "no cap" in PgBouncer.
fn cap(sum: Option<u64>, limit: Option<i64>) -> Option<u64> {
    match limit.filter(|l| *l > 0) {
        Some(l) => Some(sum.map_or(l as u64, |s| s.min(l as u64))),
        None => sum,
    }
}

/// How many PgBouncers with their own pools may run at once: the
/// processes on a host, or in Kubernetes every replica plus the surge of a
/// rolling update.
pub fn instances(target: &Target) -> u32 {
    target
        .kubernetes
        .as_ref()
        .map_or(target.processes, super::kubernetes::Kubernetes::max_pods)
}

/// Works out the budget of `target`.
pub fn compute(target: &Target) -> Budget<'_> {
    // A database that lives on another server does not use this upstream's slots.
    let on_upstream: Vec<&super::Database> = target
        .databases
        .iter()
        .filter(|db| db.host == target.upstream.host && db.port == target.upstream.port)
        .collect();
    let unlimited_zero = target.version >= super::version::Version::new(1, 24);
    let default_pool = target.int_setting("default_pool_size").unwrap_or(20);
    let default_reserve = target.int_setting("reserve_pool_size").unwrap_or(0);
    // One pass: every pool, and the sums per database and per user (indexed
    // like on_upstream and target.users), so large configs stay linear.
    // Console-only users have no pool: they only read the admin console.
    let pooled: Vec<&super::User> = target.server_users().collect();
    let mut pools = Vec::with_capacity(on_upstream.len() * pooled.len());
    let mut per_db: Vec<Option<u64>> = vec![Some(0); on_upstream.len()];
    let mut per_user: Vec<Option<u64>> = vec![Some(0); pooled.len()];
    for (d, db) in on_upstream.iter().enumerate() {
        for (u, user) in pooled.iter().enumerate() {
            let size = int(&user.settings, "pool_size")
                .or_else(|| int(&db.settings, "pool_size"))
                .unwrap_or(default_pool);
            let reserve = int(&user.settings, "reserve_pool_size")
                .or_else(|| int(&db.settings, "reserve_pool"))
                .or_else(|| int(&db.settings, "reserve_pool_size"))
                .unwrap_or(default_reserve);
            let pool = Pool {
                database: &db.name,
                user: &user.name,
                size: if size == 0 && unlimited_zero {
                    None
                } else {
                    Some(size as u64)
                },
                reserve: reserve as u64,
            };
            per_db[d] = add(per_db[d], pool.total());
            per_user[u] = add(per_user[u], pool.total());
            pools.push(pool);
        }
    }
    let global_db_cap = target.int_setting("max_db_connections");
    let global_user_cap = target.int_setting("max_user_connections");
    let by_database: Option<u64> = on_upstream
        .iter()
        .zip(&per_db)
        .map(|(db, sum)| {
            cap(
                *sum,
                int(&db.settings, "max_db_connections").or(global_db_cap),
            )
        })
        .try_fold(0, |a, b| add(Some(a), b));
    let by_user: Option<u64> = pooled
        .iter()
        .zip(&per_user)
        .map(|(user, sum)| {
            cap(
                *sum,
                int(&user.settings, "max_user_connections").or(global_user_cap),
            )
        })
        .try_fold(0, |a, b| add(Some(a), b));
    let per_process = match (by_database, by_user) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let total = per_process.map(|n| n * u64::from(instances(target)));
    let slots = slots(&target.upstream);
    Budget {
        pools,
        per_process,
        processes: instances(target),
        total,
        available: slots.map(|s| s.for_pools),
        slots,
    }
}

impl Budget<'_> {
    pub fn fits(&self) -> bool {
        match (self.total, self.available) {
            (_, None) => true,
            (Some(total), Some(available)) => total <= available,
            (None, Some(_)) => false,
        }
    }

    /// The arithmetic, one line per pool (at most `max_lines`), then the sum.
    pub fn explain(&self, target: &Target, max_lines: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for pool in self.pools.iter().take(max_lines) {
            lines.push(match pool.size {
                Some(size) => format!(
                    "pool {}/{}: pool_size {size} + reserve {} = {}",
                    pool.database,
                    pool.user,
                    pool.reserve,
                    size + pool.reserve
                ),
                None => format!(
                    "pool {}/{}: unlimited (pool size 0 means no limit from PgBouncer 1.24 on)",
                    pool.database, pool.user
                ),
            });
        }
        if self.pools.len() > max_lines {
            lines.push(format!(
                "... and {} more pools",
                self.pools.len() - max_lines
            ));
        }
        for db in &target.databases {
            if db.host != target.upstream.host || db.port != target.upstream.port {
                lines.push(format!(
                    "database {} is on {}:{}, not the upstream: its pools are not counted here",
                    db.name, db.host, db.port
                ));
            }
        }
        let mut sum = String::new();
        let raw: Option<u64> = self
            .pools
            .iter()
            .map(Pool::total)
            .try_fold(0, |a, b| add(Some(a), b));
        match self.per_process {
            Some(n) => {
                let _ = write!(
                    sum,
                    "{} pool{}: {n} connections",
                    self.pools.len(),
                    if self.pools.len() == 1 { "" } else { "s" }
                );
                if raw != Some(n) {
                    let _ = write!(
                        sum,
                        " (after max_db_connections / max_user_connections caps)"
                    );
                }
            }
            None => {
                let _ = write!(
                    sum,
                    "{} pool{}: unlimited",
                    self.pools.len(),
                    if self.pools.len() == 1 { "" } else { "s" }
                );
            }
        }
        match &target.kubernetes {
            Some(k) => {
                let _ = write!(
                    sum,
                    " x {} pods ({} replicas + {} surge)",
                    k.max_pods(),
                    k.replicas,
                    k.max_surge
                );
            }
            None => {
                let _ = write!(
                    sum,
                    " x {} process{}",
                    self.processes,
                    if self.processes == 1 { "" } else { "es" }
                );
            }
        }
        match self.total {
            Some(t) => {
                let _ = write!(sum, " = {t}");
            }
            None => sum.push_str(" = unlimited"),
        }
        if let Some(slots) = self.slots {
            let fits = if self.fits() { "<=" } else { ">" };
            let _ = write!(
                sum,
                " {fits} {} max_connections - {} superuser_reserved_connections",
                slots.max_connections, target.upstream.superuser_reserved_connections
            );
            if target.upstream.reserved_connections > 0 {
                let _ = write!(
                    sum,
                    " - {} reserved_connections",
                    target.upstream.reserved_connections
                );
            }
            if slots.direct > 0 {
                let _ = write!(sum, " - {} direct_connections", slots.direct);
            }
            let _ = write!(sum, " = {}", slots.for_pools);
            lines.push(Self::direct_line(&slots));
        }
        lines.push(sum);
        lines
    }

    /// The headroom for direct connections, as its own line of the
    /// arithmetic (None when max_connections is not known).
    pub fn headroom(&self) -> Option<String> {
        self.slots.as_ref().map(Self::direct_line)
    }

    fn direct_line(slots: &Slots) -> String {
        let why = if slots.direct_is_default {
            format!(
                "poolwright's default, 10% of the {} usable slots and at least 3; set upstream.direct_connections to change it",
                slots.usable
            )
        } else {
            "upstream.direct_connections".to_string()
        };
        format!(
            "direct_connections {}: server slots kept free for migrations, cron jobs, psql and monitoring that connect straight to PostgreSQL ({why})",
            slots.direct
        )
    }
}

/// Records a problem when the pools can outgrow the upstream.
pub fn check(reader: &mut Reader<'_>, target: &Target, field: &str) {
    let budget = compute(target);
    if budget.fits() {
        return;
    }
    let (Some(available), Some(span)) = (budget.available, target.upstream.max_connections_span)
    else {
        return;
    };
    let opened = budget
        .total
        .map_or_else(|| "unlimited".to_string(), |t| t.to_string());
    let d = reader.error(
        span,
        field,
        format!("the pools may open {opened} server connections, more than the {available} the upstream accepts"),
    );
    for line in budget.explain(target, 10) {
        d.notes.push(line);
    }
    let instances = u64::from(budget.processes);
    let pairs = budget.pools.len() as u64;
    let reserve = u64::try_from(target.int_setting("reserve_pool_size").unwrap_or(0)).unwrap_or(0);
    let fitting = (available / (instances * pairs.max(1))).saturating_sub(reserve);
    d.hint = Some(if instances > 1 && fitting > 0 {
        let who = if target.kubernetes.is_some() {
            "pods"
        } else {
            "processes"
        };
        format!(
            "each of the {instances} {who} has its own pools: default_pool_size {fitting} (with reserve_pool_size {reserve}) fits; \
             or cap the pools with max_db_connections, lower upstream.direct_connections, or raise max_connections on the server"
        )
    } else {
        "lower default_pool_size or reserve_pool_size, cap the pools with max_db_connections, lower upstream.direct_connections, or raise max_connections on the server"
            .into()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(users: &str, pgbouncer: &str) -> Result<Target, String> {
        let yaml = format!(
            "version: 1\ntargets:\n  t:\n    provider: pgbouncer\n    upstream: {{ host: db, max_connections: 100 }}\n    databases: {{ a: {{}}, b: {{}} }}\n    users: {{ {users} }}\n    pgbouncer: {{ default_pool_size: 10, {pgbouncer} }}\n"
        );
        let config = crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None)
            .map_err(|e| format!("{e:?}"))?;
        let crate::providers::ProviderTarget::PgBouncer(t) =
            config.targets.into_iter().next().unwrap().provider
        else {
            panic!("a pgbouncer target")
        };
        Ok(t)
    }

    #[test]
    fn a_console_only_user_gets_no_pool() {
        // verify's own advice: a stats user beside the app's.
        let t = parse(
            "app: { password: x }, mon: { password: y }",
            "stats_users: mon",
        )
        .unwrap();
        assert!(t.user("mon").unwrap().console_only);
        assert!(!t.user("app").unwrap().console_only);
        let budget = compute(&t);
        assert!(budget.pools.iter().all(|p| p.user == "app"), "{budget:?}");
        assert_eq!(budget.per_process, Some(20));
        assert_eq!(
            t.server_users()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>(),
            ["app"]
        );
        // The DATABASE_URL user keeps its pool even when it is an admin.
        let t = parse("app: { password: x }", "admin_users: app").unwrap();
        assert!(!t.user("app").unwrap().console_only);
        // Pool settings or `console_only: false` say it wants a pool.
        for users in [
            "app: { password: x }, ops: { password: y, max_user_connections: 2 }",
            "app: { password: x }, ops: { password: y, console_only: false }",
        ] {
            let t = parse(users, "admin_users: ops").unwrap();
            assert!(!t.user("ops").unwrap().console_only, "{users}");
            assert_eq!(compute(&t).pools.len(), 4, "{users}");
        }
    }

    #[test]
    fn contradictions_about_console_only_are_errors() {
        for (users, pgbouncer, said) in [
            (
                "app: { password: x, console_only: true }",
                "admin_users: app",
                "`app` cannot be console-only: DATABASE_URL logs in as it",
            ),
            (
                "app: { password: x }, ops: { password: y, console_only: true }",
                "max_client_conn: 10",
                "`ops` is console-only but in neither admin_users nor stats_users",
            ),
            (
                "app: { password: x }, ops: { password: y, console_only: true, max_user_connections: 2 }",
                "stats_users: ops",
                "`ops` cannot be console-only: it has the pool setting `max_user_connections`",
            ),
            (
                "app: { password: x }, ops: { password: y, console_only: yes-please }",
                "stats_users: ops",
                "targets.t.users.ops.console_only",
            ),
        ] {
            let e = parse(users, pgbouncer).unwrap_err();
            assert!(e.contains(said), "{users}: {e}");
        }
    }

    #[test]
    fn the_headroom_is_its_own_line_and_counts_in_the_sum() {
        let t = parse("app: { password: x }", "max_client_conn: 10").unwrap();
        let lines = compute(&t).explain(&t, 10);
        assert!(
            lines
                .iter()
                .any(|l| l
                    .starts_with("direct_connections 10: server slots kept free for migrations")),
            "{lines:?}"
        );
        assert!(
            lines.last().unwrap().ends_with(
                "= 20 <= 100 max_connections - 3 superuser_reserved_connections - 10 direct_connections = 87"
            ),
            "{lines:?}"
        );
    }
}
