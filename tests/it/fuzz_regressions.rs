//! fuzz/regressions/<target>/<case>: inputs the fuzzers found (after the
//! bug was fixed) and hand-picked awkward ones, replayed through the same
//! checks the fuzz targets run, so `cargo test` keeps them fixed without
//! a fuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use poolwright::invariants;

use crate::support::root;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 5] = [
    ("config", invariants::check_config),
    ("url", invariants::check_url),
    ("userlist", invariants::check_userlist),
    ("pgbouncer_ini", invariants::check_pgbouncer_ini),
    ("env_merge", invariants::check_env_merge),
];

#[test]
fn every_regression_case_passes_its_check() {
    let dir = root().join("fuzz/regressions");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let mut cases: Vec<_> = std::fs::read_dir(dir.join(target))
            .unwrap_or_else(|e| panic!("fuzz/regressions/{target}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .collect();
        cases.sort();
        assert!(!cases.is_empty(), "fuzz/regressions/{target} has no cases");
        for case in cases {
            let data = std::fs::read(&case).expect("read case");
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(format!(
                    "{target}/{}",
                    case.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(replayed >= TARGETS.len());
    assert!(
        failures.is_empty(),
        "failing regression cases: {failures:?}"
    );
}

/// Only the five targets have case directories (a misspelt one would
/// never run).
#[test]
fn regression_dirs_match_the_targets() {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("fuzz/regressions"))
        .expect("fuzz/regressions exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    let mut want: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    want.sort();
    assert_eq!(dirs, want);
}
