//! The shared-memory ring: one producer and one consumer pass length-prefixed frames through a
//! region of memory, with no lock and no system call.
//!
//! This is the algorithm alone, over memory it is handed ([`Region`]): on the heap
//! ([`HeapRegion`]) for unit, property and loom tests, and later over a mapping a client and
//! hintsd share (DESIGN.md, data flow). The mapping, the doorbells that wake a sleeping end, and
//! the client's and daemon's ends are not built yet.
//!
//! # Layout
//! A region has two positions, `head` and `tail`, and `capacity` bytes of data (a power of
//! two). Positions count bytes since the ring was made and are taken modulo `capacity` to
//! address the data. A frame is a `u32` little-endian length and that many bytes; it may wrap
//! from the end of the data to its start.
//!
//! # Invariants
//! - `tail - head <= capacity`; only the producer stores `tail`, only the consumer `head`.
//! - The producer writes a frame's bytes, then publishes them with a Release store of `tail`;
//!   the consumer loads `tail` with Acquire before it reads them, and gives their space back
//!   with a Release store of `head` once it has copied them out; the producer loads `head` with
//!   Acquire before it writes over that space.
//! - The other end may be another process, and hostile: each end checks the position the other
//!   stores, and the consumer checks every length (against the data published and
//!   [`FRAME_BYTES_MAX`]) before it allocates or copies; a frame is copied out whole before
//!   anything decodes it. A ring found corrupt is not used again.

mod sync;

use sync::UnsafeCell;
pub use sync::{AtomicU64, Ordering};

use crate::limits::{FRAME_BYTES_MAX, FRAME_PREFIX_BYTES};

/// The smallest data area a ring may have.
pub const RING_CAPACITY_MIN: usize = 16;
/// The largest data area a ring may have.
pub const RING_CAPACITY_MAX: usize = 1 << 30;

/// Memory a ring lives in: two positions and `capacity` bytes of data.
pub trait Region {
    fn head(&self) -> &AtomicU64;
    fn tail(&self) -> &AtomicU64;
    /// Bytes of data: a power of two in `RING_CAPACITY_MIN..=RING_CAPACITY_MAX`.
    fn capacity(&self) -> usize;
    /// Copies `dst.len()` bytes from data offset `at`; `at + dst.len() <= capacity`.
    ///
    /// # Safety
    /// No one writes these bytes meanwhile: the ring's positions give them to the caller.
    unsafe fn read(&self, at: usize, dst: &mut [u8]);
    /// Copies `src` to data offset `at`; `at + src.len() <= capacity`.
    ///
    /// # Safety
    /// No one reads or writes these bytes meanwhile: the ring's positions give them to the
    /// caller.
    unsafe fn write(&self, at: usize, src: &[u8]);
}

/// A region on the heap.
#[derive(Debug)]
pub struct HeapRegion {
    head: AtomicU64,
    tail: AtomicU64,
    data: Box<[UnsafeCell<u8>]>,
}

impl HeapRegion {
    /// An empty region of `capacity` data bytes.
    ///
    /// # Panics
    /// If `capacity` is not a power of two within `RING_CAPACITY_MIN..=RING_CAPACITY_MAX`.
    pub fn new(capacity: usize) -> HeapRegion {
        assert!(
            capacity.is_power_of_two() && (RING_CAPACITY_MIN..=RING_CAPACITY_MAX).contains(&capacity),
            "a ring's capacity is a power of two from {RING_CAPACITY_MIN} to {RING_CAPACITY_MAX}"
        );
        HeapRegion {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            data: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
        }
    }
}

impl Region for HeapRegion {
    fn head(&self) -> &AtomicU64 {
        &self.head
    }

    fn tail(&self) -> &AtomicU64 {
        &self.tail
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }

    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        for (cell, byte) in self.data[at..at + dst.len()].iter().zip(dst) {
            // SAFETY: the caller has these bytes to itself (loom checks the ring gives it them).
            *byte = cell.with(|value| unsafe { *value });
        }
    }

    unsafe fn write(&self, at: usize, src: &[u8]) {
        for (cell, byte) in self.data[at..at + src.len()].iter().zip(src) {
            // SAFETY: as in `read`.
            cell.with_mut(|value| unsafe { *value = *byte });
        }
    }
}

/// Why a frame was not pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// Not enough free space now; the consumer will make some.
    Full,
    /// The frame can never fit this ring (or is over [`FRAME_BYTES_MAX`]).
    TooLarge { bytes: usize },
    /// The consumer's position makes no sense: the ring must not be used again.
    Corrupt(&'static str),
}

/// The consumer found the ring corrupt: it must not be used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

/// The producing end of a ring.
#[derive(Debug)]
pub struct Producer<R> {
    region: R,
    /// Our own `tail`: the region's copy is only published, never read back.
    tail: u64,
}

/// The consuming end of a ring.
#[derive(Debug)]
pub struct Consumer<R> {
    region: R,
    /// Our own `head`.
    head: u64,
}

impl<R: std::ops::Deref<Target = T>, T: Region + ?Sized> Producer<R> {
    /// The producing end of a ring nobody has used yet.
    pub fn new(region: R) -> Producer<R> {
        Producer { tail: region.tail().load(Ordering::Relaxed), region }
    }

    /// Puts `frame` at the end of the ring if it fits now.
    ///
    /// # Errors
    /// [`PushError`]: `Full` leaves the ring as it was; `Corrupt` ends its use.
    pub fn try_push(&mut self, frame: &[u8]) -> Result<(), PushError> {
        let capacity = self.region.capacity();
        let needed = FRAME_PREFIX_BYTES + frame.len();
        if frame.len() > FRAME_BYTES_MAX || needed > capacity {
            return Err(PushError::TooLarge { bytes: frame.len() });
        }
        let head = self.region.head().load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > capacity as u64 {
            return Err(PushError::Corrupt("the consumer's position is past what was produced"));
        }
        if (capacity as u64 - used) < needed as u64 {
            return Err(PushError::Full);
        }
        let prefix = u32::try_from(frame.len()).expect("checked against FRAME_BYTES_MAX").to_le_bytes();
        copy_in(&*self.region, self.tail, &prefix);
        copy_in(&*self.region, self.tail + FRAME_PREFIX_BYTES as u64, frame);
        self.tail += needed as u64;
        self.region.tail().store(self.tail, Ordering::Release);
        Ok(())
    }
}

impl<R: std::ops::Deref<Target = T>, T: Region + ?Sized> Consumer<R> {
    /// The consuming end of a ring nobody has used yet.
    pub fn new(region: R) -> Consumer<R> {
        Consumer { head: region.head().load(Ordering::Relaxed), region }
    }

    /// Takes the first frame into `out` (replacing what it held); `false` when there is none.
    ///
    /// # Errors
    /// [`Corrupt`] when the producer's position or a length makes no sense; nothing larger
    /// than [`FRAME_BYTES_MAX`] is allocated first.
    pub fn try_pop(&mut self, out: &mut Vec<u8>) -> Result<bool, Corrupt> {
        let capacity = self.region.capacity() as u64;
        let tail = self.region.tail().load(Ordering::Acquire);
        let published = tail.wrapping_sub(self.head);
        if published == 0 {
            return Ok(false);
        }
        if published > capacity {
            return Err(Corrupt("the producer's position is more than the ring ahead"));
        }
        if published < FRAME_PREFIX_BYTES as u64 {
            return Err(Corrupt("a frame's length was published in part"));
        }
        let mut prefix = [0u8; FRAME_PREFIX_BYTES];
        copy_out(&*self.region, self.head, &mut prefix);
        let len = u32::from_le_bytes(prefix) as usize;
        if len > FRAME_BYTES_MAX || (FRAME_PREFIX_BYTES + len) as u64 > published {
            return Err(Corrupt("a frame's length runs past what was published"));
        }
        out.clear();
        out.resize(len, 0);
        copy_out(&*self.region, self.head + FRAME_PREFIX_BYTES as u64, out);
        self.head += (FRAME_PREFIX_BYTES + len) as u64;
        self.region.head().store(self.head, Ordering::Release);
        Ok(true)
    }
}

/// Writes `src` at position `at`, wrapping at the end of the data: only the producer, into
/// space between its `tail` and the consumer's `head` (checked by `try_push`).
fn copy_in(region: &(impl Region + ?Sized), at: u64, src: &[u8]) {
    let (start, first) = split(region.capacity(), at, src.len());
    // SAFETY: the space from `tail` on is free until the producer publishes a new `tail`.
    unsafe {
        region.write(start, &src[..first]);
        region.write(0, &src[first..]);
    }
}

/// Reads `dst.len()` bytes at position `at`, wrapping at the end of the data: only the
/// consumer, from what the producer published (checked by `try_pop`).
fn copy_out(region: &(impl Region + ?Sized), at: u64, dst: &mut [u8]) {
    let (start, first) = split(region.capacity(), at, dst.len());
    let (before_end, after_wrap) = dst.split_at_mut(first);
    // SAFETY: published bytes are the consumer's until it moves `head` past them.
    unsafe {
        region.read(start, before_end);
        region.read(0, after_wrap);
    }
}

/// Where position `at` falls in the data, and how many of `len` bytes fit before its end.
fn split(capacity: usize, at: u64, len: usize) -> (usize, usize) {
    let start = (at % capacity as u64) as usize;
    (start, len.min(capacity - start))
}

#[cfg(all(test, not(loom)))]
mod tests;
