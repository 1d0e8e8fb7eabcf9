//! `processes: 2`: two real PgBouncer processes on one port, started from
//! the files `apply` wrote, both serving clients; from PgBouncer 1.19 on a
//! cancel request reaches the right process through `[peers]`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{self, servers::*};

const APP_PASSWORD: &str = "app-Pw_1";
const ADMIN_PASSWORD: &str = "admin-Pw_2";

fn write_config(dir: &Path, pg_port: u16, port: u16, version: &str) -> PathBuf {
    let d = dir.display();
    let yaml = format!(
        r#"version: 1
targets:
  prod:
    provider: pgbouncer
    version: "{version}"
    processes: 2
    upstream: {{ host: 127.0.0.1, port: {pg_port}, max_connections: 40 }}
    public_host: 127.0.0.1
    config_dir: "{d}/etc"
    databases: {{ qbo_mirror: {{}} }}
    users:
      app: {{ password: "{APP_PASSWORD}" }}
      pgbadmin: {{ password: "{ADMIN_PASSWORD}" }}
    systemd: {{ unit_dir: "{d}/units", user: postgres }}
    pgbouncer:
      listen_addr: 127.0.0.1
      listen_port: {port}
      unix_socket_dir: "{d}/run"
      pidfile: "{d}/run/pgbouncer.pid"
      admin_users: pgbadmin
      default_pool_size: 4
      reserve_pool_size: 0
"#
    );
    let path = dir.join("poolwright.yaml");
    fs::write(&path, yaml).expect("write config");
    path
}

fn poolwright(config: &Path, args: &[&str]) -> support::Run {
    let mut all = vec!["--config", config.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    support::poolwright(config.parent().expect("dir"), &all, &[])
}

/// The admin console of process `k`, through its own Unix socket (the
/// shared TCP port reaches whichever process the kernel picks).
fn show(dir: &Path, port: u16, k: u32, what: &str) -> String {
    let url = format!(
        "postgresql://pgbadmin:{ADMIN_PASSWORD}@/pgbouncer?host={}/run/pgbouncer-{k}&port={port}",
        dir.display()
    );
    let out = psql_url(&url, &format!("SHOW {what}"));
    assert!(
        out.status.success(),
        "SHOW {what} on process {k}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Transactions process `k` served for qbo_mirror (SHOW STATS: total_xact_count).
fn transactions(dir: &Path, port: u16, k: u32) -> u64 {
    show(dir, port, k, "STATS")
        .lines()
        .find(|l| l.starts_with("qbo_mirror|"))
        .and_then(|l| l.split('|').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Starts `pg_sleep` through the shared port, interrupts psql (which then
/// sends a cancel request on a new connection, to whichever process the
/// kernel picks) and says whether the statement was cancelled promptly.
fn cancel_reaches_the_query(port: u16) -> bool {
    let url = format!("postgresql://app:{APP_PASSWORD}@127.0.0.1:{port}/qbo_mirror");
    let child = Command::new("psql")
        .args(["-X", "-d", &url, "-c", "select pg_sleep(4)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    sleep(Duration::from_millis(700));
    let started = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    let out = child.wait_with_output().expect("psql output");
    let said = String::from_utf8_lossy(&out.stderr);
    started.elapsed() < Duration::from_millis(2500)
        && said.contains("canceling statement due to user request")
}

#[test]
fn two_processes_share_the_port_and_the_load() {
    if !require_servers() {
        return;
    }
    for build in pgbouncer_builds() {
        eprintln!(
            "===== PgBouncer {} ({})",
            build.version,
            build.bin.display()
        );
        let pg = PgCluster::start(40);
        pg.create_role("app", APP_PASSWORD);
        pg.create_role("pgbadmin", ADMIN_PASSWORD);
        pg.create_database("qbo_mirror", "app");
        let dir = crate::support::pg::scratch();
        let port = free_port();
        let config = write_config(dir.path(), pg.port, port, &build.version);

        let plan = poolwright(&config, &["plan"]);
        let apply = poolwright(&config, &["apply"]);
        eprintln!("{}{}", plan.stdout, apply.stderr);
        assert_eq!(apply.code, 0, "{}", apply.stderr);
        let etc = dir.path().join("etc");
        let ini1 = fs::read_to_string(etc.join("pgbouncer-1.ini")).expect("pgbouncer-1.ini");
        let peers = build.version.as_str() >= "1.19";
        assert_eq!(ini1.lines().any(|l| l == "[peers]"), peers, "{ini1}");
        assert_eq!(ini1.contains("peer_id = 1"), peers, "{ini1}");
        assert_eq!(
            plan.stdout.contains("has no [peers]"),
            !peers,
            "{}",
            plan.stdout
        );
        assert!(
            // pgbadmin reads the admin console only: no pool of its own.
            plan.stdout
                .contains("1 pool: 4 connections x 2 processes = 8"),
            "{}",
            plan.stdout
        );

        let mut bouncers = Vec::new();
        for k in 1..=2u32 {
            let log = dir.path().join(format!("pgbouncer-{k}.stderr"));
            let b = PgBouncer::start_with(
                &build.bin,
                &etc.join(format!("pgbouncer-{k}.ini")),
                port,
                &log,
            )
            .unwrap_or_else(|e| panic!("process {k}: {e}"));
            // The port answers as soon as one process listens: wait for
            // this process's own socket too.
            let socket = dir
                .path()
                .join(format!("run/pgbouncer-{k}/.s.PGSQL.{port}"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while !socket.exists() {
                assert!(
                    Instant::now() < deadline,
                    "process {k} made no socket:\n{}",
                    b.log()
                );
                sleep(Duration::from_millis(50));
            }
            bouncers.push(b);
        }

        // Many clients, each transaction on a new connection: the kernel
        // spreads the connections over both processes.
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
        assert!(
            init.status.success(),
            "pgbench -i: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let run = pgbench(
            &[
                "-n",
                "-C",
                "-S",
                "-c",
                "20",
                "-j",
                "2",
                "-T",
                "3",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "app",
                "qbo_mirror",
            ],
            &[("PGPASSWORD", APP_PASSWORD)],
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            run.status.success(),
            "pgbench through both processes:\n{said}"
        );
        let (t1, t2) = (
            transactions(dir.path(), port, 1),
            transactions(dir.path(), port, 2),
        );
        eprintln!(
            "PgBouncer {}: process 1 served {t1} transactions, process 2 served {t2}",
            build.version
        );
        assert!(t1 > 0 && t2 > 0, "one process served nothing: {t1} / {t2}");
        // Each process has its own pools: together at most 2 x 4 server connections.
        let backends = pg.client_backends("qbo_mirror", "app");
        assert!(
            backends <= 8,
            "{backends} server connections for 2 processes x pool 4"
        );

        if peers {
            // Peering forwards every cancel to the process that runs the query.
            let cancelled = (0..6).filter(|_| cancel_reaches_the_query(port)).count();
            eprintln!(
                "PgBouncer {}: {cancelled} of 6 cancel requests reached their query",
                build.version
            );
            assert_eq!(
                cancelled, 6,
                "cancel requests got lost between the processes"
            );
        } else {
            let cancelled = (0..4).filter(|_| cancel_reaches_the_query(port)).count();
            eprintln!(
                "PgBouncer {} (no peers): {cancelled} of 4 cancel requests reached their query (the rest went to the other process)",
                build.version
            );
        }
    }
}
