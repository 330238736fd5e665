//! `dbdata_serialize`: the `misc` database's serialization records (`host-serialize-<host>`,
//! `tpt-serialize-<transport>` for `max_parallel`, and `etrn-…`).
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t)
//!      8     4  count (int): connections or deliveries running
//!     12     4  padding (uninitialised in Exim; written as zero, ignored on read)
//! ```
//! Exim reads these with `dbfn_read_enforce_length()` and deletes a record of any other size,
//! so the length is enforced here too: exactly [`SERIALIZE_BYTES`].

use super::{RecordError, expect_len, put_zeros, read_i32, read_i64};

/// `sizeof(dbdata_serialize)`.
pub const SERIALIZE_BYTES: usize = 16;

const LAYOUT: &str = "serialize";

/// A serialization record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SerializeRecord {
    /// Seconds since the epoch.
    pub time_stamp: i64,
    /// How many holders the slot has (Exim compares it with the `max_parallel` limit).
    pub count: i32,
}

impl SerializeRecord {
    /// The record's bytes, as Exim writes them (padding zeroed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SERIALIZE_BYTES);
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        put_zeros(&mut out, 4);
        out
    }

    /// Reads a record; refuses any length but [`SERIALIZE_BYTES`] (as Exim does).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        expect_len(LAYOUT, bytes, SERIALIZE_BYTES)?;
        Ok(SerializeRecord { time_stamp: read_i64(bytes, 0), count: read_i32(bytes, 8) })
    }
}
