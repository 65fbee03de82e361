//! MatchingIDs the SM-DP+ generates when ConfirmOrder carries none (SGP.22 §4.1.1, §5.3.2).
//!
//! The shape follows the spec's examples (`04386-AGYFT-A74Y8-3F815`): four groups of five
//! characters from `0-9A-Z`, about 103 bits. A MatchingID is the one secret of an Activation
//! Code, so by default each one is drawn from the operating system's random source. Only a
//! scenario that asks for reproducible IDs (`matchingIdSeed`) gets a sequence: SplitMix64 over
//! a counter, the same on every run, and so predictable from one ID seen: for tests of one's
//! own, never a shared instance. Uniqueness is enforced by the store's index, not here.

use std::sync::atomic::{AtomicU64, Ordering};

use super::MatchingId;
use crate::rng::splitmix64;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A thread-safe MatchingID source.
#[derive(Debug)]
pub struct MatchingIdGenerator {
    /// `None`: every ID from the operating system's random source.
    seed: Option<u64>,
    counter: AtomicU64,
}

impl MatchingIdGenerator {
    /// A reproducible sequence for `Some(seed)`; unpredictable IDs for `None`.
    pub fn new(seed: Option<u64>) -> Self {
        MatchingIdGenerator {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// Whether the IDs are a reproducible sequence.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
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
        let mut bits = match self.seed {
            Some(seed) => {
                (u128::from(splitmix64(seed ^ n)) << 64) | u128::from(splitmix64(seed ^ (n + 1)))
            }
            None => {
                let mut bytes = [0u8; 16];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .unwrap_or_else(|_| panic!("the operating system has no randomness"));
                u128::from_be_bytes(bytes)
            }
        };
        let mut out = String::with_capacity(23);
        for i in 0..20 {
            if i > 0 && i % 5 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
        // Only `0-9A-Z` and `-`, 23 characters: a MatchingID by construction.
        out.parse()
            .unwrap_or_else(|e| panic!("the generator made an invalid MatchingID {out:?}: {e}"))
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

    #[test]
    fn without_a_seed_ids_are_unpredictable() {
        let (a, b) = (
            MatchingIdGenerator::new(None),
            MatchingIdGenerator::new(None),
        );
        let ids: HashSet<_> = (0..1000).flat_map(|_| [a.next_id(), b.next_id()]).collect();
        assert_eq!(ids.len(), 2000);
        assert!(ids.iter().all(|id| id.as_str().len() == 23));
    }
}
