//! A hostile PostgreSQL or PgBouncer (tests/it/support/fake_postgres.rs)
//! cannot hang a command or take a password: every query is bounded, no
//! password goes out in a weaker way than the target's method, no second
//! credential follows a refusal, no oversized message is read.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::fake_postgres::{After, FakePostgres, Login, poolwright_within};

const PASSWORD: &str = "s3cret-app-password";
const ADMIN: &str = "s3cret-admin-password";
const ENV: &[(&str, &str)] = &[("APP_PASSWORD", PASSWORD), ("ADMIN_PASSWORD", ADMIN)];

/// A PgBouncer target whose pooler is `pooler` and whose server is
/// `upstream`, with an admin console user; returns the config path.
fn config(dir: &Path, pooler: u16, upstream: u16) -> String {
    config_with(dir, pooler, upstream, "")
}

fn config_with(dir: &Path, pooler: u16, upstream: u16, extra: &str) -> String {
    let d = dir.display();
    let yaml = format!(
        r#"version: 1
targets:
  prod:
    provider: pgbouncer
    version: "1.24"
    upstream: {{ host: 127.0.0.1, port: {upstream}, max_connections: 100 }}
    public_host: 127.0.0.1
    config_dir: "{d}/etc"
    databases:
      app: {{}}
    users:
      app: {{ password: "${{APP_PASSWORD}}" }}
      pgbadmin: {{ password: "${{ADMIN_PASSWORD}}" }}
    url: {{ user: app, database: app }}
    systemd: {{ unit_dir: "{d}/units" }}
    pgbouncer:
      listen_addr: 127.0.0.1
      listen_port: {pooler}
      admin_users: pgbadmin
      pidfile: "{d}/pgbouncer.pid"
{extra}"#
    );
    let path = dir.join("poolwright.yaml");
    fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_string()
}

fn run(dir: &Path, config: &str, args: &[&str], limit: u64) -> crate::support::Run {
    let mut all = vec!["--config", config];
    all.extend_from_slice(args);
    let (run, took) = poolwright_within(dir, &all, ENV, Duration::from_secs(limit));
    eprintln!(
        "--- poolwright {} (exit {}, {} ms):\n{}{}",
        args.join(" "),
        run.code,
        took.as_millis(),
        run.stdout,
        run.stderr
    );
    assert_ne!(
        run.code,
        -9,
        "poolwright {} hung past {limit} s",
        args.join(" ")
    );
    run
}

fn assert_no_escape(run: &crate::support::Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD) && !text.contains(ADMIN), "{text}");
        assert!(!text.contains('\x1b'), "an escape from the peer: {text:?}");
        assert!(
            !text.lines().any(|l| l.starts_with("PASS  forged")),
            "a line forged by the peer: {text}"
        );
    }
}

#[test]
fn a_peers_words_reach_the_terminal_printable() {
    let pooler = FakePostgres::start(Login::Md5, After::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        pooler.port,
        pooler.port,
        "      auth_type: md5\n    userlist: md5\n",
    );
    let verify = run(
        dir.path(),
        &config,
        &["verify", "prod", "--connections", "2", "--samples", "1"],
        90,
    );
    assert_eq!(verify.code, 1);
    assert!(
        verify
            .stdout
            .contains("password authentication failed\\u{1b}[2J\\nPASS  forged"),
        "{}",
        verify.stdout
    );
    assert_no_escape(&verify);
    let status = run(dir.path(), &config, &["status"], 30);
    assert_no_escape(&status);
}

#[test]
fn no_password_goes_out_in_clear_to_a_scram_target_and_no_second_credential_follows_a_refusal() {
    let pooler = FakePostgres::start(Login::Cleartext, After::Refuse);
    let upstream = FakePostgres::start(Login::Cleartext, After::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), pooler.port, upstream.port);
    let verify = run(
        dir.path(),
        &config,
        &["verify", "prod", "--connections", "2", "--samples", "1"],
        90,
    );
    assert_eq!(verify.code, 1);
    assert!(
        verify.stdout.contains("weaker than the target allows"),
        "{}",
        verify.stdout
    );
    assert_no_escape(&verify);
    let status = run(dir.path(), &config, &["status"], 30);
    assert_no_escape(&status);
    for (name, fake) in [("pooler", &pooler), ("server", &upstream)] {
        let seen = fake.seen();
        eprintln!("{name} saw {seen:?}");
        assert!(
            seen.passwords.is_empty(),
            "the {name} got a password in clear: {seen:?}"
        );
    }
    assert!(
        !pooler.seen().users.iter().any(|u| u == "pgbadmin"),
        "the admin credential was tried after the app's was refused: {:?}",
        pooler.seen()
    );
}

#[test]
fn a_pooler_that_goes_silent_after_the_login_ends_status_in_bounded_time() {
    let pooler = FakePostgres::start(Login::Trust, After::Silent);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), pooler.port, pooler.port);
    // status promises 3 s per probe: a login and one console query.
    let status = run(dir.path(), &config, &["status"], 30);
    assert!(status.code == 0 || status.code == 1, "{status:?}");
    assert!(pooler.seen().users.iter().any(|u| u == "pgbadmin"));
}

#[test]
fn a_pooler_that_goes_silent_after_the_login_ends_verify_with_the_bound_named() {
    let pooler = FakePostgres::start(Login::Trust, After::Silent);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), pooler.port, pooler.port);
    let verify = run(
        dir.path(),
        &config,
        &["verify", "prod", "--connections", "2", "--samples", "1"],
        150,
    );
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(
        verify.stdout.contains("did not answer `") && verify.stdout.contains("within 10 s"),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_server_that_goes_silent_at_alter_role_ends_apply_with_the_bound_named() {
    let upstream = FakePostgres::start(Login::Md5, After::Silent);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1, upstream.port);
    let apply = run(dir.path(), &config, &["apply", "prod"], 60);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply.stderr.contains("did not answer `ALTER ROLE") && apply.stderr.contains("within 10 s"),
        "{}",
        apply.stderr
    );
    assert_no_escape(&apply);
}

#[test]
fn an_oversized_message_from_the_server_is_refused() {
    let upstream = FakePostgres::start(Login::Md5, After::Huge);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 1, upstream.port);
    let apply = run(dir.path(), &config, &["apply", "prod"], 60);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply
            .stderr
            .contains("announced a message of 1073741824 bytes"),
        "{}",
        apply.stderr
    );
}
