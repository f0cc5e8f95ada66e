//! [`ServiceCall`] and [`ServicePush`]: a session's call and push builders, sent to one live
//! instance of a service, with the retry rule.
//!
//! **Retry rule**: a call or push that fails for a connection reason — `100` (no session could
//! be had), `102` (connection closed), `104` (write failed), `105` (dial failed) — drops its
//! instance from the live set at once. It is then sent again to another instance only if the
//! caller marked it [`idempotent`](ServiceCall::idempotent), at most `max_retries` times, and
//! within the call's one deadline. Any other status is the instance's answer and is returned.

use std::future::IntoFuture;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use erpc::Code;
use erpc::codec::{DecodeBody, EncodeBody};
use erpc::session::Reply;
use erpc::{CodecId, Raw, Status};
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::client::ServiceClient;
use crate::ring::hash_key;

/// Whether `status` says the connection to an instance failed (the call may not have reached
/// it), rather than the instance answering.
pub fn is_connection_failure(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::WRONG_CONN | Code::CONN_CLOSED | Code::WRITE_FAILED | Code::DIAL_FAILED
    )
}

/// What calls and pushes share.
struct Options {
    meta: Vec<(Bytes, Bytes)>,
    codec: Option<CodecId>,
    xfer: Vec<u8>,
    timeout: Option<Option<Duration>>,
    idempotent: bool,
    key: Option<u64>,
}

macro_rules! options {
    () => {
        /// Appends a meta pair.
        pub fn meta(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
            self.options.meta.push((key.into(), value.into()));
            self
        }

        /// Sets the body codec (default: the peer's default codec).
        pub fn codec(mut self, codec: CodecId) -> Self {
            self.options.codec = Some(codec);
            self
        }

        /// Appends a transfer filter by id (`b'g'` for gzip).
        pub fn xfer(mut self, filter_id: u8) -> Self {
            self.options.xfer.push(filter_id);
            self
        }

        /// Allows sending it again to another instance after a connection failure: only for
        /// what is safe to do twice (a read, a put of the same value…).
        pub fn idempotent(mut self) -> Self {
            self.options.idempotent = true;
            self
        }

        /// The key that picks the instance under [`Balance::Hash`](crate::Balance::Hash):
        /// the same key goes to the same instance while it lives.
        pub fn hash_key(mut self, key: impl AsRef<[u8]>) -> Self {
            self.options.key = Some(hash_key(key.as_ref()));
            self
        }
    };
}

impl Options {
    fn new() -> Options {
        Options {
            meta: Vec::new(),
            codec: None,
            xfer: Vec::new(),
            timeout: None,
            idempotent: false,
            key: None,
        }
    }

    /// The body encoded once, for every attempt; the codec; the deadline.
    fn prepare<A: EncodeBody + ?Sized>(
        &self,
        client: &ServiceClient,
        args: &A,
        default_timeout: Option<Duration>,
    ) -> Result<(Raw, CodecId, Option<Instant>), Status> {
        let codec = self.codec.unwrap_or(client.inner.default_codec);
        let body = args
            .encode_body(codec)
            .map_err(|e| Status::from_code(Code::WRITE_FAILED, format!("cannot encode the arguments: {e}")))?;
        let timeout = self.timeout.unwrap_or(default_timeout);
        Ok((Raw(body), codec, timeout.map(|t| Instant::now() + t)))
    }

    fn attempts(&self, client: &ServiceClient) -> usize {
        if self.idempotent {
            client.inner.config.max_retries + 1
        } else {
            1
        }
    }
}

/// Time left before `deadline`, or the status of a call that ran out of it between attempts.
fn left(deadline: Option<Instant>, service_method: &str) -> Result<Option<Duration>, Status> {
    match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
        Some(left) if left.is_zero() => Err(Status::timeout(format!(
            "no instance answered {service_method:?} before the call's deadline"
        ))),
        left => Ok(left),
    }
}

/// A CALL to one live instance of a service; await it for the reply body, or use
/// [`reply`](Self::reply) for the meta too.
#[must_use = "a call does nothing until awaited"]
pub struct ServiceCall<'a, A: ?Sized, R> {
    client: &'a ServiceClient,
    service_method: &'a str,
    args: &'a A,
    options: Options,
    accept: Option<CodecId>,
    _reply: PhantomData<fn() -> R>,
}

impl<'a, A: EncodeBody + ?Sized, R> ServiceCall<'a, A, R> {
    pub(crate) fn new(client: &'a ServiceClient, service_method: &'a str, args: &'a A) -> Self {
        ServiceCall {
            client,
            service_method,
            args,
            options: Options::new(),
            accept: None,
            _reply: PhantomData,
        }
    }

    options!();

    /// Asks the instance to answer with this codec.
    pub fn accept(mut self, codec: CodecId) -> Self {
        self.accept = Some(codec);
        self
    }

    /// Gives up with `408` after `timeout`, retries included (default: the peer's
    /// `call_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(Some(timeout));
        self
    }
}

impl<A: EncodeBody + ?Sized, R: DecodeBody> ServiceCall<'_, A, R> {
    /// Sends the call and waits for the reply, with its meta and codec.
    pub async fn reply(self) -> Result<Reply<R>, Status> {
        let (body, codec, deadline) = self
            .options
            .prepare(self.client, self.args, self.client.inner.call_timeout)?;
        let call = Prepared {
            service_method: self.service_method,
            options: &self.options,
            accept: self.accept,
            body,
            codec,
            deadline,
        };
        call.send(self.client).await
    }

    /// Sends the call in the background and returns a handle to await the reply later. The
    /// arguments are encoded now.
    pub fn start(self) -> ServicePending<R>
    where
        R: Send + 'static,
    {
        let prepared = self
            .options
            .prepare(self.client, self.args, self.client.inner.call_timeout);
        let client = self.client.clone();
        let service_method = self.service_method.to_string();
        let (options, accept) = (self.options, self.accept);
        let task = tokio::spawn(async move {
            let (body, codec, deadline) = prepared?;
            let call = Prepared {
                service_method: &service_method,
                options: &options,
                accept,
                body,
                codec,
                deadline,
            };
            call.send(&client).await
        });
        ServicePending { task }
    }
}

/// A call with its body encoded, ready for its attempts.
struct Prepared<'a> {
    service_method: &'a str,
    options: &'a Options,
    accept: Option<CodecId>,
    body: Raw,
    codec: CodecId,
    deadline: Option<Instant>,
}

impl Prepared<'_> {
    /// Sends to one instance after another until one answers, the retry rule says stop, or
    /// the deadline passes.
    async fn send<R: DecodeBody>(&self, client: &ServiceClient) -> Result<Reply<R>, Status> {
        let mut tried = Vec::new();
        loop {
            let left = left(self.deadline, self.service_method)?;
            let member = client.inner.pick(self.options.key, &tried)?;
            let mut call = member
                .0
                .pool
                .call::<Raw, R>(self.service_method, &self.body)
                .codec(self.codec);
            for (k, v) in &self.options.meta {
                call = call.meta(k.clone(), v.clone());
            }
            for &id in &self.options.xfer {
                call = call.xfer(id);
            }
            if let Some(accept) = self.accept {
                call = call.accept(accept);
            }
            call = match left {
                Some(left) => call.timeout(left),
                None => call.no_timeout(),
            };
            match call.reply().await {
                Err(status) if is_connection_failure(&status) => {
                    client.inner.failed(&member.0, &status);
                    tried.push(member.0.id.clone());
                    if tried.len() >= self.options.attempts(client) {
                        return Err(status);
                    }
                    tracing::debug!(instance = %member.0.id, %status, "retrying an idempotent call elsewhere");
                }
                answered => {
                    member
                        .0
                        .counters
                        .calls
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return answered;
                }
            }
        }
    }
}

/// A call sent with [`ServiceCall::start`]; await it for the reply.
pub struct ServicePending<R> {
    task: tokio::task::JoinHandle<Result<Reply<R>, Status>>,
}

impl<R> ServicePending<R> {
    /// Whether the reply (or the error) is in.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops waiting: the call ends with `499 Canceled` (a reply that comes later is dropped).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl<R> std::future::Future for ServicePending<R> {
    type Output = Result<Reply<R>, Status>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task).poll(cx).map(|joined| {
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

impl<'a, A: EncodeBody + ?Sized + Sync, R: DecodeBody + Send + 'a> IntoFuture for ServiceCall<'a, A, R> {
    type Output = Result<R, Status>;
    type IntoFuture = BoxFuture<'a, Result<R, Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.reply().await.map(|reply| reply.body) })
    }
}

/// A PUSH to one live instance of a service; await it to send. `Ok` means it was queued for
/// writing on a live connection.
#[must_use = "a push does nothing until awaited"]
pub struct ServicePush<'a, A: ?Sized> {
    client: &'a ServiceClient,
    service_method: &'a str,
    args: &'a A,
    options: Options,
}

impl<'a, A: EncodeBody + ?Sized> ServicePush<'a, A> {
    pub(crate) fn new(client: &'a ServiceClient, service_method: &'a str, args: &'a A) -> Self {
        ServicePush {
            client,
            service_method,
            args,
            options: Options::new(),
        }
    }

    options!();

    /// How long the push may wait for room or a connection, retries included (default: the
    /// peer's `push_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(Some(timeout));
        self
    }

    async fn send(self) -> Result<(), Status> {
        let client = self.client;
        let (body, codec, deadline) = self.options.prepare(client, self.args, client.inner.push_timeout)?;
        let mut tried = Vec::new();
        loop {
            let left = left(deadline, self.service_method)?;
            let member = client.inner.pick(self.options.key, &tried)?;
            let mut push = member.0.pool.push(self.service_method, &body).codec(codec);
            for (k, v) in &self.options.meta {
                push = push.meta(k.clone(), v.clone());
            }
            for &id in &self.options.xfer {
                push = push.xfer(id);
            }
            if let Some(left) = left {
                push = push.timeout(left);
            }
            match push.await {
                Err(status) if is_connection_failure(&status) => {
                    client.inner.failed(&member.0, &status);
                    tried.push(member.0.id.clone());
                    if tried.len() >= self.options.attempts(client) {
                        return Err(status);
                    }
                }
                sent => {
                    member
                        .0
                        .counters
                        .calls
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return sent;
                }
            }
        }
    }
}

impl<'a, A: EncodeBody + ?Sized + Sync> IntoFuture for ServicePush<'a, A> {
    type Output = Result<(), Status>;
    type IntoFuture = BoxFuture<'a, Result<(), Status>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
