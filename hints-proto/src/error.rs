//! Stable error codes and the error reply that carries them.
//!
//! A code is a `u16` on the wire, never an enum index, so a client can read a code that was
//! added after it was built. Codes are never renumbered or reused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::ERROR_MESSAGE_BYTES_MAX;

/// A stable error number. Known codes are the associated constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// Bytes that are not a frame, or a frame whose body did not decode.
    pub const BAD_FRAME: ErrorCode = ErrorCode(1);
    /// A frame's length prefix is over [`crate::limits::FRAME_BYTES_MAX`].
    pub const FRAME_TOO_LARGE: ErrorCode = ErrorCode(2);
    /// The client speaks another protocol version.
    pub const VERSION_MISMATCH: ErrorCode = ErrorCode(3);
    /// The first frame was not a hello.
    pub const HELLO_EXPECTED: ErrorCode = ErrorCode(4);
    /// The request names an operation this daemon does not know.
    pub const UNKNOWN_REQUEST: ErrorCode = ErrorCode(5);
    /// A database name is empty, too long or has a character outside `[a-z0-9_-]`.
    pub const BAD_DB_NAME: ErrorCode = ErrorCode(6);
    /// A key is empty or longer than [`crate::limits::KEY_BYTES_MAX`].
    pub const BAD_KEY: ErrorCode = ErrorCode(7);
    /// A value is longer than [`crate::limits::VALUE_BYTES_MAX`].
    pub const VALUE_TOO_LARGE: ErrorCode = ErrorCode(8);
    /// A request argument is out of range (a scan limit of 0, say).
    pub const BAD_ARGUMENT: ErrorCode = ErrorCode(9);
    /// The peer's uid and gid are not on the daemon's allow list.
    pub const NOT_ALLOWED: ErrorCode = ErrorCode(10);
    /// The daemon is at its connection limit.
    pub const TOO_MANY_CONNECTIONS: ErrorCode = ErrorCode(11);
    /// The database's actor failed while handling this request; it has been restarted.
    pub const DATABASE_FAILED: ErrorCode = ErrorCode(12);
    /// The database's mailbox stayed full past the daemon's wait.
    pub const BUSY: ErrorCode = ErrorCode(13);
    /// The daemon is shutting down.
    pub const SHUTTING_DOWN: ErrorCode = ErrorCode(14);
    /// The key does not exist (used where a missing key is an error, not an answer).
    pub const NOT_FOUND: ErrorCode = ErrorCode(15);
    /// Something inside the daemon went wrong that is not the client's doing.
    pub const INTERNAL: ErrorCode = ErrorCode(16);
    /// The daemon already runs as many databases as it may (`databases_max`).
    pub const TOO_MANY_DATABASES: ErrorCode = ErrorCode(17);
    /// The daemon does not offer what was asked (a shared-memory ring, when `ring_bytes = 0`);
    /// the connection goes on.
    pub const NOT_OFFERED: ErrorCode = ErrorCode(18);

    /// A short name for logs and CLI output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BAD_FRAME => "bad frame",
            ErrorCode::FRAME_TOO_LARGE => "frame too large",
            ErrorCode::VERSION_MISMATCH => "protocol version mismatch",
            ErrorCode::HELLO_EXPECTED => "hello expected",
            ErrorCode::UNKNOWN_REQUEST => "unknown request",
            ErrorCode::BAD_DB_NAME => "bad database name",
            ErrorCode::BAD_KEY => "bad key",
            ErrorCode::VALUE_TOO_LARGE => "value too large",
            ErrorCode::BAD_ARGUMENT => "bad argument",
            ErrorCode::NOT_ALLOWED => "not allowed",
            ErrorCode::TOO_MANY_CONNECTIONS => "too many connections",
            ErrorCode::DATABASE_FAILED => "database failed",
            ErrorCode::BUSY => "busy",
            ErrorCode::SHUTTING_DOWN => "shutting down",
            ErrorCode::NOT_FOUND => "not found",
            ErrorCode::INTERNAL => "internal error",
            ErrorCode::TOO_MANY_DATABASES => "too many databases",
            ErrorCode::NOT_OFFERED => "not offered",
            _ => "unknown error code",
        }
    }

    /// True for errors that say the request itself was wrong, so resending it cannot help.
    pub fn is_bad_request(self) -> bool {
        matches!(
            self,
            ErrorCode::BAD_FRAME
                | ErrorCode::FRAME_TOO_LARGE
                | ErrorCode::UNKNOWN_REQUEST
                | ErrorCode::BAD_DB_NAME
                | ErrorCode::BAD_KEY
                | ErrorCode::VALUE_TOO_LARGE
                | ErrorCode::BAD_ARGUMENT
        )
    }

    /// True for errors that refuse the client as a whole (credentials, version, limits).
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorCode::NOT_ALLOWED
                | ErrorCode::VERSION_MISMATCH
                | ErrorCode::HELLO_EXPECTED
                | ErrorCode::TOO_MANY_CONNECTIONS
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// An error answer: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReply {
    /// Builds a reply, cutting the message to [`ERROR_MESSAGE_BYTES_MAX`] at a char boundary.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        let mut message = message.into();
        if message.len() > ERROR_MESSAGE_BYTES_MAX {
            let mut end = ERROR_MESSAGE_BYTES_MAX;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        ErrorReply { code, message }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for ErrorReply {}
