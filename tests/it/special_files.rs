//! A FIFO, a link to `/dev/zero` or a huge claim in place of a file
//! poolwright reads never hangs a command nor grows it without bound: each
//! command ends within seconds with an error naming the file and what it
//! is (or, where the file is only a best-effort hint, without it).

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::fake_postgres::poolwright_within;

const PASSWORD: (&str, &str) = ("APP_PASSWORD", "s3cret-for-special-files");
/// Far above any of these commands' real run time, far below a hang.
const LIMIT: Duration = Duration::from_secs(20);

fn write_config(dir: &Path) {
    let text = format!(
        "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 5432, max_connections: 100 }}
    config_dir: {host}/etc
    systemd: {{ unit_dir: {host}/units }}
    users:
      app: {{ password: \"${{APP_PASSWORD}}\" }}
    databases:
      app: {{}}
    url: {{ user: app, database: app }}
",
        host = dir.display()
    );
    fs::write(dir.join("poolwright.yaml"), text).expect("write config");
}

fn fifo(path: &Path) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

fn zero_link(path: &Path) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    std::os::unix::fs::symlink("/dev/zero", path).expect("symlink");
}

/// Runs `args` in `dir` and asserts it ends in time with exit 1 and a
/// message naming `file` and `what` it is.
fn refused(dir: &Path, args: &[&str], file: &str, what: &str) {
    let (run, took) = poolwright_within(dir, args, &[PASSWORD], LIMIT);
    assert_ne!(
        run.code, -9,
        "{args:?} hung on {file} (killed after {took:?})"
    );
    assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(file) && run.stderr.contains(what),
        "{args:?} should name {file} as {what}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_fifo_as_the_config_ends_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    fifo(&work.path().join("poolwright.yaml"));
    refused(work.path(), &["validate"], "poolwright.yaml", "is a FIFO");
}

#[test]
fn a_fifo_as_the_state_file_ends_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    fifo(&work.path().join(".poolwright-state.json"));
    for args in [&["validate"][..], &["plan"], &["render", "--out", "out"]] {
        refused(work.path(), args, ".poolwright-state.json", "is a FIFO");
    }
}

#[test]
fn a_fifo_or_device_as_an_output_file_stops_render_before_it_writes() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    fifo(&work.path().join("out/pgbouncer.ini"));
    refused(
        work.path(),
        &["render", "--out", "out"],
        "pgbouncer.ini",
        "is a FIFO",
    );
    assert!(
        !work.path().join("out/userlist.txt").exists(),
        "render wrote a file after refusing another"
    );
    let other = tempfile::tempdir().expect("tempdir");
    write_config(other.path());
    zero_link(&other.path().join("out/pgbouncer.service"));
    refused(
        other.path(),
        &["render", "--out", "out"],
        "pgbouncer.service",
        "is a character device",
    );
}

#[test]
fn a_fifo_as_the_hand_edit_record_protects_nothing_and_hangs_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    fifo(&work.path().join("out/.poolwright-written"));
    let (run, took) =
        poolwright_within(work.path(), &["render", "--out", "out"], &[PASSWORD], LIMIT);
    assert_ne!(
        run.code, -9,
        "render hung on the record (killed after {took:?})"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(work.path().join("out/pgbouncer.ini").is_file());
    // The record is a file again, and protects what was written.
    assert!(work.path().join("out/.poolwright-written").is_file());
}

#[test]
fn a_device_or_fifo_as_the_host_files_stops_apply_before_any_change() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    zero_link(&work.path().join("etc/userlist.txt"));
    // userlist.txt is read first: its verifiers are reused where they fit.
    refused(
        work.path(),
        &["apply"],
        "userlist.txt",
        "is a character device",
    );
    assert!(!work.path().join("etc/pgbouncer.ini").exists());
    fs::remove_file(work.path().join("etc/userlist.txt")).expect("rm");
    fifo(&work.path().join("etc/pgbouncer.ini"));
    refused(work.path(), &["apply"], "pgbouncer.ini", "is a FIFO");
}

#[test]
fn a_fifo_as_dot_env_ends_plan_and_env_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    fifo(&work.path().join(".env"));
    refused(work.path(), &["plan"], ".env", "is a FIFO");
    refused(work.path(), &["env", "prod"], ".env", "is a FIFO");
    let zero = tempfile::tempdir().expect("tempdir");
    write_config(zero.path());
    zero_link(&zero.path().join(".env"));
    refused(
        zero.path(),
        &["env", "prod"],
        ".env",
        "is a character device",
    );
}

#[test]
fn render_does_not_spend_hours_on_a_huge_iteration_count() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    fs::create_dir_all(work.path().join("out")).expect("mkdir");
    // A verifier that claims 2,000,000,000 PBKDF2 iterations: checking it
    // against the password would take hours, so it is not reused.
    let hostile = "\"app\" \"SCRAM-SHA-256$2000000000:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:U/VcqJjK8OHx2Ut3g5fOIXmNE8XOcVxYHB5rgrbEaF0=\"\n";
    fs::write(work.path().join("out/userlist.txt"), hostile).expect("write");
    let (run, took) = poolwright_within(
        work.path(),
        &["render", "--out", "out", "--force"],
        &[PASSWORD],
        LIMIT,
    );
    assert_ne!(
        run.code, -9,
        "render hung on the iteration count (killed after {took:?})"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let userlist = fs::read_to_string(work.path().join("out/userlist.txt")).expect("read");
    assert!(
        userlist.contains("SCRAM-SHA-256$4096:"),
        "the hostile verifier was kept: {userlist}"
    );
}

#[test]
fn a_template_directory_that_links_to_itself_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    let templates = work.path().join("templates/pgbouncer");
    fs::create_dir_all(&templates).expect("mkdir");
    // Two links back up: a walk that follows them visits 2^40 paths.
    std::os::unix::fs::symlink("..", templates.join("loop")).expect("symlink");
    std::os::unix::fs::symlink("..", templates.join("again")).expect("symlink");
    let (run, took) = poolwright_within(
        work.path(),
        &["render", "--out", "out", "--templates", "templates"],
        &[PASSWORD],
        LIMIT,
    );
    assert_ne!(
        run.code, -9,
        "render hung on a link loop (killed after {took:?})"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}
