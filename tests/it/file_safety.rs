//! Files are never lost or half-written: a hand edit is not overwritten
//! without `--force`, a `kill -9` at any moment of `render`, `apply` or
//! `env` leaves each file whole (the old version or the new one), and files
//! with secrets are 0600 whatever the umask.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, mode, poolwright};

const PASSWORD: (&str, &str) = ("APP_PASSWORD", "s3cret-for-file-tests");

/// A self-hosted target whose host files go under `host` (for apply), with
/// `databases` databases so rendering takes a while, and `pool` as the
/// default pool size (the difference between two versions of the config).
fn config(host: &Path, databases: usize, pool: u32) -> String {
    let mut text = format!(
        "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 5432, max_connections: 100000 }}
    config_dir: {host}/etc
    userlist: plain
    systemd: {{ unit_dir: {host}/units }}
    users:
      app: {{ password: \"${{APP_PASSWORD}}\" }}
    url: {{ user: app, database: db0 }}
    pgbouncer:
      default_pool_size: {pool}
      pidfile: {host}/run/pgbouncer.pid
    databases:
",
        host = host.display()
    );
    for i in 0..databases {
        text.push_str(&format!("      db{i}: {{ pool_size: 1 }}\n"));
    }
    text
}

/// Writes `dir`/poolwright.yaml: `config` with its files under `dir`.
fn write_config(dir: &Path, databases: usize, pool: u32) {
    fs::write(dir.join("poolwright.yaml"), config(dir, databases, pool)).expect("write config");
}

/// Every regular file under `dir` (recursively, by relative path) and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                files.insert(rel, fs::read(&path).expect("read"));
            }
        }
    }
    files
}

#[test]
fn render_refuses_to_overwrite_a_hand_edit_without_force() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path(), 2, 10);
    let first = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let ini = work.path().join("out/pgbouncer.ini");
    let rendered = fs::read_to_string(&ini).unwrap();

    // Unedited files are replaced freely when the config changes.
    write_config(work.path(), 2, 11);
    let changed = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert!(changed.stderr.contains("updated out/pgbouncer.ini"));
    assert_ne!(fs::read_to_string(&ini).unwrap(), rendered);

    // A hand edit stops the next render, which then writes nothing at all.
    let edited = fs::read_to_string(&ini)
        .unwrap()
        .replace("default_pool_size = 11", "default_pool_size = 99");
    fs::write(&ini, &edited).unwrap();
    write_config(work.path(), 3, 12);
    let before = snapshot(&work.path().join("out"));
    let refused = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(refused.stdout, "");
    assert!(
        refused.stderr.contains(
            "a file poolwright would replace was changed by hand, so nothing was written:\n  out/pgbouncer.ini: changed since poolwright wrote it"
        ),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(snapshot(&work.path().join("out")), before);

    // --force replaces it and keeps the edit beside it.
    let forced = poolwright(
        work.path(),
        &["render", "--out", "out", "--force"],
        &[PASSWORD],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced
            .stderr
            .contains("kept the changed file as out/pgbouncer.ini.bak")
    );
    assert_eq!(
        fs::read_to_string(work.path().join("out/pgbouncer.ini.bak")).unwrap(),
        edited
    );
    let now = fs::read_to_string(&ini).unwrap();
    assert!(now.contains("default_pool_size = 12"), "{now}");
    assert!(now.contains("db2 = "), "{now}");

    // And from then on the new file is poolwright's again.
    let again = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[test]
fn render_refuses_a_file_it_never_wrote_and_names_every_one() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path(), 1, 10);
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("pgbouncer.ini"), "[databases]\nmine = host=x\n").unwrap();
    fs::write(out.join("userlist.txt"), "\"someone\" \"else\"\n").unwrap();
    let refused = poolwright(work.path(), &["render", "--out", "out"], &[PASSWORD]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    for line in [
        "2 files poolwright would replace were changed by hand, so nothing was written:",
        "  out/pgbouncer.ini: not written by poolwright",
        "  out/userlist.txt: not written by poolwright",
    ] {
        assert!(refused.stderr.contains(line), "{line}\n{}", refused.stderr);
    }
    assert_eq!(
        fs::read_to_string(out.join("userlist.txt")).unwrap(),
        "\"someone\" \"else\"\n"
    );
    assert!(!out.join("pgbouncer.service").exists(), "wrote a file");
}

#[test]
fn plan_shows_and_apply_refuses_a_hand_edited_host_file() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path(), 1, 10);
    let applied = poolwright(work.path(), &["apply"], &[PASSWORD]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let ini = work.path().join("etc/pgbouncer.ini");
    let plan = poolwright(work.path(), &["plan"], &[PASSWORD]);
    assert!(!plan.stdout.contains("by hand"), "{}", plan.stdout);

    let edited = fs::read_to_string(&ini).unwrap() + "; tuned by hand\n";
    fs::write(&ini, &edited).unwrap();
    let plan = poolwright(work.path(), &["plan"], &[PASSWORD]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let line = format!(
        "  write   {} (mode 0644): changed since poolwright wrote it, so apply stops unless --force (which keeps it as pgbouncer.ini.bak)",
        ini.display()
    );
    assert!(plan.stdout.contains(&line), "{}", plan.stdout);
    let json = poolwright(work.path(), &["plan", "--format", "json"], &[PASSWORD]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan json");
    let files = doc.to_string();
    assert!(
        files.contains("\"changed_by_hand\":\"changed since poolwright wrote it\""),
        "{files}"
    );

    let refused = poolwright(work.path(), &["apply"], &[PASSWORD]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!(
        "  {}: changed since poolwright wrote it",
        ini.display()
    )));
    assert_eq!(fs::read_to_string(&ini).unwrap(), edited);
    let forced = poolwright(work.path(), &["apply", "--force"], &[PASSWORD]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(
        fs::read_to_string(work.path().join("etc/pgbouncer.ini.bak")).unwrap(),
        edited
    );
    assert!(!fs::read_to_string(&ini).unwrap().contains("by hand"));
}

#[test]
fn files_with_secrets_are_0600_even_under_umask_000() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path(), 1, 10);
    for command in ["render --out out", "env prod --file .env"] {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000 && exec '{}' {command}", bin().display()))
            .current_dir(work.path())
            .env(PASSWORD.0, PASSWORD.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("sh");
        assert!(status.success(), "{command}");
    }
    assert_eq!(mode(&work.path().join("out/userlist.txt")), 0o600);
    assert_eq!(
        mode(&work.path().join("out/.poolwright-written")),
        0o600,
        "the record of hashes"
    );
    assert_eq!(mode(&work.path().join(".env")), 0o600);
    // The files without secrets follow their own fixed mode, not the umask.
    assert_eq!(mode(&work.path().join("out/pgbouncer.ini")), 0o644);
}

#[test]
fn directories_poolwright_creates_are_0755_even_under_umask_000() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path(), 1, 10);
    for command in ["render --out deep/out", "apply"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000 && exec '{}' {command}", bin().display()))
            .current_dir(work.path())
            .env(PASSWORD.0, PASSWORD.1)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for dir in ["deep", "deep/out", "etc", "units", "run"] {
        let path = work.path().join(dir);
        if dir == "run" && !path.exists() {
            continue; // apply makes the pidfile's directory only where it must
        }
        assert_eq!(mode(&path), 0o755, "{dir} is writable by others");
    }
}

/// Runs `args` in `dir` and kills it with SIGKILL after `delay`.
fn run_and_kill(dir: &Path, args: &[&str], delay: Duration) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env(PASSWORD.0, PASSWORD.1)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn poolwright");
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL; it may have finished already
    child.wait().expect("wait");
}

/// How long one complete run of `args` takes here.
fn duration_of(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let run = poolwright(dir, args, &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    started.elapsed()
}

/// Kills `args` at spread-out moments of its run, alternating between the
/// configs `a.yaml` and `b.yaml` in `dir`; after every kill each file under
/// `watched` must be whole: exactly as one of the two complete runs left
/// it. Then a complete run must still succeed (no false "changed by hand").
fn kill_loop(dir: &Path, watched: &Path, command: &[&str]) {
    let args = |config: &str| {
        let mut a = vec!["--config", config];
        a.extend_from_slice(command);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let a: Vec<String> = args("a.yaml");
    let b: Vec<String> = args("b.yaml");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    duration_of(dir, &a);
    let whole_a = snapshot(watched);
    let full = duration_of(dir, &b);
    let whole_b = snapshot(watched);
    assert_ne!(whole_a, whole_b, "the two configs must differ in output");

    const KILLS: u32 = 40;
    for i in 0..KILLS {
        // From 0 to 120 % of a complete run, in even steps.
        let delay = full.mul_f64(1.2 * f64::from(i) / f64::from(KILLS));
        run_and_kill(dir, if i % 2 == 0 { &a } else { &b }, delay);
        for (path, bytes) in snapshot(watched) {
            let name = path.display().to_string();
            if name.contains(".poolwright-tmp-") {
                continue; // a temporary file the kill left: never the real name
            }
            let whole = whole_a.get(&path) == Some(&bytes) || whole_b.get(&path) == Some(&bytes);
            assert!(
                // The lock file names a killed holder until the next run.
                whole
                    || name.ends_with(".poolwright-written")
                    || name.ends_with(".poolwright.lock"),
                "kill {i} after {delay:?} left {name} neither old nor new ({} bytes)",
                bytes.len()
            );
        }
        for name in whole_a.keys() {
            assert!(
                watched.join(name).exists(),
                "kill {i} lost {}",
                name.display()
            );
        }
    }
    // The temporaries the kills left are removed by a later run once they
    // are old enough not to belong to a run under way.
    age_temporaries(watched);
    let last = poolwright(dir, &a, &[PASSWORD]);
    assert_eq!(last.code, 0, "after the kills: {}", last.stderr);
    assert_eq!(snapshot(watched), whole_a);
}

/// Makes every temporary file under `dir` look an hour old.
fn age_temporaries(dir: &Path) {
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in snapshot(dir).keys() {
        if path.display().to_string().contains(".poolwright-tmp-") {
            fs::File::options()
                .write(true)
                .open(dir.join(path))
                .expect("open temporary")
                .set_modified(hour_ago)
                .expect("set mtime");
        }
    }
}

#[test]
fn a_kill_during_render_leaves_every_file_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.yaml"), config(work.path(), 3000, 10)).unwrap();
    fs::write(work.path().join("b.yaml"), config(work.path(), 3000, 11)).unwrap();
    kill_loop(
        work.path(),
        &work.path().join("out"),
        &["render", "--out", "out"],
    );
}

#[test]
fn a_kill_during_apply_leaves_every_file_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.yaml"), config(work.path(), 3000, 10)).unwrap();
    fs::write(work.path().join("b.yaml"), config(work.path(), 3000, 11)).unwrap();
    kill_loop(work.path(), work.path(), &["apply"]);
}

#[test]
fn a_kill_during_env_keeps_the_rest_of_the_env_file() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.yaml"), config(work.path(), 3000, 10)).unwrap();
    let b = config(work.path(), 3000, 10).replace("database: db0", "database: db1");
    fs::write(work.path().join("b.yaml"), b).unwrap();
    let env = work.path().join("app");
    fs::create_dir(&env).unwrap();
    // A large file of the app's own, so a kill can land while it is written.
    let mut own = String::from("# the app's own settings\r\nSTRIPE_KEY='sk_test_x'\nEMPTY=\n");
    for i in 0..20_000 {
        own.push_str(&format!("FEATURE_{i}=\"on \\\"{i}\\\"\"\n"));
    }
    fs::write(env.join(".env"), &own).unwrap();
    kill_loop(work.path(), &env, &["env", "prod", "--file", "app/.env"]);
    let text = fs::read_to_string(env.join(".env")).unwrap();
    assert!(text.starts_with(&own), "the app's own lines changed");
}
