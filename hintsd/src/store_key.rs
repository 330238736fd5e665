//! A record's key as the store holds it: one allocation shared by the record and the ordered
//! index (`records.rs`), ordered as a byte slice is (so scans by prefix and cursor walk keys
//! in the bytes' order) but compared eight bytes at a time.
//!
//! Why compare by words: a search of the ordered index compares the key with about twenty
//! others, and a slice comparison is a call to `memcmp` each time (a quarter of the daemon's
//! instructions on a pipelined mix, when every lookup went through the B-tree).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An owned key, the store's map key. Cloning it shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey(Arc<[u8]>);

/// A borrowed key, to look a record up by without making a [`StoredKey`].
#[derive(Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct KeyBytes([u8]);

impl KeyBytes {
    pub fn new(bytes: &[u8]) -> &KeyBytes {
        let bytes: *const [u8] = bytes;
        // SAFETY: `KeyBytes` is `repr(transparent)` over `[u8]`, so a pointer to one is a
        // valid pointer to the other, with the same length and the same lifetime.
        unsafe { &*(bytes as *const KeyBytes) }
    }
}

impl Ord for KeyBytes {
    fn cmp(&self, other: &KeyBytes) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for KeyBytes {
    fn partial_cmp(&self, other: &KeyBytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoredKey {
    fn cmp(&self, other: &StoredKey) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for StoredKey {
    fn partial_cmp(&self, other: &StoredKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A key hashes as its bytes alone (no length first, as a slice's hash has).
impl Hash for KeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl Borrow<KeyBytes> for StoredKey {
    fn borrow(&self) -> &KeyBytes {
        KeyBytes::new(&self.0)
    }
}

impl Deref for StoredKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for StoredKey {
    fn from(bytes: &[u8]) -> StoredKey {
        StoredKey(bytes.into())
    }
}

impl From<Arc<[u8]>> for StoredKey {
    fn from(bytes: Arc<[u8]>) -> StoredKey {
        StoredKey(bytes)
    }
}

/// The order `<[u8]>::cmp` gives: the first differing byte decides, and a key that is a
/// prefix of another comes first. Eight bytes are compared at once as a big-endian word,
/// whose order is the bytes' order.
#[inline]
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut at = 0;
    while at + 8 <= common {
        let a_word = u64::from_be_bytes(a[at..at + 8].try_into().expect("eight bytes"));
        let b_word = u64::from_be_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        if a_word != b_word {
            return a_word.cmp(&b_word);
        }
        at += 8;
    }
    while at < common {
        if a[at] != b[at] {
            return a[at].cmp(&b[at]);
        }
        at += 1;
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The store's scans depend on this order being the bytes' order exactly.
        #[test]
        fn keys_compare_as_byte_slices_do(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
            shared in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let (a, b) = ([&shared[..], &a].concat(), [&shared[..], &b].concat());
            prop_assert_eq!(compare(&a, &b), a.cmp(&b));
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
            prop_assert_eq!(KeyBytes::new(&a).cmp(KeyBytes::new(&b)), a.cmp(&b));
            prop_assert_eq!(StoredKey::from(&a[..]).cmp(&StoredKey::from(&b[..])), a.cmp(&b));
        }
    }

    #[test]
    fn word_boundaries_and_prefixes_order_as_bytes_do() {
        let keys: [&[u8]; 9] =
            [b"", b"a", b"bench-1", b"bench-10", b"bench-100", b"bench-10\0", b"bench-11", b"bench-2", b"\xff"];
        for a in keys {
            for b in keys {
                assert_eq!(compare(a, b), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }
}
