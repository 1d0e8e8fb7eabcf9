//! `poolwright render --out DIR`: write the self-hosted pooler's files.
//!
//! Everything is rendered in memory first; only when every target rendered
//! (all passwords set, templates fine) is anything written, each file
//! atomically. A file changed by hand since poolwright wrote it stops the
//! whole render unless `--force` (see `hand_edits`). Then each target's URL
//! is printed, masked.

use std::path::{Path, PathBuf};

use super::load;
use crate::cli::{Cli, RenderArgs};
use crate::context::Context;
use crate::error::Error;
use crate::files::{Written, write_if_changed};
use crate::hand_edits::{self, Planned};
use crate::plan::KNOWN_AFTER_APPLY;
use crate::providers::pgbouncer::render::{RenderedFile, render};
use crate::render::Templates;

/// The userlist.txt whose verifiers a render may reuse: the one in the
/// output directory, else the one at the target's auth_file on this host.
/// Best effort: a file that is absent, unreadable (the host's one is often
/// the service user's alone) or no regular file only means nothing is
/// reused, never a hang or an error.
fn existing_userlist(out_dir: &Path, auth_file: &str) -> Option<String> {
    let read = |path: &Path| crate::files::read_host_text(path).ok().flatten();
    read(&out_dir.join("userlist.txt")).or_else(|| read(Path::new(auth_file)))
}

/// One target's rendered files and where they go: `dir` on disk, `shown`
/// as the user named it.
struct Output {
    dir: PathBuf,
    shown: PathBuf,
    files: Vec<RenderedFile>,
}

pub fn run(cli: &Cli, ctx: &mut Context, args: &RenderArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let templates = Templates::load(args.templates.as_deref())?;
    let targets = config.select(&args.targets)?;
    let out = if args.out.is_relative() {
        ctx.cwd.join(&args.out)
    } else {
        args.out.clone()
    };
    // Only self-hosted targets have files; the others are listed with their URLs.
    let with_files: Vec<_> = targets
        .iter()
        .filter_map(|t| t.provider.pgbouncer().map(|p| (*t, p)))
        .collect();
    if with_files.is_empty() {
        return Err(Error::message(
            "none of these targets has files to render (only self-hosted PgBouncer targets do)",
        )
        .with_hint("`poolwright url TARGET` prints a managed pooler's URL"));
    }
    let several = with_files.len() > 1;
    let places: Vec<(PathBuf, PathBuf)> = with_files
        .iter()
        .map(|(target, _)| {
            if several {
                (out.join(&target.name), args.out.join(&target.name))
            } else {
                (out.clone(), args.out.clone())
            }
        })
        .collect();
    // Each output directory (its subdirectories go with it), before the
    // userlist.txt there is read for verifiers to reuse.
    let dirs: Vec<PathBuf> = places.iter().map(|(dir, _)| dir.clone()).collect();
    let _locks = super::lock(ctx, "render", &args.targets, &dirs)?;
    let mut outputs = Vec::new();
    let mut missing = Vec::new();
    for ((_, t), (dir, shown)) in with_files.iter().zip(places) {
        let existing = existing_userlist(&dir, &t.auth_file);
        match render(
            t,
            &templates,
            &config.source_name(),
            existing.as_deref(),
            &mut *ctx.salt,
        ) {
            Ok(files) => outputs.push(Output { dir, shown, files }),
            Err(Error::Config(d)) => missing.extend(d.items),
            Err(e) => return Err(e),
        }
    }
    if !missing.is_empty() {
        return Err(config.error(missing));
    }
    let planned: Vec<Planned<'_>> = outputs
        .iter()
        .flat_map(|o| {
            o.files.iter().map(|f| Planned {
                path: o.dir.join(&f.name),
                bytes: &f.bytes,
            })
        })
        .collect();
    let shown = |path: &Path| shown_path(&outputs, path);
    for backup in hand_edits::guard(&planned, args.force, shown)? {
        eprintln!("kept the changed file as {}", shown(&backup));
    }
    hand_edits::record_intent(&planned)?;
    for output in &outputs {
        write_output(output)?;
    }
    hand_edits::record_done(&planned)?;
    for target in &targets {
        let url = target
            .provider
            .pooled_url()
            .map_or_else(|| KNOWN_AFTER_APPLY.to_string(), |u| u.masked());
        println!("{}: {url}", target.name);
    }
    Ok(())
}

/// `path` (under one output's directory) as the user named it.
fn shown_path(outputs: &[Output], path: &Path) -> String {
    outputs
        .iter()
        .find_map(|o| {
            path.strip_prefix(&o.dir)
                .ok()
                .map(|rest| o.shown.join(rest))
        })
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

fn write_output(output: &Output) -> Result<(), Error> {
    crate::dirs::create_dirs(&output.dir, 0o755, None).map_err(|e| Error::io(&output.dir, &e))?;
    for file in &output.files {
        let path = output.dir.join(&file.name);
        if let Some(parent) = path.parent() {
            crate::dirs::create_dirs(parent, 0o755, None).map_err(|e| Error::io(parent, &e))?;
        }
        let written = write_if_changed(&path, &file.bytes, file.mode, None, file.secret)
            .map_err(|e| Error::io(&path, &e))?;
        let verb = match written {
            Written::Created => "wrote",
            Written::Changed => "updated",
            Written::Unchanged => "unchanged",
        };
        eprintln!("{verb} {}", output.shown.join(&file.name).display());
    }
    Ok(())
}
