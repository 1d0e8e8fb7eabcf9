//! Reading a `provider: pgbouncer` target from poolwright.yaml into a
//! [`Target`]: the settings against the version's table, the defaults
//! poolwright writes and why, databases, users (console-only ones too),
//! the URL's choice, systemd, processes and the auth checks, every problem
//! reported with its place in the file.

use std::path::Path;

use super::setting::{Setting, SettingValue, decode_section};
use super::version::Version;
use super::{Database, PREPARED_STATEMENTS_SINCE, Systemd, Target, Upstream, User, UserlistFormat};
use super::{budget, host_path, kubernetes, names, sizing};
use crate::diagnostic::{Span, did_you_mean};
use crate::providers::manifest::{Manifest, PgBouncerFacts};
use crate::yaml::node::{Key, Node};
use crate::yaml::reader::{MapView, Reader};

/// What poolwright writes into `[pgbouncer]` when the file does not say, and why.
const DEFAULTS: &[(&str, &str)] = &[
    // The port PgBouncer documents and everyone expects.
    ("listen_port", "6432"),
    // Debian's choices, so the files drop into the packaged layout.
    ("unix_socket_dir", "/var/run/postgresql"),
    ("pidfile", "/var/run/postgresql/pgbouncer.pid"),
    // Stored SCRAM verifiers: the safe default from PostgreSQL 14 on, and
    // PgBouncer passes them through to the server (see README: auth).
    ("auth_type", "scram-sha-256"),
    // poolwright exists for serverless apps that connect per request.
    ("pool_mode", "transaction"),
    ("max_client_conn", "1000"),
    // JDBC sends extra_float_digits at startup; PgBouncer rejects unknown
    // startup parameters unless told to ignore them.
    ("ignore_startup_parameters", "extra_float_digits"),
];

/// poolwright's `max_prepared_statements` in transaction mode (1.24's default).
const DEFAULT_MAX_PREPARED_STATEMENTS: i64 = 200;

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

fn is_wildcard(addr: &str) -> bool {
    matches!(addr, "*" | "0.0.0.0" | "::") || addr.contains(',')
}

/// Reads a `provider: pgbouncer` target (the `provider` key already taken).
pub fn decode(
    reader: &mut Reader<'_>,
    manifest: &'static Manifest,
    name: &str,
    mut map: MapView<'_>,
) -> Option<Target> {
    let facts = manifest
        .pgbouncer
        .as_ref()
        .expect("checked by Manifest::check");
    let ok_before = reader.problems.len();

    // On a bad version, go on with the default so the other problems are
    // reported in the same run; the target is refused at the end anyway.
    let version = match map.get("version") {
        None => facts.default_version,
        Some(node) => {
            let field = map.field("version");
            match reader
                .string(node, &field)
                .map(|text| text.parse::<Version>())
            {
                None => facts.default_version,
                Some(Ok(v)) if facts.versions.contains(&v) => v,
                Some(Ok(v)) => {
                    let list = facts
                        .versions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    reader.error(
                        node.span,
                        &field,
                        format!("PgBouncer {v} is not supported; supported: {list}"),
                    );
                    facts.default_version
                }
                Some(Err(e)) => {
                    reader.error(node.span, &field, e).hint =
                        Some("write it as a quoted string, as in `version: \"1.18\"`".into());
                    facts.default_version
                }
            }
        }
    };

    let upstream = decode_upstream(reader, &mut map);
    let public_host = map.get("public_host").and_then(|n| {
        reader.checked(
            n,
            &map.field("public_host"),
            crate::url::host_problem,
            crate::url::ONE_HOST_HINT,
        )
    });

    let pg_field = map.field("pgbouncer");
    let mut user_settings = Vec::new();
    if let Some(node) = map.get("pgbouncer")
        && let Some(section) = reader.map(node, &pg_field)
    {
        user_settings = decode_section(
            reader,
            &facts.settings,
            section.entries(),
            &pg_field,
            version,
            &[],
            "PgBouncer setting",
        );
    }

    let upstream_host = upstream
        .as_ref()
        .map_or("", |u| u.host.as_str())
        .to_string();
    let upstream_port = upstream.as_ref().map_or(5432, |u| u.port);
    let databases = decode_databases(
        reader,
        &mut map,
        facts,
        version,
        &upstream_host,
        upstream_port,
    );
    let declared = decode_users(reader, &mut map, facts, version);
    let names: Vec<User> = declared.iter().map(|(u, _)| u.clone()).collect();
    let (url_user, url_database) = decode_url_choice(reader, &mut map, &databases, &names);
    let users = resolve_console_only(reader, declared, &user_settings, &url_user);

    let processes = match map.get("processes") {
        None => 1,
        Some(node) => {
            let n = reader.integer(node, &map.field("processes"), 1, 64)?;
            u32::try_from(n).unwrap_or(1)
        }
    };

    let userlist_span = map.get("userlist").map_or(map.span, |n| n.span);
    let userlist = match map.get("userlist") {
        None => UserlistFormat::Scram,
        Some(node) => match reader
            .choice(node, &map.field("userlist"), &["scram", "md5", "plain"])?
            .as_str()
        {
            "md5" => UserlistFormat::Md5,
            "plain" => UserlistFormat::Plain,
            _ => UserlistFormat::Scram,
        },
    };
    if userlist == UserlistFormat::Plain {
        // The password itself goes into userlist.txt: it must be a field
        // PgBouncer reads back (a verifier or md5 hash always is).
        for user in &users {
            if let Ok(password) = user.password.expose()
                && let Err(problem) = crate::userlist::quote_checked(password)
            {
                let (span, field) = &user.password_at;
                reader
                    .error(
                        *span,
                        field,
                        format!("with `userlist: plain` the password goes into userlist.txt, and {problem}"),
                    )
                    .hint = Some("use a shorter password, or `userlist: scram` (the default), which stores a verifier of fixed length".into());
            }
        }
    }

    let auth_file_setting = user_settings
        .iter()
        .find(|s| s.name == "auth_file")
        .and_then(|s| s.value.as_text().map(str::to_string));
    let config_dir = match map.get("config_dir") {
        Some(node) => {
            let field = map.field("config_dir");
            let dir = reader.string(node, &field)?;
            if let Err((message, hint)) = host_path::check(
                &dir,
                "the files refer to each other by absolute paths under config_dir",
            ) {
                reader.error(node.span, &field, message).hint = Some(hint);
            }
            dir.trim_end_matches('/').to_string()
        }
        None => auth_file_setting
            .as_deref()
            .and_then(|f| Path::new(f).parent())
            .map_or_else(|| "/etc/pgbouncer".to_string(), |p| p.display().to_string()),
    };
    let auth_file = auth_file_setting.unwrap_or_else(|| format!("{config_dir}/userlist.txt"));

    let systemd = decode_systemd(reader, &mut map, facts);
    let kubernetes = kubernetes::decode(reader, &mut map, name, version);
    if kubernetes.is_some() && processes > 1 {
        reader
            .error(
                map.span,
                &format!("targets.{name}.processes"),
                "`processes` and `kubernetes` do not go together",
            )
            .hint =
            Some("in Kubernetes, scale with `kubernetes.replicas` (one PgBouncer per pod)".into());
    }
    map.finish(reader);

    let upstream = upstream?;
    if reader.problems.len() > ok_before {
        return None;
    }

    let mut settings = effective_settings(
        facts,
        version,
        user_settings,
        public_host.as_deref(),
        &auth_file,
    );
    if processes > 1 {
        check_processes(reader, &mut settings, name, facts);
    }
    let listen_addr = settings
        .iter()
        .find(|s| s.name == "listen_addr")
        .and_then(|s| s.value.as_text())
        .unwrap_or("")
        .to_string();
    let public_host = match public_host {
        Some(h) => h,
        None if kubernetes.is_some() => kubernetes
            .as_ref()
            .map(kubernetes::Kubernetes::service_host)
            .unwrap_or_default(),
        None if !listen_addr.is_empty() && !is_wildcard(&listen_addr) => listen_addr.clone(),
        None => {
            reader.error(map_span_or(&settings, "listen_addr"), &format!("targets.{name}.public_host"), "missing `public_host`: PgBouncer listens on all addresses, so poolwright cannot tell which host apps should use")
                .hint = Some("add `public_host: <the host name apps connect to>`".into());
            return None;
        }
    };

    let mut target = Target {
        name: name.to_string(),
        facts,
        version,
        upstream,
        public_host,
        databases,
        users,
        url_user,
        url_database,
        processes,
        config_dir,
        auth_file,
        userlist,
        userlist_span,
        systemd,
        kubernetes,
        settings,
    };
    sizing::apply_default(&mut target);
    check_auth(reader, &target, name);
    budget::check(
        reader,
        &target,
        &format!("targets.{name}.upstream.max_connections"),
    );
    (reader.problems.len() == ok_before).then_some(target)
}

fn map_span_or(settings: &[Setting], name: &str) -> Span {
    settings
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.span)
        .unwrap_or_default()
}

/// The user's `[pgbouncer]` keys plus poolwright's defaults, in manifest order.
fn effective_settings(
    facts: &PgBouncerFacts,
    version: Version,
    mut settings: Vec<Setting>,
    public_host: Option<&str>,
    auth_file: &str,
) -> Vec<Setting> {
    let has = |settings: &[Setting], name: &str| settings.iter().any(|s| s.name == name);
    let add = |settings: &mut Vec<Setting>, name: &str, value: SettingValue| {
        if !has(settings, name) {
            settings.push(Setting {
                name: name.to_string(),
                value,
                span: None,
            });
        }
    };
    // Listen where apps can reach us: everywhere when they connect by a
    // non-local name, else only on loopback (nothing exposed by surprise).
    let listen_addr = match public_host {
        Some(h) if !is_loopback(h) => "*",
        _ => "127.0.0.1",
    };
    add(
        &mut settings,
        "listen_addr",
        SettingValue::Text(listen_addr.into()),
    );
    add(
        &mut settings,
        "auth_file",
        SettingValue::Text(auth_file.into()),
    );
    for (name, text) in DEFAULTS {
        let spec = facts.setting(name).expect("defaults name known settings");
        let value = match spec.kind {
            crate::providers::manifest::SettingType::Int => {
                SettingValue::Int(text.parse().expect("numeric default"))
            }
            crate::providers::manifest::SettingType::List => {
                SettingValue::List(vec![(*text).to_string()])
            }
            _ => SettingValue::Text((*text).to_string()),
        };
        add(&mut settings, name, value);
    }
    // From 1.21 PgBouncer can track protocol-level prepared statements in
    // transaction mode, so drivers keep their defaults (no pgbouncer=true,
    // no statement_cache_size=0). 1.21 to 1.23 ship it off (0); 1.24's
    // default is 200: say it explicitly for every version that has it.
    let pooled_per_transaction = settings.iter().any(|s| {
        s.name == "pool_mode" && matches!(s.value.as_text(), Some("transaction" | "statement"))
    });
    if pooled_per_transaction && version >= PREPARED_STATEMENTS_SINCE {
        add(
            &mut settings,
            "max_prepared_statements",
            SettingValue::Int(DEFAULT_MAX_PREPARED_STATEMENTS),
        );
    }
    settings.sort_by_key(|s| facts.settings.iter().position(|spec| spec.name == s.name));
    settings
}

fn decode_upstream(reader: &mut Reader<'_>, map: &mut MapView<'_>) -> Option<Upstream> {
    let field = map.field("upstream");
    let node = map.require("upstream", reader)?;
    let mut up = reader.map(node, &field)?;
    let host = up
        .require("host", reader)
        .and_then(|n| reader.string(n, &up.field("host")));
    let port = match up.get("port") {
        Some(n) => reader
            .integer(n, &up.field("port"), 1, 65535)
            .map(|p| p as u16),
        None => Some(5432),
    };
    let max_connections_node = up.get("max_connections");
    let max_connections = max_connections_node.and_then(|n| {
        reader
            .integer(n, &up.field("max_connections"), 1, 262_143)
            .map(|n| n as u32)
    });
    let superuser_reserved_connections = match up.get("superuser_reserved_connections") {
        Some(n) => reader
            .integer(n, &up.field("superuser_reserved_connections"), 0, 262_143)
            .map(|n| n as u32),
        None => Some(3),
    };
    let cores = up.get("cores").and_then(|n| {
        reader
            .integer(n, &up.field("cores"), 1, 4096)
            .map(|n| n as u32)
    });
    let reserved_connections = match up.get("reserved_connections") {
        Some(n) => reader
            .integer(n, &up.field("reserved_connections"), 0, 262_143)
            .map(|n| n as u32),
        None => Some(0),
    };
    let direct_connections = up.get("direct_connections").and_then(|n| {
        let field = up.field("direct_connections");
        let direct = reader.integer(n, &field, 0, 262_143)? as u32;
        let reserved = superuser_reserved_connections.unwrap_or(0) + reserved_connections.unwrap_or(0);
        if let Some(max) = max_connections
            && direct >= max.saturating_sub(reserved)
        {
            reader.error(
                n.span,
                &field,
                format!(
                    "direct_connections {direct} leaves no server slot for the pools: max_connections {max} - {reserved} reserved for superusers and reserved_connections = {}",
                    max.saturating_sub(reserved)
                ),
            ).hint = Some("keep a few slots for migrations, cron jobs and psql, e.g. `direct_connections: 5`, or raise max_connections on the server".into());
        }
        Some(direct)
    });
    up.finish(reader);
    let host = host?;
    if host.is_empty() {
        reader.error(
            node.span,
            &format!("{field}.host"),
            "the upstream host is empty",
        );
        return None;
    }
    Some(Upstream {
        host,
        port: port?,
        max_connections,
        max_connections_span: max_connections_node.map(|n| n.span),
        cores,
        superuser_reserved_connections: superuser_reserved_connections?,
        reserved_connections: reserved_connections?,
        direct_connections,
    })
}

/// The entries of `databases:` or `users:` (required, not empty) whose
/// names PgBouncer can carry, each with its field path.
fn named_entries<'n>(
    reader: &mut Reader<'_>,
    map: &mut MapView<'n>,
    key: &'static str,
    what: &str,
    version: Version,
    facts: &PgBouncerFacts,
) -> Vec<(&'n Key, &'n Node, String)> {
    let field = map.field(key);
    let Some(node) = map.require(key, reader) else {
        return Vec::new();
    };
    let Some(section) = reader.map(node, &field) else {
        return Vec::new();
    };
    if section.entries().is_empty() {
        reader.error(
            node.span,
            &field,
            format!("no {key}: list at least one under `{key}:`"),
        );
    }
    let mut out = Vec::new();
    for (name, value) in section.entries() {
        let entry_field = format!("{field}.{}", name.name);
        match names::check(&name.name, what, version, facts.quoted_keys_since) {
            Ok(()) => out.push((name, value, entry_field)),
            Err(e) => {
                reader.error(name.span, &entry_field, e);
            }
        }
    }
    out
}

fn decode_databases(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    facts: &PgBouncerFacts,
    version: Version,
    upstream_host: &str,
    upstream_port: u16,
) -> Vec<Database> {
    let mut out = Vec::new();
    for (key, value, entry_field) in
        named_entries(reader, map, "databases", "database", version, facts)
    {
        let Some(entry) = reader.map(value, &entry_field) else {
            continue;
        };
        let mut settings = decode_section(
            reader,
            &facts.database_keys,
            entry.entries(),
            &entry_field,
            version,
            &[],
            "database key",
        );
        let mut take = |name: &str| -> Option<SettingValue> {
            let i = settings.iter().position(|s| s.name == name)?;
            Some(settings.remove(i).value)
        };
        let dbname = take("dbname")
            .and_then(|v| v.as_text().map(str::to_string))
            .unwrap_or_else(|| key.name.clone());
        let host = take("host")
            .and_then(|v| v.as_text().map(str::to_string))
            .unwrap_or_else(|| upstream_host.to_string());
        let port = take("port")
            .and_then(|v| v.as_int())
            .map_or(upstream_port, |p| p as u16);
        out.push(Database {
            name: key.name.clone(),
            dbname,
            host,
            port,
            settings,
        });
    }
    out
}

/// A user's `console_only:` as written: the value, where, and its field.
type ExplicitConsoleOnly = (bool, Span, String);

/// The users named in `admin_users` or `stats_users` of `settings`.
fn console_names(settings: &[Setting]) -> Vec<&str> {
    settings
        .iter()
        .filter(|s| s.name == "admin_users" || s.name == "stats_users")
        .filter_map(|s| match &s.value {
            SettingValue::List(items) => Some(items.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Decides which users are console-only. The obvious form just works: a
/// user named in `admin_users` or `stats_users`, that DATABASE_URL does not
/// use, with no `[users]` pool settings and not PgBouncer's `auth_user`, is
/// console-only. `console_only: false` gives such a user a pool anyway;
/// `console_only: true` where the user needs a pool is an error.
fn resolve_console_only(
    reader: &mut Reader<'_>,
    users: Vec<(User, Option<ExplicitConsoleOnly>)>,
    settings: &[Setting],
    url_user: &str,
) -> Vec<User> {
    let on_console = console_names(settings);
    let auth_user = settings
        .iter()
        .find(|s| s.name == "auth_user")
        .and_then(|s| s.value.as_text());
    let mut out = Vec::with_capacity(users.len());
    for (mut user, explicit) in users {
        let listed = on_console.contains(&user.name.as_str());
        // Why the user needs a pool (or a server login), if it does.
        let needs_pool = if user.name == url_user {
            Some("DATABASE_URL logs in as it, through a pool".to_string())
        } else if auth_user == Some(user.name.as_str()) {
            Some(
                "it is PgBouncer's auth_user, which logs in to PostgreSQL to look up passwords"
                    .to_string(),
            )
        } else {
            user.settings
                .first()
                .map(|s| format!("it has the pool setting `{}`", s.name))
        };
        user.console_only = match explicit {
            Some((false, _, _)) => false,
            Some((true, span, field)) => {
                let problem = match (&needs_pool, listed) {
                    (Some(why), _) => {
                        Some(format!("`{}` cannot be console-only: {why}", user.name))
                    }
                    (None, false) => Some(format!(
                        "`{}` is console-only but in neither admin_users nor stats_users, so it could log in nowhere",
                        user.name
                    )),
                    (None, true) => None,
                };
                if let Some(problem) = problem {
                    reader.error(span, &field, problem).hint = Some(
                        "console_only: true is for users that only read PgBouncer's admin console (listed in pgbouncer.admin_users or stats_users)"
                            .into(),
                    );
                }
                true
            }
            None => listed && needs_pool.is_none(),
        };
        out.push(user);
    }
    out
}

fn decode_users(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    facts: &PgBouncerFacts,
    version: Version,
) -> Vec<(User, Option<ExplicitConsoleOnly>)> {
    let mut out = Vec::new();
    for (key, value, entry_field) in named_entries(reader, map, "users", "user", version, facts) {
        let Some(mut entry) = reader.map(value, &entry_field) else {
            continue;
        };
        let password_node = entry.require("password", reader);
        let password_field = format!("{entry_field}.password");
        let password_span = password_node.map_or(value.span, |n| n.span);
        let password = password_node.and_then(|n| reader.secret(n, &password_field));
        let console_only = entry.get("console_only").and_then(|n| {
            let field = format!("{entry_field}.console_only");
            reader.boolean(n, &field).map(|b| (b, n.span, field))
        });
        let settings = decode_section(
            reader,
            &facts.user_keys,
            entry.entries(),
            &entry_field,
            version,
            &["password", "console_only"],
            "user key",
        );
        if let Some(password) = password {
            out.push((
                User {
                    name: key.name.clone(),
                    password,
                    password_at: (password_span, password_field),
                    settings,
                    console_only: false,
                },
                console_only,
            ));
        }
    }
    out
}

fn decode_url_choice(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    databases: &[Database],
    users: &[User],
) -> (String, String) {
    let mut user = users.first().map(|u| u.name.clone()).unwrap_or_default();
    let mut database = databases
        .first()
        .map(|d| d.name.clone())
        .unwrap_or_default();
    let field = map.field("url");
    let Some(node) = map.get("url") else {
        return (user, database);
    };
    let Some(mut url) = reader.map(node, &field) else {
        return (user, database);
    };
    for (key, slot, known) in [
        (
            "user",
            &mut user,
            users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ),
        (
            "database",
            &mut database,
            databases.iter().map(|d| d.name.as_str()).collect(),
        ),
    ] {
        let Some(n) = url.get(key) else { continue };
        let Some(value) = reader.string(n, &url.field(key)) else {
            continue;
        };
        if !known.contains(&value.as_str()) {
            let what = if key == "user" { "users" } else { "databases" };
            let d = reader.error(
                n.span,
                &url.field(key),
                format!("`{value}` is not one of this target's {what}"),
            );
            d.hint = Some(match did_you_mean(&value, known.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!(
                    "add it under `{what}:` or choose one of: {}",
                    known.join(", ")
                ),
            });
        }
        *slot = value;
    }
    url.finish(reader);
    (user, database)
}

fn decode_systemd(
    reader: &mut Reader<'_>,
    map: &mut MapView<'_>,
    facts: &PgBouncerFacts,
) -> Systemd {
    let mut systemd = Systemd {
        user: facts.service_user.clone(),
        group: String::new(),
        binary: facts.binary.clone(),
        limit_nofile: None,
        unit_dir: "/etc/systemd/system".into(),
    };
    let field = map.field("systemd");
    if let Some(node) = map.get("systemd")
        && let Some(mut s) = reader.map(node, &field)
    {
        if let Some(v) = s
            .get("user")
            .and_then(|n| reader.string(n, &s.field("user")))
        {
            systemd.user = v;
        }
        if let Some(v) = s
            .get("group")
            .and_then(|n| reader.string(n, &s.field("group")))
        {
            systemd.group = v;
        }
        if let Some(n) = s.get("binary")
            && let Some(v) = reader.string(n, &s.field("binary"))
        {
            if let Err((message, hint)) = host_path::check(
                &v,
                "systemd needs the full path of the pgbouncer binary, e.g. /usr/sbin/pgbouncer",
            )
            .and_then(|()| one_binary_path(&v))
            {
                reader.error(n.span, &s.field("binary"), message).hint = Some(hint);
            }
            systemd.binary = v;
        }
        if let Some(n) = s.get("limit_nofile") {
            systemd.limit_nofile = reader
                .integer(n, &s.field("limit_nofile"), 64, 1 << 30)
                .map(|n| n as u64);
        }
        if let Some(n) = s.get("unit_dir")
            && let Some(v) = reader.string(n, &s.field("unit_dir"))
        {
            // apply writes the unit here: a relative path would land
            // wherever the command runs.
            if let Err((message, hint)) = host_path::check(
                &v,
                "apply writes the unit file there; systemd reads units from /etc/systemd/system",
            ) {
                reader.error(n.span, &s.field("unit_dir"), message).hint = Some(hint);
            }
            systemd.unit_dir = v.trim_end_matches('/').to_string();
        }
        s.finish(reader);
    }
    for (what, value) in [("user", &systemd.user), ("group", &systemd.group)] {
        let valid = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            let span = map.span;
            reader.error(
                span,
                &format!("{field}.{what}"),
                format!("`{value}` is not a valid Unix {what} name"),
            );
        }
    }
    if systemd.group.is_empty() {
        systemd.group = systemd.user.clone();
    }
    systemd
}

/// Why `systemd.binary` is not exactly one path: `(message, hint)`. It is
/// ExecStart='s executable, and poolwright writes the arguments; a space
/// would have split it into a binary and a flag (`/usr/sbin/pgbouncer -R`).
/// systemd refuses an executable path with quotes, backslashes or control
/// characters however they are escaped ("Executable name contains special
/// characters"), and runs it without substituting `$` (the unit could not
/// say `$` there and mean it in every systemd version). What is left needs
/// only `%` escaped.
fn one_binary_path(path: &str) -> Result<(), (String, String)> {
    // Control characters shown escaped, the rest as written.
    let shown: String = path
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let (problem, hint) = if path.chars().any(char::is_whitespace) {
        (
            if path.contains(' ') {
                "holds a space"
            } else {
                "holds whitespace"
            },
            "`binary` is the path of the pgbouncer executable alone, e.g. /usr/sbin/pgbouncer: poolwright writes its arguments, and PgBouncer's settings go under `pgbouncer:`; for a binary whose path has spaces, link it from a path without them",
        )
    } else if path.chars().any(char::is_control) {
        (
            "holds a control character",
            "write the plain path of the pgbouncer executable",
        )
    } else if path.contains(['"', '\'', '\\']) {
        (
            "holds a quote or a backslash",
            "systemd refuses an executable path with quotes or backslashes, escaped or not; write the plain path of the pgbouncer executable",
        )
    } else if path.contains('$') {
        (
            "holds a `$`",
            "systemd does not expand variables in the executable's path; write the path as it is on the host",
        )
    } else {
        return Ok(());
    };
    Err((
        format!("`{shown}` is not one executable path: it {problem}"),
        hint.to_string(),
    ))
}

/// What several processes on one port need: their own Unix sockets (also
/// how peers reach each other), so_reuseport, and peer ids poolwright sets.
fn check_processes(
    reader: &mut Reader<'_>,
    settings: &mut Vec<Setting>,
    name: &str,
    facts: &PgBouncerFacts,
) {
    let field = |key: &str| format!("targets.{name}.pgbouncer.{key}");
    for s in settings.iter() {
        let refused = match (s.name.as_str(), &s.value) {
            ("unix_socket_dir", SettingValue::Text(t)) if t.is_empty() => Some(
                "several processes need Unix sockets: each gets its own directory under unix_socket_dir, \
                 and peers reach each other there",
            ),
            ("so_reuseport", SettingValue::Bool(false)) => {
                Some("several processes share the port only with so_reuseport")
            }
            ("peer_id", _) => Some("with several processes poolwright gives each its own peer_id"),
            _ => None,
        };
        if let Some(why) = refused {
            reader
                .error(s.span.unwrap_or_default(), &field(&s.name), why)
                .hint = Some("remove the setting, or use `processes: 1`".into());
        }
    }
    if !settings.iter().any(|s| s.name == "so_reuseport") {
        settings.push(Setting {
            name: "so_reuseport".into(),
            value: SettingValue::Bool(true),
            span: None,
        });
        settings.sort_by_key(|s| facts.settings.iter().position(|spec| spec.name == s.name));
    }
}

/// Cross-field checks of authentication: formats that cannot work together.
fn check_auth(reader: &mut Reader<'_>, target: &Target, name: &str) {
    let auth_type = target.text_setting("auth_type").unwrap_or("");
    if auth_type == "scram-sha-256" && target.userlist == UserlistFormat::Md5 {
        reader
            .error(target.userlist_span, &format!("targets.{name}.userlist"), "`userlist: md5` cannot work with `auth_type: scram-sha-256`: PgBouncer cannot run SCRAM from an md5 hash")
            .hint = Some("use `userlist: scram` (the default), or `auth_type: md5`".into());
    }
    let uses_userlist = matches!(auth_type, "scram-sha-256" | "md5" | "plain");
    let has_auth_user = target.setting("auth_user").is_some();
    if uses_userlist && !has_auth_user {
        for list in ["admin_users", "stats_users"] {
            let Some(setting) = target.settings.iter().find(|s| s.name == list) else {
                continue;
            };
            let SettingValue::List(items) = &setting.value else {
                continue;
            };
            for item in items {
                if target.user(item).is_none() {
                    reader
                        .error(setting.span.unwrap_or_default(), &format!("targets.{name}.pgbouncer.{list}"), format!("`{item}` is not in this target's users, so it could never log in to the admin console"))
                        .hint = Some(format!("add `{item}: {{ password: \"${{...}}\" }}` under `users:`"));
                }
            }
        }
    }
}
