//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test module uses a different part

pub mod fake_postgres;
pub mod fault_server;
pub mod hostile_http;
pub mod pg;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The poolwright binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_poolwright"))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a poolwright run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs poolwright in `dir` with a clean environment (PATH, HOME and `env`
/// only), so no variable of the developer's shell leaks into a test.
pub fn poolwright(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir).env_clear();
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run poolwright");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// True when expected files should be rewritten (`SNAPSHOTS=overwrite`).
pub fn blessing() -> bool {
    std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite")
}

/// Compares `actual` with the file at `expected`, or rewrites the file when
/// blessing. Panics with both texts on a difference.
pub fn assert_file(expected: &Path, actual: &str) {
    if blessing() {
        if let Some(dir) = expected.parent() {
            std::fs::create_dir_all(dir).expect("create expected dir");
        }
        std::fs::write(expected, actual).expect("bless expected file");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with SNAPSHOTS=overwrite to create it)",
            expected.display()
        )
    });
    if want != actual {
        panic!(
            "{} differs (SNAPSHOTS=overwrite re-blesses it)\n--- expected\n{want}\n--- actual\n{actual}\n---",
            expected.display()
        );
    }
}

/// A temporary project holding this poolwright.yaml.
pub fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("poolwright.yaml"), yaml).expect("write config");
    dir
}

/// The permission bits of `path` (what a test compares with 0o600).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
