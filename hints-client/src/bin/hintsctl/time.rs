//! Stamps as text: RFC 3339 in UTC with microseconds, and epoch seconds with six decimals.

use hints_proto::Stamp;

const SECS_PER_DAY: u64 = 86_400;
const MICROS_PER_SEC: u64 = 1_000_000;

/// `2026-01-02T03:04:05.000006Z`.
pub fn rfc3339_micros(stamp: Stamp) -> String {
    let (secs, micros) = normalized(stamp);
    let days = secs / SECS_PER_DAY;
    let of_day = secs % SECS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// `1767323045.000006`.
pub fn epoch_micros(stamp: Stamp) -> String {
    let (secs, micros) = normalized(stamp);
    format!("{secs}.{micros:06}")
}

/// Seconds and microseconds below a million (a daemon's stamp should already be).
fn normalized(stamp: Stamp) -> (u64, u64) {
    let micros = u64::from(stamp.micros);
    (stamp.secs.saturating_add(micros / MICROS_PER_SEC), micros % MICROS_PER_SEC)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(secs: u64, micros: u32) -> Stamp {
        Stamp { secs, micros }
    }

    #[test]
    fn stamps_print_as_utc_with_microseconds() {
        assert_eq!(rfc3339_micros(stamp(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(stamp(951_782_400, 7)), "2000-02-29T00:00:00.000007Z");
        assert_eq!(rfc3339_micros(stamp(1_767_225_599, 999_999)), "2025-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_micros(stamp(1_767_323_045, 6)), "2026-01-02T03:04:05.000006Z");
        assert_eq!(rfc3339_micros(stamp(4_107_542_400, 0)), "2100-03-01T00:00:00.000000Z");
    }

    fn days_in_month(year: u64, month: u64) -> u64 {
        let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn every_day_follows_the_one_before() {
        let mut previous = civil_from_days(0);
        assert_eq!(previous, (1970, 1, 1));
        for days in 1..200_000 {
            let (year, month, day) = civil_from_days(days);
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                [next_day, next_month, next_year].contains(&(year, month, day)),
                "day {days}: {previous:?} then {:?}",
                (year, month, day)
            );
            if day == 1 {
                assert_eq!(previous.2, days_in_month(previous.0, previous.1), "{previous:?}");
            }
            previous = (year, month, day);
        }
    }

    #[test]
    fn epoch_text_has_six_decimals() {
        assert_eq!(epoch_micros(stamp(1_764_000_000, 42)), "1764000000.000042");
        assert_eq!(epoch_micros(stamp(5, 1_500_000)), "6.500000");
    }
}
