//! thriftproto: messages in Thrift's THeader transport with TBinaryProtocol, in
//! two flavours.
//!
//! * [`ThriftProto`] (`'b'`, `thrift-binary`): the body is one Thrift `binary` value (any codec,
//!   transfer filters over the body), status, meta, codec and filters in THeader info headers
//!   `Tp-Status`, `Tp-Meta`, `Tp-BodyCodec`, `Tp-XferPipe`.
//! * [`ThriftStructProto`] (`'s'`, `thrift-struct`): the body is a Thrift struct written inline
//!   (the thrift codec's output), so standard Thrift peers can read it; no filters.
//!
//! CALL, REPLY and PUSH are Thrift CALL, REPLY and ONEWAY messages.
//!
//! Differences from Go:
//! - info headers are written in a fixed order (Go's order is random; readers must not care);
//! - AUTH_CALL and AUTH_REPLY are written as Thrift type 0, as Go does, plus a `Tp-Mtype`
//!   header Go ignores; we read type 0 as that header says, and as AUTH_CALL when it is absent
//!   (a frame from Go: Go itself reads both as PUSH, so auth over thrift fails in Go; ours
//!   reads a Go AUTH_REPLY as AUTH_CALL — the two are identical on the wire);
//! - error replies on the struct protocol carry an empty struct (Go cannot send them at all
//!   and leaves the caller waiting);
//! - the size of a received message is counted per message (Go's counter never resets);
//! - Codec ids of 0x80 and above go in `Tp-BodyCodec` as one byte (Go writes two UTF-8
//!   bytes and reads back the first).
//! - plain framed TBinary messages without THeader are read (no status, meta or codec), but
//!   answers are always THeader; THeader transforms (zlib) and the compact protocol are
//!   refused with a clear error.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Limits, Proto, ProtoError};
use crate::codec::CodecId;
use crate::codec::thrift::{STRING, STRUCT, value_len};
use crate::message::{Message, MessageType};
use crate::meta::Meta;
use crate::status::Status;
use crate::xfer::XferPipe;

/// Go's THeader transport refuses larger frames.
const MAX_FRAME: usize = 16_384_000;
const MAGIC: u16 = 0x0FFF;
const VERSION_1: u32 = 0x8001_0000;
const INFO_KEY_VALUE: u32 = 1;

/// thriftproto with the body as one Thrift `binary`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThriftProto;

/// thriftproto with the body as an inline Thrift struct.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThriftStructProto;

impl Proto for ThriftProto {
    fn id(&self) -> u8 {
        b'b'
    }
    fn name(&self) -> &'static str {
        "thrift-binary"
    }
    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        encode(self.name(), msg, false, dst, max_size)
    }
    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        decode(self.name(), src, limits, false)
    }
}

impl Proto for ThriftStructProto {
    fn id(&self) -> u8 {
        b's'
    }
    fn name(&self) -> &'static str {
        "thrift-struct"
    }
    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        encode(self.name(), msg, true, dst, max_size)
    }
    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        decode(self.name(), src, limits, true)
    }
}

fn thrift_type(mtype: MessageType) -> u32 {
    match mtype {
        MessageType::Call => 1,
        MessageType::Reply => 2,
        MessageType::Push => 4,
        MessageType::AuthCall | MessageType::AuthReply => 0,
    }
}

fn put_varint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_header(out: &mut BytesMut, key: &str, value: &[u8]) {
    put_varint(out, key.len() as u32);
    out.put_slice(key.as_bytes());
    put_varint(out, value.len() as u32);
    out.put_slice(value);
}

fn encode(
    proto: &'static str,
    msg: &Message,
    inline_struct: bool,
    dst: &mut BytesMut,
    max_size: usize,
) -> Result<(), ProtoError> {
    let unsupported = |reason: &str| ProtoError::Unsupported {
        proto,
        reason: reason.into(),
    };
    if inline_struct {
        if !msg.xfer_pipe.is_empty() {
            return Err(unsupported(
                "unsupport transfer pipe: thrift-struct bodies cannot be transformed",
            ));
        }
        if !matches!(msg.body_codec, CodecId::NONE | CodecId::THRIFT) {
            return Err(unsupported("body codec must be thrift on the thrift-struct protocol"));
        }
    }
    let auth = matches!(msg.mtype, MessageType::AuthCall | MessageType::AuthReply);
    let mut header = BytesMut::with_capacity(96);
    put_varint(&mut header, 0); // protocol: binary
    put_varint(&mut header, 0); // no transforms
    put_varint(&mut header, INFO_KEY_VALUE);
    let count = if inline_struct { 2 } else { 4 } + u32::from(auth);
    put_varint(&mut header, count);
    put_header(&mut header, "Tp-Status", &msg.status.encode_query());
    put_header(&mut header, "Tp-Meta", &msg.meta.encode_query());
    if !inline_struct {
        put_header(&mut header, "Tp-BodyCodec", &[msg.body_codec.0]);
        put_header(&mut header, "Tp-XferPipe", msg.xfer_pipe.ids());
    }
    if auth {
        put_header(&mut header, "Tp-Mtype", &[msg.mtype.as_u8()]);
    }
    while !header.len().is_multiple_of(4) {
        header.put_u8(0);
    }
    let words = u16::try_from(header.len() / 4).map_err(|_| unsupported("THeader headers longer than 256 KiB"))?;

    let mut payload = BytesMut::with_capacity(32 + msg.service_method.len() + msg.body.len());
    payload.put_u32(VERSION_1 | thrift_type(msg.mtype));
    payload.put_u32(msg.service_method.len() as u32);
    payload.put_slice(msg.service_method.as_bytes());
    payload.put_i32(msg.seq);
    if inline_struct {
        if msg.body.is_empty() {
            payload.put_u8(0); // the empty struct
        } else {
            payload.put_slice(&msg.body);
        }
    } else {
        let body = if msg.xfer_pipe.is_empty() {
            msg.body.clone()
        } else {
            msg.xfer_pipe.pack(msg.body.clone())?
        };
        payload.put_u32(body.len() as u32);
        payload.put_slice(&body);
    }

    let frame_len = 10 + header.len() + payload.len();
    if frame_len + 4 > max_size.min(MAX_FRAME + 4) {
        return Err(ProtoError::TooLarge {
            proto,
            size: frame_len + 4,
            limit: max_size.min(MAX_FRAME + 4),
        });
    }
    dst.reserve(4 + frame_len);
    dst.put_u32(frame_len as u32);
    dst.put_u16(MAGIC);
    dst.put_u16(0);
    dst.put_i32(msg.seq);
    dst.put_u16(words);
    dst.put_slice(&header);
    dst.put_slice(&payload);
    Ok(())
}

/// A bounds-checked reader over one frame.
struct Reader<'a> {
    proto: &'static str,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bad(&self, reason: impl Into<String>) -> ProtoError {
        ProtoError::Malformed {
            proto: self.proto,
            reason: reason.into(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(self.bad(format!("{what} needs {n} bytes, {} remain", self.buf.len())));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u16(&mut self, what: &str) -> Result<u16, ProtoError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ProtoError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn varint(&mut self, what: &str) -> Result<u32, ProtoError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.take(1, what)?[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.bad(format!("{what}: varint longer than 5 bytes")))
    }
    fn sized(&mut self, what: &str) -> Result<&'a [u8], ProtoError> {
        let n = self.u32(what)?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() && (n as i32) >= 0);
        let n = n.ok_or_else(|| self.bad(format!("{what}: length beyond the frame")))?;
        self.take(n, what)
    }
}

fn decode(
    proto: &'static str,
    src: &mut BytesMut,
    limits: &Limits,
    inline_struct: bool,
) -> Result<Option<Message>, ProtoError> {
    let Some(head) = src.get(..4) else { return Ok(None) };
    let frame_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let limit = limits.max_message_size.min(MAX_FRAME);
    if frame_len > limit {
        return Err(ProtoError::TooLarge {
            proto,
            size: frame_len,
            limit,
        });
    }
    if src.len() < 4 + frame_len {
        return Ok(None);
    }
    let frame: Bytes = src.split_to(4 + frame_len).freeze().slice(4..);
    let mut r = Reader { proto, buf: &frame };
    let mut headers: Vec<(&[u8], &[u8])> = Vec::new();
    let first = r.u16("magic")?;
    if first == MAGIC {
        let _flags = r.u16("flags")?;
        let _header_seq = r.u32("header seq")?;
        let words = usize::from(r.u16("header length")?);
        let mut h = Reader {
            proto,
            buf: r.take(words * 4, "THeader headers")?,
        };
        let protocol = h.varint("protocol id")?;
        if protocol != 0 {
            return Err(h.bad(format!("protocol id {protocol} (only binary, 0, is supported)")));
        }
        let transforms = h.varint("transform count")?;
        if transforms != 0 {
            return Err(h.bad("THeader transforms (zlib) are not supported"));
        }
        while !h.buf.is_empty() {
            match h.varint("info type")? {
                0 => break, // padding
                INFO_KEY_VALUE => {
                    let count = h.varint("header count")?;
                    for _ in 0..count {
                        // Status, meta, codec, filters and type are one header each; the rest
                        // could only be a flood.
                        if headers.len() > limits.max_meta_pairs + 8 {
                            return Err(limits.meta_too_large(proto, "pairs", headers.len()));
                        }
                        let klen = h.varint("header key length")? as usize;
                        let key = h.take(klen, "header key")?;
                        let vlen = h.varint("header value length")? as usize;
                        let value = h.take(vlen, "header value")?;
                        headers.push((key, value));
                    }
                }
                other => return Err(h.bad(format!("unknown THeader info type {other}"))),
            }
        }
    } else {
        // Plain framed TBinary: the version word starts right here.
        r = Reader { proto, buf: &frame };
    }
    let version = r.u32("message version")?;
    if version & 0xffff_0000 != VERSION_1 {
        return Err(r.bad(format!(
            "not a strict TBinaryProtocol message (version word {version:#010x})"
        )));
    }
    let header = |name: &str| headers.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| *v);
    let mtype = match version & 0xff {
        1 => MessageType::Call,
        2 => MessageType::Reply,
        3 => return Err(r.bad("the peer sent a Thrift EXCEPTION message")),
        0 => match header("Tp-Mtype") {
            Some([5]) => MessageType::AuthReply,
            _ => MessageType::AuthCall,
        },
        _ => MessageType::Push,
    };
    let name = r.sized("method name")?;
    let service_method = std::str::from_utf8(name)
        .map_err(|_| r.bad("method name is not UTF-8"))?
        .to_string();
    let seq = r.u32("seqid")? as i32;
    let status = header("Tp-Status").map_or(Status::OK, Status::decode_query);
    let meta = match header("Tp-Meta") {
        Some(query) => limits.decode_meta(proto, query)?,
        None => Meta::new(),
    };
    let offset = frame.len() - r.buf.len();
    let (body, body_codec, xfer_pipe) = if inline_struct {
        let len = value_len(r.buf, STRUCT).ok_or_else(|| r.bad("the body is not a well-formed Thrift struct"))?;
        let body = frame.slice(offset..offset + len);
        // An error reply's body is the empty struct: no body.
        let body = if body.as_ref() == [0] && !status.is_ok() {
            Bytes::new()
        } else {
            body
        };
        (body, CodecId::THRIFT, XferPipe::new())
    } else {
        let codec = header("Tp-BodyCodec")
            .and_then(|v| v.first().copied())
            .map_or(CodecId::NONE, CodecId);
        let pipe = XferPipe::from_ids(header("Tp-XferPipe").unwrap_or_default())?;
        let len = value_len(r.buf, STRING).ok_or_else(|| r.bad("the body is not a Thrift binary"))?;
        let body = frame.slice(offset + 4..offset + len);
        let body = if pipe.is_empty() || body.is_empty() {
            body
        } else {
            pipe.unpack(body, limits.max_message_size)?
        };
        (body, codec, pipe)
    };
    Ok(Some(Message {
        seq,
        mtype,
        service_method,
        status,
        meta,
        body_codec,
        body,
        xfer_pipe,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Message {
        let mut msg = Message::new(MessageType::Call, 1)
            .with_service_method("/math/add")
            .with_body(CodecId::JSON, "[1,2,3]");
        msg.meta.add("author", "andeya");
        msg
    }

    #[test]
    fn the_spec_call_is_118_bytes_and_reads_back() {
        let mut out = BytesMut::new();
        ThriftProto.encode(&call(), &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 118);
        assert_eq!(
            &out[..14],
            &hex_bytes("000000720fff00000000000100120000"[..28].as_ref())
        );
        assert!(out.ends_with(&hex_bytes(
            b"80010001000000092f6d6174682f61646400000001000000075b312c322c335d"
        )));
        assert_eq!(
            ThriftProto
                .decode(&mut out, &super::Limits::with_max_message_size(1 << 20))
                .unwrap()
                .unwrap(),
            call()
        );
    }

    #[test]
    fn the_spec_struct_call_is_93_bytes() {
        let body = hex_bytes(
            b"0b00010000000661 6e64657961 00"
                .iter()
                .copied()
                .filter(|b| *b != b' ')
                .collect::<Vec<_>>()
                .as_slice(),
        );
        let mut msg = call().with_body(CodecId::THRIFT, body);
        msg.meta = [("author", "andeya")].into_iter().collect();
        let mut out = BytesMut::new();
        ThriftStructProto.encode(&msg, &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 93);
        assert_eq!(
            ThriftStructProto
                .decode(&mut out, &super::Limits::with_max_message_size(1 << 20))
                .unwrap()
                .unwrap(),
            msg
        );
    }

    fn hex_bytes(hex: &[u8]) -> Vec<u8> {
        hex.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }
}
