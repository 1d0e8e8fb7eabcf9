//! A fault-injecting HTTP server for the network-fault tests of the
//! reqwest clients (Supabase, Neon): it plays a broken network for the
//! first N requests, then forwards each later one to a healthy server
//! (wiremock), so a test sees both the give-up and the recovery.
//!
//! It speaks just enough HTTP/1.1 for GETs without a body: it reads the
//! request head, counts it, and either misbehaves or relays it upstream
//! with `Connection: close` and copies the answer back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the network does to a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Nothing listens on the port: every connection is refused.
    Refuse,
    /// Headers promising 1,000 bytes, 10 of them, then a TCP reset.
    ResetMidBody,
    /// The connection is accepted and the request read, but never answered.
    Hang,
    /// An HTTP error status with a short body (a 5xx storm).
    Status(u16),
}

pub struct FaultServer {
    pub url: String,
    requests: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultServer {
    /// A server that answers its first `faulty` requests with `fault`, and
    /// forwards the later ones to `upstream` (`http://host:port`); without
    /// an upstream every request gets the fault.
    pub fn start(fault: Fault, faulty: usize, upstream: Option<&str>) -> FaultServer {
        let requests = Arc::new(AtomicUsize::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a fault server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        if fault == Fault::Refuse {
            // The port was free a moment ago and nothing listens on it now.
            drop(listener);
            return FaultServer {
                url,
                requests,
                stop: None,
                thread: None,
            };
        }
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let upstream = upstream.map(|u| {
            u.strip_prefix("http://")
                .expect("an http:// upstream")
                .trim_end_matches('/')
                .to_string()
        });
        let seen = requests.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fault server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let serve = async {
                    loop {
                        let Ok((socket, _)) = listener.accept().await else {
                            continue;
                        };
                        let seen = seen.clone();
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            serve(socket, fault, faulty, &seen, upstream.as_deref()).await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        FaultServer {
            url,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The requests received so far (a refused connection is none).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads up to the end of a request head; None if the client went away.
async fn read_head(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// Serves the requests of one connection.
async fn serve(
    mut socket: TcpStream,
    fault: Fault,
    faulty: usize,
    seen: &AtomicUsize,
    upstream: Option<&str>,
) {
    while let Some(head) = read_head(&mut socket).await {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let upstream = upstream.filter(|_| n >= faulty);
        match (upstream, fault) {
            (Some(upstream), _) => {
                forward(&mut socket, &head, upstream).await;
                return;
            }
            (None, Fault::Refuse) => unreachable!("nothing listens"),
            (None, Fault::ResetMidBody) => {
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                          content-length: 1000\r\n\r\n{\"partial\"",
                    )
                    .await;
                let _ = socket.flush().await;
                // Give the client the headers before the reset (a reset
                // can overtake data still in flight), then close with
                // SO_LINGER 0: an RST, not a FIN.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = socket.set_zero_linger();
                return;
            }
            (None, Fault::Hang) => {
                // Hold the connection until the client gives up.
                let mut buf = [0u8; 64];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            (None, Fault::Status(status)) => {
                let body = format!("{{\"message\": \"fault server: {status}\"}}");
                let answer = format!(
                    "HTTP/1.1 {status} Fault\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Relays one request to `upstream` (host:port) and its answer back, then
/// closes (the relayed request asked for `Connection: close`).
async fn forward(client: &mut TcpStream, head: &[u8], upstream: &str) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut relayed = format!("{request_line}\r\nhost: {upstream}\r\nconnection: close\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name != "host" && name != "connection" {
            relayed.push_str(line);
            relayed.push_str("\r\n");
        }
    }
    relayed.push_str("\r\n");
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(relayed.as_bytes()).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer).await;
    let _ = client.write_all(&answer).await;
    let _ = client.shutdown().await;
}
