//! The URL builder: what [`PgUrl::reveal`] writes, libpq reads back as the
//! very parts that went in; [`PgUrl::masked`] never shows the password.

use std::str::FromStr;

use super::input::Fields;
use super::libpq;
use crate::secret::Secret;
use crate::url::{MASK, PgUrl};

/// Fields: user, password, host, port, database, then parameter
/// name/value pairs. An empty user or password field means "none".
pub fn check_url(data: &[u8]) {
    let mut f = Fields::new(data);
    let user = f.text();
    let password = f.text();
    let host = f.text();
    let port_text = f.text();
    // A number when it is one, else some port derived from the bytes, so
    // both the common and the odd ports get tried.
    let port = port_text.parse::<u16>().unwrap_or_else(|_| {
        port_text.bytes().fold(5432u16, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u16::from(b))
        })
    });
    let database = f.text();
    let mut url = PgUrl::new(&host, port, &database);
    if !user.is_empty() {
        let secret = (!password.is_empty()).then(|| Secret::known(password.clone()));
        url = url.with_user(&user, secret);
    }
    while f.more() && url.params.len() < 16 {
        let (key, value) = (f.text(), f.text());
        url = url.with_param(&key, &value);
    }

    if let Some(problem) = url.problem() {
        // A clean refusal is fine; it must say something.
        assert!(!problem.is_empty(), "an empty problem for {url:?}");
        return;
    }
    let expected_password = url.password.as_ref().map(|_| password.as_str());
    check_built(&url, expected_password);
}

/// `url` (which [`PgUrl::problem`] accepts) reads back as its parts, in
/// the URI and JDBC forms, and its masked form hides `password`.
pub fn check_built(url: &PgUrl, password: Option<&str>) {
    check_libpq_form(url, password);
    check_with_tokio_postgres(url, password);
    check_masked(url, password.unwrap_or(""));
    check_jdbc_form(url, password);
}

fn reveal(url: &PgUrl) -> String {
    url.reveal().expect("a known secret always reveals")
}

fn check_libpq_form(url: &PgUrl, password: Option<&str>) {
    let revealed = reveal(url);
    let parsed = libpq::parse(&revealed)
        .unwrap_or_else(|e| panic!("libpq cannot read the URL built from {url:?}: {e}"));
    let port = url.port.to_string();
    assert_eq!(
        parsed.user.as_deref(),
        url.user.as_deref(),
        "user, in {url:?}"
    );
    assert_eq!(parsed.password.as_deref(), password, "password, in {url:?}");
    assert_eq!(
        parsed.host.as_deref(),
        Some(url.host.as_str()),
        "host, in {url:?}"
    );
    assert_eq!(
        parsed.port.as_deref(),
        Some(port.as_str()),
        "port, in {url:?}"
    );
    assert_eq!(
        parsed.dbname.as_deref(),
        Some(url.database.as_str()),
        "database, in {url:?}"
    );
    let params: Vec<(String, String)> = url.params.iter().chain(&url.libpq_only).cloned().collect();
    assert_eq!(parsed.params, params, "parameters, in {url:?}");
}

/// tokio-postgres follows libpq's URI rules too (and rejects parameters it
/// does not know), so it reads the URL without parameters.
fn check_with_tokio_postgres(url: &PgUrl, password: Option<&str>) {
    let mut bare = url.clone();
    bare.params.clear();
    bare.libpq_only.clear();
    let revealed = reveal(&bare);
    let config = tokio_postgres::Config::from_str(&revealed)
        .unwrap_or_else(|e| panic!("tokio-postgres cannot read the URL built from {bare:?}: {e}"));
    assert_eq!(config.get_user(), url.user.as_deref(), "user, in {url:?}");
    assert_eq!(
        config.get_password(),
        password.map(str::as_bytes),
        "password, in {url:?}"
    );
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
        [tokio_postgres::config::Host::Unix(p)] => p.to_string_lossy().into_owned(),
        other => panic!("expected one host, found {other:?}, in {url:?}"),
    };
    assert_eq!(host, url.host, "host, in {url:?}");
    assert_eq!(config.get_ports(), [url.port], "port, in {url:?}");
    assert_eq!(
        config.get_dbname(),
        Some(url.database.as_str()),
        "database, in {url:?}"
    );
}

fn check_masked(url: &PgUrl, password: &str) {
    let masked = url.masked();
    assert_eq!(url.to_string(), masked, "Display is the masked form");
    let parsed = libpq::parse(&masked).unwrap_or_else(|e| panic!("masked URL unreadable: {e}"));
    let want = url.password.as_ref().map(|_| MASK);
    assert_eq!(
        parsed.password.as_deref(),
        want,
        "masked password, in {url:?}"
    );
    // The password itself appears nowhere, unless the other parts happen to
    // spell it (a password "app" with the user "app").
    let mut without = url.clone();
    without.password = None;
    let others = reveal(&without);
    let could_be_elsewhere = password.len() < 4
        || others.contains(password)
        || password.chars().any(|c| matches!(c, ':' | '@' | '*'));
    if url.password.is_some() && !could_be_elsewhere {
        assert!(
            !masked.contains(password),
            "masked URL shows the password: {url:?}"
        );
    }
}

/// JDBC puts user and password among the parameters, first.
fn check_jdbc_form(url: &PgUrl, password: Option<&str>) {
    let mut jdbc = url.clone();
    jdbc.scheme = "jdbc:postgresql".into();
    jdbc.jdbc = true;
    let revealed = reveal(&jdbc);
    let libpq_form = revealed
        .strip_prefix("jdbc:")
        .expect("the jdbc scheme is kept");
    let parsed = libpq::parse(libpq_form)
        .unwrap_or_else(|e| panic!("the JDBC URL built from {url:?} is unreadable: {e}"));
    assert_eq!(parsed.user, None, "JDBC user info, in {url:?}");
    let mut params = Vec::new();
    if let Some(user) = &url.user {
        params.push(("user".to_string(), user.clone()));
        if let Some(pw) = password {
            params.push(("password".to_string(), pw.to_string()));
        }
    }
    params.extend(url.params.iter().chain(&url.libpq_only).cloned());
    assert_eq!(parsed.params, params, "JDBC parameters, in {url:?}");
    assert_eq!(parsed.host.as_deref(), Some(url.host.as_str()), "JDBC host");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::input::encode;

    #[test]
    fn accepts_awkward_but_valid_urls() {
        check_url(&encode(&[
            "us er",
            "p@ss:w/rd#%?&\"x",
            "db.internal",
            "6432",
            "my db",
            "sslmode",
            "require",
        ]));
        check_url(&encode(&["app", "", "::1", "1", "d"]));
    }
}
