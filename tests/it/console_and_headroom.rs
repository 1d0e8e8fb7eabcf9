//! Console-only users and the headroom for direct connections, against
//! real PostgreSQL 15 and PgBouncer 1.18 and 1.24.
//!
//! A user that only reads PgBouncer's admin console needs no role on
//! PostgreSQL: verify must not check its server login, and PgBouncer's
//! console must still let it in. And the pools must leave slots free for
//! what does not go through PgBouncer: a migration or psql straight to the
//! server still gets in while the pool is saturated.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::sleep;
use std::time::Duration;

use crate::support::pg::{
    ADMIN_PASSWORD, APP_PASSWORD, APP_PASSWORD_ENCODED, Spec, cluster_with_app, for_each_pgbouncer,
    pw, query, rolpassword, scratch, start_bouncer, text,
};
use crate::support::servers::{BouncerBuild, PgCluster, hand_to_service_user, pgbench, psql_url};

/// Writes the config and renders the files into config_dir; then gives
/// `app` the server's own verifier in userlist.txt, as apply would (render
/// makes its own, with a new salt, which the server would not accept).
/// `pgbadmin` keeps the verifier render made: it has no role on the server.
fn render_with_the_servers_verifier(spec: &Spec, pg: &PgCluster) -> String {
    let out = spec.etc("");
    let run = pw(&spec.write(), &["render", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "render failed:\n{run:?}");
    let userlist = fs::read_to_string(spec.etc("userlist.txt")).expect("userlist.txt");
    assert!(userlist.contains("\"pgbadmin\" "), "{userlist}");
    let app_line = format!("\"app\" \"{}\"", rolpassword(pg, "app"));
    let lines: Vec<String> = userlist
        .lines()
        .map(|l| {
            if l.starts_with("\"app\" ") {
                app_line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    fs::write(spec.etc("userlist.txt"), lines.join("\n") + "\n").expect("write userlist.txt");
    hand_to_service_user(&out);
    run.stderr
}

/// Re-renders after a port change (start_bouncer's retry).
fn rerender(spec: &Spec) -> String {
    let out = spec.etc("");
    let run = pw(&spec.write(), &["render", "--out", out.to_str().unwrap()]);
    hand_to_service_user(&out);
    run.stderr
}

#[test]
fn a_console_only_user_needs_no_role_on_the_server() {
    for_each_pgbouncer(a_console_only_user_needs_no_role_on);
}

fn a_console_only_user_needs_no_role_on(build: &BouncerBuild) {
    // `app` exists on the server; `pgbadmin` (admin_users) does not.
    let pg = cluster_with_app();
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'pgbadmin'"
        ),
        "0"
    );
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;

    // No pool for it in the budget, and plan says it never logs in.
    let plan = pw(&spec.write(), &["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        !plan.stdout.contains("qbo_mirror/pgbadmin"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("user `pgbadmin` is for the admin console only"),
        "{}",
        plan.stdout
    );

    render_with_the_servers_verifier(&spec, &pg);
    let _bouncer = start_bouncer(&mut spec, rerender);

    // PgBouncer's console lets it in (it is in userlist.txt).
    let console = format!(
        "postgresql://pgbadmin:{ADMIN_PASSWORD}@127.0.0.1:{}/pgbouncer",
        spec.pool_port
    );
    let stats = psql_url(&console, "SHOW STATS");
    assert!(
        stats.status.success(),
        "SHOW STATS as pgbadmin: {}",
        text(&stats)
    );
    assert!(
        String::from_utf8_lossy(&stats.stdout).contains("pgbouncer|"),
        "{}",
        text(&stats)
    );

    // verify checks app's server login, not pgbadmin's, and passes.
    let run = pw(
        &spec.config(),
        &["verify", "prod", "--connections", "3", "--samples", "2"],
    );
    eprintln!(
        "--- verify (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    assert_eq!(run.code, 0, "{run:?}");
    let login = run
        .stdout
        .lines()
        .find(|l| l.contains("server login"))
        .unwrap_or_else(|| panic!("no server login check:\n{}", run.stdout));
    assert!(
        login.contains("PASS") && login.contains("`app`") && !login.contains("pgbadmin"),
        "{login}"
    );
    assert!(
        // The console checks ran as pgbadmin: version, config and pools.
        run.stdout.contains("PASS  version")
            && run.stdout.contains("PASS  pools")
            && !run.stdout.contains("FAIL"),
        "{}",
        run.stdout
    );
}

/// The tests' usual config for a server of max_connections 20, without
/// default_pool_size and reserve_pool_size, so poolwright sizes the pool.
fn sized_by_poolwright(spec: &Spec) -> std::path::PathBuf {
    let yaml = fs::read_to_string(spec.write()).expect("poolwright.yaml");
    let yaml: String = yaml
        .replace("max_connections: 40", "max_connections: 20")
        .lines()
        .filter(|l| !l.contains("default_pool_size:") && !l.contains("reserve_pool_size:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(spec.config(), yaml).expect("write poolwright.yaml");
    spec.config()
}

fn apply_sized(spec: &Spec) -> String {
    let run = pw(&sized_by_poolwright(spec), &["apply"]);
    eprintln!("--- poolwright apply (exit {}):\n{}", run.code, run.stderr);
    assert_eq!(run.code, 0, "apply failed:\n{run:?}");
    run.stderr
}

#[test]
fn a_direct_connection_gets_in_while_the_pool_is_saturated() {
    for_each_pgbouncer(a_direct_connection_gets_in_on);
}

fn a_direct_connection_gets_in_on(build: &BouncerBuild) {
    // max_connections 20: 17 slots for app after the 3 superuser slots.
    let pg = PgCluster::start(20);
    pg.create_role("app", APP_PASSWORD);
    pg.create_database("qbo_mirror", "app");
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply_sized(&spec);
    let plan = pw(&spec.config(), &["plan"]);
    eprintln!("--- plan:\n{}", plan.stdout);
    let ini = fs::read_to_string(spec.etc("pgbouncer.ini")).expect("pgbouncer.ini");
    let pool: u32 = ini
        .lines()
        .find_map(|l| l.strip_prefix("default_pool_size = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no default_pool_size in:\n{ini}"));
    assert!(pool < 17, "the pool takes all 17 usable slots:\n{ini}");
    let _bouncer = start_bouncer(&mut spec, apply_sized);

    let direct = format!(
        "postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{}/qbo_mirror",
        pg.port
    );
    // Each transaction holds its server connection for 50 ms, so 60
    // clients keep every connection of the pool busy.
    let script = dir.path().join("hold.sql");
    fs::write(&script, "select pg_sleep(0.05);\n").expect("write pgbench script");

    // 60 busy clients through PgBouncer saturate the pool; meanwhile a
    // migration-like direct login as app must still find a slot.
    let stop = AtomicBool::new(false);
    let most = AtomicU32::new(0);
    let (bench, direct_results) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(pg.client_backends("qbo_mirror", "app"), Ordering::Relaxed);
                sleep(Duration::from_millis(100));
            }
        });
        let bench = s.spawn(|| {
            let args = format!(
                "-n -c 60 -j 2 -T 6 -f {} -h 127.0.0.1 -p {} -U app qbo_mirror",
                script.display(),
                spec.pool_port
            );
            pgbench(
                &args.split_whitespace().collect::<Vec<_>>(),
                &[("PGPASSWORD", APP_PASSWORD), ("PGCONNECT_TIMEOUT", "10")],
            )
        });
        // Wait until the pool is full, then log in directly a few times.
        let mut waited = 0;
        while pg.client_backends("qbo_mirror", "app") < pool && waited < 40 {
            sleep(Duration::from_millis(100));
            waited += 1;
        }
        let mut results = Vec::new();
        for _ in 0..3 {
            results.push(psql_url(&direct, "select current_user"));
            sleep(Duration::from_millis(300));
        }
        let bench = bench.join().expect("pgbench thread");
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler thread");
        (bench, results)
    });
    let most = most.load(Ordering::Relaxed);
    eprintln!(
        "pool {pool}; most app backends seen: {most}; pgbench: {}",
        text(&bench)
            .lines()
            .filter(|l| l.starts_with("tps") || l.starts_with("number of"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(bench.status.success(), "pgbench: {}", text(&bench));
    assert!(most >= pool, "the pool never filled ({most} of {pool})");
    for out in &direct_results {
        assert!(
            out.status.success(),
            "a direct login failed with the pool saturated: {}",
            text(out)
        );
    }
    assert_eq!(query(&direct, "select current_user"), "app");
}
