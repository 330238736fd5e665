//! The floor: a bare Unix-socket echo between processes. Each request is answered with a reply
//! the size of a get's; pipelined, N requests are written before the N replies are read.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

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

/// The echo server: a thread per connection, blocked in read; it answers every whole request
/// a read brought with one write, so pipelined requests cost one read and one write a batch.
pub fn echo_server(socket: &Path) -> Res<()> {
    let listener = UnixListener::bind(socket)?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        // Named, so that a profile tells the server's threads from its clients'.
        std::thread::Builder::new().name("echo-server".into()).spawn(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            let mut replies = Vec::new();
            let mut pending = 0;
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => pending += read,
                }
                replies.resize(pending / REQUEST_BYTES * REPLY_BYTES, 9);
                pending %= REQUEST_BYTES;
                if stream.write_all(&replies).is_err() {
                    break;
                }
            }
        })?;
    }
    Ok(())
}
