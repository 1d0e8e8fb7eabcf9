//! Rendering a PgBouncer target: pgbouncer.ini, userlist.txt and
//! pgbouncer.service, from the templates and one typed context each.

use std::collections::HashMap;

use serde::Serialize;

pub use super::ini_context::ini_context;
use super::ini_context::{KeyLine, NameValue, name_values};
pub use super::rendered_file::RenderedFile;
use super::{Target, UserlistFormat, budget, processes, systemd_escape};
use crate::diagnostic::Diagnostics;
use crate::error::Error;
use crate::render::Templates;
use crate::scram;
use crate::userlist;

#[derive(Serialize)]
pub struct UserlistContext<'a> {
    pub target: &'a str,
    pub format: &'static str,
    pub users: Vec<UserSecret>,
}

#[derive(Serialize)]
pub struct UserSecret {
    pub name: String,
    pub secret: String,
}

/// The shared settings file of a multi-process target (no section header).
#[derive(Serialize)]
pub struct CommonContext<'a> {
    pub target: &'a str,
    pub source: &'a str,
    pub version: String,
    pub processes: u32,
    pub settings: Vec<NameValue>,
}

/// One process's ini of a multi-process target.
#[derive(Serialize)]
pub struct ProcessContext<'a> {
    pub target: &'a str,
    pub source: &'a str,
    pub version: String,
    pub index: u32,
    pub processes: u32,
    /// Absolute path of the shared settings file.
    pub common: String,
    pub databases: Vec<KeyLine>,
    pub users: Vec<KeyLine>,
    /// This process's own [pgbouncer] keys.
    pub settings: Vec<NameValue>,
    /// `[peers]` lines; empty before PgBouncer 1.19.
    pub peers: Vec<NameValue>,
    /// Set when this version cannot route cancel requests between processes.
    pub cancel_note: Option<String>,
}

/// The unit's context. Every value is prepared in Rust for where the
/// built-in templates put it (see [`systemd_escape`]), so a `--templates`
/// override that writes `ExecStart={{ binary }} {{ config_path }}` is
/// escaped too.
#[derive(Serialize)]
pub struct ServiceContext {
    /// In comments and Description=: specifiers escaped, control
    /// characters shown (target names hold neither).
    pub target: String,
    /// The config's file name, for comments.
    pub source: String,
    /// User= and Group=: specifiers escaped.
    pub user: String,
    pub group: String,
    /// ExecStart='s executable: one word, escaped and quoted as needed.
    pub binary: String,
    /// ExecStart='s argument: the ini's path (with `%i` for the instance
    /// when multi-process), one word, escaped and quoted as needed.
    pub config_path: String,
    /// The same path as plain text, for comments.
    pub config_file: String,
    /// For comments.
    pub unit_dir: String,
    pub max_client_conn: i64,
    pub limit_nofile: u64,
    /// Multi-process: how many instances, and the systemd RuntimeDirectory
    /// that holds each one's Unix socket (when it lives under /run), one
    /// entry, escaped.
    pub processes: u32,
    pub runtime_directory: Option<String>,
}

/// File descriptors PgBouncer may need: every client, every server
/// connection, and a margin for logs, sockets and the admin console.
pub fn limit_nofile(target: &Target) -> u64 {
    if let Some(n) = target.systemd.limit_nofile {
        return n;
    }
    let clients =
        u64::try_from(target.int_setting("max_client_conn").unwrap_or(100)).unwrap_or(100);
    let servers = budget::compute(target).total.unwrap_or(clients);
    (clients + servers + 100).max(1024)
}

/// The userlist secrets: a known verifier (the server's, or the one in
/// userlist.txt on the host) is kept while it matches the password, so every
/// pooler for a role converges on one verifier and re-renders are
/// byte-identical; otherwise a new one is made with a salt from `salt`.
fn user_secrets(
    target: &Target,
    previous: &HashMap<String, String>,
    salt: &mut dyn FnMut() -> [u8; scram::SALT_LEN],
) -> Result<Vec<UserSecret>, Error> {
    let mut missing = Vec::new();
    let mut out = Vec::new();
    for user in &target.users {
        let password = match user.password.expose() {
            Ok(p) => p,
            Err(d) => {
                missing.push(*d);
                continue;
            }
        };
        let secret = match target.userlist {
            UserlistFormat::Plain => password.to_string(),
            UserlistFormat::Md5 => scram::md5_secret(&user.name, password),
            UserlistFormat::Scram => match previous.get(&user.name) {
                Some(old) if scram::matches(old, password) => old.clone(),
                _ => scram::verifier(password, &salt(), scram::DEFAULT_ITERATIONS),
            },
        };
        out.push(UserSecret {
            name: user.name.clone(),
            secret,
        });
    }
    if !missing.is_empty() {
        return Err(Error::Config(Diagnostics {
            source: None,
            items: missing,
        }));
    }
    Ok(out)
}

/// The user → secret pairs of a userlist.txt's text (none when unreadable).
pub fn known_secrets(existing_userlist: Option<&str>) -> HashMap<String, String> {
    existing_userlist
        .and_then(|text| userlist::parse(text).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.user, e.secret))
        .collect()
}

/// Renders the target's files. `existing_userlist` is the current
/// userlist.txt, whose verifiers are reused while they still match.
pub fn render(
    target: &Target,
    templates: &Templates,
    source: &str,
    existing_userlist: Option<&str>,
    salt: &mut dyn FnMut() -> [u8; scram::SALT_LEN],
) -> Result<Vec<RenderedFile>, Error> {
    render_with(
        target,
        templates,
        source,
        &known_secrets(existing_userlist),
        salt,
    )
}

/// [`render`] with the verifiers to reuse given as user → secret.
pub fn render_with(
    target: &Target,
    templates: &Templates,
    source: &str,
    known: &HashMap<String, String>,
    salt: &mut dyn FnMut() -> [u8; scram::SALT_LEN],
) -> Result<Vec<RenderedFile>, Error> {
    let users = user_secrets(target, known, salt)?;
    let format = match target.userlist {
        UserlistFormat::Scram => "SCRAM-SHA-256 verifiers",
        UserlistFormat::Md5 => "md5 hashes",
        UserlistFormat::Plain => "plain-text passwords",
    };
    let userlist = templates.render(
        "pgbouncer/userlist.txt.tera",
        &UserlistContext {
            target: &target.name,
            format,
            users,
        },
    )?;
    render_files(target, templates, source, Some(userlist))
}

/// The files without secrets (the inis and the unit), for `plan`: no
/// password needed.
pub fn render_configs(
    target: &Target,
    templates: &Templates,
    source: &str,
) -> Result<Vec<RenderedFile>, Error> {
    render_files(target, templates, source, None)
}

/// The unit template for this target (one process or a template unit).
fn unit_template(target: &Target) -> &'static str {
    if target.processes < 2 {
        "pgbouncer/pgbouncer.service.tera"
    } else {
        "pgbouncer/pgbouncer@.service.tera"
    }
}

/// The unit's context: the values from the config, escaped for systemd.
pub fn service_context(target: &Target, source: &str) -> ServiceContext {
    use systemd_escape::{comment, directory, executable, specifiers};
    let socket_base = target.text_setting("unix_socket_dir").unwrap_or("");
    let runtime_directory = ["/run/", "/var/run/"]
        .iter()
        .find_map(|prefix| socket_base.strip_prefix(prefix))
        .map(|rest| {
            directory(&format!(
                "{}/pgbouncer-%i",
                specifiers(rest.trim_end_matches('/'))
            ))
        });
    // The ini's path as unit text: the config's part literal, `%i` the
    // instance.
    let config_path = if target.processes < 2 {
        specifiers(&format!("{}/pgbouncer.ini", target.config_dir))
    } else {
        format!("{}/pgbouncer-%i.ini", specifiers(&target.config_dir))
    };
    let config_file = if target.processes < 2 {
        format!("{}/pgbouncer.ini", target.config_dir)
    } else {
        format!("{}/pgbouncer-%i.ini", target.config_dir)
    };
    ServiceContext {
        target: comment(&specifiers(&target.name)),
        source: comment(source),
        user: specifiers(&target.systemd.user),
        group: specifiers(&target.systemd.group),
        binary: executable(&target.systemd.binary),
        config_path: systemd_escape::argument(&config_path),
        config_file: comment(&config_file),
        unit_dir: comment(&target.systemd.unit_dir),
        max_client_conn: target.int_setting("max_client_conn").unwrap_or(100),
        limit_nofile: limit_nofile(target),
        processes: target.processes,
        runtime_directory,
    }
}

fn render_files(
    target: &Target,
    templates: &Templates,
    source: &str,
    userlist: Option<String>,
) -> Result<Vec<RenderedFile>, Error> {
    let host = target.host_files();
    let version = target.version.to_string();
    // (text, holds secrets), in the order of host_files().
    let mut texts = Vec::new();
    if target.processes < 2 {
        texts.push((
            templates.render("pgbouncer/pgbouncer.ini.tera", &ini_context(target, source))?,
            false,
        ));
    } else {
        let common_path = format!("{}/pgbouncer-common.ini", target.config_dir);
        let common = CommonContext {
            target: &target.name,
            source,
            version: version.clone(),
            processes: target.processes,
            settings: name_values(&processes::common_settings(target)),
        };
        texts.push((
            templates.render("pgbouncer/pgbouncer-common.ini.tera", &common)?,
            false,
        ));
        let sections = ini_context(target, source);
        let peers: Vec<NameValue> = processes::peers(target)
            .into_iter()
            .map(|(id, connstr)| NameValue {
                name: id.to_string(),
                value: connstr,
            })
            .collect();
        for p in processes::processes(target) {
            let context = ProcessContext {
                target: &target.name,
                source,
                version: version.clone(),
                index: p.index,
                processes: target.processes,
                common: common_path.clone(),
                databases: sections.databases.clone(),
                users: sections.users.clone(),
                settings: name_values(&p.settings),
                peers: peers.clone(),
                cancel_note: processes::cancel_note(target),
            };
            texts.push((
                templates.render("pgbouncer/pgbouncer-process.ini.tera", &context)?,
                false,
            ));
        }
    }
    // An empty text stands for a userlist.txt that is not rendered.
    let userlist_slot = texts.len();
    texts.push((userlist.unwrap_or_default(), true));
    texts.push((
        templates.render(unit_template(target), &service_context(target, source))?,
        false,
    ));
    debug_assert_eq!(host.len(), texts.len());
    let rendered_userlist = !texts[userlist_slot].0.is_empty();
    let kubernetes = match (&target.kubernetes, rendered_userlist) {
        (Some(k), true) => super::kubernetes_manifests::render(
            target,
            k,
            templates,
            source,
            &texts[userlist_slot].0,
        )?,
        _ => Vec::new(),
    };
    let mut files: Vec<RenderedFile> = host
        .into_iter()
        .zip(texts)
        .enumerate()
        .filter(|(i, _)| *i != userlist_slot || rendered_userlist)
        .map(
            |(_, ((name, host_path, mode), (text, secret)))| RenderedFile {
                name,
                host_path,
                bytes: text.into_bytes(),
                mode,
                secret,
            },
        )
        .collect();
    files.extend(kubernetes);
    Ok(files)
}
