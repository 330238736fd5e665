//! hintsd through the blocking client, over its Unix socket or a shared-memory ring: ratelimit
//! and seen as the daemon's own requests, batches pipelined.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hints_client::{CasOutcome, Client, ClientConfig};
use hints_proto::{DbName, Request, RequestView, ResponseView};
use hintsd::reuse_vec;

use super::{Contender, Store};
use crate::Res;
use crate::workload::Access;

/// Puts per pipelined batch when filling.
const FILL_BATCH: usize = 100;

#[derive(Debug)]
pub struct Hintsd {
    client: Client,
    db: DbName,
    /// The allocation of a batch's requests, kept from one batch to the next as an MTA's
    /// worker would keep it (always empty between batches).
    spare: Vec<RequestView<'static>>,
    /// Where a lone get's value is copied, as `hints_get` copies it into its caller's buffer.
    value: Vec<u8>,
}

pub fn client(socket: &Path) -> Client {
    Client::new(ClientConfig::from_environment().with_socket(socket).with_timeout(Duration::from_secs(5)))
}

pub fn answers(socket: &Path) -> bool {
    client(socket).ping().is_ok()
}

/// The daemon beside this binary, configured for `contender`, in `dir`.
pub fn server_command(contender: Contender, dir: &Path, socket: &Path) -> Res<Command> {
    let hintsd: PathBuf = std::env::current_exe()?.with_file_name("hintsd");
    if !hintsd.exists() {
        return Err(format!("{} not found; build it first (cargo build --release --bins)", hintsd.display()).into());
    }
    let placement = if contender == Contender::HintsdPool { "pool" } else { "lanes" };
    let config = dir.join("hintsd.toml");
    // Snapshots as in production, but private: a default directory would carry records from
    // one run (or contender) into the next.
    let snapshots = dir.join("snapshots");
    std::fs::write(&config, format!("connection_placement = \"{placement}\"\nsnapshot_dir = {snapshots:?}\n"))?;
    let mut command = Command::new(hintsd);
    command.arg("--config").arg(config).arg("--socket").arg(socket).env("HINTSD_LOG", "warn");
    Ok(command)
}

impl Hintsd {
    /// A worker's client, on a shared-memory ring if `ring` (checked: a daemon that offers
    /// none would measure the socket under the ring's name).
    pub fn open(socket: &Path, db: &str, ring: bool) -> Res<Hintsd> {
        let mut client = Client::new(client(socket).config().clone().with_ring(ring));
        client.ping()?;
        if client.is_on_ring() != ring {
            return Err(format!("asked for ring = {ring}, the connection has ring = {}", client.is_on_ring()).into());
        }
        Ok(Hintsd { client, db: DbName::new(db)?, spare: Vec::new(), value: Vec::new() })
    }
}

/// The request for `access`, borrowing its key and value as a worker sending its own bytes would.
fn request<'a>(db: &'a DbName, access: &'a Access) -> RequestView<'a> {
    match access {
        Access::Get { key } => RequestView::Get { db: db.as_str(), key },
        Access::Put { key, value } => RequestView::Put { db: db.as_str(), key, value },
        Access::Ratelimit { condition, .. } => RequestView::Ratelimit { condition, at: None },
        Access::SeenCheck { condition, .. } | Access::SeenWrite { condition, .. } => {
            RequestView::Seen { condition, at: None }
        }
    }
}

impl Store for Hintsd {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.client.get(&self.db, key)?.map(|record| record.value))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.client.put(&self.db, key, value)?;
        Ok(())
    }

    /// Get, then compare-and-set against the stamp read, until no one wrote in between.
    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()> {
        loop {
            let current = self.client.get(&self.db, key)?;
            let value = modify(current.as_ref().map(|record| record.value.as_slice()));
            let expected = current.map(|record| record.stamp);
            if let CasOutcome::Swapped(_) = self.client.compare_and_set(&self.db, key, expected, Some(&value))? {
                return Ok(());
            }
        }
    }

    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        for chunk in records.chunks(FILL_BATCH) {
            let requests: Vec<Request> = chunk
                .iter()
                .map(|(key, value)| Request::Put { db: self.db.clone(), key: key.clone(), value: value.clone() })
                .collect();
            self.client.pipeline(&requests)?;
        }
        Ok(())
    }

    /// One request, as an MTA's worker makes it (through the typed call the C library makes,
    /// `hints_get`, `hints_put`, `hints_ratelimit`, `hints_seen`, borrowing the key, value or
    /// condition), or the batch pipelined from borrowed requests; a failure is an error reply
    /// or a get that missed.
    fn batch(&mut self, accesses: &[Access]) -> Res<u64> {
        let mut failed = 0;
        if let [access] = accesses {
            // An error reply comes back as the call's error.
            let missed = match access {
                Access::Get { key } => {
                    let value = &mut self.value;
                    let found = self.client.get_with(&self.db, key, |record| {
                        record.map(|record| {
                            value.clear();
                            value.extend_from_slice(record.value);
                        })
                    })?;
                    found.is_none()
                }
                Access::Put { key, value } => self.client.put(&self.db, key, value).map(|_| false)?,
                Access::Ratelimit { condition, .. } => self.client.ratelimit(condition, None).map(|_| false)?,
                Access::SeenCheck { condition, .. } | Access::SeenWrite { condition, .. } => {
                    self.client.seen(condition, None).map(|_| false)?
                }
            };
            return Ok(u64::from(missed));
        }
        let mut requests = reuse_vec(std::mem::take(&mut self.spare));
        requests.extend(accesses.iter().map(|access| request(&self.db, access)));
        // Replies are looked at where they were read, as a worker checking its lookups would.
        let answered = self.client.pipeline_each(&requests, |reply| {
            failed += u64::from(matches!(reply, ResponseView::Value(None)) || reply.error().is_some());
        });
        self.spare = reuse_vec(requests);
        answered?;
        Ok(failed)
    }
}
