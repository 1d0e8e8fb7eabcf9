//! How patient poolwright is with the networks it calls (the Supabase and
//! Neon APIs, AWS): the time one attempt may take, how often to try, the
//! backoff between tries. The defaults, or what POOLWRIGHT_HTTP_TIMEOUT,
//! _ATTEMPTS and _BACKOFF say, read here and nowhere else.

use std::time::Duration;

use crate::error::Error;

/// Seconds one attempt may take (connecting, sending, reading the answer).
pub const TIMEOUT_VAR: &str = "POOLWRIGHT_HTTP_TIMEOUT";
/// Attempts per request, the first one included.
pub const ATTEMPTS_VAR: &str = "POOLWRIGHT_HTTP_ATTEMPTS";
/// Seconds before the first retry; doubles with every further one.
pub const BACKOFF_VAR: &str = "POOLWRIGHT_HTTP_BACKOFF";

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_ATTEMPTS: u32 = 4;
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// The longest single wait between attempts, `Retry-After` included: a
/// server asking for an hour would otherwise hold the command that long.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Connecting gets at most this long, however long an attempt may take.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an API and how often to try: the defaults, or what
/// POOLWRIGHT_HTTP_TIMEOUT, _ATTEMPTS and _BACKOFF say (for slow networks,
/// and for tests that cannot wait 20 s per fault).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetPolicy {
    pub timeout: Duration,
    /// None: the default (4 for Supabase and Neon; the SDK's, or
    /// AWS_MAX_ATTEMPTS, for AWS).
    pub attempts: Option<u32>,
    /// None: the default (0.5 s for Supabase and Neon; the SDK's for AWS).
    pub backoff: Option<Duration>,
}

impl Default for NetPolicy {
    fn default() -> NetPolicy {
        NetPolicy {
            timeout: DEFAULT_TIMEOUT,
            attempts: None,
            backoff: None,
        }
    }
}

impl NetPolicy {
    /// The policy from the environment (`env` looks a variable up); an
    /// empty variable counts as unset, a bad value is an error.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<NetPolicy, Error> {
        let read = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut policy = NetPolicy::default();
        if let Some(v) = read(TIMEOUT_VAR) {
            policy.timeout = seconds_from(TIMEOUT_VAR, &v, 0.001, 3600.0)?;
        }
        if let Some(v) = read(ATTEMPTS_VAR) {
            policy.attempts = Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=20).contains(n))
                    .ok_or_else(|| bad_value(ATTEMPTS_VAR, &v, "a whole number from 1 to 20"))?,
            );
        }
        if let Some(v) = read(BACKOFF_VAR) {
            policy.backoff = Some(seconds_from(BACKOFF_VAR, &v, 0.0, 60.0)?);
        }
        Ok(policy)
    }

    /// The time connecting may take: the attempt's, up to 10 s.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.min(MAX_CONNECT_TIMEOUT)
    }
}

fn seconds_from(name: &str, value: &str, min: f64, max: f64) -> Result<Duration, Error> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= min && *s <= max)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            let range = if min > 0.0 {
                format!("above 0 and at most {max}")
            } else {
                format!("from 0 to {max}")
            };
            bad_value(
                name,
                value,
                &format!("a number of seconds {range} (like 0.5)"),
            )
        })
}

fn bad_value(name: &str, value: &str, want: &str) -> Error {
    // The value is the user's own setting, not a secret: showing it helps.
    Error::message(format!("{name} must be {want}, not `{}`", shown(value)))
        .with_hint(format!("fix or unset {name}"))
}

/// A duration for messages: "20 s", "0.5 s".
pub fn seconds(d: Duration) -> String {
    format!("{} s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The hint for an API that was too slow: where the patience is set.
pub fn slow_hint(policy_timeout: Duration) -> String {
    format!(
        "a slow network or an overloaded API: run it again, or allow more time with \
         {TIMEOUT_VAR}=SECONDS (now {}) and more tries with {ATTEMPTS_VAR}",
        seconds(policy_timeout)
    )
}

/// A value from the environment, fit for a message: printable, cut short.
fn shown(value: &str) -> String {
    const MAX: usize = 40;
    let value = crate::diagnostic::printable(value.trim());
    if value.chars().count() > MAX {
        format!("{}...", value.chars().take(MAX).collect::<String>())
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_policy_comes_from_the_environment_and_bad_values_are_refused() {
        assert_eq!(
            NetPolicy::from_env(&env_of(&[])).unwrap(),
            NetPolicy::default()
        );
        let set = NetPolicy::from_env(&env_of(&[
            (TIMEOUT_VAR, "0.25"),
            (ATTEMPTS_VAR, "2"),
            (BACKOFF_VAR, "0"),
        ]))
        .unwrap();
        assert_eq!(set.timeout, Duration::from_millis(250));
        assert_eq!(set.attempts, Some(2));
        assert_eq!(set.backoff, Some(Duration::ZERO));
        assert_eq!(set.connect_timeout(), Duration::from_millis(250));
        let slow = NetPolicy::from_env(&env_of(&[(TIMEOUT_VAR, "120")])).unwrap();
        assert_eq!(slow.connect_timeout(), Duration::from_secs(10));
        // Empty is unset (a CI variable defined but left blank).
        assert_eq!(
            NetPolicy::from_env(&env_of(&[(TIMEOUT_VAR, " ")])).unwrap(),
            NetPolicy::default()
        );
        for (var, value) in [
            (TIMEOUT_VAR, "abc"),
            (TIMEOUT_VAR, "0"),
            (TIMEOUT_VAR, "-1"),
            (TIMEOUT_VAR, "NaN"),
            (TIMEOUT_VAR, "1e9"),
            (ATTEMPTS_VAR, "0"),
            (ATTEMPTS_VAR, "1.5"),
            (ATTEMPTS_VAR, "21"),
            (BACKOFF_VAR, "-0.1"),
            (BACKOFF_VAR, "soon"),
        ] {
            let e = NetPolicy::from_env(&env_of(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("error: {var} must be "))
                    && e.contains(&format!("not `{value}`")),
                "{var}={value}: {e}"
            );
            assert!(e.contains(&format!("hint: fix or unset {var}")), "{e}");
        }
    }
}
