//! `poolwright url TARGET`: the DATABASE_URL, masked unless asked, as the
//! chosen driver wants it.

use serde_json::{Value, json};

use super::load;
use crate::cli::{Cli, Format, UrlArgs};
use crate::config::{Config, Target};
use crate::context::Context;
use crate::drivers::{self, Driver, PoolerTraits, SnippetContext};
use crate::error::Error;
use crate::render::Templates;
use crate::url::PgUrl;

/// The variable apps read the pooled URL from.
pub const URL_KEY: &str = "DATABASE_URL";

/// One driver's view of a target: its URLs and its settings snippet.
pub struct DriverView {
    pub url: PgUrl,
    /// None where the config does not name the database itself (RDS Proxy).
    pub direct_url: Option<PgUrl>,
    pub settings: String,
    pub direct_url_key: Option<&'static str>,
}

fn known_after_apply(target: &Target) -> Error {
    Error::message(format!(
        "the URL of `{}` is known only after `poolwright apply {}`",
        target.name, target.name
    ))
}

/// Builds what `driver` needs for `target`.
pub fn driver_view(
    target: &Target,
    driver: &Driver,
    templates: &Templates,
) -> Result<DriverView, Error> {
    let pooled = target
        .provider
        .pooled_url()
        .ok_or_else(|| known_after_apply(target))?;
    let direct = target.provider.direct_url();
    let pooler = target.provider.pooler_traits();
    let context = SnippetContext {
        driver: driver.name,
        pooler: &pooler,
        no_prepared_statements: pooler.transaction_pooling && !pooler.prepared_statements,
        transaction_pooling: pooler.transaction_pooling,
        url_key: URL_KEY,
        direct_url_key: driver.direct_url_key,
    };
    let snippet = templates.render(&driver.template(), &context)?;
    let settings = if snippet.trim().is_empty() {
        String::new()
    } else {
        format!("{}\n", snippet.trim_matches('\n').trim_end())
    };
    Ok(DriverView {
        url: driver.url(&pooled, &pooler),
        direct_url: direct.map(|d| driver.url(&d, &PoolerTraits::direct())),
        settings,
        direct_url_key: driver.direct_url_key,
    })
}

/// The variables an app's environment gets for `target`: the pooled URL
/// under `key`, and the direct one under `direct_key` (given, or the
/// driver's own, such as Prisma's DIRECT_URL).
pub fn variables(
    target: &Target,
    driver: Option<&'static Driver>,
    key: &str,
    direct_key: Option<&str>,
    templates: &Templates,
) -> Result<Vec<(String, PgUrl)>, Error> {
    let driver = driver.unwrap_or_else(drivers::default_driver);
    let view = driver_view(target, driver, templates)?;
    let mut out = vec![(key.to_string(), view.url)];
    if let (Some(direct_key), Some(direct)) = (direct_key.or(view.direct_url_key), view.direct_url)
    {
        out.push((direct_key.to_string(), direct));
    }
    Ok(out)
}

pub fn show(url: &PgUrl, reveal: bool, config: &Config) -> Result<String, Error> {
    if reveal {
        url.reveal().map_err(|d| config.error(vec![*d]))
    } else {
        Ok(url.masked())
    }
}

pub fn run(cli: &Cli, ctx: &Context, args: &UrlArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let templates = Templates::load(None)?;
    let reveal = args.show_password;
    let driver = args.driver.unwrap_or_else(drivers::default_driver);
    let view = driver_view(target, driver, &templates)?;
    let no_direct = || {
        Error::message(format!(
            "poolwright.yaml does not name the database behind `{}` itself",
            target.name
        ))
        .with_hint("use the database's own endpoint for migrations")
    };
    let chosen = if args.direct {
        view.direct_url.as_ref().ok_or_else(no_direct)?
    } else {
        &view.url
    };
    match cli.format {
        Format::Json if args.driver.is_none() => {
            // Every variant: the plain URLs and each driver's.
            let mut all = serde_json::Map::new();
            for d in drivers::DRIVERS {
                let v = driver_view(target, d, &templates)?;
                all.insert(d.name.to_string(), json_view(&v, reveal, &config)?);
            }
            let out = json!({
                "target": target.name,
                "pooler": target.provider.pooler_traits(),
                "url": show(&view.url, reveal, &config)?,
                "direct_url": show_optional(view.direct_url.as_ref(), reveal, &config)?,
                "drivers": all,
            });
            println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
        Format::Json => {
            let mut out = json_view(&view, reveal, &config)?;
            out["target"] = json!(target.name);
            out["driver"] = json!(driver.name);
            if args.direct {
                out["url"] = json!(show(chosen, reveal, &config)?);
            }
            println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
        Format::Text | Format::Markdown => {
            println!("{}", show(chosen, reveal, &config)?);
            if !args.direct {
                if let (Some(key), Some(direct)) = (view.direct_url_key, &view.direct_url) {
                    eprintln!("{key} (for migrations): {}", show(direct, reveal, &config)?);
                }
                eprint!("{}", view.settings);
            }
        }
    }
    Ok(())
}

fn show_optional(
    url: Option<&PgUrl>,
    reveal: bool,
    config: &Config,
) -> Result<Option<String>, Error> {
    url.map(|u| show(u, reveal, config)).transpose()
}

fn json_view(view: &DriverView, reveal: bool, config: &Config) -> Result<Value, Error> {
    Ok(json!({
        "url": show(&view.url, reveal, config)?,
        "direct_url": show_optional(view.direct_url.as_ref(), reveal, config)?,
        "direct_url_key": view.direct_url_key,
        "settings": view.settings,
    }))
}
