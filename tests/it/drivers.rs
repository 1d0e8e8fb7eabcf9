//! Real drivers through a real PgBouncer in transaction mode: what
//! `poolwright url TARGET --driver D` prints (the URL and the settings
//! snippet) must work with the driver itself, on every PgBouncer the tests
//! run (bookworm's 1.18, which cannot keep prepared statements across
//! transactions, and 1.24, which tracks them with `max_prepared_statements`).
//!
//! Per PgBouncer: one cluster, `poolwright apply`, a PgBouncer with a pool of
//! two server connections, so six clients' consecutive transactions land on
//! different server connections. Per driver, tests/drivers/ runs a workload
//! (repeated parameterised statements, each in its own transaction, plus more
//! distinct statements than the drivers' statement caches hold):
//!
//! * `snippet`: the URL and the snippet, executed as printed: must pass.
//! * `plain` (`named` for node-postgres): the URL alone, with the library's
//!   defaults (named queries for node-postgres). Drivers that prepare
//!   statements must fail with `prepared statement ... already exists / does
//!   not exist` where the pooler does not track them (1.18), and pass where it
//!   does (1.24): the first shows the snippet's flags are needed, the second
//!   that dropping them there is right.
//!
//! psycopg 3 runs twice: on the libpq psycopg[binary] bundles (17+) and on
//! the system's (bookworm: 15, what a plain `pip install psycopg` uses),
//! because below libpq 17 psycopg drops statements with SQL `DEALLOCATE`,
//! which PgBouncer does not track.
//!
//! Every run is a matrix line; all cells run before the test fails, so one
//! log shows the whole picture. The expectations come from the facts (the
//! PgBouncer version, the `max_prepared_statements` it was given, psycopg's
//! libpq), not from what poolwright claims. The two builds run side by side,
//! each with its own servers. Needs the venv and node-postgres from
//! scripts/install-test-deps; without them the test skips, unless
//! POOLWRIGHT_REQUIRE_SERVERS=1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use crate::support::pg::{Spec, apply, cluster_with_app, pw, scratch, start_bouncer};
use crate::support::{self, servers::*};

/// Server connections per (database, user): two, so that concurrent clients
/// take turns on them and one client's next transaction often runs on the
/// other one.
const POOL_SIZE: u32 = 2;

/// What runs a driver's workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// psql for the login, pgbench `-M extended` (libpq's parameterised
    /// queries, unnamed statements) for the workload.
    Libpq,
    /// tests/drivers/python_driver.py in target/test-venv.
    Python,
    /// tests/drivers/node_driver.js with target/test-node's `pg`.
    Node,
}

/// A driver under test and, when its library names statements by default,
/// the mode that shows it.
struct Case {
    /// For the matrix: the driver, and what is special about the run.
    label: &'static str,
    driver: &'static str,
    runner: Runner,
    /// More environment for the workload script.
    env: &'static [(&'static str, &'static str)],
    /// The mode that uses named prepared statements across transactions:
    /// `plain` (the driver does so by default) or `named` (node-postgres,
    /// when a query has a name).
    prepares: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        label: "libpq",
        driver: "libpq",
        runner: Runner::Libpq,
        env: &[],
        prepares: None,
    },
    // psycopg2 never prepares: the URL is all it needs.
    Case {
        label: "psycopg2",
        driver: "psycopg2",
        runner: Runner::Python,
        env: &[],
        prepares: None,
    },
    // `postgresql://` picks SQLAlchemy's default DBAPI: psycopg2 up to 2.0,
    // psycopg 3 since 2.1 (which prepares, see below).
    Case {
        label: "sqlalchemy",
        driver: "sqlalchemy",
        runner: Runner::Python,
        env: &[],
        prepares: None,
    },
    // psycopg 3 prepares a statement on its 6th execution on a connection.
    Case {
        label: "psycopg",
        driver: "psycopg",
        runner: Runner::Python,
        env: &[],
        prepares: Some("plain"),
    },
    Case {
        label: "sqlalchemy-psycopg",
        driver: "sqlalchemy-psycopg",
        runner: Runner::Python,
        env: &[],
        prepares: Some("plain"),
    },
    // asyncpg prepares (and caches) every statement.
    Case {
        label: "asyncpg",
        driver: "asyncpg",
        runner: Runner::Python,
        env: &[],
        prepares: Some("plain"),
    },
    Case {
        label: "sqlalchemy-asyncpg",
        driver: "sqlalchemy-asyncpg",
        runner: Runner::Python,
        env: &[],
        prepares: Some("plain"),
    },
    // psycopg 3 on the system's libpq (bookworm: 15) instead of the one
    // psycopg[binary] bundles (17+): below 17 psycopg evicts statements from
    // its cache (more than 100) with SQL `DEALLOCATE name`, which PgBouncer
    // passes on untranslated, instead of a protocol Close it tracks.
    Case {
        label: "psycopg(sys libpq)",
        driver: "psycopg",
        runner: Runner::Python,
        env: &[("PSYCOPG_IMPL", "python")],
        prepares: Some("plain"),
    },
    Case {
        label: "node-postgres",
        driver: "node-postgres",
        runner: Runner::Node,
        env: &[],
        prepares: Some("named"),
    },
];

fn venv_python() -> PathBuf {
    support::root().join("target/test-venv/bin/python")
}

fn node_modules() -> PathBuf {
    support::root().join("target/test-node/node_modules")
}

fn script(name: &str) -> PathBuf {
    support::root().join("tests/drivers").join(name)
}

/// Why the drivers cannot run here, if they cannot.
fn drivers_missing() -> Option<String> {
    let imports = Command::new(venv_python())
        .args([
            "-c",
            "import sqlalchemy, greenlet, psycopg2, psycopg, asyncpg",
        ])
        .output();
    if !imports.is_ok_and(|o| o.status.success()) {
        return Some(format!(
            "no Python venv with the drivers at {}",
            venv_python().display()
        ));
    }
    if !node_modules().join("pg").is_dir() {
        return Some(format!("no node-postgres in {}", node_modules().display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no `node` on PATH".into());
    }
    None
}

/// What one run showed.
struct Outcome {
    passed: bool,
    /// `OK ...` or the error line.
    detail: String,
    /// The library versions the runner reported.
    lib: String,
    millis: u128,
    /// All it printed, for a failure message.
    output: String,
}

/// What a cell of the matrix must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Pass,
    /// Fails on a prepared statement another server connection has (or
    /// lacks).
    PreparedStatementError,
}

impl Expect {
    fn met_by(self, o: &Outcome) -> bool {
        match self {
            Expect::Pass => o.passed,
            // Mostly an error; sometimes worse: a statement prepared under
            // the same name by another client runs instead and returns a
            // wrong answer (the workload checks every result).
            Expect::PreparedStatementError => {
                !o.passed
                    && ((o.detail.contains("prepared statement")
                        && (o.detail.contains("already exists")
                            || o.detail.contains("does not exist")))
                        || (o.detail.contains("query returned") && o.detail.contains("expected")))
            }
        }
    }
}

/// One line of the matrix.
struct Cell {
    version: String,
    label: &'static str,
    mode: &'static str,
    expect: Expect,
    outcome: Outcome,
}

impl Cell {
    fn ok(&self) -> bool {
        self.expect.met_by(&self.outcome)
    }

    fn line(&self) -> String {
        format!(
            "matrix: PgBouncer {} | {:<18} | {:<7} | {} | expected {} | {} | {} ms",
            self.version,
            self.label,
            self.mode,
            if self.outcome.passed { "PASS" } else { "FAIL" },
            match self.expect {
                Expect::Pass => "pass",
                Expect::PreparedStatementError => "prepared-statement error",
            },
            if self.ok() {
                "as expected"
            } else {
                "UNEXPECTED"
            },
            self.outcome.millis,
        )
    }
}

/// The `LIB`, `OK` and `ERROR` lines of a workload script's stdout.
fn outcome_of(out: &Output, started: Instant) -> Outcome {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
    };
    let ok = line("OK ");
    Outcome {
        passed: out.status.success() && ok.is_some(),
        detail: ok
            .or_else(|| line("ERROR "))
            .unwrap_or_else(|| format!("no result line ({})", out.status)),
        lib: line("LIB ")
            .map(|l| l["LIB ".len()..].to_string())
            .unwrap_or_default(),
        millis: started.elapsed().as_millis(),
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Runs a workload script with only the URL and the snippet in its
/// environment, so no PG* variable of the shell can help it connect.
fn run_script(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    url: &str,
    snippet: &str,
) -> Outcome {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("POOLWRIGHT_SNIPPET", snippet)
        .env("NODE_PATH", node_modules())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    outcome_of(&out, started)
}

/// libpq: psql logs in with the URL, then pgbench runs the workload over it
/// (a URL as pgbench's dbname is expanded by libpq): 6 clients x 40
/// transactions of a parameterised SELECT with the extended protocol.
fn run_libpq(url: &str, dir: &Path) -> Outcome {
    let started = Instant::now();
    let who = psql_url(url, "select current_user");
    let said = String::from_utf8_lossy(&who.stdout).trim().to_string();
    let lib = Command::new("psql")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !who.status.success() || said != "app" {
        return Outcome {
            passed: false,
            detail: format!("ERROR psql: current_user {said:?}"),
            lib,
            millis: started.elapsed().as_millis(),
            output: String::from_utf8_lossy(&who.stderr).into_owned(),
        };
    }
    let file = dir.join("workload.sql");
    fs::write(
        &file,
        "\\set x random(1, 1000)\nBEGIN;\nSELECT :x::int + 1;\nCOMMIT;\n",
    )
    .expect("write the pgbench script");
    let file = file.to_str().expect("utf-8 path");
    let out = pgbench(
        &[
            "-n", "-M", "extended", "-c", "6", "-j", "2", "-t", "40", "-f", file, url,
        ],
        &[("PGCONNECT_TIMEOUT", "10")],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let processed = all
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .unwrap_or("none");
    let passed = out.status.success() && processed.starts_with("240/");
    Outcome {
        passed,
        detail: if passed {
            format!("OK {processed} transactions")
        } else {
            let error = all.lines().find(|l| l.contains("error")).unwrap_or("");
            format!("ERROR pgbench: processed {processed}; {error}")
        },
        lib,
        millis: started.elapsed().as_millis(),
        output: all,
    }
}

/// `poolwright url prod --driver D --show-password --format json`:
/// (url, settings).
fn driver_url(config: &Path, driver: &str) -> (String, String) {
    let run = pw(
        config,
        &[
            "url",
            "prod",
            "--driver",
            driver,
            "--show-password",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "poolwright url --driver {driver}:\n{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("url --format json: {e}:\n{}", run.stdout));
    let field = |k: &str| {
        json[k]
            .as_str()
            .unwrap_or_else(|| panic!("no string {k:?} in {json}"))
            .to_string()
    };
    assert_eq!(field("driver"), driver, "{json}");
    (field("url"), field("settings"))
}

/// `major.minor` as numbers, for comparing versions.
fn version_number(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether this PgBouncer, as configured, keeps named prepared statements
/// across transactions: protocol-level tracking exists since 1.21 and is on
/// when `max_prepared_statements` is above 0.
fn tracks_prepared_statements(version: &str, ini: &str) -> bool {
    let max = ini
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "max_prepared_statements")
        .and_then(|(_, v)| v.trim().parse::<u32>().ok())
        .unwrap_or(0);
    version_number(version) >= (1, 21) && max > 0
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The libpq version psycopg reported in the `LIB` line (`libpq 180006`).
fn psycopg_libpq(lib: &str) -> Option<u32> {
    let (_, rest) = lib.split_once("libpq ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// What the facts say a run must show. A snippet must always work: that is
/// poolwright's promise. Named statements across transactions (`plain` /
/// `named`) fail unless the pooler tracks them, and psycopg 3 needs libpq 17+
/// on top of that: it evicts with SQL `DEALLOCATE name` otherwise (psycopg
/// docs, "Using prepared statements with PgBouncer").
fn expectation(case: &Case, mode: &str, tracks: bool, lib: &str) -> Expect {
    let psycopg = matches!(case.driver, "psycopg" | "sqlalchemy-psycopg");
    if mode == "snippet" {
        Expect::Pass
    } else if !tracks || (psycopg && psycopg_libpq(lib).is_some_and(|v| v < 170_000)) {
        Expect::PreparedStatementError
    } else {
        Expect::Pass
    }
}

/// Every cell for one PgBouncer build.
fn cells_on(build: &BouncerBuild) -> Vec<Cell> {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.default_pool_size = POOL_SIZE;
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);
    let config = spec.config();
    let ini = fs::read_to_string(dir.path().join("etc/pgbouncer.ini")).expect("pgbouncer.ini");
    let tracks = tracks_prepared_statements(&build.version, &ini);
    eprintln!(
        "===== PgBouncer {} ({}): tracks prepared statements across transactions: {tracks}",
        build.version,
        build.bin.display()
    );

    let mut cells = Vec::new();
    // The snippets first: a failed `plain` run on 1.18 leaves its named
    // statements on the server connections, which only another plain run
    // could trip over.
    let mut runs: Vec<(&Case, &'static str)> = CASES.iter().map(|c| (c, "snippet")).collect();
    runs.extend(
        CASES
            .iter()
            .filter_map(|c| c.prepares.map(|mode| (c, mode))),
    );
    for (case, mode) in runs {
        let (url, settings) = driver_url(&config, case.driver);
        let run = || match case.runner {
            Runner::Libpq => run_libpq(&url, dir.path()),
            Runner::Python => run_script(
                &venv_python(),
                &[
                    script("python_driver.py").to_str().unwrap(),
                    case.driver,
                    mode,
                ],
                case.env,
                &url,
                &settings,
            ),
            Runner::Node => run_script(
                Path::new("node"),
                &[
                    script("node_driver.js").to_str().unwrap(),
                    case.driver,
                    mode,
                ],
                case.env,
                &url,
                &settings,
            ),
        };
        let mut outcome = run();
        let expect = expectation(case, mode, tracks, &outcome.lib);
        // The hazard depends on which server connection each statement
        // lands on; on a loaded machine a run can happen to stay on one.
        // An expected failure counts once any of three runs shows it.
        for _ in 0..2 {
            if !matches!(expect, Expect::PreparedStatementError) || expect.met_by(&outcome) {
                break;
            }
            outcome = run();
        }
        let cell = Cell {
            version: build.version.clone(),
            label: case.label,
            mode,
            expect,
            outcome,
        };
        // One eprintln per cell: the other build's thread prints too.
        let shown = if mode == "snippet" && !settings.is_empty() {
            format!("\n    snippet:\n{}", indent(&settings))
        } else {
            String::new()
        };
        eprintln!("{}\n    {}{shown}", cell.line(), cell.outcome.detail);
        cells.push(cell);
    }
    cells
}

#[test]
fn driver_settings_work_through_pgbouncer() {
    if !require_servers() {
        return;
    }
    if let Some(reason) = drivers_missing() {
        if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but {reason}; run scripts/install-test-deps");
        }
        eprintln!("SKIP: driver test skipped: {reason}; run scripts/install-test-deps");
        return;
    }
    let builds = pgbouncer_builds();
    assert!(!builds.is_empty(), "no PgBouncer to test");
    let started = Instant::now();
    // Each build has its own cluster and PgBouncer: run them side by side.
    let cells: Vec<Cell> = std::thread::scope(|s| {
        let handles: Vec<_> = builds.iter().map(|b| s.spawn(|| cells_on(b))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a PgBouncer build's run panicked"))
            .collect()
    });

    eprintln!(
        "\n===== driver matrix ({} ms)",
        started.elapsed().as_millis()
    );
    let mut libs: Vec<&str> = cells.iter().map(|c| c.outcome.lib.as_str()).collect();
    libs.sort_unstable();
    libs.dedup();
    for lib in libs.iter().filter(|l| !l.is_empty()) {
        eprintln!("libraries: {lib}");
    }
    for cell in &cells {
        eprintln!("{}", cell.line());
    }
    let unexpected: Vec<String> = cells
        .iter()
        .filter(|c| !c.ok())
        .map(|c| {
            format!(
                "{}\n{}\n--- output (first 40 lines):\n{}",
                c.line(),
                c.outcome.detail,
                c.outcome
                    .output
                    .lines()
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {} cells went against the facts:\n\n{}",
        unexpected.len(),
        cells.len(),
        unexpected.join("\n\n")
    );
}
