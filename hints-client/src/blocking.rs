//! The blocking client an MTA worker links: no threads, no runtime, safe across `fork()`, and
//! never a `SIGPIPE` in the host process.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use hints_proto::limits::PIPELINE_DEPTH_MAX;
use hints_proto::{
    DbName, DbStats, ErrorCode, OutgoingRequest, Record, RecordView, Request, Response, ResponseView, ScanPage, Stamp,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::codec::{Codec, Failure, describe_io, unavailable, validate_all};
use crate::config::ClientConfig;
use crate::error::Error;
use crate::ops::{self, CasOutcome, GreylistOutcome, RateOutcome, SeenOutcome, SlotOutcome};
use crate::process::ProcessMark;
use crate::ring::ClientRing;

/// A connection to hintsd for one process.
///
/// The connection is made by the first call, kept for the next ones, and made anew when it
/// broke, when a call timed out, or when the process has forked since (the child never
/// writes to its parent's connection). A call on a kept connection that finds it broken
/// before any reply came back (the daemon restarted) is sent once more on a new connection.
///
/// Every call takes at most [`ClientConfig::timeout`] in all, connecting included, and then
/// fails with [`Error::Unavailable`].
///
/// A call that counts or holds ([`Client::ratelimit`], [`Client::counter`], the serialize and
/// lock calls, and any such request in [`Client::call`] or [`Client::pipeline`]) is never
/// resent: it may have been applied before the connection broke, so it fails with
/// [`Error::Unavailable`] instead.
///
/// # Slots and sessions belong to the connection
/// A serialize slot ([`Client::serialize_take`]) and an exclusive session ([`Client::lock`])
/// are the daemon's for as long as this client's connection lasts, and are freed when it
/// closes. The client connects anew without being asked when the daemon restarts, after a
/// `fork()`, and after a call that timed out or broke; whatever the old connection held is
/// then gone, and nothing says so: the call that reconnected (even one that then succeeded,
/// such as a `get` resent after a daemon restart) cannot know the old connection held
/// anything. [`Client::unlock`] answers `false` for a session that was lost this way;
/// [`Client::serialize_release`] cannot tell. A caller holding a slot or a session across
/// calls should keep those calls few and short, and read any [`Error::Unavailable`] on the
/// way as having lost it.
///
/// ```no_run
/// use hints_client::{Client, ClientConfig, DbName};
///
/// let mut client = Client::new(ClientConfig::from_environment());
/// let db = DbName::new("misc")?;
/// client.put(&db, b"greylist/192.0.2.1", b"1")?;
/// let record = client.get(&db, b"greylist/192.0.2.1")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Client {
    config: ClientConfig,
    codec: Codec,
    connection: Option<Connection>,
    /// Connections this client has opened; the current one's number is its id.
    connections_opened: u64,
    /// The daemon answered `OpenRing` as an unknown request (it predates rings): this client
    /// stays on the socket from then on.
    daemon_lacks_rings: bool,
}

/// An open socket, the process that opened it, and the ring it moved to, if any.
struct Connection {
    link: Link,
    opener: ProcessMark,
    /// Once open, every frame goes through it; the socket carries only doorbells.
    ring: Option<ClientRing>,
}

/// What the daemon said to `OpenRing`.
enum RingAnswer {
    Opened(ClientRing),
    /// It offers no ring here; the connection goes on over the socket.
    Declined,
    /// It predates rings: it has answered an unknown request and closes the connection.
    Unknown,
}

/// The connection's socket. Reads never block: every wait is a `poll` ([`Link::poll_until`]).
pub(crate) struct Link {
    socket: Socket,
}

impl Link {
    /// Sleeps in `poll` until the socket is ready for one of `interest`, hung up or failed, or
    /// `deadline` passes; the events it found.
    ///
    /// A sleeper in `poll` is woken only by the events it asked for. One in a blocking `recv`
    /// is also woken, for nothing, each time the daemon reads a byte this end sent (the
    /// kernel wakes a socket's sleepers when its send buffer gains room), which costs the
    /// host two context switches.
    ///
    /// # Errors
    /// [`Failure::TimedOut`] past the deadline; [`Failure::Broken`] when `poll` failed.
    pub(crate) fn poll_until(&self, interest: PollFlags, deadline: Instant) -> Result<PollFlags, Failure> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Failure::TimedOut);
            }
            // Rounded up, so the last sub-millisecond does not spin; capped, so it loops.
            let millis = remaining.as_micros().div_ceil(1000);
            let timeout = PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX));
            let mut fds = [PollFd::new(self.socket.as_fd(), interest)];
            match poll(&mut fds, timeout) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => return Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
                Err(errno) => return Err(Failure::Broken(io::Error::from(errno))),
            }
        }
    }

    /// One `recv` into `buf` that does not wait: how many bytes came, `Some(0)` when the daemon
    /// closed, `None` when there was nothing to read.
    ///
    /// # Errors
    /// [`Failure::Broken`] when the read failed.
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> Result<Option<usize>, Failure> {
        match recv(self.socket.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(read) => Ok(Some(read)),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
            Err(errno) => Err(Failure::Broken(io::Error::from(errno))),
        }
    }

    /// Sends the daemon one doorbell byte without waiting (a full buffer holds doorbells
    /// already).
    ///
    /// # Errors
    /// [`Failure::Broken`] when the daemon is gone.
    pub(crate) fn ring_bell(&self) -> Result<(), Failure> {
        match self.socket.send_with_flags(&[1], libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(()),
            Err(err) => Err(Failure::Broken(err)),
        }
    }
}

impl Drop for Connection {
    /// The process that opened the connection shuts it down before closing it, so the daemon
    /// sees it end (and frees its slots and session) even while a forked child still holds a
    /// copy of the descriptor. A child only closes its copy, leaving the parent's connection be.
    fn drop(&mut self) {
        if self.opener.is_current() {
            let _ = self.link.socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Client {
    /// A client for `config`. Does not connect: the first call does.
    pub fn new(config: ClientConfig) -> Client {
        Client { config, codec: Codec::new(), connection: None, connections_opened: 0, daemon_lacks_rings: false }
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes the timeout of every later call, keeping the connection (and so any slot or
    /// session it holds).
    pub fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.config = self.config.clone().with_timeout(timeout);
    }

    /// True while a connection is open (it may still turn out to be broken).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Names the open connection (1 for the first this client opened, then 2, ...), `None`
    /// when there is none in this process. Slots and sessions belong to one connection: code
    /// that holds one can tell, before its next call, whether it still has the connection
    /// that took it.
    pub fn connection_id(&self) -> Option<u64> {
        let connection = self.connection.as_ref()?;
        connection.opener.is_current().then_some(self.connections_opened)
    }

    /// True while the open connection speaks through a shared-memory ring
    /// ([`ClientConfig::ring`]) rather than its socket.
    pub fn is_on_ring(&self) -> bool {
        self.connection.as_ref().is_some_and(|connection| connection.ring.is_some())
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
    /// [`Error::Unavailable`] when it does not; [`Error::Refused`] when it will not talk to
    /// this client.
    pub fn ping(&mut self) -> Result<(), Error> {
        self.call_typed(&ops::ping(), ops::pong)
    }

    /// The record stored under `key`, or `None`.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an empty or overlong key; otherwise as [`Client::call`].
    pub fn get(&mut self, db: &DbName, key: &[u8]) -> Result<Option<Record>, Error> {
        self.call_typed(&ops::get(db, key), ops::value)
    }

    /// As [`Client::get`], handing the record to `read` where the reply was read (its key and
    /// value borrow the client's buffer) instead of copying it out: two allocations fewer a
    /// call, for a caller that copies the value where it wants it anyway (as `hints_get` does
    /// into the caller's buffer).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn get_with<T>(
        &mut self,
        db: &DbName,
        key: &[u8],
        read: impl FnOnce(Option<RecordView<'_>>) -> T,
    ) -> Result<T, Error> {
        self.call_in_place(&ops::get(db, key), |reply| match reply {
            ResponseView::Value(record) => Ok(read(record)),
            // Not a value: an error reply, or the wrong one.
            other => Err(ops::value(other.into_owned())
                .err()
                .unwrap_or_else(|| Error::Protocol("a value reply was not read in place".into()))),
        })
    }

    /// Stores `value` under `key`; returns the stamp the daemon gave the write.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key or an oversized value; otherwise as [`Client::call`].
    pub fn put(&mut self, db: &DbName, key: &[u8], value: &[u8]) -> Result<Stamp, Error> {
        self.call_typed(&ops::put(db, key, value), ops::stored)
    }

    /// Deletes the record under `key`; returns whether there was one.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key; otherwise as [`Client::call`].
    pub fn delete(&mut self, db: &DbName, key: &[u8]) -> Result<bool, Error> {
        self.call_typed(&ops::delete(db, key), ops::deleted)
    }

    /// Up to `limit` records whose key starts with `prefix`, in key order, after the key
    /// `after` (pass the previous page's [`ScanPage::next`]; `None` to start).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a limit outside `1..=SCAN_PAGE_RECORDS_MAX` or an overlong
    /// prefix; otherwise as [`Client::call`].
    pub fn scan(&mut self, db: &DbName, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Result<ScanPage, Error> {
        self.call_typed(&ops::scan(db, prefix, after, limit), ops::page)
    }

    /// Drops records last written more than `older_than` ago (whole seconds); returns how
    /// many went.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn tidy(&mut self, db: &DbName, older_than: Duration) -> Result<u64, Error> {
        self.call_typed(&ops::tidy(db, older_than), ops::tidied)
    }

    /// Writes `value` (or deletes, for `None`) only if the record's stamp is still `expected`
    /// (`None`: only if there is no record).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key or an oversized value; otherwise as
    /// [`Client::call`]. A stamp that no longer matches is not an error but
    /// [`CasOutcome::Conflict`].
    pub fn compare_and_set(
        &mut self,
        db: &DbName,
        key: &[u8],
        expected: Option<Stamp>,
        value: Option<&[u8]>,
    ) -> Result<CasOutcome, Error> {
        self.call_typed(&ops::compare_and_set(db, key, expected, value), ops::swapped)
    }

    /// Counters of `db`, or of every running database for `None`.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn stats(&mut self, db: Option<&DbName>) -> Result<Vec<DbStats>, Error> {
        self.call_typed(&ops::stats(db), ops::db_stats)
    }

    /// Applies Exim's `ratelimit` condition (`100 / 1h / strict / per_rcpt / 192.0.2.1`: limit,
    /// period, options, key) atomically in the `ratelimit` database, as at `at` (the MTA's
    /// clock at the event; the daemon's clock for `None`).
    ///
    /// The event counts once at most: if the connection breaks before the answer comes back,
    /// the call fails with [`Error::Unavailable`] rather than being sent again, since the
    /// daemon may already have counted it.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a condition over [`hints_proto::limits::CONDITION_BYTES_MAX`]
    /// or one the daemon cannot parse; [`Error::Unavailable`] when the connection broke under
    /// the call (never resent); otherwise as [`Client::call`].
    pub fn ratelimit(&mut self, condition: &str, at: Option<Stamp>) -> Result<RateOutcome, Error> {
        self.call_typed(&ops::ratelimit(condition, at), ops::rate)
    }

    /// Applies Exim's `seen` condition (`-5m / key=K`, `1d / key=K / readonly`) in the `seen`
    /// database, as at `at` (the daemon's clock for `None`).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a condition over [`hints_proto::limits::CONDITION_BYTES_MAX`]
    /// or one the daemon cannot parse; otherwise as [`Client::call`].
    pub fn seen(&mut self, condition: &str, at: Option<Stamp>) -> Result<SeenOutcome, Error> {
        self.call_typed(&ops::seen(condition, at), ops::seen_result)
    }

    /// Checks the greylist triplet under `key` in `db`, as at `at` (the daemon's clock for
    /// `None`): the first attempt is deferred, a retry once `delay` has passed passes and is
    /// remembered, and a triplet unseen for `expiry` is forgotten. Both are whole seconds.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an empty or overlong key; otherwise as [`Client::call`].
    pub fn greylist(
        &mut self,
        db: &DbName,
        key: &[u8],
        delay: Duration,
        expiry: Duration,
        at: Option<Stamp>,
    ) -> Result<GreylistOutcome, Error> {
        self.call_typed(&ops::greylist(db, key, delay, expiry, at), ops::greylisted)
    }

    /// Takes one of `limit` slots under `key` (Exim's serialize and ETRN records);
    /// [`SlotOutcome::held`] says whether this connection got one.
    ///
    /// The slot belongs to this client's **connection**, not to the process: it is freed by
    /// [`Client::serialize_release`], when the connection closes ([`Client::disconnect`],
    /// dropping the client, a call that timed out, the process exiting), or when it ages out.
    /// If the client later connects anew (the daemon restarted, the process forked, a call
    /// timed out or broke), the slot is gone, and a later call that reconnected cannot tell
    /// (see [Slots and sessions belong to the connection](Client#slots-and-sessions-belong-to-the-connection)).
    /// A forked child never holds its parent's slots. The call is never resent on a new
    /// connection.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key or a `limit` of 0; [`Error::Unavailable`] when the
    /// connection broke under the call (whether a slot was taken is unknown, and if it was,
    /// it went with the connection); otherwise as [`Client::call`].
    pub fn serialize_take(&mut self, db: &DbName, key: &[u8], limit: u32) -> Result<SlotOutcome, Error> {
        self.call_typed(&ops::serialize_take(db, key, limit), ops::slot)
    }

    /// Gives back the slot this connection holds under `key`; the answer has `held: false`,
    /// and `holders` counts the connections still holding one. It does not say whether this
    /// connection had a slot: one taken on an earlier connection went when that connection
    /// closed, and releasing it now is a no-op.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key; [`Error::Unavailable`] when the connection broke
    /// under the call (never resent; the slot went with the connection); otherwise as
    /// [`Client::call`].
    pub fn serialize_release(&mut self, db: &DbName, key: &[u8]) -> Result<SlotOutcome, Error> {
        self.call_typed(&ops::serialize_release(db, key), ops::slot)
    }

    /// Adds `delta` (which may be negative) to the 64-bit counter under `key` (a missing
    /// counter starts at 0) and returns its new value. A counter this creates lives `expiry`
    /// (whole seconds) when given; `at` is the MTA's clock (the daemon's for `None`).
    ///
    /// The add applies once at most: if the connection breaks before the answer comes back,
    /// the call fails with [`Error::Unavailable`] rather than being sent again.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad key; [`Error::Unavailable`] when the connection broke
    /// under the call (never resent: the add may or may not have applied); otherwise as
    /// [`Client::call`].
    pub fn counter(
        &mut self,
        db: &DbName,
        key: &[u8],
        delta: i64,
        expiry: Option<Duration>,
        at: Option<Stamp>,
    ) -> Result<i64, Error> {
        self.call_typed(&ops::counter(db, key, delta, expiry, at), ops::counted)
    }

    /// Holds `db` exclusively for `lease` (for legacy read-modify-write code written against
    /// Exim's lockfile): other clients' requests to it wait, in order, until [`Client::unlock`],
    /// the lease's end, or this connection's close. Returns the lease granted, from now. The
    /// lease travels in milliseconds, rounded up, and must be within
    /// `1..=`[`LEASE_MS_MAX`](hints_proto::limits::LEASE_MS_MAX) ms.
    ///
    /// The session belongs to this client's **connection**: if the client connects anew (the
    /// daemon restarted, the process forked, a call timed out or broke, [`Client::disconnect`]),
    /// the session is gone and other clients go ahead, and a later call that reconnected
    /// cannot tell; [`Client::unlock`] then answers `false`. A forked child never holds its
    /// parent's session. The call is never resent on a new connection.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a lease of 0 or past
    /// [`LEASE_MS_MAX`](hints_proto::limits::LEASE_MS_MAX) ms (before sending);
    /// [`Error::Unavailable`] when the connection broke under the call (never resent);
    /// otherwise as [`Client::call`].
    pub fn lock(&mut self, db: &DbName, lease: Duration) -> Result<Duration, Error> {
        self.call_typed(&ops::lock(db, lease), ops::locked)
    }

    /// Ends this connection's exclusive session on `db`; returns whether it held one (false
    /// when the lease had ended, or the session went with an earlier connection).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the connection broke under the call (never resent; the
    /// session went with the connection); otherwise as [`Client::call`].
    pub fn unlock(&mut self, db: &DbName) -> Result<bool, Error> {
        self.call_typed(&ops::unlock(db), ops::unlocked)
    }

    /// Makes the daemon write snapshots now, of `db` or of every database for `None`; returns
    /// how many databases and records were written.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn snapshot(&mut self, db: Option<&DbName>) -> Result<(u32, u64), Error> {
        self.call_typed(&ops::snapshot(db), ops::snapshotted)
    }

    /// Sends one request and returns its answer. An error reply is returned as its
    /// [`Error`], never as `Ok(Response::Error(..))`.
    ///
    /// # Errors
    /// - [`Error::Unavailable`]: no daemon at the socket, the connect or the call timed out,
    ///   or the connection broke and could not be resent.
    /// - [`Error::Refused`]: the daemon will not talk to this client.
    /// - [`Error::BadRequest`], [`Error::NotFound`], [`Error::Daemon`]: the daemon's error
    ///   reply (bad requests are mostly caught before sending).
    /// - [`Error::Protocol`]: the daemon's answer could not be read.
    pub fn call(&mut self, request: Request) -> Result<Response, Error> {
        self.call_typed(&request, ops::answer)
    }

    /// Sends every request before reading any reply, and returns the replies in order. Error
    /// replies stay in the list as [`Response::Error`] (`Error::from(reply)` maps one). More
    /// than [`PIPELINE_DEPTH_MAX`] requests go in chunks of that many, and the timeout applies
    /// to each chunk.
    ///
    /// # Errors
    /// As [`Client::call`], for the pipeline as a whole: a request over the protocol's limits
    /// fails it before anything is sent, and a failure part way loses the replies gathered.
    pub fn pipeline(&mut self, requests: &[Request]) -> Result<Vec<Response>, Error> {
        let mut responses = Vec::with_capacity(requests.len());
        self.exchange(requests, &mut |reply| responses.push(reply.into_owned()))?;
        Ok(responses)
    }

    /// As [`Client::pipeline`], handing each reply to `each` in order as it is read, without
    /// copying it out: a found record ([`ResponseView::Value`]) borrows the client's read
    /// buffer, so a pipeline of lookups whose values are only looked at allocates nothing per
    /// reply. Copy what must outlive the call ([`hints_proto::RecordView::to_record`]).
    ///
    /// The requests may be owned ([`Request`]) or borrow their keys and values
    /// ([`hints_proto::RequestView`]: a get or a put made from the caller's own bytes), so a
    /// pipeline of lookups need not copy its keys either.
    ///
    /// # Errors
    /// As [`Client::pipeline`]; the replies read before a failure have been handed over.
    pub fn pipeline_each(
        &mut self,
        requests: &[impl OutgoingRequest],
        mut each: impl FnMut(ResponseView<'_>),
    ) -> Result<(), Error> {
        self.exchange(requests, &mut each)
    }

    /// One request, its answer mapped by `map` (a function of [`ops`]).
    fn call_typed<T>(
        &mut self,
        request: &impl OutgoingRequest,
        map: fn(Response) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.call_in_place(request, |reply| map(reply.into_owned()))
    }

    /// One request, its reply handed to `read` where it was read.
    fn call_in_place<T>(
        &mut self,
        request: &impl OutgoingRequest,
        read: impl FnOnce(ResponseView<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut read = Some(read);
        let mut answer = None;
        self.exchange(std::slice::from_ref(request), &mut |reply| {
            if let Some(read) = read.take() {
                answer = Some(read(reply));
            }
        })?;
        answer.unwrap_or_else(|| Err(Error::Protocol("no reply to the request".into())))
    }

    fn exchange(
        &mut self,
        requests: &[impl OutgoingRequest],
        each: &mut dyn FnMut(ResponseView<'_>),
    ) -> Result<(), Error> {
        validate_all(requests)?;
        for chunk in requests.chunks(PIPELINE_DEPTH_MAX) {
            let deadline = Instant::now() + self.config.call_timeout();
            self.exchange_chunk(chunk, deadline, each)?;
        }
        Ok(())
    }

    /// Sends `requests` and reads their replies on the kept connection or a new one, resending
    /// once on a new connection when [`Codec::may_resend`] allows.
    fn exchange_chunk(
        &mut self,
        requests: &[impl OutgoingRequest],
        deadline: Instant,
        each: &mut dyn FnMut(ResponseView<'_>),
    ) -> Result<(), Error> {
        let mut reused = self.keep_connection_if_reusable();
        loop {
            if self.connection.is_none() {
                self.connection = Some(self.connect(deadline)?);
            }
            // Used where it is kept: a `Connection` is a few hundred bytes, and moving it out
            // and back cost a call about 200 instructions.
            let connection = self.connection.as_mut().expect("connected above");
            self.codec.queue(requests)?;
            match connection.pump(&mut self.codec, deadline, each) {
                Ok(()) => {
                    if self.codec.is_clean() {
                        self.codec.shrink_buffers();
                    } else {
                        self.connection = None;
                    }
                    return Ok(());
                }
                // (Only before any byte of a reply came: nothing was handed to `each`.)
                Err(failure) if self.codec.may_resend(&failure, reused, requests) => {
                    reused = false;
                    self.connection = None;
                }
                Err(failure) => {
                    self.connection = None;
                    return Err(failure.into_error(&self.config.socket, self.config.call_timeout()));
                }
            }
        }
    }

    /// Keeps the connection if this process opened it and its last call finished cleanly,
    /// saying whether it did. Otherwise it is closed here: after a fork the child's copy of
    /// the parent's socket is closed without a byte written to it (the parent's stays open).
    fn keep_connection_if_reusable(&mut self) -> bool {
        let reusable =
            self.connection.as_ref().is_some_and(|connection| connection.opener.is_current()) && self.codec.is_clean();
        if !reusable {
            self.connection = None;
        }
        reusable
    }

    /// Connects and says hello, within `deadline`.
    fn connect(&mut self, deadline: Instant) -> Result<Connection, Error> {
        let socket_path = &self.config.socket;
        let timeout = self.config.call_timeout();
        let io_failed = |err: io::Error| unavailable(socket_path, describe_io(&err));
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(unavailable(socket_path, format!("no answer within {timeout:?}")));
        }
        let address = SockAddr::unix(socket_path).map_err(io_failed)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(io_failed)?;
        socket.connect_timeout(&address, remaining).map_err(io_failed)?;
        let link = Link { socket };
        let mut connection = Connection { link, opener: ProcessMark::current(), ring: None };
        self.connections_opened += 1;
        self.codec.start_handshake(&self.config.client_name)?;
        connection
            .pump(&mut self.codec, deadline, &mut |_| {})
            .map_err(|failure| failure.into_error(socket_path, timeout))?;
        if self.config.ring && !self.daemon_lacks_rings {
            match connection.open_ring(&mut self.codec, deadline) {
                Ok(RingAnswer::Opened(ring)) => connection.ring = Some(ring),
                Ok(RingAnswer::Declined) => {}
                Ok(RingAnswer::Unknown) => {
                    self.daemon_lacks_rings = true;
                    return self.connect(deadline);
                }
                Err(failure) => return Err(failure.into_error(socket_path, timeout)),
            }
        }
        Ok(connection)
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

impl Connection {
    /// Writes what the codec has queued and reads until it has every reply it expects.
    ///
    /// Writes never block and never raise `SIGPIPE` (`MSG_DONTWAIT | MSG_NOSIGNAL`): when
    /// the socket is full, `poll` waits for room or for replies, and replies are read while
    /// writing, so a long pipeline cannot deadlock against a daemon that is itself blocked
    /// writing replies. Once everything is written, reads wait in `poll` until the call's deadline.
    fn pump(
        &mut self,
        codec: &mut Codec,
        deadline: Instant,
        each: &mut dyn FnMut(ResponseView<'_>),
    ) -> Result<(), Failure> {
        if let Some(ring) = &mut self.ring {
            return ring.pump(&mut self.link, codec, deadline, each);
        }
        loop {
            let answered = codec.progress_each(each)?;
            if codec.unsent().is_empty() {
                if answered {
                    return Ok(());
                }
                self.read_blocking(codec, deadline)?;
                continue;
            }
            match self.link.socket.send_with_flags(codec.unsent(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) {
                Ok(n) => codec.advance_sent(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.wait_for_room_or_replies(deadline)? {
                        self.read_ready(codec)?;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Failure::Broken(err)),
            }
        }
    }

    /// Asks the daemon for a ring, within `deadline`. The reply is read with `recvmsg`, which
    /// takes the descriptor passed with it.
    fn open_ring(&mut self, codec: &mut Codec, deadline: Instant) -> Result<RingAnswer, Failure> {
        use std::io::IoSliceMut;
        use std::os::fd::{FromRawFd, OwnedFd};

        use nix::sys::socket::{ControlMessageOwned, recvmsg};

        codec.queue(&[Request::OpenRing]).map_err(|err| Failure::Protocol(err.to_string()))?;
        // A few bytes into a socket whose every reply has been read: room is there.
        let sent = self.link.socket.send_with_flags(codec.unsent(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
        match sent {
            Ok(n) if n == codec.unsent().len() => codec.advance_sent(n),
            Ok(_) => return Err(Failure::Protocol("the socket took part of a six-byte frame".into())),
            Err(err) => return Err(Failure::Broken(err)),
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        let mut out = Vec::with_capacity(1);
        while !codec.progress(&mut out)? {
            let space = codec.recv_space();
            self.link.poll_until(PollFlags::POLLIN, deadline)?;
            let mut control = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let mut iov = [IoSliceMut::new(space)];
            let flags = MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT;
            let received = match recvmsg::<()>(self.link.socket.as_raw_fd(), &mut iov, Some(&mut control), flags) {
                Ok(received) => received,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(errno) => return Err(Failure::Broken(io::Error::from(errno))),
            };
            for message in received.cmsgs().map_err(|errno| Failure::Broken(io::Error::from(errno)))? {
                if let ControlMessageOwned::ScmRights(raw) = message {
                    // SAFETY: the kernel just gave us these descriptors; nobody else owns them.
                    fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
            let bytes = received.bytes;
            if bytes == 0 {
                return Err(Failure::closed());
            }
            codec.received(bytes);
        }
        match (out.pop(), <[OwnedFd; 1]>::try_from(fds)) {
            (Some(Response::RingOpened { ring_bytes }), Ok([memfd])) => {
                ClientRing::open(&memfd, ring_bytes).map(RingAnswer::Opened).map_err(Failure::Broken)
            }
            (Some(Response::RingOpened { .. }), Err(fds)) => {
                Err(Failure::Protocol(format!("the ring came with {} descriptors, not 1", fds.len())))
            }
            (Some(Response::Error(reply)), _) if reply.code == ErrorCode::UNKNOWN_REQUEST => Ok(RingAnswer::Unknown),
            (Some(Response::Error(_)), _) => Ok(RingAnswer::Declined),
            (other, _) => Err(Failure::Protocol(format!("open_ring was answered with {other:?}"))),
        }
    }

    /// Sleeps until replies come (or the deadline), and reads them.
    fn read_blocking(&mut self, codec: &mut Codec, deadline: Instant) -> Result<(), Failure> {
        self.link.poll_until(PollFlags::POLLIN, deadline)?;
        self.read_ready(codec)
    }

    /// One read of what `poll` said is there (nothing, if it was a false alarm).
    fn read_ready(&mut self, codec: &mut Codec) -> Result<(), Failure> {
        match self.link.recv_now(codec.recv_space())? {
            Some(0) => Err(Failure::closed()),
            Some(n) => {
                codec.received(n);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Waits until the socket can take more bytes or has bytes to read.
    ///
    /// # Returns
    /// Whether there is something to read (replies, EOF or an error).
    fn wait_for_room_or_replies(&self, deadline: Instant) -> Result<bool, Failure> {
        let events = self.link.poll_until(PollFlags::POLLIN | PollFlags::POLLOUT, deadline)?;
        Ok(events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hints_proto::{ErrorCode, ErrorReply};

    use super::*;
    use crate::fake_daemon::{FakeDaemon, db, script, simple_answer, test_config};

    fn client_for(socket: &Path) -> Client {
        Client::new(test_config(socket))
    }

    #[test]
    fn no_connection_is_made_until_the_first_call_and_then_it_is_kept() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer_all(simple_answer);
        })]);
        let mut client = client_for(daemon.socket());
        assert!(!client.is_connected());
        client.ping().unwrap();
        assert_eq!(client.daemon_version(), Some("fake"));
        assert_eq!(client.get(&db(), b"k").unwrap(), None);
        assert_eq!(client.put(&db(), b"k", b"v").unwrap(), Stamp { secs: 1_700_000_000, micros: 42 });
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_missing_daemon_is_unavailable_and_names_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("hintsd.sock");
        let err = client_for(&socket).ping().unwrap_err();
        assert_eq!(err, Error::Unavailable { socket: socket.clone(), reason: "No such file or directory".into() });
        assert!(err.to_string().contains(&socket.display().to_string()));
    }

    #[test]
    fn a_kept_connection_that_died_with_a_restart_is_resent_on_a_new_one() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, simple_answer);
                // The daemon restarts: this connection closes with the client none the wiser.
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(simple_answer);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(client.get(&db(), b"k").unwrap(), None, "resent on a new connection");
        drop(client);
        daemon.finish();
    }

    /// Answers the typed operations as a daemon would, with fixed values.
    fn typed_answer(request: &Request) -> Response {
        match request {
            Request::Ratelimit { .. } => {
                Response::Rate { rate: 2.5, over: true, key: "1h/per_mail/k".into(), written: false }
            }
            Request::Seen { .. } => Response::Seen { result: true, written: true },
            Request::Greylist { delay_secs, .. } => Response::Greylist { pass: false, retry_after_secs: *delay_secs },
            Request::SerializeTake { limit, .. } => Response::Slot { held: true, holders: *limit },
            Request::SerializeRelease { .. } => Response::Slot { held: false, holders: 0 },
            Request::Counter { delta, .. } => Response::Counter(*delta),
            Request::Lock { lease_ms, .. } => Response::Locked { lease_ms: *lease_ms },
            Request::Unlock { .. } => Response::Unlocked { held: true },
            Request::Snapshot { .. } => Response::Snapshotted { databases: 2, records: 9 },
            other => simple_answer(other),
        }
    }

    #[test]
    fn each_typed_operation_sends_its_request_and_maps_its_answer() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer_all(typed_answer);
        })]);
        let mut client = client_for(daemon.socket());
        let at = Some(Stamp { secs: 1_700_000_000, micros: 1 });
        let rate = client.ratelimit("10 / 1h / k", at).unwrap();
        assert_eq!(rate, RateOutcome { rate: 2.5, over: true, key: "1h/per_mail/k".into(), written: false });
        assert_eq!(client.seen("5m / key=k", None).unwrap(), SeenOutcome { result: true, written: true });
        let grey = client.greylist(&db(), b"t", Duration::from_secs(300), Duration::from_secs(3600), at).unwrap();
        assert_eq!(grey, GreylistOutcome { pass: false, retry_after_secs: 300 });
        assert_eq!(client.serialize_take(&db(), b"s", 3).unwrap(), SlotOutcome { held: true, holders: 3 });
        assert_eq!(client.serialize_release(&db(), b"s").unwrap(), SlotOutcome { held: false, holders: 0 });
        assert_eq!(client.counter(&db(), b"c", -3, Some(Duration::from_secs(60)), at).unwrap(), -3);
        assert_eq!(client.lock(&db(), Duration::from_micros(2_500)).unwrap(), Duration::from_millis(3));
        assert!(client.unlock(&db()).unwrap());
        assert_eq!(client.snapshot(None).unwrap(), (2, 9));
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_counter_on_a_kept_connection_that_died_is_not_resent() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, simple_answer);
                // The daemon restarts: the add that follows may or may not have applied.
            }),
            script(|peer| {
                peer.accept_hello();
                // Only the second add arrives here; the first was not sent again.
                peer.answer(1, |request| {
                    assert!(matches!(request, Request::Counter { delta: 2, .. }), "{request:?}");
                    typed_answer(request)
                });
                assert!(peer.request().is_none(), "a request came twice");
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let err = client.counter(&db(), b"c", 1, None, None).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(!client.is_connected());
        assert_eq!(client.counter(&db(), b"c", 2, None, None).unwrap(), 2, "the next call connects anew");
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_lease_out_of_range_is_refused_without_connecting() {
        let mut client = client_for(Path::new("/nonexistent/hintsd.sock"));
        for lease in [Duration::ZERO, Duration::from_secs(3600)] {
            let err = client.lock(&db(), lease).unwrap_err();
            assert!(matches!(&err, Error::BadRequest(reply) if reply.code == ErrorCode::BAD_ARGUMENT), "{err}");
        }
        let err = client.serialize_take(&db(), b"s", 0).unwrap_err();
        assert!(matches!(&err, Error::BadRequest(reply) if reply.code == ErrorCode::BAD_ARGUMENT), "{err}");
    }

    #[test]
    fn a_fresh_connection_that_breaks_is_not_resent() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            let _ = peer.request();
        })]);
        let err = client_for(daemon.socket()).ping().unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable { reason, .. } if reason == "the daemon closed the connection"),
            "{err}"
        );
        daemon.finish();
    }

    #[test]
    fn a_timeout_drops_the_connection_so_a_late_reply_is_never_read() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                let first = peer.request().unwrap();
                std::thread::sleep(Duration::from_millis(400));
                // Too late: the client has given up on this connection.
                peer.reply_late(first.id, Response::Value(None));
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(|_| Response::Pong);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        // Had the client waited past its 300 ms, it would have read the reply and succeeded.
        let err = client.get(&db(), b"k").unwrap_err();
        assert!(matches!(&err, Error::Unavailable { reason, .. } if reason == "no answer within 300ms"), "{err}");
        assert!(!client.is_connected());
        client.ping().unwrap();
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_daemon_that_predates_rings_is_reached_over_the_socket() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                let asked = peer.request().unwrap();
                assert_eq!(asked.request, Request::OpenRing);
                // What a daemon without rings does with an unknown request: answer, then close.
                let unknown = ErrorReply::new(ErrorCode::UNKNOWN_REQUEST, "unknown request 17");
                peer.reply(asked.id, Response::Error(unknown));
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer(2, |request| {
                    assert_eq!(request, &Request::Ping, "the client does not ask this daemon again");
                    Response::Pong
                });
            }),
        ]);
        let mut client = Client::new(test_config(daemon.socket()).with_ring(true));
        client.ping().unwrap();
        assert!(!client.is_on_ring());
        client.ping().unwrap();
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_daemon_that_declines_a_ring_keeps_the_connection_on_its_socket() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            let asked = peer.request().unwrap();
            peer.reply(asked.id, Response::Error(ErrorReply::new(ErrorCode::NOT_OFFERED, "ring_bytes = 0")));
            peer.answer(1, |_| Response::Pong);
        })]);
        let mut client = Client::new(test_config(daemon.socket()).with_ring(true));
        client.ping().unwrap();
        assert!(!client.is_on_ring());
        assert_eq!(client.connection_id(), Some(1), "one connection, kept");
        drop(client);
        daemon.finish();
    }

    #[test]
    fn asking_for_a_ring_ends_by_the_calls_deadline() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            // The hello takes most of the call's second, and the ring is declined after the
            // call's second is over: a client that gave the ring a second of its own would
            // take that answer and go on to send its ping.
            std::thread::sleep(Duration::from_millis(800));
            peer.accept_hello();
            let asked = peer.request().unwrap();
            std::thread::sleep(Duration::from_millis(700));
            peer.reply_late(asked.id, Response::Error(ErrorReply::new(ErrorCode::NOT_OFFERED, "late")));
            assert_eq!(peer.request(), None, "the client gave up at its deadline and sent nothing more");
        })]);
        let mut client = Client::new(test_config(daemon.socket()).with_ring(true).with_timeout(Duration::from_secs(1)));
        let err = client.ping().unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "an answer past the deadline is not waited for: {err}");
        daemon.finish();
    }

    #[test]
    fn a_forked_child_connects_anew_and_leaves_its_parents_connection_alone() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                // The parent's ping before the fork and after it, and nothing of the child's.
                peer.answer(2, |request| {
                    assert_eq!(request, &Request::Ping, "the child wrote to its parent's connection");
                    Response::Pong
                });
                assert!(peer.request().is_none());
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(simple_answer);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().unwrap();
        // SAFETY: the child only uses this client and then leaves with _exit, running no
        // destructor or atexit handler of the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                client.get(&db(), b"k").is_ok() && client.is_connected()
            }));
            // SAFETY: _exit ends the child at once, as a forked child of a threaded process must.
            unsafe { libc::_exit(if worked.unwrap_or(false) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above; `status` is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child's call failed: {status}");
        // The parent's connection was not written to by the child, so it is still in step.
        client.ping().unwrap();
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_refused_hello_is_refused() {
        let reply = ErrorReply::new(ErrorCode::NOT_ALLOWED, "uid 1000 is not allowed");
        let refusal = reply.clone();
        let daemon = FakeDaemon::start(vec![script(move |peer| peer.refuse_hello(refusal))]);
        let mut client = client_for(daemon.socket());
        assert_eq!(client.ping().unwrap_err(), Error::Refused(reply));
        assert!(!client.is_connected());
        daemon.finish();
    }

    #[test]
    fn an_error_reply_is_the_call_error_and_the_connection_is_kept() {
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer(1, |_| Response::Error(ErrorReply::new(ErrorCode::BUSY, "full")));
            peer.answer_all(simple_answer);
        })]);
        let mut client = client_for(daemon.socket());
        assert_eq!(client.ping().unwrap_err(), Error::Daemon(ErrorReply::new(ErrorCode::BUSY, "full")));
        assert!(client.is_connected());
        client.ping().unwrap();
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_connection_the_daemon_says_it_closes_is_not_kept() {
        let daemon = FakeDaemon::start(vec![
            script(|peer| {
                peer.accept_hello();
                peer.answer(1, |_| Response::Error(ErrorReply::new(ErrorCode::UNKNOWN_REQUEST, "what")));
            }),
            script(|peer| {
                peer.accept_hello();
                peer.answer_all(simple_answer);
            }),
        ]);
        let mut client = client_for(daemon.socket());
        client.ping().unwrap_err();
        assert!(!client.is_connected());
        client.ping().unwrap();
        drop(client);
        daemon.finish();
    }

    #[test]
    fn a_bad_request_is_refused_without_connecting() {
        let mut client = client_for(Path::new("/nonexistent/hintsd.sock"));
        let err = client.get(&db(), b"").unwrap_err();
        assert!(matches!(err, Error::BadRequest(reply) if reply.code == ErrorCode::BAD_KEY));
    }

    #[test]
    fn a_pipeline_deeper_than_the_limit_goes_in_chunks_and_keeps_order() {
        let depth = PIPELINE_DEPTH_MAX * 2 + 3;
        let daemon = FakeDaemon::start(vec![script(|peer| {
            peer.accept_hello();
            peer.answer_all(|request| match request {
                Request::Tidy { older_than_secs, .. } => Response::Tidied { removed: *older_than_secs },
                _ => Response::Pong,
            });
        })]);
        let mut client = client_for(daemon.socket());
        let requests: Vec<Request> = (0..depth as u64).map(|n| ops::tidy(&db(), Duration::from_secs(n))).collect();
        let responses = client.pipeline(&requests).unwrap();
        let want: Vec<Response> = (0..depth as u64).map(|removed| Response::Tidied { removed }).collect();
        assert_eq!(responses, want);
        // Replies handed over as they are read come in the same order, on the same connection.
        let mut seen = Vec::new();
        client.pipeline_each(&requests, |reply| seen.push(reply.into_owned())).unwrap();
        assert_eq!(seen, want);
        drop(client);
        daemon.finish();
    }

    #[test]
    fn large_requests_and_large_replies_pipelined_do_not_deadlock() {
        let value = vec![b'v'; 200 * 1024];
        let big = value.clone();
        let daemon = FakeDaemon::start(vec![script(move |peer| {
            peer.accept_hello();
            // A daemon that answers each request before it reads the next one.
            peer.answer_all(move |request| {
                let key = match request {
                    Request::Put { key, .. } => key.clone(),
                    _ => b"?".to_vec(),
                };
                Response::Value(Some(Record { key, value: big.clone(), stamp: Stamp::default() }))
            });
        })]);
        let mut client = Client::new(test_config(daemon.socket()).with_timeout(Duration::from_secs(10)));
        let requests: Vec<Request> =
            (0..64u32).map(|n| ops::put(&db(), &n.to_be_bytes(), &value).into_owned()).collect();
        let responses = client.pipeline(&requests).unwrap();
        assert_eq!(responses.len(), 64);
        drop(client);
        daemon.finish();
    }
}
