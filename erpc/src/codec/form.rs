//! The form codec (`'f'`): `application/x-www-form-urlencoded` via serde_html_form, which
//! supports repeated keys for sequence fields.

use super::{Codec, CodecError, CodecId, Visit};

/// Form encoding of maps and structs.
pub(crate) struct FormCodec;

impl Codec for FormCodec {
    fn id(&self) -> CodecId {
        CodecId::FORM
    }
    fn name(&self) -> &'static str {
        "form"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let text = serde_html_form::to_string(value).map_err(|e| CodecError::Encode {
            codec: "form",
            reason: e.to_string(),
        })?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
    fn decode(&self, bytes: &[u8], visit: &mut Visit<'_>) -> Result<(), CodecError> {
        let de = serde_html_form::Deserializer::from_bytes(bytes);
        visit(&mut <dyn erased_serde::Deserializer>::erase(de)).map_err(|e| CodecError::Decode {
            codec: "form",
            reason: e.to_string(),
        })
    }
}
