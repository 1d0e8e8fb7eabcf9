//! Creating directories, often as root, so that neither the umask nor a
//! link planted by another user decides what is created or who owns it.
//!
//! `create_dir_all` then `chown(path)` resolves the path twice: between
//! the two, whoever owns the parent directory can replace the new
//! directory with a link to `/etc` and have root hand `/etc` to them. Here
//! each missing directory is made with `mkdirat` under a handle to its
//! parent, opened again with `O_NOFOLLOW` (a link in its place is refused),
//! and its mode and owner are set through that handle. The part of the
//! path that already exists is trusted as it stands (`/var/run` is itself a
//! link to `/run` on Debian); only what this run creates is made safe.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Error, ErrorKind};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, mkdirat};

use crate::files::Owner;

/// A directory, opened for `*at` calls only.
fn open_dir_at(parent: &OwnedFd, name: &OsStr) -> std::io::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|errno| match errno {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => Error::new(
            ErrorKind::InvalidInput,
            "was replaced by a symbolic link or a file while poolwright created it; nothing was changed there",
        ),
        other => Error::from(other),
    })
}

/// Makes `path` and any missing parents, each created one with exactly
/// `mode` (whatever the umask); the last one, when created, gets `owner`.
/// Returns the directories created, outermost first. An existing `path`
/// is left as it is.
pub fn create_dirs(path: &Path, mode: u32, owner: Owner) -> std::io::Result<Vec<PathBuf>> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let existing = path
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || a.exists())
        .unwrap_or(Path::new("/"));
    let missing: Vec<&OsStr> = match path.strip_prefix(existing) {
        Ok(rest) => rest
            .components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(Error::new(
                    ErrorKind::InvalidInput,
                    "has `.` or `..` after its last existing directory",
                )),
            })
            .collect::<Result<_, _>>()?,
        Err(_) => Vec::new(),
    };
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let start = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    let mut dir: OwnedFd = File::open(start)?.into();
    let mut made = Vec::new();
    let mut here = existing.to_path_buf();
    let mode = Mode::from_bits_truncate(mode);
    for (i, name) in missing.iter().enumerate() {
        here.push(name);
        let created = match mkdirat(&dir, *name, mode) {
            Ok(()) => true,
            // Made by a run beside this one: use it, but change nothing.
            Err(nix::errno::Errno::EEXIST) => false,
            Err(errno) => return Err(Error::from(errno)),
        };
        let next = open_dir_at(&dir, name)?;
        if created {
            fchmod(&next, mode)?;
            if i + 1 == missing.len()
                && let Some((uid, gid)) = owner
            {
                std::os::unix::fs::fchown(&next, Some(uid), Some(gid))?;
            }
            made.push(here.clone());
        }
        dir = next;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn each_created_directory_gets_exactly_the_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(Mode::empty());
        let made = create_dirs(&dir.path().join("a/b/c"), 0o750, None);
        nix::sys::stat::umask(old);
        let made = made.unwrap();
        assert_eq!(made.len(), 3);
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&dir.path().join(d)), 0o750, "{d}");
        }
        // Existing: nothing made, nothing changed.
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        assert!(
            create_dirs(&dir.path().join("a/b"), 0o755, None)
                .unwrap()
                .is_empty()
        );
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
    }

    #[test]
    fn an_existing_link_in_the_path_is_followed_a_dot_dot_after_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("run")).unwrap();
        create_dirs(&dir.path().join("run/pgbouncer-1"), 0o755, None).unwrap();
        assert!(dir.path().join("real/pgbouncer-1").is_dir());
        let e = create_dirs(&dir.path().join("new/../x"), 0o755, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn a_link_swapped_in_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("sock")).unwrap();
        // The swap after mkdirat, replayed: open_dir_at meets the link.
        let parent: OwnedFd = File::open(dir.path()).unwrap().into();
        let e = open_dir_at(&parent, OsStr::new("sock")).unwrap_err();
        assert!(e.to_string().contains("replaced by a symbolic link"), "{e}");
    }
}
