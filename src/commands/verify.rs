//! `poolwright verify TARGET`: log in through the pooler and prove the app
//! is pooled; one line per check, exit 1 when a check failed.

use std::time::Duration;

use serde_json::json;

use super::{load, runtime};
use crate::cli::{Cli, Format, VerifyArgs};
use crate::context::Context;
use crate::error::Error;
use crate::verify::app_url::{self, AppUrl};
use crate::verify::{Options, Report, Status, verify};

/// Per login attempt: long enough for a pooler that waits for a server
/// connection, short enough that a dead host does not stall the run.
const TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(cli: &Cli, ctx: &Context, args: &VerifyArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let app_url = app_url(ctx, args)?;
    let options = Options {
        driver: args.driver,
        connections: args.connections,
        concurrent: args.concurrent,
        app_url,
        samples: args.samples,
        timeout: TIMEOUT,
    };
    let runtime = runtime()?;
    // A missing password comes back as a diagnostic: show it with the
    // config's source line, as every command does.
    let report = runtime
        .block_on(verify(target, &options))
        .map_err(|e| match e {
            Error::Config(d) => config.error(d.items),
            other => other,
        })?;
    match cli.format {
        Format::Text => print!("{}", text(&report)),
        Format::Markdown => print!("{}", markdown(&report)),
        Format::Json => {
            let mut out = serde_json::to_value(&report).expect("the report serialises");
            out["passed"] = json!(report.passed());
            println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
    }
    if report.passed() {
        return Ok(());
    }
    let n = report.failures();
    Err(Error::message(format!(
        "{n} check{} of target `{}` failed",
        if n == 1 { "" } else { "s" },
        report.target
    ))
    .with_hint("each FAIL line above says what is wrong and what to change"))
}

/// The URL the app really uses, from `--url`, `--url-from FILE` or
/// `--url-from-env VAR`. Errors never show the URL (it holds a password).
fn app_url(ctx: &Context, args: &VerifyArgs) -> Result<Option<AppUrl>, Error> {
    let (text, from) = if let Some(text) = &args.url {
        (text.clone(), "--url".to_string())
    } else if let Some(file) = &args.url_from {
        let path = ctx.cwd.join(file);
        let body = crate::files::read_host_text(&path)
            .map_err(|e| Error::io(file, &e))?
            .ok_or_else(|| Error::message(format!("{}: no such file", file.display())))?;
        let key = &args.url_key;
        let value = crate::envfile::values_of(&body, key).pop().ok_or_else(|| {
            Error::message(format!("{} sets no {key}", file.display()))
                .with_hint("name the variable that holds the app's URL with --url-key")
        })?;
        (value, format!("{key} in {}", file.display()))
    } else if let Some(var) = &args.url_from_env {
        let value = (ctx.env)(var)
            .ok_or_else(|| Error::message(format!("the environment variable {var} is not set")))?;
        (value, format!("${var}"))
    } else {
        return Ok(None);
    };
    let url = app_url::parse(&text)
        .map_err(|why| Error::message(format!("the app's URL ({from}) {why}")))?;
    Ok(Some(AppUrl { url, from }))
}

fn count(report: &Report, status: Status) -> usize {
    report.checks.iter().filter(|c| c.status == status).count()
}

/// One line per check, its fix on the line below.
fn text(report: &Report) -> String {
    let mut out = format!(
        "verify {} ({}): {}\nverdict: {}: {}\n",
        report.target,
        report.provider,
        report.url,
        report.verdict.state.label(),
        report.verdict.why
    );
    for c in &report.checks {
        out.push_str(&format!(
            "{}  {}: {}\n",
            c.status.label(),
            c.check,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    // Not "N passed, N failed": CI log readers take that for a test summary.
    out.push_str(&format!(
        "summary: {} pass, {} warn, {} fail\n",
        count(report, Status::Pass),
        count(report, Status::Warn),
        count(report, Status::Fail)
    ));
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "**verify {}** ({}): `{}`\n\n**{}**: {}\n\n| status | check | result | fix |\n| --- | --- | --- | --- |\n",
        report.target,
        report.provider,
        report.url,
        report.verdict.state.label(),
        cell(&report.verdict.why)
    );
    for c in &report.checks {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.status.label(),
            cell(&c.check),
            cell(&c.detail),
            cell(c.fix.as_deref().unwrap_or(""))
        ));
    }
    out
}
