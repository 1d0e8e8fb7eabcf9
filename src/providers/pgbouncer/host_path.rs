//! Paths on the PgBouncer host: where `apply` writes (config_dir, auth_file,
//! systemd.unit_dir) and what PgBouncer and systemd open (logfile, pidfile,
//! unix_socket_dir, systemd.binary, TLS files).
//!
//! The rule: absolute, and no `..` component. `apply` writes each file to the
//! path as written, relative to nothing, so a relative path would land
//! wherever the command happens to run (`unit_dir: ../../x` wrote next to
//! the project's parent). `..` is refused because it hides where a path
//! leads: a config from a repository that reads `/etc/pgbouncer/../..`
//! in review writes somewhere else than it seems to. The plan shows every
//! path apply writes; with this rule, what it shows is where it goes.

/// Why `path` is not a plain absolute host path: `(message, hint)`.
/// `relative_hint` explains, for this field, why relative paths cannot work.
pub fn check(path: &str, relative_hint: &str) -> Result<(), (String, String)> {
    if !path.starts_with('/') {
        return Err((
            format!("`{path}` is not an absolute path"),
            relative_hint.to_string(),
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err((
            format!("`{path}` goes up with `..`"),
            format!(
                "write the path it leads to, `{}`: apply writes and PgBouncer reads host paths as written, and `..` hides where they lead",
                lexically_normal(path)
            ),
        ));
    }
    Ok(())
}

/// `path` with `.` and `..` resolved by text alone (no symlinks: the host
/// is not necessarily this machine).
fn lexically_normal(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_absolute_paths_pass() {
        assert!(check("/etc/pgbouncer", "").is_ok());
        assert!(check("/var/run/postgresql/pgbouncer.pid", "").is_ok());
        // `..` inside a name is not a component.
        assert!(check("/srv/a..b/x", "").is_ok());
    }

    #[test]
    fn relative_paths_get_the_fields_own_hint() {
        let (message, hint) = check("../../escape", "why").unwrap_err();
        assert_eq!(message, "`../../escape` is not an absolute path");
        assert_eq!(hint, "why");
    }

    #[test]
    fn dot_dot_is_refused_with_the_path_it_leads_to() {
        let (message, hint) = check("/etc/pgbouncer/../../tmp/./evil", "").unwrap_err();
        assert_eq!(
            message,
            "`/etc/pgbouncer/../../tmp/./evil` goes up with `..`"
        );
        assert!(hint.contains("`/tmp/evil`"), "{hint}");
        assert_eq!(lexically_normal("/../.."), "/");
    }
}
