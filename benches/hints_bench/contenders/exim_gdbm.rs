//! GDBM as Exim's `hints_gdbm.h` uses it (libgdbm-dev): `gdbm_open(name, 0, flags, mode,
//! NULL)` with `GDBM_WRCREAT`, `GDBM_WRITER` or `GDBM_READER` and gdbm's own locking left on,
//! `gdbm_fetch`, `gdbm_store(GDBM_REPLACE)`, `gdbm_close` (which syncs a writer's file to disk:
//! gdbm 1.23 maps the file and closes with `msync(MS_SYNC)`).

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::exim::{Dbm, EXIMDB_MODE};

const GDBM_READER: c_int = 0;
const GDBM_WRITER: c_int = 1;
const GDBM_WRCREAT: c_int = 2;
const GDBM_REPLACE: c_int = 1;

#[repr(C)]
struct Datum {
    dptr: *mut c_char,
    dsize: c_int,
}

impl Datum {
    fn of(bytes: &[u8]) -> Datum {
        Datum { dptr: bytes.as_ptr().cast_mut().cast(), dsize: bytes.len() as c_int }
    }
}

#[link(name = "gdbm")]
unsafe extern "C" {
    fn gdbm_open(
        name: *const c_char,
        block_size: c_int,
        flags: c_int,
        mode: c_int,
        fatal: Option<unsafe extern "C" fn(*const c_char)>,
    ) -> *mut c_void;
    fn gdbm_close(dbf: *mut c_void) -> c_int;
    fn gdbm_fetch(dbf: *mut c_void, key: Datum) -> Datum;
    fn gdbm_store(dbf: *mut c_void, key: Datum, content: Datum, flag: c_int) -> c_int;
    fn gdbm_errno_location() -> *mut c_int;
    fn gdbm_strerror(error: c_int) -> *const c_char;
}

/// An open GDBM file.
#[derive(Debug)]
pub struct Gdbm(*mut c_void);

fn gdbm_error(what: &str) -> io::Error {
    // SAFETY: gdbm_errno_location returns this thread's error cell; gdbm_strerror a static string.
    let message = unsafe { std::ffi::CStr::from_ptr(gdbm_strerror(*gdbm_errno_location())) };
    io::Error::other(format!("{what}: {}", message.to_string_lossy()))
}

impl Dbm for Gdbm {
    fn open(_dir: &Path, file: &Path, writer: bool, create: bool) -> io::Result<Gdbm> {
        let name = CString::new(file.as_os_str().as_bytes())?;
        let flags = match (create, writer) {
            (true, _) => GDBM_WRCREAT,
            (false, true) => GDBM_WRITER,
            (false, false) => GDBM_READER,
        };
        // SAFETY: `name` is a C string that outlives the call.
        let dbf = unsafe { gdbm_open(name.as_ptr(), 0, flags, EXIMDB_MODE as c_int, None) };
        if dbf.is_null() {
            let os = io::Error::last_os_error();
            return Err(if os.kind() == io::ErrorKind::NotFound { os } else { gdbm_error("gdbm_open") });
        }
        Ok(Gdbm(dbf))
    }

    fn fetch(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        // SAFETY: the handle is open and the key's bytes outlive the call.
        let found = unsafe { gdbm_fetch(self.0, Datum::of(key)) };
        if found.dptr.is_null() {
            return Ok(None);
        }
        // SAFETY: gdbm returned `dsize` bytes in memory from malloc, which we now own.
        let value = unsafe {
            let value = std::slice::from_raw_parts(found.dptr.cast::<u8>(), found.dsize as usize).to_vec();
            libc::free(found.dptr.cast());
            value
        };
        Ok(Some(value))
    }

    fn store(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        // SAFETY: the handle is open for writing and both buffers outlive the call.
        if unsafe { gdbm_store(self.0, Datum::of(key), Datum::of(value), GDBM_REPLACE) } != 0 {
            return Err(gdbm_error("gdbm_store"));
        }
        Ok(())
    }

    fn close(self) -> io::Result<()> {
        // SAFETY: the handle is open and is not used again.
        if unsafe { gdbm_close(self.0) } != 0 {
            return Err(gdbm_error("gdbm_close"));
        }
        Ok(())
    }
}
