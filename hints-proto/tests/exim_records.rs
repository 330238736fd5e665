//! Golden bytes for Exim's hints record layouts (released Exim, x86-64, little-endian), written by
//! hand from `shared/reference/exim-hints.md` §1.2 and the Debian 4.96 dumps in §3.1, then round
//! trips, every rejection, and property tests.
//!
//! Times in the observed records are from the reference's dumps (TZ=UTC):
//! - 29-Nov-2026 13:32:42 = 1795959162 = 0x6b0c297a -> `7a 29 0c 6b 00 00 00 00`
//! - 29-Nov-2026 13:33:02 = 1795959182 = 0x6b0c298e -> `8e 29 0c 6b 00 00 00 00`
//! - 29-Nov-2026 13:33:14 = 1795959194 = 0x6b0c299a -> `9a 29 0c 6b 00 00 00 00`
//! - 29-Nov-2026 13:33:30 = 1795959210 = 0x6b0c29aa -> `aa 29 0c 6b 00 00 00 00`
//! - 29-Nov-2026 13:33:33 = 1795959213 = 0x6b0c29ad -> `ad 29 0c 6b 00 00 00 00`
//! - 29-Nov-2026 13:48:02 = 1795960082 = 0x6b0c2d12 -> `12 2d 0c 6b 00 00 00 00`
//!
//! If a golden test fails, the layout changed: a record would no longer match what Exim writes.
//! Do not update the hex to match the encoder.

mod support;

use hints_proto::exim::callout::{
    CALLOUT_ADDRESS_BYTES, CALLOUT_DOMAIN_BYTES, CALLOUT_DOMAIN_OBSOLETE_BYTES, CALLOUT_POSTMASTER_STAMP_OFFSET,
    CALLOUT_RANDOM_STAMP_OFFSET, CCACHE_ACCEPT, CCACHE_REJECT, CCACHE_REJECT_MFNULL, CCACHE_UNKNOWN,
};
use hints_proto::exim::ehlo::{EHLO_BYTES, EHLO_LIMITS_BYTES, EHLO_LIMITS_OFFSET};
use hints_proto::exim::retry::{
    RETRY_HEADER_BYTES, RETRY_MAX_BYTES, RETRY_MIN_BYTES, RETRY_TEXT_MAX, RETRY_TEXT_OFFSET,
};
use hints_proto::exim::seen::SEEN_BYTES;
use hints_proto::exim::serialize::SERIALIZE_BYTES;
use hints_proto::exim::wait::{
    MESSAGE_ID_LENGTH, MESSAGE_ID_LENGTH_OLD, WAIT_CONT_MAX, WAIT_HEADER_BYTES, WAIT_NAME_MAX, WAIT_TEXT_OFFSET,
};
use hints_proto::exim::{
    CalloutAddress, CalloutDomain, CalloutRecord, EhloLimits, EhloRecord, MessageIdFormat, RecordError, RetryRecord,
    SeenRecord, SerializeRecord, WaitRecord,
};
use proptest::prelude::*;
use support::{hex, to_hex};

fn assert_bytes(actual: &[u8], expected: &[u8]) {
    assert_eq!(to_hex(actual), to_hex(expected));
}

/// Asserts a length error naming `layout` and `len`.
fn assert_length_error<T: std::fmt::Debug>(result: Result<T, RecordError>, layout: &str, len: usize) {
    match result {
        Err(err @ RecordError::Length { .. }) => {
            let RecordError::Length { layout: got, len: got_len, .. } = &err else { unreachable!() };
            assert_eq!((*got, *got_len), (layout, len), "{err}");
            let message = err.to_string();
            assert!(message.starts_with(&format!("{layout} record of {len} bytes; expected ")), "{message}");
        }
        other => panic!("{layout} of {len} bytes: expected a length error, got {other:?}"),
    }
}

/// Asserts a field error naming `layout` and `field`.
fn assert_field_error<T: std::fmt::Debug>(result: Result<T, RecordError>, layout: &str, field: &str) {
    match result {
        Err(err @ RecordError::Field { .. }) => {
            let RecordError::Field { layout: got, field: got_field, .. } = &err else { unreachable!() };
            assert_eq!((*got, *got_field), (layout, field), "{err}");
            assert!(err.to_string().starts_with(&format!("{layout} record: {field} ")), "{err}");
        }
        other => panic!("expected a {layout} {field} error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

#[test]
fn sizes_are_the_released_layouts() {
    assert_eq!((RETRY_HEADER_BYTES, RETRY_TEXT_OFFSET, RETRY_MIN_BYTES), (48, 44, 45));
    assert_eq!((RETRY_TEXT_MAX, RETRY_MAX_BYTES), (150, 198));
    assert_eq!((CALLOUT_DOMAIN_BYTES, CALLOUT_DOMAIN_OBSOLETE_BYTES, CALLOUT_ADDRESS_BYTES), (40, 24, 16));
    assert_eq!((CALLOUT_POSTMASTER_STAMP_OFFSET, CALLOUT_RANDOM_STAMP_OFFSET), (24, 32));
    assert_eq!((CCACHE_UNKNOWN, CCACHE_ACCEPT, CCACHE_REJECT, CCACHE_REJECT_MFNULL), (0, 1, 2, 3));
    assert_eq!((WAIT_HEADER_BYTES, WAIT_TEXT_OFFSET, WAIT_NAME_MAX, WAIT_CONT_MAX), (24, 16, 50, 1000));
    assert_eq!((MESSAGE_ID_LENGTH_OLD, MESSAGE_ID_LENGTH), (16, 23));
    assert_eq!((MessageIdFormat::Old.id_length(), MessageIdFormat::New.id_length()), (16, 23));
    assert_eq!(SEEN_BYTES, 8);
    assert_eq!(SERIALIZE_BYTES, 16);
    assert_eq!((EHLO_BYTES, EHLO_LIMITS_BYTES, EHLO_LIMITS_OFFSET), (16, 32, 16));
}

// ---------------------------------------------------------------------------------------------
// retry
// ---------------------------------------------------------------------------------------------

/// `T:127.0.0.1:127.0.0.1:2526 111 65 Connection refused`, first failed and last tried at
/// 13:33:02, next try 13:48:02 (rule F,2h,15m), not expired: the observed 66-byte record.
fn connection_refused() -> RetryRecord {
    RetryRecord {
        time_stamp: 1795959182,
        first_failed: 1795959182,
        last_try: 1795959182,
        next_try: 1795960082,
        expired: false,
        basic_errno: 111,
        more_errno: 65,
        text: b"Connection refused".to_vec(),
    }
}

const CONNECTION_REFUSED: &str = "
    8e 29 0c 6b 00 00 00 00     # @0  time_stamp   13:33:02
    8e 29 0c 6b 00 00 00 00     # @8  first_failed 13:33:02
    8e 29 0c 6b 00 00 00 00     # @16 last_try     13:33:02
    12 2d 0c 6b 00 00 00 00     # @24 next_try     13:48:02
    00 00 00 00                 # @32 expired      FALSE
    6f 00 00 00                 # @36 basic_errno  111 (ECONNREFUSED)
    41 00 00 00                 # @40 more_errno   65 ('A': the connect was to an A record)
    43 6f 6e 6e 65 63 74 69 6f 6e 20 72 65 66 75 73 65 64   # @44 text 'Connection refused' (18)
    00                          # @62 NUL
    00 00 00                    # @63 slack to 48 + 18 = 66
";

#[test]
fn retry_golden_connection_refused_is_66_bytes() {
    let bytes = hex(CONNECTION_REFUSED);
    assert_eq!(bytes.len(), 66);
    assert_eq!(bytes.len(), RETRY_HEADER_BYTES + "Connection refused".len());
    assert_bytes(&connection_refused().encode(), &bytes);
    assert_eq!(RetryRecord::decode(&bytes).unwrap(), connection_refused());
}

#[test]
fn retry_decode_ignores_garbage_slack() {
    // Exim leaves the 3 bytes after the NUL uninitialised.
    let mut bytes = hex(CONNECTION_REFUSED);
    bytes[63..66].copy_from_slice(&[0xde, 0xad, 0xbf]);
    assert_eq!(RetryRecord::decode(&bytes).unwrap(), connection_refused());
}

#[test]
fn retry_golden_expired_with_empty_text() {
    let record = RetryRecord {
        time_stamp: 1,
        first_failed: -2,
        last_try: 0x0102030405060708,
        next_try: i64::MAX,
        expired: true,
        basic_errno: -18, // ERRNO_RRETRY-style negative Exim code
        more_errno: 0x4103,
        text: Vec::new(),
    };
    let bytes = hex("
        01 00 00 00 00 00 00 00     # time_stamp 1
        fe ff ff ff ff ff ff ff     # first_failed -2
        08 07 06 05 04 03 02 01     # last_try 0x0102030405060708
        ff ff ff ff ff ff ff 7f     # next_try i64::MAX
        01 00 00 00                 # expired TRUE
        ee ff ff ff                 # basic_errno -18
        03 41 00 00                 # more_errno 0x4103
        00                          # @44 empty text's NUL
        00 00 00                    # slack: 48 + 0 = 48
    ");
    assert_eq!(bytes.len(), RETRY_HEADER_BYTES);
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(RetryRecord::decode(&bytes).unwrap(), record);
}

#[test]
fn retry_decode_accepts_the_shortest_and_longer_records() {
    let mut bytes = hex(CONNECTION_REFUSED)[..RETRY_TEXT_OFFSET].to_vec();
    bytes.push(0); // 45 bytes: an empty text with no slack
    let record = RetryRecord::decode(&bytes).unwrap();
    assert!(record.text.is_empty());
    assert_eq!(record.next_try, 1795960082);

    // Any non-zero BOOL is true, as in C.
    let mut expired = hex(CONNECTION_REFUSED);
    expired[32] = 2;
    assert!(RetryRecord::decode(&expired).unwrap().expired);

    // Bytes after the NUL beyond the slack are ignored, as Exim ignores them.
    let mut long = hex(CONNECTION_REFUSED);
    long.extend_from_slice(b"trailing junk");
    assert_eq!(RetryRecord::decode(&long).unwrap(), connection_refused());

    // A text longer than EXIM_DB_RLIMIT (an Exim before the cap) is kept whole on read.
    let mut uncapped = hex(CONNECTION_REFUSED)[..RETRY_TEXT_OFFSET].to_vec();
    uncapped.extend(std::iter::repeat_n(b'x', 200));
    uncapped.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(RetryRecord::decode(&uncapped).unwrap().text.len(), 200);
}

#[test]
fn retry_encode_caps_the_text_at_150_bytes_and_at_a_nul() {
    let mut record = connection_refused();
    record.text = vec![b'y'; 400];
    let bytes = record.encode();
    assert_eq!(bytes.len(), RETRY_MAX_BYTES);
    assert_eq!(&bytes[RETRY_TEXT_OFFSET..RETRY_TEXT_OFFSET + 150], &[b'y'; 150][..]);
    assert_eq!(bytes[RETRY_TEXT_OFFSET + 150], 0);
    assert_eq!(RetryRecord::decode(&bytes).unwrap().text, vec![b'y'; 150]);

    record.text = b"before\0after".to_vec();
    assert_eq!(record.stored_text(), b"before");
    let bytes = record.encode();
    assert_eq!(bytes.len(), RETRY_HEADER_BYTES + 6);
    assert_eq!(RetryRecord::decode(&bytes).unwrap().text, b"before");
}

#[test]
fn retry_rejects_records_shorter_than_45_bytes() {
    let full = hex(CONNECTION_REFUSED);
    for len in 0..RETRY_MIN_BYTES {
        assert_length_error(RetryRecord::decode(&full[..len]), "retry", len);
    }
}

#[test]
fn retry_rejects_a_text_without_nul() {
    let full = hex(CONNECTION_REFUSED);
    // Cut just before the NUL: 44 + 18 bytes, all text.
    assert_field_error(RetryRecord::decode(&full[..62]), "retry", "text");
    // 45 bytes whose one text byte is not a NUL.
    assert_field_error(RetryRecord::decode(&full[..45]), "retry", "text");
    let mut no_nul = full.clone();
    no_nul[62..].fill(b'!');
    assert_field_error(RetryRecord::decode(&no_nul), "retry", "text");
}

// ---------------------------------------------------------------------------------------------
// callout
// ---------------------------------------------------------------------------------------------

/// `stub.example callout=accept postmaster=unknown random=reject (13:33:33)`, with the
/// observed garbage postmaster_stamp 0x314f0cb0d1bc9a00 and garbage padding.
const STUB_DOMAIN_AS_EXIM_WROTE_IT: &str = "
    ad 29 0c 6b 00 00 00 00     # @0  time_stamp        13:33:33
    01 00 00 00                 # @8  result            ccache_accept
    00 00 00 00                 # @12 postmaster_result ccache_unknown
    02 00 00 00                 # @16 random_result     ccache_reject
    00 00 00 21                 # @20 padding (garbage)
    00 9a bc d1 b0 0c 4f 31     # @24 postmaster_stamp  garbage: result unknown
    ad 29 0c 6b 00 00 00 00     # @32 random_stamp      13:33:33
";

const STUB_DOMAIN_AS_ENCODED: &str = "
    ad 29 0c 6b 00 00 00 00     # @0  time_stamp        13:33:33
    01 00 00 00                 # @8  result            ccache_accept
    00 00 00 00                 # @12 postmaster_result ccache_unknown
    02 00 00 00                 # @16 random_result     ccache_reject
    00 00 00 00                 # @20 padding, zeroed
    00 00 00 00 00 00 00 00     # @24 postmaster_stamp  0: result unknown
    ad 29 0c 6b 00 00 00 00     # @32 random_stamp      13:33:33
";

fn stub_domain() -> CalloutDomain {
    CalloutDomain {
        time_stamp: 1795959213,
        result: CCACHE_ACCEPT,
        postmaster_result: CCACHE_UNKNOWN,
        random_result: CCACHE_REJECT,
        postmaster_stamp: 0,
        random_stamp: 1795959213,
    }
}

#[test]
fn callout_domain_golden_ignores_the_garbage_stamp_of_an_unknown_result() {
    let exim = hex(STUB_DOMAIN_AS_EXIM_WROTE_IT);
    assert_eq!(exim.len(), CALLOUT_DOMAIN_BYTES);
    assert_eq!(CalloutDomain::decode(&exim).unwrap(), stub_domain());
    assert_eq!(CalloutRecord::decode(&exim).unwrap(), CalloutRecord::Domain(stub_domain()));

    let ours = hex(STUB_DOMAIN_AS_ENCODED);
    assert_bytes(&stub_domain().encode(), &ours);
    assert_bytes(&CalloutRecord::Domain(stub_domain()).encode(), &ours);
    assert_eq!(CalloutDomain::decode(&ours).unwrap(), stub_domain());

    // A stamp set in the struct for an unknown result is not written.
    let mut with_stamp = stub_domain();
    with_stamp.postmaster_stamp = 0x314f0cb0d1bc9a00;
    assert_bytes(&with_stamp.encode(), &ours);
}

#[test]
fn callout_domain_golden_all_known() {
    let record = CalloutDomain {
        time_stamp: 1795959213,
        result: CCACHE_REJECT_MFNULL,
        postmaster_result: CCACHE_ACCEPT,
        random_result: CCACHE_ACCEPT,
        postmaster_stamp: 1795959182,
        random_stamp: -1,
    };
    let bytes = hex("
        ad 29 0c 6b 00 00 00 00     # time_stamp 13:33:33
        03 00 00 00                 # result ccache_reject_mfnull
        01 00 00 00                 # postmaster_result ccache_accept
        01 00 00 00                 # random_result ccache_accept
        00 00 00 00                 # padding
        8e 29 0c 6b 00 00 00 00     # postmaster_stamp 13:33:02
        ff ff ff ff ff ff ff ff     # random_stamp -1
    ");
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(CalloutDomain::decode(&bytes).unwrap(), record);
}

#[test]
fn callout_obsolete_domain_is_upgraded_with_time_stamp_in_both_stamps() {
    let bytes = hex("
        ad 29 0c 6b 00 00 00 00     # time_stamp 13:33:33
        01 00 00 00                 # result ccache_accept
        01 00 00 00                 # postmaster_result ccache_accept
        02 00 00 00                 # random_result ccache_reject
        55 55 55 55                 # padding (garbage)
    ");
    assert_eq!(bytes.len(), CALLOUT_DOMAIN_OBSOLETE_BYTES);
    let upgraded = CalloutDomain {
        time_stamp: 1795959213,
        result: CCACHE_ACCEPT,
        postmaster_result: CCACHE_ACCEPT,
        random_result: CCACHE_REJECT,
        postmaster_stamp: 1795959213,
        random_stamp: 1795959213,
    };
    assert_eq!(CalloutDomain::decode(&bytes).unwrap(), upgraded);
    assert_eq!(CalloutRecord::decode(&bytes).unwrap(), CalloutRecord::Domain(upgraded));
    // Written back, it takes the current 40-byte layout.
    assert_eq!(upgraded.encode().len(), CALLOUT_DOMAIN_BYTES);

    // An unknown result in an obsolete record still gets a zero stamp.
    let mut unknown = bytes.clone();
    unknown[12..16].copy_from_slice(&[0, 0, 0, 0]);
    let decoded = CalloutDomain::decode(&unknown).unwrap();
    assert_eq!((decoded.postmaster_stamp, decoded.random_stamp), (0, 1795959213));
}

#[test]
fn callout_address_golden() {
    // `alice@stub.example callout=reject` at 13:33:33, with garbage padding.
    let exim = hex("
        ad 29 0c 6b 00 00 00 00     # @0 time_stamp 13:33:33
        02 00 00 00                 # @8 result     ccache_reject
        ef be ad de                 # @12 padding (garbage)
    ");
    let ours = hex("
        ad 29 0c 6b 00 00 00 00     # @0 time_stamp 13:33:33
        02 00 00 00                 # @8 result     ccache_reject
        00 00 00 00                 # @12 padding, zeroed
    ");
    let record = CalloutAddress { time_stamp: 1795959213, result: CCACHE_REJECT };
    assert_eq!(CalloutAddress::decode(&exim).unwrap(), record);
    assert_eq!(CalloutRecord::decode(&exim).unwrap(), CalloutRecord::Address(record));
    assert_bytes(&record.encode(), &ours);
    assert_bytes(&CalloutRecord::Address(record).encode(), &ours);
}

#[test]
fn callout_results_outside_the_codes_are_kept_raw() {
    let mut bytes = hex(STUB_DOMAIN_AS_ENCODED);
    bytes[8..12].copy_from_slice(&7i32.to_le_bytes());
    assert_eq!(CalloutDomain::decode(&bytes).unwrap().result, 7);
}

#[test]
fn callout_rejects_every_other_length() {
    let long = [0u8; 100];
    for len in 0..=long.len() {
        let bytes = &long[..len];
        if ![CALLOUT_ADDRESS_BYTES, CALLOUT_DOMAIN_OBSOLETE_BYTES, CALLOUT_DOMAIN_BYTES].contains(&len) {
            assert_length_error(CalloutRecord::decode(bytes), "callout", len);
        }
        if ![CALLOUT_DOMAIN_OBSOLETE_BYTES, CALLOUT_DOMAIN_BYTES].contains(&len) {
            assert_length_error(CalloutDomain::decode(bytes), "callout domain", len);
        }
        if len != CALLOUT_ADDRESS_BYTES {
            assert_length_error(CalloutAddress::decode(bytes), "callout address", len);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------------------------

/// `127.0.0.1 1xXf1a-00031B-22 1xXf1a-00031H-29`: the observed 56-byte record of 4.96.
const WAIT_TWO_OLD_IDS: &str = "
    8e 29 0c 6b 00 00 00 00     # @0  time_stamp 13:33:02
    02 00 00 00                 # @8  count 2
    00 00 00 00                 # @12 sequence 0
    31 78 58 66 31 61 2d 30 30 30 33 31 42 2d 32 32   # @16 '1xXf1a-00031B-22'
    31 78 58 66 31 61 2d 30 30 30 33 31 48 2d 32 39   # @32 '1xXf1a-00031H-29'
    00 00 00 00 00 00 00 00     # @48 slack to 24 + 2 * 16 = 56
";

fn two_old_ids() -> WaitRecord {
    WaitRecord {
        time_stamp: 1795959182,
        sequence: 0,
        ids: vec!["1xXf1a-00031B-22".to_owned(), "1xXf1a-00031H-29".to_owned()],
    }
}

#[test]
fn wait_golden_two_old_ids_is_56_bytes() {
    let bytes = hex(WAIT_TWO_OLD_IDS);
    assert_eq!(bytes.len(), 56);
    let record = two_old_ids();
    assert_eq!(record.count(), 2);
    assert_eq!(record.id_format(), Some(MessageIdFormat::Old));
    assert_eq!(record.validate(), Ok(()));
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(WaitRecord::decode(&bytes).unwrap(), record);
    assert_eq!(WaitRecord::decode_with_format(&bytes, MessageIdFormat::Old).unwrap(), record);

    // Garbage in the slack is ignored.
    let mut garbage = bytes.clone();
    garbage[48..].fill(0xaa);
    assert_eq!(WaitRecord::decode(&garbage).unwrap(), record);
}

#[test]
fn wait_golden_new_ids_with_continuations() {
    let bytes = hex("
        12 2d 0c 6b 00 00 00 00     # @0  time_stamp 13:48:02
        02 00 00 00                 # @8  count 2
        03 00 00 00                 # @12 sequence 3 (continuations host:0 .. host:2)
        31 76 51 32 5a 72 2d 30 30 30 30 30 30 30 31 32 33 34 2d 30 41 31 62   # @16 '1vQ2Zr-00000001234-0A1b'
        31 76 51 32 5a 72 2d 7a 7a 7a 7a 7a 7a 7a 7a 7a 7a 7a 2d 5a 5a 5a 5a   # @39 '1vQ2Zr-zzzzzzzzzzz-ZZZZ'
        00 00 00 00 00 00 00 00     # @62 slack to 24 + 2 * 23 = 70
    ");
    assert_eq!(bytes.len(), 70);
    let record = WaitRecord {
        time_stamp: 1795960082,
        sequence: 3,
        ids: vec!["1vQ2Zr-00000001234-0A1b".to_owned(), "1vQ2Zr-zzzzzzzzzzz-ZZZZ".to_owned()],
    };
    assert_eq!(record.id_format(), Some(MessageIdFormat::New));
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(WaitRecord::decode(&bytes).unwrap(), record);
    assert_eq!(WaitRecord::decode_with_format(&bytes, MessageIdFormat::New).unwrap(), record);
    assert_length_error(WaitRecord::decode_with_format(&bytes, MessageIdFormat::Old), "wait", 70);
    assert_length_error(WaitRecord::decode_with_format(&hex(WAIT_TWO_OLD_IDS), MessageIdFormat::New), "wait", 56);
}

#[test]
fn wait_golden_empty_record() {
    let bytes = hex("
        01 00 00 00 00 00 00 00     # time_stamp 1
        00 00 00 00                 # count 0
        e8 03 00 00                 # sequence 1000 (WAIT_CONT_MAX, the largest allowed)
        00 00 00 00 00 00 00 00     # slack: text[1] and padding, 24 bytes in all
    ");
    let record = WaitRecord { time_stamp: 1, sequence: 1000, ids: Vec::new() };
    assert_eq!(record.id_format(), None);
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(WaitRecord::decode(&bytes).unwrap(), record);
    for format in [MessageIdFormat::Old, MessageIdFormat::New] {
        assert_eq!(WaitRecord::decode_with_format(&bytes, format).unwrap(), record);
    }
}

#[test]
fn wait_accepts_a_full_record_of_50_ids() {
    let ids: Vec<String> = (0..50).map(|n| format!("1xXf1a-0003{n:02}-22")).collect();
    let record = WaitRecord { time_stamp: 7, sequence: 1, ids };
    assert_eq!(record.validate(), Ok(()));
    let bytes = record.encode();
    assert_eq!(bytes.len(), 24 + 50 * 16);
    assert_eq!(WaitRecord::decode(&bytes).unwrap(), record);
}

/// A wait header with `count` and `sequence`, followed by `body`.
fn wait_bytes(count: i32, sequence: i32, body: &[u8]) -> Vec<u8> {
    wait_bytes_with(5, count, sequence, body)
}

fn old_ids(count: usize) -> Vec<u8> {
    let mut text = b"1xXf1a-00031B-22".repeat(count);
    text.extend_from_slice(&[0; 8]);
    text
}

#[test]
fn wait_rejects_a_count_over_50() {
    // The length would fit 51 old ids: the count alone is refused.
    let bytes = wait_bytes(51, 0, &old_ids(51));
    assert_eq!(bytes.len(), 24 + 51 * 16);
    assert_field_error(WaitRecord::decode(&bytes), "wait", "count");
    assert_field_error(WaitRecord::decode(&wait_bytes(i32::MAX, 0, &[0; 8])), "wait", "count");
    assert_field_error(WaitRecord::decode(&wait_bytes(-1, 0, &[0; 8])), "wait", "count");

    let mut record = two_old_ids();
    record.ids = vec!["1xXf1a-00031B-22".to_owned(); 51];
    assert_field_error(record.validate(), "wait", "count");
    assert_field_error(WaitRecord::decode(&record.encode()), "wait", "count");
}

#[test]
fn wait_rejects_a_sequence_over_1000_or_negative() {
    assert_field_error(WaitRecord::decode(&wait_bytes(2, 1001, &old_ids(2))), "wait", "sequence");
    assert_field_error(WaitRecord::decode(&wait_bytes(2, -1, &old_ids(2))), "wait", "sequence");
    let mut record = two_old_ids();
    record.sequence = 1001;
    assert_field_error(record.validate(), "wait", "sequence");
}

#[test]
fn wait_rejects_every_wrong_length() {
    let full = hex(WAIT_TWO_OLD_IDS);
    for len in 0..WAIT_HEADER_BYTES {
        assert_length_error(WaitRecord::decode(&full[..len]), "wait", len);
    }
    // count 2: only 24 + 32 = 56 and 24 + 46 = 70 fit.
    let mut long = full.clone();
    long.resize(100, 0);
    for len in WAIT_HEADER_BYTES..=long.len() {
        if len != 56 && len != 70 {
            assert_length_error(WaitRecord::decode(&long[..len]), "wait", len);
        }
    }
    // count 0 must be exactly 24.
    assert_length_error(WaitRecord::decode(&wait_bytes(0, 0, &[0; 9])), "wait", 25);
    let message = WaitRecord::decode(&full[..55]).unwrap_err().to_string();
    assert_eq!(message, "wait record of 55 bytes; expected 24 + 2 * 16 = 56 or 24 + 2 * 23 = 70");
}

#[test]
fn wait_rejects_malformed_ids() {
    for bad in [
        &b"1xXf1a_00031B-22"[..],  // underscore for the first dash
        b"1xXf1a-00031B222",       // no second dash
        b"1xXf1a-0003-B-22",       // a dash out of place
        b"1xXf1a-00031B-2\0",      // a NUL
        b"1xXf1a-0\xc3\xa931B-22", // not ASCII
    ] {
        let mut text = b"1xXf1a-00031H-29".to_vec();
        text.extend_from_slice(bad);
        text.extend_from_slice(&[0; 8]);
        assert_field_error(WaitRecord::decode(&wait_bytes(2, 0, &text)), "wait", "ids");
    }
    // Mixed formats in a struct.
    let mut record = two_old_ids();
    record.ids.push("1vQ2Zr-00000001234-0A1b".to_owned());
    assert_field_error(record.validate(), "wait", "ids");
    // Encoded, 24 + 16 + 16 + 23 = 79 bytes fit neither id length.
    assert_length_error(WaitRecord::decode(&record.encode()), "wait", 79);
    record.ids = vec!["not an id".to_owned()];
    assert_field_error(record.validate(), "wait", "ids");
}

#[test]
fn message_id_format_of() {
    assert_eq!(MessageIdFormat::of(b"1xXf1a-00031B-22"), Some(MessageIdFormat::Old));
    assert_eq!(MessageIdFormat::of(b"1vQ2Zr-00000001234-0A1b"), Some(MessageIdFormat::New));
    assert_eq!(MessageIdFormat::of(b"1vQ2Zr-0000000123-40A1b"), None);
    assert_eq!(MessageIdFormat::of(b""), None);
}

// ---------------------------------------------------------------------------------------------
// seen, serialize, ehlo
// ---------------------------------------------------------------------------------------------

#[test]
fn seen_golden() {
    // `conn-192.0.2.10	29-Nov-2026 13:32:42`.
    let bytes = hex("7a 29 0c 6b 00 00 00 00   # time_stamp 1795959162 = 0x6b0c297a");
    let record = SeenRecord { time_stamp: 1795959162 };
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(SeenRecord::decode(&bytes).unwrap(), record);

    let before_epoch = hex("ff ff ff ff ff ff ff ff   # time_stamp -1");
    assert_eq!(SeenRecord::decode(&before_epoch).unwrap(), SeenRecord { time_stamp: -1 });
}

#[test]
fn seen_rejects_every_other_length() {
    let long = [0u8; 40];
    for len in (0..=long.len()).filter(|&len| len != SEEN_BYTES) {
        assert_length_error(SeenRecord::decode(&long[..len]), "seen", len);
    }
}

#[test]
fn serialize_golden() {
    // `tpt-serialize-smtp_slow` at 13:33:14, one delivery running.
    let exim = hex("
        9a 29 0c 6b 00 00 00 00     # @0  time_stamp 13:33:14
        01 00 00 00                 # @8  count 1
        21 00 00 00                 # @12 padding (garbage)
    ");
    let ours = hex("
        9a 29 0c 6b 00 00 00 00     # @0  time_stamp 13:33:14
        01 00 00 00                 # @8  count 1
        00 00 00 00                 # @12 padding, zeroed
    ");
    let record = SerializeRecord { time_stamp: 1795959194, count: 1 };
    assert_eq!(SerializeRecord::decode(&exim).unwrap(), record);
    assert_bytes(&record.encode(), &ours);
    let negative = SerializeRecord { time_stamp: 0, count: -3 };
    assert_eq!(SerializeRecord::decode(&negative.encode()).unwrap(), negative);
}

#[test]
fn serialize_rejects_every_other_length() {
    let long = [0u8; 40];
    for len in (0..=long.len()).filter(|&len| len != SERIALIZE_BYTES) {
        assert_length_error(SerializeRecord::decode(&long[..len]), "serialize", len);
    }
}

#[test]
fn ehlo_golden_without_limits_is_16_bytes() {
    // `127.0.0.1:2525.EHLO` at 13:33:30, the size Debian 4.96 writes.
    let bytes = hex("
        aa 29 0c 6b 00 00 00 00     # @0  time_stamp 13:33:30
        34 12                       # @8  cleartext_features 0x1234
        cd ab                       # @10 crypted_features   0xabcd
        01 00                       # @12 cleartext_auths    0x0001
        00 80                       # @14 crypted_auths      0x8000
    ");
    let record = EhloRecord {
        time_stamp: 1795959210,
        cleartext_features: 0x1234,
        crypted_features: 0xabcd,
        cleartext_auths: 0x0001,
        crypted_auths: 0x8000,
        limits: None,
    };
    assert_bytes(&record.encode(), &bytes);
    assert_eq!(EhloRecord::decode(&bytes).unwrap(), record);
}

#[test]
fn ehlo_golden_with_limits_is_32_bytes() {
    let exim = hex("
        aa 29 0c 6b 00 00 00 00     # @0  time_stamp 13:33:30
        34 12                       # @8  cleartext_features 0x1234
        cd ab                       # @10 crypted_features   0xabcd
        01 00                       # @12 cleartext_auths    0x0001
        00 80                       # @14 crypted_auths      0x8000
        0a 00 00 00                 # @16 limit_mail    10
        e8 03 00 00                 # @20 limit_rcpt    1000
        00 00 00 00                 # @24 limit_rcptdom 0 (not advertised)
        5a 5a 5a 5a                 # @28 padding (garbage)
    ");
    let mut ours = exim.clone();
    ours[28..].fill(0);
    let record = EhloRecord {
        time_stamp: 1795959210,
        cleartext_features: 0x1234,
        crypted_features: 0xabcd,
        cleartext_auths: 0x0001,
        crypted_auths: 0x8000,
        limits: Some(EhloLimits { mail: 10, rcpt: 1000, rcptdom: 0 }),
    };
    assert_eq!(EhloRecord::decode(&exim).unwrap(), record);
    assert_bytes(&record.encode(), &ours);
}

#[test]
fn ehlo_rejects_every_other_length() {
    let long = [0u8; 64];
    for len in (0..=long.len()).filter(|&len| len != EHLO_BYTES && len != EHLO_LIMITS_BYTES) {
        assert_length_error(EhloRecord::decode(&long[..len]), "ehlo", len);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn base62() -> impl Strategy<Value = char> {
    prop::sample::select(('0'..='9').chain('A'..='Z').chain('a'..='z').collect::<Vec<char>>())
}

fn id_of(format: MessageIdFormat) -> impl Strategy<Value = String> {
    let len = format.id_length();
    prop::collection::vec(base62(), len).prop_map(move |mut chars| {
        let dashes: [usize; 2] = if len == MESSAGE_ID_LENGTH_OLD { [6, 13] } else { [6, 18] };
        for at in dashes {
            chars[at] = '-';
        }
        chars.into_iter().collect()
    })
}

fn wait_record() -> impl Strategy<Value = WaitRecord> {
    let format = prop_oneof![Just(MessageIdFormat::Old), Just(MessageIdFormat::New)];
    (any::<i64>(), 0..=WAIT_CONT_MAX as i32, format).prop_flat_map(|(time_stamp, sequence, format)| {
        prop::collection::vec(id_of(format), 0..=WAIT_NAME_MAX).prop_map(move |ids| WaitRecord {
            time_stamp,
            sequence,
            ids,
        })
    })
}

fn retry_record() -> impl Strategy<Value = RetryRecord> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<bool>(), any::<i32>(), any::<i32>()),
        prop::collection::vec(1u8..=255, 0..=RETRY_TEXT_MAX),
    )
        .prop_map(|((time_stamp, first_failed, last_try, next_try), (expired, basic_errno, more_errno), text)| {
            RetryRecord { time_stamp, first_failed, last_try, next_try, expired, basic_errno, more_errno, text }
        })
}

fn callout_result() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..=3i32, 1 => any::<i32>()]
}

fn callout_domain() -> impl Strategy<Value = CalloutDomain> {
    (any::<i64>(), callout_result(), callout_result(), callout_result(), any::<i64>(), any::<i64>()).prop_map(
        |(time_stamp, result, postmaster_result, random_result, postmaster_stamp, random_stamp)| CalloutDomain {
            time_stamp,
            result,
            postmaster_result,
            random_result,
            // A stamp whose result is unknown is not stored.
            postmaster_stamp: if postmaster_result == CCACHE_UNKNOWN { 0 } else { postmaster_stamp },
            random_stamp: if random_result == CCACHE_UNKNOWN { 0 } else { random_stamp },
        },
    )
}

fn ehlo_record() -> impl Strategy<Value = EhloRecord> {
    let limits = prop::option::of((any::<u32>(), any::<u32>(), any::<u32>()))
        .prop_map(|limits| limits.map(|(mail, rcpt, rcptdom)| EhloLimits { mail, rcpt, rcptdom }));
    (any::<i64>(), any::<[u16; 4]>(), limits).prop_map(|(time_stamp, [cf, xf, ca, xa], limits)| EhloRecord {
        time_stamp,
        cleartext_features: cf,
        crypted_features: xf,
        cleartext_auths: ca,
        crypted_auths: xa,
        limits,
    })
}

/// Bytes shaped like a wait record (a plausible header and a body of the right size), so the
/// decoder gets past its header checks and into the ids.
fn wait_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<i64>(), -2..=52i32, -2..=1002i32, prop_oneof![Just(16usize), Just(23usize)], 0..2usize).prop_flat_map(
        |(time_stamp, count, sequence, id_len, extra)| {
            let body = usize::try_from(count).unwrap_or(0) * id_len + 8 + extra;
            prop::collection::vec(
                prop_oneof![3 => base62().prop_map(|c| c as u8), 1 => Just(b'-'), 1 => any::<u8>()],
                body,
            )
            .prop_map(move |body| wait_bytes_with(time_stamp, count, sequence, &body))
        },
    )
}

fn wait_bytes_with(time_stamp: i64, count: i32, sequence: i32, body: &[u8]) -> Vec<u8> {
    let mut bytes = time_stamp.to_le_bytes().to_vec();
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes.extend_from_slice(&sequence.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Runs every decoder on `bytes`; a record that decodes must re-encode to a record that
/// decodes to the same value.
fn decode_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(record) = RetryRecord::decode(bytes) {
        let mut stored = record.clone();
        stored.text.truncate(RETRY_TEXT_MAX);
        prop_assert_eq!(RetryRecord::decode(&record.encode()), Ok(stored));
    }
    if let Ok(record) = CalloutRecord::decode(bytes) {
        prop_assert_eq!(CalloutRecord::decode(&record.encode()), Ok(record));
    }
    if let Ok(record) = CalloutDomain::decode(bytes) {
        prop_assert_eq!(CalloutDomain::decode(&record.encode()), Ok(record));
    }
    if let Ok(record) = CalloutAddress::decode(bytes) {
        prop_assert_eq!(CalloutAddress::decode(&record.encode()), Ok(record));
    }
    let waits = [
        WaitRecord::decode(bytes),
        WaitRecord::decode_with_format(bytes, MessageIdFormat::Old),
        WaitRecord::decode_with_format(bytes, MessageIdFormat::New),
    ];
    for record in waits.into_iter().flatten() {
        prop_assert_eq!(record.validate(), Ok(()));
        prop_assert_eq!(record.encode().len(), bytes.len());
        prop_assert_eq!(WaitRecord::decode(&record.encode()), Ok(record));
    }
    if let Ok(record) = SeenRecord::decode(bytes) {
        prop_assert_eq!(record.encode(), bytes);
    }
    if let Ok(record) = SerializeRecord::decode(bytes) {
        prop_assert_eq!(SerializeRecord::decode(&record.encode()), Ok(record));
    }
    if let Ok(record) = EhloRecord::decode(bytes) {
        prop_assert_eq!(EhloRecord::decode(&record.encode()), Ok(record));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_everything(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_wait_like_bytes(bytes in wait_like_bytes()) {
        decode_everything(&bytes)?;
    }

    #[test]
    fn retry_round_trips(record in retry_record()) {
        let bytes = record.encode();
        prop_assert_eq!(bytes.len(), RETRY_HEADER_BYTES + record.text.len());
        prop_assert_eq!(RetryRecord::decode(&bytes), Ok(record));
    }

    #[test]
    fn callout_round_trips(domain in callout_domain(), time_stamp in any::<i64>(), result in callout_result()) {
        let bytes = domain.encode();
        prop_assert_eq!(bytes.len(), CALLOUT_DOMAIN_BYTES);
        prop_assert_eq!(CalloutDomain::decode(&bytes), Ok(domain));
        prop_assert_eq!(CalloutRecord::decode(&bytes), Ok(CalloutRecord::Domain(domain)));
        let address = CalloutAddress { time_stamp, result };
        let bytes = address.encode();
        prop_assert_eq!(bytes.len(), CALLOUT_ADDRESS_BYTES);
        prop_assert_eq!(CalloutAddress::decode(&bytes), Ok(address));
        prop_assert_eq!(CalloutRecord::decode(&bytes), Ok(CalloutRecord::Address(address)));
    }

    #[test]
    fn wait_round_trips(record in wait_record()) {
        prop_assert_eq!(record.validate(), Ok(()));
        let bytes = record.encode();
        let id_len = record.id_format().map_or(0, MessageIdFormat::id_length);
        prop_assert_eq!(bytes.len(), WAIT_HEADER_BYTES + record.count() * id_len);
        prop_assert_eq!(WaitRecord::decode(&bytes), Ok(record.clone()));
        if let Some(format) = record.id_format() {
            prop_assert_eq!(WaitRecord::decode_with_format(&bytes, format), Ok(record));
        }
    }

    #[test]
    fn seen_and_serialize_round_trip(time_stamp in any::<i64>(), count in any::<i32>()) {
        let seen = SeenRecord { time_stamp };
        prop_assert_eq!(SeenRecord::decode(&seen.encode()), Ok(seen));
        let serialize = SerializeRecord { time_stamp, count };
        prop_assert_eq!(serialize.encode().len(), SERIALIZE_BYTES);
        prop_assert_eq!(SerializeRecord::decode(&serialize.encode()), Ok(serialize));
    }

    #[test]
    fn ehlo_round_trips(record in ehlo_record()) {
        let bytes = record.encode();
        prop_assert_eq!(bytes.len(), if record.limits.is_some() { EHLO_LIMITS_BYTES } else { EHLO_BYTES });
        prop_assert_eq!(EhloRecord::decode(&bytes), Ok(record));
    }
}
