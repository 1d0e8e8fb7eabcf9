//! The questions for a self-hosted PgBouncer, and its block's context.

use serde::Serialize;

use super::prompter::{Choice, Prompter, Question, Stop};
use super::{Session, pool_mode_choices, pool_mode_doc, wrap, yaml_key, yaml_quoted, yaml_value};
use crate::providers::ProviderTarget;
use crate::providers::manifest::PgBouncerFacts;

fn facts(s: &Session<'_>) -> &'static PgBouncerFacts {
    s.manifest
        .pgbouncer
        .as_ref()
        .expect("checked by Manifest::check")
}

/// What a version means to someone choosing one.
fn version_label(version: &str) -> String {
    let why = match version {
        "1.18" => "Debian 12 (bookworm)'s package; no prepared statements in transaction mode",
        "1.19" => "peers: cancel requests reach the right process",
        "1.21" => "tracks prepared statements in transaction mode",
        "1.24" => "Debian 13 (trixie)'s package; tracks prepared statements",
        "1.25" => "names with any characters (quoted keys)",
        _ => "",
    };
    if why.is_empty() {
        version.to_string()
    } else {
        format!("{version}  {why}")
    }
}

pub fn ask(s: &mut Session<'_>, p: &mut dyn Prompter) -> Result<(), Stop> {
    let host = Question::new("upstream-host", "PostgreSQL server host")
        .help("the host PgBouncer connects to, as PgBouncer's machine reaches it")
        .placeholder("e.g. db.internal");
    s.text_question(p, &host, "upstream.host")?;
    let port = Question::new("upstream-port", "PostgreSQL server port").default("5432");
    s.text_question(p, &port, "upstream.port")?;
    let max = Question::new("upstream-max-connections", "The server's max_connections (optional)")
        .help("SHOW max_connections; given, the pools are checked against it and the default pool size fits in it")
        .placeholder("e.g. 100")
        .optional();
    s.text_question(p, &max, "upstream.max_connections")?;
    // Without max_connections there is no budget to keep the headroom out of.
    if s.answer("upstream-max-connections").is_some() {
        let direct = Question::new(
            "upstream-direct-connections",
            "Server slots kept for direct connections (optional)",
        )
        .help("migrations, cron jobs, psql and monitoring that connect straight to PostgreSQL; the pools leave them free. Empty: 10% of the usable slots, at least 3")
        .placeholder("e.g. 10")
        .optional();
        s.text_question(p, &direct, "upstream.direct_connections")?;
    }
    let cores = Question::new("upstream-cores", "The server's CPU cores (optional)")
        .help("the default pool size becomes 2 x cores + 1 when that is above PgBouncer's 20; empty: 20")
        .placeholder("e.g. 4")
        .optional();
    s.text_question(p, &cores, "upstream.cores")?;
    if let Ok(Some(config)) = s.alone(true)
        && let Some(ProviderTarget::PgBouncer(t)) = config.targets.first().map(|t| &t.provider)
    {
        let (size, why) = crate::providers::pgbouncer::sizing::recommend(t);
        p.note(&format!("Pool size per database and user: {size} ({why})."));
    }

    let facts = facts(s);
    let versions: Vec<Choice> = facts
        .versions
        .iter()
        .map(|v| Choice {
            value: v.to_string(),
            label: version_label(&v.to_string()),
        })
        .collect();
    let default = facts
        .versions
        .iter()
        .position(|v| *v == facts.default_version)
        .unwrap_or(0);
    let version = Question::new("pgbouncer-version", "PgBouncer version on the host")
        .help("`pgbouncer --version`; every setting is checked against it")
        .default(facts.default_version.to_string());
    s.select_question(p, &version, "version", &versions, default)?;

    let database = Question::new("database", "Database name")
        .help("the database apps connect to; PgBouncer gives it the same name")
        .placeholder("e.g. app");
    s.text_question(p, &database, "databases")?;
    let user = Question::new("user", "Database user (role)")
        .help("the role apps log in as; its password goes into userlist.txt as a SCRAM verifier")
        .placeholder("e.g. app");
    let role = s.text_question(p, &user, "users")?.unwrap_or_default();
    s.ask_password(p, "users", &role, true)?;

    let mode = Question::new("pool-mode", "Pool mode").default("transaction");
    let modes = pool_mode_choices(&["transaction", "session"]);
    s.select_question(p, &mode, "pgbouncer.pool_mode", &modes, 0)?;
    let public = Question::new(
        "public-host",
        "Host name apps use to reach PgBouncer (optional)",
    )
    .help(
        "it goes into DATABASE_URL, and PgBouncer listens on all addresses; empty: 127.0.0.1 only",
    )
    .placeholder("e.g. pgbouncer.internal")
    .optional();
    s.text_question(p, &public, "public_host")?;
    Ok(())
}

#[derive(Serialize)]
struct Context {
    key: String,
    version: String,
    host: String,
    port: String,
    max_connections: Option<String>,
    direct_connections: Option<String>,
    cores: Option<String>,
    database: String,
    user: String,
    password: String,
    password_var: String,
    pool_mode: String,
    pool_mode_doc: Vec<String>,
    public_host: Option<String>,
    pool_size: Vec<String>,
}

pub fn context(s: &Session<'_>, key: &str, fill: bool) -> serde_json::Value {
    let facts = facts(s);
    let text = |k: &str, placeholder: &str| s.value(k, fill, placeholder);
    let var = text("password-env", "POOLWRIGHT_PASSWORD").unwrap_or_default();
    let pool_mode = text("pool-mode", "transaction").unwrap_or_else(|| "transaction".into());
    let ctx = Context {
        key: key.to_string(),
        version: yaml_quoted(
            &text("pgbouncer-version", &facts.default_version.to_string())
                .unwrap_or_else(|| facts.default_version.to_string()),
        ),
        host: yaml_value(&text("upstream-host", "db.placeholder.invalid").unwrap_or_default()),
        port: yaml_value(&text("upstream-port", "5432").unwrap_or_else(|| "5432".into())),
        max_connections: s.answer("upstream-max-connections").map(yaml_value),
        direct_connections: s
            .answer("upstream-max-connections")
            .and(s.answer("upstream-direct-connections"))
            .map(yaml_value),
        cores: s.answer("upstream-cores").map(yaml_value),
        database: yaml_key(&text("database", "app").unwrap_or_default()),
        user: yaml_key(&text("user", "app").unwrap_or_default()),
        password: yaml_quoted_var(&var),
        password_var: var,
        pool_mode_doc: wrap(&format!("{pool_mode}: {}", pool_mode_doc(&pool_mode)), 70),
        pool_mode: yaml_value(&pool_mode),
        public_host: s.answer("public-host").map(yaml_value),
        pool_size: s.note_value("pool_size").map_or_else(Vec::new, |size| {
            wrap(
                &format!(
                    "default_pool_size is not set, so poolwright computes it: {size}. `poolwright plan` shows the arithmetic; set it here to choose another."
                ),
                70,
            )
        }),
    };
    serde_json::to_value(ctx).expect("a context serialises")
}

/// `"${VAR}"`, the reference to the password's variable.
pub fn yaml_quoted_var(var: &str) -> String {
    serde_json::to_string(&format!("${{{var}}}")).expect("strings serialise")
}
