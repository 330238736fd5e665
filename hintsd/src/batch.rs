//! A batch: the whole frames at the front of a connection's read buffer, read in place (all of
//! them, before any is applied), and the replies, encoded into the write buffer as they are
//! made.

use hints_proto::frame::{FrameError, encode_frame, split_frame};
use hints_proto::limits::{FRAME_BYTES_MAX, KEY_BYTES_MAX, PIPELINE_DEPTH_MAX, VALUE_BYTES_MAX};
use hints_proto::message::{CONNECTION_ERROR_ID, RequestRefusal};
use hints_proto::reply_view::{encode_rate_reply, encode_stored_reply, encode_value_reply};
use hints_proto::request_view::decode_request;
use hints_proto::{ErrorCode, ErrorReply, RateReply, RecordView, Request, RequestView, Response, ResponseEnvelope};

use crate::direct::Replies;

/// A batch stops taking requests once the largest replies they could have add up to this, so
/// one connection's replies in memory stay bounded (a scan page can be a whole frame).
pub const BATCH_REPLY_BYTES_MAX: usize = 4 << 20;
/// Replies encoded as they are made, into a connection's write buffer.
pub struct Frames<'a>(pub &'a mut Vec<u8>);

impl Replies for Frames<'_> {
    fn reply(&mut self, id: u64, response: Response) {
        let encoded = match response {
            // A put's answer, the most common after a get's, written without serde.
            Response::Stored(stamp) => encode_stored_reply(id, stamp, self.0),
            response => encode_frame(&ResponseEnvelope { id, response }, self.0),
        };
        if let Err(err) = encoded {
            self.too_large(id, &err);
        }
    }

    fn record(&mut self, id: u64, record: Option<RecordView<'_>>) {
        if let Err(err) = encode_value_reply(id, record, self.0) {
            self.too_large(id, &err);
        }
    }

    fn rate(&mut self, id: u64, reply: RateReply<'_>) {
        if let Err(err) = encode_rate_reply(id, reply, self.0) {
            self.too_large(id, &err);
        }
    }
}

impl Frames<'_> {
    /// Answers `id` with an error in place of a reply that did not fit a frame.
    fn too_large(&mut self, id: u64, err: &FrameError) {
        let reply = ErrorReply::new(ErrorCode::INTERNAL, format!("reply did not fit a frame: {err}"));
        let envelope = ResponseEnvelope { id, response: Response::Error(reply) };
        encode_frame(&envelope, self.0).expect("an error reply fits a frame");
    }
}

/// The whole frames at the front of a connection's read buffer, read in place, as one batch:
/// at most [`PIPELINE_DEPTH_MAX`], and none after the one whose largest possible reply brings
/// the batch's to [`BATCH_REPLY_BYTES_MAX`]. A frame that cannot be read ends the batch, and
/// its refusal is kept, to be answered after the requests before it.
pub struct Batch<'a> {
    unread: &'a [u8],
    /// Bytes of `unread` the frames read so far took.
    pub used: usize,
    /// Requests read.
    pub taken: usize,
    reply_bytes_max: usize,
    pub refusal: Option<RequestRefusal>,
}

impl<'a> Batch<'a> {
    /// The batch at the front of `unread`; none when the connection already has a `refusal`.
    pub fn new(unread: &'a [u8], refusal: Option<RequestRefusal>) -> Batch<'a> {
        Batch { unread, used: 0, taken: 0, reply_bytes_max: 0, refusal }
    }
}

impl<'a> Iterator for Batch<'a> {
    type Item = (u64, RequestView<'a>);

    fn next(&mut self) -> Option<(u64, RequestView<'a>)> {
        if self.refusal.is_some() || self.taken >= PIPELINE_DEPTH_MAX || self.reply_bytes_max >= BATCH_REPLY_BYTES_MAX {
            return None;
        }
        let unread: &'a [u8] = self.unread;
        match split_frame(&unread[self.used..]) {
            Ok(Some((body, used))) => {
                self.used += used;
                match decode_request(body) {
                    Ok((id, request)) => {
                        self.taken += 1;
                        self.reply_bytes_max += reply_bytes_bound(&request);
                        Some((id, request))
                    }
                    Err(refusal) => {
                        self.refusal = Some(refusal);
                        None
                    }
                }
            }
            Ok(None) => None,
            Err(err) => {
                self.refusal = Some(frame_refusal(&err));
                None
            }
        }
    }
}

/// `spare`'s allocation, emptied, as a vector of another item type of the same size and
/// alignment (here: requests borrowing another batch's bytes), so that a connection's batches
/// share one allocation instead of each making its own (in the benchmark's worker, a batch of
/// ratelimit requests, larger than malloc's per-thread cache, cost about 240 instructions a
/// request more without it). The standard library collects a mapped `IntoIter` in place when
/// the layouts match; when they do not, this allocates anew.
pub fn reuse_vec<T, U>(mut spare: Vec<T>) -> Vec<U> {
    spare.clear();
    spare.into_iter().map(|_| unreachable!("the vector was emptied")).collect()
}

/// The refusal of a frame that cannot be read (it belongs to no request whose id is known).
pub fn frame_refusal(err: &FrameError) -> RequestRefusal {
    let code = match err {
        FrameError::TooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
        FrameError::Decode(_) | FrameError::TrailingBytes { .. } | FrameError::Encode(_) => ErrorCode::BAD_FRAME,
    };
    RequestRefusal { id: CONNECTION_ERROR_ID, reply: ErrorReply::new(code, err.to_string()) }
}

/// The largest reply a request can get, for the batch budget.
fn reply_bytes_bound(request: &RequestView<'_>) -> usize {
    match request {
        RequestView::Other(Request::Scan { .. } | Request::Stats { db: None }) => FRAME_BYTES_MAX,
        RequestView::Get { .. } | RequestView::Other(Request::Get { .. } | Request::CompareAndSet { .. }) => {
            KEY_BYTES_MAX + VALUE_BYTES_MAX + 64
        }
        _ => 1024,
    }
}

#[cfg(test)]
mod tests {
    use hints_proto::{DbName, RequestEnvelope};

    use super::*;

    fn frames(requests: impl IntoIterator<Item = Request>) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (id, request) in (1..).zip(requests) {
            encode_frame(&RequestEnvelope { id, request }, &mut bytes).unwrap();
        }
        bytes
    }

    fn get() -> Request {
        Request::Get { db: DbName::new("misc").unwrap(), key: b"k".to_vec() }
    }

    #[test]
    fn a_reused_vector_is_empty_and_keeps_its_allocation() {
        let bytes = frames([get(), get()]);
        let mut requests: Vec<(u64, RequestView<'_>)> = reuse_vec(Vec::<(u64, RequestView<'static>)>::new());
        requests.extend(Batch::new(&bytes, None));
        let (at, capacity) = (requests.as_ptr() as usize, requests.capacity());
        let spare: Vec<(u64, RequestView<'static>)> = reuse_vec(requests);
        assert!(spare.is_empty());
        assert_eq!((spare.as_ptr() as usize, spare.capacity()), (at, capacity), "a new allocation each batch");
    }

    #[test]
    fn a_batch_stops_at_the_pipeline_depth() {
        let bytes = frames((0..PIPELINE_DEPTH_MAX + 5).map(|_| Request::Ping));
        let mut batch = Batch::new(&bytes, None);
        assert_eq!((&mut batch).count(), PIPELINE_DEPTH_MAX);
        assert!(batch.refusal.is_none());
    }

    #[test]
    fn a_batch_of_in_place_gets_stops_at_the_reply_budget() {
        let bytes = frames((0..64).map(|_| get()));
        let mut batch = Batch::new(&bytes, None);
        let per_get = KEY_BYTES_MAX + VALUE_BYTES_MAX + 64;
        assert_eq!((&mut batch).count(), BATCH_REPLY_BYTES_MAX.div_ceil(per_get));
    }

    #[test]
    fn a_bad_frame_ends_the_batch_and_its_refusal_is_kept() {
        let mut bytes = frames([get()]);
        bytes.extend_from_slice(&[2, 0, 0, 0, 2, 99]);
        bytes.extend(frames([get()]));
        let mut batch = Batch::new(&bytes, None);
        assert_eq!((&mut batch).map(|(id, _)| id).collect::<Vec<_>>(), [1]);
        let refusal = batch.refusal.expect("refused");
        assert_eq!((refusal.id, refusal.reply.code), (2, ErrorCode::UNKNOWN_REQUEST));
    }
}
