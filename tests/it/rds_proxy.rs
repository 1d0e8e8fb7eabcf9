//! `provider: rds-proxy` against moto's server (AWS emulated on 127.0.0.1):
//! apply creates the secret, the proxy, registers the target and sets the
//! pool; a second apply changes nothing; drift made behind poolwright's
//! back shows in `plan --refresh` and is put right by apply; an apply cut
//! off halfway completes; a failing AWS call in the middle leaves a re-run
//! that succeeds; destroy removes only what apply made. No secret value
//! appears in any output.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Run, root, servers::free_port};

/// The database password: it must never show in any output.
const PASSWORD: &str = "Sup3r-s3cret-pw!";

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv(bin: &str) -> PathBuf {
    root().join("target/test-venv/bin").join(bin)
}

/// moto's server on a free port, or None (SKIP) when it is not installed.
fn start_moto() -> Option<Moto> {
    if !venv("moto_server").is_file() {
        assert!(
            !std::env::var("POOLWRIGHT_REQUIRE_SERVERS").is_ok_and(|v| v == "1"),
            "POOLWRIGHT_REQUIRE_SERVERS=1 but moto is not installed in target/test-venv"
        );
        eprintln!("SKIP: moto not installed; run scripts/install-test-deps");
        return None;
    }
    let port = free_port();
    let child = Command::new(venv("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

/// Runs Python with boto3 against moto; returns stdout (panics on failure).
fn boto(moto: &Moto, code: &str) -> String {
    let prelude = format!(
        "import boto3, json\nkw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nrds = boto3.client('rds', **kw)\nsm = boto3.client('secretsmanager', **kw)\n",
        moto.url
    );
    let out = Command::new(venv("python"))
        .arg("-c")
        .arg(format!("{prelude}{code}"))
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("QBO_DB_PASSWORD", PASSWORD.into()),
    ]
}

fn pw(dir: &Path, moto: &Moto, args: &[&str]) -> Run {
    let env = aws_env(moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = support::poolwright(dir, args, &env);
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(PASSWORD),
            "the password leaked in `{}`:\n{text}",
            args.join(" ")
        );
    }
    run
}

fn write_config(dir: &Path, ids: &serde_json::Value, auth: &str) {
    let yaml = format!(
        r#"version: 1
targets:
  aws:
    provider: rds-proxy
    name: automatch-books-proxy
    region: us-east-1
    target: {{ db_instance: {instance} }}
    auth: {auth}
    role_arn: "arn:aws:iam::123456789012:role/rds-proxy"
    vpc_subnet_ids: [{s0}, {s1}]
    vpc_security_group_ids: [{sg}]
    require_tls: true
    idle_client_timeout: 900
    max_connections_percent: 80
    max_idle_connections_percent: 40
    session_pinning_filters: [EXCLUDE_VARIABLE_SETS]
    user: app
    password: "${{QBO_DB_PASSWORD}}"
    database: qbo_mirror
"#,
        instance = ids["instance"].as_str().expect("instance"),
        s0 = ids["subnets"][0].as_str().expect("subnet"),
        s1 = ids["subnets"][1].as_str().expect("subnet"),
        sg = ids["security_group"].as_str().expect("sg"),
    );
    std::fs::write(dir.join("poolwright.yaml"), yaml).expect("write config");
}

fn setup(moto: &Moto) -> serde_json::Value {
    let out = Command::new(venv("python"))
        .arg(root().join("tests/aws/moto_setup.py"))
        .arg(&moto.url)
        .output()
        .expect("moto_setup.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("setup json")
}

fn state(dir: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(dir.join(".poolwright-state.json")).unwrap_or_else(|_| "{}".into());
    serde_json::from_str(&text).expect("state json")
}

#[test]
fn apply_is_idempotent_survives_drift_and_destroy_cleans_up() {
    let Some(moto) = start_moto() else { return };
    let ids = setup(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(
        d,
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );

    let plan = pw(d, &moto, &["plan"]);
    assert!(
        plan.stdout.contains("url     <known after apply>"),
        "{}",
        plan.stdout
    );
    let url = pw(d, &moto, &["url", "aws"]);
    assert_eq!(url.code, 1);
    assert!(
        url.stderr
            .contains("known only after `poolwright apply aws`"),
        "{}",
        url.stderr
    );

    let first = pw(d, &moto, &["apply", "--poll", "0.1"]);
    eprintln!("first apply:\n{}{}", first.stdout, first.stderr);
    assert_eq!(first.code, 0, "{}", first.stderr);
    for line in [
        "created secret poolwright/automatch-books-proxy/app",
        "created RDS Proxy automatch-books-proxy",
        "registered instance qbo-mirror as the proxy's target",
        "set the connection pool: max_connections_percent: 100 -> 80",
    ] {
        assert!(
            first.stderr.contains(line),
            "no `{line}` in:\n{}",
            first.stderr
        );
    }
    // moto's endpoint form is `db-proxy-`; real AWS says `proxy-`.
    assert!(
        first
            .stdout
            .starts_with("aws: postgresql://app:****@automatch-books-proxy."),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains(".us-east-1.rds.amazonaws.com:5432/qbo_mirror?sslmode=require"),
        "{}",
        first.stdout
    );
    let st = state(d);
    let endpoint = st["targets"]["aws"]["endpoint"]
        .as_str()
        .expect("endpoint in state")
        .to_string();
    let secret_arn = st["targets"]["aws"]["created_secret"]
        .as_str()
        .expect("secret in state")
        .to_string();
    assert!(
        !std::fs::read_to_string(d.join(".poolwright-state.json"))
            .expect("state")
            .contains(PASSWORD)
    );
    // The secret holds what RDS Proxy reads: username and password.
    let value = boto(
        &moto,
        &format!("print(sm.get_secret_value(SecretId='{secret_arn}')['SecretString'])"),
    );
    let value: serde_json::Value = serde_json::from_str(&value).expect("secret json");
    assert_eq!(value["username"], "app");
    assert_eq!(value["password"], PASSWORD);
    let proxy = boto(
        &moto,
        "p = rds.describe_db_proxies(DBProxyName='automatch-books-proxy')['DBProxies'][0]\nprint(json.dumps([p['RequireTLS'], p['IdleClientTimeout'], p['Auth'][0]['SecretArn']]))",
    );
    assert_eq!(proxy, format!("[true, 900, \"{secret_arn}\"]"));

    // url, offline, from the state file.
    let url = pw(d, &moto, &["url", "aws", "--show-password"]);
    assert_eq!(
        url.stdout.trim(),
        format!(
            "postgresql://app:{}@{endpoint}:5432/qbo_mirror?sslmode=require",
            "Sup3r-s3cret-pw%21"
        )
    );

    // Idempotent: nothing to change the second time.
    let second = pw(d, &moto, &["apply", "--poll", "0.1"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("is as poolwright.yaml says: nothing to change"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("created") && !second.stderr.contains("registered"),
        "{}",
        second.stderr
    );

    // Drift behind poolwright's back: plan --refresh names it, apply puts it right.
    boto(
        &moto,
        "rds.modify_db_proxy_target_group(DBProxyName='automatch-books-proxy', TargetGroupName='default', ConnectionPoolConfig={'MaxConnectionsPercent': 50, 'MaxIdleConnectionsPercent': 10})",
    );
    let refresh = pw(d, &moto, &["plan", "--refresh"]);
    assert_eq!(refresh.code, 0, "{}", refresh.stderr);
    assert!(
        refresh
            .stdout
            .contains("AWS: change the connection pool: max_connections_percent: 50 -> 80"),
        "{}",
        refresh.stdout
    );
    let fixed = pw(d, &moto, &["apply", "--poll", "0.1"]);
    assert!(
        fixed.stderr.contains("set the connection pool"),
        "{}",
        fixed.stderr
    );
    let clean = pw(d, &moto, &["plan", "--refresh"]);
    assert!(
        clean.stdout.contains("nothing to change"),
        "{}",
        clean.stdout
    );

    // An apply cut off before registering the target completes next time.
    boto(
        &moto,
        "rds.deregister_db_proxy_targets(DBProxyName='automatch-books-proxy', DBInstanceIdentifiers=['qbo-mirror'])",
    );
    let resumed = pw(d, &moto, &["apply", "--poll", "0.1"]);
    assert!(
        resumed.stderr.contains("registered instance qbo-mirror"),
        "{}",
        resumed.stderr
    );

    // A call that fails in the middle (moto answers ModifyDBProxy with 500):
    // apply exits 1 with AWS's action named; undone, the re-run succeeds.
    let config = std::fs::read_to_string(d.join("poolwright.yaml")).expect("config");
    std::fs::write(
        d.join("poolwright.yaml"),
        config.replace("require_tls: true", "require_tls: false"),
    )
    .expect("write");
    let failed = pw(d, &moto, &["apply", "--poll", "0.1"]);
    eprintln!("apply against a failing ModifyDBProxy:\n{}", failed.stderr);
    assert_eq!(failed.code, 1);
    assert!(
        failed
            .stderr
            .contains("AWS ModifyDBProxy failed: AWS answered HTTP 500"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("picks up where it stopped"),
        "{}",
        failed.stderr
    );
    std::fs::write(d.join("poolwright.yaml"), &config).expect("write");
    assert_eq!(pw(d, &moto, &["apply", "--poll", "0.1"]).code, 0);

    // destroy asks first; --yes removes the proxy and the secret it made.
    let refused = pw(d, &moto, &["destroy", "aws"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let destroyed = pw(d, &moto, &["destroy", "aws", "--yes"]);
    eprintln!("destroy:\n{}", destroyed.stderr);
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    assert!(
        destroyed
            .stderr
            .contains("deleted RDS Proxy automatch-books-proxy"),
        "{}",
        destroyed.stderr
    );
    let gone = boto(&moto, "print(len(rds.describe_db_proxies()['DBProxies']))");
    assert_eq!(gone, "0");
    let deleted = boto(
        &moto,
        &format!("print('DeletedDate' in sm.describe_secret(SecretId='{secret_arn}'))"),
    );
    assert_eq!(deleted, "True");
    assert!(state(d)["targets"].get("aws").is_none(), "{}", state(d));
}

#[test]
fn destroy_never_deletes_a_secret_poolwright_did_not_create() {
    let Some(moto) = start_moto() else { return };
    let ids = setup(&moto);
    let arn = boto(
        &moto,
        "print(sm.create_secret(Name='team/qbo', SecretString=json.dumps({'username': 'app', 'password': 'x'}))['ARN'])",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &ids, &format!("{{ secret_arn: \"{arn}\" }}"));
    let applied = pw(dir.path(), &moto, &["apply", "--poll", "0.1"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        !applied.stderr.contains("created secret"),
        "{}",
        applied.stderr
    );
    assert!(
        state(dir.path())["targets"]["aws"]
            .get("created_secret")
            .is_none()
    );
    let destroyed = pw(dir.path(), &moto, &["destroy", "aws", "--yes"]);
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    assert!(!destroyed.stderr.contains("secret"), "{}", destroyed.stderr);
    let kept = boto(
        &moto,
        &format!("print('DeletedDate' in sm.describe_secret(SecretId='{arn}'))"),
    );
    assert_eq!(
        kept, "False",
        "destroy deleted a secret poolwright did not create"
    );
}
