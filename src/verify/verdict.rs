//! The headline of a verify report: is the app pooled, and why (or why
//! not), from the checks below it.

use serde::Serialize;

use super::{Check, Status};

/// The headline: is the app pooled?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Clients share server connections within the pool.
    Pooled,
    /// The pooled URL gives each client a server connection of its own.
    NotPooled,
    /// The app cannot get a connection through the pooler, or soon will not.
    Broken,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Pooled => "POOLED",
            State::NotPooled => "NOT POOLED",
            State::Broken => "BROKEN",
        }
    }
}

/// The headline verdict and the reason, in one line.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub state: State,
    pub why: String,
}

/// The first clause of a check's detail, for the headline.
fn first_clause(detail: &str) -> &str {
    detail.split(';').next().unwrap_or(detail).trim()
}

/// The headline from the checks: broken when the app cannot log in or
/// PgBouncer cannot open new server connections, not pooled when clients
/// get server backends of their own, else pooled (naming what else fails).
pub fn verdict(checks: &[Check]) -> Verdict {
    let find = |name: &str| checks.iter().find(|c| c.check == name);
    let failed = |name: &str| find(name).is_some_and(|c| c.status == Status::Fail);
    let why = |text: &str, see: &str| Verdict {
        state: State::Broken,
        why: format!("{text} (see {see})"),
    };
    if failed("login") {
        return why("the app cannot log in through the pooled URL", "login");
    }
    if failed("server login") {
        return why(
            "PgBouncer cannot open new server connections, so the pool fails as its open ones close",
            "server login",
        );
    }
    let own = |c: &Check| c.status == Status::Fail && c.detail.contains("of its own");
    if let Some(c) = ["pooling", "concurrency"]
        .iter()
        .filter_map(|n| find(n))
        .find(|c| own(c))
    {
        return Verdict {
            state: State::NotPooled,
            why: format!(
                "{}: each client gets a server backend of its own (see {})",
                first_clause(&c.detail),
                c.check
            ),
        };
    }
    let mut why = match (find("pooling"), find("concurrency")) {
        (Some(p), Some(c)) if p.status == Status::Pass => {
            format!("{}; {}", first_clause(&p.detail), first_clause(&c.detail))
        }
        (Some(p), _) => first_clause(&p.detail).to_string(),
        _ => "the login through the pooler works".to_string(),
    };
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check.as_str())
        .collect();
    if failing.is_empty() {
        why.push_str("; no check fails");
    } else {
        why.push_str(&format!(
            "; but {} check{} fail{}: {}",
            failing.len(),
            if failing.len() == 1 { "" } else { "s" },
            if failing.len() == 1 { "s" } else { "" },
            failing.join(", ")
        ));
    }
    Verdict {
        state: State::Pooled,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_the_worst_and_why() {
        let pooling = Check::pass(
            "pooling",
            "20 connections in a row were served by 1 server backend; login median 2 ms",
        );
        let crowd = Check::pass(
            "concurrency",
            "24 clients at once were served by 12 server backends; x",
        );
        let budget = Check::fail("budget", "too many", "lower them");
        let v = verdict(&[pooling.clone(), crowd.clone(), budget.clone()]);
        assert_eq!(v.state, State::Pooled);
        assert_eq!(
            v.why,
            "20 connections in a row were served by 1 server backend; 24 clients at once were served by 12 server backends; but 1 check fails: budget"
        );
        assert!(
            verdict(&[pooling.clone(), crowd.clone()])
                .why
                .ends_with("no check fails")
        );

        let own = Check::fail(
            "pooling",
            "20 connections in a row were served by 20 server backends: every connection got a server backend of its own",
            "point it",
        );
        assert_eq!(verdict(&[own, crowd.clone()]).state, State::NotPooled);

        let login = Check::fail("login", "refused", "fix");
        assert_eq!(verdict(&[login, budget]).state, State::Broken);
        let server = Check::fail("server login", "differs", "apply");
        let v = verdict(&[pooling, crowd, server]);
        assert_eq!(v.state, State::Broken);
        assert!(v.why.contains("see server login"), "{}", v.why);
    }
}
