//! The json codec (`'j'`): serde_json.

use super::{Codec, CodecError, CodecId, Visit};

/// JSON via serde_json; any valid JSON decodes (byte-exact JSON is not needed for interop).
pub(crate) struct JsonCodec;

impl Codec for JsonCodec {
    fn id(&self) -> CodecId {
        CodecId::JSON
    }
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut ser = serde_json::Serializer::new(out);
        value
            .erased_serialize(&mut <dyn erased_serde::Serializer>::erase(&mut ser))
            .map_err(|e| CodecError::Encode {
                codec: "json",
                reason: e.to_string(),
            })
    }
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError> {
        let fail = |e: &dyn std::fmt::Display| CodecError::Decode {
            codec: "json",
            reason: e.to_string(),
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de)).map_err(|e| fail(&e))?;
        de.end().map_err(|e| fail(&e))
    }
}
