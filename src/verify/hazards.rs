//! What breaks for a driver behind this pooler: named prepared statements
//! and session state, which live on one server connection while a
//! transaction pooler hands the next transaction to any other.
//!
//! [`crate::drivers`] says which URL flags a driver gets; this module adds
//! what verify must know besides: whether the driver prepares named
//! statements *by default*, and the setting that stops it. A driver whose
//! flag goes into the URL poolwright emits is safe by construction; one
//! whose flag lives in the app's code cannot be seen from here, so the
//! hazard stands (the check fails and names the setting).

use super::Check;
use crate::drivers::{Driver, PoolerTraits};

/// Drivers that prepare named statements by default: the URL parameter
/// that turns it off, when it is one, and the setting to name. The others
/// (libpq, psycopg2, SQLAlchemy on psycopg2, node-postgres without `name:`,
/// Django) use unnamed statements only.
const PREPARES: &[(&str, Option<&str>, &str)] = &[
    ("psycopg", None, "prepare_threshold=None"),
    (
        "sqlalchemy-psycopg",
        None,
        "prepare_threshold=None in connect_args",
    ),
    ("asyncpg", None, "statement_cache_size=0"),
    (
        "sqlalchemy-asyncpg",
        None,
        "statement_cache_size=0 and a unique prepared_statement_name_func in connect_args",
    ),
    ("prisma", Some("pgbouncer"), "pgbouncer=true in the URL"),
    ("postgres-js", None, "prepare: false"),
    (
        "jdbc",
        Some("prepareThreshold"),
        "prepareThreshold=0 in the URL",
    ),
    (
        "pgx",
        Some("default_query_exec_mode"),
        "default_query_exec_mode=exec in the URL",
    ),
    ("rails", None, "prepared_statements: false in database.yml"),
];

/// Session state a driver itself relies on, beyond what the app does.
const SESSION_STATE: &[(&str, &str)] = &[
    (
        "rails",
        "Rails migrations take session advisory locks (advisory_locks: false, and run migrations with the direct URL)",
    ),
    (
        "prisma",
        "Prisma Migrate takes session advisory locks (DIRECT_URL for migrations)",
    ),
    (
        "django",
        "Django's .iterator() opens server-side cursors (DISABLE_SERVER_SIDE_CURSORS: True)",
    ),
];

fn session_note(name: &str) -> Option<&'static str> {
    SESSION_STATE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// The hazard checks for `driver` (None: the user named none) behind a
/// pooler with `traits`.
pub fn checks(driver: Option<&Driver>, traits: &PoolerTraits, target: &str) -> Vec<Check> {
    vec![
        prepared_statements(driver, traits, target),
        session_state(driver, traits, target),
    ]
}

fn prepared_statements(driver: Option<&Driver>, traits: &PoolerTraits, target: &str) -> Check {
    const CHECK: &str = "prepared statements";
    let pooler = &traits.name;
    let Some(driver) = driver else {
        return if traits.prepared_statements {
            Check::pass(
                CHECK,
                format!(
                    "{pooler}: named prepared statements work (session mode, or tracked by max_prepared_statements)"
                ),
            )
        } else {
            Check::warn(
                CHECK,
                format!(
                    "{pooler} does not keep named prepared statements across transactions; drivers that prepare by default (psycopg 3, asyncpg, Prisma, pgJDBC, pgx, Rails, postgres.js) need a setting"
                ),
                Some(format!(
                    "`poolwright verify {target} --driver D` checks your driver; `poolwright url {target} --driver D` prints its settings"
                )),
            )
        };
    };
    let name = driver.name;
    let Some((_, url_flag, setting)) = PREPARES.iter().find(|(n, _, _)| *n == name) else {
        return Check::pass(
            CHECK,
            format!("{name} does not prepare named statements by default"),
        );
    };
    if traits.prepared_statements {
        return Check::pass(
            CHECK,
            format!("{name} prepares named statements and {pooler} keeps them: no setting needed"),
        );
    }
    let params = driver.params_for(traits);
    let turns_off = url_flag.is_some_and(|flag| params.iter().any(|(k, _)| *k == flag));
    if turns_off {
        return Check::pass(
            CHECK,
            format!(
                "{name} would prepare named statements, and the URL poolwright emits for it carries {}",
                params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            ),
        );
    }
    Check::fail(
        CHECK,
        format!(
            "{name} prepares named statements by default and {pooler} does not keep them: \"prepared statement ... already exists\" / \"does not exist\" under load; the setting that stops it ({setting}) is in the app's code, which verify cannot see"
        ),
        format!(
            "set {setting} (`poolwright url {target} --driver {name}` prints the snippet), or move to PgBouncer 1.21+ (`version: \"1.21\"` or later), where poolwright turns on max_prepared_statements"
        ),
    )
}

fn session_state(driver: Option<&Driver>, traits: &PoolerTraits, target: &str) -> Check {
    const CHECK: &str = "session state";
    let pooler = &traits.name;
    if !traits.transaction_pooling {
        return Check::pass(
            CHECK,
            format!(
                "{pooler}: each client keeps its server connection, so SET, advisory locks and LISTEN work"
            ),
        );
    }
    let mut detail = format!(
        "{pooler} does not keep session state between transactions: session SET, pg_advisory_lock, LISTEN, temporary tables and WITH HOLD cursors end up on another client's connection"
    );
    if let Some(extra) = driver.and_then(|d| session_note(d.name)) {
        detail.push_str(&format!("; {extra}"));
    }
    Check::warn(
        CHECK,
        detail,
        Some(format!(
            "inside transactions use SET LOCAL and pg_advisory_xact_lock; run LISTEN, migrations and session work through the direct URL (`poolwright url {target} --direct`)"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::find;
    use crate::verify::Status;

    fn pooler(version: &str, transaction: bool, tracks: bool) -> PoolerTraits {
        PoolerTraits {
            name: format!(
                "PgBouncer {version} in {} mode",
                if transaction {
                    "transaction"
                } else {
                    "session"
                }
            ),
            transaction_pooling: transaction,
            prepared_statements: !transaction || tracks,
        }
    }

    fn status(driver: &str, traits: &PoolerTraits) -> (Status, String) {
        let c = prepared_statements(find(driver), traits, "prod");
        (
            c.status,
            format!("{} / {}", c.detail, c.fix.unwrap_or_default()),
        )
    }

    #[test]
    fn every_driver_in_the_table_exists() {
        let names = PREPARES.iter().map(|(n, _, _)| n);
        for name in names.chain(SESSION_STATE.iter().map(|(n, _)| n)) {
            assert!(find(name).is_some(), "{name} is not a driver");
        }
    }

    #[test]
    fn prepared_statements_fail_only_where_nothing_stops_them() {
        let old = pooler("1.18", true, false);
        let new = pooler("1.24", true, true);
        // Code-side settings cannot be seen: the hazard stands on 1.18.
        let (s, text) = status("asyncpg", &old);
        assert_eq!(s, Status::Fail, "{text}");
        assert!(text.contains("statement_cache_size=0"), "{text}");
        assert!(text.contains("--driver asyncpg"), "{text}");
        // URL flags travel with DATABASE_URL.
        for d in ["prisma", "jdbc", "pgx"] {
            let (s, text) = status(d, &old);
            assert_eq!(s, Status::Pass, "{d}: {text}");
            assert!(text.contains("the URL poolwright emits"), "{d}: {text}");
        }
        // Drivers that never prepare, and poolers that track.
        assert_eq!(status("psycopg2", &old).0, Status::Pass);
        assert_eq!(status("node-postgres", &old).0, Status::Pass);
        assert_eq!(status("asyncpg", &new).0, Status::Pass);
        assert_eq!(
            status("rails", &pooler("1.18", false, false)).0,
            Status::Pass
        );
        // Without --driver: a warning, never a failure.
        let c = prepared_statements(None, &old, "prod");
        assert_eq!(c.status, Status::Warn);
    }

    #[test]
    fn session_state_warns_in_transaction_mode_only() {
        let c = session_state(find("rails"), &pooler("1.24", true, true), "prod");
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("advisory locks"), "{}", c.detail);
        assert!(c.detail.contains("Rails migrations"), "{}", c.detail);
        let fix = c.fix.unwrap_or_default();
        assert!(fix.contains("`poolwright url prod --direct`"), "{fix}");
        let s = session_state(find("rails"), &pooler("1.24", false, true), "prod");
        assert_eq!(s.status, Status::Pass);
    }
}
