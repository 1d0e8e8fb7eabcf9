//! `poolwright url TARGET`: the DATABASE_URL, masked unless asked, as the
//! chosen driver wants it.

use serde_json::{Value, json};

use super::load;
use crate::cli::{Cli, Format, UrlArgs};
use crate::config::Config;
use crate::context::Context;
use crate::drivers;
use crate::error::Error;
use crate::outputs::{DriverView, driver_view, show};
use crate::render::Templates;
use crate::url::PgUrl;

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
