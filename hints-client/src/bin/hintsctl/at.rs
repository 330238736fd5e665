//! `--at`: the moment an event happened, as epoch seconds with an optional fraction
//! (`1767323045` or `1767323045.5`), read exactly: as integers, never through a float.

use hints_client::Stamp;

/// The most fraction digits: microseconds.
const FRACTION_DIGITS_MAX: usize = 6;

/// Parses `SECONDS` or `SECONDS.MICROS` into a stamp. `MICROS` is 1 to 6 digits read as a
/// decimal fraction of a second: `.5` is 500000 µs, `.000001` is 1 µs.
///
/// # Errors
/// A message for clap (a usage error): anything but ASCII digits with at most one `.`, an
/// empty part on either side of the `.`, a sign, more than 6 fraction digits, or seconds past
/// `u64::MAX`.
pub fn parse_at(text: &str) -> Result<Stamp, String> {
    let (secs_text, fraction) = match text.split_once('.') {
        Some((secs, fraction)) => (secs, Some(fraction)),
        None => (text, None),
    };
    let secs = digits(secs_text)
        .ok_or_else(|| format!("{text:?} is not a time: write epoch seconds, with up to 6 decimals (1767323045.5)"))?
        .ok_or_else(|| format!("{text:?} is past the largest time in seconds ({})", u64::MAX))?;
    let micros = match fraction {
        None => 0,
        Some(fraction) => {
            if fraction.len() > FRACTION_DIGITS_MAX {
                return Err(format!("{text:?} has more than {FRACTION_DIGITS_MAX} decimals (microseconds)"));
            }
            let value = digits(fraction)
                .flatten()
                .ok_or_else(|| format!("{text:?} is not a time: the part after the '.' must be 1 to 6 digits"))?;
            // At most 6 digits, so the value is under 10^6 and the scaled one is too.
            let scale = 10u64.pow((FRACTION_DIGITS_MAX - fraction.len()) as u32);
            u32::try_from(value * scale).map_err(|_| format!("{text:?}: the fraction is out of range"))?
        }
    };
    Ok(Stamp { secs, micros })
}

/// A non-empty run of ASCII digits as a number: `None` when it is not one, `Some(None)` when
/// it overflows a `u64`.
fn digits(text: &str) -> Option<Option<u64>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().try_fold(0u64, |n, b| n.checked_mul(10)?.checked_add(u64::from(b - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(secs: u64, micros: u32) -> Stamp {
        Stamp { secs, micros }
    }

    #[test]
    fn seconds_alone_or_with_a_fraction_of_one_to_six_digits() {
        assert_eq!(parse_at("0"), Ok(stamp(0, 0)));
        assert_eq!(parse_at("1767323045"), Ok(stamp(1_767_323_045, 0)));
        assert_eq!(parse_at("1767323045.5"), Ok(stamp(1_767_323_045, 500_000)));
        assert_eq!(parse_at("1.05"), Ok(stamp(1, 50_000)));
        assert_eq!(parse_at("1.000001"), Ok(stamp(1, 1)));
        assert_eq!(parse_at("1.999999"), Ok(stamp(1, 999_999)));
        assert_eq!(parse_at("1.000000"), Ok(stamp(1, 0)));
        assert_eq!(parse_at("1.123"), Ok(stamp(1, 123_000)));
        assert_eq!(parse_at("007.1"), Ok(stamp(7, 100_000)), "leading zeros are only zeros");
        assert_eq!(parse_at("18446744073709551615.999999"), Ok(stamp(u64::MAX, 999_999)));
    }

    #[test]
    fn a_fraction_is_exact_where_a_float_would_not_be() {
        // Through an f64, the first comes out 1 µs short and the second a whole second off.
        assert_eq!(parse_at("1767323045.000001"), Ok(stamp(1_767_323_045, 1)));
        assert_eq!(parse_at("9007199254740993.7"), Ok(stamp(9_007_199_254_740_993, 700_000)));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for text in [
            "",
            ".",
            "5.",
            ".5",
            "-1",
            "+1",
            "1.-5",
            "1.+5",
            "1.1234567",
            "1.0000000",
            "1e9",
            "0x10",
            "1.5s",
            "one",
            " 1",
            "1 ",
            "1..5",
            "1.2.3",
            "1,5",
            "١",
            "18446744073709551616",
            "99999999999999999999999.1",
        ] {
            let err = parse_at(text).expect_err(text);
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
        assert!(parse_at("1.1234567").unwrap_err().contains("more than 6 decimals"));
        assert!(parse_at("18446744073709551616").unwrap_err().contains("past the largest"));
    }
}
