//! The peer's session registry, keyed by session id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::session::Session;

/// Sessions by id. Putting a session under an id another session holds closes the older one,
/// as Go does (a second login with the same id kicks the first out).
#[derive(Default)]
pub(crate) struct Hub {
    sessions: Mutex<HashMap<Arc<str>, Session>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, session: Session) {
        let old = self.lock().insert(session.id(), session.clone());
        if let Some(old) = old.filter(|old| !same(old, &session)) {
            tokio::spawn(async move { old.close().await });
        }
    }

    pub(crate) fn remove(&self, session: &Session) {
        let mut sessions = self.lock();
        let id = session.id();
        if sessions.get(&id).is_some_and(|s| same(s, session)) {
            sessions.remove(&id);
        }
    }

    pub(crate) fn rename(&self, old_id: &str, session: Session) {
        {
            let mut sessions = self.lock();
            if !sessions.get(old_id).is_some_and(|s| same(s, &session)) {
                return; // not registered (closing, or still starting)
            }
            sessions.remove(old_id);
        }
        self.insert(session);
    }

    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        self.lock().get(id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Session> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

fn same(a: &Session, b: &Session) -> bool {
    a.ptr_eq(b)
}
