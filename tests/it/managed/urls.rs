//! URLs per provider and pool mode.

#[allow(unused_imports)]
use super::*;

#[test]
fn supabase_urls_carry_the_project_ref_in_the_user_and_the_mode_in_the_port() {
    let dir = golden("supabase");
    let host = "aws-1-eu-central-1.pooler.supabase.com";
    // Transaction mode: 6543; the role `postgres` becomes postgres.<ref>.
    assert_eq!(
        revealed(&dir, &["transaction"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    // The migration URL: session mode on the same pooler (IPv4), 5432.
    assert_eq!(
        revealed(&dir, &["transaction", "--direct"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:5432/postgres?sslmode=require")
    );
    // Session mode: 5432; a custom role gets the suffix too.
    assert_eq!(
        revealed(&dir, &["session"]),
        format!(
            "postgresql://app_rw.zyxwvutsrqponmlkjihg:{ENCODED}@aws-0-us-east-1.pooler.supabase.com:5432/app?sslmode=require"
        )
    );
    // A user already ending in .<ref> is kept, not suffixed twice.
    assert_eq!(
        revealed(&dir, &["suffixed"]),
        format!("postgresql://reporting.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    // pgJDBC takes user and password as parameters; transaction pooling
    // without prepared statements turns server-side prepare off.
    assert_eq!(
        revealed(&dir, &["transaction", "--driver", "jdbc"]),
        format!(
            "jdbc:postgresql://{host}:6543/postgres?user=postgres.{REF}&password={ENCODED}&sslmode=require&prepareThreshold=0"
        )
    );
    assert_eq!(
        revealed(&dir, &["transaction", "--driver", "asyncpg"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    every_url_requires_tls(&dir);
}

#[test]
fn neon_urls_use_the_pooler_host_and_channel_binding_only_for_libpq() {
    let dir = golden("neon");
    let pooled = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech";
    let direct = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
    let tail = "5432/qbo_mirror?sslmode=require";
    assert_eq!(
        revealed(&dir, &["preview"]),
        format!("postgresql://app:{ENCODED}@{pooled}:{tail}&channel_binding=require")
    );
    assert_eq!(
        revealed(&dir, &["preview", "--direct"]),
        format!("postgresql://app:{ENCODED}@{direct}:{tail}&channel_binding=require")
    );
    for driver in ["psycopg", "psycopg2", "django"] {
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver]),
            format!("postgresql://app:{ENCODED}@{pooled}:{tail}&channel_binding=require"),
            "--driver {driver}"
        );
    }
    // Drivers with their own URL parser: no channel_binding (asyncpg would
    // send it to the server as a startup parameter).
    for driver in ["asyncpg", "node-postgres"] {
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver]),
            format!("postgresql://app:{ENCODED}@{pooled}:{tail}"),
            "--driver {driver}"
        );
        assert_eq!(
            revealed(&dir, &["preview", "--driver", driver, "--direct"]),
            format!("postgresql://app:{ENCODED}@{direct}:{tail}"),
            "--driver {driver} --direct"
        );
    }
    // Neon's PgBouncer tracks prepared statements: no prepareThreshold=0.
    assert_eq!(
        revealed(&dir, &["preview", "--driver", "jdbc"]),
        format!(
            "jdbc:postgresql://{pooled}:5432/qbo_mirror?user=app&password={ENCODED}&sslmode=require"
        )
    );
    // The rule, for every driver and both URLs.
    for (target, _) in targets(&dir, &pw_env()) {
        for (driver, url) in driver_urls(&dir, &target) {
            let libpq = LIBPQ_DRIVERS.contains(&driver.as_str());
            assert_eq!(
                url.contains("channel_binding=require"),
                libpq,
                "{target} --driver {driver}: {url}"
            );
        }
    }
    every_url_requires_tls(&dir);
}

/// Every driver's URL and direct URL of `target` (revealed), from `url --format json`.
pub(crate) fn driver_urls(dir: &Path, target: &str) -> Vec<(String, String)> {
    let run = poolwright(
        dir,
        &["url", target, "--format", "json", "--show-password"],
        &pw_env(),
    );
    succeeds(&run, &format!("url {target} --format json"));
    let doc: Value = serde_json::from_str(&run.stdout).expect("url json");
    let drivers = doc["drivers"].as_object().expect("drivers");
    assert!(drivers.len() >= 10, "every driver is listed: {drivers:?}");
    let mut out = Vec::new();
    for (name, view) in drivers {
        for key in ["url", "direct_url"] {
            let url = view[key].as_str().expect("a url").to_string();
            out.push((name.clone(), url));
        }
    }
    out
}

/// Every Supabase and Neon URL asks for TLS, in the driver's own dialect.
fn every_url_requires_tls(dir: &Path) {
    for (target, _) in targets(dir, &pw_env()) {
        for (driver, url) in driver_urls(dir, &target) {
            let param = if driver == "sqlalchemy-asyncpg" {
                "ssl=require"
            } else {
                "sslmode=require"
            };
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
            assert!(
                query.split('&').any(|p| p == param),
                "{target} --driver {driver} lacks {param}: {url}"
            );
        }
    }
}

#[test]
fn manifest_providers_use_their_pooler_port_and_database() {
    let tail = "?sslmode=require";
    let azure = golden("azure-flexible");
    let server = "automatch-prod.postgres.database.azure.com";
    assert_eq!(
        revealed(&azure, &["transaction"]),
        format!("postgresql://app:{ENCODED}@{server}:6432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&azure, &["transaction", "--direct"]),
        format!("postgresql://app:{ENCODED}@{server}:5432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&azure, &["session"]),
        format!(
            "postgresql://reporter:{ENCODED}@automatch-reports.postgres.database.azure.com:6432/reports{tail}"
        )
    );
    // The pool mode decides what a driver must do: Azure's PgBouncer keeps no
    // prepared statements by default (max_prepared_statements = 0), so
    // Prisma needs pgbouncer=true in transaction mode, and nothing in session mode.
    assert_eq!(
        revealed(&azure, &["transaction", "--driver", "prisma"]),
        format!(
            "postgresql://app:{ENCODED}@{server}:6432/qbo_mirror{tail}&pgbouncer=true&connection_limit=1"
        )
    );
    assert_eq!(
        revealed(&azure, &["session", "--driver", "prisma"]),
        format!(
            "postgresql://reporter:{ENCODED}@automatch-reports.postgres.database.azure.com:6432/reports{tail}"
        )
    );

    // DigitalOcean: 25061 with the pool's name as the database; direct is
    // 25060 with the real database; the user defaults to doadmin.
    let digitalocean = golden("digitalocean");
    let host = "db-postgresql-nyc3-12345-do-user-123456-0.b.db.ondigitalocean.com";
    assert_eq!(
        revealed(&digitalocean, &["pool"]),
        format!("postgresql://doadmin:{ENCODED}@{host}:25061/app-pool{tail}")
    );
    assert_eq!(
        revealed(&digitalocean, &["pool", "--direct"]),
        format!("postgresql://doadmin:{ENCODED}@{host}:25060/defaultdb{tail}")
    );
    assert_eq!(
        revealed(&digitalocean, &["session-pool"]),
        format!(
            "postgresql://reporter:{ENCODED}@private-db-postgresql-ams3-777-do-user-42-0.c.db.ondigitalocean.com:25061/reports_session{tail}"
        )
    );

    // Crunchy Bridge: 5431 (direct 5432), database postgres by default.
    let crunchy = golden("crunchy-bridge");
    let host = "p.vbjrfujvlncjbq3xnlsrqfxyqe.db.postgresbridge.com";
    assert_eq!(
        revealed(&crunchy, &["app"]),
        format!("postgresql://application:{ENCODED}@{host}:5431/postgres{tail}")
    );
    assert_eq!(
        revealed(&crunchy, &["app", "--direct"]),
        format!("postgresql://application:{ENCODED}@{host}:5432/postgres{tail}")
    );
    assert_eq!(
        revealed(&crunchy, &["other-db"]),
        format!("postgresql://application:{ENCODED}@{host}:5431/qbo_mirror{tail}")
    );

    // Cloud SQL managed pooling: 6432 on the instance (direct 5432).
    let cloud_sql = golden("cloud-sql");
    assert_eq!(
        revealed(&cloud_sql, &["transaction"]),
        format!("postgresql://app:{ENCODED}@10.20.30.40:6432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&cloud_sql, &["transaction", "--direct"]),
        format!("postgresql://app:{ENCODED}@10.20.30.40:5432/qbo_mirror{tail}")
    );
    assert_eq!(
        revealed(&cloud_sql, &["session"]),
        format!("postgresql://app:{ENCODED}@pg.internal.example.com:6432/qbo_mirror{tail}")
    );
}

/// The golden cases' url.txt is masked; this blesses `url-revealed.txt`
/// beside it: every target's URL with the real password, direct and pooled,
/// as libpq, asyncpg, node-postgres, pgJDBC and Prisma want it.
#[test]
fn golden_urls_with_the_real_password() {
    for case in MANAGED_CASES {
        let dir = golden(case);
        let mut out = String::new();
        for (target, _) in targets(&dir, &pw_env()) {
            let variants: [&[&str]; 6] = [
                &[],
                &["--direct"],
                &["--driver", "asyncpg"],
                &["--driver", "node-postgres"],
                &["--driver", "jdbc"],
                &["--driver", "prisma"],
            ];
            for extra in variants {
                let mut args = vec![target.as_str()];
                args.extend_from_slice(extra);
                let url = revealed(&dir, &args);
                assert!(
                    url.contains(ENCODED) && !url.contains(PASSWORD),
                    "{case}: the password is not percent-encoded: {url}"
                );
                out.push_str(&format!(
                    "$ poolwright url {} --show-password\n{url}\n",
                    args.join(" ")
                ));
            }
        }
        assert_file(&dir.join("expected/url-revealed.txt"), &out);
    }
}
