//! `poolwright init`: the wizard through a real pseudo-terminal (expectrl
//! driving the built binary; inquire draws on the terminal), and its
//! `--no-input` form with snapshots of the files it writes.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect as _};

use crate::support::{assert_file, bin, poolwright, root};

const DOWN: &str = "\x1b[B";
const ENTER: &str = "\r";
const CTRL_C: &str = "\x03";
const ESC: &str = "\x1b";

/// A wizard running in a pseudo-terminal, with everything it printed.
struct Wizard {
    session: expectrl::session::OsSession,
    output: Vec<u8>,
}

impl Wizard {
    /// `poolwright init ARGS` in `dir`, with a clean environment.
    fn start(dir: &Path, args: &[&str]) -> Wizard {
        let mut cmd = Command::new(bin());
        cmd.arg("init").args(args).current_dir(dir).env_clear();
        for keep in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.env("TERM", "xterm");
        let mut session = expectrl::Session::spawn(cmd).expect("spawn poolwright in a pty");
        session.set_expect_timeout(Some(Duration::from_secs(20)));
        Wizard {
            session,
            output: Vec::new(),
        }
    }

    /// Waits until `text` is on the screen.
    fn wait(&mut self, text: &str) {
        match self.session.expect(text) {
            Ok(found) => {
                self.output.extend_from_slice(found.before());
                self.output.extend_from_slice(&found[0]);
            }
            Err(e) => panic!(
                "waiting for {text:?}: {e}\n--- screen so far ---\n{}",
                String::from_utf8_lossy(&self.output)
            ),
        }
    }

    /// Waits for `prompt`, then types `keys`.
    fn answer(&mut self, prompt: &str, keys: &str) {
        self.wait(prompt);
        self.session.send(keys).expect("type into the pty");
    }

    /// Waits for the end; returns the exit code and everything printed.
    fn finish(mut self) -> (i32, String) {
        if let Ok(found) = self.session.expect(Eof) {
            self.output.extend_from_slice(found.before());
        }
        let code = match self.session.get_process().wait().expect("wait") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("poolwright ended with {other:?}"),
        };
        (code, String::from_utf8_lossy(&self.output).into_owned())
    }
}

fn project() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// The file passes `validate` and `plan` (no credentials needed).
fn assert_valid(dir: &Path) {
    for args in [&["validate"][..], &["plan"][..]] {
        let run = poolwright(dir, args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    }
}

/// The value `.env` gives `var`.
fn env_value(dir: &Path, var: &str) -> String {
    let text = read(&dir.join(".env"));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{var}=")))
        .unwrap_or_else(|| panic!("{var} not in .env:\n{text}"))
        .to_string()
}

#[test]
fn a_pgbouncer_session_asks_again_with_the_reason_and_writes_a_valid_file() {
    let dir = project();
    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", ENTER); // pgbouncer, the first
    w.answer("Target name", &format!("prod{ENTER}"));
    w.answer("PostgreSQL server host", &format!("db.internal{ENTER}"));
    w.answer("PostgreSQL server port", ENTER);
    w.answer("max_connections (optional)", &format!("100{ENTER}"));
    // The headroom for direct connections: asked again when out of range.
    w.answer("kept for direct connections", &format!("97{ENTER}"));
    w.wait("direct_connections 97 leaves no server slot for the pools");
    w.answer("kept for direct connections", &format!("12{ENTER}"));
    w.answer("CPU cores (optional)", &format!("4{ENTER}"));
    w.wait("Pool size per database and user: 20 (PgBouncer's default, which 2 x 4 cores + 1 does not exceed");
    w.answer("PgBouncer version", ENTER); // 1.18
    w.answer("Database name", &format!("my db{ENTER}"));
    // Asked again, with the loader's reason.
    w.wait("PgBouncer 1.18 accepts only letters, digits");
    w.answer("Database name", &format!("qbo_mirror{ENTER}"));
    w.answer("Database user", &format!("app{ENTER}"));
    w.answer("Environment variable", ENTER); // PROD_DB_PASSWORD
    w.answer("Generate a strong password", ENTER); // yes
    w.answer("Pool mode", ENTER); // transaction
    w.answer(
        "apps use to reach PgBouncer",
        &format!("pgbouncer.internal{ENTER}"),
    );
    w.wait("Next:");
    let (code, screen) = w.finish();
    assert_eq!(code, 0, "{screen}");
    let config = read(&dir.path().join("poolwright.yaml"));
    assert!(config.contains("qbo_mirror: {}"), "{config}");
    assert!(config.contains("app: { password: \"${PROD_DB_PASSWORD}\" }"));
    assert!(config.contains("public_host: pgbouncer.internal"));
    assert!(config.contains("max_connections: 100"));
    assert!(config.contains("direct_connections: 12"), "{config}");
    assert!(!config.contains("my db"));
    assert_eq!(mode(&dir.path().join("poolwright.yaml")), 0o644);
    let password = env_value(dir.path(), "PROD_DB_PASSWORD");
    assert_eq!(password.len(), 32);
    assert!(!config.contains(&password) && !screen.contains(&password));
    assert_eq!(mode(&dir.path().join(".env")), 0o600);
    assert_valid(dir.path());
    let url = poolwright(dir.path(), &["url", "prod"], &[]);
    assert_eq!(
        url.stdout,
        "postgresql://app:****@pgbouncer.internal:6432/qbo_mirror\n"
    );
}

#[test]
fn a_supabase_session_refuses_a_bad_project_ref() {
    let dir = project();
    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", &format!("{DOWN}{ENTER}")); // supabase
    w.answer("Target name", &format!("staging{ENTER}"));
    w.answer("Supabase project ref", &format!("Not-A-Ref{ENTER}"));
    w.wait("is not a Supabase project ref");
    w.wait("20 lowercase letters");
    w.answer(
        "Supabase project ref",
        &format!("abcdefghijklmnopqrst{ENTER}"),
    );
    w.answer(
        "Pooler host (optional)",
        &format!("aws-0-us-east-1.pooler.supabase.com{ENTER}"),
    );
    w.answer("Pool mode", &format!("{DOWN}{ENTER}")); // session
    w.answer("Database role", ENTER); // postgres
    w.answer(
        "Environment variable",
        &format!("SUPABASE_DB_PASSWORD{ENTER}"),
    );
    w.answer("Generate a strong password", ENTER); // no, the default for a managed database
    w.answer("Database name", ENTER); // postgres
    w.wait("Next:");
    let (code, screen) = w.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!dir.path().join(".env").exists(), "no password, no .env");
    let config = read(&dir.path().join("poolwright.yaml"));
    assert!(config.contains("pool_mode: session"), "{config}");
    assert!(config.contains("password: \"${SUPABASE_DB_PASSWORD}\""));
    assert_valid(dir.path());
    let url = poolwright(dir.path(), &["url", "staging"], &[]);
    assert_eq!(
        url.stdout,
        "postgresql://postgres.abcdefghijklmnopqrst:****@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require\n"
    );
}

#[test]
fn a_neon_session_writes_a_valid_file() {
    let dir = project();
    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", &format!("{DOWN}{DOWN}{ENTER}")); // neon
    w.answer("Target name", &format!("preview{ENTER}"));
    w.answer("Neon project id", &format!("cool-darkness-123456{ENTER}"));
    w.answer("Compute endpoint id", &format!("cool-darkness{ENTER}"));
    w.wait("is not an endpoint id");
    w.answer(
        "Compute endpoint id",
        &format!("ep-cool-darkness-123456{ENTER}"),
    );
    w.answer("Region (optional)", &format!("us-east-2{ENTER}"));
    w.answer("Database role", &format!("app{ENTER}"));
    w.answer("Environment variable", &format!("1BAD{ENTER}"));
    w.wait("is not an environment variable name");
    w.answer("Environment variable", ENTER); // PREVIEW_DB_PASSWORD
    w.answer("Generate a strong password", &format!("y{ENTER}"));
    w.answer("Database name", &format!("qbo_mirror{ENTER}"));
    w.wait("Next:");
    let (code, screen) = w.finish();
    assert_eq!(code, 0, "{screen}");
    let password = env_value(dir.path(), "PREVIEW_DB_PASSWORD");
    let config = read(&dir.path().join("poolwright.yaml"));
    assert!(!config.contains(&password) && !screen.contains(&password));
    assert_valid(dir.path());
    let url = poolwright(dir.path(), &["url", "preview"], &[]);
    assert_eq!(
        url.stdout,
        "postgresql://app:****@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech:5432/qbo_mirror?sslmode=require&channel_binding=require\n"
    );
}

/// A provider of the user's own: its questions come from the manifest.
const ACME: &str = r#"name = "acme"
title = "Acme Pooled Postgres"
summary = "Acme's pooler on port 7777 of the cluster"
docs = "https://acme.example/docs/pooling"
module = "managed"

[connection]
scheme = "postgresql"
default_port = 7777

[managed]
pool_mode = "{mode}"
prepared_statements = true
params = { sslmode = "verify-full" }
pooled = { host = "{cluster}.pool.acme.example", port = "7777", user = "{user}@{tenant}", database = "{database}" }
direct = { host = "{cluster}.db.acme.example", port = "{direct_port}", user = "{user}", database = "{database}" }

[[managed.fields]]
name = "cluster"
doc = "the cluster id"
required = true

[[managed.fields]]
name = "tenant"
doc = "the tenant, part of the pooler's user name"
required = true

[[managed.fields]]
name = "user"
doc = "the role"
default = "app"

[[managed.fields]]
name = "password"
doc = "the role's password"
required = true
secret = true

[[managed.fields]]
name = "database"
doc = "the database"
default = "main"

[[managed.fields]]
name = "direct_port"
doc = "the direct port"
default = "5433"

[[managed.fields]]
name = "mode"
doc = "the pool mode"
default = "transaction"
choices = ["transaction", "session"]
"#;

fn acme_project() -> tempfile::TempDir {
    let dir = project();
    std::fs::create_dir(dir.path().join("providers")).expect("mkdir");
    std::fs::write(dir.path().join("providers/acme.toml"), ACME).expect("manifest");
    dir
}

#[test]
fn a_manifest_provider_session_asks_the_manifest_fields() {
    let dir = acme_project();
    let mut w = Wizard::start(dir.path(), &["--provider", "acme"]);
    w.wait("(from --provider)");
    w.answer("Target name", &format!("acme{ENTER}"));
    w.answer("Cluster", &format!("c-42{ENTER}"));
    w.answer("Tenant", &format!("books{ENTER}"));
    w.answer("User", ENTER); // app
    w.answer("Environment variable", ENTER);
    w.answer("Generate a strong password", ENTER);
    w.answer("Database", ENTER); // main
    w.answer("Direct port", &format!("not-a-port{ENTER}"));
    w.wait("is not a port number");
    w.answer("Direct port", ENTER); // 5433
    w.answer("Mode", &format!("{DOWN}{ENTER}")); // session
    w.wait("Next:");
    let (code, screen) = w.finish();
    assert_eq!(code, 0, "{screen}");
    assert_valid(dir.path());
    let url = poolwright(dir.path(), &["url", "acme"], &[]);
    assert_eq!(
        url.stdout,
        "postgresql://app%40books:****@c-42.pool.acme.example:7777/main?sslmode=verify-full\n"
    );
}

#[test]
fn ctrl_c_or_esc_leaves_nothing_behind() {
    let dir = project();
    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", ENTER);
    w.answer("Target name", &format!("prod{ENTER}"));
    w.answer("PostgreSQL server host", &format!("db{CTRL_C}"));
    w.wait("cancelled: nothing was written");
    let (code, screen) = w.finish();
    assert_eq!(code, 130, "{screen}");

    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", &format!("{DOWN}{DOWN}{ENTER}"));
    w.answer("Target name", &format!("preview{ENTER}"));
    w.answer("Neon project id", &format!("p-1{ENTER}"));
    w.answer("Compute endpoint id", ESC);
    w.wait("cancelled: nothing was written");
    let (code, screen) = w.finish();
    assert_eq!(code, 130, "{screen}");

    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An existing file with comments everywhere, a target, and `version`
/// after `targets` with its own comment.
const EXISTING: &str = "# Our pooler config. Keep the comments!\r
targets:\r
    # the production PgBouncer\r
    prod:\r
        provider: pgbouncer   # self-hosted\r
        upstream: { host: db.internal }\r
        databases: { qbo_mirror: {} }\r
        users: { app: { password: \"${QBO_DB_PASSWORD}\" } }\r
\r
# The format version, last on purpose.\r
version: 1\r
";

#[test]
fn adding_a_target_keeps_every_byte_of_the_existing_file() {
    let dir = project();
    let path = dir.path().join("poolwright.yaml");
    std::fs::write(&path, EXISTING).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let mut w = Wizard::start(dir.path(), &[]);
    w.answer("Which pooler", &format!("{DOWN}{DOWN}{ENTER}")); // neon
    w.answer("Target name", &format!("prod{ENTER}"));
    w.wait("has a target `prod` already");
    w.answer("Target name", &format!("preview{ENTER}"));
    w.answer("Neon project id", &format!("cool-darkness-123456{ENTER}"));
    w.answer("Compute endpoint id", ENTER);
    w.answer("Region (optional)", ENTER);
    w.answer("Database role", &format!("app{ENTER}"));
    w.answer("Environment variable", ENTER);
    w.answer("Generate a strong password", ENTER);
    w.answer("Database name", &format!("qbo_mirror{ENTER}"));
    w.wait("Next:");
    let (code, screen) = w.finish();
    assert_eq!(code, 0, "{screen}");
    let new = read(&path);
    // The new target goes after the last one, before the comment that
    // belongs to `version`; the old text is intact around it.
    let split = EXISTING
        .find("\r\n\r\n# The format version")
        .expect("fixture")
        + 2;
    let (head, tail) = EXISTING.split_at(split);
    assert!(new.starts_with(head), "{new}");
    assert!(new.ends_with(tail), "{new}");
    let inserted = &new[head.len()..new.len() - tail.len()];
    assert!(inserted.starts_with("\r\n    preview:\r\n"), "{inserted:?}");
    assert!(
        inserted.contains("\r\n        provider: neon\r\n"),
        "{inserted:?}"
    );
    assert!(!inserted.replace("\r\n", "").contains('\n'), "CRLF kept");
    assert_eq!(mode(&path), 0o640, "the file keeps its mode");
    assert_valid(dir.path());
    assert!(poolwright(dir.path(), &["url", "prod"], &[]).code == 0);
}

/// `init --no-input` in a fresh directory; returns the file it wrote.
fn scripted(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["init", "--no-input"];
    all.extend_from_slice(args);
    let run = poolwright(dir, &all, &[]);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Next:"), "{}", run.stdout);
    assert_valid(dir);
    read(&dir.join("poolwright.yaml"))
}

#[test]
fn no_input_snapshots_per_provider() {
    let cases: &[(&str, &[&str])] = &[
        (
            "pgbouncer",
            &[
                "--target",
                "prod",
                "--provider",
                "pgbouncer",
                "--upstream-host",
                "db.internal",
                "--upstream-port",
                "5433",
                "--upstream-max-connections",
                "100",
                "--upstream-direct-connections",
                "8",
                "--upstream-cores",
                "4",
                "--pgbouncer-version",
                "1.24",
                "--database",
                "qbo_mirror",
                "--user",
                "app",
                "--password-env",
                "QBO_DB_PASSWORD",
                "--pool-mode",
                "session",
                "--public-host",
                "pgbouncer.internal",
            ],
        ),
        (
            "pgbouncer-minimal",
            &[
                "--target",
                "prod",
                "--provider",
                "pgbouncer",
                "--upstream-host",
                "db.internal",
                "--database",
                "qbo_mirror",
                "--user",
                "app",
            ],
        ),
        (
            "supabase",
            &[
                "--target",
                "staging",
                "--provider",
                "supabase",
                "--project-ref",
                "abcdefghijklmnopqrst",
            ],
        ),
        (
            "neon",
            &[
                "--target",
                "preview",
                "--provider",
                "neon",
                "--project-id",
                "cool-darkness-123456",
                "--endpoint",
                "ep-cool-darkness-123456",
                "--region",
                "us-east-2",
                "--role",
                "app",
                "--database",
                "qbo_mirror",
            ],
        ),
        (
            "digitalocean",
            &[
                "--target",
                "do",
                "--provider",
                "digitalocean",
                "--set",
                "host=db-do-user-1-0.b.db.ondigitalocean.com",
                "--set",
                "pool=qbo-pool",
                "--database",
                "qbo_mirror",
                "--pool-mode",
                "session",
            ],
        ),
    ];
    for (case, args) in cases {
        let dir = project();
        let text = scripted(dir.path(), args);
        assert_file(&root().join(format!("tests/wizard/{case}.yaml")), &text);
    }
    let dir = acme_project();
    let text = scripted(
        dir.path(),
        &[
            "--target",
            "acme",
            "--provider",
            "acme",
            "--set",
            "cluster=c-42",
            "--set",
            "tenant=books",
        ],
    );
    assert_file(&root().join("tests/wizard/user-manifest.yaml"), &text);
}

#[test]
fn no_input_names_every_missing_flag_and_refuses_bad_values() {
    let dir = project();
    let run = poolwright(
        dir.path(),
        &["init", "--no-input", "--provider", "pgbouncer"],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: --no-input needs 4 more flags: --target, --upstream-host, --database, --user\n"
    );
    let run = poolwright(dir.path(), &["init", "--no-input"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--provider, --target"),
        "{}",
        run.stderr
    );
    let run = poolwright(
        dir.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "azure-flexible",
            "--target",
            "az",
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--set server=VALUE, --user, --database"),
        "{}",
        run.stderr
    );
    let run = poolwright(
        dir.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "supabase",
            "--target",
            "s",
            "--project-ref",
            "x",
            "--upstream-host",
            "h",
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--upstream-host does not apply to provider `supabase`"),
        "{}",
        run.stderr
    );
    let run = poolwright(
        dir.path(),
        &["init", "--no-input", "--provider", "pgbounce"],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `pgbouncer`?"),
        "{}",
        run.stderr
    );

    // A wrong value: the loader's diagnostic, exit 1, nothing written.
    let run = poolwright(
        dir.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "pgbouncer",
            "--target",
            "prod",
            "--upstream-host",
            "db",
            "--database",
            "my db",
            "--user",
            "app",
            "--upstream-port",
            "http",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the database name `my db` contains ` `"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expected an integer, found `http`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(field `targets.prod.upstream.port`)"),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none()
    );
}

#[test]
fn without_a_terminal_it_prints_the_command_instead_of_hanging() {
    let dir = project();
    let run = poolwright(
        dir.path(),
        &["init", "--provider", "neon", "--target", "preview"],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("standard input is not a terminal"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "poolwright init --no-input --provider neon --target preview --project-id PROJECT_ID --role ROLE --database DATABASE"
        ),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none()
    );
}

#[test]
fn a_generated_password_goes_only_into_dotenv() {
    let dir = project();
    let env = dir.path().join(".env");
    let mine = "# mine\nexport API_KEY='k' # keep\n\n# poolwright: target gone\nDATABASE_URL=postgresql://x\n";
    std::fs::write(&env, mine).expect("write .env");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let run = poolwright(
        dir.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "pgbouncer",
            "--target",
            "prod",
            "--upstream-host",
            "db",
            "--database",
            "app",
            "--user",
            "app",
            "--generate-password",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = read(&env);
    assert!(text.starts_with(mine), "every old byte stays:\n{text}");
    let password = env_value(dir.path(), "PROD_DB_PASSWORD");
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    let config = read(&dir.path().join("poolwright.yaml"));
    for shown in [&config, &run.stdout, &run.stderr] {
        assert!(!shown.contains(&password), "the password leaked:\n{shown}");
    }
    assert_eq!(mode(&env), 0o640, "an existing .env keeps its mode");
    // Not a poolwright-owned line: `poolwright env` must never remove it.
    assert!(!text.contains("# poolwright: target prod"), "{text}");
    let env_run = poolwright(
        dir.path(),
        &["env", "prod"],
        &[("PROD_DB_PASSWORD", &password)],
    );
    assert_eq!(env_run.code, 0, "{}", env_run.stderr);
    assert_eq!(env_value(dir.path(), "PROD_DB_PASSWORD"), password);

    // A second target cannot generate over a variable .env already sets.
    let again = poolwright(
        dir.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "neon",
            "--target",
            "preview",
            "--project-id",
            "p",
            "--role",
            "app",
            "--database",
            "app",
            "--password-env",
            "PROD_DB_PASSWORD",
            "--generate-password",
        ],
        &[],
    );
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("sets PROD_DB_PASSWORD already"),
        "{}",
        again.stderr
    );
    assert_eq!(read(&dir.path().join("poolwright.yaml")), config);

    // A new .env is the owner's only.
    let fresh = project();
    let run = poolwright(
        fresh.path(),
        &[
            "init",
            "--no-input",
            "--provider",
            "supabase",
            "--target",
            "s",
            "--project-ref",
            "abcdefghijklmnopqrst",
            "--generate-password",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(mode(&fresh.path().join(".env")), 0o600);
}
