//! What an app's environment gets from a target, shared by `url`, `env`,
//! `secrets` and `plan`: each driver's view of the target (its URLs and
//! settings snippet) and the variables (`DATABASE_URL`, a direct URL).

use crate::config::{Config, Target};
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

/// `value` of `flag` (`--key`, `--direct-key`) as a variable name, or the
/// error naming both: a key is written into .env lines, env-files and
/// Kubernetes Secrets as it is.
pub fn check_key(flag: &str, value: &str) -> Result<(), Error> {
    match crate::envfile::key_problem(value) {
        None => Ok(()),
        Some(problem) => Err(Error::message(format!(
            "{flag} `{}` is not an environment variable name: {problem}",
            crate::diagnostic::printable(&shortened(value))
        ))
        .with_hint("use letters, digits and `_`, not starting with a digit, e.g. DATABASE_URL")),
    }
}

/// At most 64 characters of `value`, for a message.
fn shortened(value: &str) -> String {
    if value.chars().count() <= 64 {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(60).collect::<String>())
    }
}
