//! The errors a command can end with, and the exit code each one means.
//!
//! Exit codes: 0 success, 1 the input or the world is wrong (a clear message
//! says what and where), 2 the command line itself is wrong (clap's own, and
//! [`Error::Usage`]), 130 the user cancelled at a prompt.

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
    /// The command cannot run as given: missing flags, no terminal to ask on.
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The user cancelled at a prompt (Ctrl-C, Esc); nothing was written.
    Cancelled,
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

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        match self {
            Error::Message { message, .. } => Error::Message {
                message,
                hint: Some(hint.into()),
            },
            Error::Usage { message, .. } => Error::Usage {
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
            Error::Message { message, hint } | Error::Usage { message, hint } => {
                let mut out = format!("error: {message}\n");
                if let Some(h) = hint {
                    out.push_str(&format!("  = hint: {h}\n"));
                }
                out
            }
            Error::Cancelled => "cancelled: nothing was written\n".to_string(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Message { .. } => 1,
            Error::Usage { .. } => 2,
            Error::Cancelled => 130,
        }
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
