//! Sessions: one connection between two peers, on which either end can call and push.
//!
//! A [`Session`] is a cheap handle (one `Arc`). Under it, a *link* is the current
//! connection: a reader task decodes frames and hands them on, an *outbox* queues
//! framed messages and its writer task writes them, many per system call. A client session
//! that loses its link redials (per the peer's redial settings) and keeps its id, storage and
//! seq counter.
//!
//! A session reaches the rest of its peer only through its `Env`: a dispatcher for received
//! calls and pushes, the session-level plugin hooks, and weak references to the peer's
//! session registry and dialer. It can run over any connection with any env, no peer needed.
//!
//! Every call ends: with the reply, or with a status saying why not — `102 Connection Closed`
//! when the link is lost (Go does the same), `408` when its deadline passes, whether it was
//! still waiting to be sent or waiting for the reply (Go has no call timeout and can wait
//! forever), `104 Write Failed` when the message cannot be framed.

mod call;
mod env;
pub mod goaway;
mod link;
pub(crate) mod log;
mod outbox;
mod pending;
mod pre;
mod registry;
mod storage;
mod watchdog;

pub(crate) use call::Hire;
pub use call::{Call, CallFuture, Caller, PendingCall, Push, PushFuture, Reply};
pub use pre::PreSession;
pub(crate) use pre::Seqs;
pub use registry::{Broadcast, Sessions};
pub use storage::Storage;

pub(crate) use env::{Dispatch, Env, Hooks, Redial};
pub(crate) use registry::{Registry, broadcast};

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::codec::{CodecId, EncodeBody};
use crate::config::Settings;
use crate::message::{Message, MessageType};
use crate::net::{Conn, PeerCertificates};
use crate::proto::Proto;
use crate::status::{Code, Status};
use link::Link;
use log::remote_warn;
use outbox::{Refused, until, with_frame};
use pending::{Outcome, Pending, Waiting};

/// The least time a closing session gives the peer to take its last messages.
const LAST_WRITES: Duration = Duration::from_millis(200);

/// No seq (a seq is an `i32`).
const NO_SEQ: i64 = i64::MIN;

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

struct Inner {
    env: Arc<Env>,
    side: Side,
    proto: Arc<dyn Proto>,
    dial_addr: Option<String>,
    id: RwLock<Arc<str>>,
    local_addr: RwLock<Arc<str>>,
    remote_addr: Arc<str>,
    /// The chain the other end presented in the TLS handshake of the current connection.
    peer_certificates: RwLock<Option<PeerCertificates>>,
    state: AtomicU8,
    link: RwLock<Option<Arc<Link>>>,
    /// Notified on every change of state or link, and when the last running handler ends.
    changed: Notify,
    /// Inline, not behind an `Arc` of its own: every call touches it, and with thousands of
    /// sessions each separate allocation is one more line to fetch from memory per call.
    pending: Pending,
    storage: Storage,
    handlers: AtomicUsize,
    disconnected: AtomicBool,
    /// Server side: a graceful close asks the client to move first (see [`goaway`]).
    asks_to_move: bool,
    /// Server side, closing: still taking calls while the client moves to a new connection
    /// (see [`goaway`]).
    draining: AtomicBool,
    /// Client side: moving to a new connection at the server's request.
    moving: AtomicBool,
    /// Server side: the seq of the GOAWAY question while it waits for its answer
    /// ([`NO_SEQ`]: none); the answer is internal, so reply hooks do not see it.
    goaway_seq: AtomicI64,
}

tokio::task_local! {
    /// The session whose handler is running on this task (its `Inner` address), so that a
    /// handler closing its own session does not wait for itself.
    static HANDLING: usize;
}

/// Where a message was queued: the link and the stream offset just past it. Only kept when
/// post-write hooks need it (no plugins: no reference to the link taken per message).
pub(crate) struct Queued {
    link: Option<Arc<Link>>,
    end: u64,
}

impl Queued {
    fn new(link: &Arc<Link>, end: u64, keep: bool) -> Queued {
        Queued {
            link: keep.then(|| link.clone()),
            end,
        }
    }

    /// Waits until the message was handed to the socket; false if the link broke first (or
    /// was not kept).
    pub(crate) async fn written(&self) -> bool {
        match &self.link {
            Some(link) => link.outbox.written_through(self.end).await,
            None => false,
        }
    }
}

impl Session {
    /// Starts a session on the connection of `pre` (after its PostDial/PostAccept hooks),
    /// registered with its peer (if any) before it reads anything.
    pub(crate) fn start(env: Arc<Env>, pre: PreSession, side: Side, dial_addr: Option<String>) -> Session {
        let (conn, proto, buffer, last_seq, storage, id) = pre.into_parts();
        let asks_to_move = goaway::asks_to_move(side, proto.as_ref(), &conn);
        let session = Session {
            inner: Arc::new(Inner {
                env,
                side,
                proto,
                dial_addr,
                id: RwLock::new(id.into()),
                local_addr: RwLock::new(conn.local_addr.clone().into()),
                remote_addr: conn.remote_addr.clone().into(),
                peer_certificates: RwLock::new(conn.peer_certificate_chain()),
                state: AtomicU8::new(OK),
                link: RwLock::new(None),
                changed: Notify::new(),
                pending: Pending::counting_from(last_seq),
                storage,
                handlers: AtomicUsize::new(0),
                disconnected: AtomicBool::new(false),
                asks_to_move,
                draining: AtomicBool::new(false),
                moving: AtomicBool::new(false),
                goaway_seq: AtomicI64::new(NO_SEQ),
            }),
        };
        // Registered with its link in place (a close finds the link to close) and before it
        // reads a byte (a handler of its first call finds the session among the peer's).
        session.install_link(conn, buffer, |session| {
            if let Some(registry) = session.inner.env.registry.upgrade() {
                registry.insert(session.clone());
            }
        });
        session
    }

    /// Makes `conn` the session's link, then runs `before_reading` (registering the session)
    /// and starts the link's reader.
    fn install_link(&self, conn: Conn, buffer: BytesMut, before_reading: impl FnOnce(&Session)) {
        let (link, reader) = Link::spawn(self, conn);
        let orphan = {
            let mut current = self.inner.link.write().unwrap_or_else(|e| e.into_inner());
            *current = Some(link.clone());
            // A redial's session can be closed while it dials; a close that already let go of
            // the (missing) link would leave this one open for ever. Whichever of the two
            // takes the link under this lock closes it.
            if self.state() == CLOSED { current.take() } else { None }
        };
        self.inner.changed.notify_waiters();
        if let Some(orphan) = orphan {
            orphan.close();
            return;
        }
        before_reading(self);
        link.read(self, reader, buffer);
    }

    pub(crate) fn env(&self) -> &Arc<Env> {
        &self.inner.env
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.env.settings
    }

    pub(crate) fn proto(&self) -> &Arc<dyn Proto> {
        &self.inner.proto
    }

    pub(crate) fn pending(&self) -> &Pending {
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
        if let Some(registry) = self.inner.env.registry.upgrade() {
            registry.rename(&old, self.clone());
        }
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

    /// The certificate chain the other end presented in the TLS handshake (TLS over tcp or
    /// unix, wss, QUIC, TLS over KCP), its own certificate first: with mutual TLS, the
    /// client's certificate on the server side. `None` on a session without TLS, or when the
    /// client sent no certificate. After a redial, the chain of the new connection.
    pub fn peer_certificates(&self) -> Option<PeerCertificates> {
        self.inner
            .peer_certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        self.wait_for(|s| s.state() >= CLOSING).await;
    }

    /// Resolves when the connection carrying this session now is lost (a redialing session
    /// goes on over a new one), at once if it has none: a handler's reply can no longer reach
    /// the caller then.
    pub(crate) fn connection_lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let session = self.clone();
        let link = self.current_link();
        async move {
            let Some(link) = link else { return };
            session
                .wait_for(move |s| !s.current_link().is_some_and(|now| Arc::ptr_eq(&now, &link)))
                .await;
        }
    }

    /// Waits until `done` holds, looking again on every change of state or link.
    async fn wait_for(&self, done: impl Fn(&Session) -> bool) {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            changed.await;
        }
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
    /// writes what is queued and closes the connection. Resolves when that is done.
    ///
    /// Called from one of this session's own handlers, it starts the close and returns at
    /// once: the close then completes when that handler has answered.
    pub async fn close(&self) {
        let in_own_handler = HANDLING.try_with(|&s| s == self.addr()).unwrap_or(false);
        // A server session keeps taking calls while it asks its client to move (GOAWAY): set
        // before the state changes, so no call is turned away in between.
        let was_draining = self.side() == Side::Server && self.inner.draining.swap(true, Ordering::AcqRel);
        if self.begin_closing() {
            // A task of its own, so the close completes even if this future is dropped.
            let session = self.clone();
            let closing = tokio::spawn(async move { session.finish_closing().await });
            if !in_own_handler {
                let _ = closing.await;
            }
        } else {
            if !was_draining {
                self.inner.draining.store(false, Ordering::Release);
            }
            if !in_own_handler {
                self.wait_for(|s| s.state() == CLOSED).await;
            }
        }
    }

    /// OK or REDIALING → CLOSING; false if the session was already closing.
    fn begin_closing(&self) -> bool {
        let mut state = self.state();
        loop {
            if state >= CLOSING {
                return false;
            }
            match self
                .inner
                .state
                .compare_exchange(state, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if let Some(registry) = self.inner.env.registry.upgrade() {
            registry.remove(self);
        }
        self.inner.changed.notify_waiters();
        true
    }

    async fn finish_closing(&self) {
        let limit = self.settings().shutdown_timeout;
        // A year stands for "no limit" where the configured one cannot be represented.
        let deadline =
            deadline_after(Some(limit)).unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400));
        if self.inner.draining.load(Ordering::Acquire) {
            self.let_client_move(deadline).await;
            // From here on, calls are turned away as in any close.
            self.inner.draining.store(false, Ordering::Release);
        }
        let handlers_finished = self.wait_for(|s| s.inner.handlers.load(Ordering::Acquire) == 0);
        if tokio::time::timeout_at(deadline, handlers_finished).await.is_err() {
            tracing::debug!(session = %self.id(), "handlers still running after the shutdown timeout");
        }
        let _ = tokio::time::timeout_at(deadline, self.inner.pending.drained()).await;
        self.inner
            .pending
            .fail_all(&Status::conn_closed("the session was closed"));
        self.inner.state.store(CLOSED, Ordering::Release);
        self.inner.changed.notify_waiters();
        // The session lets go of its link: once its tasks end, the connection is released
        // even while someone still holds the session.
        let link = self.inner.link.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(link) = link {
            // The last replies get a moment even when handlers used up the shutdown timeout.
            let left = deadline.saturating_duration_since(Instant::now());
            link.shutdown(left.max(LAST_WRITES)).await;
        }
        self.post_disconnect();
    }

    /// Closes at once, without waiting for anything: the peer was dropped.
    pub(crate) fn close_now(&self, reason: &Status) {
        if self.inner.state.swap(CLOSED, Ordering::AcqRel) == CLOSED {
            return;
        }
        self.inner.pending.fail_all(reason);
        self.inner.changed.notify_waiters();
        let link = self.inner.link.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(link) = link {
            link.abort();
        }
        self.post_disconnect();
    }

    /// Runs PostDisconnect hooks, once per session whatever path closed it.
    fn post_disconnect(&self) {
        if self.inner.disconnected.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(hooks) = &self.inner.env.hooks {
            hooks.post_disconnect(self);
        }
        tracing::debug!(session = %self.id(), remote = %self.remote_addr(), "session closed");
    }

    fn state(&self) -> u8 {
        self.inner.state.load(Ordering::Acquire)
    }

    fn addr(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The next seq of the session's counter, for a message that waits for no reply.
    pub(crate) fn next_seq(&self) -> i32 {
        self.inner.pending.next_seq()
    }

    /// Takes a seq and registers a call under it with `deadline`; the reader of the current
    /// link, which sweeps the calls past their deadline, hears of a deadline earlier than any
    /// it knows.
    pub(crate) fn register_call(&self, deadline: Option<Instant>) -> (i32, Waiting<'_>) {
        let (seq, waiting) = self.inner.pending.register(deadline);
        if waiting.brings_earlier_deadline()
            && let Some(link) = self.current_link()
        {
            link.rearm_reader();
        }
        (seq, waiting)
    }

    fn current_link(&self) -> Option<Arc<Link>> {
        let link = self.inner.link.read().unwrap_or_else(|e| e.into_inner()).clone();
        link.filter(|l| !l.is_lost())
    }

    /// Queues a CALL or PUSH and has it written. While the output queue is full or a redial
    /// is under way it waits, but never past `deadline`.
    ///
    /// Who writes: a message that no other can join (`alone`: the session's only call in
    /// flight) is written at once, if the socket takes it without waiting; otherwise the writer
    /// task writes it, after letting every ready task run, so that the messages of concurrent
    /// callers leave in one write.
    pub(crate) async fn send(&self, msg: &Message, deadline: Option<Instant>, alone: bool) -> Result<Queued, Status> {
        // Framed once, outside any lock; copied to a buffer of its own only if it must wait.
        let mut waiting_frame: Option<Vec<u8>> = None;
        match self.try_send(msg, alone, &mut waiting_frame)? {
            Attempt::Sent(queued) => Ok(queued),
            // Rare (queue full, redialing), and boxed: the common path's future (part of every
            // call's future) stays small. A call's future larger than the allocator's
            // per-thread cache size (about 1 KiB with glibc) costs two arena locks per call,
            // which the worker threads then contend for.
            attempt => Box::pin(self.send_waiting(msg, deadline, alone, attempt, waiting_frame)).await,
        }
    }

    /// Queues a CALL or PUSH without waiting, if the link takes it.
    fn try_send(&self, msg: &Message, alone: bool, waiting_frame: &mut Option<Vec<u8>>) -> Result<Attempt, Status> {
        if self.state() >= CLOSING {
            return Err(Status::conn_closed("the session is closed"));
        }
        let Some(link) = self.current_link() else {
            return Ok(Attempt::Lost(None));
        };
        let pushed = match waiting_frame {
            Some(frame) => Ok(link.outbox.push(frame, false)),
            None => with_frame(
                self.proto().as_ref(),
                msg,
                self.settings().limits.max_message_size,
                |frame| {
                    // A call alone in flight: no other message can join its write.
                    let pushed = if alone {
                        link.outbox.write_through(frame)
                    } else {
                        link.outbox.push(frame, false)
                    };
                    if matches!(pushed, Err(Refused::Full)) {
                        *waiting_frame = Some(frame.to_vec());
                    }
                    pushed
                },
            ),
        }?;
        Ok(match pushed {
            Ok(end) => {
                match (alone, waiting_frame.is_some()) {
                    (true, false) => {} // written through
                    // Queued after waiting for room.
                    (true, true) => link.outbox.write_now(),
                    (false, _) => link.outbox.kick(),
                }
                let watched = self.inner.env.hooks.as_ref().is_some_and(|h| h.observes_writes());
                Attempt::Sent(Queued::new(&link, end, watched))
            }
            Err(Refused::Full) => Attempt::Full(link),
            Err(Refused::Closed | Refused::Overflow) => Attempt::Lost(Some(link)),
        })
    }

    /// The slow path of [`send`](Self::send): waits for room in the output queue or for a
    /// redial, never past `deadline`, and tries again.
    async fn send_waiting(
        &self,
        msg: &Message,
        deadline: Option<Instant>,
        alone: bool,
        mut attempt: Attempt,
        mut waiting_frame: Option<Vec<u8>>,
    ) -> Result<Queued, Status> {
        loop {
            match attempt {
                Attempt::Sent(queued) => return Ok(queued),
                Attempt::Full(link) => {
                    tokio::select! {
                        () = link.outbox.room() => {}
                        () = until(deadline) => {
                            return Err(not_reading(msg, link.outbox.queued()));
                        }
                    }
                }
                Attempt::Lost(link) => {
                    if self.state() != REDIALING {
                        return Err(Status::conn_closed("the connection is lost"));
                    }
                    // Lost, and a redial may bring a new link: wait for it, up to the deadline.
                    let current = link.as_ref().map(|l| Arc::as_ptr(l) as usize);
                    let relinked = self.wait_for(|s| {
                        s.state() != REDIALING
                            || s.inner
                                .link
                                .read()
                                .unwrap_or_else(|e| e.into_inner())
                                .as_ref()
                                .is_some_and(|l| Some(Arc::as_ptr(l) as usize) != current && !l.is_lost())
                    });
                    tokio::select! {
                        () = relinked => {}
                        () = until(deadline) => {
                            return Err(Status::conn_closed("the connection is lost and redialing did not finish in time"));
                        }
                    }
                }
            }
            attempt = self.try_send(msg, alone, &mut waiting_frame)?;
        }
    }

    /// Queues a REPLY on the current link. Never waits: replies are not held back by
    /// backpressure (the reader must keep reading); a peer letting them pile up past the hard
    /// cap loses its session. Queued `on_reader`, it is written by the reader after its batch;
    /// elsewhere the writer task is woken to write it.
    pub(crate) fn queue_reply(&self, reply: &Message, on_reader: bool) -> Result<Queued, Status> {
        if self.state() == CLOSED {
            return Err(Status::conn_closed("the session is closed"));
        }
        let Some(link) = self.current_link() else {
            return Err(Status::conn_closed("the connection is lost"));
        };
        self.queue_reply_on(link, reply, on_reader)
    }

    /// [`queue_reply`](Self::queue_reply) on a given link.
    fn queue_reply_on(&self, link: Arc<Link>, reply: &Message, on_reader: bool) -> Result<Queued, Status> {
        let pushed = with_frame(
            self.proto().as_ref(),
            reply,
            self.settings().limits.max_message_size,
            |frame| link.outbox.push(frame, true),
        )?;
        match pushed {
            Ok(end) => {
                if on_reader {
                    link.inline_replies.store(true, Ordering::Release);
                } else {
                    link.outbox.kick();
                }
                Ok(Queued { link: Some(link), end })
            }
            Err(Refused::Overflow) => {
                remote_warn!(
                    self.env(),
                    session = %self.id(),
                    "the peer sends calls but does not read the replies; closing the session"
                );
                link.close();
                self.link_lost(&link, Status::conn_closed("the peer does not read its replies"));
                Err(Status::conn_closed("the peer does not read its replies"))
            }
            Err(_) => Err(Status::conn_closed("the connection is lost")),
        }
    }

    /// Handles one received message (on the reader task). An error closes the link.
    fn receive(&self, msg: Message) -> Result<(), Status> {
        match msg.mtype {
            MessageType::Reply => {
                self.complete_reply(msg);
                Ok(())
            }
            MessageType::Call if self.side() == Side::Client && msg.service_method == goaway::ROUTE => {
                self.on_goaway(&msg);
                Ok(())
            }
            MessageType::Call | MessageType::Push => {
                if msg.body_codec == CodecId::NONE && !msg.body.is_empty() {
                    // Go closes the connection without an answer here; so do we, for
                    // compatibility.
                    return Err(Status::bad_message("a message with a body but no codec (codec 0)"));
                }
                if self.is_closed() && !self.inner.draining.load(Ordering::Acquire) {
                    // Closing converges: running handlers finish, new work is turned away.
                    if msg.mtype == MessageType::Call {
                        let mut reply = Message::new(MessageType::Reply, msg.seq);
                        reply.xfer_pipe = msg.xfer_pipe;
                        reply.status = Status::conn_closed("the session is closing");
                        let _ = self.queue_reply(&reply, true);
                    }
                    return Ok(());
                }
                let guard = self.handler_started();
                let dispatch = &self.inner.env.dispatch;
                if msg.mtype == MessageType::Call {
                    dispatch.call(self, msg, guard);
                } else {
                    dispatch.push(self, msg, guard);
                }
                Ok(())
            }
            MessageType::AuthCall | MessageType::AuthReply => Err(Status::with_cause(
                Code::MTYPE_NOT_ALLOWED,
                "Message Type Not Allowed",
                format!("{} is only allowed during the connection handshake", msg.mtype),
            )),
        }
    }

    fn complete_reply(&self, mut msg: Message) {
        let pending = &self.inner.pending;
        let seq = msg.seq;
        let Some(hooks) = &self.inner.env.hooks else {
            if !pending.complete(seq, Outcome::Reply(msg)) {
                tracing::debug!(session = %self.id(), seq, "reply to no waiting call; dropped");
            }
            return;
        };
        if !pending.contains(seq) {
            tracing::debug!(session = %self.id(), seq, "reply to no waiting call; dropped");
            return;
        }
        if i64::from(seq) == self.inner.goaway_seq.load(Ordering::Acquire) {
            pending.complete(seq, Outcome::Reply(msg));
            return;
        }
        let checked = hooks
            .post_read_reply_header(self, &mut msg)
            .and_then(|()| hooks.pre_read_reply_body(self, &mut msg));
        pending.complete(
            seq,
            match checked {
                Ok(()) => Outcome::Reply(msg),
                Err(status) => Outcome::Failed(status),
            },
        );
    }

    /// Number of handlers running for messages of this session.
    pub(crate) fn handlers_running(&self) -> usize {
        self.inner.handlers.load(Ordering::Acquire)
    }

    /// Resolves when no handler of this session is running (every call taken is answered).
    pub(crate) async fn handlers_done(&self) {
        self.wait_for(|s| s.handlers_running() == 0).await;
    }

    /// Counts a running handler; the guard uncounts it.
    pub(crate) fn handler_started(&self) -> HandlerGuard {
        self.inner.handlers.fetch_add(1, Ordering::AcqRel);
        HandlerGuard { session: self.clone() }
    }

    /// Polls a handler's first step with this session marked as the one being handled.
    pub(crate) fn handling_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        HANDLING.sync_scope(self.addr(), f)
    }

    /// Runs a handler's future with this session marked as the one being handled.
    pub(crate) fn handling<F: std::future::Future>(
        &self,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> + use<F> {
        HANDLING.scope(self.addr(), fut)
    }

    /// Called when a link ends. Fails waiting calls, then redials (client sessions with redial
    /// on) or closes the session.
    fn link_lost(&self, link: &Arc<Link>, reason: Status) {
        {
            let mut current = self.inner.link.write().unwrap_or_else(|e| e.into_inner());
            if !current.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
                return; // an older link, or this one's loss was handled already
            }
            // Let go of it: its tasks end, and with them the connection.
            *current = None;
        }
        self.inner.changed.notify_waiters();
        self.inner.pending.fail_all(&reason);
        if self.state() >= CLOSING {
            return;
        }
        let settings = self.settings();
        let redial = self.inner.env.redial.as_ref().and_then(|r| r.upgrade());
        if let (Some(redial), Some(addr)) = (redial, self.inner.dial_addr.clone())
            && self.side() == Side::Client
            && settings.redial_times != 0
        {
            if self
                .inner
                .state
                .compare_exchange(OK, REDIALING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                tracing::info!(session = %self.id(), %reason, "connection lost, redialing");
                self.inner.changed.notify_waiters();
                let session = self.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { session.redial(redial.as_ref(), &addr).await });
                }
            }
            return;
        }
        self.passive_close(OK, &reason);
    }

    /// `from` → CLOSED because the connection is gone for good.
    fn passive_close(&self, from: u8, reason: &Status) {
        if self
            .inner
            .state
            .compare_exchange(from, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // closing or closed by someone else, who finishes the job
        }
        tracing::debug!(session = %self.id(), %reason, "connection lost");
        if let Some(registry) = self.inner.env.registry.upgrade() {
            registry.remove(self);
        }
        self.inner.changed.notify_waiters();
        self.post_disconnect();
    }

    /// Makes the connection of a redial the session's link: the id follows the new local
    /// address if it was the old one, and the session is registered again. With `replacing`,
    /// only while that link is still the current one and the session is open (false, and the
    /// connection dropped, otherwise).
    fn adopt(&self, pre: PreSession, replacing: Option<&Arc<Link>>) -> bool {
        let (conn, _, buffer, _, _, _) = pre.into_parts();
        let local_addr = conn.local_addr.clone();
        let chain = conn.peer_certificate_chain();
        if replacing.is_none() {
            // A redial's session is registered again before its new link reads a byte.
            self.install_link(conn, buffer, |session| {
                session.follow_local_addr(local_addr);
                session.set_peer_certificates(chain);
            });
            return true;
        }
        let (link, reader) = {
            // Checked and replaced under one lock: a link lost meanwhile is not replaced
            // behind the back of the redial it started.
            let mut current = self.inner.link.write().unwrap_or_else(|e| e.into_inner());
            if self.state() != OK
                || !current
                    .as_ref()
                    .zip(replacing)
                    .is_some_and(|(l, old)| Arc::ptr_eq(l, old))
            {
                return false;
            }
            let (link, reader) = Link::spawn(self, conn);
            *current = Some(link.clone());
            (link, reader)
        };
        self.follow_local_addr(local_addr);
        self.set_peer_certificates(chain);
        self.inner.changed.notify_waiters();
        link.read(self, reader, buffer);
        true
    }

    fn set_peer_certificates(&self, chain: Option<PeerCertificates>) {
        *self.inner.peer_certificates.write().unwrap_or_else(|e| e.into_inner()) = chain;
    }

    /// A new connection's local address; the id follows it if it was the old one. The
    /// session is (re-)registered under its id.
    fn follow_local_addr(&self, local_addr: String) {
        let was_default_id = *self.id() == *self.local_addr();
        *self.inner.local_addr.write().unwrap_or_else(|e| e.into_inner()) = local_addr.clone().into();
        if was_default_id {
            self.set_id(local_addr);
        }
        if let Some(registry) = self.inner.env.registry.upgrade() {
            registry.insert(self.clone());
        }
    }

    async fn redial(&self, redial: &dyn Redial, addr: &str) {
        match redial.redial(self, addr, self.inner.proto.clone()).await {
            Ok(pre) => {
                if self
                    .inner
                    .state
                    .compare_exchange(REDIALING, OK, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    return; // closed meanwhile: the new connection is dropped
                }
                self.adopt(pre, None);
                tracing::info!(session = %self.id(), "redial ok");
            }
            Err(status) => {
                tracing::warn!(session = %self.id(), %status, "redial failed");
                // Only a session still redialing closes here: one closed meanwhile keeps the
                // state its closer gave it.
                self.passive_close(
                    REDIALING,
                    &Status::conn_closed(format!("redial failed: {}", status.cause().unwrap_or(status.msg()))),
                );
            }
        }
    }
}

/// What one try at queuing a CALL or PUSH came to.
enum Attempt {
    Sent(Queued),
    /// The output queue is full: wait for room on this link.
    Full(Arc<Link>),
    /// No usable link (the one seen, if any, is lost): wait for a redial.
    Lost(Option<Arc<Link>>),
}

/// The error of a call or push that could not be queued before its deadline.
fn not_reading(msg: &Message, queued: usize) -> Status {
    let why = format!(
        "{:?} could not be sent before its deadline: the peer is not reading ({queued} bytes wait to be written)",
        msg.service_method
    );
    match msg.mtype {
        MessageType::Call => Status::timeout(why),
        _ => Status::from_code(Code::WRITE_FAILED, why),
    }
}

/// Uncounts a running handler when dropped (also when the handler panicked).
pub(crate) struct HandlerGuard {
    session: Session,
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        if self.session.inner.handlers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.session.inner.changed.notify_waiters();
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
    status.code() == Code::CONN_CLOSED
}

/// The next seq of a session's counter: CALLs and PUSHes share one counter that wraps like
/// Go's.
pub(crate) fn next_seq(counter: &AtomicI32) -> i32 {
    counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// A deadline `limit` from now (none for `None`, or for a limit too far to represent).
pub(crate) fn deadline_after(limit: Option<Duration>) -> Option<Instant> {
    limit.and_then(|limit| Instant::now().checked_add(limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::RawProto;

    /// Answers every call with its own body.
    struct Echo;

    impl Dispatch for Echo {
        fn call(&self, session: &Session, msg: Message, guard: HandlerGuard) {
            let mut reply = Message::new(MessageType::Reply, msg.seq);
            reply.body_codec = msg.body_codec;
            reply.body = msg.body;
            session.queue_reply(&reply, true).expect("the link takes the reply");
            drop(guard);
        }
        fn push(&self, _: &Session, _: Message, _: HandlerGuard) {}
    }

    fn pre(io: tokio::io::DuplexStream, id: &str) -> PreSession {
        let conn = Conn::new(io, id, "the other end");
        let settings = Settings::for_tests();
        PreSession::new(
            conn,
            Arc::new(RawProto),
            id.to_string(),
            Seqs::new(),
            Storage::default(),
            settings.limits,
            settings.default_codec,
            None,
        )
    }

    #[tokio::test]
    async fn a_session_runs_over_any_connection_without_a_peer() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let env = Arc::new(Env::standalone(Settings::for_tests(), Arc::new(Echo)));
        let client = Session::start(env.clone(), pre(a, "client"), Side::Client, None);
        let server = Session::start(env, pre(b, "server"), Side::Server, None);
        let echoed: String = client.call("/echo", &"hi".to_string()).await.unwrap();
        assert_eq!(echoed, "hi");
        client.close().await;
        server.closed().await;
        let lost = client
            .call::<_, String>("/echo", &"again".to_string())
            .await
            .unwrap_err();
        assert_eq!(lost.code(), Code::CONN_CLOSED);
    }
}
