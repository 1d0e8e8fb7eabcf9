//! What apps get: `.env` merges and secrets for deployment platforms.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{Run, mode, poolwright, project, root};

const CONFIG: &str = "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: { host: db.internal }
    public_host: pgbouncer.internal
    databases: { qbo_mirror: {} }
    users: { app: { password: \"${APP_PASSWORD}\" } }
";
/// Quotes, a space, `$`, `#` and `'`: everything a shell or a .env reader trips on.
const PASSWORD: &str = "p@ss 'w\"$HOME#x";

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

#[test]
fn env_merges_in_place_and_keeps_every_other_byte() {
    let dir = project(CONFIG);
    let env = dir.path().join(".env");
    let before = "# my app\r\nexport DATABASE_URL='postgresql://me:old@x/y'  # by hand\r\nSECRET_KEY=\"abc def\"\r\n\r\nLAST=1";
    fs::write(&env, before).expect("write .env");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o640)).expect("chmod");

    let run = pw(dir.path(), &["env", "prod", "--driver", "prisma"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(".env: replaced DATABASE_URL (was postgresql://me:****@x/y)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(".env: added DIRECT_URL"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("old@") && !run.stderr.contains("p%40ss"),
        "a password leaked: {}",
        run.stderr
    );
    let pooled = real_url(dir.path(), &["--driver", "prisma"]);
    let direct = real_url(dir.path(), &["--direct"]);
    let after = fs::read_to_string(&env).expect("read .env");
    assert_eq!(
        after,
        format!(
            "# my app\r\nexport DATABASE_URL='{pooled}'  # by hand\r\nSECRET_KEY=\"abc def\"\r\n\r\nLAST=1\r\n# poolwright: target prod (driver prisma)\r\nDIRECT_URL={direct}\r\n"
        )
    );
    assert_eq!(mode(&env), 0o640, "the file's mode changed");

    // A second run and --check: nothing to do.
    let again = pw(dir.path(), &["env", "prod", "--driver", "prisma"]);
    assert_eq!(again.code, 0);
    assert_eq!(fs::read_to_string(&env).expect("read"), after);
    assert_eq!(
        pw(
            dir.path(),
            &["env", "prod", "--driver", "prisma", "--check"]
        )
        .code,
        0
    );
    // Another driver needs no DIRECT_URL: --check says stale, the run removes poolwright's line only.
    let check = pw(dir.path(), &["env", "prod", "--check"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(
        check
            .stderr
            .contains("error: .env is out of date for target `prod`"),
        "{}",
        check.stderr
    );
    assert_eq!(
        fs::read_to_string(&env).expect("read"),
        after,
        "--check wrote"
    );
    let plain = pw(dir.path(), &["env", "prod"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let text = fs::read_to_string(&env).expect("read");
    assert!(
        !text.contains("DIRECT_URL") && text.contains("SECRET_KEY=\"abc def\""),
        "{text}"
    );
}

#[test]
fn env_creates_a_private_file_and_cleans_up_gone_targets() {
    let two = format!(
        "{CONFIG}  staging:\n    provider: pgbouncer\n    upstream: {{ host: db2 }}\n    databases: {{ d: {{}} }}\n    users: {{ u: {{ password: x }} }}\n"
    );
    let dir = project(&two);
    let env = dir.path().join(".env");
    let run = pw(
        dir.path(),
        &["env", "staging", "--key", "STAGING_DATABASE_URL"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(mode(&env), 0o600);
    fs::write(dir.path().join("poolwright.yaml"), CONFIG).expect("drop staging");
    let run = pw(dir.path(), &["env", "prod"]);
    assert!(
        run.stderr
            .contains("removed STAGING_DATABASE_URL (target `staging` is gone)"),
        "{}",
        run.stderr
    );
    let text = fs::read_to_string(&env).expect("read");
    assert!(
        !text.contains("STAGING") && !text.contains("target staging"),
        "{text}"
    );
    assert!(
        text.contains("# poolwright: target prod (driver libpq)\nDATABASE_URL=postgresql://app:"),
        "{text}"
    );
}

/// A directory with fake `modal` and `gh` that record their arguments and stdin.
fn fake_tools(dir: &Path) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    for tool in ["modal", "gh"] {
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\nprintf '%s\\n' \"$@\" > {d}/{tool}.args\ncat > {d}/{tool}.stdin\nfor a in \"$@\"; do [ -f \"$a\" ] && cp \"$a\" {d}/{tool}.file; done\nexit 0\n",
            d = dir.display()
        );
        let path = bin.join(tool);
        fs::write(&path, script).expect("write fake tool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The printed commands hold no value (it comes from `poolwright` through a
/// pipe or a 0600 file): pasted into a shell, they store the real URL.
#[test]
fn printed_secret_commands_survive_the_shell() {
    let dir = project(CONFIG);
    let path = format!(
        "{}:{}",
        crate::support::bin().parent().expect("bin dir").display(),
        fake_tools(dir.path())
    );
    let url = real_url(dir.path(), &[]);
    for (store, tool) in [("modal", "modal"), ("github", "gh")] {
        let run = pw(
            dir.path(),
            &[
                "secrets",
                "prod",
                "--to",
                store,
                "--show-password",
                "--github-env",
                "production",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            !run.stdout.contains("p%40ss") && !run.stdout.contains("****"),
            "{}",
            run.stdout
        );
        // Run what poolwright printed, as a user would paste it.
        let out = Command::new("sh")
            .arg("-c")
            .arg(&run.stdout)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("APP_PASSWORD", PASSWORD)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{store}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let args = fs::read_to_string(dir.path().join(format!("{tool}.args"))).expect("args");
        let stdin = fs::read_to_string(dir.path().join(format!("{tool}.stdin"))).expect("stdin");
        assert!(!args.contains("p%40ss"), "the password is in argv: {args}");
        match store {
            "modal" => {
                assert!(
                    args.starts_with("secret\ncreate\nprod-database\n--from-dotenv\n")
                        && args.ends_with("\n--force\n"),
                    "{args}"
                );
                let dotenv = fs::read_to_string(dir.path().join("modal.file")).expect("file");
                assert_eq!(crate_values(&dotenv, "DATABASE_URL"), vec![url.clone()]);
            }
            _ => {
                assert_eq!(args, "secret\nset\n-f\n-\n--env\nproduction\n");
                assert_eq!(
                    stdin,
                    format!("DATABASE_URL={url}\n"),
                    "gh got the env-file on stdin"
                );
            }
        }
    }
}

#[test]
fn apply_hands_secrets_over_by_file_or_stdin_not_argv() {
    let dir = project(CONFIG);
    let path = fake_tools(dir.path());
    let url = real_url(dir.path(), &[]);
    let env = [("APP_PASSWORD", PASSWORD), ("PATH", path.as_str())];
    let run = poolwright(
        dir.path(),
        &["secrets", "prod", "--to", "modal", "--apply"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let args = fs::read_to_string(dir.path().join("modal.args")).expect("args");
    assert!(
        !args.contains("p%40ss"),
        "the password is in modal's argv: {args}"
    );
    let dotenv = fs::read_to_string(dir.path().join("modal.file")).expect("the --from-dotenv file");
    assert_eq!(crate_values(&dotenv, "DATABASE_URL"), vec![url.clone()]);
    let run = poolwright(
        dir.path(),
        &["secrets", "prod", "--to", "github", "--apply"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(dir.path().join("gh.stdin")).expect("stdin"),
        url
    );
}

fn crate_values(text: &str, key: &str) -> Vec<String> {
    poolwright::envfile::values_of(text, key)
}

#[test]
fn docker_env_file_and_aws_json_carry_the_raw_url() {
    let dir = project(CONFIG);
    let url = real_url(dir.path(), &[]);
    let docker = pw(
        dir.path(),
        &["secrets", "prod", "--to", "docker", "--show-password"],
    );
    assert_eq!(docker.stdout, format!("DATABASE_URL={url}\n"));
    let aws = pw(
        dir.path(),
        &[
            "secrets",
            "prod",
            "--to",
            "aws",
            "--show-password",
            "--driver",
            "prisma",
        ],
    );
    let value: serde_json::Value = serde_json::from_str(&aws.stdout).expect("json");
    assert_eq!(
        value["DATABASE_URL"],
        real_url(dir.path(), &["--driver", "prisma"])
    );
    assert_eq!(value["DIRECT_URL"], real_url(dir.path(), &["--direct"]));
}

#[test]
fn kubernetes_secret_passes_schema_validation() {
    let dir = project(CONFIG);
    let run = pw(
        dir.path(),
        &[
            "secrets",
            "prod",
            "--to",
            "kubernetes",
            "--namespace",
            "apps",
            "--show-password",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let url = real_url(dir.path(), &[]);
    assert!(
        run.stdout.contains(&format!("  DATABASE_URL: \"{url}\"\n")),
        "{}",
        run.stdout
    );
    let manifest = dir.path().join("secret.yaml");
    fs::write(&manifest, &run.stdout).expect("write manifest");
    let validator = root().join("target/test-venv/bin/kubernetes-validate");
    if !validator.is_file() {
        if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
            panic!(
                "POOLWRIGHT_REQUIRE_SERVERS=1 but {} is missing",
                validator.display()
            );
        }
        eprintln!("SKIP: kubernetes-validate not installed; run scripts/install-test-deps");
        return;
    }
    let out = Command::new(&validator)
        .arg("--strict")
        .arg(&manifest)
        .output()
        .expect("run kubernetes-validate");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("kubernetes-validate: {said}");
    assert!(out.status.success(), "{said}\n{}", run.stdout);
    assert!(
        said.contains("passed for resource secret/prod-database"),
        "{said}"
    );
    // The validator does catch a broken Secret (so the pass above means something).
    fs::write(
        &manifest,
        run.stdout
            .replace("stringData:\n", "stringData:\n  - not a map\n"),
    )
    .expect("write");
    let bad = Command::new(&validator)
        .arg("--strict")
        .arg(&manifest)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        !bad.status.success(),
        "kubernetes-validate accepted a broken Secret"
    );
}

#[test]
fn plan_says_whether_the_env_file_is_current() {
    let dir = project(CONFIG);
    assert_eq!(
        pw(dir.path(), &["env", "prod", "--driver", "prisma"]).code,
        0
    );
    let plan = pw(dir.path(), &["plan"]);
    assert!(
        plan.stdout
            .contains("  output  .env DATABASE_URL (prisma): current\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("  output  .env DIRECT_URL (prisma): current\n"),
        "{}",
        plan.stdout
    );
    // Without the password, the masked URLs are compared: still current.
    let offline = poolwright(dir.path(), &["plan"], &[]);
    assert!(
        offline.stdout.contains("DATABASE_URL (prisma): current"),
        "{}",
        offline.stdout
    );
    // A new password makes the file stale.
    let changed = poolwright(dir.path(), &["plan"], &[("APP_PASSWORD", "new")]);
    assert!(
        changed
            .stdout
            .contains("DATABASE_URL (prisma): stale: run `poolwright env prod --driver prisma`"),
        "{}",
        changed.stdout
    );
    let json = pw(dir.path(), &["--format", "json", "plan"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(value[0]["outputs"][0]["status"], "current");
}

#[test]
fn kubernetes_manifests_of_a_target_pass_schema_validation() {
    let case = root().join("tests/golden/kubernetes");
    let out = tempfile::tempdir().expect("tempdir");
    let run = poolwright(
        &case,
        &["render", "--out", out.path().to_str().expect("utf-8")],
        &[("APP_PASSWORD", "a\"b"), ("ADMIN_PASSWORD", "c d")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = out.path().join("kubernetes");
    // What `kubectl apply -f DIR` reads: every .json, .yaml and .yml file.
    let mut manifests: Vec<_> = fs::read_dir(&dir)
        .expect("kubernetes/")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 5, "{manifests:?}");
    assert_eq!(mode(&dir.join("secret.yaml")), 0o600);
    // The Secret carries the very userlist.txt rendered beside it.
    let userlist = fs::read_to_string(out.path().join("userlist.txt")).expect("userlist.txt");
    let secret = fs::read_to_string(dir.join("secret.yaml")).expect("secret.yaml");
    let quoted = serde_json::to_string(&userlist).expect("json");
    assert!(
        secret.contains(&format!("  userlist.txt: {quoted}\n")),
        "{secret}"
    );
    let validator = root().join("target/test-venv/bin/kubernetes-validate");
    if !validator.is_file() {
        assert!(
            !std::env::var("POOLWRIGHT_REQUIRE_SERVERS").is_ok_and(|v| v == "1"),
            "POOLWRIGHT_REQUIRE_SERVERS=1 but {} is missing",
            validator.display()
        );
        eprintln!("SKIP: kubernetes-validate not installed; run scripts/install-test-deps");
        return;
    }
    let out = Command::new(&validator)
        .arg("--strict")
        .args(&manifests)
        .output()
        .expect("kubernetes-validate");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("kubernetes-validate:\n{said}");
    assert!(out.status.success(), "{said}");
    for kind in [
        "configmap",
        "secret",
        "deployment",
        "service",
        "poddisruptionbudget",
    ] {
        assert!(
            said.to_lowercase()
                .contains(&format!("passed for resource {kind}/")),
            "{kind}: {said}"
        );
    }
}
