//! Managed poolers: Supabase (Supavisor), Neon, the manifest-only providers
//! (Azure Flexible Server, DigitalOcean, Crunchy Bridge, Cloud SQL) and a
//! user's own manifest.
//!
//! * Exact URLs per provider and pool mode, with a password that needs
//!   percent-encoding (`p@ss w/rd#%?&"x`), on top of the golden cases in
//!   tests/golden/<provider>/ (whose url.txt is masked): this module blesses
//!   `expected/url-revealed.txt` there with the real password, per driver.
//! * libpq accepts every emitted URL (`pg_isready` parses each with libpq).
//! * User manifests in `providers/` beside poolwright.yaml, good and bad.
//! * Offline behaviour: the Supabase pooler host is known from the config,
//!   from the state file `apply` wrote, or not at all (`<known after apply>`).
//! * `apply` against wiremock (in-process): what it asks, what it keeps in
//!   `.poolwright-state.json`, and the error paths (401, 403, 404, 429 then
//!   200, 5xx, a malformed body, no token): exit 1 and nothing written.
//! * `apply` against Prism serving the providers' published OpenAPI specs
//!   from `<repo>/../shared/specs` (skipped with a notice where that
//!   directory does not exist, as in a fresh clone): mock mode (Prism answers
//!   from the spec) and proxy mode (Prism validates request and response
//!   against the spec, wiremock answers).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::servers::free_port;
use crate::support::{Run, assert_file, poolwright, root};

/// A password that needs percent-encoding in every URL part libpq decodes.
pub(crate) const PASSWORD: &str = "p@ss w/rd#%?&\"x";
/// `PASSWORD` as it must appear in a URL.
pub(crate) const ENCODED: &str = "p%40ss%20w%2Frd%23%25%3F%26%22x";
pub(crate) const SUPABASE_TOKEN: &str = "sbp_0123456789abcdef0123456789abcdef01234567";
pub(crate) const NEON_TOKEN: &str = "napi_t0k3n5ecr3tvalue0123456789abcdefghijklmnop";
/// The password inside the URIs Neon's API returns: never to be stored.
pub(crate) const NEON_URI_PASSWORD: &str = "npg_UriPassw0rdFromTheApi";
pub(crate) const REF: &str = "abcdefghijklmnopqrst";
pub(crate) const NEON_PROJECT: &str = "cool-darkness-123456";
pub(crate) const STATE: &str = ".poolwright-state.json";

/// The golden cases of managed providers (tests/golden/<case>/).
const MANAGED_CASES: &[&str] = &[
    "azure-flexible",
    "cloud-sql",
    "crunchy-bridge",
    "digitalocean",
    "neon",
    "supabase",
    "supabase-from-state",
    "user-manifest",
];

/// Drivers that hand the URL to libpq (drivers.rs: `libpq: true`), so the
/// libpq-only `channel_binding` belongs in their URLs.
const LIBPQ_DRIVERS: &[&str] = &[
    "libpq",
    "psycopg2",
    "psycopg",
    "sqlalchemy",
    "sqlalchemy-psycopg",
    "rails",
    "django",
];

/// Drivers whose URLs are plain `postgresql://` with only libpq parameters,
/// so libpq itself must accept them too.
const LIBPQ_PARSEABLE: &[&str] = &[
    "libpq",
    "psycopg2",
    "psycopg",
    "rails",
    "django",
    "asyncpg",
    "node-postgres",
    "postgres-js",
];

fn golden(case: &str) -> PathBuf {
    root().join("tests/golden").join(case)
}

fn pw_env() -> Vec<(&'static str, &'static str)> {
    vec![("DB_PASSWORD", PASSWORD)]
}

#[track_caller]
fn succeeds(run: &Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
}

/// `poolwright url ARGS --show-password` in `dir`: the one line it prints.
#[track_caller]
fn revealed(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["url"];
    all.extend_from_slice(args);
    all.push("--show-password");
    let run = poolwright(dir, &all, &pw_env());
    succeeds(&run, &all.join(" "));
    run.stdout.trim_end().to_string()
}

/// The targets of the config in `dir` with their provider, from `plan`.
fn targets(dir: &Path, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let run = poolwright(dir, &["plan", "--format", "json"], env);
    succeeds(&run, "plan --format json");
    let plans: Value = serde_json::from_str(&run.stdout).expect("plan json");
    plans
        .as_array()
        .expect("an array of plans")
        .iter()
        .map(|p| {
            (
                p["target"].as_str().expect("target").to_string(),
                p["provider"].as_str().expect("provider").to_string(),
            )
        })
        .collect()
}

/// A temp project with this poolwright.yaml.
pub(crate) fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("poolwright.yaml"), yaml).expect("write config");
    dir
}

/// The names in `dir`, sorted (what a command left behind).
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) fn state(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join(STATE)).expect("the state file");
    serde_json::from_str(&text).expect("state is JSON")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// True when CI asks for every real-server test to run (no skipping).
fn require_servers() -> bool {
    std::env::var("POOLWRIGHT_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------
// URLs per provider and pool mode
// ---------------------------------------------------------------------------

#[test]
fn supabase_urls_carry_the_project_ref_in_the_user_and_the_mode_in_the_port() {
    let dir = golden("supabase");
    let host = "aws-1-eu-central-1.pooler.supabase.com";
    // Transaction mode: 6543; the role `postgres` becomes postgres.<ref>.
    assert_eq!(
        revealed(&dir, &["transaction"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    // The migration URL: session mode on the same pooler (IPv4), 5432.
    assert_eq!(
        revealed(&dir, &["transaction", "--direct"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:5432/postgres?sslmode=require")
    );
    // Session mode: 5432; a custom role gets the suffix too.
    assert_eq!(
        revealed(&dir, &["session"]),
        format!(
            "postgresql://app_rw.zyxwvutsrqponmlkjihg:{ENCODED}@aws-0-us-east-1.pooler.supabase.com:5432/app?sslmode=require"
        )
    );
    // A user already ending in .<ref> is kept, not suffixed twice.
    assert_eq!(
        revealed(&dir, &["suffixed"]),
        format!("postgresql://reporting.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    // pgJDBC takes user and password as parameters; transaction pooling
    // without prepared statements turns server-side prepare off.
    assert_eq!(
        revealed(&dir, &["transaction", "--driver", "jdbc"]),
        format!(
            "jdbc:postgresql://{host}:6543/postgres?user=postgres.{REF}&password={ENCODED}&sslmode=require&prepareThreshold=0"
        )
    );
    assert_eq!(
        revealed(&dir, &["transaction", "--driver", "asyncpg"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    every_url_requires_tls(&dir);
}

#[test]
fn neon_urls_use_the_pooler_host_and_channel_binding_only_for_libpq() {
    let dir = golden("neon");
    let pooled = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech";
    let direct = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
    let tail = "5432/qbo_mirror?sslmode=require";
    assert_eq!(
        revealed(&dir, &["preview"]),
        format!("postgresql://app:{ENCODED}@{pooled}:{tail}&channel_binding=require")
    );
    assert_eq!(
        revealed(&dir, &["preview", "--direct"]),
        format!("postgresql://app:{ENCODED}@{direct}:{tail}&channel_binding=require")
    );
    for driver in ["psycopg", "psycopg2", "django"] {
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver]),
            format!("postgresql://app:{ENCODED}@{pooled}:{tail}&channel_binding=require"),
            "--driver {driver}"
        );
    }
    // Drivers with their own URL parser: no channel_binding (asyncpg would
    // send it to the server as a startup parameter).
    for driver in ["asyncpg", "node-postgres"] {
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver]),
            format!("postgresql://app:{ENCODED}@{pooled}:{tail}"),
            "--driver {driver}"
        );
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver, "--direct"]),
            format!("postgresql://app:{ENCODED}@{direct}:{tail}"),
            "--driver {driver} --direct"
        );
    }
    // Neon's PgBouncer tracks prepared statements: no prepareThreshold=0.
    assert_eq!(
        revealed(&dir, &["preview", "--driver", "jdbc"]),
        format!(
            "jdbc:postgresql://{pooled}:5432/qbo_mirror?user=app&password={ENCODED}&sslmode=require"
        )
    );
    // The rule, for every driver and both URLs.
    for (target, _) in targets(&dir, &pw_env()) {
        for (driver, url) in driver_urls(&dir, &target) {
            let libpq = LIBPQ_DRIVERS.contains(&driver.as_str());
            assert_eq!(
                url.contains("channel_binding=require"),
                libpq,
                "{target} --driver {driver}: {url}"
            );
        }
    }
    every_url_requires_tls(&dir);
}

/// Every driver's URL and direct URL of `target` (revealed), from `url --format json`.
fn driver_urls(dir: &Path, target: &str) -> Vec<(String, String)> {
    let run = poolwright(
        dir,
        &["url", target, "--format", "json", "--show-password"],
        &pw_env(),
    );
    succeeds(&run, &format!("url {target} --format json"));
    let doc: Value = serde_json::from_str(&run.stdout).expect("url json");
    let drivers = doc["drivers"].as_object().expect("drivers");
    assert!(drivers.len() >= 10, "every driver is listed: {drivers:?}");
    let mut out = Vec::new();
    for (name, view) in drivers {
        for key in ["url", "direct_url"] {
            let url = view[key].as_str().expect("a url").to_string();
            out.push((name.clone(), url));
        }
    }
    out
}

/// Every Supabase and Neon URL asks for TLS, in the driver's own dialect.
fn every_url_requires_tls(dir: &Path) {
    for (target, _) in targets(dir, &pw_env()) {
        for (driver, url) in driver_urls(dir, &target) {
            let param = if driver == "sqlalchemy-asyncpg" {
                "ssl=require"
            } else {
                "sslmode=require"
            };
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
            assert!(
                query.split('&').any(|p| p == param),
                "{target} --driver {driver} lacks {param}: {url}"
            );
        }
    }
}

#[test]
fn manifest_providers_use_their_pooler_port_and_database() {
    let tail = "?sslmode=require";
    let azure = golden("azure-flexible");
    let server = "automatch-prod.postgres.database.azure.com";
    assert_eq!(
        revealed(&azure, &["transaction"]),
        format!("postgresql://app:{ENCODED}@{server}:6432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&azure, &["transaction", "--direct"]),
        format!("postgresql://app:{ENCODED}@{server}:5432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&azure, &["session"]),
        format!(
            "postgresql://reporter:{ENCODED}@automatch-reports.postgres.database.azure.com:6432/reports{tail}"
        )
    );
    // The pool mode decides what a driver must do: Azure's PgBouncer keeps no
    // prepared statements by default (max_prepared_statements = 0), so
    // Prisma needs pgbouncer=true in transaction mode, and nothing in session mode.
    assert_eq!(
        revealed(&azure, &["transaction", "--driver", "prisma"]),
        format!(
            "postgresql://app:{ENCODED}@{server}:6432/qbo_mirror{tail}&pgbouncer=true&connection_limit=1"
        )
    );
    assert_eq!(
        revealed(&azure, &["session", "--driver", "prisma"]),
        format!(
            "postgresql://reporter:{ENCODED}@automatch-reports.postgres.database.azure.com:6432/reports{tail}"
        )
    );

    // DigitalOcean: 25061 with the pool's name as the database; direct is
    // 25060 with the real database; the user defaults to doadmin.
    let digitalocean = golden("digitalocean");
    let host = "db-postgresql-nyc3-12345-do-user-123456-0.b.db.ondigitalocean.com";
    assert_eq!(
        revealed(&digitalocean, &["pool"]),
        format!("postgresql://doadmin:{ENCODED}@{host}:25061/app-pool{tail}")
    );
    assert_eq!(
        revealed(&digitalocean, &["pool", "--direct"]),
        format!("postgresql://doadmin:{ENCODED}@{host}:25060/defaultdb{tail}")
    );
    assert_eq!(
        revealed(&digitalocean, &["session-pool"]),
        format!(
            "postgresql://reporter:{ENCODED}@private-db-postgresql-ams3-777-do-user-42-0.c.db.ondigitalocean.com:25061/reports_session{tail}"
        )
    );

    // Crunchy Bridge: 5431 (direct 5432), database postgres by default.
    let crunchy = golden("crunchy-bridge");
    let host = "p.vbjrfujvlncjbq3xnlsrqfxyqe.db.postgresbridge.com";
    assert_eq!(
        revealed(&crunchy, &["app"]),
        format!("postgresql://application:{ENCODED}@{host}:5431/postgres{tail}")
    );
    assert_eq!(
        revealed(&crunchy, &["app", "--direct"]),
        format!("postgresql://application:{ENCODED}@{host}:5432/postgres{tail}")
    );
    assert_eq!(
        revealed(&crunchy, &["other-db"]),
        format!("postgresql://application:{ENCODED}@{host}:5431/qbo_mirror{tail}")
    );

    // Cloud SQL managed pooling: 6432 on the instance (direct 5432).
    let cloud_sql = golden("cloud-sql");
    assert_eq!(
        revealed(&cloud_sql, &["transaction"]),
        format!("postgresql://app:{ENCODED}@10.20.30.40:6432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&cloud_sql, &["transaction", "--direct"]),
        format!("postgresql://app:{ENCODED}@10.20.30.40:5432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&cloud_sql, &["session"]),
        format!("postgresql://app:{ENCODED}@pg.internal.example.com:6432/qbo_mirror{tail}")
    );
}

/// The golden cases' url.txt is masked; this blesses `url-revealed.txt`
/// beside it: every target's URL with the real password, direct and pooled,
/// as libpq, asyncpg, node-postgres, pgJDBC and Prisma want it.
#[test]
fn golden_urls_with_the_real_password() {
    for case in MANAGED_CASES {
        let dir = golden(case);
        let mut out = String::new();
        for (target, _) in targets(&dir, &pw_env()) {
            let variants: [&[&str]; 6] = [
                &[],
                &["--direct"],
                &["--driver", "asyncpg"],
                &["--driver", "node-postgres"],
                &["--driver", "jdbc"],
                &["--driver", "prisma"],
            ];
            for extra in variants {
                let mut args = vec![target.as_str()];
                args.extend_from_slice(extra);
                let url = revealed(&dir, &args);
                assert!(
                    url.contains(ENCODED) && !url.contains(PASSWORD),
                    "{case}: the password is not percent-encoded: {url}"
                );
                out.push_str(&format!(
                    "$ poolwright url {} --show-password\n{url}\n",
                    args.join(" ")
                ));
            }
        }
        assert_file(&dir.join("expected/url-revealed.txt"), &out);
    }
}

// ---------------------------------------------------------------------------
// libpq accepts every emitted URL
// ---------------------------------------------------------------------------

fn pg_isready() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("pg_isready"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/lib/postgresql/15/bin/pg_isready");
        p.is_file().then_some(p)
    })
}

/// libpq's verdict on `url` without reaching any real host: pg_isready
/// hands the URL to libpq (PQpingParams). Exit 3 ("no attempt") means libpq
/// refused the connection string (bad percent-encoding, an unknown
/// parameter, an invalid value); 2 ("no response") means it parsed it and
/// tried to connect. PGHOSTADDR=127.0.0.1 keeps libpq from resolving the
/// URL's host name (no DNS, no network); the port is the URL's own.
/// Returns the exit code and, on a refusal, libpq's message (from psql).
fn libpq_verdict(pg_isready: &Path, url: &str) -> (i32, String) {
    let quiet = |cmd: &mut Command| {
        cmd.env("PGHOSTADDR", "127.0.0.1")
            .env("PGCONNECT_TIMEOUT", "2")
            .env_remove("PGSERVICE")
            .env_remove("PGSERVICEFILE")
            .output()
            .expect("run a libpq client")
    };
    let out = quiet(Command::new(pg_isready).args(["-q", "-d", url]));
    let code = out.status.code().unwrap_or(-1);
    if code != 3 {
        return (code, String::new());
    }
    let psql = pg_isready.with_file_name("psql");
    let psql = if psql.is_file() {
        psql
    } else {
        PathBuf::from("psql")
    };
    let why = quiet(Command::new(psql).args(["-X", "-d", url, "-c", ""]));
    (code, String::from_utf8_lossy(&why.stderr).into_owned())
}

#[test]
fn libpq_accepts_every_emitted_url() {
    let Some(pg_isready) = pg_isready() else {
        if require_servers() {
            panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but pg_isready (libpq) is missing");
        }
        eprintln!(
            "SKIP libpq_accepts_every_emitted_url: no pg_isready; run scripts/install-test-deps"
        );
        return;
    };
    // The method tells a refused URL from a parsed one.
    for bad in [
        "postgresql://u:p%4@h.example:5432/db",
        "postgresql://u@h.example:5432/db?pgbouncer=true",
        "postgresql://u@h.example:5432/db?sslmode=required",
    ] {
        assert_eq!(
            libpq_verdict(&pg_isready, bad).0,
            3,
            "libpq should refuse {bad}"
        );
    }
    let good =
        format!("postgresql://u:{ENCODED}@h.example:1/db?sslmode=require&channel_binding=require");
    assert_eq!(
        libpq_verdict(&pg_isready, &good).0,
        2,
        "libpq parses {good}"
    );

    let mut urls = BTreeSet::new();
    // Every URL in every golden url.txt (masked) ...
    for entry in std::fs::read_dir(root().join("tests/golden")).expect("goldens") {
        let file = entry.expect("entry").path().join("expected/url.txt");
        if let Ok(text) = std::fs::read_to_string(&file) {
            urls.extend(
                text.lines()
                    .filter(|l| l.starts_with("postgresql://"))
                    .map(str::to_string),
            );
        }
    }
    // ... and, for the managed providers, every driver's URL that is meant
    // for libpq or is plain libpq syntax, with the real password.
    for case in MANAGED_CASES {
        let dir = golden(case);
        for (target, _) in targets(&dir, &pw_env()) {
            for (driver, url) in driver_urls(&dir, &target) {
                if LIBPQ_PARSEABLE.contains(&driver.as_str()) {
                    urls.insert(url);
                }
            }
        }
    }
    assert!(urls.len() > 40, "too few URLs found: {}", urls.len());
    let mut refused = Vec::new();
    for url in &urls {
        let (code, why) = libpq_verdict(&pg_isready, url);
        // 0/1: something answered on 127.0.0.1 at that port; still parsed.
        if !matches!(code, 0..=2) {
            refused.push(format!("{url}\n  exit {code}: {}", why.trim()));
        }
    }
    assert!(
        refused.is_empty(),
        "libpq refuses {} URL(s):\n{}",
        refused.len(),
        refused.join("\n")
    );
}

// ---------------------------------------------------------------------------
// A user's own manifests
// ---------------------------------------------------------------------------

/// A made-up provider: its own fields, ports and parameters.
const ACME: &str = r#"
name = "acme"
title = "Acme Pooled Postgres"
summary = "Acme's pooler on 7777"
docs = "https://acme.example/docs/pooling"
module = "managed"

[connection]
scheme = "postgresql"
default_port = 7777

[managed]
pool_mode = "transaction"
prepared_statements = false
params = { sslmode = "require", target_session_attrs = "read-write" }
pooled = { host = "{cluster}.{zone}.pool.acme.example", port = "7777", user = "{role}", database = "{db}" }
direct = { host = "{cluster}.{zone}.db.acme.example", port = "15432", user = "{role}", database = "{db}" }

[[managed.fields]]
name = "cluster"
doc = "the cluster id"
required = true

[[managed.fields]]
name = "zone"
doc = "the zone"
default = "eu1"

[[managed.fields]]
name = "role"
doc = "the role"
required = true

[[managed.fields]]
name = "secret"
doc = "the role's password"
required = true
secret = true

[[managed.fields]]
name = "db"
doc = "the database"
required = true
"#;

const ACME_TARGET: &str = r#"version: 1
targets:
  books:
    provider: acme
    cluster: c-0042
    role: books_app
    secret: "${DB_PASSWORD}"
    db: ledger
"#;

/// A project with ACME_TARGET and `providers/<file>` holding `manifest`.
fn manifest_project(file: &str, manifest: &str) -> tempfile::TempDir {
    let dir = project(ACME_TARGET);
    std::fs::create_dir(dir.path().join("providers")).expect("providers dir");
    std::fs::write(dir.path().join("providers").join(file), manifest).expect("manifest");
    dir
}

#[test]
fn a_user_manifest_works_like_a_builtin_provider() {
    let dir = manifest_project("acme.toml", ACME);
    let d = dir.path();
    assert_eq!(
        revealed(d, &["books"]),
        format!(
            "postgresql://books_app:{ENCODED}@c-0042.eu1.pool.acme.example:7777/ledger?sslmode=require&target_session_attrs=read-write"
        )
    );
    assert_eq!(
        revealed(d, &["books", "--direct"]),
        format!(
            "postgresql://books_app:{ENCODED}@c-0042.eu1.db.acme.example:15432/ledger?sslmode=require&target_session_attrs=read-write"
        )
    );
    // Transaction mode without prepared statements, as the manifest says.
    assert!(revealed(d, &["books", "--driver", "prisma"]).contains("pgbouncer=true"));
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout
            .starts_with("target books (Acme Pooled Postgres)\n"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("https://acme.example/docs/pooling"));
    succeeds(&poolwright(d, &["validate"], &pw_env()), "validate");
    // The user's provider is one of the providers a typo is matched against.
    std::fs::write(
        d.join("poolwright.yaml"),
        ACME_TARGET.replace("provider: acme", "provider: acmee"),
    )
    .expect("write");
    let typo = poolwright(d, &["validate"], &pw_env());
    assert_eq!(typo.code, 1);
    assert!(
        typo.stderr.contains("did you mean `acme`?"),
        "{}",
        typo.stderr
    );
    // A required field missing is a config error pointing into poolwright.yaml.
    std::fs::write(
        d.join("poolwright.yaml"),
        ACME_TARGET.replace("    db: ledger\n", ""),
    )
    .expect("write");
    let missing = poolwright(d, &["validate"], &pw_env());
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("missing required key `db`")
            && missing.stderr.contains("targets.books.db"),
        "{}",
        missing.stderr
    );
}

#[test]
fn bad_user_manifests_are_refused_naming_the_file() {
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            // Only data may come from the user: no module of poolwright's own.
            "mybouncer.toml",
            ACME.replace("name = \"acme\"", "name = \"mybouncer\"")
                .replace("module = \"managed\"", "module = \"pgbouncer\""),
            vec!["providers/mybouncer.toml", "module = \"managed\""],
        ),
        (
            "mysupabase.toml",
            ACME.replace("name = \"acme\"", "name = \"mysupabase\"")
                .replace("module = \"managed\"", "module = \"supabase\""),
            vec!["providers/mysupabase.toml", "module = \"managed\""],
        ),
        (
            // A built-in provider's name.
            "supabase.toml",
            ACME.replace("name = \"acme\"", "name = \"supabase\""),
            vec!["providers/supabase.toml", "`supabase` exists already"],
        ),
        (
            "broken.toml",
            "name = \"broken\"\ntitle = \"unterminated\n".to_string(),
            vec!["providers/broken.toml", "line 2"],
        ),
        (
            // A placeholder that names no field.
            "acme.toml",
            ACME.replace("{cluster}.{zone}.pool", "{cluster}.{regoin}.pool"),
            vec!["providers/acme.toml", "`{regoin}`", "is not a field"],
        ),
        (
            // The password may not become part of the host.
            "acme.toml",
            ACME.replace("{cluster}.{zone}.db", "{secret}.{zone}.db"),
            vec!["providers/acme.toml", "`{secret}`", "password"],
        ),
        (
            "other-name.toml",
            ACME.to_string(),
            vec!["providers/other-name.toml", "`acme.toml`"],
        ),
    ];
    // Every case is checked before failing, so one run shows them all.
    let mut problems = Vec::new();
    for (file, manifest, wanted) in cases {
        let dir = manifest_project(file, &manifest);
        for command in [&["validate"][..], &["url", "books"][..]] {
            let run = poolwright(dir.path(), command, &pw_env());
            let lacks: Vec<&&str> = wanted
                .iter()
                .filter(|w| !run.stderr.contains(**w))
                .collect();
            let ok = run.code == 1
                && run.stdout.is_empty()
                && run.stderr.starts_with("error: ")
                && !run.stderr.contains("panicked")
                && lacks.is_empty();
            if !ok {
                problems.push(format!(
                    "{file}: {command:?}: exit {}, lacks {lacks:?}:\n{}{}",
                    run.code, run.stdout, run.stderr
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// Offline: the Supabase pooler host from the config, the state file, or not yet
// ---------------------------------------------------------------------------

pub(crate) const SUPABASE_NO_HOST: &str = "version: 1
targets:
  staging:
    provider: supabase
    project_ref: abcdefghijklmnopqrst
    pool_mode: transaction
    password: \"${DB_PASSWORD}\"
  staging-session:
    provider: supabase
    project_ref: abcdefghijklmnopqrst
    pool_mode: session
    password: \"${DB_PASSWORD}\"
";

#[test]
fn supabase_offline_without_host_is_known_after_apply_and_then_from_state() {
    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let validate = poolwright(d, &["validate"], &pw_env());
    succeeds(&validate, "validate");

    let url = poolwright(d, &["url", "staging"], &pw_env());
    assert_eq!(url.code, 1, "{}", url.stderr);
    assert_eq!(url.stdout, "");
    assert!(
        url.stderr.starts_with(
            "error: the URL of `staging` is known only after `poolwright apply staging`\n"
        ),
        "{}",
        url.stderr
    );

    let plan = poolwright(d, &["plan", "staging"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains("  url     <known after apply>\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "  note    pooler host unknown: `poolwright apply` reads it from the Management API (SUPABASE_ACCESS_TOKEN), or set `pooler_host`\n"
        ),
        "{}",
        plan.stdout
    );
    let json = poolwright(d, &["plan", "staging", "--format", "json"], &pw_env());
    succeeds(&json, "plan --format json");
    let json: Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(json[0]["url"], "<known after apply>");
    assert_eq!(
        listing(d),
        ["poolwright.yaml"],
        "offline commands write nothing"
    );

    // What the last apply learned.
    std::fs::write(
        d.join(STATE),
        r#"{"targets": {"staging": {"pooler_host": "aws-1-ap-southeast-1.pooler.supabase.com"},
            "staging-session": {"pooler_host": "aws-1-ap-southeast-1.pooler.supabase.com"}}}"#,
    )
    .expect("state");
    let host = "aws-1-ap-southeast-1.pooler.supabase.com";
    assert_eq!(
        revealed(d, &["staging"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    assert_eq!(
        revealed(d, &["staging-session"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:5432/postgres?sslmode=require")
    );
    let plan = poolwright(d, &["plan", "staging"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains(&format!(
            "  note    pooler host {host} (learned by the last apply (.poolwright-state.json))\n"
        )),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(&format!(
        "  url     postgresql://postgres.{REF}:****@{host}:6543/postgres?sslmode=require\n"
    )));

    // The config wins over the state file.
    std::fs::write(
        d.join("poolwright.yaml"),
        SUPABASE_NO_HOST.replace(
            "    pool_mode: transaction\n",
            "    pool_mode: transaction\n    pooler_host: aws-0-us-west-1.pooler.supabase.com\n",
        ),
    )
    .expect("write");
    assert!(revealed(d, &["staging"]).contains("@aws-0-us-west-1.pooler.supabase.com:6543/"));

    // A state file that is not one: a clear message, exit 1.
    std::fs::write(d.join(STATE), "{not json").expect("state");
    let broken = poolwright(d, &["url", "staging"], &pw_env());
    assert_eq!(broken.code, 1);
    assert!(
        broken
            .stderr
            .contains(".poolwright-state.json: not a poolwright state file"),
        "{}",
        broken.stderr
    );
}

#[test]
fn neon_offline_without_region_is_known_after_apply() {
    let dir = project(&neon_config(None, None));
    let d = dir.path();
    let url = poolwright(d, &["url", "preview"], &pw_env());
    assert_eq!(url.code, 1);
    assert!(
        url.stderr.starts_with(
            "error: the URL of `preview` is known only after `poolwright apply preview`\n"
        ),
        "{}",
        url.stderr
    );
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains("  url     <known after apply>\n"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("NEON_API_KEY"), "{}", plan.stdout);
}

// ---------------------------------------------------------------------------
// apply against wiremock
// ---------------------------------------------------------------------------

/// One entry of Supabase's pooler configuration, complete per the spec.
pub(crate) fn pooler_entry(kind: &str, identifier: &str, host: &str) -> Value {
    let uri = format!("postgresql://postgres.{REF}:[YOUR-PASSWORD]@{host}:6543/postgres");
    json!({
        "identifier": identifier,
        "database_type": kind,
        "is_using_scram_auth": true,
        "db_user": format!("postgres.{REF}"),
        "db_host": host,
        "db_port": 6543,
        "db_name": "postgres",
        "connection_string": uri,
        "connectionString": uri,
        "default_pool_size": null,
        "max_client_conn": null,
        "pool_mode": "transaction",
    })
}

pub(crate) const PRIMARY_HOST: &str = "aws-1-eu-central-1.pooler.supabase.com";
const REPLICA_HOST: &str = "aws-0-eu-west-2.pooler.supabase.com";

/// The pooler configuration with a read replica listed before the primary.
pub(crate) fn pooler_body() -> Value {
    json!([
        pooler_entry(
            "READ_REPLICA",
            &format!("{REF}-rr-eu-west-2-abcde"),
            REPLICA_HOST
        ),
        pooler_entry("PRIMARY", REF, PRIMARY_HOST),
    ])
}

pub(crate) fn pooler_path() -> String {
    format!("/v1/projects/{REF}/config/database/pooler")
}

pub(crate) fn supabase_env(token: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut env = pw_env();
    if let Some(t) = token {
        env.push(("SUPABASE_ACCESS_TOKEN", t));
    }
    env
}

fn authorization(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .map(|v| v.to_str().expect("ascii header").to_string())
        .unwrap_or_default()
}

/// No secret in anything a run printed.
#[track_caller]
pub(crate) fn no_secrets(run: &Run) {
    for secret in [
        SUPABASE_TOKEN,
        NEON_TOKEN,
        NEON_URI_PASSWORD,
        PASSWORD,
        ENCODED,
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret leaked ({secret}):\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn supabase_apply_keeps_the_primary_pooler_host_and_url_works_offline_after() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(pooler_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(pooler_body()))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let run = poolwright(
        d,
        &[
            "apply",
            "staging",
            "staging-session",
            "--api-url",
            &server.uri(),
        ],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply");
    no_secrets(&run);
    assert_eq!(
        run.stdout,
        format!(
            "staging: postgresql://postgres.{REF}:****@{PRIMARY_HOST}:6543/postgres?sslmode=require\n\
             staging-session: postgresql://postgres.{REF}:****@{PRIMARY_HOST}:5432/postgres?sslmode=require\n"
        )
    );
    assert!(run.stderr.contains(PRIMARY_HOST), "{}", run.stderr);
    assert_eq!(
        state(d),
        json!({"targets": {
            "staging": {"pooler_host": PRIMARY_HOST},
            "staging-session": {"pooler_host": PRIMARY_HOST},
        }})
    );
    let text = std::fs::read_to_string(d.join(STATE)).expect("state");
    assert!(!text.contains(PASSWORD) && !text.contains(ENCODED) && !text.contains(SUPABASE_TOKEN));
    assert!(!text.contains(REPLICA_HOST));

    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), 2, "one request per target");
    for r in &requests {
        assert_eq!(r.method.as_str(), "GET");
        assert_eq!(r.url.path(), pooler_path());
        assert_eq!(r.url.query(), None);
        assert_eq!(authorization(r), format!("Bearer {SUPABASE_TOKEN}"));
    }

    // Offline afterwards: no token, no API.
    assert_eq!(
        revealed(d, &["staging"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:6543/postgres?sslmode=require"
        )
    );
    assert_eq!(
        revealed(d, &["staging-session"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:5432/postgres?sslmode=require"
        )
    );
    assert_eq!(
        revealed(d, &["staging", "--direct"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:5432/postgres?sslmode=require"
        )
    );

    // SUPABASE_API_URL points apply at the API as --api-url does.
    std::fs::remove_file(d.join(STATE)).expect("remove state");
    let mut env = supabase_env(Some(SUPABASE_TOKEN));
    let uri = server.uri();
    env.push(("SUPABASE_API_URL", &uri));
    let run = poolwright(d, &["apply", "staging"], &env);
    succeeds(&run, "apply with SUPABASE_API_URL");
    assert_eq!(state(d)["targets"]["staging"]["pooler_host"], PRIMARY_HOST);
}

#[test]
fn plan_refresh_reads_the_api_and_writes_nothing() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(pooler_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(pooler_body()))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let run = poolwright(
        dir.path(),
        &["plan", "staging", "--refresh", "--api-url", &server.uri()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "plan --refresh");
    no_secrets(&run);
    assert!(
        run.stdout.contains(&format!(
            "  note    pooler host {PRIMARY_HOST} (from the API)\n"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "  url     postgresql://postgres.{REF}:****@{PRIMARY_HOST}:6543/postgres?sslmode=require\n"
    )));
    assert_eq!(
        listing(dir.path()),
        ["poolwright.yaml"],
        "plan writes nothing"
    );
}

/// A Neon target; `endpoint` and `branch` optional, no region (so the hosts
/// come from the API).
pub(crate) fn neon_config(endpoint: Option<&str>, branch: Option<&str>) -> String {
    let mut yaml = format!(
        "version: 1\ntargets:\n  preview:\n    provider: neon\n    project_id: {NEON_PROJECT}\n"
    );
    if let Some(b) = branch {
        yaml.push_str(&format!("    branch: {b}\n"));
    }
    if let Some(e) = endpoint {
        yaml.push_str(&format!("    endpoint: {e}\n"));
    }
    yaml.push_str("    role: app\n    password: \"${DB_PASSWORD}\"\n    database: qbo_mirror\n");
    yaml
}

/// One compute endpoint, complete per Neon's `Endpoint` schema.
fn neon_endpoint(id: &str, branch: &str, kind: &str) -> Value {
    json!({
        "host": format!("{id}.us-east-2.aws.neon.tech"),
        "id": id,
        "project_id": NEON_PROJECT,
        "branch_id": branch,
        "region_id": "aws-us-east-2",
        "autoscaling_limit_min_cu": 0.25,
        "autoscaling_limit_max_cu": 1,
        "type": kind,
        "current_state": "idle",
        "pooler_enabled": false,
        "pooler_mode": "transaction",
        "disabled": false,
        "passwordless_access": true,
        "creation_source": "console",
        "created_at": "2025-01-10T12:00:00Z",
        "updated_at": "2025-01-10T12:00:00Z",
        "settings": {"pg_settings": {}},
        "proxy_host": "us-east-2.aws.neon.tech",
        "suspend_timeout_seconds": 0,
        "provisioner": "k8s-neonvm",
    })
}

pub(crate) const MAIN_BRANCH: &str = "br-main-123456";

fn neon_endpoints_body() -> Value {
    json!({"endpoints": [
        neon_endpoint("ep-read-only-111111", MAIN_BRANCH, "read_only"),
        neon_endpoint("ep-other-branch-222222", "br-dev-654321", "read_write"),
        neon_endpoint("ep-main-333333", MAIN_BRANCH, "read_write"),
    ]})
}

/// What the Neon API answers to connection_uri: the URI with the role's password.
fn neon_uri(endpoint: &str, pooled: bool) -> Value {
    let suffix = if pooled { "-pooler" } else { "" };
    json!({"uri": format!(
        "postgresql://app:{NEON_URI_PASSWORD}@{endpoint}{suffix}.us-east-2.aws.neon.tech/qbo_mirror?sslmode=require&channel_binding=require"
    )})
}

pub(crate) async fn mount_neon(server: &MockServer, endpoint: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/projects/{NEON_PROJECT}/endpoints")))
        .respond_with(ResponseTemplate::new(200).set_body_json(neon_endpoints_body()))
        .mount(server)
        .await;
    for pooled in [true, false] {
        Mock::given(method("GET"))
            .and(path(format!("/projects/{NEON_PROJECT}/connection_uri")))
            .and(query_param("pooled", pooled.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(neon_uri(endpoint, pooled)))
            .mount(server)
            .await;
    }
}

fn query(request: &Request) -> BTreeMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

pub(crate) fn neon_env() -> Vec<(&'static str, &'static str)> {
    let mut env = pw_env();
    env.push(("NEON_API_KEY", NEON_TOKEN));
    env
}

#[test]
fn neon_apply_finds_the_branch_read_write_endpoint_and_keeps_only_hosts() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-main-333333").await;
        server
    });
    let dir = project(&neon_config(None, Some(MAIN_BRANCH)));
    let d = dir.path();
    let run = poolwright(
        d,
        &["apply", "preview", "--api-url", &server.uri()],
        &neon_env(),
    );
    succeeds(&run, "apply");
    no_secrets(&run);
    let pooled = "ep-main-333333-pooler.us-east-2.aws.neon.tech";
    let direct = "ep-main-333333.us-east-2.aws.neon.tech";
    assert_eq!(
        run.stdout,
        format!(
            "preview: postgresql://app:****@{pooled}:5432/qbo_mirror?sslmode=require&channel_binding=require\n"
        )
    );
    assert_eq!(
        state(d),
        json!({"targets": {"preview": {"pooled_host": pooled, "direct_host": direct}}})
    );
    let text = std::fs::read_to_string(d.join(STATE)).expect("state");
    assert!(
        !text.contains(NEON_URI_PASSWORD) && !text.contains(NEON_TOKEN),
        "{text}"
    );

    let requests = rt.block_on(server.received_requests()).expect("recording");
    let seen: Vec<(String, BTreeMap<String, String>)> = requests
        .iter()
        .map(|r| (r.url.path().to_string(), query(r)))
        .collect();
    let uri_query = |pooled: &str| {
        BTreeMap::from(
            [
                ("database_name", "qbo_mirror"),
                ("role_name", "app"),
                ("endpoint_id", "ep-main-333333"),
                ("branch_id", MAIN_BRANCH),
                ("pooled", pooled),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    };
    let uri_path = format!("/projects/{NEON_PROJECT}/connection_uri");
    assert_eq!(
        seen,
        vec![
            (
                format!("/projects/{NEON_PROJECT}/endpoints"),
                BTreeMap::new()
            ),
            (uri_path.clone(), uri_query("true")),
            (uri_path, uri_query("false")),
        ]
    );
    for r in &requests {
        assert_eq!(r.method.as_str(), "GET");
        assert_eq!(authorization(r), format!("Bearer {NEON_TOKEN}"));
    }

    // Offline afterwards.
    assert_eq!(
        revealed(d, &["preview"]),
        format!(
            "postgresql://app:{ENCODED}@{pooled}:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
    assert_eq!(
        revealed(d, &["preview", "--direct"]),
        format!(
            "postgresql://app:{ENCODED}@{direct}:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
    assert_eq!(
        revealed(d, &["preview", "--driver", "asyncpg"]),
        format!("postgresql://app:{ENCODED}@{pooled}:5432/qbo_mirror?sslmode=require")
    );
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains(&format!(
            "  note    pooled host {pooled} (learned by the last apply (.poolwright-state.json))\n"
        )),
        "{}",
        plan.stdout
    );
}

#[test]
fn neon_apply_without_branch_takes_the_first_read_write_endpoint_and_with_endpoint_lists_none() {
    let rt = runtime();
    // No branch: the project's first read-write endpoint.
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-other-branch-222222").await;
        server
    });
    let dir = project(&neon_config(None, None));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &server.uri()],
        &neon_env(),
    );
    succeeds(&run, "apply");
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), 3);
    let q = query(&requests[1]);
    assert_eq!(
        q.get("endpoint_id").map(String::as_str),
        Some("ep-other-branch-222222")
    );
    assert_eq!(q.get("branch_id"), None, "no branch given, none sent");
    assert_eq!(
        state(dir.path())["targets"]["preview"]["pooled_host"],
        "ep-other-branch-222222-pooler.us-east-2.aws.neon.tech"
    );

    // `endpoint:` given: no endpoint list, straight to connection_uri, and
    // NEON_API_URL instead of --api-url.
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-given-444444").await;
        server
    });
    let dir = project(&neon_config(Some("ep-given-444444"), None));
    let mut env = neon_env();
    let uri = server.uri();
    env.push(("NEON_API_URL", &uri));
    let run = poolwright(dir.path(), &["apply", "preview"], &env);
    succeeds(&run, "apply");
    let requests = rt.block_on(server.received_requests()).expect("recording");
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    let uri_path = format!("/projects/{NEON_PROJECT}/connection_uri");
    assert_eq!(paths, [uri_path.as_str(), uri_path.as_str()]);
    let pooled: Vec<String> = requests
        .iter()
        .map(|r| query(r)["pooled"].clone())
        .collect();
    assert_eq!(pooled, ["true", "false"]);
    assert!(
        requests
            .iter()
            .all(|r| query(r)["endpoint_id"] == "ep-given-444444")
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"preview": {
            "pooled_host": "ep-given-444444-pooler.us-east-2.aws.neon.tech",
            "direct_host": "ep-given-444444.us-east-2.aws.neon.tech",
        }}})
    );
}

/// One error-path scenario: what the server answers, what poolwright says.
struct Failure {
    name: &'static str,
    /// Supabase (true) or Neon (false).
    supabase: bool,
    token: bool,
    /// The mocks, mounted in order (earlier `up_to_n_times` mocks first).
    mocks: Vec<Mock>,
    /// (exit code, text the stderr must contain).
    code: i32,
    says: Vec<String>,
    requests: usize,
}

fn respond(path_: &str, response: ResponseTemplate) -> Mock {
    Mock::given(method("GET"))
        .and(path(path_.to_string()))
        .respond_with(response)
}

fn failures() -> Vec<Failure> {
    let sb = "the Supabase Management API";
    let endpoints = format!("/projects/{NEON_PROJECT}/endpoints");
    let uri = format!("/projects/{NEON_PROJECT}/connection_uri");
    let ok_pooler = || ResponseTemplate::new(200).set_body_json(pooler_body());
    vec![
        Failure {
            name: "supabase 401",
            supabase: true,
            token: true,
            mocks: vec![respond(&pooler_path(), ResponseTemplate::new(401))],
            code: 1,
            says: vec![
                format!(
                    "error: {sb} refused the token in SUPABASE_ACCESS_TOKEN (401 Unauthorized)"
                ),
                "hint: set SUPABASE_ACCESS_TOKEN to a valid access token".into(),
            ],
            requests: 1,
        },
        Failure {
            name: "supabase 403",
            supabase: true,
            token: true,
            mocks: vec![respond(&pooler_path(), ResponseTemplate::new(403))],
            code: 1,
            says: vec![format!(
                "error: the token in SUPABASE_ACCESS_TOKEN may not read project `{REF}` (403 Forbidden)"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase 404",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(404).set_body_json(json!({"message": "Project not found"})),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} has no project `{REF}` (404 Not Found)"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase malformed body",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(200).set_body_raw("<html>Bad gateway</html>", "text/html"),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} answered {} with something that is not JSON",
                pooler_path()
            )],
            requests: 1,
        },
        Failure {
            name: "supabase JSON without a PRIMARY entry",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(200).set_body_json(json!([pooler_entry(
                    "READ_REPLICA",
                    "rr",
                    REPLICA_HOST
                )])),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} returned no PRIMARY pooler for project `{REF}`"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase 503 on every attempt",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(503).set_body_string("down"),
            )],
            code: 1,
            says: vec![format!("error: {sb} answered 503 for {}", pooler_path())],
            requests: 4,
        },
        Failure {
            name: "supabase without a token",
            supabase: true,
            token: false,
            mocks: vec![respond(&pooler_path(), ok_pooler())],
            code: 1,
            says: vec![format!(
                "error: SUPABASE_ACCESS_TOKEN is not set, so poolwright cannot ask {sb}"
            )],
            requests: 0,
        },
        Failure {
            name: "supabase 429 then 200",
            supabase: true,
            token: true,
            mocks: vec![
                respond(
                    &pooler_path(),
                    ResponseTemplate::new(429).insert_header("retry-after", "1"),
                )
                .up_to_n_times(1),
                respond(&pooler_path(), ok_pooler()),
            ],
            code: 0,
            says: vec![],
            requests: 2,
        },
        Failure {
            name: "supabase 502 then 200",
            supabase: true,
            token: true,
            mocks: vec![
                respond(&pooler_path(), ResponseTemplate::new(502)).up_to_n_times(1),
                respond(&pooler_path(), ok_pooler()),
            ],
            code: 0,
            says: vec![],
            requests: 2,
        },
        Failure {
            name: "neon 401",
            supabase: false,
            token: true,
            mocks: vec![respond(&endpoints, ResponseTemplate::new(401))],
            code: 1,
            says: vec![
                "error: the Neon API refused the token in NEON_API_KEY (401 Unauthorized)".into(),
                "hint: set NEON_API_KEY to a valid access token".into(),
            ],
            requests: 1,
        },
        Failure {
            name: "neon 404",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(404)
                    .set_body_json(json!({"code": "", "message": "project not found"})),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API has no project `{NEON_PROJECT}` (404 Not Found)"
            )],
            requests: 1,
        },
        Failure {
            name: "neon malformed connection_uri",
            supabase: false,
            token: true,
            mocks: vec![
                respond(
                    &endpoints,
                    ResponseTemplate::new(200).set_body_json(neon_endpoints_body()),
                ),
                respond(
                    &uri,
                    ResponseTemplate::new(200).set_body_json(json!({"uri": 42})),
                ),
            ],
            code: 1,
            says: vec!["error: the Neon API answered connection_uri without a usable `uri`".into()],
            requests: 2,
        },
        Failure {
            name: "neon malformed endpoint list",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(200).set_body_raw("{\"endpoints\": [", "application/json"),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API answered {endpoints} with something that is not JSON"
            )],
            requests: 1,
        },
        Failure {
            name: "neon branch without a read-write endpoint",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(200).set_body_json(json!({"endpoints": [
                    neon_endpoint("ep-read-only-111111", "br-main-123456", "read_only")
                ]})),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API lists no read-write endpoint for project `{NEON_PROJECT}`, branch `{MAIN_BRANCH}`"
            )],
            requests: 1,
        },
        Failure {
            name: "neon without a token",
            supabase: false,
            token: false,
            mocks: vec![],
            code: 1,
            says: vec![
                "error: NEON_API_KEY is not set, so poolwright cannot ask the Neon API".into(),
            ],
            requests: 0,
        },
        Failure {
            name: "neon 429 then 200",
            supabase: false,
            token: true,
            mocks: vec![
                respond(&endpoints, ResponseTemplate::new(429)).up_to_n_times(1),
                respond(
                    &endpoints,
                    ResponseTemplate::new(200).set_body_json(neon_endpoints_body()),
                ),
                respond(&uri, ResponseTemplate::new(429)).up_to_n_times(1),
            ],
            code: 0,
            says: vec![],
            // endpoints twice, connection_uri 429 + pooled + direct.
            requests: 5,
        },
    ]
}

#[test]
fn apply_error_paths_exit_1_with_a_clear_message_and_write_nothing() {
    // Each scenario has its own server; they run side by side (several wait
    // out retries and backoffs).
    std::thread::scope(|scope| {
        let running: Vec<_> = failures()
            .into_iter()
            .map(|failure| scope.spawn(move || check_failure(failure)))
            .collect();
        for scenario in running {
            if let Err(panic) = scenario.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

fn check_failure(failure: Failure) {
    let rt = runtime();
    let name = failure.name;
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        for mock in failure.mocks {
            mock.mount(&server).await;
        }
        if !failure.supabase {
            // Behind the scenario's own mocks: the happy connection_uri.
            mount_neon(&server, "ep-main-333333").await;
        }
        server
    });
    let (yaml, target, env) = if failure.supabase {
        let token = failure.token.then_some(SUPABASE_TOKEN);
        (SUPABASE_NO_HOST.to_string(), "staging", supabase_env(token))
    } else {
        let mut env = pw_env();
        if failure.token {
            env.push(("NEON_API_KEY", NEON_TOKEN));
        }
        (neon_config(None, Some(MAIN_BRANCH)), "preview", env)
    };
    let dir = project(&yaml);
    let started = Instant::now();
    let run = poolwright(
        dir.path(),
        &["apply", target, "--api-url", &server.uri()],
        &env,
    );
    assert_eq!(run.code, failure.code, "{name}: exit code\n{}", run.stderr);
    no_secrets(&run);
    for text in &failure.says {
        assert!(
            run.stderr.contains(text.as_str()),
            "{name}: stderr lacks {text:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), failure.requests, "{name}: requests");
    if failure.code == 0 {
        assert!(
            dir.path().join(STATE).is_file(),
            "{name}: the state is written"
        );
        if name.contains("429") && failure.supabase {
            // Retry-After: 1 was honoured.
            assert!(started.elapsed() >= Duration::from_millis(900), "{name}");
        }
    } else {
        assert_eq!(run.stdout, "", "{name}: stdout");
        assert_eq!(
            listing(dir.path()),
            ["poolwright.yaml"],
            "{name}: wrote something"
        );
    }
}

/// Targets apply one after another, but the state is written only when all
/// succeeded: a failure after a success changes nothing on disk.
#[test]
fn a_failed_apply_leaves_an_earlier_state_file_as_it_was() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        respond(
            &pooler_path(),
            ResponseTemplate::new(200).set_body_json(pooler_body()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
        respond(&pooler_path(), ResponseTemplate::new(401))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let before = "{\n  \"targets\": {\n    \"staging\": {\n      \"pooler_host\": \"aws-0-old.pooler.supabase.com\"\n    }\n  }\n}\n";
    std::fs::write(dir.path().join(STATE), before).expect("state");
    let run = poolwright(
        dir.path(),
        &[
            "apply",
            "staging",
            "staging-session",
            "--api-url",
            &server.uri(),
        ],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("(401 Unauthorized)"), "{}", run.stderr);
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(
        requests.len(),
        2,
        "the first target succeeded, the second failed"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(STATE)).expect("state"),
        before
    );
    assert_eq!(listing(dir.path()), [STATE, "poolwright.yaml"]);
}

// ---------------------------------------------------------------------------
// apply against Prism and the providers' published specs
// ---------------------------------------------------------------------------

/// `<repo>/../shared/specs/<file>`, or None (with a notice) where the
/// directory does not exist, as in a fresh clone.
fn spec(file: &str) -> Option<PathBuf> {
    let dir = root().join("../shared/specs");
    if !dir.is_dir() {
        eprintln!(
            "NOTICE: {} does not exist (a fresh clone has no ../shared): the Prism tests against the published API specs are skipped",
            dir.display()
        );
        return None;
    }
    let path = dir.join(file);
    assert!(path.is_file(), "{} is missing from {}", file, dir.display());
    Some(path)
}

fn prism_bin() -> Option<PathBuf> {
    let bin = root().join("target/test-node/node_modules/.bin/prism");
    if bin.exists() {
        return Some(bin);
    }
    if require_servers() {
        panic!(
            "POOLWRIGHT_REQUIRE_SERVERS=1 but Prism is not installed at {}; run scripts/install-test-deps",
            bin.display()
        );
    }
    eprintln!(
        "SKIP: Prism is not installed ({}); run scripts/install-test-deps",
        bin.display()
    );
    None
}

/// A Prism server on a free port, killed on drop. Its log (stdout and
/// stderr) goes to a file for the assertions.
struct Prism {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    /// `prism mock --errors` on `spec`, or `prism proxy --errors` to `upstream`.
    fn start(bin: &Path, spec: &Path, upstream: Option<&str>) -> Prism {
        let mut failures = Vec::new();
        // Another process may take the port between free_port() and Prism's
        // bind; Prism then exits: try another port.
        for _ in 0..3 {
            match Prism::try_start(bin, spec, upstream) {
                Ok(prism) => return prism,
                Err(e) => failures.push(e),
            }
        }
        panic!("Prism did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(bin: &Path, spec: &Path, upstream: Option<&str>) -> Result<Prism, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("prism.log");
        let port = free_port();
        let out = File::create(&log).expect("prism log");
        let mut cmd = Command::new(bin);
        cmd.arg(if upstream.is_some() { "proxy" } else { "mock" })
            .args(["--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .args(upstream)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut prism = Prism {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answers = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok();
            if answers && prism.log_text().contains("Prism is listening") {
                return Ok(prism);
            }
            if let Ok(Some(status)) = prism.child.try_wait() {
                return Err(format!("prism exited ({status}):\n{}", prism.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "prism did not answer within 60 s:\n{}",
                    prism.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests Prism validated against the spec and let through.
    fn passed(&self) -> usize {
        self.log_text()
            .matches("The request passed the validation rules")
            .count()
    }

    /// Prism's complaints: validation errors and violations (it marks them ✖).
    fn complaints(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains('✖') || l.contains("Violation"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url` (with a bearer token) as a test's own client: (status, body).
fn http_get(url: &str, token: Option<&str>) -> (u16, String) {
    // reqwest is built without a default TLS provider; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime().block_on(async {
        let mut request = reqwest::Client::new().get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    })
}

/// Prism in mock mode answers from the Supabase spec (inventing values from
/// the schema); poolwright's request must pass its validation, and the host
/// poolwright keeps is the PRIMARY entry's `db_host` of that answer.
#[test]
fn prism_supabase_mock_accepts_the_request_and_the_primary_host_is_kept() {
    let Some(spec) = spec("supabase-management-api.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let prism = Prism::start(&bin, &spec, None);
    // Prism serves the paths as the spec writes them (it has no servers entry).
    let (status, body) = http_get(
        &format!("{}{}", prism.url(), pooler_path()),
        Some(SUPABASE_TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("Prism answers JSON");
    let primary = answer
        .as_array()
        .expect("an array")
        .iter()
        .find(|e| e["database_type"] == "PRIMARY")
        .and_then(|e| e["db_host"].as_str())
        .expect("a PRIMARY entry with a db_host")
        .to_string();
    assert_eq!(prism.passed(), 1);

    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let run = poolwright(
        d,
        &["apply", "staging", "--api-url", &prism.url()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply against Prism");
    no_secrets(&run);
    assert_eq!(
        prism.passed(),
        2,
        "Prism validated poolwright's request:\n{}",
        prism.log_text()
    );
    assert_eq!(prism.complaints(), Vec::<String>::new());
    assert_eq!(
        state(d),
        json!({"targets": {"staging": {"pooler_host": primary}}})
    );
    assert_eq!(
        revealed(d, &["staging"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{primary}:6543/postgres?sslmode=require")
    );
    // staging-session was not applied: its URL stays unknown.
    assert_eq!(
        poolwright(d, &["url", "staging-session"], &pw_env()).code,
        1
    );

    // Prism does validate: a request the spec forbids gets 422.
    let (status, _) = http_get(
        &format!(
            "{}/v1/projects/NOT-A-REF/config/database/pooler",
            prism.url()
        ),
        Some(SUPABASE_TOKEN),
    );
    assert_eq!(status, 422);
}

/// Prism in mock mode on the Neon spec: the endpoint list and connection_uri
/// requests must pass validation. The spec has no example for
/// connection_uri, so Prism answers `{"uri": "string"}` and poolwright must
/// say the answer has no usable URI (and write nothing); that answer only
/// comes after validation passed.
#[test]
fn prism_neon_mock_accepts_the_requests() {
    let Some(spec) = spec("neon-api-v2.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let prism = Prism::start(&bin, &spec, None);
    // Prism serves the paths without the server URL's base path (/api/v2),
    // so --api-url is Prism's root.
    let (status, _) = http_get(
        &format!("{}/api/v2/projects/{NEON_PROJECT}/endpoints", prism.url()),
        Some(NEON_TOKEN),
    );
    assert_eq!(status, 404);
    let (status, _) = http_get(
        &format!("{}/projects/{NEON_PROJECT}/endpoints", prism.url()),
        Some(NEON_TOKEN),
    );
    assert_eq!(status, 200);
    let before = prism.complaints().len();
    assert_eq!(before, 1, "only the /api/v2 request failed");
    let passed = prism.passed();

    let dir = project(&neon_config(None, Some("br-aged-salad-637688")));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &prism.url()],
        &neon_env(),
    );
    no_secrets(&run);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "target preview (Neon pooler)\nerror: the Neon API answered connection_uri without a usable `uri`\n"
    );
    assert_eq!(listing(dir.path()), ["poolwright.yaml"]);
    // The endpoint list and the first connection_uri passed validation.
    assert_eq!(prism.passed(), passed + 2, "{}", prism.log_text());
    assert_eq!(prism.complaints().len(), before, "{}", prism.log_text());

    // The spec's security scheme: without a token Prism answers 401.
    let (status, _) = http_get(
        &format!("{}/projects/{NEON_PROJECT}/endpoints", prism.url()),
        None,
    );
    assert_eq!(status, 401);
}

/// Prism in proxy mode validates each request poolwright sends AND each
/// answer against the published spec, and forwards valid requests to
/// wiremock, which answers like the real API: the whole apply, checked
/// against the spec both ways.
#[test]
fn prism_proxy_validates_supabase_requests_and_answers() {
    let Some(spec) = spec("supabase-management-api.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let rt = runtime();
    let upstream = rt.block_on(async {
        let server = MockServer::start().await;
        respond(
            &pooler_path(),
            ResponseTemplate::new(200).set_body_json(pooler_body()),
        )
        .mount(&server)
        .await;
        server
    });
    let prism = Prism::start(&bin, &spec, Some(&upstream.uri()));
    let dir = project(SUPABASE_NO_HOST);
    let run = poolwright(
        dir.path(),
        &["apply", "staging", "--api-url", &prism.url()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply through Prism");
    no_secrets(&run);
    assert_eq!(
        prism.complaints(),
        Vec::<String>::new(),
        "{}",
        prism.log_text()
    );
    let requests = rt
        .block_on(upstream.received_requests())
        .expect("recording");
    assert_eq!(requests.len(), 1, "Prism forwarded the (valid) request");
    assert_eq!(
        authorization(&requests[0]),
        format!("Bearer {SUPABASE_TOKEN}")
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"staging": {"pooler_host": PRIMARY_HOST}}})
    );
}

#[test]
fn prism_proxy_validates_neon_requests_and_answers() {
    let Some(spec) = spec("neon-api-v2.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let rt = runtime();
    let upstream = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-main-333333").await;
        server
    });
    let prism = Prism::start(&bin, &spec, Some(&upstream.uri()));
    let dir = project(&neon_config(None, Some(MAIN_BRANCH)));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &prism.url()],
        &neon_env(),
    );
    succeeds(&run, "apply through Prism");
    no_secrets(&run);
    assert_eq!(
        prism.complaints(),
        Vec::<String>::new(),
        "{}",
        prism.log_text()
    );
    let requests = rt
        .block_on(upstream.received_requests())
        .expect("recording");
    assert_eq!(requests.len(), 3, "Prism forwarded the (valid) requests");
    assert!(
        requests
            .iter()
            .all(|r| authorization(r) == format!("Bearer {NEON_TOKEN}"))
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"preview": {
            "pooled_host": "ep-main-333333-pooler.us-east-2.aws.neon.tech",
            "direct_host": "ep-main-333333.us-east-2.aws.neon.tech",
        }}})
    );
    assert_eq!(
        revealed(dir.path(), &["preview"]),
        format!(
            "postgresql://app:{ENCODED}@ep-main-333333-pooler.us-east-2.aws.neon.tech:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
}
