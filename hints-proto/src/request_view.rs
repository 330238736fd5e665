//! Requests read in place: a get or a put (the bulk of an MTA's traffic) borrows its database
//! name, key and value from the frame, and a ratelimit or a seen its condition, so reading one
//! allocates nothing; any other request is decoded owned. [`RequestEnvelope::decode`] is this
//! reading, made owned, so the daemon has one decoder and one set of checks. A client sends a
//! view the same way ([`OutgoingRequest`]), so a worker pipelining lookups need not copy its
//! keys into requests.

use crate::db_name::{DbName, check_name};
use crate::error::{ErrorCode, ErrorReply};
use crate::frame::{FrameError, decode_body, encode_frame};
use crate::message::{
    CONNECTION_ERROR_ID, RATELIMIT_DB, REQUEST_VARIANTS, Request, RequestEnvelope, RequestRefusal, SEEN_DB, Stamp,
    check_condition_and_time, check_key, check_value,
};
use crate::wire::{Reader, VARINT_BYTES_MAX, write_frame};

/// The wire indexes of [`Request::Get`], [`Request::Put`], [`Request::Ratelimit`] and
/// [`Request::Seen`] (append-only, pinned by `tests/golden.rs`).
const GET_VARIANT: u32 = 1;
const PUT_VARIANT: u32 = 2;
const RATELIMIT_VARIANT: u32 = 8;
const SEEN_VARIANT: u32 = 9;

/// A request as read in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestView<'a> {
    /// [`Request::Get`].
    Get { db: &'a str, key: &'a [u8] },
    /// [`Request::Put`].
    Put { db: &'a str, key: &'a [u8], value: &'a [u8] },
    /// [`Request::Ratelimit`].
    Ratelimit { condition: &'a str, at: Option<Stamp> },
    /// [`Request::Seen`].
    Seen { condition: &'a str, at: Option<Stamp> },
    /// Every other request.
    Other(Request),
}

impl RequestView<'_> {
    /// As [`Request::index`].
    pub fn index(&self) -> usize {
        match self {
            RequestView::Get { .. } => GET_VARIANT as usize,
            RequestView::Put { .. } => PUT_VARIANT as usize,
            RequestView::Ratelimit { .. } => RATELIMIT_VARIANT as usize,
            RequestView::Seen { .. } => SEEN_VARIANT as usize,
            RequestView::Other(request) => request.index(),
        }
    }

    /// As [`Request::target_db_name`].
    pub fn target_db_name(&self) -> Option<&str> {
        match self {
            RequestView::Get { db, .. } | RequestView::Put { db, .. } => Some(db),
            RequestView::Ratelimit { .. } => Some(RATELIMIT_DB),
            RequestView::Seen { .. } => Some(SEEN_DB),
            RequestView::Other(request) => request.target_db_name(),
        }
    }

    /// The request, owned (copying its borrowed bytes out of the frame).
    pub fn into_owned(self) -> Request {
        match self {
            RequestView::Get { db, key } => Request::Get { db: DbName::unchecked(db), key: key.to_vec() },
            RequestView::Put { db, key, value } => {
                Request::Put { db: DbName::unchecked(db), key: key.to_vec(), value: value.to_vec() }
            }
            RequestView::Ratelimit { condition, at } => Request::Ratelimit { condition: condition.to_owned(), at },
            RequestView::Seen { condition, at } => Request::Seen { condition: condition.to_owned(), at },
            RequestView::Other(request) => request,
        }
    }

    /// Checks every field against its limit, as [`Request::validate`].
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), ErrorReply> {
        match self {
            RequestView::Get { db, key } => check_name(db).and_then(|()| check_key(key)),
            RequestView::Put { db, key, value } => {
                check_name(db).and_then(|()| check_key(key)).and_then(|()| check_value(value))
            }
            RequestView::Ratelimit { condition, at } | RequestView::Seen { condition, at } => {
                check_condition_and_time(condition, *at)
            }
            RequestView::Other(request) => request.validate(),
        }
    }
}

/// A request a client can send: an owned [`Request`], or a [`RequestView`] borrowing its key
/// and value from the caller. Both encode to the same bytes.
///
/// Sealed: what a client sends must be a request this crate can encode, and whether a resend
/// is safe must come from the request itself.
pub trait OutgoingRequest: sealed::Sealed + Sync {
    /// Checks every field against its limit.
    ///
    /// # Errors
    /// The first field out of bounds.
    fn validate(&self) -> Result<(), ErrorReply>;

    /// Whether sending it twice does what sending it once does (see [`Request::is_idempotent`]).
    fn is_idempotent(&self) -> bool;

    /// Appends the frame of `RequestEnvelope { id, request: self }` to `out`.
    ///
    /// # Errors
    /// The frame would be larger than a frame may be.
    fn encode_frame(&self, id: u64, out: &mut Vec<u8>) -> Result<(), FrameError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::message::Request {}
    impl Sealed for super::RequestView<'_> {}
}

impl OutgoingRequest for Request {
    fn validate(&self) -> Result<(), ErrorReply> {
        Request::validate(self)
    }

    fn is_idempotent(&self) -> bool {
        Request::is_idempotent(self)
    }

    fn encode_frame(&self, id: u64, out: &mut Vec<u8>) -> Result<(), FrameError> {
        // Encodes exactly as `RequestEnvelope { id, request }` (postcard writes a struct as its
        // fields in order), without cloning the request into an envelope.
        encode_frame(&(id, self), out)
    }
}

impl OutgoingRequest for RequestView<'_> {
    fn validate(&self) -> Result<(), ErrorReply> {
        RequestView::validate(self)
    }

    fn is_idempotent(&self) -> bool {
        match self {
            RequestView::Get { .. } | RequestView::Put { .. } | RequestView::Seen { .. } => true,
            // A resent rate event would count twice.
            RequestView::Ratelimit { .. } => false,
            RequestView::Other(request) => request.is_idempotent(),
        }
    }

    fn encode_frame(&self, id: u64, out: &mut Vec<u8>) -> Result<(), FrameError> {
        // postcard writes an enum's variant index as a varint u32, then its fields.
        match *self {
            RequestView::Get { db, key } => write_frame(out, 4 * VARINT_BYTES_MAX + db.len() + key.len(), |body| {
                body.varint(id);
                body.varint(GET_VARIANT.into());
                body.bytes(db.as_bytes());
                body.bytes(key);
            }),
            RequestView::Put { db, key, value } => {
                let body_bytes_max = 5 * VARINT_BYTES_MAX + db.len() + key.len() + value.len();
                write_frame(out, body_bytes_max, |body| {
                    body.varint(id);
                    body.varint(PUT_VARIANT.into());
                    body.bytes(db.as_bytes());
                    body.bytes(key);
                    body.bytes(value);
                })
            }
            RequestView::Ratelimit { condition, at } => write_condition(out, id, RATELIMIT_VARIANT, condition, at),
            RequestView::Seen { condition, at } => write_condition(out, id, SEEN_VARIANT, condition, at),
            RequestView::Other(ref request) => request.encode_frame(id, out),
        }
    }
}

/// Reads and checks a request frame's body in place, telling an unknown operation from a
/// damaged frame.
///
/// # Errors
/// [`ErrorCode::BAD_FRAME`] when the body does not decode (with [`CONNECTION_ERROR_ID`] if not
/// even the id did), [`ErrorCode::UNKNOWN_REQUEST`] for a variant index past
/// [`REQUEST_VARIANTS`], and the field errors of [`Request::validate`].
pub fn decode_request(body: &[u8]) -> Result<(u64, RequestView<'_>), RequestRefusal> {
    let refuse = |id, code, message: String| RequestRefusal { id, reply: ErrorReply::new(code, message) };
    let mut fields = Reader::new(body);
    let Ok(id) = fields.u64() else {
        return Err(refuse(CONNECTION_ERROR_ID, ErrorCode::BAD_FRAME, "request frame has no id".into()));
    };
    let Ok(variant) = fields.u32() else {
        return Err(refuse(id, ErrorCode::BAD_FRAME, "request frame has no operation".into()));
    };
    if variant >= REQUEST_VARIANTS {
        return Err(refuse(
            id,
            ErrorCode::UNKNOWN_REQUEST,
            format!("operation {variant} is not known to this daemon (it knows 0..{REQUEST_VARIANTS})"),
        ));
    }
    let bad_frame = |err: crate::frame::FrameError| refuse(id, ErrorCode::BAD_FRAME, err.to_string());
    let view = match variant {
        GET_VARIANT => {
            let (db, key) = read_get(fields).map_err(bad_frame)?;
            RequestView::Get { db, key }
        }
        PUT_VARIANT => {
            let (db, key, value) = read_put(fields).map_err(bad_frame)?;
            RequestView::Put { db, key, value }
        }
        RATELIMIT_VARIANT => {
            let (condition, at) = read_condition(fields).map_err(bad_frame)?;
            RequestView::Ratelimit { condition, at }
        }
        SEEN_VARIANT => {
            let (condition, at) = read_condition(fields).map_err(bad_frame)?;
            RequestView::Seen { condition, at }
        }
        _ => RequestView::Other(decode_body::<RequestEnvelope>(body).map_err(bad_frame)?.request),
    };
    view.validate().map_err(|reply| RequestRefusal { id, reply })?;
    Ok((id, view))
}

/// A get's fields: its database's name and its key.
fn read_get(mut fields: Reader<'_>) -> Result<(&str, &[u8]), FrameError> {
    let db = fields.name()?;
    let key = fields.bytes()?;
    fields.finish()?;
    Ok((db, key))
}

/// Appends the frame of a ratelimit or a seen (`variant`).
fn write_condition(
    out: &mut Vec<u8>,
    id: u64,
    variant: u32,
    condition: &str,
    at: Option<Stamp>,
) -> Result<(), FrameError> {
    // The id, the variant, the condition's length and the stamp's two fields, and the tag.
    write_frame(out, 5 * VARINT_BYTES_MAX + 1 + condition.len(), |body| {
        body.varint(id);
        body.varint(variant.into());
        body.bytes(condition.as_bytes());
        body.optional_stamp(at);
    })
}

/// A ratelimit's or a seen's fields: its condition and the time of its event, if given.
fn read_condition(mut fields: Reader<'_>) -> Result<(&str, Option<Stamp>), FrameError> {
    let condition = fields.text()?;
    let at = fields.optional_stamp()?;
    fields.finish()?;
    Ok((condition, at))
}

/// A put's fields: its database's name, its key and its value.
fn read_put(mut fields: Reader<'_>) -> Result<(&str, &[u8], &[u8]), FrameError> {
    let db = fields.name()?;
    let key = fields.bytes()?;
    let value = fields.bytes()?;
    fields.finish()?;
    Ok((db, key, value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::{encode_frame, split_frame};
    use crate::wire::damage;

    fn body_of(envelope: &RequestEnvelope) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(envelope, &mut frame).unwrap();
        split_frame(&frame).unwrap().unwrap().0.to_vec()
    }

    /// What the owned decoding of a `RequestEnvelope` and its checks give.
    fn owned_reading(body: &[u8]) -> Option<(u64, Request)> {
        let envelope: RequestEnvelope = decode_body(body).ok()?;
        envelope.request.validate().ok()?;
        Some((envelope.id, envelope.request))
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9_-]{1,40}", ".{0,8}", "[a-z]{60,70}"]
    }

    fn get_or_put() -> impl Strategy<Value = Request> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (name(), bytes()).prop_map(|(db, key)| Request::Get { db: DbName::unchecked(&db), key }),
            (name(), bytes(), bytes()).prop_map(|(db, key, value)| Request::Put {
                db: DbName::unchecked(&db),
                key,
                value
            }),
            name().prop_map(|db| Request::Delete { db: DbName::unchecked(&db), key: b"k".to_vec() }),
            (condition(), stamp()).prop_map(|(condition, at)| Request::Ratelimit { condition, at }),
            (condition(), stamp()).prop_map(|(condition, at)| Request::Seen { condition, at }),
        ]
    }

    /// Condition texts: short ones, and ones around the length limit.
    fn condition() -> impl Strategy<Value = String> {
        prop_oneof![".{0,40}", "[a-z0-9 /]{1020,1030}"]
    }

    /// Event times: none, ordinary, and ones whose microseconds are out of range.
    fn stamp() -> impl Strategy<Value = Option<Stamp>> {
        proptest::option::of((any::<u64>(), prop_oneof![0..1_000_000u32, any::<u32>()]))
            .prop_map(|at| at.map(|(secs, micros)| Stamp { secs, micros }))
    }

    /// The view of `request` a client would build from its own key and value.
    fn view_of(request: &Request) -> RequestView<'_> {
        match request {
            Request::Get { db, key } => RequestView::Get { db: db.as_str(), key },
            Request::Put { db, key, value } => RequestView::Put { db: db.as_str(), key, value },
            Request::Ratelimit { condition, at } => RequestView::Ratelimit { condition, at: *at },
            Request::Seen { condition, at } => RequestView::Seen { condition, at: *at },
            other => RequestView::Other(other.clone()),
        }
    }

    proptest! {
        /// A client sends a view as the bytes of the owned request in its envelope.
        #[test]
        fn a_view_sent_is_the_owned_request_sent(id in any::<u64>(), request in get_or_put()) {
            let mut enveloped = Vec::new();
            encode_frame(&RequestEnvelope { id, request: request.clone() }, &mut enveloped).unwrap();
            let mut owned = Vec::new();
            request.encode_frame(id, &mut owned).unwrap();
            prop_assert_eq!(&owned, &enveloped);
            let view = view_of(&request);
            let mut viewed = Vec::new();
            view.encode_frame(id, &mut viewed).unwrap();
            prop_assert_eq!(&viewed, &enveloped);
            prop_assert_eq!(OutgoingRequest::is_idempotent(&view), request.is_idempotent());
            prop_assert_eq!(view.index(), request.index());
            prop_assert_eq!(view.target_db_name(), request.target_db_name());
            prop_assert_eq!(OutgoingRequest::validate(&view), request.validate());
        }

        /// A request read in place is the request the owned decoding reads, and is refused
        /// exactly when the owned decoding's checks refuse it.
        #[test]
        fn a_request_read_in_place_is_the_owned_reading(id in any::<u64>(), request in get_or_put()) {
            let body = body_of(&RequestEnvelope { id, request });
            let viewed = decode_request(&body).ok().map(|(id, view)| (id, view.into_owned()));
            prop_assert_eq!(viewed, owned_reading(&body));
        }

        /// Whatever the bytes, reading in place succeeds exactly when the owned reading does.
        #[test]
        fn damaged_bodies_are_refused_as_the_owned_reading_refuses_them(
            body in proptest::collection::vec(any::<u8>(), 0..48),
            variant in 0u8..4,
        ) {
            // Bias the operation towards a get or a put, whose reading differs: a one-byte id,
            // then the variant.
            let mut body = body;
            if body.len() > 1 {
                body[0] &= 0x7F;
                body[1] = variant;
            }
            let viewed = decode_request(&body).ok().map(|(id, view)| (id, view.into_owned()));
            prop_assert_eq!(viewed, owned_reading(&body));
        }
    }

    /// The owned decoding as it was before `decode_request` (aebc477), kept as an oracle.
    fn owned_decode(body: &[u8]) -> Result<RequestEnvelope, (u64, ErrorCode)> {
        let Ok((id, rest)) = postcard::take_from_bytes::<u64>(body) else {
            return Err((CONNECTION_ERROR_ID, ErrorCode::BAD_FRAME));
        };
        let Ok((variant, _)) = postcard::take_from_bytes::<u32>(rest) else {
            return Err((id, ErrorCode::BAD_FRAME));
        };
        if variant >= REQUEST_VARIANTS {
            return Err((id, ErrorCode::UNKNOWN_REQUEST));
        }
        let envelope: RequestEnvelope = decode_body(body).map_err(|_| (id, ErrorCode::BAD_FRAME))?;
        envelope.request.validate().map_err(|reply| (id, reply.code))?;
        Ok(envelope)
    }

    fn limit_testing_request() -> impl Strategy<Value = Request> {
        use crate::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
        let key = || prop_oneof![proptest::collection::vec(any::<u8>(), 0..8), Just(vec![b'k'; KEY_BYTES_MAX + 1])];
        let value = || prop_oneof![proptest::collection::vec(any::<u8>(), 0..8), Just(vec![0; VALUE_BYTES_MAX + 1])];
        prop_oneof![
            (name(), key()).prop_map(|(db, key)| Request::Get { db: DbName::unchecked(&db), key }),
            (name(), key(), value()).prop_map(|(db, key, value)| Request::Put {
                db: DbName::unchecked(&db),
                key,
                value
            }),
            (name(), key()).prop_map(|(db, key)| Request::Delete { db: DbName::unchecked(&db), key }),
            (condition(), stamp()).prop_map(|(condition, at)| Request::Ratelimit { condition, at }),
            (condition(), stamp()).prop_map(|(condition, at)| Request::Seen { condition, at }),
        ]
    }

    proptest! {
        /// Good, refused and damaged requests get the owned decoding's answer: the same
        /// request, or a refusal with the same id and the same code.
        #[test]
        fn refusals_carry_the_owned_decodings_id_and_code(
            id in any::<u64>(),
            request in limit_testing_request(),
            kind in 0u8..4,
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut body = body_of(&RequestEnvelope { id, request });
            let span = body.len();
            damage::damage(&mut body, kind, at, span, byte);
            let viewed = decode_request(&body)
                .map(|(id, view)| RequestEnvelope { id, request: view.into_owned() })
                .map_err(|refusal| (refusal.id, refusal.reply.code));
            prop_assert_eq!(viewed, owned_decode(&body));
        }
    }

    #[test]
    fn every_one_byte_change_to_a_request_read_in_place_is_read_as_the_owned_decoding_reads_it() {
        let db = || DbName::new("retry").unwrap();
        let at = Some(Stamp { secs: 1_700_000_000, micros: 5 });
        let requests = [
            Request::Get { db: db(), key: b"R:example.net".to_vec() },
            Request::Put { db: db(), key: b"k".to_vec(), value: b"value".to_vec() },
            Request::Ratelimit { condition: "10 / 1h / strict / per_rcpt / sender".into(), at },
            Request::Seen { condition: "-1d / key".into(), at: None },
        ];
        for request in requests {
            let body = body_of(&RequestEnvelope { id: 300, request });
            for (at, byte, body) in damage::one_byte_changes(&body) {
                let viewed = decode_request(&body)
                    .map(|(id, view)| RequestEnvelope { id, request: view.into_owned() })
                    .map_err(|refusal| (refusal.id, refusal.reply.code));
                assert_eq!(viewed, owned_decode(&body), "byte {at} set to {byte}");
            }
        }
    }

    #[test]
    fn a_get_borrows_its_name_and_key_from_the_frame() {
        let body = body_of(&RequestEnvelope {
            id: 9,
            request: Request::Get { db: DbName::new("retry").unwrap(), key: b"R:example.net".to_vec() },
        });
        let (id, view) = decode_request(&body).unwrap();
        let RequestView::Get { db, key } = view else { panic!("{view:?}") };
        assert_eq!((id, db, key), (9, "retry", &b"R:example.net"[..]));
        assert!(body.as_ptr_range().contains(&key.as_ptr()));
        let refusal = decode_request(&body[..body.len() - 1]).unwrap_err();
        assert_eq!((refusal.id, refusal.reply.code), (9, ErrorCode::BAD_FRAME));
    }
}
