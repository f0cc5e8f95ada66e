//! Handler traits: plain async functions and closures become CALL and PUSH handlers.
//!
//! A CALL handler is `async fn(CallCtx, Arg) -> Result<Out, Status>` or, when it needs no
//! context, `async fn(Arg) -> Result<Out, Status>`; a PUSH handler is the same with
//! [`PushCtx`] and `Result<(), Status>`. `Arg` is any [`DecodeBody`] type (decoded with the
//! message's codec) and `Out` any [`EncodeBody`] type (encoded with the reply codec).
//! The traits are implemented for every such function; you never implement them yourself.

use std::future::Future;
use std::marker::PhantomData;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::ctx::{CallCtx, PushCtx};
use crate::codec::{CodecError, CodecId, DecodeBody, EncodeBody};
use crate::status::Status;

/// A function usable as a CALL handler. `M` only tells the two shapes apart.
pub trait CallHandler<M>: Clone + Send + Sync + 'static {
    /// The argument type, decoded from the request body.
    type Arg: DecodeBody;
    /// The result type, encoded as the reply body.
    type Output: EncodeBody + Send + 'static;
    /// The handler's future.
    type Future: Future<Output = Result<Self::Output, Status>> + Send + 'static;
    /// Runs the handler.
    fn call(&self, ctx: CallCtx, arg: Self::Arg) -> Self::Future;
}

impl<F, Fut, A, R> CallHandler<(CallCtx, A)> for F
where
    F: Fn(CallCtx, A) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
    A: DecodeBody,
    R: EncodeBody + Send + 'static,
{
    type Arg = A;
    type Output = R;
    type Future = Fut;
    fn call(&self, ctx: CallCtx, arg: A) -> Fut {
        self(ctx, arg)
    }
}

impl<F, Fut, A, R> CallHandler<(A,)> for F
where
    F: Fn(A) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
    A: DecodeBody,
    R: EncodeBody + Send + 'static,
{
    type Arg = A;
    type Output = R;
    type Future = Fut;
    fn call(&self, _: CallCtx, arg: A) -> Fut {
        self(arg)
    }
}

/// A function usable as a PUSH handler. `M` only tells the two shapes apart.
pub trait PushHandler<M>: Clone + Send + Sync + 'static {
    /// The argument type, decoded from the push body.
    type Arg: DecodeBody;
    /// The handler's future.
    type Future: Future<Output = Result<(), Status>> + Send + 'static;
    /// Runs the handler.
    fn call(&self, ctx: PushCtx, arg: Self::Arg) -> Self::Future;
}

impl<F, Fut, A> PushHandler<(PushCtx, A)> for F
where
    F: Fn(PushCtx, A) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
    A: DecodeBody,
{
    type Arg = A;
    type Future = Fut;
    fn call(&self, ctx: PushCtx, arg: A) -> Fut {
        self(ctx, arg)
    }
}

impl<F, Fut, A> PushHandler<(A,)> for F
where
    F: Fn(A) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
    A: DecodeBody,
{
    type Arg = A;
    type Future = Fut;
    fn call(&self, _: PushCtx, arg: A) -> Fut {
        self(arg)
    }
}

/// A CALL handler with its types erased: decodes, runs the hooks after decoding, runs the
/// handler, picks the reply codec and encodes.
pub(crate) trait ErasedCall: Send + Sync {
    fn handle(&self, ctx: CallCtx, body: Bytes) -> BoxFuture<'static, Result<(CodecId, Bytes), Status>>;
}

/// A PUSH handler with its types erased.
pub(crate) trait ErasedPush: Send + Sync {
    fn handle(&self, ctx: PushCtx, body: Bytes) -> BoxFuture<'static, Result<(), Status>>;
}

pub(crate) struct CallFn<H, M> {
    pub(crate) handler: H,
    pub(crate) _shape: PhantomData<fn() -> M>,
}

impl<H: CallHandler<M>, M: 'static> ErasedCall for CallFn<H, M> {
    fn handle(&self, ctx: CallCtx, body: Bytes) -> BoxFuture<'static, Result<(CodecId, Bytes), Status>> {
        let handler = self.handler.clone();
        Box::pin(async move {
            let arg = H::Arg::decode_body(ctx.body_codec(), body).map_err(|e| match e {
                CodecError::Invalid { param, reason } => {
                    super::binder::invalid_parameter(ctx.service_method(), &param, &reason)
                }
                other => Status::bad_message(other.to_string()),
            })?;
            ctx.after_decode()?;
            let output = handler.call(ctx.clone(), arg).await?;
            let codec = ctx.reply_codec();
            let body = output
                .encode_body(codec)
                .map_err(|e| Status::internal(format!("cannot encode the reply: {e}")))?;
            Ok((codec, body))
        })
    }
}

pub(crate) struct PushFn<H, M> {
    pub(crate) handler: H,
    pub(crate) _shape: PhantomData<fn() -> M>,
}

impl<H: PushHandler<M>, M: 'static> ErasedPush for PushFn<H, M> {
    fn handle(&self, ctx: PushCtx, body: Bytes) -> BoxFuture<'static, Result<(), Status>> {
        let handler = self.handler.clone();
        Box::pin(async move {
            let arg = H::Arg::decode_body(ctx.body_codec(), body).map_err(|e| Status::bad_message(e.to_string()))?;
            ctx.after_decode()?;
            handler.call(ctx, arg).await
        })
    }
}
