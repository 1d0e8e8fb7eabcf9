//! What `apply` learned from cloud APIs, kept beside poolwright.yaml.
//!
//! Some facts cannot be known offline (Supabase's pooler host carries an
//! `aws-0`/`aws-1` prefix that only the API knows; a Neon endpoint's host).
//! `apply` stores them in `.poolwright-state.json` so that `url`, `plan` and
//! `env` work offline afterwards. The file never holds a secret: only host
//! names and ids, which the user may commit or ignore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::files::write_if_changed;

pub const FILE_NAME: &str = ".poolwright-state.json";

/// What `apply` may learn about a target: the keys of the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Supabase: the shared pooler's host (`aws-N-<region>.pooler.supabase.com`).
    PoolerHost,
    /// Neon: the endpoint's pooled host and its direct host.
    PooledHost,
    DirectHost,
    /// RDS Proxy: the proxy's endpoint, and the ARN of the Secrets Manager
    /// secret poolwright created for it (removed again by destroy).
    Endpoint,
    CreatedSecret,
}

impl Learned {
    /// The key in `.poolwright-state.json`.
    pub fn key(self) -> &'static str {
        match self {
            Learned::PoolerHost => "pooler_host",
            Learned::PooledHost => "pooled_host",
            Learned::DirectHost => "direct_host",
            Learned::Endpoint => "endpoint",
            Learned::CreatedSecret => "created_secret",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// target name -> key -> value, e.g. staging -> pooler_host -> aws-1-...
    #[serde(default)]
    pub targets: BTreeMap<String, BTreeMap<String, String>>,
}

impl State {
    /// The state file beside `config`.
    pub fn path_for(config: &Path) -> PathBuf {
        config
            .parent()
            .map_or_else(|| PathBuf::from(FILE_NAME), |d| d.join(FILE_NAME))
    }

    /// Reads the state beside `config`; a missing file is an empty state.
    pub fn load(config: &Path) -> Result<State, Error> {
        let path = Self::path_for(config);
        match crate::files::read_host_text(&path) {
            Ok(Some(text)) => serde_json::from_str(&text).map_err(|e| {
                Error::message(format!(
                    "{}: not a poolwright state file: {e}",
                    path.display()
                ))
                .with_hint("delete it; `poolwright apply` writes it again")
            }),
            Ok(None) => Ok(State::default()),
            Err(e) => Err(Error::io(&path, &e)),
        }
    }

    pub fn get(&self, target: &str, what: Learned) -> Option<&str> {
        self.targets
            .get(target)
            .and_then(|t| t.get(what.key()))
            .map(String::as_str)
    }

    pub fn set(&mut self, target: &str, what: Learned, value: &str) {
        self.targets
            .entry(target.to_string())
            .or_default()
            .insert(what.key().to_string(), value.to_string());
    }

    /// Forgets what was learned about `target` (for destroy).
    pub fn forget(&mut self, target: &str, what: &[Learned]) {
        if let Some(entries) = self.targets.get_mut(target) {
            for w in what {
                entries.remove(w.key());
            }
        }
        self.targets.retain(|_, v| !v.is_empty());
    }

    /// Writes the state beside `config` (only when it changed).
    pub fn save(&self, config: &Path) -> Result<(), Error> {
        let path = Self::path_for(config);
        if self.targets.is_empty() && !path.exists() {
            // Nothing learned: no file to leave behind.
            return Ok(());
        }
        let text = serde_json::to_string_pretty(self).expect("state serialises") + "\n";
        write_if_changed(&path, text.as_bytes(), 0o644, None, false)
            .map_err(|e| Error::io(&path, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("poolwright.yaml");
        assert_eq!(State::load(&config).unwrap(), State::default());
        let mut state = State::default();
        state.set(
            "staging",
            Learned::PoolerHost,
            "aws-1-us-east-1.pooler.supabase.com",
        );
        state.save(&config).unwrap();
        let back = State::load(&config).unwrap();
        assert_eq!(
            back.get("staging", Learned::PoolerHost),
            Some("aws-1-us-east-1.pooler.supabase.com")
        );
        std::fs::write(State::path_for(&config), "{oops").unwrap();
        assert!(
            State::load(&config)
                .unwrap_err()
                .to_string()
                .contains("not a poolwright state file")
        );
    }
}
