//! Never overwriting a file that someone changed by hand.
//!
//! Each directory poolwright writes into gets a record,
//! `.poolwright-written` (JSON), of the SHA-256 of every file poolwright last
//! wrote there. Before writing, each file that exists is compared with the
//! record: a file whose bytes poolwright wrote (or is about to write) is
//! safe to replace; any other file is a conflict, and then nothing at all
//! is written unless the user passes `--force`, which keeps each replaced
//! file beside it as `NAME.bak`.
//!
//! The record is written in two steps so that a kill at any moment leaves
//! no false conflict behind: before the files, the record accepts both the
//! old and the new hashes; after them, only the new. It is 0600 because a
//! hash of a file with plain passwords (`userlist: plain`) could be used to
//! test guesses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::files::{read_host_file, write_atomic, write_new};

/// The record's file name, in each directory poolwright writes into.
// No `.json` ending: `kubectl apply -f DIR` reads every .json and .yaml
// file in DIR, and the record sits beside the Kubernetes manifests.
pub const RECORD_NAME: &str = ".poolwright-written";

/// A file about to be written.
pub struct Planned<'a> {
    pub path: PathBuf,
    pub bytes: &'a [u8],
}

/// Why an existing file may not be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// poolwright wrote it, and it has changed since.
    Edited(PathBuf),
    /// poolwright never wrote it (no record of it).
    NotOurs(PathBuf),
}

impl Conflict {
    pub fn path(&self) -> &Path {
        match self {
            Conflict::Edited(p) | Conflict::NotOurs(p) => p,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    about: String,
    /// File name -> the hex SHA-256 of each version poolwright may have
    /// left there (two only while a write is under way).
    #[serde(default)]
    files: BTreeMap<String, Vec<String>>,
}

const ABOUT: &str = "written by poolwright: the SHA-256 of each file it wrote here, so a file changed by hand is not overwritten without --force";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_record(dir: &Path) -> Record {
    // An unreadable or damaged record protects nothing: every existing file
    // then counts as not ours, which errs on the side of asking.
    read_host_file(&dir.join(RECORD_NAME))
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_record(dir: &Path, record: &Record) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(record).expect("a record serialises");
    text.push('\n');
    let path = dir.join(RECORD_NAME);
    if read_host_file(&path).is_ok_and(|old| old.as_deref() == Some(text.as_bytes())) {
        return Ok(());
    }
    write_atomic(&path, text.as_bytes(), 0o600, None)
}

/// The existing files among `planned` that may not be replaced. A path
/// that holds something other than a small regular file (a FIFO, a link to
/// a device) is an error: poolwright neither reads it nor replaces it.
fn conflicts(planned: &[Planned<'_>]) -> Result<Vec<Conflict>, Error> {
    let mut records: BTreeMap<PathBuf, Record> = BTreeMap::new();
    let mut found = Vec::new();
    for file in planned {
        let current = match read_host_file(&file.path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            // Unreadable for lack of permission: the write reports that.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => continue,
            Err(e) => {
                return Err(Error::io(&file.path, &e).with_hint(
                    "poolwright writes only regular files: remove what is there, or choose another path",
                ));
            }
        };
        if current == file.bytes {
            continue;
        }
        let dir = dir_of(&file.path);
        let record = records
            .entry(dir.clone())
            .or_insert_with(|| read_record(&dir));
        found.extend(judge(&file.path, &current, record));
    }
    Ok(found)
}

/// Whether `current`, the bytes at `path`, are what `record` says
/// poolwright left there.
fn judge(path: &Path, current: &[u8], record: &Record) -> Option<Conflict> {
    match record.files.get(&name_of(path)) {
        Some(hashes) if hashes.contains(&sha256_hex(current)) => None,
        Some(_) => Some(Conflict::Edited(path.to_path_buf())),
        None => Some(Conflict::NotOurs(path.to_path_buf())),
    }
}

/// Whether the file at `path` changed since poolwright last wrote it, as
/// far as can be told without the new bytes (for `plan`, which has no
/// passwords): it exists and is not what the record holds.
pub fn changed_since_written(path: &Path) -> Option<Conflict> {
    let current = read_host_file(path).ok().flatten()?;
    judge(path, &current, &read_record(&dir_of(path)))
}

impl Conflict {
    /// What happened to the file, in a few words.
    pub fn describe(&self) -> &'static str {
        match self {
            Conflict::Edited(_) => "changed since poolwright wrote it",
            Conflict::NotOurs(_) => "not written by poolwright",
        }
    }
}

/// The error for `conflicts`, naming each file as the user knows it
/// (`shown` maps a path to its display form).
fn conflict_error(conflicts: &[Conflict], shown: impl Fn(&Path) -> String) -> Error {
    let mut text = format!(
        "{} changed by hand, so nothing was written:",
        match conflicts.len() {
            1 => "a file poolwright would replace was".to_string(),
            n => format!("{n} files poolwright would replace were"),
        }
    );
    for c in conflicts {
        text.push_str(&format!("\n  {}: {}", shown(c.path()), c.describe()));
    }
    Error::message(text).with_hint(
        "move the change into poolwright.yaml (or a --templates override) and run again, \
         or pass --force to replace the files (each one is kept as NAME.bak first)",
    )
}

/// The check before writing `planned`: a conflict stops the run (the error
/// names each file as `shown` gives it) unless `force`, which keeps each
/// such file as `NAME.bak` first. Returns the backups made.
pub fn guard(
    planned: &[Planned<'_>],
    force: bool,
    shown: impl Fn(&Path) -> String,
) -> Result<Vec<PathBuf>, Error> {
    let found = conflicts(planned)?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    if !force {
        return Err(conflict_error(&found, shown));
    }
    back_up(&found)
}

/// How many numbered backups (`NAME.bak.1`, ...) `--force` tries before it
/// gives up: a directory with this many is a sign to clean up, not to go on.
const MAX_BACKUPS: u32 = 1000;

/// With `--force`: copies each conflicting file beside it (same mode),
/// returning the backups' paths. An earlier backup is never overwritten:
/// the first free name of `NAME.bak`, `NAME.bak.1`, `NAME.bak.2`, ... is
/// taken, unless one of them already holds exactly these bytes.
fn back_up(conflicts: &[Conflict]) -> Result<Vec<PathBuf>, Error> {
    let mut backups = Vec::new();
    for c in conflicts {
        let path = c.path();
        let bytes = read_host_file(path)
            .map_err(|e| Error::io(path, &e))?
            .unwrap_or_default();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(path)
                .map_err(|e| Error::io(path, &e))?
                .permissions(),
        ) & 0o7777;
        backups.push(keep_copy(path, &bytes, mode)?);
    }
    Ok(backups)
}

/// Writes `bytes` to the first free backup name of `path` (see `back_up`).
fn keep_copy(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, Error> {
    let name = name_of(path);
    for n in 0..MAX_BACKUPS {
        let backup = path.with_file_name(match n {
            0 => format!("{name}.bak"),
            n => format!("{name}.bak.{n}"),
        });
        match read_host_file(&backup) {
            Ok(Some(existing)) if existing == bytes => return Ok(backup),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            // Something that is no regular file holds the name: skip it.
            Err(_) => continue,
        }
        match write_new(&backup, bytes, mode) {
            Ok(()) => return Ok(backup),
            // Another run took the name in between: try the next one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&backup, &e)),
        }
    }
    Err(Error::message(format!(
        "{} already has {MAX_BACKUPS} backups beside it; nothing was written",
        path.display()
    ))
    .with_hint("remove the old NAME.bak files you no longer need and run again"))
}

/// Step one, before writing: the record accepts the old and the new bytes.
pub fn record_intent(planned: &[Planned<'_>]) -> Result<(), Error> {
    update_records(planned, true)
}

/// Step two, after writing: the record holds only what was written.
pub fn record_done(planned: &[Planned<'_>]) -> Result<(), Error> {
    update_records(planned, false)
}

fn update_records(planned: &[Planned<'_>], keep_old: bool) -> Result<(), Error> {
    let mut by_dir: BTreeMap<PathBuf, Vec<&Planned<'_>>> = BTreeMap::new();
    for file in planned {
        by_dir.entry(dir_of(&file.path)).or_default().push(file);
    }
    for (dir, files) in by_dir {
        let mut record = read_record(&dir);
        record.about = ABOUT.to_string();
        for file in files {
            let new = sha256_hex(file.bytes);
            let hashes = record.files.entry(name_of(&file.path)).or_default();
            if keep_old {
                if let Ok(Some(current)) = read_host_file(&file.path) {
                    let old = sha256_hex(&current);
                    if !hashes.contains(&old) {
                        hashes.push(old);
                    }
                }
                if !hashes.contains(&new) {
                    hashes.push(new);
                }
            } else {
                *hashes = vec![new];
            }
        }
        crate::dirs::create_dirs(&dir, 0o755, None).map_err(|e| Error::io(&dir, &e))?;
        write_record(&dir, &record).map_err(|e| Error::io(&dir.join(RECORD_NAME), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plan<'a>(path: &Path, bytes: &'a [u8]) -> Vec<Planned<'a>> {
        vec![Planned {
            path: path.to_path_buf(),
            bytes,
        }]
    }

    fn write_through(path: &Path, bytes: &[u8]) {
        let planned = plan(path, bytes);
        assert_eq!(conflicts(&planned).unwrap(), vec![]);
        record_intent(&planned).unwrap();
        write_atomic(path, bytes, 0o644, None).unwrap();
        record_done(&planned).unwrap();
    }

    #[test]
    fn a_file_poolwright_wrote_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        write_through(&path, b"one");
        assert_eq!(conflicts(&plan(&path, b"two")).unwrap(), vec![]);
        write_through(&path, b"two");
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn a_hand_edit_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        write_through(&path, b"one");
        fs::write(&path, b"one, edited").unwrap();
        assert_eq!(
            conflicts(&plan(&path, b"two")).unwrap(),
            vec![Conflict::Edited(path.clone())]
        );
        // Unless the edit is exactly what would be written anyway.
        assert_eq!(conflicts(&plan(&path, b"one, edited")).unwrap(), vec![]);
    }

    #[test]
    fn plan_tells_a_changed_file_without_the_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        assert_eq!(changed_since_written(&path), None, "absent");
        fs::write(&path, b"mine").unwrap();
        assert_eq!(
            changed_since_written(&path),
            Some(Conflict::NotOurs(path.clone()))
        );
        fs::remove_file(&path).unwrap();
        write_through(&path, b"one");
        assert_eq!(changed_since_written(&path), None);
        fs::write(&path, b"one, edited").unwrap();
        assert_eq!(
            changed_since_written(&path),
            Some(Conflict::Edited(path.clone()))
        );
    }

    #[test]
    fn a_file_poolwright_never_wrote_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("userlist.txt");
        fs::write(&path, b"\"a\" \"b\"\n").unwrap();
        assert_eq!(
            conflicts(&plan(&path, b"\"a\" \"c\"\n")).unwrap(),
            vec![Conflict::NotOurs(path.clone())]
        );
    }

    #[test]
    fn a_kill_between_the_steps_leaves_no_false_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        write_through(&path, b"one");
        // Killed after step one, before or after the file was written:
        let planned = plan(&path, b"two");
        record_intent(&planned).unwrap();
        assert_eq!(conflicts(&plan(&path, b"three")).unwrap(), vec![]);
        write_atomic(&path, b"two", 0o644, None).unwrap();
        assert_eq!(conflicts(&plan(&path, b"three")).unwrap(), vec![]);
        // Once done, the old version no longer counts as ours.
        record_done(&planned).unwrap();
        fs::write(&path, b"one").unwrap();
        assert_eq!(
            conflicts(&plan(&path, b"three")).unwrap(),
            vec![Conflict::Edited(path.clone())]
        );
    }

    #[test]
    fn the_record_is_private_and_a_backup_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("userlist.txt");
        write_through(&path, b"x");
        let record = dir.path().join(RECORD_NAME);
        assert_eq!(
            fs::metadata(&record).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, b"edited").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let backups = back_up(&conflicts(&plan(&path, b"y")).unwrap()).unwrap();
        assert_eq!(backups, vec![dir.path().join("userlist.txt.bak")]);
        assert_eq!(fs::read(&backups[0]).unwrap(), b"edited");
        assert_eq!(
            fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn force_never_overwrites_an_earlier_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        fs::write(dir.path().join("pgbouncer.ini.bak"), b"the first hand edit").unwrap();
        fs::write(&path, b"the second hand edit").unwrap();
        let found = conflicts(&plan(&path, b"new")).unwrap();
        let first = back_up(&found).unwrap();
        assert_eq!(first, vec![dir.path().join("pgbouncer.ini.bak.1")]);
        assert_eq!(
            fs::read(dir.path().join("pgbouncer.ini.bak")).unwrap(),
            b"the first hand edit"
        );
        assert_eq!(fs::read(&first[0]).unwrap(), b"the second hand edit");
        // The same bytes again: the copy already kept is enough.
        assert_eq!(back_up(&found).unwrap(), first);
    }

    #[test]
    fn a_fifo_in_place_of_a_file_stops_the_write_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("userlist.txt");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = guard(&plan(&path, b"x"), true, |p| p.display().to_string()).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        let record = dir.path().join(RECORD_NAME);
        nix::unistd::mkfifo(&record, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // A record that is no file protects nothing, and is not waited on.
        assert_eq!(read_record(dir.path()).files.len(), 0);
    }

    #[test]
    fn the_error_names_every_file() {
        let e = conflict_error(
            &[
                Conflict::Edited(PathBuf::from("/o/pgbouncer.ini")),
                Conflict::NotOurs(PathBuf::from("/o/userlist.txt")),
            ],
            |p| p.display().to_string(),
        );
        let text = e.render();
        assert!(text.contains("2 files poolwright would replace were changed by hand"));
        assert!(text.contains("/o/pgbouncer.ini: changed since poolwright wrote it"));
        assert!(text.contains("/o/userlist.txt: not written by poolwright"));
        assert!(text.contains("--force"));
    }
}
