//! The per-version settings table (providers/pgbouncer.toml) checked
//! against the real binaries: for each PgBouncer under test, a config that
//! uses every key poolwright knows for that version is rendered, and that
//! PgBouncer must start on it. PgBouncer aborts on a key it does not know,
//! so a key listed for a version that lacks it fails here.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use poolwright::providers::manifest::{self, SettingSpec};
use poolwright::providers::pgbouncer::version::Version;

use crate::support::servers::*;

/// A value for every key, valid enough for PgBouncer to start. `{d}` is the
/// scratch directory, `{port}` the listen port, `{user}` the service user.
/// A key the manifest gains must get a value here (the test says which).
const SETTINGS: &[(&str, &str)] = &[
    ("listen_addr", "127.0.0.1"),
    ("listen_port", "{port}"),
    ("unix_socket_dir", "{d}/run"),
    ("unix_socket_mode", "\"0777\""),
    ("unix_socket_group", "{group}"),
    ("user", "{user}"),
    ("pidfile", "{d}/run/pgbouncer.pid"),
    ("logfile", "{d}/run/pgbouncer.log"),
    ("so_reuseport", "true"),
    ("peer_id", "0"),
    ("resolv_conf", "/etc/resolv.conf"),
    ("auth_type", "scram-sha-256"),
    ("auth_file", "{d}/etc/userlist.txt"),
    ("auth_hba_file", "{d}/etc/hba.conf"),
    ("auth_ident_file", "{d}/etc/ident.conf"),
    ("auth_user", "app"),
    (
        "auth_query",
        "\"SELECT usename, passwd FROM pg_shadow WHERE usename=$1\"",
    ),
    ("auth_dbname", "postgres"),
    (
        "auth_ldap_options",
        "\"host=localhost basedn=dc=example,dc=com\"",
    ),
    ("scram_iterations", "4096"),
    ("pool_mode", "transaction"),
    ("max_client_conn", "100"),
    ("default_pool_size", "5"),
    ("min_pool_size", "0"),
    ("reserve_pool_size", "1"),
    ("reserve_pool_timeout", "3"),
    ("max_db_connections", "10"),
    ("max_db_client_connections", "100"),
    ("max_user_connections", "10"),
    ("max_user_client_connections", "100"),
    ("server_round_robin", "false"),
    ("max_prepared_statements", "100"),
    ("autodb_idle_timeout", "3600"),
    ("ignore_startup_parameters", "[extra_float_digits]"),
    ("track_extra_parameters", "[IntervalStyle]"),
    ("disable_pqexec", "false"),
    ("application_name_add_host", "false"),
    ("server_reset_query", "DISCARD ALL"),
    ("server_reset_query_always", "false"),
    ("server_check_delay", "30"),
    ("server_check_query", "select 1"),
    ("server_fast_close", "false"),
    ("server_lifetime", "3600"),
    ("server_idle_timeout", "600"),
    ("server_connect_timeout", "15"),
    ("server_login_retry", "15"),
    ("client_login_timeout", "60"),
    ("query_timeout", "0"),
    ("query_wait_timeout", "120"),
    ("query_wait_notify", "5"),
    ("cancel_wait_timeout", "10"),
    ("client_idle_timeout", "0"),
    ("idle_transaction_timeout", "0"),
    ("transaction_timeout", "0"),
    ("suspend_timeout", "10"),
    ("dns_max_ttl", "15"),
    ("dns_nxdomain_ttl", "15"),
    ("dns_zone_check_period", "0"),
    ("client_tls_sslmode", "prefer"),
    ("client_tls_key_file", "{d}/etc/tls.key"),
    ("client_tls_cert_file", "{d}/etc/tls.crt"),
    ("client_tls_ca_file", "{d}/etc/tls.crt"),
    ("client_tls_protocols", "secure"),
    ("client_tls_ciphers", "default"),
    ("client_tls13_ciphers", "TLS_AES_256_GCM_SHA384"),
    ("client_tls_ecdhcurve", "auto"),
    ("client_tls_dheparams", "auto"),
    ("server_tls_sslmode", "prefer"),
    ("server_tls_ca_file", "{d}/etc/tls.crt"),
    ("server_tls_key_file", "{d}/etc/tls.key"),
    ("server_tls_cert_file", "{d}/etc/tls.crt"),
    ("server_tls_protocols", "secure"),
    ("server_tls_ciphers", "default"),
    ("server_tls13_ciphers", "TLS_AES_256_GCM_SHA384"),
    ("admin_users", "[app]"),
    ("stats_users", "[app]"),
    ("syslog", "false"),
    ("syslog_ident", "pgbouncer"),
    ("syslog_facility", "daemon"),
    ("log_connections", "true"),
    ("log_disconnections", "true"),
    ("log_pooler_errors", "true"),
    ("log_stats", "true"),
    ("stats_period", "60"),
    ("verbose", "0"),
    ("max_packet_size", "2147483647"),
    ("pkt_buf", "4096"),
    ("listen_backlog", "128"),
    ("sbuf_loopcnt", "5"),
    ("tcp_defer_accept", "1"),
    ("tcp_socket_buffer", "0"),
    ("tcp_keepalive", "true"),
    ("tcp_keepcnt", "0"),
    ("tcp_keepidle", "0"),
    ("tcp_keepintvl", "0"),
    ("tcp_user_timeout", "0"),
];

const DATABASE_KEYS: &[(&str, &str)] = &[
    ("dbname", "qbo_mirror"),
    ("host", "127.0.0.1"),
    ("port", "5432"),
    ("auth_user", "app"),
    ("auth_dbname", "postgres"),
    (
        "auth_query",
        "\"SELECT usename, passwd FROM pg_shadow WHERE usename=$1\"",
    ),
    ("pool_size", "5"),
    ("min_pool_size", "0"),
    ("reserve_pool", "1"),
    ("reserve_pool_size", "1"),
    ("max_db_connections", "10"),
    ("max_db_client_connections", "100"),
    ("server_lifetime", "1800"),
    ("load_balance_hosts", "disable"),
    ("pool_mode", "session"),
    ("connect_query", "\"SET statement_timeout = '5s'\""),
    ("application_name", "poolwright-test"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO"),
    ("timezone", "UTC"),
];

const USER_KEYS: &[(&str, &str)] = &[
    ("pool_mode", "session"),
    ("max_user_connections", "10"),
    ("pool_size", "5"),
    ("reserve_pool_size", "1"),
    ("max_user_client_connections", "100"),
    ("query_timeout", "0"),
    ("idle_transaction_timeout", "0"),
    ("client_idle_timeout", "0"),
    ("transaction_timeout", "0"),
];

/// The keys of `specs` that `version` has, with their test values.
fn values(
    specs: &[SettingSpec],
    table: &[(&str, &str)],
    version: Version,
    what: &str,
) -> BTreeMap<String, String> {
    let given: BTreeMap<&str, &str> = table.iter().copied().collect();
    let missing: Vec<&str> = specs
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !given.contains_key(n))
        .collect();
    assert!(
        missing.is_empty(),
        "no test value for {what} keys {missing:?}: add them to tests/it/version_table.rs"
    );
    specs
        .iter()
        .filter(|s| s.available_in(version))
        .map(|s| (s.name.clone(), given[s.name.as_str()].to_string()))
        .collect()
}

fn inline(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A self-signed certificate and key for the TLS settings.
fn make_tls(dir: &std::path::Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_known_key_starts_the_real_pgbouncer() {
    if !require_servers() {
        return;
    }
    let facts = manifest::find("pgbouncer")
        .and_then(|m| m.pgbouncer.as_ref())
        .expect("pgbouncer manifest");
    for build in pgbouncer_builds() {
        let version: Version = build.version.parse().expect("a version");
        let dir = tempfile::Builder::new()
            .prefix("poolwright-table.")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let d = dir.path().display().to_string();
        for sub in ["etc", "run"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        make_tls(&dir.path().join("etc"));
        fs::write(
            dir.path().join("etc/hba.conf"),
            "host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("hba");
        fs::write(dir.path().join("etc/ident.conf"), "").expect("ident");
        let port = free_port();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let whoami = |flag: &str| {
            let o = Command::new("id").arg(flag).output().expect("id");
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        let (user, group) = if is_root {
            ("postgres".into(), "postgres".into())
        } else {
            (whoami("-un"), whoami("-gn"))
        };
        let fill = |v: &str| {
            v.replace("{d}", &d)
                .replace("{port}", &port.to_string())
                .replace("{user}", &user)
                .replace("{group}", &group)
        };
        let settings = values(&facts.settings, SETTINGS, version, "[pgbouncer]");
        let db = values(&facts.database_keys, DATABASE_KEYS, version, "[databases]");
        let users = values(&facts.user_keys, USER_KEYS, version, "[users]");
        let mut yaml = format!(
            "version: 1\ntargets:\n  all:\n    provider: pgbouncer\n    version: \"{}\"\n    upstream: {{ host: 127.0.0.1 }}\n    config_dir: {d}/etc\n    databases:\n      everything: {{ {} }}\n    users:\n      app: {{ password: secret, {} }}\n    pgbouncer:\n",
            build.version,
            inline(&db),
            inline(&users),
        );
        for (k, v) in &settings {
            yaml.push_str(&format!("      {k}: {}\n", fill(v)));
        }
        fs::write(dir.path().join("poolwright.yaml"), &yaml).expect("write config");
        let etc = dir.path().join("etc");
        let run = crate::support::poolwright(
            dir.path(),
            &["render", "--out", etc.to_str().expect("utf-8")],
            &[],
        );
        assert_eq!(
            run.code, 0,
            "render for {}:\n{}\n{yaml}",
            build.version, run.stderr
        );
        let ini = fs::read_to_string(etc.join("pgbouncer.ini")).expect("pgbouncer.ini");
        for key in settings.keys() {
            assert!(
                ini.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} missing from the ini:\n{ini}"
            );
        }
        // As root PgBouncer runs as postgres: hand it everything it reads.
        fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        hand_to_service_user(dir.path());
        let log = dir.path().join("stderr.log");
        match PgBouncer::start_with(&build.bin, &etc.join("pgbouncer.ini"), port, &log) {
            Ok(bouncer) => {
                let text = bouncer.log()
                    + &fs::read_to_string(dir.path().join("run/pgbouncer.log")).unwrap_or_default();
                assert!(
                    !text.contains("unknown parameter"),
                    "PgBouncer {}:\n{text}",
                    build.version
                );
                eprintln!(
                    "PgBouncer {} started with all {} [pgbouncer] keys, {} database keys and {} user keys poolwright knows for it",
                    build.version,
                    settings.len(),
                    db.len(),
                    users.len()
                );
            }
            Err(e) => panic!(
                "PgBouncer {} refused poolwright's {} table:\n{e}\n{ini}",
                build.version, build.version
            ),
        }
    }
}
