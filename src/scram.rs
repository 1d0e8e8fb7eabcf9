//! SCRAM-SHA-256 verifiers (and md5 hashes) as PostgreSQL stores them.
//!
//! PgBouncer can pass a client's SCRAM login through to the server only when
//! its userlist.txt holds the very verifier the server stores, byte for byte.
//! So we compute the verifier here (RFC 5802/7677, PostgreSQL's layout) and
//! `apply` installs the same string on the server. A verifier carries a
//! random salt: [`matches`] lets callers keep an existing verifier while the
//! password still fits it, so re-renders produce identical files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default iteration count (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// PostgreSQL's salt length in bytes.
pub const SALT_LEN: usize = 16;
/// The most iterations poolwright computes for a verifier it reads back
/// (from a file on the host or a server's challenge): about a second of CPU.
/// A verifier claiming 2,000,000,000 would otherwise take hours to check.
/// OWASP's 2023 advice for PBKDF2-SHA256 (600,000) is still below it.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// A fresh random salt.
pub fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt);
    salt
}

/// The password bytes PostgreSQL feeds to PBKDF2: SASLprep-normalised when
/// that succeeds, else the raw bytes (as PostgreSQL does).
fn prepared(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.as_bytes().to_vec(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The verifier `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
pub fn verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(&prepared(password), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

/// The salt and iteration count of a verifier, if `text` is one.
fn parse(text: &str) -> Option<(Vec<u8>, u32)> {
    let rest = text.strip_prefix("SCRAM-SHA-256$")?;
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored, server) = keys.split_once(':')?;
    if B64.decode(stored).ok()?.len() != 32 || B64.decode(server).ok()?.len() != 32 {
        return None;
    }
    Some((
        B64.decode(salt).ok()?,
        iterations.parse().ok().filter(|n| *n > 0)?,
    ))
}

pub fn is_verifier(text: &str) -> bool {
    parse(text).is_some()
}

/// True when `verifier` was computed from `password`. A verifier with more
/// than [`MAX_ITERATIONS`] is not checked (and so never matches).
pub fn matches(verifier_text: &str, password: &str) -> bool {
    parse(verifier_text).is_some_and(|(salt, iterations)| {
        iterations <= MAX_ITERATIONS && verifier(password, &salt, iterations) == verifier_text
    })
}

/// PostgreSQL's md5 hash: `md5` + hex(md5(password + user)).
pub fn md5_secret(user: &str, password: &str) -> String {
    let digest = md5::Md5::digest(format!("{password}{user}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("md5{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from reference/providers.md 1.7 (RFC 7677's salt and password).
    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC_VERIFIER: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

    #[test]
    fn matches_the_rfc_7677_vector() {
        let salt = B64.decode(RFC_SALT).unwrap();
        assert_eq!(verifier("pencil", &salt, 4096), RFC_VERIFIER);
    }

    #[test]
    fn recognises_its_own_password() {
        assert!(matches(RFC_VERIFIER, "pencil"));
        assert!(!matches(RFC_VERIFIER, "pencil2"));
        assert!(!matches("md545f2603610af569b6155c45067268c6b", "1234"));
        assert!(!matches("SCRAM-SHA-256$4096:bad$x:y", "pencil"));
        let fresh = verifier("p@ss:w/rd#%?&\"x", &random_salt(), DEFAULT_ITERATIONS);
        assert!(matches(&fresh, "p@ss:w/rd#%?&\"x"));
        assert!(is_verifier(&fresh));
    }

    #[test]
    fn a_huge_iteration_count_is_not_computed() {
        // 2,000,000,000 iterations would take hours; refusing is instant.
        let hostile = RFC_VERIFIER.replace("$4096:", "$2000000000:");
        let started = std::time::Instant::now();
        assert!(!matches(&hostile, "pencil"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn random_salts_differ() {
        assert_ne!(random_salt(), random_salt());
    }

    #[test]
    fn md5_matches_the_pgbouncer_docs() {
        assert_eq!(
            md5_secret("admin", "1234"),
            "md545f2603610af569b6155c45067268c6b"
        );
    }
}
