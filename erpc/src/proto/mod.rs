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
#[cfg(feature = "http")]
mod http;
mod json;
#[cfg(feature = "protobuf")]
mod pb;
mod raw;
#[cfg(feature = "thrift")]
mod thrift;
#[cfg(feature = "websocket")]
mod ws;

pub(crate) use cursor::Cursor;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::HttpProto;
pub use json::JsonProto;
#[cfg(feature = "protobuf")]
#[cfg_attr(docsrs, doc(cfg(feature = "protobuf")))]
pub use pb::PbProto;
pub use raw::RawProto;
#[cfg(feature = "thrift")]
#[cfg_attr(docsrs, doc(cfg(feature = "thrift")))]
pub use thrift::{ThriftProto, ThriftStructProto};
#[cfg(feature = "websocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "websocket")))]
pub use ws::{WsJsonProto, WsPbProto};

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::message::Message;
use crate::meta::Meta;
use crate::xfer::XferError;

/// The default message size limit: 16 MiB (Go's is 1 GiB). A frame declaring more is refused
/// before its body is read; raise it with `PeerConfig::max_message_size` for large transfers.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The default limit of meta pairs per incoming message (Go has none).
pub const DEFAULT_MAX_META_PAIRS: usize = 1024;

/// The default limit of meta bytes per incoming message: 64 KiB, what rawproto's 16-bit meta
/// length allows anyway.
pub const DEFAULT_MAX_META_BYTES: usize = 64 * 1024;

/// What a decoder accepts: checked while decoding, before anything of that size is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame, and largest body or document once its transfer filters are undone.
    pub max_message_size: usize,
    /// Most meta pairs in one message.
    pub max_meta_pairs: usize,
    /// Most meta bytes in one message, as written on the wire.
    pub max_meta_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_meta_pairs: DEFAULT_MAX_META_PAIRS,
            max_meta_bytes: DEFAULT_MAX_META_BYTES,
        }
    }
}

impl Limits {
    /// The default limits with another message size limit.
    pub fn with_max_message_size(max_message_size: usize) -> Limits {
        Limits {
            max_message_size,
            ..Limits::default()
        }
    }

    /// Parses meta in its query form within the meta limits.
    pub fn decode_meta(&self, proto: &'static str, query: &[u8]) -> Result<Meta, ProtoError> {
        if query.len() > self.max_meta_bytes {
            return Err(self.meta_too_large(proto, "bytes", query.len()));
        }
        Meta::decode_query_within(query, self.max_meta_pairs)
            .map_err(|pairs| self.meta_too_large(proto, "pairs", pairs))
    }

    /// The error for meta over one of the limits (`what` is `pairs` or `bytes`).
    pub fn meta_too_large(&self, proto: &'static str, what: &'static str, found: usize) -> ProtoError {
        let limit = if what == "pairs" {
            self.max_meta_pairs
        } else {
            self.max_meta_bytes
        };
        ProtoError::MetaTooLarge {
            proto,
            what,
            found,
            limit,
        }
    }
}

/// What a decoder remembers between calls on one connection's buffer (see
/// [`Proto::decode_with_state`]). Resetting it is always safe: it only saves work. A decoder
/// resets it when it takes a frame off the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeState {
    /// Bytes at the front of the buffer already searched for the end of a head, in vain.
    pub scanned: usize,
    /// The length of the frame at the front, once its head has been read and checked: until
    /// that many bytes are buffered there is nothing more to look at.
    pub frame_len: Option<usize>,
}

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
    /// The meta of an incoming message is over `max_meta_pairs` or `max_meta_bytes`.
    #[error("{proto}: meta of more than {limit} {what} ({found} found; raise max_meta_{what} if this is expected)")]
    MetaTooLarge {
        /// The protocol's name.
        proto: &'static str,
        /// `pairs` or `bytes`.
        what: &'static str,
        /// How many were found (counting stops just past the limit).
        found: usize,
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
    /// The head of a message (HTTP: the request or status line and the headers) is over the
    /// protocol's limit.
    #[error("{proto}: a head of more than {limit} {what}; send large data in the body")]
    HeadTooLarge {
        /// The protocol's name.
        proto: &'static str,
        /// What is counted: `bytes` or `header lines`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The frame uses a feature of its protocol that is not implemented here (HTTP
    /// `Transfer-Encoding`).
    #[error("{proto}: not implemented: {reason}")]
    NotImplemented {
        /// The protocol's name.
        proto: &'static str,
        /// What is not implemented and what to send instead.
        reason: String,
    },
    /// A request refused for `error`, which the protocol answers with `status` (an HTTP status
    /// for httproto) before the connection closes: see [`Proto::refusal`].
    #[error("{error} (answered with status {status})")]
    Refused {
        /// The status the answer carries.
        status: u16,
        /// What was wrong with the request.
        error: Box<ProtoError>,
    },
}

/// A wire protocol.
pub trait Proto: Send + Sync + 'static {
    /// The protocol's id (Go's `Version()`; never written on the wire by rawproto).
    fn id(&self) -> u8;
    /// The protocol's name (`raw`, `json`, `protobuf`, `thrift-binary`, `http`…).
    fn name(&self) -> &'static str;
    /// Appends one frame for `msg` to `dst`. On error nothing is appended.
    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError>;
    /// Takes one frame off the front of `src`: `Ok(None)` when more bytes are needed. It never
    /// reserves room for a frame's declared length (the buffer grows as bytes arrive, so a
    /// frame that declares 16 MiB and sends 10 bytes costs 10 bytes), and refuses anything
    /// over `limits` as soon as it can tell.
    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError>;

    /// [`decode`](Self::decode) on a connection: `state` is what this protocol remembered
    /// from the calls before on the same buffer, so a frame arriving in pieces is not examined
    /// again from its start on every read. What sessions call; protocols whose frames start
    /// with their length need nothing more than `decode` (the default).
    fn decode_with_state(
        &self,
        src: &mut BytesMut,
        limits: &Limits,
        state: &mut DecodeState,
    ) -> Result<Option<Message>, ProtoError> {
        let _ = state;
        self.decode(src, limits)
    }

    /// Whether replies must leave in the order their calls arrived (HTTP/1.1): the session
    /// then takes one incoming call at a time and reads the next request after the reply to
    /// the previous one is queued.
    fn replies_in_order(&self) -> bool {
        false
    }

    /// Whether `call` is the last message of its connection (HTTP `Connection: close`,
    /// HTTP/1.0): the session stops reading, writes the reply, and closes.
    fn is_last_call(&self, call: &Message) -> bool {
        let _ = call;
        false
    }

    /// What to send before closing a connection whose input was refused with `error` (an HTTP
    /// error response, say). By default nothing: the binary protocols have no way to say it.
    fn refusal(&self, error: &ProtoError) -> Option<Bytes> {
        let _ = error;
        None
    }

    /// Whether its frames are not self-delimiting, so that it runs only on a message
    /// transport (WebSocket, unixpacket), where [`decode`](Self::decode) is handed exactly
    /// one message at a time and takes all of it.
    fn needs_messages(&self) -> bool {
        false
    }
}

/// The names [`by_name`] knows, for help texts (those of this build's features).
pub const NAMES: &[&str] = &[
    "raw",
    "json",
    #[cfg(feature = "protobuf")]
    "pb",
    #[cfg(feature = "http")]
    "http",
    #[cfg(feature = "thrift")]
    "thrift",
    #[cfg(feature = "thrift")]
    "thrift-struct",
    #[cfg(feature = "websocket")]
    "ws-json",
    #[cfg(feature = "websocket")]
    "ws-pb",
];

/// The erpc feature that adds the built-in protocol `name`, when this build leaves it out
/// (`None`: available, or no built-in name). For error messages, as [`by_name`] just says
/// `None`: "the http protocol needs erpc's `http` feature".
pub fn missing_feature(name: &str) -> Option<&'static str> {
    let (feature, enabled) = match name {
        "pb" | "protobuf" => ("protobuf", cfg!(feature = "protobuf")),
        "http" => ("http", cfg!(feature = "http")),
        "thrift" | "thrift-binary" | "thrift-struct" => ("thrift", cfg!(feature = "thrift")),
        "ws-json" | "ws-pb" | "ws-protobuf" => ("websocket", cfg!(feature = "websocket")),
        _ => return None,
    };
    (!enabled).then_some(feature)
}

/// A built-in protocol by name: `raw`, `json`, `pb` (or `protobuf`), `http`, `thrift` (or
/// `thrift-binary`), `thrift-struct`, and Go's WebSocket sub-protocols `ws-json` and `ws-pb`
/// (or `ws-protobuf`), which run only on message transports. Names of protocols this build's
/// features leave out give `None`; [`missing_feature`] says which feature adds them.
pub fn by_name(name: &str) -> Option<Arc<dyn Proto>> {
    match name {
        "raw" => Some(Arc::new(RawProto)),
        "json" => Some(Arc::new(JsonProto)),
        #[cfg(feature = "protobuf")]
        "pb" | "protobuf" => Some(Arc::new(PbProto)),
        #[cfg(feature = "http")]
        "http" => Some(Arc::new(HttpProto)),
        #[cfg(feature = "thrift")]
        "thrift" | "thrift-binary" => Some(Arc::new(ThriftProto)),
        #[cfg(feature = "thrift")]
        "thrift-struct" => Some(Arc::new(ThriftStructProto)),
        #[cfg(feature = "websocket")]
        "ws-json" => Some(Arc::new(WsJsonProto)),
        #[cfg(feature = "websocket")]
        "ws-pb" | "ws-protobuf" => Some(Arc::new(WsPbProto)),
        _ => None,
    }
}
