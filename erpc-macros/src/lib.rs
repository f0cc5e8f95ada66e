//! Procedural macros for erpc.
//!
//! `#[erpc::service]` goes on a trait (both sides: a server wrapper and a typed client, see
//! [`service`]) or on an impl block (its methods become routes). The shared pieces: reading a
//! handler method (`method.rs`), finding the `erpc` crate however it is named (`krate.rs`).

mod impl_block;
mod krate;
mod method;
mod trait_def;

use proc_macro::TokenStream;
use syn::Item;

/// Makes eRPC routes of a service's methods.
///
/// On a **trait**, it generates both sides of a typed service named after the trait:
/// `TraitServer<T>` (register it with `Router::service(TraitServer::new(impl))`) and
/// `TraitClient<C>` over a `Session` or a `Pool`, with one method per trait method whose
/// argument and reply types the compiler checks. On an **impl block**, it implements
/// `erpc::router::Service` for the type.
///
/// A handler method is `async fn name(&self, [ctx: CallCtx | PushCtx,] arg: T) -> Result<R, Status>`:
/// with a `PushCtx` (or `#[erpc(push)]` when it takes no context) it is a PUSH and returns
/// `Result<(), Status>`, otherwise a CALL. Its route is Go's: the trait or type name, then the
/// method name in Go's CamelCase, through the router's name mapper (`/math/say_hello`,
/// `Math.SayHello`); `#[erpc(name = "Route")]` chooses another method name. In an impl block,
/// methods that are not `async` are left alone, and `#[erpc(skip)]` leaves an async one alone.
///
/// `#[erpc::service(crate = "path")]` names the erpc crate where it cannot be found in
/// `Cargo.toml` (a re-export); a renamed dependency is found by itself.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as Item);
    let expanded = krate::from_args(attr.into()).and_then(|erpc| match item {
        Item::Trait(item) => trait_def::expand(&erpc, item),
        Item::Impl(item) => impl_block::expand(&erpc, item),
        other => Err(syn::Error::new_spanned(
            other,
            "#[erpc::service] goes on a trait (typed server and client) or an impl block",
        )),
    });
    expanded.unwrap_or_else(syn::Error::into_compile_error).into()
}
