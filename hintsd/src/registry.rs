//! The supervisor: starts each database's actor on an arbiter (thread) of its own when the
//! database is first used, keeps the table of running databases, and revives an actor whose
//! mailbox has closed.
//!
//! Lookups go through [`Registry::lookup`], a read lock on a shared table, so the request path
//! asks the supervisor actor only the first time a database is used (or after it died).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Semaphore;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, AsyncContext, Context, Handler, Message, Supervisor};
use hints_proto::{DbName, ErrorCode, ErrorReply, Request};

use crate::config::Config;
use crate::db::{Apply, DAEMON_CONN, DbActor, DbConfig};
use crate::store::Store;

/// How a connection reaches a database: its actor and the arbiter that runs it (where it is
/// started again if it dies).
#[derive(Clone, Debug)]
pub struct DbHandle {
    pub addr: Addr<DbActor>,
    pub arbiter: ArbiterHandle,
    /// Requests in flight to this database, at most `mailbox_capacity` (actix does not hold
    /// senders to the mailbox's capacity when each uses its own clone of the address).
    pub in_flight: Arc<Semaphore>,
}

/// A cheap, cloneable view of the running databases, for connection tasks on any thread.
#[derive(Clone, Debug)]
pub struct Registry {
    table: Arc<RwLock<HashMap<DbName, DbHandle>>>,
    supervisor: Addr<DbSupervisor>,
}

/// Asks the supervisor for a database, starting (or reviving) it if need be; a new database
/// starts with `store` when given (loaded from its snapshot), else empty.
#[derive(Debug, Message)]
#[rtype(result = "Result<DbHandle, ErrorReply>")]
struct Open {
    db: DbName,
    store: Option<Store>,
}

/// Stops every arbiter (at shutdown, after the connections have drained).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAll;

/// The actor that owns the arbiters. It runs on the system arbiter.
#[derive(Debug)]
pub struct DbSupervisor {
    table: Arc<RwLock<HashMap<DbName, DbHandle>>>,
    arbiters: Vec<Arbiter>,
    config: Arc<Config>,
}

impl Registry {
    /// Starts the supervisor on the current (system) arbiter.
    pub fn start(config: Arc<Config>) -> Registry {
        let table = Arc::new(RwLock::new(HashMap::new()));
        let supervisor = DbSupervisor { table: Arc::clone(&table), arbiters: Vec::new(), config }.start();
        Registry { table, supervisor }
    }

    /// Starts database `db` holding `store` (its snapshot, loaded at boot).
    ///
    /// # Errors
    /// As [`Registry::open`].
    pub async fn open_with(&self, db: &DbName, store: Store) -> Result<DbHandle, ErrorReply> {
        self.ask_supervisor(Open { db: db.clone(), store: Some(store) }).await
    }

    async fn ask_supervisor(&self, open: Open) -> Result<DbHandle, ErrorReply> {
        match self.supervisor.send(open).await {
            Ok(result) => result,
            Err(_) => Err(ErrorReply::new(ErrorCode::SHUTTING_DOWN, "the daemon is stopping")),
        }
    }

    /// The running database `db`, started on first use.
    ///
    /// # Errors
    /// [`ErrorCode::TOO_MANY_DATABASES`] when `databases_max` are running, and
    /// [`ErrorCode::SHUTTING_DOWN`] once the supervisor has stopped.
    pub async fn open(&self, db: &DbName) -> Result<DbHandle, ErrorReply> {
        if let Some(handle) = self.lookup(db) {
            return Ok(handle);
        }
        self.ask_supervisor(Open { db: db.clone(), store: None }).await
    }

    /// The running database `db`, if it is running and its actor is alive.
    pub fn lookup(&self, db: &DbName) -> Option<DbHandle> {
        let table = self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.get(db).filter(|handle| handle.addr.connected()).cloned()
    }

    /// Every running database, in name order.
    pub fn all(&self) -> Vec<(DbName, DbHandle)> {
        let table = self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all: Vec<_> = table.iter().map(|(db, handle)| (db.clone(), handle.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Stops every database arbiter.
    pub async fn stop_all(&self) {
        let _ = self.supervisor.send(StopAll).await;
    }
}

impl Actor for DbSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.config.snapshot_dir.is_some() {
            ctx.run_interval(self.config.snapshot_interval, |supervisor, _ctx| {
                let table = supervisor.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (db, handle) in table.iter() {
                    // A periodic snapshot need not be answered; the actor logs what it did.
                    handle
                        .addr
                        .do_send(Apply { request: Request::Snapshot { db: Some(db.clone()) }, conn: DAEMON_CONN });
                }
            });
        }
    }
}

impl Handler<Open> for DbSupervisor {
    type Result = Result<DbHandle, ErrorReply>;

    fn handle(&mut self, Open { db, store }: Open, _ctx: &mut Context<Self>) -> Self::Result {
        let mut table = self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dead_arbiter = match table.get(&db) {
            Some(handle) if handle.addr.connected() => return Ok(handle.clone()),
            Some(handle) => Some(handle.arbiter.clone()),
            None => None,
        };
        let revived = dead_arbiter.is_some();
        let arbiter = match dead_arbiter {
            Some(found) => {
                tracing::warn!(db = %db, "database actor had died; starting it again from its snapshot");
                found
            }
            None => {
                if table.len() >= self.config.databases_max {
                    return Err(ErrorReply::new(
                        ErrorCode::TOO_MANY_DATABASES,
                        format!("this daemon runs at most {} databases (databases_max)", self.config.databases_max),
                    ));
                }
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                self.arbiters.push(arbiter);
                handle
            }
        };
        let capacity = self.config.mailbox_capacity;
        let db_config = DbConfig::from_config(&self.config, &db);
        let actor_db = db.clone();
        let store = match (store, &self.config.snapshot_dir) {
            (Some(store), _) => store,
            // A database that died loses what it had since its last snapshot, not more.
            (None, Some(dir)) if revived => crate::db::load_snapshot(dir, &db),
            (None, _) => Store::default(),
        };
        let records = store.len();
        let addr = Supervisor::start_in_arbiter(&arbiter, move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            DbActor::new(actor_db, db_config, store)
        });
        tracing::info!(db = %db, records, "database started");
        let in_flight = Arc::new(Semaphore::new(capacity));
        let handle = DbHandle { addr, arbiter, in_flight };
        table.insert(db, handle.clone());
        Ok(handle)
    }
}

impl Handler<StopAll> for DbSupervisor {
    type Result = ();

    fn handle(&mut self, _msg: StopAll, _ctx: &mut Context<Self>) {
        for arbiter in self.arbiters.drain(..) {
            arbiter.stop();
        }
    }
}
