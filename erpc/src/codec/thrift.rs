//! The thrift codec (`'t'`): serde types as Thrift TBinaryProtocol structs.
//!
//! A Rust struct's fields get Thrift field ids 1, 2, 3… in declaration order, so a struct
//! matches an IDL whose ids are numbered the same way (`struct test { 1: string author }` is
//! `struct Test { author: String }`). Renaming a field with serde does not change its id.
//! `None` fields are left out; on decoding, unknown ids are skipped and absent fields take
//! serde's defaults (`None` for options).
//!
//! | Rust | Thrift |
//! |---|---|
//! | `bool` | BOOL |
//! | `i8`, `u8` | BYTE |
//! | `i16`, `u16` | I16 |
//! | `i32`, `u32` | I32 |
//! | `i64`, `u64` | I64 |
//! | `f32`, `f64` | DOUBLE |
//! | `String`, `char`, bytes | STRING (binary) |
//! | `Vec<T>`, tuples | LIST |
//! | maps | MAP |
//! | structs | STRUCT |
//! | unit enum variants | I32 (the variant's index) |
//!
//! Thrift bodies are structs. A body that is not a struct travels as field 1 of one, the way a
//! Thrift method's `_args` struct carries its first argument, so `[1, 2, 3]` is
//! `struct { 1: list<i64> }`; reading into a non-struct type takes field 1 back out. An empty
//! struct is the single byte `0x00`, and `()` is the absent body (no bytes), as with every codec.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize};

use super::{Codec, CodecError, CodecId, TextError, Visit};

pub(crate) const STOP: u8 = 0;
pub(crate) const BOOL: u8 = 2;
pub(crate) const BYTE: u8 = 3;
pub(crate) const DOUBLE: u8 = 4;
pub(crate) const I16: u8 = 6;
pub(crate) const I32: u8 = 8;
pub(crate) const I64: u8 = 10;
pub(crate) const STRING: u8 = 11;
pub(crate) const STRUCT: u8 = 12;
pub(crate) const MAP: u8 = 13;
pub(crate) const SET: u8 = 14;
pub(crate) const LIST: u8 = 15;
pub(crate) const UUID: u8 = 16;

const MAX_DEPTH: usize = 64;

pub(crate) struct ThriftCodec;

impl Codec for ThriftCodec {
    fn id(&self) -> CodecId {
        CodecId::THRIFT
    }
    fn name(&self) -> &'static str {
        "thrift"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let fail = |e: TextError| CodecError::Encode {
            codec: "thrift",
            reason: e.0,
        };
        let (ttype, bytes) = value.serialize(ValueSerializer).map_err(fail)?;
        match ttype {
            STRUCT => out.extend_from_slice(&bytes),
            // `()` and `None`: the empty struct.
            STOP => out.push(STOP),
            // Anything else is the one argument of a Thrift `_args` struct: field 1.
            _ => {
                out.extend_from_slice(&[ttype, 0, 1]);
                out.extend_from_slice(&bytes);
                out.push(STOP);
            }
        }
        Ok(())
    }
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError> {
        let mut de = Deserializer {
            input: bytes,
            ttype: STRUCT,
            depth: 0,
        };
        visit(&mut <dyn erased_serde::Deserializer>::erase(Body(&mut de))).map_err(|e| CodecError::Decode {
            codec: "thrift",
            reason: e.to_string(),
        })?;
        if !de.input.is_empty() {
            return Err(CodecError::Decode {
                codec: "thrift",
                reason: format!("{} bytes after the struct", de.input.len()),
            });
        }
        Ok(())
    }
}

/// The length of the Thrift value of type `ttype` at the start of `input` (a struct: up to
/// and including its STOP), or `None` if it is truncated, too deep or malformed.
pub(crate) fn value_len(input: &[u8], ttype: u8) -> Option<usize> {
    let mut rest = input;
    skip(&mut rest, ttype, 0)?;
    Some(input.len() - rest.len())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Some(head)
}

fn read_i32(input: &mut &[u8]) -> Option<i32> {
    take(input, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_len(input: &mut &[u8]) -> Option<usize> {
    usize::try_from(read_i32(input)?).ok()
}

fn skip(input: &mut &[u8], ttype: u8, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match ttype {
        BOOL | BYTE => take(input, 1).map(drop),
        I16 => take(input, 2).map(drop),
        I32 => take(input, 4).map(drop),
        DOUBLE | I64 => take(input, 8).map(drop),
        UUID => take(input, 16).map(drop),
        STRING => {
            let n = read_len(input)?;
            take(input, n).map(drop)
        }
        STRUCT => loop {
            let field_type = take(input, 1)?[0];
            if field_type == STOP {
                return Some(());
            }
            take(input, 2)?;
            skip(input, field_type, depth + 1)?;
        },
        MAP => {
            let head = take(input, 2)?;
            let (k, v) = (head[0], head[1]);
            let n = read_len(input)?;
            for _ in 0..n {
                skip(input, k, depth + 1)?;
                skip(input, v, depth + 1)?;
            }
            Some(())
        }
        SET | LIST => {
            let t = take(input, 1)?[0];
            let n = read_len(input)?;
            for _ in 0..n {
                skip(input, t, depth + 1)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// Serialises one value into `(thrift type, bytes)`; `STOP` means "absent" (unit, `None`).
struct ValueSerializer;

type Out = (u8, Vec<u8>);

fn fits<T: TryFrom<U>, U: std::fmt::Display + Copy>(v: U, what: &str) -> Result<T, TextError> {
    T::try_from(v).map_err(|_| TextError(format!("{v} does not fit a thrift {what}")))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Out;
    type Error = TextError;
    type SerializeSeq = ListSerializer;
    type SerializeTuple = ListSerializer;
    type SerializeTupleStruct = ListSerializer;
    type SerializeTupleVariant = ser::Impossible<Out, TextError>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = StructSerializer;
    type SerializeStructVariant = ser::Impossible<Out, TextError>;

    fn serialize_bool(self, v: bool) -> Result<Out, TextError> {
        Ok((BOOL, vec![u8::from(v)]))
    }
    fn serialize_i8(self, v: i8) -> Result<Out, TextError> {
        Ok((BYTE, v.to_be_bytes().to_vec()))
    }
    fn serialize_i16(self, v: i16) -> Result<Out, TextError> {
        Ok((I16, v.to_be_bytes().to_vec()))
    }
    fn serialize_i32(self, v: i32) -> Result<Out, TextError> {
        Ok((I32, v.to_be_bytes().to_vec()))
    }
    fn serialize_i64(self, v: i64) -> Result<Out, TextError> {
        Ok((I64, v.to_be_bytes().to_vec()))
    }
    fn serialize_u8(self, v: u8) -> Result<Out, TextError> {
        Ok((BYTE, vec![v]))
    }
    fn serialize_u16(self, v: u16) -> Result<Out, TextError> {
        self.serialize_i16(fits(v, "i16")?)
    }
    fn serialize_u32(self, v: u32) -> Result<Out, TextError> {
        self.serialize_i32(fits(v, "i32")?)
    }
    fn serialize_u64(self, v: u64) -> Result<Out, TextError> {
        self.serialize_i64(fits(v, "i64")?)
    }
    fn serialize_f32(self, v: f32) -> Result<Out, TextError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Out, TextError> {
        Ok((DOUBLE, v.to_be_bytes().to_vec()))
    }
    fn serialize_char(self, v: char) -> Result<Out, TextError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<Out, TextError> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Out, TextError> {
        let mut out = Vec::with_capacity(4 + v.len());
        out.extend_from_slice(&fits::<i32, _>(v.len(), "string length")?.to_be_bytes());
        out.extend_from_slice(v);
        Ok((STRING, out))
    }
    fn serialize_none(self) -> Result<Out, TextError> {
        Ok((STOP, Vec::new()))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Out, TextError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Out, TextError> {
        Ok((STOP, Vec::new()))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Out, TextError> {
        Ok((STRUCT, vec![STOP]))
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<Out, TextError> {
        self.serialize_u32(index)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<Out, TextError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<Out, TextError> {
        // A union: a struct with the one field that is set.
        let mut s = StructSerializer {
            out: Vec::new(),
            next_id: 0,
        };
        s.field(fits(index + 1, "field id")?, value)?;
        ser::SerializeStruct::end(s)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ListSerializer, TextError> {
        Ok(ListSerializer {
            elem_type: None,
            count: 0,
            items: Vec::with_capacity(len.unwrap_or(0) * 4),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<ListSerializer, TextError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<ListSerializer, TextError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TextError> {
        Err(TextError(
            "enum variants with several values have no thrift form".into(),
        ))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapSerializer, TextError> {
        Ok(MapSerializer {
            types: None,
            count: 0,
            items: Vec::new(),
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<StructSerializer, TextError> {
        Ok(StructSerializer {
            out: Vec::new(),
            next_id: 0,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TextError> {
        Err(TextError(
            "struct enum variants have no thrift form; use a newtype variant around a struct".into(),
        ))
    }
}

struct StructSerializer {
    out: Vec<u8>,
    next_id: i16,
}

impl StructSerializer {
    fn field<T: ?Sized + Serialize>(&mut self, id: i16, value: &T) -> Result<(), TextError> {
        let (ttype, bytes) = value.serialize(ValueSerializer)?;
        if ttype != STOP {
            self.out.push(ttype);
            self.out.extend_from_slice(&id.to_be_bytes());
            self.out.extend_from_slice(&bytes);
        }
        Ok(())
    }
}

impl ser::SerializeStruct for StructSerializer {
    type Ok = Out;
    type Error = TextError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, value: &T) -> Result<(), TextError> {
        self.next_id += 1;
        let id = self.next_id;
        self.field(id, value)
    }
    fn skip_field(&mut self, _: &'static str) -> Result<(), TextError> {
        self.next_id += 1;
        Ok(())
    }
    fn end(mut self) -> Result<Out, TextError> {
        self.out.push(STOP);
        Ok((STRUCT, self.out))
    }
}

struct ListSerializer {
    elem_type: Option<u8>,
    count: usize,
    items: Vec<u8>,
}

fn same_type(slot: &mut Option<u8>, ttype: u8) -> Result<(), TextError> {
    match *slot {
        None => *slot = Some(ttype),
        Some(t) if t == ttype => {}
        Some(_) => return Err(TextError("thrift containers hold one type of element".into())),
    }
    if ttype == STOP {
        return Err(TextError("thrift containers cannot hold absent values".into()));
    }
    Ok(())
}

impl ListSerializer {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), TextError> {
        let (ttype, bytes) = value.serialize(ValueSerializer)?;
        same_type(&mut self.elem_type, ttype)?;
        self.items.extend_from_slice(&bytes);
        self.count += 1;
        Ok(())
    }
    fn finish(self) -> Result<Out, TextError> {
        let mut out = Vec::with_capacity(5 + self.items.len());
        out.push(self.elem_type.unwrap_or(BYTE));
        out.extend_from_slice(&fits::<i32, _>(self.count, "list length")?.to_be_bytes());
        out.extend_from_slice(&self.items);
        Ok((LIST, out))
    }
}

impl ser::SerializeSeq for ListSerializer {
    type Ok = Out;
    type Error = TextError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), TextError> {
        self.push(value)
    }
    fn end(self) -> Result<Out, TextError> {
        self.finish()
    }
}

impl ser::SerializeTuple for ListSerializer {
    type Ok = Out;
    type Error = TextError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), TextError> {
        self.push(value)
    }
    fn end(self) -> Result<Out, TextError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for ListSerializer {
    type Ok = Out;
    type Error = TextError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), TextError> {
        self.push(value)
    }
    fn end(self) -> Result<Out, TextError> {
        self.finish()
    }
}

struct MapSerializer {
    types: Option<(u8, Option<u8>)>,
    count: usize,
    items: Vec<u8>,
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Out;
    type Error = TextError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), TextError> {
        let (ttype, bytes) = key.serialize(ValueSerializer)?;
        let mut slot = self.types.map(|t| t.0);
        same_type(&mut slot, ttype)?;
        self.types = Some((ttype, self.types.and_then(|t| t.1)));
        self.items.extend_from_slice(&bytes);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), TextError> {
        let (ttype, bytes) = value.serialize(ValueSerializer)?;
        let (k, mut v) = self
            .types
            .ok_or_else(|| TextError("a map value came before its key".into()))?;
        same_type(&mut v, ttype)?;
        self.types = Some((k, v));
        self.items.extend_from_slice(&bytes);
        self.count += 1;
        Ok(())
    }
    fn end(self) -> Result<Out, TextError> {
        let (k, v) = self.types.map_or((BYTE, BYTE), |(k, v)| (k, v.unwrap_or(BYTE)));
        let mut out = vec![k, v];
        out.extend_from_slice(&fits::<i32, _>(self.count, "map length")?.to_be_bytes());
        out.extend_from_slice(&self.items);
        Ok((MAP, out))
    }
}

/// Reads one value of type `ttype` off `input`.
struct Deserializer<'de> {
    input: &'de [u8],
    ttype: u8,
    depth: usize,
}

impl<'de> Deserializer<'de> {
    fn bytes(&mut self, n: usize) -> Result<&'de [u8], TextError> {
        take(&mut self.input, n).ok_or_else(|| TextError("truncated thrift value".into()))
    }
    fn len(&mut self) -> Result<usize, TextError> {
        let n = i32::from_be_bytes(self.bytes(4)?.try_into().unwrap_or([0; 4]));
        usize::try_from(n).map_err(|_| TextError(format!("negative thrift length {n}")))
    }
    fn nested(&mut self, ttype: u8) -> Result<Deserializer<'de>, TextError> {
        if self.depth >= MAX_DEPTH {
            return Err(TextError("thrift value nested too deep".into()));
        }
        Ok(Deserializer {
            input: self.input,
            ttype,
            depth: self.depth + 1,
        })
    }
    fn expect(&self, ttype: u8, what: &str) -> Result<(), TextError> {
        if self.ttype == ttype {
            Ok(())
        } else {
            Err(TextError(format!(
                "expected a thrift {what}, found type {}",
                self.ttype
            )))
        }
    }
}

macro_rules! forward_any {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = TextError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        match self.ttype {
            BOOL => visitor.visit_bool(self.bytes(1)?[0] != 0),
            BYTE => visitor.visit_i8(self.bytes(1)?[0] as i8),
            I16 => visitor.visit_i16(i16::from_be_bytes(self.bytes(2)?.try_into().unwrap_or([0; 2]))),
            I32 => visitor.visit_i32(i32::from_be_bytes(self.bytes(4)?.try_into().unwrap_or([0; 4]))),
            I64 => visitor.visit_i64(i64::from_be_bytes(self.bytes(8)?.try_into().unwrap_or([0; 8]))),
            DOUBLE => visitor.visit_f64(f64::from_be_bytes(self.bytes(8)?.try_into().unwrap_or([0; 8]))),
            STRING => {
                let n = self.len()?;
                let bytes = self.bytes(n)?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => visitor.visit_borrowed_str(s),
                    Err(_) => visitor.visit_borrowed_bytes(bytes),
                }
            }
            STRUCT => self.deserialize_struct("", &[], visitor),
            LIST | SET => {
                let elem = self.bytes(1)?[0];
                let n = self.len()?;
                let mut de = self.nested(elem)?;
                let value = visitor.visit_seq(Elements {
                    de: &mut de,
                    remaining: n,
                })?;
                self.input = de.input;
                Ok(value)
            }
            MAP => {
                let head = self.bytes(2)?;
                let (k, v) = (head[0], head[1]);
                let n = self.len()?;
                let mut de = self.nested(k)?;
                let value = visitor.visit_map(Entries {
                    de: &mut de,
                    key_type: k,
                    value_type: v,
                    remaining: n,
                })?;
                self.input = de.input;
                Ok(value)
            }
            other => Err(TextError(format!("unknown thrift type {other}"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        // The empty struct.
        self.expect(STRUCT, "struct")?;
        let mut rest = self.input;
        skip(&mut rest, STRUCT, self.depth).ok_or_else(|| TextError("malformed thrift struct".into()))?;
        self.input = rest;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.expect(STRUCT, "struct")?;
        let mut de = self.nested(STRUCT)?;
        let value = visitor.visit_map(Fields {
            de: &mut de,
            fields,
            pending: None,
        })?;
        self.input = de.input;
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.expect(I32, "i32 (enum)")?;
        let index = i32::from_be_bytes(self.bytes(4)?.try_into().unwrap_or([0; 4]));
        let index = u32::try_from(index).map_err(|_| TextError(format!("negative enum value {index}")))?;
        visitor.visit_enum(de::value::U32Deserializer::<TextError>::new(index))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        let mut rest = self.input;
        skip(&mut rest, self.ttype, self.depth).ok_or_else(|| TextError("malformed thrift value".into()))?;
        self.input = rest;
        visitor.visit_unit()
    }

    forward_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32 deserialize_f64
        deserialize_char deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_seq deserialize_map deserialize_identifier
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TextError> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, TextError> {
        self.deserialize_any(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.deserialize_any(visitor)
    }
}

/// The top-level body: structs read as structs; any other type is read from field 1.
struct Body<'a, 'de>(&'a mut Deserializer<'de>);

impl<'de> Body<'_, 'de> {
    fn field_one<R>(self, read: impl FnOnce(&mut Deserializer<'de>) -> Result<R, TextError>) -> Result<R, TextError> {
        let inner = self.0;
        inner.expect(STRUCT, "struct")?;
        let mut read = Some(read);
        let mut value = None;
        loop {
            let ttype = inner.bytes(1)?[0];
            if ttype == STOP {
                break;
            }
            let id = i16::from_be_bytes(inner.bytes(2)?.try_into().unwrap_or([0; 2]));
            match (id, read.take()) {
                (1, Some(read)) => {
                    let mut de = inner.nested(ttype)?;
                    value = Some(read(&mut de)?);
                    inner.input = de.input;
                }
                (_, unused) => {
                    read = read.or(unused);
                    let mut rest = inner.input;
                    skip(&mut rest, ttype, inner.depth).ok_or_else(|| TextError("malformed thrift field".into()))?;
                    inner.input = rest;
                }
            }
        }
        value.ok_or_else(|| TextError("the thrift struct has no field 1 to read this value from".into()))
    }
}

macro_rules! from_field_one {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
            self.field_one(|de| de.$method(visitor))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Body<'_, 'de> {
    type Error = TextError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.0.deserialize_struct(name, fields, visitor)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        self.0.deserialize_unit(visitor)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, TextError> {
        self.0.deserialize_unit_struct(name, visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        visitor.visit_some(self)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TextError> {
        self.0.deserialize_ignored_any(visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, TextError> {
        self.field_one(|de| de.deserialize_tuple(len, visitor))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.field_one(|de| de.deserialize_tuple_struct(name, len, visitor))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TextError> {
        self.field_one(|de| de.deserialize_enum(name, variants, visitor))
    }

    from_field_one! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32 deserialize_f64
        deserialize_char deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_seq deserialize_map deserialize_identifier
    }
}

/// A struct's fields: id n is the n-th field name.
struct Fields<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    fields: &'static [&'static str],
    pending: Option<u8>,
}

impl<'de> MapAccess<'de> for Fields<'_, 'de> {
    type Error = TextError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TextError> {
        loop {
            let ttype = self.de.bytes(1)?[0];
            if ttype == STOP {
                return Ok(None);
            }
            let id = i16::from_be_bytes(self.de.bytes(2)?.try_into().unwrap_or([0; 2]));
            let name = usize::try_from(id)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| self.fields.get(i));
            match name {
                Some(name) => {
                    self.pending = Some(ttype);
                    return seed
                        .deserialize(de::value::BorrowedStrDeserializer::<TextError>::new(name))
                        .map(Some);
                }
                None => {
                    let mut rest = self.de.input;
                    skip(&mut rest, ttype, self.de.depth).ok_or_else(|| TextError("malformed thrift field".into()))?;
                    self.de.input = rest;
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TextError> {
        let ttype = self
            .pending
            .take()
            .ok_or_else(|| TextError("a value without a key".into()))?;
        let mut de = self.de.nested(ttype)?;
        let value = seed.deserialize(&mut de)?;
        self.de.input = de.input;
        Ok(value)
    }
}

struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    remaining: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = TextError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, TextError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        // Never promise more than the input could hold: this is a hint for allocation.
        Some(self.remaining.min(self.de.input.len()))
    }
}

struct Entries<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    key_type: u8,
    value_type: u8,
    remaining: usize,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = TextError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TextError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        self.de.ttype = self.key_type;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TextError> {
        self.de.ttype = self.value_type;
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining.min(self.de.input.len()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use bytes::Bytes;

    use super::*;
    use crate::codec::{DecodeBody, EncodeBody};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Test {
        author: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Color {
        Red,
        Green,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rich {
        flag: bool,
        small: i8,
        mid: i16,
        num: i32,
        big: i64,
        ratio: f64,
        name: String,
        missing: Option<i32>,
        list: Vec<i32>,
        map: BTreeMap<String, i64>,
        inner: Test,
        color: Color,
    }

    #[test]
    fn the_spec_example() {
        let bytes = Test {
            author: "andeya".into(),
        }
        .encode_body(CodecId::THRIFT)
        .unwrap();
        assert_eq!(hex::encode(&bytes), "0b00010000000661 6e64657961 00".replace(' ', ""));
        assert_eq!(Test::decode_body(CodecId::THRIFT, bytes).unwrap().author, "andeya");
        // `()` is the absent body (0 bytes) with every codec; an empty struct is `00`.
        assert_eq!(().encode_body(CodecId::THRIFT).unwrap(), &b""[..]);
        #[derive(Serialize)]
        struct Empty {}
        assert_eq!(Empty {}.encode_body(CodecId::THRIFT).unwrap(), &[0u8][..]);
        // A value that is not a struct travels as field 1 of one, and reads back.
        let wrapped = vec![1i64, 2, 3].encode_body(CodecId::THRIFT).unwrap();
        assert_eq!(&wrapped[..3], &[LIST, 0, 1]);
        assert_eq!(value_len(&wrapped, STRUCT), Some(wrapped.len()));
        assert_eq!(Vec::<i64>::decode_body(CodecId::THRIFT, wrapped).unwrap(), [1, 2, 3]);
        assert_eq!(
            i32::decode_body(CodecId::THRIFT, 42i32.encode_body(CodecId::THRIFT).unwrap()).unwrap(),
            42
        );
        // Field 1 of a real struct is read the same way (a Thrift `_args` struct).
        let args = Test { author: "ann".into() }.encode_body(CodecId::THRIFT).unwrap();
        assert_eq!(String::decode_body(CodecId::THRIFT, args).unwrap(), "ann");
        assert!(
            i32::decode_body(CodecId::THRIFT, Bytes::from_static(&[0])).is_err(),
            "no field 1"
        );
    }

    #[test]
    fn every_type_round_trips_and_unknown_fields_are_skipped() {
        let rich = Rich {
            flag: true,
            small: -3,
            mid: 300,
            num: -70000,
            big: 1 << 40,
            ratio: 0.25,
            name: "名字".into(),
            missing: None,
            list: vec![1, 2, 3],
            map: [("a".to_string(), 1), ("b".to_string(), 2)].into_iter().collect(),
            inner: Test { author: "x".into() },
            color: Color::Green,
        };
        let bytes = rich.encode_body(CodecId::THRIFT).unwrap();
        assert_eq!(value_len(&bytes, STRUCT), Some(bytes.len()));
        assert_eq!(Rich::decode_body(CodecId::THRIFT, bytes.clone()).unwrap(), rich);
        // A reader that knows only the first field skips the rest.
        #[derive(Debug, Deserialize)]
        struct OnlyFlag {
            flag: bool,
        }
        assert!(OnlyFlag::decode_body(CodecId::THRIFT, bytes).unwrap().flag);
        let _ = Color::Red;
    }

    #[test]
    fn hostile_input_fails_cleanly() {
        for bad in [
            &b"\x0b\x00\x01\xff\xff\xff\xff"[..],
            b"\x0f\x00\x01\x08\x7f\xff\xff\xff",
            b"\x0d",
            b"\x63\x00\x01",
        ] {
            assert!(
                Test::decode_body(CodecId::THRIFT, bad.to_vec().into()).is_err(),
                "{bad:?}"
            );
            assert_eq!(value_len(bad, STRUCT), None);
        }
        // Deep nesting is refused, not followed.
        let deep: Vec<u8> = std::iter::repeat_n([STRUCT, 0, 1], 1000).flatten().collect();
        assert_eq!(value_len(&deep, STRUCT), None);
    }
}
