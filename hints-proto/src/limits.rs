//! Every size bound of the protocol, as named constants with the unit last.
//!
//! Both sides check these before they allocate: a frame's length prefix against
//! [`FRAME_BYTES_MAX`] before its body is read, and each field against its own bound once the
//! (already bounded) frame has decoded.

/// The largest frame body, in bytes, not counting the 4-byte length prefix.
pub const FRAME_BYTES_MAX: usize = 1 << 20;
/// The length prefix in front of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;
/// The longest key. Exim's longest keys (retry keys with a host, an address and a message id)
/// are well under 512 bytes.
pub const KEY_BYTES_MAX: usize = 1024;
/// The largest value. Exim's largest records (TLS sessions, full `wait-` records) are a few KiB.
pub const VALUE_BYTES_MAX: usize = 256 * 1024;
/// The longest database name, `[a-z0-9_-]{1,64}`.
pub const DB_NAME_BYTES_MAX: usize = 64;
/// The longest client name sent in the hello (informational, for logs).
pub const CLIENT_NAME_BYTES_MAX: usize = 64;
/// The longest error message a reply carries.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 512;
/// The most records one scan page may ask for.
pub const SCAN_PAGE_RECORDS_MAX: u32 = 1000;
/// A scan page stops adding records once their keys and values pass this many bytes.
pub const SCAN_PAGE_BYTES_MAX: usize = 512 * 1024;
/// Bytes of framing per record in a scan page: varint lengths and the stamp (generous).
pub const RECORD_OVERHEAD_BYTES_MAX: usize = 32;
/// The most requests a connection may have in flight (sent, not yet answered). Requests past
/// this wait in the socket buffer; they are not refused.
pub const PIPELINE_DEPTH_MAX: usize = 128;
/// The longest `ratelimit` or `seen` condition text.
pub const CONDITION_BYTES_MAX: usize = 1024;
/// The longest exclusive-session lease a client may ask for, in milliseconds.
pub const LEASE_MS_MAX: u32 = 60_000;
/// The most databases `stats` reports in one reply.
pub const STATS_DATABASES_MAX: usize = 1024;

// A put of the largest key and value fits a frame.
const _: () = assert!(KEY_BYTES_MAX + VALUE_BYTES_MAX + DB_NAME_BYTES_MAX + 64 < FRAME_BYTES_MAX);
// The worst page: its byte budget (counted over keys and values) nearly spent, one record
// past it at the largest key and value, and the framing of every record it may hold.
const _: () = assert!(
    SCAN_PAGE_BYTES_MAX
        + KEY_BYTES_MAX
        + VALUE_BYTES_MAX
        + (SCAN_PAGE_RECORDS_MAX as usize) * RECORD_OVERHEAD_BYTES_MAX
        + 64
        <= FRAME_BYTES_MAX
);
const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);
