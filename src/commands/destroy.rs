//! `poolwright destroy TARGET`: remove what `apply` made in a cloud.
//!
//! Only RDS Proxy targets have cloud resources that poolwright made: the
//! proxy (its target is deregistered first) and, when poolwright created it,
//! the Secrets Manager secret; a secret it did not create is never touched.
//! Asks for confirmation unless `--yes`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use super::{load, runtime};
use crate::cli::{Cli, DestroyArgs};
use crate::context::Context;
use crate::error::Error;
use crate::providers::ProviderTarget;
use crate::providers::rds_proxy::aws::Aws;
use crate::state::State;

pub fn run(cli: &Cli, ctx: &Context, args: &DestroyArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let ProviderTarget::RdsProxy(t) = &target.provider else {
        return Err(Error::message(format!(
            "`{}` ({}) has no cloud resources that poolwright made",
            target.name,
            target.provider.provider_name()
        ))
        .with_hint("destroy removes an RDS Proxy that apply created; other providers have nothing to remove"));
    };
    let config_path = config.on_disk.clone();
    let mut state = State::load(&config_path)?;
    let created = state
        .get(&target.name, crate::state::Learned::CreatedSecret)
        .map(str::to_string);
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(
                Error::usage("destroy asks for confirmation; stdin is not a terminal")
                    .with_hint(format!("run `poolwright destroy {} --yes`", target.name)),
            );
        }
        let what = if created.is_some() {
            " and the secret poolwright created"
        } else {
            ""
        };
        eprint!(
            "destroy RDS Proxy {} in {}{what}? [y/N] ",
            t.proxy_name, t.region
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::message(format!("reading the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing destroyed");
            return Ok(());
        }
    }
    let policy = crate::providers::rds_proxy::aws::net_policy(&ctx.env)?;
    let runtime = runtime()?;
    let aws = runtime.block_on(Aws::connect(&t.region, &policy));
    let lines = runtime.block_on(aws.destroy(t, created.as_deref()))?;
    for line in lines {
        eprintln!("{line}");
    }
    state.forget(
        &target.name,
        &[
            crate::state::Learned::Endpoint,
            crate::state::Learned::CreatedSecret,
        ],
    );
    state.save(&config_path)?;
    Ok(())
}
