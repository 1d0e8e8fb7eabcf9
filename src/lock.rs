//! Command locks: two `apply`, `render` or `env` runs on the same files
//! never run at once.
//!
//! Every file is replaced atomically (files.rs), so no reader sees half a
//! file; but two runs can each read the old file and each write their own
//! new one, and the later rename wins: a key one `env` merged into .env is
//! lost, or userlist.txt and the server end up with different verifiers.
//! So each of these commands locks every directory it writes, for its whole
//! run, before it reads anything there. A second run waits a little (it may
//! just be the other half of a `make`), then stops, naming the holder.
//!
//! One lock file per directory, `DIR/.poolwright.lock`, rather than one per
//! file: the directory is the unit poolwright writes in (the record of
//! written files, `.poolwright-written`, is one per directory and shared by
//! every file there), so one rule covers rendered files, host files, .env
//! and the state file, and a lock's name never depends on a file name the
//! user chose. The price is that `env` and `apply` on one project directory
//! take turns, which is right: `env` reads the state file `apply` writes.
//!
//! The lock is `flock(LOCK_EX|LOCK_NB)` on that file, never on a protected
//! file itself: those are replaced by rename, and a lock on the old inode
//! would protect nothing. The kernel drops a flock when its holder exits,
//! even by kill -9, so a crashed run leaves no stale lock. The lock file is
//! never removed: a run already waiting on it and a new run creating a new
//! one would then both "hold the lock". While held, it names its holder
//! (pid and command) for the message a second run prints.

use std::fs::File;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::diagnostic::printable;
use crate::error::Error;

/// The lock file in each directory a command writes.
pub const FILE_NAME: &str = ".poolwright.lock";

/// How long a second run waits for the lock, in seconds (tests shorten it).
pub const WAIT_VAR: &str = "POOLWRIGHT_LOCK_WAIT_SECS";

/// Long enough for a render or an env run to finish, short enough that a
/// stuck apply is reported rather than waited for without end.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(100);

/// The most of a lock file read back: it holds one short line, and a huge
/// file put in its place must not be read or printed whole.
const HOLDER_CAP: u64 = 4096;

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    file: Flock<File>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still held here (the flock goes with the fd, after this): a lock
        // nobody holds names nobody, and a finished run leaves the file
        // exactly as it found it.
        let _ = self.file.set_len(0);
    }
}

/// The wait from `POOLWRIGHT_LOCK_WAIT_SECS` (decimal seconds, 0 fails at
/// once), else [`DEFAULT_WAIT`].
pub fn wait_from(env: &dyn Fn(&str) -> Option<String>) -> Result<Duration, Error> {
    let Some(text) = env(WAIT_VAR).filter(|t| !t.trim().is_empty()) else {
        return Ok(DEFAULT_WAIT);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::message(format!(
                "{WAIT_VAR}={}: not a number of seconds from 0 to 86400",
                printable(&text)
            ))
            .with_hint(format!("e.g. {WAIT_VAR}=10, or 0 to fail at once"))
        })
}

/// Locks every directory in `dirs` for `command` (e.g. `poolwright apply
/// prod`), waiting at most `wait` in all. Each directory is created if
/// missing: only commands that would create it anyway lock it.
pub fn acquire_all(dirs: &[PathBuf], command: &str, wait: Duration) -> Result<Vec<Lock>, Error> {
    let mut unique = Vec::new();
    for dir in dirs {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
        // One name per directory: `out`, `./out` and a link to it are one
        // lock, and a run that opened one lock file twice would wait on
        // itself (flocks on two opens of a file exclude each other).
        unique.push(dir.canonicalize().map_err(|e| Error::io(dir, &e))?);
    }
    // One order for every run: two runs that share some directories take
    // them in the same order, so neither can hold one the other waits for.
    unique.sort();
    unique.dedup();
    let deadline = Instant::now() + wait;
    unique
        .iter()
        .map(|dir| acquire(dir, command, deadline))
        .collect()
}

/// Locks `dir`, trying until `deadline`; says once on stderr that it waits.
fn acquire(dir: &Path, command: &str, deadline: Instant) -> Result<Lock, Error> {
    let path = dir.join(FILE_NAME);
    let mut file = open(&path)?;
    let mut told = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => {
                // Best effort: an unnamed holder is still a holder.
                let line = format!("{} {}\n", std::process::id(), printable(command));
                let _ = locked.set_len(0);
                let _ = locked.write_all_at(line.as_bytes(), 0);
                return Ok(Lock { file: locked });
            }
            Err((unlocked, Errno::EWOULDBLOCK)) => {
                let holder = Holder::read(&path);
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::message(format!(
                        "another poolwright run holds the lock on {}{}",
                        printable(&dir.display().to_string()),
                        holder.in_parentheses()
                    ))
                    .with_hint("wait for it to finish, or stop it"));
                }
                if !told {
                    eprintln!(
                        "waiting for the lock on {}, held by {}",
                        printable(&dir.display().to_string()),
                        holder.by()
                    );
                    told = true;
                }
                std::thread::sleep(POLL.min(deadline - now));
                file = unlocked;
            }
            Err((unlocked, Errno::EINTR)) => file = unlocked,
            Err((_, e)) => {
                return Err(Error::message(format!(
                    "{}: cannot lock it: {e}",
                    path.display()
                )));
            }
        }
    }
}

/// Opens (or creates, 0600) the lock file at `path`, refusing anything but
/// a plain file of its own.
fn open(path: &Path) -> Result<File, Error> {
    let remove_it = "remove it when no poolwright run is going on: poolwright makes its own";
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        // A symlink is never followed (the holder line would be written
        // through it into another file), a FIFO cannot block the open, and
        // no program poolwright starts inherits the lock.
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => Error::message(format!(
                "{}: is a symbolic link; poolwright does not follow a lock file",
                path.display()
            ))
            .with_hint(remove_it),
            Some(nix::libc::EACCES) => Error::io(path, &e).with_hint(
                "the lock file belongs to another user (a run with sudo?): run poolwright as that user, or remove the file when no poolwright run is going on",
            ),
            _ => Error::io(path, &e),
        })?;
    let meta = file.metadata().map_err(|e| Error::io(path, &e))?;
    // A FIFO or device, or a hard link to some other file, would get the
    // holder line written into it.
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(Error::message(format!(
            "{}: is not a plain file (a FIFO, a device or a hard link)",
            path.display()
        ))
        .with_hint(remove_it));
    }
    Ok(file)
}

/// Who holds a lock, as its lock file says: `PID COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: Option<u32>,
    command: String,
}

impl Holder {
    /// Reads the holder line; whatever is there is capped and made
    /// printable, since anyone who may write the directory may write it.
    fn read(path: &Path) -> Holder {
        let bytes = crate::files::read_regular_capped(path, HOLDER_CAP).unwrap_or_default();
        Holder::parse(&String::from_utf8_lossy(&bytes))
    }

    fn parse(text: &str) -> Holder {
        let line = text.lines().next().unwrap_or("").trim();
        let (pid, command) = match line.split_once(' ') {
            Some((pid, rest)) => (pid.parse().ok(), rest.trim()),
            None => (line.parse().ok(), ""),
        };
        let command = if pid.is_some() { command } else { line };
        Holder {
            pid,
            command: printable(command),
        }
    }

    /// `pid 12345 (poolwright apply prod)`
    fn by(&self) -> String {
        match (self.pid, self.command.is_empty()) {
            (Some(pid), true) => format!("pid {pid}"),
            (Some(pid), false) => format!("pid {pid} ({})", self.command),
            (None, _) => "another poolwright run".to_string(),
        }
    }

    /// ` (pid 12345: poolwright apply prod)`, or nothing when unknown (the
    /// holder is between taking the lock and writing its line).
    fn in_parentheses(&self) -> String {
        match (self.pid, self.command.is_empty()) {
            (Some(pid), true) => format!(" (pid {pid})"),
            (Some(pid), false) => format!(" (pid {pid}: {})", self.command),
            (None, _) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by_another_open(dir: &Path, line: &str) -> Flock<File> {
        let file = open(&dir.join(FILE_NAME)).unwrap();
        let locked = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        locked.write_all_at(line.as_bytes(), 0).unwrap();
        locked
    }

    #[test]
    fn lock_a_second_run_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().to_path_buf()];
        let held = acquire_all(&dirs, "poolwright apply prod", Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = acquire_all(&dirs, "poolwright render", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "did not wait"
        );
        let want = format!(
            "another poolwright run holds the lock on {} (pid {}: poolwright apply prod)",
            dir.path().canonicalize().unwrap().display(),
            std::process::id()
        );
        assert!(err.contains(&want), "{err}");
        assert!(err.contains("wait for it to finish, or stop it"), "{err}");
        // Released: the next run gets it, and a finished run leaves it empty.
        drop(held);
        let again = acquire_all(&dirs, "poolwright render", Duration::ZERO).unwrap();
        drop(again);
        assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), b"");
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn lock_the_holder_line_is_printable() {
        let dir = tempfile::tempdir().unwrap();
        let _held = held_by_another_open(dir.path(), "42 poolwright \x1b[31mapply\n\nmore");
        let err = acquire_all(&[dir.path().into()], "x", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(pid 42: poolwright \\u{1b}[31mapply)"),
            "{err}"
        );
        assert!(!err.contains('\x1b'), "{err}");
    }

    #[test]
    fn lock_a_symlinked_lock_file_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("precious");
        std::fs::write(&elsewhere, "keep me").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(FILE_NAME)).unwrap();
        let err = acquire_all(&[dir.path().into()], "x", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep me");
    }

    #[test]
    fn lock_a_hard_linked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("precious");
        std::fs::write(&elsewhere, "keep me").unwrap();
        std::fs::hard_link(&elsewhere, dir.path().join(FILE_NAME)).unwrap();
        let err = acquire_all(&[dir.path().into()], "x", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a plain file"), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep me");
    }

    #[test]
    fn lock_one_directory_named_twice_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("out");
        let link = dir.path().join("link");
        std::fs::create_dir(&sub).unwrap();
        std::os::unix::fs::symlink(&sub, &link).unwrap();
        let dirs = [sub.join("."), link, sub.clone(), dir.path().into()];
        let locks = acquire_all(&dirs, "x", Duration::ZERO).unwrap();
        assert_eq!(locks.len(), 2);
    }

    #[test]
    fn lock_a_missing_directory_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        let _locks = acquire_all(std::slice::from_ref(&out), "x", Duration::ZERO).unwrap();
        assert!(out.join(FILE_NAME).is_file());
    }

    #[test]
    fn lock_wait_comes_from_the_environment() {
        let env = |value: &'static str| move |name: &str| (name == WAIT_VAR).then(|| value.into());
        assert_eq!(wait_from(&|_| None).unwrap(), DEFAULT_WAIT);
        assert_eq!(wait_from(&env("")).unwrap(), DEFAULT_WAIT);
        assert_eq!(wait_from(&env("0.5")).unwrap(), Duration::from_millis(500));
        assert_eq!(wait_from(&env("0")).unwrap(), Duration::ZERO);
        for bad in ["soon", "-1", "NaN", "1e9"] {
            let err = wait_from(&env(bad)).unwrap_err().to_string();
            assert!(err.contains(WAIT_VAR), "{bad}: {err}");
        }
    }

    #[test]
    fn lock_holder_lines_parse() {
        let h = |t: &str| Holder::parse(t).by();
        assert_eq!(h("7 poolwright env prod\n"), "pid 7 (poolwright env prod)");
        assert_eq!(h("7"), "pid 7");
        assert_eq!(h(""), "another poolwright run");
        assert_eq!(Holder::parse("junk").in_parentheses(), "");
    }
}
