//! What the code `#[erpc::service]` generates refers to; not a public API.
//!
//! The macro cannot see types, only tokens, so it does not decide by a type's name whether a
//! method's context is a [`CallCtx`] or a [`PushCtx`]: it hands the context type to these
//! traits, and the compiler picks CALL or PUSH (or reports a type that is no context).

use crate::codec::EncodeBody;
use crate::router::{CallCtx, CallHandler, Group, PushCtx, PushHandler};
use crate::session::{Call, Caller, Push};

/// A Rust method name as Go names it (`say_hello` → `SayHello`).
pub fn go_name(rust_name: &str) -> String {
    crate::router::mapper::go_name(rust_name)
}

/// A handler context type: says whether its methods are CALLs or PUSHes, on both sides.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an erpc handler context",
    label = "a handler's first argument after `&self` must be `CallCtx` or `PushCtx`; the body argument comes after it",
    note = "a handler is `async fn name(&self, [ctx: CallCtx | PushCtx,] arg: T) -> Result<R, Status>`"
)]
pub trait Context {
    /// What a typed client's method returns: a [`Call`] or a [`Push`] builder.
    type Request<'c, A: EncodeBody + 'c, R: 'c>;
    /// Starts the request on `caller`.
    fn request<'c, C: Caller, A: EncodeBody + 'c, R: 'c>(
        caller: &'c C,
        route: &'c str,
        args: A,
    ) -> Self::Request<'c, A, R>;
}

impl Context for CallCtx {
    type Request<'c, A: EncodeBody + 'c, R: 'c> = Call<'c, A, R, A>;
    fn request<'c, C: Caller, A: EncodeBody + 'c, R: 'c>(
        caller: &'c C,
        route: &'c str,
        args: A,
    ) -> Self::Request<'c, A, R> {
        caller.call_owned(route, args)
    }
}

impl Context for PushCtx {
    type Request<'c, A: EncodeBody + 'c, R: 'c> = Push<'c, A, A>;
    fn request<'c, C: Caller, A: EncodeBody + 'c, R: 'c>(
        caller: &'c C,
        route: &'c str,
        args: A,
    ) -> Self::Request<'c, A, R> {
        caller.push_owned(route, args)
    }
}

/// Registers a handler as the context type says (`M` as in [`CallHandler`]).
#[diagnostic::on_unimplemented(
    message = "this method cannot be an erpc handler with context `{Self}`",
    note = "a CALL handler returns `Result<R, Status>`, a PUSH handler `Result<(), Status>`; the argument must be decodable"
)]
pub trait Register<H, M> {
    /// Adds `handler` to `group` under `name`.
    fn register(group: &mut Group<'_>, name: &str, handler: H);
}

impl<H: CallHandler<M>, M: 'static> Register<H, M> for CallCtx {
    fn register(group: &mut Group<'_>, name: &str, handler: H) {
        group.call(name, handler);
    }
}

impl<H: PushHandler<M>, M: 'static> Register<H, M> for PushCtx {
    fn register(group: &mut Group<'_>, name: &str, handler: H) {
        group.push(name, handler);
    }
}
