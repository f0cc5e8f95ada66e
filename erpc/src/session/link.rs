//! A link: the current connection of a session, with its reader task and its [`Outbox`].
//!
//! The reader task owns the read half: it decodes every complete frame it has, hands each to
//! the session (replies complete calls, calls and pushes go to the dispatcher), then lets the
//! outbox write the replies that are ready without waiting, and reads again. It never waits
//! for a write. The writer task (in [`Outbox`]) owns all waiting on the socket.
//!
//! However the reader ends (end of stream, a bad frame, a panicking hook, the session closing
//! or the task being dropped), its exit guard runs the link-lost path: replies already queued
//! are still written, the pending calls end with `102`, and the session redials or closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Session;
use super::outbox::{Outbox, until};
use crate::net::{Conn, ReadHalf, buffers};
use crate::status::{Status, code};

/// Room the reader makes before each read: it starts small and doubles, up to the maximum,
/// while reads keep filling it, so busy sessions take large gulps (fewer system calls, larger
/// batches of replies). Idle sessions hold no read buffer at all.
const READ_CHUNK_MIN: usize = 8 * 1024;
const READ_CHUNK_MAX: usize = 128 * 1024;

pub(crate) struct Link {
    pub(crate) outbox: Outbox,
    /// Set when a reply was queued on the reader task: the reader writes after its batch.
    pub(crate) inline_replies: AtomicBool,
    stop_reader: Notify,
    writer_task: Mutex<Option<JoinHandle<()>>>,
}

impl Link {
    /// Starts the reader and writer tasks of `conn` for `session`; `buffer` holds bytes
    /// already read (in the handshake phase).
    pub(crate) fn spawn(session: &Session, conn: Conn, buffer: BytesMut) -> Arc<Link> {
        let (reader, writer) = conn.into_split();
        let settings = &session.env().settings;
        let link = Arc::new(Link {
            outbox: Outbox::new(writer, settings.limits.max_message_size),
            inline_replies: AtomicBool::new(false),
            stop_reader: Notify::new(),
            writer_task: Mutex::new(None),
        });
        let drain_limit = settings.shutdown_timeout;
        let writing = link.clone();
        let task = tokio::spawn(async move { writing.outbox.run(drain_limit).await });
        *link.writer_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        tokio::spawn(read_loop(session.clone(), link.clone(), reader, buffer));
        link
    }

    /// Whether the link is lost (or being closed, or its writer failed): nothing new may be
    /// queued on it.
    pub(crate) fn is_lost(&self) -> bool {
        !self.outbox.is_open()
    }

    /// Stops reading and taking messages; what is queued is still written, then the
    /// connection is shut down.
    pub(crate) fn close(&self) {
        self.stop_reader.notify_one();
        self.outbox.drain();
    }

    /// [`close`](Self::close), then waits up to `limit` for the queue to be written; a writer
    /// still stuck after that (the peer is not reading) is stopped.
    pub(crate) async fn shutdown(&self, limit: Duration) {
        self.close();
        let task = self.writer_task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(limit, &mut task).await.is_err()
        {
            task.abort();
        }
        self.outbox.stop();
    }

    /// Stops at once: no more reading or writing (the peer was dropped).
    pub(crate) fn abort(&self) {
        self.stop_reader.notify_one();
        self.outbox.stop();
        if let Some(task) = self.writer_task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
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
    let expires = env.settings.session_age.map(|age| tokio::time::Instant::now() + age);
    let proto = session.proto().clone();
    let mut chunk = READ_CHUNK_MIN;
    let reason = 'read: loop {
        loop {
            if let Some(hooks) = &env.hooks
                && let Err(status) = hooks.pre_read_header(&session)
            {
                break 'read status;
            }
            match proto.decode(&mut buf, &limits) {
                Ok(Some(msg)) => {
                    if let Err(status) = session.receive(msg) {
                        break 'read status;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(session = %session.id(), error = %e, "bad frame; closing the session");
                    break 'read Status::bad_message(e.to_string());
                }
            }
        }
        // Replies of the handlers that finished at once go out together, if the socket takes
        // them now; the writer task sees to the rest.
        if link.inline_replies.load(Ordering::Acquire) && link.inline_replies.swap(false, Ordering::AcqRel) {
            link.outbox.write_now();
        }
        // Nothing half-read: hold no buffer while waiting.
        buffers::give_if_empty(&mut buf);
        if link.outbox.is_backed_up() && session.pending_calls() == 0 {
            // The peer sends calls faster than it reads the replies: take no more until it
            // catches up. Only while this end waits for no reply of its own, so that two
            // peers calling each other never both stop reading.
            tokio::select! {
                () = link.outbox.room() => {}
                () = session.pending().registered() => {}
                () = link.stop_reader.notified() => break Status::conn_closed("the session was closed"),
            }
            continue;
        }
        let read = tokio::select! {
            read = reader.read_into(&mut buf, chunk) => read,
            () = link.stop_reader.notified() => break Status::conn_closed("the session was closed"),
            () = until(expires) => break Status::conn_closed("session age expired"),
        };
        match read {
            Ok(0) => break Status::new(code::CONN_CLOSED, "Connection Closed"),
            Ok(n) => {
                if n >= chunk / 2 {
                    chunk = (chunk * 2).min(READ_CHUNK_MAX);
                }
            }
            Err(e) => break Status::conn_closed(e.to_string()),
        }
    };
    // Replies queued before a bad frame still go out: the link drains before it closes.
    exit.reason = Some(match reason.code() {
        code::CONN_CLOSED => reason,
        _ => Status::conn_closed(reason.to_string()),
    });
}
