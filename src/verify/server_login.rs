//! Can PgBouncer still open a *new* server connection for each user?
//!
//! One live server connection hides a broken server login: PgBouncer keeps
//! serving through it (a trickle, under load) while every new server login
//! fails. So verify compares what PgBouncer answers the server with, the
//! secret in userlist.txt, with what the server asks of the role: the
//! method, and for SCRAM the salt and iteration count of the verifier it
//! holds (from its challenge, no login needed). PgBouncer passes a SCRAM
//! login through only with the server's very verifier.

use std::time::Duration;

use super::Check;
use crate::providers::pgbouncer::{Target, UserlistFormat};
use crate::scram;
use crate::scram_probe::{self, Probe};

const CHECK: &str = "server login";
/// userlist.txt read back: ample for thousands of users, never gigabytes.
const MAX_USERLIST: u64 = 16 * 1024 * 1024;

/// Why a user's next server login would fail, if it would.
fn judge(user: &str, secret: &str, password: Option<&str>, probe: &Probe) -> Result<(), String> {
    let is_scram = scram::is_verifier(secret);
    let is_md5 = secret.starts_with("md5") && secret.len() == 35;
    match probe {
        Probe::Scram(server) if is_scram => {
            if !scram_probe::same_verifier(secret, server) {
                return Err(format!(
                    "the server holds a different SCRAM verifier for `{user}` than userlist.txt \
                     (another salt or iteration count): a later apply elsewhere, or a password reset, replaced it. \
                     PgBouncer's open server connections keep serving, but every new server login fails"
                ));
            }
            if let Some(password) = password
                && !scram::matches(secret, password)
            {
                return Err(format!(
                    "userlist.txt's verifier for `{user}` does not fit the password in poolwright.yaml"
                ));
            }
            Ok(())
        }
        Probe::Scram(_) if is_md5 => Err(format!(
            "md5 lock-out: userlist.txt holds an md5 hash for `{user}`, but the server asks SCRAM-SHA-256 of it; \
             PgBouncer cannot log in (`wrong password type` once its old connections end), and direct logins with \
             an md5-stored password fail too"
        )),
        Probe::Md5 if is_scram => Err(format!(
            "the server asks md5 of `{user}`, which PgBouncer cannot answer from the SCRAM verifier in userlist.txt"
        )),
        Probe::Md5 if is_md5 => match password {
            Some(p) if scram::md5_secret(user, p) != secret => Err(format!(
                "userlist.txt's md5 hash for `{user}` does not fit the password in poolwright.yaml"
            )),
            _ => Ok(()),
        },
        Probe::Cleartext if is_scram || is_md5 => Err(format!(
            "the server asks a clear-text password of `{user}`, which PgBouncer can give only from `userlist: plain`"
        )),
        Probe::OtherMethod(what) => Err(format!(
            "the server asks {what} of `{user}`, which PgBouncer cannot answer"
        )),
        _ => Ok(()),
    }
}

/// The check for every user with a pool, against the userlist.txt on this
/// host (verify runs where PgBouncer does, or says it could not look).
pub async fn check(target: &Target, timeout: Duration) -> Check {
    if target.userlist == UserlistFormat::Plain {
        return Check::pass(
            CHECK,
            "userlist.txt holds the passwords themselves: PgBouncer answers whatever the server asks",
        );
    }
    let path = std::path::Path::new(&target.auth_file);
    let text = match crate::files::read_regular_capped(path, MAX_USERLIST) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            return Check::warn(
                CHECK,
                format!(
                    "not checked: cannot read {} here ({e}), so verify cannot tell whether PgBouncer can still open server connections",
                    crate::diagnostic::printable(&target.auth_file)
                ),
                Some(
                    "run verify on the PgBouncer host, as a user that may read userlist.txt".into(),
                ),
            );
        }
    };
    let entries = match crate::userlist::parse(&text) {
        Ok(entries) => entries,
        Err(e) => {
            return Check::fail(
                CHECK,
                format!("{} cannot be read as a userlist: {e}", target.auth_file),
                format!("`poolwright apply {}` rewrites it", target.name),
            );
        }
    };
    let database = target
        .database(&target.url_database)
        .map_or(target.url_database.clone(), |d| d.dbname.clone());
    let mut good = Vec::new();
    let mut problems = Vec::new();
    // Console-only users never log in to PostgreSQL (their role need not
    // exist there): only the users with pools are checked.
    for user in target.server_users() {
        let Some(entry) = entries.iter().find(|e| e.user == user.name) else {
            problems.push(format!("`{}` is not in {}", user.name, target.auth_file));
            continue;
        };
        let (host, port, name, db) = (
            target.upstream.host.clone(),
            target.upstream.port,
            user.name.clone(),
            database.clone(),
        );
        let probe = tokio::task::spawn_blocking(move || {
            scram_probe::probe(&host, port, &name, &db, timeout)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let probe = match probe {
            Ok(p) => p,
            Err(e) => {
                return Check::warn(
                    CHECK,
                    format!(
                        "not checked: the server at {}:{} did not say what it asks of `{}`: {e}",
                        target.upstream.host, target.upstream.port, user.name
                    ),
                    None,
                );
            }
        };
        match judge(
            &user.name,
            &entry.secret,
            user.password.expose().ok(),
            &probe,
        ) {
            Ok(()) => good.push(format!("`{}` ({})", user.name, probe.describe())),
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        Check::pass(
            CHECK,
            format!(
                "userlist.txt answers what the server asks for {}: new server connections can log in",
                good.join(", ")
            ),
        )
    } else {
        Check::fail(
            CHECK,
            problems.join("; "),
            format!(
                "`poolwright apply {}` on this host: userlist.txt takes the server's own verifier and PgBouncer reloads",
                target.name
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram_probe::ServerScram;

    const RFC_VERIFIER: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

    fn rfc_server() -> Probe {
        use base64::Engine as _;
        Probe::Scram(ServerScram {
            salt: base64::engine::general_purpose::STANDARD
                .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
                .unwrap(),
            iterations: 4096,
        })
    }

    #[test]
    fn the_servers_own_verifier_passes_and_any_other_fails() {
        assert_eq!(
            judge("u", RFC_VERIFIER, Some("pencil"), &rfc_server()),
            Ok(())
        );
        let other = Probe::Scram(ServerScram {
            salt: vec![7; 16],
            iterations: 4096,
        });
        let why = judge("u", RFC_VERIFIER, Some("pencil"), &other).unwrap_err();
        assert!(why.contains("different SCRAM verifier for `u`"), "{why}");
        let why = judge("u", RFC_VERIFIER, Some("other"), &rfc_server()).unwrap_err();
        assert!(why.contains("does not fit the password"), "{why}");
    }

    #[test]
    fn an_md5_hash_where_the_server_asks_scram_is_the_lock_out() {
        let md5 = scram::md5_secret("u", "pencil");
        let why = judge("u", &md5, Some("pencil"), &rfc_server()).unwrap_err();
        assert!(why.starts_with("md5 lock-out"), "{why}");
        assert_eq!(judge("u", &md5, Some("pencil"), &Probe::Md5), Ok(()));
        assert!(judge("u", RFC_VERIFIER, None, &Probe::Md5).is_err());
    }
}
