//! Golden bytes: the postcard encoding of every message, worked out by hand.
//!
//! Each expected string was derived from postcard's format, not copied from the encoder:
//! - `u16`, `u32`, `u64` and every length are LEB128 varints (7 bits a byte, low group first,
//!   high bit set on every byte but the last);
//! - `i64` is zigzagged first (n >= 0 -> 2n, n < 0 -> -2n - 1), then written as that varint;
//! - `f64` is its 8 IEEE 754 bytes, little-endian (no varint);
//! - an enum is its variant index as a varint, then the variant's fields;
//! - `u8` is one raw byte, `bool` is `00`/`01`, `Option` is `00` or `01` then the value;
//! - bytes and strings are a varint length then the bytes, `[u8; 4]` is 4 raw bytes;
//! - a struct is its fields in declaration order, with nothing between them.
//!
//! If one of these tests fails, the wire format changed: a client in another language would
//! now misread the daemon. Do not update the hex to match; see docs/protocol.md, "Versioning".

mod support;

use std::fmt::Debug;

use hints_proto::frame::{decode_body, encode_frame, split_frame};
use hints_proto::limits::{CONDITION_BYTES_MAX, LEASE_MS_MAX};
use hints_proto::message::{CONNECTION_ERROR_ID, RATELIMIT_DB, REQUEST_VARIANTS, SEEN_DB};
use hints_proto::{
    DbName, DbStats, ErrorCode, ErrorReply, Hello, HelloReply, OpCount, Record, Request, RequestEnvelope, Response,
    ResponseEnvelope, ScanPage, Stamp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use support::{hex, to_hex};

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
// "greylist" = 08 (length) 67 72 65 79 6c 69 73 74.
const GREYLIST: &str = "08 67 72 65 79 6c 69 73 74";
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

/// A short ratelimit condition: limit 1, period 1h, key "k" (counted per_mail, the default).
const RATE_CONDITION: &str = "1 / 1h / k";
// RATE_CONDITION = 0a (length 10) 31 "1", 20 2f 20 " / ", 31 68 "1h", 20 2f 20 " / ", 6b "k".
const RATE_CONDITION_HEX: &str = "0a 31 20 2f 20 31 68 20 2f 20 6b";

#[test]
fn ratelimit_request_bytes_are_pinned() {
    // 08 = Ratelimit, the condition as a string, 01 = at Some, then the big stamp.
    check(
        &Request::Ratelimit { condition: RATE_CONDITION.into(), at: Some(BIG_STAMP) },
        &format!("08  {RATE_CONDITION_HEX}  01 {BIG_STAMP_HEX}"),
    );
    // 08 = Ratelimit, the condition, 00 = at None (the daemon's clock).
    check(&Request::Ratelimit { condition: RATE_CONDITION.into(), at: None }, &format!("08  {RATE_CONDITION_HEX}  00"));
}

#[test]
fn seen_request_bytes_are_pinned() {
    // 09 = Seen, 0b = condition length 11: 2d 35 6d "-5m", 20 2f 20 " / ", 6b 65 79 3d 6b
    // "key=k"; 00 = at None.
    check(&Request::Seen { condition: "-5m / key=k".into(), at: None }, "09  0b 2d 35 6d 20 2f 20 6b 65 79 3d 6b  00");
    // 09 = Seen, 00 = empty condition (refused by the daemon, not by the encoding),
    // 01 01 02 = at Some({1, 2}).
    check(&Request::Seen { condition: String::new(), at: Some(Stamp { secs: 1, micros: 2 }) }, "09  00  01 01 02");
}

#[test]
fn greylist_request_bytes_are_pinned() {
    // 0a = Greylist, db "greylist", 01 74 = key "t", delay_secs 300 -> ac 02,
    // expiry_secs 2_592_000 (30d) -> 80 9a 9e 01 (as in Tidy), 01 = at Some, the big stamp.
    check(
        &Request::Greylist {
            db: db("greylist"),
            key: b"t".to_vec(),
            delay_secs: 300,
            expiry_secs: 2_592_000,
            at: Some(BIG_STAMP),
        },
        &format!("0a  {GREYLIST}  01 74  ac 02  80 9a 9e 01  01 {BIG_STAMP_HEX}"),
    );
    // 0a = Greylist, db "greylist", 01 74 = key "t", 00 = delay 0, 7f = expiry 127,
    // 00 = at None.
    check(
        &Request::Greylist { db: db("greylist"), key: b"t".to_vec(), delay_secs: 0, expiry_secs: 127, at: None },
        &format!("0a  {GREYLIST}  01 74  00  7f  00"),
    );
}

#[test]
fn serialize_take_request_bytes_are_pinned() {
    // 0b = SerializeTake, db "misc", 01 68 = key "h", 01 = limit 1.
    check(&Request::SerializeTake { db: db("misc"), key: b"h".to_vec(), limit: 1 }, &format!("0b  {MISC}  01 68  01"));
    // 0b = SerializeTake, db "misc", 01 68 = key "h", limit 200 = 72 + 1 * 128 -> c8 01.
    check(
        &Request::SerializeTake { db: db("misc"), key: b"h".to_vec(), limit: 200 },
        &format!("0b  {MISC}  01 68  c8 01"),
    );
}

#[test]
fn serialize_release_request_bytes_are_pinned() {
    // 0c = SerializeRelease, db "misc", 01 68 = key "h".
    check(&Request::SerializeRelease { db: db("misc"), key: b"h".to_vec() }, &format!("0c  {MISC}  01 68"));
}

#[test]
fn counter_request_bytes_are_pinned() {
    // 0d = Counter, db "misc", 01 6e = key "n", delta -1 zigzags to 1 -> 01,
    // 01 = expiry_secs Some, 86_400 (1d) = 0 + 35 * 128 + 5 * 128^2 -> 80 a3 05,
    // 00 = at None.
    check(
        &Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: -1, expiry_secs: Some(86_400), at: None },
        &format!("0d  {MISC}  01 6e  01  01 80 a3 05  00"),
    );
    // 0d = Counter, db "misc", 01 6e = key "n", delta 64 zigzags to 128 -> 80 01,
    // 00 = expiry_secs None, 01 01 02 = at Some({1, 2}).
    check(
        &Request::Counter {
            db: db("misc"),
            key: b"n".to_vec(),
            delta: 64,
            expiry_secs: None,
            at: Some(Stamp { secs: 1, micros: 2 }),
        },
        &format!("0d  {MISC}  01 6e  80 01  00  01 01 02"),
    );
    // delta 1 zigzags to 2 -> 02; delta -65 to 129 = 1 + 1 * 128 -> 81 01.
    check(
        &Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: 1, expiry_secs: None, at: None },
        &format!("0d  {MISC}  01 6e  02  00  00"),
    );
    check(
        &Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: -65, expiry_secs: None, at: None },
        &format!("0d  {MISC}  01 6e  81 01  00  00"),
    );
    // i64::MIN zigzags to u64::MAX (ff x9 01); i64::MAX to u64::MAX - 1 (fe, ff x8, 01).
    check(
        &Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: i64::MIN, expiry_secs: None, at: None },
        &format!("0d  {MISC}  01 6e  ff ff ff ff ff ff ff ff ff 01  00  00"),
    );
    check(
        &Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: i64::MAX, expiry_secs: None, at: None },
        &format!("0d  {MISC}  01 6e  fe ff ff ff ff ff ff ff ff 01  00  00"),
    );
}

#[test]
fn lock_request_bytes_are_pinned() {
    // 0e = Lock, db "misc", lease_ms 60_000 = 96 + 84 * 128 + 3 * 128^2 -> e0 d4 03.
    check(&Request::Lock { db: db("misc"), lease_ms: 60_000 }, &format!("0e  {MISC}  e0 d4 03"));
    // 0e = Lock, db "misc", 01 = lease_ms 1.
    check(&Request::Lock { db: db("misc"), lease_ms: 1 }, &format!("0e  {MISC}  01"));
}

#[test]
fn unlock_request_bytes_are_pinned() {
    // 0f = Unlock, db "misc".
    check(&Request::Unlock { db: db("misc") }, &format!("0f  {MISC}"));
}

#[test]
fn snapshot_request_bytes_are_pinned() {
    // 10 = Snapshot (16), 01 = Some, db "retry".
    check(&Request::Snapshot { db: Some(db("retry")) }, &format!("10  01 {RETRY}"));
    // 10 = Snapshot, 00 = None (every database).
    check(&Request::Snapshot { db: None }, "10 00");
}

#[test]
fn open_ring_request_bytes_are_pinned() {
    // 11 = OpenRing (17), no fields.
    check(&Request::OpenRing, "11");
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
    //     03 70 75 74 = kind "put", 02 = count 2,
    //   records_max 1_000_000 = 64 + 4 * 128 + 61 * 128^2 -> c0 84 3d,
    //   07 = expired 7, 00 = evicted 0, 02 = slots_held 2.
    let stats = DbStats {
        db: db("retry"),
        records: 3,
        bytes: 300,
        ops: vec![OpCount { kind: "get".into(), count: 5 }, OpCount { kind: "put".into(), count: 2 }],
        records_max: 1_000_000,
        expired: 7,
        evicted: 0,
        slots_held: 2,
    };
    check(
        &Response::Stats(vec![stats]),
        &format!("08  01  {RETRY}  03  ac 02  02  03 67 65 74 05  03 70 75 74 02  c0 84 3d  07  00  02"),
    );
    // 08 = Stats, 00 = no databases running.
    check(&Response::Stats(vec![]), "08 00");
}

#[test]
fn error_response_bytes_are_pinned() {
    // 09 = Error, 0d = code 13 (BUSY), 04 62 75 73 79 = message "busy".
    check(&Response::Error(ErrorReply::new(ErrorCode::BUSY, "busy")), "09 0d 04 62 75 73 79");
}

// The key RATE_CONDITION is stored under: "1h/per_mail/k" = 0d (length 13)
// 31 68 "1h", 2f "/", 70 65 72 5f 6d 61 69 6c "per_mail", 2f "/", 6b "k".
const RATE_KEY_HEX: &str = "0d 31 68 2f 70 65 72 5f 6d 61 69 6c 2f 6b";

#[test]
fn rate_response_bytes_are_pinned() {
    // 0a = Rate (10),
    // rate 2.5 = 1.25 * 2^1: sign 0, exponent 1023 + 1 = 0x400, fraction 0.25 -> bit 50,
    //   bits 0x4004_0000_0000_0000, little-endian -> 00 00 00 00 00 00 04 40;
    // 01 = over true, the key, 00 = written false.
    check(
        &Response::Rate { rate: 2.5, over: true, key: "1h/per_mail/k".into(), written: false },
        &format!("0a  00 00 00 00 00 00 04 40  01  {RATE_KEY_HEX}  00"),
    );
    // rate 0.1 = 1.6 * 2^-4: exponent 1023 - 4 = 0x3fb, fraction 0.6 = 0x9_9999_9999_9999.99..
    //   rounded to nearest -> 0x9_9999_9999_999a, bits 0x3fb9_9999_9999_999a
    //   -> 9a 99 99 99 99 99 b9 3f; 00 = over false, the key, 01 = written true.
    check(
        &Response::Rate { rate: 0.1, over: false, key: "1h/per_mail/k".into(), written: true },
        &format!("0a  9a 99 99 99 99 99 b9 3f  00  {RATE_KEY_HEX}  01"),
    );
    // rate 1.0: exponent 0x3ff, fraction 0 -> bits 0x3ff0_0000_0000_0000 -> 00 00 00 00 00 00 f0 3f;
    // 00 = over false, 00 = empty key, 00 = written false.
    check(
        &Response::Rate { rate: 1.0, over: false, key: String::new(), written: false },
        "0a  00 00 00 00 00 00 f0 3f  00  00  00",
    );
}

#[test]
fn seen_response_bytes_are_pinned() {
    // 0b = Seen, 01 = result true, 00 = written false.
    check(&Response::Seen { result: true, written: false }, "0b 01 00");
    // 0b = Seen, 00 = result false, 01 = written true.
    check(&Response::Seen { result: false, written: true }, "0b 00 01");
}

#[test]
fn greylist_response_bytes_are_pinned() {
    // 0c = Greylist, 00 = pass false, retry_after_secs 300 -> ac 02.
    check(&Response::Greylist { pass: false, retry_after_secs: 300 }, "0c 00 ac 02");
    // 0c = Greylist, 01 = pass true, 00 = retry_after_secs 0.
    check(&Response::Greylist { pass: true, retry_after_secs: 0 }, "0c 01 00");
}

#[test]
fn slot_response_bytes_are_pinned() {
    // 0d = Slot, 01 = held true, 01 = holders 1.
    check(&Response::Slot { held: true, holders: 1 }, "0d 01 01");
    // 0d = Slot, 00 = held false, holders 200 -> c8 01.
    check(&Response::Slot { held: false, holders: 200 }, "0d 00 c8 01");
}

#[test]
fn counter_response_bytes_are_pinned() {
    // 0e = Counter, 00 = 0.
    check(&Response::Counter(0), "0e 00");
    // 0e = Counter, -1 zigzags to 1 -> 01.
    check(&Response::Counter(-1), "0e 01");
    // 0e = Counter, 80_000 zigzags to 160_000 = 0 + 98 * 128 + 9 * 128^2 -> 80 e2 09.
    check(&Response::Counter(80_000), "0e 80 e2 09");
    // 0e = Counter, i64::MIN zigzags to u64::MAX -> ff x9 01.
    check(&Response::Counter(i64::MIN), "0e ff ff ff ff ff ff ff ff ff 01");
}

#[test]
fn locked_response_bytes_are_pinned() {
    // 0f = Locked, lease_ms 60_000 -> e0 d4 03.
    check(&Response::Locked { lease_ms: 60_000 }, "0f e0 d4 03");
}

#[test]
fn unlocked_response_bytes_are_pinned() {
    // 10 = Unlocked (16), 01 = held true / 00 = false.
    check(&Response::Unlocked { held: true }, "10 01");
    check(&Response::Unlocked { held: false }, "10 00");
}

#[test]
fn snapshotted_response_bytes_are_pinned() {
    // 11 = Snapshotted (17), 03 = databases 3,
    // records 80_000 = 0 + 113 * 128 + 4 * 128^2 -> 80 f1 04.
    check(&Response::Snapshotted { databases: 3, records: 80_000 }, "11 03 80 f1 04");
    // 11 = Snapshotted, 00 = no databases, 00 = no records.
    check(&Response::Snapshotted { databases: 0, records: 0 }, "11 00 00");
}

#[test]
fn ring_opened_response_bytes_are_pinned() {
    // 12 = RingOpened (18), 65536 = 0 + 0 * 128 + 4 * 128^2 -> 80 80 04.
    check(&Response::RingOpened { ring_bytes: 65_536 }, "12 80 80 04");
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
    // 03 74 6c 73 = db "tls", 00 = records 0, 00 = bytes 0, 00 = no op counts,
    // 00 = records_max 0, 00 = expired 0, 00 = evicted 0, 00 = slots_held 0.
    check(
        &DbStats {
            db: db("tls"),
            records: 0,
            bytes: 0,
            ops: vec![],
            records_max: 0,
            expired: 0,
            evicted: 0,
            slots_held: 0,
        },
        "03 74 6c 73  00  00  00  00  00  00  00",
    );
    // Distinct values pin the order of the four counters after `ops`:
    // 03 74 6c 73 = db "tls", 05 = records 5, 06 = bytes 6, 00 = no op counts,
    // 01 = records_max 1, 02 = expired 2, 03 = evicted 3, 04 = slots_held 4.
    check(
        &DbStats {
            db: db("tls"),
            records: 5,
            bytes: 6,
            ops: vec![],
            records_max: 1,
            expired: 2,
            evicted: 3,
            slots_held: 4,
        },
        "03 74 6c 73  05  06  00  01  02  03  04",
    );
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
    // 05 = id 5, 0e = Counter, 02 = 1 (zigzag).
    check(&ResponseEnvelope { id: 5, response: Response::Counter(1) }, "05  0e  02");
    // 03 = id 3, 10 = Snapshot, 00 = None.
    check(&RequestEnvelope { id: 3, request: Request::Snapshot { db: None } }, "03  10  00");
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
        Request::Ratelimit { condition: RATE_CONDITION.into(), at: None },
        Request::Seen { condition: "-5m / key=k".into(), at: None },
        Request::Greylist { db: db("greylist"), key: b"t".to_vec(), delay_secs: 300, expiry_secs: 86_400, at: None },
        Request::SerializeTake { db: db("misc"), key: b"h".to_vec(), limit: 1 },
        Request::SerializeRelease { db: db("misc"), key: b"h".to_vec() },
        Request::Counter { db: db("misc"), key: b"n".to_vec(), delta: 1, expiry_secs: None, at: None },
        Request::Lock { db: db("misc"), lease_ms: 1000 },
        Request::Unlock { db: db("misc") },
        Request::Snapshot { db: None },
        Request::OpenRing,
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
                Request::Ratelimit { .. } => 8,
                Request::Seen { .. } => 9,
                Request::Greylist { .. } => 10,
                Request::SerializeTake { .. } => 11,
                Request::SerializeRelease { .. } => 12,
                Request::Counter { .. } => 13,
                Request::Lock { .. } => 14,
                Request::Unlock { .. } => 15,
                Request::Snapshot { .. } => 16,
                Request::OpenRing => 17,
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
        assert_eq!(request.index(), index as usize, "Request::index of {request:?}");
        assert!(index < REQUEST_VARIANTS, "{request:?} has index {index}");
        // Each one also passes the daemon's decoder inside an envelope.
        let body = postcard::to_stdvec(&RequestEnvelope { id: 1, request: request.clone() }).unwrap();
        assert_eq!(RequestEnvelope::decode(&body).unwrap().request, request);
        seen.push(index);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..=17).collect::<Vec<_>>());
}

/// One response of every variant, with the index and name written by hand; exhaustive like
/// [`every_request`].
fn every_response() -> Vec<(Response, u32, &'static str)> {
    let responses = vec![
        Response::Pong,
        Response::Value(None),
        Response::Stored(Stamp::default()),
        Response::Deleted { existed: false },
        Response::Page(ScanPage { records: vec![], next: None }),
        Response::Tidied { removed: 0 },
        Response::Swapped(None),
        Response::Conflict(None),
        Response::Stats(vec![]),
        Response::Error(ErrorReply::new(ErrorCode::BUSY, "")),
        Response::Rate { rate: 0.0, over: false, key: String::new(), written: false },
        Response::Seen { result: false, written: false },
        Response::Greylist { pass: false, retry_after_secs: 0 },
        Response::Slot { held: false, holders: 0 },
        Response::Counter(0),
        Response::Locked { lease_ms: 1 },
        Response::Unlocked { held: false },
        Response::Snapshotted { databases: 0, records: 0 },
        Response::RingOpened { ring_bytes: 4096 },
    ];
    responses
        .into_iter()
        .map(|response| {
            let (index, kind) = match response {
                Response::Pong => (0, "Pong"),
                Response::Value(_) => (1, "Value"),
                Response::Stored(_) => (2, "Stored"),
                Response::Deleted { .. } => (3, "Deleted"),
                Response::Page(_) => (4, "Page"),
                Response::Tidied { .. } => (5, "Tidied"),
                Response::Swapped(_) => (6, "Swapped"),
                Response::Conflict(_) => (7, "Conflict"),
                Response::Stats(_) => (8, "Stats"),
                Response::Error(_) => (9, "Error"),
                Response::Rate { .. } => (10, "Rate"),
                Response::Seen { .. } => (11, "Seen"),
                Response::Greylist { .. } => (12, "Greylist"),
                Response::Slot { .. } => (13, "Slot"),
                Response::Counter(_) => (14, "Counter"),
                Response::Locked { .. } => (15, "Locked"),
                Response::Unlocked { .. } => (16, "Unlocked"),
                Response::Snapshotted { .. } => (17, "Snapshotted"),
                Response::RingOpened { .. } => (18, "RingOpened"),
            };
            (response, index, kind)
        })
        .collect()
}

#[test]
fn every_response_variant_has_its_index_and_kind() {
    let mut seen = Vec::new();
    for (response, index, kind) in every_response() {
        let encoded = postcard::to_stdvec(&response).unwrap();
        let (encoded_index, _) = postcard::take_from_bytes::<u32>(&encoded).unwrap();
        assert_eq!(encoded_index, index, "{response:?}");
        assert_eq!(response.kind(), kind, "{response:?}");
        seen.push(index);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..=18).collect::<Vec<_>>());
}

#[test]
fn ratelimit_and_seen_go_to_their_own_databases() {
    assert_eq!((RATELIMIT_DB, SEEN_DB), ("ratelimit", "seen"));
    let ratelimit = Request::Ratelimit { condition: RATE_CONDITION.into(), at: None };
    let seen = Request::Seen { condition: "-5m / key=k".into(), at: None };
    assert_eq!((ratelimit.db(), ratelimit.target_db()), (None, Some(db("ratelimit"))));
    assert_eq!((seen.db(), seen.target_db()), (None, Some(db("seen"))));
}

#[test]
fn requests_that_count_or_hold_are_not_idempotent() {
    let not_idempotent: Vec<&str> = every_request()
        .iter()
        .filter(|(request, _)| !request.is_idempotent())
        .map(|(request, _)| request.kind())
        .collect();
    assert_eq!(not_idempotent, ["ratelimit", "serialize_take", "serialize_release", "counter", "lock", "unlock"]);
}

#[test]
fn the_new_limits_are_checked_when_a_request_decodes() {
    let refused = |request: Request| {
        let body = postcard::to_stdvec(&RequestEnvelope { id: 4, request }).unwrap();
        RequestEnvelope::decode(&body).unwrap_err().reply.code
    };
    let accepted = |request: Request| {
        let body = postcard::to_stdvec(&RequestEnvelope { id: 4, request: request.clone() }).unwrap();
        assert_eq!(RequestEnvelope::decode(&body).unwrap().request, request);
    };
    let condition = |len| "1".repeat(len);
    accepted(Request::Ratelimit { condition: condition(CONDITION_BYTES_MAX), at: None });
    assert_eq!(
        refused(Request::Ratelimit { condition: condition(CONDITION_BYTES_MAX + 1), at: None }),
        ErrorCode::BAD_ARGUMENT
    );
    assert_eq!(
        refused(Request::Seen { condition: condition(CONDITION_BYTES_MAX + 1), at: None }),
        ErrorCode::BAD_ARGUMENT
    );
    accepted(Request::Lock { db: db("misc"), lease_ms: LEASE_MS_MAX });
    assert_eq!(refused(Request::Lock { db: db("misc"), lease_ms: 0 }), ErrorCode::BAD_ARGUMENT);
    assert_eq!(refused(Request::Lock { db: db("misc"), lease_ms: LEASE_MS_MAX + 1 }), ErrorCode::BAD_ARGUMENT);
    assert_eq!(
        refused(Request::SerializeTake { db: db("misc"), key: b"h".to_vec(), limit: 0 }),
        ErrorCode::BAD_ARGUMENT
    );
    assert_eq!(
        refused(Request::Counter { db: db("misc"), key: vec![], delta: 1, expiry_secs: None, at: None }),
        ErrorCode::BAD_KEY
    );
    let late = Some(Stamp { secs: 1, micros: 1_000_000 });
    assert_eq!(refused(Request::Seen { condition: "-5m / key=k".into(), at: late }), ErrorCode::BAD_ARGUMENT);
}

#[test]
fn the_index_request_variants_decodes_as_unknown_request() {
    // 07 = id 7, then 12 = index 18, the first past the known ones, with bytes a newer request
    // might carry after it.
    assert_eq!(REQUEST_VARIANTS, 18);
    let body = hex("07 12 01 02 03");
    let refusal = RequestEnvelope::decode(&body).unwrap_err();
    assert_eq!(refusal.id, 7);
    assert_eq!(refusal.reply.code, ErrorCode::UNKNOWN_REQUEST);

    // 80 01 = id 128, ac 02 = index 300: a multi-byte index is still read as an index.
    let refusal = RequestEnvelope::decode(&hex("80 01 ac 02")).unwrap_err();
    assert_eq!((refusal.id, refusal.reply.code), (128, ErrorCode::UNKNOWN_REQUEST));

    // The last known index still decodes: 07 = id 7, 11 = OpenRing (17).
    let envelope = RequestEnvelope::decode(&hex("07 11")).unwrap();
    assert_eq!(envelope.request, Request::OpenRing);
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
        ErrorCode::NOT_OFFERED,
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
    // Numbers are pinned: 1 to 18 in declaration order, never renumbered.
    assert_eq!(codes.iter().map(|code| code.0).collect::<Vec<_>>(), (1..=18).collect::<Vec<u16>>());
}
