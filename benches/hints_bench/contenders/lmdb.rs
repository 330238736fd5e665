//! LMDB: an environment per database, opened once per worker and kept open; many readers at
//! once (a read transaction per get), one writer at a time (a write transaction per write,
//! serialised by LMDB's lock). MDB_NOSYNC: a commit is not synced, like SQLite's WAL with
//! synchronous=NORMAL here and hintsd between snapshots.

use std::path::Path;

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};

use super::Store;
use crate::Res;

/// The map's size: far more than the benchmark writes (the file is sparse).
const MAP_BYTES: usize = 256 << 20;

#[derive(Debug)]
pub struct Lmdb {
    env: Env,
    db: Database<Bytes, Bytes>,
}

impl Lmdb {
    pub fn open(dir: &Path, db: &str) -> Res<Lmdb> {
        let path = dir.join(db);
        std::fs::create_dir_all(&path)?;
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_BYTES);
        // SAFETY: MDB_NOSYNC only trades durability across a system crash, which a benchmark's
        // scratch files do not need; and no other code in the process opens this environment.
        let env = unsafe {
            options.flags(EnvFlags::NO_SYNC);
            options.open(&path)?
        };
        let mut transaction = env.write_txn()?;
        let db = env.create_database(&mut transaction, None)?;
        transaction.commit()?;
        Ok(Lmdb { env, db })
    }

    fn write(&self, work: impl FnOnce(&mut heed::RwTxn, Database<Bytes, Bytes>) -> heed::Result<()>) -> Res<()> {
        let mut transaction = self.env.write_txn()?;
        work(&mut transaction, self.db)?;
        transaction.commit()?;
        Ok(())
    }
}

impl Store for Lmdb {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        let transaction = self.env.read_txn()?;
        Ok(self.db.get(&transaction, key)?.map(<[u8]>::to_vec))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.write(|transaction, db| db.put(transaction, key, value))
    }

    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()> {
        self.write(|transaction, db| {
            let value = modify(db.get(transaction, key)?);
            db.put(transaction, key, &value)
        })
    }

    /// One write transaction for all the records.
    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        self.write(|transaction, db| records.iter().try_for_each(|(key, value)| db.put(transaction, key, value)))
    }
}
