//! Keys and values as text: the printable escaping hintsctl prints, and hex both ways.

use std::fmt::Write as _;

/// The printable escaping of keys and values: the same as hintsd's text replies.
pub use hints_proto::text::escape;

/// Bytes as lower-case hex, two digits each.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parses hex (either case, an even number of digits, nothing else; empty is no bytes).
///
/// # Errors
/// A message saying what is wrong: an odd length or a character that is not a hex digit.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("{text:?} is not hex: it has an odd number of digits"));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("{text:?} is not hex: {:?} is not a hex digit", char::from(c))),
    };
    text.as_bytes().chunks_exact(2).map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_bytes_stay_and_the_rest_are_escaped() {
        assert_eq!(escape(b"plain text ~!"), "plain text ~!");
        assert_eq!(escape(b"a\\b"), "a\\\\b");
        assert_eq!(escape(b"l1\nl2\tc\r"), "l1\\nl2\\tc\\r");
        assert_eq!(escape(&[0, 0x1f, 0x7f, 0x80, 0xff]), "\\x00\\x1f\\x7f\\x80\\xff");
        assert_eq!(escape("é".as_bytes()), "\\xc3\\xa9");
        assert_eq!(escape(b""), "");
    }

    #[test]
    fn every_byte_escapes_to_text_with_no_tab_or_newline() {
        let all: Vec<u8> = (0..=255).collect();
        let text = escape(&all);
        assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{text}");
    }

    #[test]
    fn hex_round_trips_in_either_case() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(parse_hex(&to_hex(&all)), Ok(all.clone()));
        assert_eq!(parse_hex(&to_hex(&all).to_uppercase()), Ok(all));
        assert_eq!(to_hex(b"\x00\xab"), "00ab");
        assert_eq!(parse_hex(""), Ok(vec![]));
    }

    #[test]
    fn bad_hex_is_refused_with_a_reason() {
        assert!(parse_hex("abc").unwrap_err().contains("odd number"));
        assert!(parse_hex("zz").unwrap_err().contains("'z'"));
        assert!(parse_hex("0x00").is_err());
        assert!(parse_hex("00 11").is_err());
        assert!(parse_hex("é0").is_err());
    }
}
