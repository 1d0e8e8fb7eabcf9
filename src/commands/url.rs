//! `poolwright url TARGET`: the DATABASE_URL, masked unless asked.

use serde_json::json;

use super::load;
use crate::cli::{Cli, Format, UrlArgs};
use crate::context::Context;
use crate::error::Error;

pub fn run(cli: &Cli, ctx: &Context, args: &UrlArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let url = if args.direct {
        target.provider.direct_url()
    } else {
        target.provider.pooled_url()
    };
    let url = url.ok_or_else(|| {
        Error::message(format!(
            "the URL of `{}` is known only after `poolwright apply {}`",
            target.name, target.name
        ))
    })?;
    let text = if args.show_password {
        url.reveal().map_err(|d| config.error(vec![*d]))?
    } else {
        url.masked()
    };
    match cli.format {
        Format::Json => println!(
            "{}",
            json!({ "target": target.name, "direct": args.direct, "url": text })
        ),
        Format::Text | Format::Markdown => println!("{text}"),
    }
    Ok(())
}
