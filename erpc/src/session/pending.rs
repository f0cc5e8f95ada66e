//! Calls waiting for their reply, keyed by seq.
//!
//! Each entry is a oneshot sender; the reader task completes it when the REPLY with that seq
//! arrives, and losing the connection completes every entry with `102 Connection Closed`. The
//! [`Waiting`] future removes its entry when the caller stops waiting before the outcome is in
//! (a dropped call), so the map never keeps calls nobody waits for.
//!
//! Call timeouts are not one timer per call: a sweeper task, running only while some call has
//! a deadline, looks every [`SWEEP_EVERY`] for calls past theirs and completes them with
//! [`timed_out`]. A call ends at most that much after its deadline; in exchange the hot path
//! registers no timer at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::message::Message;
use crate::status::{Status, code};

/// What a waiting call receives.
pub(crate) type Outcome = Result<Message, Status>;

/// How often the sweeper looks for calls past their deadline.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// The status the sweeper completes a late call with; the caller words the final message.
pub(crate) fn timed_out() -> Status {
    Status::new(code::HANDLE_TIMEOUT, "")
}

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
}

impl Pending {
    /// Registers a call under `seq`; the returned future resolves with its outcome.
    pub(crate) fn register(self: &Arc<Self>, seq: i32, deadline: Option<Instant>) -> Waiting {
        let (tx, rx) = oneshot::channel();
        self.shard(seq).insert(seq, Entry { tx, deadline });
        // Load first: a swap on every call would bounce the flag's cache line between threads.
        if deadline.is_some() && !self.sweeping.load(Ordering::Acquire) && !self.sweeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
        Waiting {
            rx,
            pending: self.clone(),
            seq,
            settled: false,
        }
    }

    /// Completes the call waiting for `seq`; false if none waits (a late or unknown reply).
    pub(crate) fn complete(&self, seq: i32, outcome: Outcome) -> bool {
        match self.shard(seq).remove(&seq) {
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
                let _ = entry.tx.send(Err(status.clone()));
            }
        }
    }

    /// Number of calls waiting.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
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
                    let _ = entry.tx.send(Err(timed_out()));
                }
            }
            waiting |= calls.values().any(|e| e.deadline.is_some());
        }
        waiting
    }

    fn shard(&self, seq: i32) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
        lock(&self.shards[seq as usize % SHARDS])
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
        Poll::Ready(outcome.unwrap_or_else(|_| Err(Status::conn_closed("the session was closed"))))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.settled {
            self.pending.shard(self.seq).remove(&self.seq);
        }
    }
}
