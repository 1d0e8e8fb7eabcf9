//! `${VAR}` interpolation in config strings, as docker compose does it.
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
//! `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (required),
//! `${VAR:+other}` / `${VAR+other}` (replacement when set), and `$$` for a
//! literal `$`. Defaults may themselves contain `${...}`. A value taken from
//! the environment is used as it is, never expanded again: a variable cannot
//! refer to another, so there are no cycles to detect.
//!
//! One difference from compose: an unset `${VAR}` is not silently empty. It
//! is reported, because the values that come from the environment here are
//! mostly passwords and hosts, where "empty" is never what the user meant.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A variable the string needs is not set (or empty, for `:?`).
    Unset {
        var: String,
        message: Option<String>,
    },
    /// The `${...}` syntax itself is wrong.
    Syntax(String),
}

impl Problem {
    pub fn describe(&self) -> String {
        match self {
            Problem::Unset {
                var,
                message: Some(m),
            } => format!("`{var}` is not set: {m}"),
            Problem::Unset { var, message: None } => {
                format!("environment variable `{var}` is not set")
            }
            Problem::Syntax(m) => m.clone(),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands every variable reference in `text`, looking values up with `env`.
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Problem> {
    expand(text, env, 0)
}

fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, Problem> {
    if depth > 8 {
        return Err(Problem::Syntax(
            "`${...}` nested more than 8 levels deep".into(),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let end = closing_brace(body_and_tail).ok_or_else(|| {
                Problem::Syntax(format!("`${{` without a closing `}}` in `{text}`"))
            })?;
            out.push_str(&braced(&body_and_tail[..end], env, depth)?);
            rest = &body_and_tail[end + 1..];
        } else if after.starts_with(is_name_start) {
            let len = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            let var = &after[..len];
            out.push_str(&lookup(var, env, None)?);
            rest = &after[len..];
        } else {
            // A lone `$` (as in a price, or a password) stays as it is.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` that closes the `${` whose body starts `s`, minding nested braces.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn lookup(
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    message: Option<String>,
) -> Result<String, Problem> {
    env(var).ok_or_else(|| Problem::Unset {
        var: var.to_string(),
        message,
    })
}

fn braced(
    body: &str,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, Problem> {
    let name_len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let (var, op) = body.split_at(name_len);
    if var.is_empty() || !var.starts_with(is_name_start) {
        return Err(Problem::Syntax(format!(
            "`${{{body}}}` is not a valid variable reference: names start with a letter or `_`"
        )));
    }
    let value = env(var);
    let set = value.is_some();
    let set_non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |skip: usize| expand(&op[skip..], env, depth + 1);
    // An unset variable in the default of an unset one: name both, or the
    // user exports the inner one without knowing the outer one exists.
    let default = |skip: usize| {
        arg(skip).map_err(|p| match p {
            Problem::Unset {
                var: inner,
                message: None,
            } => Problem::Unset {
                var: inner,
                message: Some(format!(
                    "it is the default of `{var}`, which is not set either"
                )),
            },
            other => other,
        })
    };
    match op {
        "" => lookup(var, env, None),
        _ if op.starts_with(":-") => {
            if set_non_empty {
                Ok(value.unwrap_or_default())
            } else {
                default(2)
            }
        }
        _ if op.starts_with('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                default(1)
            }
        }
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let skip = if op.starts_with(':') { 2 } else { 1 };
            let ok = if skip == 2 { set_non_empty } else { set };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                let message = arg(skip)?;
                Err(Problem::Unset {
                    var: var.to_string(),
                    message: (!message.is_empty()).then_some(message),
                })
            }
        }
        _ if op.starts_with(":+") => {
            if set_non_empty {
                arg(2)
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('+') => {
            if set {
                arg(1)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(Problem::Syntax(format!(
            "`${{{body}}}`: expected `}}`, `:-`, `-`, `:?`, `?`, `:+` or `+` after `{var}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("db.internal".into()),
            _ => None,
        }
    }

    fn i(s: &str) -> Result<String, Problem> {
        interpolate(s, &env)
    }

    #[test]
    fn expands_like_compose() {
        assert_eq!(i("${PW}").unwrap(), "s3cret");
        assert_eq!(i("$PW!").unwrap(), "s3cret!");
        assert_eq!(i("a$$b").unwrap(), "a$b");
        assert_eq!(i("cost $5").unwrap(), "cost $5");
        assert_eq!(i("${NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(i("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(i("${EMPTY-fallback}").unwrap(), "");
        assert_eq!(i("${NOPE:-${HOST}}").unwrap(), "db.internal");
        assert_eq!(i("${PW:+yes}").unwrap(), "yes");
        assert_eq!(i("${NOPE:+yes}").unwrap(), "");
        assert_eq!(
            i("host=${HOST} port=${PORT:-5432}").unwrap(),
            "host=db.internal port=5432"
        );
    }

    #[test]
    fn reports_unset_and_required_variables() {
        assert_eq!(
            i("${NOPE}"),
            Err(Problem::Unset {
                var: "NOPE".into(),
                message: None
            })
        );
        assert_eq!(
            i("${NOPE:?set the password}"),
            Err(Problem::Unset {
                var: "NOPE".into(),
                message: Some("set the password".into())
            })
        );
        assert_eq!(
            i("${EMPTY:?must not be empty}"),
            Err(Problem::Unset {
                var: "EMPTY".into(),
                message: Some("must not be empty".into())
            })
        );
        assert_eq!(i("${EMPTY?x}").unwrap(), "");
    }

    #[test]
    fn an_unset_default_names_the_variable_it_stands_in_for() {
        assert_eq!(
            i("${NOPE:-${ALSO_NOPE}}"),
            Err(Problem::Unset {
                var: "ALSO_NOPE".into(),
                message: Some("it is the default of `NOPE`, which is not set either".into())
            })
        );
    }

    #[test]
    fn values_from_the_environment_are_not_expanded_again() {
        // So a variable cannot refer to itself or another: no cycles.
        let env = |name: &str| match name {
            "SELF" => Some("${SELF}".to_string()),
            "A" => Some("$B".to_string()),
            "B" => Some("$A".to_string()),
            _ => None,
        };
        assert_eq!(interpolate("${SELF}", &env).unwrap(), "${SELF}");
        assert_eq!(interpolate("$A-$B", &env).unwrap(), "$B-$A");
        assert_eq!(interpolate("${NOPE:-$A}", &env).unwrap(), "$B");
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(matches!(i("${PW"), Err(Problem::Syntax(_))));
        assert!(matches!(i("${1X}"), Err(Problem::Syntax(_))));
        assert!(matches!(i("${PW!x}"), Err(Problem::Syntax(_))));
    }
}
