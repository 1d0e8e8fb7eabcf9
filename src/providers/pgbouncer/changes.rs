//! Reload or restart? What changes between the files on the host and the
//! ones poolwright would write, and whether PgBouncer can take it with a
//! reload (SIGHUP / RELOAD) or must be restarted.
//!
//! PgBouncer ignores a change to some settings on reload (`CF_NO_RELOAD` in
//! its src/main.c: listen_addr, listen_port, unix_socket_dir, pidfile,
//! so_reuseport, ...); the manifest marks them `restart = true`.

use std::collections::BTreeMap;

use super::Target;

/// The `[pgbouncer]` settings of an ini text, as PgBouncer reads it (a
/// header-less file, like pgbouncer-common.ini, counts as `[pgbouncer]`),
/// with `%include`s of files in `included` spliced in. A file PgBouncer
/// could not read gives no settings, so every restart-only setting the new
/// files hold counts as changed: a restart, the safe side.
fn pgbouncer_settings(
    text: &str,
    included: &BTreeMap<String, String>,
    quoted_keys: bool,
) -> BTreeMap<String, String> {
    super::ini_reader::pgbouncer_section(text, quoted_keys, &|path| included.get(path).cloned())
        .unwrap_or_default()
}

/// What applying the new files means for a running PgBouncer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// No PgBouncer config on the host yet: start it.
    Start,
    Nothing,
    Reload,
    /// These settings change and a reload ignores them.
    Restart(Vec<String>),
}

/// Compares the config files on the host (`old`: host path -> text, where
/// present) with the rendered ones (`new`: host path -> text).
pub fn effect(
    target: &Target,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Effect {
    // The first process's ini (or the only one) stands for all: the shared
    // settings are the same for every process.
    let main = target
        .host_files()
        .into_iter()
        .find(|(name, _, _)| name == "pgbouncer.ini" || name == "pgbouncer-1.ini")
        .map(|(_, path, _)| path)
        .unwrap_or_default();
    let Some(old_main) = old.get(&main) else {
        return Effect::Start;
    };
    let configs_changed = new.iter().any(|(path, text)| old.get(path) != Some(text));
    if !configs_changed {
        return Effect::Nothing;
    }
    let before = pgbouncer_settings(old_main, old, target.quoted_keys());
    let after = pgbouncer_settings(
        new.get(&main).map_or("", String::as_str),
        new,
        target.quoted_keys(),
    );
    let mut restart: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .filter(|k| target.facts.setting(k).is_some_and(|spec| spec.restart))
        .cloned()
        .collect();
    restart.sort();
    restart.dedup();
    if restart.is_empty() {
        Effect::Reload
    } else {
        Effect::Restart(restart)
    }
}

/// The systemd units of the target, as `systemctl` takes them.
fn units(target: &Target) -> String {
    if target.processes < 2 {
        "pgbouncer".into()
    } else {
        (1..=target.processes)
            .map(|k| format!("pgbouncer@{k}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the user (or `apply`) does about `effect`, in one line.
pub fn describe(target: &Target, effect: &Effect) -> String {
    let units = units(target);
    match effect {
        Effect::Start => {
            format!("start PgBouncer: systemctl daemon-reload && systemctl enable --now {units}")
        }
        Effect::Nothing => "PgBouncer's config does not change".into(),
        Effect::Reload => {
            let pids = super::processes::pidfiles(target);
            if pids.is_empty() {
                format!("reload PgBouncer: systemctl reload {units}")
            } else {
                format!(
                    "reload PgBouncer if it runs (SIGHUP to the pid in {})",
                    pids.join(", ")
                )
            }
        }
        Effect::Restart(keys) => format!(
            "restart PgBouncer: {} change{}, which a reload does not apply (systemctl restart {units})",
            keys.join(", "),
            if keys.len() == 1 { "s" } else { "" }
        ),
    }
}

/// The config files of `target` that exist on this host: path -> text.
pub fn host_texts(target: &Target) -> BTreeMap<String, String> {
    target
        .host_files()
        .into_iter()
        .filter(|(name, _, _)| name.ends_with(".ini"))
        .filter_map(|(_, path, _)| {
            let text = crate::files::read_host_text(std::path::Path::new(&path)).ok()??;
            Some((path, text))
        })
        .collect()
}

/// The rendered config files: path -> text.
pub fn rendered_texts(files: &[super::render::RenderedFile]) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|f| f.name.ends_with(".ini"))
        .map(|f| {
            (
                f.host_path.clone(),
                String::from_utf8_lossy(&f.bytes).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(yaml_extra: &str) -> Target {
        let yaml = format!(
            "version: 1\ntargets:\n  t:\n    provider: pgbouncer\n    config_dir: /cfg\n    upstream: {{ host: db }}\n    databases: {{ d: {{}} }}\n    users: {{ u: {{ password: x }} }}\n{yaml_extra}"
        );
        let config = crate::config::parse(std::path::Path::new("p.yaml"), yaml, &|_| None).unwrap();
        let crate::providers::ProviderTarget::PgBouncer(t) =
            config.targets.into_iter().next().unwrap().provider
        else {
            panic!("a pgbouncer target")
        };
        t
    }

    fn files(t: &Target) -> BTreeMap<String, String> {
        let templates = crate::render::Templates::load(None).unwrap();
        rendered_texts(&super::super::render::render_configs(t, &templates, "p.yaml").unwrap())
    }

    #[test]
    fn start_reload_or_restart() {
        let before = target("    pgbouncer: { default_pool_size: 10 }\n");
        let old = files(&before);
        assert_eq!(effect(&before, &BTreeMap::new(), &old), Effect::Start);
        assert_eq!(effect(&before, &old, &old), Effect::Nothing);
        let pool = target("    pgbouncer: { default_pool_size: 12 }\n");
        assert_eq!(effect(&pool, &old, &files(&pool)), Effect::Reload);
        let port = target("    pgbouncer: { default_pool_size: 12, listen_port: 7000 }\n");
        assert_eq!(
            effect(&port, &old, &files(&port)),
            Effect::Restart(vec!["listen_port".into()])
        );
        assert!(
            describe(&port, &Effect::Restart(vec!["listen_port".into()]))
                .contains("listen_port changes")
        );
    }

    #[test]
    fn several_processes_compare_through_the_shared_file() {
        let two = target("    processes: 2\n    pgbouncer: { default_pool_size: 10 }\n");
        let old = files(&two);
        assert_eq!(effect(&two, &old, &old), Effect::Nothing);
        let moved = target(
            "    processes: 2\n    pgbouncer: { default_pool_size: 10, listen_port: 7000 }\n",
        );
        assert_eq!(
            effect(&moved, &old, &files(&moved)),
            Effect::Restart(vec!["listen_port".into()])
        );
        assert!(describe(&moved, &Effect::Start).ends_with("enable --now pgbouncer@1 pgbouncer@2"));
    }

    #[test]
    fn reads_pgbouncer_settings_with_includes() {
        let common = "; shared\nlisten_port = 6432\npool_mode = transaction\n".to_string();
        let included =
            BTreeMap::from([("/etc/pgbouncer/pgbouncer-common.ini".to_string(), common)]);
        let ini = "[databases]\nlisten_port = 1\n[pgbouncer]\n%include /etc/pgbouncer/pgbouncer-common.ini\npidfile = /run/p-1.pid\n[peers]\n1 = host=/x\n";
        let settings = pgbouncer_settings(ini, &included, false);
        assert_eq!(
            settings.get("listen_port").map(String::as_str),
            Some("6432")
        );
        assert_eq!(
            settings.get("pidfile").map(String::as_str),
            Some("/run/p-1.pid")
        );
        assert!(!settings.contains_key("1"));
        assert_eq!(settings.len(), 3);
    }
}
