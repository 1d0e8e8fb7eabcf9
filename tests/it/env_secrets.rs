//! `.env` files and secret stores never leave a secret where others can
//! read it: a world-readable `.env` is made private, an old value is shown
//! masked or not at all, a key cannot inject lines, printed Modal and GitHub
//! commands hold no value and work as printed, and `--apply` leaves no file
//! behind even when killed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Run, bin, mode, poolwright};

/// Quotes, a space, `$`, `#`, `@` and `/`: its encoded form is checked too.
const PASSWORD: &str = "Sekr3t@p/w 'q\"$x#";
const ENCODED: &str = "Sekr3t%40p%2Fw%20%27q%22%24x%23";

fn config(public_host: &str) -> String {
    format!(
        "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: db.internal }}
    public_host: {public_host}
    databases: {{ qbo_mirror: {{}} }}
    users: {{ app: {{ password: \"${{APP_PASSWORD}}\" }} }}
"
    )
}

fn project(public_host: &str) -> tempfile::TempDir {
    crate::support::project(&config(public_host))
}

fn pw(dir: &Path, args: &[&str]) -> Run {
    poolwright(dir, args, &[("APP_PASSWORD", PASSWORD)])
}

fn real_url(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["url", "prod", "--show-password"];
    args.extend_from_slice(extra);
    let run = pw(dir, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.trim().to_string()
}

#[track_caller]
fn assert_no_password(what: &str, text: &str) {
    for form in [PASSWORD, ENCODED, "Sekr3t"] {
        assert!(!text.contains(form), "{what} shows the password:\n{text}");
    }
}

#[test]
fn env_makes_a_world_readable_env_file_private_and_says_so() {
    let dir = project("pgbouncer.internal");
    let env = dir.path().join(".env");
    fs::write(&env, "OTHER=1\nDATABASE_URL=postgresql://app:old@h/db\n").expect("write");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o644)).expect("chmod");

    // --check changes nothing, and fails: a run would change the mode.
    let check = pw(dir.path(), &["env", "prod", "--check"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(
        check
            .stderr
            .contains(".env: readable by others (0644) and holds a password"),
        "{}",
        check.stderr
    );
    assert_eq!(mode(&env), 0o644, "--check changed the mode");

    let run = pw(dir.path(), &["env", "prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("note: .env was readable by others (0644); it is now 0600\n"),
        "{}",
        run.stderr
    );
    assert_eq!(mode(&env), 0o600);
    let text = fs::read_to_string(&env).expect("read");
    assert!(
        text.contains(ENCODED) && text.starts_with("OTHER=1\n"),
        "{text}"
    );

    // Up to date but readable by others again: --check fails with the fix,
    // a run makes it private without rewriting it.
    fs::set_permissions(&env, fs::Permissions::from_mode(0o664)).expect("chmod");
    let check = pw(dir.path(), &["env", "prod", "--check"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(
        check.stderr.contains(
            "error: .env is readable by others (0664) and holds a password\n  = hint: run `poolwright env prod` to make it 0600"
        ),
        "{}",
        check.stderr
    );
    let run = pw(dir.path(), &["env", "prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("it is now 0600"), "{}", run.stderr);
    assert_eq!(mode(&env), 0o600);
    assert_eq!(fs::read_to_string(&env).expect("read"), text);
    assert_eq!(pw(dir.path(), &["env", "prod", "--check"]).code, 0);

    // Open to the group only: a choice someone made; kept.
    fs::set_permissions(&env, fs::Permissions::from_mode(0o640)).expect("chmod");
    fs::write(&env, "DATABASE_URL=postgresql://app:old@h/db\n").expect("write");
    let run = pw(dir.path(), &["env", "prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    assert_eq!(mode(&env), 0o640);
}

#[test]
fn env_and_env_check_never_show_an_old_password() {
    let dir = project("pgbouncer.internal");
    let env = dir.path().join(".env");
    for (old, shown, secret) in [
        (
            "postgresql://app:pa/ss@h/db",
            "(was postgresql://app:****@h/db)",
            "pa/ss",
        ),
        (
            "postgresql://app:s3cr@t@h:5/d",
            "(was postgresql://app:****@h:5/d)",
            "s3cr",
        ),
        (
            "postgresql://h/db?sslmode=require&Password=hunter2",
            "(was postgresql://h/db?sslmode=require&Password=****)",
            "hunter2",
        ),
        (
            "postgresql://h/db?password=abc@hunter2",
            "(was postgresql://****)",
            "hunter2",
        ),
        ("Password=hunter2", "(was Password=****)", "hunter2"),
        (
            "\"host=h PASSWORD='hun ter2' port=5\"",
            "(was host=h PASSWORD=**** port=5)",
            "ter2",
        ),
        (
            "hunter2",
            "(was a value that is not a URL, not shown)",
            "hunter2",
        ),
    ] {
        fs::write(&env, format!("DATABASE_URL={old}\n")).expect("write");
        fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).expect("chmod");
        for args in [&["env", "prod", "--check"][..], &["env", "prod"]] {
            let run = pw(dir.path(), args);
            assert!(
                run.stderr
                    .contains(&format!(".env: replaced DATABASE_URL {shown}\n")),
                "{old} with {args:?}: {}",
                run.stderr
            );
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{args:?} shows `{secret}` of {old}:\n{}",
                run.stderr
            );
            assert_no_password("env's report", &run.stderr);
        }
    }
}

#[test]
fn a_key_that_is_no_variable_name_is_an_error_and_writes_nothing() {
    let dir = project("pgbouncer.internal");
    let env = dir.path().join(".env");
    let before = "A=1\n";
    fs::write(&env, before).expect("write");
    let long = "K".repeat(254);
    for (flag, key, shown) in [
        ("--key", "X\nEVIL=1", "`X\\nEVIL=1`"),
        ("--key", "", "``"),
        ("--key", "1ST", "`1ST`"),
        ("--key", "A B", "`A B`"),
        ("--key", "A=B", "`A=B`"),
        ("--direct-key", "D\r\nEVIL=1", "`D\\r\\nEVIL=1`"),
        ("--key", long.as_str(), "254 bytes long"),
    ] {
        let mut commands: Vec<Vec<&str>> =
            vec![vec!["env", "prod"], vec!["env", "prod", "--check"]];
        for store in ["modal", "kubernetes", "github", "docker", "aws"] {
            commands.push(vec!["secrets", "prod", "--to", store, "--show-password"]);
        }
        for mut args in commands {
            args.extend([flag, key]);
            let run = pw(dir.path(), &args);
            let what = format!("{args:?}");
            assert_eq!(run.code, 1, "{what}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("error: {flag} "))
                    && run.stderr.contains(shown)
                    && run.stderr.contains("is not an environment variable name"),
                "{what}: {}",
                run.stderr
            );
            assert!(
                !run.stderr.contains("EVIL=1\n") && !run.stderr.contains('\r'),
                "{what} printed the key raw: {}",
                run.stderr
            );
            assert_eq!(run.stdout, "", "{what} printed");
            assert_eq!(fs::read_to_string(&env).expect("read"), before, "{what}");
        }
    }
}

/// Fake `modal`, `gh` and `kubectl` that record their arguments, stdin and
/// any file named in their arguments; with `kill`, modal then kills
/// poolwright (its parent) with SIGKILL, as a user's Ctrl-\ or the OOM
/// killer would.
fn fake_tools(dir: &Path, kill: bool) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    for tool in ["modal", "gh", "kubectl"] {
        let kill = if kill && tool == "modal" {
            "kill -KILL $PPID\n"
        } else {
            ""
        };
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\nprintf '%s\\n' \"$@\" > {d}/{tool}.args\ncat > {d}/{tool}.stdin\nfor a in \"$@\"; do [ -f \"$a\" ] && cp \"$a\" {d}/{tool}.file; done\n{kill}exit 0\n",
            d = dir.display()
        );
        let path = bin.join(tool);
        fs::write(&path, script).expect("write fake tool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

fn search_path(fake: &Path) -> String {
    let poolwright_dir = bin().parent().expect("bin dir").to_path_buf();
    format!(
        "{}:{}:{}",
        fake.display(),
        poolwright_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The names in `dir` (a TMPDIR): none may be left.
fn listing(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("tmp dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn printed_modal_and_github_commands_hold_no_value_and_work_as_printed() {
    let dir = project("pgbouncer.internal");
    let fake = fake_tools(dir.path(), false);
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).expect("mkdir tmp");
    let url = real_url(dir.path(), &["--driver", "prisma"]);
    let direct = real_url(dir.path(), &["--direct"]);
    for store in ["modal", "github"] {
        let mut printed = String::new();
        for extra in [&[][..], &["--show-password"]] {
            let mut args = vec!["secrets", "prod", "--to", store, "--driver", "prisma"];
            args.extend(["--github-env", "production"]);
            args.extend_from_slice(extra);
            let run = pw(dir.path(), &args);
            assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
            assert_no_password(&format!("{args:?}"), &run.stdout);
            assert!(!run.stdout.contains("****"), "{args:?}: {}", run.stdout);
            printed = run.stdout;
        }
        // Run what poolwright printed, as a user would paste it.
        let out = Command::new("sh")
            .arg("-c")
            .arg(&printed)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", search_path(&fake))
            .env("TMPDIR", &tmp)
            .env("APP_PASSWORD", PASSWORD)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{store}: {printed}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tool = if store == "modal" { "modal" } else { "gh" };
        let args = fs::read_to_string(dir.path().join(format!("{tool}.args"))).expect("args");
        assert_no_password(&format!("{tool}'s argv"), &args);
        let dotenv = match store {
            "modal" => {
                let words: Vec<&str> = args.lines().collect();
                assert_eq!(
                    words[..4],
                    ["secret", "create", "prod-database", "--from-dotenv"],
                    "{args}"
                );
                assert_eq!(words[5..], ["--force"], "{args}");
                fs::read_to_string(dir.path().join("modal.file")).expect("the --from-dotenv file")
            }
            _ => {
                assert_eq!(args, "secret\nset\n-f\n-\n--env\nproduction\n");
                fs::read_to_string(dir.path().join("gh.stdin")).expect("stdin")
            }
        };
        let values = |key| poolwright::envfile::values_of(&dotenv, key);
        assert_eq!(values("DATABASE_URL"), vec![url.clone()], "{dotenv}");
        assert_eq!(values("DIRECT_URL"), vec![direct.clone()], "{dotenv}");
        assert_eq!(
            listing(&tmp),
            Vec::<String>::new(),
            "a file was left in TMPDIR"
        );
    }
}

#[test]
fn stores_whose_consumers_run_elsewhere_warn_about_hosts_they_cannot_reach() {
    for (host, store, warning) in [
        (
            "127.0.0.1",
            "modal",
            Some(
                "warning: the URL's host 127.0.0.1 is this machine: Modal's functions cannot reach it; set the target's public_host",
            ),
        ),
        (
            "127.0.0.1",
            "github",
            Some("is this machine: GitHub Actions' hosted runners cannot reach it"),
        ),
        (
            "localhost",
            "aws",
            Some("host localhost is this machine: the AWS services"),
        ),
        (
            "10.0.0.5",
            "modal",
            Some("host 10.0.0.5 is a private address: Modal's functions cannot reach it"),
        ),
        (
            "10.0.0.5",
            "github",
            Some("is a private address (only a self-hosted runner"),
        ),
        ("10.0.0.5", "aws", None),
        ("169.254.0.9", "aws", Some("is a link-local address")),
        ("127.0.0.1", "kubernetes", None),
        ("127.0.0.1", "docker", None),
        ("db.example.com", "modal", None),
    ] {
        let dir = project(host);
        let run = pw(dir.path(), &["secrets", "prod", "--to", store]);
        assert_eq!(run.code, 0, "{host} {store}: {}", run.stderr);
        match warning {
            Some(w) => assert!(run.stderr.contains(w), "{host} {store}: {}", run.stderr),
            None => assert!(
                !run.stderr.contains("warning:"),
                "{host} {store}: {}",
                run.stderr
            ),
        }
        assert_no_password("the warning", &run.stderr);
    }
}

#[test]
fn apply_hands_the_value_over_by_pipe_or_unnamed_file_and_leaves_nothing_when_killed() {
    let dir = project("pgbouncer.internal");
    let url = real_url(dir.path(), &[]);
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).expect("mkdir tmp");
    let tmp_s = tmp.to_str().expect("utf-8");

    // modal: killed while modal runs, poolwright leaves no file with the URL.
    let fake = fake_tools(dir.path(), true);
    let path = search_path(&fake);
    let env = [
        ("APP_PASSWORD", PASSWORD),
        ("PATH", path.as_str()),
        ("TMPDIR", tmp_s),
    ];
    let run = poolwright(
        dir.path(),
        &["secrets", "prod", "--to", "modal", "--apply"],
        &env,
    );
    assert_eq!(run.code, -1, "poolwright was not killed: {}", run.stderr);
    let args = fs::read_to_string(dir.path().join("modal.args")).expect("args");
    assert_no_password("modal's argv", &args);
    assert_eq!(
        listing(&tmp),
        Vec::<String>::new(),
        "a killed run left a file in TMPDIR"
    );
    let dotenv = fs::read_to_string(dir.path().join("modal.file")).expect("the --from-dotenv file");
    assert_eq!(
        poolwright::envfile::values_of(&dotenv, "DATABASE_URL"),
        vec![url.clone()]
    );
    let from = args.lines().nth(5).expect("the --from-dotenv path");
    assert!(from.starts_with("/dev/fd/"), "a named file: {args}");

    // gh and kubectl: the value on stdin, never in argv.
    let fake = fake_tools(dir.path(), false);
    let path = search_path(&fake);
    let env = [
        ("APP_PASSWORD", PASSWORD),
        ("PATH", path.as_str()),
        ("TMPDIR", tmp_s),
    ];
    for (store, tool, argv) in [
        ("github", "gh", "secret\nset\nDATABASE_URL\n"),
        ("kubernetes", "kubectl", "apply\n-f\n-\n"),
    ] {
        let run = poolwright(
            dir.path(),
            &["secrets", "prod", "--to", store, "--apply"],
            &env,
        );
        assert_eq!(run.code, 0, "{store}: {}", run.stderr);
        assert_no_password(store, &run.stderr);
        let args = fs::read_to_string(dir.path().join(format!("{tool}.args"))).expect("args");
        assert_eq!(args, argv);
        let stdin = fs::read_to_string(dir.path().join(format!("{tool}.stdin"))).expect("stdin");
        assert!(stdin.contains(&url), "{tool}'s stdin: {stdin}");
        assert_eq!(listing(&tmp), Vec::<String>::new(), "{store} left a file");
    }
}
