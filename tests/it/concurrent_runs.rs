//! Two runs on the same files never run at once: `apply`, `render` and
//! `env` lock the directories they write (src/lock.rs). Without the lock,
//! concurrent `env` runs lost keys: each merged into the .env it had read,
//! and the last rename won.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use poolwright::lock;

use crate::support::poolwright;

const PASSWORD: (&str, &str) = ("APP_PASSWORD", "s3cret-for-lock-tests");

/// A self-hosted target whose host files go under `host` (for apply).
fn pgbouncer_config(host: &Path) -> String {
    format!(
        "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 5432, max_connections: 100 }}
    config_dir: {host}/etc
    userlist: plain
    systemd: {{ unit_dir: {host}/units }}
    users:
      app: {{ password: \"${{APP_PASSWORD}}\" }}
    url: {{ user: app, database: db0 }}
    pgbouncer:
      pidfile: {host}/run/pgbouncer.pid
    databases:
      db0: {{ pool_size: 1 }}
",
        host = host.display()
    )
}

/// The names in `dir`, sorted; none when it does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Holds the lock on `dir` as a run of `poolwright apply prod` from this
/// process would, until the result is dropped.
fn hold(dir: &Path) -> lock::Locks {
    lock::acquire_all(
        &[dir.to_path_buf()],
        "poolwright apply prod",
        Duration::ZERO,
    )
    .expect("take the lock")
}

/// What a run blocked by [`hold`] on `dir` must print.
fn assert_names_the_holder(stderr: &str, dir: &Path) {
    let dir = dir.canonicalize().expect("canonical dir");
    let pid = std::process::id();
    for want in [
        format!(
            "waiting for the lock on {}, held by pid {pid} (poolwright apply prod)",
            dir.display()
        ),
        format!(
            "error: another poolwright run holds the lock on {} (pid {pid}: poolwright apply prod)",
            dir.display()
        ),
        "hint: wait for it to finish, or stop it".to_string(),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
}

#[test]
fn thirty_concurrent_env_runs_keep_every_key() {
    const RUNS: usize = 30;
    let work = tempfile::tempdir().expect("tempdir");
    // One target per run, so each run's key is its own to keep (a target's
    // run removes the keys it no longer writes).
    let mut yaml = String::from("version: 1\ntargets:\n");
    for i in 0..RUNS {
        yaml.push_str(&format!(
            "  t{i}:\n    provider: digitalocean\n    host: db{i}.example\n    pool: p\n    user: u\n    database: d\n    password: pw\n"
        ));
    }
    fs::write(work.path().join("poolwright.yaml"), yaml).expect("write config");
    fs::write(
        work.path().join(".env"),
        "# the app's own\nSTRIPE_KEY=sk_test_x\n",
    )
    .unwrap();
    let start = Barrier::new(RUNS);
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RUNS)
            .map(|i| {
                let start = &start;
                let dir = work.path();
                s.spawn(move || {
                    let target = format!("t{i}");
                    let key = format!("K_{i}");
                    start.wait();
                    poolwright(
                        dir,
                        &["env", &target, "--key", &key, "--file", ".env"],
                        // Generous: 30 runs take turns on a busy machine.
                        &[(lock::WAIT_VAR, "120")],
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.code, 0, "run {i}: {}", run.stderr);
    }
    let text = fs::read_to_string(work.path().join(".env")).expect("read .env");
    let lost: Vec<String> = (0..RUNS)
        .map(|i| format!("K_{i}"))
        .filter(|key| {
            !text.lines().any(|l| {
                l.strip_prefix(key.as_str())
                    .is_some_and(|v| v.starts_with("=postgres"))
            })
        })
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} keys: {lost:?}\n{text}",
        lost.len()
    );
    assert!(
        text.starts_with("# the app's own\nSTRIPE_KEY=sk_test_x\n"),
        "{text}"
    );
    assert!(
        !work.path().join(lock::FILE_NAME).exists(),
        "the lock file stayed"
    );
}

#[test]
fn a_held_lock_stops_render_naming_the_holder_and_writing_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(
        work.path().join("poolwright.yaml"),
        pgbouncer_config(work.path()),
    )
    .expect("write config");
    let out: PathBuf = work.path().join("out");
    let held = hold(&out);
    let started = Instant::now();
    let run = poolwright(
        work.path(),
        &["render", "--out", "out"],
        &[PASSWORD, (lock::WAIT_VAR, "1")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    assert_names_the_holder(&run.stderr, &out);
    assert_eq!(listing(&out), [lock::FILE_NAME], "render wrote into out/");

    // The lock was all that stopped it.
    drop(held);
    let run = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(out.join("pgbouncer.ini").is_file());
    assert!(!out.join(lock::FILE_NAME).exists(), "the lock file stayed");
}

#[test]
fn a_held_lock_stops_apply_before_any_host_file_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(
        work.path().join("poolwright.yaml"),
        pgbouncer_config(work.path()),
    )
    .expect("write config");
    let etc = work.path().join("etc");
    let held = hold(&etc);
    let run = poolwright(
        work.path(),
        &["apply"],
        &[PASSWORD, (lock::WAIT_VAR, "0.5")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_names_the_holder(&run.stderr, &etc);
    assert_eq!(listing(&etc), [lock::FILE_NAME], "apply wrote into etc/");
    assert!(
        listing(&work.path().join("units")).is_empty(),
        "apply wrote a unit file"
    );

    drop(held);
    let run = poolwright(work.path(), &["apply"], &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(etc.join("userlist.txt").is_file());
    assert!(!etc.join(lock::FILE_NAME).exists(), "the lock file stayed");
}
