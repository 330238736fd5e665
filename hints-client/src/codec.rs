//! The sans-IO half of a connection, shared by both clients: it builds the hello and request
//! frames, finds and checks the replies in the bytes read, decides whether a failed call may
//! be resent, and turns a failure into an [`Error`]. The clients only move bytes.
//!
//! Its buffers live as long as the client (across reconnections), so a call allocates
//! nothing here once they have grown to the size of the usual reply.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use hints_proto::frame::{body_len, decode_body, encode_frame, split_frame};
use hints_proto::limits::{FRAME_BYTES_MAX, FRAME_PREFIX_BYTES};
use hints_proto::message::CONNECTION_ERROR_ID;
use hints_proto::reply_view::decode_reply;
use hints_proto::{
    ErrorCode, ErrorReply, Hello, HelloReply, OutgoingRequest, PROTOCOL_VERSION, Response, ResponseView,
};

use crate::error::Error;

/// The read buffer's size when a connection starts.
const RECV_BUFFER_BYTES_MIN: usize = 16 * 1024;
/// A buffer grown past this by a large reply is shrunk back once the call is over.
const BUFFER_BYTES_KEPT_MAX: usize = 64 * 1024;
/// The read buffer never needs more than one whole frame.
const RECV_BUFFER_BYTES_MAX: usize = FRAME_PREFIX_BYTES + FRAME_BYTES_MAX;

/// How far a call has got on its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The hello is sent or being sent; the daemon's answer is awaited.
    Handshake,
    /// The handshake is done; requests may be queued.
    Ready,
}

/// Why a call on a connection failed. The connection is unusable after any of these.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Reading or writing failed, or the daemon closed the connection (`UnexpectedEof`).
    Broken(io::Error),
    /// The call's deadline passed.
    TimedOut,
    /// The daemon refused the hello.
    Refused(ErrorReply),
    /// The daemon sent an error that belongs to the connection rather than to a request (id
    /// [`CONNECTION_ERROR_ID`]); it closes the connection after it.
    ConnectionError(ErrorReply),
    /// The daemon sent bytes that are not the reply expected.
    Protocol(String),
}

impl Failure {
    /// The daemon closed its end.
    pub(crate) fn closed() -> Failure {
        Failure::Broken(io::Error::new(io::ErrorKind::UnexpectedEof, "the daemon closed the connection"))
    }

    /// True when the connection died under the call (as it does when the daemon restarts),
    /// rather than answering wrongly or slowly.
    fn is_disconnect(&self) -> bool {
        let Failure::Broken(err) = self else {
            return false;
        };
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::NotConnected
                | io::ErrorKind::UnexpectedEof
        )
    }

    /// The error the caller sees.
    pub(crate) fn into_error(self, socket: &Path, timeout: Duration) -> Error {
        match self {
            Failure::Broken(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                unavailable(socket, "the daemon closed the connection")
            }
            Failure::Broken(err) => unavailable(socket, format!("connection failed: {}", describe_io(&err))),
            Failure::TimedOut => unavailable(socket, format!("no answer within {timeout:?}")),
            Failure::Refused(reply) => Error::Refused(reply),
            Failure::ConnectionError(reply) => crate::ops::error_from_reply(reply),
            Failure::Protocol(what) => Error::Protocol(what),
        }
    }
}

/// An [`Error::Unavailable`] for `socket`.
pub(crate) fn unavailable(socket: &Path, reason: impl Into<String>) -> Error {
    Error::Unavailable { socket: socket.to_owned(), reason: reason.into() }
}

/// An I/O error in words, without the ` (os error N)` that `io::Error` appends.
pub(crate) fn describe_io(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text[..cut].to_owned(),
        _ => text,
    }
}

/// Checks every request against the protocol's limits before anything is sent, so a bad
/// request costs no round trip and never makes the daemon close the connection.
///
/// # Errors
/// [`Error::BadRequest`] for the first request out of bounds.
pub(crate) fn validate_all(requests: &[impl OutgoingRequest]) -> Result<(), Error> {
    requests.iter().try_for_each(|request| request.validate().map_err(Error::BadRequest))
}

/// One connection's protocol state and buffers.
#[derive(Debug)]
pub(crate) struct Codec {
    phase: Phase,
    /// The id the next request gets; ids start at 1 on every connection.
    next_id: u64,
    /// Encoded frames; `send[sent..]` is still to be written.
    send: Vec<u8>,
    sent: usize,
    /// Bytes read; `recv[start..end]` are not yet parsed. `recv` stays zero-filled at its
    /// full length so reads go straight into it.
    recv: Vec<u8>,
    start: usize,
    end: usize,
    /// The id of the next reply expected, and how many replies are still expected.
    awaiting_id: u64,
    awaiting: usize,
    /// Whether any byte has arrived since the requests were queued.
    reply_started: bool,
    /// The daemon answered with an error after which it closes the connection.
    daemon_closes: bool,
    daemon_version: String,
}

impl Codec {
    pub(crate) fn new() -> Codec {
        Codec {
            phase: Phase::Handshake,
            next_id: 1,
            send: Vec::new(),
            sent: 0,
            recv: Vec::new(),
            start: 0,
            end: 0,
            awaiting_id: 0,
            awaiting: 0,
            reply_started: false,
            daemon_closes: false,
            daemon_version: String::new(),
        }
    }

    /// Starts a new connection: forgets everything of the last one and queues the hello.
    pub(crate) fn start_handshake(&mut self, client_name: &str) -> Result<(), Error> {
        self.phase = Phase::Handshake;
        self.next_id = 1;
        self.start = 0;
        self.end = 0;
        self.awaiting = 0;
        self.reply_started = false;
        self.daemon_closes = false;
        self.daemon_version.clear();
        self.shrink_buffers();
        self.send.clear();
        self.sent = 0;
        encode_frame(&Hello::new(client_name), &mut self.send)
            .map_err(|err| Error::Protocol(format!("cannot encode the hello: {err}")))
    }

    /// The daemon's version, once the handshake is done.
    pub(crate) fn daemon_version(&self) -> Option<&str> {
        (self.phase == Phase::Ready).then_some(self.daemon_version.as_str())
    }

    /// True when the connection may carry another call: the handshake is done, every reply
    /// has been read, nothing is left over, and the daemon has not said it will close. A call
    /// that was abandoned half way (a dropped future, say) leaves it false.
    pub(crate) fn is_clean(&self) -> bool {
        self.phase == Phase::Ready
            && self.awaiting == 0
            && self.sent == self.send.len()
            && self.start == self.end
            && !self.daemon_closes
    }

    /// Encodes `requests` (already validated) as frames with the next ids.
    ///
    /// # Errors
    /// [`Error::BadRequest`] if one does not fit a frame; nothing is queued then.
    pub(crate) fn queue(&mut self, requests: &[impl OutgoingRequest]) -> Result<(), Error> {
        self.send.clear();
        self.sent = 0;
        let first_id = self.next_id;
        for (id, request) in (first_id..).zip(requests) {
            if let Err(err) = request.encode_frame(id, &mut self.send) {
                self.send.clear();
                return Err(Error::BadRequest(ErrorReply::new(ErrorCode::FRAME_TOO_LARGE, err.to_string())));
            }
        }
        self.next_id = first_id + requests.len() as u64;
        self.awaiting_id = first_id;
        self.awaiting = requests.len();
        self.reply_started = false;
        Ok(())
    }

    /// The bytes still to be written.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.send[self.sent..]
    }

    /// Records that `n` bytes of [`Codec::unsent`] were written.
    pub(crate) fn advance_sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.send.len());
    }

    /// Room to read into (never empty): compacts or grows the buffer as needed.
    pub(crate) fn recv_space(&mut self) -> &mut [u8] {
        if self.end == self.recv.len() {
            if self.start > 0 {
                self.recv.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let pending = &self.recv[self.start..self.end];
                let frame_bytes = pending
                    .first_chunk::<FRAME_PREFIX_BYTES>()
                    .and_then(|prefix| body_len(*prefix).ok())
                    .map_or(0, |len| FRAME_PREFIX_BYTES + len);
                let grown = (self.recv.len() * 2).max(frame_bytes).max(RECV_BUFFER_BYTES_MIN);
                // One byte past a whole frame, so there is always room to notice EOF.
                self.recv.resize(grown.min(RECV_BUFFER_BYTES_MAX + 1), 0);
            }
        }
        &mut self.recv[self.end..]
    }

    /// Records that `n` bytes were read into [`Codec::recv_space`].
    pub(crate) fn received(&mut self, n: usize) {
        self.end = (self.end + n).min(self.recv.len());
        self.reply_started |= n > 0;
    }

    /// Parses what has arrived: finishes the handshake, or appends each reply (in request
    /// order) to `out`.
    ///
    /// # Returns
    /// `true` once the handshake is done or every queued request has its reply.
    ///
    /// # Errors
    /// A frame that does not decode, a reply with an unexpected id, a refused hello, or a
    /// connection-level error reply.
    pub(crate) fn progress(&mut self, out: &mut Vec<Response>) -> Result<bool, Failure> {
        self.progress_each(&mut |reply| out.push(reply.into_owned()))
    }

    /// As [`Codec::progress`], handing each reply to `each` as it is read, a found record
    /// borrowed from the read buffer.
    pub(crate) fn progress_each(&mut self, each: &mut dyn FnMut(ResponseView<'_>)) -> Result<bool, Failure> {
        loop {
            match self.phase {
                Phase::Handshake => {
                    let Some(body) = self.take_frame()? else {
                        return Ok(false);
                    };
                    let reply: HelloReply = decode_body(&self.recv[body])
                        .map_err(|err| Failure::Protocol(format!("the hello reply: {err}")))?;
                    return self.accept_hello(reply).map(|()| true);
                }
                Phase::Ready => {
                    if self.awaiting == 0 {
                        return Ok(true);
                    }
                    let Some(body) = self.take_frame()? else {
                        return Ok(false);
                    };
                    let (id, reply) =
                        decode_reply(&self.recv[body]).map_err(|err| Failure::Protocol(format!("a reply: {err}")))?;
                    each(accept_reply(id, reply, &mut self.awaiting_id, &mut self.awaiting, &mut self.daemon_closes)?);
                }
            }
        }
    }

    /// Whether a call that failed with `failure` may be sent again on a new connection: only
    /// when the connection was reused from an earlier call (a fresh one failing says the
    /// daemon is not well), it broke before any byte of the reply came back, and every
    /// request is idempotent ([`Request::is_idempotent`]). This is how a client rides over a
    /// daemon restart. A ratelimit event or a counter add is never resent, since it may have
    /// been applied before the connection broke and would then count twice; nor is a
    /// serialize or lock request, whose slot or session belonged to the connection that broke.
    pub(crate) fn may_resend(&self, failure: &Failure, reused: bool, requests: &[impl OutgoingRequest]) -> bool {
        reused
            && self.phase == Phase::Ready
            && !self.reply_started
            && failure.is_disconnect()
            && requests.iter().all(OutgoingRequest::is_idempotent)
    }

    /// Gives back memory a large reply made the buffers take, once a call is over.
    pub(crate) fn shrink_buffers(&mut self) {
        if self.start == self.end && self.recv.len() > BUFFER_BYTES_KEPT_MAX {
            self.start = 0;
            self.end = 0;
            self.recv.truncate(RECV_BUFFER_BYTES_MIN);
            self.recv.shrink_to_fit();
        }
        if self.sent == self.send.len() && self.send.capacity() > BUFFER_BYTES_KEPT_MAX {
            self.send = Vec::new();
            self.sent = 0;
        }
    }

    /// Where the next whole frame's body lies in `recv`, consumed from the read buffer (the
    /// bytes stay until the next read).
    fn take_frame(&mut self) -> Result<Option<Range<usize>>, Failure> {
        let pending = &self.recv[self.start..self.end];
        let (body_start, consumed) = match split_frame(pending) {
            Ok(Some((body, consumed))) => (consumed - body.len(), consumed),
            Ok(None) => return Ok(None),
            Err(err) => return Err(Failure::Protocol(err.to_string())),
        };
        let frame_start = self.start;
        self.start += consumed;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame_start + body_start..frame_start + consumed))
    }

    fn accept_hello(&mut self, reply: HelloReply) -> Result<(), Failure> {
        match reply {
            HelloReply::Accepted { protocol_version, daemon_version } => {
                if protocol_version != PROTOCOL_VERSION {
                    return Err(Failure::Protocol(format!(
                        "the daemon accepted the hello with protocol version {protocol_version}, \
                         this client speaks {PROTOCOL_VERSION}"
                    )));
                }
                self.phase = Phase::Ready;
                self.daemon_version = daemon_version;
                Ok(())
            }
            HelloReply::Refused(reply) => Err(Failure::Refused(reply)),
        }
    }
}

/// Checks that reply `id` is the one expected next and counts it. (A function of the fields
/// it needs rather than a method: `reply` borrows the codec's read buffer.)
fn accept_reply<'a>(
    id: u64,
    reply: ResponseView<'a>,
    awaiting_id: &mut u64,
    awaiting: &mut usize,
    daemon_closes: &mut bool,
) -> Result<ResponseView<'a>, Failure> {
    if id == *awaiting_id {
        *awaiting_id += 1;
        *awaiting -= 1;
        if let Some(error) = reply.error() {
            *daemon_closes |= daemon_closes_after(error.code);
        }
        return Ok(reply);
    }
    match reply {
        ResponseView::Other(Response::Error(error)) if id == CONNECTION_ERROR_ID => {
            Err(Failure::ConnectionError(error))
        }
        _ => Err(Failure::Protocol(format!(
            "a reply to request {id} came while the reply to request {awaiting_id} was expected"
        ))),
    }
}

/// Error replies after which the daemon closes the connection (a damaged or unknown frame,
/// or a refusal), so the client must not reuse it.
fn daemon_closes_after(code: ErrorCode) -> bool {
    code.is_refusal()
        || matches!(
            code,
            ErrorCode::BAD_FRAME | ErrorCode::FRAME_TOO_LARGE | ErrorCode::UNKNOWN_REQUEST | ErrorCode::SHUTTING_DOWN
        )
}

#[cfg(test)]
mod tests {
    use hints_proto::{DbName, Request, RequestEnvelope, RequestView, ResponseEnvelope};

    use super::*;
    use crate::ops;

    fn frame_of<T: serde::Serialize>(msg: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(msg, &mut out).unwrap();
        out
    }

    fn accepted() -> Vec<u8> {
        frame_of(&HelloReply::Accepted { protocol_version: PROTOCOL_VERSION, daemon_version: "9.9".into() })
    }

    /// Feeds `bytes` to the codec `chunk` bytes at a time, as reads would.
    fn feed(codec: &mut Codec, bytes: &[u8], chunk: usize, out: &mut Vec<Response>) -> Result<bool, Failure> {
        let mut done = codec.progress(out)?;
        for piece in bytes.chunks(chunk) {
            let mut piece = piece;
            while !piece.is_empty() {
                let space = codec.recv_space();
                let n = space.len().min(piece.len());
                space[..n].copy_from_slice(&piece[..n]);
                codec.received(n);
                piece = &piece[n..];
            }
            done = codec.progress(out)?;
        }
        Ok(done)
    }

    fn ready_codec() -> Codec {
        let mut codec = Codec::new();
        codec.start_handshake("test").unwrap();
        assert!(feed(&mut codec, &accepted(), 3, &mut Vec::new()).unwrap());
        codec
    }

    fn get(key: &[u8]) -> Request {
        Request::Get { db: DbName::new("misc").unwrap(), key: key.to_vec() }
    }

    #[test]
    fn the_hello_is_the_first_frame_and_the_accept_makes_the_codec_ready() {
        let mut codec = Codec::new();
        codec.start_handshake("exim").unwrap();
        assert_eq!(codec.unsent(), &frame_of(&Hello::new("exim"))[..]);
        assert_eq!(codec.daemon_version(), None);
        codec.advance_sent(codec.unsent().len());
        assert!(!feed(&mut codec, &accepted()[..5], 5, &mut Vec::new()).unwrap());
        assert!(feed(&mut codec, &accepted()[5..], 5, &mut Vec::new()).unwrap());
        assert_eq!(codec.daemon_version(), Some("9.9"));
        assert!(codec.is_clean());
    }

    #[test]
    fn a_refused_hello_is_a_refusal() {
        let mut codec = Codec::new();
        codec.start_handshake("exim").unwrap();
        let reply = ErrorReply::new(ErrorCode::NOT_ALLOWED, "uid 7");
        let failure = feed(&mut codec, &frame_of(&HelloReply::Refused(reply.clone())), 64, &mut Vec::new());
        let err = failure.unwrap_err().into_error(Path::new("/s"), Duration::from_secs(1));
        assert_eq!(err, Error::Refused(reply));
    }

    #[test]
    fn requests_are_framed_as_envelopes_numbered_from_one() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a"), get(b"b")]).unwrap();
        let mut want = frame_of(&RequestEnvelope { id: 1, request: get(b"a") });
        want.extend(frame_of(&RequestEnvelope { id: 2, request: get(b"b") }));
        assert_eq!(codec.unsent(), &want[..]);
        codec.advance_sent(want.len());
        assert!(!codec.is_clean(), "two replies are outstanding");
    }

    #[test]
    fn replies_are_matched_in_order_across_reads_of_any_size() {
        for chunk in [1, 2, 7, 4096] {
            let mut codec = ready_codec();
            codec.queue(&[get(b"a"), get(b"b")]).unwrap();
            codec.advance_sent(codec.unsent().len());
            let mut bytes = frame_of(&ResponseEnvelope { id: 1, response: Response::Value(None) });
            bytes.extend(frame_of(&ResponseEnvelope { id: 2, response: Response::Pong }));
            let mut out = Vec::new();
            assert!(feed(&mut codec, &bytes, chunk, &mut out).unwrap(), "chunk {chunk}");
            assert_eq!(out, vec![Response::Value(None), Response::Pong]);
            assert!(codec.is_clean());
        }
    }

    #[test]
    fn a_reply_to_another_request_is_a_protocol_failure() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        let bytes = frame_of(&ResponseEnvelope { id: 5, response: Response::Pong });
        assert!(matches!(feed(&mut codec, &bytes, 64, &mut Vec::new()), Err(Failure::Protocol(_))));
    }

    #[test]
    fn a_connection_error_is_reported_by_its_code() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        let reply = ErrorReply::new(ErrorCode::SHUTTING_DOWN, "bye");
        let bytes = frame_of(&ResponseEnvelope { id: CONNECTION_ERROR_ID, response: Response::Error(reply.clone()) });
        let failure = feed(&mut codec, &bytes, 64, &mut Vec::new()).unwrap_err();
        assert_eq!(failure.into_error(Path::new("/s"), Duration::from_secs(1)), Error::Daemon(reply));
    }

    #[test]
    fn an_error_after_which_the_daemon_closes_makes_the_connection_unusable() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        codec.advance_sent(codec.unsent().len());
        let reply = ErrorReply::new(ErrorCode::UNKNOWN_REQUEST, "what");
        let bytes = frame_of(&ResponseEnvelope { id: 1, response: Response::Error(reply) });
        assert!(feed(&mut codec, &bytes, 64, &mut Vec::new()).unwrap());
        assert!(!codec.is_clean());
    }

    #[test]
    fn undecodable_and_oversized_frames_are_protocol_failures() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        assert!(matches!(feed(&mut codec, &[1, 0, 0, 0, 0xff], 64, &mut Vec::new()), Err(Failure::Protocol(_))));
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        let oversized = ((FRAME_BYTES_MAX + 1) as u32).to_le_bytes();
        assert!(matches!(feed(&mut codec, &oversized, 64, &mut Vec::new()), Err(Failure::Protocol(_))));
    }

    #[test]
    fn a_frame_larger_than_the_buffer_grows_it_and_the_buffer_shrinks_after() {
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        codec.advance_sent(codec.unsent().len());
        let record = hints_proto::Record { key: b"a".to_vec(), value: vec![7; 200_000], stamp: Default::default() };
        let response = Response::Value(Some(record));
        let bytes = frame_of(&ResponseEnvelope { id: 1, response: response.clone() });
        let mut out = Vec::new();
        assert!(feed(&mut codec, &bytes, 10_000, &mut out).unwrap());
        assert_eq!(out, vec![response]);
        codec.shrink_buffers();
        assert_eq!(codec.recv.len(), RECV_BUFFER_BYTES_MIN);
    }

    #[test]
    fn only_a_reused_connection_that_broke_before_any_reply_may_resend() {
        let broken = || Failure::Broken(io::Error::from(io::ErrorKind::BrokenPipe));
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        assert!(codec.may_resend(&broken(), true, &[get(b"a")]));
        assert!(codec.may_resend(&Failure::closed(), true, &[get(b"a")]));
        assert!(!codec.may_resend(&broken(), false, &[get(b"a")]), "a fresh connection");
        assert!(!codec.may_resend(&Failure::TimedOut, true, &[get(b"a")]), "a timeout");
        let other = Failure::Broken(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!codec.may_resend(&other, true, &[get(b"a")]));
        codec.recv_space()[0] = 1;
        codec.received(1);
        assert!(!codec.may_resend(&broken(), true, &[get(b"a")]), "a reply had started");
    }

    #[test]
    fn a_call_that_counts_or_holds_is_never_resent_so_it_never_applies_twice() {
        let broken = || Failure::Broken(io::Error::from(io::ErrorKind::BrokenPipe));
        let db = DbName::new("misc").unwrap();
        let mut codec = ready_codec();
        codec.queue(&[get(b"a")]).unwrap();
        let once_only = [
            ops::ratelimit("10 / 1h / 192.0.2.1", None),
            RequestView::Other(ops::counter(&db, b"c", 1, None, None)),
            RequestView::Other(ops::serialize_take(&db, b"s", 1)),
            RequestView::Other(ops::serialize_release(&db, b"s")),
            RequestView::Other(ops::lock(&db, Duration::from_secs(1))),
            RequestView::Other(ops::unlock(&db)),
        ];
        for request in once_only {
            assert!(!codec.may_resend(&broken(), true, std::slice::from_ref(&request)), "{request:?}");
            assert!(
                !codec.may_resend(&Failure::closed(), true, &[RequestView::Other(get(b"a")), request.clone()]),
                "{request:?}"
            );
        }
        let safe = [
            ops::seen("5m / key=k", None),
            RequestView::Other(ops::greylist(&db, b"t", Duration::from_secs(300), Duration::from_secs(86_400), None)),
            RequestView::Other(ops::snapshot(None)),
        ];
        for request in safe {
            assert!(codec.may_resend(&broken(), true, std::slice::from_ref(&request)), "{request:?}");
        }
    }

    #[test]
    fn failures_become_unavailable_with_a_reason() {
        let socket = Path::new("/run/hintsd/hintsd.sock");
        let second = Duration::from_secs(1);
        let err = Failure::TimedOut.into_error(socket, second);
        assert_eq!(err, unavailable(socket, "no answer within 1s"));
        let err = Failure::closed().into_error(socket, second);
        assert_eq!(err, unavailable(socket, "the daemon closed the connection"));
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        let err = Failure::Broken(reset).into_error(socket, second);
        assert_eq!(err, unavailable(socket, "connection failed: Connection reset by peer"));
    }

    #[test]
    fn requests_over_their_limits_are_refused_before_sending() {
        let err = validate_all(&[get(b"ok"), get(b"")]).unwrap_err();
        assert!(matches!(err, Error::BadRequest(reply) if reply.code == ErrorCode::BAD_KEY));
    }
}
