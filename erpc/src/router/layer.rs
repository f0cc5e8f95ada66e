//! Tower middleware around handlers: [`Router::layer`](super::Router::layer) and
//! [`Group::layer`](super::Group::layer).
//!
//! A layer wraps a route's whole handling — decoding the body, the body hooks, the handler,
//! encoding the reply — as a tower [`Service`] from a [`Request`] to a [`Response`], so tower's
//! timeout, concurrency limit, load shed and rate limit (and any user layer) work unchanged.
//! Routes without a layer keep their direct path: layering costs nothing where it is not used.
//!
//! Each message calls a clone of the layered service (tower services take `&mut self`;
//! messages run concurrently). Layers whose state must be shared across messages either keep
//! it behind an `Arc` (concurrency limit, load shed) or need a `tower::buffer::BufferLayer`
//! on top of them (rate limit).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::ctx::{CallCtx, PushCtx};
use super::handler::{ErasedCall, ErasedPush};
use crate::codec::CodecId;
use crate::meta::Meta;
use crate::session::Session;
use crate::status::{Code, Status};

/// The context of the message a layered handler receives.
#[derive(Clone)]
pub enum HandlerCtx {
    /// A CALL: the handler's reply goes back.
    Call(CallCtx),
    /// A PUSH: nothing goes back.
    Push(PushCtx),
}

/// One received CALL or PUSH, as layers see it: its context and its undecoded body.
pub struct Request {
    ctx: HandlerCtx,
    body: Bytes,
}

impl Request {
    /// The message's context.
    pub fn ctx(&self) -> &HandlerCtx {
        &self.ctx
    }

    /// Whether it is a PUSH.
    pub fn is_push(&self) -> bool {
        matches!(self.ctx, HandlerCtx::Push(_))
    }

    /// The service method (route) as received.
    pub fn service_method(&self) -> &str {
        match &self.ctx {
            HandlerCtx::Call(ctx) => ctx.service_method(),
            HandlerCtx::Push(ctx) => ctx.service_method(),
        }
    }

    /// The received meta.
    pub fn meta(&self) -> &Meta {
        match &self.ctx {
            HandlerCtx::Call(ctx) => ctx.meta(),
            HandlerCtx::Push(ctx) => ctx.meta(),
        }
    }

    /// The session the message came on.
    pub fn session(&self) -> &Session {
        match &self.ctx {
            HandlerCtx::Call(ctx) => ctx.session(),
            HandlerCtx::Push(ctx) => ctx.session(),
        }
    }

    /// The body, still encoded (`ctx`'s body codec says how).
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// What a layered handler produced: the encoded reply of a CALL (empty for a PUSH).
pub struct Response {
    /// The reply body's codec.
    pub codec: CodecId,
    /// The encoded reply body.
    pub body: Bytes,
}

/// A route's handling as a tower service: what a layer wraps.
pub type HandlerService = BoxCloneSyncService<Request, Response, Status>;

/// A tower layer that can wrap routes: any [`Layer`] over [`HandlerService`] whose service
/// answers a [`Request`] with a [`Response`] (errors become statuses). Implemented for every
/// such layer; you never implement it yourself.
pub trait RouteLayer: Send + Sync + 'static {
    /// Wraps a route's handling.
    fn wrap(&self, inner: HandlerService) -> HandlerService;
}

impl<L> RouteLayer for L
where
    L: Layer<HandlerService> + Send + Sync + 'static,
    L::Service: Service<Request, Response = Response> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Error: Into<BoxError>,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    fn wrap(&self, inner: HandlerService) -> HandlerService {
        BoxCloneSyncService::new(self.layer(inner).map_err(into_status))
    }
}

/// A layer kept by a router or group, applied when routes are registered or wrapped.
pub(crate) type ErasedLayer = Arc<dyn RouteLayer>;

/// A tower error as the status the caller gets.
fn into_status(error: impl Into<BoxError>) -> Status {
    let error = error.into();
    match error.downcast::<Status>() {
        Ok(status) => *status,
        Err(error) if error.is::<tower::timeout::error::Elapsed>() => Status::from_code(
            Code::HANDLE_TIMEOUT,
            "the handler took longer than its route's timeout layer allows",
        ),
        Err(error) if error.is::<tower::load_shed::error::Overloaded>() => Status::new(
            Code::SERVICE_UNAVAILABLE,
            "overloaded: the route sheds load; retry later",
        ),
        Err(error) => Status::internal(format!("a layer failed: {error}")),
    }
}

/// The handler itself, innermost service of a layered route.
#[derive(Clone)]
enum Innermost {
    Call(Arc<dyn ErasedCall>),
    Push(Arc<dyn ErasedPush>),
}

impl Service<Request> for Innermost {
    type Response = Response;
    type Error = Status;
    type Future = BoxFuture<'static, Result<Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match (self, request.ctx) {
            (Innermost::Call(handler), HandlerCtx::Call(ctx)) => {
                let reply = handler.handle(ctx, request.body);
                Box::pin(async move { reply.await.map(|(codec, body)| Response { codec, body }) })
            }
            (Innermost::Push(handler), HandlerCtx::Push(ctx)) => {
                let done = handler.handle(ctx, request.body);
                Box::pin(async move {
                    done.await.map(|()| Response {
                        codec: CodecId::NONE,
                        body: Bytes::new(),
                    })
                })
            }
            _ => Box::pin(std::future::ready(Err(Status::internal(
                "a layer turned a CALL into a PUSH or back",
            )))),
        }
    }
}

/// A route's handler behind its layers; implements the erased handler traits again, so the
/// dispatcher does not know layers exist.
struct Layered(HandlerService);

impl ErasedCall for Layered {
    fn handle(&self, ctx: CallCtx, body: Bytes) -> BoxFuture<'static, Result<(CodecId, Bytes), Status>> {
        let service = self.0.clone();
        let request = Request {
            ctx: HandlerCtx::Call(ctx),
            body,
        };
        Box::pin(async move { service.oneshot(request).await.map(|r| (r.codec, r.body)) })
    }
}

impl ErasedPush for Layered {
    fn handle(&self, ctx: PushCtx, body: Bytes) -> BoxFuture<'static, Result<(), Status>> {
        let service = self.0.clone();
        let request = Request {
            ctx: HandlerCtx::Push(ctx),
            body,
        };
        Box::pin(async move { service.oneshot(request).await.map(|_| ()) })
    }
}

/// Wraps a CALL handler in `layers` (the first is outermost).
pub(crate) fn wrap_call(handler: Arc<dyn ErasedCall>, layers: &[ErasedLayer]) -> Arc<dyn ErasedCall> {
    if layers.is_empty() {
        return handler;
    }
    Arc::new(Layered(apply(Innermost::Call(handler), layers)))
}

/// Wraps a PUSH handler in `layers` (the first is outermost).
pub(crate) fn wrap_push(handler: Arc<dyn ErasedPush>, layers: &[ErasedLayer]) -> Arc<dyn ErasedPush> {
    if layers.is_empty() {
        return handler;
    }
    Arc::new(Layered(apply(Innermost::Push(handler), layers)))
}

fn apply(innermost: Innermost, layers: &[ErasedLayer]) -> HandlerService {
    layers
        .iter()
        .rev()
        .fold(BoxCloneSyncService::new(innermost), |inner, layer| layer.wrap(inner))
}
