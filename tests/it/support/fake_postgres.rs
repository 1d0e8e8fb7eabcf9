//! A hostile PostgreSQL/PgBouncer on loopback, for the tests that prove a
//! peer cannot hang poolwright or take a secret from it.
//!
//! It speaks the start of the protocol (SSLRequest answered `N`, the
//! startup message) and then misbehaves as told, recording what the client
//! sent: which users tried to log in and whether a password arrived.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Run;

/// What the fake server asks for at login.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Login {
    /// The password in clear (AuthenticationCleartextPassword).
    Cleartext,
    /// An md5 hash; any answer is accepted.
    Md5,
    /// Nothing: AuthenticationOk at once.
    Trust,
}

/// What it does once the client has answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    /// Refuses the login (`password authentication failed`).
    Refuse,
    /// Lets the client in, then reads its queries and never answers.
    Silent,
    /// Lets the client in, then answers the first query with a message
    /// header announcing 1 GiB.
    Huge,
}

/// What the clients did.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The `user` of each startup message, in order.
    pub users: Vec<String>,
    /// The bodies of PasswordMessages received (the secrets).
    pub passwords: Vec<String>,
}

pub struct FakePostgres {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl FakePostgres {
    pub fn start(login: Login, after: After) -> FakePostgres {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, login, after, &record);
                });
            }
        });
        FakePostgres { port, seen }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

fn read_exact(stream: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Reads a typed message (type, body).
fn read_message(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let head = read_exact(stream, 5)?;
    let body = read_exact(stream, be32(&head[1..]).saturating_sub(4).min(1 << 20))?;
    Ok((head[0], body))
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn logged_in() -> Vec<u8> {
    let mut out = message(b'R', &0u32.to_be_bytes());
    for (k, v) in [
        ("server_version", "15.0"),
        ("client_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        out.extend(message(b'S', format!("{k}\0{v}\0").as_bytes()));
    }
    out.extend(message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    out.extend(message(b'Z', b"I"));
    out
}

fn serve(
    mut stream: TcpStream,
    login: Login,
    after: After,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // The startup message, after any SSLRequest (answered: no TLS here).
    let startup = loop {
        let len = be32(&read_exact(&mut stream, 4)?);
        let body = read_exact(&mut stream, len.saturating_sub(4).min(1 << 16))?;
        if body.starts_with(&[0x04, 0xd2, 0x16, 0x2f]) {
            stream.write_all(b"N")?;
            continue;
        }
        break body;
    };
    let fields: Vec<&[u8]> = startup[4..].split(|b| *b == 0).collect();
    let user = fields
        .windows(2)
        .find(|w| w[0] == b"user")
        .map(|w| String::from_utf8_lossy(w[1]).into_owned())
        .unwrap_or_default();
    seen.lock().unwrap().users.push(user);
    let ask = match login {
        Login::Cleartext => Some(message(b'R', &3u32.to_be_bytes())),
        Login::Md5 => Some(message(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])),
        Login::Trust => None,
    };
    if let Some(ask) = ask {
        stream.write_all(&ask)?;
        if let Ok((b'p', body)) = read_message(&mut stream) {
            let secret = String::from_utf8_lossy(&body)
                .trim_end_matches('\0')
                .to_string();
            seen.lock().unwrap().passwords.push(secret);
        }
    }
    match after {
        After::Refuse => {
            // With an escape that would clear the screen and a forged line.
            let mut e =
                b"SFATAL\0C28P01\0Mpassword authentication failed\x1b[2J\nPASS  forged\0".to_vec();
            e.push(0);
            stream.write_all(&message(b'E', &e))?;
        }
        After::Silent => {
            stream.write_all(&logged_in())?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink)? > 0 {}
        }
        After::Huge => {
            stream.write_all(&logged_in())?;
            let _ = read_message(&mut stream)?;
            stream.write_all(&[b'T', 0x40, 0, 0, 0])?;
            std::thread::sleep(Duration::from_secs(30));
        }
    }
    Ok(())
}

/// Runs poolwright like `support::poolwright`, but kills it after `limit`:
/// a hang fails the test (code -9) instead of hanging the suite.
pub fn poolwright_within(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (Run, Duration) {
    let mut cmd = Command::new(super::bin());
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.envs(env.iter().copied());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("run poolwright");
    let mut killed = false;
    while child.try_wait().expect("wait for poolwright").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child
        .wait_with_output()
        .expect("collect poolwright's output");
    let code = if killed {
        -9
    } else {
        out.status.code().unwrap_or(-1)
    };
    (
        Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        started.elapsed(),
    )
}
