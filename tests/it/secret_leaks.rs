//! Secrets never leak: every command that works offline runs with known,
//! distinctive secret values (database and admin passwords, the Supabase and
//! Neon API tokens, an AWS secret key), against endpoints that refuse
//! connections, and no form of any secret may appear on stdout or stderr,
//! nor in the files that are not meant to hold one. The files meant to hold
//! one (userlist.txt, .env) are readable by their owner only. Then
//! `url --show-password` must show the password, so the check can fail.
//!
//! The forms checked: the value itself, its distinctive core (which also
//! covers JSON-escaped and shell-quoted copies), its percent-encoding (as in
//! URLs) and its base64. SCRAM verifiers from the rendered userlist.txt are
//! checked too: they are password-equivalent for PgBouncer.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;

use crate::support::{Run, poolwright};

/// A secret: the environment variable that holds it, its value, and a core
/// found in no other text, so a copy in any quoting is still caught.
struct Known {
    var: &'static str,
    value: &'static str,
    core: &'static str,
}

/// Each value has characters URLs must encode, so the encoded form differs.
const SECRETS: &[Known] = &[
    Known {
        var: "APP_DB_PASSWORD",
        value: "Leak7app:p@ss/w%rd?#&",
        core: "Leak7app",
    },
    Known {
        var: "ADMIN_DB_PASSWORD",
        value: "Leak7admin 'q\"x=1",
        core: "Leak7admin",
    },
    Known {
        var: "PLAIN_DB_PASSWORD",
        value: "Leak7plain+;,=",
        core: "Leak7plain",
    },
    Known {
        var: "SUPABASE_DB_PASSWORD",
        value: "Leak7supa@bas/e",
        core: "Leak7supa",
    },
    Known {
        var: "NEON_DB_PASSWORD",
        value: "Leak7neon#frag",
        core: "Leak7neon",
    },
    Known {
        var: "CRUNCHY_DB_PASSWORD",
        value: "Leak7crunchy%25",
        core: "Leak7crunchy",
    },
    Known {
        var: "RDS_DB_PASSWORD",
        value: "Leak7rds$x:y",
        core: "Leak7rds",
    },
    Known {
        var: "SUPABASE_ACCESS_TOKEN",
        value: "sbp_Leak7token0123456789abcdef",
        core: "Leak7token",
    },
    Known {
        var: "NEON_API_KEY",
        value: "napi_Leak7neonkey/+=",
        core: "Leak7neonkey",
    },
    Known {
        var: "AWS_SECRET_ACCESS_KEY",
        value: "Leak7awsSecret/Key+0123456789abcdefABCD",
        core: "Leak7awsSecret",
    },
];

/// Nothing listens here: connections are refused at once.
const NOWHERE: &str = "http://127.0.0.1:1";

fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The database users of the config and the variables of their passwords:
/// their md5 hashes (`md5` + md5(password + user)) count as the secret too.
const USERS: &[(&str, &str)] = &[
    ("app", "APP_DB_PASSWORD"),
    ("pgbadmin", "ADMIN_DB_PASSWORD"),
    ("app", "PLAIN_DB_PASSWORD"),
];

/// Every form of every secret that must not show.
fn forbidden_forms() -> Vec<(String, &'static str)> {
    let mut forms = Vec::new();
    for (user, var) in USERS {
        let value = SECRETS.iter().find(|s| s.var == *var).expect("known").value;
        forms.push((poolwright::scram::md5_secret(user, value), *var));
    }
    for s in SECRETS {
        forms.push((s.value.to_string(), s.var));
        forms.push((s.core.to_string(), s.var));
        forms.push((percent_encoded(s.value), s.var));
        forms.push((
            base64::engine::general_purpose::STANDARD.encode(s.value),
            s.var,
        ));
    }
    forms
}

/// Panics when `text` (named `what`) holds any form of any secret, or `extra`.
#[track_caller]
fn assert_clean(what: &str, text: &str, extra: &[String]) {
    for (form, var) in forbidden_forms() {
        assert!(
            !text.contains(&form),
            "{what} shows the secret in {var} (as `{form}`):\n{text}"
        );
    }
    for form in extra {
        assert!(
            !text.contains(form.as_str()),
            "{what} shows a SCRAM verifier:\n{text}"
        );
    }
    assert!(!text.contains("panicked"), "{what} panicked:\n{text}");
}

fn env() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = SECRETS.iter().map(|s| (s.var, s.value)).collect();
    env.extend([
        ("SUPABASE_API_URL", NOWHERE),
        ("NEON_API_URL", NOWHERE),
        ("AWS_ENDPOINT_URL", NOWHERE),
        ("AWS_ACCESS_KEY_ID", "AKIALEAKTEST"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("PGCONNECT_TIMEOUT", "2"),
        // A panic would print a backtrace too; it is checked like the rest.
        ("RUST_BACKTRACE", "1"),
    ]);
    env
}

/// The config: every kind of provider, each with its own secret. Host paths
/// point into `dir`, so apply writes there and signals nothing real.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 1, max_connections: 100 }}
    config_dir: {d}/etc
    databases:
      qbo_mirror: {{}}
    users:
      app: {{ password: "${{APP_DB_PASSWORD}}" }}
      pgbadmin: {{ password: "${{ADMIN_DB_PASSWORD}}" }}
    systemd: {{ user: root, group: root, unit_dir: {d}/systemd }}
    pgbouncer:
      listen_port: 1
      admin_users: [pgbadmin]
      pidfile: {d}/run/pgbouncer.pid
      unix_socket_dir: ""
  plainbox:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 1, max_connections: 100 }}
    config_dir: {d}/plain-etc
    databases:
      appdb: {{}}
    users:
      app: {{ password: "${{PLAIN_DB_PASSWORD}}" }}
    userlist: plain
    systemd: {{ user: root, group: root, unit_dir: {d}/plain-systemd }}
    pgbouncer:
      listen_port: 1
      pidfile: {d}/run/plain.pid
      unix_socket_dir: ""
  staging:
    provider: supabase
    project_ref: abcdefghijklmnopqrst
    password: "${{SUPABASE_DB_PASSWORD}}"
  preview:
    provider: neon
    project_id: cool-darkness-123456
    role: app
    password: "${{NEON_DB_PASSWORD}}"
    database: qbo_mirror
  crunchy:
    provider: crunchy-bridge
    host: 127.0.0.1
    user: application
    password: "${{CRUNCHY_DB_PASSWORD}}"
  aws:
    provider: rds-proxy
    name: leak-test-proxy
    region: us-east-1
    target: {{ db_instance: leak-test-db }}
    auth: {{ username: app, password: "${{RDS_DB_PASSWORD}}" }}
    role_arn: "arn:aws:iam::123456789012:role/rds-proxy"
    vpc_subnet_ids: [subnet-1, subnet-2]
    vpc_security_group_ids: [sg-1]
    user: app
    password: "${{RDS_DB_PASSWORD}}"
    database: qbo_mirror
"#
    )
}

const TARGETS: &[&str] = &["prod", "plainbox", "staging", "preview", "crunchy", "aws"];

/// Every driver name, from `url --help`'s list via the library.
fn drivers() -> Vec<&'static str> {
    poolwright::drivers::DRIVERS
        .iter()
        .map(|d| d.name)
        .collect()
}

/// Runs `args` in `dir` and checks its output; returns the run.
#[track_caller]
fn run_clean(dir: &Path, args: &[&str], verifiers: &[String]) -> Run {
    let run = poolwright(dir, args, &env());
    let what = format!("`poolwright {}`", args.join(" "));
    assert_clean(&format!("the stdout of {what}"), &run.stdout, verifiers);
    assert_clean(&format!("the stderr of {what}"), &run.stderr, verifiers);
    assert!(
        run.code == 0 || run.code == 1,
        "{what} exited {}:\n{}",
        run.code,
        run.stderr
    );
    run
}

/// The SCRAM verifiers in a rendered userlist.txt.
fn verifiers(userlist: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(userlist).expect("userlist.txt");
    poolwright::userlist::parse(&text)
        .expect("a valid userlist")
        .into_iter()
        .map(|e| e.secret)
        .filter(|s| s.starts_with("SCRAM-SHA-256$"))
        .collect()
}

#[track_caller]
fn assert_mode(path: &Path, mode: u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta.permissions().mode() & 0o777,
        mode,
        "{} has mode {:o}",
        path.display(),
        meta.permissions().mode() & 0o777
    );
}

#[track_caller]
fn assert_file_clean(path: &Path, verifiers: &[String]) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_clean(&path.display().to_string(), &text, verifiers);
}

#[test]
fn no_command_shows_a_secret_unless_asked_to() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    std::fs::write(dir.join("poolwright.yaml"), config(dir)).expect("write config");

    // Render first: its userlist.txt holds the verifiers every later output
    // is checked against.
    let run = run_clean(dir, &["render", "--out", "out"], &[]);
    assert_eq!(run.code, 0, "render: {}", run.stderr);
    let scram = verifiers(&dir.join("out/prod/userlist.txt"));
    assert_eq!(scram.len(), 2, "two users with SCRAM verifiers");
    assert_mode(&dir.join("out/prod/userlist.txt"), 0o600);
    assert_mode(&dir.join("out/plainbox/userlist.txt"), 0o600);
    for file in ["pgbouncer.ini", "pgbouncer.service"] {
        assert_file_clean(&dir.join("out/prod").join(file), &scram);
        assert_file_clean(&dir.join("out/plainbox").join(file), &scram);
    }
    assert_file_clean(&dir.join("out/prod/userlist.txt"), &[]);

    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| commands.push(args.iter().map(|s| s.to_string()).collect());
    add(&["validate"]);
    for format in ["text", "json", "markdown"] {
        add(&["--format", format, "validate"]);
        add(&["--format", format, "plan"]);
        add(&["--format", format, "status"]);
    }
    add(&["plan", "staging", "--refresh", "--api-url", NOWHERE]);
    add(&["plan", "preview", "--refresh"]);
    for target in TARGETS {
        for format in ["text", "json", "markdown"] {
            add(&["--format", format, "url", target]);
            add(&["--format", format, "url", target, "--direct"]);
            for driver in drivers() {
                add(&["--format", format, "url", target, "--driver", driver]);
            }
        }
        for store in ["modal", "kubernetes", "github", "docker", "aws"] {
            add(&["secrets", target, "--to", store]);
            add(&["--format", "json", "secrets", target, "--to", store]);
        }
    }
    add(&["completions", "bash"]);
    add(&["completions", "zsh"]);
    // Unreachable endpoints: the error paths of the network commands.
    add(&["verify", "prod"]);
    add(&["verify", "crunchy"]);
    for target in TARGETS {
        add(&["apply", target]);
    }
    add(&["destroy", "aws", "--yes"]);
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_clean(dir, &args, &scram);
    }

    // apply wrote the plain target's files (it needs no server login).
    assert_mode(&dir.join("plain-etc/userlist.txt"), 0o600);
    assert_file_clean(&dir.join("plain-etc/pgbouncer.ini"), &scram);
    assert_file_clean(&dir.join("plain-systemd/pgbouncer.service"), &scram);

    // env writes the URL with the password: only into a file of its owner.
    for (target, key) in [
        ("prod", "PROD_URL"),
        ("plainbox", "PLAINBOX_URL"),
        ("crunchy", "CRUNCHY_URL"),
    ] {
        let run = run_clean(dir, &["env", target, "--key", key], &scram);
        assert_eq!(run.code, 0, "env {target}: {}", run.stderr);
    }
    assert_mode(&dir.join(".env"), 0o600);
    let dotenv = std::fs::read_to_string(dir.join(".env")).expect(".env");
    assert!(
        dotenv.contains(&percent_encoded(SECRETS[0].value)),
        ".env holds the real URL:\n{dotenv}"
    );
    run_clean(
        dir,
        &["env", "prod", "--check", "--key", "URL_FOR_TEST"],
        &scram,
    );

    // Asked for, the password shows: the checks above could have failed.
    let run = run_clean_except_password(dir);
    assert!(
        run.stdout.contains(&percent_encoded(SECRETS[0].value)),
        "url --show-password shows the password:\n{}",
        run.stdout
    );
}

/// `url prod --show-password`: only the app password may show, encoded.
fn run_clean_except_password(dir: &Path) -> Run {
    let run = poolwright(dir, &["url", "prod", "--show-password"], &env());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let others: Vec<&Known> = SECRETS.iter().skip(1).collect();
    for s in others {
        assert!(
            !run.stdout.contains(s.core),
            "{} shows:\n{}",
            s.var,
            run.stdout
        );
    }
    run
}

/// Configs that fail: the messages quote the file, never the environment.
#[test]
fn error_messages_show_no_secret() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    let bad = [
        // Wrong types where the values come from secrets.
        r#"version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: { host: db.internal, port: "${APP_DB_PASSWORD}", max_connections: "${ADMIN_DB_PASSWORD}" }
    databases: { qbo_mirror: { pool_size: "${NEON_API_KEY}" } }
    users: { app: { password: ["${APP_DB_PASSWORD}"] } }
    pgbouncer: { pool_mode: "${SUPABASE_ACCESS_TOKEN}", log_connections: "${AWS_SECRET_ACCESS_KEY}" }
"#,
        // A missing variable next to set ones.
        r#"version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: { host: "${NOT_SET_HOST}" }
    databases: { qbo_mirror: {} }
    users: { app: { password: "${APP_DB_PASSWORD}" }, other: { password: "${NOT_SET_PASSWORD}" } }
"#,
        // A secret where a name is expected.
        r#"version: 1
targets:
  prod:
    provider: supabase
    project_ref: "${SUPABASE_DB_PASSWORD}"
    password: "${SUPABASE_DB_PASSWORD}"
"#,
    ];
    for yaml in bad {
        std::fs::write(dir.join("poolwright.yaml"), yaml).expect("write config");
        for args in [
            &["validate"][..],
            &["--format", "json", "validate"],
            &["plan"],
            &["render", "--out", "out"],
            &["url", "prod", "--show-password"],
            &["env", "prod"],
            &["apply"],
        ] {
            let run = run_clean(dir, args, &[]);
            assert_eq!(run.code, 1, "{args:?} must fail:\n{}", run.stderr);
            let written: Vec<_> = std::fs::read_dir(dir)
                .expect("project dir")
                .map(|e| e.expect("entry").file_name())
                .filter(|n| n != "poolwright.yaml")
                .collect();
            assert!(written.is_empty(), "{args:?} wrote {written:?}");
        }
    }
}

/// `init --generate-password` puts the password into .env only.
#[test]
fn a_generated_password_goes_only_into_the_env_file() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    let run = run_clean(
        dir,
        &[
            "init",
            "--no-input",
            "--target",
            "prod",
            "--provider",
            "pgbouncer",
            "--user",
            "app",
            "--database",
            "qbo_mirror",
            "--upstream-host",
            "db.internal",
            "--generate-password",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "init: {}", run.stderr);
    assert_mode(&dir.join(".env"), 0o600);
    let dotenv = std::fs::read_to_string(dir.join(".env")).expect(".env");
    let password = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("PROD_DB_PASSWORD="))
        .unwrap_or_else(|| panic!("no PROD_DB_PASSWORD in .env:\n{dotenv}"))
        .trim_matches(['\'', '"']);
    assert!(password.len() >= 16, "a real password: {password}");
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        (
            "poolwright.yaml",
            &std::fs::read_to_string(dir.join("poolwright.yaml")).expect("config"),
        ),
    ] {
        assert!(
            !text.contains(password),
            "init shows the generated password in {what}:\n{text}"
        );
    }
}

/// A successful apply writes the state file: hosts and ids, never a secret;
/// and the mock API sees the token only in the Authorization header.
#[test]
fn the_state_file_and_a_successful_apply_show_no_secret() {
    use crate::managed::REF;
    let host = "aws-1-eu-central-1.pooler.supabase.com";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = rt.block_on(async {
        let server = wiremock::MockServer::start().await;
        let body = serde_json::json!([crate::managed::pooler_entry("PRIMARY", REF, host)]);
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(format!(
                "/v1/projects/{REF}/config/database/pooler"
            )))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        server
    });
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    std::fs::write(dir.join("poolwright.yaml"), config(dir)).expect("write config");
    let run = run_clean(dir, &["apply", "staging", "--api-url", &server.uri()], &[]);
    assert_eq!(run.code, 0, "apply staging: {}", run.stderr);
    let state = dir.join(".poolwright-state.json");
    let text = std::fs::read_to_string(&state).expect("apply wrote the state file");
    assert!(
        text.contains(host),
        "the state holds the pooler host:\n{text}"
    );
    assert_clean(&state.display().to_string(), &text, &[]);
    // Offline afterwards, the URL comes from the state, still masked.
    let run = run_clean(dir, &["url", "staging"], &[]);
    assert_eq!(run.code, 0, "url staging: {}", run.stderr);
    let requests = rt
        .block_on(server.received_requests())
        .expect("requests are recorded");
    assert!(!requests.is_empty(), "apply asked the API");
    for request in requests {
        let url = request.url.to_string();
        assert_clean("a request URL", &url, &[]);
        for (name, value) in &request.headers {
            if name.as_str() != "authorization" {
                assert_clean(name.as_str(), value.to_str().unwrap_or(""), &[]);
            }
        }
        assert_clean(
            "a request body",
            &String::from_utf8_lossy(&request.body),
            &[],
        );
    }
}

/// `{:?}` of a loaded config, every provider kind, shows no secret: a
/// `dbg!`, a log line or an `unwrap` on a result carrying it stays clean.
#[test]
fn debug_formatting_of_a_loaded_config_shows_no_secret() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    let env: Vec<(&str, &str)> = env();
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let config = poolwright::config::parse(Path::new("poolwright.yaml"), config(dir), &lookup)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(config.targets.len(), TARGETS.len());
    let shown = format!("{config:?}\n{config:#?}");
    assert!(shown.contains("Secret(****)"), "passwords show masked");
    assert_clean("the Debug output of the config", &shown, &[]);
}
