//! The seeded generator every random choice of a run comes from.
//!
//! SplitMix64, written out here rather than taken from a crate: a replay
//! with `--seed` must draw the same schedule on every machine and with every
//! future build, and a library generator does not promise its sequence across
//! versions.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..bound` (0 when `bound` is 0); the modulo bias is
    /// negligible at the sizes a harness draws.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A duration in `low..=high`, at millisecond resolution.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let low_ms = low.as_millis() as u64;
        let high_ms = (high.as_millis() as u64).max(low_ms);
        Duration::from_millis(low_ms + self.below(high_ms - low_ms + 1))
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = self.below(index as u64 + 1) as usize;
            items.swap(index, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_sequence() {
        let mut first = SeededRng::new(42);
        let mut second = SeededRng::new(42);
        let drawn: Vec<u64> = (0..8).map(|_| first.next_u64()).collect();
        let again: Vec<u64> = (0..8).map(|_| second.next_u64()).collect();
        assert_eq!(drawn, again);
        assert_ne!(SeededRng::new(43).next_u64(), drawn[0]);
    }

    #[test]
    fn durations_stay_within_their_bounds() {
        let mut rng = SeededRng::new(7);
        for _ in 0..1000 {
            let drawn = rng.between(Duration::from_millis(500), Duration::from_secs(5));
            assert!(drawn >= Duration::from_millis(500) && drawn <= Duration::from_secs(5));
        }
    }

    #[test]
    fn a_shuffle_keeps_every_item() {
        let mut items: Vec<u32> = (0..20).collect();
        SeededRng::new(1).shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }
}
