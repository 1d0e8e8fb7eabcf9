//! Known connection and query errors, each mapped to its cause and a fix.
//!
//! The error texts users meet behind a pooler are few and cryptic ("SASL
//! authentication failed" says nothing about a verifier that differs
//! between PgBouncer and PostgreSQL). [`TABLE`] lists them: each entry
//! matches the text as PostgreSQL, PgBouncer, Supavisor, RDS Proxy, libpq,
//! tokio-postgres or the OS write it (lower-cased substrings), carries
//! real examples of that text, and says why it happens and what to change,
//! naming the place tried and the poolwright command that fixes it.
//! [`diagnose`] walks the table in order, so the more specific text comes
//! first; `verify` and `poolwright explain` both read it, so the two never
//! disagree.
//!
//! # Who refused a password behind PgBouncer
//!
//! Measured against PostgreSQL 15 (pg_hba.conf: scram-sha-256) with
//! PgBouncer 1.18.0 and 1.24.1, userlist.txt holding the SCRAM verifier:
//!
//! | what happened | text the client gets | SQLSTATE 1.18 | SQLSTATE 1.24 |
//! | --- | --- | --- | --- |
//! | PgBouncer refused the app's password (SCRAM) | `SASL authentication failed` | 08P01 | 08P01 |
//! | PgBouncer refused the app's password (md5, plain secret) | `password authentication failed` | 08P01 | 08P01 |
//! | PostgreSQL refused PgBouncer's own login | `password authentication failed for user "app"` | 08P01 | 28P01 |
//! | PostgreSQL refused the app, direct URL | `password authentication failed for user "app"` | 28P01 | 28P01 |
//!
//! Neither version puts "server login failed:" in front of the server's
//! text on the client's connection: that prefix is in PgBouncer's log only
//! (`WARNING server login failed: FATAL password authentication failed for
//! user "app"`), which is where people copy it from. 1.24 passes the
//! server's SQLSTATE on with its text; 1.18 passes the text on with its
//! own 08P01. PgBouncer's own refusals never name the user, PostgreSQL's
//! always does, so through a PgBouncer pooler `... for user "..."` (any
//! code) or 28P01 (any text, e.g. a translated lc_messages) means the
//! server refused PgBouncer's login; anything else is PgBouncer refusing
//! the app. A client that comes within server_login_retry (15 s by
//! default) of such a failure waits instead (measured on both: the login
//! does not finish in 10 s); for clients it gives up on, the binaries hold
//! "server login has been failing, try again later (server_login_retry)"
//! (1.18) and "server login has been failing, cached error: <the server's
//! text> (server_login_retry)" (1.24). Supavisor checks the app's password itself and
//! answers a wrong one as PostgreSQL does (28P01, "... for user"), so the
//! split applies to PgBouncer only.

/// Which connection the error came from; it decides what the fix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The pooled URL apps use.
    Pooler,
    /// The direct URL to PostgreSQL.
    Direct,
    /// PgBouncer's admin console (database `pgbouncer`).
    AdminConsole,
}

/// What was being done when the error came. An empty field is unknown
/// (`poolwright explain` without a config): the texts then name no place,
/// user or target, and give commands that run as typed.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub via: Via,
    /// `host:port` tried.
    pub place: &'a str,
    pub user: &'a str,
    pub database: &'a str,
    /// The target's name, for the commands in fixes.
    pub target: &'a str,
    /// The provider's manifest name (`pgbouncer`, `supabase`, `rds-proxy`, ...).
    pub provider: &'a str,
    /// The SQLSTATE the peer sent with the error, when it sent one.
    pub code: Option<&'a str>,
}

impl Situation<'static> {
    /// Nothing known but the connection.
    pub fn unknown(via: Via) -> Situation<'static> {
        Situation {
            via,
            place: "",
            user: "",
            database: "",
            target: "",
            provider: "",
            code: None,
        }
    }
}

impl Situation<'_> {
    /// `db.example:6432`, or what it is when unknown.
    fn place(&self) -> String {
        match (self.place, self.via) {
            ("", Via::Direct) => "the server".into(),
            ("", Via::AdminConsole) => "PgBouncer".into(),
            ("", Via::Pooler) => "the pooler".into(),
            (p, _) => p.into(),
        }
    }

    /// "the pooler at db.example:6432", or "the pooler" (`what`).
    fn at(&self, what: &str) -> String {
        match self.place {
            "" => what.into(),
            p => format!("{what} at {p}"),
        }
    }

    /// "user `app`", or "the app's user".
    fn user_word(&self) -> String {
        match self.user {
            "" => "the app's user".into(),
            u => format!("user `{u}`"),
        }
    }

    /// "`app`", or "the app's user".
    fn who(&self) -> String {
        match self.user {
            "" => "the app's user".into(),
            u => format!("`{u}`"),
        }
    }

    /// "database `qbo`", or "the app's database".
    fn db(&self) -> String {
        match self.database {
            "" => "the app's database".into(),
            d => format!("database `{d}`"),
        }
    }

    /// The apply that fixes it, valid as typed.
    fn apply(&self) -> String {
        match self.target {
            "" => "`poolwright apply`".into(),
            t => format!("`poolwright apply {t}`"),
        }
    }

    /// "of target prod", or "of the target in poolwright.yaml".
    fn of_target(&self) -> String {
        match self.target {
            "" => "of the target in poolwright.yaml".into(),
            t => format!("of target {t}"),
        }
    }

    /// The command that prints the URL (`extra`: `--direct`, ...).
    fn url(&self, extra: &str) -> String {
        match self.target {
            "" => "`poolwright plan`".into(),
            t => format!("`poolwright url {t}{extra}`"),
        }
    }

    /// The command that checks the live server, valid as typed.
    fn verify(&self) -> String {
        match self.target {
            "" => "`poolwright verify` with a target's name".into(),
            t => format!("`poolwright verify {t}`"),
        }
    }

    /// `fix` with what its target-less commands do, when no target is known.
    fn explained(&self, mut fix: String) -> String {
        if !self.target.is_empty() {
            return fix;
        }
        for (command, does) in [
            (
                "`poolwright apply`",
                "`poolwright apply` applies every target",
            ),
            (
                "`poolwright plan`",
                "`poolwright plan` shows every target and its URLs",
            ),
            (
                "`poolwright verify` with",
                "`poolwright plan` lists the targets",
            ),
        ] {
            if fix.contains(command) && !fix.contains(does) {
                fix = format!("{fix}; {does}");
            }
        }
        fix
    }

    /// Whether the pooler is (or may be, when unknown) a PgBouncer.
    fn maybe_pgbouncer(&self) -> bool {
        matches!(self.provider, "" | "pgbouncer")
    }
}

/// Why it failed and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The [`TABLE`] entry that matched; None for an unknown text.
    pub matched: Option<&'static str>,
    pub cause: String,
    pub fix: String,
}

/// One known error.
pub struct Entry {
    /// A stable name, shown by `poolwright explain`.
    pub name: &'static str,
    /// Matches when the lower-cased text holds one of these (or the code
    /// is one of `codes`)...
    pub any: &'static [&'static str],
    /// ...and every one of these...
    pub all: &'static [&'static str],
    /// SQLSTATEs that match whatever the text says.
    pub codes: &'static [&'static str],
    /// ...and the situation is one this entry is about.
    pub when: fn(&Situation<'_>) -> bool,
    /// Real texts, as the software named writes them.
    pub examples: &'static [&'static str],
    /// Why, from the text and the situation.
    pub cause: fn(&str, &Situation<'_>) -> String,
    /// What to change.
    pub fix: fn(&str, &Situation<'_>) -> String,
}

impl Entry {
    /// Whether `lower` (the text, lower-cased) in situation `s` is this error.
    pub fn matches(&self, lower: &str, s: &Situation<'_>) -> bool {
        let by_code = s.code.is_some_and(|c| self.codes.contains(&c));
        let by_text = (self.any.is_empty() || self.any.iter().any(|n| lower.contains(n)))
            && !(self.any.is_empty() && self.all.is_empty());
        (by_code || by_text) && self.all.iter().all(|n| lower.contains(n)) && (self.when)(s)
    }
}

fn always(_: &Situation<'_>) -> bool {
    true
}

/// The cause and fix of `text` (an error message) in situation `s`.
pub fn diagnose(text: &str, s: &Situation<'_>) -> Diagnosis {
    let lower = text.to_lowercase();
    match TABLE.iter().find(|e| e.matches(&lower, s)) {
        Some(e) => Diagnosis {
            matched: Some(e.name),
            cause: (e.cause)(text, s),
            fix: s.explained((e.fix)(text, s)),
        },
        None => Diagnosis {
            matched: None,
            cause: format!("{} answered \"{text}\"", s.place()),
            fix: match s.via {
                Via::Direct => "read PostgreSQL's log for this time".to_string(),
                _ => "read the pooler's log for this time (PgBouncer: logfile in poolwright.yaml, or journalctl -u pgbouncer)".to_string(),
            },
        },
    }
}

/// The text after `marker` (lower-cased search, original case kept),
/// without a leading severity and a trailing `(server_login_retry)`.
fn inner_text<'t>(text: &'t str, marker: &str) -> &'t str {
    let at = text
        .to_lowercase()
        .find(marker)
        .map_or(0, |i| i + marker.len());
    let inner = text.get(at..).unwrap_or("").trim();
    let inner = inner
        .strip_suffix("(server_login_retry)")
        .map_or(inner, str::trim_end);
    inner
        .strip_prefix("FATAL")
        .map_or(inner, |r| r.trim_start_matches(':').trim())
}

/// The line of `text` from `needle` on (all of it when `needle` is not
/// there, as for a translated text matched by its SQLSTATE).
fn quote_from<'t>(text: &'t str, needle: &str) -> &'t str {
    let Some(at) = text.to_lowercase().find(needle) else {
        return text.trim();
    };
    let rest = text.get(at..).unwrap_or(text);
    rest.lines().next().unwrap_or(rest).trim()
}

/// The diagnosis of the server's answer to PgBouncer's own login, which
/// PgBouncer quotes after `marker`.
fn server_answer(text: &str, marker: &str, s: &Situation<'_>) -> Diagnosis {
    let inner = inner_text(text, marker);
    let lower = inner.to_lowercase();
    if lower.contains("password authentication failed")
        || lower.contains("sasl authentication failed")
    {
        return Diagnosis {
            matched: None,
            cause: server_refused_cause(inner, s),
            fix: server_refused_fix(s),
        };
    }
    let mut d = diagnose(
        inner,
        &Situation {
            via: Via::Direct,
            code: None,
            ..*s
        },
    );
    d.cause = format!("PgBouncer could not log in to PostgreSQL: {}", d.cause);
    d
}

fn server_refused_cause(inner: &str, s: &Situation<'_>) -> String {
    let who = s.who();
    format!(
        "PgBouncer logged {who} in, but PostgreSQL refused PgBouncer's own login as {who} (\"{inner}\"): the secret in userlist.txt is not what the server stores (a later apply elsewhere or a password reset replaced it)"
    )
}

fn server_refused_fix(s: &Situation<'_>) -> String {
    format!(
        "run {}: it stores userlist.txt's SCRAM verifier on the server (someone reset the password there), or set the password variable to the role's current password first",
        s.apply()
    )
}

fn refused_fix(s: &Situation<'_>) -> String {
    match (s.provider, s.via) {
        ("rds-proxy", _) => "RDS Proxy answers only inside its VPC: run verify from a host in the VPC (or through a bastion), and check that its security group admits this host".into(),
        (_, Via::Direct) => format!(
            "start PostgreSQL, or fix `upstream:` (host, port) {}",
            s.of_target()
        ),
        _ => format!(
            "start PgBouncer (systemctl start pgbouncer) once {} has written its files, or fix public_host / pgbouncer.listen_port {}",
            s.apply(),
            s.of_target()
        ),
    }
}

fn unreachable_fix(s: &Situation<'_>) -> String {
    match s.provider {
        "rds-proxy" => "RDS Proxy answers only inside its VPC: run verify from a host in the VPC, and check the proxy's security group and subnets".into(),
        _ => format!(
            "check that {} is reachable from here (firewall, security group, listen_addr) and that the pooler's upstream answers",
            s.place()
        ),
    }
}

/// The parameter named in "unsupported startup parameter: X" or
/// "... in options: X" (or "X=value").
fn startup_parameter(text: &str) -> String {
    text.to_lowercase()
        .split("unsupported startup parameter")
        .nth(1)
        .and_then(|r| r.rsplit(':').next())
        .map(|r| {
            r.trim()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "the parameter".into())
}

/// Every known error, most specific first.
pub static TABLE: &[Entry] = &[
    Entry {
        name: "server-login-failed",
        any: &["server login failed:"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "server login failed: FATAL password authentication failed for user \"app\"",
            "WARNING server login failed: FATAL remaining connection slots are reserved for non-replication superuser connections",
            "server login failed: wrong password type",
        ],
        cause: |t, s| server_answer(t, "server login failed:", s).cause,
        fix: |t, s| server_answer(t, "server login failed:", s).fix,
    },
    Entry {
        name: "server-login-retry",
        any: &["server login has been failing"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "server login has been failing, try again later (server_login_retry)",
            "server login has been failing, cached error: password authentication failed for user \"app\" (server_login_retry)",
        ],
        cause: |t, s| {
            let why = "PgBouncer's last login to PostgreSQL failed, and until server_login_retry (15 s by default) has passed it fails every new client at once instead of trying again";
            if t.to_lowercase().contains("cached error:") {
                format!("{why}; {}", server_answer(t, "cached error:", s).cause)
            } else {
                format!(
                    "{why} (PgBouncer 1.18 does not say why: its log does, as \"server login failed: ...\")"
                )
            }
        },
        fix: |t, s| {
            if t.to_lowercase().contains("cached error:") {
                server_answer(t, "cached error:", s).fix
            } else {
                format!(
                    "read PgBouncer's log for \"server login failed\" ({} checks a fresh server login and names the refusal)",
                    s.verify()
                )
            }
        },
    },
    // Supavisor (Supabase's pooler) answers in its own words, SQLSTATE XX000.
    Entry {
        name: "supavisor-tenant-not-found",
        any: &["tenant or user not found"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "Tenant or user not found",
            "FATAL:  Tenant or user not found",
            "error: Tenant or user not found",
        ],
        cause: |_, _| {
            "Supavisor does not know this user for this host: on its pooler host the user must be `<user>.<project_ref>`, and the project must live in the host's region".into()
        },
        fix: |_, s| {
            format!(
                "use the URL poolwright prints ({}: it writes the user as Supavisor wants it); check the pooler host (aws-0- or aws-1-<region>) against the project's settings",
                s.url("")
            )
        },
    },
    Entry {
        name: "supavisor-auth-error",
        any: &["authentication error, reason:"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "(EINVALIDUSERINFO) Authentication error, reason: \"Invalid format for user or db_name\"",
            "failed to connect: Authentication error, reason: \"Unsupported or invalid secret format\"",
        ],
        cause: |t, s| {
            format!(
                "{} could not authenticate the client ({}): the user is not written `<user>.<project_ref>`, or the password or the secret Supavisor holds for it does not fit",
                s.at("Supavisor"),
                inner_text(t, "authentication error, reason:")
            )
        },
        fix: |_, s| {
            format!(
                "use the URL poolwright prints ({}), with the database password of the project (Settings, Database); after a password reset, wait a minute for Supavisor to pick it up",
                s.url("")
            )
        },
    },
    Entry {
        name: "supavisor-db-handler-exited",
        any: &["dbhandler exited", "edbhandlerexited"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "DbHandler exited",
            "(EDBHANDLEREXITED) DbHandler exited. Check logs for more information",
            "(EDBHANDLEREXITED) connection to database closed. Check logs for more information",
        ],
        cause: |_, _| {
            "Supavisor's connection to the database ended under the client: the database restarted (an upgrade, a resize, a pause), a backend was terminated, or Supavisor could not open a server connection".into()
        },
        fix: |_, s| {
            format!(
                "retry the transaction and let the app reconnect on this error; if it keeps happening, check the project's database and pooler logs for that time, and that the direct URL ({}) answers",
                s.url(" --direct")
            )
        },
    },
    Entry {
        name: "supavisor-session-mode-full",
        any: &[
            "maxclientsinsessionmode",
            "in session mode max clients are limited",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size",
        ],
        cause: |_, _| {
            "Supavisor in session mode (port 5432 of the pooler host) gives each client its own server connection, and pool_size of them are taken".into()
        },
        fix: |_, s| {
            format!(
                "use transaction mode (port 6543; the URL poolwright prints, {}, uses it) for serverless and short-lived clients, or raise the pool size in the project's database settings",
                s.url("")
            )
        },
    },
    Entry {
        name: "supavisor-checkout-timeout",
        any: &["unable to check out process from the pool due to timeout"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["Unable to check out process from the pool due to timeout"],
        cause: |_, _| {
            "every server connection of Supavisor's pool was busy for as long as the client may wait: the pool is exhausted".into()
        },
        fix: |_, _| {
            "find the long transactions that hold server connections (pg_stat_activity on the direct URL), close idle clients, or raise the pool size in the project's database settings".into()
        },
    },
    Entry {
        name: "supavisor-prepare-on-simple-query",
        any: &["only supports prepared statements using the extended query protocol"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "Supavisor transaction mode only supports prepared statements using the Extended Query Protocol",
        ],
        cause: |_, _| {
            "the app ran PREPARE / EXECUTE as SQL text through Supavisor's transaction mode, which keeps only protocol-level prepared statements".into()
        },
        fix: |_, s| {
            format!(
                "let the driver prepare (protocol level) instead of sending PREPARE, or run that work through the direct URL ({})",
                s.url(" --direct")
            )
        },
    },
    Entry {
        name: "supavisor-allow-list",
        any: &["address not in tenant allow_list"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["Address not in tenant allow_list: {203, 0, 113, 7}"],
        cause: |_, _| {
            "the project's network restrictions do not admit this client's address".into()
        },
        fix: |_, _| {
            "add the app's egress address (CIDR) under the project's network restrictions (Settings, Database)".into()
        },
    },
    // RDS Proxy's own texts: its client answers and its log lines.
    Entry {
        name: "rds-proxy-borrow-timeout",
        any: &["timed-out waiting to acquire database connection"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "Timed-out waiting to acquire database connection",
            "SequelizeConnectionError: Timed-out waiting to acquire database connection",
        ],
        cause: |_, _| {
            "RDS Proxy waited ConnectionBorrowTimeout for a database connection and got none: its pool (MaxConnectionsPercent of the database's max_connections) is in use, pinned sessions hold connections, or the database is down or failing over".into()
        },
        fix: |_, _| {
            "watch DatabaseConnectionsCurrentlySessionPinned and DatabaseConnections in CloudWatch; avoid what pins (session SET, temporary tables, named prepared statements), raise MaxConnectionsPercent or the instance's max_connections, and check the database's state".into()
        },
    },
    Entry {
        name: "rds-proxy-auth-method",
        any: &["rds proxy supports only iam, md5, or scram authentication"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "RDS Proxy supports only IAM, MD5, or SCRAM authentication.",
            "consuming input failed: RDS Proxy supports only IAM, MD5, or SCRAM authentication.\nserver closed the connection unexpectedly",
        ],
        cause: |_, _| {
            "the client did not answer RDS Proxy with a password or an IAM token (a URL without a password, or a client that offers another method)".into()
        },
        fix: |_, s| {
            format!(
                "give the URL its password (the one in the proxy's Secrets Manager secret; {} prints it masked), or an IAM token with IAM authentication turned on for the proxy",
                s.url("")
            )
        },
    },
    Entry {
        name: "rds-proxy-credentials",
        any: &[
            "credentials couldn't be retrieved",
            "proxy authentication with",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "Credentials couldn't be retrieved. The IAM role \"arn:aws:iam::123456789012:role/ProxyRole\" is not authorized to read the AWS Secrets Manager secret with the ARN \"arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db\"",
            "Proxy authentication with IAM authentication failed for user \"app\" with TLS on. Reason: Invalid credentials. If you provide an IAM token, make sure to either use the correct password or enable IAM authentication.",
        ],
        cause: |_, _| {
            "RDS Proxy could not check the login: its IAM role cannot read (or decrypt) the Secrets Manager secret that holds the user's password, or the password or IAM token the client sent is not that secret's".into()
        },
        fix: |_, s| {
            format!(
                "let the proxy's role read the secret (secretsmanager:GetSecretValue, and kms:Decrypt for a customer key), keep the secret's password equal to the role's on the database, and re-run {}",
                s.apply()
            )
        },
    },
    Entry {
        name: "tls-required",
        any: &["requires tls connections", "ssl connection is required"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "FATAL:  This RDS Proxy requires TLS connections",
            "SSL connection is required",
        ],
        cause: |_, s| {
            format!(
                "{} accepts only TLS connections and the client asked for none",
                s.place()
            )
        },
        fix: |_, _| {
            "put sslmode=require (or verify-full with the provider's CA as sslrootcert) in the URL, and make sure the driver does not turn TLS off".into()
        },
    },
    Entry {
        name: "no-connection-slots",
        any: &[
            "remaining connection slots are reserved",
            "sorry, too many clients already",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "remaining connection slots are reserved for non-replication superuser connections",
            "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
            "sorry, too many clients already",
        ],
        cause: |_, _| {
            "PostgreSQL has no connection slot left: max_connections is reached (the last ones are kept for superusers)".into()
        },
        fix: |_, s| {
            format!(
            "make the pools fit: {} lower default_pool_size / reserve_pool_size or cap them with max_db_connections, close other clients (apps connecting directly), or raise max_connections on the server (restart needed)",
            match s.target {
                "" => "`poolwright validate` checks them against the max_connections poolwright.yaml gives;".to_string(),
                t => format!("`poolwright verify {t}` shows the budget against the live max_connections;"),
            }
        )
        },
    },
    Entry {
        name: "role-connection-limit",
        any: &["too many connections for role"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["too many connections for role \"app\""],
        cause: |_, s| match s.user {
            "" => "the app's role reached its CONNECTION LIMIT on the server".into(),
            u => format!("role `{u}` reached its CONNECTION LIMIT on the server"),
        },
        fix: |_, s| {
            format!(
                "cap the pools below it (pgbouncer.max_user_connections in poolwright.yaml, then {}), or raise it: ALTER ROLE {} CONNECTION LIMIT n",
                s.apply(),
                if s.user.is_empty() { "..." } else { s.user }
            )
        },
    },
    Entry {
        name: "database-connection-limit",
        any: &["too many connections for database"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["too many connections for database \"qbo_mirror\""],
        cause: |_, s| format!("{} reached its CONNECTION LIMIT on the server", s.db()),
        fix: |_, s| {
            format!(
                "cap the pools below it (pgbouncer.max_db_connections, then {}), or ALTER DATABASE ... CONNECTION LIMIT n",
                s.apply()
            )
        },
    },
    Entry {
        name: "max-client-conn",
        any: &[
            "no more connections allowed",
            "max client connections reached",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "no more connections allowed (max_client_conn)",
            "FATAL: Max client connections reached",
            "error: Max client connections reached",
        ],
        cause: |_, s| {
            format!(
                "{} has as many clients as it accepts (max_client_conn; Supavisor: the project's client limit)",
                s.at("the pooler")
            )
        },
        fix: |_, s| {
            format!(
                "raise pgbouncer.max_client_conn in poolwright.yaml and run {}, which makes systemd's LimitNOFILE follow it, or find the clients that leak connections (SHOW CLIENTS on the admin console); on Supabase, a larger compute size raises the limit",
                s.apply()
            )
        },
    },
    Entry {
        name: "too-many-connections",
        any: &["too many connections"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["too many connections"],
        cause: |_, _| "the server or pooler refused a connection because it has too many".into(),
        fix: |_, s| {
            format!(
                "compare the pools with the server's max_connections ({}) and lower the pool sizes or raise the limit",
                match s.target {
                    "" => "`poolwright validate` checks them against poolwright.yaml's".to_string(),
                    t => format!("`poolwright verify {t}` shows the live budget"),
                }
            )
        },
    },
    Entry {
        name: "ssl-closed-unexpectedly",
        any: &["ssl connection has been closed unexpectedly"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "SSL connection has been closed unexpectedly",
            "psycopg.OperationalError: consuming input failed: SSL connection has been closed unexpectedly",
        ],
        cause: |_, s| {
            format!(
                "the TLS connection to {} was dropped mid-session: the server restarted, ended the backend (idle_in_transaction_session_timeout, pg_terminate_backend, server_lifetime) or a load balancer closed an idle connection",
                s.place()
            )
        },
        fix: |_, _| {
            "read the pooler's and the server's logs at that time; keep a balancer's idle timeout above the pooler's server_idle_timeout, and let the app reconnect on this error".into()
        },
    },
    Entry {
        name: "server-closed-unexpectedly",
        any: &["server closed the connection unexpectedly"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "server closed the connection unexpectedly",
            "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.",
        ],
        cause: |_, s| {
            format!(
                "{} closed the connection before answering: the server process ended (crash, restart, pg_terminate_backend) or a proxy cut it",
                s.place()
            )
        },
        fix: |_, _| {
            "read the pooler's and the server's logs at that time; if it happens at login, check the pooler's log for the refused startup parameter or user".into()
        },
    },
    Entry {
        name: "wrong-password-type",
        any: &["wrong password type"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "wrong password type",
            "cannot do SCRAM authentication: wrong password type",
        ],
        cause: |_, s| {
            format!(
                "PgBouncer cannot use the secret userlist.txt holds for {} with its auth_type (an md5 hash with auth_type scram-sha-256, or a SCRAM verifier where PgBouncer must log in to the server with md5)",
                s.who()
            )
        },
        fix: |_, s| {
            format!(
                "use `userlist: scram` with `auth_type: scram-sha-256` (the defaults) and run {}; with md5 on the server, use `userlist: plain`",
                s.apply()
            )
        },
    },
    Entry {
        name: "no-such-user",
        any: &["no such user"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["no such user: app", "no such user"],
        cause: |_, s| {
            format!(
                "{} does not know {}: it is not in its auth_file (userlist.txt)",
                s.at("the pooler"),
                s.user_word()
            )
        },
        fix: |_, s| {
            format!(
                "add {} under `users:` {} and run {}: it rewrites userlist.txt and reloads PgBouncer",
                s.who(),
                s.of_target(),
                s.apply()
            )
        },
    },
    // PostgreSQL's refusal, passed on by PgBouncer (see the module's
    // table): it names the user, 1.24 keeps its 28P01.
    Entry {
        name: "server-refused-pgbouncer-login",
        any: &["password authentication failed for user"],
        all: &[],
        codes: &["28P01"],
        when: |s| s.via == Via::Pooler && s.maybe_pgbouncer(),
        examples: &[
            "password authentication failed for user \"app\"",
            "FATAL:  password authentication failed for user \"app\"",
        ],
        cause: |t, s| {
            let inner = quote_from(t, "password authentication failed");
            if s.provider.is_empty() {
                format!(
                    "PostgreSQL refused the login as {} (\"{inner}\"): behind PgBouncer this is PgBouncer's own login to the server, with the secret in userlist.txt, which is not what the server stores (a later apply elsewhere or a password reset replaced it; PgBouncer's own refusals never name the user); without a pooler, the password is not the role's current one",
                    s.who()
                )
            } else {
                server_refused_cause(inner, s)
            }
        },
        fix: |_, s| server_refused_fix(s),
    },
    Entry {
        name: "password-refused",
        any: &[
            "password authentication failed",
            "sasl authentication failed",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "SASL authentication failed",
            "FATAL:  password authentication failed",
        ],
        cause: |_, s| {
            let (place, who) = (s.place(), s.who());
            match (s.via, s.maybe_pgbouncer()) {
                (Via::Direct, _) => format!(
                    "{} refused the password of {who}: it is not the role's current password",
                    s.at("PostgreSQL")
                ),
                (_, true) => format!(
                    "{place} refused the password of {who}: PgBouncer refused the password the app sent, which is not the one poolwright.yaml gives to PgBouncer's userlist.txt (or it is not a user there)"
                ),
                (_, false) => format!(
                    "{place} refused the password of {who}: it is not the role's current password on the server"
                ),
            }
        },
        fix: |_, s| match (s.via, s.maybe_pgbouncer()) {
            (Via::Direct, _) => format!(
                "set the password variable to the role's current password (or reset it on the server: \\password {} in psql), then {}",
                if s.user.is_empty() { "..." } else { s.user },
                s.apply()
            ),
            (_, true) => format!(
                "set the password variable to the current password of {} and run {}: it rewrites userlist.txt, stores the verifier on the server and reloads PgBouncer",
                s.who(),
                s.apply()
            ),
            (_, false) => format!(
                "use the URL poolwright prints ({}) with the password variable set to the role's current password",
                s.url("")
            ),
        },
    },
    Entry {
        name: "prepared-statement-moved",
        any: &["does not exist", "already exists"],
        all: &["prepared statement"],
        codes: &[],
        when: always,
        examples: &[
            "prepared statement \"s0\" already exists",
            "prepared statement \"PGBOUNCER_12\" does not exist",
            "asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement \"__asyncpg_stmt_a__\" does not exist",
            "DuplicatePreparedStatement: prepared statement \"_pg3_0\" already exists",
        ],
        cause: |_, _| {
            "a named prepared statement went to another server connection: in transaction mode the pooler hands each transaction to any free server connection".into()
        },
        fix: |_, s| {
            format!(
            "set the driver's flags ({}), or use PgBouncer 1.21+ where poolwright turns on max_prepared_statements; with Prisma on 1.21+, drop pgbouncer=true (\"PGBOUNCER_n does not exist\")",
            match s.target {
                "" => "statement_cache_size=0 for asyncpg, prepareThreshold=0 for pgJDBC, pgbouncer=true for Prisma, ...; `poolwright url --help` lists the drivers whose flags its --driver prints".to_string(),
                t => format!("`poolwright url {t} --driver asyncpg`, or your driver, prints them: statement_cache_size=0, prepareThreshold=0, pgbouncer=true, ..."),
            }
        )
        },
    },
    Entry {
        name: "channel-binding",
        any: &["channel binding"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "client requires SCRAM channel binding, but it is not supported",
            "channel binding required, but server authenticated client without channel binding",
        ],
        cause: |_, s| {
            format!(
                "the client requires SCRAM channel binding (channel_binding=require) but {} does not offer SCRAM-SHA-256-PLUS, as PgBouncer does not to its clients",
                s.place()
            )
        },
        fix: |_, _| {
            "drop channel_binding=require from the URL behind a pooler; use sslmode=verify-full to authenticate the server instead".into()
        },
    },
    Entry {
        name: "unsupported-startup-parameter",
        any: &["unsupported startup parameter"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "unsupported startup parameter: extra_float_digits",
            "unsupported startup parameter in options: search_path",
            "unsupported startup parameter: statement_timeout=5000",
        ],
        cause: |t, _| {
            format!(
                "the client sent startup parameter `{}`, which PgBouncer refuses unless told to ignore it",
                startup_parameter(t)
            )
        },
        fix: |t, s| {
            format!(
                "add it to `pgbouncer.ignore_startup_parameters` in poolwright.yaml ({}) and run {}, or remove it from the URL (asyncpg forwards unknown URL parameters to the server)",
                match startup_parameter(t).as_str() {
                    "extra_float_digits" => "[extra_float_digits]".to_string(),
                    p => format!("e.g. [extra_float_digits, {p}]"),
                },
                s.apply()
            )
        },
    },
    Entry {
        name: "no-tls-offered",
        any: &["does not support tls", "does not support ssl"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "server does not support SSL, but SSL was required",
            "error performing TLS handshake: server does not support TLS",
        ],
        cause: |_, s| {
            format!(
                "the URL asks for TLS (sslmode=require) but {} does not offer it",
                s.place()
            )
        },
        fix: |_, s| {
            format!(
                "turn TLS on in the pooler: client_tls_sslmode, client_tls_key_file and client_tls_cert_file in poolwright.yaml, {}, then restart PgBouncer; or, on a private network, drop sslmode=require",
                s.apply()
            )
        },
    },
    Entry {
        name: "pg-hba-no-entry",
        any: &["no pg_hba.conf entry"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "no pg_hba.conf entry for host \"10.0.0.7\", user \"app\", database \"qbo_mirror\", no encryption",
        ],
        cause: |t, s| {
            let tls = if t.to_lowercase().contains("no encryption") {
                " (\"no encryption\": the lines that would admit it are hostssl, for TLS connections only)"
            } else {
                ""
            };
            format!(
                "the server's pg_hba.conf has no line that admits this host, user and database{tls}; behind a pooler, the host is the pooler's{}",
                match s.place {
                    "" => String::new(),
                    p => format!(" ({p})"),
                }
            )
        },
        fix: |_, _| {
            "add a `host` (or `hostssl`) line for the database, user and the client's address with scram-sha-256 to pg_hba.conf and reload PostgreSQL; or ask for TLS with sslmode=require where only hostssl lines admit it".into()
        },
    },
    Entry {
        name: "certificate",
        any: &["certificate", "invalidcertificate", "unknownissuer"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "invalid peer certificate: UnknownIssuer",
            "certificate verify failed: self-signed certificate in certificate chain",
        ],
        cause: |t, s| format!("the certificate of {} did not verify ({t})", s.place()),
        fix: |_, _| {
            "with sslmode=verify-full/verify-ca, name the CA with sslrootcert=FILE (or install it in the system store) and use the host name the certificate is for; sslmode=require encrypts without checking".into()
        },
    },
    Entry {
        name: "not-pgbouncer",
        any: &["database \"pgbouncer\" does not exist"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["database \"pgbouncer\" does not exist"],
        cause: |_, s| {
            format!(
                "{} is PostgreSQL itself, not PgBouncer: it has no admin console database `pgbouncer`",
                s.place()
            )
        },
        fix: |_, s| {
            format!(
                "point the pooled URL at PgBouncer: public_host and pgbouncer.listen_port {} must be where PgBouncer listens, not the server",
                s.of_target()
            )
        },
    },
    Entry {
        name: "pooler-has-no-database",
        any: &["no such database"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["no such database: qbo_mirror"],
        cause: |_, s| {
            format!(
                "{} has no {} in its [databases]",
                s.at("the pooler"),
                s.db()
            )
        },
        fix: |_, s| {
            format!(
                "add it under `databases:` {} and run {}",
                s.of_target(),
                s.apply()
            )
        },
    },
    Entry {
        name: "database-does-not-exist",
        any: &["does not exist"],
        all: &["database"],
        codes: &[],
        when: always,
        examples: &["database \"qbo_mirror\" does not exist"],
        cause: |_, s| format!("{} has no {}", s.at("PostgreSQL"), s.db()),
        fix: |_, s| {
            format!(
                "create it (CREATE DATABASE ...) or fix `dbname` under `databases:` {}",
                s.of_target()
            )
        },
    },
    Entry {
        name: "admin-console-not-allowed",
        any: &["not allowed"],
        all: &[],
        codes: &[],
        when: |s| s.via == Via::AdminConsole,
        examples: &["not allowed"],
        cause: |_, s| {
            format!(
                "{} refused {} on its admin console",
                s.at("PgBouncer"),
                s.who()
            )
        },
        fix: |_, s| {
            format!(
                "list {} in pgbouncer.admin_users or stats_users and run {}",
                if s.user.is_empty() {
                    "the console's user".to_string()
                } else {
                    format!("`{}`", s.user)
                },
                s.apply()
            )
        },
    },
    Entry {
        name: "pgbouncer-cannot-reach-server",
        any: &["pgbouncer cannot connect to server"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["pgbouncer cannot connect to server"],
        cause: |_, _| {
            "PgBouncer cannot reach PostgreSQL: the upstream is down or the host/port in [databases] is wrong".into()
        },
        fix: |_, s| {
            format!(
                "check `upstream:` {} (host, port) and that PostgreSQL runs there; PgBouncer's log names the address it tried",
                s.of_target()
            )
        },
    },
    Entry {
        name: "query-wait-timeout",
        any: &["query_wait_timeout"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["query_wait_timeout", "ERROR: query_wait_timeout"],
        cause: |_, _| {
            "the client waited longer than query_wait_timeout for a server connection: the pool is exhausted".into()
        },
        fix: |_, _| {
            "look at SHOW POOLS (cl_waiting, maxwait): raise the pool size if the server has room, or find long transactions that hold server connections".into()
        },
    },
    Entry {
        name: "auth-query-response",
        any: &["unexpected response from login query"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["unexpected response from login query"],
        cause: |_, _| {
            "PgBouncer's auth_query returned something it cannot use (no row, or more than one column pair)".into()
        },
        fix: |_, _| {
            "check the auth_query function on the server (it must return usename, passwd) and that auth_user may run it".into()
        },
    },
    Entry {
        name: "connection-refused",
        any: &["connection refused", "econnrefused"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "Connection refused (os error 111)",
            "connect ECONNREFUSED 10.0.0.7:6432",
        ],
        cause: |_, s| match s.place {
            "" => "nothing listens on the address tried".into(),
            p => format!("nothing listens on {p}"),
        },
        fix: |_, s| refused_fix(s),
    },
    Entry {
        name: "login-not-finished",
        any: &["connected, but the login did not finish"],
        all: &[],
        codes: &[],
        when: always,
        examples: &["timeout: connected, but the login did not finish within 10 s"],
        cause: |_, s| {
            format!(
                "{} accepted the connection but did not finish the login in time: a pooler does this while it waits for a server connection it cannot open (server full or down, or its own login to the server failing; PgBouncer retries every server_login_retry)",
                s.place()
            )
        },
        fix: |_, s| {
            format!(
                "check the server through the direct URL ({}) and the pooler's log for the server login error",
                s.url(" --direct")
            )
        },
    },
    Entry {
        name: "timeout",
        any: &["timeout", "timed out"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "timeout: no answer within 3 s",
            "connection to server at \"10.0.0.7\", port 6432 failed: Connection timed out",
        ],
        cause: |_, s| {
            format!(
                "no answer from {} in time: a firewall or security group drops the packets, the host is down, or the pooler waits for a server it cannot reach",
                s.place()
            )
        },
        fix: |_, s| unreachable_fix(s),
    },
    Entry {
        name: "host-not-resolved",
        any: &[
            "failed to lookup address",
            "name or service not known",
            "no address associated",
            "could not translate host name",
        ],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "failed to lookup address information: Name or service not known",
            "could not translate host name \"db.example\" to address: Name or service not known",
        ],
        cause: |_, s| format!("the host name of {} does not resolve here", s.place()),
        fix: |_, s| {
            format!(
                "check public_host (pooled URL) or upstream.host (direct URL) {}, and this machine's DNS",
                s.of_target()
            )
        },
    },
    Entry {
        name: "no-route",
        any: &["no route to host", "network is unreachable"],
        all: &[],
        codes: &[],
        when: always,
        examples: &[
            "No route to host (os error 113)",
            "Network is unreachable (os error 101)",
        ],
        cause: |_, s| format!("{} cannot be reached from this machine", s.place()),
        fix: |_, s| unreachable_fix(s),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(via: Via, provider: &'static str) -> Situation<'static> {
        Situation {
            via,
            place: "db.example:6432",
            user: "app",
            database: "qbo_mirror",
            target: "prod",
            provider,
            code: None,
        }
    }

    fn pooled(text: &str) -> Diagnosis {
        diagnose(text, &at(Via::Pooler, "pgbouncer"))
    }

    /// (text as the server writes it, words the cause must hold, words the fix must hold)
    const CASES: &[(&str, &str, &str)] = &[
        (
            "remaining connection slots are reserved for non-replication superuser connections",
            "no connection slot left",
            "max_connections",
        ),
        (
            "remaining connection slots are reserved for roles with the SUPERUSER attribute",
            "no connection slot left",
            "default_pool_size",
        ),
        (
            "sorry, too many clients already",
            "max_connections is reached",
            "raise max_connections",
        ),
        (
            "too many connections for role \"app\"",
            "CONNECTION LIMIT",
            "max_user_connections",
        ),
        (
            "too many connections for database \"qbo_mirror\"",
            "CONNECTION LIMIT",
            "max_db_connections",
        ),
        (
            "no more connections allowed (max_client_conn)",
            "max_client_conn",
            "max_client_conn",
        ),
        (
            "FATAL: Max client connections reached",
            "max_client_conn",
            "max_client_conn",
        ),
        ("too many connections", "too many", "lower the pool sizes"),
        (
            "SSL connection has been closed unexpectedly",
            "TLS connection to db.example:6432 was dropped",
            "logs",
        ),
        (
            "server closed the connection unexpectedly",
            "db.example:6432 closed the connection",
            "logs",
        ),
        ("wrong password type", "auth_type", "userlist: scram"),
        (
            "no such user: app",
            "does not know user `app`",
            "under `users:`",
        ),
        (
            // Through PgBouncer, PostgreSQL's words: its refusal of
            // PgBouncer's own login (1.18 and 1.24 pass it on as is).
            "password authentication failed for user \"app\"",
            "PostgreSQL refused PgBouncer's own login as `app`",
            "poolwright apply prod",
        ),
        (
            "password authentication failed",
            "PgBouncer refused the password the app sent",
            "poolwright apply prod",
        ),
        (
            "SASL authentication failed",
            "refused the password of `app`",
            "poolwright apply prod",
        ),
        (
            "server login failed: FATAL password authentication failed for user \"app\"",
            "PostgreSQL refused PgBouncer's own login",
            "stores userlist.txt's SCRAM verifier",
        ),
        (
            "server login failed: FATAL: remaining connection slots are reserved for non-replication superuser connections",
            "PgBouncer could not log in to PostgreSQL: PostgreSQL has no connection slot left",
            "max_connections",
        ),
        (
            "Tenant or user not found",
            "Supavisor",
            "poolwright url prod",
        ),
        (
            "prepared statement \"s0\" already exists",
            "another server connection",
            "--driver",
        ),
        (
            "prepared statement \"PGBOUNCER_12\" does not exist",
            "another server connection",
            "drop pgbouncer=true",
        ),
        (
            "client requires SCRAM channel binding, but it is not supported",
            "channel binding",
            "drop channel_binding=require",
        ),
        (
            "channel binding required, but server authenticated client without channel binding",
            "SCRAM-SHA-256-PLUS",
            "verify-full",
        ),
        (
            "unsupported startup parameter: extra_float_digits",
            "`extra_float_digits`",
            "ignore_startup_parameters",
        ),
        (
            "unsupported startup parameter in options: search_path",
            "`search_path`",
            "ignore_startup_parameters",
        ),
        (
            "server does not support SSL, but SSL was required",
            "asks for TLS",
            "client_tls_sslmode",
        ),
        (
            "error performing TLS handshake: server does not support TLS",
            "db.example:6432 does not offer it",
            "client_tls_cert_file",
        ),
        (
            "invalid peer certificate: UnknownIssuer",
            "did not verify",
            "sslrootcert",
        ),
        (
            "database \"pgbouncer\" does not exist",
            "PostgreSQL itself, not PgBouncer",
            "listen_port",
        ),
        (
            "no such database: qbo_mirror",
            "no database `qbo_mirror`",
            "under `databases:`",
        ),
        (
            "database \"qbo_mirror\" does not exist",
            "has no database `qbo_mirror`",
            "CREATE DATABASE",
        ),
        (
            "pgbouncer cannot connect to server",
            "cannot reach PostgreSQL",
            "upstream:",
        ),
        ("query_wait_timeout", "pool is exhausted", "SHOW POOLS"),
        (
            "unexpected response from login query",
            "auth_query",
            "auth_user",
        ),
        (
            "Connection refused (os error 111)",
            "nothing listens on db.example:6432",
            "systemctl start pgbouncer",
        ),
        (
            "timeout: no answer within 3 s",
            "no answer from db.example:6432",
            "firewall",
        ),
        (
            "timeout: connected, but the login did not finish within 10 s",
            "waits for a server connection",
            "--direct",
        ),
        (
            "failed to lookup address information: Name or service not known",
            "does not resolve",
            "public_host",
        ),
        (
            "No route to host (os error 113)",
            "cannot be reached",
            "firewall",
        ),
    ];

    #[test]
    fn every_known_message_gets_its_cause_and_fix() {
        for (text, cause, fix) in CASES {
            let got = pooled(text);
            assert!(
                got.cause.contains(cause),
                "{text:?}: cause {:?} lacks {cause:?}",
                got.cause
            );
            assert!(
                got.fix.contains(fix),
                "{text:?}: fix {:?} lacks {fix:?}",
                got.fix
            );
        }
    }

    #[test]
    fn unknown_messages_are_quoted_with_the_place() {
        let got = pooled("something new");
        assert_eq!(got.cause, "db.example:6432 answered \"something new\"");
        assert!(got.fix.contains("pooler's log"), "{}", got.fix);
    }

    #[test]
    fn the_fix_depends_on_the_connection_and_provider() {
        let direct = diagnose(
            "password authentication failed for user \"app\"",
            &at(Via::Direct, "pgbouncer"),
        );
        assert!(
            direct.cause.starts_with("PostgreSQL at db.example:6432"),
            "{}",
            direct.cause
        );
        assert!(direct.fix.contains("\\password app"), "{}", direct.fix);
        let refused = diagnose(
            "Connection refused (os error 111)",
            &at(Via::Direct, "pgbouncer"),
        );
        assert!(refused.fix.contains("start PostgreSQL"), "{}", refused.fix);
        for text in [
            "Connection refused (os error 111)",
            "timeout: no answer within 10 s",
        ] {
            let rds = diagnose(text, &at(Via::Pooler, "rds-proxy"));
            assert!(
                rds.fix.contains("only inside its VPC"),
                "{text}: {}",
                rds.fix
            );
        }
        let admin = diagnose("not allowed", &at(Via::AdminConsole, "pgbouncer"));
        assert!(admin.fix.contains("admin_users"), "{}", admin.fix);
    }

    /// The first connection whose situation the entry is about (the admin
    /// console's refusal is about the console only).
    fn via_for(e: &Entry, provider: &'static str) -> Via {
        [Via::Pooler, Via::Direct, Via::AdminConsole]
            .into_iter()
            .find(|v| (e.when)(&at(*v, provider)))
            .expect("an entry matches some connection")
    }

    #[test]
    fn every_example_is_diagnosed_as_its_own_entry() {
        for e in TABLE {
            assert!(!e.examples.is_empty(), "{} has no example", e.name);
            for text in e.examples {
                let via = via_for(e, "pgbouncer");
                for s in [at(via, "pgbouncer"), Situation::unknown(via)] {
                    let got = diagnose(text, &s);
                    assert_eq!(got.matched, Some(e.name), "{text:?} ({via:?}): {got:?}");
                }
            }
        }
    }

    #[test]
    fn entry_names_are_unique() {
        let mut names: Vec<_> = TABLE.iter().map(|e| e.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "two entries share a name");
    }

    #[test]
    fn without_a_target_no_fix_makes_one_up() {
        for e in TABLE {
            for text in e.examples {
                let via = via_for(e, "pgbouncer");
                let got = diagnose(text, &Situation::unknown(via));
                for part in [&got.cause, &got.fix] {
                    for made_up in ["TARGET", "NAME", " prod", "db.example", "``"] {
                        assert!(!part.contains(made_up), "{text:?}: {made_up:?} in {part:?}");
                    }
                }
            }
        }
        let with = pooled("no such user: app");
        assert!(with.fix.contains("`poolwright apply prod`"), "{}", with.fix);
        let without = diagnose("no such user: app", &Situation::unknown(Via::Pooler));
        assert!(
            without.fix.contains("run `poolwright apply`: ")
                && without
                    .fix
                    .ends_with("; `poolwright apply` applies every target"),
            "{}",
            without.fix
        );
    }

    /// What PgBouncer 1.18 and 1.24 send a client when the server refused
    /// PgBouncer's own login, and when PgBouncer refused the client.
    #[test]
    fn server_side_and_client_side_refusals_are_told_apart() {
        let server = "password authentication failed for user \"app\"";
        for code in ["08P01", "28P01"] {
            let s = Situation {
                code: Some(code),
                ..at(Via::Pooler, "pgbouncer")
            };
            let got = diagnose(server, &s);
            assert_eq!(
                got.matched,
                Some("server-refused-pgbouncer-login"),
                "{code}"
            );
            assert!(
                got.cause
                    .contains("PostgreSQL refused PgBouncer's own login as `app`"),
                "{code}: {}",
                got.cause
            );
            assert!(!got.cause.contains("not the one in"), "{}", got.cause);
            for client in [
                "SASL authentication failed",
                "password authentication failed",
            ] {
                let got = diagnose(
                    client,
                    &Situation {
                        code: Some("08P01"),
                        ..s
                    },
                );
                assert_eq!(got.matched, Some("password-refused"), "{client}");
                assert!(
                    got.cause
                        .contains("PgBouncer refused the password the app sent"),
                    "{}",
                    got.cause
                );
            }
        }
        // 28P01 from 1.24 whatever the server's lc_messages.
        let translated = diagnose(
            "Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen",
            &Situation {
                code: Some("28P01"),
                ..at(Via::Pooler, "pgbouncer")
            },
        );
        assert_eq!(translated.matched, Some("server-refused-pgbouncer-login"));
        // Supavisor checks the app's password itself and answers as
        // PostgreSQL does; the direct URL is the server's own refusal.
        for (via, provider, cause) in [
            (Via::Pooler, "supabase", "not the role's current password"),
            (
                Via::Direct,
                "pgbouncer",
                "PostgreSQL at db.example:6432 refused",
            ),
            (
                Via::AdminConsole,
                "pgbouncer",
                "PgBouncer refused the password",
            ),
        ] {
            let got = diagnose(
                server,
                &Situation {
                    code: Some("28P01"),
                    ..at(via, provider)
                },
            );
            assert_eq!(got.matched, Some("password-refused"), "{via:?} {provider}");
            assert!(got.cause.contains(cause), "{}", got.cause);
        }
        // While server_login_retry runs, 1.24 quotes the server; 1.18 does not.
        let cached = pooled(
            "server login has been failing, cached error: password authentication failed for user \"app\" (server_login_retry)",
        );
        assert!(
            cached
                .cause
                .contains("PostgreSQL refused PgBouncer's own login"),
            "{}",
            cached.cause
        );
        let blind = pooled("server login has been failing, try again later (server_login_retry)");
        assert!(
            blind.cause.contains("server_login_retry"),
            "{}",
            blind.cause
        );
        assert!(
            blind.fix.contains("`poolwright verify prod`"),
            "{}",
            blind.fix
        );
    }
}
