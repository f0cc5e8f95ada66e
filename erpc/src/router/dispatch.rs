//! The [`Dispatcher`]: what a session does with the CALLs and PUSHes it receives — header
//! hooks, route lookup, body hooks, the handler, the reply.
//!
//! Everything up to a handler runs on the session's reader task, and the handler's future is
//! first polled right there; only if it is not finished at once does the rest move to a task of
//! its own. Most handlers finish on their first poll, so they cost no task and no extra boxing,
//! and their reply is queued at once (the reader writes the replies of a whole batch together);
//! slow ones still run concurrently. A panicking handler is answered with `500 Internal Server
//! Error` and the session goes on.
//!
//! Observability: each message is counted on its route's metric handles, and — when a
//! subscriber enables the `erpc::call` / `erpc::push` targets at DEBUG — handled inside a
//! tracing span (service method, seq, session, remote address; the status code and duration
//! are recorded when it ends), so the handler's own logs carry them. Disabled, a span costs
//! one check of a cached interest.

use std::any::Any;
use std::borrow::Borrow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use rustc_hash::FxHashMap;
use tracing::{Instrument, Span};

use super::{CallCtx, PushCtx, Route, Routes};
use crate::codec::CodecId;
use crate::config::Settings;
use crate::message::{Message, MessageType};
use crate::meta::{self, Meta};
use crate::observe::{RouteMetrics, UNKNOWN_ROUTE};
use crate::plugin::Plugins;
use crate::session::log::{self, remote_warn};
use crate::session::{Dispatch, HandlerGuard, Queued, Session, is_conn_closed};
use crate::status::{Code, Status, panic_text};

/// Routes received messages to handlers: the frozen route table and the peer's plugins.
pub(crate) struct Dispatcher {
    routes: Arc<Routes>,
    plugins: Plugins,
    /// Counts messages that matched no route and no fallback.
    unmatched_calls: RouteMetrics,
    unmatched_pushes: RouteMetrics,
}

impl Dispatcher {
    /// Freezes `routes`, registering their metric handles with the recorder installed now.
    pub(crate) fn new(mut routes: Routes, plugins: Plugins) -> Dispatcher {
        for (name, route) in &mut routes.calls {
            route.metrics = RouteMetrics::register_call(name);
        }
        for (name, route) in &mut routes.pushes {
            route.metrics = RouteMetrics::register_push(name);
        }
        let unmatched_calls = RouteMetrics::register_call(UNKNOWN_ROUTE);
        let unmatched_pushes = RouteMetrics::register_push(UNKNOWN_ROUTE);
        if let Some(route) = &mut routes.unknown_call {
            route.metrics = unmatched_calls.clone();
        }
        if let Some(route) = &mut routes.unknown_push {
            route.metrics = unmatched_pushes.clone();
        }
        Dispatcher {
            routes: Arc::new(routes),
            plugins,
            unmatched_calls,
            unmatched_pushes,
        }
    }
}

/// The span a received message is handled in (disabled unless a subscriber wants it).
macro_rules! message_span {
    ($target:literal, $name:literal, $session:expr, $msg:expr) => {
        tracing::debug_span!(
            target: $target,
            $name,
            service_method = %$msg.service_method,
            seq = $msg.seq,
            session = %$session.id(),
            remote = %$session.remote_addr(),
            code = tracing::field::Empty,
            duration_us = tracing::field::Empty,
        )
    };
}

/// When a message's handling started, if its metrics or its span want its duration (the span
/// does in every build, metrics or not).
fn timing(metrics: &RouteMetrics, span: &Span) -> Option<Instant> {
    metrics.start().or_else(|| (!span.is_disabled()).then(Instant::now))
}

/// Records how a message's handling ended on its span and its route's metrics.
fn ended(span: &Span, metrics: &RouteMetrics, code: i32, timing: Option<Instant>) {
    if !span.is_disabled() {
        span.record("code", code);
        if let Some(timing) = timing {
            span.record("duration_us", timing.elapsed().as_micros() as u64);
        }
    }
    metrics.handled(code, timing);
}

impl Dispatch for Dispatcher {
    fn call(&self, session: &Session, mut msg: Message, guard: HandlerGuard) {
        let started = session.settings().count_time.then(Instant::now);
        let mut status = Ok(());
        if !self.plugins.is_empty() {
            status = self
                .plugins
                .run("post_read_call_header", |p| p.post_read_call_header(session, &mut msg));
        }
        let route = status.and_then(|()| lookup(&self.routes.calls, &self.routes.unknown_call, &msg));
        let plugins = route
            .as_ref()
            .map_or_else(|_| self.plugins.clone(), |r| r.plugins.clone());
        let route = route.and_then(|r| {
            if !r.plugins.is_empty() {
                r.plugins
                    .run("pre_read_call_body", |p| p.pre_read_call_body(session, &mut msg))?;
            }
            Ok(r)
        });
        let metrics = route.as_ref().map_or(&self.unmatched_calls, |r| &r.metrics);
        let span = message_span!("erpc::call", "call", session, msg);
        let timing = timing(metrics, &span);
        let handler = route.map(|r| r.handler.clone());
        let ctx = CallCtx::new(session.clone(), msg, plugins);
        let end = End {
            guard,
            started,
            span,
            metrics,
            timing,
        };
        let mut handling = match handler {
            Err(status) => return finish_call(ctx, Err(status), end, true),
            Ok(handler) => handler.handle(ctx.clone(), ctx.message().body.clone()),
        };
        if !end.span.is_disabled() {
            handling = Box::pin(handling.instrument(end.span.clone()));
        }
        let mut cx = Context::from_waker(Waker::noop());
        let first_poll =
            session.handling_sync(|| std::panic::catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(&mut cx))));
        match first_poll {
            // The reader writes the replies of its batch.
            Ok(Poll::Ready(result)) => finish_call(ctx, result, end, true),
            Ok(Poll::Pending) => {
                // Only a handler that waits can outlive its limits: the fast path reads no
                // clock and parses no deadline.
                let limit = Limit::of(session.settings(), ctx.meta());
                let end = end.owned();
                let orphaned = session.settings().cancel_handlers.then(|| session.connection_lost());
                tokio::spawn(session.handling(async move {
                    let result = run_to_end(handling, limit, orphaned, &ctx).await;
                    finish_call(ctx, result, end, false);
                }));
            }
            Err(panic) => {
                let status = panicked(&ctx, &*panic);
                finish_call(ctx, Err(status), end, true);
            }
        }
    }

    fn push(&self, session: &Session, mut msg: Message, guard: HandlerGuard) {
        let started = session.settings().count_time.then(Instant::now);
        let mut status = Ok(());
        if !self.plugins.is_empty() {
            status = self
                .plugins
                .run("post_read_push_header", |p| p.post_read_push_header(session, &mut msg));
        }
        let route = status.and_then(|()| lookup(&self.routes.pushes, &self.routes.unknown_push, &msg));
        let route = route.and_then(|r| {
            if !r.plugins.is_empty() {
                r.plugins
                    .run("pre_read_push_body", |p| p.pre_read_push_body(session, &mut msg))?;
            }
            Ok(r)
        });
        let plugins = route
            .as_ref()
            .map_or_else(|_| self.plugins.clone(), |r| r.plugins.clone());
        let metrics = route.as_ref().map_or(&self.unmatched_pushes, |r| &r.metrics).clone();
        let span = message_span!("erpc::push", "push", session, msg);
        let timing = timing(&metrics, &span);
        let handler = route.map(|r| r.handler.clone());
        let ctx = PushCtx::new(session.clone(), msg, plugins);
        let context_age = session.settings().context_age;
        let in_span = span.clone();
        let running = async move {
            let result = match handler {
                Err(status) => Err(status),
                Ok(handler) => {
                    let handling =
                        AssertUnwindSafe(handler.handle(ctx.clone(), ctx.message().body.clone())).catch_unwind();
                    let outcome = match context_age {
                        Some(age) => tokio::time::timeout(age, handling)
                            .await
                            .unwrap_or_else(|_| Ok(Err(Status::timeout("the push handler ran past the context age")))),
                        None => handling.await,
                    };
                    outcome.unwrap_or_else(|panic| Err(Status::internal(panic_text(&*panic))))
                }
            };
            let session = ctx.session();
            ended(
                &span,
                &metrics,
                result.as_ref().err().map_or(0, |s| s.code().get()),
                timing,
            );
            if let Err(status) = &result {
                remote_warn!(session.env(), session = %session.id(), service_method = ctx.service_method(), %status, "push not handled");
            }
            log::push_in(
                session.settings(),
                session,
                ctx.message(),
                result.err().as_ref(),
                started,
            );
            drop(guard);
        };
        if in_span.is_disabled() {
            run_here_first(session, running);
        } else {
            run_here_first(session, running.instrument(in_span));
        }
    }
}

/// The route of `msg`: its own, else the fallback for unknown routes, else `404`.
fn lookup<'r, H: ?Sized>(
    routes: &'r FxHashMap<String, Route<H>>,
    unknown: &'r Option<Route<H>>,
    msg: &Message,
) -> Result<&'r Route<H>, Status> {
    if msg.service_method.is_empty() {
        return Err(Status::bad_message("invalid service method for message"));
    }
    routes
        .get(&msg.service_method)
        .or(unknown.as_ref())
        .ok_or_else(Status::not_found)
}

/// How long a call's handler may run: the nearer of the peer's context age and the deadline
/// the caller sent (when handlers are cancelled for callers that gave up).
struct Limit {
    at: tokio::time::Instant,
    by: LimitBy,
}

enum LimitBy {
    ContextAge(Duration),
    Caller,
}

impl Limit {
    fn of(settings: &Settings, meta: &Meta) -> Option<Limit> {
        let caller = settings
            .cancel_handlers
            .then(|| meta.get_str(meta::TIMEOUT)?.parse::<u64>().ok())
            .flatten()
            .map(Duration::from_millis);
        let (after, by) = match (settings.context_age, caller) {
            (Some(age), Some(caller)) if caller < age => (caller, LimitBy::Caller),
            (Some(age), _) => (age, LimitBy::ContextAge(age)),
            (None, Some(caller)) => (caller, LimitBy::Caller),
            (None, None) => return None,
        };
        let at = tokio::time::Instant::now().checked_add(after)?;
        Some(Limit { at, by })
    }

    fn status(&self) -> Status {
        match self.by {
            LimitBy::ContextAge(age) => {
                Status::timeout(format!("the handler did not finish within the context age of {age:?}"))
            }
            LimitBy::Caller => Status::timeout("the caller's deadline passed before the handler finished"),
        }
    }
}

/// Runs a handler that did not finish on its first poll to its end: its result, a panic
/// answered `500`, its time limit answered `408`, or `499` when its caller's connection is
/// gone (`orphaned`).
async fn run_to_end(
    handling: BoxFuture<'static, Result<(CodecId, Bytes), Status>>,
    limit: Option<Limit>,
    orphaned: Option<impl Future<Output = ()>>,
    ctx: &CallCtx,
) -> Result<(CodecId, Bytes), Status> {
    let expired = async move {
        match limit {
            Some(limit) => {
                tokio::time::sleep_until(limit.at).await;
                limit.status()
            }
            None => std::future::pending().await,
        }
    };
    let orphaned = async move {
        match orphaned {
            Some(lost) => lost.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        result = AssertUnwindSafe(handling).catch_unwind() => result.unwrap_or_else(|panic| Err(panicked(ctx, &*panic))),
        status = expired => Err(status),
        () = orphaned => Err(Status::from_code(Code::CANCELED, "the caller's connection is gone; the handler was stopped")),
    }
}

/// Polls `fut` once here (as a handler of `session`); spawns it only if it is not done.
fn run_here_first(session: &Session, fut: impl Future<Output = ()> + Send + 'static) {
    let mut fut = Box::pin(session.handling(fut));
    let mut cx = Context::from_waker(Waker::noop());
    if fut.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(fut);
    }
}

fn panicked(ctx: &CallCtx, panic: &(dyn Any + Send)) -> Status {
    let text = panic_text(panic);
    // A handler that panics on some input panics whenever a client sends it: limited like a
    // warning caused by remote input.
    if ctx.session().env().remote_warnings.allow() {
        tracing::error!(session = %ctx.session().id(), service_method = ctx.service_method(), panic = %text, "handler panicked");
    }
    Status::internal(text)
}

/// Builds the REPLY and queues it (on the reader task, `on_reader`, the reader writes the
/// whole batch of replies afterwards; elsewhere the writer task is woken).
/// What finishing a call needs besides its context and result: the handler guard, the clocks,
/// the span and the route's metrics (borrowed from the route table on the reader, owned by a
/// spawned handler).
struct End<M> {
    guard: HandlerGuard,
    started: Option<Instant>,
    span: Span,
    metrics: M,
    timing: Option<Instant>,
}

impl End<&RouteMetrics> {
    fn owned(self) -> End<RouteMetrics> {
        End {
            guard: self.guard,
            started: self.started,
            span: self.span,
            metrics: self.metrics.clone(),
            timing: self.timing,
        }
    }
}

fn finish_call<M: Borrow<RouteMetrics>>(
    ctx: CallCtx,
    result: Result<(CodecId, Bytes), Status>,
    end: End<M>,
    on_reader: bool,
) {
    let End {
        guard,
        started,
        span,
        metrics,
        timing,
    } = end;
    let session = ctx.session();
    let request = ctx.message();
    let mut reply = Message::new(MessageType::Reply, request.seq);
    reply.xfer_pipe = request.xfer_pipe.clone();
    let parts = ctx.take_reply_parts();
    reply.meta = parts.meta;
    for id in parts.xfer {
        if let Err(e) = reply.xfer_pipe.push(id) {
            tracing::warn!(error = %e, "reply xfer filter dropped");
        }
    }
    match result {
        Ok((codec, body)) => {
            reply.body_codec = codec;
            reply.body = body;
        }
        Err(status) => reply.status = status,
    }
    let plugins = ctx.plugins();
    if !plugins.is_empty() {
        plugins.run_logged("pre_write_reply", |p| p.pre_write_reply(session, &mut reply));
    }
    let mut queued = session.queue_reply(&reply, on_reader);
    if let Err(status) = &queued
        && !is_conn_closed(status)
    {
        // The reply cannot be framed (too large, say): the caller still gets an answer.
        remote_warn!(session.env(), session = %session.id(), %status, "reply could not be written; answering 500");
        let mut fallback = Message::new(MessageType::Reply, reply.seq);
        fallback.xfer_pipe = reply.xfer_pipe.clone();
        fallback.status = Status::internal(status.cause().unwrap_or(status.msg()).to_string());
        queued = session.queue_reply(&fallback, on_reader);
        reply = fallback;
    }
    ended(&span, metrics.borrow(), reply.status.code().get(), timing);
    log::call_in(session.settings(), session, ctx.message(), &reply, started);
    match queued {
        Ok(queued) if plugins.observes_writes() => {
            // PostWriteReply runs once the reply is on the socket; the handler counts as
            // running until then, so a graceful close waits for it.
            tokio::spawn(post_write_reply(ctx, reply, queued, guard));
        }
        Ok(_) => drop(guard),
        Err(status) => {
            tracing::debug!(session = %session.id(), %status, "reply not sent: the connection is gone");
            drop(guard);
        }
    }
}

async fn post_write_reply(ctx: CallCtx, reply: Message, queued: Queued, guard: HandlerGuard) {
    if queued.written().await {
        let session = ctx.session();
        ctx.plugins()
            .run_logged("post_write_reply", |p| p.post_write_reply(session, &reply));
    }
    drop(guard);
}
