//! The [`Dispatcher`]: what a session does with the CALLs and PUSHes it receives — header
//! hooks, route lookup, body hooks, the handler, the reply.
//!
//! Everything up to a handler runs on the session's reader task, and the handler's future is
//! first polled right there; only if it is not finished at once does the rest move to a task of
//! its own. Most handlers finish on their first poll, so they cost no task and no extra boxing,
//! and their reply is queued at once (the reader writes the replies of a whole batch together);
//! slow ones still run concurrently. A panicking handler is answered with `500 Internal Server
//! Error` and the session goes on.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;

use rustc_hash::FxHashMap;

use super::{CallCtx, PushCtx, Route, Routes};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::plugin::Plugins;
use crate::session::log::{self, remote_warn};
use crate::session::{Dispatch, HandlerGuard, Queued, Session, is_conn_closed};
use crate::status::{Status, panic_text};

/// Routes received messages to handlers: the frozen route table and the peer's plugins.
pub(crate) struct Dispatcher {
    routes: Arc<Routes>,
    plugins: Plugins,
}

impl Dispatcher {
    pub(crate) fn new(routes: Routes, plugins: Plugins) -> Dispatcher {
        Dispatcher {
            routes: Arc::new(routes),
            plugins,
        }
    }
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
        let handler = route.map(|r| r.handler.clone());
        let ctx = CallCtx::new(session.clone(), msg, plugins);
        let mut handling = match handler {
            Err(status) => return finish_call(ctx, Err(status), guard, started, true),
            Ok(handler) => handler.handle(ctx.clone(), ctx.message().body.clone()),
        };
        let Some(age) = session.settings().context_age else {
            let mut cx = Context::from_waker(Waker::noop());
            let first_poll = session
                .handling_sync(|| std::panic::catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(&mut cx))));
            match first_poll {
                // The reader writes the replies of its batch.
                Ok(Poll::Ready(result)) => finish_call(ctx, result, guard, started, true),
                Ok(Poll::Pending) => {
                    tokio::spawn(session.handling(async move {
                        let result = AssertUnwindSafe(handling).catch_unwind().await;
                        let result = result.unwrap_or_else(|panic| Err(panicked(&ctx, &*panic)));
                        finish_call(ctx, result, guard, started, false);
                    }));
                }
                Err(panic) => {
                    let status = panicked(&ctx, &*panic);
                    finish_call(ctx, Err(status), guard, started, true);
                }
            }
            return;
        };
        let running = async move {
            let result = match tokio::time::timeout(age, AssertUnwindSafe(handling).catch_unwind()).await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(panicked(&ctx, &*panic)),
                Err(_) => Err(Status::timeout(format!(
                    "the handler did not finish within the context age of {age:?}"
                ))),
            };
            finish_call(ctx, result, guard, started, false);
        };
        tokio::spawn(session.handling(running));
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
        let handler = route.map(|r| r.handler.clone());
        let ctx = PushCtx::new(session.clone(), msg, plugins);
        let context_age = session.settings().context_age;
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
        run_here_first(session, running);
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
fn finish_call(
    ctx: CallCtx,
    result: Result<(CodecId, Bytes), Status>,
    guard: HandlerGuard,
    started: Option<Instant>,
    on_reader: bool,
) {
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
