//! Database names: Exim's (`retry`, `wait-<transport>`, `callout`, `ratelimit`, `seen`, `misc`,
//! `tls`) and any other name of 1 to 64 characters in `[a-z0-9_-]`.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ErrorCode, ErrorReply};
use crate::limits::DB_NAME_BYTES_MAX;

/// Exim's hints databases, by the names its utilities accept (`wait-` takes a transport name).
pub const EXIM_DATABASES: [&str; 6] = ["retry", "callout", "ratelimit", "seen", "misc", "tls"];

/// A database name that has passed [`DbName::new`]. On the wire it is a plain string, and the
/// daemon validates what it decodes with [`DbName::check`].
///
/// Every request names its database, so a name is made on every decode and copied into every
/// request a client builds: a name of up to [`DB_NAME_INLINE_BYTES`] bytes (every name Exim
/// uses) is held inline, and making or copying it allocates nothing. A longer one, valid or
/// not (the daemon must decode a bad name to answer it), is held on the heap.
#[derive(Clone)]
pub struct DbName(Repr);

/// Bytes of a name held inside [`DbName`]: with the length and the tag, 32 bytes in all.
pub const DB_NAME_INLINE_BYTES: usize = 30;

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the name, valid UTF-8.
    Inline {
        len: u8,
        bytes: [u8; DB_NAME_INLINE_BYTES],
    },
    Heap(Box<str>),
}

impl DbName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`ErrorCode::BAD_DB_NAME`] when it is empty, longer than [`DB_NAME_BYTES_MAX`] or has a
    /// character outside `[a-z0-9_-]`.
    pub fn new(name: impl AsRef<str>) -> Result<DbName, ErrorReply> {
        let name = DbName::unchecked(name.as_ref());
        name.check()?;
        Ok(name)
    }

    /// Wraps `name` as it came (off the wire, say), for [`DbName::check`] to judge.
    pub(crate) fn unchecked(name: &str) -> DbName {
        if name.len() > DB_NAME_INLINE_BYTES {
            return DbName(Repr::Heap(name.into()));
        }
        let mut bytes = [0; DB_NAME_INLINE_BYTES];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        DbName(Repr::Inline { len: name.len() as u8, bytes })
    }

    /// Checks a name that came off the wire.
    ///
    /// # Errors
    /// As [`DbName::new`].
    pub fn check(&self) -> Result<(), ErrorReply> {
        check_name(self.as_str())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let name = &bytes[..usize::from(*len)];
                // SAFETY: `unchecked`, the only maker of an inline name, copied these bytes
                // whole from a `&str`, and nothing writes them after. (Checking them again
                // here, on every use of the name, cost more than the allocation saved.)
                unsafe { std::str::from_utf8_unchecked(name) }
            }
            Repr::Heap(name) => name,
        }
    }
}

impl PartialEq for DbName {
    fn eq(&self, other: &DbName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for DbName {}

impl PartialOrd for DbName {
    fn partial_cmp(&self, other: &DbName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DbName {
    fn cmp(&self, other: &DbName) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for DbName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for DbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DbName").field(&self.as_str()).finish()
    }
}

impl Serialize for DbName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Whether each byte may be in a name: `[a-z0-9_-]`.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(byte as u8, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-');
        byte += 1;
    }
    table
};

/// Checks a database name: 1 to [`DB_NAME_BYTES_MAX`] bytes of `[a-z0-9_-]`.
///
/// # Errors
/// [`ErrorCode::BAD_DB_NAME`], saying what is wrong.
pub(crate) fn check_name(name: &str) -> Result<(), ErrorReply> {
    if name.is_empty() {
        return Err(ErrorReply::new(ErrorCode::BAD_DB_NAME, "database name is empty"));
    }
    if name.len() > DB_NAME_BYTES_MAX {
        return Err(ErrorReply::new(
            ErrorCode::BAD_DB_NAME,
            format!("database name is {} bytes, the limit is {DB_NAME_BYTES_MAX}", name.len()),
        ));
    }
    // A table lookup a byte (names are ASCII): every request carries a name, checked on both
    // ends, and four range tests a byte cost twice as much (callgrind).
    let is_name_byte = |b: u8| NAME_BYTES[usize::from(b)];
    if name.bytes().all(is_name_byte) {
        return Ok(());
    }
    let bad = name.chars().find(|&c| !u8::try_from(c).is_ok_and(is_name_byte)).unwrap_or_default();
    Err(ErrorReply::new(
        ErrorCode::BAD_DB_NAME,
        format!("database name {name:?} has {bad:?}; names are 1-64 characters of a-z, 0-9, '_' and '-'"),
    ))
}

/// [`name_from_bytes`] for serde.
fn name_from_wire<E: de::Error>(bytes: &[u8]) -> Result<&str, E> {
    name_from_bytes(bytes).ok_or_else(|| E::custom("a database name that is not UTF-8"))
}

/// A name's bytes off the wire as text, unchecked (`None` when not UTF-8): an ASCII name
/// (every good one) needs no UTF-8 decoding, which cost more than the rest of reading a
/// request.
pub(crate) fn name_from_bytes(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

impl<'de> Deserialize<'de> for DbName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DbName, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = DbName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a database name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<DbName, E> {
                Ok(DbName::unchecked(name))
            }
            fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<DbName, E> {
                name_from_wire(name).map(DbName::unchecked)
            }
        }
        // A string on the wire is its length and its bytes: read as bytes, it is the same.
        // (Other formats may hand over a string or bytes; both are taken, and bytes must be
        // UTF-8.)
        deserializer.deserialize_bytes(NameVisitor)
    }
}

impl fmt::Display for DbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exim_names_and_wait_transport_names_are_accepted() {
        for name in EXIM_DATABASES.iter().copied().chain(["wait-remote_smtp", "greylist", "a", "x-1_2"]) {
            assert!(DbName::new(name).is_ok(), "{name}");
        }
        assert!(DbName::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn a_name_may_hold_exactly_the_bytes_a_to_z_0_to_9_underscore_and_hyphen() {
        for byte in 0..=255u8 {
            let allowed = byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-';
            let name = [b'a', byte, b'z'];
            let checked = std::str::from_utf8(&name).map_or(Err(()), |name| check_name(name).map_err(drop));
            assert_eq!(checked.is_ok(), allowed, "byte {byte:#04x}");
        }
    }

    #[test]
    fn no_byte_of_a_multibyte_character_may_be_in_a_name() {
        // The test above cannot put a byte from 0x80 up into a `&str` alone.
        assert!(NAME_BYTES[0x80..].iter().all(|&allowed| !allowed));
        for name in ["aéz", "a\u{2010}z", "\u{ff41}"] {
            assert!(check_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn short_and_long_names_encode_as_plain_strings_and_compare_by_text() {
        let short = "retry";
        let long = "wait-a_transport_name_longer_than_thirty_bytes";
        assert!(short.len() <= DB_NAME_INLINE_BYTES && long.len() > DB_NAME_INLINE_BYTES);
        for text in [short, long, &"a".repeat(DB_NAME_INLINE_BYTES)] {
            let name = DbName::new(text).unwrap();
            assert_eq!(name.as_str(), text);
            let bytes = postcard::to_allocvec(&name).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(text).unwrap(), "{text}");
            let back: DbName = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, name);
            assert_eq!(back.clone().as_str(), text);
        }
        assert!(DbName::new(short).unwrap() < DbName::new(long).unwrap());
        // A bad name decodes, whatever its length, so that the daemon can answer it.
        let oversized = "x".repeat(DB_NAME_BYTES_MAX + 1);
        let decoded: DbName = postcard::from_bytes(&postcard::to_allocvec(oversized.as_str()).unwrap()).unwrap();
        assert_eq!(decoded.check().unwrap_err().code, ErrorCode::BAD_DB_NAME);
    }

    #[test]
    fn a_name_off_the_wire_is_read_as_bytes_and_must_be_utf8() {
        let wire = |bytes: &[u8]| postcard::to_allocvec(serde_bytes::Bytes::new(bytes)).unwrap();
        let misc: DbName = postcard::from_bytes(&wire(b"misc")).unwrap();
        assert_eq!(misc.as_str(), "misc");
        // UTF-8 that is not a good name decodes, for the daemon to answer BAD_DB_NAME.
        let accented: DbName = postcard::from_bytes(&wire("é".as_bytes())).unwrap();
        assert_eq!((accented.as_str(), accented.check().unwrap_err().code), ("é", ErrorCode::BAD_DB_NAME));
        assert!(postcard::from_bytes::<DbName>(&wire(b"\xff\xfe")).is_err(), "not UTF-8");
    }

    #[test]
    fn malformed_names_are_refused_with_bad_db_name() {
        for name in ["", "Retry", "a b", "../etc", "x.y", "é", &"a".repeat(65)] {
            let err = DbName::new(name).unwrap_err();
            assert_eq!(err.code, ErrorCode::BAD_DB_NAME, "{name:?}");
        }
    }

    #[test]
    fn every_length_and_every_way_a_deserializer_hands_a_string_gives_the_same_name() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{BorrowedStrDeserializer, Error, StrDeserializer, StringDeserializer};

        // Lengths either side of the inline limit, multi-byte characters ending on it.
        let mut texts: Vec<String> = (0..=DB_NAME_BYTES_MAX + 2).map(|len| "n".repeat(len)).collect();
        texts.extend(["é".repeat(15), format!("{}é", "a".repeat(29)), format!("{}é", "a".repeat(28)), "😀".repeat(8)]);
        for text in &texts {
            let made = DbName::unchecked(text);
            assert_eq!(made.as_str(), text);
            assert_eq!(made.clone().as_str(), text);
            assert_eq!(made.to_string(), *text);
            assert_eq!(format!("{made:?}"), format!("DbName({text:?})"));
            let ways = [
                DbName::deserialize(StrDeserializer::<Error>::new(text)).unwrap(),
                DbName::deserialize(BorrowedStrDeserializer::<Error>::new(text)).unwrap(),
                DbName::deserialize(StringDeserializer::<Error>::new(text.clone())).unwrap(),
                DbName::deserialize(IntoDeserializer::<Error>::into_deserializer(text.as_str())).unwrap(),
                postcard::from_bytes(&postcard::to_allocvec(text.as_str()).unwrap()).unwrap(),
            ];
            for name in ways {
                assert_eq!(name.as_str(), text);
                assert_eq!(name, made);
                assert_eq!(name.cmp(&made), std::cmp::Ordering::Equal);
            }
            assert_eq!(postcard::to_allocvec(&made).unwrap(), postcard::to_allocvec(text.as_str()).unwrap());
            assert_eq!(
                DbName::new(text).is_ok(),
                !text.is_empty() && text.len() <= DB_NAME_BYTES_MAX && text.is_ascii()
            );
        }
        // Order, equality and hash follow the text, inline or not.
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        for a in &texts {
            for b in &texts {
                let (na, nb) = (DbName::unchecked(a), DbName::unchecked(b));
                assert_eq!(na.cmp(&nb), a.cmp(b));
                assert_eq!(na == nb, a == b);
                assert_eq!(state.hash_one(&na), state.hash_one(a.as_str()));
            }
        }
    }

    #[test]
    fn a_bad_name_off_the_wire_is_refused_with_the_requests_id() {
        use crate::message::{Request, RequestEnvelope};
        let long_ok = "a".repeat(DB_NAME_BYTES_MAX);
        let inline_bad = format!("{}!", "a".repeat(DB_NAME_INLINE_BYTES - 1));
        let heap_bad = format!("{}!", "a".repeat(DB_NAME_INLINE_BYTES));
        let too_long = "a".repeat(DB_NAME_BYTES_MAX + 1);
        let huge = "a".repeat(10_000);
        for (text, good) in [
            ("retry", true),
            (long_ok.as_str(), true),
            ("", false),
            ("Bad", false),
            (inline_bad.as_str(), false),
            (heap_bad.as_str(), false),
            (too_long.as_str(), false),
            (huge.as_str(), false),
        ] {
            let request = Request::Get { db: DbName::unchecked(text), key: b"k".to_vec() };
            let body = postcard::to_stdvec(&RequestEnvelope { id: 77, request }).unwrap();
            match RequestEnvelope::decode(&body) {
                Ok(envelope) => {
                    assert!(good, "{text:?} was accepted");
                    assert_eq!(envelope.request.db().unwrap().as_str(), text);
                }
                Err(refusal) => {
                    assert!(!good, "{text:?} was refused: {:?}", refusal.reply);
                    assert_eq!((refusal.id, refusal.reply.code), (77, ErrorCode::BAD_DB_NAME), "{text:?}");
                }
            }
        }
    }
}
