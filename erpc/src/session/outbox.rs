//! The output side of a link: a queue of framed messages and the writer that empties it.
//!
//! Senders frame their message outside any lock (see [`with_frame`]) and append the bytes to
//! the queue under a short one. Only the writer task waits on the socket. It takes the whole
//! queue at once, so concurrent senders share one system call (write batching), and before
//! writing it yields: tokio runs a woken task next, so without the yield it would write each
//! caller's message alone, right after that caller; yielding puts it behind every ready task,
//! which under load means behind all the callers woken by one batch of replies.
//!
//! The reader never waits for the writer. After a batch of received calls it may hand the
//! replies of the handlers that finished at once to the socket itself, with a write that
//! cannot block ([`Outbox::write_now`]): when the writer is idle and the socket takes every
//! byte, answering costs no task wake-up; whatever the socket does not take at once is left to
//! the writer task.
//!
//! Backpressure: calls and pushes wait (each up to its own deadline) while more than
//! [`HIGH_WATER`] bytes are queued. Replies are never held up, so that a handler never waits
//! on the socket; instead, while more than [`HIGH_WATER`] bytes wait, the reader stops taking
//! new calls from the peer (see the link), unless this end waits for replies of its own: two
//! peers calling each other with large bodies then both keep reading, and neither can wait
//! for the other. A peer that still lets its replies pile up past a hard cap loses its
//! session.
//!
//! Message transports (WebSocket, unixpacket) carry one frame per message: for them the
//! queue also records where each frame ends, and the writer hands the socket one frame per
//! write (their write half sends each write as one message). Streams record nothing: one
//! flag, read where frames are queued and written, is all they pay.
//!
//! Memory: an idle outbox holds no buffer; the queue and the write batch are given back as
//! soon as the writer finds nothing more to write.

use crate::observe::{Counter, Gauge, PeerMetrics};
use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::message::Message;
use crate::net::{WriteHalf, buffers};
use crate::proto::Proto;
use crate::status::{Code, Status};

/// Above this many queued bytes, calls and pushes wait for the writer (backpressure).
pub(crate) const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Replies queued past this (plus one message) close the session: the peer is not reading.
const HARD_CAP: usize = 256 * 1024 * 1024;

/// Room a queue starts with (from the buffer pool): a burst of small frames fills it without
/// growing it.
const QUEUE_ROOM: usize = 16 * 1024;

const OPEN: u8 = 0;
/// No new messages; the writer writes what is queued, shuts the socket down and stops.
const DRAINING: u8 = 1;
/// Writing failed or the link is gone: nothing more is written.
const BROKEN: u8 = 2;

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// More than [`HIGH_WATER`] bytes wait: the sender should wait for [`Outbox::room`].
    Full,
    /// The link is closing or broken.
    Closed,
    /// Replies piled up past the hard cap: the peer is not reading.
    Overflow,
}

struct Queue {
    buf: BytesMut,
    /// Stream offset just past the last queued byte.
    end: u64,
    /// Message transports only: where each frame in `buf` ends.
    frame_ends: Vec<usize>,
}

struct Writer {
    /// The writer task is writing (and may be waiting on the socket): nobody else writes
    /// until it is done. Held for the task's whole write instead of a lock held across
    /// awaits, so that the others take the writer with a plain `try_lock` (an async lock
    /// takes a second lock, for its waiters, on every release).
    busy: bool,
    half: WriteHalf,
    /// Bytes taken from the queue; those before `written` are on the socket. Cleared (not
    /// advanced) once all are written, so the buffer keeps its whole room for the next batch.
    batch: BytesMut,
    written: usize,
    /// Message transports only: where each frame in `batch` ends.
    frame_ends: Vec<usize>,
}

pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
    state: AtomicU8,
    /// Whether more than [`HIGH_WATER`] bytes wait: set by the push that crosses the mark,
    /// cleared when the writer takes the queue (read by the reader without a lock).
    backed_up: AtomicBool,
    /// Wakes the writer task (a stored permit: a wake-up is never lost).
    wake: Notify,
    /// Senders waiting for the queue to drop below [`HIGH_WATER`].
    room: Notify,
    /// Bytes handed to the socket so far, and who waits for them (post-write hooks) or for
    /// the outbox to stop (a reader lingering after a close).
    written: AtomicU64,
    progress: Notify,
    watchers: AtomicUsize,
    hard_cap: usize,
    /// How long a write may wait without the peer taking a byte (none: forever).
    stall_limit: Option<Duration>,
    /// Why the writer stopped, if a write failed.
    failure: Mutex<Option<String>>,
    /// Set when the connection was shut down after its last byte was written (a graceful
    /// close): the reader then lingers for the peer's end of stream (see the link).
    shut_down: AtomicBool,
    /// Whether the connection carries one frame per message.
    messages: bool,
    /// Bytes written (`erpc_bytes_sent_total`) and bytes the writer holds unwritten
    /// (`erpc_queued_bytes`), counted per batch.
    sent: Counter,
    unwritten: Gauge,
}

impl Outbox {
    /// An outbox writing to `half`; `messages` if it carries one frame per message.
    pub(crate) fn new(
        half: WriteHalf,
        messages: bool,
        max_message_size: usize,
        stall_limit: Option<Duration>,
        metrics: &PeerMetrics,
    ) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                buf: BytesMut::new(),
                end: 0,
                frame_ends: Vec::new(),
            }),
            writer: Mutex::new(Writer {
                busy: false,
                half,
                batch: BytesMut::new(),
                written: 0,
                frame_ends: Vec::new(),
            }),
            state: AtomicU8::new(OPEN),
            backed_up: AtomicBool::new(false),
            wake: Notify::new(),
            room: Notify::new(),
            written: AtomicU64::new(0),
            progress: Notify::new(),
            watchers: AtomicUsize::new(0),
            hard_cap: HARD_CAP + max_message_size,
            stall_limit,
            failure: Mutex::new(None),
            shut_down: AtomicBool::new(false),
            messages,
            sent: metrics.bytes_sent.clone(),
            unwritten: metrics.queued_bytes.clone(),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer, if nobody is using it: for writing at once, never waiting.
    fn idle_writer(&self) -> Option<MutexGuard<'_, Writer>> {
        self.writer.try_lock().ok().filter(|writer| !writer.busy)
    }

    /// Takes the writer for the writer task, until the returned guard is dropped; `None` while
    /// someone writes at once (whoever that is looks at the queue again when done).
    fn try_own_writer(&self) -> Option<OwnedWriter<'_>> {
        let mut writer = match self.writer.try_lock() {
            Ok(writer) => writer,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        debug_assert!(
            !writer.busy,
            "only the writer task takes the writer, one write at a time"
        );
        writer.busy = true;
        Some(OwnedWriter(self))
    }

    /// [`try_own_writer`](Self::try_own_writer), waiting (without blocking the thread) for a
    /// write at once to finish.
    async fn own_writer(&self) -> OwnedWriter<'_> {
        loop {
            if let Some(owned) = self.try_own_writer() {
                return owned;
            }
            tokio::task::yield_now().await;
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// Appends one frame; returns the stream offset just past it. Replies are refused only
    /// past the hard cap, calls and pushes past [`HIGH_WATER`].
    pub(crate) fn push(&self, frame: &[u8], is_reply: bool) -> Result<u64, Refused> {
        let mut queue = self.queue();
        if !self.is_open() {
            return Err(Refused::Closed);
        }
        let queued = queue.buf.len();
        if is_reply {
            if queued + frame.len() > self.hard_cap {
                return Err(Refused::Overflow);
            }
        } else if queued >= HIGH_WATER {
            return Err(Refused::Full);
        }
        if queue.buf.capacity() == 0 {
            queue.buf = buffers::take(frame.len().max(QUEUE_ROOM));
            queue.buf.reserve(frame.len());
        }
        queue.buf.extend_from_slice(frame);
        queue.end += frame.len() as u64;
        if self.messages {
            let end = queue.buf.len();
            queue.frame_ends.push(end);
        }
        if queue.buf.len() >= HIGH_WATER && !self.backed_up.load(Ordering::Relaxed) {
            self.backed_up.store(true, Ordering::Release);
        }
        Ok(queue.end)
    }

    /// Bytes handed to the socket so far (grows with every write).
    pub(crate) fn written_total(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Has the writer task write what is queued.
    pub(crate) fn kick(&self) {
        self.wake.notify_one();
    }

    /// Whether more than [`HIGH_WATER`] bytes wait to be written; no lock taken.
    pub(crate) fn is_backed_up(&self) -> bool {
        self.backed_up.load(Ordering::Acquire)
    }

    /// Bytes waiting in the queue (not counting a batch being written).
    pub(crate) fn queued(&self) -> usize {
        self.queue().buf.len()
    }

    /// Waits until the queue has room for calls and pushes again (or the link closes).
    pub(crate) async fn room(&self) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.queued() < HIGH_WATER || !self.is_open() {
                return;
            }
            room.await;
        }
    }

    /// Waits until every byte up to stream offset `end` was handed to the socket; false if
    /// the link broke first.
    pub(crate) async fn written_through(&self, end: u64) -> bool {
        self.watchers.fetch_add(1, Ordering::AcqRel);
        let _unwatch = Unwatch(&self.watchers);
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.written.load(Ordering::Acquire) >= end {
                return true;
            }
            if self.state.load(Ordering::Acquire) == BROKEN {
                return false;
            }
            progress.await;
        }
    }

    /// Writes what is queued without ever waiting: only when the writer is idle, and only
    /// what the socket takes at once; the rest is left to the writer task.
    pub(crate) fn write_now(&self) {
        // Whoever holds the writer looks at the queue again after letting go.
        let Some(mut writer) = self.idle_writer() else { return };
        if self.state.load(Ordering::Acquire) == BROKEN {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if writer.batch.is_empty() && !self.take_queue(&mut writer) {
                break;
            }
            match poll_write_batch(&mut writer, &mut cx, self) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return self.write_failed(&e),
                Poll::Pending => {
                    // The socket is full: the writer task waits for it (with a real waker).
                    drop(writer);
                    return self.kick();
                }
            }
        }
        drop(writer);
        // Queued while we held the writer by someone who then left it to us.
        if self.queued() > 0 {
            self.kick();
        }
    }

    /// Queues `frame` (a call or push) and has it written at once, like [`push`](Self::push)
    /// then [`write_now`](Self::write_now). When nothing else is queued or being written (a
    /// call alone in flight on a stream), the frame goes straight from the caller's buffer to
    /// the socket: no queue, no pooled buffer, no copy. What the socket does not take at once
    /// is left to the writer task.
    pub(crate) fn write_through(&self, frame: &[u8]) -> Result<u64, Refused> {
        let writer = if self.messages { None } else { self.idle_writer() };
        let queue_and_write = || {
            let end = self.push(frame, false)?;
            self.write_now();
            Ok(end)
        };
        let Some(mut writer) = writer.filter(|w| w.batch.is_empty()) else {
            return queue_and_write();
        };
        let end = {
            let mut queue = self.queue();
            if !self.is_open() {
                return Err(Refused::Closed);
            }
            if !queue.buf.is_empty() {
                // Others queued first: this frame goes behind theirs.
                drop((queue, writer));
                return queue_and_write();
            }
            queue.end += frame.len() as u64;
            queue.end
        };
        self.unwritten.increment(frame.len() as f64);
        let mut cx = Context::from_waker(Waker::noop());
        let mut done = 0;
        let flushed = match poll_write_bytes(&mut writer.half, &mut cx, frame, &mut done, self) {
            // TLS streams keep records until flushed; the writer task finishes a flush that
            // waits.
            Poll::Ready(Ok(())) => Pin::new(&mut writer.half).poll_flush(&mut cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // The socket is full: the writer task writes the rest when it can (from the
                // batch buffer it may still hold, else a pooled one).
                if writer.batch.capacity() == 0 {
                    writer.batch = buffers::take(frame.len() - done);
                }
                writer.batch.extend_from_slice(&frame[done..]);
                Poll::Pending
            }
        };
        drop(writer);
        match flushed {
            Poll::Ready(Err(e)) => self.write_failed(&e),
            // Also for what was queued while we held the writer, by someone who left it to us.
            Poll::Pending => self.kick(),
            Poll::Ready(Ok(())) if self.queued() > 0 => self.kick(),
            Poll::Ready(Ok(())) => {}
        }
        Ok(end)
    }

    /// Moves the queue into the write batch; false (and buffers given back) when it is empty.
    fn take_queue(&self, writer: &mut Writer) -> bool {
        let mut queue = self.queue();
        if queue.buf.is_empty() {
            // Idle: hold no memory until the next message.
            buffers::give_if_empty(&mut queue.buf);
            drop(queue);
            buffers::give_if_empty(&mut writer.batch);
            return false;
        }
        std::mem::swap(&mut queue.buf, &mut writer.batch);
        self.unwritten.increment(writer.batch.len() as f64);
        if self.messages {
            std::mem::swap(&mut queue.frame_ends, &mut writer.frame_ends);
        }
        // Under the queue's lock, so that a push crossing the mark again is not undone.
        let was_backed_up = self.backed_up.load(Ordering::Relaxed) && self.backed_up.swap(false, Ordering::AcqRel);
        drop(queue);
        if was_backed_up {
            self.room.notify_waiters();
        }
        true
    }

    /// Writes what is queued, waiting on the socket as long as it takes.
    ///
    /// With `all`, it goes on until the queue is empty (the last writes of a closing link).
    /// Otherwise, when more was queued during a write, it does not write that at once: it
    /// kicks itself, so the writer task yields first and the next write carries every message
    /// the ready tasks queue meanwhile (written at once, the messages of callers running on
    /// the other worker thread would trickle out a few per system call).
    async fn write_queued(&self, all: bool) -> std::io::Result<()> {
        loop {
            let owned = if all {
                self.own_writer().await
            } else {
                match self.try_own_writer() {
                    Some(owned) => owned,
                    // Someone writes at once; they look at the queue again when done.
                    None => return Ok(()),
                }
            };
            let mut wrote = false;
            loop {
                {
                    let mut writer = self.writer();
                    if writer.batch.is_empty() {
                        if wrote && !all && self.queued() > 0 {
                            drop((writer, owned));
                            self.kick();
                            return Ok(());
                        }
                        // Also gives the buffers back when nothing is queued.
                        if !self.take_queue(&mut writer) {
                            break;
                        }
                    }
                }
                let mut stall = StallGuard::new(self.stall_limit);
                poll_fn(|cx| {
                    let mut writer = self.writer();
                    let before = writer.written;
                    match poll_write_batch(&mut writer, cx, self) {
                        Poll::Pending => {
                            let progressed = writer.written != before;
                            drop(writer);
                            stall.poll(cx, progressed)
                        }
                        done => done,
                    }
                })
                .await?;
                wrote = true;
            }
            poll_fn(|cx| Pin::new(&mut self.writer().half).poll_flush(cx)).await?;
            drop(owned);
            // The reader may have queued replies while we held the writer, and left them to
            // us: look again after letting go.
            if self.queued() == 0 {
                return Ok(());
            }
            if !all {
                self.kick();
                return Ok(());
            }
        }
    }

    fn wrote(&self, n: usize) {
        self.sent.increment(n as u64);
        self.unwritten.decrement(n as f64);
        self.written.fetch_add(n as u64, Ordering::AcqRel);
        if self.watchers.load(Ordering::Acquire) > 0 {
            self.progress.notify_waiters();
        }
    }

    fn write_failed(&self, error: &std::io::Error) {
        tracing::debug!(%error, "write failed");
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        self.stop();
    }

    /// Why the writer stopped, if a write failed.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops everything: nothing more is queued or written; waiters are released.
    pub(crate) fn stop(&self) {
        self.state.store(BROKEN, Ordering::Release);
        self.wake.notify_one();
        self.room.notify_waiters();
        self.progress.notify_waiters();
    }

    /// Takes no new messages; the writer writes what is queued (within `limit`), shuts the
    /// socket down and stops.
    pub(crate) fn drain(&self) {
        let _ = self
            .state
            .compare_exchange(OPEN, DRAINING, Ordering::AcqRel, Ordering::Acquire);
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// The writer task: writes whenever kicked, until the link stops. When draining, it
    /// writes the rest within `drain_limit` and shuts the connection down.
    pub(crate) async fn run(&self, drain_limit: Duration) {
        loop {
            self.wake.notified().await;
            match self.state.load(Ordering::Acquire) {
                BROKEN => return,
                // Rare, and boxed so that the task of every idle session stays small.
                DRAINING => return Box::pin(self.finish(drain_limit)).await,
                _ => {}
            }
            // Let every task that is ready run first: callers woken by the same batch of
            // replies queue their next calls, and this write carries them all.
            tokio::task::yield_now().await;
            if let Err(e) = self.write_queued(false).await {
                return self.write_failed(&e);
            }
        }
    }

    /// Shuts the connection down at once when nothing is left to write and the writer is free
    /// (the usual close of a quiet link), and stops; false if the writer task has to finish
    /// the drain (bytes still queued, a write under way, or a shutdown that must wait).
    pub(crate) fn shut_down_now(&self) -> bool {
        let Some(mut writer) = self.idle_writer() else {
            return false;
        };
        if !writer.batch.is_empty() || self.queued() > 0 {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut writer.half).poll_shutdown(&mut cx) {
            Poll::Pending => return false,
            Poll::Ready(Err(e)) => tracing::debug!(error = %e, "could not shut the connection down"),
            Poll::Ready(Ok(())) => self.shut_down.store(true, Ordering::Release),
        }
        drop(writer);
        self.stop();
        true
    }

    /// Whether the connection was shut down after its last byte was written.
    pub(crate) fn was_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Resolves once the outbox has stopped: its last bytes written (or given up on), a write
    /// failed, or the link was stopped.
    pub(crate) async fn stopped(&self) {
        loop {
            let stopped = self.progress.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.state.load(Ordering::Acquire) == BROKEN {
                return;
            }
            stopped.await;
        }
    }

    async fn finish(&self, limit: Duration) {
        let finished = async {
            self.write_queued(true).await?;
            let _owned = self.own_writer().await;
            poll_fn(|cx| Pin::new(&mut self.writer().half).poll_shutdown(cx)).await
        };
        match tokio::time::timeout(limit, finished).await {
            Ok(Ok(())) => self.shut_down.store(true, Ordering::Release),
            Ok(Err(e)) => tracing::debug!(error = %e, "could not write the last messages"),
            Err(_) => tracing::debug!("the peer did not take the last messages within {limit:?}"),
        }
        self.stop();
    }
}

/// The writer task's hold on the writer (see [`Writer::busy`]), released however the task's
/// write ends, cancellation included.
struct OwnedWriter<'a>(&'a Outbox);

impl Drop for OwnedWriter<'_> {
    fn drop(&mut self) {
        self.0.writer().busy = false;
    }
}

/// Ends a write the peer takes nothing of for too long: a peer that stopped reading holds no
/// output memory for ever. The timer is made only when a write has to wait.
struct StallGuard {
    limit: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallGuard {
    fn new(limit: Option<Duration>) -> StallGuard {
        StallGuard { limit, timer: None }
    }

    /// Called when the write would block; `progressed` if it wrote something first.
    fn poll(&mut self, cx: &mut Context<'_>, progressed: bool) -> Poll<std::io::Result<()>> {
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let Some(deadline) = Instant::now().checked_add(limit) else {
            return Poll::Pending;
        };
        let timer = match &mut self.timer {
            Some(timer) => {
                if progressed {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer took none of our output for {limit:?} (frame_timeout): it stopped reading"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // A broken link leaves its batch unwritten: take it off the gauge.
        let writer = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        let left = writer.batch.len().saturating_sub(writer.written);
        if left > 0 {
            self.unwritten.decrement(left as f64);
        }
    }
}

/// Writes the batch from `written` on until all of it is written (then clears it) or the
/// socket would block; counts what was written.
fn poll_write_batch(writer: &mut Writer, cx: &mut Context<'_>, outbox: &Outbox) -> Poll<std::io::Result<()>> {
    if outbox.messages {
        return poll_write_messages(writer, cx, outbox);
    }
    let Writer {
        half, batch, written, ..
    } = writer;
    ready!(poll_write_bytes(half, cx, batch, written, outbox))?;
    batch.clear();
    *written = 0;
    // TLS streams keep records until flushed.
    Pin::new(&mut *half).poll_flush(cx)
}

/// Writes `bytes` from `written` on until all are written or the socket would block; counts
/// what was written.
fn poll_write_bytes(
    half: &mut WriteHalf,
    cx: &mut Context<'_>,
    bytes: &[u8],
    written: &mut usize,
    outbox: &Outbox,
) -> Poll<std::io::Result<()>> {
    while *written < bytes.len() {
        match ready!(Pin::new(&mut *half).poll_write(cx, &bytes[*written..]))? {
            0 => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            n => {
                *written += n;
                outbox.wrote(n);
            }
        }
    }
    Poll::Ready(Ok(()))
}

/// [`poll_write_batch`] for a message transport: one write per frame, each taken whole.
fn poll_write_messages(writer: &mut Writer, cx: &mut Context<'_>, outbox: &Outbox) -> Poll<std::io::Result<()>> {
    let Writer {
        half,
        batch,
        written,
        frame_ends,
        ..
    } = writer;
    // Every write takes a whole frame, so `written` is always where a frame ends.
    let first = frame_ends.partition_point(|&end| end <= *written);
    for &end in &frame_ends[first..] {
        match Pin::new(&mut *half).poll_write(cx, &batch[*written..end]) {
            Poll::Ready(Ok(n)) if n == end - *written => {
                *written = end;
                outbox.wrote(n);
            }
            Poll::Ready(Ok(n)) => {
                return Poll::Ready(Err(std::io::Error::other(format!(
                    "the transport sent {n} bytes of a {}-byte frame as a message",
                    end - *written
                ))));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    batch.clear();
    frame_ends.clear();
    *written = 0;
    Pin::new(&mut *half).poll_flush(cx)
}

struct Unwatch<'a>(&'a AtomicUsize);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// Where messages are framed before they are queued: framing (and gzip) happens outside
    /// the queue's lock, without an allocation per message.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A scratch buffer larger than this is not kept for the next message.
const SCRATCH_KEEP_MAX: usize = 64 * 1024;

/// Frames `msg` into a per-thread scratch buffer and hands the frame to `use_frame`.
pub(crate) fn with_frame<R>(
    proto: &dyn Proto,
    msg: &Message,
    max_size: usize,
    use_frame: impl FnOnce(&[u8]) -> R,
) -> Result<R, Status> {
    SCRATCH.with(|scratch| {
        // A re-entrant call (a codec framing inside a frame, say) gets a buffer of its own.
        let mut own = BytesMut::new();
        let mut borrowed = scratch.try_borrow_mut();
        let buf = match borrowed.as_mut() {
            Ok(buf) => &mut **buf,
            Err(_) => &mut own,
        };
        buf.clear();
        proto
            .encode(msg, buf, max_size)
            .map_err(|e| Status::from_code(Code::WRITE_FAILED, e.to_string()))?;
        let result = use_frame(buf);
        if buf.capacity() > SCRATCH_KEEP_MAX {
            *buf = BytesMut::new();
        } else {
            buf.clear();
        }
        Ok(result)
    })
}

/// When `deadline` passes (never for `None`).
pub(crate) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
