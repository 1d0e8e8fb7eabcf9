//! `processes: N`: several PgBouncer processes sharing one port.
//!
//! PgBouncer is single-threaded, so one process tops out at one core. With
//! `so_reuseport = 1` several processes listen on the same port and the
//! kernel spreads new connections over them. Each process needs its own
//! Unix socket directory, pidfile and logfile, and (from 1.19 on) its own
//! `peer_id` plus a `[peers]` section naming all of them, so that a cancel
//! request the kernel hands to the wrong process is forwarded to the right
//! one. Layout: `pgbouncer-common.ini` holds the shared `[pgbouncer]`
//! settings *without* a section header (PgBouncer 1.18 resets every
//! `[pgbouncer]` setting when that header appears a second time), and each
//! `pgbouncer-K.ini` includes it by absolute path (a relative `%include` is
//! resolved against PgBouncer's working directory) inside its own
//! `[pgbouncer]` section, then sets its own keys.

use super::Target;
use super::setting::{Setting, SettingValue};
use super::version::Version;

/// The first PgBouncer with `[peers]` and `peer_id`.
pub const PEERS_SINCE: Version = Version::new(1, 19);

/// Settings each process sets for itself; never in the shared file.
pub const PER_PROCESS: &[&str] = &["unix_socket_dir", "pidfile", "logfile", "peer_id"];

/// One process of a multi-process target.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// 1-based, also the `peer_id` and the systemd instance name.
    pub index: u32,
    /// The file name of its ini (`pgbouncer-K.ini`).
    pub ini_name: String,
    pub unix_socket_dir: String,
    pub pidfile: Option<String>,
    /// Its own `[pgbouncer]` keys, after the `%include`.
    pub settings: Vec<Setting>,
}

/// `path` with `-K` before the file name's extension:
/// `/run/pgbouncer.pid` -> `/run/pgbouncer-2.pid`.
pub fn numbered(path: &str, k: u32) -> String {
    let (dir, file) = path.rsplit_once('/').map_or(("", path), |(d, f)| (d, f));
    let numbered = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{k}.{ext}"),
        _ => format!("{file}-{k}"),
    };
    if dir.is_empty() && !path.starts_with('/') {
        numbered
    } else {
        format!("{dir}/{numbered}")
    }
}

fn text(target: &Target, name: &str) -> Option<String> {
    target
        .text_setting(name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The processes of `target` (empty for a single-process target).
pub fn processes(target: &Target) -> Vec<Process> {
    if target.processes < 2 {
        return Vec::new();
    }
    let socket_base =
        text(target, "unix_socket_dir").unwrap_or_else(|| "/var/run/postgresql".into());
    (1..=target.processes)
        .map(|k| {
            let unix_socket_dir = format!("{socket_base}/pgbouncer-{k}");
            let pidfile = text(target, "pidfile").map(|p| numbered(&p, k));
            let mut settings = vec![Setting {
                name: "unix_socket_dir".into(),
                value: SettingValue::Text(unix_socket_dir.clone()),
                span: None,
            }];
            if let Some(p) = &pidfile {
                settings.push(Setting {
                    name: "pidfile".into(),
                    value: SettingValue::Text(p.clone()),
                    span: None,
                });
            }
            if let Some(log) = text(target, "logfile") {
                settings.push(Setting {
                    name: "logfile".into(),
                    value: SettingValue::Text(numbered(&log, k)),
                    span: None,
                });
            }
            if target.version >= PEERS_SINCE {
                settings.push(Setting {
                    name: "peer_id".into(),
                    value: SettingValue::Int(i64::from(k)),
                    span: None,
                });
            }
            Process {
                index: k,
                ini_name: format!("pgbouncer-{k}.ini"),
                unix_socket_dir,
                pidfile,
                settings,
            }
        })
        .collect()
}

/// The shared `[pgbouncer]` settings: everything but the per-process keys.
pub fn common_settings(target: &Target) -> Vec<Setting> {
    target
        .settings
        .iter()
        .filter(|s| !PER_PROCESS.contains(&s.name.as_str()))
        .cloned()
        .collect()
}

/// The `[peers]` lines (`id`, connection string): every process by its
/// own Unix socket. Empty where PgBouncer has no peering.
pub fn peers(target: &Target) -> Vec<(u32, String)> {
    if target.version < PEERS_SINCE {
        return Vec::new();
    }
    processes(target)
        .into_iter()
        .map(|p| {
            (
                p.index,
                format!("host={} port={}", p.unix_socket_dir, target.listen_port()),
            )
        })
        .collect()
}

/// The pidfile of every process (one for a single-process target).
pub fn pidfiles(target: &Target) -> Vec<String> {
    pidfiles_with_ini(target)
        .into_iter()
        .map(|(pidfile, _)| pidfile)
        .collect()
}

/// Each pidfile with the ini its process is started with (config_dir's
/// `pgbouncer.ini`, or `pgbouncer-K.ini` for process K).
pub fn pidfiles_with_ini(target: &Target) -> Vec<(String, String)> {
    let dir = &target.config_dir;
    if target.processes < 2 {
        return text(target, "pidfile")
            .map(|p| (p, format!("{dir}/pgbouncer.ini")))
            .into_iter()
            .collect();
    }
    processes(target)
        .into_iter()
        .filter_map(|p| p.pidfile.map(|pid| (pid, format!("{dir}/{}", p.ini_name))))
        .collect()
}

/// What the user must know about cancel routing on this version.
pub fn cancel_note(target: &Target) -> Option<String> {
    (target.processes > 1 && target.version < PEERS_SINCE).then(|| {
        format!(
            "PgBouncer {} has no [peers]: a cancel request the kernel hands to another process is lost \
             (peering needs 1.19 or later)",
            target.version
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_file_names_before_the_extension() {
        assert_eq!(
            numbered("/var/run/postgresql/pgbouncer.pid", 2),
            "/var/run/postgresql/pgbouncer-2.pid"
        );
        assert_eq!(numbered("/var/log/pgbouncer", 1), "/var/log/pgbouncer-1");
        assert_eq!(numbered("/a.b/log", 3), "/a.b/log-3");
        assert_eq!(numbered("/x/.hidden", 1), "/x/.hidden-1");
    }
}
