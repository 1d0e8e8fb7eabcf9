//! What the wizard ends with: the config (and `.env`) it writes, checked
//! not to have changed while it ran, and the next steps it suggests.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Kind, shell_word};
use crate::error::Error;

/// The `.env` the wizard writes.
#[derive(Debug)]
pub struct EnvFile {
    pub path: PathBuf,
    pub shown: PathBuf,
    /// The text when the wizard read it (None: no file).
    pub(super) original: Option<String>,
    pub(super) text: String,
    /// The variable that holds the generated password.
    pub var: String,
}

/// What the wizard made, ready to write.
#[derive(Debug)]
pub struct Outcome {
    pub config_path: PathBuf,
    pub config_shown: PathBuf,
    pub(super) original: Option<String>,
    /// The config file's new text.
    pub text: String,
    pub target: String,
    pub provider: String,
    pub kind: Kind,
    /// The provider as `plan` describes the target.
    pub described: String,
    pub env: Option<EnvFile>,
    pub password_var: String,
    /// The database role the URL uses.
    pub role: String,
    /// The pooled URL is known without an API call.
    pub offline_url: bool,
}

/// A next command and what it is for.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub command: String,
    pub why: String,
}

fn unchanged_since(path: &Path, shown: &Path, original: Option<&String>) -> Result<(), Error> {
    let now = crate::files::read_host_file(path).map_err(|e| Error::io(shown, &e))?;
    if now.as_deref() != original.map(String::as_bytes) {
        return Err(Error::message(format!(
            "{} changed while `poolwright init` ran; nothing was written",
            shown.display()
        ))
        .with_hint("run `poolwright init` again"));
    }
    Ok(())
}

fn create_parent(path: &Path, shown: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::dirs::create_dirs(dir, 0o755, None).map_err(|e| Error::io(shown, &e))?;
    }
    Ok(())
}

impl Outcome {
    /// Writes `.env` (when a password was generated), then the config,
    /// each atomically; refuses when either changed since it was read.
    pub fn write(&self) -> Result<(), Error> {
        unchanged_since(
            &self.config_path,
            &self.config_shown,
            self.original.as_ref(),
        )?;
        if let Some(env) = &self.env {
            unchanged_since(&env.path, &env.shown, env.original.as_ref())?;
            create_parent(&env.path, &env.shown)?;
            let written = match env.original {
                None => crate::files::write_atomic(&env.path, env.text.as_bytes(), 0o600, None),
                Some(_) => crate::files::write_if_changed(
                    &env.path,
                    env.text.as_bytes(),
                    0o600,
                    None,
                    true,
                )
                .map(|_| ()),
            };
            written.map_err(|e| Error::io(&env.shown, &e))?;
        }
        create_parent(&self.config_path, &self.config_shown)?;
        let written = match self.original {
            None => {
                crate::files::write_atomic(&self.config_path, self.text.as_bytes(), 0o644, None)
            }
            Some(_) => crate::files::write_if_changed(
                &self.config_path,
                self.text.as_bytes(),
                0o644,
                None,
                false,
            )
            .map(|_| ()),
        };
        written.map_err(|e| Error::io(&self.config_shown, &e))
    }

    /// True when the config file is new.
    pub fn created(&self) -> bool {
        self.original.is_none()
    }

    /// The commands to run next, with `config_flag` (`--config FILE `, or
    /// empty) after `poolwright`.
    pub fn next_steps(&self, config_flag: &str) -> Vec<Step> {
        let pw = format!("poolwright {config_flag}");
        let name = &self.target;
        let step = |command: String, why: &str| Step {
            command,
            why: why.to_string(),
        };
        let mut steps = vec![step(
            format!("{pw}plan"),
            "what apply would do, and the URL (offline)",
        )];
        if let Some(env) = &self.env {
            let shown = env.shown.display().to_string();
            let path = if shown.contains('/') {
                shell_word(&shown)
            } else {
                format!("./{}", shell_word(&shown))
            };
            steps.insert(
                0,
                step(
                    format!("set -a; . {path}; set +a"),
                    "load the generated password into this shell",
                ),
            );
        } else {
            steps.insert(
                0,
                step(
                    format!("export {}=...", self.password_var),
                    "the password, for render, apply and url --show-password",
                ),
            );
        }
        match self.kind {
            Kind::PgBouncer => {
                steps.push(step(
                    format!("{pw}render {name} --out pgbouncer-files"),
                    "pgbouncer.ini, userlist.txt and the systemd unit, to look at",
                ));
                steps.push(step(
                    format!("sudo -E {pw}apply {name}"),
                    "install them on the PgBouncer host and store the SCRAM verifier on the server",
                ));
            }
            Kind::Supabase if !self.offline_url => steps.push(step(
                format!("SUPABASE_ACCESS_TOKEN=... {pw}apply {name}"),
                "read the pooler host from the Supabase Management API",
            )),
            Kind::Neon if !self.offline_url => steps.push(step(
                format!("NEON_API_KEY=... {pw}apply {name}"),
                "read the endpoint's hosts from the Neon API",
            )),
            _ => {}
        }
        steps.push(step(
            format!("{pw}url {name}"),
            "the DATABASE_URL for your app (password masked; --driver D for your driver)",
        ));
        steps.push(step(
            format!("{pw}env {name}"),
            "write DATABASE_URL into .env",
        ));
        steps
    }
}
