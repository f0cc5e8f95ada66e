//! Calls waiting for their reply, keyed by seq.
//!
//! Each entry is a oneshot sender; the reader task completes it when the REPLY with that seq
//! arrives, and losing the connection completes every entry with `102 Connection Closed`. The
//! [`Waiting`] future removes its entry when the caller stops waiting before the outcome is in
//! (a dropped call), so the map never keeps calls nobody waits for.
//!
//! Seqs are taken here, from the session's counter (kept on the table's first cache line, which
//! every call touches anyway), skipping any seq still waiting: after the counter wraps around
//! (2³² messages), a new call never takes over an older call's entry.
//!
//! Call timeouts are not one timer per call: the session's reader task sweeps the table on the
//! timer it already keeps for its own limits (see the link). The table keeps the earliest
//! deadline the reader must look at; the reader sleeps until then (or an earlier limit of its
//! own), [`sweep`](Pending::sweep)s the calls past their deadline out with
//! [`Outcome::TimedOut`], and sleeps again. A call registered with a deadline later than that
//! (the usual case: calls with the same timeout, made one after another) costs one atomic
//! load; an earlier one wakes the reader to re-arm. So the hot path registers no timer, no
//! task of its own runs per session, and a busy session's reader wakes for deadlines about
//! once per call timeout. Calls only wait here while a link is up: losing the link ends them
//! all with `102`, so there is always a reader to sweep them.
//!
//! A call made while no other call of its session is in flight (one caller per session, the
//! common shape of many-session clients) skips the map: it sits in the session's single solo
//! slot, with its outcome and its caller's waker inline, so it costs no map entry and no
//! channel allocation, and the few words it touches share one cache line. The map itself is
//! made by the first call that needs it: a session that never has two calls in flight (an idle
//! one, most server sessions) carries none.

use std::collections::hash_map::Entry as MapEntry;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker, ready};

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

/// `Pending` is aligned to a cache line and laid out in declaration order, so the words every
/// call touches (the count in flight, the solo slot, the next deadline) share its first line;
/// with thousands of sessions, each call finds its session's state cold in cache.
#[derive(Default)]
#[repr(C, align(64))]
pub(crate) struct Pending {
    /// The session's seq counter: the last seq taken by a call, a push or a handshake.
    seq: AtomicI32,
    /// Calls whose [`Waiting`] lives: registered and not yet given up or answered to their
    /// caller.
    in_flight: AtomicUsize,
    /// The seq of the call in the solo slot while it waits for its outcome, else [`NO_SOLO`]:
    /// read without the lock, so a reply for a call in the map costs one load here.
    solo_seq: SoloSeq,
    /// The earliest deadline the reader must sweep at, as [`Due`] (none: `u64::MAX`); never
    /// later than that of any call waiting.
    next_due: NextDue,
    /// Set while someone waits for the map to empty ([`Pending::drained`]), so the hot path
    /// notifies only then.
    watched: AtomicBool,
    /// Set while someone waits for some calls to end ([`Pending::settled`]).
    settling: AtomicBool,
    /// Set while the reader has stopped reading until this end makes a call of its own
    /// ([`Pending::registered`]).
    reader_waits: AtomicBool,
    solo: Mutex<Solo>,
    /// The calls made while others were in flight; made on the first such call, so sessions
    /// that never have two calls at once (idle ones, servers, one-caller clients) carry none.
    map: OnceLock<Box<[Shard; SHARDS]>>,
    emptied: Notify,
    registered_call: Notify,
}

/// [`Pending::solo_seq`] when the solo slot holds no waiting call.
const NO_SOLO: i64 = i64::MIN;

/// The seq of the waiting solo call as an `i64`, or [`NO_SOLO`] (the default).
struct SoloSeq(AtomicI64);

impl Default for SoloSeq {
    fn default() -> Self {
        SoloSeq(AtomicI64::new(NO_SOLO))
    }
}

impl SoloSeq {
    fn get(&self) -> Option<i32> {
        i32::try_from(self.0.load(Ordering::Acquire)).ok()
    }

    fn set(&self, seq: Option<i32>) {
        self.0.store(seq.map_or(NO_SOLO, i64::from), Ordering::Release);
    }

    fn is(&self, seq: i32) -> bool {
        self.0.load(Ordering::Acquire) == i64::from(seq)
    }
}

/// The solo slot: the call made while no other was in flight.
#[derive(Default)]
enum Solo {
    #[default]
    Free,
    /// Registered, waiting for its outcome; `waker` is the caller's once it has polled.
    Waiting {
        seq: i32,
        deadline: Option<Instant>,
        waker: Option<Waker>,
    },
    /// The outcome is in, for the caller to take.
    Done(Outcome),
}

impl Pending {
    /// A table whose first seq follows `last_seq` (the last one a handshake took).
    pub(crate) fn counting_from(last_seq: i32) -> Pending {
        Pending {
            seq: AtomicI32::new(last_seq),
            ..Pending::default()
        }
    }

    /// The next seq, for a message that waits for no reply (CALLs and PUSHes share one counter,
    /// which wraps like Go's).
    pub(crate) fn next_seq(&self) -> i32 {
        super::next_seq(&self.seq)
    }

    /// Takes the next free seq and registers a call under it; the returned
    /// future resolves with its outcome. [`Waiting::is_alone`] says whether no other call of
    /// this session was in flight.
    pub(crate) fn register(&self, deadline: Option<Instant>) -> (i32, Waiting<'_>) {
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        let (seq, rx) = match alone.then(|| self.register_solo(deadline)).flatten() {
            Some(seq) => (seq, None),
            None => {
                let (seq, rx) = self.register_in_map(deadline);
                (seq, Some(rx))
            }
        };
        if self.reader_waits.load(Ordering::Acquire) {
            self.registered_call.notify_one();
        }
        let mut earlier = false;
        if let Some(deadline) = deadline {
            let due = due_of(deadline);
            // Loads first: a store or swap on every call would bounce these cache lines
            // between threads.
            earlier =
                due < self.next_due.0.load(Ordering::Acquire) && due < self.next_due.0.fetch_min(due, Ordering::AcqRel);
        }
        let waiting = Waiting {
            rx,
            pending: self,
            seq,
            settled: false,
            alone,
            earlier,
        };
        (seq, waiting)
    }

    /// Puts a call that is alone in flight in the solo slot. No other call waits (each ended
    /// call leaves the slot and the map before it stops counting as in flight), so the next
    /// seq is free. `None` if the slot is somehow taken: the call goes to the map.
    fn register_solo(&self, deadline: Option<Instant>) -> Option<i32> {
        let mut solo = lock(&self.solo);
        if !matches!(*solo, Solo::Free) {
            return None;
        }
        let seq = self.next_seq();
        *solo = Solo::Waiting {
            seq,
            deadline,
            waker: None,
        };
        self.solo_seq.set(Some(seq));
        Some(seq)
    }

    fn register_in_map(&self, deadline: Option<Instant>) -> (i32, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let entry = Entry { tx, deadline };
        loop {
            let seq = self.next_seq();
            if self.solo_seq.is(seq) {
                continue; // the solo call waits since before the counter wrapped around
            }
            match self.shard_or_new(seq).entry(seq) {
                MapEntry::Vacant(slot) => {
                    slot.insert(entry);
                    return (seq, rx);
                }
                // Still waiting since before the counter wrapped around: skip it.
                MapEntry::Occupied(_) => {}
            }
        }
    }

    /// Completes the call waiting for `seq`; false if none waits (a late or unknown reply).
    pub(crate) fn complete(&self, seq: i32, outcome: Outcome) -> bool {
        let answered = if self.solo_seq.is(seq) {
            self.complete_solo(Some(seq), || outcome)
        } else {
            match self.shard(seq).and_then(|mut shard| shard.remove(&seq)) {
                Some(entry) => entry.tx.send(outcome).is_ok(),
                None => false,
            }
        };
        self.removed();
        answered
    }

    /// Gives the solo call (if `seq`, only the call with that seq) its outcome and wakes its
    /// caller; false if no such call waits.
    fn complete_solo(&self, seq: Option<i32>, outcome: impl FnOnce() -> Outcome) -> bool {
        let mut solo = lock(&self.solo);
        let waker = match &mut *solo {
            Solo::Waiting {
                seq: waiting, waker, ..
            } if seq.is_none_or(|seq| seq == *waiting) => waker.take(),
            _ => return false,
        };
        *solo = Solo::Done(outcome());
        self.solo_seq.set(None);
        drop(solo);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Whether a call waits for `seq`.
    pub(crate) fn contains(&self, seq: i32) -> bool {
        self.solo_seq.is(seq) || self.shard(seq).is_some_and(|shard| shard.contains_key(&seq))
    }

    /// Completes every waiting call with `status`.
    pub(crate) fn fail_all(&self, status: &Status) {
        self.complete_solo(None, || Outcome::Failed(status.clone()));
        for shard in self.shards() {
            let calls = std::mem::take(&mut *lock(shard));
            for (_, entry) in calls {
                let _ = entry.tx.send(Outcome::Failed(status.clone()));
            }
        }
        self.removed();
    }

    /// Number of calls waiting.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.solo_seq.get().is_some()) + self.shards().iter().map(|shard| lock(shard).len()).sum::<usize>()
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
        self.solo_seq
            .get()
            .into_iter()
            .chain(
                self.shards()
                    .iter()
                    .flat_map(|shard| lock(shard).keys().copied().collect::<Vec<_>>()),
            )
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
        let solo = match &*lock(&self.solo) {
            Solo::Waiting { seq, deadline, .. } => deadline.map(|deadline| (*seq, deadline)),
            _ => None,
        };
        if let Some((seq, deadline)) = solo
            && (deadline > now || !self.complete_solo(Some(seq), || Outcome::TimedOut))
        {
            earliest = Some(deadline);
        }
        for shard in self.shards() {
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

    /// The earliest time a call waiting may pass its deadline (none: no call has one).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.next_due.0.load(Ordering::Acquire) {
            u64::MAX => None,
            due => Some(instant(due)),
        }
    }

    /// Ends the calls past their deadline at `now` with [`Outcome::TimedOut`], if one may be;
    /// [`next_deadline`](Self::next_deadline) is then the earliest deadline left.
    pub(crate) fn sweep(&self, now: Instant) {
        if self.next_due.0.load(Ordering::Acquire) > due_of(now) {
            return;
        }
        // Forget the old deadline first: a call registered from now on lowers it again itself,
        // whether or not this pass sees that call.
        self.next_due.0.store(u64::MAX, Ordering::Release);
        if let Some(earliest) = self.expire(now) {
            self.next_due.0.fetch_min(due_of(earliest), Ordering::AcqRel);
        }
    }

    /// The map's shards (none before the first call that needed the map).
    fn shards(&self) -> &[Shard] {
        self.map.get().map_or(&[], |map| &map[..])
    }

    /// The shard of `seq`, if the map exists.
    fn shard(&self, seq: i32) -> Option<std::sync::MutexGuard<'_, FxHashMap<i32, Entry>>> {
        self.map.get().map(|map| lock(&map[shard_of(seq)]))
    }

    /// The shard of `seq`, making the map if need be.
    fn shard_or_new(&self, seq: i32) -> std::sync::MutexGuard<'_, FxHashMap<i32, Entry>> {
        lock(&self.map.get_or_init(Box::default)[shard_of(seq)])
    }
}

fn shard_of(seq: i32) -> usize {
    seq as u32 as usize % SHARDS
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deadline as nanoseconds since a fixed instant, so that it fits an atomic.
type Due = u64;

/// The deadline the reader must sweep at; `u64::MAX` for none.
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
pub(crate) struct Waiting<'a> {
    /// The map entry's channel; `None` for the solo call.
    rx: Option<oneshot::Receiver<Outcome>>,
    pending: &'a Pending,
    seq: i32,
    settled: bool,
    alone: bool,
    /// Its deadline is earlier than [`Pending::next_deadline`] was.
    earlier: bool,
}

impl Waiting<'_> {
    /// Whether this was the only call of its session in flight when it was registered: no
    /// other caller's message can join it in a write.
    pub(crate) fn is_alone(&self) -> bool {
        self.alone
    }

    /// Whether this call brought a deadline earlier than any the table had: whoever sweeps it
    /// must look at [`Pending::next_deadline`] again.
    pub(crate) fn brings_earlier_deadline(&self) -> bool {
        self.earlier
    }

    fn poll_solo(&self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut solo = lock(&self.pending.solo);
        match &mut *solo {
            Solo::Waiting { waker, .. } => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Solo::Done(_) => {
                let Solo::Done(outcome) = std::mem::take(&mut *solo) else {
                    unreachable!("matched above")
                };
                Poll::Ready(outcome)
            }
            // Only this call's own drop frees the slot it holds.
            Solo::Free => Poll::Ready(Outcome::Failed(Status::conn_closed("the session was closed"))),
        }
    }
}

impl Future for Waiting<'_> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let outcome = match &mut self.rx {
            None => ready!(self.poll_solo(cx)),
            Some(rx) => {
                // Whatever takes an entry out answers it, so a sender dropped unanswered means
                // the session itself went away.
                ready!(Pin::new(rx).poll(cx))
                    .unwrap_or_else(|_| Outcome::Failed(Status::conn_closed("the session was closed")))
            }
        };
        self.settled = true;
        Poll::Ready(outcome)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Out of the slot or the map first, then no longer in flight: a call that finds none
        // in flight finds the slot free.
        if self.rx.is_none() {
            if !self.settled {
                let mut solo = lock(&self.pending.solo);
                if matches!(&*solo, Solo::Waiting { seq, .. } if *seq == self.seq) {
                    self.pending.solo_seq.set(None);
                }
                *solo = Solo::Free;
                drop(solo);
                self.pending.removed();
            }
        } else if !self.settled {
            if let Some(mut shard) = self.pending.shard(self.seq) {
                shard.remove(&self.seq);
            }
            self.pending.removed();
        }
        self.pending.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Asserts that `secs` seconds (to the millisecond) have passed since `started`.
    fn assert_elapsed(started: Instant, secs: u64) {
        let at = started.elapsed();
        let due = Duration::from_secs(secs);
        assert!(at >= due && at < due + Duration::from_millis(1), "{at:?}");
    }

    /// An empty table, its seq counter at zero.
    fn table() -> Arc<Pending> {
        Arc::new(Pending::default())
    }

    /// Sweeps `pending` as a session's reader does: sleeps until the next deadline, and sets
    /// its timer again when `rearm` says a call brought an earlier one.
    fn sweeper(pending: Arc<Pending>, rearm: Arc<Notify>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let ring = async {
                    match pending.next_deadline() {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = ring => pending.sweep(Instant::now()),
                    () = rearm.notified() => {}
                }
            }
        })
    }

    /// Registers a call as a session does, ringing the sweeper for an earlier deadline.
    fn register<'a>(pending: &'a Pending, rearm: &Notify, deadline: Instant) -> Waiting<'a> {
        let (_, call) = pending.register(Some(deadline));
        if call.brings_earlier_deadline() {
            rearm.notify_one();
        }
        call
    }

    #[tokio::test]
    async fn a_wrapped_seq_never_takes_over_a_waiting_call() {
        // A call made just before the counter wraps is still waiting when it comes round again.
        let pending = Pending::counting_from(i32::MAX - 1);
        let (old_seq, old_call) = pending.register(None);
        assert_eq!(old_seq, i32::MAX);
        pending.seq.store(old_seq - 1, Ordering::Relaxed);
        let (new_seq, new_call) = pending.register(None);
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
    async fn a_new_table_waits_for_nothing() {
        let pending = Pending::default();
        assert_eq!((pending.len(), pending.seqs()), (0, vec![]));
        assert!(!pending.contains(0), "seq 0 is not waiting");
        assert!(!pending.complete(0, Outcome::TimedOut));
        pending.drained().await;
    }

    #[tokio::test]
    async fn a_call_alone_in_flight_takes_the_solo_slot_and_the_rest_the_map() {
        let pending = table();
        let (solo_seq, solo) = pending.register(None);
        assert!(solo.is_alone() && solo.rx.is_none(), "the first call is the solo call");
        let (map_seq, in_map) = pending.register(None);
        assert!(
            !in_map.is_alone() && in_map.rx.is_some(),
            "a second call goes to the map"
        );
        assert_eq!(pending.len(), 2);
        assert_eq!(pending.seqs().len(), 2);
        assert!(pending.contains(solo_seq) && pending.contains(map_seq));
        // Each reply reaches its own call, once.
        assert!(pending.complete(map_seq, Outcome::Failed(Status::internal("map"))));
        assert!(pending.complete(solo_seq, Outcome::Failed(Status::internal("solo"))));
        assert!(!pending.complete(solo_seq, Outcome::Failed(Status::internal("again"))));
        assert_eq!(pending.len(), 0);
        let (Outcome::Failed(a), Outcome::Failed(b)) = (solo.await, in_map.await) else {
            panic!("a call lost its outcome")
        };
        assert_eq!((a.cause(), b.cause()), (Some("solo"), Some("map")));
        // With both gone, the next call is alone again and finds the slot free.
        let (_, next) = pending.register(None);
        assert!(next.is_alone() && next.rx.is_none());
    }

    #[tokio::test]
    async fn a_dropped_solo_call_frees_the_slot_and_a_late_reply_finds_nobody() {
        let pending = table();
        let (seq, call) = pending.register(None);
        drop(call);
        assert_eq!(pending.len(), 0);
        assert!(!pending.complete(seq, Outcome::Failed(Status::internal("late"))));
        let (_, next) = pending.register(None);
        assert!(next.rx.is_none(), "the slot is free again");
        // Losing the connection ends the solo call too.
        pending.fail_all(&Status::conn_closed("gone"));
        assert!(matches!(next.await, Outcome::Failed(s) if s.code() == crate::status::Code::CONN_CLOSED));
    }

    #[tokio::test]
    async fn a_wrapped_seq_never_takes_over_the_solo_call() {
        let pending = table();
        let (solo_seq, _solo) = pending.register(None);
        pending.seq.store(solo_seq - 1, Ordering::Relaxed);
        let (map_seq, _in_map) = pending.register(None);
        assert_eq!(map_seq, solo_seq + 1, "the seq of the waiting solo call is skipped");
    }

    #[tokio::test(start_paused = true)]
    async fn the_solo_call_times_out_at_its_deadline() {
        let pending = table();
        let rearm = Arc::new(Notify::new());
        let _sweeper = sweeper(pending.clone(), rearm.clone());
        let started = Instant::now();
        let call = register(&pending, &rearm, started + Duration::from_secs(2));
        assert!(call.rx.is_none());
        assert!(matches!(call.await, Outcome::TimedOut));
        assert_elapsed(started, 2);
        assert_eq!(pending.len(), 0);
    }

    #[tokio::test]
    async fn drained_resolves_when_the_last_call_ends() {
        let pending = table();
        let (_, call) = pending.register(None);
        let drained = pending.drained();
        tokio::pin!(drained);
        assert!(futures_util::FutureExt::now_or_never(drained.as_mut()).is_none());
        drop(call);
        drained.await;
    }

    #[tokio::test(start_paused = true)]
    async fn calls_time_out_at_their_deadline_even_behind_a_later_one() {
        let pending = table();
        let rearm = Arc::new(Notify::new());
        let _sweeper = sweeper(pending.clone(), rearm.clone());
        let started = Instant::now();
        let long = register(&pending, &rearm, started + Duration::from_secs(30));
        assert!(long.brings_earlier_deadline(), "the first deadline is the earliest");
        let later = register(&pending, &rearm, started + Duration::from_secs(40));
        assert!(!later.brings_earlier_deadline(), "a later one needs no re-arming");
        // Registered after a later deadline: the sweeper sets its timer again.
        let short = register(&pending, &rearm, started + Duration::from_secs(1));
        assert!(short.brings_earlier_deadline());
        assert!(matches!(short.await, Outcome::TimedOut));
        assert_elapsed(started, 1);
        assert_eq!(pending.len(), 2, "the later calls still wait");
        assert!(matches!(long.await, Outcome::TimedOut));
        assert_elapsed(started, 30);
        assert!(matches!(later.await, Outcome::TimedOut));
        assert_elapsed(started, 40);
        assert_eq!(pending.len(), 0);
    }
}
