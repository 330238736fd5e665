//! The `ratelimit` operation: Exim's smoothed rate, and the `unique=` Bloom filter, applied to
//! a `ratelimit` record at an event time, bit-exact with Exim's `acl_ratelimit()`
//! (`shared/reference/exim-hints.md` §4.2-4.5).
//!
//! What hintsd does where Exim's code leaves room:
//! - A record that does not decode (wrong length, a `bloom_size` past its end, an impossible
//!   time or rate) is an error, never read: Exim reads such a record blindly (CVE-2025-67896).
//! - A non-unique condition that finds a unique record (only possible when a key itself
//!   contains `unique/`) updates its rate and writes it back with its filter untouched, as
//!   Exim does; a unique condition that finds a plain record starts a filter and keeps the rate.
//! - The filter is at most [`BLOOM_MAX_BYTES`] bytes, so a record always fits a value: limits
//!   above 131 052 get a smaller filter than Exim's (which would be 2 bytes per unit of limit).

use hints_proto::Stamp;
use hints_proto::condition::{RatelimitCondition, RatelimitUpdate};
use hints_proto::exim::RecordError;
use hints_proto::exim::ratelimit::{
    RATELIMIT_BLOOM_MIN_BYTES, RATELIMIT_UNIQUE_OVERHEAD_BYTES, RatelimitData, RatelimitRecord, RatelimitUniqueRecord,
};
use hints_proto::limits::VALUE_BYTES_MAX;
use md5::{Digest, Md5};

use super::exim_time;

/// The largest Bloom filter hintsd makes: a unique record of it is the largest value.
pub const BLOOM_MAX_BYTES: usize = VALUE_BYTES_MAX - RATELIMIT_UNIQUE_OVERHEAD_BYTES;

/// Bits set (and tested) per event in the Bloom filter.
const BLOOM_HASHES: u32 = 8;

/// The interval Exim uses when the clock has not moved forward since the last update.
const INTERVAL_MIN_SECS: f64 = 1e-9;

/// What one ratelimit event gives.
#[derive(Clone, Debug, PartialEq)]
pub struct RatelimitOutcome {
    /// The smoothed rate after this event (Exim's `$sender_rate`).
    pub rate: f64,
    /// `rate >= limit`: the condition is true (a client exactly at the limit is over it).
    pub over: bool,
    /// The record to store, or `None` when nothing is written (read-only, or leaky and over).
    pub write: Option<Vec<u8>>,
}

/// Applies one event of `cond` at `now` to the key's record (`existing`, if there is one).
///
/// # Errors
/// `existing` is not a valid `ratelimit` record; nothing is computed from it.
pub fn apply(cond: &RatelimitCondition, existing: Option<&[u8]>, now: Stamp) -> Result<RatelimitOutcome, RecordError> {
    let stored = existing.map(RatelimitData::decode).transpose()?;
    let now_secs = exim_time(now.secs);
    let now_usec = i32::try_from(now.micros.min(999_999)).expect("under a million");

    let previous = stored.as_ref().map(|data| *data.base());
    let mut filter = match (stored, cond.unique.as_deref()) {
        (Some(RatelimitData::Unique(record)), None) => Some(Filter::from(record)),
        (_, None) => None,
        (Some(RatelimitData::Unique(record)), Some(_)) if !epoch_over(record.bloom_epoch, now_secs, cond) => {
            Some(Filter::from(record))
        }
        (_, Some(_)) => Some(Filter { epoch: now_secs, bloom: vec![0; bloom_bytes_for_limit(cond.limit)] }),
    };

    let mut count = cond.count;
    if let (Some(unique), Some(filter)) = (cond.unique.as_deref(), filter.as_mut())
        && cond.update != RatelimitUpdate::Readonly
        && bloom_insert(&mut filter.bloom, unique)
    {
        count = 0.0;
    }

    let rate = match previous {
        None => count,
        Some(previous) => smoothed_rate(&previous, now_secs, now_usec, cond.period_secs, count),
    };
    let over = rate >= cond.limit;
    let written = match cond.update {
        RatelimitUpdate::Strict => true,
        RatelimitUpdate::Leaky => !over,
        RatelimitUpdate::Readonly => false,
    };
    let write = written.then(|| {
        let base = RatelimitRecord { time_stamp: now_secs, time_usec: now_usec, rate };
        match filter {
            None => base.encode(),
            Some(Filter { epoch, bloom }) => RatelimitUniqueRecord { base, bloom_epoch: epoch, bloom }.encode(),
        }
    });
    Ok(RatelimitOutcome { rate, over, write })
}

/// The size of a new filter for `limit`: Exim's `40 + max(0, 2 * (int)limit - 40)` bytes (16
/// bits per event allowed), at most [`BLOOM_MAX_BYTES`].
pub fn bloom_bytes_for_limit(limit: f64) -> usize {
    // `as` truncates toward zero like C's (int) cast, and saturates where C's would overflow.
    let extra = (limit as i64).saturating_mul(2).saturating_sub(RATELIMIT_BLOOM_MIN_BYTES as i64).max(0);
    usize::try_from(extra)
        .map_or(BLOOM_MAX_BYTES, |extra| RATELIMIT_BLOOM_MIN_BYTES.saturating_add(extra).min(BLOOM_MAX_BYTES))
}

/// A unique record's filter and when it was made.
struct Filter {
    epoch: i64,
    bloom: Vec<u8>,
}

impl From<RatelimitUniqueRecord> for Filter {
    fn from(record: RatelimitUniqueRecord) -> Filter {
        Filter { epoch: record.bloom_epoch, bloom: record.bloom }
    }
}

/// Exim's `tv_sec > bloom_epoch + period`, in its types (the sum is a double).
fn epoch_over(bloom_epoch: i64, now_secs: i64, cond: &RatelimitCondition) -> bool {
    now_secs as f64 > bloom_epoch as f64 + cond.period_secs
}

/// Exim's exponentially weighted moving average, in Exim's order of operations.
fn smoothed_rate(previous: &RatelimitRecord, now_secs: i64, now_usec: i32, period_secs: f64, count: f64) -> f64 {
    let this_time = now_secs as f64 + f64::from(now_usec) / 1_000_000.0;
    let prev_time = previous.time_stamp as f64 + f64::from(previous.time_usec) / 1_000_000.0;
    let interval = if this_time - prev_time <= 0.0 { INTERVAL_MIN_SECS } else { this_time - prev_time };
    let i_over_p = interval / period_secs;
    let a = (-i_over_p).exp();
    let rate = (1.0 - a) * count / i_over_p + a * previous.rate;
    // An isolated event counts `count` per period. The cap only matters for absurd counts: a
    // record is never written with a rate its decoder would refuse.
    if rate < count { count } else { rate.min(f64::MAX) }
}

/// Adds `unique` to the filter as Exim does; returns whether it was already there (all 8 bits
/// set before). Hashes: MD5 of the text, `h1` its bytes 0..4 and `h2` bytes 4..8 (little
/// endian); bit `n` is `h1 + n * h2` (wrapping), byte `(h / 8) % len`, bit `h % 8`.
fn bloom_insert(bloom: &mut [u8], unique: &str) -> bool {
    let digest = Md5::digest(unique.as_bytes());
    let mut hash = u32::from_le_bytes(digest[0..4].try_into().expect("4 bytes"));
    let step = u32::from_le_bytes(digest[4..8].try_into().expect("4 bytes"));
    let mut seen = true;
    for _ in 0..BLOOM_HASHES {
        let bit = 1_u8 << (hash % 8);
        let byte = (hash / 8) as usize % bloom.len();
        if bloom[byte] & bit == 0 {
            bloom[byte] |= bit;
            seen = false;
        }
        hash = hash.wrapping_add(step);
    }
    seen
}

#[cfg(test)]
mod tests {
    use hints_proto::condition::parse_ratelimit;
    use proptest::prelude::*;

    use super::*;

    const T0: u64 = 1_700_000_000;

    fn cond(text: &str) -> RatelimitCondition<'static> {
        parse_ratelimit(text).map(RatelimitCondition::into_owned).unwrap_or_else(|err| panic!("{text:?}: {err}"))
    }

    fn at(secs: u64) -> Stamp {
        Stamp { secs, micros: 0 }
    }

    fn plain(secs: u64, rate: f64) -> Vec<u8> {
        RatelimitRecord { time_stamp: secs as i64, time_usec: 0, rate }.encode()
    }

    fn stored(outcome: &RatelimitOutcome) -> RatelimitData {
        RatelimitData::decode(outcome.write.as_deref().expect("a write")).expect("a valid record")
    }

    /// Runs `events` events from no record, `spacing_us` apart, storing what is written.
    fn burst(cond: &RatelimitCondition, events: usize, spacing_us: u64) -> Vec<RatelimitOutcome> {
        let mut record: Option<Vec<u8>> = None;
        (0..events as u64)
            .map(|n| {
                let micros = T0 * 1_000_000 + n * spacing_us;
                let now = Stamp { secs: micros / 1_000_000, micros: (micros % 1_000_000) as u32 };
                let outcome = apply(cond, record.as_deref(), now).expect("apply");
                if let Some(bytes) = &outcome.write {
                    record = Some(bytes.clone());
                }
                outcome
            })
            .collect()
    }

    #[test]
    fn the_reference_test_vectors_hold_exactly() {
        let first = apply(&cond("1000/1h/count=5/k"), None, at(T0)).unwrap();
        assert_eq!(first.rate, 5.0);
        assert_eq!(stored(&first).base(), &RatelimitRecord { time_stamp: T0 as i64, time_usec: 0, rate: 5.0 });

        let hour = apply(&cond("1000/1h/k"), Some(&plain(T0, 100.0)), at(T0 + 3600)).unwrap();
        assert_eq!(hour.rate, 37.420064675972796);

        let ten_days = apply(&cond("1000/1h/k"), Some(&plain(T0, 0.0)), at(T0 + 864_000)).unwrap();
        assert_eq!(ten_days.rate, 1.0);

        let readonly = cond("1000/1h/readonly/k");
        assert_eq!(apply(&readonly, Some(&plain(T0, 5.0)), at(T0 + 1800)).unwrap().rate, 3.032653298563167);
        assert_eq!(apply(&readonly, Some(&plain(T0, 20.0)), at(T0 + 3600)).unwrap().rate, 7.357588823428847);
    }

    #[test]
    fn one_event_a_second_goes_over_a_limit_of_10_at_the_11th() {
        let outcomes = burst(&cond("10/1h/k"), 11, 1_000_000);
        assert!(outcomes[..10].iter().all(|outcome| !outcome.over));
        assert!((outcomes[9].rate - 9.986).abs() < 1e-3, "{}", outcomes[9].rate);
        assert!(outcomes[10].over);
        assert!((outcomes[10].rate - 10.983).abs() < 1e-3, "{}", outcomes[10].rate);
    }

    #[test]
    fn a_millisecond_burst_reaches_exims_rate() {
        let outcomes = burst(&cond("10/1h/k"), 11, 1_000);
        assert!((outcomes[10].rate - 10.99998).abs() < 1e-4, "{}", outcomes[10].rate);
    }

    #[test]
    fn a_limit_of_1_is_reached_by_the_first_event() {
        // No record: the rate is `count`, and a client at the limit is over it.
        let outcomes = burst(&cond("1/1h/k"), 2, 1_000);
        assert!(outcomes.iter().all(|outcome| outcome.over && outcome.write.is_none()));
    }

    #[test]
    fn leaky_stops_growing_when_over_and_strict_keeps_growing() {
        let leaky = burst(&cond("10/1h/k"), 20, 1_000_000);
        let strict = burst(&cond("10/1h/strict/k"), 20, 1_000_000);
        assert_eq!(leaky[..10], strict[..10], "under the limit both write the same");
        assert_eq!((leaky[10].rate, leaky[10].over), (strict[10].rate, strict[10].over));
        assert!(leaky[10..].iter().all(|outcome| outcome.over && outcome.write.is_none()));
        assert!(strict.iter().all(|outcome| outcome.write.is_some()));
        // Leaky, each event is computed from the last state written (the 10th), so the rate
        // stays near 11 while the interval grows; strict goes on counting.
        assert!(leaky[19].rate < 11.0, "{}", leaky[19].rate);
        assert!(strict.windows(2).all(|pair| pair[1].rate > pair[0].rate));
        assert!(strict[19].rate > 19.0, "{}", strict[19].rate);
    }

    #[test]
    fn readonly_never_writes() {
        let readonly = cond("10/1h/readonly/k");
        let unique = cond("10/1h/noupdate/unique=a@b/k");
        for (cond, existing) in [
            (&readonly, None),
            (&readonly, Some(plain(T0, 50.0))),
            (&readonly, Some(plain(T0, 0.0))),
            (&unique, None),
            (&unique, Some(plain(T0, 3.0))),
        ] {
            let outcome = apply(cond, existing.as_deref(), at(T0 + 10)).unwrap();
            assert_eq!(outcome.write, None, "{cond:?} {existing:?}");
        }
        let no_record = apply(&readonly, None, at(T0)).unwrap();
        assert_eq!((no_record.rate, no_record.over), (0.0, false));
    }

    #[test]
    fn the_clock_going_backwards_counts_as_a_nanosecond() {
        let outcome = apply(&cond("1000/1h/strict/k"), Some(&plain(T0, 4.0)), at(T0 - 5)).unwrap();
        let i_over_p: f64 = 1e-9 / 3600.0;
        let a = (-i_over_p).exp();
        assert_eq!(outcome.rate, (1.0 - a) * 1.0 / i_over_p + a * 4.0);
        assert_eq!(stored(&outcome).base().time_stamp, (T0 - 5) as i64);
    }

    #[test]
    fn micros_are_part_of_the_event_time() {
        let now = Stamp { secs: T0 + 60, micros: 250_000 };
        let outcome = apply(&cond("1000/1h/k"), Some(&plain(T0, 10.0)), now).unwrap();
        let i_over_p = ((T0 + 60) as f64 + 0.25 - T0 as f64) / 3600.0;
        let a = (-i_over_p).exp();
        assert_eq!(outcome.rate, (1.0 - a) * 1.0 / i_over_p + a * 10.0);
        assert_eq!(stored(&outcome).base().time_usec, 250_000);
    }

    #[test]
    fn a_bloom_filter_sets_exims_bits() {
        // Positions computed independently (Python's hashlib and struct) from Exim's rule.
        let mut bloom = vec![0; 40];
        assert!(!bloom_insert(&mut bloom, "bob@example.org"));
        let set: Vec<(usize, u8)> = bloom.iter().enumerate().filter(|(_, b)| **b != 0).map(|(i, b)| (i, *b)).collect();
        assert_eq!(set, [(1, 64), (4, 16), (7, 4), (10, 1), (30, 64), (33, 16), (36, 4), (39, 1)]);
        assert!(bloom_insert(&mut bloom, "bob@example.org"));

        let mut bloom = vec![0; 200];
        bloom_insert(&mut bloom, "alice@example.net");
        let set: Vec<(usize, u8)> = bloom.iter().enumerate().filter(|(_, b)| **b != 0).map(|(i, b)| (i, *b)).collect();
        assert_eq!(set, [(10, 8), (27, 128), (44, 1), (48, 32), (64, 64), (82, 4), (119, 2), (173, 16)]);
    }

    #[test]
    fn the_filter_size_follows_the_limit() {
        for (limit, bytes) in [
            (0.0, 40),
            (1.0, 40),
            (20.9, 40),
            (21.0, 42),
            (100.0, 200),
            (131_052.0, BLOOM_MAX_BYTES),
            (1e12, BLOOM_MAX_BYTES),
        ] {
            assert_eq!(bloom_bytes_for_limit(limit), bytes, "{limit}");
        }
        assert_eq!(BLOOM_MAX_BYTES + RATELIMIT_UNIQUE_OVERHEAD_BYTES, VALUE_BYTES_MAX);
        let outcome = apply(&cond("100/1h/per_addr/unique=a@b/k"), None, at(T0)).unwrap();
        let RatelimitData::Unique(record) = stored(&outcome) else { panic!("a unique record") };
        assert_eq!((record.bloom.len(), record.bloom_epoch), (200, T0 as i64));
    }

    #[test]
    fn a_repeated_unique_event_counts_once_per_period() {
        let cond = cond("100/1h/strict/per_addr/unique=bob@example.org/192.0.2.10");
        let first = apply(&cond, None, at(T0)).unwrap();
        assert_eq!(first.rate, 1.0);
        let again = apply(&cond, first.write.as_deref(), at(T0 + 60)).unwrap();
        let a = (-(60.0_f64 / 3600.0)).exp();
        assert_eq!(again.rate, a * 1.0, "counted 0, decayed");
        let RatelimitData::Unique(record) = stored(&again) else { panic!("a unique record") };
        assert_eq!(record.bloom_epoch, T0 as i64, "the filter is kept within its period");

        // Past epoch + period the filter starts again and the event counts.
        let later = apply(&cond, again.write.as_deref(), at(T0 + 3601)).unwrap();
        let RatelimitData::Unique(record) = stored(&later) else { panic!("a unique record") };
        assert_eq!(record.bloom_epoch, (T0 + 3601) as i64);
        assert!(later.rate >= 1.0);
        // At exactly epoch + period it is still the old filter (Exim's `>`).
        let edge = apply(&cond, again.write.as_deref(), at(T0 + 3600)).unwrap();
        let RatelimitData::Unique(record) = stored(&edge) else { panic!("a unique record") };
        assert_eq!(record.bloom_epoch, T0 as i64);
    }

    #[test]
    fn a_unique_condition_on_a_plain_record_starts_a_filter_and_keeps_the_rate() {
        let outcome = apply(&cond("100/1h/unique=x/k"), Some(&plain(T0, 50.0)), at(T0 + 3600)).unwrap();
        let without_unique = apply(&cond("100/1h/k"), Some(&plain(T0, 50.0)), at(T0 + 3600)).unwrap();
        assert_eq!(outcome.rate, without_unique.rate);
        let RatelimitData::Unique(record) = stored(&outcome) else { panic!("a unique record") };
        assert_eq!((record.bloom.len(), record.bloom_epoch), (200, (T0 + 3600) as i64));
    }

    #[test]
    fn a_plain_condition_on_a_unique_record_keeps_its_filter() {
        let unique = apply(&cond("100/1h/unique=x/k"), None, at(T0)).unwrap();
        let RatelimitData::Unique(before) = stored(&unique) else { panic!("a unique record") };
        let plain_cond = cond("100/1h/strict/k");
        let outcome = apply(&plain_cond, unique.write.as_deref(), at(T0 + 10)).unwrap();
        let RatelimitData::Unique(after) = stored(&outcome) else { panic!("still a unique record") };
        assert_eq!((after.bloom_epoch, &after.bloom), (before.bloom_epoch, &before.bloom));
        assert_eq!(after.base.rate, outcome.rate);
    }

    #[test]
    fn a_damaged_record_is_refused() {
        let unique = apply(&cond("100/1h/unique=x/k"), None, at(T0)).unwrap();
        let mut bytes = unique.write.unwrap();
        let overrun = u32::try_from(bytes.len()).unwrap();
        bytes[32..36].copy_from_slice(&overrun.to_le_bytes());
        for text in ["100/1h/unique=y/k", "100/1h/k", "100/1h/readonly/unique=y/k"] {
            let err = apply(&cond(text), Some(&bytes), at(T0 + 1)).expect_err(text);
            assert!(matches!(err, RecordError::Field { field: "bloom_size", .. }), "{text}: {err}");
        }
        let err = apply(&cond("100/1h/k"), Some(&[0; 23]), at(T0)).expect_err("short");
        assert!(matches!(err, RecordError::Length { len: 23, .. }));
    }

    proptest! {
        #[test]
        fn the_rate_is_never_below_the_count(
            count in 0_u32..10_000,
            previous_rate in 0.0_f64..1e9,
            gap_secs in 0_u64..10_000_000,
            strict in proptest::bool::ANY,
        ) {
            let mode = if strict { "strict" } else { "leaky" };
            let cond = cond(&format!("100/1h/{mode}/count={count}/k"));
            let previous = plain(T0, previous_rate);
            for existing in [None, Some(previous.as_slice())] {
                let outcome = apply(&cond, existing, at(T0 + gap_secs)).unwrap();
                prop_assert!(outcome.rate >= f64::from(count), "{} < {}", outcome.rate, count);
            }
        }

        #[test]
        fn readonly_never_changes_state(
            previous_rate in 0.0_f64..1e9,
            gap_secs in 0_u64..10_000_000,
            limit in 1_u32..5000,
            unique in proptest::option::of("[a-z]{1,12}"),
        ) {
            let unique = unique.map(|u| format!("unique={u}/")).unwrap_or_default();
            let cond = cond(&format!("{limit}/1h/readonly/{unique}k"));
            let previous = plain(T0, previous_rate);
            for existing in [None, Some(previous.as_slice())] {
                prop_assert!(apply(&cond, existing, at(T0 + gap_secs)).unwrap().write.is_none());
            }
        }

        #[test]
        fn a_millisecond_burst_is_first_over_at_limit_plus_1(limit in 2_u32..=1000) {
            let cond = cond(&format!("{limit}/1h/k"));
            let outcomes = burst(&cond, limit as usize + 1, 1_000);
            let first_over = outcomes.iter().position(|outcome| outcome.over);
            prop_assert_eq!(first_over, Some(limit as usize));
        }

        #[test]
        fn the_filter_never_forgets_an_element_within_its_epoch(
            limit in 0_u32..3000,
            elements in proptest::collection::vec("[a-z0-9.@-]{0,24}", 1..200),
        ) {
            let mut bloom = vec![0; bloom_bytes_for_limit(f64::from(limit))];
            for element in &elements {
                bloom_insert(&mut bloom, element);
            }
            for element in &elements {
                prop_assert!(bloom_insert(&mut bloom, element), "{} forgotten", element);
            }
        }

        #[test]
        fn a_unique_event_repeated_within_the_period_counts_zero(
            elements in proptest::collection::vec("[a-z]{1,12}@example\\.org", 1..40),
            // Both passes stay within one period (80 steps of under 45 s), so no filter resets.
            step_secs in 1_u64..45,
        ) {
            let cond_for = |unique: &str| cond(&format!("100/1h/strict/unique={unique}/k"));
            let mut record: Option<Vec<u8>> = None;
            let mut now = T0;
            for element in &elements {
                now += step_secs;
                record = apply(&cond_for(element), record.as_deref(), at(now)).unwrap().write;
            }
            for element in &elements {
                now += step_secs;
                let readonly_rate = apply(&cond(&format!("100/1h/readonly/unique={element}/k")), record.as_deref(), at(now)).unwrap().rate;
                let outcome = apply(&cond_for(element), record.as_deref(), at(now)).unwrap();
                prop_assert_eq!(outcome.rate, readonly_rate);
                record = outcome.write;
            }
        }
    }
}
