//! Which SCRAM verifier does the server hold for a role? Ask it, without
//! logging in and without any privilege.
//!
//! In a SCRAM exchange the server sends the salt and iteration count of the
//! role's stored verifier before the client proves anything (RFC 5802,
//! server-first-message `r=...,s=<salt>,i=<iterations>`). Random 16-byte
//! salts make the salt a fingerprint: when it equals the salt of the verifier
//! in userlist.txt, the server already stores that verifier and `apply` has
//! nothing to do. We open a connection, read that one message and hang up.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator as _;
use postgres_protocol::message::{backend::Message, frontend};

/// The salt and iteration count the server uses for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerScram {
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// What the server answered to a login attempt: the authentication it asks
/// of this role, which is what decides how the role's password may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It offered SCRAM-SHA-256 with these parameters.
    Scram(ServerScram),
    /// It asked for an md5 hash of the password (`md5` in pg_hba.conf and
    /// an md5 hash stored, or no password stored yet).
    Md5,
    /// It asked for the password in clear (`password` in pg_hba.conf).
    Cleartext,
    /// It let the role in without a password (`trust`).
    NoPassword,
    /// Something else (another SASL mechanism, GSS, ...), named.
    OtherMethod(String),
}

impl Probe {
    /// How the server asks, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Probe::Scram(_) => "SCRAM-SHA-256",
            Probe::Md5 => "md5",
            Probe::Cleartext => "a clear-text password",
            Probe::NoPassword => "no password (trust)",
            Probe::OtherMethod(_) => "another method",
        }
    }
}

/// The most bytes we buffer from the server before its challenge: a real
/// one is a few hundred bytes; a hostile one could send gigabytes.
const MAX_REPLY: usize = 64 * 1024;

fn parse_server_first(data: &[u8]) -> Option<ServerScram> {
    let text = std::str::from_utf8(data).ok()?;
    let mut salt = None;
    let mut iterations = None;
    for part in text.split(',') {
        if let Some(s) = part.strip_prefix("s=") {
            salt = B64.decode(s).ok();
        } else if let Some(i) = part.strip_prefix("i=") {
            iterations = i.parse().ok();
        }
    }
    Some(ServerScram {
        salt: salt?,
        iterations: iterations?,
    })
}

fn error_text(body: &postgres_protocol::message::backend::ErrorResponseBody) -> String {
    let mut fields = body.fields();
    let mut message = String::from("the server refused the connection");
    while let Ok(Some(field)) = fields.next() {
        if field.type_() == b'M' {
            // The server's words reach a terminal: control characters escaped.
            message = crate::diagnostic::printable(&String::from_utf8_lossy(field.value_bytes()));
        }
    }
    message
}

/// Starts a login as `user` to `database` on `host:port` and reports what
/// the server offers. Errors are plain text for the caller's message.
pub fn probe(
    host: &str,
    port: u16,
    user: &str,
    database: &str,
    timeout: Duration,
) -> Result<Probe, String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::new();
    frontend::startup_message(
        [
            ("user", user),
            ("database", database),
            ("application_name", "poolwright"),
        ],
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    stream.write_all(&out).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    // One bound for the whole exchange: a peer trickling a byte per read
    // timeout must not stretch it.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let message = loop {
            if let Some(m) =
                Message::parse(&mut buf).map_err(|e| format!("unexpected reply: {e}"))?
            {
                break m;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "timeout: {host}:{port} did not send its authentication request within {} s",
                    timeout.as_secs_f64()
                ));
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let n = stream
                .read(&mut chunk)
                .map_err(|e| format!("no reply from {host}:{port}: {e}"))?;
            if n == 0 {
                return Err(format!("{host}:{port} closed the connection"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_REPLY {
                return Err(format!(
                    "{host}:{port} sent more than {MAX_REPLY} bytes before its authentication request"
                ));
            }
        };
        match message {
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut scram = false;
                while let Ok(Some(m)) = mechanisms.next() {
                    scram |= m == "SCRAM-SHA-256";
                }
                if !scram {
                    return Ok(Probe::OtherMethod(
                        "a SASL mechanism other than SCRAM-SHA-256".into(),
                    ));
                }
                let nonce = B64.encode(crate::scram::random_salt());
                let mut out = BytesMut::new();
                frontend::sasl_initial_response(
                    "SCRAM-SHA-256",
                    format!("n,,n=,r={nonce}").as_bytes(),
                    &mut out,
                )
                .map_err(|e| e.to_string())?;
                stream.write_all(&out).map_err(|e| e.to_string())?;
            }
            Message::AuthenticationSaslContinue(body) => {
                return parse_server_first(body.data())
                    .map(Probe::Scram)
                    .ok_or_else(|| "the server's SCRAM message has no salt".to_string());
            }
            Message::AuthenticationMd5Password(_) => return Ok(Probe::Md5),
            Message::AuthenticationCleartextPassword => return Ok(Probe::Cleartext),
            Message::AuthenticationOk => return Ok(Probe::NoPassword),
            Message::ErrorResponse(body) => return Err(error_text(&body)),
            Message::NoticeResponse(_) | Message::ParameterStatus(_) => {}
            _ => {
                return Ok(Probe::OtherMethod(
                    "an authentication method poolwright does not speak".into(),
                ));
            }
        }
    }
}

/// True when `verifier` (from userlist.txt) has the salt and iterations the
/// server offered.
pub fn same_verifier(verifier: &str, server: &ServerScram) -> bool {
    let Some(params) = verifier
        .strip_prefix("SCRAM-SHA-256$")
        .and_then(|r| r.split('$').next())
    else {
        return false;
    };
    let Some((iterations, salt)) = params.split_once(':') else {
        return false;
    };
    iterations.parse() == Ok(server.iterations) && B64.decode(salt).is_ok_and(|s| s == server.salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_server_first_message() {
        let parsed = parse_server_first(b"r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").unwrap();
        assert_eq!(parsed.iterations, 4096);
        let verifier = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        assert!(same_verifier(verifier, &parsed));
        let other = ServerScram {
            salt: vec![1; 16],
            iterations: 4096,
        };
        assert!(!same_verifier(verifier, &other));
        let fewer = ServerScram {
            iterations: 1000,
            ..parsed
        };
        assert!(!same_verifier(verifier, &fewer));
        assert!(parse_server_first(b"r=abc,i=4096").is_none());
    }
}
