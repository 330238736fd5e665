//! Exim's hints record layouts (released versions, up to 4.99.1, x86-64 LP64, little-endian):
//! encode and decode, refusing a record of the wrong length or one whose fields overrun it.
//!
//! hintsd stores records in these layouts, so a generic `get` or a dump shows what Exim itself
//! would have written, and imports and exports need no translation. Facts:
//! `shared/reference/exim-hints.md`, sections 1.2 and 4; the structs are Exim's
//! `src/src/hintsdb_structs.h`. Every record starts with an 8-byte `time_stamp` (`time_t`);
//! master's `{version, tainted}` header (4.100-dev) is not supported.
//!
//! One module per layout, each with `encode(&self) -> Vec<u8>` and
//! `decode(&[u8]) -> Result<Self, RecordError>` and a constant for every size:
//! - [`retry`]: `dbdata_retry` (48 + strlen(text) bytes).
//! - [`callout`]: `dbdata_callout_cache` (40), its obsolete 24-byte form, and
//!   `dbdata_callout_cache_address` (16), told apart only by length.
//! - [`wait`]: `dbdata_wait` (24 + count * message-id length, 16- or 23-character ids).
//! - [`seen`]: `dbdata_seen` (8).
//! - [`serialize`]: `dbdata_serialize` (16), the `misc` database's serialization records.
//! - [`ehlo`]: `dbdata_ehlo_resp` (16, or 32 with the ESMTP limits), the `misc` database's
//!   PIPECONNECT cache.
//! - [`ratelimit`]: `dbdata_ratelimit` and `dbdata_ratelimit_unique`.
//!
//! [`dumpdb`] prints records as `exim_dumpdb` prints them and reads such a dump back into
//! these layouts.
//!
//! Padding bytes are written as zero and ignored on read (Exim leaves them uninitialised).
//! Layouts are told apart by length only where Exim does so (callout); no decoder guesses the
//! database a record came from.

use std::fmt;

pub mod callout;
pub mod dumpdb;
pub mod ehlo;
pub mod ratelimit;
pub mod retry;
pub mod seen;
pub mod serialize;
pub mod wait;

pub use callout::{CalloutAddress, CalloutDomain, CalloutRecord};
pub use ehlo::{EhloLimits, EhloRecord};
pub use ratelimit::{RatelimitData, RatelimitRecord, RatelimitUniqueRecord};
pub use retry::RetryRecord;
pub use seen::SeenRecord;
pub use serialize::SerializeRecord;
pub use wait::{MessageIdFormat, WaitRecord};

/// Why bytes are not a valid record of the expected layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The record is shorter or longer than its layout allows.
    Length { layout: &'static str, len: usize, expected: String },
    /// A field holds a value the layout forbids (a `bloom_size` past the record's end, say).
    Field { layout: &'static str, field: &'static str, why: String },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Length { layout, len, expected } => {
                write!(f, "{layout} record of {len} bytes; expected {expected}")
            }
            RecordError::Field { layout, field, why } => write!(f, "{layout} record: {field} {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Reads a little-endian `i64` at `at` (the caller has checked the length).
pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a little-endian `i32` at `at` (the caller has checked the length).
pub(crate) fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads a little-endian `u32` at `at` (the caller has checked the length).
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads a little-endian `u16` at `at` (the caller has checked the length).
pub(crate) fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

/// A [`RecordError::Length`] for `layout`.
pub(crate) fn length_error(layout: &'static str, len: usize, expected: impl Into<String>) -> RecordError {
    RecordError::Length { layout, len, expected: expected.into() }
}

/// Checks that a fixed-size record is exactly `expected` bytes long.
pub(crate) fn expect_len(layout: &'static str, bytes: &[u8], expected: usize) -> Result<(), RecordError> {
    if bytes.len() == expected { Ok(()) } else { Err(length_error(layout, bytes.len(), expected.to_string())) }
}

/// Appends `count` zero bytes: padding and slack, which Exim leaves uninitialised.
pub(crate) fn put_zeros(out: &mut Vec<u8>, count: usize) {
    out.resize(out.len() + count, 0);
}
