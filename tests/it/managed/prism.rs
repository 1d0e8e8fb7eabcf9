//! Apply against Prism and the providers' published specs.

#[allow(unused_imports)]
use super::*;

/// `<repo>/../shared/specs/<file>`, or None (with a notice) where the
/// directory does not exist, as in a fresh clone.
fn spec(file: &str) -> Option<PathBuf> {
    let dir = root().join("../shared/specs");
    if !dir.is_dir() {
        eprintln!(
            "NOTICE: {} does not exist (a fresh clone has no ../shared): the Prism tests against the published API specs are skipped",
            dir.display()
        );
        return None;
    }
    let path = dir.join(file);
    assert!(path.is_file(), "{} is missing from {}", file, dir.display());
    Some(path)
}

fn prism_bin() -> Option<PathBuf> {
    let bin = root().join("target/test-node/node_modules/.bin/prism");
    if bin.exists() {
        return Some(bin);
    }
    if require_servers() {
        panic!(
            "POOLWRIGHT_REQUIRE_SERVERS=1 but Prism is not installed at {}; run scripts/install-test-deps",
            bin.display()
        );
    }
    eprintln!(
        "SKIP: Prism is not installed ({}); run scripts/install-test-deps",
        bin.display()
    );
    None
}

/// A Prism server on a free port, killed on drop. Its log (stdout and
/// stderr) goes to a file for the assertions.
struct Prism {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    /// `prism mock --errors` on `spec`, or `prism proxy --errors` to `upstream`.
    fn start(bin: &Path, spec: &Path, upstream: Option<&str>) -> Prism {
        let mut failures = Vec::new();
        // Another process may take the port between free_port() and Prism's
        // bind; Prism then exits: try another port.
        for _ in 0..3 {
            match Prism::try_start(bin, spec, upstream) {
                Ok(prism) => return prism,
                Err(e) => failures.push(e),
            }
        }
        panic!("Prism did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(bin: &Path, spec: &Path, upstream: Option<&str>) -> Result<Prism, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("prism.log");
        let port = free_port();
        let out = File::create(&log).expect("prism log");
        let mut cmd = Command::new(bin);
        cmd.arg(if upstream.is_some() { "proxy" } else { "mock" })
            .args(["--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .args(upstream)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut prism = Prism {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answers = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok();
            if answers && prism.log_text().contains("Prism is listening") {
                return Ok(prism);
            }
            if let Ok(Some(status)) = prism.child.try_wait() {
                return Err(format!("prism exited ({status}):\n{}", prism.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "prism did not answer within 60 s:\n{}",
                    prism.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests Prism validated against the spec and let through.
    fn passed(&self) -> usize {
        self.log_text()
            .matches("The request passed the validation rules")
            .count()
    }

    /// Prism's complaints: validation errors and violations (it marks them ✖).
    fn complaints(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains('✖') || l.contains("Violation"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url` (with a bearer token) as a test's own client: (status, body).
fn http_get(url: &str, token: Option<&str>) -> (u16, String) {
    // reqwest is built without a default TLS provider; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime().block_on(async {
        let mut request = reqwest::Client::new().get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    })
}

/// Prism in mock mode answers from the Supabase spec (inventing values from
/// the schema); poolwright's request must pass its validation, and the host
/// poolwright keeps is the PRIMARY entry's `db_host` of that answer.
#[test]
fn prism_supabase_mock_accepts_the_request_and_the_primary_host_is_kept() {
    let Some(spec) = spec("supabase-management-api.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let prism = Prism::start(&bin, &spec, None);
    // Prism serves the paths as the spec writes them (it has no servers entry).
    let (status, body) = http_get(
        &format!("{}{}", prism.url(), pooler_path()),
        Some(SUPABASE_TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("Prism answers JSON");
    let primary = answer
        .as_array()
        .expect("an array")
        .iter()
        .find(|e| e["database_type"] == "PRIMARY")
        .and_then(|e| e["db_host"].as_str())
        .expect("a PRIMARY entry with a db_host")
        .to_string();
    assert_eq!(prism.passed(), 1);

    let dir = project(SUPABASE_NO_HOST);
    let d = dir.path();
    let run = poolwright(
        d,
        &["apply", "staging", "--api-url", &prism.url()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply against Prism");
    no_secrets(&run);
    assert_eq!(
        prism.passed(),
        2,
        "Prism validated poolwright's request:\n{}",
        prism.log_text()
    );
    assert_eq!(prism.complaints(), Vec::<String>::new());
    assert_eq!(
        state(d),
        json!({"targets": {"staging": {"pooler_host": primary}}})
    );
    assert_eq!(
        revealed(d, &["staging"]),
        format!("postgresql://postgres.{REF}:{ENCODED}@{primary}:6543/postgres?sslmode=require")
    );
    // staging-session was not applied: its URL stays unknown.
    assert_eq!(
        poolwright(d, &["url", "staging-session"], &pw_env()).code,
        1
    );

    // Prism does validate: a request the spec forbids gets 422.
    let (status, _) = http_get(
        &format!(
            "{}/v1/projects/NOT-A-REF/config/database/pooler",
            prism.url()
        ),
        Some(SUPABASE_TOKEN),
    );
    assert_eq!(status, 422);
}

/// Prism in mock mode on the Neon spec: the endpoint list and connection_uri
/// requests must pass validation. The spec has no example for
/// connection_uri, so Prism answers `{"uri": "string"}` and poolwright must
/// say the answer has no usable URI (and write nothing); that answer only
/// comes after validation passed.
#[test]
fn prism_neon_mock_accepts_the_requests() {
    let Some(spec) = spec("neon-api-v2.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let prism = Prism::start(&bin, &spec, None);
    // Prism serves the paths without the server URL's base path (/api/v2),
    // so --api-url is Prism's root.
    let (status, _) = http_get(
        &format!("{}/api/v2/projects/{NEON_PROJECT}/endpoints", prism.url()),
        Some(NEON_TOKEN),
    );
    assert_eq!(status, 404);
    let (status, _) = http_get(
        &format!("{}/projects/{NEON_PROJECT}/endpoints", prism.url()),
        Some(NEON_TOKEN),
    );
    assert_eq!(status, 200);
    let before = prism.complaints().len();
    assert_eq!(before, 1, "only the /api/v2 request failed");
    let passed = prism.passed();

    let dir = project(&neon_config(None, Some("br-aged-salad-637688")));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &prism.url()],
        &neon_env(),
    );
    no_secrets(&run);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "target preview (Neon pooler)\nerror: the Neon API answered connection_uri without a usable `uri`\n"
    );
    assert_eq!(listing(dir.path()), ["poolwright.yaml"]);
    // The endpoint list and the first connection_uri passed validation.
    assert_eq!(prism.passed(), passed + 2, "{}", prism.log_text());
    assert_eq!(prism.complaints().len(), before, "{}", prism.log_text());

    // The spec's security scheme: without a token Prism answers 401.
    let (status, _) = http_get(
        &format!("{}/projects/{NEON_PROJECT}/endpoints", prism.url()),
        None,
    );
    assert_eq!(status, 401);
}

/// Prism in proxy mode validates each request poolwright sends AND each
/// answer against the published spec, and forwards valid requests to
/// wiremock, which answers like the real API: the whole apply, checked
/// against the spec both ways.
#[test]
fn prism_proxy_validates_supabase_requests_and_answers() {
    let Some(spec) = spec("supabase-management-api.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let rt = runtime();
    let upstream = rt.block_on(async {
        let server = MockServer::start().await;
        respond(
            &pooler_path(),
            ResponseTemplate::new(200).set_body_json(pooler_body()),
        )
        .mount(&server)
        .await;
        server
    });
    let prism = Prism::start(&bin, &spec, Some(&upstream.uri()));
    let dir = project(SUPABASE_NO_HOST);
    let run = poolwright(
        dir.path(),
        &["apply", "staging", "--api-url", &prism.url()],
        &supabase_env(Some(SUPABASE_TOKEN)),
    );
    succeeds(&run, "apply through Prism");
    no_secrets(&run);
    assert_eq!(
        prism.complaints(),
        Vec::<String>::new(),
        "{}",
        prism.log_text()
    );
    let requests = rt
        .block_on(upstream.received_requests())
        .expect("recording");
    assert_eq!(requests.len(), 1, "Prism forwarded the (valid) request");
    assert_eq!(
        authorization(&requests[0]),
        format!("Bearer {SUPABASE_TOKEN}")
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"staging": {"pooler_host": PRIMARY_HOST}}})
    );
}

#[test]
fn prism_proxy_validates_neon_requests_and_answers() {
    let Some(spec) = spec("neon-api-v2.json") else {
        return;
    };
    let Some(bin) = prism_bin() else { return };
    let rt = runtime();
    let upstream = rt.block_on(async {
        let server = MockServer::start().await;
        mount_neon(&server, "ep-main-333333").await;
        server
    });
    let prism = Prism::start(&bin, &spec, Some(&upstream.uri()));
    let dir = project(&neon_config(None, Some(MAIN_BRANCH)));
    let run = poolwright(
        dir.path(),
        &["apply", "preview", "--api-url", &prism.url()],
        &neon_env(),
    );
    succeeds(&run, "apply through Prism");
    no_secrets(&run);
    assert_eq!(
        prism.complaints(),
        Vec::<String>::new(),
        "{}",
        prism.log_text()
    );
    let requests = rt
        .block_on(upstream.received_requests())
        .expect("recording");
    assert_eq!(requests.len(), 3, "Prism forwarded the (valid) requests");
    assert!(
        requests
            .iter()
            .all(|r| authorization(r) == format!("Bearer {NEON_TOKEN}"))
    );
    assert_eq!(
        state(dir.path()),
        json!({"targets": {"preview": {
            "pooled_host": "ep-main-333333-pooler.us-east-2.aws.neon.tech",
            "direct_host": "ep-main-333333.us-east-2.aws.neon.tech",
        }}})
    );
    assert_eq!(
        revealed(dir.path(), &["preview"]),
        format!(
            "postgresql://app:{ENCODED}@ep-main-333333-pooler.us-east-2.aws.neon.tech:5432/qbo_mirror?sslmode=require&channel_binding=require"
        )
    );
}
