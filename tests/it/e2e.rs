//! End to end against real servers: `poolwright apply` writes its files for a
//! throwaway PostgreSQL 15 cluster, a PgBouncer is started from exactly those
//! files, and real clients (psql, pgbench) log in through it.
//!
//! Each test starts its own cluster and PgBouncer on kernel-picked ports, so
//! they run in parallel; servers stop on Drop, also when a test panics.
//! Without the binaries the tests skip, unless POOLWRIGHT_REQUIRE_SERVERS=1.
//! Every test eprintln!s what it measured, so a CI log shows both sides.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{self, Run, servers::*};

/// The app's password: `@ : / # % ? &` would each break a naively built URL,
/// and `"` must be doubled in userlist.txt.
const APP_PASSWORD: &str = "p@ss:w/rd#%?&\"x";
/// APP_PASSWORD as libpq wants it in a URL (everything but unreserved escaped).
const APP_PASSWORD_ENCODED: &str = "p%40ss%3Aw%2Frd%23%25%3F%26%22x";
/// The admin console user's password; URL-safe so tests can build its URL.
const ADMIN_PASSWORD: &str = "admin-Secret_42";

/// The variables the configs below interpolate.
const ENV: &[(&str, &str)] = &[
    ("APP_PASSWORD", APP_PASSWORD),
    ("ADMIN_PASSWORD", ADMIN_PASSWORD),
];

/// What varies between the tests' poolwright.yaml files.
struct Spec<'a> {
    /// Scratch root: config_dir is `etc/`, the unit goes to `units/`, and
    /// PgBouncer's pidfile, socket and log go to `run/`.
    dir: &'a Path,
    pg_port: u16,
    pool_port: u16,
    version: &'a str,
    /// `scram` (the default) or `plain`.
    userlist: &'a str,
    default_pool_size: u32,
    /// Adds the `pgbadmin` user and makes it an admin_users entry.
    admin: bool,
    /// More `[pgbouncer]` lines, already indented by six spaces.
    extra: &'a str,
}

impl<'a> Spec<'a> {
    fn new(dir: &'a Path, pg_port: u16, pool_port: u16) -> Spec<'a> {
        Spec {
            dir,
            pg_port,
            pool_port,
            version: "1.18",
            userlist: "scram",
            default_pool_size: 10,
            admin: false,
            extra: "",
        }
    }

    fn yaml(&self) -> String {
        let d = self.dir.display();
        let (admin_user, admin_setting) = if self.admin {
            (
                "\n      pgbadmin: { password: \"${ADMIN_PASSWORD}\" }",
                "\n      admin_users: pgbadmin",
            )
        } else {
            ("", "")
        };
        // Budget: (1 or 2 users) x (pool + reserve 2) must fit in 40 - 3.
        format!(
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
        )
    }

    /// Writes `<dir>/poolwright.yaml` and returns its path.
    fn write(&self) -> PathBuf {
        let path = self.dir.join("poolwright.yaml");
        fs::write(&path, self.yaml()).expect("write poolwright.yaml");
        path
    }
}

/// A scratch dir the `postgres` user can traverse (0755), with a `run/`
/// that belongs to it, for PgBouncer's pidfile, socket and log. In /tmp
/// because $TMPDIR may be private to root.
fn scratch() -> tempfile::TempDir {
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

/// `poolwright --config CONFIG ARGS...`, with the password variables set.
fn pw(config: &Path, args: &[&str]) -> Run {
    let dir = config.parent().expect("config in a directory");
    let mut all = vec!["--config", config.to_str().expect("utf-8 config path")];
    all.extend_from_slice(args);
    support::poolwright(dir, &all, ENV)
}

/// `poolwright apply`, which must succeed; returns its stderr.
fn apply(config: &Path) -> String {
    let run = pw(config, &["apply"]);
    eprintln!("--- poolwright apply (exit {}):\n{}", run.code, run.stderr);
    assert_eq!(run.code, 0, "apply failed:\n{run:?}");
    run.stderr
}

fn stdout_line(run: &Run, what: &str) -> String {
    assert_eq!(run.code, 0, "{what} failed:\n{run:?}");
    run.stdout.trim().to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// psql over `url`; returns trimmed stdout, panicking with stderr on failure.
fn query(url: &str, sql: &str) -> String {
    let out = psql_url(url, sql);
    assert!(
        out.status.success(),
        "psql {sql:?} failed over {url}:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The secret stored for `user` in userlist.txt, read by the file's own
/// rules (`"user" "secret"`, `"` doubled inside a field).
fn userlist_secret(userlist: &str, user: &str) -> Option<String> {
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

fn rolpassword(pg: &PgCluster, role: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
    )
}

fn uid_of(user: Option<&str>) -> u32 {
    let out = Command::new("id")
        .arg("-u")
        .args(user)
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric uid")
}

/// A cluster with role `app` (APP_PASSWORD) owning database `qbo_mirror`.
fn cluster_with_app() -> PgCluster {
    let pg = PgCluster::start(40);
    pg.create_role("app", APP_PASSWORD);
    pg.create_database("qbo_mirror", "app");
    pg
}

/// PgBouncer from the applied `<dir>/etc/pgbouncer.ini`, its stderr logged
/// next to it (the pidfile/socket dir `run/` already belongs to postgres).
fn start_bouncer(dir: &Path, port: u16) -> PgBouncer {
    PgBouncer::start(
        &dir.join("etc/pgbouncer.ini"),
        port,
        &dir.join("pgbouncer.stderr"),
    )
    .unwrap_or_else(|e| panic!("PgBouncer did not start: {e}"))
}

#[test]
fn scram_default_end_to_end() {
    if !require_servers() {
        return;
    }
    let pg = cluster_with_app();
    let dir = scratch();
    let pool_port = free_port();
    let config = Spec::new(dir.path(), pg.port, pool_port).write();
    let etc = dir.path().join("etc");
    let files = [
        etc.join("pgbouncer.ini"),
        etc.join("userlist.txt"),
        dir.path().join("units/pgbouncer.service"),
    ];

    let first = apply(&config);
    for f in &files {
        assert!(
            first.contains(&format!("created {}", f.display())),
            "first apply should create {}:\n{first}",
            f.display()
        );
    }
    assert!(
        first.contains("stored the SCRAM verifier of role `app`"),
        "{first}"
    );

    // userlist.txt: a SCRAM verifier, readable by the service user only.
    let userlist_path = etc.join("userlist.txt");
    let meta = fs::metadata(&userlist_path).expect("userlist.txt exists");
    assert_eq!(meta.mode() & 0o777, 0o600, "userlist.txt mode");
    if uid_of(None) == 0 {
        assert_eq!(meta.uid(), uid_of(Some("postgres")), "userlist.txt owner");
    }
    let userlist = fs::read_to_string(&userlist_path).unwrap();
    let verifier = userlist_secret(&userlist, "app").expect("app in userlist.txt");
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(
        !userlist.contains("p@ss"),
        "the password leaked into userlist.txt"
    );

    // The server stores the very same verifier, so PgBouncer can pass the
    // client's SCRAM proof through to it.
    let stored = rolpassword(&pg, "app");
    eprintln!("userlist verifier: {verifier}\npg_authid:         {stored}");
    assert_eq!(
        stored, verifier,
        "server verifier differs from userlist.txt"
    );

    let _bouncer = start_bouncer(dir.path(), pool_port);

    let url = stdout_line(&pw(&config, &["url", "prod", "--show-password"]), "url");
    assert_eq!(
        url,
        format!("postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{pool_port}/qbo_mirror")
    );
    let who = query(&url, "select current_user");
    eprintln!("through PgBouncer as {who}");
    assert_eq!(who, "app");
    // The transaction-mode pool really is in between: PgBouncer's port, not PG's.
    assert_eq!(query(&url, "show port"), pg.port.to_string());

    let masked = stdout_line(&pw(&config, &["url", "prod"]), "url (masked)");
    eprintln!("masked url: {masked}");
    assert!(masked.contains("****"), "{masked}");
    assert!(!masked.contains(APP_PASSWORD), "{masked}");
    assert!(!masked.contains(APP_PASSWORD_ENCODED), "{masked}");
    assert!(!masked.contains("p%40ss"), "{masked}");

    let direct = stdout_line(
        &pw(&config, &["url", "prod", "--direct", "--show-password"]),
        "url --direct",
    );
    assert!(
        direct.contains(&format!("127.0.0.1:{}/", pg.port)),
        "{direct}"
    );
    assert_eq!(query(&direct, "select current_user"), "app");

    // A wrong password must fail at PgBouncer.
    let wrong = format!("postgresql://app:not-the-password@127.0.0.1:{pool_port}/qbo_mirror");
    let out = psql_url(&wrong, "select 1");
    eprintln!("wrong password: {}", text(&out).trim());
    assert!(!out.status.success(), "a wrong password logged in");
    assert!(
        text(&out).contains("authentication failed"),
        "{}",
        text(&out)
    );

    // Idempotent: same bytes, same files, nothing reloaded.
    let before: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let second = apply(&config);
    for f in &files {
        assert!(
            second.contains(&format!("unchanged {}", f.display())),
            "second apply should leave {} unchanged:\n{second}",
            f.display()
        );
    }
    assert!(second.contains("nothing to change"), "{second}");
    assert!(!second.contains("reloaded"), "{second}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert!(before == after, "a second apply changed file bytes");
    assert_eq!(rolpassword(&pg, "app"), verifier);
    assert_eq!(query(&url, "select current_user"), "app");
}

/// The value of `key` in PgBouncer's `SHOW CONFIG` (rows `key|value|...`).
fn show_config(admin_url: &str, key: &str) -> Option<String> {
    let out = psql_url(admin_url, "SHOW CONFIG");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut cols = l.split('|');
        (cols.next() == Some(key)).then(|| cols.next().unwrap_or("").to_string())
    })
}

#[test]
fn apply_reloads_running_pgbouncer() {
    if !require_servers() {
        return;
    }
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let pool_port = free_port();
    let mut spec = Spec::new(dir.path(), pg.port, pool_port);
    spec.admin = true;
    let config = spec.write();
    let first = apply(&config);
    assert!(
        first.contains("stored the SCRAM verifier of role `pgbadmin`"),
        "{first}"
    );
    // Nothing runs yet: apply says so instead of signalling anything.
    assert!(first.contains("PgBouncer is not running"), "{first}");

    let bouncer = start_bouncer(dir.path(), pool_port);
    let admin_url =
        format!("postgresql://pgbadmin:{ADMIN_PASSWORD}@127.0.0.1:{pool_port}/pgbouncer");
    let initial = show_config(&admin_url, "default_pool_size");
    eprintln!("default_pool_size before: {initial:?}");
    assert_eq!(initial.as_deref(), Some("10"));

    spec.default_pool_size = 7;
    spec.write();
    let second = apply(&config);
    let etc = dir.path().join("etc");
    assert!(
        second.contains(&format!("updated {}", etc.join("pgbouncer.ini").display())),
        "{second}"
    );
    assert!(
        second.contains(&format!("unchanged {}", etc.join("userlist.txt").display())),
        "{second}"
    );
    assert!(
        second.contains(&format!(
            "reloaded PgBouncer (SIGHUP to pid {})",
            bouncer.pid()
        )),
        "{second}"
    );

    // SIGHUP is asynchronous: poll the admin console until it took effect.
    let started = Instant::now();
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(5) {
        seen = show_config(&admin_url, "default_pool_size");
        if seen.as_deref() == Some("7") {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    eprintln!(
        "default_pool_size after apply: {seen:?} ({} ms)",
        started.elapsed().as_millis()
    );
    assert_eq!(seen.as_deref(), Some("7"), "log:\n{}", bouncer.log());
}

/// Runs the serverless pattern: 200 clients, a new connection for every
/// (read-only) transaction, for 5 s.
fn pgbench_connect_per_transaction(port: u16) -> (Output, String) {
    let port = port.to_string();
    let out = pgbench(
        &[
            "-n",
            "-C",
            "-c",
            "200",
            "-j",
            "2",
            "-T",
            "5",
            "-S",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "app",
            "qbo_mirror",
        ],
        &[("PGPASSWORD", APP_PASSWORD), ("PGCONNECT_TIMEOUT", "10")],
    );
    let all = text(&out);
    (out, all)
}

/// pgbench's summary lines worth a CI log.
fn summary(output: &str) -> String {
    output
        .lines()
        .filter(|l| {
            l.starts_with("tps")
                || l.starts_with("number of")
                || l.starts_with("latency")
                || l.contains("aborted")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn processed(output: &str) -> u64 {
    output
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn pgbench_serverless_pattern_through_pooler_and_direct() {
    if !require_servers() {
        return;
    }
    let pg = cluster_with_app();
    let dir = scratch();
    let pool_port = free_port();
    let config = Spec::new(dir.path(), pg.port, pool_port).write();
    apply(&config);

    let init = pgbench(
        &[
            "-i",
            "-s",
            "1",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "app",
            "qbo_mirror",
        ],
        &[("PGPASSWORD", APP_PASSWORD)],
    );
    assert!(init.status.success(), "pgbench -i:\n{}", text(&init));

    let bouncer = start_bouncer(dir.path(), pool_port);
    // Sample the server side while pgbench hammers PgBouncer: however many
    // clients connect, app's backends must stay within pool + reserve.
    let stop = AtomicBool::new(false);
    let max_backends = AtomicU32::new(0);
    let mut samples = 0u32;
    let (out, all) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let now = pg.client_backends("qbo_mirror", "app");
                max_backends.fetch_max(now, Ordering::Relaxed);
                n += 1;
                sleep(Duration::from_millis(100));
            }
            n
        });
        let result = pgbench_connect_per_transaction(pool_port);
        stop.store(true, Ordering::Relaxed);
        samples = sampler.join().expect("sampler thread");
        result
    });
    let max_backends = max_backends.into_inner();
    eprintln!(
        "--- through PgBouncer (pool 10 + reserve 2), {} ---\n{}\nmax app backends on the server: {max_backends} ({samples} samples)",
        out.status,
        summary(&all)
    );
    assert!(
        out.status.success(),
        "pgbench through PgBouncer failed:\n{all}"
    );
    if let Some(failed) = all
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
    {
        assert!(failed.starts_with("0 "), "failed transactions: {failed}");
    }
    assert!(!all.contains("aborted"), "{all}");
    assert!(processed(&all) > 0, "no transactions processed:\n{all}");
    assert!(samples >= 10, "only {samples} samples in a 5 s run");
    assert!(max_backends > 0, "never saw a server connection of app");
    assert!(
        max_backends <= 12,
        "{max_backends} server connections > pool_size + reserve_pool_size"
    );

    // PgBouncer's idle server connections would hold slots: stop it and wait
    // until the server has let them go.
    drop(bouncer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.client_backends("qbo_mirror", "app") > 0 {
        assert!(
            Instant::now() < deadline,
            "app backends linger after PgBouncer stopped"
        );
        sleep(Duration::from_millis(100));
    }

    // The same load straight at PostgreSQL runs out of its 40 slots.
    let (out, all) = pgbench_connect_per_transaction(pg.port);
    eprintln!(
        "--- direct to PostgreSQL (max_connections 40), {} ---\n{}",
        out.status,
        summary(&all)
    );
    let overloaded = ["too many clients", "remaining connection slots", "aborted"]
        .iter()
        .any(|m| all.contains(m));
    assert!(
        !out.status.success() || overloaded,
        "200 direct connect-per-transaction clients did not overload a 40-connection server:\n{}",
        summary(&all)
    );
}

#[test]
fn plain_userlist_mode_works() {
    if !require_servers() {
        return;
    }
    let pg = cluster_with_app();
    let dir = scratch();
    let pool_port = free_port();
    let mut spec = Spec::new(dir.path(), pg.port, pool_port);
    spec.userlist = "plain";
    let config = spec.write();

    let before = rolpassword(&pg, "app");
    let stderr = apply(&config);
    let after = rolpassword(&pg, "app");
    eprintln!("pg_authid before: {before}\npg_authid after:  {after}");
    assert_eq!(before, after, "apply changed the verifier in plain mode");
    assert!(!stderr.contains("stored the"), "{stderr}");

    let path = dir.path().join("etc/userlist.txt");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let userlist = fs::read_to_string(&path).unwrap();
    assert!(
        userlist
            .lines()
            .any(|l| l == "\"app\" \"p@ss:w/rd#%?&\"\"x\""),
        "plain password not quoted by userlist rules:\n{userlist}"
    );
    assert_eq!(
        userlist_secret(&userlist, "app").as_deref(),
        Some(APP_PASSWORD)
    );

    let _bouncer = start_bouncer(dir.path(), pool_port);
    let url = stdout_line(&pw(&config, &["url", "prod", "--show-password"]), "url");
    let who = query(&url, "select current_user");
    eprintln!("through PgBouncer (plain userlist) as {who}");
    assert_eq!(who, "app");
}

#[test]
fn rendered_unit_passes_systemd_analyze() {
    if !require_servers() {
        return;
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but systemd-analyze is missing");
        }
        eprintln!("SKIP: systemd-analyze not found; run scripts/install-test-deps");
        return;
    }
    let out = scratch();
    let example = support::root().join("examples/automatch-books/poolwright.yaml");
    let run = support::poolwright(
        out.path(),
        &[
            "--config",
            example.to_str().unwrap(),
            "render",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[("QBO_DB_PASSWORD", "demo")],
    );
    assert_eq!(run.code, 0, "render failed:\n{run:?}");
    let unit = out.path().join("pgbouncer.service");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let said = text(&verify);
    eprintln!(
        "systemd-analyze verify {}: {}, output: {:?}",
        unit.display(),
        verify.status,
        said
    );
    assert!(verify.status.success(), "{said}");
    assert!(said.trim().is_empty(), "systemd-analyze warned:\n{said}");
}

/// The major.minor of the installed PgBouncer (`PgBouncer 1.18.0` -> 1.18).
fn installed_pgbouncer_version() -> String {
    let bin = ["/usr/sbin/pgbouncer", "pgbouncer"]
        .into_iter()
        .find(|b| !b.starts_with('/') || Path::new(b).is_file())
        .unwrap();
    let out = Command::new(bin).arg("-V").output().expect("pgbouncer -V");
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let full = first.strip_prefix("PgBouncer ").unwrap_or("").trim();
    full.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn pgbouncer_rejects_settings_of_newer_versions() {
    if !require_servers() {
        return;
    }
    let installed = installed_pgbouncer_version();
    eprintln!("installed PgBouncer: {installed}");
    // No server needed: PgBouncer reads its config before any login.
    let dir = scratch();
    let etc = dir.path().join("etc");
    let pool_port = free_port();
    let render = |spec: &Spec| {
        let config = spec.write();
        let out = etc.to_str().unwrap();
        let run = pw(&config, &["render", "--out", out]);
        assert_eq!(run.code, 0, "render failed:\n{run:?}");
        // PgBouncer runs as postgres and must read userlist.txt (0600).
        hand_to_service_user(dir.path());
        fs::read_to_string(etc.join("pgbouncer.ini")).unwrap()
    };
    let mut spec = Spec::new(dir.path(), free_port(), pool_port);

    // poolwright itself refuses the key for 1.18 ...
    spec.extra = "      max_prepared_statements: 100\n";
    let refused = pw(&spec.write(), &["validate"]);
    eprintln!(
        "validate 1.18 + max_prepared_statements: exit {}\n{}",
        refused.code, refused.stderr
    );
    assert_ne!(refused.code, 0, "1.18 accepted max_prepared_statements");
    assert!(refused.stderr.contains("1.21"), "{}", refused.stderr);

    // ... because PgBouncer 1.18 refuses to start on it.
    if installed == "1.18" {
        spec.version = "1.21";
        let ini = render(&spec);
        assert!(ini.contains("max_prepared_statements = 100"), "{ini}");
        match PgBouncer::start(
            &etc.join("pgbouncer.ini"),
            pool_port,
            &dir.path().join("new.log"),
        ) {
            Ok(b) => panic!("PgBouncer 1.18 started with a 1.21 setting:\n{}", b.log()),
            Err(e) => {
                eprintln!("PgBouncer 1.18 on a 1.21 config: {e}");
                assert!(e.contains("unknown parameter"), "{e}");
            }
        }
    } else {
        eprintln!(
            "installed PgBouncer is {installed}, not 1.18: only checking the 1.18 render starts"
        );
    }

    spec.version = "1.18";
    spec.extra = "";
    let ini = render(&spec);
    assert!(!ini.contains("max_prepared_statements"), "{ini}");
    let bouncer = PgBouncer::start(
        &etc.join("pgbouncer.ini"),
        pool_port,
        &dir.path().join("old.log"),
    )
    .unwrap_or_else(|e| panic!("PgBouncer did not start on the 1.18 render: {e}"));
    eprintln!(
        "PgBouncer started on the 1.18 render (pid {})",
        bouncer.pid()
    );
}
