//! The plain codec (`'s'`): scalars as text, as Go's plain codec does.
//!
//! Strings and bytes are sent as they are, booleans as `true`/`false`, integers in decimal,
//! floats in shortest decimal form without exponent; `()` and `None` are empty. Anything with
//! structure (sequences, maps, structs) is refused: use json for those. Decoding parses the
//! text into whatever scalar the destination asks for.

use serde::de::{self, Visitor};
use serde::ser::{self, Impossible};

use super::{Codec, CodecError, CodecId, TextError, Visit};

pub(crate) struct PlainCodec;

impl Codec for PlainCodec {
    fn id(&self) -> CodecId {
        CodecId::PLAIN
    }
    fn name(&self) -> &'static str {
        "plain"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde::Serialize::serialize(value, TextSerializer { out }).map_err(|e| CodecError::Encode {
            codec: "plain",
            reason: e.0,
        })
    }
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError> {
        visit(&mut <dyn erased_serde::Deserializer>::erase(TextDeserializer {
            text: bytes,
        }))
        .map_err(|e| CodecError::Decode {
            codec: "plain",
            reason: e.to_string(),
        })
    }
}

fn structured(kind: &str) -> TextError {
    TextError(format!("a {kind} has no plain-text form; send it with the json codec"))
}

struct TextSerializer<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! display_scalars {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), TextError> {
            self.out.extend_from_slice(v.to_string().as_bytes());
            Ok(())
        }
    )*};
}

impl ser::Serializer for TextSerializer<'_> {
    type Ok = ();
    type Error = TextError;
    type SerializeSeq = Impossible<(), TextError>;
    type SerializeTuple = Impossible<(), TextError>;
    type SerializeTupleStruct = Impossible<(), TextError>;
    type SerializeTupleVariant = Impossible<(), TextError>;
    type SerializeMap = Impossible<(), TextError>;
    type SerializeStruct = Impossible<(), TextError>;
    type SerializeStructVariant = Impossible<(), TextError>;

    display_scalars!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char);

    fn serialize_str(self, v: &str) -> Result<(), TextError> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), TextError> {
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), TextError> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + ser::Serialize>(self, value: &T) -> Result<(), TextError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), TextError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), TextError> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), TextError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + ser::Serialize>(self, _: &'static str, value: &T) -> Result<(), TextError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + ser::Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), TextError> {
        Err(structured("enum variant with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, TextError> {
        Err(structured("sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, TextError> {
        Err(structured("tuple"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, TextError> {
        Err(structured("tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TextError> {
        Err(structured("enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TextError> {
        Err(structured("map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, TextError> {
        Err(structured("struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TextError> {
        Err(structured("enum variant with data"))
    }
}

struct TextDeserializer<'de> {
    text: &'de [u8],
}

impl<'de> TextDeserializer<'de> {
    fn str(&self) -> Result<&'de str, TextError> {
        std::str::from_utf8(self.text).map_err(|_| TextError("plain body is not UTF-8 text".into()))
    }
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, TextError> {
        let text = self.str()?;
        text.parse()
            .map_err(|_| TextError(format!("cannot parse {text:?} as {what}")))
    }
}

macro_rules! parse_scalars {
    ($($method:ident => $visit:ident: $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TextDeserializer<'de> {
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        match std::str::from_utf8(self.text) {
            Ok(text) => visitor.visit_borrowed_str(text),
            Err(_) => visitor.visit_borrowed_bytes(self.text),
        }
    }

    parse_scalars!(deserialize_bool => visit_bool: bool, deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16, deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64, deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16, deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64, deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64, deserialize_char => visit_char: char);

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_bytes(self.text)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_borrowed_bytes(self.text)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        if self.text.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 str string unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{CodecId, DecodeBody, EncodeBody};

    #[test]
    fn scalars_travel_as_text() {
        let enc = |b: &dyn Fn() -> bytes::Bytes| b();
        assert_eq!(enc(&|| "hi".to_string().encode_body(CodecId::PLAIN).unwrap()), "hi");
        assert_eq!(true.encode_body(CodecId::PLAIN).unwrap(), "true");
        assert_eq!((-42i64).encode_body(CodecId::PLAIN).unwrap(), "-42");
        assert_eq!(1.5f64.encode_body(CodecId::PLAIN).unwrap(), "1.5");
        assert_eq!(0.1f64.encode_body(CodecId::PLAIN).unwrap(), "0.1");
        assert!(vec![1, 2].encode_body(CodecId::PLAIN).is_err());
        assert_eq!(i32::decode_body(CodecId::PLAIN, "15".into()).unwrap(), 15);
        assert_eq!(String::decode_body(CodecId::PLAIN, "hello".into()).unwrap(), "hello");
        assert!(bool::decode_body(CodecId::PLAIN, "yes".into()).is_err());
        assert!(u8::decode_body(CodecId::PLAIN, "300".into()).is_err());
    }
}
