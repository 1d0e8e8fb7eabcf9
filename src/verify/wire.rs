//! What a login showed on the wire: the TLS version and cipher the server
//! chose, and the authentication method it asked for.
//!
//! tokio-postgres and tokio-postgres-rustls keep both to themselves (the TLS
//! session is private to the stream, the authentication exchange private to
//! the connect function), yet they are what `verify` must report. So the
//! connection runs over a [`Tap`], a stream that keeps a copy of the first
//! bytes in each direction, and the facts are read back from those bytes:
//! below TLS the server's plaintext ServerHello names version and cipher
//! (RFC 8446 4.1.3, RFC 5246 7.4.1.3); above it (or on a plain connection)
//! the PostgreSQL startup messages name the authentication method.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator as _;
use postgres_protocol::message::backend::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsStream};

pub use super::wire_guard::Guard;

/// Enough for a ServerHello or a whole authentication exchange; the tap
/// stops copying after that, so queries are never kept.
const KEEP: usize = 16 * 1024;

/// The bytes a [`Tap`] saw, shared with whoever reads them afterwards.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    read: Arc<Mutex<Vec<u8>>>,
    written: Arc<Mutex<Vec<u8>>>,
}

impl Recording {
    /// What the server sent (the first [`KEEP`] bytes).
    pub fn read(&self) -> Vec<u8> {
        self.read.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// What the client sent (the first [`KEEP`] bytes).
    pub fn written(&self) -> Vec<u8> {
        self.written.lock().map(|b| b.clone()).unwrap_or_default()
    }

    fn keep(buffer: &Mutex<Vec<u8>>, bytes: &[u8]) {
        if let Ok(mut b) = buffer.lock() {
            let room = KEEP.saturating_sub(b.len());
            b.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
}

/// A stream that records what passes through it into a [`Recording`].
pub struct Tap<S> {
    inner: S,
    recording: Recording,
    /// Checks what the server sends before tokio-postgres acts on it.
    guard: Option<Guard>,
}

impl<S> Tap<S> {
    pub fn new(inner: S, recording: Recording) -> Tap<S> {
        Tap {
            inner,
            recording,
            guard: None,
        }
    }

    /// A tap whose reads also pass `guard`: a read it refuses fails.
    pub fn guarded(inner: S, recording: Recording, guard: Guard) -> Tap<S> {
        Tap {
            inner,
            recording,
            guard: Some(guard),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let this = &mut *self;
            let new = &buf.filled()[before..];
            Recording::keep(&this.recording.read, new);
            if let Some(guard) = &mut this.guard
                && let Err(e) = guard.read(new)
            {
                // Hide what the guard refused from tokio-postgres.
                buf.set_filled(before);
                return Poll::Ready(Err(e));
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            Recording::keep(&self.recording.written, &buf[..n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Above TLS the tap must still offer what tokio-postgres asks of a TLS
/// stream: the channel binding data of the session underneath.
impl<S: TlsStream + Unpin> TlsStream for Tap<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// The TLS parameters the server chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLSv1.3"
    pub version: String,
    /// "TLS13_AES_256_GCM_SHA384"
    pub cipher: String,
}

/// The PostgreSQL SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Whether the connection went encrypted, judged from the raw bytes: the
/// client asked (SSLRequest) and the server answered `S`.
pub fn encrypted(raw: &Recording) -> bool {
    raw.written().starts_with(&SSL_REQUEST) && raw.read().first() == Some(&b'S')
}

/// The TLS version and cipher from the server's ServerHello, read from the
/// raw bytes (after the server's `S`), or None when they are not there.
pub fn tls_info(raw: &Recording) -> Option<TlsInfo> {
    let read = raw.read();
    server_hello(read.strip_prefix(b"S")?)
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parses a TLS record holding a ServerHello (the first thing a server sends).
pub fn server_hello(record: &[u8]) -> Option<TlsInfo> {
    // Record header: type 22 (handshake), version, length.
    if *record.first()? != 22 {
        return None;
    }
    let body = record.get(5..)?;
    // Handshake header: type 2 (ServerHello), 24-bit length.
    if *body.first()? != 2 {
        return None;
    }
    let hello = body.get(4..)?;
    let legacy_version = u16_at(hello, 0)?;
    // 2 bytes version + 32 bytes random, then the session id.
    let session_len = usize::from(*hello.get(34)?);
    let mut i = 35 + session_len;
    let cipher = u16_at(hello, i)?;
    i += 3; // cipher suite + compression method
    let mut version = legacy_version;
    if let Some(ext_len) = u16_at(hello, i) {
        let end = (i + 2 + usize::from(ext_len)).min(hello.len());
        i += 2;
        while i + 4 <= end {
            let kind = u16_at(hello, i)?;
            let len = usize::from(u16_at(hello, i + 2)?);
            // supported_versions: TLS 1.3 names the real version here.
            if kind == 43 && len == 2 {
                version = u16_at(hello, i + 4)?;
            }
            i += 4 + len;
        }
    }
    let version = match version {
        0x0304 => "TLSv1.3".to_string(),
        0x0303 => "TLSv1.2".to_string(),
        0x0302 => "TLSv1.1".to_string(),
        0x0301 => "TLSv1.0".to_string(),
        other => format!("TLS 0x{other:04x}"),
    };
    let cipher = rustls::CipherSuite::from(cipher)
        .as_str()
        .map_or_else(|| format!("cipher 0x{cipher:04x}"), str::to_string);
    Some(TlsInfo { version, cipher })
}

/// The PostgreSQL messages of a login: what the client wrote and the server
/// answered, from the first message after any SSLRequest.
pub fn auth_method(client: &[u8], server: &[u8]) -> Option<String> {
    let (client, server) = match client.strip_prefix(&SSL_REQUEST) {
        // A plain connection after a refused SSLRequest: skip the `N`.
        Some(rest) => (rest, server.strip_prefix(b"N").unwrap_or(server)),
        None => (client, server),
    };
    let mut buf = BytesMut::from(server);
    while let Ok(Some(message)) = Message::parse(&mut buf) {
        match message {
            Message::AuthenticationSasl(body) => {
                let mut offered = Vec::new();
                let mut mechanisms = body.mechanisms();
                while let Ok(Some(m)) = mechanisms.next() {
                    offered.push(m.to_string());
                }
                // The client names the mechanism it picked in its first
                // SASL message; fall back to the first one offered.
                return sasl_choice(client).or_else(|| offered.into_iter().next());
            }
            Message::AuthenticationMd5Password(_) => return Some("md5".into()),
            Message::AuthenticationCleartextPassword => {
                return Some("password (clear text)".into());
            }
            Message::AuthenticationOk => return Some("trust (no password asked)".into()),
            Message::ErrorResponse(_) => return None,
            _ => {}
        }
    }
    None
}

/// The mechanism in the client's SASLInitialResponse (`p`), after the
/// untyped startup message.
fn sasl_choice(client: &[u8]) -> Option<String> {
    let startup_len =
        usize::try_from(u32::from_be_bytes(client.get(..4)?.try_into().ok()?)).ok()?;
    let mut rest = client.get(startup_len..)?;
    while rest.len() >= 5 {
        let kind = rest[0];
        let len = usize::try_from(u32::from_be_bytes(rest[1..5].try_into().ok()?)).ok()?;
        let body = rest.get(5..1 + len)?;
        if kind == b'p' {
            let end = body.iter().position(|b| *b == 0)?;
            return Some(String::from_utf8_lossy(&body[..end]).into_owned());
        }
        rest = rest.get(1 + len..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ServerHello record as OpenSSL sends it for TLS 1.3 (random and
    /// key share shortened to what the parser reads past).
    fn tls13_hello() -> Vec<u8> {
        let mut hello = vec![0x03, 0x03];
        hello.extend([7u8; 32]); // random
        hello.push(32); // session id length
        hello.extend([9u8; 32]);
        hello.extend([0x13, 0x02]); // TLS13_AES_256_GCM_SHA384
        hello.push(0); // compression
        let exts: Vec<u8> = vec![
            0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, // supported_versions: 1.3
            0x00, 0x33, 0x00, 0x02, 0xaa, 0xbb, // key_share (shortened)
        ];
        hello.extend((exts.len() as u16).to_be_bytes());
        hello.extend(exts);
        let mut handshake = vec![2, 0];
        handshake.extend((hello.len() as u16).to_be_bytes());
        handshake.extend(hello);
        let mut record = vec![22, 0x03, 0x03];
        record.extend((handshake.len() as u16).to_be_bytes());
        record.extend(handshake);
        record
    }

    #[test]
    fn reads_version_and_cipher_from_a_server_hello() {
        assert_eq!(
            server_hello(&tls13_hello()),
            Some(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into()
            })
        );
        // TLS 1.2: no supported_versions extension, the legacy version holds.
        let mut tls12 = tls13_hello();
        let at = 5 + 4 + 2 + 32 + 1 + 32;
        tls12[at..at + 2].copy_from_slice(&[0xc0, 0x30]);
        tls12.truncate(at + 3);
        assert_eq!(
            server_hello(&tls12),
            Some(TlsInfo {
                version: "TLSv1.2".into(),
                cipher: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into()
            })
        );
        assert_eq!(server_hello(b"\x15\x03\x03\x00\x02\x02\x28"), None); // an alert
        assert_eq!(server_hello(&tls13_hello()[..20]), None);
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend(((body.len() + 4) as u32).to_be_bytes());
        m.extend(body);
        m
    }

    fn startup() -> Vec<u8> {
        let body = b"\x00\x03\x00\x00user\x00app\x00\x00";
        let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        m.extend(body);
        m
    }

    #[test]
    fn reads_the_auth_method_of_a_login() {
        // SCRAM: the server offers, the client picks.
        let server = message(b'R', b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00");
        let mut client = startup();
        client.extend(message(b'p', b"SCRAM-SHA-256\x00\x00\x00\x00\x05n,,n="));
        assert_eq!(
            auth_method(&client, &server).as_deref(),
            Some("SCRAM-SHA-256")
        );
        // After a refused SSLRequest the server's `N` comes first.
        let mut plain = SSL_REQUEST.to_vec();
        plain.extend(&client);
        let mut answer = b"N".to_vec();
        answer.extend(&server);
        assert_eq!(
            auth_method(&plain, &answer).as_deref(),
            Some("SCRAM-SHA-256")
        );
        let md5 = message(b'R', b"\x00\x00\x00\x05salt");
        assert_eq!(auth_method(&startup(), &md5).as_deref(), Some("md5"));
        let ok = message(b'R', b"\x00\x00\x00\x00");
        assert_eq!(
            auth_method(&startup(), &ok).as_deref(),
            Some("trust (no password asked)")
        );
        let error = message(b'E', b"SFATAL\x00Mno\x00\x00");
        assert_eq!(auth_method(&startup(), &error), None);
    }
}
