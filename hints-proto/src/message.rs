//! Requests and responses, and the envelopes that number them for pipelining.
//!
//! Variants are append-only: each carries its wire index in a comment, and
//! `tests/golden.rs` pins the bytes of every one. A client may pipeline requests; the daemon
//! answers each with the same id, in the order the requests arrived.

use serde::{Deserialize, Serialize};

use crate::db_name::DbName;
use crate::error::{ErrorCode, ErrorReply};
use crate::limits::{CONDITION_BYTES_MAX, KEY_BYTES_MAX, LEASE_MS_MAX, SCAN_PAGE_RECORDS_MAX, VALUE_BYTES_MAX};
use crate::request_view::decode_request;

/// The database `Request::Ratelimit` works in, as Exim's.
pub const RATELIMIT_DB: &str = "ratelimit";
/// The database `Request::Seen` works in, as Exim's.
pub const SEEN_DB: &str = "seen";

/// The id a daemon puts on an error that belongs to no request it could read (a frame that did
/// not decode far enough to show its id). Clients number requests from 1.
pub const CONNECTION_ERROR_ID: u64 = 0;

/// When a record was last written: wall-clock seconds and microseconds since the Unix epoch,
/// set by the daemon as Exim's `dbfn_write` sets `time_stamp`. Within one database, stamps
/// strictly increase, so a stamp names one version of a record (compare-and-set relies on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub secs: u64,
    pub micros: u32,
}

impl Stamp {
    /// Microseconds since the epoch.
    pub fn as_micros(self) -> u128 {
        u128::from(self.secs) * 1_000_000 + u128::from(self.micros)
    }

    /// The stamp one microsecond later.
    pub fn next(self) -> Stamp {
        if self.micros < 999_999 {
            Stamp { secs: self.secs, micros: self.micros + 1 }
        } else {
            Stamp { secs: self.secs.saturating_add(1), micros: 0 }
        }
    }
}

/// One record as the wire carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub stamp: Stamp,
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// 0: answered with [`Response::Pong`].
    Ping,
    /// 1: answered with [`Response::Value`].
    Get {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// 2: store a value (the daemon stamps it); answered with [`Response::Stored`].
    Put {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// 3: answered with [`Response::Deleted`].
    Delete {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// 4: records whose key starts with `prefix`, in key order, starting after the key `after`
    /// (the previous page's `next`); answered with [`Response::Page`].
    Scan {
        db: DbName,
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
        #[serde(with = "serde_bytes")]
        after: Option<Vec<u8>>,
        limit: u32,
    },
    /// 5: drop records last written more than `older_than_secs` ago; answered with
    /// [`Response::Tidied`].
    Tidy { db: DbName, older_than_secs: u64 },
    /// 6: write `value` (or delete, when `None`) only if the record's stamp is still `expected`
    /// (`None`: only if there is no record); answered with [`Response::Swapped`] or
    /// [`Response::Conflict`].
    CompareAndSet {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        expected: Option<Stamp>,
        #[serde(with = "serde_bytes")]
        value: Option<Vec<u8>>,
    },
    /// 7: counters of one database, or of every running database; answered with
    /// [`Response::Stats`].
    Stats { db: Option<DbName> },
    /// 8: Exim's `ratelimit` condition (`100 / 1h / strict / per_rcpt / 192.0.2.1`), applied
    /// atomically in the `ratelimit` database at `at` (the MTA's clock at the event; the
    /// daemon's when `None`); answered with [`Response::Rate`].
    Ratelimit { condition: String, at: Option<Stamp> },
    /// 9: Exim's `seen` condition (`-5m / key=K`), in the `seen` database; answered with
    /// [`Response::Seen`].
    Seen { condition: String, at: Option<Stamp> },
    /// 10: a greylist triplet under `key`: the first attempt is deferred, a retry after
    /// `delay_secs` passes and is remembered, a triplet unseen for `expiry_secs` is forgotten;
    /// answered with [`Response::Greylist`].
    Greylist {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        delay_secs: u64,
        expiry_secs: u64,
        at: Option<Stamp>,
    },
    /// 11: take one of `limit` slots under `key` (Exim's serialize and ETRN records); the slot
    /// is this connection's until released, the connection closes, or it ages out; answered
    /// with [`Response::Slot`].
    SerializeTake {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        limit: u32,
    },
    /// 12: give back a slot this connection holds under `key`; answered with
    /// [`Response::Slot`].
    SerializeRelease {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// 13: add `delta` to the 64-bit counter under `key` (created at 0); a new counter lives
    /// `expiry_secs` when given; answered with [`Response::Counter`].
    Counter {
        db: DbName,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        delta: i64,
        expiry_secs: Option<u64>,
        at: Option<Stamp>,
    },
    /// 14: hold the database exclusively for `lease_ms` (legacy read-modify-write code written
    /// against Exim's lockfile); other clients' requests to it wait, in order, until release,
    /// the lease's end or this connection's close; answered with [`Response::Locked`].
    Lock { db: DbName, lease_ms: u32 },
    /// 15: end this connection's exclusive session; answered with [`Response::Unlocked`].
    Unlock { db: DbName },
    /// 16: write snapshots now, of one database or all; answered with [`Response::Snapshotted`].
    Snapshot { db: Option<DbName> },
    /// 17: move this connection's requests and replies to a shared-memory ring
    /// (`ring::shm`); answered with [`Response::RingOpened`], whose frame carries the ring's
    /// memfd (`SCM_RIGHTS`). After it every frame each way goes through the ring, and the
    /// socket carries only doorbell bytes (any value, each a wake-up for an end that announced
    /// sleep) and the close. Sent alone, with nothing else in flight. A daemon that offers no
    /// rings answers [`ErrorCode::NOT_OFFERED`] and the socket goes on; one that predates rings
    /// answers [`ErrorCode::UNKNOWN_REQUEST`] and closes the connection.
    OpenRing,
}

/// How many `Request` variants this crate knows; a higher index is an unknown request.
pub const REQUEST_VARIANTS: u32 = 18;

/// Each request's name, as `stats` counts it, by wire index ([`Request::index`]).
pub const REQUEST_KINDS: [&str; REQUEST_VARIANTS as usize] = [
    "ping",
    "get",
    "put",
    "delete",
    "scan",
    "tidy",
    "cas",
    "stats",
    "ratelimit",
    "seen",
    "greylist",
    "serialize_take",
    "serialize_release",
    "counter",
    "lock",
    "unlock",
    "snapshot",
    "open_ring",
];

/// The daemon's answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// 0
    Pong,
    /// 1: the record, or `None` when the key is absent.
    Value(Option<Record>),
    /// 2: the stamp the daemon gave the write.
    Stored(Stamp),
    /// 3: whether there was a record to delete.
    Deleted { existed: bool },
    /// 4
    Page(ScanPage),
    /// 5: how many records were dropped.
    Tidied { removed: u64 },
    /// 6: the compare-and-set applied; the new stamp, or `None` when it deleted.
    Swapped(Option<Stamp>),
    /// 7: the compare-and-set did not apply; the record as it is now.
    Conflict(Option<Record>),
    /// 8
    Stats(Vec<DbStats>),
    /// 9
    Error(ErrorReply),
    /// 10: the smoothed rate after the event, whether it is over the limit (`rate >= limit`),
    /// and the record key and whether the record was written.
    Rate { rate: f64, over: bool, key: String, written: bool },
    /// 11: the `seen` condition's result, and whether the record was written.
    Seen { result: bool, written: bool },
    /// 12: pass, or defer with the seconds left of the delay.
    Greylist { pass: bool, retry_after_secs: u64 },
    /// 13: whether this connection holds a slot now, and how many holders there are.
    Slot { held: bool, holders: u32 },
    /// 14: the counter's new value.
    Counter(i64),
    /// 15: the session is this connection's until the lease ends (milliseconds from now).
    Locked { lease_ms: u32 },
    /// 16: whether this connection had held the session.
    Unlocked { held: bool },
    /// 17: how many databases and records were written.
    Snapshotted { databases: u32, records: u64 },
    /// 18: from the next frame on, this connection speaks through the ring of `ring_bytes`
    /// each way passed with this frame.
    RingOpened { ring_bytes: u32 },
}

impl Response {
    /// The variant's name, for messages about unexpected answers.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Pong => "Pong",
            Response::Value(_) => "Value",
            Response::Stored(_) => "Stored",
            Response::Deleted { .. } => "Deleted",
            Response::Page(_) => "Page",
            Response::Tidied { .. } => "Tidied",
            Response::Swapped(_) => "Swapped",
            Response::Conflict(_) => "Conflict",
            Response::Stats(_) => "Stats",
            Response::Error(_) => "Error",
            Response::Rate { .. } => "Rate",
            Response::Seen { .. } => "Seen",
            Response::Greylist { .. } => "Greylist",
            Response::Slot { .. } => "Slot",
            Response::Counter(_) => "Counter",
            Response::Locked { .. } => "Locked",
            Response::Unlocked { .. } => "Unlocked",
            Response::Snapshotted { .. } => "Snapshotted",
            Response::RingOpened { .. } => "RingOpened",
        }
    }
}

/// One page of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPage {
    pub records: Vec<Record>,
    /// Where the next page starts (pass it as `after`); `None` on the last page.
    #[serde(with = "serde_bytes")]
    pub next: Option<Vec<u8>>,
}

/// Counters of one database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStats {
    pub db: DbName,
    pub records: u64,
    /// Bytes of keys and values held.
    pub bytes: u64,
    /// Operations handled since the database started, by kind (`get`, `put`, ...).
    pub ops: Vec<OpCount>,
    /// The record limit past which the oldest records are evicted.
    pub records_max: u64,
    /// Records dropped by age (or their own expiry) since the daemon started.
    pub expired: u64,
    /// Records evicted at the record limit since the daemon started.
    pub evicted: u64,
    /// Serialize slots held now.
    pub slots_held: u64,
}

/// How many operations of one kind a database has handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCount {
    pub kind: String,
    pub count: u64,
}

/// A request and the id its response will carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub id: u64,
    pub request: Request,
}

/// A response and the id of the request it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub id: u64,
    pub response: Response,
}

/// Why a request frame was refused, with its id when the frame showed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRefusal {
    pub id: u64,
    pub reply: ErrorReply,
}

impl Request {
    /// The request's wire index (as the comment on each variant says).
    pub fn index(&self) -> usize {
        match self {
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
        }
    }

    /// The operation's name, as `stats` counts it.
    pub fn kind(&self) -> &'static str {
        REQUEST_KINDS[self.index()]
    }

    /// The database the request is for, if it names exactly one. `Ratelimit` and `Seen` go to
    /// the `ratelimit` and `seen` databases (see [`Request::target_db`]).
    pub fn db(&self) -> Option<&DbName> {
        match self {
            Request::Ping
            | Request::OpenRing
            | Request::Stats { .. }
            | Request::Snapshot { .. }
            | Request::Ratelimit { .. }
            | Request::Seen { .. } => None,
            Request::Get { db, .. }
            | Request::Put { db, .. }
            | Request::Delete { db, .. }
            | Request::Scan { db, .. }
            | Request::Tidy { db, .. }
            | Request::CompareAndSet { db, .. }
            | Request::Greylist { db, .. }
            | Request::SerializeTake { db, .. }
            | Request::SerializeRelease { db, .. }
            | Request::Counter { db, .. }
            | Request::Lock { db, .. }
            | Request::Unlock { db } => Some(db),
        }
    }

    /// The database whose actor handles the request, if one does.
    pub fn target_db(&self) -> Option<DbName> {
        self.target_db_name().map(DbName::unchecked)
    }

    /// The name of [`Request::target_db`], without copying it.
    pub fn target_db_name(&self) -> Option<&str> {
        match self {
            Request::Ratelimit { .. } => Some(RATELIMIT_DB),
            Request::Seen { .. } => Some(SEEN_DB),
            Request::Stats { db: Some(db) } | Request::Snapshot { db: Some(db) } => Some(db.as_str()),
            other => other.db().map(DbName::as_str),
        }
    }

    /// True when sending the request twice leaves the same records as sending it once, so a
    /// client may resend it after a connection broke without knowing whether it arrived.
    /// The second answer may differ (a resent put gets a newer stamp, a resent delete says
    /// nothing existed, a resent compare-and-set that had applied reports a conflict), but
    /// the data converge.
    pub fn is_idempotent(&self) -> bool {
        // A resent rate or counter event would count twice, and a resent slot or session
        // request belongs to the broken connection's holdings, which are gone.
        !matches!(
            self,
            Request::Ratelimit { .. }
                | Request::Counter { .. }
                | Request::SerializeTake { .. }
                | Request::SerializeRelease { .. }
                | Request::Lock { .. }
                | Request::Unlock { .. }
        )
    }

    /// Checks every field against its limit.
    ///
    /// # Errors
    /// The first field out of bounds, as an [`ErrorReply`] naming it.
    pub fn validate(&self) -> Result<(), ErrorReply> {
        if let Some(db) = self.db() {
            db.check()?;
        }
        match self {
            Request::Ping | Request::OpenRing | Request::Tidy { .. } | Request::Unlock { .. } => Ok(()),
            Request::Stats { db } | Request::Snapshot { db } => db.as_ref().map_or(Ok(()), DbName::check),
            Request::Ratelimit { condition, at } | Request::Seen { condition, at } => {
                check_condition_and_time(condition, *at)
            }
            Request::Greylist { key, at, .. } | Request::Counter { key, at, .. } => {
                check_key(key)?;
                at.map_or(Ok(()), check_stamp)
            }
            Request::SerializeTake { key, limit, .. } => {
                check_key(key)?;
                if *limit == 0 {
                    return Err(ErrorReply::new(ErrorCode::BAD_ARGUMENT, "a serialize limit of 0 admits nobody"));
                }
                Ok(())
            }
            Request::SerializeRelease { key, .. } => check_key(key),
            Request::Lock { lease_ms, .. } => {
                if !(1..=LEASE_MS_MAX).contains(lease_ms) {
                    return Err(ErrorReply::new(
                        ErrorCode::BAD_ARGUMENT,
                        format!("a lease of {lease_ms} ms is outside 1..={LEASE_MS_MAX}"),
                    ));
                }
                Ok(())
            }
            Request::Get { key, .. } | Request::Delete { key, .. } => check_key(key),
            Request::Put { key, value, .. } => {
                check_key(key)?;
                check_value(value)
            }
            Request::CompareAndSet { key, value, .. } => {
                check_key(key)?;
                value.as_deref().map_or(Ok(()), check_value)
            }
            Request::Scan { prefix, after, limit, .. } => {
                if prefix.len() > KEY_BYTES_MAX {
                    return Err(ErrorReply::new(
                        ErrorCode::BAD_KEY,
                        format!("scan prefix is {} bytes, the limit is {KEY_BYTES_MAX}", prefix.len()),
                    ));
                }
                if let Some(after) = after {
                    check_key(after)?;
                }
                if !(1..=SCAN_PAGE_RECORDS_MAX).contains(limit) {
                    return Err(ErrorReply::new(
                        ErrorCode::BAD_ARGUMENT,
                        format!("scan limit {limit} is outside 1..={SCAN_PAGE_RECORDS_MAX}"),
                    ));
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<(), ErrorReply> {
    if key.is_empty() {
        return Err(ErrorReply::new(ErrorCode::BAD_KEY, "key is empty"));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ErrorReply::new(
            ErrorCode::BAD_KEY,
            format!("key is {} bytes, the limit is {KEY_BYTES_MAX}", key.len()),
        ));
    }
    Ok(())
}

/// A ratelimit's or a seen's fields: the condition's length, and the event time if given.
pub(crate) fn check_condition_and_time(condition: &str, at: Option<Stamp>) -> Result<(), ErrorReply> {
    check_condition(condition)?;
    at.map_or(Ok(()), check_stamp)
}

fn check_condition(condition: &str) -> Result<(), ErrorReply> {
    if condition.len() > CONDITION_BYTES_MAX {
        return Err(ErrorReply::new(
            ErrorCode::BAD_ARGUMENT,
            format!("condition is {} bytes, the limit is {CONDITION_BYTES_MAX}", condition.len()),
        ));
    }
    Ok(())
}

fn check_stamp(stamp: Stamp) -> Result<(), ErrorReply> {
    if stamp.micros >= 1_000_000 {
        return Err(ErrorReply::new(
            ErrorCode::BAD_ARGUMENT,
            format!("{} microseconds is not under a second", stamp.micros),
        ));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<(), ErrorReply> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(ErrorReply::new(
            ErrorCode::VALUE_TOO_LARGE,
            format!("value is {} bytes, the limit is {VALUE_BYTES_MAX}", value.len()),
        ));
    }
    Ok(())
}

impl RequestEnvelope {
    /// Decodes and validates a request frame body, telling an unknown operation from a
    /// damaged frame.
    ///
    /// # Errors
    /// [`ErrorCode::BAD_FRAME`] when the body does not decode (with
    /// [`CONNECTION_ERROR_ID`] if not even the id did), [`ErrorCode::UNKNOWN_REQUEST`] for a
    /// variant index past [`REQUEST_VARIANTS`], and the field errors of [`Request::validate`].
    pub fn decode(body: &[u8]) -> Result<RequestEnvelope, RequestRefusal> {
        let (id, view) = decode_request(body)?;
        Ok(RequestEnvelope { id, request: view.into_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> DbName {
        DbName::new("misc").unwrap()
    }

    #[test]
    fn an_unknown_operation_is_told_apart_from_a_damaged_frame() {
        let unknown = [5u8, REQUEST_VARIANTS as u8, 1, 2, 3];
        let refusal = RequestEnvelope::decode(&unknown).unwrap_err();
        assert_eq!((refusal.id, refusal.reply.code), (5, ErrorCode::UNKNOWN_REQUEST));

        let damaged = [6u8, 1, 200];
        let refusal = RequestEnvelope::decode(&damaged).unwrap_err();
        assert_eq!((refusal.id, refusal.reply.code), (6, ErrorCode::BAD_FRAME));

        let refusal = RequestEnvelope::decode(&[]).unwrap_err();
        assert_eq!((refusal.id, refusal.reply.code), (CONNECTION_ERROR_ID, ErrorCode::BAD_FRAME));
    }

    #[test]
    fn fields_over_their_limits_are_refused_by_name() {
        let cases = [
            (Request::Get { db: db(), key: vec![] }, ErrorCode::BAD_KEY),
            (Request::Get { db: db(), key: vec![b'k'; KEY_BYTES_MAX + 1] }, ErrorCode::BAD_KEY),
            (
                Request::Put { db: db(), key: b"k".to_vec(), value: vec![0; VALUE_BYTES_MAX + 1] },
                ErrorCode::VALUE_TOO_LARGE,
            ),
            (Request::Get { db: DbName::unchecked("Bad Name"), key: b"k".to_vec() }, ErrorCode::BAD_DB_NAME),
            (Request::Scan { db: db(), prefix: vec![], after: None, limit: 0 }, ErrorCode::BAD_ARGUMENT),
            (
                Request::Scan { db: db(), prefix: vec![], after: None, limit: SCAN_PAGE_RECORDS_MAX + 1 },
                ErrorCode::BAD_ARGUMENT,
            ),
        ];
        for (request, code) in cases {
            let body = postcard::to_stdvec(&RequestEnvelope { id: 9, request: request.clone() }).unwrap();
            let refusal = RequestEnvelope::decode(&body).unwrap_err();
            assert_eq!((refusal.id, refusal.reply.code), (9, code), "{request:?}");
        }
    }

    #[test]
    fn stamps_step_by_one_microsecond_across_a_second() {
        assert_eq!(Stamp { secs: 1, micros: 999_999 }.next(), Stamp { secs: 2, micros: 0 });
        assert!(Stamp { secs: 1, micros: 5 } < Stamp { secs: 1, micros: 6 }.next());
    }
}
