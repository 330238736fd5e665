//! The hints store of one database: its records, stamped on every write, found by key and walked
//! in key order.
//!
//! A plain struct with no actix, no I/O and no clock: the caller passes the time in, so its
//! semantics are tested directly. The actor in `db.rs` owns one and applies requests to it in
//! mailbox order, which is the whole of hintsd's locking.

use std::num::NonZeroU64;
use std::ops::Bound;
use std::sync::Arc;

use hints_proto::Stamp;
use hints_proto::limits::SCAN_PAGE_BYTES_MAX;

use crate::records::Records;
use crate::store_key::StoredKey;

/// One stored record's value, stamp and deadline (the key is held beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Box<[u8]>,
    pub stamp: Stamp,
    /// Unix second from which the record is gone, for records that set their own lifetime
    /// (a greylist triplet, a counter with an expiry); `None` follows the database's age rule.
    pub expires: Option<NonZeroU64>,
}

/// A record as a scan returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanItem {
    pub key: Box<[u8]>,
    pub entry: Entry,
}

/// One page of a scan: the records, and the key to resume after when more may follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<ScanItem>,
    pub next: Option<Box<[u8]>>,
}

/// What a compare-and-set did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasResult {
    /// It applied; the new stamp, or `None` when it deleted.
    Swapped(Option<Stamp>),
    /// The record's stamp was not the expected one; here is the record as it is.
    Conflict(Option<Entry>),
}

/// What a read-modify-write stores ([`Store::read_modify_write`]): the new value, and the
/// record's own deadline (a Unix second), if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub value: Vec<u8>,
    pub expires: Option<NonZeroU64>,
}

/// The records of one database.
#[derive(Debug, Default)]
pub struct Store {
    /// Found by key in one hash lookup, walked in key order for scans, the sweep and snapshots.
    records: Records,
    /// Bytes of keys and values held, kept in step with `records` on every change.
    bytes: u64,
    /// The last stamp handed out; every write gets a later one, even if the clock steps back,
    /// so that a stamp names exactly one version of a record.
    last_stamp: Stamp,
    /// Records dropped by [`Store::sweep`] since the store was made.
    expired_total: u64,
    /// Records dropped by [`Store::evict_over`] since the store was made.
    evicted_total: u64,
}

/// Records one sweep step looks at, at most: a step must never hold the actor for long.
pub const SWEEP_STEP_RECORDS: usize = 4096;

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// How many records are held.
    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The record under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.records.get(key)
    }

    /// Stores `value` under `key`, stamped `now` (or just after the last stamp, if later).
    pub fn put(&mut self, key: &[u8], value: &[u8], now: Stamp) -> Stamp {
        self.put_with_expiry(key, value, now, None)
    }

    /// As [`Store::put`], with the record's own deadline (a Unix second).
    ///
    /// Overwriting is the usual write of a hint (a rate, a retry time, a `seen` timestamp):
    /// the record keeps its key, and its value's memory when the size is unchanged (Exim's
    /// records have fixed layouts), so an overwrite allocates nothing.
    pub fn put_with_expiry(&mut self, key: &[u8], value: &[u8], now: Stamp, expires: Option<NonZeroU64>) -> Stamp {
        let stamp = next_stamp(&mut self.last_stamp, now);
        match self.records.get_mut(key) {
            Some(entry) => overwrite(entry, &mut self.bytes, value, stamp, expires),
            None => self.insert_new(key, value, stamp, expires),
        }
        stamp
    }

    /// Hands the value under `key` (`None` if there is none) to `modify`, and stores the
    /// write it returns, if any, stamped `now`: a read-modify-write (a rate, a `seen`
    /// timestamp, a greylist triplet) with one lookup when the record exists,
    /// where a get and a put made two. Nothing is stored when `modify` fails. Returns what
    /// `modify` returned besides, and the stamp written, if it wrote.
    pub fn read_modify_write<T, E>(
        &mut self,
        key: &[u8],
        now: Stamp,
        modify: impl FnOnce(Option<&[u8]>) -> Result<(T, Option<Write>), E>,
    ) -> Result<(T, Option<Stamp>), E> {
        let Some(entry) = self.records.get_mut(key) else {
            let (result, write) = modify(None)?;
            let stamp = write.map(|write| {
                let stamp = next_stamp(&mut self.last_stamp, now);
                self.insert_new(key, &write.value, stamp, write.expires);
                stamp
            });
            return Ok((result, stamp));
        };
        let (result, write) = modify(Some(&entry.value))?;
        let stamp = write.map(|write| {
            let stamp = next_stamp(&mut self.last_stamp, now);
            overwrite(entry, &mut self.bytes, &write.value, stamp, write.expires);
            stamp
        });
        Ok((result, stamp))
    }

    /// Adds a record under `key`, which holds none.
    fn insert_new(&mut self, key: &[u8], value: &[u8], stamp: Stamp, expires: Option<NonZeroU64>) {
        self.bytes += (key.len() + value.len()) as u64;
        self.records.insert_new(key, Entry { value: value.into(), stamp, expires });
    }

    /// Records dropped by age or deadline so far.
    pub fn expired_total(&self) -> u64 {
        self.expired_total
    }

    /// Records evicted at the record limit so far.
    pub fn evicted_total(&self) -> u64 {
        self.evicted_total
    }

    /// Looks at up to [`SWEEP_STEP_RECORDS`] records after the key `after` (from the start when
    /// `None`), dropping those past their own deadline (`now_secs`) and, of those without one,
    /// those stamped before `age_cutoff`. Returns where the next step starts, `None` when this step reached the end.
    pub fn sweep(&mut self, after: Option<&[u8]>, now_secs: u64, age_cutoff: Stamp) -> Option<Box<[u8]>> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut doomed = Vec::new();
        let mut last = None;
        for (seen, (key, entry)) in self.records.range(start).enumerate() {
            if seen >= SWEEP_STEP_RECORDS {
                break;
            }
            // A record with its own deadline follows it alone; the rest follow the age rule.
            let expired = match entry.expires {
                Some(deadline) => deadline.get() <= now_secs,
                None => entry.stamp < age_cutoff,
            };
            if expired {
                doomed.push(key.clone());
            }
            last = Some(key);
        }
        let reached_end = match last {
            Some(last) => self.records.range(Bound::Excluded(last)).next().is_none(),
            None => true,
        };
        let next = if reached_end { None } else { last.map(|last| Box::from(&**last)) };
        for key in &doomed {
            self.delete(key);
        }
        self.expired_total += doomed.len() as u64;
        next
    }

    /// When more than `records_max` records are held, evicts the oldest (by stamp): the excess
    /// and a further 1/64 of the limit, so the O(n) selection runs once per many inserts.
    /// Returns how many went.
    pub fn evict_over(&mut self, records_max: u64) -> u64 {
        let len = self.len();
        if len <= records_max {
            return 0;
        }
        let batch = ((len - records_max) + records_max / 64).min(len) as usize;
        let mut stamps: Vec<Stamp> = self.records.unordered().map(|(_, entry)| entry.stamp).collect();
        let (_, cutoff, _) = stamps.select_nth_unstable(batch - 1);
        // Stamps are unique within a store, so exactly `batch` records are at or below it.
        let cutoff = *cutoff;
        let evicted = self.remove_where(|entry| entry.stamp <= cutoff);
        assert_eq!(evicted, batch as u64, "stamps within a store are unique");
        self.evicted_total += evicted;
        evicted
    }

    /// Removes the record under `key`, saying whether there was one.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        match self.records.remove(key) {
            Some(entry) => {
                self.forget_bytes(key, &entry);
                true
            }
            None => false,
        }
    }

    /// Writes `value` (or deletes, for `None`) only if the record's stamp is `expected`
    /// (`None`: only if there is no record).
    pub fn compare_and_set(
        &mut self,
        key: &[u8],
        expected: Option<Stamp>,
        value: Option<&[u8]>,
        now: Stamp,
    ) -> CasResult {
        let current = self.records.get(key);
        if current.map(|entry| entry.stamp) != expected {
            return CasResult::Conflict(current.cloned());
        }
        match value {
            Some(value) => CasResult::Swapped(Some(self.put(key, value, now))),
            None => {
                self.delete(key);
                CasResult::Swapped(None)
            }
        }
    }

    /// Up to `limit` records whose key starts with `prefix`, in key order, after the key
    /// `after` when given. A page also stops once its keys and values pass
    /// [`SCAN_PAGE_BYTES_MAX`], so it always fits a frame.
    pub fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Page {
        assert!(limit > 0, "scan limit is checked at the protocol boundary");
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut matching = self.records.range(start).take_while(|(key, _)| key.starts_with(prefix));
        let mut items = Vec::new();
        let mut page_bytes = 0;
        for (key, entry) in matching.by_ref() {
            page_bytes += key.len() + entry.value.len();
            items.push(ScanItem { key: Box::from(&**key), entry: entry.clone() });
            if items.len() >= limit as usize || page_bytes >= SCAN_PAGE_BYTES_MAX {
                break;
            }
        }
        let more = matching.next().is_some();
        let next = if more { items.last().map(|item| item.key.clone()) } else { None };
        Page { items, next }
    }

    /// Drops every record stamped before `cutoff`, returning how many.
    pub fn tidy(&mut self, cutoff: Stamp) -> u64 {
        self.remove_where(|entry| entry.stamp < cutoff)
    }

    /// Removes every record for which `doomed` says so, returning how many.
    fn remove_where(&mut self, doomed: impl Fn(&Entry) -> bool) -> u64 {
        let (removed, freed) = self.records.retain(|entry| !doomed(entry));
        assert!(self.bytes >= freed, "byte count fell below the records' sizes");
        self.bytes -= freed;
        removed as u64
    }

    fn forget_bytes(&mut self, key: &[u8], entry: &Entry) {
        let size = (key.len() + entry.value.len()) as u64;
        assert!(self.bytes >= size, "byte count fell below a record's size");
        self.bytes -= size;
    }

    /// Every record, in key order (what a snapshot writes). Exact-size and cloneable, so a
    /// writer can size its buffer in a first pass.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &Entry)> + Clone {
        self.records.iter().map(|(key, entry)| (&**key, entry))
    }

    /// A store holding `records` (what a snapshot read back), with its byte count and its last
    /// stamp (the latest loaded, so later writes are stamped after every loaded record). Keys
    /// are expected unique; of duplicates, the last one is kept.
    pub fn load(records: impl IntoIterator<Item = (Arc<[u8]>, Entry)>) -> Store {
        let mut records: Vec<(StoredKey, Entry)> =
            records.into_iter().map(|(key, entry)| (key.into(), entry)).collect();
        // A snapshot's records come in strictly increasing order already.
        if !records.is_sorted_by(|(a, _), (b, _)| a < b) {
            records.sort_by(|(a, _), (b, _)| a.cmp(b));
            // Of equal keys, now side by side in their first order, the last one's entry stays.
            records.dedup_by(|(later_key, later), (key, kept)| {
                let same = later_key == key;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        let bytes = records.iter().map(|(key, entry)| (key.len() + entry.value.len()) as u64).sum();
        let last_stamp = records.iter().map(|(_, entry)| entry.stamp).max().unwrap_or_default();
        Store { records: Records::from_ordered(records), bytes, last_stamp, ..Store::default() }
    }
}

/// The stamp for a write at `now`: `now`, or just after the last stamp handed out if that is
/// later (the clock stepped back), so that a stamp names exactly one version of a record.
fn next_stamp(last_stamp: &mut Stamp, now: Stamp) -> Stamp {
    let stamp = if now > *last_stamp { now } else { last_stamp.next() };
    *last_stamp = stamp;
    stamp
}

/// Writes `value` over a stored record, in its own memory when the size is unchanged,
/// keeping the store's byte count (`bytes`) in step.
fn overwrite(entry: &mut Entry, bytes: &mut u64, value: &[u8], stamp: Stamp, expires: Option<NonZeroU64>) {
    if entry.value.len() == value.len() {
        entry.value.copy_from_slice(value);
    } else {
        let old_len = std::mem::replace(&mut entry.value, value.into()).len() as u64;
        assert!(*bytes >= old_len, "byte count fell below a record's size");
        *bytes = *bytes - old_len + value.len() as u64;
    }
    entry.stamp = stamp;
    entry.expires = expires;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Stamp {
        Stamp { secs, micros: 0 }
    }

    fn keys(page: &Page) -> Vec<&[u8]> {
        page.items.iter().map(|item| &*item.key).collect()
    }

    #[test]
    fn a_put_is_read_back_with_its_stamp() {
        let mut store = Store::new();
        let stamp = store.put(b"k", b"v", at(100));
        assert_eq!(stamp, at(100));
        assert_eq!(store.get(b"k"), Some(&Entry { value: (*b"v").into(), stamp, expires: None }));
        assert_eq!((store.len(), store.bytes()), (1, 2));
    }

    #[test]
    fn stamps_increase_even_when_the_clock_steps_back() {
        let mut store = Store::new();
        let first = store.put(b"a", b"1", at(100));
        let second = store.put(b"b", b"2", at(50));
        let third = store.put(b"a", b"3", at(100));
        assert!(first < second && second < third, "{first:?} {second:?} {third:?}");
    }

    #[test]
    fn overwrite_and_delete_keep_the_byte_count() {
        let mut store = Store::new();
        store.put(b"key", b"12345", at(1));
        store.put(b"key", b"1", at(2));
        assert_eq!(store.bytes(), 4);
        // Same size: the value is written over in place.
        store.put_with_expiry(b"key", b"2", at(3), NonZeroU64::new(9));
        let entry = store.get(b"key").expect("stored");
        assert_eq!((&*entry.value, entry.stamp, entry.expires), (&b"2"[..], at(3), NonZeroU64::new(9)));
        store.put(b"key", b"3", at(4));
        assert_eq!(store.get(b"key").expect("stored").expires, None, "an overwrite sets the deadline too");
        assert_eq!(store.bytes(), 4);
        assert!(store.delete(b"key"));
        assert!(!store.delete(b"key"));
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }

    #[test]
    fn compare_and_set_applies_only_on_the_expected_stamp() {
        let mut store = Store::new();
        assert_eq!(store.compare_and_set(b"k", None, Some(b"1"), at(1)), CasResult::Swapped(Some(at(1))));
        let conflict = store.compare_and_set(b"k", None, Some(b"2"), at(2));
        assert_eq!(conflict, CasResult::Conflict(Some(Entry { value: (*b"1").into(), stamp: at(1), expires: None })));
        assert_eq!(store.compare_and_set(b"k", Some(at(1)), Some(b"2"), at(2)), CasResult::Swapped(Some(at(2))));
        assert!(matches!(store.compare_and_set(b"k", Some(at(1)), None, at(3)), CasResult::Conflict(_)));
        assert_eq!(store.compare_and_set(b"k", Some(at(2)), None, at(3)), CasResult::Swapped(None));
        assert_eq!(store.get(b"k"), None);
    }

    #[test]
    fn scan_pages_through_a_prefix_in_key_order() {
        let mut store = Store::new();
        for key in ["a", "b1", "b2", "b3", "b4", "c"] {
            store.put(key.as_bytes(), b"v", at(1));
        }
        let first = store.scan(b"b", None, 3);
        assert_eq!(keys(&first), [b"b1", b"b2", b"b3"]);
        let second = store.scan(b"b", first.next.as_deref(), 3);
        assert_eq!(keys(&second), [b"b4"]);
        assert_eq!(second.next, None);
        let exact = store.scan(b"b", None, 4);
        assert_eq!((exact.items.len(), exact.next), (4, None));
        assert_eq!(store.scan(b"", None, 100).items.len(), 6);
        assert!(store.scan(b"zz", None, 10).items.is_empty());
    }

    #[test]
    fn a_scan_page_stops_at_its_byte_budget() {
        let mut store = Store::new();
        let value = vec![0u8; 200 * 1024];
        for key in ["a", "b", "c", "d"] {
            store.put(key.as_bytes(), &value, at(1));
        }
        let page = store.scan(b"", None, 100);
        assert_eq!(keys(&page), [b"a", b"b", b"c"]);
        assert_eq!(page.next.as_deref(), Some(&b"c"[..]));
    }

    #[test]
    fn eviction_at_the_limit_takes_the_oldest_first() {
        let mut store = Store::new();
        for n in 0..200u64 {
            // Written out of key order, so age and key order differ.
            let key = format!("k{:03}", (n * 37) % 200);
            store.put(key.as_bytes(), b"v", at(1000 + n));
        }
        let evicted = store.evict_over(128);
        assert_eq!(evicted, 200 - 128 + 2);
        assert_eq!(store.len(), 126);
        let oldest_kept = store.records.unordered().map(|(_, entry)| entry.stamp).min().unwrap();
        assert_eq!(oldest_kept, at(1000 + evicted), "everything older than the survivors went");
        assert_eq!(store.evict_over(128), 0);
        assert_eq!(store.evicted_total(), evicted);
        assert_eq!(store.bytes(), 126 * 5);
    }

    #[test]
    fn sweeping_in_steps_drops_expired_and_aged_records() {
        let mut store = Store::new();
        let total = SWEEP_STEP_RECORDS * 2 + 10;
        // Stamps only increase, so the old records are written first.
        for old in [true, false] {
            for n in (0..total).filter(|n| (n % 5 == 0) == old) {
                let key = format!("k{n:06}");
                let expires = if n % 3 == 0 { NonZeroU64::new(500) } else { None };
                store.put_with_expiry(key.as_bytes(), b"v", at(if old { 10 } else { 100 }), expires);
            }
        }
        let mut cursor = None;
        let mut steps = 0;
        loop {
            cursor = store.sweep(cursor.as_deref(), 600, at(50));
            steps += 1;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(steps, 3);
        // Deadlines (500) have passed (600); of the rest, the old ones (10 < 50) aged out.
        let doomed = (0..total).filter(|n| n % 3 == 0 || n % 5 == 0).count() as u64;
        assert_eq!(store.expired_total(), doomed);
        assert_eq!(store.len(), total as u64 - doomed);
        assert!(store.records.unordered().all(|(_, entry)| entry.expires.is_none() && entry.stamp >= at(50)));
        // A record with a deadline still ahead outlives the age rule.
        store.put_with_expiry(b"far", b"v", at(100), NonZeroU64::new(10_000));
        let mut cursor = store.sweep(None, 600, at(1_000_000));
        while cursor.is_some() {
            cursor = store.sweep(cursor.as_deref(), 600, at(1_000_000));
        }
        assert_eq!(store.len(), 1);
        assert!(store.get(b"far").is_some());
    }

    #[test]
    fn loading_records_out_of_order_sorts_them_and_keeps_the_last_of_a_key() {
        let record = |key: &[u8], value: &[u8], secs| {
            (Arc::from(key), Entry { value: value.into(), stamp: at(secs), expires: None })
        };
        let store = Store::load([record(b"b", b"1", 1), record(b"a", b"2", 2), record(b"b", b"33", 3)]);
        let held: Vec<(&[u8], &[u8])> = store.iter().map(|(key, entry)| (key, &*entry.value)).collect();
        assert_eq!(held, [(&b"a"[..], &b"2"[..]), (&b"b"[..], &b"33"[..])]);
        assert_eq!((store.len(), store.bytes()), (2, 2 + 3));
        assert_eq!(store.get(b"b").map(|entry| entry.stamp), Some(at(3)));
    }

    #[test]
    fn tidy_drops_only_records_older_than_the_cutoff() {
        let mut store = Store::new();
        store.put(b"old", b"1", at(10));
        store.put(b"new", b"2", at(20));
        assert_eq!(store.tidy(at(15)), 1);
        assert_eq!(store.get(b"old"), None);
        assert!(store.get(b"new").is_some());
        assert_eq!(store.bytes(), 4);
    }

    mod model {
        //! The store against a plain `BTreeMap<Vec<u8>, Entry>` over random operations: every
        //! record, every page and the byte count must agree after each step.
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;

        #[derive(Clone, Debug)]
        enum Op {
            Put {
                key: Vec<u8>,
                value: Vec<u8>,
                now: u64,
                expires: Option<u64>,
            },
            Delete {
                key: Vec<u8>,
            },
            /// A read-modify-write that fails, writes nothing, or writes `value`.
            Rmw {
                key: Vec<u8>,
                fail: bool,
                value: Option<Vec<u8>>,
                now: u64,
                expires: Option<u64>,
            },
            Cas {
                key: Vec<u8>,
                expect_current: bool,
                value: Option<Vec<u8>>,
                now: u64,
            },
            Scan {
                prefix: Vec<u8>,
                after: Option<Vec<u8>>,
                limit: u32,
            },
            Sweep {
                after: Option<Vec<u8>>,
                now_secs: u64,
                cutoff: u64,
            },
            Tidy {
                cutoff: u64,
            },
            Evict {
                max: u64,
            },
            /// The store replaced by what its snapshot would load, as at a restart.
            Reload,
        }

        /// Short keys over a few bytes (both ends of the byte range, and ones that share long
        /// prefixes), so that keys cross the eight-byte words `compare` reads.
        fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), Just(0x7f), Just(0x80), Just(0xff)],
                0..max,
            )
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (bytes(20), bytes(6), 0..50u64, proptest::option::of(1..60u64))
                    .prop_map(|(key, value, now, expires)| Op::Put { key, value, now, expires }),
                1 => bytes(20).prop_map(|key| Op::Delete { key }),
                3 => (bytes(20), any::<bool>(), proptest::option::of(bytes(6)), 0..50u64, proptest::option::of(1..60u64))
                    .prop_map(|(key, fail, value, now, expires)| Op::Rmw { key, fail, value, now, expires }),
                1 => (bytes(20), any::<bool>(), proptest::option::of(bytes(6)), 0..50u64)
                    .prop_map(|(key, expect_current, value, now)| Op::Cas { key, expect_current, value, now }),
                2 => (bytes(10), proptest::option::of(bytes(20)), 1..6u32)
                    .prop_map(|(prefix, after, limit)| Op::Scan { prefix, after, limit }),
                1 => (proptest::option::of(bytes(20)), 0..60u64, 0..60u64)
                    .prop_map(|(after, now_secs, cutoff)| Op::Sweep { after, now_secs, cutoff }),
                1 => (0..60u64).prop_map(|cutoff| Op::Tidy { cutoff }),
                1 => (0..12u64).prop_map(|max| Op::Evict { max }),
                1 => Just(Op::Reload),
            ]
        }

        /// What `store`'s snapshot would load: its records, copied.
        fn reloaded(store: &Store) -> Store {
            Store::load(store.iter().map(|(key, entry)| (Arc::from(key), entry.clone())))
        }

        fn model_page(model: &BTreeMap<Vec<u8>, Entry>, prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Page {
            let mut matching =
                model.iter().filter(|(key, _)| key.starts_with(prefix) && after.is_none_or(|after| &key[..] > after));
            let mut items = Vec::new();
            let mut page_bytes = 0;
            for (key, entry) in matching.by_ref() {
                page_bytes += key.len() + entry.value.len();
                items.push(ScanItem { key: key.clone().into(), entry: entry.clone() });
                if items.len() >= limit as usize || page_bytes >= SCAN_PAGE_BYTES_MAX {
                    break;
                }
            }
            let next = if matching.next().is_some() { items.last().map(|item| item.key.clone()) } else { None };
            Page { items, next }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
            #[test]
            fn the_store_behaves_as_an_ordered_map_and_counts_its_bytes(ops in proptest::collection::vec(op(), 1..80)) {
                let mut store = Store::new();
                let mut model: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
                let mut last_stamp = Stamp::default();
                for op in ops {
                    match op {
                        Op::Put { key, value, now, expires } => {
                            let expires = expires.and_then(NonZeroU64::new);
                            let stamp = store.put_with_expiry(&key, &value, at(now), expires);
                            prop_assert!(stamp > last_stamp);
                            last_stamp = stamp;
                            model.insert(key, Entry { value: value.into(), stamp, expires });
                        }
                        Op::Delete { key } => {
                            prop_assert_eq!(store.delete(&key), model.remove(&key).is_some());
                        }
                        Op::Rmw { key, fail, value, now, expires } => {
                            let expires = expires.and_then(NonZeroU64::new);
                            let current = model.get(&key).map(|entry| entry.value.to_vec());
                            let write = value.clone().map(|value| Write { value, expires });
                            let result = store.read_modify_write(&key, at(now), |seen| {
                                let seen = seen.map(<[u8]>::to_vec);
                                if fail { Err(seen) } else { Ok((seen, write)) }
                            });
                            match (fail, value, result) {
                                (true, _, Err(seen)) => prop_assert_eq!(seen, current),
                                (false, None, Ok((seen, None))) => prop_assert_eq!(seen, current),
                                (false, Some(value), Ok((seen, Some(stamp)))) => {
                                    prop_assert_eq!(seen, current);
                                    prop_assert!(stamp > last_stamp);
                                    last_stamp = stamp;
                                    model.insert(key, Entry { value: value.into(), stamp, expires });
                                }
                                (fail, value, result) => prop_assert!(false, "{fail} {value:?} gave {result:?}"),
                            }
                        }
                        Op::Cas { key, expect_current, value, now } => {
                            let current = model.get(&key).map(|entry| entry.stamp);
                            let expected = if expect_current { current } else { Some(last_stamp.next()) };
                            let result = store.compare_and_set(&key, expected, value.as_deref(), at(now));
                            if expected == current {
                                match (value, result) {
                                    (Some(value), CasResult::Swapped(Some(stamp))) => {
                                        prop_assert!(stamp > last_stamp);
                                        last_stamp = stamp;
                                        model.insert(key, Entry { value: value.into(), stamp, expires: None });
                                    }
                                    (None, CasResult::Swapped(None)) => {
                                        model.remove(&key);
                                    }
                                    (value, result) => prop_assert!(false, "{value:?} gave {result:?}"),
                                }
                            } else {
                                prop_assert_eq!(result, CasResult::Conflict(model.get(&key).cloned()));
                            }
                        }
                        Op::Scan { prefix, after, limit } => {
                            let page = store.scan(&prefix, after.as_deref(), limit);
                            prop_assert_eq!(page, model_page(&model, &prefix, after.as_deref(), limit));
                        }
                        Op::Sweep { after, now_secs, cutoff } => {
                            // Fewer records than a step holds, so a step reaches the end.
                            let next = store.sweep(after.as_deref(), now_secs, at(cutoff));
                            prop_assert_eq!(next, None);
                            model.retain(|key, entry| {
                                let looked_at = after.as_deref().is_none_or(|after| &key[..] > after);
                                let expired = match entry.expires {
                                    Some(deadline) => deadline.get() <= now_secs,
                                    None => entry.stamp < at(cutoff),
                                };
                                !(looked_at && expired)
                            });
                        }
                        Op::Tidy { cutoff } => {
                            let before = model.len();
                            model.retain(|_, entry| entry.stamp >= at(cutoff));
                            prop_assert_eq!(store.tidy(at(cutoff)), (before - model.len()) as u64);
                        }
                        Op::Reload => {
                            store = reloaded(&store);
                            // A restart's stamps follow the latest record kept.
                            last_stamp = model.values().map(|entry| entry.stamp).max().unwrap_or_default();
                        }
                        Op::Evict { max } => {
                            let len = model.len() as u64;
                            let evicted = store.evict_over(max);
                            if len <= max {
                                prop_assert_eq!(evicted, 0);
                            } else {
                                let batch = ((len - max) + max / 64).min(len) as usize;
                                let mut stamps: Vec<Stamp> = model.values().map(|entry| entry.stamp).collect();
                                stamps.sort();
                                let cutoff = stamps[batch - 1];
                                model.retain(|_, entry| entry.stamp > cutoff);
                                prop_assert_eq!(evicted, batch as u64);
                            }
                        }
                    }
                    store.records.check_indexes();
                    let bytes: u64 = model.iter().map(|(key, entry)| (key.len() + entry.value.len()) as u64).sum();
                    prop_assert_eq!(store.bytes(), bytes);
                    prop_assert_eq!(store.len(), model.len() as u64);
                    let held: Vec<(Vec<u8>, Entry)> = store.iter().map(|(key, entry)| (key.to_vec(), entry.clone())).collect();
                    let expected: Vec<(Vec<u8>, Entry)> = model.iter().map(|(key, entry)| (key.clone(), entry.clone())).collect();
                    prop_assert_eq!(held, expected);
                    for key in model.keys() {
                        prop_assert_eq!(store.get(key), model.get(key));
                    }
                    // What a snapshot reads back is the same store.
                    let loaded = reloaded(&store);
                    loaded.records.check_indexes();
                    prop_assert_eq!(loaded.bytes(), store.bytes());
                }
            }
        }
    }
}
