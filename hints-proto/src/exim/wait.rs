//! `dbdata_wait`: a `wait-<transport>` record, the message ids waiting for one host.
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t)
//!      8     4  count (int): how many ids, at most WAIT_NAME_MAX = 50
//!     12     4  sequence (int): how many continuation records `<host>:<n>` exist, n < sequence
//!     16   c*L  text: the ids packed end to end, no separators, no NUL
//! 16+c*L     8  slack: the rest of sizeof(dbdata_wait) = 24 (garbage in Exim, zero here)
//! ```
//! The record is `sizeof(dbdata_wait) + count * MESSAGE_ID_LENGTH` = [`WAIT_HEADER_BYTES`] +
//! c * L bytes (Debian 4.96: 56 for two ids), where L is the message-id length: 16 up to
//! 4.96 (`XXXXXX-XXXXXX-XX`), 23 from 4.97 (`XXXXXX-XXXXXXXXXXX-XXXX`); see
//! [`MessageIdFormat`]. [`WaitRecord::decode`] infers L from the length (for `count > 0` the
//! two candidates never coincide); [`WaitRecord::decode_with_format`] insists on one.
//!
//! Refused, as `exim_tidydb` calls them corrupt: `count > 50`, `sequence > 1000`; also a
//! negative `count` or `sequence`, a length that is not 24 + count * L, and an id that is not
//! shaped like a message id (base-62 digits and dashes at Exim's places).

use super::{RecordError, length_error, put_zeros, read_i32, read_i64};

/// `sizeof(dbdata_wait)`: time_stamp, count, sequence, `text[1]`, padded to 8.
pub const WAIT_HEADER_BYTES: usize = 24;
/// Offset of `text`, where the ids start.
pub const WAIT_TEXT_OFFSET: usize = 16;
/// `WAIT_NAME_MAX`: the most ids in one record (a full record moves to a continuation).
pub const WAIT_NAME_MAX: usize = 50;
/// `WAIT_CONT_MAX`: the largest `sequence` `exim_tidydb` accepts.
pub const WAIT_CONT_MAX: usize = 1000;
/// `MESSAGE_ID_LENGTH` up to Exim 4.96.
pub const MESSAGE_ID_LENGTH_OLD: usize = 16;
/// `MESSAGE_ID_LENGTH` from Exim 4.97.
pub const MESSAGE_ID_LENGTH: usize = 23;

const LAYOUT: &str = "wait";

/// The two message-id formats, which fix the id length in a wait record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageIdFormat {
    /// `XXXXXX-XXXXXX-XX`, 16 characters (Exim up to 4.96).
    Old,
    /// `XXXXXX-XXXXXXXXXXX-XXXX`, 23 characters (Exim 4.97 and later).
    New,
}

impl MessageIdFormat {
    /// The id length: [`MESSAGE_ID_LENGTH_OLD`] or [`MESSAGE_ID_LENGTH`].
    pub const fn id_length(self) -> usize {
        match self {
            MessageIdFormat::Old => MESSAGE_ID_LENGTH_OLD,
            MessageIdFormat::New => MESSAGE_ID_LENGTH,
        }
    }

    /// Where the two dashes are.
    const fn dashes(self) -> [usize; 2] {
        match self {
            MessageIdFormat::Old => [6, 13],
            MessageIdFormat::New => [6, 18],
        }
    }

    /// The format `id` has: the right length, dashes at the format's places and base-62
    /// digits (`0-9A-Za-z`) elsewhere; `None` if it has neither.
    pub fn of(id: &[u8]) -> Option<Self> {
        [MessageIdFormat::Old, MessageIdFormat::New].into_iter().find(|format| {
            id.len() == format.id_length()
                && id
                    .iter()
                    .enumerate()
                    .all(|(at, &b)| if format.dashes().contains(&at) { b == b'-' } else { b.is_ascii_alphanumeric() })
        })
    }
}

/// A wait record: the ids of messages waiting for a host, and the number of continuations.
///
/// `count` is not a field: it is `ids.len()` ([`count`](Self::count)), so the two cannot
/// disagree. [`encode`](Self::encode) writes whatever ids it holds; [`validate`](Self::validate)
/// says whether Exim (and [`decode`](Self::decode)) would accept them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WaitRecord {
    /// Seconds since the epoch.
    pub time_stamp: i64,
    /// How many continuation records (`<host>:0` … `<host>:<sequence-1>`) exist.
    pub sequence: i32,
    /// The message ids, all of one [`MessageIdFormat`], at most [`WAIT_NAME_MAX`].
    pub ids: Vec<String>,
}

impl WaitRecord {
    /// The number of ids: the record's `count` field.
    pub fn count(&self) -> usize {
        self.ids.len()
    }

    /// The format of the first id (`None` for an empty record or a malformed first id).
    pub fn id_format(&self) -> Option<MessageIdFormat> {
        self.ids.first().and_then(|id| MessageIdFormat::of(id.as_bytes()))
    }

    /// Checks what [`decode`](Self::decode) checks: at most 50 ids, all well-formed and of one
    /// format, and `sequence` in `0..=1000`.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_count(self.ids.len())?;
        check_sequence(self.sequence)?;
        let expected = self.id_format();
        for (index, id) in self.ids.iter().enumerate() {
            let format = MessageIdFormat::of(id.as_bytes());
            if format.is_none() || format != expected {
                return Err(bad_id(index, id.as_bytes(), expected));
            }
        }
        Ok(())
    }

    /// The record's bytes: [`WAIT_HEADER_BYTES`] + the ids' bytes, slack zeroed. Call
    /// [`validate`](Self::validate) first unless the ids are known good: a record that fails it
    /// encodes to bytes that `decode` refuses.
    pub fn encode(&self) -> Vec<u8> {
        let ids_len: usize = self.ids.iter().map(String::len).sum();
        let mut out = Vec::with_capacity(WAIT_HEADER_BYTES + ids_len);
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&i32::try_from(self.ids.len()).unwrap_or(i32::MAX).to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        for id in &self.ids {
            out.extend_from_slice(id.as_bytes());
        }
        put_zeros(&mut out, WAIT_HEADER_BYTES - WAIT_TEXT_OFFSET);
        out
    }

    /// Reads a record with ids of either format, inferred from its length.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        decode(bytes, None)
    }

    /// Reads a record whose ids must be of `format`.
    pub fn decode_with_format(bytes: &[u8], format: MessageIdFormat) -> Result<Self, RecordError> {
        decode(bytes, Some(format))
    }
}

fn decode(bytes: &[u8], only: Option<MessageIdFormat>) -> Result<WaitRecord, RecordError> {
    let formats = match only {
        Some(format) => vec![format],
        None => vec![MessageIdFormat::Old, MessageIdFormat::New],
    };
    if bytes.len() < WAIT_HEADER_BYTES {
        return Err(length_error(LAYOUT, bytes.len(), format!("at least {WAIT_HEADER_BYTES}")));
    }
    let raw_count = read_i32(bytes, 8);
    let count = usize::try_from(raw_count).map_err(|_| field("count", format!("is negative ({raw_count})")))?;
    check_count(count)?;
    let sequence = read_i32(bytes, 12);
    check_sequence(sequence)?;

    let body = bytes.len() - WAIT_HEADER_BYTES;
    let Some(format) = formats.iter().copied().find(|format| body == count * format.id_length()) else {
        let expected: Vec<String> = formats
            .iter()
            .map(|format| {
                let len = format.id_length();
                format!("{WAIT_HEADER_BYTES} + {count} * {len} = {}", WAIT_HEADER_BYTES + count * len)
            })
            .collect();
        return Err(length_error(LAYOUT, bytes.len(), expected.join(" or ")));
    };
    let text = &bytes[WAIT_TEXT_OFFSET..WAIT_TEXT_OFFSET + body];
    let mut ids = Vec::with_capacity(count);
    for (index, id) in text.chunks_exact(format.id_length()).enumerate() {
        if MessageIdFormat::of(id) != Some(format) {
            return Err(bad_id(index, id, Some(format)));
        }
        // Base-62 digits and dashes are ASCII, so this cannot fail.
        ids.push(String::from_utf8(id.to_vec()).map_err(|_| bad_id(index, id, Some(format)))?);
    }
    Ok(WaitRecord { time_stamp: read_i64(bytes, 0), sequence, ids })
}

fn field(field: &'static str, why: String) -> RecordError {
    RecordError::Field { layout: LAYOUT, field, why }
}

fn check_count(count: usize) -> Result<(), RecordError> {
    if count > WAIT_NAME_MAX {
        return Err(field("count", format!("is {count}, more than WAIT_NAME_MAX ({WAIT_NAME_MAX})")));
    }
    Ok(())
}

fn check_sequence(sequence: i32) -> Result<(), RecordError> {
    match usize::try_from(sequence) {
        Ok(seq) if seq <= WAIT_CONT_MAX => Ok(()),
        Ok(_) => Err(field("sequence", format!("is {sequence}, more than WAIT_CONT_MAX ({WAIT_CONT_MAX})"))),
        Err(_) => Err(field("sequence", format!("is negative ({sequence})"))),
    }
}

fn bad_id(index: usize, id: &[u8], format: Option<MessageIdFormat>) -> RecordError {
    let wanted = match format {
        Some(MessageIdFormat::Old) => "an old-format (16-character) message id",
        Some(MessageIdFormat::New) => "a new-format (23-character) message id",
        None => "a message id",
    };
    field("ids", format!("[{index}] \"{}\" is not {wanted}", id.escape_ascii()))
}
