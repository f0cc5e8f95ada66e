//! The protobuf codec (`'p'`). Protobuf bodies are prost messages wrapped in
//! [`Proto`](super::Proto), which encode themselves; the registered codec only exists so the
//! id has a name and to explain the mistake when a serde type is sent with it.

use super::{Codec, CodecError, CodecId, Visit};

pub(crate) struct ProtobufCodec;

const HINT: &str = "protobuf bodies are prost messages: wrap the type in erpc::Protobuf<T>";

impl Codec for ProtobufCodec {
    fn id(&self) -> CodecId {
        CodecId::PROTOBUF
    }
    fn name(&self) -> &'static str {
        "protobuf"
    }
    fn encode(&self, _: &dyn erased_serde::Serialize, _: &mut Vec<u8>) -> Result<(), CodecError> {
        Err(CodecError::Incompatible {
            codec: "protobuf",
            reason: HINT.into(),
        })
    }
    fn decode(&self, _: &[u8], _: &mut Visit<'_>) -> Result<(), CodecError> {
        Err(CodecError::Incompatible {
            codec: "protobuf",
            reason: HINT.into(),
        })
    }
}
