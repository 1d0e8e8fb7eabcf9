//! `poolwright apply`: make each target so (the only command with effects).
//!
//! A self-hosted PgBouncer gets its files, verifiers and a reload. Supabase
//! and Neon targets are read from the providers' APIs (with their tokens),
//! and what is learned (host names, never secrets) goes to the state file
//! beside poolwright.yaml so `url` works offline afterwards.

use super::{load, runtime};
use crate::cli::{ApplyArgs, Cli};
use crate::config::Config;
use crate::context::Context;
use crate::error::Error;
use crate::net_policy::NetPolicy;
use crate::providers::{ProviderTarget, neon, pgbouncer, rds_proxy, supabase};
use crate::render::Templates;
use crate::state::{Learned, State};

pub fn run(cli: &Cli, ctx: &mut Context, args: &ApplyArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let templates = Templates::load(args.templates.as_deref())?;
    let targets = config.select(&args.targets)?;
    let _locks = super::lock(ctx, "apply", &args.targets, &lock_paths(&targets, &config))?;
    let runtime = runtime()?;
    let mut state = State::load(&config.on_disk)?;
    for target in targets {
        eprintln!("target {} ({})", target.name, target.provider.describe());
        let url = match &target.provider {
            ProviderTarget::PgBouncer(t) => {
                let report = runtime
                    .block_on(pgbouncer::apply::apply(
                        t,
                        &templates,
                        &config.source_name(),
                        &mut *ctx.salt,
                        args.force,
                    ))
                    .map_err(|e| match e {
                        Error::Config(d) => config.error(d.items),
                        other => other,
                    })?;
                for line in report.lines {
                    eprintln!("  {line}");
                }
                target.provider.pooled_url()
            }
            ProviderTarget::Supabase(t)
                if matches!(t.pooler_host, Some((_, crate::providers::Source::Config)))
                    && (ctx.env)(supabase::TOKEN_VAR).is_none() =>
            {
                eprintln!(
                    "  the pooler host is given in poolwright.yaml: nothing to read from the API"
                );
                target.provider.pooled_url()
            }
            ProviderTarget::Neon(t)
                if matches!(t.hosts, Some((_, _, crate::providers::Source::Config)))
                    && (ctx.env)(neon::TOKEN_VAR).is_none() =>
            {
                eprintln!(
                    "  the hosts follow from endpoint and region in poolwright.yaml: nothing to read from the API"
                );
                target.provider.pooled_url()
            }
            ProviderTarget::Supabase(t) => {
                let api = supabase::api(&ctx.env, args.api_url.as_deref())?;
                let host = runtime.block_on(t.fetch_pooler_host(&api))?;
                eprintln!(
                    "  pooler host of project {}: {host} (from {})",
                    t.project_ref, api.name
                );
                state.set(&target.name, Learned::PoolerHost, &host);
                let mut learned = t.clone();
                learned.pooler_host = Some((host, crate::providers::Source::Api));
                learned.pooled_url()
            }
            ProviderTarget::Neon(t) => {
                let api = neon::api(&ctx.env, args.api_url.as_deref())?;
                let (pooled, direct) = runtime.block_on(t.fetch_hosts(&api))?;
                eprintln!(
                    "  pooled host {pooled}, direct host {direct} (from {})",
                    api.name
                );
                state.set(&target.name, Learned::PooledHost, &pooled);
                state.set(&target.name, Learned::DirectHost, &direct);
                let mut learned = t.clone();
                learned.hosts = Some((pooled, direct, crate::providers::Source::Api));
                learned.pooled_url()
            }
            ProviderTarget::Managed(_) => {
                eprintln!("  nothing to apply: the URL follows from poolwright.yaml");
                target.provider.pooled_url()
            }
            ProviderTarget::RdsProxy(t) => {
                let result = rds_proxy::aws::net_policy(&ctx.env).and_then(|policy| {
                    apply_rds_proxy(&runtime, t, &policy, &target.name, &mut state, args)
                });
                // What was made before a failure (a secret) is remembered for destroy.
                if result.is_err() {
                    state.save(&config.on_disk)?;
                }
                result?
            }
        };
        if let Some(url) = url {
            println!("{}: {}", target.name, url.masked());
        }
    }
    state.save(&config.on_disk)?;
    Ok(())
}

/// The directories apply writes: each self-hosted target's host files'
/// directories (config_dir, auth_file's, systemd's unit_dir) and the state
/// file's. Locked before apply reads any of them (userlist.txt, the state).
fn lock_paths(targets: &[&crate::config::Target], config: &Config) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    for target in targets {
        if let Some(t) = target.provider.pgbouncer() {
            for (_, host_path, _) in t.host_files() {
                if let Some(dir) = std::path::Path::new(&host_path).parent() {
                    dirs.push(dir.to_path_buf());
                }
            }
        }
    }
    let state = State::path_for(&config.on_disk);
    dirs.extend(state.parent().map(std::path::Path::to_path_buf));
    dirs
}

/// Applies an RDS Proxy target and records what AWS made in `state`.
fn apply_rds_proxy(
    runtime: &tokio::runtime::Runtime,
    t: &rds_proxy::Target,
    policy: &NetPolicy,
    name: &str,
    state: &mut State,
    args: &ApplyArgs,
) -> Result<Option<crate::url::PgUrl>, Error> {
    use std::io::IsTerminal as _;
    let aws = runtime.block_on(rds_proxy::aws::Aws::connect(&t.region, policy));
    let created = state.get(name, Learned::CreatedSecret).map(str::to_string);
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |line: &str| {
        if terminal {
            eprint!("\r\x1b[2K  waiting: {line}");
        } else {
            eprintln!("  waiting: {line}");
        }
    };
    let wait = std::time::Duration::from_secs(args.wait);
    let poll = std::time::Duration::from_secs_f64(args.poll);
    let done = runtime.block_on(rds_proxy::apply(
        t,
        &aws,
        created.as_deref(),
        wait,
        poll,
        &mut progress,
    ));
    if terminal {
        eprintln!();
    }
    let done = done?;
    for line in &done.lines {
        eprintln!("  {line}");
    }
    if let Some(arn) = &done.created_secret {
        state.set(name, Learned::CreatedSecret, arn);
    }
    state.set(name, Learned::Endpoint, &done.endpoint);
    eprintln!(
        "  endpoint {} (the proxy is reachable from inside its VPC only)",
        done.endpoint
    );
    let mut learned = t.clone();
    learned.endpoint = Some((done.endpoint, crate::providers::Source::Api));
    Ok(learned.pooled_url())
}
