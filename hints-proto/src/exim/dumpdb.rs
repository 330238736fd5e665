//! `exim_dumpdb`'s text format (Exim 4.96 to 4.99.1): a record printed as `exim_dumpdb` prints
//! it, and a dump read back into records in the released layouts.
//!
//! Facts: `shared/reference/exim-hints.md` §3.1 and Exim's `src/src/exim_dbutil.c`. One line per
//! record (two for `retry`), times as `strftime("%d-%b-%Y %H:%M:%S")` in local time, or UTC with
//! `-z`; keys as C strings, without the NUL that ends them in the DB file:
//!
//! | db | what `exim_dumpdb` prints |
//! |---|---|
//! | `retry` | `"  %s %d %d %s\n"` key, basic_errno, more_errno, text; `"%s  %s  %s %s\n"` first_failed, last_try, next_try, `*` if expired |
//! | `wait-<t>` | `"%s "` key, `"%s "` per message id, `"\n"` |
//! | `misc` | `"%s %s\n"` time_stamp, key |
//! | `callout` | `"%s %s callout=%s\n"` (address record) or `"%s %s callout=%s postmaster=%s[ (%s)] random=%s[ (%s)]\n"` (domain record) |
//! | `ratelimit` | `"%s.%06d rate: %10.3f key: %s\n"`, or `"%s.%06d rate: %10.3f epoch: %s size: %u key: %s\n"` for a `/unique/` key with a full record |
//! | `seen` | `"%s\t%s\n"` key, time_stamp |
//!
//! `tls` has no entry: its dump is the raw session bytes, which cannot be read back.
//!
//! # What a dump does not carry
//! [`DumpFormat::losses`] says it per database, in the words `hintsctl import-exim` prints.
//! Reading a dump is strict: a line is taken only if printing the record it gives reproduces
//! the line byte for byte ([`DumpReader`]); anything else is a [`SkippedLine`] with a reason.
//! A record is never guessed from a line that does not read back.
//!
//! One deliberate difference in printing: for a unique ratelimit record, `exim_dumpdb` prints
//! the record's time stamp in the `epoch:` column too (it calls `print_time()`, which returns
//! one static buffer, twice in one `printf`); [`format_record`] prints the real `bloom_epoch`.
//! A record read from a dump has the dump's epoch, so it prints back the same.

use std::fmt;

use super::RecordError;
use super::callout::{
    CALLOUT_DOMAIN_OBSOLETE_BYTES, CCACHE_ACCEPT, CCACHE_REJECT, CCACHE_REJECT_MFNULL, CCACHE_UNKNOWN, CalloutAddress,
    CalloutDomain, CalloutRecord,
};
use super::ehlo::EhloRecord;
use super::ratelimit::{
    RATELIMIT_BLOOM_MIN_BYTES, RATELIMIT_UNIQUE_OVERHEAD_BYTES, RatelimitData, RatelimitRecord, RatelimitUniqueRecord,
};
use super::retry::RetryRecord;
use super::seen::SeenRecord;
use super::serialize::SerializeRecord;
use super::wait::{MessageIdFormat, WAIT_NAME_MAX, WaitRecord};
use crate::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// The databases `exim_dumpdb` prints, by the format it prints them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DumpFormat {
    /// `retry`: two lines a record.
    Retry,
    /// `wait-<transport>`: the host and its message ids.
    Wait,
    /// `misc`: time stamp and key only.
    Misc,
    /// `callout`: address and domain records.
    Callout,
    /// `ratelimit`: plain and unique records.
    Ratelimit,
    /// `seen`: key and time stamp.
    Seen,
}

/// The databases `import-exim` loads when none is named (and every `wait-*` file there is).
pub const DEFAULT_DATABASES: [&str; 5] = ["retry", "callout", "misc", "seen", "ratelimit"];

impl DumpFormat {
    /// The format of the database `name`, as `exim_dumpdb` chooses it (`wait-` by prefix).
    ///
    /// # Errors
    /// Why there is none: `tls` (raw session bytes) and names `exim_dumpdb` does not know.
    pub fn for_db(name: &str) -> Result<DumpFormat, String> {
        match name {
            "retry" => Ok(DumpFormat::Retry),
            "misc" => Ok(DumpFormat::Misc),
            "callout" => Ok(DumpFormat::Callout),
            "ratelimit" => Ok(DumpFormat::Ratelimit),
            "seen" => Ok(DumpFormat::Seen),
            name if name.starts_with("wait-") => Ok(DumpFormat::Wait),
            "tls" => Err("exim_dumpdb prints tls records as raw session bytes, which cannot be read back \
                          (and a TLS session is only good to the host that made it)"
                .to_owned()),
            other => Err(format!(
                "exim_dumpdb has no format for a database named {other:?} \
                 (it knows retry, misc, wait-<transport>, callout, ratelimit, tls and seen)"
            )),
        }
    }

    /// What a dump in this format does not carry, and what an import puts in its place.
    pub fn losses(self) -> &'static [&'static str] {
        match self {
            DumpFormat::Retry => {
                &["the record's own time_stamp (when Exim last wrote it) is not printed: it is set to last_try, \
                 which Exim's retry_update() writes in the same moment"]
            }
            DumpFormat::Wait => &[
                "the record's time_stamp is not printed: it is set to the time of the import",
                "sequence (how many <host>:<n> continuation records there are) is not printed: it is rebuilt \
                 from the continuation records in the same dump",
            ],
            DumpFormat::Misc => {
                &["only each record's time_stamp and key are printed, not a serialize record's count nor the \
                 EHLO cache's feature bits, so misc records are not imported (serialize counts belong to \
                 deliveries in progress, and hintsd keeps its own serialize slots)"]
            }
            DumpFormat::Callout => &[
                "callout=unknown is printed for ccache_reject_mfnull (3) too: such a result is imported as \
                 ccache_unknown (0)",
                "a domain record of the obsolete 24-byte size is not printed at all, so it is not imported",
            ],
            DumpFormat::Ratelimit => &[
                "the rate is printed with 3 decimals: it is imported rounded to 0.001",
                "a unique record's Bloom filter bits are not printed, only its size: the filter is imported \
                 empty, so a unique value already counted in the current period counts once more",
                "a unique record's bloom_epoch is not printed: exim_dumpdb 4.96-4.99 prints the time stamp in \
                 the epoch column (one static buffer for both), and that is what is imported",
            ],
            DumpFormat::Seen => &[],
        }
    }
}

// ---- times ---------------------------------------------------------------------------------

/// A broken-down time, as `struct tm` holds it (month and day from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// The year (`tm_year + 1900`).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 60.
    pub second: u32,
}

/// Where times are printed and read: UTC ([`Utc`], `exim_dumpdb -z`) or the process's local
/// time (the caller's, from the C library, as `exim_dumpdb` uses `localtime()`).
pub trait TimeZone {
    /// The civil time of `time` (`None` where `localtime()` or `gmtime()` would fail).
    fn civil(&self, time: i64) -> Option<CivilTime>;
    /// The `time_t` of a civil time (`None` if there is none, e.g. in a DST gap). In an hour that
    /// a DST change repeats, either of the two times.
    fn time(&self, civil: &CivilTime) -> Option<i64>;
}

/// UTC, as `exim_dumpdb -z` prints times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utc;

const SECS_PER_DAY: i64 = 86_400;
/// The C library's range: `tm_year` is an `int` counted from 1900.
const YEAR_MIN: i64 = i32::MIN as i64 + 1900;
const YEAR_MAX: i64 = i32::MAX as i64 + 1900;

impl TimeZone for Utc {
    fn civil(&self, time: i64) -> Option<CivilTime> {
        let days = time.div_euclid(SECS_PER_DAY);
        let of_day = time.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
            return None;
        }
        let of_day = u32::try_from(of_day).ok()?;
        Some(CivilTime { year, month, day, hour: of_day / 3600, minute: of_day / 60 % 60, second: of_day % 60 })
    }

    fn time(&self, civil: &CivilTime) -> Option<i64> {
        let valid = (YEAR_MIN..=YEAR_MAX).contains(&civil.year)
            && (1..=12).contains(&civil.month)
            && (1..=days_in_month(civil.year, civil.month)).contains(&civil.day)
            && civil.hour < 24
            && civil.minute < 60
            && civil.second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(civil.year, civil.month, civil.day);
        let of_day = i64::from(civil.hour * 3600 + civil.minute * 60 + civil.second);
        days.checked_mul(SECS_PER_DAY)?.checked_add(of_day)
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), for any day a year in [`YEAR_MIN`]..=[`YEAR_MAX`] holds and far beyond.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=31 and 1..=12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// The inverse of [`civil_from_days`] (`days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `%b` in the C locale (`exim_dumpdb` never calls `setlocale()`).
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `sizeof("09-xxx-1999 hh:mm:ss  ") - 1`: the longest time `exim_dumpdb`'s buffer holds
/// (`strftime()` fails past it). Years of up to six digits fit.
const TIME_TEXT_MAX: usize = 22;

/// `time` as `exim_dumpdb` prints it: `29-Nov-2026 13:32:43` (`%Y` unpadded, as glibc prints
/// it). `None` where `exim_dumpdb` could not print it.
pub fn format_time(tz: &dyn TimeZone, time: i64) -> Option<String> {
    let civil = tz.civil(time)?;
    let month = MONTHS.get(usize::try_from(civil.month).ok()?.checked_sub(1)?)?;
    let text =
        format!("{:02}-{month}-{} {:02}:{:02}:{:02}", civil.day, civil.year, civil.hour, civil.minute, civil.second);
    (text.len() <= TIME_TEXT_MAX).then_some(text)
}

/// Reads a time [`format_time`] prints, strictly: it must print back the same (so a date that
/// does not exist, or a local time in a DST gap, is refused).
pub fn parse_time(tz: &dyn TimeZone, text: &str) -> Option<i64> {
    let (date, clock) = text.split_once(' ')?;
    let mut date_parts = date.splitn(3, '-');
    let day = two_digits(date_parts.next()?)?;
    let month_name = date_parts.next()?;
    let year_text = date_parts.next()?;
    let month = u32::try_from(MONTHS.iter().position(|name| *name == month_name)? + 1).ok()?;
    let digits = year_text.strip_prefix('-').unwrap_or(year_text);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year_text.parse().ok()?;
    let mut clock_parts = clock.split(':');
    let hour = two_digits(clock_parts.next()?)?;
    let minute = two_digits(clock_parts.next()?)?;
    let second = two_digits(clock_parts.next()?)?;
    if clock_parts.next().is_some() {
        return None;
    }
    let time = tz.time(&CivilTime { year, month, day, hour, minute, second })?;
    (format_time(tz, time)? == text).then_some(time)
}

fn two_digits(text: &str) -> Option<u32> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

// ---- printing ------------------------------------------------------------------------------

/// Why a record cannot be printed as `exim_dumpdb` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The key is empty or holds a NUL, which a C-string key cannot.
    Key(&'static str),
    /// The value is not a record of the database's layout.
    Record(RecordError),
    /// A time `exim_dumpdb` cannot print (out of the C library's range, or too long for its
    /// buffer).
    Time { field: &'static str, time: i64 },
    /// A record `exim_dumpdb` prints nothing for.
    NotPrinted(&'static str),
    /// A `misc` key of no layout Exim writes there.
    NotExim(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Key(why) => write!(f, "the key {why}"),
            FormatError::Record(err) => write!(f, "{err}"),
            FormatError::Time { field, time } => write!(f, "{field} {time} is not a time exim_dumpdb can print"),
            FormatError::NotPrinted(why) | FormatError::NotExim(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FormatError {}

impl From<RecordError> for FormatError {
    fn from(err: RecordError) -> FormatError {
        FormatError::Record(err)
    }
}

/// The `misc` keys of serialize records (`enq_start()`'s, and ETRN's).
fn is_serialize_key(key: &[u8]) -> bool {
    [&b"etrn-"[..], b"tpt-serialize-", b"host-serialize-"].iter().any(|prefix| key.starts_with(prefix))
}

/// The `misc` keys of the PIPECONNECT EHLO cache.
fn is_ehlo_key(key: &[u8]) -> bool {
    key.len() > b".EHLO".len() && key.ends_with(b".EHLO")
}

fn time_text(tz: &dyn TimeZone, field: &'static str, time: i64) -> Result<String, FormatError> {
    format_time(tz, time).ok_or(FormatError::Time { field, time })
}

/// `ccache_*` as `print_cache()` prints it.
fn cache_text(result: i32) -> &'static str {
    match result {
        CCACHE_ACCEPT => "accept",
        CCACHE_REJECT => "reject",
        _ => "unknown",
    }
}

/// The record under `key` as `exim_dumpdb` prints it for a database of `format`, with its
/// final newline (two lines for `retry`).
///
/// # Errors
/// A [`FormatError`]: a key or value `exim_dumpdb` could not have printed.
pub fn format_record(format: DumpFormat, key: &[u8], value: &[u8], tz: &dyn TimeZone) -> Result<Vec<u8>, FormatError> {
    if key.is_empty() {
        return Err(FormatError::Key("is empty"));
    }
    if key.contains(&0) {
        return Err(FormatError::Key("holds a NUL byte (Exim's keys end at their NUL)"));
    }
    let mut out = Vec::with_capacity(key.len() + 64);
    match format {
        DumpFormat::Retry => {
            let record = RetryRecord::decode(value)?;
            out.extend_from_slice(b"  ");
            out.extend_from_slice(key);
            out.extend_from_slice(format!(" {} {} ", record.basic_errno, record.more_errno).as_bytes());
            out.extend_from_slice(&record.text);
            let first = time_text(tz, "first_failed", record.first_failed)?;
            let last = time_text(tz, "last_try", record.last_try)?;
            let next = time_text(tz, "next_try", record.next_try)?;
            let expired = if record.expired { "*" } else { "" };
            out.extend_from_slice(format!("\n{first}  {last}  {next} {expired}\n").as_bytes());
        }
        DumpFormat::Wait => {
            let record = WaitRecord::decode(value)?;
            out.extend_from_slice(key);
            out.push(b' ');
            for id in &record.ids {
                out.extend_from_slice(id.as_bytes());
                out.push(b' ');
            }
            out.push(b'\n');
        }
        DumpFormat::Misc => {
            let time_stamp = if is_serialize_key(key) {
                SerializeRecord::decode(value)?.time_stamp
            } else if is_ehlo_key(key) {
                EhloRecord::decode(value)?.time_stamp
            } else {
                return Err(FormatError::NotExim(
                    "is not an Exim misc record (a serialize record or an EHLO cache entry)",
                ));
            };
            out.extend_from_slice(time_text(tz, "time_stamp", time_stamp)?.as_bytes());
            out.push(b' ');
            out.extend_from_slice(key);
            out.push(b'\n');
        }
        DumpFormat::Callout => {
            if value.len() == CALLOUT_DOMAIN_OBSOLETE_BYTES {
                return Err(FormatError::NotPrinted(
                    "is a callout domain record of the obsolete 24-byte size, which exim_dumpdb prints nothing for",
                ));
            }
            match CalloutRecord::decode(value)? {
                CalloutRecord::Address(record) => {
                    let time = time_text(tz, "time_stamp", record.time_stamp)?;
                    out.extend_from_slice(time.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(key);
                    out.extend_from_slice(format!(" callout={}\n", cache_text(record.result)).as_bytes());
                }
                CalloutRecord::Domain(record) => {
                    let time = time_text(tz, "time_stamp", record.time_stamp)?;
                    out.extend_from_slice(time.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(key);
                    let mut tail = format!(
                        " callout={} postmaster={}",
                        cache_text(record.result),
                        cache_text(record.postmaster_result)
                    );
                    if record.postmaster_result != CCACHE_UNKNOWN {
                        tail.push_str(&format!(" ({})", time_text(tz, "postmaster_stamp", record.postmaster_stamp)?));
                    }
                    tail.push_str(&format!(" random={}", cache_text(record.random_result)));
                    if record.random_result != CCACHE_UNKNOWN {
                        tail.push_str(&format!(" ({})", time_text(tz, "random_stamp", record.random_stamp)?));
                    }
                    tail.push('\n');
                    out.extend_from_slice(tail.as_bytes());
                }
            }
        }
        DumpFormat::Ratelimit => {
            let record = RatelimitData::decode(value)?;
            let base = record.base();
            let time = time_text(tz, "time_stamp", base.time_stamp)?;
            out.extend_from_slice(format!("{time}.{:06} rate: {:10.3}", base.time_usec, base.rate).as_bytes());
            if let RatelimitData::Unique(unique) = &record
                && contains(key, b"/unique/")
            {
                let epoch = time_text(tz, "bloom_epoch", unique.bloom_epoch)?;
                out.extend_from_slice(format!(" epoch: {epoch} size: {}", unique.bloom.len()).as_bytes());
            }
            out.extend_from_slice(b" key: ");
            out.extend_from_slice(key);
            out.push(b'\n');
        }
        DumpFormat::Seen => {
            let record = SeenRecord::decode(value)?;
            out.extend_from_slice(key);
            out.push(b'\t');
            out.extend_from_slice(time_text(tz, "time_stamp", record.time_stamp)?.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

// ---- reading -------------------------------------------------------------------------------

/// A record read from a dump, in its layout.
#[derive(Clone, Debug, PartialEq)]
pub enum DumpRecord {
    Retry(RetryRecord),
    Wait(WaitRecord),
    Callout(CalloutRecord),
    Ratelimit(RatelimitData),
    Seen(SeenRecord),
}

impl DumpRecord {
    /// The record's bytes in Exim's released layout.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            DumpRecord::Retry(record) => record.encode(),
            DumpRecord::Wait(record) => record.encode(),
            DumpRecord::Callout(record) => record.encode(),
            DumpRecord::Ratelimit(record) => record.encode(),
            DumpRecord::Seen(record) => record.encode(),
        }
    }
}

/// One record of a dump: its key (as printed, so without Exim's NUL) and the record, with the
/// number of the (first) line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpEntry {
    pub line: usize,
    pub key: Vec<u8>,
    pub record: DumpRecord,
}

/// What a dump's lines gave.
#[derive(Clone, Debug, PartialEq)]
pub enum DumpItem {
    /// A record to load.
    Record(DumpEntry),
    /// A record the dump shows but does not carry (a `misc` record: see
    /// [`DumpFormat::losses`]).
    NotCarried { line: usize, key: Vec<u8> },
    /// One of `exim_dumpdb`'s own messages (`** Failed to open ...`, `**** Data for ...`).
    Message { line: usize, text: Vec<u8> },
}

/// A line that did not read back as a record, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: usize,
    pub text: Vec<u8>,
    pub why: String,
}

/// Reads a dump line by line: [`DumpReader::line`] for each line (without its `\n`), then
/// [`DumpReader::finish`].
pub struct DumpReader<'tz> {
    format: DumpFormat,
    tz: &'tz dyn TimeZone,
    now: i64,
    /// A `retry` record's first line, waiting for its second.
    retry_head: Option<(usize, Vec<u8>)>,
    /// The last `misc` key began `etrn-`: up to 4.98.0 it ends in a newline, so an empty line
    /// follows it.
    etrn_newline: bool,
}

impl fmt::Debug for DumpReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DumpReader").field("format", &self.format).field("now", &self.now).finish_non_exhaustive()
    }
}

/// The result of one line: nothing yet, or items and skipped lines in order.
pub type LineResults = Vec<Result<DumpItem, SkippedLine>>;

impl<'tz> DumpReader<'tz> {
    /// A reader of a dump of `format`, printed in `tz`; `now` is the time stamp given to wait
    /// records (their dump has none).
    pub fn new(format: DumpFormat, tz: &'tz dyn TimeZone, now: i64) -> DumpReader<'tz> {
        DumpReader { format, tz, now, retry_head: None, etrn_newline: false }
    }

    /// Reads line `number` (counted from 1), without its newline.
    pub fn line(&mut self, number: usize, line: &[u8]) -> LineResults {
        let mut results = Vec::new();
        if let Some((head_number, head)) = self.retry_head.take() {
            if !line.starts_with(b"  ") {
                results.push(self.retry(head_number, &head, number, line));
                return results;
            }
            results.push(Err(skipped(head_number, &head, "a retry record's first line without its second line")));
        }
        if std::mem::take(&mut self.etrn_newline) && line.is_empty() {
            return results;
        }
        if line.starts_with(b"** ") || line.starts_with(b"**** ") {
            results.push(Ok(DumpItem::Message { line: number, text: line.to_vec() }));
            return results;
        }
        let item = match self.format {
            DumpFormat::Retry if line.starts_with(b"  ") => {
                self.retry_head = Some((number, line.to_vec()));
                return results;
            }
            DumpFormat::Retry => Err(skipped(
                number,
                line,
                "not the first line of a retry record (two spaces, key, errno, more_errno, text)",
            )),
            DumpFormat::Misc => self.misc(number, line),
            DumpFormat::Wait => self.single(number, line, parse_wait),
            DumpFormat::Callout => self.single(number, line, parse_callout),
            DumpFormat::Ratelimit => self.single(number, line, parse_ratelimit),
            DumpFormat::Seen => self.single(number, line, parse_seen),
        };
        results.push(item);
        results
    }

    /// Ends the dump: a retry record's first line left alone is skipped.
    pub fn finish(&mut self) -> LineResults {
        match self.retry_head.take() {
            Some((number, head)) => {
                vec![Err(skipped(number, &head, "a retry record's first line without its second line"))]
            }
            None => Vec::new(),
        }
    }

    /// A one-line record: parsed by `parse`, then checked by printing it back.
    fn single(&self, number: usize, line: &[u8], parse: LineParser) -> Result<DumpItem, SkippedLine> {
        let (key, record) = parse(line, self.tz, self.now).map_err(|why| skipped(number, line, &why))?;
        let mut printed = line.to_vec();
        printed.push(b'\n');
        self.checked(number, line, key, record, &printed)
    }

    fn retry(&self, head_number: usize, head: &[u8], number: usize, line: &[u8]) -> Result<DumpItem, SkippedLine> {
        let (key, record) = parse_retry(head, line, self.tz).map_err(|why| {
            skipped(head_number, head, &format!("{why} (in the retry record of lines {head_number} and {number})"))
        })?;
        let mut printed = head.to_vec();
        printed.push(b'\n');
        printed.extend_from_slice(line);
        printed.push(b'\n');
        self.checked(head_number, head, key, DumpRecord::Retry(record), &printed)
    }

    /// The entry, if printing it gives back exactly `printed` and hintsd can hold it.
    fn checked(
        &self,
        number: usize,
        line: &[u8],
        key: Vec<u8>,
        record: DumpRecord,
        printed: &[u8],
    ) -> Result<DumpItem, SkippedLine> {
        if key.len() > KEY_BYTES_MAX {
            let why = format!("a key of {} bytes, over hintsd's limit of {KEY_BYTES_MAX}", key.len());
            return Err(skipped(number, line, &why));
        }
        let value = record.encode();
        if value.len() > VALUE_BYTES_MAX {
            let why = format!("a record of {} bytes, over hintsd's limit of {VALUE_BYTES_MAX}", value.len());
            return Err(skipped(number, line, &why));
        }
        match format_record(self.format, &key, &value, self.tz) {
            Ok(again) if again == printed => Ok(DumpItem::Record(DumpEntry { line: number, key, record })),
            Ok(again) => {
                let why = format!(
                    "does not read back as exim_dumpdb prints it (the record it gives prints as \"{}\")",
                    crate::text::escape(again.strip_suffix(b"\n").unwrap_or(&again))
                );
                Err(skipped(number, line, &why))
            }
            Err(err) => Err(skipped(number, line, &err.to_string())),
        }
    }

    fn misc(&mut self, number: usize, line: &[u8]) -> Result<DumpItem, SkippedLine> {
        let (time, key) =
            split_time(line).ok_or_else(|| skipped(number, line, "not a misc line (time, a space, key)"))?;
        parse_time(self.tz, time).ok_or_else(|| skipped(number, line, &bad_time(time)))?;
        if key.is_empty() {
            return Err(skipped(number, line, "a misc line with an empty key"));
        }
        self.etrn_newline = key.starts_with(b"etrn-");
        Ok(DumpItem::NotCarried { line: number, key: key.to_vec() })
    }
}

type LineParser = fn(&[u8], &dyn TimeZone, i64) -> Result<(Vec<u8>, DumpRecord), String>;

fn skipped(line: usize, text: &[u8], why: &str) -> SkippedLine {
    SkippedLine { line, text: text.to_vec(), why: why.to_owned() }
}

fn bad_time(text: &str) -> String {
    format!(
        "\"{}\" is not a time as exim_dumpdb prints it (dd-Mon-yyyy hh:mm:ss) in this time zone",
        text.escape_debug()
    )
}

/// Splits `<date> <time> <rest>`: the first two words, and what follows the space after them.
fn split_time(line: &[u8]) -> Option<(&str, &[u8])> {
    let first = line.iter().position(|&b| b == b' ')?;
    let second = first + 1 + line[first + 1..].iter().position(|&b| b == b' ')?;
    let time = std::str::from_utf8(&line[..second]).ok()?;
    Some((time, &line[second + 1..]))
}

fn time_of(tz: &dyn TimeZone, text: &str) -> Result<i64, String> {
    parse_time(tz, text).ok_or_else(|| bad_time(text))
}

fn parse_retry(head: &[u8], times: &[u8], tz: &dyn TimeZone) -> Result<(Vec<u8>, RetryRecord), String> {
    let body = head.strip_prefix(b"  ").ok_or("not the first line of a retry record")?;
    let mut fields = body.splitn(4, |&b| b == b' ');
    let key = fields.next().filter(|key| !key.is_empty()).ok_or("a retry record with no key")?;
    let errno = |field: Option<&[u8]>, name: &str| -> Result<i32, String> {
        field
            .and_then(|text| std::str::from_utf8(text).ok())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| format!("a retry record whose {name} is not a number"))
    };
    let basic_errno = errno(fields.next(), "basic_errno")?;
    let more_errno = errno(fields.next(), "more_errno")?;
    let text = fields.next().ok_or("a retry record with no text field")?;
    let times = std::str::from_utf8(times).map_err(|_| "a retry record's second line is not text")?;
    let mut parts = times.split("  ");
    let (Some(first), Some(last), Some(rest), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("a retry record's second line is not three times (first failed, last try, next try)".into());
    };
    let (next, expired) = match rest.strip_suffix(" *") {
        Some(next) => (next, true),
        None => (rest.strip_suffix(' ').ok_or("a retry record's second line does not end in \" \" or \" *\"")?, false),
    };
    let last_try = time_of(tz, last)?;
    let record = RetryRecord {
        // Not printed: Exim writes the record as it sets last_try.
        time_stamp: last_try,
        first_failed: time_of(tz, first)?,
        last_try,
        next_try: time_of(tz, next)?,
        expired,
        basic_errno,
        more_errno,
        text: text.to_vec(),
    };
    Ok((key.to_vec(), record))
}

fn parse_wait(line: &[u8], _tz: &dyn TimeZone, now: i64) -> Result<(Vec<u8>, DumpRecord), String> {
    let body = line.strip_suffix(b" ").ok_or("a wait line ends with a space after the key and each message id")?;
    let mut words = body.split(|&b| b == b' ');
    let key = words.next().filter(|key| !key.is_empty()).ok_or("a wait line with no key")?;
    let mut ids = Vec::new();
    for word in words {
        if MessageIdFormat::of(word).is_none() {
            return Err(format!("\"{}\" is not a message id", crate::text::escape(word)));
        }
        ids.push(String::from_utf8(word.to_vec()).map_err(|_| "a message id that is not text")?);
    }
    if ids.len() > WAIT_NAME_MAX {
        return Err(format!("{} message ids, more than a wait record holds ({WAIT_NAME_MAX})", ids.len()));
    }
    let record = WaitRecord { time_stamp: now, sequence: 0, ids };
    record.validate().map_err(|err| err.to_string())?;
    Ok((key.to_vec(), DumpRecord::Wait(record)))
}

/// A word of `print_cache()`: `unknown` is `ccache_unknown` unless a stamp is printed with it,
/// which only a result other than 0, 1 and 2 gets: `ccache_reject_mfnull`.
fn cache_result(word: &str, stamped: bool) -> Result<i32, String> {
    match (word, stamped) {
        ("accept", _) => Ok(CCACHE_ACCEPT),
        ("reject", _) => Ok(CCACHE_REJECT),
        ("unknown", false) => Ok(CCACHE_UNKNOWN),
        ("unknown", true) => Ok(CCACHE_REJECT_MFNULL),
        (other, _) => Err(format!("\"{}\" is not a callout result (accept, reject, unknown)", other.escape_debug())),
    }
}

/// Reads `name=<result>[ (<time>)]` from the front of `text`; returns the result, the stamp
/// and the rest.
fn callout_field<'a>(text: &'a str, name: &str, tz: &dyn TimeZone) -> Result<(i32, Option<i64>, &'a str), String> {
    let rest = text
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| format!("a callout domain line without {name}="))?;
    let end = rest.find(' ').unwrap_or(rest.len());
    let (word, rest) = rest.split_at(end);
    if let Some(stamped) = rest.strip_prefix(" (") {
        let close = stamped.find(')').ok_or("a callout stamp without its closing parenthesis")?;
        let time = time_of(tz, &stamped[..close])?;
        return Ok((cache_result(word, true)?, Some(time), &stamped[close + 1..]));
    }
    Ok((cache_result(word, false)?, None, rest))
}

fn parse_callout(line: &[u8], tz: &dyn TimeZone, _now: i64) -> Result<(Vec<u8>, DumpRecord), String> {
    let (time, rest) = split_time(line).ok_or("not a callout line (time, key, callout=...)")?;
    let time_stamp = time_of(tz, time)?;
    let marker = b" callout=";
    let at =
        rest.windows(marker.len()).rposition(|window| window == marker).ok_or("a callout line without callout=")?;
    let key = &rest[..at];
    let tail = std::str::from_utf8(&rest[at + 1..]).map_err(|_| "a callout line whose results are not text")?;
    let (result, stamp, tail) = callout_field(tail, "callout", tz)?;
    if stamp.is_some() {
        return Err("a callout result with a stamp".into());
    }
    let record = if tail.is_empty() {
        CalloutRecord::Address(CalloutAddress { time_stamp, result })
    } else {
        let tail = tail.strip_prefix(' ').ok_or("a callout line with text after the result")?;
        let (postmaster_result, postmaster_stamp, tail) = callout_field(tail, "postmaster", tz)?;
        let tail = tail.strip_prefix(' ').ok_or("a callout domain line without random=")?;
        let (random_result, random_stamp, tail) = callout_field(tail, "random", tz)?;
        if !tail.is_empty() {
            return Err("a callout domain line with text after random=".into());
        }
        CalloutRecord::Domain(CalloutDomain {
            time_stamp,
            result,
            postmaster_result,
            random_result,
            postmaster_stamp: postmaster_stamp.unwrap_or(0),
            random_stamp: random_stamp.unwrap_or(0),
        })
    };
    if key.is_empty() {
        return Err("a callout line with an empty key".into());
    }
    Ok((key.to_vec(), DumpRecord::Callout(record)))
}

fn parse_ratelimit(line: &[u8], tz: &dyn TimeZone, _now: i64) -> Result<(Vec<u8>, DumpRecord), String> {
    const SHAPE: &str = "not a ratelimit line (time.usec rate: RATE [epoch: TIME size: N] key: KEY)";
    let (stamp, rest) = split_time(line).ok_or(SHAPE)?;
    let (time, usec) = stamp.rsplit_once('.').ok_or(SHAPE)?;
    let time_stamp = time_of(tz, time)?;
    if usec.len() != 6 || !usec.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{}\" is not six digits of microseconds", usec.escape_debug()));
    }
    let time_usec: i32 = usec.parse().map_err(|_| SHAPE)?;
    let rest = rest.strip_prefix(b"rate:").ok_or(SHAPE)?;
    let number_at = rest.iter().position(|&b| b != b' ').ok_or(SHAPE)?;
    let rest = &rest[number_at..];
    let number_end = rest.iter().position(|&b| b == b' ').ok_or(SHAPE)?;
    let rate: f64 = std::str::from_utf8(&rest[..number_end])
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|rate: &f64| rate.is_finite() && *rate >= 0.0)
        .ok_or("a rate that is not a non-negative number")?;
    let rest = &rest[number_end..];
    let base = RatelimitRecord { time_stamp, time_usec, rate };
    if let Some(key) = rest.strip_prefix(b" key: ") {
        return Ok((key.to_vec(), DumpRecord::Ratelimit(RatelimitData::Plain(base))));
    }
    let rest = rest.strip_prefix(b" epoch: ").ok_or(SHAPE)?;
    let (epoch, rest) = split_time(rest).ok_or(SHAPE)?;
    let bloom_epoch = time_of(tz, epoch)?;
    let rest = rest.strip_prefix(b"size: ").ok_or(SHAPE)?;
    let size_end = rest.iter().position(|&b| b == b' ').ok_or(SHAPE)?;
    let size: usize = std::str::from_utf8(&rest[..size_end])
        .ok()
        .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok())
        .ok_or("a Bloom filter size that is not a number")?;
    if !(RATELIMIT_BLOOM_MIN_BYTES..=VALUE_BYTES_MAX - RATELIMIT_UNIQUE_OVERHEAD_BYTES).contains(&size) {
        return Err(format!(
            "a Bloom filter of {size} bytes (Exim's are 40 or more, and hintsd's records are 256 KiB at most)"
        ));
    }
    let key = rest[size_end..].strip_prefix(b" key: ").ok_or(SHAPE)?;
    // The filter's bits are not in the dump: it starts empty.
    let record = RatelimitUniqueRecord { base, bloom_epoch, bloom: vec![0; size] };
    Ok((key.to_vec(), DumpRecord::Ratelimit(RatelimitData::Unique(record))))
}

fn parse_seen(line: &[u8], tz: &dyn TimeZone, _now: i64) -> Result<(Vec<u8>, DumpRecord), String> {
    let tab = line.iter().rposition(|&b| b == b'\t').ok_or("not a seen line (key, a tab, time)")?;
    let time = std::str::from_utf8(&line[tab + 1..]).map_err(|_| "a seen time that is not text")?;
    let time_stamp = time_of(tz, time)?;
    Ok((line[..tab].to_vec(), DumpRecord::Seen(SeenRecord { time_stamp })))
}

/// Sets each wait record's `sequence` from the continuation records `<key>:<n>` among
/// `entries`: one past the largest `n` (Exim reads `<key>:<sequence-1>` first), or 0.
pub fn rebuild_wait_sequences(entries: &mut [DumpEntry]) {
    use std::collections::HashMap;
    let mut sequences: HashMap<Vec<u8>, i32> = HashMap::new();
    for entry in entries.iter() {
        let Some(colon) = entry.key.iter().rposition(|&b| b == b':') else { continue };
        let digits = &entry.key[colon + 1..];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
            continue;
        }
        let Some(n) = std::str::from_utf8(digits).ok().and_then(|text| text.parse::<i32>().ok()) else { continue };
        let next = n.saturating_add(1);
        let sequence = sequences.entry(entry.key[..colon].to_vec()).or_insert(0);
        *sequence = (*sequence).max(next);
    }
    for entry in entries.iter_mut() {
        if let DumpRecord::Wait(record) = &mut entry.record {
            record.sequence = sequences.get(&entry.key).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 4.96's output in the reference's test run, with TZ=UTC (§3.1).
    const RETRY: &str = "  T:127.0.0.1:127.0.0.1:2526 111 65 Connection refused\n\
                         29-Nov-2026 13:33:02  29-Nov-2026 13:33:02  29-Nov-2026 13:48:02 \n";
    const WAIT: &str = "127.0.0.1 1xXf1a-00031B-22 1xXf1a-00031H-29 \n";
    const CALLOUT: &str = "29-Nov-2026 13:33:33 alice@stub.example callout=reject\n\
                           29-Nov-2026 13:33:33 stub.example callout=accept postmaster=unknown random=reject (29-Nov-2026 13:33:33)\n\
                           29-Nov-2026 13:33:33 bob@stub.example callout=accept\n";
    const RATELIMIT: &str = "29-Nov-2026 13:32:43.511216 rate:      1.999 key: 1h/per_conn/192.0.2.10\n\
        29-Nov-2026 13:32:43.512136 rate:      1.967 key: 1m/per_mail/alice@sender.example\n\
        29-Nov-2026 13:32:43.517292 rate:      3.991 epoch: 29-Nov-2026 13:32:43 size: 40 key: 10m/per_cmd/unique/192.0.2.10\n\
        29-Nov-2026 13:32:43.516845 rate:      2.000 epoch: 29-Nov-2026 13:32:43 size: 40 key: 1d/per_rcpt/unique/192.0.2.10\n\
        29-Nov-2026 13:32:43.518780 rate:     41.988 key: 1h/per_mail/192.0.2.10\n";
    const SEEN: &str = "conn-192.0.2.10\t29-Nov-2026 13:32:42\nrcpt-bob@example.net\t29-Nov-2026 13:32:43\n";
    const MISC: &str = "29-Nov-2026 13:33:14 tpt-serialize-smtp_slow\n\
                        29-Nov-2026 13:33:14 host-serialize-127.0.0.1\n\
                        29-Nov-2026 13:33:30 127.0.0.1:2525.EHLO\n";

    const T_13_33_02: i64 = 1_795_959_182;

    fn read(format: DumpFormat, dump: &str) -> LineResults {
        let mut reader = DumpReader::new(format, &Utc, 1_800_000_000);
        let mut results = Vec::new();
        for (index, line) in dump.split_terminator('\n').enumerate() {
            results.extend(reader.line(index + 1, line.as_bytes()));
        }
        results.extend(reader.finish());
        results
    }

    fn entries(format: DumpFormat, dump: &str) -> Vec<DumpEntry> {
        read(format, dump)
            .into_iter()
            .map(|result| match result {
                Ok(DumpItem::Record(entry)) => entry,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Reads `dump` and prints every record back.
    fn round_trip(format: DumpFormat, dump: &str) -> String {
        let mut out = Vec::new();
        for entry in entries(format, dump) {
            out.extend(format_record(format, &entry.key, &entry.record.encode(), &Utc).expect("prints"));
        }
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn utc_times_print_as_exim_dumpdb_prints_them() {
        assert_eq!(format_time(&Utc, 0).as_deref(), Some("01-Jan-1970 00:00:00"));
        assert_eq!(format_time(&Utc, T_13_33_02).as_deref(), Some("29-Nov-2026 13:33:02"));
        assert_eq!(format_time(&Utc, -1).as_deref(), Some("31-Dec-1969 23:59:59"));
        // glibc's %Y is not padded; a negative year keeps its sign.
        assert_eq!(format_time(&Utc, -60_000_000_000).as_deref(), Some("03-Sep-68 13:20:00"));
        assert_eq!(format_time(&Utc, -62_167_219_200 - 86_400 * 400).as_deref(), Some("27-Nov--2 00:00:00"));
        assert_eq!(format_time(&Utc, 253_402_300_800).as_deref(), Some("01-Jan-10000 00:00:00"));
        // Past exim_dumpdb's 22-byte buffer, and past the C library's range.
        assert_eq!(format_time(&Utc, 67_767_976_233_532_799), None);
        assert_eq!(format_time(&Utc, i64::MAX), None);
        assert_eq!(format_time(&Utc, i64::MIN), None);
    }

    #[test]
    fn times_read_back_strictly() {
        for time in [0, T_13_33_02, -1, 951_782_400, 4_107_542_400, -60_000_000_000, 31_535_999_999] {
            let text = format_time(&Utc, time).expect("printable");
            assert_eq!(parse_time(&Utc, &text), Some(time), "{text}");
        }
        for bad in [
            "29-Nov-2026 13:33:2",
            "29-nov-2026 13:33:02",
            "30-Feb-2026 13:33:02",
            "29-Nov-2026 24:00:00",
            "29-Nov-2026  13:33:02",
            "29-Nov-+2026 13:33:02",
            "29-Nov-2026 13:33:02 ",
            "9-Nov-2026 13:33:02",
            "29-Nov-2026T13:33:02",
            "",
        ] {
            assert_eq!(parse_time(&Utc, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_reference_dumps_read_back_byte_for_byte() {
        for (format, dump) in [
            (DumpFormat::Retry, RETRY),
            (DumpFormat::Wait, WAIT),
            (DumpFormat::Callout, CALLOUT),
            (DumpFormat::Ratelimit, RATELIMIT),
            (DumpFormat::Seen, SEEN),
        ] {
            assert_eq!(round_trip(format, dump), dump, "{format:?}");
        }
    }

    #[test]
    fn records_get_exims_layouts() {
        let retry = entries(DumpFormat::Retry, RETRY).remove(0);
        assert_eq!(retry.key, b"T:127.0.0.1:127.0.0.1:2526");
        let DumpRecord::Retry(record) = &retry.record else { panic!("{retry:?}") };
        assert_eq!(
            *record,
            RetryRecord {
                time_stamp: T_13_33_02,
                first_failed: T_13_33_02,
                last_try: T_13_33_02,
                next_try: T_13_33_02 + 900,
                expired: false,
                basic_errno: 111,
                more_errno: 65,
                text: b"Connection refused".to_vec(),
            }
        );
        // 48 + strlen("Connection refused"), as observed on 4.96.
        assert_eq!(retry.record.encode().len(), 66);

        let seen = entries(DumpFormat::Seen, SEEN);
        assert_eq!(seen[0].key, b"conn-192.0.2.10");
        assert_eq!(seen[0].record, DumpRecord::Seen(SeenRecord { time_stamp: 1_795_959_162 }));

        let rates = entries(DumpFormat::Ratelimit, RATELIMIT);
        assert_eq!(
            rates[0].record,
            DumpRecord::Ratelimit(RatelimitData::Plain(RatelimitRecord {
                time_stamp: 1_795_959_163,
                time_usec: 511_216,
                rate: 1.999
            }))
        );
        let DumpRecord::Ratelimit(RatelimitData::Unique(unique)) = &rates[2].record else { panic!("{rates:?}") };
        assert_eq!((unique.bloom_epoch, unique.bloom.as_slice()), (1_795_959_163, &[0; 40][..]));
        assert_eq!(rates[2].record.encode().len(), 80);

        let callout = entries(DumpFormat::Callout, CALLOUT);
        assert_eq!(
            callout[1].record,
            DumpRecord::Callout(CalloutRecord::Domain(CalloutDomain {
                time_stamp: 1_795_959_213,
                result: CCACHE_ACCEPT,
                postmaster_result: CCACHE_UNKNOWN,
                random_result: CCACHE_REJECT,
                postmaster_stamp: 0,
                random_stamp: 1_795_959_213,
            }))
        );
        assert_eq!(
            callout[0].record,
            DumpRecord::Callout(CalloutRecord::Address(CalloutAddress { time_stamp: 1_795_959_213, result: 2 }))
        );

        let wait = entries(DumpFormat::Wait, WAIT).remove(0);
        let DumpRecord::Wait(record) = &wait.record else { panic!("{wait:?}") };
        assert_eq!((record.time_stamp, record.sequence, record.ids.len()), (1_800_000_000, 0, 2));
        // 24 + 2 * 16, as observed on 4.96.
        assert_eq!(wait.record.encode().len(), 56);
    }

    #[test]
    fn expired_retry_records_and_empty_texts_read_back() {
        let dump = "  R:example.net 0 0 \n01-Jan-2026 00:00:00  02-Jan-2026 00:00:00  03-Jan-2026 00:00:00 *\n";
        assert_eq!(round_trip(DumpFormat::Retry, dump), dump);
        let entry = entries(DumpFormat::Retry, dump).remove(0);
        let DumpRecord::Retry(record) = entry.record else { panic!() };
        assert!(record.expired && record.text.is_empty());
    }

    #[test]
    fn a_mfnull_stamp_reads_back_as_reject_mfnull() {
        let dump =
            "29-Nov-2026 13:33:33 d.example callout=unknown postmaster=unknown (29-Nov-2026 13:33:30) random=unknown\n";
        assert_eq!(round_trip(DumpFormat::Callout, dump), dump);
        let DumpRecord::Callout(CalloutRecord::Domain(domain)) = &entries(DumpFormat::Callout, dump)[0].record else {
            panic!()
        };
        assert_eq!((domain.result, domain.postmaster_result), (CCACHE_UNKNOWN, CCACHE_REJECT_MFNULL));
    }

    #[test]
    fn misc_records_are_read_but_not_carried() {
        let results = read(DumpFormat::Misc, MISC);
        let keys: Vec<_> = results
            .iter()
            .map(|result| match result {
                Ok(DumpItem::NotCarried { key, .. }) => key.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, [&b"tpt-serialize-smtp_slow"[..], b"host-serialize-127.0.0.1", b"127.0.0.1:2525.EHLO"]);
        // 4.96's ETRN key ends in a newline: the empty line after it belongs to it.
        let results = read(DumpFormat::Misc, "29-Nov-2026 13:33:14 etrn-example.net\n\n29-Nov-2026 13:33:14 etrn-x\n");
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results.iter().all(|result| matches!(result, Ok(DumpItem::NotCarried { .. }))));
        let results = read(DumpFormat::Misc, "29-Nov-2026 13:33:14 host-serialize-a\n\n");
        assert!(matches!(&results[1], Err(SkippedLine { line: 2, .. })), "{results:?}");
    }

    #[test]
    fn lines_that_do_not_read_back_are_skipped_with_their_number() {
        let dump = "conn-a\t29-Nov-2026 13:32:42\n\
                    conn-b 29-Nov-2026 13:32:42\n\
                    conn-c\t29-Nov-2026 13:32:42 \n\
                    conn-d\t31-Nov-2026 13:32:42\n\
                    \t29-Nov-2026 13:32:42\n\
                    conn-e\t29-Nov-2026 13:32:43\n";
        let results = read(DumpFormat::Seen, dump);
        let lines: Vec<_> = results
            .iter()
            .map(|result| match result {
                Ok(DumpItem::Record(entry)) => (entry.line, true),
                Err(skipped) => (skipped.line, false),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lines, [(1, true), (2, false), (3, false), (4, false), (5, false), (6, true)]);

        for (format, line) in [
            (DumpFormat::Ratelimit, "29-Nov-2026 13:32:43.511216 rate: 1.999 key: k"),
            (DumpFormat::Ratelimit, "29-Nov-2026 13:32:43.5112 rate:      1.999 key: k"),
            (DumpFormat::Ratelimit, "29-Nov-2026 13:32:43.511216 rate:      1.9990 key: k"),
            (DumpFormat::Ratelimit, "29-Nov-2026 13:32:43.511216 rate:     -1.000 key: k"),
            // The unique form for a key without /unique/ is not what exim_dumpdb prints.
            (
                DumpFormat::Ratelimit,
                "29-Nov-2026 13:32:43.511216 rate:      1.999 epoch: 29-Nov-2026 13:32:43 size: 40 key: 1h/per_rcpt/k",
            ),
            (
                DumpFormat::Ratelimit,
                "29-Nov-2026 13:32:43.511216 rate:      1.999 epoch: 29-Nov-2026 13:32:43 size: 39 key: 1h/per_rcpt/unique/k",
            ),
            (DumpFormat::Callout, "29-Nov-2026 13:33:33 a@b callout=maybe"),
            (DumpFormat::Callout, "29-Nov-2026 13:33:33 a@b callout=accept (29-Nov-2026 13:33:33)"),
            (DumpFormat::Callout, "29-Nov-2026 13:33:33 b callout=accept postmaster=unknown random=reject"),
            (DumpFormat::Callout, "29-Nov-2026 13:33:33 b callout=accept postmaster=accept random=reject (x)"),
            (DumpFormat::Wait, "127.0.0.1 1xXf1a-00031B-22"),
            (DumpFormat::Wait, "127.0.0.1 not-an-id "),
            (DumpFormat::Wait, "127.0.0.1 1xXf1a-00031B-22 1xXgYx-0000oF-2jabcd-1234 "),
            (DumpFormat::Misc, "29-Nov-2026 13:33:14"),
            (DumpFormat::Retry, "29-Nov-2026 13:33:02  29-Nov-2026 13:33:02  29-Nov-2026 13:48:02 "),
            (DumpFormat::Seen, "\n"),
        ] {
            let results = read(format, line);
            assert!(
                matches!(results.as_slice(), [Err(SkippedLine { line: 1, .. })]),
                "{format:?} {line:?}: {results:?}"
            );
        }
    }

    #[test]
    fn a_retry_record_needs_both_lines() {
        let head = "  T:a 111 0 Connection refused\n";
        let results = read(DumpFormat::Retry, &format!("{head}{head}{RETRY}"));
        let shape: Vec<_> = results.iter().map(|r| r.as_ref().map(|_| ()).map_err(|s| s.line)).collect();
        assert_eq!(shape, [Err(1), Err(2), Ok(())]);
        let results = read(DumpFormat::Retry, &format!("{RETRY}{head}"));
        assert!(matches!(results.as_slice(), [Ok(_), Err(SkippedLine { line: 3, .. })]), "{results:?}");
        let results = read(DumpFormat::Retry, &format!("{head}not times\n{RETRY}"));
        assert!(matches!(results.as_slice(), [Err(SkippedLine { line: 1, .. }), Ok(_)]), "{results:?}");
    }

    #[test]
    fn exim_dumpdbs_own_messages_are_told_apart() {
        let results = read(
            DumpFormat::Seen,
            "** Failed to open database lock file /s/db/seen.lockfile: No such file or directory\n",
        );
        assert!(matches!(results.as_slice(), [Ok(DumpItem::Message { line: 1, .. })]), "{results:?}");
    }

    #[test]
    fn records_print_as_exim_dumpdb_prints_them() {
        let key = b"1h/per_rcpt/unique/192.0.2.1";
        let unique = RatelimitUniqueRecord {
            base: RatelimitRecord { time_stamp: T_13_33_02, time_usec: 42, rate: 0.0625 },
            bloom_epoch: T_13_33_02 - 60,
            bloom: vec![0xff; 44],
        };
        let printed = format_record(DumpFormat::Ratelimit, key, &unique.encode(), &Utc).unwrap();
        assert_eq!(
            String::from_utf8(printed).unwrap(),
            "29-Nov-2026 13:33:02.000042 rate:      0.062 epoch: 29-Nov-2026 13:32:02 size: 44 key: 1h/per_rcpt/unique/192.0.2.1\n"
        );
        // A unique record under a key without /unique/ prints as a plain one, as in Exim.
        let printed = format_record(DumpFormat::Ratelimit, b"1h/per_rcpt/k", &unique.encode(), &Utc).unwrap();
        assert_eq!(
            String::from_utf8(printed).unwrap(),
            "29-Nov-2026 13:33:02.000042 rate:      0.062 key: 1h/per_rcpt/k\n"
        );

        let serialize = SerializeRecord { time_stamp: T_13_33_02, count: 1 }.encode();
        assert_eq!(
            format_record(DumpFormat::Misc, b"host-serialize-127.0.0.1", &serialize, &Utc).unwrap(),
            b"29-Nov-2026 13:33:02 host-serialize-127.0.0.1\n"
        );
        // 4.96's ETRN keys hold a newline, printed as it is.
        assert_eq!(
            format_record(DumpFormat::Misc, b"etrn-example.net\n", &serialize, &Utc).unwrap(),
            b"29-Nov-2026 13:33:02 etrn-example.net\n\n"
        );
        let ehlo = EhloRecord {
            time_stamp: T_13_33_02,
            cleartext_features: 1,
            crypted_features: 0,
            cleartext_auths: 0,
            crypted_auths: 0,
            limits: None,
        };
        assert_eq!(
            format_record(DumpFormat::Misc, b"127.0.0.1:2525.EHLO", &ehlo.encode(), &Utc).unwrap(),
            b"29-Nov-2026 13:33:02 127.0.0.1:2525.EHLO\n"
        );
    }

    #[test]
    fn records_exim_dumpdb_could_not_print_are_refused() {
        let seen = SeenRecord { time_stamp: 0 }.encode();
        assert_eq!(format_record(DumpFormat::Seen, b"", &seen, &Utc), Err(FormatError::Key("is empty")));
        assert!(matches!(format_record(DumpFormat::Seen, b"k\0", &seen, &Utc), Err(FormatError::Key(_))));
        assert!(matches!(format_record(DumpFormat::Seen, b"k", b"7", &Utc), Err(FormatError::Record(_))));
        let far = SeenRecord { time_stamp: i64::MAX }.encode();
        assert_eq!(
            format_record(DumpFormat::Seen, b"k", &far, &Utc),
            Err(FormatError::Time { field: "time_stamp", time: i64::MAX })
        );
        assert!(matches!(format_record(DumpFormat::Misc, b"rcpts-today", b"5", &Utc), Err(FormatError::NotExim(_))));
        assert!(matches!(
            format_record(DumpFormat::Callout, b"d", &[0; CALLOUT_DOMAIN_OBSOLETE_BYTES], &Utc),
            Err(FormatError::NotPrinted(_))
        ));
    }

    #[test]
    fn wait_sequences_are_rebuilt_from_continuations() {
        let ids = "1xXf1a-00031B-22 ";
        let dump = format!("h {ids}\nh:0 {ids}\nh:1 {ids}\nother {ids}\nh:x {ids}\n");
        let mut entries = entries(DumpFormat::Wait, &dump);
        rebuild_wait_sequences(&mut entries);
        let sequences: Vec<_> = entries
            .iter()
            .map(|entry| match &entry.record {
                DumpRecord::Wait(record) => (String::from_utf8(entry.key.clone()).unwrap(), record.sequence),
                other => panic!("{other:?}"),
            })
            .collect();
        let want = [("h", 2), ("h:0", 0), ("h:1", 0), ("other", 0), ("h:x", 0)];
        assert_eq!(sequences, want.map(|(key, sequence)| (key.to_owned(), sequence)));
    }

    #[test]
    fn formats_follow_the_database_name() {
        assert_eq!(DumpFormat::for_db("wait-remote_smtp"), Ok(DumpFormat::Wait));
        assert_eq!(DumpFormat::for_db("seen"), Ok(DumpFormat::Seen));
        assert!(DumpFormat::for_db("tls").unwrap_err().contains("raw session bytes"));
        assert!(DumpFormat::for_db("greylist").is_err());
        for name in DEFAULT_DATABASES {
            assert!(DumpFormat::for_db(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn days_and_dates_agree_over_a_long_span() {
        for days in (-1_000_000..1_000_000).step_by(7) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
