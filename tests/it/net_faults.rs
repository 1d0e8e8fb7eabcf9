//! Network faults against every API client poolwright has: the Supabase
//! Management API, the Neon API (reqwest, src/api.rs) and AWS (the SDK,
//! src/providers/rds_proxy/aws.rs), each under four faults:
//!
//! | fault              | what the network does                                |
//! |--------------------|------------------------------------------------------|
//! | connection refused | nothing listens on the API's port                    |
//! | reset mid-body     | headers for 1,000 bytes, 10 of them, then a TCP RST  |
//! | slow               | the request is read and never answered               |
//! | 5xx storm          | every request gets 503                               |
//!
//! Each test runs the built binary (`apply`) with short patience
//! (POOLWRIGHT_HTTP_TIMEOUT=0.5, _ATTEMPTS=3, _BACKOFF=0.05) and checks:
//! exit 1 with a message naming the API and what happened, and a hint; no
//! panic; the attempts counted at the server; the time taken; no secret in
//! the output; the state file as it was. Then a re-run (the fault once
//! more, then a healthy server behind it) completes the work: exit 0, the
//! state and the URL right.
//!
//! Supabase and Neon go through tests/it/support/fault_server.rs in front
//! of wiremock (answering as the managed tests' mocks do); AWS through
//! tests/aws/fault_proxy.py in front of moto.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::managed::{
    MAIN_BRANCH, NEON_PROJECT, PRIMARY_HOST, REF, STATE, SUPABASE_NO_HOST, SUPABASE_TOKEN, listing,
    mount_neon, neon_config, neon_env, no_secrets, pooler_body, pooler_path, project, runtime,
    state, supabase_env,
};
use crate::rds_proxy::{self, FaultProxy};
use crate::support::fault_server::{Fault, FaultServer};
use crate::support::{Run, poolwright};

/// Short patience, so a test waits out its faults in a second or two.
const PATIENCE: [(&str, &str); 3] = [
    ("POOLWRIGHT_HTTP_TIMEOUT", "0.5"),
    ("POOLWRIGHT_HTTP_ATTEMPTS", "3"),
    ("POOLWRIGHT_HTTP_BACKOFF", "0.05"),
];
const ATTEMPTS: usize = 3;

/// A provider whose API poolwright calls with reqwest.
#[derive(Debug, Clone, Copy)]
enum Provider {
    Supabase,
    Neon,
}

/// Neon's endpoint in the mocks, and the hosts poolwright learns from it.
const NEON_ENDPOINT: &str = "ep-main-333333";
const NEON_POOLED: &str = "ep-main-333333-pooler.us-east-2.aws.neon.tech";
const NEON_DIRECT: &str = "ep-main-333333.us-east-2.aws.neon.tech";

impl Provider {
    fn api_name(self) -> &'static str {
        match self {
            Provider::Supabase => "the Supabase Management API",
            Provider::Neon => "the Neon API",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Provider::Supabase => "staging",
            Provider::Neon => "preview",
        }
    }

    fn config(self) -> String {
        match self {
            Provider::Supabase => SUPABASE_NO_HOST.to_string(),
            Provider::Neon => neon_config(None, Some(MAIN_BRANCH)),
        }
    }

    /// The path of the first request an apply makes.
    fn first_path(self) -> String {
        match self {
            Provider::Supabase => pooler_path(),
            Provider::Neon => format!("/projects/{NEON_PROJECT}/endpoints"),
        }
    }

    /// The requests a healthy apply makes.
    fn requests(self) -> usize {
        match self {
            // The pooler configuration.
            Provider::Supabase => 1,
            // The endpoint list, then connection_uri pooled and direct.
            Provider::Neon => 3,
        }
    }

    fn env(self) -> Vec<(&'static str, &'static str)> {
        let mut env = match self {
            Provider::Supabase => supabase_env(Some(SUPABASE_TOKEN)),
            Provider::Neon => neon_env(),
        };
        env.extend(PATIENCE);
        env
    }

    /// A state file from an earlier apply, with hosts that have since moved.
    fn old_state(self) -> String {
        let target = match self {
            Provider::Supabase => json!({"pooler_host": "aws-0-old.pooler.supabase.com"}),
            Provider::Neon => json!({
                "pooled_host": "ep-old-000000-pooler.us-east-2.aws.neon.tech",
                "direct_host": "ep-old-000000.us-east-2.aws.neon.tech",
            }),
        };
        let state = json!({"targets": {self.target(): target}});
        format!("{}\n", serde_json::to_string_pretty(&state).expect("json"))
    }

    /// The state a healthy apply leaves.
    fn new_state(self) -> Value {
        let target = match self {
            Provider::Supabase => json!({"pooler_host": PRIMARY_HOST}),
            Provider::Neon => json!({"pooled_host": NEON_POOLED, "direct_host": NEON_DIRECT}),
        };
        json!({"targets": {self.target(): target}})
    }

    /// What a healthy apply prints on stdout.
    fn url_line(self) -> String {
        match self {
            Provider::Supabase => format!(
                "staging: postgresql://postgres.{REF}:****@{PRIMARY_HOST}:6543/postgres?sslmode=require\n"
            ),
            Provider::Neon => format!(
                "preview: postgresql://app:****@{NEON_POOLED}:5432/qbo_mirror?sslmode=require&channel_binding=require\n"
            ),
        }
    }

    /// A healthy API, answering as the managed tests' mocks do.
    fn healthy(self, rt: &tokio::runtime::Runtime) -> MockServer {
        rt.block_on(async {
            let server = MockServer::start().await;
            match self {
                Provider::Supabase => {
                    Mock::given(method("GET"))
                        .and(path(pooler_path()))
                        .respond_with(ResponseTemplate::new(200).set_body_json(pooler_body()))
                        .mount(&server)
                        .await;
                }
                Provider::Neon => mount_neon(&server, NEON_ENDPOINT).await,
            }
            server
        })
    }
}

/// `poolwright apply TARGET --api-url URL` in `dir`, timed.
fn apply(dir: &Path, provider: Provider, url: &str) -> (Run, Duration) {
    let started = Instant::now();
    let run = poolwright(
        dir,
        &["apply", provider.target(), "--api-url", url],
        &provider.env(),
    );
    (run, started.elapsed())
}

/// What poolwright must say (error line, hint) when `fault` outlasts its
/// attempts; `url` is the API's base URL.
fn expected_error(provider: Provider, fault: Fault, url: &str) -> (String, &'static str) {
    let name = provider.api_name();
    let first = provider.first_path();
    match fault {
        Fault::Refuse => (
            format!(
                "error: cannot reach {name} at {url}: connection refused ({ATTEMPTS} attempts)"
            ),
            "= hint: check the network, or point poolwright at another API with --api-url",
        ),
        Fault::ResetMidBody => (
            format!(
                "error: {name} broke off its answer to GET {first}: connection reset ({ATTEMPTS} attempts)"
            ),
            "= hint: a flaky network or proxy: run it again (nothing was written), or try more often with POOLWRIGHT_HTTP_ATTEMPTS",
        ),
        Fault::Hang => (
            format!("error: {name} did not answer GET {first} within 0.5 s ({ATTEMPTS} attempts)"),
            "= hint: a slow network or an overloaded API: run it again, or allow more time with POOLWRIGHT_HTTP_TIMEOUT=SECONDS (now 0.5 s) and more tries with POOLWRIGHT_HTTP_ATTEMPTS",
        ),
        Fault::Status(status) => (
            format!(
                "error: {name} answered {status} for {first} ({ATTEMPTS} attempts): {{\"message\": \"fault server: {status}\"}}"
            ),
            "= hint: an error on the provider's side: run it again later (nothing was written), or try more often with POOLWRIGHT_HTTP_ATTEMPTS",
        ),
    }
}

/// The whole story for one provider and fault: give up cleanly, then
/// complete on a re-run.
fn gives_up_cleanly_then_a_rerun_completes(provider: Provider, fault: Fault) {
    let rt = runtime();
    let healthy = provider.healthy(&rt);
    let dir = project(&provider.config());
    let d = dir.path();
    let before = provider.old_state();
    std::fs::write(d.join(STATE), &before).expect("write the old state");

    // The fault on every request: poolwright gives up.
    let faulty = FaultServer::start(fault, usize::MAX, None);
    let (run, took) = apply(d, provider, &faulty.url);
    let what = format!("{provider:?} under {fault:?}");
    eprintln!("{what} ({took:?}):\n{}", run.stderr);
    assert_eq!(run.code, 1, "{what}: exit code\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
    assert_eq!(run.stdout, "", "{what}: no URL on stdout");
    no_secrets(&run);
    let (says, hint) = expected_error(provider, fault, &faulty.url);
    assert!(
        run.stderr.contains(&says),
        "{what}: stderr lacks {says:?}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(hint),
        "{what}: stderr lacks the hint {hint:?}:\n{}",
        run.stderr
    );
    // Bounded attempts: counted at the server (a refused connection never
    // arrives, so there the time bound is the proof).
    let attempts = if fault == Fault::Refuse { 0 } else { ATTEMPTS };
    assert_eq!(
        faulty.requests(),
        attempts,
        "{what}: requests at the server"
    );
    // Bounded time: 3 attempts of at most 0.5 s with 0.05 + 0.1 s between
    // them, plus the process; a hang has to wait out every timeout.
    assert!(took < Duration::from_secs(6), "{what}: took {took:?}");
    if fault == Fault::Hang {
        assert!(
            took >= Duration::from_millis(1500),
            "{what}: gave up before 3 timeouts of 0.5 s ({took:?})"
        );
    }
    // Nothing half-written: the earlier state byte for byte, nothing new.
    assert_eq!(
        std::fs::read_to_string(d.join(STATE)).expect("state"),
        before,
        "{what}: the state file changed"
    );
    assert_eq!(listing(d), [STATE, "poolwright.yaml"], "{what}");
    drop(faulty);

    // The re-run: the fault strikes once more, then the network heals (a
    // refused port is simply replaced by the healthy server).
    let (run, flaky) = if fault == Fault::Refuse {
        (apply(d, provider, &healthy.uri()).0, None)
    } else {
        let flaky = FaultServer::start(fault, 1, Some(&healthy.uri()));
        (apply(d, provider, &flaky.url).0, Some(flaky))
    };
    assert_eq!(run.code, 0, "{what}: the re-run failed\n{}", run.stderr);
    no_secrets(&run);
    assert_eq!(run.stdout, provider.url_line(), "{what}: the re-run's URL");
    assert_eq!(state(d), provider.new_state(), "{what}: the re-run's state");
    let answered = rt
        .block_on(healthy.received_requests())
        .expect("recording")
        .len();
    assert_eq!(answered, provider.requests(), "{what}: healthy requests");
    if let Some(flaky) = flaky {
        assert_eq!(
            flaky.requests(),
            provider.requests() + 1,
            "{what}: one faulty attempt, then the healthy ones"
        );
    }
}

#[test]
fn supabase_connection_refused() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Supabase, Fault::Refuse);
}

#[test]
fn supabase_reset_mid_body() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Supabase, Fault::ResetMidBody);
}

#[test]
fn supabase_slow_past_the_timeout() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Supabase, Fault::Hang);
}

#[test]
fn supabase_5xx_storm() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Supabase, Fault::Status(503));
}

#[test]
fn neon_connection_refused() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Neon, Fault::Refuse);
}

#[test]
fn neon_reset_mid_body() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Neon, Fault::ResetMidBody);
}

#[test]
fn neon_slow_past_the_timeout() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Neon, Fault::Hang);
}

#[test]
fn neon_5xx_storm() {
    gives_up_cleanly_then_a_rerun_completes(Provider::Neon, Fault::Status(503));
}

/// `plan --refresh` reads the same API: it gives up as apply does and, as
/// always, writes nothing.
#[test]
fn plan_refresh_gives_up_on_a_hung_api_in_bounded_time() {
    let dir = project(&Provider::Neon.config());
    let faulty = FaultServer::start(Fault::Hang, usize::MAX, None);
    let started = Instant::now();
    let run = poolwright(
        dir.path(),
        &["plan", "preview", "--refresh", "--api-url", &faulty.url],
        &Provider::Neon.env(),
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let (says, _) = expected_error(Provider::Neon, Fault::Hang, &faulty.url);
    assert!(run.stderr.contains(&says), "{}", run.stderr);
    assert_eq!(faulty.requests(), ATTEMPTS);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    no_secrets(&run);
    assert_eq!(listing(dir.path()), ["poolwright.yaml"]);
}

/// A bad setting is refused before any request, naming the variable.
#[test]
fn a_bad_network_setting_is_a_clear_error_before_any_request() {
    let dir = project(&Provider::Supabase.config());
    let server = FaultServer::start(Fault::Status(503), usize::MAX, None);
    for (var, value, says) in [
        (
            "POOLWRIGHT_HTTP_TIMEOUT",
            "soon",
            "error: POOLWRIGHT_HTTP_TIMEOUT must be a number of seconds above 0 and at most 3600 (like 0.5), not `soon`",
        ),
        (
            "POOLWRIGHT_HTTP_ATTEMPTS",
            "0",
            "error: POOLWRIGHT_HTTP_ATTEMPTS must be a whole number from 1 to 20, not `0`",
        ),
        (
            "POOLWRIGHT_HTTP_BACKOFF",
            "-1",
            "error: POOLWRIGHT_HTTP_BACKOFF must be a number of seconds from 0 to 60 (like 0.5), not `-1`",
        ),
    ] {
        let mut env = supabase_env(Some(SUPABASE_TOKEN));
        env.push((var, value));
        let run = poolwright(
            dir.path(),
            &["apply", "staging", "--api-url", &server.url],
            &env,
        );
        assert_eq!(run.code, 1, "{var}={value}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{var}={value}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("= hint: fix or unset {var}")),
            "{}",
            run.stderr
        );
        no_secrets(&run);
    }
    assert_eq!(server.requests(), 0, "no request with a bad setting");
    assert_eq!(listing(dir.path()), ["poolwright.yaml"]);
}

// ---------------------------------------------------------------------------
// AWS (the SDK) through tests/aws/fault_proxy.py in front of moto
// ---------------------------------------------------------------------------

/// `apply` of an RDS Proxy target with AWS at `endpoint` and short
/// patience; timed, and checked for secrets.
fn aws_apply(dir: &Path, endpoint: &str) -> (Run, Duration) {
    let mut env = rds_proxy::aws_env(endpoint);
    env.extend(PATIENCE.map(|(k, v)| (k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let run = poolwright(dir, &["apply", "--poll", "0.1"], &env);
    let took = started.elapsed();
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        rds_proxy::assert_no_secret(&format!("the {what} of apply"), text, true);
    }
    (run, took)
}

/// The secret apply makes first (DescribeSecret is its first call).
const AWS_SECRET: &str = "poolwright/automatch-books-proxy/app";

/// How many secrets and proxies moto holds, asked of moto directly.
fn made_in_moto(moto: &rds_proxy::Moto) -> (String, String) {
    let secrets = rds_proxy::boto(
        moto,
        "print(len(sm.list_secrets(IncludePlannedDeletion=True)['SecretList']))",
    );
    (secrets, rds_proxy::proxies_in_moto(moto))
}

/// The AWS story for one fault (a fault_proxy.py option, None: a closed
/// port): give up cleanly, then complete on a re-run.
fn aws_gives_up_cleanly_then_a_rerun_completes(fault: Option<&str>, says: &str, hint: &str) {
    let Some(moto) = rds_proxy::start_moto() else {
        return;
    };
    let ids = rds_proxy::setup(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    rds_proxy::write_config(
        d,
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );
    let logs = tempfile::tempdir().expect("tempdir");

    // The fault on every call (a closed port: nothing listens).
    let (proxy, endpoint) = match fault {
        Some(option) => {
            let proxy = FaultProxy::start(&moto, logs.path(), &[option, "*=1000"]);
            let url = proxy.url.clone();
            (Some(proxy), url)
        }
        None => (None, FaultServer::start(Fault::Refuse, 0, None).url.clone()),
    };
    let (run, took) = aws_apply(d, &endpoint);
    let what = format!("AWS under {}", fault.unwrap_or("a closed port"));
    eprintln!("{what} ({took:?}):\n{}", run.stderr);
    assert_eq!(run.code, 1, "{what}: exit code\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
    assert_eq!(run.stdout, "", "{what}: no URL on stdout");
    let says = says.replace("{endpoint}", &endpoint);
    assert!(
        run.stderr.contains(&says),
        "{what}: stderr lacks {says:?}:\n{}",
        run.stderr
    );
    assert!(
        rds_proxy::hint(&run.stderr).contains(hint),
        "{what}: the hint lacks {hint:?}:\n{}",
        run.stderr
    );
    // Bounded attempts (the SDK's, set by POOLWRIGHT_HTTP_ATTEMPTS=3),
    // counted at the proxy: the first call, three times, and nothing after.
    if let Some(proxy) = &proxy {
        let calls: Vec<(String, String)> = proxy
            .calls()
            .into_iter()
            .map(|c| (c.action, c.outcome))
            .collect();
        let outcome = proxy.calls().first().map(|c| c.outcome.clone());
        assert_eq!(calls.len(), ATTEMPTS, "{what}: {calls:#?}");
        assert!(
            calls
                .iter()
                .all(|(a, o)| a == "DescribeSecret" && Some(o) == outcome.as_ref()),
            "{what}: {calls:#?}"
        );
        proxy.assert_clean();
    }
    // Bounded time: 3 attempts of at most 0.5 s and short backoffs.
    assert!(took < Duration::from_secs(15), "{what}: took {took:?}");
    if fault == Some("--hang") {
        assert!(took >= Duration::from_millis(1500), "{what}: {took:?}");
    }
    // Nothing half-written: no state file, nothing made in AWS.
    assert_eq!(listing(d), ["poolwright.yaml"], "{what}");
    assert_eq!(made_in_moto(&moto), ("0".into(), "0".into()), "{what}");
    drop(proxy);

    // The re-run: the fault strikes the first call once more (the SDK
    // retries it), then AWS answers; a closed port is replaced by moto.
    let logs = tempfile::tempdir().expect("tempdir");
    let (proxy, endpoint) = match fault {
        Some(option) => {
            let proxy = FaultProxy::start(&moto, logs.path(), &[option, "*=1"]);
            let url = proxy.url.clone();
            (Some(proxy), url)
        }
        None => (None, moto.url.clone()),
    };
    let (run, took) = aws_apply(d, &endpoint);
    eprintln!("the re-run ({took:?}):\n{}", run.stderr);
    assert_eq!(run.code, 0, "{what}: the re-run failed\n{}", run.stderr);
    assert!(
        run.stdout.starts_with("aws: postgresql://app:****@"),
        "{what}: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!("created secret {AWS_SECRET}"))
            && run
                .stderr
                .contains("created RDS Proxy automatch-books-proxy"),
        "{what}: {}",
        run.stderr
    );
    let endpoint_host = rds_proxy::state(d)["targets"]["aws"]["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !endpoint_host.is_empty() && run.stdout.contains(&endpoint_host),
        "{what}: the state's endpoint {endpoint_host:?} is the URL's host: {}",
        run.stdout
    );
    assert_eq!(made_in_moto(&moto), ("1".into(), "1".into()), "{what}");
    if let Some(proxy) = &proxy {
        let calls = proxy.calls();
        assert_eq!(
            (calls[0].action.as_str(), calls[1].action.as_str()),
            ("DescribeSecret", "DescribeSecret"),
            "{what}: the faulty call was retried: {calls:#?}"
        );
        assert_eq!(
            calls.iter().filter(|c| c.outcome != "forwarded").count(),
            1,
            "{what}: {calls:#?}"
        );
        proxy.assert_clean();
    }
}

#[test]
fn aws_connection_refused() {
    aws_gives_up_cleanly_then_a_rerun_completes(
        None,
        "error: AWS DescribeSecret failed: cannot reach AWS at {endpoint}: connection refused (3 attempts)",
        "check the network, the region, and AWS_ENDPOINT_URL; a re-run picks up where this one stopped",
    );
}

#[test]
fn aws_reset_mid_body() {
    aws_gives_up_cleanly_then_a_rerun_completes(
        Some("--reset"),
        "error: AWS DescribeSecret failed: AWS at {endpoint} broke off its answer: connection reset (3 attempts)",
        "a flaky network or proxy: run it again (it picks up where it stopped)",
    );
}

#[test]
fn aws_slow_past_the_timeout() {
    aws_gives_up_cleanly_then_a_rerun_completes(
        Some("--hang"),
        "error: AWS DescribeSecret failed: AWS at {endpoint} did not answer within 0.5 s (3 attempts)",
        "allow more time with POOLWRIGHT_HTTP_TIMEOUT=SECONDS (now 0.5 s)",
    );
}

#[test]
fn aws_5xx_storm() {
    aws_gives_up_cleanly_then_a_rerun_completes(
        Some("--unavailable"),
        "error: AWS DescribeSecret failed: ServiceUnavailable: Service is unavailable (HTTP 503, 3 attempts)",
        "an error on AWS's side: run it again later; it picks up where it stopped",
    );
}

/// Bad retry settings are refused before any call: aws-config itself
/// panics on a bad AWS_MAX_ATTEMPTS or AWS_RETRY_MODE.
#[test]
fn aws_a_bad_retry_setting_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = json!({
        "instance": "qbo-mirror",
        "subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "security_group": "sg-0123456789abcdef0",
    });
    rds_proxy::write_config(
        dir.path(),
        &ids,
        r#"{ username: app, password: "${QBO_DB_PASSWORD}" }"#,
    );
    let aws = FaultServer::start(Fault::Status(503), usize::MAX, None);
    for (var, value, says) in [
        (
            "AWS_MAX_ATTEMPTS",
            "0",
            "error: AWS_MAX_ATTEMPTS must be a whole number of at least 1, not `0`",
        ),
        (
            "AWS_RETRY_MODE",
            "eager",
            "error: AWS_RETRY_MODE must be `standard` or `adaptive`, not `eager`",
        ),
        (
            "POOLWRIGHT_HTTP_TIMEOUT",
            "0",
            "error: POOLWRIGHT_HTTP_TIMEOUT must be a number of seconds above 0",
        ),
    ] {
        let mut env = rds_proxy::aws_env(&aws.url);
        env.push((var, value.to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = poolwright(dir.path(), &["apply"], &env);
        assert_eq!(run.code, 1, "{var}={value}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.stderr.contains(says), "{var}={value}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("= hint: fix or unset {var}")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(aws.requests(), 0, "no call with a bad setting");
    assert_eq!(listing(dir.path()), ["poolwright.yaml"]);
}

/// The settings are documented where a user looks: the help of every
/// command that calls an API.
#[test]
fn help_names_the_network_settings() {
    for command in ["apply", "plan", "destroy"] {
        let help = poolwright(Path::new("."), &[command, "--help"], &[]);
        assert_eq!(help.code, 0, "{command} --help");
        for (var, _) in PATIENCE {
            assert!(
                help.stdout.contains(&format!("  {var}  ")),
                "{command} --help lacks {var}:\n{}",
                help.stdout
            );
        }
    }
}
