//! MatchingIDs the SM-DP+ generates when ConfirmOrder carries none (SGP.22 §4.1.1, §5.3.2).
//!
//! The shape follows the spec's examples (`04386-AGYFT-A74Y8-3F815`): four groups of five
//! characters from `0-9A-Z`, about 103 bits. The sequence is SplitMix64 over a counter, so a
//! scenario with a fixed seed produces the same MatchingIDs on every run; without one the seed
//! comes from the system's random generator. Uniqueness is enforced by the store's index, not
//! here.

use std::sync::atomic::{AtomicU64, Ordering};

use ring::rand::SecureRandom;

use super::MatchingId;
use crate::rng::splitmix64;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A thread-safe MatchingID source.
#[derive(Debug)]
pub struct MatchingIdGenerator {
    seed: u64,
    counter: AtomicU64,
}

impl MatchingIdGenerator {
    /// A generator with a fixed seed, or a random one.
    pub fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            match ring::rand::SystemRandom::new().fill(&mut bytes) {
                Ok(()) => u64::from_le_bytes(bytes),
                // Uniqueness does not depend on the seed, so the time is good enough here.
                Err(_) => time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64,
            }
        });
        MatchingIdGenerator {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// How far the sequence has gone (for the state file).
    pub fn position(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// Continues the sequence from `position` (never goes back), so a restarted mock with the
    /// same seed does not hand out MatchingIDs again.
    pub fn resume_at(&self, position: u64) {
        self.counter.fetch_max(position, Ordering::Relaxed);
    }

    /// The next MatchingID.
    pub fn next_id(&self) -> MatchingId {
        let n = self.counter.fetch_add(2, Ordering::Relaxed);
        let mut bits = (u128::from(splitmix64(self.seed ^ n)) << 64)
            | u128::from(splitmix64(self.seed ^ (n + 1)));
        let mut out = String::with_capacity(23);
        for i in 0..20 {
            if i > 0 && i % 5 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
        MatchingId::from_generated(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shape_uniqueness_and_reproducibility() {
        let a = MatchingIdGenerator::new(Some(7));
        let b = MatchingIdGenerator::new(Some(7));
        let ids: Vec<_> = (0..10_000).map(|_| a.next_id()).collect();
        assert!(ids.iter().all(|id| id.as_str().len() == 23));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert_eq!(b.next_id(), ids[0]);
    }
}
