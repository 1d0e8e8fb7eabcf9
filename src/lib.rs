//! poolwright: a correctly pooled DATABASE_URL for PostgreSQL apps.
//!
//! The pipeline: [`config`] loads poolwright.yaml (interpolating `${VAR}`,
//! checking every field, reporting all problems with file, line and
//! column) into typed targets; each target's provider ([`providers`], facts
//! from the manifests in `providers/*.toml`) plans ([`plan`]), renders
//! ([`render`], tera templates) and applies; [`url`] builds the URLs apps
//! use. Only `apply` touches the world.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod diagnostic;
pub mod dirs;
pub mod drivers;
pub mod envfile;
pub mod error;
pub mod files;
pub mod hand_edits;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod invariants;
pub mod lock;
pub mod net_policy;
pub mod outputs;
pub mod plan;
pub mod providers;
pub mod render;
pub mod scram;
pub mod scram_probe;
pub mod secret;
pub mod state;
pub mod url;
pub mod userlist;
pub mod verify;
pub mod wizard;
pub mod yaml;

use std::io::Write as _;

/// Runs poolwright with parsed arguments; returns the process exit code.
pub fn run(cli: &cli::Cli, ctx: &mut context::Context) -> u8 {
    match commands::run(cli, ctx) {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stderr().write_all(e.render().as_bytes());
            e.exit_code()
        }
    }
}
