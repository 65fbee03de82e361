//! Reproducible pseudo-random numbers: SplitMix64 over a counter. Used wherever a scenario seed
//! must give the same run twice (MatchingIDs, fault probabilities, retry jitter); nothing here
//! is for secrets.

/// The SplitMix64 output for `z`.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A number in [0, 1) from `seed`.
pub(crate) fn unit(seed: u64) -> f64 {
    (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_reproducible() {
        for s in 0..1000 {
            let r = unit(s);
            assert!((0.0..1.0).contains(&r));
            assert_eq!(r, unit(s));
        }
        assert_ne!(splitmix64(1), splitmix64(2));
    }
}
