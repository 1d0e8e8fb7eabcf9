//! The pool size poolwright picks when the config gives none.
//!
//! A server does its best work with a few busy connections per core (the
//! PostgreSQL wiki's rule of thumb: cores x 2 plus the disks it can keep
//! busy). But in transaction pooling a server connection stays assigned
//! for the whole transaction, client round trips and WAL flushes included,
//! which that rule does not count: on bench/pooling (BENCHMARKS.md) a pool
//! of 2 x 2 cores + 1 = 5 was 5-28 % slower than PgBouncer's 20 on
//! TPC-B-like transactions. So the pool of each (database, user) pair is
//! PgBouncer's 20, or `2 x cores + 1` when `upstream.cores` makes that
//! larger; either way no larger than what lets every pool of every
//! instance fit in the server's connection slots (`upstream.max_connections`).

use super::Target;
use super::budget::{self, instances};
use super::setting::{Setting, SettingValue};

/// PgBouncer's default_pool_size.
const PGBOUNCER_DEFAULT: u64 = 20;

/// The pool size for `target` and why, as (size, reason).
pub fn recommend(target: &Target) -> (u64, String) {
    let by_cores = target.upstream.cores.map(|c| 2 * u64::from(c) + 1);
    let base = by_cores.map_or(PGBOUNCER_DEFAULT, |n| n.max(PGBOUNCER_DEFAULT));
    let mut reason = match (target.upstream.cores, by_cores) {
        (Some(c), Some(n)) if n > PGBOUNCER_DEFAULT => format!("2 x {c} cores + 1"),
        (Some(c), _) => format!(
            "PgBouncer's default, which 2 x {c} cores + 1 does not exceed (transaction pooling needs more connections than the cores: see BENCHMARKS.md)"
        ),
        (None, _) => {
            "PgBouncer's default (set upstream.cores for a size that fits the server)".into()
        }
    };
    let pairs = budget::compute(target).pools.len().max(1) as u64;
    let reserve = u64::try_from(target.int_setting("reserve_pool_size").unwrap_or(0)).unwrap_or(0);
    let mut size = base;
    // The pools get the server's slots less the headroom for direct
    // connections, so migrations and psql still find a slot.
    if let Some(slots) = budget::slots(&target.upstream) {
        let available = slots.for_pools;
        let fit = (available / (pairs * u64::from(instances(target)))).saturating_sub(reserve);
        if fit < size {
            size = fit.max(1);
            reason = format!(
                "{available} server slots ({} usable - {} direct_connections) / ({pairs} pools x {} instances) - reserve {reserve}",
                slots.usable,
                slots.direct,
                instances(target)
            );
        }
    }
    (size, reason)
}

/// Adds `default_pool_size` to `settings` when the config gives none.
pub fn apply_default(target: &mut Target) {
    if target.setting("default_pool_size").is_some() {
        return;
    }
    let (size, _) = recommend(target);
    target.settings.push(Setting {
        name: "default_pool_size".into(),
        value: SettingValue::Int(i64::try_from(size).unwrap_or(i64::MAX)),
        span: None,
    });
    let facts = target.facts;
    target
        .settings
        .sort_by_key(|s| facts.settings.iter().position(|spec| spec.name == s.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(upstream: &str, extra: &str) -> Target {
        let yaml = format!(
            "version: 1\ntargets:\n  t:\n    provider: pgbouncer\n    upstream: {{ host: db, {upstream} }}\n    databases: {{ a: {{}}, b: {{}} }}\n    users: {{ u: {{ password: x }} }}\n{extra}"
        );
        let config = crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None).unwrap();
        let crate::providers::ProviderTarget::PgBouncer(t) =
            config.targets.into_iter().next().unwrap().provider
        else {
            panic!("a pgbouncer target")
        };
        t
    }

    #[test]
    fn cores_decide_and_the_server_caps() {
        // Small servers keep PgBouncer's 20 (bench/pooling: 5 lost to 20); big ones get 2 x cores + 1.
        assert_eq!(
            target("cores: 2", "").int_setting("default_pool_size"),
            Some(20)
        );
        assert_eq!(
            target("cores: 16", "").int_setting("default_pool_size"),
            Some(33)
        );
        assert_eq!(
            target("port: 5432", "").int_setting("default_pool_size"),
            Some(20)
        );
        // 2 pools x 2 processes must fit in 40 - 3 = 37 slots less 4 for
        // direct connections, with reserve 3: 33 / 4 - 3 = 5.
        let capped = target(
            "max_connections: 40",
            "    processes: 2\n    pgbouncer: { reserve_pool_size: 3 }\n",
        );
        assert_eq!(capped.int_setting("default_pool_size"), Some(5));
        assert!(
            recommend(&capped).1.contains(
                "33 server slots (37 usable - 4 direct_connections) / (2 pools x 2 instances) - reserve 3"
            ),
            "{}",
            recommend(&capped).1
        );
        // What the file says wins.
        let given = target("cores: 16", "    pgbouncer: { default_pool_size: 30 }\n");
        assert_eq!(given.int_setting("default_pool_size"), Some(30));
    }

    #[test]
    fn the_pools_leave_room_for_direct_connections() {
        // max_connections 20: 17 usable slots. Filling them all with the pool
        // (17 of 17) left nothing for a migration or psql.
        let one = |extra: &str| {
            let yaml = format!(
                "version: 1\ntargets:\n  t:\n    provider: pgbouncer\n    upstream: {{ host: db, max_connections: 20{extra} }}\n    databases: {{ a: {{}} }}\n    users: {{ u: {{ password: x }} }}\n"
            );
            let config =
                crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None).unwrap();
            let crate::providers::ProviderTarget::PgBouncer(t) =
                config.targets.into_iter().next().unwrap().provider
            else {
                panic!("a pgbouncer target")
            };
            t
        };
        let t = one("");
        assert_eq!(t.int_setting("default_pool_size"), Some(14));
        let slots = budget::slots(&t.upstream).unwrap();
        assert_eq!((slots.usable, slots.direct, slots.for_pools), (17, 3, 14));
        // Configurable, and 0 gives the whole server to the pools.
        assert_eq!(
            one(", direct_connections: 7").int_setting("default_pool_size"),
            Some(10)
        );
        assert_eq!(
            one(", direct_connections: 0").int_setting("default_pool_size"),
            Some(17)
        );
    }

    #[test]
    fn the_default_headroom_is_a_tenth_at_least_three_at_most_half() {
        use super::budget::default_direct_connections as d;
        assert_eq!(
            [d(2), d(7), d(17), d(37), d(97), d(997)],
            [1, 3, 3, 4, 10, 100]
        );
    }
}
