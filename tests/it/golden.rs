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

/// `systemd-analyze verify` on `unit` (a path; a template unit is checked
/// through its instance `@1`): Ok when systemd loads it without a word.
fn systemd_verify(unit: &Path) -> Result<(), String> {
    let name = unit.file_name().expect("unit name").to_string_lossy();
    let target = unit.with_file_name(name.replacen("@.", "@1.", 1));
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&target)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Warnings count: systemd logs them and still exits 0.
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({}): {said}", target.display(), out.status))
    }
}

/// A YAML double-quoted string.
fn yaml_quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Paths systemd would misread unless escaped (`%h` a specifier, a space
/// splitting the word, quotes and a backslash unquoting), rendered into the
/// unit and read back by systemd itself: `systemd-analyze verify` loads the
/// unit only when its executable exists, so a binary at such a path proves
/// the binary's word, and a probe unit whose executable is the rendered
/// config argument, with a file at the config's path, proves that word.
/// (`$` stays out: systemd turns `$$` into `$` in arguments only when the
/// command runs, after verify; the golden cases and unit tests cover it.)
#[test]
fn systemd_reads_the_escaped_paths_back() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("POOLWRIGHT_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("POOLWRIGHT_REQUIRE_SERVERS=1 but systemd-analyze is missing");
        }
        eprintln!("SKIP: systemd-analyze not found; run scripts/install-test-deps");
        return;
    }
    let true_bin = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a true binary");
    let work = tempfile::tempdir().expect("tempdir");
    let base = work.path().display().to_string();
    // systemd refuses quotes and backslashes in an executable's path (and
    // so does the config loader): `%` is what the binary's word escapes.
    let binary = format!("{base}/opt-%v/100%/pgbouncer");
    // systemd refuses quotes and backslashes in an executable's path even
    // escaped, so the probe reads back the first directory; units with the
    // second must load without a warning (an unescaped `"` is an error).
    let probed = format!("{base}/pg bouncer/%h 100%");
    let quoted = format!(r#"{base}/pg bouncer/"it's" \n"#);
    for (n, (processes, config_dir)) in [(1, &probed), (2, &probed), (1, &quoted), (2, &quoted)]
        .into_iter()
        .enumerate()
    {
        let case = work.path().join(format!("case-{n}"));
        std::fs::create_dir_all(&case).expect("case dir");
        let yaml = format!(
            "version: 1\ntargets:\n  prod:\n    provider: pgbouncer\n    version: \"1.24\"\n    \
             processes: {processes}\n    upstream: {{ host: db.internal, max_connections: 100 }}\n    \
             public_host: pgbouncer.internal\n    config_dir: {}\n    \
             databases: {{ qbo_mirror: {{}} }}\n    users: {{ app: {{ password: pw }} }}\n    \
             systemd: {{ binary: {} }}\n    pgbouncer: {{ unix_socket_dir: {} }}\n",
            yaml_quoted(config_dir),
            yaml_quoted(&binary),
            yaml_quoted(r#"/run/pg bouncer:%n "q" \x"#),
        );
        std::fs::write(case.join("poolwright.yaml"), &yaml).expect("write config");
        let config = poolwright::config::load(
            &case.join("poolwright.yaml"),
            Path::new("poolwright.yaml"),
            &|_: &str| None,
        )
        .unwrap_or_else(|e| panic!("{yaml}\n{}", e.render()));
        let t = config.targets[0].provider.pgbouncer().expect("pgbouncer");
        let templates = Templates::load(None).expect("templates");
        let files = poolwright::providers::pgbouncer::render::render_configs(
            t,
            &templates,
            "poolwright.yaml",
        )
        .expect("renders");
        let unit = files
            .iter()
            .find(|f| f.name.ends_with(".service"))
            .expect("a unit");
        let text = String::from_utf8(unit.bytes.clone()).expect("utf-8");
        eprintln!("{}:\n{text}", unit.name);

        // The binary, at its literal path: verify finds it only if the
        // unit's word reads back as that path.
        let bin = Path::new(&binary);
        std::fs::create_dir_all(bin.parent().expect("parent")).expect("bin dir");
        std::os::unix::fs::symlink(true_bin, bin).ok();
        let units = case.join("units");
        std::fs::create_dir_all(&units).expect("units dir");
        std::fs::write(units.join(&unit.name), &text).expect("write unit");
        systemd_verify(&units.join(&unit.name)).unwrap_or_else(|e| panic!("{e}\n{text}"));

        if config_dir == &quoted {
            continue;
        }
        // The config argument as a probe's executable (the binary's word
        // holds no blank, so the argument is what follows the first one).
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart= line");
        let (_, argument) = exec.split_once(' ').expect("binary and argument");
        let ini = if processes == 1 {
            "pgbouncer.ini"
        } else {
            "pgbouncer-1.ini"
        };
        std::fs::create_dir_all(config_dir).expect("config dir");
        std::os::unix::fs::symlink(true_bin, Path::new(config_dir).join(ini)).ok();
        let probe_name = if processes == 1 {
            "probe.service"
        } else {
            "probe@.service"
        };
        let probe = units.join(probe_name);
        let probe_text = format!("[Service]\nExecStart={argument}\n");
        std::fs::write(&probe, &probe_text).expect("write probe");
        systemd_verify(&probe).unwrap_or_else(|e| panic!("{e}\n{probe_text}"));
    }
}
