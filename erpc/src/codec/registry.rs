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
    let builtins: Vec<Arc<dyn Codec>> = vec![
        Arc::new(super::json::JsonCodec),
        #[cfg(feature = "protobuf")]
        Arc::new(super::protobuf::ProtobufCodec),
        Arc::new(super::plain::PlainCodec),
        #[cfg(feature = "form")]
        Arc::new(super::form::FormCodec),
        #[cfg(feature = "xml")]
        Arc::new(super::xml::XmlCodec),
        #[cfg(feature = "thrift")]
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

/// The built-in codecs each optional feature adds: (feature, id, name, in this build).
const OPTIONAL: [(&str, u8, &str, bool); 4] = [
    ("protobuf", b'p', "protobuf", cfg!(feature = "protobuf")),
    ("form", b'f', "form", cfg!(feature = "form")),
    ("xml", b'x', "xml", cfg!(feature = "xml")),
    ("thrift", b't', "thrift", cfg!(feature = "thrift")),
];

/// The erpc feature that adds the built-in codec `name` (or `id`, given as its one-character
/// name), when this build leaves it out and nothing else took its place; `None` when the
/// codec is available or not a built-in one. For error messages: "the xml codec needs erpc's
/// `xml` feature".
pub fn missing_feature(name: &str) -> Option<&'static str> {
    let (feature, id, _, enabled) = OPTIONAL
        .into_iter()
        .find(|&(_, id, n, _)| n == name || name.as_bytes() == [id])?;
    (!enabled && by_id(CodecId(id)).is_none()).then_some(feature)
}

/// `" (the xml codec needs erpc's `xml` feature)"` for the id of a built-in codec this build
/// leaves out, else nothing.
pub(super) fn missing_feature_hint(id: u8) -> String {
    OPTIONAL
        .into_iter()
        .find(|&(_, i, _, _)| i == id)
        .and_then(|(_, _, name, _)| Some((name, missing_feature(name)?)))
        .map_or_else(String::new, |(name, feature)| {
            format!(" (the {name} codec needs erpc's `{feature}` feature)")
        })
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

    #[test]
    fn left_out_codecs_name_their_feature() {
        assert_eq!(missing_feature("json"), None);
        assert_eq!(missing_feature("nonesuch"), None);
        #[cfg(feature = "xml")]
        assert_eq!(missing_feature("xml"), None);
        #[cfg(not(feature = "xml"))]
        {
            assert_eq!(missing_feature("xml"), Some("xml"));
            assert_eq!(
                CodecError::Unsupported(b'x').to_string(),
                "unsupported codec id: 120 (the xml codec needs erpc's `xml` feature)"
            );
        }
    }
}
