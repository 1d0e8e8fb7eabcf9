//! What the pooler costs: round trips of a trivial query through the pooled
//! URL against the direct one, median and p99, and the login times.
//!
//! The queries go over one open connection each, so the figures are the
//! extra hop, not the login; logins are reported apart, since a serverless
//! app pays one per request. These figures inform and never fail.

use std::time::{Duration, Instant};

use super::Check;
use super::connect::Session;

/// Times `samples` round trips of `SELECT 1` (simple protocol: no named
/// statement, so it works through any pooler mode).
pub async fn sample(session: &Session, samples: u32) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let started = Instant::now();
        session.table("SELECT 1").await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// The median (lower middle for an even count); zero when empty.
pub fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

/// Nearest-rank percentile: the smallest value with at least `p` percent
/// of the values at or below it.
pub fn percentile(times: &[Duration], p: u32) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Milliseconds with two decimals: "0.21 ms".
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The latency line from the samples of both URLs and the login times.
pub fn check(
    pooled: &[Duration],
    direct: Result<&[Duration], &str>,
    pooled_login: Duration,
    direct_login: Option<Duration>,
) -> Check {
    let (pm, p99) = (median(pooled), percentile(pooled, 99));
    let mut detail = format!(
        "SELECT 1 through the pooler: median {}, p99 {}",
        ms(pm),
        ms(p99)
    );
    match direct {
        Ok(direct) => {
            let dm = median(direct);
            detail.push_str(&format!(
                "; direct: median {}, p99 {}; the pooler adds {} per query ({} samples each)",
                ms(dm),
                ms(percentile(direct, 99)),
                ms(pm.saturating_sub(dm)),
                pooled.len()
            ));
        }
        Err(e) => detail.push_str(&format!(
            " ({} samples; direct not measured: {e})",
            pooled.len()
        )),
    }
    detail.push_str(&format!("; login: {} pooled", ms(pooled_login)));
    if let Some(d) = direct_login {
        detail.push_str(&format!(", {} direct", ms(d)));
    }
    Check::pass("latency", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_micros(*v)).collect()
    }

    #[test]
    fn median_and_p99_by_nearest_rank() {
        let times = us(&[5, 1, 4, 2, 3]);
        assert_eq!(median(&times), Duration::from_micros(3));
        assert_eq!(percentile(&times, 99), Duration::from_micros(5));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&us(&hundred), 99), Duration::from_micros(99));
        assert_eq!(median(&us(&[1, 2, 3, 4])), Duration::from_micros(2));
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(ms(Duration::from_micros(2150)), "2.15 ms");
    }

    #[test]
    fn the_line_compares_pooled_with_direct_and_never_fails() {
        let c = check(
            &us(&[300, 200, 250]),
            Ok(&us(&[100, 120, 110])),
            Duration::from_millis(3),
            Some(Duration::from_millis(9)),
        );
        assert_eq!(c.status, crate::verify::Status::Pass);
        assert_eq!(
            c.detail,
            "SELECT 1 through the pooler: median 0.25 ms, p99 0.30 ms; direct: median 0.11 ms, p99 0.12 ms; the pooler adds 0.14 ms per query (3 samples each); login: 3.00 ms pooled, 9.00 ms direct"
        );
        let alone = check(&us(&[300]), Err("refused"), Duration::from_millis(3), None);
        assert_eq!(alone.status, crate::verify::Status::Pass);
        assert!(alone.detail.contains("direct not measured: refused"));
    }
}
