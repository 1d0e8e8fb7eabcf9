//! Known connection and query errors, each mapped to its cause and a fix.
//!
//! The error texts users meet behind a pooler are few and cryptic ("SASL
//! authentication failed" says nothing about a verifier that differs
//! between PgBouncer and PostgreSQL). Each entry below matches the text as
//! PostgreSQL, PgBouncer, Supavisor, libpq, tokio-postgres or the OS write
//! it (lower-cased substring), and says why it happens and what to change,
//! naming the place tried and the poolwright command that fixes it. Order
//! matters: the more specific text comes first.

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

/// What was being done when the error came.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub via: Via,
    /// `host:port` tried.
    pub place: &'a str,
    pub user: &'a str,
    pub database: &'a str,
    /// The target's name, for the commands in fixes.
    pub target: &'a str,
    /// The provider's manifest name (`pgbouncer`, later `rds-proxy`, ...).
    pub provider: &'a str,
}

/// Why it failed and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: String,
    pub fix: String,
}

fn d(cause: impl Into<String>, fix: impl Into<String>) -> Diagnosis {
    Diagnosis {
        cause: cause.into(),
        fix: fix.into(),
    }
}

/// The cause and fix of `text` (an error message) in situation `s`.
pub fn diagnose(text: &str, s: &Situation<'_>) -> Diagnosis {
    let lower = text.to_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let target = s.target;
    let place = s.place;
    let user = s.user;

    // PgBouncer reached the client but not PostgreSQL: the inner text is
    // PostgreSQL's answer to PgBouncer's own login.
    if let Some(at) = lower.find("server login failed:") {
        let inner = text[at + "server login failed:".len()..].trim();
        let inner = inner
            .strip_prefix("FATAL")
            .map_or(inner, |r| r.trim_start_matches(':').trim());
        let inner_lower = inner.to_lowercase();
        if inner_lower.contains("password authentication failed")
            || inner_lower.contains("sasl authentication failed")
        {
            return d(
                format!(
                    "PgBouncer logged `{user}` in, but PostgreSQL refused PgBouncer's own login as `{user}` ({inner}): the secret in PgBouncer's userlist.txt is not the one the server stores"
                ),
                format!(
                    "run `poolwright apply {target}`: it stores userlist.txt's SCRAM verifier on the server (someone reset the password there), or set the password variable to the role's current password first"
                ),
            );
        }
        let mut inner_d = diagnose(
            inner,
            &Situation {
                via: Via::Direct,
                ..*s
            },
        );
        inner_d.cause = format!(
            "PgBouncer could not log in to PostgreSQL: {}",
            inner_d.cause
        );
        return inner_d;
    }
    if has("remaining connection slots are reserved") || has("sorry, too many clients already") {
        return d(
            "PostgreSQL has no connection slot left: max_connections is reached (the last ones are kept for superusers)",
            format!(
                "make the pools fit: `poolwright verify {target}` shows the budget against the live max_connections; lower default_pool_size / reserve_pool_size or cap them with max_db_connections, close other clients (apps connecting directly), or raise max_connections on the server (restart needed)"
            ),
        );
    }
    if has("too many connections for role") {
        return d(
            format!("role `{user}` reached its CONNECTION LIMIT on the server"),
            format!(
                "cap the pools below it (pgbouncer.max_user_connections in poolwright.yaml, then `poolwright apply {target}`), or raise it: ALTER ROLE {user} CONNECTION LIMIT n"
            ),
        );
    }
    if has("too many connections for database") {
        return d(
            format!(
                "database `{}` reached its CONNECTION LIMIT on the server",
                s.database
            ),
            format!(
                "cap the pools below it (pgbouncer.max_db_connections, then `poolwright apply {target}`), or ALTER DATABASE ... CONNECTION LIMIT n"
            ),
        );
    }
    if has("no more connections allowed") || has("max client connections reached") {
        return d(
            format!("the pooler at {place} has as many clients as it accepts (max_client_conn)"),
            format!(
                "raise pgbouncer.max_client_conn in poolwright.yaml and `poolwright apply {target}` (systemd's LimitNOFILE follows it), or find the clients that leak connections (SHOW CLIENTS on the admin console)"
            ),
        );
    }
    if has("too many connections") {
        return d(
            "the server or pooler refused a connection because it has too many",
            format!(
                "compare the pools with the server's max_connections (`poolwright verify {target}` shows the live budget) and lower the pool sizes or raise the limit"
            ),
        );
    }
    if has("ssl connection has been closed unexpectedly") {
        return d(
            format!(
                "the TLS connection to {place} was dropped mid-session: the server restarted, ended the backend (idle_in_transaction_session_timeout, pg_terminate_backend, server_lifetime) or a load balancer closed an idle connection"
            ),
            "read the pooler's and the server's logs at that time; keep a balancer's idle timeout above the pooler's server_idle_timeout, and let the app reconnect on this error",
        );
    }
    if has("server closed the connection unexpectedly") {
        return d(
            format!(
                "{place} closed the connection before answering: the server process ended (crash, restart, pg_terminate_backend) or a proxy cut it"
            ),
            "read the pooler's and the server's logs at that time; if it happens at login, check the pooler's log for the refused startup parameter or user",
        );
    }
    if has("wrong password type") {
        return d(
            format!(
                "PgBouncer cannot use the secret userlist.txt holds for `{user}` with its auth_type (an md5 hash with auth_type scram-sha-256, or a SCRAM verifier where PgBouncer must log in to the server with md5)"
            ),
            format!(
                "use `userlist: scram` with `auth_type: scram-sha-256` (the defaults) and run `poolwright apply {target}`; with md5 on the server, use `userlist: plain`"
            ),
        );
    }
    if has("no such user") {
        return d(
            format!(
                "the pooler at {place} does not know user `{user}`: it is not in its auth_file (userlist.txt)"
            ),
            format!(
                "add `{user}` under `users:` of target {target} and run `poolwright apply {target}` (it rewrites userlist.txt and reloads PgBouncer)"
            ),
        );
    }
    if has("password authentication failed") || has("sasl authentication failed") {
        let pooled = s.via != Via::Direct;
        return d(
            if pooled {
                format!(
                    "{place} refused the password of `{user}`: the password poolwright.yaml gives is not the one in PgBouncer's userlist.txt (or `{user}` is not a user there)"
                )
            } else {
                format!(
                    "PostgreSQL at {place} refused the password of `{user}`: it is not the role's current password"
                )
            },
            if pooled {
                format!(
                    "set the password variable to `{user}`'s current password and run `poolwright apply {target}` (it rewrites userlist.txt, stores the verifier on the server and reloads PgBouncer)"
                )
            } else {
                format!(
                    "set the password variable to the role's current password (or reset it on the server: \\password {user} in psql), then `poolwright apply {target}`"
                )
            },
        );
    }
    if has("tenant or user not found") {
        return d(
            "Supavisor does not know this user for this host: on its pooler host the user must be `<user>.<project_ref>`, and the project must live in the host's region",
            format!(
                "use the URL `poolwright url {target}` prints (it writes the user as Supavisor wants it); check the pooler host (aws-0- or aws-1-<region>) against the project's settings"
            ),
        );
    }
    if has("prepared statement") && (has("does not exist") || has("already exists")) {
        return d(
            "a named prepared statement went to another server connection: in transaction mode the pooler hands each transaction to any free server connection",
            format!(
                "set the driver's flags (`poolwright url {target} --driver D` prints them: statement_cache_size=0, prepareThreshold=0, pgbouncer=true, ...), or use PgBouncer 1.21+ where poolwright turns on max_prepared_statements; with Prisma on 1.21+, drop pgbouncer=true (\"PGBOUNCER_n does not exist\")"
            ),
        );
    }
    if has("channel binding") {
        return d(
            format!(
                "the client requires SCRAM channel binding (channel_binding=require) but {place} does not offer SCRAM-SHA-256-PLUS, as PgBouncer does not to its clients"
            ),
            "drop channel_binding=require from the URL behind a pooler; use sslmode=verify-full to authenticate the server instead",
        );
    }
    if has("unsupported startup parameter") {
        // "unsupported startup parameter: X" or "... in options: X".
        let param = lower
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
            .unwrap_or_else(|| "the parameter".into());
        return d(
            format!(
                "the client sent startup parameter `{param}`, which PgBouncer refuses unless told to ignore it"
            ),
            format!(
                "add it to `pgbouncer.ignore_startup_parameters` in poolwright.yaml (e.g. [extra_float_digits, {param}]) and run `poolwright apply {target}`, or remove it from the URL (asyncpg forwards unknown URL parameters to the server)"
            ),
        );
    }
    if has("does not support tls") || has("does not support ssl") {
        return d(
            format!("the URL asks for TLS (sslmode=require) but {place} does not offer it"),
            format!(
                "turn TLS on in the pooler: client_tls_sslmode, client_tls_key_file and client_tls_cert_file in poolwright.yaml, `poolwright apply {target}`, then restart PgBouncer; or, on a private network, drop sslmode=require"
            ),
        );
    }
    if has("certificate") || has("invalidcertificate") || has("unknownissuer") {
        return d(
            format!("the certificate of {place} did not verify ({text})"),
            "with sslmode=verify-full/verify-ca, name the CA with sslrootcert=FILE (or install it in the system store) and use the host name the certificate is for; sslmode=require encrypts without checking",
        );
    }
    if has("database \"pgbouncer\" does not exist") {
        return d(
            format!(
                "{place} is PostgreSQL itself, not PgBouncer: it has no admin console database `pgbouncer`"
            ),
            format!(
                "point the pooled URL at PgBouncer: public_host and pgbouncer.listen_port of target {target} must be where PgBouncer listens, not the server"
            ),
        );
    }
    if has("no such database") {
        return d(
            format!(
                "the pooler at {place} has no database `{}` in its [databases]",
                s.database
            ),
            format!(
                "add it under `databases:` of target {target} and run `poolwright apply {target}`"
            ),
        );
    }
    if has("does not exist") && has("database") {
        return d(
            format!("PostgreSQL at {place} has no database `{}`", s.database),
            format!(
                "create it (CREATE DATABASE ...) or fix `dbname` under `databases:` of target {target}"
            ),
        );
    }
    if has("not allowed") && s.via == Via::AdminConsole {
        return d(
            format!("PgBouncer at {place} refused `{user}` on its admin console"),
            format!(
                "list `{user}` in pgbouncer.admin_users or stats_users and run `poolwright apply {target}`"
            ),
        );
    }
    if has("pgbouncer cannot connect to server") {
        return d(
            "PgBouncer cannot reach PostgreSQL: the upstream is down or the host/port in [databases] is wrong",
            format!(
                "check `upstream:` of target {target} (host, port) and that PostgreSQL runs there; PgBouncer's log names the address it tried"
            ),
        );
    }
    if has("query_wait_timeout") {
        return d(
            "the client waited longer than query_wait_timeout for a server connection: the pool is exhausted",
            "look at SHOW POOLS (cl_waiting, maxwait): raise the pool size if the server has room, or find long transactions that hold server connections",
        );
    }
    if has("unexpected response from login query") {
        return d(
            "PgBouncer's auth_query returned something it cannot use (no row, or more than one column pair)",
            "check the auth_query function on the server (it must return usename, passwd) and that auth_user may run it",
        );
    }
    if has("connection refused") {
        return d(format!("nothing listens on {place}"), refused_fix(s));
    }
    if has("connected, but the login did not finish") {
        return d(
            format!(
                "{place} accepted the connection but did not finish the login in time: a pooler does this while it waits for a server connection it cannot open (server full or down, or its own login to the server failing; PgBouncer retries every server_login_retry)"
            ),
            format!(
                "check the server through the direct URL (`poolwright url {target} --direct`) and the pooler's log for the server login error"
            ),
        );
    }
    if has("timeout") || has("timed out") {
        return d(
            format!(
                "no answer from {place} in time: a firewall or security group drops the packets, the host is down, or the pooler waits for a server it cannot reach"
            ),
            unreachable_fix(s),
        );
    }
    if has("failed to lookup address")
        || has("name or service not known")
        || has("no address associated")
        || has("could not translate host name")
    {
        return d(
            format!("the host name of {place} does not resolve here"),
            format!(
                "check public_host (pooled URL) or upstream.host (direct URL) of target {target}, and this machine's DNS"
            ),
        );
    }
    if has("no route to host") || has("network is unreachable") {
        return d(
            format!("{place} cannot be reached from this machine"),
            unreachable_fix(s),
        );
    }
    d(
        format!("{place} answered \"{text}\""),
        match s.via {
            Via::Direct => "read PostgreSQL's log for this time".to_string(),
            _ => "read the pooler's log for this time (PgBouncer: logfile in poolwright.yaml, or journalctl -u pgbouncer)".to_string(),
        },
    )
}

fn refused_fix(s: &Situation<'_>) -> String {
    let target = s.target;
    match (s.provider, s.via) {
        ("rds-proxy", _) => "RDS Proxy answers only inside its VPC: run verify from a host in the VPC (or through a bastion), and check that its security group admits this host".into(),
        (_, Via::Direct) => format!(
            "start PostgreSQL, or fix `upstream:` (host, port) of target {target}"
        ),
        _ => format!(
            "start PgBouncer (systemctl start pgbouncer; `poolwright apply {target}` writes its files), or fix public_host / pgbouncer.listen_port of target {target}"
        ),
    }
}

fn unreachable_fix(s: &Situation<'_>) -> String {
    match s.provider {
        "rds-proxy" => "RDS Proxy answers only inside its VPC: run verify from a host in the VPC, and check the proxy's security group and subnets".into(),
        _ => format!(
            "check that {} is reachable from here (firewall, security group, listen_addr) and that the pooler's upstream answers",
            s.place
        ),
    }
}

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
            "password authentication failed for user \"app\"",
            "refused the password of `app`",
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
}
