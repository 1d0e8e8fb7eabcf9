//! An independent reading of PostgreSQL connection URIs, following libpq's
//! `conninfo_uri_parse_options` and `conninfo_uri_decode` (fe-connect.c)
//! step by step, so the URL checks do not trust poolwright's own encoder.
//!
//! <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>

/// What libpq takes out of a URI. Absent and empty are the same to libpq
/// (it stores only non-empty user, password, host, port and dbname).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uri {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Comma-separated when several hosts are given.
    pub host: Option<String>,
    pub port: Option<String>,
    pub dbname: Option<String>,
    pub params: Vec<(String, String)>,
}

/// `%XX` decoding as libpq does it: a `%` must be followed by two hex
/// digits, and `%00` is refused (the value becomes a C string).
pub fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoded token in {s:?}"))?;
            if hex == 0 {
                return Err(format!("forbidden value %00 in {s:?}"));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("not UTF-8 after decoding: {s:?}"))
}

fn non_empty(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        decode(s).map(Some)
    }
}

/// Parses `postgresql://` or `postgres://` URIs.
pub fn parse(uri: &str) -> Result<Uri, String> {
    let rest = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
        .ok_or_else(|| format!("no postgresql:// prefix in {uri:?}"))?;
    let mut out = Uri::default();

    // User info ends at the first `@`, looked for only before the first `/`.
    let mut p = rest;
    let userinfo_end = p.find(['@', '/']);
    if let Some(at) = userinfo_end.filter(|&i| p.as_bytes()[i] == b'@') {
        let userinfo = &p[..at];
        let (user, password) = match userinfo.split_once(':') {
            Some((u, pw)) => (u, Some(pw)),
            None => (userinfo, None),
        };
        out.user = non_empty(user)?;
        if let Some(pw) = password {
            out.password = non_empty(pw)?;
        }
        p = &p[at + 1..];
    }

    // Hosts and ports, comma-separated; `[...]` holds an IPv6 address.
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut prevchar;
    loop {
        let host;
        if let Some(inner) = p.strip_prefix('[') {
            let close = inner
                .find(']')
                .ok_or("end of string reached when looking for matching \"]\"")?;
            if close == 0 {
                return Err("IPv6 host address may not be empty".into());
            }
            host = &inner[..close];
            p = &inner[close + 1..];
            if !p.is_empty() && !p.starts_with([':', '/', '?', ',']) {
                return Err(format!("unexpected character after IPv6 host in {uri:?}"));
            }
        } else {
            let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            host = &p[..end];
            p = &p[end..];
        }
        hosts.push_str(host);
        prevchar = p.chars().next();
        if prevchar.is_some() {
            p = &p[1..];
        }
        if prevchar == Some(':') {
            let end = p.find(['/', '?', ',']).unwrap_or(p.len());
            ports.push_str(&p[..end]);
            p = &p[end..];
            prevchar = p.chars().next();
            if prevchar.is_some() {
                p = &p[1..];
            }
        }
        if prevchar == Some(',') {
            hosts.push(',');
            ports.push(',');
        } else {
            break;
        }
    }
    out.host = non_empty(&hosts)?;
    out.port = non_empty(&ports)?;

    // After `/`: the database name, up to `?`.
    if prevchar == Some('/') {
        let end = p.find('?').unwrap_or(p.len());
        out.dbname = non_empty(&p[..end])?;
        prevchar = p[end..].chars().next();
        p = if end < p.len() { &p[end + 1..] } else { "" };
    }

    // After `?`: key=value pairs separated by `&`, each side decoded.
    if prevchar == Some('?') {
        // libpq stops at the end of the string, so a trailing `&` is fine.
        while !p.is_empty() {
            let end = p.find('&').unwrap_or(p.len());
            let pair = &p[..end];
            p = if end < p.len() { &p[end + 1..] } else { "" };
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("missing key/value separator \"=\" in {pair:?}"))?;
            if value.contains('=') {
                return Err(format!("extra key/value separator \"=\" in {pair:?}"));
            }
            out.params.push((decode(key)?, decode(value)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_examples() {
        let uri =
            parse("postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp")
                .unwrap();
        assert_eq!(uri.user.as_deref(), Some("other"));
        assert_eq!(uri.host.as_deref(), Some("localhost"));
        assert_eq!(uri.dbname.as_deref(), Some("otherdb"));
        assert_eq!(
            uri.params,
            vec![
                ("connect_timeout".into(), "10".into()),
                ("application_name".into(), "myapp".into())
            ]
        );
        let multi = parse("postgresql://host1:123,host2:456/somedb").unwrap();
        assert_eq!(multi.host.as_deref(), Some("host1,host2"));
        assert_eq!(multi.port.as_deref(), Some("123,456"));
        let v6 = parse("postgresql://[2001:db8::1234]:5/d").unwrap();
        assert_eq!(v6.host.as_deref(), Some("2001:db8::1234"));
        assert_eq!(v6.port.as_deref(), Some("5"));
    }

    #[test]
    fn decodes_like_libpq() {
        assert_eq!(
            parse("postgresql://u:p%40ss@h/d")
                .unwrap()
                .password
                .as_deref(),
            Some("p@ss")
        );
        assert!(decode("%zz").is_err());
        assert!(decode("%00").is_err());
        assert!(decode("50%").is_err());
        // `@` after the first `/` is not user info.
        assert_eq!(parse("postgresql://h/d@x").unwrap().user, None);
    }
}
