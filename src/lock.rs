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
//! even by kill -9, so a crashed run leaves no stale lock (only a file that
//! the next run takes over). While held, the file names its holder (pid
//! and command) for the message a second run prints.
//!
//! A finished run leaves nothing behind, as a failed command writes
//! nothing: the holder removes the lock file (and a directory it made only
//! for the lock) before it lets go. A run that was waiting on the removed
//! file then holds a lock on a name that no longer exists, so after taking
//! a lock each run checks the name still leads to the file it locked, and
//! starts over if not.

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

/// When a directory to lock cannot be written: the command would write there.
const WRITE_HINT: &str =
    "poolwright writes in this directory: run it as a user that may write there";

/// When something else is where the lock file goes.
const REMOVE_IT: &str = "remove it when no poolwright run is going on: poolwright makes its own";

/// When the lock file exists but this user may not open it.
const OTHER_USER: &str = "the lock file belongs to another user (a run with sudo?): run poolwright as that user, or remove the file when no poolwright run is going on";

/// One held lock: the open lock file and its name.
#[derive(Debug)]
struct Lock {
    file: Flock<File>,
    path: PathBuf,
}

/// The locks of one command; dropping it releases them.
#[derive(Debug, Default)]
pub struct Locks {
    held: Vec<Lock>,
    /// Directories made for a lock, deepest first.
    made: Vec<PathBuf>,
}

impl Drop for Locks {
    fn drop(&mut self) {
        // While still holding (the flocks go with the fds, after this): the
        // name is removed only if it still leads to our file (a person may
        // have removed it and another run made a new one).
        for lock in self.held.iter().rev() {
            if still_named(&lock.file, &lock.path) {
                let _ = std::fs::remove_file(&lock.path);
            }
        }
        // Only an empty directory goes: one the command wrote into stays.
        for dir in &self.made {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// True when `path` still names the file `file` has open.
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
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
/// prod`), waiting at most `wait` in all. A missing directory is made (only
/// commands that would make it anyway lock it), and removed again with the
/// lock if the command put nothing in it.
pub fn acquire_all(dirs: &[PathBuf], command: &str, wait: Duration) -> Result<Locks, Error> {
    let mut locks = Locks::default();
    let mut unique = Vec::new();
    for dir in dirs {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        crate::dirs::create_dirs(dir, 0o755, None)
            .map_err(|e| Error::io(dir, &e).with_hint(WRITE_HINT))?;
        for made in missing {
            locks.made.extend(made.canonicalize().ok());
        }
        // One name per directory: `out`, `./out` and a link to it are one
        // lock, and a run that opened one lock file twice would wait on
        // itself (flocks on two opens of a file exclude each other).
        unique.push(dir.canonicalize().map_err(|e| Error::io(dir, &e))?);
    }
    locks
        .made
        .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    locks.made.dedup();
    // One order for every run: two runs that share some directories take
    // them in the same order, so neither can hold one the other waits for.
    unique.sort();
    unique.dedup();
    let deadline = Instant::now() + wait;
    for dir in &unique {
        // On an error, `locks` drops: what was taken so far is let go.
        let lock = acquire(dir, command, deadline)?;
        locks.held.push(lock);
    }
    Ok(locks)
}

/// Locks `dir`, trying until `deadline`; says once on stderr that it waits.
fn acquire(dir: &Path, command: &str, deadline: Instant) -> Result<Lock, Error> {
    let path = dir.join(FILE_NAME);
    let mut told = false;
    let mut remade = 0;
    loop {
        let Some(file) = open(&path)? else {
            // The holder before us removed the directory it had made, on
            // its way out; make it again (ours to keep, as the command would).
            remade += 1;
            if remade > 100 {
                return Err(Error::message(format!(
                    "{}: removed again each time it is made",
                    dir.display()
                )));
            }
            crate::dirs::create_dirs(dir, 0o755, None)
                .map_err(|e| Error::io(dir, &e).with_hint(WRITE_HINT))?;
            continue;
        };
        let locked = wait_for(file, dir, &path, deadline, &mut told)?;
        if !still_named(&locked, &path) {
            // We waited on a file its holder removed when it finished.
            continue;
        }
        // Best effort: an unnamed holder is still a holder.
        let line = format!("{} {}\n", std::process::id(), printable(command));
        let _ = locked.set_len(0);
        let _ = locked.write_all_at(line.as_bytes(), 0);
        return Ok(Lock { file: locked, path });
    }
}

/// Takes the flock on `file`, trying until `deadline`.
fn wait_for(
    mut file: File,
    dir: &Path,
    path: &Path,
    deadline: Instant,
    told: &mut bool,
) -> Result<Flock<File>, Error> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((unlocked, Errno::EWOULDBLOCK)) => {
                let holder = Holder::read(path);
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::message(format!(
                        "another poolwright run holds the lock on {}{}",
                        printable(&dir.display().to_string()),
                        holder.in_parentheses()
                    ))
                    .with_hint("wait for it to finish, or stop it"));
                }
                if !*told {
                    eprintln!(
                        "waiting for the lock on {}, held by {}",
                        printable(&dir.display().to_string()),
                        holder.by()
                    );
                    *told = true;
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
/// a plain file of its own; `None` when its directory is gone.
fn open(path: &Path) -> Result<Option<File>, Error> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        // A symlink is never followed (the holder line would be written
        // through it into another file), a FIFO cannot block the open, and
        // no program poolwright starts inherits the lock.
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other,
    };
    let file = file.map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ELOOP) => Error::message(format!(
            "{}: is a symbolic link; poolwright does not follow a lock file",
            path.display()
        ))
        .with_hint(REMOVE_IT),
        Some(nix::libc::EACCES) if path.symlink_metadata().is_ok() => {
            Error::io(path, &e).with_hint(OTHER_USER)
        }
        Some(nix::libc::EACCES) => Error::io(path, &e).with_hint(WRITE_HINT),
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
        .with_hint(REMOVE_IT));
    }
    Ok(Some(file))
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
        let (pid, command) = line.split_once(' ').unwrap_or((line, ""));
        Holder {
            pid: pid.parse().ok(),
            command: printable(command.trim()),
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
        let file = open(&dir.join(FILE_NAME)).unwrap().unwrap();
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
        // Released: the next run gets it, and a finished run leaves nothing.
        drop(held);
        let again = acquire_all(&dirs, "poolwright render", Duration::ZERO).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(again);
        assert!(!dir.path().join(FILE_NAME).exists(), "the lock file stayed");
    }

    #[test]
    fn lock_a_run_waiting_on_a_removed_lock_file_takes_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().to_path_buf()];
        let held = acquire_all(&dirs, "first", Duration::ZERO).unwrap();
        // A waiter with the first file open, as a second run has while it waits.
        let stale = open(&dir.path().join(FILE_NAME)).unwrap().unwrap();
        drop(held);
        let waiter = Flock::lock(stale, FlockArg::LockExclusiveNonblock).unwrap();
        assert!(!still_named(&waiter, &dir.path().join(FILE_NAME)));
        // The waiter starts over on the name, which a third run may hold.
        let third = acquire_all(&dirs, "third", Duration::ZERO).unwrap();
        let err = acquire_all(&dirs, "second", Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("third"), "{err}");
        drop(third);
        drop(waiter);
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
        assert_eq!(locks.held.len(), 2);
    }

    #[test]
    fn lock_a_directory_made_for_the_lock_goes_with_it_unless_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        let locks = acquire_all(std::slice::from_ref(&out), "x", Duration::ZERO).unwrap();
        assert!(out.join(FILE_NAME).is_file());
        drop(locks);
        assert!(!dir.path().join("a").exists(), "a failed run left a/b");
        let locks = acquire_all(std::slice::from_ref(&out), "x", Duration::ZERO).unwrap();
        std::fs::write(out.join("pgbouncer.ini"), "x").unwrap();
        drop(locks);
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "only the written file"
        );
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
