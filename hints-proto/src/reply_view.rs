//! Replies to lookups without copies: a found record's key and value borrowed from the frame
//! they came in, so a client that reads many lookups (a pipeline of gets) allocates nothing
//! for each, and written from the store's own bytes, so the daemon allocates nothing to
//! answer one; a ratelimit's answer is written from its key as the daemon built it, for the
//! same reason. Every other reply is decoded owned, exactly as a [`ResponseEnvelope`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorReply;
use crate::frame::{FrameError, decode_body};
use crate::message::{Record, Response, ResponseEnvelope, Stamp};
use crate::wire::{Reader, VARINT_BYTES_MAX, write_frame};

/// The wire index of [`Response::Value`] (append-only, pinned by `tests/golden.rs`).
const VALUE_VARIANT: u32 = 1;
/// The wire index of [`Response::Stored`].
const STORED_VARIANT: u32 = 2;
/// The wire index of [`Response::Rate`].
const RATE_VARIANT: u32 = 10;
/// The wire index of [`Response::Seen`].
const SEEN_VARIANT: u32 = 11;

/// A record borrowed from a reply frame or a store; encoded as [`Record`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView<'a> {
    #[serde(with = "serde_bytes")]
    pub key: &'a [u8],
    #[serde(with = "serde_bytes")]
    pub value: &'a [u8],
    pub stamp: Stamp,
}

impl RecordView<'_> {
    pub fn to_record(&self) -> Record {
        Record { key: self.key.to_vec(), value: self.value.to_vec(), stamp: self.stamp }
    }
}

/// A reply as read in place: a get's answer borrowed, any other owned. (More replies may be
/// read in place one day, hence `non_exhaustive`.)
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResponseView<'a> {
    /// [`Response::Value`]: the record, or `None` when the key is absent.
    Value(Option<RecordView<'a>>),
    /// Every other reply.
    Other(Response),
}

impl ResponseView<'_> {
    /// The reply as a [`Response`] (copying a record out of the frame).
    pub fn into_owned(self) -> Response {
        match self {
            ResponseView::Value(record) => Response::Value(record.map(|record| record.to_record())),
            ResponseView::Other(response) => response,
        }
    }

    /// The error, when the daemon answered with one.
    pub fn error(&self) -> Option<&ErrorReply> {
        match self {
            ResponseView::Other(Response::Error(reply)) => Some(reply),
            _ => None,
        }
    }
}

/// Decodes a reply frame's body as the id it answers and its reply, borrowing a record's
/// bytes from `body`.
///
/// # Errors
/// As [`decode_body`] for a [`ResponseEnvelope`]: bytes that do not decode, or bytes left over.
pub fn decode_reply(body: &[u8]) -> Result<(u64, ResponseView<'_>), FrameError> {
    // An envelope is its id then its response, and a response is its variant's index then
    // the variant's fields.
    let mut fields = Reader::new(body);
    let id = fields.u64()?;
    let view = match fields.u32()? {
        VALUE_VARIANT => {
            let record = if fields.option_tag()? {
                let key = fields.bytes()?;
                let value = fields.bytes()?;
                Some(RecordView { key, value, stamp: fields.stamp()? })
            } else {
                None
            };
            ResponseView::Value(record)
        }
        STORED_VARIANT => ResponseView::Other(Response::Stored(fields.stamp()?)),
        RATE_VARIANT => {
            let (rate, over) = (fields.f64()?, fields.bool()?);
            let (key, written) = (fields.text()?.to_owned(), fields.bool()?);
            ResponseView::Other(Response::Rate { rate, over, key, written })
        }
        SEEN_VARIANT => ResponseView::Other(Response::Seen { result: fields.bool()?, written: fields.bool()? }),
        _ => {
            let envelope: ResponseEnvelope = decode_body(body)?;
            return Ok((envelope.id, ResponseView::Other(envelope.response)));
        }
    };
    fields.finish()?;
    Ok((id, view))
}

/// Appends the frame answering get `id` with `record`, byte for byte the frame of
/// `ResponseEnvelope { id, response: Response::Value(..) }`.
///
/// # Errors
/// [`FrameError::TooLarge`], as [`crate::frame::encode_frame`].
pub fn encode_value_reply(id: u64, record: Option<RecordView<'_>>, out: &mut Vec<u8>) -> Result<(), FrameError> {
    // The envelope's id, the variant's index, the option's tag, then the record's fields.
    let record_bytes = record.map_or(0, |record| record.key.len() + record.value.len());
    write_frame(out, 6 * VARINT_BYTES_MAX + 1 + record_bytes, |body| {
        body.varint(id);
        body.varint(VALUE_VARIANT.into());
        match record {
            None => body.byte(0),
            Some(RecordView { key, value, stamp }) => {
                body.byte(1);
                body.bytes(key);
                body.bytes(value);
                body.stamp(stamp);
            }
        }
    })
}

/// Appends the frame answering put `id` with `stamp`, byte for byte the frame of
/// `ResponseEnvelope { id, response: Response::Stored(stamp) }`.
///
/// # Errors
/// None in practice (the frame is a few bytes); as [`crate::frame::encode_frame`].
pub fn encode_stored_reply(id: u64, stamp: Stamp, out: &mut Vec<u8>) -> Result<(), FrameError> {
    write_frame(out, 4 * VARINT_BYTES_MAX, |body| {
        body.varint(id);
        body.varint(STORED_VARIANT.into());
        body.stamp(stamp);
    })
}

/// A ratelimit's answer with its record key borrowed: [`Response::Rate`]'s fields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateReply<'a> {
    pub rate: f64,
    pub over: bool,
    pub key: &'a str,
    pub written: bool,
}

impl RateReply<'_> {
    pub fn to_response(&self) -> Response {
        Response::Rate { rate: self.rate, over: self.over, key: self.key.to_owned(), written: self.written }
    }
}

/// Appends the frame answering ratelimit `id` with `reply`, byte for byte the frame of
/// `ResponseEnvelope { id, response: Response::Rate { .. } }`.
///
/// # Errors
/// [`FrameError::TooLarge`], as [`crate::frame::encode_frame`].
pub fn encode_rate_reply(id: u64, reply: RateReply<'_>, out: &mut Vec<u8>) -> Result<(), FrameError> {
    // The id, the variant and the key's length; the rate's eight bytes and two booleans.
    write_frame(out, 3 * VARINT_BYTES_MAX + 8 + 2 + reply.key.len(), |body| {
        body.varint(id);
        body.varint(RATE_VARIANT.into());
        body.f64(reply.rate);
        body.byte(u8::from(reply.over));
        body.bytes(reply.key.as_bytes());
        body.byte(u8::from(reply.written));
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorCode;
    use crate::frame::{encode_frame, split_frame};
    use crate::wire::damage;

    fn body_of(envelope: &ResponseEnvelope) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(envelope, &mut frame).unwrap();
        let (body, _) = split_frame(&frame).unwrap().unwrap();
        body.to_vec()
    }

    fn stamp() -> impl Strategy<Value = Stamp> {
        (any::<u64>(), any::<u32>()).prop_map(|(secs, micros)| Stamp { secs, micros })
    }

    fn record() -> impl Strategy<Value = Record> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
        (bytes(), bytes(), stamp()).prop_map(|(key, value, stamp)| Record { key, value, stamp })
    }

    /// A ratelimit's answer; its rate finite, so that answers compare equal.
    fn rate_response() -> impl Strategy<Value = Response> {
        (-1e12..1e12f64, any::<bool>(), ".{0,40}", any::<bool>())
            .prop_map(|(rate, over, key, written)| Response::Rate { rate, over, key, written })
    }

    fn seen_response() -> impl Strategy<Value = Response> {
        (any::<bool>(), any::<bool>()).prop_map(|(result, written)| Response::Seen { result, written })
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            proptest::option::of(record()).prop_map(Response::Value),
            proptest::option::of(record()).prop_map(Response::Conflict),
            stamp().prop_map(Response::Stored),
            any::<bool>().prop_map(|existed| Response::Deleted { existed }),
            any::<i64>().prop_map(Response::Counter),
            ".{0,40}".prop_map(|text| Response::Error(ErrorReply::new(ErrorCode::BAD_KEY, text))),
            rate_response(),
            seen_response(),
            Just(Response::Pong),
        ]
    }

    proptest! {
        /// A reply read in place is the reply the owned decoding reads.
        #[test]
        fn a_view_reads_what_the_owned_decoding_reads(id in any::<u64>(), response in response()) {
            let envelope = ResponseEnvelope { id, response };
            let body = body_of(&envelope);
            let (view_id, view) = decode_reply(&body).unwrap();
            prop_assert_eq!(view_id, id);
            prop_assert_eq!(view.into_owned(), envelope.response);
        }

        /// A get's reply written from borrowed bytes is the owned reply's frame.
        #[test]
        fn a_value_reply_from_borrowed_bytes_is_the_owned_replys_frame(
            id in any::<u64>(),
            record in proptest::option::of((proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300), stamp())),
        ) {
            let owned = record.clone().map(|(key, value, stamp)| Record { key, value, stamp });
            let mut expected = Vec::new();
            encode_frame(&ResponseEnvelope { id, response: Response::Value(owned) }, &mut expected).unwrap();
            let mut written = b"before".to_vec();
            let view = record.as_ref().map(|(key, value, stamp)| RecordView { key, value, stamp: *stamp });
            encode_value_reply(id, view, &mut written).unwrap();
            prop_assert_eq!(&written[..6], b"before");
            prop_assert_eq!(&written[6..], &expected[..]);
        }

        /// A put's reply written by hand is the owned reply's frame.
        #[test]
        fn a_stored_reply_is_the_owned_replys_frame(id in any::<u64>(), stamp in stamp()) {
            let mut expected = Vec::new();
            encode_frame(&ResponseEnvelope { id, response: Response::Stored(stamp) }, &mut expected).unwrap();
            let mut written = b"before".to_vec();
            encode_stored_reply(id, stamp, &mut written).unwrap();
            prop_assert_eq!(&written[..6], b"before");
            prop_assert_eq!(&written[6..], &expected[..]);
        }

        /// A ratelimit's reply written from a borrowed key is the owned reply's frame.
        #[test]
        fn a_rate_reply_from_a_borrowed_key_is_the_owned_replys_frame(
            id in any::<u64>(),
            rate in any::<f64>(),
            over in any::<bool>(),
            key in ".{0,300}",
            written in any::<bool>(),
        ) {
            let reply = RateReply { rate, over, key: &key, written };
            let mut expected = Vec::new();
            encode_frame(&ResponseEnvelope { id, response: reply.to_response() }, &mut expected).unwrap();
            let mut encoded = b"before".to_vec();
            encode_rate_reply(id, reply, &mut encoded).unwrap();
            prop_assert_eq!(&encoded[..6], b"before");
            prop_assert_eq!(&encoded[6..], &expected[..]);
        }

        /// A get's, a put's, a ratelimit's or a seen's reply, damaged anywhere (cut short, a
        /// byte changed, a byte added), reads in place exactly as the owned decoding reads it.
        #[test]
        fn damaged_replies_read_in_place_read_as_the_owned_decoding_reads_them(
            id in any::<u64>(),
            response in prop_oneof![
                proptest::option::of(record()).prop_map(Response::Value),
                stamp().prop_map(Response::Stored),
                rate_response(),
                seen_response(),
            ],
            kind in 0u8..4,
            at in any::<proptest::sample::Index>(),
            in_the_head in any::<bool>(),
            byte in any::<u8>(),
        ) {
            let mut body = body_of(&ResponseEnvelope { id, response });
            // Half the time within the id, the variant, the tag and the key's length.
            let span = if in_the_head { body.len().min(16) } else { body.len() };
            damage::damage(&mut body, kind, at, span, byte);
            let owned = decode_body::<ResponseEnvelope>(&body).ok().map(|envelope| (envelope.id, envelope.response));
            let viewed = decode_reply(&body).ok().map(|(id, view)| (id, view.into_owned()));
            prop_assert_eq!(owned, viewed);
        }

        /// Whatever the bytes, a view decodes exactly when the owned decoding does.
        #[test]
        fn damaged_bodies_fail_as_the_owned_decoding_fails(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let owned = decode_body::<ResponseEnvelope>(&body).map(|envelope| (envelope.id, envelope.response));
            let viewed = decode_reply(&body).map(|(id, view)| (id, view.into_owned()));
            prop_assert_eq!(owned.ok(), viewed.ok());
        }
    }

    #[test]
    fn every_one_byte_change_to_a_reply_read_in_place_reads_as_the_owned_decoding_reads_it() {
        let record =
            Record { key: b"k".to_vec(), value: b"v".to_vec(), stamp: Stamp { secs: 1_700_000_000, micros: 2 } };
        let replies = [
            Response::Value(Some(record)),
            Response::Value(None),
            Response::Stored(Stamp { secs: 1_700_000_000, micros: 999_999 }),
            Response::Rate { rate: 2.5, over: true, key: "ratelimit-key".into(), written: false },
            Response::Seen { result: true, written: true },
        ];
        for response in replies {
            let body = body_of(&ResponseEnvelope { id: 300, response });
            for (at, byte, body) in damage::one_byte_changes(&body) {
                let owned =
                    decode_body::<ResponseEnvelope>(&body).ok().map(|envelope| (envelope.id, envelope.response));
                let viewed = decode_reply(&body).ok().map(|(id, view)| (id, view.into_owned()));
                assert_eq!(owned, viewed, "byte {at} set to {byte} in {body:?}");
            }
        }
    }

    #[test]
    fn a_found_record_is_borrowed_from_the_frame_and_trailing_bytes_are_refused() {
        let record = Record { key: b"k".to_vec(), value: b"value".to_vec(), stamp: Stamp { secs: 7, micros: 8 } };
        let mut body = body_of(&ResponseEnvelope { id: 3, response: Response::Value(Some(record)) });
        let (_, view) = decode_reply(&body).unwrap();
        let ResponseView::Value(Some(found)) = view else { panic!("{view:?}") };
        assert!(body.as_ptr_range().contains(&found.value.as_ptr()), "the value is read in place");
        assert_eq!(found.value, b"value");
        body.push(0);
        assert!(matches!(decode_reply(&body), Err(FrameError::TrailingBytes { extra: 1 })));
    }
}
