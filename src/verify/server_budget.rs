//! The pools against the live server: the budget redone with the server's
//! own limits, and who holds its connection slots (PgBouncer's server
//! connections or clients that connect directly). When the server is full,
//! that attribution is the fix.

use super::connect::{ConnectError, Session};
use super::diagnose::{Situation, diagnose};
use super::{Check, Endpoints, live_budget, slots};
use crate::providers::pgbouncer::{self, budget};

/// The live budget, and who holds the server's slots: PgBouncer's server
/// connections or clients that connect directly. When the server is full,
/// that attribution is the fix, so the login check's fix points to it too
/// rather than back at verify.
pub(super) async fn budget_checks(
    b: &pgbouncer::Target,
    pooled: &Result<Session, ConnectError>,
    direct: &Result<Session, ConnectError>,
    console: Option<&Session>,
    ends: &Endpoints,
    direct_s: &Situation<'_>,
) -> Vec<Check> {
    let servers = match console {
        Some(c) => slots::read_servers(c).await.ok(),
        None => None,
    };
    // Any session on a backend of the server can list its backends: the
    // direct one, or the pooled one when the server is too full for ours.
    let holders = match (direct, pooled) {
        (Ok(s), _) => slots::read(s, servers.as_ref(), false).await.ok(),
        (_, Ok(s)) => slots::read(s, servers.as_ref(), true).await.ok(),
        _ => None,
    };
    let e = match direct {
        Ok(s) => {
            return match live_budget::read(s).await {
                Ok(limits) => {
                    let mut out = vec![live_budget::check(b, &limits)];
                    if let Some(h) = &holders {
                        out.push(slots_check(b, h, live_budget::direct_slots(b, &limits)));
                    }
                    out
                }
                Err(e) => vec![Check::warn(
                    "budget",
                    format!("cannot read the server's limits: {e}"),
                    None,
                )],
            };
        }
        Err(e) => e,
    };
    let d = diagnose(&e.text, direct_s);
    let lower = e.text.to_lowercase();
    let full = lower.contains("remaining connection slots") || lower.contains("too many clients");
    let mut detail = format!(
        "the direct URL {} failed: \"{}\" at {}: {}",
        ends.direct.masked(),
        e.text,
        e.place,
        d.cause
    );
    if !full {
        return vec![Check::warn(
            "budget",
            format!("not checked against the live server: {detail}"),
            Some(d.fix),
        )];
    }
    // A full server is the very failure the budget is about: say who fills it.
    let direct_slots = budget::compute(b).slots.map(|s| s.direct);
    let fix = match (&holders, &servers) {
        (Some(h), _) => {
            let verb = |n: u64| if n == 1 { "is" } else { "are" };
            detail.push_str(&format!(
                "; of the server's {} client backends, {} {} PgBouncer's and {} {} not: {}",
                h.total,
                h.pgbouncer,
                verb(h.pgbouncer),
                h.other_count(),
                verb(h.other_count()),
                h.describe_others()
            ));
            if h.other_count() > 0 {
                slots::fix(h, &b.name, direct_slots)
            } else {
                d.fix
            }
        }
        (None, Some(sv)) => {
            detail.push_str(&format!(
                "; PgBouncer holds {} server connection{} (SHOW SERVERS), so the other slots are held by clients that connect to the server directly",
                sv.count,
                if sv.count == 1 { "" } else { "s" }
            ));
            slots::fix(&slots::Holders::default(), &b.name, direct_slots)
        }
        (None, None) => d.fix,
    };
    vec![Check::fail("budget", detail, fix)]
}

/// The server's client backends now, PgBouncer's and the others: a warning
/// when the others outgrow the slots the budget keeps for them.
fn slots_check(b: &pgbouncer::Target, h: &slots::Holders, direct_slots: Option<u64>) -> Check {
    let others = h.other_count();
    let mut detail = format!(
        "{} client backend{} on the server: {} PgBouncer's, {others} not",
        h.total,
        if h.total == 1 { "" } else { "s" },
        h.pgbouncer
    );
    if others > 0 {
        detail.push_str(&format!(" ({})", h.describe_others()));
    }
    match direct_slots {
        Some(kept) if others > kept => Check::warn(
            "slots",
            format!(
                "{detail}: more than the {kept} slots the budget keeps for direct connections, so when the pools fill the server runs out"
            ),
            Some(slots::fix(h, &b.name, Some(kept))),
        ),
        _ => Check::pass("slots", detail),
    }
}
