//! Logging in to a pooler or server the way an app would, with TLS when the
//! URL asks for it, and reading back how the login went.
//!
//! The URL's parts come from poolwright's own [`PgUrl`], never from parsing
//! a string, so what is tested is exactly what apps are given. The TCP
//! connection is opened here (so a refusal names the host and port tried)
//! and handed to tokio-postgres over a [`Tap`], which is how the TLS version,
//! cipher and auth method become known (see [`super::wire`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{self, SslMode};
use super::wire::{self, Guard, Recording, Tap, TlsInfo};
pub use super::wire_guard::AuthFloor;
use crate::diagnostic::Diagnostic;
use crate::url::PgUrl;

/// Where and as whom to log in. The password is never printed: `Debug`
/// and every message use [`Endpoint::masked`].
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    pub database: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    /// `host:port`, for messages (IPv6 in brackets).
    pub host_port: String,
    /// The weakest authentication this login may answer.
    pub auth_floor: AuthFloor,
    /// The URL this endpoint was made from (password included).
    pub url: PgUrl,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Endpoint {
    /// The endpoint of `url`; its password must be known (the diagnostic
    /// names the variable to set otherwise).
    pub fn from_url(url: &PgUrl) -> Result<Endpoint, Box<Diagnostic>> {
        let password = match &url.password {
            Some(secret) => Some(secret.expose()?.to_string()),
            None => None,
        };
        let param = |key: &str| {
            url.params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        Ok(Endpoint {
            host: url.host.clone(),
            port: url.port,
            user: url.user.clone().unwrap_or_default(),
            password,
            database: url.database.clone(),
            // libpq's default: TLS when the server offers it.
            sslmode: param("sslmode")
                .and_then(|m| SslMode::parse(&m))
                .unwrap_or(SslMode::Prefer),
            sslrootcert: param("sslrootcert"),
            host_port: url.place(),
            auth_floor: AuthFloor::default(),
            url: url.clone(),
        })
    }

    /// The endpoint answering no authentication weaker than `floor`.
    pub fn with_auth_floor(mut self, floor: AuthFloor) -> Endpoint {
        self.auth_floor = floor;
        self
    }

    /// The URL with the password masked.
    pub fn masked(&self) -> String {
        self.url.masked()
    }
}

/// Where a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No TCP connection: refused, unreachable, not resolved.
    Tcp,
    /// No answer in time (TCP or login).
    Timeout,
    /// The TLS setup on our side (certificate store, sslrootcert).
    Setup,
    /// Connected, but the server refused the login or TLS.
    Login,
}

/// A failed login: the text the server (or the OS) gave, and where.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub stage: Stage,
    /// `host:port` tried.
    pub place: String,
    /// The server's own message (or the OS's), without our framing.
    pub text: String,
    /// The SQLSTATE the server sent with a refused login (PgBouncer 1.24
    /// passes PostgreSQL's own on, 1.18 sends 08P01: see
    /// [`super::diagnose`]).
    pub code: Option<String>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.place)
    }
}

/// A logged-in connection and what the login showed.
pub struct Session {
    pub client: tokio_postgres::Client,
    task: JoinHandle<()>,
    /// The TLS parameters, None on a plain connection.
    pub tls: Option<TlsInfo>,
    /// The authentication method the server asked for ("SCRAM-SHA-256").
    pub auth: Option<String>,
    /// From the TCP connect to the end of the login.
    pub login_time: Duration,
    /// Each query's bound: a peer that logs us in and then goes silent
    /// must not hold a command forever.
    timeout: Duration,
    /// `host:port`, for messages.
    place: String,
    /// Why the connection ended, when it ended with an error.
    broken: Arc<Mutex<Option<String>>>,
    /// The first query that timed out, if one did.
    timed_out: Mutex<Option<String>>,
}

impl Session {
    /// Ends the session politely (Terminate), so the pooler does not log
    /// an unexpected disconnect.
    /// A peer that never closes its side cannot hold us: after the
    /// session's timeout the connection is dropped.
    pub async fn close(self) {
        drop(self.client);
        let mut task = self.task;
        if tokio::time::timeout(self.timeout, &mut task).await.is_err() {
            task.abort();
        }
    }

    /// A query's error, with the connection's own when it broke.
    fn query_error(&self, e: &tokio_postgres::Error) -> String {
        let broken = self.broken.lock().ok().and_then(|b| b.clone());
        match broken {
            Some(why) if e.is_closed() => why,
            _ => error_text(e),
        }
    }

    /// Runs `sql` with the simple query protocol: no named statement, so it
    /// works through any pooler mode and PgBouncer's admin console.
    pub async fn table(&self, sql: &str) -> Result<Table, String> {
        self.alive()?;
        let messages = tokio::time::timeout(self.timeout, self.client.simple_query(sql))
            .await
            .map_err(|_| self.silent(sql))?
            .map_err(|e| self.query_error(&e))?;
        let mut table = Table::default();
        for m in messages {
            if let SimpleQueryMessage::Row(row) = m {
                if table.columns.is_empty() {
                    table.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                // Values from the peer reach the terminal: printable.
                table.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(crate::diagnostic::printable))
                        .collect(),
                );
            }
        }
        Ok(table)
    }

    /// Runs statements that return no rows, bounded like every query.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        self.alive()?;
        tokio::time::timeout(self.timeout, self.client.batch_execute(sql))
            .await
            .map_err(|_| self.silent(sql))?
            .map_err(|e| self.query_error(&e))
    }

    /// A peer that let one query time out gets no more of our time: later
    /// queries on the session fail at once with the same words.
    fn silent(&self, sql: &str) -> String {
        let what = sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let text = format!(
            "timeout: {} did not answer `{what} ...` within {} s",
            self.place,
            self.timeout.as_secs_f64()
        );
        if let Ok(mut s) = self.timed_out.lock() {
            s.get_or_insert_with(|| text.clone());
        }
        text
    }

    fn alive(&self) -> Result<(), String> {
        match self.timed_out.lock().ok().and_then(|s| s.clone()) {
            Some(text) => Err(text),
            None => Ok(()),
        }
    }

    /// The first column of the first row of `sql`.
    pub async fn value(&self, sql: &str) -> Result<String, String> {
        let table = self.table(sql).await?;
        table
            .rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .ok_or_else(|| format!("`{sql}` returned no value"))
    }
}

/// The rows of a simple query, all values as text.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// The value of column `name` in `row`.
    pub fn get<'a>(&self, row: &'a [Option<String>], name: &str) -> Option<&'a str> {
        let i = self.columns.iter().position(|c| c == name)?;
        row.get(i)?.as_deref()
    }
}

/// The server's own message when there is one (tokio-postgres' Display says
/// only "db error"), else the whole chain of causes.
/// Printable: the text comes from the peer.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    crate::diagnostic::printable(&raw_error_text(e))
}

fn raw_error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

type Rustls = <MakeRustlsConnect as MakeTlsConnect<Tap<TcpStream>>>::TlsConnect;
type RustlsStream = <Rustls as TlsConnect<Tap<TcpStream>>>::Stream;

/// tokio-postgres-rustls' connector with a second tap above TLS, where the
/// PostgreSQL messages of the login are readable.
struct Recorded {
    inner: Rustls,
    above: Recording,
    floor: AuthFloor,
}

impl TlsConnect<Tap<TcpStream>> for Recorded {
    type Stream = Tap<RustlsStream>;
    type Error = <Rustls as TlsConnect<Tap<TcpStream>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, Self::Error>> + Send>>;

    fn connect(self, stream: Tap<TcpStream>) -> Self::Future {
        let Recorded {
            inner,
            above,
            floor,
        } = self;
        let handshake = inner.connect(stream);
        Box::pin(async move {
            handshake
                .await
                .map(|s| Tap::guarded(s, above, Guard::new(floor, false)))
        })
    }
}

/// Logs in to `endpoint`, giving up after `timeout` (TCP and login each).
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Session, ConnectError> {
    let place = endpoint.host_port.clone();
    let fail = |stage, text: String| ConnectError {
        stage,
        place: place.clone(),
        text,
        code: None,
    };
    let started = Instant::now();
    let tcp = match tokio::time::timeout(
        timeout,
        TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    {
        Err(_) => {
            return Err(fail(
                Stage::Timeout,
                format!("timeout: no answer within {} s", timeout.as_secs_f64()),
            ));
        }
        Ok(Err(e)) => return Err(fail(Stage::Tcp, e.to_string())),
        Ok(Ok(tcp)) => tcp,
    };
    // Small queries must not wait for Nagle; tokio-postgres' own connect
    // sets this too.
    let _ = tcp.set_nodelay(true);

    // tokio-postgres wants a connector even when sslmode=disable leaves it
    // unused.
    let rustls = if endpoint.sslmode == SslMode::Disable {
        tls::client_config(SslMode::Require, None)
    } else {
        tls::client_config(endpoint.sslmode, endpoint.sslrootcert.as_deref())
    }
    .map_err(|e| fail(Stage::Setup, e))?;
    let mut make = MakeRustlsConnect::new(rustls);
    let inner = match <MakeRustlsConnect as MakeTlsConnect<Tap<TcpStream>>>::make_tls_connect(
        &mut make,
        &endpoint.host,
    ) {
        Ok(c) => c,
        Err(never) => match never {},
    };
    let below = Recording::default();
    let above = Recording::default();
    let connector = Recorded {
        inner,
        above: above.clone(),
        floor: endpoint.auth_floor,
    };

    let mut config = tokio_postgres::Config::new();
    config
        .user(&endpoint.user)
        .dbname(&endpoint.database)
        .application_name("poolwright verify")
        .ssl_mode(match endpoint.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
    if let Some(p) = &endpoint.password {
        config.password(p);
    }
    // Below TLS the guard reads the plain protocol until the server's
    // answer to the SSLRequest; inside TLS its twin takes over.
    let ssl_request = endpoint.sslmode != SslMode::Disable;
    let raw = Tap::guarded(
        tcp,
        below.clone(),
        Guard::new(endpoint.auth_floor, ssl_request),
    );
    let login = config.connect_raw(raw, connector);
    let (client, connection) = match tokio::time::timeout(timeout, login).await {
        Err(_) => {
            return Err(fail(
                Stage::Timeout,
                format!(
                    "timeout: connected, but the login did not finish within {} s",
                    timeout.as_secs_f64()
                ),
            ));
        }
        Ok(Err(e)) => {
            return Err(ConnectError {
                code: e.as_db_error().map(|db| db.code().code().to_string()),
                ..fail(Stage::Login, error_text(&e))
            });
        }
        Ok(Ok(pair)) => pair,
    };
    let login_time = started.elapsed();
    let broken = Arc::new(Mutex::new(None));
    let slot = broken.clone();
    let mut connection = Box::pin(connection);
    let task = tokio::spawn(std::future::poll_fn(move |cx| {
        // Keep the connection's own error (a refused message, a reset)
        // before the connection is dropped and the waiting query sees only
        // "connection closed".
        match connection.as_mut().poll(cx) {
            Poll::Ready(Err(e)) => {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(error_text(&e));
                }
                Poll::Ready(())
            }
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }));
    let (tls, auth) = if wire::encrypted(&below) {
        let info = wire::tls_info(&below).unwrap_or(TlsInfo {
            version: "TLS".into(),
            cipher: "unknown cipher".into(),
        });
        (
            Some(info),
            wire::auth_method(&above.written(), &above.read()),
        )
    } else {
        (None, wire::auth_method(&below.written(), &below.read()))
    };
    Ok(Session {
        client,
        task,
        tls,
        auth,
        login_time,
        timeout,
        place,
        broken,
        timed_out: Mutex::new(None),
    })
}
