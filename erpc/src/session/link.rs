//! A link: the current connection of a session, with its reader task and its [`Outbox`].
//!
//! The reader task owns the read half: it decodes every complete frame it has, hands each to
//! the session (replies complete calls, calls and pushes go to the dispatcher), then lets the
//! outbox write the replies that are ready without waiting, and reads again. It never waits
//! for a write. The writer task (in [`Outbox`]) owns all waiting on the socket.
//!
//! Beside the socket, the reader waits on one [`Alarm`]: for the session's time limits (see
//! [`Watchdog`]) and for the deadlines of the session's own calls, which it sweeps out of the
//! pending table with `408`. No other task per session keeps time.
//!
//! However the reader ends (end of stream, a bad frame, a panicking hook, the session closing
//! or the task being dropped), its exit guard runs the link-lost path: replies already queued
//! are still written, the pending calls end with `102`, and the session redials or closes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Session;
use super::log::remote_warn;
use super::outbox::Outbox;
use super::pending::Pending;
use super::watchdog::{Alarm, Watchdog};
use crate::message::MessageType;
use crate::net::{Conn, ReadHalf, buffers};
use crate::proto::DecodeState;
use crate::status::{Code, Status};

/// Room the reader makes before each read: it starts small and doubles, up to the maximum,
/// while reads keep filling it, so busy sessions take large gulps (fewer system calls, larger
/// batches of replies). Idle sessions hold no read buffer at all.
const READ_CHUNK_MIN: usize = 8 * 1024;
const READ_CHUNK_MAX: usize = 128 * 1024;

pub(crate) struct Link {
    pub(crate) outbox: Outbox,
    /// Set when a reply was queued on the reader task: the reader writes after its batch.
    pub(crate) inline_replies: AtomicBool,
    bell: ReaderBell,
    writer_task: Mutex<Option<JoinHandle<()>>>,
}

impl Link {
    /// Starts the writer task of `conn` for `session`; the reader starts with
    /// [`read`](Self::read), given the read half returned here, once the link is in place.
    pub(crate) fn spawn(session: &Session, conn: Conn) -> (Arc<Link>, ReadHalf) {
        let messages = conn.carries_messages();
        let (reader, writer) = conn.into_split();
        let settings = &session.env().settings;
        let link = Arc::new(Link {
            outbox: Outbox::new(
                writer,
                messages,
                settings.limits.max_message_size,
                settings.frame_timeout,
                &session.env().metrics,
            ),
            inline_replies: AtomicBool::new(false),
            bell: ReaderBell::default(),
            writer_task: Mutex::new(None),
        });
        let drain_limit = settings.shutdown_timeout;
        let writing = link.clone();
        let task = tokio::spawn(async move {
            writing.outbox.run(drain_limit).await;
            // A writer that failed takes the reader with it: the link is lost either way.
            writing.bell.stop();
        });
        *link.writer_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        (link, reader)
    }

    /// Starts the reader task on `reader`, this link's read half; `buffer` holds bytes already
    /// read (in the handshake phase).
    pub(crate) fn read(self: &Arc<Self>, session: &Session, reader: ReadHalf, buffer: BytesMut) {
        tokio::spawn(read_loop(session.clone(), self.clone(), reader, buffer));
    }

    /// Whether the link is lost (or being closed, or its writer failed): nothing new may be
    /// queued on it.
    pub(crate) fn is_lost(&self) -> bool {
        !self.outbox.is_open()
    }

    /// Stops reading and taking messages; what is queued is still written, then the
    /// connection is shut down.
    pub(crate) fn close(&self) {
        self.bell.stop();
        self.outbox.drain();
    }

    /// [`close`](Self::close), then waits up to `limit` for the queue to be written; a writer
    /// still stuck after that (the peer is not reading) is stopped.
    pub(crate) async fn shutdown(&self, limit: Duration) {
        self.close();
        let task = self.writer_task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if self.outbox.shut_down_now() {
            // Nothing was left to write: the writer task just ends (it is not waited for).
            return;
        }
        if let Some(mut task) = task
            && tokio::time::timeout(limit, &mut task).await.is_err()
        {
            task.abort();
        }
        self.outbox.stop();
    }

    /// Stops at once: no more reading or writing (the peer was dropped).
    pub(crate) fn abort(&self) {
        self.bell.stop();
        self.outbox.stop();
        if let Some(task) = self.writer_task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }

    /// Has the reader look at the session's next call deadline again: a call brought one
    /// earlier than any before it.
    pub(crate) fn rearm_reader(&self) {
        self.bell.rearm();
    }
}

/// What the reader is told besides the socket: to stop, or to set its alarm again. Flags and
/// a waker rather than a `Notify`: the reader watches them beside every read, and a `Notify`
/// waiter takes a lock on each poll. Both flags sit on the link's line the reader touches
/// anyway, so the reader looks at the pending table only when a call asks it to.
#[derive(Default)]
struct ReaderBell {
    stopped: AtomicBool,
    rearm: AtomicBool,
    waker: AtomicWaker,
}

/// Why the bell rang.
enum Rang {
    Stop,
    Rearm,
}

impl ReaderBell {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn rearm(&self) {
        self.rearm.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn rang(&self) -> Option<Rang> {
        if self.stopped.load(Ordering::Acquire) {
            Some(Rang::Stop)
        } else if self.rearm.load(Ordering::Acquire) && self.rearm.swap(false, Ordering::AcqRel) {
            Some(Rang::Rearm)
        } else {
            None
        }
    }

    /// Resolves each time the bell rings (a stop rings for good).
    fn rings(&self) -> impl Future<Output = Rang> + Unpin + '_ {
        std::future::poll_fn(move |cx| {
            if let Some(rang) = self.rang() {
                return Poll::Ready(rang);
            }
            self.waker.register(cx.waker());
            match self.rang() {
                Some(rang) => Poll::Ready(rang),
                None => Poll::Pending,
            }
        })
    }
}

/// Runs the link-lost path however the reader ends, unwinding included.
struct ReaderExit {
    session: Session,
    link: Arc<Link>,
    reason: Option<Status>,
}

impl Drop for ReaderExit {
    fn drop(&mut self) {
        let reason = self
            .reason
            .take()
            .unwrap_or_else(|| Status::conn_closed("the session's reader stopped unexpectedly"));
        self.link.close();
        self.session.link_lost(&self.link, reason);
    }
}

async fn read_loop(session: Session, link: Arc<Link>, mut reader: ReadHalf, mut buf: BytesMut) {
    let mut exit = ReaderExit {
        session: session.clone(),
        link: link.clone(),
        reason: None,
    };
    let env = session.env().clone();
    let limits = env.settings.limits;
    let proto = session.proto().clone();
    let in_order = proto.replies_in_order();
    let mut decode_state = DecodeState::default();
    let mut watchdog = Watchdog::new(&env.settings);
    // Rings for the watchdog's limits and the deadlines of this session's calls.
    let pending = session.pending();
    let mut alarm = Alarm::default();
    alarm.set(pending.next_deadline());
    let mut chunk = READ_CHUNK_MIN;
    // Whether the peer called this end on this link: only then can a close have replies at
    // stake (see `linger_after_close`).
    let mut answers_calls = false;
    let mut bell = link.bell.rings();
    let reason = 'read: loop {
        // Set when the next frame must wait: for the reply to the call just taken (replies in
        // order), or for good (the peer's last call).
        let mut hold = Hold::No;
        let mut took_messages = false;
        while hold == Hold::No {
            if let Some(hooks) = &env.hooks
                && let Err(status) = hooks.pre_read_header(&session)
            {
                break 'read status;
            }
            match proto.decode_with_state(&mut buf, &limits, &mut decode_state) {
                Ok(Some(msg)) => {
                    took_messages = true;
                    let is_call = msg.mtype == MessageType::Call;
                    answers_calls |= is_call;
                    let last = is_call && proto.is_last_call(&msg);
                    if let Err(status) = session.receive(msg) {
                        break 'read status;
                    }
                    if last {
                        hold = Hold::LastCall;
                    } else if in_order && is_call && session.handlers_running() > 0 {
                        hold = Hold::UntilReplied;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    remote_warn!(env, session = %session.id(), error = %e, "bad frame; closing the session");
                    if let Some(refusal) = proto.refusal(&e) {
                        // Written after the replies already queued, before the link closes.
                        let _ = link.outbox.push(&refusal, true);
                        link.outbox.drain();
                        // Boxed: rare, and kept out of every idle reader's state.
                        Box::pin(linger(&mut reader, &mut buf)).await;
                    }
                    break 'read Status::bad_message(e.to_string());
                }
            }
        }
        watchdog.after_decode(took_messages, !buf.is_empty());
        // Replies of the handlers that finished at once go out together, if the socket takes
        // them now; the writer task sees to the rest.
        if link.inline_replies.load(Ordering::Acquire) && link.inline_replies.swap(false, Ordering::AcqRel) {
            link.outbox.write_now();
        }
        if hold != Hold::No {
            // Boxed: only in-order protocols wait here, and not while idle.
            let mut handlers_done = Box::pin(session.handlers_done());
            loop {
                // The session's own calls still time out meanwhile; its limits wait (a running
                // handler is not idleness).
                tokio::select! {
                    () = &mut handlers_done => break,
                    rang = &mut bell => match rang {
                        Rang::Stop => break 'read stopped(&link),
                        Rang::Rearm => alarm.set(pending.next_deadline()),
                    },
                    () = &mut alarm => sweep_deadlines(&mut alarm, pending, Instant::now()),
                }
            }
            if hold == Hold::LastCall {
                break Status::conn_closed("the peer's last request was answered");
            }
            continue;
        }
        // Nothing half-read: hold no buffer while waiting.
        buffers::give_if_empty(&mut buf);
        if link.outbox.is_backed_up() && session.pending_calls() == 0 {
            // The peer sends calls faster than it reads the replies: take no more until it
            // catches up. Only while this end waits for no reply of its own, so that two
            // peers calling each other never both stop reading. (A peer that stops reading
            // altogether is dropped by the writer's stall limit.)
            tokio::select! {
                () = link.outbox.room() => {}
                () = session.pending().registered() => {}
                rang = &mut bell => match rang {
                    Rang::Stop => break stopped(&link),
                    Rang::Rearm => alarm.set(pending.next_deadline()),
                },
            }
            continue;
        }
        // The alarm only ever moves earlier here; when it rings early, it is set again.
        alarm.set(watchdog.due());
        // In this order, not at random: the bell and the alarm are looked at first, so a peer
        // that keeps the socket readable never holds them off (and no random number is drawn
        // per read).
        let read = tokio::select! {
            biased;
            rang = &mut bell => match rang {
                Rang::Stop => break stopped(&link),
                Rang::Rearm => {
                    alarm.set(pending.next_deadline());
                    continue;
                }
            },
            () = &mut alarm => {
                let now = Instant::now();
                sweep_deadlines(&mut alarm, pending, now);
                match watchdog.expired(now, link.outbox.written_total()) {
                    Some(reason) => {
                        tracing::info!(session = %session.id(), remote = %session.remote_addr(), %reason, "closing the session");
                        break reason;
                    }
                    None => continue,
                }
            }
            read = reader.read_into(&mut buf, chunk) => read,
        };
        match read {
            Ok(0) => break Status::new(Code::CONN_CLOSED, "Connection Closed"),
            Ok(n) => {
                env.metrics.bytes_received.increment(n as u64);
                if n >= chunk / 2 {
                    chunk = (chunk * 2).min(READ_CHUNK_MAX);
                }
            }
            Err(e) => break Status::conn_closed(e.to_string()),
        }
    };
    if answers_calls && link.bell.stopped.load(Ordering::Acquire) {
        // Boxed: only a closing link lingers, once.
        Box::pin(linger_after_close(&link, &mut reader, &mut buf)).await;
    }
    // Replies queued before a bad frame still go out: the link drains before it closes.
    exit.reason = Some(match reason.code() {
        Code::CONN_CLOSED => reason,
        _ => Status::conn_closed(reason.to_string()),
    });
}

/// After a graceful close (the writer wrote the last replies and shut the connection down),
/// reads and drops what the peer still sends until it closes its end too, for a moment at
/// most: closed with its calls unread, the socket would reset the connection, and the reset
/// can destroy the last replies before the peer has read them. Only links that answered calls
/// linger: on the others a reset can only destroy this end's own last calls and pushes, whose
/// fate nobody waits for once the session is closed (a close first waits for the replies).
async fn linger_after_close(link: &Link, reader: &mut ReadHalf, buf: &mut BytesMut) {
    // Bounded by the writer's drain limit (the link stops it after that).
    link.outbox.stopped().await;
    if link.outbox.was_shut_down() {
        linger(reader, buf).await;
    }
}

/// After a refusal or a graceful close, reads and drops what the peer still sends, for a
/// moment: a socket closed with unread bytes resets the connection, and a reset can destroy
/// the last messages before the peer has read them. Bounded in time and bytes.
async fn linger(reader: &mut ReadHalf, buf: &mut BytesMut) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 1024 * 1024;
    let _ = tokio::time::timeout(LINGER, async {
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            buf.clear();
            match reader.read_into(buf, READ_CHUNK_MIN).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    })
    .await;
}

/// After the alarm rang: ends the session's calls past their deadline and sets the alarm for
/// the next one (the reader's own limits are set again on its next round).
fn sweep_deadlines(alarm: &mut Alarm, pending: &Pending, now: Instant) {
    alarm.clear();
    pending.sweep(now);
    alarm.set(pending.next_deadline());
}

/// Why the reader was stopped: the session closing, or its writer failing.
fn stopped(link: &Link) -> Status {
    match link.outbox.failure() {
        Some(error) => Status::conn_closed(format!("write failed: {error}")),
        None => Status::conn_closed("the session was closed"),
    }
}

/// Why the reader stops decoding for a while.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    No,
    /// The protocol keeps replies in order: the next request waits for this one's reply.
    UntilReplied,
    /// The peer said this request is its last: answer it, then close.
    LastCall,
}
