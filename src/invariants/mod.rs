//! Invariants the fuzz targets (fuzz/) and the property tests check, one
//! function per target. Each takes raw bytes, decodes them the same way
//! every time ([`input`]), runs the real code and panics with a message
//! saying which promise broke. A clean refusal of bad input is fine; a
//! panic elsewhere, or output that reads back differently, is a bug.
//!
//! Not part of poolwright's interface: public only so fuzz/ can call it.

pub mod config;
pub mod envfile;
pub mod ini;
pub mod input;
pub mod libpq;
pub mod url;
pub mod userlist;

pub use config::check_config;
pub use envfile::check_env_merge;
pub use ini::check_pgbouncer_ini;
pub use url::check_url;
pub use userlist::check_userlist;
