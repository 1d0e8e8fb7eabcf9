//! The integration tests: one binary, one module per area.

// Tests set up servers from the real environment; the product reads it
// only through Context.
#![allow(clippy::disallowed_methods)]

mod support;

/// Command-line behaviour: help, exit codes, masking, formats, discovery.
mod cli;
/// apply, render and env lock what they write: 30 concurrent env runs keep every key, a held lock names its holder.
mod concurrent_runs;
/// Console-only users need no server role; the pools leave slots for direct connections.
mod console_and_headroom;
/// One verifier per role across poolers; no secret stored that locks a role out.
mod credentials;
/// Real drivers (psql, SQLAlchemy, psycopg, asyncpg, node-postgres) through PgBouncer.
mod drivers;
/// Real PostgreSQL and PgBouncer, started by the tests.
mod e2e;
/// .env files and secret stores: private modes, masked old values, checked
/// keys, printed commands without values, no file left by --apply.
mod env_secrets;
/// Every example config validates, plans and renders.
mod examples;
/// `poolwright explain`: the table verify diagnoses with, entry for entry.
mod explain;
/// Hand edits kept unless --force, kill -9 never leaves a half-written file, 0600 under any umask.
mod file_safety;
/// Property tests of the fuzz targets' invariants (poolwright::invariants).
#[cfg(feature = "fuzzing")]
mod fuzz_properties;
/// fuzz/regressions/<target>/<case>: found and hand-picked fuzz inputs, replayed.
#[cfg(feature = "fuzzing")]
mod fuzz_regressions;
/// tests/golden/<case>/: a config and the exact files it renders.
mod golden;
/// Hostile APIs, state files and shared directories: no redirect followed,
/// capped bodies, masked and printable errors, one host rule, whose config.
mod hostile_peers;
/// A hostile PostgreSQL or PgBouncer: bounded queries, no clear-text password, no oversized message.
mod hostile_postgres;
/// tests/invalid/<case>/: a bad config and the exact message it gets.
mod invalid;
/// Managed poolers: Supabase, Neon (mock APIs: wiremock and Prism on the published specs), manifest-only providers.
mod managed;
/// Network faults (refused, reset mid-body, slow, 5xx storms) against the
/// Supabase, Neon and AWS clients: bounded retries, a clear error, a re-run that completes.
mod net_faults;
/// .env merges and secrets for Modal, Kubernetes, GitHub, Docker and AWS.
mod outputs;
/// AWS RDS Proxy against moto's server.
mod rds_proxy;
/// processes: N: several PgBouncer processes on one port.
mod scale_out;
/// No command shows a secret (raw, encoded, in Debug output) unless asked to.
mod secret_leaks;
/// Who refused the password behind PgBouncer 1.18 and 1.24: the server or PgBouncer.
mod server_side_errors;
/// apply signals only this target's PgBouncer, whatever the pidfile holds.
mod signals;
/// FIFOs, links to devices and huge claims where poolwright reads a file: prompt, clear errors.
mod special_files;
/// `status --watch`: waiting clients, maxwait and backends under a real load; JSON lines,
/// Ctrl-C, terminals and NO_COLOR, hostile poolers.
mod status_watch;
/// `verify` (login, TLS, running config, pooling, live budget, hazards,
/// latency) and `status` against real PostgreSQL and PgBouncer.
mod verify;
/// The per-version settings table against the real PgBouncer binaries.
mod version_table;
/// `poolwright init`: the wizard through a real pseudo-terminal, and `--no-input` snapshots.
mod wizard;
