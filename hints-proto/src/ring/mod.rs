//! The shared-memory ring: a one-way byte pipe between one writer and one reader through a
//! region of memory, with no lock and no system call, and the doorbell protocol by which an
//! end that ran out of work sleeps without missing the other's next write.
//!
//! This is the algorithm alone, over memory it is handed ([`Region`]): on the heap
//! ([`HeapRegion`]) for unit, property and loom tests, and over the mapping a client and
//! hintsd share ([`shm`]). Frames cross it exactly as they cross the socket (a length prefix
//! and a body, `frame.rs`), so a frame may be larger than the ring and pass in pieces, and the
//! reader checks lengths with the socket's code.
//!
//! # Layout
//! A region has two positions, `head` and `tail`, and `capacity` bytes of data (a power of
//! two). Positions count bytes since the ring was made and are taken modulo `capacity` to
//! address the data.
//!
//! # Invariants
//! - `tail - head <= capacity`; only the writer stores `tail`, only the reader `head`.
//! - The writer copies bytes in, then publishes them with a Release store of `tail`; the
//!   reader loads `tail` with Acquire before it copies them out, and gives their space back
//!   with a Release store of `head`; the writer loads `head` with Acquire before it writes
//!   over that space.
//! - The other end may be another process, and hostile: each end checks the position the
//!   other stores before it copies a byte, and a ring found corrupt is not used again. Bytes
//!   read are only ever copied out; what they mean is checked by the frame decoder.

mod sync;

use sync::{Arc, UnsafeCell};
pub use sync::{AtomicU32, AtomicU64, Ordering};

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

/// A region behind a shared pointer or a borrow is the same region.
macro_rules! region_through {
    ($($pointer:ty),*) => {$(
        impl<T: Region + ?Sized> Region for $pointer {
            fn head(&self) -> &AtomicU64 {
                (**self).head()
            }

            fn tail(&self) -> &AtomicU64 {
                (**self).tail()
            }

            fn capacity(&self) -> usize {
                (**self).capacity()
            }

            unsafe fn read(&self, at: usize, dst: &mut [u8]) {
                // SAFETY: the caller's promise, passed on.
                unsafe { (**self).read(at, dst) }
            }

            unsafe fn write(&self, at: usize, src: &[u8]) {
                // SAFETY: the caller's promise, passed on.
                unsafe { (**self).write(at, src) }
            }
        }
    )*};
}

region_through!(&T, sync::Arc<T>);

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

/// The other end's position makes no sense: the ring must not be used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the shared ring is corrupt: {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

/// The writing end of a ring.
#[derive(Debug)]
pub struct Producer<R> {
    region: R,
    /// Our own `tail`: the region's copy is only published, never read back.
    tail: u64,
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct Consumer<R> {
    region: R,
    /// Our own `head`.
    head: u64,
}

/// A new ring on the heap of `capacity` bytes, and its only two ends.
///
/// # Panics
/// As [`HeapRegion::new`].
pub fn heap_ring(capacity: usize) -> (Producer<Arc<HeapRegion>>, Consumer<Arc<HeapRegion>>) {
    let region = Arc::new(HeapRegion::new(capacity));
    // SAFETY: the region is new and these are its only ends.
    unsafe { (Producer::new(Arc::clone(&region)), Consumer::new(region)) }
}

impl<R: Region> Producer<R> {
    /// The writing end of a ring nobody has used yet.
    ///
    /// # Safety
    /// No other writing end of this region exists in this process while this one is used: the
    /// ring hands the space past its `tail` to one writer.
    pub unsafe fn new(region: R) -> Producer<R> {
        Producer { tail: region.tail().load(Ordering::Relaxed), region }
    }

    /// The region this end writes.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Bytes that may be written now.
    ///
    /// # Errors
    /// [`Corrupt`] when the reader's position is past what was written.
    pub fn room(&self) -> Result<usize, Corrupt> {
        let capacity = self.region.capacity() as u64;
        let used = self.tail.wrapping_sub(self.region.head().load(Ordering::Acquire));
        if used > capacity {
            return Err(Corrupt("the reader's position is past what was written"));
        }
        Ok((capacity - used) as usize)
    }

    /// Writes as much of the front of `bytes` as there is room for, and publishes it.
    ///
    /// # Returns
    /// How many bytes were written: 0 when the ring is full (or `bytes` empty).
    ///
    /// # Errors
    /// [`Corrupt`], as [`Producer::room`]; nothing is written then.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, Corrupt> {
        let written = self.room()?.min(bytes.len());
        if written == 0 {
            return Ok(0);
        }
        copy_in(&self.region, self.tail, &bytes[..written]);
        self.tail += written as u64;
        self.region.tail().store(self.tail, Ordering::Release);
        Ok(written)
    }
}

impl<R: Region> Consumer<R> {
    /// The reading end of a ring nobody has used yet.
    ///
    /// # Safety
    /// No other reading end of this region exists in this process while this one is used.
    pub unsafe fn new(region: R) -> Consumer<R> {
        Consumer { head: region.head().load(Ordering::Relaxed), region }
    }

    /// The region this end reads.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Bytes published and not read yet.
    ///
    /// # Errors
    /// [`Corrupt`] when the writer's position is more than the ring ahead of the reader's.
    pub fn available(&self) -> Result<usize, Corrupt> {
        let published = self.region.tail().load(Ordering::Acquire).wrapping_sub(self.head);
        if published > self.region.capacity() as u64 {
            return Err(Corrupt("the writer's position is more than the ring ahead"));
        }
        Ok(published as usize)
    }

    /// Copies the next bytes into `out` (as many as are published and fit) and gives their
    /// space back to the writer.
    ///
    /// # Returns
    /// How many bytes were read: 0 when the ring is empty (or `out` is).
    ///
    /// # Errors
    /// [`Corrupt`], as [`Consumer::available`]; nothing is read then.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Corrupt> {
        let read = self.available()?.min(out.len());
        if read == 0 {
            return Ok(0);
        }
        copy_out(&self.region, self.head, &mut out[..read]);
        self.head += read as u64;
        self.region.head().store(self.head, Ordering::Release);
        Ok(read)
    }
}

/// The doorbell protocol, over one word of shared memory per sleeping end: an end that finds
/// nothing to do [announces](doorbell::announce_sleep) what it waits for
/// ([`WANTS_DATA`](doorbell::WANTS_DATA): bytes to read; [`WANTS_ROOM`](doorbell::WANTS_ROOM):
/// room to write), looks at its rings once more, and only then sleeps (until a doorbell byte
/// comes on the socket); the other end, after every position it publishes, asks whether
/// [a sleeper waits for that](doorbell::take_sleeper) and wakes it if so. A `SeqCst` fence
/// sits between each side's store and its load, so at least one of them sees the other's:
/// either the sleeper sees the new position and does not sleep, or the waker sees the
/// announcement and wakes it. Only one waker takes each announcement.
/// Saying what it waits for spares an end a wake-up it would sleep through again: a client
/// waiting for its reply is not woken when the daemon has merely read its request.
pub mod doorbell {
    use super::sync::{AtomicU32, Ordering, fence};

    /// The word's value while its end runs (or has been woken).
    pub const AWAKE: u32 = 0;
    /// In an announcement: the end waits for bytes to read.
    pub const WANTS_DATA: u32 = 1;
    /// In an announcement: the end waits for room to write.
    pub const WANTS_ROOM: u32 = 2;

    /// Says this end is going to sleep until `wants` (one or both of the `WANTS_` bits). Look
    /// at the rings again before sleeping.
    pub fn announce_sleep(word: &AtomicU32, wants: u32) {
        word.store(wants, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Takes the announcement back (the second look found work).
    pub fn cancel_sleep(word: &AtomicU32) {
        word.store(AWAKE, Ordering::Relaxed);
    }

    /// Called after publishing a position that gives the other end `event` (`WANTS_DATA` after
    /// a write, `WANTS_ROOM` after a read): true when the other end announced it waits for that
    /// and this call is the one to wake it. The other end may be hostile and store anything:
    /// at worst that costs a needless wake-up.
    pub fn take_sleeper(word: &AtomicU32, event: u32) -> bool {
        fence(Ordering::SeqCst);
        // Whatever the swap takes, its end was asleep or about to be: wake it.
        word.load(Ordering::Relaxed) & event != 0 && word.swap(AWAKE, Ordering::Relaxed) != AWAKE
    }
}

/// Writes `src` at position `at`, wrapping at the end of the data: only the writer, into
/// space between its `tail` and the reader's `head` (checked by `write`).
fn copy_in(region: &(impl Region + ?Sized), at: u64, src: &[u8]) {
    let (start, first) = split(region.capacity(), at, src.len());
    // SAFETY: the space from `tail` on is free until the producer publishes a new `tail`.
    unsafe {
        region.write(start, &src[..first]);
        region.write(0, &src[first..]);
    }
}

/// Reads `dst.len()` bytes at position `at`, wrapping at the end of the data: only the
/// reader, from what the writer published (checked by `read`).
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

#[cfg(all(unix, not(loom)))]
pub mod shm;

#[cfg(all(test, not(loom)))]
mod tests;
