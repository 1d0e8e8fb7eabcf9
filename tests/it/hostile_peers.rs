//! What an API, a state file or a shared directory sends cannot take the
//! token, exhaust memory, forge output or point poolwright elsewhere: the
//! Supabase and Neon clients against tests/it/support/hostile_http.rs,
//! hosts from the API and from `.poolwright-state.json`, and a
//! `poolwright.yaml` found in someone else's directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::managed::{
    NEON_PROJECT, REF, STATE, SUPABASE_NO_HOST, SUPABASE_TOKEN, listing, neon_config, neon_env,
    no_secrets, pooler_path, project, supabase_env,
};
use crate::support::hostile_http::{Answer, HostileHttp};
use crate::support::{Run, poolwright};

/// One attempt, short patience: a hostile answer is not worth retrying.
const PATIENCE: [(&str, &str); 3] = [
    ("POOLWRIGHT_HTTP_TIMEOUT", "5"),
    ("POOLWRIGHT_HTTP_ATTEMPTS", "2"),
    ("POOLWRIGHT_HTTP_BACKOFF", "0"),
];

/// `poolwright apply staging` (Supabase) against `api`, in a fresh project.
fn supabase_apply(api: &HostileHttp) -> (Run, tempfile::TempDir) {
    let dir = project(SUPABASE_NO_HOST);
    let mut env = supabase_env(Some(SUPABASE_TOKEN));
    env.extend(PATIENCE);
    let run = poolwright(
        dir.path(),
        &["apply", "staging", "--api-url", &api.url],
        &env,
    );
    (run, dir)
}

/// Exit 1 with `says` on stderr, nothing on stdout, no secret shown,
/// nothing written besides the config.
#[track_caller]
fn refused(run: &Run, dir: &Path, says: &str) {
    assert_eq!(run.code, 1, "exit code\n{}", run.stderr);
    assert!(
        run.stderr.contains(says),
        "expected `{says}` in:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    no_secrets(run);
    assert_eq!(
        listing(dir),
        vec!["poolwright.yaml"],
        "something was written"
    );
}

/// No byte below 0x20 but a newline, and no ESC, from the peer reached the output.
#[track_caller]
fn printable_only(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in {name}: {text:?}"
        );
    }
}

#[test]
fn a_two_hop_redirect_never_carries_the_token_to_another_host() {
    // The foreign host sends its first hop (which reqwest would have sent
    // without Authorization, the host having changed) on to itself, where
    // a follower would add the token back.
    let foreign = HostileHttp::start(|head| {
        if head.starts_with("GET /hop") {
            Answer::Redirect(302, "/steal".into())
        } else {
            Answer::Status(200, "[]".into())
        }
    });
    let hop = format!("{}/hop", foreign.url);
    let api = HostileHttp::start(move |_| Answer::Redirect(307, hop.clone()));
    let (run, dir) = supabase_apply(&api);
    refused(
        &run,
        dir.path(),
        &format!(
            "the Supabase Management API redirected GET {} (307) to `{}/hop`",
            pooler_path(),
            foreign.url
        ),
    );
    assert!(
        run.stderr.contains("the token was not sent there"),
        "{}",
        run.stderr
    );
    assert!(
        !foreign.saw_authorization(),
        "the token reached the foreign host: {:?}",
        foreign.heads()
    );
    assert!(foreign.heads().is_empty(), "a redirect was followed");
    assert_eq!(api.heads().len(), 1, "a redirect is not retried");
}

#[test]
fn an_endless_body_ends_with_the_cap_for_success_and_error_answers() {
    for status in [200, 500] {
        let api = HostileHttp::start(move |_| Answer::Endless(status));
        let started = Instant::now();
        let (run, dir) = supabase_apply(&api);
        refused(
            &run,
            dir.path(),
            &format!(
                "the Supabase Management API answered GET {} with more than 4 MiB",
                pooler_path()
            ),
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{status}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            api.heads().len(),
            1,
            "{status}: an oversized answer is not retried"
        );
    }
}

#[test]
fn a_promised_huge_body_is_refused_before_it_is_read() {
    let api = HostileHttp::start(|_| {
        Answer::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3221225472\r\nconnection: close\r\n\r\n[".to_vec(),
        )
    });
    let (run, dir) = supabase_apply(&api);
    refused(&run, dir.path(), "with more than 4 MiB");
}

#[test]
fn an_error_body_echoing_the_token_and_escapes_is_masked_and_printable() {
    for status in [400, 500, 502] {
        let body = format!(
            "bad token {SUPABASE_TOKEN}\u{1b}[2J\u{1b}]0;owned\u{7}\nPASS staging: pooled\r\nerror: forged"
        );
        let api = HostileHttp::start(move |_| Answer::Status(status, body.clone()));
        let (run, dir) = supabase_apply(&api);
        refused(
            &run,
            dir.path(),
            &format!("the Supabase Management API answered {status} for"),
        );
        assert!(run.stderr.contains("bad token ****"), "{}", run.stderr);
        printable_only(&run);
        assert!(
            !run.stderr.lines().any(|l| l.starts_with("PASS")),
            "a forged line: {}",
            run.stderr
        );
    }
}

const EVIL_HOST: &str = "evil.example,127.0.0.1";

#[test]
fn a_supabase_pooler_host_that_is_not_one_host_is_refused_and_not_stored() {
    let body = json!([{"database_type": "PRIMARY", "identifier": REF, "db_host": EVIL_HOST}]);
    let api = HostileHttp::start(move |_| Answer::Status(200, body.to_string()));
    let (run, dir) = supabase_apply(&api);
    refused(
        &run,
        dir.path(),
        &format!(
            "the Supabase Management API answered a pooler host for project `{REF}` that is not one host: `{EVIL_HOST}` contains `,`"
        ),
    );
}

#[test]
fn a_neon_host_that_is_not_one_host_is_refused_and_not_stored() {
    for host in [EVIL_HOST, "evil.example\u{1b}[2J", "evil host\u{0}.example"] {
        let uri = format!("postgresql://app:pw@{host}/qbo_mirror?sslmode=require");
        let api = HostileHttp::start(move |_| {
            Answer::Status(200, json!({ "uri": uri.clone() }).to_string())
        });
        let dir = project(&neon_config(Some("ep-main-333333"), None));
        let mut env = neon_env();
        env.extend(PATIENCE);
        let run = poolwright(
            dir.path(),
            &["apply", "preview", "--api-url", &api.url],
            &env,
        );
        refused(
            &run,
            dir.path(),
            &format!(
                "the Neon API answered connection_uri for project `{NEON_PROJECT}` with a host that is not one host"
            ),
        );
        printable_only(&run);
    }
}

#[test]
fn hosts_in_the_state_file_follow_the_host_rule() {
    let cases = [
        (
            SUPABASE_NO_HOST.to_string(),
            "staging",
            json!({"pooler_host": EVIL_HOST}),
        ),
        (
            neon_config(None, None),
            "preview",
            json!({"pooled_host": "a b", "direct_host": "ep-x.example"}),
        ),
    ];
    for (config, target, hosts) in cases {
        let dir = project(&config);
        let state = json!({ "targets": { target: hosts } });
        std::fs::write(dir.path().join(STATE), state.to_string()).expect("write state");
        let run = poolwright(dir.path(), &["url", target], &[("DB_PASSWORD", "pw")]);
        assert_eq!(run.code, 1, "{target}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("kept in .poolwright-state.json is refused"),
            "{target}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{target}: no URL printed");
    }
}

/// The config discovery tests chown files, which only root may do.
fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

const MINIMAL: &str = "version: 1\ntargets:\n  t:\n    provider: digitalocean\n    host: db.example\n    pool: p\n    user: u\n    database: d\n    password: pw\n";

#[test]
fn a_discovered_config_owned_by_another_user_is_refused_but_config_may_name_it() {
    if !running_as_root() {
        eprintln!("skipped: needs root to chown a file to `nobody`");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("passwd")
        .expect("a `nobody` user");
    let dir = project(MINIMAL);
    let sub = dir.path().join("work");
    std::fs::create_dir(&sub).expect("subdir");
    let config = dir.path().join("poolwright.yaml");
    nix::unistd::chown(&config, Some(nobody.uid), None).expect("chown");

    let run = poolwright(&sub, &["validate"], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "not using {}, found by looking up from the working directory: it is owned by user `nobody`",
            config.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--config"),
        "the hint says what to do: {}",
        run.stderr
    );

    let chosen = poolwright(&sub, &["--config", "../poolwright.yaml", "validate"], &[]);
    assert_eq!(
        chosen.code, 0,
        "an explicit --config is the user's choice: {}",
        chosen.stderr
    );

    // The user's own file in a directory another user owns: refused too.
    nix::unistd::chown(&config, Some(nix::unistd::getuid()), None).expect("chown back");
    nix::unistd::chown(dir.path(), Some(nobody.uid), None).expect("chown dir");
    let run = poolwright(&sub, &["validate"], &[]);
    assert!(
        run.code == 1
            && run
                .stderr
                .contains("its directory is owned by user `nobody`"),
        "{}",
        run.stderr
    );
    nix::unistd::chown(dir.path(), Some(nix::unistd::getuid()), None).expect("chown dir back");
}

#[test]
fn a_discovered_config_in_a_world_writable_directory_needs_the_sticky_bit() {
    let dir = project(MINIMAL);
    let sub = dir.path().join("work");
    std::fs::create_dir(&sub).expect("subdir");
    let set_mode = |mode: u32| {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set_mode(0o777);
    let run = poolwright(&sub, &["validate"], &[]);
    assert!(
        run.code == 1 && run.stderr.contains("writable by everyone (and not sticky)"),
        "{}",
        run.stderr
    );
    set_mode(0o1777);
    let run = poolwright(&sub, &["validate"], &[]);
    assert_eq!(run.code, 0, "sticky, like /tmp: {}", run.stderr);
    set_mode(0o700);
}
