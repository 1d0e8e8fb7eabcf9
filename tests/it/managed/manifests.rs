//! A user's own manifests.

#[allow(unused_imports)]
use super::*;

/// A made-up provider: its own fields, ports and parameters.
const ACME: &str = r#"
name = "acme"
title = "Acme Pooled Postgres"
summary = "Acme's pooler on 7777"
docs = "https://acme.example/docs/pooling"
module = "managed"

[connection]
scheme = "postgresql"
default_port = 7777

[managed]
pool_mode = "transaction"
prepared_statements = false
params = { sslmode = "require", target_session_attrs = "read-write" }
pooled = { host = "{cluster}.{zone}.pool.acme.example", port = "7777", user = "{role}", database = "{db}" }
direct = { host = "{cluster}.{zone}.db.acme.example", port = "15432", user = "{role}", database = "{db}" }

[[managed.fields]]
name = "cluster"
doc = "the cluster id"
required = true

[[managed.fields]]
name = "zone"
doc = "the zone"
default = "eu1"

[[managed.fields]]
name = "role"
doc = "the role"
required = true

[[managed.fields]]
name = "secret"
doc = "the role's password"
required = true
secret = true

[[managed.fields]]
name = "db"
doc = "the database"
required = true
"#;

const ACME_TARGET: &str = r#"version: 1
targets:
  books:
    provider: acme
    cluster: c-0042
    role: books_app
    secret: "${DB_PASSWORD}"
    db: ledger
"#;

/// A project with ACME_TARGET and `providers/<file>` holding `manifest`.
fn manifest_project(file: &str, manifest: &str) -> tempfile::TempDir {
    let dir = project(ACME_TARGET);
    std::fs::create_dir(dir.path().join("providers")).expect("providers dir");
    std::fs::write(dir.path().join("providers").join(file), manifest).expect("manifest");
    dir
}

#[test]
fn a_user_manifest_works_like_a_builtin_provider() {
    let dir = manifest_project("acme.toml", ACME);
    let d = dir.path();
    assert_eq!(
        revealed(d, &["books"]),
        format!(
            "postgresql://books_app:{ENCODED}@c-0042.eu1.pool.acme.example:7777/ledger?sslmode=require&target_session_attrs=read-write"
        )
    );
    assert_eq!(
        revealed(d, &["books", "--direct"]),
        format!(
            "postgresql://books_app:{ENCODED}@c-0042.eu1.db.acme.example:15432/ledger?sslmode=require&target_session_attrs=read-write"
        )
    );
    // Transaction mode without prepared statements, as the manifest says.
    assert!(revealed(d, &["books", "--driver", "prisma"]).contains("pgbouncer=true"));
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout
            .starts_with("target books (Acme Pooled Postgres)\n"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("https://acme.example/docs/pooling"));
    succeeds(&poolwright(d, &["validate"], &pw_env()), "validate");
    // The user's provider is one of the providers a typo is matched against.
    std::fs::write(
        d.join("poolwright.yaml"),
        ACME_TARGET.replace("provider: acme", "provider: acmee"),
    )
    .expect("write");
    let typo = poolwright(d, &["validate"], &pw_env());
    assert_eq!(typo.code, 1);
    assert!(
        typo.stderr.contains("did you mean `acme`?"),
        "{}",
        typo.stderr
    );
    // A required field missing is a config error pointing into poolwright.yaml.
    std::fs::write(
        d.join("poolwright.yaml"),
        ACME_TARGET.replace("    db: ledger\n", ""),
    )
    .expect("write");
    let missing = poolwright(d, &["validate"], &pw_env());
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("missing required key `db`")
            && missing.stderr.contains("targets.books.db"),
        "{}",
        missing.stderr
    );
}

#[test]
fn bad_user_manifests_are_refused_naming_the_file() {
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            // Only data may come from the user: no module of poolwright's own.
            "mybouncer.toml",
            ACME.replace("name = \"acme\"", "name = \"mybouncer\"")
                .replace("module = \"managed\"", "module = \"pgbouncer\""),
            vec!["providers/mybouncer.toml", "module = \"managed\""],
        ),
        (
            "mysupabase.toml",
            ACME.replace("name = \"acme\"", "name = \"mysupabase\"")
                .replace("module = \"managed\"", "module = \"supabase\""),
            vec!["providers/mysupabase.toml", "module = \"managed\""],
        ),
        (
            // A built-in provider's name.
            "supabase.toml",
            ACME.replace("name = \"acme\"", "name = \"supabase\""),
            vec!["providers/supabase.toml", "`supabase` exists already"],
        ),
        (
            "broken.toml",
            "name = \"broken\"\ntitle = \"unterminated\n".to_string(),
            vec!["providers/broken.toml", "line 2"],
        ),
        (
            // A placeholder that names no field.
            "acme.toml",
            ACME.replace("{cluster}.{zone}.pool", "{cluster}.{regoin}.pool"),
            vec!["providers/acme.toml", "`{regoin}`", "is not a field"],
        ),
        (
            // The password may not become part of the host.
            "acme.toml",
            ACME.replace("{cluster}.{zone}.db", "{secret}.{zone}.db"),
            vec!["providers/acme.toml", "`{secret}`", "password"],
        ),
        (
            "other-name.toml",
            ACME.to_string(),
            vec!["providers/other-name.toml", "`acme.toml`"],
        ),
    ];
    // Every case is checked before failing, so one run shows them all.
    let mut problems = Vec::new();
    for (file, manifest, wanted) in cases {
        let dir = manifest_project(file, &manifest);
        for command in [&["validate"][..], &["url", "books"][..]] {
            let run = poolwright(dir.path(), command, &pw_env());
            let lacks: Vec<&&str> = wanted
                .iter()
                .filter(|w| !run.stderr.contains(**w))
                .collect();
            let ok = run.code == 1
                && run.stdout.is_empty()
                && run.stderr.starts_with("error: ")
                && !run.stderr.contains("panicked")
                && lacks.is_empty();
            if !ok {
                problems.push(format!(
                    "{file}: {command:?}: exit {}, lacks {lacks:?}:\n{}{}",
                    run.code, run.stdout, run.stderr
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
