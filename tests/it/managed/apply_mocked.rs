//! Apply against wiremock.

#[allow(unused_imports)]
use super::*;

/// One entry of Supabase's pooler configuration, complete per the spec.
pub(crate) fn pooler_entry(kind: &str, identifier: &str, host: &str) -> Value {
    let uri = format!("postgresql://postgres.{REF}:[YOUR-PASSWORD]@{host}:6543/postgres");
    json!({
        "identifier": identifier,
        "database_type": kind,
        "is_using_scram_auth": true,
        "db_user": format!("postgres.{REF}"),
        "db_host": host,
        "db_port": 6543,
        "db_name": "postgres",
        "connection_string": uri,
        "connectionString": uri,
        "default_pool_size": null,
        "max_client_conn": null,
        "pool_mode": "transaction",
    })
}

pub(crate) const PRIMARY_HOST: &str = "aws-1-eu-central-1.pooler.supabase.com";
const REPLICA_HOST: &str = "aws-0-eu-west-2.pooler.supabase.com";

/// The pooler configuration with a read replica listed before the primary.
pub(crate) fn pooler_body() -> Value {
    json!([
        pooler_entry(
            "READ_REPLICA",
            &format!("{REF}-rr-eu-west-2-abcde"),
            REPLICA_HOST
        ),
        pooler_entry("PRIMARY", REF, PRIMARY_HOST),
    ])
}

pub(crate) fn pooler_path() -> String {
    format!("/v1/projects/{REF}/config/database/pooler")
}

pub(crate) fn supabase_env(token: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut env = pw_env();
    if let Some(t) = token {
        env.push(("SUPABASE_ACCESS_TOKEN", t));
    }
    env
}

pub(crate) fn authorization(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .map(|v| v.to_str().expect("ascii header").to_string())
        .unwrap_or_default()
}

/// No secret in anything a run printed.
#[track_caller]
pub(crate) fn no_secrets(run: &Run) {
    for secret in [
        SUPABASE_TOKEN,
        NEON_TOKEN,
        NEON_URI_PASSWORD,
        PASSWORD,
        ENCODED,
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret leaked ({secret}):\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn supabase_apply_keeps_the_primary_pooler_host_and_url_works_offline_after() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(pooler_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(pooler_body()))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let run = poolwright(
        d,
        &[
            "apply",
            "staging",
            "staging-session",
            "--api-url",
            &server.uri(),
        ],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply");
    no_secrets(&run);
    assert_eq!(
        run.stdout,
        format!(
            "staging: postgresql://postgres.{REF}:****@{PRIMARY_HOST}:6543/postgres?sslmode=require\n\
             staging-session: postgresql://postgres.{REF}:****@{PRIMARY_HOST}:5432/postgres?sslmode=require\n"
        )
    );
    assert!(run.stderr.contains(PRIMARY_HOST), "{}", run.stderr);
    assert_eq!(
        state(d),
        json!({"targets": {
            "staging": {"pooler_host": PRIMARY_HOST},
            "staging-session": {"pooler_host": PRIMARY_HOST},
        }})
    );
    let text = std::fs::read_to_string(d.join(STATE)).expect("state");
    assert!(!text.contains(PASSWORD) && !text.contains(ENCODED) && !text.contains(SUPABASE_TOKEN));
    assert!(!text.contains(REPLICA_HOST));

    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), 2, "one request per target");
    for r in &requests {
        assert_eq!(r.method.as_str(), "GET");
        assert_eq!(r.url.path(), pooler_path());
        assert_eq!(r.url.query(), None);
        assert_eq!(authorization(r), format!("Bearer {SUPABASE_TOKEN}"));
    }

    // Offline afterwards: no token, no API.
    assert_eq!(
        revealed(d, &["staging"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:6543/postgres?sslmode=require"
        )
    );
    assert_eq!(
        revealed(d, &["staging-session"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:5432/postgres?sslmode=require"
        )
    );
    assert_eq!(
        revealed(d, &["staging", "--direct"]),
        format!(
            "postgresql://postgres.{REF}:{ENCODED}@{PRIMARY_HOST}:5432/postgres?sslmode=require"
        )
    );

    // SUPABASE_API_URL points apply at the API as --api-url does.
    std::fs::remove_file(d.join(STATE)).expect("remove state");
    let mut env = supabase_env(Some(SUPABASE_TOKEN));
    let uri = server.uri();
    env.push(("SUPABASE_API_URL", &uri));
    let run = poolwright(d, &["apply", "staging"], &env);
    succeeds(&run, "apply with SUPABASE_API_URL");
    assert_eq!(state(d)["targets"]["staging"]["pooler_host"], PRIMARY_HOST);
}

#[test]
fn plan_refresh_reads_the_api_and_writes_nothing() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(pooler_path()))
            .respond_with(ResponseTemplate::new(200).set_body_json(pooler_body()))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let run = poolwright(
        dir.path(),
        &["plan", "staging", "--refresh", "--api-url", &server.uri()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "plan --refresh");
    no_secrets(&run);
    assert!(
        run.stdout.contains(&format!(
            "  note    pooler host {PRIMARY_HOST} (from the API)\n"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "  url     postgresql://postgres.{REF}:****@{PRIMARY_HOST}:6543/postgres?sslmode=require\n"
    )));
    assert_eq!(
        listing(dir.path()),
        ["poolwright.yaml"],
        "plan writes nothing"
    );
}

/// A Neon target; `endpoint` and `branch` optional, no region (so the hosts
/// come from the API).
pub(crate) fn neon_config(endpoint: Option<&str>, branch: Option<&str>) -> String {
    let mut yaml = format!(
        "version: 1\ntargets:\n  preview:\n    provider: neon\n    project_id: {NEON_PROJECT}\n"
    );
    if let Some(b) = branch {
        yaml.push_str(&format!("    branch: {b}\n"));
    }
    if let Some(e) = endpoint {
        yaml.push_str(&format!("    endpoint: {e}\n"));
    }
    yaml.push_str("    role: app\n    password: \"${DB_PASSWORD}\"\n    database: qbo_mirror\n");
    yaml
}

/// One compute endpoint, complete per Neon's `Endpoint` schema.
fn neon_endpoint(id: &str, branch: &str, kind: &str) -> Value {
    json!({
        "host": format!("{id}.us-east-2.aws.neon.tech"),
        "id": id,
        "project_id": NEON_PROJECT,
        "branch_id": branch,
        "region_id": "aws-us-east-2",
        "autoscaling_limit_min_cu": 0.25,
        "autoscaling_limit_max_cu": 1,
        "type": kind,
        "current_state": "idle",
        "pooler_enabled": false,
        "pooler_mode": "transaction",
        "disabled": false,
        "passwordless_access": true,
        "creation_source": "console",
        "created_at": "2025-01-10T12:00:00Z",
        "updated_at": "2025-01-10T12:00:00Z",
        "settings": {"pg_settings": {}},
        "proxy_host": "us-east-2.aws.neon.tech",
        "suspend_timeout_seconds": 0,
        "provisioner": "k8s-neonvm",
    })
}

pub(crate) const MAIN_BRANCH: &str = "br-main-123456";

fn neon_endpoints_body() -> Value {
    json!({"endpoints": [
        neon_endpoint("ep-read-only-111111", MAIN_BRANCH, "read_only"),
        neon_endpoint("ep-other-branch-222222", "br-dev-654321", "read_write"),
        neon_endpoint("ep-main-333333", MAIN_BRANCH, "read_write"),
    ]})
}

/// What the Neon API answers to connection_uri: the URI with the role's password.
fn neon_uri(endpoint: &str, pooled: bool) -> Value {
    let suffix = if pooled { "-pooler" } else { "" };
    json!({"uri": format!(
        "postgresql://app:{NEON_URI_PASSWORD}@{endpoint}{suffix}.us-east-2.aws.neon.tech/qbo_mirror?sslmode=require&channel_binding=require"
    )})
}

pub(crate) async fn mount_neon(server: &MockServer, endpoint: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/projects/{NEON_PROJECT}/endpoints")))
        .respond_with(ResponseTemplate::new(200).set_body_json(neon_endpoints_body()))
        .mount(server)
        .await;
    for pooled in [true, false] {
        Mock::given(method("GET"))
            .and(path(format!("/projects/{NEON_PROJECT}/connection_uri")))
            .and(query_param("pooled", pooled.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(neon_uri(endpoint, pooled)))
            .mount(server)
            .await;
    }
}

fn query(request: &Request) -> BTreeMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

pub(crate) fn neon_env() -> Vec<(&'static str, &'static str)> {
    let mut env = pw_env();
    env.push(("NEON_API_KEY", NEON_TOKEN));
    env
}

#[test]
fn neon_apply_finds_the_branch_read_write_endpoint_and_keeps_only_hosts() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-main-333333").await;
        server
    });
    let dir = project(&neon_config(None, Some(MAIN_BRANCH)));
    let d = dir.path();
    let run = poolwright(
        d,
        &["apply", "preview", "--api-url", &server.uri()],
        &neon_env(),
    );
    succeeds(&run, "apply");
    no_secrets(&run);
    let pooled = "ep-main-333333-pooler.us-east-2.aws.neon.tech";
    let direct = "ep-main-333333.us-east-2.aws.neon.tech";
    assert_eq!(
        run.stdout,
        format!(
            "preview: postgresql://app:****@{pooled}:5432/qbo_mirror?sslmode=require&channel_binding=require\n"
        )
    );
    assert_eq!(
        state(d),
        json!({"targets": {"preview": {"pooled_host": pooled, "direct_host": direct}}})
    );
    let text = std::fs::read_to_string(d.join(STATE)).expect("state");
    assert!(
        !text.contains(NEON_URI_PASSWORD) && !text.contains(NEON_TOKEN),
        "{text}"
    );

    let requests = rt.block_on(server.received_requests()).expect("recording");
    let seen: Vec<(String, BTreeMap<String, String>)> = requests
        .iter()
        .map(|r| (r.url.path().to_string(), query(r)))
        .collect();
    let uri_query = |pooled: &str| {
        BTreeMap::from(
            [
                ("database_name", "qbo_mirror"),
                ("role_name", "app"),
                ("endpoint_id", "ep-main-333333"),
                ("branch_id", MAIN_BRANCH),
                ("pooled", pooled),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    };
    let uri_path = format!("/projects/{NEON_PROJECT}/connection_uri");
    assert_eq!(
        seen,
        vec![
            (
                format!("/projects/{NEON_PROJECT}/endpoints"),
                BTreeMap::new()
            ),
            (uri_path.clone(), uri_query("true")),
            (uri_path, uri_query("false")),
        ]
    );
    for r in &requests {
        assert_eq!(r.method.as_str(), "GET");
        assert_eq!(authorization(r), format!("Bearer {NEON_TOKEN}"));
    }

    // Offline afterwards.
    assert_eq!(
        revealed(d, &["preview"]),
        format!(
            "postgresql://app:{ENCODED}@{pooled}:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
    assert_eq!(
        revealed(d, &["preview", "--direct"]),
        format!(
            "postgresql://app:{ENCODED}@{direct}:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
    assert_eq!(
        revealed(d, &["preview", "--driver", "asyncpg"]),
        format!("postgresql://app:{ENCODED}@{pooled}:5432/qbo_mirror?sslmode=require")
    );
    let plan = poolwright(d, &["plan"], &pw_env());
    succeeds(&plan, "plan");
    assert!(
        plan.stdout.contains(&format!(
            "  note    pooled host {pooled} (learned by the last apply (.poolwright-state.json))\n"
        )),
        "{}",
        plan.stdout
    );
}

#[test]
fn neon_apply_without_branch_takes_the_first_read_write_endpoint_and_with_endpoint_lists_none() {
    let rt = runtime();
    // No branch: the project's first read-write endpoint.
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-other-branch-222222").await;
        server
    });
    let dir = project(&neon_config(None, None));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &server.uri()],
        &neon_env(),
    );
    succeeds(&run, "apply");
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), 3);
    let q = query(&requests[1]);
    assert_eq!(
        q.get("endpoint_id").map(String::as_str),
        Some("ep-other-branch-222222")
    );
    assert_eq!(q.get("branch_id"), None, "no branch given, none sent");
    assert_eq!(
        state(dir.path())["targets"]["preview"]["pooled_host"],
        "ep-other-branch-222222-pooler.us-east-2.aws.neon.tech"
    );

    // `endpoint:` given: no endpoint list, straight to connection_uri, and
    // NEON_API_URL instead of --api-url.
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-given-444444").await;
        server
    });
    let dir = project(&neon_config(Some("ep-given-444444"), None));
    let mut env = neon_env();
    let uri = server.uri();
    env.push(("NEON_API_URL", &uri));
    let run = poolwright(dir.path(), &["apply", "preview"], &env);
    succeeds(&run, "apply");
    let requests = rt.block_on(server.received_requests()).expect("recording");
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    let uri_path = format!("/projects/{NEON_PROJECT}/connection_uri");
    assert_eq!(paths, [uri_path.as_str(), uri_path.as_str()]);
    let pooled: Vec<String> = requests
        .iter()
        .map(|r| query(r)["pooled"].clone())
        .collect();
    assert_eq!(pooled, ["true", "false"]);
    assert!(
        requests
            .iter()
            .all(|r| query(r)["endpoint_id"] == "ep-given-444444")
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"preview": {
            "pooled_host": "ep-given-444444-pooler.us-east-2.aws.neon.tech",
            "direct_host": "ep-given-444444.us-east-2.aws.neon.tech",
        }}})
    );
}

/// One error-path scenario: what the server answers, what poolwright says.
struct Failure {
    name: &'static str,
    /// Supabase (true) or Neon (false).
    supabase: bool,
    token: bool,
    /// The mocks, mounted in order (earlier `up_to_n_times` mocks first).
    mocks: Vec<Mock>,
    /// (exit code, text the stderr must contain).
    code: i32,
    says: Vec<String>,
    requests: usize,
}

pub(crate) fn respond(path_: &str, response: ResponseTemplate) -> Mock {
    Mock::given(method("GET"))
        .and(path(path_.to_string()))
        .respond_with(response)
}

fn failures() -> Vec<Failure> {
    let sb = "the Supabase Management API";
    let endpoints = format!("/projects/{NEON_PROJECT}/endpoints");
    let uri = format!("/projects/{NEON_PROJECT}/connection_uri");
    let ok_pooler = || ResponseTemplate::new(200).set_body_json(pooler_body());
    vec![
        Failure {
            name: "supabase 401",
            supabase: true,
            token: true,
            mocks: vec![respond(&pooler_path(), ResponseTemplate::new(401))],
            code: 1,
            says: vec![
                format!(
                    "error: {sb} refused the token in SUPABASE_ACCESS_TOKEN (401 Unauthorized)"
                ),
                "hint: set SUPABASE_ACCESS_TOKEN to a valid access token".into(),
            ],
            requests: 1,
        },
        Failure {
            name: "supabase 403",
            supabase: true,
            token: true,
            mocks: vec![respond(&pooler_path(), ResponseTemplate::new(403))],
            code: 1,
            says: vec![format!(
                "error: the token in SUPABASE_ACCESS_TOKEN may not read project `{REF}` (403 Forbidden)"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase 404",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(404).set_body_json(json!({"message": "Project not found"})),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} has no project `{REF}` (404 Not Found)"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase malformed body",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(200).set_body_raw("<html>Bad gateway</html>", "text/html"),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} answered {} with something that is not JSON",
                pooler_path()
            )],
            requests: 1,
        },
        Failure {
            name: "supabase JSON without a PRIMARY entry",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(200).set_body_json(json!([pooler_entry(
                    "READ_REPLICA",
                    "rr",
                    REPLICA_HOST
                )])),
            )],
            code: 1,
            says: vec![format!(
                "error: {sb} returned no PRIMARY pooler for project `{REF}`"
            )],
            requests: 1,
        },
        Failure {
            name: "supabase 503 on every attempt",
            supabase: true,
            token: true,
            mocks: vec![respond(
                &pooler_path(),
                ResponseTemplate::new(503).set_body_string("down"),
            )],
            code: 1,
            says: vec![format!("error: {sb} answered 503 for {}", pooler_path())],
            requests: 4,
        },
        Failure {
            name: "supabase without a token",
            supabase: true,
            token: false,
            mocks: vec![respond(&pooler_path(), ok_pooler())],
            code: 1,
            says: vec![format!(
                "error: SUPABASE_ACCESS_TOKEN is not set, so poolwright cannot ask {sb}"
            )],
            requests: 0,
        },
        Failure {
            name: "supabase 429 then 200",
            supabase: true,
            token: true,
            mocks: vec![
                respond(
                    &pooler_path(),
                    ResponseTemplate::new(429).insert_header("retry-after", "1"),
                )
                .up_to_n_times(1),
                respond(&pooler_path(), ok_pooler()),
            ],
            code: 0,
            says: vec![],
            requests: 2,
        },
        Failure {
            name: "supabase 502 then 200",
            supabase: true,
            token: true,
            mocks: vec![
                respond(&pooler_path(), ResponseTemplate::new(502)).up_to_n_times(1),
                respond(&pooler_path(), ok_pooler()),
            ],
            code: 0,
            says: vec![],
            requests: 2,
        },
        Failure {
            name: "neon 401",
            supabase: false,
            token: true,
            mocks: vec![respond(&endpoints, ResponseTemplate::new(401))],
            code: 1,
            says: vec![
                "error: the Neon API refused the token in NEON_API_KEY (401 Unauthorized)".into(),
                "hint: set NEON_API_KEY to a valid access token".into(),
            ],
            requests: 1,
        },
        Failure {
            name: "neon 404",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(404)
                    .set_body_json(json!({"code": "", "message": "project not found"})),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API has no project `{NEON_PROJECT}` (404 Not Found)"
            )],
            requests: 1,
        },
        Failure {
            name: "neon malformed connection_uri",
            supabase: false,
            token: true,
            mocks: vec![
                respond(
                    &endpoints,
                    ResponseTemplate::new(200).set_body_json(neon_endpoints_body()),
                ),
                respond(
                    &uri,
                    ResponseTemplate::new(200).set_body_json(json!({"uri": 42})),
                ),
            ],
            code: 1,
            says: vec!["error: the Neon API answered connection_uri without a usable `uri`".into()],
            requests: 2,
        },
        Failure {
            name: "neon malformed endpoint list",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(200).set_body_raw("{\"endpoints\": [", "application/json"),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API answered {endpoints} with something that is not JSON"
            )],
            requests: 1,
        },
        Failure {
            name: "neon branch without a read-write endpoint",
            supabase: false,
            token: true,
            mocks: vec![respond(
                &endpoints,
                ResponseTemplate::new(200).set_body_json(json!({"endpoints": [
                    neon_endpoint("ep-read-only-111111", "br-main-123456", "read_only")
                ]})),
            )],
            code: 1,
            says: vec![format!(
                "error: the Neon API lists no read-write endpoint for project `{NEON_PROJECT}`, branch `{MAIN_BRANCH}`"
            )],
            requests: 1,
        },
        Failure {
            name: "neon without a token",
            supabase: false,
            token: false,
            mocks: vec![],
            code: 1,
            says: vec![
                "error: NEON_API_KEY is not set, so poolwright cannot ask the Neon API".into(),
            ],
            requests: 0,
        },
        Failure {
            name: "neon 429 then 200",
            supabase: false,
            token: true,
            mocks: vec![
                respond(&endpoints, ResponseTemplate::new(429)).up_to_n_times(1),
                respond(
                    &endpoints,
                    ResponseTemplate::new(200).set_body_json(neon_endpoints_body()),
                ),
                respond(&uri, ResponseTemplate::new(429)).up_to_n_times(1),
            ],
            code: 0,
            says: vec![],
            // endpoints twice, connection_uri 429 + pooled + direct.
            requests: 5,
        },
    ]
}

#[test]
fn apply_error_paths_exit_1_with_a_clear_message_and_write_nothing() {
    // Each scenario has its own server; they run side by side (several wait
    // out retries and backoffs).
    std::thread::scope(|scope| {
        let running: Vec<_> = failures()
            .into_iter()
            .map(|failure| scope.spawn(move || check_failure(failure)))
            .collect();
        for scenario in running {
            if let Err(panic) = scenario.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

fn check_failure(failure: Failure) {
    let rt = runtime();
    let name = failure.name;
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        for mock in failure.mocks {
            mock.mount(&server).await;
        }
        if !failure.supabase {
            // Behind the scenario's own mocks: the happy connection_uri.
            mount_neon(&server, "ep-main-333333").await;
        }
        server
    });
    let (yaml, target, env) = if failure.supabase {
        let token = failure.token.then_some(SUPABASE_TOKEN);
        (SUPABASE_NO_HOST.to_string(), "staging", supabase_env(token))
    } else {
        let mut env = pw_env();
        if failure.token {
            env.push(("NEON_API_KEY", NEON_TOKEN));
        }
        (neon_config(None, Some(MAIN_BRANCH)), "preview", env)
    };
    let dir = project(&yaml);
    let started = Instant::now();
    let run = poolwright(
        dir.path(),
        &["apply", target, "--api-url", &server.uri()],
        &env,
    );
    assert_eq!(run.code, failure.code, "{name}: exit code\n{}", run.stderr);
    no_secrets(&run);
    for text in &failure.says {
        assert!(
            run.stderr.contains(text.as_str()),
            "{name}: stderr lacks {text:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(requests.len(), failure.requests, "{name}: requests");
    if failure.code == 0 {
        assert!(
            dir.path().join(STATE).is_file(),
            "{name}: the state is written"
        );
        if name.contains("429") && failure.supabase {
            // Retry-After: 1 was honoured.
            assert!(started.elapsed() >= Duration::from_millis(900), "{name}");
        }
    } else {
        assert_eq!(run.stdout, "", "{name}: stdout");
        assert_eq!(
            listing(dir.path()),
            ["poolwright.yaml"],
            "{name}: wrote something"
        );
    }
}

/// Targets apply one after another, but the state is written only when all
/// succeeded: a failure after a success changes nothing on disk.
#[test]
fn a_failed_apply_leaves_an_earlier_state_file_as_it_was() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        respond(
            &pooler_path(),
            ResponseTemplate::new(200).set_body_json(pooler_body()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
        respond(&pooler_path(), ResponseTemplate::new(401))
            .mount(&server)
            .await;
        server
    });
    let dir = project(SUPABASE_NO_HOST);
    let before = "{\n  \"targets\": {\n    \"staging\": {\n      \"pooler_host\": \"aws-0-old.pooler.supabase.com\"\n    }\n  }\n}\n";
    std::fs::write(dir.path().join(STATE), before).expect("state");
    let run = poolwright(
        dir.path(),
        &[
            "apply",
            "staging",
            "staging-session",
            "--api-url",
            &server.uri(),
        ],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("(401 Unauthorized)"), "{}", run.stderr);
    let requests = rt.block_on(server.received_requests()).expect("recording");
    assert_eq!(
        requests.len(),
        2,
        "the first target succeeded, the second failed"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(STATE)).expect("state"),
        before
    );
    assert_eq!(listing(dir.path()), [STATE, "poolwright.yaml"]);
}
