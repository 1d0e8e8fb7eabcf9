//! Offline: the Supabase pooler host from the config, the state file, or not yet.

#[allow(unused_imports)]
use super::*;

pub(crate) const SUPABASE_NO_HOST: &str = "version: 1
targets:
  staging:
    provider: supabase
    project_ref: abcdefghijklmnopqrst
    pool_mode: transaction
    password: \"${DB_PASSWORD}\"
  staging-session:
    provider: supabase
    project_ref: abcdefghijklmnopqrst
    pool_mode: session
    password: \"${DB_PASSWORD}\"
";

#[test]
fn supabase_offline_without_host_is_known_after_apply_and_then_from_state() {
    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let validate = poolwright(d, &["validate"], &pw_env());
    succeeds(&validate, "validate");

    let url = poolwright(d, &["url", "staging"], &pw_env());
    assert_eq!(url.code, 1, "{}", url.stderr);
    assert_eq!(url.stdout, "");
    assert!(
        url.stderr.starts_with(
            "error: the URL of `staging` is known only after `poolwright apply staging`\n"
        ),
        "{}",
        url.stderr
    );

    let plan = poolwright(d, &["plan", "staging"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains("  url     <known after apply>\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "  note    pooler host unknown: `poolwright apply` reads it from the Management API (SUPABASE_ACCESS_TOKEN), or set `pooler_host`\n"
        ),
        "{}",
        plan.stdout
    );
    let json = poolwright(d, &["plan", "staging", "--format", "json"], &pw_env());
    succeeds(&json, "plan --format json");
    let json: Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(json[0]["url"], "<known after apply>");
    assert_eq!(
        listing(d),
        ["poolwright.yaml"],
        "offline commands write nothing"
    );

    // What the last apply learned.
    std::fs::write(
        d.join(STATE),
        r#"{"targets": {"staging": {"pooler_host": "aws-1-ap-southeast-1.pooler.supabase.com"},
            "staging-session": {"pooler_host": "aws-1-ap-southeast-1.pooler.supabase.com"}}}"#,
    )
    .expect("state");
    let host = "aws-1-ap-southeast-1.pooler.supabase.com";
    assert_eq!(
        revealed(d, &["staging"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:6543/postgres?sslmode=require")
    );
    assert_eq!(
        revealed(d, &["staging-session"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{host}:5432/postgres?sslmode=require")
    );
    let plan = poolwright(d, &["plan", "staging"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains(&format!(
            "  note    pooler host {host} (learned by the last apply (.poolwright-state.json))\n"
        )),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(&format!(
        "  url     postgresql://postgres.{REF}:****@{host}:6543/postgres?sslmode=require\n"
    )));

    // The config wins over the state file.
    std::fs::write(
        d.join("poolwright.yaml"),
        SUPABASE_NO_HOST.replace(
            "    pool_mode: transaction\n",
            "    pool_mode: transaction\n    pooler_host: aws-0-us-west-1.pooler.supabase.com\n",
        ),
    )
    .expect("write");
    assert!(revealed(d, &["staging"]).contains("@aws-0-us-west-1.pooler.supabase.com:6543/"));

    // A state file that is not one: a clear message, exit 1.
    std::fs::write(d.join(STATE), "{not json").expect("state");
    let broken = poolwright(d, &["url", "staging"], &pw_env());
    assert_eq!(broken.code, 1);
    assert!(
        broken
            .stderr
            .contains(".poolwright-state.json: not a poolwright state file"),
        "{}",
        broken.stderr
    );
}

#[test]
fn neon_offline_without_region_is_known_after_apply() {
    let dir = project(&neon_config(None, None));
    let d = dir.path();
    let url = poolwright(d, &["url", "preview"], &pw_env());
    assert_eq!(url.code, 1);
    assert!(
        url.stderr.starts_with(
            "error: the URL of `preview` is known only after `poolwright apply preview`\n"
        ),
        "{}",
        url.stderr
    );
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains("  url     <known after apply>\n"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("NEON_API_KEY"), "{}", plan.stdout);
}
