//! [`Message`]: the one message model every wire protocol serialises.

use bytes::Bytes;

use crate::codec::CodecId;
use crate::meta::Meta;
use crate::status::Status;
use crate::xfer::XferPipe;

/// The type of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A request expecting a [`MessageType::Reply`].
    Call = 1,
    /// The answer to a call, carrying the call's seq.
    Reply = 2,
    /// A one-way message.
    Push = 3,
    /// The authentication request of a connection's handshake.
    AuthCall = 4,
    /// The answer to an [`MessageType::AuthCall`].
    AuthReply = 5,
}

impl MessageType {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The type of a wire value, if it is one of the five.
    pub fn from_u8(value: u8) -> Option<MessageType> {
        Some(match value {
            1 => MessageType::Call,
            2 => MessageType::Reply,
            3 => MessageType::Push,
            4 => MessageType::AuthCall,
            5 => MessageType::AuthReply,
            _ => return None,
        })
    }

    /// Go's `TypeText`: `CALL`, `REPLY`, `PUSH`, `AUTH_CALL`, `AUTH_REPLY`.
    pub fn text(self) -> &'static str {
        match self {
            MessageType::Call => "CALL",
            MessageType::Reply => "REPLY",
            MessageType::Push => "PUSH",
            MessageType::AuthCall => "AUTH_CALL",
            MessageType::AuthReply => "AUTH_REPLY",
        }
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// One eRPC message: an HTTP-like header and an encoded body.
///
/// `body` holds the codec's output (`body_codec` says which codec); the transfer filters of
/// `xfer_pipe` are applied by the protocol when the message is framed, so a decoded message's
/// body is already unpacked. Conversation rules live in the session layer:
/// replies leave `service_method` empty, error replies carry codec 0 and no body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sequence number; a reply carries the seq of its call.
    pub seq: i32,
    /// Message type.
    pub mtype: MessageType,
    /// Route name such as `/math/add`; empty in replies.
    pub service_method: String,
    /// Result status; OK for calls and pushes.
    pub status: Status,
    /// Metadata.
    pub meta: Meta,
    /// Codec of `body`; [`CodecId::NONE`] for none.
    pub body_codec: CodecId,
    /// Encoded body.
    pub body: Bytes,
    /// Transfer filters applied to the framed message.
    pub xfer_pipe: XferPipe,
}

impl Message {
    /// A message of this type and seq with every other field empty (codec none, status OK).
    pub fn new(mtype: MessageType, seq: i32) -> Self {
        Message {
            seq,
            mtype,
            service_method: String::new(),
            status: Status::OK,
            meta: Meta::new(),
            body_codec: CodecId::NONE,
            body: Bytes::new(),
            xfer_pipe: XferPipe::new(),
        }
    }

    /// Builder-style: sets the service method.
    pub fn with_service_method(mut self, service_method: impl Into<String>) -> Self {
        self.service_method = service_method.into();
        self
    }

    /// Builder-style: sets the codec and the encoded body.
    pub fn with_body(mut self, codec: CodecId, body: impl Into<Bytes>) -> Self {
        self.body_codec = codec;
        self.body = body.into();
        self
    }

    /// Builder-style: sets the status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }
}
