//! Making calls and pushes: [`Call`] and [`Push`] builders, [`Reply`], [`PendingCall`].

use std::borrow::Borrow;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tracing::{Instrument, Span};

use std::sync::Arc;

use super::Session;
use super::log;
use super::pending::{Outcome, Waiting};
use crate::codec::{CodecId, DecodeBody, EncodeBody};
use crate::config::Settings;
use crate::message::{Message, MessageType};
use crate::meta::{self, Meta};
use crate::status::{Code, Status};
use crate::xfer::XferPipe;

/// The builder methods calls and pushes share.
macro_rules! message_options {
    () => {
        /// Appends a meta pair.
        pub fn meta(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
            self.options.meta.add(key, value);
            self
        }

        /// Sets the body codec (default: the peer's default codec).
        pub fn codec(mut self, codec: CodecId) -> Self {
            self.options.codec = Some(codec);
            self
        }

        /// Appends a transfer filter by id (`b'g'` for gzip); a reply mirrors its call's filters.
        pub fn xfer(mut self, filter_id: u8) -> Self {
            self.options.xfer.push(filter_id);
            self
        }
    };
}

/// Options shared by calls and pushes.
#[derive(Default)]
struct Options {
    meta: Meta,
    codec: Option<CodecId>,
    xfer: Vec<u8>,
    timeout: Option<Option<Duration>>,
    /// Keep the call's timeout to this side (no `X-Erpc-Timeout`).
    local_deadline: bool,
}

impl Options {
    /// Builds the message: encodes `args` with the chosen (or default) codec.
    fn message<A: EncodeBody + ?Sized>(
        self,
        settings: &Settings,
        mtype: MessageType,
        service_method: &str,
        args: &A,
    ) -> Result<Message, Status> {
        let codec = self.codec.unwrap_or(settings.default_codec);
        let body = args
            .encode_body(codec)
            .map_err(|e| Status::from_code(Code::WRITE_FAILED, format!("cannot encode the arguments: {e}")))?;
        let xfer_pipe =
            XferPipe::from_ids(&self.xfer).map_err(|e| Status::from_code(Code::WRITE_FAILED, e.to_string()))?;
        Ok(Message {
            seq: 0,
            mtype,
            service_method: service_method.to_string(),
            status: Status::OK,
            meta: self.meta,
            body_codec: codec,
            body,
            xfer_pipe,
        })
    }
}

/// Lends sessions for single calls and pushes: the session pool.
pub(crate) trait Hire: Send + Sync + 'static {
    /// A session to send one message on (dialed if need be).
    fn hire(&self) -> BoxFuture<'_, Result<Session, Status>>;
    /// The settings of the peer the sessions belong to.
    fn settings(&self) -> &Settings;
}

/// What typed clients send through: a [`Session`], or a [`Pool`](crate::Pool) that hires a
/// session per message. The builders it returns own their arguments, so a generated client
/// method can take them by value; otherwise they are [`Session::call`]'s builders, with the
/// same options (meta, codec, timeout…).
pub trait Caller: Clone + Send + Sync + 'static {
    /// Starts a CALL of `service_method` with `args`.
    fn call_owned<'a, A: EncodeBody, R>(&'a self, service_method: &'a str, args: A) -> Call<'a, A, R, A>;
    /// Starts a PUSH of `service_method` with `args`.
    fn push_owned<'a, A: EncodeBody>(&'a self, service_method: &'a str, args: A) -> Push<'a, A, A>;
}

impl Caller for Session {
    fn call_owned<'a, A: EncodeBody, R>(&'a self, service_method: &'a str, args: A) -> Call<'a, A, R, A> {
        Call::owned(Target::Session(self), service_method, args)
    }

    fn push_owned<'a, A: EncodeBody>(&'a self, service_method: &'a str, args: A) -> Push<'a, A, A> {
        Push::owned(Target::Session(self), service_method, args)
    }
}

impl Caller for crate::Pool {
    fn call_owned<'a, A: EncodeBody, R>(&'a self, service_method: &'a str, args: A) -> Call<'a, A, R, A> {
        Call::owned(Target::Pool(self.hirer()), service_method, args)
    }

    fn push_owned<'a, A: EncodeBody>(&'a self, service_method: &'a str, args: A) -> Push<'a, A, A> {
        Push::owned(Target::Pool(self.hirer()), service_method, args)
    }
}

/// Where a call or push goes.
pub(crate) enum Target<'a> {
    Session(&'a Session),
    Pool(Arc<dyn Hire>),
}

impl Target<'_> {
    fn settings(&self) -> &Settings {
        match self {
            Target::Session(session) => session.settings(),
            Target::Pool(pool) => pool.settings(),
        }
    }

    fn resolve(self) -> Resolve {
        match self {
            Target::Session(session) => Resolve::Ready(session.clone()),
            Target::Pool(pool) => Resolve::Hire(pool),
        }
    }
}

/// A target made owned, to be resolved into a session when the message goes.
enum Resolve {
    Ready(Session),
    Hire(Arc<dyn Hire>),
}

impl Resolve {
    async fn session(self) -> Result<Session, Status> {
        match self {
            Resolve::Ready(session) => Ok(session),
            Resolve::Hire(pool) => pool.hire().await,
        }
    }
}

/// A reply with its meta and codec, from [`Call::reply`].
#[derive(Debug, Clone)]
pub struct Reply<R> {
    /// The decoded body.
    pub body: R,
    /// The reply's meta.
    pub meta: Meta,
    /// The reply's body codec.
    pub codec: CodecId,
}

/// A CALL being prepared. Await it for the decoded reply body, or use
/// [`reply`](Self::reply) for the meta too, or [`start`](Self::start) to send now and await
/// later.
///
/// ```no_run
/// # async fn f(session: erpc::Session) -> Result<(), erpc::Status> {
/// use std::time::Duration;
/// let sum: i64 = session
///     .call("/math/add", &[1, 2, 3])
///     .meta("author", "andeya")
///     .timeout(Duration::from_secs(2))
///     .await?;
/// # Ok(()) }
/// ```
///
/// `S` is how the builder holds the arguments: borrowed (`&A`, from [`Session::call`]) or
/// owned (`A`, from a [`Caller`] such as a typed client).
#[must_use = "a call does nothing until awaited or started"]
pub struct Call<'a, A: ?Sized, R, S = &'a A> {
    target: Target<'a>,
    service_method: &'a str,
    args: S,
    options: Options,
    _args: PhantomData<fn(&A)>,
    _reply: PhantomData<fn() -> R>,
}

impl<'a, A: EncodeBody + ?Sized, R> Call<'a, A, R> {
    pub(crate) fn new(session: &'a Session, service_method: &'a str, args: &'a A) -> Self {
        Self::to(Target::Session(session), service_method, args)
    }

    /// A call on a session `pool` hires when the call is sent.
    pub(crate) fn on_pool(pool: Arc<dyn Hire>, service_method: &'a str, args: &'a A) -> Self {
        Self::to(Target::Pool(pool), service_method, args)
    }
}

impl<'a, A: EncodeBody, R> Call<'a, A, R, A> {
    /// A call that owns its arguments, on a session or a pool.
    pub(crate) fn owned(target: Target<'a>, service_method: &'a str, args: A) -> Self {
        Self::to(target, service_method, args)
    }
}

impl<'a, A: EncodeBody + ?Sized, R, S: Borrow<A>> Call<'a, A, R, S> {
    fn to(target: Target<'a>, service_method: &'a str, args: S) -> Self {
        Call {
            target,
            service_method,
            args,
            options: Options::default(),
            _args: PhantomData,
            _reply: PhantomData,
        }
    }

    message_options!();

    /// Asks the other end to answer with this codec (meta `X-Accept-Body-Codec`).
    pub fn accept(mut self, codec: CodecId) -> Self {
        if codec != CodecId::NONE {
            self.options.meta.set(meta::ACCEPT_BODY_CODEC, codec.0.to_string());
        }
        self
    }

    /// Gives up with `408` after `timeout` (default: the peer's `call_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(Some(timeout));
        self
    }

    /// Sends no `X-Erpc-Timeout` meta with this call (`PeerConfig::send_deadline`), for a call
    /// whose bytes must be exactly Go's, such as the heartbeat's.
    pub fn local_deadline(mut self) -> Self {
        self.options.local_deadline = true;
        self
    }

    /// Waits for the reply however long it takes (still ends if the connection is lost).
    pub fn no_timeout(mut self) -> Self {
        self.options.timeout = Some(None);
        self
    }
}

impl<'a, A: EncodeBody + ?Sized, R: DecodeBody, S: Borrow<A>> Call<'a, A, R, S> {
    fn prepare(self) -> (Target<'a>, Result<Message, Status>, Option<Duration>) {
        let settings = self.target.settings();
        let timeout = self.options.timeout.unwrap_or(settings.call_timeout);
        let send_deadline = settings.send_deadline && !self.options.local_deadline;
        let mut msg = self
            .options
            .message(settings, MessageType::Call, self.service_method, self.args.borrow());
        if send_deadline && let (Ok(msg), Some(timeout)) = (&mut msg, timeout) {
            // An erpc server stops the handler once it passes (Go peers ignore the key).
            msg.meta.set(meta::TIMEOUT, timeout.as_millis().max(1).to_string());
        }
        (self.target, msg, timeout)
    }

    /// Sends the call and waits for the reply, with its meta and codec.
    pub async fn reply(self) -> Result<Reply<R>, Status> {
        let (target, msg, timeout) = self.prepare();
        let msg = msg?;
        exchange(target.resolve().session().await?, msg, timeout).await
    }

    /// Sends the call in the background and returns a handle to await the reply later.
    /// The arguments are encoded now.
    pub fn start(self) -> PendingCall<R> {
        let (target, msg, timeout) = self.prepare();
        let target = target.resolve();
        let task = tokio::spawn(async move {
            let msg = msg?;
            exchange(target.session().await?, msg, timeout).await
        });
        PendingCall { task }
    }
}

impl<'a, A: EncodeBody + ?Sized, R: DecodeBody, S: Borrow<A>> IntoFuture for Call<'a, A, R, S> {
    type Output = Result<R, Status>;
    type IntoFuture = CallFuture<'a, R>;

    fn into_future(self) -> CallFuture<'a, R> {
        let (target, msg, timeout) = self.prepare();
        let msg = match msg {
            Ok(msg) => msg,
            Err(status) => return CallFuture::boxed(Box::pin(std::future::ready(Err(status)))),
        };
        let span = client_span(&msg);
        match target {
            // The common case runs unboxed, on the borrowed session.
            Target::Session(session) if span.is_disabled() && session.env().hooks.is_none() => CallFuture {
                state: CallState::Unsent { session, msg, timeout },
            },
            // The boxed future is allocated and freed once per call, often on different worker
            // threads, so it must stay within the allocator's per-thread cache (about 1 KiB with
            // glibc); larger, each call takes the allocator's arena locks and the workers contend.
            target if !span.is_disabled() => CallFuture::boxed(Box::pin(traced(target.resolve(), msg, timeout, span))),
            Target::Session(session) => CallFuture::boxed(Box::pin(call_future(session.clone(), msg, timeout))),
            Target::Pool(pool) => CallFuture::boxed(Box::pin(async move {
                let session = pool.hire().await?;
                call_future(session, msg, timeout).await
            })),
        }
    }
}

/// An awaited [`Call`]: resolves to the decoded reply body, or the status that ended the call.
///
/// The call is sent when the future is first polled. A call on a session with no plugin hooks
/// and no tracing span runs inline in this future, allocating nothing of its own; the others
/// (through a pool, with hooks or a span, or waiting for room in a full output queue) run in
/// a boxed future.
#[must_use = "a call does nothing until awaited"]
pub struct CallFuture<'a, R> {
    state: CallState<'a, R>,
}

enum CallState<'a, R> {
    /// Not sent yet.
    Unsent {
        session: &'a Session,
        msg: Message,
        timeout: Option<Duration>,
    },
    /// Sent: waiting for the reply.
    Sent(InFlight<'a>),
    Boxed(BoxFuture<'a, Result<R, Status>>),
    Done,
}

/// A call sent on its session, waiting for its reply.
struct InFlight<'a> {
    session: &'a Session,
    msg: Message,
    reply: Waiting<'a>,
    timeout: Option<Duration>,
    started: Option<Instant>,
}

impl<'a, R: DecodeBody> CallFuture<'a, R> {
    fn boxed(future: BoxFuture<'a, Result<R, Status>>) -> Self {
        CallFuture {
            state: CallState::Boxed(future),
        }
    }

    /// Registers the call and queues it. What cannot be queued at once (a full output queue,
    /// a redial under way) goes on in a boxed future that waits, within the deadline.
    fn send(session: &'a Session, mut msg: Message, timeout: Option<Duration>) -> CallState<'a, R> {
        let started = session.env().settings.count_time.then(Instant::now);
        let deadline = super::deadline_after(timeout);
        let (seq, reply) = session.register_call(deadline);
        msg.seq = seq;
        let alone = reply.is_alone();
        let mut waiting_frame = None;
        match session.try_send(&msg, alone, &mut waiting_frame) {
            Ok(super::Attempt::Sent(_)) => CallState::Sent(InFlight {
                session,
                msg,
                reply,
                timeout,
                started,
            }),
            Ok(attempt) => CallState::Boxed(Box::pin(async move {
                let mut reply = reply;
                let outcome = match session
                    .send_waiting(&msg, deadline, alone, attempt, waiting_frame)
                    .await
                {
                    Ok(_) => (&mut reply).await.into_reply(&msg, timeout),
                    Err(status) => Err(status),
                };
                conclude(session, &msg, outcome, started).map(|reply| reply.body)
            })),
            Err(status) => {
                let ended = conclude(session, &msg, Err(status), started).map(|reply: Reply<R>| reply.body);
                CallState::Boxed(Box::pin(std::future::ready(ended)))
            }
        }
    }
}

impl<R: DecodeBody> Future for CallFuture<'_, R> {
    type Output = Result<R, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                CallState::Unsent { .. } => {
                    let CallState::Unsent { session, msg, timeout } =
                        std::mem::replace(&mut this.state, CallState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    this.state = Self::send(session, msg, timeout);
                }
                CallState::Sent(call) => {
                    let outcome =
                        std::task::ready!(Pin::new(&mut call.reply).poll(cx)).into_reply(&call.msg, call.timeout);
                    let ended = conclude(call.session, &call.msg, outcome, call.started).map(|reply| reply.body);
                    this.state = CallState::Done;
                    return Poll::Ready(ended);
                }
                CallState::Boxed(future) => {
                    let ended = std::task::ready!(future.as_mut().poll(cx));
                    this.state = CallState::Done;
                    return Poll::Ready(ended);
                }
                CallState::Done => panic!("a CallFuture polled after it completed"),
            }
        }
    }
}

/// The span of an outgoing call: disabled (and free) unless a subscriber enables the
/// `erpc::client` target at DEBUG.
fn client_span(msg: &Message) -> Span {
    tracing::debug_span!(
        target: "erpc::client",
        "call",
        service_method = %msg.service_method,
        code = tracing::field::Empty,
    )
}

/// An awaited call inside its span, which records how it ended.
async fn traced<R: DecodeBody>(
    target: Resolve,
    msg: Message,
    timeout: Option<Duration>,
    span: Span,
) -> Result<R, Status> {
    let in_span = span.clone();
    async move {
        let result = match target.session().await {
            Ok(session) => call_future(session, msg, timeout).await,
            Err(status) => Err(status),
        };
        in_span.record("code", result.as_ref().err().map_or(0, |s| s.code().get()));
        result
    }
    .instrument(span)
    .await
}

/// The future an awaited call boxes (checked by a test to stay within the allocator's
/// per-thread cache).
fn call_future<R: DecodeBody>(
    session: Session,
    msg: Message,
    timeout: Option<Duration>,
) -> impl Future<Output = Result<R, Status>> + Send {
    exchange::<R>(session, msg, timeout).map(|reply| reply.map(|reply| reply.body))
}

/// A call sent with [`Call::start`]; await it for the reply.
pub struct PendingCall<R> {
    task: tokio::task::JoinHandle<Result<Reply<R>, Status>>,
}

impl<R> PendingCall<R> {
    /// Whether the reply (or the error) is in.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops waiting: the call ends with [`Code::CANCELED`] (a reply that comes later is
    /// dropped).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl<R> Future for PendingCall<R> {
    type Output = Result<Reply<R>, Status>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(if e.is_cancelled() {
                    Status::from_code(Code::CANCELED, "the call was aborted before its reply came")
                } else {
                    Status::internal(format!("the task making the call panicked: {e}"))
                })
            })
        })
    }
}

/// Sends a CALL and waits for its reply: seq and pending entry, hooks, queue, wait, decode.
/// The deadline covers all of it: waiting for room in the output queue or for a redial,
/// sending, and the reply.
async fn exchange<R: DecodeBody>(
    session: Session,
    mut msg: Message,
    timeout: Option<Duration>,
) -> Result<Reply<R>, Status> {
    let env = session.env();
    let started = env.settings.count_time.then(Instant::now);
    let deadline = super::deadline_after(timeout);
    let (seq, mut reply) = session.register_call(deadline);
    msg.seq = seq;
    if let Some(hooks) = &env.hooks {
        hooks.pre_write_call(&session, &mut msg)?;
    }
    let outcome = async {
        let queued = session.send(&msg, deadline, reply.is_alone()).await?;
        if let Some(hooks) = env.hooks.as_ref().filter(|h| h.observes_writes()) {
            // PostWriteCall runs once the call is on the socket, unless the call ends first.
            tokio::select! {
                biased;
                written = queued.written() => if written {
                    hooks.post_write_call(&session, &msg);
                },
                outcome = &mut reply => return outcome.into_reply(&msg, timeout),
            }
        }
        (&mut reply).await.into_reply(&msg, timeout)
    }
    .await;
    conclude(&session, &msg, outcome, started)
}

/// How a sent call ends: logged and counted, its reply seen by the hooks and decoded.
fn conclude<R: DecodeBody>(
    session: &Session,
    msg: &Message,
    outcome: Result<Message, Status>,
    started: Option<Instant>,
) -> Result<Reply<R>, Status> {
    let env = session.env();
    log::call_out(&env.settings, session, msg, outcome.as_ref(), started);
    env.metrics.client_call_ended(match &outcome {
        Ok(reply) => reply.status.code().get(),
        Err(status) => status.code().get(),
    });
    let reply = outcome?;
    if !reply.status.is_ok() {
        return Err(reply.status);
    }
    if let Some(hooks) = &env.hooks {
        // Replies travel without their service method; hooks see it restored, as in Go.
        let mut reply = reply.clone();
        reply.service_method.clone_from(&msg.service_method);
        hooks.post_read_reply_body(session, &reply)?;
    }
    let body = R::decode_body(reply.body_codec, reply.body)
        .map_err(|e| Status::bad_message(format!("cannot decode the reply: {e}")))?;
    Ok(Reply {
        body,
        meta: reply.meta,
        codec: reply.body_codec,
    })
}

impl Outcome {
    fn into_reply(self, call: &Message, timeout: Option<Duration>) -> Result<Message, Status> {
        match self {
            Outcome::Reply(reply) => Ok(reply),
            Outcome::Failed(status) => Err(status),
            Outcome::TimedOut => Err(Status::timeout(format!(
                "no reply to {:?} within {:?}; raise the call timeout if the handler is slow",
                call.service_method,
                timeout.unwrap_or_default()
            ))),
        }
    }
}

/// A PUSH being prepared; await it to send. There is no answer: `Ok` means it was queued for
/// writing on a live connection.
///
/// `S` is how the builder holds the arguments, as for [`Call`].
#[must_use = "a push does nothing until awaited"]
pub struct Push<'a, A: ?Sized, S = &'a A> {
    target: Target<'a>,
    service_method: &'a str,
    args: S,
    options: Options,
    _args: PhantomData<fn(&A)>,
}

impl<'a, A: EncodeBody + ?Sized> Push<'a, A> {
    pub(crate) fn new(session: &'a Session, service_method: &'a str, args: &'a A) -> Self {
        Self::to(Target::Session(session), service_method, args)
    }

    /// A push on a session `pool` hires when the push is sent.
    pub(crate) fn on_pool(pool: Arc<dyn Hire>, service_method: &'a str, args: &'a A) -> Self {
        Self::to(Target::Pool(pool), service_method, args)
    }
}

impl<'a, A: EncodeBody> Push<'a, A, A> {
    /// A push that owns its arguments, on a session or a pool.
    pub(crate) fn owned(target: Target<'a>, service_method: &'a str, args: A) -> Self {
        Self::to(target, service_method, args)
    }
}

impl<'a, A: EncodeBody + ?Sized, S: Borrow<A>> Push<'a, A, S> {
    fn to(target: Target<'a>, service_method: &'a str, args: S) -> Self {
        Push {
            target,
            service_method,
            args,
            options: Options::default(),
            _args: PhantomData,
        }
    }

    message_options!();

    /// How long the push may wait for room in the output queue or for a redialing connection
    /// before it fails (default: the peer's `push_timeout`, itself the call timeout by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(Some(timeout));
        self
    }
}

impl<'a, A: EncodeBody + ?Sized, S: Borrow<A>> IntoFuture for Push<'a, A, S> {
    type Output = Result<(), Status>;
    type IntoFuture = PushFuture<'a>;

    fn into_future(self) -> PushFuture<'a> {
        let settings = self.target.settings();
        let timeout = self.options.timeout.unwrap_or(settings.push_timeout);
        let msg = self
            .options
            .message(settings, MessageType::Push, self.service_method, self.args.borrow());
        match msg {
            Ok(msg) => PushFuture::new(self.target, msg, timeout),
            Err(status) => PushFuture::boxed(Box::pin(std::future::ready(Err(status)))),
        }
    }
}

/// The PUSH a broadcast sends to every session: encoded once, with the settings the sessions
/// share (those of their peer).
pub(crate) fn broadcast_message<A: EncodeBody + ?Sized>(
    settings: &Settings,
    service_method: &str,
    args: &A,
) -> Result<Message, Status> {
    Options::default().message(settings, MessageType::Push, service_method, args)
}

/// An awaited [`Push`]: `Ok` once the push is queued for writing on a live connection, or the
/// status that says why it was not.
///
/// The push is sent when the future is first polled. A push on a session with no plugin hooks
/// is queued inline, allocating nothing of its own; the others (through a pool, with hooks, or
/// waiting for room in a full output queue or for a redial) go on in a boxed future.
#[must_use = "a push does nothing until awaited"]
pub struct PushFuture<'a> {
    state: PushState<'a>,
}

enum PushState<'a> {
    Unsent {
        session: &'a Session,
        msg: Message,
        timeout: Option<Duration>,
    },
    Boxed(BoxFuture<'a, Result<(), Status>>),
    Done,
}

impl<'a> PushFuture<'a> {
    /// Sends `msg` (a PUSH, its seq to be set) to `target`.
    pub(crate) fn new(target: Target<'a>, msg: Message, timeout: Option<Duration>) -> Self {
        match target {
            Target::Session(session) if session.env().hooks.is_none() => PushFuture {
                state: PushState::Unsent { session, msg, timeout },
            },
            target => PushFuture::boxed(Box::pin(push(target.resolve(), msg, timeout))),
        }
    }

    fn boxed(future: BoxFuture<'a, Result<(), Status>>) -> Self {
        PushFuture {
            state: PushState::Boxed(future),
        }
    }

    /// Queues the push; what cannot be queued at once goes on in a boxed future that waits,
    /// within the deadline.
    fn send(session: &'a Session, mut msg: Message, timeout: Option<Duration>) -> Result<PushState<'a>, Status> {
        let settings = &session.env().settings;
        let started = settings.count_time.then(Instant::now);
        let deadline = super::deadline_after(timeout);
        msg.seq = session.next_seq();
        let mut waiting_frame = None;
        match session.try_send(&msg, false, &mut waiting_frame)? {
            super::Attempt::Sent(_) => {
                log::push_out(settings, session, &msg, started);
                Ok(PushState::Done)
            }
            attempt => Ok(PushState::Boxed(Box::pin(async move {
                session
                    .send_waiting(&msg, deadline, false, attempt, waiting_frame)
                    .await?;
                log::push_out(&session.env().settings, session, &msg, started);
                Ok(())
            }))),
        }
    }
}

impl Future for PushFuture<'_> {
    type Output = Result<(), Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, PushState::Done) {
                PushState::Unsent { session, msg, timeout } => match Self::send(session, msg, timeout) {
                    Ok(PushState::Done) => return Poll::Ready(Ok(())),
                    Ok(state) => this.state = state,
                    Err(status) => return Poll::Ready(Err(status)),
                },
                PushState::Boxed(mut future) => {
                    let polled = future.as_mut().poll(cx);
                    if polled.is_pending() {
                        this.state = PushState::Boxed(future);
                    }
                    return polled;
                }
                PushState::Done => panic!("a PushFuture polled after it completed"),
            }
        }
    }
}

/// A push with everything a push may need: a pool to hire from, hooks around the write.
async fn push(target: Resolve, mut msg: Message, timeout: Option<Duration>) -> Result<(), Status> {
    let session = target.session().await?;
    let env = session.env();
    let started = env.settings.count_time.then(Instant::now);
    let deadline = super::deadline_after(timeout);
    msg.seq = session.next_seq();
    if let Some(hooks) = &env.hooks {
        hooks.pre_write_push(&session, &mut msg)?;
    }
    let queued = session.send(&msg, deadline, false).await?;
    if let Some(hooks) = env.hooks.as_ref().filter(|h| h.observes_writes()) {
        // PostWritePush runs once the push is on the socket (within its deadline).
        let written = tokio::select! {
            written = queued.written() => written,
            () = super::outbox::until(deadline) => false,
        };
        if written {
            hooks.post_write_push(&session, &msg);
        }
    }
    log::push_out(&env.settings, &session, &msg, started);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call boxes its exchange future, allocated on one worker thread and often freed on
    /// another. glibc serves blocks up to 1032 bytes from a per-thread cache; a larger future
    /// takes the allocator's arena locks twice per call, and the workers contend for them
    /// (about 10 % more CPU per call at 1,000 concurrent calls on one session).
    #[test]
    #[cfg_attr(debug_assertions, ignore = "only optimized futures have their real size")]
    fn a_calls_future_fits_the_allocators_thread_cache() {
        fn size<F>(_: fn(Session, Message, Option<Duration>) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = size(call_future::<String>);
        assert!(size <= 1024, "an awaited call boxes a future of {size} bytes");
    }
}
