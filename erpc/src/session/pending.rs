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
//! Call timeouts are not one timer per call: a sweeper task per session, running only while
//! some call has a deadline, sleeps until the earliest deadline it knows of, completes the calls
//! past theirs with [`Outcome::TimedOut`], and sleeps again. A call registered with a deadline
//! later than the one the sweeper sleeps until (the usual case: calls with the same timeout,
//! made one after another) costs one atomic load; an earlier one re-arms the sweeper. So the
//! hot path registers no timer, and an idle or busy session's sweeper wakes about once per
//! call timeout, not once per call nor every few milliseconds.

use std::collections::hash_map::Entry as MapEntry;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, ready};

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
    /// The deadline the sweeper sleeps until, as [`Due`] (no deadline: `u64::MAX`), and how to
    /// wake it for an earlier one.
    next_due: NextDue,
    rearm: Arc<Notify>,
    /// Set while someone waits for the map to empty ([`Pending::drained`]), so the hot path
    /// notifies only then.
    watched: AtomicBool,
    /// Set while someone waits for some calls to end ([`Pending::settled`]).
    settling: AtomicBool,
    emptied: Notify,
    /// Set while the reader has stopped reading until this end makes a call of its own
    /// ([`Pending::registered`]).
    reader_waits: AtomicBool,
    registered_call: Notify,
    /// Calls whose [`Waiting`] lives: registered and not yet given up or answered to their
    /// caller.
    in_flight: AtomicUsize,
}

impl Pending {
    /// Takes the next free seq from `counter` and registers a call under it; the returned
    /// future resolves with its outcome. [`Waiting::is_alone`] says whether no other call of
    /// this session was in flight.
    pub(crate) fn register(self: &Arc<Self>, counter: &AtomicI32, deadline: Option<Instant>) -> (i32, Waiting) {
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
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
        if let Some(deadline) = deadline {
            let due = due_of(deadline);
            // Loads first: a store or swap on every call would bounce these cache lines
            // between threads.
            if due < self.next_due.0.load(Ordering::Acquire) {
                self.next_due.0.fetch_min(due, Ordering::AcqRel);
                self.rearm.notify_one();
            }
            if !self.sweeping.load(Ordering::Acquire) && !self.sweeping.swap(true, Ordering::AcqRel) {
                tokio::spawn(sweep(Arc::downgrade(self), self.rearm.clone()));
            }
        }
        let waiting = Waiting {
            rx,
            pending: self.clone(),
            seq,
            settled: false,
            alone,
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

    /// The seqs of the calls waiting now.
    pub(crate) fn seqs(&self) -> Vec<i32> {
        self.shards
            .iter()
            .flat_map(|shard| lock(shard).keys().copied().collect::<Vec<_>>())
            .collect()
    }

    /// Resolves once none of `seqs` waits any more (answered, failed or timed out).
    pub(crate) async fn settled(&self, seqs: &[i32]) {
        /// Clears the flag however the wait ends, so completions stop notifying.
        struct Settling<'a>(&'a AtomicBool);
        impl Drop for Settling<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.settling.store(true, Ordering::Release);
        let _settling = Settling(&self.settling);
        let mut left = seqs.to_vec();
        loop {
            let removed = self.emptied.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            left.retain(|&seq| self.contains(seq));
            if left.is_empty() {
                return;
            }
            removed.await;
        }
    }

    /// Resolves when this end registers a call (while the reader has stopped reading).
    pub(crate) async fn registered(&self) {
        /// Clears the flag however the wait ends (the reader may stop waiting for another
        /// reason), so calls stop notifying.
        struct Waits<'a>(&'a AtomicBool);
        impl Drop for Waits<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.reader_waits.store(true, Ordering::Release);
        let _waits = Waits(&self.reader_waits);
        let registered = self.registered_call.notified();
        tokio::pin!(registered);
        registered.as_mut().enable();
        if self.len() == 0 {
            registered.await;
        }
    }

    fn removed(&self) {
        if self.watched.load(Ordering::Acquire) || self.settling.load(Ordering::Acquire) {
            self.emptied.notify_waiters();
        }
    }

    /// Completes the calls past their deadline; returns the earliest deadline left.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for shard in &self.shards {
            let mut calls = lock(shard);
            let late: Vec<i32> = calls
                .iter()
                .filter(|(_, e)| e.deadline.is_some_and(|d| d <= now))
                .map(|(&seq, _)| seq)
                .collect();
            for seq in late {
                if let Some(entry) = calls.remove(&seq) {
                    let _ = entry.tx.send(Outcome::TimedOut);
                }
            }
            for deadline in calls.values().filter_map(|e| e.deadline) {
                earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            }
        }
        self.removed();
        earliest
    }

    fn shard(&self, seq: i32) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
        lock(&self.shards[seq as u32 as usize % SHARDS])
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs while calls with deadlines wait; stops when none do (or the session is gone).
async fn sweep(pending: Weak<Pending>, rearm: Arc<Notify>) {
    loop {
        let Some(due) = pending.upgrade().map(|p| p.next_due.0.load(Ordering::Acquire)) else {
            return;
        };
        if due != u64::MAX {
            tokio::select! {
                () = tokio::time::sleep_until(instant(due)) => {}
                () = rearm.notified() => {}
            }
        }
        let Some(pending) = pending.upgrade() else { return };
        // Forget what we slept for first: a call registered from now on compares itself with
        // what this pass finds, or with nothing.
        pending.next_due.0.store(u64::MAX, Ordering::Release);
        if let Some(earliest) = pending.expire(Instant::now()) {
            pending.next_due.0.fetch_min(due_of(earliest), Ordering::AcqRel);
            continue;
        }
        pending.sweeping.store(false, Ordering::Release);
        // A call registered between the look and the store saw the sweeper running: look
        // again, and keep going if there is one (and no other sweeper took over).
        match pending.expire(Instant::now()) {
            Some(earliest) if !pending.sweeping.swap(true, Ordering::AcqRel) => {
                pending.next_due.0.fetch_min(due_of(earliest), Ordering::AcqRel);
            }
            _ => return,
        }
    }
}

/// A deadline as nanoseconds since a fixed instant, so that it fits an atomic.
type Due = u64;

/// The deadline the sweeper sleeps until; `u64::MAX` for none.
struct NextDue(AtomicU64);

impl Default for NextDue {
    fn default() -> Self {
        NextDue(AtomicU64::new(u64::MAX))
    }
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn due_of(deadline: Instant) -> Due {
    u64::try_from(deadline.saturating_duration_since(base()).as_nanos()).unwrap_or(u64::MAX - 1)
}

fn instant(due: Due) -> Instant {
    base() + std::time::Duration::from_nanos(due)
}

/// The outcome of a registered call, to await. Dropped before the outcome is in, it removes its
/// entry; after, there is nothing to remove (whoever sent the outcome took the entry out), so
/// the common path takes no second lock.
pub(crate) struct Waiting {
    rx: oneshot::Receiver<Outcome>,
    pending: Arc<Pending>,
    seq: i32,
    settled: bool,
    alone: bool,
}

impl Waiting {
    /// Whether this was the only call of its session in flight when it was registered: no
    /// other caller's message can join it in a write.
    pub(crate) fn is_alone(&self) -> bool {
        self.alone
    }
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
        self.pending.in_flight.fetch_sub(1, Ordering::AcqRel);
        if !self.settled {
            self.pending.shard(self.seq).remove(&self.seq);
            self.pending.removed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[tokio::test(start_paused = true)]
    async fn calls_time_out_at_their_deadline_even_behind_a_later_one() {
        let pending = Arc::new(Pending::default());
        let counter = AtomicI32::new(0);
        let started = Instant::now();
        let (_, long) = pending.register(&counter, Some(started + Duration::from_secs(30)));
        // Registered after a later deadline: re-arms the sweeper.
        let (_, short) = pending.register(&counter, Some(started + Duration::from_secs(1)));
        assert!(matches!(short.await, Outcome::TimedOut));
        let at = started.elapsed();
        assert!(
            at >= Duration::from_secs(1) && at < Duration::from_millis(1001),
            "{at:?}"
        );
        assert_eq!(pending.len(), 1, "the later call still waits");
        assert!(matches!(long.await, Outcome::TimedOut));
        let at = started.elapsed();
        assert!(
            at >= Duration::from_secs(30) && at < Duration::from_millis(30_001),
            "{at:?}"
        );
        assert_eq!(pending.len(), 0);
    }
}
