//! `poolwright env TARGET`: merge DATABASE_URL (and DIRECT_URL) into .env.
//!
//! Only the keys asked for change, in place; every other byte stays (see
//! envfile.rs). A new file is created with mode 0600; an existing one keeps
//! its mode. `--check` changes nothing and exits 1 when the file is stale.

use super::load;
use super::url::{show, variables};
use crate::cli::{Cli, EnvArgs};
use crate::context::Context;
use crate::envfile::{Change, merge};
use crate::error::Error;
use crate::files::write_if_changed;
use crate::render::Templates;
use crate::url::mask_in_text;

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
    let vars = variables(
        target,
        args.driver.as_deref(),
        &args.key,
        args.direct_key.as_deref(),
        &templates,
    )?;
    let mut values = Vec::new();
    for (key, url) in &vars {
        values.push((key.as_str(), show(url, true, &config)?));
    }
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let existing = match std::fs::read(&file) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            Error::message(format!(
                "{} is not UTF-8 text; poolwright will not rewrite it",
                shown.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(&shown, &e)),
    };
    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let note = format!("(driver {})", args.driver.as_deref().unwrap_or("libpq"));
    let merged = merge(&existing, &target.name, &note, &pairs, &names);
    for change in &merged.changes {
        let line = match change {
            Change::Added { key } => format!("added {key}"),
            Change::Replaced { key, old } => format!("replaced {key} (was {})", mask_in_text(old)),
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
    if args.check {
        if stale {
            return Err(Error::message(format!(
                "{} is out of date for target `{}`",
                shown.display(),
                target.name
            ))
            .with_hint(format!("run `poolwright env {}` to update it", target.name)));
        }
        eprintln!("{}: up to date", shown.display());
        return Ok(());
    }
    if stale {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
        }
        write_if_changed(&file, merged.text.as_bytes(), 0o600, None, false)
            .map_err(|e| Error::io(&shown, &e))?;
    }
    Ok(())
}
