//! The async client, for tokio programs: the blocking client's calls and rules over a
//! `tokio::net::UnixStream`, sharing its framing (`codec`) and mappings (`ops`).

use std::fmt;
use std::io;
use std::time::Duration;

use hints_proto::limits::PIPELINE_DEPTH_MAX;
use hints_proto::{DbName, DbStats, OutgoingRequest, Record, Request, Response, ResponseView, ScanPage, Stamp};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout_at};

use crate::codec::{Codec, Failure, describe_io, unavailable, validate_all};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::ops::{self, CasOutcome, GreylistOutcome, RateOutcome, SeenOutcome, SlotOutcome};

/// An async connection to hintsd. The same rules as the blocking [`crate::Client`]: the first
/// call connects, a broken or timed-out connection is dropped and the next call connects
/// anew, and a call on a kept connection that broke before any reply came back is resent
/// once on a new one. Each call takes at most [`ClientConfig::timeout`] in all.
///
/// A call whose future is dropped before it finished leaves the connection half used; the
/// next call notices and connects anew, so a late reply is never read as another's answer.
///
/// A call that counts or holds (ratelimit, counter, serialize, lock) is never resent, and a
/// serialize slot or exclusive session belongs to the connection, gone when the client
/// connects anew: see [`crate::Client#slots-and-sessions-belong-to-the-connection`].
///
/// The client is for one task at a time (`&mut self`); give each task its own.
pub struct Client {
    config: ClientConfig,
    codec: Codec,
    connection: Option<UnixStream>,
    responses: Vec<Response>,
}

impl Client {
    /// A client for `config`. Does not connect: the first call does.
    pub fn new(config: ClientConfig) -> Client {
        Client { config, codec: Codec::new(), connection: None, responses: Vec::with_capacity(1) }
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// True while a connection is open (it may still turn out to be broken).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The daemon's version, as its hello reply gave it, while connected.
    pub fn daemon_version(&self) -> Option<&str> {
        self.connection.as_ref().and(self.codec.daemon_version())
    }

    /// Closes the connection; the next call opens a new one.
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// Checks that the daemon answers.
    ///
    /// # Errors
    /// As [`crate::Client::ping`].
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.call_typed(&ops::ping(), ops::pong).await
    }

    /// The record stored under `key`, or `None`.
    ///
    /// # Errors
    /// As [`crate::Client::get`].
    pub async fn get(&mut self, db: &DbName, key: &[u8]) -> Result<Option<Record>, Error> {
        self.call_typed(&ops::get(db, key), ops::value).await
    }

    /// Stores `value` under `key`; returns the stamp the daemon gave the write.
    ///
    /// # Errors
    /// As [`crate::Client::put`].
    pub async fn put(&mut self, db: &DbName, key: &[u8], value: &[u8]) -> Result<Stamp, Error> {
        self.call_typed(&ops::put(db, key, value), ops::stored).await
    }

    /// Deletes the record under `key`; returns whether there was one.
    ///
    /// # Errors
    /// As [`crate::Client::delete`].
    pub async fn delete(&mut self, db: &DbName, key: &[u8]) -> Result<bool, Error> {
        self.call_typed(&ops::delete(db, key), ops::deleted).await
    }

    /// Up to `limit` records whose key starts with `prefix`, after the key `after`.
    ///
    /// # Errors
    /// As [`crate::Client::scan`].
    pub async fn scan(
        &mut self,
        db: &DbName,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<ScanPage, Error> {
        self.call_typed(&ops::scan(db, prefix, after, limit), ops::page).await
    }

    /// Drops records last written more than `older_than` ago; returns how many went.
    ///
    /// # Errors
    /// As [`crate::Client::tidy`].
    pub async fn tidy(&mut self, db: &DbName, older_than: Duration) -> Result<u64, Error> {
        self.call_typed(&ops::tidy(db, older_than), ops::tidied).await
    }

    /// Writes `value` (or deletes, for `None`) only if the record's stamp is still `expected`.
    ///
    /// # Errors
    /// As [`crate::Client::compare_and_set`].
    pub async fn compare_and_set(
        &mut self,
        db: &DbName,
        key: &[u8],
        expected: Option<Stamp>,
        value: Option<&[u8]>,
    ) -> Result<CasOutcome, Error> {
        self.call_typed(&ops::compare_and_set(db, key, expected, value), ops::swapped).await
    }

    /// Counters of `db`, or of every running database for `None`.
    ///
    /// # Errors
    /// As [`crate::Client::stats`].
    pub async fn stats(&mut self, db: Option<&DbName>) -> Result<Vec<DbStats>, Error> {
        self.call_typed(&ops::stats(db), ops::db_stats).await
    }

    /// Applies Exim's `ratelimit` condition in the `ratelimit` database, as at `at` (the
    /// daemon's clock for `None`). Never resent: the event counts once at most.
    ///
    /// # Errors
    /// As [`crate::Client::ratelimit`].
    pub async fn ratelimit(&mut self, condition: &str, at: Option<Stamp>) -> Result<RateOutcome, Error> {
        self.call_typed(&ops::ratelimit(condition, at), ops::rate).await
    }

    /// Applies Exim's `seen` condition in the `seen` database, as at `at` (the daemon's clock
    /// for `None`).
    ///
    /// # Errors
    /// As [`crate::Client::seen`].
    pub async fn seen(&mut self, condition: &str, at: Option<Stamp>) -> Result<SeenOutcome, Error> {
        self.call_typed(&ops::seen(condition, at), ops::seen_result).await
    }

    /// Checks the greylist triplet under `key` with a `delay` and an `expiry` (whole seconds),
    /// as at `at`.
    ///
    /// # Errors
    /// As [`crate::Client::greylist`].
    pub async fn greylist(
        &mut self,
        db: &DbName,
        key: &[u8],
        delay: Duration,
        expiry: Duration,
        at: Option<Stamp>,
    ) -> Result<GreylistOutcome, Error> {
        self.call_typed(&ops::greylist(db, key, delay, expiry, at), ops::greylisted).await
    }

    /// Takes one of `limit` slots under `key`.
    ///
    /// The slot belongs to this client's **connection**: it is freed by
    /// [`Client::serialize_release`], when the connection closes (a dropped client, a call
    /// that timed out, a call whose future was dropped half way), or when it ages out. If the
    /// client connects anew (the daemon restarted, a call timed out or was abandoned), the
    /// slot is gone and a later call that reconnected cannot tell; see
    /// [`crate::Client#slots-and-sessions-belong-to-the-connection`]. Never resent.
    ///
    /// # Errors
    /// As [`crate::Client::serialize_take`].
    pub async fn serialize_take(&mut self, db: &DbName, key: &[u8], limit: u32) -> Result<SlotOutcome, Error> {
        self.call_typed(&ops::serialize_take(db, key, limit), ops::slot).await
    }

    /// Gives back the slot this connection holds under `key`. Never resent.
    ///
    /// # Errors
    /// As [`crate::Client::serialize_release`].
    pub async fn serialize_release(&mut self, db: &DbName, key: &[u8]) -> Result<SlotOutcome, Error> {
        self.call_typed(&ops::serialize_release(db, key), ops::slot).await
    }

    /// Adds `delta` to the counter under `key` and returns its new value. Never resent: the
    /// add applies once at most.
    ///
    /// # Errors
    /// As [`crate::Client::counter`].
    pub async fn counter(
        &mut self,
        db: &DbName,
        key: &[u8],
        delta: i64,
        expiry: Option<Duration>,
        at: Option<Stamp>,
    ) -> Result<i64, Error> {
        self.call_typed(&ops::counter(db, key, delta, expiry, at), ops::counted).await
    }

    /// Holds `db` exclusively for `lease` (milliseconds on the wire, rounded up, within
    /// `1..=`[`hints_proto::limits::LEASE_MS_MAX`]); returns the lease granted.
    ///
    /// The session belongs to this client's **connection**: if the client connects anew (the
    /// daemon restarted, a call timed out or was abandoned), the session is gone and a later
    /// call that reconnected cannot tell ([`Client::unlock`] then answers `false`). Never
    /// resent.
    ///
    /// # Errors
    /// As [`crate::Client::lock`].
    pub async fn lock(&mut self, db: &DbName, lease: Duration) -> Result<Duration, Error> {
        self.call_typed(&ops::lock(db, lease), ops::locked).await
    }

    /// Ends this connection's exclusive session on `db`; returns whether it held one.
    ///
    /// # Errors
    /// As [`crate::Client::unlock`].
    pub async fn unlock(&mut self, db: &DbName) -> Result<bool, Error> {
        self.call_typed(&ops::unlock(db), ops::unlocked).await
    }

    /// Makes the daemon write snapshots now, of `db` or of all; returns how many databases
    /// and records were written.
    ///
    /// # Errors
    /// As [`crate::Client::snapshot`].
    pub async fn snapshot(&mut self, db: Option<&DbName>) -> Result<(u32, u64), Error> {
        self.call_typed(&ops::snapshot(db), ops::snapshotted).await
    }

    /// Sends one request and returns its answer; an error reply is returned as its [`Error`].
    ///
    /// # Errors
    /// As [`crate::Client::call`].
    pub async fn call(&mut self, request: Request) -> Result<Response, Error> {
        self.call_typed(&request, ops::answer).await
    }

    /// Sends every request before reading any reply; the replies in order, error replies
    /// included. Chunks of [`PIPELINE_DEPTH_MAX`], the timeout applying to each.
    ///
    /// # Errors
    /// As [`crate::Client::pipeline`].
    pub async fn pipeline(&mut self, requests: &[Request]) -> Result<Vec<Response>, Error> {
        let mut responses = Vec::with_capacity(requests.len());
        self.exchange(requests, &mut |reply| responses.push(reply.into_owned())).await?;
        Ok(responses)
    }

    /// As [`crate::Client::pipeline_each`]: each reply handed to `each` as it is read, a found
    /// record borrowed from the client's read buffer, and the requests owned or borrowing
    /// their keys and values ([`hints_proto::RequestView`]).
    ///
    /// # Errors
    /// As [`Client::pipeline`]; the replies read before a failure have been handed over.
    pub async fn pipeline_each(
        &mut self,
        requests: &[impl OutgoingRequest],
        mut each: impl FnMut(ResponseView<'_>) + Send,
    ) -> Result<(), Error> {
        self.exchange(requests, &mut each).await
    }

    async fn call_typed<T>(
        &mut self,
        request: &impl OutgoingRequest,
        map: fn(Response) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut responses = std::mem::take(&mut self.responses);
        responses.clear();
        let result =
            self.exchange(std::slice::from_ref(request), &mut |reply| responses.push(reply.into_owned())).await;
        let response = responses.pop();
        self.responses = responses;
        result?;
        let response = response.ok_or_else(|| Error::Protocol("no reply to the request".into()))?;
        map(response)
    }

    async fn exchange(&mut self, requests: &[impl OutgoingRequest], each: &mut Each<'_>) -> Result<(), Error> {
        validate_all(requests)?;
        for chunk in requests.chunks(PIPELINE_DEPTH_MAX) {
            let deadline = Instant::now() + self.config.call_timeout();
            self.exchange_chunk(chunk, deadline, each).await?;
        }
        Ok(())
    }

    /// As the blocking client's: the kept connection or a new one, and one resend when
    /// [`Codec::may_resend`] allows.
    async fn exchange_chunk(
        &mut self,
        requests: &[impl OutgoingRequest],
        deadline: Instant,
        each: &mut Each<'_>,
    ) -> Result<(), Error> {
        let kept = self.connection.take().filter(|_| self.codec.is_clean());
        let mut reused = kept.is_some();
        let mut stream = match kept {
            Some(stream) => stream,
            None => self.connect(deadline).await?,
        };
        loop {
            self.codec.queue(requests)?;
            match pump_until(&stream, &mut self.codec, deadline, each).await {
                Ok(()) => {
                    if self.codec.is_clean() {
                        self.codec.shrink_buffers();
                        self.connection = Some(stream);
                    }
                    return Ok(());
                }
                // (Only before any byte of a reply came: nothing was handed to `each`.)
                Err(failure) if self.codec.may_resend(&failure, reused, requests) => {
                    reused = false;
                    stream = self.connect(deadline).await?;
                }
                Err(failure) => return Err(failure.into_error(&self.config.socket, self.config.call_timeout())),
            }
        }
    }

    /// Connects and says hello, within `deadline`.
    async fn connect(&mut self, deadline: Instant) -> Result<UnixStream, Error> {
        let socket_path = &self.config.socket;
        let timeout = self.config.call_timeout();
        let stream = match timeout_at(deadline, UnixStream::connect(socket_path)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(unavailable(socket_path, describe_io(&err))),
            Err(_elapsed) => return Err(unavailable(socket_path, format!("no answer within {timeout:?}"))),
        };
        self.codec.start_handshake(&self.config.client_name)?;
        pump_until(&stream, &mut self.codec, deadline, &mut |_| {})
            .await
            .map_err(|failure| failure.into_error(socket_path, timeout))?;
        Ok(stream)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// What receives a call's replies as they are read.
type Each<'a> = dyn FnMut(ResponseView<'_>) + Send + 'a;

/// [`pump`] bounded by `deadline`.
async fn pump_until(
    stream: &UnixStream,
    codec: &mut Codec,
    deadline: Instant,
    each: &mut Each<'_>,
) -> Result<(), Failure> {
    timeout_at(deadline, pump(stream, codec, each)).await.unwrap_or(Err(Failure::TimedOut))
}

/// Writes what the codec has queued and reads until it has every reply it expects, reading
/// while it writes so a long pipeline cannot deadlock. Writes use `MSG_NOSIGNAL`, so a dead
/// daemon is an error, never a `SIGPIPE`, even in a host that has not ignored the signal.
async fn pump(stream: &UnixStream, codec: &mut Codec, each: &mut Each<'_>) -> Result<(), Failure> {
    loop {
        let answered = codec.progress_each(each)?;
        let sending = !codec.unsent().is_empty();
        if answered && !sending {
            return Ok(());
        }
        let interest = if sending { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        let ready = stream.ready(interest).await.map_err(Failure::Broken)?;
        if sending && ready.is_writable() {
            let sent = stream.try_io(Interest::WRITABLE, || {
                SockRef::from(stream).send_with_flags(codec.unsent(), libc::MSG_NOSIGNAL)
            });
            match sent {
                Ok(n) => codec.advance_sent(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(Failure::Broken(err)),
            }
        }
        if ready.is_readable() || ready.is_read_closed() {
            match stream.try_read(codec.recv_space()) {
                Ok(0) => return Err(Failure::closed()),
                Ok(n) => codec.received(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(Failure::Broken(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::fake_daemon::{FakeDaemon, db, script, simple_answer, test_config};

    fn client_for(socket: &Path) -> Client {
        Client::new(test_config(socket))
    }

    #[tokio::test]
    async fn calls_share_one_connection_and_map_their_answers() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer_all(simple_answer);
        })]);
        let mut client = client_for(daemon.socket());
        client.ping().await.unwrap();
        assert_eq!(client.daemon_version(), Some("fake"));
        assert_eq!(client.get(&db(), b"k").await.unwrap(), None);
        let responses = client.pipeline(&[ops::ping(), ops::get(&db(), b"k").into_owned()]).await.unwrap();
        assert_eq!(responses, vec![Response::Pong, Response::Value(None)]);
        drop(client);
        daemon.finish();
    }

    #[tokio::test]
    async fn a_kept_connection_that_died_with_a_restart_is_resent_on_a_new_one() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, simple_answer);
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(simple_answer);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(client.get(&db(), b"k").await.unwrap(), None);
        drop(client);
        daemon.finish();
    }

    #[tokio::test]
    async fn typed_operations_map_their_answers() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer_all(|request| match request {
                Request::Ratelimit { .. } => Response::Rate { rate: 0.5, over: false, key: "k".into(), written: true },
                Request::Seen { .. } => Response::Seen { result: false, written: true },
                Request::Greylist { .. } => Response::Greylist { pass: true, retry_after_secs: 0 },
                Request::SerializeTake { .. } => Response::Slot { held: false, holders: 4 },
                Request::SerializeRelease { .. } => Response::Slot { held: false, holders: 3 },
                Request::Counter { delta, .. } => Response::Counter(100 + delta),
                Request::Lock { .. } => Response::Locked { lease_ms: 250 },
                Request::Unlock { .. } => Response::Unlocked { held: false },
                Request::Snapshot { db } => Response::Snapshotted { databases: u32::from(db.is_some()), records: 5 },
                other => simple_answer(other),
            });
        })]);
        let mut client = client_for(daemon.socket());
        let rate = client.ratelimit("1 / 1s / k", None).await.unwrap();
        assert_eq!(rate, RateOutcome { rate: 0.5, over: false, key: "k".into(), written: true });
        assert_eq!(client.seen("5m / key=k", None).await.unwrap(), SeenOutcome { result: false, written: true });
        let grey = client.greylist(&db(), b"t", Duration::ZERO, Duration::ZERO, None).await.unwrap();
        assert_eq!(grey, GreylistOutcome { pass: true, retry_after_secs: 0 });
        assert_eq!(client.serialize_take(&db(), b"s", 4).await.unwrap(), SlotOutcome { held: false, holders: 4 });
        assert_eq!(client.serialize_release(&db(), b"s").await.unwrap(), SlotOutcome { held: false, holders: 3 });
        assert_eq!(client.counter(&db(), b"c", -1, None, None).await.unwrap(), 99);
        assert_eq!(client.lock(&db(), Duration::from_millis(250)).await.unwrap(), Duration::from_millis(250));
        assert!(!client.unlock(&db()).await.unwrap());
        assert_eq!(client.snapshot(Some(&db())).await.unwrap(), (1, 5));
        drop(client);
        daemon.finish();
    }

    #[tokio::test]
    async fn a_ratelimit_event_on_a_kept_connection_that_died_is_not_resent() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, simple_answer);
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, |request| {
                    assert_eq!(request, &Request::Ping, "the ratelimit event was sent again");
                    Response::Pong
                });
                assert!(peer.request().is_none());
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = client.ratelimit("10 / 1h / k", None).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        client.ping().await.unwrap();
        drop(client);
        daemon.finish();
    }

    #[tokio::test]
    async fn a_missing_daemon_is_unavailable_and_names_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("hintsd.sock");
        let err = client_for(&socket).ping().await.unwrap_err();
        assert_eq!(err, Error::Unavailable { socket, reason: "No such file or directory".into() });
    }

    #[tokio::test]
    async fn an_abandoned_call_leaves_a_connection_the_next_call_does_not_reuse() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                let first = peer.request().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                peer.reply_late(first.id, Response::Value(None));
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(|_| Response::Pong);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        let abandoned = tokio::time::timeout(Duration::from_millis(30), client.get(&db(), b"k")).await;
        assert!(abandoned.is_err(), "the call was cut short");
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The late Value must not be taken for this ping's answer.
        client.ping().await.unwrap();
        drop(client);
        daemon.finish();
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            let _ = peer.request();
            let _ = peer.request();
        })]);
        let mut client = client_for(daemon.socket());
        let err = client.ping().await.unwrap_err();
        assert!(matches!(&err, Error::Unavailable { reason, .. } if reason == "no answer within 300ms"), "{err}");
        assert!(!client.is_connected());
        drop(client);
        daemon.finish();
    }
}
