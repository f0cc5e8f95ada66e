//! A link: the current connection of a session, with its reader task.
//!
//! Senders frame their message straight into the link's output buffer (under a short lock,
//! no await). Writing is a *flush*: whoever finds the writer free writes everything queued so
//! far in one call, so concurrent senders share system calls (write batching); one that finds
//! the writer busy just leaves, since the writer looks at the buffer again after letting go of
//! the socket.
//!
//! Who flushes decides how large the batches are. The reader decodes every complete frame it
//! has, lets the handlers that finish at once queue their replies, and flushes them itself
//! before reading again, so answering costs no task wake-up at all. Everyone else (calls,
//! pushes, replies of handlers that had to wait) wakes the flusher task, which first yields:
//! tokio runs a woken task next, so without the yield it would write each caller's message
//! alone, right after that caller. Yielding puts it behind every task that is ready, which
//! under load means behind all the callers woken by one batch of replies, and its one write
//! carries all their calls (at 1,000 callers, one write per 15 to 20 calls instead of nearly
//! one per call). A flush hands over to the flusher task after several batches in a row, so no
//! one writes for everyone forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::Session;
use crate::message::Message;
use crate::net::{Conn, ReadHalf, WriteHalf};
use crate::proto::Proto;
use crate::status::{Status, code};

/// Above this many queued bytes, senders wait for the writer (backpressure).
const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Room the reader makes before each read: it starts small and doubles, up to the maximum,
/// while reads keep filling it, so idle sessions hold little memory and busy ones take large
/// gulps (fewer system calls, larger batches of replies).
const READ_CHUNK_MIN: usize = 8 * 1024;
const READ_CHUNK_MAX: usize = 128 * 1024;
/// Batches one flush writes before handing over to the flusher task.
const ROUNDS: usize = 8;

struct Writer {
    half: WriteHalf,
    batch: BytesMut,
}

pub(crate) struct Link {
    out: Mutex<BytesMut>,
    writer: tokio::sync::Mutex<Writer>,
    wake_flusher: Notify,
    drained: Notify,
    stop_reader: Notify,
    broken: AtomicBool,
    closing: AtomicBool,
}

impl Link {
    /// Starts the reader (and the hand-over flusher) of `conn`; `buffer` holds bytes already read.
    pub(crate) fn spawn(session: Session, conn: Conn, buffer: BytesMut) -> Arc<Link> {
        let (reader, writer) = conn.into_split();
        let link = Arc::new(Link {
            out: Mutex::new(BytesMut::with_capacity(8 * 1024)),
            writer: tokio::sync::Mutex::new(Writer {
                half: writer,
                batch: BytesMut::with_capacity(8 * 1024),
            }),
            wake_flusher: Notify::new(),
            drained: Notify::new(),
            stop_reader: Notify::new(),
            broken: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });
        tokio::spawn(flusher(link.clone()));
        tokio::spawn(read_loop(session, link.clone(), reader, buffer));
        link
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    fn out(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frames `msg` into the output buffer, unless the writer is behind (`Ok(false)`: use
    /// [`send`](Self::send), which waits). Call [`flush`](Self::flush) after.
    pub(crate) fn enqueue(&self, proto: &dyn Proto, msg: &Message, max_size: usize) -> Result<bool, Status> {
        let mut out = self.out();
        if self.is_broken() || self.closing.load(Ordering::Acquire) {
            return Err(Status::conn_closed("the connection is lost"));
        }
        if out.len() >= HIGH_WATER {
            return Ok(false);
        }
        proto
            .encode(msg, &mut out, max_size)
            .map_err(|e| Status::from_code(code::WRITE_FAILED, e.to_string()))?;
        Ok(true)
    }

    /// Frames `msg` and flushes, waiting first while the writer is behind.
    pub(crate) async fn send(&self, proto: &dyn Proto, msg: &Message, max_size: usize) -> Result<(), Status> {
        loop {
            if self.enqueue(proto, msg, max_size)? {
                self.flush().await;
                return Ok(());
            }
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.out().len() >= HIGH_WATER && !self.is_broken() {
                drained.await;
            }
        }
    }

    /// Writes what is queued, unless another task is writing (it will see our bytes).
    async fn flush(&self) {
        let mut rounds = 0;
        loop {
            let Ok(mut writer) = self.writer.try_lock() else { return };
            let Writer { half, batch } = &mut *writer;
            loop {
                std::mem::swap(&mut *self.out(), batch);
                if batch.is_empty() {
                    break;
                }
                if batch.len() >= HIGH_WATER {
                    // Senders wait only when this much was queued.
                    self.drained.notify_waiters();
                }
                if let Err(e) = half.write_all(batch).await {
                    tracing::debug!(error = %e, "write failed");
                    self.fail();
                    return;
                }
                batch.clear();
                if batch.capacity() > HIGH_WATER {
                    *batch = BytesMut::with_capacity(8 * 1024);
                }
                rounds += 1;
                if rounds == ROUNDS {
                    drop(writer);
                    self.wake_flusher.notify_one();
                    return;
                }
            }
            drop(writer);
            // Bytes queued by a sender that found us busy: look after letting go.
            if self.out().is_empty() {
                return;
            }
        }
    }

    /// Has the flusher task write what is queued.
    pub(crate) fn wake_flusher(&self) {
        self.wake_flusher.notify_one();
    }

    /// Marks the link broken and stops its tasks.
    fn fail(&self) {
        self.broken.store(true, Ordering::Release);
        self.stop_reader.notify_one();
        self.wake_flusher.notify_one();
        self.drained.notify_waiters();
    }

    /// Writes what is queued, closes the connection and stops the reader.
    pub(crate) async fn shutdown(&self) {
        self.closing.store(true, Ordering::Release);
        {
            let mut writer = self.writer.lock().await;
            let Writer { half, batch } = &mut *writer;
            loop {
                std::mem::swap(&mut *self.out(), batch);
                if batch.is_empty() || half.write_all(batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            let _ = half.flush().await;
            let _ = half.shutdown().await;
        }
        self.fail();
    }
}

/// Takes over flushing when a sender has written [`ROUNDS`] batches in a row.
async fn flusher(link: Arc<Link>) {
    loop {
        link.wake_flusher.notified().await;
        // Let every task that is ready run first: callers woken by the same batch of replies
        // queue their next calls, and this write carries them all.
        tokio::task::yield_now().await;
        if link.is_broken() {
            return;
        }
        link.flush().await;
    }
}

async fn read_loop(session: Session, link: Arc<Link>, mut reader: ReadHalf, mut buf: BytesMut) {
    let shared = session.shared().clone();
    let max_size = shared.settings.max_message_size;
    let age = shared.settings.session_age;
    let expires = age.map(|age| tokio::time::Instant::now() + age);
    let proto = session.proto().clone();
    let mut chunk = READ_CHUNK_MIN;
    let reason = 'read: loop {
        loop {
            if !shared.plugins.is_empty()
                && let Err(status) = shared.plugins.run(|p| p.pre_read_header(&session))
            {
                break 'read status;
            }
            match proto.decode(&mut buf, max_size) {
                Ok(Some(msg)) => {
                    if let Err(status) = super::incoming::dispatch(&session, msg) {
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
        // Replies of the handlers that finished at once go out together.
        link.flush().await;
        if buf.capacity() - buf.len() < chunk / 2 {
            buf.reserve(chunk);
        }
        let room = buf.capacity() - buf.len();
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            () = link.stop_reader.notified() => break closed_by_peer(),
            () = sleep_until(expires) => break Status::conn_closed("session age expired"),
        };
        if read.as_ref().is_ok_and(|&n| n >= room) {
            chunk = (chunk * 2).min(READ_CHUNK_MAX);
        }
        match read {
            Ok(0) => break closed_by_peer(),
            Ok(_) => {}
            Err(e) => break Status::conn_closed(e.to_string()),
        }
    };
    link.fail();
    let reason = match reason.code() {
        code::CONN_CLOSED => reason,
        _ => Status::conn_closed(reason.to_string()),
    };
    session.link_lost(&link, reason);
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The status of a connection closed without an error (EOF): Go gives it no cause.
fn closed_by_peer() -> Status {
    Status::new(code::CONN_CLOSED, crate::status::code_text(code::CONN_CLOSED))
}
