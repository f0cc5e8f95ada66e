//! rawproto, the default protocol.
//!
//! ```text
//! u32 total_size (whole frame, these 4 bytes included) | u8 xfer_len | xfer ids
//! XFER( u8 seq_len | seq base-36 | u8 mtype | u8 sm_len | service method
//!       | u16 status_len | status query | u16 meta_len | meta query | u8 codec | body )
//! ```
//!
//! There is no version byte, whatever Go's comments say. Where Go misbehaves we do not
//! follow: a `total_size` of 4 is refused without reading into the next frame, truncated
//! header fields are errors instead of panics or stale reads, and a status or meta longer
//! than 65535 bytes is refused on send instead of writing a corrupt length.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Cursor, Limits, Proto, ProtoError};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::status::Status;
use crate::xfer::XferPipe;

const NAME: &str = "raw";

/// rawproto: the default binary protocol (id 6, name `raw`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawProto;

impl Proto for RawProto {
    fn id(&self) -> u8 {
        6
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let start = dst.len();
        let result = encode_frame(msg, dst, max_size);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        let max_size = limits.max_message_size;
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let total = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if total > max_size {
            return Err(ProtoError::TooLarge {
                proto: NAME,
                size: total,
                limit: max_size,
            });
        }
        if total < 5 {
            return Err(ProtoError::Malformed {
                proto: NAME,
                reason: format!("total size {total} is less than the 5-byte minimum"),
            });
        }
        if src.len() < total {
            return Ok(None);
        }
        let frame = src.split_to(total).freeze();
        decode_frame(frame, limits).map(Some)
    }
}

fn encode_frame(msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
    let start = dst.len();
    let ids = msg.xfer_pipe.ids();
    dst.reserve(64 + msg.service_method.len() + msg.body.len());
    dst.put_u32(0);
    dst.put_u8(ids.len() as u8);
    dst.put_slice(ids);
    if ids.is_empty() {
        encode_payload(msg, dst)?;
    } else {
        let mut payload = BytesMut::with_capacity(64 + msg.body.len());
        encode_payload(msg, &mut payload)?;
        dst.put_slice(&msg.xfer_pipe.pack(payload.freeze())?);
    }
    let total = dst.len() - start;
    if total > max_size {
        return Err(ProtoError::TooLarge {
            proto: NAME,
            size: total,
            limit: max_size,
        });
    }
    dst[start..start + 4].copy_from_slice(&(total as u32).to_be_bytes());
    Ok(())
}

fn encode_payload(msg: &Message, dst: &mut BytesMut) -> Result<(), ProtoError> {
    let mut seq = [0u8; 12];
    let seq = format_seq(msg.seq, &mut seq);
    dst.put_u8(seq.len() as u8);
    dst.put_slice(seq);
    dst.put_u8(msg.mtype.as_u8());
    let sm = msg.service_method.as_bytes();
    let sm_len = u8::try_from(sm.len()).map_err(|_| ProtoError::Unsupported {
        proto: NAME,
        reason: format!("service method of {} bytes is longer than 255", sm.len()),
    })?;
    dst.put_u8(sm_len);
    dst.put_slice(sm);
    put_u16_prefixed(dst, "status", |out| msg.status.encode_query_into(out))?;
    put_u16_prefixed(dst, "meta", |out| msg.meta.encode_query_into(out))?;
    dst.put_u8(msg.body_codec.0);
    dst.put_slice(&msg.body);
    Ok(())
}

/// Writes a u16 length and then what `write` appends, refusing more than 65535 bytes.
fn put_u16_prefixed(dst: &mut BytesMut, field: &str, write: impl FnOnce(&mut BytesMut)) -> Result<(), ProtoError> {
    let at = dst.len();
    dst.put_u16(0);
    write(dst);
    let len = dst.len() - at - 2;
    let len = u16::try_from(len).map_err(|_| ProtoError::Unsupported {
        proto: NAME,
        reason: format!("{field} of {len} bytes does not fit rawproto's 16-bit length"),
    })?;
    dst[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn decode_frame(mut frame: Bytes, limits: &Limits) -> Result<Message, ProtoError> {
    frame.advance(4); // the total size, checked by the caller
    let mut cur = Cursor::new(NAME, frame);
    let xfer_len = cur.u8("xfer_len")?;
    let xfer_pipe = XferPipe::from_ids(cur.bytes(usize::from(xfer_len), "xfer ids")?)?;
    let payload = if xfer_pipe.is_empty() {
        cur.rest()
    } else {
        xfer_pipe.unpack(cur.rest(), limits.max_message_size)?
    };
    let mut cur = Cursor::new(NAME, payload);
    let seq_len = cur.u8("seq length")?;
    let seq_text = cur.bytes(usize::from(seq_len), "seq")?;
    let seq = match parse_seq(seq_text) {
        Some(seq) => seq,
        None => {
            let text = String::from_utf8_lossy(seq_text).into_owned();
            return Err(cur.malformed(format!("bad base-36 seq {text:?}")));
        }
    };
    let mtype = cur.u8("mtype")?;
    let mtype = MessageType::from_u8(mtype).ok_or(ProtoError::UnknownMessageType { proto: NAME, mtype })?;
    let sm_len = cur.u8("service method length")?;
    let service_method = match std::str::from_utf8(cur.bytes(usize::from(sm_len), "service method")?) {
        Ok(sm) => sm.to_string(),
        Err(_) => return Err(cur.malformed("service method is not UTF-8")),
    };
    let status_len = cur.u16("status length")?;
    let status = Status::decode_query(cur.bytes(usize::from(status_len), "status")?);
    let meta_len = cur.u16("meta length")?;
    let meta = limits.decode_meta(NAME, cur.bytes(usize::from(meta_len), "meta")?)?;
    let body_codec = CodecId(cur.u8("body codec")?);
    Ok(Message {
        seq,
        mtype,
        service_method,
        status,
        meta,
        body_codec,
        body: cur.rest(),
        xfer_pipe,
    })
}

/// Go's `strconv.FormatInt(seq, 36)` into `buf`.
fn format_seq(seq: i32, buf: &mut [u8; 12]) -> &[u8] {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = i64::from(seq).unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    if seq < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Go's `strconv.ParseInt(text, 36, 32)`: optional sign, case-insensitive digits, in range.
fn parse_seq(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 7 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let digit = (d as char).to_digit(36)?;
        value = value * 36 + i64::from(digit);
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_text_matches_go() {
        let fmt = |seq| String::from_utf8(format_seq(seq, &mut [0; 12]).to_vec()).unwrap();
        for (seq, text) in [(0, "0"), (1, "1"), (10, "a"), (35, "z"), (36, "10"), (1000, "rs")] {
            assert_eq!(fmt(seq), text);
            assert_eq!(parse_seq(text.as_bytes()), Some(seq));
        }
        assert_eq!(fmt(i32::MAX), "zik0zj");
        assert_eq!(fmt(-1), "-1");
        assert_eq!(fmt(i32::MIN), "-zik0zk");
        assert_eq!(parse_seq(b"-zik0zk"), Some(i32::MIN));
        assert_eq!(parse_seq(b"ZIK0ZJ"), Some(i32::MAX));
        assert_eq!(parse_seq(b"+a"), Some(10));
        for bad in [&b""[..], b"-", b"zik0zk", b"1_0", b"!", b"00000000", b"\xff"] {
            assert_eq!(parse_seq(bad), None, "{bad:?}");
        }
    }
}
