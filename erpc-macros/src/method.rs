//! One handler method: its context, argument, reply type, route name and kind, read from its
//! signature and `#[erpc(...)]` attributes.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, GenericArgument, LitStr, Pat, PathArguments, ReturnType, Signature, Type};

/// What `#[erpc(...)]` says about a method.
#[derive(Default)]
pub struct Options {
    /// `name = "Route"`: the method's route name instead of its Go name.
    pub name: Option<LitStr>,
    /// `push`: a PUSH although the method takes no context.
    pub push: bool,
    /// `skip`: not a handler (impl blocks only).
    pub skip: bool,
}

/// Removes the `#[erpc(...)]` attributes of a method and reads them.
pub fn take_options(attrs: &mut Vec<Attribute>) -> syn::Result<Options> {
    let mut options = Options::default();
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("erpc") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                options.name = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("push") {
                options.push = true;
            } else if meta.path.is_ident("skip") {
                options.skip = true;
            } else {
                return Err(meta.error("expected `name = \"...\"`, `push` or `skip`"));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            error.get_or_insert(e);
        }
        false
    });
    error.map_or(Ok(options), Err)
}

/// A handler method, read from its signature.
pub struct Handler {
    pub ident: syn::Ident,
    /// The context argument's type, if the method takes one.
    pub ctx: Option<Type>,
    pub arg_name: syn::Ident,
    pub arg: Type,
    /// `R` of `Result<R, Status>`.
    pub reply: Type,
    pub options: Options,
}

impl Handler {
    /// Reads `async fn name(&self, [ctx: C,] arg: T) -> Result<R, E>`.
    pub fn read(sig: &Signature, options: Options) -> syn::Result<Handler> {
        let shape = || {
            syn::Error::new(
                sig.span(),
                "an erpc handler is `async fn name(&self, [ctx: CallCtx | PushCtx,] arg: T) -> Result<R, Status>`",
            )
        };
        if sig.asyncness.is_none() {
            return Err(shape());
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(sig.generics.span(), "erpc handlers cannot be generic"));
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
            Some(FnArg::Receiver(r)) => return Err(syn::Error::new(r.span(), "erpc handlers take `&self`")),
            _ => return Err(shape()),
        }
        let typed: Vec<&syn::PatType> = inputs
            .map(|input| match input {
                FnArg::Typed(t) => Ok(t),
                FnArg::Receiver(r) => Err(syn::Error::new(r.span(), "unexpected receiver")),
            })
            .collect::<syn::Result<_>>()?;
        let (ctx, arg) = match typed[..] {
            [arg] => (None, arg),
            [ctx, arg] => (Some((*ctx.ty).clone()), arg),
            _ => return Err(shape()),
        };
        if ctx.is_some() && options.push {
            return Err(syn::Error::new(
                sig.span(),
                "`#[erpc(push)]` is for handlers without a context; with one, its type (`PushCtx`) says it",
            ));
        }
        let arg_name = match &*arg.pat {
            Pat::Ident(p) => p.ident.clone(),
            Pat::Wild(w) => syn::Ident::new("arg", w.span()),
            other => return Err(syn::Error::new(other.span(), "use a plain name for the argument")),
        };
        Ok(Handler {
            ident: sig.ident.clone(),
            ctx,
            arg_name,
            arg: (*arg.ty).clone(),
            reply: ok_type(&sig.output).ok_or_else(shape)?,
            options,
        })
    }

    /// The expression of the route name, before mapping.
    pub fn route_name(&self, erpc: &TokenStream) -> TokenStream {
        match &self.options.name {
            Some(name) => quote!(::std::string::String::from(#name)),
            None => {
                let rust_name = self.ident.to_string();
                quote!(#erpc::macro_support::go_name(#rust_name))
            }
        }
    }

    /// The type that decides CALL or PUSH: the context's, or the default one.
    pub fn kind(&self, erpc: &TokenStream) -> TokenStream {
        match (&self.ctx, self.options.push) {
            (Some(ctx), _) => quote!(#ctx),
            (None, true) => quote!(#erpc::router::PushCtx),
            (None, false) => quote!(#erpc::router::CallCtx),
        }
    }

    /// Registers the handler in `group`; `callee` is the method's path (`Type::method`,
    /// `<T as Trait>::method`), called on the service behind the `Arc` named `this`.
    pub fn registration(&self, erpc: &TokenStream, callee: TokenStream) -> TokenStream {
        let name = self.route_name(erpc);
        let kind = self.kind(erpc);
        let arg_ty = &self.arg;
        let (params, args) = match &self.ctx {
            Some(ctx) => (quote!(ctx: #ctx, arg: #arg_ty), quote!(ctx, arg)),
            None => (quote!(arg: #arg_ty), quote!(arg)),
        };
        quote! {
            {
                let this = ::std::sync::Arc::clone(&this);
                <#kind as #erpc::macro_support::Register<_, _>>::register(
                    &mut group,
                    &#name,
                    move |#params| {
                        let this = ::std::sync::Arc::clone(&this);
                        async move { #callee(&*this, #args).await }
                    },
                );
            }
        }
    }
}

/// `R` of a `Result<R, E>` return type.
fn ok_type(output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else { return None };
    let Type::Path(path) = &**ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    }
}
