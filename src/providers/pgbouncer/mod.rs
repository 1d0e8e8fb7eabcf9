//! `provider: pgbouncer`: a self-hosted PgBouncer.
//!
//! This module holds the target's model ([`Target`], its databases, users,
//! upstream and systemd settings); [`decode`] reads it from poolwright.yaml;
//! the other submodules check the pool budget, render pgbouncer.ini,
//! userlist.txt and the systemd unit, and apply them to a host.

pub mod apply;
pub mod budget;
pub mod changes;
pub mod credentials;
pub mod decode;
pub mod host_path;
pub mod ini_context;
pub mod ini_reader;
pub mod kubernetes;
pub mod kubernetes_manifests;
pub mod names;
pub mod processes;
pub mod reload_signal;
pub mod render;
pub mod rendered_file;
pub mod setting;
pub mod sizing;
pub mod systemd_escape;
pub mod version;

pub use self::decode::decode;
use self::setting::{Setting, SettingValue};
use self::version::Version;
use crate::diagnostic::Span;
use crate::drivers::PoolerTraits;
use crate::providers::manifest::PgBouncerFacts;
use crate::secret::Secret;
use crate::url::PgUrl;

/// The first PgBouncer that tracks prepared statements in transaction mode.
pub const PREPARED_STATEMENTS_SINCE: Version = Version::new(1, 21);

/// How userlist.txt stores passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserlistFormat {
    /// SCRAM verifiers, installed on the server too by `apply` (default).
    Scram,
    /// md5 hashes (`md5` + md5(password + user)); the server must use md5.
    Md5,
    /// The passwords themselves (0600), for servers where `apply` may not
    /// set the verifier; logins cost PgBouncer a PBKDF2 run each.
    Plain,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub max_connections: Option<u32>,
    pub max_connections_span: Option<Span>,
    /// The server's CPU cores, for the default pool size.
    pub cores: Option<u32>,
    pub superuser_reserved_connections: u32,
    pub reserved_connections: u32,
    /// `upstream.direct_connections`: server slots kept out of the pool
    /// budget for clients that bypass PgBouncer (None: the default of
    /// [`budget::default_direct_connections`]).
    pub direct_connections: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub dbname: String,
    pub host: String,
    pub port: u16,
    /// Keys other than host, port and dbname, in manifest order.
    pub settings: Vec<Setting>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: Secret,
    /// Where the password is given (span, field), for problems found once
    /// the userlist format is known.
    pub password_at: (Span, String),
    /// `[users]` keys, in manifest order.
    pub settings: Vec<Setting>,
    /// Listed only for the admin console (`admin_users`, `stats_users`):
    /// it goes into userlist.txt, but gets no pool in the budget and never
    /// logs in to PostgreSQL, so nothing (apply, verify) may try that.
    pub console_only: bool,
}

impl User {
    /// True when the user needs a role on PostgreSQL: it has pools, and
    /// apply installs (and verify checks) its server login.
    pub fn logs_in_to_server(&self) -> bool {
        !self.console_only
    }
}

#[derive(Debug, Clone)]
pub struct Systemd {
    pub user: String,
    pub group: String,
    pub binary: String,
    pub limit_nofile: Option<u64>,
    pub unit_dir: String,
}

/// A validated self-hosted PgBouncer target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub facts: &'static PgBouncerFacts,
    pub version: Version,
    pub upstream: Upstream,
    /// The host apps put in DATABASE_URL.
    pub public_host: String,
    pub databases: Vec<Database>,
    pub users: Vec<User>,
    pub url_user: String,
    pub url_database: String,
    pub processes: u32,
    /// Where pgbouncer.ini lives on the host.
    pub config_dir: String,
    /// Where userlist.txt lives on the host (`auth_file`).
    pub auth_file: String,
    pub userlist: UserlistFormat,
    /// Where `userlist:` was written, for messages about it.
    pub userlist_span: Span,
    pub systemd: Systemd,
    /// Also (or instead) run in Kubernetes.
    pub kubernetes: Option<kubernetes::Kubernetes>,
    /// The effective `[pgbouncer]` section: the user's keys plus defaults.
    pub settings: Vec<Setting>,
}

impl Target {
    /// Whether this version reads single-quoted `[databases]`/`[users]`
    /// keys (PgBouncer 1.25+), so names outside the plain key characters
    /// may be written, and are read back, quoted.
    pub fn quoted_keys(&self) -> bool {
        self.version >= self.facts.quoted_keys_since
    }

    pub fn setting(&self, name: &str) -> Option<&SettingValue> {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.value)
    }

    pub fn int_setting(&self, name: &str) -> Option<i64> {
        self.setting(name).and_then(SettingValue::as_int)
    }

    pub fn text_setting(&self, name: &str) -> Option<&str> {
        self.setting(name).and_then(SettingValue::as_text)
    }

    pub fn listen_port(&self) -> u16 {
        self.int_setting("listen_port")
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(6432)
    }

    /// The users with pools, that log in to PostgreSQL: every user but the
    /// console-only ones. Whatever touches the server per user iterates these.
    pub fn server_users(&self) -> impl Iterator<Item = &User> {
        self.users.iter().filter(|u| u.logs_in_to_server())
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.name == name)
    }

    fn tls_required(mode: Option<&str>) -> bool {
        matches!(mode, Some("require" | "verify-ca" | "verify-full"))
    }

    /// The pool mode the URL's user and database get: a `[users]` setting
    /// wins over a `[databases]` one, which wins over `[pgbouncer]`.
    pub fn url_pool_mode(&self) -> &str {
        let of = |settings: &[Setting]| {
            settings
                .iter()
                .find(|s| s.name == "pool_mode")
                .and_then(|s| s.value.as_text())
                .map(str::to_string)
        };
        let user = self.user(&self.url_user).and_then(|u| of(&u.settings));
        let database = self
            .database(&self.url_database)
            .and_then(|d| of(&d.settings));
        match user.or(database) {
            Some(mode) if mode == "session" => "session",
            Some(mode) if mode == "statement" => "statement",
            Some(_) => "transaction",
            None => self.text_setting("pool_mode").unwrap_or("session"),
        }
    }

    /// What drivers need to know about this PgBouncer.
    pub fn pooler_traits(&self) -> PoolerTraits {
        let mode = self.url_pool_mode();
        let tracks = self.version >= PREPARED_STATEMENTS_SINCE
            && self.int_setting("max_prepared_statements").unwrap_or(0) > 0;
        PoolerTraits {
            name: format!("PgBouncer {} in {mode} mode", self.version),
            transaction_pooling: mode != "session",
            prepared_statements: mode == "session" || tracks,
        }
    }

    /// The pooled URL apps use: through PgBouncer.
    pub fn pooled_url(&self) -> PgUrl {
        let user = self.user(&self.url_user);
        let mut url = PgUrl::new(&self.public_host, self.listen_port(), &self.url_database)
            .with_user(&self.url_user, user.map(|u| u.password.clone()));
        if Self::tls_required(self.text_setting("client_tls_sslmode")) {
            url = url.with_param("sslmode", "require");
        }
        url
    }

    /// The direct URL to the upstream server, for migrations.
    pub fn direct_url(&self) -> PgUrl {
        let user = self.user(&self.url_user);
        let (host, port, dbname) = match self.database(&self.url_database) {
            Some(d) => (d.host.as_str(), d.port, d.dbname.as_str()),
            None => (
                self.upstream.host.as_str(),
                self.upstream.port,
                self.url_database.as_str(),
            ),
        };
        let mut url = PgUrl::new(host, port, dbname)
            .with_user(&self.url_user, user.map(|u| u.password.clone()));
        if Self::tls_required(self.text_setting("server_tls_sslmode")) {
            url = url.with_param("sslmode", "require");
        }
        url
    }

    /// The files this target renders, as (file name, path on the host, mode).
    /// The files this target renders: (file name, path on the host, mode).
    /// One process: pgbouncer.ini and pgbouncer.service; several: a shared
    /// pgbouncer-common.ini, pgbouncer-K.ini each, and pgbouncer@.service.
    pub fn host_files(&self) -> Vec<(String, String, u32)> {
        let dir = &self.config_dir;
        let mut files = Vec::new();
        if self.processes < 2 {
            files.push((
                "pgbouncer.ini".to_string(),
                format!("{dir}/pgbouncer.ini"),
                0o644,
            ));
        } else {
            files.push((
                "pgbouncer-common.ini".to_string(),
                format!("{dir}/pgbouncer-common.ini"),
                0o644,
            ));
            for p in processes::processes(self) {
                files.push((p.ini_name.clone(), format!("{dir}/{}", p.ini_name), 0o644));
            }
        }
        files.push(("userlist.txt".to_string(), self.auth_file.clone(), 0o600));
        let unit = if self.processes < 2 {
            "pgbouncer.service"
        } else {
            "pgbouncer@.service"
        };
        files.push((
            unit.to_string(),
            format!("{}/{unit}", self.systemd.unit_dir),
            0o644,
        ));
        files
    }
}
