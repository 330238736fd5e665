//! What an MTA links to talk to hintsd: a blocking client for worker processes, an async one
//! for tokio programs, and the pieces `hintsctl` is built from.
//!
//! # Which client
//! - [`Client`] (blocking) is for MTA workers: it starts no thread and no runtime, opens its
//!   connection on the first call, notices a `fork()` (the child connects anew and never
//!   writes to its parent's socket), writes with `MSG_NOSIGNAL` so a dead daemon cannot kill
//!   a C host with `SIGPIPE`, and resends an idempotent call once when a kept connection
//!   turns out to have died with a daemon restart (never one that counts or holds: a
//!   ratelimit event, a counter add, a serialize slot or a lock).
//! - [`AsyncClient`] (feature `tokio`, on by default) has the same calls and rules.
//!
//! A serialize slot and an exclusive session belong to the client's connection, and go when
//! it is made anew (a daemon restart, a `fork()`, a timed-out call): see
//! [`Client#slots-and-sessions-belong-to-the-connection`].
//!
//! Every call has one overall timeout ([`ClientConfig::timeout`], 1 s by default) and then
//! fails with [`Error::Unavailable`], which an MTA should read as "no hint".
//!
//! # Layout
//! - [`config`]: [`ClientConfig`] and the socket rule (shared with the daemon via hints-proto).
//! - [`error`]: [`Error`], one variant per kind of failure.
//! - `ops`: the one mapping between typed calls and `Request`/`Response` (and the typed
//!   results: [`CasOutcome`], [`RateOutcome`], [`SeenOutcome`], [`GreylistOutcome`],
//!   [`SlotOutcome`]).
//! - `codec`: the sans-IO half of a connection both clients share: frames, ids, handshake,
//!   the resend rule.
//! - [`blocking`] and [`nonblocking`]: the two clients, which only move bytes.
//! - `process`: the cheap fork check (a token in a page the kernel wipes in every child).
//! - `ring`: the blocking client's end of a shared-memory ring ([`ClientConfig::ring`]).
//! - [`ffi`]: the C library (`libhints_client.so` and `.a`) over the blocking client.
//!
//! ```no_run
//! use hints_client::{Client, ClientConfig, DbName, Error};
//!
//! let mut client = Client::new(ClientConfig::from_environment());
//! let retry = DbName::new("retry")?;
//! match client.get(&retry, b"T:mx.example.com:192.0.2.1") {
//!     Ok(Some(record)) => println!("{} bytes, written at {}", record.value.len(), record.stamp.secs),
//!     Ok(None) => println!("no retry record"),
//!     Err(Error::Unavailable { .. }) => println!("no daemon: carry on without hints"),
//!     Err(err) => return Err(err.into()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod blocking;
mod codec;
pub mod config;
pub mod error;
pub mod ffi;
#[cfg(feature = "tokio")]
pub mod nonblocking;
mod ops;
mod process;
mod ring;

pub use blocking::Client;
pub use config::{ClientConfig, DEFAULT_TIMEOUT};
pub use error::Error;
#[cfg(feature = "tokio")]
pub use nonblocking::Client as AsyncClient;
pub use ops::{CasOutcome, GreylistOutcome, RateOutcome, SeenOutcome, SlotOutcome};

/// Exim's hints record layouts (retry, callout, wait, seen, serialize, EHLO, ratelimit):
/// encode and decode the values Exim stores, so a caller can read and write them byte-exact.
pub use hints_proto::exim;

/// The wire types the calls take and return, so a caller needs no direct hints-proto import.
pub use hints_proto::{
    DbName, DbStats, ErrorCode, ErrorReply, OpCount, Record, RecordView, Request, Response, ResponseView, ScanPage,
    Stamp,
};

#[cfg(test)]
mod fake_daemon;
