//! The pool budget: can the pools open more server connections than the
//! upstream PostgreSQL accepts?
//!
//! Each (database, user) pair gets its own pool of `pool_size` connections,
//! plus `reserve` more when clients wait. `max_db_connections` caps a
//! database across users, `max_user_connections` a user across databases.
//! Every PgBouncer process has its own pools. The sum must fit in
//! `max_connections - superuser_reserved_connections - reserved_connections`,
//! or clients get "remaining connection slots are reserved" under load.

use std::fmt::Write as _;

use super::Target;
use super::setting::Setting;
use crate::config::reader::Reader;

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
    /// What the upstream accepts, when its max_connections is known.
    pub available: Option<u64>,
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
    let mut pools = Vec::with_capacity(on_upstream.len() * target.users.len());
    let mut per_db: Vec<Option<u64>> = vec![Some(0); on_upstream.len()];
    let mut per_user: Vec<Option<u64>> = vec![Some(0); target.users.len()];
    for (d, db) in on_upstream.iter().enumerate() {
        for (u, user) in target.users.iter().enumerate() {
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
    let by_user: Option<u64> = target
        .users
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
    let available = target.upstream.max_connections.map(|max| {
        u64::from(max).saturating_sub(
            u64::from(target.upstream.superuser_reserved_connections)
                + u64::from(target.upstream.reserved_connections),
        )
    });
    Budget {
        pools,
        per_process,
        processes: instances(target),
        total,
        available,
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
        if let (Some(max), Some(available)) = (target.upstream.max_connections, self.available) {
            let fits = if self.fits() { "<=" } else { ">" };
            let _ = write!(
                sum,
                " {fits} {max} max_connections - {} superuser_reserved_connections",
                target.upstream.superuser_reserved_connections
            );
            if target.upstream.reserved_connections > 0 {
                let _ = write!(
                    sum,
                    " - {} reserved_connections",
                    target.upstream.reserved_connections
                );
            }
            let _ = write!(sum, " = {available}");
        }
        lines.push(sum);
        lines
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
             or cap the pools with max_db_connections, or raise max_connections on the server"
        )
    } else {
        "lower default_pool_size or reserve_pool_size, cap the pools with max_db_connections, or raise max_connections on the server"
            .into()
    });
}
