//! A link: the current connection of a session, with its reader and writer tasks.
//!
//! Senders frame their message straight into the link's output buffer (under a short lock,
//! no await) and wake the writer; the writer swaps the buffer out and writes everything queued
//! in one call, so concurrent calls share system calls (write batching). The reader decodes
//! every complete frame in its buffer before reading again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Notify;

use super::Session;
use crate::message::Message;
use crate::net::{Conn, Stream};
use crate::proto::Proto;
use crate::status::{Status, code};

/// Above this many queued bytes, senders wait for the writer (backpressure).
const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct Link {
    out: Mutex<BytesMut>,
    wake_writer: Notify,
    drained: Notify,
    stop_reader: Notify,
    broken: AtomicBool,
    closing: AtomicBool,
    writer_done: Notify,
    writer_finished: AtomicBool,
}

impl Link {
    /// Starts the reader and writer tasks of `conn`; `buffer` holds bytes already read.
    pub(crate) fn spawn(session: Session, conn: Conn, buffer: BytesMut) -> Arc<Link> {
        let link = Arc::new(Link {
            out: Mutex::new(BytesMut::with_capacity(8 * 1024)),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            stop_reader: Notify::new(),
            broken: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            writer_done: Notify::new(),
            writer_finished: AtomicBool::new(false),
        });
        let (reader, writer) = tokio::io::split(conn.io);
        tokio::spawn(write_loop(link.clone(), writer));
        tokio::spawn(read_loop(session, link.clone(), reader, buffer));
        link
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    fn out(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frames `msg` now unless the writer is behind (`Ok(false)`: use [`send`](Self::send)).
    pub(crate) fn try_send(&self, proto: &dyn Proto, msg: &Message, max_size: usize) -> Result<bool, Status> {
        {
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
        }
        self.wake_writer.notify_one();
        Ok(true)
    }

    /// Frames `msg` into the output buffer and wakes the writer.
    pub(crate) async fn send(&self, proto: &dyn Proto, msg: &Message, max_size: usize) -> Result<(), Status> {
        // Backpressure, only paid for when the writer is behind.
        while self.out().len() >= HIGH_WATER && !self.is_broken() {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.out().len() < HIGH_WATER || self.is_broken() {
                break;
            }
            drained.await;
        }
        {
            let mut out = self.out();
            if self.is_broken() || self.closing.load(Ordering::Acquire) {
                return Err(Status::conn_closed("the connection is lost"));
            }
            proto
                .encode(msg, &mut out, max_size)
                .map_err(|e| Status::from_code(code::WRITE_FAILED, e.to_string()))?;
        }
        self.wake_writer.notify_one();
        Ok(())
    }

    /// Marks the link broken and stops both tasks.
    fn fail(&self) {
        self.broken.store(true, Ordering::Release);
        self.stop_reader.notify_one();
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
    }

    /// Flushes what is queued, closes the connection and stops the reader.
    pub(crate) async fn shutdown(&self) {
        let done = self.writer_done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
        if !self.writer_finished.load(Ordering::Acquire) {
            done.await;
        }
        self.fail();
    }
}

async fn write_loop(link: Arc<Link>, mut writer: WriteHalf<Box<dyn Stream>>) {
    let mut batch = BytesMut::with_capacity(8 * 1024);
    loop {
        std::mem::swap(&mut *link.out(), &mut batch);
        if batch.is_empty() {
            // Idle: register for a wake-up, then look once more before sleeping so that a
            // message queued in between is not missed.
            let wake = link.wake_writer.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if !link.out().is_empty() {
                continue;
            }
            if link.is_broken() || link.closing.load(Ordering::Acquire) {
                break;
            }
            wake.await;
            continue;
        }
        if batch.len() >= HIGH_WATER {
            // Senders wait only when this much was queued.
            link.drained.notify_waiters();
        }
        if let Err(e) = writer.write_all(&batch).await {
            tracing::debug!(error = %e, "write failed");
            link.fail();
            break;
        }
        batch.clear();
        if batch.capacity() > HIGH_WATER {
            batch = BytesMut::with_capacity(8 * 1024);
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
    link.writer_finished.store(true, Ordering::Release);
    link.writer_done.notify_waiters();
}

async fn read_loop(session: Session, link: Arc<Link>, mut reader: ReadHalf<Box<dyn Stream>>, mut buf: BytesMut) {
    let shared = session.shared().clone();
    let max_size = shared.settings.max_message_size;
    let age = shared.settings.session_age;
    let expires = age.map(|age| tokio::time::Instant::now() + age);
    let proto = session.proto().clone();
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
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            () = link.stop_reader.notified() => break closed_by_peer(),
            () = sleep_until(expires) => break Status::conn_closed("session age expired"),
        };
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
