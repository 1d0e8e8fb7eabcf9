//! Loading `poolwright.yaml`: find it, read it, interpolate `${VAR}`, and
//! check it into a typed [`Config`], reporting every problem in one run.

pub mod source;

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::error::Error;
use crate::providers::manifest::Registry;
use crate::providers::{self, DecodeContext, ProviderTarget};
use crate::state::State;
use crate::yaml::node::Value;
use crate::yaml::reader::{EnvLookup, Reader};

/// The file name poolwright looks for.
pub const FILE_NAME: &str = "poolwright.yaml";

/// A loaded, valid config.
#[derive(Debug)]
pub struct Config {
    /// The file as the user named it (or as found), for messages.
    pub path: PathBuf,
    /// The file on disk (the state file and `providers/` sit beside it).
    pub on_disk: PathBuf,
    pub source: String,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub span: Span,
    pub provider: ProviderTarget,
}

impl Config {
    /// The file name to mention in generated files (no directories, so the
    /// output does not depend on where the command ran).
    pub fn source_name(&self) -> String {
        self.path.file_name().map_or_else(
            || FILE_NAME.to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// An error made of diagnostics that point into this config.
    pub fn error(&self, items: Vec<Diagnostic>) -> Error {
        Error::Config(Diagnostics {
            source: Some(self.source.clone()),
            items,
        })
    }

    /// The targets named in `names` (all when empty), or an error naming the
    /// unknown one.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Target>, Error> {
        if names.is_empty() {
            return Ok(self.targets.iter().collect());
        }
        names.iter().map(|n| self.target(n)).collect()
    }

    pub fn target(&self, name: &str) -> Result<&Target, Error> {
        self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
            let hint = match crate::diagnostic::did_you_mean(name, known.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!(
                    "the targets in {} are: {}",
                    self.path.display(),
                    known.join(", ")
                ),
            };
            Error::message(format!("no target `{name}` in {}", self.path.display())).with_hint(hint)
        })
    }
}

/// `poolwright.yaml` in `start` or the nearest parent directory. Whatever
/// holds the name counts (a FIFO, a directory): reading it then says what
/// it is, rather than a parent's config being used in its place.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.exists())
}

/// The config file to use: `explicit`, or the one [`discover`] finds.
pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let found = discover(cwd).ok_or_else(|| {
        Error::message(format!(
            "no {FILE_NAME} in {} or any parent directory",
            cwd.display()
        ))
        .with_hint("create one with `poolwright init`, or name it with `--config FILE`")
    })?;
    refuse_untrusted(&found)?;
    // Show it relative to where the user is, as they would type it.
    Ok(found
        .strip_prefix(cwd)
        .map(Path::to_path_buf)
        .unwrap_or(found))
}

/// Refuses a found config that someone else could have put there, as git's
/// `safe.directory` does: a config names hosts and `${VAR}`s, so one left
/// in a shared parent directory (`/tmp`) by another user would send this
/// user's secrets to that user's host. Trusted are the user's own files
/// and root's, in directories that the user or root owns and that nobody
/// else can write to (a world-writable one only with the sticky bit).
/// `--config` is an explicit choice and is not checked.
fn refuse_untrusted(found: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let trusted_owner = |uid: u32| uid == me || uid == 0;
    let refuse = |what: String| {
        Error::message(format!(
            "not using {}, found by looking up from the working directory: {what}",
            crate::diagnostic::printable(&found.display().to_string())
        ))
        .with_hint(format!(
            "someone else may have put it there; to use it on purpose, name it with `--config {}`",
            crate::diagnostic::printable(&found.display().to_string())
        ))
    };
    // The file itself and, when it is a symlink, the link: either could
    // be someone else's.
    for meta in [std::fs::symlink_metadata(found), std::fs::metadata(found)]
        .into_iter()
        .flatten()
    {
        if !trusted_owner(meta.uid()) {
            return Err(refuse(format!(
                "it is owned by {}, not by you or root",
                user_name(meta.uid())
            )));
        }
    }
    let dir = found.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(meta) = std::fs::metadata(dir) {
        if !trusted_owner(meta.uid()) {
            return Err(refuse(format!(
                "its directory is owned by {}, not by you or root",
                user_name(meta.uid())
            )));
        }
        let world_writable = meta.mode() & 0o002 != 0;
        let sticky = meta.mode() & 0o1000 != 0;
        if world_writable && !sticky {
            return Err(refuse(
                "its directory is writable by everyone (and not sticky), so anyone could have put it there"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `user `name` (uid N)`, or `uid N` for a uid without a name.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!(
            "user `{}` (uid {uid})",
            crate::diagnostic::printable(&u.name)
        ),
        _ => format!("uid {uid}"),
    }
}

/// Reads and checks the config at `path`; messages call it `shown_as`
/// (the name the user typed, or the one found relative to their directory).
pub fn load(path: &Path, shown_as: &Path, env: EnvLookup<'_>) -> Result<Config, Error> {
    let source = source::decode(source::read_bytes(path, shown_as)?, shown_as)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let context = DecodeContext {
        registry: Registry::with_user_dir(&dir.join("providers"))?,
        state: State::load(path)?,
    };
    let mut config = parse_with(shown_as, source, env, &context)?;
    config.on_disk = path.to_path_buf();
    Ok(config)
}

/// Checks config text (the contents of `path`).
pub fn parse(path: &Path, source: String, env: EnvLookup<'_>) -> Result<Config, Error> {
    let context = DecodeContext {
        registry: Registry::builtin(),
        state: State::default(),
    };
    parse_with(path, source, env, &context)
}

/// Checks config text with the given manifests and state.
pub fn parse_with(
    path: &Path,
    source: String,
    env: EnvLookup<'_>,
    context: &DecodeContext,
) -> Result<Config, Error> {
    let fail = |items: Vec<Diagnostic>, source: String| {
        Error::Config(Diagnostics {
            source: Some(source),
            items,
        })
    };
    let root = match crate::yaml::node::parse(path, &source) {
        Ok(root) => root,
        Err(items) => return Err(fail(items, source)),
    };
    let mut reader = Reader::new(path, env);
    reader.source_is_blank = source.trim().is_empty();
    let targets = read_root(&mut reader, &root, context);
    if !reader.ok() {
        return Err(fail(reader.into_problems(), source));
    }
    Ok(Config {
        path: path.to_path_buf(),
        on_disk: path.to_path_buf(),
        source,
        targets,
    })
}

fn read_root(
    reader: &mut Reader<'_>,
    root: &crate::yaml::node::Node,
    context: &DecodeContext,
) -> Vec<Target> {
    if root.value == Value::Null {
        // An empty file and one of only comments look alike to YAML.
        let message = if reader.source_is_blank {
            "the file is empty"
        } else {
            "the file holds only comments and blank lines"
        };
        reader.error(root.span, "", message).hint = Some(
            "start with `version: 1` and a `targets:` mapping, or run `poolwright init`".into(),
        );
        return Vec::new();
    }
    let Some(mut top) = reader.map(root, "") else {
        return Vec::new();
    };
    if let Some(node) = top.require("version", reader)
        && let Some(v) = reader.integer(node, "version", i64::MIN, i64::MAX)
        && v != 1
    {
        reader.error(
            node.span,
            "version",
            format!("config version {v} is not supported; this poolwright reads version 1"),
        );
    }
    let mut targets = Vec::new();
    if let Some(node) = top.require("targets", reader)
        && let Some(map) = reader.map(node, "targets")
    {
        if map.entries().is_empty() {
            reader.error(
                node.span,
                "targets",
                "no targets: add at least one under `targets:`",
            );
        }
        for (key, value) in map.entries() {
            let field = format!("targets.{}", key.name);
            let valid = !key.name.is_empty()
                && key.name.len() <= 63
                && key
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !key.name.starts_with('.');
            if !valid {
                reader.error(key.span, &field, format!(
                        "the target name `{}` may hold only letters, digits, `_`, `-` and `.` (at most 63, not starting with `.`)",
                        crate::diagnostic::printable(&key.name)
                    ));
                continue;
            }
            if let Some(provider) = providers::decode(reader, context, &key.name, value, &field) {
                targets.push(Target {
                    name: key.name.clone(),
                    span: key.span,
                    provider,
                });
            }
        }
    }
    top.finish(reader);
    targets
}
