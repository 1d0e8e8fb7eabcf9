//! `poolwright secrets TARGET --to STORE`: the URL as a secret where the
//! deployment reads it. Printed output masks the password unless
//! `--show-password`; `--apply` runs the store's own CLI with the real value,
//! passing it through a file or stdin rather than the command line, where
//! other users of the machine could read it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;

use super::load;
use super::url::{show, variables};
use crate::cli::{Cli, SecretStore, SecretsArgs};
use crate::context::Context;
use crate::envfile::write_value;
use crate::error::Error;
use crate::render::Templates;

/// `s` as one word for a POSIX shell: single-quoted, `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',')
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `s` as a double-quoted YAML scalar.
fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A Kubernetes object name (DNS-1123 subdomain) made from a target name.
fn k8s_name(s: &str) -> String {
    let name: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn valid_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn require_tool(tool: &str) -> Result<(), Error> {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        Ok(())
    } else {
        Err(Error::message(format!(
            "`{tool}` is not installed, so --apply cannot run it"
        ))
        .with_hint("drop --apply to print the command instead"))
    }
}

fn run_tool(mut cmd: Command, stdin: Option<&str>) -> Result<(), Error> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::message(format!("cannot run {shown}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| Error::message(format!("writing to {shown}: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| Error::message(format!("waiting for {shown}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::message(format!("{shown} failed ({status})")))
    }
}

pub fn run(cli: &Cli, ctx: &Context, args: &SecretsArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let templates = Templates::load(None)?;
    let vars = variables(
        target,
        args.driver.as_deref(),
        &args.key,
        args.direct_key.as_deref(),
        &templates,
    )?;
    let reveal = args.show_password || args.apply;
    let mut values = Vec::new();
    for (key, url) in &vars {
        values.push((key.clone(), show(url, reveal, &config)?));
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-database", k8s_name(&target.name)));
    match args.to {
        SecretStore::Modal => {
            if args.apply {
                require_tool("modal")?;
                let mut dotenv = tempfile::Builder::new()
                    .prefix(".poolwright-secret-")
                    .tempfile()
                    .map_err(|e| Error::message(format!("temporary file: {e}")))?;
                for (k, v) in &values {
                    writeln!(dotenv, "{k}={}", write_value(v, None))
                        .map_err(|e| Error::message(e.to_string()))?;
                }
                let mut cmd = Command::new("modal");
                cmd.args(["secret", "create", &name, "--force", "--from-dotenv"])
                    .arg(dotenv.path());
                run_tool(cmd, None)?;
                eprintln!("created Modal secret `{name}` with {}", keys(&values));
            } else {
                let pairs: Vec<String> = values
                    .iter()
                    .map(|(k, v)| shell_quote(&format!("{k}={v}")))
                    .collect();
                println!(
                    "modal secret create {} {} --force",
                    shell_quote(&name),
                    pairs.join(" ")
                );
            }
        }
        SecretStore::Kubernetes => {
            if !valid_k8s_name(&name) {
                return Err(Error::message(format!("`{name}` is not a valid Kubernetes object name"))
                    .with_hint("lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"));
            }
            let mut out = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n");
            out.push_str(&format!("  name: {name}\n"));
            if let Some(ns) = &args.namespace {
                out.push_str(&format!("  namespace: {}\n", yaml_quote(ns)));
            }
            out.push_str("  labels:\n    app.kubernetes.io/managed-by: poolwright\n");
            out.push_str(&format!(
                "    poolwright.dev/target: {}\n",
                yaml_quote(&k8s_name(&target.name))
            ));
            out.push_str("type: Opaque\nstringData:\n");
            for (k, v) in &values {
                out.push_str(&format!("  {k}: {}\n", yaml_quote(v)));
            }
            if args.apply {
                require_tool("kubectl")?;
                let mut cmd = Command::new("kubectl");
                cmd.args(["apply", "-f", "-"]);
                run_tool(cmd, Some(&out))?;
            } else {
                print!("{out}");
            }
        }
        SecretStore::Github => {
            for (k, v) in &values {
                let mut gh = vec!["gh".to_string(), "secret".into(), "set".into(), k.clone()];
                if let Some(env) = &args.github_env {
                    gh.extend(["--env".into(), env.clone()]);
                }
                if args.apply {
                    require_tool("gh")?;
                    let mut cmd = Command::new(&gh[0]);
                    cmd.args(&gh[1..]);
                    // gh reads the value from stdin when --body is not given.
                    run_tool(cmd, Some(v))?;
                    eprintln!("set GitHub secret {k}");
                } else {
                    let gh: Vec<String> = gh.iter().map(|w| shell_quote(w)).collect();
                    println!("printf '%s' {} | {}", shell_quote(v), gh.join(" "));
                }
            }
        }
        SecretStore::Docker => {
            if args.apply {
                return Err(Error::message("--apply does not apply to Docker env-files")
                    .with_hint("redirect the output to a file and pass it with `docker run --env-file FILE`"));
            }
            // docker's --env-file takes everything after `=` literally: no quotes.
            for (k, v) in &values {
                println!("{k}={v}");
            }
        }
        SecretStore::Aws => {
            let object: serde_json::Map<String, serde_json::Value> =
                values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            if args.apply {
                return Err(Error::message("poolwright cannot write to AWS Secrets Manager itself yet").with_hint(format!(
                    "pipe the JSON (with --show-password) to `aws secretsmanager put-secret-value --secret-id {name} --secret-string file:///dev/stdin`"
                )));
            }
            println!("{}", serde_json::to_string_pretty(&object).expect("json"));
            eprintln!(
                "store it with: poolwright secrets {} --to aws --show-password | aws secretsmanager put-secret-value --secret-id {} --secret-string file:///dev/stdin",
                shell_quote(&target.name),
                shell_quote(&name)
            );
        }
    }
    Ok(())
}

fn keys(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_a_real_shell() {
        for s in [
            "plain",
            "it's",
            "a b",
            "$HOME",
            "\"q\"",
            "back\\slash",
            "new\nline",
            "",
            "p@ss:w/rd#%?&",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s, "{s:?}");
        }
    }

    #[test]
    fn kubernetes_names() {
        assert_eq!(k8s_name("Prod_EU"), "prod-eu");
        assert!(valid_k8s_name("prod-database"));
        assert!(!valid_k8s_name("Prod"));
        assert!(!valid_k8s_name("-x"));
    }
}
