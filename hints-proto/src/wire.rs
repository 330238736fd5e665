//! postcard's encoding of the messages on the hot path (a get, a put, a ratelimit and a seen,
//! and their replies), read and written by hand, byte for byte as postcard reads and writes
//! them.
//!
//! Why by hand: through serde, every integer went through a stack buffer and a call to
//! `memcpy` to be written, and every byte of one through a flavor's bounds check to be read
//! (the instructions saved are in ARCHITECTURE.md). Everything else still goes through
//! postcard. The oracle tests in `request_view.rs` and `reply_view.rs` hold this module to
//! postcard: every message written here is postcard's bytes, and any body, good or damaged,
//! reads here exactly as it reads there.

use std::mem::MaybeUninit;

use crate::db_name::name_from_bytes;
use crate::frame::FrameError;
use crate::limits::{FRAME_BYTES_MAX, FRAME_PREFIX_BYTES};
use crate::message::Stamp;

/// Why a body did not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The body ended inside a field.
    End,
    /// A varint was longer than its type allows, or overflowed it.
    BadVarint,
    /// An option's tag was neither 0 nor 1.
    BadOption,
    /// A `bool` was neither 0 nor 1.
    BadBool,
    /// A text field was not UTF-8.
    BadUtf8,
}

impl From<WireError> for FrameError {
    fn from(err: WireError) -> FrameError {
        let why = match err {
            WireError::End => "the body ended inside a field",
            WireError::BadVarint => "an integer's encoding is too long for its type",
            WireError::BadOption => "an option's tag is neither 0 nor 1",
            WireError::BadBool => "a boolean is neither 0 nor 1",
            WireError::BadUtf8 => "a text field is not UTF-8",
        };
        FrameError::Decode(why.to_owned())
    }
}

/// How long a varint of one integer type may be.
#[derive(Clone, Copy)]
struct VarintLimits {
    bytes_max: usize,
    /// The largest last byte of a varint `bytes_max` long (postcard's rule: the bits past the
    /// type's width must be zero).
    last_byte_max: u8,
}

const U64_VARINT: VarintLimits = VarintLimits { bytes_max: 10, last_byte_max: 0x01 };
const U32_VARINT: VarintLimits = VarintLimits { bytes_max: 5, last_byte_max: 0x0F };
/// A length's (postcard writes a `usize`).
#[cfg(target_pointer_width = "64")]
const USIZE_VARINT: VarintLimits = U64_VARINT;
#[cfg(target_pointer_width = "32")]
const USIZE_VARINT: VarintLimits = U32_VARINT;

/// Reads fields from the front of a body.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// A `u64`.
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        self.varint(U64_VARINT)
    }

    /// A `u32` (an enum's variant index, a stamp's microseconds).
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        // The last byte's check keeps the value within 32 bits.
        self.varint(U32_VARINT).map(|value| value as u32)
    }

    #[inline]
    fn varint(&mut self, limits: VarintLimits) -> Result<u64, WireError> {
        // Lengths, variants and tags are almost all under 128: one byte.
        match self.bytes.split_first() {
            Some((&byte, rest)) if byte < 0x80 => {
                self.bytes = rest;
                Ok(u64::from(byte))
            }
            _ => self.long_varint(limits),
        }
    }

    fn long_varint(&mut self, VarintLimits { bytes_max, last_byte_max }: VarintLimits) -> Result<u64, WireError> {
        let mut value = 0;
        for index in 0..bytes_max.min(self.bytes.len()) {
            let byte = self.bytes[index];
            value |= u64::from(byte & 0x7F) << (7 * index);
            if byte < 0x80 {
                if index == bytes_max - 1 && byte > last_byte_max {
                    return Err(WireError::BadVarint);
                }
                self.bytes = &self.bytes[index + 1..];
                return Ok(value);
            }
        }
        Err(if self.bytes.len() < bytes_max { WireError::End } else { WireError::BadVarint })
    }

    /// A stamp: its seconds, then its microseconds.
    #[inline]
    pub(crate) fn stamp(&mut self) -> Result<Stamp, WireError> {
        Ok(Stamp { secs: self.u64()?, micros: self.u32()? })
    }

    /// A byte string: its length, then its bytes, borrowed.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint(USIZE_VARINT)?;
        let len = usize::try_from(len).map_err(|_| WireError::End)?;
        let Some((taken, rest)) = self.bytes.split_at_checked(len) else { return Err(WireError::End) };
        self.bytes = rest;
        Ok(taken)
    }

    /// A string, borrowed.
    #[inline]
    pub(crate) fn text(&mut self) -> Result<&'a str, WireError> {
        self.bytes().and_then(|bytes| std::str::from_utf8(bytes).map_err(|_| WireError::BadUtf8))
    }

    /// A stamp if one follows its option's tag.
    #[inline]
    pub(crate) fn optional_stamp(&mut self) -> Result<Option<Stamp>, WireError> {
        if self.option_tag()? { self.stamp().map(Some) } else { Ok(None) }
    }

    /// A `bool`: one byte, 0 or 1.
    #[inline]
    pub(crate) fn bool(&mut self) -> Result<bool, WireError> {
        self.zero_or_one(WireError::BadBool)
    }

    /// An `f64`: its bits, eight bytes little-endian.
    #[inline]
    pub(crate) fn f64(&mut self) -> Result<f64, WireError> {
        let Some((bits, rest)) = self.bytes.split_first_chunk::<8>() else { return Err(WireError::End) };
        self.bytes = rest;
        Ok(f64::from_bits(u64::from_le_bytes(*bits)))
    }

    /// A database name, borrowed: a string on the wire.
    #[inline]
    pub(crate) fn name(&mut self) -> Result<&'a str, WireError> {
        self.bytes().and_then(|bytes| name_from_bytes(bytes).ok_or(WireError::BadUtf8))
    }

    /// An option's tag, read: whether a value follows.
    #[inline]
    pub(crate) fn option_tag(&mut self) -> Result<bool, WireError> {
        self.zero_or_one(WireError::BadOption)
    }

    /// One byte that must be 0 or 1 (`bad` if it is not).
    #[inline]
    fn zero_or_one(&mut self, bad: WireError) -> Result<bool, WireError> {
        let Some((&byte, rest)) = self.bytes.split_first() else { return Err(WireError::End) };
        self.bytes = rest;
        match byte {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad),
        }
    }

    /// Ends the body: nothing may be left.
    ///
    /// # Errors
    /// [`FrameError::TrailingBytes`].
    pub(crate) fn finish(self) -> Result<(), FrameError> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(FrameError::TrailingBytes { extra }),
        }
    }
}

/// Writes fields into a frame's body, in room made for them beforehand: a byte written is a
/// store and a bounds check, where a `Vec::push` also reread and rewrote the vector's length.
pub(crate) struct Writer<'a> {
    room: &'a mut [MaybeUninit<u8>],
    written: usize,
}

impl Writer<'_> {
    /// One byte (an option's tag).
    ///
    /// # Panics
    /// Past the room made (the caller's bound on the body was wrong).
    #[inline]
    pub(crate) fn byte(&mut self, byte: u8) {
        self.room[self.written].write(byte);
        self.written += 1;
    }

    /// A `u64` or a `u32` (their varints are the same).
    #[inline]
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    /// A stamp: its seconds, then its microseconds.
    #[inline]
    pub(crate) fn stamp(&mut self, stamp: Stamp) {
        self.varint(stamp.secs);
        self.varint(stamp.micros.into());
    }

    /// A stamp if there is one, after its option's tag.
    #[inline]
    pub(crate) fn optional_stamp(&mut self, stamp: Option<Stamp>) {
        match stamp {
            None => self.byte(0),
            Some(stamp) => {
                self.byte(1);
                self.stamp(stamp);
            }
        }
    }

    /// An `f64`: its bits, eight bytes little-endian.
    #[inline]
    pub(crate) fn f64(&mut self, value: f64) {
        value.to_bits().to_le_bytes().into_iter().for_each(|byte| self.byte(byte));
    }

    /// A byte string or a string: its length, then its bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        let to = &mut self.room[self.written..self.written + bytes.len()];
        // SAFETY: `to` is exactly `bytes.len()` long (the slicing above checked it), and it is
        // room this writer holds exclusively, so it cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), to.as_mut_ptr().cast::<u8>(), bytes.len()) };
        self.written += bytes.len();
    }
}

/// The most bytes a varint takes.
pub(crate) const VARINT_BYTES_MAX: usize = U64_VARINT.bytes_max;

/// Appends one frame to `out` whose body `write` writes, in room made first for
/// `body_bytes_max` bytes.
///
/// # Errors
/// [`FrameError::TooLarge`] when the body is over [`FRAME_BYTES_MAX`]; `out` then holds what it
/// held (its capacity may have grown).
///
/// # Panics
/// When `write` writes more than `body_bytes_max`: the bound must count every varint at its
/// longest ([`VARINT_BYTES_MAX`]).
#[inline]
pub(crate) fn write_frame(
    out: &mut Vec<u8>,
    body_bytes_max: usize,
    write: impl FnOnce(&mut Writer<'_>),
) -> Result<(), FrameError> {
    out.reserve(FRAME_PREFIX_BYTES + body_bytes_max);
    let (prefix, room) = out.spare_capacity_mut().split_at_mut(FRAME_PREFIX_BYTES);
    let mut body = Writer { room: &mut room[..body_bytes_max], written: 0 };
    write(&mut body);
    let len = body.written;
    if len > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { len });
    }
    for (to, byte) in prefix.iter_mut().zip((len as u32).to_le_bytes()) {
        to.write(byte);
    }
    // SAFETY: the prefix and the `len` bytes of body after it were written just above, and
    // `reserve` made room for them.
    unsafe { out.set_len(out.len() + FRAME_PREFIX_BYTES + len) };
    Ok(())
}

/// How the oracle tests in `request_view.rs` and `reply_view.rs` damage a body.
#[cfg(test)]
pub(crate) mod damage {
    /// Damages `body` as `kind` says (0: not at all, 1: cut short, 2: one byte changed, 3: one
    /// byte added), at `at` within its first `span` bytes.
    pub(crate) fn damage(body: &mut Vec<u8>, kind: u8, at: proptest::sample::Index, span: usize, byte: u8) {
        match kind {
            1 => body.truncate(at.index(span)),
            2 => {
                let i = at.index(span);
                body[i] ^= byte | 1;
            }
            3 => body.push(byte),
            _ => {}
        }
    }

    /// Every body that differs from `body` in one byte, with that byte's place and value.
    pub(crate) fn one_byte_changes(body: &[u8]) -> impl Iterator<Item = (usize, u8, Vec<u8>)> + '_ {
        (0..body.len()).flat_map(move |at| {
            (0..=u8::MAX).map(move |byte| {
                let mut changed = body.to_vec();
                changed[at] = byte;
                (at, byte, changed)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Integers read as postcard reads them, whatever the bytes, and write as it writes them.
        #[test]
        fn varints_are_postcards(bytes in proptest::collection::vec(any::<u8>(), 0..12), value in any::<u64>()) {
            let ours = Reader::new(&bytes).u64().ok();
            prop_assert_eq!(ours, postcard::take_from_bytes::<u64>(&bytes).ok().map(|(value, _)| value));
            let ours = Reader::new(&bytes).u32().ok();
            prop_assert_eq!(ours, postcard::take_from_bytes::<u32>(&bytes).ok().map(|(value, _)| value));
            let mut frame = Vec::new();
            write_frame(&mut frame, VARINT_BYTES_MAX, |body| body.varint(value)).unwrap();
            let written = &frame[FRAME_PREFIX_BYTES..];
            prop_assert_eq!(written, &postcard::to_allocvec(&value).unwrap()[..]);
            prop_assert_eq!(&frame[..FRAME_PREFIX_BYTES], &(written.len() as u32).to_le_bytes());
        }
    }

    #[test]
    fn a_body_over_the_frame_limit_is_refused_and_leaves_what_was_written_before() {
        let mut out = b"before".to_vec();
        let big = vec![7; FRAME_BYTES_MAX];
        let refused = write_frame(&mut out, 2 * VARINT_BYTES_MAX + big.len(), |body| {
            body.varint(1);
            body.bytes(&big);
        });
        assert!(matches!(refused, Err(FrameError::TooLarge { len }) if len > FRAME_BYTES_MAX), "{refused:?}");
        assert_eq!(out, b"before");
        write_frame(&mut out, 2 * VARINT_BYTES_MAX + 3, |body| body.bytes(b"abc")).unwrap();
        assert_eq!(out, b"before\x04\0\0\0\x03abc");
    }

    #[test]
    fn a_varint_too_long_or_too_wide_is_refused_and_a_short_one_ends() {
        assert_eq!(Reader::new(&[0x80; 10]).u64(), Err(WireError::BadVarint));
        assert_eq!(Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x10]).u32(), Err(WireError::BadVarint));
        assert_eq!(Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).u32(), Ok(u32::MAX));
        assert_eq!(Reader::new(&[0x80, 0x80]).u64(), Err(WireError::End));
        assert_eq!(Reader::new(&[3, b'a']).bytes(), Err(WireError::End));
        assert_eq!(Reader::new(&[2]).option_tag(), Err(WireError::BadOption));
    }
}
