//! Retry delays: exponential backoff with jitter, as a pure function.

use std::time::Duration;

/// The delay before attempt `attempt + 1`, after `attempt` (1-based) failed attempts.
///
/// `initial · 2^(attempt-1)`, capped at `max`, then scaled by a factor in [0.5, 1.0) drawn from
/// `jitter` (a number in [0, 1)), so that many failing notifications do not retry in lockstep.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        let full = |a| backoff(a, i, m, 1.0);
        assert_eq!(full(1), Duration::from_millis(100));
        assert_eq!(full(2), Duration::from_millis(200));
        assert_eq!(full(4), Duration::from_millis(800));
        assert_eq!(full(5), Duration::from_secs(1));
        assert_eq!(full(60), Duration::from_secs(1));
        assert_eq!(backoff(3, i, m, 0.0), Duration::from_millis(200));
    }
}
