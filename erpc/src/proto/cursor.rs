//! A bounds-checked reader over a frame, shared by the protocol decoders.

use bytes::Bytes;

use super::ProtoError;

/// Reads fields off a frame; every read past the end is a [`ProtoError::Malformed`].
pub(crate) struct Cursor {
    proto: &'static str,
    buf: Bytes,
}

impl Cursor {
    pub(crate) fn new(proto: &'static str, buf: Bytes) -> Self {
        Cursor { proto, buf }
    }

    pub(crate) fn malformed(&self, reason: impl Into<String>) -> ProtoError {
        ProtoError::Malformed {
            proto: self.proto,
            reason: reason.into(),
        }
    }

    fn need(&self, n: usize, field: &str) -> Result<(), ProtoError> {
        if self.buf.len() < n {
            return Err(self.malformed(format!(
                "{field} needs {n} bytes but only {} remain",
                self.buf.len()
            )));
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, ProtoError> {
        self.need(1, field)?;
        let b = self.buf[0];
        self.buf = self.buf.slice(1..);
        Ok(b)
    }

    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, ProtoError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &str) -> Result<Bytes, ProtoError> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
    }

    pub(crate) fn rest(self) -> Bytes {
        self.buf
    }
}
