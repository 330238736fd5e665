//! The one mapping between typed calls and the wire: each operation's [`Request`] is built
//! here, and each [`Response`] is turned back into a typed result (or an [`Error`]) here. Both
//! clients call these, so no mapping is written twice.

use std::time::Duration;

use hints_proto::{DbName, DbStats, ErrorCode, ErrorReply, Record, Request, Response, ScanPage, Stamp};

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

// ---- requests ------------------------------------------------------------------------------

pub(crate) fn ping() -> Request {
    Request::Ping
}

pub(crate) fn get(db: &DbName, key: &[u8]) -> Request {
    Request::Get { db: db.clone(), key: key.to_vec() }
}

pub(crate) fn put(db: &DbName, key: &[u8], value: &[u8]) -> Request {
    Request::Put { db: db.clone(), key: key.to_vec(), value: value.to_vec() }
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
        other => Error::Protocol(format!("expected a {wanted} response, got {}", variant_name(&other))),
    }
}

fn variant_name(response: &Response) -> &'static str {
    match response {
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
        let counters =
            vec![DbStats { db: db(), records: 1, bytes: 2, ops: vec![OpCount { kind: "get".into(), count: 3 }] }];
        assert_eq!(db_stats(Response::Stats(counters.clone())), Ok(counters));
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
    }

    #[test]
    fn requests_carry_their_arguments() {
        assert_eq!(ping(), Request::Ping);
        assert_eq!(get(&db(), b"k"), Request::Get { db: db(), key: b"k".to_vec() });
        assert_eq!(put(&db(), b"k", b"v"), Request::Put { db: db(), key: b"k".to_vec(), value: b"v".to_vec() });
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
}
