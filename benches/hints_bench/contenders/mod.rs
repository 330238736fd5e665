//! The contenders: what the workers talk to. Each but the echo floor is a [`Store`] that a
//! worker process opens once and then uses for every access; the coordinator starts whatever
//! the contender needs (a server, a directory) as a [`Target`] and stops it after.

mod echo;
mod exim;
mod exim_bdb;
mod exim_gdbm;
mod hintsd;
mod lmdb;
mod redis;
mod sqlite;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

pub use echo::{EchoShape, echo_server, echo_step};
pub use hintsd::client as hintsd_client;

use crate::Res;
use crate::workload::{self, Access};

/// One contender as one worker process holds it.
pub trait Store {
    /// The record under `key`, if there is one.
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>>;

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()>;

    /// Reads `key`, hands its value (if any) to `modify` and writes back what that returns, as
    /// one atomic step: under the contender's lock, in one transaction, or retried
    /// optimistically. `modify` may run more than once.
    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()>;

    /// Writes the records a workload needs before it runs.
    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        records.iter().try_for_each(|(key, value)| self.put(key, value))
    }

    /// Makes `accesses` (one, or a pipelined batch where the contender can) and returns how
    /// many failed; by default one after the other through get, put and update.
    fn batch(&mut self, accesses: &[Access]) -> Res<u64> {
        let mut failed = 0;
        for access in accesses {
            failed += u64::from(!workload::apply(self, access)?);
        }
        Ok(failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Contender {
    /// hintsd as configured by default: connections run on lanes and apply requests directly.
    Hintsd,
    /// hintsd with `connection_placement = "pool"`: requests cross threads.
    HintsdPool,
    /// hintsd as by default, each client on a shared-memory ring instead of its socket.
    HintsdRing,
    /// The floor: a bare Unix-socket echo server, no work at all.
    Echo,
    /// Exim's per-access cycle (lockfile, fcntl lock, open, access, close) with GDBM, on disk.
    EximGdbmDisk,
    /// The same on tmpfs (the ramdisk hack).
    EximGdbmTmpfs,
    /// Exim's cycle with Berkeley DB 5.3 (Debian's exim4), on disk.
    EximBdbDisk,
    EximBdbTmpfs,
    /// SQLite in WAL mode, one transaction per access, a connection per worker.
    Sqlite,
    /// LMDB, the environment open for the worker's life.
    Lmdb,
    /// redis-server on a private Unix socket, persistence off.
    Redis,
}

impl Contender {
    pub fn name(self) -> &'static str {
        match self {
            Contender::Hintsd => "hintsd",
            Contender::HintsdPool => "hintsd-pool",
            Contender::HintsdRing => "hintsd-ring",
            Contender::Echo => "echo",
            Contender::EximGdbmDisk => "exim-gdbm-disk",
            Contender::EximGdbmTmpfs => "exim-gdbm-tmpfs",
            Contender::EximBdbDisk => "exim-bdb-disk",
            Contender::EximBdbTmpfs => "exim-bdb-tmpfs",
            Contender::Sqlite => "sqlite",
            Contender::Lmdb => "lmdb",
            Contender::Redis => "redis",
        }
    }

    /// One line for the table's legend.
    pub fn describe(self) -> &'static str {
        match self {
            Contender::Hintsd => {
                "the daemon over its Unix socket, blocking client; connections on lanes (a thread each keeps), requests applied under the database's lock"
            }
            Contender::HintsdPool => "the same daemon with connection tasks on the tokio pool (requests cross threads)",
            Contender::HintsdRing => {
                "the same daemon and client, each connection moved to a shared-memory ring (frames through memory; \
                 a byte on the socket wakes an end only when it sleeps)"
            }
            Contender::Echo => "the floor: a Unix-socket echo server (a thread per connection), no work",
            Contender::EximGdbmDisk | Contender::EximGdbmTmpfs => {
                "Exim's dbfn cycle per access with GDBM: open <db>.lockfile, fcntl(F_SETLKW) (F_RDLCK only for \
                 read-only gets of `bench`; ratelimit and seen always F_WRLCK and a writer open), gdbm_open, one \
                 read or read-modify-write, gdbm_close (a writer's close syncs: msync(MS_SYNC) of gdbm's map), close \
                 the lockfile"
            }
            Contender::EximBdbDisk | Contender::EximBdbTmpfs => {
                "the same cycle with Berkeley DB 5.3 as Exim's hints_bdb.h opens it: a private DB_ENV, DB_HASH, \
                 DB->close then DB_ENV->close(DB_FORCESYNC)"
            }
            Contender::Sqlite => {
                "SQLite as Exim's sqlite backend (table tbl(ky, dat)): WAL, synchronous=NORMAL, busy_timeout 5 s, \
                 one transaction per access (BEGIN IMMEDIATE to write), a connection per worker"
            }
            Contender::Lmdb => {
                "LMDB: the environment open for the worker's life, a read transaction per get, a write transaction \
                 per write (one writer at a time), MDB_NOSYNC"
            }
            Contender::Redis => {
                "redis-server on a private Unix socket, persistence off; GET and SET, ratelimit as a Lua script \
                 (EVALSHA), other read-modify-writes WATCH/MULTI/EXEC"
            }
        }
    }

    /// Why the contender cannot run here, if it cannot.
    pub fn unavailable(self, dirs: &Dirs) -> Option<String> {
        match self {
            Contender::Redis if find_on_path("redis-server").is_none() => {
                Some("redis-server not found on PATH (Debian package redis-server)".into())
            }
            Contender::EximGdbmTmpfs | Contender::EximBdbTmpfs if !is_tmpfs(&dirs.tmpfs) => {
                Some(format!("{} is not a tmpfs", dirs.tmpfs.display()))
            }
            _ => None,
        }
    }

    /// Whether the contender runs pipelined cells (a batch of requests written before the
    /// replies are read): hintsd's client can, and the echo floor for comparison.
    pub fn pipelines(self) -> bool {
        matches!(self, Contender::Hintsd | Contender::HintsdRing | Contender::Echo)
    }

    /// Where the contender's directory goes: its files, or its server's socket.
    fn data_dir(self, dirs: &Dirs) -> PathBuf {
        match self {
            Contender::EximGdbmTmpfs | Contender::EximBdbTmpfs => dirs.tmpfs.clone(),
            Contender::EximGdbmDisk | Contender::EximBdbDisk | Contender::Sqlite | Contender::Lmdb => dirs.disk.clone(),
            Contender::Hintsd | Contender::HintsdPool | Contender::HintsdRing | Contender::Echo | Contender::Redis => {
                std::env::temp_dir()
            }
        }
    }
}

/// Where on-disk and tmpfs contenders keep their files.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub disk: PathBuf,
    pub tmpfs: PathBuf,
}

/// Opens `db` of a running contender (`target` from its [`Target`]) for one process.
pub fn open(contender: Contender, target: &Path, db: &str) -> Res<Box<dyn Store>> {
    Ok(match contender {
        Contender::Hintsd | Contender::HintsdPool => Box::new(hintsd::Hintsd::open(target, db, false)?),
        Contender::HintsdRing => Box::new(hintsd::Hintsd::open(target, db, true)?),
        Contender::Echo => return Err("the echo floor is not a store".into()),
        Contender::EximGdbmDisk | Contender::EximGdbmTmpfs => {
            Box::new(exim::Cycle::<exim_gdbm::Gdbm>::open(target, db)?)
        }
        Contender::EximBdbDisk | Contender::EximBdbTmpfs => Box::new(exim::Cycle::<exim_bdb::Bdb>::open(target, db)?),
        Contender::Sqlite => Box::new(sqlite::Sqlite::open(target, db)?),
        Contender::Lmdb => Box::new(lmdb::Lmdb::open(target, db)?),
        Contender::Redis => Box::new(redis::Redis::open(target)?),
    })
}

/// What the coordinator started for one contender: a server process and its socket, or a
/// directory of files; removed by [`Target::stop`].
#[derive(Debug)]
pub struct Target {
    pub server: Option<Child>,
    /// The socket or directory the workers are given.
    pub path: PathBuf,
    dir: PathBuf,
}

impl Target {
    /// Makes the contender's directory and starts its server, if it has one; whatever fails,
    /// nothing is left running or on disk.
    pub fn start(contender: Contender, dirs: &Dirs) -> Res<Target> {
        let dir = contender.data_dir(dirs).join(format!("hints-bench-{}-{}", std::process::id(), contender.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut target = Target { server: None, path: dir.clone(), dir };
        match target.start_server(contender) {
            Ok(()) => Ok(target),
            Err(err) => {
                target.stop();
                Err(err)
            }
        }
    }

    /// Starts the contender's server, if it has one, and waits until it answers.
    fn start_server(&mut self, contender: Contender) -> Res<()> {
        let socket = self.dir.join("server.sock");
        let mut command = match contender {
            Contender::Echo => {
                let mut command = Command::new(std::env::current_exe()?);
                command.arg("echo-server").arg("--socket").arg(&socket);
                command
            }
            Contender::Hintsd | Contender::HintsdPool | Contender::HintsdRing => {
                hintsd::server_command(contender, &self.dir, &socket)?
            }
            Contender::Redis => redis::server_command(&self.dir, &socket),
            _ => return Ok(()),
        };
        self.server = Some(command.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?);
        self.path = socket;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers(contender) {
            let exited = self.server.as_mut().and_then(|server| server.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!("the {} server ended ({status}) before it answered", contender.name()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("the {} server did not answer", contender.name()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn answers(&self, contender: Contender) -> bool {
        match contender {
            Contender::Echo => echo::EchoClient::connect(&self.path).and_then(|mut echo| echo.round_trip(1)).is_ok(),
            Contender::Hintsd | Contender::HintsdPool | Contender::HintsdRing => hintsd::answers(&self.path),
            _ => redis::Redis::open(&self.path).is_ok(),
        }
    }

    pub fn stop(&mut self) {
        if let Some(child) = &mut self.server {
            // A server already reaped is not signalled: its pid may be another process's now.
            if matches!(child.try_wait(), Ok(None)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|path| path.is_file())
}

fn is_tmpfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}
