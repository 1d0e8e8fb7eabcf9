//! `poolwright secrets TARGET --to STORE`: the URL as a secret where the
//! deployment reads it. Printed output masks the password unless
//! `--show-password`; the printed Modal and GitHub commands never hold the
//! value at all: they get it from `poolwright` itself, through a pipe or a
//! 0600 file the command names and removes, so they work as printed and
//! the value is never in anyone's argv or shell history. `--apply` runs
//! the store's own CLI with the real value on its stdin, or (Modal, which
//! reads only regular files) in an anonymous memory file passed as
//! `/dev/fd/N`: nothing on disk that a killed run could leave behind.
//! Stores whose consumers run elsewhere (Modal, GitHub, AWS) get a warning
//! when the URL's host is one they cannot reach, such as 127.0.0.1.

use std::io::{Seek as _, Write as _};
use std::process::{Command, Stdio};

use serde_json::json;

use super::load;
use crate::cli::{Cli, SecretStore, SecretsArgs};
use crate::context::Context;
use crate::diagnostic::printable;
use crate::envfile::write_value;
use crate::error::Error;
use crate::outputs::{check_key, show, variables};
use crate::render::Templates;
use crate::url::{PgUrl, Reach, host_reach};

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

/// A file holding `text` that has no name anywhere, so that no run, killed
/// or not, can leave it behind: an anonymous memory file (memfd) on Linux,
/// elsewhere (or where memfd is refused) a temporary file that has no name
/// (O_TMPFILE) or is unlinked as it is made. The descriptor is inherited by
/// the next child started (close-on-exec is off): pass it as `/dev/fd/N`.
fn unnamed_file(text: &str) -> std::io::Result<std::fs::File> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let memfd = {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        memfd_create(c"poolwright-secret", MFdFlags::MFD_CLOEXEC)
            .ok()
            .map(std::fs::File::from)
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let memfd = None;
    let mut file = match memfd {
        Some(file) => file,
        None => tempfile::tempfile()?,
    };
    file.write_all(text.as_bytes())?;
    file.rewind()?;
    // Only now, after every other child (`modal --version`) was started.
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )?;
    Ok(file)
}

/// Who reads a secret from `store`, for stores whose consumers run on
/// other machines (Kubernetes pods and Docker containers may run beside
/// the pooler, a sidecar on 127.0.0.1).
fn consumers(store: SecretStore) -> Option<&'static str> {
    match store {
        SecretStore::Modal => Some("Modal's functions"),
        SecretStore::Github => Some("GitHub Actions' hosted runners"),
        SecretStore::Aws => Some("the AWS services that read the secret"),
        SecretStore::Kubernetes | SecretStore::Docker => None,
    }
}

/// A warning for each URL host the store's consumers cannot reach.
fn unreachable_hosts(store: SecretStore, vars: &[(String, PgUrl)]) -> Vec<String> {
    let Some(who) = consumers(store) else {
        return Vec::new();
    };
    let mut hosts: Vec<&str> = Vec::new();
    for (_, url) in vars {
        if !hosts.contains(&url.host.as_str()) {
            hosts.push(&url.host);
        }
    }
    let fix = "set the target's public_host (or its host) to an address they can reach";
    hosts
        .into_iter()
        .filter_map(|host| {
            let is = match (host_reach(host)?, store) {
                (Reach::ThisMachine, _) => "is this machine",
                (Reach::UnixSocket, _) => "is a Unix socket directory on this machine",
                (Reach::LinkLocal, _) => "is a link-local address (one network segment)",
                // Services in the VPC reach its private addresses.
                (Reach::PrivateNetwork, SecretStore::Aws) => return None,
                (Reach::PrivateNetwork, SecretStore::Github) => {
                    "is a private address (only a self-hosted runner inside that network reaches it)"
                }
                (Reach::PrivateNetwork, _) => "is a private address",
            };
            Some(format!(
                "warning: the URL's host {} {is}: {who} cannot reach it; {fix}",
                printable(host)
            ))
        })
        .collect()
}

/// The `poolwright` command that prints this target's variables, real
/// values, for `store`: what the printed Modal, GitHub and AWS commands
/// read them from. Modal and GitHub read the env-file of `--to docker`
/// (`KEY=value` lines): the URL poolwright builds never needs quoting (its
/// parts are percent-encoded), so the lines read the same by Docker's,
/// python-dotenv's (modal) and godotenv's (gh) rules.
fn env_file_command(cli: &Cli, args: &SecretsArgs, store: &str) -> String {
    let mut words = vec!["poolwright".to_string()];
    if let Some(config) = &cli.config {
        words.push("--config".into());
        words.push(shell_quote(&config.to_string_lossy()));
    }
    words.extend(["secrets".into(), shell_quote(&args.target)]);
    words.extend(["--to".into(), store.into()]);
    if let Some(driver) = args.driver {
        words.extend(["--driver".into(), shell_quote(driver.name)]);
    }
    if args.key != crate::outputs::URL_KEY {
        words.extend(["--key".into(), shell_quote(&args.key)]);
    }
    if let Some(direct) = &args.direct_key {
        words.extend(["--direct-key".into(), shell_quote(direct)]);
    }
    words.push("--show-password".into());
    words.join(" ")
}

pub fn run(cli: &Cli, ctx: &Context, args: &SecretsArgs) -> Result<(), Error> {
    let config = load(cli, ctx)?;
    let target = config.target(&args.target)?;
    let templates = Templates::load(None)?;
    check_key("--key", &args.key)?;
    if let Some(direct) = &args.direct_key {
        check_key("--direct-key", direct)?;
    }
    let vars = variables(
        target,
        args.driver,
        &args.key,
        args.direct_key.as_deref(),
        &templates,
    )?;
    for warning in unreachable_hosts(args.to, &vars) {
        eprintln!("{warning}");
    }
    // The printed Modal and GitHub commands hold no value: none is needed.
    let printed_command =
        !args.apply && matches!(args.to, SecretStore::Modal | SecretStore::Github);
    let reveal = args.show_password || args.apply;
    let mut values = Vec::new();
    if !printed_command {
        for (key, url) in &vars {
            values.push((key.clone(), show(url, reveal, &config)?));
        }
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-database", k8s_name(&target.name)));
    match args.to {
        SecretStore::Modal => {
            if args.apply {
                require_tool("modal")?;
                let mut dotenv = String::new();
                for (k, v) in &values {
                    dotenv.push_str(&format!("{k}={}\n", write_value(v, None)));
                }
                // modal reads --from-dotenv only from a regular file (a pipe
                // is refused), so: a file with no name, gone with the run.
                let file = unnamed_file(&dotenv)
                    .map_err(|e| Error::message(format!("a file for the secret: {e}")))?;
                let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
                let mut cmd = Command::new("modal");
                cmd.args(["secret", "create", &name, "--force", "--from-dotenv"])
                    .arg(format!("/dev/fd/{fd}"));
                let ran = run_tool(cmd, None);
                drop(file);
                ran?;
                eprintln!("created Modal secret `{name}` with {}", keys(&values));
            } else {
                // modal refuses a pipe (`<(...)`) for --from-dotenv: a 0600
                // file from mktemp, removed after `;` even when a step fails.
                println!(
                    "f=$(mktemp) && {} > \"$f\" && modal secret create {} --from-dotenv \"$f\" --force; rm -f \"$f\"",
                    env_file_command(cli, args, "docker"),
                    shell_quote(&name)
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
            let env: Vec<String> = match &args.github_env {
                Some(env) => vec!["--env".into(), env.clone()],
                None => Vec::new(),
            };
            if args.apply {
                require_tool("gh")?;
                for (k, v) in &values {
                    let mut cmd = Command::new("gh");
                    cmd.args(["secret", "set", k]).args(&env);
                    // gh reads the value from stdin when --body is not given.
                    run_tool(cmd, Some(v))?;
                    eprintln!("set GitHub secret {k}");
                }
            } else {
                // `-f -`: gh reads an env-file from stdin, every key at once;
                // an empty one (poolwright failed) is an error, not an empty secret.
                let env: Vec<String> = env.iter().map(|w| shell_quote(w)).collect();
                let mut gh = vec!["gh", "secret", "set", "-f", "-"];
                gh.extend(env.iter().map(String::as_str));
                println!(
                    "{} | {}",
                    env_file_command(cli, args, "docker"),
                    gh.join(" ")
                );
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
                "store it with: {} | aws secretsmanager put-secret-value --secret-id {} --secret-string file:///dev/stdin",
                env_file_command(cli, args, "aws"),
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
