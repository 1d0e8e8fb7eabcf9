//! `poolwright verify` and `poolwright status` against real servers: a
//! throwaway PostgreSQL 15 and the PgBouncer that `apply` configured, on
//! both PgBouncer builds (1.18 and 1.24).
//!
//! A healthy target must pass every check with real figures; each way of
//! breaking it (wrong password, PgBouncer stopped, running config drifted
//! from the file, pools above the live max_connections, the server's own
//! address given as the pooler's, TLS asked of a pooler without it) must
//! fail the right check with the server's words, the cause and the fix.
//! Every run is printed, so the CI log shows what verify said.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use poolwright::secret::Secret;
use poolwright::url::PgUrl;
use poolwright::verify::connect::{self, Endpoint, Session};
use poolwright::verify::diagnose::{Situation, Via, diagnose};

use crate::support::pg::{
    ADMIN_PASSWORD, APP_PASSWORD, ENV, Spec, apply, cluster_with_app, for_each_pgbouncer, pw,
    scratch, start_bouncer,
};
use crate::support::{self, Run, servers::*};

/// `poolwright verify prod ARGS...`, printed for the log.
fn verify(spec: &Spec, args: &[&str]) -> Run {
    verify_with(spec, args, ENV)
}

fn verify_with(spec: &Spec, args: &[&str], env: &[(&str, &str)]) -> Run {
    let config = spec.config();
    let mut all = vec!["--config", config.to_str().unwrap(), "verify", "prod"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let run = support::poolwright(spec.dir.as_path(), &all, env);
    eprintln!(
        "--- poolwright verify prod {} (exit {}, {} ms):\n{}{}",
        args.join(" "),
        run.code,
        started.elapsed().as_millis(),
        run.stdout,
        run.stderr
    );
    run
}

/// The line of `check` (with its fix line, if any): "PASS  login: ...".
fn check<'a>(run: &'a Run, name: &str) -> (&'a str, String) {
    let mut lines = run.stdout.lines();
    while let Some(line) = lines.next() {
        let Some((status, rest)) = line.split_once("  ") else {
            continue;
        };
        if rest.starts_with(&format!("{name}: ")) {
            let fix = lines
                .next()
                .and_then(|l| l.trim_start().strip_prefix("fix: "))
                .unwrap_or("")
                .to_string();
            return (status, format!("{line}\n      fix: {fix}"));
        }
    }
    panic!("no `{name}` line in:\n{}", run.stdout)
}

/// Asserts `check` has `status` and its text (line and fix) holds each of `words`.
fn expect(run: &Run, name: &str, status: &str, words: &[&str]) {
    let (got, text) = check(run, name);
    assert_eq!(got, status, "{name}: {text}");
    for w in words {
        assert!(text.contains(w), "{name}: no {w:?} in\n{text}");
    }
}

/// The passwords never show, in any format.
fn assert_masked(run: &Run) {
    for secret in [APP_PASSWORD, ADMIN_PASSWORD, "p%40ss", "p@ss"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret:?} in the output"
        );
    }
}

/// A self-signed certificate for PgBouncer's client TLS, readable by the
/// service user; returns the `[pgbouncer]` lines (leaked: Spec holds a
/// `&'static str`).
fn client_tls(dir: &Path) -> &'static str {
    let key = dir.join("tls.key");
    let cert = dir.join("tls.crt");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hand_to_service_user(&key);
    hand_to_service_user(&cert);
    Box::leak(
        format!(
            "      client_tls_sslmode: require\n      client_tls_key_file: \"{}\"\n      client_tls_cert_file: \"{}\"\n",
            key.display(),
            cert.display()
        )
        .into_boxed_str(),
    )
}

/// A number before `unit` in `text` ("0.21 ms" -> 0.21), the first after `after`.
fn figure(text: &str, after: &str) -> f64 {
    let rest = &text[text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {text}"))
        + after.len()..];
    rest.trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {after:?} in {text}"))
}

#[test]
fn a_healthy_target_passes_every_check_with_real_figures() {
    for_each_pgbouncer(healthy_on);
}

fn healthy_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    spec.extra = client_tls(dir.path());
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    let run = verify(&spec, &["--driver", "psycopg2"]);
    assert_eq!(run.code, 0, "a healthy target failed verify");
    assert_masked(&run);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    let port = spec.pool_port.to_string();
    expect(
        &run,
        "login",
        "PASS",
        &["as app to qbo_mirror", &port, "via SCRAM-SHA-256"],
    );
    expect(&run, "tls", "PASS", &["TLSv1.", "_GCM_"]);
    expect(
        &run,
        "version",
        "PASS",
        &[&format!("PgBouncer {}.", build.version)],
    );
    expect(
        &run,
        "config",
        "PASS",
        &["matches poolwright.yaml", "1 database compared"],
    );
    let (_, config) = check(&run, "config");
    assert!(
        figure(&config, "yaml: ") >= 15.0,
        "too few settings compared: {config}"
    );
    // 20 clients in a row, one server backend at a time: far below 20.
    let (_, pooling) = check(&run, "pooling");
    expect(
        &run,
        "pooling",
        "PASS",
        &["20 connections in a row were served by", "pool cap 12"],
    );
    let backends = figure(&pooling, "served by");
    assert!((1.0..=3.0).contains(&backends), "{pooling}");
    let now = figure(&pooling, "the database has");
    assert!(
        (1.0..=12.0).contains(&now),
        "the pooler kept no server connection: {pooling}"
    );
    expect(
        &run,
        "pools",
        "PASS",
        &[
            "qbo_mirror/app: transaction mode",
            "of 12 allowed",
            "0 waiting",
        ],
    );
    expect(
        &run,
        "budget",
        "PASS",
        &[
            "1 pool: 12 connections x 1 process = 12 <= 40 max_connections - 3 superuser_reserved_connections - 4 direct_connections = 33 (read from the server)",
        ],
    );
    expect(
        &run,
        "prepared statements",
        "PASS",
        &["psycopg2 does not prepare"],
    );
    expect(&run, "session state", "WARN", &["SET LOCAL"]);
    expect(
        &run,
        "server login",
        "PASS",
        &["new server connections can log in"],
    );
    let (_, latency) = check(&run, "latency");
    expect(&run, "latency", "PASS", &["30 samples each"]);
    let pooled = figure(&latency, "through the pooler: median");
    let direct = figure(&latency, "direct: median");
    assert!(pooled > 0.0 && direct > 0.0 && pooled < 100.0, "{latency}");
    // 24 clients at once (twice the pool) stay within the pool.
    let (_, crowd) = check(&run, "concurrency");
    expect(
        &run,
        "concurrency",
        "PASS",
        &["24 clients at once were served by", "pool cap 12"],
    );
    let served = figure(&crowd, "served by");
    assert!((1.0..=12.0).contains(&served), "{crowd}");
    let peak = figure(&crowd, "peaked at");
    assert!(peak <= 13.0, "more backends than the pool: {crowd}");
    expect(&run, "slots", "PASS", &["PgBouncer's, 0 not"]);
    let headline = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        headline.starts_with("verdict: POOLED: 20 connections in a row were served by")
            && headline.ends_with("no check fails"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("summary: 12 pass, 1 warn, 0 fail"),
        "{}",
        run.stdout
    );

    // The same as JSON for CI, and as Markdown.
    let json = pw(
        &spec.config(),
        &["--format", "json", "verify", "prod", "--samples", "5"],
    );
    assert_eq!(json.code, 0, "{json:?}");
    assert_masked(&json);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("verify --format json");
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["target"], "prod");
    let checks = doc["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "pooling" && c["status"] == "pass"),
        "{doc}"
    );
    // Without --driver the prepared-statement hazard is reported, never failed.
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{doc}");
    let md = pw(
        &spec.config(),
        &["--format", "markdown", "verify", "prod", "--samples", "5"],
    );
    assert_eq!(md.code, 0, "{md:?}");
    assert!(
        md.stdout.contains("| status | check | result | fix |"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("| PASS | pooling |"), "{}", md.stdout);
}

/// A runtime for the library-level logins of these tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The URL of `user` on 127.0.0.1:`port`.
fn url(port: u16, user: &str, password: &str, db: &str) -> PgUrl {
    PgUrl::new("127.0.0.1", port, db).with_user(user, Some(Secret::known(password)))
}

/// The error a login to `url` gets (it must fail).
fn login_error(rt: &tokio::runtime::Runtime, url: &PgUrl) -> connect::ConnectError {
    let end = Endpoint::from_url(url).expect("password known");
    match rt.block_on(connect::connect(&end, Duration::from_secs(10))) {
        Ok(s) => {
            rt.block_on(s.close());
            panic!("{} logged in", url.masked())
        }
        Err(e) => {
            eprintln!("login to {} failed: {e}", url.masked());
            e
        }
    }
}

fn situation<'a>(via: Via, e: &'a connect::ConnectError, user: &'a str) -> Situation<'a> {
    Situation {
        via,
        place: &e.place,
        user,
        database: "qbo_mirror",
        target: "prod",
        provider: "pgbouncer",
        code: e.code.as_deref(),
    }
}

#[test]
fn wrong_password_unknown_user_and_a_stopped_pgbouncer_say_why() {
    for_each_pgbouncer(broken_logins_on);
}

fn broken_logins_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let bouncer = start_bouncer(&mut spec, apply);
    let place = format!("127.0.0.1:{}", spec.pool_port);

    // A password that is not app's: PgBouncer refuses it (SCRAM against
    // userlist.txt's verifier), and so does the server on the direct URL.
    let wrong = verify_with(
        &spec,
        &[],
        &[
            ("APP_PASSWORD", "not-the-password"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(wrong.code, 1, "a wrong password passed verify");
    assert!(
        wrong.stdout.contains("authentication failed"),
        "{}",
        wrong.stdout
    );
    expect(
        &wrong,
        "login",
        "FAIL",
        &[
            &place,
            "refused the password of `app`",
            "userlist.txt",
            "poolwright apply prod",
        ],
    );
    expect(&wrong, "pooling", "WARN", &["not measured"]);
    expect(
        &wrong,
        "budget",
        "WARN",
        &["PostgreSQL at 127.0.0.1", "not the role's current password"],
    );
    assert!(wrong.stderr.contains("check"), "{}", wrong.stderr);
    assert!(
        !wrong.stdout.contains("not-the-password"),
        "the password was printed"
    );

    // A user PgBouncer does not know: its own text, and the cause names the user.
    let rt = runtime();
    let e = login_error(
        &rt,
        &url(spec.pool_port, "nobody", "whatever", "qbo_mirror"),
    );
    let d = diagnose(&e.text, &situation(Via::Pooler, &e, "nobody"));
    eprintln!("unknown user: {:?} -> {d:?}", e.text);
    assert!(
        e.text.contains("no such user") || e.text.contains("authentication failed"),
        "{}",
        e.text
    );
    assert!(d.cause.contains("`nobody`"), "{d:?}");
    assert!(d.fix.contains("poolwright apply prod"), "{d:?}");

    // PgBouncer stopped: refused, with the address tried and how to start it.
    drop(bouncer);
    let stopped = verify(&spec, &[]);
    assert_eq!(stopped.code, 1, "verify passed with PgBouncer stopped");
    expect(
        &stopped,
        "login",
        "FAIL",
        &[
            &place,
            "Connection refused",
            "nothing listens on",
            "systemctl start pgbouncer",
            "listen_port",
        ],
    );
    expect(&stopped, "pooling", "WARN", &["not measured"]);
    // The server itself is fine, and verify still says what it can.
    expect(&stopped, "budget", "PASS", &["<= 40 max_connections"]);
}

/// The value of `key` in SHOW CONFIG through the admin console.
fn running_value(spec: &Spec, key: &str) -> Option<String> {
    let admin = format!(
        "postgresql://pgbadmin:{ADMIN_PASSWORD}@127.0.0.1:{}/pgbouncer",
        spec.pool_port
    );
    let out = psql_url(&admin, "SHOW CONFIG");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut cols = l.split('|');
        (cols.next() == Some(key)).then(|| cols.next().unwrap_or("").to_string())
    })
}

/// Polls until PgBouncer runs with `key` = `value` (SIGHUP is asynchronous).
fn wait_for_running(spec: &Spec, key: &str, value: &str) {
    let started = Instant::now();
    while running_value(spec, key).as_deref() != Some(value) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "PgBouncer never ran with {key} = {value}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_running_config_that_differs_from_the_file_is_drift() {
    for_each_pgbouncer(drift_on);
}

fn drift_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    apply(&spec);
    let bouncer = start_bouncer(&mut spec, apply);

    // Someone edits pgbouncer.ini by hand and reloads.
    let ini_path = spec.etc("pgbouncer.ini");
    let ini = fs::read_to_string(&ini_path).unwrap();
    assert!(ini.contains("default_pool_size = 10\n"), "{ini}");
    fs::write(
        &ini_path,
        ini.replace("default_pool_size = 10\n", "default_pool_size = 7\n"),
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &bouncer.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for_running(&spec, "default_pool_size", "7");

    let run = verify(&spec, &[]);
    assert_eq!(run.code, 1, "drift passed verify");
    expect(
        &run,
        "config",
        "FAIL",
        &[
            "drift: 1 differs from poolwright.yaml: default_pool_size = 7 (poolwright.yaml: 10)",
            &format!("{} says 7 too", ini_path.display()),
            "edited by hand",
            "poolwright apply prod --force",
        ],
    );
    expect(&run, "login", "PASS", &[]);
    expect(&run, "pooling", "PASS", &[]);

    // Plain apply refuses to overwrite the hand edit, and changes nothing.
    let refused = pw(&spec.config(), &["apply"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("changed since poolwright wrote it"),
        "{}",
        refused.stderr
    );
    assert!(
        fs::read_to_string(&ini_path)
            .unwrap()
            .contains("default_pool_size = 7\n")
    );

    // The fix the line gives works: apply --force, and verify passes again;
    // the hand edit is kept beside the file.
    let fixed = pw(&spec.config(), &["apply", "--force"]);
    assert_eq!(fixed.code, 0, "{fixed:?}");
    let backup = ini_path.with_file_name("pgbouncer.ini.bak");
    assert!(
        fs::read_to_string(&backup)
            .unwrap()
            .contains("default_pool_size = 7\n")
    );
    wait_for_running(&spec, "default_pool_size", "10");
    let again = verify(&spec, &[]);
    assert_eq!(again.code, 0, "verify after apply");
    expect(&again, "config", "PASS", &["matches poolwright.yaml"]);

    // poolwright.yaml changed without apply: the URL now asks for TLS,
    // which the running PgBouncer does not offer.
    let yaml = fs::read_to_string(spec.config()).unwrap();
    fs::write(spec.config(), format!("{yaml}{}", client_tls(dir.path()))).unwrap();
    let tls = verify(&spec, &[]);
    assert_eq!(tls.code, 1);
    assert!(tls.stdout.contains("?sslmode=require"), "{}", tls.stdout);
    expect(
        &tls,
        "login",
        "FAIL",
        &[
            "does not support TLS",
            "asks for TLS (sslmode=require)",
            "client_tls_sslmode",
            "poolwright apply prod",
        ],
    );
    expect(&tls, "admin console", "FAIL", &["does not support TLS"]);
}

#[test]
fn pools_above_the_live_max_connections_fail_the_budget() {
    for_each_pgbouncer(budget_on);
}

fn budget_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    // The YAML believes in 500 slots, so validate and apply accept pools of
    // 40 + 2; the server has 40.
    let yaml = fs::read_to_string(spec.config()).unwrap();
    assert!(yaml.contains("max_connections: 40 }") && yaml.contains("default_pool_size: 10\n"));
    let yaml = yaml
        .replace("max_connections: 40 }", "max_connections: 500 }")
        .replace("default_pool_size: 10\n", "default_pool_size: 40\n");
    fs::write(spec.config(), yaml).unwrap();
    let applied = pw(&spec.config(), &["apply"]);
    assert_eq!(applied.code, 0, "{applied:?}");

    let run = verify(&spec, &[]);
    assert_eq!(run.code, 1, "an overrunning budget passed verify");
    expect(
        &run,
        "budget",
        "FAIL",
        &[
            "the pools may open 42 server connections, more than the 33 the server accepts",
            "1 pool: 42 connections x 1 process = 42 > 40 max_connections - 3 superuser_reserved_connections - 4 direct_connections = 33, read from the server",
            "poolwright.yaml says max_connections: 500, the server has 40",
            "lower default_pool_size",
            "set upstream.max_connections: 40",
        ],
    );
    expect(&run, "login", "PASS", &[]);
    expect(&run, "pooling", "PASS", &["pool cap 42"]);
}

#[test]
fn the_server_given_as_the_pooler_fails_the_pooling_proof() {
    for_each_pgbouncer(direct_as_pooled_on);
}

fn direct_as_pooled_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    // public_host:listen_port is PostgreSQL itself: no PgBouncer between.
    spec.pool_port = pg.port;
    apply(&spec);

    let run = verify(&spec, &["--connections", "15"]);
    assert_eq!(run.code, 1, "an unpooled URL passed verify");
    // The login works, which is why this mistake goes unnoticed...
    expect(&run, "login", "PASS", &["via SCRAM-SHA-256"]);
    // Loopback: nothing leaves the machine, so no TLS warning.
    expect(&run, "tls", "PASS", &["none needed", "loopback"]);
    assert!(
        run.stdout.contains(
            "verdict: NOT POOLED: 15 connections in a row were served by 15 server backends"
        ),
        "{}",
        run.stdout
    );
    expect(&run, "concurrency", "FAIL", &["of its own"]);
    // ... but each connection is a backend of its own.
    expect(
        &run,
        "pooling",
        "FAIL",
        &[
            "15 connections in a row were served by 15 server backends",
            "reaches PostgreSQL directly",
            "poolwright url prod",
            "listen_port",
        ],
    );
    expect(
        &run,
        "admin console",
        "FAIL",
        &[
            "database \"pgbouncer\" does not exist",
            "PostgreSQL itself, not PgBouncer",
        ],
    );
}

#[test]
fn a_full_server_is_named_with_the_real_texts() {
    for_each_pgbouncer(full_server_on);
}

fn full_server_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    // PgBouncer passes a failed server login to the clients waiting then,
    // and makes later ones wait server_login_retry (15 s) for the next try.
    spec.extra = "      server_login_retry: 1\n";
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    // Take every slot a non-superuser may have: 40 - 3 reserved.
    let rt = runtime();
    let direct = url(pg.port, "app", APP_PASSWORD, "qbo_mirror");
    let end = Endpoint::from_url(&direct).unwrap();
    let mut held: Vec<Session> = Vec::new();
    let refused = loop {
        match rt.block_on(connect::connect(&end, Duration::from_secs(10))) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(
            held.len() <= 40,
            "the server took more than max_connections"
        );
    };
    eprintln!("held {} connections; the next: {refused}", held.len());
    assert_eq!(held.len(), 37);
    assert!(
        refused
            .text
            .contains("remaining connection slots are reserved"),
        "{}",
        refused.text
    );
    let d = diagnose(&refused.text, &situation(Via::Direct, &refused, "app"));
    assert!(d.cause.contains("no connection slot left"), "{d:?}");
    assert!(d.fix.contains("max_connections"), "{d:?}");

    // Through PgBouncer: it must open a server connection and cannot.
    let e = login_error(&rt, &url(spec.pool_port, "app", APP_PASSWORD, "qbo_mirror"));
    let d = diagnose(&e.text, &situation(Via::Pooler, &e, "app"));
    eprintln!("through PgBouncer: {:?} -> {d:?}", e.text);
    assert!(d.cause.contains("no connection slot left"), "{d:?}");

    let run = verify(&spec, &[]);
    assert_eq!(run.code, 1);
    expect(
        &run,
        "login",
        "FAIL",
        &[
            "no connection slot left",
            "the budget check below says who holds the slots",
        ],
    );
    // No session reaches the server, but PgBouncer's console says none of
    // the slots are its own.
    expect(
        &run,
        "budget",
        "FAIL",
        &[
            "remaining connection slots are reserved",
            "PgBouncer holds 0 server connections (SHOW SERVERS)",
            "clients that connect to the server directly",
        ],
    );
    let (_, budget) = check(&run, "budget");
    assert!(
        !budget.contains("`poolwright verify"),
        "a circular fix: {budget}"
    );
    assert!(
        run.stdout
            .contains("verdict: BROKEN: the app cannot log in"),
        "{}",
        run.stdout
    );
    for s in held {
        rt.block_on(s.close());
    }
}

#[test]
fn slots_held_by_direct_clients_are_attributed() {
    for_each_pgbouncer(slots_held_on);
}

fn slots_held_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    spec.extra = "      server_login_retry: 1\n";
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);
    let rt = runtime();
    // PgBouncer opens a server connection (and keeps it idle in its pool),
    // then clients that connect directly take every other slot.
    let pooled =
        Endpoint::from_url(&url(spec.pool_port, "app", APP_PASSWORD, "qbo_mirror")).unwrap();
    let first = rt
        .block_on(connect::connect(&pooled, Duration::from_secs(10)))
        .expect("pooled login");
    rt.block_on(first.value("SELECT 1")).expect("pooled query");
    rt.block_on(first.close());
    let direct = Endpoint::from_url(&url(pg.port, "app", APP_PASSWORD, "qbo_mirror")).unwrap();
    let mut held: Vec<Session> = Vec::new();
    while let Ok(s) = rt.block_on(connect::connect(&direct, Duration::from_secs(10))) {
        rt.block_on(s.execute("SET application_name = 'nightly-etl'"))
            .expect("set application_name");
        held.push(s);
        assert!(
            held.len() <= 40,
            "the server took more than max_connections"
        );
    }
    eprintln!("held {} direct connections", held.len());
    assert!(held.len() >= 30, "{}", held.len());

    let run = verify(&spec, &["--concurrent", "4"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    expect(
        &run,
        "budget",
        "FAIL",
        &[
            "remaining connection slots are reserved",
            &format!(
                "are not: {} from 127.0.0.1 as `app` (application `nightly-etl`)",
                held.len()
            ),
            "application_name = 'nightly-etl'",
            "poolwright url prod",
            "upstream.direct_connections",
        ],
    );
    let (_, budget) = check(&run, "budget");
    assert!(
        !budget.contains(", 0 are PgBouncer's"),
        "PgBouncer's own server connection was not told apart: {budget}"
    );
    for s in held {
        rt.block_on(s.close());
    }
}

#[test]
fn the_url_the_app_really_has_is_checked_and_used() {
    for_each_pgbouncer(app_url_on);
}

fn app_url_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);
    let encoded = crate::support::pg::APP_PASSWORD_ENCODED;

    // An old .env that still holds the direct URL: not pooled, and said so.
    fs::write(
        dir.path().join("app.env"),
        format!(
            "OTHER=1\nDATABASE_URL=postgresql://app:{encoded}@127.0.0.1:{}/qbo_mirror\n",
            pg.port
        ),
    )
    .unwrap();
    let run = verify(&spec, &["--url-from", "app.env", "--connections", "5"]);
    assert_eq!(run.code, 1, "a direct URL passed verify");
    assert_masked(&run);
    expect(
        &run,
        "app url",
        "FAIL",
        &[
            "DATABASE_URL in app.env",
            &format!("goes to PostgreSQL at 127.0.0.1:{} directly", pg.port),
            "poolwright url prod",
        ],
    );
    assert!(run.stdout.contains("verdict: NOT POOLED"), "{}", run.stdout);

    // The pooled URL from the platform's variable: it pools.
    let pooled = format!(
        "postgresql://app:{encoded}@127.0.0.1:{}/qbo_mirror",
        spec.pool_port
    );
    let mut env: Vec<(&str, &str)> = ENV.to_vec();
    env.push(("APP_DATABASE_URL", &pooled));
    let run = verify_with(&spec, &["--url-from-env", "APP_DATABASE_URL"], &env);
    assert_masked(&run);
    expect(
        &run,
        "app url",
        "PASS",
        &["$APP_DATABASE_URL", "goes through the pooler"],
    );
    assert!(run.stdout.contains("verdict: POOLED"), "{}", run.stdout);

    // The checks run through the app's URL: its wrong password fails the
    // login, though poolwright.yaml's password is right.
    let wrong = format!(
        "postgresql://app:not-the-password@127.0.0.1:{}/qbo_mirror",
        spec.pool_port
    );
    let run = verify(&spec, &["--url", &wrong]);
    assert_eq!(run.code, 1);
    expect(&run, "login", "FAIL", &["refused the password of `app`"]);
    assert!(!run.stdout.contains("not-the-password"), "{}", run.stdout);
    assert!(run.stdout.contains("verdict: BROKEN"), "{}", run.stdout);

    // A file without the key names the file and the key.
    let run = verify(&spec, &["--url-from", "app.env", "--url-key", "PROD_URL"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("app.env sets no PROD_URL"),
        "{}",
        run.stderr
    );
}

#[test]
fn status_shows_running_and_stopped_targets_in_one_table() {
    for_each_pgbouncer(status_on);
}

fn status_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    // A second target, never applied, whose PgBouncer is not running.
    let yaml = fs::read_to_string(spec.config()).unwrap();
    let (head, prod) = yaml.split_once("targets:\n").unwrap();
    let stopped_port = free_port();
    let staging = prod
        .replace("  prod:", "  staging:")
        .replace(
            &format!("listen_port: {}", spec.pool_port),
            &format!("listen_port: {stopped_port}"),
        )
        .replace("/etc\"", "/etc-staging\"");
    fs::write(spec.config(), format!("{head}targets:\n{prod}{staging}")).unwrap();

    let text = pw(&spec.config(), &["status"]);
    eprintln!(
        "--- poolwright status (exit {}):\n{}{}",
        text.code, text.stdout, text.stderr
    );
    assert_eq!(
        text.code, 0,
        "status is a report: exit 0 with a target down"
    );
    assert_masked(&text);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("TARGET"), "{}", text.stdout);
    for h in [
        "PROVIDER",
        "POOLED ENDPOINT",
        "MODE",
        "REACHABLE",
        "SERVER CONNS",
        "LAST APPLY",
    ] {
        assert!(lines[0].contains(h), "{h} missing: {}", lines[0]);
    }
    let prod_row = lines
        .iter()
        .find(|l| l.starts_with("prod "))
        .expect("prod row");
    let staging_row = lines
        .iter()
        .find(|l| l.starts_with("staging "))
        .expect("staging row");
    let cols = |row: &str| {
        row.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let p = cols(prod_row);
    let s = cols(staging_row);
    eprintln!("prod: {p:?}\nstaging: {s:?}");
    assert_eq!(p[1], format!("self-hosted PgBouncer {}", build.version));
    assert_eq!(
        p[2],
        format!(
            "postgresql://app:****@127.0.0.1:{}/qbo_mirror",
            spec.pool_port
        )
    );
    assert_eq!(p[3], "transaction");
    assert_eq!(p[4], "yes");
    // The probe's own login leaves a server connection in the pool.
    let (open, allowed) = p[5].split_once('/').unwrap();
    // pgbadmin is console-only: app's pool (10 + 2) is all there is.
    assert!((1..=12).contains(&open.parse::<u32>().unwrap()), "{}", p[5]);
    assert_eq!(allowed, "12");
    assert!(p[6].ends_with(" UTC") && p[6].len() == 23, "{}", p[6]);
    assert_eq!(s[4], "no");
    assert_eq!(s[5], "-/12");
    // staging's pgbouncer.ini was never written.
    assert_eq!(s[6], "never");
    assert!(
        text.stdout.contains(&format!("staging: Connection refused (os error 111): nothing listens on 127.0.0.1:{stopped_port}")),
        "{}",
        text.stdout
    );

    let json = pw(&spec.config(), &["--format", "json", "status"]);
    assert_eq!(json.code, 0, "{json:?}");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --format json");
    eprintln!("status --format json:\n{}", json.stdout);
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["target"], "prod");
    assert_eq!(targets[0]["reachable"], true);
    assert_eq!(targets[0]["allowed"], 12);
    assert!(targets[0]["server_connections"]["open"].as_u64().unwrap() >= 1);
    assert_eq!(targets[1]["reachable"], false);
    assert!(targets[1]["server_connections"].is_null());
    assert!(targets[1]["last_apply"].is_null());

    let md = pw(&spec.config(), &["--format", "markdown", "status"]);
    eprintln!("status --format markdown:\n{}", md.stdout);
    assert_eq!(md.code, 0);
    assert!(
        md.stdout
            .starts_with("| target | provider | pooled endpoint | mode | reachable |"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("| prod | self-hosted PgBouncer"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("| yes: login ok in "), "{}", md.stdout);
    assert!(
        md.stdout.contains("| **no**: Connection refused"),
        "{}",
        md.stdout
    );
}

#[test]
fn verify_needs_the_passwords_and_checks_its_flags() {
    let example = support::root().join("examples/automatch-books/poolwright.yaml");
    let config = example.to_str().unwrap();
    // verify logs in, so an unset password is an error naming the variable,
    // before any connection is tried.
    let run = support::poolwright(
        &support::root(),
        &["--config", config, "verify", "prod"],
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("QBO_DB_PASSWORD"), "{}", run.stderr);
    assert!(
        run.stderr.contains("poolwright.yaml:"),
        "no file:line in {}",
        run.stderr
    );

    for bad in [
        &["verify", "prod", "--driver", "nope"][..],
        &["verify", "prod", "--connections", "0"],
        &["verify", "prod", "--samples", "x"],
        &["verify"],
    ] {
        let mut args = vec!["--config", config];
        args.extend_from_slice(bad);
        let run = support::poolwright(&support::root(), &args, &[("QBO_DB_PASSWORD", "x")]);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }

    let help = support::poolwright(&support::root(), &["verify", "--help"], &[]);
    assert_eq!(help.code, 0);
    for flag in [
        "<TARGET>",
        "--driver",
        "asyncpg",
        "--connections",
        "[default: 20]",
        "--samples",
        "[default: 30]",
        "--format",
    ] {
        assert!(
            help.stdout.contains(flag),
            "verify --help lacks {flag}:\n{}",
            help.stdout
        );
    }
    let help = support::poolwright(&support::root(), &["status", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--format"), "{}", help.stdout);
}
