//! The process-wide codec registry: 256 slots indexed by id, filled once each.

use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use super::{Codec, CodecError, CodecId};

struct Registry {
    slots: [OnceLock<Arc<dyn Codec>>; 256],
    registering: Mutex<()>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let registry = Registry {
        slots: [const { OnceLock::new() }; 256],
        registering: Mutex::new(()),
    };
    let builtins: [Arc<dyn Codec>; 6] = [
        Arc::new(super::json::JsonCodec),
        Arc::new(super::protobuf::ProtobufCodec),
        Arc::new(super::plain::PlainCodec),
        Arc::new(super::form::FormCodec),
        Arc::new(super::xml::XmlCodec),
        Arc::new(super::thrift::ThriftCodec),
    ];
    for codec in builtins {
        let _ = registry.slots[usize::from(codec.id().0)].set(codec);
    }
    registry
});

/// Registers a codec for the whole process. Fails on id 0 and on an id or name already
/// taken (Go panics on both).
pub fn register(codec: Arc<dyn Codec>) -> Result<(), CodecError> {
    let (id, name) = (codec.id().0, codec.name());
    let fail = |reason| Err(CodecError::Register { id, name, reason });
    if id == 0 {
        return fail("id 0 means \"no codec\"; pick an unused byte");
    }
    let _guard = REGISTRY.registering.lock().unwrap_or_else(|e| e.into_inner());
    if by_name(name).is_some() {
        return fail("the name is taken");
    }
    REGISTRY.slots[usize::from(id)]
        .set(codec)
        .or_else(|_| fail("the id is taken"))
}

/// The codec registered under `id`.
pub fn by_id(id: CodecId) -> Option<&'static Arc<dyn Codec>> {
    REGISTRY.slots[usize::from(id.0)].get()
}

/// The codec registered under `name` (as in config files: `json`, `protobuf`, `plain`…).
pub fn by_name(name: &str) -> Option<&'static Arc<dyn Codec>> {
    REGISTRY
        .slots
        .iter()
        .filter_map(OnceLock::get)
        .find(|c| c.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_registered_and_duplicates_refused() {
        assert_eq!(by_name("json").unwrap().id(), CodecId::JSON);
        assert_eq!(by_id(CodecId::PLAIN).unwrap().name(), "plain");
        assert!(by_id(CodecId(b'Z')).is_none());
        assert!(register(Arc::new(super::super::json::JsonCodec)).is_err());
    }
}
