//! One client connection: the hello, then batches of pipelined requests answered in order.
//!
//! A connection is greeted on the tokio pool and then moves to a lane (`lanes.rs`), a thread
//! it shares with other connections, so the socket's own wake-up is the only one a request
//! costs. It stays there, unless its client runs on the CPU of another lane (as a ring client
//! says, or as `/proc` says of a socket client) while its lane is not spinning for it: then it
//! follows its client there. Plain requests are applied right there, under their database's
//! lock (`direct.rs`); requests that need a database's actor (sessions, snapshots, stats, a
//! database not started yet) are sent to its mailbox.
//!
//! Bad input (an oversized, malformed or unknown frame) gets an error reply and the connection
//! is closed; nothing else is affected. A half-sent frame times out; an idle connection between
//! frames may wait as long as it likes, since MTA workers keep theirs open.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use actix::Addr;
use actix::MailboxError;
use futures::future::join_all;
use hints_proto::frame::{encode_frame, split_frame};
use hints_proto::limits::{FRAME_BYTES_MAX, FRAME_PREFIX_BYTES};
use hints_proto::message::{CONNECTION_ERROR_ID, RequestRefusal};
use hints_proto::{
    DbName, ErrorCode, ErrorReply, Hello, HelloReply, PROTOCOL_VERSION, Request, RequestEnvelope, RequestView,
    Response, ResponseEnvelope,
};
use interprocess::os::unix::uds_local_socket::tokio::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;

use crate::batch::{Batch, Frames, frame_refusal, reuse_vec};
use crate::db::{Apply, ConnId, DbActor};
use crate::direct::{self, Direct, LastFound, Replies};
use crate::lanes::{Lanes, Seat};
use crate::peer_cpu;
use crate::registry::{DbHandle, Registry};
use crate::ring_end::RingEnd;
use crate::socket::ConnSocket;
use crate::stop::{Stop, StopWatch};

/// How long a new connection has to send its hello.
pub const HELLO_WAIT_MAX: Duration = Duration::from_secs(5);
/// How long the rest of a frame may take once its first byte has arrived.
pub const FRAME_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long a reply may wait for the client to make room in its socket buffer.
pub const WRITE_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long a request may wait for room in a database's mailbox and for its answer: longer
/// than a request may wait behind an exclusive session (the actor answers those itself), so
/// this fires only for a database that has stopped answering.
pub const DB_REPLY_WAIT_MAX: Duration = Duration::from_secs(crate::db::SESSION_WAIT_MAX.as_secs() + 10);
/// Bytes read at a time when no frame length is known yet.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// The largest hello body accepted (a real one is under 80 bytes): nothing bigger is buffered
/// for a client that has not said who it is.
pub const HELLO_BYTES_MAX: usize = 256;
/// While a batch waits for its answers, the connection reads ahead at most this much (to see
/// the client close); past it, it stops reading until the batch is done.
const READ_AHEAD_BYTES_MAX: usize = FRAME_BYTES_MAX + FRAME_PREFIX_BYTES;
/// Reads a connection makes before it lets the other connections on its lane have a turn (and
/// the lane look for their input): a few, so that a busy lane still serves runs of requests
/// from one client while it is warm, but none waits long behind another.
const READS_PER_TURN: u32 = 2;
/// Reads in a row that find the client on another lane's CPU before the connection moves there:
/// enough that a client the scheduler moves for a moment does not drag its connection along.
const READS_APART_BEFORE_FOLLOWING: u32 = 8;
/// A socket client has no word to write its CPU into, so the daemon reads where it last ran
/// from `/proc` (`peer_cpu`), at a few system calls a time: once every this many reads.
const READS_PER_CPU_SAMPLE: u32 = 64;
/// Samples in a row that find a socket client on another lane's CPU before its connection
/// moves there.
const SAMPLES_APART_BEFORE_FOLLOWING: u32 = 2;
/// Requests a connection keeps room for between batches (more is given back after a batch).
const REQUESTS_KEPT: usize = 16;
/// Buffers grown past this by a large batch are given back after it.
const BUFFER_KEEP_BYTES: usize = 64 * 1024;

/// What every connection shares.
#[derive(Clone, Debug)]
pub struct ConnectionContext {
    pub registry: Registry,
    /// The threads connections move to after their hello (the default); `None` keeps them on
    /// the tokio pool, which exists to measure what the move saves.
    pub lanes: Option<Lanes>,
    /// The daemon's stop: a connection watches it with every wait for a request, and reads
    /// it between frames.
    pub stop: Stop,
    pub tracker: TaskTracker,
    /// Bytes each way of the shared-memory ring a client may ask for (`OpenRing`); 0: none.
    pub ring_bytes: usize,
}

/// Who is on the other end, for logs.
#[derive(Clone, Debug)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub client_name: String,
}

/// Databases this connection has sent requests to; on drop (the connection's end, however it
/// ends) each is told, so a crashed worker leaves no slot or session taken and no request
/// waiting behind a session.
#[derive(Debug)]
struct Holdings {
    conn: ConnId,
    dbs: Vec<(DbName, Addr<DbActor>)>,
}

impl Holdings {
    fn holds(&self, db: &str) -> bool {
        self.dbs.iter().any(|(held, _)| held.as_str() == db)
    }

    fn note(&mut self, db: DbName, addr: Addr<DbActor>) {
        match self.dbs.iter_mut().find(|(held, _)| *held == db) {
            // The database's actor may have been started anew since: tell the live one.
            Some((_, known)) => *known = addr,
            None => self.dbs.push((db, addr)),
        }
    }
}

impl Drop for Holdings {
    fn drop(&mut self) {
        for (db, addr) in &self.dbs {
            direct::connection_closed(db, addr, self.conn);
        }
    }
}

/// A connection's state; it moves between threads whole.
#[derive(Debug)]
struct Connection {
    socket: ConnSocket,
    peer: Peer,
    holdings: Holdings,
    /// The database this connection's last batch was applied to.
    last_found: LastFound,
    /// Bytes read and not yet consumed start at `read_pos`.
    read_buf: Vec<u8>,
    read_pos: usize,
    write_buf: Vec<u8>,
    /// The lane this task runs on (held for its count); `None` on the tokio pool.
    seat: Option<Seat>,
    /// Once the client asked for one, frames go through this ring instead of the socket.
    ring: Option<RingEnd>,
    /// Reads since this connection last gave its lane back.
    reads_since_yield: u32,
    /// Reads (on a ring) or samples (on the socket) in a row that found the client on another
    /// lane's CPU.
    reads_apart: u32,
    /// Reads since a socket client's CPU was last read from `/proc`.
    reads_since_cpu_sample: u32,
    /// When the frame being read must be whole, set when its first byte arrived.
    frame_deadline: Option<tokio::time::Instant>,
    /// Held for the connection's life: it is the connection limit. A ring takes it over, and
    /// keeps it while it lingers for its client after the connection's task ends.
    permit: Option<OwnedSemaphorePermit>,
    /// This connection's watch on the daemon's stop, waited on with every wait for a request.
    stop_watch: StopWatch,
    /// Always empty: kept for its allocation, which each batch's requests borrow in turn.
    requests: Vec<(u64, RequestView<'static>)>,
}

/// What waiting for a whole frame gave.
enum Fill {
    Ready,
    /// The peer closed between frames.
    Closed,
    /// The client runs on the CPU of another lane: move there (between frames).
    Follow(usize),
    /// The daemon is stopping and this connection is between frames.
    Stopping,
    /// The frame can never be read (oversized, truncated, too slow); reply and close.
    Broken(RequestRefusal),
}

/// Serves a new connection from its hello to its close, moving between threads as needed.
pub async fn serve_new(stream: Stream, peer: Peer, conn: ConnId, permit: OwnedSemaphorePermit, ctx: ConnectionContext) {
    let socket = match OwnedFd::try_from(stream).and_then(ConnSocket::new) {
        Ok(socket) => socket,
        Err(err) => {
            tracing::warn!(peer = ?peer, error = %err, "could not set up the connection's socket; closing it");
            return;
        }
    };
    let mut conn = Connection {
        socket,
        peer,
        holdings: Holdings { conn, dbs: Vec::new() },
        last_found: LastFound::default(),
        read_buf: Vec::with_capacity(READ_CHUNK_BYTES),
        read_pos: 0,
        write_buf: Vec::new(),
        seat: None,
        ring: None,
        reads_since_yield: 0,
        reads_apart: 0,
        reads_since_cpu_sample: 0,
        frame_deadline: None,
        permit: Some(permit),
        stop_watch: ctx.stop.watch(),
        requests: Vec::new(),
    };
    if !conn.hello(&ctx).await {
        return;
    }
    match ctx.lanes.clone() {
        Some(lanes) => move_to_lane(conn, &lanes, None, ctx),
        None => {
            conn.serve(ctx).await;
        }
    }
}

impl Connection {
    /// Reads and answers the hello; false when the connection is to close.
    async fn hello(&mut self, ctx: &ConnectionContext) -> bool {
        let fill = tokio::time::timeout(HELLO_WAIT_MAX, self.fill(ctx, HELLO_BYTES_MAX)).await;
        let reply = match fill {
            Err(_) => Err(ErrorReply::new(ErrorCode::HELLO_EXPECTED, "no hello within the wait")),
            // (`Follow` cannot come before the connection has a lane.)
            Ok(Fill::Closed | Fill::Stopping | Fill::Follow(_)) => return false,
            Ok(Fill::Broken(refusal)) => Err(refusal.reply),
            Ok(Fill::Ready) => {
                let (body, used) = match split_frame(self.unread()) {
                    Ok(Some(found)) => found,
                    _ => unreachable!("fill returned Ready without a whole frame"),
                };
                let hello = Hello::decode(body);
                self.read_pos += used;
                hello
            }
        };
        let (answer, accepted) = match reply {
            Ok(hello) => {
                self.peer.client_name = hello.client_name;
                let accepted = HelloReply::Accepted {
                    protocol_version: PROTOCOL_VERSION,
                    daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
                };
                (accepted, true)
            }
            Err(reply) => {
                tracing::info!(peer = ?self.peer, error = %reply, "refusing connection at hello");
                (HelloReply::Refused(reply), false)
            }
        };
        self.write_buf.clear();
        encode_frame(&answer, &mut self.write_buf).expect("a hello reply fits a frame");
        self.flush().await && accepted
    }

    /// Answers batches until the peer closes or the daemon stops; `Some` lane to move to.
    async fn serve(mut self, ctx: ConnectionContext) -> Option<(Connection, usize)> {
        loop {
            let refusal = match self.fill(&ctx, FRAME_BYTES_MAX).await {
                Fill::Ready => None,
                Fill::Follow(lane) => return Some((self, lane)),
                Fill::Closed | Fill::Stopping => return None,
                Fill::Broken(refusal) => Some(refusal),
            };
            // Every request of the batch is read (in place) and checked first, so that no
            // database's lock is held while frames are decoded: two lanes on one database
            // took turns spinning for it (perf, pipelined mix). Plain requests are then
            // applied here, in order, their replies encoded as they come. From the first that
            // cannot be (a session, a snapshot, a database not started yet), the rest of the
            // batch goes through the actors' mailboxes, so the batch keeps its order.
            self.write_buf.clear();
            let mut batch = Batch::new(&self.read_buf[self.read_pos..], refusal);
            let mut requests = reuse_vec(std::mem::take(&mut self.requests));
            requests.extend(&mut batch);
            let mut frames = requests.drain(..).peekable();
            let holdings = &mut self.holdings;
            let replies = &mut Frames(&mut self.write_buf);
            direct::apply_batch(&mut frames, holdings.conn, &mut self.last_found, replies, |db, addr| {
                // Remembered before its first request, so that however the connection ends,
                // the database is told.
                if !holdings.holds(db.as_str()) {
                    holdings.note(db.clone(), addr.clone());
                }
            });
            // (Checked first: collecting from the iterator moves it, request-sized items and all.)
            let through_mailbox: Vec<RequestEnvelope> = if frames.peek().is_none() {
                drop(frames);
                Vec::new()
            } else {
                frames.map(|(id, request)| RequestEnvelope { id, request: request.into_owned() }).collect()
            };
            self.requests = reuse_vec(requests);
            let Batch { used, taken, refusal, .. } = batch;
            self.read_pos += used;
            if let [only] = &through_mailbox[..]
                && only.request == Request::OpenRing
                && taken == 1
                && refusal.is_none()
            {
                if self.open_ring(&ctx, only.id).await {
                    continue;
                }
                return None;
            }
            if !through_mailbox.is_empty() {
                let answered = self.ask_actors(&ctx, through_mailbox).await?;
                let mut frames = Frames(&mut self.write_buf);
                for envelope in answered {
                    frames.reply(envelope.id, envelope.response);
                }
            }
            if let Some(refusal) = &refusal {
                tracing::info!(peer = ?self.peer, error = %refusal.reply, "closing connection after bad input");
                let envelope = ResponseEnvelope { id: refusal.id, response: Response::Error(refusal.reply.clone()) };
                encode_frame(&envelope, &mut self.write_buf).expect("an error reply fits a frame");
            }
            if !self.flush().await || refusal.is_some() {
                return None;
            }
            self.give_back_buffers();
        }
    }

    /// Answers an `OpenRing` that came alone: makes the ring and passes it with the reply, or
    /// says why not (the connection then goes on over the socket); false when the connection
    /// is to close.
    async fn open_ring(&mut self, ctx: &ConnectionContext, id: u64) -> bool {
        let refused = if self.ring.is_some() {
            Some((ErrorCode::BAD_ARGUMENT, "this connection's ring is open already".to_owned()))
        } else if ctx.ring_bytes == 0 {
            Some((ErrorCode::NOT_OFFERED, "this daemon offers no shared-memory rings (ring_bytes = 0)".to_owned()))
        } else if !self.unread().is_empty() {
            Some((ErrorCode::BAD_ARGUMENT, "open_ring must be the only request in flight".to_owned()))
        } else {
            match RingEnd::create(ctx.ring_bytes, &self.socket) {
                Ok((mut ring, memfd)) => {
                    let ring_bytes = u32::try_from(ctx.ring_bytes).expect("ring_bytes is bounded by the config");
                    let reply = ResponseEnvelope { id, response: Response::RingOpened { ring_bytes } };
                    self.write_buf.clear();
                    encode_frame(&reply, &mut self.write_buf).expect("a ring reply fits a frame");
                    if let Err(err) = self.socket.send_with_fds(&self.write_buf, &[memfd.as_raw_fd()]) {
                        tracing::debug!(peer = ?self.peer, error = %err, "could not pass the ring; closing");
                        return false;
                    }
                    tracing::debug!(peer = ?self.peer, ring_bytes, "connection moved to a shared-memory ring");
                    ring.hold(self.permit.take());
                    self.ring = Some(ring);
                    return true;
                }
                Err(err) => {
                    tracing::warn!(peer = ?self.peer, error = %err, "could not make a shared-memory ring");
                    Some((ErrorCode::INTERNAL, format!("could not make a ring: {err}")))
                }
            }
        };
        let (code, message) = refused.expect("every other case returned");
        let reply = ResponseEnvelope { id, response: Response::Error(ErrorReply::new(code, message)) };
        self.write_buf.clear();
        encode_frame(&reply, &mut self.write_buf).expect("an error reply fits a frame");
        self.flush().await
    }

    /// Sends `requests` to their databases' actors together and waits for every answer, in
    /// order; `None` when the client left meanwhile (its requests are then withdrawn).
    async fn ask_actors(
        &mut self,
        ctx: &ConnectionContext,
        requests: Vec<RequestEnvelope>,
    ) -> Option<Vec<ResponseEnvelope>> {
        // Every database the requests name is opened (started if new) and remembered first,
        // so that however the connection ends, each is told.
        let mut handles = Vec::with_capacity(requests.len());
        for envelope in &requests {
            let handle = match envelope.request.target_db() {
                Some(db) if !matches!(envelope.request, Request::Stats { .. } | Request::Snapshot { .. }) => {
                    ctx.registry.open(&db).await.ok().inspect(|handle| self.holdings.note(db, handle.addr.clone()))
                }
                _ => None,
            };
            handles.push(handle);
        }
        let conn_id = self.holdings.conn;
        let registry = &ctx.registry;
        let answers = join_all(requests.into_iter().zip(handles).map(|(envelope, handle)| async move {
            let response = answer_with(registry, envelope.request, handle, conn_id).await;
            ResponseEnvelope { id: envelope.id, response }
        }));
        // A request may wait behind another client's session: meanwhile, watch for this
        // client going away, so its requests are withdrawn rather than applied for nobody.
        tokio::select! {
            responses = answers => Some(responses),
            () = self.peer_gone() => {
                tracing::debug!(peer = ?self.peer, "client left while its requests waited; withdrawing them");
                None
            }
        }
    }

    /// Returns when the client has closed (or the socket failed), reading ahead what it sends
    /// meanwhile (up to [`READ_AHEAD_BYTES_MAX`]) for the next batch.
    async fn peer_gone(&mut self) {
        if let Some(ring) = &mut self.ring {
            self.socket.closed().await;
            ring.note_client_gone();
            return;
        }
        loop {
            if self.read_buf.len() - self.read_pos >= READ_AHEAD_BYTES_MAX {
                return std::future::pending().await;
            }
            self.read_buf.reserve(READ_CHUNK_BYTES);
            match self.socket.read_buf(&mut self.read_buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Lets go of buffer space a large batch needed.
    fn give_back_buffers(&mut self) {
        // A batch of the deepest pipeline's requests (some 14 KB) is not kept for every
        // connection that once sent one.
        if self.requests.capacity() > REQUESTS_KEPT {
            self.requests = Vec::new();
        }
        if self.write_buf.capacity() > BUFFER_KEEP_BYTES {
            self.write_buf = Vec::new();
        }
        if self.read_buf.capacity() > BUFFER_KEEP_BYTES && self.read_buf.len() - self.read_pos < BUFFER_KEEP_BYTES {
            self.read_buf.drain(..self.read_pos);
            self.read_pos = 0;
            self.read_buf.shrink_to(READ_CHUNK_BYTES.max(self.read_buf.len()));
        }
    }

    fn unread(&self) -> &[u8] {
        &self.read_buf[self.read_pos..]
    }

    /// Gives the lane back to its other connections every [`READS_PER_TURN`] reads, and alone
    /// on it, when tokio's budget runs out.
    ///
    /// A read that finds input never waits (a ring read never even goes to tokio), so a client
    /// that always has its next request ready by the time its reply is sent (it runs as soon
    /// as the reply wakes it, often on the lane's own core) would keep the lane to itself until
    /// tokio's budget ran out, and the lane's other clients would wait that long. Measured at
    /// 4 clients on 2 lanes (mix): a turn of 4 reads took p99 from about 280 µs to about 100
    /// on the ring, and from 150-170 µs to 43-49 on the socket (p99.9 from about 600 µs to
    /// 50-90); a turn of 2 took the medians of 4 runs further, from 43 to 35 µs on the ring
    /// and from 51 to 44 on the socket (ratelimit: 74 to 60, and 106 to 66), with throughput
    /// the same within the runs' noise; a yield after every read cost half the throughput.
    async fn take_turn(&mut self, ctx: &ConnectionContext) {
        self.reads_since_yield = self.reads_since_yield.saturating_add(1);
        match (&ctx.lanes, &self.seat) {
            (Some(lanes), Some(seat)) if self.reads_since_yield >= READS_PER_TURN && !lanes.is_alone(seat) => {
                self.reads_since_yield = 0;
                tokio::task::yield_now().await;
            }
            // A ring's reads do not go through tokio, so they draw on its budget here; a
            // socket's read draws on it as it polls the socket's readiness.
            _ if self.ring.is_some() => tokio::task::consume_budget().await,
            _ => {}
        }
    }

    /// The lane to move to, if the client has been found on another lane's CPU for
    /// [`READS_APART_BEFORE_FOLLOWING`] reads in a row (a ring client's own word, read on
    /// every read) or for [`SAMPLES_APART_BEFORE_FOLLOWING`] samples in a row (a socket
    /// client's last CPU, read from `/proc` every [`READS_PER_CPU_SAMPLE`] reads). Either is
    /// only a hint: a CPU no lane runs on is ignored, and a client that moves on every request
    /// moves its connection at most once every few reads.
    fn lane_to_follow(&mut self, ctx: &ConnectionContext) -> Option<usize> {
        let (Some(lanes), Some(seat)) = (&ctx.lanes, &self.seat) else { return None };
        let (client_cpu, needed) = match &self.ring {
            Some(ring) => (ring.client_cpu(), READS_APART_BEFORE_FOLLOWING),
            None => {
                self.reads_since_cpu_sample += 1;
                if self.reads_since_cpu_sample < READS_PER_CPU_SAMPLE {
                    return None;
                }
                self.reads_since_cpu_sample = 0;
                (self.peer.pid.and_then(peer_cpu::last_cpu), SAMPLES_APART_BEFORE_FOLLOWING)
            }
        };
        // SAFETY: no arguments; -1 on failure.
        let here = usize::try_from(unsafe { libc::sched_getcpu() }).ok();
        if let Some(here) = here {
            lanes.note_cpu(seat, here);
        }
        let elsewhere = |cpu: &usize| here.is_some_and(|here| here != *cpu);
        let lane = client_cpu.filter(elsewhere).and_then(|cpu| lanes.lane_on_cpu(seat, cpu));
        if lane.is_none() {
            self.reads_apart = 0;
            return None;
        }
        self.reads_apart += 1;
        if self.reads_apart < needed {
            return None;
        }
        self.reads_apart = 0;
        let on = if self.ring.is_some() { "ring" } else { "socket" };
        tracing::debug!(peer = ?self.peer, on, from = seat.lane(), to = ?lane, cpu = ?client_cpu, "connection follows its client to another lane");
        lane
    }

    /// Waits until the read buffer holds a whole frame of at most `body_bytes_max`; the rest
    /// of a frame must arrive within [`FRAME_WAIT_MAX`] of its first byte.
    async fn fill(&mut self, ctx: &ConnectionContext, body_bytes_max: usize) -> Fill {
        loop {
            let declared = self.unread().first_chunk::<FRAME_PREFIX_BYTES>().map(|p| u32::from_le_bytes(*p) as usize);
            if let Some(len) = declared.filter(|len| *len > body_bytes_max) {
                let message = format!("frame of {len} bytes is over the limit of {body_bytes_max} here");
                return Fill::Broken(refusal(ErrorCode::FRAME_TOO_LARGE, &message));
            }
            let wanted = match split_frame(self.unread()) {
                Ok(Some(_)) => {
                    self.frame_deadline = None;
                    return Fill::Ready;
                }
                Err(err) => return Fill::Broken(frame_refusal(&err)),
                Ok(None) => declared.map_or(FRAME_PREFIX_BYTES, |len| FRAME_PREFIX_BYTES + len),
            };
            self.read_buf.drain(..self.read_pos);
            self.read_pos = 0;
            let have = self.read_buf.len();
            self.read_buf.reserve(wanted.saturating_sub(have).max(READ_CHUNK_BYTES));
            let between_frames = have == 0;
            // A client that keeps sending would otherwise never see the daemon stop: its reads
            // are always ready first.
            if between_frames && ctx.stop.is_stopping() {
                return Fill::Stopping;
            }
            // Only a ring connection's lane spins: its client spins for the reply too, so while
            // both have a core neither sleeps. A socket client sleeps for its reply whatever the
            // lane does, and then a lane that spun on another core wakes the client's core for
            // every reply, where a lane that sleeps lets the connection follow its client to one
            // core they hand back and forth (ARCHITECTURE.md, "Threads").
            let spin = match (&ctx.lanes, &self.seat, &self.ring) {
                (Some(lanes), Some(seat), Some(_)) if between_frames => lanes.spin_budget(seat),
                _ => None,
            };
            if between_frames {
                // Reads while the lane spins are not reads apart: the count starts again.
                let follow = match spin {
                    None => self.lane_to_follow(ctx),
                    Some(_) => {
                        self.reads_apart = 0;
                        None
                    }
                };
                if let Some(lane) = follow {
                    return Fill::Follow(lane);
                }
            }
            self.take_turn(ctx).await;
            let read = match &mut self.ring {
                Some(ring) => {
                    ring.suggest_client_spin(spin);
                    let read = ring.read_buf(&mut self.read_buf, &self.socket, spin);
                    bounded(read, between_frames, &mut self.frame_deadline, &self.stop_watch).await
                }
                None => {
                    let read = self.socket.read_buf(&mut self.read_buf);
                    bounded(read, between_frames, &mut self.frame_deadline, &self.stop_watch).await
                }
            };
            let read = match read {
                Ok(read) => read,
                Err(stop) => return stop,
            };
            match read {
                Ok(0) if between_frames => return Fill::Closed,
                Ok(0) => return Fill::Broken(refusal(ErrorCode::BAD_FRAME, "connection closed inside a frame")),
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(peer = ?self.peer, error = %err, "read failed");
                    return Fill::Closed;
                }
            }
        }
    }

    /// Writes the write buffer out; false when the connection is to close.
    async fn flush(&mut self) -> bool {
        let written = match &mut self.ring {
            Some(ring) => within(WRITE_WAIT_MAX, ring.write_all(&self.write_buf, &self.socket)).await,
            // The replies almost always go in one `send`, with no future made for a wait.
            None => match self.socket.send_now(&self.write_buf) {
                Ok(sent) if sent == self.write_buf.len() => return true,
                Ok(sent) => within(WRITE_WAIT_MAX, self.socket.write_all(&self.write_buf[sent..])).await,
                Err(err) => Ok(Err(err)),
            },
        };
        match written {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::debug!(peer = ?self.peer, error = %err, "write failed");
                false
            }
            Err(_) => {
                tracing::info!(peer = ?self.peer, "client did not read its replies in time; closing");
                false
            }
        }
    }
}

/// Waits for a read: between frames until the daemon stops, inside a frame until the frame's
/// deadline ([`FRAME_WAIT_MAX`] from its first byte); `Err` says how the wait ended instead.
async fn bounded(
    read: impl Future<Output = std::io::Result<usize>>,
    between_frames: bool,
    frame_deadline: &mut Option<tokio::time::Instant>,
    stop_watch: &StopWatch,
) -> Result<std::io::Result<usize>, Fill> {
    if between_frames {
        return tokio::select! {
            biased;
            read = read => Ok(read),
            () = stop_watch.stopped() => Err(Fill::Stopping),
        };
    }
    let deadline = *frame_deadline.get_or_insert_with(|| tokio::time::Instant::now() + FRAME_WAIT_MAX);
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| Fill::Broken(refusal(ErrorCode::BAD_FRAME, "the rest of the frame did not arrive in time")))
}

/// `future` within `wait_max`, as `tokio::time::timeout`, but the timer is only armed if the
/// first poll does not finish it: a reply almost always goes out at once, and then costs no
/// clock reading and no timer.
async fn within<T>(wait_max: Duration, future: impl Future<Output = T>) -> Result<T, tokio::time::error::Elapsed> {
    let mut future = std::pin::pin!(future);
    if let std::task::Poll::Ready(done) = futures::poll!(&mut future) {
        return Ok(done);
    }
    tokio::time::timeout(wait_max, future).await
}

fn refusal(code: ErrorCode, message: &str) -> RequestRefusal {
    RequestRefusal { id: CONNECTION_ERROR_ID, reply: ErrorReply::new(code, message) }
}

/// Hands the connection to lane `index` (the least busy one if `None`): the socket is taken
/// off this thread's reactor and put on the lane's, with any bytes already read.
fn move_to_lane(mut conn: Connection, lanes: &Lanes, index: Option<usize>, ctx: ConnectionContext) {
    // Leaves the lane it was on (if any) before it takes a seat on the next.
    conn.seat = None;
    let fd = conn.socket.into_fd();
    let (lane, seat) = match index {
        Some(index) => lanes.seat_on(index),
        None => lanes.seat(),
    };
    let lane_index = seat.lane();
    let tracker = ctx.tracker.clone();
    let resumed = tracker.track_future(async move {
        let socket = match ConnSocket::new(fd) {
            Ok(socket) => socket,
            Err(err) => {
                tracing::warn!(peer = ?conn.peer, error = %err, "could not resume moved connection");
                return;
            }
        };
        let conn =
            Connection { socket, seat: Some(seat), reads_since_yield: 0, reads_apart: 0, frame_deadline: None, ..conn };
        if let Some((conn, index)) = conn.serve(ctx.clone()).await
            && let Some(lanes) = ctx.lanes.clone()
        {
            move_to_lane(conn, &lanes, Some(index), ctx);
        }
    });
    if lanes.has_ended(lane_index) {
        tracing::warn!(lane = lane_index, "connection lane has stopped; connection closed");
    }
    // On a lane that has ended the task is dropped at once, closing the connection.
    lane.spawn(resumed);
}

/// Answers one request through `handle`, its database opened beforehand, or as [`answer`]
/// does when there is none.
async fn answer_with(registry: &Registry, request: Request, handle: Option<DbHandle>, conn: ConnId) -> Response {
    match handle {
        Some(handle) => ask(&handle, request, conn).await,
        None => answer(registry, request, conn).await,
    }
}

/// Answers one request: directly when it may be (see `direct.rs`), else through its
/// database's actor.
pub(crate) async fn answer(registry: &Registry, request: Request, conn: ConnId) -> Response {
    match &request {
        Request::Ping => return Response::Pong,
        Request::OpenRing => {
            return Response::Error(ErrorReply::new(
                ErrorCode::BAD_ARGUMENT,
                "open_ring is answered only when sent alone on a binary connection with nothing else in flight",
            ));
        }
        Request::Stats { db: None } => return all_stats(registry).await,
        Request::Snapshot { db: None } => return all_snapshots(registry).await,
        Request::Stats { db: Some(db) } | Request::Snapshot { db: Some(db) } if registry.lookup(db).is_none() => {
            return Response::Error(ErrorReply::new(ErrorCode::NOT_FOUND, format!("database {db} is not running")));
        }
        _ => {}
    }
    let request = match direct::apply(request, conn) {
        Direct::Applied(response) => return response,
        Direct::Declined(request) => request,
    };
    let db = request.target_db().expect("every other request names a database");
    match registry.open(&db).await {
        Ok(handle) => ask(&handle, request, conn).await,
        Err(reply) => Response::Error(reply),
    }
}

async fn ask(handle: &DbHandle, request: Request, conn: ConnId) -> Response {
    // The database's bound on requests in flight (its mailbox capacity): wait for room, and
    // answer BUSY if none comes.
    let _room = match handle.in_flight.try_acquire() {
        Ok(room) => room,
        // Only a full queue pays for a timer.
        Err(_) => match tokio::time::timeout(DB_REPLY_WAIT_MAX, handle.in_flight.acquire()).await {
            Ok(Ok(room)) => room,
            _ => return Response::Error(ErrorReply::new(ErrorCode::BUSY, "the database's queue stayed full")),
        },
    };
    match handle.addr.send(Apply { request, conn }).timeout(DB_REPLY_WAIT_MAX).await {
        Ok(response) => response,
        Err(MailboxError::Timeout) => {
            Response::Error(ErrorReply::new(ErrorCode::BUSY, "the database did not answer in time"))
        }
        Err(MailboxError::Closed) => Response::Error(ErrorReply::new(
            ErrorCode::DATABASE_FAILED,
            "the database stopped while handling this request; it is being restarted",
        )),
    }
}

/// Asks every running database, in name order; the first error answers for all.
async fn ask_all(registry: &Registry, request_for: impl Fn(&DbName) -> Request) -> Result<Vec<Response>, Response> {
    let mut answers = Vec::new();
    for (db, handle) in registry.all() {
        match ask(&handle, request_for(&db), crate::db::DAEMON_CONN).await {
            Response::Error(reply) => return Err(Response::Error(reply)),
            answer => answers.push(answer),
        }
    }
    Ok(answers)
}

async fn all_stats(registry: &Registry) -> Response {
    let answers = match ask_all(registry, |_| Request::Stats { db: None }).await {
        Ok(answers) => answers,
        Err(error) => return error,
    };
    let mut all = Vec::new();
    for answer in answers {
        match answer {
            Response::Stats(stats) => all.extend(stats),
            other => unreachable!("a database answered stats with {}", other.kind()),
        }
    }
    Response::Stats(all)
}

async fn all_snapshots(registry: &Registry) -> Response {
    let answers = match ask_all(registry, |db| Request::Snapshot { db: Some(db.clone()) }).await {
        Ok(answers) => answers,
        Err(error) => return error,
    };
    let (mut databases, mut records) = (0u32, 0u64);
    for answer in answers {
        match answer {
            Response::Snapshotted { databases: n, records: r } => {
                databases += n;
                records += r;
            }
            other => unreachable!("a database answered snapshot with {}", other.kind()),
        }
    }
    Response::Snapshotted { databases, records }
}
