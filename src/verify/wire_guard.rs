//! What a peer may make poolwright do on the wire, enforced as the bytes
//! arrive, before tokio-postgres acts on them.
//!
//! tokio-postgres answers whatever authentication the server asks for,
//! including a clear-text password, and reads messages of any length the
//! peer announces. A fake or hostile pooler could so collect the password
//! of a target that says `auth_type: scram-sha-256`, or make poolwright
//! allocate gigabytes. The guard reads the PostgreSQL message headers in
//! the stream (inside TLS when there is TLS) and fails the read, so the
//! login fails before a reply is written, when the server asks for a method
//! weaker than the target's floor or announces an oversized message.

use std::io;

/// The weakest authentication a login may answer, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum AuthFloor {
    /// Anything the server asks, the password in clear included.
    #[default]
    Cleartext,
    /// md5 or SCRAM: the password never crosses the wire.
    Md5,
    /// SCRAM-SHA-256 only.
    Scram,
}

impl AuthFloor {
    fn describe(self) -> &'static str {
        match self {
            AuthFloor::Cleartext => "any method",
            AuthFloor::Md5 => "md5 or SCRAM-SHA-256",
            AuthFloor::Scram => "SCRAM-SHA-256",
        }
    }
}

/// The longest message accepted from a peer. poolwright's queries return a
/// few rows; PostgreSQL's own limit for a field is 1 GiB.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The state of one direction (server to client) of one connection.
#[derive(Debug)]
pub struct Guard {
    floor: AuthFloor,
    /// The server's one-byte answer to an SSLRequest is still to come.
    ssl_reply_pending: bool,
    /// TLS took over below this guard: the guard above it checks instead.
    off: bool,
    /// The login finished: no more authentication requests are expected.
    authenticated: bool,
    /// Header bytes of the message being read (type, length, auth code).
    header: Vec<u8>,
    /// Body bytes of the current message still to pass.
    skip: usize,
}

impl Guard {
    /// A guard for the raw TCP stream (`ssl_request`: the client opens
    /// with an SSLRequest) or, with `false`, for the stream inside TLS.
    pub fn new(floor: AuthFloor, ssl_request: bool) -> Guard {
        Guard {
            floor,
            ssl_reply_pending: ssl_request,
            off: false,
            authenticated: false,
            header: Vec::with_capacity(9),
            skip: 0,
        }
    }

    /// Checks the next bytes the server sent.
    pub fn read(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() && !self.off {
            if self.ssl_reply_pending {
                self.ssl_reply_pending = false;
                // `S`: TLS follows, checked by the guard inside it.
                self.off = bytes[0] == b'S';
                bytes = &bytes[1..];
                continue;
            }
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            // Gather the header: type and length (5 bytes), and for an
            // authentication request its code (4 more).
            let want = if self.header.first() == Some(&b'R') {
                9
            } else {
                5
            };
            let n = (want - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() < want {
                continue;
            }
            let length = u32::from_be_bytes([
                self.header[1],
                self.header[2],
                self.header[3],
                self.header[4],
            ]) as usize;
            if length > MAX_MESSAGE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the server announced a message of {length} bytes, more than the {} MiB poolwright reads",
                        MAX_MESSAGE / 1024 / 1024
                    ),
                ));
            }
            if length < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent a malformed message",
                ));
            }
            if self.header[0] == b'R' && want == 9 {
                let code = u32::from_be_bytes([
                    self.header[5],
                    self.header[6],
                    self.header[7],
                    self.header[8],
                ]);
                self.check_auth(code)?;
                self.skip = length.saturating_sub(8);
            } else if self.header[0] == b'R' {
                // Only the length so far: read the code next.
                continue;
            } else {
                self.skip = length - 4;
            }
            self.header.clear();
        }
        Ok(())
    }

    fn check_auth(&mut self, code: u32) -> io::Result<()> {
        let (asked, level) = match code {
            0 => {
                self.authenticated = true;
                return Ok(());
            }
            3 => ("a clear-text password", AuthFloor::Cleartext),
            5 => ("an md5 password hash", AuthFloor::Md5),
            _ => return Ok(()),
        };
        if self.authenticated || level >= self.floor {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the server asked for {asked}, weaker than the target allows ({}): the password was not sent",
                self.floor.describe()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_request(code: u32) -> Vec<u8> {
        let mut m = vec![b'R', 0, 0, 0, 8];
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    #[test]
    fn a_clear_text_request_is_refused_below_the_floor_even_byte_by_byte() {
        let mut g = Guard::new(AuthFloor::Scram, false);
        let request = auth_request(3);
        let result: io::Result<()> = request.iter().try_for_each(|b| g.read(&[*b]));
        let e = result.unwrap_err();
        assert!(e.to_string().contains("clear-text password"), "{e}");
        let mut md5 = Guard::new(AuthFloor::Md5, false);
        assert!(md5.read(&auth_request(3)).is_err());
        let mut any = Guard::new(AuthFloor::Cleartext, false);
        assert!(any.read(&auth_request(3)).is_ok());
    }

    #[test]
    fn md5_passes_an_md5_floor_and_scram_passes_all() {
        let mut g = Guard::new(AuthFloor::Md5, false);
        let mut m = vec![b'R', 0, 0, 0, 12, 0, 0, 0, 5];
        m.extend_from_slice(b"salt");
        assert!(g.read(&m).is_ok());
        let mut s = Guard::new(AuthFloor::Scram, false);
        assert!(s.read(&m).is_err());
        let mut sasl = vec![b'R', 0, 0, 0, 23, 0, 0, 0, 10];
        sasl.extend_from_slice(b"SCRAM-SHA-256\0\0");
        assert!(Guard::new(AuthFloor::Scram, false).read(&sasl).is_ok());
    }

    #[test]
    fn the_ssl_answer_is_skipped_and_tls_turns_the_raw_guard_off() {
        let mut plain = Guard::new(AuthFloor::Scram, true);
        let mut bytes = vec![b'N'];
        bytes.extend(auth_request(3));
        assert!(plain.read(&bytes).is_err());
        let mut tls = Guard::new(AuthFloor::Scram, true);
        assert!(tls.read(b"S\x16\x03\x03\xff\xff garbage").is_ok());
    }

    #[test]
    fn an_oversized_message_is_refused_and_rows_pass() {
        let mut g = Guard::new(AuthFloor::Cleartext, false);
        assert!(g.read(&[b'D', 0x7f, 0xff, 0xff, 0xff]).is_err());
        let mut ok = Guard::new(AuthFloor::Cleartext, false);
        let mut rows = Vec::new();
        for _ in 0..3 {
            rows.extend_from_slice(&[b'D', 0, 0, 0, 10, 0, 1, 0, 0, 0, 0]);
        }
        assert!(ok.read(&rows).is_ok());
        assert!(ok.header.is_empty() && ok.skip == 0);
    }
}
