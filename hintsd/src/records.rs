//! A database's records as the store holds them: packed in one vector, found by their key's
//! hash, and walked in key order.
//!
//! Why two indexes: a get, an overwrite or a read-modify-write finds its record through the
//! hash table in about 130 instructions, where the B-tree took about 700 (thirty key
//! comparisons; a third of the daemon's instructions on a pipelined mix, by callgrind);
//! adding or removing a record changes both, and scans by prefix and cursor, the sweep and
//! snapshots walk the B-tree. Both hold a record's place in the vector (four bytes) rather
//! than the record, so the two cost little more memory than the B-tree alone did: a hash
//! table of records would be half empty after each doubling and take a million records past
//! the memory budget.
//!
//! The cost: when the hash table doubles, every place is hashed again through its record's
//! key, which holds the database for a moment (about 70 ms at half a million records, 150 ms
//! at a million), once per doubling.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Bound;

use foldhash::fast::SeedableRandomState;
use hashbrown::HashTable;

use crate::store::Entry;
use crate::store_key::{KeyBytes, StoredKey};

/// The most records a store holds: places are four bytes. Past the largest `records_max`,
/// with room for the records a put adds before eviction runs.
pub const RECORDS_MAX: usize = u32::MAX as usize;
const _: () = assert!(RECORDS_MAX as u64 - crate::config::RECORDS_MAX_LIMIT >= 1 << 30);

/// One record: its key (shared with the ordered index) and its entry.
struct Slot {
    key: StoredKey,
    entry: Entry,
}

/// The records of one store.
pub struct Records {
    /// The records, in no order; a removal moves the last into the gap.
    slots: Vec<Slot>,
    /// Each record's place in `slots`, by its key's hash.
    by_hash: HashTable<u32>,
    /// Each record's place in `slots`, by its key, in the bytes' order.
    in_order: BTreeMap<StoredKey, u32>,
    /// Seeded per store from the system's randomness (through std's `RandomState`), so a
    /// sender cannot choose addresses whose keys collide: keys carry remote senders' names.
    hasher: SeedableRandomState,
}

impl Default for Records {
    fn default() -> Records {
        Records::with_capacity(0)
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records").field("len", &self.slots.len()).finish_non_exhaustive()
    }
}

impl Records {
    /// No records, with room for `capacity` before either vector or table grows.
    fn with_capacity(capacity: usize) -> Records {
        let seed = std::hash::RandomState::new().hash_one(0u64);
        Records {
            slots: Vec::with_capacity(capacity),
            by_hash: HashTable::with_capacity(capacity),
            in_order: BTreeMap::new(),
            hasher: SeedableRandomState::with_seed(seed, foldhash::SharedSeed::global_random()),
        }
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entry under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.place(key).map(|at| &self.slots[at].entry)
    }

    /// The entry under `key`, to change in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.place(key).map(|at| &mut self.slots[at].entry)
    }

    /// Adds `entry` under `key`, which must hold none.
    pub fn insert_new(&mut self, key: &[u8], entry: Entry) {
        let key = StoredKey::from(key);
        let previous = self.in_order.insert(key.clone(), place_number(self.slots.len()));
        assert!(previous.is_none(), "insert_new under a key the records already hold");
        self.push(key, entry);
    }

    /// Removes and returns the entry under `key`, if there is one.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let found = self.by_hash.find_entry(self.hasher.hash_one(KeyBytes::new(key)), holds(&self.slots, key)).ok()?;
        let at = found.remove().0;
        let removed = self.in_order.remove(KeyBytes::new(key));
        debug_assert_eq!(removed, Some(at), "the two indexes agree on the record's place");
        let at = at as usize;
        let removed = self.slots.swap_remove(at);
        // The last record, if it was not the one removed, now sits in the gap: both indexes
        // are told its new place.
        if let Some(moved) = self.slots.get(at) {
            let was_at = place_number(self.slots.len());
            let hash = self.hasher.hash_one(KeyBytes::new(&moved.key));
            *self.by_hash.find_mut(hash, |&place| place == was_at).expect("every record is in the hash index") =
                place_number(at);
            *self.in_order.get_mut(KeyBytes::new(&moved.key)).expect("every record is in the ordered index") =
                place_number(at);
        }
        Some(removed.entry)
    }

    /// Removes every record `keep` says no to, in one pass over each index (a removal at a
    /// time searched both, and took a tidy of half a million records from 0.12 s to 1.3 s);
    /// the records that stay keep their order in the vector. Returns how many went and the
    /// bytes of their keys and values.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> (usize, u64) {
        // Each record's new place, or `GONE`.
        const GONE: u32 = u32::MAX;
        let mut new_places = Vec::with_capacity(self.slots.len());
        let mut kept = 0u32;
        let mut freed = 0u64;
        for slot in &self.slots {
            if keep(&slot.entry) {
                new_places.push(kept);
                kept += 1;
            } else {
                new_places.push(GONE);
                freed += (slot.key.len() + slot.entry.value.len()) as u64;
            }
        }
        let removed = self.slots.len() - kept as usize;
        if removed == 0 {
            return (0, 0);
        }
        let moved = |at: &mut u32| {
            *at = new_places[*at as usize];
            *at != GONE
        };
        self.by_hash.retain(|at| moved(at));
        self.in_order.retain(|_, at| moved(at));
        let mut places = new_places.iter();
        self.slots.retain(|_| places.next() != Some(&GONE));
        // Memory a large removal freed goes back, rather than wait for records that may not come.
        if self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to_fit();
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.by_hash.shrink_to_fit(|&at| hash_at(hasher, slots, at));
        }
        (removed, freed)
    }

    /// The records from `start` on, in key order.
    pub fn range<'a>(&'a self, start: Bound<&[u8]>) -> impl Iterator<Item = (&'a StoredKey, &'a Entry)> + 'a {
        let start = start.map(KeyBytes::new);
        self.in_order
            .range::<KeyBytes, _>((start, Bound::Unbounded))
            .map(|(key, &at)| (key, &self.slots[at as usize].entry))
    }

    /// Every record, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&StoredKey, &Entry)> + Clone {
        self.in_order.iter().map(|(key, &at)| (key, &self.slots[at as usize].entry))
    }

    /// Every record, in no particular order (faster than [`Records::iter`]).
    pub fn unordered(&self) -> impl Iterator<Item = (&StoredKey, &Entry)> {
        self.slots.iter().map(|slot| (&slot.key, &slot.entry))
    }

    /// Records from pairs in strictly increasing key order (as a snapshot holds them), with
    /// the ordered index built in one pass instead of a search per key.
    pub fn from_ordered(records: Vec<(StoredKey, Entry)>) -> Records {
        let mut built = Records::with_capacity(records.len());
        for (key, entry) in records {
            built.push(key, entry);
        }
        built.in_order =
            built.slots.iter().enumerate().map(|(at, slot)| (slot.key.clone(), place_number(at))).collect();
        assert_eq!(built.in_order.len(), built.slots.len(), "from_ordered takes unique keys");
        built
    }

    /// Puts a record in the next slot and the hash index (not the ordered index).
    fn push(&mut self, key: StoredKey, entry: Entry) {
        let at = place_number(self.slots.len());
        let hash = self.hasher.hash_one(KeyBytes::new(&key));
        self.slots.push(Slot { key, entry });
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_hash.insert_unique(hash, at, |&at| hash_at(hasher, slots, at));
    }

    /// Where the record under `key` sits in `slots`.
    fn place(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(KeyBytes::new(key));
        self.by_hash.find(hash, holds(&self.slots, key)).map(|&at| at as usize)
    }

    /// Panics unless the vector and both indexes agree: every record is found at its own
    /// place through each index, and neither holds anything else.
    #[cfg(test)]
    pub fn check_indexes(&self) {
        assert_eq!(self.by_hash.len(), self.slots.len(), "hash index size");
        assert_eq!(self.in_order.len(), self.slots.len(), "ordered index size");
        for (at, slot) in self.slots.iter().enumerate() {
            assert_eq!(self.place(&slot.key), Some(at), "hash index place of {:?}", &*slot.key);
            assert_eq!(self.in_order.get(KeyBytes::new(&slot.key)), Some(&place_number(at)), "ordered index place");
        }
    }
}

/// True for the place of the record under `key`.
fn holds<'a>(slots: &'a [Slot], key: &'a [u8]) -> impl Fn(&u32) -> bool + 'a {
    move |&at| *slots[at as usize].key == *key
}

/// The hash of the key of the record at `at`, as the table's growth asks for it.
fn hash_at(hasher: &SeedableRandomState, slots: &[Slot], at: u32) -> u64 {
    hasher.hash_one(KeyBytes::new(&slots[at as usize].key))
}

/// A place in `slots` as the indexes hold it. [`RECORDS_MAX`] records would take a terabyte,
/// far past any `records_max` a host can hold, so running out is a bug.
fn place_number(at: usize) -> u32 {
    assert!(at < RECORDS_MAX, "a store holds fewer than {RECORDS_MAX} records");
    at as u32
}
