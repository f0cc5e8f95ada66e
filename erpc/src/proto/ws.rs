//! Go's two WebSocket sub-protocols: the message as one JSON or protobuf
//! document per WebSocket message, the xfer pipe over the body only. Their documents carry no
//! length, so they run only on message transports ([`Proto::needs_messages`]): the reader
//! hands the decoder one whole message at a time.
//!
//! Go's documents carry no status, so a Go peer's error replies arrive as successes with an
//! empty body. We write a status only when it is not OK, under a key Go's readers skip
//! (`"status"` in JSON, field 8 in protobuf): Go peers read our documents as their own, and a
//! Rust peer learns errors. Otherwise the bytes are Go's, except that the JSON body also has
//! `\` and control characters escaped (Go escapes only `"`, which corrupts such bodies and
//! makes documents a browser's `JSON.parse` refuses).

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use super::json::{go_quote, lenient};
use super::{Limits, Proto, ProtoError};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::status::Status;
use crate::xfer::{self, XferPipe};

const JSON: &str = "ws-json";
const PB: &str = "ws-protobuf";

/// Go's WebSocket JSON sub-protocol (id `'j'`). What a browser speaks.
#[derive(Clone, Copy, Debug, Default)]
pub struct WsJsonProto;

/// Go's WebSocket protobuf sub-protocol (id `'p'`).
#[derive(Clone, Copy, Debug, Default)]
pub struct WsPbProto;

/// The whole buffer as one document (one message), within the size limit.
fn take_document(proto: &'static str, src: &mut BytesMut, limit: usize) -> Result<Option<Bytes>, ProtoError> {
    if src.is_empty() {
        return Ok(None);
    }
    if src.len() > limit {
        return Err(ProtoError::TooLarge {
            proto,
            size: src.len(),
            limit,
        });
    }
    Ok(Some(src.split().freeze()))
}

fn too_large(proto: &'static str, size: usize, limit: usize) -> Result<(), ProtoError> {
    if size > limit {
        return Err(ProtoError::TooLarge { proto, size, limit });
    }
    Ok(())
}

/// The pipe of the filter ids this build knows; unknown ids are skipped, as Go does here.
fn known_pipe(ids: impl IntoIterator<Item = u8>) -> XferPipe {
    let mut pipe = XferPipe::default();
    for id in ids {
        if xfer::by_id(id).is_some() {
            let _ = pipe.push(id);
        }
    }
    pipe
}

fn mtype(proto: &'static str, value: i64) -> Result<MessageType, ProtoError> {
    // Go truncates to 8 bits.
    let mtype = value as u8;
    MessageType::from_u8(mtype).ok_or(ProtoError::UnknownMessageType { proto, mtype })
}

impl Proto for WsJsonProto {
    fn id(&self) -> u8 {
        b'j'
    }

    fn name(&self) -> &'static str {
        JSON
    }

    fn needs_messages(&self) -> bool {
        true
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let body = packed_body(msg)?;
        let start = dst.len();
        let mut doc = Writer(dst);
        let _ = write!(
            doc,
            "{{\"seq\":{},\"mtype\":{},\"serviceMethod\":",
            msg.seq,
            msg.mtype.as_u8()
        );
        go_quote(msg.service_method.as_bytes(), doc.0);
        if !msg.status.is_ok() {
            doc.0.put_slice(b",\"status\":");
            go_quote(&msg.status.encode_query(), doc.0);
        }
        doc.0.put_slice(b",\"meta\":");
        go_quote(&msg.meta.encode_query(), doc.0);
        let _ = write!(doc, ",\"bodyCodec\":{},\"body\":\"", msg.body_codec.0);
        for &b in body.iter() {
            match b {
                b'"' | b'\\' => {
                    doc.0.put_u8(b'\\');
                    doc.0.put_u8(b);
                }
                0..0x20 => {
                    let _ = write!(doc, "\\u{b:04x}");
                }
                _ => doc.0.put_u8(b),
            }
        }
        doc.0.put_slice(b"\",\"xferPipe\":[");
        for (i, id) in msg.xfer_pipe.ids().iter().enumerate() {
            let _ = write!(doc, "{}{id}", if i > 0 { "," } else { "" });
        }
        doc.0.put_slice(b"]}");
        too_large(JSON, dst.len() - start, max_size).inspect_err(|_| dst.truncate(start))
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        let Some(doc) = take_document(JSON, src, limits.max_message_size)? else {
            return Ok(None);
        };
        let fields = lenient(&doc).ok_or_else(|| ProtoError::Malformed {
            proto: JSON,
            reason: "the document is not a JSON object".into(),
        })?;
        // `[103,1]`: decimal ids; anything else in it is skipped.
        let ids = fields
            .xfer_pipe
            .split(|&b| !b.is_ascii_digit())
            .filter_map(|n| std::str::from_utf8(n).ok()?.parse::<u8>().ok());
        let xfer_pipe = known_pipe(ids);
        let body = if xfer_pipe.is_empty() {
            fields.body
        } else {
            xfer_pipe.unpack(fields.body, limits.max_message_size)?
        };
        let service_method = String::from_utf8(fields.service_method).map_err(|_| ProtoError::Malformed {
            proto: JSON,
            reason: "service method is not UTF-8".into(),
        })?;
        Ok(Some(Message {
            seq: fields.seq as i32,
            mtype: mtype(JSON, fields.mtype)?,
            service_method,
            status: Status::decode_query(&fields.status),
            meta: limits.decode_meta(JSON, &fields.meta)?,
            body_codec: CodecId(fields.body_codec as u8),
            body,
            xfer_pipe,
        }))
    }
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// `package pb; message payload` of Go's WebSocket protobuf sub-protocol,
/// plus our status (field 8, only when not OK).
#[derive(Clone, PartialEq, prost::Message)]
struct Payload {
    #[prost(int32, tag = "1")]
    seq: i32,
    #[prost(int32, tag = "2")]
    mtype: i32,
    #[prost(string, tag = "3")]
    service_method: String,
    #[prost(bytes = "bytes", tag = "4")]
    meta: Bytes,
    #[prost(int32, tag = "5")]
    body_codec: i32,
    #[prost(bytes = "bytes", tag = "6")]
    body: Bytes,
    #[prost(bytes = "bytes", tag = "7")]
    xfer_pipe: Bytes,
    #[prost(bytes = "bytes", tag = "8")]
    status: Bytes,
}

impl Proto for WsPbProto {
    fn id(&self) -> u8 {
        b'p'
    }

    fn name(&self) -> &'static str {
        PB
    }

    fn needs_messages(&self) -> bool {
        true
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let body = packed_body(msg)?;
        let payload = Payload {
            seq: msg.seq,
            mtype: i32::from(msg.mtype.as_u8()),
            service_method: msg.service_method.clone(),
            meta: msg.meta.encode_query().into(),
            body_codec: i32::from(msg.body_codec.0),
            body,
            xfer_pipe: Bytes::copy_from_slice(msg.xfer_pipe.ids()),
            status: if msg.status.is_ok() {
                Bytes::new()
            } else {
                msg.status.encode_query().into()
            },
        };
        too_large(PB, payload.encoded_len(), max_size)?;
        payload.encode(dst).map_err(|e| ProtoError::Unsupported {
            proto: PB,
            reason: e.to_string(),
        })
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        let Some(doc) = take_document(PB, src, limits.max_message_size)? else {
            return Ok(None);
        };
        let payload = Payload::decode(doc).map_err(|e| ProtoError::Malformed {
            proto: PB,
            reason: format!("bad protobuf payload: {e}"),
        })?;
        let xfer_pipe = known_pipe(payload.xfer_pipe.iter().copied());
        let body = if xfer_pipe.is_empty() {
            payload.body
        } else {
            xfer_pipe.unpack(payload.body, limits.max_message_size)?
        };
        Ok(Some(Message {
            seq: payload.seq,
            mtype: mtype(PB, i64::from(payload.mtype))?,
            service_method: payload.service_method,
            status: Status::decode_query(&payload.status),
            meta: limits.decode_meta(PB, &payload.meta)?,
            body_codec: CodecId(payload.body_codec as u8),
            body,
            xfer_pipe,
        }))
    }
}

/// The body with its transfer filters applied (the documents filter the body only).
fn packed_body(msg: &Message) -> Result<Bytes, ProtoError> {
    if msg.xfer_pipe.is_empty() {
        Ok(msg.body.clone())
    } else {
        Ok(msg.xfer_pipe.pack(msg.body.clone())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Meta;

    fn call() -> Message {
        let mut meta = Meta::default();
        meta.set("author", "andeya");
        Message {
            seq: 1,
            mtype: MessageType::Call,
            service_method: "/math/add".into(),
            status: Status::OK,
            meta,
            body_codec: CodecId(106),
            body: Bytes::from_static(b"[1,2,3]"),
            xfer_pipe: XferPipe::default(),
        }
    }

    fn reply() -> Message {
        Message {
            seq: 1,
            mtype: MessageType::Reply,
            service_method: String::new(),
            status: Status::OK,
            meta: Meta::default(),
            body_codec: CodecId(106),
            body: Bytes::from_static(b"6"),
            xfer_pipe: XferPipe::default(),
        }
    }

    fn encode(proto: &dyn Proto, msg: &Message) -> BytesMut {
        let mut out = BytesMut::new();
        proto.encode(msg, &mut out, 1 << 20).unwrap();
        out
    }

    fn round_trip(proto: &dyn Proto, msg: &Message) -> Message {
        let mut buf = encode(proto, msg);
        let back = proto.decode(&mut buf, &Limits::default()).unwrap().unwrap();
        assert!(buf.is_empty());
        back
    }

    #[test]
    fn json_documents_are_gos() {
        // wire.md §11.1.
        assert_eq!(
            &encode(&WsJsonProto, &call())[..],
            br#"{"seq":1,"mtype":1,"serviceMethod":"/math/add","meta":"author=andeya","bodyCodec":106,"body":"[1,2,3]","xferPipe":[]}"#
        );
        assert_eq!(
            &encode(&WsJsonProto, &reply())[..],
            br#"{"seq":1,"mtype":2,"serviceMethod":"","meta":"","bodyCodec":106,"body":"6","xferPipe":[]}"#
        );
    }

    #[test]
    fn pb_documents_are_gos() {
        // wire.md §11.2.
        assert_eq!(
            hex::encode(encode(&WsPbProto, &call())),
            "080110011a092f6d6174682f616464220d617574686f723d616e64657961286a32075b312c322c335d"
        );
        assert_eq!(hex::encode(encode(&WsPbProto, &reply())), "08011002286a320136");
    }

    #[test]
    fn both_round_trip_with_a_status_gzip_and_awkward_bodies() {
        for proto in [&WsJsonProto as &dyn Proto, &WsPbProto] {
            let mut msg = reply();
            msg.status = Status::with_cause(404, "Not Found", "no such route");
            msg.body = Bytes::from_static(b"{\"a\":\"x\\\"y\\\\z\"}\n\x01");
            let back = round_trip(proto, &msg);
            assert_eq!(
                (back.status.code().get(), &back.body),
                (404, &msg.body),
                "{}",
                proto.name()
            );
            let mut gz = call();
            gz.xfer_pipe.push(b'g').unwrap();
            gz.body = Bytes::from(vec![b'a'; 4000]);
            let back = round_trip(proto, &gz);
            assert_eq!(
                (back.xfer_pipe.ids(), &back.body),
                (&b"g"[..], &gz.body),
                "{}",
                proto.name()
            );
        }
    }

    #[test]
    fn a_browser_document_with_spaces_and_unknown_filters_reads() {
        let mut buf = BytesMut::from(
            &br#"{ "seq": 3, "mtype": 1, "serviceMethod": "/math/add", "meta": "", "bodyCodec": 106, "body": "[1,2,3]", "xferPipe": [250] }"#[..],
        );
        let msg = WsJsonProto.decode(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(
            (msg.seq, msg.mtype, &msg.body[..]),
            (3, MessageType::Call, &b"[1,2,3]"[..])
        );
        assert!(msg.xfer_pipe.is_empty());
    }

    #[test]
    fn hostile_documents_are_errors() {
        let limits = Limits::with_max_message_size(64);
        for proto in [&WsJsonProto as &dyn Proto, &WsPbProto] {
            let mut big = BytesMut::from(&[b'{'; 65][..]);
            assert!(matches!(
                proto.decode(&mut big, &limits),
                Err(ProtoError::TooLarge { .. })
            ));
            let mut junk = BytesMut::from(&b"\xff\xff\xff"[..]);
            assert!(proto.decode(&mut junk, &limits).is_err(), "{}", proto.name());
            assert!(proto.decode(&mut BytesMut::new(), &limits).unwrap().is_none());
        }
    }
}
