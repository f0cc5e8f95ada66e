//! Procedural macros for erpc.
//!
//! `#[erpc::service]` turns the handler methods of an impl block into routes; see
//! `erpc::router::Service` for what it generates and which routes the methods get.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, LitStr, Pat, Type};

/// Registers the `async fn(&self, ctx: CallCtx | PushCtx, arg: T)` methods of an impl block
/// as CALL or PUSH routes by implementing `erpc::router::Service` for the type.
///
/// A method may carry `#[erpc(name = "Route")]` to choose its route name (still mapped and
/// prefixed like the others). Other methods (not async, or without a context argument) are
/// left alone, so helpers can live in the same block.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut item = syn::parse_macro_input!(item as ItemImpl);
    let out = expand(attr.into(), &mut item).unwrap_or_else(syn::Error::into_compile_error);
    quote!(#item #out).into()
}

enum Kind {
    Call,
    Push,
}

fn expand(attr: Tokens, item: &mut ItemImpl) -> syn::Result<Tokens> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[erpc::service] takes no arguments"));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[erpc::service] does not support generic types",
        ));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[erpc::service] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = &item.self_ty;
    let type_name = match &**self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new(self_ty.span(), "#[erpc::service] needs a named type"))?;

    let mut registrations = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let route_name = take_name_attr(&mut method.attrs)?;
        let sig = &method.sig;
        if sig.asyncness.is_none() {
            continue;
        }
        let inputs: Vec<&FnArg> = sig.inputs.iter().collect();
        let [FnArg::Receiver(receiver), FnArg::Typed(ctx), FnArg::Typed(arg)] = inputs[..] else {
            if inputs
                .iter()
                .any(|a| matches!(a, FnArg::Typed(t) if ctx_kind(&t.ty).is_some()))
            {
                return Err(syn::Error::new(
                    sig.span(),
                    "erpc handler methods look like `async fn name(&self, ctx: CallCtx, arg: T) -> Result<R, Status>`",
                ));
            }
            continue;
        };
        let Some(kind) = ctx_kind(&ctx.ty) else {
            continue;
        };
        if receiver.reference.is_none() || receiver.mutability.is_some() {
            return Err(syn::Error::new(receiver.span(), "erpc handler methods take `&self`"));
        }
        if !matches!(&*arg.pat, Pat::Ident(_) | Pat::Wild(_)) {
            return Err(syn::Error::new(arg.pat.span(), "use a plain name for the argument"));
        }
        let method_ident = &sig.ident;
        let arg_ty = &arg.ty;
        let ctx_ty = &ctx.ty;
        let name = match route_name {
            Some(name) => quote!(#name.to_string()),
            None => {
                let rust_name = method_ident.to_string();
                quote!(::erpc::router::mapper::go_name(#rust_name))
            }
        };
        let register = match kind {
            Kind::Call => format_ident!("call"),
            Kind::Push => format_ident!("push"),
        };
        registrations.push(quote! {
            {
                let this = ::std::sync::Arc::clone(&self);
                group.#register(&#name, move |ctx: #ctx_ty, arg: #arg_ty| {
                    let this = ::std::sync::Arc::clone(&this);
                    async move { this.#method_ident(ctx, arg).await }
                });
            }
        });
    }
    if registrations.is_empty() {
        return Err(syn::Error::new(
            self_ty.span(),
            "#[erpc::service] found no handler: write `async fn name(&self, ctx: CallCtx, arg: T) -> Result<R, Status>`",
        ));
    }
    Ok(quote! {
        impl ::erpc::router::Service for #self_ty {
            fn register(self: ::std::sync::Arc<Self>, group: &mut ::erpc::router::Group<'_>) {
                let mut group = group.group(#type_name);
                #(#registrations)*
            }
        }
    })
}

fn ctx_kind(ty: &Type) -> Option<Kind> {
    let Type::Path(p) = ty else { return None };
    match p.path.segments.last()?.ident.to_string().as_str() {
        "CallCtx" => Some(Kind::Call),
        "PushCtx" => Some(Kind::Push),
        _ => None,
    }
}

/// Removes `#[erpc(name = "…")]` from a method and returns the name.
fn take_name_attr(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("erpc") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else {
                Err(meta.error("expected `name = \"...\"`"))
            }
        });
        if let Err(e) = parsed {
            error = Some(e);
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(name),
    }
}
