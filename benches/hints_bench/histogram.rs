//! A log-linear latency histogram (16 steps per power of two, about 6 % resolution) that
//! workers fill and the coordinator merges, so percentiles over all clients are exact to a
//! bucket rather than averaged.

use serde::{Deserialize, Serialize};

/// Linear steps inside each power of two.
const STEPS_PER_OCTAVE: u32 = 16;
/// Octaves covered: 1 ns to about 2^40 ns (18 minutes).
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
    if octave < 4 {
        return nanos as usize;
    }
    let step = ((nanos >> (octave - 4)) & 0xf) as u32;
    (((octave - 3) * STEPS_PER_OCTAVE + step) as usize).min(BUCKETS - 1)
}

fn upper_bound(index: usize) -> u64 {
    let index = index as u32;
    if index < STEPS_PER_OCTAVE {
        return u64::from(index);
    }
    let octave = index / STEPS_PER_OCTAVE + 3;
    let step = u64::from(index % STEPS_PER_OCTAVE);
    ((16 + step + 1) << (octave - 4)) - 1
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
            assert!((got - truth).abs() / truth < 0.07, "q{q}: {got} vs {truth}");
        }
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for nanos in [1u64, 2, 15, 16, 17, 31, 32, 1000, 1 << 20, 1 << 39] {
            let b = bucket_of(nanos);
            assert!(b >= last);
            assert!(upper_bound(b) >= nanos, "{nanos} above its bucket's bound");
            last = b;
        }
    }
}
