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
use crate::files::write_atomic;

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
    fs::read(dir.join(RECORD_NAME))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_record(dir: &Path, record: &Record) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(record).expect("a record serialises");
    text.push('\n');
    let path = dir.join(RECORD_NAME);
    if fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    write_atomic(&path, text.as_bytes(), 0o600, None)
}

/// The existing files among `planned` that may not be replaced.
fn conflicts(planned: &[Planned<'_>]) -> Vec<Conflict> {
    let mut records: BTreeMap<PathBuf, Record> = BTreeMap::new();
    let mut found = Vec::new();
    for file in planned {
        let Ok(current) = fs::read(&file.path) else {
            continue; // absent (or unreadable: the write reports that)
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
    found
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
    let current = fs::read(path).ok()?;
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
    let found = conflicts(planned);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    if !force {
        return Err(conflict_error(&found, shown));
    }
    back_up(&found)
}

/// With `--force`: copies each conflicting file to `NAME.bak` (same mode),
/// returning the backups' paths.
fn back_up(conflicts: &[Conflict]) -> Result<Vec<PathBuf>, Error> {
    let mut backups = Vec::new();
    for c in conflicts {
        let path = c.path();
        let bytes = fs::read(path).map_err(|e| Error::io(path, &e))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(path)
                .map_err(|e| Error::io(path, &e))?
                .permissions(),
        ) & 0o7777;
        let backup = path.with_file_name(format!("{}.bak", name_of(path)));
        write_atomic(&backup, &bytes, mode, None).map_err(|e| Error::io(&backup, &e))?;
        backups.push(backup);
    }
    Ok(backups)
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
                if let Ok(current) = fs::read(&file.path) {
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
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, &e))?;
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
        assert_eq!(conflicts(&planned), vec![]);
        record_intent(&planned).unwrap();
        write_atomic(path, bytes, 0o644, None).unwrap();
        record_done(&planned).unwrap();
    }

    #[test]
    fn a_file_poolwright_wrote_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgbouncer.ini");
        write_through(&path, b"one");
        assert_eq!(conflicts(&plan(&path, b"two")), vec![]);
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
            conflicts(&plan(&path, b"two")),
            vec![Conflict::Edited(path.clone())]
        );
        // Unless the edit is exactly what would be written anyway.
        assert_eq!(conflicts(&plan(&path, b"one, edited")), vec![]);
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
            conflicts(&plan(&path, b"\"a\" \"c\"\n")),
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
        assert_eq!(conflicts(&plan(&path, b"three")), vec![]);
        write_atomic(&path, b"two", 0o644, None).unwrap();
        assert_eq!(conflicts(&plan(&path, b"three")), vec![]);
        // Once done, the old version no longer counts as ours.
        record_done(&planned).unwrap();
        fs::write(&path, b"one").unwrap();
        assert_eq!(
            conflicts(&plan(&path, b"three")),
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
        let backups = back_up(&conflicts(&plan(&path, b"y"))).unwrap();
        assert_eq!(backups, vec![dir.path().join("userlist.txt.bak")]);
        assert_eq!(fs::read(&backups[0]).unwrap(), b"edited");
        assert_eq!(
            fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777,
            0o640
        );
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
