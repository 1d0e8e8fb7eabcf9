//! Calling the providers' HTTP APIs (Supabase Management API, Neon API v2).
//!
//! One small client for both: a bearer token from an environment variable,
//! a timeout per attempt, retries with exponential backoff on 429, 5xx and
//! broken connections (honouring `Retry-After`, capped), and errors that say
//! what to fix: which variable holds a refused token, which id was not
//! found, which API could not be reached and how often it was tried. The
//! token never appears in any message.
//!
//! Every call is a GET, so every attempt may be repeated safely: a request
//! that timed out, or whose answer broke off mid-body, is sent again.
//!
//! How patient it is comes from [`NetPolicy`] (src/net_policy.rs), which
//! AWS shares.

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::net_policy::{
    ATTEMPTS_VAR, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, MAX_CONNECT_TIMEOUT, MAX_WAIT, NetPolicy,
    seconds, slow_hint,
};

/// The most of an answer poolwright reads, error answers included. The
/// answers it asks for are a few KiB; a server sending gigabytes would
/// otherwise take that much memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most of an error answer shown in a message, in characters.
const SHOWN_BODY_CHARS: usize = 200;

/// One provider API: its base URL and where its token comes from.
/// `Debug` is written by hand, so `{:?}` (in a log line, a panic message,
/// a test failure) never shows the token.
#[derive(Clone)]
pub struct Api {
    /// For messages: "the Supabase Management API".
    pub name: &'static str,
    pub base_url: String,
    /// The environment variable that holds the token.
    pub token_var: &'static str,
    token: String,
    pub timeout: Duration,
    pub attempts: u32,
    /// The first backoff; doubles with every retry.
    pub backoff: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub max_wait: Duration,
}

/// What one attempt came to.
enum Attempt {
    /// A complete answer: status, `Retry-After` (in seconds), `Location`
    /// (of a redirect), body.
    Answer {
        status: u16,
        retry_after: Option<Duration>,
        location: Option<String>,
        body: String,
    },
    /// An answer longer than [`MAX_BODY_BYTES`]: not worth asking again.
    TooLarge,
    /// No complete answer: refused, timed out, or broken off.
    Broken(reqwest::Error),
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("token_var", &self.token_var)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl Api {
    /// The client for a provider's API: its token from `token_var`, its
    /// base URL from `api_url` (--api-url), else `url_var`, else `default`.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        api_url: Option<&str>,
        name: &'static str,
        default: &str,
        url_var: &str,
        token_var: &'static str,
    ) -> Result<Api, Error> {
        let token = env(token_var).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::message(format!(
                "{token_var} is not set, so poolwright cannot ask {name}"
            ))
            .with_hint(format!(
                "export {token_var}=<your token>, or give the values in poolwright.yaml"
            ))
        })?;
        let base = api_url
            .map(str::to_string)
            .or_else(|| env(url_var))
            .unwrap_or_else(|| default.to_string());
        let policy = NetPolicy::from_env(env)?;
        Ok(Api::new(name, &base, token_var, token, &policy))
    }

    pub fn new(
        name: &'static str,
        base_url: &str,
        token_var: &'static str,
        token: String,
        policy: &NetPolicy,
    ) -> Api {
        Api {
            name,
            base_url: base_url.trim_end_matches('/').to_string(),
            token_var,
            token,
            timeout: policy.timeout,
            attempts: policy.attempts.unwrap_or(DEFAULT_ATTEMPTS),
            backoff: policy.backoff.unwrap_or(DEFAULT_BACKOFF),
            max_wait: MAX_WAIT,
        }
    }

    fn client(&self) -> Result<reqwest::Client, Error> {
        // reqwest is built without a default crypto provider; ring is the one
        // the rest of poolwright's TLS uses. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(MAX_CONNECT_TIMEOUT))
            .user_agent(concat!("poolwright/", env!("CARGO_PKG_VERSION")))
            // The APIs answer where they are asked. Following a redirect
            // could carry the token to another host (reqwest drops it on
            // the cross-host hop, but a further same-host hop there gets it
            // back), so a 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::message(format!("cannot set up an HTTP client: {e}")))
    }

    /// `GET base/path?query` as JSON. `what` names the thing asked for, for
    /// a 404 message ("project `abc`").
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Value, Error> {
        let client = self.client()?;
        let url = format!("{}{path}", self.base_url);
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&client, &url, query).await;
            let wait = match &outcome {
                _ if attempt >= self.attempts => None,
                Attempt::Answer {
                    status,
                    retry_after,
                    ..
                } if *status == 429 || *status >= 500 => Some(retry_after.unwrap_or(delay)),
                // GETs only: repeating one is safe, even after part of an
                // answer arrived.
                Attempt::Broken(e) if transient(e) => Some(delay),
                _ => None,
            };
            let Some(wait) = wait else {
                return self.conclude(outcome, path, what, attempt);
            };
            tokio::time::sleep(wait.min(self.max_wait)).await;
            delay = (delay * 2).min(self.max_wait);
            attempt += 1;
        }
    }

    /// Sends the request once and reads the whole answer.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        url: &str,
        query: &[(&str, &str)],
    ) -> Attempt {
        let sent = client
            .get(url)
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Broken(e),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let location = header("location");
        // The body is part of the attempt: an answer cut off mid-body (a
        // reset, a proxy timing out) is as broken as no answer at all.
        match read_capped(response).await {
            Ok(Some(body)) => Attempt::Answer {
                status,
                retry_after,
                location,
                body,
            },
            Ok(None) => Attempt::TooLarge,
            Err(e) => Attempt::Broken(e),
        }
    }

    /// `body` fit to be shown: the token masked, control characters
    /// escaped, cut to a few lines' worth.
    fn shown(&self, body: &str) -> String {
        shown_body(body, &self.token)
    }

    /// The result of the last attempt (the `attempts`th).
    fn conclude(
        &self,
        outcome: Attempt,
        path: &str,
        what: &str,
        attempts: u32,
    ) -> Result<Value, Error> {
        let tries = if attempts == 1 {
            "1 attempt".to_string()
        } else {
            format!("{attempts} attempts")
        };
        let (status, location, body) = match outcome {
            Attempt::Answer {
                status,
                location,
                body,
                ..
            } => (status, location, body),
            Attempt::Broken(e) => return Err(self.broken(&e, path, &tries)),
            Attempt::TooLarge => {
                return Err(Error::message(format!(
                    "{} answered GET {path} with more than {} MiB; poolwright reads at most that much",
                    self.name,
                    MAX_BODY_BYTES / (1024 * 1024)
                ))
                .with_hint("check that the API URL points at the provider's API"));
            }
        };
        match status {
            200..=299 => serde_json::from_str(&body).map_err(|e| {
                Error::message(format!(
                    "{} answered {path} with something that is not JSON: {e}",
                    self.name
                ))
            }),
            300..=399 => Err(Error::message(format!(
                "{} redirected GET {path} ({status}) to `{}`; poolwright does not follow \
                 redirects from an API, and the token was not sent there",
                self.name,
                self.shown(location.as_deref().unwrap_or("nowhere"))
            ))
            .with_hint("check the API URL (--api-url or the provider's _API_URL variable)")),
            401 => Err(Error::message(format!(
                "{} refused the token in {} (401 Unauthorized)",
                self.name, self.token_var
            ))
            .with_hint(format!("set {} to a valid access token", self.token_var))),
            403 => Err(Error::message(format!(
                "the token in {} may not read {what} (403 Forbidden)",
                self.token_var
            ))
            .with_hint("use a token of an account or organisation that owns it")),
            404 => Err(
                Error::message(format!("{} has no {what} (404 Not Found)", self.name))
                    .with_hint("check the id in poolwright.yaml"),
            ),
            429 => Err(Error::message(format!(
                "{} keeps rate-limiting us (429, {tries}); try again in a minute",
                self.name
            ))),
            500.. => Err(Error::message(format!(
                "{} answered {status} for {path} ({tries}): {}",
                self.name,
                self.shown(&body)
            ))
            .with_hint(format!(
                "an error on the provider's side: run it again later (nothing was written), \
                 or try more often with {ATTEMPTS_VAR}"
            ))),
            _ => Err(Error::message(format!(
                "{} answered {status} for {path}: {}",
                self.name,
                self.shown(&body)
            ))),
        }
    }

    /// The error for an attempt that got no complete answer.
    fn broken(&self, e: &reqwest::Error, path: &str, tries: &str) -> Error {
        let name = self.name;
        if e.is_timeout() {
            return Error::message(format!(
                "{name} did not answer GET {path} within {} ({tries})",
                seconds(self.timeout)
            ))
            .with_hint(slow_hint(self.timeout));
        }
        if e.is_connect() {
            return Error::message(format!(
                "cannot reach {name} at {}: {} ({tries})",
                self.base_url,
                cause(e)
            ))
            .with_hint("check the network, or point poolwright at another API with --api-url");
        }
        if e.is_body() || e.is_request() || e.is_decode() {
            return Error::message(format!(
                "{name} broke off its answer to GET {path}: {} ({tries})",
                cause(e)
            ))
            .with_hint(format!(
                "a flaky network or proxy: run it again (nothing was written), \
                 or try more often with {ATTEMPTS_VAR}"
            ));
        }
        Error::message(format!("{name} at {}: {}", self.base_url, without_url(e)))
            .with_hint("check the network, or point poolwright at another API with --api-url")
    }
}

/// Worth another attempt: the request may not have arrived, or its answer
/// did not (a bad URL, a redirect loop are not).
fn transient(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode()
}

/// What went wrong underneath, in a few words: the operating system's
/// reason when there is one ("connection refused"), else the innermost
/// message.
fn cause(e: &reqwest::Error) -> String {
    // reqwest's own text carries the URL; the causes underneath do not.
    let mut innermost = without_url(e);
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(reason) = os_reason(s) {
            return reason;
        }
        if s.source().is_none() {
            innermost = s.to_string();
        }
        source = s.source();
    }
    innermost
}

/// The operating system's reason for a network error, in words a person
/// knows ("connection refused"), when `e` is an I/O error.
pub fn os_reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let io = e.downcast_ref::<std::io::Error>()?;
    Some(match io.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        std::io::ErrorKind::UnexpectedEof => "the connection closed early".into(),
        _ => io.to_string(),
    })
}

/// reqwest's error text without the URL (which may carry query values).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the API");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn short(body: &str) -> String {
    let body = body.trim();
    if body.chars().count() > SHOWN_BODY_CHARS {
        format!(
            "{}...",
            body.chars().take(SHOWN_BODY_CHARS).collect::<String>()
        )
    } else {
        body.to_string()
    }
}

/// Text from an API answer (a body, a `Location`), fit for a message: an
/// echo of the token masked, control characters (ESC, line breaks)
/// escaped, and cut short.
pub fn shown_body(body: &str, token: &str) -> String {
    let masked = if token.is_empty() {
        body.to_string()
    } else {
        body.replace(token, crate::url::MASK)
    };
    crate::diagnostic::printable(&short(&masked))
}

/// Reads the body in chunks, stopping past [`MAX_BODY_BYTES`] (None then).
/// Not valid UTF-8 is read lossily: it is either JSON, which must be UTF-8,
/// or an error text to show.
async fn read_capped(mut response: reqwest::Response) -> Result<Option<String>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "sbp_0123456789abcdef0123456789abcdef01234567";

    fn api(server: &MockServer) -> Api {
        at(&server.uri())
    }

    fn at(url: &str) -> Api {
        let policy = NetPolicy {
            timeout: Duration::from_millis(500),
            attempts: None,
            backoff: Some(Duration::from_millis(10)),
        };
        Api::new("the test API", url, "TEST_TOKEN", TOKEN.into(), &policy)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn retries_429_then_succeeds() {
        run(async {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/x"))
                .respond_with(ResponseTemplate::new(429))
                .up_to_n_times(2)
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/x"))
                .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
                .respond_with(
                    ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})),
                )
                .mount(&server)
                .await;
            let value = api(&server).get("/x", &[], "x").await.unwrap();
            assert_eq!(value["ok"], true);
            assert_eq!(server.received_requests().await.unwrap().len(), 3);
        });
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        run(async {
            let server = MockServer::start().await;
            Mock::given(path("/x"))
                .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3600"))
                .up_to_n_times(1)
                .mount(&server)
                .await;
            Mock::given(path("/x"))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
                .mount(&server)
                .await;
            let mut a = api(&server);
            a.max_wait = Duration::from_millis(300);
            let started = std::time::Instant::now();
            a.get("/x", &[], "x").await.unwrap();
            let took = started.elapsed();
            // An hour asked for, the cap waited: more than the 10 ms backoff.
            assert!(
                took >= Duration::from_millis(300) && took < Duration::from_secs(3),
                "{took:?}"
            );
            assert_eq!(server.received_requests().await.unwrap().len(), 2);
        });
    }

    #[test]
    fn debug_formatting_redacts_the_token() {
        let api = Api::new(
            "the Test API",
            "http://x",
            "TEST_TOKEN",
            "tok-d3bug-s3cret".into(),
            &NetPolicy::default(),
        );
        let shown = format!("{api:?} {api:#?}");
        assert!(!shown.contains("tok-d3bug-s3cret"), "{shown}");
        assert!(shown.contains("token: \"<redacted>\""), "{shown}");
        assert!(shown.contains("TEST_TOKEN"), "{shown}");
    }

    #[test]
    fn errors_name_the_token_variable_or_the_thing_and_never_the_token() {
        run(async {
            let server = MockServer::start().await;
            Mock::given(path("/401"))
                .respond_with(ResponseTemplate::new(401))
                .mount(&server)
                .await;
            Mock::given(path("/404"))
                .respond_with(ResponseTemplate::new(404))
                .mount(&server)
                .await;
            Mock::given(path("/bad"))
                .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
                .mount(&server)
                .await;
            Mock::given(path("/500"))
                .respond_with(ResponseTemplate::new(503))
                .mount(&server)
                .await;
            Mock::given(path("/slow"))
                .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
                .mount(&server)
                .await;
            let a = api(&server);
            let e401 = a
                .get("/401", &[], "project `p`")
                .await
                .unwrap_err()
                .to_string();
            assert!(e401.contains("refused the token in TEST_TOKEN"), "{e401}");
            let e404 = a
                .get("/404", &[], "project `p`")
                .await
                .unwrap_err()
                .to_string();
            assert!(e404.contains("has no project `p`"), "{e404}");
            let bad = a.get("/bad", &[], "x").await.unwrap_err().to_string();
            assert!(bad.contains("not JSON"), "{bad}");
            let e500 = a.get("/500", &[], "x").await.unwrap_err().to_string();
            assert!(e500.contains("answered 503"), "{e500}");
            let slow = a.get("/slow", &[], "x").await.unwrap_err().to_string();
            assert!(
                slow.contains("the test API did not answer GET /slow within 0.5 s (4 attempts)"),
                "{slow}"
            );
            assert!(
                slow.contains(crate::net_policy::TIMEOUT_VAR),
                "the hint names the knob: {slow}"
            );
            for e in [e401, e404, bad, e500, slow] {
                assert!(!e.contains(TOKEN), "the token leaked: {e}");
            }
        });
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds(Duration::from_secs(20)), "20 s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25 s");
    }

    /// A server that cuts its first `broken` answers off after 10 of 1000
    /// promised bytes, then answers `{"ok": true}`; counts the requests.
    async fn cutting_server(
        broken: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                let answer: &[u8] = if n < broken {
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"ok\": tru"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{\"ok\": true}"
                };
                let _ = socket.write_all(answer).await;
                // Dropping the socket closes it: the cut answer ends early.
            }
        });
        (url, seen)
    }

    #[test]
    fn an_answer_cut_off_mid_body_is_asked_for_again() {
        run(async {
            let (url, seen) = cutting_server(2).await;
            let value = at(&url).get("/x", &[], "x").await.unwrap();
            assert_eq!(value["ok"], true);
            assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);

            let (url, seen) = cutting_server(usize::MAX).await;
            let e = at(&url).get("/x", &[], "x").await.unwrap_err().to_string();
            assert!(
                e.contains("the test API broke off its answer to GET /x")
                    && e.contains("(4 attempts)"),
                "{e}"
            );
            assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 4);
        });
    }

    #[test]
    fn a_closed_port_is_refused_after_every_attempt_and_named() {
        run(async {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let url = format!("http://127.0.0.1:{port}");
            let e = at(&url).get("/x", &[], "x").await.unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "cannot reach the test API at {url}: connection refused (4 attempts)"
                )),
                "{e}"
            );
            assert!(!e.contains(TOKEN));
        });
    }
}
