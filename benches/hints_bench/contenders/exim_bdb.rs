//! Berkeley DB 5.3 as Exim's `hints_bdb.h` uses it (libdb5.3-dev; Debian's exim4 links it):
//! per open, a private environment in the DB's directory (`DB_CREATE | DB_INIT_MPOOL |
//! DB_PRIVATE`), then the DB (`DB_HASH` when creating, else `DB_UNKNOWN`; `DB_RDONLY` for a
//! reader); on close `DB->close(0)` and `DB_ENV->close(DB_FORCESYNC)`.
//!
//! Berkeley DB's handles are structs of method pointers whose layout is only in `db.h`; libdb
//! exports the methods' implementations under their own names (`DB->open` is `__db_open_pp`,
//! and so on), so those are declared and called here instead of the struct's fields.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;

use super::exim::{Dbm, EXIMDB_MODE};

const DB_CREATE: u32 = 0x0000_0001;
const DB_FORCESYNC: u32 = 0x0000_0001;
const DB_INIT_MPOOL: u32 = 0x0000_0400;
const DB_PRIVATE: u32 = 0x0001_0000;
const DB_RDONLY: u32 = 0x0000_0400;
const DB_HASH: c_int = 2;
const DB_UNKNOWN: c_int = 5;
const DB_NOTFOUND: c_int = -30988;

/// `DBT`.
#[repr(C)]
struct Dbt {
    data: *mut c_void,
    size: u32,
    ulen: u32,
    dlen: u32,
    doff: u32,
    app_data: *mut c_void,
    flags: u32,
}

impl Dbt {
    fn of(bytes: &[u8]) -> Dbt {
        Dbt { data: bytes.as_ptr().cast_mut().cast(), size: bytes.len() as u32, ..Dbt::empty() }
    }

    fn empty() -> Dbt {
        Dbt { data: null_mut(), size: 0, ulen: 0, dlen: 0, doff: 0, app_data: null_mut(), flags: 0 }
    }
}

#[link(name = "db-5.3")]
unsafe extern "C" {
    fn db_env_create(env: *mut *mut c_void, flags: u32) -> c_int;
    fn db_create(db: *mut *mut c_void, env: *mut c_void, flags: u32) -> c_int;
    /// `DB_ENV->open`.
    fn __env_open_pp(env: *mut c_void, home: *const c_char, flags: u32, mode: c_int) -> c_int;
    /// `DB_ENV->close`.
    fn __env_close_pp(env: *mut c_void, flags: u32) -> c_int;
    /// `DB->open`.
    fn __db_open_pp(
        db: *mut c_void,
        txn: *mut c_void,
        file: *const c_char,
        database: *const c_char,
        kind: c_int,
        flags: u32,
        mode: c_int,
    ) -> c_int;
    /// `DB->get`.
    fn __db_get_pp(db: *mut c_void, txn: *mut c_void, key: *mut Dbt, data: *mut Dbt, flags: u32) -> c_int;
    /// `DB->put`.
    fn __db_put_pp(db: *mut c_void, txn: *mut c_void, key: *mut Dbt, data: *mut Dbt, flags: u32) -> c_int;
    /// `DB->close`.
    fn __db_close_pp(db: *mut c_void, flags: u32) -> c_int;
}

/// An open environment and DB.
#[derive(Debug)]
pub struct Bdb {
    env: *mut c_void,
    db: *mut c_void,
}

fn bdb_error(what: &str, code: c_int) -> io::Error {
    if code > 0 {
        io::Error::from_raw_os_error(code)
    } else {
        io::Error::other(format!("{what}: Berkeley DB error {code}"))
    }
}

impl Dbm for Bdb {
    fn open(dir: &Path, file: &Path, writer: bool, create: bool) -> io::Result<Bdb> {
        let home = CString::new(dir.as_os_str().as_bytes())?;
        let name = CString::new(file.as_os_str().as_bytes())?;
        let (kind, flags) = match (create, writer) {
            (true, _) => (DB_HASH, DB_CREATE),
            (false, true) => (DB_UNKNOWN, 0),
            (false, false) => (DB_UNKNOWN, DB_RDONLY),
        };
        let mut env = null_mut();
        // SAFETY: each handle is created before use and closed on every failure path; the C
        // strings outlive the calls.
        unsafe {
            let code = db_env_create(&mut env, 0);
            if code != 0 {
                return Err(bdb_error("db_env_create", code));
            }
            let code = __env_open_pp(env, home.as_ptr(), DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE, 0);
            if code != 0 {
                __env_close_pp(env, 0);
                return Err(bdb_error("DB_ENV->open", code));
            }
            let mut db = null_mut();
            let code = db_create(&mut db, env, 0);
            if code != 0 {
                __env_close_pp(env, 0);
                return Err(bdb_error("db_create", code));
            }
            let code = __db_open_pp(db, null_mut(), name.as_ptr(), std::ptr::null(), kind, flags, EXIMDB_MODE as c_int);
            if code != 0 {
                __db_close_pp(db, 0);
                __env_close_pp(env, 0);
                return Err(bdb_error("DB->open", code));
            }
            Ok(Bdb { env, db })
        }
    }

    fn fetch(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut key = Dbt::of(key);
        let mut data = Dbt::empty();
        // SAFETY: the DB is open; the key's bytes outlive the call; `data` then points into the
        // DB's own memory, valid until its next call, and is copied out at once.
        unsafe {
            match __db_get_pp(self.db, null_mut(), &mut key, &mut data, 0) {
                0 => Ok(Some(std::slice::from_raw_parts(data.data.cast::<u8>(), data.size as usize).to_vec())),
                DB_NOTFOUND => Ok(None),
                code => Err(bdb_error("DB->get", code)),
            }
        }
    }

    fn store(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let (mut key, mut data) = (Dbt::of(key), Dbt::of(value));
        // SAFETY: the DB is open for writing and both buffers outlive the call.
        match unsafe { __db_put_pp(self.db, null_mut(), &mut key, &mut data, 0) } {
            0 => Ok(()),
            code => Err(bdb_error("DB->put", code)),
        }
    }

    fn close(self) -> io::Result<()> {
        // SAFETY: both handles are open and are not used again.
        let (db_code, env_code) = unsafe { (__db_close_pp(self.db, 0), __env_close_pp(self.env, DB_FORCESYNC)) };
        match (db_code, env_code) {
            (0, 0) => Ok(()),
            (0, code) => Err(bdb_error("DB_ENV->close", code)),
            (code, _) => Err(bdb_error("DB->close", code)),
        }
    }
}
