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

pub mod insert;
pub mod managed;
pub mod neon;
pub mod pgbouncer;
pub mod prompter;
pub mod supabase;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::prompter::{Choice, Prompter, Question, Stop, Verdict};
use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::error::Error;
use crate::providers::DecodeContext;
use crate::providers::ProviderTarget;
use crate::providers::manifest::{Manifest, Module, Registry};
use crate::render::Templates;
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

/// A value for the YAML: plain when that reads back as the same string,
/// else double-quoted (JSON's string syntax is valid YAML). For keys, which
/// poolwright does not interpolate.
pub fn yaml_key(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialise")
    }
}

/// A value poolwright reads with `${VAR}` interpolation: `$` is doubled,
/// so the file means exactly what was typed.
pub fn yaml_value(s: &str) -> String {
    yaml_key(&s.replace('$', "$$"))
}

/// Always double-quoted (for versions like "1.20", which YAML would read
/// as the number 1.2).
pub fn yaml_quoted(s: &str) -> String {
    serde_json::to_string(&s.replace('$', "$$")).expect("strings serialise")
}

/// A comment's text on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as a sentence: a capital first letter and a full stop.
pub fn sentence(text: &str) -> String {
    let text = one_line(text);
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return text;
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// `text` in lines of at most `width` characters (longer words stay whole),
/// for comments.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
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

/// A generated password and where it goes.
struct Generated {
    var: String,
    password: String,
}

/// The answers so far, and how to turn them into the file.
pub struct Session<'a> {
    setup: &'a Setup,
    env: EnvLookup<'a>,
    pub manifest: &'static Manifest,
    pub kind: Kind,
    /// The target's name (a placeholder until asked).
    pub target: String,
    /// Question key -> answer; absent when not asked or left empty.
    answers: BTreeMap<String, String>,
    /// Computed comments for the block (the pool size).
    notes: BTreeMap<String, String>,
    generated: Option<Generated>,
    templates: Templates,
}

impl<'a> Session<'a> {
    fn new(
        setup: &'a Setup,
        env: EnvLookup<'a>,
        manifest: &'static Manifest,
        kind: Kind,
    ) -> Result<Self, Error> {
        Ok(Session {
            setup,
            env,
            manifest,
            kind,
            target: PLACEHOLDER_TARGET.into(),
            answers: BTreeMap::new(),
            notes: BTreeMap::new(),
            generated: None,
            templates: Templates::load(None)?,
        })
    }

    /// The answer to the question `key`, if given.
    pub fn answer(&self, key: &str) -> Option<&str> {
        self.answers.get(key).map(String::as_str)
    }

    /// The answer, else `placeholder` when `fill` (a candidate file).
    pub fn value(&self, key: &str, fill: bool, placeholder: &str) -> Option<String> {
        match self.answer(key) {
            Some(v) => Some(v.to_string()),
            None if fill => Some(placeholder.to_string()),
            None => None,
        }
    }

    pub fn note_value(&self, key: &str) -> Option<&str> {
        self.notes.get(key).map(String::as_str)
    }

    /// The block of this target: two-space indentation, `\n` endings.
    fn block(&self, fill: bool) -> Result<String, Error> {
        let key = yaml_key(&self.target);
        let (template, context) = match self.kind {
            Kind::PgBouncer => (
                "init/pgbouncer.yaml.tera",
                pgbouncer::context(self, &key, fill),
            ),
            Kind::Supabase => (
                "init/supabase.yaml.tera",
                supabase::context(self, &key, fill),
            ),
            Kind::Neon => ("init/neon.yaml.tera", neon::context(self, &key, fill)),
            Kind::Managed => ("init/managed.yaml.tera", managed::context(self, &key, fill)),
        };
        let mut text = self.templates.render(template, &context)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// The whole file as it would be written.
    fn text(&self, fill: bool) -> Result<String, Error> {
        let block = self.block(fill)?;
        Ok(match (&self.setup.existing, &self.setup.insertion) {
            (Some(old), Some(at)) => insert::apply(old, at, &block),
            _ => {
                let header = self
                    .templates
                    .render("init/header.yaml.tera", &serde_json::json!({}))?;
                format!("{header}{block}")
            }
        })
    }

    /// A file with only this target, to read the target back.
    fn alone(&self, fill: bool) -> Result<Option<Config>, Error> {
        let text = format!("version: 1\ntargets:\n{}", self.block(fill)?);
        Ok(config::parse_with(&self.setup.shown, text, self.env, &self.setup.context).ok())
    }

    fn field(&self, field: &str) -> String {
        if field.is_empty() {
            format!("targets.{}", self.target)
        } else {
            format!("targets.{}.{field}", self.target)
        }
    }

    /// What the loader says about `field` (relative to the target; empty
    /// for the target itself) in the candidate file.
    fn problems(&self, field: &str) -> Result<Vec<String>, Error> {
        let text = self.text(true)?;
        let full = self.field(field);
        let exact = field.is_empty();
        // A manifest's port templates are checked on the target as a whole.
        let whole = self.field("");
        let managed = self.kind == Kind::Managed && !exact;
        match config::parse_with(&self.setup.shown, text, self.env, &self.setup.context) {
            Ok(_) => Ok(Vec::new()),
            Err(Error::Config(d)) => Ok(d
                .items
                .iter()
                .filter(|i| {
                    i.field == full
                        || (!exact && i.field.starts_with(&format!("{full}.")))
                        || (managed && i.field == whole)
                })
                .map(reason)
                .collect()),
            Err(e) => Err(e),
        }
    }

    fn set(&mut self, key: &str, answer: Option<&str>) {
        match answer {
            Some(a) => self.answers.insert(key.to_string(), a.to_string()),
            None => self.answers.remove(key),
        };
    }

    /// Asks `question` until the answer passes the loader's checks of
    /// `field` (and `extra`, the wizard's own rule), or the prompter keeps it.
    pub fn ask(
        &mut self,
        p: &mut dyn Prompter,
        question: &Question,
        field: &str,
        choices: Option<(&[Choice], usize)>,
        extra: &dyn Fn(&Session<'_>, &str) -> Option<String>,
    ) -> Result<Option<String>, Stop> {
        loop {
            let answer = match choices {
                Some((choices, default)) => Some(p.select(question, choices, default)?),
                None => p.text(question)?,
            };
            self.set(&question.key, answer.as_deref());
            let mut reasons = Vec::new();
            if let Some(a) = &answer
                && let Some(r) = extra(self, a)
            {
                reasons.push(r);
            }
            if reasons.is_empty() {
                reasons = self.problems(field)?;
            }
            if reasons.is_empty() || p.refused(question, &reasons)? == Verdict::Keep {
                return Ok(answer);
            }
        }
    }

    /// A text question checked by the loader only.
    pub fn text_question(
        &mut self,
        p: &mut dyn Prompter,
        question: &Question,
        field: &str,
    ) -> Result<Option<String>, Stop> {
        self.ask(p, question, field, None, &|_, _| None)
    }

    /// A select question.
    pub fn select_question(
        &mut self,
        p: &mut dyn Prompter,
        question: &Question,
        field: &str,
        choices: &[Choice],
        default: usize,
    ) -> Result<String, Stop> {
        Ok(self
            .ask(p, question, field, Some((choices, default)), &|_, _| None)?
            .unwrap_or_default())
    }

    /// The target's name: not taken yet, and one the loader accepts.
    fn ask_target(&mut self, p: &mut dyn Prompter) -> Result<(), Stop> {
        let question = target_question(self.setup);
        loop {
            let answer = p.text(&question)?.unwrap_or_default();
            self.target = answer.clone();
            if self.setup.existing_names.contains(&answer) {
                let taken = format!(
                    "{} has a target `{answer}` already; poolwright adds targets, it never replaces one",
                    self.setup.shown.display()
                );
                let hint = "choose another name";
                let reason = format!("error: {taken}\n  = hint: {hint}\n");
                if p.refused(&question, &[reason])? == Verdict::Keep {
                    return Err(Stop::Failed(Error::message(taken).with_hint(hint)));
                }
                continue;
            }
            let reasons = self.problems("")?;
            if reasons.is_empty() || p.refused(&question, &reasons)? == Verdict::Keep {
                return Ok(());
            }
        }
    }

    /// The password: the variable the YAML names, and an offer to generate
    /// one into `.env`. `field` is where the loader reports the password.
    pub fn ask_password(
        &mut self,
        p: &mut dyn Prompter,
        field: &str,
        role: &str,
        generate_by_default: bool,
    ) -> Result<(), Stop> {
        let default = format!(
            "{}_DB_PASSWORD",
            self.target
                .to_ascii_uppercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let question = Question::new(
            "password-env",
            "Environment variable that holds the password",
        )
        .help("poolwright.yaml gets password: \"${VAR}\"; the password itself never goes into it")
        .default(default);
        let var = self
            .ask(p, &question, field, None, &|_, a| {
                (!valid_var_name(a)).then(|| {
                    format!("error: `{a}` is not an environment variable name\n  = hint: letters, digits and `_`, not starting with a digit, e.g. PROD_DB_PASSWORD\n")
                })
            })?
            .unwrap_or_default();
        let generate = Question::new("generate-password", format!("Generate a strong password for {role} and write it to .env as {var}?"))
            .help(format!(
                "32 random letters and digits, written only to {} (mode 0600 when new); {role}'s password must then be set to it on the server",
                self.setup.env_shown.display()
            ));
        let in_env_file = self
            .setup
            .env_text()?
            .is_some_and(|t| !crate::envfile::values_of(&t, &var).is_empty());
        if in_env_file {
            return p.skip(
                &generate,
                &format!(
                    "{} sets {var} already; poolwright keeps it and generates no password",
                    self.setup.env_shown.display()
                ),
            );
        }
        let in_shell = (self.env)(&var).is_some();
        if p.confirm(&generate, generate_by_default && !in_shell)? {
            self.generated = Some(Generated {
                var,
                password: generate_password(),
            });
        }
        Ok(())
    }

    /// The finished file: rendered without placeholders and checked whole.
    fn finish(mut self) -> Result<Outcome, Stop> {
        if self.kind == Kind::PgBouncer
            && let Some(config) = self.alone(false)?
            && let Some(ProviderTarget::PgBouncer(t)) = config.targets.first().map(|t| &t.provider)
        {
            let (size, why) = crate::providers::pgbouncer::sizing::recommend(t);
            let note = if t.upstream.cores.is_none() && why.starts_with("PgBouncer's default") {
                format!(
                    "{size}, PgBouncer's default; give upstream.cores for a size that fits the server"
                )
            } else {
                format!("{size} ({why})")
            };
            self.notes.insert("pool_size".into(), note);
        }
        let text = self.text(false)?;
        let ours: Vec<Diagnostic> = match config::parse_with(
            &self.setup.shown,
            text.clone(),
            self.env,
            &self.setup.context,
        ) {
            Ok(_) => Vec::new(),
            Err(Error::Config(d)) => d
                .items
                .into_iter()
                .filter(|i| {
                    !self
                        .setup
                        .existing_problems
                        .iter()
                        .any(|(f, m)| *f == i.field && *m == i.message)
                })
                .map(|i| {
                    i.with_note("in the file `poolwright init` would write; nothing was written")
                })
                .collect(),
            Err(e) => return Err(Stop::Failed(e)),
        };
        if !ours.is_empty() {
            return Err(Stop::Failed(Error::Config(Diagnostics {
                source: Some(text),
                items: ours,
            })));
        }
        let described = self
            .alone(false)?
            .and_then(|c| c.targets.into_iter().next())
            .map_or_else(|| self.manifest.title.clone(), |t| t.provider.describe());
        let env = match &self.generated {
            Some(g) => Some(self.env_file(g)?),
            None => None,
        };
        Ok(Outcome {
            config_path: self.setup.path.clone(),
            config_shown: self.setup.shown.clone(),
            original: self.setup.existing.clone(),
            text,
            target: self.target.clone(),
            provider: self.manifest.name.clone(),
            kind: self.kind,
            described,
            env,
            password_var: self.answer("password-env").unwrap_or_default().to_string(),
            role: self.role(),
            offline_url: self.alone(false)?.is_some_and(|c| {
                c.targets
                    .first()
                    .is_some_and(|t| t.provider.pooled_url().is_some())
            }),
        })
    }

    fn role(&self) -> String {
        let key = if self.kind == Kind::Neon {
            "role"
        } else {
            "user"
        };
        self.answer(key).unwrap_or("postgres").to_string()
    }

    /// `.env` with the generated password added: through the same merge as
    /// `poolwright env`, then under a plain comment instead of poolwright's
    /// ownership marker, so that no later `poolwright env` removes it.
    fn env_file(&self, g: &Generated) -> Result<EnvFile, Error> {
        let old = self.setup.env_text()?;
        let text = old.clone().unwrap_or_default();
        // A name no target can have (targets cannot hold `:`), and every
        // owner already in the file, so the merge removes nothing.
        let owner = format!("{}:init", self.target);
        let mut owners: Vec<String> = crate::envfile::owned(&text)
            .into_iter()
            .map(|o| o.target)
            .collect();
        owners.push(owner.clone());
        let names: Vec<&str> = owners.iter().map(String::as_str).collect();
        let merged = crate::envfile::merge(
            &text,
            &owner,
            "",
            &[(g.var.as_str(), g.password.as_str())],
            &names,
        );
        let marker = format!("# poolwright: target {owner}");
        let comment = format!(
            "# generated by `poolwright init` for target {} (role {})",
            self.target,
            self.role()
        );
        let at = merged
            .text
            .rfind(&marker)
            .ok_or_else(|| Error::message("the .env merge did not add the password"))?;
        let new = format!(
            "{}{comment}{}",
            &merged.text[..at],
            &merged.text[at + marker.len()..]
        );
        if crate::envfile::values_of(&new, &g.var) != [g.password.clone()] {
            return Err(Error::message(format!(
                "{} would not hold {} as written; nothing was written",
                self.setup.env_shown.display(),
                g.var
            )));
        }
        Ok(EnvFile {
            path: self.setup.env_path.clone(),
            shown: self.setup.env_shown.clone(),
            original: old,
            text: new,
            var: g.var.clone(),
        })
    }
}

/// A diagnostic as the reason to ask again: message, notes and hint, with
/// no file position (the file does not exist yet).
fn reason(d: &Diagnostic) -> String {
    let mut out = format!("error: {}\n", d.message);
    for note in &d.notes {
        let _ = writeln!(out, "  = note: {note}");
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "  = hint: {h}");
    }
    out
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

/// The `.env` the wizard writes.
#[derive(Debug)]
pub struct EnvFile {
    pub path: PathBuf,
    pub shown: PathBuf,
    /// The text when the wizard read it (None: no file).
    original: Option<String>,
    text: String,
    /// The variable that holds the generated password.
    pub var: String,
}

/// What the wizard made, ready to write.
#[derive(Debug)]
pub struct Outcome {
    pub config_path: PathBuf,
    pub config_shown: PathBuf,
    original: Option<String>,
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

/// `s` as one shell word.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '=' | ',' | '+')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
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
