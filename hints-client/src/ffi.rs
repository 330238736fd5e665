//! The C ABI: `hints_*` functions over the blocking [`Client`], for MTAs written in C.
//!
//! The declarations C compiles against are in `include/hints_client.h`, written by hand and
//! checked in; a test here keeps it in step with [`EXPORTED`] and [`CODES`], and those with
//! the functions below.
//!
//! Each function is thin: it converts its arguments, calls one [`Client`] method, and writes
//! the answer to the caller's out-parameters. Everything else happens in one place,
//! `run`: the NULL-handle check, `catch_unwind` (a panic must never unwind into C, where it
//! would abort the host process, an Exim delivery say), and the mapping of every failure to
//! an integer code (see `code_of`) with its message kept for `hints_last_error`.
//!
//! Conventions, as the header states them:
//! - A NULL handle, a NULL pointer where one is required, or a NULL buffer with a non-zero
//!   length is [`HINTS_INVALID`]: the caller's mistake at the C level.
//! - A database name that is not UTF-8 or not a valid name (`[a-z0-9_-]{1,64}`), a condition
//!   that is not UTF-8, an empty key: [`HINTS_BAD_REQUEST`], as the Rust client answers a
//!   bad request, since such a name usually comes from configuration, not from a bug.
//! - Optional out-parameters may be NULL.
//! - A handle is used by one thread at a time; after `fork()` the child may go on using the
//!   parent's handle: the client notices the new pid and connects anew.

use std::ffi::{CStr, CString, OsStr, c_char, c_int, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use hints_proto::{DbName, ErrorCode, ErrorReply, Stamp};

use crate::blocking::Client;
use crate::config::{ClientConfig, DEFAULT_TIMEOUT, resolve_socket};
use crate::error::Error;
use crate::ops::CasOutcome;

/// The call succeeded.
pub const HINTS_OK: c_int = 0;
/// There is no record under the key (not an error: the out-parameters say nothing).
pub const HINTS_NOT_FOUND: c_int = 1;
/// No daemon could be reached in time ([`Error::Unavailable`]): carry on without the hint.
pub const HINTS_UNAVAILABLE: c_int = -1;
/// The daemon will not talk to this client ([`Error::Refused`]).
pub const HINTS_REFUSED: c_int = -2;
/// The request was wrong ([`Error::BadRequest`]): a bad database name, key or argument.
pub const HINTS_BAD_REQUEST: c_int = -3;
/// The daemon answered with an error ([`Error::Daemon`]): busy, shutting down, a failure.
pub const HINTS_DAEMON_ERROR: c_int = -4;
/// The daemon's answer could not be used ([`Error::Protocol`]).
pub const HINTS_PROTOCOL: c_int = -5;
/// A NULL handle, a NULL required pointer or a NULL buffer with a length, from the caller.
pub const HINTS_INVALID: c_int = -6;
/// The caller's buffer is too small for the value; the value's length was written.
pub const HINTS_BUFFER_TOO_SMALL: c_int = -7;
/// The library failed inside (a bug, caught before it reached C); the handle stays usable.
pub const HINTS_PANIC: c_int = -8;

/// Every code by the name the header gives it, so a test can compare the two.
pub const CODES: [(&str, c_int); 10] = [
    ("HINTS_OK", HINTS_OK),
    ("HINTS_NOT_FOUND", HINTS_NOT_FOUND),
    ("HINTS_UNAVAILABLE", HINTS_UNAVAILABLE),
    ("HINTS_REFUSED", HINTS_REFUSED),
    ("HINTS_BAD_REQUEST", HINTS_BAD_REQUEST),
    ("HINTS_DAEMON_ERROR", HINTS_DAEMON_ERROR),
    ("HINTS_PROTOCOL", HINTS_PROTOCOL),
    ("HINTS_INVALID", HINTS_INVALID),
    ("HINTS_BUFFER_TOO_SMALL", HINTS_BUFFER_TOO_SMALL),
    ("HINTS_PANIC", HINTS_PANIC),
];

/// Every function this module exports, so a test can compare them with the header's.
pub const EXPORTED: [&str; 23] = [
    "hints_open",
    "hints_close",
    "hints_set_timeout",
    "hints_strerror",
    "hints_last_error",
    "hints_get",
    "hints_get_alloc",
    "hints_free",
    "hints_put",
    "hints_put_if_absent",
    "hints_delete",
    "hints_scan",
    "hints_ratelimit",
    "hints_seen",
    "hints_greylist",
    "hints_serialize_take",
    "hints_serialize_release",
    "hints_counter",
    "hints_lock",
    "hints_unlock",
    "hints_connection_id",
    "hints_on_ring",
    "hints_ping",
];

/// How many records `hints_scan` asks for per page.
const SCAN_PAGE_RECORDS: u32 = 256;

/// What C holds as `hints_t *`: a client and the message of the last failed call on it.
pub struct Handle {
    client: Client,
    last_error: CString,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("client", &self.client).field("last_error", &self.last_error).finish()
    }
}

/// `hints_scan`'s callback: the caller's `user` pointer, then one record (key, value and
/// stamp, valid only during the call). Returns non-zero to stop the scan.
pub type ScanCallback = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        key: *const c_void,
        key_len: usize,
        value: *const c_void,
        value_len: usize,
        stamp_secs: u64,
        stamp_micros: u32,
    ) -> c_int,
>;

// ---- the one place where calls become codes -----------------------------------------------

/// Why a call failed: its code and the message `hints_last_error` gives.
#[derive(Debug)]
struct Failure {
    code: c_int,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure { code: HINTS_INVALID, message: message.into() }
    }

    /// A bad request caught here, shaped as the client's own bad requests are.
    fn bad_request(code: ErrorCode, message: impl Into<String>) -> Failure {
        Error::BadRequest(ErrorReply::new(code, message)).into()
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure { code: code_of(&err), message: err.to_string() }
    }
}

/// The code for each kind of client error: the whole mapping.
fn code_of(err: &Error) -> c_int {
    match err {
        Error::Unavailable { .. } => HINTS_UNAVAILABLE,
        Error::Refused(_) => HINTS_REFUSED,
        Error::BadRequest(_) => HINTS_BAD_REQUEST,
        Error::NotFound(_) => HINTS_NOT_FOUND,
        Error::Daemon(_) => HINTS_DAEMON_ERROR,
        Error::Protocol(_) => HINTS_PROTOCOL,
    }
}

/// Runs `body` with the client behind `handle` and turns its outcome into a code, keeping the
/// message for `hints_last_error` (emptied on success). A panic in `body` is caught, answered
/// [`HINTS_PANIC`], and the handle's connection is dropped, so the next call starts clean.
///
/// # Safety
/// `handle` is NULL or a live handle from `hints_open` that no other thread is using.
unsafe fn run(handle: *mut Handle, body: impl FnOnce(&mut Client) -> Result<(), Failure>) -> c_int {
    // SAFETY: by this function's contract, a non-NULL `handle` is live and ours alone.
    let Some(handle) = (unsafe { handle.as_mut() }) else {
        return HINTS_INVALID;
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut handle.client)));
    catch_unwind(AssertUnwindSafe(|| {
        let outcome = outcome.unwrap_or_else(|payload| {
            handle.client.disconnect();
            Err(Failure { code: HINTS_PANIC, message: format!("hints-client panicked: {}", panic_text(&*payload)) })
        });
        match outcome {
            Ok(()) => {
                handle.last_error = CString::default();
                HINTS_OK
            }
            Err(failure) => {
                handle.last_error = c_string(failure.message);
                failure.code
            }
        }
    }))
    .unwrap_or(HINTS_PANIC)
}

/// Runs `body`, answering `fallback` if it panics (for the functions that take no handle or
/// return no code).
fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// `text` as a C string, any NUL byte in it dropped.
fn c_string(text: impl Into<Vec<u8>>) -> CString {
    let mut bytes = text.into();
    bytes.retain(|&byte| byte != 0);
    CString::new(bytes).unwrap_or_default()
}

// ---- arguments ------------------------------------------------------------------------------

/// A database name from C.
///
/// # Safety
/// `db` is NULL or a NUL-terminated string.
unsafe fn db_arg(db: *const c_char) -> Result<DbName, Failure> {
    if db.is_null() {
        return Err(Failure::invalid("the database name is NULL"));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(db) }.to_bytes();
    let name = std::str::from_utf8(bytes)
        .map_err(|_| Failure::bad_request(ErrorCode::BAD_DB_NAME, format!("database name {bytes:?} is not UTF-8")))?;
    DbName::new(name).map_err(|reply| Error::BadRequest(reply).into())
}

/// A text argument (a condition) from C.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string that outlives `'a`.
unsafe fn str_arg<'a>(text: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if text.is_null() {
        return Err(Failure::invalid(format!("the {what} is NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|_| Failure::bad_request(ErrorCode::BAD_ARGUMENT, format!("the {what} {bytes:?} is not UTF-8")))
}

/// Bytes from C: `len` bytes at `ptr`; NULL is allowed only with a length of 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive `'a`.
unsafe fn bytes_arg<'a>(ptr: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::invalid(format!("the {what} is NULL with a length of {len}")))
        };
    }
    if isize::try_from(len).is_err() {
        return Err(Failure::invalid(format!("the {what}'s length {len} is not a length")));
    }
    // SAFETY: not NULL, `len` readable bytes by the caller's contract, and at most isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// A database name and a key, the first arguments of most calls.
///
/// # Safety
/// As [`db_arg`] and [`bytes_arg`].
unsafe fn db_key_args<'a>(
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
) -> Result<(DbName, &'a [u8]), Failure> {
    // SAFETY: passed on from the caller's contract.
    unsafe { Ok((db_arg(db)?, bytes_arg(key, key_len, "key")?)) }
}

/// The MTA's clock at the event: `None` (the daemon's clock) when `secs` is negative.
fn at_arg(secs: i64, micros: u32) -> Option<Stamp> {
    u64::try_from(secs).ok().map(|secs| Stamp { secs, micros })
}

/// The per-call timeout for `timeout_ms` (0: the default).
fn timeout_arg(timeout_ms: c_uint) -> Duration {
    if timeout_ms == 0 { DEFAULT_TIMEOUT } else { Duration::from_millis(u64::from(timeout_ms)) }
}

/// Writes `value` to an optional out-parameter.
///
/// # Safety
/// `ptr` is NULL or valid for a write of a `T`.
unsafe fn out<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: not NULL, and writable by the caller's contract.
        unsafe { ptr.write(value) };
    }
}

/// A required out-parameter.
fn required<T>(ptr: *mut T, what: &str) -> Result<*mut T, Failure> {
    if ptr.is_null() { Err(Failure::invalid(format!("{what} is NULL"))) } else { Ok(ptr) }
}

fn not_found(db: &DbName) -> Failure {
    Failure { code: HINTS_NOT_FOUND, message: format!("no record in {db} under the key") }
}

// ---- handles --------------------------------------------------------------------------------

/// Makes a handle for the daemon at `socket_path` (NULL or "": the default rule:
/// `$HINTSD_SOCKET`, `$XDG_RUNTIME_DIR/hintsd/hintsd.sock`, `/run/hintsd/hintsd.sock` for
/// root, `/tmp/hintsd-<euid>/hintsd.sock` otherwise), with a per-call timeout of `timeout_ms`
/// (0: one second). Does not connect: the first call does. NULL only if the library failed.
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string. The handle is given back with
/// [`hints_close`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_open(socket_path: *const c_char, timeout_ms: c_uint) -> *mut Handle {
    guard(std::ptr::null_mut(), || {
        let explicit = (!socket_path.is_null()).then(|| {
            // SAFETY: not NULL, and NUL-terminated by the caller's contract.
            PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(socket_path) }.to_bytes()))
        });
        let config = ClientConfig::new(resolve_socket(explicit)).with_timeout(timeout_arg(timeout_ms));
        let handle = Handle { client: Client::new(config), last_error: CString::default() };
        Box::into_raw(Box::new(handle))
    })
}

/// Closes the handle's connection (freeing any serialize slot it holds) and frees it. NULL
/// is ignored.
///
/// # Safety
/// `handle` is NULL or a handle from [`hints_open`] not closed before; it is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_close(handle: *mut Handle) {
    if !handle.is_null() {
        // SAFETY: a live handle from hints_open (Box::into_raw), given back once.
        guard((), || drop(unsafe { Box::from_raw(handle) }));
    }
}

/// Sets the per-call timeout (0: one second) for the calls that follow. The connection, and any
/// serialize slot it holds, is kept.
///
/// # Safety
/// `handle` is NULL or a live handle from [`hints_open`] that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_set_timeout(handle: *mut Handle, timeout_ms: c_uint) -> c_int {
    // SAFETY: passed on from the caller's contract.
    unsafe {
        run(handle, |client| {
            client.set_timeout(timeout_arg(timeout_ms));
            Ok(())
        })
    }
}

/// A short description of `code`, a static string (never NULL, also for unknown codes).
///
/// # Safety
/// Safe for any `code`; `unsafe` only as every exported function is.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_strerror(code: c_int) -> *const c_char {
    let text = match code {
        HINTS_OK => c"success",
        HINTS_NOT_FOUND => c"no record under the key",
        HINTS_UNAVAILABLE => c"hintsd is unavailable",
        HINTS_REFUSED => c"hintsd refused this client",
        HINTS_BAD_REQUEST => c"bad request",
        HINTS_DAEMON_ERROR => c"hintsd could not answer",
        HINTS_PROTOCOL => c"hintsd sent an answer this client cannot use",
        HINTS_INVALID => c"invalid argument (a NULL handle or pointer)",
        HINTS_BUFFER_TOO_SMALL => c"the buffer is too small for the value",
        HINTS_PANIC => c"internal error in hints-client",
        _ => c"unknown hints error code",
    };
    text.as_ptr()
}

/// The full message of the last call on `handle` that did not return `HINTS_OK` ("" after one
/// that did), owned by the handle and valid until its next call. For a NULL handle, a static
/// string saying so.
///
/// # Safety
/// `handle` is NULL or a live handle from [`hints_open`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_last_error(handle: *const Handle) -> *const c_char {
    const NULL_HANDLE: &CStr = c"the hints handle is NULL";
    // SAFETY: a non-NULL handle is live by the caller's contract.
    guard(NULL_HANDLE.as_ptr(), || {
        unsafe { handle.as_ref() }.map_or(NULL_HANDLE.as_ptr(), |handle| handle.last_error.as_ptr())
    })
}

/// Checks that the daemon answers (connecting if need be).
///
/// # Safety
/// `handle` is NULL or a live handle from [`hints_open`] that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_ping(handle: *mut Handle) -> c_int {
    // SAFETY: passed on from the caller's contract.
    unsafe { run(handle, |client| Ok(client.ping()?)) }
}

// ---- records --------------------------------------------------------------------------------

/// Reads the record under `key` into `buf`. `HINTS_NOT_FOUND` when there is none;
/// `HINTS_BUFFER_TOO_SMALL` when `buf_len` is short, with the length needed in `*value_len`.
///
/// # Safety
/// `handle` as for [`hints_ping`]; `db` is NULL or NUL-terminated; `key` is NULL or
/// `key_len` readable bytes; `buf` is NULL or `buf_len` writable bytes; each out-parameter is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_get(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    buf: *mut c_void,
    buf_len: usize,
    value_len: *mut usize,
    stamp_secs: *mut u64,
    stamp_micros: *mut u32,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            if buf.is_null() && buf_len > 0 {
                return Err(Failure::invalid(format!("the buffer is NULL with a length of {buf_len}")));
            }
            // The value is copied from where the reply was read straight into `buf`.
            let found = client.get_with(&db, key, |record| {
                let record = record?;
                let len = record.value.len();
                out(value_len, len);
                if len > buf_len {
                    return Some(Err(Failure {
                        code: HINTS_BUFFER_TOO_SMALL,
                        message: format!("the value is {len} bytes, the buffer {buf_len}"),
                    }));
                }
                if len > 0 {
                    std::ptr::copy_nonoverlapping(record.value.as_ptr(), buf.cast::<u8>(), len);
                }
                out(stamp_secs, record.stamp.secs);
                out(stamp_micros, record.stamp.micros);
                Some(Ok(()))
            })?;
            found.unwrap_or_else(|| {
                out(value_len, 0);
                Err(not_found(&db))
            })
        })
    }
}

/// Reads the record under `key` into a buffer this call allocates: `*value` (free it with
/// [`hints_free`]) and `*value_len`. `HINTS_NOT_FOUND` (with `*value` NULL) when there is
/// none.
///
/// # Safety
/// As [`hints_get`]; `value` and `value_len` are required and writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_get_alloc(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *mut *mut c_void,
    value_len: *mut usize,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        // Cleared before anything can fail, a NULL handle included: the header promises a NULL
        // value on every result but HINTS_OK.
        out(value, std::ptr::null_mut());
        out(value_len, 0);
        run(handle, |client| {
            let (value, value_len) = (required(value, "value")?, required(value_len, "value_len")?);
            let (db, key) = db_key_args(db, key, key_len)?;
            let record = client.get(&db, key)?.ok_or_else(|| not_found(&db))?;
            let len = record.value.len();
            // malloc, so that hints_free is free(3) and any allocator mix-up is harmless.
            let copy = libc::malloc(len.max(1));
            if copy.is_null() {
                return Err(Failure { code: HINTS_PANIC, message: format!("cannot allocate {len} bytes") });
            }
            std::ptr::copy_nonoverlapping(record.value.as_ptr(), copy.cast::<u8>(), len);
            value.write(copy);
            value_len.write(len);
            Ok(())
        })
    }
}

/// Frees a value from [`hints_get_alloc`]. NULL is ignored.
///
/// # Safety
/// `value` is NULL or a value from [`hints_get_alloc`] not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_free(value: *mut c_void) {
    // SAFETY: NULL or a malloc'd value not yet freed, by the caller's contract.
    guard((), || unsafe { libc::free(value) });
}

/// Stores `value` under `key`; the stamp the daemon gave the write goes to the optional
/// `stamp_secs` and `stamp_micros`.
///
/// # Safety
/// As [`hints_get`]; `value` is NULL (with `value_len` 0) or `value_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_put(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    stamp_secs: *mut u64,
    stamp_micros: *mut u32,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            let stamp = client.put(&db, key, bytes_arg(value, value_len, "value")?)?;
            out(stamp_secs, stamp.secs);
            out(stamp_micros, stamp.micros);
            Ok(())
        })
    }
}

/// Stores `value` under `key` only if there is no record there yet (a compare-and-set against
/// "no record"); whether it was stored (1) or a record was already there (0, nothing changed)
/// goes to the optional `stored`.
///
/// # Safety
/// As [`hints_put`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_put_if_absent(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    stored: *mut c_int,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            let value = bytes_arg(value, value_len, "value")?;
            let swapped = match client.compare_and_set(&db, key, None, Some(value))? {
                CasOutcome::Swapped(_) => 1,
                CasOutcome::Conflict(_) => 0,
            };
            out(stored, swapped);
            Ok(())
        })
    }
}

/// Deletes the record under `key`; whether there was one goes to the optional `existed`.
///
/// # Safety
/// As [`hints_get`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_delete(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    existed: *mut c_int,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            out(existed, c_int::from(client.delete(&db, key)?));
            Ok(())
        })
    }
}

/// Calls `cb` for every record whose key starts with `prefix` (NULL with length 0: every
/// record), in key order, fetching pages as it goes, until the records end or `cb` returns
/// non-zero. Returns `HINTS_OK` in both cases. The handle's timeout applies to each page, not
/// to the whole scan (a caller that needs a deadline stops the scan from `cb`).
///
/// # Safety
/// As [`hints_get`]; `prefix` is NULL (with `prefix_len` 0) or `prefix_len` readable bytes;
/// `cb` does not call a function on this same handle, and does not unwind.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_scan(
    handle: *mut Handle,
    db: *const c_char,
    prefix: *const c_void,
    prefix_len: usize,
    cb: ScanCallback,
    user: *mut c_void,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, prefix) = (db_arg(db)?, bytes_arg(prefix, prefix_len, "prefix")?);
            let cb = cb.ok_or_else(|| Failure::invalid("the scan callback is NULL"))?;
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = client.scan(&db, prefix, after.as_deref(), SCAN_PAGE_RECORDS)?;
                for record in &page.records {
                    let (key, value, stamp) = (&record.key, &record.value, record.stamp);
                    let stop = cb(
                        user,
                        key.as_ptr().cast(),
                        key.len(),
                        value.as_ptr().cast(),
                        value.len(),
                        stamp.secs,
                        stamp.micros,
                    );
                    if stop != 0 {
                        return Ok(());
                    }
                }
                match page.next {
                    // Each page must start past the last one, or a confused daemon would keep
                    // this loop going for ever.
                    Some(next) if after.as_ref().is_none_or(|last| next > *last) => after = Some(next),
                    Some(_) => {
                        return Err(Failure {
                            code: HINTS_PROTOCOL,
                            message: "the scan cursor did not move forward".to_owned(),
                        });
                    }
                    None => return Ok(()),
                }
            }
        })
    }
}

// ---- hints ----------------------------------------------------------------------------------

/// Applies Exim's `ratelimit` condition (`"100 / 1h / per_rcpt / 192.0.2.1"`) as at
/// `at_secs`.`at_micros` (the daemon's clock when `at_secs` is negative); the smoothed rate
/// goes to the optional `rate`, and whether it is over the limit (1) or not (0) to `over`.
///
/// # Safety
/// `handle` as for [`hints_ping`]; `condition` is NULL or NUL-terminated; each out-parameter
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_ratelimit(
    handle: *mut Handle,
    condition: *const c_char,
    at_secs: i64,
    at_micros: u32,
    rate: *mut f64,
    over: *mut c_int,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let outcome = client.ratelimit(str_arg(condition, "condition")?, at_arg(at_secs, at_micros))?;
            out(rate, outcome.rate);
            out(over, c_int::from(outcome.over));
            Ok(())
        })
    }
}

/// Applies Exim's `seen` condition (`"-5m / key=K"`) as at `at_secs`.`at_micros` (the
/// daemon's clock when `at_secs` is negative); the condition's result (1 or 0) goes to the
/// optional `result`.
///
/// # Safety
/// As [`hints_ratelimit`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_seen(
    handle: *mut Handle,
    condition: *const c_char,
    at_secs: i64,
    at_micros: u32,
    result: *mut c_int,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let outcome = client.seen(str_arg(condition, "condition")?, at_arg(at_secs, at_micros))?;
            out(result, c_int::from(outcome.result));
            Ok(())
        })
    }
}

/// Checks the greylist triplet under `key` in `db` as at `at_secs`.`at_micros` (the daemon's
/// clock when `at_secs` is negative): the first attempt is deferred, a retry after
/// `delay_secs` passes, a triplet unseen for `expiry_secs` is forgotten. Whether it passes (1)
/// goes to the optional `pass`, the seconds of delay left to `retry_after_secs`.
///
/// # Safety
/// As [`hints_get`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_greylist(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    delay_secs: u64,
    expiry_secs: u64,
    at_secs: i64,
    at_micros: u32,
    pass: *mut c_int,
    retry_after_secs: *mut u64,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            let (delay, expiry) = (Duration::from_secs(delay_secs), Duration::from_secs(expiry_secs));
            let outcome = client.greylist(&db, key, delay, expiry, at_arg(at_secs, at_micros))?;
            out(pass, c_int::from(outcome.pass));
            out(retry_after_secs, outcome.retry_after_secs);
            Ok(())
        })
    }
}

/// Takes one of `limit` slots under `key` for this handle's connection; whether it holds one
/// now (1) goes to the optional `held`, how many holders there are to `holders`. The slot
/// goes with the connection: on [`hints_serialize_release`], [`hints_close`],
/// a timed-out call, or (in a child) after `fork()`.
///
/// # Safety
/// As [`hints_get`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_serialize_take(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    limit: u32,
    held: *mut c_int,
    holders: *mut u32,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            let outcome = client.serialize_take(&db, key, limit)?;
            out(held, c_int::from(outcome.held));
            out(holders, outcome.holders);
            Ok(())
        })
    }
}

/// Gives back the slot this handle's connection holds under `key` (a no-op if it holds
/// none); how many holders are left goes to the optional `holders`.
///
/// # Safety
/// As [`hints_get`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_serialize_release(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    holders: *mut u32,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            out(holders, client.serialize_release(&db, key)?.holders);
            Ok(())
        })
    }
}

/// Adds `delta` to the 64-bit counter under `key` (a missing one starts at 0) as at
/// `at_secs`.`at_micros` (the daemon's clock when `at_secs` is negative); a counter this
/// creates lives `expiry_secs` (0: no expiry of its own). The new value goes to the optional
/// `value`.
///
/// # Safety
/// As [`hints_get`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_counter(
    handle: *mut Handle,
    db: *const c_char,
    key: *const c_void,
    key_len: usize,
    delta: i64,
    expiry_secs: u64,
    at_secs: i64,
    at_micros: u32,
    value: *mut i64,
) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            let (db, key) = db_key_args(db, key, key_len)?;
            let expiry = (expiry_secs > 0).then(|| Duration::from_secs(expiry_secs));
            out(value, client.counter(&db, key, delta, expiry, at_arg(at_secs, at_micros))?);
            Ok(())
        })
    }
}

// ---- exclusive sessions ---------------------------------------------------------------------

/// Holds `db` exclusively for `lease_ms` milliseconds (1 to 60000) for this handle's
/// connection: other clients' requests to it wait until [`hints_unlock`], the lease's end or
/// the connection's close. Taking it again while holding it renews the lease. Waits for
/// another holder at most the handle's timeout.
///
/// # Safety
/// `handle` as for [`hints_ping`]; `db` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_lock(handle: *mut Handle, db: *const c_char, lease_ms: c_uint) -> c_int {
    // SAFETY: every pointer is passed on under the caller's contract above.
    unsafe {
        run(handle, |client| {
            client.lock(&db_arg(db)?, Duration::from_millis(u64::from(lease_ms)))?;
            Ok(())
        })
    }
}

/// The id of the handle's open connection (1, 2, ... in the order this handle opened them), or
/// 0 when it has none. Sessions and slots belong to a connection: a caller that holds one
/// checks before its next call that the id has not changed (a timed-out call drops the
/// connection, and its sessions and slots with it).
///
/// # Safety
/// `handle` is NULL (giving 0) or a live handle from [`hints_open`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_connection_id(handle: *const Handle) -> u64 {
    // SAFETY: by the contract above, a non-NULL handle is live; this only reads it.
    let Some(handle) = (unsafe { handle.as_ref() }) else {
        return 0;
    };
    catch_unwind(AssertUnwindSafe(|| handle.client.connection_id().unwrap_or(0))).unwrap_or(0)
}

/// 1 while the handle's open connection speaks through a shared-memory ring, 0 when it is on
/// its socket or has no connection (NULL handle included).
///
/// # Safety
/// `handle` is NULL (giving 0) or a live handle from [`hints_open`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_on_ring(handle: *const Handle) -> c_int {
    // SAFETY: by the contract above, a non-NULL handle is live; this only reads it.
    let Some(handle) = (unsafe { handle.as_ref() }) else {
        return 0;
    };
    catch_unwind(AssertUnwindSafe(|| c_int::from(handle.client.is_on_ring()))).unwrap_or(0)
}

/// Ends this handle's exclusive session on `db`; whether the connection still held it (1), or
/// it had gone with the lease or an earlier connection (0), goes to the optional `held`.
///
/// # Safety
/// `handle` as for [`hints_ping`]; `db` is NULL or NUL-terminated; `held` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hints_unlock(handle: *mut Handle, db: *const c_char, held: *mut c_int) -> c_int {
    // SAFETY: every pointer is passed on, or used, under the caller's contract above.
    unsafe {
        run(handle, |client| {
            out(held, c_int::from(client.unlock(&db_arg(db)?)?));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::ptr::{null, null_mut};

    use super::*;

    const HEADER: &str = include_str!("../include/hints_client.h");

    /// The header without its comments, so names in prose do not count.
    fn header_code() -> String {
        let mut code = String::new();
        let mut rest = HEADER;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("/*") {
                rest = after.split_once("*/").map_or("", |(_, tail)| tail);
            } else if let Some(after) = rest.strip_prefix("//") {
                rest = after.split_once('\n').map_or("", |(_, tail)| tail);
            } else {
                let ch = rest.chars().next().expect("not empty");
                code.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
        code
    }

    /// Names `hints_[a-z_]+` followed (after blanks) by `(`: the functions the header declares.
    fn header_functions() -> BTreeSet<String> {
        let code = header_code();
        let mut names = BTreeSet::new();
        for (start, _) in code.match_indices("hints_") {
            if start > 0 && code[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let tail = &code[start + "hints_".len()..];
            let word_len = tail.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(tail.len());
            if word_len > 0 && tail[word_len..].trim_start().starts_with('(') {
                names.insert(format!("hints_{}", &tail[..word_len]));
            }
        }
        names
    }

    #[test]
    fn the_header_declares_exactly_the_functions_this_module_exports() {
        let listed: BTreeSet<String> = EXPORTED.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(listed.len(), EXPORTED.len(), "a name is listed twice");
        assert_eq!(header_functions(), listed, "include/hints_client.h and EXPORTED differ");
        let source = include_str!("ffi.rs");
        let defined: BTreeSet<String> = source
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix("pub unsafe extern \"C\" fn "))
            .map(|rest| rest.split('(').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(defined, listed, "the functions defined here and EXPORTED differ");
        let no_mangle = source.lines().filter(|line| line.trim() == "#[unsafe(no_mangle)]").count();
        assert_eq!(no_mangle, EXPORTED.len(), "every exported function is #[unsafe(no_mangle)]");
    }

    #[test]
    fn the_header_defines_every_code_with_its_value() {
        let code = header_code();
        let defined: BTreeSet<(String, c_int)> = code
            .lines()
            .filter_map(|line| line.trim().strip_prefix("#define HINTS_"))
            .filter_map(|rest| {
                let mut words = rest.split_whitespace();
                let name = format!("HINTS_{}", words.next()?);
                let value = words.next()?.trim_matches(|c| c == '(' || c == ')').parse().ok()?;
                Some((name, value))
            })
            .collect();
        let want: BTreeSet<(String, c_int)> = CODES.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect();
        assert_eq!(defined, want);
    }

    fn text(ptr: *const c_char) -> String {
        assert!(!ptr.is_null());
        // SAFETY: the library's strings are NUL-terminated and live at least as long as this.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }

    #[test]
    fn every_code_has_its_own_description() {
        // SAFETY: hints_strerror is safe for any code.
        let descriptions: BTreeSet<String> =
            CODES.iter().map(|(_, code)| text(unsafe { hints_strerror(*code) })).collect();
        assert_eq!(descriptions.len(), CODES.len());
        // SAFETY: as above.
        let unknown = text(unsafe { hints_strerror(42) });
        assert!(!descriptions.contains(&unknown), "{unknown}");
    }

    #[test]
    fn every_function_refuses_a_null_handle() {
        let (db, key) = (c"misc".as_ptr(), b"k".as_ptr().cast::<c_void>());
        // SAFETY: every call gets a NULL handle, which each function must refuse untouched.
        unsafe {
            let codes = [
                hints_set_timeout(null_mut(), 5),
                hints_ping(null_mut()),
                hints_get(null_mut(), db, key, 1, null_mut(), 0, null_mut(), null_mut(), null_mut()),
                hints_get_alloc(null_mut(), db, key, 1, null_mut(), null_mut()),
                hints_put(null_mut(), db, key, 1, key, 1, null_mut(), null_mut()),
                hints_delete(null_mut(), db, key, 1, null_mut()),
                hints_scan(null_mut(), db, null(), 0, None, null_mut()),
                hints_ratelimit(null_mut(), c"1 / 1h / k".as_ptr(), -1, 0, null_mut(), null_mut()),
                hints_seen(null_mut(), c"1h / key=k".as_ptr(), -1, 0, null_mut()),
                hints_greylist(null_mut(), db, key, 1, 1, 1, -1, 0, null_mut(), null_mut()),
                hints_serialize_take(null_mut(), db, key, 1, 1, null_mut(), null_mut()),
                hints_serialize_release(null_mut(), db, key, 1, null_mut()),
                hints_counter(null_mut(), db, key, 1, 1, 0, -1, 0, null_mut()),
                hints_put_if_absent(null_mut(), db, key, 1, key, 1, null_mut()),
                hints_lock(null_mut(), db, 1000),
                hints_unlock(null_mut(), db, null_mut()),
            ];
            assert!(codes.iter().all(|&code| code == HINTS_INVALID), "{codes:?}");
            assert_eq!(text(hints_last_error(null())), "the hints handle is NULL");
            hints_close(null_mut());
            hints_free(null_mut());
        }
    }

    /// A handle for a socket nobody listens on, with a short timeout.
    fn unreachable() -> (tempfile::TempDir, *mut Handle) {
        let dir = tempfile::tempdir().unwrap();
        let path = c_string(dir.path().join("none.sock").as_os_str().as_bytes());
        // SAFETY: a NUL-terminated path.
        let handle = unsafe { hints_open(path.as_ptr(), 200) };
        assert!(!handle.is_null());
        (dir, handle)
    }

    #[test]
    fn bad_arguments_are_refused_before_any_connection() {
        let (_dir, handle) = unreachable();
        let key = b"k".as_ptr().cast::<c_void>();
        // SAFETY: a live handle, and pointers that are NULL or valid for their lengths.
        unsafe {
            let get = |db: *const c_char, key: *const c_void, key_len: usize| {
                hints_get(handle, db, key, key_len, null_mut(), 0, null_mut(), null_mut(), null_mut())
            };
            assert_eq!(get(null(), key, 1), HINTS_INVALID);
            assert_eq!(text(hints_last_error(handle)), "the database name is NULL");
            assert_eq!(get(c"misc".as_ptr(), null(), 1), HINTS_INVALID);
            assert_eq!(get(c"Bad Name".as_ptr(), key, 1), HINTS_BAD_REQUEST);
            assert!(text(hints_last_error(handle)).contains("database name"), "{}", text(hints_last_error(handle)));
            assert_eq!(get(c"mi\xffsc".as_ptr(), key, 1), HINTS_BAD_REQUEST);
            assert!(text(hints_last_error(handle)).contains("not UTF-8"));
            assert_eq!(get(c"misc".as_ptr(), null(), 0), HINTS_BAD_REQUEST, "an empty key");
            assert_eq!(
                hints_get(handle, c"misc".as_ptr(), key, 1, null_mut(), 8, null_mut(), null_mut(), null_mut()),
                HINTS_INVALID
            );
            assert_eq!(hints_get_alloc(handle, c"misc".as_ptr(), key, 1, null_mut(), null_mut()), HINTS_INVALID);
            assert_eq!(hints_scan(handle, c"misc".as_ptr(), null(), 0, None, null_mut()), HINTS_INVALID);
            assert_eq!(hints_ratelimit(handle, null(), -1, 0, null_mut(), null_mut()), HINTS_INVALID);
            assert_eq!(hints_seen(handle, c"\xff".as_ptr(), -1, 0, null_mut()), HINTS_BAD_REQUEST);
            assert_eq!(
                hints_serialize_take(handle, c"misc".as_ptr(), key, 1, 0, null_mut(), null_mut()),
                HINTS_BAD_REQUEST
            );
            assert_eq!(
                hints_ratelimit(handle, c"1 / 1h / k".as_ptr(), 5, 1_000_000, null_mut(), null_mut()),
                HINTS_BAD_REQUEST
            );
            assert_eq!(hints_lock(handle, null(), 1000), HINTS_INVALID);
            assert_eq!(hints_lock(handle, c"misc".as_ptr(), 0), HINTS_BAD_REQUEST, "a lease of 0");
            assert_eq!(hints_lock(handle, c"misc".as_ptr(), 60_001), HINTS_BAD_REQUEST, "a lease past the limit");
            assert_eq!(hints_unlock(handle, c"Bad Name".as_ptr(), null_mut()), HINTS_BAD_REQUEST);
            assert_eq!(hints_put_if_absent(handle, c"misc".as_ptr(), key, 1, null(), 3, null_mut()), HINTS_INVALID);
            hints_close(handle);
        }
    }

    #[test]
    fn a_missing_daemon_is_unavailable_and_the_message_names_the_socket() {
        let (dir, handle) = unreachable();
        // SAFETY: a live handle.
        unsafe {
            assert_eq!(hints_ping(handle), HINTS_UNAVAILABLE);
            let message = text(hints_last_error(handle));
            assert!(message.contains(&dir.path().display().to_string()), "{message}");
            assert_eq!(hints_set_timeout(handle, 0), HINTS_OK);
            assert_eq!(text(hints_last_error(handle)), "", "a call that succeeds clears the message");
            hints_close(handle);
        }
    }

    #[test]
    fn a_panic_inside_is_a_code_and_the_handle_stays_usable() {
        let (_dir, handle) = unreachable();
        // SAFETY: a live handle.
        unsafe {
            assert_eq!(run(handle, |_| panic!("deliberately")), HINTS_PANIC);
            assert_eq!(text(hints_last_error(handle)), "hints-client panicked: deliberately");
            assert_eq!(hints_ping(handle), HINTS_UNAVAILABLE, "the handle still works");
            hints_close(handle);
        }
    }

    #[test]
    fn every_client_error_has_its_code() {
        let reply = || ErrorReply::new(ErrorCode::BUSY, "x");
        let cases = [
            (Error::Unavailable { socket: PathBuf::from("/s"), reason: "r".into() }, HINTS_UNAVAILABLE),
            (Error::Refused(reply()), HINTS_REFUSED),
            (Error::BadRequest(reply()), HINTS_BAD_REQUEST),
            (Error::NotFound(reply()), HINTS_NOT_FOUND),
            (Error::Daemon(reply()), HINTS_DAEMON_ERROR),
            (Error::Protocol("p".into()), HINTS_PROTOCOL),
        ];
        for (err, code) in cases {
            let failure = Failure::from(err.clone());
            assert_eq!((failure.code, failure.message), (code, err.to_string()));
        }
    }

    #[test]
    fn messages_with_nul_bytes_become_c_strings_without_them() {
        assert_eq!(c_string("a\0b"), CString::new("ab").unwrap());
    }

    #[test]
    fn a_negative_at_means_the_daemons_clock() {
        assert_eq!(at_arg(-1, 5), None);
        assert_eq!(at_arg(7, 5), Some(Stamp { secs: 7, micros: 5 }));
        assert_eq!(timeout_arg(0), DEFAULT_TIMEOUT);
        assert_eq!(timeout_arg(250), Duration::from_millis(250));
    }
}
