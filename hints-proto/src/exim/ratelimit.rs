//! `dbdata_ratelimit` and `dbdata_ratelimit_unique`: the `ratelimit` database's records, the
//! second with the Bloom filter of `unique=` and `per_addr`.
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t): the last update, seconds
//!      8     4  time_usec (int): its microseconds, 0..999999
//!     12     4  padding (uninitialised in Exim; written as zero, ignored on read)
//!     16     8  rate (double): the smoothed rate, events per period
//! -- dbdata_ratelimit ends here (24 bytes); dbdata_ratelimit_unique goes on:
//!     24     8  bloom_epoch (time_t): when the filter was made
//!     32     4  bloom_size (unsigned): the filter's length, 40 or more
//!     36  size  bloom
//!  36+size   4  padding (the struct is 80 bytes with its own 40-byte filter)
//! ```
//! A unique record is `sizeof(dbdata_ratelimit_unique)` plus `bloom_size - 40`, so its length
//! is exactly `bloom_size + 40`. Exim tells the two apart by the key (`unique/`) and checks
//! neither length nor `bloom_size` when it reads (CVE-2025-67896 is a `bloom_size` past the
//! record's end); every decoder here checks both, and the time and rate fields.

use super::{RecordError, expect_len, length_error, put_zeros, read_i32, read_i64, read_u32};

/// `sizeof(dbdata_ratelimit)`.
pub const RATELIMIT_BYTES: usize = 24;
/// `sizeof(dbdata_ratelimit_unique)`: the shortest unique record, with a 40-byte filter.
pub const RATELIMIT_UNIQUE_BYTES: usize = 80;
/// The smallest Bloom filter (`sizeof(bloom)` in the struct).
pub const RATELIMIT_BLOOM_MIN_BYTES: usize = 40;
/// Where a unique record's filter starts.
pub const RATELIMIT_BLOOM_OFFSET: usize = 36;
/// The bytes of a unique record that are not its filter: the 36-byte head and 4 bytes of
/// trailing padding.
pub const RATELIMIT_UNIQUE_OVERHEAD_BYTES: usize = RATELIMIT_UNIQUE_BYTES - RATELIMIT_BLOOM_MIN_BYTES;

const TIME_USEC_OFFSET: usize = 8;
const RATE_OFFSET: usize = 16;
const BLOOM_EPOCH_OFFSET: usize = 24;
const BLOOM_SIZE_OFFSET: usize = 32;
const PADDING_BYTES: usize = 4;
const TRAILING_PADDING_BYTES: usize = 4;
const MICROS_PER_SEC: i32 = 1_000_000;

const _: () =
    assert!(RATELIMIT_BLOOM_OFFSET + RATELIMIT_BLOOM_MIN_BYTES + TRAILING_PADDING_BYTES == RATELIMIT_UNIQUE_BYTES);

const LAYOUT: &str = "ratelimit";
const UNIQUE_LAYOUT: &str = "ratelimit_unique";

/// A sender's smoothed rate: `dbdata_ratelimit`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatelimitRecord {
    /// Seconds since the epoch of the last update.
    pub time_stamp: i64,
    /// Microseconds within that second, 0 to 999 999.
    pub time_usec: i32,
    /// The smoothed rate in events per period: finite and not negative.
    pub rate: f64,
}

impl RatelimitRecord {
    /// The 24-byte record, padding written as zero.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RATELIMIT_BYTES);
        self.encode_into(&mut out);
        out
    }

    /// Reads a 24-byte record, ignoring its padding.
    ///
    /// # Errors
    /// Any other length, a `time_usec` outside 0..1 000 000, or a rate that is negative or not
    /// finite.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        expect_len(LAYOUT, bytes, RATELIMIT_BYTES)?;
        RatelimitRecord::decode_head(bytes, LAYOUT)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.time_usec.to_le_bytes());
        put_zeros(out, PADDING_BYTES);
        out.extend_from_slice(&self.rate.to_le_bytes());
    }

    /// Reads and checks the first 24 bytes (the caller has checked there are that many).
    fn decode_head(bytes: &[u8], layout: &'static str) -> Result<RatelimitRecord, RecordError> {
        let time_usec = read_i32(bytes, TIME_USEC_OFFSET);
        if !(0..MICROS_PER_SEC).contains(&time_usec) {
            return Err(RecordError::Field { layout, field: "time_usec", why: format!("is {time_usec}") });
        }
        let rate = read_f64(bytes, RATE_OFFSET);
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(RecordError::Field { layout, field: "rate", why: format!("is {rate}") });
        }
        Ok(RatelimitRecord { time_stamp: read_i64(bytes, 0), time_usec, rate })
    }
}

/// A rate with the Bloom filter of the events already counted: `dbdata_ratelimit_unique`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatelimitUniqueRecord {
    pub base: RatelimitRecord,
    /// When the filter was made (seconds since the epoch).
    pub bloom_epoch: i64,
    /// The filter: at least [`RATELIMIT_BLOOM_MIN_BYTES`] bytes; its length is `bloom_size`.
    pub bloom: Vec<u8>,
}

impl RatelimitUniqueRecord {
    /// The record of `bloom.len() + 40` bytes, padding written as zero.
    ///
    /// # Panics
    /// If the filter is shorter than [`RATELIMIT_BLOOM_MIN_BYTES`] or longer than `u32::MAX` bytes: no
    /// such record exists.
    pub fn encode(&self) -> Vec<u8> {
        let bloom_size = u32::try_from(self.bloom.len()).expect("a Bloom filter under 4 GiB");
        assert!(self.bloom.len() >= RATELIMIT_BLOOM_MIN_BYTES, "a Bloom filter of {} bytes", self.bloom.len());
        let mut out = Vec::with_capacity(self.bloom.len() + RATELIMIT_UNIQUE_OVERHEAD_BYTES);
        self.base.encode_into(&mut out);
        out.extend_from_slice(&self.bloom_epoch.to_le_bytes());
        out.extend_from_slice(&bloom_size.to_le_bytes());
        out.extend_from_slice(&self.bloom);
        put_zeros(&mut out, TRAILING_PADDING_BYTES);
        out
    }

    /// Reads a unique record, checking `bloom_size` against its length.
    ///
    /// # Errors
    /// A record under 80 bytes, a `bloom_size` under 40 or past the record's end, a length
    /// other than `bloom_size + 40`, or a bad time or rate (as [`RatelimitRecord::decode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let len = bytes.len();
        if len < RATELIMIT_UNIQUE_BYTES {
            return Err(length_error(UNIQUE_LAYOUT, len, format!("{RATELIMIT_UNIQUE_BYTES} or more")));
        }
        let bloom_size = read_u32(bytes, BLOOM_SIZE_OFFSET);
        let field = |why: String| RecordError::Field { layout: UNIQUE_LAYOUT, field: "bloom_size", why };
        let bloom_bytes = usize::try_from(bloom_size).map_err(|_| field(format!("{bloom_size} is too large")))?;
        if bloom_bytes < RATELIMIT_BLOOM_MIN_BYTES {
            return Err(field(format!("{bloom_size} is below the layout's {RATELIMIT_BLOOM_MIN_BYTES}")));
        }
        if bloom_bytes > len - RATELIMIT_UNIQUE_OVERHEAD_BYTES {
            return Err(field(format!("{bloom_size} overruns the {len}-byte record")));
        }
        if bloom_bytes < len - RATELIMIT_UNIQUE_OVERHEAD_BYTES {
            let expected = bloom_bytes + RATELIMIT_UNIQUE_OVERHEAD_BYTES;
            return Err(length_error(UNIQUE_LAYOUT, len, format!("{expected} for a bloom_size of {bloom_size}")));
        }
        Ok(RatelimitUniqueRecord {
            base: RatelimitRecord::decode_head(bytes, UNIQUE_LAYOUT)?,
            bloom_epoch: read_i64(bytes, BLOOM_EPOCH_OFFSET),
            bloom: bytes[RATELIMIT_BLOOM_OFFSET..RATELIMIT_BLOOM_OFFSET + bloom_bytes].to_vec(),
        })
    }
}

/// Reads a little-endian `f64` at `at` (the caller has checked the length).
fn read_f64(bytes: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Either `ratelimit` record, told apart by length (Exim knows which from the key's `unique/`).
#[derive(Clone, Debug, PartialEq)]
pub enum RatelimitData {
    Plain(RatelimitRecord),
    Unique(RatelimitUniqueRecord),
}

impl RatelimitData {
    /// The record's bytes in its own layout.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RatelimitData::Plain(record) => record.encode(),
            RatelimitData::Unique(record) => record.encode(),
        }
    }

    /// Reads a 24-byte record as plain and one of 80 bytes or more as unique.
    ///
    /// # Errors
    /// Any other length, or what [`RatelimitRecord::decode`] and
    /// [`RatelimitUniqueRecord::decode`] refuse.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        match bytes.len() {
            RATELIMIT_BYTES => RatelimitRecord::decode(bytes).map(RatelimitData::Plain),
            len if len >= RATELIMIT_UNIQUE_BYTES => RatelimitUniqueRecord::decode(bytes).map(RatelimitData::Unique),
            len => Err(length_error(LAYOUT, len, format!("{RATELIMIT_BYTES}, or {RATELIMIT_UNIQUE_BYTES} or more"))),
        }
    }

    /// The rate part, common to both layouts.
    pub fn base(&self) -> &RatelimitRecord {
        match self {
            RatelimitData::Plain(record) => record,
            RatelimitData::Unique(record) => &record.base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex")).collect()
    }

    const PLAIN: RatelimitRecord =
        RatelimitRecord { time_stamp: 1_700_000_000, time_usec: 123_456, rate: 37.420064675972796 };
    // struct.pack('<qi4xd', 1700000000, 123456, 37.420064675972796)
    const PLAIN_HEX: &str = "00f153650000000040e201000000000006c1e6adc4b54240";

    fn unique_record() -> RatelimitUniqueRecord {
        let mut bloom = vec![0; 42];
        bloom[0] = 0x80;
        bloom[41] = 0x01;
        RatelimitUniqueRecord {
            base: RatelimitRecord { time_stamp: 1_700_000_000, time_usec: 5, rate: 2.0 },
            bloom_epoch: 1_699_990_000,
            bloom,
        }
    }
    // struct.pack('<qi4xdqI', 1700000000, 5, 2.0, 1699990000, 42) + bloom + 4 zero bytes
    const UNIQUE_HEX: &str = concat!(
        "00f15365000000000500000000000000",
        "0000000000000040f0c95365000000002a000000",
        "800000000000000000000000000000000000000000000000000000000000000000000000000000000001",
        "00000000"
    );

    #[test]
    fn a_plain_record_has_exims_bytes() {
        assert_eq!(PLAIN.encode(), hex(PLAIN_HEX));
        assert_eq!(RatelimitRecord::decode(&hex(PLAIN_HEX)), Ok(PLAIN));
        assert_eq!(RatelimitData::decode(&hex(PLAIN_HEX)), Ok(RatelimitData::Plain(PLAIN)));
    }

    #[test]
    fn padding_is_ignored_on_read() {
        // Debian's 4.96 left 0x21000000 in the padding between time_usec and rate.
        let mut bytes = hex(PLAIN_HEX);
        bytes[12..16].copy_from_slice(&0x2100_0000_u32.to_le_bytes());
        assert_eq!(RatelimitRecord::decode(&bytes), Ok(PLAIN));
        let mut unique = hex(UNIQUE_HEX);
        let len = unique.len();
        unique[len - 4..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        unique[12] = 0xff;
        assert_eq!(RatelimitUniqueRecord::decode(&unique), Ok(unique_record()));
    }

    #[test]
    fn a_unique_record_has_exims_bytes() {
        let bytes = hex(UNIQUE_HEX);
        assert_eq!(bytes.len(), 82);
        assert_eq!(unique_record().encode(), bytes);
        assert_eq!(RatelimitUniqueRecord::decode(&bytes), Ok(unique_record()));
        assert_eq!(RatelimitData::decode(&bytes), Ok(RatelimitData::Unique(unique_record())));
        assert_eq!(RatelimitData::Unique(unique_record()).encode(), bytes);
        assert_eq!(RatelimitData::Unique(unique_record()).base().rate, 2.0);
    }

    #[test]
    fn the_smallest_unique_record_is_80_bytes() {
        let record =
            RatelimitUniqueRecord { base: PLAIN, bloom_epoch: 7, bloom: vec![0xa5; RATELIMIT_BLOOM_MIN_BYTES] };
        let bytes = record.encode();
        assert_eq!(bytes.len(), RATELIMIT_UNIQUE_BYTES);
        assert_eq!(&bytes[..24], hex(PLAIN_HEX).as_slice());
        assert_eq!(&bytes[24..32], &7_i64.to_le_bytes());
        assert_eq!(&bytes[32..36], &40_u32.to_le_bytes());
        assert_eq!(&bytes[76..], &[0; 4]);
        assert_eq!(RatelimitUniqueRecord::decode(&bytes), Ok(record));
    }

    #[test]
    fn a_bloom_size_past_the_record_is_refused() {
        // CVE-2025-67896: Exim trusts bloom_size and reads and writes past the record.
        let mut bytes = hex(UNIQUE_HEX);
        bytes[32..36].copy_from_slice(&43_u32.to_le_bytes());
        let err = RatelimitUniqueRecord::decode(&bytes).expect_err("overrun");
        assert!(matches!(&err, RecordError::Field { field: "bloom_size", why, .. } if why.contains("overruns")));
        bytes[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(RatelimitData::decode(&bytes), Err(RecordError::Field { field: "bloom_size", .. })));
    }

    #[test]
    fn a_bloom_size_below_the_layout_is_refused() {
        let mut bytes = vec![0; RATELIMIT_UNIQUE_BYTES];
        for size in [0_u32, 39] {
            bytes[32..36].copy_from_slice(&size.to_le_bytes());
            let err = RatelimitUniqueRecord::decode(&bytes).expect_err("small filter");
            assert!(matches!(&err, RecordError::Field { field: "bloom_size", why, .. } if why.contains("below")));
        }
    }

    #[test]
    fn a_unique_record_longer_than_its_filter_is_refused() {
        let mut bytes = hex(UNIQUE_HEX);
        bytes.extend_from_slice(&[0; 8]);
        let err = RatelimitUniqueRecord::decode(&bytes).expect_err("slack");
        assert_eq!(
            err,
            RecordError::Length { layout: UNIQUE_LAYOUT, len: 90, expected: "82 for a bloom_size of 42".into() }
        );
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for len in [0, 8, 23, 25, 32, 79] {
            let bytes = vec![0; len];
            assert!(matches!(RatelimitData::decode(&bytes), Err(RecordError::Length { .. })), "{len}");
            assert!(matches!(RatelimitUniqueRecord::decode(&bytes), Err(RecordError::Length { .. })), "{len}");
        }
        assert!(matches!(RatelimitRecord::decode(&[0; 80]), Err(RecordError::Length { len: 80, .. })));
        let err = RatelimitData::decode(&[0; 30]).expect_err("30 bytes");
        assert_eq!(err.to_string(), "ratelimit record of 30 bytes; expected 24, or 80 or more");
    }

    #[test]
    fn impossible_times_and_rates_are_refused() {
        for time_usec in [-1_i32, 1_000_000, i32::MAX] {
            let bytes = RatelimitRecord { time_usec, ..PLAIN }.encode();
            let err = RatelimitRecord::decode(&bytes).expect_err("time_usec");
            assert!(matches!(err, RecordError::Field { field: "time_usec", .. }), "{time_usec}");
        }
        for rate in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let bytes = RatelimitRecord { rate, ..PLAIN }.encode();
            let err = RatelimitData::decode(&bytes).expect_err("rate");
            assert!(matches!(err, RecordError::Field { field: "rate", .. }), "{rate}");
            let mut unique = unique_record();
            unique.base.rate = rate;
            let err = RatelimitUniqueRecord::decode(&unique.encode()).expect_err("rate");
            assert!(matches!(err, RecordError::Field { layout: UNIQUE_LAYOUT, field: "rate", .. }), "{rate}");
        }
    }

    #[test]
    #[should_panic(expected = "a Bloom filter of 39 bytes")]
    fn a_filter_under_40_bytes_cannot_be_encoded() {
        let _ = RatelimitUniqueRecord { base: PLAIN, bloom_epoch: 0, bloom: vec![0; 39] }.encode();
    }
}
