//! `hintsctl dump --format exim`: a database printed as `exim_dumpdb` prints it, so that tools
//! that parse that output (`exinext` parses the retry dump) keep working; and the process's
//! local time, which `exim_dumpdb` prints times in.

use std::io::Write;
use std::mem::MaybeUninit;
use std::sync::Once;

use hints_client::exim::dumpdb::{CivilTime, DumpFormat, TimeZone, Utc, format_record};
use hints_client::{Client, DbName};

use crate::bytes::escape;
use crate::commands::each_record;
use crate::failure::Failure;

unsafe extern "C" {
    /// POSIX `tzset()`, which the libc crate does not bind.
    fn tzset();
}

/// The process's local time zone, as the C library's `localtime()` and `mktime()` see it: `TZ`
/// if set, else `/etc/localtime` (UTC if neither says otherwise), as `exim_dumpdb` prints.
#[derive(Clone, Copy, Debug)]
pub struct LocalTime(());

impl LocalTime {
    /// The local zone, read from `TZ` once per process.
    pub fn new() -> LocalTime {
        static TZSET: Once = Once::new();
        // SAFETY: tzset() reads the environment and sets the C library's zone globals; hintsctl
        // changes no environment variable, and this runs once, before any other call here.
        TZSET.call_once(|| unsafe { tzset() });
        LocalTime(())
    }
}

impl TimeZone for LocalTime {
    fn civil(&self, time: i64) -> Option<CivilTime> {
        let time: libc::time_t = time;
        let mut tm = MaybeUninit::<libc::tm>::zeroed();
        // SAFETY: both pointers are valid for the call; localtime_r() writes only `tm`, and
        // returns NULL (leaving nothing to read) when the time is out of its range.
        let filled = unsafe { libc::localtime_r(&time, tm.as_mut_ptr()) };
        if filled.is_null() {
            return None;
        }
        // SAFETY: localtime_r() filled it (and it started zeroed, which is a valid `tm`).
        let tm = unsafe { tm.assume_init() };
        Some(CivilTime {
            year: i64::from(tm.tm_year) + 1900,
            month: u32::try_from(tm.tm_mon + 1).ok()?,
            day: u32::try_from(tm.tm_mday).ok()?,
            hour: u32::try_from(tm.tm_hour).ok()?,
            minute: u32::try_from(tm.tm_min).ok()?,
            second: u32::try_from(tm.tm_sec).ok()?,
        })
    }

    fn time(&self, civil: &CivilTime) -> Option<i64> {
        // SAFETY: an all-zero `tm` is valid (tm_zone a null pointer, which mktime() ignores).
        let mut tm: libc::tm = unsafe { MaybeUninit::zeroed().assume_init() };
        tm.tm_year = i32::try_from(civil.year.checked_sub(1900)?).ok()?;
        tm.tm_mon = i32::try_from(civil.month).ok()? - 1;
        tm.tm_mday = i32::try_from(civil.day).ok()?;
        tm.tm_hour = i32::try_from(civil.hour).ok()?;
        tm.tm_min = i32::try_from(civil.minute).ok()?;
        tm.tm_sec = i32::try_from(civil.second).ok()?;
        // Let the C library decide whether DST is in force, as exim_fixdb's read_time() does.
        tm.tm_isdst = -1;
        // SAFETY: `tm` is a valid, initialised `tm`; mktime() normalises it in place.
        let time = unsafe { libc::mktime(&mut tm) };
        // mktime() normalises what does not exist (31 Nov, a DST gap) into another time, and
        // returns -1 for failure as well as for 23:59:59 on 31 Dec 1969 UTC: only a time that
        // gives back the same civil time is the one asked for.
        (self.civil(time)? == *civil).then_some(time)
    }
}

/// Prints every record of `db` in `exim_dumpdb`'s format for it, in key order, with times in
/// UTC (`utc`, as `exim_dumpdb -z`) or local time. A record that cannot be printed is reported
/// on stderr and skipped.
///
/// # Errors
/// A usage error when `exim_dumpdb` has no format for the database; the client's errors;
/// [`Failure::Incomplete`] when records were skipped.
pub fn dump(client: &mut Client, db: &DbName, utc: bool, out: &mut impl Write) -> Result<(), Failure> {
    let format = DumpFormat::for_db(db.as_str()).map_err(|why| Failure::Usage(format!("--format exim: {why}")))?;
    let local = LocalTime::new();
    let tz: &dyn TimeZone = if utc { &Utc } else { &local };
    let mut skipped = 0_u64;
    each_record(client, db, b"", None, |record| {
        match format_record(format, &record.key, &record.value, tz) {
            Ok(text) => out.write_all(&text)?,
            Err(why) => {
                skipped += 1;
                eprintln!("hintsctl: skipped the record under {} in {db}: {why}", escape(&record.key));
            }
        }
        Ok(())
    })?;
    if skipped > 0 {
        let records = if skipped == 1 { "record" } else { "records" };
        return Err(Failure::Incomplete(format!(
            "{skipped} {records} of {db} could not be printed in exim_dumpdb's format (each is named above)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hints_client::exim::dumpdb::{format_time, parse_time};

    use super::*;

    /// The process's TZ is whatever the test runner has; these hold in any zone.
    #[test]
    fn local_times_read_back_as_they_print() {
        let local = LocalTime::new();
        for time in [0, 1_795_959_182, 1_000_000_000, -86_400 * 365, 4_107_542_400] {
            let text = format_time(&local, time).expect("printable");
            assert_eq!(parse_time(&local, &text), Some(time), "{text}");
        }
        assert_eq!(parse_time(&local, "31-Nov-2026 00:00:00"), None);
        assert_eq!(local.civil(i64::MAX), None);
    }
}
