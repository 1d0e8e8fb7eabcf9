//! The URL the app really has (`verify --url`, `--url-from FILE`,
//! `--url-from-env VAR`), checked against the target.
//!
//! A target can be perfect and the app still unpooled: its `.env` or its
//! platform's secret may hold an old direct URL, another host, or a URL
//! without the flags its driver needs behind transaction pooling. verify
//! reads that URL, says where it leads (the pooler, the server directly, or
//! elsewhere) and which driver flags are missing, and then runs every other
//! check through it, so the login proves the app's own credentials and host.

use percent_encoding::percent_decode_str;

use super::Check;
use crate::drivers::{Driver, PoolerTraits};
use crate::secret::Secret;
use crate::url::PgUrl;

/// Where the app's URL was read, for messages ("--url", "DATABASE_URL in
/// .env", "$DATABASE_URL").
#[derive(Debug, Clone)]
pub struct AppUrl {
    pub url: PgUrl,
    pub from: String,
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Reads a PostgreSQL URL as the app's driver would: `postgres://`,
/// `postgresql://`, SQLAlchemy's `postgresql+DRIVER://`, JDBC's
/// `jdbc:postgresql://` (user and password among the parameters). The
/// error says what is wrong without repeating the text (it may hold a
/// password).
pub fn parse(text: &str) -> Result<PgUrl, String> {
    let text = text.trim();
    let (jdbc, rest) = match text.strip_prefix("jdbc:") {
        Some(r) => (true, r),
        None => (false, text),
    };
    let Some((scheme, _)) = rest.split_once("://") else {
        return Err("is not a URL (no `scheme://`)".into());
    };
    let base = scheme.split('+').next().unwrap_or(scheme);
    if !matches!(base, "postgres" | "postgresql") {
        return Err(format!(
            "is not a PostgreSQL URL (its scheme is `{}`)",
            crate::diagnostic::printable(scheme)
        ));
    }
    let parsed = ::url::Url::parse(rest).map_err(|e| {
        if rest.split('?').next().is_some_and(|a| a.contains(',')) {
            "names several hosts; verify checks one: give it a URL with one host".to_string()
        } else {
            format!("cannot be read as a URL: {e}")
        }
    })?;
    let params: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let host = match parsed.host_str().map(decode).filter(|h| !h.is_empty()) {
        Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => param("host").ok_or("names no host")?,
    };
    let user = Some(decode(parsed.username()))
        .filter(|u| !u.is_empty())
        .or_else(|| param("user"));
    let password = parsed.password().map(decode).or_else(|| param("password"));
    let database = decode(parsed.path().trim_start_matches('/'));
    let mut url = PgUrl::new(
        &host,
        parsed
            .port()
            .or_else(|| param("port").and_then(|p| p.parse().ok()))
            .unwrap_or(5432),
        &database,
    );
    url.scheme = scheme.to_string();
    url.jdbc = jdbc;
    url.user = user;
    url.password = password.map(Secret::known);
    url.params = params
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "user" | "password" | "host" | "port"))
        .collect();
    Ok(url)
}

fn same_place(a: &PgUrl, b: &PgUrl) -> bool {
    a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
}

/// Where the app's URL leads and what it lacks, against the target's
/// pooled and direct URLs and the app's driver.
pub fn check(
    app: &AppUrl,
    pooled: &PgUrl,
    direct: &PgUrl,
    driver: Option<&Driver>,
    traits: &PoolerTraits,
    target: &str,
) -> Check {
    const NAME: &str = "app url";
    let fix_url = match driver {
        Some(d) => format!("poolwright url {target} --driver {}", d.name),
        None => format!("poolwright url {target}"),
    };
    let from = &app.from;
    let url = &app.url;
    let masked = url.masked();
    if same_place(url, direct) && !same_place(url, pooled) {
        return Check::fail(
            NAME,
            format!(
                "{from} ({masked}) goes to PostgreSQL at {} directly, not through the pooler at {}: every call of the app opens a server connection of its own",
                url.place(),
                pooled.place()
            ),
            format!(
                "set it to the pooled URL: `{fix_url}` prints it (`poolwright env {target}` writes it into .env, `poolwright secrets {target} --to ...` into the platform's store); keep the direct URL for migrations only"
            ),
        );
    }
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if !same_place(url, pooled) {
        notes.push(format!(
            "it goes to {}, which is neither the pooler ({}) nor the server ({}): the checks below show whether it pools",
            url.place(),
            pooled.place(),
            direct.place()
        ));
    }
    if url.user.is_some() && url.user != pooled.user {
        problems.push(format!(
            "its user is `{}`, the target's URL has `{}`",
            url.user.as_deref().unwrap_or_default(),
            pooled.user.as_deref().unwrap_or_default()
        ));
    }
    if url.database != pooled.database {
        notes.push(format!(
            "its database is `{}`, the target's URL has `{}`",
            url.database, pooled.database
        ));
    }
    let has = |key: &str, value: &str| {
        url.params
            .iter()
            .any(|(k, v)| k == key && v.eq_ignore_ascii_case(value))
    };
    if let Some(d) = driver {
        let missing: Vec<String> = d
            .params_for(traits)
            .into_iter()
            .filter(|(k, v)| !has(k, v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "it lacks {} that {} needs behind this pooler",
                missing.join(", "),
                d.name
            ));
        }
    }
    let tls_keys = ["sslmode", "ssl"];
    let pooled_tls = pooled
        .params
        .iter()
        .find(|(k, _)| tls_keys.contains(&k.as_str()))
        .cloned();
    if let Some((k, v)) = pooled_tls
        && !url
            .params
            .iter()
            .any(|(key, _)| tls_keys.contains(&key.as_str()))
    {
        notes.push(format!(
            "it has no {k}= where the target's URL asks {k}={v}: the app may talk in clear"
        ));
    }
    if url.password.is_none() {
        notes.push("it holds no password: verify logs in with the target's".into());
    }
    let mut detail = format!("{from} ({masked})");
    if problems.is_empty() {
        detail.push_str(&format!(" goes through the pooler at {}", url.place()));
    }
    for p in problems.iter().chain(&notes) {
        detail.push_str("; ");
        detail.push_str(p);
    }
    if !problems.is_empty() {
        return Check::fail(NAME, detail, format!("set it to what `{fix_url}` prints"));
    }
    if notes.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::warn(NAME, detail, Some(format!("compare it with `{fix_url}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    fn app(text: &str) -> AppUrl {
        AppUrl {
            url: parse(text).unwrap(),
            from: "DATABASE_URL in .env".into(),
        }
    }

    fn pooled() -> PgUrl {
        PgUrl::new("db.example", 6432, "app")
            .with_user("app", Some(Secret::known("pw")))
            .with_param("sslmode", "require")
    }

    fn direct() -> PgUrl {
        PgUrl::new("db.example", 5432, "app").with_user("app", Some(Secret::known("pw")))
    }

    #[test]
    fn reads_what_drivers_write() {
        let u =
            parse("postgresql+asyncpg://app:p%40ss%2Fw@[::1]:6432/my%20db?statement_cache_size=0")
                .unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 6432);
        assert_eq!(u.database, "my db");
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.password.unwrap().expose().unwrap(), "p@ss/w");
        assert_eq!(u.params, vec![("statement_cache_size".into(), "0".into())]);
        let j = parse("jdbc:postgresql://h/db?user=app&password=x&prepareThreshold=0").unwrap();
        assert!(j.jdbc);
        assert_eq!(j.user.as_deref(), Some("app"));
        assert_eq!(j.params, vec![("prepareThreshold".into(), "0".into())]);
        assert_eq!(
            parse("postgresql:///db?host=/run/pg").unwrap().host,
            "/run/pg"
        );
        let e = parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(
            parse("postgresql://u:secret@h1:5432,h2:5432/db")
                .unwrap_err()
                .contains("several hosts")
        );
    }

    #[test]
    fn a_direct_url_fails_a_pooled_one_passes() {
        let traits = PoolerTraits::direct();
        let c = check(
            &app("postgresql://app:pw@db.example:5432/app"),
            &pooled(),
            &direct(),
            None,
            &traits,
            "prod",
        );
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail
                .contains("goes to PostgreSQL at db.example:5432 directly"),
            "{}",
            c.detail
        );
        assert!(!c.detail.contains(":pw@"), "{}", c.detail);
        let c = check(
            &app("postgresql://app:pw@db.example:6432/app?sslmode=require"),
            &pooled(),
            &direct(),
            None,
            &traits,
            "prod",
        );
        assert_eq!(c.status, Status::Pass, "{}", c.detail);
        let c = check(
            &app("postgresql://app:pw@db.example:6432/app"),
            &pooled(),
            &direct(),
            None,
            &traits,
            "prod",
        );
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("no sslmode="), "{}", c.detail);
    }

    #[test]
    fn missing_driver_flags_fail() {
        let asyncpg = crate::drivers::find("asyncpg").unwrap();
        let transaction = PoolerTraits {
            name: "PgBouncer 1.18, transaction mode".into(),
            transaction_pooling: true,
            prepared_statements: false,
        };
        if asyncpg.params_for(&transaction).is_empty() {
            return; // the table changed: nothing to check here
        }
        let c = check(
            &app("postgresql://app:pw@db.example:6432/app?sslmode=require"),
            &pooled(),
            &direct(),
            Some(asyncpg),
            &transaction,
            "prod",
        );
        assert_eq!(c.status, Status::Fail, "{}", c.detail);
        assert!(c.detail.contains("that asyncpg needs"), "{}", c.detail);
        assert!(c.fix.unwrap().contains("--driver asyncpg"));
    }
}
