//! The questions for Supabase (Supavisor), and its block's context.

use serde::Serialize;

use super::pgbouncer::yaml_quoted_var;
use super::prompter::{Prompter, Question, Stop};
use super::{Session, pool_mode_choices, pool_mode_doc, wrap, yaml_value};

pub fn ask(s: &mut Session<'_>, p: &mut dyn Prompter) -> Result<(), Stop> {
    let project = Question::new("project-ref", "Supabase project ref")
        .help("20 lowercase letters: Project Settings > General, or the db.<ref>.supabase.co host")
        .placeholder("e.g. abcdefghijklmnopqrst");
    s.text_question(p, &project, "project_ref")?;
    let host = Question::new("pooler-host", "Pooler host (optional)")
        .help(format!(
            "Connect > Transaction pooler, e.g. aws-0-us-east-1.pooler.supabase.com; empty: `poolwright apply` reads it from the Management API with {}",
            crate::providers::supabase::TOKEN_VAR
        ))
        .placeholder("e.g. aws-0-us-east-1.pooler.supabase.com")
        .optional();
    s.text_question(p, &host, "pooler_host")?;
    let mode = Question::new("pool-mode", "Pool mode").default("transaction");
    let modes = pool_mode_choices(&["transaction", "session"]);
    s.select_question(p, &mode, "pool_mode", &modes, 0)?;
    let user = Question::new("user", "Database role")
        .help("the pooler user becomes <role>.<project ref>")
        .default("postgres");
    let role = s.text_question(p, &user, "user")?.unwrap_or_default();
    s.ask_password(p, "password", &role, false)?;
    let database = Question::new("database", "Database name").default("postgres");
    s.text_question(p, &database, "database")?;
    Ok(())
}

#[derive(Serialize)]
struct Context {
    key: String,
    project_ref: String,
    pooler_host: Option<String>,
    pool_mode: String,
    pool_mode_doc: Vec<String>,
    user: String,
    password: String,
    password_var: String,
    database: String,
    token_var: &'static str,
}

pub fn context(s: &Session<'_>, key: &str, fill: bool) -> serde_json::Value {
    let text = |k: &str, placeholder: &str| s.value(k, fill, placeholder).unwrap_or_default();
    let var = text("password-env", "POOLWRIGHT_PASSWORD");
    let pool_mode = s.answer("pool-mode").unwrap_or("transaction").to_string();
    let ctx = Context {
        key: key.to_string(),
        project_ref: yaml_value(&text("project-ref", "abcdefghijklmnopqrst")),
        pooler_host: s.answer("pooler-host").map(yaml_value),
        pool_mode_doc: wrap(
            &format!(
                "{pool_mode} (port {}): {}",
                if pool_mode == "session" { 5432 } else { 6543 },
                pool_mode_doc(&pool_mode)
            ),
            72,
        ),
        pool_mode: yaml_value(&pool_mode),
        user: yaml_value(&text("user", "postgres")),
        password: yaml_quoted_var(&var),
        password_var: var,
        database: yaml_value(&text("database", "postgres")),
        token_var: crate::providers::supabase::TOKEN_VAR,
    };
    serde_json::to_value(ctx).expect("a context serialises")
}
