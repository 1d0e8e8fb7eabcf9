//! The figures of `status --watch` that are computed rather than read:
//! rates from two samples of PgBouncer's counters, and the sparkline of a
//! short history. Pure functions, so every edge (a restart that resets the
//! counters, a flat series) is tested without a server.

use std::collections::VecDeque;
use std::time::Duration;

/// How many refreshes a pool's TREND remembers.
pub const HISTORY: usize = 20;

/// One database's cumulative counters from `SHOW STATS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub xact_count: u64,
    pub query_count: u64,
    /// Microseconds spent in transactions (`total_xact_time`).
    pub xact_time_us: u64,
}

/// What happened between two samples of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Transactions per second.
    pub tps: f64,
    /// Queries per second.
    pub qps: f64,
    /// The mean time of the transactions that ended in between, in
    /// milliseconds; None when none ended (0 ms would claim they were fast).
    pub avg_xact_ms: Option<f64>,
}

/// The rates between `before` and `after`, taken `elapsed` apart. None
/// when a counter went down: PgBouncer restarted (or another process of
/// `processes: N` answered), and a difference across that is no rate at
/// all, least of all a negative one. None too for no time elapsed.
pub fn rates(before: &Counters, after: &Counters, elapsed: Duration) -> Option<Rates> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    let xacts = after.xact_count.checked_sub(before.xact_count)?;
    let queries = after.query_count.checked_sub(before.query_count)?;
    let time_us = after.xact_time_us.checked_sub(before.xact_time_us)?;
    Some(Rates {
        tps: xacts as f64 / secs,
        qps: queries as f64 / secs,
        avg_xact_ms: (xacts > 0).then(|| time_us as f64 / xacts as f64 / 1000.0),
    })
}

/// A bounded history of one figure, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History(VecDeque<u64>);

impl History {
    pub fn push(&mut self, value: u64) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(value);
    }

    pub fn values(&self) -> Vec<u64> {
        self.0.iter().copied().collect()
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One bar per value, scaled from 0 (▁) to the series' maximum (█).
/// Scaled from 0, not from the minimum: a pool where 9 or 10 clients wait
/// all along is full, and must not read like one that swings from 0 to 10.
/// Any value above 0 gets at least ▂, so one waiting client among many
/// refreshes of none still shows.
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                return BARS[0];
            }
            let top = (BARS.len() - 1) as u128;
            // Rounded to the nearest bar, in u128 so no value overflows.
            let i = (u128::from(v) * top * 2 + u128::from(max)) / (u128::from(max) * 2);
            BARS[(i as usize).clamp(1, BARS.len() - 1)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(xact_count: u64, query_count: u64, xact_time_us: u64) -> Counters {
        Counters {
            xact_count,
            query_count,
            xact_time_us,
        }
    }

    #[test]
    fn rates_come_from_the_difference_of_two_samples() {
        let r = rates(
            &counters(100, 300, 1_000_000),
            &counters(150, 400, 1_500_000),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(r.tps, 25.0);
        assert_eq!(r.qps, 50.0);
        // 500 ms over 50 transactions.
        assert_eq!(r.avg_xact_ms, Some(10.0));
    }

    #[test]
    fn an_idle_interval_has_no_average_transaction_time() {
        let c = counters(7, 9, 1234);
        let r = rates(&c, &c, Duration::from_millis(500)).unwrap();
        assert_eq!((r.tps, r.qps, r.avg_xact_ms), (0.0, 0.0, None));
    }

    #[test]
    fn a_counter_reset_is_no_rate_never_a_negative_one() {
        let before = counters(1_000, 2_000, 9_000_000);
        for after in [
            counters(3, 2_500, 9_500_000),
            counters(1_100, 5, 9_500_000),
            counters(1_100, 2_500, 10),
            counters(0, 0, 0),
        ] {
            assert_eq!(
                rates(&before, &after, Duration::from_secs(1)),
                None,
                "{after:?}"
            );
        }
        assert_eq!(
            rates(&before, &before, Duration::ZERO),
            None,
            "no time elapsed"
        );
    }

    #[test]
    fn sparklines_scale_from_zero_to_the_maximum() {
        assert_eq!(sparkline(&[0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[0, 14, 7]), "▁█▅");
        // One waiting client among many is still seen.
        assert_eq!(sparkline(&[0, 1, 100]), "▁▂█");
        assert_eq!(sparkline(&[u64::MAX, 0]), "█▁");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn a_constant_series_is_a_flat_line() {
        assert_eq!(sparkline(&[0; 5]), "▁▁▁▁▁");
        // Clients waiting at every refresh: the pool is full all along.
        assert_eq!(sparkline(&[4; 5]), "█████");
    }

    #[test]
    fn history_keeps_the_last_refreshes() {
        let mut h = History::default();
        for v in 0..(HISTORY as u64 + 5) {
            h.push(v);
        }
        let values = h.values();
        assert_eq!(values.len(), HISTORY);
        assert_eq!(values.first(), Some(&5));
        assert_eq!(values.last(), Some(&(HISTORY as u64 + 4)));
    }
}
