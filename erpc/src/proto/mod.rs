//! Wire protocols: how a [`Message`] becomes a frame on a stream and back.
//!
//! A [`Proto`] is a stateless encoder/decoder pair over `BytesMut`: [`Proto::encode`] appends
//! one whole frame, [`Proto::decode`] takes one whole frame off the front of a read buffer or
//! says it needs more bytes. Every decoder treats its input as hostile: lengths are checked
//! against the message size limit before anything is allocated, every field is bounds-checked,
//! and a bad frame is a [`ProtoError`] (the session closes that one connection), never a panic.
//!
//! rawproto ([`RawProto`]) is the default. Protocols are chosen per peer, listener or dial by
//! passing an `Arc<dyn Proto>`; [`by_name`] finds the built-in ones by their names.

mod cursor;
mod framed;
mod http;
mod json;
mod pb;
mod raw;
mod thrift;

pub(crate) use cursor::Cursor;
pub use http::HttpProto;
pub use json::JsonProto;
pub use pb::PbProto;
pub use raw::RawProto;
pub use thrift::{ThriftProto, ThriftStructProto};

use std::sync::Arc;

use bytes::BytesMut;

use crate::message::Message;
use crate::xfer::XferError;

/// The default message size limit: 16 MiB (Go's is 1 GiB). A frame declaring more is refused
/// before its body is read; raise it with `PeerConfig::max_message_size` for large transfers.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The frame is larger than the size limit.
    #[error(
        "{proto}: message of {size} bytes exceeds the size limit of {limit} bytes (raise max_message_size if this is expected)"
    )]
    TooLarge {
        /// The protocol's name.
        proto: &'static str,
        /// The frame's size as the protocol counts it.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is corrupt or truncated.
    #[error("{proto}: malformed frame: {reason}")]
    Malformed {
        /// The protocol's name.
        proto: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The message cannot be expressed in this protocol (e.g. a field too long, PUSH over http).
    #[error("{proto}: cannot send this message: {reason}")]
    Unsupported {
        /// The protocol's name.
        proto: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A message type outside CALL, REPLY, PUSH, AUTH_CALL, AUTH_REPLY.
    #[error("{proto}: unknown message type {mtype}")]
    UnknownMessageType {
        /// The protocol's name.
        proto: &'static str,
        /// The wire value.
        mtype: u8,
    },
    /// A transfer filter failed.
    #[error(transparent)]
    Xfer(#[from] XferError),
}

/// A wire protocol.
pub trait Proto: Send + Sync + 'static {
    /// The protocol's id (Go's `Version()`; never written on the wire by rawproto).
    fn id(&self) -> u8;
    /// The protocol's name (`raw`, `json`, `protobuf`, `thrift-binary`, `http`…).
    fn name(&self) -> &'static str;
    /// Appends one frame for `msg` to `dst`. On error nothing is appended.
    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError>;
    /// Takes one frame off the front of `src`: `Ok(None)` when more bytes are needed (it may
    /// reserve room for the rest of the frame, never beyond `max_size`).
    fn decode(&self, src: &mut BytesMut, max_size: usize) -> Result<Option<Message>, ProtoError>;
}

/// The names [`by_name`] knows, for help texts.
pub const NAMES: &[&str] = &["raw", "json", "pb", "http", "thrift", "thrift-struct"];

/// A built-in protocol by name: `raw`, `json`, `pb` (or `protobuf`), `http`, `thrift` (or
/// `thrift-binary`), `thrift-struct`.
pub fn by_name(name: &str) -> Option<Arc<dyn Proto>> {
    match name {
        "raw" => Some(Arc::new(RawProto)),
        "json" => Some(Arc::new(JsonProto)),
        "pb" | "protobuf" => Some(Arc::new(PbProto)),
        "http" => Some(Arc::new(HttpProto)),
        "thrift" | "thrift-binary" => Some(Arc::new(ThriftProto)),
        "thrift-struct" => Some(Arc::new(ThriftStructProto)),
        _ => None,
    }
}
