//! Per-session key/value storage (Go's session "swap").

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Values attached to a session by handlers and plugins: a login, a user id, counters…
///
/// Shared by every handler of the session (Go hands each handler a copy; here all see the
/// same values). Values are any `Clone + Send + Sync` type, looked up by key and type.
#[derive(Clone, Default)]
pub struct Storage {
    values: Arc<RwLock<HashMap<String, Arc<dyn Any + Send + Sync>>>>,
}

impl Storage {
    /// Stores `value` under `key`, replacing any earlier value.
    pub fn insert<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        self.write().insert(key.into(), Arc::new(value));
    }

    /// The value under `key`, if there is one of type `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self, key: &str) -> Option<T> {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values.get(key)?.downcast_ref::<T>().cloned()
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.values.read().unwrap_or_else(|e| e.into_inner()).contains_key(key)
    }

    /// Removes the value under `key`; true if there was one.
    pub fn remove(&self, key: &str) -> bool {
        self.write().remove(key).is_some()
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.values.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<dyn Any + Send + Sync>>> {
        self.values.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        f.debug_set().entries(values.keys()).finish()
    }
}
