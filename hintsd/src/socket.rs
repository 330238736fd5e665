//! A connection's socket on the reactor of the thread that serves it, watched for input only.
//!
//! A tokio `UnixStream` asks epoll for both input and room to write, so every time a client
//! reads a reply (freeing room in the socket), the serving thread is woken for nothing; on a
//! VM where waking a sleeping core is a cross-CPU interrupt, that doubled the wake-ups of a
//! round trip. Here a reply is written straight away (a reply fits the socket's buffer almost
//! always), and only a write that finds the buffer full waits for room, through a second
//! descriptor of the same socket registered for room alone, for as long as that write lasts.

use std::io;
use std::os::fd::OwnedFd;

use socket2::SockRef;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A nonblocking stream socket registered with the current thread's reactor for input.
#[derive(Debug)]
pub struct ConnSocket {
    fd: AsyncFd<OwnedFd>,
}

impl ConnSocket {
    /// Registers `fd` (a connected stream socket) with this thread's reactor.
    ///
    /// # Errors
    /// The socket could not be made nonblocking or registered.
    pub fn new(fd: OwnedFd) -> io::Result<ConnSocket> {
        SockRef::from(&fd).set_nonblocking(true)?;
        Ok(ConnSocket { fd: register(fd, Interest::READABLE)? })
    }

    /// A second descriptor of the socket, registered nowhere.
    ///
    /// # Errors
    /// As `dup`.
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.get_ref().try_clone()
    }

    /// Takes the socket off this thread's reactor, to move it to another.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into_inner()
    }

    /// Reads what has arrived (at least one byte, or 0 at the peer's close) into `buf`'s spare
    /// capacity, which must not be empty.
    ///
    /// Readiness is cleared only when a `recv` finds nothing, never after a short read: on a
    /// Unix stream socket a `recv` also stops after a message that carried descriptors and at
    /// an out-of-band mark, with more data queued behind whose epoll edge is already taken, so
    /// a short read does not prove the socket drained (`data_behind_*` tests below). An idle
    /// client costs one empty `recv` per request; clearing after short reads measured no
    /// faster on the socket (4 clients on 2 cores, 153 000 calls/s either way).
    ///
    /// # Errors
    /// As `recv`.
    pub async fn read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read(buf, false).await
    }

    /// Reads a shared-memory ring's doorbell bytes, as [`ConnSocket::read_buf`] but clearing
    /// readiness after a short read too, so each doorbell costs one `recv`, not a second that
    /// finds nothing. A doorbell left queued (behind a message that carried descriptors, say)
    /// loses nothing: a doorbell only wakes, and the ring is looked at after every wake-up and
    /// again after every announcement of sleep, while a doorbell the client sends later raises
    /// a new edge. Measured at 4 ring clients on 2 cores (5 alternating pairs of 3 s runs,
    /// mix): the daemon's system calls per request 2.41 to 1.68, and the median 162 000 to
    /// 170 000 calls/s.
    ///
    /// # Errors
    /// As `recv`.
    pub async fn read_doorbells(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read(buf, true).await
    }

    async fn read(&self, buf: &mut Vec<u8>, clear_after_short_read: bool) -> io::Result<usize> {
        debug_assert!(buf.capacity() > buf.len(), "a read needs spare capacity");
        loop {
            // `poll_read_ready`, not `readable()`: its waker waits in the registration's one
            // reader slot, where `readable()` queued a node on a list of waiters each time the
            // socket was found empty (5 alternating pairs at 1 socket client: p50 5.1 -> 4.9
            // µs, 2-6 % more calls; 4 clients unchanged). One slot: a socket has one reader at
            // a time. Each poll draws on tokio's cooperative budget, as `readable()` did not.
            let mut ready = std::future::poll_fn(|cx| self.fd.poll_read_ready(cx)).await?;
            let room = buf.capacity() - buf.len();
            match ready.try_io(|fd| recv_appending(fd.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    if clear_after_short_read && n > 0 && n < room {
                        ready.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(err)) => return Err(err),
                // Readiness was stale; it has been cleared, wait for the next.
                Err(_would_block) => {}
            }
        }
    }

    /// One `send` of `bytes` that does not wait (retried if a signal interrupts it): how many
    /// went, 0 when the buffer is full.
    ///
    /// # Errors
    /// As `send` (`MSG_NOSIGNAL`: a peer gone is an error, never a signal).
    pub fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match SockRef::from(self.fd.get_ref()).send_with_flags(bytes, libc::MSG_NOSIGNAL) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                sent => return sent,
            }
        }
    }

    /// Writes all of `bytes`, waiting for room only if the socket's buffer is full.
    ///
    /// # Errors
    /// As `send` (`MSG_NOSIGNAL`: a peer gone is an error, never a signal).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let mut room: Option<AsyncFd<OwnedFd>> = None;
        while !bytes.is_empty() {
            match self.send_now(bytes)? {
                0 => {
                    let watcher = match &mut room {
                        Some(watcher) => watcher,
                        None => {
                            let second = self.try_clone_fd()?;
                            room.insert(register(second, Interest::WRITABLE)?)
                        }
                    };
                    // Registration reports room that came meanwhile, so no edge is missed;
                    // readiness is cleared only once a send has found the buffer full again.
                    let mut ready = watcher.writable().await?;
                    ready.clear_ready();
                }
                sent => bytes = &bytes[sent..],
            }
        }
        Ok(())
    }

    /// Sends `bytes` (a small frame) with `fds` passed along (`SCM_RIGHTS`), all in one
    /// `sendmsg` that must not wait: it is used once per connection, before which the client
    /// has read every reply, so the socket's buffer has room.
    ///
    /// # Errors
    /// As `sendmsg`; `WriteZero` if only part went.
    pub fn send_with_fds(&self, bytes: &[u8], fds: &[std::os::fd::RawFd]) -> io::Result<()> {
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let iov = [io::IoSlice::new(bytes)];
        let sent = sendmsg::<()>(self.fd.get_ref().as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
        if sent == bytes.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "the frame passing the ring went in part"))
        }
    }

    /// Sends one byte, without waiting: a shared-memory ring's doorbell (`ring_end.rs`). A
    /// full buffer is full of doorbells already, and a closed peer is seen by the reader.
    pub fn ring_bell(&self) {
        let _ = SockRef::from(self.fd.get_ref()).send_with_flags(&[1], libc::MSG_NOSIGNAL);
    }

    /// Returns once the peer has closed (or the socket failed), reading and dropping what it
    /// sends meanwhile (a ring client's doorbells).
    pub async fn closed(&self) {
        let mut scratch = Vec::with_capacity(64);
        loop {
            scratch.clear();
            if matches!(self.read_buf(&mut scratch).await, Ok(0) | Err(_)) {
                return;
            }
        }
    }
}

/// One `recv` into `buf`'s spare capacity, appending what it read.
fn recv_appending(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let n = SockRef::from(fd).recv(buf.spare_capacity_mut())?;
    // SAFETY: recv initialised the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Registers `fd` with this thread's reactor for `interest`.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `AsyncFd` owns the `OwnedFd`, so the descriptor stays open and names the
    // same socket for as long as it is registered.
    Ok(unsafe { AsyncFd::register_with_interest(fd, interest)? })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::ConnSocket;

    #[tokio::test]
    async fn a_write_larger_than_the_socket_buffer_waits_for_room_and_arrives_whole() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        let sent: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = sent.clone();
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            let mut chunk = [0u8; 8192];
            while received.len() < expected.len() {
                // A slow reader: the writer must find the buffer full and wait for room.
                std::thread::sleep(std::time::Duration::from_micros(50));
                let n = theirs.read(&mut chunk).unwrap();
                received.extend_from_slice(&chunk[..n]);
            }
            theirs.write_all(b"done").unwrap();
            assert!(received == expected, "the bytes arrived changed or out of order");
        });
        socket.write_all(&sent).await.unwrap();
        let mut buf = Vec::with_capacity(16);
        while buf.len() < 4 {
            assert_ne!(socket.read_buf(&mut buf).await.unwrap(), 0, "the reader closed early");
        }
        assert_eq!(buf, b"done");
        reader.join().unwrap();
    }

    /// One read (`read_doorbells` if `doorbells`, else `read_buf`) with a deadline: `None` if
    /// nothing was returned within it.
    async fn read_within(socket: &ConnSocket, buf: &mut Vec<u8>, ms: u64, doorbells: bool) -> Option<usize> {
        let deadline = std::time::Duration::from_millis(ms);
        let read = if doorbells {
            tokio::time::timeout(deadline, socket.read_doorbells(buf)).await
        } else {
            tokio::time::timeout(deadline, socket.read_buf(buf)).await
        };
        read.ok().map(Result::unwrap)
    }

    /// Doorbells that arrive after a short read cleared readiness but before the reactor turned
    /// (on a current_thread runtime, the same as arriving between the `recv` and `clear_ready`)
    /// are still seen: the edge waits in epoll's ready list.
    #[tokio::test(flavor = "current_thread")]
    async fn doorbells_arriving_before_the_reactor_turns_after_a_short_read_are_seen() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        for round in 0..1000u32 {
            let mut buf = Vec::with_capacity(64);
            theirs.write_all(&round.to_le_bytes()).unwrap();
            assert_eq!(read_within(&socket, &mut buf, 5000, true).await, Some(4));
            // Short read: readiness cleared. More comes before this task yields.
            theirs.write_all(b"next").unwrap();
            buf.clear();
            assert_eq!(read_within(&socket, &mut buf, 5000, true).await, Some(4), "round {round}: lost wake-up");
            assert_eq!(buf, b"next");
        }
    }

    /// A stress test: a peer thread writes requests of random sizes at random moments (some
    /// back to back, some after a pause, some waiting for the echo) while the reader uses
    /// buffers of random room, so reads are full, short, and race the writes; every byte must
    /// arrive well within the deadline.
    #[test]
    fn a_reader_racing_a_writer_never_misses_a_wake_up() {
        for (flavor, doorbells) in
            [("current_thread", false), ("current_thread", true), ("multi_thread", false), ("multi_thread", true)]
        {
            let runtime = match flavor {
                "current_thread" => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
                _ => tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
            };
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for conn in 0..4u64 {
                    let (ours, mut theirs) = UnixStream::pair().unwrap();
                    let writer = std::thread::spawn(move || {
                        let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ conn;
                        let mut rand = move || {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            seed
                        };
                        let mut sent = 0u64;
                        let mut echo = [0u8; 1];
                        for _ in 0..20_000u32 {
                            let len = 1 + (rand() % 40) as usize;
                            let chunk: Vec<u8> = (0..len).map(|j| b'a' + ((sent as usize + j) % 26) as u8).collect();
                            theirs.write_all(&chunk).unwrap();
                            sent += len as u64;
                            match rand() % 8 {
                                0 => std::thread::sleep(std::time::Duration::from_micros(rand() % 50)),
                                1 => std::thread::yield_now(),
                                2 => {
                                    // Wait for the reader to catch up (a client awaiting its reply).
                                    theirs.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
                                    theirs.write_all(b"?").unwrap();
                                    sent += 1;
                                    theirs.read_exact(&mut echo).expect("no echo within 5 s: a lost wake-up");
                                }
                                _ => {}
                            }
                        }
                        drop(theirs);
                        sent
                    });
                    let socket = ConnSocket::new(ours.into()).unwrap();
                    tasks.push(tokio::spawn(async move {
                        let mut total = 0u64;
                        let mut room = 1usize;
                        loop {
                            room = room * 7 % 97 + 1;
                            let mut buf = Vec::with_capacity(room);
                            let n = read_within(&socket, &mut buf, 5000, doorbells)
                                .await
                                .expect("no read within 5 s: a lost wake-up");
                            if n == 0 {
                                return (total, writer);
                            }
                            total += n as u64;
                            if buf.contains(&b'?') {
                                socket.write_all(b"!").await.unwrap();
                            }
                        }
                    }));
                }
                for task in tasks {
                    let (total, writer) = task.await.unwrap();
                    assert_eq!(total, writer.join().unwrap());
                }
            });
        }
    }

    /// Data and the peer's close arriving together: a short read of doorbells clears
    /// readability, not the close, so the next read sees the end at once.
    #[tokio::test(flavor = "current_thread")]
    async fn a_short_read_before_the_peers_close_still_sees_the_close() {
        for (wait_for_the_reactor, doorbells) in [(false, false), (true, false), (false, true), (true, true)] {
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            let socket = ConnSocket::new(ours.into()).unwrap();
            theirs.write_all(b"last").unwrap();
            if wait_for_the_reactor {
                // The data's event is taken before the close arrives.
                tokio::task::yield_now().await;
            }
            drop(theirs);
            let mut buf = Vec::with_capacity(64);
            assert_eq!(read_within(&socket, &mut buf, 1000, doorbells).await, Some(4));
            assert_eq!(read_within(&socket, &mut buf, 1000, doorbells).await, Some(0), "the close was not seen");
        }
    }

    /// A message passing descriptors ends a `recv` on a Unix stream socket even when more data
    /// follows it, so a short read has not always drained the socket: `read_buf` reads on.
    #[tokio::test(flavor = "current_thread")]
    async fn data_behind_a_message_carrying_descriptors_is_read() {
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let (ours, theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        let passed = std::fs::File::open("/dev/null").unwrap();
        let fds = [passed.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"abc")];
        sendmsg::<()>(theirs.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None).unwrap();
        (&theirs).write_all(b"def").unwrap();
        let mut buf = Vec::with_capacity(64);
        assert_eq!(read_within(&socket, &mut buf, 1000, false).await, Some(3));
        assert_eq!(buf, b"abc");
        assert_eq!(
            read_within(&socket, &mut buf, 1000, false).await,
            Some(3),
            "\"def\" is in the socket but never read"
        );
        assert_eq!(buf, b"abcdef");
    }

    /// The same for an out-of-band byte (Linux 5.15 and later): a `recv` stops at its mark.
    #[tokio::test(flavor = "current_thread")]
    async fn data_behind_an_out_of_band_byte_is_read() {
        use std::os::fd::AsRawFd;

        let (ours, theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        (&theirs).write_all(b"abc").unwrap();
        // SAFETY: a one-byte buffer that outlives the call.
        let sent = unsafe { libc::send(theirs.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        if sent != 1 {
            return; // No MSG_OOB on Unix sockets here.
        }
        (&theirs).write_all(b"def").unwrap();
        let mut buf = Vec::with_capacity(64);
        assert_eq!(read_within(&socket, &mut buf, 1000, false).await, Some(3));
        assert_eq!(buf, b"abc");
        let more = read_within(&socket, &mut buf, 1000, false).await;
        assert!(more.is_some_and(|n| n > 0), "\"def\" is in the socket but never read (buf {buf:?})");
    }

    #[tokio::test]
    async fn read_buf_gives_zero_at_the_peers_close() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        drop(theirs);
        let mut buf = Vec::with_capacity(16);
        assert_eq!(socket.read_buf(&mut buf).await.unwrap(), 0);
    }
}
