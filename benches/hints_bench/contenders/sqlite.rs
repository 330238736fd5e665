//! SQLite as Exim's sqlite hints backend (4.98+) uses it: a file per database with the table
//! `tbl (ky TEXT PRIMARY KEY, dat BLOB)`, `busy_timeout` 5 s, one transaction per access;
//! here in WAL mode (synchronous=NORMAL: a commit is not synced, a checkpoint is), with the
//! connection opened once per worker and its statements prepared once. Reads run in a
//! deferred transaction; writes take the write lock at `BEGIN IMMEDIATE`, so a
//! read-modify-write cannot lose a race to another writer.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Store;
use crate::Res;

const GET: &str = "SELECT dat FROM tbl WHERE ky = ?1";
const PUT: &str = "INSERT OR REPLACE INTO tbl (ky, dat) VALUES (?1, ?2)";

#[derive(Debug)]
pub struct Sqlite {
    connection: Connection,
}

impl Sqlite {
    pub fn open(dir: &Path, db: &str) -> Res<Sqlite> {
        let connection = Connection::open(dir.join(db))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute("CREATE TABLE IF NOT EXISTS tbl (ky TEXT PRIMARY KEY, dat BLOB)", [])?;
        Ok(Sqlite { connection })
    }

    fn in_transaction<T>(
        &mut self,
        behavior: TransactionBehavior,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Res<T> {
        let transaction = self.connection.transaction_with_behavior(behavior)?;
        let result = work(&transaction)?;
        transaction.commit()?;
        Ok(result)
    }
}

fn text(key: &[u8]) -> rusqlite::Result<&str> {
    std::str::from_utf8(key).map_err(rusqlite::Error::Utf8Error)
}

fn read(connection: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    connection.prepare_cached(GET)?.query_row([key], |row| row.get(0)).optional()
}

fn write(connection: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    connection.prepare_cached(PUT)?.execute(params![key, value]).map(drop)
}

impl Store for Sqlite {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        let key = text(key)?;
        self.in_transaction(TransactionBehavior::Deferred, |connection| read(connection, key))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        let key = text(key)?;
        self.in_transaction(TransactionBehavior::Immediate, |connection| write(connection, key, value))
    }

    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()> {
        let key = text(key)?;
        self.in_transaction(TransactionBehavior::Immediate, |connection| {
            let value = modify(read(connection, key)?.as_deref());
            write(connection, key, &value)
        })
    }

    /// One transaction for all the records.
    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        self.in_transaction(TransactionBehavior::Immediate, |connection| {
            records.iter().try_for_each(|(key, value)| write(connection, text(key)?, value))
        })
    }
}
