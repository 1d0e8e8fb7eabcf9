//! Calling the providers' HTTP APIs (Supabase Management API, Neon API v2).
//!
//! One small client for both: a bearer token from an environment variable,
//! a timeout per request, retries with exponential backoff on 429 and 5xx
//! (honouring `Retry-After`), and errors that say what to fix: which
//! variable holds a refused token, which id was not found. The token never
//! appears in any message.

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;

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
            .finish()
    }
}

impl Api {
    pub fn new(name: &'static str, base_url: &str, token_var: &'static str, token: String) -> Api {
        Api {
            name,
            base_url: base_url.trim_end_matches('/').to_string(),
            token_var,
            token,
            timeout: Duration::from_secs(20),
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }

    fn client(&self) -> Result<reqwest::Client, Error> {
        // reqwest is built without a default crypto provider; ring is the one
        // the rest of poolwright's TLS uses. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("poolwright/", env!("CARGO_PKG_VERSION")))
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
        for attempt in 1..=self.attempts {
            let sent = client
                .get(&url)
                .query(query)
                .bearer_auth(&self.token)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempt < self.attempts && (e.is_timeout() || e.is_connect()) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
                Err(e) => {
                    let why = if e.is_timeout() {
                        format!("no answer within {} s", self.timeout.as_secs())
                    } else {
                        without_url(&e)
                    };
                    return Err(Error::message(format!(
                        "{} at {}: {why}",
                        self.name, self.base_url
                    ))
                    .with_hint(
                        "check the network, or point poolwright at another API with --api-url",
                    ));
                }
            };
            let status = response.status().as_u16();
            if (status == 429 || status >= 500) && attempt < self.attempts {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(delay, |s| Duration::from_secs(s.min(30)));
                tokio::time::sleep(wait).await;
                delay *= 2;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            return match status {
                200..=299 => serde_json::from_str(&body).map_err(|e| {
                    Error::message(format!(
                        "{} answered {path} with something that is not JSON: {e}",
                        self.name
                    ))
                }),
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
                    "{} keeps rate-limiting us (429); try again in a minute",
                    self.name
                ))),
                _ => Err(Error::message(format!(
                    "{} answered {status} for {path}: {}",
                    self.name,
                    short(&body)
                ))),
            };
        }
        unreachable!("the loop returns on its last attempt")
    }
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
    if body.chars().count() > 200 {
        format!("{}...", body.chars().take(200).collect::<String>())
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "sbp_0123456789abcdef0123456789abcdef01234567";

    fn api(server: &MockServer) -> Api {
        let mut api = Api::new("the test API", &server.uri(), "TEST_TOKEN", TOKEN.into());
        api.backoff = Duration::from_millis(10);
        api.timeout = Duration::from_millis(500);
        api
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
    fn debug_formatting_redacts_the_token() {
        let api = Api::new(
            "the Test API",
            "http://x",
            "TEST_TOKEN",
            "tok-d3bug-s3cret".into(),
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
            assert!(slow.contains("no answer within"), "{slow}");
            for e in [e401, e404, bad, e500, slow] {
                assert!(!e.contains(TOKEN), "the token leaked: {e}");
            }
        });
    }
}
