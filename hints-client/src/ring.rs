//! The blocking client's end of a shared-memory ring (`hints_proto::ring`): frames are written
//! to the request ring and replies read from the reply ring, with no system call while the
//! daemon is awake.
//!
//! With nothing to do, the client first spins for as long as the daemon suggests (zero unless
//! the host has a core to spare), then announces sleep on its doorbell word, looks once more,
//! and sleeps on a futex the daemon wakes. It wakes the daemon (its eventfd) only when the
//! daemon announced sleep. Sleeps are cut into slices of [`LIVENESS_CHECK_INTERVAL`]; between
//! them the socket says whether the daemon is still there (it closes at exit or crash).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hints_proto::Response;
use hints_proto::ring::shm::{SharedRings, ShmRegion};
use hints_proto::ring::{Consumer, Corrupt, Ordering, Producer, doorbell};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::Socket;

use crate::codec::{Codec, Failure};

/// How long the client sleeps before it checks that the daemon is still there.
pub const LIVENESS_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// The longest spin the client accepts from the daemon's hint.
pub const CLIENT_SPIN_MAX: Duration = Duration::from_millis(1);

/// The client's end of one connection's rings.
pub(crate) struct ClientRing {
    rings: SharedRings,
    requests: Producer<ShmRegion>,
    replies: Consumer<ShmRegion>,
    /// The daemon's eventfd: written to wake it.
    daemon_bell: OwnedFd,
}

impl ClientRing {
    /// Maps the ring the daemon passed, after checking it is the size the reply said.
    pub(crate) fn open(memfd: &OwnedFd, daemon_bell: OwnedFd, ring_bytes: u32) -> io::Result<ClientRing> {
        let rings = SharedRings::open(memfd)?;
        if rings.ring_bytes() != ring_bytes as usize {
            let message = format!("the daemon said {ring_bytes} bytes, its ring holds {}", rings.ring_bytes());
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        }
        Ok(ClientRing {
            requests: Producer::new(rings.requests()),
            replies: Consumer::new(rings.replies()),
            rings,
            daemon_bell,
        })
    }

    /// Writes what the codec has queued and reads until it has every reply it expects, as
    /// the socket's `pump` does.
    pub(crate) fn pump(
        &mut self,
        socket: &Socket,
        codec: &mut Codec,
        deadline: Instant,
        out: &mut Vec<Response>,
    ) -> Result<(), Failure> {
        loop {
            if codec.progress(out)? && codec.unsent().is_empty() {
                return Ok(());
            }
            if self.move_bytes(codec)? {
                continue;
            }
            self.wait(socket, codec, deadline)?;
        }
    }

    /// Writes what fits and reads what is there; whether anything moved.
    fn move_bytes(&mut self, codec: &mut Codec) -> Result<bool, Failure> {
        let mut moved = false;
        if !codec.unsent().is_empty() {
            let written = self.requests.write(codec.unsent()).map_err(corrupt)?;
            if written > 0 {
                codec.advance_sent(written);
                self.wake_daemon()?;
                moved = true;
            }
        }
        let read = self.replies.read(codec.recv_space()).map_err(corrupt)?;
        if read > 0 {
            codec.received(read);
            // The daemon may be waiting for room to write the rest of a large reply.
            self.wake_daemon()?;
            moved = true;
        }
        Ok(moved)
    }

    /// Whether the rings let this end go on: a reply to read, or room for what is unsent.
    fn has_work(&self, codec: &Codec) -> Result<bool, Failure> {
        if self.replies.available().map_err(corrupt)? > 0 {
            return Ok(true);
        }
        Ok(!codec.unsent().is_empty() && self.requests.room().map_err(corrupt)? > 0)
    }

    /// Spins as the daemon suggests, then sleeps until woken, the deadline or the next
    /// liveness check.
    fn wait(&mut self, socket: &Socket, codec: &Codec, deadline: Instant) -> Result<(), Failure> {
        let hint = Duration::from_micros(u64::from(self.rings.client_spin_micros().load(Ordering::Relaxed)));
        let spin_until = Instant::now() + hint.min(CLIENT_SPIN_MAX);
        while Instant::now() < spin_until {
            if self.has_work(codec)? {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::TimedOut);
        }
        let word = self.rings.client_doorbell();
        doorbell::announce_sleep(word);
        if self.has_work(codec)? {
            doorbell::cancel_sleep(word);
            return Ok(());
        }
        self.rings.client_sleep(remaining.min(LIVENESS_CHECK_INTERVAL));
        let woken = word.load(Ordering::Relaxed) == doorbell::AWAKE;
        doorbell::cancel_sleep(word);
        if !woken && daemon_gone(socket)? {
            return Err(Failure::closed());
        }
        Ok(())
    }

    fn wake_daemon(&self) -> Result<(), Failure> {
        if doorbell::take_sleeper(self.rings.daemon_doorbell()) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our copy of the daemon's eventfd.
            let written = unsafe { libc::write(self.daemon_bell.as_raw_fd(), one.as_ptr().cast(), 8) };
            if written < 0 {
                let err = io::Error::last_os_error();
                // A full count (never in practice) still wakes the daemon.
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(Failure::Broken(err));
                }
            }
        }
        Ok(())
    }
}

/// True when the daemon's end of the socket is closed: in ring mode it never writes there.
fn daemon_gone(socket: &Socket) -> Result<bool, Failure> {
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(ready) => Ok(ready > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(errno) => Err(Failure::Broken(io::Error::from(errno))),
    }
}

fn corrupt(err: Corrupt) -> Failure {
    Failure::Broken(io::Error::new(io::ErrorKind::InvalidData, err))
}
