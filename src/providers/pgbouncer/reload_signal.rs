//! SIGHUP to this target's PgBouncer, and to nothing else.
//!
//! A pidfile is only a file: whoever may write it (or whatever crashed while
//! writing it) chooses the pid apply signals, and apply often runs as root.
//! `kill(-1)` reaches every process the caller may signal, `kill(0)` the
//! caller's own process group, and any other pid may by now belong to an
//! unrelated process that SIGHUP terminates. So before signalling, apply
//! checks that the pid is an ordinary one (2 or more), that the process is a
//! PgBouncer (`/proc/PID/comm`), and that it runs *this* target's ini (one
//! of its arguments, resolved against its working directory, is that file).
//! The signal goes through a pidfd opened before the checks, so a pid that is
//! reused between check and signal cannot receive it: the pidfd still names
//! the process that was checked, and the signal then fails with ESRCH.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A pidfile holds a decimal pid and a newline; more than this is not one.
const PIDFILE_CAP: u64 = 64;
/// `/proc/PID/cmdline` is read up to this many bytes.
const CMDLINE_CAP: u64 = 64 * 1024;

/// What a pidfile holds, judged before anything is signalled.
#[derive(Debug, PartialEq, Eq)]
pub enum PidfileContent {
    Pid(i32),
    /// Not a number, or a number that names no single process (below 2:
    /// `0` is the caller's process group, `-1` every process, `1` init).
    NotAPid(String),
}

/// Reads `text` (a pidfile's bytes) as PgBouncer writes it.
pub fn parse(text: &str) -> PidfileContent {
    let trimmed = text.trim();
    match trimmed.parse::<i64>() {
        Ok(pid) if (2..=i64::from(i32::MAX)).contains(&pid) => PidfileContent::Pid(pid as i32),
        Ok(pid) => PidfileContent::NotAPid(format!(
            "holds {pid}, which names no single process (a pid is 2 or more)"
        )),
        Err(_) => PidfileContent::NotAPid("does not hold a pid".into()),
    }
}

/// Reads a pidfile without blocking on a FIFO and without reading a device
/// or a huge file. `Ok(None)`: there is no pidfile (PgBouncer is not running).
fn read_pidfile(path: &Path) -> Result<Option<String>, String> {
    match crate::files::read_regular_capped(path, PIDFILE_CAP) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "does not hold a pid".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(format!("{e}, too long for a pid"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(e.to_string()),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

/// Why a pid was not signalled.
enum Found {
    Gone,
    Other(String),
}

/// What runs as `pid`, checked against the ini this target's PgBouncer must
/// have been started with. `Err` says what was found instead.
fn check_process(pid: i32, ini: &Path) -> Result<(), Found> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let comm = match std::fs::read_to_string(proc_dir.join("comm")) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Found::Gone);
        }
        Err(e) => return Err(Found::Other(format!("cannot be inspected ({e})"))),
    };
    let comm = comm.trim_end_matches('\n');
    if comm != "pgbouncer" {
        return Err(Found::Other(format!(
            "is not PgBouncer but `{}`",
            crate::diagnostic::printable(comm)
        )));
    }
    let mut cmdline = Vec::new();
    std::fs::File::open(proc_dir.join("cmdline"))
        .and_then(|f| f.take(CMDLINE_CAP).read_to_end(&mut cmdline))
        .map_err(|e| Found::Other(format!("cannot be inspected ({e})")))?;
    let cwd = std::fs::read_link(proc_dir.join("cwd")).ok();
    let wanted = std::fs::canonicalize(ini).unwrap_or_else(|_| ini.to_path_buf());
    let runs_ours = cmdline
        .split(|b| *b == 0)
        .skip(1)
        .filter(|arg| !arg.is_empty() && !arg.starts_with(b"-"))
        .map(|arg| {
            let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
            match (&cwd, arg.is_relative()) {
                (Some(cwd), true) => cwd.join(arg),
                _ => arg.to_path_buf(),
            }
        })
        .any(|arg| std::fs::canonicalize(&arg).unwrap_or(arg) == wanted);
    if runs_ours {
        Ok(())
    } else {
        Err(Found::Other(format!(
            "is a PgBouncer that does not run {}",
            crate::diagnostic::printable(&ini.display().to_string())
        )))
    }
}

/// A pidfd for `pid` (Linux 5.3+); `None` where the kernel has none.
fn pidfd_open(pid: i32) -> Result<Option<OwnedFd>, std::io::Error> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(nix::libc::ENOSYS) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

fn send_hup(pid: i32, pidfd: Option<&OwnedFd>) -> Result<(), std::io::Error> {
    match pidfd {
        Some(fd) => {
            // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
            let rc = unsafe {
                nix::libc::syscall(
                    nix::libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    nix::libc::SIGHUP,
                    std::ptr::null::<nix::libc::siginfo_t>(),
                    0,
                )
            };
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
        None => nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .map_err(std::io::Error::from),
    }
}

/// SIGHUP to the PgBouncer whose pid is in `pidfile` if it runs `ini`, as
/// a report line that says what was done or what was found instead.
pub fn reload(pidfile: &str, ini: &str) -> String {
    let shown = crate::diagnostic::printable(pidfile);
    let yourself = "reload PgBouncer yourself (systemctl reload pgbouncer)";
    let text = match read_pidfile(Path::new(pidfile)) {
        Ok(None) => return format!("PgBouncer is not running (no {shown})"),
        Ok(Some(text)) => text,
        Err(why) => return format!("not signalled: {shown} {why}; {yourself}"),
    };
    let pid = match parse(&text) {
        PidfileContent::Pid(pid) => pid,
        PidfileContent::NotAPid(why) => {
            return format!("not signalled: {shown} {why}; {yourself}");
        }
    };
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
            return format!("PgBouncer is not running (pid {pid} from {shown} is gone)");
        }
        Err(e) => return format!("not signalled: pid {pid} from {shown}: {e}; {yourself}"),
    };
    match check_process(pid, Path::new(ini)) {
        Ok(()) => {}
        Err(Found::Gone) => {
            return format!("PgBouncer is not running (pid {pid} from {shown} is gone)");
        }
        Err(Found::Other(what)) => {
            return format!("not signalled: pid {pid} from {shown} {what}; {yourself}");
        }
    }
    match send_hup(pid, pidfd.as_ref()) {
        Ok(()) => format!("reloaded PgBouncer (SIGHUP to pid {pid})"),
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
            format!("PgBouncer is not running (pid {pid} from {shown} is gone)")
        }
        Err(e) => {
            format!("could not signal PgBouncer (pid {pid}): {e}; run `systemctl reload pgbouncer`")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_below_two_and_garbage_are_not_pids() {
        assert_eq!(parse("1234\n"), PidfileContent::Pid(1234));
        for text in ["-1", "0", "1", "-1234", "99999999999", "12ab", "", "\n"] {
            assert!(
                matches!(parse(text), PidfileContent::NotAPid(_)),
                "{text:?} was taken for a pid"
            );
        }
    }

    #[test]
    fn a_process_that_is_not_pgbouncer_is_named_and_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // spawn() may return before the child has exec'd `sleep`.
        let comm = format!("/proc/{}/comm", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() != "sleep")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pgbouncer.pid");
        std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
        let line = reload(pidfile.to_str().unwrap(), "/etc/pgbouncer/pgbouncer.ini");
        assert!(line.contains("is not PgBouncer but `sleep`"), "{line}");
        assert!(child.try_wait().unwrap().is_none(), "sleep was signalled");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn special_and_oversized_pidfiles_are_refused_promptly() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let line = reload(fifo.to_str().unwrap(), "/x.ini");
        assert!(
            line.contains("is a FIFO (named pipe), not a regular file"),
            "{line}"
        );
        let line = reload("/dev/zero", "/x.ini");
        assert!(
            line.contains("is a character device, not a regular file"),
            "{line}"
        );
        let big = dir.path().join("big.pid");
        std::fs::write(&big, "1".repeat(1000)).unwrap();
        let line = reload(big.to_str().unwrap(), "/x.ini");
        assert!(line.contains("too long for a pid"), "{line}");
    }
}
