//! The [`Body`] trait and the [`Proto`] and [`Raw`] body wrappers.

use std::any::TypeId;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CodecError, CodecId, by_id};

/// A value that can be a message body: encoded with the codec a message names, decoded from
/// the bytes and codec id of a received message.
///
/// Implemented for every serde type, for [`Proto<T>`] (prost messages) and for [`Raw`]
/// (verbatim bytes). See the [module docs](crate::codec) for the design.
pub trait Body: Sized + Send + 'static {
    /// Encodes the value with `codec`.
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError>;
    /// Decodes a body received with `codec`. An empty body is never handed to the codec.
    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError>;
    /// Whether this type sends its bytes verbatim whatever the codec id (raw-bytes bodies).
    fn is_raw() -> bool {
        false
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Body for T {
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError> {
        if TypeId::of::<T>() == TypeId::of::<()>() {
            return Ok(Bytes::new());
        }
        let codec = by_id(codec).ok_or(CodecError::Unsupported(codec.0))?;
        let mut out = Vec::new();
        codec.encode(self, &mut out)?;
        Ok(out.into())
    }

    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError> {
        if body.is_empty() {
            // Go leaves the destination at its zero value; in Rust only types that have an
            // "absent" form can take an empty body: (), Option<_>, and the like.
            return T::deserialize(
                serde::de::value::UnitDeserializer::<serde::de::value::Error>::new(),
            )
            .map_err(|_| CodecError::Decode {
                codec: "empty body",
                reason: format!(
                    "an empty body cannot be read as {}",
                    std::any::type_name::<T>()
                ),
            });
        }
        let codec = by_id(codec).ok_or(CodecError::Unsupported(codec.0))?;
        let mut value = None;
        codec.decode(&body, &mut |de| {
            value = Some(erased_serde::deserialize::<T>(de)?);
            Ok(())
        })?;
        value.ok_or_else(|| CodecError::Decode {
            codec: codec.name(),
            reason: "the codec produced no value".into(),
        })
    }
}

/// A prost message as a body: encoded with protobuf, whatever else it is.
///
/// ```
/// # #[derive(Clone, PartialEq, prost::Message)] struct Ping { #[prost(string, tag = "1")] text: String }
/// use erpc::codec::{Body, CodecId, Proto};
/// let bytes = Proto(Ping { text: "hi".into() }).encode_body(CodecId::PROTOBUF).unwrap();
/// let back = Proto::<Ping>::decode_body(CodecId::PROTOBUF, bytes).unwrap();
/// assert_eq!(back.0.text, "hi");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Proto<T>(pub T);

impl<T: prost::Message + Default + 'static> Body for Proto<T> {
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError> {
        check_protobuf(codec)?;
        let mut out = BytesMut::with_capacity(self.0.encoded_len());
        self.0.encode(&mut out).map_err(|e| CodecError::Encode {
            codec: "protobuf",
            reason: e.to_string(),
        })?;
        Ok(out.freeze())
    }

    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError> {
        if body.is_empty() {
            return Ok(Proto(T::default()));
        }
        check_protobuf(codec)?;
        T::decode(body).map(Proto).map_err(|e| CodecError::Decode {
            codec: "protobuf",
            reason: e.to_string(),
        })
    }
}

fn check_protobuf(codec: CodecId) -> Result<(), CodecError> {
    if codec == CodecId::PROTOBUF {
        return Ok(());
    }
    match by_id(codec) {
        None => Err(CodecError::Unsupported(codec.0)),
        Some(other) => Err(CodecError::Incompatible {
            codec: other.name(),
            reason: "this body is a protobuf message (Proto<T>); send it with the protobuf codec"
                .into(),
        }),
    }
}

/// Raw bytes as a body: sent verbatim whatever codec id the message carries, and received as
/// the bytes on the wire (Go's `[]byte` bodies, wire.md §1.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raw(pub Bytes);

impl Body for Raw {
    fn encode_body(&self, _: CodecId) -> Result<Bytes, CodecError> {
        Ok(self.0.clone())
    }
    fn decode_body(_: CodecId, body: Bytes) -> Result<Self, CodecError> {
        Ok(Raw(body))
    }
    fn is_raw() -> bool {
        true
    }
}

impl<T: Into<Bytes>> From<T> for Raw {
    fn from(bytes: T) -> Self {
        Raw(bytes.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Ping {
        #[prost(string, tag = "1")]
        text: String,
    }

    #[test]
    fn serde_values_follow_the_codec_id() {
        assert_eq!(vec![1, 2, 3].encode_body(CodecId::JSON).unwrap(), "[1,2,3]");
        assert_eq!(
            Vec::<i32>::decode_body(CodecId::JSON, "[1,2,3]".into()).unwrap(),
            vec![1, 2, 3]
        );
        assert!(matches!(
            Vec::<i32>::decode_body(CodecId(b'Z'), "x".into()),
            Err(CodecError::Unsupported(90))
        ));
        assert!(matches!(
            vec![1].encode_body(CodecId::PROTOBUF),
            Err(CodecError::Incompatible { .. })
        ));
        assert!(Vec::<i32>::decode_body(CodecId::JSON, "[1,2,3] x".into()).is_err());
    }

    #[test]
    fn empty_bodies_are_never_decoded() {
        assert_eq!(().encode_body(CodecId::JSON).unwrap(), "");
        <()>::decode_body(CodecId::NONE, Bytes::new()).unwrap();
        assert_eq!(
            Option::<i32>::decode_body(CodecId(b'Z'), Bytes::new()).unwrap(),
            None
        );
        assert!(i32::decode_body(CodecId::JSON, Bytes::new()).is_err());
        assert_eq!(
            Proto::<Ping>::decode_body(CodecId::NONE, Bytes::new())
                .unwrap()
                .0,
            Ping::default()
        );
    }

    #[test]
    fn prost_messages_need_protobuf_and_raw_is_verbatim() {
        let ping = Proto(Ping { text: "hi".into() });
        let bytes = ping.encode_body(CodecId::PROTOBUF).unwrap();
        assert_eq!(
            Proto::<Ping>::decode_body(CodecId::PROTOBUF, bytes.clone()).unwrap(),
            ping
        );
        assert!(ping.encode_body(CodecId::JSON).is_err());
        assert!(
            Proto::<Ping>::decode_body(CodecId::PROTOBUF, Bytes::from_static(b"\xff\xff")).is_err()
        );
        assert_eq!(Raw::from("hi").encode_body(CodecId::JSON).unwrap(), "hi");
        assert_eq!(
            Raw::decode_body(CodecId::NONE, bytes.clone()).unwrap().0,
            bytes
        );
    }
}
