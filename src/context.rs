//! What a command may take from the world: working directory, environment
//! variables and randomness. Commands get it passed in, so tests can pin it;
//! this is the only module that reads the process environment.

use std::path::PathBuf;

use crate::scram;

/// Looks up an environment variable by name.
pub type EnvFn = Box<dyn Fn(&str) -> Option<String>>;

pub struct Context {
    pub cwd: PathBuf,
    /// Looks up an environment variable (`${VAR}` in the config).
    pub env: EnvFn,
    /// Makes a salt for a new SCRAM verifier.
    pub salt: Box<dyn FnMut() -> [u8; scram::SALT_LEN]>,
}

impl Context {
    /// The real process: its working directory, environment and a CSPRNG.
    pub fn from_process() -> Context {
        Context {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            // The one place that reads the process environment.
            #[allow(clippy::disallowed_methods)]
            env: Box::new(|name| std::env::var(name).ok()),
            salt: Box::new(scram::random_salt),
        }
    }
}
