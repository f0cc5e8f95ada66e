//! Sessions: one connection between two peers, on which either end can call and push.
//!
//! A [`Session`] is a cheap handle (one `Arc`). Under it, a *link* is the current connection:
//! a reader task decodes frames and dispatches them, a writer task flushes everything queued
//! since its last write in one system call (write batching). A client session that loses its
//! link redials (per the peer's redial settings) and keeps its id, storage and seq counter.
//!
//! Every call ends: with the reply, or with a status saying why not — `102 Connection Closed`
//! when the link is lost (Go does the same), `408` when the call timeout passes (Go has no
//! call timeout and can wait forever), `104 Write Failed` when the message cannot be framed.

mod call;
mod incoming;
mod link;
mod pending;
mod pre;
mod storage;

pub use call::{Call, PendingCall, Push, Reply};
pub use pre::PreSession;
pub use storage::Storage;

use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::codec::EncodeBody;
use crate::message::Message;
use crate::peer::Shared;
use crate::proto::Proto;
use crate::status::{Status, code};
pub(crate) use link::Link;
use pending::Pending;

const OK: u8 = 1;
const REDIALING: u8 = 2;
const CLOSING: u8 = 3;
const CLOSED: u8 = 4;

/// Which end of the connection this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Made by dialing.
    Client,
    /// Made by accepting.
    Server,
}

/// A session: one connection to another peer, usable from both ends.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    shared: Arc<Shared>,
    side: Side,
    proto: Arc<dyn Proto>,
    dial_addr: Option<String>,
    id: RwLock<Arc<str>>,
    local_addr: RwLock<Arc<str>>,
    remote_addr: Arc<str>,
    seq: Arc<AtomicI32>,
    state: AtomicU8,
    link: RwLock<Option<Arc<Link>>>,
    /// Bumped whenever the link changes or the session closes; senders waiting out a redial
    /// watch it.
    link_changed: watch::Sender<u64>,
    pending: Arc<Pending>,
    storage: Storage,
    closing: watch::Sender<bool>,
    handlers: AtomicUsize,
    handlers_done: Notify,
}

impl Session {
    /// Starts a session on the connection of `pre` (after its PostDial/PostAccept hooks).
    pub(crate) fn start(shared: Arc<Shared>, pre: PreSession, side: Side, dial_addr: Option<String>) -> Session {
        let (conn, buffer, seq, storage, id) = pre.into_parts();
        let session = Session {
            inner: Arc::new(Inner {
                shared,
                side,
                proto: conn.proto,
                dial_addr,
                id: RwLock::new(id.into()),
                local_addr: RwLock::new(conn.conn.local_addr.clone().into()),
                remote_addr: conn.conn.remote_addr.clone().into(),
                seq,
                state: AtomicU8::new(OK),
                link: RwLock::new(None),
                link_changed: watch::Sender::new(0),
                pending: Arc::default(),
                storage,
                closing: watch::Sender::new(false),
                handlers: AtomicUsize::new(0),
                handlers_done: Notify::new(),
            }),
        };
        session.install_link(conn.conn, buffer);
        session
    }

    fn install_link(&self, conn: crate::net::Conn, buffer: bytes::BytesMut) {
        let link = Link::spawn(self.clone(), conn, buffer);
        *self.inner.link.write().unwrap_or_else(|e| e.into_inner()) = Some(link);
        self.inner.link_changed.send_modify(|g| *g += 1);
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn proto(&self) -> &Arc<dyn Proto> {
        &self.inner.proto
    }

    pub(crate) fn pending(&self) -> &Arc<Pending> {
        &self.inner.pending
    }

    /// The session id: the remote address on the server side, the local address on the
    /// client side, unless changed with [`set_id`](Self::set_id).
    pub fn id(&self) -> Arc<str> {
        self.inner.id.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the id. A peer keeps one session per id: another session with this id is
    /// closed (Go's behaviour, used to kick out an older login).
    pub fn set_id(&self, id: impl Into<String>) {
        let id: Arc<str> = id.into().into();
        let old = std::mem::replace(&mut *self.inner.id.write().unwrap_or_else(|e| e.into_inner()), id);
        self.inner.shared.hub.rename(&old, self.clone());
    }

    /// Whether two handles are the same session.
    pub fn ptr_eq(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Which end this session is.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// This end's address.
    pub fn local_addr(&self) -> Arc<str> {
        self.inner.local_addr.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The other end's address.
    pub fn remote_addr(&self) -> &str {
        &self.inner.remote_addr
    }

    /// The session's key/value storage.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Whether the session can be used: connected, or a client session that is redialing.
    pub fn health(&self) -> bool {
        matches!(self.state(), OK | REDIALING)
    }

    /// Whether the session is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.state() >= CLOSING
    }

    /// Resolves once the session starts closing (actively or because the link was lost for
    /// good).
    pub async fn closed(&self) {
        let mut rx = self.inner.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Number of calls waiting for their reply.
    pub fn pending_calls(&self) -> usize {
        self.inner.pending.len()
    }

    /// Starts a CALL: `let sum: i64 = session.call("/math/add", &[1, 2, 3]).await?;`
    /// See [`Call`] for per-call options (meta, codec, timeout…).
    pub fn call<'a, A: EncodeBody + ?Sized, R>(&'a self, service_method: &'a str, args: &'a A) -> Call<'a, A, R> {
        Call::new(self, service_method, args)
    }

    /// Starts a PUSH: `session.push("/chat/say", &"hi").await?;`
    pub fn push<'a, A: EncodeBody + ?Sized>(&'a self, service_method: &'a str, args: &'a A) -> Push<'a, A> {
        Push::new(self, service_method, args)
    }

    /// Closes the session gracefully: stops taking new messages, lets running handlers finish
    /// and answer, waits (up to the peer's shutdown timeout) for calls awaiting replies, then
    /// flushes and closes the connection.
    pub async fn close(&self) {
        let state = self.state();
        if state >= CLOSING
            || self
                .inner
                .state
                .compare_exchange(state, CLOSING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return self.closed().await;
        }
        let shared = self.inner.shared.clone();
        shared.hub.remove(self);
        self.inner.closing.send_replace(true);
        let deadline = tokio::time::Instant::now() + shared.settings.shutdown_timeout;
        let _ = tokio::time::timeout_at(deadline, self.wait_handlers()).await;
        let _ = tokio::time::timeout_at(deadline, async {
            while self.inner.pending.len() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        self.inner
            .pending
            .fail_all(&Status::conn_closed("the session was closed"));
        self.inner.state.store(CLOSED, Ordering::Release);
        self.inner.link_changed.send_modify(|g| *g += 1);
        let link = self.inner.link.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(link) = link {
            link.shutdown().await;
        }
        self.post_disconnect();
    }

    async fn wait_handlers(&self) {
        loop {
            let done = self.inner.handlers_done.notified();
            if self.inner.handlers.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    fn post_disconnect(&self) {
        let plugins = &self.inner.shared.plugins;
        plugins.run_logged("post_disconnect", |p| p.post_disconnect(self));
        tracing::debug!(session = %self.id(), remote = %self.remote_addr(), "session closed");
    }

    fn state(&self) -> u8 {
        self.inner.state.load(Ordering::Acquire)
    }

    pub(crate) fn seq_counter(&self) -> Arc<AtomicI32> {
        self.inner.seq.clone()
    }

    /// The next seq: CALLs and PUSHes share one counter that wraps like Go's.
    pub(crate) fn next_seq(&self) -> i32 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Frames `msg` onto the current link without waiting and returns the link to flush;
    /// `None` when that would need to wait (writer behind, link being redialed): use
    /// [`send`](Self::send) then.
    pub(crate) fn send_now(&self, msg: &Message) -> Option<Result<Arc<Link>, Status>> {
        let state = self.state();
        if state == CLOSED || (state == CLOSING && msg.mtype != crate::MessageType::Reply) {
            return Some(Err(Status::conn_closed("the session is closed")));
        }
        let link = self.inner.link.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(link) = link.filter(|l| !l.is_broken()) else {
            // Lost: a redial may bring a new link (wait for it); otherwise it is over.
            return (state != REDIALING).then(|| Err(Status::conn_closed("the connection is lost")));
        };
        match link.enqueue(self.proto().as_ref(), msg, self.shared().settings.max_message_size) {
            Ok(true) => Some(Ok(link)),
            Ok(false) => None,
            Err(status) => Some(Err(status)),
        }
    }

    /// Frames `msg` and has it written.
    pub(crate) async fn send_and_flush(&self, msg: &Message, wait: Option<Duration>) -> Result<(), Status> {
        match self.send_now(msg) {
            Some(Ok(link)) => {
                // The flusher task writes: by the time it runs, other callers' messages have
                // joined this one, so a busy session makes few, large writes.
                link.wake_flusher();
                Ok(())
            }
            Some(Err(status)) => Err(status),
            // Rare (writer behind, redialing): boxed so the common path's future stays small.
            None => Box::pin(self.send(msg, wait)).await,
        }
    }

    /// Frames `msg` onto the current link. During a redial it waits for the new link (up to
    /// `wait`); on a closed session only replies may still go out.
    pub(crate) async fn send(&self, msg: &Message, wait: Option<Duration>) -> Result<(), Status> {
        let mut changes: Option<watch::Receiver<u64>> = None;
        let give_up = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let state = self.state();
            let reply_while_closing = state == CLOSING && msg.mtype == crate::MessageType::Reply;
            if state == CLOSED || (state == CLOSING && !reply_while_closing) {
                return Err(Status::conn_closed("the session is closed"));
            }
            let link = self.inner.link.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(link) = link.filter(|l| !l.is_broken()) {
                return link
                    .send(self.proto().as_ref(), msg, self.shared().settings.max_message_size)
                    .await;
            }
            if state != REDIALING {
                return Err(Status::conn_closed("the connection is lost"));
            }
            // Subscribe only when a redial must be waited out, then look again before
            // waiting so that a change in between is not missed.
            let Some(changes) = changes.as_mut() else {
                changes = Some(self.inner.link_changed.subscribe());
                continue;
            };
            let waiting = changes.changed();
            match give_up {
                Some(at) => match tokio::time::timeout_at(at, waiting).await {
                    Ok(Ok(())) => {}
                    _ => {
                        return Err(Status::conn_closed(
                            "the connection is lost and redialing did not finish in time",
                        ));
                    }
                },
                None => {
                    if waiting.await.is_err() {
                        return Err(Status::conn_closed("the session is closed"));
                    }
                }
            }
        }
    }

    /// Counts a running handler; the guard uncounts it.
    pub(crate) fn handler_started(&self) -> HandlerGuard {
        self.inner.handlers.fetch_add(1, Ordering::AcqRel);
        HandlerGuard { session: self.clone() }
    }

    /// Called by a link's reader when the link ends. Fails waiting calls, then redials (client
    /// sessions with redial on) or closes the session.
    pub(crate) fn link_lost(&self, link: &Arc<Link>, reason: Status) {
        {
            let current = self.inner.link.read().unwrap_or_else(|e| e.into_inner());
            if !current.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
                return;
            }
        }
        self.inner.pending.fail_all(&reason);
        if self.state() >= CLOSING {
            return;
        }
        let settings = &self.inner.shared.settings;
        if self.side() == Side::Client && settings.redial_times != 0 && self.inner.dial_addr.is_some() {
            if self
                .inner
                .state
                .compare_exchange(OK, REDIALING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                tracing::info!(session = %self.id(), %reason, "connection lost, redialing");
                let session = self.clone();
                tokio::spawn(async move { session.redial().await });
            }
            return;
        }
        self.passive_close(&reason);
    }

    fn passive_close(&self, reason: &Status) {
        let state = self.state();
        if state >= CLOSING
            || self
                .inner
                .state
                .compare_exchange(state, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        tracing::debug!(session = %self.id(), %reason, "connection lost");
        self.inner.shared.hub.remove(self);
        self.inner.closing.send_replace(true);
        self.inner.link_changed.send_modify(|g| *g += 1);
        self.post_disconnect();
    }

    async fn redial(&self) {
        let Some(addr) = self.inner.dial_addr.clone() else {
            return;
        };
        let shared = self.inner.shared.clone();
        match shared.connect(&addr, self.inner.proto.clone(), true, Some(self)).await {
            Ok(pre) => {
                if self
                    .inner
                    .state
                    .compare_exchange(REDIALING, OK, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    return; // closed meanwhile
                }
                let (conn, buffer, _, _, _) = pre.into_parts();
                let was_default_id = *self.id() == *self.local_addr();
                *self.inner.local_addr.write().unwrap_or_else(|e| e.into_inner()) = conn.conn.local_addr.clone().into();
                if was_default_id {
                    self.set_id(conn.conn.local_addr.clone());
                }
                self.install_link(conn.conn, buffer);
                shared.hub.insert(self.clone());
                tracing::info!(session = %self.id(), "redial ok");
            }
            Err(status) => {
                tracing::warn!(session = %self.id(), %status, "redial failed");
                self.inner.state.store(OK, Ordering::Release);
                self.passive_close(&Status::conn_closed(format!(
                    "redial failed: {}",
                    status.cause().unwrap_or(status.msg())
                )));
            }
        }
    }
}

/// Uncounts a running handler when dropped (also when the handler panicked).
pub(crate) struct HandlerGuard {
    session: Session,
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        if self.session.inner.handlers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.session.inner.handlers_done.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("side", &self.side())
            .field("remote_addr", &self.remote_addr())
            .field("health", &self.health())
            .finish()
    }
}

/// Whether `status` means the connection is gone.
pub(crate) fn is_conn_closed(status: &Status) -> bool {
    status.code() == code::CONN_CLOSED
}
