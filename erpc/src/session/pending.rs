//! Calls waiting for their reply, keyed by seq.
//!
//! Each entry is a oneshot sender; the reader task completes it when the REPLY with that seq
//! arrives, and losing the connection completes every entry with `102 Connection Closed`. The
//! [`PendingGuard`] removes an entry when the caller stops waiting (timeout or dropped future),
//! so the map never keeps calls nobody waits for.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::message::Message;
use crate::status::Status;

/// What a waiting call receives.
pub(crate) type Outcome = Result<Message, Status>;

#[derive(Default)]
pub(crate) struct Pending {
    calls: Mutex<FxHashMap<i32, oneshot::Sender<Outcome>>>,
}

impl Pending {
    /// Registers a call under `seq`; the guard unregisters it when dropped.
    pub(crate) fn register(self: &Arc<Self>, seq: i32) -> (PendingGuard, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(seq, tx);
        (
            PendingGuard {
                pending: self.clone(),
                seq,
            },
            rx,
        )
    }

    /// Completes the call waiting for `seq`; false if none waits (a late or unknown reply).
    pub(crate) fn complete(&self, seq: i32, outcome: Outcome) -> bool {
        match self.lock().remove(&seq) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Whether a call waits for `seq`.
    pub(crate) fn contains(&self, seq: i32) -> bool {
        self.lock().contains_key(&seq)
    }

    /// Completes every waiting call with `status`.
    pub(crate) fn fail_all(&self, status: &Status) {
        let calls = std::mem::take(&mut *self.lock());
        for (_, tx) in calls {
            let _ = tx.send(Err(status.clone()));
        }
    }

    /// Number of calls waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<i32, oneshot::Sender<Outcome>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes its call from the pending map when dropped.
pub(crate) struct PendingGuard {
    pending: Arc<Pending>,
    seq: i32,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.seq);
    }
}
