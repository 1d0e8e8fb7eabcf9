//! `poolwright plan`: what apply would do, offline, passwords masked.

use super::{load, runtime};
use crate::cli::{Cli, Format, TargetsArgs};
use crate::config::Target;
use crate::context::Context;
use crate::drivers;
use crate::envfile::owned;
use crate::error::Error;
use crate::outputs::driver_view;
use crate::plan::{OutputStatus, TargetPlan, plan};
use crate::providers::{ProviderTarget, Source, rds_proxy};
use crate::render::Templates;
use crate::state::State;
use crate::url::mask_in_text;

pub fn run(cli: &Cli, ctx: &Context, args: &TargetsArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let templates = Templates::load(None)?;
    let env_file = config
        .path
        .parent()
        .map_or_else(|| ".env".into(), |d| d.join(".env"));
    let env_path = ctx.cwd.join(&env_file);
    let env_text = match crate::files::read_host_text(&env_path) {
        Ok(text) => text.unwrap_or_default(),
        // plan only masks the .env's values in what it prints; one it may
        // not read holds nothing it could print.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => String::new(),
        Err(e) => return Err(Error::io(&env_file, &e)),
    };
    let mut plans = Vec::new();
    let runtime = runtime()?;
    for target in config.select(&args.targets)? {
        let refreshed = if args.refresh {
            Some(refresh(
                ctx,
                &config.on_disk,
                target,
                args.api_url.as_deref(),
                &runtime,
            )?)
        } else {
            None
        };
        let (target, aws_notes) = match &refreshed {
            Some((t, notes)) => (t, notes.clone()),
            None => (target, Vec::new()),
        };
        let mut p = plan(target, &templates, &config.source_name())?;
        p.notes.extend(aws_notes);
        p.outputs = env_status(
            target,
            &env_file.display().to_string(),
            &env_text,
            &templates,
        )?;
        plans.push(p);
    }
    match cli.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plans).expect("plans serialise")
        ),
        Format::Text => print!("{}", text(&plans)),
        Format::Markdown => print!("{}", markdown(&plans)),
    }
    Ok(())
}

/// `target` as the provider's API describes it now (Supabase, Neon); others as they are.
fn refresh(
    ctx: &Context,
    config_path: &std::path::Path,
    target: &Target,
    api_url: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Target, Vec<String>), Error> {
    let mut fresh = target.clone();
    let mut notes = Vec::new();
    match &mut fresh.provider {
        ProviderTarget::Supabase(t) => {
            let api = crate::providers::supabase::api(&ctx.env, api_url)?;
            let host = runtime.block_on(t.fetch_pooler_host(&api))?;
            t.pooler_host = Some((host, Source::Api));
        }
        ProviderTarget::Neon(t) => {
            let api = crate::providers::neon::api(&ctx.env, api_url)?;
            let (pooled, direct) = runtime.block_on(t.fetch_hosts(&api))?;
            t.hosts = Some((pooled, direct, Source::Api));
        }
        ProviderTarget::RdsProxy(t) => {
            let policy = rds_proxy::aws::net_policy(&ctx.env)?;
            let aws = runtime.block_on(rds_proxy::aws::Aws::connect(&t.region, &policy));
            let state = State::load(config_path)?;
            let created = state
                .get(&target.name, crate::state::Learned::CreatedSecret)
                .map(str::to_string);
            match runtime.block_on(aws.current(t))? {
                None => notes.push(format!(
                    "AWS: RDS Proxy {} does not exist: apply creates it",
                    t.proxy_name
                )),
                Some(current) => {
                    let changes = rds_proxy::aws::diff(t, &current, created.as_deref());
                    if changes.is_empty() {
                        notes.push(format!(
                            "AWS: RDS Proxy {} is as poolwright.yaml says: nothing to change",
                            t.proxy_name
                        ));
                    }
                    if !changes.forces_new.is_empty() {
                        notes.push(format!(
                            "AWS: forces a new proxy (AWS cannot change these in place): {}",
                            changes.forces_new.join(", ")
                        ));
                    }
                    if !changes.in_place.is_empty() {
                        notes.push(format!(
                            "AWS: modify the proxy in place: {}",
                            changes.in_place.join(", ")
                        ));
                    }
                    if !changes.pool.is_empty() {
                        notes.push(format!(
                            "AWS: change the connection pool: {}",
                            changes.pool.join(", ")
                        ));
                    }
                    if changes.register_target {
                        notes.push("AWS: register the target".into());
                    }
                    if let Some(e) = current.endpoint {
                        t.endpoint = Some((e, Source::Api));
                    }
                }
            }
        }
        ProviderTarget::PgBouncer(_) | ProviderTarget::Managed(_) => {}
    }
    Ok((fresh, notes))
}

/// The `.env` entries poolwright wrote for `target`, each current or stale.
/// Without the password the comparison is between masked URLs.
fn env_status(
    target: &Target,
    file: &str,
    text: &str,
    templates: &Templates,
) -> Result<Vec<OutputStatus>, Error> {
    let mut out = Vec::new();
    for entry in owned(text).into_iter().filter(|o| o.target == target.name) {
        let driver = entry
            .note
            .strip_prefix("(driver ")
            .and_then(|n| n.strip_suffix(')'))
            .filter(|d| drivers::find(d).is_some())
            .unwrap_or("libpq")
            .to_string();
        let view = driver_view(target, drivers::find(&driver).expect("checked"), templates)?;
        let current = std::iter::once(&view.url)
            .chain(view.direct_url.as_ref())
            .any(|url| match url.reveal() {
                Ok(real) => real == entry.value,
                Err(_) => url.masked() == mask_in_text(&entry.value),
            });
        out.push(OutputStatus {
            file: file.to_string(),
            key: entry.key,
            driver,
            status: if current { "current" } else { "stale" }.to_string(),
        });
    }
    Ok(out)
}

fn text(plans: &[TargetPlan]) -> String {
    let mut out = String::new();
    for (i, p) in plans.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("target {} ({})\n", p.target, p.description));
        for f in &p.files {
            let secret = if f.holds_secrets {
                ", holds secrets"
            } else {
                ""
            };
            let guard = f.changed_by_hand.as_ref().map_or(String::new(), |why| {
                format!(
                    ": {why}, so apply stops unless --force (which keeps it as {}.bak)",
                    f.name
                )
            });
            out.push_str(&format!(
                "  write   {} (mode {}{secret}){guard}\n",
                f.path, f.mode
            ));
        }
        for a in &p.actions {
            out.push_str(&format!("  then    {a}\n"));
        }
        for n in &p.notes {
            out.push_str(&format!("  note    {n}\n"));
        }
        for b in &p.budget {
            out.push_str(&format!("  budget  {b}\n"));
        }
        for o in &p.outputs {
            let hint = if o.status == "current" {
                String::new()
            } else {
                format!(": run `poolwright env {} --driver {}`", p.target, o.driver)
            };
            out.push_str(&format!(
                "  output  {} {} ({}): {}{hint}\n",
                o.file, o.key, o.driver, o.status
            ));
        }
        out.push_str(&format!("  url     {}\n", p.url));
        if let Some(d) = &p.direct_url {
            out.push_str(&format!("  direct  {d}\n"));
        }
    }
    out
}

fn markdown(plans: &[TargetPlan]) -> String {
    let mut out = String::from("| target | provider | files | url |\n| --- | --- | --- | --- |\n");
    for p in plans {
        let files: Vec<String> = p.files.iter().map(|f| format!("`{}`", f.path)).collect();
        out.push_str(&format!(
            "| {} | {} | {} | `{}` |\n",
            p.target,
            p.description,
            files.join("<br>"),
            p.url
        ));
    }
    out
}
