//! One verifier per role, everywhere: apply never breaks another pooler's
//! server logins, and never stores a secret that locks a role out.
//!
//! Real PostgreSQL (pg_hba.conf: scram-sha-256, its default) and PgBouncer
//! 1.18 and 1.24. Each PgBouncer is restarted before it is used, so the
//! queries through it need a fresh server login, which one surviving server
//! connection could otherwise hide.

use std::fs;

use crate::support::pg::{
    APP_PASSWORD, APP_PASSWORD_ENCODED, Spec, apply, cluster_with_app, for_each_pgbouncer, pw,
    query, rolpassword, scratch, start_bouncer, userlist_secret,
};
use crate::support::servers::{BouncerBuild, PgBouncer};

fn pooled_url(spec: &Spec) -> String {
    format!(
        "postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{}/qbo_mirror",
        spec.pool_port
    )
}

fn direct_url(spec: &Spec) -> String {
    format!(
        "postgresql://app:{APP_PASSWORD_ENCODED}@127.0.0.1:{}/qbo_mirror",
        spec.pg_port
    )
}

fn userlist_verifier(spec: &Spec) -> String {
    let text = fs::read_to_string(spec.etc("userlist.txt")).expect("userlist.txt");
    userlist_secret(&text, "app").expect("app in userlist.txt")
}

/// Starts (or restarts) the PgBouncer of `spec` and proves a fresh server
/// login through it works.
fn serve(spec: &mut Spec) -> PgBouncer {
    let bouncer = start_bouncer(spec, apply);
    assert_eq!(query(&pooled_url(spec), "select current_user"), "app");
    bouncer
}

#[test]
fn poolers_for_one_role_converge_on_one_verifier() {
    for_each_pgbouncer(poolers_for_one_role_converge_on);
}

fn poolers_for_one_role_converge_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let server = rolpassword(&pg, "app");
    let dirs = [scratch(), scratch(), scratch()];
    // Two hosts' PgBouncers and a third config for the same role.
    let mut specs: Vec<Spec> = dirs
        .iter()
        .map(|d| Spec::new(d.path(), pg.port, build))
        .collect();
    specs[2].default_pool_size = 5;

    let first = apply(&specs[0]);
    let mut a = serve(&mut specs[0]);
    apply(&specs[1]);
    let mut b = serve(&mut specs[1]);
    let third = apply(&specs[2]);
    for out in [&first, &third] {
        assert!(!out.contains("stored the SCRAM verifier"), "{out}");
    }
    // In any order, again.
    apply(&specs[1]);
    apply(&specs[0]);
    apply(&specs[2]);
    for spec in &specs {
        assert_eq!(
            userlist_verifier(spec),
            server,
            "{}: userlist.txt and the server disagree",
            spec.dir.display()
        );
    }
    assert_eq!(rolpassword(&pg, "app"), server, "apply changed the server");

    // Restarted, both serve new server logins.
    drop(a);
    drop(b);
    a = serve(&mut specs[0]);
    b = serve(&mut specs[1]);
    assert_eq!(query(&direct_url(&specs[0]), "select current_user"), "app");
    drop((a, b));
}

#[test]
fn a_role_without_a_scram_verifier_gets_one_and_every_pooler_keeps_it() {
    for_each_pgbouncer(a_role_without_a_scram_verifier_on);
}

fn a_role_without_a_scram_verifier_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    // An md5 hash stored (as an old setup left it) and pg_hba.conf still
    // asking SCRAM would lock `app` out, so give it an md5 rule first.
    pg.psql(
        "postgres",
        &format!(
            "SET password_encryption = 'md5'; ALTER ROLE app PASSWORD '{}'",
            APP_PASSWORD.replace('\'', "''")
        ),
    );
    assert!(rolpassword(&pg, "app").starts_with("md5"));
    pg.allow_md5("app");
    let dirs = [scratch(), scratch()];
    let mut specs: Vec<Spec> = dirs
        .iter()
        .map(|d| Spec::new(d.path(), pg.port, build))
        .collect();

    let first = apply(&specs[0]);
    assert!(
        first.contains("stored the SCRAM verifier of role `app`")
            && first.contains("the server holds no SCRAM verifier for it (it asks md5)")
            && first.contains("fails new server logins until it is applied again"),
        "{first}"
    );
    let stored = rolpassword(&pg, "app");
    assert_eq!(userlist_verifier(&specs[0]), stored);
    let a = serve(&mut specs[0]);

    // The second pooler takes that verifier rather than storing its own.
    let second = apply(&specs[1]);
    assert!(!second.contains("stored the SCRAM verifier"), "{second}");
    assert_eq!(userlist_verifier(&specs[1]), stored);
    assert_eq!(rolpassword(&pg, "app"), stored);
    drop(a);
    let _a = serve(&mut specs[0]);
    let _b = serve(&mut specs[1]);
}

#[test]
fn md5_userlist_is_refused_where_the_server_asks_scram() {
    for_each_pgbouncer(md5_userlist_is_refused_on);
}

fn md5_userlist_is_refused_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let before = rolpassword(&pg, "app");
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.userlist = "md5";
    // auth_type md5 keeps validate's own check (md5 userlist with a SCRAM
    // auth_type) out of the way: the refusal here is the server's answer.
    spec.extra = "      auth_type: md5\n";
    let run = pw(&spec.write(), &["apply"]);
    eprintln!(
        "--- apply with userlist: md5 (exit {}):\n{}",
        run.code, run.stderr
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("`userlist: md5` would lock `app` out")
            && run.stderr.contains("asks SCRAM-SHA-256 of it")
            && run.stderr.contains("Nothing was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rolpassword(&pg, "app"),
        before,
        "the server's secret changed"
    );
    assert!(
        !spec.etc("userlist.txt").exists(),
        "apply wrote userlist.txt"
    );
    assert_eq!(query(&direct_url(&spec), "select current_user"), "app");

    // plan says what apply will do about it before anyone runs apply.
    let plan = pw(&spec.config(), &["plan"]);
    assert!(
        plan.stdout
            .contains("refused if the server asks SCRAM-SHA-256 of `app`"),
        "{plan:?}"
    );
}

fn verify(spec: &Spec) -> crate::support::Run {
    let run = pw(
        &spec.config(),
        &["verify", "prod", "--connections", "3", "--samples", "2"],
    );
    eprintln!(
        "--- verify (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    run
}

#[test]
fn verify_fails_when_the_servers_verifier_was_replaced_behind_pgbouncers_back() {
    for_each_pgbouncer(verify_fails_when_the_verifier_was_replaced_on);
}

fn verify_fails_when_the_verifier_was_replaced_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let _bouncer = serve(&mut spec);
    let before = verify(&spec);
    assert!(
        before.stdout.contains("PASS") && before.stdout.contains("server login"),
        "{before:?}"
    );
    assert!(!before.stdout.contains("FAIL"), "{before:?}");

    // Another host's setup resets the password (same password, new salt).
    pg.psql(
        "postgres",
        &format!(
            "ALTER ROLE app PASSWORD '{}'",
            APP_PASSWORD.replace('\'', "''")
        ),
    );
    // PgBouncer's open server connection still serves...
    assert_eq!(query(&pooled_url(&spec), "select current_user"), "app");
    // ...but verify sees that no new one could log in.
    let after = verify(&spec);
    assert_eq!(after.code, 1, "verify passed a pooler that cannot log in");
    assert!(
        after
            .stdout
            .contains("the server holds a different SCRAM verifier for `app` than userlist.txt"),
        "{after:?}"
    );
    // apply takes the server's verifier; verify passes again.
    apply(&spec);
    let mended = verify(&spec);
    assert_eq!(mended.code, 0, "{mended:?}");
}

#[test]
fn verify_names_the_md5_lock_out() {
    for_each_pgbouncer(verify_names_the_md5_lock_out_on);
}

fn verify_names_the_md5_lock_out_on(build: &BouncerBuild) {
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    apply(&spec);
    let _bouncer = serve(&mut spec);
    // The seed guide's setup: an md5 hash in userlist.txt, while the
    // server (pg_hba.conf: scram-sha-256) asks SCRAM of the role.
    let md5 = poolwright::scram::md5_secret("app", APP_PASSWORD);
    fs::write(spec.etc("userlist.txt"), format!("\"app\" \"{md5}\"\n")).unwrap();
    let run = verify(&spec);
    assert_eq!(run.code, 1, "verify passed an md5 lock-out: {run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL  server login:")
                && l.contains("md5 lock-out")
                && l.contains("asks SCRAM-SHA-256")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("verdict: BROKEN"), "{}", run.stdout);
}

#[test]
fn apply_never_logs_in_as_a_console_only_user() {
    for_each_pgbouncer(apply_never_logs_in_as_a_console_only_user_on);
}

fn apply_never_logs_in_as_a_console_only_user_on(build: &BouncerBuild) {
    // `pgbadmin` is in admin_users only, and no such role exists on the
    // server: apply must not probe or log in as it.
    let pg = cluster_with_app();
    let dir = scratch();
    let mut spec = Spec::new(dir.path(), pg.port, build);
    spec.admin = true;
    let out = apply(&spec);
    assert!(!out.contains("`pgbadmin`"), "{out}");
    let text = fs::read_to_string(spec.etc("userlist.txt")).unwrap();
    assert!(userlist_secret(&text, "pgbadmin").is_some(), "{text}");
}
