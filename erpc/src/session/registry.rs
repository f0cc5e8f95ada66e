//! The sessions of one peer, by id, and [`Sessions`], the handle plugins and handlers use to
//! look them up and broadcast.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::Session;
use super::call::{self, PushFuture, Target};
use crate::codec::EncodeBody;
use crate::observe::Gauge;
use crate::status::Status;

/// Sessions by id. Putting a session under an id another session holds closes the older one,
/// as Go does (a second login with the same id kicks the first out). Owned by the peer;
/// sessions refer to it weakly.
pub(crate) struct Registry {
    sessions: Mutex<HashMap<Arc<str>, Session>>,
    /// How many sessions are registered (the `erpc_sessions_open` gauge).
    open: Gauge,
}

impl Registry {
    pub(crate) fn new(open: Gauge) -> Registry {
        Registry {
            sessions: Mutex::default(),
            open,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, session: Session) {
        let old = {
            let mut sessions = self.lock();
            let old = sessions.insert(session.id(), session.clone());
            self.open.set(sessions.len() as f64);
            old
        };
        if let Some(old) = old.filter(|old| !old.ptr_eq(&session)) {
            tokio::spawn(async move { old.close().await });
        }
    }

    pub(crate) fn remove(&self, session: &Session) {
        let mut sessions = self.lock();
        let id = session.id();
        if sessions.get(&id).is_some_and(|s| s.ptr_eq(session)) {
            sessions.remove(&id);
            self.open.set(sessions.len() as f64);
        }
    }

    pub(crate) fn rename(&self, old_id: &str, session: Session) {
        {
            let mut sessions = self.lock();
            if !sessions.get(old_id).is_some_and(|s| s.ptr_eq(&session)) {
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

/// A peer's live sessions, for plugins and background tasks: look one up, range over them,
/// broadcast. It does not keep the peer alive: once the peer is dropped it is empty.
#[derive(Clone)]
pub struct Sessions {
    registry: Weak<Registry>,
}

impl Sessions {
    pub(crate) fn new(registry: &Arc<Registry>) -> Sessions {
        Sessions {
            registry: Arc::downgrade(registry),
        }
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.registry.upgrade()?.get(id)
    }

    /// Every live session (accepted and dialed).
    pub fn all(&self) -> Vec<Session> {
        self.registry.upgrade().map(|r| r.all()).unwrap_or_default()
    }

    /// Whether the peer is still there (dropped peers have no sessions and get none).
    pub fn is_peer_alive(&self) -> bool {
        self.registry.strong_count() > 0
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.registry.upgrade().map_or(0, |r| r.len())
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pushes to every live session at once; see [`Broadcast`].
    pub async fn broadcast<A: EncodeBody + ?Sized + Sync>(&self, service_method: &str, args: &A) -> Broadcast {
        broadcast(self.all(), service_method, args).await
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("len", &self.len()).finish()
    }
}

/// What a broadcast did: how many sessions took the push, and why the others did not.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// Sessions the push was queued on.
    pub reached: usize,
    /// Sessions that did not take it (closed, or not reading within the push timeout), by id.
    pub failed: Vec<(Arc<str>, Status)>,
}

/// Pushes to all `sessions` concurrently: each push is bounded by its own deadline, so a
/// session whose peer stopped reading delays nobody else.
pub(crate) async fn broadcast<A: EncodeBody + ?Sized + Sync>(
    sessions: Vec<Session>,
    service_method: &str,
    args: &A,
) -> Broadcast {
    let mut report = Broadcast::default();
    let Some(first) = sessions.first() else {
        return report;
    };
    // Encoded once: the sessions of one peer share its settings (codec, push timeout).
    let settings = first.settings();
    let timeout = settings.push_timeout;
    let msg = match call::broadcast_message(settings, service_method, args) {
        Ok(msg) => msg,
        Err(status) => {
            report.failed = sessions.iter().map(|s| (s.id(), status.clone())).collect();
            return report;
        }
    };
    let pushes = sessions.iter().map(|session| {
        let push = PushFuture::new(Target::Session(session), msg.clone(), timeout);
        async move { (session, push.await) }
    });
    for (session, result) in futures_util::future::join_all(pushes).await {
        match result {
            Ok(()) => report.reached += 1,
            Err(status) => {
                tracing::debug!(session = %session.id(), %status, "broadcast skipped a session");
                report.failed.push((session.id(), status));
            }
        }
    }
    report
}
