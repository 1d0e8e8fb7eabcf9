//! `poolwright status --watch`: under a load that makes clients wait (a pool
//! of 2, 10 pgbench clients each sleeping 0.2 s per transaction), three
//! refreshes show the waiting clients and maxwait, and the server never
//! holds more of the database's backends than pool + reserve; on PgBouncer
//! 1.18 and 1.24. Plus the quick ones, without servers: `--count 1 --format
//! json` is one JSON line; Ctrl-C ends the watch with exit 0 after a whole
//! refresh; a pseudo-terminal is redrawn in place, and gets no escape under
//! NO_COLOR; a fake pooler that refuses the console login is asked once in
//! three refreshes and its words are printed escaped, and one that goes
//! silent costs each refresh its 3-second bound; the flags are checked.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::fake_postgres::{After, FakePostgres, Login, poolwright_within};
use crate::support::pg::{
    ADMIN_PASSWORD, APP_PASSWORD, ENV, Spec, apply, cluster_with_app, for_each_pgbouncer, scratch,
    start_bouncer, text,
};
use crate::support::{self, Run, servers::*};

/// pool_size 2 + reserve_pool_size 2 (Spec's).
const POOL_CAP: u64 = 2 + 2;

/// `poolwright --config CONFIG ARGS...` with NO_COLOR=1 and stdout piped.
fn watch(config: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut env = ENV.to_vec();
    env.push(("NO_COLOR", "1"));
    let started = Instant::now();
    let run = support::poolwright(config.parent().unwrap(), &all, &env);
    eprintln!(
        "--- poolwright {} (exit {}, {} ms):\n{}{}",
        args.join(" "),
        run.code,
        started.elapsed().as_millis(),
        run.stdout,
        run.stderr
    );
    for secret in [APP_PASSWORD, ADMIN_PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a password in the output"
        );
    }
    run
}

/// One pool's row of a refresh, by the header's column names.
#[derive(Debug)]
struct Row {
    cl_waiting: u64,
    maxwait: f64,
    backends: Option<u64>,
    tps: Option<f64>,
}

/// The `qbo_mirror app` row of each plain block.
fn rows(stdout: &str) -> Vec<Row> {
    let blocks: Vec<&str> = stdout
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    blocks
        .iter()
        .map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            let header: Vec<&str> = lines
                .iter()
                .find(|l| l.trim_start().starts_with("DATABASE "))
                .unwrap_or_else(|| panic!("no table in block:\n{block}"))
                .split_whitespace()
                .collect();
            let row: Vec<&str> = lines
                .iter()
                .find(|l| l.trim_start().starts_with("qbo_mirror "))
                .unwrap_or_else(|| panic!("no qbo_mirror pool in block:\n{block}"))
                .split_whitespace()
                .collect();
            assert_eq!(header.len(), row.len(), "{block}");
            let col = |name: &str| {
                let i = header.iter().position(|h| *h == name).unwrap();
                row[i]
            };
            assert_eq!(col("USER"), "app");
            Row {
                cl_waiting: col("CL_WAITING").parse().unwrap(),
                maxwait: col("MAXWAIT").trim_end_matches('s').parse().unwrap(),
                backends: col("BACKENDS").parse().ok(),
                tps: col("TPS").parse().ok(),
            }
        })
        .collect()
}

#[test]
fn status_watch_shows_waiting_clients_under_load() {
    for_each_pgbouncer(under_load);
}

fn under_load(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    spec.default_pool_size = 2;
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    // Ten clients for two server connections, each transaction 0.2 s:
    // about eight wait at any moment.
    let script = dir.path().join("sleep.sql");
    fs::write(&script, "select pg_sleep(0.2);\n").unwrap();
    let port = spec.pool_port.to_string();
    let script_arg = script.to_str().unwrap().to_string();
    let load = thread::spawn(move || {
        let args = [
            "-n",
            "-c",
            "10",
            "-T",
            "8",
            "-f",
            &script_arg,
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "app",
            "qbo_mirror",
        ];
        pgbench(
            &args,
            &[("PGPASSWORD", APP_PASSWORD), ("PGCONNECT_TIMEOUT", "10")],
        )
    });
    // Until the clients are in (a pool appears with its first client).
    thread::sleep(Duration::from_millis(1500));

    let run = watch(
        &spec.config(),
        &["status", "--watch", "--count", "3", "--interval", "1"],
    );
    let json = watch(
        &spec.config(),
        &["--format", "json", "status", "--count", "1"],
    );
    let out = load.join().unwrap();
    eprintln!("--- pgbench ({}):\n{}", out.status, text(&out));
    assert!(out.status.success(), "pgbench failed");

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b'), "an escape under NO_COLOR");
    let rows = rows(&run.stdout);
    eprintln!("rows: {rows:?}");
    assert_eq!(rows.len(), 3, "three refreshes:\n{}", run.stdout);
    assert!(
        rows.iter().any(|r| r.cl_waiting > 0 && r.maxwait > 0.0),
        "no refresh saw clients waiting:\n{}",
        run.stdout
    );
    for r in &rows {
        let b = r.backends.expect("BACKENDS through the direct URL");
        assert!(b <= POOL_CAP, "{b} backends, pool + reserve is {POOL_CAP}");
    }
    // Rates need two refreshes: none on the first, some after.
    assert!(rows[0].tps.is_none(), "{:?}", rows[0]);
    assert!(rows[1..].iter().all(|r| r.tps.is_some_and(|t| t > 0.0)));
    let blocks: Vec<&str> = run.stdout.split("\n\n").collect();
    for (i, block) in blocks.iter().take(3).enumerate() {
        let first = block.trim_start_matches('\n').lines().next().unwrap();
        assert!(
            first.contains(" UTC  refresh ") && first.contains(&format!("refresh {} of 3", i + 1)),
            "{first}"
        );
    }

    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.stdout.lines().count(), 1, "{}", json.stdout);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON object");
    let prod = &doc["targets"][0];
    assert_eq!(prod["watched"], true);
    let pool = prod["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["database"] == "qbo_mirror")
        .expect("the qbo_mirror pool");
    assert_eq!(pool["user"], "app");
    assert!(pool["backends"].as_u64().unwrap() <= POOL_CAP);
    assert!(pool["tps"].is_null(), "one refresh has no rate");
}

/// A config whose PgBouncer is not running: the quick tests need no server.
fn stopped(dir: &Path) -> PathBuf {
    let build = BouncerBuild {
        version: "1.18".into(),
        bin: PathBuf::from("/usr/sbin/pgbouncer"),
    };
    let mut spec = Spec::new(dir, free_port(), &build);
    spec.admin = true;
    spec.write()
}

#[test]
fn status_watch_json_is_one_line_per_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let config = stopped(dir.path());
    let run = watch(&config, &["--format", "json", "status", "--count", "1"]);
    assert_eq!(run.code, 0, "a report: exit 0 with the pooler down");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["refresh"], 1);
    assert_eq!(doc["count"], 1);
    assert!(doc["time"].as_str().unwrap().ends_with(" UTC"));
    let prod = &doc["targets"][0];
    assert_eq!(prod["target"], "prod");
    assert_eq!(prod["watched"], true);
    assert!(
        prod["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{prod}"
    );
    assert_eq!(prod["pools"], serde_json::json!([]));
}

#[test]
fn status_watch_ends_on_ctrl_c_after_a_whole_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let config = stopped(dir.path());
    let mut child = Command::new(support::bin())
        .args(["--config", config.to_str().unwrap(), "status", "--watch"])
        .args(["--interval", "0.5"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(ENV.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two refreshes or so, then Ctrl-C.
    thread::sleep(Duration::from_millis(1200));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after Ctrl-C");
        thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("--- status --watch, then Ctrl-C ({status}):\n{stdout}{stderr}");
    assert_eq!(status.code(), Some(0), "Ctrl-C ends the watch cleanly");
    // stdout is a pipe: plain blocks, each ended by a blank line.
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(stdout.matches(" UTC  refresh ").count() >= 1, "{stdout}");
    assert!(stdout.ends_with("\n\n"), "a refresh cut short: {stdout:?}");
}

#[test]
fn status_watch_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = stopped(dir.path());
    for bad in [
        &["status", "--interval", "1"][..],
        &["status", "--watch", "--interval", "0.1"],
        &["status", "--watch", "--interval", "3601"],
        &["status", "--watch", "--interval", "nan"],
        &["status", "--count", "0"],
        &["--format", "markdown", "status", "--watch"],
    ] {
        let run = watch(&config, bad);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{bad:?}: {}", run.stdout);
    }
    let help = support::poolwright(&support::root(), &["status", "--help"], &[]);
    assert_eq!(help.code, 0);
    for flag in [
        "--watch",
        "--interval <SECS>",
        "[default: 2]",
        "--count <N>",
    ] {
        assert!(help.stdout.contains(flag), "no {flag}:\n{}", help.stdout);
    }
}

/// A config whose pooler and server are the fakes on `pooler` and
/// `upstream`, md5 all through, so the fakes' own words reach poolwright.
fn faked(dir: &Path, pooler: u16, upstream: u16) -> PathBuf {
    let build = BouncerBuild {
        version: "1.24".into(),
        bin: PathBuf::from("/nonexistent"),
    };
    let mut spec = Spec::new(dir, upstream, &build);
    spec.pool_port = pooler;
    spec.admin = true;
    spec.userlist = "md5";
    spec.extra = "      auth_type: md5\n";
    spec.write()
}

#[test]
fn status_watch_offers_a_refused_login_once_and_prints_the_peers_words_escaped() {
    let pooler = FakePostgres::start(Login::Md5, After::Refuse);
    let upstream = FakePostgres::start(Login::Md5, After::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let config = faked(dir.path(), pooler.port, upstream.port);
    let args = ["status", "--count", "3", "--interval", "0.5"];
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(&args);
    let (run, took) = poolwright_within(dir.path(), &all, ENV, Duration::from_secs(60));
    eprintln!(
        "--- poolwright {} (exit {}, {} ms):\n{}{}",
        args.join(" "),
        run.code,
        took.as_millis(),
        run.stdout,
        run.stderr
    );
    assert_eq!(run.code, 0, "a report: exit 0");
    assert_eq!(run.stdout.matches(" UTC  refresh ").count(), 3);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    assert!(
        run.stdout
            .contains("password authentication failed\\u{1b}[2J\\nPASS  forged"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not tried again"), "{}", run.stdout);
    // Three refreshes, one try each: a refused credential is not offered
    // again every interval.
    let console = pooler.seen();
    let direct = upstream.seen();
    eprintln!("pooler saw {console:?}\nserver saw {direct:?}");
    assert_eq!(console.users, ["pgbadmin"]);
    // Without pools there is nothing to count on the server.
    assert!(direct.users.is_empty(), "{direct:?}");
}

#[test]
fn status_watch_outlasts_a_pooler_that_goes_silent() {
    let pooler = FakePostgres::start(Login::Trust, After::Silent);
    let dir = tempfile::tempdir().unwrap();
    let config = faked(dir.path(), pooler.port, free_port());
    let args = ["status", "--count", "2", "--interval", "0.5"];
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(&args);
    let (run, took) = poolwright_within(dir.path(), &all, ENV, Duration::from_secs(30));
    eprintln!(
        "--- poolwright {} (exit {}, {} ms):\n{}{}",
        args.join(" "),
        run.code,
        took.as_millis(),
        run.stdout,
        run.stderr
    );
    assert_eq!(run.code, 0, "{run:?}");
    // Each refresh waits out the 3-second bound once, and says so.
    assert_eq!(
        run.stdout
            .matches("did not answer `SHOW POOLS ...` within 3 s")
            .count(),
        2,
        "{}",
        run.stdout
    );
}

/// `status ARGS` in a pseudo-terminal with `env`; exit code and the bytes
/// the terminal got.
fn on_terminal(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    use expectrl::process::unix::WaitStatus;
    use expectrl::{Eof, Expect as _};
    let mut cmd = Command::new(support::bin());
    cmd.args(["--config", config.to_str().unwrap(), "status"])
        .args(args)
        .current_dir(config.parent().unwrap())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .envs(ENV.iter().copied())
        .envs(env.iter().copied());
    let mut session = expectrl::Session::spawn(cmd).expect("spawn poolwright in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let found = session.expect(Eof).expect("poolwright ends");
    let mut bytes = found.before().to_vec();
    for m in found.matches() {
        bytes.extend_from_slice(m);
    }
    let output = String::from_utf8_lossy(&bytes).into_owned();
    let code = match session.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("poolwright ended with {other:?}"),
    };
    eprintln!("--- on a terminal, {env:?} (exit {code}):\n{output:?}");
    (code, output)
}

#[test]
fn status_watch_redraws_a_terminal_unless_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let config = stopped(dir.path());
    let args = ["--count", "2", "--interval", "0.5"];
    let (code, live) = on_terminal(&config, &args, &[]);
    assert_eq!(code, 0);
    // Cleared once, then redrawn in place with a bold header.
    assert_eq!(live.matches("\x1b[2J").count(), 1, "{live:?}");
    assert_eq!(live.matches("\x1b[H").count(), 2, "{live:?}");
    assert!(live.contains("\x1b[1m"), "{live:?}");
    assert!(live.contains("refresh 2 of 2"), "{live:?}");

    for no_color in ["1", "yes"] {
        let (code, plain) = on_terminal(&config, &args, &[("NO_COLOR", no_color)]);
        assert_eq!(code, 0);
        assert!(
            !plain.contains('\x1b'),
            "an escape under NO_COLOR: {plain:?}"
        );
        assert_eq!(plain.matches(" UTC  refresh ").count(), 2, "{plain:?}");
    }
}
