//! One client connection: the hello, then batches of pipelined requests answered in order.
//!
//! A connection's task runs on the arbiter (thread) of the database it uses, so a request
//! costs no thread hand-off: the socket's own wake-up reaches the thread that holds the
//! database's actor, the actor answers on that thread, and the reply is written from it. A
//! connection starts on the tokio pool (accept and hello) and moves to the arbiter of the first
//! database it asks for; when a batch starts with a request for a database on another arbiter,
//! it moves again. Requests for other databases within a batch are sent across threads.
//!
//! Bad input (an oversized, malformed or unknown frame) gets an error reply and the connection
//! is closed; nothing else is affected. A half-sent frame times out; an idle connection between
//! frames may wait as long as it likes, since MTA workers keep theirs open.

use std::os::fd::OwnedFd;
use std::time::Duration;

use actix::Addr;
use actix::MailboxError;
use futures::future::join_all;
use hints_proto::frame::{FrameError, encode_frame, split_frame};
use hints_proto::limits::{FRAME_PREFIX_BYTES, PIPELINE_DEPTH_MAX};
use hints_proto::message::{CONNECTION_ERROR_ID, RequestRefusal};
use hints_proto::{
    DbName, ErrorCode, ErrorReply, Hello, HelloReply, PROTOCOL_VERSION, Request, RequestEnvelope, Response,
    ResponseEnvelope,
};
use interprocess::os::unix::uds_local_socket::tokio::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{Apply, ConnId, ConnectionClosed, DbActor};
use crate::registry::{DbHandle, Registry};

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

/// What every connection shares.
#[derive(Clone, Debug)]
pub struct ConnectionContext {
    pub registry: Registry,
    /// Move each connection to its database's arbiter (the default); off, connections stay
    /// on the tokio pool, which exists to measure what the move saves.
    pub follow_database: bool,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

/// Who is on the other end, for logs.
#[derive(Clone, Debug)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub client_name: String,
}

/// Databases where this connection holds slots or a session; on drop (the connection's end,
/// however it ends) each is told, so a crashed worker leaves nothing taken.
#[derive(Debug)]
struct Holdings {
    conn: ConnId,
    dbs: Vec<(DbName, Addr<DbActor>)>,
}

impl Holdings {
    fn note(&mut self, db: DbName, addr: Addr<DbActor>) {
        if !self.dbs.iter().any(|(held, _)| *held == db) {
            self.dbs.push((db, addr));
        }
    }
}

impl Drop for Holdings {
    fn drop(&mut self) {
        for (_, addr) in &self.dbs {
            // do_send ignores the mailbox bound; there is one such message per database held.
            addr.do_send(ConnectionClosed(self.conn));
        }
    }
}

/// A connection's state; it moves between threads whole.
#[derive(Debug)]
struct Connection {
    stream: Stream,
    peer: Peer,
    holdings: Holdings,
    /// Bytes read and not yet consumed start at `read_pos`.
    read_buf: Vec<u8>,
    read_pos: usize,
    write_buf: Vec<u8>,
    /// The arbiter this task runs on; `None` on the tokio pool.
    home: Option<usize>,
    /// A batch decoded on the previous thread, to answer first after a move.
    carried: Option<Batch>,
    /// Held for the connection's life: it is the connection limit.
    _permit: OwnedSemaphorePermit,
}

/// The requests of one read, and the refusal that ends the connection, if any.
#[derive(Debug, Default)]
struct Batch {
    requests: Vec<RequestEnvelope>,
    refusal: Option<RequestRefusal>,
}

/// What waiting for a whole frame gave.
enum Fill {
    Ready,
    /// The peer closed between frames.
    Closed,
    /// The daemon is stopping and this connection is between frames.
    Stopping,
    /// The frame can never be read (oversized, truncated, too slow); reply and close.
    Broken(RequestRefusal),
}

/// Serves a new connection from its hello to its close, moving between threads as needed.
pub async fn serve_new(stream: Stream, peer: Peer, conn: ConnId, permit: OwnedSemaphorePermit, ctx: ConnectionContext) {
    let mut conn = Connection {
        stream,
        peer,
        holdings: Holdings { conn, dbs: Vec::new() },
        read_buf: Vec::with_capacity(READ_CHUNK_BYTES),
        read_pos: 0,
        write_buf: Vec::new(),
        home: None,
        carried: None,
        _permit: permit,
    };
    if conn.hello(&ctx).await {
        conn.serve(ctx).await;
    }
}

impl Connection {
    /// Reads and answers the hello; false when the connection is to close.
    async fn hello(&mut self, ctx: &ConnectionContext) -> bool {
        let fill = tokio::time::timeout(HELLO_WAIT_MAX, self.fill(ctx)).await;
        let reply = match fill {
            Err(_) => Err(ErrorReply::new(ErrorCode::HELLO_EXPECTED, "no hello within the wait")),
            Ok(Fill::Closed | Fill::Stopping) => return false,
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

    /// Answers batches until the peer closes, the daemon stops, or the task moves thread.
    async fn serve(mut self, ctx: ConnectionContext) {
        loop {
            let batch = match self.carried.take() {
                Some(batch) => batch,
                None => match self.fill(&ctx).await {
                    Fill::Ready => self.take_batch(),
                    Fill::Closed | Fill::Stopping => return,
                    Fill::Broken(refusal) => Batch { requests: Vec::new(), refusal: Some(refusal) },
                },
            };
            if let Some(target) = self.move_target(&ctx, &batch) {
                self.carried = Some(batch);
                move_to(self, target, ctx);
                return;
            }
            let conn_id = self.holdings.conn;
            let answers = join_all(batch.requests.into_iter().map(|envelope| {
                let registry = &ctx.registry;
                async move {
                    let (response, held) = answer(registry, envelope.request, conn_id).await;
                    (ResponseEnvelope { id: envelope.id, response }, held)
                }
            }))
            .await;
            self.write_buf.clear();
            let mut responses = Vec::with_capacity(answers.len());
            for (response, held) in answers {
                if let Some((db, addr)) = held {
                    self.holdings.note(db, addr);
                }
                responses.push(response);
            }
            for response in &responses {
                if let Err(err) = encode_frame(response, &mut self.write_buf) {
                    let reply = ErrorReply::new(ErrorCode::INTERNAL, format!("reply did not fit a frame: {err}"));
                    let envelope = ResponseEnvelope { id: response.id, response: Response::Error(reply) };
                    encode_frame(&envelope, &mut self.write_buf).expect("an error reply fits a frame");
                }
            }
            if let Some(refusal) = &batch.refusal {
                tracing::info!(peer = ?self.peer, error = %refusal.reply, "closing connection after bad input");
                let envelope = ResponseEnvelope { id: refusal.id, response: Response::Error(refusal.reply.clone()) };
                encode_frame(&envelope, &mut self.write_buf).expect("an error reply fits a frame");
            }
            if !self.flush().await || batch.refusal.is_some() {
                return;
            }
        }
    }

    /// The arbiter to move to before answering `batch`, if it is not this one.
    fn move_target(&self, ctx: &ConnectionContext, batch: &Batch) -> Option<DbHandle> {
        if !ctx.follow_database {
            return None;
        }
        let db = batch.requests.first()?.request.target_db()?;
        let handle = ctx.registry.lookup(&db)?;
        (Some(handle.arbiter_id) != self.home).then_some(handle)
    }

    /// Decodes up to [`PIPELINE_DEPTH_MAX`] whole frames from the read buffer.
    fn take_batch(&mut self) -> Batch {
        let mut batch = Batch::default();
        while batch.requests.len() < PIPELINE_DEPTH_MAX {
            match split_frame(self.unread()) {
                Ok(Some((body, used))) => {
                    let decoded = RequestEnvelope::decode(body);
                    self.read_pos += used;
                    match decoded {
                        Ok(envelope) => batch.requests.push(envelope),
                        Err(refusal) => {
                            batch.refusal = Some(refusal);
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    batch.refusal = Some(frame_refusal(&err));
                    break;
                }
            }
        }
        batch
    }

    fn unread(&self) -> &[u8] {
        &self.read_buf[self.read_pos..]
    }

    /// Waits until the read buffer holds a whole frame.
    async fn fill(&mut self, ctx: &ConnectionContext) -> Fill {
        loop {
            let wanted = match split_frame(self.unread()) {
                Ok(Some(_)) => return Fill::Ready,
                Err(err) => return Fill::Broken(frame_refusal(&err)),
                Ok(None) => match self.unread().first_chunk::<FRAME_PREFIX_BYTES>() {
                    Some(prefix) => FRAME_PREFIX_BYTES + u32::from_le_bytes(*prefix) as usize,
                    None => FRAME_PREFIX_BYTES,
                },
            };
            self.read_buf.drain(..self.read_pos);
            self.read_pos = 0;
            let have = self.read_buf.len();
            self.read_buf.reserve(wanted.saturating_sub(have).max(READ_CHUNK_BYTES));
            let between_frames = have == 0;
            let read = if between_frames {
                tokio::select! {
                    biased;
                    read = self.stream.read_buf(&mut self.read_buf) => read,
                    () = ctx.shutdown.cancelled() => return Fill::Stopping,
                }
            } else {
                match tokio::time::timeout(FRAME_WAIT_MAX, self.stream.read_buf(&mut self.read_buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        return Fill::Broken(refusal(
                            ErrorCode::BAD_FRAME,
                            "the rest of the frame did not arrive in time",
                        ));
                    }
                }
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
        match tokio::time::timeout(WRITE_WAIT_MAX, self.stream.write_all(&self.write_buf)).await {
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

fn refusal(code: ErrorCode, message: &str) -> RequestRefusal {
    RequestRefusal { id: CONNECTION_ERROR_ID, reply: ErrorReply::new(code, message) }
}

fn frame_refusal(err: &FrameError) -> RequestRefusal {
    let code = match err {
        FrameError::TooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
        FrameError::Decode(_) | FrameError::TrailingBytes { .. } | FrameError::Encode(_) => ErrorCode::BAD_FRAME,
    };
    refusal(code, &err.to_string())
}

/// Hands the connection to the arbiter of `target`; the socket is taken off this thread's
/// reactor and put on the target's.
fn move_to(conn: Connection, target: DbHandle, ctx: ConnectionContext) {
    let Connection { stream, peer, holdings, read_buf, read_pos, write_buf, carried, _permit, .. } = conn;
    let fd = match OwnedFd::try_from(stream) {
        Ok(fd) => fd,
        Err(err) => {
            tracing::warn!(peer = ?peer, error = %err, "could not move connection; closing it");
            return;
        }
    };
    let arbiter_id = target.arbiter_id;
    let tracker = ctx.tracker.clone();
    let resumed = tracker.track_future(async move {
        let stream = match Stream::try_from(fd) {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(peer = ?peer, error = %err, "could not resume moved connection");
                return;
            }
        };
        let conn = Connection {
            stream,
            peer,
            holdings,
            read_buf,
            read_pos,
            write_buf,
            home: Some(arbiter_id),
            carried,
            _permit,
        };
        conn.serve(ctx).await;
    });
    if !target.arbiter.spawn(resumed) {
        tracing::warn!("database arbiter has stopped; connection closed");
    }
}

/// Answers one request, through its database's actor when it has one; also gives the
/// database the connection now holds something in (a slot, a session), if any.
pub(crate) async fn answer(
    registry: &Registry,
    request: Request,
    conn: ConnId,
) -> (Response, Option<(DbName, Addr<DbActor>)>) {
    match &request {
        Request::Ping => return (Response::Pong, None),
        Request::Stats { db: None } => return (all_stats(registry).await, None),
        Request::Snapshot { db: None } => return (all_snapshots(registry).await, None),
        Request::Stats { db: Some(db) } | Request::Snapshot { db: Some(db) } if registry.lookup(db).is_none() => {
            let reply = ErrorReply::new(ErrorCode::NOT_FOUND, format!("database {db} is not running"));
            return (Response::Error(reply), None);
        }
        _ => {}
    }
    let db = request.target_db().expect("every other request names a database");
    let handle = match registry.open(&db).await {
        Ok(handle) => handle,
        Err(reply) => return (Response::Error(reply), None),
    };
    let holds = matches!(request, Request::SerializeTake { .. } | Request::Lock { .. });
    let held = holds.then(|| (db, handle.addr.clone()));
    (ask(&handle, request, conn).await, held)
}

async fn ask(handle: &DbHandle, request: Request, conn: ConnId) -> Response {
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
