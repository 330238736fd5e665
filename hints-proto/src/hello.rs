//! The handshake: the first frame from the client is a [`Hello`], answered by a [`HelloReply`].
//!
//! `Hello` is frozen: its fields never change, so any daemon can read any client's hello and
//! answer a version mismatch in words rather than with a decode error.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ErrorReply};
use crate::frame::decode_body;
use crate::limits::CLIENT_NAME_BYTES_MAX;

/// The first four bytes of every hello body.
pub const PROTOCOL_MAGIC: [u8; 4] = *b"HNTS";
/// The protocol this crate speaks. Bumped when a message changes meaning.
pub const PROTOCOL_VERSION: u16 = 1;

/// The client's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL_MAGIC`].
    pub magic: [u8; 4],
    pub protocol_version: u16,
    /// Who is calling, for the daemon's logs (`exim/1234`, `hintsctl`).
    pub client_name: String,
}

/// The daemon's answer to a hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// 0: go ahead.
    Accepted { protocol_version: u16, daemon_version: String },
    /// 1: the connection is refused and will be closed.
    Refused(ErrorReply),
}

impl Hello {
    /// The hello this crate's clients send.
    pub fn new(client_name: &str) -> Hello {
        let mut client_name = client_name.to_owned();
        if client_name.len() > CLIENT_NAME_BYTES_MAX {
            let mut end = CLIENT_NAME_BYTES_MAX;
            while !client_name.is_char_boundary(end) {
                end -= 1;
            }
            client_name.truncate(end);
        }
        Hello { magic: PROTOCOL_MAGIC, protocol_version: PROTOCOL_VERSION, client_name }
    }

    /// Decodes and checks a client's first frame body.
    ///
    /// # Errors
    /// [`ErrorCode::HELLO_EXPECTED`] for anything that is not a hello,
    /// [`ErrorCode::VERSION_MISMATCH`] for another protocol version, and
    /// [`ErrorCode::BAD_ARGUMENT`] for an overlong client name.
    pub fn decode(body: &[u8]) -> Result<Hello, ErrorReply> {
        let not_hello = || {
            ErrorReply::new(
                ErrorCode::HELLO_EXPECTED,
                "the first frame must be a hello (is this a hintsd client of the same protocol?)",
            )
        };
        if body.first_chunk::<4>() != Some(&PROTOCOL_MAGIC) {
            return Err(not_hello());
        }
        let hello: Hello = decode_body(body).map_err(|_| not_hello())?;
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(ErrorReply::new(
                ErrorCode::VERSION_MISMATCH,
                format!(
                    "client speaks protocol version {}, this daemon speaks {PROTOCOL_VERSION}",
                    hello.protocol_version
                ),
            ));
        }
        if hello.client_name.len() > CLIENT_NAME_BYTES_MAX {
            return Err(ErrorReply::new(
                ErrorCode::BAD_ARGUMENT,
                format!("client name over {CLIENT_NAME_BYTES_MAX} bytes"),
            ));
        }
        Ok(hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(hello: &Hello) -> Vec<u8> {
        postcard::to_stdvec(hello).unwrap()
    }

    #[test]
    fn a_current_hello_is_accepted() {
        let hello = Hello::new("test");
        assert_eq!(Hello::decode(&body_of(&hello)).unwrap(), hello);
    }

    #[test]
    fn another_version_is_refused_by_number() {
        let hello = Hello { protocol_version: PROTOCOL_VERSION + 1, ..Hello::new("new") };
        let err = Hello::decode(&body_of(&hello)).unwrap_err();
        assert_eq!(err.code, ErrorCode::VERSION_MISMATCH);
        assert!(err.message.contains(&(PROTOCOL_VERSION + 1).to_string()), "{err}");
    }

    #[test]
    fn anything_else_first_is_hello_expected() {
        for body in [&b""[..], b"\x01\x00", b"HNT", b"XNTS\x01\x00"] {
            assert_eq!(Hello::decode(body).unwrap_err().code, ErrorCode::HELLO_EXPECTED);
        }
    }
}
