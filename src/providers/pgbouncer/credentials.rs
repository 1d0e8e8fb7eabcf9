//! One verifier per role, everywhere: how `apply` keeps PgBouncer's
//! userlist.txt and the upstream server holding the same secret without
//! breaking any other pooler, or any direct login, that uses the role.
//!
//! PgBouncer passes a client's SCRAM login through only when userlist.txt
//! holds the very verifier the server stores. A verifier carries a random
//! salt, so two hosts (or two targets, or a re-render elsewhere) that each
//! made their own and stored it with ALTER ROLE would take turns breaking
//! each other's server logins. So [`learn`] first asks the server what it
//! holds (the salt and iteration count in its SCRAM challenge, no privilege
//! needed) and, when that verifier fits the password, userlist.txt takes it
//! and the server is left alone. Only where the server holds no SCRAM
//! verifier for this password does [`install`] store one, and says what that
//! means for other poolers.
//!
//! The same look decides whether `userlist: md5` is safe: an md5 hash stored
//! on a server that asks SCRAM of the role would lock the role out, direct
//! logins included, so that is refused before anything changes.

use std::collections::HashMap;
use std::time::Duration;

use super::render::RenderedFile;
use super::{Target, User, UserlistFormat};
use crate::error::Error;
use crate::scram;
use crate::scram_probe::{self, Probe};

/// How long each step with the server may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `apply` does about one role's secret on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The server already holds the secret userlist.txt holds.
    AlreadyStored,
    /// The server holds a verifier that fits the password (proved by a
    /// login): userlist.txt takes it, the server is not changed.
    Adopted,
    /// The server lets the role in without a password: nothing to store.
    NotNeeded,
    /// Store userlist.txt's secret with ALTER ROLE, for this reason.
    Store { why: String },
}

/// One role and its step.
#[derive(Debug, Clone)]
pub struct RoleStep {
    pub user: String,
    pub step: Step,
}

/// What [`learn`] found: the secrets userlist.txt should hold (user →
/// secret) and the step for each role.
#[derive(Debug, Default)]
pub struct Learned {
    pub known: HashMap<String, String>,
    pub steps: Vec<RoleStep>,
}

fn where_(target: &Target) -> String {
    format!("{}:{}", target.upstream.host, target.upstream.port)
}

fn login_database(target: &Target) -> String {
    target
        .database(&target.url_database)
        .map_or(target.url_database.clone(), |d| d.dbname.clone())
}

/// Logs in to the upstream as `user` with its own password (TLS when the
/// target's PgBouncer expects it of the server), proving the password is
/// the role's current one. With SCRAM that also proves the server's
/// verifier is exactly the one computed from the password, salt and count.
async fn login(target: &Target, user: &User) -> Result<crate::verify::connect::Session, Error> {
    let database = login_database(target);
    let mut url = crate::url::PgUrl::new(&target.upstream.host, target.upstream.port, &database)
        .with_user(&user.name, Some(user.password.clone()));
    if let Some(mode) = target.text_setting("server_tls_sslmode")
        && matches!(mode, "require" | "verify-ca" | "verify-full")
    {
        url = url.with_param("sslmode", "require");
    }
    // md5 at weakest: the password itself never crosses the wire here.
    let endpoint = crate::verify::connect::Endpoint::from_url(&url)?
        .with_auth_floor(crate::verify::connect::AuthFloor::Md5);
    crate::verify::connect::connect(&endpoint, STEP_TIMEOUT)
        .await
        .map_err(|e| {
            Error::message(format!(
                "cannot log in to {}/{database} as `{}`: {e}",
                where_(target),
                user.name
            ))
            .with_hint(
                "apply logs in as each user with the password from poolwright.yaml; it must be the role's current password. \
                 With `userlist: plain` apply leaves the server alone",
            )
        })
}

/// Whether `userlist: md5` may store an md5 hash for the role, given what
/// the server asks of it.
fn md5_refusal(target: &Target, user: &User, probe: &Probe) -> Option<Error> {
    let Probe::Scram(_) = probe else {
        return None;
    };
    Some(
        Error::message(format!(
            "`userlist: md5` would lock `{}` out: the server at {} asks SCRAM-SHA-256 of it, \
             and an md5 hash stored there fails every login as `{}` where pg_hba.conf says scram-sha-256 \
             (PostgreSQL's default): direct logins at once, PgBouncer's after its next restart (`wrong password type`). \
             Nothing was changed",
            user.name,
            where_(target),
            user.name
        ))
        .with_hint(
            "remove `userlist: md5` (the default `scram` passes SCRAM logins through with the server's own verifier, \
             and md5 is deprecated since PostgreSQL 14); or, only if pg_hba.conf says md5 for this role, \
             store an md5 hash yourself first (SET password_encryption = 'md5'; ALTER ROLE ... PASSWORD ...)",
        ),
    )
}

/// Asks the server how it holds each role's secret and decides the step,
/// changing nothing. `existing` is what userlist.txt on the host holds.
pub async fn learn(target: &Target, existing: &HashMap<String, String>) -> Result<Learned, Error> {
    let mut learned = Learned {
        known: existing.clone(),
        steps: Vec::new(),
    };
    if target.userlist == UserlistFormat::Plain {
        return Ok(learned);
    }
    let database = login_database(target);
    for user in target.server_users() {
        // A missing password is reported by render, with where to set it.
        let Ok(password) = user.password.expose() else {
            continue;
        };
        let probe = scram_probe::probe(
            &target.upstream.host,
            target.upstream.port,
            &user.name,
            &database,
            STEP_TIMEOUT,
        );
        let step = match (&target.userlist, probe) {
            (UserlistFormat::Md5, Ok(probe)) => match md5_refusal(target, user, &probe) {
                Some(refusal) => return Err(refusal),
                None if probe == Probe::NoPassword => Step::NotNeeded,
                None if probe == Probe::Md5 => {
                    // An md5 challenge answered means the server holds the
                    // md5 hash of this very password (a SCRAM-stored role is
                    // always asked SCRAM): nothing to store.
                    login(target, user).await?.close().await;
                    Step::AlreadyStored
                }
                None => Step::Store {
                    why: format!("the server asks {} of it", probe.describe()),
                },
            },
            (UserlistFormat::Md5, Err(e)) => {
                return Err(Error::message(format!(
                    "cannot tell what the server at {} asks of `{}` ({e}), so `userlist: md5` cannot be checked to be safe; nothing was changed",
                    where_(target),
                    user.name
                ))
                .with_hint("an md5 hash stored on a server that asks SCRAM-SHA-256 locks the role out; make the server reachable from here, or keep `userlist: scram`"));
            }
            (_, Ok(Probe::Scram(server))) => {
                if server.iterations > scram::MAX_ITERATIONS {
                    return Err(Error::message(format!(
                        "the server at {} asks {} SCRAM iterations of `{}`, more than poolwright computes ({})",
                        where_(target),
                        server.iterations,
                        user.name,
                        scram::MAX_ITERATIONS
                    )));
                }
                let ours = existing.get(&user.name);
                if let Some(ours) = ours
                    && scram_probe::same_verifier(ours, &server)
                    && scram::matches(ours, password)
                {
                    // The salt is random: the server holds userlist.txt's
                    // own verifier, and no login is needed.
                    Step::AlreadyStored
                } else {
                    let theirs = scram::verifier(password, &server.salt, server.iterations);
                    login(target, user).await?.close().await;
                    learned.known.insert(user.name.clone(), theirs);
                    Step::Adopted
                }
            }
            (_, Ok(Probe::NoPassword)) => Step::NotNeeded,
            (_, Ok(other)) => Step::Store {
                why: format!(
                    "the server holds no SCRAM verifier for it (it asks {})",
                    other.describe()
                ),
            },
            (_, Err(e)) => Step::Store {
                why: format!("the server's verifier could not be read ({e})"),
            },
        };
        learned.steps.push(RoleStep {
            user: user.name.clone(),
            step,
        });
    }
    Ok(learned)
}

/// Quotes an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Carries out the steps: stores userlist.txt's secret where a step says
/// so, reports the others. Returns whether the server changed.
pub async fn install(
    target: &Target,
    learned: &Learned,
    userlist: &RenderedFile,
    lines: &mut Vec<String>,
) -> Result<bool, Error> {
    let text = String::from_utf8_lossy(&userlist.bytes);
    let entries = crate::userlist::parse(&text)
        .map_err(|e| Error::message(format!("rendered userlist.txt: {e}")))?;
    let what = if target.userlist == UserlistFormat::Md5 {
        "md5 hash"
    } else {
        "SCRAM verifier"
    };
    let where_ = where_(target);
    let mut changed = false;
    for RoleStep { user: name, step } in &learned.steps {
        let (Some(user), Some(entry)) = (
            target.users.iter().find(|u| &u.name == name),
            entries.iter().find(|e| &e.user == name),
        ) else {
            continue;
        };
        let why = match step {
            Step::AlreadyStored => {
                lines.push(format!(
                    "the server at {where_} already stores the {what} of `{name}`"
                ));
                continue;
            }
            Step::Adopted => {
                lines.push(format!(
                    "userlist.txt takes the SCRAM verifier the server at {where_} holds for `{name}` \
                     (it fits the password); the server is not changed, so other poolers using `{name}` keep working"
                ));
                continue;
            }
            Step::NotNeeded => {
                lines.push(format!(
                    "the server at {where_} lets `{name}` in without a password: nothing stored there"
                ));
                continue;
            }
            Step::Store { why } => why,
        };
        let secret = &entry.secret;
        let session = login(target, user).await?;
        // A verifier or md5 hash holds only base64 characters, `$`, `:` and
        // digits: safe in a literal.
        let sql = format!("ALTER ROLE {} PASSWORD '{secret}'", quote_ident(name));
        let result = session.execute(&sql).await;
        session.close().await;
        result.map_err(|e| {
            Error::message(format!(
                "cannot store the {what} of `{name}` on {where_}: {}",
                crate::diagnostic::printable(&e)
            ))
        })?;
        changed = true;
        lines.push(format!(
            "stored the {what} of role `{name}` on {where_}: {why}; a PgBouncer elsewhere whose userlist.txt \
             holds another secret for `{name}` fails new server logins until it is applied again"
        ));
    }
    Ok(changed)
}
