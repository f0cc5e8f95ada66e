//! The [`Body`] trait and the [`Protobuf`] and [`Raw`] body wrappers.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CodecError, CodecId, by_id};

/// A value that can be sent as a message body with the codec the message names.
///
/// Implemented for every serde type, for [`Protobuf<T>`] (prost messages) and for [`Raw`]
/// (verbatim bytes). See the [module docs](crate::codec) for the design.
pub trait EncodeBody {
    /// Encodes the value with `codec`. `()` encodes as the empty body with every codec.
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError>;
}

/// A value that can be read from a received body, given the body's codec id.
pub trait DecodeBody: Sized + Send + 'static {
    /// Decodes a body received with `codec`. An empty body is never handed to the codec: it
    /// reads as `()`, `None`, or a prost message's default, and is an error for other types.
    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError>;
}

/// A value that travels both ways: handler arguments and results, call arguments and replies.
pub trait Body: EncodeBody + DecodeBody {}

impl<T: EncodeBody + DecodeBody> Body for T {}

impl<T: Serialize + ?Sized> EncodeBody for T {
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError> {
        if is_unit(self) {
            return Ok(Bytes::new());
        }
        let codec = by_id(codec).ok_or(CodecError::Unsupported(codec.0))?;
        let mut out = Vec::new();
        codec.encode(&self, &mut out)?;
        Ok(out.into())
    }
}

impl<T: DeserializeOwned + Send + 'static> DecodeBody for T {
    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError> {
        if body.is_empty() {
            // Go leaves the destination at its zero value; in Rust only types that have an
            // "absent" form can take an empty body: (), Option<_>, and the like.
            return T::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new()).map_err(
                |_| CodecError::Decode {
                    codec: "empty body",
                    reason: format!("an empty body cannot be read as {}", std::any::type_name::<T>()),
                },
            );
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

/// Whether `value` serialises as `()`: probed with a serializer that accepts only a unit and
/// refuses everything else at the first call, so the probe costs one virtual call.
fn is_unit<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(UnitProbe).is_ok()
}

struct UnitProbe;

#[derive(Debug)]
struct NotUnit;

impl std::fmt::Display for NotUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not unit")
    }
}
impl std::error::Error for NotUnit {}
impl serde::ser::Error for NotUnit {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotUnit
    }
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, NotUnit> { Err(NotUnit) }
    )*};
}

impl serde::Serializer for UnitProbe {
    type Ok = ();
    type Error = NotUnit;
    type SerializeSeq = serde::ser::Impossible<(), NotUnit>;
    type SerializeTuple = serde::ser::Impossible<(), NotUnit>;
    type SerializeTupleStruct = serde::ser::Impossible<(), NotUnit>;
    type SerializeTupleVariant = serde::ser::Impossible<(), NotUnit>;
    type SerializeMap = serde::ser::Impossible<(), NotUnit>;
    type SerializeStruct = serde::ser::Impossible<(), NotUnit>;
    type SerializeStructVariant = serde::ser::Impossible<(), NotUnit>;

    fn serialize_unit(self) -> Result<(), NotUnit> {
        Ok(())
    }
    refuse! {
        serialize_bool(bool) -> (); serialize_i8(i8) -> (); serialize_i16(i16) -> ();
        serialize_i32(i32) -> (); serialize_i64(i64) -> (); serialize_u8(u8) -> ();
        serialize_u16(u16) -> (); serialize_u32(u32) -> (); serialize_u64(u64) -> ();
        serialize_f32(f32) -> (); serialize_f64(f64) -> (); serialize_char(char) -> ();
        serialize_str(&str) -> (); serialize_bytes(&[u8]) -> (); serialize_none() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
    fn serialize_some<V: Serialize + ?Sized>(self, _: &V) -> Result<(), NotUnit> {
        Err(NotUnit)
    }
    fn serialize_newtype_struct<V: Serialize + ?Sized>(self, _: &'static str, _: &V) -> Result<(), NotUnit> {
        Err(NotUnit)
    }
    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<(), NotUnit> {
        Err(NotUnit)
    }
}

/// A prost message as a body: encoded with protobuf, whatever else it is.
///
/// ```
/// # #[derive(Clone, PartialEq, prost::Message)] struct Ping { #[prost(string, tag = "1")] text: String }
/// use erpc::codec::{DecodeBody, EncodeBody, CodecId, Protobuf};
/// let bytes = Protobuf(Ping { text: "hi".into() }).encode_body(CodecId::PROTOBUF).unwrap();
/// let back = Protobuf::<Ping>::decode_body(CodecId::PROTOBUF, bytes).unwrap();
/// assert_eq!(back.0.text, "hi");
/// ```
#[cfg(feature = "protobuf")]
#[cfg_attr(docsrs, doc(cfg(feature = "protobuf")))]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Protobuf<T>(pub T);

#[cfg(feature = "protobuf")]
impl<T: prost::Message> EncodeBody for Protobuf<T> {
    fn encode_body(&self, codec: CodecId) -> Result<Bytes, CodecError> {
        check_protobuf(codec)?;
        // Sized exactly, so it never fails and `Bytes` takes the vector over without a copy;
        // `encode` into a buffer would measure the message a second time.
        Ok(Bytes::from(self.0.encode_to_vec()))
    }
}

#[cfg(feature = "protobuf")]
impl<T: prost::Message + Default + 'static> DecodeBody for Protobuf<T> {
    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError> {
        if body.is_empty() {
            return Ok(Protobuf(T::default()));
        }
        check_protobuf(codec)?;
        T::decode(body).map(Protobuf).map_err(|e| CodecError::Decode {
            codec: "protobuf",
            reason: e.to_string(),
        })
    }
}

#[cfg(feature = "protobuf")]
fn check_protobuf(codec: CodecId) -> Result<(), CodecError> {
    if codec == CodecId::PROTOBUF {
        return Ok(());
    }
    match by_id(codec) {
        None => Err(CodecError::Unsupported(codec.0)),
        Some(other) => Err(CodecError::Incompatible {
            codec: other.name(),
            reason: "this body is a protobuf message (Protobuf<T>); send it with the protobuf codec".into(),
        }),
    }
}

/// Raw bytes as a body: sent verbatim whatever codec id the message carries, and received as
/// the bytes on the wire (Go's `[]byte` bodies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raw(pub Bytes);

impl EncodeBody for Raw {
    fn encode_body(&self, _: CodecId) -> Result<Bytes, CodecError> {
        Ok(self.0.clone())
    }
}

impl DecodeBody for Raw {
    fn decode_body(_: CodecId, body: Bytes) -> Result<Self, CodecError> {
        Ok(Raw(body))
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

    #[cfg(feature = "protobuf")]
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
        #[cfg(feature = "protobuf")]
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
        assert_eq!(Option::<i32>::decode_body(CodecId(b'Z'), Bytes::new()).unwrap(), None);
        assert!(i32::decode_body(CodecId::JSON, Bytes::new()).is_err());
        #[cfg(feature = "protobuf")]
        assert_eq!(
            Protobuf::<Ping>::decode_body(CodecId::NONE, Bytes::new()).unwrap().0,
            Ping::default()
        );
    }

    #[cfg(feature = "protobuf")]
    #[test]
    fn prost_messages_need_protobuf_and_raw_is_verbatim() {
        let ping = Protobuf(Ping { text: "hi".into() });
        let bytes = ping.encode_body(CodecId::PROTOBUF).unwrap();
        assert_eq!(
            Protobuf::<Ping>::decode_body(CodecId::PROTOBUF, bytes.clone()).unwrap(),
            ping
        );
        assert!(ping.encode_body(CodecId::JSON).is_err());
        assert!(Protobuf::<Ping>::decode_body(CodecId::PROTOBUF, Bytes::from_static(b"\xff\xff")).is_err());
        assert_eq!(Raw::from("hi").encode_body(CodecId::JSON).unwrap(), "hi");
        assert_eq!(Raw::decode_body(CodecId::NONE, bytes.clone()).unwrap().0, bytes);
    }
}
