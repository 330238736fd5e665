//! The typed read-modify-write operations a database actor runs on one record: each is a pure
//! function of the condition, the record's bytes (if any) and the time, returning the answer and
//! the bytes to write. No I/O, no clock, no actix: the actor passes time in.
//!
//! - [`ratelimit`]: Exim's smoothed rate and `unique=` Bloom filter, bit-exact with Exim.
//! - [`seen`]: Exim's `seen` condition (before/since, readonly, write, refresh).
//! - [`greylist`]: hintsd's own greylist triplet record (first seen, last seen, passed).
//!
//! Records are never trusted: bytes that do not decode are a [`hints_proto::exim::RecordError`],
//! never a panic or a read past their end.

pub mod greylist;
pub mod ratelimit;
pub mod seen;

/// A Unix time in seconds as Exim's `time_t` (saturating, which no real clock reaches).
fn exim_time(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}
