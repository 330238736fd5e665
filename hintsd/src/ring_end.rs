//! The daemon's end of a connection's shared-memory ring (`hints_proto::ring`): requests are
//! read from the request ring and replies written to the reply ring, with no system call while
//! both ends are busy.
//!
//! The socket stays, as the doorbell each way and to see the client go. When the request ring
//! is empty (or the reply ring full) the connection's task announces sleep on its doorbell
//! word, looks once more, and waits for the socket: a byte from the client (which sends one
//! only when it finds the announcement) or its close. After each position it publishes, it
//! sends the client a byte if the client announced sleep. A byte on a Unix socket wakes the
//! sleeper as a "sync" wake-up, on the sender's core as the sender goes to sleep: the
//! ping-pong the bare echo enjoys; an eventfd or futex wake-up carries no such hint.
//!
//! The client may write anything into the mapping or the socket: a position that makes no
//! sense closes the connection (`InvalidData`), ring bytes are only copied out for the frame
//! decoder to check, and socket bytes only wake this end to look at the ring.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use hints_proto::ring::doorbell::{self, WANTS_DATA, WANTS_ROOM};
use hints_proto::ring::shm::{SharedRings, SharedWords, ShmRegion, release_pages};
use hints_proto::ring::{Consumer, Corrupt, Ordering, Producer, Region};

use tokio::sync::OwnedSemaphorePermit;

use crate::socket::ConnSocket;

/// Doorbell bytes read at a time from the socket.
const DOORBELL_READ_BYTES: usize = 64;

/// The daemon's end of one connection's rings.
#[derive(Debug)]
pub struct RingEnd {
    words: SharedWords,
    requests: Consumer<ShmRegion>,
    replies: Producer<ShmRegion>,
    /// Our copy of the file, to give its pages back when the connection ends.
    memfd: OwnedFd,
    file_bytes: usize,
    /// Doorbell bytes from the socket, read only to be dropped.
    doorbells: Vec<u8>,
    /// A second descriptor of the connection's socket, to see the client leave after the
    /// connection's task has ended.
    socket: Option<OwnedFd>,
    /// The client closed its end: nothing in the rings is waiting for it.
    client_gone: bool,
    /// The connection's place under `connections_max`, kept while the ring lingers.
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for RingEnd {
    /// The client may keep the file (and a mapping) after the connection, so the pages the
    /// daemon touched are given back, and a client cannot pile up memory past
    /// `connections_max` rings. Not before the client has left, though: replies the daemon
    /// wrote last (an error before it closes, the last batch before it stops) are still to be
    /// read, as a socket's buffer would keep them. So when the daemon ends the connection, the
    /// ring lingers until the client closes its end, at most [`RING_LINGER_MAX`].
    fn drop(&mut self) {
        let file_bytes = self.file_bytes;
        // Replies the client has not read yet (a ring found corrupt counts as read: nothing in
        // it can be trusted to be a reply).
        let unread = self.replies.room().is_ok_and(|room| room < self.replies.region().capacity());
        if self.client_gone || !unread {
            return give_back_pages(&self.memfd, file_bytes);
        }
        let memfd = self.memfd.try_clone();
        let socket = self.socket.take();
        match (memfd, socket, tokio::runtime::Handle::try_current()) {
            (Ok(memfd), Some(socket), Ok(runtime)) => {
                // The permit goes with it: a lingering ring still counts as a connection.
                runtime.spawn(linger(memfd, file_bytes, socket, self.permit.take()));
            }
            _ => give_back_pages(&self.memfd, file_bytes),
        }
    }
}

/// How long a ring the daemon closed waits for its client to leave before its pages are given
/// back anyway.
pub const RING_LINGER_MAX: Duration = Duration::from_secs(5);

/// Tells the client the daemon is done (the socket's write side is shut), waits for it to close
/// (or [`RING_LINGER_MAX`]), then gives the ring's pages back and the connection's permit.
async fn linger(memfd: OwnedFd, file_bytes: usize, socket: OwnedFd, _permit: Option<OwnedSemaphorePermit>) {
    let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Write);
    if let Ok(socket) = ConnSocket::new(socket) {
        let _ = tokio::time::timeout(RING_LINGER_MAX, socket.closed()).await;
    }
    give_back_pages(&memfd, file_bytes);
}

fn give_back_pages(memfd: &OwnedFd, file_bytes: usize) {
    if let Err(err) = release_pages(memfd, file_bytes) {
        tracing::warn!(error = %err, "could not give back a closed ring's pages");
    }
}

impl RingEnd {
    /// Makes the rings (`ring_bytes` each way), and the memfd to pass to the client.
    ///
    /// # Errors
    /// The system's, from memfd or mmap.
    pub fn create(ring_bytes: usize, socket: &ConnSocket) -> io::Result<(RingEnd, OwnedFd)> {
        let socket = socket.try_clone_fd()?;
        let (memfd, rings) = SharedRings::create(ring_bytes)?;
        let (words, file_bytes) = (rings.words(), rings.file_bytes());
        let (requests, replies) = rings.into_daemon_ends();
        let ours = memfd.try_clone()?;
        let end = RingEnd {
            words,
            requests,
            replies,
            memfd: ours,
            file_bytes,
            doorbells: Vec::with_capacity(DOORBELL_READ_BYTES),
            socket: Some(socket),
            client_gone: false,
            permit: None,
        };
        Ok((end, memfd))
    }

    /// The CPU the client says it last wrote a request from, if it says one.
    pub fn client_cpu(&self) -> Option<usize> {
        let word = self.words.client_cpu().load(Ordering::Relaxed);
        (word as usize).checked_sub(1)
    }

    /// Tells the client how long to spin for a reply before it sleeps (zero: not at all).
    pub fn suggest_client_spin(&self, spin: Option<Duration>) {
        let micros = spin.map_or(0, |spin| u32::try_from(spin.as_micros()).unwrap_or(u32::MAX));
        let hint = self.words.client_spin_micros();
        if hint.load(Ordering::Relaxed) != micros {
            hint.store(micros, Ordering::Relaxed);
        }
    }

    /// Appends what the request ring holds (at least one byte) to `buf`, within its spare
    /// capacity (which must not be empty), first spinning up to `spin` and then sleeping until
    /// the client writes; 0 when the client closed the socket.
    ///
    /// # Errors
    /// `InvalidData` when the ring is corrupt; the socket's read error.
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
                self.wake_client(socket, WANTS_ROOM);
                return Ok(read);
            }
            if spin_until.is_some_and(|until| Instant::now() < until) {
                std::hint::spin_loop();
                continue;
            }
            if !self.wait_for(WANTS_DATA, socket).await? {
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
                self.wake_client(socket, WANTS_DATA);
                continue;
            }
            if !self.wait_for(WANTS_ROOM, socket).await? {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client closed while replies waited"));
            }
        }
        Ok(())
    }

    /// After publishing a position that gives the client `event`: a doorbell byte for it if
    /// it announced sleep waiting for that.
    fn wake_client(&self, socket: &ConnSocket, event: u32) {
        if doorbell::take_sleeper(self.words.client_doorbell(), event) {
            // A full socket buffer is full of doorbells already: the client will wake.
            socket.ring_bell();
        }
    }

    /// Announces sleep until `wants` (requests to read, or room for replies), looks at the ring
    /// once more, and sleeps unless that found it; false when the client closed instead.
    async fn wait_for(&mut self, wants: u32, socket: &ConnSocket) -> io::Result<bool> {
        doorbell::announce_sleep(self.words.daemon_doorbell(), wants);
        let ready = if wants == WANTS_DATA { self.requests.available() } else { self.replies.room() };
        if ready.map_err(corrupt)? > 0 {
            doorbell::cancel_sleep(self.words.daemon_doorbell());
            return Ok(true);
        }
        self.sleep(socket).await
    }

    /// Sleeps (sleep announced) until the client sends a doorbell byte; false when the client
    /// closed the socket instead.
    async fn sleep(&mut self, socket: &ConnSocket) -> io::Result<bool> {
        self.doorbells.clear();
        match socket.read_doorbells(&mut self.doorbells).await {
            Ok(0) => {
                self.client_gone = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(err) => {
                self.client_gone = true;
                Err(err)
            }
        }
    }

    /// Keeps the connection's permit (its place under `connections_max`) until the ring is done
    /// with, lingering included.
    pub fn hold(&mut self, permit: Option<OwnedSemaphorePermit>) {
        self.permit = permit;
    }

    /// Records that the client closed its end (seen on the socket by the connection).
    pub fn note_client_gone(&mut self) {
        self.client_gone = true;
    }
}

fn corrupt(err: Corrupt) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}
