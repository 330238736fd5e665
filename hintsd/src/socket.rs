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
use std::time::{Duration, Instant};

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
    /// A short read (fewer bytes than there was room for) drained the socket, so readiness is
    /// cleared then and the next read waits for epoll's next edge, which data arriving after
    /// this `recv` raises (epoll(7)); otherwise each request of a client that waits for its
    /// reply, and each doorbell of a ring, costs a second `recv` that finds nothing. Measured
    /// at 4 clients on 2 cores (5 alternating pairs of 3 s runs, mix): on the ring, system
    /// calls per request 2.41 to 1.68 and the median 162 000 to 170 000 calls/s; on the socket
    /// no change in throughput (153 000 both). Clearing only when a `recv` found nothing had
    /// been chosen from counts taken under strace, which slows the daemon enough that the next
    /// request is always there.
    ///
    /// # Errors
    /// As `recv`.
    pub async fn read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        debug_assert!(buf.capacity() > buf.len(), "read_buf needs spare capacity");
        loop {
            let mut ready = self.fd.readable().await?;
            let room = buf.capacity() - buf.len();
            match ready.try_io(|fd| recv_appending(fd.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < room {
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

    /// Tries `recv` without sleeping for up to `budget` (busy-polling the socket); `None` if
    /// nothing came in that time.
    pub fn read_spinning(&self, buf: &mut Vec<u8>, budget: Duration) -> Option<io::Result<usize>> {
        debug_assert!(buf.capacity() > buf.len(), "read_spinning needs spare capacity");
        let until = Instant::now() + budget;
        loop {
            match recv_appending(self.fd.get_ref(), buf) {
                Ok(n) => return Some(Ok(n)),
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(err) => return Some(Err(err)),
            }
            if Instant::now() >= until {
                return None;
            }
            std::hint::spin_loop();
        }
    }

    /// Writes all of `bytes`, waiting for room only if the socket's buffer is full.
    ///
    /// # Errors
    /// As `send` (`MSG_NOSIGNAL`: a peer gone is an error, never a signal).
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let socket = SockRef::from(self.fd.get_ref());
        let mut room: Option<AsyncFd<OwnedFd>> = None;
        while !bytes.is_empty() {
            match socket.send_with_flags(bytes, libc::MSG_NOSIGNAL) {
                Ok(n) => bytes = &bytes[n..],
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
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
                Err(err) => return Err(err),
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

    #[tokio::test]
    async fn read_spinning_takes_what_is_there_and_gives_up_when_nothing_comes() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let socket = ConnSocket::new(ours.into()).unwrap();
        let mut buf = Vec::with_capacity(16);
        assert!(socket.read_spinning(&mut buf, std::time::Duration::from_micros(50)).is_none());
        theirs.write_all(b"ping").unwrap();
        assert_eq!(socket.read_spinning(&mut buf, std::time::Duration::from_micros(50)).unwrap().unwrap(), 4);
        assert_eq!(buf, b"ping");
        drop(theirs);
        assert_eq!(socket.read_spinning(&mut buf, std::time::Duration::from_micros(50)).unwrap().unwrap(), 0);
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
