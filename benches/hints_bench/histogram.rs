//! A log-linear latency histogram (64 steps per power of two, about 1.6 % resolution) that
//! workers fill and the coordinator merges, so percentiles over all clients are exact to a
//! bucket rather than averaged.
//!
//! Why 64 steps: the targets compare hintsd's p50 with the echo's within 15 %, and at 16 steps
//! (6 % a bucket, 128 ns just under 4 µs and 256 ns just over) two medians a few percent apart
//! could come out anywhere from 1.13x to 1.23x of each other.

use serde::{Deserialize, Serialize};

/// Bits of a latency below its leading one that pick the step inside its power of two.
const STEP_BITS: u32 = 6;
/// Linear steps inside each power of two.
const STEPS_PER_OCTAVE: u32 = 1 << STEP_BITS;
/// Octaves covered past the first exact ones: up to about 2^45 ns (nine hours).
const OCTAVES: u32 = 40;
const BUCKETS: usize = (STEPS_PER_OCTAVE * OCTAVES) as usize;

/// Counts of latencies in nanoseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: vec![0; BUCKETS], total: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        let index = bucket_of(nanos.max(1));
        self.counts[index] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency below which `quantile` of the samples fall (bucket upper bound), in ns.
    pub fn quantile_nanos(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(index);
            }
        }
        upper_bound(BUCKETS - 1)
    }
}

fn bucket_of(nanos: u64) -> usize {
    let octave = 63 - nanos.leading_zeros();
    if octave < STEP_BITS {
        return nanos as usize;
    }
    let step = ((nanos >> (octave - STEP_BITS)) & u64::from(STEPS_PER_OCTAVE - 1)) as u32;
    (((octave - STEP_BITS + 1) * STEPS_PER_OCTAVE + step) as usize).min(BUCKETS - 1)
}

fn upper_bound(index: usize) -> u64 {
    let index = index as u32;
    if index < STEPS_PER_OCTAVE {
        return u64::from(index);
    }
    let octave = index / STEPS_PER_OCTAVE + STEP_BITS - 1;
    let step = u64::from(index % STEPS_PER_OCTAVE);
    ((u64::from(STEPS_PER_OCTAVE) + step + 1) << (octave - STEP_BITS)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_within_a_bucket_of_the_truth() {
        let mut h = Histogram::default();
        for nanos in 1..=10_000u64 {
            h.record(nanos * 1000);
        }
        for (q, truth) in [(0.5, 5_000_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile_nanos(q) as f64;
            assert!((got - truth).abs() / truth < 0.02, "q{q}: {got} vs {truth}");
        }
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for nanos in [1u64, 2, 15, 16, 17, 31, 32, 63, 64, 65, 127, 128, 1000, 4095, 4096, 4097, 1 << 20, 1 << 39] {
            let b = bucket_of(nanos);
            assert!(b >= last);
            assert!(upper_bound(b) >= nanos, "{nanos} above its bucket's bound");
            assert!(b == 0 || upper_bound(b - 1) < nanos, "{nanos} belongs in an earlier bucket");
            last = b;
        }
    }

    #[test]
    fn medians_four_percent_apart_are_told_apart_just_past_four_microseconds() {
        // 4.10 and 4.27 µs: at 16 steps an octave both fell in one 256 ns bucket.
        let median_of = |nanos: u64| {
            let mut h = Histogram::default();
            (0..100).for_each(|_| h.record(nanos));
            h.quantile_nanos(0.5) as f64
        };
        let ratio = median_of(4_270) / median_of(4_100);
        assert!((ratio - 4_270.0 / 4_100.0).abs() < 0.02, "ratio {ratio}");
    }
}
