//! `dbdata_retry`: the `retry` database's record (host, routing and message-specific retry
//! state).
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t)
//!      8     8  first_failed (time_t)
//!     16     8  last_try (time_t)
//!     24     8  next_try (time_t)
//!     32     4  expired (BOOL = unsigned int; Exim writes 0 or 1, any non-zero is true)
//!     36     4  basic_errno (int)
//!     40     4  more_errno (int)
//!     44     n  text (strlen bytes, then a NUL)
//!   45+n     3  slack: the rest of sizeof(dbdata_retry) = 48 (garbage in Exim, zero here)
//! ```
//! Exim writes `sizeof(dbdata_retry) + strlen(text)` = [`RETRY_HEADER_BYTES`] + n bytes, with
//! the text capped at `EXIM_DB_RLIMIT` = [`RETRY_TEXT_MAX`] bytes ("Connection refused" gives
//! 66). Exim reads the text as a C string and checks no length, so decoding takes the text up
//! to its first NUL and accepts any record of at least [`RETRY_MIN_BYTES`] that has one;
//! bytes after the NUL are ignored, and a text longer than the cap (which Exim's writer would
//! not produce, but its reader would take) is kept whole, so `encode` then shortens it.

use super::{RecordError, length_error, put_zeros, read_i32, read_i64, read_u32};

/// `sizeof(dbdata_retry)`: the fixed fields plus `text[1]`, padded to 8.
pub const RETRY_HEADER_BYTES: usize = 48;
/// Offset of `text`.
pub const RETRY_TEXT_OFFSET: usize = 44;
/// The shortest record that can hold the text's NUL (an empty text, no slack).
pub const RETRY_MIN_BYTES: usize = RETRY_TEXT_OFFSET + 1;
/// `EXIM_DB_RLIMIT`: Exim truncates the text to this many bytes; so does [`RetryRecord::encode`].
pub const RETRY_TEXT_MAX: usize = 150;
/// The longest record Exim (with the cap) writes.
pub const RETRY_MAX_BYTES: usize = RETRY_HEADER_BYTES + RETRY_TEXT_MAX;

const LAYOUT: &str = "retry";

/// A retry record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryRecord {
    /// Seconds since the epoch of the last write.
    pub time_stamp: i64,
    /// When the first failure happened.
    pub first_failed: i64,
    /// When the last attempt happened.
    pub last_try: i64,
    /// When the next attempt is due.
    pub next_try: i64,
    /// The retry time has expired (the address times out on its next failure).
    pub expired: bool,
    /// The errno of the last failure (or one of Exim's negative `ERRNO_*` codes).
    pub basic_errno: i32,
    /// More detail (for a connect failure: `'A'`/`'M'` in the low byte and more above it).
    pub more_errno: i32,
    /// The failure text, without its NUL: `strerror(basic_errno)` or a printable message.
    pub text: Vec<u8>,
}

impl RetryRecord {
    /// The text [`encode`](Self::encode) writes: up to the first NUL, then at most
    /// [`RETRY_TEXT_MAX`] bytes, as Exim's `retry_update()` writes it.
    pub fn stored_text(&self) -> &[u8] {
        let text = match self.text.iter().position(|&b| b == 0) {
            Some(nul) => &self.text[..nul],
            None => &self.text[..],
        };
        &text[..text.len().min(RETRY_TEXT_MAX)]
    }

    /// The record's bytes: [`RETRY_HEADER_BYTES`] + the stored text's length. The text is cut
    /// at an embedded NUL and at [`RETRY_TEXT_MAX`] bytes (see [`stored_text`](Self::stored_text)),
    /// so `decode(encode(r)) == r` holds for a text of at most 150 bytes without a NUL.
    pub fn encode(&self) -> Vec<u8> {
        let text = self.stored_text();
        let mut out = Vec::with_capacity(RETRY_HEADER_BYTES + text.len());
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.first_failed.to_le_bytes());
        out.extend_from_slice(&self.last_try.to_le_bytes());
        out.extend_from_slice(&self.next_try.to_le_bytes());
        out.extend_from_slice(&u32::from(self.expired).to_le_bytes());
        out.extend_from_slice(&self.basic_errno.to_le_bytes());
        out.extend_from_slice(&self.more_errno.to_le_bytes());
        out.extend_from_slice(text);
        // The NUL, then the slack up to sizeof(dbdata_retry) + strlen(text).
        put_zeros(&mut out, RETRY_HEADER_BYTES - RETRY_TEXT_OFFSET);
        out
    }

    /// Reads a record: at least [`RETRY_MIN_BYTES`], with a NUL ending the text.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() < RETRY_MIN_BYTES {
            return Err(length_error(
                LAYOUT,
                bytes.len(),
                format!("at least {RETRY_MIN_BYTES} ({RETRY_HEADER_BYTES} + strlen(text) as Exim writes it)"),
            ));
        }
        let tail = &bytes[RETRY_TEXT_OFFSET..];
        let Some(nul) = tail.iter().position(|&b| b == 0) else {
            return Err(RecordError::Field {
                layout: LAYOUT,
                field: "text",
                why: format!("has no terminating NUL in its {} bytes", tail.len()),
            });
        };
        Ok(RetryRecord {
            time_stamp: read_i64(bytes, 0),
            first_failed: read_i64(bytes, 8),
            last_try: read_i64(bytes, 16),
            next_try: read_i64(bytes, 24),
            expired: read_u32(bytes, 32) != 0,
            basic_errno: read_i32(bytes, 36),
            more_errno: read_i32(bytes, 40),
            text: tail[..nul].to_vec(),
        })
    }
}
