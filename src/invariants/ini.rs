//! pgbouncer.ini: a config built from arbitrary names, hosts and values,
//! once validation accepts it, renders to an ini that PgBouncer's reader
//! gives back as exactly the databases, users and settings of the target,
//! with nothing injected (no extra line, section or key).

pub use crate::providers::pgbouncer::ini_reader::{IniEntry, parse_connstr, parse_ini};

use super::input::Fields;
use super::userlist::{assert_reads_back, assert_reads_back_with, templates};
use crate::providers::pgbouncer::{Target, UserlistFormat, render};
use crate::scram::{self, SALT_LEN};

const VERSIONS: [&str; 4] = ["1.18", "1.21", "1.24", "1.25"];

/// A YAML double-quoted scalar for `value` (JSON strings are YAML), with
/// `$` doubled so interpolation gives `value` back.
fn yaml_value(value: &str) -> String {
    serde_json::to_string(&value.replace('$', "$$")).expect("strings serialise")
}

/// A YAML key (keys are not interpolated).
fn yaml_key(key: &str) -> String {
    serde_json::to_string(key).expect("strings serialise")
}

/// The config text the fields describe. Fields: version choice, public
/// host, upstream host, number of databases (first byte), then per
/// database name, host, dbname, application_name; server_reset_query;
/// admin_users; then per user (the rest, at most 4) name, password.
pub fn config_text(data: &[u8]) -> String {
    let mut f = Fields::new(data);
    let version = VERSIONS[usize::from(f.byte()) % VERSIONS.len()];
    let public_host = f.text();
    let upstream_host = f.text();
    let databases = usize::from(f.byte() % 4) + 1;
    let mut yaml = format!(
        "version: 1\ntargets:\n  t:\n    provider: pgbouncer\n    version: \"{version}\"\n    userlist: plain\n    public_host: {}\n    upstream: {{ host: {}, max_connections: 10000 }}\n    databases:\n",
        yaml_value(&public_host),
        yaml_value(&upstream_host)
    );
    for _ in 0..databases {
        let (name, host, dbname, app) = (f.text(), f.text(), f.text(), f.text());
        yaml.push_str(&format!(
            "      {}: {{ host: {}, dbname: {}, application_name: {} }}\n",
            yaml_key(&name),
            yaml_value(&host),
            yaml_value(&dbname),
            yaml_value(&app)
        ));
    }
    let reset_query = f.text();
    let admin_users = f.text();
    yaml.push_str("    users:\n");
    let mut users = 0;
    while users < 4 && (users == 0 || f.more()) {
        let (name, password) = (f.text(), f.text());
        yaml.push_str(&format!(
            "      {}: {{ password: {}, pool_mode: session }}\n",
            yaml_key(&name),
            yaml_value(&password)
        ));
        users += 1;
    }
    yaml.push_str(&format!(
        "    pgbouncer:\n      listen_port: 6432\n      server_reset_query: {}\n      admin_users: {}\n",
        yaml_value(&reset_query),
        yaml_value(&admin_users)
    ));
    yaml
}

/// Renders whatever config validation accepts and reads it back.
pub fn check_pgbouncer_ini(data: &[u8]) {
    let text = config_text(data);
    let Ok(config) = crate::config::parse(std::path::Path::new("poolwright.yaml"), text, &|_| None)
    else {
        return; // refused by validation: the config check covers the message
    };
    for t in &config.targets {
        let target = t.provider.pgbouncer().expect("a pgbouncer target");
        check_target(target);
    }
}

/// The rendered pgbouncer.ini and userlist.txt of `target` read back as it.
pub fn check_target(target: &Target) {
    let files = render::render(target, templates(), "poolwright.yaml", None, &mut || {
        [7; SALT_LEN]
    })
    .unwrap_or_else(|e| panic!("a valid config does not render: {e}"));
    let file = |name: &str| {
        let f = files
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name} rendered"));
        String::from_utf8(f.bytes.clone()).expect("rendered text is UTF-8")
    };
    // The URL apps get: validation let nothing in that it cannot carry.
    let url = target.pooled_url();
    if let Some(problem) = url.problem() {
        panic!("the config accepted a pooled URL libpq cannot read: {problem}");
    }
    if let Some(Ok(password)) = url.password.as_ref().map(|p| p.expose()) {
        super::url::check_built(&url, Some(password));
    }
    let ini = file("pgbouncer.ini");
    let quoted_keys = target.version >= target.facts.quoted_keys_since;
    let entries = parse_ini(&ini, quoted_keys)
        .unwrap_or_else(|e| panic!("PgBouncer cannot read the rendered ini: {e}\n{ini}"));

    let mut expected = Vec::new();
    for db in &target.databases {
        let mut pairs = vec![
            ("host".to_string(), db.host.clone()),
            ("port".to_string(), db.port.to_string()),
            ("dbname".to_string(), db.dbname.clone()),
        ];
        pairs.extend(
            db.settings
                .iter()
                .map(|s| (s.name.clone(), s.value.ini_text())),
        );
        expected.push(("databases", db.name.clone(), pairs));
    }
    for user in target.users.iter().filter(|u| !u.settings.is_empty()) {
        let pairs = user
            .settings
            .iter()
            .map(|s| (s.name.clone(), s.value.ini_text()))
            .collect();
        expected.push(("users", user.name.clone(), pairs));
    }
    let connstr_entries: Vec<&IniEntry> = entries
        .iter()
        .filter(|e| e.section == "databases" || e.section == "users")
        .collect();
    assert_eq!(
        connstr_entries.len(),
        expected.len(),
        "[databases]/[users] lines in\n{ini}"
    );
    for (entry, (section, key, pairs)) in connstr_entries.iter().zip(&expected) {
        assert_eq!(entry.section, *section, "section of `{key}`");
        assert_eq!(&entry.key, key, "key in [{section}]");
        let read = parse_connstr(&entry.value)
            .unwrap_or_else(|e| panic!("[{section}] {key}: PgBouncer cannot read the value: {e}"));
        assert_eq!(&read, pairs, "[{section}] {key}");
    }
    let settings: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.section == "pgbouncer")
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    let want: Vec<(String, String)> = target
        .settings
        .iter()
        .map(|s| (s.name.clone(), s.value.ini_text()))
        .collect();
    assert_eq!(settings, want, "[pgbouncer] in\n{ini}");
    assert!(
        entries
            .iter()
            .all(|e| matches!(e.section.as_str(), "databases" | "users" | "pgbouncer")),
        "an unexpected section in\n{ini}"
    );

    let users: Vec<(String, String)> = target
        .users
        .iter()
        .map(|u| {
            let pw = u
                .password
                .expose()
                .expect("the fuzz config has no unset variables");
            (u.name.clone(), pw.to_string())
        })
        .collect();
    let same_secret = |written: &str, password: &str| match target.userlist {
        UserlistFormat::Plain => written == password,
        UserlistFormat::Md5 => false, // replaced below: needs the user name
        UserlistFormat::Scram => scram::matches(written, password),
    };
    if target.userlist == UserlistFormat::Md5 {
        let hashed: Vec<(String, String)> = users
            .iter()
            .map(|(u, pw)| (u.clone(), scram::md5_secret(u, pw)))
            .collect();
        assert_reads_back(&file("userlist.txt"), &hashed);
    } else {
        assert_reads_back_with(&file("userlist.txt"), &users, &same_secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::input::encode;

    #[test]
    fn reads_ini_like_pgbouncer() {
        let entries = parse_ini(
            "; c\n# c\n[databases]\n'my db' = host='a b' port=5\n[pgbouncer]\nx = 1 ; not a comment  \n",
            true,
        )
        .unwrap();
        assert_eq!(entries[0].key, "my db");
        assert_eq!(entries[1].value, "1 ; not a comment");
        assert!(parse_ini("'my db' = x\n", true).is_err(), "no section");
        assert!(
            parse_ini("[d]\n'my db' = x\n", false).is_err(),
            "1.18 has no quoted keys"
        );
        assert_eq!(
            parse_connstr("host='a b' port=5 x='it''s'").unwrap(),
            vec![
                ("host".into(), "a b".into()),
                ("port".into(), "5".into()),
                ("x".into(), "it's".into())
            ]
        );
        assert!(parse_connstr("host=").is_err());
    }

    #[test]
    fn a_plain_config_is_accepted_and_checked() {
        let data = encode(&[
            "\u{0}",
            "pgb.internal",
            "db.internal",
            "\u{1}",
            "app_db",
            "db 2",
            "real'db",
            "my app ; x",
            "main",
            "h",
            "d",
            "a",
            "DISCARD ALL",
            "app",
            "app",
            "pw \"x\" '",
            "admin",
            "s3cret",
        ]);
        let text = config_text(&data);
        let config = crate::config::parse(std::path::Path::new("p.yaml"), text.clone(), &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.targets.len(), 1);
        check_pgbouncer_ini(&data);
    }
}
