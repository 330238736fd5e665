//! A scripted stand-in for hintsd in this crate's unit tests: it accepts connections on a
//! socket in a temporary directory and runs one script per connection, in the order they
//! come. It tests the clients' connection rules (reconnect, timeout, refusal, fork), not the
//! daemon's semantics.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hints_proto::frame::{decode_body, read_frame, write_frame};
use hints_proto::{ErrorReply, HelloReply, PROTOCOL_VERSION, Request, RequestEnvelope, Response, ResponseEnvelope};

/// What one accepted connection does.
pub(crate) type Script = Box<dyn FnOnce(&mut Peer) + Send>;

/// A script from a closure.
pub(crate) fn script(f: impl FnOnce(&mut Peer) + Send + 'static) -> Script {
    Box::new(f)
}

/// The database the client tests talk to.
pub(crate) fn db() -> hints_proto::DbName {
    hints_proto::DbName::new("misc").expect("a valid name")
}

/// A client configuration for a fake daemon at `socket`: a short timeout, a test name, and no
/// ring (the fake daemon speaks only the socket), whatever `$HINTSD_RING` says.
pub(crate) fn test_config(socket: &Path) -> crate::ClientConfig {
    crate::ClientConfig::new(socket).with_timeout(Duration::from_millis(300)).with_client_name("test").with_ring(false)
}

/// The daemon's end of one connection.
pub(crate) struct Peer {
    stream: UnixStream,
    body: Vec<u8>,
    scratch: Vec<u8>,
}

impl Peer {
    /// Reads the hello and accepts it.
    pub(crate) fn accept_hello(&mut self) {
        read_frame(&mut self.stream, &mut self.body).expect("a hello");
        let reply = HelloReply::Accepted { protocol_version: PROTOCOL_VERSION, daemon_version: "fake".into() };
        write_frame(&mut self.stream, &reply, &mut self.scratch).expect("write the hello reply");
    }

    /// Reads the hello and refuses it.
    pub(crate) fn refuse_hello(&mut self, reply: ErrorReply) {
        read_frame(&mut self.stream, &mut self.body).expect("a hello");
        write_frame(&mut self.stream, &HelloReply::Refused(reply), &mut self.scratch).expect("write the refusal");
    }

    /// Reads one request, or `None` when the client closed.
    pub(crate) fn request(&mut self) -> Option<RequestEnvelope> {
        match read_frame(&mut self.stream, &mut self.body) {
            Ok(()) => Some(decode_body(&self.body).expect("a request envelope")),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(err) => panic!("reading a request: {err}"),
        }
    }

    /// Sends a reply with the given id.
    pub(crate) fn reply(&mut self, id: u64, response: Response) {
        write_frame(&mut self.stream, &ResponseEnvelope { id, response }, &mut self.scratch).expect("write a reply");
    }

    /// Sends a reply to a client that may have gone (errors ignored).
    pub(crate) fn reply_late(&mut self, id: u64, response: Response) {
        let _ = write_frame(&mut self.stream, &ResponseEnvelope { id, response }, &mut self.scratch);
    }

    /// Answers `count` requests with `answer`, then returns.
    pub(crate) fn answer(&mut self, count: usize, answer: impl Fn(&Request) -> Response) {
        for _ in 0..count {
            let envelope = self.request().expect("a request");
            self.reply(envelope.id, answer(&envelope.request));
        }
    }

    /// Answers requests until the client closes.
    pub(crate) fn answer_all(&mut self, answer: impl Fn(&Request) -> Response) {
        while let Some(envelope) = self.request() {
            self.reply(envelope.id, answer(&envelope.request));
        }
    }
}

/// The listening stand-in. Dropping it does not wait; call [`FakeDaemon::finish`] to see the
/// scripts' panics.
pub(crate) struct FakeDaemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    /// Listens and runs `scripts`, one per accepted connection in the order they come, each
    /// on its own thread.
    pub(crate) fn start(scripts: Vec<Script>) -> FakeDaemon {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let socket = dir.path().join("hintsd.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake socket");
        let thread = thread::spawn(move || {
            let mut running = Vec::new();
            for script in scripts {
                let stream = accept_within(&listener, ACCEPT_WAIT_MAX);
                running.push(thread::spawn(move || {
                    script(&mut Peer { stream, body: Vec::new(), scratch: Vec::new() });
                }));
            }
            for script in running {
                script.join().expect("a fake daemon script panicked");
            }
        });
        FakeDaemon { _dir: dir, socket, thread: Some(thread) }
    }

    /// The socket a client should use.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Waits for every script to finish, and fails the test if one panicked.
    pub(crate) fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("a fake daemon script panicked");
        }
    }
}

/// How long the fake waits for a connection a script expects before it fails the test.
const ACCEPT_WAIT_MAX: Duration = Duration::from_secs(10);

fn accept_within(listener: &UnixListener, wait: Duration) -> UnixStream {
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let started = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("a blocking stream");
                return stream;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && started.elapsed() < wait => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(err) => panic!("no connection came for the next script: {err}"),
        }
    }
}

/// A simple daemon's answers: ping, get (always absent), put (a fixed stamp), stats (none).
pub(crate) fn simple_answer(request: &Request) -> Response {
    match request {
        Request::Ping => Response::Pong,
        Request::Get { .. } => Response::Value(None),
        Request::Put { .. } => Response::Stored(hints_proto::Stamp { secs: 1_700_000_000, micros: 42 }),
        _ => Response::Stats(Vec::new()),
    }
}
