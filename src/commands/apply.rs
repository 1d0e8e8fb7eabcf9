//! `poolwright apply`: make each target so (the only command with effects).

use super::load;
use crate::cli::{ApplyArgs, Cli};
use crate::context::Context;
use crate::error::Error;
use crate::providers::ProviderTarget;
use crate::providers::pgbouncer;
use crate::render::Templates;

pub fn run(cli: &Cli, ctx: &mut Context, args: &ApplyArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let templates = Templates::load(args.templates.as_deref())?;
    let targets = config.select(&args.targets)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::message(format!("cannot start the async runtime: {e}")))?;
    for target in targets {
        eprintln!("target {} ({})", target.name, target.provider.describe());
        let ProviderTarget::PgBouncer(t) = &target.provider;
        let report = runtime
            .block_on(pgbouncer::apply::apply(
                t,
                &templates,
                &config.source_name(),
                &mut *ctx.salt,
            ))
            .map_err(|e| match e {
                Error::Config(d) => config.error(d.items),
                other => other,
            })?;
        for line in report.lines {
            eprintln!("  {line}");
        }
        if let Some(url) = target.provider.pooled_url() {
            println!("{}: {}", target.name, url.masked());
        }
    }
    Ok(())
}
