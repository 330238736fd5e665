//! The blocking client's end of a shared-memory ring (`hints_proto::ring`): frames are written
//! to the request ring and replies read from the reply ring, with no system call while the
//! daemon is awake.
//!
//! With nothing to do, the client first spins for as long as the daemon suggests (zero unless
//! the host has a core to spare), then announces sleep on its doorbell word, looks once more,
//! and sleeps in a `poll` on the socket: a doorbell byte from the daemon wakes it, and so does
//! the daemon's exit. It sends the daemon a doorbell byte only when the daemon announced
//! sleep (see hintsd's `ring_end.rs` for why the socket is the doorbell).

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use hints_proto::ResponseView;
use hints_proto::ring::doorbell::{self, WANTS_DATA, WANTS_ROOM};
use hints_proto::ring::shm::{SharedRings, SharedWords, ShmRegion};
use hints_proto::ring::{Consumer, Corrupt, Ordering, Producer};
use nix::poll::PollFlags;

use crate::blocking::Link;
use crate::codec::{Codec, Failure};

/// The longest spin the client accepts from the daemon's hint.
pub const CLIENT_SPIN_MAX: Duration = Duration::from_millis(1);
/// Doorbell bytes read at a time.
const DOORBELL_READ_BYTES: usize = 64;

/// The client's end of one connection's rings.
pub(crate) struct ClientRing {
    words: SharedWords,
    requests: Producer<ShmRegion>,
    replies: Consumer<ShmRegion>,
    /// What this end last stored in the client-CPU word.
    cpu_said: u32,
}

impl ClientRing {
    /// Maps the ring the daemon passed, after checking it is the size the reply said.
    pub(crate) fn open(memfd: &OwnedFd, ring_bytes: u32) -> io::Result<ClientRing> {
        let rings = SharedRings::open(memfd)?;
        if rings.ring_bytes() != ring_bytes as usize {
            let message = format!("the daemon said {ring_bytes} bytes, its ring holds {}", rings.ring_bytes());
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        }
        let words = rings.words();
        let (requests, replies) = rings.into_client_ends();
        Ok(ClientRing { words, requests, replies, cpu_said: 0 })
    }

    /// Writes what the codec has queued and reads until it has every reply it expects, as
    /// the socket's `pump` does.
    pub(crate) fn pump(
        &mut self,
        link: &mut Link,
        codec: &mut Codec,
        deadline: Instant,
        each: &mut dyn FnMut(ResponseView<'_>),
    ) -> Result<(), Failure> {
        loop {
            if codec.progress_each(each)? && codec.unsent().is_empty() {
                return Ok(());
            }
            if self.move_bytes(link, codec)? {
                continue;
            }
            self.wait(link, codec, deadline)?;
        }
    }

    /// Writes what fits and reads what is there; whether anything moved.
    fn move_bytes(&mut self, link: &Link, codec: &mut Codec) -> Result<bool, Failure> {
        let mut moved = false;
        if !codec.unsent().is_empty() {
            let written = self.requests.write(codec.unsent()).map_err(corrupt)?;
            if written > 0 {
                self.say_cpu();
                codec.advance_sent(written);
                self.wake_daemon(link, WANTS_DATA)?;
                moved = true;
            }
        }
        let read = self.replies.read(codec.recv_space()).map_err(corrupt)?;
        if read > 0 {
            codec.received(read);
            // The daemon may be waiting for room to write the rest of a large reply.
            self.wake_daemon(link, WANTS_ROOM)?;
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

    /// Spins as the daemon suggests, then sleeps until a doorbell byte, the daemon's close or
    /// the deadline.
    fn wait(&mut self, link: &mut Link, codec: &Codec, deadline: Instant) -> Result<(), Failure> {
        let hint = Duration::from_micros(u64::from(self.words.client_spin_micros().load(Ordering::Relaxed)));
        if !hint.is_zero() {
            let spin_until = Instant::now() + hint.min(CLIENT_SPIN_MAX);
            while Instant::now() < spin_until {
                if self.has_work(codec)? {
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
        let word = self.words.client_doorbell();
        let wants = if codec.unsent().is_empty() { WANTS_DATA } else { WANTS_DATA | WANTS_ROOM };
        doorbell::announce_sleep(word, wants);
        if self.has_work(codec)? {
            doorbell::cancel_sleep(word);
            return Ok(());
        }
        let mut doorbells = [0u8; DOORBELL_READ_BYTES];
        // `poll`, not a blocking `recv`: see `Link::poll_until`.
        let slept = link.poll_until(PollFlags::POLLIN, deadline).and_then(|_| link.recv_now(&mut doorbells));
        doorbell::cancel_sleep(word);
        match slept? {
            // The daemon's last replies may be in the ring still (a socket would hold them in
            // its buffer): they are read before the close counts.
            Some(0) if !self.has_work(codec)? => Err(Failure::closed()),
            _ => Ok(()),
        }
    }

    /// Tells the daemon which CPU this process runs on, so its connection can be served from
    /// that CPU.
    fn say_cpu(&mut self) {
        // SAFETY: no arguments; -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        let word = u32::try_from(cpu.saturating_add(1)).unwrap_or(0);
        if word != self.cpu_said {
            self.words.client_cpu().store(word, Ordering::Relaxed);
            self.cpu_said = word;
        }
    }

    /// After publishing a position that gives the daemon `event`: a doorbell byte for it if it
    /// announced sleep waiting for that.
    fn wake_daemon(&self, link: &Link, event: u32) -> Result<(), Failure> {
        if doorbell::take_sleeper(self.words.daemon_doorbell(), event) {
            link.ring_bell()?;
        }
        Ok(())
    }
}

fn corrupt(err: Corrupt) -> Failure {
    Failure::Broken(io::Error::new(io::ErrorKind::InvalidData, err))
}
