//! `dbdata_ehlo_resp`: the `misc` database's PIPECONNECT cache of a server's EHLO response,
//! keyed `<ip>:<port>.EHLO`.
//!
//! ```text
//! offset  size  field
//!      0     8  time_stamp (time_t)
//!      8     2  cleartext_features (unsigned short, OPTION_* bits)
//!     10     2  crypted_features (unsigned short)
//!     12     2  cleartext_auths (unsigned short, one bit per authenticator)
//!     14     2  crypted_auths (unsigned short)
//!              -- end of the 16-byte record (built without ESMTP limits: Debian 4.96) --
//!     16     4  limit_mail (unsigned int, LIMITS MAILMAX; 0 = not advertised)
//!     20     4  limit_rcpt (unsigned int, RCPTMAX)
//!     24     4  limit_rcptdom (unsigned int, RCPTDOMAINMAX)
//!     28     4  padding to the 8-byte alignment of time_t (written as zero, ignored on read)
//! ```
//! Which of the two sizes a build writes depends on whether Exim was built with the ESMTP
//! limits (`EXPERIMENTAL_ESMTP_LIMITS` in 4.96, on unless `DISABLE_ESMTP_LIMITS` later); the
//! length tells them apart. Exim reads these with `dbfn_read_enforce_length()`, so any other
//! length is refused.

use super::{RecordError, length_error, put_zeros, read_i64, read_u16, read_u32};

/// `sizeof(dbdata_ehlo_resp)` without the ESMTP limits.
pub const EHLO_BYTES: usize = 16;
/// `sizeof(dbdata_ehlo_resp)` with the ESMTP limits.
pub const EHLO_LIMITS_BYTES: usize = 32;
/// Offset of `limit_mail`, the first limit.
pub const EHLO_LIMITS_OFFSET: usize = 16;

const LAYOUT: &str = "ehlo";

/// The ESMTP LIMITS a server advertised (RFC 9422); 0 means "not advertised".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EhloLimits {
    /// `MAILMAX`.
    pub mail: u32,
    /// `RCPTMAX`.
    pub rcpt: u32,
    /// `RCPTDOMAINMAX`.
    pub rcptdom: u32,
}

/// A cached EHLO response: feature and authenticator bitmasks, before and after STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EhloRecord {
    /// Seconds since the epoch.
    pub time_stamp: i64,
    /// Features advertised before STARTTLS.
    pub cleartext_features: u16,
    /// Features advertised after STARTTLS.
    pub crypted_features: u16,
    /// Authenticators usable before STARTTLS.
    pub cleartext_auths: u16,
    /// Authenticators usable after STARTTLS.
    pub crypted_auths: u16,
    /// `Some` for the 32-byte layout (Exim built with ESMTP limits), `None` for 16 bytes.
    pub limits: Option<EhloLimits>,
}

impl EhloRecord {
    /// The record's bytes: [`EHLO_LIMITS_BYTES`] with limits, else [`EHLO_BYTES`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(EHLO_LIMITS_BYTES);
        out.extend_from_slice(&self.time_stamp.to_le_bytes());
        out.extend_from_slice(&self.cleartext_features.to_le_bytes());
        out.extend_from_slice(&self.crypted_features.to_le_bytes());
        out.extend_from_slice(&self.cleartext_auths.to_le_bytes());
        out.extend_from_slice(&self.crypted_auths.to_le_bytes());
        if let Some(limits) = self.limits {
            out.extend_from_slice(&limits.mail.to_le_bytes());
            out.extend_from_slice(&limits.rcpt.to_le_bytes());
            out.extend_from_slice(&limits.rcptdom.to_le_bytes());
            put_zeros(&mut out, 4);
        }
        out
    }

    /// Reads a record of [`EHLO_BYTES`] or [`EHLO_LIMITS_BYTES`]; refuses any other length.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let limits = match bytes.len() {
            EHLO_BYTES => None,
            EHLO_LIMITS_BYTES => Some(EhloLimits {
                mail: read_u32(bytes, EHLO_LIMITS_OFFSET),
                rcpt: read_u32(bytes, EHLO_LIMITS_OFFSET + 4),
                rcptdom: read_u32(bytes, EHLO_LIMITS_OFFSET + 8),
            }),
            len => {
                return Err(length_error(
                    LAYOUT,
                    len,
                    format!("{EHLO_BYTES} (without ESMTP limits) or {EHLO_LIMITS_BYTES} (with them)"),
                ));
            }
        };
        Ok(EhloRecord {
            time_stamp: read_i64(bytes, 0),
            cleartext_features: read_u16(bytes, 8),
            crypted_features: read_u16(bytes, 10),
            cleartext_auths: read_u16(bytes, 12),
            crypted_auths: read_u16(bytes, 14),
            limits,
        })
    }
}
