//! Libpq accepts every emitted URL.

#[allow(unused_imports)]
use super::*;

fn pg_isready() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("pg_isready"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/lib/postgresql/15/bin/pg_isready");
        p.is_file().then_some(p)
    })
}

/// libpq's verdict on `url` without reaching any real host: pg_isready
/// hands the URL to libpq (PQpingParams). Exit 3 ("no attempt") means libpq
/// refused the connection string (bad percent-encoding, an unknown
/// parameter, an invalid value); 2 ("no response") means it parsed it and
/// tried to connect. PGHOSTADDR=127.0.0.1 keeps libpq from resolving the
/// URL's host name (no DNS, no network); the port is the URL's own.
/// Returns the exit code and, on a refusal, libpq's message (from psql).
fn libpq_verdict(pg_isready: &Path, url: &str) -> (i32, String) {
    let quiet = |cmd: &mut Command| {
        cmd.env("PGHOSTADDR", "127.0.0.1")
            .env("PGCONNECT_TIMEOUT", "2")
            .env_remove("PGSERVICE")
            .env_remove("PGSERVICEFILE")
            .output()
            .expect("run a libpq client")
    };
    let out = quiet(Command::new(pg_isready).args(["-q", "-d", url]));
    let code = out.status.code().unwrap_or(-1);
    if code != 3 {
        return (code, String::new());
    }
    let psql = pg_isready.with_file_name("psql");
    let psql = if psql.is_file() {
        psql
    } else {
        PathBuf::from("psql")
    };
    let why = quiet(Command::new(psql).args(["-X", "-d", url, "-c", ""]));
    (code, String::from_utf8_lossy(&why.stderr).into_owned())
}

#[test]
fn libpq_accepts_every_emitted_url() {
    let Some(pg_isready) = pg_isready() else {
        if require_servers() {
            panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but pg_isready (libpq) is missing");
        }
        eprintln!(
            "SKIP libpq_accepts_every_emitted_url: no pg_isready; run scripts/install-test-deps"
        );
        return;
    };
    // The method tells a refused URL from a parsed one.
    for bad in [
        "postgresql://u:p%4@h.example:5432/db",
        "postgresql://u@h.example:5432/db?pgbouncer=true",
        "postgresql://u@h.example:5432/db?sslmode=required",
    ] {
        assert_eq!(
            libpq_verdict(&pg_isready, bad).0,
            3,
            "libpq should refuse {bad}"
        );
    }
    let good =
        format!("postgresql://u:{ENCODED}@h.example:1/db?sslmode=require&channel_binding=require");
    assert_eq!(
        libpq_verdict(&pg_isready, &good).0,
        2,
        "libpq parses {good}"
    );

    let mut urls = BTreeSet::new();
    // Every URL in every golden url.txt (masked) ...
    for entry in std::fs::read_dir(root().join("tests/golden")).expect("goldens") {
        let file = entry.expect("entry").path().join("expected/url.txt");
        if let Ok(text) = std::fs::read_to_string(&file) {
            urls.extend(
                text.lines()
                    .filter(|l| l.starts_with("postgresql://"))
                    .map(str::to_string),
            );
        }
    }
    // ... and, for the managed providers, every driver's URL that is meant
    // for libpq or is plain libpq syntax, with the real password.
    for case in MANAGED_CASES {
        let dir = golden(case);
        for (target, _) in targets(&dir, &pw_env()) {
            for (driver, url) in driver_urls(&dir, &target) {
                if LIBPQ_PARSEABLE.contains(&driver.as_str()) {
                    urls.insert(url);
                }
            }
        }
    }
    assert!(urls.len() > 40, "too few URLs found: {}", urls.len());
    let mut refused = Vec::new();
    for url in &urls {
        let (code, why) = libpq_verdict(&pg_isready, url);
        // 0/1: something answered on 127.0.0.1 at that port; still parsed.
        if !matches!(code, 0..=2) {
            refused.push(format!("{url}\n  exit {code}: {}", why.trim()));
        }
    }
    assert!(
        refused.is_empty(),
        "libpq refuses {} URL(s):\n{}",
        refused.len(),
        refused.join("\n")
    );
}
