//! `apply` for a self-hosted PgBouncer: the only place with side effects.
//!
//! 1. Write pgbouncer.ini, userlist.txt and pgbouncer.service to their
//!    places on this host, each only when its bytes change, atomically,
//!    keeping owner, group and mode of files that exist. A file changed by
//!    hand stops the target before anything happens, unless `--force`.
//! 2. With stored verifiers (`userlist: scram` or `md5`), install on the
//!    upstream server the very verifier userlist.txt holds, so PgBouncer can
//!    pass SCRAM logins through: `ALTER ROLE name PASSWORD 'verifier'`,
//!    connected as that role with its own password (a role may always
//!    change its own password; no superuser needed).
//! 3. Send SIGHUP to the PgBouncer whose pid is in `pidfile`, if one runs,
//!    so it re-reads both files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::changes::{self, Effect};
use super::render::{RenderedFile, render};
use super::{Target, UserlistFormat, processes, reload_signal};
use crate::error::Error;
use crate::files::{Written, write_if_changed};
use crate::hand_edits::{self, Planned};
use crate::render::Templates;
use crate::{scram, scram_probe};

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
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
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

/// Quotes an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Installs each user's stored secret on the upstream server.
async fn install_verifiers(
    target: &Target,
    userlist: &RenderedFile,
    report: &mut Report,
) -> Result<(), Error> {
    let text = String::from_utf8_lossy(&userlist.bytes);
    let entries = crate::userlist::parse(&text)
        .map_err(|e| Error::message(format!("rendered userlist.txt: {e}")))?;
    let database = target
        .database(&target.url_database)
        .map_or(target.url_database.clone(), |d| d.dbname.clone());
    for user in &target.users {
        let Some(entry) = entries.iter().find(|e| e.user == user.name) else {
            continue;
        };
        let secret = &entry.secret;
        let stored = match target.userlist {
            UserlistFormat::Scram => scram::is_verifier(secret),
            UserlistFormat::Md5 => secret.starts_with("md5") && secret.len() == 35,
            UserlistFormat::Plain => false,
        };
        if !stored {
            continue;
        }
        let where_ = format!("{}:{}", target.upstream.host, target.upstream.port);
        if target.userlist == UserlistFormat::Scram {
            // Ask the server which verifier it holds; when it is ours there
            // is nothing to do (and no need to log in at all).
            let probe = scram_probe::probe(
                &target.upstream.host,
                target.upstream.port,
                &user.name,
                &database,
                Duration::from_secs(10),
            );
            if let Ok(scram_probe::Probe::Scram(server)) = &probe
                && scram_probe::same_verifier(secret, server)
            {
                report.lines.push(format!(
                    "the server at {where_} already stores the SCRAM verifier of `{}`",
                    user.name
                ));
                continue;
            }
        }
        // Log in as the role itself, with TLS when the server offers it (or
        // demands it: PgBouncer's server_tls_sslmode says what it expects).
        let mut url =
            crate::url::PgUrl::new(&target.upstream.host, target.upstream.port, &database)
                .with_user(&user.name, Some(user.password.clone()));
        if let Some(mode) = target.text_setting("server_tls_sslmode")
            && matches!(mode, "require" | "verify-ca" | "verify-full")
        {
            url = url.with_param("sslmode", "require");
        }
        let endpoint = crate::verify::connect::Endpoint::from_url(&url)?;
        let session = crate::verify::connect::connect(&endpoint, Duration::from_secs(10))
            .await
            .map_err(|e| {
                Error::message(format!("cannot log in to {where_}/{database} as `{}`: {e}", user.name)).with_hint(
                    "apply logs in as each user with the password from poolwright.yaml; it must be the role's current password. \
                     With `userlist: plain` apply leaves the server alone",
                )
            })?;
        // The verifier holds only base64 characters, `$`, `:` and digits: safe in a literal.
        let sql = format!("ALTER ROLE {} PASSWORD '{secret}'", quote_ident(&user.name));
        let result = session.client.batch_execute(&sql).await;
        session.close().await;
        result.map_err(|e| {
            Error::message(format!(
                "cannot store the verifier of `{}` on {where_}: {}",
                user.name,
                pg_error(&e)
            ))
        })?;
        report.changed = true;
        report.lines.push(format!(
            "stored the {} of role `{}` on {where_}",
            if target.userlist == UserlistFormat::Md5 {
                "md5 hash"
            } else {
                "SCRAM verifier"
            },
            user.name
        ));
    }
    Ok(())
}

/// The server's own message when there is one (tokio-postgres' Display
/// says only "db error").
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
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
/// so PgBouncer can also be started by hand.
fn make_socket_dirs(
    target: &Target,
    owner: Option<(u32, u32)>,
    report: &mut Report,
) -> Result<(), Error> {
    for p in processes::processes(target) {
        let dir = Path::new(&p.unix_socket_dir);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| Error::io(dir, &e))?;
        }
        report.lines.push(format!("created {}", dir.display()));
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
    let existing = match std::fs::read_to_string(&target.auth_file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(Path::new(&target.auth_file), &e)),
    };
    let files = render(target, templates, source, existing.as_deref(), salt)?;
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
    install_verifiers(target, userlist, &mut report).await?;
    let server_changed = std::mem::take(&mut report.changed);
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
