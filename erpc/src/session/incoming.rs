//! Handling received messages: replies complete pending calls, calls and pushes run their
//! handlers.
//!
//! Everything up to a handler runs on the reader task, and the handler's future is first
//! polled right there; only if it is not finished at once does the rest move to a task of its
//! own. Most handlers finish on their first poll, so they cost no task and no extra boxing,
//! and their reply is framed at once; slow ones still run concurrently. A panicking handler is
//! answered with `500 Internal Server Error` and the session goes on.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;

use super::{HandlerGuard, Link, Session, is_conn_closed};
use crate::codec::CodecId;
use crate::log;
use crate::message::{Message, MessageType};
use crate::router::{CallCtx, PushCtx};
use crate::status::{Status, code};

/// Routes one received message. An error closes the session.
pub(crate) fn dispatch(session: &Session, msg: Message) -> Result<(), Status> {
    match msg.mtype {
        MessageType::Reply => {
            complete_reply(session, msg);
            Ok(())
        }
        MessageType::Call | MessageType::Push => {
            if msg.body_codec == CodecId::NONE && !msg.body.is_empty() {
                // Go closes the connection without an answer here; so do we, for compatibility.
                return Err(Status::bad_message("a message with a body but no codec (codec 0)"));
            }
            if session.is_closed() {
                // Closing converges: running handlers finish, new work is turned away.
                if msg.mtype == MessageType::Call {
                    let (session, seq, xfer_pipe) = (session.clone(), msg.seq, msg.xfer_pipe);
                    run(async move {
                        let mut reply = Message::new(MessageType::Reply, seq);
                        reply.xfer_pipe = xfer_pipe;
                        reply.status = Status::conn_closed("the session is closing");
                        let _ = session.send(&reply, None).await;
                    });
                }
                return Ok(());
            }
            let guard = session.handler_started();
            if msg.mtype == MessageType::Call {
                handle_call(session, msg, guard);
            } else {
                run(handle_push(session.clone(), msg, guard));
            }
            Ok(())
        }
        MessageType::AuthCall | MessageType::AuthReply => Err(Status::with_cause(
            code::MTYPE_NOT_ALLOWED,
            "Message Type Not Allowed",
            format!("{} is only allowed during the connection handshake", msg.mtype),
        )),
    }
}

/// Polls `fut` once here; spawns it only if it is not done.
fn run(fut: impl Future<Output = ()> + Send + 'static) {
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    if fut.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(fut);
    }
}

fn complete_reply(session: &Session, mut msg: Message) {
    let pending = session.pending();
    let plugins = &session.shared().plugins;
    if plugins.is_empty() {
        let seq = msg.seq;
        if !pending.complete(seq, Ok(msg)) {
            tracing::debug!(session = %session.id(), seq, "reply to no waiting call; dropped");
        }
        return;
    }
    if !pending.contains(msg.seq) {
        tracing::debug!(session = %session.id(), seq = msg.seq, "reply to no waiting call; dropped");
        return;
    }
    let hooks = plugins
        .run(|p| p.post_read_reply_header(session, &mut msg))
        .and_then(|()| plugins.run(|p| p.pre_read_reply_body(session, &mut msg)));
    let seq = msg.seq;
    pending.complete(seq, hooks.map(|()| msg));
}

/// Handles a CALL: everything up to the handler runs here on the reader task; the handler is
/// polled once here, and only if it is not done does the rest move to a task of its own.
fn handle_call(session: &Session, mut msg: Message, guard: HandlerGuard) {
    let shared = session.shared();
    let started = shared.settings.count_time.then(Instant::now);
    let mut status = Ok(());
    if !shared.plugins.is_empty() {
        status = shared.plugins.run(|p| p.post_read_call_header(session, &mut msg));
    }
    let route = status.and_then(|()| {
        if msg.service_method.is_empty() {
            return Err(Status::bad_message("invalid service method for message"));
        }
        let routes = &shared.routes;
        routes
            .calls
            .get(&msg.service_method)
            .or(routes.unknown_call.as_ref())
            .ok_or_else(Status::not_found)
    });
    let plugins = route
        .as_ref()
        .map_or_else(|_| shared.plugins.clone(), |r| r.plugins.clone());
    let route = route.and_then(|r| {
        if !r.plugins.is_empty() {
            r.plugins.run(|p| p.pre_read_call_body(session, &mut msg))?;
        }
        Ok(r)
    });
    let handler = route.map(|r| r.handler.clone());
    let ctx = CallCtx::new(session.clone(), msg, plugins);
    let mut handling = match handler {
        Err(status) => return drop(finish_call(ctx, Err(status), guard, started)),
        Ok(handler) => handler.handle(ctx.clone(), ctx.message().body.clone()),
    };
    let Some(age) = shared.settings.context_age else {
        let mut cx = Context::from_waker(Waker::noop());
        match std::panic::catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(&mut cx))) {
            // The reader flushes the replies of its batch.
            Ok(Poll::Ready(result)) => drop(finish_call(ctx, result, guard, started)),
            Ok(Poll::Pending) => {
                tokio::spawn(async move {
                    let result = AssertUnwindSafe(handling).catch_unwind().await;
                    let result = result.unwrap_or_else(|panic| Err(panicked(&ctx, &*panic)));
                    if let Some(link) = finish_call(ctx, result, guard, started) {
                        link.wake_flusher();
                    }
                });
            }
            Err(panic) => {
                let status = panicked(&ctx, &*panic);
                drop(finish_call(ctx, Err(status), guard, started));
            }
        }
        return;
    };
    tokio::spawn(async move {
        let result = match tokio::time::timeout(age, AssertUnwindSafe(handling).catch_unwind()).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(panicked(&ctx, &*panic)),
            Err(_) => Err(Status::timeout(format!(
                "the handler did not finish within the context age of {age:?}"
            ))),
        };
        if let Some(link) = finish_call(ctx, result, guard, started) {
            link.wake_flusher();
        }
    });
}

fn panicked(ctx: &CallCtx, panic: &(dyn Any + Send)) -> Status {
    let text = panic_text(panic);
    tracing::error!(session = %ctx.session().id(), service_method = ctx.service_method(), panic = %text, "handler panicked");
    Status::internal(text)
}

/// Builds the REPLY and queues it on the link, which it returns for flushing (on the reader
/// task the reader flushes the whole batch); when the link cannot take it now, a task sends it.
fn finish_call(
    ctx: CallCtx,
    result: Result<(CodecId, Bytes), Status>,
    guard: HandlerGuard,
    started: Option<Instant>,
) -> Option<Arc<Link>> {
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
    let queued = match session.send_now(&reply) {
        Some(queued) => queued,
        None => {
            tokio::spawn(async move {
                let sent = ctx.session().send(&reply, None).await;
                replied(&ctx, reply, sent, started);
                drop(guard);
            });
            return None;
        }
    };
    let link = queued.as_ref().ok().cloned();
    replied(&ctx, reply, queued.map(drop), started);
    drop(guard);
    link
}

/// After the reply was written (or not): hooks, the fallback 500, the log line.
fn replied(ctx: &CallCtx, mut reply: Message, sent: Result<(), Status>, started: Option<Instant>) {
    let session = ctx.session();
    match sent {
        Ok(()) => {
            let plugins = ctx.plugins();
            if !plugins.is_empty() {
                plugins.run_logged("post_write_reply", |p| p.post_write_reply(session, &reply));
            }
        }
        Err(status) if is_conn_closed(&status) => {
            tracing::debug!(session = %session.id(), "reply not sent: the connection is gone");
        }
        Err(status) => {
            // The reply cannot be framed (too large, say): the caller still gets an answer.
            tracing::warn!(session = %session.id(), %status, "reply could not be written; answering 500");
            let mut fallback = Message::new(MessageType::Reply, reply.seq);
            fallback.xfer_pipe = reply.xfer_pipe.clone();
            fallback.status = Status::internal(status.cause().unwrap_or(status.msg()).to_string());
            if let Some(Err(status)) = session.send_now(&fallback) {
                tracing::debug!(session = %session.id(), %status, "fallback reply not sent either");
            }
            reply = fallback;
        }
    }
    log::call_in(&session.shared().settings, session, ctx.message(), &reply, started);
}

async fn handle_push(session: Session, mut msg: Message, _guard: HandlerGuard) {
    let shared = session.shared().clone();
    let started = shared.settings.count_time.then(Instant::now);
    let mut status = Ok(());
    if !shared.plugins.is_empty() {
        status = shared.plugins.run(|p| p.post_read_push_header(&session, &mut msg));
    }
    let route = status.and_then(|()| {
        if msg.service_method.is_empty() {
            return Err(Status::bad_message("invalid service method for message"));
        }
        let routes = &shared.routes;
        routes
            .pushes
            .get(&msg.service_method)
            .or(routes.unknown_push.as_ref())
            .ok_or_else(Status::not_found)
    });
    let route = route.and_then(|r| {
        if !r.plugins.is_empty() {
            r.plugins.run(|p| p.pre_read_push_body(&session, &mut msg))?;
        }
        Ok(r)
    });
    let plugins = route
        .as_ref()
        .map_or_else(|_| shared.plugins.clone(), |r| r.plugins.clone());
    let ctx = PushCtx::new(session.clone(), msg, plugins);
    let result = match route {
        Err(status) => Err(status),
        Ok(route) => {
            let handling =
                AssertUnwindSafe(route.handler.handle(ctx.clone(), ctx.message().body.clone())).catch_unwind();
            let outcome = match shared.settings.context_age {
                Some(age) => tokio::time::timeout(age, handling)
                    .await
                    .unwrap_or_else(|_| Ok(Err(Status::timeout("the push handler ran past the context age")))),
                None => handling.await,
            };
            outcome.unwrap_or_else(|panic| Err(Status::internal(panic_text(&*panic))))
        }
    };
    if let Err(status) = &result {
        tracing::warn!(session = %session.id(), service_method = ctx.service_method(), %status, "push not handled");
    }
    log::push_in(
        &shared.settings,
        &session,
        ctx.message(),
        result.err().as_ref(),
        started,
    );
}

/// The text of a panic payload (`panic!("boom")` → `boom`).
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(status) = payload.downcast_ref::<Status>() {
        status.to_string()
    } else {
        "handler panicked".to_string()
    }
}
