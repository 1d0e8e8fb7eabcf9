//! Writing files so that nothing is ever half-written or lost.
//!
//! Every write goes to a temporary file in the same directory, is flushed
//! to disk, gets its mode set explicitly (so the umask cannot widen it), and
//! is renamed over the target: a reader sees the old file or the new one,
//! never a mix. Rewrites keep an existing file's owner, group and mode. A
//! temporary file that a killed run left behind is removed by a later write
//! into the same directory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Changed,
    Unchanged,
}

/// Ownership to give a newly created file: (uid, gid).
pub type Owner = Option<(u32, u32)>;

/// The names of poolwright's temporary files: `.poolwright-tmp-` and a
/// random suffix.
const TEMP_PREFIX: &str = ".poolwright-tmp-";

/// How old a temporary file must be before it counts as left behind by a
/// killed run (rather than being written by one running now).
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Removes the temporary files a killed run left in `dir` (they may hold
/// secrets, 0600, and would pile up); best effort.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_AFTER);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A temporary file in `path`'s directory holding `bytes` with exactly
/// `mode` and `owner`, flushed to disk, ready to be given its name.
fn prepared<'p>(
    path: &'p Path,
    bytes: &[u8],
    mode: u32,
    owner: Owner,
) -> std::io::Result<(tempfile::NamedTempFile, &'p Path)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    remove_stale_temporaries(dir);
    // tempfile creates it 0600, so content never sits readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // Mode before content reaches its name, so a secret is never readable by others.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    tmp.as_file().sync_all()?;
    Ok((tmp, dir))
}

/// Makes the rename into `dir` itself durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically with exactly `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, owner: Owner) -> std::io::Result<()> {
    let (tmp, dir) = prepared(path, bytes, mode, owner)?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Like [`write_atomic`], but only where nothing has that name yet: an
/// existing file is never replaced (`AlreadyExists`), even by a run that
/// races this one.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let (tmp, dir) = prepared(path, bytes, mode, None)?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Writes `bytes` to `path` only when they differ from what is there.
/// A new file gets `mode` and `owner`; an existing one keeps its owner,
/// group and mode, except that a `secret` file loses any access for others.
pub fn write_if_changed(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Owner,
    secret: bool,
) -> std::io::Result<Written> {
    match fs::metadata(path) {
        Ok(meta) => {
            if read_host_file(path)?.as_deref() == Some(bytes) {
                if let Some(dir) = path.parent() {
                    remove_stale_temporaries(dir);
                }
                return Ok(Written::Unchanged);
            }
            let mut keep = meta.mode() & 0o7777;
            if secret {
                keep &= 0o750;
            }
            let same_owner = (meta.uid(), meta.gid());
            let owner = if nix::unistd::geteuid().is_root() {
                Some(same_owner)
            } else {
                None
            };
            write_atomic(path, bytes, keep, owner)?;
            Ok(Written::Changed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(path, bytes, mode, owner)?;
            Ok(Written::Created)
        }
        Err(e) => Err(e),
    }
}

/// The most poolwright reads back of any file on the host that it did not
/// just write itself in this run (its state, hand-edit records, rendered
/// files, `.env`, templates, manifests): far above any real one, far below
/// what would exhaust memory when a path names `/dev/zero` or a huge file.
pub const HOST_FILE_CAP: u64 = 16 * 1024 * 1024;

/// What a file that is not a regular one is, for an error message.
fn kind_of(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn not_regular(file_type: fs::FileType) -> std::io::Error {
    let kind = kind_of(file_type);
    let text = if kind.starts_with("not") {
        kind.to_string()
    } else {
        format!("is {kind}, not a regular file")
    };
    std::io::Error::new(std::io::ErrorKind::InvalidInput, text)
}

/// The bytes of `path`, which must be a regular file of at most `cap` bytes.
/// The type is checked before opening (so a device is never opened) and
/// again on the opened file (so a swap in between is caught); the open uses
/// O_NONBLOCK, so a FIFO put in its place cannot hang the run, and the read
/// stops after `cap` bytes whatever the size claimed.
pub fn read_regular_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let before = fs::metadata(path)?;
    if !before.is_file() {
        return Err(not_regular(before.file_type()));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let too_long = |n: u64| {
        Error::new(
            ErrorKind::InvalidData,
            format!("is {n} bytes long, more than {cap}"),
        )
    };
    if meta.len() > cap {
        return Err(too_long(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_long(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A host file's bytes (see [`HOST_FILE_CAP`]); `None` when it does not
/// exist. Anything else that is not a small regular file is an error.
pub fn read_host_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match read_regular_capped(path, HOST_FILE_CAP) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`read_host_file`] for text: bytes that are not UTF-8 are an error.
pub fn read_host_text(path: &Path) -> std::io::Result<Option<String>> {
    read_host_file(path)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "is not UTF-8 text")
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_exact_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.txt");
        write_atomic(&path, b"x", 0o600, None).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"x");
        // no temporary files left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rewrites_only_on_change_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(
            write_if_changed(&path, b"a", 0o644, None, false).unwrap(),
            Written::Created
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            write_if_changed(&path, b"a", 0o644, None, false).unwrap(),
            Written::Unchanged
        );
        assert_eq!(
            write_if_changed(&path, b"b", 0o644, None, false).unwrap(),
            Written::Changed
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn temporaries_of_a_killed_run_are_removed_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".poolwright-tmp-AbC123");
        let fresh = dir.path().join(".poolwright-tmp-XyZ789");
        let other = dir.path().join(".poolwright-written");
        for p in [&old, &fresh, &other] {
            fs::write(p, "x").unwrap();
        }
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        for p in [&old, &other] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        write_atomic(&dir.path().join("f"), b"y", 0o644, None).unwrap();
        assert!(!old.exists(), "a stale temporary stayed");
        assert!(fresh.exists(), "a running write's temporary was removed");
        assert!(other.exists(), "a file that is no temporary was removed");
    }

    #[test]
    fn a_secret_file_never_stays_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("userlist.txt");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_if_changed(&path, b"new", 0o600, None, true).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn special_files_are_refused_at_once_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("state.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_host_file(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "is a FIFO (named pipe), not a regular file");
        let zero = dir.path().join("userlist.txt");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_host_text(&zero).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = write_if_changed(&zero, b"x", 0o600, None, true).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert_eq!(
            read_host_file(&dir.path().join("absent")).unwrap(),
            None,
            "a missing file is no error"
        );
    }

    #[test]
    fn a_read_stops_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; 100]).unwrap();
        let e = read_regular_capped(&path, 99).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(read_regular_capped(&path, 100).unwrap().len(), 100);
    }
}
