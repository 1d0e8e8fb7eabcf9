//! One run of questions: ask, check the answer the way `validate` would on
//! a candidate file, ask again where it is wrong.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::prompter::{Choice, Prompter, Question, Stop, Verdict};
use super::{
    EnvFile, Kind, Outcome, PLACEHOLDER_TARGET, Setup, generate_password, insert, managed, neon,
    pgbouncer, supabase, target_question, valid_var_name, yaml_key,
};
use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::providers::ProviderTarget;
use crate::providers::manifest::Manifest;
use crate::render::Templates;
use crate::yaml::reader::EnvLookup;

/// A generated password and where it goes.
pub(crate) struct Generated {
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
    pub(crate) fn new(
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
    pub(crate) fn block(&self, fill: bool) -> Result<String, Error> {
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
    pub(crate) fn text(&self, fill: bool) -> Result<String, Error> {
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
    pub(crate) fn alone(&self, fill: bool) -> Result<Option<Config>, Error> {
        let text = format!("version: 1\ntargets:\n{}", self.block(fill)?);
        Ok(config::parse_with(&self.setup.shown, text, self.env, &self.setup.context).ok())
    }

    pub(crate) fn field(&self, field: &str) -> String {
        if field.is_empty() {
            format!("targets.{}", self.target)
        } else {
            format!("targets.{}.{field}", self.target)
        }
    }

    /// What the loader says about `field` (relative to the target; empty
    /// for the target itself) in the candidate file.
    pub(crate) fn problems(&self, field: &str) -> Result<Vec<String>, Error> {
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

    pub(crate) fn set(&mut self, key: &str, answer: Option<&str>) {
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
    pub(crate) fn ask_target(&mut self, p: &mut dyn Prompter) -> Result<(), Stop> {
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
    pub(crate) fn finish(mut self) -> Result<Outcome, Stop> {
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

    pub(crate) fn role(&self) -> String {
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
    pub(crate) fn env_file(&self, g: &Generated) -> Result<EnvFile, Error> {
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
