//! `poolwright env TARGET`: merge DATABASE_URL (and DIRECT_URL) into .env.
//!
//! Only the keys asked for change, in place; every other byte stays (see
//! envfile.rs). A new file is created with mode 0600; an existing one keeps
//! its mode, unless others could read it: a file holding a password is
//! then made owner-only (see [`private_mode`]). `--check` changes nothing
//! and exits 1 when the file is stale or open to others.

use std::os::unix::fs::PermissionsExt as _;

use super::load;
use crate::cli::{Cli, EnvArgs};
use crate::context::Context;
use crate::envfile::{Change, masked_old_value, merge};
use crate::error::Error;
use crate::files::write_if_changed;
use crate::outputs::{check_key, show, variables};
use crate::render::Templates;

pub fn run(cli: &Cli, ctx: &Context, args: &EnvArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let templates = Templates::load(None)?;
    let file = match &args.file {
        Some(f) if f.is_relative() => ctx.cwd.join(f),
        Some(f) => f.clone(),
        None => {
            let config_dir = config.path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = config_dir.map_or_else(|| ctx.cwd.clone(), |d| ctx.cwd.join(d));
            dir.join(".env")
        }
    };
    // Before .env is read, so two runs cannot each merge into the old text
    // (see lock.rs); --check only reads, and writes are atomic renames.
    let dirs = Vec::from_iter(file.parent().map(std::path::Path::to_path_buf));
    let _locks = if args.check {
        crate::lock::Locks::default()
    } else {
        super::lock(ctx, "env", std::slice::from_ref(&args.target), &dirs)?
    };
    let shown = args.file.clone().unwrap_or_else(|| {
        config
            .path
            .parent()
            .map_or_else(|| ".env".into(), |d| d.join(".env"))
    });
    check_key("--key", &args.key)?;
    if let Some(direct) = &args.direct_key {
        check_key("--direct-key", direct)?;
    }
    let vars = variables(
        target,
        args.driver,
        &args.key,
        args.direct_key.as_deref(),
        &templates,
    )?;
    let mut values = Vec::new();
    for (key, url) in &vars {
        values.push((key.as_str(), show(url, true, &config)?));
    }
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let existing = match crate::files::read_host_file(&file) {
        Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|_| {
            Error::message(format!(
                "{} is not UTF-8 text; poolwright will not rewrite it",
                shown.display()
            ))
        })?,
        Ok(None) => String::new(),
        Err(e) => return Err(Error::io(&shown, &e)),
    };
    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let note = format!(
        "(driver {})",
        args.driver
            .unwrap_or_else(crate::drivers::default_driver)
            .name
    );
    let merged = merge(&existing, &target.name, &note, &pairs, &names);
    for change in &merged.changes {
        let line = match change {
            Change::Added { key } => format!("added {key}"),
            Change::Replaced { key, old } => {
                format!("replaced {key} (was {})", masked_old_value(old))
            }
            Change::Unchanged { key } => format!("{key} unchanged"),
            Change::Removed { key, target: owner } if owner == &target.name => {
                format!("removed {key} (target `{owner}` no longer needs it)")
            }
            Change::Removed { key, target: owner } => {
                format!("removed {key} (target `{owner}` is gone)")
            }
        };
        eprintln!("{}: {line}", shown.display());
    }
    let stale = merged.text != existing;
    // A file that holds (or will hold) a password and that others can open.
    let holds_secret = vars.iter().any(|(_, url)| url.password.is_some());
    let open = match std::fs::metadata(&file) {
        Ok(meta) if holds_secret => private_mode(meta.permissions().mode()),
        _ => None,
    };
    if args.check {
        if stale {
            if let Some((was, _)) = open {
                eprintln!(
                    "{}: {} ({was:04o}) and holds a password",
                    shown.display(),
                    open_to_others(was)
                );
            }
            return Err(Error::message(format!(
                "{} is out of date for target `{}`",
                shown.display(),
                target.name
            ))
            .with_hint(format!("run `poolwright env {}` to update it", target.name)));
        }
        if let Some((was, now)) = open {
            return Err(Error::message(format!(
                "{} is {} ({was:04o}) and holds a password",
                shown.display(),
                open_to_others(was)
            ))
            .with_hint(format!(
                "run `poolwright env {}` to make it {now:04o}",
                target.name
            )));
        }
        eprintln!("{}: up to date", shown.display());
        return Ok(());
    }
    if let Some((was, now)) = open {
        // Before the new value is written: it is never readable by others.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(now)).map_err(|e| {
            Error::message(format!(
                "{} is {} ({was:04o}) and cannot be made private: {e}",
                shown.display(),
                open_to_others(was)
            ))
            .with_hint(format!(
                "chmod 600 {} (as its owner), then run this again",
                shown.display()
            ))
        })?;
        eprintln!(
            "note: {} was {} ({was:04o}); it is now {now:04o}",
            shown.display(),
            open_to_others(was)
        );
    }
    if stale {
        if let Some(dir) = file.parent() {
            crate::dirs::create_dirs(dir, 0o755, None).map_err(|e| Error::io(dir, &e))?;
        }
        write_if_changed(&file, merged.text.as_bytes(), 0o600, None, false)
            .map_err(|e| Error::io(&shown, &e))?;
    }
    Ok(())
}

/// The mode an existing file holding a password gets, as (was, now), when
/// others have any access to it: the owner's bits only. A file open to
/// others was never made private, so its group access is the umask's
/// (0644, 0664), not a choice, and goes too; a file open to its group but
/// closed to others (0640) was made so on purpose and keeps its mode.
fn private_mode(mode: u32) -> Option<(u32, u32)> {
    let was = mode & 0o7777;
    (was & 0o007 != 0).then_some((was, was & 0o700))
}

fn open_to_others(mode: u32) -> &'static str {
    if mode & 0o004 != 0 {
        "readable by others"
    } else {
        "open to others"
    }
}

#[cfg(test)]
mod tests {
    use super::private_mode;

    #[test]
    fn only_files_open_to_others_are_made_private() {
        assert_eq!(private_mode(0o100644), Some((0o644, 0o600)));
        assert_eq!(private_mode(0o664), Some((0o664, 0o600)));
        assert_eq!(private_mode(0o602), Some((0o602, 0o600)));
        assert_eq!(private_mode(0o755), Some((0o755, 0o700)));
        assert_eq!(private_mode(0o640), None);
        assert_eq!(private_mode(0o600), None);
    }
}
