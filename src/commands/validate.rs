//! `poolwright validate`: check everything, exit 1 on any problem.

use serde_json::json;

use super::load;
use crate::cli::{Cli, Format};
use crate::context::Context;
use crate::error::Error;
use crate::providers::pgbouncer::budget;

pub fn run(cli: &Cli, ctx: &Context) -> Result<(), Error> {
    let config = match load(cli, ctx) {
        Ok(c) => c,
        Err(Error::Config(d)) if cli.format == Format::Json => {
            println!("{}", json!({ "valid": false, "problems": d.items }));
            return Err(Error::Config(d));
        }
        Err(e) => return Err(e),
    };
    // Unset password variables are fine for validation (CI has no secrets),
    // but say which commands will need them.
    let mut unset = Vec::new();
    for target in &config.targets {
        for secret in target.provider.secrets() {
            if let Err(d) = secret.expose() {
                unset.push(format!("{}: {}", d.field, d.message));
            }
        }
    }
    match cli.format {
        Format::Json => {
            let targets: Vec<_> = config
                .targets
                .iter()
                .map(|t| json!({"name": t.name, "provider": t.provider.provider_name()}))
                .collect();
            println!(
                "{}",
                json!({ "valid": true, "targets": targets, "unset_secrets": unset })
            );
        }
        Format::Text | Format::Markdown => {
            let n = config.targets.len();
            println!(
                "{}: valid, {n} target{}",
                config.path.display(),
                if n == 1 { "" } else { "s" }
            );
            for target in &config.targets {
                match target.provider.pgbouncer() {
                    Some(t) => {
                        let budget = budget::compute(t);
                        let pools = budget.explain(t, 0).pop().unwrap_or_default();
                        println!(
                            "  {}: {} ({pools})",
                            target.name,
                            target.provider.describe()
                        );
                        if let Some(headroom) = budget.headroom() {
                            println!("    {headroom}");
                        }
                    }
                    None => println!("  {}: {}", target.name, target.provider.describe()),
                }
            }
            for line in &unset {
                eprintln!("note: {line}; render, apply and url --show-password will need it");
            }
        }
    }
    Ok(())
}
