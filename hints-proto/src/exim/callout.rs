//! The `callout` database's records: a domain record, its obsolete shorter form, and an
//! address record (also the `verify = quota` cache), told apart **only by length**, as
//! `exim_dumpdb` does.
//!
//! ```text
//! dbdata_callout_cache (domain, 40 bytes)
//! offset  size  field
//!      0     8  time_stamp (time_t): last connection
//!      8     4  result (int): MAIL FROM result for the domain
//!     12     4  postmaster_result (int)
//!     16     4  random_result (int)
//!     20     4  padding (written as zero, ignored on read)
//!     24     8  postmaster_stamp (time_t): when postmaster was checked
//!     32     8  random_stamp (time_t): when a random local part was checked
//!
//! dbdata_callout_cache_obs (obsolete domain, 24 bytes): offsets 0..20 as above, then 4 bytes
//! of padding. Exim upgrades it on read by copying time_stamp into both stamps; so does
//! CalloutDomain::decode. It is never written.
//!
//! dbdata_callout_cache_address (address, 16 bytes)
//!      0     8  time_stamp (time_t)
//!      8     4  result (int)
//!     12     4  padding
//! ```
//!
//! Results are Exim's `ccache_*` codes ([`CCACHE_UNKNOWN`] …), kept raw: a value outside them
//! is decoded as is. A stamp whose result is [`CCACHE_UNKNOWN`] is meaningless (Exim leaves
//! it uninitialised: a real record carried `0x314f0cb0d1bc9a00`), so it is **decoded as 0 and
//! encoded as 0**, whatever the bytes or the field hold. `decode(encode(d)) == d` therefore
//! holds for a domain record whose unknown results have zero stamps.

use super::{RecordError, length_error, put_zeros, read_i32, read_i64};

/// `sizeof(dbdata_callout_cache)`: the domain record.
pub const CALLOUT_DOMAIN_BYTES: usize = 40;
/// `sizeof(dbdata_callout_cache_obs)`: the obsolete domain record, without stamps.
pub const CALLOUT_DOMAIN_OBSOLETE_BYTES: usize = 24;
/// `sizeof(dbdata_callout_cache_address)`: the address record.
pub const CALLOUT_ADDRESS_BYTES: usize = 16;
/// Offset of `postmaster_stamp` in the domain record.
pub const CALLOUT_POSTMASTER_STAMP_OFFSET: usize = 24;
/// Offset of `random_stamp` in the domain record.
pub const CALLOUT_RANDOM_STAMP_OFFSET: usize = 32;

/// `ccache_unknown`: the check has not been done (or its result has expired).
pub const CCACHE_UNKNOWN: i32 = 0;
/// `ccache_accept`.
pub const CCACHE_ACCEPT: i32 = 1;
/// `ccache_reject`.
pub const CCACHE_REJECT: i32 = 2;
/// `ccache_reject_mfnull`: the domain rejected `MAIL FROM:<>` (domain records only).
pub const CCACHE_REJECT_MFNULL: i32 = 3;

/// The stamp to store or report for a check with `result`: 0 when the result is unknown.
fn meaningful_stamp(result: i32, stamp: i64) -> i64 {
    if result == CCACHE_UNKNOWN { 0 } else { stamp }
}

/// A domain record: the results of MAIL FROM, postmaster and random-local-part checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CalloutDomain {
    /// Seconds since the epoch of the last connection.
    pub time_stamp: i64,
    /// The domain's result (`ccache_accept`, `ccache_reject` or `ccache_reject_mfnull`).
    pub result: i32,
    /// The postmaster check's result.
    pub postmaster_result: i32,
    /// The random-local-part check's result.
    pub random_result: i32,
    /// When the postmaster check was done; 0 when `postmaster_result` is unknown.
    pub postmaster_stamp: i64,
    /// When the random check was done; 0 when `random_result` is unknown.
    pub random_stamp: i64,
}

impl CalloutDomain {
    /// The record's bytes ([`CALLOUT_DOMAIN_BYTES`]); a stamp whose result is unknown is 0.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CALLOUT_DOMAIN_BYTES);
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.result.to_le_bytes());
        out.extend_from_slice(&self.postmaster_result.to_le_bytes());
        out.extend_from_slice(&self.random_result.to_le_bytes());
        put_zeros(&mut out, 4);
        out.extend_from_slice(&meaningful_stamp(self.postmaster_result, self.postmaster_stamp).to_le_bytes());
        out.extend_from_slice(&meaningful_stamp(self.random_result, self.random_stamp).to_le_bytes());
        out
    }

    /// Reads a domain record of [`CALLOUT_DOMAIN_BYTES`], or of
    /// [`CALLOUT_DOMAIN_OBSOLETE_BYTES`] (upgraded: both stamps become `time_stamp`); a stamp
    /// whose result is unknown reads as 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let (postmaster_stamp, random_stamp) = match bytes.len() {
            CALLOUT_DOMAIN_BYTES => {
                (read_i64(bytes, CALLOUT_POSTMASTER_STAMP_OFFSET), read_i64(bytes, CALLOUT_RANDOM_STAMP_OFFSET))
            }
            CALLOUT_DOMAIN_OBSOLETE_BYTES => (read_i64(bytes, 0), read_i64(bytes, 0)),
            len => {
                return Err(length_error(
                    "callout domain",
                    len,
                    format!("{CALLOUT_DOMAIN_BYTES} (or {CALLOUT_DOMAIN_OBSOLETE_BYTES}, obsolete)"),
                ));
            }
        };
        let postmaster_result = read_i32(bytes, 12);
        let random_result = read_i32(bytes, 16);
        Ok(CalloutDomain {
            time_stamp: read_i64(bytes, 0),
            result: read_i32(bytes, 8),
            postmaster_result,
            random_result,
            postmaster_stamp: meaningful_stamp(postmaster_result, postmaster_stamp),
            random_stamp: meaningful_stamp(random_result, random_stamp),
        })
    }
}

/// An address record: the result of a callout to one address (or a `verify = quota` check).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CalloutAddress {
    /// Seconds since the epoch of the check.
    pub time_stamp: i64,
    /// `ccache_accept` or `ccache_reject`.
    pub result: i32,
}

impl CalloutAddress {
    /// The record's bytes ([`CALLOUT_ADDRESS_BYTES`], padding zeroed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CALLOUT_ADDRESS_BYTES);
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.result.to_le_bytes());
        put_zeros(&mut out, 4);
        out
    }

    /// Reads an address record; refuses any length but [`CALLOUT_ADDRESS_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() != CALLOUT_ADDRESS_BYTES {
            return Err(length_error("callout address", bytes.len(), CALLOUT_ADDRESS_BYTES.to_string()));
        }
        Ok(CalloutAddress { time_stamp: read_i64(bytes, 0), result: read_i32(bytes, 8) })
    }
}

/// Any `callout` record, its kind told by its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalloutRecord {
    /// A domain record (40 bytes, or 24 obsolete, upgraded).
    Domain(CalloutDomain),
    /// An address record (16 bytes).
    Address(CalloutAddress),
}

impl CalloutRecord {
    /// The record's bytes: 40 for a domain, 16 for an address.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            CalloutRecord::Domain(domain) => domain.encode(),
            CalloutRecord::Address(address) => address.encode(),
        }
    }

    /// Reads a record of 16 (address), 24 (obsolete domain) or 40 (domain) bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        match bytes.len() {
            CALLOUT_ADDRESS_BYTES => CalloutAddress::decode(bytes).map(CalloutRecord::Address),
            CALLOUT_DOMAIN_BYTES | CALLOUT_DOMAIN_OBSOLETE_BYTES => {
                CalloutDomain::decode(bytes).map(CalloutRecord::Domain)
            }
            len => Err(length_error(
                "callout",
                len,
                format!(
                    "{CALLOUT_ADDRESS_BYTES} (address), {CALLOUT_DOMAIN_BYTES} (domain) \
                     or {CALLOUT_DOMAIN_OBSOLETE_BYTES} (obsolete domain)"
                ),
            )),
        }
    }
}
