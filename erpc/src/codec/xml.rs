//! The xml codec (`'x'`): quick-xml's serde support. A struct `X { a: 1 }` is `<X><a>1</a></X>`,
//! like Go's `encoding/xml` with the struct's field names. Top-level scalars and sequences
//! have no root element in XML: wrap them in a struct.

use super::{Codec, CodecError, CodecId, Visit};

pub(crate) struct XmlCodec;

impl Codec for XmlCodec {
    fn id(&self) -> CodecId {
        CodecId::XML
    }
    fn name(&self) -> &'static str {
        "xml"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut text = String::new();
        serde::Serialize::serialize(value, quick_xml::se::Serializer::new(&mut text)).map_err(|e| {
            CodecError::Encode {
                codec: "xml",
                reason: e.to_string(),
            }
        })?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError> {
        let text = std::str::from_utf8(bytes).map_err(|_| CodecError::Decode {
            codec: "xml",
            reason: "not UTF-8".into(),
        })?;
        let mut de = quick_xml::de::Deserializer::from_str(text);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de)).map_err(|e| CodecError::Decode {
            codec: "xml",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::codec::{CodecId, DecodeBody, EncodeBody};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct X {
        #[serde(rename = "A")]
        a: i32,
        name: String,
    }

    #[test]
    fn structs_round_trip() {
        let x = X {
            a: 1,
            name: "n<&>".into(),
        };
        let bytes = x.encode_body(CodecId::XML).unwrap();
        assert_eq!(bytes, "<X><A>1</A><name>n&lt;&amp;&gt;</name></X>");
        assert_eq!(X::decode_body(CodecId::XML, bytes).unwrap(), x);
        assert!(X::decode_body(CodecId::XML, "<X><A>oops</A></X>".into()).is_err());
    }
}
