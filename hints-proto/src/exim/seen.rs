//! `dbdata_seen`: the `seen` ACL condition's record (Exim 4.96 and later).
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t): when the key was last seen (dbfn_write sets it to now)
//! ```
//! Exactly [`SEEN_BYTES`] long. Exim itself does not check the length of a `seen` record; a
//! record of another length here is someone else's data and is refused.

use super::{RecordError, expect_len, read_i64};

/// `sizeof(dbdata_seen)`.
pub const SEEN_BYTES: usize = 8;

const LAYOUT: &str = "seen";

/// A `seen` record: one timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeenRecord {
    /// Seconds since the epoch.
    pub time_stamp: i64,
}

impl SeenRecord {
    /// The record's bytes, as Exim writes them.
    pub fn encode(&self) -> Vec<u8> {
        self.time_stamp.to_le_bytes().to_vec()
    }

    /// Reads a record; refuses any length but [`SEEN_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        expect_len(LAYOUT, bytes, SEEN_BYTES)?;
        Ok(SeenRecord { time_stamp: read_i64(bytes, 0) })
    }
}
