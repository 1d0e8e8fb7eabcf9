//! `apply` for a self-hosted PgBouncer: the only place with side effects.
//!
//! 1. Write pgbouncer.ini, userlist.txt and pgbouncer.service to their
//!    places on this host, each only when its bytes change, atomically,
//!    keeping owner, group and mode of files that exist. A file changed by
//!    hand stops the target before anything happens, unless `--force`.
//! 2. With stored verifiers (`userlist: scram` or `md5`), make userlist.txt
//!    and the upstream server hold the same secret (`credentials`): the
//!    server's own verifier when it fits the password, else the rendered one
//!    stored with `ALTER ROLE name PASSWORD 'verifier'`, connected as that
//!    role with its own password (no superuser needed).
//! 3. Send SIGHUP to the PgBouncer whose pid is in `pidfile`, if one runs,
//!    so it re-reads both files.

use std::path::{Path, PathBuf};

use super::changes::{self, Effect};
use super::render::{RenderedFile, known_secrets, render_with};
use super::{Target, credentials, processes, reload_signal};
use crate::error::Error;
use crate::files::{Written, write_if_changed};
use crate::hand_edits::{self, Planned};
use crate::render::Templates;
use crate::scram;

/// What `apply` did, line by line, for the user to read.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub changed: bool,
}

fn service_owner(target: &Target) -> Result<Option<(u32, u32)>, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name(&target.systemd.user)
        .ok()
        .flatten()
        .ok_or_else(|| {
            Error::message(format!(
                "the service user `{}` does not exist on this host",
                target.systemd.user
            ))
            .with_hint(
                "create it (Debian's pgbouncer package runs as `postgres`), or set `systemd.user`",
            )
        })?;
    let group = nix::unistd::Group::from_name(&target.systemd.group)
        .ok()
        .flatten()
        .map_or(user.gid.as_raw(), |g| g.gid.as_raw());
    Ok(Some((user.uid.as_raw(), group)))
}

fn write_files(
    files: &[RenderedFile],
    owner: Option<(u32, u32)>,
    report: &mut Report,
) -> Result<(), Error> {
    for file in files.iter().filter(|f| !f.host_path.is_empty()) {
        let path = Path::new(&file.host_path);
        if let Some(dir) = path.parent() {
            crate::dirs::create_dirs(dir, 0o755, None).map_err(|e| Error::io(dir, &e))?;
        }
        // Only the secret file must be readable by the service user alone;
        // the others are world-readable config owned by whoever applies.
        let file_owner = if file.secret { owner } else { None };
        let written = write_if_changed(path, &file.bytes, file.mode, file_owner, file.secret)
            .map_err(|e| Error::io(path, &e).with_hint("apply writes to the target's config_dir; run it as a user that may write there"))?;
        let verb = match written {
            Written::Created => "created",
            Written::Changed => "updated",
            Written::Unchanged => "unchanged",
        };
        if written != Written::Unchanged {
            report.changed = true;
        }
        report.lines.push(format!("{verb} {}", file.host_path));
    }
    Ok(())
}

/// Tells a running PgBouncer to reload, via the pid in its pidfile; only a
/// PgBouncer that runs this target's ini is signalled (`reload_signal`).
fn reload(target: &Target, report: &mut Report) {
    let pidfiles = processes::pidfiles_with_ini(target);
    if pidfiles.is_empty() {
        report
            .lines
            .push("no pidfile set: reload PgBouncer yourself (systemctl reload pgbouncer)".into());
    }
    for (pidfile, ini) in pidfiles {
        report.lines.push(reload_signal::reload(&pidfile, &ini));
    }
}

/// Each process of a multi-process target has its own socket directory;
/// systemd makes those under /run (RuntimeDirectory), apply makes the rest
/// so PgBouncer can also be started by hand. Made and handed to the service
/// user without following a link someone swaps in (`dirs`); 0755, since
/// clients of any user connect through the sockets in it.
fn make_socket_dirs(
    target: &Target,
    owner: Option<(u32, u32)>,
    report: &mut Report,
) -> Result<(), Error> {
    for p in processes::processes(target) {
        let dir = Path::new(&p.unix_socket_dir);
        let made = crate::dirs::create_dirs(dir, 0o755, owner).map_err(|e| Error::io(dir, &e))?;
        if !made.is_empty() {
            report.lines.push(format!("created {}", dir.display()));
        }
    }
    Ok(())
}

/// Applies `target` to this host and its upstream server.
pub async fn apply(
    target: &Target,
    templates: &Templates,
    source: &str,
    salt: &mut dyn FnMut() -> [u8; scram::SALT_LEN],
    force: bool,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let existing = crate::files::read_host_text(Path::new(&target.auth_file))
        .map_err(|e| Error::io(Path::new(&target.auth_file), &e))?;
    // Learn first, change nothing: what the server holds decides what
    // userlist.txt holds, and refuses an md5 hash that would lock a role out.
    let learned = credentials::learn(target, &known_secrets(existing.as_deref())).await?;
    let files = render_with(target, templates, source, &learned.known, salt)?;
    let owner = service_owner(target)?;
    if owner.is_none() {
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name);
        if me.as_deref() != Some(target.systemd.user.as_str()) {
            report.lines.push(format!(
                "note: userlist.txt is owned by you, not by `{}`; PgBouncer running as `{}` needs to read it",
                target.systemd.user, target.systemd.user
            ));
        }
    }
    // Before any effect: a host file changed by hand stops this target.
    let planned: Vec<Planned<'_>> = files
        .iter()
        .filter(|f| !f.host_path.is_empty())
        .map(|f| Planned {
            path: PathBuf::from(&f.host_path),
            bytes: &f.bytes,
        })
        .collect();
    for backup in hand_edits::guard(&planned, force, |p| p.display().to_string())? {
        report
            .lines
            .push(format!("kept the changed file as {}", backup.display()));
    }
    // Server first: if the login fails, PgBouncer keeps its old, working files.
    let userlist = files
        .iter()
        .find(|f| f.secret)
        .expect("render makes a userlist");
    let server_changed =
        credentials::install(target, &learned, userlist, &mut report.lines).await?;
    let before = changes::host_texts(target);
    hand_edits::record_intent(&planned)?;
    write_files(&files, owner, &mut report)?;
    hand_edits::record_done(&planned)?;
    make_socket_dirs(target, owner, &mut report)?;
    let effect = changes::effect(target, &before, &changes::rendered_texts(&files));
    if target.kubernetes.is_some() {
        report.lines.push(
            "the Kubernetes manifests are not applied here: `poolwright render --out DIR` writes them to DIR/kubernetes/ for `kubectl apply -f`".into(),
        );
    }
    if report.changed {
        reload(target, &mut report);
        if matches!(effect, Effect::Restart(_) | Effect::Start) {
            report.lines.push(changes::describe(target, &effect));
        }
    } else if !server_changed {
        report.lines.push("nothing to change".into());
    }
    report.changed |= server_changed;
    Ok(report)
}
