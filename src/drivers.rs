//! What each database driver needs to work through a pooler, as data.
//!
//! Behind a pooler that hands each *transaction* to whichever server
//! connection is free, anything a driver keeps on a server connection
//! between transactions breaks: named prepared statements above all
//! (`prepared statement "s0" already exists`), unless the pooler tracks them
//! (PgBouncer 1.21+ with `max_prepared_statements > 0`). So what a driver
//! needs depends on two facts about the pooler, [`PoolerTraits`], and the
//! table below says, per driver, which URL parameters and which settings
//! follow from them. Settings that are not libpq URL parameters never go
//! into the URL (asyncpg, for one, forwards unknown URL parameters to the
//! server as startup parameters, which PgBouncer rejects); they are
//! rendered from `templates/drivers/<driver>.tera` as a snippet instead.

use serde::Serialize;

use crate::url::PgUrl;

/// What a driver must know about the pooler it connects through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolerTraits {
    /// For messages: "PgBouncer 1.18, transaction mode".
    pub name: String,
    /// Transactions (or statements) of one client may run on different
    /// server connections.
    pub transaction_pooling: bool,
    /// The pooler keeps protocol-level prepared statements working across
    /// server connections.
    pub prepared_statements: bool,
}

impl PoolerTraits {
    /// A direct connection to PostgreSQL: nothing is shared.
    pub fn direct() -> PoolerTraits {
        PoolerTraits {
            name: "PostgreSQL, direct".into(),
            transaction_pooling: false,
            prepared_statements: true,
        }
    }

    fn holds(&self, when: When) -> bool {
        match when {
            When::Always => true,
            When::TransactionPooling => self.transaction_pooling,
            When::NoPreparedStatements => self.transaction_pooling && !self.prepared_statements,
        }
    }
}

/// When a driver rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The pooler pools per transaction (or statement).
    TransactionPooling,
    /// ...and does not track prepared statements.
    NoPreparedStatements,
}

/// How the URL is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `scheme://user:password@host:port/db?params` (libpq and most drivers).
    Uri,
    /// `jdbc:postgresql://host:port/db?user=..&password=..` (pgJDBC takes no user info).
    Jdbc,
}

/// One driver's needs.
#[derive(Debug)]
pub struct Driver {
    /// The value of `--driver`.
    pub name: &'static str,
    pub summary: &'static str,
    pub scheme: &'static str,
    pub style: Style,
    /// The URL parameter that asks for TLS (`sslmode` in libpq's dialect).
    pub tls_param: &'static str,
    /// The driver hands the URL to libpq, so libpq-only parameters
    /// (`channel_binding`) are understood.
    pub libpq: bool,
    /// URL parameters the driver reads itself, and when to add them.
    pub params: &'static [(When, &'static str, &'static str)],
    /// The variable a separate, unpooled URL goes in (migrations), if the
    /// driver's tooling reads one.
    pub direct_url_key: Option<&'static str>,
}

/// The driver used when none is named: libpq's URL, which every libpq-based
/// client and most others read.
pub fn default_driver() -> &'static Driver {
    &DRIVERS[0]
}

/// Every driver poolwright knows. `libpq` is the default.
pub const DRIVERS: &[Driver] = &[
    Driver::uri(
        "libpq",
        "libpq and everything built on it: psql, pg_dump, ...",
        "postgresql",
        true,
    ),
    Driver::uri(
        "psycopg2",
        "Python psycopg2 (never prepares statements by itself)",
        "postgresql",
        true,
    ),
    Driver::uri("psycopg", "Python psycopg 3", "postgresql", true),
    // Named explicitly: SQLAlchemy 2.1 made psycopg 3 the default for
    // plain `postgresql://`, and psycopg 3 prepares statements.
    Driver::uri(
        "sqlalchemy",
        "SQLAlchemy with psycopg2",
        "postgresql+psycopg2",
        true,
    ),
    Driver::uri(
        "sqlalchemy-psycopg",
        "SQLAlchemy with psycopg 3",
        "postgresql+psycopg",
        true,
    ),
    Driver::uri("asyncpg", "Python asyncpg", "postgresql", false),
    Driver {
        name: "sqlalchemy-asyncpg",
        summary: "SQLAlchemy (async) with asyncpg",
        scheme: "postgresql+asyncpg",
        style: Style::Uri,
        // SQLAlchemy's asyncpg dialect reads `ssl`, not `sslmode`.
        tls_param: "ssl",
        libpq: false,
        params: &[],
        direct_url_key: None,
    },
    Driver {
        name: "prisma",
        summary: "Prisma ORM (DATABASE_URL for queries, DIRECT_URL for migrations)",
        scheme: "postgresql",
        style: Style::Uri,
        tls_param: "sslmode",
        libpq: false,
        params: &[
            // Prisma's own switch for poolers without prepared statements;
            // harmful where the pooler tracks them (PGBOUNCER_n "does not exist").
            (When::NoPreparedStatements, "pgbouncer", "true"),
            // Each serverless instance holds one connection; the pooler multiplexes.
            (When::TransactionPooling, "connection_limit", "1"),
        ],
        direct_url_key: Some("DIRECT_URL"),
    },
    Driver::uri(
        "node-postgres",
        "Node.js pg (node-postgres)",
        "postgresql",
        false,
    ),
    Driver::uri(
        "postgres-js",
        "Node.js postgres (postgres.js)",
        "postgresql",
        false,
    ),
    Driver {
        name: "jdbc",
        summary: "Java pgJDBC",
        scheme: "jdbc:postgresql",
        style: Style::Jdbc,
        tls_param: "sslmode",
        libpq: false,
        // 0 turns server-side prepared statements off.
        params: &[(When::NoPreparedStatements, "prepareThreshold", "0")],
        direct_url_key: None,
    },
    Driver {
        name: "pgx",
        summary: "Go pgx v5",
        scheme: "postgresql",
        style: Style::Uri,
        tls_param: "sslmode",
        libpq: false,
        // `exec` uses the unnamed statement: nothing is left on the server.
        params: &[(
            When::NoPreparedStatements,
            "default_query_exec_mode",
            "exec",
        )],
        direct_url_key: None,
    },
    Driver::uri("rails", "Ruby on Rails (ActiveRecord)", "postgresql", true),
    Driver::uri("django", "Django", "postgresql", true),
];

/// The driver called `name`.
pub fn find(name: &str) -> Option<&'static Driver> {
    DRIVERS.iter().find(|d| d.name == name)
}

/// The names of all drivers, for help texts and errors.
pub fn names() -> Vec<&'static str> {
    DRIVERS.iter().map(|d| d.name).collect()
}

impl Driver {
    /// A driver that reads a plain URI with `sslmode` and needs no URL
    /// parameters of its own (its settings, if any, are a snippet).
    const fn uri(
        name: &'static str,
        summary: &'static str,
        scheme: &'static str,
        libpq: bool,
    ) -> Driver {
        Driver {
            name,
            summary,
            scheme,
            style: Style::Uri,
            tls_param: "sslmode",
            libpq,
            params: &[],
            direct_url_key: None,
        }
    }

    /// The URL parameters this driver needs behind `pooler`.
    pub fn params_for(&self, pooler: &PoolerTraits) -> Vec<(&'static str, &'static str)> {
        self.params
            .iter()
            .filter(|(when, _, _)| pooler.holds(*when))
            .map(|(_, k, v)| (*k, *v))
            .collect()
    }

    /// `base` (a libpq URL) as this driver wants it behind `pooler`.
    pub fn url(&self, base: &PgUrl, pooler: &PoolerTraits) -> PgUrl {
        let mut url = base.clone();
        url.scheme = self.scheme.to_string();
        url.jdbc = self.style == Style::Jdbc;
        for (key, _) in &mut url.params {
            if key == "sslmode" {
                *key = self.tls_param.to_string();
            }
        }
        if !self.libpq {
            url.libpq_only.clear();
        }
        for (k, v) in self.params_for(pooler) {
            url = url.with_param(k, v);
        }
        url
    }

    /// The template of this driver's settings snippet.
    pub fn template(&self) -> String {
        format!("drivers/{}.tera", self.name)
    }
}

/// What a driver's settings snippet is rendered from.
#[derive(Debug, Serialize)]
pub struct SnippetContext<'a> {
    pub driver: &'a str,
    pub pooler: &'a PoolerTraits,
    /// Transactions share server connections and prepared statements do not survive it.
    pub no_prepared_statements: bool,
    pub transaction_pooling: bool,
    /// The environment variable the app reads the URL from.
    pub url_key: &'a str,
    pub direct_url_key: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooler(transaction_pooling: bool, prepared_statements: bool) -> PoolerTraits {
        PoolerTraits {
            name: "test".into(),
            transaction_pooling,
            prepared_statements,
        }
    }

    #[test]
    fn names_are_unique_and_templates_exist() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DRIVERS.len());
        for d in DRIVERS {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("templates")
                .join(d.template());
            assert!(
                path.is_file(),
                "{} has no template {}",
                d.name,
                path.display()
            );
        }
    }

    #[test]
    fn prisma_gets_pgbouncer_true_only_without_prepared_statements() {
        let prisma = find("prisma").unwrap();
        assert_eq!(
            prisma.params_for(&pooler(true, false)),
            vec![("pgbouncer", "true"), ("connection_limit", "1")]
        );
        assert_eq!(
            prisma.params_for(&pooler(true, true)),
            vec![("connection_limit", "1")]
        );
        assert!(prisma.params_for(&pooler(false, true)).is_empty());
        assert!(prisma.params_for(&PoolerTraits::direct()).is_empty());
    }

    #[test]
    fn jdbc_and_pgx_turn_off_named_statements_only_when_needed() {
        assert_eq!(
            find("jdbc").unwrap().params_for(&pooler(true, false)),
            vec![("prepareThreshold", "0")]
        );
        assert!(
            find("jdbc")
                .unwrap()
                .params_for(&pooler(true, true))
                .is_empty()
        );
        assert_eq!(
            find("pgx").unwrap().params_for(&pooler(true, false)),
            vec![("default_query_exec_mode", "exec")]
        );
    }
}
