//! PostgreSQL connection URLs, built from parts so the parts are always
//! encoded the way libpq decodes them.
//!
//! libpq percent-decodes every component and finds the end of the user
//! information at the first `@` or `/`, so user, password and database are
//! encoded with everything but RFC 3986's unreserved characters escaped.
//! `Display` masks the password; only [`PgUrl::reveal`] shows it.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::secret::Secret;

/// Everything except `A-Z a-z 0-9 - . _ ~` is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a masked password looks like.
pub const MASK: &str = "****";

/// Why `host` is not one host a client can connect to, if it is not: the
/// one rule for every host that enters poolwright (the config, an API's
/// answer, the state file). Letters, digits, `-`, `.` and `_` make a name,
/// `:` and `%` an IPv6 address with its zone id. Anything else is refused:
/// a `,` makes libpq read a list of hosts, `/` a socket directory, `@`,
/// `?` and `#` change what a URL means, and spaces, control and format
/// characters forge or break lines where the host is shown.
/// The hint beside a [`host_problem`] in poolwright.yaml.
pub const ONE_HOST_HINT: &str = "give the one host name apps connect to";

pub fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("the host is empty".into());
    }
    if host.len() > MAX_HOST_BYTES {
        return Some(format!(
            "the host is {} bytes long; a host name has at most {MAX_HOST_BYTES}",
            host.len()
        ));
    }
    let bad = host.chars().find(|c| !host_char(*c))?;
    let shown = escaped_host(host);
    if bad == ',' {
        return Some(format!(
            "`{shown}` contains `,`, which a PostgreSQL URL reads as a list of hosts"
        ));
    }
    let bad = if bad.is_control() || bad.is_whitespace() || !bad.is_ascii() {
        format!("{:?}", bad.to_string())
    } else {
        format!("`{bad}`")
    };
    Some(format!(
        "`{shown}` contains {bad}, which is not allowed in a host"
    ))
}

/// The message for a host from `.poolwright-state.json` that breaks the
/// host rule: the file is beside the config, anyone who could write it
/// could point the URL elsewhere, so it is refused rather than used.
pub fn learned_host_problem(what: &str, problem: &str) -> String {
    format!("the {what} kept in .poolwright-state.json is refused: {problem}")
}

/// `host` for a message: control characters escaped as `printable` does,
/// other invisible or line-breaking ones (U+2028, bidi overrides) as
/// `\u{..}`, so the message shows what the host holds.
fn escaped_host(host: &str) -> String {
    crate::diagnostic::printable(host)
        .chars()
        .map(|c| {
            if c.is_ascii() || c.is_alphanumeric() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// The longest host name DNS allows.
const MAX_HOST_BYTES: usize = 253;

fn host_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%')
}

/// Where a host is, for one that only some machines can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Loopback or the unspecified address (`127.0.0.0/8`, `::1`,
    /// `localhost`, `0.0.0.0`, `::`): the machine the client runs on.
    ThisMachine,
    /// A private network (`10/8`, `172.16/12`, `192.168/16`, `fc00::/7`).
    PrivateNetwork,
    /// Link-local (`169.254/16`, `fe80::/10`): one network segment.
    LinkLocal,
    /// A directory: libpq connects to a Unix socket on the client's machine.
    UnixSocket,
}

/// Where `host` is when that limits who can reach it; None for a name or
/// a public address. Names other than `localhost` are not resolved.
pub fn host_reach(host: &str) -> Option<Reach> {
    use std::net::{IpAddr, Ipv4Addr};
    if host.starts_with(['/', '@']) {
        return Some(Reach::UnixSocket);
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Reach::ThisMachine);
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let bare = bare.split_once('%').map_or(bare, |(a, _zone)| a);
    let v4 = |ip: Ipv4Addr| {
        if ip.is_loopback() || ip.is_unspecified() {
            Some(Reach::ThisMachine)
        } else if ip.is_private() {
            Some(Reach::PrivateNetwork)
        } else if ip.is_link_local() {
            Some(Reach::LinkLocal)
        } else {
            None
        }
    };
    match bare.parse::<IpAddr>().ok()? {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return v4(mapped);
            }
            let first = ip.segments()[0];
            if ip.is_loopback() || ip.is_unspecified() {
                Some(Reach::ThisMachine)
            } else if first & 0xfe00 == 0xfc00 {
                Some(Reach::PrivateNetwork)
            } else if first & 0xffc0 == 0xfe80 {
                Some(Reach::LinkLocal)
            } else {
                None
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgUrl {
    pub scheme: String,
    /// JDBC puts user and password among the parameters.
    pub jdbc: bool,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub params: Vec<(String, String)>,
    /// Parameters only libpq-based drivers understand (other drivers drop
    /// them: some reject unknown parameters, asyncpg sends them to the server).
    pub libpq_only: Vec<(String, String)>,
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

impl PgUrl {
    pub fn new(host: &str, port: u16, database: &str) -> PgUrl {
        PgUrl {
            scheme: "postgresql".into(),
            jdbc: false,
            user: None,
            password: None,
            host: host.into(),
            port,
            database: database.into(),
            params: Vec::new(),
            libpq_only: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_user(mut self, user: &str, password: Option<Secret>) -> PgUrl {
        self.user = Some(user.into());
        self.password = password;
        self
    }

    #[must_use]
    pub fn with_param(mut self, key: &str, value: &str) -> PgUrl {
        self.params.push((key.into(), value.into()));
        self
    }

    fn host_part(&self) -> String {
        // IPv6 literals go in brackets; everything else is a name or IPv4.
        // libpq percent-decodes the host either way, so a zone id's `%`
        // or a stray `]` is escaped inside the brackets too.
        if self.host.contains(':') {
            format!("[{}]", encode_host(&self.host, HOST_IN_BRACKETS))
        } else {
            encode_host(&self.host, HOST)
        }
    }

    /// Why libpq could not read this URL back as built, if it could not:
    /// it has no way to write an empty host or database (both fall back to
    /// defaults), a comma in a host (a host list, split after decoding),
    /// port 0, an empty parameter name, or a NUL byte (`%00` is refused).
    /// Config validation keeps such values out; this says so for callers
    /// that build URLs from other sources.
    pub fn problem(&self) -> Option<String> {
        let mut fields = vec![self.host.as_str(), self.database.as_str()];
        fields.extend(self.user.as_deref());
        if let Some(Ok(pw)) = self.password.as_ref().map(Secret::expose) {
            fields.push(pw);
        }
        for (k, v) in self.params.iter().chain(&self.libpq_only) {
            fields.extend([k.as_str(), v.as_str()]);
        }
        let problem = if self.host.is_empty() {
            "the host is empty"
        } else if self.host.contains(',') {
            "the host contains `,`, which libpq reads as a list of hosts"
        } else if self.port == 0 {
            "the port is 0"
        } else if self.database.is_empty() {
            "the database name is empty"
        } else if self.user.as_deref() == Some("") {
            "the user name is empty"
        } else if self.password.as_ref().and_then(|p| p.expose().ok()) == Some("") {
            "the password is empty"
        } else if self
            .params
            .iter()
            .chain(&self.libpq_only)
            .any(|(k, _)| k.is_empty())
        {
            "a parameter name is empty"
        } else if fields.iter().any(|f| f.contains('\0')) {
            "a part contains a NUL byte, which no PostgreSQL client accepts"
        } else {
            return None;
        };
        Some(problem.to_string())
    }

    fn format(&self, password: Option<&str>) -> String {
        let mut out = format!("{}://", self.scheme);
        let mut params: Vec<(String, String)> = Vec::new();
        if self.jdbc {
            if let Some(user) = &self.user {
                params.push(("user".into(), encode(user)));
                if let Some(pw) = password {
                    params.push(("password".into(), pw.to_string()));
                }
            }
        } else if let Some(user) = &self.user {
            out.push_str(&encode(user));
            if let Some(pw) = password {
                out.push(':');
                out.push_str(pw);
            }
            out.push('@');
        }
        out.push_str(&self.host_part());
        out.push_str(&format!(":{}/{}", self.port, encode(&self.database)));
        params.extend(
            self.params
                .iter()
                .chain(&self.libpq_only)
                .map(|(k, v)| (encode(k), encode(v))),
        );
        for (i, (k, v)) in params.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// The URL with its password masked (safe for any output).
    /// `host:port` as messages show it (an IPv6 host in brackets).
    pub fn place(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn masked(&self) -> String {
        self.format(self.password.as_ref().map(|_| MASK))
    }

    /// The URL with the real password, or the diagnostic naming the unset
    /// variable that holds it.
    pub fn reveal(&self) -> Result<String, Box<crate::diagnostic::Diagnostic>> {
        match &self.password {
            Some(secret) => Ok(self.format(Some(&encode(secret.expose()?)))),
            None => Ok(self.format(None)),
        }
    }
}

/// `text` (a URL someone wrote, say) with any password in it masked:
/// the `:password@` of user info and `password=` parameters.
pub fn mask_in_text(text: &str) -> String {
    let mut out = text.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let (start, stop) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
            out.replace_range(start..stop, MASK);
        }
    }
    let mut search = 0;
    while let Some(i) = out[search..].find("password=") {
        let start = search + i + "password=".len();
        let stop = out[start..].find('&').map_or(out.len(), |j| start + j);
        out.replace_range(start..stop, MASK);
        search = start + MASK.len();
    }
    out
}

/// Inside `[...]` only `]` ends the address (and `[`, `%`, and what ends
/// the authority must not appear raw); `:` stays as it is.
const HOST_IN_BRACKETS: &AsciiSet = &percent_encoding::CONTROLS
    .add(b'@')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b' ')
    .add(b'[')
    .add(b']');

/// A host name outside brackets: also `:`, which would start the port.
const HOST: &AsciiSet = &HOST_IN_BRACKETS.add(b':');

fn encode_host(host: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(host, set).to_string()
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_special_characters_as_libpq_expects() {
        let url = PgUrl::new("127.0.0.1", 6432, "qbo_mirror")
            .with_user("app", Some(Secret::known("p@ss:w/rd#%?&\"x")));
        assert_eq!(
            url.reveal().unwrap(),
            "postgresql://app:p%40ss%3Aw%2Frd%23%25%3F%26%22x@127.0.0.1:6432/qbo_mirror"
        );
        assert_eq!(
            url.masked(),
            "postgresql://app:****@127.0.0.1:6432/qbo_mirror"
        );
        assert_eq!(url.to_string(), url.masked());
    }

    #[test]
    fn debug_formatting_masks_the_password() {
        let url = PgUrl::new("127.0.0.1", 6432, "qbo_mirror")
            .with_user("app", Some(Secret::known("p@ss-d3bug")));
        let shown = format!("{url:?} {url:#?}");
        assert!(!shown.contains("p@ss-d3bug"), "{shown}");
        assert!(!shown.contains("p%40ss-d3bug"), "{shown}");
    }

    #[test]
    fn keeps_unreserved_characters_and_encodes_unicode() {
        let url = PgUrl::new("db.internal", 5432, "my-db.v1_x~")
            .with_user("usér", None)
            .with_param("sslmode", "require");
        assert_eq!(
            url.reveal().unwrap(),
            "postgresql://us%C3%A9r@db.internal:5432/my-db.v1_x~?sslmode=require"
        );
    }

    #[test]
    fn jdbc_puts_the_credentials_among_the_parameters() {
        let mut url = PgUrl::new("h", 6432, "d")
            .with_user("app", Some(Secret::known("p&w")))
            .with_param("sslmode", "require");
        url.scheme = "jdbc:postgresql".into();
        url.jdbc = true;
        assert_eq!(
            url.reveal().unwrap(),
            "jdbc:postgresql://h:6432/d?user=app&password=p%26w&sslmode=require"
        );
        assert_eq!(
            url.masked(),
            "jdbc:postgresql://h:6432/d?user=app&password=****&sslmode=require"
        );
    }

    #[test]
    fn masks_passwords_in_urls_written_by_hand() {
        assert_eq!(
            mask_in_text("postgresql://u:s3cr@t@h:5/d"),
            "postgresql://u:****@h:5/d"
        );
        assert_eq!(mask_in_text("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            mask_in_text("jdbc:postgresql://h/d?user=u&password=x&ssl=1"),
            "jdbc:postgresql://h/d?user=u&password=****&ssl=1"
        );
        assert_eq!(mask_in_text("host=h password=x"), "host=h password=****");
    }

    #[test]
    fn one_host_rule() {
        for good in [
            "db.example",
            "10.0.0.1",
            "::1",
            "fe80::1%eth0",
            "my_host-1",
            "bücher.example",
        ] {
            assert_eq!(host_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "a,b",
            "a b",
            "a/b",
            "a?b",
            "a#b",
            "a@b",
            "a\0b",
            "a\u{1b}[2J",
            "a\nb",
            "a\u{2028}b",
            "a\u{202e}b",
            "a\u{200b}b",
            "[::1]",
        ] {
            let problem = host_problem(bad).expect(bad);
            assert!(
                !problem.chars().any(|c| c.is_control()
                    || c == '\u{2028}'
                    || c == '\u{202e}'
                    || c == '\u{200b}'),
                "shown raw: {problem:?}"
            );
        }
        assert!(
            host_problem(&"a".repeat(254))
                .unwrap()
                .contains("254 bytes")
        );
    }

    #[test]
    fn hosts_only_some_machines_reach() {
        for (host, reach) in [
            ("127.0.0.1", Some(Reach::ThisMachine)),
            ("127.8.9.10", Some(Reach::ThisMachine)),
            ("::1", Some(Reach::ThisMachine)),
            ("[::1]", Some(Reach::ThisMachine)),
            ("::ffff:127.0.0.1", Some(Reach::ThisMachine)),
            ("localhost", Some(Reach::ThisMachine)),
            ("LocalHost.", Some(Reach::ThisMachine)),
            ("db.localhost", Some(Reach::ThisMachine)),
            ("0.0.0.0", Some(Reach::ThisMachine)),
            ("10.1.2.3", Some(Reach::PrivateNetwork)),
            ("172.16.0.1", Some(Reach::PrivateNetwork)),
            ("172.31.255.255", Some(Reach::PrivateNetwork)),
            ("192.168.1.1", Some(Reach::PrivateNetwork)),
            ("fd12:3456::1", Some(Reach::PrivateNetwork)),
            ("169.254.1.1", Some(Reach::LinkLocal)),
            ("fe80::1%eth0", Some(Reach::LinkLocal)),
            ("/var/run/postgresql", Some(Reach::UnixSocket)),
            ("172.32.0.1", None),
            ("8.8.8.8", None),
            ("2001:db8::1", None),
            ("db.example.com", None),
            ("localhost.example.com", None),
        ] {
            assert_eq!(host_reach(host), reach, "{host}");
        }
    }

    #[test]
    fn brackets_ipv6_hosts() {
        assert_eq!(
            PgUrl::new("::1", 6432, "d").masked(),
            "postgresql://[::1]:6432/d"
        );
    }

    #[test]
    fn escapes_brackets_and_zone_ids_in_hosts() {
        // Found with the url invariant: `[x` was read as an unterminated IPv6 address,
        // and a zone id's `%` as a (bad) percent escape.
        assert_eq!(PgUrl::new("[x", 1, "d").masked(), "postgresql://%5Bx:1/d");
        assert_eq!(
            PgUrl::new("fe80::1%eth0", 1, "d").masked(),
            "postgresql://[fe80::1%25eth0]:1/d"
        );
        assert_eq!(
            PgUrl::new("a]:b", 1, "d").masked(),
            "postgresql://[a%5D:b]:1/d"
        );
    }

    #[test]
    fn names_what_libpq_cannot_read_back() {
        assert_eq!(PgUrl::new("h", 1, "d").problem(), None);
        assert!(PgUrl::new("a,b", 1, "d").problem().unwrap().contains(','));
        assert!(PgUrl::new("", 1, "d").problem().is_some());
        assert!(PgUrl::new("h", 0, "d").problem().is_some());
        assert!(PgUrl::new("h", 1, "").problem().is_some());
        assert!(
            PgUrl::new("h", 1, "d")
                .with_user("u", Some(Secret::known("a\0b")))
                .problem()
                .unwrap()
                .contains("NUL")
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let url = PgUrl::new("h", 1, "d").with_user("u", Some(Secret::known("hunter2")));
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
