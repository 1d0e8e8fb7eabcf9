//! PgBouncer's admin console: which PgBouncer runs (`SHOW VERSION`), with
//! which settings (`SHOW CONFIG`, `SHOW DATABASES`) and how full its pools
//! are (`SHOW POOLS`).
//!
//! The console speaks the simple query protocol only, and admits the users
//! in `admin_users` (everything) and `stats_users` (SHOW only), checked
//! against the auth_file like any client; verify logs in as the first of
//! them that has a password under `users:`.

use std::collections::BTreeMap;

use super::connect::{Session, Table};
use super::drift::{self, Moved, Running};
use super::{Check, Status};
use crate::providers::pgbouncer::setting::SettingValue;
use crate::providers::pgbouncer::version::Version;
use crate::providers::pgbouncer::{Target, User, budget, processes};

/// The user verify logs in to the console as: the first `admin_users`,
/// then `stats_users`, entry that is one of the target's users.
pub fn console_user(target: &Target) -> Option<&User> {
    ["admin_users", "stats_users"]
        .iter()
        .filter_map(|key| match target.setting(key) {
            Some(SettingValue::List(items)) => Some(items.clone()),
            Some(SettingValue::Text(text)) => {
                Some(text.split(',').map(|s| s.trim().to_string()).collect())
            }
            _ => None,
        })
        .flatten()
        .find_map(|name| target.user(&name))
}

/// `SHOW VERSION` against the target's `version:`.
pub async fn version(console: &Session, target: &Target) -> Check {
    let text = match console.value("SHOW VERSION").await {
        Ok(t) => t,
        Err(e) => {
            return Check::warn("version", format!("SHOW VERSION failed: {e}"), None);
        }
    };
    let running = text
        .trim()
        .strip_prefix("PgBouncer ")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<Version>().ok());
    match running {
        Some(v) if v == target.version => Check::pass(
            "version",
            format!(
                "{}, as poolwright.yaml says (version: \"{}\")",
                text.trim(),
                target.version
            ),
        ),
        Some(v) => Check::fail(
            "version",
            format!(
                "{} runs, but poolwright.yaml says version: \"{}\"",
                text.trim(),
                target.version
            ),
            format!(
                "set `version: \"{v}\"` in target {} so poolwright writes the settings this PgBouncer has (and refuses the ones it lacks), then `poolwright apply {}`; or run PgBouncer {} as the file says",
                target.name, target.name, target.version
            ),
        ),
        None => Check::warn(
            "version",
            format!("cannot read a version from SHOW VERSION: {text:?}"),
            None,
        ),
    }
}

/// `SHOW CONFIG` and `SHOW DATABASES` against what poolwright renders.
pub async fn config(console: &Session, target: &Target) -> Check {
    let table = match console.table("SHOW CONFIG").await {
        Ok(t) => t,
        Err(e) => return Check::warn("config", format!("SHOW CONFIG failed: {e}"), None),
    };
    let mut running = BTreeMap::new();
    for row in &table.rows {
        if let (Some(key), Some(value)) = (table.get(row, "key"), table.get(row, "value")) {
            running.insert(
                key.to_string(),
                Running {
                    value: value.to_string(),
                    changeable: table.get(row, "changeable") != Some("no"),
                },
            );
        }
    }
    // With several processes each sets its own socket dir, pidfile, logfile
    // and peer_id; the one that answered cannot be told from the others.
    let shared: Vec<_> = target
        .settings
        .iter()
        .filter(|s| target.processes < 2 || !processes::PER_PROCESS.contains(&s.name.as_str()))
        .cloned()
        .collect();
    let comparison = drift::compare(&shared, &running);

    // The file on this host, when verify runs where PgBouncer does: it
    // tells whether the file or the process moved away from the YAML.
    let ini_path = target
        .host_files()
        .first()
        .map(|(_, path, _)| path.clone())
        .unwrap_or_default();
    let file = crate::files::read_host_text(std::path::Path::new(&ini_path))
        .ok()
        .flatten()
        .map(|t| {
            // pgbouncer-N.ini of `processes: N` includes the shared file.
            let includes = |path: &str| {
                crate::files::read_host_text(std::path::Path::new(path))
                    .ok()
                    .flatten()
            };
            drift::ini_section(&t, target.quoted_keys(), &includes)
        });

    let mut problems = Vec::new();
    let mut restart = Vec::new();
    let mut moved_file = false;
    let mut not_reloaded = false;
    for d in &comparison.drifts {
        let configured = target.setting(&d.key).expect("compared settings exist");
        let mut line = format!(
            "{} = {} (poolwright.yaml: {})",
            d.key,
            shown(&d.running),
            shown(&d.configured)
        );
        if let Some(file) = &file {
            match drift::which_moved(d, configured, file) {
                Moved::File => {
                    moved_file = true;
                    line.push_str(&format!(", and {ini_path} says {} too", shown(&d.running)));
                }
                Moved::NotReloaded => {
                    not_reloaded = true;
                    line.push_str(&format!(
                        ", while {ini_path} already says {}",
                        shown(&d.configured)
                    ));
                }
                Moved::Unknown => {}
            }
        }
        if d.needs_restart {
            restart.push(d.key.clone());
        }
        problems.push(line);
    }
    let databases = databases(console, target).await;
    let compared_dbs = databases.as_ref().map_or(0, |(n, _)| *n);
    if let Ok((_, db_problems)) = &databases {
        problems.extend(db_problems.iter().cloned());
    }

    if problems.is_empty() {
        let mut detail = format!(
            "the running PgBouncer matches poolwright.yaml: {} settings and {compared_dbs} database{} compared",
            comparison.compared,
            if compared_dbs == 1 { "" } else { "s" }
        );
        if let Err(e) = &databases {
            detail.push_str(&format!(" (SHOW DATABASES failed: {e})"));
        }
        return Check::pass("config", detail);
    }
    let mut cause = if moved_file {
        "pgbouncer.ini was edited by hand, or written from an older poolwright.yaml".to_string()
    } else if not_reloaded {
        "pgbouncer.ini is current but PgBouncer did not reload it".to_string()
    } else {
        "PgBouncer runs with settings poolwright.yaml does not have".to_string()
    };
    if file.is_none() {
        cause.push_str(&format!(" ({ini_path} is not readable here)"));
    }
    let name = &target.name;
    let mut fix = if not_reloaded && !moved_file {
        "reload PgBouncer: systemctl reload pgbouncer (or kill -HUP its pid)".to_string()
    } else if moved_file {
        // apply refuses a hand-edited file without --force (hand_edits.rs).
        format!(
            "run `poolwright apply {name} --force` on PgBouncer's host: it rewrites pgbouncer.ini from poolwright.yaml (keeping the edited one as pgbouncer.ini.bak) and reloads PgBouncer (or, to keep the running values, write them into poolwright.yaml)"
        )
    } else {
        format!(
            "run `poolwright apply {name}` on PgBouncer's host: it rewrites pgbouncer.ini from poolwright.yaml and reloads PgBouncer (or, to keep the running values, write them into poolwright.yaml)"
        )
    };
    if !restart.is_empty() {
        fix.push_str(&format!(
            "; {} change{} only at start: then systemctl restart pgbouncer",
            restart.join(", "),
            if restart.len() == 1 { "s" } else { "" }
        ));
    }
    Check::fail(
        "config",
        format!(
            "drift: {} differ{} from poolwright.yaml: {}; {cause}",
            problems.len(),
            if problems.len() == 1 { "s" } else { "" },
            problems.join("; ")
        ),
        fix,
    )
}

/// An empty value shown as such, so `x =  (poolwright.yaml: y)` reads right.
fn shown(value: &str) -> String {
    if value.is_empty() {
        "(empty)".into()
    } else {
        value.to_string()
    }
}

/// `SHOW DATABASES`: each target database present, pointing where the YAML
/// says. Returns how many were compared and what differs.
async fn databases(console: &Session, target: &Target) -> Result<(usize, Vec<String>), String> {
    let table = console.table("SHOW DATABASES").await?;
    let mut problems = Vec::new();
    for db in &target.databases {
        let row = table
            .rows
            .iter()
            .find(|r| table.get(r, "name") == Some(db.name.as_str()));
        let Some(row) = row else {
            problems.push(format!("database {} is missing from [databases]", db.name));
            continue;
        };
        for (column, want) in [
            ("database", db.dbname.clone()),
            ("port", db.port.to_string()),
        ] {
            let got = table.get(row, column).unwrap_or("");
            if got != want {
                problems.push(format!(
                    "database {}: {column} {} (poolwright.yaml: {want})",
                    db.name,
                    shown(got)
                ));
            }
        }
    }
    Ok((target.databases.len(), problems))
}

/// Server connections of the pools of `target` from `SHOW POOLS`: (open,
/// active). The console's own pool (`pgbouncer`) is left out.
pub fn server_connections(table: &Table, target: &Target) -> (u64, u64) {
    let mut open = 0;
    let mut active = 0;
    for row in &table.rows {
        let Some(db) = table.get(row, "database") else {
            continue;
        };
        if target.database(db).is_none() {
            continue;
        }
        let n = |c: &str| {
            table
                .get(row, c)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        active += n("sv_active");
        open += n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login");
    }
    (open, active)
}

/// `SHOW POOLS` for the URL's pool: its mode, server connections and
/// waiting clients.
pub async fn pools(console: &Session, target: &Target) -> Check {
    let table = match console.table("SHOW POOLS").await {
        Ok(t) => t,
        Err(e) => return Check::warn("pools", format!("SHOW POOLS failed: {e}"), None),
    };
    let (db, user) = (&target.url_database, &target.url_user);
    let row = table.rows.iter().find(|r| {
        table.get(r, "database") == Some(db.as_str()) && table.get(r, "user") == Some(user.as_str())
    });
    let Some(row) = row else {
        return Check::warn(
            "pools",
            format!("SHOW POOLS has no pool {db}/{user} (a pool appears with its first client)"),
            None,
        );
    };
    let n = |c: &str| {
        table
            .get(row, c)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mode = table.get(row, "pool_mode").unwrap_or("?").to_string();
    let open = n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login");
    let cap = budget::compute(target)
        .pools
        .iter()
        .find(|p| p.database == db && p.user == user)
        .and_then(budget::Pool::total)
        .map_or_else(|| "unlimited".to_string(), |c| c.to_string());
    let waiting = n("cl_waiting");
    let detail = format!(
        "{db}/{user}: {mode} mode, {open} server connection{} open ({} active, {} idle) of {cap} allowed, {} client{} active, {waiting} waiting",
        if open == 1 { "" } else { "s" },
        n("sv_active"),
        n("sv_idle") + n("sv_used"),
        n("cl_active"),
        if n("cl_active") == 1 { "" } else { "s" },
    );
    let want = target.url_pool_mode();
    if mode != want {
        return Check::fail(
            "pools",
            format!("{detail}; poolwright.yaml says {want} mode"),
            format!(
                "run `poolwright apply {}` so PgBouncer pools {db}/{user} in {want} mode",
                target.name
            ),
        );
    }
    if waiting > 0 {
        return Check {
            status: Status::Warn,
            check: "pools".into(),
            detail: format!("{detail} (longest wait {} s)", n("maxwait")),
            fix: Some(
                "clients wait for a server connection: raise the pool size if the server has room, or find long transactions that hold connections".into(),
            ),
        };
    }
    Check::pass("pools", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pgbouncer: &str) -> Target {
        let yaml = format!(
            "version: 1\ntargets:\n  prod:\n    provider: pgbouncer\n    upstream: {{ host: db }}\n    public_host: db\n    databases: {{ d: {{}}, e: {{}} }}\n    users: {{ app: {{ password: \"${{P}}\" }}, mon: {{ password: \"${{P}}\" }}, boss: {{ password: \"${{P}}\" }} }}\n    pgbouncer: {{ {pgbouncer} }}\n"
        );
        let env = |k: &str| (k == "P").then(|| "x".to_string());
        let config = crate::config::parse(std::path::Path::new("poolwright.yaml"), yaml, &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let target = config.targets.into_iter().next().unwrap();
        crate::verify::self_hosted(&target)
            .expect("a pgbouncer target")
            .clone()
    }

    #[test]
    fn the_console_user_is_the_first_admin_then_stats_user() {
        let name = |t: &Target| console_user(t).map(|u| u.name.clone());
        assert_eq!(
            name(&target("stats_users: [mon], admin_users: [boss]")),
            Some("boss".into())
        );
        assert_eq!(name(&target("stats_users: [mon]")), Some("mon".into()));
        assert_eq!(name(&target("pool_mode: session")), None);
    }

    #[test]
    fn server_connections_count_the_targets_pools_only() {
        let columns = [
            "database",
            "user",
            "sv_active",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
        ];
        let row = |cells: [&str; 7]| cells.iter().map(|c| Some(c.to_string())).collect();
        let table = Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![
                row(["d", "app", "2", "3", "1", "0", "1"]),
                row(["e", "app", "1", "0", "0", "0", "0"]),
                row(["pgbouncer", "pgbouncer", "0", "0", "0", "0", "0"]),
                row(["other", "app", "9", "9", "9", "9", "9"]),
            ],
        };
        assert_eq!(server_connections(&table, &target("")), (8, 3));
    }
}
