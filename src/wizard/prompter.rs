//! Asking questions: the [`Prompter`] trait and its two implementations.
//!
//! The wizard body asks through a `Prompter` and never knows who answers:
//! [`InquirePrompter`] asks a person on the terminal (inquire draws on
//! stderr), [`ScriptedPrompter`] takes the answers from command-line flags
//! (`init --no-input`) or from a list in tests. The prompter also decides
//! what happens to an answer the checks refuse: a person is asked again
//! with the reason; a script keeps the answer, so that the final check
//! reports every problem in one run.

use std::collections::{BTreeMap, BTreeSet};

use inquire::validator::Validation;

use crate::error::Error;

/// Why the wizard stopped before writing anything.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C or Esc at a prompt: exit 130.
    Cancelled,
    /// The command line cannot work (missing or unknown flags, no terminal): exit 2.
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The answers, the files or the world are wrong: exit 1.
    Failed(Error),
}

impl From<Stop> for Error {
    fn from(stop: Stop) -> Error {
        match stop {
            Stop::Cancelled => Error::Cancelled,
            Stop::Usage { message, hint } => Error::Usage { message, hint },
            Stop::Failed(e) => e,
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// One question.
#[derive(Debug, Clone)]
pub struct Question {
    /// The flag that answers it in scripts, without `--` (`upstream-host`),
    /// or `set.FIELD` for a manifest field (`--set FIELD=VALUE`).
    pub key: String,
    /// The question as a person reads it.
    pub prompt: String,
    /// One or two lines under the prompt: what the answer is for.
    pub help: String,
    /// Used when the answer is empty, in scripts too.
    pub default: Option<String>,
    /// Offered to a person (Enter takes it) but not taken silently by a
    /// script: the flag stays required there.
    pub suggestion: Option<String>,
    /// Shown greyed in an empty answer, as an example; never taken.
    pub placeholder: Option<String>,
    /// A required question needs an answer (or a default); an optional one
    /// may stay empty.
    pub required: bool,
}

impl Question {
    pub fn new(key: impl Into<String>, prompt: impl Into<String>) -> Question {
        Question {
            key: key.into(),
            prompt: prompt.into(),
            help: String::new(),
            default: None,
            suggestion: None,
            placeholder: None,
            required: true,
        }
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Question {
        self.help = help.into();
        self
    }

    #[must_use]
    pub fn default(mut self, value: impl Into<String>) -> Question {
        self.default = Some(value.into());
        self
    }

    #[must_use]
    pub fn suggest(mut self, value: Option<String>) -> Question {
        self.suggestion = value;
        self
    }

    #[must_use]
    pub fn placeholder(mut self, value: impl Into<String>) -> Question {
        self.placeholder = Some(value.into());
        self
    }

    #[must_use]
    pub fn optional(mut self) -> Question {
        self.required = false;
        self
    }

    /// The value a suggested command shows for a missing answer:
    /// `UPSTREAM_HOST`, `SERVER` (for `--set server=...`).
    pub fn script_placeholder(&self) -> String {
        let name = self.key.strip_prefix("set.").unwrap_or(&self.key);
        name.to_ascii_uppercase().replace('-', "_")
    }

    /// The flag as a user types it: `--upstream-host` or `--set host=VALUE`.
    pub fn flag(&self) -> String {
        match self.key.strip_prefix("set.") {
            Some(field) => format!("--set {field}=VALUE"),
            None => format!("--{}", self.key),
        }
    }
}

/// One option of a select question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// What goes into the file (`transaction`).
    pub value: String,
    /// What a person reads.
    pub label: String,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// What to do with an answer the checks refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ask the question again.
    AskAgain,
    /// Keep the answer; the final check of the whole file reports it.
    Keep,
}

/// Whoever answers the wizard's questions.
pub trait Prompter {
    /// A line of text; `None` when an optional question stays empty.
    fn text(&mut self, question: &Question) -> Result<Option<String>, Stop>;
    /// One of `choices` (its `value`); `default` is the index offered first.
    fn select(
        &mut self,
        question: &Question,
        choices: &[Choice],
        default: usize,
    ) -> Result<String, Stop>;
    /// Yes or no.
    fn confirm(&mut self, question: &Question, default: bool) -> Result<bool, Stop>;
    /// The checks refused the last answer to `question` for `reasons`.
    fn refused(&mut self, question: &Question, reasons: &[String]) -> Result<Verdict, Stop>;
    /// `question` does not apply here, because `why`: a person is told; a
    /// script that gave its flag fails.
    fn skip(&mut self, question: &Question, why: &str) -> Result<(), Stop>;
    /// Something worth knowing between questions (a computed default).
    fn note(&mut self, text: &str);
    /// Every question was asked: a script reports missing or unused flags.
    fn done(&mut self) -> Result<(), Stop>;
}

/// Asks a person on the terminal, with inquire. Flags given on the command
/// line answer their questions without a prompt (shown, not asked), unless
/// the checks refuse them: then the question is asked.
#[derive(Debug, Default)]
pub struct InquirePrompter {
    given: BTreeMap<String, String>,
}

impl InquirePrompter {
    pub fn with_answers(given: BTreeMap<String, String>) -> InquirePrompter {
        InquirePrompter { given }
    }

    fn given(&self, question: &Question) -> Option<String> {
        let value = self.given.get(&question.key)?.trim().to_string();
        eprintln!("{} {value} (from {})", question.prompt, question.flag());
        Some(value)
    }
}

fn stop(e: inquire::InquireError) -> Stop {
    match e {
        inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted => {
            Stop::Cancelled
        }
        inquire::InquireError::NotTTY => Stop::Usage {
            message: "the terminal cannot be used for questions".into(),
            hint: Some("run `poolwright init --no-input` with flags (see --help)".into()),
        },
        other => Stop::Failed(Error::message(format!("the terminal: {other}"))),
    }
}

impl Prompter for InquirePrompter {
    fn text(&mut self, question: &Question) -> Result<Option<String>, Stop> {
        if let Some(v) = self.given(question) {
            return Ok((!v.is_empty()).then_some(v));
        }
        let default = question.default.clone().or(question.suggestion.clone());
        let mut prompt = inquire::Text::new(&question.prompt);
        if !question.help.is_empty() {
            prompt = prompt.with_help_message(&question.help);
        }
        if let Some(d) = &default {
            prompt = prompt.with_default(d);
        } else if let Some(p) = &question.placeholder {
            prompt = prompt.with_placeholder(p);
        }
        if question.required && default.is_none() {
            prompt = prompt.with_validator(|s: &str| {
                Ok(if s.trim().is_empty() {
                    Validation::Invalid("an answer is needed here".into())
                } else {
                    Validation::Valid
                })
            });
        }
        let answer = prompt.prompt().map_err(stop)?;
        let answer = answer.trim();
        Ok((!answer.is_empty()).then(|| answer.to_string()))
    }

    fn select(
        &mut self,
        question: &Question,
        choices: &[Choice],
        default: usize,
    ) -> Result<String, Stop> {
        if let Some(v) = self.given(question) {
            if choices.iter().any(|c| c.value == v) {
                return Ok(v);
            }
            eprintln!("`{v}` is not one of the choices");
            self.given.remove(&question.key);
        }
        let mut prompt = inquire::Select::new(&question.prompt, choices.to_vec())
            .with_starting_cursor(default.min(choices.len().saturating_sub(1)))
            .with_page_size(choices.len().clamp(1, 12))
            .with_formatter(&|chosen| chosen.value.value.clone());
        if !question.help.is_empty() {
            prompt = prompt.with_help_message(&question.help);
        }
        Ok(prompt.prompt().map_err(stop)?.value)
    }

    fn confirm(&mut self, question: &Question, default: bool) -> Result<bool, Stop> {
        if self.given.contains_key(&question.key) {
            eprintln!("{} yes (from {})", question.prompt, question.flag());
            return Ok(true);
        }
        let mut prompt = inquire::Confirm::new(&question.prompt).with_default(default);
        if !question.help.is_empty() {
            prompt = prompt.with_help_message(&question.help);
        }
        prompt.prompt().map_err(stop)
    }

    fn refused(&mut self, question: &Question, reasons: &[String]) -> Result<Verdict, Stop> {
        self.given.remove(&question.key);
        for reason in reasons {
            eprint!("{reason}");
        }
        eprintln!("Please answer again.");
        Ok(Verdict::AskAgain)
    }

    fn skip(&mut self, _question: &Question, why: &str) -> Result<(), Stop> {
        eprintln!("{why}");
        Ok(())
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn done(&mut self) -> Result<(), Stop> {
        Ok(())
    }
}

/// Takes the answers from flags (`--no-input`) or from a test's list.
///
/// A required question without an answer is recorded as missing and gets
/// the question's placeholder, so the run goes on and names every missing
/// flag at the end ([`Prompter::done`]); a flag that no question asked for
/// (it belongs to another provider) is an error too.
#[derive(Debug, Default)]
pub struct ScriptedPrompter {
    answers: BTreeMap<String, String>,
    asked: BTreeSet<String>,
    missing: Vec<String>,
    /// (flag, value) in the order the questions came, for a suggested command.
    pub trail: Vec<(String, String)>,
}

impl ScriptedPrompter {
    /// `answers`: flag name (without `--`, `set.FIELD` for `--set`) -> value.
    /// A confirm question is answered yes by the flag's presence.
    pub fn new(answers: BTreeMap<String, String>) -> ScriptedPrompter {
        ScriptedPrompter {
            answers,
            ..ScriptedPrompter::default()
        }
    }

    /// The flags that required questions found missing, as users type them.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    fn answer(&mut self, question: &Question) -> Option<String> {
        self.asked.insert(question.key.clone());
        self.answers
            .get(&question.key)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn missing_answer(&mut self, question: &Question) -> String {
        let flag = question.flag();
        if !self.missing.contains(&flag) {
            self.missing.push(flag);
        }
        let shown = question.script_placeholder();
        self.trail.push((question.key.clone(), shown.clone()));
        shown
    }
}

impl Prompter for ScriptedPrompter {
    fn text(&mut self, question: &Question) -> Result<Option<String>, Stop> {
        if let Some(a) = self.answer(question) {
            self.trail.push((question.key.clone(), a.clone()));
            return Ok(Some(a));
        }
        if let Some(d) = &question.default {
            return Ok(Some(d.clone()));
        }
        if question.required {
            return Ok(Some(self.missing_answer(question)));
        }
        Ok(None)
    }

    fn select(
        &mut self,
        question: &Question,
        choices: &[Choice],
        default: usize,
    ) -> Result<String, Stop> {
        // Any value goes through: the loader says what is wrong with it.
        if let Some(a) = self.answer(question) {
            self.trail.push((question.key.clone(), a.clone()));
            return Ok(a);
        }
        if let Some(d) = &question.default {
            return Ok(d.clone());
        }
        if question.required {
            return Ok(self.missing_answer(question));
        }
        Ok(choices
            .get(default)
            .map(|c| c.value.clone())
            .unwrap_or_default())
    }

    fn confirm(&mut self, question: &Question, _default: bool) -> Result<bool, Stop> {
        let yes = self.answer(question).is_some_and(|v| v != "false");
        if yes {
            self.trail.push((question.key.clone(), String::new()));
        }
        Ok(yes)
    }

    fn refused(&mut self, _question: &Question, _reasons: &[String]) -> Result<Verdict, Stop> {
        Ok(Verdict::Keep)
    }

    fn skip(&mut self, question: &Question, why: &str) -> Result<(), Stop> {
        if self.answer(question).is_some() {
            return Err(Stop::Failed(Error::message(format!(
                "{why}, so {} cannot be used",
                question.flag()
            ))));
        }
        Ok(())
    }

    fn note(&mut self, _text: &str) {}

    fn done(&mut self) -> Result<(), Stop> {
        if !self.missing.is_empty() {
            let n = self.missing.len();
            return Err(Stop::Usage {
                message: format!(
                    "--no-input needs {} more flag{}: {}",
                    n,
                    if n == 1 { "" } else { "s" },
                    self.missing.join(", ")
                ),
                hint: None,
            });
        }
        let unused: Vec<String> = self
            .answers
            .keys()
            .filter(|k| !self.asked.contains(*k))
            .map(|k| match k.strip_prefix("set.") {
                Some(field) => format!("--set {field}=..."),
                None => format!("--{k}"),
            })
            .collect();
        if !unused.is_empty() {
            let provider = self
                .answers
                .get("provider")
                .map_or_else(|| "this provider".into(), |p| format!("provider `{p}`"));
            return Err(Stop::Usage {
                message: format!(
                    "{} do{} not apply to {provider}",
                    unused.join(", "),
                    if unused.len() == 1 { "es" } else { "" }
                ),
                hint: Some("see `poolwright init --help` for each provider's flags".into()),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_collects_every_missing_flag_and_refuses_unused_ones() {
        let mut p = ScriptedPrompter::new(BTreeMap::from([
            ("upstream-host".to_string(), "db".to_string()),
            ("project-ref".to_string(), "x".to_string()),
        ]));
        let host = Question::new("upstream-host", "Host");
        assert_eq!(p.text(&host).unwrap().as_deref(), Some("db"));
        let port = Question::new("upstream-port", "Port").default("5432");
        assert_eq!(p.text(&port).unwrap().as_deref(), Some("5432"));
        let db = Question::new("database", "Database").placeholder("mydb");
        assert_eq!(p.text(&db).unwrap().as_deref(), Some("DATABASE"));
        let field = Question::new("set.server", "Server");
        p.text(&field).unwrap();
        let opt = Question::new("public-host", "Public host").optional();
        assert_eq!(p.text(&opt).unwrap(), None);
        assert_eq!(p.missing(), ["--database", "--set server=VALUE"]);
        let Err(Stop::Usage { message, .. }) = p.done() else {
            panic!("missing flags are a usage error")
        };
        assert!(
            message.contains("--database, --set server=VALUE"),
            "{message}"
        );
        p.missing.clear();
        let Err(Stop::Usage { message, .. }) = p.done() else {
            panic!("unused flags are a usage error")
        };
        assert_eq!(message, "--project-ref does not apply to this provider");
    }
}
