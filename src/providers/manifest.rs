//! Provider manifests: each provider's facts as data (`providers/*.toml`).
//!
//! The manifests are embedded into the binary. A manifest names the Rust
//! module that gives the provider its behaviour (`module`); everything that
//! is only a fact (ports, URL scheme, the settings each PgBouncer version
//! knows) lives in the TOML file. [`Manifest::check`] validates a manifest
//! beyond what its types enforce; a test runs it on every embedded manifest.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

use super::managed_facts::ManagedFacts;
use super::pgbouncer::version::Version;
use crate::error::Error;

/// Embeds manifests by their file name under providers/.
macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../providers/", $name)))),*]
    };
}

/// The manifests built into poolwright: (file name, contents).
const BUILTIN: &[(&str, &str)] = embed!(
    "pgbouncer.toml",
    "supabase.toml",
    "neon.toml",
    "azure-flexible.toml",
    "digitalocean.toml",
    "crunchy-bridge.toml",
    "cloud-sql.toml",
    "rds-proxy.toml",
);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The value of `provider:` in poolwright.yaml.
    pub name: String,
    pub title: String,
    /// One line for lists and the wizard.
    pub summary: String,
    pub docs: String,
    /// The Rust module that implements this provider's behaviour.
    pub module: Module,
    pub connection: Connection,
    pub pgbouncer: Option<PgBouncerFacts>,
    pub managed: Option<ManagedFacts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Module {
    #[serde(rename = "pgbouncer")]
    PgBouncer,
    #[serde(rename = "supabase")]
    Supabase,
    #[serde(rename = "neon")]
    Neon,
    #[serde(rename = "rds-proxy")]
    RdsProxy,
    /// No Rust of its own: the `[managed]` section says it all.
    #[serde(rename = "managed")]
    Managed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub scheme: String,
    pub default_port: u16,
}

/// What a self-hosted PgBouncer accepts, per version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgBouncerFacts {
    pub default_version: Version,
    pub versions: Vec<Version>,
    /// From this version on, ini keys may be single-quoted (any characters but `'`).
    pub quoted_keys_since: Version,
    /// Where the distribution installs the binary (used in the systemd unit).
    pub binary: String,
    /// The Unix user the distribution runs PgBouncer as.
    pub service_user: String,
    pub settings: Vec<SettingSpec>,
    pub database_keys: Vec<SettingSpec>,
    pub user_keys: Vec<SettingSpec>,
}

/// One key PgBouncer knows: its type and the first version that has it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SettingType,
    pub since: Option<Version>,
    #[serde(default)]
    pub values: Vec<String>,
    /// Enum values that arrived later than the setting itself.
    #[serde(default)]
    pub values_since: BTreeMap<String, Version>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// A change needs a restart; SIGHUP does not apply it.
    #[serde(default)]
    pub restart: bool,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    String,
    Path,
    Int,
    Bool,
    Time,
    Enum,
    List,
}

impl SettingSpec {
    pub fn available_in(&self, version: Version) -> bool {
        self.since.is_none_or(|since| version >= since)
    }
}

impl PgBouncerFacts {
    pub fn setting(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }
}

impl Manifest {
    /// Checks what the types cannot: unique names, versions in range, enums
    /// with values, and that the module has the facts it needs.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(format!(
                "provider name `{}` must be lowercase letters, digits and `-`",
                self.name
            ));
        }
        match self.module {
            Module::PgBouncer => {
                let facts = self
                    .pgbouncer
                    .as_ref()
                    .ok_or("module `pgbouncer` needs a [pgbouncer] section")?;
                facts.check()
            }
            Module::Managed => {
                let facts = self
                    .managed
                    .as_ref()
                    .ok_or("module `managed` needs a [managed] section")?;
                facts.check()
            }
            Module::Supabase | Module::Neon | Module::RdsProxy => Ok(()),
        }
    }
}

impl PgBouncerFacts {
    fn check(&self) -> Result<(), String> {
        if !self.versions.contains(&self.default_version) {
            return Err(format!(
                "default_version {} is not in versions",
                self.default_version
            ));
        }
        let (first, last) = (self.versions[0], self.versions[self.versions.len() - 1]);
        for (section, specs) in [
            ("settings", &self.settings),
            ("database_keys", &self.database_keys),
            ("user_keys", &self.user_keys),
        ] {
            let mut seen = HashSet::new();
            for spec in specs {
                if !seen.insert(spec.name.as_str()) {
                    return Err(format!("{section}: `{}` is listed twice", spec.name));
                }
                let valid_name = spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid_name {
                    return Err(format!(
                        "{section}: `{}` is not a PgBouncer key name",
                        spec.name
                    ));
                }
                if let Some(since) = spec.since {
                    if since > last {
                        return Err(format!(
                            "{section}: `{}` since {since}, later than the newest version {last}",
                            spec.name
                        ));
                    }
                    if since <= first {
                        return Err(format!(
                            "{section}: `{}` since {since} is in every supported version; drop `since`",
                            spec.name
                        ));
                    }
                }
                if (spec.kind == SettingType::Enum) == spec.values.is_empty() {
                    return Err(format!(
                        "{section}: `{}`: `values` goes with type enum, and only there",
                        spec.name
                    ));
                }
                for value in spec.values_since.keys() {
                    if !spec.values.contains(value) {
                        return Err(format!(
                            "{section}: `{}`: values_since names unknown value `{value}`",
                            spec.name
                        ));
                    }
                }
                if let (Some(min), Some(max)) = (spec.min, spec.max)
                    && min > max
                {
                    return Err(format!("{section}: `{}`: min above max", spec.name));
                }
            }
        }
        Ok(())
    }
}

/// Parses one manifest file.
pub fn parse(file_name: &str, text: &str) -> Result<Manifest, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| format!("{file_name}: {e}"))?;
    manifest.check().map_err(|e| format!("{file_name}: {e}"))?;
    Ok(manifest)
}

/// The manifests built into the binary, parsed once.
pub fn builtin() -> &'static [Manifest] {
    static MANIFESTS: OnceLock<Vec<Manifest>> = OnceLock::new();
    MANIFESTS.get_or_init(|| {
        BUILTIN
            .iter()
            // The embedded manifests are checked by a unit test; a failure
            // here is a bug in poolwright, not in the user's input.
            .map(|(file, text)| {
                parse(file, text).unwrap_or_else(|e| panic!("built-in manifest: {e}"))
            })
            .collect()
    })
}

/// The built-in manifest called `name`.
pub fn find(name: &str) -> Option<&'static Manifest> {
    builtin().iter().find(|m| m.name == name)
}

/// The manifests a config can use: the built-in ones and the user's own
/// from `providers/*.toml` beside poolwright.yaml.
#[derive(Debug, Clone)]
pub struct Registry {
    pub manifests: Vec<&'static Manifest>,
}

impl Registry {
    pub fn builtin() -> Registry {
        Registry {
            manifests: builtin().iter().collect(),
        }
    }

    /// The built-in manifests plus every `*.toml` in `dir` (if it exists).
    /// A user's manifest is data only (`module = "managed"`) and may not
    /// take a built-in provider's name.
    pub fn with_user_dir(dir: &std::path::Path) -> Result<Registry, Error> {
        let mut registry = Registry::builtin();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(registry);
        };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        paths.sort();
        for path in paths {
            let text = crate::files::read_host_text(&path)
                .map_err(|e| Error::io(&path, &e))?
                .unwrap_or_default();
            let shown = path.display().to_string();
            // Data only: say so before checking what a module would need.
            let module = toml::from_str::<toml::Table>(&text)
                .ok()
                .and_then(|t| t.get("module").and_then(|m| m.as_str().map(str::to_string)));
            if module.as_deref().is_some_and(|m| m != "managed") {
                return Err(Error::message(format!(
                    "{shown}: a provider manifest of your own must be `module = \"managed\"`"
                ))
                .with_hint("the other modules (pgbouncer, supabase, neon, rds-proxy) are built into poolwright"));
            }
            let manifest = parse(&shown, &text).map_err(|e| {
                Error::message(format!("provider manifest {e}")).with_hint(
                    "see the built-in manifests in poolwright's providers/ for the format",
                )
            })?;
            if manifest.module != Module::Managed {
                return Err(Error::message(format!(
                    "{shown}: a provider manifest of your own must be `module = \"managed\"`"
                )));
            }
            if registry.find(&manifest.name).is_some() {
                return Err(Error::message(format!(
                    "{shown}: provider `{}` exists already; give yours another name",
                    manifest.name
                )));
            }
            let expected = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            if expected.as_deref() != Some(manifest.name.as_str()) {
                return Err(Error::message(format!(
                    "{shown}: the file name must be `{}.toml`",
                    manifest.name
                )));
            }
            // Lives as long as the process, like the built-in ones.
            registry.manifests.push(Box::leak(Box::new(manifest)));
        }
        Ok(registry)
    }

    pub fn find(&self, name: &str) -> Option<&'static Manifest> {
        self.manifests.iter().copied().find(|m| m.name == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.manifests.iter().map(|m| m.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_manifest_loads_and_checks() {
        for (file, text) in BUILTIN {
            let manifest = parse(file, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                format!("{}.toml", manifest.name),
                *file,
                "file name matches provider name"
            );
        }
        assert!(find("pgbouncer").is_some());
    }

    #[test]
    fn pgbouncer_facts_match_the_reference() {
        let facts = find("pgbouncer").unwrap().pgbouncer.as_ref().unwrap();
        let since = |name: &str| facts.setting(name).unwrap().since.map(|v| v.to_string());
        // The settings whose absence in 1.18 makes it refuse to start.
        assert_eq!(since("max_prepared_statements").as_deref(), Some("1.21"));
        assert_eq!(since("max_db_client_connections").as_deref(), Some("1.24"));
        assert_eq!(since("peer_id").as_deref(), Some("1.19"));
        assert_eq!(since("default_pool_size"), None);
        assert_eq!(facts.default_version.to_string(), "1.18");
        let reserve = facts
            .database_keys
            .iter()
            .find(|k| k.name == "reserve_pool_size")
            .unwrap();
        assert_eq!(
            reserve.since.map(|v| v.to_string()).as_deref(),
            Some("1.24")
        );
    }

    #[test]
    fn check_rejects_inconsistent_manifests() {
        let good = BUILTIN[0].1;
        let twice =
            format!("{good}\n[[pgbouncer.settings]]\nname = \"pool_mode\"\ntype = \"string\"\n");
        assert!(
            parse("x.toml", &twice)
                .unwrap_err()
                .contains("listed twice")
        );
        let enum_without_values =
            format!("{good}\n[[pgbouncer.settings]]\nname = \"zzz\"\ntype = \"enum\"\n");
        assert!(
            parse("x.toml", &enum_without_values)
                .unwrap_err()
                .contains("values")
        );
        let unknown_field = good.replace("summary =", "sumary =");
        assert!(parse("x.toml", &unknown_field).is_err());
    }
}
