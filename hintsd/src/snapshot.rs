//! Snapshots: each database's records on disk, so that hints survive a daemon restart.
//!
//! # Files
//! One file per database, `<dir>/<db>.snapshot`. [`write_atomically`] writes
//! `<db>.snapshot.tmp`, fsyncs it, renames it over the snapshot and fsyncs the directory, so a
//! crash leaves either the old snapshot or the new one, never a mix. [`load`] reads it back at
//! start; a file that is damaged, foreign, from a newer hintsd or of another database is renamed
//! to `<db>.snapshot.bad-<unix secs>` (never deleted, never trusted) and the database starts
//! empty. [`snapshot_files`] lists the databases that have a snapshot, so the daemon can start
//! them at boot.
//!
//! # Format, version 1
//! All integers are little-endian.
//!
//! ```text
//! header    magic "HNTSSNAP"                8 bytes
//!           format version                  u32 = 1
//!           database name length            u8, then the name ([a-z0-9_-], 1..=64 bytes)
//!           record count                    u64, at most SNAPSHOT_RECORDS_MAX
//! record    key length                      u32, 1..=KEY_BYTES_MAX, then the key
//! (count    value length                    u32, 0..=VALUE_BYTES_MAX, then the value
//!  times)   stamp seconds                   u64
//!           stamp microseconds              u32, below 1 000 000
//!           expires                         u64, a Unix second; 0 = none
//! trailer   CRC-32 (IEEE, crc32fast) of every byte before it, u32
//! ```
//!
//! Records are in the store's order: keys strictly increase (bytewise), which also rules out
//! duplicates.
//!
//! # Reading trusts nothing
//! Records from disk are validated like client input. [`decode`] checks the magic and the version
//! (which fixes the layout), then the checksum over the whole file before it parses a single
//! record, so a damaged file never yields records. It then checks every field: each length
//! against its limit before anything is allocated for it, the record count against
//! [`SNAPSHOT_RECORDS_MAX`] and against the bytes actually left, the microseconds, the database
//! name, the key order, and that nothing follows the last record. What a hostile file can make
//! it allocate is bounded by the file's own size.
//!
//! # Where it runs
//! [`encode`] only copies bytes into one buffer sized ahead, so the database's actor can run it
//! on its own records: it holds the mailbox for the copy alone (about 0.2 s per million
//! 120-byte records on a 2-vCPU VM, most of it the kernel faulting in the new buffer's pages).
//! [`write_atomically`] and [`load`] do blocking file I/O and belong off the actor's thread.
//!
//! When the checksum does not match, the file is walked once more, allocating nothing, only to
//! name the damage: [`SnapshotError::Truncated`] when its header and lengths declare more bytes
//! than there are (a cut file; a damaged length can read the same), else
//! [`SnapshotError::Checksum`].

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::num::NonZeroU64;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hints_proto::limits::{DB_NAME_BYTES_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use hints_proto::{DbName, Stamp};

use crate::store::Entry;

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"HNTSSNAP";
/// The format version this module writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The most records a snapshot may declare: far above any database's entry limit, and low
/// enough that a count read from disk cannot by itself ask for an absurd allocation.
pub const SNAPSHOT_RECORDS_MAX: u64 = 100_000_000;
/// The largest snapshot file [`load`] reads into memory. Exim's hints databases are megabytes;
/// this only stops a runaway file from exhausting the host at start.
pub const SNAPSHOT_BYTES_MAX: u64 = 16 << 30;
/// [`decode`] reports progress every this many records.
pub const PROGRESS_EVERY_RECORDS: u64 = 100_000;
/// The mode of a snapshot directory that [`write_atomically`] creates (before the umask).
pub const SNAPSHOT_DIR_MODE: u32 = 0o750;
/// The mode of a snapshot file (before the umask): hints name hosts and addresses.
pub const SNAPSHOT_FILE_MODE: u32 = 0o640;
/// How many `.bad-<secs>[-n]` names [`load`] tries when setting a file aside before it gives up
/// rather than overwrite an earlier bad file.
pub const SET_ASIDE_NAMES_MAX: u32 = 100;

/// What every snapshot's file name ends with, after the database name.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
const TMP_SUFFIX: &str = ".tmp";

/// Magic and version: read before anything else, since the version fixes the layout.
const PREAMBLE_BYTES: usize = MAGIC.len() + 4;
/// The bytes of a record besides its key and value: two lengths, the stamp, the deadline.
const RECORD_FIXED_BYTES: usize = 4 + 4 + 8 + 4 + 8;
/// The smallest record: keys are never empty.
const RECORD_BYTES_MIN: usize = RECORD_FIXED_BYTES + 1;
/// The CRC-32 at the end.
const TRAILER_BYTES: usize = 4;
const MICROS_PER_SEC: u32 = 1_000_000;

// Lengths are written as u32.
const _: () = assert!(KEY_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(VALUE_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(DB_NAME_BYTES_MAX <= u8::MAX as usize);

/// A snapshot's records: keys and entries in key order. A key is read into the allocation the
/// store keeps it in (an `Arc`, shared by the record and the store's ordered index), not
/// copied there later.
pub type Records = Vec<(Arc<[u8]>, Entry)>;

/// Why a snapshot was not loaded.
#[derive(Debug)]
pub enum SnapshotError {
    /// The file does not start with [`MAGIC`]: not a hintsd snapshot.
    BadMagic,
    /// Written in a format version this hintsd does not read (a newer hintsd, most likely).
    UnsupportedVersion(u32),
    /// The file ends before its header, records and checksum are complete: it was cut short.
    Truncated,
    /// The checksum does not match the contents: the file is damaged.
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but a field is invalid (the message names the record and field):
    /// written by something other than this module, or by a bug.
    Corrupt(String),
    /// A valid snapshot of another database.
    WrongDatabase { expected: DbName, found: DbName },
    /// The file is larger than [`SNAPSHOT_BYTES_MAX`].
    TooLarge { bytes: u64 },
    /// The file exists but could not be read.
    Io(io::Error),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => f.write_str("not a hintsd snapshot: the file does not start with \"HNTSSNAP\""),
            SnapshotError::UnsupportedVersion(version) => write!(
                f,
                "snapshot format version {version} is not supported: this hintsd reads version {FORMAT_VERSION} \
                 (was it written by a newer hintsd?)"
            ),
            SnapshotError::Truncated => {
                f.write_str("the snapshot is cut short: it ends before its header, records and checksum are complete")
            }
            SnapshotError::Checksum { stored, computed } => write!(
                f,
                "the snapshot is damaged: its checksum is {stored:08x} but its contents sum to {computed:08x}"
            ),
            SnapshotError::Corrupt(what) => {
                write!(f, "the snapshot's checksum is valid but its contents are not: {what}")
            }
            SnapshotError::WrongDatabase { expected, found } => {
                write!(f, "the snapshot belongs to database \"{found}\", not \"{expected}\"")
            }
            SnapshotError::TooLarge { bytes } => {
                write!(f, "the snapshot is {bytes} bytes, over the limit of {SNAPSHOT_BYTES_MAX}")
            }
            SnapshotError::Io(err) => write!(f, "reading the snapshot: {err}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// What [`load`] found.
#[derive(Debug)]
pub enum LoadOutcome {
    /// The snapshot's records, in key order, ready for [`crate::store::Store::load`].
    Loaded(Records),
    /// There is no snapshot: the database starts empty.
    Missing,
    /// The file could not be used and was renamed to `moved_to`; the database starts empty.
    SetAside { error: SnapshotError, moved_to: PathBuf },
    /// The file could not be used, and renaming it failed too (`rename_error`): it is still in
    /// place, and the database starts empty. The next snapshot written for this database
    /// replaces it. Logged as an error.
    NotSetAside { error: SnapshotError, rename_error: io::Error },
}

/// The snapshot file of `db` in `dir`.
pub fn snapshot_path(dir: &Path, db: &DbName) -> PathBuf {
    dir.join(format!("{db}{SNAPSHOT_SUFFIX}"))
}

fn tmp_path(dir: &Path, db: &DbName) -> PathBuf {
    dir.join(format!("{db}{SNAPSHOT_SUFFIX}{TMP_SUFFIX}"))
}

/// The snapshot of database `db` holding `records`, which must be in strictly increasing key
/// order and within the protocol's limits (as a [`crate::store::Store`] holds them; a store's
/// `iter()` is the intended argument). `payload_bytes` is their keys' and values' bytes
/// together (a store's `bytes()`), so that the buffer is sized at once; a wrong figure costs
/// a reallocation, never a wrong file.
///
/// Pure and copy-only, in one pass over the records: a second, to size the buffer, walked
/// every record again while the database waits.
pub fn encode<'a>(
    db: &DbName,
    records: impl ExactSizeIterator<Item = (&'a [u8], &'a Entry)>,
    payload_bytes: u64,
) -> Vec<u8> {
    let name = db.as_str().as_bytes();
    let records_bytes =
        (records.len() * RECORD_FIXED_BYTES).saturating_add(usize::try_from(payload_bytes).unwrap_or(0));
    let mut out = Vec::with_capacity(PREAMBLE_BYTES + 1 + name.len() + 8 + records_bytes + TRAILER_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    // The count is patched in after the records, so it is the number written whatever the
    // iterator's length claimed.
    let count_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    let mut previous: Option<&[u8]> = None;
    for (key, entry) in records {
        debug_assert!(!key.is_empty() && key.len() <= KEY_BYTES_MAX, "key of {} bytes", key.len());
        debug_assert!(entry.value.len() <= VALUE_BYTES_MAX, "value of {} bytes", entry.value.len());
        debug_assert!(entry.stamp.micros < MICROS_PER_SEC, "stamp {:?}", entry.stamp);
        debug_assert!(previous.is_none_or(|previous| previous < key), "keys out of order");
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(entry.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&entry.value);
        out.extend_from_slice(&entry.stamp.secs.to_le_bytes());
        out.extend_from_slice(&entry.stamp.micros.to_le_bytes());
        out.extend_from_slice(&entry.expires.map_or(0, NonZeroU64::get).to_le_bytes());
        count += 1;
        previous = Some(key);
    }
    debug_assert!(count <= SNAPSHOT_RECORDS_MAX, "{count} records");
    out[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes `bytes` (from [`encode`]) as the snapshot of `db` in `dir`, atomically: creates `dir`
/// if missing (mode [`SNAPSHOT_DIR_MODE`]), writes and fsyncs `<db>.snapshot.tmp`, renames it
/// over `<db>.snapshot` and fsyncs the directory. Returns the snapshot's path.
///
/// Blocking. One writer per database at a time (they would share the temporary file).
///
/// # Errors
/// Any I/O failure, with the path in the message; the temporary file is removed and an older
/// snapshot is left as it was.
pub fn write_atomically(dir: &Path, db: &DbName, bytes: &[u8]) -> io::Result<PathBuf> {
    let context = |what: &str, path: &Path, err: io::Error| {
        io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
    };
    DirBuilder::new().recursive(true).mode(SNAPSHOT_DIR_MODE).create(dir).map_err(|e| context("creating", dir, e))?;
    let path = snapshot_path(dir, db);
    let tmp = tmp_path(dir, db);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(SNAPSHOT_FILE_MODE)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|e| context("writing", &tmp, e))
        .and_then(|()| fs::rename(&tmp, &path).map_err(|e| context("renaming over", &path, e)));
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(|e| context("syncing", dir, e))?;
    Ok(path)
}

/// The records of a snapshot of `expected_db`, in key order, after every check the module doc
/// lists. Calls `progress(records so far, total)` every [`PROGRESS_EVERY_RECORDS`] records.
///
/// # Errors
/// See [`SnapshotError`]; no records are returned from a file that fails any check.
pub fn decode(
    expected_db: &DbName,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Records, SnapshotError> {
    check_preamble(bytes)?;
    if bytes.len() < PREAMBLE_BYTES + TRAILER_BYTES {
        return Err(SnapshotError::Truncated);
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_BYTES);
    let stored = u32::from_le_bytes(trailer.try_into().expect("the trailer is 4 bytes"));
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(if cut_short(expected_db, bytes) {
            SnapshotError::Truncated
        } else {
            SnapshotError::Checksum { stored, computed }
        });
    }
    let corrupt = |err: ParseError| match err {
        ParseError::Short(what) | ParseError::Invalid(what) => SnapshotError::Corrupt(what),
        ParseError::WrongDatabase(found) => SnapshotError::WrongDatabase { expected: expected_db.clone(), found },
    };
    let mut cursor = Cursor { bytes: body, pos: PREAMBLE_BYTES };
    let count = parse_header(&mut cursor, expected_db).map_err(corrupt)?;
    // Bounded: parse_header checked that `count` records fit in what is left of the file.
    let mut records = Vec::with_capacity(usize::try_from(count).expect("bounded by the file's size"));
    parse_records(
        &mut cursor,
        count,
        &mut |record| {
            let entry = Entry { value: record.value.into(), stamp: record.stamp, expires: record.expires };
            records.push((record.key.into(), entry));
        },
        progress,
    )
    .map_err(corrupt)?;
    if cursor.remaining() > 0 {
        return Err(SnapshotError::Corrupt(format!(
            "{} bytes follow the last of the {count} records the header declares",
            cursor.remaining()
        )));
    }
    Ok(records)
}

/// Loads the snapshot of `db` from `dir`, logging what happened: the records, [`LoadOutcome::Missing`]
/// when there is none, or a damaged or foreign file set aside as `<db>.snapshot.bad-<unix secs>`.
///
/// Blocking: reads the whole file.
pub fn load(dir: &Path, db: &DbName) -> LoadOutcome {
    let path = snapshot_path(dir, db);
    let started = Instant::now();
    let bytes = match read_file(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            tracing::info!(db = %db, path = %path.display(), "no snapshot; the database starts empty");
            return LoadOutcome::Missing;
        }
        Err(error) => return set_aside(&path, db, error),
    };
    let mut progress = |done: u64, total: u64| {
        tracing::info!(db = %db, records = done, total, percent = done * 100 / total.max(1), "loading snapshot");
    };
    match decode(db, &bytes, &mut progress) {
        Ok(records) => {
            tracing::info!(
                db = %db,
                records = records.len(),
                bytes = bytes.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "snapshot loaded"
            );
            LoadOutcome::Loaded(records)
        }
        Err(error) => set_aside(&path, db, error),
    }
}

/// The databases that have a snapshot in `dir`, sorted (none when `dir` does not exist).
/// Temporary and set-aside files, directories and names that are not database names are
/// ignored.
///
/// # Errors
/// `dir` exists but cannot be listed.
pub fn snapshot_files(dir: &Path) -> io::Result<Vec<DbName>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut databases = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|name| name.strip_suffix(SNAPSHOT_SUFFIX)) else { continue };
        let Ok(db) = DbName::new(stem) else {
            tracing::debug!(file = %entry.path().display(), "not a database's snapshot; ignored");
            continue;
        };
        if entry.file_type()?.is_dir() {
            continue;
        }
        databases.push(db);
    }
    databases.sort();
    Ok(databases)
}

/// The file's bytes, `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, SnapshotError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(SnapshotError::Io(err)),
    };
    let size = file.metadata().map_err(SnapshotError::Io)?.len();
    if size > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotError::TooLarge { bytes: size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // Bounded even if the file grows while it is read.
    (&mut file).take(SNAPSHOT_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(SnapshotError::Io)?;
    if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotError::TooLarge { bytes: bytes.len() as u64 });
    }
    Ok(Some(bytes))
}

/// Renames an unusable snapshot to `<db>.snapshot.bad-<unix secs>` (with `-1`, `-2`, ... when
/// that name is taken: an earlier bad file is never overwritten).
fn set_aside(path: &Path, db: &DbName, error: SnapshotError) -> LoadOutcome {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let dir = path.parent().unwrap_or(Path::new("."));
    for attempt in 0..SET_ASIDE_NAMES_MAX {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let target = dir.join(format!("{db}{SNAPSHOT_SUFFIX}.bad-{secs}{suffix}"));
        match fs::symlink_metadata(&target) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            _ => continue,
        }
        return match fs::rename(path, &target) {
            Ok(()) => {
                tracing::warn!(
                    db = %db,
                    %error,
                    moved_to = %target.display(),
                    "snapshot not loaded and set aside; the database starts empty"
                );
                LoadOutcome::SetAside { error, moved_to: target }
            }
            Err(rename_error) => not_set_aside(path, db, error, rename_error),
        };
    }
    let rename_error = io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{SET_ASIDE_NAMES_MAX} set-aside names for second {secs} are taken"),
    );
    not_set_aside(path, db, error, rename_error)
}

fn not_set_aside(path: &Path, db: &DbName, error: SnapshotError, rename_error: io::Error) -> LoadOutcome {
    tracing::error!(
        db = %db,
        %error,
        path = %path.display(),
        %rename_error,
        "snapshot not loaded and could not be set aside; the database starts empty and its next snapshot replaces the file"
    );
    LoadOutcome::NotSetAside { error, rename_error }
}

/// Checks the magic and the version, which fixes the rest of the layout.
fn check_preamble(bytes: &[u8]) -> Result<(), SnapshotError> {
    let Some(magic) = bytes.get(..MAGIC.len()) else {
        return Err(if MAGIC.starts_with(bytes) { SnapshotError::Truncated } else { SnapshotError::BadMagic });
    };
    if magic != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let Some(version) = bytes.get(MAGIC.len()..PREAMBLE_BYTES) else { return Err(SnapshotError::Truncated) };
    let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    Ok(())
}

/// After a checksum mismatch: whether the file reads as cut short (its header and lengths,
/// all plausible, declare more bytes than there are) rather than damaged. Walks the whole file
/// as if the checksum were not there, allocating nothing; it only chooses the error to report.
fn cut_short(expected_db: &DbName, bytes: &[u8]) -> bool {
    let mut cursor = Cursor { bytes, pos: PREAMBLE_BYTES };
    let walked = parse_header(&mut cursor, expected_db)
        .and_then(|count| parse_records(&mut cursor, count, &mut |_| {}, &mut |_, _| {}));
    match walked {
        Err(ParseError::Short(_)) => true,
        Err(ParseError::Invalid(_) | ParseError::WrongDatabase(_)) => false,
        Ok(()) => cursor.remaining() < TRAILER_BYTES,
    }
}

/// Why parsing stopped. Behind a valid checksum both of the first two are corruption; after a
/// mismatch, `Short` says the file was cut.
#[derive(Debug)]
enum ParseError {
    /// The bytes end before a field, or before the records the header declares could.
    Short(String),
    /// A field is out of its bounds.
    Invalid(String),
    /// A valid name, of another database.
    WrongDatabase(DbName),
}

/// Where a field is, for messages.
#[derive(Clone, Copy)]
enum Place {
    Header,
    Record(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Header => f.write_str("header"),
            Place::Record(index) => write!(f, "record {index}"),
        }
    }
}

/// A record as it lies in the file, borrowed.
struct RawRecord<'a> {
    key: &'a [u8],
    value: &'a [u8],
    stamp: Stamp,
    expires: Option<NonZeroU64>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize, place: Place, field: &str) -> Result<&'a [u8], ParseError> {
        if len > self.remaining() {
            return Err(ParseError::Short(format!(
                "{place}: {field}: needs {len} bytes, the file has {} left",
                self.remaining()
            )));
        }
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, place: Place, field: &str) -> Result<[u8; N], ParseError> {
        Ok(self.take(N, place, field)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self, place: Place, field: &str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(place, field)?[0])
    }

    fn u32(&mut self, place: Place, field: &str) -> Result<u32, ParseError> {
        self.array(place, field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, place: Place, field: &str) -> Result<u64, ParseError> {
        self.array(place, field).map(u64::from_le_bytes)
    }
}

/// Reads the header after the preamble, returning the record count, checked against
/// [`SNAPSHOT_RECORDS_MAX`] and against the bytes left.
fn parse_header(cursor: &mut Cursor<'_>, expected_db: &DbName) -> Result<u64, ParseError> {
    let place = Place::Header;
    let name_len = usize::from(cursor.u8(place, "database name length")?);
    if name_len == 0 || name_len > DB_NAME_BYTES_MAX {
        return Err(ParseError::Invalid(format!(
            "{place}: database name length: {name_len} is outside 1..={DB_NAME_BYTES_MAX}"
        )));
    }
    let name = cursor.take(name_len, place, "database name")?;
    if name != expected_db.as_str().as_bytes() {
        return Err(match std::str::from_utf8(name).ok().and_then(|name| DbName::new(name).ok()) {
            Some(found) => ParseError::WrongDatabase(found),
            None => ParseError::Invalid(format!(
                "{place}: database name: {:?} is not a database name",
                String::from_utf8_lossy(name)
            )),
        });
    }
    let count = cursor.u64(place, "record count")?;
    if count > SNAPSHOT_RECORDS_MAX {
        return Err(ParseError::Invalid(format!("{place}: record count: {count} is over {SNAPSHOT_RECORDS_MAX}")));
    }
    let fits = cursor.remaining() / RECORD_BYTES_MIN;
    if count > fits as u64 {
        return Err(ParseError::Short(format!(
            "{place}: record count: {count} records need at least {RECORD_BYTES_MIN} bytes each, the file has {} \
             bytes left",
            cursor.remaining()
        )));
    }
    Ok(count)
}

/// Reads `count` records, checking each field before it is used, handing each to `each`.
fn parse_records<'a>(
    cursor: &mut Cursor<'a>,
    count: u64,
    each: &mut dyn FnMut(RawRecord<'a>),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), ParseError> {
    let mut previous: Option<&[u8]> = None;
    for index in 0..count {
        let place = Place::Record(index);
        let key_len = cursor.u32(place, "key length")? as usize;
        if key_len == 0 || key_len > KEY_BYTES_MAX {
            return Err(ParseError::Invalid(format!("{place}: key length: {key_len} is outside 1..={KEY_BYTES_MAX}")));
        }
        let key = cursor.take(key_len, place, "key")?;
        if previous.is_some_and(|previous| key <= previous) {
            return Err(ParseError::Invalid(format!(
                "{place}: key: not after record {}'s key (keys must strictly increase)",
                index - 1
            )));
        }
        let value_len = cursor.u32(place, "value length")? as usize;
        if value_len > VALUE_BYTES_MAX {
            return Err(ParseError::Invalid(format!(
                "{place}: value length: {value_len} is over the limit of {VALUE_BYTES_MAX}"
            )));
        }
        let value = cursor.take(value_len, place, "value")?;
        let secs = cursor.u64(place, "stamp seconds")?;
        let micros = cursor.u32(place, "stamp microseconds")?;
        if micros >= MICROS_PER_SEC {
            return Err(ParseError::Invalid(format!("{place}: stamp microseconds: {micros} is not below 1000000")));
        }
        let expires = NonZeroU64::new(cursor.u64(place, "expires")?);
        each(RawRecord { key, value, stamp: Stamp { secs, micros }, expires });
        previous = Some(key);
        let done = index + 1;
        if done % PROGRESS_EVERY_RECORDS == 0 {
            progress(done, count);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::store::Store;

    /// The system allocator, noting per thread the largest single allocation and the number of
    /// reallocations, so tests can show what decoding a hostile file allocates and that
    /// encoding sizes its buffer once.
    mod alloc_probe {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        struct Probe;

        thread_local! {
            static LARGEST: Cell<usize> = const { Cell::new(0) };
            static REALLOCS: Cell<usize> = const { Cell::new(0) };
        }

        fn note(size: usize) {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }

        // SAFETY: every call is passed on to the system allocator unchanged.
        unsafe impl GlobalAlloc for Probe {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                note(layout.size());
                // SAFETY: the caller upholds `alloc`'s contract.
                unsafe { System.alloc(layout) }
            }

            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                note(layout.size());
                // SAFETY: as above.
                unsafe { System.alloc_zeroed(layout) }
            }

            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: as above.
                unsafe { System.dealloc(ptr, layout) }
            }

            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                note(new_size);
                let _ = REALLOCS.try_with(|reallocs| reallocs.set(reallocs.get() + 1));
                // SAFETY: as above.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        #[global_allocator]
        static PROBE: Probe = Probe;

        /// What `f` returned, the largest single allocation it made on this thread, and how
        /// many reallocations.
        pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
            LARGEST.with(|largest| largest.set(0));
            REALLOCS.with(|reallocs| reallocs.set(0));
            let out = f();
            (out, LARGEST.with(Cell::get), REALLOCS.with(Cell::get))
        }
    }

    fn db(name: &str) -> DbName {
        DbName::new(name).unwrap()
    }

    fn entry(value: &[u8], secs: u64, micros: u32, expires: u64) -> Entry {
        Entry { value: value.into(), stamp: Stamp { secs, micros }, expires: NonZeroU64::new(expires) }
    }

    fn encode_all(db: &DbName, records: &[(Arc<[u8]>, Entry)]) -> Vec<u8> {
        let payload_bytes = records.iter().map(|(key, entry)| (key.len() + entry.value.len()) as u64).sum();
        encode(db, records.iter().map(|(key, entry)| (&**key, entry)), payload_bytes)
    }

    fn decode_quietly(db: &DbName, bytes: &[u8]) -> Result<Records, SnapshotError> {
        decode(db, bytes, &mut |_, _| {})
    }

    /// Three records of `retry`: a small file whose every byte the tests can damage.
    fn small() -> (DbName, Records, Vec<u8>) {
        let records: Records = vec![
            ((*b"a").into(), entry(b"1", 1_700_000_000, 0, 0)),
            ((*b"b\x00\xff").into(), entry(b"", 1_700_000_001, 999_999, 1_800_000_000)),
            ((*b"host.example").into(), entry(b"\x00\x01\x02", 5, 7, 0)),
        ];
        let retry = db("retry");
        let bytes = encode_all(&retry, &records);
        (retry, records, bytes)
    }

    /// Replaces the trailer with the checksum of everything before it.
    fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.truncate(bytes.len() - TRAILER_BYTES);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// A hand-built file, for bodies `encode` would never write.
    struct Raw(Vec<u8>);

    impl Raw {
        fn header(name: &[u8], count: u64) -> Raw {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            bytes.push(name.len() as u8);
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(&count.to_le_bytes());
            Raw(bytes)
        }

        fn record(self, key: &[u8], value: &[u8], micros: u32) -> Raw {
            self.record_with_lengths(key.len() as u32, key, value.len() as u32, value, micros)
        }

        fn record_with_lengths(mut self, key_len: u32, key: &[u8], value_len: u32, value: &[u8], micros: u32) -> Raw {
            self.0.extend_from_slice(&key_len.to_le_bytes());
            self.0.extend_from_slice(key);
            self.0.extend_from_slice(&value_len.to_le_bytes());
            self.0.extend_from_slice(value);
            self.0.extend_from_slice(&1_700_000_000u64.to_le_bytes());
            self.0.extend_from_slice(&micros.to_le_bytes());
            self.0.extend_from_slice(&0u64.to_le_bytes());
            self
        }

        fn sealed(mut self) -> Vec<u8> {
            let crc = crc32fast::hash(&self.0);
            self.0.extend_from_slice(&crc.to_le_bytes());
            self.0
        }
    }

    /// A deterministic xorshift generator for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> TestDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "hintsd-snapshot-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TestDir(path)
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> =
                fs::read_dir(&self.0).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_empty_store_round_trips() {
        let misc = db("misc");
        let bytes = encode(&misc, Store::new().iter(), 0);
        assert_eq!(bytes.len(), PREAMBLE_BYTES + 1 + "misc".len() + 8 + TRAILER_BYTES);
        assert_eq!(decode_quietly(&misc, &bytes).unwrap(), Records::new());
    }

    #[test]
    fn ten_thousand_binary_records_round_trip_through_a_store() {
        let mut rng = Rng(0x5eed);
        let records: Records = (0..10_000u32)
            .map(|i| {
                let key_len = 1 + (rng.next() % 40) as usize;
                let mut key = rng.bytes(key_len);
                key.extend_from_slice(&i.to_be_bytes());
                let value_len = (rng.next() % 300) as usize;
                let value = rng.bytes(value_len);
                let expires = if i % 3 == 0 { 0 } else { rng.next() };
                let stamp = entry(&value, rng.next() >> 20, (rng.next() % 1_000_000) as u32, expires);
                (key.into(), stamp)
            })
            .collect();
        let store = Store::load(records.clone());
        assert_eq!(store.len(), 10_000);
        let greylist = db("greylist");
        let bytes = encode(&greylist, store.iter(), store.bytes());
        let decoded = decode_quietly(&greylist, &bytes).unwrap();
        let mut expected = records;
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(decoded, expected);
        assert!(decoded.iter().any(|(_, entry)| entry.expires.is_none()));
        assert!(decoded.iter().any(|(_, entry)| entry.expires.is_some()));
        let reloaded = Store::load(decoded);
        assert!(reloaded.iter().eq(store.iter()));
        assert_eq!((reloaded.len(), reloaded.bytes()), (store.len(), store.bytes()));
    }

    #[test]
    fn encode_sizes_its_buffer_once() {
        let records: Records =
            (0..10_000u32).map(|i| (i.to_be_bytes().into(), entry(&[7; 100], u64::from(i), 0, 0))).collect();
        let (bytes, largest, reallocs) = alloc_probe::measure(|| encode_all(&db("misc"), &records));
        assert_eq!((largest, reallocs), (bytes.len(), 0));
    }

    #[test]
    fn a_loaded_store_keeps_its_byte_count_and_stamps_after_its_latest_record() {
        let (_, records, _) = small();
        let mut store = Store::load(records);
        assert_eq!((store.len(), store.bytes()), (3, 1 + 1 + 3 + 12 + 3));
        let latest = Stamp { secs: 1_700_000_001, micros: 999_999 };
        assert_eq!(store.put(b"new", b"v", Stamp { secs: 10, micros: 0 }), latest.next());
        assert_eq!(Store::load(Records::new()).bytes(), 0);
    }

    #[test]
    fn progress_is_reported_every_hundred_thousand_records() {
        let records: Records =
            (0..200_001u32).map(|i| (i.to_be_bytes().into(), entry(b"", u64::from(i), 0, 0))).collect();
        let bytes = encode_all(&db("seen"), &records);
        let mut calls = Vec::new();
        let decoded = decode(&db("seen"), &bytes, &mut |done, total| calls.push((done, total))).unwrap();
        assert_eq!(decoded.len(), 200_001);
        assert_eq!(calls, [(100_000, 200_001), (200_000, 200_001)]);
    }

    #[test]
    fn a_file_cut_anywhere_is_truncated() {
        let (retry, _, bytes) = small();
        for cut in 0..bytes.len() {
            let result = decode_quietly(&retry, &bytes[..cut]);
            assert!(matches!(result, Err(SnapshotError::Truncated)), "cut at {cut} of {}: {result:?}", bytes.len());
        }
        assert_eq!(decode_quietly(&retry, &bytes).unwrap().len(), 3);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_rejected() {
        let (retry, _, bytes) = small();
        let mut checksum_errors = 0;
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                let err = decode_quietly(&retry, &damaged).unwrap_err();
                match at {
                    0..8 => assert!(matches!(err, SnapshotError::BadMagic), "{at}.{bit}: {err:?}"),
                    8..12 => assert!(matches!(err, SnapshotError::UnsupportedVersion(_)), "{at}.{bit}: {err:?}"),
                    // A length or count that now reaches past the end reads as a cut file;
                    // everything else is the checksum's catch.
                    _ => assert!(
                        matches!(err, SnapshotError::Checksum { .. } | SnapshotError::Truncated),
                        "{at}.{bit}: {err:?}"
                    ),
                }
                if let SnapshotError::Checksum { stored, computed } = err {
                    assert_ne!(stored, computed);
                    checksum_errors += 1;
                }
            }
        }
        // Values, stamps, deadlines, key bytes and the trailer itself are only caught by the sum.
        assert!(checksum_errors > (bytes.len() - 12) * 8 * 3 / 4, "{checksum_errors}");
        let mut trailer = bytes.clone();
        *trailer.last_mut().unwrap() ^= 0x80;
        assert!(matches!(decode_quietly(&retry, &trailer), Err(SnapshotError::Checksum { .. })));
    }

    #[test]
    fn a_foreign_file_is_bad_magic() {
        let retry = db("retry");
        let mut rng = Rng(42);
        let random = rng.bytes(4096);
        assert!(matches!(decode_quietly(&retry, &random), Err(SnapshotError::BadMagic)));
        let text = b"# retry hints\nR:example.com:<user@example.org> 1700000000\n";
        assert!(matches!(decode_quietly(&retry, text), Err(SnapshotError::BadMagic)));
        assert!(matches!(decode_quietly(&retry, b"HNTX"), Err(SnapshotError::BadMagic)));
        assert!(matches!(decode_quietly(&retry, b"HNTS"), Err(SnapshotError::Truncated)));
        assert!(matches!(decode_quietly(&retry, b""), Err(SnapshotError::Truncated)));
    }

    #[test]
    fn another_format_version_is_unsupported() {
        let (retry, _, bytes) = small();
        for version in [0u32, 2, u32::MAX] {
            let mut other = bytes.clone();
            other[8..12].copy_from_slice(&version.to_le_bytes());
            let resealed = reseal(other.clone());
            for file in [other, resealed] {
                let result = decode_quietly(&retry, &file);
                assert!(matches!(result, Err(SnapshotError::UnsupportedVersion(v)) if v == version), "{result:?}");
            }
        }
    }

    #[test]
    fn a_valid_checksum_over_a_corrupt_body_is_corrupt_and_allocates_little() {
        let name = b"retry";
        let big = [9u8; 100];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "key length over the limit",
                Raw::header(name, 2)
                    .record(b"a", b"1", 0)
                    .record_with_lengths(KEY_BYTES_MAX as u32 + 1, b"b", 1, b"2", 0)
                    .sealed(),
                "record 1: key length",
            ),
            (
                "key length u32::MAX",
                Raw::header(name, 1).record_with_lengths(u32::MAX, b"a", 1, b"1", 0).sealed(),
                "record 0: key length",
            ),
            ("empty key", Raw::header(name, 1).record(b"", b"1", 0).sealed(), "record 0: key length"),
            (
                "value length over the limit",
                Raw::header(name, 1).record_with_lengths(1, b"a", VALUE_BYTES_MAX as u32 + 1, b"1", 0).sealed(),
                "record 0: value length",
            ),
            (
                "value length u32::MAX",
                Raw::header(name, 1).record_with_lengths(1, b"a", u32::MAX, b"1", 0).sealed(),
                "record 0: value length",
            ),
            (
                "a value running past the end",
                Raw::header(name, 1).record_with_lengths(1, b"a", 1000, b"1", 0).sealed(),
                "record 0: value",
            ),
            (
                "count beyond what the bytes could hold",
                Raw::header(name, 3).record(b"a", b"1", 0).record(b"b", b"2", 0).sealed(),
                "header: record count",
            ),
            (
                "count one more than the records present",
                Raw::header(name, 3).record(b"a", &big, 0).record(b"b", &big, 0).sealed(),
                "record 2: key length",
            ),
            ("count u64::MAX", Raw::header(name, u64::MAX).record(b"a", b"1", 0).sealed(), "header: record count"),
            (
                "count at the limit",
                Raw::header(name, SNAPSHOT_RECORDS_MAX).record(b"a", b"1", 0).sealed(),
                "header: record count",
            ),
            (
                "keys out of order",
                Raw::header(name, 2).record(b"b", b"1", 0).record(b"a", b"2", 0).sealed(),
                "record 1: key",
            ),
            (
                "duplicate keys",
                Raw::header(name, 2).record(b"a", b"1", 0).record(b"a", b"2", 0).sealed(),
                "record 1: key",
            ),
            (
                "micros of a full second",
                Raw::header(name, 1).record(b"a", b"1", 1_000_000).sealed(),
                "record 0: stamp microseconds",
            ),
            (
                "bytes after the last record",
                {
                    let mut raw = Raw::header(name, 1).record(b"a", b"1", 0);
                    raw.0.extend_from_slice(&[0; 40]);
                    raw.sealed()
                },
                "40 bytes follow the last of the 1 records",
            ),
            ("an invalid database name", Raw::header(b"Retry!", 0).sealed(), "header: database name"),
            ("an empty database name", Raw::header(b"", 0).sealed(), "header: database name length"),
            ("an over-long database name", Raw::header(&[b'a'; 65], 0).sealed(), "header: database name length"),
        ];
        let retry = db("retry");
        for (case, bytes, names) in cases {
            let (result, largest, _) = alloc_probe::measure(|| decode_quietly(&retry, &bytes));
            match result {
                Err(SnapshotError::Corrupt(what)) => assert!(what.contains(names), "{case}: {what:?} lacks {names:?}"),
                other => panic!("{case}: {other:?}"),
            }
            assert!(largest <= 4096, "{case}: allocated {largest} bytes at once from a {}-byte file", bytes.len());
        }
    }

    #[test]
    fn a_snapshot_of_another_database_is_refused() {
        let (_, _, bytes) = small();
        match decode_quietly(&db("misc"), &bytes) {
            Err(SnapshotError::WrongDatabase { expected, found }) => {
                assert_eq!((expected.as_str(), found.as_str()), ("misc", "retry"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            (SnapshotError::BadMagic, "not a hintsd snapshot"),
            (SnapshotError::UnsupportedVersion(7), "version 7 is not supported"),
            (SnapshotError::Truncated, "cut short"),
            (
                SnapshotError::Checksum { stored: 1, computed: 0xabcdef },
                "checksum is 00000001 but its contents sum to 00abcdef",
            ),
            (SnapshotError::Corrupt("record 3: key length: 0".into()), "record 3: key length"),
            (SnapshotError::WrongDatabase { expected: db("misc"), found: db("retry") }, "\"retry\", not \"misc\""),
            (SnapshotError::TooLarge { bytes: 1 << 40 }, "1099511627776 bytes"),
            (SnapshotError::Io(io::Error::from(io::ErrorKind::PermissionDenied)), "reading the snapshot"),
        ];
        for (error, says) in cases {
            assert!(error.to_string().contains(says), "{error}");
        }
    }

    #[test]
    fn load_returns_the_records_or_missing() {
        let dir = TestDir::new();
        let (retry, records, bytes) = small();
        assert!(matches!(load(&dir.0.join("not-yet"), &retry), LoadOutcome::Missing));
        assert!(matches!(load(&dir.0, &retry), LoadOutcome::Missing));
        write_atomically(&dir.0, &retry, &bytes).unwrap();
        match load(&dir.0, &retry) {
            LoadOutcome::Loaded(loaded) => assert_eq!(loaded, records),
            other => panic!("{other:?}"),
        }
        assert_eq!(dir.names(), ["retry.snapshot"]);
    }

    #[test]
    fn load_sets_a_damaged_or_foreign_file_aside() {
        let dir = TestDir::new();
        let (retry, _, bytes) = small();
        let path = snapshot_path(&dir.0, &retry);
        let mut damaged = bytes.clone();
        damaged[30] ^= 4;
        let foreign = b"GDBM-ish foreign data".to_vec();
        let mut moved = Vec::new();
        for (file, expected) in [(damaged, "Checksum"), (foreign, "BadMagic"), (bytes[..50].to_vec(), "Truncated")] {
            fs::write(&path, &file).unwrap();
            match load(&dir.0, &retry) {
                LoadOutcome::SetAside { error, moved_to } => {
                    assert!(format!("{error:?}").starts_with(expected), "{error:?}");
                    let name = moved_to.file_name().unwrap().to_str().unwrap().to_owned();
                    assert!(name.starts_with("retry.snapshot.bad-"), "{name}");
                    assert_eq!(fs::read(&moved_to).unwrap(), file, "set aside intact");
                    moved.push(name);
                }
                other => panic!("{expected}: {other:?}"),
            }
            assert!(!path.exists());
        }
        // Three failures within a second or two: three distinct names, none overwritten.
        moved.sort();
        moved.dedup();
        assert_eq!(moved.len(), 3);
        assert_eq!(dir.names(), moved);
        assert!(matches!(load(&dir.0, &retry), LoadOutcome::Missing));
        assert_eq!(snapshot_files(&dir.0).unwrap(), Vec::<DbName>::new());
    }

    #[test]
    fn load_sets_aside_another_databases_snapshot_and_an_unreadable_one() {
        let dir = TestDir::new();
        let (retry, _, bytes) = small();
        let misc = db("misc");
        fs::write(snapshot_path(&dir.0, &misc), &bytes).unwrap();
        assert!(matches!(
            load(&dir.0, &misc),
            LoadOutcome::SetAside { error: SnapshotError::WrongDatabase { .. }, .. }
        ));
        fs::create_dir(snapshot_path(&dir.0, &retry)).unwrap();
        assert!(matches!(load(&dir.0, &retry), LoadOutcome::SetAside { error: SnapshotError::Io(_), .. }));
        assert!(!snapshot_path(&dir.0, &retry).exists());
    }

    #[test]
    fn load_never_overwrites_an_earlier_bad_file() {
        let dir = TestDir::new();
        let retry = db("retry");
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        // Every name this second and the next is taken: the file stays where it is.
        for secs in secs..secs + 2 {
            for attempt in 0..SET_ASIDE_NAMES_MAX {
                let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
                fs::write(dir.0.join(format!("retry.snapshot.bad-{secs}{suffix}")), b"earlier").unwrap();
            }
        }
        fs::write(snapshot_path(&dir.0, &retry), b"foreign").unwrap();
        match load(&dir.0, &retry) {
            LoadOutcome::NotSetAside { error: SnapshotError::BadMagic, rename_error } => {
                assert_eq!(rename_error.kind(), io::ErrorKind::AlreadyExists);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read(snapshot_path(&dir.0, &retry)).unwrap(), b"foreign");
        let bad = dir.names().into_iter().filter(|name| name.contains(".bad-"));
        assert!(bad.into_iter().all(|name| fs::read(dir.0.join(name)).unwrap() == b"earlier"));
    }

    #[test]
    fn write_atomically_creates_the_directory_and_leaves_no_temporary_file() {
        let dir = TestDir::new();
        let nested = dir.0.join("spool").join("db");
        let (retry, _, bytes) = small();
        let path = write_atomically(&nested, &retry, &bytes).unwrap();
        assert_eq!(path, nested.join("retry.snapshot"));
        assert_eq!(fs::read(&path).unwrap(), bytes);
        let dir_mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode & !SNAPSHOT_DIR_MODE, 0, "{dir_mode:o}");
        let file_mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode & !SNAPSHOT_FILE_MODE, 0, "{file_mode:o}");
        let names: Vec<_> = fs::read_dir(&nested).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["retry.snapshot"]);
    }

    #[test]
    fn write_atomically_replaces_an_older_snapshot_and_a_stale_temporary_file() {
        let dir = TestDir::new();
        let (retry, _, old) = small();
        write_atomically(&dir.0, &retry, &old).unwrap();
        fs::write(tmp_path(&dir.0, &retry), b"left by a crash, longer than the new snapshot....................")
            .unwrap();
        let newer: Records = vec![((*b"only").into(), entry(b"new", 2, 3, 4))];
        write_atomically(&dir.0, &retry, &encode_all(&retry, &newer)).unwrap();
        assert_eq!(dir.names(), ["retry.snapshot"]);
        match load(&dir.0, &retry) {
            LoadOutcome::Loaded(loaded) => assert_eq!(loaded, newer),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_atomically_reports_the_path_it_could_not_write() {
        let dir = TestDir::new();
        let blocker = dir.0.join("file");
        fs::write(&blocker, b"").unwrap();
        let err = write_atomically(&blocker.join("db"), &db("retry"), b"x").unwrap_err();
        assert!(err.to_string().contains("creating"), "{err}");
    }

    #[test]
    fn snapshot_files_lists_the_databases_with_a_snapshot() {
        let dir = TestDir::new();
        assert_eq!(snapshot_files(&dir.0.join("absent")).unwrap(), Vec::<DbName>::new());
        for name in [
            "retry.snapshot",
            "wait-smtp.snapshot",
            "greylist.snapshot",
            "misc.snapshot.tmp",
            "seen.snapshot.bad-1700000000",
            "Bad Name.snapshot",
            ".snapshot",
            "callout.db",
        ] {
            fs::write(dir.0.join(name), b"").unwrap();
        }
        fs::create_dir(dir.0.join("tls.snapshot")).unwrap();
        let found = snapshot_files(&dir.0).unwrap();
        assert_eq!(found, [db("greylist"), db("retry"), db("wait-smtp")]);
    }

    /// A file that starts like a snapshot of `retry`: the magic, version 1, a name, a count.
    fn snapshot_like() -> impl Strategy<Value = Vec<u8>> {
        let name =
            prop_oneof![Just(b"retry".to_vec()), Just(b"misc".to_vec()), prop::collection::vec(any::<u8>(), 0..70)];
        let count = prop_oneof![0u64..8, any::<u64>()];
        (name, count, prop::collection::vec(any::<u8>(), 0..400), any::<bool>()).prop_map(
            |(name, count, body, sealed)| {
                let mut bytes = Raw::header(&name, count).0;
                bytes.extend_from_slice(&body);
                if sealed { Raw(bytes).sealed() } else { bytes }
            },
        )
    }

    fn any_records() -> impl Strategy<Value = Records> {
        let entry = (prop::collection::vec(any::<u8>(), 0..64), any::<u64>(), 0u32..1_000_000, any::<u64>())
            .prop_map(|(value, secs, micros, expires)| entry(&value, secs, micros, expires));
        prop::collection::btree_map(prop::collection::vec(any::<u8>(), 1..32), entry, 0..40)
            .prop_map(|map| map.into_iter().map(|(key, entry)| (key.into(), entry)).collect())
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_a_snapshot_like_file(bytes in snapshot_like()) {
            if let Ok(records) = decode_quietly(&db("retry"), &bytes) {
                // Whatever is accepted is exactly what encode would write.
                prop_assert_eq!(encode_all(&db("retry"), &records), bytes);
            }
        }

        #[test]
        fn decode_never_panics_on_a_snapshot_with_resealed_damage(
            records in any_records(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = encode_all(&db("retry"), &records);
            let body = bytes.len() - TRAILER_BYTES;
            for (at, byte) in damage {
                bytes[PREAMBLE_BYTES + at.index(body - PREAMBLE_BYTES)] = byte;
            }
            let bytes = reseal(bytes);
            match decode_quietly(&db("retry"), &bytes) {
                Ok(decoded) => prop_assert_eq!(encode_all(&db("retry"), &decoded), bytes),
                Err(SnapshotError::Corrupt(_) | SnapshotError::WrongDatabase { .. }) => {}
                Err(other) => prop_assert!(false, "a resealed file failed with {:?}", other),
            }
        }

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_quietly(&db("retry"), &bytes);
        }

        #[test]
        fn any_records_round_trip(records in any_records()) {
            let bytes = encode_all(&db("retry"), &records);
            prop_assert_eq!(decode_quietly(&db("retry"), &bytes).unwrap(), records);
        }
    }
}
