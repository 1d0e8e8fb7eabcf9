//! Who refused the password behind PgBouncer, read right on 1.18 and 1.24.
//!
//! PostgreSQL refusing PgBouncer's own login reaches the app as the
//! server's text (`password authentication failed for user "app"`): 1.24
//! keeps the server's SQLSTATE 28P01, 1.18 sends it as 08P01, and neither
//! adds "server login failed:" (that is in PgBouncer's log only). PgBouncer
//! refusing the app says "SASL authentication failed" (08P01) on both.
//! verify must name the first as the server's refusal of PgBouncer's login,
//! never as poolwright.yaml and userlist.txt disagreeing.

use std::time::Duration;

use poolwright::secret::Secret;
use poolwright::url::PgUrl;
use poolwright::verify::connect::{self, ConnectError, Endpoint};
use poolwright::verify::diagnose::{Situation, Via, diagnose};
use serde_json::Value;

use crate::support::pg::{
    ADMIN_PASSWORD, APP_PASSWORD, APP_PASSWORD_ENCODED, ENV, Spec, apply, cluster_with_app,
    for_each_pgbouncer, pw, query, scratch, start_bouncer,
};
use crate::support::servers::{BouncerBuild, hand_to_service_user};
use crate::support::{Run, poolwright};

fn pooled_url(spec: &Spec) -> String {
    format!(
        "postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{}/qbo_mirror",
        spec.pool_port
    )
}

/// Writes the files without apply, which would mend the server's secret:
/// for a PgBouncer that must move to a new port.
fn render(spec: &Spec) -> String {
    let out = spec.etc("");
    let run = pw(&spec.write(), &["render", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "render failed:\n{run:?}");
    hand_to_service_user(&out);
    run.stderr
}

/// `poolwright verify prod --format json` with `env`.
fn verify(spec: &Spec, env: &[(&str, &str)]) -> (Run, Value) {
    let config = spec.config();
    let run = poolwright(
        config.parent().unwrap(),
        &[
            "--config",
            config.to_str().unwrap(),
            "verify",
            "prod",
            "--connections",
            "3",
            "--samples",
            "2",
            "--format",
            "json",
        ],
        env,
    );
    eprintln!(
        "--- verify (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    (run, report)
}

/// The login check's detail and fix.
fn login(report: &Value) -> (String, String) {
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "login")
        .expect("a login check");
    assert_eq!(check["status"], "fail", "{check}");
    (
        check["detail"].as_str().unwrap_or("").to_string(),
        check["fix"].as_str().unwrap_or("").to_string(),
    )
}

/// The error the app's login through `spec`'s PgBouncer gets, with the
/// password `password` (it must fail).
fn app_login(spec: &Spec, password: &str) -> ConnectError {
    let url = PgUrl::new("127.0.0.1", spec.pool_port, "qbo_mirror")
        .with_user("app", Some(Secret::known(password)));
    let end = Endpoint::from_url(&url).expect("password known");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(connect::connect(&end, Duration::from_secs(10))) {
        Ok(s) => {
            rt.block_on(s.close());
            panic!("{} logged in", url.masked())
        }
        Err(e) => {
            eprintln!("login failed: {:?} (SQLSTATE {:?})", e.text, e.code);
            e
        }
    }
}

/// What diagnose says of `e`, as verify asks it.
fn cause_of(e: &ConnectError) -> String {
    let s = Situation {
        via: Via::Pooler,
        place: &e.place,
        user: "app",
        database: "qbo_mirror",
        target: "prod",
        provider: "pgbouncer",
        code: e.code.as_deref(),
    };
    diagnose(&e.text, &s).cause
}

/// The words that blame poolwright.yaml against userlist.txt.
const CLIENT_SIDE: &[&str] = &[
    "PgBouncer refused the password the app sent",
    "not the one in PgBouncer's userlist.txt",
    "not the one poolwright.yaml gives",
];

#[test]
fn a_password_replaced_on_the_server_is_the_servers_refusal_of_pgbouncers_login() {
    for_each_pgbouncer(server_refusal_on);
}

fn server_refusal_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let bouncer = start_bouncer(&mut spec, apply);
    assert_eq!(query(&pooled_url(&spec), "select current_user"), "app");

    // Someone resets the password on the server; a restart leaves no
    // server connection that could hide it.
    pg.psql("postgres", "ALTER ROLE app PASSWORD 'other'");
    drop(bouncer);
    let _bouncer = start_bouncer(&mut spec, render);

    let (run, report) = verify(&spec, ENV);
    assert_eq!(run.code, 1, "verify passed a pooler the server refuses");
    let (detail, fix) = login(&report);
    assert!(
        detail.contains("password authentication failed for user \\\"app\\\"")
            || detail.contains("password authentication failed for user \"app\""),
        "{detail}"
    );
    assert!(
        detail.contains("PostgreSQL refused PgBouncer's own login as `app`")
            && detail.contains("the secret in userlist.txt is not what the server stores"),
        "PgBouncer {}: {detail}",
        build.version
    );
    for blame in CLIENT_SIDE {
        assert!(
            !detail.contains(blame),
            "PgBouncer {}: {detail}",
            build.version
        );
    }
    assert!(fix.contains("`poolwright apply prod`"), "{fix}");

    // What PgBouncer sends, measured: the server's text, with the server's
    // SQLSTATE on 1.24 and PgBouncer's own 08P01 on 1.18.
    drop(_bouncer);
    let _bouncer = start_bouncer(&mut spec, render);
    let first = app_login(&spec, APP_PASSWORD);
    assert_eq!(
        first.text,
        "password authentication failed for user \"app\""
    );
    let code = if build.version == "1.18" {
        "08P01"
    } else {
        "28P01"
    };
    assert_eq!(
        first.code.as_deref(),
        Some(code),
        "PgBouncer {}",
        build.version
    );
    assert!(
        cause_of(&first).contains("PostgreSQL refused PgBouncer's own login"),
        "{}",
        cause_of(&first)
    );
    // Straight after, within server_login_retry, PgBouncer holds the new
    // client instead of trying the server again (measured: the login does
    // not finish in 10 s on either version): never blamed on the app.
    let again = app_login(&spec, APP_PASSWORD);
    let cause = cause_of(&again);
    for blame in CLIENT_SIDE {
        assert!(!cause.contains(blame), "{:?}: {cause}", again.text);
    }
}

#[test]
fn a_wrong_password_from_the_app_is_pgbouncers_refusal() {
    for_each_pgbouncer(client_refusal_on);
}

fn client_refusal_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let _bouncer = start_bouncer(&mut spec, apply);

    // The app's password variable is not the one apply wrote to userlist.txt.
    let (run, report) = verify(
        &spec,
        &[
            ("APP_PASSWORD", "not-the-password"),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(run.code, 1, "a wrong password passed verify");
    let (detail, fix) = login(&report);
    assert!(detail.contains("SASL authentication failed"), "{detail}");
    assert!(
        detail.contains("PgBouncer refused the password the app sent"),
        "PgBouncer {}: {detail}",
        build.version
    );
    assert!(
        !detail.contains("PostgreSQL refused PgBouncer's own login"),
        "PgBouncer {}: {detail}",
        build.version
    );
    assert!(fix.contains("`poolwright apply prod`"), "{fix}");
    assert!(
        !run.stdout.contains("not-the-password"),
        "the password was printed"
    );

    let e = app_login(&spec, "not-the-password");
    assert_eq!(e.text, "SASL authentication failed");
    assert_eq!(
        e.code.as_deref(),
        Some("08P01"),
        "PgBouncer {}",
        build.version
    );
}
