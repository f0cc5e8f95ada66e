//! `#[erpc::service]` on a trait: the trait (its async methods made `Send`), a server wrapper
//! `TraitServer<T>` that registers any implementation, and a typed client `TraitClient<C>`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, ItemTrait, TraitItem, TraitItemFn};

use crate::method::{Handler, take_options};

pub fn expand(erpc: &TokenStream, mut item: ItemTrait) -> syn::Result<TokenStream> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[erpc::service] does not support generic traits",
        ));
    }
    let mut handlers = Vec::new();
    for trait_item in &mut item.items {
        let TraitItem::Fn(method) = trait_item else {
            continue;
        };
        let options = take_options(&mut method.attrs)?;
        if options.skip {
            return Err(syn::Error::new(
                method.sig.span(),
                "`#[erpc(skip)]` is for impl blocks; every async method of a service trait is a route",
            ));
        }
        if method.sig.asyncness.is_none() {
            continue;
        }
        let handler = Handler::read(&method.sig, options)?;
        let docs: Vec<Attribute> = method
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        make_send(method);
        handlers.push((handler, docs));
    }
    if handlers.is_empty() {
        return Err(syn::Error::new(
            item.ident.span(),
            "#[erpc::service] found no handler: declare `async fn name(&self, [ctx: CallCtx,] arg: T) -> Result<R, Status>;`",
        ));
    }
    let server = server(erpc, &item, &handlers);
    let client = client(erpc, &item, &handlers);
    Ok(quote! {
        #item
        #server
        #client
    })
}

/// `async fn f(..) -> T` becomes `fn f(..) -> impl Future<Output = T> + Send`: the server
/// spawns handler futures, so they must be `Send`; implementations still write `async fn`.
fn make_send(method: &mut TraitItemFn) {
    method.sig.asyncness = None;
    let output = match &method.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    method.sig.output = syn::parse_quote! {
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
    if let Some(body) = method.default.take() {
        method.default = Some(syn::parse_quote!({ async move #body }));
    }
}

fn server(erpc: &TokenStream, item: &ItemTrait, handlers: &[(Handler, Vec<Attribute>)]) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let server = format_ident!("{}Server", trait_ident);
    let service_name = trait_ident.to_string();
    let registrations = handlers.iter().map(|(handler, _)| {
        let ident = &handler.ident;
        handler.registration(erpc, quote!(<T as #trait_ident>::#ident))
    });
    let doc = format!(
        "Serves an implementation of [`{trait_ident}`]: `router.service({server}::new(service))` registers its routes (`{trait_ident}` then each method, through the router's name mapper)."
    );
    quote! {
        #[doc = #doc]
        #vis struct #server<T> {
            service: ::std::sync::Arc<T>,
        }

        impl<T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static> #server<T> {
            /// Wraps an implementation for registration.
            #vis fn new(service: T) -> Self {
                Self::from_arc(::std::sync::Arc::new(service))
            }

            /// Wraps an implementation that is shared elsewhere too.
            #vis fn from_arc(service: ::std::sync::Arc<T>) -> Self {
                Self { service }
            }
        }

        impl<T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static> #erpc::router::Service for #server<T> {
            fn register(self: ::std::sync::Arc<Self>, group: &mut #erpc::router::Group<'_>) {
                let this = ::std::sync::Arc::clone(&self.service);
                let mut group = group.group(#service_name);
                #(#registrations)*
            }
        }
    }
}

fn client(erpc: &TokenStream, item: &ItemTrait, handlers: &[(Handler, Vec<Attribute>)]) -> TokenStream {
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let client = format_ident!("{}Client", trait_ident);
    let routes = format_ident!("{}ClientRoutes", trait_ident);
    let service_name = trait_ident.to_string();
    let fields: Vec<_> = handlers.iter().map(|(h, _)| &h.ident).collect();
    let names = handlers.iter().map(|(h, _)| h.route_name(erpc));
    let methods = handlers.iter().map(|(handler, docs)| {
        let ident = &handler.ident;
        let arg_name = &handler.arg_name;
        let arg = &handler.arg;
        let reply = &handler.reply;
        let kind = handler.kind(erpc);
        quote! {
            #(#docs)*
            #vis fn #ident(&self, #arg_name: #arg) -> <#kind as #erpc::macro_support::Context>::Request<'_, #arg, #reply> {
                <#kind as #erpc::macro_support::Context>::request::<C, #arg, #reply>(&self.caller, &self.routes.#ident, #arg_name)
            }
        }
    });
    let doc = format!(
        "A typed client of [`{trait_ident}`] over a `Session` or a `Pool`: one method per route, returning the same builder as `Session::call`/`Session::push` (await it, or set meta, codec, timeout first)."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone)]
        #vis struct #client<C = #erpc::Session> {
            caller: C,
            routes: ::std::sync::Arc<#routes>,
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #routes {
            #(#fields: ::std::string::String,)*
        }

        impl<C: #erpc::session::Caller> #client<C> {
            /// A client for the routes a server registers with the default name mapper and
            /// no group (`/math/add`).
            #vis fn new(caller: C) -> Self {
                Self::with_routes(caller, #erpc::router::NameMapper::default(), &[])
            }

            /// A client for the routes a server registers with `mapper`, inside the nested
            /// `groups` (`Router::group`).
            #vis fn with_routes(caller: C, mapper: #erpc::router::NameMapper, groups: &[&str]) -> Self {
                let mut prefix = mapper.root();
                for group in groups {
                    prefix = mapper.route(&prefix, group);
                }
                let service = mapper.route(&prefix, #service_name);
                let routes = #routes {
                    #(#fields: mapper.route(&service, &#names),)*
                };
                Self { caller, routes: ::std::sync::Arc::new(routes) }
            }

            /// The session or pool the calls go through.
            #vis fn caller(&self) -> &C {
                &self.caller
            }

            #(#methods)*
        }
    }
}
