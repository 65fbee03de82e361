//! Retry delays: exponential backoff with jitter, as a pure function.

use std::time::Duration;

/// The delay before attempt `attempt + 1`, after `attempt` (1-based) failed attempts.
///
/// `initial · 2^(attempt-1)`, capped at `max`, then scaled by a factor in [0.5, 1.0) drawn from
/// `jitter` (a number in [0, 1)), so that many failing notifications do not retry in lockstep.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A number in [0, 1) from `seed`: SplitMix64, so runs are reproducible.
pub fn unit_random(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
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

    #[test]
    fn random_is_in_range_and_reproducible() {
        for s in 0..1000 {
            let r = unit_random(s);
            assert!((0.0..1.0).contains(&r));
            assert_eq!(r, unit_random(s));
        }
    }
}
