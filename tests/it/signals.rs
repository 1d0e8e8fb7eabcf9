//! `apply` signals only this target's PgBouncer: whatever the pidfile
//! holds (a pid below 2, another program's pid, another PgBouncer's), no
//! other process receives SIGHUP, and the output says what was found.
//!
//! The processes are small shell scripts that trap SIGHUP and leave a mark,
//! so a signal that reaches one is seen, not guessed. The positive case (a
//! process that runs this target's ini does get the signal) proves the
//! observer sees signals at all.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, poolwright};

const PASSWORD: (&str, &str) = ("APP_PASSWORD", "s3cret-for-signal-tests");

fn write_config(dir: &Path) {
    let text = format!(
        "version: 1
targets:
  prod:
    provider: pgbouncer
    upstream: {{ host: 127.0.0.1, port: 5432, max_connections: 100 }}
    config_dir: {d}/etc
    userlist: plain
    systemd: {{ unit_dir: {d}/units }}
    users:
      app: {{ password: \"${{APP_PASSWORD}}\" }}
    databases:
      app: {{}}
    url: {{ user: app, database: app }}
    pgbouncer:
      pidfile: {d}/run/pgbouncer.pid
",
        d = dir.display()
    );
    fs::write(dir.join("poolwright.yaml"), text).expect("write config");
    fs::create_dir_all(dir.join("run")).expect("mkdir run");
}

/// A process named `name` (its `comm`), started with `args`, that writes
/// `NAME.hup` when it receives SIGHUP.
struct Observer {
    child: Child,
    mark: PathBuf,
}

/// The observer's script: `name` becomes the process's comm.
fn observer_script(dir: &Path, name: &str) -> PathBuf {
    let script = dir.join("bin").join(name);
    fs::create_dir_all(script.parent().expect("parent")).expect("mkdir");
    let mark = dir.join(format!("{name}.hup"));
    let ready = dir.join(format!("{name}.ready"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ntrap 'echo hup > {mark}' HUP\necho ready > {ready}\nwhile :; do sleep 0.1; done\n",
            mark = mark.display(),
            ready = ready.display()
        ),
    )
    .expect("write script");
    let mut perms = fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&script, perms).expect("chmod");
    script
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Observer {
    fn start(dir: &Path, name: &str, args: &[&str], group: Option<i32>) -> Observer {
        let script = observer_script(dir, name);
        let mut cmd = Command::new(&script);
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(g) = group {
            cmd.process_group(g);
        }
        let child = cmd.spawn().expect("start observer");
        assert!(
            wait_for(&dir.join(format!("{name}.ready")), Duration::from_secs(10)),
            "observer {name} did not start"
        );
        Observer {
            child,
            mark: dir.join(format!("{name}.hup")),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether SIGHUP reached it (given time to arrive).
    fn was_signalled(&self) -> bool {
        wait_for(&self.mark, Duration::from_millis(700))
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pidfile(dir: &Path, content: &str) {
    fs::write(dir.join("run/pgbouncer.pid"), content).expect("write pidfile");
}

fn output(run: &crate::support::Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

#[test]
fn a_pid_of_another_program_is_not_signalled() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    let other = Observer::start(work.path(), "worker", &[], None);
    pidfile(work.path(), &format!("{}\n", other.pid()));
    let run = poolwright(work.path(), &["apply"], &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!other.was_signalled(), "apply signalled another program");
    assert!(
        output(&run).contains("is not PgBouncer but `worker`"),
        "{}",
        output(&run)
    );
}

#[test]
fn another_targets_pgbouncer_is_not_signalled_this_ones_is() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    let elsewhere = Observer::start(
        work.path(),
        "pgbouncer",
        &["/etc/other/pgbouncer.ini"],
        None,
    );
    pidfile(work.path(), &format!("{}\n", elsewhere.pid()));
    let run = poolwright(work.path(), &["apply"], &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !elsewhere.was_signalled(),
        "apply signalled another target's PgBouncer"
    );
    assert!(output(&run).contains("does not run"), "{}", output(&run));
    drop(elsewhere);

    // The same kind of process, started with this target's ini: signalled.
    let ours_dir = tempfile::tempdir().expect("tempdir");
    write_config(ours_dir.path());
    let ini_here = ours_dir.path().join("etc/pgbouncer.ini");
    let ours = Observer::start(
        ours_dir.path(),
        "pgbouncer",
        &[ini_here.to_str().unwrap()],
        None,
    );
    pidfile(ours_dir.path(), &format!("{}\n", ours.pid()));
    let run = poolwright(ours_dir.path(), &["apply"], &[PASSWORD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        ours.was_signalled(),
        "this target's PgBouncer was not told to reload: {}",
        output(&run)
    );
}

#[test]
fn pid_zero_does_not_signal_the_callers_process_group() {
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    // A group of its own, led by the observer; apply runs inside it, so
    // kill(0) would reach the observer (and never this test process).
    let neighbour = Observer::start(work.path(), "neighbour", &[], Some(0));
    let group = neighbour.pid() as i32;
    pidfile(work.path(), "0\n");
    let out = Command::new(bin())
        .arg("apply")
        .current_dir(work.path())
        .env(PASSWORD.0, PASSWORD.1)
        .process_group(group)
        .output()
        .expect("run apply");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        !neighbour.was_signalled(),
        "pid 0 signalled apply's own process group"
    );
    assert!(text.contains("names no single process"), "{text}");
}

#[test]
fn pid_minus_one_signals_nothing() {
    // kill(-1) as root reaches every process on the host, so this case runs
    // only inside a PID namespace of its own, where "every process" is the
    // namespace's few.
    if Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("notice: skipping the pid -1 case: no PID namespace (unshare --pid) here");
        assert!(
            std::env::var_os("POOLWRIGHT_REQUIRE_SERVERS").is_none(),
            "POOLWRIGHT_REQUIRE_SERVERS is set but unshare --pid does not work"
        );
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    write_config(work.path());
    let script = observer_script(work.path(), "bystander");
    pidfile(work.path(), "-1\n");
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(format!(
            "'{script}' & while [ ! -e '{ready}' ]; do sleep 0.05; done; '{bin}' apply; code=$?; sleep 0.7; kill %1; exit $code",
            script = script.display(),
            ready = work.path().join("bystander.ready").display(),
            bin = bin().display()
        ))
        .current_dir(work.path())
        .env(PASSWORD.0, PASSWORD.1)
        .output()
        .expect("run apply in a PID namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        !work.path().join("bystander.hup").exists(),
        "pid -1 signalled every process: {text}"
    );
    assert!(text.contains("names no single process"), "{text}");
}
