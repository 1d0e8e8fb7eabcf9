//! The command line as users meet it.

use crate::support::{poolwright, root};

const CONFIG: &str = "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: { host: db.internal }
    databases: { qbo_mirror: {} }
    users: { app: { password: \"${QBO_DB_PASSWORD}\" } }
";
const PASSWORD: &str = "p@ss:w/rd#%?&\"x";
const ENCODED: &str = "p%40ss%3Aw%2Frd%23%25%3F%26%22x";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("poolwright.yaml"), CONFIG).expect("write config");
    dir
}

#[test]
fn url_is_masked_unless_asked() {
    let dir = project();
    let env = [("QBO_DB_PASSWORD", PASSWORD)];
    let masked = poolwright(dir.path(), &["url", "prod"], &env);
    assert_eq!(masked.code, 0, "{}", masked.stderr);
    assert_eq!(
        masked.stdout,
        "postgresql://app:****@127.0.0.1:6432/qbo_mirror\n"
    );
    let shown = poolwright(dir.path(), &["url", "prod", "--show-password"], &env);
    assert_eq!(
        shown.stdout,
        format!("postgresql://app:{ENCODED}@127.0.0.1:6432/qbo_mirror\n")
    );
    let direct = poolwright(dir.path(), &["url", "prod", "--direct"], &env);
    assert_eq!(
        direct.stdout,
        "postgresql://app:****@db.internal:5432/qbo_mirror\n"
    );
    let json = poolwright(dir.path(), &["--format", "json", "url", "prod"], &env);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(
        value["url"],
        "postgresql://app:****@127.0.0.1:6432/qbo_mirror"
    );
}

#[test]
fn no_output_shows_the_password() {
    let dir = project();
    let out = dir.path().join("out");
    let env = [("QBO_DB_PASSWORD", PASSWORD)];
    for args in [
        vec!["validate"],
        vec!["plan"],
        vec!["--format", "json", "plan"],
        vec!["--format", "markdown", "plan"],
        vec!["--format", "json", "validate"],
        vec!["render", "--out", out.to_str().expect("utf-8")],
        vec!["url", "prod"],
    ] {
        let run = poolwright(dir.path(), &args, &env);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        for secret in [PASSWORD, ENCODED] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{args:?} leaked the password"
            );
        }
    }
}

#[test]
fn plan_and_validate_need_no_credentials() {
    let dir = project();
    let plan = poolwright(dir.path(), &["plan"], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("url     postgresql://app:****@127.0.0.1:6432/qbo_mirror"),
        "{}",
        plan.stdout
    );
    let validate = poolwright(dir.path(), &["validate"], &[]);
    assert_eq!(validate.code, 0);
    assert!(
        validate.stderr.contains("`QBO_DB_PASSWORD` is not set"),
        "{}",
        validate.stderr
    );
    // ...but revealing the password or rendering userlist.txt does.
    let shown = poolwright(dir.path(), &["url", "prod", "--show-password"], &[]);
    assert_eq!(shown.code, 1);
    assert!(
        shown
            .stderr
            .contains("environment variable `QBO_DB_PASSWORD` is not set"),
        "{}",
        shown.stderr
    );
    assert!(
        shown.stderr.contains("poolwright.yaml:7:31"),
        "{}",
        shown.stderr
    );
    let out = dir.path().join("out");
    let render = poolwright(
        dir.path(),
        &["render", "--out", out.to_str().expect("utf-8")],
        &[],
    );
    assert_eq!(render.code, 1);
    assert!(
        !out.exists(),
        "render wrote files despite the missing password"
    );
}

#[test]
fn finds_the_config_in_a_parent_directory() {
    let dir = project();
    let sub = dir.path().join("a/b");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let run = poolwright(&sub, &["url", "prod"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let none = tempfile::tempdir().expect("tempdir");
    let missing = poolwright(none.path(), &["plan"], &[]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with("error: no poolwright.yaml in "),
        "{}",
        missing.stderr
    );
}

#[test]
fn render_layout_one_target_and_several() {
    let dir = project();
    let env = [("QBO_DB_PASSWORD", "pw")];
    let run = poolwright(dir.path(), &["render", "--out", "one"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "prod: postgresql://app:****@127.0.0.1:6432/qbo_mirror\n"
    );
    for f in ["pgbouncer.ini", "userlist.txt", "pgbouncer.service"] {
        assert!(dir.path().join("one").join(f).is_file(), "{f}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("one/userlist.txt"))
            .expect("stat")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A second render reuses the verifier: byte-identical files.
    let before = std::fs::read(dir.path().join("one/userlist.txt")).expect("read");
    let again = poolwright(dir.path(), &["render", "--out", "one"], &env);
    assert!(
        again.stderr.contains("unchanged one/userlist.txt"),
        "{}",
        again.stderr
    );
    assert_eq!(
        before,
        std::fs::read(dir.path().join("one/userlist.txt")).expect("read")
    );

    let two = format!(
        "{CONFIG}  staging:\n    provider: pgbouncer\n    upstream: {{ host: db2 }}\n    databases: {{ d: {{}} }}\n    users: {{ u: {{ password: x }} }}\n"
    );
    std::fs::write(dir.path().join("poolwright.yaml"), two).expect("write");
    let run = poolwright(dir.path(), &["render", "--out", "many"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(dir.path().join("many/prod/pgbouncer.ini").is_file());
    assert!(dir.path().join("many/staging/userlist.txt").is_file());
    let only = poolwright(dir.path(), &["render", "staging", "--out", "only"], &env);
    assert_eq!(only.code, 0, "{}", only.stderr);
    assert!(dir.path().join("only/pgbouncer.ini").is_file());
}

#[test]
fn unknown_target_suggests_the_right_one() {
    let dir = project();
    let run = poolwright(dir.path(), &["url", "prd"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: no target `prd` in poolwright.yaml\n  = hint: did you mean `prod`?\n"
    );
}

#[test]
fn usage_errors_exit_2_and_help_documents_every_command() {
    let run = poolwright(&root(), &["render"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--out <DIR>"));
    let help = poolwright(&root(), &["--help"], &[]);
    assert_eq!(help.code, 0);
    for command in ["validate", "plan", "render", "apply", "url", "completions"] {
        assert!(help.stdout.contains(command), "--help lacks {command}");
        let sub = poolwright(&root(), &[command, "--help"], &[]);
        assert_eq!(sub.code, 0, "{command} --help");
    }
}

#[test]
fn destroy_without_a_terminal_or_yes_exits_2_and_touches_nothing() {
    let example = root().join("examples/automatch-books");
    let run = poolwright(
        &example,
        &["destroy", "aws"],
        &[
            ("QBO_DB_PASSWORD", "x"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: destroy asks for confirmation; stdin is not a terminal\n  = hint: run `poolwright destroy aws --yes`\n"
    );
}

#[test]
fn templates_dir_overrides_a_builtin_template() {
    let dir = project();
    let templates = dir.path().join("my-templates/pgbouncer");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(
        templates.join("pgbouncer.service.tera"),
        "# custom unit for {{ target }}\n",
    )
    .expect("write");
    let run = poolwright(
        dir.path(),
        &["render", "--out", "out", "--templates", "my-templates"],
        &[("QBO_DB_PASSWORD", "pw")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/pgbouncer.service")).expect("read"),
        "# custom unit for prod\n"
    );
}

#[test]
fn completions_are_generated() {
    let run = poolwright(&root(), &["completions", "bash"], &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("poolwright"));
}

/// The `../` rule: poolwright.yaml cannot send a write outside the place it
/// shows (host paths are absolute and free of `..`, see
/// tests/invalid/host-paths-leave-their-place), but a directory the user
/// names on the command line is theirs to choose, `..` included.
#[test]
fn output_paths_given_on_the_command_line_are_honoured_even_outside_the_project() {
    let parent = tempfile::tempdir().expect("tempdir");
    let project = parent.path().join("project");
    std::fs::create_dir(&project).expect("project dir");
    std::fs::write(project.join("poolwright.yaml"), CONFIG).expect("write config");
    let env = [("QBO_DB_PASSWORD", PASSWORD)];
    let run = poolwright(&project, &["render", "--out", "../rendered"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("wrote ../rendered/pgbouncer.ini"),
        "{}",
        run.stderr
    );
    assert!(parent.path().join("rendered/userlist.txt").is_file());
    let run = poolwright(&project, &["env", "prod", "--file", "../app.env"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(parent.path().join("app.env")).expect("app.env");
    assert!(text.contains(ENCODED), "{text}");
}
