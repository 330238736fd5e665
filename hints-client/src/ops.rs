//! The one mapping between typed calls and the wire: each operation's [`Request`] is built
//! here, and each [`Response`] is turned back into a typed result (or an [`Error`]) here. Both
//! clients call these, so no mapping is written twice.

use std::time::Duration;

use hints_proto::{DbName, DbStats, ErrorCode, ErrorReply, Record, Request, RequestView, Response, ScanPage, Stamp};

use crate::error::Error;

/// What a compare-and-set did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The write (or delete) applied; the record's new stamp, or `None` when it deleted.
    Swapped(Option<Stamp>),
    /// The record's stamp was not the one expected, so nothing changed; the record as it is
    /// now (`None`: there is none), to retry against.
    Conflict(Option<Record>),
}

/// What a `ratelimit` condition found: Exim's smoothed rate after this event, and whether it
/// is over the limit.
#[derive(Clone, Debug, PartialEq)]
pub struct RateOutcome {
    /// The smoothed rate after the event, in events per period (as Exim's `$sender_rate`).
    pub rate: f64,
    /// Whether the rate is over the limit (`rate >= limit`, Exim's rule): the condition is
    /// true.
    pub over: bool,
    /// The database key the condition used (`<period>/<mode>/[unique/]<key>`, as Exim's).
    pub key: String,
    /// Whether the record was written: never for `readonly`, and in `leaky` mode (the
    /// default) only when the event is under the limit, as in Exim.
    pub written: bool,
}

/// What a `seen` condition found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenOutcome {
    /// The condition's result, as Exim's `seen` condition would give it.
    pub result: bool,
    /// Whether the record was written (not for `readonly`).
    pub written: bool,
}

/// What a greylist check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreylistOutcome {
    /// Let the message through: the triplet was seen before and its delay is over.
    pub pass: bool,
    /// When deferred, how many seconds of the delay are left (0 when it passes).
    pub retry_after_secs: u64,
}

/// A serialize slot's state after a take or a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotOutcome {
    /// Whether this connection holds a slot under the key now: after a take, whether it got
    /// one (false: every slot is taken); after a release, false.
    pub held: bool,
    /// How many slots under the key are held now, by every connection.
    pub holders: u32,
}

// ---- requests ------------------------------------------------------------------------------

pub(crate) fn ping() -> Request {
    Request::Ping
}

/// A get borrowing the caller's name and key: a lookup allocates nothing to be sent.
pub(crate) fn get<'a>(db: &'a DbName, key: &'a [u8]) -> RequestView<'a> {
    RequestView::Get { db: db.as_str(), key }
}

/// A put borrowing the caller's name, key and value.
pub(crate) fn put<'a>(db: &'a DbName, key: &'a [u8], value: &'a [u8]) -> RequestView<'a> {
    RequestView::Put { db: db.as_str(), key, value }
}

pub(crate) fn delete(db: &DbName, key: &[u8]) -> Request {
    Request::Delete { db: db.clone(), key: key.to_vec() }
}

pub(crate) fn scan(db: &DbName, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Request {
    Request::Scan { db: db.clone(), prefix: prefix.to_vec(), after: after.map(<[u8]>::to_vec), limit }
}

/// Whole seconds: a record is dropped when it is older than that many seconds.
pub(crate) fn tidy(db: &DbName, older_than: Duration) -> Request {
    Request::Tidy { db: db.clone(), older_than_secs: older_than.as_secs() }
}

pub(crate) fn compare_and_set(db: &DbName, key: &[u8], expected: Option<Stamp>, value: Option<&[u8]>) -> Request {
    Request::CompareAndSet { db: db.clone(), key: key.to_vec(), expected, value: value.map(<[u8]>::to_vec) }
}

pub(crate) fn stats(db: Option<&DbName>) -> Request {
    Request::Stats { db: db.cloned() }
}

/// A ratelimit borrowing the caller's condition.
pub(crate) fn ratelimit(condition: &str, at: Option<Stamp>) -> RequestView<'_> {
    RequestView::Ratelimit { condition, at }
}

/// A seen borrowing the caller's condition.
pub(crate) fn seen(condition: &str, at: Option<Stamp>) -> RequestView<'_> {
    RequestView::Seen { condition, at }
}

/// Whole seconds for the delay and the expiry.
pub(crate) fn greylist(db: &DbName, key: &[u8], delay: Duration, expiry: Duration, at: Option<Stamp>) -> Request {
    Request::Greylist {
        db: db.clone(),
        key: key.to_vec(),
        delay_secs: delay.as_secs(),
        expiry_secs: expiry.as_secs(),
        at,
    }
}

pub(crate) fn serialize_take(db: &DbName, key: &[u8], limit: u32) -> Request {
    Request::SerializeTake { db: db.clone(), key: key.to_vec(), limit }
}

pub(crate) fn serialize_release(db: &DbName, key: &[u8]) -> Request {
    Request::SerializeRelease { db: db.clone(), key: key.to_vec() }
}

/// Whole seconds for the expiry.
pub(crate) fn counter(db: &DbName, key: &[u8], delta: i64, expiry: Option<Duration>, at: Option<Stamp>) -> Request {
    Request::Counter { db: db.clone(), key: key.to_vec(), delta, expiry_secs: expiry.map(|e| e.as_secs()), at }
}

/// The lease in milliseconds, rounded up (so a lease under a millisecond is not 0). A lease
/// past [`u32::MAX`] ms saturates rather than wrapping, so `validate` refuses it as it refuses
/// anything past [`hints_proto::limits::LEASE_MS_MAX`].
pub(crate) fn lock(db: &DbName, lease: Duration) -> Request {
    let lease_ms = u32::try_from(lease.as_nanos().div_ceil(1_000_000)).unwrap_or(u32::MAX);
    Request::Lock { db: db.clone(), lease_ms }
}

pub(crate) fn unlock(db: &DbName) -> Request {
    Request::Unlock { db: db.clone() }
}

pub(crate) fn snapshot(db: Option<&DbName>) -> Request {
    Request::Snapshot { db: db.cloned() }
}

// ---- responses -----------------------------------------------------------------------------

pub(crate) fn pong(response: Response) -> Result<(), Error> {
    match response {
        Response::Pong => Ok(()),
        other => Err(unexpected("Pong", other)),
    }
}

pub(crate) fn value(response: Response) -> Result<Option<Record>, Error> {
    match response {
        Response::Value(record) => Ok(record),
        other => Err(unexpected("Value", other)),
    }
}

pub(crate) fn stored(response: Response) -> Result<Stamp, Error> {
    match response {
        Response::Stored(stamp) => Ok(stamp),
        other => Err(unexpected("Stored", other)),
    }
}

pub(crate) fn deleted(response: Response) -> Result<bool, Error> {
    match response {
        Response::Deleted { existed } => Ok(existed),
        other => Err(unexpected("Deleted", other)),
    }
}

pub(crate) fn page(response: Response) -> Result<ScanPage, Error> {
    match response {
        Response::Page(page) => Ok(page),
        other => Err(unexpected("Page", other)),
    }
}

pub(crate) fn tidied(response: Response) -> Result<u64, Error> {
    match response {
        Response::Tidied { removed } => Ok(removed),
        other => Err(unexpected("Tidied", other)),
    }
}

pub(crate) fn swapped(response: Response) -> Result<CasOutcome, Error> {
    match response {
        Response::Swapped(stamp) => Ok(CasOutcome::Swapped(stamp)),
        Response::Conflict(record) => Ok(CasOutcome::Conflict(record)),
        other => Err(unexpected("Swapped or Conflict", other)),
    }
}

pub(crate) fn db_stats(response: Response) -> Result<Vec<DbStats>, Error> {
    match response {
        Response::Stats(stats) => Ok(stats),
        other => Err(unexpected("Stats", other)),
    }
}

pub(crate) fn rate(response: Response) -> Result<RateOutcome, Error> {
    match response {
        Response::Rate { rate, over, key, written } => Ok(RateOutcome { rate, over, key, written }),
        other => Err(unexpected("Rate", other)),
    }
}

pub(crate) fn seen_result(response: Response) -> Result<SeenOutcome, Error> {
    match response {
        Response::Seen { result, written } => Ok(SeenOutcome { result, written }),
        other => Err(unexpected("Seen", other)),
    }
}

pub(crate) fn greylisted(response: Response) -> Result<GreylistOutcome, Error> {
    match response {
        Response::Greylist { pass, retry_after_secs } => Ok(GreylistOutcome { pass, retry_after_secs }),
        other => Err(unexpected("Greylist", other)),
    }
}

pub(crate) fn slot(response: Response) -> Result<SlotOutcome, Error> {
    match response {
        Response::Slot { held, holders } => Ok(SlotOutcome { held, holders }),
        other => Err(unexpected("Slot", other)),
    }
}

pub(crate) fn counted(response: Response) -> Result<i64, Error> {
    match response {
        Response::Counter(value) => Ok(value),
        other => Err(unexpected("Counter", other)),
    }
}

/// The lease granted, from now.
pub(crate) fn locked(response: Response) -> Result<Duration, Error> {
    match response {
        Response::Locked { lease_ms } => Ok(Duration::from_millis(u64::from(lease_ms))),
        other => Err(unexpected("Locked", other)),
    }
}

pub(crate) fn unlocked(response: Response) -> Result<bool, Error> {
    match response {
        Response::Unlocked { held } => Ok(held),
        other => Err(unexpected("Unlocked", other)),
    }
}

pub(crate) fn snapshotted(response: Response) -> Result<(u32, u64), Error> {
    match response {
        Response::Snapshotted { databases, records } => Ok((databases, records)),
        other => Err(unexpected("Snapshotted", other)),
    }
}

/// Passes any answer through except an error reply, which becomes its [`Error`] variant.
pub(crate) fn answer(response: Response) -> Result<Response, Error> {
    match response {
        Response::Error(reply) => Err(error_from_reply(reply)),
        other => Ok(other),
    }
}

/// The variant of [`Error`] an error reply stands for, by its code.
pub(crate) fn error_from_reply(reply: ErrorReply) -> Error {
    let code = reply.code;
    if code.is_refusal() {
        Error::Refused(reply)
    } else if code.is_bad_request() {
        Error::BadRequest(reply)
    } else if code == ErrorCode::NOT_FOUND {
        Error::NotFound(reply)
    } else {
        Error::Daemon(reply)
    }
}

/// An error reply becomes its error; anything else is the wrong answer to the request.
fn unexpected(wanted: &str, response: Response) -> Error {
    match response {
        Response::Error(reply) => error_from_reply(reply),
        other => Error::Protocol(format!("expected a {wanted} response, got {}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use hints_proto::OpCount;

    use super::*;

    fn db() -> DbName {
        DbName::new("misc").unwrap()
    }

    fn record() -> Record {
        Record { key: b"k".to_vec(), value: b"v".to_vec(), stamp: Stamp { secs: 5, micros: 6 } }
    }

    fn reply(code: ErrorCode) -> ErrorReply {
        ErrorReply::new(code, "because")
    }

    #[test]
    fn each_answer_maps_to_its_typed_result() {
        let stamp = Stamp { secs: 1, micros: 2 };
        assert_eq!(pong(Response::Pong), Ok(()));
        assert_eq!(value(Response::Value(Some(record()))), Ok(Some(record())));
        assert_eq!(value(Response::Value(None)), Ok(None));
        assert_eq!(stored(Response::Stored(stamp)), Ok(stamp));
        assert_eq!(deleted(Response::Deleted { existed: true }), Ok(true));
        assert_eq!(deleted(Response::Deleted { existed: false }), Ok(false));
        let scan_page = ScanPage { records: vec![record()], next: Some(b"k".to_vec()) };
        assert_eq!(page(Response::Page(scan_page.clone())), Ok(scan_page));
        assert_eq!(tidied(Response::Tidied { removed: 7 }), Ok(7));
        assert_eq!(swapped(Response::Swapped(Some(stamp))), Ok(CasOutcome::Swapped(Some(stamp))));
        assert_eq!(swapped(Response::Swapped(None)), Ok(CasOutcome::Swapped(None)));
        assert_eq!(swapped(Response::Conflict(Some(record()))), Ok(CasOutcome::Conflict(Some(record()))));
        assert_eq!(swapped(Response::Conflict(None)), Ok(CasOutcome::Conflict(None)));
        let counters = vec![DbStats {
            db: db(),
            records: 1,
            bytes: 2,
            ops: vec![OpCount { kind: "get".into(), count: 3 }],
            records_max: 4,
            expired: 5,
            evicted: 6,
            slots_held: 7,
        }];
        assert_eq!(db_stats(Response::Stats(counters.clone())), Ok(counters));
    }

    #[test]
    fn each_new_answer_maps_to_its_typed_result() {
        let key = "1h/per_mail/192.0.2.1".to_owned();
        assert_eq!(
            rate(Response::Rate { rate: 0.1 + 0.2, over: true, key: key.clone(), written: false }),
            Ok(RateOutcome { rate: 0.1 + 0.2, over: true, key, written: false }),
            "the rate is passed on bit for bit"
        );
        assert_eq!(
            seen_result(Response::Seen { result: true, written: false }),
            Ok(SeenOutcome { result: true, written: false })
        );
        assert_eq!(
            greylisted(Response::Greylist { pass: false, retry_after_secs: 299 }),
            Ok(GreylistOutcome { pass: false, retry_after_secs: 299 })
        );
        assert_eq!(slot(Response::Slot { held: true, holders: 2 }), Ok(SlotOutcome { held: true, holders: 2 }));
        assert_eq!(slot(Response::Slot { held: false, holders: 0 }), Ok(SlotOutcome { held: false, holders: 0 }));
        assert_eq!(counted(Response::Counter(-3)), Ok(-3));
        assert_eq!(counted(Response::Counter(i64::MAX)), Ok(i64::MAX));
        assert_eq!(locked(Response::Locked { lease_ms: 1500 }), Ok(Duration::from_millis(1500)));
        assert_eq!(unlocked(Response::Unlocked { held: true }), Ok(true));
        assert_eq!(unlocked(Response::Unlocked { held: false }), Ok(false));
        assert_eq!(snapshotted(Response::Snapshotted { databases: 3, records: 1 << 40 }), Ok((3, 1 << 40)));
    }

    #[test]
    fn error_codes_map_to_the_variant_that_says_what_happened() {
        let cases = [
            (ErrorCode::NOT_ALLOWED, "Refused"),
            (ErrorCode::VERSION_MISMATCH, "Refused"),
            (ErrorCode::HELLO_EXPECTED, "Refused"),
            (ErrorCode::TOO_MANY_CONNECTIONS, "Refused"),
            (ErrorCode::BAD_FRAME, "BadRequest"),
            (ErrorCode::FRAME_TOO_LARGE, "BadRequest"),
            (ErrorCode::UNKNOWN_REQUEST, "BadRequest"),
            (ErrorCode::BAD_DB_NAME, "BadRequest"),
            (ErrorCode::BAD_KEY, "BadRequest"),
            (ErrorCode::VALUE_TOO_LARGE, "BadRequest"),
            (ErrorCode::BAD_ARGUMENT, "BadRequest"),
            (ErrorCode::NOT_FOUND, "NotFound"),
            (ErrorCode::DATABASE_FAILED, "Daemon"),
            (ErrorCode::BUSY, "Daemon"),
            (ErrorCode::SHUTTING_DOWN, "Daemon"),
            (ErrorCode::INTERNAL, "Daemon"),
            (ErrorCode(999), "Daemon"),
        ];
        for (code, want) in cases {
            let err = value(Response::Error(reply(code))).unwrap_err();
            let got = match &err {
                Error::Refused(_) => "Refused",
                Error::BadRequest(_) => "BadRequest",
                Error::NotFound(_) => "NotFound",
                Error::Daemon(_) => "Daemon",
                Error::Unavailable { .. } | Error::Protocol(_) => "other",
            };
            assert_eq!(got, want, "{code}");
            assert_eq!(err.reply(), Some(&reply(code)), "the reply is kept whole");
            assert_eq!(Error::from(reply(code)), err, "From agrees with the mapping");
        }
    }

    #[test]
    fn every_typed_mapping_turns_an_error_reply_into_its_error() {
        let busy = || Response::Error(reply(ErrorCode::BUSY));
        let want = Err::<(), _>(Error::Daemon(reply(ErrorCode::BUSY)));
        assert_eq!(pong(busy()), want);
        assert_eq!(value(busy()).map(drop), want);
        assert_eq!(stored(busy()).map(drop), want);
        assert_eq!(deleted(busy()).map(drop), want);
        assert_eq!(page(busy()).map(drop), want);
        assert_eq!(tidied(busy()).map(drop), want);
        assert_eq!(swapped(busy()).map(drop), want);
        assert_eq!(db_stats(busy()).map(drop), want);
        assert_eq!(rate(busy()).map(drop), want);
        assert_eq!(seen_result(busy()).map(drop), want);
        assert_eq!(greylisted(busy()).map(drop), want);
        assert_eq!(slot(busy()).map(drop), want);
        assert_eq!(counted(busy()).map(drop), want);
        assert_eq!(locked(busy()).map(drop), want);
        assert_eq!(unlocked(busy()).map(drop), want);
        assert_eq!(snapshotted(busy()).map(drop), want);
        assert_eq!(answer(busy()).map(drop), want);
        assert_eq!(answer(Response::Pong), Ok(Response::Pong));
    }

    #[test]
    fn the_wrong_kind_of_answer_is_a_protocol_error() {
        let err = value(Response::Pong).unwrap_err();
        assert_eq!(err, Error::Protocol("expected a Value response, got Pong".into()));
        assert!(matches!(stored(Response::Value(None)), Err(Error::Protocol(_))));
        assert!(matches!(swapped(Response::Stored(Stamp::default())), Err(Error::Protocol(_))));
        assert!(matches!(pong(Response::Tidied { removed: 0 }), Err(Error::Protocol(_))));
        let err = rate(Response::Seen { result: true, written: true }).unwrap_err();
        assert_eq!(err, Error::Protocol("expected a Rate response, got Seen".into()));
        assert!(matches!(seen_result(Response::Pong), Err(Error::Protocol(_))));
        assert!(matches!(greylisted(Response::Counter(1)), Err(Error::Protocol(_))));
        assert!(matches!(slot(Response::Unlocked { held: true }), Err(Error::Protocol(_))));
        assert!(matches!(counted(Response::Slot { held: true, holders: 1 }), Err(Error::Protocol(_))));
        assert!(matches!(locked(Response::Unlocked { held: true }), Err(Error::Protocol(_))));
        assert!(matches!(unlocked(Response::Locked { lease_ms: 1 }), Err(Error::Protocol(_))));
        assert!(matches!(snapshotted(Response::Stats(Vec::new())), Err(Error::Protocol(_))));
    }

    #[test]
    fn requests_carry_their_arguments() {
        assert_eq!(ping(), Request::Ping);
        assert_eq!(get(&db(), b"k").into_owned(), Request::Get { db: db(), key: b"k".to_vec() });
        assert_eq!(
            put(&db(), b"k", b"v").into_owned(),
            Request::Put { db: db(), key: b"k".to_vec(), value: b"v".to_vec() }
        );
        assert_eq!(delete(&db(), b"k"), Request::Delete { db: db(), key: b"k".to_vec() });
        assert_eq!(
            scan(&db(), b"p", Some(b"pa"), 10),
            Request::Scan { db: db(), prefix: b"p".to_vec(), after: Some(b"pa".to_vec()), limit: 10 }
        );
        assert_eq!(tidy(&db(), Duration::from_millis(90_500)), Request::Tidy { db: db(), older_than_secs: 90 });
        let stamp = Some(Stamp { secs: 3, micros: 4 });
        assert_eq!(
            compare_and_set(&db(), b"k", stamp, None),
            Request::CompareAndSet { db: db(), key: b"k".to_vec(), expected: stamp, value: None }
        );
        assert_eq!(stats(None), Request::Stats { db: None });
        assert_eq!(stats(Some(&db())), Request::Stats { db: Some(db()) });
    }

    #[test]
    fn new_requests_carry_their_arguments() {
        let at = Some(Stamp { secs: 1_700_000_000, micros: 5 });
        let condition = "100 / 1h / strict / 192.0.2.1";
        assert_eq!(ratelimit(condition, at).into_owned(), Request::Ratelimit { condition: condition.into(), at });
        assert_eq!(seen("-5m / key=k", None).into_owned(), Request::Seen { condition: "-5m / key=k".into(), at: None });
        assert_eq!(
            greylist(&db(), b"t", Duration::from_millis(300_900), Duration::from_secs(86_400), at),
            Request::Greylist { db: db(), key: b"t".to_vec(), delay_secs: 300, expiry_secs: 86_400, at }
        );
        assert_eq!(serialize_take(&db(), b"s", 2), Request::SerializeTake { db: db(), key: b"s".to_vec(), limit: 2 });
        assert_eq!(serialize_release(&db(), b"s"), Request::SerializeRelease { db: db(), key: b"s".to_vec() });
        assert_eq!(
            counter(&db(), b"c", -3, Some(Duration::from_secs(60)), at),
            Request::Counter { db: db(), key: b"c".to_vec(), delta: -3, expiry_secs: Some(60), at }
        );
        assert_eq!(
            counter(&db(), b"c", 1, None, None),
            Request::Counter { db: db(), key: b"c".to_vec(), delta: 1, expiry_secs: None, at: None }
        );
        assert_eq!(lock(&db(), Duration::from_secs(2)), Request::Lock { db: db(), lease_ms: 2000 });
        assert_eq!(unlock(&db()), Request::Unlock { db: db() });
        assert_eq!(snapshot(None), Request::Snapshot { db: None });
        assert_eq!(snapshot(Some(&db())), Request::Snapshot { db: Some(db()) });
    }

    #[test]
    fn a_lease_is_whole_milliseconds_rounded_up_and_checked_against_the_limit() {
        use hints_proto::limits::LEASE_MS_MAX;
        let lease_ms = |lease| match lock(&db(), lease) {
            Request::Lock { lease_ms, .. } => lease_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(lease_ms(Duration::from_micros(1)), 1, "under a millisecond is not 0");
        assert_eq!(lease_ms(Duration::from_micros(1_500)), 2);
        assert_eq!(lease_ms(Duration::ZERO), 0);
        assert_eq!(lease_ms(Duration::from_secs(u64::MAX)), u32::MAX, "saturates, never wraps");
        assert_eq!(lease_ms(Duration::from_millis(u64::from(u32::MAX) + 1)), u32::MAX);
        assert!(lock(&db(), Duration::from_millis(u64::from(LEASE_MS_MAX))).validate().is_ok());
        for lease in [Duration::ZERO, Duration::from_millis(u64::from(LEASE_MS_MAX) + 1), Duration::MAX] {
            let reply = lock(&db(), lease).validate().unwrap_err();
            assert_eq!(reply.code, ErrorCode::BAD_ARGUMENT, "{lease:?}");
        }
    }
}
