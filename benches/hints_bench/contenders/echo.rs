//! The floor: a bare Unix-socket echo between processes. Each request is answered with a reply
//! the size of a get's; pipelined, N requests are written before the N replies are read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hintsd::socket::ConnSocket;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{MsgFlags, recv, send};

use crate::Res;

/// Bytes of an echo request and reply: about a get request and a get reply of a 100-byte value.
const REQUEST_BYTES: usize = 24;
const REPLY_BYTES: usize = 130;

#[derive(Debug)]
pub struct EchoClient {
    stream: UnixStream,
    requests: Vec<u8>,
    replies: Vec<u8>,
}

impl EchoClient {
    pub fn connect(socket: &Path) -> std::io::Result<EchoClient> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(EchoClient { stream, requests: Vec::new(), replies: Vec::new() })
    }

    /// Writes `depth` requests, then reads their `depth` replies.
    pub fn round_trip(&mut self, depth: usize) -> std::io::Result<()> {
        self.requests.resize(REQUEST_BYTES * depth, 7);
        self.replies.resize(REPLY_BYTES * depth, 0);
        self.stream.write_all(&self.requests)?;
        self.stream.read_exact(&mut self.replies)
    }
}

/// A worker's step against the echo floor: one batch of `depth` round trips.
pub fn echo_step(socket: &Path) -> Res<impl FnMut(usize) -> bool> {
    let mut echo = EchoClient::connect(socket)?;
    Ok(move |depth| echo.round_trip(depth).is_ok())
}

/// How the echo server is built. `Threads` is the floor the matrix measures against: a thread
/// per connection, blocked in `read`. `Lanes` and `Epoll` differ only in their event loop, to
/// measure what tokio costs hintsd's lanes (`benches/event_loop.sh`): each runs a thread pinned
/// to each CPU this process may use, deals connections round them in turn and reads a
/// connection until a `recv` finds nothing. `Lanes` is hintsd's own lanes (a tokio
/// current-thread runtime a thread) reading through hintsd's `ConnSocket`; `Epoll` is a bare
/// edge-triggered `epoll` loop a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoShape {
    Threads,
    Lanes,
    Epoll,
}

/// The echo server: every whole request a read brings is answered, and all of a read's answers
/// go in one write, so pipelined requests cost one read and one write a batch.
pub fn echo_server(socket: &Path, shape: EchoShape) -> Res<()> {
    let listener = UnixListener::bind(socket)?;
    match shape {
        EchoShape::Threads => serve_on_threads(&listener),
        EchoShape::Lanes => serve_on_lanes(&listener),
        EchoShape::Epoll => serve_on_epoll_loops(&listener),
    }
}

/// What one connection is owed: the bytes of a request not yet whole are counted.
#[derive(Debug, Default)]
struct Echoes {
    partial: usize,
    replies: Vec<u8>,
}

impl Echoes {
    /// The replies to the requests that `read` more bytes make whole.
    fn answer(&mut self, read: usize) -> &[u8] {
        let pending = self.partial + read;
        self.replies.resize(pending / REQUEST_BYTES * REPLY_BYTES, 9);
        self.partial = pending % REQUEST_BYTES;
        &self.replies
    }
}

/// Bytes a read may bring.
const READ_BYTES: usize = 64 * 1024;

fn serve_on_threads(listener: &UnixListener) -> Res<()> {
    for stream in listener.incoming() {
        let mut stream = stream?;
        // Named, so that a profile tells the server's threads from its clients'.
        std::thread::Builder::new().name("echo-server".into()).spawn(move || {
            let mut buffer = vec![0u8; READ_BYTES];
            let mut echoes = Echoes::default();
            while let Ok(read @ 1..) = stream.read(&mut buffer) {
                if stream.write_all(echoes.answer(read)).is_err() {
                    break;
                }
            }
        })?;
    }
    Ok(())
}

fn serve_on_lanes(listener: &UnixListener) -> Res<()> {
    let count = hintsd::lanes::allowed_cpus().len().max(1);
    let lanes = hintsd::lanes::Lanes::start(count, Duration::ZERO, true);
    for (index, stream) in listener.incoming().enumerate() {
        let fd = OwnedFd::from(stream?);
        let (lane, seat) = lanes.seat_on(index % count);
        lane.spawn(async move {
            let _seat = seat;
            // Registered with the reactor of the lane it runs on.
            let Ok(socket) = ConnSocket::new(fd) else { return };
            let mut buffer = Vec::with_capacity(READ_BYTES);
            let mut echoes = Echoes::default();
            loop {
                buffer.clear();
                let Ok(read @ 1..) = socket.read_buf(&mut buffer).await else { break };
                if socket.write_all(echoes.answer(read)).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

fn serve_on_epoll_loops(listener: &UnixListener) -> Res<()> {
    let cpus = hintsd::lanes::allowed_cpus();
    if cpus.is_empty() {
        return Err("could not read the CPUs this process may use".into());
    }
    let loops: Vec<Arc<Epoll>> = cpus.into_iter().map(start_epoll_loop).collect::<Result<_, _>>()?;
    for (index, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        stream.set_nonblocking(true)?;
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, stream.as_raw_fd() as u64);
        loops[index % loops.len()].add(&stream, event)?;
        // The loop takes the descriptor over with its first event, and closes it.
        let _ = stream.into_raw_fd();
    }
    Ok(())
}

/// A thread pinned to `cpu` that answers the connections added to the `epoll` it returns. A
/// loop that fails ends the process: its connections would wait for nothing.
fn start_epoll_loop(cpu: usize) -> Res<Arc<Epoll>> {
    let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
    let watched = Arc::clone(&epoll);
    std::thread::Builder::new().name("echo-server".into()).spawn(move || {
        if let Err(err) = hintsd::lanes::pin_current_thread(cpu) {
            eprintln!("echo-server: could not pin a loop to CPU {cpu}: {err}");
        }
        let mut events = [EpollEvent::empty(); 64];
        let mut buffer = vec![0u8; READ_BYTES];
        let mut connections: HashMap<RawFd, (OwnedFd, Echoes)> = HashMap::new();
        loop {
            let ready = match watched.wait(&mut events, EpollTimeout::NONE) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(err) => {
                    eprintln!("echo-server: epoll_wait failed: {err}");
                    std::process::exit(1);
                }
            };
            for event in &events[..ready] {
                let raw = event.data() as RawFd;
                let (fd, echoes) = connections.entry(raw).or_insert_with(|| {
                    // SAFETY: the accept loop gave this open descriptor up to this loop alone,
                    // and a number comes back from `epoll_wait` only while it is open here.
                    (unsafe { OwnedFd::from_raw_fd(raw) }, Echoes::default())
                });
                if !answer_until_drained(fd, &mut buffer, echoes) {
                    // Dropped, so closed (which also takes it off the epoll).
                    connections.remove(&raw);
                }
            }
        }
    })?;
    Ok(epoll)
}

/// How long a reply may wait for room in a connection's socket before the connection is
/// dropped: a client that stops reading must not hold its loop's other connections for good.
const ROOM_WAIT_MILLIS: u16 = 5_000;

/// Reads `fd` until a `recv` finds nothing, answering as it goes; false once the client has
/// closed or the connection failed.
fn answer_until_drained(fd: &OwnedFd, buffer: &mut [u8], echoes: &mut Echoes) -> bool {
    loop {
        match recv(fd.as_raw_fd(), buffer, MsgFlags::empty()) {
            Ok(0) => return false,
            Ok(read) => {
                let mut replies = echoes.answer(read);
                while !replies.is_empty() {
                    match send(fd.as_raw_fd(), replies, MsgFlags::MSG_NOSIGNAL) {
                        Ok(sent) => replies = &replies[sent..],
                        Err(Errno::EINTR) => {}
                        // Only a pipeline deeper than the socket's buffer (about 1 500 requests)
                        // gets here; the lanes' `write_all` waits for room the same way.
                        Err(Errno::EAGAIN) => {
                            let mut room = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                            if !matches!(poll(&mut room, PollTimeout::from(ROOM_WAIT_MILLIS)), Ok(1..)) {
                                return false;
                            }
                        }
                        Err(_) => return false,
                    }
                }
            }
            Err(Errno::EAGAIN) => return true,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}
