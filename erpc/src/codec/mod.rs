//! Body codecs: how a message body is turned into bytes and back.
//!
//! # Design
//!
//! The codec of a body is chosen at run time by the one-byte codec id in the message, but
//! Rust values are typed. The two meet in the [`EncodeBody`] and [`DecodeBody`] traits (together
//! [`Body`]), which handler arguments and results and call arguments and replies implement:
//!
//! * **serde types** (`T: Serialize + DeserializeOwned`) are encoded by whichever [`Codec`]
//!   the id names. Codecs are *serde formats behind a trait object*: [`Codec::encode`] takes
//!   `&dyn erased_serde::Serialize` and [`Codec::decode`] hands the codec's deserializer to a
//!   visitor, so one registered codec (built-in or yours) serves every serde type. json, form,
//!   plain and xml work this way; `String`, numbers and `bool` over plain give Go's plain text.
//! * **prost messages** travel in the [`Protobuf<T>`] wrapper: protobuf is a schema format, not
//!   a serde one, so `Protobuf<T>` encodes itself with prost when the codec is protobuf and
//!   refuses any other codec with a clear error.
//! * **raw bytes** travel in [`Raw`], sent verbatim whatever the codec id says, as
//!   Go sends `[]byte` bodies.
//! * `()` is the empty body: it encodes as zero bytes, and an empty body decodes into `()`,
//!   `Option::None`, or a prost message's default (as in Go, empty bodies are never
//!   handed to a codec).
//!
//! Codecs live in a process-wide registry indexed by id (lock-free reads on the hot path).
//! The six codecs of Go eRPC are registered from the start; [`register`] adds your own.

mod body;
#[cfg(feature = "form")]
mod form;
mod json;
mod plain;
#[cfg(feature = "protobuf")]
mod protobuf;
mod registry;
#[cfg(feature = "thrift")]
pub(crate) mod thrift;
#[cfg(feature = "xml")]
mod xml;

#[cfg(feature = "protobuf")]
pub use body::Protobuf;
pub use body::{Body, DecodeBody, EncodeBody, Raw};
pub use registry::{by_id, by_name, missing_feature, register};

use std::fmt;

/// The one-byte id of a body codec as it appears on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CodecId(pub u8);

impl CodecId {
    /// No codec: only legal with an empty or raw-bytes body.
    pub const NONE: CodecId = CodecId(0);
    /// JSON (`'j'`), the default.
    pub const JSON: CodecId = CodecId(b'j');
    /// Protobuf (`'p'`).
    pub const PROTOBUF: CodecId = CodecId(b'p');
    /// Plain text (`'s'`).
    pub const PLAIN: CodecId = CodecId(b's');
    /// `application/x-www-form-urlencoded` (`'f'`).
    pub const FORM: CodecId = CodecId(b'f');
    /// XML (`'x'`).
    pub const XML: CodecId = CodecId(b'x');
    /// Thrift binary struct (`'t'`).
    pub const THRIFT: CodecId = CodecId(b't');

    /// The registered codec's name, or `""` for none/unregistered.
    pub fn name(self) -> &'static str {
        by_id(self).map_or("", |c| c.name())
    }
}

impl fmt::Debug for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "CodecId('{}')", self.0 as char)
        } else {
            write!(f, "CodecId({})", self.0)
        }
    }
}

impl fmt::Display for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "" => write!(f, "{}", self.0),
            name => f.write_str(name),
        }
    }
}

/// Why a body could not be encoded or decoded. Turned into `400 Bad Message` (decoding a
/// call), `500` (encoding a reply) or a call error by the runtime.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The codec id names no registered codec (Go's text, kept for interop logs; for a
    /// built-in codec left out of this build, followed by the feature that adds it).
    #[error("unsupported codec id: {0}{hint}", hint = registry::missing_feature_hint(*.0))]
    Unsupported(u8),
    /// The value cannot be carried by this codec.
    #[error("{codec} codec cannot carry this body: {reason}")]
    Incompatible {
        /// The codec's name.
        codec: &'static str,
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// The codec failed to encode the value.
    #[error("{codec} encode: {reason}")]
    Encode {
        /// The codec's name.
        codec: &'static str,
        /// The underlying error text.
        reason: String,
    },
    /// The codec failed to decode the bytes.
    #[error("{codec} decode: {reason}")]
    Decode {
        /// The codec's name.
        codec: &'static str,
        /// The underlying error text.
        reason: String,
    },
    /// The value decoded but is not valid (a `Valid` argument, erpc's `binder` feature): Go's
    /// binder status, naming the parameter.
    #[error("invalid parameter {param:?}: {reason}")]
    Invalid {
        /// The offending field (its path, `address.city`).
        param: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A codec with this id or name is already registered, or the id is 0.
    #[error("cannot register codec {name:?} with id {id}: {reason}")]
    Register {
        /// The codec's id.
        id: u8,
        /// The codec's name.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The error type of the hand-written serde formats (plain, thrift): a message.
#[derive(Debug)]
pub(crate) struct TextError(pub(crate) String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

impl serde::ser::Error for TextError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TextError(msg.to_string())
    }
}

impl serde::de::Error for TextError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TextError(msg.to_string())
    }
}

/// The visitor a codec hands its deserializer to; see [`Codec::decode`].
pub type Visit<'v> =
    dyn for<'de> FnMut(&mut dyn erased_serde::Deserializer<'de>) -> Result<(), erased_serde::Error> + 'v;

/// A body codec: a serde format behind a trait object, registered under a one-byte id.
///
/// Implement it to add a codec (say MessagePack) and [`register`] it; every serde type can
/// then travel with it.
pub trait Codec: Send + Sync + 'static {
    /// The wire id.
    fn id(&self) -> CodecId;
    /// The name (as in config files: `json`, `protobuf`…).
    fn name(&self) -> &'static str;
    /// Serialises `value`, appending to `out`.
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Builds a deserializer over `bytes`, passes it to `visit`, then checks that all of the
    /// input was used.
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError>;
}
