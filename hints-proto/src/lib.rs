//! hintsd's wire protocol: the one crate that knows how bytes on the socket map to messages.
//!
//! It owns the message types (with their serde derives), length-prefixed postcard framing, the
//! hello handshake, the named limits every side checks, the stable error codes, and the rule for
//! finding the daemon's socket. It knows no tokio, no actix and no I/O beyond `std::io` traits.
//!
//! # Layout
//! - [`limits`]: every size bound, as named constants with their relations asserted.
//! - [`frame`]: `u32` little-endian length + postcard body; sans-IO encode and decode.
//! - [`hello`]: the first frame each way, carrying [`PROTOCOL_VERSION`].
//! - [`message`]: `Request`/`Response` and the envelopes that carry a request id.
//! - [`error`]: [`ErrorCode`] (stable numbers) and [`ErrorReply`].
//! - [`db_name`]: database names (Exim's and any other of 1-64 `[a-z0-9_-]`).
//! - [`duration`]: Exim's time syntax (`30d`, `1d12h`), shared by the CLI and the config.
//! - [`socket_path`]: where a client looks for the daemon and where the daemon listens.
//! - [`ring`]: the shared-memory ring's algorithm (one producer, one consumer), over memory it is
//!   handed; model-checked with loom (`tests/loom_ring.rs`).
//!
//! # Wire stability
//! Enum variants are append-only and struct fields never change; `tests/golden.rs` pins the
//! bytes of every variant. A change of meaning takes a new variant and a new protocol version.

pub mod condition;
pub mod db_name;
pub mod duration;
pub mod error;
pub mod exim;
pub mod frame;
pub mod hello;
pub mod limits;
pub mod message;
pub mod reply_view;
pub mod request_view;
pub mod ring;
pub mod socket_path;
pub mod text;
mod wire;

pub use db_name::DbName;
pub use error::{ErrorCode, ErrorReply};
pub use hello::{Hello, HelloReply, PROTOCOL_MAGIC, PROTOCOL_VERSION};
pub use message::{DbStats, OpCount, Record, Request, RequestEnvelope, Response, ResponseEnvelope, ScanPage, Stamp};
pub use reply_view::{RateReply, RecordView, ResponseView};
pub use request_view::{OutgoingRequest, RequestView};
