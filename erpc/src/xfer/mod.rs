//! Transfer filters: reversible byte transforms applied to framed messages.
//!
//! A message names its filters in its [`XferPipe`], outermost first. Packing applies the last
//! filter first, unpacking the first filter first, so `[g, m]` sends `gzip(payload ‖ md5)`.
//! Which bytes a pipe covers is the protocol's business (everything after the ids in rawproto,
//! the body only in httproto…).
//!
//! Filter ids are not fixed by eRPC; both ends must agree. The registry starts with the
//! repo's conventions, gzip as `'g'` (level 5) and md5 as `'m'` (with erpc's `gzip` and `md5`
//! features); [`register`] adds yours.

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "md5")]
mod md5;

#[cfg(feature = "gzip")]
#[cfg_attr(docsrs, doc(cfg(feature = "gzip")))]
pub use gzip::Gzip;
#[cfg(feature = "md5")]
#[cfg_attr(docsrs, doc(cfg(feature = "md5")))]
pub use md5::Md5;

use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use bytes::Bytes;

/// Why a transfer filter could not pack or unpack.
#[derive(Debug, thiserror::Error)]
pub enum XferError {
    /// The id names no registered filter (or a built-in one this build leaves out: the message
    /// names the feature that adds it).
    #[error("unknown xfer filter id {0:?}: {reason}", reason = unknown_reason(*.0))]
    Unknown(u8),
    /// A pipe may hold at most 255 filters.
    #[error("an xfer pipe holds at most 255 filters")]
    TooLong,
    /// The filter found its input corrupt (bad gzip, md5 mismatch…).
    #[error("{filter} filter: {reason}")]
    Corrupt {
        /// The filter's name.
        filter: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Unpacking would produce more bytes than the message size limit allows.
    #[error("{filter} filter: unpacked data exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The filter's name.
        filter: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A filter with this id or name is already registered.
    #[error("cannot register xfer filter {name:?} with id {id}: {reason}")]
    Register {
        /// The filter's id.
        id: u8,
        /// The filter's name.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// A transfer filter.
pub trait XferFilter: Send + Sync + 'static {
    /// The wire id.
    fn id(&self) -> u8;
    /// The name (httproto sends it in `X-Content-Encoding`).
    fn name(&self) -> &'static str;
    /// Transforms outgoing bytes.
    fn pack(&self, input: Bytes) -> Result<Bytes, XferError>;
    /// Reverses [`pack`](Self::pack). Must fail rather than produce more than `limit` bytes.
    fn unpack(&self, input: Bytes, limit: usize) -> Result<Bytes, XferError>;
}

struct Registry {
    slots: [OnceLock<Arc<dyn XferFilter>>; 256],
    registering: Mutex<()>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let registry = Registry {
        slots: [const { OnceLock::new() }; 256],
        registering: Mutex::new(()),
    };
    #[cfg(feature = "gzip")]
    let _ = registry.slots[usize::from(b'g')].set(Arc::new(Gzip::new(b'g', "gzip", 5)));
    #[cfg(feature = "md5")]
    let _ = registry.slots[usize::from(b'm')].set(Arc::new(Md5::new(b'm', "md5")));
    registry
});

/// Registers a filter for the whole process; fails on an id or name already taken.
pub fn register(filter: Arc<dyn XferFilter>) -> Result<(), XferError> {
    let (id, name) = (filter.id(), filter.name());
    let _guard = REGISTRY.registering.lock().unwrap_or_else(|e| e.into_inner());
    if by_name(name).is_some() {
        return Err(XferError::Register {
            id,
            name,
            reason: "the name is taken",
        });
    }
    REGISTRY.slots[usize::from(id)]
        .set(filter)
        .map_err(|_| XferError::Register {
            id,
            name,
            reason: "the id is taken",
        })
}

/// The filter registered under `id`.
pub fn by_id(id: u8) -> Option<&'static Arc<dyn XferFilter>> {
    REGISTRY.slots[usize::from(id)].get()
}

/// The filter registered under `name`.
pub fn by_name(name: &str) -> Option<&'static Arc<dyn XferFilter>> {
    REGISTRY
        .slots
        .iter()
        .filter_map(OnceLock::get)
        .find(|f| f.name() == name)
}

/// The erpc feature that adds the built-in filter `name` (`gzip`, `md5`, or its id as one
/// character, `g`, `m`), when this build leaves it out and nothing else was registered in its
/// place; `None` otherwise.
pub fn missing_feature(name: &str) -> Option<&'static str> {
    let (feature, id, enabled) = match name {
        "gzip" | "g" => ("gzip", b'g', cfg!(feature = "gzip")),
        "md5" | "m" => ("md5", b'm', cfg!(feature = "md5")),
        _ => return None,
    };
    (!enabled && by_id(id).is_none()).then_some(feature)
}

/// What to do about an unknown filter id.
fn unknown_reason(id: u8) -> String {
    match missing_feature(std::str::from_utf8(&[id]).unwrap_or_default()) {
        Some(feature) => format!("the {feature} filter needs erpc's `{feature}` feature"),
        None => "register it on both ends".to_string(),
    }
}

/// The ordered list of transfer-filter ids of a message, outermost first.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct XferPipe {
    ids: Vec<u8>,
}

impl XferPipe {
    /// An empty pipe.
    pub const fn new() -> Self {
        XferPipe { ids: Vec::new() }
    }

    /// A pipe of registered filter ids; fails on an unknown id or more than 255 ids.
    pub fn from_ids(ids: &[u8]) -> Result<Self, XferError> {
        let mut pipe = XferPipe::new();
        for &id in ids {
            pipe.push(id)?;
        }
        Ok(pipe)
    }

    /// Appends a registered filter id.
    pub fn push(&mut self, id: u8) -> Result<(), XferError> {
        if self.ids.len() >= 255 {
            return Err(XferError::TooLong);
        }
        by_id(id).ok_or(XferError::Unknown(id))?;
        self.ids.push(id);
        Ok(())
    }

    /// The ids, outermost first.
    pub fn ids(&self) -> &[u8] {
        &self.ids
    }

    /// Whether the pipe is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Applies the filters for sending: the last first, the first (outermost) last.
    pub fn pack(&self, mut data: Bytes) -> Result<Bytes, XferError> {
        for &id in self.ids.iter().rev() {
            data = by_id(id).ok_or(XferError::Unknown(id))?.pack(data)?;
        }
        Ok(data)
    }

    /// Reverses [`pack`](Self::pack); no stage may grow the data beyond `limit` bytes.
    pub fn unpack(&self, mut data: Bytes, limit: usize) -> Result<Bytes, XferError> {
        for &id in &self.ids {
            data = by_id(id).ok_or(XferError::Unknown(id))?.unpack(data, limit)?;
        }
        Ok(data)
    }
}

impl std::fmt::Debug for XferPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.ids
                    .iter()
                    .map(|&id| by_id(id).map_or_else(|| id.to_string(), |x| x.name().to_string())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "gzip", feature = "md5"))]
    #[test]
    fn pipes_pack_innermost_first_and_unpack_in_reverse() {
        let pipe = XferPipe::from_ids(b"gm").unwrap();
        let payload = Bytes::from_static(b"hello hello hello hello");
        let packed = pipe.pack(payload.clone()).unwrap();
        // The outermost layer is gzip.
        assert_eq!(&packed[..2], &[0x1f, 0x8b]);
        let inner = Gzip::new(b'g', "gzip", 5).unpack(packed.clone(), 1 << 20).unwrap();
        assert_eq!(&inner[..payload.len()], &payload[..]);
        assert_eq!(inner.len(), payload.len() + 16);
        assert_eq!(pipe.unpack(packed, 1 << 20).unwrap(), payload);
    }

    #[test]
    fn unknown_ids_and_overlong_pipes_are_refused() {
        assert!(matches!(XferPipe::from_ids(b"?"), Err(XferError::Unknown(b'?'))));
        #[cfg(feature = "gzip")]
        assert!(matches!(XferPipe::from_ids(&[b'g'; 256]), Err(XferError::TooLong)));
        // A built-in filter left out of the build is unknown, and the error says what adds it.
        #[cfg(not(feature = "gzip"))]
        assert!(
            XferPipe::from_ids(b"g")
                .unwrap_err()
                .to_string()
                .contains("erpc's `gzip` feature")
        );
        #[cfg(feature = "md5")]
        assert!(register(Arc::new(Md5::new(b'm', "md5-again"))).is_err());
        #[cfg(feature = "md5")]
        assert!(register(Arc::new(Md5::new(b'M', "md5"))).is_err());
    }
}
