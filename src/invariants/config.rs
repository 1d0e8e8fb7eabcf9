//! Config loading and interpolation: any text gives a config or a message
//! that says where the problem is; a valid config's URLs and files can be
//! made without a panic.

use super::ini::check_target;
use crate::error::Error;
use crate::yaml::interpolate::{Problem, interpolate};

/// The environment the fuzzed configs see.
fn env(name: &str) -> Option<String> {
    match name {
        "PW" => Some("s3cret".into()),
        "EMPTY" => Some(String::new()),
        "HOST" => Some("db.internal".into()),
        "ODD" => Some("a\"b'c$d\\e f".into()),
        _ => None,
    }
}

/// The whole input is the config text (not UTF-8: the loader refuses it
/// before parsing, so there is nothing more to check).
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_interpolation(text);
    // The secret may be shown only where the config puts it somewhere other
    // than a password: `${PW}` in another field is that field's value, and
    // the config's own text may spell it out (and be quoted back).
    let secret_only_in_passwords = !text.contains("s3cret")
        && text
            .lines()
            .filter(|l| l.contains("PW"))
            .all(|l| l.trim_start().starts_with("password:"));
    match crate::config::parse(
        std::path::Path::new("poolwright.yaml"),
        text.to_string(),
        &env,
    ) {
        Err(Error::Config(d)) => {
            let rendered = d.render();
            assert!(!d.items.is_empty(), "a config error with no problems in it");
            for item in &d.items {
                let location = format!("poolwright.yaml:{}:{}", item.span.line, item.span.column);
                assert!(
                    item.span.line >= 1 && item.span.column >= 1,
                    "a problem at line or column 0: {rendered}"
                );
                assert!(
                    rendered.contains(&location),
                    "the message does not say where ({location}): {rendered}"
                );
            }
            if secret_only_in_passwords {
                assert!(
                    !rendered.contains("s3cret"),
                    "a message shows the password from $PW"
                );
            }
        }
        Err(other) => panic!("parsing gave a non-config error: {other}"),
        Ok(config) => {
            for target in &config.targets {
                for url in [target.provider.pooled_url(), target.provider.direct_url()]
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        !secret_only_in_passwords || !url.masked().contains("s3cret"),
                        "a masked URL shows the secret"
                    );
                    let _ = url.reveal();
                    let _ = url.problem();
                }
                if let Some(pgbouncer) = target.provider.pgbouncer()
                    && pgbouncer.users.iter().all(|u| u.password.is_available())
                    && pgbouncer.processes < 2
                {
                    check_target(pgbouncer);
                }
            }
        }
    }
}

/// Interpolation of the raw text: no panic; text without `$` is unchanged;
/// `$$` is a literal `$`; an error names a variable or the syntax.
fn check_interpolation(text: &str) {
    match interpolate(text, &env) {
        Ok(out) => {
            if !text.contains('$') {
                assert_eq!(out, text, "text without `$` changed");
            }
        }
        Err(Problem::Unset { var, .. }) => {
            assert!(!var.is_empty(), "an unset variable with no name");
        }
        Err(Problem::Syntax(m)) => assert!(!m.is_empty(), "a syntax problem with no message"),
    }
    let doubled = text.replace('$', "$$");
    assert_eq!(
        interpolate(&doubled, &env).as_deref(),
        Ok(text),
        "`$$` did not give `$` back"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_configs_pass() {
        check_config(b"version: 1\ntargets:\n  p:\n    provider: pgbouncer\n    upstream: { host: db }\n    public_host: pgb\n    databases: { app: {} }\n    users: { app: { password: \"${PW}\" } }\n");
        check_config(b"version: 1\ntargets: [\n");
        check_config(b"\xff");
        check_config(b"a: ${X");
    }
}
