//! End to end against real servers: `poolwright apply` writes its files for a
//! throwaway PostgreSQL 15 cluster, a PgBouncer is started from exactly those
//! files, and real clients (psql, pgbench) log in through it.
//!
//! Each test starts its own cluster and PgBouncer on kernel-picked ports, so
//! they run in parallel; servers stop on Drop, also when a test panics.
//! Without the binaries the tests skip, unless POOLWRIGHT_REQUIRE_SERVERS=1.
//! Every test eprintln!s what it measured, so a CI log shows both sides.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::pg::*;
use crate::support::{self, servers::*};

#[test]
fn scram_default_end_to_end() {
    for_each_pgbouncer(scram_default_end_to_end_on);
}

fn scram_default_end_to_end_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    let files = [
        spec.etc("pgbouncer.ini"),
        spec.etc("userlist.txt"),
        dir.path().join("units/pgbouncer.service"),
    ];

    let first = apply(&spec);
    for f in &files {
        let line = format!("created {}", f.display());
        assert!(first.contains(&line), "no `{line}` in:\n{first}");
    }
    // The role already has a SCRAM verifier for this password (CREATE ROLE
    // made one): userlist.txt takes it, and the server is not touched.
    assert!(
        first.contains("userlist.txt takes the SCRAM verifier the server at"),
        "{first}"
    );
    assert!(!first.contains("stored the SCRAM verifier"), "{first}");

    // userlist.txt: a SCRAM verifier, readable by the service user only.
    let meta = fs::metadata(spec.etc("userlist.txt")).expect("userlist.txt exists");
    assert_eq!(meta.mode() & 0o777, 0o600, "userlist.txt mode");
    if uid_of(None) == 0 {
        assert_eq!(meta.uid(), uid_of(Some("postgres")), "userlist.txt owner");
    }
    let userlist = fs::read_to_string(spec.etc("userlist.txt")).unwrap();
    let verifier = userlist_secret(&userlist, "app").expect("app in userlist.txt");
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(
        !userlist.contains("p@ss"),
        "the password is in userlist.txt"
    );

    // The server stores the very same verifier: that is what lets PgBouncer
    // pass the client's SCRAM proof on to the server.
    let stored = rolpassword(&pg, "app");
    eprintln!("userlist.txt verifier: {verifier}\npg_authid rolpassword: {stored}");
    assert_eq!(
        stored, verifier,
        "the server's verifier differs from userlist.txt"
    );

    let _bouncer = start_bouncer(&mut spec, apply);
    let port = spec.pool_port;

    let url = stdout_of(
        &pw(&spec.config(), &["url", "prod", "--show-password"]),
        "url",
    );
    assert_eq!(
        url,
        format!("postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{port}/qbo_mirror")
    );
    let who = query(&url, "select current_user");
    eprintln!("through PgBouncer on {port}: current_user = {who}");
    assert_eq!(who, "app");

    let masked = stdout_of(&pw(&spec.config(), &["url", "prod"]), "url (masked)");
    eprintln!("masked url: {masked}");
    assert!(masked.contains(":****@"), "{masked}");
    for secret in [APP_PASSWORD, APP_PASSWORD_ENCODED, "p@ss", "p%40ss"] {
        assert!(!masked.contains(secret), "{secret:?} in {masked}");
    }

    // The direct URL (for migrations) reaches PostgreSQL itself.
    let direct = stdout_of(
        &pw(
            &spec.config(),
            &["url", "prod", "--direct", "--show-password"],
        ),
        "url --direct",
    );
    assert!(
        direct.contains(&format!("@127.0.0.1:{}/", pg.port)),
        "{direct}"
    );
    assert_eq!(query(&direct, "select current_user"), "app");

    // A wrong password fails at PgBouncer.
    let wrong = format!("postgresql://app:not-the-password@127.0.0.1:{port}/qbo_mirror");
    let out = psql_url(&wrong, "select 1");
    eprintln!("wrong password: {}", text(&out).trim());
    assert!(!out.status.success(), "a wrong password logged in");
    assert!(
        text(&out).contains("authentication failed"),
        "{}",
        text(&out)
    );

    // Idempotent: a second apply changes no byte and reloads nothing.
    let before: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let second = apply(&spec);
    for f in &files {
        let line = format!("unchanged {}", f.display());
        assert!(second.contains(&line), "no `{line}` in:\n{second}");
    }
    assert!(second.contains("nothing to change"), "{second}");
    // The server was asked which verifier it holds (the salt in its SCRAM
    // challenge), and holds ours: no login, no ALTER ROLE.
    assert!(
        second.contains("already stores the SCRAM verifier of `app`"),
        "{second}"
    );
    assert!(
        !second.contains("stored the SCRAM verifier of role"),
        "{second}"
    );

    assert!(!second.contains("reloaded"), "{second}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert!(before == after, "the second apply changed file bytes");
    assert_eq!(rolpassword(&pg, "app"), verifier);

    // Someone resets the password on the server (same password, new salt),
    // as another host's setup may: PgBouncer's verifier no longer matches.
    // The next apply takes the server's new verifier into userlist.txt and
    // leaves the server alone, so whoever reset it keeps working too.
    pg.psql(
        "postgres",
        &format!(
            "ALTER ROLE app PASSWORD '{}'",
            APP_PASSWORD.replace('\'', "''")
        ),
    );
    let reset = rolpassword(&pg, "app");
    assert_ne!(reset, verifier, "the reset kept the salt");
    let third = apply(&spec);
    assert!(
        third.contains("userlist.txt takes the SCRAM verifier the server at"),
        "{third}"
    );
    assert!(third.contains("reloaded PgBouncer"), "{third}");
    assert_eq!(rolpassword(&pg, "app"), reset, "apply changed the server");
    let userlist = fs::read_to_string(spec.etc("userlist.txt")).unwrap();
    assert_eq!(
        userlist_secret(&userlist, "app").as_deref(),
        Some(reset.as_str())
    );
    assert_eq!(query(&url, "select current_user"), "app");
}

/// The value of `key` in PgBouncer's `SHOW CONFIG` (rows `key|value|...`).
fn show_config(admin_url: &str, key: &str) -> Option<String> {
    let out = psql_url(admin_url, "SHOW CONFIG");
    if !out.status.success() {
        eprintln!("SHOW CONFIG failed: {}", text(&out).trim());
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut cols = l.split('|');
        (cols.next() == Some(key)).then(|| cols.next().unwrap_or("").to_string())
    })
}

#[test]
fn apply_reloads_running_pgbouncer() {
    for_each_pgbouncer(apply_reloads_running_pgbouncer_on);
}

fn apply_reloads_running_pgbouncer_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    pg.create_role("pgbadmin", ADMIN_PASSWORD);
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    let first = apply(&spec);
    // pgbadmin only reads the admin console: no server login, no step.
    assert!(
        first.contains("userlist.txt takes the SCRAM verifier the server at")
            && !first.contains("`pgbadmin`"),
        "{first}"
    );
    // Nothing runs yet: apply says so rather than signalling anything.
    assert!(first.contains("PgBouncer is not running"), "{first}");

    let bouncer = start_bouncer(&mut spec, apply);
    let admin_url = format!(
        "postgresql://pgbadmin:{ADMIN_PASSWORD}@127.0.0.1:{}/pgbouncer",
        spec.pool_port
    );
    let initial = show_config(&admin_url, "default_pool_size");
    eprintln!("default_pool_size before: {initial:?}");
    assert_eq!(initial.as_deref(), Some("10"));

    spec.default_pool_size = 7;
    let second = apply(&spec);
    for line in [
        format!("updated {}", spec.etc("pgbouncer.ini").display()),
        format!("unchanged {}", spec.etc("userlist.txt").display()),
        format!("reloaded PgBouncer (SIGHUP to pid {})", bouncer.pid()),
    ] {
        assert!(second.contains(&line), "no `{line}` in:\n{second}");
    }

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
        "default_pool_size after apply: {seen:?} (seen after {} ms)",
        started.elapsed().as_millis()
    );
    assert_eq!(
        seen.as_deref(),
        Some("7"),
        "PgBouncer log:\n{}",
        bouncer.log()
    );
}

/// pgbench select-only as `app` on `port`, 200 clients for `secs` seconds;
/// `-C` opens a new connection per transaction, as serverless functions do.
fn pgbench_200(port: u16, secs: u32, connect_per_tx: bool) -> (Output, String) {
    let c = if connect_per_tx { "-C" } else { "" };
    let args = format!("-n {c} -c 200 -j 2 -T {secs} -S -h 127.0.0.1 -p {port} -U app qbo_mirror");
    let out = pgbench(
        &args.split_whitespace().collect::<Vec<_>>(),
        &[("PGPASSWORD", APP_PASSWORD), ("PGCONNECT_TIMEOUT", "10")],
    );
    let all = text(&out);
    (out, all)
}

/// pgbench's summary lines for the CI log, with the error lines counted
/// rather than repeated 200 times.
fn summary(output: &str) -> String {
    let mut lines: Vec<String> = output
        .lines()
        .filter(|l| {
            ["tps", "number of", "latency"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect();
    let errors: Vec<&str> = output.lines().filter(|l| l.contains("error")).collect();
    if let Some(first) = errors.first() {
        lines.push(format!("{} error lines, the first: {first}", errors.len()));
    }
    for l in output.lines().filter(|l| l.contains("FATAL")).take(2) {
        lines.push(l.to_string());
    }
    lines.join("\n")
}

/// "number of transactions actually processed: N" (N, or N/M with -t).
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

/// Asserts a pgbench run through PgBouncer went clean.
fn assert_clean_run(out: &Output, all: &str) {
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
    assert!(processed(all) > 0, "no transactions processed:\n{all}");
}

/// Runs `work` while sampling app's server backends every ~100 ms;
/// returns its result, the largest sample and the number of samples.
fn sampling_backends<T: Send>(pg: &PgCluster, work: impl FnOnce() -> T + Send) -> (T, u32, u32) {
    let stop = AtomicBool::new(false);
    let max = AtomicU32::new(0);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                max.fetch_max(pg.client_backends("qbo_mirror", "app"), Ordering::Relaxed);
                samples += 1;
                sleep(Duration::from_millis(100));
            }
            samples
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        let samples = sampler.join().expect("sampler thread");
        (result, max.load(Ordering::Relaxed), samples)
    })
}

#[test]
fn pgbench_serverless_pattern_through_pooler_and_direct() {
    for_each_pgbouncer(pgbench_serverless_pattern_through_pooler_and_direct_on);
}

fn pgbench_serverless_pattern_through_pooler_and_direct_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let bouncer = start_bouncer(&mut spec, apply);

    let init_args = format!("-i -s 1 -q -h 127.0.0.1 -p {} -U app qbo_mirror", pg.port);
    let init = pgbench(
        &init_args.split_whitespace().collect::<Vec<_>>(),
        &[("PGPASSWORD", APP_PASSWORD)],
    );
    assert!(init.status.success(), "pgbench -i:\n{}", text(&init));

    // The serverless pattern through PgBouncer: 200 clients, each
    // transaction on a new connection. However many clients connect, app's
    // server connections must stay within pool + reserve.
    let ((out, all), max_c, samples) =
        sampling_backends(&pg, || pgbench_200(spec.pool_port, 5, true));
    eprintln!(
        "--- through PgBouncer, -C (pool 10 + reserve 2): {} ---\n{}\nmax app backends on the server: {max_c} ({samples} samples)",
        out.status,
        summary(&all)
    );
    assert_clean_run(&out, &all);
    assert!(samples >= 5, "only {samples} samples during a 5 s run");
    assert!(max_c > 0, "never saw a server connection of app");
    assert!(max_c <= POOL_CAP, "{max_c} server connections > {POOL_CAP}");

    // With -C the logins are the bottleneck and the pool barely fills; 200
    // persistent clients do fill it, which shows the cap is what holds.
    let ((out, all), max_p, samples) =
        sampling_backends(&pg, || pgbench_200(spec.pool_port, 3, false));
    eprintln!(
        "--- through PgBouncer, persistent connections: {} ---\n{}\nmax app backends on the server: {max_p} ({samples} samples)",
        out.status,
        summary(&all)
    );
    assert_clean_run(&out, &all);
    assert!(
        (10..=POOL_CAP).contains(&max_p),
        "{max_p} server connections with 200 busy clients, expected 10..={POOL_CAP}"
    );

    // Named prepared statements across transactions (what most drivers do
    // by default): 1.21+ tracks them (poolwright renders
    // max_prepared_statements = 200); 1.18 hands a client's next transaction
    // to a server connection that never saw the statement, or one that has
    // it already.
    let args = format!(
        "-n -M prepared -c 20 -j 2 -T 2 -S -h 127.0.0.1 -p {} -U app qbo_mirror",
        spec.pool_port
    );
    let out = pgbench(
        &args.split_whitespace().collect::<Vec<_>>(),
        &[("PGPASSWORD", APP_PASSWORD)],
    );
    let all = text(&out);
    eprintln!(
        "--- through PgBouncer {}, -M prepared: {} ---\n{}",
        build.version,
        out.status,
        summary(&all)
    );
    let ini = fs::read_to_string(spec.etc("pgbouncer.ini")).expect("pgbouncer.ini");
    if build.version.as_str() >= "1.21" {
        assert!(ini.contains("max_prepared_statements = 200"), "{ini}");
        assert_clean_run(&out, &all);
    } else {
        assert!(!ini.contains("max_prepared_statements"), "{ini}");
        // The server's own error is the proof. pgbench's exit status is not:
        // on a loaded machine the errors may come only as the -T window
        // closes, and pgbench 15 then exits 0 (seen once in a full run).
        assert!(
            all.contains("ERROR:")
                && (all.contains("already exists") || all.contains("does not exist")),
            "named prepared statements worked through PgBouncer {} in transaction mode:\n{}",
            build.version,
            summary(&all)
        );
    }

    // PgBouncer's idle server connections hold slots: stop it and wait
    // until the server has let them go.
    drop(bouncer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.client_backends("qbo_mirror", "app") > 0 {
        assert!(
            Instant::now() < deadline,
            "app backends linger 10 s after PgBouncer stopped"
        );
        sleep(Duration::from_millis(100));
    }

    // The same serverless load straight at PostgreSQL runs out of slots.
    let (out, all) = pgbench_200(pg.port, 5, true);
    eprintln!(
        "--- direct to PostgreSQL (max_connections 40), -C: {} ---\n{}",
        out.status,
        summary(&all)
    );
    let overloaded = ["too many clients", "remaining connection slots", "aborted"]
        .iter()
        .any(|m| all.contains(m));
    assert!(
        !out.status.success() || overloaded,
        "200 connect-per-transaction clients did not overload a 40-connection server:\n{}",
        summary(&all)
    );
}

#[test]
fn plain_userlist_mode_works() {
    for_each_pgbouncer(plain_userlist_mode_works_on);
}

fn plain_userlist_mode_works_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.userlist = "plain";

    let before = rolpassword(&pg, "app");
    let stderr = apply(&spec);
    let after = rolpassword(&pg, "app");
    eprintln!("pg_authid before apply: {before}\npg_authid after apply:  {after}");
    assert!(before.starts_with("SCRAM-SHA-256$"), "{before}");
    assert_eq!(
        before, after,
        "apply changed the server's verifier in plain mode"
    );
    assert!(!stderr.contains("stored the"), "{stderr}");

    let path = spec.etc("userlist.txt");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let userlist = fs::read_to_string(&path).unwrap();
    assert!(
        userlist.lines().any(|l| l == r#""app" "p@ss:w/rd#%?&""x""#),
        "the plain password is not quoted by userlist rules:\n{userlist}"
    );
    assert_eq!(
        userlist_secret(&userlist, "app").as_deref(),
        Some(APP_PASSWORD)
    );

    let _bouncer = start_bouncer(&mut spec, apply);
    let url = stdout_of(
        &pw(&spec.config(), &["url", "prod", "--show-password"]),
        "url",
    );
    let who = query(&url, "select current_user");
    eprintln!("through PgBouncer (plain userlist): current_user = {who}");
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
        "systemd-analyze verify {}: {}, output: {said:?}",
        unit.display(),
        verify.status
    );
    assert!(verify.status.success(), "{said}");
    // Warnings count: systemd logs them and still exits 0.
    assert!(said.trim().is_empty(), "systemd-analyze warned:\n{said}");
}

#[test]
fn each_pgbouncer_gets_only_the_settings_it_knows() {
    if !require_servers() {
        return;
    }
    for build in pgbouncer_builds() {
        eprintln!(
            "===== PgBouncer {} ({})",
            build.version,
            build.bin.display()
        );
        // No server needed: PgBouncer reads its config before any login.
        let dir = scratch();
        let mut spec = Spec::new(dir.path(), free_port(), &build);
        spec.extra = "      max_prepared_statements: 100\n";
        if build.version.as_str() < "1.21" {
            // poolwright refuses the key for this version ...
            let refused = pw(&spec.write(), &["validate"]);
            eprintln!(
                "validate, {} + max_prepared_statements: exit {}\n{}",
                build.version, refused.code, refused.stderr
            );
            assert_eq!(
                refused.code, 1,
                "a {} target accepted max_prepared_statements",
                build.version
            );
            assert!(
                refused.stderr.contains("needs PgBouncer 1.21"),
                "{}",
                refused.stderr
            );
            // ... because this PgBouncer refuses to start on it.
            spec.version = "1.21".into();
            let ini = render(&spec);
            assert!(ini.contains("max_prepared_statements = 100"), "{ini}");
            let log = dir.path().join("newer.log");
            match PgBouncer::start_with(&spec.bin, &spec.etc("pgbouncer.ini"), spec.pool_port, &log)
            {
                Ok(b) => panic!(
                    "PgBouncer {} started with a 1.21 setting:\n{}",
                    build.version,
                    b.log()
                ),
                Err(e) => {
                    eprintln!("PgBouncer {} on the 1.21 render: {e}", build.version);
                    assert!(e.contains("unknown parameter"), "{e}");
                }
            }
            spec.version = build.version.clone();
            spec.extra = "";
            let ini = render(&spec);
            assert!(!ini.contains("max_prepared_statements"), "{ini}");
        } else {
            let ini = render(&spec);
            assert!(ini.contains("max_prepared_statements = 100"), "{ini}");
        }
        let bouncer = start_bouncer(&mut spec, render);
        eprintln!(
            "PgBouncer {} started on its own render (pid {})",
            build.version,
            bouncer.pid()
        );
    }
}
