//! `provider: rds-proxy` against moto's server (AWS emulated on 127.0.0.1):
//! apply creates the secret, the proxy, registers the target and sets the
//! pool; a second apply changes nothing; drift made behind poolwright's
//! back shows in `plan --refresh` and is put right by apply; an apply cut
//! off halfway completes; a failing AWS call in the middle leaves a re-run
//! that succeeds; destroy removes only what apply made.
//!
//! The error paths go through tests/aws/fault_proxy.py, an HTTP proxy in
//! front of moto that answers some calls itself: throttling that the SDK
//! retries, AccessDenied, a target that never becomes healthy. No secret
//! value appears in any output, nor in the fault proxy's log.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Run, root, servers::free_port};

/// The database password: it must never show in any output.
pub(crate) const PASSWORD: &str = "Sup3r-s3cret-pw!";

/// What gives the secret away besides [`PASSWORD`] itself: the JSON key of
/// the Secrets Manager value poolwright writes (`{"password": ...}`, also
/// as escaped in a debug dump).
const SECRET_JSON_KEYS: [&str; 2] = ["\"password\":", "\\\"password\\\":"];

/// Panics when `text` (the output named `what`) shows the password or the
/// secret's JSON. `url --show-password` is the one output allowed to show
/// the URL-encoded password; `strict` also rejects that form.
pub(crate) fn assert_no_secret(what: &str, text: &str, strict: bool) {
    assert!(
        !text.contains(PASSWORD),
        "the password leaked in {what}:\n{text}"
    );
    for key in SECRET_JSON_KEYS {
        assert!(
            !text.contains(key),
            "the secret's JSON leaked in {what}:\n{text}"
        );
    }
    if strict {
        assert!(
            !text.contains("Sup3r-s3cret-pw%21"),
            "the URL-encoded password leaked in {what}:\n{text}"
        );
    }
}

pub(crate) struct Moto {
    child: Child,
    pub(crate) url: String,
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
pub(crate) fn start_moto() -> Option<Moto> {
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
pub(crate) fn boto(moto: &Moto, code: &str) -> String {
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

pub(crate) fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("QBO_DB_PASSWORD", PASSWORD.into()),
    ]
}

/// Runs poolwright against moto; asserts no secret in its output.
fn pw(dir: &Path, moto: &Moto, args: &[&str]) -> Run {
    pw_at(dir, &moto.url, args, false)
}

/// Runs poolwright with AWS_ENDPOINT_URL=`endpoint`; asserts no secret in
/// its stdout and stderr (`strict`: not even URL-encoded).
fn pw_at(dir: &Path, endpoint: &str, args: &[&str], strict: bool) -> Run {
    let env = aws_env(endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = support::poolwright(dir, args, &env);
    let cmd = args.join(" ");
    assert_no_secret(&format!("the stdout of `{cmd}`"), &run.stdout, strict);
    assert_no_secret(&format!("the stderr of `{cmd}`"), &run.stderr, strict);
    run
}

pub(crate) fn write_config(dir: &Path, ids: &serde_json::Value, auth: &str) {
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

pub(crate) fn setup(moto: &Moto) -> serde_json::Value {
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

pub(crate) fn state(dir: &Path) -> serde_json::Value {
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

/// tests/aws/fault_proxy.py in front of moto, killed on drop. Its log has
/// one line per request: `<seq> <METHOD> <ACTION> <status> <outcome>`.
pub(crate) struct FaultProxy {
    child: Child,
    pub(crate) url: String,
    log: PathBuf,
    stderr: PathBuf,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request as the fault proxy logged it.
#[derive(Debug, PartialEq)]
pub(crate) struct Call {
    pub(crate) action: String,
    pub(crate) status: u16,
    pub(crate) outcome: String,
}

impl FaultProxy {
    /// Starts the proxy with `rules` (its command-line options); it writes
    /// its log and stderr into `logs`.
    pub(crate) fn start(moto: &Moto, logs: &Path, rules: &[&str]) -> FaultProxy {
        let log = logs.join("fault-proxy.log");
        let stderr = logs.join("fault-proxy.stderr");
        let mut child = Command::new(venv("python"))
            .arg(root().join("tests/aws/fault_proxy.py"))
            .args(["--upstream", &moto.url, "--log"])
            .arg(&log)
            .args(rules)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("fault proxy stderr"))
            .spawn()
            .expect("start fault_proxy.py");
        // It prints `listening <port>` once it accepts connections (EOF if
        // it died first).
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the fault proxy's port");
        let mut proxy = FaultProxy {
            child,
            url: String::new(),
            log,
            stderr,
        };
        let port: u16 = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "fault_proxy.py did not start: {line:?}\n{}",
                    std::fs::read_to_string(&proxy.stderr).unwrap_or_default()
                )
            });
        proxy.url = format!("http://127.0.0.1:{port}");
        proxy
    }

    /// Every request so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert!(f.len() >= 5, "odd fault proxy log line: {line}");
                Call {
                    action: f[2].to_string(),
                    status: f[3].parse().expect("status"),
                    outcome: f[4].to_string(),
                }
            })
            .collect()
    }

    /// The requests for `action`, in order.
    fn calls_of(&self, action: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }

    /// Asserts that the proxy's log and stderr hold no secret.
    pub(crate) fn assert_clean(&self) {
        for file in [&self.log, &self.stderr] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            assert_no_secret(&file.display().to_string(), &text, true);
        }
    }

    /// Runs poolwright through the proxy (outputs checked for secrets).
    fn pw(&self, dir: &Path, args: &[&str]) -> Run {
        pw_at(dir, &self.url, args, true)
    }
}

/// The hint line of an error output.
pub(crate) fn hint(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with("= hint:"))
        .unwrap_or_else(|| panic!("no hint in:\n{stderr}"))
}

pub(crate) fn proxies_in_moto(moto: &Moto) -> String {
    boto(moto, "print(len(rds.describe_db_proxies()['DBProxies']))")
}

#[test]
fn throttling_is_retried_with_backoff_then_apply_succeeds() {
    let Some(moto) = start_moto() else { return };
    let ids = setup(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(
        d,
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );
    let logs = tempfile::tempdir().expect("tempdir");
    let proxy = FaultProxy::start(&moto, logs.path(), &["--throttle", "DescribeDBProxies=2"]);

    let applied = proxy.pw(d, &["apply", "--poll", "0.1"]);
    eprintln!("apply through 2 throttles:\n{}", applied.stderr);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        applied
            .stderr
            .contains("created RDS Proxy automatch-books-proxy"),
        "{}",
        applied.stderr
    );
    assert!(
        !applied.stderr.contains("Throttling") && !applied.stderr.contains("error"),
        "a retried throttle is not an error:\n{}",
        applied.stderr
    );
    assert!(
        applied.stdout.starts_with("aws: postgresql://app:****@"),
        "{}",
        applied.stdout
    );
    // The SDK's standard retry: one DescribeDBProxies call was attempted 3
    // times in a row (throttled, throttled, answered) before anything else;
    // the answer is DBProxyNotFoundFault (HTTP 404): no proxy yet.
    let calls = proxy.calls();
    let first = calls
        .iter()
        .position(|c| c.action == "DescribeDBProxies")
        .expect("DescribeDBProxies was called");
    let attempts: Vec<(&str, u16, &str)> = calls[first..first + 3]
        .iter()
        .map(|c| (c.action.as_str(), c.status, c.outcome.as_str()))
        .collect();
    assert_eq!(
        attempts,
        [
            ("DescribeDBProxies", 400, "throttled"),
            ("DescribeDBProxies", 400, "throttled"),
            ("DescribeDBProxies", 404, "forwarded"),
        ],
        "{calls:#?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.outcome == "throttled").count(),
        2,
        "{calls:#?}"
    );
    assert_eq!(proxies_in_moto(&moto), "1");
    proxy.assert_clean();
    drop(proxy);

    // Throttled more often than the SDK retries (3 attempts): apply stops,
    // naming the action and AWS's code.
    let logs = tempfile::tempdir().expect("tempdir");
    let proxy = FaultProxy::start(&moto, logs.path(), &["--throttle", "DescribeDBProxies=3"]);
    let failed = proxy.pw(d, &["apply", "--poll", "0.1"]);
    eprintln!("apply through 3 throttles:\n{}", failed.stderr);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("AWS DescribeDBProxies failed: Throttling: Rate exceeded"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        proxy.calls_of("DescribeDBProxies").len(),
        3,
        "{:#?}",
        proxy.calls()
    );
    proxy.assert_clean();
}

#[test]
fn access_denied_names_the_action_and_makes_no_proxy() {
    let Some(moto) = start_moto() else { return };
    let ids = setup(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(
        d,
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );
    let logs = tempfile::tempdir().expect("tempdir");
    let proxy = FaultProxy::start(&moto, logs.path(), &["--deny", "CreateDBProxy"]);

    let denied = proxy.pw(d, &["apply", "--poll", "0.1"]);
    eprintln!("apply denied CreateDBProxy:\n{}", denied.stderr);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(
        denied
            .stderr
            .contains("error: AWS CreateDBProxy failed: AccessDenied: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: rds:CreateDBProxy"),
        "{}",
        denied.stderr
    );
    assert!(
        hint(&denied.stderr).contains("the AWS identity in use may not call CreateDBProxy"),
        "{}",
        denied.stderr
    );
    assert!(denied.stdout.is_empty(), "{}", denied.stdout);
    // AccessDenied is not retried: one attempt.
    let creates = proxy.calls_of("CreateDBProxy");
    assert_eq!(
        creates,
        [Call {
            action: "CreateDBProxy".into(),
            status: 403,
            outcome: "denied".into(),
        }]
    );
    // Asked of moto directly: no proxy was made.
    assert_eq!(proxies_in_moto(&moto), "0");
    proxy.assert_clean();

    // The secret apply created before the denial is poolwright's: destroy
    // (with AWS answering again) removes it rather than leaving it behind.
    let secret = "poolwright/automatch-books-proxy/app";
    let made = boto(
        &moto,
        &format!("print('DeletedDate' in sm.describe_secret(SecretId='{secret}'))"),
    );
    assert_eq!(made, "False", "apply made the secret before CreateDBProxy");
    let destroyed = pw_at(d, &moto.url, &["destroy", "aws", "--yes"], true);
    eprintln!("destroy after the denied apply:\n{}", destroyed.stderr);
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    let deleted = boto(
        &moto,
        &format!("print('DeletedDate' in sm.describe_secret(SecretId='{secret}'))"),
    );
    assert_eq!(
        deleted,
        "True",
        "destroy left behind the secret the failed apply created (state: {}):\n{}",
        state(d),
        destroyed.stderr
    );
}

#[test]
fn a_target_that_never_becomes_healthy_times_out_with_the_reason() {
    let Some(moto) = start_moto() else { return };
    let ids = setup(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_config(
        d,
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );
    let logs = tempfile::tempdir().expect("tempdir");
    let proxy = FaultProxy::start(&moto, logs.path(), &["--unhealthy"]);

    let started = Instant::now();
    let stuck = proxy.pw(d, &["apply", "--wait", "2", "--poll", "0.2"]);
    let took = started.elapsed();
    eprintln!(
        "apply with an unhealthy target ({took:?}):\n{}",
        stuck.stderr
    );
    assert_eq!(stuck.code, 1, "{}", stuck.stderr);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "apply --wait 2 took {took:?}"
    );
    assert!(
        stuck.stderr.contains(
            "error: RDS Proxy automatch-books-proxy is not healthy after 2 s: proxy available, target qbo-mirror UNAVAILABLE (AUTH_FAILURE Proxy does not have any registered credentials for the user)"
        ),
        "{}",
        stuck.stderr
    );
    let hint = hint(&stuck.stderr);
    assert!(
        hint.contains("the secret's credentials are wrong")
            && hint.contains("the role cannot read (or decrypt) the secret"),
        "{}",
        stuck.stderr
    );
    // Plain progress lines off a terminal, each state once.
    assert_eq!(
        stuck
            .stderr
            .matches("waiting: proxy available, target qbo-mirror UNAVAILABLE")
            .count(),
        1,
        "{}",
        stuck.stderr
    );
    assert!(stuck.stdout.is_empty(), "{}", stuck.stdout);
    // It kept asking while it waited (every 0.2 s for 2 s).
    let polls = proxy.calls_of("DescribeDBProxyTargets");
    assert!(polls.len() >= 5, "{polls:#?}");
    assert!(
        polls
            .iter()
            .all(|c| c.outcome == "forwarded unhealthy" || c.outcome == "forwarded")
    );
    proxy.assert_clean();
}
