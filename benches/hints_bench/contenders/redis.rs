//! Redis over a Unix socket: a private redis-server (Debian's `redis-server`) with persistence
//! off, started and stopped by the coordinator. Reads are GET, writes SET; the ratelimit
//! read-modify-write is a Lua script run by EVALSHA, as rate limiters on Redis do, computing
//! Exim's smoothed rate on the same 24-byte record Exim stores; any other read-modify-write is
//! WATCH, GET, MULTI, SET, EXEC, retried when another client wrote the key in between.

use std::path::Path;
use std::process::Command;

use redis::{Commands, Script};

use super::Store;
use crate::Res;
use crate::workload::{Access, RATE_PERIOD_SECS, apply, now};

/// SETs per pipelined batch when filling.
const FILL_BATCH: usize = 100;

/// Exim's formula (`workload::next_rate`) in Redis's Lua. ARGV: now's seconds and
/// microseconds, the period in seconds; the record is `dbdata_ratelimit`'s bytes.
const RATELIMIT_LUA: &str = r"
local sec, usec, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count, rate = 1.0, 1.0
local old = redis.call('GET', KEYS[1])
if old then
  local stamp, stamp_usec, _, previous = struct.unpack('<i8i4i4d', old)
  local i = (sec + usec / 1e6) - (stamp + stamp_usec / 1e6)
  if i <= 0 then i = 1e-9 end
  local a = math.exp(-i / period)
  rate = (1 - a) * count / (i / period) + a * previous
  if rate < count then rate = count end
end
redis.call('SET', KEYS[1], struct.pack('<i8i4i4d', sec, usec, 0, rate))
return tostring(rate)
";

pub struct Redis {
    connection: redis::Connection,
    ratelimit: Script,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redis")
    }
}

/// redis-server on `socket` only (no TCP), nothing saved, in `dir`.
pub fn server_command(dir: &Path, socket: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700", "--logfile", ""])
        .arg("--unixsocket")
        .arg(socket)
        .arg("--dir")
        .arg(dir);
    command
}

impl Redis {
    pub fn open(socket: &Path) -> Res<Redis> {
        let client = redis::Client::open(format!("redis+unix://{}", socket.display()))?;
        let mut connection = client.get_connection()?;
        redis::cmd("PING").exec(&mut connection)?;
        Ok(Redis { connection, ratelimit: Script::new(RATELIMIT_LUA) })
    }
}

impl Store for Redis {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        Ok(self.connection.get(key)?)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.connection.set(key, value)?)
    }

    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()> {
        loop {
            redis::cmd("WATCH").arg(key).exec(&mut self.connection)?;
            let current: Option<Vec<u8>> = self.connection.get(key)?;
            let value = modify(current.as_deref());
            let done: Option<()> = redis::pipe().atomic().set(key, value).ignore().query(&mut self.connection)?;
            if done.is_some() {
                return Ok(());
            }
        }
    }

    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        for chunk in records.chunks(FILL_BATCH) {
            let mut pipe = redis::pipe();
            chunk.iter().for_each(|(key, value)| {
                pipe.set(key, value).ignore();
            });
            pipe.exec(&mut self.connection)?;
        }
        Ok(())
    }

    fn batch(&mut self, accesses: &[Access]) -> Res<u64> {
        let mut failed = 0;
        for access in accesses {
            failed += u64::from(!match access {
                Access::Ratelimit { key, .. } => {
                    let (sec, usec) = now();
                    let rate: String = self
                        .ratelimit
                        .key(*key)
                        .arg(sec)
                        .arg(usec)
                        .arg(RATE_PERIOD_SECS)
                        .invoke(&mut self.connection)?;
                    rate.parse::<f64>().is_ok()
                }
                _ => apply(self, access)?,
            });
        }
        Ok(failed)
    }
}
