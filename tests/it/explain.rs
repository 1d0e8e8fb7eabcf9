//! `poolwright explain TEXT` through the binary: the same table as verify's
//! diagnosis, entry for entry, so the two never disagree.

use std::io::Write as _;
use std::process::{Command, Stdio};

use poolwright::diagnostic::printable;
use poolwright::verify::diagnose::{Entry, Situation, TABLE, Via, diagnose};
use serde_json::Value;

use crate::support::{Run, bin, poolwright};

const ONE_TARGET: &str = "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: { host: db.internal }
    public_host: pgbouncer.internal
    databases: { qbo_mirror: {} }
    users: { app: { password: \"${QBO_DB_PASSWORD}\" } }
    url: { user: app, database: qbo_mirror }
";

/// A directory with no poolwright.yaml in it or above it.
fn nowhere() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        poolwright::config::discover(dir.path()).is_none(),
        "a poolwright.yaml above {}",
        dir.path().display()
    );
    dir
}

fn with_config(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("poolwright.yaml"), yaml).expect("write config");
    dir
}

/// The connection an entry is about (the admin console's refusal is about
/// the console only), and its --via word.
fn via_for(e: &Entry) -> (Via, &'static str) {
    [
        (Via::Pooler, "pooled"),
        (Via::Direct, "direct"),
        (Via::AdminConsole, "console"),
    ]
    .into_iter()
    .find(|(v, _)| (e.when)(&Situation::unknown(*v)))
    .expect("an entry matches some connection")
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

#[test]
fn explain_says_what_verify_says_for_every_example_in_the_table() {
    let dir = nowhere();
    let mut checked = 0;
    for e in TABLE {
        let (via, word) = via_for(e);
        for text in e.examples {
            // The library: the entry itself, not an earlier one or the fallback.
            let direct = diagnose(&printable(text), &Situation::unknown(via));
            assert_eq!(direct.matched, Some(e.name), "{text:?}: {direct:?}");
            // The binary: the same entry, cause and fix.
            let run = poolwright(
                dir.path(),
                &["explain", text, "--via", word, "--format", "json"],
                &[],
            );
            assert_eq!(run.code, 0, "{text:?}: {run:?}");
            let out = json(&run);
            assert_eq!(out["matched"], e.name, "{text:?}");
            assert_eq!(out["cause"], direct.cause.as_str(), "{text:?}");
            assert_eq!(out["fix"], direct.fix.as_str(), "{text:?}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} examples");
}

#[test]
fn the_issues_errors_are_all_known() {
    let dir = nowhere();
    for (text, entry) in [
        (
            "FATAL:  remaining connection slots are reserved for non-replication superuser connections",
            "no-connection-slots",
        ),
        (
            "SSL connection has been closed unexpectedly",
            "ssl-closed-unexpectedly",
        ),
        (
            "server closed the connection unexpectedly",
            "server-closed-unexpectedly",
        ),
        (
            "prepared statement \"_pg3_0\" does not exist",
            "prepared-statement-moved",
        ),
        (
            "prepared statement \"__asyncpg_stmt_1__\" already exists",
            "prepared-statement-moved",
        ),
        (
            "unsupported startup parameter: search_path",
            "unsupported-startup-parameter",
        ),
        (
            "no more connections allowed (max_client_conn)",
            "max-client-conn",
        ),
        ("query_wait_timeout", "query-wait-timeout"),
        (
            "server login has been failing, try again later (server_login_retry)",
            "server-login-retry",
        ),
        (
            "cannot do SCRAM authentication: wrong password type",
            "wrong-password-type",
        ),
        ("Tenant or user not found", "supavisor-tenant-not-found"),
        ("Max client connections reached", "max-client-conn"),
        (
            "(EDBHANDLEREXITED) DbHandler exited. Check logs for more information",
            "supavisor-db-handler-exited",
        ),
        (
            "Authentication error, reason: \"Wrong password\"",
            "supavisor-auth-error",
        ),
        (
            "Timed-out waiting to acquire database connection",
            "rds-proxy-borrow-timeout",
        ),
        (
            "FATAL:  This RDS Proxy requires TLS connections",
            "tls-required",
        ),
    ] {
        let run = poolwright(dir.path(), &["explain", text], &[]);
        assert_eq!(run.code, 0, "{text:?}: {run:?}");
        assert!(
            run.stdout.contains(&format!("\nmatched: {entry}\n")),
            "{text:?}: {}",
            run.stdout
        );
        assert!(run.stdout.starts_with("cause: "), "{}", run.stdout);
        assert!(run.stdout.contains("\nfix: "), "{}", run.stdout);
    }
}

#[test]
fn fixes_name_the_one_target_and_never_make_one_up() {
    // One target in the config found here: its name, place and user.
    let one = with_config(ONE_TARGET);
    let run = poolwright(one.path(), &["explain", "no such user: app"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("the pooler at pgbouncer.internal:6432 does not know user `app`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("`poolwright apply prod`"),
        "{}",
        run.stdout
    );

    // Two targets and no --target: no name at all, commands that run as typed.
    let two = with_config(&format!(
        "{ONE_TARGET}  staging:\n    provider: pgbouncer\n    upstream: {{ host: db.staging }}\n    databases: {{ qbo_mirror: {{}} }}\n    users: {{ app: {{ password: \"x\" }} }}\n"
    ));
    let none = nowhere();
    for dir in [two.path(), none.path()] {
        for e in TABLE {
            let (_, word) = via_for(e);
            for text in e.examples {
                let run = poolwright(dir, &["explain", text, "--via", word], &[]);
                assert_eq!(run.code, 0, "{text:?}: {run:?}");
                for made_up in ["TARGET", "NAME", "prod", "staging", "<target>", "``"] {
                    assert!(
                        !run.stdout.contains(made_up),
                        "{text:?}: {made_up:?} in {}",
                        run.stdout
                    );
                }
            }
        }
    }
    let run = poolwright(two.path(), &["explain", "no such user: app"], &[]);
    assert!(
        run.stdout.contains("run `poolwright apply`: ")
            && run
                .stdout
                .contains("`poolwright apply` applies every target"),
        "{}",
        run.stdout
    );
    // --target picks one of them.
    let run = poolwright(
        two.path(),
        &["explain", "no such user: app", "--target", "staging"],
        &[],
    );
    assert!(
        run.stdout.contains("`poolwright apply staging`"),
        "{}",
        run.stdout
    );
    let wrong = poolwright(two.path(), &["explain", "x", "--target", "nope"], &[]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong.stderr.contains("no target `nope`"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn the_sqlstate_tells_the_servers_refusal_from_pgbouncers() {
    let one = with_config(ONE_TARGET);
    let run = poolwright(
        one.path(),
        &[
            "explain",
            "Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen",
            "--sqlstate",
            "28p01",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("PostgreSQL refused PgBouncer's own login as `app`"),
        "{}",
        run.stdout
    );
    let run = poolwright(
        one.path(),
        &[
            "explain",
            "SASL authentication failed",
            "--sqlstate",
            "08P01",
        ],
        &[],
    );
    assert!(
        run.stdout
            .contains("PgBouncer refused the password the app sent"),
        "{}",
        run.stdout
    );
    let bad = poolwright(one.path(), &["explain", "x", "--sqlstate", "28"], &[]);
    assert_eq!(bad.code, 2, "{bad:?}");
}

/// `poolwright explain -` with `input` on stdin, in `dir`.
fn explain_stdin(dir: &std::path::Path, input: &[u8], args: &[&str]) -> Run {
    let mut child = Command::new(bin())
        .arg("explain")
        .arg("-")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run poolwright");
    let mut stdin = child.stdin.take().expect("stdin");
    // A refused write (the binary stopped reading) is the test's answer.
    let _ = stdin.write_all(input);
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn stdin_is_read_up_to_64_kib_and_printed_back_printable() {
    let dir = nowhere();
    // psql's own framing around the server's words, as pasted from a log.
    let pasted = b"psql: error: connection to server at \"10.0.0.7\", port 6432 failed: FATAL:  remaining connection slots are reserved for non-replication superuser connections\n";
    let run = explain_stdin(dir.path(), pasted, &["--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(json(&run)["matched"], "no-connection-slots");

    let mut big = vec![b'x'; 64 * 1024];
    big.extend_from_slice(b" query_wait_timeout");
    let run = explain_stdin(dir.path(), &big, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("more than 64 KiB"), "{}", run.stderr);

    // Terminal escapes in the text come back escaped, never raw.
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2Jcertificate verify failed\u{202e}";
    for run in [
        explain_stdin(dir.path(), hostile.as_bytes(), &[]),
        poolwright(dir.path(), &["explain", hostile], &[]),
    ] {
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains("matched: certificate"),
            "{}",
            run.stdout
        );
        for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(!run.stdout.contains(raw), "{:?}", run.stdout);
        }
        assert!(run.stdout.contains("\\u{1b}"), "{}", run.stdout);
    }
}

#[test]
fn an_unknown_text_exits_1_with_the_fallback_and_a_hint_to_verify() {
    let dir = nowhere();
    let run = poolwright(dir.path(), &["explain", "the flux capacitor is empty"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("error: no known cause for this text\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pooler's log") && run.stderr.contains("`poolwright verify`"),
        "{}",
        run.stderr
    );
    let run = poolwright(
        dir.path(),
        &["explain", "the flux capacitor is empty", "--format", "json"],
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(json(&run)["matched"], Value::Null);

    let one = with_config(ONE_TARGET);
    let run = poolwright(one.path(), &["explain", "the flux capacitor is empty"], &[]);
    assert!(
        run.stderr.contains("`poolwright verify prod`"),
        "{}",
        run.stderr
    );

    let empty = poolwright(dir.path(), &["explain", "  "], &[]);
    assert_eq!(empty.code, 2, "{empty:?}");
    let help = poolwright(dir.path(), &["explain", "--help"], &[]);
    assert!(
        help.stdout.contains("1 none did (like grep"),
        "{}",
        help.stdout
    );
}
