//! One file per subcommand: glue between the command line, the config and
//! the library. Results go to stdout, messages to stderr.

mod apply;
mod destroy;
mod env;
mod explain;
mod init;
mod plan;
mod render;
mod secrets;
mod status;
mod url;
mod validate;
mod verify;

use std::path::PathBuf;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::context::Context;
use crate::error::Error;

/// Runs the command `cli` names.
pub fn run(cli: &Cli, ctx: &mut Context) -> Result<(), Error> {
    match &cli.command {
        Command::Init(args) => init::run(cli, ctx, args),
        Command::Validate => validate::run(cli, ctx),
        Command::Plan(args) => plan::run(cli, ctx, args),
        Command::Render(args) => render::run(cli, ctx, args),
        Command::Apply(args) => apply::run(cli, ctx, args),
        Command::Url(args) => url::run(cli, ctx, args),
        Command::Env(args) => env::run(cli, ctx, args),
        Command::Secrets(args) => secrets::run(cli, ctx, args),
        Command::Verify(args) => verify::run(cli, ctx, args),
        Command::Explain(args) => explain::run(cli, ctx, args),
        Command::Status(args) => status::run(cli, ctx, args),
        Command::Destroy(args) => destroy::run(cli, ctx, args),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "poolwright",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// Finds and loads the config for a command.
fn load(cli: &Cli, ctx: &Context) -> Result<Config, Error> {
    let shown = config::locate(cli.config.as_deref(), &ctx.cwd)?;
    let path = if shown.is_relative() {
        ctx.cwd.join(&shown)
    } else {
        shown.clone()
    };
    config::load(&path, &shown, &*ctx.env)
}

/// Locks the directories `dirs` a command writes, for as long as the
/// result lives (see lock.rs); `command` names this run to a second one.
/// Called once by each command that writes files, before it reads them.
fn lock(
    ctx: &Context,
    command: &str,
    targets: &[String],
    dirs: &[PathBuf],
) -> Result<crate::lock::Locks, Error> {
    let wait = crate::lock::wait_from(&*ctx.env)?;
    let mut describe = format!("poolwright {command}");
    for target in targets {
        describe.push(' ');
        describe.push_str(target);
    }
    crate::lock::acquire_all(dirs, &describe, wait)
}

/// The single-threaded async runtime that the network-bound commands drive
/// their provider and database calls on (one at a time, so one thread does).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::message(format!("cannot start the async runtime: {e}")))
}
