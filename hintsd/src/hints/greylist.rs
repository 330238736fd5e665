//! The `greylist` operation and its record, hintsd's own (Exim has none): for one triplet
//! (host, sender, recipient, as the client keys it), when it was first and last tried and
//! whether it has passed.
//!
//! Record layout, [`GREYLIST_RECORD_BYTES`] bytes:
//! `@0 first_seen u64 LE | @8 last_seen u64 LE | @16 passed u8 (0 or 1)`, seconds since the
//! epoch, `first_seen <= last_seen`.
//!
//! Rules: the first attempt is deferred for `delay`; a retry before `first_seen + delay` is
//! deferred for the rest of it; a retry at or after it passes, and the pass is remembered, so
//! later attempts pass at once. Every attempt moves `last_seen` forward, and a record is kept
//! until `last_seen + expiry`; from then on it counts as absent and the triplet starts again.

use hints_proto::exim::RecordError;

/// The length of a greylist record.
pub const GREYLIST_RECORD_BYTES: usize = 17;

const LAYOUT: &str = "greylist";
const FIRST_SEEN_AT: usize = 0;
const LAST_SEEN_AT: usize = 8;
const PASSED_AT: usize = 16;

/// One triplet's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreylistRecord {
    /// The first attempt (Unix seconds).
    pub first_seen: u64,
    /// The latest attempt (Unix seconds), never before `first_seen`.
    pub last_seen: u64,
    /// Whether the triplet has waited out its delay.
    pub passed: bool,
}

impl GreylistRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(GREYLIST_RECORD_BYTES);
        out.extend_from_slice(&self.first_seen.to_le_bytes());
        out.extend_from_slice(&self.last_seen.to_le_bytes());
        out.push(u8::from(self.passed));
        out
    }

    /// # Errors
    /// A length other than [`GREYLIST_RECORD_BYTES`], a passed byte other than 0 or 1, or a
    /// `first_seen` after `last_seen`.
    pub fn decode(bytes: &[u8]) -> Result<GreylistRecord, RecordError> {
        let bytes: &[u8; GREYLIST_RECORD_BYTES] = bytes.try_into().map_err(|_| RecordError::Length {
            layout: LAYOUT,
            len: bytes.len(),
            expected: GREYLIST_RECORD_BYTES.to_string(),
        })?;
        let read_u64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let (first_seen, last_seen) = (read_u64(FIRST_SEEN_AT), read_u64(LAST_SEEN_AT));
        let passed = match bytes[PASSED_AT] {
            0 => false,
            1 => true,
            other => return Err(RecordError::Field { layout: LAYOUT, field: "passed", why: format!("is {other}") }),
        };
        if first_seen > last_seen {
            return Err(RecordError::Field {
                layout: LAYOUT,
                field: "first_seen",
                why: format!("{first_seen} is after last_seen {last_seen}"),
            });
        }
        Ok(GreylistRecord { first_seen, last_seen, passed })
    }
}

/// What one delivery attempt of a triplet gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreylistOutcome {
    /// Accept the attempt; otherwise defer it.
    pub pass: bool,
    /// When deferred, the seconds until a retry passes; 0 when passing.
    pub retry_after_secs: u64,
    /// The record to store (always written: every attempt moves `last_seen`).
    pub write: Vec<u8>,
    /// The Unix second from which the record is gone: `last_seen + expiry`.
    pub expires_at: u64,
}

/// Applies one attempt at `now_secs` to the triplet's record (`existing`, if there is one).
/// A `delay_secs` of 0 passes every attempt.
///
/// # Errors
/// `existing` is not a valid greylist record.
pub fn apply(
    existing: Option<&[u8]>,
    delay_secs: u64,
    expiry_secs: u64,
    now_secs: u64,
) -> Result<GreylistOutcome, RecordError> {
    let live = existing
        .map(GreylistRecord::decode)
        .transpose()?
        .filter(|record| now_secs < record.last_seen.saturating_add(expiry_secs));
    let mut record = live.unwrap_or(GreylistRecord { first_seen: now_secs, last_seen: now_secs, passed: false });
    record.last_seen = record.last_seen.max(now_secs);
    let waited = now_secs.saturating_sub(record.first_seen);
    record.passed |= waited >= delay_secs;
    let retry_after_secs = if record.passed { 0 } else { delay_secs - waited };
    Ok(GreylistOutcome {
        pass: record.passed,
        retry_after_secs,
        write: record.encode(),
        expires_at: record.last_seen.saturating_add(expiry_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: u64 = 300;
    const EXPIRY: u64 = 7 * 86_400;
    const T0: u64 = 1_700_000_000;

    fn attempt(existing: Option<&[u8]>, now: u64) -> GreylistOutcome {
        apply(existing, DELAY, EXPIRY, now).expect("apply")
    }

    fn stored(outcome: &GreylistOutcome) -> GreylistRecord {
        GreylistRecord::decode(&outcome.write).expect("a valid record")
    }

    #[test]
    fn the_layout_is_fixed() {
        let record =
            GreylistRecord { first_seen: 0x0102_0304_0506_0708, last_seen: 0x1112_1314_1516_1718, passed: true };
        let bytes = record.encode();
        assert_eq!(bytes, [8, 7, 6, 5, 4, 3, 2, 1, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, 1]);
        assert_eq!(GreylistRecord::decode(&bytes), Ok(record));
    }

    #[test]
    fn a_damaged_record_is_refused() {
        for len in [0, 16, 18] {
            let err = GreylistRecord::decode(&vec![0; len]).expect_err("length");
            assert_eq!(err, RecordError::Length { layout: LAYOUT, len, expected: "17".into() });
            assert!(apply(Some(&vec![0; len]), DELAY, EXPIRY, T0).is_err());
        }
        let mut bytes = GreylistRecord { first_seen: 1, last_seen: 2, passed: false }.encode();
        bytes[16] = 2;
        assert!(matches!(GreylistRecord::decode(&bytes), Err(RecordError::Field { field: "passed", .. })));
        let backwards = GreylistRecord { first_seen: 3, last_seen: 2, passed: false }.encode();
        assert!(matches!(GreylistRecord::decode(&backwards), Err(RecordError::Field { field: "first_seen", .. })));
    }

    #[test]
    fn the_first_attempt_is_deferred_for_the_delay() {
        let outcome = attempt(None, T0);
        assert_eq!((outcome.pass, outcome.retry_after_secs, outcome.expires_at), (false, DELAY, T0 + EXPIRY));
        assert_eq!(stored(&outcome), GreylistRecord { first_seen: T0, last_seen: T0, passed: false });
    }

    #[test]
    fn an_early_retry_is_deferred_for_the_rest_of_the_delay() {
        let first = attempt(None, T0);
        let retry = attempt(Some(&first.write), T0 + 100);
        assert_eq!((retry.pass, retry.retry_after_secs), (false, DELAY - 100));
        assert_eq!(stored(&retry), GreylistRecord { first_seen: T0, last_seen: T0 + 100, passed: false });
        assert_eq!(retry.expires_at, T0 + 100 + EXPIRY);
        let last_second = attempt(Some(&retry.write), T0 + DELAY - 1);
        assert_eq!((last_second.pass, last_second.retry_after_secs), (false, 1));
    }

    #[test]
    fn a_retry_after_the_delay_passes_and_is_remembered() {
        let first = attempt(None, T0);
        let retry = attempt(Some(&first.write), T0 + DELAY);
        assert_eq!((retry.pass, retry.retry_after_secs), (true, 0));
        assert_eq!(stored(&retry), GreylistRecord { first_seen: T0, last_seen: T0 + DELAY, passed: true });
        // A passed triplet passes at once, even with a longer delay asked for later.
        let later = apply(Some(&retry.write), 86_400, EXPIRY, T0 + DELAY + 5).unwrap();
        assert_eq!((later.pass, later.retry_after_secs), (true, 0));
        assert_eq!(stored(&later).last_seen, T0 + DELAY + 5);
    }

    #[test]
    fn an_expired_record_counts_as_absent() {
        let passed = attempt(Some(&attempt(None, T0).write), T0 + DELAY);
        let last_seen = T0 + DELAY;
        let just_alive = attempt(Some(&passed.write), last_seen + EXPIRY - 1);
        assert!(just_alive.pass);
        let expired = attempt(Some(&passed.write), last_seen + EXPIRY);
        assert_eq!((expired.pass, expired.retry_after_secs), (false, DELAY));
        let now = last_seen + EXPIRY;
        assert_eq!(stored(&expired), GreylistRecord { first_seen: now, last_seen: now, passed: false });
    }

    #[test]
    fn a_zero_delay_passes_at_once() {
        let outcome = apply(None, 0, EXPIRY, T0).unwrap();
        assert_eq!((outcome.pass, outcome.retry_after_secs), (true, 0));
        assert!(stored(&outcome).passed);
    }

    #[test]
    fn the_clock_going_backwards_never_moves_the_record_back() {
        let first = attempt(None, T0);
        let retry = attempt(Some(&first.write), T0 - 50);
        assert_eq!((retry.pass, retry.retry_after_secs), (false, DELAY));
        assert_eq!(stored(&retry), GreylistRecord { first_seen: T0, last_seen: T0, passed: false });
    }

    #[test]
    fn the_expiry_saturates() {
        let outcome = apply(None, DELAY, u64::MAX, T0).unwrap();
        assert_eq!(outcome.expires_at, u64::MAX);
        assert!(!attempt(Some(&outcome.write), T0 + 1).pass);
    }
}
