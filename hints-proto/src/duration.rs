//! Exim's time syntax: a number with a unit, repeated (`30d`, `1d12h`, `90s`, `2w`); a bare
//! number is seconds. Used by `hintsctl tidy --older-than` and by the daemon's config.

use std::fmt;

/// The longest duration text accepted (a sanity bound on CLI and config input).
pub const DURATION_TEXT_BYTES_MAX: usize = 64;

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    pub text: String,
    pub why: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a duration ({}); write a number with a unit, as Exim does: 30d, 1d12h, 90s (units w d h m s)",
            self.text, self.why
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses Exim's time syntax into seconds.
///
/// # Errors
/// Empty or overlong text, a unit other than `w d h m s`, a unit with no number before it,
/// or a total past `u64::MAX` seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, DurationError> {
    let fail = |why| Err(DurationError { text: text.to_owned(), why });
    if text.is_empty() {
        return fail("it is empty");
    }
    if text.len() > DURATION_TEXT_BYTES_MAX {
        return fail("it is too long");
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            let Some(n) = number.unwrap_or(0).checked_mul(10).and_then(|n| n.checked_add(u64::from(digit))) else {
                return fail("it is too large");
            };
            number = Some(n);
            continue;
        }
        let unit: u64 = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return fail("unknown unit"),
        };
        let Some(n) = number.take() else {
            return fail("a unit with no number before it");
        };
        let Some(sum) = n.checked_mul(unit).and_then(|part| total.checked_add(part)) else {
            return fail("it is too large");
        };
        total = sum;
    }
    if let Some(n) = number {
        let Some(sum) = total.checked_add(n) else {
            return fail("it is too large");
        };
        total = sum;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exim_durations_parse_to_seconds() {
        for (text, secs) in
            [("30d", 2_592_000), ("1d12h", 129_600), ("90", 90), ("2w", 1_209_600), ("1h30m5s", 5_405), ("0s", 0)]
        {
            assert_eq!(parse_duration_secs(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn malformed_durations_are_refused() {
        for text in ["", "d", "3x", "1.5h", "-1d", "99999999999999999999", &"1".repeat(65)] {
            assert!(parse_duration_secs(text).is_err(), "{text}");
        }
    }
}
