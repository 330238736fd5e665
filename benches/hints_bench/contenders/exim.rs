//! Exim's own hints access, reproduced as `dbfn.c` does it for the lockfile backends (GDBM,
//! Berkeley DB; `shared/reference/exim-hints.md` §2.2), once per access:
//!
//! 1. open `<db>.lockfile` read-write (created 0640 if missing);
//! 2. `fcntl(F_SETLKW)` on the whole file: `F_RDLCK` only for a read-only open (the gets of
//!    `bench`, like retry lookups); `ratelimit`, `seen` (and Exim's `misc`, `callout`) are opened
//!    read-write even to read, so every access of theirs takes `F_WRLCK` and a writer open;
//! 3. open the DB (without create first; with create only if that found no file);
//! 4. one read, write, or read-modify-write;
//! 5. close the DB (a writer's close syncs it to disk), then close the lockfile, which releases
//!    the lock.
//!
//! Keys carry their terminating NUL, as Exim stores them. Exim's 60 s `alarm()` around the
//! lock wait is left out: no wait comes near it here.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::Store;
use crate::Res;

/// `EXIMDB_MODE` and `EXIMDB_LOCKFILE_MODE`.
pub const EXIMDB_MODE: u32 = 0o640;

/// A DBM library behind Exim's `hintsdb` shim (`hints_gdbm.h`, `hints_bdb.h`).
pub trait Dbm: Sized {
    /// `exim_dbopen`: the file `file` in `dir`, for writing or only reading, created if
    /// `create`. A missing file is an error of kind `NotFound`.
    fn open(dir: &Path, file: &Path, writer: bool, create: bool) -> io::Result<Self>;
    /// `exim_dbget`.
    fn fetch(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// `exim_dbput` (replacing).
    fn store(&mut self, key: &[u8], value: &[u8]) -> io::Result<()>;
    /// `exim_dbclose`: a writer's close syncs.
    fn close(self) -> io::Result<()>;
}

/// One hints database accessed through Exim's cycle.
#[derive(Debug)]
pub struct Cycle<D> {
    dir: PathBuf,
    file: PathBuf,
    lockfile: PathBuf,
    /// Whether reads open read-write too (Exim's ACL-time databases).
    writer_reads: bool,
    library: PhantomData<D>,
}

impl<D: Dbm> Cycle<D> {
    pub fn open(dir: &Path, db: &str) -> Res<Cycle<D>> {
        Ok(Cycle {
            dir: dir.to_owned(),
            file: dir.join(db),
            lockfile: dir.join(format!("{db}.lockfile")),
            writer_reads: matches!(db, "ratelimit" | "seen" | "misc" | "callout"),
            library: PhantomData,
        })
    }

    /// `dbfn_open`, `work` on the open DB, `dbfn_close`.
    fn cycle<T>(&self, writer: bool, work: impl FnOnce(&mut D) -> io::Result<T>) -> Res<T> {
        let lockfile = match OpenOptions::new().read(true).write(true).open(&self.lockfile) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                OpenOptions::new().read(true).write(true).create(true).mode(EXIMDB_MODE).open(&self.lockfile)?
            }
            opened => opened?,
        };
        lock_whole_file(&lockfile, writer)?;
        let mut db = match D::open(&self.dir, &self.file, writer, false) {
            Err(err) if err.kind() == io::ErrorKind::NotFound && writer => D::open(&self.dir, &self.file, true, true)?,
            opened => opened?,
        };
        let result = work(&mut db);
        let closed = db.close();
        drop(lockfile);
        let result = result?;
        closed?;
        Ok(result)
    }
}

/// Exim's keys are C strings stored with their NUL.
fn c_key(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}

/// `fcntl(fd, F_SETLKW, {F_RDLCK or F_WRLCK, whole file})`.
fn lock_whole_file(file: &File, exclusive: bool) -> io::Result<()> {
    // SAFETY: an all-zero flock is valid (l_whence SEEK_SET, start 0, length 0: the whole file).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = if exclusive { libc::F_WRLCK } else { libc::F_RDLCK } as libc::c_short;
    loop {
        // SAFETY: the descriptor is open for the call and `lock` outlives it.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &lock) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

impl<D: Dbm> Store for Cycle<D> {
    fn get(&mut self, key: &[u8]) -> Res<Option<Vec<u8>>> {
        self.cycle(self.writer_reads, |db| db.fetch(&c_key(key)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.cycle(true, |db| db.store(&c_key(key), value))
    }

    fn update(&mut self, key: &[u8], modify: &mut dyn FnMut(Option<&[u8]>) -> Vec<u8>) -> Res<()> {
        let key = c_key(key);
        self.cycle(true, |db| {
            let value = modify(db.fetch(&key)?.as_deref());
            db.store(&key, &value)
        })
    }

    /// One cycle for all the records.
    fn fill(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> Res<()> {
        self.cycle(true, |db| records.iter().try_for_each(|(key, value)| db.store(&c_key(key), value)))
    }
}
