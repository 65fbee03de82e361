//! Latency samples and their percentiles.
//!
//! Every sample is kept (as microseconds in a `u32`), so percentiles are exact rather than
//! bucketed: a 30-second run at 30k requests/s is under 4 MB of samples.

use std::time::Duration;

/// Latencies of one run, in microseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples(Vec<u32>);

impl Samples {
    pub(crate) fn record(&mut self, latency: Duration) {
        self.0
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub(crate) fn merge(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The summary; sorts the samples.
    pub(crate) fn summary(mut self) -> Summary {
        self.0.sort_unstable();
        let at = |q: f64| -> u32 {
            if self.0.is_empty() {
                return 0;
            }
            // Nearest-rank: the smallest sample with at least q of all samples at or below it.
            let rank = (q * self.0.len() as f64).ceil() as usize;
            self.0[rank.clamp(1, self.0.len()) - 1]
        };
        Summary {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: self.0.last().copied().unwrap_or(0),
        }
    }
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) p50: u32,
    pub(crate) p90: u32,
    pub(crate) p99: u32,
    pub(crate) p999: u32,
    pub(crate) max: u32,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {} µs  p90 {} µs  p99 {} µs  p99.9 {} µs  max {} µs",
            self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: impl IntoIterator<Item = u64>) -> Samples {
        let mut s = Samples::default();
        for v in values {
            s.record(Duration::from_micros(v));
        }
        s
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = samples(1..=1000).summary();
        assert_eq!(
            s,
            Summary {
                p50: 500,
                p90: 900,
                p99: 990,
                p999: 999,
                max: 1000
            }
        );
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_zero() {
        let s = samples([7]).summary();
        assert_eq!((s.p50, s.p999, s.max), (7, 7, 7));
        assert_eq!(Samples::default().summary(), Summary::default());
    }

    #[test]
    fn merged_runs_count_together() {
        let mut a = samples([1, 2]);
        a.merge(samples([3, 4]));
        assert_eq!(a.len(), 4);
        assert_eq!(a.summary().max, 4);
    }
}
