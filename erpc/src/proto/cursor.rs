//! A bounds-checked reader over a frame, shared by the protocol decoders.

use bytes::{Buf, Bytes};

use super::ProtoError;

/// Reads fields off a frame; every read past the end is a [`ProtoError::Malformed`]. Fields
/// are borrowed slices; only [`rest`](Self::rest) makes a `Bytes` (the body, zero-copy).
pub(crate) struct Cursor {
    proto: &'static str,
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(proto: &'static str, buf: Bytes) -> Self {
        Cursor { proto, buf, pos: 0 }
    }

    #[cold]
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> ProtoError {
        ProtoError::Malformed {
            proto: self.proto,
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, ProtoError> {
        let b = self.bytes(1, field)?[0];
        Ok(b)
    }

    #[inline]
    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, ProtoError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize, field: &str) -> Result<&[u8], ProtoError> {
        if self.remaining() < n {
            return Err(self.short(n, field));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    /// Everything not read yet (advancing the frame's own handle: no reference count taken).
    pub(crate) fn rest(self) -> Bytes {
        let mut buf = self.buf;
        buf.advance(self.pos);
        buf
    }

    #[cold]
    fn short(&self, n: usize, field: &str) -> ProtoError {
        self.malformed(format!("{field} needs {n} bytes but only {} remain", self.remaining()))
    }
}
