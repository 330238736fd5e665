//! The daemon's end of a connection's shared-memory ring (`hints_proto::ring`): requests are
//! read from the request ring and replies written to the reply ring, with no system call while
//! both ends are busy.
//!
//! When the request ring is empty (or the reply ring full) the connection's task announces
//! sleep on its doorbell word, looks once more, and waits on its eventfd, which the client
//! writes only when it finds the announcement. Meanwhile it watches the socket: the client's
//! close (or a byte sent there, which a ring client never does) ends the connection. After
//! each position it publishes it wakes the client (a futex) if the client announced sleep.
//!
//! The client may write anything into the mapping: a position that makes no sense closes the
//! connection (`InvalidData`), and bytes are only copied out, for the frame decoder to check.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hints_proto::ring::shm::{SharedRings, ShmRegion};
use hints_proto::ring::{Consumer, Corrupt, Ordering, Producer, doorbell};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::socket::{self, ConnSocket};

/// The daemon's end of one connection's rings.
#[derive(Debug)]
pub struct RingEnd {
    rings: SharedRings,
    requests: Consumer<ShmRegion>,
    replies: Producer<ShmRegion>,
    /// Written by the client to wake this end; nonblocking, on this thread's reactor.
    bell: AsyncFd<OwnedFd>,
    /// Bytes the client sent on the socket after the ring opened (read only to see them).
    scratch: Vec<u8>,
}

/// What the client is handed: the mapping and the eventfd it rings.
#[derive(Debug)]
pub struct ClientHandles {
    pub memfd: OwnedFd,
    pub bell: OwnedFd,
}

impl RingEnd {
    /// Makes the rings (`ring_bytes` each way) and the doorbell, registered with this thread's
    /// reactor, and the descriptors to pass to the client.
    ///
    /// # Errors
    /// The system's, from memfd, mmap or eventfd.
    pub fn create(ring_bytes: usize) -> io::Result<(RingEnd, ClientHandles)> {
        let (memfd, rings) = SharedRings::create(ring_bytes)?;
        // SAFETY: eventfd takes no pointers; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: eventfd returned a descriptor of ours.
        let bell = unsafe { OwnedFd::from_raw_fd(raw) };
        let client_bell = bell.try_clone()?;
        let end = RingEnd {
            requests: Consumer::new(rings.requests()),
            replies: Producer::new(rings.replies()),
            rings,
            bell: socket::register(bell, Interest::READABLE)?,
            scratch: Vec::new(),
        };
        Ok((end, ClientHandles { memfd, bell: client_bell }))
    }

    /// Tells the client how long to spin for a reply before it sleeps (zero: not at all).
    pub fn suggest_client_spin(&self, spin: Option<Duration>) {
        let micros = spin.map_or(0, |spin| u32::try_from(spin.as_micros()).unwrap_or(u32::MAX));
        let hint = self.rings.client_spin_micros();
        if hint.load(Ordering::Relaxed) != micros {
            hint.store(micros, Ordering::Relaxed);
        }
    }

    /// Appends what the request ring holds (at least one byte) to `buf`, within its spare
    /// capacity (which must not be empty), first spinning up to `spin` and then sleeping until
    /// the client writes; 0 when the client closed the socket.
    ///
    /// # Errors
    /// `InvalidData` when the ring is corrupt; the eventfd's read error.
    pub async fn read_buf(
        &mut self,
        buf: &mut Vec<u8>,
        socket: &ConnSocket,
        spin: Option<Duration>,
    ) -> io::Result<usize> {
        debug_assert!(buf.capacity() > buf.len(), "read_buf needs spare capacity");
        let spin_until = spin.map(|spin| Instant::now() + spin);
        loop {
            let available = self.requests.available().map_err(corrupt)?;
            if available > 0 {
                let at = buf.len();
                let take = available.min(buf.capacity() - at);
                buf.resize(at + take, 0);
                let read = self.requests.read(&mut buf[at..]).map_err(corrupt)?;
                buf.truncate(at + read);
                // The client may be waiting for room to write the rest of a large frame.
                self.rings.wake_client();
                return Ok(read);
            }
            if spin_until.is_some_and(|until| Instant::now() < until) {
                std::hint::spin_loop();
                continue;
            }
            doorbell::announce_sleep(self.rings.daemon_doorbell());
            if self.requests.available().map_err(corrupt)? > 0 {
                doorbell::cancel_sleep(self.rings.daemon_doorbell());
                continue;
            }
            if !self.sleep(socket).await? {
                return Ok(0);
            }
        }
    }

    /// Writes all of `bytes` to the reply ring, waking the client after each part and sleeping
    /// while the ring is full.
    ///
    /// # Errors
    /// `InvalidData` when the ring is corrupt; `BrokenPipe` when the client closed meanwhile.
    pub async fn write_all(&mut self, mut bytes: &[u8], socket: &ConnSocket) -> io::Result<()> {
        while !bytes.is_empty() {
            let written = self.replies.write(bytes).map_err(corrupt)?;
            if written > 0 {
                bytes = &bytes[written..];
                self.rings.wake_client();
                continue;
            }
            doorbell::announce_sleep(self.rings.daemon_doorbell());
            if self.replies.room().map_err(corrupt)? > 0 {
                doorbell::cancel_sleep(self.rings.daemon_doorbell());
                continue;
            }
            if !self.sleep(socket).await? {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client closed while replies waited"));
            }
        }
        Ok(())
    }

    /// Sleeps (sleep announced) until the client rings; false when instead the client closed
    /// the socket or sent bytes on it.
    async fn sleep(&mut self, socket: &ConnSocket) -> io::Result<bool> {
        tokio::select! {
            ready = self.bell.readable() => {
                let mut ready = ready?;
                let mut count = [0u8; 8];
                // SAFETY: reads 8 bytes into a buffer of 8; the eventfd is ours and open.
                let read = unsafe { libc::read(self.bell.get_ref().as_raw_fd(), count.as_mut_ptr().cast(), 8) };
                if read < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::WouldBlock {
                        return Err(err);
                    }
                }
                // The count is drained: the client's next write is a new edge. (Tokio keeps
                // the readiness if one came since it was reported.)
                ready.clear_ready();
                Ok(true)
            }
            () = socket.closed_or_spoken(&mut self.scratch) => {
                if !self.scratch.is_empty() {
                    tracing::info!(bytes = self.scratch.len(), "a ring client sent bytes on its socket; closing");
                }
                Ok(false)
            }
        }
    }
}

fn corrupt(err: Corrupt) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}
