//! `poolwright init`: the setup wizard (src/wizard/), interactive or with
//! `--no-input` and one flag per question.
//!
//! Exit codes: 0 written; 1 an answer or a file is wrong (the loader's
//! diagnostics); 2 the command line cannot work (missing or unknown flags,
//! no terminal to ask on); 130 cancelled with Ctrl-C or Esc. Nothing is
//! written unless the whole run succeeds.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Format, InitArgs};
use crate::config;
use crate::context::Context;
use crate::error::Error;
use crate::wizard::prompter::{InquirePrompter, Prompter, ScriptedPrompter, Stop};
use crate::wizard::{self, Kind, Outcome, Setup, shell_word};

pub fn run(cli: &Cli, ctx: &Context, args: &InitArgs) -> Result<(), Error> {
    let shown = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::FILE_NAME));
    let path = if shown.is_relative() {
        ctx.cwd.join(&shown)
    } else {
        shown.clone()
    };
    let config_flag = if shown == Path::new(config::FILE_NAME) {
        String::new()
    } else {
        format!("--config {} ", shell_word(&shown.display().to_string()))
    };
    let flags = flags(args)?;
    let setup = Setup::open(&path, &shown, &*ctx.env)?;
    let no_terminal = if !std::io::stdin().is_terminal() {
        Some("standard input is not a terminal")
    } else if !std::io::stderr().is_terminal() {
        Some("standard error, where the questions are drawn, is not a terminal")
    } else {
        None
    };
    if !args.no_input
        && let Some(what) = no_terminal
    {
        let command = wizard::suggest(&setup, &*ctx.env, &flags);
        let mut hint = format!(
            "give the answers as flags:\n      {}",
            command.replacen("poolwright ", &format!("poolwright {config_flag}"), 1)
        );
        if args.provider.is_none() {
            hint.push_str(&format!(
                "\n    other providers: {} (`poolwright init --help` lists their flags)",
                wizard::offered(&setup.context.registry)
                    .into_iter()
                    .filter(|n| n != "pgbouncer")
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        return Err(Error::Usage {
            message: format!("{what}, so `poolwright init` cannot ask its questions"),
            hint: Some(hint),
        });
    }
    let mut prompter: Box<dyn Prompter> = if args.no_input {
        Box::new(ScriptedPrompter::new(flags))
    } else {
        Box::new(InquirePrompter::with_answers(flags))
    };
    let outcome = wizard::run(&setup, &*ctx.env, prompter.as_mut())?;
    outcome.write()?;
    report(cli.format, &outcome, &config_flag);
    Ok(())
}

/// The flags as answers: question key -> value.
fn flags(args: &InitArgs) -> Result<BTreeMap<String, String>, Stop> {
    let mut out = BTreeMap::new();
    let given = [
        ("target", &args.target),
        ("provider", &args.provider),
        ("user", &args.user),
        ("database", &args.database),
        ("password-env", &args.password_env),
        ("pool-mode", &args.pool_mode),
        ("upstream-host", &args.upstream_host),
        ("upstream-port", &args.upstream_port),
        ("upstream-max-connections", &args.upstream_max_connections),
        (
            "upstream-direct-connections",
            &args.upstream_direct_connections,
        ),
        ("upstream-cores", &args.upstream_cores),
        ("pgbouncer-version", &args.pgbouncer_version),
        ("public-host", &args.public_host),
        ("project-ref", &args.project_ref),
        ("pooler-host", &args.pooler_host),
        ("project-id", &args.project_id),
        ("endpoint", &args.endpoint),
        ("region", &args.region),
        ("role", &args.role),
    ];
    for (key, value) in given {
        if let Some(v) = value {
            out.insert(key.to_string(), v.clone());
        }
    }
    if args.generate_password {
        out.insert("generate-password".into(), "true".into());
    }
    for item in &args.set {
        let Some((field, value)) = item.split_once('=').filter(|(f, _)| !f.is_empty()) else {
            return Err(Stop::Usage {
                message: format!("--set `{item}`: expected FIELD=VALUE"),
                hint: Some("for example --set server=mydb".into()),
            });
        };
        // The fields that have a flag of their own answer the same question.
        let key = match field {
            "user" => "user".to_string(),
            "database" => "database".to_string(),
            "pool_mode" => "pool-mode".to_string(),
            other => format!("set.{other}"),
        };
        if out.insert(key.clone(), value.to_string()).is_some() {
            return Err(Stop::Usage {
                message: format!("`{field}` is given twice"),
                hint: Some(format!(
                    "give it once, with --set {field}=... or its own flag"
                )),
            });
        }
    }
    Ok(out)
}

fn report(format: Format, outcome: &Outcome, config_flag: &str) {
    let steps = outcome.next_steps(config_flag);
    let (verb, with) = if outcome.created() {
        ("wrote", "with target")
    } else {
        ("added to", "target")
    };
    eprintln!(
        "{verb} {}: {with} {} ({})",
        outcome.config_shown.display(),
        outcome.target,
        outcome.described
    );
    if let Some(env) = &outcome.env {
        eprintln!(
            "wrote {}: {} holds a generated password (the file is readable by its owner only)",
            env.shown.display(),
            env.var
        );
    }
    let mut notes = Vec::new();
    if outcome.env.is_some() {
        let on_server = match outcome.kind {
            Kind::PgBouncer => "on the upstream server",
            _ => "at the provider",
        };
        notes.push(format!(
            "the password of role {} {on_server} must be the one in .env: set it there first (psql: \\password {})",
            outcome.role, outcome.role
        ));
    }
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "config": outcome.config_shown,
                "created": outcome.created(),
                "target": outcome.target,
                "provider": outcome.provider,
                "env_file": outcome.env.as_ref().map(|e| &e.shown),
                "password_variable": outcome.password_var,
                "notes": notes,
                "next": steps,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("json serialises")
            );
        }
        Format::Markdown => {
            for note in &notes {
                println!("> {note}\n");
            }
            println!("Next:\n");
            for s in &steps {
                println!("- `{}`: {}", s.command, s.why);
            }
        }
        Format::Text => {
            for note in &notes {
                println!("note: {note}");
            }
            println!("Next:");
            let width = steps.iter().map(|s| s.command.len()).max().unwrap_or(0);
            for s in &steps {
                println!("  {:width$}   {}", s.command, s.why);
            }
        }
    }
}
