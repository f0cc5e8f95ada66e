//! The outer framing jsonproto and pbproto share:
//! `u32 size (bytes after this field) | u8 xfer_len | xfer ids | xfer(document)`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Cursor, ProtoError};
use crate::xfer::XferPipe;

/// Appends a frame around `document`, packing it through `pipe`.
pub(crate) fn encode(
    proto: &'static str,
    pipe: &XferPipe,
    document: Bytes,
    dst: &mut BytesMut,
    max_size: usize,
) -> Result<(), ProtoError> {
    let document = if pipe.is_empty() {
        document
    } else {
        pipe.pack(document)?
    };
    let size = 1 + pipe.len() + document.len();
    if size > max_size {
        return Err(ProtoError::TooLarge {
            proto,
            size,
            limit: max_size,
        });
    }
    let size = u32::try_from(size).map_err(|_| ProtoError::TooLarge {
        proto,
        size,
        limit: u32::MAX as usize,
    })?;
    dst.reserve(4 + size as usize);
    dst.put_u32(size);
    dst.put_u8(pipe.len() as u8);
    dst.put_slice(pipe.ids());
    dst.put_slice(&document);
    Ok(())
}

/// Takes one frame off `src` and returns its pipe and unpacked document.
pub(crate) fn decode(
    proto: &'static str,
    src: &mut BytesMut,
    max_size: usize,
) -> Result<Option<(XferPipe, Bytes)>, ProtoError> {
    let Some(head) = src.get(..4) else { return Ok(None) };
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if size > max_size {
        return Err(ProtoError::TooLarge {
            proto,
            size,
            limit: max_size,
        });
    }
    if size == 0 {
        // Go turns this into an empty message and then closes the session; say why instead.
        return Err(ProtoError::Malformed {
            proto,
            reason: "empty frame (size 0)".into(),
        });
    }
    if src.len() < 4 + size {
        return Ok(None);
    }
    let mut frame = src.split_to(4 + size);
    frame.advance(4);
    let mut cur = Cursor::new(proto, frame.freeze());
    let xfer_len = cur.u8("xfer_len")?;
    let pipe = XferPipe::from_ids(cur.bytes(usize::from(xfer_len), "xfer ids")?)?;
    let document = if pipe.is_empty() {
        cur.rest()
    } else {
        pipe.unpack(cur.rest(), max_size)?
    };
    Ok(Some((pipe, document)))
}
