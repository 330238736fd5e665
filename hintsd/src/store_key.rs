//! A record's key as the store holds it, in the record and in the ordered index
//! (`records.rs`): a short key inline, a longer one in one allocation the two share; ordered
//! as a byte slice is (so scans by prefix and cursor walk keys in the bytes' order) but
//! compared eight bytes at a time.
//!
//! Why compare by words: a search of the ordered index compares the key with about twenty
//! others, and a slice comparison is a call to `memcmp` each time (a quarter of the daemon's
//! instructions on a pipelined mix, when every lookup went through the B-tree).
//!
//! Why inline: a lookup by hash compares the key it is given with the record's, and a key
//! behind a pointer was a cache miss of its own on every lookup (`memcmp` was 7 % of a
//! pipelined mix's time, perf). A key of up to [`INLINE_KEY_BYTES`] (an IPv4 address, a short
//! domain or address) lives in the 16 bytes a shared one's pointer and length take, and saves
//! its allocation; a longer key costs what it did. (A 24-byte key holding up to 22 bytes
//! inline cost a million 33-byte retry keys 23 bytes a record more, past the memory budget.)

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An owned key, the store's map key: inline when it fits, else shared (cloning it shares the
/// bytes).
pub struct StoredKey(Repr);

/// Keys of at most this many bytes are held inline.
pub const INLINE_KEY_BYTES: usize = 15;

/// A key in two words. A shared key is an `Arc<[u8]>` given up with `Arc::into_raw`: its data
/// pointer and its length. An inline key is its bytes, with its length and [`INLINE_TAG`] in
/// the byte that is the most significant of a shared key's length: no key is 2^56 bytes long,
/// so that byte of a shared key is zero and the tag tells the two apart. The length word comes
/// last on a little-endian host and first on a big-endian one, so the inline bytes are one run.
/// Not `Copy`: a copy of a shared key's `Repr` is a second owner of one count, so only `Clone`
/// makes one, and counts it.
#[repr(C)]
union Repr {
    bytes: [u8; 16],
    shared: Shared,
}

#[cfg(target_endian = "little")]
#[derive(Clone, Copy)]
#[repr(C)]
struct Shared {
    data: *const u8,
    len: usize,
}

#[cfg(target_endian = "big")]
#[derive(Clone, Copy)]
#[repr(C)]
struct Shared {
    len: usize,
    data: *const u8,
}

/// Where an inline key keeps its length and tag (a shared key's length's most significant
/// byte), and where its bytes start.
const TAG_AT: usize = if cfg!(target_endian = "little") { 15 } else { 0 };
const INLINE_AT: usize = if cfg!(target_endian = "little") { 0 } else { 1 };
const INLINE_TAG: u8 = 0x80;

// 64-bit hosts only (as hintsd's are): the two words are 16 bytes.
const _: () = assert!(std::mem::size_of::<Repr>() == 16 && std::mem::size_of::<usize>() == 8);
const _: () = assert!(INLINE_KEY_BYTES == 15 && INLINE_KEY_BYTES < INLINE_TAG as usize);

// SAFETY: a shared key is an `Arc<[u8]>`, which is `Send` and `Sync`; an inline one is bytes.
unsafe impl Send for StoredKey {}
// SAFETY: as above.
unsafe impl Sync for StoredKey {}

impl StoredKey {
    fn is_inline(&self) -> bool {
        // SAFETY: every byte of either form is initialised; in a shared key this one is a byte
        // of its length, a plain integer.
        unsafe { self.0.bytes[TAG_AT] & INLINE_TAG != 0 }
    }

    /// `bytes` inline, if they fit.
    fn inline(bytes: &[u8]) -> Option<StoredKey> {
        if bytes.len() > INLINE_KEY_BYTES {
            return None;
        }
        let mut inline = [0; 16];
        inline[INLINE_AT..INLINE_AT + bytes.len()].copy_from_slice(bytes);
        inline[TAG_AT] = INLINE_TAG | bytes.len() as u8;
        Some(StoredKey(Repr { bytes: inline }))
    }

    /// `bytes` shared, through `Arc::into_raw` (undone by `Drop`).
    fn shared(bytes: Arc<[u8]>) -> StoredKey {
        // A slice is at most `isize::MAX` bytes, so the tag's bit of the length is clear.
        debug_assert!(bytes.len() >> 56 == 0, "a key is shorter than 2^56 bytes");
        let raw = Arc::into_raw(bytes);
        StoredKey(Repr { shared: Shared { data: raw.cast::<u8>(), len: raw.len() } })
    }

    /// A shared key's `Arc` as `Arc::into_raw` gave it; `None` for an inline key.
    fn raw_shared(&self) -> Option<*const [u8]> {
        if self.is_inline() {
            return None;
        }
        // SAFETY: not inline, so made by `shared`.
        let Shared { data, len } = unsafe { self.0.shared };
        Some(std::ptr::slice_from_raw_parts(data, len))
    }
}

impl Clone for StoredKey {
    fn clone(&self) -> StoredKey {
        if let Some(raw) = self.raw_shared() {
            // SAFETY: `raw` came from `Arc::into_raw`, and this key still holds its count.
            unsafe { Arc::increment_strong_count(raw) };
        }
        // SAFETY: a bitwise copy of an initialised `Repr`; for a shared key, the count the copy
        // owns was just added.
        StoredKey(unsafe { std::ptr::read(&self.0) })
    }
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        if let Some(raw) = self.raw_shared() {
            // SAFETY: `raw` came from `Arc::into_raw`, and this key gives up the count it held.
            drop(unsafe { Arc::from_raw(raw) });
        }
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &StoredKey) -> bool {
        **self == **other
    }
}

impl Eq for StoredKey {}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredKey(b\"{}\")", self.escape_ascii())
    }
}

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
        compare(self, other)
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
        KeyBytes::new(self)
    }
}

impl Deref for StoredKey {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self.raw_shared() {
            // SAFETY: the `Arc` this key holds a count of is alive, and its bytes never change.
            Some(raw) => unsafe { &*raw },
            None => {
                // SAFETY: an inline key's bytes are all initialised.
                let bytes = unsafe { &self.0.bytes };
                let len = usize::from(bytes[TAG_AT] & !INLINE_TAG);
                &bytes[INLINE_AT..INLINE_AT + len]
            }
        }
    }
}

impl From<&[u8]> for StoredKey {
    fn from(bytes: &[u8]) -> StoredKey {
        StoredKey::inline(bytes).unwrap_or_else(|| StoredKey::shared(bytes.into()))
    }
}

impl From<Arc<[u8]>> for StoredKey {
    fn from(bytes: Arc<[u8]>) -> StoredKey {
        StoredKey::inline(&bytes).unwrap_or_else(|| StoredKey::shared(bytes))
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

    #[test]
    fn keys_either_side_of_the_inline_limit_keep_their_bytes_order_and_equality() {
        let long = vec![b'k'; 300];
        let lengths = [0, 1, INLINE_KEY_BYTES - 1, INLINE_KEY_BYTES, INLINE_KEY_BYTES + 1, 255, 256, 300];
        let mut owned: Vec<Vec<u8>> = lengths.iter().map(|&len| long[..len].to_vec()).collect();
        // Keys either side of the limit that differ only in their last byte, high bits set.
        for len in [INLINE_KEY_BYTES, INLINE_KEY_BYTES + 1] {
            for last in [0x00, 0x7f, 0x80, 0xff] {
                owned.push([&long[..len - 1], &[last][..]].concat());
            }
        }
        let keys: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        for &a in &keys {
            let stored = StoredKey::from(a);
            assert_eq!(&*stored, a, "{} bytes", a.len());
            assert_eq!(stored.is_inline(), a.len() <= INLINE_KEY_BYTES, "{} bytes", a.len());
            let from_shared = StoredKey::from(Arc::<[u8]>::from(a));
            assert_eq!(&*from_shared, a);
            assert_eq!(from_shared.is_inline(), a.len() <= INLINE_KEY_BYTES);
            assert_eq!(stored.clone(), from_shared, "a key is equal to itself in either making");
            for &b in &keys {
                assert_eq!(stored.cmp(&StoredKey::from(b)), a.cmp(b), "{} against {} bytes", a.len(), b.len());
                assert_eq!(stored == StoredKey::from(b), a == b);
            }
        }
    }

    #[test]
    fn a_shared_key_counts_its_clones_and_gives_its_bytes_back_with_the_last() {
        let bytes: Arc<[u8]> = Arc::from(vec![b'x'; INLINE_KEY_BYTES + 1]);
        let key = StoredKey::from(Arc::clone(&bytes));
        assert_eq!(Arc::strong_count(&bytes), 2, "the key holds the bytes it was given");
        let copies: Vec<StoredKey> = (0..3).map(|_| key.clone()).collect();
        assert_eq!(Arc::strong_count(&bytes), 5);
        assert!(copies.iter().all(|copy| **copy == *bytes));
        drop(key);
        assert_eq!(Arc::strong_count(&bytes), 4);
        drop(copies);
        assert_eq!(Arc::strong_count(&bytes), 1, "every clone gave its count back");
        let short: Arc<[u8]> = Arc::from(&b"192.0.2.1"[..]);
        let inline = StoredKey::from(Arc::clone(&short));
        assert_eq!(Arc::strong_count(&short), 1, "a short key is copied inline, not kept");
        assert_eq!(&*inline, b"192.0.2.1");
    }
}
