//! The `seen` operation: Exim's `seen` condition (4.96+) applied to the key's `dbdata_seen`
//! record ([`SeenRecord`]: one `time_t`) (`shared/reference/exim-hints.md` §4.6).
//!
//! With a record, `diff = now - time_stamp`; a "before" test (`-<interval>`) is true when
//! `diff >= interval`, a "since" test when `diff < interval`. Then `readonly` writes nothing,
//! `write` or a "since" test writes `now`, and a "before" test otherwise writes only when
//! `diff >= refresh`. Exim's refresh code means to write `now - interval`, but `dbfn_write()`
//! overwrites every record's stamp with the current time, so it writes `now`; so does hintsd.
//! With no record, the result is false and `now` is written unless `readonly`.

use hints_proto::condition::{SeenCondition, SeenMode};
use hints_proto::exim::{RecordError, SeenRecord};

use super::exim_time;

/// What one `seen` test gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenOutcome {
    /// Whether the condition is true.
    pub result: bool,
    /// The record to store, or `None` when nothing is written.
    pub write: Option<Vec<u8>>,
}

/// Tests `cond` at `now_secs` against the key's record (`existing`, if there is one).
///
/// # Errors
/// `existing` is not a `seen` record (8 bytes).
pub fn apply(cond: &SeenCondition, existing: Option<&[u8]>, now_secs: u64) -> Result<SeenOutcome, RecordError> {
    let now = exim_time(now_secs);
    let Some(bytes) = existing else {
        let write = (cond.mode != SeenMode::Readonly).then(|| encode(now));
        return Ok(SeenOutcome { result: false, write });
    };
    let diff = i128::from(now) - i128::from(SeenRecord::decode(bytes)?.time_stamp);
    let result =
        if cond.before { diff >= i128::from(cond.interval_secs) } else { diff < i128::from(cond.interval_secs) };
    let written = match cond.mode {
        SeenMode::Readonly => false,
        SeenMode::Write => true,
        SeenMode::Default => !cond.before || diff >= i128::from(cond.refresh_secs),
    };
    Ok(SeenOutcome { result, write: written.then(|| encode(now)) })
}

fn encode(time_stamp: i64) -> Vec<u8> {
    SeenRecord { time_stamp }.encode()
}

#[cfg(test)]
mod tests {
    use hints_proto::condition::parse_seen;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn cond(text: &str) -> SeenCondition<'static> {
        parse_seen(text).map(SeenCondition::into_owned).unwrap_or_else(|err| panic!("{text:?}: {err}"))
    }

    fn record(secs_ago: i64) -> Vec<u8> {
        encode(NOW as i64 - secs_ago)
    }

    fn test(text: &str, secs_ago: Option<i64>) -> SeenOutcome {
        apply(&cond(text), secs_ago.map(record).as_deref(), NOW).expect("apply")
    }

    fn wrote_now(outcome: &SeenOutcome) -> bool {
        outcome.write.as_deref() == Some(&(NOW as i64).to_le_bytes()[..])
    }

    #[test]
    fn no_record_is_false_and_creates_one() {
        for text in ["5m/key=k", "-5m/key=k", "-5m/key=k/write"] {
            let outcome = test(text, None);
            assert!(!outcome.result, "{text}");
            assert!(wrote_now(&outcome), "{text}");
        }
    }

    #[test]
    fn no_record_readonly_is_false_and_writes_nothing() {
        assert_eq!(test("5m/key=k/readonly", None), SeenOutcome { result: false, write: None });
        assert_eq!(test("-5m/key=k/readonly", None), SeenOutcome { result: false, write: None });
    }

    #[test]
    fn since_is_true_within_the_interval_and_always_writes() {
        let recent = test("5m/key=k", Some(299));
        assert!(recent.result && wrote_now(&recent));
        let at_interval = test("5m/key=k", Some(300));
        assert!(!at_interval.result && wrote_now(&at_interval));
        let old = test("5m/key=k", Some(86_400));
        assert!(!old.result && wrote_now(&old));
    }

    #[test]
    fn before_is_true_at_or_past_the_interval_and_does_not_write() {
        let at_interval = test("-5m/key=k", Some(300));
        assert_eq!(at_interval, SeenOutcome { result: true, write: None });
        let old = test("-5m/key=k", Some(86_400));
        assert_eq!(old, SeenOutcome { result: true, write: None });
        let recent = test("-5m/key=k", Some(299));
        assert_eq!(recent, SeenOutcome { result: false, write: None });
        assert!(test("-0m/key=k", Some(0)).result);
    }

    #[test]
    fn before_with_write_writes_now() {
        let outcome = test("-5m/key=k/write", Some(10));
        assert!(!outcome.result && wrote_now(&outcome));
        let outcome = test("-5m/key=k/write", Some(600));
        assert!(outcome.result && wrote_now(&outcome));
    }

    #[test]
    fn readonly_never_writes() {
        for (text, secs_ago) in
            [("5m/key=k/readonly", 10), ("-5m/key=k/readonly", 20 * 86_400), ("-5m/key=k/write/readonly", 600)]
        {
            assert_eq!(test(text, Some(secs_ago)).write, None, "{text}");
        }
        assert!(test("5m/key=k/readonly", Some(10)).result);
    }

    #[test]
    fn a_stale_before_record_is_refreshed_with_the_current_time() {
        // Exim 4.96: a record 20 days old tested by `seen = -5m` got exactly the current time,
        // not `now - interval` as the refresh code intends.
        let outcome = test("-5m/key=k", Some(20 * 86_400));
        assert!(outcome.result && wrote_now(&outcome));
        let at_refresh = test("-5m/key=k", Some(10 * 86_400));
        assert!(wrote_now(&at_refresh));
        let before_refresh = test("-5m/key=k", Some(10 * 86_400 - 1));
        assert_eq!(before_refresh.write, None);
        let custom = test("-5m/key=k/refresh=1h", Some(3600));
        assert!(wrote_now(&custom));
    }

    #[test]
    fn a_record_from_the_future_counts_as_just_seen() {
        assert!(test("5m/key=k", Some(-100)).result);
        assert!(!test("-5m/key=k", Some(-100)).result);
    }

    #[test]
    fn a_record_of_the_wrong_length_is_refused() {
        for len in [0, 7, 9, 16] {
            let err = apply(&cond("5m/key=k"), Some(&vec![0; len]), NOW).expect_err("length");
            assert!(matches!(err, RecordError::Length { len: got, .. } if got == len), "{len}");
        }
    }

    #[test]
    fn extreme_stamps_do_not_overflow() {
        for stamp in [i64::MIN, i64::MAX] {
            let outcome = apply(&cond("-5m/key=k"), Some(&encode(stamp)), u64::MAX).expect("apply");
            assert_eq!(outcome.result, stamp == i64::MIN);
        }
    }
}
