//! A secret value: a password that may not be known until a command needs
//! it, and that never shows in `Debug` output.

use std::fmt;

use crate::diagnostic::Diagnostic;

/// A secret value (a password) that may be missing until a command needs it.
///
/// `plan`, `validate` and a masked `url` work without credentials, so an
/// unset `${VAR}` in a secret is kept as a deferred problem and reported only
/// by the commands that need the value. `Debug` never shows the value.
#[derive(Clone, PartialEq)]
pub struct Secret {
    value: Result<String, Box<Diagnostic>>,
}

impl Secret {
    /// A secret whose value is not known yet: the diagnostic says which
    /// variable to set, for the command that needs the value.
    pub fn deferred(why: Diagnostic) -> Secret {
        Secret {
            value: Err(Box::new(why)),
        }
    }

    /// A secret known in code (tests, the wizard).
    pub fn known(value: impl Into<String>) -> Secret {
        Secret {
            value: Ok(value.into()),
        }
    }

    /// The value, or the diagnostic that says which variable to set.
    pub fn expose(&self) -> Result<&str, Box<Diagnostic>> {
        self.value.as_deref().map_err(Clone::clone)
    }

    pub fn is_available(&self) -> bool {
        self.value.is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Ok(_) => f.write_str("Secret(****)"),
            Err(_) => f.write_str("Secret(<unset>)"),
        }
    }
}
