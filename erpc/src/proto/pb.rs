//! pbproto (id `'p'`, name `protobuf`): the message as a protobuf document in the
//! shared outer framing, the xfer pipe over the whole document.
//!
//! Differences from Go: a size-0 frame is an error rather than an empty message, and an
//! mtype outside 1–5 is an error here (Go closes the session later for the same reason).

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use super::{Limits, Proto, ProtoError, framed};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::status::Status;

const NAME: &str = "protobuf";

/// pbproto.
#[derive(Clone, Copy, Debug, Default)]
pub struct PbProto;

/// `package pb; message payload`.
#[derive(Clone, PartialEq, prost::Message)]
struct Payload {
    #[prost(int32, tag = "1")]
    seq: i32,
    #[prost(int32, tag = "2")]
    mtype: i32,
    #[prost(string, tag = "3")]
    service_method: String,
    #[prost(bytes = "bytes", tag = "4")]
    status: Bytes,
    #[prost(bytes = "bytes", tag = "5")]
    meta: Bytes,
    #[prost(int32, tag = "6")]
    body_codec: i32,
    #[prost(bytes = "bytes", tag = "7")]
    body: Bytes,
}

impl Proto for PbProto {
    fn id(&self) -> u8 {
        b'p'
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let payload = Payload {
            seq: msg.seq,
            mtype: i32::from(msg.mtype.as_u8()),
            service_method: msg.service_method.clone(),
            status: msg.status.encode_query().into(),
            meta: msg.meta.encode_query().into(),
            body_codec: i32::from(msg.body_codec.0),
            body: msg.body.clone(),
        };
        framed::encode(NAME, &msg.xfer_pipe, payload.encode_to_vec().into(), dst, max_size)
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        let Some((xfer_pipe, document)) = framed::decode(NAME, src, limits.max_message_size)? else {
            return Ok(None);
        };
        let payload = Payload::decode(document).map_err(|e| ProtoError::Malformed {
            proto: NAME,
            reason: format!("bad protobuf payload: {e}"),
        })?;
        // Go truncates to 8 bits.
        let mtype = payload.mtype as u8;
        let mtype = MessageType::from_u8(mtype).ok_or(ProtoError::UnknownMessageType { proto: NAME, mtype })?;
        Ok(Some(Message {
            seq: payload.seq,
            mtype,
            service_method: payload.service_method,
            status: Status::decode_query(&payload.status),
            meta: limits.decode_meta(NAME, &payload.meta)?,
            body_codec: CodecId(payload.body_codec as u8),
            body: payload.body,
            xfer_pipe,
        }))
    }
}
