//! The setup wizard behind `poolwright init`.
//!
//! One code path: the questions ([`pgbouncer`], [`supabase`], [`neon`],
//! [`managed`]: one module per provider module) collect answers; each
//! provider renders its target's YAML block from a template
//! (`templates/init/*.yaml.tera`, comments included); and the file text is
//! checked by the real loader ([`config::parse_with`], with the manifests
//! and state the CLI uses). Every answer is checked on the spot: the
//! candidate file, with harmless placeholders for what is not answered yet,
//! is parsed, and the diagnostics for the field just asked are the reasons
//! to ask again. Whoever answers is a [`Prompter`]: a person (inquire) or
//! the flags of `init --no-input`.
//!
//! Nothing is written until the end ([`Outcome::write`]): a new file gets
//! `version: 1`, `targets:` and the block; an existing file gets the block
//! inserted as text ([`insert`]), so its comments, order and other targets
//! stay byte for byte. Passwords never go into the YAML: it gets
//! `password: "${VAR}"`, and a generated password goes only into `.env`.
//!
//! Files: this one holds the provider choice, [`Setup`] (the existing file
//! and `.env` read first) and [`run`]; [`Session`] (session.rs) asks and
//! re-checks; [`Outcome`] (outcome.rs) writes and names the next steps;
//! text.rs the YAML, sentence and shell-word helpers.

pub mod insert;
pub mod managed;
pub mod neon;
mod outcome;
pub mod pgbouncer;
pub mod prompter;
mod session;
pub mod supabase;
mod text;

pub use self::outcome::{EnvFile, Outcome, Step};
pub use self::session::Session;
pub use self::text::*;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use self::prompter::{Choice, Prompter, Question, Stop};
use crate::config;
use crate::diagnostic::{Diagnostics, did_you_mean};
use crate::error::Error;
use crate::providers::DecodeContext;
use crate::providers::manifest::{Manifest, Module, Registry};
use crate::state::State;
use crate::yaml::reader::EnvLookup;

/// The target name while the name question has not been answered.
const PLACEHOLDER_TARGET: &str = "wizard-target";

/// The provider modules the wizard has questions for. (Compared, not
/// matched, with [`Module`], so a module the wizard does not know yet is
/// simply not offered.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PgBouncer,
    Supabase,
    Neon,
    Managed,
}

impl Kind {
    pub fn of(manifest: &Manifest) -> Option<Kind> {
        [
            (Module::PgBouncer, Kind::PgBouncer),
            (Module::Supabase, Kind::Supabase),
            (Module::Neon, Kind::Neon),
            (Module::Managed, Kind::Managed),
        ]
        .into_iter()
        .find(|(m, _)| *m == manifest.module)
        .map(|(_, k)| k)
    }
}

/// Where the wizard writes, read once at the start.
pub struct Setup {
    /// The config file, as the process reaches it.
    pub path: PathBuf,
    /// The config file as the user named it, for messages.
    pub shown: PathBuf,
    /// The config's text when the file exists.
    pub existing: Option<String>,
    insertion: Option<insert::Insertion>,
    /// The targets the existing file has.
    pub existing_names: Vec<String>,
    /// Problems the existing file has already: not the wizard's to report.
    existing_problems: Vec<(String, String)>,
    pub context: DecodeContext,
    /// `.env` beside the config.
    pub env_path: PathBuf,
    pub env_shown: PathBuf,
}

impl Setup {
    /// Reads the config at `path` (if any) and what loading it draws on.
    pub fn open(path: &Path, shown: &Path, env: EnvLookup<'_>) -> Result<Setup, Error> {
        let existing = match std::fs::metadata(path) {
            // read_bytes refuses directories and files over the size limit.
            Ok(_) => {
                let bytes = config::source::read_bytes(path, shown)?;
                Some(String::from_utf8(bytes).map_err(|_| {
                    Error::message(format!(
                        "{} is not UTF-8 text; poolwright will not change it",
                        shown.display()
                    ))
                })?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(shown, &e)),
        };
        if let Some(text) = &existing
            && let Err(problems) = crate::yaml::node::parse(shown, text)
        {
            return Err(Error::Config(Diagnostics {
                source: Some(text.clone()),
                items: problems,
            }));
        }
        let insertion = match &existing {
            Some(text) => Some(insert::plan(text).map_err(|why| {
                Error::message(format!("cannot add a target to {}: {why}", shown.display()))
                    .with_hint("add the target by hand, or name another file with `--config FILE`")
            })?),
            None => None,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let context = DecodeContext {
            registry: Registry::with_user_dir(&dir.join("providers"))?,
            state: State::load(path)?,
        };
        let existing_names = existing
            .as_deref()
            .map(insert::target_names)
            .unwrap_or_default();
        let existing_problems = match &existing {
            Some(text) => match config::parse_with(shown, text.clone(), env, &context) {
                Err(Error::Config(d)) => {
                    d.items.into_iter().map(|i| (i.field, i.message)).collect()
                }
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        let env_shown = shown
            .parent()
            .map_or_else(|| PathBuf::from(".env"), |d| d.join(".env"));
        Ok(Setup {
            path: path.to_path_buf(),
            shown: shown.to_path_buf(),
            existing,
            insertion,
            existing_names,
            existing_problems,
            context,
            env_path: dir.join(".env"),
            env_shown,
        })
    }

    /// The `.env` text beside the config (empty when there is none).
    fn env_text(&self) -> Result<Option<String>, Error> {
        match crate::files::read_host_file(&self.env_path) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => String::from_utf8(bytes).map(Some).map_err(|_| {
                Error::message(format!(
                    "{} is not UTF-8 text; poolwright will not change it",
                    self.env_shown.display()
                ))
            }),
            Err(e) => Err(Error::io(&self.env_shown, &e)),
        }
    }
}

/// The trade-off of each pool mode, for questions and comments.
pub fn pool_mode_doc(mode: &str) -> &'static str {
    match mode {
        "transaction" => {
            "a server connection per transaction: for serverless and many short-lived clients; no session state (SET, advisory locks, LISTEN, prepared statements on PgBouncer < 1.21)"
        }
        "session" => {
            "a server connection per client: session features work; needs as many server connections as clients"
        }
        "statement" => {
            "a server connection per statement: transactions of several statements are refused"
        }
        _ => "",
    }
}

/// Select options for pool modes.
pub fn pool_mode_choices(modes: &[&str]) -> Vec<Choice> {
    modes
        .iter()
        .map(|m| Choice {
            value: (*m).to_string(),
            label: format!("{m}: {}", pool_mode_doc(m)),
        })
        .collect()
}

/// A password made here: 32 letters and digits from the OS-seeded CSPRNG.
pub fn generate_password() -> String {
    use rand::RngExt as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn valid_var_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn target_question(setup: &Setup) -> Question {
    let suggestion = ["prod", "staging", "preview", "dev"]
        .into_iter()
        .find(|n| !setup.existing_names.iter().any(|e| e == n))
        .map(str::to_string);
    Question::new("target", "Target name")
        .help("one place an app connects to, e.g. prod, staging (letters, digits, `_`, `-`, `.`)")
        .suggest(suggestion)
        .placeholder("e.g. prod")
}

/// The providers a target can use, self-hosted first, each with its summary.
fn provider_choices(registry: &Registry) -> Vec<Choice> {
    let mut manifests: Vec<(&Manifest, Kind)> = registry
        .manifests
        .iter()
        .filter_map(|m| Kind::of(m).map(|k| (*m, k)))
        .collect();
    // Stable: the registry's order within each kind.
    manifests.sort_by_key(|(_, k)| *k as u8);
    let manifests: Vec<&Manifest> = manifests.into_iter().map(|(m, _)| m).collect();
    let width = manifests.iter().map(|m| m.name.len()).max().unwrap_or(0);
    manifests
        .iter()
        .map(|m| Choice {
            value: m.name.clone(),
            label: format!("{:width$}  {}", m.name, one_line(&m.summary)),
        })
        .collect()
}

/// The names of the providers the wizard offers, in its order.
pub fn offered(registry: &Registry) -> Vec<String> {
    provider_choices(registry)
        .into_iter()
        .map(|c| c.value)
        .collect()
}

fn provider_question() -> Question {
    Question::new("provider", "Which pooler does this app connect through?")
        .help("↑↓ to move, Enter to choose, type to filter")
}

/// Runs the questions and checks the result; writes nothing.
pub fn run(setup: &Setup, env: EnvLookup<'_>, p: &mut dyn Prompter) -> Result<Outcome, Stop> {
    let choices = provider_choices(&setup.context.registry);
    let question = provider_question();
    let answer = p.select(&question, &choices, 0)?;
    let Some(manifest) = setup.context.registry.find(&answer) else {
        if answer == question.script_placeholder() {
            // A script without --provider: name every missing flag we can.
            p.text(&target_question(setup))?;
            p.done()?;
        }
        let names = setup.context.registry.names();
        return Err(Stop::Usage {
            message: format!("unknown provider `{answer}`"),
            hint: Some(match did_you_mean(&answer, names.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("the providers are: {}", names.join(", ")),
            }),
        });
    };
    let Some(kind) = Kind::of(manifest) else {
        return Err(Stop::Usage {
            message: format!(
                "`poolwright init` cannot set up a `{}` target yet",
                manifest.name
            ),
            hint: Some(format!(
                "write it into {} by hand (see the README)",
                setup.shown.display()
            )),
        });
    };
    let mut session = Session::new(setup, env, manifest, kind)?;
    session.ask_target(p)?;
    match kind {
        Kind::PgBouncer => pgbouncer::ask(&mut session, p)?,
        Kind::Supabase => supabase::ask(&mut session, p)?,
        Kind::Neon => neon::ask(&mut session, p)?,
        Kind::Managed => managed::ask(&mut session, p)?,
    }
    p.done()?;
    session.finish()
}

/// The `--no-input` command for the given flags, with a placeholder for
/// each required answer that is missing (for a non-terminal stdin).
pub fn suggest(setup: &Setup, env: EnvLookup<'_>, flags: &BTreeMap<String, String>) -> String {
    let mut flags = flags.clone();
    flags
        .entry("provider".into())
        .or_insert_with(|| "pgbouncer".into());
    let mut p = prompter::ScriptedPrompter::new(flags);
    let _ = run(setup, env, &mut p);
    let mut out = String::from("poolwright init --no-input");
    for (key, value) in &p.trail {
        match key.strip_prefix("set.") {
            Some(field) => {
                let _ = write!(out, " --set {}", shell_word(&format!("{field}={value}")));
            }
            None if value.is_empty() => {
                let _ = write!(out, " --{key}");
            }
            None => {
                let _ = write!(out, " --{key} {}", shell_word(value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_read_back_as_typed() {
        assert_eq!(yaml_key("db.internal"), "db.internal");
        assert_eq!(yaml_key("my db"), "\"my db\"");
        assert_eq!(yaml_key("yes"), "\"yes\"");
        assert_eq!(yaml_key("-x"), "\"-x\"");
        assert_eq!(yaml_value("a$b"), "\"a$$b\"");
        assert_eq!(yaml_quoted("1.20"), "\"1.20\"");
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence("the cluster id"), "The cluster id.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn wraps_comments() {
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("a verylongword b", 4), ["a", "verylongword", "b"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn generated_passwords_are_long_and_plain() {
        let a = generate_password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }

    #[test]
    fn variable_names_and_shell_words() {
        assert!(valid_var_name("PROD_DB_PASSWORD"));
        assert!(!valid_var_name("1X"));
        assert!(!valid_var_name("A-B"));
        assert_eq!(shell_word("db.internal"), "db.internal");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
