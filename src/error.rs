//! The errors a command can end with, and the exit code each one means.
//!
//! Exit codes: 0 success, 1 the input or the world is wrong (a clear message
//! says what and where), 2 the command line itself is wrong (clap's own).

use std::fmt;
use std::path::Path;

use crate::diagnostic::Diagnostics;

#[derive(Debug)]
pub enum Error {
    /// Problems in poolwright.yaml, each with file, line, column and field.
    Config(Diagnostics),
    /// Anything else, with an optional hint on how to fix it.
    Message {
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn message(message: impl Into<String>) -> Error {
        Error::Message {
            message: message.into(),
            hint: None,
        }
    }

    pub fn io(path: &Path, e: &std::io::Error) -> Error {
        Error::message(format!("{}: {e}", path.display()))
    }

    #[must_use]
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        match self {
            Error::Message { message, .. } => Error::Message {
                message,
                hint: Some(hint.into()),
            },
            other => other,
        }
    }

    /// The text printed on stderr.
    pub fn render(&self) -> String {
        match self {
            Error::Config(d) => d.render(),
            Error::Message { message, hint } => {
                let mut out = format!("error: {message}\n");
                if let Some(h) = hint {
                    out.push_str(&format!("  = hint: {h}\n"));
                }
                out
            }
        }
    }

    pub fn exit_code(&self) -> u8 {
        1
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Error {}

impl From<Box<crate::diagnostic::Diagnostic>> for Error {
    fn from(d: Box<crate::diagnostic::Diagnostic>) -> Error {
        Error::Config(Diagnostics {
            source: None,
            items: vec![*d],
        })
    }
}
