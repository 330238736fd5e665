//! A database's records as the store holds them: packed in one vector, found by their key's
//! hash, and walked in key order.
//!
//! Why two indexes: a get, a put or a read-modify-write finds its record through the hash
//! table in about 100 instructions, where the B-tree took about 700 (thirty key comparisons;
//! a third of the daemon's instructions on a pipelined mix, by callgrind); scans by prefix
//! and cursor, the sweep and snapshots walk the B-tree. Both hold a record's place in the
//! vector (four bytes) rather than the record, so the two cost little more memory than the
//! B-tree alone did: a hash table of records would be half empty after each doubling and
//! take a million records past the memory budget.

use std::collections::BTreeMap;
use std::ops::Bound;

use hashbrown::HashTable;

use crate::store::Entry;
use crate::store_key::{KeyBytes, StoredKey};

/// One record: its key (shared with the ordered index) and its entry.
#[derive(Debug)]
struct Slot {
    key: StoredKey,
    entry: Entry,
}

/// The records of one store.
#[derive(Debug, Default)]
pub struct Records {
    /// The records, in no order; a removal moves the last into the gap.
    slots: Vec<Slot>,
    /// Each record's place in `slots`, by its key's hash.
    by_hash: HashTable<u32>,
    /// Each record's place in `slots`, by its key, in the bytes' order.
    in_order: BTreeMap<StoredKey, u32>,
    /// Seeded at random per store, so keys chosen to collide in one daemon do not in another.
    hasher: foldhash::fast::RandomState,
}

impl Records {
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

    /// Puts a record in the next slot and the hash index (not the ordered index).
    fn push(&mut self, key: StoredKey, entry: Entry) {
        let at = place_number(self.slots.len());
        let hash = hash_of(&self.hasher, &key);
        self.slots.push(Slot { key, entry });
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_hash.insert_unique(hash, at, |&at| hash_of(hasher, &slots[at as usize].key));
    }

    /// Removes and returns the entry under `key`, if there is one.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let slots = &self.slots;
        let found = self.by_hash.find_entry(hash_of(&self.hasher, key), |&at| *slots[at as usize].key == *key).ok()?;
        let at = found.remove().0 as usize;
        self.in_order.remove(KeyBytes::new(key));
        let removed = self.slots.swap_remove(at);
        // The last record, if it was not the one removed, now sits in the gap: both indexes
        // are told its new place.
        if let Some(moved) = self.slots.get(at) {
            let was_at = place_number(self.slots.len());
            let hash = hash_of(&self.hasher, &moved.key);
            *self.by_hash.find_mut(hash, |&place| place == was_at).expect("every record is in the hash index") =
                place_number(at);
            *self.in_order.get_mut(KeyBytes::new(&moved.key)).expect("every record is in the ordered index") =
                place_number(at);
        }
        Some(removed.entry)
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
        // Collected in place: the pairs' vector becomes the slots' (same size and alignment).
        let slots: Vec<Slot> = records.into_iter().map(|(key, entry)| Slot { key, entry }).collect();
        let hasher = foldhash::fast::RandomState::default();
        let mut by_hash = HashTable::with_capacity(slots.len());
        for (at, slot) in slots.iter().enumerate() {
            by_hash.insert_unique(hash_of(&hasher, &slot.key), place_number(at), |&at| {
                hash_of(&hasher, &slots[at as usize].key)
            });
        }
        let in_order: BTreeMap<StoredKey, u32> =
            slots.iter().enumerate().map(|(at, slot)| (slot.key.clone(), place_number(at))).collect();
        assert_eq!(in_order.len(), slots.len(), "from_ordered takes unique keys");
        Records { slots, by_hash, in_order, hasher }
    }

    /// Where the record under `key` sits in `slots`.
    fn place(&self, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.by_hash.find(hash_of(&self.hasher, key), |&at| *slots[at as usize].key == *key).map(|&at| at as usize)
    }
}

fn hash_of(hasher: &foldhash::fast::RandomState, key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    hasher.hash_one(KeyBytes::new(key))
}

/// A place in `slots` as the indexes hold it. Four billion records would take a terabyte,
/// far past any `records_max` a host can hold, so running out is a bug.
fn place_number(at: usize) -> u32 {
    u32::try_from(at).expect("a store holds fewer than 2^32 records")
}
