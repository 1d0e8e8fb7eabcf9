//! Writing files so that nothing is ever half-written or lost.
//!
//! Every write goes to a temporary file in the same directory, is flushed
//! to disk, gets its mode set explicitly (so the umask cannot widen it), and
//! is renamed over the target: a reader sees the old file or the new one,
//! never a mix. Rewrites keep an existing file's owner, group and mode.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Changed,
    Unchanged,
}

/// Ownership to give a newly created file: (uid, gid).
pub type Owner = Option<(u32, u32)>;

/// Writes `bytes` to `path` atomically with exactly `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, owner: Owner) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".poolwright-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // Mode before content reaches its name, so a secret is never readable by others.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
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
            if fs::read(path)? == bytes {
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
    fn a_secret_file_never_stays_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("userlist.txt");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_if_changed(&path, b"new", 0o600, None, true).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }
}
