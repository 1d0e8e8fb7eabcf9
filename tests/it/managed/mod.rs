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

pub(crate) use crate::support::project;

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

/// Apply against wiremock.
mod apply_mocked;
/// Libpq accepts every emitted URL.
mod libpq;
/// A user's own manifests.
mod manifests;
/// Offline: the Supabase pooler host from the config, the state file, or not yet.
mod offline;
/// Apply against Prism and the providers' published specs.
mod prism;
/// URLs per provider and pool mode.
mod urls;

#[allow(unused_imports)]
pub(crate) use self::apply_mocked::*;
#[allow(unused_imports)]
pub(crate) use self::libpq::*;
#[allow(unused_imports)]
pub(crate) use self::manifests::*;
#[allow(unused_imports)]
pub(crate) use self::offline::*;
#[allow(unused_imports)]
pub(crate) use self::prism::*;
#[allow(unused_imports)]
pub(crate) use self::urls::*;
