//! `poolwright explain TEXT`: an error text from the app's or the pooler's
//! logs, matched against the table `verify` diagnoses with
//! ([`crate::verify::diagnose::TABLE`]), printed as its cause and fix.
//!
//! The config is optional here: found as usual, it names the target in
//! the fix when it holds one (or `--target` picks one); without it the fix
//! names no target and gives commands that run as typed. A text no entry
//! matches exits 1, like grep, with the fallback advice on stderr.

use std::io::Read as _;

use serde::Serialize;

use super::load;
use crate::cli::{Cli, ExplainArgs, ExplainVia, Format};
use crate::config::{self, Config, Target};
use crate::context::Context;
use crate::diagnostic::printable;
use crate::error::Error;
use crate::verify::diagnose::{Diagnosis, Situation, Via, diagnose};
use crate::verify::{admin, self_hosted};

/// The most of stdin read: a pasted error is a few lines.
pub const STDIN_CAP: u64 = 64 * 1024;

/// What the config tells about the connection the error came from.
#[derive(Default)]
struct Known {
    place: String,
    user: String,
    database: String,
    target: String,
    provider: String,
}

pub fn run(cli: &Cli, ctx: &Context, args: &ExplainArgs) -> Result<(), Error> {
    let text = read_text(&args.text)?;
    let via = match args.via {
        ExplainVia::Pooled => Via::Pooler,
        ExplainVia::Direct => Via::Direct,
        ExplainVia::Console => Via::AdminConsole,
    };
    let config = optional_config(cli, ctx, args)?;
    let target = match (&config, &args.target) {
        (Some(c), Some(name)) => Some(c.target(name)?),
        (Some(c), None) if c.targets.len() == 1 => c.targets.first(),
        _ => None,
    };
    let known = target.map(|t| known(t, via)).unwrap_or_default();
    let situation = Situation {
        via,
        place: &known.place,
        user: &known.user,
        database: &known.database,
        target: &known.target,
        provider: &known.provider,
        code: args.sqlstate.as_deref(),
    };
    let d = diagnose(&text, &situation);
    print(cli.format, &d);
    if d.matched.is_some() {
        return Ok(());
    }
    let verify = match known.target.as_str() {
        "" => "`poolwright verify` with a target's name (`poolwright plan` lists the targets)"
            .to_string(),
        t => format!("`poolwright verify {t}`"),
    };
    Err(
        Error::message("no known cause for this text").with_hint(format!(
            "{}; {verify} logs in through the pooled and direct URLs and names what fails",
            d.fix
        )),
    )
}

/// The text to explain: the argument, or stdin for `-`; printable, since
/// it is printed back.
fn read_text(arg: &str) -> Result<String, Error> {
    let raw = if arg == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(STDIN_CAP + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::message(format!("cannot read stdin: {e}")))?;
        if bytes.len() as u64 > STDIN_CAP {
            return Err(Error::usage(format!(
                "stdin holds more than {} KiB: paste the error lines only",
                STDIN_CAP / 1024
            )));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        arg.to_string()
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::usage("no text to explain")
            .with_hint("quote the error: poolwright explain \"server closed the connection unexpectedly\", or pipe it in with `-`"));
    }
    Ok(printable(text))
}

/// The config when there is one: a missing file is fine; one that does not
/// load is an error only when asked for (--config, --target).
fn optional_config(cli: &Cli, ctx: &Context, args: &ExplainArgs) -> Result<Option<Config>, Error> {
    let asked = cli.config.is_some() || args.target.is_some();
    if !asked && config::discover(&ctx.cwd).is_none() {
        return Ok(None);
    }
    match load(cli, ctx) {
        Ok(c) => Ok(Some(c)),
        Err(e) if asked => Err(e),
        Err(e) => {
            eprintln!(
                "note: the config found here does not load, so the fix names no target ({})",
                e.render()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
            );
            Ok(None)
        }
    }
}

/// The place, user and database of `target`'s URL for `via`.
fn known(target: &Target, via: Via) -> Known {
    let url = match via {
        Via::Direct => target.provider.direct_url(),
        _ => target.provider.pooled_url(),
    };
    let mut k = Known {
        target: target.name.clone(),
        provider: target.provider.provider_name().to_string(),
        ..Known::default()
    };
    if let Some(u) = url {
        k.place = u.place();
        k.user = u.user.unwrap_or_default();
        k.database = u.database;
    }
    if via == Via::AdminConsole {
        k.database = "pgbouncer".into();
        if let Some(user) = self_hosted(target).and_then(admin::console_user) {
            k.user = user.name.clone();
        }
    }
    k
}

fn print(format: Format, d: &Diagnosis) {
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                matched: Option<&'a str>,
                cause: &'a str,
                fix: &'a str,
            }
            let out = Out {
                matched: d.matched,
                cause: &d.cause,
                fix: &d.fix,
            };
            println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
        // Unknown text: the advice goes to stderr with the exit code.
        _ if d.matched.is_none() => {}
        Format::Markdown => println!(
            "- **cause:** {}\n- **fix:** {}\n- **matched:** `{}`",
            d.cause,
            d.fix,
            d.matched.unwrap_or("")
        ),
        Format::Text => println!(
            "cause: {}\nfix: {}\nmatched: {}",
            d.cause,
            d.fix,
            d.matched.unwrap_or("")
        ),
    }
}
