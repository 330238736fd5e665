//! `DbActor`: one actix actor per database, applying requests to its [`Store`] in mailbox
//! order. This module holds the actix messages and handlers, and the per-database state that
//! belongs to connections rather than to records: serialize slots and the exclusive session.
//! Record semantics live in `store.rs` and `hints/`.
//!
//! A panic while handling a request is caught here: the request gets a `DATABASE_FAILED`
//! error, the actor stops, and its actix `Supervisor` restarts it on the same address with the
//! database's last snapshot (or empty). Other databases never notice.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, ActorContext, ActorFutureExt, ActorState, AsyncContext, Context, Handler, Message, Supervised};
use hints_proto::message::{REQUEST_KINDS, REQUEST_VARIANTS};
use hints_proto::{
    DbName, DbStats, ErrorCode, ErrorReply, OpCount, RateReply, Record, RecordView, Request, RequestView, Response,
    ScanPage, Stamp,
};
use tokio::sync::oneshot;

use hints_proto::condition::{ConditionError, DbKeyBuffer, parse_ratelimit, parse_seen};
use hints_proto::exim::RecordError;

use crate::config::Config;
use crate::direct::{self, Replies};
use crate::hints;
use crate::snapshot::{self, LoadOutcome};
use crate::store::{CasResult, Entry, Store, Write};

/// Identifies a client connection for the state it holds (slots, a session).
pub type ConnId = u64;

/// The connection id of requests the daemon makes itself (snapshots, stats).
pub const DAEMON_CONN: ConnId = 0;
/// Requests waiting behind another connection's exclusive session, at most.
pub const SESSION_WAITERS_MAX: usize = 4096;
/// How long a request waits behind another connection's session before it is answered
/// `BUSY` and dropped (never applied later): the longest lease a client may take.
pub const SESSION_WAIT_MAX: Duration = Duration::from_millis(hints_proto::limits::LEASE_MS_MAX as u64);
/// Holders of one serialize key, at most (a limit above this is capped).
pub const SLOT_HOLDERS_MAX: u32 = 65_536;
/// Serialize keys held at once in one database, at most.
pub const SLOT_KEYS_MAX: usize = 65_536;

/// Applies one validated request to the database on behalf of connection `conn`.
#[derive(Debug, Message)]
#[rtype(result = "Response")]
pub struct Apply {
    pub request: Request,
    pub conn: ConnId,
}

/// A connection closed: free what it held here.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ConnectionClosed(pub ConnId);

/// A ratelimit record lives this many periods after its last event; its rate has then
/// decayed to e^-10 of what it was.
const RATELIMIT_PERIODS_KEPT: f64 = 10.0;

/// How often the actor sweeps one step of expired records.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// What a database is configured with.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// Records past this many are evicted, oldest first.
    pub records_max: u64,
    /// Records not written for this long are dropped by the sweep.
    pub max_age: Duration,
    /// Where this database's snapshot lives; `None` when snapshots are off.
    pub snapshot_dir: Option<PathBuf>,
    /// Serialize slots older than this are freed even if their holder is still connected.
    pub slot_age_max: Duration,
    /// Fault injection for tests: a request touching this key panics inside the handler.
    pub panic_key: Option<Vec<u8>>,
}

impl DbConfig {
    /// The settings of database `db` under the daemon's configuration.
    pub fn from_config(config: &Config, db: &DbName) -> DbConfig {
        let limits = config.limits_for(db);
        DbConfig {
            records_max: limits.records_max,
            max_age: limits.max_age,
            snapshot_dir: config.snapshot_dir.clone(),
            slot_age_max: config.serialize_max_age,
            panic_key: config.fault_panic_key.clone(),
        }
    }
}

/// Counters kept across restarts of the actor.
#[derive(Debug, Default)]
struct Counters {
    /// By request index ([`Request::index`]): counting is an array step on every request.
    ops: [u64; REQUEST_VARIANTS as usize],
}

impl Counters {
    /// Counts one request of wire index `index` ([`Request::index`]).
    fn count(&mut self, index: usize) {
        self.ops[index] += 1;
    }
}

/// One holder of a serialize slot.
#[derive(Debug, Clone, Copy)]
struct SlotHolder {
    conn: ConnId,
    taken_secs: u64,
}

/// A request waiting for another connection's session to end.
#[derive(Debug)]
struct Waiting {
    request: Request,
    conn: ConnId,
    reply: oneshot::Sender<Response>,
    since: std::time::Instant,
}

/// The exclusive session, if one is held.
#[derive(Debug, Default)]
struct Session {
    holder: Option<SessionHolder>,
    waiting: VecDeque<Waiting>,
    /// Tells a lease timer whether the session it was set for is still the current one.
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
struct SessionHolder {
    conn: ConnId,
    generation: u64,
}

/// One database: its records and the state connections hold in it. Its actor owns it, and
/// connection tasks on any thread apply plain requests to it directly, under its lock (see
/// `direct.rs`).
#[derive(Debug)]
pub struct Database {
    db: DbName,
    config: DbConfig,
    store: Store,
    counters: Counters,
    slots: BTreeMap<Vec<u8>, Vec<SlotHolder>>,
    session: Session,
    /// Where the next sweep step starts.
    sweep_cursor: Option<Box<[u8]>>,
    /// The snapshot write in flight, and who waits for the next one.
    snapshot: SnapshotState,
    /// A handler panicked and the actor is restarting: nothing is applied directly until then.
    failed: bool,
    /// Times the actor has restarted this database, so a late [`Failed`] for a state already
    /// replaced is ignored.
    restarts: u64,
}

/// The actor of one database. It shares its [`Database`] with connection tasks, which apply
/// plain requests directly under its lock; everything that needs the actor's context (sessions
/// and their timers, snapshots, the sweep, restarts) comes through its mailbox.
#[derive(Debug)]
pub struct DbActor {
    database: Arc<Mutex<Database>>,
}

impl DbActor {
    /// The actor of a database holding `store`.
    pub fn new(db: DbName, config: DbConfig, store: Store) -> DbActor {
        DbActor { database: Arc::new(Mutex::new(Database::new(db, config, store))) }
    }

    fn database(&self) -> MutexGuard<'_, Database> {
        lock(&self.database)
    }
}

/// Locks a database. A panic while it was held is caught inside the lock (`Database::guarded`),
/// so poisoning can only come from a bug outside a handler; the state is used as it is, as the
/// actor would after a caught panic.
pub fn lock(database: &Mutex<Database>) -> MutexGuard<'_, Database> {
    database.lock().unwrap_or_else(PoisonError::into_inner)
}

/// At most one snapshot write runs per database; requests that come while it runs wait for
/// the next image, which a later write takes once this one is done.
#[derive(Debug, Default)]
struct SnapshotState {
    writing: bool,
    waiting: Vec<oneshot::Sender<Response>>,
}

impl Database {
    /// A database holding `store`.
    pub fn new(db: DbName, config: DbConfig, store: Store) -> Database {
        Database {
            db,
            config,
            store,
            counters: Counters::default(),
            slots: BTreeMap::new(),
            session: Session::default(),
            sweep_cursor: None,
            snapshot: SnapshotState::default(),
            failed: false,
            restarts: 0,
        }
    }

    /// True when `conn`'s `request` may be applied by [`Database::apply_directly`] right now,
    /// without the actor: it touches only records and slots, and no other connection's
    /// session holds the database.
    pub fn applies_directly(&self, request: &RequestView<'_>, conn: ConnId) -> bool {
        !self.failed
            && match request {
                RequestView::Other(request) => is_plain(request) && !self.must_wait(request, conn),
                // Plain, and not one that skips the wait (stats, snapshot).
                RequestView::Get { .. }
                | RequestView::Put { .. }
                | RequestView::Ratelimit { .. }
                | RequestView::Seen { .. } => !self.held_by_other(conn),
            }
    }

    /// Applies a request that needs the actor's context (a session's timer) or none.
    fn apply(&mut self, request: Request, conn: ConnId, now: Stamp, ctx: &mut Context<DbActor>) -> Response {
        match request {
            Request::Lock { lease_ms, .. } => {
                self.counters.count(request.index());
                self.lock(conn, lease_ms, ctx)
            }
            Request::Unlock { .. } => {
                self.counters.count(request.index());
                self.unlock(conn, ctx)
            }
            plain => self.apply_plain(plain, conn, now),
        }
    }

    /// Applies a plain request (see [`is_plain`]).
    fn apply_plain(&mut self, request: Request, conn: ConnId, now: Stamp) -> Response {
        self.counters.count(request.index());
        match request {
            Request::Get { key, .. } => {
                let found = self.find(&key).map(|entry| (entry.value.to_vec(), entry.stamp));
                Response::Value(found.map(|(value, stamp)| Record { key, value, stamp }))
            }
            Request::Put { key, value, .. } => self.put(&key, &value, now),
            Request::Delete { key, .. } => Response::Deleted { existed: self.store.delete(&key) },
            Request::Scan { prefix, after, limit, .. } => {
                let page = self.store.scan(&prefix, after.as_deref(), limit);
                Response::Page(ScanPage {
                    records: page.items.iter().map(|item| record(&item.key, &item.entry)).collect(),
                    next: page.next.map(Vec::from),
                })
            }
            Request::Tidy { older_than_secs, .. } => {
                let cutoff = Stamp { secs: now.secs.saturating_sub(older_than_secs), micros: now.micros };
                Response::Tidied { removed: self.store.tidy(cutoff) }
            }
            Request::CompareAndSet { key, expected, value, .. } => {
                let result = self.store.compare_and_set(&key, expected, value.as_deref(), now);
                self.enforce_records_max();
                match result {
                    CasResult::Swapped(stamp) => Response::Swapped(stamp),
                    CasResult::Conflict(entry) => Response::Conflict(entry.map(|entry| record(&key, &entry))),
                }
            }
            Request::Stats { .. } => Response::Stats(vec![self.stats()]),
            Request::Counter { key, delta, expiry_secs, at, .. } => self.counter(&key, delta, expiry_secs, at, now),
            Request::SerializeTake { key, limit, .. } => self.take_slot(key, limit, conn, now),
            Request::SerializeRelease { key, .. } => self.release_slot(&key, conn),
            Request::Ping => Response::Pong,
            Request::Ratelimit { condition, at } => {
                let mut key = DbKeyBuffer::default();
                let answer = self.ratelimit(&condition, at.unwrap_or(now), now, &mut key);
                answer.map_or_else(|error| error, |reply| reply.to_response())
            }
            Request::Seen { condition, at } => self.seen(&condition, at.unwrap_or(now), now),
            Request::Greylist { key, delay_secs, expiry_secs, at, .. } => {
                self.greylist(&key, delay_secs, expiry_secs, at.unwrap_or(now), now)
            }
            Request::Lock { .. } | Request::Unlock { .. } | Request::Snapshot { .. } | Request::OpenRing => {
                unreachable!("sessions and snapshots are the actor's, rings the connection's (is_plain)")
            }
        }
    }

    /// Exim's ratelimit condition at `event` (the MTA's clock, or the daemon's): the answer,
    /// its record key written into `key`, or an error reply.
    fn ratelimit<'k>(
        &mut self,
        condition: &str,
        event: Stamp,
        now: Stamp,
        key: &'k mut DbKeyBuffer,
    ) -> Result<RateReply<'k>, Response> {
        let condition = parse_ratelimit(condition).map_err(|err| condition_error(&err))?;
        let key = condition.db_key_in(key);
        // The rate has decayed below 1/20 000 of itself ten periods on: forget the record then.
        let horizon_secs = (condition.period_secs * RATELIMIT_PERIODS_KEPT).ceil() as u64;
        let expires = NonZeroU64::new(event.secs.saturating_add(horizon_secs));
        let rate = |value: Option<&[u8]>| {
            let mut outcome = hints::ratelimit::apply(&condition, value, event)?;
            let write = outcome.write.take().map(|value| Write { value, expires });
            Ok((outcome, write))
        };
        match self.update_record(key.as_bytes(), now, rate) {
            Ok((outcome, written)) => Ok(RateReply { rate: outcome.rate, over: outcome.over, key, written }),
            Err(err) => Err(record_error(&err)),
        }
    }

    /// Exim's seen condition at `event`.
    fn seen(&mut self, condition: &str, event: Stamp, now: Stamp) -> Response {
        let condition = match parse_seen(condition) {
            Ok(condition) => condition,
            Err(err) => return condition_error(&err),
        };
        let check = |value: Option<&[u8]>| {
            let mut outcome = hints::seen::apply(&condition, value, event.secs)?;
            let write = outcome.write.take().map(|value| Write { value, expires: None });
            Ok((outcome, write))
        };
        match self.update_record(condition.key.as_bytes(), now, check) {
            Ok((outcome, written)) => Response::Seen { result: outcome.result, written },
            Err(err) => record_error(&err),
        }
    }

    /// A greylist triplet's attempt at `event`.
    fn greylist(&mut self, key: &[u8], delay_secs: u64, expiry_secs: u64, event: Stamp, now: Stamp) -> Response {
        let attempt = |value: Option<&[u8]>| {
            let mut outcome = hints::greylist::apply(value, delay_secs, expiry_secs, event.secs)?;
            let write =
                Write { value: std::mem::take(&mut outcome.write), expires: NonZeroU64::new(outcome.expires_at) };
            Ok((outcome, Some(write)))
        };
        match self.update_record(key, now, attempt) {
            Ok((outcome, _)) => Response::Greylist { pass: outcome.pass, retry_after_secs: outcome.retry_after_secs },
            Err(err) => record_error(&err),
        }
    }

    /// Runs a record operation on the record under `key` and stores what it says to write,
    /// with one search of the store when the record exists; the operation's result, and
    /// whether it wrote. A stored record that fails its codec is logged, dropped and treated
    /// as absent, never trusted (as Exim deletes a record of the wrong size).
    fn update_record<T>(
        &mut self,
        key: &[u8],
        now: Stamp,
        operation: impl Fn(Option<&[u8]>) -> Result<(T, Option<Write>), RecordError>,
    ) -> Result<(T, bool), RecordError> {
        let updated = match self.store.read_modify_write(key, now, &operation) {
            Err(err) if self.store.get(key).is_some() => {
                tracing::warn!(db = %self.db, key = %String::from_utf8_lossy(key), error = %err, "dropping a damaged record");
                self.store.delete(key);
                self.store.read_modify_write(key, now, &operation)
            }
            updated => updated,
        };
        let (result, stamp) = updated?;
        if stamp.is_some() {
            self.enforce_records_max();
        }
        Ok((result, stamp.is_some()))
    }

    fn counter(&mut self, key: &[u8], delta: i64, expiry_secs: Option<u64>, at: Option<Stamp>, now: Stamp) -> Response {
        let event_secs = at.unwrap_or(now).secs;
        let live = self.store.get(key).filter(|entry| entry.expires.is_none_or(|deadline| deadline.get() > event_secs));
        let (current, expires) = match live {
            Some(entry) => match std::str::from_utf8(&entry.value).ok().and_then(|text| text.parse::<i64>().ok()) {
                Some(value) => (value, entry.expires),
                None => {
                    return Response::Error(ErrorReply::new(
                        ErrorCode::BAD_ARGUMENT,
                        "the record under this key is not a counter (a decimal 64-bit integer)",
                    ));
                }
            },
            None => (0, expiry_secs.and_then(|secs| NonZeroU64::new(event_secs.saturating_add(secs)))),
        };
        let Some(next) = current.checked_add(delta) else {
            return Response::Error(ErrorReply::new(
                ErrorCode::BAD_ARGUMENT,
                format!("adding {delta} to {current} overflows a 64-bit counter"),
            ));
        };
        self.store.put_with_expiry(key, next.to_string().as_bytes(), now, expires);
        self.enforce_records_max();
        Response::Counter(next)
    }

    fn take_slot(&mut self, key: Vec<u8>, limit: u32, conn: ConnId, now: Stamp) -> Response {
        let age_max = self.config.slot_age_max.as_secs();
        if !self.slots.contains_key(&key) && self.slots.len() >= SLOT_KEYS_MAX {
            self.slots.retain(|_, holders| {
                holders.retain(|holder| now.secs.saturating_sub(holder.taken_secs) < age_max);
                !holders.is_empty()
            });
            if self.slots.len() >= SLOT_KEYS_MAX {
                return Response::Error(ErrorReply::new(
                    ErrorCode::BUSY,
                    format!("{SLOT_KEYS_MAX} serialize keys are held in this database"),
                ));
            }
        }
        let holders = self.slots.entry(key).or_default();
        holders.retain(|holder| now.secs.saturating_sub(holder.taken_secs) < age_max);
        let limit = limit.min(SLOT_HOLDERS_MAX) as usize;
        let held = holders.iter().any(|holder| holder.conn == conn);
        if !held && holders.len() < limit {
            holders.push(SlotHolder { conn, taken_secs: now.secs });
            return Response::Slot { held: true, holders: holders.len() as u32 };
        }
        Response::Slot { held, holders: holders.len() as u32 }
    }

    fn release_slot(&mut self, key: &[u8], conn: ConnId) -> Response {
        let Some(holders) = self.slots.get_mut(key) else {
            return Response::Slot { held: false, holders: 0 };
        };
        holders.retain(|holder| holder.conn != conn);
        let holders_left = holders.len() as u32;
        if holders_left == 0 {
            self.slots.remove(key);
        }
        Response::Slot { held: false, holders: holders_left }
    }

    fn lock(&mut self, conn: ConnId, lease_ms: u32, ctx: &mut Context<DbActor>) -> Response {
        self.session.generation += 1;
        let generation = self.session.generation;
        self.session.holder = Some(SessionHolder { conn, generation });
        ctx.run_later(Duration::from_millis(u64::from(lease_ms)), move |actor, ctx| {
            let mut database = actor.database();
            if database.session.holder.is_some_and(|holder| holder.generation == generation) {
                tracing::info!(db = %database.db, conn, "exclusive session lease ended");
                database.end_session(ctx);
            }
        });
        Response::Locked { lease_ms }
    }

    fn unlock(&mut self, conn: ConnId, ctx: &mut Context<DbActor>) -> Response {
        let held = self.session.holder.is_some_and(|holder| holder.conn == conn);
        if held {
            self.end_session(ctx);
        }
        Response::Unlocked { held }
    }

    /// Ends the session and answers the requests that waited, in order, until one of them
    /// takes a new session.
    fn end_session(&mut self, ctx: &mut Context<DbActor>) {
        self.session.holder = None;
        self.answer_waiters(ctx);
    }

    /// Answers waiting requests in order while they need not wait: all of them when no session
    /// is held, and a new holder's own requests that queued behind its `Lock`. Stops at the
    /// first that must still wait, or if a request made the actor stop (its answers would be
    /// lost with the restart).
    fn answer_waiters(&mut self, ctx: &mut Context<DbActor>) {
        while let Some(next) = self.session.waiting.front() {
            if self.must_wait(&next.request, next.conn) || ctx.state() != ActorState::Running {
                break;
            }
            let waiting = self.session.waiting.pop_front().expect("checked above");
            let response = self.apply_guarded(waiting.request, waiting.conn, ctx);
            let _ = waiting.reply.send(response);
        }
    }

    /// Answers `BUSY` to requests that have waited [`SESSION_WAIT_MAX`] behind a session, and
    /// drops them: a request answered `BUSY` is never applied.
    fn give_up_on_old_waiters(&mut self) {
        while self.session.waiting.front().is_some_and(|waiting| waiting.since.elapsed() >= SESSION_WAIT_MAX) {
            let waiting = self.session.waiting.pop_front().expect("checked above");
            let reply = ErrorReply::new(ErrorCode::BUSY, "waited too long behind another client's exclusive session");
            let _ = waiting.reply.send(Response::Error(reply));
        }
    }

    /// True when `conn`'s request must wait for another connection's session.
    fn must_wait(&self, request: &Request, conn: ConnId) -> bool {
        self.held_by_other(conn) && !matches!(request, Request::Stats { .. } | Request::Snapshot { .. })
    }

    /// True when another connection's session holds the database against `conn`.
    fn held_by_other(&self, conn: ConnId) -> bool {
        self.session.holder.is_some_and(|holder| holder.conn != conn) && conn != DAEMON_CONN
    }

    /// Asks for a snapshot: the answer comes when a file holding at least everything written
    /// before this request is in place. One write runs at a time per database; requests that
    /// arrive meanwhile share the next one, so the store is copied at most once per write.
    fn snapshot(&mut self, ctx: &mut Context<DbActor>) -> actix::Response<Response> {
        if self.config.snapshot_dir.is_none() {
            return actix::Response::reply(Response::Error(ErrorReply::new(
                ErrorCode::BAD_ARGUMENT,
                "snapshots are off in this daemon (--no-snapshot)",
            )));
        }
        let (reply, answer) = oneshot::channel();
        self.snapshot.waiting.push(reply);
        if !self.snapshot.writing {
            self.start_snapshot(ctx);
        }
        actix::Response::fut(async move {
            answer.await.unwrap_or_else(|_| {
                Response::Error(ErrorReply::new(
                    ErrorCode::DATABASE_FAILED,
                    "the database restarted during the snapshot",
                ))
            })
        })
    }

    /// Copies the store into an image here (the only part that holds the actor) and writes it
    /// from the blocking pool; when the file is in place, answers the requests that asked for
    /// this image and starts the next if more came meanwhile.
    fn start_snapshot(&mut self, ctx: &mut Context<DbActor>) {
        let Some(dir) = self.config.snapshot_dir.clone() else { return };
        let waiting = std::mem::take(&mut self.snapshot.waiting);
        self.snapshot.writing = true;
        let started = std::time::Instant::now();
        let image = snapshot::encode(&self.db, self.store.iter(), self.store.bytes());
        let records = self.store.len();
        let encode_ms = started.elapsed().as_millis() as u64;
        let db = self.db.clone();
        let bytes = image.len();
        let write = tokio::task::spawn_blocking(move || snapshot::write_atomically(&dir, &db, &image));
        ctx.spawn(actix::fut::wrap_future::<_, DbActor>(write).map(move |written, actor, ctx| {
            let mut actor = actor.database();
            let response = match written {
                Ok(Ok(path)) => {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(db = %actor.db, records, bytes, encode_ms, elapsed_ms, path = %path.display(), "snapshot written");
                    Response::Snapshotted { databases: 1, records }
                }
                Ok(Err(err)) => {
                    tracing::warn!(db = %actor.db, error = %err, "snapshot not written");
                    Response::Error(ErrorReply::new(ErrorCode::INTERNAL, format!("writing the snapshot: {err}")))
                }
                Err(err) => Response::Error(ErrorReply::new(ErrorCode::INTERNAL, format!("snapshot writer failed: {err}"))),
            };
            for reply in waiting {
                let _ = reply.send(response.clone());
            }
            actor.snapshot.writing = false;
            if !actor.snapshot.waiting.is_empty() {
                actor.start_snapshot(ctx);
            }
        }));
    }

    /// One bounded step of the expiry sweep; a full pass over the database takes
    /// `len / SWEEP_STEP_RECORDS` steps.
    fn sweep_step(&mut self, now: Stamp) {
        let age_cutoff = Stamp { secs: now.secs.saturating_sub(self.config.max_age.as_secs()), micros: now.micros };
        let before = self.store.expired_total();
        self.sweep_cursor = self.store.sweep(self.sweep_cursor.as_deref(), now.secs, age_cutoff);
        let expired = self.store.expired_total() - before;
        if expired > 0 {
            tracing::debug!(db = %self.db, expired, "expired records");
        }
    }

    fn enforce_records_max(&mut self) {
        let evicted = self.store.evict_over(self.config.records_max);
        if evicted > 0 {
            tracing::debug!(db = %self.db, evicted, "evicted the oldest records at the record limit");
        }
    }

    fn stats(&self) -> DbStats {
        DbStats {
            db: self.db.clone(),
            records: self.store.len(),
            bytes: self.store.bytes(),
            ops: {
                let counted = REQUEST_KINDS.iter().zip(self.counters.ops).filter(|(_, count)| *count > 0);
                let mut ops: Vec<OpCount> =
                    counted.map(|(kind, count)| OpCount { kind: (*kind).to_owned(), count }).collect();
                ops.sort_unstable_by(|a, b| a.kind.cmp(&b.kind));
                ops
            },
            records_max: self.config.records_max,
            expired: self.store.expired_total(),
            evicted: self.store.evicted_total(),
            slots_held: self.slots.values().map(|holders| holders.len() as u64).sum(),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8], now: Stamp) -> Response {
        self.check_fault(key);
        let stamp = self.store.put(key, value, now);
        self.enforce_records_max();
        Response::Stored(stamp)
    }

    /// The record a get finds under `key`.
    fn find(&self, key: &[u8]) -> Option<&Entry> {
        self.check_fault(key);
        self.store.get(key)
    }

    fn check_fault(&self, key: &[u8]) {
        if self.config.panic_key.as_deref() == Some(key) {
            panic!("fault injection: panic on key {:?} in database {}", String::from_utf8_lossy(key), self.db);
        }
    }

    /// Applies a request through the actor, turning a panic into an error reply and a restart.
    fn apply_guarded(&mut self, request: Request, conn: ConnId, ctx: &mut Context<DbActor>) -> Response {
        let now = now_stamp();
        let kind = request.kind();
        self.guarded(kind, |database| database.apply(request, conn, now, ctx)).unwrap_or_else(|failure| {
            ctx.stop();
            failure
        })
    }

    /// Applies a plain request directly, from a connection's thread (when
    /// [`Database::applies_directly`] said so). After a panic, the error reply comes back in
    /// the `Err`, with the message the caller must send the actor so that it restarts.
    ///
    /// A get or a put read in place is applied from the frame's bytes, and a get's record is
    /// handed to `replies` from the store's own, so neither allocates anything on the way.
    /// The reply is handed over only once the work is done, and encoding it cannot panic (an
    /// allocation failure aborts, and a frame written by hand is given room for every varint at
    /// its longest), so a panic caught here leaves no half-written reply.
    pub fn apply_directly(
        &mut self,
        id: u64,
        request: RequestView<'_>,
        conn: ConnId,
        clock: &mut RunClock,
        replies: &mut impl Replies,
    ) -> Result<(), DirectFailure> {
        let index = request.index();
        self.guarded(REQUEST_KINDS[index], |database| {
            // `apply_plain` counts the requests it applies; those read in place are counted here.
            if !matches!(request, RequestView::Other(_)) {
                database.counters.count(index);
            }
            match request {
                RequestView::Get { key, .. } => {
                    let found = database.find(key);
                    replies.record(id, found.map(|entry| RecordView { key, value: &entry.value, stamp: entry.stamp }));
                }
                RequestView::Put { key, value, .. } => replies.reply(id, database.put(key, value, clock.now())),
                RequestView::Ratelimit { condition, at } => {
                    let now = clock.now();
                    match database.ratelimit(condition, at.unwrap_or(now), now, &mut DbKeyBuffer::default()) {
                        Ok(reply) => replies.rate(id, reply),
                        Err(error) => replies.reply(id, error),
                    }
                }
                RequestView::Seen { condition, at } => {
                    let now = clock.now();
                    replies.reply(id, database.seen(condition, at.unwrap_or(now), now))
                }
                RequestView::Other(request) => replies.reply(id, database.apply_plain(request, conn, clock.now())),
            }
        })
        .map_err(|reply| DirectFailure { reply, tell_actor: Failed(self.restarts) })
    }

    /// Runs `operation`, catching a panic: the database is then marked failed (nothing more is
    /// applied directly until the actor restarts) and the error reply is returned as `Err`.
    fn guarded<T>(&mut self, kind: &str, operation: impl FnOnce(&mut Self) -> T) -> Result<T, Response> {
        match catch_unwind(AssertUnwindSafe(|| operation(self))) {
            Ok(response) => Ok(response),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                tracing::error!(db = %self.db, op = kind, panic = what, "database handler panicked; restarting it");
                self.failed = true;
                Err(Response::Error(ErrorReply::new(
                    ErrorCode::DATABASE_FAILED,
                    format!("database {} failed on this {kind} and was restarted", self.db),
                )))
            }
        }
    }
}

/// True for requests that touch only records and slots in bounded time: they need no timer
/// and no actor context, so they may be applied directly. Sessions, snapshots and stats go to
/// the actor, and so does `Tidy`, which walks the whole store while it holds the lock.
/// `OpenRing` is the connection's own.
pub fn is_plain(request: &Request) -> bool {
    !matches!(
        request,
        Request::OpenRing
            | Request::Lock { .. }
            | Request::Unlock { .. }
            | Request::Snapshot { .. }
            | Request::Stats { .. }
            | Request::Tidy { .. }
    )
}

/// The database's snapshot as a store: empty when there is none, or when it was damaged (it is
/// then set aside, never trusted).
pub fn load_snapshot(dir: &Path, db: &DbName) -> Store {
    match snapshot::load(dir, db) {
        LoadOutcome::Loaded(records) => Store::load(records),
        // Missing, or damaged (logged and set aside by the loader): start empty.
        _ => Store::new(),
    }
}

/// A condition Exim would refuse, refused in its words.
fn condition_error(err: &ConditionError) -> Response {
    Response::Error(ErrorReply::new(ErrorCode::BAD_ARGUMENT, err.to_string()))
}

fn record_error(err: &RecordError) -> Response {
    Response::Error(ErrorReply::new(ErrorCode::INTERNAL, format!("a stored record did not decode: {err}")))
}

fn record(key: &[u8], entry: &Entry) -> Record {
    Record { key: key.to_vec(), value: entry.value.to_vec(), stamp: entry.stamp }
}

/// The clock for a run of requests applied together, read once, when the first of them needs
/// it: requests that arrived together happen together (the store still gives each write a
/// stamp of its own), and a run of gets reads no clock at all.
#[derive(Debug, Default)]
pub struct RunClock(Option<Stamp>);

impl RunClock {
    /// The run's time, read now if no request of the run has read it yet.
    pub fn now(&mut self) -> Stamp {
        *self.0.get_or_insert_with(now_stamp)
    }
}

/// The daemon's clock as a stamp.
pub fn now_stamp() -> Stamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Stamp { secs: since_epoch.as_secs(), micros: since_epoch.subsec_micros() }
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (db, records) = {
            let database = self.database();
            (database.db.clone(), database.store.len())
        };
        tracing::debug!(db = %db, records, "database actor started");
        // Not under the database's lock: `direct` takes its table's lock first, then a database's.
        direct::register(db, Arc::clone(&self.database), ctx.address());
        ctx.run_interval(SWEEP_INTERVAL, |actor, _ctx| {
            let mut database = actor.database();
            database.sweep_step(now_stamp());
            database.give_up_on_old_waiters();
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let db = self.database().db.clone();
        direct::unregister(&db);
    }
}

impl Supervised for DbActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let mut database = self.database();
        database.store = match &database.config.snapshot_dir {
            Some(dir) => load_snapshot(dir, &database.db),
            None => Store::new(),
        };
        tracing::warn!(db = %database.db, records = database.store.len(), "database restarted from its last snapshot");
        database.slots.clear();
        database.session = Session::default();
        database.snapshot = SnapshotState::default();
        database.sweep_cursor = None;
        database.failed = false;
        database.restarts += 1;
    }
}

/// A request applied directly made the database panic: stop, so the supervisor restarts it.
/// It names the state that failed (its restart count), so a late one does not restart the
/// fresh state again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Failed(u64);

/// A panic while applying a request directly: the reply for the request, and what to tell the
/// actor.
#[derive(Debug)]
pub struct DirectFailure {
    pub reply: Response,
    pub tell_actor: Failed,
}

impl Handler<Failed> for DbActor {
    type Result = ();

    fn handle(&mut self, Failed(restarts): Failed, ctx: &mut Context<Self>) {
        if self.database().restarts == restarts {
            ctx.stop();
        }
    }
}

impl Handler<Apply> for DbActor {
    type Result = actix::Response<Response>;

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) -> Self::Result {
        let mut database = self.database();
        database.handle_apply(msg, ctx)
    }
}

impl Database {
    fn handle_apply(&mut self, msg: Apply, ctx: &mut Context<DbActor>) -> actix::Response<Response> {
        if self.failed {
            // A request applied directly panicked and this state is about to be replaced by
            // the last snapshot: applying more to it would acknowledge writes that vanish.
            ctx.stop();
            return actix::Response::reply(Response::Error(ErrorReply::new(
                ErrorCode::DATABASE_FAILED,
                format!("database {} failed and is restarting; try again", self.db),
            )));
        }
        if self.must_wait(&msg.request, msg.conn) {
            if self.session.waiting.len() >= SESSION_WAITERS_MAX {
                return actix::Response::reply(Response::Error(ErrorReply::new(
                    ErrorCode::BUSY,
                    "too many requests are waiting for another client's exclusive session",
                )));
            }
            let (reply, answer) = oneshot::channel();
            let since = std::time::Instant::now();
            self.session.waiting.push_back(Waiting { request: msg.request, conn: msg.conn, reply, since });
            return actix::Response::fut(async move {
                answer.await.unwrap_or_else(|_| {
                    Response::Error(ErrorReply::new(ErrorCode::DATABASE_FAILED, "the database restarted"))
                })
            });
        }
        if matches!(msg.request, Request::Snapshot { .. }) {
            self.counters.count(msg.request.index());
            return self.snapshot(ctx);
        }
        actix::Response::reply(self.apply_guarded(msg.request, msg.conn, ctx))
    }
}

impl Handler<ConnectionClosed> for DbActor {
    type Result = ();

    fn handle(&mut self, ConnectionClosed(conn): ConnectionClosed, ctx: &mut Context<Self>) {
        self.database().connection_closed(conn, ctx);
    }
}

impl Database {
    fn connection_closed(&mut self, conn: ConnId, ctx: &mut Context<DbActor>) {
        if self.release_connection(conn) {
            tracing::info!(db = %self.db, conn, "exclusive session ended by its connection closing");
            self.end_session(ctx);
        }
    }

    /// Frees what connection `conn` held here (its slots, its requests waiting behind a
    /// session). Returns whether it holds the session, which only the actor can end (its
    /// waiters are answered then).
    pub fn release_connection(&mut self, conn: ConnId) -> bool {
        self.slots.retain(|_, holders| {
            holders.retain(|holder| holder.conn != conn);
            !holders.is_empty()
        });
        self.session.waiting.retain(|waiting| waiting.conn != conn);
        self.session.holder.is_some_and(|holder| holder.conn == conn)
    }
}
