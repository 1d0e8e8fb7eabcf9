//! Bad configs and their exact messages: each `tests/invalid/<case>/` holds
//! a `poolwright.yaml`, an optional `args` file (the command line, one
//! argument per line; default `validate`), an optional `env` file, and
//! `stderr.txt`, the exact message. Every case must exit 1, print nothing
//! on stdout and write no file. `SNAPSHOTS=overwrite` re-blesses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Run, assert_file, poolwright, root};

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/invalid"))
        .expect("tests/invalid exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    dirs
}

#[test]
fn invalid_configs_get_their_exact_message() {
    for case in cases() {
        // Work on a copy, so "writes nothing" can be checked.
        let work = tempfile::tempdir().expect("tempdir");
        let config = case.join("poolwright.yaml");
        if config.exists() {
            std::fs::copy(&config, work.path().join("poolwright.yaml")).expect("copy config");
        }
        let args: Vec<String> = std::fs::read_to_string(case.join("args"))
            .map(|t| {
                t.lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_else(|_| vec!["validate".into()]);
        let env: Vec<(String, String)> = std::fs::read_to_string(case.join("env"))
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = poolwright(work.path(), &args, &env);
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_refused(&name, &run, work.path());
        assert_file(&case.join("stderr.txt"), &run.stderr);
    }
}

/// Exit 1, nothing on stdout, no panic, and nothing but the config left in `work`.
fn assert_refused(name: &str, run: &Run, work: &Path) {
    assert_eq!(run.code, 1, "{name}: exit code\n{}", run.stderr);
    assert_eq!(run.stdout, "", "{name}: stdout must be empty");
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: panicked\n{}",
        run.stderr
    );
    let left: Vec<_> = std::fs::read_dir(work)
        .expect("work dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n != "poolwright.yaml")
        .collect();
    assert!(left.is_empty(), "{name}: wrote {left:?}");
}

/// A 50 MB file is made here rather than committed. It is refused from its
/// size, before a byte is parsed: quickly, and without reading it into memory.
#[test]
fn a_50_mb_config_is_refused_by_its_size() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("version: 1\ntargets:\n");
    let line = "  # padding to make the file absurdly large for a config\n";
    while text.len() < 50 * 1024 * 1024 {
        text.push_str(line);
    }
    std::fs::write(work.path().join("poolwright.yaml"), &text).expect("write config");
    let started = Instant::now();
    let run = poolwright(work.path(), &["validate"], &[]);
    let took = started.elapsed();
    assert_refused("50 MB", &run, work.path());
    assert_eq!(
        run.stderr,
        format!(
            "error: poolwright.yaml is 50.0 MiB ({} bytes); a poolwright config may be at most 4.0 MiB\n  = hint: a config is a few kilobytes: check that --config names the right file\n",
            text.len()
        )
    );
    // Parsing 50 MB of YAML takes seconds even in release builds; a size
    // check takes milliseconds. The bound is loose for loaded machines.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
