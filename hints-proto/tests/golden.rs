//! Golden bytes: the postcard encoding of every message, worked out by hand.
//!
//! Each expected string was derived from postcard's format, not copied from the encoder:
//! - `u16`, `u32`, `u64` and every length are LEB128 varints (7 bits a byte, low group first,
//!   high bit set on every byte but the last);
//! - an enum is its variant index as a varint, then the variant's fields;
//! - `u8` is one raw byte, `bool` is `00`/`01`, `Option` is `00` or `01` then the value;
//! - bytes and strings are a varint length then the bytes, `[u8; 4]` is 4 raw bytes;
//! - a struct is its fields in declaration order, with nothing between them.
//!
//! If one of these tests fails, the wire format changed: a client in another language would
//! now misread the daemon. Do not update the hex to match; see docs/protocol.md, "Versioning".

use std::fmt::Debug;

use hints_proto::frame::{decode_body, encode_frame, split_frame};
use hints_proto::message::{CONNECTION_ERROR_ID, REQUEST_VARIANTS};
use hints_proto::{
    DbName, DbStats, ErrorCode, ErrorReply, Hello, HelloReply, OpCount, Record, Request, RequestEnvelope, Response,
    ResponseEnvelope, ScanPage, Stamp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses hex written as space-separated bytes (any whitespace is ignored).
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits in {text:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("{pair:?} is not hex"))
        })
        .collect()
}

/// Shows bytes the way the expectations are written.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Asserts that `value` encodes to exactly `expected_hex` and that those bytes decode back to
/// `value` with nothing left over.
fn check<T>(value: &T, expected_hex: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let expected = hex(expected_hex);
    let encoded = postcard::to_stdvec(value).unwrap();
    assert_eq!(to_hex(&encoded), to_hex(&expected), "encoding of {value:?} changed");
    let decoded: T = decode_body(&expected).unwrap();
    assert_eq!(&decoded, value, "decoding of {expected_hex} changed");
}

fn db(name: &str) -> DbName {
    DbName::new(name).unwrap()
}

/// The key of the docs' worked example: a retry key for a host.
const RETRY_KEY: &[u8] = b"T:mx.example.net:192.0.2.7";

// "retry" = 05 (length) 72 65 74 72 79.
const RETRY: &str = "05 72 65 74 72 79";
// "misc" = 04 (length) 6d 69 73 63.
const MISC: &str = "04 6d 69 73 63";
// RETRY_KEY = 1a (length 26) then its ASCII bytes.
const RETRY_KEY_HEX: &str = "1a 54 3a 6d 78 2e 65 78 61 6d 70 6c 65 2e 6e 65 74 3a 31 39 32 2e 30 2e 32 2e 37";

/// A stamp with multi-byte varints in both fields.
const BIG_STAMP: Stamp = Stamp { secs: 1_700_000_000, micros: 250_000 };
// 1_700_000_000 = 0x6553_f100; 7-bit groups, low first: 0x00 0x62 0x4f 0x2a 0x06
//   -> 80 e2 cf aa 06.
// 250_000 = 16 + 33 * 128 + 15 * 128^2 -> 90 a1 0f.
const BIG_STAMP_HEX: &str = "80 e2 cf aa 06 90 a1 0f";

fn small_record() -> Record {
    Record { key: b"k".to_vec(), value: b"v".to_vec(), stamp: Stamp { secs: 1, micros: 2 } }
}
// small_record(): 01 6b = key "k", 01 76 = value "v", 01 02 = stamp {1, 2}.
const SMALL_RECORD_HEX: &str = "01 6b 01 76 01 02";

// ---- Stamp and Record ---------------------------------------------------------------------

#[test]
fn stamp_bytes_are_pinned() {
    // 01 = secs 1, 02 = micros 2.
    check(&Stamp { secs: 1, micros: 2 }, "01 02");
    check(&BIG_STAMP, BIG_STAMP_HEX);
    // u64::MAX = 64 one-bits: nine bytes of 7 ones (ff) then the last bit (01).
    // u32::MAX = 32 one-bits: four bytes of 7 ones (ff) then the last 4 bits (0f).
    check(&Stamp { secs: u64::MAX, micros: u32::MAX }, "ff ff ff ff ff ff ff ff ff 01  ff ff ff ff 0f");
}

#[test]
fn record_bytes_are_pinned() {
    check(&small_record(), SMALL_RECORD_HEX);
    // 03 54 3a 78 = key "T:x", 00 = empty value, then the big stamp.
    check(
        &Record { key: b"T:x".to_vec(), value: vec![], stamp: BIG_STAMP },
        &format!("03 54 3a 78  00  {BIG_STAMP_HEX}"),
    );
}

// ---- Requests -----------------------------------------------------------------------------

#[test]
fn ping_request_bytes_are_pinned() {
    // 00 = Ping, no fields.
    check(&Request::Ping, "00");
}

#[test]
fn get_request_bytes_are_pinned() {
    // 01 = Get, then db "retry", then key (length 26 = 1a).
    check(&Request::Get { db: db("retry"), key: RETRY_KEY.to_vec() }, &format!("01  {RETRY}  {RETRY_KEY_HEX}"));
}

#[test]
fn put_request_bytes_are_pinned() {
    // 02 = Put, db "misc", 02 6b 31 = key "k1", 01 76 = value "v".
    check(
        &Request::Put { db: db("misc"), key: b"k1".to_vec(), value: b"v".to_vec() },
        &format!("02  {MISC}  02 6b 31  01 76"),
    );
}

#[test]
fn a_value_of_130_bytes_takes_a_two_byte_length() {
    // 02 = Put, db "misc", 01 6b = key "k",
    // 130 = 2 + 1 * 128 -> 82 01 (length), then 130 zero bytes.
    check(
        &Request::Put { db: db("misc"), key: b"k".to_vec(), value: vec![0; 130] },
        &format!("02  {MISC}  01 6b  82 01  {}", "00 ".repeat(130)),
    );
    // And an empty value is a single 00 length.
    check(&Request::Put { db: db("misc"), key: b"k".to_vec(), value: vec![] }, &format!("02  {MISC}  01 6b  00"));
}

#[test]
fn delete_request_bytes_are_pinned() {
    // 03 = Delete, db "retry", 03 52 3a 78 = key "R:x".
    check(&Request::Delete { db: db("retry"), key: b"R:x".to_vec() }, &format!("03  {RETRY}  03 52 3a 78"));
}

#[test]
fn scan_request_bytes_are_pinned() {
    // 04 = Scan, db "misc", 01 6b = prefix "k", 01 = Some, 02 6b 31 = after "k1",
    // limit 300 = 44 + 2 * 128 -> ac 02.
    check(
        &Request::Scan { db: db("misc"), prefix: b"k".to_vec(), after: Some(b"k1".to_vec()), limit: 300 },
        &format!("04  {MISC}  01 6b  01 02 6b 31  ac 02"),
    );
    // 04 = Scan, db "misc", 00 = empty prefix, 00 = after None, 64 = limit 100.
    check(
        &Request::Scan { db: db("misc"), prefix: vec![], after: None, limit: 100 },
        &format!("04  {MISC}  00  00  64"),
    );
}

#[test]
fn tidy_request_bytes_are_pinned() {
    // 05 = Tidy, db "retry", older_than_secs 2_592_000 (30d) = 0 + 26 * 128 + 30 * 128^2 +
    // 1 * 128^3 -> 80 9a 9e 01.
    check(&Request::Tidy { db: db("retry"), older_than_secs: 2_592_000 }, &format!("05  {RETRY}  80 9a 9e 01"));
}

#[test]
fn compare_and_set_request_bytes_are_pinned() {
    // 06 = CompareAndSet, db "misc", 01 6b = key "k", 01 01 02 = expected Some({1, 2}),
    // 01 01 76 = value Some("v").
    check(
        &Request::CompareAndSet {
            db: db("misc"),
            key: b"k".to_vec(),
            expected: Some(Stamp { secs: 1, micros: 2 }),
            value: Some(b"v".to_vec()),
        },
        &format!("06  {MISC}  01 6b  01 01 02  01 01 76"),
    );
    // 06 = CompareAndSet, db "misc", 01 6b = key "k", 00 = expected None, 00 = value None.
    check(
        &Request::CompareAndSet { db: db("misc"), key: b"k".to_vec(), expected: None, value: None },
        &format!("06  {MISC}  01 6b  00  00"),
    );
}

#[test]
fn stats_request_bytes_are_pinned() {
    // 07 = Stats, 01 = Some, db "retry".
    check(&Request::Stats { db: Some(db("retry")) }, &format!("07  01 {RETRY}"));
    // 07 = Stats, 00 = None (every database).
    check(&Request::Stats { db: None }, "07 00");
}

// ---- Responses ----------------------------------------------------------------------------

#[test]
fn pong_response_bytes_are_pinned() {
    // 00 = Pong.
    check(&Response::Pong, "00");
}

#[test]
fn value_response_bytes_are_pinned() {
    // 01 = Value, 01 = Some, then the record.
    check(&Response::Value(Some(small_record())), &format!("01  01  {SMALL_RECORD_HEX}"));
    // 01 = Value, 00 = None (no such key).
    check(&Response::Value(None), "01 00");
}

#[test]
fn stored_response_bytes_are_pinned() {
    // 02 = Stored, then the stamp.
    check(&Response::Stored(BIG_STAMP), &format!("02  {BIG_STAMP_HEX}"));
}

#[test]
fn deleted_response_bytes_are_pinned() {
    // 03 = Deleted, 01 = existed true / 00 = false.
    check(&Response::Deleted { existed: true }, "03 01");
    check(&Response::Deleted { existed: false }, "03 00");
}

#[test]
fn page_response_bytes_are_pinned() {
    // 04 = Page, 02 = two records,
    //   02 6b 31 = key "k1", 01 61 = value "a", 01 00 = stamp {1, 0},
    //   02 6b 32 = key "k2", 01 62 = value "b", 01 01 = stamp {1, 1},
    // 01 02 6b 32 = next Some("k2").
    let page = ScanPage {
        records: vec![
            Record { key: b"k1".to_vec(), value: b"a".to_vec(), stamp: Stamp { secs: 1, micros: 0 } },
            Record { key: b"k2".to_vec(), value: b"b".to_vec(), stamp: Stamp { secs: 1, micros: 1 } },
        ],
        next: Some(b"k2".to_vec()),
    };
    check(&Response::Page(page), "04  02  02 6b 31 01 61 01 00  02 6b 32 01 62 01 01  01 02 6b 32");
}

#[test]
fn tidied_response_bytes_are_pinned() {
    // 05 = Tidied, removed 128 = 0 + 1 * 128 -> 80 01.
    check(&Response::Tidied { removed: 128 }, "05 80 01");
    // 05 = Tidied, removed 127 still fits one byte -> 7f.
    check(&Response::Tidied { removed: 127 }, "05 7f");
}

#[test]
fn swapped_response_bytes_are_pinned() {
    // 06 = Swapped, 01 = Some, 02 00 = stamp {2, 0}.
    check(&Response::Swapped(Some(Stamp { secs: 2, micros: 0 })), "06 01 02 00");
    // 06 = Swapped, 00 = None (the compare-and-set deleted).
    check(&Response::Swapped(None), "06 00");
}

#[test]
fn conflict_response_bytes_are_pinned() {
    // 07 = Conflict, 01 = Some, then the record as it is now.
    check(&Response::Conflict(Some(small_record())), &format!("07  01  {SMALL_RECORD_HEX}"));
    // 07 = Conflict, 00 = None (there is no record).
    check(&Response::Conflict(None), "07 00");
}

#[test]
fn stats_response_bytes_are_pinned() {
    // 08 = Stats, 01 = one database,
    //   db "retry", 03 = records 3, ac 02 = bytes 300, 02 = two op counts,
    //     03 67 65 74 = kind "get", 05 = count 5,
    //     03 70 75 74 = kind "put", 02 = count 2.
    let stats = DbStats {
        db: db("retry"),
        records: 3,
        bytes: 300,
        ops: vec![OpCount { kind: "get".into(), count: 5 }, OpCount { kind: "put".into(), count: 2 }],
    };
    check(&Response::Stats(vec![stats]), &format!("08  01  {RETRY}  03  ac 02  02  03 67 65 74 05  03 70 75 74 02"));
    // 08 = Stats, 00 = no databases running.
    check(&Response::Stats(vec![]), "08 00");
}

#[test]
fn error_response_bytes_are_pinned() {
    // 09 = Error, 0d = code 13 (BUSY), 04 62 75 73 79 = message "busy".
    check(&Response::Error(ErrorReply::new(ErrorCode::BUSY, "busy")), "09 0d 04 62 75 73 79");
}

// ---- The structs inside responses ---------------------------------------------------------

#[test]
fn scan_page_bytes_are_pinned() {
    // 00 = no records, 00 = next None (the last page).
    check(&ScanPage { records: vec![], next: None }, "00 00");
    // 01 = one record, the record, 01 01 6b = next Some("k").
    check(
        &ScanPage { records: vec![small_record()], next: Some(b"k".to_vec()) },
        &format!("01  {SMALL_RECORD_HEX}  01 01 6b"),
    );
}

#[test]
fn db_stats_bytes_are_pinned() {
    // 03 74 6c 73 = db "tls", 00 = records 0, 00 = bytes 0, 00 = no op counts.
    check(&DbStats { db: db("tls"), records: 0, bytes: 0, ops: vec![] }, "03 74 6c 73  00  00  00");
}

#[test]
fn error_reply_and_error_code_bytes_are_pinned() {
    // A code is a plain u16 varint, not an enum index: 10 = 16 (INTERNAL).
    check(&ErrorCode::INTERNAL, "10");
    // 300 = 44 + 2 * 128 -> ac 02; u16::MAX = 16 one-bits -> ff ff 03.
    check(&ErrorCode(300), "ac 02");
    check(&ErrorCode(u16::MAX), "ff ff 03");
    // 07 = code 7 (BAD_KEY), 0c = 12 bytes of "key is empty".
    check(&ErrorReply::new(ErrorCode::BAD_KEY, "key is empty"), "07  0c 6b 65 79 20 69 73 20 65 6d 70 74 79");
    // ac 02 = a code this crate does not know (300), 00 = empty message: still decodes.
    check(&ErrorReply { code: ErrorCode(300), message: String::new() }, "ac 02 00");
}

// ---- Handshake ----------------------------------------------------------------------------

#[test]
fn hello_bytes_are_pinned() {
    // 48 4e 54 53 = magic "HNTS" (raw, no length), 01 = protocol_version 1,
    // 08 68 69 6e 74 73 63 74 6c = client_name "hintsctl".
    check(&Hello::new("hintsctl"), "48 4e 54 53  01  08 68 69 6e 74 73 63 74 6c");
}

#[test]
fn accepted_hello_reply_bytes_are_pinned() {
    // 00 = Accepted, 01 = protocol_version 1, 05 30 2e 31 2e 30 = daemon_version "0.1.0".
    check(&HelloReply::Accepted { protocol_version: 1, daemon_version: "0.1.0".into() }, "00  01  05 30 2e 31 2e 30");
}

#[test]
fn refused_hello_reply_bytes_are_pinned() {
    // 01 = Refused, 03 = code 3 (VERSION_MISMATCH), 02 76 32 = message "v2".
    check(&HelloReply::Refused(ErrorReply::new(ErrorCode::VERSION_MISMATCH, "v2")), "01  03  02 76 32");
}

// ---- Envelopes and frames -----------------------------------------------------------------

#[test]
fn envelope_bytes_are_pinned() {
    // 2a = id 42, 00 = Ping.
    check(&RequestEnvelope { id: 42, request: Request::Ping }, "2a 00");
    // 80 01 = id 128, 00 = Pong.
    check(&ResponseEnvelope { id: 128, response: Response::Pong }, "80 01  00");
    // 00 = id 0 (connection-level), 09 = Error, 01 = code 1 (BAD_FRAME), 01 78 = message "x".
    check(
        &ResponseEnvelope {
            id: CONNECTION_ERROR_ID,
            response: Response::Error(ErrorReply::new(ErrorCode::BAD_FRAME, "x")),
        },
        "00  09  01  01 78",
    );
}

/// Encodes `msg` as a whole frame, checks the bytes, then splits and decodes them back.
fn check_frame<T>(msg: &T, expected_hex: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let expected = hex(expected_hex);
    let mut frame = Vec::new();
    encode_frame(msg, &mut frame).unwrap();
    assert_eq!(to_hex(&frame), to_hex(&expected), "frame of {msg:?} changed");
    let (body, consumed) = split_frame(&expected).unwrap().unwrap();
    assert_eq!(consumed, expected.len());
    assert_eq!(&decode_body::<T>(body).unwrap(), msg);
}

#[test]
fn a_get_request_frame_is_pinned_with_its_length_prefix() {
    // The worked example of docs/protocol.md.
    // 23 00 00 00 = body length 35 as u32 little-endian;
    // body: 01 = id 1, 01 = Get, db "retry" (6 bytes), key (1 + 26 bytes) = 1 + 1 + 6 + 27 = 35.
    let envelope = RequestEnvelope { id: 1, request: Request::Get { db: db("retry"), key: RETRY_KEY.to_vec() } };
    check_frame(&envelope, &format!("23 00 00 00  01  01  {RETRY}  {RETRY_KEY_HEX}"));
    // The daemon's own decoder accepts the same body.
    let body = &hex(&format!("01 01 {RETRY} {RETRY_KEY_HEX}"));
    assert_eq!(RequestEnvelope::decode(body).unwrap(), envelope);
}

#[test]
fn a_hello_frame_is_pinned_with_its_length_prefix() {
    // The worked example of docs/protocol.md.
    // 0e 00 00 00 = body length 14 (4 magic + 1 version + 1 length + 8 name).
    check_frame(&Hello::new("hintsctl"), "0e 00 00 00  48 4e 54 53  01  08 68 69 6e 74 73 63 74 6c");
}

#[test]
fn the_replies_of_the_worked_example_are_pinned_with_their_length_prefix() {
    // 08 00 00 00 = body length 8; 00 = Accepted, 01 = protocol_version 1,
    // 05 30 2e 31 2e 30 = daemon_version "0.1.0".
    check_frame(
        &HelloReply::Accepted { protocol_version: 1, daemon_version: "0.1.0".into() },
        "08 00 00 00  00  01  05 30 2e 31 2e 30",
    );
    // 03 00 00 00 = body length 3; 01 = id 1, 01 = Value, 00 = None (no such key).
    check_frame(&ResponseEnvelope { id: 1, response: Response::Value(None) }, "03 00 00 00  01  01  00");
    // 27 00 00 00 = body length 39; 01 = id 1, 01 = Value, 01 = Some, key (1 + 26 bytes),
    // 00 = empty value, then the big stamp (8 bytes): 3 + 27 + 1 + 8 = 39 = 0x27.
    check_frame(
        &ResponseEnvelope {
            id: 1,
            response: Response::Value(Some(Record { key: RETRY_KEY.to_vec(), value: vec![], stamp: BIG_STAMP })),
        },
        &format!("27 00 00 00  01  01  01  {RETRY_KEY_HEX}  00  {BIG_STAMP_HEX}"),
    );
}

// ---- Variant indexes and error codes ------------------------------------------------------

/// One request of every variant, with the index written by hand. The match is exhaustive, so a
/// new variant does not compile until it is given an index here (and golden bytes above).
fn every_request() -> Vec<(Request, u32)> {
    let requests = vec![
        Request::Ping,
        Request::Get { db: db("misc"), key: b"k".to_vec() },
        Request::Put { db: db("misc"), key: b"k".to_vec(), value: vec![] },
        Request::Delete { db: db("misc"), key: b"k".to_vec() },
        Request::Scan { db: db("misc"), prefix: vec![], after: None, limit: 1 },
        Request::Tidy { db: db("misc"), older_than_secs: 0 },
        Request::CompareAndSet { db: db("misc"), key: b"k".to_vec(), expected: None, value: None },
        Request::Stats { db: None },
    ];
    requests
        .into_iter()
        .map(|request| {
            let index = match request {
                Request::Ping => 0,
                Request::Get { .. } => 1,
                Request::Put { .. } => 2,
                Request::Delete { .. } => 3,
                Request::Scan { .. } => 4,
                Request::Tidy { .. } => 5,
                Request::CompareAndSet { .. } => 6,
                Request::Stats { .. } => 7,
            };
            (request, index)
        })
        .collect()
}

#[test]
fn every_request_variant_index_is_below_request_variants() {
    let all = every_request();
    assert_eq!(all.len() as u32, REQUEST_VARIANTS, "a request variant is missing here");
    let mut seen = Vec::new();
    for (request, index) in all {
        let encoded = postcard::to_stdvec(&request).unwrap();
        let (encoded_index, _) = postcard::take_from_bytes::<u32>(&encoded).unwrap();
        assert_eq!(encoded_index, index, "{request:?}");
        assert!(index < REQUEST_VARIANTS, "{request:?} has index {index}");
        // Each one also passes the daemon's decoder inside an envelope.
        let body = postcard::to_stdvec(&RequestEnvelope { id: 1, request: request.clone() }).unwrap();
        assert_eq!(RequestEnvelope::decode(&body).unwrap().request, request);
        seen.push(index);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..REQUEST_VARIANTS).collect::<Vec<_>>());
}

#[test]
fn the_index_request_variants_decodes_as_unknown_request() {
    // 07 = id 7, then the first index past the known ones, with bytes a newer request might
    // carry after it.
    let body = [7, u8::try_from(REQUEST_VARIANTS).unwrap(), 1, 2, 3];
    let refusal = RequestEnvelope::decode(&body).unwrap_err();
    assert_eq!(refusal.id, 7);
    assert_eq!(refusal.reply.code, ErrorCode::UNKNOWN_REQUEST);

    // 80 01 = id 128, ac 02 = index 300: a multi-byte index is still read as an index.
    let refusal = RequestEnvelope::decode(&hex("80 01 ac 02")).unwrap_err();
    assert_eq!((refusal.id, refusal.reply.code), (128, ErrorCode::UNKNOWN_REQUEST));

    // The last known index still decodes: 07 = id 7, 07 = Stats, 00 = None.
    let envelope = RequestEnvelope::decode(&hex("07 07 00")).unwrap();
    assert_eq!(envelope.request, Request::Stats { db: None });
}

#[test]
fn all_error_codes_have_distinct_numbers_and_names() {
    let codes = [
        ErrorCode::BAD_FRAME,
        ErrorCode::FRAME_TOO_LARGE,
        ErrorCode::VERSION_MISMATCH,
        ErrorCode::HELLO_EXPECTED,
        ErrorCode::UNKNOWN_REQUEST,
        ErrorCode::BAD_DB_NAME,
        ErrorCode::BAD_KEY,
        ErrorCode::VALUE_TOO_LARGE,
        ErrorCode::BAD_ARGUMENT,
        ErrorCode::NOT_ALLOWED,
        ErrorCode::TOO_MANY_CONNECTIONS,
        ErrorCode::DATABASE_FAILED,
        ErrorCode::BUSY,
        ErrorCode::SHUTTING_DOWN,
        ErrorCode::NOT_FOUND,
        ErrorCode::INTERNAL,
        ErrorCode::TOO_MANY_DATABASES,
    ];
    let unknown = ErrorCode(0).name();
    let mut numbers: Vec<u16> = codes.iter().map(|code| code.0).collect();
    let mut names: Vec<&str> = codes.iter().map(|code| code.name()).collect();
    assert!(!names.contains(&unknown), "a constant has no name of its own");
    numbers.sort_unstable();
    numbers.dedup();
    names.sort_unstable();
    names.dedup();
    assert_eq!(numbers.len(), codes.len(), "two constants share a number");
    assert_eq!(names.len(), codes.len(), "two constants share a name");
    // Numbers are pinned: 1 to 17 in declaration order, never renumbered.
    assert_eq!(codes.iter().map(|code| code.0).collect::<Vec<_>>(), (1..=17).collect::<Vec<u16>>());
}
