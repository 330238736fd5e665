//! Length-prefixed postcard frames: a `u32` little-endian body length, then the body.
//!
//! Sans-IO at the core ([`encode_frame`], [`split_frame`], [`decode_body`]) with two small
//! blocking helpers over `std::io` for clients and tests. The length is checked against
//! [`FRAME_BYTES_MAX`] before any buffer for the body is allocated.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::limits::{FRAME_BYTES_MAX, FRAME_PREFIX_BYTES};

/// What can be wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix (or an encoded message) is over [`FRAME_BYTES_MAX`].
    TooLarge { len: usize },
    /// The body did not decode as the expected message.
    Decode(String),
    /// The body decoded but left bytes over.
    TrailingBytes { extra: usize },
    /// The message could not be encoded.
    Encode(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len } => {
                write!(f, "frame of {len} bytes is over the limit of {FRAME_BYTES_MAX}")
            }
            FrameError::Decode(why) => write!(f, "frame did not decode: {why}"),
            FrameError::TrailingBytes { extra } => {
                write!(f, "frame decoded with {extra} bytes left over")
            }
            FrameError::Encode(why) => write!(f, "message did not encode: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame holding `msg` to `out`.
///
/// # Errors
/// [`FrameError::TooLarge`] when the encoded body would pass [`FRAME_BYTES_MAX`]; `out` is
/// then left as it was.
pub fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_BYTES]);
    if let Err(err) = postcard::serialize_with_flavor(msg, AppendFlavor(out)) {
        // postcard fails to encode only types we never put on the wire.
        out.truncate(start);
        return Err(FrameError::Encode(err.to_string()));
    }
    let len = out.len() - start - FRAME_PREFIX_BYTES;
    if len > FRAME_BYTES_MAX {
        out.truncate(start);
        return Err(FrameError::TooLarge { len });
    }
    out[start..start + FRAME_PREFIX_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// A postcard output that appends to a caller's vector, so frames are built in place.
struct AppendFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Reads a length prefix, refusing one over [`FRAME_BYTES_MAX`].
///
/// # Errors
/// [`FrameError::TooLarge`].
pub fn body_len(prefix: [u8; FRAME_PREFIX_BYTES]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { len });
    }
    Ok(len)
}

/// Finds the first whole frame in `buf`.
///
/// # Returns
/// `Ok(None)` when more bytes are needed; `Ok(Some((body, consumed)))` for a whole frame.
///
/// # Errors
/// [`FrameError::TooLarge`] as soon as the prefix is readable, before the body has arrived.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(prefix) = buf.first_chunk::<FRAME_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let len = body_len(*prefix)?;
    let end = FRAME_PREFIX_BYTES + len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((&buf[FRAME_PREFIX_BYTES..end], end)))
}

/// Decodes a whole frame body as `T`, refusing bytes left over.
///
/// # Errors
/// [`FrameError::Decode`] or [`FrameError::TrailingBytes`].
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (msg, rest) = decode_front::<T>(body)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(msg)
}

/// Decodes a `T` from the front of `bytes`, and returns it with the bytes after it.
///
/// # Errors
/// [`FrameError::Decode`].
pub fn decode_front<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), FrameError> {
    postcard::take_from_bytes::<T>(bytes).map_err(|err| FrameError::Decode(err.to_string()))
}

/// Writes one frame to a blocking writer. `scratch` is reused between calls.
///
/// # Errors
/// I/O errors, and [`io::ErrorKind::InvalidInput`] for a message over the frame limit.
pub fn write_frame<T: Serialize>(writer: &mut impl Write, msg: &T, scratch: &mut Vec<u8>) -> io::Result<()> {
    scratch.clear();
    encode_frame(msg, scratch).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    writer.write_all(scratch)
}

/// Reads one frame body from a blocking reader into `body` (replacing its contents).
///
/// # Errors
/// I/O errors (`UnexpectedEof` when the peer closed), and [`io::ErrorKind::InvalidData`] for a
/// prefix over the frame limit, which is refused before the body is read.
pub fn read_frame(reader: &mut impl Read, body: &mut Vec<u8>) -> io::Result<()> {
    let mut prefix = [0; FRAME_PREFIX_BYTES];
    reader.read_exact(&mut prefix)?;
    let len = body_len(prefix).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    body.clear();
    body.resize(len, 0);
    reader.read_exact(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_reports_what_it_consumed() {
        let mut buf = Vec::new();
        encode_frame(&(7u64, "abc"), &mut buf).unwrap();
        encode_frame(&1u8, &mut buf).unwrap();
        let (body, used) = split_frame(&buf).unwrap().unwrap();
        assert_eq!(decode_body::<(u64, String)>(body).unwrap(), (7, "abc".to_owned()));
        let (body, used2) = split_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(decode_body::<u8>(body).unwrap(), 1);
        assert_eq!(used + used2, buf.len());
    }

    #[test]
    fn half_a_frame_asks_for_more() {
        let mut buf = Vec::new();
        encode_frame(&"hello", &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert_eq!(split_frame(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn an_oversized_prefix_is_refused_before_the_body_arrives() {
        let prefix = ((FRAME_BYTES_MAX + 1) as u32).to_le_bytes();
        assert_eq!(split_frame(&prefix), Err(FrameError::TooLarge { len: FRAME_BYTES_MAX + 1 }));
        let mut reader = &prefix[..];
        let err = read_frame(&mut reader, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn an_oversized_message_is_not_encoded() {
        let mut buf = vec![9];
        let big = vec![0u8; FRAME_BYTES_MAX + 1];
        let err = encode_frame(&serde_bytes::Bytes::new(&big), &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert_eq!(buf, vec![9]);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        assert_eq!(decode_body::<u8>(&[1, 2]), Err(FrameError::TrailingBytes { extra: 1 }));
    }
}
