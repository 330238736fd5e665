//! `DbActor`: one actix actor per database, applying requests to its [`Store`] in mailbox
//! order. This module holds the actix messages and handlers only; the semantics are the store's.
//!
//! A panic while handling a request is caught here: the request gets a `DATABASE_FAILED`
//! error, the actor stops, and its actix `Supervisor` restarts it on the same address with an
//! empty store (its records may have been left half-changed). Other databases never notice.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use actix::{Actor, ActorContext, Context, Handler, Message, MessageResult, Supervised};
use hints_proto::{DbName, DbStats, ErrorCode, ErrorReply, OpCount, Record, Request, Response, ScanPage, Stamp};

use crate::store::{CasResult, Entry, Store};

/// Applies one validated request to the database.
#[derive(Debug, Message)]
#[rtype(result = "Response")]
pub struct Apply(pub Request);

/// The actor that owns one database's store.
#[derive(Debug)]
pub struct DbActor {
    db: DbName,
    store: Store,
    /// Operations handled since the daemon started, by kind; kept across restarts.
    ops: BTreeMap<&'static str, u64>,
    /// Fault injection for tests: a request touching this key panics inside the handler.
    panic_key: Option<Vec<u8>>,
}

impl DbActor {
    /// A database with an empty store.
    pub fn new(db: DbName, panic_key: Option<Vec<u8>>) -> DbActor {
        DbActor { db, store: Store::new(), ops: BTreeMap::new(), panic_key }
    }

    fn apply(&mut self, request: Request, now: Stamp) -> Response {
        *self.ops.entry(request.kind()).or_default() += 1;
        match request {
            Request::Get { key, .. } => {
                self.check_fault(&key);
                Response::Value(self.store.get(&key).map(|entry| record(&key, entry)))
            }
            Request::Put { key, value, .. } => {
                self.check_fault(&key);
                Response::Stored(self.store.put(&key, &value, now))
            }
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
                match self.store.compare_and_set(&key, expected, value.as_deref(), now) {
                    CasResult::Swapped(stamp) => Response::Swapped(stamp),
                    CasResult::Conflict(entry) => Response::Conflict(entry.map(|entry| record(&key, &entry))),
                }
            }
            Request::Stats { .. } => Response::Stats(vec![self.stats()]),
            Request::Ping => Response::Pong,
        }
    }

    fn stats(&self) -> DbStats {
        DbStats {
            db: self.db.clone(),
            records: self.store.len(),
            bytes: self.store.bytes(),
            ops: self.ops.iter().map(|(kind, count)| OpCount { kind: (*kind).to_owned(), count: *count }).collect(),
        }
    }

    fn check_fault(&self, key: &[u8]) {
        if self.panic_key.as_deref() == Some(key) {
            panic!("fault injection: panic on key {:?} in database {}", String::from_utf8_lossy(key), self.db);
        }
    }
}

fn record(key: &[u8], entry: &Entry) -> Record {
    Record { key: key.to_vec(), value: entry.value.to_vec(), stamp: entry.stamp }
}

/// The daemon's clock as a stamp.
pub fn now_stamp() -> Stamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Stamp { secs: since_epoch.as_secs(), micros: since_epoch.subsec_micros() }
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        tracing::debug!(db = %self.db, "database actor started");
    }
}

impl Supervised for DbActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!(db = %self.db, records_lost = self.store.len(), "database restarting with an empty store");
        self.store = Store::new();
    }
}

impl Handler<Apply> for DbActor {
    type Result = MessageResult<Apply>;

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) -> MessageResult<Apply> {
        let now = now_stamp();
        let kind = msg.0.kind();
        MessageResult(match catch_unwind(AssertUnwindSafe(|| self.apply(msg.0, now))) {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                tracing::error!(db = %self.db, op = kind, panic = what, "database handler panicked; restarting it");
                ctx.stop();
                Response::Error(ErrorReply::new(
                    ErrorCode::DATABASE_FAILED,
                    format!("database {} failed on this {kind} and was restarted empty", self.db),
                ))
            }
        })
    }
}
