//! The questions for Neon, and its block's context.

use serde::Serialize;

use super::pgbouncer::yaml_quoted_var;
use super::prompter::{Prompter, Question, Stop};
use super::{Session, yaml_value};

pub fn ask(s: &mut Session<'_>, p: &mut dyn Prompter) -> Result<(), Stop> {
    let project = Question::new("project-id", "Neon project id")
        .help("Project settings > General, e.g. cool-darkness-123456")
        .placeholder("e.g. cool-darkness-123456");
    s.text_question(p, &project, "project_id")?;
    let endpoint = Question::new("endpoint", "Compute endpoint id (optional)")
        .help(format!(
            "the first part of the host, ep-...; empty: `poolwright apply` finds the branch's read-write endpoint with {}",
            crate::providers::neon::TOKEN_VAR
        ))
        .placeholder("e.g. ep-cool-darkness-123456")
        .optional();
    s.text_question(p, &endpoint, "endpoint")?;
    let region = Question::new("region", "Region (optional)")
        .help("as in the host ep-....<region>.aws.neon.tech; with the endpoint, the URL is known offline")
        .placeholder("e.g. us-east-2")
        .optional();
    s.text_question(p, &region, "region")?;
    let role = Question::new("role", "Database role")
        .help("the role apps log in as (Roles in the console; a new project has neondb_owner)")
        .placeholder("e.g. neondb_owner");
    let name = s.text_question(p, &role, "role")?.unwrap_or_default();
    s.ask_password(p, "password", &name, false)?;
    let database = Question::new("database", "Database name")
        .help("a new project has neondb")
        .placeholder("e.g. neondb");
    s.text_question(p, &database, "database")?;
    Ok(())
}

#[derive(Serialize)]
struct Context {
    key: String,
    project_id: String,
    endpoint: Option<String>,
    region: Option<String>,
    role: String,
    password: String,
    password_var: String,
    database: String,
    token_var: &'static str,
}

pub fn context(s: &Session<'_>, key: &str, fill: bool) -> serde_json::Value {
    let text = |k: &str, placeholder: &str| s.value(k, fill, placeholder).unwrap_or_default();
    let var = text("password-env", "POOLWRIGHT_PASSWORD");
    let ctx = Context {
        key: key.to_string(),
        project_id: yaml_value(&text("project-id", "placeholder-123456")),
        endpoint: s.answer("endpoint").map(yaml_value),
        region: s.answer("region").map(yaml_value),
        role: yaml_value(&text("role", "app")),
        password: yaml_quoted_var(&var),
        password_var: var,
        database: yaml_value(&text("database", "app")),
        token_var: crate::providers::neon::TOKEN_VAR,
    };
    serde_json::to_value(ctx).expect("a context serialises")
}
