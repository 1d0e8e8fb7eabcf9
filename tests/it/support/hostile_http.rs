//! A hostile HTTP server for the API clients' tests: it answers each request
//! with whatever the test's function says (a redirect, a body that never
//! ends, an error that echoes the token), and keeps every request head it
//! got, so a test can tell whether an `Authorization` header reached it.
//!
//! Loopback only, one thread per connection, plain blocking I/O: just
//! enough HTTP/1.1 for poolwright's GETs without a body. Every answer
//! closes its connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server sends for one request.
pub enum Answer {
    /// These bytes, the status line and headers included.
    Raw(Vec<u8>),
    /// A status and a body, with `Content-Length`.
    Status(u16, String),
    /// A redirect to `location`.
    Redirect(u16, String),
    /// A status and a body without end (no `Content-Length`): bytes until
    /// the client hangs up.
    Endless(u16),
}

type Respond = dyn Fn(&str) -> Answer + Send + Sync;

pub struct HostileHttp {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HostileHttp {
    /// A server that answers every request with `respond(request head)`.
    pub fn start(respond: impl Fn(&str) -> Answer + Send + Sync + 'static) -> HostileHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a hostile HTTP server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let respond: Arc<Respond> = Arc::new(respond);
        // The thread ends with the test binary: it only ever waits in accept.
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let seen = seen.clone();
                let respond = respond.clone();
                std::thread::spawn(move || serve(socket, &seen, &*respond));
            }
        });
        HostileHttp { url, heads }
    }

    /// Every request head received so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }

    /// Whether any request arrived with an `Authorization` header.
    pub fn saw_authorization(&self) -> bool {
        self.heads()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("\nauthorization:"))
    }
}

fn serve(mut socket: TcpStream, seen: &Mutex<Vec<String>>, respond: &Respond) {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().expect("heads").push(head.clone());
    let _ = match respond(&head) {
        Answer::Raw(bytes) => socket.write_all(&bytes),
        Answer::Status(status, body) => socket.write_all(
            format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        ),
        Answer::Redirect(status, location) => socket.write_all(
            format!(
                "HTTP/1.1 {status} X\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
        Answer::Endless(status) => endless(&mut socket, status),
    };
}

/// A JSON array that never closes, 64 KiB at a time, until the peer leaves.
fn endless(socket: &mut TcpStream, status: u16) -> std::io::Result<()> {
    socket.write_all(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n["
        )
        .as_bytes(),
    )?;
    let chunk = "1,".repeat(32 * 1024);
    loop {
        socket.write_all(chunk.as_bytes())?;
    }
}
