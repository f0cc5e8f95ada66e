//! Calls waiting for their reply, keyed by seq.
//!
//! Each entry is a oneshot sender; the reader task completes it when the REPLY with that seq
//! arrives, and losing the connection completes every entry with `102 Connection Closed`. The
//! [`Waiting`] future removes its entry when the caller stops waiting before the outcome is in
//! (a dropped call), so the map never keeps calls nobody waits for.
//!
//! Seqs are taken here, from the session's counter, skipping any seq still waiting: after the
//! counter wraps around (2³² messages), a new call never takes over an older call's entry.
//!
//! Call timeouts are not one timer per call: a sweeper task, running only while some call has
//! a deadline, looks every [`SWEEP_EVERY`] for calls past theirs and completes them with
//! [`Outcome::TimedOut`]. A call ends at most that much after its deadline; in exchange the
//! hot path registers no timer at all.

use std::collections::hash_map::Entry as MapEntry;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::message::Message;
use crate::status::Status;

/// How a waiting call ends.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The REPLY arrived (its status may still be an error).
    Reply(Message),
    /// The call ended without a reply: the connection was lost, a hook refused the reply…
    Failed(Status),
    /// The deadline passed first.
    TimedOut,
}

/// How often the sweeper looks for calls past their deadline.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(10);

struct Entry {
    tx: oneshot::Sender<Outcome>,
    deadline: Option<Instant>,
}

/// Shards of the map, so callers registering and the reader completing rarely meet on one
/// lock.
const SHARDS: usize = 8;

type Shard = Mutex<FxHashMap<i32, Entry>>;

#[derive(Default)]
pub(crate) struct Pending {
    shards: [Shard; SHARDS],
    sweeping: AtomicBool,
    /// Set while someone waits for the map to empty ([`Pending::drained`]), so the hot path
    /// notifies only then.
    watched: AtomicBool,
    emptied: Notify,
    /// Set while the reader has stopped reading until this end makes a call of its own
    /// ([`Pending::registered`]).
    reader_waits: AtomicBool,
    registered_call: Notify,
}

impl Pending {
    /// Takes the next free seq from `counter` and registers a call under it; the returned
    /// future resolves with its outcome.
    pub(crate) fn register(self: &Arc<Self>, counter: &AtomicI32, deadline: Option<Instant>) -> (i32, Waiting) {
        let (tx, rx) = oneshot::channel();
        let entry = Entry { tx, deadline };
        let seq = loop {
            let seq = counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            match self.shard(seq).entry(seq) {
                MapEntry::Vacant(slot) => {
                    slot.insert(entry);
                    break seq;
                }
                // Still waiting since before the counter wrapped around: skip it.
                MapEntry::Occupied(_) => {}
            }
        };
        if self.reader_waits.load(Ordering::Acquire) {
            self.registered_call.notify_one();
        }
        // Load first: a swap on every call would bounce the flag's cache line between threads.
        if deadline.is_some() && !self.sweeping.load(Ordering::Acquire) && !self.sweeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
        let waiting = Waiting {
            rx,
            pending: self.clone(),
            seq,
            settled: false,
        };
        (seq, waiting)
    }

    /// Completes the call waiting for `seq`; false if none waits (a late or unknown reply).
    pub(crate) fn complete(&self, seq: i32, outcome: Outcome) -> bool {
        let entry = self.shard(seq).remove(&seq);
        self.removed();
        match entry {
            Some(entry) => entry.tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Whether a call waits for `seq`.
    pub(crate) fn contains(&self, seq: i32) -> bool {
        self.shard(seq).contains_key(&seq)
    }

    /// Completes every waiting call with `status`.
    pub(crate) fn fail_all(&self, status: &Status) {
        for shard in &self.shards {
            let calls = std::mem::take(&mut *lock(shard));
            for (_, entry) in calls {
                let _ = entry.tx.send(Outcome::Failed(status.clone()));
            }
        }
        self.removed();
    }

    /// Number of calls waiting.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Resolves once no call waits.
    pub(crate) async fn drained(&self) {
        self.watched.store(true, Ordering::Release);
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            emptied.await;
        }
    }

    /// Resolves when this end registers a call (while the reader has stopped reading).
    pub(crate) async fn registered(&self) {
        self.reader_waits.store(true, Ordering::Release);
        let registered = self.registered_call.notified();
        tokio::pin!(registered);
        registered.as_mut().enable();
        if self.len() == 0 {
            registered.await;
        }
        self.reader_waits.store(false, Ordering::Release);
    }

    fn removed(&self) {
        if self.watched.load(Ordering::Acquire) {
            self.emptied.notify_waiters();
        }
    }

    /// Completes the calls past their deadline; whether any call still has a deadline.
    fn expire(&self, now: Instant) -> bool {
        let mut waiting = false;
        for shard in &self.shards {
            let mut calls = lock(shard);
            let late: Vec<i32> = calls
                .iter()
                .filter(|(_, e)| e.deadline.is_some_and(|d| d <= now))
                .map(|(&s, _)| s)
                .collect();
            for seq in late {
                if let Some(entry) = calls.remove(&seq) {
                    let _ = entry.tx.send(Outcome::TimedOut);
                }
            }
            waiting |= calls.values().any(|e| e.deadline.is_some());
        }
        self.removed();
        waiting
    }

    fn shard(&self, seq: i32) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
        lock(&self.shards[seq as u32 as usize % SHARDS])
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs while calls with deadlines wait; stops when none do (or the session is gone).
async fn sweep(pending: Weak<Pending>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(pending) = pending.upgrade() else { return };
        if pending.expire(Instant::now()) {
            continue;
        }
        pending.sweeping.store(false, Ordering::Release);
        // A call registered between the look and the store saw the sweeper running: look
        // again, and keep going if there is one (and no other sweeper took over).
        if !pending.expire(Instant::now()) || pending.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
    }
}

/// The outcome of a registered call, to await. Dropped before the outcome is in, it removes its
/// entry; after, there is nothing to remove (whoever sent the outcome took the entry out), so
/// the common path takes no second lock.
pub(crate) struct Waiting {
    rx: oneshot::Receiver<Outcome>,
    pending: Arc<Pending>,
    seq: i32,
    settled: bool,
}

impl Future for Waiting {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let outcome = ready!(Pin::new(&mut self.rx).poll(cx));
        self.settled = true;
        // Whatever takes an entry out answers it, so a sender dropped unanswered means the
        // session itself went away.
        Poll::Ready(outcome.unwrap_or_else(|_| Outcome::Failed(Status::conn_closed("the session was closed"))))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.settled {
            self.pending.shard(self.seq).remove(&self.seq);
            self.pending.removed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrapped_seq_never_takes_over_a_waiting_call() {
        let pending = Arc::new(Pending::default());
        // A call made just before the counter wraps is still waiting when it comes round again.
        let counter = AtomicI32::new(i32::MAX - 1);
        let (old_seq, old_call) = pending.register(&counter, None);
        assert_eq!(old_seq, i32::MAX);
        counter.store(old_seq - 1, Ordering::Relaxed);
        let (new_seq, new_call) = pending.register(&counter, None);
        assert_ne!(new_seq, old_seq, "the new call must skip the seq still waiting");
        assert_eq!(new_seq, i32::MIN, "the counter wraps like Go's");
        assert_eq!(pending.len(), 2);
        // Each reply reaches its own call.
        assert!(pending.complete(old_seq, Outcome::Failed(Status::internal("old"))));
        assert!(pending.complete(new_seq, Outcome::Failed(Status::internal("new"))));
        let Outcome::Failed(old) = old_call.await else {
            panic!("old call lost")
        };
        let Outcome::Failed(new) = new_call.await else {
            panic!("new call lost")
        };
        assert_eq!((old.cause(), new.cause()), (Some("old"), Some("new")));
    }

    #[tokio::test]
    async fn drained_resolves_when_the_last_call_ends() {
        let pending = Arc::new(Pending::default());
        let counter = AtomicI32::new(0);
        let (_, call) = pending.register(&counter, None);
        let drained = pending.drained();
        tokio::pin!(drained);
        assert!(futures_util::FutureExt::now_or_never(drained.as_mut()).is_none());
        drop(call);
        drained.await;
    }
}
