//! The running databases, for connection tasks to apply plain requests to directly, from
//! whichever thread they run on: under the database's lock, with no mailbox, no reply channel,
//! no timer and no thread hand-off.
//!
//! A database's actor registers its [`Database`] here when it starts and takes it out when it
//! stops. Requests that need the actor (a session, a snapshot, stats, a request that must wait
//! behind another client's session) are declined and go through its mailbox. The lock orders
//! every request a database sees, those applied here and those its actor applies, in one total
//! order, as the mailbox alone did before.

use std::iter::Peekable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use actix::Addr;
use hints_proto::{DbName, RateReply, RecordView, Request, RequestView, Response, ResponseEnvelope};

use crate::db::{self, ConnId, ConnectionClosed, Database, DbActor, RunClock};

/// A running database.
struct DirectDb {
    name: DbName,
    database: Arc<Mutex<Database>>,
    addr: Addr<DbActor>,
}

/// A handful of databases (at most `databases_max`), changed only when one starts or stops.
/// Shared, so a lookup copies out one pointer.
static RUNNING: RwLock<Vec<Arc<DirectDb>>> = RwLock::new(Vec::new());

/// Counts the changes to [`RUNNING`], so a connection's [`LastFound`] knows when to look again.
static RUNNING_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Called by a database's actor as it starts (again, after a restart).
pub(crate) fn register(name: DbName, database: Arc<Mutex<Database>>, addr: Addr<DbActor>) {
    let mut running = RUNNING.write().unwrap_or_else(PoisonError::into_inner);
    running.retain(|direct| direct.name != name);
    running.push(Arc::new(DirectDb { name, database, addr }));
    RUNNING_CHANGES.fetch_add(1, Ordering::Release);
}

/// Called by a database's actor as it stops.
pub(crate) fn unregister(name: &DbName) {
    let mut running = RUNNING.write().unwrap_or_else(PoisonError::into_inner);
    running.retain(|direct| direct.name != *name);
    RUNNING_CHANGES.fetch_add(1, Ordering::Release);
}

/// The running database a connection applied requests to last, kept for its next batch: a
/// connection's requests almost always name one database, and looking it up in [`RUNNING`]
/// took a lock, a reference count and a name's comparison each time, on lines every lane
/// touches (about 170 instructions a batch, callgrind). It is looked up again once a database
/// has started or stopped since, as [`find`] would.
#[derive(Default)]
pub struct LastFound {
    changes: u64,
    direct: Option<Arc<DirectDb>>,
}

impl std::fmt::Debug for LastFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastFound").field("db", &self.direct.as_ref().map(|direct| &direct.name)).finish()
    }
}

impl LastFound {
    fn find(&mut self, db: &str) -> Option<&DirectDb> {
        let changes = RUNNING_CHANGES.load(Ordering::Acquire);
        let kept = self.changes == changes && self.direct.as_ref().is_some_and(|direct| direct.name.as_str() == db);
        if !kept {
            self.direct = find(db);
            self.changes = changes;
        }
        self.direct.as_deref()
    }
}

/// Where [`apply_batch`] puts each answer, in the requests' order.
pub trait Replies {
    fn reply(&mut self, id: u64, response: Response);
    /// A get's answer, borrowed from the store (under the database's lock).
    fn record(&mut self, id: u64, record: Option<RecordView<'_>>);
    /// A ratelimit's answer, its key borrowed from where the database built it.
    fn rate(&mut self, id: u64, reply: RateReply<'_>);
}

impl Replies for Vec<ResponseEnvelope> {
    fn reply(&mut self, id: u64, response: Response) {
        self.push(ResponseEnvelope { id, response });
    }

    fn record(&mut self, id: u64, record: Option<RecordView<'_>>) {
        self.reply(id, Response::Value(record.map(|record| record.to_record())));
    }

    // Only a ratelimit read in place is answered this way, and `apply` hands over owned
    // requests; kept so that every `Replies` answers every request.
    fn rate(&mut self, id: u64, reply: RateReply<'_>) {
        self.reply(id, reply.to_response());
    }
}

/// What [`apply`] did with a request.
#[derive(Debug)]
pub enum Direct {
    Applied(Response),
    /// The database is not running, or the request needs its actor (a session, a snapshot,
    /// stats, a request that must wait): send it through the mailbox.
    Declined(Request),
}

/// Applies `conn`'s `request` directly if its database is running and the request may skip
/// the actor.
pub fn apply(request: Request, conn: ConnId) -> Direct {
    let mut one = std::iter::once((0, RequestView::Other(request))).peekable();
    let mut responses: Vec<ResponseEnvelope> = Vec::with_capacity(1);
    apply_batch(&mut one, conn, &mut LastFound::default(), &mut responses, |_, _| {});
    match (one.next(), responses.pop()) {
        (Some((_, declined)), _) => Direct::Declined(declined.into_owned()),
        (None, Some(answered)) => Direct::Applied(answered.response),
        (None, None) => unreachable!("a request is either applied or left"),
    }
}

/// Applies requests from the front of `requests` directly, in order, while they may be: each
/// run of consecutive requests for one database under one taking of its lock. Stops at the
/// first that must go to an actor (left at the front of `requests`). `first_use` is called with
/// each database before its first request is applied, so the connection can remember it;
/// `last_found` is the connection's own, kept from batch to batch.
pub fn apply_batch<'a>(
    requests: &mut Peekable<impl Iterator<Item = (u64, RequestView<'a>)>>,
    conn: ConnId,
    last_found: &mut LastFound,
    replies: &mut impl Replies,
    mut first_use: impl FnMut(&DbName, &Addr<DbActor>),
) {
    while let Some((_, next)) = requests.peek() {
        if matches!(next, RequestView::Other(Request::Ping)) {
            let (id, _) = requests.next().expect("peeked");
            replies.reply(id, Response::Pong);
            continue;
        }
        let Some(db) = next.target_db_name() else { return };
        let Some(direct) = last_found.find(db) else { return };
        let (name, addr) = (&direct.name, &direct.addr);
        first_use(name, addr);
        // A lane must not sleep on a lock another thread holds for long (a large scan, say):
        // every connection on the lane would wait. After a short spin the rest of the batch
        // goes to the actor, whose thread may wait.
        let Some(mut database) = lock_briefly(&direct.database) else { return };
        let mut applied = false;
        let mut clock = RunClock::default();
        while let Some((id, request)) = requests
            .next_if(|(_, next)| next.target_db_name() == Some(name.as_str()) && database.applies_directly(next, conn))
        {
            if let Err(failure) = database.apply_directly(id, request, conn, &mut clock, replies) {
                // The actor restarts the database from its snapshot; until then requests go
                // through its mailbox, which answers them DATABASE_FAILED.
                addr.do_send(failure.tell_actor);
                replies.reply(id, failure.reply);
            }
            applied = true;
        }
        if !applied {
            return;
        }
    }
}

/// The running database `db`, copied out so that the table's lock is not held while the
/// database's is taken.
fn find(db: &str) -> Option<Arc<DirectDb>> {
    let running = RUNNING.read().unwrap_or_else(PoisonError::into_inner);
    running.iter().find(|direct| direct.name.as_str() == db).map(Arc::clone)
}

/// How long a lane spins for a database's lock before it sends the request to the actor.
pub const LOCK_SPIN_MAX: Duration = Duration::from_micros(20);

/// The database's lock if it comes within [`LOCK_SPIN_MAX`].
fn lock_briefly(database: &Mutex<Database>) -> Option<MutexGuard<'_, Database>> {
    if let Ok(guard) = database.try_lock() {
        // The usual case, without reading the clock.
        return Some(guard);
    }
    let deadline = Instant::now() + LOCK_SPIN_MAX;
    loop {
        // The clock is read between rounds of tries, not at each: on a contended lock, reading
        // it at every try was 7 % of the daemon's time (perf, two lanes on one database).
        for _ in 0..LOCK_TRIES_A_ROUND {
            std::hint::spin_loop();
            match database.try_lock() {
                Ok(guard) => return Some(guard),
                // A handler's panic is caught inside the lock (`Database::guarded`).
                Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// Tries at a database's lock between two readings of the clock in [`lock_briefly`]: each is a
/// `pause` and an atomic, a fraction of a microsecond together.
const LOCK_TRIES_A_ROUND: u32 = 32;

/// Frees what connection `conn` held in database `db` right away (its slots), so another
/// client's next request finds them free; a session it held is ended by the actor, which is
/// told too (the [`ConnectionClosed`] message is harmless to repeat).
pub fn connection_closed(db: &DbName, addr: &Addr<DbActor>, conn: ConnId) {
    if let Some(direct) = find(db.as_str()) {
        db::lock(&direct.database).release_connection(conn);
    }
    // do_send ignores the mailbox bound; there is one such message per database held.
    addr.do_send(ConnectionClosed(conn));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix::Actor;

    use super::*;
    use crate::db::DbConfig;
    use crate::store::Store;

    #[test]
    fn a_connection_looks_again_once_a_database_has_stopped_or_started() {
        actix::System::new().block_on(async {
            let name = DbName::new("last-found-test").unwrap();
            let config = DbConfig {
                records_max: 10,
                max_age: Duration::from_secs(60),
                snapshot_dir: None,
                slot_age_max: Duration::from_secs(60),
                panic_key: None,
            };
            // The actor registers its database as it starts.
            let addr = DbActor::new(name.clone(), config.clone(), Store::new()).start();
            while find(name.as_str()).is_none() {
                tokio::task::yield_now().await;
            }
            let mut last_found = LastFound::default();
            assert!(last_found.find("another").is_none(), "a database that is not running is not found");
            let first = Arc::clone(&last_found.find(name.as_str()).expect("registered").database);

            unregister(&name);
            assert!(last_found.find(name.as_str()).is_none(), "a database that stopped is not kept");

            let second = Arc::new(Mutex::new(Database::new(name.clone(), config, Store::new())));
            register(name.clone(), Arc::clone(&second), addr);
            let found = last_found.find(name.as_str()).expect("registered again");
            assert!(Arc::ptr_eq(&found.database, &second) && !Arc::ptr_eq(&found.database, &first));
            unregister(&name);
        });
    }
}
