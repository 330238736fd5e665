//! The memory a client and hintsd share for one connection: a sealed memfd holding a header,
//! the request ring, the reply ring, and each end's doorbell word.
//!
//! The daemon makes it ([`SharedRings::create`]) and hands the descriptor over the connection's
//! socket; the client maps it ([`SharedRings::open`]) after checking the header. The daemon
//! seals the file's size, so a client can neither shrink it under the daemon's mapping (which
//! would fault the daemon) nor grow it. Everything else in it the client may write at will:
//! the daemon reads only positions, which the ring checks, and bytes, which the frame decoder
//! checks; it never reads the header back.
//!
//! # Layout
//! Each field sits on a line of its own ([`LINE_BYTES`]), so the two ends do not share a cache
//! line they both write:
//! line 0 header (magic, version, both capacities, the spin hint); lines 1-2 the request ring's
//! head and tail; 3-4 the reply ring's; 5 the daemon's doorbell word; 6 the client's; 7 the
//! client's CPU; from [`DATA_OFFSET`], the request ring's data, then the reply ring's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use super::{AtomicU32, AtomicU64, Consumer, Producer, Region};

/// The first bytes of every shared mapping.
pub const SHM_MAGIC: [u8; 8] = *b"HNTSRING";
/// The layout this crate reads and writes.
pub const SHM_VERSION: u32 = 1;
/// The smallest ring, each way: one page.
pub const SHM_RING_BYTES_MIN: usize = 4096;
/// The largest ring, each way.
pub const SHM_RING_BYTES_MAX: usize = 16 << 20;
/// Every field's own cache line (two 64-byte lines: the adjacent-line prefetcher pairs them).
pub const LINE_BYTES: usize = 128;
/// Where the request ring's data starts.
pub const DATA_OFFSET: usize = 8 * LINE_BYTES;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const REQUEST_BYTES_AT: usize = 12;
const REPLY_BYTES_AT: usize = 16;
const SPIN_MICROS_AT: usize = 20;
const REQUEST_HEAD_AT: usize = LINE_BYTES;
const REQUEST_TAIL_AT: usize = 2 * LINE_BYTES;
const REPLY_HEAD_AT: usize = 3 * LINE_BYTES;
const REPLY_TAIL_AT: usize = 4 * LINE_BYTES;
const DAEMON_DOORBELL_AT: usize = 5 * LINE_BYTES;
const CLIENT_DOORBELL_AT: usize = 6 * LINE_BYTES;
const CLIENT_CPU_AT: usize = 7 * LINE_BYTES;

/// One `mmap` of the shared file, unmapped when the last ring end using it is dropped.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; what is read and written in it goes through
// atomics (positions, doorbells, the spin hint) or through the ring's protocol (data bytes).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned and nothing borrows from the
        // mapping any more (every borrower holds the `Arc` this lives in).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

impl Mapping {
    fn map(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of a file we hold; the kernel picks the address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Mapping { base, len })
    }

    /// The atomic at byte `at` (8-aligned for `u64`s: every offset above is).
    fn atomic<T>(&self, at: usize) -> &T {
        assert!(at + std::mem::size_of::<T>() <= DATA_OFFSET && at.is_multiple_of(std::mem::align_of::<T>()));
        // SAFETY: in bounds and aligned (checked), the mapping is page-aligned and lives as
        // long as `self`; atomics may be shared with another process.
        unsafe { &*self.base.as_ptr().add(at).cast::<T>() }
    }

    fn read_bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        assert!(at + N <= DATA_OFFSET);
        let mut out = [0u8; N];
        // SAFETY: in bounds (checked); header bytes are only written before the file is shared.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr().add(at), out.as_mut_ptr(), N) };
        out
    }

    fn write_bytes(&self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= DATA_OFFSET);
        // SAFETY: in bounds (checked); called only before the file is shared.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(at), bytes.len()) };
    }
}

/// One ring in the shared mapping.
#[derive(Debug)]
pub struct ShmRegion {
    mapping: Arc<Mapping>,
    head_at: usize,
    tail_at: usize,
    data_at: usize,
    /// Our own copy: the header in shared memory is never read back.
    capacity: usize,
}

impl Region for ShmRegion {
    fn head(&self) -> &AtomicU64 {
        self.mapping.atomic(self.head_at)
    }

    fn tail(&self) -> &AtomicU64 {
        self.mapping.atomic(self.tail_at)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        assert!(at + dst.len() <= self.capacity);
        // SAFETY: within this ring's data (checked); the ring's positions give these bytes to
        // the reader. The other process may write them anyway if hostile: they are only copied
        // out, as bytes, and checked by the frame decoder.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.mapping.base.as_ptr().add(self.data_at + at),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }

    unsafe fn write(&self, at: usize, src: &[u8]) {
        assert!(at + src.len() <= self.capacity);
        // SAFETY: within this ring's data (checked); the ring's positions give these bytes to
        // the writer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.mapping.base.as_ptr().add(self.data_at + at), src.len());
        }
    }
}

/// Both rings of one connection as one process maps them. Each mapping hands out one pair of
/// ring ends ([`SharedRings::into_daemon_ends`] or [`SharedRings::into_client_ends`]), so in
/// one process each ring has one writer and one reader. The other process may write the memory
/// at any time: the ring only ever copies bytes in and out of it (never lends a reference) and
/// checks what it reads.
#[derive(Debug)]
pub struct SharedRings {
    mapping: Arc<Mapping>,
    ring_bytes: usize,
}

/// The words of the header both ends use while the rings run: doorbells, the spin hint and the
/// client's CPU.
#[derive(Debug, Clone)]
pub struct SharedWords {
    mapping: Arc<Mapping>,
}

/// The daemon's ends: it reads requests and writes replies.
pub type DaemonEnds = (Consumer<ShmRegion>, Producer<ShmRegion>);
/// The client's ends: it writes requests and reads replies.
pub type ClientEnds = (Producer<ShmRegion>, Consumer<ShmRegion>);

impl SharedRings {
    /// The daemon's side: a new sealed memfd holding two empty rings of `ring_bytes` each, and
    /// the descriptor to hand the client.
    ///
    /// # Errors
    /// `InvalidInput` for a size that is not a power of two within
    /// [`SHM_RING_BYTES_MIN`]`..=`[`SHM_RING_BYTES_MAX`]; the system's error otherwise.
    pub fn create(ring_bytes: usize) -> io::Result<(OwnedFd, SharedRings)> {
        check_ring_bytes(ring_bytes).map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        let len = DATA_OFFSET + 2 * ring_bytes;
        // SAFETY: a NUL-terminated name and flags; the result is checked.
        let raw = unsafe { libc::memfd_create(c"hintsd-ring".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a descriptor of ours.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size = libc::off_t::try_from(len).map_err(io::Error::other)?;
        // SAFETY: plain calls on our descriptor; results checked.
        unsafe {
            if libc::ftruncate(fd.as_raw_fd(), size) != 0 {
                return Err(io::Error::last_os_error());
            }
            let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
            if libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mapping = Mapping::map(&fd, len)?;
        let ring_bytes_u32 = u32::try_from(ring_bytes).expect("checked against SHM_RING_BYTES_MAX");
        mapping.write_bytes(MAGIC_AT, &SHM_MAGIC);
        mapping.write_bytes(VERSION_AT, &SHM_VERSION.to_le_bytes());
        mapping.write_bytes(REQUEST_BYTES_AT, &ring_bytes_u32.to_le_bytes());
        mapping.write_bytes(REPLY_BYTES_AT, &ring_bytes_u32.to_le_bytes());
        Ok((fd, SharedRings { mapping: Arc::new(mapping), ring_bytes }))
    }

    /// The client's side: maps the file the daemon handed over, once its size and header say
    /// it is a mapping of this layout.
    ///
    /// # Errors
    /// `InvalidData` naming what is wrong with the file; the system's error otherwise.
    pub fn open(fd: &OwnedFd) -> io::Result<SharedRings> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
        // SAFETY: fstat on our descriptor into a zeroed struct; result checked.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let len = usize::try_from(stat.st_size).map_err(|_| invalid("negative size".into()))?;
        if !(DATA_OFFSET + 2 * SHM_RING_BYTES_MIN..=DATA_OFFSET + 2 * SHM_RING_BYTES_MAX).contains(&len) {
            return Err(invalid(format!("a shared ring file of {len} bytes is not of this layout")));
        }
        let mapping = Mapping::map(fd, len)?;
        if mapping.read_bytes::<8>(MAGIC_AT) != SHM_MAGIC {
            return Err(invalid("the shared ring file does not start with its magic".into()));
        }
        let version = u32::from_le_bytes(mapping.read_bytes(VERSION_AT));
        if version != SHM_VERSION {
            return Err(invalid(format!("shared ring layout {version}, this client reads {SHM_VERSION}")));
        }
        let request_bytes = u32::from_le_bytes(mapping.read_bytes(REQUEST_BYTES_AT)) as usize;
        let reply_bytes = u32::from_le_bytes(mapping.read_bytes(REPLY_BYTES_AT)) as usize;
        check_ring_bytes(request_bytes).map_err(invalid)?;
        if reply_bytes != request_bytes || DATA_OFFSET + 2 * request_bytes != len {
            return Err(invalid(format!(
                "rings of {request_bytes} and {reply_bytes} bytes do not fill a file of {len}"
            )));
        }
        Ok(SharedRings { mapping: Arc::new(mapping), ring_bytes: request_bytes })
    }

    /// Bytes each ring holds.
    pub fn ring_bytes(&self) -> usize {
        self.ring_bytes
    }

    /// Bytes of the whole file.
    pub fn file_bytes(&self) -> usize {
        DATA_OFFSET + 2 * self.ring_bytes
    }

    /// The doorbell words and the spin hint, for as long as the rings run.
    pub fn words(&self) -> SharedWords {
        SharedWords { mapping: Arc::clone(&self.mapping) }
    }

    /// The daemon's ends of the two rings.
    pub fn into_daemon_ends(self) -> DaemonEnds {
        let (requests, replies) = self.regions();
        // SAFETY: this mapping hands out its ends once (it is consumed here).
        unsafe { (Consumer::new(requests), Producer::new(replies)) }
    }

    /// The client's ends of the two rings.
    pub fn into_client_ends(self) -> ClientEnds {
        let (requests, replies) = self.regions();
        // SAFETY: this mapping hands out its ends once (it is consumed here).
        unsafe { (Producer::new(requests), Consumer::new(replies)) }
    }

    /// The request ring, then the reply ring.
    fn regions(&self) -> (ShmRegion, ShmRegion) {
        let region = |head_at, tail_at, data_at| ShmRegion {
            mapping: Arc::clone(&self.mapping),
            head_at,
            tail_at,
            data_at,
            capacity: self.ring_bytes,
        };
        (
            region(REQUEST_HEAD_AT, REQUEST_TAIL_AT, DATA_OFFSET),
            region(REPLY_HEAD_AT, REPLY_TAIL_AT, DATA_OFFSET + self.ring_bytes),
        )
    }
}

impl SharedWords {
    /// The word the daemon announces its sleep in.
    pub fn daemon_doorbell(&self) -> &AtomicU32 {
        self.mapping.atomic(DAEMON_DOORBELL_AT)
    }

    /// The word the client announces its sleep in.
    pub fn client_doorbell(&self) -> &AtomicU32 {
        self.mapping.atomic(CLIENT_DOORBELL_AT)
    }

    /// How long the daemon suggests the client spin for a reply before it sleeps, in
    /// microseconds: zero while the host has no core to spare. Only a hint.
    pub fn client_spin_micros(&self) -> &AtomicU32 {
        self.mapping.atomic(SPIN_MICROS_AT)
    }

    /// The CPU the client last wrote a request from, plus one (zero: not said). Only a hint.
    pub fn client_cpu(&self) -> &AtomicU32 {
        self.mapping.atomic(CLIENT_CPU_AT)
    }
}

/// Gives the pages of a ring file back to the system (a hole punched over all of it), so memory
/// the daemon touched is not kept by a client that holds on to the file after its connection
/// ended. The size stays; pages touched again later read as zeros.
///
/// # Errors
/// The system's, from `fallocate`.
pub fn release_pages(fd: &OwnedFd, file_bytes: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(file_bytes).map_err(io::Error::other)?;
    // SAFETY: a plain call on our descriptor; no memory is passed.
    let done =
        unsafe { libc::fallocate(fd.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 0, len) };
    if done == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn check_ring_bytes(bytes: usize) -> Result<(), String> {
    if bytes.is_power_of_two() && (SHM_RING_BYTES_MIN..=SHM_RING_BYTES_MAX).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "a ring of {bytes} bytes: it must be a power of two from {SHM_RING_BYTES_MIN} to {SHM_RING_BYTES_MAX}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::ring::Ordering;

    #[test]
    fn what_the_daemon_writes_the_client_reads_through_its_own_mapping() {
        let (fd, daemon) = SharedRings::create(4096).unwrap();
        let client = SharedRings::open(&fd).unwrap();
        assert_eq!(client.ring_bytes(), 4096);
        let (daemon_words, client_words) = (daemon.words(), client.words());
        let (mut requests, _) = client.into_client_ends();
        let (mut served, _) = daemon.into_daemon_ends();
        let sent: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut received = Vec::new();
        let mut buf = [0u8; 1000];
        let mut at = 0;
        while received.len() < sent.len() {
            at += requests.write(&sent[at..]).unwrap();
            let n = served.read(&mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
        }
        assert_eq!(received, sent, "bytes cross the two mappings in order, through the wrap");
        use crate::ring::doorbell::{WANTS_DATA, announce_sleep, take_sleeper};
        announce_sleep(client_words.client_doorbell(), WANTS_DATA);
        assert!(take_sleeper(daemon_words.client_doorbell(), WANTS_DATA), "both map the same doorbell");
        daemon_words.client_spin_micros().store(30, Ordering::Relaxed);
        assert_eq!(client_words.client_spin_micros().load(Ordering::Relaxed), 30);
    }

    #[test]
    fn released_pages_leave_the_file_holding_no_memory() {
        let (fd, daemon) = SharedRings::create(65_536).unwrap();
        let (_, mut replies) = daemon.into_daemon_ends();
        assert_eq!(replies.write(&[7; 60_000]).unwrap(), 60_000);
        let blocks = |fd: &OwnedFd| {
            // SAFETY: fstat on our descriptor into a zeroed struct.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) }, 0);
            stat.st_blocks
        };
        assert!(blocks(&fd) > 0, "written pages hold memory");
        release_pages(&fd, DATA_OFFSET + 2 * 65_536).unwrap();
        assert_eq!(blocks(&fd), 0, "a punched file holds none");
    }

    #[test]
    fn the_client_cannot_resize_the_file_under_the_daemon() {
        let (fd, _daemon) = SharedRings::create(4096).unwrap();
        // SAFETY: plain calls on our descriptor.
        assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 0) }, 0, "shrinking is sealed");
        assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 1 << 30) }, 0, "growing is sealed");
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        for bytes in [0, 4095, 6000, SHM_RING_BYTES_MAX * 2] {
            assert_eq!(SharedRings::create(bytes).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bytes}");
        }
    }

    /// Bytes to write at an offset of the header.
    type Patch = (usize, Vec<u8>);

    /// A file that is not a ring mapping: wrong size, magic, version or capacities.
    #[test]
    fn a_file_of_another_layout_is_refused_before_use() {
        let file_with = |len: usize, header: &[Patch]| -> OwnedFd {
            let mut file = tempfile_in_memory();
            file.set_len(len as u64).unwrap();
            for (at, bytes) in header {
                use std::io::{Seek, SeekFrom};
                file.seek(SeekFrom::Start(*at as u64)).unwrap();
                file.write_all(bytes).unwrap();
            }
            OwnedFd::from(file)
        };
        let len = DATA_OFFSET + 2 * 4096;
        let good: [Patch; 4] = [
            (MAGIC_AT, SHM_MAGIC.to_vec()),
            (VERSION_AT, SHM_VERSION.to_le_bytes().to_vec()),
            (REQUEST_BYTES_AT, 4096u32.to_le_bytes().to_vec()),
            (REPLY_BYTES_AT, 4096u32.to_le_bytes().to_vec()),
        ];
        assert!(SharedRings::open(&file_with(len, &good)).is_ok(), "the well-formed file opens");
        let cases: [(&str, usize, Patch); 5] = [
            ("too small", 100, (MAGIC_AT, SHM_MAGIC.to_vec())),
            ("magic", len, (MAGIC_AT, b"NOTARING".to_vec())),
            ("version", len, (VERSION_AT, 2u32.to_le_bytes().to_vec())),
            ("capacity", len, (REQUEST_BYTES_AT, 8192u32.to_le_bytes().to_vec())),
            ("capacity", len, (REPLY_BYTES_AT, u32::MAX.to_le_bytes().to_vec())),
        ];
        for (what, len, patch) in cases {
            let mut header = good.to_vec();
            header.push(patch);
            let err = SharedRings::open(&file_with(len, &header)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}: {err}");
        }
    }

    fn tempfile_in_memory() -> std::fs::File {
        // SAFETY: a NUL-terminated name and flags; the result is checked.
        let raw = unsafe { libc::memfd_create(c"hints-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: a descriptor of ours.
        std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) })
    }
}
