//! The fixture of the real-server tests: a PostgreSQL 15 cluster with the
//! app's role and database, a PgBouncer target (`Spec`) written as
//! poolwright.yaml and applied, PgBouncer started on exactly those files,
//! and the helpers every such test uses (psql queries, the userlist's
//! secret, the role's stored password, running on 1.18 and 1.24).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::servers::*;
use super::{self as support, Run};

/// The app's password: `@ : / # % ? &` would each break a naively built URL,
/// and `"` must be doubled in userlist.txt.
pub(crate) const APP_PASSWORD: &str = "p@ss:w/rd#%?&\"x";
/// APP_PASSWORD as libpq wants it in a URL (all but unreserved characters escaped).
pub(crate) const APP_PASSWORD_ENCODED: &str = "p%40ss%3Aw%2Frd%23%25%3F%26%22x";
/// The admin console user's password; URL-safe so the test can build its URL.
pub(crate) const ADMIN_PASSWORD: &str = "admin-Secret_42";

/// The variables the test configs interpolate.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("APP_PASSWORD", APP_PASSWORD),
    ("ADMIN_PASSWORD", ADMIN_PASSWORD),
];

/// pool + reserve: the most server connections PgBouncer may open per pair.
pub(crate) const POOL_CAP: u32 = 10 + 2;

/// What varies between the tests' poolwright.yaml files.
pub(crate) struct Spec {
    /// Scratch root: config_dir is `etc/`, the unit goes to `units/`, and
    /// PgBouncer's pidfile, socket and log go to `run/`.
    pub(crate) dir: PathBuf,
    pub(crate) pg_port: u16,
    pub(crate) pool_port: u16,
    /// The PgBouncer under test: its `major.minor` goes into `version:`.
    pub(crate) version: String,
    pub(crate) bin: PathBuf,
    /// `scram` (the default) or `plain`.
    pub(crate) userlist: &'static str,
    pub(crate) default_pool_size: u32,
    /// Adds the `pgbadmin` user and makes it an admin_users entry.
    pub(crate) admin: bool,
    /// More `[pgbouncer]` lines, each indented by six spaces.
    pub(crate) extra: &'static str,
}

impl Spec {
    pub(crate) fn new(dir: &Path, pg_port: u16, build: &BouncerBuild) -> Spec {
        Spec {
            dir: dir.to_path_buf(),
            pg_port,
            pool_port: free_port(),
            version: build.version.clone(),
            bin: build.bin.clone(),
            userlist: "scram",
            default_pool_size: 10,
            admin: false,
            extra: "",
        }
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("poolwright.yaml")
    }

    pub(crate) fn etc(&self, file: &str) -> PathBuf {
        self.dir.join("etc").join(file)
    }

    /// Writes poolwright.yaml and returns its path. The budget check wants
    /// users x (pool + reserve 2) <= 40 - 3 superuser slots: 12 or 24 here.
    pub(crate) fn write(&self) -> PathBuf {
        let d = self.dir.display();
        let (admin_user, admin_setting) = if self.admin {
            (
                "\n      pgbadmin: { password: \"${ADMIN_PASSWORD}\" }",
                "\n      admin_users: pgbadmin",
            )
        } else {
            ("", "")
        };
        let yaml = format!(
            r#"version: 1
targets:
  prod:
    provider: pgbouncer
    version: "{version}"
    upstream: {{ host: 127.0.0.1, port: {pg_port}, max_connections: 40 }}
    public_host: 127.0.0.1
    config_dir: "{d}/etc"
    userlist: {userlist}
    databases:
      qbo_mirror: {{}}
    users:
      app: {{ password: "${{APP_PASSWORD}}" }}{admin_user}
    url: {{ user: app, database: qbo_mirror }}
    systemd: {{ unit_dir: "{d}/units", user: postgres }}
    pgbouncer:
      listen_addr: 127.0.0.1
      listen_port: {pool_port}
      unix_socket_dir: "{d}/run"
      pidfile: "{d}/run/pgbouncer.pid"
      logfile: "{d}/run/pgbouncer.log"{admin_setting}
      pool_mode: transaction
      default_pool_size: {pool}
      reserve_pool_size: 2
      max_client_conn: 500
{extra}"#,
            version = self.version,
            pg_port = self.pg_port,
            pool_port = self.pool_port,
            userlist = self.userlist,
            pool = self.default_pool_size,
            extra = self.extra,
        );
        fs::write(self.config(), yaml).expect("write poolwright.yaml");
        self.config()
    }
}

/// A scratch dir the `postgres` user can traverse (0755), with a `run/` that
/// belongs to it for PgBouncer's pidfile, socket and log. In /tmp because
/// $TMPDIR may be private to root.
pub(crate) fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("poolwright-e2e.")
        .tempdir_in("/tmp")
        .expect("create scratch dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod scratch");
    let run = dir.path().join("run");
    fs::create_dir(&run).expect("create run/");
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).expect("chmod run/");
    hand_to_service_user(&run);
    dir
}

/// `poolwright --config CONFIG ARGS...` in the config's directory, with the
/// password variables set.
pub(crate) fn pw(config: &Path, args: &[&str]) -> Run {
    let dir = config.parent().expect("config in a directory");
    let mut all = vec!["--config", config.to_str().expect("utf-8 config path")];
    all.extend_from_slice(args);
    support::poolwright(dir, &all, ENV)
}

/// Writes the config and runs `poolwright apply`, which must succeed;
/// returns its stderr (the per-file report).
pub(crate) fn apply(spec: &Spec) -> String {
    let run = pw(&spec.write(), &["apply"]);
    eprintln!("--- poolwright apply (exit {}):\n{}", run.code, run.stderr);
    assert_eq!(run.code, 0, "apply failed:\n{run:?}");
    run.stderr
}

/// Writes the config and runs `poolwright render --out <dir>/etc` (the
/// config_dir, so the ini's auth_file points at the rendered userlist).
pub(crate) fn render(spec: &Spec) -> String {
    let out = spec.etc("");
    let run = pw(&spec.write(), &["render", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "render failed:\n{run:?}");
    // PgBouncer runs as postgres and must read userlist.txt (0600, root's).
    hand_to_service_user(&out);
    fs::read_to_string(spec.etc("pgbouncer.ini")).expect("rendered pgbouncer.ini")
}

/// PgBouncer on the `<dir>/etc/pgbouncer.ini` that apply or render wrote.
/// free_port() can race with another test (pgbench opens thousands of client
/// sockets), so on a bind failure move to a new port and `reinstall`.
pub(crate) fn start_bouncer(spec: &mut Spec, reinstall: fn(&Spec) -> String) -> PgBouncer {
    let log = spec.dir.join("pgbouncer.stderr");
    for attempt in 1.. {
        match PgBouncer::start_with(&spec.bin, &spec.etc("pgbouncer.ini"), spec.pool_port, &log) {
            Ok(bouncer) => return bouncer,
            Err(e) if attempt < 3 && e.contains("Address already in use") => {
                eprintln!("port {} taken, moving: {e}", spec.pool_port);
                spec.pool_port = free_port();
                reinstall(spec);
            }
            Err(e) => panic!("PgBouncer did not start: {e}"),
        }
    }
    unreachable!("the loop returns or panics")
}

pub(crate) fn stdout_of(run: &Run, what: &str) -> String {
    assert_eq!(run.code, 0, "{what} failed:\n{run:?}");
    run.stdout.trim().to_string()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// psql over `url`; returns trimmed stdout, panicking with stderr on failure.
pub(crate) fn query(url: &str, sql: &str) -> String {
    let out = psql_url(url, sql);
    assert!(
        out.status.success(),
        "psql {sql:?} failed over {url}:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The secret stored for `user` in userlist.txt, read by the file's own
/// rules (`"user" "secret"`, `"` doubled inside a field), independently of
/// poolwright's parser.
pub(crate) fn userlist_secret(userlist: &str, user: &str) -> Option<String> {
    let prefix = format!("\"{}\" \"", user.replace('"', "\"\""));
    let rest = userlist.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let mut secret = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            secret.push(c);
        } else if chars.peek() == Some(&'"') {
            chars.next();
            secret.push('"');
        } else {
            return Some(secret);
        }
    }
    None
}

/// What the server stores as `role`'s password.
pub(crate) fn rolpassword(pg: &PgCluster, role: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
    )
}

/// `id -u [user]`.
pub(crate) fn uid_of(user: Option<&str>) -> u32 {
    let out = Command::new("id")
        .arg("-u")
        .args(user)
        .output()
        .expect("run id");
    let uid = String::from_utf8_lossy(&out.stdout);
    uid.trim()
        .parse()
        .unwrap_or_else(|e| panic!("id -u: {uid:?}: {e}"))
}

/// Runs `test` once per PgBouncer build (1.18 and 1.24), each with its own
/// servers, naming the version in the output.
pub(crate) fn for_each_pgbouncer(test: fn(&BouncerBuild)) {
    if !require_servers() {
        return;
    }
    let builds = pgbouncer_builds();
    assert!(!builds.is_empty(), "no PgBouncer to test");
    for build in &builds {
        eprintln!(
            "===== PgBouncer {} ({})",
            build.version,
            build.bin.display()
        );
        test(build);
    }
}

/// A cluster with role `app` (APP_PASSWORD) owning database `qbo_mirror`.
pub(crate) fn cluster_with_app() -> PgCluster {
    let pg = PgCluster::start(40);
    pg.create_role("app", APP_PASSWORD);
    pg.create_database("qbo_mirror", "app");
    pg
}
