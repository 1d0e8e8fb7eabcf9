//! Every config under examples/ validates, plans and renders.

use crate::support::{poolwright, root};

#[test]
fn every_example_validates_plans_and_renders() {
    let mut found = 0;
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let dir = entry.expect("entry").path();
        let config = dir.join("poolwright.yaml");
        if !config.is_file() {
            continue;
        }
        found += 1;
        let config = config.to_str().expect("utf-8 path");
        let out = tempfile::tempdir().expect("tempdir");
        let out_dir = out.path().to_str().expect("utf-8 path");
        // Demo values for every variable an example uses.
        let env = [("QBO_DB_PASSWORD", "demo")];
        for args in [
            vec!["--config", config, "validate"],
            vec!["--config", config, "plan"],
            vec!["--config", config, "render", "--out", out_dir],
        ] {
            let run = poolwright(&root(), &args, &env);
            assert_eq!(run.code, 0, "{args:?} failed:\n{}", run.stderr);
            assert!(
                !run.stdout.contains("demo"),
                "{args:?} printed the password"
            );
        }
        assert!(std::fs::read_dir(out.path()).expect("out").count() >= 3);
    }
    assert!(found > 0, "no examples found");
}
