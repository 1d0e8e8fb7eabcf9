//! Golden tests: each `tests/golden/<case>/` holds a `poolwright.yaml`, an
//! optional `env` file (`NAME=value` lines) and `expected/`: the exact
//! files `render` writes (laid out as render lays them out), `FILES` (the
//! sorted list of them, so an extra file fails too), and `plan.txt` and
//! `url.txt` (the binary's output). Adding a case is adding a folder.
//! `SNAPSHOTS=overwrite cargo test` re-blesses after an intended change.
//!
//! Rendering runs in-process with a fixed salt, so SCRAM verifiers are
//! stable; everything else is deterministic by design.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use poolwright::providers::pgbouncer::render::render;
use poolwright::render::Templates;

use crate::support::{assert_file, blessing, poolwright, root};

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .expect("tests/golden exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("poolwright.yaml").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no golden cases found");
    dirs
}

fn read_env(case: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(case.join("env")) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("env lines are NAME=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A salt that is the same on every run: 16 bytes counting up from `n`.
fn fixed_salts() -> impl FnMut() -> [u8; 16] {
    let mut n = 0u8;
    move || {
        n = n.wrapping_add(1);
        std::array::from_fn(|i| n.wrapping_add(i as u8))
    }
}

/// Renders every target of a case in-process: (relative path, contents).
fn render_case(case: &Path, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let lookup = |name: &str| env.get(name).cloned();
    let config = poolwright::config::load(
        &case.join("poolwright.yaml"),
        Path::new("poolwright.yaml"),
        &lookup,
    )
    .unwrap_or_else(|e| panic!("{}: {}", case.display(), e.render()));
    let templates = Templates::load(None).expect("built-in templates");
    let mut salt = fixed_salts();
    // Only self-hosted targets have files (render lays them out by how many).
    let several = config
        .targets
        .iter()
        .filter(|t| t.provider.pgbouncer().is_some())
        .count()
        > 1;
    let mut out = BTreeMap::new();
    for target in &config.targets {
        let Some(t) = target.provider.pgbouncer() else {
            continue;
        };
        let files = render(t, &templates, "poolwright.yaml", None, &mut salt)
            .unwrap_or_else(|e| panic!("{}: {}", case.display(), e.render()));
        for file in files {
            let rel = if several {
                format!("{}/{}", target.name, file.name)
            } else {
                file.name.to_string()
            };
            out.insert(rel, String::from_utf8(file.bytes).expect("utf-8 output"));
        }
    }
    out
}

/// `plan` says start, reload or restart from the config files on this host
/// (a Debian host with the pgbouncer package has /etc/pgbouncer/pgbouncer.ini);
/// that line is tested in the unit and e2e tests, not here. So is the note
/// on a host file changed by hand (tests/it/file_safety.rs).
fn host_independent(plan: &str) -> String {
    plan.lines()
        .map(|l| match l.find("): ") {
            Some(end) if l.starts_with("  write   ") => l[..=end].to_string(),
            _ => l.to_string(),
        })
        .map(|l| {
            let effect = [
                "start PgBouncer",
                "reload PgBouncer",
                "restart PgBouncer",
                "PgBouncer's config does not change",
            ];
            match l.strip_prefix("  then    ") {
                Some(rest) if effect.iter().any(|e| rest.starts_with(e)) => {
                    "  then    <start, reload or restart PgBouncer, by the files on this host>"
                        .to_string()
                }
                _ => l.to_string(),
            }
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn golden_cases_render_exactly() {
    for case in cases() {
        let env = read_env(&case);
        let expected = case.join("expected");
        let files = render_case(&case, &env);
        let list: String = files.keys().map(|k| format!("{k}\n")).collect();
        assert_file(&expected.join("FILES"), &list);
        for (rel, text) in &files {
            assert_file(&expected.join(rel), text);
        }
        // Rendering twice gives the same bytes (determinism).
        assert_eq!(
            files,
            render_case(&case, &env),
            "{}: a second render differs",
            case.display()
        );

        let env_pairs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let plan = poolwright(&case, &["plan"], &env_pairs);
        assert_eq!(
            plan.code,
            0,
            "{}: plan failed: {}",
            case.display(),
            plan.stderr
        );
        assert_file(&expected.join("plan.txt"), &host_independent(&plan.stdout));
        let mut urls = String::new();
        for target in plan
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("target "))
        {
            let name = target.split_whitespace().next().expect("target name");
            for extra in [&[][..], &["--direct"][..]] {
                let mut args = vec!["url", name];
                args.extend_from_slice(extra);
                let run = poolwright(&case, &args, &env_pairs);
                // A URL that only apply can learn is an error offline: keep the message.
                let shown = if run.code == 0 {
                    run.stdout
                } else {
                    format!("(exit {}) {}", run.code, run.stderr)
                };
                urls.push_str(&format!("$ poolwright {}\n{shown}", args.join(" ")));
            }
        }
        assert_file(&expected.join("url.txt"), &urls);
        if blessing() {
            eprintln!("blessed {}", case.display());
        }
    }
}

#[test]
fn userlist_reuses_a_verifier_that_still_matches() {
    let case = root().join("tests/golden/automatch-books");
    let env = read_env(&case);
    let lookup = |name: &str| env.get(name).cloned();
    let config = poolwright::config::load(
        &case.join("poolwright.yaml"),
        Path::new("poolwright.yaml"),
        &lookup,
    )
    .expect("loads");
    let t = config.targets[0]
        .provider
        .pgbouncer()
        .expect("a pgbouncer target");
    let templates = Templates::load(None).expect("templates");
    let first = render(
        t,
        &templates,
        "poolwright.yaml",
        None,
        &mut poolwright::scram::random_salt,
    )
    .expect("renders");
    let userlist = String::from_utf8(first[1].bytes.clone()).expect("utf-8");
    // A fresh random salt would change the verifier; the existing one is kept.
    let second = render(
        t,
        &templates,
        "poolwright.yaml",
        Some(&userlist),
        &mut poolwright::scram::random_salt,
    )
    .expect("renders");
    assert_eq!(first, second);
    // A verifier of another password is replaced.
    let stale = userlist.replace(
        userlist.split('"').nth(3).expect("secret field"),
        &poolwright::scram::verifier("old password", &[7; 16], 4096),
    );
    let third = render(
        t,
        &templates,
        "poolwright.yaml",
        Some(&stale),
        &mut poolwright::scram::random_salt,
    )
    .expect("renders");
    assert_ne!(third[1].bytes, stale.as_bytes());
    let entries = poolwright::userlist::parse(std::str::from_utf8(&third[1].bytes).expect("utf-8"))
        .expect("parses");
    assert!(poolwright::scram::matches(
        &entries[0].secret,
        env.get("QBO_DB_PASSWORD").expect("env")
    ));
}
