//! The poolwright binary: parse the command line, run, exit.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = poolwright::cli::Cli::parse();
    let mut ctx = poolwright::context::Context::from_process();
    ExitCode::from(poolwright::run(&cli, &mut ctx))
}
