//! The command line, as clap types only: no logic, no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Give a PostgreSQL app a correctly pooled DATABASE_URL, on any platform.
///
/// poolwright reads poolwright.yaml (its targets: where the app's pooler
/// lives), renders or provisions the pooler, and prints the URL the app
/// should use.
#[derive(Debug, Parser)]
#[command(
    name = "poolwright",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The config file [default: poolwright.yaml in this directory or the nearest parent]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format for results on stdout
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people
    Text,
    /// One JSON document, for scripts
    Json,
    /// A Markdown table or list, for pull requests and docs
    Markdown,
}

/// The environment variables that set how patient the API clients are
/// (read in src/api.rs), for the commands that call APIs.
const NETWORK_HELP: &str = "\
Network (the Supabase, Neon and AWS APIs; a bad value is an error):
  POOLWRIGHT_HTTP_TIMEOUT   seconds one attempt may take, like 0.5 or 60 [default: 20]
  POOLWRIGHT_HTTP_ATTEMPTS  attempts per request, 1 to 20
                            [default: 4; AWS: AWS_MAX_ATTEMPTS, else 3]
  POOLWRIGHT_HTTP_BACKOFF   seconds before the first retry, doubling after each
                            [default: 0.5; AWS: the SDK's]";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up poolwright.yaml: ask what a target needs (or take it from flags with
    /// --no-input), check every answer, write the file; adds a target to an existing one
    ///
    /// Writes ./poolwright.yaml (or --config FILE). An existing file gets the new target
    /// inserted as text: its comments, order and other targets stay byte for byte. A
    /// generated password goes only into the .env beside it. Nothing is written unless
    /// every answer passes the checks `validate` runs. Exit codes: 1 an answer is wrong,
    /// 2 missing flags or no terminal to ask on, 130 cancelled (Ctrl-C, Esc).
    Init(Box<InitArgs>),
    /// Check the config, pool budget included; exit 1 on any problem
    Validate,
    /// Show what apply would do for each target, and each target's URL (offline; passwords masked)
    #[command(after_help = NETWORK_HELP)]
    Plan(TargetsArgs),
    /// Write the self-hosted pooler's files (pgbouncer.ini, userlist.txt, pgbouncer.service)
    Render(RenderArgs),
    /// Make it so: write the files to the target's host paths, store verifiers, reload
    #[command(after_help = NETWORK_HELP)]
    Apply(ApplyArgs),
    /// Print a target's DATABASE_URL (password masked unless --show-password)
    Url(UrlArgs),
    /// Merge DATABASE_URL (and DIRECT_URL where the driver wants one) into a .env file
    Env(EnvArgs),
    /// Print (or push) the URL as a secret for Modal, Kubernetes, GitHub, Docker or AWS
    Secrets(SecretsArgs),
    /// Connect through the pooler and prove the app is pooled: login and TLS, running
    /// config, pooling, live pool budget, driver hazards, latency; exit 1 on a failed check
    Verify(VerifyArgs),
    /// Explain an error from the app's or the pooler's logs: its cause and the fix, from
    /// the table verify diagnoses with; exit 1 when no known error matches
    ///
    /// The text is matched against the same table `verify` uses for its failures, so
    /// the two never disagree. With a poolwright.yaml (found as usual, or --config) that
    /// holds one target, or with --target, the fix names that target, its host and user;
    /// otherwise it names no target and gives commands that run as typed. Exit codes: 0 a
    /// known error matched, 1 none did (like grep, so `poolwright explain "$err" ||`
    /// works in scripts; the fallback advice is on stderr), 2 bad arguments.
    Explain(ExplainArgs),
    /// Every target in one table: endpoint, pool mode, reachable, server connections, last apply
    ///
    /// With --watch or --count: a live view of each self-hosted PgBouncer's pools instead,
    /// refreshed every --interval seconds. A report: exit 0 even when a target is down.
    Status(StatusArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Remove what apply made in a cloud (an RDS Proxy, its target, the secret poolwright created)
    #[command(after_help = NETWORK_HELP)]
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Ask nothing: take every answer from the flags below (a question's default
    /// where it has one); exit 2 naming the missing flags
    #[arg(long)]
    pub no_input: bool,

    /// The new target's name, e.g. prod or staging (an existing one is refused)
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// pgbouncer (self-hosted), supabase, neon, or a manifest's name
    /// (azure-flexible, digitalocean, crunchy-bridge, cloud-sql, your own)
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,

    /// The role apps log in as (pgbouncer, supabase, and manifests with a `user` field)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// The database apps connect to
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,

    /// The environment variable that holds the password; the YAML gets
    /// password: "${VAR}" [default: TARGET_DB_PASSWORD]
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// Generate a strong password (32 letters and digits) and write it to the .env
    /// beside the config, never into poolwright.yaml or the output
    #[arg(long)]
    pub generate_password: bool,

    /// transaction (a server connection per transaction: for serverless; no session
    /// state) or session (a server connection per client) [default: transaction]
    #[arg(long, value_name = "MODE")]
    pub pool_mode: Option<String>,

    /// The PostgreSQL server's host
    #[arg(long, value_name = "HOST", help_heading = "pgbouncer")]
    pub upstream_host: Option<String>,

    /// The PostgreSQL server's port [default: 5432]
    #[arg(long, value_name = "PORT", help_heading = "pgbouncer")]
    pub upstream_port: Option<String>,

    /// The server's max_connections: the pools are checked against it and the
    /// default pool size fits in it
    #[arg(long, value_name = "N", help_heading = "pgbouncer")]
    pub upstream_max_connections: Option<String>,

    /// Server slots the pools leave free for direct connections (migrations,
    /// cron jobs, psql) [default: 10% of the usable slots, at least 3]
    #[arg(long, value_name = "N", help_heading = "pgbouncer")]
    pub upstream_direct_connections: Option<String>,

    /// The server's CPU cores: the default pool size becomes 2 x cores + 1
    #[arg(long, value_name = "N", help_heading = "pgbouncer")]
    pub upstream_cores: Option<String>,

    /// The PgBouncer version on the host [default: 1.18, Debian 12's]
    #[arg(long, value_name = "VERSION", help_heading = "pgbouncer")]
    pub pgbouncer_version: Option<String>,

    /// The host apps use to reach PgBouncer [default: 127.0.0.1, listening on loopback only]
    #[arg(long, value_name = "HOST", help_heading = "pgbouncer")]
    pub public_host: Option<String>,

    /// The project ref (20 lowercase letters)
    #[arg(long, value_name = "REF", help_heading = "supabase")]
    pub project_ref: Option<String>,

    /// The pooler host, e.g. aws-0-us-east-1.pooler.supabase.com [default: read by
    /// `poolwright apply` from the Management API with SUPABASE_ACCESS_TOKEN]
    #[arg(long, value_name = "HOST", help_heading = "supabase")]
    pub pooler_host: Option<String>,

    /// The project id, e.g. cool-darkness-123456
    #[arg(long, value_name = "ID", help_heading = "neon")]
    pub project_id: Option<String>,

    /// The compute endpoint id, ep-... [default: found by `poolwright apply` with NEON_API_KEY]
    #[arg(long, value_name = "ID", help_heading = "neon")]
    pub endpoint: Option<String>,

    /// The region in the endpoint's host, e.g. us-east-2
    #[arg(long, value_name = "REGION", help_heading = "neon")]
    pub region: Option<String>,

    /// The role apps log in as
    #[arg(long, value_name = "NAME", help_heading = "neon")]
    pub role: Option<String>,

    /// A field of a manifest-only provider (see its providers/NAME.toml), repeatable:
    /// --set server=mydb --set pool_mode=session
    #[arg(
        long = "set",
        value_name = "FIELD=VALUE",
        help_heading = "manifest providers"
    )]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// Targets to include [default: all]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read the current state from the providers' APIs (Supabase, Neon) instead of
    /// the config and the state file; writes nothing
    #[arg(long)]
    pub refresh: bool,

    /// Base URL of the provider API to call with --refresh
    #[arg(long, value_name = "URL", requires = "refresh")]
    pub api_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Targets to render [default: every target that has files]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Directory to write into: the files directly for one target, DIR/TARGET/ for several
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Directory of templates that replace the built-in ones (same relative paths, e.g. pgbouncer/pgbouncer.ini.tera)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Replace files that were changed by hand since poolwright wrote them (or that it
    /// never wrote); each one is kept as NAME.bak first. Without it such a file stops
    /// the render and nothing is written
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Targets to apply [default: all]
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Base URL of the provider API to call (Supabase, Neon), e.g. a mock or a
    /// self-hosted console [default: SUPABASE_API_URL / NEON_API_URL, else the public API]
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// RDS Proxy: how long to wait for the proxy and its target to become healthy, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub wait: u64,

    /// RDS Proxy: how often to ask AWS while waiting, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub poll: f64,

    /// Directory of templates that replace the built-in ones
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Replace host files (pgbouncer.ini, userlist.txt, the unit) that were changed by
    /// hand since poolwright wrote them, or that it never wrote, such as a package's
    /// default; each one is kept as NAME.bak first. Without it such a file stops
    /// that target's apply before anything changes
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// The target whose URL to print
    pub target: String,

    /// Print the URL as this driver wants it: its URL flags in the URL, its other
    /// settings as a snippet on stderr (or under "settings" with --format json)
    #[arg(long, value_name = "DRIVER", value_parser = driver())]
    pub driver: Option<&'static crate::drivers::Driver>,

    /// Print the direct URL of the upstream server (for migrations) instead of the pooled one
    #[arg(long)]
    pub direct: bool,

    /// Print the real password instead of ****
    #[arg(long)]
    pub show_password: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The target whose URL to write
    pub target: String,

    /// The .env file [default: .env beside the config file]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Write the URL as this driver wants it (see `poolwright url --help`)
    #[arg(long, value_name = "DRIVER", value_parser = driver())]
    pub driver: Option<&'static crate::drivers::Driver>,

    /// The variable for the pooled URL: letters, digits and `_`, not starting with a
    /// digit, at most 253 characters (anything else is an error, exit 1)
    #[arg(long, value_name = "NAME", default_value = "DATABASE_URL")]
    pub key: String,

    /// Also write the direct URL (for migrations) under this name, a variable name
    /// as for --key [default: DIRECT_URL when the driver wants one]
    #[arg(long, value_name = "NAME")]
    pub direct_key: Option<String>,

    /// Change nothing; exit 1 when the file is out of date (for CI)
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The target whose URL to emit
    pub target: String,

    /// Where the secret goes
    #[arg(long, value_enum)]
    pub to: SecretStore,

    /// The secret's name (Modal, Kubernetes, AWS) [default: TARGET-database]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Write the URL as this driver wants it (see `poolwright url --help`)
    #[arg(long, value_name = "DRIVER", value_parser = driver())]
    pub driver: Option<&'static crate::drivers::Driver>,

    /// The variable for the pooled URL: letters, digits and `_`, not starting with a
    /// digit, at most 253 characters (anything else is an error, exit 1)
    #[arg(long, value_name = "NAME", default_value = "DATABASE_URL")]
    pub key: String,

    /// Also emit the direct URL under this name, a variable name as for --key
    /// [default: DIRECT_URL when the driver wants one]
    #[arg(long, value_name = "NAME")]
    pub direct_key: Option<String>,

    /// Kubernetes namespace of the Secret
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// GitHub environment the secrets belong to (gh secret set --env)
    #[arg(long, value_name = "ENVIRONMENT")]
    pub github_env: Option<String>,

    /// Print the real password instead of ****
    #[arg(long)]
    pub show_password: bool,

    /// Run the command instead of printing it (modal, github: the CLI must be installed)
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The target to verify (its passwords must be set: verify logs in)
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// The app's driver: its hazards behind this pooler (named prepared statements,
    /// session state) are checked, and fail the run where they would break the app
    #[arg(long, value_name = "DRIVER", value_parser = driver())]
    pub driver: Option<&'static crate::drivers::Driver>,

    /// Short connections to open one after another through the pooler, to prove they
    /// share server connections
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,

    /// Clients to open at once through the pooler, to prove a burst is served within
    /// the pool [default: twice the pool size, 4 to 50; 20 when the pool is not known]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=500))]
    pub concurrent: Option<u32>,

    /// The URL the app really uses, checked against the target (where it leads, its
    /// driver flags) and used for every check in place of the target's pooled URL. A
    /// password on the command line is visible to other users of the machine: prefer
    /// --url-from or --url-from-env
    #[arg(long, value_name = "URL", group = "app_url")]
    pub url: Option<String>,

    /// A dotenv file (such as the app's .env) whose --url-key holds the URL the app
    /// uses; checked as with --url
    #[arg(long, value_name = "FILE", group = "app_url")]
    pub url_from: Option<std::path::PathBuf>,

    /// An environment variable that holds the URL the app uses; checked as with --url
    #[arg(long, value_name = "VAR", group = "app_url")]
    pub url_from_env: Option<String>,

    /// The variable --url-from reads from the file
    #[arg(long, value_name = "NAME", default_value = "DATABASE_URL")]
    pub url_key: String,

    /// Queries per URL (pooled, then direct) for the latency median and p99
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub samples: u32,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The error text, quoted; `-` reads it from stdin (at most 64 KiB)
    #[arg(value_name = "TEXT")]
    pub text: String,

    /// The target the error came from [default: the config's only target]
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// The connection that got the error
    #[arg(long, value_enum, default_value_t = ExplainVia::Pooled)]
    pub via: ExplainVia,

    /// The SQLSTATE the driver reported with it, e.g. 28P01 (asyncpg and psycopg:
    /// sqlstate, node-postgres: code)
    #[arg(long, value_name = "CODE", value_parser = sqlstate)]
    pub sqlstate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainVia {
    /// The pooled URL apps use
    Pooled,
    /// The direct URL to PostgreSQL
    Direct,
    /// PgBouncer's admin console (database pgbouncer)
    Console,
}

/// Five digits or capital letters, as SQLSTATEs are.
fn sqlstate(text: &str) -> Result<String, String> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err("a SQLSTATE is five digits or letters, like 28P01".into())
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("watching").args(["watch", "count"]).multiple(true)))]
pub struct StatusArgs {
    /// Refresh until interrupted (Ctrl-C): per PgBouncer pool, clients active and
    /// waiting, server connections, maxwait, transactions and queries per second,
    /// average transaction time and the server's backends, with a sparkline of
    /// waiting clients. Managed poolers get their one status line
    #[arg(long)]
    pub watch: bool,

    /// Seconds between refreshes, 0.5 to 3600 (with --watch or --count)
    #[arg(long, value_name = "SECS", default_value_t = 2.0,
          value_parser = watch_interval, requires = "watching")]
    pub interval: f64,

    /// Stop after N refreshes (implies --watch), for scripts and logs
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: Option<u64>,
}

/// `--interval`: a number of seconds a person can wait for and PgBouncer
/// is not hammered by (its SHOW commands are cheap, but not free).
fn watch_interval(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.5..=3600.0).contains(&secs) {
        return Err(format!("{secs} s is outside 0.5 to 3600 seconds"));
    }
    Ok(secs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretStore {
    /// `modal secret create` command
    Modal,
    /// a Kubernetes Secret manifest (stringData)
    Kubernetes,
    /// `gh secret set` commands (value on stdin)
    Github,
    /// a Docker env-file (`docker run --env-file`)
    Docker,
    /// an AWS Secrets Manager secret string (JSON)
    Aws,
}

/// `--driver`: one of the drivers poolwright knows (listed in `--help`),
/// parsed into the driver itself, so no command looks it up again.
fn driver() -> impl clap::builder::TypedValueParser<Value = &'static crate::drivers::Driver> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(
        crate::drivers::DRIVERS
            .iter()
            .map(|d| clap::builder::PossibleValue::new(d.name).help(d.summary)),
    )
    .map(|name| crate::drivers::find(&name).expect("clap admits only the drivers' names"))
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The target whose cloud resources to remove
    pub target: String,

    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
